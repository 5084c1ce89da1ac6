//! The memory file: one memfd that holds all application memory.
//!
//! The Sentry maps the whole reservation into itself once, at creation, and reads and
//! writes application memory through that mapping with bounds-checked copies. Platforms
//! map ranges of the same memfd into application address spaces. Ranges are handed out
//! by a small first-fit allocator; freed ranges are returned to the host with
//! `FALLOCATE_PUNCH_HOLE`, so they read as zero when allocated again.
//!
//! With `copy.rs`, this is the only module of the crate with `unsafe` code: the
//! Sentry-side mapping. Application threads write the mapping concurrently, so every
//! access to it goes through `copy.rs`'s atomic copies, never a plain `memcpy`.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use linux_abi::Errno;

use crate::copy;

/// Page size used for all memory file offsets.
const PAGE: u64 = 4096;

/// Why a memory file operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemoryFileError {
    /// A host call failed.
    #[error("{op}: {errno}")]
    Host {
        /// The operation.
        op: &'static str,
        /// The host error.
        errno: Errno,
    },
    /// The range lies (partly) outside the file or overflows.
    #[error("range {offset:#x}+{len:#x} outside the memory file")]
    OutOfRange {
        /// Start of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
    },
    /// The reservation is exhausted.
    #[error("memory file is full ({capacity:#x} bytes)")]
    Exhausted {
        /// The capacity in bytes.
        capacity: u64,
    },
    /// Zero-length or unaligned allocation request.
    #[error("invalid allocation length {0:#x}")]
    InvalidLength(u64),
}

impl From<MemoryFileError> for Errno {
    fn from(e: MemoryFileError) -> Errno {
        match e {
            MemoryFileError::Host { errno, .. } => errno,
            MemoryFileError::OutOfRange { .. } => Errno::EFAULT,
            MemoryFileError::Exhausted { .. } => Errno::ENOMEM,
            MemoryFileError::InvalidLength(_) => Errno::EINVAL,
        }
    }
}

#[derive(Debug)]
struct Allocator {
    /// Free ranges below `end`: offset -> length, never adjacent.
    free: BTreeMap<u64, u64>,
    /// Everything at or above `end` is unallocated.
    end: u64,
}

/// A memfd holding all application memory, mapped once into the Sentry.
#[derive(Debug)]
pub struct MemoryFile {
    fd: OwnedFd,
    base: *mut u8,
    capacity: u64,
    /// Current file size (grows with allocation, never shrinks).
    size: AtomicU64,
    /// Bytes allocated and not freed (what a memory cgroup would charge).
    used: AtomicU64,
    alloc: Mutex<Allocator>,
}

// SAFETY: `base` points to a MAP_SHARED mapping owned by this struct for its whole life;
// all accesses through it are bounds-checked copies, so sharing across threads is sound.
unsafe impl Send for MemoryFile {}
// SAFETY: as above; interior state is behind a Mutex or atomics.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    /// Default capacity: 64 GiB of address space reserved in the Sentry; only pages
    /// that are written cost memory.
    pub const DEFAULT_CAPACITY: u64 = 64 << 30;

    /// Creates a memory file able to hold up to `capacity` bytes (rounded up to pages).
    pub fn new(name: &str, capacity: u64) -> Result<MemoryFile, MemoryFileError> {
        let capacity = capacity
            .checked_add(PAGE - 1)
            .ok_or(MemoryFileError::InvalidLength(capacity))?
            & !(PAGE - 1);
        if capacity == 0 {
            return Err(MemoryFileError::InvalidLength(0));
        }
        let cname = std::ffi::CString::new(name).map_err(|_| MemoryFileError::Host {
            op: "memfd_create",
            errno: Errno::EINVAL,
        })?;
        // SAFETY: `cname` is a valid NUL-terminated string; memfd_create has no other inputs.
        let raw = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(host("memfd_create"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: we ask the kernel for a fresh shared mapping of our own memfd at an
        // address of its choosing; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                capacity as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(host("mmap"));
        }
        Ok(MemoryFile {
            fd,
            base: base.cast(),
            capacity,
            size: AtomicU64::new(0),
            used: AtomicU64::new(0),
            alloc: Mutex::new(Allocator {
                free: BTreeMap::new(),
                end: 0,
            }),
        })
    }

    /// The memfd, for platforms that map it into application address spaces.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The raw memfd number.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The most bytes the file can ever hold.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes currently allocated (handed out by [`MemoryFile::allocate`] and not yet
    /// freed). At most [`MemoryFile::capacity`].
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The current size of the file; every offset below it is valid.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// The Sentry's own mapping of the file, for platforms that register it elsewhere
    /// (KVM memory slots). Offsets past [`MemoryFile::size`] must not be touched.
    pub fn host_address(&self) -> u64 {
        self.base as u64
    }

    /// Allocates `len` bytes (a multiple of the page size) of zeroed memory and returns
    /// their offset.
    pub fn allocate(&self, len: u64) -> Result<u64, MemoryFileError> {
        if len == 0 || !len.is_multiple_of(PAGE) {
            return Err(MemoryFileError::InvalidLength(len));
        }
        let mut a = self.alloc.lock();
        let found = a
            .free
            .iter()
            .find(|&(_, &l)| l >= len)
            .map(|(&o, &l)| (o, l));
        if let Some((off, flen)) = found {
            a.free.remove(&off);
            if flen > len {
                a.free.insert(off + len, flen - len);
            }
            self.used.fetch_add(len, Ordering::Relaxed);
            return Ok(off);
        }
        let off = a.end;
        let new_end = off.checked_add(len).filter(|&e| e <= self.capacity).ok_or(
            MemoryFileError::Exhausted {
                capacity: self.capacity,
            },
        )?;
        if new_end > self.size() {
            // Grow in 64 MiB steps to keep ftruncate calls rare.
            let target = (new_end.div_ceil(64 << 20) * (64 << 20)).min(self.capacity);
            // SAFETY: ftruncate on our own memfd; only grows the file.
            if unsafe { libc::ftruncate(self.fd.as_raw_fd(), target as i64) } != 0 {
                return Err(host("ftruncate"));
            }
            self.size.store(target, Ordering::Release);
        }
        a.end = new_end;
        self.used.fetch_add(len, Ordering::Relaxed);
        Ok(off)
    }

    /// Frees `len` bytes at `offset`, returning their pages to the host. The range must
    /// have come from [`MemoryFile::allocate`] (a sub-range is fine).
    pub fn free(&self, offset: u64, len: u64) -> Result<(), MemoryFileError> {
        self.check(offset, len)?;
        if !offset.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) || len == 0 {
            return Err(MemoryFileError::InvalidLength(len));
        }
        self.decommit(offset, len)?;
        let mut a = self.alloc.lock();
        let (mut start, mut l) = (offset, len);
        if let Some((&po, &pl)) = a.free.range(..start).next_back()
            && po + pl == start
        {
            a.free.remove(&po);
            start = po;
            l += pl;
        }
        if let Some(&nl) = a.free.get(&(start + l)) {
            a.free.remove(&(start + l));
            l += nl;
        }
        if start + l == a.end {
            a.end = start;
        } else {
            a.free.insert(start, l);
        }
        self.used.fetch_sub(len, Ordering::Relaxed);
        Ok(())
    }

    /// Returns the pages of a range to the host; they read as zero afterwards.
    pub fn decommit(&self, offset: u64, len: u64) -> Result<(), MemoryFileError> {
        self.check(offset, len)?;
        // SAFETY: fallocate on our own memfd within its size; punching a hole only zeroes
        // file contents, which every mapping observes consistently.
        let r = unsafe {
            libc::fallocate(
                self.fd.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as i64,
                len as i64,
            )
        };
        if r != 0 {
            return Err(host("fallocate"));
        }
        Ok(())
    }

    fn check(&self, offset: u64, len: u64) -> Result<(), MemoryFileError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(MemoryFileError::OutOfRange { offset, len }),
        }
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), MemoryFileError> {
        self.check(offset, buf.len() as u64)?;
        // SAFETY: the source range lies inside the live mapping (checked above) and the
        // file is at least that large, so no SIGBUS; the mapping is only ever accessed
        // through `copy`'s atomic accesses.
        unsafe { copy::copy_from_shared(self.base.add(offset as usize), buf) };
        Ok(())
    }

    /// Copies `buf` to `offset`.
    pub fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), MemoryFileError> {
        self.check(offset, buf.len() as u64)?;
        // SAFETY: the destination range lies inside the live, writable mapping (checked
        // above), only ever accessed through `copy`'s atomic accesses.
        unsafe { copy::copy_to_shared(buf, self.base.add(offset as usize)) };
        Ok(())
    }

    /// Sets `len` bytes at `offset` to zero.
    pub fn zero(&self, offset: u64, len: u64) -> Result<(), MemoryFileError> {
        self.check(offset, len)?;
        // SAFETY: the range lies inside the live, writable mapping (checked above), only
        // ever accessed through `copy`'s atomic accesses.
        unsafe { copy::zero_shared(self.base.add(offset as usize), len as usize) };
        Ok(())
    }

    /// Copies `len` bytes from offset `src` to offset `dst` inside the file (copy-on-write
    /// breaks). The ranges must not overlap.
    pub fn copy_within(&self, src: u64, dst: u64, len: u64) -> Result<(), MemoryFileError> {
        self.check(src, len)?;
        self.check(dst, len)?;
        if src < dst.saturating_add(len) && dst < src.saturating_add(len) {
            return Err(MemoryFileError::OutOfRange { offset: dst, len });
        }
        // SAFETY: both ranges lie inside the live mapping (checked above) and do not
        // overlap; the mapping is only ever accessed through `copy`'s atomic accesses.
        unsafe {
            copy::copy_shared(
                self.base.add(src as usize),
                self.base.add(dst as usize),
                len as usize,
            )
        };
        Ok(())
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: `base`/`capacity` describe the mapping made in `new`, which nothing
        // references after the last owner is dropped.
        unsafe { libc::munmap(self.base.cast(), self.capacity as usize) };
    }
}

fn host(op: &'static str) -> MemoryFileError {
    MemoryFileError::Host {
        op,
        errno: Errno::last_os_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_write_read_free_reuse() {
        let mf = MemoryFile::new("test", 1 << 30).unwrap();
        let a = mf.allocate(2 * PAGE).unwrap();
        let b = mf.allocate(PAGE).unwrap();
        assert_ne!(a, b);
        mf.write_at(a + 10, b"hello").unwrap();
        let mut buf = [0u8; 5];
        mf.read_at(a + 10, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(mf.used(), 3 * PAGE);
        mf.free(a, 2 * PAGE).unwrap();
        assert_eq!(mf.used(), PAGE);
        let c = mf.allocate(PAGE).unwrap();
        assert_eq!(mf.used(), 2 * PAGE);
        assert_eq!(c, a, "first fit reuses the freed range");
        mf.read_at(c + 10, &mut buf).unwrap();
        assert_eq!(buf, [0; 5], "freed pages read back as zero");
    }

    #[test]
    fn out_of_range_is_an_error_not_a_crash() {
        let mf = MemoryFile::new("test", 1 << 20).unwrap();
        let mut buf = [0u8; 8];
        assert!(matches!(
            mf.read_at(0, &mut buf),
            Err(MemoryFileError::OutOfRange { .. })
        ));
        mf.allocate(PAGE).unwrap();
        assert!(mf.read_at(u64::MAX - 2, &mut buf).is_err());
        assert!(mf.write_at(mf.size() - 4, &buf).is_err());
        assert_eq!(mf.allocate(3), Err(MemoryFileError::InvalidLength(3)));
        assert!(matches!(
            mf.allocate(2 << 20),
            Err(MemoryFileError::Exhausted { .. })
        ));
    }

    #[test]
    fn copy_within_rejects_overlap() {
        let mf = MemoryFile::new("test", 1 << 20).unwrap();
        let a = mf.allocate(4 * PAGE).unwrap();
        mf.write_at(a, b"abc").unwrap();
        mf.copy_within(a, a + PAGE, PAGE).unwrap();
        let mut buf = [0u8; 3];
        mf.read_at(a + PAGE, &mut buf).unwrap();
        assert_eq!(&buf, b"abc");
        assert!(mf.copy_within(a, a + 10, PAGE).is_err());
    }

    #[test]
    fn reads_racing_an_application_writer_see_whole_words() {
        // A second thread plays the application: it stores pages of one repeated byte
        // while the Sentry side reads. Every aligned word read must be
        // one of the values written, never a mix within a word.
        let mf = std::sync::Arc::new(MemoryFile::new("test", 1 << 20).unwrap());
        let off = mf.allocate(PAGE).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (mf, stop) = (mf.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut v = 0u8;
                while !stop.load(Ordering::Relaxed) {
                    v = v.wrapping_add(1);
                    mf.write_at(off, &[v; PAGE as usize]).unwrap();
                }
            })
        };
        let mut buf = [0u8; PAGE as usize];
        for _ in 0..2000 {
            mf.read_at(off, &mut buf).unwrap();
            for w in buf.chunks_exact(8) {
                assert!(w.iter().all(|&b| b == w[0]), "torn word {w:?}");
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
    }
}
