//! Starting `runsc` child processes (the Gofer, the sandbox) with chosen file descriptors.
//!
//! The parent duplicates every descriptor it hands down to a number at or above
//! [`HIGH_FD`] (close-on-exec), and the child, between `fork` and `exec`, `dup2`s them onto
//! their target numbers (which clears close-on-exec on the copies), unblocks all signals,
//! marks every other
//! descriptor from the first free target upwards close-on-exec, and asks for `SIGKILL` when
//! its parent dies. This is the only module of the crate that runs code in a forked child.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::fcntl::{FcntlArg, fcntl};

use crate::error::RunscError;

/// Descriptors handed to a child are first moved at or above this number, above every
/// target number, so the `dup2`s in the child never overwrite each other.
const HIGH_FD: RawFd = 64;

/// Spawns `cmd` with `fds` (each `(descriptor, target number)`) installed in the child.
/// Target numbers must be 3 or more and below [`HIGH_FD`]; stdio is set up by `cmd`.
pub fn spawn_with_fds(
    cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
) -> Result<Child, RunscError> {
    spawn(cmd, fds, what, true)
}

/// Like [`spawn_with_fds`], but the child outlives us (no `PR_SET_PDEATHSIG`) and gets a
/// process group of its own: the supervisor that `create` leaves running.
pub fn spawn_detached_with_fds(
    mut cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
) -> Result<Child, RunscError> {
    cmd.process_group(0);
    spawn(cmd, fds, what, false)
}

fn spawn(
    mut cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
    die_with_parent: bool,
) -> Result<Child, RunscError> {
    let mut moved: Vec<(OwnedFd, RawFd)> = Vec::with_capacity(fds.len());
    for (fd, target) in fds {
        if !(3..HIGH_FD).contains(target) {
            return Err(RunscError::Invalid(format!(
                "{what}: bad target fd {target}"
            )));
        }
        let raw = fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(HIGH_FD))
            .map_err(|e| RunscError::nix(format!("{what}: dup"), e))?;
        // SAFETY: F_DUPFD_CLOEXEC just created `raw`; nothing else owns it.
        let high = unsafe { OwnedFd::from_raw_fd(raw) };
        moved.push((high, *target));
    }
    let pairs: Vec<(RawFd, RawFd)> = moved.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
    let first_free = pairs.iter().map(|&(_, t)| t + 1).max().unwrap_or(3);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (sigemptyset, sigprocmask, prctl, dup2, close_range) on
    // plain integers and a stack sigset; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            // `runsc do` blocks the signals it waits for; the child starts with none blocked.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for &(src, dst) in &pairs {
                if libc::dup2(src, dst) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Anything else the caller of runsc leaked to us must not reach the child.
            let rc = libc::syscall(
                libc::SYS_close_range,
                first_free as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| RunscError::host(format!("start {what}"), e))?;
    drop(moved);
    Ok(child)
}

/// Takes ownership of a descriptor number our parent handed down (named on the command
/// line) and marks it close-on-exec.
pub fn take_inherited_fd(n: RawFd, what: &str) -> Result<OwnedFd, RunscError> {
    if n < 3 {
        return Err(RunscError::Invalid(format!("{what}: bad descriptor {n}")));
    }
    fcntl_check(n, what)?;
    // SAFETY: the descriptor was handed to us by our parent for exclusive use, is open
    // (checked above), and nothing else in this process owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(n) };
    fcntl(
        fd.as_fd(),
        FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| RunscError::nix(format!("{what}: set cloexec"), e))?;
    Ok(fd)
}

fn fcntl_check(n: RawFd, what: &str) -> Result<(), RunscError> {
    // SAFETY: F_GETFD only inspects the descriptor table; an invalid number gives EBADF.
    if unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return Err(RunscError::host(
            format!("{what}: fd {n}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Raises the soft limit on open descriptors to the hard limit. The Gofer keeps a host
/// descriptor per node the Sentry holds, and the Sentry one per open file (the soft limit is
/// often 1024).
pub fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(%e, soft, hard, "cannot raise RLIMIT_NOFILE");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(%e, "cannot read RLIMIT_NOFILE"),
    }
}
