//! Host system calls of the Sentry side and the shared-memory words. This module owns the
//! crate's `unsafe` code; every wrapper is safe to call because it only hands the kernel
//! integers or pointers to memory it owns (or to the memory file's mapping, which lives as
//! long as the `MemoryFile` the caller holds).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use linux_abi::Errno;
use platform::MemoryFile;

use crate::stub;

/// A host process or thread id.
pub type Pid = i32;

fn check(r: libc::c_long) -> Result<libc::c_long, Errno> {
    if r < 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(r)
    }
}

/// A range of the memory file shared with stubs, accessed through the Sentry's mapping of
/// the file. Holds the file, so the mapping outlives every access.
///
/// Dropping a `Shm` does not free its range: [`Shm::free`] does, once the caller knows no
/// stub can map it any more (a range still mapped somewhere is leaked instead).
#[derive(Debug)]
pub struct Shm {
    file: std::sync::Arc<MemoryFile>,
    offset: u64,
    len: u64,
    freed: std::sync::atomic::AtomicBool,
}

impl Shm {
    /// Allocates `len` zeroed bytes (a multiple of the page size) of `file`.
    pub fn allocate(file: &std::sync::Arc<MemoryFile>, len: u64) -> Result<Shm, Errno> {
        let offset = file.allocate(len).map_err(Errno::from)?;
        Ok(Shm {
            file: std::sync::Arc::clone(file),
            offset,
            len,
            freed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The range's offset in the memory file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn ptr(&self, at: u64, size: u64) -> *mut u8 {
        assert!(
            at.checked_add(size).is_some_and(|e| e <= self.len) && at.is_multiple_of(size.min(8)),
            "shared word out of range"
        );
        (self.file.host_address() + self.offset + at) as *mut u8
    }

    /// The 32-bit word at `at`.
    pub fn u32(&self, at: u64) -> &AtomicU32 {
        // SAFETY: the pointer lies inside the live, 4-aligned shared mapping of the memory
        // file (checked by `ptr`), which stays mapped while `self.file` is held; every
        // access to it is atomic.
        unsafe { AtomicU32::from_ptr(self.ptr(at, 4).cast()) }
    }

    /// The 64-bit word at `at`.
    pub fn u64(&self, at: u64) -> &AtomicU64 {
        // SAFETY: as in `u32`, 8-aligned.
        unsafe { AtomicU64::from_ptr(self.ptr(at, 8).cast()) }
    }

    /// Copies bytes out (the other side may change them at any time: the result is a
    /// snapshot, never trusted beyond its bounds).
    pub fn read(&self, at: u64, buf: &mut [u8]) {
        let _ = self.ptr(at, buf.len() as u64);
        let _ = self.file.read_at(self.offset + at, buf);
    }

    /// Copies bytes in.
    pub fn write(&self, at: u64, buf: &[u8]) {
        let _ = self.ptr(at, buf.len() as u64);
        let _ = self.file.write_at(self.offset + at, buf);
    }

    /// Returns the range to the memory file (once; later calls do nothing). The range
    /// must not be used afterwards.
    pub fn free(&self) {
        if !self.freed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let _ = self.file.free(self.offset, self.len);
        }
    }
}

/// `FUTEX_WAKE` (shared) on `word`.
pub fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a valid, aligned u32; FUTEX_WAKE reads nothing else.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            0usize,
        )
    };
}

/// `FUTEX_WAIT` (shared) on `word` while it holds `val`, at most `timeout`.
pub fn futex_wait(word: &AtomicU32, val: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a valid, aligned u32 and `ts` a valid timespec for the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            val,
            &raw const ts,
        )
    };
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: plain integers.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_getfd(pidfd, fd, 0)`: a copy of another process's descriptor.
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: plain integers.
    let r = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`.
pub fn pidfd_kill(pidfd: &OwnedFd, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integers and a NULL siginfo.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            0usize,
            0,
        )
    })
    .map(drop)
}

/// True once the process of `pidfd` has exited, waiting at most `timeout_ms` (0: poll).
pub fn pidfd_exited(pidfd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            return r > 0;
        }
        if Errno::last_os_error() != Errno::EINTR {
            return true;
        }
    }
}

/// `read` into `buf`, retried on `EINTR`.
pub fn read(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: `buf` is a valid out-buffer of its length.
        let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = Errno::last_os_error();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// Sends `sig` to thread `tid` of process `tgid` (0: only checks it exists).
pub fn tgkill(tgid: Pid, tid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) }).map(drop)
}

/// Sends `sig` to process `pid`.
pub fn kill(pid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::kill(pid, sig) }.into()).map(drop)
}

/// The calling thread's id.
pub fn gettid() -> Pid {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::gettid() }
}

/// The calling process's id.
pub fn getpid() -> Pid {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

/// `waitpid(pid, __WALL | flags)`, retried on `EINTR`.
pub fn waitpid(pid: Pid, flags: i32) -> Result<Option<i32>, Errno> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::__WALL | flags) };
        if r > 0 {
            return Ok(Some(status));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = Errno::last_os_error();
        if e != Errno::EINTR {
            return Err(e);
        }
    }
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid out-buffer of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE, the size of `set`.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Restricts the calling thread to `cpu`.
pub fn pin_self(cpu: usize) -> Result<(), Errno> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(Errno::EINVAL);
    }
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid buffer of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(())
    }
}

/// Everything the forked master needs, prepared before `fork` so that the child does
/// not allocate.
struct ChildSetup {
    parent: Pid,
    memfd: RawFd,
    ready_w: RawFd,
    page: Vec<u8>,
    ctl_off: u64,
    rseq: Option<usize>,
}

/// `RSEQ_SIG` of x86 glibc.
const RSEQ_SIG: usize = 0x5305_3053;

/// The calling thread's glibc rseq area, if glibc registered one.
fn rseq_area() -> Option<usize> {
    // SAFETY: dlsym with NUL-terminated names; the symbols, when present, are glibc's
    // `const ptrdiff_t __rseq_offset` and `const unsigned int __rseq_size`.
    unsafe {
        let off = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_offset".as_ptr());
        let size = libc::dlsym(libc::RTLD_DEFAULT, c"__rseq_size".as_ptr());
        if off.is_null() || size.is_null() || *(size as *const u32) == 0 {
            return None;
        }
        let tp: usize;
        // The x86-64 thread pointer: the TCB's self pointer at fs:0.
        std::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, preserves_flags));
        Some(tp.wrapping_add_signed(*(off as *const isize)))
    }
}

/// Forks the master stub from the calling thread; returns its pid and the read end of its
/// readiness pipe (one byte once it is clean and waiting for requests; EOF if it failed).
/// `ctl_off` is the memory-file offset of the master's control page.
///
/// The child gets `PR_SET_PDEATHSIG(SIGKILL)` tied to the calling thread, so the caller
/// must be a thread that lives as long as the platform.
pub fn fork_master(memfd: RawFd, ctl_off: u64) -> Result<(Pid, OwnedFd), Errno> {
    let page = stub::page_image().map_err(|_| Errno::ENOEXEC)?;
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Errno::last_os_error());
    }
    // SAFETY: pipe2 just returned these fresh descriptors, owned by nothing else.
    let (ready_r, ready_w) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let setup = ChildSetup {
        parent: getpid(),
        memfd,
        ready_w: ready_w.as_raw_fd(),
        page,
        ctl_off,
        rseq: rseq_area(),
    };
    // A raw fork: no atfork handlers run, so the child never touches a lock another
    // thread of the Sentry may have held at the time of the fork.
    // SAFETY: the child only runs `child_main`, which makes raw system calls on its own
    // stack and never returns into Rust code that could touch shared state.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    if pid < 0 {
        return Err(Errno::last_os_error());
    }
    if pid == 0 {
        // SAFETY: we are the freshly forked single-threaded child (see above).
        unsafe { child_main(&setup) }
    }
    drop(ready_w);
    Ok((pid as Pid, ready_r))
}

/// Raw system call in the forked child, without touching errno.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
unsafe fn raw(nr: libc::c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the caller guarantees the arguments; `syscall` clobbers rcx and r11 only.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2],
            in("r10") a[3], in("r8") a[4], in("r9") a[5],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// The forked master: cleans itself into a stub and jumps into the stub page.
///
/// # Safety
/// Must only run in the child of `fork_master`, right after the fork.
unsafe fn child_main(s: &ChildSetup) -> ! {
    const CLOSE_RANGE_MAX: usize = u32::MAX as usize;
    // SAFETY: every `raw` call below passes integers or pointers into this child's own
    // stack and the prepared page image, which stay valid until the final jump.
    unsafe {
        let die = |code: usize| -> ! {
            raw(libc::SYS_exit_group, [code, 0, 0, 0, 0, 0]);
            std::hint::unreachable_unchecked()
        };
        let sigkill = libc::SIGKILL as usize;
        raw(
            libc::SYS_prctl,
            [libc::PR_SET_PDEATHSIG as usize, sigkill, 0, 0, 0, 0],
        );
        if raw(libc::SYS_getppid, [0; 6]) != s.parent as isize {
            die(3);
        }
        if let Some(area) = s.rseq {
            for len in 32..=1024usize {
                if raw(libc::SYS_rseq, [area, len, 1, RSEQ_SIG, 0, 0]) == 0 {
                    break;
                }
            }
        }
        // Own session: terminal signals sent to the Sentry's group never reach stubs.
        raw(libc::SYS_setsid, [0; 6]);
        // Default dispositions; SIGCHLD ignored so that forked stubs are reaped by the
        // kernel; every signal blocked (only application threads unblock them).
        let dfl = [0usize; 4];
        for sig in 1..=64usize {
            if sig != sigkill && sig != libc::SIGSTOP as usize {
                raw(
                    libc::SYS_rt_sigaction,
                    [sig, dfl.as_ptr() as usize, 0, 8, 0, 0],
                );
            }
        }
        let ign = [1usize, 0, 0, 0];
        raw(
            libc::SYS_rt_sigaction,
            [libc::SIGCHLD as usize, ign.as_ptr() as usize, 0, 8, 0, 0],
        );
        let all: u64 = u64::MAX;
        raw(
            libc::SYS_rt_sigprocmask,
            [
                libc::SIG_SETMASK as usize,
                &raw const all as usize,
                0,
                8,
                0,
                0,
            ],
        );
        // Application threads install a seccomp filter without privileges, and a stub
        // that dies of a signal writes no core file.
        raw(
            libc::SYS_prctl,
            [libc::PR_SET_NO_NEW_PRIVS as usize, 1, 0, 0, 0, 0],
        );
        let zero = [0u64; 2];
        raw(
            libc::SYS_prlimit64,
            [
                0,
                libc::RLIMIT_CORE as usize,
                zero.as_ptr() as usize,
                0,
                0,
                0,
            ],
        );
        // File descriptors: only the memory file and the ready pipe.
        let m = raw(
            libc::SYS_fcntl,
            [s.memfd as usize, libc::F_DUPFD as usize, 5, 0, 0, 0],
        );
        let r = raw(
            libc::SYS_fcntl,
            [s.ready_w as usize, libc::F_DUPFD as usize, 5, 0, 0, 0],
        );
        if m < 0 || r < 0 {
            die(4);
        }
        if raw(
            libc::SYS_dup3,
            [m as usize, stub::MEMFD_SLOT as usize, 0, 0, 0, 0],
        ) < 0
            || raw(
                libc::SYS_dup3,
                [r as usize, stub::READY_FD as usize, 0, 0, 0, 0],
            ) < 0
        {
            die(5);
        }
        raw(libc::SYS_close_range, [0, 2, 0, 0, 0, 0]);
        if raw(libc::SYS_close_range, [5, CLOSE_RANGE_MAX, 0, 0, 0, 0]) < 0 {
            die(6);
        }
        let addr = raw(
            libc::SYS_mmap,
            [
                stub::STUB_ADDR as usize,
                stub::PAGE as usize,
                (libc::PROT_READ | libc::PROT_WRITE) as usize,
                (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE) as usize,
                usize::MAX,
                0,
            ],
        );
        if addr != stub::STUB_ADDR as isize {
            die(7);
        }
        std::ptr::copy_nonoverlapping(s.page.as_ptr(), stub::STUB_ADDR as *mut u8, s.page.len());
        if raw(
            libc::SYS_mprotect,
            [
                stub::STUB_ADDR as usize,
                stub::PAGE as usize,
                (libc::PROT_READ | libc::PROT_EXEC) as usize,
                0,
                0,
                0,
            ],
        ) != 0
        {
            die(8);
        }
        std::arch::asm!(
            "jmp {entry}",
            entry = in(reg) stub::STUB_ADDR + stub::labels().setup,
            in("r12") s.ctl_off,
            options(noreturn),
        );
    }
}
