//! Errors of platform operations.

use linux_abi::Errno;

/// Why a platform operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Misaligned, empty, overflowing or out-of-range arguments.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The object was released before the call.
    #[error("address space or context already released")]
    Released,
    /// `Context::switch` called from a thread other than the one that owns the context.
    #[error("context switched from a thread other than its owner")]
    WrongThread,
    /// The address space belongs to a different platform.
    #[error("address space from another platform")]
    ForeignAddressSpace,
    /// The platform cannot run here (no `/dev/kvm`, ptrace forbidden, ...).
    #[error("platform unavailable: {0}")]
    Unavailable(String),
    /// A host system call failed.
    #[error("{op}: {errno}")]
    Host {
        /// What the platform was doing.
        op: &'static str,
        /// The host error.
        errno: Errno,
    },
    /// The stub or vCPU died or did something the platform cannot explain.
    #[error("platform internal error: {0}")]
    Internal(String),
}

impl PlatformError {
    /// A [`PlatformError::Host`] for the calling thread's last OS error.
    pub fn last_os_error(op: &'static str) -> PlatformError {
        PlatformError::Host {
            op,
            errno: Errno::last_os_error(),
        }
    }
}
