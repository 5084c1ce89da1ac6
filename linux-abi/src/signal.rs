//! Signal numbers and the `siginfo_t` layout.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Hangup.
pub const SIGHUP: i32 = 1;
/// Interrupt from the keyboard.
pub const SIGINT: i32 = 2;
/// Quit from the keyboard.
pub const SIGQUIT: i32 = 3;
/// Illegal instruction.
pub const SIGILL: i32 = 4;
/// Trace or breakpoint trap.
pub const SIGTRAP: i32 = 5;
/// Abort.
pub const SIGABRT: i32 = 6;
/// Bus error.
pub const SIGBUS: i32 = 7;
/// Arithmetic exception.
pub const SIGFPE: i32 = 8;
/// Kill (cannot be caught).
pub const SIGKILL: i32 = 9;
/// User signal 1.
pub const SIGUSR1: i32 = 10;
/// Invalid memory reference.
pub const SIGSEGV: i32 = 11;
/// User signal 2.
pub const SIGUSR2: i32 = 12;
/// Broken pipe.
pub const SIGPIPE: i32 = 13;
/// Timer signal from `alarm`.
pub const SIGALRM: i32 = 14;
/// Termination.
pub const SIGTERM: i32 = 15;
/// Stack fault on coprocessor (unused).
pub const SIGSTKFLT: i32 = 16;
/// Child stopped or terminated.
pub const SIGCHLD: i32 = 17;
/// Continue if stopped.
pub const SIGCONT: i32 = 18;
/// Stop (cannot be caught).
pub const SIGSTOP: i32 = 19;
/// Stop typed at the terminal.
pub const SIGTSTP: i32 = 20;
/// Terminal input for a background process.
pub const SIGTTIN: i32 = 21;
/// Terminal output for a background process.
pub const SIGTTOU: i32 = 22;
/// Urgent condition on a socket.
pub const SIGURG: i32 = 23;
/// CPU time limit exceeded.
pub const SIGXCPU: i32 = 24;
/// File size limit exceeded.
pub const SIGXFSZ: i32 = 25;
/// Virtual alarm clock.
pub const SIGVTALRM: i32 = 26;
/// Profiling timer expired.
pub const SIGPROF: i32 = 27;
/// Window resize.
pub const SIGWINCH: i32 = 28;
/// I/O now possible.
pub const SIGIO: i32 = 29;
/// Power failure.
pub const SIGPWR: i32 = 30;
/// Bad system call.
pub const SIGSYS: i32 = 31;
/// First real-time signal.
pub const SIGRTMIN: i32 = 32;
/// Last real-time signal.
pub const SIGRTMAX: i32 = 64;

/// `si_code`: sent by `kill`.
pub const SI_USER: i32 = 0;
/// `si_code`: sent by the kernel.
pub const SI_KERNEL: i32 = 0x80;
/// `si_code`: sent by `sigqueue`.
pub const SI_QUEUE: i32 = -1;
/// `si_code`: sent by `tkill`/`tgkill`.
pub const SI_TKILL: i32 = -6;
/// SIGSEGV: address not mapped.
pub const SEGV_MAPERR: i32 = 1;
/// SIGSEGV: no permission for the mapped address.
pub const SEGV_ACCERR: i32 = 2;
/// SIGBUS: invalid address alignment.
pub const BUS_ADRALN: i32 = 1;
/// SIGBUS: non-existent physical address.
pub const BUS_ADRERR: i32 = 2;
/// SIGILL: illegal opcode.
pub const ILL_ILLOPN: i32 = 2;
/// SIGILL: illegal opcode (`ud2`).
pub const ILL_ILLOPC: i32 = 1;
/// SIGILL: privileged opcode.
pub const ILL_PRVOPC: i32 = 5;
/// SIGFPE: integer divide by zero.
pub const FPE_INTDIV: i32 = 1;
/// SIGFPE: integer overflow.
pub const FPE_INTOVF: i32 = 2;
/// SIGTRAP: process breakpoint.
pub const TRAP_BRKPT: i32 = 1;
/// SIGTRAP: process trace trap.
pub const TRAP_TRACE: i32 = 2;

/// The kernel's `siginfo_t`: 128 bytes, whose union part is read through accessors.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SigInfo {
    /// Signal number.
    pub signo: i32,
    /// Error number (normally 0).
    pub errno: i32,
    /// Signal code (`SI_*`, `SEGV_*`, ...).
    pub code: i32,
    /// Padding to align the union.
    pub _pad: i32,
    /// The union of per-signal fields, as raw words.
    pub fields: [u64; 14],
}

impl SigInfo {
    /// A siginfo with signal number and code set and every other field zero.
    pub fn new(signo: i32, code: i32) -> Self {
        SigInfo {
            signo,
            errno: 0,
            code,
            _pad: 0,
            fields: [0; 14],
        }
    }

    /// A fault siginfo (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`) with `si_addr`.
    pub fn fault(signo: i32, code: i32, addr: u64) -> Self {
        let mut s = Self::new(signo, code);
        s.fields[0] = addr;
        s
    }

    /// `si_addr`, meaningful for fault signals.
    pub fn addr(&self) -> u64 {
        self.fields[0]
    }

    /// `si_pid` (low half of the first union word) for `kill`-style signals.
    pub fn pid(&self) -> i32 {
        self.fields[0] as u32 as i32
    }

    /// `si_uid` (high half of the first union word) for `kill`-style signals.
    pub fn uid(&self) -> u32 {
        (self.fields[0] >> 32) as u32
    }

    /// Sets `si_pid` and `si_uid`.
    pub fn set_pid_uid(&mut self, pid: i32, uid: u32) {
        self.fields[0] = (pid as u32 as u64) | ((uid as u64) << 32);
    }
}

const _: () = assert!(core::mem::size_of::<SigInfo>() == 128);
