//! Processes and signals: `clone`, exit and reaping, `wait`, sending signals, and
//! delivering them at the task's return to the application (default actions, group
//! stop and continue, handler frames, system call restart).
//!
//! The process tree: every [`ThreadGroup`] holds its children (live and zombie) until
//! the parent reaps them; orphans go to PID 1, and PID 1's end kills every other process.

use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::signal::{SIGCHLD, SIGCONT, SIGKILL, SIGSEGV, SigInfo};

use super::sigframe;
use super::signal::{
    DefaultAction, SA_NOCLDSTOP, SA_NOCLDWAIT, SA_NODEFER, SA_RESETHAND, SA_RESTART, SIG_DFL,
    SIG_IGN, STOP_SIGNALS, SigAction, default_action, sig_bit,
};
use super::task::{Task, Waker};
use super::thread_group::ThreadGroup;
use crate::ExitStatus;

/// `si_code` values of `SIGCHLD`.
pub const CLD_EXITED: i32 = 1;
/// Killed by a signal.
pub const CLD_KILLED: i32 = 2;
/// Stopped.
pub const CLD_STOPPED: i32 = 5;
/// Continued.
pub const CLD_CONTINUED: i32 = 6;

/// Whether `e` is one of the kernel-internal restart codes.
pub fn is_restart(e: Errno) -> bool {
    matches!(
        e,
        Errno::ERESTARTSYS
            | Errno::ERESTARTNOINTR
            | Errno::ERESTARTNOHAND
            | Errno::ERESTART_RESTARTBLOCK
    )
}

/// Turns an `EINTR` from an interrupted blocking call into the restart code Linux uses
/// for system call `nr` (`ERESTARTSYS` for I/O, `ERESTARTNOHAND` for the poll family).
pub fn restart_code(nr: u64, ret: u64) -> u64 {
    use linux_abi::sysno::*;
    if Errno::from_return(ret) != Some(Errno::EINTR) {
        return ret;
    }
    match nr {
        SYS_READ | SYS_WRITE | SYS_READV | SYS_WRITEV | SYS_PREAD64 | SYS_PWRITE64 | SYS_PREADV
        | SYS_PWRITEV | SYS_PREADV2 | SYS_PWRITEV2 | SYS_RECVFROM | SYS_SENDTO | SYS_RECVMSG
        | SYS_SENDMSG | SYS_ACCEPT | SYS_ACCEPT4 | SYS_CONNECT | SYS_OPEN | SYS_OPENAT
        | SYS_FLOCK | SYS_FCNTL | SYS_IOCTL | SYS_SPLICE | SYS_TEE | SYS_SENDFILE | SYS_WAIT4
        | SYS_WAITID => Errno::ERESTARTSYS.as_return(),
        SYS_POLL | SYS_PPOLL | SYS_SELECT | SYS_PSELECT6 | SYS_EPOLL_WAIT | SYS_EPOLL_PWAIT
        | SYS_EPOLL_PWAIT2 => Errno::ERESTARTNOHAND.as_return(),
        _ => ret,
    }
}

/// Whether `act` makes `sig` do nothing at all.
fn ignored_action(act: &SigAction, sig: i32) -> bool {
    act.handler == SIG_IGN
        || (act.handler == SIG_DFL
            && matches!(
                default_action(sig),
                DefaultAction::Ignore | DefaultAction::Continue
            ))
}

/// What sending `sig` does at once, before queueing: `SIGCONT` resumes a stopped
/// process and cancels pending stops; a stop signal cancels a pending `SIGCONT`.
fn prepare_signal(tg: &Arc<ThreadGroup>, sig: i32) {
    if sig_bit(sig) & STOP_SIGNALS != 0 {
        let cont = sig_bit(SIGCONT);
        tg.shared_pending().discard(cont);
        for t in tg.tasks() {
            t.pending().discard(cont);
        }
    } else if sig == SIGCONT {
        tg.shared_pending().discard(STOP_SIGNALS);
        for t in tg.tasks() {
            t.pending().discard(STOP_SIGNALS);
        }
        let was_stopped = {
            let mut j = tg.job();
            let was = j.stopped;
            if was {
                j.stopped = false;
                j.report_cont = true;
                j.report_stop = None;
            }
            was
        };
        if was_stopped {
            for t in tg.tasks() {
                t.waker().wake();
            }
            notify_parent(tg, CLD_CONTINUED, SIGCONT);
        }
    }
}

impl ThreadGroup {
    /// Sends a process-directed signal (`kill`): queued for the process, and any thread
    /// that does not block it is woken to take it.
    pub fn send_signal(self: &Arc<Self>, info: SigInfo) {
        let sig = info.signo;
        if !(1..=64).contains(&sig) || self.is_exiting() {
            return;
        }
        if sig == SIGKILL {
            self.kill(SIGKILL);
            return;
        }
        prepare_signal(self, sig);
        let tasks = self.tasks();
        let blocked_by_all =
            !tasks.is_empty() && tasks.iter().all(|t| t.sigmask() & sig_bit(sig) != 0);
        if !blocked_by_all && ignored_action(&self.action(sig), sig) {
            return;
        }
        if !self.queue_signal(info) {
            return;
        }
        for t in &tasks {
            if t.sigmask() & sig_bit(sig) == 0 {
                t.interrupt();
            } else {
                t.waker().wake();
            }
        }
    }
}

impl Task {
    /// Sends a thread-directed signal (`tgkill`, timers with `SIGEV_THREAD_ID`).
    pub fn send_signal(&self, info: SigInfo) {
        let sig = info.signo;
        let tg = self.thread_group().clone();
        if !(1..=64).contains(&sig) || tg.is_exiting() || self.is_finished() {
            return;
        }
        if sig == SIGKILL {
            tg.kill(SIGKILL);
            return;
        }
        prepare_signal(&tg, sig);
        let blocked = self.sigmask() & sig_bit(sig) != 0;
        if !blocked && ignored_action(&tg.action(sig), sig) {
            return;
        }
        if self.pending().push(info) {
            self.interrupt();
        }
    }

    /// Forces a synchronous signal (a fault): a blocked or ignored signal is unblocked
    /// and reset to its default action first, so that it kills, as Linux `force_sig`.
    pub fn force_signal(&self, info: SigInfo) {
        let sig = info.signo;
        let tg = self.thread_group();
        let act = tg.action(sig);
        if act.handler == SIG_IGN || self.sigmask() & sig_bit(sig) != 0 {
            if act.handler == SIG_IGN || !act.has_handler() || self.sigmask() & sig_bit(sig) != 0 {
                tg.set_action(sig, SigAction::default());
            }
            self.set_sigmask(self.sigmask() & !sig_bit(sig));
        }
        self.pending().discard(sig_bit(sig));
        let _ = self.pending().push(info);
    }

    /// Stops the whole process for `sig` (a stop signal's default action).
    fn group_stop(&self, sig: i32) {
        let tg = self.thread_group().clone();
        {
            let mut j = tg.job();
            if j.stopped {
                return;
            }
            j.stopped = true;
            j.report_stop = Some(sig);
            j.report_cont = false;
        }
        for t in tg.tasks() {
            t.interrupt();
        }
        notify_parent(&tg, CLD_STOPPED, sig);
    }

    fn wait_while_stopped(&self) {
        loop {
            let seen = self.waker().seq();
            if !self.thread_group().job().stopped || self.should_stop() {
                return;
            }
            self.waker().wait(seen, None);
        }
    }

    /// Handles pending signals before returning to the application: default actions,
    /// stops, handler frames, and the restart (or `EINTR`) of the system call that just
    /// returned `restart`.
    pub(crate) fn handle_signals(self: &Arc<Self>, mut restart: Option<Errno>) {
        let tg = self.thread_group().clone();
        let mut handled = false;
        loop {
            if self.should_stop() {
                return;
            }
            if tg.job().stopped {
                self.wait_while_stopped();
                continue;
            }
            if self.kernel().is_frozen() && !self.kill_pending() {
                self.wait_while_frozen();
                continue;
            }
            let mask = self.sigmask();
            let next = self.pending().take(!mask);
            let Some(info) = next.or_else(|| tg.shared_pending().take(!mask)) else {
                break;
            };
            let sig = info.signo;
            let act = tg.action(sig);
            if act.handler == SIG_IGN {
                continue;
            }
            if act.handler == SIG_DFL {
                match default_action(sig) {
                    DefaultAction::Ignore | DefaultAction::Continue => continue,
                    DefaultAction::Stop => {
                        self.group_stop(sig);
                        continue;
                    }
                    DefaultAction::Terminate | DefaultAction::Core => {
                        tg.begin_exit(ExitStatus::Signaled(sig));
                        return;
                    }
                }
            }
            let mm = self.mm();
            let mut regs = self.regs();
            if let Some(e) = restart.take() {
                let again = e == Errno::ERESTARTNOINTR
                    || (e == Errno::ERESTARTSYS && act.flags & SA_RESTART != 0);
                if again {
                    regs.gp.rax = regs.gp.orig_rax;
                    regs.gp.rip = regs.gp.rip.wrapping_sub(2);
                } else {
                    regs.gp.rax = Errno::EINTR.as_return();
                }
            }
            let old_mask = self.saved_mask().take().unwrap_or(mask);
            let res =
                sigframe::setup_frame(&mm, &mut regs, &act, &info, old_mask, &self.altstack());
            drop(regs);
            if res == Err(crate::mm::EOOM) {
                self.oom_kill();
                return;
            }
            if let Err(e) = res {
                tracing::debug!(tid = self.tid(), sig, "cannot write a signal frame: {e:?}");
                tg.begin_exit(ExitStatus::Signaled(SIGSEGV));
                return;
            }
            let mut new_mask = mask | act.mask;
            if act.flags & SA_NODEFER == 0 {
                new_mask |= sig_bit(sig);
            }
            self.set_sigmask(new_mask);
            if act.flags & SA_RESETHAND != 0 {
                // Linux resets only the handler: the flags (SA_SIGINFO among them), mask
                // and restorer stay, as sigaction() then reports them.
                tg.set_action(
                    sig,
                    SigAction {
                        handler: SIG_DFL,
                        ..act
                    },
                );
            }
            handled = true;
        }
        if let Some(e) = restart {
            let mut regs = self.regs();
            if e == Errno::ERESTART_RESTARTBLOCK {
                regs.gp.rax = linux_abi::sysno::SYS_RESTART_SYSCALL;
            } else {
                regs.gp.rax = regs.gp.orig_rax;
            }
            regs.gp.rip = regs.gp.rip.wrapping_sub(2);
        }
        if !handled && let Some(m) = self.saved_mask().take() {
            self.set_sigmask(m);
        }
    }
}

/// The `(si_code, si_status)` of an exit status, and its `wait` status word.
pub fn exit_codes(st: ExitStatus) -> (i32, i32, i32) {
    match st {
        ExitStatus::Exited(c) => (CLD_EXITED, i32::from(c), i32::from(c) << 8),
        ExitStatus::Signaled(s) => (CLD_KILLED, s, s & 0x7f),
    }
}

/// Tells `child`'s parent about a state change: rings its waiters and sends it
/// `SIGCHLD` (or the exit signal on exit), honouring `SA_NOCLDSTOP`.
fn notify_parent(child: &Arc<ThreadGroup>, code: i32, status: i32) {
    let Some(parent) = child.parent() else {
        return;
    };
    // The signal is queued before waiters look, as on Linux; waiters are rung after.
    let wake = || {
        for t in parent.tasks() {
            t.waker().wake();
        }
    };
    let sig = if code == CLD_EXITED || code == CLD_KILLED {
        child.exit_signal()
    } else {
        SIGCHLD
    };
    let act = parent.action(SIGCHLD);
    let quiet = sig == 0
        || (sig == SIGCHLD
            && (code == CLD_STOPPED || code == CLD_CONTINUED)
            && act.flags & SA_NOCLDSTOP != 0);
    if !quiet {
        let mut info = SigInfo::new(sig, code);
        info.set_pid_uid(child.tgid(), child.uid());
        info.fields[1] = u64::from(status as u32);
        parent.send_signal(info);
    }
    wake();
}

/// Marks `g` reaped and forgets its pid.
fn reap(kernel: &super::Kernel, g: &ThreadGroup) {
    if let Some(st) = g.exit_status() {
        let _ = g.reaped_status().set(exit_codes(st).2);
    }
    g.set_reaped();
    g.timers.clear(true);
    kernel.unregister_group(g.tgid());
}

/// The last task of `t`'s process has finished: reparent the children, kill everything
/// if this was PID 1, and tell (or let the parent auto-reap) the parent.
pub(crate) fn process_exited(t: &Arc<Task>) {
    let kernel = t.kernel().clone();
    let tg = t.thread_group().clone();
    tg.timers.clear(true);
    // System V semaphore adjustments (SEM_UNDO) are undone when the process ends.
    kernel.ipc().process_exited(tg.tgid());
    // A session leader's exit hangs up its controlling terminal (Linux's
    // disassociate_ctty on exit: SIGHUP to the foreground group); any other process
    // just stops holding it.
    match kernel.terminals().of(tg.tgid()) {
        Some(term) if tg.sid() == tg.tgid() && term.session() == Some(tg.sid()) => {
            kernel.hang_up(&term, false);
        }
        _ => kernel.terminals().drop_process(tg.tgid()),
    }
    if tg.sid() == tg.tgid() {
        kernel.terminals().leader_exited(tg.tgid());
    }
    if tg.tgid() == 1 {
        for pid in kernel.pids() {
            if pid != 1
                && let Some(g) = kernel.thread_group(pid)
            {
                g.kill(SIGKILL);
            }
        }
    }
    // Process groups this exit may orphan: its own if it was the group's link to the
    // session (its parent is in another group of the same session), and its children's
    // groups in the session.
    let mut maybe_orphaned = Vec::new();
    if tg
        .parent()
        .is_some_and(|p| p.pgid() != tg.pgid() && p.sid() == tg.sid())
    {
        maybe_orphaned.push(tg.pgid());
    }
    for c in tg.children() {
        if c.pgid() != tg.pgid() && c.sid() == tg.sid() && !maybe_orphaned.contains(&c.pgid()) {
            maybe_orphaned.push(c.pgid());
        }
    }
    // The new parent: the nearest living ancestor that declared itself a child
    // subreaper (PR_SET_CHILD_SUBREAPER), else PID 1, as Linux's find_new_reaper.
    let mut reaper = None;
    let mut up = tg.parent();
    while let Some(a) = up {
        if a.tgid() != tg.tgid()
            && !a.is_exiting()
            && a.child_subreaper.load(std::sync::atomic::Ordering::Relaxed)
        {
            reaper = Some(a);
            break;
        }
        up = a.parent();
    }
    let init = reaper.or_else(|| {
        kernel
            .thread_group(1)
            .filter(|i| i.tgid() != tg.tgid() && !i.is_exiting())
    });
    for c in tg.take_children() {
        // PR_SET_PDEATHSIG: the child asked for a signal when its parent dies.
        for ct in c.tasks() {
            let sig = ct.pdeathsig();
            if sig != 0 {
                let mut info = SigInfo::new(sig, linux_abi::signal::SI_USER);
                info.set_pid_uid(tg.tgid(), tg.uid());
                ct.send_signal(info);
            }
        }
        match &init {
            Some(i) => {
                c.set_parent(i);
                i.add_child(c.clone());
                if c.is_exit_notified() {
                    let auto = i.action(SIGCHLD).handler == SIG_IGN
                        || i.action(SIGCHLD).flags & SA_NOCLDWAIT != 0;
                    if auto {
                        i.remove_child(c.tgid());
                        reap(&kernel, &c);
                    }
                }
                for it in i.tasks() {
                    it.waker().wake();
                }
            }
            None => reap(&kernel, &c),
        }
    }
    for pgid in maybe_orphaned {
        hangup_orphaned_group(&kernel, pgid);
    }
    let status = tg.exit_status().unwrap_or(ExitStatus::Exited(0));
    let (code, st, _) = exit_codes(status);
    match tg.parent() {
        Some(parent) => {
            let act = parent.action(SIGCHLD);
            let auto = tg.exit_signal() == SIGCHLD
                && (act.handler == SIG_IGN || act.flags & SA_NOCLDWAIT != 0);
            {
                // Collectable and signalled in one step, as under Linux's tasklist lock:
                // a waiter sees neither or both. (Queueing the signal first let a parent
                // take SIGCHLD, find nothing to wait for, and sleep forever.)
                // Serialised against `wait` (Kernel::exit_notify_lock).
                let _notify = kernel.exit_notify_lock();
                if auto {
                    parent.remove_child(tg.tgid());
                    reap(&kernel, &tg);
                    tg.set_exit_notified();
                } else {
                    tg.set_exit_notified();
                    notify_parent(&tg, code, st);
                }
            }
            for pt in parent.tasks() {
                pt.waker().wake();
            }
        }
        None if tg.tgid() != 1 => {
            tg.set_exit_notified();
            reap(&kernel, &tg);
        }
        None => tg.set_exit_notified(),
    }
}

/// POSIX job control: a process group that has just become orphaned (no member has a
/// parent in another group of the same session) and has a stopped member gets `SIGHUP`
/// and then `SIGCONT`, so that nothing stays stopped with nobody left to continue it.
fn hangup_orphaned_group(kernel: &super::Kernel, pgid: i32) {
    let members: Vec<Arc<ThreadGroup>> = kernel
        .pids()
        .into_iter()
        .filter_map(|p| kernel.thread_group(p))
        .filter(|g| g.pgid() == pgid && !g.is_exiting())
        .collect();
    let orphaned = members.iter().all(|g| {
        g.parent()
            .is_none_or(|p| p.is_exiting() || p.pgid() == pgid || p.sid() != g.sid())
    });
    if !orphaned || !members.iter().any(|g| g.job().stopped) {
        return;
    }
    for g in &members {
        g.send_signal(SigInfo::new(
            linux_abi::signal::SIGHUP,
            linux_abi::signal::SI_KERNEL,
        ));
        g.send_signal(SigInfo::new(SIGCONT, linux_abi::signal::SI_KERNEL));
    }
}

/// `FUTEX_WAITERS`.
const FUTEX_WAITERS: u32 = 0x8000_0000;
/// `FUTEX_OWNER_DIED`.
const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// `FUTEX_TID_MASK`.
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
/// Most robust list entries walked (`ROBUST_LIST_LIMIT`).
const ROBUST_LIST_LIMIT: usize = 2048;

/// Walks the exiting task's robust futex list: every futex it still owns gets
/// `FUTEX_OWNER_DIED` and one waiter is woken.
pub(crate) fn exit_robust_list(t: &Task) {
    let (head, _) = t.robust_list();
    if head == 0 {
        return;
    }
    let mm = t.mm();
    let Ok([next, offset, pending]) = mm.read_obj::<[u64; 3]>(head) else {
        return;
    };
    let handle = |entry: u64| {
        let addr = (entry & !1).wrapping_add(offset);
        let Ok(val) = mm.read_obj::<u32>(addr) else {
            return;
        };
        if val & FUTEX_TID_MASK != t.tid() as u32 {
            return;
        }
        let new = (val & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
        if mm.write_obj(addr, &new).is_ok() && val & FUTEX_WAITERS != 0 {
            let _ = t
                .kernel()
                .futexes()
                .wake_key(t, addr, false, 1, super::FUTEX_BITSET_MATCH_ANY);
        }
    };
    let mut entry = next;
    let mut n = 0;
    while entry != head && entry != 0 && n < ROBUST_LIST_LIMIT {
        let Ok(following) = mm.read_obj::<u64>(entry & !1) else {
            break;
        };
        if entry != pending {
            handle(entry);
        }
        entry = following;
        n += 1;
    }
    if pending != 0 {
        handle(pending);
    }
}

/// `clone` flags.
#[allow(dead_code)] // Linux's whole set, named even where a flag needs no handling.
pub mod clone_flags {
    /// Share the address space.
    pub const CLONE_VM: u64 = 0x100;
    /// Share the filesystem context.
    pub const CLONE_FS: u64 = 0x200;
    /// Share the descriptor table.
    pub const CLONE_FILES: u64 = 0x400;
    /// Share signal handlers.
    pub const CLONE_SIGHAND: u64 = 0x800;
    /// Create a pidfd (unsupported).
    pub const CLONE_PIDFD: u64 = 0x1000;
    /// Traced (ignored).
    pub const CLONE_PTRACE: u64 = 0x2000;
    /// The parent sleeps until the child execs or exits.
    pub const CLONE_VFORK: u64 = 0x4000;
    /// The child's parent is the caller's parent.
    pub const CLONE_PARENT: u64 = 0x8000;
    /// Same thread group.
    pub const CLONE_THREAD: u64 = 0x1_0000;
    /// New mount namespace (unsupported).
    pub const CLONE_NEWNS: u64 = 0x2_0000;
    /// Share System V semaphore undo lists (ignored).
    pub const CLONE_SYSVSEM: u64 = 0x4_0000;
    /// Set the TLS (FS base).
    pub const CLONE_SETTLS: u64 = 0x8_0000;
    /// Write the tid into the parent's memory.
    pub const CLONE_PARENT_SETTID: u64 = 0x10_0000;
    /// Clear (and futex-wake) the tid in the child's memory at exit.
    pub const CLONE_CHILD_CLEARTID: u64 = 0x20_0000;
    /// Ignored.
    pub const CLONE_DETACHED: u64 = 0x40_0000;
    /// Ignored.
    pub const CLONE_UNTRACED: u64 = 0x80_0000;
    /// Write the tid into the child's memory.
    pub const CLONE_CHILD_SETTID: u64 = 0x100_0000;
    /// Namespaces (unsupported): every `CLONE_NEW*` but `CLONE_NEWNS`.
    pub const CLONE_NEW_OTHERS: u64 = 0x0200_0000
        | 0x0400_0000
        | 0x0800_0000
        | 0x1000_0000
        | 0x2000_0000
        | 0x4000_0000
        | 0x0000_0080;
    /// Keep `CLONE_IO` (ignored).
    pub const CLONE_IO: u64 = 0x8000_0000;
}

/// The arguments of `clone`/`clone3`/`fork`/`vfork`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneArgs {
    /// `CLONE_*` flags (without the exit signal).
    pub flags: u64,
    /// The child's stack pointer (0: the parent's).
    pub stack: u64,
    /// `CLONE_PARENT_SETTID` address.
    pub parent_tid: u64,
    /// `CLONE_CHILD_SETTID`/`CLONE_CHILD_CLEARTID` address.
    pub child_tid: u64,
    /// `CLONE_SETTLS` value.
    pub tls: u64,
    /// The signal the parent gets when the child exits.
    pub exit_signal: i32,
}

/// `RLIMIT_NPROC`.
const RLIMIT_NPROC: usize = 6;

/// Creates a task as `clone` describes; returns the new thread id.
pub fn do_clone(t: &Task, a: &CloneArgs) -> Result<i32, Errno> {
    use clone_flags::*;
    let f = a.flags;
    if (f & CLONE_THREAD != 0 && f & CLONE_SIGHAND == 0)
        || (f & CLONE_SIGHAND != 0 && f & CLONE_VM == 0)
        || !(0..=64).contains(&a.exit_signal)
    {
        return Err(Errno::EINVAL);
    }
    if f & (CLONE_NEW_OTHERS | CLONE_NEWNS) != 0 {
        return Err(Errno::EPERM);
    }
    let kernel = t.kernel().clone();
    let parent_tg = t.thread_group().clone();
    if parent_tg.is_exiting() {
        return Err(Errno::ERESTARTNOINTR);
    }
    let creds = t.creds();
    if f & CLONE_THREAD == 0 && creds.uid != 0 {
        let limit = parent_tg.rlimit(RLIMIT_NPROC).map_or(u64::MAX, |l| l.cur);
        let count = kernel
            .pids()
            .into_iter()
            .filter_map(|p| kernel.thread_group(p))
            .filter(|g| !g.is_dead() && g.uid() == creds.uid)
            .count() as u64;
        if count >= limit {
            return Err(Errno::EAGAIN);
        }
    }
    let tid = kernel.alloc_tid();
    let (tg, mm) = if f & CLONE_THREAD != 0 {
        (parent_tg.clone(), t.mm())
    } else {
        let g = ThreadGroup::new(tid, parent_tg.tgid());
        g.copy_actions_from(&parent_tg);
        g.inherit_container(&parent_tg);
        g.set_pgid(parent_tg.pgid());
        g.set_sid(parent_tg.sid());
        kernel.terminals().inherit(parent_tg.tgid(), tid);
        g.set_exit_signal(a.exit_signal);
        g.set_uid(creds.uid);
        let mm = if f & CLONE_VM != 0 {
            t.mm()
        } else {
            let space = kernel.platform().new_address_space().map_err(|e| {
                tracing::error!("creating an address space: {e}");
                Errno::ENOMEM
            })?;
            Arc::new(t.mm().fork(space)?)
        };
        (g, mm)
    };
    let fds = if f & CLONE_FILES != 0 {
        t.fd_table()
    } else {
        Arc::new(t.fd_table().fork())
    };
    let fs = if f & CLONE_FS != 0 {
        t.fs_context()
    } else {
        Arc::new(t.fs_context().fork())
    };
    // Linux ignores a bad pointer here (the write just does not happen).
    if f & CLONE_CHILD_SETTID != 0 {
        let _ = mm.write_obj(a.child_tid, &tid);
    }
    if f & CLONE_PARENT_SETTID != 0 {
        let _ = t.mm().write_obj(a.parent_tid, &tid);
    }
    let child = Task::new_clone(t, tid, tg.clone(), mm, fds, fs)?;
    {
        let mut r = child.regs();
        r.gp.rax = 0;
        if a.stack != 0 {
            r.gp.rsp = a.stack;
        }
        if f & CLONE_SETTLS != 0 {
            r.gp.fs_base = a.tls;
            r.gp.fs = 0;
        }
    }
    if f & CLONE_VM != 0 && f & CLONE_VFORK == 0 {
        child.set_altstack(super::SigAltStack {
            flags: super::signal::SS_DISABLE,
            ..Default::default()
        });
    }
    if f & CLONE_CHILD_CLEARTID != 0 {
        child.set_clear_child_tid(a.child_tid);
    }
    if f & CLONE_THREAD == 0 {
        let parent = if f & CLONE_PARENT != 0 {
            parent_tg.parent().unwrap_or_else(|| parent_tg.clone())
        } else {
            parent_tg.clone()
        };
        tg.set_parent(&parent);
        parent.add_child(tg.clone());
    }
    let vfork = (f & CLONE_VFORK != 0).then(|| Arc::new(Waker::default()));
    child.set_vfork_done(vfork.clone());
    let handle = super::task::spawn(child.clone()).map_err(|e| {
        tracing::error!("cannot start a task thread: {e}");
        Errno::EAGAIN
    });
    let handle = match handle {
        Ok(h) => h,
        Err(e) => {
            // Undo: the task never ran.
            child.exit_thread(0);
            kernel.unregister_task(tid);
            tg.task_exited(tid, 0);
            if f & CLONE_THREAD == 0 {
                if let Some(p) = tg.parent() {
                    p.remove_child(tid);
                }
                kernel.unregister_group(tid);
            }
            return Err(e);
        }
    };
    kernel.track_thread(handle);
    if let Some(w) = vfork {
        loop {
            let seen = w.seq();
            if !child.vfork_pending() || t.should_stop() {
                break;
            }
            w.wait(seen, None);
        }
    }
    Ok(tid)
}

/// Which children a `wait` looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitWho {
    /// Any child.
    Any,
    /// The child with this pid.
    Pid(i32),
    /// Any child in this process group.
    Pgid(i32),
}

/// `WNOHANG`.
pub const WNOHANG: u32 = 1;
/// `WUNTRACED`/`WSTOPPED`.
pub const WSTOPPED: u32 = 2;
/// `WEXITED`.
pub const WEXITED: u32 = 4;
/// `WCONTINUED`.
pub const WCONTINUED: u32 = 8;
/// `WNOWAIT`.
pub const WNOWAIT: u32 = 0x0100_0000;
/// `__WNOTHREAD`.
pub const WNOTHREAD: u32 = 0x2000_0000;
/// `__WALL`.
pub const WALL: u32 = 0x4000_0000;
/// `__WCLONE`.
pub const WCLONE: u32 = 0x8000_0000;

/// What a `wait` found.
#[derive(Debug, Clone, Copy)]
pub struct WaitResult {
    /// The child's pid.
    pub pid: i32,
    /// Its uid.
    pub uid: u32,
    /// `CLD_*`.
    pub code: i32,
    /// `si_status`: exit code or signal.
    pub status: i32,
    /// The `wait4` status word.
    pub wstatus: i32,
    /// The child's CPU time with that of its own reaped children (the `rusage` of
    /// `wait4`/`waitid`, Linux's `RUSAGE_BOTH`).
    pub usage: super::cpu::CpuTimes,
}

/// Waits for a child state change as `wait4`/`waitid` do; `Ok(None)` with `WNOHANG`
/// when nothing changed yet.
pub fn do_wait(t: &Task, who: WaitWho, options: u32) -> Result<Option<WaitResult>, Errno> {
    let tg = t.thread_group().clone();
    let kernel = t.kernel().clone();
    let res = t.block_on(None, || {
        let _notify = kernel.exit_notify_lock();
        let children: Vec<Arc<ThreadGroup>> = tg
            .children()
            .into_iter()
            .filter(|c| match who {
                WaitWho::Any => true,
                WaitWho::Pid(p) => c.tgid() == p,
                WaitWho::Pgid(g) => c.pgid() == g,
            })
            .filter(|c| {
                options & WALL != 0 || ((c.exit_signal() != SIGCHLD) == (options & WCLONE != 0))
            })
            .collect();
        if children.is_empty() {
            return Some(Err(Errno::ECHILD));
        }
        for c in &children {
            if options & WEXITED != 0 && c.is_exit_notified() && !c.is_reaped() {
                let st = c.exit_status().unwrap_or(ExitStatus::Exited(0));
                let (code, status, wstatus) = exit_codes(st);
                let usage = c.cpu_times() + c.children_cpu_times();
                if options & WNOWAIT == 0 {
                    if tg.remove_child(c.tgid()).is_none() {
                        continue;
                    }
                    tg.add_children_cpu(usage);
                    reap(&kernel, c);
                }
                return Some(Ok(Some(WaitResult {
                    pid: c.tgid(),
                    uid: c.uid(),
                    code,
                    status,
                    wstatus,
                    usage,
                })));
            }
            let mut j = c.job();
            if options & WSTOPPED != 0
                && let Some(sig) = j.report_stop
            {
                if options & WNOWAIT == 0 {
                    j.report_stop = None;
                }
                return Some(Ok(Some(WaitResult {
                    pid: c.tgid(),
                    uid: c.uid(),
                    code: CLD_STOPPED,
                    status: sig,
                    wstatus: (sig << 8) | 0x7f,
                    usage: c.cpu_times() + c.children_cpu_times(),
                })));
            }
            if options & WCONTINUED != 0 && j.report_cont {
                if options & WNOWAIT == 0 {
                    j.report_cont = false;
                }
                return Some(Ok(Some(WaitResult {
                    pid: c.tgid(),
                    uid: c.uid(),
                    code: CLD_CONTINUED,
                    status: SIGCONT,
                    wstatus: 0xffff,
                    usage: c.cpu_times() + c.children_cpu_times(),
                })));
            }
        }
        if options & WNOHANG != 0 {
            return Some(Ok(None));
        }
        None
    });
    match res {
        Err(Errno::EINTR) => Err(Errno::ERESTARTSYS),
        r => r,
    }
}

/// Kills every other thread of `t`'s process and waits for them to finish (`execve`).
pub fn kill_other_threads(t: &Task) {
    let others: Vec<Arc<Task>> = t
        .thread_group()
        .tasks()
        .into_iter()
        .filter(|o| o.tid() != t.tid())
        .collect();
    for o in &others {
        o.exit_thread(0);
        o.interrupt();
    }
    for o in &others {
        if !o.wait_finished(t) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use linux_abi::sysno::{SYS_NANOSLEEP, SYS_POLL, SYS_READ, SYS_WAIT4};

    use super::*;

    #[test]
    fn interrupted_calls_get_linux_restart_codes() {
        let eintr = Errno::EINTR.as_return();
        assert_eq!(
            restart_code(SYS_READ, eintr),
            Errno::ERESTARTSYS.as_return()
        );
        assert_eq!(
            restart_code(SYS_WAIT4, eintr),
            Errno::ERESTARTSYS.as_return()
        );
        assert_eq!(
            restart_code(SYS_POLL, eintr),
            Errno::ERESTARTNOHAND.as_return()
        );
        // Calls that chose their own code, and successes, pass through.
        assert_eq!(restart_code(SYS_NANOSLEEP, eintr), eintr);
        assert_eq!(restart_code(SYS_READ, 5), 5);
        assert!(is_restart(Errno::ERESTART_RESTARTBLOCK));
        assert!(!is_restart(Errno::EINTR));
    }

    #[test]
    fn exit_statuses_encode_like_wait() {
        assert_eq!(exit_codes(ExitStatus::Exited(3)), (CLD_EXITED, 3, 0x300));
        assert_eq!(exit_codes(ExitStatus::Signaled(9)), (CLD_KILLED, 9, 9));
    }
}
