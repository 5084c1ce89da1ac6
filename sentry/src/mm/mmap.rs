//! Mapping operations (the mm system calls): `mmap`, `munmap`, `mprotect`, `mremap`,
//! `madvise`, `msync`, `mincore` and `brk`.

use super::*;

/// The resource limits an address space grows within, the calling process's
/// (`RLIMIT_AS` and `RLIMIT_DATA`, in bytes), checked as Linux's `may_expand_vm` and
/// `brk`'s `check_data_rlimit` check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmLimits {
    /// `RLIMIT_AS` (soft): the total size of the mappings.
    pub address_space: u64,
    /// `RLIMIT_DATA` (soft): private writable mappings (and the heap with the data
    /// segment, for `brk`).
    pub data: u64,
    /// `RLIMIT_DATA` (hard), for Linux's exception when the soft limit is 0.
    pub data_max: u64,
}

impl VmLimits {
    /// No limits.
    pub const NONE: VmLimits = VmLimits {
        address_space: u64::MAX,
        data: u64::MAX,
        data_max: u64::MAX,
    };
}

/// The mapping type `mmap`'s `flags` give (`flags & MAP_TYPE`, as Linux's `do_mmap`
/// reads it): whether the mapping is shared; `EINVAL` for any type but shared, private
/// and shared-validate.
pub fn mapping_is_shared(flags: u32) -> Result<bool, Errno> {
    match flags & linux_abi::flags::mm::MAP_TYPE {
        MAP_SHARED | MAP_SHARED_VALIDATE => Ok(true),
        MAP_PRIVATE => Ok(false),
        _ => Err(Errno::EINVAL),
    }
}

/// Whether a mapping with these properties counts as data (Linux's `is_data_mapping`:
/// writable, private, not the stack).
fn is_data(prot: u32, shared: bool, label: Option<&'static str>) -> bool {
    prot & PROT_WRITE != 0 && !shared && label != Some("[stack]")
}

impl MemoryManager {
    /// Linux's `may_expand_vm`: whether `npages` more pages of a mapping that is
    /// (`data`) or is not data fit in `lim` beside what is mapped.
    fn may_expand(st: &State, lim: &VmLimits, data: bool, npages: u64) -> bool {
        if *lim == VmLimits::NONE {
            return true;
        }
        let (total, data_now) = st.vmas.values().fold((0u64, 0u64), |(t, d), v| {
            let n = (v.end - v.start) / PAGE;
            let dn = if is_data(v.prot, v.shared, v.label) {
                n
            } else {
                0
            };
            (t + n, d + dn)
        });
        if total.saturating_add(npages) > lim.address_space / PAGE {
            return false;
        }
        if data && data_now.saturating_add(npages) > lim.data / PAGE {
            // Linux's exception (for Valgrind): a soft limit of 0 lets the hard one rule.
            return lim.data == 0 && data_now.saturating_add(npages) <= lim.data_max / PAGE;
        }
        true
    }

    /// Pages of `[start, end)` covered by VMAs (those a `MAP_FIXED` mapping replaces).
    fn mapped_pages(st: &State, start: u64, end: u64) -> u64 {
        st.vmas
            .range(..end)
            .map(|(_, v)| v)
            .filter(|v| v.end > start)
            .map(|v| (v.end.min(end) - v.start.max(start)) / PAGE)
            .sum()
    }

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
    pub(super) fn insert_vma(&self, st: &mut State, vma: Vma) -> Result<(), Errno> {
        self.remove_range(st, vma.start, vma.end)?;
        st.vmas.insert(vma.start, vma);
        Ok(())
    }

    /// Finds room for `len` bytes in `[lo, hi)`, lowest address first (`MAP_32BIT`).
    pub(super) fn find_gap_in(st: &State, len: u64, lo: u64, hi: u64) -> Option<u64> {
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
    /// offset) unless `MAP_ANONYMOUS`. No resource limits ([`MemoryManager::mmap_limited`]).
    pub fn mmap(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<(Arc<dyn MappableFile>, u64)>,
    ) -> Result<u64, Errno> {
        self.mmap_limited(addr, len, prot, flags, file, &VmLimits::NONE)
    }

    /// `mmap` within the caller's `RLIMIT_AS` and `RLIMIT_DATA` (`ENOMEM` past them, as
    /// Linux's `mmap_region`; the pages a `MAP_FIXED` mapping replaces do not count).
    pub fn mmap_limited(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<(Arc<dyn MappableFile>, u64)>,
        lim: &VmLimits,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = page_up(len)
            .filter(|&l| l <= self.max_addr)
            .ok_or(Errno::ENOMEM)?;
        let shared = mapping_is_shared(flags)?;
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
        let replaced = if fixed {
            Self::mapped_pages(&st, start, start + len)
        } else {
            0
        };
        if !Self::may_expand(&st, lim, is_data(prot, shared, None), len / PAGE - replaced) {
            return Err(Errno::ENOMEM);
        }
        let vma = Vma {
            start,
            end: start + len,
            prot,
            shared,
            backing,
            label: None,
        };
        self.insert_vma(&mut st, vma)?;
        if flags & (MAP_POPULATE | MAP_LOCKED) != 0
            && prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
        {
            let mut va = start;
            while va < start + len {
                // Like Linux's `mm_populate`, a page that cannot be filled ends the
                // populating but not the call, unless memory ran out (the OOM
                // killer's case).
                if !st.pages.contains_key(&va)
                    && let Err(e) = self.populate(&mut st, va, false)
                {
                    if e == EOOM {
                        return Err(self.note_oom(e));
                    }
                    break;
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

    /// `mprotect(addr, len, prot)`, without resource limits.
    pub fn mprotect(&self, addr: u64, len: u64, prot: u32) -> Result<(), Errno> {
        self.mprotect_limited(addr, len, prot, &VmLimits::NONE)
    }

    /// `mprotect` within the caller's `RLIMIT_DATA`: making private memory writable
    /// turns it into data, which fails with `ENOMEM` past the limit (Linux's
    /// `mprotect_fixup`).
    pub fn mprotect_limited(
        &self,
        addr: u64,
        len: u64,
        prot: u32,
        lim: &VmLimits,
    ) -> Result<(), Errno> {
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
        // A mapping of a file on a `noexec` mount may never be executable (Linux leaves
        // VM_MAYEXEC off for it).
        if prot & PROT_EXEC != 0
            && st.vmas.range(..end).any(|(_, v)| {
                v.end > addr && matches!(&v.backing, Backing::File { file, .. } if file.noexec())
            })
        {
            return Err(Errno::EACCES);
        }
        if prot & PROT_WRITE != 0 {
            // Linux checks each VMA as it changes it (earlier ones stay changed when a
            // later one fails); all are checked first here.
            for v in st
                .vmas
                .range(..end)
                .map(|(_, v)| v)
                .filter(|v| v.end > addr)
            {
                let n = (v.end.min(end) - v.start.max(addr)) / PAGE;
                if !Self::may_expand(&st, lim, is_data(prot, v.shared, v.label), n)
                    && Self::may_expand(&st, lim, is_data(v.prot, v.shared, v.label), n)
                {
                    return Err(Errno::ENOMEM);
                }
            }
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
    pub(super) fn merge_around(st: &mut State, start: u64, end: u64) {
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

    /// `mremap(old_addr, old_len, new_len, flags, new_addr)`, without resource limits.
    pub fn mremap(
        &self,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        self.mremap_limited(old_addr, old_len, new_len, flags, new_addr, &VmLimits::NONE)
    }

    /// `mremap` within the caller's `RLIMIT_AS` and `RLIMIT_DATA`: growing past them
    /// fails with `ENOMEM` (Linux's `vma_to_resize`).
    pub fn mremap_limited(
        &self,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u32,
        new_addr: u64,
        lim: &VmLimits,
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
        // Growing is checked against the limits after the other checks, as Linux's
        // `vma_to_resize` does; `freed` pages (of a fixed target) are unmapped first.
        let may_grow = |st: &State, freed: u64| {
            new_len <= old_len
                || Self::may_expand(
                    st,
                    lim,
                    is_data(v.prot, v.shared, v.label),
                    ((new_len - old_len) / PAGE).saturating_sub(freed),
                )
        };
        if flags & MREMAP_FIXED == 0 {
            if new_len <= old_len {
                self.remove_range(&mut st, old_addr + new_len, old_end)?;
                return Ok(old_addr);
            }
            if !may_grow(&st, 0) {
                return Err(Errno::ENOMEM);
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
            if !may_grow(&st, Self::mapped_pages(&st, new_addr, tend)) {
                return Err(Errno::ENOMEM);
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

    /// Populates every accessible page of `[addr, addr + len)` (page aligned), as `mlock`
    /// does: `ENOMEM` when part of the range is not mapped or a page cannot be filled
    /// (past the end of its file), `EOOM` (the memory limit's out-of-memory) when memory
    /// runs out.
    pub fn populate_range(&self, addr: u64, len: u64) -> Result<(), Errno> {
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        let mut st = self.lock();
        if !Self::range_is_mapped(&st, addr, end) {
            return Err(Errno::ENOMEM);
        }
        let mut va = page_down(addr);
        while va < end {
            let prot = Self::find_vma(&st, va).map_or(0, |v| v.prot);
            if prot & (PROT_READ | PROT_WRITE | PROT_EXEC) != 0
                && !st.pages.contains_key(&va)
                && let Err(e) = self.populate(&mut st, va, false)
            {
                return Err(if e == EOOM {
                    self.note_oom(e)
                } else {
                    Errno::ENOMEM
                });
            }
            va += PAGE;
        }
        Ok(())
    }

    /// Whether all of `[addr, addr + len)` is mapped (`munlock`'s `ENOMEM` check).
    pub fn is_mapped(&self, addr: u64, len: u64) -> bool {
        addr.checked_add(len)
            .is_some_and(|end| Self::range_is_mapped(&self.lock(), addr, end))
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
            self.handle_fault(addr, read).map_err(|s| {
                if s.signo == linux_abi::signal::SIGKILL {
                    EOOM
                } else {
                    Errno::EFAULT
                }
            })?;
        }
        Err(Errno::EFAULT)
    }

    /// Sets the start of the heap (the loader calls this with the end of the program's
    /// data segment).
    pub fn set_brk_start(&self, addr: u64) {
        let mut st = self.lock();
        let a = page_up(addr).unwrap_or(addr);
        st.brk_start = a;
        st.brk = a;
    }

    /// The size of the program's initialised data (Linux's `end_data - start_data`), which
    /// `brk` counts against `RLIMIT_DATA` with the heap.
    pub fn set_data_size(&self, bytes: u64) {
        self.lock().data_size = bytes;
    }

    /// `brk(addr)`: moves the program break and returns the new (or unchanged) break.
    pub fn brk(&self, addr: u64) -> u64 {
        self.brk_limited(addr, &VmLimits::NONE)
    }

    /// `brk` within the caller's `RLIMIT_DATA` and `RLIMIT_AS`: a break whose heap and
    /// initialised data exceed `RLIMIT_DATA` (Linux's `check_data_rlimit`, which also
    /// refuses such a shrink), or growth past either limit (`may_expand_vm`), leaves the
    /// break where it is (the C library's `brk` then fails with `ENOMEM`).
    pub fn brk_limited(&self, addr: u64, lim: &VmLimits) -> u64 {
        let mut st = self.lock();
        let (start, cur) = (st.brk_start, st.brk);
        if start == 0 || addr < start {
            return cur;
        }
        if lim.data != u64::MAX && (addr - start).saturating_add(st.data_size) > lim.data {
            return cur;
        }
        let (Some(new_top), Some(old_top)) = (page_up(addr), page_up(cur)) else {
            return cur;
        };
        if new_top > old_top {
            if new_top > self.max_addr
                || !Self::range_is_free(&st, old_top, new_top)
                || !Self::may_expand(&st, lim, true, (new_top - old_top) / PAGE)
            {
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
