//! The Sentry's access to application memory: copy-in/out, typed objects, C strings,
//! iovecs and string arrays. A bad pointer is `EFAULT`.

use super::*;

impl MemoryManager {
    /// Runs `f(memory_file_offset, range)` for each page piece of `[addr, addr + len)`,
    /// populating pages and breaking COW as needed.
    pub(super) fn access(
        &self,
        addr: u64,
        len: usize,
        write: bool,
        check: Check,
        f: impl FnMut(u64, std::ops::Range<usize>) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        self.access_pages(addr, len, write, check, f)
            .map_err(|e| self.note_oom(e))
    }

    fn access_pages(
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
                    let off = self.mf.allocate(PAGE).map_err(alloc_error)?;
                    self.mf.copy_within(e.frame.offset, off, PAGE)?;
                    let frame = Frame::new(&self.mf, off);
                    st.pages.insert(
                        va,
                        PageEntry {
                            frame,
                            from_file: false,
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
}
