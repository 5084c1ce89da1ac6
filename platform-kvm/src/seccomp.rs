//! The host system calls this platform makes from the Sentry's process, for the runtime's
//! filter: see [`platform::seccomp`]. Calls every Sentry makes anyway (memory, threads,
//! `tgkill` for kicking a vCPU thread, `rt_sigaction` for the kick signal...) are in the
//! runtime's base list, not here.

use platform::seccomp::{ArgCondition, HostSyscall, HostSyscalls};

/// The `ioctl` type byte (bits 8..16 of the request) of KVM.
const KVMIO: u64 = 0xae;

/// The list (see the module documentation).
pub fn host_syscalls() -> HostSyscalls {
    vec![HostSyscall::when(
        libc::SYS_ioctl,
        vec![vec![ArgCondition::masked_eq(1, 0xff00, KVMIO << 8)]],
        "KVM requests (type 0xAE) on the VM, vCPU and system fds",
    )]
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_kvm_ioctls_and_no_ptrace() {
        let list = super::host_syscalls();
        assert!(list.iter().any(|e| e.nr == libc::SYS_ioctl));
        assert!(list.iter().all(|e| e.nr != libc::SYS_ptrace));
    }
}
