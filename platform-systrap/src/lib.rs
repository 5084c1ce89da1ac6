//! The systrap platform: application code runs in stub processes under a seccomp filter
//! that turns every system call into a `SIGSYS`; the stub's own signal handler hands the
//! kernel's signal frame (all registers and the FPU state) to the Sentry through memory
//! they share, and returns to the application with `rt_sigreturn` once the Sentry has
//! written the results into that frame. No ptrace at all; a round trip costs a signal
//! delivery, two futex wake-ups and a `rt_sigreturn`.
//!
//! # Processes and threads
//!
//! - At creation the platform starts a *forker* thread that forks the **master stub**
//!   from the Sentry. The master cleans itself up (own session, default dispositions,
//!   every signal blocked, `no_new_privs`, no core files, only the memory file open at fd
//!   [`MEMFD_SLOT`]), unmaps everything but the stub code page at [`STUB_ADDR`] and serves
//!   fork requests from the Sentry through a control page. Its `PR_SET_PDEATHSIG` ties it
//!   to the forker thread, which lives exactly as long as the platform.
//! - Each **address space** is a stub process forked by the master on request. Its first
//!   thread is the **executor**: it maps, unmaps and changes protections on the Sentry's
//!   request (arguments in a control page the stub can only read, results through a pipe
//!   the application cannot write) and clones the stub threads.
//! - Each [`Context`] that runs in an address space gets a **stub thread** there, with its
//!   own 64 KiB region of shared memory (a state page and the alternate signal stack on
//!   which the kernel writes the signal frame), its seccomp filter, and — by default —
//!   pinned to the CPU of the host thread that drives the context: a same-CPU futex
//!   hand-off is several times cheaper than a cross-CPU one on nested VMs.
//! - [`Context::interrupt`] sends `SIGURG` to a running stub thread; its handler reports
//!   it like any trap.
//!
//! See `docs/architecture.md` of the workspace for the security argument.
//!
//! # Unsafe code
//!
//! Denied in the crate except in `sys` (host calls, the shared words, the master's fork)
//! and `stub` (the stub's code page); each block has a `SAFETY:` line.

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod context;
mod filter;
mod process;
pub mod seccomp;
#[allow(unsafe_code)]
mod stub;
#[allow(unsafe_code)]
mod sys;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use parking_lot::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use platform::{AddressSpace, Context, MemoryFile, Platform, PlatformError};

pub use context::SystrapContext;
pub use process::SystrapAddressSpace;
pub use stub::{MEMFD_SLOT, REGION_BASE, STUB_ADDR};

use crate::stub::{M_CTL_OFF, M_REQ, M_RESP, M_RESULT, PAGE};
use crate::sys::{Pid, Shm};

/// Lowest mappable application address.
const MIN_USER_ADDRESS: u64 = 0x1_0000;
/// One past the highest mappable application address: the stub regions start here.
const MAX_USER_ADDRESS: u64 = REGION_BASE;

/// Tunables of the systrap platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SystrapOptions {
    /// Pin each host thread that drives contexts, and its stub threads, to the same CPU
    /// (round-robin over the allowed CPUs). Default: true.
    pub pin: bool,
    /// How many times each side polls the shared state word before it sleeps on the
    /// futex. Useful when the two sides run on different CPUs; wasted when they share
    /// one. Default: 0 when pinned, 200 otherwise.
    pub spin: u32,
    /// How many ready stub processes to keep forked in advance, so that creating an
    /// address space (fork, exec) does not wait for the fork. Default: 2.
    pub pool: usize,
}

impl Default for SystrapOptions {
    fn default() -> Self {
        SystrapOptions {
            pin: true,
            spin: 0,
            pool: 2,
        }
    }
}

/// The master stub, as the Sentry sees it.
#[derive(Debug)]
struct Master {
    pid: Pid,
    pidfd: OwnedFd,
    ctl: Shm,
    /// Last request number; serializes requests.
    seq: Mutex<u32>,
}

impl Master {
    /// Asks the master to fork a stub whose control page is at file offset `ctl_off`.
    fn fork(&self, ctl_off: u64) -> Result<Pid, PlatformError> {
        let mut seq = self.seq.lock();
        *seq = seq.wrapping_add(1);
        self.ctl.u64(M_CTL_OFF).store(ctl_off, Ordering::Relaxed);
        self.ctl.u32(M_REQ).store(*seq, Ordering::Release);
        sys::futex_wake(self.ctl.u32(M_REQ));
        loop {
            let resp = self.ctl.u32(M_RESP).load(Ordering::Acquire);
            if resp == *seq {
                break;
            }
            sys::futex_wait(self.ctl.u32(M_RESP), resp, Duration::from_millis(100));
            if self.ctl.u32(M_RESP).load(Ordering::Acquire) != *seq
                && sys::pidfd_exited(&self.pidfd, 0)
            {
                return Err(PlatformError::Internal("the master stub died".into()));
            }
        }
        let r = self.ctl.u64(M_RESULT).load(Ordering::Acquire) as i64;
        if r <= 0 {
            let errno = linux_abi::Errno::from_return(r as u64).unwrap_or(linux_abi::Errno::EIO);
            return Err(PlatformError::Host {
                op: "fork stub",
                errno,
            });
        }
        Ok(r as Pid)
    }
}

/// State shared by the platform and every address space and context it made.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) memory_file: Arc<MemoryFile>,
    pub(crate) options: SystrapOptions,
    master: Master,
    /// Dropping the sender stops the forker thread, which kills and reaps the master.
    forker: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    cpus: Vec<usize>,
    next_cpu: AtomicUsize,
    /// The Sentry's pid (sender of interrupt signals).
    pub(crate) sentry_pid: Pid,
    /// Stub processes forked ahead of time; `None` once the platform is gone.
    pool: Mutex<Option<Vec<process::Process>>>,
    /// A refill thread is running.
    refilling: AtomicBool,
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

    /// A ready stub process: from the pool if one is there, else freshly forked.
    fn take_process(self: &Arc<Self>) -> Result<process::Process, PlatformError> {
        loop {
            let pooled = self.pool.lock().as_mut().and_then(Vec::pop);
            match pooled {
                Some(p) if p.is_dead() => drop(p),
                Some(p) => return Ok(p),
                None => return process::Process::fork(self),
            }
        }
    }

    /// How many processes the pool lacks (0 once the platform is gone).
    fn pool_deficit(&self) -> usize {
        self.pool
            .lock()
            .as_ref()
            .map_or(0, |v| self.options.pool.saturating_sub(v.len()))
    }

    /// Puts a process into the pool, or drops it if the platform is gone.
    fn pool_put(&self, p: process::Process) {
        let rejected = match self.pool.lock().as_mut() {
            Some(v) => {
                v.push(p);
                None
            }
            None => Some(p),
        };
        drop(rejected);
    }

    /// Tops the pool up on a thread of its own, so that the caller does not wait.
    fn refill_pool_async(self: &Arc<Self>) {
        if self.pool_deficit() == 0 || self.refilling.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("systrap-pool".into())
            .spawn(move || {
                while let Some(shared) = weak.upgrade() {
                    if shared.pool_deficit() == 0 {
                        shared.refilling.store(false, Ordering::Release);
                        // A take may have raced with the store: look once more.
                        if shared.pool_deficit() == 0
                            || shared.refilling.swap(true, Ordering::AcqRel)
                        {
                            return;
                        }
                        continue;
                    }
                    match process::Process::fork(&shared) {
                        Ok(p) => shared.pool_put(p),
                        Err(e) => {
                            tracing::debug!(error = %e, "cannot refill the stub pool");
                            shared.refilling.store(false, Ordering::Release);
                            return;
                        }
                    }
                }
            });
        if spawned.is_err() {
            self.refilling.store(false, Ordering::Release);
        }
    }
}

impl Drop for SystrapPlatform {
    fn drop(&mut self) {
        // Pooled processes hold the shared state: let them go with the platform, and
        // make a refill in progress drop what it forks.
        let pooled = self.shared.pool.lock().take();
        drop(pooled);
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

/// The systrap platform. See the crate documentation.
#[derive(Debug)]
pub struct SystrapPlatform {
    shared: Arc<Shared>,
}

impl SystrapPlatform {
    /// Creates the platform over `memory_file` with default options.
    pub fn new(memory_file: Arc<MemoryFile>) -> Result<Self, PlatformError> {
        Self::with_options(memory_file, SystrapOptions::default())
    }

    /// Creates the platform with a fresh memory file of [`MemoryFile::DEFAULT_CAPACITY`].
    pub fn with_new_memory_file(options: SystrapOptions) -> Result<Self, PlatformError> {
        let mf = MemoryFile::new("rsentry-memory", MemoryFile::DEFAULT_CAPACITY)
            .map_err(|e| PlatformError::Unavailable(format!("memory file: {e}")))?;
        Self::with_options(Arc::new(mf), options)
    }

    /// Creates the platform over `memory_file` with `options`: starts the forker thread
    /// and the master stub (and fills the stub pool).
    pub fn with_options(
        memory_file: Arc<MemoryFile>,
        mut options: SystrapOptions,
    ) -> Result<Self, PlatformError> {
        stub::page_image().map_err(|e| PlatformError::Internal(e.into()))?;
        if !options.pin && options.spin == 0 {
            options.spin = 200;
        }
        let ctl = Shm::allocate(&memory_file, PAGE).map_err(|errno| PlatformError::Host {
            op: "allocate master control page",
            errno,
        })?;
        let memfd = memory_file.raw_fd();
        let ctl_off = ctl.offset();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Pid, PlatformError>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("systrap-forker".into())
            .spawn(move || forker_main(memfd, ctl_off, ready_tx, stop_rx))
            .map_err(|e| PlatformError::Unavailable(format!("cannot start forker thread: {e}")))?;
        let pid = match ready_rx.recv() {
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
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(errno) => {
                drop(stop_tx);
                let _ = handle.join();
                return Err(PlatformError::Unavailable(format!(
                    "pidfd_open of the master stub: {errno}"
                )));
            }
        };
        let cpus = sys::allowed_cpus();
        tracing::debug!(master = pid, ?cpus, ?options, "systrap platform ready");
        let shared = Arc::new(Shared {
            memory_file,
            options,
            master: Master {
                pid,
                pidfd,
                ctl,
                seq: Mutex::new(0),
            },
            forker: Mutex::new(Some((stop_tx, handle))),
            cpus,
            next_cpu: AtomicUsize::new(0),
            sentry_pid: sys::getpid(),
            pool: Mutex::new(Some(Vec::new())),
            refilling: AtomicBool::new(false),
        });
        // The first stub proves the whole chain works here (pidfd_getfd, seccomp...).
        let first = process::Process::fork(&shared).map_err(|e| match e {
            PlatformError::Host { op, errno } => {
                PlatformError::Unavailable(format!("cannot start a stub: {op}: {errno}"))
            }
            e => e,
        })?;
        shared.pool_put(first);
        shared.refill_pool_async();
        Ok(SystrapPlatform { shared })
    }

    /// The options this platform was made with.
    pub fn options(&self) -> SystrapOptions {
        self.shared.options
    }

    /// The pid of the master stub (for diagnostics and tests).
    pub fn master_pid(&self) -> i32 {
        self.shared.master.pid
    }

    /// How many ready stub processes wait in the pool (for tests).
    pub fn pooled(&self) -> usize {
        self.shared.pool.lock().as_ref().map_or(0, Vec::len)
    }
}

/// The forker thread: forks the master, reports it, then waits until the platform is
/// gone and kills and reaps it (the master's death takes every stub process with it).
fn forker_main(
    memfd: i32,
    ctl_off: u64,
    ready: mpsc::Sender<Result<Pid, PlatformError>>,
    stop: mpsc::Receiver<()>,
) {
    let (pid, ready_r) = match sys::fork_master(memfd, ctl_off) {
        Ok(x) => x,
        Err(errno) => {
            let _ = ready.send(Err(PlatformError::Host {
                op: "fork master stub",
                errno,
            }));
            return;
        }
    };
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
    let _ = stop.recv();
    let _ = sys::kill(pid, libc::SIGKILL);
    let _ = sys::waitpid(pid, 0);
    tracing::debug!(pid, "master stub reaped");
}

impl Platform for SystrapPlatform {
    fn name(&self) -> &'static str {
        "systrap"
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
        let process = self.shared.take_process()?;
        self.shared.refill_pool_async();
        Ok(Arc::new(SystrapAddressSpace::new(process)))
    }

    fn new_context(&self) -> Result<Arc<dyn Context>, PlatformError> {
        Ok(Arc::new(SystrapContext::new(Arc::clone(&self.shared))))
    }
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
