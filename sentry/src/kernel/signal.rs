//! Signal state kept per thread group (actions) and per task (mask, alternate stack).
//!
//! Delivery (frames on the application stack) is not implemented yet; this module stores
//! what `rt_sigaction`, `rt_sigprocmask` and `sigaltstack` set so that programs that
//! configure signals at start-up get correct answers.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A set of signals 1..=64 (bit `n - 1` for signal `n`), the kernel's `sigset_t`.
pub type SigSet = u64;

/// `SIG_DFL`.
pub const SIG_DFL: u64 = 0;
/// `SIG_IGN`.
pub const SIG_IGN: u64 = 1;

/// The kernel's `struct sigaction` on x86-64 (as `rt_sigaction` reads and writes it).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigAction {
    /// `sa_handler` / `sa_sigaction`, or `SIG_DFL`/`SIG_IGN`.
    pub handler: u64,
    /// `SA_*` flags.
    pub flags: u64,
    /// `sa_restorer`.
    pub restorer: u64,
    /// Signals blocked while the handler runs.
    pub mask: SigSet,
}

impl SigAction {
    /// Whether a handler function (not default, not ignore) is installed.
    pub fn has_handler(&self) -> bool {
        self.handler != SIG_DFL && self.handler != SIG_IGN
    }
}

/// The kernel's `stack_t` (`sigaltstack`).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct SigAltStack {
    /// Stack base.
    pub sp: u64,
    /// `SS_ONSTACK`/`SS_DISABLE`.
    pub flags: i32,
    /// Padding.
    pub _pad: i32,
    /// Stack size.
    pub size: u64,
}

/// `SS_DISABLE`.
pub const SS_DISABLE: i32 = 2;

/// Bit of signal `sig` in a [`SigSet`] (0 for a number outside 1..=64).
pub fn sig_bit(sig: i32) -> SigSet {
    if (1..=64).contains(&sig) {
        1u64 << (sig - 1)
    } else {
        0
    }
}
