//! Behaviour of the ptrace platform with tiny guests: machine code written into the memory
//! file, mapped into a stub and run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use linux_abi::Errno;
use linux_abi::signal as sig;
use platform::{AddressSpace, MemoryFile, Platform, PlatformError, Protection, Registers, Trap};
use platform_ptrace::{PtraceAddressSpace, PtraceOptions, PtracePlatform};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x60_0000;
const PAGE: u64 = 4096;

/// The platform, or `None` (with a printed reason) where ptrace cannot be used.
fn platform() -> Option<PtracePlatform> {
    let mf = Arc::new(MemoryFile::new("ptrace-test", 1 << 30).expect("memory file"));
    match PtracePlatform::with_options(mf, PtraceOptions { pin: false }) {
        Ok(p) => Some(p),
        Err(e) => {
            test_require::skip("ptrace", format!("ptrace platform unavailable: {e}"));
            None
        }
    }
}

fn address_space(p: &PtracePlatform) -> Option<Arc<dyn AddressSpace>> {
    match p.new_address_space() {
        Ok(a) => Some(a),
        Err(PlatformError::Unavailable(why)) => {
            test_require::skip("ptrace", why);
            None
        }
        Err(e) => panic!("new_address_space: {e}"),
    }
}

/// Allocates a page of the memory file holding `bytes` and maps it at `addr`.
fn map_page(
    p: &PtracePlatform,
    a: &dyn AddressSpace,
    addr: u64,
    bytes: &[u8],
    prot: Protection,
) -> u64 {
    let mf = p.memory_file();
    let off = mf.allocate(PAGE).unwrap();
    mf.write_at(off, bytes).unwrap();
    a.map_file(addr, off, PAGE, prot).unwrap();
    off
}

fn mov_eax(nr: u32) -> Vec<u8> {
    let mut v = vec![0xb8];
    v.extend_from_slice(&nr.to_le_bytes());
    v
}

const SYSCALL: [u8; 2] = [0x0f, 0x05];
const JMP_SELF: [u8; 2] = [0xeb, 0xfe];

fn guest(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn regs_at(ip: u64) -> Registers {
    Registers::new_user(ip, DATA + PAGE - 64)
}

#[test]
fn syscall_trap_args_and_return_value() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    let mut movabs_store = vec![0x48, 0xa3];
    movabs_store.extend_from_slice(&DATA.to_le_bytes());
    let code = guest(&[
        &mov_eax(39), // getpid: must not run on the host
        &[0xbf, 1, 0, 0, 0],
        &[0xbe, 2, 0, 0, 0],
        &[0xba, 3, 0, 0, 0],
        &[0x41, 0xba, 4, 0, 0, 0],
        &[0x41, 0xb8, 5, 0, 0, 0],
        &[0x41, 0xb9, 6, 0, 0, 0],
        &SYSCALL,
        &movabs_store,       // [DATA] = rax
        &[0x48, 0x89, 0xc7], // rdi = rax
        &mov_eax(500),
        &SYSCALL,
        &mov_eax(231), // exit_group(rdi): must not run on the host either
        &SYSCALL,
        &JMP_SELF,
    ]);
    map_page(&p, &*a, CODE, &code, Protection::READ_EXECUTE);
    let data_off = map_page(&p, &*a, DATA, &[], Protection::READ_WRITE);
    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);

    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 39);
    assert_eq!(regs.gp.syscall_args(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(regs.gp.rip, CODE + 0x28, "rip points past the syscall");
    assert_eq!(
        regs.gp.rax,
        Errno::ENOSYS.as_return(),
        "the host did not execute getpid"
    );

    regs.gp.set_syscall_return(0x1234_5678_9abc);
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 500);
    assert_eq!(
        regs.gp.rdi, 0x1234_5678_9abc,
        "the guest saw the changed return value"
    );
    let mut word = [0u8; 8];
    p.memory_file().read_at(data_off, &mut word).unwrap();
    assert_eq!(u64::from_le_bytes(word), 0x1234_5678_9abc);

    regs.gp.set_syscall_return(7);
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 231);
    assert_eq!(regs.gp.rdi, 0x1234_5678_9abc);
    // exit_group was emulated, not executed: the stub still runs and traps again.
    regs.gp.rip -= 2;
    regs.gp.rax = 231;
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 231);
    let pid = a
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .unwrap()
        .stub_pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn stub_starts_clean() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    let pid = a
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .unwrap()
        .stub_pid();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let regions: Vec<&str> = maps.lines().filter(|l| !l.contains("[vsyscall]")).collect();
    assert_eq!(regions.len(), 1, "only the stub page is mapped: {maps}");
    assert!(
        regions[0].starts_with("7fffffffe000-7ffffffff000 r-xp"),
        "{maps}"
    );
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        fds,
        vec![platform_ptrace::MEMFD_SLOT.to_string()],
        "only the memory file is open"
    );
}

#[test]
fn fault_then_map_then_resume() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    const FAULT: u64 = 0x7000_0000;
    let mut load = vec![0x48, 0xa1];
    load.extend_from_slice(&(FAULT + 8).to_le_bytes());
    let code = guest(&[
        &load,
        &[0x48, 0x89, 0xc7],
        &mov_eax(501),
        &SYSCALL,
        &JMP_SELF,
    ]);
    map_page(&p, &*a, CODE, &code, Protection::READ_EXECUTE);
    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);
    match ctx.switch(&*a, &mut regs).unwrap() {
        Trap::Fault { addr, ip, .. } => {
            assert_eq!(addr, FAULT + 8);
            assert_eq!(ip, CODE);
        }
        t => panic!("expected a fault, got {t:?}"),
    }
    assert_eq!(
        regs.gp.rip, CODE,
        "the faulting instruction did not complete"
    );
    let mut page = vec![0u8; 16];
    page[8..16].copy_from_slice(&0x42u64.to_le_bytes());
    map_page(&p, &*a, FAULT, &page, Protection::READ);
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 501);
    assert_eq!(regs.gp.rdi, 0x42);

    // Unmapping makes it fault again; a write to a read-only page faults too.
    a.unmap(FAULT, PAGE).unwrap();
    regs.gp.rip = CODE;
    assert!(
        matches!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Fault { addr, .. } if addr == FAULT + 8)
    );
    // Jumping to an unmapped address is an instruction fetch fault.
    regs.gp.rip = FAULT;
    match ctx.switch(&*a, &mut regs).unwrap() {
        Trap::Fault { addr, ip, access } => {
            assert_eq!((addr, ip), (FAULT, FAULT));
            assert!(access.execute);
        }
        t => panic!("expected a fault, got {t:?}"),
    }
}

#[test]
fn synchronous_signals() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    // ud2; int3; hlt; xor ecx, ecx; div ecx
    let code = [0x0f, 0x0b, 0xcc, 0xf4, 0x31, 0xc9, 0xf7, 0xf1];
    map_page(&p, &*a, CODE, &code, Protection::READ_EXECUTE);
    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);
    match ctx.switch(&*a, &mut regs).unwrap() {
        Trap::Signal(si) => assert_eq!(si.signo, sig::SIGILL),
        t => panic!("expected SIGILL, got {t:?}"),
    }
    regs.gp.rip = CODE + 2;
    match ctx.switch(&*a, &mut regs).unwrap() {
        Trap::Signal(si) => assert_eq!(si.signo, sig::SIGTRAP),
        t => panic!("expected SIGTRAP, got {t:?}"),
    }
    assert_eq!(regs.gp.rip, CODE + 3);
    match ctx.switch(&*a, &mut regs).unwrap() {
        Trap::Signal(si) => assert_eq!((si.signo, si.code), (sig::SIGSEGV, sig::SI_KERNEL)),
        t => panic!("expected SIGSEGV/SI_KERNEL, got {t:?}"),
    }
    regs.gp.rip = CODE + 4;
    match ctx.switch(&*a, &mut regs).unwrap() {
        Trap::Signal(si) => {
            assert_eq!((si.signo, si.code), (sig::SIGFPE, sig::FPE_INTDIV));
            assert_eq!(si.addr(), CODE + 6);
        }
        t => panic!("expected SIGFPE, got {t:?}"),
    }
}

#[test]
fn address_spaces_from_many_threads() {
    let Some(p) = platform() else { return };
    let p = Arc::new(p);
    let handles: Vec<_> = (0..4u32)
        .map(|i| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                let ctx = p.new_context().unwrap();
                for j in 0..4u32 {
                    let a = p.new_address_space().unwrap();
                    let nr = 1000 + i * 10 + j;
                    map_page(
                        &p,
                        &*a,
                        CODE,
                        &guest(&[&mov_eax(nr), &SYSCALL]),
                        Protection::READ_EXECUTE,
                    );
                    let mut regs = regs_at(CODE);
                    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
                    assert_eq!(regs.gp.syscall_number(), u64::from(nr));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn interrupt_breaks_an_infinite_loop() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    map_page(&p, &*a, CODE, &JMP_SELF, Protection::READ_EXECUTE);
    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);

    // Remembered while not running.
    ctx.interrupt();
    ctx.interrupt();
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Interrupted);

    // From another thread while running (it keeps interrupting until the switch returns,
    // so the test does not depend on timing).
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let ctx = Arc::clone(&ctx);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                ctx.interrupt();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let trap = ctx.switch(&*a, &mut regs).unwrap();
    done.store(true, std::sync::atomic::Ordering::Release);
    killer.join().unwrap();
    assert_eq!(trap, Trap::Interrupted);
    assert_eq!(
        regs.gp.rip, CODE,
        "registers are consistent: still in the loop"
    );
}

#[test]
fn two_address_spaces_same_address_different_contents() {
    let Some(p) = platform() else { return };
    let Some(a1) = address_space(&p) else { return };
    let Some(a2) = address_space(&p) else { return };
    map_page(
        &p,
        &*a1,
        CODE,
        &guest(&[&mov_eax(600), &SYSCALL]),
        Protection::READ_EXECUTE,
    );
    map_page(
        &p,
        &*a2,
        CODE,
        &guest(&[&mov_eax(601), &SYSCALL]),
        Protection::READ_EXECUTE,
    );
    let ctx = p.new_context().unwrap();
    for _ in 0..3 {
        let mut regs = regs_at(CODE);
        assert_eq!(ctx.switch(&*a1, &mut regs).unwrap(), Trap::Syscall);
        assert_eq!(regs.gp.syscall_number(), 600);
        let mut regs = regs_at(CODE);
        assert_eq!(ctx.switch(&*a2, &mut regs).unwrap(), Trap::Syscall);
        assert_eq!(regs.gp.syscall_number(), 601);
    }
}

#[test]
fn several_threads_on_one_address_space() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    // loop: mov eax, 700; syscall; jmp loop   (rdi carries the thread's identity)
    let code = guest(&[&mov_eax(700), &SYSCALL, &[0xeb, 0xf7]]);
    map_page(&p, &*a, CODE, &code, Protection::READ_EXECUTE);
    let p = Arc::new(p);
    let owned = p.new_context().unwrap();
    let mut regs = regs_at(CODE);
    assert_eq!(owned.switch(&*a, &mut regs).unwrap(), Trap::Syscall);

    let handles: Vec<_> = (0..3u64)
        .map(|i| {
            let (p, a, owned) = (Arc::clone(&p), Arc::clone(&a), Arc::clone(&owned));
            std::thread::spawn(move || {
                let mut r = regs_at(CODE);
                assert!(matches!(
                    owned.switch(&*a, &mut r),
                    Err(PlatformError::WrongThread)
                ));
                let ctx = p.new_context().unwrap();
                let mut regs = regs_at(CODE);
                regs.gp.rdi = 1000 + i;
                for n in 0..50u64 {
                    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
                    assert_eq!(regs.gp.syscall_number(), 700);
                    assert_eq!(regs.gp.rdi, 1000 + i);
                    regs.gp.set_syscall_return(n);
                    if n == 10 {
                        // Mapping from a thread while the others run.
                        map_page(&p, &*a, 0x1000_0000 + i * PAGE, &[], Protection::READ);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // The address space survived its other threads' exit.
    assert_eq!(owned.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    let pid = a
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .unwrap()
        .stub_pid();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert_eq!(tasks, 2, "the leader and this thread's stub thread remain");
}

fn gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn no_stub_left_after_drop() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    let master = p.master_pid();
    let stub = a
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .unwrap()
        .stub_pid();
    map_page(
        &p,
        &*a,
        CODE,
        &guest(&[&mov_eax(1), &SYSCALL, &[0xeb, 0xf7]]),
        Protection::READ_EXECUTE,
    );
    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    // A thread that drove the address space and exited leaves it intact.
    {
        let (a, ctx2) = (Arc::clone(&a), p.new_context().unwrap());
        std::thread::spawn(move || {
            let mut regs = regs_at(CODE);
            assert_eq!(ctx2.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
        })
        .join()
        .unwrap();
    }
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);

    a.release();
    assert!(matches!(
        ctx.switch(&*a, &mut regs),
        Err(PlatformError::Released)
    ));
    assert!(matches!(
        a.map_file(CODE, 0, PAGE, Protection::READ),
        Err(PlatformError::Released)
    ));
    assert!(gone(stub), "stub process {stub} reaped after release");
    assert!(std::path::Path::new(&format!("/proc/{master}")).exists());

    let Some(b) = address_space(&p) else { return };
    let stub2 = b
        .as_any()
        .downcast_ref::<PtraceAddressSpace>()
        .unwrap()
        .stub_pid();
    drop((b, a, ctx, p));
    assert!(gone(stub2), "stub process {stub2} reaped after drop");
    assert!(gone(master), "master stub {master} reaped after drop");
}

#[test]
fn bad_map_arguments_are_errors() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    let off = p.memory_file().allocate(PAGE).unwrap();
    let size = p.memory_file().size();
    let rw = Protection::READ_WRITE;
    let bad = [
        (CODE + 1, off, PAGE),
        (CODE, off + 1, PAGE),
        (CODE, off, PAGE + 1),
        (CODE, off, 0),
        (0, off, PAGE),
        (p.max_user_address(), off, PAGE),
        (platform_ptrace::STUB_ADDR, off, PAGE),
        (p.max_user_address() - PAGE, off, 2 * PAGE),
        (u64::MAX - PAGE + 1, off, PAGE),
        (CODE, size, PAGE),
        (CODE, u64::MAX - PAGE + 1, PAGE),
        (CODE, 0, u64::MAX - PAGE + 1),
    ];
    for (addr, file_offset, len) in bad {
        let r = a.map_file(addr, file_offset, len, rw);
        assert!(
            matches!(r, Err(PlatformError::InvalidArgument(_))),
            "map_file({addr:#x}, {file_offset:#x}, {len:#x}) = {r:?}"
        );
    }
    assert!(matches!(
        a.unmap(CODE + 1, PAGE),
        Err(PlatformError::InvalidArgument(_))
    ));
    assert!(matches!(
        a.unmap(CODE, 0),
        Err(PlatformError::InvalidArgument(_))
    ));
    // Valid calls still work, unmapping a hole included.
    a.map_file(p.max_user_address() - PAGE, off, PAGE, rw)
        .unwrap();
    a.unmap(0x2000_0000, 16 * PAGE).unwrap();
}

#[test]
fn fs_base_and_fpu_survive_switches() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    let code = guest(&[
        &[0x66, 0x48, 0x0f, 0x7e, 0xc7],             // movq rdi, xmm0
        &[0x64, 0x48, 0x8b, 0x34, 0x25, 0, 0, 0, 0], // mov rsi, fs:[0]
        &mov_eax(800),
        &SYSCALL,
        &[0x66, 0x48, 0x0f, 0x6e, 0xc2], // movq xmm0, rdx
        &mov_eax(801),
        &SYSCALL,
        &JMP_SELF,
    ]);
    map_page(&p, &*a, CODE, &code, Protection::READ_EXECUTE);
    map_page(
        &p,
        &*a,
        DATA,
        &0x5555u64.to_le_bytes(),
        Protection::READ_WRITE,
    );
    let xmm0 = |r: &Registers| u64::from_le_bytes(r.fpu.as_bytes()[160..168].try_into().unwrap());
    let set_xmm0 = |r: &mut Registers, v: u64| {
        r.fpu.as_bytes_mut()[160..168].copy_from_slice(&v.to_le_bytes())
    };

    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);
    regs.gp.fs_base = DATA;
    set_xmm0(&mut regs, 0xdead_beef_cafe_f00d);
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 800);
    assert_eq!(regs.gp.rdi, 0xdead_beef_cafe_f00d, "the guest saw xmm0");
    assert_eq!(regs.gp.rsi, 0x5555, "the guest saw its FS base");
    assert_eq!(regs.gp.fs_base, DATA);
    assert_eq!(xmm0(&regs), 0xdead_beef_cafe_f00d);

    // Another context on the same host thread and address space clobbers the stub
    // thread's registers in between.
    let other = p.new_context().unwrap();
    let mut oregs = regs_at(CODE);
    oregs.gp.fs_base = DATA + 8;
    set_xmm0(&mut oregs, 7);
    assert_eq!(other.switch(&*a, &mut oregs).unwrap(), Trap::Syscall);
    assert_eq!(oregs.gp.rdi, 7);

    regs.gp.rdx = 0x1111_2222_3333_4444;
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 801);
    assert_eq!(
        xmm0(&regs),
        0x1111_2222_3333_4444,
        "the guest's xmm0 came back"
    );
    assert_eq!(regs.gp.fs_base, DATA);

    // And the state the guest left is the one it resumes with.
    regs.gp.rip = CODE;
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.rdi, 0x1111_2222_3333_4444);
}

#[test]
fn foreign_or_released_objects() {
    let Some(p) = platform() else { return };
    let Some(q) = platform() else { return };
    let Some(a) = address_space(&q) else { return };
    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);
    assert!(matches!(
        ctx.switch(&*a, &mut regs),
        Err(PlatformError::ForeignAddressSpace)
    ));
    ctx.release();
    let Some(b) = address_space(&p) else { return };
    assert!(matches!(
        ctx.switch(&*b, &mut regs),
        Err(PlatformError::Released)
    ));
}

#[test]
fn vsyscall_page_is_not_executed_on_the_host() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    let code = guest(&[
        &[0x31, 0xff],                               // xor edi, edi (gettimeofday(NULL, NULL))
        &[0x31, 0xf6],                               // xor esi, esi
        &[0x48, 0xc7, 0xc0, 0x00, 0x00, 0x60, 0xff], // mov rax, 0xffffffffff600000
        &[0xff, 0xd0],                               // call rax
        &mov_eax(900),
        &SYSCALL,
        &JMP_SELF,
    ]);
    map_page(&p, &*a, CODE, &code, Protection::READ_EXECUTE);
    map_page(&p, &*a, DATA, &[], Protection::READ_WRITE);
    let ctx = p.new_context().unwrap();
    let mut regs = regs_at(CODE);
    let rsp = regs.gp.rsp;
    let trap = ctx.switch(&*a, &mut regs).unwrap();
    // Whatever the host's vsyscall mode (its emulation refused by the stub's seccomp
    // filter, or no page at all), never a silent host gettimeofday: the call is reported
    // as a fetch fault at the entry, RIP there and the return address on the stack.
    let entry = platform::VSYSCALL_BASE;
    match trap {
        Trap::Fault { addr, access, ip } => {
            assert_eq!((addr, ip), (entry, entry));
            assert!(access.execute || access.is_unknown(), "{access:?}");
        }
        t => panic!("vsyscall ran on the host: {t:?}"),
    }
    assert_eq!(regs.gp.rip, entry);
    assert_eq!(
        regs.gp.rsp,
        rsp - 8,
        "the return address is still on the stack"
    );
}

#[test]
fn bad_registers_are_errors_and_leave_the_context_usable() {
    let Some(p) = platform() else { return };
    let Some(a) = address_space(&p) else { return };
    map_page(
        &p,
        &*a,
        CODE,
        &guest(&[&mov_eax(950), &SYSCALL]),
        Protection::READ_EXECUTE,
    );
    let ctx = p.new_context().unwrap();

    let mut regs = regs_at(CODE);
    regs.gp.fs_base = 1 << 63; // non-canonical
    assert!(matches!(
        ctx.switch(&*a, &mut regs),
        Err(PlatformError::InvalidArgument(_))
    ));

    let mut regs = regs_at(CODE);
    regs.fpu.as_bytes_mut()[24..28].copy_from_slice(&0xffff_ffffu32.to_le_bytes()); // MXCSR reserved bits
    assert!(matches!(
        ctx.switch(&*a, &mut regs),
        Err(PlatformError::InvalidArgument(_))
    ));

    let mut regs = regs_at(CODE);
    assert_eq!(ctx.switch(&*a, &mut regs).unwrap(), Trap::Syscall);
    assert_eq!(regs.gp.syscall_number(), 950);
    assert_eq!(regs.fpu.mxcsr(), 0x1f80);
}
