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
//!   `fork`) is mapped read-only; a write fault copies it. Shared file mappings are mapped
//!   read-only until the first write so that dirty pages are known; `msync` and `munmap`
//!   write them back with [`MappableFile::pwrite`].
//! - **Copy-in/out.** [`MemoryManager::copy_in`], [`MemoryManager::copy_out`] and the typed
//!   helpers translate virtual addresses through the VMAs and page table to memory-file
//!   offsets and copy through the Sentry's mapping of the file. A bad pointer is
//!   [`Errno::EFAULT`], never a crash.
//!
//! Unsupported for now: stack growth below the initial 8 MiB stack VMA, `MAP_SHARED`
//! coherence between two separate mappings of the same file (each mapping has its own
//! pages; they meet only in the file after write-back).

mod vma;

use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mm::{
    MAP_32BIT, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_PRIVATE,
    MAP_SHARED, MAP_SHARED_VALIDATE, PROT_EXEC, PROT_READ, PROT_WRITE,
};
use platform::{AccessType, AddressSpace, MemoryFile, Platform, PlatformError, Protection};
use zerocopy::{FromBytes, Immutable, IntoBytes};

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

    /// A page owned by someone else (a tmpfs file): never freed by the memory manager.
    fn borrowed(mf: &Arc<MemoryFile>, offset: u64) -> Arc<Frame> {
        Arc::new(Frame {
            mf: mf.clone(),
            offset,
            owned: false,
        })
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
}

fn platform_err(e: PlatformError) -> Errno {
    tracing::error!("address space operation failed: {e}");
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
                mmap_base,
            }),
        }
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
        Self::split_at(st, start);
        Self::split_at(st, end);
        let keys: Vec<u64> = st.vmas.range(start..end).map(|(&k, _)| k).collect();
        for k in keys {
            st.vmas.remove(&k);
        }
        self.drop_pages(st, start, end)
    }

    /// Drops the populated pages of `[start, end)` and unmaps them.
    fn drop_pages(&self, st: &mut State, start: u64, end: u64) -> Result<(), Errno> {
        let keys: Vec<u64> = st.pages.range(start..end).map(|(&k, _)| k).collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.address_space
            .unmap(start, end - start)
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
        let mut page = [0u8; PAGE as usize];
        for (&va, e) in st.pages.range(start..end) {
            // Borrowed pages are the file's own: nothing to write back.
            if !e.writable || !e.frame.owned {
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
            let size = file.size()?;
            if off >= size {
                continue;
            }
            let n = (size - off).min(PAGE) as usize;
            self.mf.read_at(e.frame.offset, &mut page[..n])?;
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

    // ----- paging ----------------------------------------------------------------------

    /// Populates the run of unpopulated pages around `va` (in the VMA containing it) and
    /// maps them. `write` says whether the access that caused it writes.
    fn populate(&self, st: &mut State, va: u64, write: bool) -> Result<(), Errno> {
        let v = Self::find_vma(st, va).ok_or(Errno::EFAULT)?.clone();
        let chunk = match v.backing {
            Backing::Anonymous => ANON_FAULT_CHUNK_PAGES,
            Backing::File { .. } => FAULT_CHUNK_PAGES,
        } * PAGE;
        let lo_bound = v.start.max(va & !(chunk - 1));
        let mut hi_bound = v.end.min((va & !(chunk - 1)) + chunk);
        if let Backing::File { file, offset } = &v.backing {
            // Pages wholly past the end of the file do not exist (SIGBUS on Linux).
            let size = file.size()?;
            let eof_va = match size.checked_sub(*offset) {
                Some(n) => v.start.saturating_add(page_up(n).unwrap_or(u64::MAX)),
                None => v.start,
            };
            if va >= eof_va {
                return Err(Errno::ENXIO);
            }
            hi_bound = hi_bound.min(eof_va);
        }
        let mut lo = va;
        while lo > lo_bound && !st.pages.contains_key(&(lo - PAGE)) {
            lo -= PAGE;
        }
        let mut hi = va + PAGE;
        while hi < hi_bound && !st.pages.contains_key(&hi) {
            hi += PAGE;
        }
        let len = hi - lo;
        if v.shared
            && let Some((file, foff)) = v.file_offset(lo)
            && let Some(first) = file.shared_page(foff)
        {
            // The file's own pages: every shared mapping sees the same memory.
            first?;
            let writable = v.prot & PROT_WRITE != 0;
            for i in 0..len / PAGE {
                let off = file
                    .shared_page(foff + i * PAGE)
                    .unwrap_or(Err(Errno::EFAULT))?;
                st.pages.insert(
                    lo + i * PAGE,
                    PageEntry {
                        frame: Frame::borrowed(&self.mf, off),
                        writable,
                    },
                );
            }
            return self.remap(st, lo, hi);
        }
        let off = self.mf.allocate(len)?;
        let frames: Vec<Arc<Frame>> = (0..len / PAGE)
            .map(|i| Frame::new(&self.mf, off + i * PAGE))
            .collect();
        if let Some((file, foff)) = v.file_offset(lo) {
            let mut buf = vec![0u8; len as usize];
            let mut done = 0usize;
            while done < buf.len() {
                let off = foff.checked_add(done as u64).ok_or(Errno::EFAULT)?;
                let n = file.pread(&mut buf[done..], off)?;
                if n == 0 {
                    break;
                }
                done += n;
            }
            self.mf.write_at(off, &buf[..done])?;
        }
        // Shared file pages start clean (read-only) so that the first write is seen.
        let writable = v.prot & PROT_WRITE != 0 && (!v.is_shared_file() || write);
        for (i, f) in frames.into_iter().enumerate() {
            st.pages
                .insert(lo + i as u64 * PAGE, PageEntry { frame: f, writable });
        }
        self.remap(st, lo, hi)
    }

    /// Makes the populated page at `va` writable: copies a shared frame of a private
    /// mapping (copy-on-write) or marks a shared-file page dirty.
    fn make_writable(&self, st: &mut State, va: u64) -> Result<(), Errno> {
        let shared = Self::find_vma(st, va).map(|v| v.shared).unwrap_or(false);
        let e = st.pages.get(&va).ok_or(Errno::EFAULT)?.clone();
        if !shared && Arc::strong_count(&e.frame) > 1 {
            let off = self.mf.allocate(PAGE)?;
            let frame = Frame::new(&self.mf, off);
            self.mf.copy_within(e.frame.offset, off, PAGE)?;
            st.pages.insert(
                va,
                PageEntry {
                    frame,
                    writable: true,
                },
            );
        } else if let Some(p) = st.pages.get_mut(&va) {
            p.writable = true;
        }
        self.remap(st, va, va + PAGE)
    }

    /// Handles an application page fault at `addr`.
    ///
    /// Returns `Ok(true)` when something was mapped (retry the instruction), `Ok(false)`
    /// when the page was already mapped as the VMA allows (a racing fault; retry once), and
    /// the signal to send when the access is invalid: `SIGSEGV` (`SEGV_MAPERR` outside any
    /// VMA, `SEGV_ACCERR` against its protection) or `SIGBUS` (`BUS_ADRERR`: past the end
    /// of a mapped file, or the page could not be filled).
    pub fn handle_fault(&self, addr: u64, access: AccessType) -> Result<bool, FaultSignal> {
        use linux_abi::signal::{BUS_ADRERR, SEGV_ACCERR, SEGV_MAPERR, SIGBUS, SIGSEGV};
        let va = page_down(addr);
        let mut st = self.lock();
        let prot = Self::find_vma(&st, addr)
            .ok_or(FaultSignal {
                signo: SIGSEGV,
                code: SEGV_MAPERR,
            })?
            .prot;
        if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) == 0
            || (access.write && prot & PROT_WRITE == 0)
            || (access.execute && prot & PROT_EXEC == 0)
        {
            return Err(FaultSignal {
                signo: SIGSEGV,
                code: SEGV_ACCERR,
            });
        }
        let res = match st.pages.get(&va) {
            None => self.populate(&mut st, va, access.write).map(|()| true),
            Some(e) if prot & PROT_WRITE != 0 && !e.writable => {
                self.make_writable(&mut st, va).map(|()| true)
            }
            Some(_) => Ok(false),
        };
        res.map_err(|e| {
            tracing::info!(addr, "fault not satisfiable: {e}");
            FaultSignal {
                signo: SIGBUS,
                code: BUS_ADRERR,
            }
        })
    }

    // ----- Sentry access to application memory -----------------------------------------

    /// Runs `f(memory_file_offset, range)` for each page piece of `[addr, addr + len)`,
    /// populating pages and breaking COW as needed.
    fn access(
        &self,
        addr: u64,
        len: usize,
        write: bool,
        check: Check,
        mut f: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if len == 0 {
            return Ok(());
        }
        addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        let mut st = self.lock();
        let mut done = 0usize;
        while done < len {
            let cur = addr + done as u64;
            let va = page_down(cur);
            let prot = Self::find_vma(&st, cur).ok_or(Errno::EFAULT)?.prot;
            if check == Check::Prot {
                let ok = if write {
                    prot & PROT_WRITE != 0
                } else {
                    prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
                };
                if !ok {
                    return Err(Errno::EFAULT);
                }
            }
            if !st.pages.contains_key(&va) {
                self.populate(&mut st, va, write)?;
            }
            if write && st.pages.get(&va).is_some_and(|e| !e.writable) {
                if prot & PROT_WRITE != 0 {
                    self.make_writable(&mut st, va)?;
                } else if let Some(e) = st.pages.get(&va)
                    && Arc::strong_count(&e.frame) > 1
                {
                    // Forced write into a read-only private page: copy, keep read-only.
                    let off = self.mf.allocate(PAGE)?;
                    self.mf.copy_within(e.frame.offset, off, PAGE)?;
                    let frame = Frame::new(&self.mf, off);
                    st.pages.insert(
                        va,
                        PageEntry {
                            frame,
                            writable: false,
                        },
                    );
                    self.remap(&st, va, va + PAGE)?;
                }
            }
            let e = st.pages.get(&va).ok_or(Errno::EFAULT)?;
            let in_page = cur - va;
            let n = ((PAGE - in_page) as usize).min(len - done);
            f(e.frame.offset + in_page, done..done + n)?;
            done += n;
        }
        Ok(())
    }

    /// Copies `buf.len()` bytes of application memory at `addr` into `buf`.
    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.access(addr, buf.len(), false, Check::Prot, |off, r| {
            mf.read_at(off, &mut buf[r]).map_err(Errno::from)
        })
    }

    /// Copies `buf` into application memory at `addr`.
    pub fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.access(addr, buf.len(), true, Check::Prot, |off, r| {
            mf.write_at(off, &buf[r]).map_err(Errno::from)
        })
    }

    /// Writes `buf` at `addr` ignoring page protections (the loader filling segments and
    /// the initial stack). The range must still be mapped.
    pub fn copy_out_force(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        let mf = self.mf.clone();
        self.access(addr, buf.len(), true, Check::Force, |off, r| {
            mf.write_at(off, &buf[r]).map_err(Errno::from)
        })
    }

    /// Sets `len` bytes at `addr` to zero (respecting protections).
    pub fn zero_out(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let len = usize::try_from(len).map_err(|_| Errno::EFAULT)?;
        let mf = self.mf.clone();
        self.access(addr, len, true, Check::Prot, |off, r| {
            mf.zero(off, r.len() as u64).map_err(Errno::from)
        })
    }

    /// Reads a plain-data value of type `T` at `addr`.
    pub fn read_obj<T: FromBytes + IntoBytes>(&self, addr: u64) -> Result<T, Errno> {
        let mut v = T::new_zeroed();
        self.copy_in(addr, v.as_mut_bytes())?;
        Ok(v)
    }

    /// Writes the plain-data value `v` at `addr`.
    pub fn write_obj<T: IntoBytes + Immutable + ?Sized>(
        &self,
        addr: u64,
        v: &T,
    ) -> Result<(), Errno> {
        self.copy_out(addr, v.as_bytes())
    }

    /// Reads a NUL-terminated string at `addr` (without the NUL). Fails with
    /// `ENAMETOOLONG` when no NUL occurs within `max` bytes.
    pub fn read_c_string(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut cur = addr;
        loop {
            let room = max + 1 - out.len();
            if room == 0 {
                return Err(Errno::ENAMETOOLONG);
            }
            // Read up to the end of the current page so we never touch an unmapped next page.
            let n = ((PAGE - (cur & (PAGE - 1))) as usize).min(room);
            let mut chunk = vec![0u8; n];
            self.copy_in(cur, &mut chunk)?;
            if let Some(pos) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..pos]);
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            if out.len() > max {
                return Err(Errno::ENAMETOOLONG);
            }
            cur = cur.checked_add(n as u64).ok_or(Errno::EFAULT)?;
        }
    }

    /// Reads an array of `count` `struct iovec` at `addr` as `(base, len)` pairs.
    pub fn read_iovecs(&self, addr: u64, count: u64) -> Result<Vec<(u64, u64)>, Errno> {
        if count > IOV_MAX {
            return Err(Errno::EINVAL);
        }
        let mut raw = vec![0u64; count as usize * 2];
        self.copy_in(addr, raw.as_mut_bytes())?;
        let v: Vec<(u64, u64)> = raw.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        if v.iter().any(|&(_, l)| l > isize::MAX as u64) {
            return Err(Errno::EINVAL);
        }
        Ok(v)
    }

    /// Reads a NULL-terminated array of string pointers (`argv`, `envp` of `execve`).
    pub fn read_string_array(&self, addr: u64, max_total: usize) -> Result<Vec<Vec<u8>>, Errno> {
        let mut out = Vec::new();
        if addr == 0 {
            return Ok(out);
        }
        let mut total = 0usize;
        for i in 0u64.. {
            let p: u64 = self.read_obj(addr.checked_add(i * 8).ok_or(Errno::EFAULT)?)?;
            if p == 0 {
                break;
            }
            let s = self
                .read_c_string(p, max_total.saturating_sub(total))
                .map_err(|e| {
                    if e == Errno::ENAMETOOLONG {
                        Errno::E2BIG
                    } else {
                        e
                    }
                })?;
            total += s.len() + 1 + 8;
            if total > max_total {
                return Err(Errno::E2BIG);
            }
            out.push(s);
        }
        Ok(out)
    }

    // ----- mapping operations (the mm system calls) ------------------------------------

    /// Creates a mapping at exactly `[addr, addr + len)`, replacing what is there. Used by
    /// the loader and by `mmap(MAP_FIXED)`.
    pub fn map_fixed(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        shared: bool,
        backing: Backing,
        label: Option<&'static str>,
    ) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = self.check_user_range(addr, len)?;
        let mut st = self.lock();
        self.insert_vma(
            &mut st,
            Vma {
                start: addr,
                end,
                prot,
                shared,
                backing,
                label,
            },
        )
    }

    /// Replaces whatever is mapped in the VMA's range by the VMA.
    fn insert_vma(&self, st: &mut State, vma: Vma) -> Result<(), Errno> {
        self.remove_range(st, vma.start, vma.end)?;
        st.vmas.insert(vma.start, vma);
        Ok(())
    }

    /// Finds room for `len` bytes in `[lo, hi)`, lowest address first (`MAP_32BIT`).
    fn find_gap_in(st: &State, len: u64, lo: u64, hi: u64) -> Option<u64> {
        let mut cur = lo;
        for v in st.vmas.range(..hi).map(|(_, v)| v).filter(|v| v.end > lo) {
            if v.start >= cur && v.start - cur >= len {
                return Some(cur);
            }
            cur = cur.max(v.end);
        }
        (hi.checked_sub(cur)? >= len).then_some(cur)
    }

    /// `mmap(addr, len, prot, flags, fd, offset)`; `file` is the resolved `fd` (and the
    /// offset) unless `MAP_ANONYMOUS`.
    pub fn mmap(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<(Arc<dyn MappableFile>, u64)>,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len)
            .filter(|&l| l <= self.max_addr)
            .ok_or(Errno::ENOMEM)?;
        let shared = match flags & MAP_SHARED_VALIDATE {
            MAP_SHARED | MAP_SHARED_VALIDATE => true,
            MAP_PRIVATE => false,
            _ => return Err(Errno::EINVAL),
        };
        let backing = if flags & MAP_ANONYMOUS != 0 {
            Backing::Anonymous
        } else {
            let (file, offset) = file.ok_or(Errno::EBADF)?;
            if offset % PAGE != 0 {
                return Err(Errno::EINVAL);
            }
            offset.checked_add(len).ok_or(Errno::EOVERFLOW)?;
            Backing::File { file, offset }
        };
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        // Choosing the address and inserting the VMA happen under one lock so that two
        // threads never get the same gap.
        let mut st = self.lock();
        let start = if fixed {
            if !addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            let end = self.check_user_range(addr, len)?;
            if flags & MAP_FIXED_NOREPLACE != 0
                && flags & MAP_FIXED == 0
                && !Self::range_is_free(&st, addr, end)
            {
                return Err(Errno::EEXIST);
            }
            addr
        } else if flags & MAP_32BIT != 0 {
            // Like Linux: somewhere in [1 GiB, 2 GiB).
            Self::find_gap_in(&st, len, 1 << 30, 2 << 30).ok_or(Errno::ENOMEM)?
        } else {
            self.find_gap(&st, len, addr).ok_or(Errno::ENOMEM)?
        };
        let vma = Vma {
            start,
            end: start + len,
            prot,
            shared,
            backing,
            label: None,
        };
        self.insert_vma(&mut st, vma)?;
        if flags & MAP_POPULATE != 0 && prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0 {
            let mut va = start;
            while va < start + len {
                if !st.pages.contains_key(&va) {
                    self.populate(&mut st, va, false)?;
                }
                va += PAGE;
            }
        }
        Ok(start)
    }

    /// `munmap(addr, len)`.
    pub fn munmap(&self, addr: u64, len: u64) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) || len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr
            .checked_add(len)
            .filter(|&e| e <= self.max_addr)
            .ok_or(Errno::EINVAL)?;
        let mut st = self.lock();
        self.remove_range(&mut st, addr, end)
    }

    /// `mprotect(addr, len, prot)`.
    pub fn mprotect(&self, addr: u64, len: u64, prot: u32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        // PROT_GROWSDOWN/PROT_GROWSUP (glibc's executable-stack change) apply to the
        // given range here: there are no growing VMAs.
        const PROT_GROWS: u32 = 0x0100_0000 | 0x0200_0000;
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWS) != 0 {
            return Err(Errno::EINVAL);
        }
        let prot = prot & !PROT_GROWS;
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        if len == 0 {
            return Ok(());
        }
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let mut st = self.lock();
        if !Self::range_is_mapped(&st, addr, end) {
            return Err(Errno::ENOMEM);
        }
        Self::split_at(&mut st, addr);
        Self::split_at(&mut st, end);
        let keys: Vec<u64> = st.vmas.range(addr..end).map(|(&k, _)| k).collect();
        for k in &keys {
            if let Some(v) = st.vmas.get_mut(k) {
                v.prot = prot;
            }
        }
        // Recompute which populated pages may be mapped writable.
        let updates: Vec<(u64, bool)> = st
            .pages
            .range(addr..end)
            .map(|(&va, e)| {
                let v = Self::find_vma(&st, va);
                let shared_file = v.is_some_and(Vma::is_shared_file);
                let shared = v.is_some_and(|v| v.shared);
                let w = prot & PROT_WRITE != 0
                    && if shared_file {
                        e.writable
                    } else {
                        shared || Arc::strong_count(&e.frame) == 1
                    };
                (va, w)
            })
            .collect();
        for (va, w) in updates {
            if let Some(e) = st.pages.get_mut(&va) {
                e.writable = w;
            }
        }
        self.remap(&st, addr, end)?;
        Self::merge_around(&mut st, addr, end);
        Ok(())
    }

    /// Merges adjacent compatible anonymous VMAs in and around `[start, end)`.
    fn merge_around(st: &mut State, start: u64, end: u64) {
        let lo = st
            .vmas
            .range(..start)
            .next_back()
            .map(|(&k, _)| k)
            .unwrap_or(start);
        let keys: Vec<u64> = st.vmas.range(lo..=end).map(|(&k, _)| k).collect();
        let mut prev: Option<u64> = None;
        for k in keys {
            if let Some(p) = prev {
                let mergeable = match (st.vmas.get(&p), st.vmas.get(&k)) {
                    (Some(a), Some(b)) => a.can_merge(b),
                    _ => false,
                };
                if mergeable {
                    if let Some(b) = st.vmas.remove(&k)
                        && let Some(a) = st.vmas.get_mut(&p)
                    {
                        a.end = b.end;
                    }
                    continue;
                }
            }
            prev = Some(k);
        }
    }

    /// `mremap(old_addr, old_len, new_len, flags, new_addr)`.
    pub fn mremap(
        &self,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        if !old_addr.is_multiple_of(PAGE) || flags & !(MREMAP_MAYMOVE | MREMAP_FIXED) != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::EINVAL);
        }
        let old_len = page_up(old_len).ok_or(Errno::EINVAL)?;
        let new_len = page_up(new_len).ok_or(Errno::EINVAL)?;
        if new_len == 0 || old_len == 0 {
            // old_len == 0 duplicates shared mappings in Linux; not supported.
            return Err(Errno::EINVAL);
        }
        let old_end = old_addr.checked_add(old_len).ok_or(Errno::EFAULT)?;
        let mut st = self.lock();
        let v = Self::find_vma(&st, old_addr).ok_or(Errno::EFAULT)?.clone();
        if old_end > v.end {
            return Err(Errno::EFAULT);
        }
        if flags & MREMAP_FIXED == 0 {
            if new_len <= old_len {
                self.remove_range(&mut st, old_addr + new_len, old_end)?;
                return Ok(old_addr);
            }
            // Grow in place when the old range ends its VMA and the space after it is free.
            let new_end = old_addr.checked_add(new_len).ok_or(Errno::ENOMEM)?;
            if old_end == v.end
                && new_end <= self.max_addr
                && Self::range_is_free(&st, old_end, new_end)
            {
                if let Some(vm) = st.vmas.get_mut(&v.start) {
                    vm.end = new_end;
                }
                return Ok(old_addr);
            }
            if flags & MREMAP_MAYMOVE == 0 {
                return Err(Errno::ENOMEM);
            }
        }
        // Move.
        let target = if flags & MREMAP_FIXED != 0 {
            if !new_addr.is_multiple_of(PAGE) {
                return Err(Errno::EINVAL);
            }
            let tend = self.check_user_range(new_addr, new_len)?;
            if new_addr < old_end && old_addr < tend {
                return Err(Errno::EINVAL);
            }
            self.remove_range(&mut st, new_addr, tend)?;
            new_addr
        } else {
            self.find_gap(&st, new_len, 0).ok_or(Errno::ENOMEM)?
        };
        Self::split_at(&mut st, old_addr);
        Self::split_at(&mut st, old_end);
        let mut moved = st.vmas.remove(&old_addr).ok_or(Errno::EFAULT)?;
        let keep = old_len.min(new_len);
        let pages: Vec<(u64, PageEntry)> = st
            .pages
            .range(old_addr..old_end)
            .map(|(&k, e)| (k, e.clone()))
            .collect();
        self.address_space
            .unmap(old_addr, old_len)
            .map_err(platform_err)?;
        for (k, _) in &pages {
            st.pages.remove(k);
        }
        for (k, e) in pages {
            if k - old_addr < keep {
                st.pages.insert(target + (k - old_addr), e);
            }
        }
        moved.start = target;
        moved.end = target + new_len;
        st.vmas.insert(target, moved);
        self.remap(&st, target, target + new_len)?;
        Ok(target)
    }

    /// `madvise(addr, len, advice)`.
    pub fn madvise(&self, addr: u64, len: u64, advice: u32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::EINVAL)?;
        let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
        let mut st = self.lock();
        if !Self::range_is_mapped(&st, addr, end) {
            return Err(Errno::ENOMEM);
        }
        if advice == MADV_DONTNEED || advice == MADV_FREE {
            // Shared pages keep their contents (they are the shared object's).
            let private: Vec<(u64, u64)> = st
                .vmas
                .range(..end)
                .map(|(_, v)| v)
                .filter(|v| v.end > addr && !v.shared)
                .map(|v| (v.start.max(addr), v.end.min(end)))
                .collect();
            for (s, e) in private {
                self.drop_pages(&mut st, s, e)?;
            }
        }
        Ok(())
    }

    /// `msync(addr, len, flags)`.
    pub fn msync(&self, addr: u64, len: u64, flags: u32) -> Result<(), Errno> {
        if !addr.is_multiple_of(PAGE)
            || flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
            || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
        {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let st = self.lock();
        if !Self::range_is_mapped(&st, addr, end) {
            return Err(Errno::ENOMEM);
        }
        self.writeback(&st, addr, end)
    }

    /// `mincore(addr, len)`: one byte per page, 1 when populated.
    pub fn mincore(&self, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
        if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len).ok_or(Errno::ENOMEM)?;
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let st = self.lock();
        if !Self::range_is_mapped(&st, addr, end) {
            return Err(Errno::ENOMEM);
        }
        Ok((0..len / PAGE)
            .map(|i| u8::from(st.pages.contains_key(&(addr + i * PAGE))))
            .collect())
    }

    /// The memory-file offset of the byte at `addr` when it lies in a shared mapping (the
    /// key of a process-shared futex, equal in every process mapping the same pages),
    /// paging it in; `None` for private memory. `EFAULT` outside any mapping.
    pub fn shared_offset(&self, addr: u64) -> Result<Option<u64>, Errno> {
        let va = page_down(addr);
        for _ in 0..2 {
            {
                let st = self.lock();
                let vma = Self::find_vma(&st, addr).ok_or(Errno::EFAULT)?;
                if !vma.shared {
                    return Ok(None);
                }
                if let Some(e) = st.pages.get(&va) {
                    return Ok(Some(e.frame.offset() + (addr - va)));
                }
            }
            let read = AccessType {
                read: true,
                ..AccessType::UNKNOWN
            };
            self.handle_fault(addr, read).map_err(|_| Errno::EFAULT)?;
        }
        Err(Errno::EFAULT)
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

    /// Sets the start of the heap (the loader calls this with the end of the program's
    /// data segment).
    pub fn set_brk_start(&self, addr: u64) {
        let mut st = self.lock();
        let a = page_up(addr).unwrap_or(addr);
        st.brk_start = a;
        st.brk = a;
    }

    /// `brk(addr)`: moves the program break and returns the new (or unchanged) break.
    pub fn brk(&self, addr: u64) -> u64 {
        let mut st = self.lock();
        let (start, cur) = (st.brk_start, st.brk);
        if start == 0 || addr < start {
            return cur;
        }
        let (Some(new_top), Some(old_top)) = (page_up(addr), page_up(cur)) else {
            return cur;
        };
        if new_top > old_top {
            if new_top > self.max_addr || !Self::range_is_free(&st, old_top, new_top) {
                return cur;
            }
            st.vmas.insert(
                old_top,
                Vma {
                    start: old_top,
                    end: new_top,
                    prot: PROT_READ | PROT_WRITE,
                    shared: false,
                    backing: Backing::Anonymous,
                    label: Some("[heap]"),
                },
            );
            Self::merge_around(&mut st, old_top, new_top);
        } else if new_top < old_top && self.remove_range(&mut st, new_top, old_top).is_err() {
            return cur;
        }
        st.brk = addr;
        addr
    }

    /// The current program break.
    pub fn current_brk(&self) -> u64 {
        self.lock().brk
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        let pages = std::mem::take(&mut st.pages);
        free_frames(&self.mf, pages.into_values().map(|e| e.frame));
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
