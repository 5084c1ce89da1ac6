//! The guest-physical and guest-virtual layout of the VM, and the x86 descriptor
//! encodings (GDT, TSS, IDT, page-table entries) that live in it.
//!
//! Guest-physical memory:
//!
//! ```text
//! 0 .. capacity                      the memory file: guest-physical address == file offset
//! private_gpa .. +PRIVATE_SIZE       the private region (anonymous memory of this crate)
//!   +0x0000                          entry stubs (one code page)
//!   +0x1000                          IDT (256 gates)
//!   +0x2000                          kernel PDPT (shared by every address space)
//!   +0x3000                          kernel PD
//!   +0x4000 .. +0x8000               kernel PTs (map KERNEL_AREA_SIZE with 4 KiB pages)
//!   +VCPU_BASE + i * VCPU_BLOCK      per-vCPU block: GDT + TSS page, IST stack, RSP0 stack
//!   +KERNEL_AREA_SIZE ..             page-table pages of address spaces (never mapped)
//! ```
//!
//! Guest-virtual memory of every address space: the application below [`KERNEL_BASE`];
//! the kernel area of the private region at [`KERNEL_BASE`] (PML4 slot 255, the last
//! 512 GiB of the lower half), supervisor-only. The kernel lives in the lower half
//! because PVM (see [`crate::vcpu::Abi`]) only lets a guest use lower-half addresses;
//! one layout serves both kinds of KVM.
//!
//! This module is pure data and arithmetic; it holds no `unsafe` code.

/// Page size.
pub const PAGE: u64 = 4096;

/// Size of the private region (reserved, pages are committed only when touched).
pub const PRIVATE_SIZE: u64 = 1 << 30;

/// Size of the part of the private region that is mapped into every address space.
pub const KERNEL_AREA_SIZE: u64 = 8 << 20;

/// Guest-virtual address of private offset 0 (PML4 slot 255); also the end of the
/// application's address space.
pub const KERNEL_BASE: u64 = 0x7f80_0000_0000;
/// The PML4 slot of the kernel area.
pub const KERNEL_PML4_SLOT: u64 = 255;

/// Offset of the entry-stub code page.
pub const STUBS_OFF: u64 = 0x0000;
/// Offset of the IDT.
pub const IDT_OFF: u64 = 0x1000;
/// Offset of the kernel PDPT (entry 255 of every address space's PML4 points here).
pub const KPDPT_OFF: u64 = 0x2000;
/// Offset of the kernel PD.
pub const KPD_OFF: u64 = 0x3000;
/// Offset of the first kernel PT.
pub const KPT_OFF: u64 = 0x4000;
/// Number of kernel PTs (each maps 2 MiB).
pub const KPT_COUNT: u64 = KERNEL_AREA_SIZE / (2 << 20);
/// Offset of the first per-vCPU block.
pub const VCPU_BASE: u64 = 0x10000;
/// Size of one per-vCPU block.
pub const VCPU_BLOCK: u64 = 0x5000;
/// Offset of the PVM vCPU struct (PVCS) page inside a per-vCPU block.
pub const PVCS_IN_BLOCK: u64 = 0x4000;
/// Most vCPUs the kernel area has room for.
pub const MAX_VCPUS: usize = ((KERNEL_AREA_SIZE - VCPU_BASE) / VCPU_BLOCK) as usize;

/// Offset of the GDT inside a per-vCPU block.
pub const GDT_IN_BLOCK: u64 = 0x0;
/// Number of 8-byte GDT slots (the TSS descriptor takes two).
pub const GDT_ENTRIES: u64 = 10;
/// Offset of the TSS inside a per-vCPU block.
pub const TSS_IN_BLOCK: u64 = 0x80;
/// Size of the 64-bit TSS.
pub const TSS_SIZE: u64 = TSS_IO_BITMAP + TSS_IO_BITMAP_LEN + 1;
/// Offset of the I/O permission bitmap in the TSS (right after the 104-byte TSS).
const TSS_IO_BITMAP: u64 = 104;
/// Bytes of I/O bitmap: ports 0..0x88 (every port above is denied by the TSS limit).
const TSS_IO_BITMAP_LEN: u64 = 17;
/// Top of the IST1 stack (double fault, NMI, machine check) inside a per-vCPU block.
pub const IST1_TOP_IN_BLOCK: u64 = 0x2000;
/// Top of the RSP0 stack inside a per-vCPU block.
pub const RSP0_TOP_IN_BLOCK: u64 = 0x4000;
/// Lowest stack address the trap decoder accepts for an exception frame.
pub const STACK_LOW_IN_BLOCK: u64 = 0x1000;
/// The return frame `[cr3, rip, cs, rflags, rsp, ss]` written by the host before entry.
pub const RETURN_FRAME_IN_BLOCK: u64 = RSP0_TOP_IN_BLOCK - 6 * 8;

/// Kernel code selector (64-bit, DPL 0), as in Linux.
pub const KERNEL_CS: u16 = 0x10;
/// Kernel data selector (DPL 0), as in Linux.
pub const KERNEL_DS: u16 = 0x18;
/// 32-bit user code selector, as in Linux (base of the `sysret` selector arithmetic).
pub const USER32_CS: u16 = 0x23;
/// TSS selector, as in Linux.
pub const TSS_SEL: u16 = 0x40;

/// `STAR`: `syscall` loads CS=0x10/SS=0x18; `sysretq` loads CS=0x23+16=0x33, SS=0x23+8=0x2b.
pub const STAR: u64 = ((USER32_CS as u64) << 48) | ((KERNEL_CS as u64) << 32);
/// `SFMASK`: flags cleared on `syscall` entry (TF, DF, IF, IOPL, NT, AC), as in Linux.
pub const SFMASK: u64 = 0x4_7700;

/// CR0: PE, MP, ET, NE, WP, AM, PG.
pub const CR0: u64 = 0x8005_0033;
/// CR4 bits always set: PAE, OSFXSR, OSXMMEXCPT, OSXSAVE.
pub const CR4_BASE: u64 = (1 << 5) | (1 << 9) | (1 << 10) | (1 << 18);
/// CR4.UMIP (set when the CPU has it: `sgdt`/`sidt` fault in ring 3, as on Linux).
pub const CR4_UMIP: u64 = 1 << 11;
/// CR4.SMEP (set when the CPU has it).
pub const CR4_SMEP: u64 = 1 << 20;
/// CR4.SMAP (set when the CPU has it).
pub const CR4_SMAP: u64 = 1 << 21;
/// CR4 under PVM: PAE, OSFXSR, OSXMMEXCPT, OSXSAVE (PVM refuses SMAP and supplies SMEP
/// itself).
pub const CR4_PVM: u64 = CR4_BASE;
/// EFER: SCE, LME, LMA, NXE.
pub const EFER: u64 = 0x1 | 0x100 | 0x400 | 0x800;

/// Offsets in the PVM vCPU struct (PVCS) shared with the PVM hypervisor.
pub mod pvcs {
    /// `u64 event_flags` (bit 9: supervisor interrupt flag).
    pub const EVENT_FLAGS: u64 = 0;
    /// `u64 cr2` of a page fault.
    pub const CR2: u64 = 8;
    /// `u16 user_cs`.
    pub const USER_CS: u64 = 64;
    /// `u16 user_ss`.
    pub const USER_SS: u64 = 66;
    /// `u16 event_errcode`.
    pub const EVENT_ERRCODE: u64 = 68;
    /// `u16 event_vector`: vector in bits 0..8, `STD` in bit 8.
    pub const EVENT_VECTOR: u64 = 70;
    /// `u64 user_gsbase`.
    pub const USER_GSBASE: u64 = 72;
    /// `u32 eflags`.
    pub const EFLAGS: u64 = 80;
    /// `u64 rip`.
    pub const RIP: u64 = 88;
    /// `u64 rcx`.
    pub const RCX: u64 = 96;
    /// `u64 r11`.
    pub const R11: u64 = 104;
    /// Size of the struct.
    pub const SIZE: usize = 128;
    /// `PVM_PVCS_EVENT_VECTOR_STD`: set by the supervisor before returning to user mode.
    pub const VECTOR_STD: u16 = 1 << 8;
}

/// Page-table entry bits.
pub mod pte {
    /// Present.
    pub const P: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User accessible.
    pub const US: u64 = 1 << 2;
    /// Accessed (preset so the CPU need not write it).
    pub const A: u64 = 1 << 5;
    /// Dirty (preset so the CPU need not write it).
    pub const D: u64 = 1 << 6;
    /// No execute.
    pub const NX: u64 = 1 << 63;
    /// The physical-address bits of an entry.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
    /// Flags of a non-leaf user entry: the leaf decides the protection.
    pub const TABLE_USER: u64 = P | RW | US | A;
    /// Flags of a non-leaf kernel entry.
    pub const TABLE_KERNEL: u64 = P | RW | A;
}

// The per-vCPU blocks and the kernel PTs fit the kernel area.
const _: () = assert!(vcpu_block(MAX_VCPUS) <= KERNEL_AREA_SIZE);
const _: () = assert!(KPT_OFF + KPT_COUNT * PAGE <= VCPU_BASE);

/// Guest-virtual address of a private-region offset inside the kernel area.
pub const fn kva(off: u64) -> u64 {
    KERNEL_BASE + off
}

/// The user-mode `syscall` entry page (PVM's emulated mode only): `syscall` there reaches
/// `LSTAR` without leaving user mode, so `LSTAR` points at this user-accessible page
/// holding `out 0x80, al`, allowed to ring 3 by the TSS I/O bitmap. This spares the `#PF`
/// that fetching a supervisor-only stub raises and its delivery through the IDT.
pub const SYSCALL_PAGE_OFF: u64 = 0x8000;
const _: () = assert!(SYSCALL_PAGE_OFF >= KPT_OFF + KPT_COUNT * PAGE);
const _: () = assert!(SYSCALL_PAGE_OFF + PAGE <= VCPU_BASE);

/// Guest-virtual base of the per-vCPU FPU save pages (fast FPU mode, see
/// [`crate::stubs::fast_syscall_code`]): vCPU `i` saves at `FPU_SLOT_BASE + i * PAGE` in
/// the address space it runs. The application may not map this range (it lies above
/// the platform's `max_user_address` in that mode).
pub const FPU_SLOT_BASE: u64 = KERNEL_BASE - (2 << 20);
/// Offset in an FPU save page of the saved RAX and RDX (after the XSAVE image).
pub const FPU_SLOT_REGS: u64 = 0xf00;
const _: () = assert!(MAX_VCPUS as u64 * PAGE <= KERNEL_BASE - FPU_SLOT_BASE);

/// Offset of the per-vCPU block of vCPU `index`.
pub const fn vcpu_block(index: usize) -> u64 {
    VCPU_BASE + index as u64 * VCPU_BLOCK
}

/// The GDT of one vCPU, Linux's layout: 0x08 kernel32 CS, 0x10 kernel CS, 0x18 kernel DS,
/// 0x23 user32 CS, 0x2b user DS, 0x33 user CS, 0x40 TSS (two slots). Accessed bits are
/// preset so that loading a selector never writes to the table.
pub fn gdt(tss_base: u64) -> [u64; GDT_ENTRIES as usize] {
    let limit = TSS_SIZE - 1;
    // Busy 64-bit TSS (type 0xb), present, DPL 0.
    let tss_low = (limit & 0xffff)
        | ((tss_base & 0xff_ffff) << 16)
        | (0x8b << 40)
        | (((limit >> 16) & 0xf) << 48)
        | (((tss_base >> 24) & 0xff) << 56);
    let tss_high = tss_base >> 32;
    [
        0,
        0x00cf_9b00_0000_ffff, // 0x08: 32-bit kernel code
        0x00af_9b00_0000_ffff, // 0x10: 64-bit kernel code (L=1)
        0x00cf_9300_0000_ffff, // 0x18: kernel data
        0x00cf_fb00_0000_ffff, // 0x23: 32-bit user code
        0x00cf_f300_0000_ffff, // 0x2b: user data
        0x00af_fb00_0000_ffff, // 0x33: 64-bit user code (L=1)
        0,
        tss_low,  // 0x40: TSS, low half
        tss_high, // TSS, high half
    ]
}

/// The 104-byte 64-bit TSS: RSP0 for entries from ring 3, IST1 for the vectors that
/// must never run on a possibly bad stack, and an I/O bitmap offset past the limit
/// (every `in`/`out` from ring 3 faults).
///
/// The I/O permission bitmap denies every port to ring 3 except `user_port` (the
/// user-mode syscall entry's exit port, see [`SYSCALL_PAGE_OFF`]), when given.
pub fn tss(rsp0: u64, ist1: u64, user_port: Option<u16>) -> [u8; TSS_SIZE as usize] {
    let mut t = [0xffu8; TSS_SIZE as usize];
    t[..TSS_IO_BITMAP as usize].fill(0);
    t[4..12].copy_from_slice(&rsp0.to_le_bytes());
    t[36..44].copy_from_slice(&ist1.to_le_bytes());
    t[102..104].copy_from_slice(&(TSS_IO_BITMAP as u16).to_le_bytes());
    if let Some(port) = user_port.filter(|&p| u64::from(p) < 8 * TSS_IO_BITMAP_LEN) {
        t[TSS_IO_BITMAP as usize + usize::from(port / 8)] &= !(1 << (port % 8));
    }
    t
}

/// One 16-byte 64-bit interrupt gate to `handler` in the kernel code segment.
pub fn idt_gate(handler: u64, dpl: u8, ist: u8) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    g[2..4].copy_from_slice(&KERNEL_CS.to_le_bytes());
    g[4] = ist & 7;
    // Present, DPL, type 0xe (64-bit interrupt gate: IF cleared on entry).
    g[5] = 0x80 | ((dpl & 3) << 5) | 0xe;
    g[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    g[8..12].copy_from_slice(&((handler >> 32) as u32).to_le_bytes());
    g
}

/// Page-table indices (PML4, PDPT, PD, PT) of a virtual address.
pub fn indices(va: u64) -> [usize; 4] {
    [
        ((va >> 39) & 511) as usize,
        ((va >> 30) & 511) as usize,
        ((va >> 21) & 511) as usize,
        ((va >> 12) & 511) as usize,
    ]
}

/// True for an address in the lower canonical half usable by the application.
pub fn is_user_canonical(addr: u64) -> bool {
    addr < 0x0000_8000_0000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_matches_linux_selectors() {
        let g = gdt(0x7f80_0001_0080);
        // User CS: present, DPL 3, code, long mode.
        assert_eq!((g[6] >> 40) & 0xff, 0xfb);
        assert_eq!((g[6] >> 53) & 1, 1);
        // User DS at 0x2b: DPL 3 data.
        assert_eq!((g[5] >> 40) & 0xff, 0xf3);
        // TSS base reassembles.
        let base = ((g[8] >> 16) & 0xff_ffff) | (((g[8] >> 56) & 0xff) << 24) | (g[9] << 32);
        assert_eq!(base, 0x7f80_0001_0080);
        // sysret arithmetic yields Linux's selectors.
        assert_eq!(((STAR >> 48) + 16) | 3, 0x33);
        assert_eq!(((STAR >> 48) + 8) | 3, 0x2b);
    }

    #[test]
    fn idt_gate_encodes_handler() {
        let g = idt_gate(0x7f80_1234_5678, 3, 1);
        let lo = u16::from_le_bytes([g[0], g[1]]) as u64;
        let mid = u16::from_le_bytes([g[6], g[7]]) as u64;
        let hi = u32::from_le_bytes([g[8], g[9], g[10], g[11]]) as u64;
        assert_eq!(lo | (mid << 16) | (hi << 32), 0x7f80_1234_5678);
        assert_eq!(g[5], 0xee);
        assert_eq!(g[4], 1);
    }

    #[test]
    fn kernel_area_fits() {
        assert_eq!(indices(KERNEL_BASE)[0], KERNEL_PML4_SLOT as usize);
        assert_eq!(indices(KERNEL_BASE - PAGE), [254, 511, 511, 511]);
    }
}
