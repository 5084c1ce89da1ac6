//! Interval timers (`setitimer`, `alarm`) and POSIX timers (`timer_create`).
//!
//! Each armed timer has a small host thread that sleeps until the timer's deadline and
//! then sends its signal to the process (or, for `SIGEV_THREAD_ID`, to one thread). The
//! thread ends when the timer is deleted or its process is gone. Timers on CPU clocks
//! (`ITIMER_VIRTUAL`, `ITIMER_PROF`, POSIX timers on `CLOCK_PROCESS_CPUTIME_ID`,
//! `CLOCK_THREAD_CPUTIME_ID` or a `clock_getcpuclockid` clock) have no thread: their
//! deadline is a CPU time, checked by the kernel's CPU ticker ([`super::cpu`]).

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use linux_abi::signal::SigInfo;

use super::ThreadGroup;
use super::task::Task;

/// `si_code` of a POSIX timer signal.
pub const SI_TIMER: i32 = -2;
/// Most POSIX timers per process.
const MAX_TIMERS: usize = 4096;
/// The shortest period a timer thread really waits between expirations (shorter
/// intervals count the extra expirations as overruns instead of spinning).
const MIN_PERIOD: Duration = Duration::from_micros(50);
/// How often an idle timer thread checks that its process is still there.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// How a timer notifies its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// `SIGEV_NONE`: nothing (the timer can still be read).
    None,
    /// A signal to the process (`SIGEV_SIGNAL`, interval timers).
    Signal {
        /// The signal.
        signo: i32,
        /// The `si_code` (`SI_TIMER` or `SI_KERNEL`).
        code: i32,
        /// `sigev_value`.
        value: u64,
        /// The timer id (`si_timerid`).
        id: i32,
    },
}

/// Which CPU time a CPU clock reads (Linux's `CPUCLOCK_PROF`, `_VIRT`, `_SCHED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuKind {
    /// User plus system time (`ITIMER_PROF`).
    Prof,
    /// User time only (`ITIMER_VIRTUAL`).
    Virt,
    /// User plus system time (`CLOCK_*_CPUTIME_ID`).
    Sched,
}

/// Whose CPU time a CPU clock reads.
#[derive(Clone, Debug)]
pub enum CpuTarget {
    /// A process: all its threads, live and finished.
    Process(Weak<ThreadGroup>),
    /// One thread.
    Thread(Weak<Task>),
}

/// A CPU-time clock.
#[derive(Clone, Debug)]
pub struct CpuClock {
    /// Whose time.
    pub target: CpuTarget,
    /// Which time.
    pub kind: CpuKind,
}

impl CpuClock {
    /// The clock's value now (`None` once its process or thread is gone).
    pub fn now(&self) -> Option<Duration> {
        let t = match &self.target {
            CpuTarget::Process(p) => p.upgrade()?.cpu_times(),
            CpuTarget::Thread(t) => t.upgrade()?.cpu_times(),
        };
        Some(match self.kind {
            CpuKind::Virt => t.user,
            CpuKind::Prof | CpuKind::Sched => t.total(),
        })
    }
}

/// The clock a timer runs on.
#[derive(Clone, Debug)]
pub enum TimerClock {
    /// `CLOCK_MONOTONIC` (and the boot clocks; `ITIMER_REAL`).
    Monotonic,
    /// `CLOCK_REALTIME` (an absolute time is a wall-clock date).
    Realtime,
    /// A CPU-time clock.
    Cpu(CpuClock),
}

#[derive(Debug, Default)]
struct TimerState {
    deadline: Option<Instant>,
    /// The deadline of a timer on a CPU clock, as a value of that clock.
    cpu_deadline: Option<Duration>,
    interval: Duration,
    overrun: i32,
    deleted: bool,
    started: bool,
}

/// One timer.
#[derive(Debug)]
pub struct Timer {
    st: Mutex<TimerState>,
    cv: Condvar,
    process: Weak<ThreadGroup>,
    thread: Option<Weak<Task>>,
    notify: Notify,
    clock: TimerClock,
}

impl Timer {
    /// A disarmed timer for `process` that notifies with `notify`, aimed at `thread` for
    /// `SIGEV_THREAD_ID`.
    pub fn new(
        process: &Arc<ThreadGroup>,
        thread: Option<&Arc<Task>>,
        notify: Notify,
    ) -> Arc<Timer> {
        Self::with_clock(process, thread, notify, TimerClock::Monotonic)
    }

    /// A disarmed timer on `clock` (see [`Timer::new`]).
    pub fn with_clock(
        process: &Arc<ThreadGroup>,
        thread: Option<&Arc<Task>>,
        notify: Notify,
        clock: TimerClock,
    ) -> Arc<Timer> {
        Arc::new(Timer {
            st: Mutex::new(TimerState::default()),
            cv: Condvar::new(),
            process: Arc::downgrade(process),
            thread: thread.map(Arc::downgrade),
            notify,
            clock,
        })
    }

    /// The clock the timer runs on.
    pub fn clock(&self) -> &TimerClock {
        &self.clock
    }

    /// Whether the timer runs on a CPU clock (the CPU ticker drives it).
    pub fn is_cpu(&self) -> bool {
        matches!(self.clock, TimerClock::Cpu(_))
    }

    fn lock(&self) -> MutexGuard<'_, TimerState> {
        self.st.lock()
    }

    /// Arms the timer to expire after `value` (zero disarms) and then every `interval`;
    /// returns the previous (remaining, interval).
    pub fn arm(self: &Arc<Self>, value: Duration, interval: Duration) -> (Duration, Duration) {
        let mut st = self.lock();
        let old = self.read(&st);
        if let TimerClock::Cpu(c) = &self.clock {
            let now = c.now().unwrap_or_default();
            st.cpu_deadline =
                (!value.is_zero()).then(|| now.checked_add(value).unwrap_or(Duration::MAX));
            st.interval = interval;
            st.overrun = 0;
            return old;
        }
        st.deadline = if value.is_zero() {
            None
        } else {
            Some(Instant::now().checked_add(value).unwrap_or_else(far_future))
        };
        st.interval = interval;
        st.overrun = 0;
        if st.deadline.is_some() && !st.started {
            st.started = true;
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("timer".into())
                .spawn(move || me.run());
            if let Err(e) = spawned {
                tracing::error!("cannot start a timer thread: {e}");
                st.started = false;
            }
        }
        self.cv.notify_all();
        old
    }

    fn read(&self, st: &TimerState) -> (Duration, Duration) {
        let (armed, left) = match &self.clock {
            TimerClock::Cpu(c) => (
                st.cpu_deadline.is_some(),
                st.cpu_deadline.map_or(Duration::ZERO, |d| {
                    d.saturating_sub(c.now().unwrap_or_default())
                }),
            ),
            _ => (
                st.deadline.is_some(),
                st.deadline.map_or(Duration::ZERO, |d| {
                    d.saturating_duration_since(Instant::now())
                }),
            ),
        };
        // An armed timer never reads as zero (that would mean disarmed).
        let left = if armed && left.is_zero() {
            Duration::from_nanos(1)
        } else {
            left
        };
        (left, st.interval)
    }

    /// The time left and the interval.
    pub fn get(&self) -> (Duration, Duration) {
        self.read(&self.lock())
    }

    /// For a timer on a CPU clock: fires it if its clock has reached the deadline (the
    /// CPU ticker calls this). Returns whether the timer is armed.
    pub fn tick_cpu(&self) -> bool {
        let TimerClock::Cpu(c) = &self.clock else {
            return false;
        };
        let mut st = self.lock();
        let Some(d) = st.cpu_deadline.filter(|_| !st.deleted) else {
            return false;
        };
        let Some(now) = c.now() else {
            return false;
        };
        if now < d {
            return true;
        }
        let mut overrun = 0i32;
        st.cpu_deadline = if st.interval.is_zero() {
            None
        } else {
            let missed = now.saturating_sub(d).as_nanos() / st.interval.as_nanos().max(1);
            overrun = i32::try_from(missed).unwrap_or(i32::MAX);
            u32::try_from(missed + 1)
                .ok()
                .and_then(|k| st.interval.checked_mul(k))
                .and_then(|step| d.checked_add(step))
        };
        st.overrun = overrun;
        let armed = st.cpu_deadline.is_some();
        drop(st);
        self.fire(overrun);
        armed
    }

    /// Expirations missed while the last signal was pending (`timer_getoverrun`).
    pub fn overrun(&self) -> i32 {
        self.lock().overrun
    }

    /// Deletes the timer: its thread ends.
    pub fn delete(&self) {
        let mut st = self.lock();
        st.deleted = true;
        st.deadline = None;
        st.cpu_deadline = None;
        self.cv.notify_all();
    }

    fn alive(&self) -> Option<Arc<ThreadGroup>> {
        self.process.upgrade().filter(|p| !p.is_exiting())
    }

    fn run(self: Arc<Self>) {
        let mut st = self.lock();
        loop {
            if st.deleted || self.alive().is_none() {
                break;
            }
            let now = Instant::now();
            match st.deadline {
                None => {
                    self.cv.wait_for(&mut st, IDLE_CHECK);
                }
                Some(d) if d > now => {
                    let wait = (d - now).min(IDLE_CHECK);
                    self.cv.wait_for(&mut st, wait);
                }
                Some(d) => {
                    let mut overrun = 0i32;
                    st.deadline = if st.interval.is_zero() {
                        None
                    } else {
                        // Expirations missed while late count as overruns; the next one
                        // is the first still in the future (none if it would overflow).
                        let late = now.saturating_duration_since(d).as_nanos();
                        let missed = late / st.interval.as_nanos().max(1);
                        overrun = i32::try_from(missed).unwrap_or(i32::MAX);
                        u32::try_from(missed + 1)
                            .ok()
                            .and_then(|k| st.interval.checked_mul(k))
                            .map(|step| step.max(now.saturating_duration_since(d) + MIN_PERIOD))
                            .and_then(|step| d.checked_add(step))
                    };
                    st.overrun = overrun;
                    drop(st);
                    self.fire(overrun);
                    st = self.lock();
                }
            }
        }
        st.started = false;
    }

    fn fire(&self, overrun: i32) {
        let Notify::Signal {
            signo,
            code,
            value,
            id,
        } = self.notify
        else {
            return;
        };
        let mut info = SigInfo::new(signo, code);
        if code == SI_TIMER {
            info.fields[0] = u64::from(id as u32) | (u64::from(overrun as u32) << 32);
            info.fields[1] = value;
        }
        if let Some(t) = self.thread.as_ref().and_then(Weak::upgrade) {
            t.send_signal(info);
        } else if let Some(p) = self.alive() {
            p.send_signal(info);
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

/// The timers of one process.
#[derive(Debug, Default)]
pub struct ProcessTimers {
    /// `ITIMER_REAL`, `ITIMER_VIRTUAL`, `ITIMER_PROF`.
    itimers: Mutex<[Option<Arc<Timer>>; 3]>,
    posix: Mutex<(i32, BTreeMap<i32, Arc<Timer>>)>,
}

impl ProcessTimers {
    /// Interval timer `which` (created on first use with signal `signo`):
    /// `ITIMER_REAL` on the monotonic clock, `ITIMER_VIRTUAL` on the process's user time,
    /// `ITIMER_PROF` on its user and system time.
    pub fn itimer(&self, tg: &Arc<ThreadGroup>, which: usize, signo: i32) -> Option<Arc<Timer>> {
        let mut it = self.itimers.lock();
        let slot = it.get_mut(which)?;
        let cpu = |kind| {
            TimerClock::Cpu(CpuClock {
                target: CpuTarget::Process(Arc::downgrade(tg)),
                kind,
            })
        };
        let clock = match which {
            1 => cpu(CpuKind::Virt),
            2 => cpu(CpuKind::Prof),
            _ => TimerClock::Monotonic,
        };
        Some(
            slot.get_or_insert_with(|| {
                Timer::with_clock(
                    tg,
                    None,
                    Notify::Signal {
                        signo,
                        code: linux_abi::signal::SI_KERNEL,
                        value: 0,
                        id: 0,
                    },
                    clock,
                )
            })
            .clone(),
        )
    }

    /// Fires the timers on CPU clocks that are due (the CPU ticker calls this); returns
    /// whether any is armed.
    pub fn tick_cpu(&self) -> bool {
        let mut timers: Vec<Arc<Timer>> = self.itimers.lock().iter().flatten().cloned().collect();
        timers.extend(self.posix.lock().1.values().cloned());
        let mut armed = false;
        for t in timers.iter().filter(|t| t.is_cpu()) {
            armed |= t.tick_cpu();
        }
        armed
    }

    /// Creates a POSIX timer built by `make(id)`; returns its id.
    pub fn create(&self, make: impl FnOnce(i32) -> Arc<Timer>) -> Option<i32> {
        let mut p = self.posix.lock();
        if p.1.len() >= MAX_TIMERS {
            return None;
        }
        let mut id = p.0;
        while p.1.contains_key(&id) {
            id = id.wrapping_add(1).max(0);
        }
        p.0 = id.wrapping_add(1).max(0);
        p.1.insert(id, make(id));
        Some(id)
    }

    /// POSIX timer `id`.
    pub fn get(&self, id: i32) -> Option<Arc<Timer>> {
        self.posix.lock().1.get(&id).cloned()
    }

    /// Deletes POSIX timer `id`.
    pub fn delete(&self, id: i32) -> bool {
        let t = self.posix.lock().1.remove(&id);
        t.map(|t| t.delete()).is_some()
    }

    /// Deletes every timer (exit, `execve` keeps interval timers but drops POSIX ones).
    pub fn clear(&self, itimers_too: bool) {
        let all: Vec<Arc<Timer>> = std::mem::take(&mut self.posix.lock().1)
            .into_values()
            .collect();
        for t in all {
            t.delete();
        }
        if itimers_too {
            let mut it = self.itimers.lock();
            for t in it.iter_mut().filter_map(Option::take) {
                t.delete();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_and_intervals_do_not_overflow() {
        let tg = ThreadGroup::new(4242, 1);
        let t = Timer::new(&tg, None, Notify::None);
        let huge = Duration::from_secs(i64::MAX as u64);
        t.arm(huge, huge);
        let (left, interval) = t.get();
        assert!(left > Duration::from_secs(1));
        assert_eq!(interval, huge);
        assert_eq!(t.arm(Duration::ZERO, Duration::ZERO).1, huge);
        assert_eq!(t.get(), (Duration::ZERO, Duration::ZERO));
        t.delete();
    }

    #[test]
    fn a_tiny_interval_fires_and_counts_overruns_without_spinning() {
        let tg = ThreadGroup::new(4243, 1);
        let alrm = linux_abi::signal::SIGALRM;
        let t = Timer::new(
            &tg,
            None,
            Notify::Signal {
                signo: alrm,
                code: SI_TIMER,
                value: 0,
                id: 1,
            },
        );
        t.arm(Duration::from_nanos(1), Duration::from_nanos(1));
        // It must fire: wait for the signal (the deadline only bounds a failure).
        let give_up = Instant::now() + Duration::from_secs(10);
        while tg.shared_pending_set() & (1 << (alrm - 1)) == 0 {
            assert!(Instant::now() < give_up, "the 1 ns timer never fired");
            std::thread::yield_now();
        }
        let (left, interval) = t.get();
        assert_eq!(interval, Duration::from_nanos(1), "still periodic");
        assert!(left <= Duration::from_secs(1));
        t.delete();
    }

    #[test]
    fn posix_timer_ids_are_reused_after_delete() {
        let tg = ThreadGroup::new(4244, 1);
        let timers = ProcessTimers::default();
        let a = timers
            .create(|_| Timer::new(&tg, None, Notify::None))
            .expect("id");
        assert!(timers.get(a).is_some());
        assert!(timers.delete(a));
        assert!(!timers.delete(a));
        assert!(timers.get(a).is_none());
        timers.clear(true);
    }
}
