//! The host calls of `runsc` that Rust cannot check, each with why it is sound; the rest of
//! the crate is safe Rust (`#![deny(unsafe_code)]`).
#![allow(unsafe_code)]

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A pidfd for host process `pid` (`None` when it is gone or pidfds are unavailable).
pub fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: the descriptor was just created by pidfd_open and is owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(raw as RawFd) })
}

/// Takes ownership of a descriptor the kernel just installed for us (`accept4`, an
/// `SCM_RIGHTS` message); callers pass each such number once, right away.
pub fn own_new_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: see above: a fresh descriptor nothing else in the process owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Makes terminal `fd` the controlling terminal of a new session led by the calling
/// process (`setsid`, then `TIOCSCTTY`), as a container's process with a terminal has it.
pub fn take_controlling_terminal(fd: RawFd) -> std::io::Result<()> {
    nix::unistd::setsid().map_err(std::io::Error::from)?;
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal), not a pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
