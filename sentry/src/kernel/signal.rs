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

/// `SS_ONSTACK`.
pub const SS_ONSTACK: i32 = 1;
/// `SA_NOCLDSTOP`.
pub const SA_NOCLDSTOP: u64 = 1;
/// `SA_NOCLDWAIT`.
pub const SA_NOCLDWAIT: u64 = 2;
/// `SA_SIGINFO`.
#[allow(dead_code)] // ABI value, read by the tests of signal frames.
pub const SA_SIGINFO: u64 = 4;
/// `SA_RESTORER`.
#[allow(dead_code)] // ABI value, read by the tests of signal frames.
pub const SA_RESTORER: u64 = 0x0400_0000;
/// `SA_ONSTACK`.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// `SA_RESTART`.
pub const SA_RESTART: u64 = 0x1000_0000;
/// `SA_NODEFER`.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// `SA_RESETHAND`.
pub const SA_RESETHAND: u64 = 0x8000_0000;

/// What a signal does when its action is `SIG_DFL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    /// End the process.
    Terminate,
    /// End the process "with a core dump" (reported with the core bit; no file is written).
    Core,
    /// Nothing.
    Ignore,
    /// Stop the process.
    Stop,
    /// Continue a stopped process (the continuing happens when the signal is sent).
    Continue,
}

/// The default action of `sig`.
pub fn default_action(sig: i32) -> DefaultAction {
    use linux_abi::signal::*;
    match sig {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ
        | SIGSYS => DefaultAction::Core,
        SIGCHLD | SIGURG | SIGWINCH => DefaultAction::Ignore,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => DefaultAction::Stop,
        SIGCONT => DefaultAction::Continue,
        _ => DefaultAction::Terminate,
    }
}

/// Signals that stop a process by default.
pub const STOP_SIGNALS: SigSet = (1 << (linux_abi::signal::SIGSTOP - 1))
    | (1 << (linux_abi::signal::SIGTSTP - 1))
    | (1 << (linux_abi::signal::SIGTTIN - 1))
    | (1 << (linux_abi::signal::SIGTTOU - 1));

/// Signals that can never be blocked, caught or ignored.
pub const UNBLOCKABLE: SigSet =
    (1 << (linux_abi::signal::SIGKILL - 1)) | (1 << (linux_abi::signal::SIGSTOP - 1));

/// Pending signals with their siginfo: standard signals are queued once, real-time signals
/// (32 and up) as often as they are sent.
#[derive(Debug, Default, Clone)]
pub struct SigQueue {
    queue: Vec<linux_abi::signal::SigInfo>,
}

/// Most queued real-time signals per queue (`RLIMIT_SIGPENDING`-like bound).
const MAX_QUEUED: usize = 4096;

impl SigQueue {
    /// The set of pending signals.
    pub fn set(&self) -> SigSet {
        self.queue.iter().fold(0, |s, i| s | sig_bit(i.signo))
    }

    /// Queues `info`; a standard signal already pending is not queued twice. Returns
    /// whether it was queued.
    pub fn push(&mut self, info: linux_abi::signal::SigInfo) -> bool {
        let rt = info.signo >= linux_abi::signal::SIGRTMIN;
        if (!rt && self.set() & sig_bit(info.signo) != 0) || self.queue.len() >= MAX_QUEUED {
            return false;
        }
        self.queue.push(info);
        true
    }

    /// Removes and returns the lowest-numbered pending signal in `allowed` (standard
    /// signals first, as Linux does, since they are lower).
    pub fn take(&mut self, allowed: SigSet) -> Option<linux_abi::signal::SigInfo> {
        let pending = self.set() & allowed;
        if pending == 0 {
            return None;
        }
        let sig = pending.trailing_zeros() as i32 + 1;
        let i = self.queue.iter().position(|s| s.signo == sig)?;
        Some(self.queue.remove(i))
    }

    /// Discards every pending instance of the signals in `set`.
    pub fn discard(&mut self, set: SigSet) {
        self.queue.retain(|s| sig_bit(s.signo) & set == 0);
    }
}

#[cfg(test)]
mod tests {
    use linux_abi::signal::{SIGRTMIN, SIGTERM, SIGUSR1, SigInfo};

    use super::*;

    #[test]
    fn standard_signals_queue_once_realtime_signals_every_time() {
        let mut q = SigQueue::default();
        assert!(q.push(SigInfo::new(SIGUSR1, 0)));
        assert!(
            !q.push(SigInfo::new(SIGUSR1, 0)),
            "a pending standard signal merges"
        );
        let mut a = SigInfo::new(SIGRTMIN, -1);
        a.fields[1] = 1;
        let mut b = a;
        b.fields[1] = 2;
        assert!(q.push(a) && q.push(b));
        assert!(q.push(SigInfo::new(SIGTERM, 0)));
        assert_eq!(
            q.set(),
            sig_bit(SIGUSR1) | sig_bit(SIGTERM) | sig_bit(SIGRTMIN)
        );
        // Blocked signals stay; the lowest allowed number comes first; RT ones in order.
        assert_eq!(q.take(!sig_bit(SIGUSR1)).map(|i| i.signo), Some(SIGTERM));
        assert_eq!(q.take(!sig_bit(SIGUSR1)).map(|i| i.fields[1]), Some(1));
        assert_eq!(q.take(!sig_bit(SIGUSR1)).map(|i| i.fields[1]), Some(2));
        assert!(q.take(!sig_bit(SIGUSR1)).is_none());
        q.discard(sig_bit(SIGUSR1));
        assert_eq!(q.set(), 0);
    }

    #[test]
    fn default_actions_match_linux() {
        use linux_abi::signal::*;
        assert_eq!(default_action(SIGSEGV), DefaultAction::Core);
        assert_eq!(default_action(SIGTERM), DefaultAction::Terminate);
        assert_eq!(default_action(SIGCHLD), DefaultAction::Ignore);
        assert_eq!(default_action(SIGTSTP), DefaultAction::Stop);
        assert_eq!(default_action(SIGCONT), DefaultAction::Continue);
        assert_eq!(default_action(SIGRTMIN + 3), DefaultAction::Terminate);
        assert_eq!(sig_bit(0), 0);
        assert_eq!(sig_bit(65), 0);
    }
}
