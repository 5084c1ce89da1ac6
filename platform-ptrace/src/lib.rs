//! The ptrace platform: application code runs in stub processes traced with
//! `PTRACE_SYSEMU`, so every system call it makes stops *before* the host executes it and
//! is handed to the Sentry instead.
//!
//! # Processes and threads
//!
//! - At creation the platform starts a *forker* thread that forks the **master stub** from
//!   the Sentry. The master cleans itself up (own session, default signal dispositions,
//!   only the memory file open, at fd [`MEMFD_SLOT`]), unmaps everything but the stub code
//!   page at [`STUB_ADDR`] and parks untraced. Its `PR_SET_PDEATHSIG` is tied to the forker
//!   thread, which lives exactly as long as the platform.
//! - Each address space is a **stub process** forked from the master by injecting
//!   `clone(SIGCHLD)` (its own `PR_SET_PDEATHSIG` ties it to the master).
//! - Each host thread that uses an address space gets its own **stub thread** in it,
//!   cloned from the stub's parked leader and traced by that host thread from birth
//!   (`PTRACE_O_TRACECLONE`), with `PTRACE_O_EXITKILL`. A [`Context`] is owned by the
//!   first thread that switches it and runs in that thread's stub thread.
//! - Mappings are changed by injecting `mmap(MAP_SHARED | MAP_FIXED, memfd)` / `munmap`
//!   into the calling thread's stub thread; the stub page lies above
//!   [`Platform::max_user_address`], so no mapping can replace it.
//! - With [`PtraceOptions::pin`], each tracer thread and its stub threads are pinned to
//!   one CPU (round-robin over the allowed CPUs): a same-CPU wake-up is several times
//!   cheaper than a cross-CPU one on nested VMs.
//!
//! # Caveats for the rest of the Sentry
//!
//! - Never `waitpid(-1, ..)` with `__WALL` (or on traced pids) elsewhere in the Sentry: it
//!   would steal this platform's ptrace stops.
//! - A host thread that drove stub threads must not be killed abruptly; when it exits
//!   normally a thread-local destructor retires its stub threads.
//!
//! # Unsafe code
//!
//! Denied in the crate except in `sys` (the host calls: ptrace, wait, injected syscalls)
//! and `stub` (the stub's code page); each block has a `SAFETY:` line.

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod context;
mod host;
mod process;
pub mod seccomp;
#[allow(unsafe_code)]
mod stub;
#[allow(unsafe_code)]
mod sys;
mod tracee;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;

use parking_lot::Mutex;
use std::thread::JoinHandle;

use platform::{AddressSpace, Context, MemoryFile, Platform, PlatformError};

pub use context::PtraceContext;
pub use process::PtraceAddressSpace;
pub use stub::{MEMFD_SLOT, STUB_ADDR};

use crate::process::{Process, inject, with_seized_leader};
use crate::sys::Pid;
use crate::tracee::Running;

/// Lowest mappable application address.
const MIN_USER_ADDRESS: u64 = 0x1_0000;
/// One past the highest mappable application address: the stub page starts here.
const MAX_USER_ADDRESS: u64 = STUB_ADDR;

/// Tunables of the ptrace platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PtraceOptions {
    /// Pin each tracer thread and its stub threads to the same CPU (round-robin over the
    /// allowed CPUs). Default: true.
    pub pin: bool,
}

impl Default for PtraceOptions {
    fn default() -> Self {
        PtraceOptions { pin: true }
    }
}

/// State shared by the platform and every address space and context it made.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) memory_file: Arc<MemoryFile>,
    pub(crate) options: PtraceOptions,
    /// Pid of the master stub.
    master: Pid,
    /// Serializes forks from the master.
    master_lock: Mutex<()>,
    /// Dropping the sender stops the forker thread, which kills and reaps the master.
    forker: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    cpus: Vec<usize>,
    next_cpu: AtomicUsize,
    next_id: AtomicU64,
    /// The Sentry's pid (sender of interrupt signals).
    pub(crate) sentry_pid: Pid,
}

impl Shared {
    /// The next CPU in round-robin order.
    pub(crate) fn next_cpu(&self) -> Option<usize> {
        if self.cpus.is_empty() {
            return None;
        }
        let i = self.next_cpu.fetch_add(1, Ordering::Relaxed);
        Some(self.cpus[i % self.cpus.len()])
    }

    /// Forks a new stub process from the master.
    fn fork_process(self: &Arc<Self>) -> Result<Process, PlatformError> {
        let _guard = self.master_lock.lock();
        let options = sys::O_EXITKILL | sys::O_TRACEFORK;
        let fork = [libc::SIGCHLD as u64, 0, 0, 0, 0, 0];
        let child = with_seized_leader(self.master, options, |master, base| {
            let done = inject(master, base, libc::SYS_clone, fork).map_err(|errno| {
                PlatformError::Host {
                    op: "inject fork",
                    errno,
                }
            })?;
            let child = match linux_abi::Errno::from_return(done.ret) {
                Some(errno) => Err(PlatformError::Host { op: "fork", errno }),
                None if done.event_msg != 0 => Ok(done.event_msg as Pid),
                None => Ok(done.ret as Pid),
            };
            Ok((done.tracee, child))
        })??;
        // The child starts traced by us (PTRACE_O_TRACEFORK) in a PTRACE_EVENT_STOP. Tie its
        // life to the master's, then park it untraced like its parent.
        let prepared = (|| -> Result<(), PlatformError> {
            let host = |op| move |errno| PlatformError::Host { op, errno };
            let stopped = Running::auto_attached(child)
                .wait()
                .map_err(host("wait for new stub"))?
                .stopped()
                .ok_or_else(|| PlatformError::Internal("new stub died".into()))?;
            let mut base = platform::GeneralRegisters::default();
            stopped.getregs(&mut base).map_err(host("PTRACE_GETREGS"))?;
            let pdeathsig = [
                libc::PR_SET_PDEATHSIG as u64,
                libc::SIGKILL as u64,
                0,
                0,
                0,
                0,
            ];
            let done =
                inject(stopped, &base, libc::SYS_prctl, pdeathsig).map_err(host("inject prctl"))?;
            if done.ret != 0 {
                return Err(PlatformError::Internal(format!(
                    "prctl in stub returned {:#x}",
                    done.ret
                )));
            }
            let mut park = done.regs;
            park.rip = STUB_ADDR + stub::PARK_OFFSET;
            park.orig_rax = u64::MAX;
            done.tracee.setregs(&park).map_err(host("PTRACE_SETREGS"))?;
            done.tracee.detach().map_err(host("PTRACE_DETACH"))
        })();
        if let Err(e) = prepared {
            let _ = sys::kill(child, libc::SIGKILL);
            // Collect it if we still trace it (single-threaded: it goes at once).
            Running::auto_attached(child).reap();
            return Err(e);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pid = child, id, "new stub process");
        Ok(Process::new(id, child, Arc::clone(self)))
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let forker = self.forker.get_mut().take();
        if let Some((tx, handle)) = forker {
            drop(tx);
            let _ = handle.join();
        }
    }
}

/// The ptrace platform. See the crate documentation.
#[derive(Debug)]
pub struct PtracePlatform {
    shared: Arc<Shared>,
}

impl PtracePlatform {
    /// Creates the platform over `memory_file` with default options.
    pub fn new(memory_file: Arc<MemoryFile>) -> Result<Self, PlatformError> {
        Self::with_options(memory_file, PtraceOptions::default())
    }

    /// Creates the platform with a fresh memory file of [`MemoryFile::DEFAULT_CAPACITY`].
    pub fn with_new_memory_file(options: PtraceOptions) -> Result<Self, PlatformError> {
        let mf = MemoryFile::new("rsentry-memory", MemoryFile::DEFAULT_CAPACITY)
            .map_err(|e| PlatformError::Unavailable(format!("memory file: {e}")))?;
        Self::with_options(Arc::new(mf), options)
    }

    /// Creates the platform over `memory_file` with `options`: starts the forker thread
    /// and the master stub.
    pub fn with_options(
        memory_file: Arc<MemoryFile>,
        options: PtraceOptions,
    ) -> Result<Self, PlatformError> {
        if !stub::layout_ok() {
            return Err(PlatformError::Internal("stub code layout mismatch".into()));
        }
        let memfd = memory_file.raw_fd();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Pid, PlatformError>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("ptrace-forker".into())
            .spawn(move || forker_main(memfd, ready_tx, stop_rx))
            .map_err(|e| PlatformError::Unavailable(format!("cannot start forker thread: {e}")))?;
        let master = match ready_rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = handle.join();
                return Err(e);
            }
            Err(_) => {
                let _ = handle.join();
                return Err(PlatformError::Internal("forker thread died".into()));
            }
        };
        let cpus = sys::allowed_cpus();
        tracing::debug!(master, ?cpus, ?options, "ptrace platform ready");
        Ok(PtracePlatform {
            shared: Arc::new(Shared {
                memory_file,
                options,
                master,
                master_lock: Mutex::new(()),
                forker: Mutex::new(Some((stop_tx, handle))),
                cpus,
                next_cpu: AtomicUsize::new(0),
                next_id: AtomicU64::new(1),
                sentry_pid: sys::getpid(),
            }),
        })
    }

    /// The options this platform was made with.
    pub fn options(&self) -> PtraceOptions {
        self.shared.options
    }

    /// The pid of the master stub (for diagnostics and tests).
    pub fn master_pid(&self) -> i32 {
        self.shared.master
    }
}

/// The forker thread: forks the master, reports it, then waits until the platform is
/// gone and kills and reaps it (the master's death takes every stub process with it).
fn forker_main(
    memfd: i32,
    ready: mpsc::Sender<Result<Pid, PlatformError>>,
    stop: mpsc::Receiver<()>,
) {
    let (pid, ready_r) = match sys::fork_master(memfd) {
        Ok(x) => x,
        Err(errno) => {
            let _ = ready.send(Err(PlatformError::Host {
                op: "fork master stub",
                errno,
            }));
            return;
        }
    };
    // Success is one byte and then EOF: the master closes the pipe after writing, and it
    // must have done so before anyone forks it.
    let mut buf = Vec::new();
    let mut f = std::fs::File::from(ready_r);
    let ok = std::io::Read::read_to_end(&mut f, &mut buf).is_ok() && buf.len() == 1;
    drop(f);
    if !ok {
        let status = sys::waitpid(pid, 0).ok().flatten().unwrap_or(0);
        let _ = ready.send(Err(PlatformError::Unavailable(format!(
            "master stub failed to start (wait status {status:#x})"
        ))));
        return;
    }
    let _ = ready.send(Ok(pid));
    // Blocks until every sender (the platform's shared state) is gone.
    let _ = stop.recv();
    let _ = sys::kill(pid, libc::SIGKILL);
    let _ = sys::waitpid(pid, 0);
    tracing::debug!(pid, "master stub reaped");
}

impl Platform for PtracePlatform {
    fn name(&self) -> &'static str {
        "ptrace"
    }

    fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.shared.memory_file
    }

    fn min_user_address(&self) -> u64 {
        MIN_USER_ADDRESS
    }

    fn max_user_address(&self) -> u64 {
        MAX_USER_ADDRESS
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        let process = self.shared.fork_process()?;
        Ok(Arc::new(PtraceAddressSpace {
            process: Arc::new(process),
        }))
    }

    fn new_context(&self) -> Result<Arc<dyn Context>, PlatformError> {
        Ok(Arc::new(PtraceContext::new(Arc::clone(&self.shared))))
    }
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
