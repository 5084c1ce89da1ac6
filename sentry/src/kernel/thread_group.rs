//! Thread groups (processes): shared signal actions, resource limits and the exit status.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use linux_abi::signal::SigInfo;

use super::cpu::CpuTimes;
use super::signal::{SigAction, SigQueue, SigSet, sig_bit};
use super::task::Task;
use crate::ExitStatus;

/// Number of resource limits (`RLIMIT_NLIMITS`).
pub const RLIM_NLIMITS: usize = 16;
/// `RLIM_INFINITY`.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// One resource limit (`struct rlimit64`).
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::Immutable,
    zerocopy::KnownLayout,
)]
pub struct Rlimit {
    /// Soft limit.
    pub cur: u64,
    /// Hard limit.
    pub max: u64,
}

fn default_rlimits() -> [Rlimit; RLIM_NLIMITS] {
    let inf = Rlimit {
        cur: RLIM_INFINITY,
        max: RLIM_INFINITY,
    };
    let mut r = [inf; RLIM_NLIMITS];
    r[3] = Rlimit {
        cur: 8 << 20,
        max: RLIM_INFINITY,
    }; // RLIMIT_STACK
    r[4] = Rlimit {
        cur: 0,
        max: RLIM_INFINITY,
    }; // RLIMIT_CORE
    r[6] = Rlimit {
        cur: 63_432,
        max: 63_432,
    }; // RLIMIT_NPROC
    r[7] = Rlimit {
        cur: 1024,
        max: 1 << 20,
    }; // RLIMIT_NOFILE
    r[8] = Rlimit {
        cur: 8 << 20,
        max: 8 << 20,
    }; // RLIMIT_MEMLOCK
    r[11] = Rlimit {
        cur: 63_432,
        max: 63_432,
    }; // RLIMIT_SIGPENDING
    r[12] = Rlimit {
        cur: 819_200,
        max: 819_200,
    }; // RLIMIT_MSGQUEUE
    r[13] = Rlimit { cur: 0, max: 0 }; // RLIMIT_NICE
    r[14] = Rlimit { cur: 0, max: 0 }; // RLIMIT_RTPRIO
    r
}

#[derive(Debug, Default)]
struct ExitState {
    /// The status once the group is exiting (first `exit_group` or fatal signal wins).
    status: Option<ExitStatus>,
    /// Live tasks of the group.
    tasks: Vec<Weak<Task>>,
    /// Set when the last task has finished.
    done: bool,
}

/// Job-control state of a process (group stop and the reports `wait` consumes).
#[derive(Debug, Default, Clone, Copy)]
pub struct JobState {
    /// The group is stopped.
    pub stopped: bool,
    /// A stop the parent has not collected yet (`WUNTRACED`): the stop signal.
    pub report_stop: Option<i32>,
    /// A continue the parent has not collected yet (`WCONTINUED`).
    pub report_cont: bool,
}

/// A thread group (a process).
#[derive(Debug)]
pub struct ThreadGroup {
    tgid: i32,
    ppid: AtomicI32,
    /// The parent process (empty for PID 1 and after the parent is gone).
    parent: Mutex<Weak<ThreadGroup>>,
    /// Children, live and zombie, until reaped.
    children: Mutex<Vec<Arc<ThreadGroup>>>,
    pgid: AtomicI32,
    sid: AtomicI32,
    /// The signal sent to the parent on exit (`SIGCHLD`, or the clone exit signal).
    exit_signal: AtomicI32,
    /// Set when the parent has collected the exit status (or it was auto-reaped).
    reaped: AtomicBool,
    /// Set once the exit has been fully processed (children reparented, parent told):
    /// only then can `wait` collect it.
    exit_notified: AtomicBool,
    /// CPU time of finished threads, and of reaped children.
    dead_cpu: super::cpu::CpuCounter,
    children_cpu: super::cpu::CpuCounter,
    /// Set once the process has called `execve` (`setpgid` on it fails then).
    exec_done: AtomicBool,
    /// Successful `execve` calls of the process (Linux's `self_exec_id`).
    exec_count: std::sync::atomic::AtomicU64,
    /// The real uid of the process (for `SIGCHLD` and `RLIMIT_NPROC`).
    uid: std::sync::atomic::AtomicU32,
    /// Process-directed pending signals.
    shared_pending: Mutex<SigQueue>,
    job: Mutex<JobState>,
    /// Interval and POSIX timers.
    pub(crate) timers: super::timer::ProcessTimers,
    exit: Mutex<ExitState>,
    exited: Condvar,
    exiting: AtomicBool,
    actions: Mutex<[SigAction; 64]>,
    rlimits: Mutex<[Rlimit; RLIM_NLIMITS]>,
    /// `PR_SET_DUMPABLE` value.
    pub dumpable: AtomicI32,
    /// `PR_SET_NO_NEW_PRIVS` value.
    pub no_new_privs: AtomicBool,
    /// `PR_SET_CHILD_SUBREAPER` value.
    pub child_subreaper: AtomicBool,
    /// `/proc/<pid>/oom_score_adj` and the lowest value an unprivileged writer may set
    /// (`oom_score_adj_min`: lowered only by a writer with `CAP_SYS_RESOURCE`).
    pub(crate) oom_score_adj: AtomicI32,
    pub(crate) oom_score_adj_min: AtomicI32,
    personality: std::sync::atomic::AtomicU32,
    start: Instant,
    /// The container of a pod the process belongs to (`None`: the sandbox's own, its
    /// root container); set when the process is made and inherited by its children.
    container: std::sync::OnceLock<Arc<str>>,
    /// The wait status, recorded when the process is reaped; shared with its pidfds,
    /// which report it after the process is gone (`PIDFD_INFO_EXIT`).
    reaped_status: Arc<std::sync::OnceLock<i32>>,
}

impl ThreadGroup {
    /// Creates a thread group with id `tgid` whose parent is `ppid` (0 for PID 1).
    pub fn new(tgid: i32, ppid: i32) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            tgid,
            ppid: AtomicI32::new(ppid),
            parent: Mutex::new(Weak::new()),
            children: Mutex::new(Vec::new()),
            pgid: AtomicI32::new(tgid),
            sid: AtomicI32::new(tgid),
            exit_signal: AtomicI32::new(linux_abi::signal::SIGCHLD),
            reaped: AtomicBool::new(false),
            exit_notified: AtomicBool::new(false),
            dead_cpu: super::cpu::CpuCounter::default(),
            children_cpu: super::cpu::CpuCounter::default(),
            exec_done: AtomicBool::new(false),
            exec_count: std::sync::atomic::AtomicU64::new(0),
            uid: std::sync::atomic::AtomicU32::new(0),
            shared_pending: Mutex::new(SigQueue::default()),
            job: Mutex::new(JobState::default()),
            timers: super::timer::ProcessTimers::default(),
            exit: Mutex::new(ExitState::default()),
            exited: Condvar::new(),
            exiting: AtomicBool::new(false),
            actions: Mutex::new([SigAction::default(); 64]),
            rlimits: Mutex::new(default_rlimits()),
            dumpable: AtomicI32::new(1),
            no_new_privs: AtomicBool::new(false),
            child_subreaper: AtomicBool::new(false),
            oom_score_adj: AtomicI32::new(0),
            oom_score_adj_min: AtomicI32::new(0),
            personality: std::sync::atomic::AtomicU32::new(0),
            start: Instant::now(),
            container: std::sync::OnceLock::new(),
            reaped_status: Arc::new(std::sync::OnceLock::new()),
        })
    }

    /// The container (of a pod) the process belongs to; `None` for the sandbox's root
    /// container.
    pub fn container(&self) -> Option<&Arc<str>> {
        self.container.get()
    }

    /// Puts a new process in container `id` (once, before it runs; a child inherits
    /// its parent's with [`ThreadGroup::inherit_container`]).
    pub fn set_container(&self, id: Arc<str>) {
        let _ = self.container.set(id);
    }

    /// A new child joins its parent's container.
    pub fn inherit_container(&self, parent: &ThreadGroup) {
        if let Some(c) = parent.container() {
            self.set_container(c.clone());
        }
    }

    fn state(&self) -> MutexGuard<'_, ExitState> {
        self.exit.lock()
    }

    /// The thread group id (the process id).
    pub fn tgid(&self) -> i32 {
        self.tgid
    }

    /// The parent's process id (0 for PID 1).
    pub fn ppid(&self) -> i32 {
        self.ppid.load(Ordering::Relaxed)
    }

    /// The parent process, if it is still there.
    pub fn parent(&self) -> Option<Arc<ThreadGroup>> {
        self.parent.lock().upgrade()
    }

    /// Sets the parent (fork, reparenting).
    pub(crate) fn set_parent(&self, parent: &Arc<ThreadGroup>) {
        *self.parent.lock() = Arc::downgrade(parent);
        self.ppid.store(parent.tgid(), Ordering::Relaxed);
    }

    /// The children (live and zombie).
    pub fn children(&self) -> Vec<Arc<ThreadGroup>> {
        self.children.lock().clone()
    }

    /// Adds a child.
    pub(crate) fn add_child(&self, c: Arc<ThreadGroup>) {
        self.children.lock().push(c);
    }

    /// Removes child `tgid` (reaped, or reparented); returns it.
    pub(crate) fn remove_child(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        let mut c = self.children.lock();
        let i = c.iter().position(|g| g.tgid() == tgid)?;
        Some(c.remove(i))
    }

    /// Takes all children (for reparenting).
    pub(crate) fn take_children(&self) -> Vec<Arc<ThreadGroup>> {
        std::mem::take(&mut *self.children.lock())
    }

    /// The process group id.
    pub fn pgid(&self) -> i32 {
        self.pgid.load(Ordering::Relaxed)
    }

    /// Sets the process group id.
    pub fn set_pgid(&self, pgid: i32) {
        self.pgid.store(pgid, Ordering::Relaxed);
    }

    /// The session id.
    pub fn sid(&self) -> i32 {
        self.sid.load(Ordering::Relaxed)
    }

    /// Sets the session id.
    pub fn set_sid(&self, sid: i32) {
        self.sid.store(sid, Ordering::Relaxed);
    }

    /// The signal the parent gets on exit (0 for none).
    pub fn exit_signal(&self) -> i32 {
        self.exit_signal.load(Ordering::Relaxed)
    }

    /// Sets the exit signal.
    pub fn set_exit_signal(&self, sig: i32) {
        self.exit_signal.store(sig, Ordering::Relaxed);
    }

    /// Adds the CPU time of a finished thread.
    pub(crate) fn add_dead_cpu(&self, t: CpuTimes) {
        self.dead_cpu.add(t);
    }

    /// Adds the CPU time of a reaped child (and its reaped descendants).
    pub(crate) fn add_children_cpu(&self, t: CpuTimes) {
        self.children_cpu.add(t);
    }

    /// The user and system time of the process: its finished and live threads.
    pub fn cpu_times(&self) -> CpuTimes {
        let live: CpuTimes = self.tasks().iter().map(|t| t.cpu_times()).sum();
        self.dead_cpu.get() + live
    }

    /// The CPU time (user plus system) of the process.
    pub fn cpu_time(&self) -> std::time::Duration {
        self.cpu_times().total()
    }

    /// The user and system time of reaped children (`RUSAGE_CHILDREN`, `tms_cutime`).
    pub fn children_cpu_times(&self) -> CpuTimes {
        self.children_cpu.get()
    }

    /// The CPU time of reaped children.
    pub fn children_cpu_time(&self) -> std::time::Duration {
        self.children_cpu_times().total()
    }

    /// Whether the process has called `execve` since `fork`.
    pub fn has_exec(&self) -> bool {
        self.exec_done.load(Ordering::Relaxed)
    }

    /// How many programs the process has run since it was made (`self_exec_id`: a
    /// message queue does not signal a program that was not the one registering).
    pub fn exec_count(&self) -> u64 {
        self.exec_count.load(Ordering::Relaxed)
    }

    /// Records a successful `execve`.
    pub(crate) fn set_exec_done(&self) {
        self.exec_done.store(true, Ordering::Relaxed);
        self.exec_count.fetch_add(1, Ordering::Relaxed);
    }

    /// The real uid of the process.
    pub fn uid(&self) -> u32 {
        self.uid.load(Ordering::Relaxed)
    }

    /// Sets the real uid (fork, `setuid`).
    pub fn set_uid(&self, uid: u32) {
        self.uid.store(uid, Ordering::Relaxed);
    }

    /// Whether the exit status was collected.
    pub fn is_reaped(&self) -> bool {
        self.reaped.load(Ordering::Acquire)
    }

    /// Whether the exit has been processed and can be collected by `wait`.
    pub fn is_exit_notified(&self) -> bool {
        self.exit_notified.load(Ordering::Acquire)
    }

    /// Marks the exit processed.
    pub(crate) fn set_exit_notified(&self) {
        self.exit_notified.store(true, Ordering::Release);
    }

    /// The wait status recorded at reaping (empty until then).
    pub fn reaped_status(&self) -> &Arc<std::sync::OnceLock<i32>> {
        &self.reaped_status
    }

    /// Marks the exit status collected.
    pub(crate) fn set_reaped(&self) {
        self.reaped.store(true, Ordering::Release);
    }

    /// Whether every task has finished (a zombie until reaped).
    pub fn is_dead(&self) -> bool {
        self.state().done
    }

    /// The process-directed pending signals.
    pub(crate) fn shared_pending(&self) -> MutexGuard<'_, SigQueue> {
        self.shared_pending.lock()
    }

    /// Queues a process-directed signal; returns whether it was queued.
    pub(crate) fn queue_signal(&self, info: SigInfo) -> bool {
        self.shared_pending.lock().push(info)
    }

    /// The pending process-directed signal set.
    pub fn shared_pending_set(&self) -> SigSet {
        self.shared_pending.lock().set()
    }

    /// The job-control state.
    pub fn job(&self) -> MutexGuard<'_, JobState> {
        self.job.lock()
    }

    /// When the group started.
    pub fn start_time(&self) -> Instant {
        self.start
    }

    /// Whether the group is exiting (its tasks stop at their next check).
    pub fn is_exiting(&self) -> bool {
        self.exiting.load(Ordering::Acquire)
    }

    pub(crate) fn add_task(&self, t: &Arc<Task>) {
        self.state().tasks.push(Arc::downgrade(t));
    }

    /// The live tasks of the group.
    pub fn tasks(&self) -> Vec<Arc<Task>> {
        self.state()
            .tasks
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// Starts the exit of the whole group with `status` (the first status wins) and
    /// interrupts every task so that it stops.
    pub fn begin_exit(&self, status: ExitStatus) {
        let tasks = {
            let mut st = self.state();
            if st.status.is_none() {
                st.status = Some(status);
            }
            st.tasks.clone()
        };
        self.exiting.store(true, Ordering::Release);
        for t in tasks.iter().filter_map(Weak::upgrade) {
            t.interrupt();
        }
    }

    /// Kills the group with signal `sig` (the default action "terminate"; handlers are
    /// not consulted).
    pub fn kill(&self, sig: i32) {
        self.begin_exit(ExitStatus::Signaled(sig));
        let mut j = self.job();
        j.stopped = false;
    }

    /// Called by a task when it has finished running; the last one completes the exit
    /// (returns true then).
    pub(crate) fn task_exited(&self, tid: i32, code: u8) -> bool {
        let mut st = self.state();
        st.tasks
            .retain(|w| w.upgrade().is_some_and(|t| t.tid() != tid));
        if st.tasks.is_empty() {
            if st.status.is_none() {
                st.status = Some(ExitStatus::Exited(code));
            }
            st.done = true;
            self.exiting.store(true, Ordering::Release);
            self.exited.notify_all();
            return true;
        }
        false
    }

    /// Blocks until every task of the group has finished, and returns the exit status.
    pub fn wait_exit(&self) -> ExitStatus {
        let mut st = self.state();
        while !st.done {
            self.exited.wait(&mut st);
        }
        st.status.unwrap_or(ExitStatus::Exited(0))
    }

    /// The exit status, once the group is exiting.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.state().status
    }

    /// The action for signal `sig` (1..=64).
    pub fn action(&self, sig: i32) -> SigAction {
        match usize::try_from(sig - 1) {
            Ok(i) if i < 64 => self.actions.lock()[i],
            _ => SigAction::default(),
        }
    }

    /// Replaces the action for signal `sig` and returns the old one.
    pub fn set_action(&self, sig: i32, act: SigAction) -> SigAction {
        let i = (sig - 1).clamp(0, 63) as usize;
        let mut a = self.actions.lock();
        std::mem::replace(&mut a[i], act)
    }

    /// Copies the actions of `other` (fork).
    pub(crate) fn copy_actions_from(&self, other: &ThreadGroup) {
        let src = *other.actions.lock();
        *self.actions.lock() = src;
        let r = *other.rlimits.lock();
        *self.rlimits.lock() = r;
        self.set_personality(other.personality());
        self.no_new_privs.store(
            other.no_new_privs.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.dumpable
            .store(other.dumpable.load(Ordering::Relaxed), Ordering::Relaxed);
        for (mine, theirs) in [
            (&self.oom_score_adj, &other.oom_score_adj),
            (&self.oom_score_adj_min, &other.oom_score_adj_min),
        ] {
            mine.store(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Resets handled signals to the default action (`execve`).
    pub fn reset_handlers_on_exec(&self) {
        let mut a = self.actions.lock();
        for act in a.iter_mut() {
            if act.has_handler() {
                *act = SigAction::default();
            }
        }
    }

    /// The `personality(2)` value.
    pub fn personality(&self) -> u32 {
        self.personality.load(Ordering::Relaxed)
    }

    /// Sets the `personality(2)` value.
    pub fn set_personality(&self, p: u32) {
        self.personality.store(p, Ordering::Relaxed);
    }

    /// Resource limit `res`.
    pub fn rlimit(&self, res: usize) -> Option<Rlimit> {
        self.rlimits.lock().get(res).copied()
    }

    /// Sets resource limit `res` and returns the old value.
    pub fn set_rlimit(&self, res: usize, new: Rlimit) -> Option<Rlimit> {
        let mut r = self.rlimits.lock();
        r.get_mut(res).map(|slot| std::mem::replace(slot, new))
    }

    /// Whether `sig` is ignored by the group (`SIG_IGN`).
    pub fn ignores(&self, sig: i32) -> bool {
        sig_bit(sig) != 0 && self.action(sig).handler == super::signal::SIG_IGN
    }
}
