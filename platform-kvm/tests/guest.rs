//! Tiny guests run through the KVM platform: machine code written into the memory file,
//! mapped into an address space, and switched to. Every test skips with a printed reason
//! when `/dev/kvm` is not usable (fails instead when `RSENTRY_REQUIRE` names `kvm`).

use std::sync::{Arc, Barrier};

use linux_abi::signal as sig;
use platform::{
    AccessType, AddressSpace, MemoryFile, Platform, PlatformError, Protection, Registers, Trap,
};
use platform_kvm::{EntryMode, KvmPlatform};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x1000_0000;
const STACK_TOP: u64 = 0x7000_0000;

struct Guest {
    platform: KvmPlatform,
    mf: Arc<MemoryFile>,
    aspace: Arc<dyn AddressSpace>,
}

fn platform() -> Option<(KvmPlatform, Arc<MemoryFile>)> {
    platform_in(EntryMode::Auto)
}

fn platform_in(mode: EntryMode) -> Option<(KvmPlatform, Arc<MemoryFile>)> {
    let mf = Arc::new(MemoryFile::new("kvm-test", 1 << 30).expect("memory file"));
    match KvmPlatform::with_entry_mode(mf.clone(), mode) {
        Ok(p) => Some((p, mf)),
        Err(PlatformError::Unavailable(why)) => {
            test_require::skip("kvm", format!("KVM unavailable: {why}"));
            None
        }
        Err(e) => panic!("platform: {e}"),
    }
}

/// Allocates a page of the memory file holding `bytes`.
fn page_with(mf: &MemoryFile, bytes: &[u8]) -> u64 {
    let off = mf.allocate(4096).expect("allocate");
    mf.write_at(off, bytes).expect("write");
    off
}

/// A platform with one address space: `code` at CODE (r-x) and a stack page below
/// STACK_TOP (rw-).
fn guest(code: &[u8]) -> Option<Guest> {
    guest_in(code, EntryMode::Auto)
}

fn guest_in(code: &[u8], mode: EntryMode) -> Option<Guest> {
    let (platform, mf) = platform_in(mode)?;
    let aspace = platform.new_address_space().expect("address space");
    let c = page_with(&mf, code);
    aspace
        .map_file(CODE, c, 4096, Protection::READ_EXECUTE)
        .expect("map code");
    let s = page_with(&mf, &[]);
    aspace
        .map_file(STACK_TOP - 4096, s, 4096, Protection::READ_WRITE)
        .expect("map stack");
    Some(Guest {
        platform,
        mf,
        aspace,
    })
}

fn regs() -> Registers {
    Registers::new_user(CODE, STACK_TOP - 64)
}

fn syscall_number_args_and_return_value_in(mode: EntryMode) {
    let code = [
        0xb8, 39, 0, 0, 0, // mov eax, 39
        0xbf, 1, 0, 0, 0, // mov edi, 1
        0xbe, 2, 0, 0, 0, // mov esi, 2
        0xba, 3, 0, 0, 0, // mov edx, 3
        0x0f, 0x05, // syscall
        0x48, 0x89, 0xc7, // mov rdi, rax
        0xb8, 60, 0, 0, 0, // mov eax, 60
        0x0f, 0x05, // syscall
    ];
    let Some(g) = guest_in(&code, mode) else {
        return;
    };
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    r.gp.r10 = 4;
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.syscall_number(), 39);
    assert_eq!(r.gp.syscall_args(), [1, 2, 3, 4, 0, 0]);
    assert_eq!(r.gp.rip, CODE + 22);
    assert_eq!(
        r.gp.rcx, r.gp.rip,
        "rcx = rip after syscall, as Linux leaves it"
    );
    assert_eq!(r.gp.r11, r.gp.eflags, "r11 = rflags, as Linux leaves it");
    assert_eq!(
        r.gp.eflags & 0x200,
        0x200,
        "interrupts were enabled in ring 3"
    );
    assert_eq!(r.gp.rsp, STACK_TOP - 64);
    assert_eq!((r.gp.cs, r.gp.ss), (0x33, 0x2b));
    r.gp.set_syscall_return(0x1234_5678_9abc);
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.syscall_number(), 60);
    assert_eq!(
        r.gp.rdi, 0x1234_5678_9abc,
        "the guest saw the changed return value"
    );
}

#[test]
fn syscall_number_args_and_return_value() {
    syscall_number_args_and_return_value_in(EntryMode::Auto);
}

#[test]
fn syscall_number_args_and_return_value_with_return_stubs() {
    syscall_number_args_and_return_value_in(EntryMode::ReturnStubs);
}

fn general_registers_survive_iret_entry_in(mode: EntryMode) {
    // syscall immediately: every register must arrive as set (rcx/r11 differ from
    // rip/rflags, so the iretq path is used).
    let Some(g) = guest_in(&[0x0f, 0x05], mode) else {
        return;
    };
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    let vals = [11u64, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24];
    r.gp.rax = 7;
    (
        r.gp.rbx, r.gp.rcx, r.gp.rdx, r.gp.rsi, r.gp.rdi, r.gp.rbp, r.gp.r8,
    ) = (
        vals[0], vals[1], vals[2], vals[3], vals[4], vals[5], vals[6],
    );
    (
        r.gp.r9, r.gp.r10, r.gp.r11, r.gp.r12, r.gp.r13, r.gp.r14, r.gp.r15,
    ) = (
        vals[7], vals[8], vals[9], vals[10], vals[11], vals[12], vals[13],
    );
    r.gp.eflags = 0x202 | 0x1 | 0x400; // CF, DF
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.orig_rax, 7);
    assert_eq!(
        [
            r.gp.rbx, r.gp.rdx, r.gp.rsi, r.gp.rdi, r.gp.rbp, r.gp.r8, r.gp.r9, r.gp.r10, r.gp.r12,
            r.gp.r13, r.gp.r14, r.gp.r15
        ],
        [11, 13, 14, 15, 16, 17, 18, 19, 21, 22, 23, 24]
    );
    assert_eq!(r.gp.eflags & 0x401, 0x401, "CF and DF reached the guest");
}

#[test]
fn general_registers_survive_iret_entry() {
    general_registers_survive_iret_entry_in(EntryMode::Auto);
}

#[test]
fn general_registers_survive_iret_entry_with_return_stubs() {
    general_registers_survive_iret_entry_in(EntryMode::ReturnStubs);
}

fn fault_then_map_then_resume_in(mode: EntryMode) {
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(&DATA.to_le_bytes()); // mov rax, DATA
    code.extend_from_slice(&[0x48, 0x8b, 0x18]); // mov rbx, [rax]
    code.extend_from_slice(&[0xc7, 0x00, 42, 0, 0, 0]); // mov dword [rax], 42
    code.extend_from_slice(&[0xb8, 60, 0, 0, 0, 0x0f, 0x05]); // exit
    let Some(g) = guest_in(&code, mode) else {
        return;
    };
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    let t = ctx.switch(&*g.aspace, &mut r).unwrap();
    assert_eq!(
        t,
        Trap::Fault {
            addr: DATA,
            access: AccessType {
                read: true,
                write: false,
                execute: false
            },
            ip: CODE + 10
        }
    );
    assert_eq!(
        r.gp.rip,
        CODE + 10,
        "the faulting instruction did not complete"
    );

    let data = page_with(&g.mf, &7u64.to_le_bytes());
    g.aspace
        .map_file(DATA, data, 4096, Protection::READ)
        .unwrap();
    let t = ctx.switch(&*g.aspace, &mut r).unwrap();
    assert_eq!(
        t,
        Trap::Fault {
            addr: DATA,
            access: AccessType {
                read: false,
                write: true,
                execute: false
            },
            ip: CODE + 13
        }
    );
    assert_eq!(r.gp.rbx, 7, "the read completed after the page was mapped");

    g.aspace
        .map_file(DATA, data, 4096, Protection::READ_WRITE)
        .unwrap();
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    let mut buf = [0u8; 4];
    g.mf.read_at(data, &mut buf).unwrap();
    assert_eq!(
        u32::from_le_bytes(buf),
        42,
        "the write reached the memory file"
    );

    // Unmapping the code makes the next instruction fetch fault as an execute access.
    g.aspace.unmap(CODE, 4096).unwrap();
    let t = ctx.switch(&*g.aspace, &mut r).unwrap();
    assert!(
        matches!(t, Trap::Fault { addr, access, .. } if addr == r.gp.rip && access.execute),
        "{t:?}"
    );
}

#[test]
fn fault_then_map_then_resume() {
    fault_then_map_then_resume_in(EntryMode::Auto);
}

#[test]
fn fault_then_map_then_resume_with_return_stubs() {
    fault_then_map_then_resume_in(EntryMode::ReturnStubs);
}

fn fs_base_is_the_thread_pointer_in(mode: EntryMode) {
    let mut code = vec![0x64, 0x48, 0x8b, 0x3c, 0x25, 0, 0, 0, 0]; // mov rdi, fs:[0]
    code.extend_from_slice(&[0xb8, 60, 0, 0, 0, 0x0f, 0x05]);
    let Some(g) = guest_in(&code, mode) else {
        return;
    };
    let data = page_with(&g.mf, &0x1122_3344_5566_7788u64.to_le_bytes());
    g.aspace
        .map_file(DATA, data, 4096, Protection::READ)
        .unwrap();
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    r.gp.fs_base = DATA;
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.rdi, 0x1122_3344_5566_7788);
    assert_eq!(r.gp.fs_base, DATA);
}

#[test]
fn fs_base_is_the_thread_pointer() {
    fs_base_is_the_thread_pointer_in(EntryMode::Auto);
}

#[test]
fn fs_base_is_the_thread_pointer_with_return_stubs() {
    fs_base_is_the_thread_pointer_in(EntryMode::ReturnStubs);
}

fn expect_signal(code: &[u8], signo: i32, si_code: i32, rip_off: u64) {
    let Some(g) = guest(code) else { return };
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    match ctx.switch(&*g.aspace, &mut r).unwrap() {
        Trap::Signal(info) => {
            assert_eq!((info.signo, info.code), (signo, si_code), "{info:?}");
            assert_eq!(r.gp.rip, CODE + rip_off);
        }
        t => panic!("expected signal {signo}, got {t:?}"),
    }
}

#[test]
fn ud2_is_sigill() {
    expect_signal(&[0x0f, 0x0b], sig::SIGILL, sig::ILL_ILLOPN, 0);
}

#[test]
fn divide_by_zero_is_sigfpe() {
    // xor ecx, ecx; div ecx
    expect_signal(&[0x31, 0xc9, 0xf7, 0xf1], sig::SIGFPE, sig::FPE_INTDIV, 2);
}

#[test]
fn int3_is_sigtrap_after_the_instruction() {
    expect_signal(&[0x90, 0xcc], sig::SIGTRAP, sig::SI_KERNEL, 2);
}

#[test]
fn privileged_instructions_are_signals() {
    for code in [&[0xe6u8, 0x80][..], &[0xcd, 0x80]] {
        // out 0x80, al; int 0x80: #GP and SIGSEGV under hardware virtualization, as on
        // Linux; PVM's emulated mode reports some of them as #UD (SIGILL).
        let Some(g) = guest(code) else { return };
        let ctx = g.platform.new_context().unwrap();
        let mut r = regs();
        match ctx.switch(&*g.aspace, &mut r).unwrap() {
            Trap::Signal(info) if !g.platform.is_pvm() => {
                assert_eq!(
                    (info.signo, info.code),
                    (sig::SIGSEGV, sig::SI_KERNEL),
                    "{info:?}"
                )
            }
            Trap::Signal(info) => {
                assert!(matches!(info.signo, sig::SIGSEGV | sig::SIGILL), "{info:?}")
            }
            t => panic!("{t:?}"),
        }
        assert_eq!(r.gp.rip, CODE, "the instruction did not complete");
    }
}

fn non_canonical_rip_is_sigsegv_in(mode: EntryMode) {
    let Some(g) = guest_in(&[0x0f, 0x05], mode) else {
        return;
    };
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    r.gp.rip = 0x0000_9000_0000_0000;
    match ctx.switch(&*g.aspace, &mut r).unwrap() {
        Trap::Signal(info) => assert_eq!(info.signo, sig::SIGSEGV),
        t => panic!("{t:?}"),
    }
    // The context still works afterwards.
    r.gp.rip = CODE;
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
}

#[test]
fn non_canonical_rip_is_sigsegv() {
    non_canonical_rip_is_sigsegv_in(EntryMode::Auto);
}

#[test]
fn non_canonical_rip_is_sigsegv_with_return_stubs() {
    non_canonical_rip_is_sigsegv_in(EntryMode::ReturnStubs);
}

fn fpu_state_round_trips_in(mode: EntryMode) {
    // movq rax, xmm0; paddq xmm0, xmm0; syscall
    let code = [
        0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x66, 0x0f, 0xd4, 0xc0, 0x0f, 0x05,
    ];
    let Some(g) = guest_in(&code, mode) else {
        return;
    };
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    // xmm0 lives at offset 160 of the XSAVE area.
    r.fpu.as_bytes_mut()[160..168].copy_from_slice(&21u64.to_le_bytes());
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.orig_rax, 21, "the guest saw xmm0");
    assert_eq!(
        u64::from_le_bytes(r.fpu.as_bytes()[160..168].try_into().unwrap()),
        42,
        "the host saw the new xmm0"
    );
    assert_eq!(r.fpu.mxcsr() & 0xffbf, 0x1f80);
}

#[test]
fn fpu_state_round_trips() {
    fpu_state_round_trips_in(EntryMode::Auto);
}

#[test]
fn fpu_state_round_trips_with_return_stubs() {
    fpu_state_round_trips_in(EntryMode::ReturnStubs);
}

fn two_address_spaces_in(mode: EntryMode) {
    let Some((platform, mf)) = platform_in(mode) else {
        return;
    };
    let a = platform.new_address_space().unwrap();
    let b = platform.new_address_space().unwrap();
    let ca = page_with(&mf, &[0xb8, 1, 0, 0, 0, 0x0f, 0x05]);
    let cb = page_with(&mf, &[0xb8, 2, 0, 0, 0, 0x0f, 0x05]);
    a.map_file(CODE, ca, 4096, Protection::READ_EXECUTE)
        .unwrap();
    b.map_file(CODE, cb, 4096, Protection::READ_EXECUTE)
        .unwrap();
    let ctx = platform.new_context().unwrap();
    for round in 0..3 {
        for (aspace, want) in [(&a, 1), (&b, 2)] {
            let mut r = regs();
            assert_eq!(ctx.switch(&**aspace, &mut r).unwrap(), Trap::Syscall);
            assert_eq!(r.gp.orig_rax, want, "round {round}");
        }
    }
    // Released address spaces refuse further use.
    b.release();
    assert!(matches!(
        b.map_file(CODE, cb, 4096, Protection::READ),
        Err(PlatformError::Released)
    ));
    assert!(matches!(
        ctx.switch(&*b, &mut regs()),
        Err(PlatformError::Released)
    ));
    let mut r = regs();
    assert_eq!(ctx.switch(&*a, &mut r).unwrap(), Trap::Syscall);
}

#[test]
fn two_address_spaces() {
    two_address_spaces_in(EntryMode::Auto);
}

#[test]
fn two_address_spaces_with_return_stubs() {
    two_address_spaces_in(EntryMode::ReturnStubs);
}

#[test]
fn threads_share_an_address_space_on_several_vcpus() {
    const THREADS: u64 = 3;
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(&DATA.to_le_bytes()); // mov rax, DATA
    code.extend_from_slice(&[0xf0, 0x48, 0xff, 0x00]); // lock inc qword [rax]
    code.extend_from_slice(&[0x48, 0x83, 0x38, THREADS as u8, 0x75, 0xfa]); // spin until all arrived
    code.extend_from_slice(&[0xb8, 60, 0, 0, 0, 0x0f, 0x05]);
    let Some(g) = guest(&code) else { return };
    let data = page_with(&g.mf, &[]);
    g.aspace
        .map_file(DATA, data, 4096, Protection::READ_WRITE)
        .unwrap();
    let platform = Arc::new(g.platform);
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let (platform, aspace, barrier) = (platform.clone(), g.aspace.clone(), barrier.clone());
            std::thread::spawn(move || {
                let ctx = platform.new_context().unwrap();
                let mut r = regs();
                r.gp.rdi = i;
                barrier.wait();
                let t = ctx.switch(&*aspace, &mut r).unwrap();
                (t, r.gp.rdi, r.gp.orig_rax)
            })
        })
        .collect();
    let mut seen: Vec<u64> = Vec::new();
    for h in handles {
        let (t, rdi, nr) = h.join().unwrap();
        assert_eq!((t, nr), (Trap::Syscall, 60));
        seen.push(rdi);
    }
    seen.sort();
    assert_eq!(seen, (0..THREADS).collect::<Vec<_>>());
    assert_eq!(
        platform.vcpu_count(),
        THREADS as usize,
        "all guests ran at the same time"
    );
    let mut buf = [0u8; 8];
    g.mf.read_at(data, &mut buf).unwrap();
    assert_eq!(u64::from_le_bytes(buf), THREADS);
}

#[test]
fn contexts_run_one_after_another_share_a_vcpu() {
    let Some(g) = guest(&[0xb8, 7, 0, 0, 0, 0x0f, 0x05]) else {
        return;
    };
    let contexts: Vec<_> = (0..4).map(|_| g.platform.new_context().unwrap()).collect();
    for round in 0..2 {
        for ctx in &contexts {
            let mut r = regs();
            assert_eq!(
                ctx.switch(&*g.aspace, &mut r).unwrap(),
                Trap::Syscall,
                "round {round}"
            );
            assert_eq!(r.gp.orig_rax, 7);
        }
    }
    assert_eq!(
        g.platform.vcpu_count(),
        1,
        "the pool grows only with concurrency"
    );
    // A released context refuses to run.
    contexts[0].release();
    assert!(matches!(
        contexts[0].switch(&*g.aspace, &mut regs()),
        Err(PlatformError::Released)
    ));
}

fn interrupt_stops_a_spinning_guest_in(mode: EntryMode) {
    let Some(g) = guest_in(&[0x90, 0xeb, 0xfd], mode) else {
        return;
    }; // nop; jmp back
    let ctx = g.platform.new_context().unwrap();
    // An interrupt before the switch is remembered.
    ctx.interrupt();
    ctx.interrupt();
    let mut r = regs();
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Interrupted);
    assert_eq!(r.gp.rip, CODE);
    for _ in 0..3 {
        let c = ctx.clone();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let kicker = std::thread::spawn(move || {
            // Keep interrupting until the switch has returned.
            while rx.try_recv().is_err() {
                c.interrupt();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let t = ctx.switch(&*g.aspace, &mut r).unwrap();
        tx.send(()).unwrap();
        kicker.join().unwrap();
        assert_eq!(t, Trap::Interrupted);
        assert!(
            (CODE..CODE + 3).contains(&r.gp.rip),
            "stopped inside the loop: {:#x}",
            r.gp.rip
        );
    }
}

#[test]
fn interrupt_stops_a_spinning_guest() {
    interrupt_stops_a_spinning_guest_in(EntryMode::Auto);
}

#[test]
fn interrupt_stops_a_spinning_guest_with_return_stubs() {
    interrupt_stops_a_spinning_guest_in(EntryMode::ReturnStubs);
}

fn unmap_while_running_is_seen_at_once_in(mode: EntryMode) {
    // The guest loops reading DATA; another thread unmaps it; the guest must fault.
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(&DATA.to_le_bytes()); // mov rax, DATA
    code.extend_from_slice(&[0x48, 0x8b, 0x18, 0xeb, 0xfb]); // 1: mov rbx, [rax]; jmp 1b
    let Some(g) = guest_in(&code, mode) else {
        return;
    };
    let data = page_with(&g.mf, &[]);
    g.aspace
        .map_file(DATA, data, 4096, Protection::READ)
        .unwrap();
    let ctx = g.platform.new_context().unwrap();
    let aspace = g.aspace.clone();
    let unmapper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        aspace.unmap(DATA, 4096).unwrap();
    });
    let mut r = regs();
    let t = ctx.switch(&*g.aspace, &mut r).unwrap();
    unmapper.join().unwrap();
    assert!(matches!(t, Trap::Fault { addr: DATA, .. }), "{t:?}");
}

#[test]
fn unmap_while_running_is_seen_at_once() {
    unmap_while_running_is_seen_at_once_in(EntryMode::Auto);
}

#[test]
fn unmap_while_running_is_seen_at_once_with_return_stubs() {
    unmap_while_running_is_seen_at_once_in(EntryMode::ReturnStubs);
}

#[test]
fn bad_arguments_are_errors() {
    let Some((platform, mf)) = platform() else {
        return;
    };
    let a = platform.new_address_space().unwrap();
    let off = mf.allocate(4096).unwrap();
    let bad = |r: Result<(), PlatformError>| {
        assert!(matches!(r, Err(PlatformError::InvalidArgument(_))), "{r:?}")
    };
    bad(a.map_file(CODE + 1, off, 4096, Protection::READ));
    bad(a.map_file(CODE, off + 1, 4096, Protection::READ));
    bad(a.map_file(CODE, off, 100, Protection::READ));
    bad(a.map_file(CODE, off, 0, Protection::READ));
    bad(a.map_file(0, off, 4096, Protection::READ));
    bad(a.map_file(platform.max_user_address(), off, 4096, Protection::READ));
    bad(a.map_file(!4095u64, off, 4096, Protection::READ));
    bad(a.map_file(CODE, mf.size(), 4096, Protection::READ));
    bad(a.map_file(CODE, off, !4095u64, Protection::READ));
    bad(a.unmap(CODE + 8, 4096));
    bad(a.unmap(CODE, 0));
    // Unmapping a hole is fine, so is mapping PROT_NONE.
    a.unmap(CODE, 1 << 30).unwrap();
    a.map_file(CODE, off, 4096, Protection::NONE).unwrap();
    // Switching from a second thread is refused.
    let ctx = platform.new_context().unwrap();
    let mut r = regs();
    let _ = ctx.switch(&*a, &mut r).unwrap();
    let c2 = ctx.clone();
    let a2 = a.clone();
    let e = std::thread::spawn(move || c2.switch(&*a2, &mut regs()))
        .join()
        .unwrap();
    assert!(matches!(e, Err(PlatformError::WrongThread)), "{e:?}");
}

/// `mov rax, [DATA]; syscall`: the syscall number is the value at DATA.
fn read_data_code() -> Vec<u8> {
    let mut code = vec![0x48, 0x8b, 0x04, 0x25];
    code.extend_from_slice(&(DATA as u32).to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05]);
    code
}

fn released_tables_are_not_seen_by_the_next_address_space_in(mode: EntryMode) {
    let Some((platform, mf)) = platform_in(mode) else {
        return;
    };
    let code = page_with(&mf, &read_data_code());
    let ctx = platform.new_context().unwrap();
    let keeper = platform.new_address_space().unwrap();
    let scratch = page_with(&mf, &[]);
    for round in 0..4u64 {
        // A process that reads its data page, exits and releases its address space...
        let a = platform.new_address_space().unwrap();
        a.map_file(CODE, code, 4096, Protection::READ_EXECUTE)
            .unwrap();
        let data = page_with(&mf, &(0x1000 + round).to_le_bytes());
        a.map_file(DATA, data, 4096, Protection::READ).unwrap();
        let mut r = regs();
        assert_eq!(ctx.switch(&*a, &mut r).unwrap(), Trap::Syscall);
        assert_eq!(r.gp.orig_rax, 0x1000 + round);
        drop(a);
        if round % 2 == 1 {
            // Replacing a present mapping elsewhere flushes (and, with shadow paging,
            // zaps), after which the released tables may be handed out again.
            let prot = [Protection::READ, Protection::READ_WRITE][round as usize % 2];
            keeper.map_file(DATA, scratch, 4096, prot).unwrap();
            keeper
                .map_file(DATA, scratch, 4096, Protection::READ)
                .unwrap();
        }
        // ...and the next one, built from the same (reused) page-table pages, must not
        // see the old one's mappings: DATA is not mapped here.
        let b = platform.new_address_space().unwrap();
        b.map_file(CODE, code, 4096, Protection::READ_EXECUTE)
            .unwrap();
        let mut r = regs();
        match ctx.switch(&*b, &mut r).unwrap() {
            Trap::Fault { addr, .. } => assert_eq!(addr, DATA, "round {round}"),
            other => panic!(
                "round {round}: stale translation of a released address space: {other:?} rax {:#x}",
                r.gp.orig_rax
            ),
        }
        // Mapped to another page, DATA reads the new page.
        let other = page_with(&mf, &(0x2000 + round).to_le_bytes());
        b.map_file(DATA, other, 4096, Protection::READ).unwrap();
        assert_eq!(ctx.switch(&*b, &mut r).unwrap(), Trap::Syscall);
        assert_eq!(r.gp.orig_rax, 0x2000 + round, "round {round}");
    }
}

#[test]
fn released_tables_are_not_seen_by_the_next_address_space() {
    released_tables_are_not_seen_by_the_next_address_space_in(EntryMode::Auto);
}

#[test]
fn released_tables_are_not_seen_by_the_next_address_space_with_return_stubs() {
    released_tables_are_not_seen_by_the_next_address_space_in(EntryMode::ReturnStubs);
}

/// Many processes, as a shell loop of forks makes them: address spaces created, run on
/// contexts from several threads, released; contexts created and dropped. The pool stays
/// bounded by the concurrency and every run sees its own memory.
#[test]
fn address_space_and_context_churn_from_several_threads() {
    const THREADS: u64 = 3;
    const ROUNDS: u64 = 25;
    let Some((platform, mf)) = platform() else {
        return;
    };
    let platform = Arc::new(platform);
    let code = page_with(&mf, &read_data_code());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (platform, mf) = (platform.clone(), mf.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    let aspace = platform.new_address_space().unwrap();
                    aspace
                        .map_file(CODE, code, 4096, Protection::READ_EXECUTE)
                        .unwrap();
                    let want = (t << 32) | round;
                    let data = page_with(&mf, &want.to_le_bytes());
                    let ctx = platform.new_context().unwrap();
                    let mut r = regs();
                    // Unmapped first: a fault, then mapped and retried.
                    match ctx.switch(&*aspace, &mut r).unwrap() {
                        Trap::Fault { addr, .. } => assert_eq!(addr, DATA),
                        other => panic!("thread {t} round {round}: {other:?}"),
                    }
                    aspace.map_file(DATA, data, 4096, Protection::READ).unwrap();
                    assert_eq!(ctx.switch(&*aspace, &mut r).unwrap(), Trap::Syscall);
                    assert_eq!(r.gp.orig_rax, want, "thread {t} round {round}");
                    if round % 2 == 0 {
                        aspace.release();
                        ctx.release();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(platform.vcpu_count() <= THREADS as usize);
}

/// Application code that jumps into the kernel area (the syscall entry page under PVM's
/// emulated mode is user-accessible) is not a system call.
#[test]
fn jumping_to_the_syscall_entry_is_not_a_syscall() {
    let mut code = vec![0x48, 0xb8];
    code.extend_from_slice(
        &platform_kvm::layout::kva(platform_kvm::layout::SYSCALL_PAGE_OFF).to_le_bytes(),
    );
    code.extend_from_slice(&[0xff, 0xe0]); // jmp rax
    for mode in [EntryMode::Auto, EntryMode::ReturnStubs] {
        let Some(g) = guest_in(&code, mode) else {
            return;
        };
        let ctx = g.platform.new_context().unwrap();
        let mut r = regs();
        match ctx.switch(&*g.aspace, &mut r).unwrap() {
            Trap::Signal(info) => assert_eq!(info.signo, sig::SIGSEGV, "{info:?}"),
            Trap::Fault { .. } => {}
            t => panic!("{mode:?}: {t:?}"),
        }
    }
}

/// Two processes alternating on one context (one vCPU): each sees its own FPU state
/// after every system call, whichever way the platform saved it (fast FPU mode saves it
/// from the guest into a page of the running address space).
#[test]
fn fpu_state_stays_with_its_process_across_switches() {
    // movq rax, xmm0; paddq xmm0, xmm0; syscall; jmp back to the start
    let code = [
        0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x66, 0x0f, 0xd4, 0xc0, 0x0f, 0x05, 0xeb, 0xf3,
    ];
    let Some((platform, mf)) = platform() else {
        return;
    };
    let c = page_with(&mf, &code);
    let spaces: Vec<_> = (0..2)
        .map(|_| {
            let a = platform.new_address_space().unwrap();
            a.map_file(CODE, c, 4096, Protection::READ_EXECUTE).unwrap();
            a
        })
        .collect();
    let ctx = platform.new_context().unwrap();
    let mut regs: Vec<Registers> = (0..2u64)
        .map(|i| {
            let mut r = Registers::new_user(CODE, STACK_TOP - 64);
            r.fpu.as_bytes_mut()[160..168].copy_from_slice(&(i + 1).to_le_bytes());
            r
        })
        .collect();
    for round in 0..4u32 {
        for (i, (aspace, r)) in spaces.iter().zip(regs.iter_mut()).enumerate() {
            assert_eq!(ctx.switch(&**aspace, r).unwrap(), Trap::Syscall);
            let want = (i as u64 + 1) << round;
            assert_eq!(r.gp.orig_rax, want, "process {i} round {round}: xmm0 seen");
            let xmm0 = u64::from_le_bytes(r.fpu.as_bytes()[160..168].try_into().unwrap());
            assert_eq!(xmm0, want * 2, "process {i} round {round}: xmm0 saved");
            assert_eq!(r.fpu.mxcsr() & 0xffbf, 0x1f80);
        }
    }
    // A changed state goes back in: the guest sees what the host wrote.
    regs[0].fpu.as_bytes_mut()[160..168].copy_from_slice(&7u64.to_le_bytes());
    assert_eq!(
        ctx.switch(&*spaces[0], &mut regs[0]).unwrap(),
        Trap::Syscall
    );
    assert_eq!(regs[0].gp.orig_rax, 7);
}

/// Changes made to an address space before anything ran in it, and after, are both seen:
/// the first need no shadow-page zap (nothing can have been shadowed yet).
#[test]
fn changes_before_and_after_the_first_run_are_seen() {
    let Some((platform, mf)) = platform() else {
        return;
    };
    let code = page_with(&mf, &read_data_code());
    let (one, two, three) = (
        page_with(&mf, &1u64.to_le_bytes()),
        page_with(&mf, &2u64.to_le_bytes()),
        page_with(&mf, &3u64.to_le_bytes()),
    );
    let ctx = platform.new_context().unwrap();
    // Warm the vCPU's shadows with another address space first.
    let other = platform.new_address_space().unwrap();
    other
        .map_file(CODE, code, 4096, Protection::READ_EXECUTE)
        .unwrap();
    other.map_file(DATA, one, 4096, Protection::READ).unwrap();
    let mut r = regs();
    assert_eq!(ctx.switch(&*other, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.orig_rax, 1);
    let a = platform.new_address_space().unwrap();
    a.map_file(CODE, code, 4096, Protection::READ_EXECUTE)
        .unwrap();
    a.map_file(DATA, one, 4096, Protection::READ).unwrap();
    a.map_file(DATA, two, 4096, Protection::READ).unwrap(); // replaced before any run
    let mut r = regs();
    assert_eq!(ctx.switch(&*a, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.orig_rax, 2);
    a.map_file(DATA, three, 4096, Protection::READ).unwrap(); // replaced after a run
    let mut r = regs();
    assert_eq!(ctx.switch(&*a, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.orig_rax, 3);
    // The other address space still reads its own page.
    let mut r = regs();
    assert_eq!(ctx.switch(&*other, &mut r).unwrap(), Trap::Syscall);
    assert_eq!(r.gp.orig_rax, 1);
}

/// Write-protecting a page that the guest has written (what fork does for copy-on-write)
/// makes the next write fault, and replacing the page (the copy) makes the guest write
/// the new page, not the shared one.
#[test]
fn write_protect_then_copy_on_write() {
    // mov [DATA], rax; syscall; jmp back to the start
    let mut code = vec![0x48, 0x89, 0x04, 0x25];
    code.extend_from_slice(&(DATA as u32).to_le_bytes());
    code.extend_from_slice(&[0x0f, 0x05, 0xeb, 0xf4]);
    let Some(g) = guest(&code) else { return };
    let shared_page = page_with(&g.mf, &[]);
    g.aspace
        .map_file(DATA, shared_page, 4096, Protection::READ_WRITE)
        .unwrap();
    let ctx = g.platform.new_context().unwrap();
    let mut r = regs();
    r.gp.rax = 1;
    assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    let read = |off| {
        let mut b = [0u8; 8];
        g.mf.read_at(off, &mut b).unwrap();
        u64::from_le_bytes(b)
    };
    assert_eq!(read(shared_page), 1);
    for round in 0..3u64 {
        g.aspace
            .map_file(DATA, shared_page, 4096, Protection::READ)
            .unwrap();
        r.gp.rax = 100 + round;
        match ctx.switch(&*g.aspace, &mut r).unwrap() {
            Trap::Fault { addr, access, .. } => {
                assert_eq!(addr, DATA, "round {round}");
                assert!(access.write, "round {round}: {access:?}");
            }
            t => panic!("round {round}: write through a write-protected page: {t:?}"),
        }
        let copy = page_with(&g.mf, &[]);
        g.aspace
            .map_file(DATA, copy, 4096, Protection::READ_WRITE)
            .unwrap();
        assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
        assert_eq!(read(copy), 100 + round, "round {round}");
        assert_eq!(read(shared_page), 1, "round {round}: the shared page stays");
        // Back to the shared page, writable, for the next round.
        g.aspace
            .map_file(DATA, shared_page, 4096, Protection::READ_WRITE)
            .unwrap();
        r.gp.rax = 1;
        assert_eq!(ctx.switch(&*g.aspace, &mut r).unwrap(), Trap::Syscall);
    }
}
