//! Starting the processes of a sandbox (the Gofer, the sandbox process) with chosen file descriptors.
//!
//! The parent duplicates every descriptor it hands down to a number at or above
//! `HIGH_FD` (close-on-exec), and the child, between `fork` and `exec`, `dup2`s them onto
//! their target numbers (which clears close-on-exec on the copies), unblocks all signals,
//! marks every other
//! descriptor from the first free target upwards close-on-exec, and asks for `SIGKILL` when
//! its parent dies. The code run in the child lives in `host::child_setup`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::fcntl::{FcntlArg, fcntl};

use crate::error::Error;

/// Descriptors handed to a child are first moved at or above this number, above every
/// target number, so the `dup2`s in the child never overwrite each other.
const HIGH_FD: RawFd = 64;

/// Spawns `cmd` with `fds` (each `(descriptor, target number)`) installed in the child.
/// Target numbers must be 3 or more and below `HIGH_FD`; stdio is set up by `cmd`.
pub fn spawn_with_fds(cmd: Command, fds: &[(&OwnedFd, RawFd)], what: &str) -> Result<Child, Error> {
    spawn(cmd, fds, what, true)
}

/// Like [`spawn_with_fds`], but the child does not die with the thread that started it
/// (a library sandbox's monitor: the caller may start it from a short-lived thread).
pub fn spawn_free_with_fds(
    cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
) -> Result<Child, Error> {
    spawn(cmd, fds, what, false)
}

/// Like [`spawn_with_fds`], but the child outlives us (no `PR_SET_PDEATHSIG`) and gets a
/// process group of its own: the supervisor that `create` leaves running.
pub fn spawn_detached_with_fds(
    mut cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
) -> Result<Child, Error> {
    cmd.process_group(0);
    spawn(cmd, fds, what, false)
}

/// Like [`spawn_detached_with_fds`], but the child leads a session of its own whose
/// controlling terminal is its stdin (which `cmd` must make a terminal): the waiter of a
/// process started with a terminal, which the keys typed into that terminal signal.
pub fn spawn_terminal_session_with_fds(
    cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
) -> Result<Child, Error> {
    spawn_with(cmd, fds, what, false, true)
}

fn spawn(
    cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
    die_with_parent: bool,
) -> Result<Child, Error> {
    spawn_with(cmd, fds, what, die_with_parent, false)
}

fn spawn_with(
    mut cmd: Command,
    fds: &[(&OwnedFd, RawFd)],
    what: &str,
    die_with_parent: bool,
    terminal_session: bool,
) -> Result<Child, Error> {
    let mut moved: Vec<(OwnedFd, RawFd)> = Vec::with_capacity(fds.len());
    for (fd, target) in fds {
        if !(3..HIGH_FD).contains(target) {
            return Err(Error::Invalid(format!("{what}: bad target fd {target}")));
        }
        let high = crate::host::dup_cloexec(fd.as_raw_fd(), HIGH_FD)
            .map_err(|e| Error::host(format!("{what}: dup"), e))?;
        moved.push((high, *target));
    }
    let pairs: Vec<(RawFd, RawFd)> = moved.iter().map(|(fd, t)| (fd.as_raw_fd(), *t)).collect();
    let first_free = pairs.iter().map(|&(_, t)| t + 1).max().unwrap_or(3);
    crate::host::child_setup(
        &mut cmd,
        pairs,
        first_free,
        die_with_parent,
        terminal_session,
    );
    let child = cmd
        .spawn()
        .map_err(|e| Error::host(format!("start {what}"), e))?;
    drop(moved);
    Ok(child)
}

/// Takes ownership of a descriptor number our parent handed down (named on the command
/// line) and marks it close-on-exec.
pub fn take_inherited_fd(n: RawFd, what: &str) -> Result<OwnedFd, Error> {
    if n < 3 {
        return Err(Error::Invalid(format!("{what}: bad descriptor {n}")));
    }
    if !crate::host::fd_is_open(n) {
        return Err(Error::host(
            format!("{what}: fd {n}"),
            std::io::Error::last_os_error(),
        ));
    }
    let fd = crate::host::own_inherited_fd(n);
    fcntl(
        fd.as_fd(),
        FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| Error::nix(format!("{what}: set cloexec"), e))?;
    Ok(fd)
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
