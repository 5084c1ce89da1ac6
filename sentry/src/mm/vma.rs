//! Virtual memory areas: what each range of an address space is backed by and may do.

use std::fmt;
use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mm::{PROT_EXEC, PROT_READ, PROT_WRITE};

/// A file that can back a memory mapping (and an executable the loader reads).
///
/// The VFS's open file descriptions implement this; tests implement it over host files.
pub trait MappableFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at EOF).
    fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno>;
    /// Writes `buf` at `offset` (used to write back dirty `MAP_SHARED` pages).
    fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno>;
    /// The current file size.
    fn size(&self) -> Result<u64, Errno>;
    /// The path shown in `/proc/<pid>/maps` and used for `AT_EXECFN`-style reporting.
    fn path(&self) -> Vec<u8>;
    /// For files with pages of their own (tmpfs, `/dev/shm`, memfd, the Gofer's page
    /// cache): the file's page holding byte `offset`, so that every `MAP_SHARED` mapping
    /// uses the very same page (coherent across processes and with `read`/`write`). The
    /// mapping holds the page too, so the file may drop it (truncation) without the page
    /// going to anyone else. `None` for files whose pages are copied in and written back.
    fn shared_page(&self, _offset: u64) -> Option<Result<Arc<super::Frame>, Errno>> {
        None
    }
    /// Writes the file's own pages of `[offset, offset + len)` (see
    /// [`MappableFile::shared_page`]) to its backing store, after writes through a shared
    /// mapping: `msync`, `munmap`, and when the address space goes away. Memory-backed
    /// files have nothing to do.
    fn writeback_shared(&self, _offset: u64, _len: u64) -> Result<(), Errno> {
        Ok(())
    }
    /// Whether the file lies on a `noexec` mount: its mappings cannot become executable.
    fn noexec(&self) -> bool {
        false
    }
}

/// What a VMA's pages are filled from on first touch.
#[derive(Clone, Debug)]
pub enum Backing {
    /// Zero-filled pages.
    Anonymous,
    /// Pages read from `file` starting at `offset` (for the VMA's first page).
    File {
        /// The mapped file.
        file: Arc<dyn MappableFile>,
        /// File offset of the VMA's start.
        offset: u64,
    },
}

/// One virtual memory area: `[start, end)` with uniform protection and backing.
#[derive(Clone, Debug)]
pub struct Vma {
    /// First address (page aligned).
    pub start: u64,
    /// One past the last address (page aligned).
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// `MAP_SHARED` (writes are visible to other mappings / the file).
    pub shared: bool,
    /// Where the pages come from.
    pub backing: Backing,
    /// A label for `/proc/<pid>/maps` (`[heap]`, `[stack]`), if any.
    pub label: Option<&'static str>,
}

impl Vma {
    /// Splits the VMA at `addr` (strictly inside it): `self` keeps `[start, addr)`, the
    /// returned VMA is `[addr, end)` with its file offset advanced.
    pub(crate) fn split_off(&mut self, addr: u64) -> Vma {
        debug_assert!(addr > self.start && addr < self.end);
        let mut tail = self.clone();
        tail.start = addr;
        if let Backing::File { offset, .. } = &mut tail.backing {
            *offset += addr - self.start;
        }
        self.end = addr;
        tail
    }

    /// The file offset of address `addr` in a file-backed VMA.
    pub(crate) fn file_offset(&self, addr: u64) -> Option<(Arc<dyn MappableFile>, u64)> {
        match &self.backing {
            Backing::Anonymous => None,
            Backing::File { file, offset } => Some((file.clone(), offset + (addr - self.start))),
        }
    }

    /// Whether pages are shared with a file that needs dirty tracking and write-back.
    pub(crate) fn is_shared_file(&self) -> bool {
        self.shared && matches!(self.backing, Backing::File { .. })
    }

    /// Whether `other` directly follows this VMA and could be merged into it.
    pub(crate) fn can_merge(&self, other: &Vma) -> bool {
        self.end == other.start
            && self.prot == other.prot
            && self.shared == other.shared
            && self.label == other.label
            && matches!(
                (&self.backing, &other.backing),
                (Backing::Anonymous, Backing::Anonymous)
            )
    }
}

/// A snapshot of one VMA for `/proc/<pid>/maps` and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmaInfo {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `PROT_*` bits.
    pub prot: u32,
    /// `MAP_SHARED`.
    pub shared: bool,
    /// File offset of `start` (0 for anonymous memory).
    pub offset: u64,
    /// The backing file's path, a label like `[heap]`, or empty.
    pub name: Vec<u8>,
}

impl VmaInfo {
    /// The line `/proc/<pid>/maps` shows for this VMA.
    pub fn maps_line(&self) -> String {
        let flag = |bit: u32, c: char| if self.prot & bit != 0 { c } else { '-' };
        format!(
            "{:08x}-{:08x} {}{}{}{} {:08x} 00:00 0 {}\n",
            self.start,
            self.end,
            flag(PROT_READ, 'r'),
            flag(PROT_WRITE, 'w'),
            flag(PROT_EXEC, 'x'),
            if self.shared { 's' } else { 'p' },
            self.offset,
            String::from_utf8_lossy(&self.name),
        )
    }
}

impl From<&Vma> for VmaInfo {
    fn from(v: &Vma) -> VmaInfo {
        let (offset, name) = match &v.backing {
            Backing::Anonymous => (
                0,
                v.label.map(|l| l.as_bytes().to_vec()).unwrap_or_default(),
            ),
            Backing::File { file, offset } => (*offset, file.path()),
        };
        VmaInfo {
            start: v.start,
            end: v.end,
            prot: v.prot,
            shared: v.shared,
            offset,
            name,
        }
    }
}
