//! Application register state: general registers, FS/GS base and FPU/XSAVE state.

/// The general registers, laid out as the kernel's `struct user_regs_struct` so that
/// platforms can hand them to `PTRACE_GETREGS`/`PTRACE_SETREGS` unchanged.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct GeneralRegisters {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    /// The system call number on a [`crate::Trap::Syscall`].
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    /// FS base: the thread pointer (TLS) of x86-64 Linux programs.
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

const _: () = assert!(core::mem::size_of::<GeneralRegisters>() == 27 * 8);

/// User code segment selector of x86-64 Linux.
pub const USER_CS: u64 = 0x33;
/// User data/stack segment selector of x86-64 Linux.
pub const USER_SS: u64 = 0x2b;

impl GeneralRegisters {
    /// Registers for a fresh thread that starts at `ip` with stack pointer `sp`:
    /// every other register zero, interrupts enabled, user segments.
    pub fn new_user(ip: u64, sp: u64) -> Self {
        GeneralRegisters {
            rip: ip,
            rsp: sp,
            cs: USER_CS,
            ss: USER_SS,
            eflags: 0x202,
            ..Default::default()
        }
    }

    /// The system call number of a [`crate::Trap::Syscall`].
    pub fn syscall_number(&self) -> u64 {
        self.orig_rax
    }

    /// The six system call arguments in ABI order (`rdi, rsi, rdx, r10, r8, r9`).
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }

    /// Sets the system call return value (`rax`).
    pub fn set_syscall_return(&mut self, value: u64) {
        self.rax = value;
    }
}

/// Size in bytes of the XSAVE area this host uses (CPUID leaf 0xD), at least the
/// 512-byte legacy area plus the 64-byte XSAVE header.
pub fn fpu_state_size() -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        // CPUID is available on every x86-64 CPU; leaf 0xD sub-leaf 0 EBX is the XSAVE
        // area size for the features enabled in XCR0.
        let r = core::arch::x86_64::__cpuid_count(0xd, 0);
        (r.ebx as usize).max(FPU_STATE_SIZE)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        FPU_STATE_SIZE
    }
}

/// The minimum size of an [`FpuState`]: legacy FXSAVE area plus XSAVE header.
pub const FPU_STATE_SIZE: usize = 512 + 64;

/// FPU, SSE and extended (AVX...) state in the standard XSAVE layout: the 512-byte
/// FXSAVE legacy area first, then the 64-byte XSAVE header, then the extended
/// components at their CPUID-given offsets.
#[derive(Clone, PartialEq, Eq)]
pub struct FpuState {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for FpuState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FpuState")
            .field("len", &self.bytes.len())
            .field("fcw", &self.fcw())
            .field("mxcsr", &self.mxcsr())
            .finish()
    }
}

impl Default for FpuState {
    fn default() -> Self {
        Self::new()
    }
}

impl FpuState {
    /// The state of a fresh thread after `execve`: x87 control word 0x37f, MXCSR 0x1f80,
    /// all registers zero.
    pub fn new() -> Self {
        let mut bytes = vec![0u8; fpu_state_size()];
        bytes[0..2].copy_from_slice(&0x037fu16.to_le_bytes());
        bytes[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        bytes[28..32].copy_from_slice(&0xffffu32.to_le_bytes());
        // XSTATE_BV: x87 and SSE present (their values above); the rest in init state.
        bytes[512..520].copy_from_slice(&3u64.to_le_bytes());
        FpuState { bytes }
    }

    /// The raw XSAVE bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The raw XSAVE bytes, for platforms that fill them.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The x87 control word.
    pub fn fcw(&self) -> u16 {
        u16::from_le_bytes([self.bytes[0], self.bytes[1]])
    }

    /// The SSE control and status register.
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes([
            self.bytes[24],
            self.bytes[25],
            self.bytes[26],
            self.bytes[27],
        ])
    }

    /// Replaces the state from raw bytes (a signal frame's saved state). Copies at most
    /// the state's own length; a shorter source leaves the rest unchanged.
    pub fn copy_from(&mut self, src: &[u8]) {
        let n = src.len().min(self.bytes.len());
        self.bytes[..n].copy_from_slice(&src[..n]);
    }
}

/// The full register state of one application thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registers {
    /// General registers, instruction pointer, flags, segments, FS and GS base.
    pub gp: GeneralRegisters,
    /// FPU/SSE/AVX state.
    pub fpu: FpuState,
}

impl Registers {
    /// Registers for a fresh thread that starts at `ip` with stack pointer `sp`.
    pub fn new_user(ip: u64, sp: u64) -> Self {
        Registers {
            gp: GeneralRegisters::new_user(ip, sp),
            fpu: FpuState::new(),
        }
    }
}
