//! Execution contexts: running application code in a stub thread until it traps, by
//! rewriting the kernel's signal frame on the thread's alternate stack and handing the
//! thread back through the shared state word.
//!
//! The hot path of a switch: write the registers into the frame (general registers,
//! FPU/XSAVE area, a clean signal mask and alternate stack), store `RUN` and wake the stub
//! thread, sleep on the state word until it says `TRAPPED`, read the new frame. Nothing is
//! allocated and no system call is made besides the two futex calls.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use parking_lot::Mutex;

use linux_abi::signal::{self as sig, SigInfo};
use platform::{AccessType, AddressSpace, Context, PlatformError, Registers, Trap};

use crate::Shared;
use crate::process::{Mirror, StubThread, SystrapAddressSpace};
use crate::stub::{self, ALTSTACK_OFFSET, INTERRUPT_SIGNAL, REGION_BASE, REGION_SIZE};
use crate::sys::{self, Pid};

// The kernel's x86-64 `struct rt_sigframe`: return address, ucontext, siginfo.
const UC: usize = 8;
const UC_FLAGS: usize = UC;
const UC_LINK: usize = UC + 8;
const UC_STACK: usize = UC + 16;
const MCTX: usize = UC + 40;
const UC_SIGMASK: usize = UC + 296;
const SIGINFO: usize = UC + 304;
/// Size of the frame below its FPU area.
pub(crate) const FRAME_SIZE: usize = SIGINFO + 128;
// `struct sigcontext` (offsets from MCTX).
const SC_REGS: [usize; 18] = [
    0, 8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136,
];
const SC_CS: usize = 144;
const SC_SS: usize = 150;
const SC_ERR: usize = 152;
const SC_FPSTATE: usize = 184;
/// `FP_XSTATE_MAGIC1` in the software-reserved bytes of the FXSAVE area.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// Software-reserved bytes of the FXSAVE area, kept as the kernel wrote them.
const SW_RESERVED: std::ops::Range<usize> = 464..512;

/// Where the current frame lies in a region, as validated at the last trap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameLayout {
    frame: u64,
    fp: u64,
    fp_len: usize,
    xfeatures: u64,
    uc_flags: u64,
}

thread_local! {
    /// The CPU the calling host thread is pinned to.
    static PINNED: Cell<Option<usize>> = const { Cell::new(None) };
    static TID: Cell<Pid> = const { Cell::new(0) };
}

fn my_tid() -> Pid {
    TID.with(|t| {
        if t.get() == 0 {
            t.set(sys::gettid());
        }
        t.get()
    })
}

/// An execution context of the systrap platform.
#[derive(Debug)]
pub struct SystrapContext {
    shared: Arc<Shared>,
    /// Host tid of the owner thread, 0 before the first switch.
    owner: AtomicI32,
    /// An interrupt was requested and not yet returned.
    pending: AtomicBool,
    released: AtomicBool,
    /// The (process, thread) running for this context, for `interrupt`.
    running: Mutex<Option<(Pid, Pid)>>,
    /// The stub thread of the last switch.
    thread: Mutex<Option<Arc<StubThread>>>,
}

impl SystrapContext {
    pub(crate) fn new(shared: Arc<Shared>) -> SystrapContext {
        SystrapContext {
            shared,
            owner: AtomicI32::new(0),
            pending: AtomicBool::new(false),
            released: AtomicBool::new(false),
            running: Mutex::new(None),
            thread: Mutex::new(None),
        }
    }

    /// The CPU of the calling thread, pinning it first when the options say so.
    fn cpu(&self) -> Option<usize> {
        if !self.shared.options.pin {
            return None;
        }
        PINNED.with(|p| {
            if let Some(c) = p.get() {
                return Some(c);
            }
            let c = self.shared.next_cpu()?;
            match sys::pin_self(c) {
                Ok(()) => {
                    p.set(Some(c));
                    Some(c)
                }
                Err(e) => {
                    tracing::debug!(cpu = c, error = %e, "cannot pin the context's thread");
                    None
                }
            }
        })
    }

    fn stub_thread(&self, sas: &SystrapAddressSpace) -> Result<Arc<StubThread>, PlatformError> {
        let mut cur = self.thread.lock();
        if let Some(t) = &*cur
            && Arc::ptr_eq(&t.process, &sas.process)
        {
            return Ok(Arc::clone(t));
        }
        // Another address space: the old stub thread leaves (dropping it retires it).
        *cur = None;
        let t = sas.process.new_thread(self.cpu())?;
        *cur = Some(Arc::clone(&t));
        Ok(t)
    }

    fn run(&self, t: &StubThread, regs: &mut Registers) -> Result<Trap, PlatformError> {
        check_registers(regs)?;
        let mut mirror = t.mirror.lock();
        let pending = || self.pending.load(Ordering::Acquire);
        loop {
            write_frame(t, &mut mirror, regs)?;
            t.resume();
            t.wait_trapped(Some(&pending))?;
            let (si, err) = read_frame(t, &mut mirror, regs)?;
            if let Some(trap) = self.classify(&si, err, regs) {
                return Ok(trap);
            }
        }
    }

    /// What a trap means; `None` for a stale interrupt (resume).
    fn classify(&self, si: &SigInfo, err: u64, regs: &mut Registers) -> Option<Trap> {
        let rip = regs.gp.rip;
        // The application ran into the stub's own pages: to it they do not exist.
        let in_stub = rip >= REGION_BASE;
        let stub_fault = Trap::Fault {
            addr: rip,
            access: AccessType {
                execute: true,
                ..AccessType::UNKNOWN
            },
            ip: rip,
        };
        let fault = |addr| {
            let access = if err & 0x10 != 0 {
                AccessType {
                    execute: true,
                    ..AccessType::UNKNOWN
                }
            } else if err & 0x2 != 0 {
                AccessType {
                    write: true,
                    ..AccessType::UNKNOWN
                }
            } else {
                AccessType {
                    read: true,
                    ..AccessType::UNKNOWN
                }
            };
            Trap::Fault {
                addr,
                access,
                ip: rip,
            }
        };
        match si.signo {
            INTERRUPT_SIGNAL => {
                if si.code == sig::SI_TKILL
                    && si.pid() == self.shared.sentry_pid
                    && self.pending.swap(false, Ordering::AcqRel)
                {
                    Some(Trap::Interrupted)
                } else {
                    None
                }
            }
            _ if in_stub => Some(stub_fault),
            // A call into the vsyscall page, whose host emulation the filter refused:
            // report the fetch fault the platform contract specifies, undoing the `ret`
            // the host already emulated.
            libc::SIGSYS if si.code == 1 && si.fields[0] & !0xfff == platform::VSYSCALL_BASE => {
                let addr = si.fields[0];
                regs.gp.rip = addr;
                regs.gp.rsp = regs.gp.rsp.wrapping_sub(8);
                Some(Trap::Fault {
                    addr,
                    access: AccessType {
                        execute: true,
                        ..AccessType::UNKNOWN
                    },
                    ip: addr,
                })
            }
            // A 32-bit entry (`int 0x80`, `sysenter`: the filter sees another
            // architecture), or a thread left in 32-bit mode (the host returns from
            // `sysenter` to 32-bit code): the sandbox has no 32-bit system calls, so as
            // Linux without IA32 emulation, SIGSEGV/SI_KERNEL, with 64-bit selectors.
            _ if (si.signo == libc::SIGSYS
                && si.code == 1
                && (si.fields[1] >> 32) as u32 != AUDIT_ARCH_X86_64)
                || regs.gp.cs != USER_CS =>
            {
                regs.gp.cs = USER_CS;
                regs.gp.ss = USER_DS;
                regs.gp.orig_rax = u64::MAX;
                Some(Trap::Signal(SigInfo::new(libc::SIGSEGV, sig::SI_KERNEL)))
            }
            libc::SIGSYS if si.code == 1 => {
                // SYS_SECCOMP: the kernel rolled rax back to the number.
                regs.gp.orig_rax = regs.gp.rax;
                regs.gp.rax = (-(libc::ENOSYS as i64)) as u64;
                Some(Trap::Syscall)
            }
            libc::SIGSEGV if matches!(si.code, sig::SEGV_MAPERR | sig::SEGV_ACCERR | 4) => {
                Some(fault(si.addr()))
            }
            libc::SIGBUS if si.code == sig::BUS_ADRERR => Some(fault(si.addr())),
            libc::SIGSEGV
            | libc::SIGBUS
            | libc::SIGILL
            | libc::SIGFPE
            | libc::SIGTRAP
            | libc::SIGSYS => Some(Trap::Signal(*si)),
            _ => None,
        }
    }
}

/// Rejects register values the host would refuse when the thread returns (as ptrace's
/// `SETREGS`/`SETREGSET` would), before anything is written.
fn check_registers(regs: &Registers) -> Result<(), PlatformError> {
    // arch_prctl accepts only user addresses (below TASK_SIZE_MAX).
    const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;
    if regs.gp.fs_base >= TASK_SIZE_MAX || regs.gp.gs_base >= TASK_SIZE_MAX {
        return Err(PlatformError::InvalidArgument("register values"));
    }
    if regs.fpu.mxcsr() & 0xffff_0000 != 0 {
        return Err(PlatformError::InvalidArgument("FPU state"));
    }
    Ok(())
}

fn rd(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

fn wr(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Reads the frame of the trap the thread just reported into `regs`; returns its siginfo
/// and the hardware error code. Everything in the frame is the application's to write, so
/// every pointer in it is checked against the region before use.
fn read_frame(
    t: &StubThread,
    mirror: &mut Mirror,
    regs: &mut Registers,
) -> Result<(SigInfo, u64), PlatformError> {
    let region = t.region();
    let bad = || PlatformError::Internal("stub thread's signal frame is corrupt".into());
    let sp = region.u64(stub::ST_FRAME).load(Ordering::Acquire);
    let lo = t.addr + ALTSTACK_OFFSET;
    let hi = t.addr + REGION_SIZE;
    if sp < lo || sp + FRAME_SIZE as u64 > hi {
        return Err(bad());
    }
    let frame = sp - t.addr;
    let mut b = [0u8; FRAME_SIZE];
    region.read(frame, &mut b);
    let m = |i: usize| rd(&b, MCTX + SC_REGS[i]);
    let g = &mut regs.gp;
    [g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15] =
        [m(0), m(1), m(2), m(3), m(4), m(5), m(6), m(7)];
    [
        g.rdi, g.rsi, g.rbp, g.rbx, g.rdx, g.rax, g.rcx, g.rsp, g.rip, g.eflags,
    ] = [
        m(8),
        m(9),
        m(10),
        m(11),
        m(12),
        m(13),
        m(14),
        m(15),
        m(16),
        m(17),
    ];
    g.cs = u64::from(u16::from_le_bytes([b[MCTX + SC_CS], b[MCTX + SC_CS + 1]]));
    g.ss = u64::from(u16::from_le_bytes([b[MCTX + SC_SS], b[MCTX + SC_SS + 1]]));
    g.orig_rax = u64::MAX;
    g.fs_base = mirror.fs.unwrap_or(0);
    g.gs_base = mirror.gs.unwrap_or(0);
    [g.ds, g.es, g.fs, g.gs] = [0; 4];
    let err = rd(&b, MCTX + SC_ERR);
    // The FPU area.
    let fp = rd(&b, MCTX + SC_FPSTATE);
    if fp < sp + FRAME_SIZE as u64 || fp + 512 > hi || !fp.is_multiple_of(64) {
        return Err(bad());
    }
    let fp_off = fp - t.addr;
    let mut sw = [0u8; 48];
    region.read(fp_off + SW_RESERVED.start as u64, &mut sw);
    let magic = u32::from_le_bytes([sw[0], sw[1], sw[2], sw[3]]);
    let (xsize, xfeatures) = if magic == FP_XSTATE_MAGIC1 {
        (
            u32::from_le_bytes([sw[16], sw[17], sw[18], sw[19]]) as usize,
            rd(&sw, 8),
        )
    } else {
        (512, 3)
    };
    let fp_len = xsize
        .min(regs.fpu.as_bytes().len())
        .min((hi - fp) as usize)
        .max(512);
    region.read(fp_off, &mut regs.fpu.as_bytes_mut()[..fp_len]);
    mirror.frame = Some(FrameLayout {
        frame,
        fp: fp_off,
        fp_len,
        xfeatures,
        uc_flags: rd(&b, UC_FLAGS),
    });
    let mut si = SigInfo::new(0, 0);
    let s = &b[SIGINFO..SIGINFO + 128];
    si.signo = i32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    si.errno = i32::from_le_bytes([s[4], s[5], s[6], s[7]]);
    si.code = i32::from_le_bytes([s[8], s[9], s[10], s[11]]);
    for (i, f) in si.fields.iter_mut().enumerate() {
        *f = rd(s, 16 + 8 * i);
    }
    Ok((si, err))
}

/// Writes `regs` into the thread's current frame, with the signal mask, alternate stack
/// and FPU-area pointer the stub needs, and asks the handler to set FS/GS base when they
/// changed.
fn write_frame(t: &StubThread, mirror: &mut Mirror, regs: &Registers) -> Result<(), PlatformError> {
    let region = t.region();
    let layout = mirror
        .frame
        .ok_or_else(|| PlatformError::Internal("stub thread has no frame".into()))?;
    let mut b = [0u8; SIGINFO];
    wr(&mut b, UC_FLAGS, layout.uc_flags);
    wr(&mut b, UC_LINK, 0);
    wr(&mut b, UC_STACK, t.addr + ALTSTACK_OFFSET);
    wr(&mut b, UC_STACK + 8, 0);
    wr(&mut b, UC_STACK + 16, REGION_SIZE - ALTSTACK_OFFSET);
    let g = &regs.gp;
    let vals = [
        g.r8, g.r9, g.r10, g.r11, g.r12, g.r13, g.r14, g.r15, g.rdi, g.rsi, g.rbp, g.rbx, g.rdx,
        g.rax, g.rcx, g.rsp, g.rip, g.eflags,
    ];
    for (i, v) in vals.iter().enumerate() {
        wr(&mut b, MCTX + SC_REGS[i], *v);
    }
    // Only the two user code segments exist; any other value is the 64-bit one.
    let cs: u16 = if g.cs == 0x23 { 0x23 } else { 0x33 };
    b[MCTX + SC_CS..MCTX + SC_CS + 2].copy_from_slice(&cs.to_le_bytes());
    b[MCTX + SC_SS..MCTX + SC_SS + 2].copy_from_slice(&0x2bu16.to_le_bytes());
    wr(&mut b, MCTX + SC_FPSTATE, t.addr + layout.fp);
    wr(&mut b, UC_SIGMASK, 0);
    region.write(layout.frame + UC as u64, &b[UC..]);
    // The FPU area: the application's state, the kernel's software-reserved bytes, and an
    // XSAVE header the kernel accepts (standard format, known features only).
    let src = regs.fpu.as_bytes();
    let n = layout.fp_len.min(src.len());
    region.write(layout.fp, &src[..SW_RESERVED.start.min(n)]);
    if n > SW_RESERVED.end {
        let mut hdr = [0u8; 64];
        let h = (n - 512).min(64);
        hdr[..h].copy_from_slice(&src[512..512 + h]);
        let bv = rd(&hdr, 0) & layout.xfeatures;
        hdr = [0u8; 64];
        wr(&mut hdr, 0, bv);
        region.write(layout.fp + 512, &hdr[..h]);
        if n > 576 {
            region.write(layout.fp + 576, &src[576..n]);
        }
    }
    // FS/GS base through the handler's arch_prctl when they changed.
    let mut cmd = 0;
    if mirror.fs != Some(g.fs_base) {
        region.u64(stub::ST_FS).store(g.fs_base, Ordering::Relaxed);
        cmd |= stub::CMD_SET_FS;
        mirror.fs = Some(g.fs_base);
    }
    if mirror.gs != Some(g.gs_base) {
        region.u64(stub::ST_GS).store(g.gs_base, Ordering::Relaxed);
        cmd |= stub::CMD_SET_GS;
        mirror.gs = Some(g.gs_base);
    }
    region.u64(stub::ST_CMD).store(cmd, Ordering::Relaxed);
    Ok(())
}

/// Reads the bootstrap frame of a new thread, so that the first switch can rewrite it.
pub(crate) fn adopt_first_frame(t: &StubThread) -> Result<(), PlatformError> {
    let mut mirror = t.mirror.lock();
    let mut scratch = Registers::default();
    read_frame(t, &mut mirror, &mut scratch).map(drop)
}

impl Context for SystrapContext {
    fn switch(
        &self,
        address_space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError> {
        let me = my_tid();
        match self
            .owner
            .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {}
            Err(owner) if owner == me => {}
            Err(_) => return Err(PlatformError::WrongThread),
        }
        if self.released.load(Ordering::Acquire) {
            return Err(PlatformError::Released);
        }
        let sas = address_space
            .as_any()
            .downcast_ref::<SystrapAddressSpace>()
            .ok_or(PlatformError::ForeignAddressSpace)?;
        if !Arc::ptr_eq(&sas.process.shared, &self.shared) {
            return Err(PlatformError::ForeignAddressSpace);
        }
        if sas.process.is_released() {
            return Err(PlatformError::Released);
        }
        let t = self.stub_thread(sas)?;
        *self.running.lock() = Some((t.process.pid, t.tid()));
        let result = if self.pending.swap(false, Ordering::AcqRel) {
            Ok(Trap::Interrupted)
        } else {
            self.run(&t, regs)
        };
        *self.running.lock() = None;
        if result.is_err() && t.process.is_dead() {
            *self.thread.lock() = None;
        }
        result
    }

    fn interrupt(&self) {
        self.pending.store(true, Ordering::Release);
        let running = self.running.lock();
        if let Some((pid, tid)) = *running
            && let Err(e) = sys::tgkill(pid, tid, INTERRUPT_SIGNAL)
        {
            tracing::debug!(pid, tid, error = %e, "interrupt signal not sent");
        }
    }

    fn release(&self) {
        self.released.store(true, Ordering::Release);
        let t = self.thread.lock().take();
        drop(t);
    }
}

impl Drop for SystrapContext {
    fn drop(&mut self) {
        self.release();
    }
}

/// `AUDIT_ARCH_X86_64`: the `si_arch` of a 64-bit system call's `SIGSYS`.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Linux's 64-bit user code selector.
const USER_CS: u64 = 0x33;
/// Linux's 64-bit user data selector.
const USER_DS: u64 = 0x2b;
