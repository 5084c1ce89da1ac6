//! Guest system call round trip through the ptrace platform (switch, set the return value,
//! switch again), measured in the same run next to:
//!
//! - a raw `PTRACE_SYSEMU` loop written right here (a forked child calling `getpid` in a
//!   loop; per iteration `PTRACE_SYSEMU`, `waitpid`, `PTRACE_GETREGS`, `PTRACE_SETREGS`,
//!   the minimum any ptrace platform needs), and
//! - a native `getpid`.
//!
//! Both placements are reported: tracer and stub pinned to one CPU (the platform picks
//! its CPUs from the creating thread's affinity, so both loops use the same CPU), and
//! unpinned. Run with `cargo bench -p platform-ptrace`; `PTRACE_BENCH_ITERS`,
//! `PTRACE_BENCH_ROUNDS` and `PTRACE_BENCH_CPU` (default: the last allowed CPU) override
//! the defaults.

use std::sync::Arc;
use std::time::Instant;

use platform::{AddressSpace, Context, MemoryFile, Platform, Protection, Registers, Trap};
use platform_ptrace::{PtraceOptions, PtracePlatform};

/// The raw ptrace loop and the native call: the only `unsafe` code of the benchmark.
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
}

/// A guest calling `getpid` in a loop, driven through the platform.
struct PlatformLoop {
    // Field order: contexts and address spaces go before the platform.
    ctx: Arc<dyn Context>,
    a: Arc<dyn AddressSpace>,
    regs: Registers,
    _p: PtracePlatform,
}

impl PlatformLoop {
    fn new(pin: bool) -> PlatformLoop {
        let mf = Arc::new(MemoryFile::new("ptrace-bench", 1 << 24).expect("memory file"));
        let p = PtracePlatform::with_options(mf, PtraceOptions { pin }).expect("ptrace platform");
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

/// Alternates chunks of raw and platform round trips on one thread (pinned to `cpu`, or
/// not) so that both see the same background load; returns per-chunk ns/iteration.
fn measure(cpu: Option<usize>, chunk: u64, chunks: usize) -> (Vec<f64>, Vec<f64>) {
    if let Some(c) = cpu {
        // The platform spreads over the creating thread's CPUs (just `c`) and the raw
        // child inherits the affinity: tracers and tracees all share `c`.
        raw::pin(0, c);
    }
    let mut plat = PlatformLoop::new(cpu.is_some());
    let mut rawl = raw::RawLoop::new();
    plat.run(200);
    rawl.run(200);
    let (mut r, mut p) = (Vec::new(), Vec::new());
    for _ in 0..chunks {
        r.push(time(chunk, |n| rawl.run(n)));
        p.push(time(chunk, |n| plat.run(n)));
    }
    (r, p)
}

/// Mean microseconds of `new_address_space` and of the first `map_file` in it.
fn address_space_costs(n: u32) -> (f64, f64) {
    let mf = Arc::new(MemoryFile::new("ptrace-bench", 1 << 24).expect("memory file"));
    let p =
        PtracePlatform::with_options(mf, PtraceOptions { pin: false }).expect("ptrace platform");
    let off = p.memory_file().allocate(4096).unwrap();
    let (mut create, mut map) = (0.0, 0.0);
    for _ in 0..n {
        let t = Instant::now();
        let a = p.new_address_space().expect("address space");
        create += t.elapsed().as_secs_f64();
        let t = Instant::now();
        a.map_file(0x40_0000, off, 4096, Protection::READ).unwrap();
        map += t.elapsed().as_secs_f64();
    }
    (create * 1e6 / f64::from(n), map * 1e6 / f64::from(n))
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
    let chunk = env("PTRACE_BENCH_ITERS", if quick { 100 } else { 1000 });
    let chunks = env("PTRACE_BENCH_ROUNDS", if quick { 2 } else { 30 }) as usize;
    let cpu = std::env::var("PTRACE_BENCH_CPU")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            (0..libc::CPU_SETSIZE as usize)
                .rev()
                .find(|&c| raw::allowed(c))
                .unwrap_or(0)
        });
    let native = raw::native(chunk * 20);
    println!(
        "ptrace platform benchmark: {chunks} alternating chunks of {chunk} round trips per placement"
    );
    println!("native getpid: {native:.0} ns");
    println!(
        "{:<18} {:>13} {:>13} {:>15} {:>15} {:>12} {:>12}",
        "placement",
        "raw median",
        "raw min",
        "platform median",
        "platform min",
        "ratio med",
        "ratio min"
    );
    for pin in [true, false] {
        let cpu = pin.then_some(cpu);
        let (mut r, mut p) = in_thread(move || measure(cpu, chunk, chunks));
        let (rmin, pmin) = (
            r.iter().copied().fold(f64::MAX, f64::min),
            p.iter().copied().fold(f64::MAX, f64::min),
        );
        let (rmed, pmed) = (median(&mut r), median(&mut p));
        let name = match cpu {
            Some(c) => format!("pinned (CPU {c})"),
            None => "unpinned".to_string(),
        };
        println!(
            "{name:<18} {rmed:>10.0} ns {rmin:>10.0} ns {pmed:>12.0} ns {pmin:>12.0} ns {:>11.2}x {:>11.2}x",
            pmed / rmed,
            pmin / rmin
        );
    }
    println!(
        "ratio = platform / raw PTRACE_SYSEMU loop, same thread, same run; native getpid for scale"
    );
    let n = if quick { 3 } else { 30 };
    let (create, first_map) = in_thread(move || address_space_costs(n));
    println!(
        "new_address_space: {create:.0} us; first map_file in it (clones the stub thread): {first_map:.0} us"
    );
}
