//! Signal system calls: actions, masks, the alternate stack, pending and waiting for
//! signals, sending them (`kill`, `tkill`, `tgkill`, `rt_sigqueueinfo`), returning from
//! handlers (`rt_sigreturn`), `pause` and `restart_syscall`. Delivery itself happens in
//! [`crate::kernel::process`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use linux_abi::Errno;
use linux_abi::signal::{SI_TKILL, SI_USER, SIGCONT, SIGKILL, SIGSTOP, SigInfo};

use super::SyscallEntry;
use crate::kernel::signal::{SS_DISABLE, SS_ONSTACK, UNBLOCKABLE, sig_bit};
use crate::kernel::{SigAction, SigAltStack, Task, ThreadGroup, sigframe};

/// The signal system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_RT_SIGACTION => rt_sigaction(Signal, Ptr, Ptr, Uint) = sys_rt_sigaction;
    SYS_RT_SIGPROCMASK => rt_sigprocmask(Int, Ptr, Ptr, Uint) = sys_rt_sigprocmask;
    SYS_RT_SIGRETURN => rt_sigreturn() = sys_rt_sigreturn;
    SYS_SIGALTSTACK => sigaltstack(Ptr, Ptr) = sys_sigaltstack;
    SYS_RT_SIGPENDING => rt_sigpending(Ptr, Uint) = sys_rt_sigpending;
    SYS_RT_SIGSUSPEND => rt_sigsuspend(Ptr, Uint) = sys_rt_sigsuspend;
    SYS_RT_SIGTIMEDWAIT => rt_sigtimedwait(Ptr, Ptr, Ptr, Uint) = sys_rt_sigtimedwait;
    SYS_RT_SIGQUEUEINFO => rt_sigqueueinfo(Int, Signal, Ptr) = sys_rt_sigqueueinfo;
    SYS_RT_TGSIGQUEUEINFO => rt_tgsigqueueinfo(Int, Int, Signal, Ptr) = sys_rt_tgsigqueueinfo;
    SYS_PAUSE => pause() = sys_pause;
    SYS_RESTART_SYSCALL => restart_syscall() = sys_restart_syscall;
    SYS_KILL => kill(Int, Signal) = sys_kill;
    SYS_TKILL => tkill(Int, Signal) = sys_tkill;
    SYS_TGKILL => tgkill(Int, Int, Signal) = sys_tgkill;
];

const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;
const SS_AUTODISARM: i32 = 1 << 31;
const MINSIGSTKSZ: u64 = 2048;

fn valid_signal(sig: i32) -> bool {
    (1..=64).contains(&sig)
}

/// `rt_sigaction(sig, act, oldact, sigsetsize)`.
pub fn sys_rt_sigaction(
    t: &Task,
    sig: i32,
    act: u64,
    oldact: u64,
    setsize: u64,
) -> Result<u64, Errno> {
    if setsize != 8 || !valid_signal(sig) {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let tg = t.thread_group();
    let old = if act != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let mut new: SigAction = mm.read_obj(act)?;
        new.mask &= !UNBLOCKABLE;
        let old = tg.set_action(sig, new);
        // Setting SIG_IGN (or SIG_DFL for a signal ignored by default) discards it
        // where it is pending.
        let now_ignored = new.handler == crate::kernel::signal::SIG_IGN
            || (new.handler == crate::kernel::signal::SIG_DFL
                && crate::kernel::signal::default_action(sig)
                    == crate::kernel::signal::DefaultAction::Ignore);
        if now_ignored {
            tg.shared_pending().discard(sig_bit(sig));
            for task in tg.tasks() {
                task.pending().discard(sig_bit(sig));
            }
        }
        old
    } else {
        tg.action(sig)
    };
    if oldact != 0 {
        mm.write_obj(oldact, &old)?;
    }
    Ok(0)
}

/// `rt_sigprocmask(how, set, oldset, sigsetsize)`.
pub fn sys_rt_sigprocmask(
    t: &Task,
    how: i32,
    set: u64,
    oldset: u64,
    setsize: u64,
) -> Result<u64, Errno> {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let old = t.sigmask();
    if set != 0 {
        let s: u64 = mm.read_obj(set)?;
        let new = match how {
            SIG_BLOCK => old | s,
            SIG_UNBLOCK => old & !s,
            SIG_SETMASK => s,
            _ => return Err(Errno::EINVAL),
        };
        t.set_sigmask(new);
    }
    if oldset != 0 {
        mm.write_obj(oldset, &old)?;
    }
    Ok(0)
}

/// `sigaltstack(ss, old_ss)`.
pub fn sys_sigaltstack(t: &Task, ss: u64, old_ss: u64) -> Result<u64, Errno> {
    let mm = t.mm();
    let old = t.altstack();
    let sp = t.regs().gp.rsp;
    let on = sigframe::on_altstack(&old, sp);
    if ss != 0 {
        let new: SigAltStack = mm.read_obj(ss)?;
        if on {
            return Err(Errno::EPERM);
        }
        let mode = new.flags & !SS_AUTODISARM;
        if mode != 0 && mode != SS_DISABLE && mode != SS_ONSTACK {
            return Err(Errno::EINVAL);
        }
        if mode == SS_DISABLE {
            t.set_altstack(SigAltStack {
                flags: SS_DISABLE,
                ..Default::default()
            });
        } else {
            if new.size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            t.set_altstack(SigAltStack {
                flags: new.flags & SS_AUTODISARM,
                ..new
            });
        }
    }
    if old_ss != 0 {
        let report = SigAltStack {
            flags: sigframe::altstack_flags(&old, sp) | (old.flags & SS_AUTODISARM),
            ..old
        };
        mm.write_obj(old_ss, &report)?;
    }
    Ok(0)
}

/// `rt_sigreturn()`: restores the registers, mask and alternate stack a handler's frame
/// saved; the return value is the restored `rax`.
pub fn sys_rt_sigreturn(t: &Task) -> Result<u64, Errno> {
    let mm = t.mm();
    let res = {
        let mut regs = t.regs();
        sigframe::restore_frame(&mm, &mut regs)
    };
    match res {
        Ok(r) => {
            t.set_sigmask(r.mask);
            let cur = t.altstack();
            let sp = t.regs().gp.rsp;
            if !sigframe::on_altstack(&cur, sp) && r.altstack.flags & SS_DISABLE == 0 {
                let flags = r.altstack.flags & SS_AUTODISARM;
                if r.altstack.size >= MINSIGSTKSZ {
                    t.set_altstack(SigAltStack {
                        flags,
                        ..r.altstack
                    });
                }
            }
            Ok(t.regs().gp.rax)
        }
        Err(_) => {
            t.force_signal(SigInfo::new(
                linux_abi::signal::SIGSEGV,
                linux_abi::signal::SI_KERNEL,
            ));
            Ok(t.regs().gp.rax)
        }
    }
}

/// `rt_sigpending(set, sigsetsize)`: pending signals that are blocked.
pub fn sys_rt_sigpending(t: &Task, set: u64, setsize: u64) -> Result<u64, Errno> {
    if setsize > 8 {
        return Err(Errno::EINVAL);
    }
    let pending = (t.pending().set() | t.thread_group().shared_pending_set()) & t.sigmask();
    t.mm().write_obj(set, &pending)?;
    Ok(0)
}

/// Blocks until a signal is deliverable (or the task must stop).
fn wait_for_signal(t: &Task) {
    let _ = t.block_on::<()>(None, || None);
}

/// `rt_sigsuspend(mask, sigsetsize)`: waits with `mask` installed until a handler runs;
/// the old mask comes back when the handler returns.
pub fn sys_rt_sigsuspend(t: &Task, mask: u64, setsize: u64) -> Result<u64, Errno> {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = t.mm().read_obj(mask)?;
    let old = t.sigmask();
    *t.saved_mask() = Some(old);
    t.set_sigmask(m);
    wait_for_signal(t);
    Err(Errno::ERESTARTNOHAND)
}

/// `pause()`.
pub fn sys_pause(t: &Task) -> Result<u64, Errno> {
    wait_for_signal(t);
    Err(Errno::ERESTARTNOHAND)
}

/// `restart_syscall()`: continues a sleep interrupted by a signal that ran no handler.
pub fn sys_restart_syscall(t: &Task) -> Result<u64, Errno> {
    match t.take_restart() {
        Some(f) => f(t),
        None => Err(Errno::EINTR),
    }
}

/// `rt_sigtimedwait(set, info, timeout, sigsetsize)`: takes a pending signal of `set`.
pub fn sys_rt_sigtimedwait(
    t: &Task,
    set: u64,
    info: u64,
    timeout: u64,
    setsize: u64,
) -> Result<u64, Errno> {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let wanted: u64 = mm.read_obj::<u64>(set)? & !UNBLOCKABLE;
    let deadline = if timeout == 0 {
        None
    } else {
        let ts: linux_abi::types::Timespec = mm.read_obj(timeout)?;
        if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Instant::now().checked_add(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    };
    let tg = t.thread_group().clone();
    let take = || {
        let got = t.pending().take(wanted);
        got.or_else(|| tg.shared_pending().take(wanted))
    };
    // While waiting, the wanted signals count as unblocked only for this wait: block
    // them so that they stay queued (they normally are already).
    let res = t.block_on(deadline, || take().map(Ok));
    let got = match res {
        Ok(i) => i,
        Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
        Err(e) => {
            // A signal outside the set may have arrived; check the set once more.
            match take() {
                Some(i) => i,
                None => return Err(e),
            }
        }
    };
    if info != 0 {
        mm.write_obj(info, &got)?;
    }
    Ok(got.signo as u64)
}

fn kill_info(t: &Task, sig: i32, code: i32) -> SigInfo {
    let mut info = SigInfo::new(sig, code);
    info.set_pid_uid(t.tgid(), t.creds().uid);
    info
}

/// Whether `t` may signal process `g`: same real or effective uid, privilege, or
/// `SIGCONT` within the session.
fn may_signal(t: &Task, g: &ThreadGroup, sig: i32) -> bool {
    let c = t.creds();
    c.has_cap(crate::kernel::CAP_KILL)
        || c.uid == g.uid()
        || c.euid == g.uid()
        || (sig == SIGCONT && g.sid() == t.thread_group().sid())
}

fn send_to(t: &Task, g: &Arc<ThreadGroup>, info: SigInfo) -> Result<(), Errno> {
    if g.is_reaped() {
        return Err(Errno::ESRCH);
    }
    if !may_signal(t, g, info.signo) {
        return Err(Errno::EPERM);
    }
    if info.signo != 0 {
        g.send_signal(info);
    }
    Ok(())
}

/// `kill(pid, sig)`: one process, the caller's group (0), every process but PID 1 and
/// the caller (-1), or a process group (< -1).
pub fn sys_kill(t: &Task, pid: i32, sig: i32) -> Result<u64, Errno> {
    if sig != 0 && !valid_signal(sig) {
        return Err(Errno::EINVAL);
    }
    let info = kill_info(t, sig, SI_USER);
    let k = t.kernel();
    if pid > 0 {
        let g = k.thread_group(pid).ok_or(Errno::ESRCH)?;
        send_to(t, &g, info)?;
        return Ok(0);
    }
    let groups: Vec<Arc<ThreadGroup>> = k
        .pids()
        .into_iter()
        .filter_map(|p| k.thread_group(p))
        .filter(|g| !g.is_dead())
        .collect();
    let targets: Vec<&Arc<ThreadGroup>> = match pid {
        0 => {
            let pg = t.thread_group().pgid();
            groups.iter().filter(|g| g.pgid() == pg).collect()
        }
        -1 => groups
            .iter()
            .filter(|g| g.tgid() != 1 && g.tgid() != t.tgid())
            .collect(),
        p if p == i32::MIN => return Err(Errno::ESRCH),
        p => groups.iter().filter(|g| g.pgid() == -p).collect(),
    };
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    let mut ok = false;
    let mut err = Errno::ESRCH;
    for g in targets {
        match send_to(t, g, info) {
            Ok(()) => ok = true,
            Err(e) => err = e,
        }
    }
    if ok { Ok(0) } else { Err(err) }
}

fn send_thread(t: &Task, task: &Arc<Task>, info: SigInfo) -> Result<u64, Errno> {
    if !may_signal(t, task.thread_group(), info.signo) {
        return Err(Errno::EPERM);
    }
    if info.signo != 0 {
        task.send_signal(info);
    }
    Ok(0)
}

/// `tkill(tid, sig)`.
pub fn sys_tkill(t: &Task, tid: i32, sig: i32) -> Result<u64, Errno> {
    if tid <= 0 || (sig != 0 && !valid_signal(sig)) {
        return Err(Errno::EINVAL);
    }
    let task = t.kernel().task(tid).ok_or(Errno::ESRCH)?;
    send_thread(t, &task, kill_info(t, sig, SI_TKILL))
}

/// `tgkill(tgid, tid, sig)`.
pub fn sys_tgkill(t: &Task, tgid: i32, tid: i32, sig: i32) -> Result<u64, Errno> {
    if tgid <= 0 || tid <= 0 || (sig != 0 && !valid_signal(sig)) {
        return Err(Errno::EINVAL);
    }
    let task = t.kernel().task(tid).ok_or(Errno::ESRCH)?;
    if task.tgid() != tgid {
        return Err(Errno::ESRCH);
    }
    send_thread(t, &task, kill_info(t, sig, SI_TKILL))
}

/// Reads a caller-supplied siginfo; only negative codes (as from `sigqueue`) may be
/// forged by an unprivileged caller for another process.
fn user_info(t: &Task, sig: i32, uinfo: u64, target: i32) -> Result<SigInfo, Errno> {
    if !valid_signal(sig) {
        return Err(Errno::EINVAL);
    }
    let mut info: SigInfo = t.mm().read_obj(uinfo)?;
    if (info.code >= 0 || info.code == SI_TKILL) && target != t.tgid() {
        return Err(Errno::EPERM);
    }
    info.signo = sig;
    Ok(info)
}

/// `pidfd_send_signal` without a siginfo: `kill` to process `g`.
pub fn sys_kill_group(t: &Task, g: &Arc<ThreadGroup>, sig: i32) -> Result<u64, Errno> {
    if sig != 0 && !valid_signal(sig) {
        return Err(Errno::EINVAL);
    }
    send_to(t, g, kill_info(t, sig, SI_USER)).map(|()| 0)
}

/// `pidfd_send_signal` with a siginfo: `rt_sigqueueinfo` to process `g`.
/// Unlike `rt_sigqueueinfo`, the siginfo's own signal number must be `sig` (`EINVAL`).
pub fn sys_queue_group(t: &Task, g: &Arc<ThreadGroup>, sig: i32, uinfo: u64) -> Result<u64, Errno> {
    let signo: i32 = t.mm().read_obj(uinfo)?;
    if signo != sig {
        return Err(Errno::EINVAL);
    }
    let info = user_info(t, sig, uinfo, g.tgid())?;
    send_to(t, g, info).map(|()| 0)
}

/// `rt_sigqueueinfo(tgid, sig, info)`.
pub fn sys_rt_sigqueueinfo(t: &Task, tgid: i32, sig: i32, uinfo: u64) -> Result<u64, Errno> {
    let info = user_info(t, sig, uinfo, tgid)?;
    let g = t.kernel().thread_group(tgid).ok_or(Errno::ESRCH)?;
    send_to(t, &g, info).map(|()| 0)
}

/// `rt_tgsigqueueinfo(tgid, tid, sig, info)`.
pub fn sys_rt_tgsigqueueinfo(
    t: &Task,
    tgid: i32,
    tid: i32,
    sig: i32,
    uinfo: u64,
) -> Result<u64, Errno> {
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let info = user_info(t, sig, uinfo, tgid)?;
    let task = t.kernel().task(tid).ok_or(Errno::ESRCH)?;
    if task.tgid() != tgid {
        return Err(Errno::ESRCH);
    }
    send_thread(t, &task, info)
}
