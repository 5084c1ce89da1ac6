//! What a context switch ends with.

use linux_abi::signal::SigInfo;

/// The kind of access that faulted. All fields false means the platform cannot tell
/// (ptrace does not learn the page-fault error code); the Sentry then infers it from the
/// mapping state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessType {
    /// A read (or the access type is unknown when all are false).
    pub read: bool,
    /// A write.
    pub write: bool,
    /// An instruction fetch.
    pub execute: bool,
}

impl AccessType {
    /// The platform could not tell the access type.
    pub const UNKNOWN: AccessType = AccessType {
        read: false,
        write: false,
        execute: false,
    };

    /// True when no access bit is known.
    pub fn is_unknown(self) -> bool {
        self == Self::UNKNOWN
    }
}

/// Why [`crate::Context::switch`] returned. See its documentation for each case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// The application made a system call.
    Syscall,
    /// A memory access faulted at `addr` (the instruction at `ip` did not complete).
    Fault {
        /// The faulting address (CR2).
        addr: u64,
        /// The kind of access, where known.
        access: AccessType,
        /// The instruction pointer of the faulting instruction.
        ip: u64,
    },
    /// Another synchronous exception, as the siginfo Linux would deliver for it.
    Signal(SigInfo),
    /// [`crate::Context::interrupt`] was called.
    Interrupted,
}
