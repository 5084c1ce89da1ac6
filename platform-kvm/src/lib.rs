//! The KVM platform: application code runs in guest ring 3 of one VM per platform
//! instance, and every system call, fault and synchronous exception exits to the Sentry.
//!
//! - Guest-physical memory is the [`MemoryFile`] (guest-physical address = file offset,
//!   registered in KVM memory slots lazily as mappings reach further into the file) plus a
//!   private region above it for the platform's own structures (see [`layout`]).
//! - Each [`AddressSpace`] is a 4-level page-table tree built in the
//!   private region ([`address_space`]); the kernel half (stubs, IDT, GDT/TSS, stacks) is
//!   mapped supervisor-only into all of them.
//! - Ring 0 only holds hand-assembled trampolines ([`stubs`]) that exit with `out`.
//! - Each [`Context`] borrows a vCPU from a pool for each switch
//!   ([`vcpu`], [`context`]).
//!
//! See README.md for the design and an example.
//!
//! `unsafe` is denied in the crate except in `region` (the private region's mapping),
//! `slots` (KVM memory-slot registration and the MMU-notifier `madvise`) and `vcpu` (the
//! shared `kvm_run` flag, the kick signal, `KVM_SET_XSAVE`); each block has a `SAFETY:`
//! line.

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod address_space;
pub mod context;
mod cpuid;
pub mod layout;
#[allow(unsafe_code)]
mod region;
pub mod seccomp;
#[allow(unsafe_code)]
mod slots;
pub mod stubs;
#[allow(unsafe_code)]
pub mod vcpu;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use kvm_ioctls::{Kvm, VmFd};
use platform::{AddressSpace, Context, MemoryFile, Platform, PlatformError};

pub use address_space::KvmAddressSpace;
pub use context::KvmContext;

use crate::cpuid::CpuConfig;
use crate::layout::{
    IDT_OFF, KERNEL_AREA_SIZE, KPD_OFF, KPDPT_OFF, KPT_COUNT, KPT_OFF, PAGE, PRIVATE_SIZE,
    STUBS_OFF, kva, pte,
};
use crate::region::{PageAllocator, PrivateRegion};
use crate::vcpu::Vcpu;

/// Retired page-table pages (see [`PageAllocator`]) recycled with one zap of all shadow
/// pages. Until then new tables come from the untouched part of the private region.
const RETIRED_BATCH: usize = 512;

/// State shared by the platform, its address spaces and its contexts.
#[derive(Debug)]
pub(crate) struct Shared {
    /// vCPUs made so far (the pool). Declared before `vm` so they are closed first.
    pub(crate) vcpus: Mutex<Vec<Arc<Vcpu>>>,
    pub(crate) vm: VmFd,
    pub(crate) region: PrivateRegion,
    pub(crate) memory_file: Arc<MemoryFile>,
    /// Guest-physical address of private offset 0.
    pub(crate) private_gpa: u64,
    pub(crate) slots: slots::MemorySlots,
    pub(crate) pages: Mutex<PageAllocator>,
    pub(crate) cpu: CpuConfig,
    /// Private offset of the PML4 that maps only the kernel half (loaded at vCPU set-up).
    pub(crate) boot_pml4: u64,
    pub(crate) next_id: AtomicU64,
    pub(crate) max_vcpus: usize,
    pub(crate) max_user_address: u64,
    /// KVM supports `KVM_CAP_SYNC_REGS` for general and system registers.
    pub(crate) sync_regs: bool,
    /// Enter the application by loading ring-3 state directly (user CS/SS, CR3, FS/GS
    /// base and registers through the sync area) instead of through a return stub: under
    /// PVM's emulated mode every privileged guest instruction (`iretq`, `sysretq`,
    /// `mov cr3`) is one more trip through the hypervisor.
    pub(crate) direct_entry: bool,
    /// `LSTAR` is the user-accessible syscall page ([`layout::SYSCALL_PAGE_OFF`]): under
    /// PVM's emulated mode, where `syscall` does not leave user mode.
    pub(crate) user_syscall_entry: bool,
    /// Fast FPU mode (with the user-mode syscall entry): `LSTAR` is a per-vCPU user-mode
    /// entry that saves the FPU state with `xsave64` into a page of the running address
    /// space ([`layout::FPU_SLOT_BASE`]), sparing `KVM_GET_XSAVE` on system calls.
    pub(crate) fast_fpu: bool,
    /// Native (VMX/SVM) or PVM.
    pub(crate) abi: vcpu::Abi,
    /// KVM shadows guest page tables (no EPT/NPT, or PVM): it does not see the host's
    /// writes to them, so changed entries need [`Shared::zap_shadow_pages`].
    pub(crate) shadow_paging: bool,
    /// Drop all shadow pages on every mapping change instead of KVM's translations of the
    /// changed pages only (`RSENTRY_KVM_ZAP_ALL=1`, for comparison).
    pub(crate) zap_all: bool,
}

impl Shared {
    /// Makes sure guest-physical `[0, end)` is backed by memory-file slots.
    pub(crate) fn ensure_slots(&self, end: u64) -> Result<(), PlatformError> {
        self.slots.ensure_file(&self.vm, &self.memory_file, end)
    }

    /// Makes KVM drop its shadow page tables (see [`slots::MemorySlots::zap_shadow_pages`]);
    /// page-table pages retired before the zap become free.
    pub(crate) fn zap_shadow_pages(&self) -> Result<(), PlatformError> {
        let retired = self.lock_pages().take_retired();
        let r =
            self.slots
                .zap_shadow_pages(&self.vm, &self.region, self.private_gpa + PRIVATE_SIZE);
        self.lock_pages().free_zapped(retired, r.is_ok());
        r
    }

    fn lock_pages(&self) -> parking_lot::MutexGuard<'_, PageAllocator> {
        self.pages.lock()
    }

    /// Allocates a zeroed page-table page; returns its private offset. Retired pages are
    /// recycled (with one zap for the whole batch) once enough have piled up or nothing
    /// else is left.
    pub(crate) fn alloc_table(&self) -> Result<u64, PlatformError> {
        let page = {
            let mut p = self.lock_pages();
            if p.free_count() == 0 && p.retired() >= RETIRED_BATCH {
                None
            } else {
                p.alloc()
            }
        };
        let page = match page {
            Some(page) => page,
            None => {
                if self.lock_pages().retired() > 0 {
                    self.zap_shadow_pages()?;
                }
                self.lock_pages().alloc().ok_or(PlatformError::Host {
                    op: "allocate page table",
                    errno: linux_abi::Errno::ENOMEM,
                })?
            }
        };
        self.region.zero_page(page)?;
        Ok(page)
    }

    /// Returns a page-table page that no vCPU walks any more. Where KVM shadows page
    /// tables it is retired until the next zap (see [`PageAllocator`]).
    pub(crate) fn free_table(&self, page: u64) {
        let mut p = self.lock_pages();
        if self.shadow_paging {
            p.retire(page);
        } else {
            p.free(page);
        }
    }

    /// Guest-physical address of a private offset.
    pub(crate) fn gpa(&self, off: u64) -> u64 {
        self.private_gpa + off
    }

    /// A fresh id for an address space or context (never 0).
    pub(crate) fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// The KVM platform. Cheap to share: address spaces and contexts keep the VM alive.
#[derive(Debug)]
pub struct KvmPlatform {
    shared: Arc<Shared>,
}

/// How a switch enters the application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EntryMode {
    /// [`EntryMode::Direct`] under PVM's emulated mode, else [`EntryMode::ReturnStubs`].
    #[default]
    Auto,
    /// Through the ring-0 return stubs (`iretq`/`sysretq`, CR3 loaded by the stub).
    ReturnStubs,
    /// By loading ring-3 state straight into the vCPU. Only where KVM shadows the page
    /// tables (a CR3 loaded this way is not guaranteed to flush a hardware-tagged TLB).
    Direct,
}

impl KvmPlatform {
    /// Creates the VM for `memory_file`. Returns [`PlatformError::Unavailable`] when
    /// `/dev/kvm` cannot be used.
    pub fn new(memory_file: Arc<MemoryFile>) -> Result<KvmPlatform, PlatformError> {
        Self::with_entry_mode(memory_file, EntryMode::Auto)
    }

    /// [`KvmPlatform::new`] with a chosen [`EntryMode`] (tests run both). `Direct` where
    /// KVM does not shadow page tables is [`PlatformError::Unavailable`].
    pub fn with_entry_mode(
        memory_file: Arc<MemoryFile>,
        entry: EntryMode,
    ) -> Result<KvmPlatform, PlatformError> {
        let kvm = Kvm::new().map_err(|e| PlatformError::Unavailable(format!("/dev/kvm: {e}")))?;
        let vm = kvm
            .create_vm()
            .map_err(|e| PlatformError::Unavailable(format!("KVM_CREATE_VM: {e}")))?;
        let cpu = cpuid::configure(&kvm)?;
        let abi = vcpu::Abi::detect(&kvm)?;
        let private_gpa = memory_file.capacity().div_ceil(1 << 30) * (1 << 30);
        let phys_limit = 1u64 << cpu.phys_bits.min(52);
        if private_gpa + PRIVATE_SIZE > phys_limit {
            return Err(PlatformError::Unavailable(format!(
                "memory file of {:#x} bytes does not fit the guest's {}-bit physical addresses",
                memory_file.capacity(),
                cpu.phys_bits
            )));
        }
        let max_vcpus = kvm.get_max_vcpus().min(layout::MAX_VCPUS);
        let shadow_paging = uses_shadow_paging();
        if entry == EntryMode::Direct && !shadow_paging {
            return Err(PlatformError::Unavailable(
                "direct entry needs KVM to shadow the page tables".into(),
            ));
        }
        let region = PrivateRegion::new(PRIVATE_SIZE)?;
        let slots = slots::MemorySlots::new(&kvm);
        slots
            .register_private(&vm, &region, private_gpa)
            .map_err(|e| PlatformError::Unavailable(e.to_string()))?;

        let direct_entry = abi == vcpu::Abi::Native
            && match entry {
                EntryMode::Auto => pvm_module_loaded(),
                EntryMode::ReturnStubs => false,
                EntryMode::Direct => true,
            };
        let user_syscall_entry = direct_entry
            && pvm_module_loaded()
            && std::env::var_os("RSENTRY_KVM_SUPERVISOR_SYSCALL").is_none();
        let fast_fpu = user_syscall_entry
            && platform::fpu_state_size() as u64 <= layout::FPU_SLOT_REGS
            && std::env::var_os("RSENTRY_KVM_NO_FAST_FPU").is_none();
        let shared = Shared {
            vcpus: Mutex::new(Vec::new()),
            vm,
            region,
            memory_file,
            private_gpa,
            slots,
            pages: Mutex::new(PageAllocator::new(KERNEL_AREA_SIZE, PRIVATE_SIZE)),
            cpu,
            boot_pml4: 0,
            next_id: AtomicU64::new(1),
            max_vcpus,
            max_user_address: if fast_fpu {
                layout::FPU_SLOT_BASE
            } else {
                layout::KERNEL_BASE
            },
            sync_regs: kvm.check_extension_int(kvm_ioctls::Cap::SyncRegs) & 3 == 3,
            direct_entry,
            user_syscall_entry,
            fast_fpu,
            abi,
            shadow_paging,
            zap_all: std::env::var_os("RSENTRY_KVM_ZAP_ALL").is_some(),
        };
        let boot_pml4 = build_kernel_half(&shared)?;
        let shared = Shared {
            boot_pml4,
            ..shared
        };
        tracing::debug!(
            private_gpa,
            max_vcpus,
            xcr0 = shared.cpu.xcr0,
            cr4 = shared.cpu.cr4,
            "kvm platform"
        );
        Ok(KvmPlatform {
            shared: Arc::new(shared),
        })
    }

    /// True when `/dev/kvm` is PVM (`kvm_pvm`, either its own ABI or its emulation of
    /// hardware virtualization) rather than VMX/SVM.
    pub fn is_pvm(&self) -> bool {
        self.shared.abi == vcpu::Abi::Pvm || pvm_module_loaded()
    }

    /// The number of vCPUs created so far (the pool grows to the number of contexts
    /// running at the same time).
    pub fn vcpu_count(&self) -> usize {
        self.shared.vcpus.lock().len()
    }
}

/// True when the PVM flavour of KVM is loaded.
fn pvm_module_loaded() -> bool {
    std::path::Path::new("/sys/module/kvm_pvm").exists()
}

/// True when KVM shadows guest page tables: PVM, or VMX/SVM without EPT/NPT.
fn uses_shadow_paging() -> bool {
    let param = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .ok()
    };
    if pvm_module_loaded() {
        return true;
    }
    let off = |v: Option<String>| matches!(v.as_deref(), Some("N" | "0"));
    off(param("/sys/module/kvm_intel/parameters/ept"))
        || off(param("/sys/module/kvm_amd/parameters/npt"))
}

/// Writes the stubs, the IDT and the kernel page tables; returns the boot PML4.
fn build_kernel_half(s: &Shared) -> Result<u64, PlatformError> {
    let r = &s.region;
    r.write(STUBS_OFF, &stubs::code_page())?;
    let mut idt = vec![0u8; PAGE as usize];
    for v in 0..stubs::EXCEPTION_COUNT {
        let handler = kva(STUBS_OFF + stubs::EXCEPTIONS + 16 * u64::from(v));
        // int3 and into may be executed by the application, as on Linux.
        let dpl = if v == 3 || v == 4 { 3 } else { 0 };
        // NMI, double fault and machine check run on IST1.
        let ist = if matches!(v, 2 | 8 | 18) { 1 } else { 0 };
        let off = 16 * usize::from(v);
        idt[off..off + 16].copy_from_slice(&layout::idt_gate(handler, dpl, ist));
    }
    r.write(IDT_OFF, &idt)?;
    // With the user-mode syscall entry, user access to the kernel area is decided by the
    // leaf entries: only the syscall page is a user page.
    let table = if s.user_syscall_entry {
        pte::TABLE_USER
    } else {
        pte::TABLE_KERNEL
    };
    if s.user_syscall_entry {
        let mut page = vec![0u8; PAGE as usize];
        page[..4].copy_from_slice(&stubs::user_syscall_code());
        r.write(layout::SYSCALL_PAGE_OFF, &page)?;
    }
    r.store(KPDPT_OFF, s.gpa(KPD_OFF) | table)?;
    for t in 0..KPT_COUNT {
        r.store(KPD_OFF + 8 * t, s.gpa(KPT_OFF + t * PAGE) | table)?;
    }
    for page in 0..KERNEL_AREA_SIZE / PAGE {
        let off = page * PAGE;
        let flags = if off == STUBS_OFF {
            pte::P | pte::A // read + execute
        } else if off == layout::SYSCALL_PAGE_OFF && s.user_syscall_entry {
            pte::P | pte::A | pte::US // read + execute, from ring 3
        } else if s.fast_fpu
            && off >= layout::VCPU_BASE
            && (off - layout::VCPU_BASE) % layout::VCPU_BLOCK == layout::PVCS_IN_BLOCK
        {
            // The per-vCPU fast syscall entry (the PVCS page is unused in this mode).
            pte::P | pte::A | pte::US
        } else {
            pte::P | pte::RW | pte::A | pte::D | pte::NX
        };
        r.store(KPT_OFF + 8 * page, s.gpa(off) | flags)?;
    }
    let boot = s.alloc_table()?;
    r.store(
        boot + 8 * layout::KERNEL_PML4_SLOT,
        s.gpa(KPDPT_OFF) | table,
    )?;
    Ok(boot)
}

impl Platform for KvmPlatform {
    fn name(&self) -> &'static str {
        "kvm"
    }

    fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.shared.memory_file
    }

    fn max_user_address(&self) -> u64 {
        self.shared.max_user_address
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        Ok(Arc::new(KvmAddressSpace::new(self.shared.clone())?))
    }

    fn new_context(&self) -> Result<Arc<dyn Context>, PlatformError> {
        Ok(Arc::new(KvmContext::new(self.shared.clone())))
    }
}
