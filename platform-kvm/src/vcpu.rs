//! vCPUs: creation and long-mode set-up, the pool, and kicking a vCPU out of the guest.
//!
//! A vCPU is set up once: filtered CPUID, CR0/CR4/EFER for long mode with paging, its own
//! GDT and TSS (RSP0 and IST1 stacks in its per-vCPU block), the shared IDT, the
//! `syscall` MSRs and XCR0. From then on it sits in ring 0 at a stub, and every entry
//! into the application goes through a return stub (see [`crate::stubs`]).
//!
//! Kicking (from [`platform::Context::interrupt`] or a TLB shootdown) sets the vCPU's
//! `immediate_exit` and sends the calling-thread signal [`kick_signal`] to the thread in
//! `KVM_RUN`. This module owns the `unsafe` code for the shared `kvm_run` flag, the signal
//! handler and `tgkill`.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU64, Ordering};

use parking_lot::Mutex;

use kvm_bindings::{Msrs, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, kvm_xcrs, kvm_xsave};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};
use platform::PlatformError;

use crate::Shared;
use crate::layout::{
    CR0, CR4_PVM, EFER, FPU_SLOT_BASE, GDT_ENTRIES, GDT_IN_BLOCK, IDT_OFF, IST1_TOP_IN_BLOCK,
    KERNEL_CS, KERNEL_DS, PVCS_IN_BLOCK, RSP0_TOP_IN_BLOCK, SFMASK, STAR, STUBS_OFF,
    SYSCALL_PAGE_OFF, TSS_IN_BLOCK, TSS_SEL, TSS_SIZE, gdt, kva, tss, vcpu_block,
};
use crate::stubs;

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_CSTAR: u32 = 0xc000_0083;
const MSR_SFMASK: u32 = 0xc000_0084;
const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
const MSR_TSC_AUX: u32 = 0xc000_0103;
const MSR_PVM_VCPU_STRUCT: u32 = 0x4b56_4d20;
const MSR_PVM_EVENT_ENTRY: u32 = 0x4b56_4d21;
const MSR_PVM_RETU_RIP: u32 = 0x4b56_4d22;

/// Which kind of KVM runs the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abi {
    /// Hardware virtualization (VMX/SVM): a real ring 0 with IDT, TSS and `iretq`.
    Native,
    /// PVM (pagetable-based virtual machine, `kvm_pvm`): the guest runs in hardware ring 3
    /// and the hypervisor emulates supervisor mode. There is no IDT: events from user mode
    /// go to `MSR_PVM_EVENT_ENTRY` with their state in the PVCS, `syscall` goes to
    /// `LSTAR`, and the way back is `ERETU` (a `syscall` at `MSR_PVM_RETU_RIP`).
    Pvm,
}

impl Abi {
    /// Finds out which kind of KVM `kvm` is: PVM accepts its vCPU-struct MSR.
    pub(crate) fn detect(kvm: &kvm_ioctls::Kvm) -> Result<Abi, PlatformError> {
        let vm = kvm
            .create_vm()
            .map_err(|e| PlatformError::Unavailable(format!("KVM_CREATE_VM: {e}")))?;
        let vcpu = vm
            .create_vcpu(0)
            .map_err(|e| PlatformError::Unavailable(format!("KVM_CREATE_VCPU: {e}")))?;
        let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
            index: MSR_PVM_VCPU_STRUCT,
            ..Default::default()
        }])
        .map_err(|e| PlatformError::Internal(format!("msrs: {e:?}")))?;
        Ok(match vcpu.get_msrs(&mut msrs) {
            Ok(1) => Abi::Pvm,
            _ => Abi::Native,
        })
    }
}

/// The host signal that kicks a vCPU thread out of `KVM_RUN` (a real-time signal with a
/// no-op handler, unblocked in threads that switch contexts).
pub fn kick_signal() -> i32 {
    libc::SIGRTMIN() + 3
}

extern "C" fn kick_handler(_: libc::c_int) {}

/// The host thread id of the calling thread (cached per thread).
pub(crate) fn current_tid() -> i32 {
    thread_local! {
        static TID: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
    }
    TID.with(|t| {
        if t.get() == 0 {
            // SAFETY: gettid has no arguments and cannot fail.
            t.set(unsafe { libc::gettid() });
        }
        t.get()
    })
}

/// Installs the no-op handler of [`kick_signal`] once per process and unblocks the
/// signal in the calling thread.
pub(crate) fn prepare_thread() -> Result<(), PlatformError> {
    static INSTALL: Once = Once::new();
    let mut err = None;
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid starting point; we set a handler that
        // does nothing and is async-signal-safe.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = kick_handler as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        // SAFETY: `sa` is initialised; the old action is not needed.
        if unsafe { libc::sigaction(kick_signal(), &sa, std::ptr::null_mut()) } != 0 {
            err = Some(PlatformError::last_os_error("sigaction"));
        }
    });
    if let Some(e) = err {
        return Err(e);
    }
    // SAFETY: plain signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, kick_signal());
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    Ok(())
}

/// The part of a vCPU other threads touch: who runs it, whether it is in the guest, and
/// how to kick it.
#[derive(Debug)]
pub struct Kick {
    /// `kvm_run.immediate_exit` of this vCPU.
    immediate_exit: *const AtomicU8,
    /// Host thread id of the thread switching on this vCPU.
    pub(crate) tid: AtomicI32,
    /// Set from just before the last checks preceding `KVM_RUN` until it returns.
    pub(crate) in_guest: AtomicBool,
    /// Number of `KVM_RUN` returns.
    pub(crate) exits: AtomicU64,
    /// Id of the address space the vCPU is switching in (0 when idle).
    pub(crate) current_as: AtomicU64,
}

// SAFETY: `immediate_exit` points into the vCPU's `kvm_run` mapping, which lives as long
// as the `Vcpu` that owns both; it is only accessed atomically.
unsafe impl Send for Kick {}
// SAFETY: as above.
unsafe impl Sync for Kick {}

impl Kick {
    /// Forces the vCPU out of `KVM_RUN` now, or makes its next `KVM_RUN` return at once.
    pub(crate) fn kick(&self) {
        self.immediate_exit().store(1, Ordering::SeqCst);
        let tid = self.tid.load(Ordering::SeqCst);
        if tid > 0 && self.in_guest.load(Ordering::SeqCst) {
            // SAFETY: tgkill only sends a signal whose handler is a no-op; a stale tid at
            // worst signals another thread of this process, which ignores it.
            unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, kick_signal()) };
        }
    }

    fn immediate_exit(&self) -> &AtomicU8 {
        // SAFETY: see the Send/Sync justification: the pointer is valid and aligned for
        // the life of the vCPU, and u8/AtomicU8 share a layout.
        unsafe { &*self.immediate_exit }
    }

    /// Clears `immediate_exit` after `KVM_RUN` returned.
    pub(crate) fn clear(&self) {
        self.immediate_exit().store(0, Ordering::SeqCst);
    }
}

/// How a `KVM_RUN` ended.
#[derive(Debug)]
pub(crate) enum RunExit {
    /// `out` to this port (a stub exit).
    Out(u16),
    /// A signal or `immediate_exit` interrupted the run.
    Interrupted,
    /// Anything else: the guest is broken.
    Other(String),
}

/// The state only the thread that switches on the vCPU touches.
#[derive(Debug)]
pub(crate) struct VcpuState {
    pub(crate) fd: VcpuFd,
    /// The system registers to load when `sregs_dirty` (kernel CS/SS, FS/GS base...).
    pub(crate) sregs: kvm_sregs,
    pub(crate) sregs_dirty: bool,
    /// (address space id, generation) whose tables this vCPU has loaded.
    pub(crate) loaded: Option<(u64, u64)>,
    /// The FPU bytes the vCPU holds, when known (skips `KVM_SET_XSAVE`).
    pub(crate) fpu_loaded: Option<Vec<u8>>,
    pub(crate) xsave: Box<kvm_xsave>,
    /// Registers travel through `kvm_run` (`KVM_CAP_SYNC_REGS`).
    sync: bool,
    /// Direct-entry mode: the vCPU is in ring 3 with user segments loaded.
    pub(crate) in_user: bool,
}

/// One vCPU of the pool.
#[derive(Debug)]
pub struct Vcpu {
    pub(crate) index: usize,
    pub(crate) kick: Kick,
    /// Id of the context this vCPU belongs to (0: free).
    pub(crate) owner: AtomicU64,
    /// Set while a context switches on this vCPU.
    pub(crate) busy: AtomicBool,
    pub(crate) state: Mutex<VcpuState>,
}

fn host_err(op: &'static str, e: vmm_sys_util::errno::Error) -> PlatformError {
    PlatformError::Host {
        op,
        errno: linux_abi::Errno::new(e.errno()),
    }
}

fn segment(selector: u16, code: bool, dpl: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 0xb } else { 0x3 },
        present: 1,
        dpl,
        db: u8::from(!code),
        s: 1,
        l: u8::from(code),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

impl Vcpu {
    /// Creates and sets up vCPU `index`.
    pub(crate) fn new(shared: &Shared, index: usize) -> Result<Vcpu, PlatformError> {
        let mut fd = shared
            .vm
            .create_vcpu(index as u64)
            .map_err(|e| host_err("KVM_CREATE_VCPU", e))?;
        fd.set_cpuid2(&shared.cpu.cpuid)
            .map_err(|e| host_err("KVM_SET_CPUID2", e))?;

        let block = vcpu_block(index);
        let tss_va = kva(block + TSS_IN_BLOCK);
        let gdt_bytes: Vec<u8> = gdt(tss_va).iter().flat_map(|e| e.to_le_bytes()).collect();
        shared.region.write(block + GDT_IN_BLOCK, &gdt_bytes)?;
        shared.region.write(
            block + TSS_IN_BLOCK,
            &tss(
                kva(block + RSP0_TOP_IN_BLOCK),
                kva(block + IST1_TOP_IN_BLOCK),
                shared.user_syscall_entry.then_some(stubs::SYSCALL_PORT),
            ),
        )?;

        if shared.fast_fpu {
            let code_va = kva(block + PVCS_IN_BLOCK);
            let slot_va = FPU_SLOT_BASE + index as u64 * crate::layout::PAGE;
            let mut page = vec![0u8; crate::layout::PAGE as usize];
            let code = stubs::fast_syscall_code(code_va, slot_va);
            page[..code.len()].copy_from_slice(&code);
            shared.region.write(block + PVCS_IN_BLOCK, &page)?;
        }
        let pvm = shared.abi == Abi::Pvm;
        let mut sregs = fd.get_sregs().map_err(|e| host_err("KVM_GET_SREGS", e))?;
        sregs.cr0 = CR0;
        sregs.cr3 = shared.gpa(shared.boot_pml4);
        sregs.cr4 = if pvm { CR4_PVM } else { shared.cpu.cr4 };
        sregs.efer = EFER;
        sregs.cs = segment(KERNEL_CS, true, 0);
        sregs.ss = segment(KERNEL_DS, false, 0);
        // Null data selectors, as Linux leaves them for 64-bit programs; DPL 3 so that
        // returning to ring 3 does not invalidate them.
        let null = kvm_segment {
            selector: 0,
            dpl: 3,
            ..segment(0, false, 3)
        };
        sregs.ds = null;
        sregs.es = null;
        sregs.fs = null;
        sregs.gs = null;
        sregs.tr = kvm_segment {
            base: tss_va,
            limit: (TSS_SIZE - 1) as u32,
            selector: TSS_SEL,
            type_: 0xb,
            present: 1,
            dpl: 0,
            db: 0,
            s: 0,
            l: 0,
            g: 0,
            avl: 0,
            unusable: 0,
            padding: 0,
        };
        sregs.ldt = if pvm {
            // PVM has no LDT.
            kvm_segment::default()
        } else {
            kvm_segment {
                type_: 2,
                present: 1,
                unusable: 0,
                ..Default::default()
            }
        };
        sregs.gdt.base = kva(block + GDT_IN_BLOCK);
        sregs.gdt.limit = (GDT_ENTRIES * 8 - 1) as u16;
        sregs.idt.base = kva(IDT_OFF);
        sregs.idt.limit = 4095;
        sregs.interrupt_bitmap = [0; 4];
        fd.set_sregs(&sregs)
            .map_err(|e| host_err("KVM_SET_SREGS", e))?;

        let msr = |index: u32, data: u64| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        };
        let mut entries = vec![
            msr(MSR_STAR, STAR),
            msr(
                MSR_LSTAR,
                if shared.fast_fpu {
                    kva(block + PVCS_IN_BLOCK)
                } else if shared.user_syscall_entry {
                    kva(SYSCALL_PAGE_OFF)
                } else {
                    kva(STUBS_OFF + stubs::SYSCALL_ENTRY)
                },
            ),
            msr(MSR_KERNEL_GS_BASE, 0),
            msr(MSR_TSC_AUX, index as u64),
        ];
        if pvm {
            entries.push(msr(MSR_PVM_VCPU_STRUCT, shared.gpa(block + PVCS_IN_BLOCK)));
            entries.push(msr(
                MSR_PVM_EVENT_ENTRY,
                kva(STUBS_OFF + stubs::PVM_EVENT_USER),
            ));
            entries.push(msr(MSR_PVM_RETU_RIP, kva(STUBS_OFF + stubs::PVM_RETU)));
        } else {
            entries.push(msr(MSR_CSTAR, kva(STUBS_OFF + stubs::COMPAT_SYSCALL_ENTRY)));
            entries.push(msr(MSR_SFMASK, SFMASK));
        }
        let msrs = Msrs::from_entries(&entries)
            .map_err(|e| PlatformError::Internal(format!("msrs: {e:?}")))?;
        let n = fd
            .set_msrs(&msrs)
            .map_err(|e| host_err("KVM_SET_MSRS", e))?;
        if n != entries.len() {
            return Err(PlatformError::Internal(format!(
                "KVM_SET_MSRS set {n} of {} MSRs",
                entries.len()
            )));
        }
        let mut xcrs = kvm_xcrs {
            nr_xcrs: 1,
            ..Default::default()
        };
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = shared.cpu.xcr0;
        fd.set_xcrs(&xcrs)
            .map_err(|e| host_err("KVM_SET_XCRS", e))?;

        let sync = shared.sync_regs;
        if sync {
            fd.set_sync_valid_reg(SyncReg::Register);
            fd.set_sync_valid_reg(SyncReg::SystemRegister);
        }
        let run = fd.get_kvm_run();
        let immediate_exit = (&mut run.immediate_exit as *mut u8)
            .cast::<AtomicU8>()
            .cast_const();
        Ok(Vcpu {
            index,
            kick: Kick {
                immediate_exit,
                tid: AtomicI32::new(0),
                in_guest: AtomicBool::new(false),
                exits: AtomicU64::new(0),
                current_as: AtomicU64::new(0),
            },
            owner: AtomicU64::new(0),
            busy: AtomicBool::new(false),
            state: Mutex::new(VcpuState {
                fd,
                sregs,
                sregs_dirty: false,
                loaded: None,
                fpu_loaded: None,
                xsave: Box::new(kvm_xsave::default()),
                sync,
                in_user: false,
            }),
        })
    }
}

impl VcpuState {
    /// Loads general registers: through `kvm_run`'s sync area on the next `KVM_RUN` when
    /// KVM supports it (each vCPU ioctl costs about as much as a VM exit on nested
    /// hosts), else with `KVM_SET_REGS`.
    pub(crate) fn set_regs(&mut self, regs: &kvm_regs) -> Result<(), PlatformError> {
        if self.sync {
            self.fd.sync_regs_mut().regs = *regs;
            self.fd.set_sync_dirty_reg(SyncReg::Register);
            return Ok(());
        }
        self.fd
            .set_regs(regs)
            .map_err(|e| host_err("KVM_SET_REGS", e))
    }

    /// Reads general registers (as of the last exit, or as last set).
    pub(crate) fn get_regs(&self) -> Result<kvm_regs, PlatformError> {
        if self.sync {
            return Ok(self.fd.sync_regs().regs);
        }
        self.fd.get_regs().map_err(|e| host_err("KVM_GET_REGS", e))
    }

    /// Reads system registers.
    pub(crate) fn get_sregs(&self) -> Result<kvm_sregs, PlatformError> {
        if self.sync {
            return Ok(self.fd.sync_regs().sregs);
        }
        self.fd
            .get_sregs()
            .map_err(|e| host_err("KVM_GET_SREGS", e))
    }

    /// Loads system registers on the next `KVM_RUN` (or now, without sync registers).
    pub(crate) fn set_sregs(&mut self, sregs: &kvm_sregs) -> Result<(), PlatformError> {
        if self.sync {
            self.fd.sync_regs_mut().sregs = *sregs;
            self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
            return Ok(());
        }
        self.fd
            .set_sregs(sregs)
            .map_err(|e| host_err("KVM_SET_SREGS", e))
    }

    /// Loads `self.sregs` if they changed.
    pub(crate) fn flush_sregs(&mut self) -> Result<(), PlatformError> {
        if self.sregs_dirty {
            self.sregs.interrupt_bitmap = [0; 4];
            if self.sync {
                self.fd.sync_regs_mut().sregs = self.sregs;
                self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
            } else {
                self.fd
                    .set_sregs(&self.sregs)
                    .map_err(|e| host_err("KVM_SET_SREGS", e))?;
            }
            self.sregs_dirty = false;
        }
        Ok(())
    }

    /// Loads the FPU state `fpu` (standard XSAVE layout) unless the vCPU holds it
    /// already. `xcr0` limits the components marked present.
    pub(crate) fn set_fpu(&mut self, fpu: &[u8], xcr0: u64) -> Result<(), PlatformError> {
        if self.fpu_loaded.as_deref() == Some(fpu) {
            return Ok(());
        }
        let region = &mut self.xsave.region;
        region.fill(0);
        for (i, w) in fpu.chunks(4).take(region.len()).enumerate() {
            let mut b = [0u8; 4];
            b[..w.len()].copy_from_slice(w);
            region[i] = u32::from_le_bytes(b);
        }
        // XSAVE header: XSTATE_BV limited to enabled components, XCOMP_BV zero
        // (standard format); MXCSR reserved bits cleared so the load cannot fault.
        let xstate_bv = (u64::from(region[128]) | (u64::from(region[129]) << 32)) & xcr0;
        region[128] = xstate_bv as u32;
        region[129] = (xstate_bv >> 32) as u32;
        // XCOMP_BV and the reserved rest of the header must be zero.
        region[130..144].fill(0);
        region[6] &= 0xffff;
        // SAFETY: `xsave` is a complete 4096-byte kvm_xsave; KVM_SET_XSAVE reads exactly
        // that much because this VM never enabled dynamic (AMX) XSAVE features.
        unsafe { self.fd.set_xsave(&self.xsave) }.map_err(|e| host_err("KVM_SET_XSAVE", e))?;
        self.note_fpu(fpu);
        Ok(())
    }

    /// Reads the FPU state into `fpu` (standard XSAVE layout).
    pub(crate) fn get_fpu(&mut self, fpu: &mut [u8]) -> Result<(), PlatformError> {
        let x = self
            .fd
            .get_xsave()
            .map_err(|e| host_err("KVM_GET_XSAVE", e))?;
        for (i, chunk) in fpu.chunks_mut(4).enumerate() {
            let Some(w) = x.region.get(i) else { break };
            let b = w.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        self.note_fpu(fpu);
        Ok(())
    }

    /// Records that the vCPU holds `fpu` (saved by the guest itself), so the next
    /// [`VcpuState::set_fpu`] of the same bytes is skipped.
    pub(crate) fn note_fpu(&mut self, fpu: &[u8]) {
        match self.fpu_loaded.as_mut() {
            Some(v) if v.len() == fpu.len() => v.copy_from_slice(fpu),
            _ => self.fpu_loaded = Some(fpu.to_vec()),
        }
    }

    /// Runs the vCPU until it exits to the host.
    pub(crate) fn run(&mut self) -> RunExit {
        match self.fd.run() {
            Ok(VcpuExit::IoOut(port, _)) => RunExit::Out(port),
            Ok(VcpuExit::Intr) => RunExit::Interrupted,
            Ok(other) => RunExit::Other(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => RunExit::Interrupted,
            Err(e) => RunExit::Other(format!("KVM_RUN: {e}")),
        }
    }
}
