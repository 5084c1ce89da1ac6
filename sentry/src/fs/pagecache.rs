//! A page cache for files whose data lives outside the Sentry (the Gofer's host files).
//!
//! Pages exist only once something maps the file `MAP_SHARED` (a file that is only read
//! and written keeps going straight to its host descriptor): every shared mapping of the
//! file then uses the same pages of the memory file, and `read`/`write` go through them,
//! so that a write through one mapping is seen by the others and by `read`, and a
//! `write` is seen by the mappings. Writes through mappings reach the host when `mm`
//! writes them back (`msync`, `munmap`, the end of the address space) and at `fsync`.
//!
//! The pages are [`Frame`]s that the mappings hold too: dropping one from the cache
//! (truncation) never hands memory still mapped somewhere to anyone else.

use std::collections::BTreeMap;
use std::sync::Arc;

use linux_abi::Errno;
use parking_lot::Mutex;
use platform::MemoryFile;

use crate::mm::{Frame, PAGE};

/// The cached pages of one file, by page index.
#[derive(Debug)]
pub(crate) struct PageCache {
    mf: Arc<MemoryFile>,
    pages: Mutex<BTreeMap<u64, Arc<Frame>>>,
}

impl PageCache {
    pub(crate) fn new(mf: Arc<MemoryFile>) -> PageCache {
        PageCache {
            mf,
            pages: Mutex::new(BTreeMap::new()),
        }
    }

    /// Whether no page is cached (then the file's I/O bypasses the cache).
    pub(crate) fn is_empty(&self) -> bool {
        self.pages.lock().is_empty()
    }

    /// The page with index `idx`, read by `fill` (from the start of the page, as many
    /// bytes as the file has there; the rest stays zero) the first time.
    pub(crate) fn page(
        &self,
        idx: u64,
        fill: impl FnMut(&mut [u8], u64) -> Result<usize, Errno>,
    ) -> Result<Arc<Frame>, Errno> {
        let mut pages = self.pages.lock();
        if let Some(f) = pages.get(&idx) {
            return Ok(f.clone());
        }
        let mut buf = vec![0u8; PAGE as usize];
        let start = idx.checked_mul(PAGE).ok_or(Errno::EFBIG)?;
        read_full(&mut buf, start, fill)?;
        let frame = Frame::alloc(&self.mf)?;
        self.mf.write_at(frame.offset(), &buf)?;
        pages.insert(idx, frame.clone());
        Ok(frame)
    }

    /// Reads `[off, off + buf.len())` of a file of `size` bytes: cached pages from the
    /// memory file, the rest with `direct`.
    pub(crate) fn read(
        &self,
        buf: &mut [u8],
        off: u64,
        size: u64,
        mut direct: impl FnMut(&mut [u8], u64) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        if off >= size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(size - off) as usize;
        let pages = self.pages.lock();
        let mut done = 0usize;
        while done < n {
            let pos = off + done as u64;
            let in_page = pos % PAGE;
            let chunk = ((PAGE - in_page) as usize).min(n - done);
            let dst = &mut buf[done..done + chunk];
            match pages.get(&(pos / PAGE)) {
                Some(f) => self.mf.read_at(f.offset() + in_page, dst)?,
                None => {
                    let got = read_full(dst, pos, &mut direct)?;
                    if got < chunk {
                        return Ok(done + got);
                    }
                }
            }
            done += chunk;
        }
        Ok(done)
    }

    /// After `data` was written to the file at `off`: the cached pages it covers take it.
    pub(crate) fn wrote(&self, data: &[u8], off: u64) -> Result<(), Errno> {
        let pages = self.pages.lock();
        let mut done = 0usize;
        while done < data.len() {
            let pos = off + done as u64;
            let in_page = pos % PAGE;
            let chunk = ((PAGE - in_page) as usize).min(data.len() - done);
            if let Some(f) = pages.get(&(pos / PAGE)) {
                self.mf
                    .write_at(f.offset() + in_page, &data[done..done + chunk])?;
            }
            done += chunk;
        }
        Ok(())
    }

    /// Writes the cached pages of `[off, off + len)` to the file with `write`, up to
    /// the file's `size` (a mapping cannot grow a file).
    pub(crate) fn flush(
        &self,
        off: u64,
        len: u64,
        size: u64,
        mut write: impl FnMut(&[u8], u64) -> Result<usize, Errno>,
    ) -> Result<(), Errno> {
        let first = off / PAGE;
        let end = off.saturating_add(len).div_ceil(PAGE);
        let pages = self.pages.lock();
        let mut buf = vec![0u8; PAGE as usize];
        for (&idx, f) in pages.range(first..end) {
            let start = idx * PAGE;
            if start >= size {
                break;
            }
            let n = (size - start).min(PAGE) as usize;
            self.mf.read_at(f.offset(), &mut buf[..n])?;
            let mut done = 0;
            while done < n {
                match write(&buf[done..n], start + done as u64)? {
                    0 => return Err(Errno::EIO),
                    w => done += w,
                }
            }
        }
        Ok(())
    }

    /// The file now has `size` bytes: pages past it leave the cache (mappings that hold
    /// one keep it until they let go) and the tail of the last page is zeroed.
    pub(crate) fn truncate(&self, size: u64) -> Result<(), Errno> {
        let mut pages = self.pages.lock();
        drop(pages.split_off(&size.div_ceil(PAGE)));
        if !size.is_multiple_of(PAGE)
            && let Some(f) = pages.get(&(size / PAGE))
        {
            self.mf.zero(f.offset() + size % PAGE, PAGE - size % PAGE)?;
        }
        Ok(())
    }
}

/// Fills `buf` from `off` with `read` until it is full or the file ends; returns the
/// bytes read.
fn read_full(
    buf: &mut [u8],
    off: u64,
    mut read: impl FnMut(&mut [u8], u64) -> Result<usize, Errno>,
) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match read(&mut buf[done..], off + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "host file" in a vector, and a cache over it.
    fn setup(len: usize) -> (Arc<MemoryFile>, PageCache, Mutex<Vec<u8>>) {
        let mf = Arc::new(MemoryFile::new("pagecache-test", 1 << 20).expect("memory file"));
        let host: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        (mf.clone(), PageCache::new(mf), Mutex::new(host))
    }

    fn host_read(host: &Mutex<Vec<u8>>) -> impl FnMut(&mut [u8], u64) -> Result<usize, Errno> + '_ {
        move |b, o| {
            let h = host.lock();
            let o = (o as usize).min(h.len());
            let n = b.len().min(h.len() - o);
            b[..n].copy_from_slice(&h[o..o + n]);
            Ok(n)
        }
    }

    #[test]
    fn mapped_pages_are_shared_read_and_written_through_and_flushed() {
        let (mf, cache, host) = setup(2 * PAGE as usize + 100);
        assert!(cache.is_empty());
        let a = cache.page(1, host_read(&host)).expect("page");
        let b = cache.page(1, host_read(&host)).expect("page");
        assert_eq!(a.offset(), b.offset(), "one page for every mapping");
        // A write through a mapping is seen by read.
        mf.write_at(a.offset() + 5, b"MAPPED").expect("poke");
        let mut buf = [0u8; 8];
        let size = host.lock().len() as u64;
        assert_eq!(
            cache.read(&mut buf, PAGE + 3, size, host_read(&host)),
            Ok(8)
        );
        assert_eq!(&buf[2..8], b"MAPPED");
        // Reads spanning cached and uncached pages.
        let mut all = vec![0u8; size as usize + 10];
        assert_eq!(
            cache.read(&mut all, 0, size, host_read(&host)),
            Ok(size as usize)
        );
        assert_eq!(all[PAGE as usize - 1], host.lock()[PAGE as usize - 1]);
        assert_eq!(&all[PAGE as usize + 5..PAGE as usize + 11], b"MAPPED");
        // A write is seen by the mappings.
        cache.wrote(b"WRITE", PAGE + 20).expect("wrote");
        let mut m = [0u8; 5];
        mf.read_at(a.offset() + 20, &mut m).expect("peek");
        assert_eq!(&m, b"WRITE");
        // Flushing writes the page back, up to the size.
        cache
            .flush(0, 3 * PAGE, size, |d, o| {
                let mut h = host.lock();
                h[o as usize..o as usize + d.len()].copy_from_slice(d);
                Ok(d.len())
            })
            .expect("flush");
        assert_eq!(
            &host.lock()[PAGE as usize + 5..PAGE as usize + 11],
            b"MAPPED"
        );
        assert_eq!(host.lock().len() as u64, size);
    }

    #[test]
    fn truncation_drops_pages_but_not_the_memory_a_mapping_holds() {
        let (mf, cache, host) = setup(2 * PAGE as usize);
        let held = cache.page(1, host_read(&host)).expect("page");
        mf.write_at(held.offset(), b"kept").expect("poke");
        cache.page(0, host_read(&host)).expect("page");
        cache.truncate(10).expect("truncate");
        // Page 1 left the cache but is still the mapping's: nobody else gets it.
        let other = Frame::alloc(&mf).expect("alloc");
        assert_ne!(other.offset(), held.offset());
        let mut b = [0u8; 4];
        mf.read_at(held.offset(), &mut b).expect("peek");
        assert_eq!(&b, b"kept");
        // The tail of the last page reads as zeros.
        let p0 = cache.page(0, host_read(&host)).expect("page");
        let mut tail = [1u8; 4];
        mf.read_at(p0.offset() + 10, &mut tail).expect("peek");
        assert_eq!(tail, [0; 4]);
    }
}
