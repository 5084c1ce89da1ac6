//! System call round trip through platform-kvm, against floors measured in the same run:
//! a minimal VM whose guest does `out` in a loop (one exit to host user space per
//! iteration, the least any KVM platform can pay per system call) and a native host
//! system call.
//!
//! Run with `cargo bench -p platform-kvm`; `KVM_BENCH_ITERS` sets the iteration count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VcpuExit};
use platform::{MemoryFile, Platform, PlatformError, Protection, Registers, Trap};
use platform_kvm::KvmPlatform;

fn per_iter(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64 / 1000.0
}

/// The floor: a real-mode guest running `out 0x10, al; jmp $-2`, one exit per `KVM_RUN`.
fn raw_out_loop(iters: u64) -> Result<f64, String> {
    let kvm = Kvm::new().map_err(|e| e.to_string())?;
    let vm = kvm.create_vm().map_err(|e| e.to_string())?;
    let mut mem = vec![0u8; 0x1000 * 2];
    let page = mem.as_mut_ptr() as usize;
    let page = (page + 0xfff) & !0xfff;
    let code = [0xe6u8, 0x10, 0xeb, 0xfc];
    let off = page - mem.as_ptr() as usize;
    mem[off..off + code.len()].copy_from_slice(&code);
    let region = kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0x1000,
        memory_size: 0x1000,
        userspace_addr: page as u64,
    };
    // SAFETY: the host page is part of `mem`, which outlives the VM (dropped at the end of
    // this function after `vm`); the slot is the VM's only one.
    unsafe { vm.set_user_memory_region(region) }.map_err(|e| e.to_string())?;
    let mut vcpu = vm.create_vcpu(0).map_err(|e| e.to_string())?;
    let mut sregs = vcpu.get_sregs().map_err(|e| e.to_string())?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs).map_err(|e| e.to_string())?;
    let mut regs = vcpu.get_regs().map_err(|e| e.to_string())?;
    regs.rip = 0x1000;
    regs.rflags = 2;
    vcpu.set_regs(&regs).map_err(|e| e.to_string())?;
    let mut run = |n: u64| -> Result<Duration, String> {
        let t = Instant::now();
        for _ in 0..n {
            match vcpu.run().map_err(|e| e.to_string())? {
                VcpuExit::IoOut(0x10, _) => {}
                other => return Err(format!("unexpected exit {other:?}")),
            }
        }
        Ok(t.elapsed())
    };
    run(iters / 10 + 1)?;
    let d = run(iters)?;
    drop(vm);
    drop(mem);
    Ok(per_iter(d, iters))
}

/// A native host system call (`getppid`).
fn native(iters: u64) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        // SAFETY: getppid has no arguments and cannot fail.
        std::hint::black_box(unsafe { libc::getppid() });
    }
    per_iter(t.elapsed(), iters)
}

/// `syscall; jmp $-2` in the application; every iteration is one full `Context::switch`.
fn round_trip(p: &dyn Platform, mf: &MemoryFile, iters: u64) -> Result<f64, PlatformError> {
    let aspace = p.new_address_space()?;
    let code = mf
        .allocate(4096)
        .map_err(|e| PlatformError::Internal(e.to_string()))?;
    mf.write_at(code, &[0x0f, 0x05, 0xeb, 0xfc])
        .map_err(|e| PlatformError::Internal(e.to_string()))?;
    aspace.map_file(CODE, code, 4096, Protection::READ_EXECUTE)?;
    let ctx = p.new_context()?;
    let mut regs = Registers::new_user(CODE, 0x7000_0000);
    let mut run = |n: u64| -> Result<Duration, PlatformError> {
        let t = Instant::now();
        for _ in 0..n {
            match ctx.switch(&*aspace, &mut regs)? {
                Trap::Syscall => regs.gp.set_syscall_return(0),
                other => {
                    return Err(PlatformError::Internal(format!(
                        "unexpected trap {other:?}"
                    )));
                }
            }
        }
        Ok(t.elapsed())
    };
    run(iters / 10 + 1)?;
    Ok(per_iter(run(iters)?, iters))
}

const CODE: u64 = 0x2000_0000;

fn platform_kvm(iters: u64) -> Result<f64, PlatformError> {
    let mf = Arc::new(
        MemoryFile::new("kvm-bench", 1 << 30)
            .map_err(|e| PlatformError::Internal(e.to_string()))?,
    );
    let p = KvmPlatform::new(mf.clone())?;
    round_trip(&p, &mf, iters)
}

/// Replacing a present mapping (what `mprotect` or a copy-on-write break does): edits the
/// page table and makes every vCPU see it (a TLB flush; with shadow paging also zapping
/// KVM's shadow page tables).
fn remap(iters: u64) -> Result<f64, PlatformError> {
    let mf = Arc::new(
        MemoryFile::new("kvm-bench-remap", 1 << 30)
            .map_err(|e| PlatformError::Internal(e.to_string()))?,
    );
    let p = KvmPlatform::new(mf.clone())?;
    let aspace = p.new_address_space()?;
    let page = mf
        .allocate(4096)
        .map_err(|e| PlatformError::Internal(e.to_string()))?;
    // Run once in the address space first: KVM may then shadow its tables, so every
    // change below needs the full flush (changes before the first entry need none).
    let code = mf
        .allocate(4096)
        .map_err(|e| PlatformError::Internal(e.to_string()))?;
    mf.write_at(code, &[0x0f, 0x05])
        .map_err(|e| PlatformError::Internal(e.to_string()))?;
    aspace.map_file(CODE + 0x1000, code, 4096, Protection::READ_EXECUTE)?;
    let ctx = p.new_context()?;
    let mut regs = Registers::new_user(CODE + 0x1000, 0x7000_0000);
    ctx.switch(&*aspace, &mut regs)?;
    let t = Instant::now();
    for i in 0..iters {
        let prot = if i % 2 == 0 {
            Protection::READ
        } else {
            Protection::READ_WRITE
        };
        aspace.map_file(CODE, page, 4096, prot)?;
    }
    Ok(per_iter(t.elapsed(), iters))
}

fn platform_ptrace(iters: u64) -> Result<f64, PlatformError> {
    let mf = Arc::new(
        MemoryFile::new("ptrace-bench", 1 << 30)
            .map_err(|e| PlatformError::Internal(e.to_string()))?,
    );
    let p = platform_ptrace::PtracePlatform::new(mf.clone())?;
    round_trip(&p, &mf, iters)
}

fn main() {
    let iters: u64 = std::env::var("KVM_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    if let Err(e) = Kvm::new() {
        println!("skipping: /dev/kvm unavailable: {e}");
        return;
    }
    let native = native(iters * 10);
    let raw = match raw_out_loop(iters) {
        Ok(v) => v,
        Err(e) => {
            println!("skipping: raw KVM loop failed: {e}");
            return;
        }
    };
    let kvm = match platform_kvm(iters) {
        Ok(v) => v,
        Err(e) => {
            println!("skipping: platform-kvm failed: {e}");
            return;
        }
    };
    let ptrace = platform_ptrace(iters);
    let remap = remap(iters / 10 + 1);
    println!("iterations:                       {iters}");
    println!("native getppid:                   {native:8.3} µs");
    println!("raw KVM exit (out loop, floor):   {raw:8.3} µs");
    println!("platform-kvm syscall round trip:  {kvm:8.3} µs");
    println!("ratio platform-kvm / raw exit:    {:8.2}", kvm / raw);
    println!("ratio platform-kvm / native:      {:8.1}", kvm / native);
    match remap {
        Ok(r) => println!("map_file over a present page:     {r:8.3} µs"),
        Err(e) => println!("map_file over a present page: failed ({e})"),
    }
    match ptrace {
        Ok(pt) => {
            println!("platform-ptrace round trip:       {pt:8.3} µs");
            println!("ratio platform-kvm / ptrace:      {:8.2}", kvm / pt);
        }
        Err(e) => println!("platform-ptrace: skipped ({e})"),
    }
}
