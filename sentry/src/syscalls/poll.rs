//! Waiting for file readiness: `poll`, `ppoll`, `select`, `pselect6`, the `epoll` family,
//! and the waitable anonymous files `eventfd2` and `timerfd_*`.
//!
//! All of them sleep with [`crate::waiter::block`] on the wait queues of the files
//! involved ([`FileOps::wait_queue`]), re-checking [`FileOps::readiness`] after each wake.
//! Files without a queue whose readiness can still change (host descriptors such as a
//! terminal on stdin, [`FileOps::needs_polling`]) are re-checked every
//! [`POLL_SLICE`] instead: the host FD is polled with a zero timeout, so no helper thread
//! is needed and nothing is left blocked in the host when the task is interrupted.
//!
//! The signal-mask variants (`ppoll`, `pselect6`, `epoll_pwait`) install the given mask
//! for the duration of the wait and restore the old one afterwards.
//!
//! [`FileOps::wait_queue`]: crate::fs::FileOps::wait_queue
//! [`FileOps::readiness`]: crate::fs::FileOps::readiness
//! [`FileOps::needs_polling`]: crate::fs::FileOps::needs_polling

use std::sync::Arc;
use std::time::{Duration, Instant};

use linux_abi::Errno;
use linux_abi::flags::open::*;
use linux_abi::types::{Timespec, Timeval};

use super::SyscallEntry;
use crate::fs::anon::anon_file;
use crate::fs::epoll::{EPOLLET, EPOLLEXCLUSIVE, EPOLLONESHOT, EPOLLWAKEUP, Epoll};
use crate::fs::eventfd::{EFD_CLOEXEC, EFD_NONBLOCK, EFD_SEMAPHORE, EventFd};
use crate::fs::timerfd::TimerFd;
use crate::fs::{Caller, OpenFile};
use crate::kernel::Task;
use crate::waiter::{Events, WaitQueue, block, events};

/// `RLIMIT_NOFILE`: `poll` refuses more descriptors than this limit.
const RLIMIT_NOFILE: usize = 7;

/// How often files without a wait queue are re-checked while a task waits on them.
pub const POLL_SLICE: Duration = Duration::from_millis(10);

/// The readiness system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_POLL => poll(Ptr, Uint, Int) = sys_poll;
    SYS_PPOLL => ppoll(Ptr, Uint, Ptr, Ptr, Uint) = sys_ppoll;
    SYS_SELECT => select(Int, Ptr, Ptr, Ptr, Ptr) = sys_select;
    SYS_PSELECT6 => pselect6(Int, Ptr, Ptr, Ptr, Ptr, Ptr) = sys_pselect6;
    SYS_EPOLL_CREATE => epoll_create(Int) -> Fd = sys_epoll_create;
    SYS_EPOLL_CREATE1 => epoll_create1(Hex) -> Fd = sys_epoll_create1;
    SYS_EPOLL_CTL => epoll_ctl(Fd, Int, Fd, Ptr) = sys_epoll_ctl;
    SYS_EPOLL_WAIT => epoll_wait(Fd, Ptr, Int, Int) = sys_epoll_wait;
    SYS_EPOLL_PWAIT => epoll_pwait(Fd, Ptr, Int, Int, Ptr, Uint) = sys_epoll_pwait;
    SYS_EPOLL_PWAIT2 => epoll_pwait2(Fd, Ptr, Int, Ptr, Ptr, Uint) = sys_epoll_pwait2;
    SYS_EVENTFD => eventfd(Uint) -> Fd = sys_eventfd;
    SYS_EVENTFD2 => eventfd2(Uint, Hex) -> Fd = sys_eventfd2;
    SYS_TIMERFD_CREATE => timerfd_create(Clock, Hex) -> Fd = sys_timerfd_create;
    SYS_TIMERFD_SETTIME => timerfd_settime(Fd, Hex, Ptr, Ptr) = sys_timerfd_settime;
    SYS_TIMERFD_GETTIME => timerfd_gettime(Fd, Ptr) = sys_timerfd_gettime;
];

/// Sleeps until `ready()` or `deadline`: `Ok(true)` when ready, `Ok(false)` at the
/// deadline, `EINTR` on a signal. With `polling`, wakes every [`POLL_SLICE`] to re-check.
pub fn wait_ready(
    queues: &[(&WaitQueue, Events)],
    deadline: Option<Instant>,
    polling: bool,
    mut ready: impl FnMut() -> bool,
) -> Result<bool, Errno> {
    loop {
        let slice = if polling {
            let s = Instant::now() + POLL_SLICE;
            Some(deadline.map_or(s, |d| d.min(s)))
        } else {
            deadline
        };
        match block(queues, slice, &mut ready) {
            Ok(()) => return Ok(true),
            Err(Errno::ETIMEDOUT) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn deadline_after(d: Duration) -> Option<Instant> {
    // A deadline too far away to represent is no deadline.
    Instant::now().checked_add(d)
}

fn timespec_duration(ts: &Timespec) -> Result<Duration, Errno> {
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

fn read_timespec(t: &Task, addr: u64) -> Result<Option<Duration>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.mm().read_obj(addr)?;
    timespec_duration(&ts).map(Some)
}

/// Runs `f` with the signal mask at `mask_addr` (if any) installed. The old mask comes
/// back afterwards, except when `f` was interrupted by a signal: then it is left for the
/// signal delivery to restore after the handler ran (like `rt_sigsuspend`), so a signal
/// unblocked only by the temporary mask is delivered.
fn with_sigmask<R>(
    t: &Task,
    mask_addr: u64,
    size: u64,
    f: impl FnOnce() -> Result<R, Errno>,
) -> Result<R, Errno> {
    if mask_addr == 0 {
        return f();
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask: u64 = t.mm().read_obj(mask_addr)?;
    let old = t.sigmask();
    t.set_sigmask(mask);
    let r = f();
    if r.as_ref().err() == Some(&Errno::EINTR) && t.has_deliverable_signal() {
        *t.saved_mask() = Some(old);
    } else {
        t.set_sigmask(old);
    }
    r
}

fn files_of(t: &Task, fds: &[i32]) -> Vec<Option<Arc<OpenFile>>> {
    let table = t.fd_table();
    fds.iter()
        .map(|&fd| if fd < 0 { None } else { table.get(fd).ok() })
        .collect()
}

/// The readiness of `f` for `poll` (`mask` is the requested events).
fn poll_one(caller: &Caller, f: &OpenFile, mask: Events) -> Events {
    let want = mask | events::ALWAYS;
    f.ops().readiness_for(caller, want) & want
}

fn queues_of(files: &[Option<Arc<OpenFile>>]) -> (Vec<(&WaitQueue, Events)>, bool) {
    let mut polling = false;
    let mut qs = Vec::new();
    for f in files.iter().flatten() {
        match f.ops().wait_queue() {
            Some(q) => qs.push((q, events::ALL)),
            None => polling |= f.ops().needs_polling(),
        }
    }
    (qs, polling)
}

/// The core of `poll`/`ppoll`: fills `revents` and returns how many are non-zero.
fn do_poll(
    t: &Task,
    pfds: &mut [(i32, u16, u16)],
    deadline: Option<Instant>,
) -> Result<u64, Errno> {
    let fds: Vec<i32> = pfds.iter().map(|p| p.0).collect();
    let files = files_of(t, &fds);
    let (qs, polling) = queues_of(&files);
    let mut count = 0;
    let caller = t.caller();
    let mut scan = |pfds: &mut [(i32, u16, u16)]| {
        count = 0;
        for (p, f) in pfds.iter_mut().zip(&files) {
            p.2 = match f {
                None if p.0 < 0 => 0,
                None => events::POLLNVAL as u16,
                Some(f) => poll_one(&caller, f, u32::from(p.1)) as u16,
            };
            if p.2 != 0 {
                count += 1;
            }
        }
        count > 0
    };
    wait_ready(&qs, deadline, polling, || scan(pfds))?;
    Ok(count)
}

fn poll_common(t: &Task, addr: u64, n: u32, deadline: Option<Instant>) -> Result<u64, Errno> {
    let limit = t
        .thread_group()
        .rlimit(RLIMIT_NOFILE)
        .map_or(1 << 20, |r| r.cur);
    if u64::from(n) > limit.max(1024) {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let mut raw = vec![0u8; n as usize * 8];
    mm.copy_in(addr, &mut raw)?;
    let mut pfds: Vec<(i32, u16, u16)> = raw
        .chunks_exact(8)
        .map(|c| {
            (
                i32::from_ne_bytes([c[0], c[1], c[2], c[3]]),
                u16::from_ne_bytes([c[4], c[5]]),
                0,
            )
        })
        .collect();
    let n = do_poll(t, &mut pfds, deadline)?;
    for (c, p) in raw.chunks_exact_mut(8).zip(&pfds) {
        c[6..8].copy_from_slice(&p.2.to_ne_bytes());
    }
    mm.copy_out(addr, &raw)?;
    Ok(n)
}

/// `poll(fds, nfds, timeout_ms)`.
pub fn sys_poll(t: &Task, fds: u64, n: u32, timeout: i32) -> Result<u64, Errno> {
    let deadline = if timeout < 0 {
        None
    } else {
        deadline_after(Duration::from_millis(timeout as u64))
    };
    poll_common(t, fds, n, deadline)
}

/// `ppoll(fds, nfds, timeout, sigmask, sigsetsize)`.
pub fn sys_ppoll(t: &Task, fds: u64, n: u32, ts: u64, mask: u64, size: u64) -> Result<u64, Errno> {
    let deadline = read_timespec(t, ts)?.and_then(deadline_after);
    let r = with_sigmask(t, mask, size, || poll_common(t, fds, n, deadline));
    if ts != 0 && !sticky_timeouts(t) && matches!(r, Ok(_) | Err(Errno::EINTR)) {
        let left = deadline.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let _ = t.mm().write_obj(ts, &to_timespec(left));
    }
    r
}

/// Whether the caller's personality has `STICKY_TIMEOUTS`: `select`, `pselect6` and
/// `ppoll` leave the timeout they were given as it was.
fn sticky_timeouts(t: &Task) -> bool {
    const STICKY_TIMEOUTS: u32 = 0x0400_0000;
    t.thread_group().personality() & STICKY_TIMEOUTS != 0
}

fn to_timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

const FD_SETSIZE: i32 = 1024;

fn select_common(
    t: &Task,
    nfds: i32,
    sets: [u64; 3],
    deadline: Option<Instant>,
) -> Result<u64, Errno> {
    if !(0..=FD_SETSIZE * 64).contains(&nfds) {
        return Err(Errno::EINVAL);
    }
    let nbytes = (nfds as usize).div_ceil(64) * 8;
    let mm = t.mm();
    let mut bits = [vec![0u8; nbytes], vec![0u8; nbytes], vec![0u8; nbytes]];
    for (b, &addr) in bits.iter_mut().zip(&sets) {
        if addr != 0 {
            mm.copy_in(addr, b)?;
        }
    }
    let is_set = |b: &[u8], fd: usize| b[fd / 8] & (1 << (fd % 8)) != 0;
    const IN: u32 = events::POLLIN
        | events::POLLRDNORM
        | events::POLLRDBAND
        | events::POLLHUP
        | events::POLLERR;
    const OUT: u32 = events::POLLOUT | events::POLLWRNORM | events::POLLWRBAND | events::POLLERR;
    const EX: u32 = events::POLLPRI;
    let mut pfds = Vec::new();
    for fd in 0..nfds as usize {
        let mut m = 0u32;
        if is_set(&bits[0], fd) {
            m |= IN;
        }
        if is_set(&bits[1], fd) {
            m |= OUT;
        }
        if is_set(&bits[2], fd) {
            m |= EX;
        }
        if m != 0 {
            pfds.push((fd as i32, m));
        }
    }
    let fds: Vec<i32> = pfds.iter().map(|p| p.0).collect();
    let files = files_of(t, &fds);
    if files.iter().any(Option::is_none) {
        return Err(Errno::EBADF);
    }
    let (qs, polling) = queues_of(&files);
    let mut out = [vec![0u8; nbytes], vec![0u8; nbytes], vec![0u8; nbytes]];
    let mut count = 0u64;
    let caller = t.caller();
    let mut scan = || {
        count = 0;
        for o in out.iter_mut() {
            o.fill(0);
        }
        for ((fd, m), f) in pfds.iter().zip(&files) {
            let Some(f) = f else { continue };
            let r = poll_one(&caller, f, *m);
            let fd = *fd as usize;
            for (i, class) in [IN, OUT, EX].into_iter().enumerate() {
                if m & class != 0 && r & class != 0 {
                    out[i][fd / 8] |= 1 << (fd % 8);
                    count += 1;
                }
            }
        }
        count > 0
    };
    wait_ready(&qs, deadline, polling, &mut scan)?;
    for (o, &addr) in out.iter().zip(&sets) {
        if addr != 0 {
            mm.copy_out(addr, o)?;
        }
    }
    Ok(count)
}

/// `select(nfds, readfds, writefds, exceptfds, timeout)`.
pub fn sys_select(t: &Task, nfds: i32, r: u64, w: u64, e: u64, tv: u64) -> Result<u64, Errno> {
    let deadline = if tv == 0 {
        None
    } else {
        let v: Timeval = t.mm().read_obj(tv)?;
        if v.tv_sec < 0 || !(0..1_000_000).contains(&v.tv_usec) {
            return Err(Errno::EINVAL);
        }
        deadline_after(Duration::new(v.tv_sec as u64, v.tv_usec as u32 * 1000))
    };
    let res = select_common(t, nfds, [r, w, e], deadline);
    if tv != 0 && !sticky_timeouts(t) {
        let left = deadline.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let _ = t.mm().write_obj(
            tv,
            &Timeval {
                tv_sec: left.as_secs() as i64,
                tv_usec: i64::from(left.subsec_micros()),
            },
        );
    }
    res
}

/// `pselect6(nfds, readfds, writefds, exceptfds, timeout, {sigmask, size})`.
pub fn sys_pselect6(
    t: &Task,
    nfds: i32,
    r: u64,
    w: u64,
    e: u64,
    ts: u64,
    sig: u64,
) -> Result<u64, Errno> {
    let deadline = read_timespec(t, ts)?.and_then(deadline_after);
    let (mask, size) = if sig == 0 {
        (0, 0)
    } else {
        t.mm().read_obj::<[u64; 2]>(sig)?.into()
    };
    let res = with_sigmask(t, mask, size, || {
        select_common(t, nfds, [r, w, e], deadline)
    });
    if ts != 0 && !sticky_timeouts(t) {
        let left = deadline.map_or(Duration::ZERO, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let _ = t.mm().write_obj(ts, &to_timespec(left));
    }
    res
}

// ---- epoll ----

fn epoll_of(t: &Task, fd: i32) -> Result<(Arc<OpenFile>, Arc<OpenFile>), Errno> {
    let f = t.fd_table().get(fd)?;
    if f.ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<Epoll>())
        .is_none()
    {
        return Err(Errno::EINVAL);
    }
    Ok((f.clone(), f))
}

fn as_epoll(f: &OpenFile) -> &Epoll {
    // Checked by `epoll_of`.
    f.ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<Epoll>())
        .unwrap_or_else(|| unreachable!("checked by epoll_of"))
}

/// `epoll_create1(flags)`.
pub fn sys_epoll_create1(t: &Task, flags: u32) -> Result<u64, Errno> {
    if flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let f = anon_file("eventpoll", 0o600, O_RDWR, Arc::new(Epoll::new()));
    Ok(t.fd_table().insert(f, flags & O_CLOEXEC != 0)? as u64)
}

/// `epoll_create(size)`.
pub fn sys_epoll_create(t: &Task, size: i32) -> Result<u64, Errno> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    sys_epoll_create1(t, 0)
}

/// `epoll_ctl(epfd, op, fd, event)`.
pub fn sys_epoll_ctl(t: &Task, epfd: i32, op: i32, fd: i32, ev: u64) -> Result<u64, Errno> {
    // An O_PATH descriptor is no file to either side (Linux's fdget skips them: EBADF).
    if t.fd_table().get(epfd)?.is_path_only() {
        return Err(Errno::EBADF);
    }
    let target = t.fd_table().get(fd)?;
    if target.is_path_only() {
        return Err(Errno::EBADF);
    }
    let (me, _) = epoll_of(t, epfd)?;
    let (events, data) = if op == crate::fs::epoll::EPOLL_CTL_DEL {
        (0, 0)
    } else {
        let mut raw = [0u8; 12];
        t.mm().copy_in(ev, &mut raw)?;
        let e = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let mut d = [0u8; 8];
        d.copy_from_slice(&raw[4..12]);
        (e, u64::from_ne_bytes(d))
    };
    if events & EPOLLEXCLUSIVE != 0
        && events
            & !(EPOLLEXCLUSIVE
                | EPOLLET
                | EPOLLWAKEUP
                | events::POLLIN
                | events::POLLOUT
                | events::ALWAYS
                | events::POLLRDNORM
                | events::POLLWRNORM)
            != 0
    {
        return Err(Errno::EINVAL);
    }
    if events & EPOLLEXCLUSIVE != 0 && events & EPOLLONESHOT != 0 {
        return Err(Errno::EINVAL);
    }
    as_epoll(&me).ctl(&me, op, fd, &target, events, data)?;
    Ok(0)
}

fn epoll_wait_common(
    t: &Task,
    epfd: i32,
    evs: u64,
    max: i32,
    deadline: Option<Instant>,
) -> Result<u64, Errno> {
    if max <= 0 || max > (i32::MAX / 12) {
        return Err(Errno::EINVAL);
    }
    let (f, _) = epoll_of(t, epfd)?;
    let ep = as_epoll(&f);
    let polling = ep.needs_polling_items();
    let mut got = Vec::new();
    wait_ready(&[(ep.queue(), events::ALL)], deadline, polling, || {
        got = ep.collect(&t.caller(), max as usize, false);
        !got.is_empty()
    })?;
    let mut raw = Vec::with_capacity(got.len() * 12);
    for e in &got {
        raw.extend_from_slice(&e.events.to_ne_bytes());
        raw.extend_from_slice(&e.data.to_ne_bytes());
    }
    t.mm().copy_out(evs, &raw)?;
    Ok(got.len() as u64)
}

fn ms_deadline(timeout: i32) -> Option<Instant> {
    if timeout < 0 {
        None
    } else {
        deadline_after(Duration::from_millis(timeout as u64))
    }
}

/// `epoll_wait(epfd, events, maxevents, timeout_ms)`.
pub fn sys_epoll_wait(t: &Task, epfd: i32, evs: u64, max: i32, timeout: i32) -> Result<u64, Errno> {
    epoll_wait_common(t, epfd, evs, max, ms_deadline(timeout))
}

/// `epoll_pwait(epfd, events, maxevents, timeout_ms, sigmask, sigsetsize)`.
pub fn sys_epoll_pwait(
    t: &Task,
    epfd: i32,
    evs: u64,
    max: i32,
    timeout: i32,
    mask: u64,
    size: u64,
) -> Result<u64, Errno> {
    with_sigmask(t, mask, size, || {
        epoll_wait_common(t, epfd, evs, max, ms_deadline(timeout))
    })
}

/// `epoll_pwait2(epfd, events, maxevents, timeout, sigmask, sigsetsize)`.
pub fn sys_epoll_pwait2(
    t: &Task,
    epfd: i32,
    evs: u64,
    max: i32,
    ts: u64,
    mask: u64,
    size: u64,
) -> Result<u64, Errno> {
    let deadline = read_timespec(t, ts)?.and_then(deadline_after);
    with_sigmask(t, mask, size, || {
        epoll_wait_common(t, epfd, evs, max, deadline)
    })
}

// ---- eventfd ----

/// `eventfd2(initval, flags)`.
pub fn sys_eventfd2(t: &Task, init: u32, flags: u32) -> Result<u64, Errno> {
    if flags & !(EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops = Arc::new(EventFd::new(u64::from(init), flags));
    let f = anon_file("eventfd", 0o600, O_RDWR | (flags & O_NONBLOCK), ops);
    Ok(t.fd_table().insert(f, flags & EFD_CLOEXEC != 0)? as u64)
}

/// `eventfd(initval)`.
pub fn sys_eventfd(t: &Task, init: u32) -> Result<u64, Errno> {
    sys_eventfd2(t, init, 0)
}

// ---- timerfd ----

fn timerfd_of(t: &Task, fd: i32) -> Result<Arc<OpenFile>, Errno> {
    let f = t.fd_table().get(fd)?;
    if f.ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<TimerFd>())
        .is_none()
    {
        return Err(Errno::EINVAL);
    }
    Ok(f)
}

fn as_timerfd(f: &OpenFile) -> &TimerFd {
    f.ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<TimerFd>())
        .unwrap_or_else(|| unreachable!("checked by timerfd_of"))
}

/// `timerfd_create(clockid, flags)`.
pub fn sys_timerfd_create(t: &Task, clock: i32, flags: u32) -> Result<u64, Errno> {
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let ops = TimerFd::new(clock, flags, t.kernel().timers().clone())?;
    let f = anon_file("timerfd", 0o600, O_RDWR | (flags & O_NONBLOCK), ops);
    Ok(t.fd_table().insert(f, flags & O_CLOEXEC != 0)? as u64)
}

fn write_itimerspec(t: &Task, addr: u64, (iv, v): ((i64, i64), (i64, i64))) -> Result<(), Errno> {
    t.mm().write_obj(
        addr,
        &[
            Timespec {
                tv_sec: iv.0,
                tv_nsec: iv.1,
            },
            Timespec {
                tv_sec: v.0,
                tv_nsec: v.1,
            },
        ],
    )
}

/// `timerfd_settime(fd, flags, new, old)`.
pub fn sys_timerfd_settime(
    t: &Task,
    fd: i32,
    flags: u32,
    new: u64,
    old: u64,
) -> Result<u64, Errno> {
    let f = timerfd_of(t, fd)?;
    let tf = as_timerfd(&f);
    let v: [Timespec; 2] = t.mm().read_obj(new)?;
    let now = super::time::clock_now(t, tf.clock())?;
    let prev = tf.set(
        flags,
        (v[0].tv_sec, v[0].tv_nsec),
        (v[1].tv_sec, v[1].tv_nsec),
        now,
    )?;
    if old != 0 {
        write_itimerspec(t, old, prev)?;
    }
    Ok(0)
}

/// `timerfd_gettime(fd, cur)`.
pub fn sys_timerfd_gettime(t: &Task, fd: i32, cur: u64) -> Result<u64, Errno> {
    let f = timerfd_of(t, fd)?;
    write_itimerspec(t, cur, as_timerfd(&f).get())?;
    Ok(0)
}
