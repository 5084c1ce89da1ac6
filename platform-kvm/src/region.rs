//! The private region: an anonymous host mapping that holds the platform's own guest
//! structures (stubs, IDT, GDTs, TSSs, stacks, page tables), and the allocator of its
//! page-table pages.
//!
//! This module owns the raw pointer to that mapping. All accesses are bounds-checked;
//! 8-byte entries that a running vCPU may walk concurrently (page-table entries) are
//! read and written atomically.

use std::sync::atomic::{AtomicU64, Ordering};

use platform::PlatformError;

use crate::layout::PAGE;

/// An anonymous, zero-filled, `MAP_NORESERVE` host mapping.
#[derive(Debug)]
pub struct PrivateRegion {
    base: *mut u8,
    size: u64,
}

// SAFETY: the mapping is owned by this struct for its whole life and every access goes
// through bounds-checked methods (atomic for shared 8-byte entries); concurrent guest
// access is the same as concurrent access from another thread.
unsafe impl Send for PrivateRegion {}
// SAFETY: as above.
unsafe impl Sync for PrivateRegion {}

impl PrivateRegion {
    /// Reserves `size` bytes (a multiple of the page size).
    pub fn new(size: u64) -> Result<PrivateRegion, PlatformError> {
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choosing; no
        // existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(PlatformError::last_os_error("mmap private region"));
        }
        Ok(PrivateRegion {
            base: base.cast(),
            size,
        })
    }

    /// The host address of the mapping (for the KVM memory slot).
    pub fn host_address(&self) -> u64 {
        self.base as u64
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn check(&self, off: u64, len: u64) -> Result<(), PlatformError> {
        match off.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(PlatformError::Internal(format!(
                "private region access {off:#x}+{len:#x}"
            ))),
        }
    }

    /// Copies `data` to `off`.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<(), PlatformError> {
        self.check(off, data.len() as u64)?;
        // SAFETY: the range is inside the live mapping (checked above); `data` is a
        // distinct Rust buffer. Only structures no vCPU is using at the moment are written
        // this way (set-up, or the stack of the vCPU the caller has locked).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(off as usize), data.len())
        };
        Ok(())
    }

    /// Copies `buf.len()` bytes from `off`.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), PlatformError> {
        self.check(off, buf.len() as u64)?;
        // SAFETY: the range is inside the live mapping (checked above); `buf` is distinct.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.add(off as usize), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    fn entry(&self, off: u64) -> Result<&AtomicU64, PlatformError> {
        self.check(off, 8)?;
        if !off.is_multiple_of(8) {
            return Err(PlatformError::Internal(format!(
                "misaligned entry {off:#x}"
            )));
        }
        // SAFETY: the 8 bytes are inside the live mapping and 8-aligned (the base is page
        // aligned); AtomicU64 has the layout of u64 and the mapping outlives `&self`.
        Ok(unsafe { &*self.base.add(off as usize).cast::<AtomicU64>() })
    }

    /// Atomically reads the 8-byte entry at `off`.
    pub fn load(&self, off: u64) -> Result<u64, PlatformError> {
        Ok(self.entry(off)?.load(Ordering::Acquire))
    }

    /// Atomically writes the 8-byte entry at `off`.
    pub fn store(&self, off: u64, value: u64) -> Result<(), PlatformError> {
        self.entry(off)?.store(value, Ordering::Release);
        Ok(())
    }

    /// Zeroes one page.
    pub fn zero_page(&self, off: u64) -> Result<(), PlatformError> {
        self.check(off, PAGE)?;
        // SAFETY: the page is inside the live mapping (checked above) and not in use by
        // any vCPU (it was just allocated).
        unsafe { std::ptr::write_bytes(self.base.add(off as usize), 0, PAGE as usize) };
        Ok(())
    }
}

impl Drop for PrivateRegion {
    fn drop(&mut self) {
        // SAFETY: `base`/`size` describe the mapping made in `new`; the VM that used it is
        // gone (the region is dropped after the VM fd, see `Shared`).
        unsafe { libc::munmap(self.base.cast(), self.size as usize) };
    }
}

/// Allocator of page-table pages inside the private region: a bump pointer plus a free
/// list. Freed pages are zeroed again when handed out.
///
/// Where KVM shadows the guest page tables, a freed page may still be shadowed: KVM keeps
/// shadow pages (and cached roots) per guest-physical page and never sees the host's
/// writes, so handing the page to another address space would let that one see the old
/// one's translations. Such pages are *retired* instead of freed and become free only
/// after the next zap of all shadow pages ([`PageAllocator::take_retired`] before the zap,
/// [`PageAllocator::free_zapped`] after it).
#[derive(Debug)]
pub struct PageAllocator {
    next: u64,
    end: u64,
    free: Vec<u64>,
    retired: Vec<u64>,
}

impl PageAllocator {
    /// Hands out pages of `[start, end)`.
    pub fn new(start: u64, end: u64) -> PageAllocator {
        PageAllocator {
            next: start,
            end,
            free: Vec::new(),
            retired: Vec::new(),
        }
    }

    /// One page offset, or `None` when no free page is left (retired pages may remain).
    pub fn alloc(&mut self) -> Option<u64> {
        if let Some(p) = self.free.pop() {
            return Some(p);
        }
        if self.next + PAGE > self.end {
            return None;
        }
        let p = self.next;
        self.next += PAGE;
        Some(p)
    }

    /// Returns a page that no shadow page table can describe.
    pub fn free(&mut self, page: u64) {
        self.free.push(page);
    }

    /// Returns a page that KVM may still shadow: reusable after the next zap.
    pub fn retire(&mut self, page: u64) {
        self.retired.push(page);
    }

    /// Retired pages waiting for a zap.
    pub fn retired(&self) -> usize {
        self.retired.len()
    }

    /// Free pages (not counting the untouched rest of the range).
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Takes the retired pages just before a zap of all shadow pages starts.
    pub fn take_retired(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.retired)
    }

    /// Frees pages taken by [`PageAllocator::take_retired`] once the zap completed (or
    /// retires them again when it failed).
    pub fn free_zapped(&mut self, pages: Vec<u64>, zapped: bool) {
        if zapped {
            self.free.extend(pages);
        } else {
            self.retired.extend(pages);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_entries_and_bounds() {
        let r = PrivateRegion::new(16 * PAGE).unwrap();
        r.store(8, 0xdead).unwrap();
        assert_eq!(r.load(8).unwrap(), 0xdead);
        assert!(r.load(16 * PAGE).is_err());
        assert!(r.load(4).is_err());
        r.zero_page(0).unwrap();
        assert_eq!(r.load(8).unwrap(), 0);
    }

    #[test]
    fn allocator_reuses_and_exhausts() {
        let mut a = PageAllocator::new(0, 2 * PAGE);
        let x = a.alloc().unwrap();
        let y = a.alloc().unwrap();
        assert_ne!(x, y);
        assert!(a.alloc().is_none());
        a.free(x);
        assert_eq!(a.alloc(), Some(x));
    }

    #[test]
    fn retired_pages_come_back_only_after_a_zap() {
        let mut a = PageAllocator::new(0, 2 * PAGE);
        let x = a.alloc().unwrap();
        let y = a.alloc().unwrap();
        a.retire(x);
        assert_eq!(a.alloc(), None, "a retired page is not handed out");
        let taken = a.take_retired();
        a.retire(y); // retired during the zap: not covered by it
        a.free_zapped(taken, true);
        assert_eq!(a.alloc(), Some(x));
        assert_eq!(a.alloc(), None);
        assert_eq!(a.retired(), 1);
        let taken = a.take_retired();
        a.free_zapped(taken, false);
        assert_eq!(a.retired(), 1, "a failed zap frees nothing");
    }
}
