//! The Sentry's only host FFI: the few libc calls it makes itself, each a safe function.
//!
//! The crate denies `unsafe_code`; this module alone allows it, with a `// SAFETY:` line
//! on each block. Every call here must also be in the Sentry's seccomp filter
//! (`rsentry/src/seccomp.rs`).

use std::os::fd::RawFd;

use linux_abi::Errno;

/// Fills `buf` with random bytes from the host's `getrandom`, retrying on `EINTR`.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        done += getrandom(&mut buf[done..])?;
    }
    Ok(())
}

/// One `getrandom` into `buf` (retried on `EINTR`): the number of bytes written.
pub(crate) fn getrandom(buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`, which is valid and
        // exclusively borrowed.
        let r = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = Errno::last_os_error();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// The host's total and free memory in bytes (`sysinfo`), if it answers.
pub(crate) fn memory() -> Option<(u64, u64)> {
    let mut si = std::mem::MaybeUninit::<libc::sysinfo>::zeroed();
    // SAFETY: sysinfo fills the struct it is given; it is zero-initialised beforehand.
    let r = unsafe { libc::sysinfo(si.as_mut_ptr()) };
    if r != 0 {
        return None;
    }
    // SAFETY: sysinfo succeeded, so the struct is initialised (and was zeroed before).
    let si = unsafe { si.assume_init() };
    let unit = u64::from(si.mem_unit.max(1));
    Some((si.totalram * unit, si.freeram * unit))
}

/// The CPU time the calling host thread has used (`CLOCK_THREAD_CPUTIME_ID`): the
/// Sentry's work on behalf of the task this thread runs ([`crate::kernel::cpu`]).
pub(crate) fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which is valid and exclusively
    // borrowed.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The host CPU the calling thread runs on.
pub(crate) fn current_cpu() -> u32 {
    // SAFETY: sched_getcpu has no arguments and no memory effects.
    unsafe { libc::sched_getcpu() }.max(0) as u32
}

/// `ioctl(fd, cmd, buf)` for the fixed set of terminal ioctls whose argument is a buffer
/// of at most `buf.len()` bytes (the caller sizes `buf` for `cmd`).
pub(crate) fn ioctl_buf(fd: RawFd, cmd: u32, buf: &mut [u8]) -> Result<(), Errno> {
    // SAFETY: `cmd` is one of a fixed set of ioctls whose argument points to a buffer of
    // at most `buf.len()` bytes, and `buf` is valid and exclusively borrowed; `fd` is a
    // descriptor this process owns.
    let r = unsafe { libc::ioctl(fd, cmd as libc::c_ulong, buf.as_mut_ptr()) };
    if r < 0 {
        return Err(Errno::last_os_error());
    }
    Ok(())
}

/// `ioctl(fd, cmd, arg)` for the terminal ioctls whose argument is an integer passed by
/// value (`TCFLSH`, `TCXONC`, `TCSBRK`).
pub(crate) fn ioctl_int(fd: RawFd, cmd: u32, arg: u64) -> Result<(), Errno> {
    // SAFETY: `cmd` is one of a fixed set of ioctls whose argument is an integer, not a
    // pointer: the host reads no memory of ours; `fd` is a descriptor this process owns.
    let r = unsafe { libc::ioctl(fd, cmd as libc::c_ulong, arg as libc::c_ulong) };
    if r < 0 {
        return Err(Errno::last_os_error());
    }
    Ok(())
}

/// Waits at most `timeout` for `fd` to become readable (or to report a hang-up or an
/// error, which the read that follows returns); true when it did.
pub(crate) fn wait_readable(fd: RawFd, timeout: std::time::Duration) -> Result<bool, Errno> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `pfd` is one valid pollfd and `ts` a valid timespec, both owned by this
    // frame for the duration of the call; no signal mask is passed.
    let r = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    match r {
        r if r > 0 => Ok(true),
        0 => Ok(false),
        _ => match Errno::last_os_error() {
            Errno::EINTR => Ok(false),
            e => Err(e),
        },
    }
}

/// The status flags of `fd` (`fcntl(F_GETFL)`), or `None` if the host refuses.
pub(crate) fn status_flags(fd: RawFd) -> Option<u32> {
    // SAFETY: F_GETFL takes no argument and only reads the flags of our own descriptor.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    (fl >= 0).then_some(fl as u32)
}

pub(crate) mod net;

/// `ioctl(fd, cmd, &mut int)` for the socket queue ioctls (`FIONREAD`, `SIOCOUTQ`).
pub(crate) fn ioctl_read_int(fd: RawFd, cmd: u32) -> Result<i32, Errno> {
    let mut v = [0u8; 4];
    ioctl_buf(fd, cmd, &mut v)?;
    Ok(i32::from_ne_bytes(v))
}
