//! Host system calls of the platform: ptrace requests, waiting for tracees, signals, CPU
//! affinity and forking the master stub. This module owns (nearly) all of the crate's
//! `unsafe` code; every wrapper here is safe to call because it only hands the kernel
//! pointers to buffers it owns for the duration of the call.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use linux_abi::Errno;
use linux_abi::signal::SigInfo;
use platform::GeneralRegisters;

use crate::stub;

/// A host process or thread id.
pub type Pid = i32;

/// `PTRACE_SYSEMU`.
const PTRACE_SYSEMU: libc::c_long = 31;
/// `NT_X86_XSTATE` for `PTRACE_GETREGSET`.
const NT_X86_XSTATE: usize = 0x202;

/// `PTRACE_O_TRACESYSGOOD`.
pub const O_TRACESYSGOOD: u64 = 0x1;
/// `PTRACE_O_TRACEFORK`.
pub const O_TRACEFORK: u64 = 0x2;
/// `PTRACE_O_TRACECLONE`.
pub const O_TRACECLONE: u64 = 0x8;
/// `PTRACE_O_EXITKILL`.
pub const O_EXITKILL: u64 = 0x10_0000;

/// `PTRACE_EVENT_FORK`.
pub const EVENT_FORK: i32 = 1;
/// `PTRACE_EVENT_CLONE`.
pub const EVENT_CLONE: i32 = 3;

fn ptrace(req: libc::c_long, pid: Pid, addr: usize, data: usize) -> Result<libc::c_long, Errno> {
    // SAFETY: every caller passes either plain integers or pointers to buffers it owns and
    // that are large enough for the request; the kernel validates everything else.
    let r = unsafe { libc::syscall(libc::SYS_ptrace, req, pid as libc::c_long, addr, data) };
    if r < 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(r)
    }
}

/// `PTRACE_PEEKDATA`: the 8 bytes at `addr` (any alignment) of a stopped thread.
pub fn peekdata(pid: Pid, addr: u64) -> Result<u64, Errno> {
    let mut word = 0u64;
    // The raw system call stores the word at `data`, a buffer we own.
    ptrace(
        libc::PTRACE_PEEKDATA as libc::c_long,
        pid,
        addr as usize,
        &mut word as *mut u64 as usize,
    )?;
    Ok(word)
}

/// `PTRACE_SEIZE` with `options`.
pub fn seize(pid: Pid, options: u64) -> Result<(), Errno> {
    ptrace(libc::PTRACE_SEIZE as libc::c_long, pid, 0, options as usize).map(drop)
}

/// `PTRACE_INTERRUPT`.
pub fn interrupt(pid: Pid) -> Result<(), Errno> {
    ptrace(libc::PTRACE_INTERRUPT as libc::c_long, pid, 0, 0).map(drop)
}

/// `PTRACE_CONT`, delivering `sig` (0 for none).
pub fn cont(pid: Pid, sig: i32) -> Result<(), Errno> {
    ptrace(libc::PTRACE_CONT as libc::c_long, pid, 0, sig as usize).map(drop)
}

/// `PTRACE_SYSEMU`, delivering `sig` (0 for none).
pub fn sysemu(pid: Pid, sig: i32) -> Result<(), Errno> {
    ptrace(PTRACE_SYSEMU, pid, 0, sig as usize).map(drop)
}

/// `PTRACE_DETACH`, delivering `sig` (0 for none).
pub fn detach(pid: Pid, sig: i32) -> Result<(), Errno> {
    ptrace(libc::PTRACE_DETACH as libc::c_long, pid, 0, sig as usize).map(drop)
}

/// `PTRACE_GETREGS`.
pub fn getregs(pid: Pid, regs: &mut GeneralRegisters) -> Result<(), Errno> {
    let p: *mut GeneralRegisters = regs;
    ptrace(libc::PTRACE_GETREGS as libc::c_long, pid, 0, p as usize).map(drop)
}

/// `PTRACE_SETREGS`.
pub fn setregs(pid: Pid, regs: &GeneralRegisters) -> Result<(), Errno> {
    let p: *const GeneralRegisters = regs;
    ptrace(libc::PTRACE_SETREGS as libc::c_long, pid, 0, p as usize).map(drop)
}

/// `PTRACE_GETREGSET(NT_X86_XSTATE)` into `buf`; returns the number of bytes filled.
pub fn get_xstate(pid: Pid, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let p: *mut libc::iovec = &mut iov;
    ptrace(
        libc::PTRACE_GETREGSET as libc::c_long,
        pid,
        NT_X86_XSTATE,
        p as usize,
    )?;
    Ok(iov.iov_len)
}

/// `PTRACE_SETREGSET(NT_X86_XSTATE)` from `buf` (which must be the kernel's full size).
pub fn set_xstate(pid: Pid, buf: &[u8]) -> Result<(), Errno> {
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let p: *mut libc::iovec = &mut iov;
    ptrace(
        libc::PTRACE_SETREGSET as libc::c_long,
        pid,
        NT_X86_XSTATE,
        p as usize,
    )
    .map(drop)
}

/// `PTRACE_GETSIGINFO`.
pub fn getsiginfo(pid: Pid) -> Result<SigInfo, Errno> {
    let mut si = SigInfo::new(0, 0);
    let p: *mut SigInfo = &mut si;
    ptrace(libc::PTRACE_GETSIGINFO as libc::c_long, pid, 0, p as usize)?;
    Ok(si)
}

/// `PTRACE_GETEVENTMSG`.
pub fn geteventmsg(pid: Pid) -> Result<u64, Errno> {
    let mut msg: libc::c_ulong = 0;
    let p: *mut libc::c_ulong = &mut msg;
    ptrace(libc::PTRACE_GETEVENTMSG as libc::c_long, pid, 0, p as usize)?;
    Ok(msg)
}

/// `waitpid(pid, __WALL | flags)`, retried on `EINTR`. Returns the raw status, or `None`
/// with `WNOHANG` when nothing changed.
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

/// Sends `sig` to thread `tid` of process `tgid`.
pub fn tgkill(tgid: Pid, tid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) };
    if r < 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(())
    }
}

/// Sends `sig` to process `pid`.
pub fn kill(pid: Pid, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let r = unsafe { libc::kill(pid, sig) };
    if r < 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(())
    }
}

/// The calling thread's id.
pub fn gettid() -> Pid {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The calling process's id.
pub fn getpid() -> Pid {
    // SAFETY: getpid has no arguments and cannot fail.
    unsafe { libc::getpid() }
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

/// Restricts thread `tid` (0: the calling thread) to `cpu`.
pub fn pin_to_cpu(tid: Pid, cpu: usize) -> Result<(), Errno> {
    // SAFETY: an all-zero cpu_set_t is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `cpu` is below CPU_SETSIZE (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid buffer of the size passed.
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(())
    }
}

/// Decoded `waitpid` status of a tracee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A syscall stop (`SIGTRAP | 0x80` with `PTRACE_O_TRACESYSGOOD`).
    Syscall,
    /// A `PTRACE_EVENT_*` stop.
    Event(i32),
    /// A signal-delivery stop with this signal.
    Signal(i32),
    /// The tracee exited or was killed (raw status).
    Gone(i32),
}

/// Decodes a raw wait status.
pub fn decode(status: i32) -> Stop {
    if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        if sig == (libc::SIGTRAP | 0x80) {
            Stop::Syscall
        } else if event != 0 {
            Stop::Event(event)
        } else {
            Stop::Signal(sig)
        }
    } else {
        Stop::Gone(status)
    }
}

/// Waits for the next stop (or death) of tracee `tid`.
pub fn wait_stop(tid: Pid) -> Result<Stop, Errno> {
    match waitpid(tid, 0)? {
        Some(status) => Ok(decode(status)),
        None => Err(Errno::ECHILD),
    }
}

/// Everything the forked master needs, prepared before `fork` so that the child does
/// not allocate.
struct ChildSetup {
    parent: Pid,
    memfd: RawFd,
    ready_w: RawFd,
    code: &'static [u8],
    /// Address of the forking thread's rseq area, which the child must unregister before
    /// it unmaps it (the kernel would otherwise kill it with SIGSEGV on the next
    /// preemption).
    rseq: Option<usize>,
}

/// `RSEQ_SIG` of x86 glibc.
const RSEQ_SIG: usize = 0x5305_3053;

/// The calling thread's glibc rseq area, if glibc registered one.
fn rseq_area() -> Option<usize> {
    // SAFETY: dlsym with a NUL-terminated name; the symbols, when present, are glibc's
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

/// Forks the master stub from the calling thread and returns its pid and the read end of
/// its readiness pipe (one byte arrives once it is clean and parked; EOF if it failed).
///
/// The child gets `PR_SET_PDEATHSIG(SIGKILL)` tied to the calling thread, so the caller
/// must be a thread that lives as long as the platform.
pub fn fork_master(memfd: RawFd) -> Result<(Pid, OwnedFd), Errno> {
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
        ready_w: std::os::fd::AsRawFd::as_raw_fd(&ready_w),
        code: stub::code(),
        rseq: rseq_area(),
    };
    // A raw fork (clone with SIGCHLD): no atfork handlers run, so the child never touches
    // a lock another thread of the Sentry may have held at the time of the fork.
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

/// `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy)]
struct SockFilter {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// The stub's seccomp program: allow if the call was made from the stub page of an x86-64
/// task, else `SECCOMP_RET_TRAP` (a `SIGSYS` the tracer reports as a signal trap).
fn vsyscall_filter() -> [SockFilter; 9] {
    const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const AND: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let f = |code, jt, jf, k| SockFilter { code, jt, jf, k };
    [
        f(LD_ABS, 0, 0, 4), // arch
        f(JEQ, 0, 6, AUDIT_ARCH_X86_64),
        f(LD_ABS, 0, 0, 12), // instruction_pointer, high half
        f(JEQ, 0, 4, (stub::STUB_ADDR >> 32) as u32),
        f(LD_ABS, 0, 0, 8), // instruction_pointer, low half
        f(AND, 0, 0, !(stub::PAGE as u32 - 1)),
        f(JEQ, 0, 1, stub::STUB_ADDR as u32),
        f(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
        f(RET, 0, 0, libc::SECCOMP_RET_TRAP),
    ]
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

/// The forked master child: cleans itself into a stub and jumps into the stub page.
///
/// # Safety
/// Must only run in the child of `fork_master`, right after the fork.
unsafe fn child_main(s: &ChildSetup) -> ! {
    const CLOSE_RANGE_MAX: usize = u32::MAX as usize;
    // SAFETY: every `raw` call below passes integers or pointers into this child's own
    // stack and the stub code slice, which stay valid until the final jump.
    unsafe {
        let die = |code: usize| -> ! {
            raw(libc::SYS_exit_group, [code, 0, 0, 0, 0, 0]);
            std::hint::unreachable_unchecked()
        };
        // Die with the forking thread, and not later than that: check the parent is
        // still the one that forked us after arming the signal.
        raw(
            libc::SYS_prctl,
            [
                libc::PR_SET_PDEATHSIG as usize,
                libc::SIGKILL as usize,
                0,
                0,
                0,
                0,
            ],
        );
        if raw(libc::SYS_getppid, [0; 6]) != s.parent as isize {
            die(3);
        }
        // Unregister the rseq area inherited from the forking thread (its length is not
        // published; glibc uses 32 or a little more).
        if let Some(area) = s.rseq {
            for len in 32..=1024usize {
                if raw(
                    libc::SYS_rseq,
                    [area, len, 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG, 0, 0],
                ) == 0
                {
                    break;
                }
            }
        }
        // Own session: terminal signals (^C) sent to the Sentry's process group must not
        // reach the untraced parked leaders.
        raw(libc::SYS_setsid, [0; 6]);
        // Default dispositions (the Sentry's handlers are about to be unmapped), SIGCHLD
        // ignored so that stub processes forked from the master are reaped by the kernel.
        let dfl = [0usize; 4]; // handler, flags, restorer, mask
        for sig in 1..=64usize {
            if sig == libc::SIGKILL as usize || sig == libc::SIGSTOP as usize {
                continue;
            }
            raw(
                libc::SYS_rt_sigaction,
                [sig, dfl.as_ptr() as usize, 0, 8, 0, 0],
            );
        }
        let ign = [1usize, 0, 0, 0]; // SIG_IGN
        raw(
            libc::SYS_rt_sigaction,
            [libc::SIGCHLD as usize, ign.as_ptr() as usize, 0, 8, 0, 0],
        );
        let empty: u64 = 0;
        raw(
            libc::SYS_rt_sigprocmask,
            [
                libc::SIG_SETMASK as usize,
                &raw const empty as usize,
                0,
                8,
                0,
                0,
            ],
        );
        // File descriptors: only the memory file (MEMFD_SLOT) and the ready pipe (READY_FD).
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
        // The stub page.
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
        std::ptr::copy_nonoverlapping(s.code.as_ptr(), stub::STUB_ADDR as *mut u8, s.code.len());
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
        // A seccomp filter that allows system calls made from the stub page and traps
        // every other one. Application system calls never reach it (PTRACE_SYSEMU stops
        // them first); it catches the calls the kernel emulates without a ptrace stop:
        // the legacy vsyscall page (gettimeofday, time, getcpu). Installed last because
        // it also traps this code's own calls. Best effort: a kernel without seccomp
        // still gets a working stub.
        let filter = vsyscall_filter();
        let prog = SockFprog {
            len: filter.len() as u16,
            filter: filter.as_ptr(),
        };
        raw(
            libc::SYS_prctl,
            [libc::PR_SET_NO_NEW_PRIVS as usize, 1, 0, 0, 0, 0],
        );
        raw(
            libc::SYS_seccomp,
            [
                libc::SECCOMP_SET_MODE_FILTER as usize,
                0,
                &raw const prog as usize,
                0,
                0,
                0,
            ],
        );
        // Unmap the rest and park, from the stub page itself.
        std::arch::asm!(
            "jmp {entry}",
            entry = in(reg) stub::STUB_ADDR + stub::SETUP_OFFSET,
            options(noreturn),
        );
    }
}
