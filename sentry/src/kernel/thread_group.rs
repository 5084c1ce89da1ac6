//! Thread groups (processes): shared signal actions, resource limits and the exit status.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Instant;

use linux_abi::signal::SIGKILL;

use super::signal::{SigAction, sig_bit};
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

/// A thread group (a process).
#[derive(Debug)]
pub struct ThreadGroup {
    tgid: i32,
    ppid: i32,
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
    personality: std::sync::atomic::AtomicU32,
    start: Instant,
}

impl ThreadGroup {
    /// Creates a thread group with id `tgid` whose parent is `ppid` (0 for PID 1).
    pub fn new(tgid: i32, ppid: i32) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            tgid,
            ppid,
            exit: Mutex::new(ExitState::default()),
            exited: Condvar::new(),
            exiting: AtomicBool::new(false),
            actions: Mutex::new([SigAction::default(); 64]),
            rlimits: Mutex::new(default_rlimits()),
            dumpable: AtomicI32::new(1),
            no_new_privs: AtomicBool::new(false),
            child_subreaper: AtomicBool::new(false),
            personality: std::sync::atomic::AtomicU32::new(0),
            start: Instant::now(),
        })
    }

    fn state(&self) -> MutexGuard<'_, ExitState> {
        self.exit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The thread group id (the process id).
    pub fn tgid(&self) -> i32 {
        self.tgid
    }

    /// The parent's process id (0 for PID 1).
    pub fn ppid(&self) -> i32 {
        self.ppid
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

    /// Kills the group with signal `sig` (default action "terminate").
    pub fn kill(&self, sig: i32) {
        if sig != SIGKILL && self.action(sig).has_handler() {
            tracing::warn!(
                tgid = self.tgid,
                sig,
                "signal has a handler, but signal delivery is not implemented: terminating"
            );
        }
        self.begin_exit(ExitStatus::Signaled(sig));
    }

    /// Called by a task when it has finished running; the last one completes the exit.
    pub(crate) fn task_exited(&self, tid: i32, code: u8) {
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
        }
    }

    /// Blocks until every task of the group has finished, and returns the exit status.
    pub fn wait_exit(&self) -> ExitStatus {
        let mut st = self.state();
        while !st.done {
            st = self.exited.wait(st).unwrap_or_else(|p| p.into_inner());
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
            Ok(i) if i < 64 => self.actions.lock().unwrap_or_else(|p| p.into_inner())[i],
            _ => SigAction::default(),
        }
    }

    /// Replaces the action for signal `sig` and returns the old one.
    pub fn set_action(&self, sig: i32, act: SigAction) -> SigAction {
        let i = (sig - 1).clamp(0, 63) as usize;
        let mut a = self.actions.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut a[i], act)
    }

    /// Resets handled signals to the default action (`execve`).
    pub fn reset_handlers_on_exec(&self) {
        let mut a = self.actions.lock().unwrap_or_else(|p| p.into_inner());
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
        self.rlimits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(res)
            .copied()
    }

    /// Sets resource limit `res` and returns the old value.
    pub fn set_rlimit(&self, res: usize, new: Rlimit) -> Option<Rlimit> {
        let mut r = self.rlimits.lock().unwrap_or_else(|p| p.into_inner());
        r.get_mut(res).map(|slot| std::mem::replace(slot, new))
    }

    /// Whether `sig` is ignored by the group (`SIG_IGN`).
    pub fn ignores(&self, sig: i32) -> bool {
        sig_bit(sig) != 0 && self.action(sig).handler == super::signal::SIG_IGN
    }
}
