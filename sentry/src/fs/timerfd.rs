//! `timerfd_create(2)`: a timer whose expirations are read as a count.
//!
//! The timer is kept as a monotonic [`Instant`] of the next expiration and an interval;
//! `CLOCK_REALTIME` absolute times are converted at `settime`. Expirations are counted
//! lazily (on read, poll and the timer thread's callback); the kernel's timer thread
//! ([`crate::waiter::TimerQueue`]) notifies the wait queue at each expiration so that
//! blocked reads, `poll` and `epoll` wake.

use parking_lot::Mutex;
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use linux_abi::Errno;
use linux_abi::flags::open::O_NONBLOCK;

use super::FileOps;

use crate::waiter::{Events, TimerQueue, WaitQueue, block_on, events};

/// `CLOCK_REALTIME`.
pub const CLOCK_REALTIME: i32 = 0;
/// `CLOCK_MONOTONIC`.
pub const CLOCK_MONOTONIC: i32 = 1;
/// `CLOCK_BOOTTIME`.
pub const CLOCK_BOOTTIME: i32 = 7;
/// `CLOCK_REALTIME_ALARM`.
pub const CLOCK_REALTIME_ALARM: i32 = 8;
/// `CLOCK_BOOTTIME_ALARM`.
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
/// `TFD_TIMER_ABSTIME`.
pub const TFD_TIMER_ABSTIME: u32 = 1;
/// `TFD_TIMER_CANCEL_ON_SET` (accepted, never fires: the clock is never set).
pub const TFD_TIMER_CANCEL_ON_SET: u32 = 2;

#[derive(Debug, Default)]
struct State {
    next: Option<Instant>,
    interval: Duration,
    expirations: u64,
    /// Bumped at each `settime`, so callbacks of an old setting do nothing.
    generation: u64,
}

impl State {
    fn update(&mut self, now: Instant) {
        let Some(next) = self.next else { return };
        if now < next {
            return;
        }
        if self.interval.is_zero() {
            self.expirations += 1;
            self.next = None;
        } else {
            let late = (now - next).as_nanos() / self.interval.as_nanos();
            let n = u64::try_from(late).unwrap_or(u64::MAX - 1) + 1;
            self.expirations = self.expirations.saturating_add(n);
            let step = self
                .interval
                .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
            self.next = next.checked_add(step);
        }
    }
}

/// A timerfd.
#[derive(Debug)]
pub struct TimerFd {
    clock: i32,
    state: Mutex<State>,
    nonblock: AtomicBool,
    queue: WaitQueue,
    me: Weak<TimerFd>,
    /// The kernel's timer thread, which runs the expirations.
    timers: Arc<TimerQueue>,
}

/// A duration as `(seconds, nanoseconds)`.
pub type TimeSpec = (i64, i64);

fn to_duration((s, ns): TimeSpec) -> Result<Duration, Errno> {
    if s < 0 || !(0..1_000_000_000).contains(&ns) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(s as u64, ns as u32))
}

fn to_spec(d: Duration) -> TimeSpec {
    (d.as_secs() as i64, i64::from(d.subsec_nanos()))
}

impl TimerFd {
    /// The clock the timer runs on.
    pub fn clock(&self) -> i32 {
        self.clock
    }

    /// A disarmed timer on `clock` (`timerfd_create` flags: `TFD_NONBLOCK`) whose
    /// expirations run on `timers` (the kernel's).
    pub fn new(clock: i32, flags: u32, timers: Arc<TimerQueue>) -> Result<Arc<TimerFd>, Errno> {
        if !matches!(
            clock,
            CLOCK_REALTIME
                | CLOCK_MONOTONIC
                | CLOCK_BOOTTIME
                | CLOCK_REALTIME_ALARM
                | CLOCK_BOOTTIME_ALARM
        ) {
            return Err(Errno::EINVAL);
        }
        Ok(Arc::new_cyclic(|me| TimerFd {
            clock,
            state: Mutex::new(State::default()),
            nonblock: AtomicBool::new(flags & O_NONBLOCK != 0),
            queue: WaitQueue::new(),
            me: me.clone(),
            timers,
        }))
    }

    /// `timerfd_gettime`: (interval, time to the next expiration), zero when disarmed.
    pub fn get(&self) -> (TimeSpec, TimeSpec) {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.update(now);
        let left = s.next.map(|n| n.saturating_duration_since(now));
        // An armed timer never shows zero (that means disarmed).
        let left = left
            .map(|d| d.max(Duration::from_nanos(1)))
            .unwrap_or_default();
        (to_spec(s.interval), to_spec(left))
    }

    /// `timerfd_settime`: arms (or disarms with a zero value) and returns the old setting.
    /// `clock_now` is the timer's clock now (for `TFD_TIMER_ABSTIME`).
    pub fn set(
        &self,
        flags: u32,
        interval: TimeSpec,
        value: TimeSpec,
        clock_now: Duration,
    ) -> Result<(TimeSpec, TimeSpec), Errno> {
        if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
            return Err(Errno::EINVAL);
        }
        let interval = to_duration(interval)?;
        let value = to_duration(value)?;
        let old = self.get();
        let now = Instant::now();
        let next = if value.is_zero() {
            None
        } else if flags & TFD_TIMER_ABSTIME != 0 {
            now.checked_add(value.saturating_sub(clock_now))
        } else {
            now.checked_add(value)
        };
        let generation = {
            let mut s = self.state.lock();
            s.generation += 1;
            s.next = next;
            s.interval = interval;
            s.expirations = 0;
            s.generation
        };
        if let Some(at) = next {
            self.schedule(at, generation);
        }
        Ok(old)
    }

    fn schedule(&self, at: Instant, generation: u64) {
        let me = self.me.clone();
        self.timers.call_at(
            at,
            Box::new(move || {
                if let Some(t) = me.upgrade() {
                    t.fire(generation);
                }
            }),
        );
    }

    fn fire(&self, generation: u64) {
        let next = {
            let mut s = self.state.lock();
            if s.generation != generation {
                return;
            }
            s.update(Instant::now());
            if s.interval.is_zero() { None } else { s.next }
        };
        self.queue.notify(events::POLLIN | events::POLLRDNORM);
        if let Some(at) = next {
            self.schedule(at, generation);
        }
    }
}

impl FileOps for TimerFd {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let op = || {
            let mut s = self.state.lock();
            s.update(Instant::now());
            if s.expirations == 0 {
                return Err(Errno::EAGAIN);
            }
            Ok(std::mem::take(&mut s.expirations))
        };
        let n = if self.nonblock.load(Ordering::Relaxed) {
            op()?
        } else {
            block_on(&[(&self.queue, events::POLLIN)], None, op)?
        };
        buf[..8].copy_from_slice(&n.to_ne_bytes());
        Ok(8)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readiness(&self, mask: Events) -> Events {
        let mut s = self.state.lock();
        s.update(Instant::now());
        if s.expirations > 0 {
            (events::POLLIN | events::POLLRDNORM) & mask
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.nonblock
            .store(flags & O_NONBLOCK != 0, Ordering::Relaxed);
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_timer_counts_expirations() {
        let t = TimerFd::new(CLOCK_MONOTONIC, 0, TimerQueue::new()).unwrap();
        assert_eq!(t.get(), ((0, 0), (0, 0)), "disarmed");
        t.set(0, (0, 1_000_000), (0, 1_000_000), Duration::ZERO)
            .unwrap();
        let mut b = [0u8; 8];
        assert_eq!(t.read_at(&mut b, 0), Ok(8), "blocking read waits for one");
        assert!(u64::from_ne_bytes(b) >= 1);
        t.set(0, (0, 0), (0, 0), Duration::ZERO).unwrap();
        t.nonblock.store(true, Ordering::Relaxed);
        assert_eq!(t.read_at(&mut b, 0), Err(Errno::EAGAIN), "disarmed");
        assert_eq!(
            TimerFd::new(5, 0, TimerQueue::new()).err(),
            Some(Errno::EINVAL)
        );
        // Far-away times do not overflow: the timer just never fires.
        t.set(TFD_TIMER_ABSTIME, (0, 0), (i64::MAX, 0), Duration::ZERO)
            .unwrap();
        t.set(0, (i64::MAX, 0), (i64::MAX, 0), Duration::ZERO)
            .unwrap();
        assert_eq!(t.read_at(&mut b, 0), Err(Errno::EAGAIN));
        assert_eq!(
            t.set(0, (0, 0), (0, 2_000_000_000), Duration::ZERO),
            Err(Errno::EINVAL)
        );
    }
}
