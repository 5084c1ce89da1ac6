//! Paging: populating pages on a fault or a Sentry access, copy-on-write, and
//! [`MemoryManager::handle_fault`].

use super::*;

impl MemoryManager {
    /// Populates the run of unpopulated pages around `va` (in the VMA containing it) and
    /// maps them. `write` says whether the access that caused it writes.
    pub(super) fn populate(&self, st: &mut State, va: u64, write: bool) -> Result<(), Errno> {
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
        let mut len = hi - lo;
        if v.shared
            && let Some((file, foff)) = v.file_offset(lo)
            && let Some(first) = file.shared_page(foff)
        {
            // The file's own pages: every shared mapping sees the same memory.
            let writable = v.prot & PROT_WRITE != 0;
            let mut frame = Some(first?);
            for i in 0..len / PAGE {
                let frame = match frame.take() {
                    Some(f) => f,
                    None => file
                        .shared_page(foff + i * PAGE)
                        .unwrap_or(Err(Errno::EFAULT))?,
                };
                st.pages.insert(
                    lo + i * PAGE,
                    PageEntry {
                        frame,
                        from_file: true,
                        writable,
                    },
                );
            }
            return self.remap(st, lo, hi);
        }
        let off = match self.mf.allocate(len) {
            Ok(off) => off,
            // The free pages left may be scattered: the page asked for alone may still
            // fit (a memory cgroup counts pages, not runs of them).
            Err(platform::MemoryFileError::Exhausted { .. }) if len > PAGE => {
                (lo, hi, len) = (va, va + PAGE, PAGE);
                self.mf.allocate(PAGE).map_err(alloc_error)?
            }
            Err(e) => return Err(alloc_error(e)),
        };
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
            st.pages.insert(
                lo + i as u64 * PAGE,
                PageEntry {
                    frame: f,
                    from_file: false,
                    writable,
                },
            );
        }
        self.remap(st, lo, hi)
    }

    /// Makes the populated page at `va` writable: copies a shared frame of a private
    /// mapping (copy-on-write) or marks a shared-file page dirty.
    pub(super) fn make_writable(&self, st: &mut State, va: u64) -> Result<(), Errno> {
        let shared = Self::find_vma(st, va).map(|v| v.shared).unwrap_or(false);
        let e = st.pages.get(&va).ok_or(Errno::EFAULT)?.clone();
        if !shared && Arc::strong_count(&e.frame) > 1 {
            let off = self.mf.allocate(PAGE).map_err(alloc_error)?;
            let frame = Frame::new(&self.mf, off);
            self.mf.copy_within(e.frame.offset, off, PAGE)?;
            st.pages.insert(
                va,
                PageEntry {
                    frame,
                    from_file: false,
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
    /// of a mapped file, or the page could not be filled); `SIGKILL` when the sandbox's
    /// memory is exhausted (the task loop kills the process as an OOM killer does).
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
            if e == EOOM {
                // The sandbox's memory is exhausted: the OOM killer's case (SIGKILL).
                return FaultSignal {
                    signo: linux_abi::signal::SIGKILL,
                    code: 0,
                };
            }
            FaultSignal {
                signo: SIGBUS,
                code: BUS_ADRERR,
            }
        })
    }
}
