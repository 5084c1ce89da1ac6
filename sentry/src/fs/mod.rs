//! The virtual filesystem of the Sentry and its filesystems.
//!
//! This module owns everything between a path or a file descriptor and the bytes of a file:
//!
//! - [`Inode`] and [`FileOps`]: the two traits a filesystem implements, one for the object
//!   on "disk" (lookup, create, stat, ...) and one for an open file description's I/O;
//! - `vfs`: dentries (names, parent links, child cache), mounts and the mount tree, the
//!   path walk ([`Vfs::resolve`]) and the namespace operations (mkdir, unlink, rename...);
//! - `file`: [`OpenFile`] (a file description), [`FdTable`] and [`FsContext`];
//! - the filesystems: `tmpfs`, `overlay`, `gofer` (the read-only lower served by the
//!   Gofer), `devfs` (with [`host_fd_file`] for the stdio host FDs), `proc` and
//!   `sysfs` (built on `synth`), and `pipe`;
//! - [`lock`]: advisory file locks (`fcntl` record locks, OFD locks, `flock`), kept per
//!   file in the [`Vfs`]'s [`lock::LockRegistry`].
//!
//! Permission checks use [`FsCred`] (the filesystem view of a task's credentials).
//!
//! # Example
//!
//! The sandbox tree without a Gofer (a bare tmpfs root with `/proc`, `/dev`, `/sys`,
//! `/tmp`), a file created and read back through file descriptions:
//!
//! ```
//! use std::sync::Arc;
//! use linux_abi::flags::open::*;
//! use sentry::fs::{Caller, FsCred, Vfs};
//!
//! let mf = Arc::new(platform::MemoryFile::new("doc", 64 << 20).unwrap());
//! let vfs = Vfs::new_sandbox(mf, None, Default::default()).unwrap();
//! let ctx = vfs.root_context(b"/tmp").unwrap();
//! let cred = FsCred::root();
//! let f = vfs.open(&ctx, &cred, b"notes", O_CREAT | O_RDWR, 0o644).unwrap();
//! let me = Caller { tgid: 1, tid: 1 };
//! f.write(&me, b"hello").unwrap();
//! let mut buf = [0u8; 5];
//! assert_eq!(f.pread(&me, &mut buf, 0).unwrap(), 5);
//! assert_eq!(&buf, b"hello");
//! assert_eq!(f.path(), b"/tmp/notes");
//! let null = vfs.open(&ctx, &cred, b"/dev/null", O_WRONLY, 0).unwrap();
//! assert_eq!(null.write(&me, b"discarded").unwrap(), 9);
//! ```

pub(crate) mod anon;
pub(crate) mod devfs;
pub(crate) mod devpts;
pub use devpts::DevptsOptions;
pub(crate) mod epoll;
pub(crate) mod eventfd;
pub(crate) mod file;
pub(crate) mod gofer;
pub(crate) mod inotify;
pub(crate) mod ldisc;
pub mod lock;
pub(crate) mod mqueue;
pub(crate) mod overlay;
pub(crate) mod pagecache;
pub(crate) mod pipe;
pub(crate) mod proc;
pub(crate) mod pty;
pub(crate) mod socket;
pub(crate) mod synth;
pub(crate) mod sysfs;
pub(crate) mod timerfd;
pub(crate) mod tmpfs;
pub(crate) mod tty;
pub(crate) mod vfs;
pub(crate) mod xattr;

#[cfg(test)]
mod vfs_tests;

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::types::{Stat, Timespec};

use crate::waiter::{Events, WaitQueue, events};

pub use devfs::host_fd_file;
pub use file::{FdTable, FsContext, OpenFile};
pub use proc::{ProcSource, prime_host_info};
pub use tty::{Terminal, Terminals};
pub use vfs::{Dentry, Mount, Vfs, VfsPath};

/// Longest path the walk accepts (`PATH_MAX`, including the NUL).
pub const PATH_MAX: usize = 4096;
/// Longest file name component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;
/// Most symlinks followed in one walk (`MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;

/// Access check bits (`R_OK`, `W_OK`, `X_OK`).
pub mod access {
    /// Read permission.
    pub const R_OK: u32 = 4;
    /// Write permission.
    pub const W_OK: u32 = 2;
    /// Execute or search permission.
    pub const X_OK: u32 = 1;
}

/// The task on whose behalf a file operation runs, as the file system sees it: its
/// thread-group id and thread id. `/proc/self` resolves with it and a signalfd reads the
/// caller's signals; the Sentry's own operations (overlay copy-up, the loader) use
/// [`Caller::KERNEL`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// Thread-group id (the process id).
    pub tgid: i32,
    /// Thread id.
    pub tid: i32,
}

impl Caller {
    /// The Sentry itself (no task).
    pub const KERNEL: Caller = Caller { tgid: 0, tid: 0 };
}

/// The credentials used for filesystem permission checks (fsuid, fsgid, groups and the
/// effective capabilities), and the calling task for the few files whose view depends on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsCred {
    /// Filesystem user id (the effective uid).
    pub uid: u32,
    /// Filesystem group id (the effective gid).
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capabilities (bit `1 << CAP_*`).
    pub caps: u64,
    /// The task the operation runs for.
    pub caller: Caller,
}

/// The capabilities the filesystem checks consult (numbers as in `capabilities(7)`).
pub mod cap {
    /// `CAP_CHOWN`.
    pub const CHOWN: u32 = 0;
    /// `CAP_DAC_OVERRIDE`.
    pub const DAC_OVERRIDE: u32 = 1;
    /// `CAP_DAC_READ_SEARCH`.
    pub const DAC_READ_SEARCH: u32 = 2;
    /// `CAP_FOWNER`.
    pub const FOWNER: u32 = 3;
    /// `CAP_FSETID`.
    pub const FSETID: u32 = 4;
    /// `CAP_MKNOD`.
    pub const MKNOD: u32 = 27;
    /// `CAP_SYS_ADMIN` (the `trusted.*` extended attributes).
    pub const SYS_ADMIN: u32 = 21;
    /// Every capability up to `CAP_CHECKPOINT_RESTORE`.
    pub const ALL: u64 = (1 << 41) - 1;
}

impl Default for FsCred {
    fn default() -> FsCred {
        FsCred::root()
    }
}

impl FsCred {
    /// The root credentials, with every capability.
    pub fn root() -> FsCred {
        FsCred {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            caps: cap::ALL,
            caller: Caller::KERNEL,
        }
    }

    /// Credentials of `uid`/`gid` without capabilities.
    pub fn user(uid: u32, gid: u32, groups: Vec<u32>) -> FsCred {
        FsCred {
            uid,
            gid,
            groups,
            caps: 0,
            caller: Caller::KERNEL,
        }
    }

    /// Whether capability `c` (a [`cap`] number) is effective.
    pub fn has_cap(&self, c: u32) -> bool {
        c < 64 && self.caps & (1 << c) != 0
    }

    /// Whether the caller is in group `gid`.
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// Checks `mask` (`R_OK|W_OK|X_OK`) against a file's mode and owner as Linux's
    /// `generic_permission` does: the mode bits first, then `CAP_DAC_OVERRIDE` (everything
    /// but execute of a file without any execute bit) and `CAP_DAC_READ_SEARCH` (reading
    /// files, reading and searching directories).
    pub fn check(&self, st: &Stat, mask: u32) -> Result<(), Errno> {
        let mode = st.st_mode;
        let bits = if self.uid == st.st_uid {
            (mode >> 6) & 7
        } else if self.in_group(st.st_gid) {
            (mode >> 3) & 7
        } else {
            mode & 7
        };
        if bits & mask == mask {
            return Ok(());
        }
        let is_dir = mode & S_IFMT == S_IFDIR;
        if self.has_cap(cap::DAC_OVERRIDE)
            && (is_dir || mask & access::X_OK == 0 || mode & 0o111 != 0)
        {
            return Ok(());
        }
        let read_search = if is_dir {
            mask & access::W_OK == 0
        } else {
            mask == access::R_OK
        };
        if read_search && self.has_cap(cap::DAC_READ_SEARCH) {
            return Ok(());
        }
        Err(Errno::EACCES)
    }

    /// Whether the caller owns the file or has `CAP_FOWNER`, as chmod and utimes need.
    pub fn owns(&self, st: &Stat) -> bool {
        self.uid == st.st_uid || self.has_cap(cap::FOWNER)
    }
}

/// The type of a file, from the `S_IFMT` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    /// Regular file.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Socket.
    Socket,
}

impl FileType {
    /// The type of a `st_mode`.
    pub fn from_mode(mode: u32) -> FileType {
        match mode & S_IFMT {
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            _ => FileType::Regular,
        }
    }

    /// The `S_IFMT` bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => S_IFREG,
            FileType::Directory => S_IFDIR,
            FileType::Symlink => S_IFLNK,
            FileType::CharDevice => S_IFCHR,
            FileType::BlockDevice => S_IFBLK,
            FileType::Fifo => S_IFIFO,
            FileType::Socket => S_IFSOCK,
        }
    }

    /// The `d_type` of a directory entry.
    pub fn dirent_type(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }
}

/// One directory entry as listed by [`Inode::readdir`] (without `.` and `..`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name.
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u64,
    /// File type.
    pub kind: FileType,
}

/// What [`Inode::create`] makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewNode {
    /// A regular file with these permission bits.
    File {
        /// Permission bits (umask applied).
        mode: u32,
    },
    /// A directory.
    Dir {
        /// Permission bits (umask applied).
        mode: u32,
    },
    /// A symbolic link to `target`.
    Symlink {
        /// The link text.
        target: Vec<u8>,
    },
    /// A device node, FIFO or socket (type bits included in `mode`).
    Node {
        /// Type and permission bits.
        mode: u32,
        /// Device number.
        rdev: u64,
    },
}

/// Attribute changes for [`Inode::setattr`]; `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (the low 12 bits).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size.
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<Timespec>,
    /// New modification time.
    pub mtime: Option<Timespec>,
}

/// `struct statfs` fields a filesystem reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStat {
    /// Filesystem magic (`TMPFS_MAGIC`, `PROC_SUPER_MAGIC`...).
    pub magic: u64,
    /// Block size.
    pub bsize: u64,
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Longest name.
    pub namelen: u64,
}

/// Filesystem magic numbers.
pub mod magic {
    /// tmpfs.
    pub const TMPFS: u64 = 0x0102_1994;
    /// procfs.
    pub const PROC: u64 = 0x9fa0;
    /// sysfs.
    pub const SYSFS: u64 = 0x6265_6572;
    /// overlayfs.
    pub const OVERLAY: u64 = 0x794c_7630;
    /// Gofer-backed (reported like 9p, as gVisor does).
    pub const V9FS: u64 = 0x0102_1997;
    /// devpts and anonymous files.
    pub const ANON: u64 = 0x0904_1934;
    /// pipefs.
    pub const PIPEFS: u64 = 0x5049_5045;
}

impl FsStat {
    /// A plausible, empty-ish in-memory filesystem.
    pub fn memory(magic: u64) -> FsStat {
        FsStat {
            magic,
            bsize: 4096,
            blocks: 1 << 20,
            bfree: 1 << 20,
            bavail: 1 << 20,
            files: 1 << 20,
            ffree: 1 << 20,
            namelen: NAME_MAX as u64,
        }
    }
}

/// Memory accessor handed to [`FileOps::ioctl`], implemented by the syscall layer over the
/// task's memory manager (every bad address gives `EFAULT`).
pub trait UserMem {
    /// Copies application memory at `addr` into `buf`.
    fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies `buf` to application memory at `addr`.
    fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno>;
}

/// A file on some filesystem (the object a dentry names).
///
/// Directory methods default to `ENOTDIR`; mutations default to `EROFS` (override them for a
/// writable filesystem). Names passed in are single components, never `.`, `..` or empty,
/// and never contain `/`.
pub trait Inode: Send + Sync + fmt::Debug + Any {
    /// The attributes.
    fn stat(&self) -> Result<Stat, Errno>;

    /// Finds `name` in this directory.
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Lists this directory (without `.` and `..`).
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(Errno::ENOTDIR)
    }

    /// Creates `name` in this directory; `EEXIST` if it exists.
    fn create(
        &self,
        _name: &[u8],
        _node: NewNode,
        _cred: &FsCred,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(self.not_writable())
    }

    /// Makes `name` in this directory a new hard link to `target`.
    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(self.not_writable())
    }

    /// Removes `name` (a directory, which must be empty, when `dir`; else a non-directory).
    fn unlink(&self, _name: &[u8], _dir: bool) -> Result<(), Errno> {
        Err(self.not_writable())
    }

    /// Moves `old` in this directory to `new` in `new_dir` (same filesystem), replacing a
    /// compatible target; `flags` are `RENAME_NOREPLACE`/`RENAME_EXCHANGE`.
    fn rename(
        &self,
        _old: &[u8],
        _new_dir: &Arc<dyn Inode>,
        _new: &[u8],
        _flags: u32,
    ) -> Result<(), Errno> {
        Err(self.not_writable())
    }

    /// The target of a symbolic link, as `caller` sees it (`/proc/self` depends on it).
    fn readlink(&self, _caller: &Caller) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    /// For "magic" links (`/proc/<pid>/fd/N`, `exe`, `cwd`): the object they point at,
    /// which the walk uses instead of the link text.
    fn magic_link(&self) -> Option<Result<VfsPath, Errno>> {
        None
    }

    /// Changes attributes.
    fn setattr(&self, _attr: &SetAttr) -> Result<(), Errno> {
        Err(self.not_writable())
    }

    /// The value of the extended attribute `name` (permissions already checked).
    /// File systems that keep none: `EOPNOTSUPP`.
    fn getxattr(&self, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Sets the extended attribute `name` with `setxattr` flags.
    fn setxattr(&self, _name: &[u8], _value: &[u8], _flags: u32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// The names of the extended attributes (none where none are kept).
    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(Vec::new())
    }

    /// Removes the extended attribute `name`.
    fn removexattr(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    /// Opens the file for I/O with the given `open(2)` flags.
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(Arc::new(NoIo))
    }

    /// Opens the file for `caller`: a device whose meaning depends on who opens it
    /// (`/dev/tty`, the caller's controlling terminal) overrides this; the rest open with
    /// [`Inode::open`]. The open system calls come here.
    fn open_by(&self, _caller: &Caller, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.open(flags)
    }

    /// Filesystem statistics.
    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(magic::TMPFS))
    }

    /// A hint that a walk is about to go through `names` below this directory, one step
    /// at a time (plain components: never empty, `.` or `..`). A filesystem whose
    /// lookups are round trips (the Gofer's) may resolve them all in one and keep the
    /// result, so that the walk's lookups find them; nothing else may change.
    fn prefetch(&self, _names: &[&[u8]]) {}

    /// Whether dentries of this directory's children may be cached by the VFS (false for
    /// filesystems whose contents change on their own, like procfs).
    fn cacheable(&self) -> bool {
        true
    }

    /// The error a mutation gets on this read-only object.
    fn not_writable(&self) -> Errno {
        Errno::EROFS
    }

    /// Downcasting support.
    fn as_any(&self) -> &dyn Any;
}

/// The I/O half of an open file, made by [`Inode::open`].
///
/// Offsets are managed by [`OpenFile`]; a `stream` file ignores them.
pub trait FileOps: Send + Sync + fmt::Debug {
    /// Reads at `off`.
    fn read_at(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    /// Reads at `off` for `caller`. A file whose contents depend on who reads (a
    /// signalfd reads the caller's signals) overrides this; the rest read with
    /// [`FileOps::read_at`]. The read system calls come here.
    fn read_by(&self, _caller: &Caller, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        self.read_at(buf, off)
    }

    /// Writes at `off`.
    fn write_at(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    /// Writes at `off` for `caller` (a procfs file checks the writer's capabilities);
    /// the rest write with [`FileOps::write_at`]. The write system calls come here.
    fn write_by(&self, _caller: &Caller, buf: &[u8], off: u64) -> Result<usize, Errno> {
        self.write_at(buf, off)
    }

    /// Whether the file is a stream (pipe, tty...): no offsets, `ESPIPE` on seek.
    fn stream(&self) -> bool {
        false
    }

    /// For streams that keep their own offset (host files): `lseek` on it.
    fn stream_seek(&self, _off: i64, _whence: u32) -> Result<u64, Errno> {
        Err(Errno::ESPIPE)
    }

    /// Device-specific control.
    fn ioctl(&self, _cmd: u32, _arg: u64, _mem: &dyn UserMem) -> Result<u64, Errno> {
        Err(Errno::ENOTTY)
    }

    /// Bytes ready to read (`FIONREAD`), when the file knows.
    fn readable(&self) -> Option<u64> {
        None
    }

    /// A descriptor of this file was closed by `caller` (`close`, `dup2` over it,
    /// `close_range`, close-on-exec, the exit of the table's last user; Linux's
    /// `f_op->flush`): a message queue drops the caller's `mq_notify` registration.
    fn flush(&self, _caller: &Caller) {}

    /// Lines of `/proc/<pid>/fdinfo/<fd>` after the common ones (an inotify descriptor
    /// lists its watches).
    fn fdinfo(&self) -> String {
        String::new()
    }

    /// Flushes to stable storage.
    fn fsync(&self) -> Result<(), Errno> {
        Ok(())
    }

    /// Sets the status flags `O_NONBLOCK`/`O_APPEND` (host-backed files forward them).
    fn set_status_flags(&self, _flags: u32) -> Result<(), Errno> {
        Ok(())
    }

    /// For files with pages of their own (memory-backed files, the Gofer's page cache):
    /// the page holding file offset `off` (allocating it, and growing nothing), so `mm`
    /// can map it `MAP_SHARED` (see `MappableFile::shared_page`).
    fn shared_page(&self, _off: u64) -> Option<Result<Arc<crate::mm::Frame>, Errno>> {
        None
    }

    /// Writes the file's own pages of `[off, off + len)` to its backing store (see
    /// `MappableFile::writeback_shared`).
    fn writeback_shared(&self, _off: u64, _len: u64) -> Result<(), Errno> {
        Ok(())
    }

    /// The host file descriptor behind this file, if any (for `mm` to read pages).
    fn host_fd(&self) -> Option<std::os::fd::RawFd> {
        None
    }

    /// The terminal this file is, for the job-control ioctls (`syscalls::tty`).
    fn terminal(&self) -> Option<Arc<tty::Terminal>> {
        None
    }

    /// The readiness events (`poll`) among `mask` (plus `POLLERR`/`POLLHUP`, always
    /// reported). The default, for files that never block (regular files, directories,
    /// `/dev/null`), is readable and writable.
    fn readiness(&self, mask: Events) -> Events {
        mask & (events::POLLIN | events::POLLRDNORM | events::POLLOUT | events::POLLWRNORM)
    }

    /// The readiness `caller` sees (`poll`, `epoll`); see [`FileOps::read_by`].
    fn readiness_for(&self, _caller: &Caller, mask: Events) -> Events {
        self.readiness(mask)
    }

    /// The queue notified when the readiness changes; `None` for files whose readiness
    /// never changes or that cannot tell (see [`FileOps::needs_polling`]).
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }

    /// Whether waiting on this file needs periodic re-checks of [`FileOps::readiness`]
    /// because it has no wait queue but can change readiness (host descriptors).
    fn needs_polling(&self) -> bool {
        false
    }

    /// Downcasting support for `FileOps` implementations that need it (sockets, epoll).
    fn as_any(&self) -> Option<&dyn Any> {
        None
    }
}

/// Linux's `MAJOR()` of a `dev_t` as `new_encode_dev` lays it out (`st_dev`).
pub(crate) fn dev_major(dev: u64) -> u64 {
    ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff)
}

/// Linux's `MINOR()` of a `dev_t` (see [`dev_major`]).
pub(crate) fn dev_minor(dev: u64) -> u64 {
    (dev & 0xff) | ((dev >> 12) & !0xff)
}

/// File operations of a file with no data (directories, `O_PATH` files).
#[derive(Debug)]
pub struct NoIo;

impl FileOps for NoIo {
    fn read_at(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
    fn write_at(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EISDIR)
    }
}

/// A source of unique device numbers for filesystem instances.
pub fn new_dev() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x20);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A source of unique inode numbers for in-memory filesystems.
pub fn new_ino() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1 << 32);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The current wall-clock time as a `Timespec`.
pub fn now() -> Timespec {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

/// Builds a `Stat` with the common fields filled.
pub fn make_stat(dev: u64, ino: u64, mode: u32, nlink: u64, uid: u32, gid: u32, size: u64) -> Stat {
    let t = now();
    Stat {
        st_dev: dev,
        st_ino: ino,
        st_nlink: nlink,
        st_mode: mode,
        st_uid: uid,
        st_gid: gid,
        st_size: size as i64,
        st_blksize: 4096,
        st_blocks: size.div_ceil(512) as i64,
        st_atime: t,
        st_mtime: t,
        st_ctime: t,
        ..Stat::default()
    }
}

/// Owner, mode (file type included) and times of an in-memory node whose size is not
/// its own to change (devpts nodes, message queues), as `chmod`, `chown` and `utimes`
/// change them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NodeMeta {
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) atime: Timespec,
    pub(crate) mtime: Timespec,
    pub(crate) ctime: Timespec,
}

impl NodeMeta {
    /// A node made now.
    pub(crate) fn new(mode: u32, uid: u32, gid: u32) -> NodeMeta {
        let t = now();
        NodeMeta {
            mode,
            uid,
            gid,
            atime: t,
            mtime: t,
            ctime: t,
        }
    }

    /// Its `stat`, with the identity, link count and size the caller knows.
    pub(crate) fn stat(&self, dev: u64, ino: u64, nlink: u64, size: u64) -> Stat {
        let mut st = make_stat(dev, ino, self.mode, nlink, self.uid, self.gid, size);
        st.st_atime = self.atime;
        st.st_mtime = self.mtime;
        st.st_ctime = self.ctime;
        st
    }

    /// `setattr`: permission bits (the type stays), owner and times; a size is `EINVAL`.
    pub(crate) fn apply(&mut self, a: &SetAttr) -> Result<(), Errno> {
        if a.size.is_some() {
            return Err(Errno::EINVAL);
        }
        if let Some(m) = a.mode {
            self.mode = (self.mode & S_IFMT) | (m & 0o7777);
        }
        if let Some(u) = a.uid {
            self.uid = u;
        }
        if let Some(g) = a.gid {
            self.gid = g;
        }
        if let Some(t) = a.atime {
            self.atime = t;
        }
        if let Some(t) = a.mtime {
            self.mtime = t;
        }
        self.ctime = now();
        Ok(())
    }
}

/// Checks one path component: `ENAMETOOLONG` past `NAME_MAX`.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

/// Whether an inode is a directory.
pub fn is_dir(inode: &dyn Inode) -> bool {
    inode
        .stat()
        .map(|s| s.st_mode & S_IFMT == S_IFDIR)
        .unwrap_or(false)
}

/// The file type of an inode.
pub fn file_type(inode: &dyn Inode) -> Result<FileType, Errno> {
    Ok(FileType::from_mode(inode.stat()?.st_mode))
}

/// A check a blocking operation makes: true when the calling task must stop waiting.
/// Kept for compatibility; see [`crate::waiter::SignalPendingCheck`].
pub type InterruptCheck = crate::waiter::SignalPendingCheck;

/// Installs the interrupt check of the calling thread; same as
/// [`crate::waiter::set_signal_pending_check`].
pub fn set_interrupt_check(check: InterruptCheck) {
    crate::waiter::set_signal_pending_check(check);
}

/// Whether the calling thread's task must stop waiting ([`crate::waiter::signal_pending`]).
pub fn interrupted() -> bool {
    crate::waiter::signal_pending()
}

/// Whether two inode handles are the same object.
pub fn same_inode(a: &Arc<dyn Inode>, b: &Arc<dyn Inode>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_bits_owner_group_other_and_root() {
        let st = make_stat(1, 1, S_IFREG | 0o640, 1, 1000, 100, 0);
        let owner = FsCred::user(1000, 5, vec![]);
        let group = FsCred::user(2000, 100, vec![]);
        let other = FsCred::user(3000, 5, vec![7]);
        assert!(owner.check(&st, access::R_OK | access::W_OK).is_ok());
        assert!(group.check(&st, access::R_OK).is_ok());
        assert_eq!(group.check(&st, access::W_OK), Err(Errno::EACCES));
        assert_eq!(other.check(&st, access::R_OK), Err(Errno::EACCES));
        assert!(FsCred::root().check(&st, access::W_OK).is_ok());
        assert_eq!(FsCred::root().check(&st, access::X_OK), Err(Errno::EACCES));
        let dir = make_stat(1, 1, S_IFDIR | 0o700, 2, 1000, 100, 0);
        assert!(FsCred::root().check(&dir, access::X_OK).is_ok());
        // Uid 0 without the DAC capabilities is held to the mode bits.
        let mut capless = FsCred::root();
        capless.caps = 0;
        assert_eq!(capless.check(&st, access::R_OK), Err(Errno::EACCES));
        assert!(!capless.owns(&st));
        capless.caps = 1 << cap::DAC_READ_SEARCH;
        assert!(capless.check(&st, access::R_OK).is_ok());
        assert_eq!(capless.check(&st, access::W_OK), Err(Errno::EACCES));
        assert!(capless.check(&dir, access::X_OK | access::R_OK).is_ok());
    }
}
