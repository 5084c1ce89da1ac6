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

/// The legacy vsyscall page (`gettimeofday` at +0, `time` at +0x400, `getcpu` at
/// +0x800). Nothing is ever mapped there: every platform reports a call into it as
/// [`Trap::Fault`] with `addr == ip ==` the called address, an instruction fetch (or an
/// unknown access), RIP at that address and RSP at the return address, as a fetch fault
/// there is; the Sentry emulates the call (Linux's `vsyscall=xonly`).
pub const VSYSCALL_BASE: u64 = 0xffff_ffff_ff60_0000;

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
