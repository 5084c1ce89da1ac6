//! The ring-0 entry stubs: hand-assembled machine code in the private region's code page.
//!
//! Ring 0 is only a trampoline. Every way into ring 0 (the `syscall` instruction via
//! `LSTAR`, an exception via the IDT) reaches a stub of a few bytes that leaves the user's
//! general registers untouched and exits to the host with `out imm8, al`; the I/O port
//! number says why (the exception vector, or [`SYSCALL_PORT`]). Every way back to ring 3
//! goes through one of two return stubs that optionally load CR3 (flushing the TLB) and
//! then `iretq` or `sysretq`.
//!
//! Every stub ends in `ud2`, so a host that resumed a stub without redirecting it would
//! see a ring-0 `#UD`, which the decoder reports as an internal error rather than running
//! on. Stubs are placed at fixed 16-byte-aligned offsets so that a later in-guest
//! syscall fast path can replace the bytes at [`SYSCALL_ENTRY`] without changing the
//! layout or the trap ABI.
//!
//! This module is pure data; it holds no `unsafe` code.

/// Offset (in the code page) of the `iretq` return stub.
///
/// Entered with RSP = the return frame `[cr3 or 0, rip, cs, rflags, rsp, ss]` and every
/// other general register already holding its user value:
///
/// ```text
/// 48 87 04 24   xchg [rsp], rax   ; rax = cr3 slot, the slot keeps the user rax
/// 48 85 c0      test rax, rax
/// 74 03         jz   1f           ; 0: keep the loaded page tables
/// 0f 22 d8      mov  cr3, rax     ; switch address space, flush the TLB
/// 58         1: pop  rax          ; user rax; rsp = the iretq frame
/// 48 cf         iretq
/// ```
pub const RETURN_IRET: u64 = 0x000;
const RETURN_IRET_CODE: &[u8] = &[
    0x48, 0x87, 0x04, 0x24, 0x48, 0x85, 0xc0, 0x74, 0x03, 0x0f, 0x22, 0xd8, 0x58, 0x48, 0xcf,
];

/// Offset of the `sysretq` return stub, used when `rcx == rip` and `r11 == rflags` (the
/// state right after a system call), which is cheaper than `iretq`.
///
/// Entered with RSP = `[cr3 or 0, user rsp]`, RCX = user RIP, R11 = user RFLAGS:
///
/// ```text
/// 48 87 04 24   xchg [rsp], rax
/// 48 85 c0      test rax, rax
/// 74 03         jz   1f
/// 0f 22 d8      mov  cr3, rax
/// 58         1: pop  rax
/// 48 8b 24 24   mov  rsp, [rsp]   ; user rsp
/// 48 0f 07      sysretq           ; CS=0x33, SS=0x2b from STAR
/// ```
pub const RETURN_SYSRET: u64 = 0x040;
const RETURN_SYSRET_CODE: &[u8] = &[
    0x48, 0x87, 0x04, 0x24, 0x48, 0x85, 0xc0, 0x74, 0x03, 0x0f, 0x22, 0xd8, 0x58, 0x48, 0x8b, 0x24,
    0x24, 0x48, 0x0f, 0x07,
];

/// End of the return stubs (exclusive): a ring-0 fault below this address happened
/// while returning to the application (e.g. `iretq` to a non-canonical RIP).
pub const RETURN_END: u64 = 0x080;

/// Offset of the PVM return stub. Under PVM the only way to user mode is the synthetic
/// instruction `ERETU`: a `syscall` at the address in `MSR_PVM_RETU_RIP`, which loads
/// RIP, RFLAGS, RCX, R11, CS, SS and GS base from the PVCS (written by the host) and
/// keeps every other register, RSP included. Entered with RSP = `[cr3 or 0, user rsp]`:
///
/// ```text
/// 48 87 04 24   xchg [rsp], rax
/// 48 85 c0      test rax, rax
/// 74 03         jz   1f
/// 0f 22 d8      mov  cr3, rax     ; emulated by PVM
/// 58         1: pop  rax
/// 48 8b 24 24   mov  rsp, [rsp]   ; user rsp
/// 0f 05         syscall           ; ERETU (at PVM_RETU)
/// 0f 0b         ud2
/// ```
pub const PVM_RETURN: u64 = 0x0a0;
const PVM_RETURN_CODE: &[u8] = &[
    0x48, 0x87, 0x04, 0x24, 0x48, 0x85, 0xc0, 0x74, 0x03, 0x0f, 0x22, 0xd8, 0x58, 0x48, 0x8b, 0x24,
    0x24, 0x0f, 0x05, 0x0f, 0x0b,
];
/// Offset of the `ERETU` `syscall` inside the PVM return stub (`MSR_PVM_RETU_RIP`).
pub const PVM_RETU: u64 = PVM_RETURN + 17;

/// Offset of the PVM event entry (`MSR_PVM_EVENT_ENTRY`) for events from user mode. PVM
/// delivers them with the vector, error code, CR2, RIP, RFLAGS, RCX and R11 in the PVCS
/// and every other register untouched:
///
/// ```text
/// e6 82         out 0x82, al
/// 0f 0b         ud2
/// ```
pub const PVM_EVENT_USER: u64 = 0x400;
/// Offset of the PVM event entry for events from supervisor mode (entry + 512):
///
/// ```text
/// e6 83         out 0x83, al
/// 0f 0b         ud2
/// ```
pub const PVM_EVENT_SUPERVISOR: u64 = PVM_EVENT_USER + 512;
/// I/O port of the PVM user-event exit.
pub const PVM_USER_EVENT_PORT: u16 = 0x82;
/// I/O port of the PVM supervisor-event exit.
pub const PVM_SUPERVISOR_EVENT_PORT: u16 = 0x83;

/// True when `off` (a code-page offset) lies in a return stub: nothing of the
/// application has run since the host last loaded the registers.
pub fn is_return_path(off: u64) -> bool {
    off < RETURN_END || (PVM_RETURN..PVM_RETURN + PVM_RETURN_CODE.len() as u64).contains(&off)
}

/// Offset of the `syscall` entry (`LSTAR`). The CPU leaves RCX = user RIP, R11 = user
/// RFLAGS, RSP = user RSP; nothing is saved because nothing is clobbered:
///
/// ```text
/// e6 80         out 0x80, al
/// 0f 0b         ud2
/// ```
pub const SYSCALL_ENTRY: u64 = 0x080;

/// Offset of the compatibility-mode `syscall` entry (`CSTAR`), reported as SIGSEGV:
///
/// ```text
/// e6 81         out 0x81, al
/// 0f 0b         ud2
/// ```
pub const COMPAT_SYSCALL_ENTRY: u64 = 0x090;

/// I/O port of the `syscall` exit.
pub const SYSCALL_PORT: u16 = 0x80;
/// I/O port of the compatibility-mode `syscall` exit.
pub const COMPAT_SYSCALL_PORT: u16 = 0x81;

// The PVM stubs do not overlap the others.
const _: () = assert!(PVM_RETURN >= COMPAT_SYSCALL_ENTRY + 4);
const _: () = assert!(PVM_RETURN + PVM_RETURN_CODE.len() as u64 <= EXCEPTIONS);
const _: () = assert!(PVM_EVENT_SUPERVISOR + 4 <= 4096);

/// Offset of the exception stub for vector 0; vector `v` is at `EXCEPTIONS + 16 * v`.
pub const EXCEPTIONS: u64 = 0x100;
/// Number of exception vectors with stubs.
pub const EXCEPTION_COUNT: u8 = 32;

/// Vectors for which the CPU pushes an error code.
pub fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// The stub of exception `vector`: an exit, nothing else. The CPU has switched to RSP0
/// (or IST1) and pushed `ss, rsp, rflags, cs, rip` and, for the vectors of
/// [`has_error_code`], an error code; the host reads that frame at RSP and knows from
/// the vector whether the error code is there. CR2 of a #PF comes from the system
/// registers. Every instruction here is one more emulated instruction under PVM, so
/// there are none but the exit:
///
/// ```text
/// e6 VV   out VV, al
/// 0f 0b   ud2
/// ```
pub fn exception_stub(vector: u8) -> Vec<u8> {
    vec![0xe6, vector, 0x0f, 0x0b]
}

/// Offset of the `out` instruction of the exception stub of `vector`.
pub fn exception_out_offset(vector: u8) -> u64 {
    let stub = exception_stub(vector);
    EXCEPTIONS + 16 * vector as u64 + stub.len() as u64 - 4
}

/// The whole code page.
pub fn code_page() -> Vec<u8> {
    // Fill with int3 so that a stray jump into padding faults in ring 0.
    let mut page = vec![0xccu8; 4096];
    let mut put = |off: u64, code: &[u8]| {
        let off = off as usize;
        page[off..off + code.len()].copy_from_slice(code);
    };
    put(RETURN_IRET, RETURN_IRET_CODE);
    put(RETURN_SYSRET, RETURN_SYSRET_CODE);
    put(SYSCALL_ENTRY, &[0xe6, SYSCALL_PORT as u8, 0x0f, 0x0b]);
    put(
        COMPAT_SYSCALL_ENTRY,
        &[0xe6, COMPAT_SYSCALL_PORT as u8, 0x0f, 0x0b],
    );
    for v in 0..EXCEPTION_COUNT {
        put(EXCEPTIONS + 16 * v as u64, &exception_stub(v));
    }
    put(PVM_RETURN, PVM_RETURN_CODE);
    put(
        PVM_EVENT_USER,
        &[0xe6, PVM_USER_EVENT_PORT as u8, 0x0f, 0x0b],
    );
    put(
        PVM_EVENT_SUPERVISOR,
        &[0xe6, PVM_SUPERVISOR_EVENT_PORT as u8, 0x0f, 0x0b],
    );
    page
}

// The stubs do not overlap and fit the code page.
const _: () = assert!(RETURN_IRET + RETURN_IRET_CODE.len() as u64 <= RETURN_SYSRET);
const _: () = assert!(RETURN_SYSRET + RETURN_SYSRET_CODE.len() as u64 <= RETURN_END);
const _: () = assert!(COMPAT_SYSCALL_ENTRY + 4 <= EXCEPTIONS);
const _: () = assert!(EXCEPTIONS + 16 * EXCEPTION_COUNT as u64 <= 4096);

/// The code of the user-mode syscall page ([`crate::layout::SYSCALL_PAGE_OFF`]):
/// `out 0x80, al; ud2`.
pub fn user_syscall_code() -> [u8; 4] {
    [0xe6, SYSCALL_PORT as u8, 0x0f, 0x0b]
}

/// Offset in the fast syscall code of its `out` (see [`fast_syscall_code`]).
pub const FAST_SYSCALL_OUT: u64 = 46;

/// Offset in the fast syscall code of its `xsave64`: RAX and RDX are saved in the slot
/// and hold -1 there.
pub const FAST_SYSCALL_XSAVE: u64 = 24;

/// The per-vCPU user-mode syscall entry of fast FPU mode, placed at guest-virtual
/// `code_va` (in the vCPU's block) and saving into the FPU save page at `slot_va`.
/// It runs in user mode (PVM's emulated mode: `syscall` does not leave it), natively and
/// without exits, so the FPU state is saved here instead of by `KVM_GET_XSAVE`:
///
/// ```text
/// 48 89 05 d32        mov [rip+d], rax      ; slot + FPU_SLOT_REGS
/// 48 89 15 d32        mov [rip+d], rdx      ; slot + FPU_SLOT_REGS + 8
/// b8 ff ff ff ff      mov eax, -1
/// ba ff ff ff ff      mov edx, -1           ; every component XCR0 enables
/// 48 0f ae 25 d32     xsave64 [rip+d]       ; slot + 0 (64-byte aligned)
/// 48 8b 15 d32        mov rdx, [rip+d]
/// 48 8b 05 d32        mov rax, [rip+d]      ; every register as at the syscall
/// e6 80               out 0x80, al          ; at FAST_SYSCALL_OUT
/// 0f 0b               ud2
/// ```
pub fn fast_syscall_code(code_va: u64, slot_va: u64) -> Vec<u8> {
    let regs = slot_va + crate::layout::FPU_SLOT_REGS;
    let mut c: Vec<u8> = Vec::with_capacity(64);
    // Appends `prefix` then the displacement from the end of this instruction to `target`.
    let rel = |c: &mut Vec<u8>, prefix: &[u8], target: u64| {
        c.extend_from_slice(prefix);
        let next = code_va + c.len() as u64 + 4;
        c.extend_from_slice(&(target.wrapping_sub(next) as i64 as i32).to_le_bytes());
    };
    rel(&mut c, &[0x48, 0x89, 0x05], regs);
    rel(&mut c, &[0x48, 0x89, 0x15], regs + 8);
    c.extend_from_slice(&[0xb8, 0xff, 0xff, 0xff, 0xff, 0xba, 0xff, 0xff, 0xff, 0xff]);
    debug_assert_eq!(c.len() as u64, FAST_SYSCALL_XSAVE);
    rel(&mut c, &[0x48, 0x0f, 0xae, 0x25], slot_va);
    rel(&mut c, &[0x48, 0x8b, 0x15], regs + 8);
    rel(&mut c, &[0x48, 0x8b, 0x05], regs);
    debug_assert_eq!(c.len() as u64, FAST_SYSCALL_OUT);
    c.extend_from_slice(&[0xe6, SYSCALL_PORT as u8, 0x0f, 0x0b]);
    c
}

/// Where a stub exit came from, judged by the code-page offset of RIP at the exit.
/// KVM reports `out` exits with RIP at the instruction (or, on some kernels, just past
/// it); both are accepted.
pub fn exit_site_matches(rip_off: u64, out_off: u64) -> bool {
    rip_off == out_off || rip_off == out_off + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_syscall_code_addresses_its_slot() {
        let code_va = 0x7f80_0001_4000;
        let slot_va = 0x7f7f_ffe0_3000;
        let c = fast_syscall_code(code_va, slot_va);
        assert_eq!(&c[FAST_SYSCALL_OUT as usize..], &[0xe6, 0x80, 0x0f, 0x0b]);
        // xsave64 [rip+d] at 24: d counts from the end of the instruction (32).
        assert_eq!(&c[24..28], &[0x48, 0x0f, 0xae, 0x25]);
        let d = i32::from_le_bytes(c[28..32].try_into().unwrap());
        assert_eq!((code_va + 32).wrapping_add(d as i64 as u64), slot_va);
        let d = i32::from_le_bytes(c[3..7].try_into().unwrap());
        assert_eq!((code_va + 7).wrapping_add(d as i64 as u64), slot_va + 0xf00);
    }

    #[test]
    fn stubs_fit_their_slots() {
        for v in 0..EXCEPTION_COUNT {
            assert!(exception_stub(v).len() <= 16, "vector {v}");
        }
    }

    #[test]
    fn out_offsets_point_at_out() {
        let page = code_page();
        for v in 0..EXCEPTION_COUNT {
            let o = exception_out_offset(v) as usize;
            assert_eq!(&page[o..o + 2], &[0xe6, v]);
        }
        let s = SYSCALL_ENTRY as usize;
        assert_eq!(&page[s..s + 2], &[0xe6, 0x80]);
        let r = PVM_RETU as usize;
        assert_eq!(&page[r..r + 2], &[0x0f, 0x05]);
    }
}
