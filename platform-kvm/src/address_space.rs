//! Address spaces: one 4-level page-table tree per [`KvmAddressSpace`], built in the
//! private region.
//!
//! PML4 slots 0..255 map the application (4 KiB pages, guest-physical address = memory
//! file offset, U/S set, R/W and NX from the protection); slot 255 points to the shared
//! kernel PDPT. Entries are written atomically because vCPUs walk the tables while they
//! change. A change that removes or alters a present entry bumps the address space's
//! *generation*: every vCPU compares the generation it last loaded with the current one
//! before it enters the guest and reloads CR3 (flushing the TLB) when they differ, and
//! vCPUs running in the address space at that moment are kicked out of the guest and
//! waited for, so the change is visible everywhere when the call returns.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use platform::{AddressSpace, PlatformError, Protection};

use crate::Shared;
use crate::layout::{self, PAGE, is_user_canonical, pte};

/// An application address space of the KVM platform.
#[derive(Debug)]
pub struct KvmAddressSpace {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: u64,
    /// Private offset of the PML4; `None` once released. Held while editing tables.
    tables: Mutex<Option<u64>>,
    /// Guest-physical address of the PML4 (0 once released), for vCPUs to load.
    pub(crate) pml4_gpa: AtomicU64,
    /// Bumped by every change that needs a TLB flush.
    pub(crate) generation: AtomicU64,
    pub(crate) released: AtomicBool,
    /// Private offsets of the FPU save pages mapped at [`layout::FPU_SLOT_BASE`] (fast FPU
    /// mode), by vCPU index; 0 = not mapped yet.
    fpu_slots: Mutex<Vec<u64>>,
    /// Set before any vCPU first enters the guest in this address space: until then KVM
    /// cannot have shadowed its tables, and changes need no zap.
    pub(crate) entered: AtomicBool,
}

/// The result of a page-table walk.
enum Walk {
    /// Private offset of the leaf entry.
    Leaf(u64),
    /// The table at this level (0 = PML4) has no entry: nothing is mapped in the whole
    /// range that entry would cover.
    Missing(usize),
}

/// The memory-file pages that changed entries mapped before the change, as ranges.
#[derive(Debug, Default)]
struct OldPages {
    ranges: Vec<(u64, u64)>,
    /// Too many ranges to invalidate one by one.
    overflowed: bool,
}

/// Ranges beyond which dropping all shadow pages is cheaper than one `madvise` each.
const MAX_OLD_RANGES: usize = 64;

impl OldPages {
    fn add(&mut self, entry: u64) {
        if self.overflowed {
            return;
        }
        let off = entry & pte::ADDR;
        if let Some(last) = self.ranges.last_mut()
            && last.0 + last.1 == off
        {
            last.1 += PAGE;
            return;
        }
        if self.ranges.len() == MAX_OLD_RANGES {
            self.overflowed = true;
            self.ranges.clear();
            return;
        }
        self.ranges.push((off, PAGE));
    }

    fn is_empty(&self) -> bool {
        self.ranges.is_empty() && !self.overflowed
    }
}

/// Bytes covered by one entry of a table at `level` (0 = PML4).
fn span(level: usize) -> u64 {
    PAGE << (9 * (3 - level))
}

impl KvmAddressSpace {
    pub(crate) fn new(shared: Arc<Shared>) -> Result<KvmAddressSpace, PlatformError> {
        let pml4 = shared.alloc_table()?;
        let slot = 8 * crate::layout::KERNEL_PML4_SLOT;
        let kernel = shared.region.load(shared.boot_pml4 + slot)?;
        shared.region.store(pml4 + slot, kernel)?;
        let id = shared.new_id();
        let pml4_gpa = shared.gpa(pml4);
        Ok(KvmAddressSpace {
            shared,
            id,
            tables: Mutex::new(Some(pml4)),
            pml4_gpa: AtomicU64::new(pml4_gpa),
            generation: AtomicU64::new(1),
            released: AtomicBool::new(false),
            fpu_slots: Mutex::new(Vec::new()),
            entered: AtomicBool::new(false),
        })
    }

    /// Page-table pages this address space holds (for tests and statistics).
    pub fn table_pages(&self) -> usize {
        let g = self.tables.lock();
        let Some(pml4) = *g else { return 0 };
        let mut n = 1;
        let _ = self.for_each_table(pml4, 0, &mut |_, _| n += 1);
        n
    }

    fn check_range(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        if !addr.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return Err(PlatformError::InvalidArgument(
                "address or length not page aligned",
            ));
        }
        if len == 0 {
            return Err(PlatformError::InvalidArgument("zero length"));
        }
        let end = addr
            .checked_add(len)
            .ok_or(PlatformError::InvalidArgument("address range overflows"))?;
        if addr < 0x1_0000 || end > self.shared.max_user_address || !is_user_canonical(end - 1) {
            return Err(PlatformError::InvalidArgument(
                "address range outside user memory",
            ));
        }
        Ok(())
    }

    fn table_of(&self, entry: u64) -> Result<u64, PlatformError> {
        let gpa = entry & pte::ADDR;
        let off = gpa.wrapping_sub(self.shared.private_gpa);
        if gpa < self.shared.private_gpa || off >= self.shared.region.size() {
            return Err(PlatformError::Internal(format!(
                "corrupt page-table entry {entry:#x}"
            )));
        }
        Ok(off)
    }

    /// Walks to the leaf entry of `va`, creating tables when `create`.
    fn walk(&self, pml4: u64, va: u64, create: bool) -> Result<Walk, PlatformError> {
        let idx = crate::layout::indices(va);
        let mut table = pml4;
        for (level, &i) in idx.iter().enumerate().take(3) {
            let slot = table + 8 * i as u64;
            let e = self.shared.region.load(slot)?;
            table = if e & pte::P != 0 {
                self.table_of(e)?
            } else if create {
                let t = self.shared.alloc_table()?;
                self.shared
                    .region
                    .store(slot, self.shared.gpa(t) | pte::TABLE_USER)?;
                t
            } else {
                return Ok(Walk::Missing(level));
            };
        }
        Ok(Walk::Leaf(table + 8 * idx[3] as u64))
    }

    /// The private offset of vCPU `index`'s FPU save page in this address space, mapped
    /// (user read-write, never executable) on first use. Only new entries are written, so
    /// no flush is needed.
    pub(crate) fn fpu_slot(&self, index: usize) -> Result<u64, PlatformError> {
        let mut slots = self.fpu_slots.lock();
        if let Some(&off) = slots.get(index)
            && off != 0
        {
            return Ok(off);
        }
        let g = self.tables.lock();
        let pml4 = (*g).ok_or(PlatformError::Released)?;
        let page = self.shared.alloc_table()?;
        let va = layout::FPU_SLOT_BASE + index as u64 * PAGE;
        let slot = match self.walk(pml4, va, true) {
            Ok(Walk::Leaf(slot)) => slot,
            Ok(Walk::Missing(_)) => {
                self.shared.free_table(page);
                return Err(PlatformError::Internal("FPU slot walk".into()));
            }
            Err(e) => {
                self.shared.free_table(page);
                return Err(e);
            }
        };
        let entry = self.shared.gpa(page) | pte::P | pte::RW | pte::US | pte::A | pte::D | pte::NX;
        self.shared.region.store(slot, entry)?;
        if slots.len() <= index {
            slots.resize(index + 1, 0);
        }
        slots[index] = page;
        Ok(page)
    }

    /// Reads application memory at `va` as the application sees it (readable mappings
    /// only); `None` when any byte is not mapped readable.
    pub(crate) fn read_user(&self, va: u64, buf: &mut [u8]) -> Option<()> {
        let g = self.tables.lock();
        let pml4 = (*g)?;
        let mut done = 0;
        while done < buf.len() {
            let a = va.checked_add(done as u64)?;
            if a >= self.shared.max_user_address {
                return None;
            }
            let Ok(Walk::Leaf(slot)) = self.walk(pml4, a, false) else {
                return None;
            };
            let e = self.shared.region.load(slot).ok()?;
            if e & pte::P == 0 || e & pte::US == 0 {
                return None;
            }
            let in_page = (a % PAGE) as usize;
            let n = (PAGE as usize - in_page).min(buf.len() - done);
            self.shared
                .memory_file
                .read_at((e & pte::ADDR) + in_page as u64, &mut buf[done..done + n])
                .ok()?;
            done += n;
        }
        Some(())
    }

    /// Calls `f(table, level)` for every user table below the PML4 (children first).
    fn for_each_table(
        &self,
        table: u64,
        level: usize,
        f: &mut dyn FnMut(u64, usize),
    ) -> Result<(), PlatformError> {
        if level == 3 {
            return Ok(());
        }
        let entries = if level == 0 {
            crate::layout::KERNEL_PML4_SLOT
        } else {
            512
        };
        for i in 0..entries {
            let e = self.shared.region.load(table + 8 * i)?;
            if e & pte::P != 0 {
                let child = self.table_of(e)?;
                self.for_each_table(child, level + 1, f)?;
                f(child, level + 1);
            }
        }
        Ok(())
    }

    /// Makes every vCPU see the current tables before it runs application code again.
    ///
    /// `old` lists the memory-file pages the changed entries mapped before: where KVM
    /// shadows the tables, dropping KVM's translations of just those pages is enough
    /// (see [`crate::slots::MemorySlots::invalidate_file_pages`]); very many ranges fall
    /// back to dropping all shadow pages.
    fn flush(&self, old: &OldPages) -> Result<(), PlatformError> {
        // The tables were edited before this load: a vCPU that sets `entered` after it
        // builds its shadows from the edited tables.
        if self.shared.shadow_paging && self.entered.load(Ordering::SeqCst) {
            if old.overflowed || self.shared.zap_all {
                self.shared.zap_shadow_pages()?;
            } else {
                for &(off, len) in &old.ranges {
                    let r =
                        self.shared
                            .slots
                            .invalidate_file_pages(&self.shared.memory_file, off, len);
                    if let Err(e) = r {
                        // E.g. locked pages refuse MADV_DONTNEED: drop everything instead.
                        tracing::debug!(error = %e, "targeted invalidation failed");
                        self.shared.zap_shadow_pages()?;
                        break;
                    }
                }
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.shootdown(false);
        Ok(())
    }

    /// Kicks the vCPUs running in this address space out of the guest and waits until
    /// each has left it once (`until_gone`: until each has left this address space).
    fn shootdown(&self, until_gone: bool) {
        let vcpus = self.shared.vcpus.lock().clone();
        for v in vcpus {
            let k = &v.kick;
            if k.current_as.load(Ordering::SeqCst) != self.id {
                continue;
            }
            // One kick suffices: a kicked vCPU checks the generation and the released flag
            // before it enters the guest again.
            let mut kicked_at: Option<u64> = None;
            loop {
                if k.current_as.load(Ordering::SeqCst) != self.id {
                    break;
                }
                let in_guest = k.in_guest.load(Ordering::SeqCst);
                let exits = k.exits.load(Ordering::SeqCst);
                if !until_gone && (!in_guest || kicked_at.is_some_and(|e| e != exits)) {
                    break;
                }
                if in_guest && kicked_at.is_none() {
                    kicked_at = Some(exits);
                    k.kick();
                }
                std::thread::yield_now();
            }
        }
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map_file(
        &self,
        addr: u64,
        file_offset: u64,
        len: u64,
        prot: Protection,
    ) -> Result<(), PlatformError> {
        self.check_range(addr, len)?;
        if !file_offset.is_multiple_of(PAGE) {
            return Err(PlatformError::InvalidArgument(
                "file offset not page aligned",
            ));
        }
        let file_end = file_offset
            .checked_add(len)
            .filter(|&e| e <= self.shared.memory_file.size())
            .ok_or(PlatformError::InvalidArgument(
                "file range outside the memory file",
            ))?;
        self.shared.ensure_slots(file_end)?;
        let mut flags = 0;
        if prot.read || prot.write || prot.execute {
            flags = pte::P | pte::US | pte::A | pte::D;
            if prot.write {
                flags |= pte::RW;
            }
            if !prot.execute {
                flags |= pte::NX;
            }
        }
        let mut old_pages = OldPages::default();
        {
            let g = self.tables.lock();
            let pml4 = (*g).ok_or(PlatformError::Released)?;
            let mut off = 0;
            while off < len {
                let va = addr + off;
                let new = if flags == 0 {
                    0
                } else {
                    (file_offset + off) | flags
                };
                match self.walk(pml4, va, flags != 0)? {
                    Walk::Leaf(slot) => {
                        let old = self.shared.region.load(slot)?;
                        if old != new {
                            self.shared.region.store(slot, new)?;
                            if old & pte::P != 0 {
                                old_pages.add(old);
                            }
                        }
                        off += PAGE;
                    }
                    // Only when mapping PROT_NONE over a hole: nothing to do there.
                    Walk::Missing(level) => off = (va | (span(level) - 1)) + 1 - addr,
                }
            }
        }
        if !old_pages.is_empty() {
            self.flush(&old_pages)?;
        }
        Ok(())
    }

    fn unmap(&self, addr: u64, len: u64) -> Result<(), PlatformError> {
        self.check_range(addr, len)?;
        let mut old_pages = OldPages::default();
        {
            let g = self.tables.lock();
            let pml4 = (*g).ok_or(PlatformError::Released)?;
            let end = addr + len;
            let mut va = addr;
            while va < end {
                match self.walk(pml4, va, false)? {
                    Walk::Leaf(slot) => {
                        let old = self.shared.region.load(slot)?;
                        if old & pte::P != 0 {
                            self.shared.region.store(slot, 0)?;
                            old_pages.add(old);
                        }
                        va += PAGE;
                    }
                    Walk::Missing(level) => va = (va | (span(level) - 1)).saturating_add(1),
                }
            }
        }
        if !old_pages.is_empty() {
            self.flush(&old_pages)?;
        }
        Ok(())
    }

    fn release(&self) {
        if self.released.swap(true, Ordering::SeqCst) {
            return;
        }
        // Taking the PML4 makes every later edit fail with `Released`, so the lock need
        // not be held below (and must not be while taking `fpu_slots`, which
        // `fpu_slot` locks first).
        let Some(pml4) = self.tables.lock().take() else {
            return;
        };
        self.pml4_gpa.store(0, Ordering::SeqCst);
        // No vCPU may walk the tables any more before they are reused.
        self.shootdown(true);
        let mut tables = Vec::new();
        if let Err(e) = self.for_each_table(pml4, 0, &mut |t, _| tables.push(t)) {
            tracing::error!(error = %e, "leaking page tables of a corrupt address space");
            return;
        }
        tables.push(pml4);
        tables.extend(
            std::mem::take(&mut *self.fpu_slots.lock())
                .into_iter()
                .filter(|&p| p != 0),
        );
        for t in tables {
            self.shared.free_table(t);
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for KvmAddressSpace {
    fn drop(&mut self) {
        self.release();
    }
}
