//! The host system calls this platform makes from the Sentry's process and from the stub
//! processes it forks there (which inherit the Sentry's seccomp filter), for the runtime's
//! filter: see [`platform::seccomp`]. Calls every Sentry makes anyway (memory, threads,
//! `tgkill`, `fcntl`, `rt_sigaction`...) are in the runtime's base list, not here.

use platform::seccomp::{ArgCondition, HostSyscall, HostSyscalls};

/// Namespace-creating `clone` flags: a stub is a plain fork, never a new namespace.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// The list (see the module documentation).
pub fn host_syscalls() -> HostSyscalls {
    use libc::*;
    vec![
        HostSyscall::any(
            SYS_ptrace,
            "the tracer: SEIZE, SYSEMU, registers, injected calls",
        ),
        HostSyscall::any(SYS_wait4, "ptrace stops of stub threads; reaping stubs"),
        HostSyscall::any(SYS_waitid, "ptrace stops of stub threads; reaping stubs"),
        HostSyscall::any(SYS_kill, "killing stub processes on release"),
        HostSyscall::when(
            SYS_clone,
            vec![vec![ArgCondition::masked_eq(0, CLONE_NAMESPACE_FLAGS, 0)]],
            "forking the master stub and (injected) address-space stubs; never new namespaces",
        ),
        HostSyscall::any(
            SYS_sched_setaffinity,
            "pinning each tracer thread and its stub threads to one CPU",
        ),
        // The master stub's start-up, after the fork from the Sentry.
        HostSyscall::any(
            SYS_setsid,
            "master stub: own session, away from terminal signals",
        ),
        HostSyscall::any(
            SYS_getppid,
            "master stub: checks its parent after PR_SET_PDEATHSIG",
        ),
        HostSyscall::any(
            SYS_dup3,
            "master stub: moves the memory file to its fixed slot",
        ),
        HostSyscall::any(
            SYS_close_range,
            "master stub: closes every other inherited fd",
        ),
        HostSyscall::any(SYS_pause, "parked stub leaders"),
        HostSyscall::any(SYS_pipe2, "the master stub's readiness pipe"),
        HostSyscall::when_arg_one_of(
            SYS_seccomp,
            0,
            &[SECCOMP_SET_MODE_FILTER as u64],
            "the master stub adds its own filter (filters only ever restrict)",
        ),
        HostSyscall::when_arg_one_of(
            SYS_prctl,
            0,
            &[PR_SET_PDEATHSIG as u64, PR_SET_NO_NEW_PRIVS as u64],
            "stubs die with the Sentry; the stub restricts itself further",
        ),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_ptrace_and_no_kvm_device_calls() {
        let list = super::host_syscalls();
        assert!(list.iter().any(|e| e.nr == libc::SYS_ptrace));
        assert!(list.iter().all(|e| e.nr != libc::SYS_ioctl));
        assert!(list.iter().all(|e| !e.reason.is_empty()));
    }
}
