//! Host socket calls for `--network=host` (the Sentry's hostinet, `crate::net::hostinet`):
//! each a safe function on a descriptor the Sentry owns, with buffers the Sentry owns.
//! Application memory never reaches the host: callers copy through the Sentry first.
//!
//! Every call here is allowed only by the host-network mode's seccomp filter
//! (`rsentry/src/seccomp.rs`, `host_network_allowlist`); the default filter has none.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use linux_abi::Errno;

/// Retries `f` while it fails with `EINTR`; maps -1 to the thread's errno.
fn retry(mut f: impl FnMut() -> isize) -> Result<usize, Errno> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = Errno::last_os_error();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// Longest socket address handled (`sizeof(struct sockaddr_storage)`).
const SOCKADDR_MAX: usize = 128;

/// `socket(family, ty | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol)`: host sockets are always
/// non-blocking (the Sentry waits, interruptibly) and never inherited.
pub(crate) fn socket(family: i32, ty: i32, protocol: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: socket takes integers only.
    let fd = retry(|| unsafe {
        libc::socket(
            family,
            ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            protocol,
        ) as isize
    })?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn addr_len(addr: &[u8]) -> Result<libc::socklen_t, Errno> {
    if addr.len() > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    Ok(addr.len() as libc::socklen_t)
}

/// `bind(fd, addr)`.
pub(crate) fn bind(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    let len = addr_len(addr)?;
    // SAFETY: the kernel reads at most `len` bytes of `addr`, which is valid for that long.
    retry(|| unsafe { libc::bind(fd.as_raw_fd(), addr.as_ptr().cast(), len) as isize })?;
    Ok(())
}

/// `connect(fd, addr)` (non-blocking: `EINPROGRESS` for a stream not yet connected).
pub(crate) fn connect(fd: BorrowedFd<'_>, addr: &[u8]) -> Result<(), Errno> {
    let len = addr_len(addr)?;
    // SAFETY: as for bind.
    let r = unsafe { libc::connect(fd.as_raw_fd(), addr.as_ptr().cast(), len) };
    if r < 0 {
        // An interrupted connect goes on in the background, as EINPROGRESS says.
        let e = Errno::last_os_error();
        return Err(if e == Errno::EINTR {
            Errno::EINPROGRESS
        } else {
            e
        });
    }
    Ok(())
}

/// `listen(fd, backlog)`.
pub(crate) fn listen(fd: BorrowedFd<'_>, backlog: i32) -> Result<(), Errno> {
    // SAFETY: integers only.
    retry(|| unsafe { libc::listen(fd.as_raw_fd(), backlog) as isize })?;
    Ok(())
}

/// `accept4(fd, SOCK_NONBLOCK | SOCK_CLOEXEC)`: the connection and its peer's address.
pub(crate) fn accept(fd: BorrowedFd<'_>) -> Result<(OwnedFd, Vec<u8>), Errno> {
    let mut buf = [0u8; SOCKADDR_MAX];
    let mut len = SOCKADDR_MAX as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `buf` and the length into `len`,
    // both valid and exclusively borrowed.
    let n = retry(|| unsafe {
        libc::accept4(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        ) as isize
    })?;
    // SAFETY: a new descriptor from the kernel, owned by nobody else.
    let conn = unsafe { OwnedFd::from_raw_fd(n as i32) };
    Ok((conn, buf[..(len as usize).min(SOCKADDR_MAX)].to_vec()))
}

/// `sendto(fd, data, flags | MSG_DONTWAIT | MSG_NOSIGNAL, to)`: never blocks, never
/// raises `SIGPIPE` in the Sentry (the application's is the caller's business).
pub(crate) fn send(
    fd: BorrowedFd<'_>,
    data: &[u8],
    flags: i32,
    to: Option<&[u8]>,
) -> Result<usize, Errno> {
    let flags = flags | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let (ptr, len) = match to {
        Some(a) => (a.as_ptr(), addr_len(a)?),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: the kernel reads `data.len()` bytes of `data` and `len` bytes at `ptr`
    // (null with length 0 when there is no address); both are valid for those lengths.
    retry(|| unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            data.as_ptr().cast(),
            data.len(),
            flags,
            ptr.cast(),
            len,
        )
    })
}

/// `recvfrom(fd, buf, flags | MSG_DONTWAIT)`: the length the kernel returned (the full
/// datagram length with `MSG_TRUNC`) and the sender's address (empty for a stream).
pub(crate) fn recv(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: i32,
) -> Result<(usize, Vec<u8>), Errno> {
    let mut from = [0u8; SOCKADDR_MAX];
    let mut len = SOCKADDR_MAX as libc::socklen_t;
    let flags = flags | libc::MSG_DONTWAIT;
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf` and at most `len`
    // bytes into `from`; all are valid and exclusively borrowed.
    let n = retry(|| unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags,
            from.as_mut_ptr().cast(),
            &mut len,
        )
    })?;
    Ok((n, from[..(len as usize).min(SOCKADDR_MAX)].to_vec()))
}

/// `shutdown(fd, how)`.
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: i32) -> Result<(), Errno> {
    // SAFETY: integers only.
    retry(|| unsafe { libc::shutdown(fd.as_raw_fd(), how) as isize })?;
    Ok(())
}

/// `getsockname` (`peer`: `getpeername`).
pub(crate) fn name(fd: BorrowedFd<'_>, peer: bool) -> Result<Vec<u8>, Errno> {
    let mut buf = [0u8; SOCKADDR_MAX];
    let mut len = SOCKADDR_MAX as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `buf` and the length into `len`.
    retry(|| unsafe {
        if peer {
            libc::getpeername(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len) as isize
        } else {
            libc::getsockname(fd.as_raw_fd(), buf.as_mut_ptr().cast(), &mut len) as isize
        }
    })?;
    Ok(buf[..(len as usize).min(SOCKADDR_MAX)].to_vec())
}

/// `getsockopt(fd, level, name)` into a buffer of `cap` bytes: the bytes the kernel wrote.
pub(crate) fn getsockopt(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    cap: usize,
) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; cap];
    let mut len = cap as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` (= buf.len()) bytes into `buf` and the
    // length into `len`; the caller allows only options whose value is plain data.
    retry(|| unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut len,
        ) as isize
    })?;
    buf.truncate((len as usize).min(cap));
    Ok(buf)
}

/// `setsockopt(fd, level, name, val)`.
pub(crate) fn setsockopt(
    fd: BorrowedFd<'_>,
    level: i32,
    name: i32,
    val: &[u8],
) -> Result<(), Errno> {
    // SAFETY: the kernel reads `val.len()` bytes of `val`; the caller allows only options
    // whose value is plain data (no pointers inside, unlike SO_ATTACH_FILTER).
    retry(|| unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            val.as_ptr().cast(),
            val.len() as libc::socklen_t,
        ) as isize
    })?;
    Ok(())
}

/// The `poll` events ready on `fd` now (`ppoll` with a zero timeout).
pub(crate) fn poll_now(fd: BorrowedFd<'_>, events: i16) -> Result<u32, Errno> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: one pollfd and one timespec, both valid; no signal mask.
    retry(|| unsafe { libc::ppoll(&mut p, 1, &zero, std::ptr::null()) as isize })?;
    Ok(u32::from(p.revents as u16))
}

/// A host epoll instance: how the Sentry learns that its host sockets became ready.
#[derive(Debug)]
pub(crate) struct Epoll(OwnedFd);

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub(crate) fn new() -> Result<Epoll, Errno> {
        // SAFETY: integers only.
        let fd = retry(|| unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) as isize })?;
        // SAFETY: a new descriptor from the kernel.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Watches `fd` for `events`, reported with `key`.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, events: u32, key: u64) -> Result<(), Errno> {
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: one epoll_event, valid for the call.
        retry(|| unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            ) as isize
        })?;
        Ok(())
    }

    /// Stops watching `fd`.
    pub(crate) fn del(&self, fd: BorrowedFd<'_>) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as for add (the event is ignored by EPOLL_CTL_DEL).
        let _ = unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
    }

    /// Waits up to `timeout_ms` for events: (key, events) pairs, at most 64.
    pub(crate) fn wait(&self, timeout_ms: i32) -> Vec<(u64, u32)> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        // SAFETY: the kernel writes at most 64 events into `evs`.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                evs.as_mut_ptr(),
                evs.len() as i32,
                timeout_ms,
            )
        };
        if n <= 0 {
            return Vec::new();
        }
        evs[..n as usize]
            .iter()
            .map(|e| {
                let (k, ev) = (e.u64, e.events);
                (k, ev)
            })
            .collect()
    }
}
