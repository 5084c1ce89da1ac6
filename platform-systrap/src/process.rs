//! Stub processes (one per address space), their executor, and stub threads (one per
//! context that runs in the address space).

use std::any::Any;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use linux_abi::Errno;
use platform::{AddressSpace, PlatformError, Protection};

use crate::Shared;
use crate::stub::{self, PAGE, REGION_BASE, REGION_SIZE};
use crate::sys::{self, Pid, Shm};

/// How long the Sentry waits for a stub that should answer at once before it gives up on
/// it (and kills it).
pub(crate) const STUB_TIMEOUT: Duration = Duration::from_secs(10);

/// A stub process.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pid: Pid,
    pidfd: OwnedFd,
    /// Read end of the executor's result pipe.
    result: OwnedFd,
    /// The control page (read-only in the stub).
    ctl: Shm,
    /// Last request number; held while a request runs.
    seq: Mutex<u32>,
    released: AtomicBool,
    /// Free region slots (indexes), and the next never-used one.
    slots: Mutex<(Vec<u64>, u64)>,
    /// Live stub threads, to wake their waiters on release.
    threads: Mutex<Vec<Weak<StubThread>>>,
}

fn host_err(op: &'static str) -> impl FnOnce(Errno) -> PlatformError {
    move |errno| PlatformError::Host { op, errno }
}

impl Process {
    /// Forks a new stub process from the master and waits until its executor is ready.
    pub(crate) fn fork(shared: &Arc<Shared>) -> Result<Process, PlatformError> {
        let ctl = Shm::allocate(&shared.memory_file, PAGE)
            .map_err(host_err("allocate stub control page"))?;
        let pid = shared.master.fork(ctl.offset())?;
        let kill = |pid| {
            let _ = sys::kill(pid, libc::SIGKILL);
        };
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(errno) => {
                kill(pid);
                return Err(PlatformError::Host {
                    op: "pidfd_open",
                    errno,
                });
            }
        };
        let result = match sys::pidfd_getfd(&pidfd, stub::RESULT_READ_FD) {
            Ok(fd) => fd,
            Err(errno) => {
                let _ = sys::pidfd_kill(&pidfd, libc::SIGKILL);
                return Err(PlatformError::Host {
                    op: "pidfd_getfd",
                    errno,
                });
            }
        };
        let mut buf = [0u8; 2];
        match sys::read(&result, &mut buf) {
            Ok(1) => {}
            r => {
                let _ = sys::pidfd_kill(&pidfd, libc::SIGKILL);
                return Err(PlatformError::Internal(format!(
                    "stub {pid} failed to start ({r:?})"
                )));
            }
        }
        tracing::debug!(pid, "new systrap stub process");
        Ok(Process {
            shared: Arc::clone(shared),
            pid,
            pidfd,
            result,
            ctl,
            seq: Mutex::new(0),
            released: AtomicBool::new(false),
            slots: Mutex::new((Vec::new(), 0)),
            threads: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// True when the process has exited (or was released).
    pub(crate) fn is_dead(&self) -> bool {
        self.is_released() || sys::pidfd_exited(&self.pidfd, 0)
    }

    fn ctl(&self) -> &Shm {
        &self.ctl
    }

    /// Runs one executor operation and waits for its result.
    fn request(&self, op: u64, args: [u64; 4]) -> Result<(), PlatformError> {
        let mut seq = self.seq.lock();
        if self.is_released() {
            return Err(PlatformError::Released);
        }
        let ctl = self.ctl();
        ctl.u64(stub::C_OP).store(op, Ordering::Relaxed);
        for (i, a) in args.iter().enumerate() {
            ctl.u64(stub::C_ARGS + 8 * i as u64)
                .store(*a, Ordering::Relaxed);
        }
        *seq = seq.wrapping_add(1);
        ctl.u32(stub::C_REQ).store(*seq, Ordering::Release);
        sys::futex_wake(ctl.u32(stub::C_REQ));
        let mut buf = [0u8; 2];
        match sys::read(&self.result, &mut buf) {
            Ok(1) => Ok(()),
            Ok(2) => Err(PlatformError::Host {
                op: match op {
                    stub::OP_MMAP => "mmap in stub",
                    stub::OP_MUNMAP => "munmap in stub",
                    stub::OP_MPROTECT => "mprotect in stub",
                    _ => "clone in stub",
                },
                errno: Errno::ENOMEM,
            }),
            Ok(_) if self.is_released() => Err(PlatformError::Released),
            Ok(_) => Err(PlatformError::Internal(format!(
                "stub process {} died",
                self.pid
            ))),
            Err(errno) => Err(PlatformError::Host {
                op: "read stub result",
                errno,
            }),
        }
    }

    /// Validates a `map_file`/`unmap` range.
    fn check_range(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        if !addr.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
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

    fn map_file(
        &self,
        addr: u64,
        off: u64,
        len: u64,
        prot: Protection,
    ) -> Result<(), PlatformError> {
        self.check_range(addr, len)?;
        if !off.is_multiple_of(PAGE) {
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
        self.request(stub::OP_MMAP, [addr, len, u64::from(prot.to_linux()), off])
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        self.check_range(addr, len)?;
        self.request(stub::OP_MUNMAP, [addr, len, 0, 0])
    }

    /// Creates a stub thread for a context whose driving thread runs on `cpu`.
    pub(crate) fn new_thread(
        self: &Arc<Self>,
        cpu: Option<usize>,
    ) -> Result<Arc<StubThread>, PlatformError> {
        if self.is_released() {
            return Err(PlatformError::Released);
        }
        let slot = {
            let mut s = self.slots.lock();
            match s.0.pop() {
                Some(i) => i,
                None if s.1 < stub::MAX_REGIONS => {
                    s.1 += 1;
                    s.1 - 1
                }
                None => {
                    return Err(PlatformError::Host {
                        op: "stub thread regions",
                        errno: Errno::EAGAIN,
                    });
                }
            }
        };
        let region = match Shm::allocate(&self.shared.memory_file, REGION_SIZE) {
            Ok(r) => r,
            Err(errno) => {
                self.slots.lock().0.push(slot);
                return Err(PlatformError::Host {
                    op: "allocate stub thread region",
                    errno,
                });
            }
        };
        let addr = REGION_BASE + slot * REGION_SIZE;
        region
            .u64(stub::ST_SPIN)
            .store(u64::from(self.shared.options.spin), Ordering::Relaxed);
        if let Some(cpu) = cpu.filter(|&c| c < (stub::CPUSET_BYTES * 8) as usize) {
            let mut set = [0u8; stub::CPUSET_BYTES as usize];
            set[cpu / 8] |= 1 << (cpu % 8);
            region.write(stub::ST_CPUSET, &set);
            region.u64(stub::ST_PIN).store(1, Ordering::Relaxed);
        }
        let thread = Arc::new(StubThread {
            process: Arc::clone(self),
            slot,
            addr,
            region,
            tid: AtomicI32::new(0),
            mapped: AtomicBool::new(false),
            exited: AtomicBool::new(false),
            mirror: Mutex::new(Mirror::default()),
        });
        // From here, dropping `thread` cleans up whatever was done.
        self.request(
            stub::OP_MMAP,
            [
                addr,
                REGION_SIZE,
                (libc::PROT_READ | libc::PROT_WRITE) as u64,
                thread.region().offset(),
            ],
        )?;
        thread.mapped.store(true, Ordering::Release);
        self.request(stub::OP_CLONE, [addr, 0, 0, 0])?;
        // Wait for the new thread's first trap.
        thread.wait_trapped(None)?;
        crate::context::adopt_first_frame(&thread)?;
        let tid = thread.region().u32(stub::ST_TID).load(Ordering::Acquire) as Pid;
        if tid <= 0 || sys::tgkill(self.pid, tid, 0).is_err() {
            return Err(PlatformError::Internal(
                "new stub thread reported no thread id".into(),
            ));
        }
        thread.tid.store(tid, Ordering::Release);
        self.threads.lock().push(Arc::downgrade(&thread));
        tracing::debug!(pid = self.pid, tid, slot, "new systrap stub thread");
        Ok(thread)
    }

    /// Kills the stub process, wakes everyone waiting on it and waits for it to be gone.
    pub(crate) fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = sys::pidfd_kill(&self.pidfd, libc::SIGKILL);
        for t in self.threads.lock().drain(..) {
            if let Some(t) = t.upgrade() {
                sys::futex_wake(t.region().u32(stub::ST_STATE));
            }
        }
        tracing::debug!(pid = self.pid, "systrap stub process released");
    }

    /// Waits (bounded) until the process is gone; true if it is.
    fn wait_gone(&self) -> bool {
        sys::pidfd_exited(&self.pidfd, STUB_TIMEOUT.as_millis() as i32)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.release();
        let gone = self.wait_gone();
        // Memory a live process might still map is never handed out again.
        if gone {
            self.ctl.free();
        } else {
            tracing::error!(
                pid = self.pid,
                "stub process does not die; leaking its pages"
            );
        }
    }
}

/// What the Sentry knows of a stub thread's state beyond the signal frame.
#[derive(Debug, Default)]
pub(crate) struct Mirror {
    /// FS and GS base last set in the thread (None: unknown, set on next switch).
    pub(crate) fs: Option<u64>,
    pub(crate) gs: Option<u64>,
    /// Offset in the region of the current signal frame and its FPU area, and the FPU
    /// area's size, as validated at the last trap.
    pub(crate) frame: Option<crate::context::FrameLayout>,
}

/// A stub thread.
#[derive(Debug)]
pub(crate) struct StubThread {
    pub(crate) process: Arc<Process>,
    slot: u64,
    /// Address of its region in the stub.
    pub(crate) addr: u64,
    region: Shm,
    /// Host thread id (0 until it started).
    tid: AtomicI32,
    /// The region is mapped in the stub.
    mapped: AtomicBool,
    /// The thread has exited (or its process is dead).
    exited: AtomicBool,
    pub(crate) mirror: Mutex<Mirror>,
}

impl StubThread {
    pub(crate) fn region(&self) -> &Shm {
        &self.region
    }

    /// The host thread id (0 until it started).
    pub(crate) fn tid(&self) -> Pid {
        self.tid.load(Ordering::Acquire)
    }

    /// The error for a stub thread that is gone.
    pub(crate) fn gone(&self) -> PlatformError {
        if self.process.is_released() {
            PlatformError::Released
        } else {
            PlatformError::Internal(format!(
                "stub thread {} of {} died",
                self.tid(),
                self.process.pid
            ))
        }
    }

    /// Waits until the thread reports a trap. `interrupted` tells whether an interrupt is
    /// outstanding (a thread that ignores it for [`STUB_TIMEOUT`] is killed).
    pub(crate) fn wait_trapped(
        &self,
        interrupted: Option<&dyn Fn() -> bool>,
    ) -> Result<(), PlatformError> {
        let state = self.region().u32(stub::ST_STATE);
        let trapped = |v: u32| v & !stub::STATE_WAITING == stub::STATE_TRAPPED;
        for _ in 0..self.process.shared.options.spin {
            if trapped(state.load(Ordering::Acquire)) {
                return Ok(());
            }
            std::hint::spin_loop();
        }
        let mut since: Option<Instant> = None;
        let startup = interrupted.is_none();
        // Only read the clock once a wait came back without a trap: not on the hot path.
        let mut started: Option<Instant> = None;
        loop {
            let v = state.load(Ordering::Acquire);
            if trapped(v) {
                return Ok(());
            }
            if self.process.is_released() {
                return Err(PlatformError::Released);
            }
            // Say that we sleep, so that the stub thread's next trap wakes us.
            let w = v | stub::STATE_WAITING;
            if v != w
                && state
                    .compare_exchange(v, w, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
            {
                continue;
            }
            sys::futex_wait(state, w, Duration::from_millis(100));
            if trapped(state.load(Ordering::Acquire)) {
                return Ok(());
            }
            if self.process.is_dead() || self.exited.load(Ordering::Acquire) {
                return Err(self.gone());
            }
            let started = *started.get_or_insert_with(Instant::now);
            let overdue = match interrupted {
                None => startup && started.elapsed() > STUB_TIMEOUT,
                Some(f) if f() => since.get_or_insert_with(Instant::now).elapsed() > STUB_TIMEOUT,
                Some(_) => {
                    since = None;
                    false
                }
            };
            if overdue {
                tracing::error!(
                    pid = self.process.pid,
                    tid = self.tid(),
                    "stub thread does not answer; killing its process"
                );
                self.process.release();
                return Err(PlatformError::Internal(
                    "stub thread stopped answering".into(),
                ));
            }
        }
    }

    /// Lets the (trapped) thread return to the application: sets the state word to
    /// `RUN` and wakes the thread only if it said it sleeps.
    pub(crate) fn resume(&self) {
        let state = self.region().u32(stub::ST_STATE);
        if state.swap(stub::STATE_RUN, Ordering::AcqRel) & stub::STATE_WAITING != 0 {
            sys::futex_wake(state);
        }
    }

    /// Makes the (trapped) thread exit and waits until it has.
    fn retire(&self) -> Result<(), PlatformError> {
        let region = self.region();
        if region.u32(stub::ST_STATE).load(Ordering::Acquire) & !stub::STATE_WAITING
            != stub::STATE_TRAPPED
        {
            return Err(PlatformError::Internal(
                "retiring a running stub thread".into(),
            ));
        }
        region
            .u64(stub::ST_CMD)
            .store(stub::CMD_EXIT, Ordering::Relaxed);
        self.resume();
        // CLONE_CHILD_CLEARTID: the kernel zeroes the tid word and wakes it at exit.
        let tid = region.u32(stub::ST_TID);
        let started = Instant::now();
        loop {
            let v = tid.load(Ordering::Acquire);
            if v == 0 {
                break;
            }
            if self.process.is_dead() {
                return Err(self.gone());
            }
            if started.elapsed() > STUB_TIMEOUT {
                return Err(PlatformError::Internal("stub thread does not exit".into()));
            }
            sys::futex_wait(tid, v, Duration::from_millis(100));
        }
        self.exited.store(true, Ordering::Release);
        Ok(())
    }
}

impl Drop for StubThread {
    fn drop(&mut self) {
        let p = Arc::clone(&self.process);
        let mut safe = p.is_released();
        if !safe {
            // A live thread leaves first; then its region is unmapped.
            let left =
                self.exited.load(Ordering::Acquire) || self.tid() == 0 || self.retire().is_ok();
            safe = left
                && (!self.mapped.load(Ordering::Acquire)
                    || p.request(stub::OP_MUNMAP, [self.addr, REGION_SIZE, 0, 0])
                        .is_ok());
            if !safe {
                p.release();
            }
        }
        if p.is_released() {
            // The region is freed only once nothing can touch it any more.
            safe = p.wait_gone();
        }
        if safe {
            self.region.free();
            p.slots.lock().0.push(self.slot);
        } else {
            tracing::error!(pid = p.pid, "stub thread region still mapped; leaking it");
        }
    }
}

/// An address space of the systrap platform: one stub process.
#[derive(Debug)]
pub struct SystrapAddressSpace {
    pub(crate) process: Arc<Process>,
}

impl SystrapAddressSpace {
    pub(crate) fn new(process: Process) -> Self {
        SystrapAddressSpace {
            process: Arc::new(process),
        }
    }

    /// The host pid of the stub process (for diagnostics and tests).
    pub fn stub_pid(&self) -> i32 {
        self.process.pid
    }
}

impl AddressSpace for SystrapAddressSpace {
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

impl Drop for SystrapAddressSpace {
    fn drop(&mut self) {
        self.process.release();
    }
}
