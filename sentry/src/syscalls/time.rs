//! Time system calls: clocks, `gettimeofday`, `time`, sleeps and `times`.
//!
//! `CLOCK_REALTIME` is the host's; the monotonic and boot clocks count from the kernel's
//! start. CPU-time clocks count user and system time as the task loop charges it
//! ([`crate::kernel::cpu`]): a sleeping task uses none. Sleeps are interruptible by
//! signals and restart with the remaining time when the signal ran no handler. Interval
//! timers and POSIX timers live in [`crate::kernel::timer`]; `ITIMER_VIRTUAL`,
//! `ITIMER_PROF` and timers on CPU clocks run on CPU time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use linux_abi::Errno;
use linux_abi::types::{Timespec, Timeval};

use super::SyscallEntry;
use crate::kernel::Task;
use crate::kernel::timer::{CpuClock, CpuKind, CpuTarget, TimerClock};

/// The time system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_CLOCK_GETTIME => clock_gettime(Clock, Ptr) = sys_clock_gettime;
    SYS_CLOCK_GETRES => clock_getres(Clock, Ptr) = sys_clock_getres;
    SYS_GETTIMEOFDAY => gettimeofday(Ptr, Ptr) = sys_gettimeofday;
    SYS_TIME => time(Ptr) = sys_time;
    SYS_NANOSLEEP => nanosleep(Ptr, Ptr) = sys_nanosleep;
    SYS_CLOCK_NANOSLEEP => clock_nanosleep(Clock, Hex, Ptr, Ptr) = sys_clock_nanosleep;
    SYS_TIMES => times(Ptr) = sys_times;
    SYS_GETITIMER => getitimer(Int, Ptr) = sys_getitimer;
    SYS_SETITIMER => setitimer(Int, Ptr, Ptr) = sys_setitimer;
    SYS_ALARM => alarm(Uint) = sys_alarm;
    SYS_TIMER_CREATE => timer_create(Clock, Ptr, Ptr) = sys_timer_create;
    SYS_TIMER_SETTIME => timer_settime(Int, Hex, Ptr, Ptr) = sys_timer_settime;
    SYS_TIMER_GETTIME => timer_gettime(Int, Ptr) = sys_timer_gettime;
    SYS_TIMER_GETOVERRUN => timer_getoverrun(Int) = sys_timer_getoverrun;
    SYS_TIMER_DELETE => timer_delete(Int) = sys_timer_delete;
    SYS_CLOCK_SETTIME => clock_settime(Clock, Ptr) = sys_clock_settime;
    SYS_SETTIMEOFDAY => settimeofday(Ptr, Ptr) = sys_settimeofday;
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

/// The CPU clock `clock` names, for a clock id that is one (`None` otherwise):
/// `CLOCK_PROCESS_CPUTIME_ID`, `CLOCK_THREAD_CPUTIME_ID`, or a dynamic id from
/// `clock_getcpuclockid`/`pthread_getcpuclockid` (`~pid << 3 | per_thread << 2 | kind`,
/// pid 0 = the caller). As Linux's `pid_for_clock`: a thread's clock only within the
/// caller's process, a process's clock by its pid (or, for reading, the caller's own
/// tid); anything else is `EINVAL` (glibc turns that into `ESRCH`).
fn cpu_clock(t: &Task, clock: i32, gettime: bool) -> Result<Option<CpuClock>, Errno> {
    let me = || -> Result<CpuTarget, Errno> {
        let task = t.kernel().task(t.tid()).ok_or(Errno::EINVAL)?;
        Ok(CpuTarget::Thread(std::sync::Arc::downgrade(&task)))
    };
    let my_process = || CpuTarget::Process(std::sync::Arc::downgrade(t.thread_group()));
    let (target, kind) = match clock {
        CLOCK_PROCESS_CPUTIME_ID => (my_process(), CpuKind::Sched),
        CLOCK_THREAD_CPUTIME_ID => (me()?, CpuKind::Sched),
        c if c >= 0 => return Ok(None),
        c => {
            let kind = match c & 3 {
                0 => CpuKind::Prof,
                1 => CpuKind::Virt,
                2 => CpuKind::Sched,
                _ => return Err(Errno::EINVAL),
            };
            let per_thread = c & 4 != 0;
            let pid = !(c >> 3);
            let target = match (pid, per_thread) {
                (0, true) => me()?,
                (0, false) => my_process(),
                (pid, true) => {
                    let task = t.kernel().task(pid).ok_or(Errno::EINVAL)?;
                    if task.tgid() != t.tgid() {
                        return Err(Errno::EINVAL);
                    }
                    CpuTarget::Thread(std::sync::Arc::downgrade(&task))
                }
                (pid, false) if gettime && pid == t.tid() => my_process(),
                (pid, false) => {
                    let tg = t.kernel().thread_group(pid).ok_or(Errno::EINVAL)?;
                    CpuTarget::Process(std::sync::Arc::downgrade(&tg))
                }
            };
            (target, kind)
        }
    };
    Ok(Some(CpuClock { target, kind }))
}

/// Reads clock `clock` for `t`.
pub fn clock_now(t: &Task, clock: i32) -> Result<Duration, Errno> {
    // The caller's own clocks, read without a lookup.
    match clock {
        CLOCK_PROCESS_CPUTIME_ID => return Ok(t.thread_group().cpu_time()),
        CLOCK_THREAD_CPUTIME_ID => return Ok(t.cpu_time()),
        _ => {}
    }
    if let Some(c) = cpu_clock(t, clock, true)? {
        return c.now().ok_or(Errno::EINVAL);
    }
    Ok(match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => realtime(),
        CLOCK_MONOTONIC
        | CLOCK_MONOTONIC_RAW
        | CLOCK_MONOTONIC_COARSE
        | CLOCK_BOOTTIME
        | CLOCK_BOOTTIME_ALARM => monotonic(t),
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
    if cpu_clock(t, clock, false)?.is_none() {
        clock_now(t, clock)?;
    }
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

/// `clock_settime(clock, tp)`: the sandbox may not set the host's clocks, as a container
/// without `CAP_SYS_TIME`: `EPERM` for the settable clock (`CLOCK_REALTIME`), `EINVAL` for
/// clocks that cannot be set, as Linux.
pub fn sys_clock_settime(t: &Task, clock: i32, tp: u64) -> Result<u64, Errno> {
    // Only a clock_getcpuclockid id has Linux's posix_cpu_clock_set (EPERM); the fixed
    // CPU clock ids have no setter (EINVAL, below).
    let cpu = clock < 0 && cpu_clock(t, clock, false)?.is_some();
    clock_now(t, clock)?;
    let v: Timespec = t.mm().read_obj(tp)?;
    if cpu {
        // Linux's posix_cpu_clock_set: CPU clocks cannot be set.
        return Err(Errno::EPERM);
    }
    if clock != CLOCK_REALTIME || v.tv_sec < 0 || !(0..1_000_000_000).contains(&v.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Err(Errno::EPERM)
}

/// `settimeofday(tv, tz)`: `EPERM` after the argument checks (see [`sys_clock_settime`]).
pub fn sys_settimeofday(t: &Task, tv: u64, tz: u64) -> Result<u64, Errno> {
    if tv != 0 {
        let v: Timeval = t.mm().read_obj(tv)?;
        if v.tv_sec < 0 || !(0..1_000_000).contains(&v.tv_usec) {
            return Err(Errno::EINVAL);
        }
    }
    if tz != 0 {
        let _: [i32; 2] = t.mm().read_obj(tz)?;
    }
    Err(Errno::EPERM)
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

/// Sleeps until `deadline` (`None`: forever) unless interrupted; returns whether the
/// sleep completed.
fn sleep_until(t: &Task, deadline: Option<Instant>) -> bool {
    matches!(t.block_on::<()>(deadline, || None), Err(Errno::ETIMEDOUT))
}

/// A relative sleep of `d`, writing the time left to `rem` when interrupted; after a
/// signal that ran no handler the sleep continues (`restart_syscall`) until the same
/// deadline.
fn relative_sleep(t: &Task, d: Duration, rem: u64) -> Result<u64, Errno> {
    let deadline = Instant::now().checked_add(d);
    sleep_to(t, deadline, rem)
}

fn sleep_to(t: &Task, deadline: Option<Instant>, rem: u64) -> Result<u64, Errno> {
    if sleep_until(t, deadline) {
        return Ok(0);
    }
    if rem != 0 {
        let left = deadline.map_or(Duration::from_secs(i64::MAX as u64 / 2), |d| {
            d.saturating_duration_since(Instant::now())
        });
        t.mm().write_obj(rem, &ts(left))?;
    }
    t.set_restart(Some(Box::new(move |t: &Task| sleep_to(t, deadline, rem))));
    Err(Errno::ERESTART_RESTARTBLOCK)
}

/// `nanosleep(req, rem)`.
pub fn sys_nanosleep(t: &Task, req: u64, rem: u64) -> Result<u64, Errno> {
    let d = read_timespec(t, req)?;
    relative_sleep(t, d, rem)
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
    if let Some(c) = cpu_clock(t, clock, false)? {
        // Linux's posix_cpu_nsleep: not on the caller's own thread clock (it could
        // never advance while the caller sleeps).
        if let CpuTarget::Thread(w) = &c.target
            && w.upgrade().is_some_and(|x| x.tid() == t.tid())
        {
            return Err(Errno::EINVAL);
        }
        let v = read_timespec(t, req)?;
        let now = c.now().ok_or(Errno::EINVAL)?;
        let abs = flags & TIMER_ABSTIME != 0;
        let target = if abs { v } else { now.saturating_add(v) };
        return cpu_sleep(t, c, target, abs, rem);
    }
    let now = clock_now(t, clock)?;
    let v = read_timespec(t, req)?;
    if flags & TIMER_ABSTIME != 0 {
        // An absolute sleep restarts with the same absolute time (ERESTARTNOHAND).
        let deadline = Instant::now().checked_add(v.saturating_sub(now));
        if sleep_until(t, deadline) {
            return Ok(0);
        }
        return Err(Errno::ERESTARTNOHAND);
    }
    relative_sleep(t, v, rem)
}

/// Sleeps until CPU clock `c` reaches `target` (polled at the CPU ticker's period: the
/// clock advances only while others compute). Interrupted, an absolute sleep restarts
/// as it was; a relative one writes the time left to `rem` and goes on to the same
/// target.
fn cpu_sleep(t: &Task, c: CpuClock, target: Duration, abs: bool, rem: u64) -> Result<u64, Errno> {
    let mut now;
    loop {
        match c.now() {
            // The process or thread whose clock it is has gone.
            None => return Ok(0),
            Some(n) if n >= target => return Ok(0),
            Some(n) => now = n,
        }
        let wake = Instant::now().checked_add(crate::kernel::cpu::TICK);
        match t.block_on::<()>(wake, || None) {
            Err(Errno::ETIMEDOUT) => continue,
            _ => break,
        }
    }
    if abs {
        return Err(Errno::ERESTARTNOHAND);
    }
    if rem != 0 {
        t.mm().write_obj(rem, &ts(target.saturating_sub(now)))?;
    }
    t.set_restart(Some(Box::new(move |t: &Task| {
        cpu_sleep(t, c.clone(), target, false, rem)
    })));
    Err(Errno::ERESTART_RESTARTBLOCK)
}

const ITIMER_REAL: i32 = 0;
const ITIMER_VIRTUAL: i32 = 1;
const ITIMER_PROF: i32 = 2;

fn tv(d: Duration) -> Timeval {
    Timeval {
        tv_sec: d.as_secs() as i64,
        tv_usec: i64::from(d.subsec_micros()),
    }
}

fn read_timeval(t: &Task, addr: u64) -> Result<Duration, Errno> {
    let v: Timeval = t.mm().read_obj(addr)?;
    if v.tv_sec < 0 || !(0..1_000_000).contains(&v.tv_usec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000))
}

fn itimer(t: &Task, which: i32) -> Result<std::sync::Arc<crate::kernel::timer::Timer>, Errno> {
    use linux_abi::signal::{SIGALRM, SIGPROF, SIGVTALRM};
    let sig = match which {
        ITIMER_REAL => SIGALRM,
        ITIMER_VIRTUAL => SIGVTALRM,
        ITIMER_PROF => SIGPROF,
        _ => return Err(Errno::EINVAL),
    };
    let tg = t.thread_group();
    tg.timers
        .itimer(tg, which as usize, sig)
        .ok_or(Errno::EINVAL)
}

/// `getitimer(which, value)`.
pub fn sys_getitimer(t: &Task, which: i32, value: u64) -> Result<u64, Errno> {
    let (left, interval) = itimer(t, which)?.get();
    t.mm().write_obj(value, &[tv(interval), tv(left)])?;
    Ok(0)
}

/// `setitimer(which, new, old)`.
pub fn sys_setitimer(t: &Task, which: i32, new: u64, old: u64) -> Result<u64, Errno> {
    let timer = itimer(t, which)?;
    let (interval, value) = if new == 0 {
        (Duration::ZERO, Duration::ZERO)
    } else {
        (read_timeval(t, new)?, read_timeval(t, new + 16)?)
    };
    let (oleft, ointerval) = timer.arm(value, interval);
    if timer.is_cpu() && !value.is_zero() {
        t.kernel().kick_cpu_ticker();
    }
    if old != 0 {
        t.mm().write_obj(old, &[tv(ointerval), tv(oleft)])?;
    }
    Ok(0)
}

/// `alarm(seconds)`: returns the seconds left on the previous alarm (rounded up).
pub fn sys_alarm(t: &Task, secs: u32) -> Result<u64, Errno> {
    let timer = itimer(t, ITIMER_REAL)?;
    let (left, _) = timer.arm(Duration::from_secs(u64::from(secs)), Duration::ZERO);
    let mut s = left.as_secs();
    if left.subsec_nanos() >= 500_000_000 || (s == 0 && !left.is_zero()) {
        s += 1;
    }
    Ok(s)
}

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD_ID: i32 = 4;

/// `struct sigevent` (64 bytes): value, signo, notify, then the thread id.
#[repr(C)]
#[derive(zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
struct SigEvent {
    value: u64,
    signo: i32,
    notify: i32,
    tid: i32,
    _pad: [i32; 11],
}

/// `timer_create(clock, sevp, timerid)`.
pub fn sys_timer_create(t: &Task, clock: i32, sevp: u64, timerid: u64) -> Result<u64, Errno> {
    use crate::kernel::timer::{Notify, SI_TIMER, Timer};
    let timer_clock = match cpu_clock(t, clock, false)? {
        Some(c) => TimerClock::Cpu(c),
        None => {
            clock_now(t, clock)?;
            match clock {
                CLOCK_REALTIME | CLOCK_REALTIME_ALARM | CLOCK_TAI => TimerClock::Realtime,
                CLOCK_REALTIME_COARSE | CLOCK_MONOTONIC_COARSE | CLOCK_MONOTONIC_RAW => {
                    // Linux has no timers on these clocks.
                    return Err(Errno::EINVAL);
                }
                _ => TimerClock::Monotonic,
            }
        }
    };
    let tg = t.thread_group().clone();
    let (notify_kind, signo, value, tid) = if sevp == 0 {
        (SIGEV_SIGNAL, linux_abi::signal::SIGALRM, None, 0)
    } else {
        let ev: SigEvent = t.mm().read_obj(sevp)?;
        (ev.notify, ev.signo, Some(ev.value), ev.tid)
    };
    let thread = match notify_kind {
        SIGEV_NONE | SIGEV_SIGNAL => None,
        SIGEV_THREAD_ID => {
            let task = t.kernel().task(tid).ok_or(Errno::EINVAL)?;
            if task.tgid() != t.tgid() {
                return Err(Errno::EINVAL);
            }
            Some(task)
        }
        _ => return Err(Errno::EINVAL),
    };
    if notify_kind != SIGEV_NONE && !(1..=64).contains(&signo) {
        return Err(Errno::EINVAL);
    }
    let id = tg
        .timers
        .create(|id| {
            let notify = if notify_kind == SIGEV_NONE {
                Notify::None
            } else {
                Notify::Signal {
                    signo,
                    code: SI_TIMER,
                    // Without a sigevent, si_value is the timer id.
                    value: value.unwrap_or(id as u64),
                    id,
                }
            };
            Timer::with_clock(&tg, thread.as_ref(), notify, timer_clock.clone())
        })
        .ok_or(Errno::EAGAIN)?;
    if let Err(e) = t.mm().write_obj(timerid, &id) {
        tg.timers.delete(id);
        return Err(e);
    }
    Ok(0)
}

fn posix_timer(t: &Task, id: i32) -> Result<std::sync::Arc<crate::kernel::timer::Timer>, Errno> {
    t.thread_group().timers.get(id).ok_or(Errno::EINVAL)
}

/// `timer_settime(id, flags, new, old)`.
pub fn sys_timer_settime(t: &Task, id: i32, flags: u32, new: u64, old: u64) -> Result<u64, Errno> {
    // No new setting at all is EINVAL, before anything is read (Linux's order).
    if new == 0 {
        return Err(Errno::EINVAL);
    }
    let timer = posix_timer(t, id)?;
    let interval = read_timespec(t, new)?;
    let mut value = read_timespec(t, new + 16)?;
    if flags & TIMER_ABSTIME != 0 && !value.is_zero() {
        // An absolute time on the timer's clock (an expired time fires at once).
        let now = match timer.clock() {
            TimerClock::Realtime => realtime(),
            TimerClock::Monotonic => monotonic(t),
            TimerClock::Cpu(c) => c.now().unwrap_or_default(),
        };
        value = value.saturating_sub(now).max(Duration::from_nanos(1));
    }
    let (oleft, ointerval) = timer.arm(value, interval);
    if timer.is_cpu() && !value.is_zero() {
        t.kernel().kick_cpu_ticker();
    }
    if old != 0 {
        t.mm().write_obj(old, &[ts(ointerval), ts(oleft)])?;
    }
    Ok(0)
}

/// `timer_gettime(id, cur)`.
pub fn sys_timer_gettime(t: &Task, id: i32, cur: u64) -> Result<u64, Errno> {
    let (left, interval) = posix_timer(t, id)?.get();
    t.mm().write_obj(cur, &[ts(interval), ts(left)])?;
    Ok(0)
}

/// `timer_getoverrun(id)`.
pub fn sys_timer_getoverrun(t: &Task, id: i32) -> Result<u64, Errno> {
    Ok(posix_timer(t, id)?.overrun() as u64)
}

/// `timer_delete(id)`.
pub fn sys_timer_delete(t: &Task, id: i32) -> Result<u64, Errno> {
    if t.thread_group().timers.delete(id) {
        Ok(0)
    } else {
        Err(Errno::EINVAL)
    }
}

/// `times(buf)`: user and system time of the process and of its reaped children, in
/// clock ticks (`USER_HZ` = 100); returns ticks since boot.
pub fn sys_times(t: &Task, buf: u64) -> Result<u64, Errno> {
    let ticks = |d: Duration| (d.as_millis() / 10) as i64;
    if buf != 0 {
        let tg = t.thread_group();
        let me = tg.cpu_times();
        let children = tg.children_cpu_times();
        t.mm().write_obj(
            buf,
            &[
                ticks(me.user),
                ticks(me.sys),
                ticks(children.user),
                ticks(children.sys),
            ],
        )?;
    }
    Ok(ticks(monotonic(t)) as u64)
}
