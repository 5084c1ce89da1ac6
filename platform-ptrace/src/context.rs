//! Execution contexts: running application code in a stub thread with `PTRACE_SYSEMU`
//! until it traps, and decoding what stopped it.
//!
//! The hot path of a switch is: `PTRACE_SETREGS` (skipped when the registers equal what
//! the kernel holds), `PTRACE_SETREGSET(NT_X86_XSTATE)` (skipped likewise, the usual
//! case), `PTRACE_SYSEMU`, `waitpid`, `PTRACE_GETREGS`, `PTRACE_GETREGSET`. Nothing is
//! allocated.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use parking_lot::Mutex;

use linux_abi::Errno;
use linux_abi::signal::{self as sig, SigInfo};
use platform::{AccessType, AddressSpace, Context, PlatformError, Registers, Trap};

use crate::process::{PtraceAddressSpace, StubThread, ThreadState};
use crate::sys::{self, Pid};
use crate::tracee::{Stopped, Waited};
use crate::{Shared, host};

/// The host signal [`Context::interrupt`] sends to a running stub thread. Its default
/// action is to be ignored, so a stray one can never hurt a stub.
pub(crate) const INTERRUPT_SIGNAL: i32 = libc::SIGURG;

/// An execution context of the ptrace platform.
///
/// Owned by the first host thread that switches it. It runs in the stub thread that its
/// owner traces in the given address space (created on first use).
#[derive(Debug)]
pub struct PtraceContext {
    shared: Arc<Shared>,
    /// Host tid of the owner thread, 0 before the first switch.
    owner: AtomicI32,
    /// An interrupt was requested and not yet returned.
    pending: AtomicBool,
    released: AtomicBool,
    /// The (process, thread) running for this context, for `interrupt`.
    running: Mutex<Option<(Pid, Pid)>>,
    /// The stub thread of the last switch, by address space id.
    last: Mutex<Option<(u64, Arc<StubThread>)>>,
}

impl PtraceContext {
    pub(crate) fn new(shared: Arc<Shared>) -> PtraceContext {
        PtraceContext {
            shared,
            owner: AtomicI32::new(0),
            pending: AtomicBool::new(false),
            released: AtomicBool::new(false),
            running: Mutex::new(None),
            last: Mutex::new(None),
        }
    }

    fn stub_thread(&self, pas: &PtraceAddressSpace) -> Result<Arc<StubThread>, PlatformError> {
        let mut last = self.last.lock();
        if let Some((id, t)) = &*last
            && *id == pas.process.id
        {
            return Ok(Arc::clone(t));
        }
        *last = None;
        let t = pas.process.thread_for_current()?;
        *last = Some((pas.process.id, Arc::clone(&t)));
        Ok(t)
    }

    fn run(&self, t: &StubThread, regs: &mut Registers) -> Result<Trap, PlatformError> {
        let tid = t.tid;
        let mut guard = t.state.lock();
        let st = &mut *guard;
        let tracee = st.tracee.take().ok_or_else(|| t.gone())?;
        if self.shared.options.pin && !st.pinned {
            st.pinned = true;
            if let Some(cpu) = host::pinned_cpu(|| self.shared.next_cpu())
                && let Err(e) = sys::pin_to_cpu(tid, cpu)
            {
                tracing::debug!(tid, cpu, error = %e, "cannot pin stub thread");
            }
        }
        // Load the registers; a failure leaves the thread stopped and usable.
        if let Err((what, errno)) = load(&tracee, st, regs) {
            st.tracee = Some(tracee);
            return Err(match errno {
                Errno::EIO | Errno::EINVAL | Errno::EFAULT => PlatformError::InvalidArgument(what),
                Errno::ESRCH => t.gone(),
                errno => PlatformError::Host { op: what, errno },
            });
        }
        // Run until a trap. From here a failed resume or wait loses the thread.
        let lost = |errno: Errno| {
            if !t.process.is_released() {
                tracing::error!(tid, %errno, "stub thread lost during switch; killing the stub");
                let _ = sys::kill(t.process.pid, libc::SIGKILL);
            }
            t.gone()
        };
        let mut running = tracee.sysemu(0).map_err(lost)?;
        let (tracee, trap) = loop {
            let stopped = match running.wait().map_err(lost)? {
                Waited::Syscall(s) => break (s, Trap::Syscall),
                Waited::Signal(signo, s) => match s.getsiginfo() {
                    Ok(si) => match self.classify(signo, &si) {
                        Some(trap) => break (s, trap),
                        None => {
                            tracing::trace!(tid, signo, code = si.code, "suppressed signal");
                            s
                        }
                    },
                    Err(errno) => {
                        st.tracee = Some(s);
                        return Err(PlatformError::Host {
                            op: "PTRACE_GETSIGINFO",
                            errno,
                        });
                    }
                },
                Waited::Event(_, s) => s,
                Waited::Gone(status) => {
                    tracing::debug!(tid, status, "stub thread gone during switch");
                    return Err(t.gone());
                }
            };
            running = stopped.sysemu(0).map_err(lost)?;
        };
        let saved = tracee
            .getregs(&mut st.regs)
            .and_then(|()| tracee.get_xstate(&mut st.xstate));
        st.tracee = Some(tracee);
        saved.map_err(|errno| PlatformError::Host {
            op: "save registers",
            errno,
        })?;
        regs.gp = st.regs;
        let n = regs.fpu.as_bytes().len().min(st.xstate.len());
        regs.fpu.as_bytes_mut()[..n].copy_from_slice(&st.xstate[..n]);
        Ok(match trap {
            // `syscall` leaves RCX = RIP and R11 = RFLAGS; a stop where they differ is a
            // 32-bit entry (`int 0x80`, `sysenter`) the host kernel would have run as an
            // IA32 system call. The sandbox has no 32-bit entries: like Linux without IA32
            // emulation, that is #GP, SIGSEGV at the instruction. `sysenter` saves neither
            // its address nor RSP, and the host returns from it to 32-bit code (where the
            // thread faults): a stop in 32-bit mode (see `USER_CS`) is treated the same.
            t if (matches!(t, Trap::Syscall)
                && (regs.gp.rcx != regs.gp.rip || regs.gp.r11 != regs.gp.eflags))
                || (regs.gp.cs != USER_CS && !matches!(t, Trap::Interrupted)) =>
            {
                let at = regs.gp.rip.wrapping_sub(2);
                let int80 = matches!(t, Trap::Syscall)
                    && st
                        .tracee
                        .as_ref()
                        .and_then(|t| t.peek(at).ok())
                        .is_some_and(|w| w & 0xffff == 0x80cd);
                if int80 {
                    regs.gp.rip = at;
                }
                regs.gp.cs = USER_CS;
                regs.gp.ss = USER_DS;
                regs.gp.orig_rax = u64::MAX;
                // Now, not at the next switch: calls injected into this thread before
                // then (the Sentry mapping a signal frame's page) resume it too.
                if let Some(t) = st.tracee.as_ref()
                    && t.setregs(&regs.gp).is_ok()
                {
                    st.regs = regs.gp;
                }
                Trap::Signal(SigInfo::new(libc::SIGSEGV, sig::SI_KERNEL))
            }
            Trap::Fault { addr, access, ip } if ip == addr && is_vsyscall(addr) => {
                // The host kernel already emulated the `ret` of the call when its seccomp
                // check failed (`emulate_vsyscall`): undo it, so the Sentry sees the
                // state of a fetch fault at the vsyscall address.
                regs.gp.rip = addr;
                regs.gp.rsp = regs.gp.rsp.wrapping_sub(8);
                Trap::Fault { addr, access, ip }
            }
            Trap::Fault { addr, .. } => {
                let ip = regs.gp.rip;
                // A fault at the instruction pointer itself is an instruction fetch.
                let access = if addr == ip {
                    AccessType {
                        execute: true,
                        ..AccessType::UNKNOWN
                    }
                } else {
                    AccessType::UNKNOWN
                };
                Trap::Fault { addr, access, ip }
            }
            t => t,
        })
    }

    /// What a signal-delivery stop means; `None` for signals to suppress.
    fn classify(&self, signo: i32, si: &SigInfo) -> Option<Trap> {
        match signo {
            INTERRUPT_SIGNAL => {
                if si.code == sig::SI_TKILL
                    && si.pid() == self.shared.sentry_pid
                    && self.pending.swap(false, Ordering::AcqRel)
                {
                    Some(Trap::Interrupted)
                } else {
                    None // stale, or not ours
                }
            }
            libc::SIGSEGV if matches!(si.code, sig::SEGV_MAPERR | sig::SEGV_ACCERR | 4) => {
                Some(Trap::Fault {
                    addr: si.addr(),
                    access: AccessType::UNKNOWN,
                    ip: 0,
                })
            }
            libc::SIGBUS if si.code == sig::BUS_ADRERR => Some(Trap::Fault {
                addr: si.addr(),
                access: AccessType::UNKNOWN,
                ip: 0,
            }),
            // The stub's seccomp filter trapped the host's emulation of a vsyscall (see
            // `sys::vsyscall_filter`): report it as the fetch fault it is elsewhere.
            libc::SIGSYS if si.code == SYS_SECCOMP && is_vsyscall(si.fields[0]) => {
                let addr = si.fields[0];
                Some(Trap::Fault {
                    addr,
                    access: AccessType {
                        execute: true,
                        ..AccessType::UNKNOWN
                    },
                    ip: addr,
                })
            }
            libc::SIGSEGV
            | libc::SIGBUS
            | libc::SIGILL
            | libc::SIGFPE
            | libc::SIGTRAP
            | libc::SIGSYS => Some(Trap::Signal(*si)),
            _ => None,
        }
    }
}

/// Writes `regs` into the stopped thread where they differ from what it holds, keeping
/// the mirror in `st` true. `orig_rax` is always written as -1: the host kernel must never
/// apply its syscall-restart logic to the application.
/// Fails with what was being loaded and the host error.
fn load(
    tracee: &Stopped,
    st: &mut ThreadState,
    regs: &Registers,
) -> Result<(), (&'static str, Errno)> {
    let mut gp = regs.gp;
    gp.orig_rax = u64::MAX;
    if gp != st.regs {
        tracee.setregs(&gp).map_err(|e| ("register values", e))?;
        st.regs = gp;
    }
    let fpu = regs.fpu.as_bytes();
    let n = fpu.len().min(st.xstate.len());
    if fpu[..n] != st.xstate[..n] {
        st.xstate[..n].copy_from_slice(&fpu[..n]);
        if let Err(e) = tracee.set_xstate(&st.xstate) {
            // Resynchronise the mirror with what the kernel kept.
            tracee
                .get_xstate(&mut st.xstate)
                .map_err(|e| ("FPU state", e))?;
            return Err(("FPU state", e));
        }
    }
    Ok(())
}

impl Context for PtraceContext {
    fn switch(
        &self,
        address_space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError> {
        let me = host::tid();
        match self
            .owner
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {}
            Err(owner) if owner == me => {}
            Err(_) => return Err(PlatformError::WrongThread),
        }
        if self.released.load(Ordering::Acquire) {
            return Err(PlatformError::Released);
        }
        let pas = address_space
            .as_any()
            .downcast_ref::<PtraceAddressSpace>()
            .ok_or(PlatformError::ForeignAddressSpace)?;
        if !Arc::ptr_eq(&pas.process.shared, &self.shared) {
            return Err(PlatformError::ForeignAddressSpace);
        }
        let t = self.stub_thread(pas)?;
        if t.process.is_released() {
            *self.last.lock() = None;
            return Err(PlatformError::Released);
        }
        *self.running.lock() = Some((t.process.pid, t.tid));
        let result = if self.pending.swap(false, Ordering::AcqRel) {
            Ok(Trap::Interrupted)
        } else {
            self.run(&t, regs)
        };
        *self.running.lock() = None;
        result
    }

    fn interrupt(&self) {
        self.pending.store(true, Ordering::Release);
        let running = self.running.lock();
        if let Some((pid, tid)) = *running
            && let Err(e) = sys::tgkill(pid, tid, INTERRUPT_SIGNAL)
        {
            tracing::debug!(pid, tid, error = %e, "interrupt signal not sent");
        }
    }

    fn release(&self) {
        self.released.store(true, Ordering::Release);
        *self.last.lock() = None;
    }
}

/// Linux's 64-bit user code selector. A stop with another one means the thread runs
/// 32-bit code, which the sandbox does not support (no 32-bit system calls or signal
/// frames): it gets `SIGSEGV` (`SI_KERNEL`) and 64-bit selectors back.
pub(crate) const USER_CS: u64 = 0x33;
/// Linux's 64-bit user data selector.
pub(crate) const USER_DS: u64 = 0x2b;

/// `si_code` of a `SIGSYS` sent by a seccomp filter's `SECCOMP_RET_TRAP`.
const SYS_SECCOMP: i32 = 1;

/// Whether `addr` lies in the legacy vsyscall page.
fn is_vsyscall(addr: u64) -> bool {
    addr & !0xfff == platform::VSYSCALL_BASE
}
