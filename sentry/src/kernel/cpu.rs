//! CPU-time accounting, as gVisor's `kernel/task_acct`: a task's time is charged by the
//! state it is in.
//!
//! - **User time** is the time the task spends running application code: the time inside
//!   the platform's [`platform::Context::switch`], measured in the task loop around it
//!   (the same on ptrace, KVM and systrap).
//! - **System time** is the host CPU time the task's own host thread uses outside the
//!   switch: handling its system calls, faults and signals. A task blocked in a wait
//!   sleeps on its host thread and uses none, so blocked time is not charged.
//!
//! Process times add the times of finished threads; `RUSAGE_CHILDREN` adds those of
//! reaped children (at `wait`). The `CpuTicker` of the kernel samples the clocks of
//! running tasks every [`TICK`] to enforce what depends on them while a program computes
//! without entering the Sentry: `ITIMER_VIRTUAL`/`ITIMER_PROF`, POSIX timers on CPU
//! clocks, `RLIMIT_CPU` (`SIGXCPU` at the soft limit, then every second; `SIGKILL` at the
//! hard limit) and the sandbox-wide CPU budget ([`Kernel::set_cpu_budget`]).

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{Kernel, ThreadGroup};

/// How often the ticker samples CPU clocks while something depends on them.
pub const TICK: Duration = Duration::from_millis(10);
/// How often it looks for something to enforce otherwise (the calls that arm CPU timers
/// or set `RLIMIT_CPU` wake it at once).
const IDLE_TICK: Duration = Duration::from_secs(1);
/// `RLIMIT_CPU`.
pub const RLIMIT_CPU: usize = 0;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// User and system CPU time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Time running application code.
    pub user: Duration,
    /// Time the Sentry ran on the task's behalf.
    pub sys: Duration,
}

impl CpuTimes {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user.saturating_add(self.sys)
    }
}

impl std::ops::Add for CpuTimes {
    type Output = CpuTimes;
    fn add(self, o: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_add(o.user),
            sys: self.sys.saturating_add(o.sys),
        }
    }
}

impl std::iter::Sum for CpuTimes {
    fn sum<I: Iterator<Item = CpuTimes>>(it: I) -> CpuTimes {
        it.fold(CpuTimes::default(), |a, b| a + b)
    }
}

/// A pair of user/system counters in nanoseconds.
#[derive(Debug, Default)]
pub(crate) struct CpuCounter {
    user_ns: AtomicU64,
    sys_ns: AtomicU64,
}

impl CpuCounter {
    pub(crate) fn add(&self, t: CpuTimes) {
        self.user_ns.fetch_add(nanos(t.user), Ordering::Relaxed);
        self.sys_ns.fetch_add(nanos(t.sys), Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> CpuTimes {
        CpuTimes {
            user: Duration::from_nanos(self.user_ns.load(Ordering::Relaxed)),
            sys: Duration::from_nanos(self.sys_ns.load(Ordering::Relaxed)),
        }
    }
}

/// The accounting state of one task: the times charged so far and when the application
/// run in progress (if any) began, under one lock so that a reader never counts a run
/// twice or not at all (others read a running task's clock without stopping it).
#[derive(Debug, Default)]
pub(crate) struct TaskAcct(Mutex<AcctState>);

#[derive(Debug, Default)]
struct AcctState {
    done: CpuTimes,
    app_since: Option<Instant>,
}

impl TaskAcct {
    /// The task enters the application now.
    pub(crate) fn enter_app(&self) {
        self.0.lock().app_since = Some(Instant::now());
    }

    /// The task left the application.
    pub(crate) fn leave_app(&self) {
        let mut st = self.0.lock();
        if let Some(since) = st.app_since.take() {
            st.done.user = st.done.user.saturating_add(since.elapsed());
        }
    }

    /// Charges `sys` of system time.
    pub(crate) fn add_sys(&self, sys: Duration) {
        let mut st = self.0.lock();
        st.done.sys = st.done.sys.saturating_add(sys);
    }

    /// The times so far, counting the application run in progress.
    pub(crate) fn times(&self) -> CpuTimes {
        let st = self.0.lock();
        let mut t = st.done;
        if let Some(since) = st.app_since {
            t.user = t.user.saturating_add(since.elapsed());
        }
        t
    }
}

/// The host thread CPU time of the calling thread, as a running mark for system time.
#[derive(Debug)]
pub(crate) struct SysMark(Duration);

impl SysMark {
    /// A mark at the calling thread's CPU time now.
    pub(crate) fn now() -> SysMark {
        SysMark(crate::host::thread_cpu_time())
    }

    /// The thread CPU time used since the mark; moves the mark to now.
    pub(crate) fn lap(&mut self) -> Duration {
        let now = crate::host::thread_cpu_time();
        let d = now.saturating_sub(self.0);
        self.0 = now;
        d
    }
}

/// The kernel's CPU accounting: the time of finished tasks, the budget, the ticker.
#[derive(Debug)]
pub(crate) struct KernelCpu {
    /// CPU time (user + system) of every task that has finished.
    dead_ns: AtomicU64,
    /// The sandbox-wide budget in nanoseconds (`u64::MAX`: none).
    budget_ns: AtomicU64,
    /// Set once the budget was spent (every process was killed).
    exceeded: AtomicBool,
    ticker: Mutex<TickerState>,
    kick: Condvar,
}

#[derive(Debug, Default)]
struct TickerState {
    started: bool,
    kicked: bool,
}

impl Default for KernelCpu {
    fn default() -> Self {
        KernelCpu {
            dead_ns: AtomicU64::new(0),
            budget_ns: AtomicU64::new(u64::MAX),
            exceeded: AtomicBool::new(false),
            ticker: Mutex::new(TickerState::default()),
            kick: Condvar::new(),
        }
    }
}

impl KernelCpu {
    pub(crate) fn add_dead(&self, d: Duration) {
        self.dead_ns.fetch_add(nanos(d), Ordering::Relaxed);
    }
}

impl Kernel {
    /// Sets the CPU budget of the whole sandbox: the sum of the CPU time of all its tasks,
    /// live and finished. Once it is spent every process is killed
    /// ([`Kernel::cpu_budget_exceeded`] says so afterwards).
    pub fn set_cpu_budget(self: &Arc<Self>, budget: Option<Duration>) {
        let ns = budget.map_or(u64::MAX, nanos);
        self.cpu.budget_ns.store(ns, Ordering::Relaxed);
        self.kick_cpu_ticker();
    }

    /// The sandbox's CPU budget, if any.
    pub fn cpu_budget(&self) -> Option<Duration> {
        let ns = self.cpu.budget_ns.load(Ordering::Relaxed);
        (ns != u64::MAX).then(|| Duration::from_nanos(ns))
    }

    /// Whether the sandbox was ended because its CPU budget was spent.
    pub fn cpu_budget_exceeded(&self) -> bool {
        self.cpu.exceeded.load(Ordering::Acquire)
    }

    /// The CPU time (user + system) the sandbox has used: every task, live or finished.
    pub fn cpu_time_used(&self) -> Duration {
        let live: Duration = self.live_tasks().iter().map(|t| t.cpu_time()).sum();
        Duration::from_nanos(self.cpu.dead_ns.load(Ordering::Relaxed)).saturating_add(live)
    }

    /// Wakes the CPU ticker (starting it first if needed): something now depends on
    /// CPU clocks (a CPU timer was armed, `RLIMIT_CPU` or the budget was set).
    pub fn kick_cpu_ticker(self: &Arc<Self>) {
        let mut st = self.cpu.ticker.lock();
        st.kicked = true;
        if !st.started {
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("cpu-ticker".into())
                .spawn(move || CpuTicker(weak).run());
            match spawned {
                Ok(_) => st.started = true,
                Err(e) => tracing::error!("cannot start the CPU ticker: {e}"),
            }
        }
        self.cpu.kick.notify_all();
    }
}

/// The thread that enforces what depends on CPU clocks while programs compute.
struct CpuTicker(Weak<Kernel>);

impl CpuTicker {
    fn run(self) {
        let mut busy = true;
        loop {
            let Some(k) = self.0.upgrade() else { return };
            {
                let mut st = k.cpu.ticker.lock();
                if !st.kicked {
                    let wait = if busy { TICK } else { IDLE_TICK };
                    k.cpu.kick.wait_for(&mut st, wait);
                }
                st.kicked = false;
            }
            busy = tick(&k);
            if k.cpu_budget_exceeded() && k.pids().is_empty() {
                return;
            }
        }
    }
}

/// One tick: checks every process and the budget; returns whether anything depends on
/// CPU clocks (so that the next tick comes soon).
fn tick(k: &Arc<Kernel>) -> bool {
    let mut busy = false;
    for pid in k.pids() {
        if let Some(tg) = k.thread_group(pid)
            && !tg.is_exiting()
        {
            busy |= check_process(&tg);
        }
    }
    if let Some(budget) = k.cpu_budget() {
        busy = true;
        if !k.cpu_budget_exceeded() {
            let used = k.cpu_time_used();
            if used >= budget {
                k.cpu.exceeded.store(true, Ordering::Release);
                tracing::warn!(
                    target: "sentry::cpu_limit",
                    used_ms = used.as_millis() as u64,
                    budget_ms = budget.as_millis() as u64,
                    "CPU time budget of the sandbox exceeded: killing every process"
                );
                k.fatal();
            }
        }
    }
    busy
}

/// Checks `RLIMIT_CPU` and the CPU timers of `tg`; returns whether it has any.
fn check_process(tg: &Arc<ThreadGroup>) -> bool {
    use linux_abi::signal::{SI_KERNEL, SIGKILL, SIGXCPU, SigInfo};
    let mut busy = tg.timers.tick_cpu();
    let Some(lim) = tg.rlimit(RLIMIT_CPU) else {
        return busy;
    };
    // As Linux's check_process_timers: nothing unless the soft limit is finite; at the
    // hard limit SIGKILL; at the soft limit SIGXCPU, and the soft limit moves one second
    // on so that the next comes a second later.
    if lim.cur != super::RLIM_INFINITY {
        busy = true;
        let secs = tg.cpu_time().as_secs();
        if lim.max != super::RLIM_INFINITY && secs >= lim.max {
            tracing::debug!(pid = tg.tgid(), "RLIMIT_CPU hard limit reached");
            tg.kill(SIGKILL);
        } else if secs >= lim.cur {
            tg.send_signal(SigInfo::new(SIGXCPU, SI_KERNEL));
            let mut bumped = lim;
            bumped.cur = lim.cur.saturating_add(1);
            tg.set_rlimit(RLIMIT_CPU, bumped);
        }
    }
    busy
}
