//! Stub processes (one per address space) and stub threads (one per host thread that uses
//! an address space), and the system calls injected into them.
//!
//! A stub process is forked from the master stub. Its leader thread sits untraced in the
//! stub's `pause` loop. A host thread that needs a stub thread of its own seizes the
//! leader, injects `clone(CLONE_THREAD | ...)` with `PTRACE_O_TRACECLONE` so that the new
//! thread is traced by *this* host thread from its first instruction, and detaches the
//! leader again. Stub threads are only ever resumed by their tracer, with `PTRACE_SYSEMU`
//! for application code or `PTRACE_CONT` for an injected call at the stub page.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use linux_abi::Errno;
use platform::{AddressSpace, GeneralRegisters, PlatformError, Protection};

use crate::stub::{self, STUB_ADDR};
use crate::sys::{self, Pid};
use crate::tracee::{Running, Stopped, Waited};
use crate::{Shared, host};

/// `clone` flags of a new stub thread.
const THREAD_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SYSVSEM) as u64;

/// Largest XSAVE area we accept from the kernel.
const XSTATE_MAX: usize = 64 << 10;

fn host_err(op: &'static str) -> impl FnOnce(Errno) -> PlatformError {
    move |errno| PlatformError::Host { op, errno }
}

/// What an injected system call left behind.
#[derive(Debug)]
pub(crate) struct Injected {
    /// The tracee, stopped at the `int3` after the call.
    pub(crate) tracee: Stopped,
    /// The call's result (`rax`).
    pub(crate) ret: u64,
    /// The last ptrace event message (the new pid of a traced clone or fork), or 0.
    pub(crate) event_msg: u64,
    /// The registers the tracee is left with.
    pub(crate) regs: GeneralRegisters,
}

/// Runs system call `nr` in `tracee`, starting from registers `base`: `rip` at the stub's
/// `syscall; int3`, one `PTRACE_CONT`, stopped again by the `int3`. An error loses the
/// tracee (see [`crate::tracee`]).
pub(crate) fn inject(
    tracee: Stopped,
    base: &GeneralRegisters,
    nr: i64,
    args: [u64; 6],
) -> Result<Injected, Errno> {
    let tid = tracee.tid();
    let mut r = *base;
    r.rip = STUB_ADDR + stub::SYSCALL_OFFSET;
    // 64-bit selectors: the thread may have been left in 32-bit mode (see
    // `context::USER_CS`), where the stub's code would not run.
    r.cs = crate::context::USER_CS;
    r.ss = crate::context::USER_DS;
    r.rax = nr as u64;
    r.orig_rax = u64::MAX;
    [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9] = args;
    tracee.setregs(&r)?;
    let mut running = tracee.cont(0)?;
    let mut event_msg = 0;
    loop {
        running = match running.wait()? {
            Waited::Signal(libc::SIGTRAP, t) => {
                t.getregs(&mut r)?;
                if r.rip == stub::SYSCALL_DONE_RIP {
                    return Ok(Injected {
                        tracee: t,
                        ret: r.rax,
                        event_msg,
                        regs: r,
                    });
                }
                tracing::warn!(
                    tid,
                    rip = r.rip,
                    "unexpected SIGTRAP in stub during injected syscall"
                );
                return Err(Errno::EFAULT);
            }
            Waited::Event(e, t) if e == sys::EVENT_CLONE || e == sys::EVENT_FORK => {
                event_msg = t.geteventmsg()?;
                t.cont(0)?
            }
            Waited::Gone(_) => return Err(Errno::ESRCH),
            // A synchronous fault in the stub's own code: it would recur forever.
            Waited::Signal(
                sig @ (libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGSYS),
                t,
            ) => {
                let rip = t.getregs(&mut r).map(|()| r.rip).unwrap_or(0);
                tracing::error!(tid, sig, rip, "stub faulted in an injected syscall");
                return Err(Errno::EFAULT);
            }
            // Group stops, interrupt stops, stray signals (a late interrupt): suppress.
            other => {
                tracing::trace!(tid, ?other, "suppressed stop during injected syscall");
                match other.stopped() {
                    Some(t) => t.cont(0)?,
                    None => return Err(Errno::ESRCH),
                }
            }
        };
    }
}

/// Seizes the untraced, parked leader `pid` with `options`, runs `f` on it while it is
/// stopped, and parks and detaches it again. `f` hands the stopped leader back with its
/// result; if it cannot (the leader was lost), the stub process is killed, since a
/// leader stuck in a ptrace-stop could never serve another request.
pub(crate) fn with_seized_leader<T>(
    pid: Pid,
    options: u64,
    f: impl FnOnce(Stopped, &GeneralRegisters) -> Result<(Stopped, T), PlatformError>,
) -> Result<T, PlatformError> {
    let running = Running::seize(pid, options).map_err(|e| match e {
        Errno::EPERM => PlatformError::Unavailable(format!("ptrace not permitted: {e}")),
        errno => PlatformError::Host {
            op: "PTRACE_SEIZE",
            errno,
        },
    })?;
    let lost = |e: PlatformError| {
        tracing::error!(pid, error = %e, "stub leader lost; killing the stub");
        let _ = sys::kill(pid, libc::SIGKILL);
        e
    };
    if let Err(errno) = running.interrupt() {
        return Err(lost(PlatformError::Host {
            op: "PTRACE_INTERRUPT",
            errno,
        }));
    }
    let leader = match running.wait() {
        Ok(w) => w.stopped(),
        Err(_) => None,
    };
    let Some(leader) = leader else {
        return Err(lost(PlatformError::Internal(format!("stub {pid} died"))));
    };
    let mut base = GeneralRegisters::default();
    if let Err(errno) = leader.getregs(&mut base) {
        return Err(lost(PlatformError::Host {
            op: "PTRACE_GETREGS",
            errno,
        }));
    }
    let (leader, value) = f(leader, &base).map_err(lost)?;
    let mut park = base;
    park.rip = STUB_ADDR + stub::PARK_OFFSET;
    park.orig_rax = u64::MAX;
    if let Err(errno) = leader.setregs(&park).and_then(|()| leader.detach()) {
        return Err(lost(PlatformError::Host {
            op: "PTRACE_DETACH",
            errno,
        }));
    }
    Ok(value)
}

/// One stub process: the host side of one address space.
#[derive(Debug)]
pub(crate) struct Process {
    /// Unique among all address spaces of this program.
    pub(crate) id: u64,
    /// The leader (thread group id).
    pub(crate) pid: Pid,
    pub(crate) shared: Arc<Shared>,
    released: AtomicBool,
    /// The stub thread of each host thread (by host tid). Also serializes thread creation.
    threads: Mutex<HashMap<Pid, Arc<StubThread>>>,
}

impl Process {
    pub(crate) fn new(id: u64, pid: Pid, shared: Arc<Shared>) -> Process {
        Process {
            id,
            pid,
            shared,
            released: AtomicBool::new(false),
            threads: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// The stub thread traced by the calling host thread, created on first use.
    pub(crate) fn thread_for_current(self: &Arc<Self>) -> Result<Arc<StubThread>, PlatformError> {
        if self.is_released() {
            return Err(PlatformError::Released);
        }
        let me = host::tid();
        let mut threads = self.threads.lock();
        if let Some(t) = threads.get(&me) {
            return Ok(Arc::clone(t));
        }
        let t = match self.spawn_thread(me) {
            Ok(t) => Arc::new(t),
            // Killed by a concurrent release while we cloned.
            Err(_) if self.is_released() => return Err(PlatformError::Released),
            Err(e) => return Err(e),
        };
        threads.insert(me, Arc::clone(&t));
        drop(threads);
        host::register(&t);
        Ok(t)
    }

    /// Clones a new stub thread from the leader, traced by the calling thread `me`.
    fn spawn_thread(self: &Arc<Self>, me: Pid) -> Result<StubThread, PlatformError> {
        let options = sys::O_EXITKILL | sys::O_TRACESYSGOOD | sys::O_TRACECLONE;
        let tid = with_seized_leader(self.pid, options, |leader, base| {
            let done = inject(leader, base, libc::SYS_clone, [THREAD_FLAGS, 0, 0, 0, 0, 0])
                .map_err(host_err("inject clone"))?;
            let tid = match Errno::from_return(done.ret) {
                Some(errno) => Err(PlatformError::Host { op: "clone", errno }),
                None if done.event_msg != 0 => Ok(done.event_msg as Pid),
                None => Ok(done.ret as Pid),
            };
            // A failed clone still hands the leader back to be parked.
            Ok((done.tracee, tid))
        })??;
        // The new thread starts traced by us, in a PTRACE_EVENT_STOP.
        let mut regs = GeneralRegisters::default();
        let mut xstate = vec![0u8; XSTATE_MAX];
        let init = (|| {
            let t = Running::auto_attached(tid)
                .wait()?
                .stopped()
                .ok_or(Errno::ESRCH)?;
            t.getregs(&mut regs)?;
            let n = t.get_xstate(&mut xstate)?;
            xstate.truncate(n);
            xstate.shrink_to_fit();
            Ok(t)
        })();
        let tracee = match init {
            Ok(t) => t,
            Err(errno) => {
                // The thread is ours but unusable: take the whole process down.
                let _ = sys::kill(self.pid, libc::SIGKILL);
                return Err(PlatformError::Host {
                    op: "stub thread start",
                    errno,
                });
            }
        };
        tracing::debug!(pid = self.pid, tid, tracer = me, "new stub thread");
        Ok(StubThread {
            tid,
            tracer: me,
            process: Arc::clone(self),
            state: Mutex::new(ThreadState {
                tracee: Some(tracee),
                regs,
                xstate,
                pinned: false,
            }),
        })
    }

    /// Validates a `map_file`/`unmap` range.
    fn check_range(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        if !addr.is_multiple_of(stub::PAGE) || !len.is_multiple_of(stub::PAGE) {
            return Err(PlatformError::InvalidArgument(
                "address or length not page aligned",
            ));
        }
        if len == 0 {
            return Err(PlatformError::InvalidArgument("zero length"));
        }
        let end = addr
            .checked_add(len)
            .ok_or(PlatformError::InvalidArgument("range overflows"))?;
        if addr < crate::MIN_USER_ADDRESS || end > crate::MAX_USER_ADDRESS {
            return Err(PlatformError::InvalidArgument(
                "range outside the user address range",
            ));
        }
        Ok(())
    }

    /// Runs a system call in the calling thread's stub thread.
    fn syscall(self: &Arc<Self>, nr: i64, args: [u64; 6]) -> Result<u64, PlatformError> {
        let t = self.thread_for_current()?;
        t.inject(nr, args)
    }

    fn map_file(
        self: &Arc<Self>,
        addr: u64,
        off: u64,
        len: u64,
        prot: Protection,
    ) -> Result<(), PlatformError> {
        self.check_range(addr, len)?;
        if !off.is_multiple_of(stub::PAGE) {
            return Err(PlatformError::InvalidArgument(
                "file offset not page aligned",
            ));
        }
        match off.checked_add(len) {
            Some(end) if end <= self.shared.memory_file.size() => {}
            _ => {
                return Err(PlatformError::InvalidArgument(
                    "file range outside the memory file",
                ));
            }
        }
        let args = [
            addr,
            len,
            u64::from(prot.to_linux()),
            (libc::MAP_SHARED | libc::MAP_FIXED) as u64,
            stub::MEMFD_SLOT as u64,
            off,
        ];
        let ret = self.syscall(libc::SYS_mmap, args)?;
        if let Some(errno) = Errno::from_return(ret) {
            return Err(PlatformError::Host { op: "mmap", errno });
        }
        if ret != addr {
            return Err(PlatformError::Internal(format!(
                "mmap at {addr:#x} returned {ret:#x}"
            )));
        }
        Ok(())
    }

    fn unmap(self: &Arc<Self>, addr: u64, len: u64) -> Result<(), PlatformError> {
        self.check_range(addr, len)?;
        let ret = self.syscall(libc::SYS_munmap, [addr, len, 0, 0, 0, 0])?;
        if let Some(errno) = Errno::from_return(ret) {
            return Err(PlatformError::Host {
                op: "munmap",
                errno,
            });
        }
        Ok(())
    }

    /// Kills the stub process. Stub threads traced by the calling thread are reaped now,
    /// the others by their tracers (on their next use of the platform or at their exit);
    /// the leader is reaped by the master, which ignores `SIGCHLD`.
    pub(crate) fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = sys::kill(self.pid, libc::SIGKILL);
        let threads = std::mem::take(&mut *self.threads.lock());
        let me = host::tid();
        for t in threads.values() {
            if t.tracer == me {
                t.retire();
                host::unregister(t);
            }
        }
        tracing::debug!(pid = self.pid, "stub process released");
    }

    /// Removes `t` from the thread map if it is still there.
    fn forget(&self, t: &StubThread) {
        let mut threads = self.threads.lock();
        if threads
            .get(&t.tracer)
            .is_some_and(|x| std::ptr::eq(Arc::as_ptr(x), t))
        {
            threads.remove(&t.tracer);
        }
    }
}

/// Mutable state of a stub thread, touched only by its tracer.
#[derive(Debug)]
pub(crate) struct ThreadState {
    /// The stopped thread; `None` once it is gone, retired or lost.
    pub(crate) tracee: Option<Stopped>,
    /// The general registers the kernel holds for the thread right now.
    pub(crate) regs: GeneralRegisters,
    /// The XSAVE area the kernel holds for the thread right now (kernel size).
    pub(crate) xstate: Vec<u8>,
    /// Pinned to its tracer's CPU.
    pub(crate) pinned: bool,
}

/// A stub thread: a thread of a stub process traced by exactly one host thread.
#[derive(Debug)]
pub(crate) struct StubThread {
    pub(crate) tid: Pid,
    /// The host thread that traces it.
    pub(crate) tracer: Pid,
    pub(crate) process: Arc<Process>,
    pub(crate) state: Mutex<ThreadState>,
}

impl StubThread {
    /// The error for a stub thread that is gone.
    pub(crate) fn gone(&self) -> PlatformError {
        if self.process.is_released() {
            PlatformError::Released
        } else {
            PlatformError::Internal(format!(
                "stub thread {} of {} died",
                self.tid, self.process.pid
            ))
        }
    }

    /// Runs a system call in this (stopped) stub thread. Caller: the tracer.
    fn inject(&self, nr: i64, args: [u64; 6]) -> Result<u64, PlatformError> {
        let mut st = self.state.lock();
        let tracee = st.tracee.take().ok_or_else(|| self.gone())?;
        match inject(tracee, &st.regs, nr, args) {
            Ok(done) => {
                st.regs = done.regs;
                st.tracee = Some(done.tracee);
                Ok(done.ret)
            }
            Err(Errno::ESRCH) => Err(self.gone()),
            Err(errno) => {
                // Lost in a state we cannot explain: the address space is unusable.
                let _ = sys::kill(self.process.pid, libc::SIGKILL);
                Err(PlatformError::Host {
                    op: "injected syscall",
                    errno,
                })
            }
        }
    }

    /// True when the process is released and this thread only waits to be reaped.
    pub(crate) fn is_defunct(&self) -> bool {
        self.process.is_released()
    }

    /// Ends this stub thread: reaps it if its process was killed, otherwise makes it exit
    /// on its own (the rest of the process lives on). Caller: the tracer.
    pub(crate) fn retire(&self) {
        let mut st = self.state.lock();
        let Some(tracee) = st.tracee.take() else {
            return;
        };
        let running = if self.process.is_released() {
            Ok(tracee.killed())
        } else {
            self.process.forget(self);
            let mut r = st.regs;
            r.rip = STUB_ADDR + stub::SYSCALL_OFFSET;
            r.cs = crate::context::USER_CS;
            r.ss = crate::context::USER_DS;
            r.rax = libc::SYS_exit as u64;
            r.rdi = 0;
            r.orig_rax = u64::MAX;
            tracee.setregs(&r).and_then(|()| tracee.cont(0))
        };
        match running {
            Ok(r) => r.reap(),
            Err(e) => tracing::debug!(tid = self.tid, error = %e, "stub thread already gone"),
        }
    }
}

/// An address space of the ptrace platform: one stub process.
#[derive(Debug)]
pub struct PtraceAddressSpace {
    pub(crate) process: Arc<Process>,
}

impl PtraceAddressSpace {
    /// The host pid of the stub process (for diagnostics and tests).
    pub fn stub_pid(&self) -> i32 {
        self.process.pid
    }
}

impl AddressSpace for PtraceAddressSpace {
    fn map_file(
        &self,
        addr: u64,
        file_offset: u64,
        len: u64,
        prot: Protection,
    ) -> Result<(), PlatformError> {
        self.process.map_file(addr, file_offset, len, prot)
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        self.process.unmap(addr, len)
    }

    fn release(&self) {
        self.process.release();
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for PtraceAddressSpace {
    fn drop(&mut self) {
        self.process.release();
    }
}
