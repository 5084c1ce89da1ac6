//! KVM memory slots: the private region, the memory file (registered lazily as mappings
//! reach further into it), and the scratch slot whose addition and deletion makes KVM
//! drop its shadow page tables, and the targeted alternative to that (dropping KVM's
//! translations of some memory-file pages). This module owns the `unsafe` of
//! `KVM_SET_USER_MEMORY_REGION` and `madvise`; its callers keep the memory alive (both the private
//! region and the memory file live in [`crate::Shared`], which closes the VM first).

use parking_lot::Mutex;

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::{Kvm, VmFd};
use linux_abi::Errno;
use platform::{MemoryFile, PlatformError};

use crate::layout::PAGE;
use crate::region::PrivateRegion;

/// Memory slot of the private region.
const PRIVATE_SLOT: u32 = 0;
/// The smallest memory-file slot registered at once.
const MIN_SLOT_SIZE: u64 = 64 << 20;

/// Which part of the memory file is registered with KVM.
#[derive(Debug)]
struct FileSlots {
    /// Guest-physical `[0, registered)` is backed by memory-file slots.
    registered: u64,
    /// Next free slot number.
    next: u32,
}

/// The VM's memory slots.
#[derive(Debug)]
pub(crate) struct MemorySlots {
    file: Mutex<FileSlots>,
    /// Scratch slot for [`MemorySlots::zap_shadow_pages`]: the highest slot number, so
    /// it never collides with the memory-file slots, which count up from 1.
    zap_slot: u32,
    zap_lock: Mutex<()>,
}

fn set(
    vm: &VmFd,
    region: kvm_userspace_memory_region,
    op: &'static str,
) -> Result<(), PlatformError> {
    // SAFETY: every caller passes a host range that is part of a mapping owned by
    // `Shared` (the private region or the memory file's own mapping), which outlives the
    // VM, and a guest-physical range that overlaps no other slot.
    unsafe { vm.set_user_memory_region(region) }.map_err(|e| PlatformError::Host {
        op,
        errno: Errno::new(e.errno()),
    })
}

impl MemorySlots {
    /// No slots yet; sized to what `kvm` accepts.
    pub(crate) fn new(kvm: &Kvm) -> MemorySlots {
        let zap_slot = (kvm.get_nr_memslots().min(u32::MAX as usize) as u32).saturating_sub(1);
        MemorySlots {
            file: Mutex::new(FileSlots {
                registered: 0,
                next: PRIVATE_SLOT + 1,
            }),
            zap_slot,
            zap_lock: Mutex::new(()),
        }
    }

    /// Registers the private region at guest-physical `gpa`.
    pub(crate) fn register_private(
        &self,
        vm: &VmFd,
        region: &PrivateRegion,
        gpa: u64,
    ) -> Result<(), PlatformError> {
        let slot = kvm_userspace_memory_region {
            slot: PRIVATE_SLOT,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: region.size(),
            userspace_addr: region.host_address(),
        };
        set(vm, slot, "KVM_SET_USER_MEMORY_REGION (private)")
    }

    /// Makes sure guest-physical `[0, end)` is backed by memory-file slots. The
    /// registered prefix grows geometrically (at least 64 MiB, at least doubling) so a
    /// file that grows in small steps needs few slots. Pages past the file's size are
    /// registered but never touched: page tables only point below it.
    pub(crate) fn ensure_file(
        &self,
        vm: &VmFd,
        file: &MemoryFile,
        end: u64,
    ) -> Result<(), PlatformError> {
        let mut s = self.file.lock();
        if end <= s.registered {
            return Ok(());
        }
        let capacity = file.capacity();
        if end > capacity {
            return Err(PlatformError::InvalidArgument(
                "file range beyond the memory file",
            ));
        }
        let want = end.max(s.registered.saturating_mul(2)).max(MIN_SLOT_SIZE);
        let new_end = want.div_ceil(2 << 20).saturating_mul(2 << 20).min(capacity);
        if s.next >= self.zap_slot {
            return Err(PlatformError::Internal("out of KVM memory slots".into()));
        }
        let slot = kvm_userspace_memory_region {
            slot: s.next,
            flags: 0,
            guest_phys_addr: s.registered,
            memory_size: new_end - s.registered,
            userspace_addr: file.host_address() + s.registered,
        };
        set(vm, slot, "KVM_SET_USER_MEMORY_REGION (memory file)")?;
        tracing::debug!(
            slot = s.next,
            start = s.registered,
            end = new_end,
            "memory file slot"
        );
        s.registered = new_end;
        s.next += 1;
        Ok(())
    }

    /// Makes KVM drop every translation (shadow page-table entry, TLB entry) of the
    /// memory-file pages `[off, off + len)`, whatever guest-virtual address maps them:
    /// `MADV_DONTNEED` on the host mapping the memory slot uses fires KVM's MMU notifier,
    /// which zaps every spte of those pages and flushes every vCPU's TLB before it
    /// returns. The data stays: the mapping is a `MAP_SHARED` view of the memfd, and the
    /// next access (guest or Sentry) maps the same page again. Guests re-walk their page
    /// tables on the next access, so a host edit of the entries that mapped these pages
    /// takes effect without dropping all shadow pages.
    pub(crate) fn invalidate_file_pages(
        &self,
        file: &MemoryFile,
        off: u64,
        len: u64,
    ) -> Result<(), PlatformError> {
        let inside = off.checked_add(len).is_some_and(|e| e <= file.capacity());
        if !inside || !off.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return Err(PlatformError::InvalidArgument(
                "file range outside the memory file",
            ));
        }
        // SAFETY: the range lies inside the memory file's own MAP_SHARED mapping (checked
        // above); MADV_DONTNEED only drops page-table entries there, never the memfd's
        // data, so no reference into the mapping is invalidated.
        let r = unsafe {
            libc::madvise(
                (file.host_address() + off) as *mut libc::c_void,
                len as usize,
                libc::MADV_DONTNEED,
            )
        };
        if r != 0 {
            return Err(PlatformError::last_os_error("madvise(MADV_DONTNEED)"));
        }
        Ok(())
    }

    /// Makes KVM drop every shadow page table. KVM write-protects the guest page tables
    /// it shadows and learns of changes by trapping guest writes, but the platform edits
    /// the tables from the host, which KVM never sees. Deleting any memory slot zaps all
    /// shadow pages (KVM's default `KVM_X86_QUIRK_SLOT_ZAP_ALL`), so a scratch one-page
    /// slot (aliasing the first private page at `scratch_gpa`, which no page table
    /// points to) is added and deleted; every vCPU rebuilds its shadows from the current
    /// tables on its next access.
    pub(crate) fn zap_shadow_pages(
        &self,
        vm: &VmFd,
        region: &PrivateRegion,
        scratch_gpa: u64,
    ) -> Result<(), PlatformError> {
        let _serialized = self.zap_lock.lock();
        let mut slot = kvm_userspace_memory_region {
            slot: self.zap_slot,
            flags: 0,
            guest_phys_addr: scratch_gpa,
            memory_size: PAGE,
            userspace_addr: region.host_address(),
        };
        set(vm, slot, "KVM_SET_USER_MEMORY_REGION (zap)")?;
        slot.memory_size = 0;
        set(vm, slot, "KVM_SET_USER_MEMORY_REGION (zap)")
    }
}
