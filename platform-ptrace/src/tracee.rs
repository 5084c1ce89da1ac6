//! A typestate over the ptrace requests of one tracee.
//!
//! Only a [`Stopped`] tracee accepts register requests and resumes; resuming consumes it
//! and yields a [`Running`] one, whose [`Running::wait`] yields the next [`Stopped`] (or
//! reports the tracee gone). Whoever holds the value is the tracee's tracer thread, so a
//! tracee can never be resumed twice or read while it runs. A request that fails on a
//! stopped tracee leaves it stopped; a resume or wait that fails loses it (it is gone or
//! in a state the platform cannot use any more).

use linux_abi::Errno;
use linux_abi::signal::SigInfo;
use platform::GeneralRegisters;

use crate::sys::{self, Pid, Stop};

/// A tracee in a ptrace-stop.
#[derive(Debug)]
pub(crate) struct Stopped {
    tid: Pid,
}

/// A tracee that runs (or will report a stop soon).
#[derive(Debug)]
pub(crate) struct Running {
    tid: Pid,
}

/// What [`Running::wait`] saw.
#[derive(Debug)]
pub(crate) enum Waited {
    /// A syscall stop.
    Syscall(Stopped),
    /// A `PTRACE_EVENT_*` stop.
    Event(i32, Stopped),
    /// A signal-delivery stop.
    Signal(i32, Stopped),
    /// The tracee exited or was killed (raw wait status).
    Gone(i32),
}

impl Waited {
    /// The stopped tracee, whatever the stop.
    pub(crate) fn stopped(self) -> Option<Stopped> {
        match self {
            Waited::Syscall(s) | Waited::Event(_, s) | Waited::Signal(_, s) => Some(s),
            Waited::Gone(_) => None,
        }
    }
}

impl Running {
    /// Seizes `pid` with `options`; the calling thread becomes its tracer.
    pub(crate) fn seize(pid: Pid, options: u64) -> Result<Running, Errno> {
        sys::seize(pid, options)?;
        Ok(Running { tid: pid })
    }

    /// A thread the calling thread already traces that will report a stop: one
    /// auto-attached by `PTRACE_O_TRACECLONE`/`TRACEFORK`.
    pub(crate) fn auto_attached(tid: Pid) -> Running {
        Running { tid }
    }

    /// `PTRACE_INTERRUPT`: makes the tracee report a stop soon.
    pub(crate) fn interrupt(&self) -> Result<(), Errno> {
        sys::interrupt(self.tid)
    }

    /// Waits for the next stop.
    pub(crate) fn wait(self) -> Result<Waited, Errno> {
        let tid = self.tid;
        Ok(match sys::wait_stop(tid)? {
            Stop::Syscall => Waited::Syscall(Stopped { tid }),
            Stop::Event(e) => Waited::Event(e, Stopped { tid }),
            Stop::Signal(s) => Waited::Signal(s, Stopped { tid }),
            Stop::Gone(status) => Waited::Gone(status),
        })
    }

    /// Waits until a tracee that was killed is gone, resuming it past any stop that is
    /// still reported on the way.
    pub(crate) fn reap(self) {
        let mut running = self;
        loop {
            match running.wait().map(Waited::stopped) {
                Ok(Some(s)) => match s.cont(0) {
                    Ok(r) => running = r,
                    Err(_) => return,
                },
                Ok(None) | Err(_) => return,
            }
        }
    }
}

impl Stopped {
    /// The tracee's thread id.
    pub(crate) fn tid(&self) -> Pid {
        self.tid
    }

    /// `PTRACE_PEEKDATA`: 8 bytes of the thread's memory at `addr`.
    pub(crate) fn peek(&self, addr: u64) -> Result<u64, Errno> {
        sys::peekdata(self.tid, addr)
    }

    /// `PTRACE_GETREGS`.
    pub(crate) fn getregs(&self, regs: &mut GeneralRegisters) -> Result<(), Errno> {
        sys::getregs(self.tid, regs)
    }

    /// `PTRACE_SETREGS`.
    pub(crate) fn setregs(&self, regs: &GeneralRegisters) -> Result<(), Errno> {
        sys::setregs(self.tid, regs)
    }

    /// `PTRACE_GETREGSET(NT_X86_XSTATE)`; returns the bytes filled.
    pub(crate) fn get_xstate(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        sys::get_xstate(self.tid, buf)
    }

    /// `PTRACE_SETREGSET(NT_X86_XSTATE)`.
    pub(crate) fn set_xstate(&self, buf: &[u8]) -> Result<(), Errno> {
        sys::set_xstate(self.tid, buf)
    }

    /// `PTRACE_GETSIGINFO` of a signal-delivery stop.
    pub(crate) fn getsiginfo(&self) -> Result<SigInfo, Errno> {
        sys::getsiginfo(self.tid)
    }

    /// `PTRACE_GETEVENTMSG` of an event stop.
    pub(crate) fn geteventmsg(&self) -> Result<u64, Errno> {
        sys::geteventmsg(self.tid)
    }

    /// `PTRACE_CONT`, delivering `sig` (0: none).
    pub(crate) fn cont(self, sig: i32) -> Result<Running, Errno> {
        sys::cont(self.tid, sig)?;
        Ok(Running { tid: self.tid })
    }

    /// `PTRACE_SYSEMU`, delivering `sig` (0: none).
    pub(crate) fn sysemu(self, sig: i32) -> Result<Running, Errno> {
        sys::sysemu(self.tid, sig)?;
        Ok(Running { tid: self.tid })
    }

    /// For a tracee that was sent `SIGKILL`: it leaves its stop by itself.
    pub(crate) fn killed(self) -> Running {
        Running { tid: self.tid }
    }

    /// `PTRACE_DETACH`: the tracee runs on untraced.
    pub(crate) fn detach(self) -> Result<(), Errno> {
        sys::detach(self.tid, 0)
    }
}
