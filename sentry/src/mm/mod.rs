//! The memory manager: one application address space.
//!
//! A [`MemoryManager`] owns the VMAs of an address space (an ordered map keyed by start
//! address), the pages populated in it, and the platform [`AddressSpace`] that makes them
//! visible to the application. All application memory lives in the platform's
//! [`MemoryFile`]: a populated page is a reference-counted [`Frame`] (one page of the
//! memory file), mapped with [`AddressSpace::map_file`].
//!
//! - **Demand paging.** Nothing is populated by `mmap`; a fault (or a Sentry access through
//!   the copy helpers) allocates frames for a run of up to [`FAULT_CHUNK_PAGES`] unpopulated
//!   pages around the address, fills them (zeros, or file contents read through
//!   [`MappableFile::pread`]) and maps them.
//! - **Copy-on-write.** A private page whose frame is shared (refcount > 1, after a future
//!   `fork`) is mapped read-only; a write fault copies it.
//! - **Shared file mappings.** A file with pages of its own ([`MappableFile::shared_page`]:
//!   tmpfs, `/dev/shm`, memfd, and the Gofer's page cache) gives every `MAP_SHARED`
//!   mapping its very pages, which the mapping holds as long as it maps them; `msync`,
//!   `munmap` and the end of the address space ask the file to write them back
//!   ([`MappableFile::writeback_shared`]). Other files' shared mappings get private
//!   copies mapped read-only until the first write, so that dirty pages are known, and
//!   written back with [`MappableFile::pwrite`] at the same points.
//! - **Copy-in/out.** [`MemoryManager::copy_in`], [`MemoryManager::copy_out`] and the typed
//!   helpers translate virtual addresses through the VMAs and page table to memory-file
//!   offsets and copy through the Sentry's mapping of the file. A bad pointer is
//!   [`Errno::EFAULT`], never a crash.
//!
//! Unsupported for now: stack growth below the initial 8 MiB stack VMA; a mapping of a
//! file truncated under it keeps the pages it had (Linux raises `SIGBUS` past the new end).

mod vma;

mod fault;
mod mmap;
mod usermem;

use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use linux_abi::Errno;
use linux_abi::flags::mm::{
    MAP_32BIT, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_LOCKED, MAP_POPULATE,
    MAP_PRIVATE, MAP_SHARED, MAP_SHARED_VALIDATE, PROT_EXEC, PROT_READ, PROT_WRITE,
};
use platform::{AccessType, AddressSpace, MemoryFile, Platform, PlatformError, Protection};
use zerocopy::{FromBytes, Immutable, IntoBytes};

pub use mmap::{VmLimits, mapping_is_shared};
pub use vma::{Backing, MappableFile, Vma, VmaInfo};

/// Page size.
pub const PAGE: u64 = linux_abi::flags::PAGE_SIZE;
/// The most pages one fault populates in a file mapping (the run stops at populated pages
/// and VMA ends); each costs a read of the file.
pub const FAULT_CHUNK_PAGES: u64 = 16;
/// The most pages one fault populates in anonymous memory (zero pages cost nothing until
/// touched, and every fault is a round trip through the platform).
pub const ANON_FAULT_CHUNK_PAGES: u64 = 64;
/// Size of the initial stack VMA.
pub const STACK_SIZE: u64 = 8 << 20;
/// Longest iovec array accepted (`UIO_MAXIOV`).
pub const IOV_MAX: u64 = 1024;

/// `mremap` may move the mapping.
pub const MREMAP_MAYMOVE: u32 = 1;
/// `mremap` to exactly `new_addr`.
pub const MREMAP_FIXED: u32 = 2;
/// `madvise`: drop the pages; the next access sees zeros or the file again.
pub const MADV_DONTNEED: u32 = 4;
/// `madvise`: the pages may be freed lazily (treated like `MADV_DONTNEED`).
pub const MADV_FREE: u32 = 8;
/// `msync`: asynchronous write-back.
pub const MS_ASYNC: u32 = 1;
/// `msync`: invalidate other mappings.
pub const MS_INVALIDATE: u32 = 2;
/// `msync`: synchronous write-back.
pub const MS_SYNC: u32 = 4;

/// The error of a memory-file allocation that found the sandbox's memory full, inside the
/// Sentry only (like Linux's `VM_FAULT_OOM`): the task loop turns it into the OOM
/// killer's `SIGKILL` of the process that asked for the memory (one `sentry::oom` line),
/// so an application never sees it. A system call that fails with it returns `ENOMEM`
/// to a process that is already dying. Outside the range of real error numbers (Linux
/// stops below 4096 and uses 512..=531 internally).
pub const EOOM: Errno = Errno::new(4000);

/// The Sentry's error for a failed memory-file allocation: [`EOOM`] when the memory is
/// exhausted (the sandbox's memory limit), the usual mapping otherwise.
pub fn alloc_error(e: platform::MemoryFileError) -> Errno {
    match e {
        platform::MemoryFileError::Exhausted { .. } => EOOM,
        e => Errno::from(e),
    }
}

fn page_down(a: u64) -> u64 {
    a & !(PAGE - 1)
}

fn page_up(a: u64) -> Option<u64> {
    a.checked_add(PAGE - 1).map(page_down)
}

/// One page of the memory file, freed when the last mapping drops it.
#[derive(Debug)]
pub struct Frame {
    mf: Arc<MemoryFile>,
    offset: u64,
    /// False once the page was handed to a batch free ([`free_frames`]).
    owned: bool,
}

impl Frame {
    fn new(mf: &Arc<MemoryFile>, offset: u64) -> Arc<Frame> {
        Arc::new(Frame {
            mf: mf.clone(),
            offset,
            owned: true,
        })
    }

    /// A new page of `mf`, freed when the last holder drops it: a file's page (tmpfs, the
    /// Gofer's page cache) that `MAP_SHARED` mappings hold too, so that a truncation or
    /// an eviction never hands a page still mapped somewhere to someone else.
    pub(crate) fn alloc(mf: &Arc<MemoryFile>) -> Result<Arc<Frame>, Errno> {
        let offset = mf.allocate(PAGE).map_err(alloc_error)?;
        Ok(Frame::new(mf, offset))
    }

    /// The memory file offset of the page.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if self.owned
            && let Err(e) = self.mf.free(self.offset, PAGE)
        {
            tracing::error!(offset = self.offset, "freeing a memory file page: {e}");
        }
    }
}

/// Drops `frames`; the pages nobody else references are returned to the memory file in
/// runs of contiguous offsets (one host call per run instead of one per page).
fn free_frames(mf: &MemoryFile, frames: impl IntoIterator<Item = Arc<Frame>>) {
    let mut offsets: Vec<u64> = frames
        .into_iter()
        .filter_map(|f| Arc::try_unwrap(f).ok())
        .filter(|f| f.owned)
        .map(|mut f| {
            f.owned = false;
            f.offset
        })
        .collect();
    offsets.sort_unstable();
    let mut i = 0;
    while i < offsets.len() {
        let mut j = i + 1;
        while j < offsets.len() && offsets[j] == offsets[j - 1] + PAGE {
            j += 1;
        }
        if let Err(e) = mf.free(offsets[i], (j - i) as u64 * PAGE) {
            tracing::error!(offset = offsets[i], "freeing memory file pages: {e}");
        }
        i = j;
    }
}

/// The signal a fault that cannot be satisfied raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultSignal {
    /// `SIGSEGV` or `SIGBUS`.
    pub signo: i32,
    /// `si_code` (`SEGV_MAPERR`, `SEGV_ACCERR`, `BUS_ADRERR`).
    pub code: i32,
}

/// A populated page of the address space.
#[derive(Clone, Debug)]
struct PageEntry {
    frame: Arc<Frame>,
    /// The frame is the mapped file's own page ([`MappableFile::shared_page`]): the file
    /// writes it back itself ([`MappableFile::writeback_shared`]).
    from_file: bool,
    /// Mapped writable in the platform address space (false for COW-shared private pages
    /// and clean shared-file pages, or when the VMA is not writable).
    writable: bool,
}

#[derive(Debug)]
struct State {
    vmas: BTreeMap<u64, Vma>,
    pages: BTreeMap<u64, PageEntry>,
    brk_start: u64,
    brk: u64,
    /// Size of the program's initialised data (`end_data - start_data`).
    data_size: u64,
    mmap_base: u64,
}

/// Whether the Sentry's own access checks protections (syscall copies) or not (the loader).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    Prot,
    Force,
}

/// An application address space and its memory.
#[derive(Debug)]
pub struct MemoryManager {
    mf: Arc<MemoryFile>,
    address_space: Arc<dyn AddressSpace>,
    min_addr: u64,
    max_addr: u64,
    state: Mutex<State>,
    /// Set when the Sentry ran out of memory while filling this address space for a
    /// system call ([`EOOM`]), even if the call then swallowed the error into a short
    /// count; the task loop takes it after the call ([`MemoryManager::take_oom`]).
    oom: AtomicBool,
    /// Tasks running in this address space (Linux's `mm_users`): when the last one
    /// leaves, its memory is released at once ([`MemoryManager::detach`]), before its
    /// parent can learn of the exit, not when the last reference goes.
    users: AtomicUsize,
}

fn platform_err(e: PlatformError) -> Errno {
    // Debug log only: an application can provoke this at will, and the sandbox's stderr
    // is the user's.
    tracing::debug!("address space operation failed: {e}");
    match e {
        PlatformError::InvalidArgument(_) => Errno::EINVAL,
        PlatformError::Host { errno, .. } => errno,
        _ => Errno::EFAULT,
    }
}

impl MemoryManager {
    /// Creates an empty address space on `platform`.
    pub fn new(platform: &dyn Platform) -> Result<MemoryManager, PlatformError> {
        let address_space = platform.new_address_space()?;
        Ok(Self::with_address_space(
            platform.memory_file().clone(),
            address_space,
            platform.min_user_address(),
            platform.max_user_address(),
        ))
    }

    /// Creates an empty memory manager over an existing address space covering
    /// `[min_addr, max_addr)`.
    pub fn with_address_space(
        mf: Arc<MemoryFile>,
        address_space: Arc<dyn AddressSpace>,
        min_addr: u64,
        max_addr: u64,
    ) -> MemoryManager {
        let max_addr = page_down(max_addr);
        let stack_top = max_addr;
        // mmap areas grow down from below the stack, with a 1 GiB gap like Linux's
        // rlimit-derived gap.
        let mmap_base = stack_top
            .saturating_sub(STACK_SIZE + (1 << 30))
            .max(min_addr);
        MemoryManager {
            mf,
            address_space,
            min_addr: page_up(min_addr).unwrap_or(min_addr),
            max_addr,
            state: Mutex::new(State {
                vmas: BTreeMap::new(),
                pages: BTreeMap::new(),
                brk_start: 0,
                brk: 0,
                data_size: 0,
                mmap_base,
            }),
            oom: AtomicBool::new(false),
            users: AtomicUsize::new(0),
        }
    }

    /// A task starts running in this address space.
    pub fn attach(&self) {
        self.users.fetch_add(1, Ordering::AcqRel);
    }

    /// A task stops running in it (it exits, or `execve` gave it a new one). The last
    /// one releases every mapping and page (Linux's `exit_mmap`): a zombie holds no
    /// memory, so what it held counts as free for the sandbox's memory limit as soon as
    /// its parent can see it exited.
    pub fn detach(&self) {
        if self.users.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut st = self.lock();
            if let Err(e) = self.remove_range(&mut st, 0, self.max_addr) {
                tracing::debug!("releasing an address space: {e}");
            }
        }
    }

    /// Whether a Sentry access to this address space ran out of memory since the last
    /// call (and clears it): the process using it is the OOM killer's.
    pub fn take_oom(&self) -> bool {
        self.oom.swap(false, Ordering::Relaxed)
    }

    /// Notes an [`EOOM`] on its way out of the memory manager.
    fn note_oom(&self, e: Errno) -> Errno {
        if e == EOOM {
            self.oom.store(true, Ordering::Relaxed);
        }
        e
    }

    /// The platform address space.
    pub fn address_space(&self) -> &Arc<dyn AddressSpace> {
        &self.address_space
    }

    /// The memory file holding the pages.
    pub fn memory_file(&self) -> &Arc<MemoryFile> {
        &self.mf
    }

    /// The top of the initial stack (the highest user address).
    pub fn stack_top(&self) -> u64 {
        self.max_addr
    }

    /// The lowest mappable address.
    pub fn min_address(&self) -> u64 {
        self.min_addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// A snapshot of the VMAs, in address order.
    pub fn vmas(&self) -> Vec<VmaInfo> {
        self.lock().vmas.values().map(VmaInfo::from).collect()
    }

    /// Number of populated pages (resident set size in pages).
    pub fn resident_pages(&self) -> u64 {
        self.lock().pages.len() as u64
    }

    /// Total size of all VMAs in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.lock().vmas.values().map(|v| v.end - v.start).sum()
    }

    // ----- VMA bookkeeping -------------------------------------------------------------

    fn find_vma(st: &State, addr: u64) -> Option<&Vma> {
        st.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    /// Splits the VMA containing `addr` so that a VMA starts at `addr`.
    fn split_at(st: &mut State, addr: u64) {
        let key = match st.vmas.range(..addr).next_back() {
            Some((&k, v)) if v.end > addr => k,
            _ => return,
        };
        if let Some(v) = st.vmas.get_mut(&key) {
            let tail = v.split_off(addr);
            st.vmas.insert(addr, tail);
        }
    }

    fn range_is_free(st: &State, start: u64, end: u64) -> bool {
        match st.vmas.range(..end).next_back() {
            Some((_, v)) => v.end <= start,
            None => true,
        }
    }

    /// Whether every byte of `[start, end)` is covered by VMAs.
    fn range_is_mapped(st: &State, start: u64, end: u64) -> bool {
        let mut cur = start;
        while cur < end {
            match Self::find_vma(st, cur) {
                Some(v) => cur = v.end,
                None => return false,
            }
        }
        true
    }

    fn find_gap(&self, st: &State, len: u64, hint: u64) -> Option<u64> {
        if hint != 0 {
            let h = page_down(hint);
            if let Some(end) = h.checked_add(len)
                && h >= self.min_addr
                && end <= self.max_addr
                && Self::range_is_free(st, h, end)
            {
                return Some(h);
            }
        }
        // Top-down from mmap_base.
        let mut top = st.mmap_base;
        for v in st.vmas.values().rev() {
            if v.start >= top {
                continue;
            }
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(v.start);
        }
        if top >= self.min_addr && top - self.min_addr >= len {
            return Some(top - len);
        }
        // Then bottom-up above mmap_base.
        let mut cur = st.mmap_base;
        for v in st.vmas.range(st.mmap_base..).map(|(_, v)| v) {
            if v.start >= cur && v.start - cur >= len {
                return Some(cur);
            }
            cur = cur.max(v.end);
        }
        (self.max_addr.checked_sub(cur)? >= len).then_some(cur)
    }

    fn check_user_range(&self, start: u64, len: u64) -> Result<u64, Errno> {
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if start < self.min_addr || end > self.max_addr {
            return Err(Errno::ENOMEM);
        }
        Ok(end)
    }

    /// Removes `[start, end)` from the address space: writes back dirty shared-file pages,
    /// drops VMAs and pages, and unmaps the platform range.
    fn remove_range(&self, st: &mut State, start: u64, end: u64) -> Result<(), Errno> {
        if start >= end {
            return Ok(());
        }
        self.writeback(st, start, end)?;
        // The platform first: if it fails, the VMAs are still there and both views agree.
        self.drop_pages(st, start, end)?;
        Self::split_at(st, start);
        Self::split_at(st, end);
        let keys: Vec<u64> = st.vmas.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            st.vmas.remove(&k);
        }
        Ok(())
    }

    /// Drops the populated pages of `[start, end)` and unmaps them. Only the span of
    /// populated pages goes to the platform: the range asked for may reach below the
    /// lowest user address (`munmap(0, len)` is valid on Linux), where nothing is mapped.
    fn drop_pages(&self, st: &mut State, start: u64, end: u64) -> Result<(), Errno> {
        let keys: Vec<u64> = st.pages.range(start..end).map(|(&k, _)| k).collect();
        let (Some(&lo), Some(&last)) = (keys.first(), keys.last()) else {
            return Ok(());
        };
        self.address_space
            .unmap(lo, last + PAGE - lo)
            .map_err(platform_err)?;
        let frames: Vec<Arc<Frame>> = keys
            .iter()
            .filter_map(|k| st.pages.remove(k))
            .map(|e| e.frame)
            .collect();
        free_frames(&self.mf, frames);
        Ok(())
    }

    /// Writes dirty pages of shared file mappings in `[start, end)` back to their files.
    fn writeback(&self, st: &State, start: u64, end: u64) -> Result<(), Errno> {
        Self::writeback_all(&self.mf, st, start, end)
    }

    /// [`MemoryManager::writeback`] without `self` (for `Drop`).
    fn writeback_all(mf: &MemoryFile, st: &State, start: u64, end: u64) -> Result<(), Errno> {
        let mut page = [0u8; PAGE as usize];
        for (&va, e) in st.pages.range(start..end) {
            if !e.writable {
                continue;
            }
            let Some(v) = Self::find_vma(st, va) else {
                continue;
            };
            if !v.is_shared_file() {
                continue;
            }
            let Some((file, off)) = v.file_offset(va) else {
                continue;
            };
            if e.from_file {
                // The file's own page: the file knows whether it has a backing store.
                file.writeback_shared(off, PAGE)?;
                continue;
            }
            let size = file.size()?;
            if off >= size {
                continue;
            }
            let n = (size - off).min(PAGE) as usize;
            mf.read_at(e.frame.offset, &mut page[..n])?;
            file.pwrite(&page[..n], off)?;
        }
        Ok(())
    }

    /// Re-establishes the platform mappings of the populated pages in `[start, end)` from
    /// their VMAs and writable flags, in runs of contiguous frames.
    fn remap(&self, st: &State, start: u64, end: u64) -> Result<(), Errno> {
        let mut run: Option<(u64, u64, u64, Protection)> = None; // va, off, len, prot
        let flush = |r: Option<(u64, u64, u64, Protection)>| -> Result<(), Errno> {
            if let Some((va, off, len, prot)) = r {
                if prot == Protection::NONE {
                    self.address_space.unmap(va, len).map_err(platform_err)?;
                } else {
                    self.address_space
                        .map_file(va, off, len, prot)
                        .map_err(platform_err)?;
                }
            }
            Ok(())
        };
        for (&va, e) in st.pages.range(start..end) {
            let vprot = Self::find_vma(st, va).map(|v| v.prot).unwrap_or(0);
            let mut prot = Protection::from_linux(vprot);
            if !e.writable {
                prot.write = false;
            }
            if prot.write || prot.execute {
                prot.read = true;
            }
            match &mut run {
                Some((rva, roff, rlen, rprot))
                    if *rva + *rlen == va && *roff + *rlen == e.frame.offset && *rprot == prot =>
                {
                    *rlen += PAGE;
                }
                _ => {
                    flush(run.take())?;
                    run = Some((va, e.frame.offset, PAGE, prot));
                }
            }
        }
        flush(run)
    }

    /// Creates a copy-on-write copy of this address space in `address_space` (for `fork`):
    /// the child gets the same VMAs; private pages are shared by both and mapped
    /// read-only in both until one of them writes (then [`MemoryManager::handle_fault`]
    /// copies the page); shared mappings share their pages outright.
    pub fn fork(&self, address_space: Arc<dyn AddressSpace>) -> Result<MemoryManager, Errno> {
        let mut st = self.lock();
        let child = MemoryManager::with_address_space(
            self.mf.clone(),
            address_space,
            self.min_addr,
            self.max_addr,
        );
        {
            let mut cs = child.lock();
            cs.vmas = st.vmas.clone();
            cs.brk_start = st.brk_start;
            cs.brk = st.brk;
            cs.data_size = st.data_size;
            cs.mmap_base = st.mmap_base;
            let shared_pages: Vec<u64> = st
                .pages
                .keys()
                .copied()
                .filter(|&va| Self::find_vma(&st, va).is_some_and(|v| v.shared))
                .collect();
            for (&va, e) in &st.pages {
                let writable = e.writable && shared_pages.binary_search(&va).is_ok();
                cs.pages.insert(
                    va,
                    PageEntry {
                        frame: e.frame.clone(),
                        from_file: e.from_file,
                        writable,
                    },
                );
            }
            child.remap(&cs, self.min_addr, self.max_addr)?;
        }
        let private: Vec<u64> = st
            .pages
            .iter()
            .filter(|(va, e)| e.writable && !Self::find_vma(&st, **va).is_some_and(|v| v.shared))
            .map(|(&va, _)| va)
            .collect();
        for va in &private {
            if let Some(e) = st.pages.get_mut(va) {
                e.writable = false;
            }
        }
        self.remap(&st, self.min_addr, self.max_addr)?;
        Ok(child)
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        // Writes through shared file mappings outlive the address space, as on Linux
        // (an exit or execve without munmap or msync loses nothing).
        let (lo, hi) = (self.min_addr, self.max_addr);
        let st = self.state.get_mut();
        if let Err(e) = Self::writeback_all(&self.mf, st, lo, hi) {
            tracing::warn!("writing back shared file pages at teardown: {e}");
        }
        let pages = std::mem::take(&mut st.pages);
        free_frames(&self.mf, pages.into_values().map(|e| e.frame));
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
