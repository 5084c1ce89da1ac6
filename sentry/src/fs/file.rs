//! File descriptions ([`OpenFile`]), the per-process [`FdTable`] and [`FsContext`].
//!
//! An `OpenFile` holds its path (mount and dentry), status flags, its own offset behind its
//! own lock, and the filesystem's [`FileOps`]; several descriptors (after `dup` or `fork`)
//! share one. The `FdTable` maps numbers to files with a close-on-exec bit per number and
//! an `RLIMIT_NOFILE`-style limit. The `FsContext` holds a task's root, cwd and umask.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use linux_abi::Errno;
use linux_abi::flags::open::*;
use linux_abi::types::Stat;

use super::inotify::bits::{IN_ACCESS, IN_CLOSE_NOWRITE, IN_CLOSE_WRITE, IN_MODIFY};
use super::lock::{FileKey, FileLocks, LockOwner, LockRegistry};
use super::vfs::VfsPath;
use super::{Caller, DirEntry, FileOps, FileType, Inode};

/// A write or truncate would take a regular file past the writer's `RLIMIT_FSIZE`: the
/// system call sends `SIGXFSZ` and returns `EFBIG`. Outside the range of real error
/// numbers, as `mm::EOOM`.
pub const EFSIZE: Errno = Errno::new(4001);
/// `lseek` whence values.
pub mod seek {
    /// From the start.
    pub const SEEK_SET: u32 = 0;
    /// From the current offset.
    pub const SEEK_CUR: u32 = 1;
    /// From the end.
    pub const SEEK_END: u32 = 2;
    /// Next data at or after the offset.
    pub const SEEK_DATA: u32 = 3;
    /// Next hole at or after the offset.
    pub const SEEK_HOLE: u32 = 4;
}

/// Largest file offset accepted.
const MAX_OFFSET: u64 = i64::MAX as u64;

/// A file description.
pub struct OpenFile {
    path: VfsPath,
    flags: AtomicU32,
    offset: Mutex<u64>,
    ops: Arc<dyn FileOps>,
    dir: Mutex<Option<Vec<DirEntry>>>,
    /// The file's lock table, once this description took part in locking.
    locks: OnceLock<Arc<FileLocks>>,
    /// Signal-driven I/O: the owner, the signal and the wait-queue entry of `O_ASYNC`.
    fasync: Mutex<Fasync>,
}

/// Who gets a file's I/O signals (`F_SETOWN`, `F_SETOWN_EX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigioOwner {
    /// One thread (`F_OWNER_TID`).
    Thread(i32),
    /// A process (`F_OWNER_PID`, a positive `F_SETOWN`).
    Process(i32),
    /// Every process of a process group (`F_OWNER_PGRP`, a negative `F_SETOWN`).
    Group(i32),
}

/// A description's signal-driven I/O state (Linux's `fown_struct` and `fasync_struct`).
#[derive(Debug, Default)]
pub struct Fasync {
    /// The owner, if one was set.
    pub owner: Option<SigioOwner>,
    /// The real and effective uid of whoever set the owner (the permission to signal
    /// it is theirs).
    pub setter: (u32, u32),
    /// `F_SETSIG`'s signal; 0 means a plain `SIGIO`.
    pub signal: i32,
    /// The descriptor `O_ASYNC` was set through (`si_fd`).
    pub fd: i32,
    /// The entry on the file's wait queue while `O_ASYNC` is on.
    pub entry: Option<crate::waiter::EntryId>,
}

impl Drop for OpenFile {
    /// The last close of a description releases its OFD and `flock` locks and its
    /// `O_ASYNC` entry.
    fn drop(&mut self) {
        if let Some(l) = self.locks.get() {
            l.release_file(self.lock_owner());
        }
        if let (Some(id), Some(q)) = (self.fasync.get_mut().entry.take(), self.ops.wait_queue()) {
            q.unregister(id);
        }
        let flags = self.flags();
        if let Some(n) = self.path.mount.notify()
            && n.active()
            && flags & O_PATH == 0
        {
            self.path.notify(if flags & O_ACCMODE == O_RDONLY {
                IN_CLOSE_NOWRITE
            } else {
                IN_CLOSE_WRITE
            });
            // The last user of a file whose last name went.
            if self.path.dentry.is_deleted() && Arc::strong_count(&self.path.dentry) == 1 {
                n.on_release(self.path.inode());
            }
        }
    }
}

impl fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenFile")
            .field("path", &String::from_utf8_lossy(&self.path()))
            .field("flags", &format_args!("{:#o}", self.flags()))
            .finish()
    }
}

impl OpenFile {
    /// A new description of `path` with the given `open(2)` flags and I/O operations.
    pub fn new(path: VfsPath, flags: u32, ops: Arc<dyn FileOps>) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            path,
            flags: AtomicU32::new(flags),
            offset: Mutex::new(0),
            ops,
            dir: Mutex::new(None),
            locks: OnceLock::new(),
            fasync: Mutex::new(Fasync::default()),
        })
    }

    /// The signal-driven I/O state (see `kernel::fasync`).
    pub fn fasync(&self) -> parking_lot::MutexGuard<'_, Fasync> {
        self.fasync.lock()
    }

    /// The owner of this description's OFD and `flock` locks.
    pub fn lock_owner(&self) -> LockOwner {
        LockOwner::File(self as *const OpenFile as usize)
    }

    /// The lock table of the file, found in `registry` by the file's identity.
    pub fn file_locks(&self, registry: &LockRegistry) -> Result<Arc<FileLocks>, Errno> {
        if let Some(l) = self.locks.get() {
            return Ok(l.clone());
        }
        let st = self.stat()?;
        Ok(self
            .locks
            .get_or_init(|| registry.get((st.st_dev, st.st_ino)))
            .clone())
    }

    /// The file's identity for locking (`None` if it cannot be told).
    pub fn lock_key(&self) -> Option<FileKey> {
        match self.locks.get() {
            Some(l) => Some(l.key()),
            None => self.stat().ok().map(|s| (s.st_dev, s.st_ino)),
        }
    }

    /// The path (mount and dentry) the file was opened at.
    pub fn vfs_path(&self) -> &VfsPath {
        &self.path
    }

    /// The inode.
    pub fn inode(&self) -> &Arc<dyn Inode> {
        self.path.inode()
    }

    /// The filesystem's I/O operations.
    pub fn ops(&self) -> &Arc<dyn FileOps> {
        &self.ops
    }

    /// The absolute path (for `/proc/<pid>/fd`, `exe` and `AT_EXECFN`).
    pub fn path(&self) -> Vec<u8> {
        self.path.path_from(None)
    }

    /// The status flags and access mode (`F_GETFL`).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Acquire)
    }

    /// `F_SETFL`: changes `O_APPEND`, `O_NONBLOCK`, `O_ASYNC`, `O_DIRECT`, `O_NOATIME`.
    pub fn set_flags(&self, new: u32) -> Result<(), Errno> {
        const SETTABLE: u32 = O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME;
        let old = self.flags();
        let v = (old & !SETTABLE) | (new & SETTABLE);
        self.ops.set_status_flags(v)?;
        self.flags.store(v, Ordering::Release);
        Ok(())
    }

    /// Whether the file is an `O_PATH` descriptor.
    pub fn is_path_only(&self) -> bool {
        self.flags() & O_PATH != 0
    }

    /// Whether reads are allowed.
    pub fn readable(&self) -> bool {
        let f = self.flags();
        f & O_PATH == 0 && f & O_ACCMODE != O_WRONLY
    }

    /// Whether writes are allowed.
    pub fn writable(&self) -> bool {
        let f = self.flags();
        f & O_PATH == 0 && (f & O_ACCMODE == O_WRONLY || f & O_ACCMODE == O_RDWR)
    }

    /// The attributes.
    pub fn stat(&self) -> Result<Stat, Errno> {
        self.inode().stat()
    }

    fn is_dir(&self) -> bool {
        self.path
            .file_type()
            .map(|t| t == FileType::Directory)
            .unwrap_or(false)
    }

    /// Reports `mask` to the file's inotify watches when `r` moved some bytes.
    fn notified(&self, r: Result<usize, Errno>, mask: u32) -> Result<usize, Errno> {
        if let Ok(n) = r
            && n > 0
        {
            self.path.notify(mask);
        }
        r
    }

    /// Reads at the file offset, advancing it, for `caller`.
    pub fn read(&self, caller: &Caller, buf: &mut [u8]) -> Result<usize, Errno> {
        self.notified(self.read_inner(caller, buf), IN_ACCESS)
    }

    fn read_inner(&self, caller: &Caller, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        if self.ops.stream() {
            return self.ops.read_by(caller, buf, 0);
        }
        let mut off = self.offset.lock();
        let n = self.ops.read_by(caller, buf, *off)?;
        *off += n as u64;
        Ok(n)
    }

    /// Writes at the file offset (the end with `O_APPEND`), advancing it, for `caller`.
    pub fn write(&self, caller: &Caller, buf: &[u8]) -> Result<usize, Errno> {
        self.write_limited(caller, buf, u64::MAX)
    }

    /// Cuts a write of `len` bytes at `off` of a regular file to the file-size limit
    /// `limit` (`RLIMIT_FSIZE`): [`EFSIZE`] when it would start at or past it (the caller
    /// sends `SIGXFSZ` and says `EFBIG`), as Linux's `generic_write_check_limits`.
    fn fsize_cut(&self, off: u64, len: usize, limit: u64) -> Result<usize, Errno> {
        if limit == u64::MAX || len == 0 {
            return Ok(len);
        }
        if FileType::from_mode(self.stat()?.st_mode) != FileType::Regular {
            return Ok(len);
        }
        if off >= limit {
            return Err(EFSIZE);
        }
        Ok(len.min(usize::try_from(limit - off).unwrap_or(usize::MAX)))
    }

    /// [`OpenFile::write`] under the file-size limit `limit` (see `fsize_cut`).
    pub fn write_limited(&self, caller: &Caller, buf: &[u8], limit: u64) -> Result<usize, Errno> {
        self.notified(self.write_inner(caller, buf, limit), IN_MODIFY)
    }

    fn write_inner(&self, caller: &Caller, buf: &[u8], limit: u64) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if self.ops.stream() {
            return self.ops.write_by(caller, buf, 0);
        }
        let mut off = self.offset.lock();
        if self.flags() & O_APPEND != 0 {
            *off = self.stat()?.st_size as u64;
        }
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > MAX_OFFSET)
        {
            return Err(Errno::EFBIG);
        }
        let len = self.fsize_cut(*off, buf.len(), limit)?;
        let n = self.ops.write_by(caller, &buf[..len], *off)?;
        *off += n as u64;
        Ok(n)
    }

    /// Reads at `off` without moving the file offset, for `caller`.
    pub fn pread(&self, caller: &Caller, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        if self.ops.stream() {
            return Err(Errno::ESPIPE);
        }
        if self.is_dir() {
            return Err(Errno::EISDIR);
        }
        if off > MAX_OFFSET {
            return Err(Errno::EINVAL);
        }
        self.notified(self.ops.read_by(caller, buf, off), IN_ACCESS)
    }

    /// Writes at `off` without moving the file offset, for `caller`.
    pub fn pwrite(&self, caller: &Caller, buf: &[u8], off: u64) -> Result<usize, Errno> {
        self.pwrite_limited(caller, buf, off, u64::MAX)
    }

    /// [`OpenFile::pwrite`] under the file-size limit `limit` (see `fsize_cut`).
    pub fn pwrite_limited(
        &self,
        caller: &Caller,
        buf: &[u8],
        off: u64,
        limit: u64,
    ) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        if self.ops.stream() {
            return Err(Errno::ESPIPE);
        }
        if off > MAX_OFFSET
            || off
                .checked_add(buf.len() as u64)
                .is_none_or(|e| e > MAX_OFFSET)
        {
            return Err(Errno::EINVAL);
        }
        // On Linux a file opened O_APPEND is written at its end whatever the offset.
        let off = if self.flags() & O_APPEND != 0 {
            self.stat()?.st_size as u64
        } else {
            off
        };
        let len = self.fsize_cut(off, buf.len(), limit)?;
        self.notified(self.ops.write_by(caller, &buf[..len], off), IN_MODIFY)
    }

    /// The current offset.
    pub fn offset(&self) -> u64 {
        *self.offset.lock()
    }

    /// `lseek`.
    pub fn seek(&self, off: i64, whence: u32) -> Result<u64, Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        if self.ops.stream() {
            return self.ops.stream_seek(off, whence);
        }
        let mut cur = self.offset.lock();
        let size = || -> Result<i64, Errno> { Ok(self.stat()?.st_size) };
        let new = match whence {
            seek::SEEK_SET => Some(off),
            seek::SEEK_CUR => (*cur as i64).checked_add(off),
            seek::SEEK_END => size()?.checked_add(off),
            seek::SEEK_DATA => {
                if off < 0 || off >= size()? {
                    return Err(Errno::ENXIO);
                }
                Some(off)
            }
            seek::SEEK_HOLE => {
                let s = size()?;
                if off < 0 || off >= s {
                    return Err(Errno::ENXIO);
                }
                Some(s)
            }
            _ => return Err(Errno::EINVAL),
        };
        let new = new.filter(|&n| n >= 0).ok_or(Errno::EINVAL)?;
        if self.is_dir() && new == 0 {
            *self.dir.lock() = None;
        }
        *cur = new as u64;
        Ok(new as u64)
    }

    /// Fills `out` (at most `max` bytes) with `linux_dirent64` records (or the old
    /// `linux_dirent` when `old`), continuing from the file offset.
    pub fn getdents(&self, max: usize, old: bool) -> Result<Vec<u8>, Errno> {
        let r = self.getdents_inner(max, old);
        // A listing is an access, even one past the end (Linux's iterate_dir).
        if r.is_ok() {
            self.path.notify(IN_ACCESS);
        }
        r
    }

    fn getdents_inner(&self, max: usize, old: bool) -> Result<Vec<u8>, Errno> {
        if self.is_path_only() {
            return Err(Errno::EBADF);
        }
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut off = self.offset.lock();
        let mut snap = self.dir.lock();
        if snap.is_none() || *off == 0 {
            let st = self.stat()?;
            let mut v = vec![
                DirEntry {
                    name: b".".to_vec(),
                    ino: st.st_ino,
                    kind: FileType::Directory,
                },
                DirEntry {
                    name: b"..".to_vec(),
                    ino: st.st_ino,
                    kind: FileType::Directory,
                },
            ];
            if let Some(p) = self.path.dentry.parent()
                && let Ok(ps) = p.inode().stat()
            {
                v[1].ino = ps.st_ino;
            }
            v.extend(self.inode().readdir()?);
            *snap = Some(v);
        }
        let entries = snap.as_ref().map(Vec::as_slice).unwrap_or(&[]);
        let mut out = Vec::new();
        let mut i = *off as usize;
        while i < entries.len() {
            let e = &entries[i];
            let rec = if old {
                (8 + 8 + 2 + e.name.len() + 2).next_multiple_of(8)
            } else {
                (8 + 8 + 2 + 1 + e.name.len() + 1).next_multiple_of(8)
            };
            if out.len() + rec > max {
                if out.is_empty() {
                    return Err(Errno::EINVAL);
                }
                break;
            }
            let start = out.len();
            out.extend_from_slice(&e.ino.to_le_bytes());
            out.extend_from_slice(&((i + 1) as u64).to_le_bytes());
            out.extend_from_slice(&(rec as u16).to_le_bytes());
            if !old {
                out.push(e.kind.dirent_type());
            }
            out.extend_from_slice(&e.name);
            out.resize(start + rec, 0);
            if old {
                out[start + rec - 1] = e.kind.dirent_type();
            }
            i += 1;
        }
        *off = i as u64;
        Ok(out)
    }
}

/// One descriptor slot.
#[derive(Clone, Debug)]
struct Slot {
    file: Arc<OpenFile>,
    cloexec: bool,
}

/// Default `RLIMIT_NOFILE`.
pub const DEFAULT_NOFILE: u32 = 1024;

/// A process's descriptor table.
///
/// The table owns its process's POSIX record locks ([`FdTable::lock_owner`]): it keeps
/// the lock tables of the files it holds such locks on, and releases its locks on a file
/// when any descriptor of that file is closed, and all of them when it goes away.
#[derive(Debug)]
pub struct FdTable {
    inner: Mutex<FdInner>,
    posix_locks: Mutex<Vec<Arc<FileLocks>>>,
}

impl Drop for FdTable {
    fn drop(&mut self) {
        let owner = self.lock_owner();
        for l in std::mem::take(self.posix_locks.get_mut()) {
            l.release_records(owner);
        }
    }
}

#[derive(Debug)]
struct FdInner {
    fds: BTreeMap<i32, Slot>,
    limit: u32,
}

impl Default for FdTable {
    fn default() -> Self {
        FdTable::new()
    }
}

impl FdTable {
    /// An empty table with the default limit.
    pub fn new() -> FdTable {
        FdTable {
            inner: Mutex::new(FdInner {
                fds: BTreeMap::new(),
                limit: DEFAULT_NOFILE,
            }),
            posix_locks: Mutex::new(Vec::new()),
        }
    }

    /// The owner of this table's (its process's) POSIX record locks.
    pub fn lock_owner(&self) -> LockOwner {
        LockOwner::Process(self as *const FdTable as usize)
    }

    /// Records that the table may hold POSIX locks on the file of `locks` (before taking
    /// them, so a close racing with the request releases them).
    pub fn note_posix_locks(&self, locks: &Arc<FileLocks>) {
        let mut v = self.posix_locks.lock();
        if !v.iter().any(|l| Arc::ptr_eq(l, locks)) {
            v.push(locks.clone());
        }
    }

    /// Forgets the file of `locks` if the table holds no POSIX lock on it any more.
    pub fn forget_posix_locks(&self, locks: &Arc<FileLocks>) {
        let mut v = self.posix_locks.lock();
        if !locks.holds_records(self.lock_owner()) {
            v.retain(|l| !Arc::ptr_eq(l, locks));
        }
    }

    /// Releases this table's POSIX locks on the files of descriptors just closed.
    fn closed(&self, files: &[&Arc<OpenFile>]) {
        let mut v = self.posix_locks.lock();
        if v.is_empty() {
            return;
        }
        let owner = self.lock_owner();
        for f in files {
            let Some(key) = f.lock_key() else { continue };
            v.retain(|l| {
                if l.key() == key {
                    l.release_records(owner);
                    false
                } else {
                    true
                }
            });
        }
    }

    /// The file at `fd` (`EBADF` if none).
    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        self.inner
            .lock()
            .fds
            .get(&fd)
            .map(|s| s.file.clone())
            .ok_or(Errno::EBADF)
    }

    /// Installs `f` at the lowest free number at or above `min` (`EMFILE` past the limit).
    pub fn insert_min(&self, f: Arc<OpenFile>, min: i32, cloexec: bool) -> Result<i32, Errno> {
        let mut g = self.inner.lock();
        if min < 0 || min as u32 >= g.limit {
            return Err(Errno::EINVAL);
        }
        let mut n = min;
        for (&k, _) in g.fds.range(min..) {
            if k != n {
                break;
            }
            n += 1;
        }
        if n as u32 >= g.limit {
            return Err(Errno::EMFILE);
        }
        g.fds.insert(n, Slot { file: f, cloexec });
        Ok(n)
    }

    /// Installs `f` at the lowest free number.
    pub fn insert(&self, f: Arc<OpenFile>, cloexec: bool) -> Result<i32, Errno> {
        self.insert_min(f, 0, cloexec)
    }

    /// Installs `f` at `fd`, replacing (and returning) what was there.
    pub fn insert_at(
        &self,
        fd: i32,
        f: Arc<OpenFile>,
        cloexec: bool,
    ) -> Result<Option<Arc<OpenFile>>, Errno> {
        let mut g = self.inner.lock();
        if fd < 0 || fd as u32 >= g.limit {
            return Err(Errno::EBADF);
        }
        let old = g.fds.insert(fd, Slot { file: f, cloexec }).map(|s| s.file);
        drop(g);
        if let Some(o) = &old {
            self.closed(&[o]);
        }
        Ok(old)
    }

    /// Removes `fd`.
    pub fn remove(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        let f = self
            .inner
            .lock()
            .fds
            .remove(&fd)
            .map(|s| s.file)
            .ok_or(Errno::EBADF)?;
        self.closed(&[&f]);
        Ok(f)
    }

    /// `close_range`: removes (or with `cloexec_only` marks) every fd in `first..=last`.
    pub fn close_range(&self, first: u32, last: u32, cloexec_only: bool) -> Vec<Arc<OpenFile>> {
        let mut g = self.inner.lock();
        let last = last.min(i32::MAX as u32) as i32;
        let first = first.min(i32::MAX as u32) as i32;
        if first > last {
            return Vec::new();
        }
        let keys: Vec<i32> = g.fds.range(first..=last).map(|(&k, _)| k).collect();
        let mut out = Vec::new();
        for k in keys {
            if cloexec_only {
                if let Some(s) = g.fds.get_mut(&k) {
                    s.cloexec = true;
                }
            } else if let Some(s) = g.fds.remove(&k) {
                out.push(s.file);
            }
        }
        drop(g);
        self.closed(&out.iter().collect::<Vec<_>>());
        out
    }

    /// The close-on-exec bit of `fd`.
    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        self.inner
            .lock()
            .fds
            .get(&fd)
            .map(|s| s.cloexec)
            .ok_or(Errno::EBADF)
    }

    /// Sets the close-on-exec bit of `fd`.
    pub fn set_cloexec(&self, fd: i32, on: bool) -> Result<(), Errno> {
        let mut g = self.inner.lock();
        let s = g.fds.get_mut(&fd).ok_or(Errno::EBADF)?;
        s.cloexec = on;
        Ok(())
    }

    /// A copy sharing the same files (for `fork` without `CLONE_FILES`).
    pub fn fork(&self) -> FdTable {
        let g = self.inner.lock();
        FdTable {
            inner: Mutex::new(FdInner {
                fds: g.fds.clone(),
                limit: g.limit,
            }),
            // POSIX locks are not inherited.
            posix_locks: Mutex::new(Vec::new()),
        }
    }

    /// Closes every close-on-exec descriptor (at `execve`), returning the files.
    pub fn close_on_exec(&self) -> Vec<Arc<OpenFile>> {
        let mut closed = Vec::new();
        self.inner.lock().fds.retain(|_, s| {
            if s.cloexec {
                closed.push(s.file.clone());
            }
            !s.cloexec
        });
        self.closed(&closed.iter().collect::<Vec<_>>());
        closed
    }

    /// Removes every descriptor (at exit), returning the files.
    pub fn clear(&self) -> Vec<Arc<OpenFile>> {
        let out: Vec<Arc<OpenFile>> = std::mem::take(&mut self.inner.lock().fds)
            .into_values()
            .map(|s| s.file)
            .collect();
        self.closed(&out.iter().collect::<Vec<_>>());
        out
    }

    /// All descriptors, in order (for `/proc/<pid>/fd`).
    pub fn fds(&self) -> Vec<(i32, Arc<OpenFile>)> {
        self.inner
            .lock()
            .fds
            .iter()
            .map(|(&k, s)| (k, s.file.clone()))
            .collect()
    }

    /// The descriptor limit.
    pub fn limit(&self) -> u32 {
        self.inner.lock().limit
    }

    /// Sets the descriptor limit (`RLIMIT_NOFILE`).
    pub fn set_limit(&self, limit: u32) {
        self.inner.lock().limit = limit.clamp(1, i32::MAX as u32);
    }
}

/// A task's filesystem context: root, working directory and umask.
#[derive(Debug)]
pub struct FsContext {
    root: Mutex<VfsPath>,
    cwd: Mutex<VfsPath>,
    umask: AtomicU32,
}

impl FsContext {
    /// A context with the given root and cwd and umask 022.
    pub fn new(root: VfsPath, cwd: VfsPath) -> FsContext {
        FsContext {
            root: Mutex::new(root),
            cwd: Mutex::new(cwd),
            umask: AtomicU32::new(0o022),
        }
    }

    /// The root directory.
    pub fn root(&self) -> VfsPath {
        self.root.lock().clone()
    }

    /// The working directory.
    pub fn cwd(&self) -> VfsPath {
        self.cwd.lock().clone()
    }

    /// Changes the working directory (the caller checked it is a searchable directory).
    pub fn set_cwd(&self, p: VfsPath) {
        *self.cwd.lock() = p;
    }

    /// Changes the root directory (`chroot`).
    pub fn set_root(&self, p: VfsPath) {
        *self.root.lock() = p;
    }

    /// The umask.
    pub fn umask(&self) -> u32 {
        self.umask.load(Ordering::Acquire)
    }

    /// Sets the umask, returning the old one.
    pub fn set_umask(&self, m: u32) -> u32 {
        self.umask.swap(m & 0o777, Ordering::AcqRel)
    }

    /// A copy (for `fork` without `CLONE_FS`).
    pub fn fork(&self) -> FsContext {
        FsContext {
            root: Mutex::new(self.root()),
            cwd: Mutex::new(self.cwd()),
            umask: AtomicU32::new(self.umask()),
        }
    }

    /// The working directory's path as seen from the root (`getcwd`).
    pub fn cwd_path(&self) -> Vec<u8> {
        self.cwd().path_from(Some(&self.root()))
    }
}
