//! Tasks (application threads) and the task loop.
//!
//! A [`Task`] is one application thread. [`spawn`] starts its loop on a dedicated host
//! thread: switch into the application with the platform context, then handle the trap:
//!
//! - `Syscall`: dispatch through [`crate::syscalls::dispatch`] and set `rax`;
//! - `Fault`: let the memory manager page in ([`MemoryManager::handle_fault`]); an invalid
//!   access kills the process with `SIGSEGV`;
//! - `Signal`: a synchronous exception is forced on the task (its handler runs, or the
//!   process dies if it is blocked or ignored, as Linux `force_sig`);
//! - `Interrupted`: someone wants the task's attention (a signal, an exit, a stop).
//!
//! Before each switch back into the application the task handles its pending signals
//! ([`super::process`]): default actions, group stop, handler frames, and the restart of
//! an interrupted system call. The loop ends when the task calls `exit`, or its thread
//! group exits (`exit_group`, a fatal signal).
//!
//! A task blocked in a system call waits on its [`Waker`]; senders of signals and every
//! event a blocking call waits for ring it.

use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Instant;

use linux_abi::Errno;
use linux_abi::signal::{SIGKILL, SIGSEGV};
use platform::{Context, Registers, Trap};

use super::signal::{SigAltStack, SigQueue, SigSet};
use super::{Credentials, Kernel, ThreadGroup};
use crate::fs::{FdTable, FsContext, VfsPath};
use crate::mm::{FaultSignal, MappableFile, MemoryManager};
use crate::{ExitStatus, SentryError};

/// How the loader opens executables and interpreters ([`super::VfsExec`] in production).
pub trait ExecSource: Send + Sync + std::fmt::Debug {
    /// Opens `path` (relative to the task's working directory) for execution: checks it
    /// is a regular file the task may execute, and returns it for reading and mapping.
    fn open_exec(&self, t: &Task, path: &[u8]) -> Result<ExecImage, Errno>;
}

/// An executable opened by an [`ExecSource`].
#[derive(Debug, Clone)]
pub struct ExecImage {
    /// The file, read and mapped by the loader.
    pub file: Arc<dyn MappableFile>,
    /// Its location in the VFS (for `/proc/<pid>/exe`), if it has one.
    pub path: Option<VfsPath>,
}

/// What `/proc` shows about the program a process runs.
#[derive(Debug, Clone, Default)]
pub struct ProgramInfo {
    /// The executable (`/proc/<pid>/exe`).
    pub exe: Option<VfsPath>,
    /// The argument strings on the initial stack (`/proc/<pid>/cmdline`).
    pub args: (u64, u64),
    /// The environment strings on the initial stack (`/proc/<pid>/environ`).
    pub env: (u64, u64),
}

/// The per-task sleeping place: blocking calls wait on it, events and signals ring it
/// (shared with [`crate::waiter`], so that pipes, sockets and polls sleep on it too).
pub use crate::waiter::Waker;

/// The callback `restart_syscall` runs (a sleep's remaining time, kept by the sleep).
pub type RestartFn = Box<dyn Fn(&Task) -> Result<u64, Errno> + Send>;

/// One application thread.
#[derive(Debug)]
pub struct Task {
    /// The thread id (changes once if a non-leader thread calls `execve`: it takes the
    /// leader's id).
    tid: AtomicI32,
    tg: Arc<ThreadGroup>,
    kernel: Arc<Kernel>,
    context: Arc<dyn Context>,
    regs: Mutex<Registers>,
    mm: Mutex<Arc<MemoryManager>>,
    creds: Mutex<Credentials>,
    fd_table: Mutex<Arc<FdTable>>,
    fs_context: Mutex<Arc<FsContext>>,
    program: Mutex<ProgramInfo>,
    comm: Mutex<Vec<u8>>,
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID` address.
    clear_child_tid: AtomicU64,
    /// `set_robust_list` head and length.
    robust_list: Mutex<(u64, u64)>,
    sigmask: AtomicU64,
    altstack: Mutex<SigAltStack>,
    /// Set by `exit` (this thread only).
    thread_exit: AtomicBool,
    exit_code: AtomicU64,
    pdeathsig: AtomicI32,
    start: Instant,
    /// Thread-directed pending signals.
    pending: Mutex<SigQueue>,
    /// The mask to restore after `rt_sigsuspend` (or `ppoll`/`pselect`) is interrupted.
    saved_mask: Mutex<Option<SigSet>>,
    waker: Arc<Waker>,
    restart: Mutex<Option<RestartFnBox>>,
    /// Set while a `vfork` parent waits for this child to exec or exit.
    vfork_done: Mutex<Option<Arc<Waker>>>,
    /// Set when the task has finished (`vfork` and `execve` wait for it).
    finished: AtomicBool,
    /// Notified (`POLLHUP`) once `finished` is set.
    finished_queue: crate::waiter::WaitQueue,
    /// User and system CPU time ([`super::cpu`]).
    acct: super::cpu::TaskAcct,
    /// Whether the task is running application code now.
    in_app: AtomicBool,
    /// Nice value, policy, affinity, timer slack.
    sched: Mutex<super::sched::SchedParams>,
}

/// A boxed [`RestartFn`] with a `Debug` implementation.
pub struct RestartFnBox(pub RestartFn);

impl std::fmt::Debug for RestartFnBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestartFn")
    }
}

/// What differs between a new process's first task and a `clone`d one; every other
/// field of [`Task`] starts the same way for both.
struct TaskSeed {
    tid: i32,
    tg: Arc<ThreadGroup>,
    context: Arc<dyn Context>,
    regs: Registers,
    mm: Arc<MemoryManager>,
    creds: Credentials,
    fd_table: Arc<FdTable>,
    fs_context: Arc<FsContext>,
    program: ProgramInfo,
    comm: Vec<u8>,
    sigmask: SigSet,
    altstack: SigAltStack,
    sched: super::sched::SchedParams,
}

impl Task {
    /// Builds a task from `seed` with every other field in its initial state, and
    /// registers it with its thread group and the kernel.
    fn assemble(kernel: &Arc<Kernel>, seed: TaskSeed) -> Arc<Task> {
        seed.mm.attach();
        let t = Arc::new(Task {
            tid: AtomicI32::new(seed.tid),
            tg: seed.tg.clone(),
            kernel: kernel.clone(),
            context: seed.context,
            regs: Mutex::new(seed.regs),
            mm: Mutex::new(seed.mm),
            creds: Mutex::new(seed.creds),
            fd_table: Mutex::new(seed.fd_table),
            fs_context: Mutex::new(seed.fs_context),
            program: Mutex::new(seed.program),
            comm: Mutex::new(seed.comm),
            clear_child_tid: AtomicU64::new(0),
            robust_list: Mutex::new((0, 0)),
            sigmask: AtomicU64::new(seed.sigmask),
            altstack: Mutex::new(seed.altstack),
            thread_exit: AtomicBool::new(false),
            exit_code: AtomicU64::new(0),
            pdeathsig: AtomicI32::new(0),
            start: Instant::now(),
            pending: Mutex::new(SigQueue::default()),
            saved_mask: Mutex::new(None),
            waker: Arc::new(Waker::default()),
            restart: Mutex::new(None),
            vfork_done: Mutex::new(None),
            finished: AtomicBool::new(false),
            finished_queue: crate::waiter::WaitQueue::new(),
            acct: super::cpu::TaskAcct::default(),
            in_app: AtomicBool::new(false),
            sched: Mutex::new(seed.sched),
        });
        seed.tg.add_task(&t);
        kernel.register_task(&t);
        t
    }

    /// Creates the first task of a new thread group, with a fresh empty memory manager,
    /// the descriptor table `fd_table` and the filesystem context `fs_context`.
    pub fn new_process(
        kernel: &Arc<Kernel>,
        ppid: i32,
        creds: Credentials,
        fd_table: Arc<FdTable>,
        fs_context: Arc<FsContext>,
    ) -> Result<Arc<Task>, SentryError> {
        let tid = kernel.alloc_tid();
        let tg = ThreadGroup::new(tid, ppid);
        tg.set_uid(creds.uid);
        let mm = Arc::new(MemoryManager::new(kernel.platform().as_ref())?);
        let context = kernel.platform().new_context()?;
        Ok(Task::assemble(
            kernel,
            TaskSeed {
                tid,
                tg,
                context,
                regs: Registers::default(),
                mm,
                creds,
                fd_table,
                fs_context,
                program: ProgramInfo::default(),
                comm: Vec::new(),
                sigmask: 0,
                altstack: SigAltStack {
                    flags: super::signal::SS_DISABLE,
                    ..Default::default()
                },
                sched: super::sched::SchedParams::new(kernel.ncpus()),
            },
        ))
    }

    /// Creates a task for `clone`: a new thread of `tg` (with `CLONE_THREAD`) or the first
    /// task of the new process `tg`, with the given memory manager and tables, and a copy
    /// of `parent`'s registers, mask, credentials and names.
    pub(crate) fn new_clone(
        parent: &Task,
        tid: i32,
        tg: Arc<ThreadGroup>,
        mm: Arc<MemoryManager>,
        fd_table: Arc<FdTable>,
        fs_context: Arc<FsContext>,
    ) -> Result<Arc<Task>, Errno> {
        let kernel = parent.kernel.clone();
        let context = kernel.platform().new_context().map_err(|e| {
            tracing::error!("creating a context: {e}");
            Errno::EAGAIN
        })?;
        Ok(Task::assemble(
            &kernel,
            TaskSeed {
                tid,
                tg,
                context,
                regs: parent.regs().clone(),
                mm,
                creds: parent.creds(),
                fd_table,
                fs_context,
                program: parent.program(),
                comm: parent.comm(),
                sigmask: parent.sigmask(),
                altstack: parent.altstack(),
                sched: parent.sched().for_child(),
            },
        ))
    }

    /// This task's waker.
    pub fn waker(&self) -> &Arc<Waker> {
        &self.waker
    }

    /// Thread-directed pending signals.
    pub(crate) fn pending(&self) -> MutexGuard<'_, SigQueue> {
        self.pending.lock()
    }

    /// The mask saved by `rt_sigsuspend`-like calls.
    pub(crate) fn saved_mask(&self) -> MutexGuard<'_, Option<SigSet>> {
        self.saved_mask.lock()
    }

    /// Sets what `restart_syscall` runs.
    pub fn set_restart(&self, f: Option<RestartFn>) {
        *self.restart.lock() = f.map(RestartFnBox);
    }

    /// Takes what `restart_syscall` runs.
    pub fn take_restart(&self) -> Option<RestartFn> {
        self.restart.lock().take().map(|b| b.0)
    }

    /// Sets the waker a `vfork` parent waits on.
    pub(crate) fn set_vfork_done(&self, w: Option<Arc<Waker>>) {
        *self.vfork_done.lock() = w;
    }

    /// Releases a `vfork` parent (the child exec'd or exited).
    pub(crate) fn release_vfork_parent(&self) {
        if let Some(w) = self.vfork_done.lock().take() {
            w.wake();
        }
    }

    /// Whether the `vfork` parent is still waiting.
    pub(crate) fn vfork_pending(&self) -> bool {
        self.vfork_done.lock().is_some()
    }

    /// The scheduling attributes (nice, policy, affinity, timer slack).
    pub fn sched(&self) -> MutexGuard<'_, super::sched::SchedParams> {
        self.sched.lock()
    }

    /// CPU time: user plus system time ([`super::cpu`]).
    pub fn cpu_time(&self) -> std::time::Duration {
        self.acct.times().total()
    }

    /// User and system CPU time so far, the application run in progress included.
    pub fn cpu_times(&self) -> super::cpu::CpuTimes {
        self.acct.times()
    }

    /// Whether the task is running right now: application code, or a system call that
    /// is not asleep waiting for something (Linux's `R`, as opposed to `S`).
    pub fn is_running(&self) -> bool {
        self.in_app.load(Ordering::Relaxed) || !self.waker.is_sleeping()
    }

    /// Whether the task is running application code right now.
    pub(crate) fn in_app(&self) -> bool {
        self.in_app.load(Ordering::Acquire)
    }

    /// Whether the task has finished running.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Blocks `waiter` until this task has finished running. Returns false if `waiter`
    /// must stop first (it is killed or exiting). No lost wake-up: the waiter's waker is
    /// registered before the check, and [`Task::finish`] notifies after setting the flag,
    /// on every path out of the task thread (a panic included, see [`spawn`]).
    pub(crate) fn wait_finished(&self, waiter: &Task) -> bool {
        let w = waiter.waker().clone();
        let _reg = self
            .finished_queue
            .register_scoped(crate::waiter::events::POLLHUP, w.clone());
        loop {
            let seen = w.generation();
            if self.is_finished() {
                return true;
            }
            if waiter.should_stop() {
                return false;
            }
            w.sleep(seen, None);
        }
    }

    /// Whether a blocked system call must give up: the task or its process is exiting,
    /// the process is stopping, or a signal it does not block is pending.
    pub fn interrupted(&self) -> bool {
        self.should_stop() || self.tg.job().stopped || self.has_deliverable_signal()
    }

    /// Whether a signal not blocked by the mask is pending for this task.
    pub fn has_deliverable_signal(&self) -> bool {
        let allowed = !self.sigmask();
        (self.pending().set() | self.tg.shared_pending_set()) & allowed != 0
    }

    /// Blocks until `cond` returns a result, `deadline` passes (`ETIMEDOUT`) or the task
    /// is interrupted (`EINTR`; callers map it to their restart code). Whoever changes
    /// what `cond` looks at rings the waiting task's [`Waker`].
    pub fn block_on<R>(
        &self,
        deadline: Option<Instant>,
        mut cond: impl FnMut() -> Option<Result<R, Errno>>,
    ) -> Result<R, Errno> {
        loop {
            let seen = self.waker.seq();
            if let Some(r) = cond() {
                return r;
            }
            if self.interrupted() {
                return Err(Errno::EINTR);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Errno::ETIMEDOUT);
            }
            self.waker.wait(seen, deadline);
        }
    }

    /// The thread id.
    pub fn tid(&self) -> i32 {
        self.tid.load(Ordering::Relaxed)
    }

    /// This task as the caller of a file operation.
    pub fn caller(&self) -> crate::fs::Caller {
        crate::fs::Caller {
            tgid: self.tgid(),
            tid: self.tid(),
        }
    }

    /// The thread group id (process id).
    pub fn tgid(&self) -> i32 {
        self.tg.tgid()
    }

    /// The thread group.
    pub fn thread_group(&self) -> &Arc<ThreadGroup> {
        &self.tg
    }

    /// The kernel.
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }

    /// The memory manager (replaced by `execve`).
    pub fn mm(&self) -> Arc<MemoryManager> {
        self.mm.lock().clone()
    }

    /// A copy of the credentials.
    pub fn creds(&self) -> Credentials {
        self.creds.lock().clone()
    }

    /// Whether this task may inspect or modify `target` (Linux's `ptrace_may_access`
    /// with `PTRACE_MODE_REALCREDS`; without an LSM its read and attach modes agree):
    /// always within one process; otherwise the caller's real uid and gid must equal all
    /// of the target's real, effective and saved ids and the target must be dumpable,
    /// unless the caller has `CAP_SYS_PTRACE`.
    pub fn may_access(&self, target: &Task) -> bool {
        if Arc::ptr_eq(&self.tg, &target.tg) {
            return true;
        }
        let me = self.creds();
        let them = target.creds();
        let privileged = me.has_cap(super::creds::CAP_SYS_PTRACE);
        let same_ids = [them.uid, them.euid, them.suid]
            .iter()
            .all(|&u| u == me.uid)
            && [them.gid, them.egid, them.sgid]
                .iter()
                .all(|&g| g == me.gid);
        if !same_ids && !privileged {
            return false;
        }
        // SUID_DUMP_USER is 1; a process made non-dumpable is off limits too.
        privileged || target.tg.dumpable.load(Ordering::Relaxed) == 1
    }

    /// The file descriptor table.
    pub fn fd_table(&self) -> Arc<FdTable> {
        self.fd_table.lock().clone()
    }

    /// Gives the task a descriptor table of its own, a copy of the one it shares
    /// (`unshare(CLONE_FILES)`, `close_range(CLOSE_RANGE_UNSHARE)`).
    pub fn unshare_fd_table(&self) {
        let copy = Arc::new(self.fd_table().fork());
        *self.fd_table.lock() = copy;
    }

    /// Gives the task a filesystem context of its own (`unshare(CLONE_FS)`).
    pub fn unshare_fs_context(&self) {
        let copy = Arc::new(self.fs_context().fork());
        *self.fs_context.lock() = copy;
    }

    /// The filesystem context (root, working directory, umask).
    pub fn fs_context(&self) -> Arc<FsContext> {
        self.fs_context.lock().clone()
    }

    /// What the task's program is (for `/proc`).
    pub fn program(&self) -> ProgramInfo {
        self.program.lock().clone()
    }

    /// Changes the credentials with `f` (the set*id system calls).
    pub fn update_creds<R>(&self, f: impl FnOnce(&mut Credentials) -> R) -> R {
        let mut c = self.creds.lock();
        let r = f(&mut c);
        self.tg.set_uid(c.uid);
        r
    }

    /// The register state, for handlers that change it (`arch_prctl`, `execve`).
    pub fn regs(&self) -> MutexGuard<'_, Registers> {
        self.regs.lock()
    }

    /// The task name (`comm`, at most 15 bytes).
    pub fn comm(&self) -> Vec<u8> {
        self.comm.lock().clone()
    }

    /// Sets the task name, truncated to 15 bytes.
    pub fn set_comm(&self, name: &[u8]) {
        let n = name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(name.len())
            .min(15);
        *self.comm.lock() = name[..n].to_vec();
    }

    /// The `set_tid_address` pointer.
    pub fn clear_child_tid(&self) -> u64 {
        self.clear_child_tid.load(Ordering::Relaxed)
    }

    /// Sets the `set_tid_address` pointer.
    pub fn set_clear_child_tid(&self, addr: u64) {
        self.clear_child_tid.store(addr, Ordering::Relaxed);
    }

    /// The robust futex list (head, length).
    pub fn robust_list(&self) -> (u64, u64) {
        *self.robust_list.lock()
    }

    /// Sets the robust futex list.
    pub fn set_robust_list(&self, head: u64, len: u64) {
        *self.robust_list.lock() = (head, len);
    }

    /// The blocked signal mask.
    pub fn sigmask(&self) -> SigSet {
        self.sigmask.load(Ordering::Relaxed)
    }

    /// Sets the blocked signal mask (`SIGKILL` and `SIGSTOP` can never be blocked).
    pub fn set_sigmask(&self, mask: SigSet) {
        let unblockable = (1u64 << (SIGKILL - 1)) | (1u64 << (linux_abi::signal::SIGSTOP - 1));
        self.sigmask.store(mask & !unblockable, Ordering::Relaxed);
    }

    /// The alternate signal stack.
    pub fn altstack(&self) -> SigAltStack {
        *self.altstack.lock()
    }

    /// Sets the alternate signal stack.
    pub fn set_altstack(&self, s: SigAltStack) {
        *self.altstack.lock() = s;
    }

    /// The `PR_SET_PDEATHSIG` signal.
    pub fn pdeathsig(&self) -> i32 {
        self.pdeathsig.load(Ordering::Relaxed)
    }

    /// Sets the `PR_SET_PDEATHSIG` signal.
    pub fn set_pdeathsig(&self, sig: i32) {
        self.pdeathsig.store(sig, Ordering::Relaxed);
    }

    /// When the task started.
    pub fn start_time(&self) -> Instant {
        self.start
    }

    /// Forces the task out of the application (or out of a blocking call) soon: exit,
    /// kill, a signal.
    pub fn interrupt(&self) {
        self.context.interrupt();
        self.waker.wake();
    }

    /// Ends this thread with `code` (`exit`). The last thread ending ends the group.
    pub fn exit_thread(&self, code: u8) {
        self.exit_code.store(u64::from(code), Ordering::Relaxed);
        self.thread_exit.store(true, Ordering::Release);
    }

    /// Ends the whole thread group with `code` (`exit_group`).
    pub fn exit_group(&self, code: u8) {
        self.tg.begin_exit(ExitStatus::Exited(code));
    }

    pub(crate) fn should_stop(&self) -> bool {
        self.thread_exit.load(Ordering::Acquire) || self.tg.is_exiting()
    }

    /// Replaces the program of this task's process: loads `path` into a fresh memory
    /// manager and resets the registers to its entry point.
    pub fn execve(&self, path: &[u8], argv: Vec<Vec<u8>>, envp: Vec<Vec<u8>>) -> Result<(), Errno> {
        let mm = super::new_mm(&self.kernel)?;
        let image = match crate::loader::load(self, &mm, path, argv, envp) {
            Ok(image) => image,
            Err(Errno::ENXIO) => {
                // A loadable segment lies past the end of the file (a truncated binary):
                // Linux finds this after its point of no return (binfmt_elf's padzero
                // fails) and kills the process with SIGSEGV; so do we. The caller that
                // started PID 1 reports ENXIO as a truncated executable.
                super::process::kill_other_threads(self);
                self.tg.kill(linux_abi::signal::SIGSEGV);
                return Err(Errno::ENXIO);
            }
            Err(e) => return Err(e),
        };
        // The point of no return: the other threads go, this one takes the new program.
        super::process::kill_other_threads(self);
        if self.tid() != self.tgid() {
            // The leader is gone: this thread becomes the leader with its id.
            let old = self.tid();
            if let Some(me) = self.kernel.task(old) {
                self.tid.store(self.tgid(), Ordering::Relaxed);
                self.kernel.unregister_task(old);
                self.kernel.register_task(&me);
            }
        }
        self.tg.set_exec_done();
        // No set-id bits or file capabilities are honoured: the capability sets change
        // as for any other program.
        self.update_creds(|c| c.apply_exec());
        mm.attach();
        let old = std::mem::replace(&mut *self.mm.lock(), mm);
        old.detach();
        let mut regs = Registers::new_user(image.entry, image.stack_pointer);
        // Keep nothing of the old program's state.
        regs.gp.rax = 0;
        *self.regs() = regs;
        self.set_comm(&image.comm);
        *self.program.lock() = ProgramInfo {
            exe: image.exe.clone(),
            args: (image.stack.arg_start, image.stack.arg_end),
            env: (image.stack.env_start, image.stack.env_end),
        };
        for f in self.fd_table().close_on_exec() {
            f.ops().flush(&self.caller());
        }
        self.tg.reset_handlers_on_exec();
        self.tg.timers.clear(false);
        self.set_clear_child_tid(0);
        self.set_robust_list(0, 0);
        self.release_vfork_parent();
        self.set_altstack(SigAltStack {
            flags: super::signal::SS_DISABLE,
            ..Default::default()
        });
        Ok(())
    }

    /// The task loop: runs the application until the task or its group exits.
    fn run_loop(self: &Arc<Task>) {
        let weak = Arc::downgrade(self);
        crate::waiter::set_current_waker(self.waker.clone());
        crate::waiter::set_signal_pending_check(Box::new(move || {
            weak.upgrade().is_none_or(|t| t.interrupted())
        }));
        let mut spurious_fault: Option<u64> = None;
        let mut restart: Option<Errno> = None;
        // System time: the CPU time of this host thread outside the switch (it sleeps,
        // using none, while the task is blocked).
        let mut sys = super::cpu::SysMark::now();
        loop {
            self.handle_signals(restart.take());
            if self.should_stop() {
                break;
            }
            let mm = self.mm();
            let trap = {
                let mut regs = self.regs();
                self.acct.add_sys(sys.lap());
                self.in_app.store(true, Ordering::Release);
                self.acct.enter_app();
                let trap = self.context.switch(mm.address_space().as_ref(), &mut regs);
                self.acct.leave_app();
                self.in_app.store(false, Ordering::Release);
                // What the thread used inside the switch (a vCPU's guest time) is user
                // time, already counted.
                sys.lap();
                trap
            };
            match trap {
                Err(e) => {
                    tracing::error!(tid = self.tid(), "context switch failed: {e}");
                    self.tg.kill(SIGKILL);
                }
                Ok(Trap::Syscall) => {
                    let (nr, args) = {
                        let r = self.regs();
                        (r.gp.syscall_number(), r.gp.syscall_args())
                    };
                    #[cfg(test)]
                    if nr == TEST_PANIC_SYSNO {
                        panic!("test: injected panic in task {}", self.tid());
                    }
                    let mut ret =
                        super::process::restart_code(nr, crate::syscalls::dispatch(self, nr, args));
                    // The call needed memory the sandbox does not have (its error, or a
                    // short count that hid it): the OOM killer's case, as for a fault.
                    // The process never sees the return value.
                    let oom = ret == crate::mm::EOOM.as_return();
                    if self.mm().take_oom() || oom {
                        self.oom_kill();
                    }
                    if oom {
                        ret = Errno::ENOMEM.as_return();
                    }
                    // rt_sigreturn restored every register itself, rax included, and
                    // never restarts.
                    if nr != linux_abi::sysno::SYS_RT_SIGRETURN {
                        self.regs().gp.set_syscall_return(ret);
                        restart =
                            Errno::from_return(ret).filter(|e| super::process::is_restart(*e));
                    }
                }
                Ok(Trap::Fault { addr, access, ip })
                    if super::vsyscall::is_call(addr, access, ip) =>
                {
                    super::vsyscall::emulate(self, addr);
                }
                Ok(Trap::Fault { addr, access, ip }) => match mm.handle_fault(addr, access) {
                    Ok(true) => spurious_fault = None,
                    Ok(false) if spurious_fault != Some(addr) => spurious_fault = Some(addr),
                    Err(FaultSignal { signo: SIGKILL, .. }) => {
                        spurious_fault = None;
                        self.oom_kill();
                    }
                    res => {
                        spurious_fault = None;
                        // A fault that stays after being resolved once is a protection
                        // violation the platform could not classify.
                        let sig = res.err().unwrap_or(FaultSignal {
                            signo: SIGSEGV,
                            code: linux_abi::signal::SEGV_ACCERR,
                        });
                        tracing::debug!(
                            tid = self.tid(),
                            addr = format_args!("{addr:#x}"),
                            ip = format_args!("{ip:#x}"),
                            signo = sig.signo,
                            code = sig.code,
                            "bad memory access"
                        );
                        self.force_signal(linux_abi::signal::SigInfo::fault(
                            sig.signo, sig.code, addr,
                        ));
                    }
                },
                Ok(Trap::Signal(info)) => {
                    tracing::debug!(tid = self.tid(), signo = info.signo, "synchronous signal");
                    self.force_signal(info);
                }
                Ok(Trap::Interrupted) => {}
            }
        }
        self.acct.add_sys(sys.lap());
    }

    /// The sandbox is out of memory while this task touches memory (a fault, or the
    /// Sentry filling memory for it in a system call, an `execve` or a signal frame): as
    /// the memory cgroup's OOM killer, its process is killed with `SIGKILL` and one line
    /// says so; the other processes go on.
    pub(crate) fn oom_kill(&self) {
        let tg = &self.tg;
        if tg.is_exiting() {
            // Killed already (another of its threads ran out too): one line per kill.
            return;
        }
        let rss_kib = self.mm().resident_pages() * (crate::mm::PAGE / 1024);
        tracing::warn!(
            target: "sentry::oom",
            "Memory cgroup out of memory: Killed process {} ({}) total-rss:{}kB",
            tg.tgid(),
            String::from_utf8_lossy(&self.comm()),
            rss_kib
        );
        tg.kill(SIGKILL);
    }

    /// Cleans up after the loop: robust futexes, the `set_tid_address` word, the `vfork`
    /// parent, unregisters and tells the thread group (the last task ends the process).
    fn finish(self: &Arc<Task>) {
        super::process::exit_robust_list(self);
        let ctid = self.clear_child_tid();
        if ctid != 0 && self.mm().write_obj(ctid, &0u32).is_ok() {
            let _ = self
                .kernel
                .futexes()
                .wake(self, ctid, 1, super::FUTEX_BITSET_MATCH_ANY);
        }
        self.release_vfork_parent();
        self.context.release();
        // Let go of the descriptor table now, not when the last reference to the task
        // goes: the last holder closes the files and releases the process's POSIX locks
        // before its parent can learn of the exit. The last user of a table flushes its
        // files as Linux's exit does (a message queue drops the process's notification).
        let table = std::mem::take(&mut *self.fd_table.lock());
        if Arc::strong_count(&table) == 1 {
            let me = self.caller();
            for (_, f) in table.fds() {
                f.ops().flush(&me);
            }
        }
        drop(table);
        // And of the address space: the last task in it releases its memory.
        self.mm().detach();
        self.kernel.unregister_task(self.tid());
        let code = self.exit_code.load(Ordering::Relaxed) as u8;
        let times = self.cpu_times();
        self.tg.add_dead_cpu(times);
        self.kernel.cpu.add_dead(times.total());
        // Leave the thread group before saying "finished": an `execve` in another thread
        // waits for this flag and then takes over the leader's tid, and `task_exited`
        // removes entries by tid, so a late removal would drop the new leader and end the
        // process with status 0 before its new image ran.
        let last = self.tg.task_exited(self.tid(), code);
        self.finished.store(true, Ordering::Release);
        self.finished_queue.notify(crate::waiter::events::POLLHUP);
        if last {
            super::process::process_exited(self);
        }
    }
}

/// Unit tests only: a system call number that panics the task thread (to test the panic
/// policy); in a real build it is an unknown number (`ENOSYS`).
#[cfg(test)]
pub(crate) const TEST_PANIC_SYSNO: u64 = 0x7fff_0001;

/// Starts `task`'s loop on a new host thread.
///
/// Panic policy: `runsc`'s panic hook ends the whole sandbox process before any unwinding.
/// Where no hook does (unit tests, a library embedding the Sentry), a panic in the loop is
/// caught here: the kernel is ended (`Kernel::fatal`), and the task still
/// finishes, so nothing that waits for it (`execve`, `vfork`, the thread group's exit)
/// is left hanging.
pub fn spawn(task: Arc<Task>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("task-{}", task.tid()))
        .spawn(move || {
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run_loop()));
            if ran.is_err() {
                tracing::error!(tid = task.tid(), "task thread panicked: ending the sandbox");
                task.kernel.fatal();
            }
            task.finish();
        })
}
