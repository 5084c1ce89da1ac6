//! Contexts: each [`KvmContext::switch`] borrows a vCPU from the platform's pool (its
//! previous one when free, so the caches stay warm), enters the application through a
//! return stub, and decodes the stub exit into a [`Trap`].
//!
//! Entry: the host writes the return frame into the vCPU's RSP0 stack, loads the user's
//! general registers with `KVM_SET_REGS` (RIP/RSP pointing at the return stub and frame),
//! the FPU state with `KVM_SET_XSAVE` when it changed, FS/GS base with `KVM_SET_SREGS`
//! when they changed, and runs. The frame's CR3 slot is non-zero when the vCPU must load
//! (and so flush) the address space's page tables.
//!
//! Exit: `out` from a stub. The port is the exception vector or the `syscall` port;
//! `KVM_GET_REGS` yields the user's general registers (the stubs clobber none) and, for
//! exceptions, RSP points at the uniform frame the stub completed.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use std::thread::ThreadId;

use kvm_bindings::{kvm_regs, kvm_segment};
use linux_abi::Errno;
use linux_abi::signal::{self as sig, SigInfo};
use platform::{
    AccessType, AddressSpace, Context, GeneralRegisters, PlatformError, Registers, Trap,
};

use crate::Shared;
use crate::address_space::KvmAddressSpace;
use crate::layout::{
    self, KERNEL_BASE, PVCS_IN_BLOCK, RETURN_FRAME_IN_BLOCK, RSP0_TOP_IN_BLOCK, STACK_LOW_IN_BLOCK,
    STUBS_OFF, SYSCALL_PAGE_OFF, kva, pvcs, vcpu_block,
};
use crate::stubs;
use crate::vcpu::{Abi, RunExit, Vcpu, VcpuState, current_tid, prepare_thread};

/// RFLAGS bits the application controls: CF, PF, AF, ZF, SF, TF, DF, OF, AC, ID.
const USER_FLAGS: u64 = 0x24_0dd5;
/// RFLAGS bits always set in ring 3: IF and the reserved bit 1.
const FIXED_FLAGS: u64 = 0x202;

const FPE_FLTDIV: i32 = 3;
const FPE_FLTOVF: i32 = 4;
const FPE_FLTUND: i32 = 5;
const FPE_FLTRES: i32 = 6;
const FPE_FLTINV: i32 = 7;

/// An execution context of the KVM platform.
#[derive(Debug)]
pub struct KvmContext {
    id: u64,
    owner_thread: OnceLock<ThreadId>,
    interrupt_pending: AtomicBool,
    /// The vCPU during a switch, for [`Context::interrupt`].
    current: Mutex<Option<Arc<Vcpu>>>,
    /// The vCPU of the last switch (preferred next time).
    last: Mutex<Option<Arc<Vcpu>>>,
    released: AtomicBool,
    /// Last, so the vCPU references above go first.
    shared: Arc<Shared>,
}

/// Marks a vCPU busy for the duration of a switch.
#[derive(Debug)]
struct Busy(Arc<Vcpu>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.kick.current_as.store(0, Ordering::SeqCst);
        self.0.busy.store(false, Ordering::Release);
    }
}

fn canonical(a: u64) -> bool {
    !(0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&a)
}

fn prepare_this_thread() -> Result<(), PlatformError> {
    thread_local! {
        static READY: Cell<bool> = const { Cell::new(false) };
    }
    if !READY.with(Cell::get) {
        prepare_thread()?;
        READY.with(|r| r.set(true));
    }
    Ok(())
}

fn copy_gprs(r: &kvm_regs, gp: &mut GeneralRegisters) {
    gp.r15 = r.r15;
    gp.r14 = r.r14;
    gp.r13 = r.r13;
    gp.r12 = r.r12;
    gp.rbp = r.rbp;
    gp.rbx = r.rbx;
    gp.r11 = r.r11;
    gp.r10 = r.r10;
    gp.r9 = r.r9;
    gp.r8 = r.r8;
    gp.rax = r.rax;
    gp.rcx = r.rcx;
    gp.rdx = r.rdx;
    gp.rsi = r.rsi;
    gp.rdi = r.rdi;
    gp.cs = platform::USER_CS;
    gp.ss = platform::USER_SS;
}

/// The siginfo Linux sends for an x87 (`#MF`) or SIMD (`#XM`) exception.
fn fpe_code(fpu: &[u8], simd: bool) -> i32 {
    let err = if simd {
        let mxcsr = fpu
            .get(24..28)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        !(mxcsr >> 7) & mxcsr & 0x3f
    } else {
        let cwd = fpu
            .get(0..2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]])) as u32;
        let swd = fpu
            .get(2..4)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]])) as u32;
        swd & !cwd & 0x3f
    };
    if err & 0x01 != 0 {
        FPE_FLTINV
    } else if err & 0x04 != 0 {
        FPE_FLTDIV
    } else if err & 0x08 != 0 {
        FPE_FLTOVF
    } else if err & 0x12 != 0 {
        FPE_FLTUND
    } else if err & 0x20 != 0 {
        FPE_FLTRES
    } else {
        0
    }
}

impl KvmContext {
    pub(crate) fn new(shared: Arc<Shared>) -> KvmContext {
        let id = shared.new_id();
        KvmContext {
            shared,
            id,
            owner_thread: OnceLock::new(),
            interrupt_pending: AtomicBool::new(false),
            current: Mutex::new(None),
            last: Mutex::new(None),
            released: AtomicBool::new(false),
        }
    }

    fn claim(&self, v: &Arc<Vcpu>) -> bool {
        if v.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            v.owner.store(self.id, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Borrows a vCPU: the last one if still ours, a free one, an idle one of another
    /// context, or a new one, in that order; waits only when all are running and the
    /// pool is at its limit.
    fn acquire(&self) -> Result<Option<Busy>, PlatformError> {
        let last = self.last.lock().clone();
        if let Some(v) = last
            && v.owner.load(Ordering::Relaxed) == self.id
            && self.claim(&v)
        {
            return Ok(Some(Busy(v)));
        }
        loop {
            let mut pool = self.shared.vcpus.lock();
            for v in pool.iter() {
                if v.owner.load(Ordering::Relaxed) == 0 && self.claim(v) {
                    return Ok(Some(self.remember(v.clone())));
                }
            }
            // An idle vCPU of another context before a new one: the pool only grows to
            // the number of contexts running at the same time. The caches a vCPU keeps
            // (loaded page tables, FPU state) describe the vCPU, so taking one over is
            // safe; its old owner just finds it gone next time.
            for v in pool.iter() {
                if self.claim(v) {
                    return Ok(Some(self.remember(v.clone())));
                }
            }
            if pool.len() < self.shared.max_vcpus {
                let v = Arc::new(Vcpu::new(&self.shared, pool.len())?);
                v.busy.store(true, Ordering::Relaxed);
                v.owner.store(self.id, Ordering::Relaxed);
                pool.push(v.clone());
                tracing::debug!(vcpus = pool.len(), "new vcpu");
                return Ok(Some(self.remember(v)));
            }
            drop(pool);
            if self.interrupt_pending.load(Ordering::SeqCst) {
                return Ok(None);
            }
            std::thread::yield_now();
        }
    }

    fn remember(&self, v: Arc<Vcpu>) -> Busy {
        *self.last.lock() = Some(v.clone());
        Busy(v)
    }

    /// Runs until a trap; `regs` holds the application state throughout.
    fn run(
        &self,
        vcpu: &Vcpu,
        st: &mut VcpuState,
        aspace: &KvmAddressSpace,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError> {
        let k = &vcpu.kick;
        let block = vcpu_block(vcpu.index);
        let stubs_base = kva(STUBS_OFF);
        aspace.entered.store(true, Ordering::SeqCst);
        let fpu_slot = if self.shared.fast_fpu {
            Some(aspace.fpu_slot(vcpu.index)?)
        } else {
            None
        };
        let entry_off = self.syscall_entry_off(block);
        let mut finish_stub = false;
        let mut entered: Option<(u64, u64)> = None;
        loop {
            if !finish_stub {
                if st.sregs.fs.base != regs.gp.fs_base || st.sregs.gs.base != regs.gp.gs_base {
                    st.sregs.fs.base = regs.gp.fs_base;
                    st.sregs.gs.base = regs.gp.gs_base;
                    st.sregs_dirty = true;
                }
                k.current_as.store(aspace.id, Ordering::SeqCst);
                k.in_guest.store(true, Ordering::SeqCst);
                if self.interrupt_pending.swap(false, Ordering::SeqCst) {
                    k.in_guest.store(false, Ordering::SeqCst);
                    return Ok(Trap::Interrupted);
                }
                let generation = aspace.generation.load(Ordering::SeqCst);
                let cr3 = aspace.pml4_gpa.load(Ordering::SeqCst);
                if aspace.released.load(Ordering::SeqCst) || cr3 == 0 {
                    k.in_guest.store(false, Ordering::SeqCst);
                    return Err(PlatformError::Released);
                }
                let reload = st.sregs_dirty || st.loaded != Some((aspace.id, generation));
                let entry = if self.shared.direct_entry {
                    if regs.gp.rip >= self.shared.max_user_address {
                        // Linux answers a return to a non-user RIP with SIGSEGV.
                        k.in_guest.store(false, Ordering::SeqCst);
                        return Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL)));
                    }
                    self.enter_direct(st, regs, cr3, reload)
                } else {
                    self.enter(st, block, regs, if reload { cr3 } else { 0 })
                };
                if let Err(e) = entry {
                    k.in_guest.store(false, Ordering::SeqCst);
                    return Err(e);
                }
                if reload {
                    st.loaded = None;
                }
                entered = Some((aspace.id, generation));
            } else {
                k.in_guest.store(true, Ordering::SeqCst);
            }
            let exit = st.run();
            k.in_guest.store(false, Ordering::SeqCst);
            k.clear();
            k.exits.fetch_add(1, Ordering::SeqCst);
            match exit {
                RunExit::Out(port) => {
                    st.loaded = entered;
                    st.in_user = false;
                    return self.decode(port, st, block, aspace, fpu_slot, regs);
                }
                RunExit::Interrupted => {
                    let events = st.fd.get_vcpu_events().map_err(|e| PlatformError::Host {
                        op: "KVM_GET_VCPU_EVENTS",
                        errno: Errno::new(e.errno()),
                    })?;
                    if events.exception.injected != 0 || events.exception.pending != 0 {
                        // An exception is being delivered: let it reach its stub.
                        finish_stub = true;
                        continue;
                    }
                    let sregs = st.get_sregs()?;
                    let r = st.get_regs()?;
                    st.in_user = sregs.cs.selector & 3 == 3;
                    let off = r.rip.wrapping_sub(stubs_base);
                    if self.shared.user_syscall_entry
                        && (entry_off..entry_off + 4096).contains(&off)
                        && r.rflags & 0x200 == 0
                    {
                        // Between `syscall` and the exit of the user-mode syscall page.
                        finish_stub = true;
                        continue;
                    }
                    if sregs.cs.selector & 3 == 3 {
                        // Stopped in the application: take its state; the next entry has to
                        // return to ring 0 first.
                        copy_gprs(&r, &mut regs.gp);
                        regs.gp.rip = r.rip;
                        regs.gp.rsp = r.rsp;
                        regs.gp.eflags = r.rflags;
                        st.get_fpu(regs.fpu.as_bytes_mut())?;
                        st.loaded = entered;
                        // Stub-based entry has to go back to ring 0 first.
                        st.sregs_dirty = !self.shared.direct_entry;
                        finish_stub = false;
                        continue;
                    }
                    if stubs::is_return_path(off) {
                        // Still returning: nothing of the application ran.
                        finish_stub = false;
                    } else if off < 4096 {
                        // Inside an entry stub: let it reach its exit.
                        finish_stub = true;
                    } else {
                        return Err(PlatformError::Internal(format!(
                            "vCPU stopped in ring 0 at {:#x}",
                            r.rip
                        )));
                    }
                }
                RunExit::Other(what) => {
                    let r = st.get_regs().ok();
                    return Err(PlatformError::Internal(format!(
                        "unexpected vCPU exit {what} (rip {:#x})",
                        r.map_or(0, |r| r.rip)
                    )));
                }
            }
        }
    }

    /// Direct-entry mode: loads ring-3 state straight into the vCPU: user segments, CR3
    /// and FS/GS base when any of them changed or the vCPU is in ring 0, and the general
    /// registers. With shadow paging (always the case here) loading CR3 picks up the
    /// current tables because changed entries were zapped when they changed.
    fn enter_direct(
        &self,
        st: &mut VcpuState,
        regs: &Registers,
        cr3: u64,
        reload: bool,
    ) -> Result<(), PlatformError> {
        let gp = &regs.gp;
        if reload || !st.in_user {
            let mut u = st.sregs;
            u.cs = kvm_segment {
                selector: platform::USER_CS as u16,
                dpl: 3,
                ..st.sregs.cs
            };
            u.ss = kvm_segment {
                selector: platform::USER_SS as u16,
                dpl: 3,
                ..st.sregs.ss
            };
            u.cr3 = cr3;
            u.interrupt_bitmap = [0; 4];
            st.set_sregs(&u)?;
            st.sregs_dirty = false;
            st.in_user = true;
        }
        let kr = kvm_regs {
            rax: gp.rax,
            rbx: gp.rbx,
            rcx: gp.rcx,
            rdx: gp.rdx,
            rsi: gp.rsi,
            rdi: gp.rdi,
            rsp: gp.rsp,
            rbp: gp.rbp,
            r8: gp.r8,
            r9: gp.r9,
            r10: gp.r10,
            r11: gp.r11,
            r12: gp.r12,
            r13: gp.r13,
            r14: gp.r14,
            r15: gp.r15,
            rip: gp.rip,
            rflags: (gp.eflags & USER_FLAGS) | FIXED_FLAGS,
        };
        st.set_regs(&kr)?;
        st.set_fpu(regs.fpu.as_bytes(), self.shared.cpu.xcr0)
    }

    /// Writes the return frame and loads registers for an entry into the application.
    fn enter(
        &self,
        st: &mut VcpuState,
        block: u64,
        regs: &Registers,
        cr3: u64,
    ) -> Result<(), PlatformError> {
        let gp = &regs.gp;
        let rflags = (gp.eflags & USER_FLAGS) | FIXED_FLAGS;
        let pvm = self.shared.abi == Abi::Pvm;
        if pvm {
            // The PVCS carries what ERETU loads; the stub carries CR3 and RSP.
            let mut p = [0u8; pvcs::SIZE];
            let put = |p: &mut [u8], off: u64, bytes: &[u8]| {
                p[off as usize..off as usize + bytes.len()].copy_from_slice(bytes)
            };
            put(
                &mut p,
                pvcs::USER_CS,
                &(platform::USER_CS as u16).to_le_bytes(),
            );
            put(
                &mut p,
                pvcs::USER_SS,
                &(platform::USER_SS as u16).to_le_bytes(),
            );
            put(&mut p, pvcs::EVENT_VECTOR, &pvcs::VECTOR_STD.to_le_bytes());
            put(&mut p, pvcs::USER_GSBASE, &gp.gs_base.to_le_bytes());
            put(&mut p, pvcs::EFLAGS, &(rflags as u32).to_le_bytes());
            put(&mut p, pvcs::RIP, &gp.rip.to_le_bytes());
            put(&mut p, pvcs::RCX, &gp.rcx.to_le_bytes());
            put(&mut p, pvcs::R11, &gp.r11.to_le_bytes());
            self.shared.region.write(block + PVCS_IN_BLOCK, &p)?;
        }
        let sysret = pvm
            || (gp.rcx == gp.rip && gp.r11 == gp.eflags && gp.rip < self.shared.max_user_address);
        let frame_off = block + RETURN_FRAME_IN_BLOCK;
        let frame: Vec<u8> = if sysret {
            [cr3, gp.rsp].iter().flat_map(|w| w.to_le_bytes()).collect()
        } else {
            [
                cr3,
                gp.rip,
                platform::USER_CS,
                rflags,
                gp.rsp,
                platform::USER_SS,
            ]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .collect()
        };
        self.shared.region.write(frame_off, &frame)?;
        let kr = kvm_regs {
            rax: gp.rax,
            rbx: gp.rbx,
            rcx: if sysret && !pvm { gp.rip } else { gp.rcx },
            rdx: gp.rdx,
            rsi: gp.rsi,
            rdi: gp.rdi,
            rsp: kva(frame_off),
            rbp: gp.rbp,
            r8: gp.r8,
            r9: gp.r9,
            r10: gp.r10,
            r11: if sysret && !pvm { rflags } else { gp.r11 },
            r12: gp.r12,
            r13: gp.r13,
            r14: gp.r14,
            r15: gp.r15,
            rip: kva(STUBS_OFF
                + if pvm {
                    stubs::PVM_RETURN
                } else if sysret {
                    stubs::RETURN_SYSRET
                } else {
                    stubs::RETURN_IRET
                }),
            rflags: 0x2,
        };
        st.flush_sregs()?;
        st.set_regs(&kr)?;
        st.set_fpu(regs.fpu.as_bytes(), self.shared.cpu.xcr0)
    }

    /// Turns a stub exit into a trap and the application's registers.
    fn decode(
        &self,
        port: u16,
        st: &mut VcpuState,
        block: u64,
        aspace: &KvmAddressSpace,
        fpu_slot: Option<u64>,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError> {
        let r = st.get_regs()?;
        let stubs_base = kva(STUBS_OFF);
        let rip_off = r.rip.wrapping_sub(stubs_base);
        if port == stubs::SYSCALL_PORT && self.shared.user_syscall_entry {
            // Ring 3 may use port 0x80 (the TSS allows it for the user-mode syscall
            // page); only `out` at that page right after a `syscall` (IF clear, which
            // application code cannot have) is a system call. Anything else is an I/O
            // instruction Linux would answer with SIGSEGV.
            let out = self.syscall_entry_off(block)
                + if self.shared.fast_fpu {
                    stubs::FAST_SYSCALL_OUT
                } else {
                    0
                };
            if !stubs::exit_site_matches(rip_off, out) || r.rflags & 0x200 != 0 {
                copy_gprs(&r, &mut regs.gp);
                // KVM reports the exit past the `out`; Linux reports the instruction.
                regs.gp.rip = r.rip.wrapping_sub(out_length(aspace, r.rip));
                regs.gp.rsp = r.rsp;
                regs.gp.eflags = r.rflags;
                regs.gp.orig_rax = u64::MAX;
                st.get_fpu(regs.fpu.as_bytes_mut())?;
                return Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL)));
            }
        } else if port == stubs::SYSCALL_PORT || port == stubs::COMPAT_SYSCALL_PORT {
            let site = if port == stubs::SYSCALL_PORT {
                stubs::SYSCALL_ENTRY
            } else {
                stubs::COMPAT_SYSCALL_ENTRY
            };
            if !stubs::exit_site_matches(rip_off, site) {
                return Err(PlatformError::Internal(format!(
                    "syscall exit from {:#x}",
                    r.rip
                )));
            }
        }
        if port == stubs::SYSCALL_PORT || port == stubs::COMPAT_SYSCALL_PORT {
            copy_gprs(&r, &mut regs.gp);
            if self.shared.abi == Abi::Pvm {
                let p = self.read_pvcs(block)?;
                regs.gp.rip = p.u64(pvcs::RIP);
                regs.gp.eflags = u64::from(p.u32(pvcs::EFLAGS));
                regs.gp.rcx = regs.gp.rip;
                regs.gp.r11 = regs.gp.eflags;
            } else {
                regs.gp.rip = r.rcx;
                regs.gp.eflags = r.r11;
            }
            regs.gp.rsp = r.rsp;
            match fpu_slot {
                // Saved by the entry itself (fast FPU mode).
                Some(slot) if port == stubs::SYSCALL_PORT => {
                    let fpu = regs.fpu.as_bytes_mut();
                    let n = fpu.len().min(layout::FPU_SLOT_REGS as usize);
                    self.shared.region.read(slot, &mut fpu[..n])?;
                    st.note_fpu(regs.fpu.as_bytes());
                }
                _ => st.get_fpu(regs.fpu.as_bytes_mut())?,
            }
            if port == stubs::COMPAT_SYSCALL_PORT {
                regs.gp.orig_rax = u64::MAX;
                return Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL)));
            }
            regs.gp.orig_rax = r.rax;
            regs.gp.rax = (-(Errno::ENOSYS.raw() as i64)) as u64;
            return Ok(Trap::Syscall);
        }
        if port == stubs::PVM_USER_EVENT_PORT || port == stubs::PVM_SUPERVISOR_EVENT_PORT {
            return self.decode_pvm_event(port, st, block, &r, aspace, fpu_slot, regs);
        }
        let Ok(vector) = u8::try_from(port) else {
            return Err(PlatformError::Internal(format!(
                "unknown exit port {port:#x}"
            )));
        };
        if vector >= stubs::EXCEPTION_COUNT
            || !stubs::exit_site_matches(rip_off, stubs::exception_out_offset(vector))
        {
            return Err(PlatformError::Internal(format!(
                "exit port {port:#x} from {:#x}",
                r.rip
            )));
        }
        // The CPU's frame at RSP: [error,] rip, cs, rflags, rsp, ss.
        let frame_off = r.rsp.wrapping_sub(KERNEL_BASE);
        let has_error = stubs::has_error_code(vector);
        let words = if has_error { 6 } else { 5 };
        if frame_off < block + STACK_LOW_IN_BLOCK
            || frame_off > block + RSP0_TOP_IN_BLOCK - words * 8
        {
            return Err(PlatformError::Internal(format!(
                "exception frame at {:#x}",
                r.rsp
            )));
        }
        let mut raw = [0u8; 48];
        self.shared
            .region
            .read(frame_off, &mut raw[..words as usize * 8])?;
        let w = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let (error, f) = if has_error { (w(0), 1) } else { (0, 0) };
        let (rip, cs, rflags, rsp) = (w(f), w(f + 1), w(f + 2), w(f + 3));
        let cr2 = if vector == 14 { st.get_sregs()?.cr2 } else { 0 };
        if cs & 3 != 3 {
            if rip.wrapping_sub(stubs_base) < stubs::RETURN_END && matches!(vector, 11..=14) {
                // The return to the application faulted (non-canonical RIP, bad frame):
                // nothing ran; Linux answers a bad return state with SIGSEGV.
                st.loaded = None;
                return Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL)));
            }
            return Err(PlatformError::Internal(format!(
                "ring-0 exception {vector} at {rip:#x}, error {error:#x}, cr2 {cr2:#x}"
            )));
        }
        copy_gprs(&r, &mut regs.gp);
        regs.gp.rsp = rsp;
        st.get_fpu(regs.fpu.as_bytes_mut())?;
        let lstar = kva(STUBS_OFF + stubs::SYSCALL_ENTRY);
        if vector == 14 && rip == lstar && cr2 == lstar && rflags & 0x200 == 0 {
            // A `syscall` that reached LSTAR without leaving user mode, as PVM's emulated
            // "native" mode (kvm_pvm with pvm_native=Y) does: the instruction completed
            // (RCX = next RIP, R11 = RFLAGS, RFLAGS masked by SFMASK) and only the fetch of
            // the supervisor-only entry stub faulted. Application code can never reach
            // this state itself: it cannot run with IF clear.
            regs.gp.rip = r.rcx;
            regs.gp.eflags = r.r11;
            regs.gp.orig_rax = r.rax;
            regs.gp.rax = (-(Errno::ENOSYS.raw() as i64)) as u64;
            return Ok(Trap::Syscall);
        }
        regs.gp.rip = rip;
        regs.gp.eflags = rflags;
        regs.gp.orig_rax = u64::MAX;
        if let Some(t) = self.fast_entry_syscall(vector, block, fpu_slot, regs)? {
            return Ok(t);
        }
        if vector == 6 && legacy_syscall_at(aspace, rip) {
            // Where the CPU raises #UD for `int 0x80` or `sysenter` (PVM's user mode),
            // answer as Linux without 32-bit entries on this host: #GP.
            return Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL)));
        }
        exception_trap(vector, error, cr2, rip, regs)
    }
}

/// The length of the `out` to port 0x80 that ends just before `rip` (1 for `out dx`,
/// `outs`, 2 for `out imm8`), judged from the bytes before `rip`; 0 if they cannot be read.
/// Whether the instruction at `rip` is a 32-bit system call entry that Linux without
/// 32-bit entries answers with #GP on this host: `int 0x80` (`cd 80`) always, `sysenter`
/// (`0f 34`) on Intel only. On AMD `sysenter` is an invalid opcode in 64-bit mode, so the
/// #UD stands (`SIGILL`, as the host itself gives).
fn legacy_syscall_at(aspace: &KvmAddressSpace, rip: u64) -> bool {
    let mut b = [0u8; 2];
    if aspace.read_user(rip, &mut b).is_none() {
        return false;
    }
    match b {
        [0xcd, 0x80] => true,
        [0x0f, 0x34] => !crate::cpuid::host_is_amd(),
        _ => false,
    }
}

fn out_length(aspace: &KvmAddressSpace, rip: u64) -> u64 {
    let mut b = [0u8; 2];
    if rip >= 2 && aspace.read_user(rip - 2, &mut b).is_some() {
        if matches!(b[0], 0xe6 | 0xe7) && u16::from(b[1]) == stubs::SYSCALL_PORT {
            return 2;
        }
        if matches!(b[1], 0xee | 0xef | 0x6e | 0x6f) {
            return 1;
        }
    }
    let mut b = [0u8; 1];
    if rip >= 1
        && aspace.read_user(rip - 1, &mut b).is_some()
        && matches!(b[0], 0xee | 0xef | 0x6e | 0x6f)
    {
        return 1;
    }
    0
}

impl KvmContext {
    /// Offset (from the kernel area's start) of the user-mode syscall entry of the vCPU
    /// whose block is at `block`.
    fn syscall_entry_off(&self, block: u64) -> u64 {
        if self.shared.fast_fpu {
            block + PVCS_IN_BLOCK
        } else {
            SYSCALL_PAGE_OFF
        }
    }
}

/// A copy of a vCPU's PVCS.
struct Pvcs([u8; pvcs::SIZE]);

impl Pvcs {
    fn u64(&self, off: u64) -> u64 {
        let o = off as usize;
        u64::from_le_bytes(self.0[o..o + 8].try_into().unwrap_or_default())
    }
    fn u32(&self, off: u64) -> u32 {
        let o = off as usize;
        u32::from_le_bytes(self.0[o..o + 4].try_into().unwrap_or_default())
    }
    fn u16(&self, off: u64) -> u16 {
        let o = off as usize;
        u16::from_le_bytes(self.0[o..o + 2].try_into().unwrap_or_default())
    }
}

impl KvmContext {
    /// A #UD at the `xsave64` of the fast syscall entry, after a `syscall`: PVM ran the
    /// entry in its emulated supervisor path (it does so for a `syscall` made with a
    /// non-canonical RSP), where KVM's instruction emulator has no `xsave64`. The system
    /// call itself was made: RCX and R11 (in `regs`) hold the return RIP and RFLAGS, the
    /// entry had saved RAX and RDX in the slot, and `regs.fpu` (taken by the caller with
    /// `KVM_GET_XSAVE`) is the application's. IF is clear only after a `syscall`:
    /// application code that jumps here itself runs with IF set and keeps its #UD.
    fn fast_entry_syscall(
        &self,
        vector: u8,
        block: u64,
        fpu_slot: Option<u64>,
        regs: &mut Registers,
    ) -> Result<Option<Trap>, PlatformError> {
        let xsave = kva(self.syscall_entry_off(block) + stubs::FAST_SYSCALL_XSAVE);
        let Some(slot) = fpu_slot else {
            return Ok(None);
        };
        if vector != 6 || regs.gp.rip != xsave || regs.gp.eflags & 0x200 != 0 {
            return Ok(None);
        }
        let mut saved = [0u8; 16];
        self.shared
            .region
            .read(slot + layout::FPU_SLOT_REGS, &mut saved)?;
        let word =
            |i: usize| u64::from_le_bytes(saved[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        regs.gp.rip = regs.gp.rcx;
        regs.gp.eflags = regs.gp.r11;
        regs.gp.rdx = word(1);
        regs.gp.orig_rax = word(0);
        regs.gp.rax = (-(Errno::ENOSYS.raw() as i64)) as u64;
        Ok(Some(Trap::Syscall))
    }

    fn read_pvcs(&self, block: u64) -> Result<Pvcs, PlatformError> {
        let mut p = [0u8; pvcs::SIZE];
        self.shared.region.read(block + PVCS_IN_BLOCK, &mut p)?;
        Ok(Pvcs(p))
    }

    /// Decodes a PVM event exit: the event and the clobbered RIP, RFLAGS, RCX and R11
    /// are in the PVCS, every other register is the application's.
    #[allow(clippy::too_many_arguments)]
    fn decode_pvm_event(
        &self,
        port: u16,
        st: &mut VcpuState,
        block: u64,
        r: &kvm_regs,
        aspace: &KvmAddressSpace,
        fpu_slot: Option<u64>,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError> {
        let p = self.read_pvcs(block)?;
        let vector = (p.u16(pvcs::EVENT_VECTOR) & 0xff) as u8;
        let error = u64::from(p.u16(pvcs::EVENT_ERRCODE));
        if port == stubs::PVM_SUPERVISOR_EVENT_PORT {
            let rip = p.u64(pvcs::RIP);
            if stubs::is_return_path(rip.wrapping_sub(kva(STUBS_OFF))) || vector == 13 {
                // ERETU refused the return state: nothing ran.
                st.loaded = None;
                return Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL)));
            }
            return Err(PlatformError::Internal(format!(
                "PVM supervisor event {vector} at {rip:#x}, error {error:#x}"
            )));
        }
        copy_gprs(r, &mut regs.gp);
        regs.gp.rip = p.u64(pvcs::RIP);
        regs.gp.eflags = u64::from(p.u32(pvcs::EFLAGS));
        regs.gp.rcx = p.u64(pvcs::RCX);
        regs.gp.r11 = p.u64(pvcs::R11);
        regs.gp.rsp = r.rsp;
        regs.gp.orig_rax = u64::MAX;
        st.get_fpu(regs.fpu.as_bytes_mut())?;
        if let Some(t) = self.fast_entry_syscall(vector, block, fpu_slot, regs)? {
            return Ok(t);
        }
        if vector == 6 && legacy_syscall_at(aspace, regs.gp.rip) {
            // PVM raises #UD for `int 0x80` and `sysenter`; Linux without 32-bit entries
            // (and a VMX guest here, whose IDT and SYSENTER_CS refuse them) gives #GP.
            return Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL)));
        }
        exception_trap(vector, error, p.u64(pvcs::CR2), regs.gp.rip, regs)
    }
}

/// The trap Linux semantics give exception `vector` raised in user mode at `rip`.
fn exception_trap(
    vector: u8,
    error: u64,
    cr2: u64,
    rip: u64,
    regs: &Registers,
) -> Result<Trap, PlatformError> {
    let fault = |signo, code, addr| Ok(Trap::Signal(SigInfo::fault(signo, code, addr)));
    match vector {
        0 => fault(sig::SIGFPE, sig::FPE_INTDIV, rip),
        1 => fault(sig::SIGTRAP, sig::TRAP_TRACE, rip),
        3 => Ok(Trap::Signal(SigInfo::new(sig::SIGTRAP, sig::SI_KERNEL))),
        4 | 5 | 10 | 13 => Ok(Trap::Signal(SigInfo::new(sig::SIGSEGV, sig::SI_KERNEL))),
        6 => fault(sig::SIGILL, sig::ILL_ILLOPN, rip),
        11 | 12 => Ok(Trap::Signal(SigInfo::new(sig::SIGBUS, sig::SI_KERNEL))),
        14 => Ok(Trap::Fault {
            addr: cr2,
            access: AccessType {
                read: error & 0x12 == 0,
                write: error & 0x2 != 0,
                execute: error & 0x10 != 0,
            },
            ip: rip,
        }),
        16 => fault(sig::SIGFPE, fpe_code(regs.fpu.as_bytes(), false), rip),
        17 => fault(sig::SIGBUS, sig::BUS_ADRALN, 0),
        19 => fault(sig::SIGFPE, fpe_code(regs.fpu.as_bytes(), true), rip),
        _ => Err(PlatformError::Internal(format!(
            "unexpected exception {vector} at {rip:#x}, error {error:#x}"
        ))),
    }
}

impl Context for KvmContext {
    fn switch(
        &self,
        address_space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError> {
        if self.released.load(Ordering::SeqCst) {
            return Err(PlatformError::Released);
        }
        let me = std::thread::current().id();
        if *self.owner_thread.get_or_init(|| me) != me {
            return Err(PlatformError::WrongThread);
        }
        let aspace = address_space
            .as_any()
            .downcast_ref::<KvmAddressSpace>()
            .filter(|a| Arc::ptr_eq(&a.shared, &self.shared))
            .ok_or(PlatformError::ForeignAddressSpace)?;
        if aspace.released.load(Ordering::SeqCst) {
            return Err(PlatformError::Released);
        }
        if !canonical(regs.gp.fs_base) || !canonical(regs.gp.gs_base) {
            return Err(PlatformError::InvalidArgument(
                "non-canonical FS or GS base",
            ));
        }
        if self.interrupt_pending.swap(false, Ordering::SeqCst) {
            return Ok(Trap::Interrupted);
        }
        prepare_this_thread()?;
        let Some(busy) = self.acquire()? else {
            self.interrupt_pending.store(false, Ordering::SeqCst);
            return Ok(Trap::Interrupted);
        };
        let vcpu = busy.0.clone();
        vcpu.kick.tid.store(current_tid(), Ordering::SeqCst);
        *self.current.lock() = Some(vcpu.clone());
        let result = {
            let mut st = vcpu.state.lock();
            self.run(&vcpu, &mut st, aspace, regs)
        };
        *self.current.lock() = None;
        drop(busy);
        result
    }

    fn interrupt(&self) {
        self.interrupt_pending.store(true, Ordering::SeqCst);
        let current = self.current.lock();
        if let Some(v) = current.as_ref()
            && v.kick.in_guest.load(Ordering::SeqCst)
        {
            v.kick.kick();
        }
    }

    fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        if let Some(v) = self.last.lock().take() {
            let _ = v
                .owner
                .compare_exchange(self.id, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        self.release();
    }
}
