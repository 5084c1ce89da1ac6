//! Signal frames on the application stack, laid out as Linux x86-64 writes them
//! (`struct rt_sigframe`), and `rt_sigreturn`.
//!
//! The frame is `pretcode` (the `sa_restorer` the handler returns to), the kernel's
//! `struct ucontext` (flags, link, `uc_stack`, `struct sigcontext` with every register
//! and the FPU state pointer, the saved mask) and the `siginfo`. The XSAVE area sits
//! above it, 64-byte aligned, with the `fpx_sw_bytes` magic in its software-reserved
//! bytes and `FP_XSTATE_MAGIC2` after it, so that glibc, musl and debuggers accept it.

use linux_abi::Errno;
use linux_abi::signal::SigInfo;
use platform::{Registers, USER_CS, USER_SS, fpu_state_size};

use super::signal::{SS_DISABLE, SS_ONSTACK, SigAction, SigAltStack, SigSet};
use crate::mm::MemoryManager;

/// `FP_XSTATE_MAGIC1`.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// `FP_XSTATE_MAGIC2`.
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// `UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS`.
const UC_FLAGS: u64 = 1 | 2 | UC_STRICT_RESTORE_SS;
/// `UC_STRICT_RESTORE_SS`: `rt_sigreturn` restores ss as the frame has it.
const UC_STRICT_RESTORE_SS: u64 = 4;
/// Words in `struct rt_sigframe` (440 bytes).
const FRAME_WORDS: usize = 55;
/// Word index of `uc_mcontext` (the first sigcontext register, `r8`).
const MCTX: usize = 6;
/// Word index of `uc_sigmask`.
const SIGMASK: usize = 38;
/// Word index of the siginfo.
const INFO: usize = 39;
/// The x86-64 red zone below the stack pointer that a frame must not overwrite.
const RED_ZONE: u64 = 128;
/// The flags `rt_sigreturn` restores: AC, OF, DF, TF, SF, ZF, AF, PF, CF and RF.
const FIX_EFLAGS: u64 =
    0x4_0000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x1_0000;

/// Whether `sp` lies on the alternate stack `ss`.
pub fn on_altstack(ss: &SigAltStack, sp: u64) -> bool {
    ss.flags & SS_DISABLE == 0 && sp > ss.sp && sp - ss.sp <= ss.size
}

/// The `ss_flags` `sigaltstack` reports at stack pointer `sp`.
pub fn altstack_flags(ss: &SigAltStack, sp: u64) -> i32 {
    if ss.size == 0 || ss.flags & SS_DISABLE != 0 {
        SS_DISABLE
    } else if on_altstack(ss, sp) {
        SS_ONSTACK
    } else {
        0
    }
}

fn xfeatures() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let r = core::arch::x86_64::__cpuid_count(0xd, 0);
        u64::from(r.eax) | (u64::from(r.edx) << 32)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        3
    }
}

/// Writes a frame for handler `act` of signal `info` on the stack of `regs` (or the
/// alternate stack) into `mm`, and points `regs` at the handler. `mask` is the mask the
/// handler's return restores.
pub fn setup_frame(
    mm: &MemoryManager,
    regs: &mut Registers,
    act: &SigAction,
    info: &SigInfo,
    mask: SigSet,
    altstack: &SigAltStack,
) -> Result<(), Errno> {
    let gp = &regs.gp;
    let mut sp = gp.rsp;
    if act.flags & super::signal::SA_ONSTACK != 0
        && altstack.flags & SS_DISABLE == 0
        && altstack.size != 0
        && !on_altstack(altstack, sp)
    {
        sp = altstack.sp.wrapping_add(altstack.size);
    } else {
        sp = sp.wrapping_sub(RED_ZONE);
    }
    let xsize = fpu_state_size().min(regs.fpu.as_bytes().len());
    let fp = (sp.wrapping_sub(xsize as u64 + 4)) & !63;
    let frame = ((fp.wrapping_sub((FRAME_WORDS * 8) as u64)) & !15).wrapping_sub(8);

    // The FPU state with the software-reserved bytes describing it.
    let mut xs = regs.fpu.as_bytes()[..xsize].to_vec();
    xs[464..468].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    xs[468..472].copy_from_slice(&(xsize as u32 + 4).to_le_bytes());
    xs[472..480].copy_from_slice(&xfeatures().to_le_bytes());
    xs[480..484].copy_from_slice(&(xsize as u32).to_le_bytes());
    xs[484..512].fill(0);
    xs.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());

    let mut w = [0u64; FRAME_WORDS];
    w[0] = act.restorer;
    w[1] = UC_FLAGS;
    w[2] = 0;
    w[3] = altstack.sp;
    w[4] = altstack_flags(altstack, gp.rsp) as u32 as u64;
    w[5] = altstack.size;
    let m = MCTX;
    let regs_in_order = [
        gp.r8, gp.r9, gp.r10, gp.r11, gp.r12, gp.r13, gp.r14, gp.r15, gp.rdi, gp.rsi, gp.rbp,
        gp.rbx, gp.rdx, gp.rax, gp.rcx, gp.rsp, gp.rip, gp.eflags,
    ];
    w[m..m + 18].copy_from_slice(&regs_in_order);
    // cs, gs, fs, ss (16 bits each).
    w[m + 18] = (gp.cs & 0xffff)
        | ((gp.gs & 0xffff) << 16)
        | ((gp.fs & 0xffff) << 32)
        | ((gp.ss & 0xffff) << 48);
    // err, trapno, oldmask, cr2.
    let is_fault = matches!(
        info.signo,
        linux_abi::signal::SIGSEGV | linux_abi::signal::SIGBUS
    ) && info.code > 0;
    w[m + 19] = if is_fault { 4 } else { 0 };
    w[m + 20] = if is_fault { 14 } else { 0 };
    w[m + 21] = mask;
    w[m + 22] = if is_fault { info.addr() } else { 0 };
    w[m + 23] = fp;
    w[SIGMASK] = mask;
    let info_words: [u64; 16] = zerocopy::transmute!(*info);
    w[INFO..INFO + 16].copy_from_slice(&info_words);

    mm.copy_out(fp, &xs)?;
    mm.write_obj(frame, &w)?;

    let gp = &mut regs.gp;
    gp.rip = act.handler;
    gp.rsp = frame;
    gp.rdi = info.signo as u64;
    gp.rsi = frame + (INFO * 8) as u64;
    gp.rdx = frame + 8;
    gp.rax = 0;
    gp.eflags &= !(0x100 | 0x400 | 0x1_0000 | 0x4_0000);
    gp.cs = USER_CS;
    gp.ss = USER_SS;
    // The handler starts with a clean FPU, as on Linux.
    regs.fpu = platform::FpuState::new();
    Ok(())
}

/// What `rt_sigreturn` restores besides the registers.
#[derive(Debug, Clone, Copy)]
pub struct Restored {
    /// The signal mask to install.
    pub mask: SigSet,
    /// The alternate stack the frame recorded.
    pub altstack: SigAltStack,
}

/// Restores `regs` from the frame `rt_sigreturn` finds at the stack pointer.
pub fn restore_frame(mm: &MemoryManager, regs: &mut Registers) -> Result<Restored, Errno> {
    let frame = regs.gp.rsp.wrapping_sub(8);
    let w: [u64; FRAME_WORDS] = mm.read_obj(frame)?;
    let m = MCTX;
    let gp = &mut regs.gp;
    [
        gp.r8, gp.r9, gp.r10, gp.r11, gp.r12, gp.r13, gp.r14, gp.r15, gp.rdi, gp.rsi, gp.rbp,
        gp.rbx, gp.rdx, gp.rax, gp.rcx, gp.rsp, gp.rip,
    ] = <[u64; 17]>::try_from(&w[m..m + 17]).map_err(|_| Errno::EFAULT)?;
    gp.eflags = (gp.eflags & !FIX_EFLAGS) | (w[m + 17] & FIX_EFLAGS);
    // Linux restores cs and ss with the user privilege level forced (`| 3`); returning to
    // a code segment other than the 64-bit user one (or, under UC_STRICT_RESTORE_SS, to
    // another stack segment) makes the return to user mode fault: SIGSEGV. A 32-bit code
    // segment would switch the task to compatibility mode, which the platforms do not
    // run. Without the strict flag Linux replaces an unusable ss with the user one.
    let segs = w[m + 18];
    let cs = (segs & 0xffff) | 3;
    let ss = ((segs >> 48) & 0xffff) | 3;
    if cs != USER_CS || (w[1] & UC_STRICT_RESTORE_SS != 0 && ss != USER_SS) {
        return Err(Errno::EFAULT);
    }
    gp.cs = USER_CS;
    gp.ss = USER_SS;
    // No system call restart after a sigreturn.
    gp.orig_rax = u64::MAX;
    let fp = w[m + 23];
    if fp == 0 {
        regs.fpu = platform::FpuState::new();
    } else {
        let size = regs.fpu.as_bytes().len();
        let mut buf = vec![0u8; size];
        mm.copy_in(fp, &mut buf[..512])?;
        let magic1 = u32::from_le_bytes([buf[464], buf[465], buf[466], buf[467]]);
        let xsize = u32::from_le_bytes([buf[480], buf[481], buf[482], buf[483]]) as usize;
        if magic1 == FP_XSTATE_MAGIC1 && xsize >= 576 && xsize <= size {
            mm.copy_in(fp + 512, &mut buf[512..xsize])?;
            buf[464..512].fill(0);
            regs.fpu.copy_from(&buf[..xsize]);
        } else {
            // A legacy FXSAVE image only: keep the extended state as it is.
            buf[464..512].fill(0);
            regs.fpu.copy_from(&buf[..512]);
        }
    }
    Ok(Restored {
        mask: w[SIGMASK],
        altstack: SigAltStack {
            sp: w[3],
            flags: w[4] as u32 as i32,
            _pad: 0,
            size: w[5],
        },
    })
}

#[cfg(test)]
mod tests {
    use linux_abi::flags::mm::{MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    use linux_abi::signal::{SEGV_MAPERR, SIGSEGV};

    use super::*;
    use crate::kernel::signal::{SA_ONSTACK, SA_RESTORER, SA_SIGINFO};

    fn stack(mm: &MemoryManager) -> u64 {
        mm.mmap(
            0,
            1 << 20,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            None,
        )
        .expect("stack")
    }

    fn regs(sp: u64) -> Registers {
        let mut r = Registers::new_user(0x40_1000, sp);
        r.gp.rax = 0x1111;
        r.gp.rbx = 0x2222;
        r.gp.r15 = 0x3333;
        r.gp.eflags = 0x246;
        r.fpu.as_bytes_mut()[160] = 0xab; // xmm0, first byte
        r
    }

    fn action() -> SigAction {
        SigAction {
            handler: 0x40_2000,
            flags: SA_SIGINFO | SA_RESTORER,
            restorer: 0x40_3000,
            mask: 0,
        }
    }

    #[test]
    fn frame_has_the_linux_layout_and_round_trips() {
        let (mm, _fake) = crate::mm::testutil::new_mm();
        let base = stack(&mm);
        let sp = base + (1 << 19) + 8;
        let mut r = regs(sp);
        let orig = r.clone();
        let info = SigInfo::fault(SIGSEGV, SEGV_MAPERR, 0xdead_0000);
        let off = SigAltStack {
            flags: SS_DISABLE,
            ..Default::default()
        };
        setup_frame(&mm, &mut r, &action(), &info, 0x5, &off).expect("frame");
        let frame = r.gp.rsp;
        // The handler is entered as if called: (rsp + 8) is 16-byte aligned.
        assert_eq!((frame + 8) % 16, 0);
        assert!(frame < sp - RED_ZONE);
        assert_eq!(r.gp.rip, 0x40_2000);
        assert_eq!(r.gp.rdi, SIGSEGV as u64);
        assert_eq!(r.gp.rsi, frame + 312, "siginfo after pretcode and ucontext");
        assert_eq!(r.gp.rdx, frame + 8, "ucontext after pretcode");
        let w: [u64; FRAME_WORDS] = mm.read_obj(frame).expect("read frame");
        assert_eq!(w[0], 0x40_3000, "pretcode is sa_restorer");
        assert_eq!(w[1], UC_FLAGS);
        assert_eq!(w[MCTX + 1], 0, "r9");
        assert_eq!(w[MCTX + 11], 0x2222, "rbx");
        assert_eq!(w[MCTX + 13], 0x1111, "rax");
        assert_eq!(w[MCTX + 15], sp, "rsp");
        assert_eq!(w[MCTX + 16], 0x40_1000, "rip");
        assert_eq!(w[MCTX + 22], 0xdead_0000, "cr2");
        assert_eq!(w[SIGMASK], 0x5);
        let info_back: SigInfo = mm.read_obj(frame + 312).expect("info");
        assert_eq!(info_back, info);
        let fp = w[MCTX + 23];
        assert_eq!(fp % 64, 0, "XSAVE area 64-byte aligned");
        assert!(fp > frame + 440 - 1);
        let magic1: u32 = mm.read_obj(fp + 464).expect("magic1");
        assert_eq!(magic1, FP_XSTATE_MAGIC1);
        let xsize: u32 = mm.read_obj(fp + 480).expect("xstate_size");
        let magic2: u32 = mm.read_obj(fp + u64::from(xsize)).expect("magic2");
        assert_eq!(magic2, FP_XSTATE_MAGIC2);
        let xmm0: u8 = mm.read_obj(fp + 160).expect("xmm0");
        assert_eq!(xmm0, 0xab);
        assert_eq!(
            r.fpu.as_bytes()[160],
            0,
            "the handler starts with a clean FPU"
        );

        // The handler returns through the restorer: `ret` pops pretcode.
        r.gp.rsp = frame + 8;
        r.gp.rax = 15;
        let back = restore_frame(&mm, &mut r).expect("sigreturn");
        assert_eq!(back.mask, 0x5);
        assert_eq!(r.gp.rax, orig.gp.rax);
        assert_eq!(r.gp.rbx, orig.gp.rbx);
        assert_eq!(r.gp.r15, orig.gp.r15);
        assert_eq!(r.gp.rsp, orig.gp.rsp);
        assert_eq!(r.gp.rip, orig.gp.rip);
        assert_eq!(r.gp.eflags & FIX_EFLAGS, orig.gp.eflags & FIX_EFLAGS);
        assert_eq!(r.fpu.as_bytes()[160], 0xab, "FPU state restored");
    }

    #[test]
    fn sa_onstack_switches_to_the_alternate_stack_once() {
        let (mm, _fake) = crate::mm::testutil::new_mm();
        let base = stack(&mm);
        let alt = SigAltStack {
            sp: base,
            flags: 0,
            _pad: 0,
            size: 1 << 16,
        };
        let mut act = action();
        act.flags |= SA_ONSTACK;
        let mut r = regs(base + (1 << 19));
        setup_frame(&mm, &mut r, &act, &SigInfo::new(10, 0), 0, &alt).expect("frame");
        assert!(on_altstack(&alt, r.gp.rsp), "first frame on the altstack");
        let w: [u64; FRAME_WORDS] = mm.read_obj(r.gp.rsp).expect("frame");
        assert_eq!(w[4] as i32, 0, "uc_stack flags: not on it when interrupted");
        // A nested signal while on the altstack stays on it, below the first frame.
        let first = r.gp.rsp;
        setup_frame(&mm, &mut r, &act, &SigInfo::new(12, 0), 0, &alt).expect("nested");
        assert!(on_altstack(&alt, r.gp.rsp) && r.gp.rsp < first);
        let w: [u64; FRAME_WORDS] = mm.read_obj(r.gp.rsp).expect("frame");
        assert_eq!(w[4] as i32, SS_ONSTACK);
        assert_eq!(altstack_flags(&alt, r.gp.rsp), SS_ONSTACK);
    }

    #[test]
    fn an_unwritable_stack_is_an_error_not_a_panic() {
        let (mm, _fake) = crate::mm::testutil::new_mm();
        let mut r = regs(0x2000);
        let off = SigAltStack {
            flags: SS_DISABLE,
            ..Default::default()
        };
        assert!(setup_frame(&mm, &mut r, &action(), &SigInfo::new(10, 0), 0, &off).is_err());
        let mut r = regs(0x2000);
        assert!(restore_frame(&mm, &mut r).is_err());
    }

    #[test]
    fn forged_segments_or_fpu_pointer_fail_the_sigreturn() {
        let (mm, _fake) = crate::mm::testutil::new_mm();
        let base = stack(&mm);
        let off = SigAltStack {
            flags: SS_DISABLE,
            ..Default::default()
        };
        let framed = || {
            let mut r = regs(base + (1 << 19) + 8);
            let info = SigInfo::new(10, 0);
            setup_frame(&mm, &mut r, &action(), &info, 0, &off).expect("frame");
            let frame = r.gp.rsp;
            r.gp.rsp = frame + 8;
            (r, frame)
        };
        let segs = |frame: u64| frame + ((MCTX + 18) * 8) as u64;
        // A frame as the kernel wrote it, with cs and ss written without their RPL.
        let (mut r, frame) = framed();
        let v: u64 = mm.read_obj(segs(frame)).expect("segments");
        mm.write_obj(segs(frame), &(v & !(3 | (3 << 48))))
            .expect("segments");
        assert!(restore_frame(&mm, &mut r).is_ok(), "the RPL is forced to 3");
        assert_eq!((r.gp.cs, r.gp.ss), (USER_CS, USER_SS));
        // cs = 0: returning to user mode faults on Linux.
        let (mut r, frame) = framed();
        let v: u64 = mm.read_obj(segs(frame)).expect("segments");
        mm.write_obj(segs(frame), &(v & !0xffff)).expect("segments");
        assert_eq!(restore_frame(&mm, &mut r).err(), Some(Errno::EFAULT));
        // A 32-bit code segment (__USER32_CS): not run by the platforms.
        let (mut r, frame) = framed();
        let v: u64 = mm.read_obj(segs(frame)).expect("segments");
        mm.write_obj(segs(frame), &((v & !0xffff) | 0x23))
            .expect("segments");
        assert!(restore_frame(&mm, &mut r).is_err());
        // ss = 0 under UC_STRICT_RESTORE_SS faults; without the flag it is replaced.
        let (mut r, frame) = framed();
        let v: u64 = mm.read_obj(segs(frame)).expect("segments");
        mm.write_obj(segs(frame), &(v & !(0xffff << 48)))
            .expect("segments");
        assert!(restore_frame(&mm, &mut r).is_err());
        mm.write_obj(frame + 8, &(UC_FLAGS & !UC_STRICT_RESTORE_SS))
            .expect("uc_flags");
        r.gp.rsp = frame + 8;
        assert!(restore_frame(&mm, &mut r).is_ok());
        assert_eq!(r.gp.ss, USER_SS);
        // An FPU state pointer to unmapped memory: the frame is bad.
        let (mut r, frame) = framed();
        mm.write_obj(frame + ((MCTX + 23) * 8) as u64, &0x10u64)
            .expect("fpstate");
        assert!(restore_frame(&mm, &mut r).is_err());
    }
}
