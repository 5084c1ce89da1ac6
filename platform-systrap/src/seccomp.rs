//! The host system calls this platform makes from the Sentry's process, for the runtime's
//! filter: see [`platform::seccomp`]. Calls every Sentry makes anyway (memory, threads,
//! `futex`, `read`, `tgkill`...) are in the runtime's base list, not here.
//!
//! The master stub is forked *before* the runtime installs its filter (the stubs must run
//! under their own filter only), so nothing the stubs do needs to be listed: only the
//! Sentry side's calls are.

use platform::seccomp::{HostSyscall, HostSyscalls};

/// The list (see the module documentation).
pub fn host_syscalls() -> HostSyscalls {
    use libc::*;
    vec![
        HostSyscall::any(SYS_pidfd_open, "a handle on each new stub process"),
        HostSyscall::any(SYS_pidfd_getfd, "the read end of a new stub's result pipe"),
        HostSyscall::any(
            SYS_pidfd_send_signal,
            "killing a stub process on release, through its pidfd",
        ),
        HostSyscall::any(
            SYS_poll,
            "waiting for a released stub process to be gone (its pidfd)",
        ),
        HostSyscall::any(SYS_kill, "killing the master stub with the platform"),
        HostSyscall::any(SYS_wait4, "reaping the master stub"),
        HostSyscall::any(
            SYS_sched_setaffinity,
            "pinning each context's thread to one CPU, next to its stub thread",
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_pidfd_calls_and_neither_ptrace_nor_kvm() {
        let list = super::host_syscalls();
        assert!(list.iter().any(|e| e.nr == libc::SYS_pidfd_getfd));
        assert!(list.iter().all(|e| e.nr != libc::SYS_ptrace));
        assert!(list.iter().all(|e| e.nr != libc::SYS_ioctl));
        assert!(list.iter().all(|e| !e.reason.is_empty()));
    }
}
