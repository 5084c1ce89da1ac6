//! Time system calls: clocks, `gettimeofday`, `time`, sleeps and `times`.
//!
//! `CLOCK_REALTIME` is the host's; the monotonic and boot clocks count from the kernel's
//! start. CPU-time clocks are approximated by elapsed time since the task or process
//! started (application CPU time is not visible to the Sentry on every platform).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use linux_abi::Errno;
use linux_abi::types::{Timespec, Timeval};

use super::SyscallEntry;
use crate::kernel::Task;

/// The time system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_CLOCK_GETTIME => clock_gettime(Clock, Ptr) = sys_clock_gettime;
    SYS_CLOCK_GETRES => clock_getres(Clock, Ptr) = sys_clock_getres;
    SYS_GETTIMEOFDAY => gettimeofday(Ptr, Ptr) = sys_gettimeofday;
    SYS_TIME => time(Ptr) = sys_time;
    SYS_NANOSLEEP => nanosleep(Ptr, Ptr) = sys_nanosleep;
    SYS_CLOCK_NANOSLEEP => clock_nanosleep(Clock, Hex, Ptr, Ptr) = sys_clock_nanosleep;
    SYS_TIMES => times(Ptr) = sys_times;
];

const CLOCK_REALTIME: i32 = 0;
const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
const CLOCK_MONOTONIC_RAW: i32 = 4;
const CLOCK_REALTIME_COARSE: i32 = 5;
const CLOCK_MONOTONIC_COARSE: i32 = 6;
const CLOCK_BOOTTIME: i32 = 7;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;
const CLOCK_TAI: i32 = 11;
const TIMER_ABSTIME: u32 = 1;

fn ts(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

fn realtime() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The monotonic clock: time since boot, offset so that it never starts at zero.
fn monotonic(t: &Task) -> Duration {
    t.kernel().boot_instant().elapsed() + Duration::from_secs(1)
}

/// Reads clock `clock` for `t`.
pub fn clock_now(t: &Task, clock: i32) -> Result<Duration, Errno> {
    Ok(match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => realtime(),
        CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_BOOTTIME_ALARM => monotonic(t),
        CLOCK_PROCESS_CPUTIME_ID => t.thread_group().start_time().elapsed(),
        CLOCK_THREAD_CPUTIME_ID => t.start_time().elapsed(),
        _ => return Err(Errno::EINVAL),
    })
}

/// `clock_gettime(clock, tp)`.
pub fn sys_clock_gettime(t: &Task, clock: i32, tp: u64) -> Result<u64, Errno> {
    let now = clock_now(t, clock)?;
    t.mm().write_obj(tp, &ts(now))?;
    Ok(0)
}

/// `clock_getres(clock, res)`.
pub fn sys_clock_getres(t: &Task, clock: i32, res: u64) -> Result<u64, Errno> {
    clock_now(t, clock)?;
    if res != 0 {
        let r = match clock {
            CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE => Timespec {
                tv_sec: 0,
                tv_nsec: 4_000_000,
            },
            _ => Timespec {
                tv_sec: 0,
                tv_nsec: 1,
            },
        };
        t.mm().write_obj(res, &r)?;
    }
    Ok(0)
}

/// `gettimeofday(tv, tz)`.
pub fn sys_gettimeofday(t: &Task, tv: u64, tz: u64) -> Result<u64, Errno> {
    let mm = t.mm();
    if tv != 0 {
        let now = realtime();
        mm.write_obj(
            tv,
            &Timeval {
                tv_sec: now.as_secs() as i64,
                tv_usec: i64::from(now.subsec_micros()),
            },
        )?;
    }
    if tz != 0 {
        // struct timezone: UTC, no DST.
        mm.write_obj(tz, &[0i32; 2])?;
    }
    Ok(0)
}

/// `time(tloc)`.
pub fn sys_time(t: &Task, tloc: u64) -> Result<u64, Errno> {
    let now = realtime().as_secs() as i64;
    if tloc != 0 {
        t.mm().write_obj(tloc, &now)?;
    }
    Ok(now as u64)
}

fn read_timespec(t: &Task, addr: u64) -> Result<Duration, Errno> {
    let v: Timespec = t.mm().read_obj(addr)?;
    if v.tv_sec < 0 || !(0..1_000_000_000).contains(&v.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(v.tv_sec as u64, v.tv_nsec as u32))
}

/// Sleeps up to `d`, waking early when the task's process is exiting. Returns the time
/// left (zero when the sleep completed).
fn sleep_for(t: &Task, d: Duration) -> Duration {
    // A sleep too long for Instant lasts until the process exits.
    let deadline = Instant::now().checked_add(d);
    loop {
        let now = Instant::now();
        let left = deadline.map_or(Duration::MAX, |dl| dl.saturating_duration_since(now));
        if left.is_zero() {
            return Duration::ZERO;
        }
        if t.thread_group().is_exiting() {
            return left;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// `nanosleep(req, rem)`.
pub fn sys_nanosleep(t: &Task, req: u64, rem: u64) -> Result<u64, Errno> {
    let d = read_timespec(t, req)?;
    let left = sleep_for(t, d);
    if !left.is_zero() {
        if rem != 0 {
            t.mm().write_obj(rem, &ts(left))?;
        }
        return Err(Errno::EINTR);
    }
    Ok(0)
}

/// `clock_nanosleep(clock, flags, req, rem)`.
pub fn sys_clock_nanosleep(
    t: &Task,
    clock: i32,
    flags: u32,
    req: u64,
    rem: u64,
) -> Result<u64, Errno> {
    if clock == CLOCK_THREAD_CPUTIME_ID {
        return Err(Errno::EINVAL);
    }
    let now = clock_now(t, clock)?;
    let v = read_timespec(t, req)?;
    let d = if flags & TIMER_ABSTIME != 0 {
        v.saturating_sub(now)
    } else {
        v
    };
    let left = sleep_for(t, d);
    if !left.is_zero() {
        if rem != 0 && flags & TIMER_ABSTIME == 0 {
            t.mm().write_obj(rem, &ts(left))?;
        }
        return Err(Errno::EINTR);
    }
    Ok(0)
}

/// `times(buf)`: user time approximated by elapsed time; returns ticks since boot.
pub fn sys_times(t: &Task, buf: u64) -> Result<u64, Errno> {
    let ticks = |d: Duration| (d.as_millis() / 10) as i64;
    if buf != 0 {
        let user = ticks(t.thread_group().start_time().elapsed());
        t.mm().write_obj(buf, &[user, 0i64, 0, 0])?;
    }
    Ok(ticks(monotonic(t)) as u64)
}
