//! Guest system call round trip through the systrap platform (switch, set the return
//! value, switch again), measured in the same run next to:
//!
//! - the in-process `SIGSYS` floor: a seccomp filter that traps `getpid` on one thread of
//!   this process and a handler that answers it in the signal frame (the least a
//!   seccomp-trap platform can cost: one signal delivery and one `rt_sigreturn`),
//! - a raw `PTRACE_SYSEMU` loop (per iteration `PTRACE_SYSEMU`, `waitpid`, `GETREGS`,
//!   `SETREGS`: the least any ptrace platform costs),
//! - the ptrace platform itself, and
//! - a native `getpid`.
//!
//! Both placements are reported: each platform's driving thread and its stub on one CPU,
//! and unpinned. Run with `cargo bench -p platform-systrap`; `SYSTRAP_BENCH_ITERS`,
//! `SYSTRAP_BENCH_ROUNDS`, `SYSTRAP_BENCH_CPU` (default: the last allowed CPU) and
//! `SYSTRAP_BENCH_SPIN` (the systrap platform's `spin`) override the defaults.
//!
//! `SYSTRAP_BENCH_PROFILE=N` runs only N systrap round trips (pinned; unpinned with
//! `SYSTRAP_BENCH_PIN=0`) and prints their mean, for `perf stat`/`perf record` of one
//! side of the comparison, e.g. futex calls and context switches per round trip:
//! `SYSTRAP_BENCH_PROFILE=100000 perf stat -e syscalls:sys_enter_futex,sched:sched_switch
//! target/release/deps/systrap_bench-* --bench`.

use std::sync::Arc;
use std::time::Instant;

use platform::{AddressSpace, Context, MemoryFile, Platform, Protection, Registers, Trap};
use platform_ptrace::{PtraceOptions, PtracePlatform};
use platform_systrap::{SystrapOptions, SystrapPlatform};

/// The floors (raw ptrace loop, in-process SIGSYS) and the native call: the only
/// `unsafe` code of the benchmark.
mod raw {
    use platform::GeneralRegisters;

    const PTRACE_SYSEMU: libc::c_long = 31;

    fn ptrace(req: libc::c_long, pid: i32, data: usize) -> libc::c_long {
        // SAFETY: `data` is an integer or a pointer to a live GeneralRegisters owned by
        // the caller, the layout of `struct user_regs_struct`.
        unsafe { libc::syscall(libc::SYS_ptrace, req, pid as libc::c_long, 0usize, data) }
    }

    fn wait(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, libc::__WALL) };
        status
    }

    /// Native `getpid` round trips; nanoseconds per call.
    pub fn native(iters: u64) -> f64 {
        let t = std::time::Instant::now();
        for _ in 0..iters {
            // SAFETY: getpid has no arguments.
            std::hint::black_box(unsafe { libc::syscall(libc::SYS_getpid) });
        }
        t.elapsed().as_nanos() as f64 / iters as f64
    }

    /// Pins the calling thread (0) or `pid` to `cpu`.
    pub fn pin(pid: i32, cpu: usize) {
        // SAFETY: an all-zero cpu_set_t is a valid empty set; CPU_SET is given an index
        // below CPU_SETSIZE; the set outlives the call.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }

    /// True when the calling thread may run on `cpu`.
    pub fn allowed(cpu: usize) -> bool {
        // SAFETY: an all-zero cpu_set_t is a valid empty set, filled by the kernel;
        // CPU_ISSET is called with an index below CPU_SETSIZE (the caller's range).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0
                && libc::CPU_ISSET(cpu, &set)
        }
    }

    /// A traced child that calls `getpid` in a loop, driven with raw `PTRACE_SYSEMU`.
    pub struct RawLoop {
        pid: i32,
        regs: GeneralRegisters,
    }

    impl RawLoop {
        /// Forks the child; the calling thread becomes its tracer.
        pub fn new() -> RawLoop {
            // SAFETY: the child only makes raw system calls (no allocation, no locks) and
            // never returns.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: we are the forked child; these calls take no pointers.
                unsafe {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                    libc::raise(libc::SIGSTOP);
                    std::arch::asm!("2:", "mov eax, 39", "syscall", "jmp 2b", options(noreturn));
                }
            }
            wait(pid); // the SIGSTOP
            let opts = 0x1 | 0x10_0000; // TRACESYSGOOD | EXITKILL
            ptrace(libc::PTRACE_SETOPTIONS as libc::c_long, pid, opts);
            RawLoop {
                pid,
                regs: GeneralRegisters::default(),
            }
        }

        /// `n` round trips: SYSEMU, waitpid, GETREGS, set rax, SETREGS.
        pub fn run(&mut self, n: u64) {
            let p: *mut GeneralRegisters = &mut self.regs;
            for i in 0..n {
                ptrace(PTRACE_SYSEMU, self.pid, 0);
                let status = wait(self.pid);
                assert!(libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP | 0x80);
                ptrace(libc::PTRACE_GETREGS as libc::c_long, self.pid, p as usize);
                self.regs.rax = i;
                let p: *const GeneralRegisters = &self.regs;
                ptrace(libc::PTRACE_SETREGS as libc::c_long, self.pid, p as usize);
            }
        }
    }

    impl Drop for RawLoop {
        fn drop(&mut self) {
            // SAFETY: killing our own child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            wait(self.pid);
        }
    }

    /// The in-process `SIGSYS` floor: on the calling thread only, a seccomp filter traps
    /// `getpid` and a handler answers it by setting `rax` in the signal frame; nanoseconds
    /// per call over `n` calls. Ends the thread's ability to call getpid: run it on a
    /// thread of its own.
    pub fn sigsys_floor(n: u64) -> f64 {
        extern "C" fn handler(_: i32, _: *mut libc::siginfo_t, uc: *mut libc::c_void) {
            let uc = uc.cast::<libc::ucontext_t>();
            // SAFETY: the kernel passes a valid ucontext to an SA_SIGINFO handler.
            unsafe { (*uc).uc_mcontext.gregs[libc::REG_RAX as usize] = 7 };
        }
        // SAFETY: installing a handler (an extern "C" fn that only writes the frame it is
        // given) and a filter made of the array below, which outlives the call; the
        // filter applies to this thread only and traps nothing but getpid.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
            let f = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
                code: code as u16,
                jt,
                jf,
                k,
            };
            let prog = [
                f(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
                f(
                    libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                    0,
                    1,
                    libc::SYS_getpid as u32,
                ),
                f(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_TRAP),
                f(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
            ];
            let fprog = libc::sock_fprog {
                len: prog.len() as u16,
                filter: prog.as_ptr() as *mut libc::sock_filter,
            };
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            let r = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &raw const fprog,
            );
            assert_eq!(r, 0, "seccomp filter");
            let t = std::time::Instant::now();
            for _ in 0..n {
                let r = libc::syscall(libc::SYS_getpid);
                assert_eq!(r, 7);
            }
            t.elapsed().as_nanos() as f64 / n as f64
        }
    }
}

/// A guest calling `getpid` in a loop, driven through a platform.
struct PlatformLoop {
    // Field order: contexts and address spaces go before the platform.
    ctx: Arc<dyn Context>,
    a: Arc<dyn AddressSpace>,
    regs: Registers,
    _p: Box<dyn Platform>,
}

impl PlatformLoop {
    fn new(p: Box<dyn Platform>) -> PlatformLoop {
        let a = p.new_address_space().expect("address space");
        // loop: mov eax, 39; syscall; jmp loop
        let code = [0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];
        let off = p.memory_file().allocate(4096).unwrap();
        p.memory_file().write_at(off, &code).unwrap();
        a.map_file(0x40_0000, off, 4096, Protection::READ_EXECUTE)
            .unwrap();
        let ctx = p.new_context().unwrap();
        PlatformLoop {
            ctx,
            a,
            regs: Registers::new_user(0x40_0000, 0),
            _p: p,
        }
    }

    fn systrap(pin: bool) -> PlatformLoop {
        let mf = Arc::new(MemoryFile::new("systrap-bench", 1 << 26).expect("memory file"));
        let options = SystrapOptions {
            pin,
            spin: std::env::var("SYSTRAP_BENCH_SPIN")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(if pin { 0 } else { 200 }),
            ..SystrapOptions::default()
        };
        Self::new(Box::new(
            SystrapPlatform::with_options(mf, options).expect("systrap platform"),
        ))
    }

    fn ptrace(pin: bool) -> PlatformLoop {
        let mf = Arc::new(MemoryFile::new("ptrace-bench", 1 << 24).expect("memory file"));
        Self::new(Box::new(
            PtracePlatform::with_options(mf, PtraceOptions { pin }).expect("ptrace platform"),
        ))
    }

    /// `n` round trips: switch until the syscall trap, set the return value.
    fn run(&mut self, n: u64) {
        for i in 0..n {
            assert_eq!(
                self.ctx.switch(&*self.a, &mut self.regs).unwrap(),
                Trap::Syscall
            );
            self.regs.gp.set_syscall_return(i);
        }
    }
}

/// Nanoseconds per iteration of `f(n)`.
fn time(n: u64, f: impl FnOnce(u64)) -> f64 {
    let t = Instant::now();
    f(n);
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Per-chunk ns/iteration of: raw ptrace, ptrace platform, systrap platform, alternated
/// on one thread (pinned to `cpu`, or not) so that all see the same background load.
fn measure(cpu: Option<usize>, chunk: u64, chunks: usize) -> [Vec<f64>; 3] {
    if let Some(c) = cpu {
        raw::pin(0, c);
    }
    let mut sys = PlatformLoop::systrap(cpu.is_some());
    let mut pt = PlatformLoop::ptrace(cpu.is_some());
    let mut rawl = raw::RawLoop::new();
    sys.run(200);
    pt.run(200);
    rawl.run(200);
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..chunks {
        out[0].push(time(chunk, |n| rawl.run(n)));
        out[1].push(time(chunk, |n| pt.run(n)));
        out[2].push(time(chunk, |n| sys.run(n)));
    }
    out
}

/// Mean microseconds of `new_address_space` (pool on or off) and of the first switch in
/// it (creates the stub thread).
fn address_space_costs(n: u32, pool: usize) -> (f64, f64) {
    let mf = Arc::new(MemoryFile::new("systrap-bench", 1 << 26).expect("memory file"));
    let options = SystrapOptions {
        pin: false,
        pool,
        ..SystrapOptions::default()
    };
    let p = SystrapPlatform::with_options(mf, options).expect("systrap platform");
    let code = [0xb8, 39, 0, 0, 0, 0x0f, 0x05];
    let off = p.memory_file().allocate(4096).unwrap();
    p.memory_file().write_at(off, &code).unwrap();
    let ctx = p.new_context().unwrap();
    let (mut create, mut first) = (0.0, 0.0);
    for _ in 0..n {
        let t = Instant::now();
        let a = p.new_address_space().expect("address space");
        create += t.elapsed().as_secs_f64();
        a.map_file(0x40_0000, off, 4096, Protection::READ_EXECUTE)
            .unwrap();
        let mut regs = Registers::new_user(0x40_0000, 0);
        let t = Instant::now();
        assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
        first += t.elapsed().as_secs_f64();
    }
    (create * 1e6 / f64::from(n), first * 1e6 / f64::from(n))
}

fn in_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().expect("benchmark thread")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep it short there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let chunk = env("SYSTRAP_BENCH_ITERS", if quick { 100 } else { 1000 });
    let chunks = env("SYSTRAP_BENCH_ROUNDS", if quick { 2 } else { 20 }) as usize;
    let cpu = std::env::var("SYSTRAP_BENCH_CPU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            (0..libc::CPU_SETSIZE as usize)
                .rev()
                .find(|&c| raw::allowed(c))
                .unwrap_or(0)
        });
    if let Ok(n) = std::env::var("SYSTRAP_BENCH_PROFILE") {
        let n: u64 = n.parse().unwrap_or(100_000).max(1);
        let pin = std::env::var("SYSTRAP_BENCH_PIN").map_or(true, |v| v != "0");
        let ns = in_thread(move || {
            if pin {
                raw::pin(0, cpu);
            }
            let mut sys = PlatformLoop::systrap(pin);
            sys.run(200);
            time(n, |n| sys.run(n))
        });
        println!("systrap only: {ns:.0} ns");
        return;
    }
    let native = raw::native(chunk * 20);
    let floor = in_thread(move || raw::sigsys_floor(chunk * 20));
    println!(
        "systrap platform benchmark: {chunks} alternating chunks of {chunk} round trips per placement"
    );
    println!("native getpid: {native:.0} ns; in-process SIGSYS floor: {floor:.0} ns");
    println!(
        "{:<18} {:>14} {:>14} {:>14} {:>12} {:>12} {:>12}",
        "placement (median)",
        "raw SYSEMU",
        "ptrace plat.",
        "systrap plat.",
        "/SIGSYS",
        "/raw SYSEMU",
        "/ptrace"
    );
    for pin in [true, false] {
        let cpu = pin.then_some(cpu);
        let [mut r, mut p, mut s] = in_thread(move || measure(cpu, chunk, chunks));
        let (r, p, s) = (median(&mut r), median(&mut p), median(&mut s));
        let name = match cpu {
            Some(c) => format!("pinned (CPU {c})"),
            None => "unpinned".to_string(),
        };
        println!(
            "{name:<18} {r:>11.0} ns {p:>11.0} ns {s:>11.0} ns {:>11.2}x {:>11.2}x {:>11.2}x",
            s / floor,
            s / r,
            s / p
        );
    }
    println!("ratios: systrap platform / floor, same process, same run (median of chunks)");
    let n = if quick { 3 } else { 20 };
    for pool in [0usize, 2] {
        let (create, first) = in_thread(move || address_space_costs(n, pool));
        println!(
            "new_address_space with a pool of {pool}: {create:.0} us; first switch in it (clones the stub thread): {first:.0} us"
        );
    }
}
