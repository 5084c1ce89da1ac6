//! File system calls: open/close, read/write families, stat families, directory and
//! namespace operations, attributes, descriptors (`dup`, `fcntl`, `ioctl`), `pipe2`,
//! `statfs` and the copy calls (`sendfile`, `copy_file_range`, `splice`).
//!
//! Each handler decodes its pointers through the task's memory manager, resolves paths
//! with [`crate::fs::Vfs`] relative to the task's [`FsContext`] (or a dirfd), and works
//! on [`OpenFile`]s from the task's [`FdTable`].

use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::at::*;
use linux_abi::flags::mode::*;
use linux_abi::flags::open::*;
use linux_abi::types::{Stat, Timespec, Timeval};

use super::SyscallEntry;
use crate::fs::devfs::ioctls;
use crate::fs::vfs::{Follow, WalkOpts};
use crate::fs::{
    FdTable, FileType, FsContext, FsCred, OpenFile, PATH_MAX, SetAttr, UserMem, Vfs, VfsPath,
    access, pipe,
};
use crate::kernel::Task;
use crate::mm::MemoryManager;

/// The file system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_READ => read(Fd, Ptr, Uint) = sys_read;
    SYS_WRITE => write(Fd, Ptr, Uint) = sys_write;
    SYS_OPEN => open(Str, OpenFlags, Oct) -> Fd = sys_open;
    SYS_OPENAT => openat(Fd, Str, OpenFlags, Oct) -> Fd = sys_openat;
    SYS_CREAT => creat(Str, Oct) -> Fd = sys_creat;
    SYS_OPENAT2 => openat2(Fd, Str, Ptr, Uint) -> Fd = sys_openat2;
    SYS_CLOSE => close(Fd) = sys_close;
    SYS_CLOSE_RANGE => close_range(Uint, Uint, Hex) = sys_close_range;
    SYS_READV => readv(Fd, Ptr, Uint) = sys_readv;
    SYS_WRITEV => writev(Fd, Ptr, Uint) = sys_writev;
    SYS_PREAD64 => pread64(Fd, Ptr, Uint, Int) = sys_pread64;
    SYS_PWRITE64 => pwrite64(Fd, Ptr, Uint, Int) = sys_pwrite64;
    SYS_PREADV => preadv(Fd, Ptr, Uint, Int) = sys_preadv;
    SYS_PWRITEV => pwritev(Fd, Ptr, Uint, Int) = sys_pwritev;
    SYS_PREADV2 => preadv2(Fd, Ptr, Uint, Int, Int, Hex) = sys_preadv2;
    SYS_PWRITEV2 => pwritev2(Fd, Ptr, Uint, Int, Int, Hex) = sys_pwritev2;
    SYS_LSEEK => lseek(Fd, Int, Int) = sys_lseek;
    SYS_STAT => stat(Str, Ptr) = sys_stat;
    SYS_LSTAT => lstat(Str, Ptr) = sys_lstat;
    SYS_FSTAT => fstat(Fd, Ptr) = sys_fstat;
    SYS_NEWFSTATAT => newfstatat(Fd, Str, Ptr, Hex) = sys_newfstatat;
    SYS_STATX => statx(Fd, Str, Hex, Hex, Ptr) = sys_statx;
    SYS_ACCESS => access(Str, Oct) = sys_access;
    SYS_FACCESSAT => faccessat(Fd, Str, Oct) = sys_faccessat;
    SYS_FACCESSAT2 => faccessat2(Fd, Str, Oct, Hex) = sys_faccessat2;
    SYS_GETDENTS => getdents(Fd, Ptr, Uint) = sys_getdents;
    SYS_GETDENTS64 => getdents64(Fd, Ptr, Uint) = sys_getdents64;
    SYS_MKDIR => mkdir(Str, Oct) = sys_mkdir;
    SYS_MKDIRAT => mkdirat(Fd, Str, Oct) = sys_mkdirat;
    SYS_MKNOD => mknod(Str, Oct, Hex) = sys_mknod;
    SYS_MKNODAT => mknodat(Fd, Str, Oct, Hex) = sys_mknodat;
    SYS_RMDIR => rmdir(Str) = sys_rmdir;
    SYS_UNLINK => unlink(Str) = sys_unlink;
    SYS_UNLINKAT => unlinkat(Fd, Str, Hex) = sys_unlinkat;
    SYS_RENAME => rename(Str, Str) = sys_rename;
    SYS_RENAMEAT => renameat(Fd, Str, Fd, Str) = sys_renameat;
    SYS_RENAMEAT2 => renameat2(Fd, Str, Fd, Str, Hex) = sys_renameat2;
    SYS_LINK => link(Str, Str) = sys_link;
    SYS_LINKAT => linkat(Fd, Str, Fd, Str, Hex) = sys_linkat;
    SYS_SYMLINK => symlink(Str, Str) = sys_symlink;
    SYS_SYMLINKAT => symlinkat(Str, Fd, Str) = sys_symlinkat;
    SYS_READLINK => readlink(Str, Ptr, Uint) = sys_readlink;
    SYS_READLINKAT => readlinkat(Fd, Str, Ptr, Uint) = sys_readlinkat;
    SYS_CHMOD => chmod(Str, Oct) = sys_chmod;
    SYS_FCHMOD => fchmod(Fd, Oct) = sys_fchmod;
    SYS_FCHMODAT => fchmodat(Fd, Str, Oct) = sys_fchmodat;
    SYS_CHOWN => chown(Str, Int, Int) = sys_chown;
    SYS_LCHOWN => lchown(Str, Int, Int) = sys_lchown;
    SYS_FCHOWN => fchown(Fd, Int, Int) = sys_fchown;
    SYS_FCHOWNAT => fchownat(Fd, Str, Int, Int, Hex) = sys_fchownat;
    SYS_UTIME => utime(Str, Ptr) = sys_utime;
    SYS_UTIMES => utimes(Str, Ptr) = sys_utimes;
    SYS_FUTIMESAT => futimesat(Fd, Str, Ptr) = sys_futimesat;
    SYS_UTIMENSAT => utimensat(Fd, Str, Ptr, Hex) = sys_utimensat;
    SYS_TRUNCATE => truncate(Str, Int) = sys_truncate;
    SYS_FTRUNCATE => ftruncate(Fd, Int) = sys_ftruncate;
    SYS_FALLOCATE => fallocate(Fd, Hex, Int, Int) = sys_fallocate;
    SYS_FSYNC => fsync(Fd) = sys_fsync;
    SYS_FDATASYNC => fdatasync(Fd) = sys_fsync;
    SYS_SYNC => sync() = sys_sync;
    SYS_SYNCFS => syncfs(Fd) = sys_syncfs;
    SYS_SYNC_FILE_RANGE => sync_file_range(Fd, Int, Int, Hex) = sys_sync_file_range;
    SYS_CHDIR => chdir(Str) = sys_chdir;
    SYS_FCHDIR => fchdir(Fd) = sys_fchdir;
    SYS_CHROOT => chroot(Str) = sys_chroot;
    SYS_GETCWD => getcwd(Ptr, Uint) = sys_getcwd;
    SYS_UMASK => umask(Oct) -> Oct = sys_umask;
    SYS_DUP => dup(Fd) -> Fd = sys_dup;
    SYS_DUP2 => dup2(Fd, Fd) -> Fd = sys_dup2;
    SYS_DUP3 => dup3(Fd, Fd, OpenFlags) -> Fd = sys_dup3;
    SYS_FCNTL => fcntl(Fd, Int, Hex) = sys_fcntl;
    SYS_IOCTL => ioctl(Fd, Hex, Hex) = sys_ioctl;
    SYS_PIPE => pipe(Ptr) = sys_pipe;
    SYS_PIPE2 => pipe2(Ptr, OpenFlags) = sys_pipe2;
    SYS_STATFS => statfs(Str, Ptr) = sys_statfs;
    SYS_FSTATFS => fstatfs(Fd, Ptr) = sys_fstatfs;
    SYS_SENDFILE => sendfile(Fd, Fd, Ptr, Uint) = sys_sendfile;
    SYS_COPY_FILE_RANGE => copy_file_range(Fd, Ptr, Fd, Ptr, Uint, Hex) = sys_copy_file_range;
    SYS_SPLICE => splice(Fd, Ptr, Fd, Ptr, Uint, Hex) = sys_splice;
    SYS_READAHEAD => readahead(Fd, Int, Uint) = sys_readahead;
    SYS_FADVISE64 => fadvise64(Fd, Int, Int, Int) = sys_fadvise64;
    SYS_FLOCK => flock(Fd, Int) = sys_flock;
    SYS_MEMFD_CREATE => memfd_create(Str, Hex) -> Fd = sys_memfd_create;
    SYS_GETXATTR => getxattr(Str, Str, Ptr, Uint) = sys_getxattr;
    SYS_LGETXATTR => lgetxattr(Str, Str, Ptr, Uint) = sys_lgetxattr;
    SYS_FGETXATTR => fgetxattr(Fd, Str, Ptr, Uint) = sys_fgetxattr;
    SYS_LISTXATTR => listxattr(Str, Ptr, Uint) = sys_listxattr;
    SYS_LLISTXATTR => llistxattr(Str, Ptr, Uint) = sys_llistxattr;
    SYS_FLISTXATTR => flistxattr(Fd, Ptr, Uint) = sys_flistxattr;
    SYS_SETXATTR => setxattr(Str, Str, Ptr, Uint, Hex) = sys_setxattr;
    SYS_LSETXATTR => lsetxattr(Str, Str, Ptr, Uint, Hex) = sys_lsetxattr;
    SYS_FSETXATTR => fsetxattr(Fd, Str, Ptr, Uint, Hex) = sys_fsetxattr;
    SYS_REMOVEXATTR => removexattr(Str, Str) = sys_removexattr;
    SYS_LREMOVEXATTR => lremovexattr(Str, Str) = sys_lremovexattr;
    SYS_FREMOVEXATTR => fremovexattr(Fd, Str) = sys_fremovexattr;
];

// ---- Adapters to the task (the only places that name Task internals). ----

fn fd_table(t: &Task) -> Arc<FdTable> {
    t.fd_table()
}

fn fs_context(t: &Task) -> Arc<FsContext> {
    t.fs_context()
}

fn vfs(t: &Task) -> Arc<Vfs> {
    t.kernel().vfs().clone()
}

/// The filesystem credentials of `t` (fsuid, fsgid, groups).
pub fn fs_cred(t: &Task) -> FsCred {
    let c = t.creds();
    FsCred {
        uid: c.fsuid,
        gid: c.fsgid,
        groups: c.groups,
    }
}

/// The real-id credentials `access(2)` checks with.
fn real_cred(t: &Task) -> FsCred {
    let c = t.creds();
    FsCred {
        uid: c.uid,
        gid: c.gid,
        groups: c.groups,
    }
}

// ---- Helpers. ----

/// Largest count one read or write moves (`MAX_RW_COUNT`).
const MAX_RW: u64 = 0x7fff_f000;
/// Bytes moved through the Sentry per step.
const CHUNK: usize = 1 << 20;

/// `UserMem` over a memory manager, for `ioctl`.
struct Mem<'a>(&'a MemoryManager);

impl UserMem for Mem<'_> {
    fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.0.copy_in(addr, buf)
    }
    fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), Errno> {
        self.0.copy_out(addr, buf)
    }
}

/// Walk state for one call: the caller's root, cwd and credentials.
struct Walk {
    vfs: Arc<Vfs>,
    root: VfsPath,
    cwd: VfsPath,
    cred: FsCred,
}

fn walk(t: &Task) -> Walk {
    crate::fs::proc::set_current(t.tgid(), t.tid());
    let ctx = fs_context(t);
    Walk {
        vfs: vfs(t),
        root: ctx.root(),
        cwd: ctx.cwd(),
        cred: fs_cred(t),
    }
}

pub(crate) fn read_path(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    t.mm().read_c_string(addr, PATH_MAX)
}

impl Walk {
    /// The directory a relative path starts from.
    fn start(&self, t: &Task, dirfd: i32, path: &[u8]) -> Result<VfsPath, Errno> {
        if path.first() == Some(&b'/') || dirfd == AT_FDCWD {
            return Ok(self.cwd.clone());
        }
        let f = fd_table(t).get(dirfd)?;
        let p = f.vfs_path().clone();
        if p.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(p)
    }

    /// Resolves `path` at `dirfd` (`AT_EMPTY_PATH` gives the dirfd's own file).
    fn resolve(&self, t: &Task, dirfd: i32, path: &[u8], flags: u32) -> Result<VfsPath, Errno> {
        if path.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return Err(Errno::ENOENT);
            }
            if dirfd == AT_FDCWD {
                return Ok(self.cwd.clone());
            }
            return Ok(fd_table(t).get(dirfd)?.vfs_path().clone());
        }
        let start = self.start(t, dirfd, path)?;
        let follow = if flags & AT_SYMLINK_NOFOLLOW != 0 {
            Follow::No
        } else {
            Follow::Yes
        };
        self.vfs
            .resolve(&self.root, &start, path, follow, &self.cred)
    }
}

pub(crate) fn install(t: &Task, f: Arc<OpenFile>, cloexec: bool) -> Result<u64, Errno> {
    Ok(fd_table(t).insert(f, cloexec)? as u64)
}

// ---- Socket files (for the socket layer). ----

/// `bind` of a Unix socket to a path: makes the socket inode (`EADDRINUSE` if the name
/// exists) and returns its (device, inode) key.
pub(crate) fn make_socket_node(t: &Task, path: &[u8]) -> Result<crate::fs::socket::Key, Errno> {
    let w = walk(t);
    let umask = fs_context(t).umask();
    match w.vfs.mknod(
        &w.root,
        &w.cwd,
        path,
        S_IFSOCK | (0o777 & !umask),
        0,
        &w.cred,
    ) {
        Err(Errno::EEXIST) => return Err(Errno::EADDRINUSE),
        r => r?,
    }
    let p = w.vfs.resolve(&w.root, &w.cwd, path, Follow::No, &w.cred)?;
    let st = p.stat()?;
    Ok(crate::fs::socket::Key::Inode(st.st_dev, st.st_ino))
}

/// `connect`/`sendto` to a Unix socket path: the key of the socket inode it names
/// (`ECONNREFUSED` if it is not a socket, `EACCES` without write permission).
pub(crate) fn socket_key_at(t: &Task, path: &[u8]) -> Result<crate::fs::socket::Key, Errno> {
    let w = walk(t);
    let p = w.vfs.resolve(&w.root, &w.cwd, path, Follow::Yes, &w.cred)?;
    let st = p.stat()?;
    if st.st_mode & S_IFMT != S_IFSOCK {
        return Err(Errno::ECONNREFUSED);
    }
    w.cred.check(&st, access::W_OK)?;
    Ok(crate::fs::socket::Key::Inode(st.st_dev, st.st_ino))
}

// ---- open / close. ----

/// `openat(2)`.
pub fn sys_openat(t: &Task, dirfd: i32, path: u64, flags: u32, mode: u32) -> Result<u64, Errno> {
    let p = read_path(t, path)?;
    let w = walk(t);
    if flags & O_TMPFILE == O_TMPFILE {
        let start = w.start(t, dirfd, &p)?;
        let umask = fs_context(t).umask();
        let f = w
            .vfs
            .open_tmpfile(&w.root, &start, &p, flags, mode & 0o7777 & !umask, &w.cred)?;
        return install(t, f, flags & O_CLOEXEC != 0);
    }
    let start = if p.is_empty() {
        return Err(Errno::ENOENT);
    } else {
        w.start(t, dirfd, &p)?
    };
    let umask = fs_context(t).umask();
    let f = w
        .vfs
        .open_at(&w.root, &start, &p, flags, mode & 0o7777 & !umask, &w.cred)?;
    install(t, f, flags & O_CLOEXEC != 0)
}

/// `openat2(2)`: `struct open_how` with strict flag checks and the `RESOLVE_*`
/// restrictions (`RESOLVE_CACHED` always answers `EAGAIN`: nothing is "cached only").
pub fn sys_openat2(t: &Task, dirfd: i32, path: u64, how: u64, size: u64) -> Result<u64, Errno> {
    const RESOLVE_NO_XDEV: u64 = 0x01;
    const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
    const RESOLVE_NO_SYMLINKS: u64 = 0x04;
    const RESOLVE_BENEATH: u64 = 0x08;
    const RESOLVE_IN_ROOT: u64 = 0x10;
    const RESOLVE_CACHED: u64 = 0x20;
    const VALID: u64 = (O_ACCMODE
        | O_CREAT
        | O_EXCL
        | O_NOCTTY
        | O_TRUNC
        | O_APPEND
        | O_NONBLOCK
        | O_DSYNC
        | O_ASYNC
        | O_DIRECT
        | O_LARGEFILE
        | O_DIRECTORY
        | O_NOFOLLOW
        | O_NOATIME
        | O_CLOEXEC
        | O_PATH
        | O_TMPFILE
        | O_SYNC) as u64;
    if size < 24 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; size as usize];
    t.mm().copy_in(how, &mut raw)?;
    if raw[24..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        u64::from_le_bytes(b)
    };
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if flags & !VALID != 0 || mode & !0o7777 != 0 {
        return Err(Errno::EINVAL);
    }
    let flags = flags as u32;
    let creates = flags & O_CREAT != 0 || flags & O_TMPFILE == O_TMPFILE;
    if (mode != 0 && !creates) || flags & O_ACCMODE == O_ACCMODE {
        return Err(Errno::EINVAL);
    }
    if resolve & !0x3f != 0 || (resolve & RESOLVE_BENEATH != 0 && resolve & RESOLVE_IN_ROOT != 0) {
        return Err(Errno::EINVAL);
    }
    if resolve & RESOLVE_CACHED != 0 {
        return Err(Errno::EAGAIN);
    }
    let p = read_path(t, path)?;
    if p.is_empty() {
        return Err(Errno::ENOENT);
    }
    let w = walk(t);
    let base = if dirfd == AT_FDCWD {
        w.cwd.clone()
    } else {
        let d = fd_table(t).get(dirfd)?.vfs_path().clone();
        if d.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        d
    };
    let confined = resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) != 0;
    let root = if confined {
        base.clone()
    } else {
        w.root.clone()
    };
    let opts = WalkOpts {
        no_symlinks: resolve & RESOLVE_NO_SYMLINKS != 0,
        no_magiclinks: resolve & RESOLVE_NO_MAGICLINKS != 0,
        no_xdev: resolve & RESOLVE_NO_XDEV != 0,
        beneath: resolve & RESOLVE_BENEATH != 0,
    };
    let umask = fs_context(t).umask();
    let mode = mode as u32 & !umask;
    let f = if flags & O_TMPFILE == O_TMPFILE {
        w.vfs.open_tmpfile(&root, &base, &p, flags, mode, &w.cred)?
    } else {
        w.vfs
            .open_at_with(&root, &base, &p, flags, mode, &w.cred, opts)?
    };
    install(t, f, flags & O_CLOEXEC != 0)
}

/// `open(2)`.
pub fn sys_open(t: &Task, path: u64, flags: u32, mode: u32) -> Result<u64, Errno> {
    sys_openat(t, AT_FDCWD, path, flags, mode)
}

/// `creat(2)`.
pub fn sys_creat(t: &Task, path: u64, mode: u32) -> Result<u64, Errno> {
    sys_openat(t, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode)
}

/// `close(2)`.
pub fn sys_close(t: &Task, fd: i32) -> Result<u64, Errno> {
    fd_table(t).remove(fd)?;
    Ok(0)
}

/// `close_range(2)` (`CLOSE_RANGE_CLOEXEC` supported; `CLOSE_RANGE_UNSHARE` accepted).
pub fn sys_close_range(t: &Task, first: u32, last: u32, flags: u32) -> Result<u64, Errno> {
    const UNSHARE: u32 = 2;
    const CLOEXEC: u32 = 4;
    if flags & !(UNSHARE | CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    fd_table(t).close_range(first, last, flags & CLOEXEC != 0);
    Ok(0)
}

// ---- read / write. ----

fn read_into(t: &Task, f: &OpenFile, buf: u64, count: u64, off: Option<u64>) -> Result<u64, Errno> {
    let count = count.min(MAX_RW);
    let stream = f.ops().stream();
    let mm = t.mm();
    let mut done = 0u64;
    let mut tmp = vec![0u8; (count as usize).min(CHUNK)];
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        let r = match off {
            Some(o) => f.pread(&mut tmp[..want], o + done),
            None => f.read(&mut tmp[..want]),
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if done > 0 && e != Errno::EFAULT => break,
            Err(e) => return Err(e),
        };
        mm.copy_out(buf + done, &tmp[..n])?;
        done += n as u64;
        if n < want || stream {
            break;
        }
    }
    Ok(done)
}

fn write_from(
    t: &Task,
    f: &OpenFile,
    buf: u64,
    count: u64,
    off: Option<u64>,
) -> Result<u64, Errno> {
    let count = count.min(MAX_RW);
    let mm = t.mm();
    let mut done = 0u64;
    let mut tmp = vec![0u8; (count as usize).min(CHUNK)];
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        if let Err(e) = mm.copy_in(buf + done, &mut tmp[..want]) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        let r = match off {
            Some(o) => f.pwrite(&tmp[..want], o + done),
            None => f.write(&tmp[..want]),
        };
        let n = match r {
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        done += n as u64;
        if n < want {
            break;
        }
    }
    Ok(done)
}

/// Sends the writer `SIGPIPE` for a write that failed with `EPIPE`, as Linux does: the
/// default action kills, a handler runs, an ignored or blocked signal lets the caller see
/// `EPIPE`.
pub(crate) fn sigpipe(t: &Task, r: Result<u64, Errno>) -> Result<u64, Errno> {
    use linux_abi::signal::{SI_USER, SIGPIPE, SigInfo};
    if r == Err(Errno::EPIPE) {
        let mut info = SigInfo::new(SIGPIPE, SI_USER);
        info.set_pid_uid(t.tgid(), t.creds().uid);
        t.send_signal(info);
    }
    r
}

fn readable_file(t: &Task, fd: i32) -> Result<Arc<OpenFile>, Errno> {
    let f = fd_table(t).get(fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

fn writable_file(t: &Task, fd: i32) -> Result<Arc<OpenFile>, Errno> {
    let f = fd_table(t).get(fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// `read(2)`.
pub fn sys_read(t: &Task, fd: i32, buf: u64, count: u64) -> Result<u64, Errno> {
    let f = readable_file(t, fd)?;
    read_into(t, &f, buf, count, None)
}

/// `write(2)`.
pub fn sys_write(t: &Task, fd: i32, buf: u64, count: u64) -> Result<u64, Errno> {
    let f = writable_file(t, fd)?;
    sigpipe(t, write_from(t, &f, buf, count, None))
}

fn check_off(off: i64) -> Result<u64, Errno> {
    u64::try_from(off).map_err(|_| Errno::EINVAL)
}

/// `pread64(2)`.
pub fn sys_pread64(t: &Task, fd: i32, buf: u64, count: u64, off: i64) -> Result<u64, Errno> {
    let f = readable_file(t, fd)?;
    read_into(t, &f, buf, count, Some(check_off(off)?))
}

/// `pwrite64(2)`.
pub fn sys_pwrite64(t: &Task, fd: i32, buf: u64, count: u64, off: i64) -> Result<u64, Errno> {
    let f = writable_file(t, fd)?;
    write_from(t, &f, buf, count, Some(check_off(off)?))
}

/// The most bytes one vectored transfer on a stream file moves at once.
const STREAM_VEC_MAX: u64 = 16 << 20;

/// A vectored read of a stream file (pipe, socket, terminal) is one read, as on Linux:
/// a datagram is one message however many iovecs it fills.
fn readv_stream(t: &Task, f: &OpenFile, vecs: &[(u64, u64)]) -> Result<u64, Errno> {
    let total = vecs
        .iter()
        .fold(0u64, |a, v| a.saturating_add(v.1))
        .min(STREAM_VEC_MAX);
    let mut tmp = vec![0u8; total as usize];
    let n = f.read(&mut tmp)?;
    let mm = t.mm();
    let mut done = 0usize;
    for &(base, len) in vecs {
        if done >= n {
            break;
        }
        let k = (len as usize).min(n - done);
        mm.copy_out(base, &tmp[done..done + k])?;
        done += k;
    }
    Ok(n as u64)
}

/// A vectored write to a stream file is one write, as on Linux: one datagram, and a pipe
/// write of at most `PIPE_BUF` bytes in total stays atomic.
fn writev_stream(t: &Task, f: &OpenFile, vecs: &[(u64, u64)]) -> Result<u64, Errno> {
    let mm = t.mm();
    let mut tmp = Vec::new();
    for &(base, len) in vecs {
        let room = STREAM_VEC_MAX - tmp.len() as u64;
        let k = len.min(room) as usize;
        let at = tmp.len();
        tmp.resize(at + k, 0);
        if let Err(e) = mm.copy_in(base, &mut tmp[at..]) {
            if at == 0 {
                return Err(e);
            }
            tmp.truncate(at);
            break;
        }
        if room <= len {
            break;
        }
    }
    Ok(f.write(&tmp)? as u64)
}

fn readv_at(t: &Task, fd: i32, iov: u64, cnt: u64, off: Option<u64>) -> Result<u64, Errno> {
    let f = readable_file(t, fd)?;
    let vecs = t.mm().read_iovecs(iov, cnt)?;
    if off.is_none() && f.ops().stream() {
        return readv_stream(t, &f, &vecs);
    }
    let mut total = 0u64;
    for (base, len) in vecs {
        if len == 0 {
            continue;
        }
        let n = read_into(t, &f, base, len, off.map(|o| o + total))?;
        total += n;
        if n < len {
            break;
        }
    }
    Ok(total)
}

fn writev_at(t: &Task, fd: i32, iov: u64, cnt: u64, off: Option<u64>) -> Result<u64, Errno> {
    let f = writable_file(t, fd)?;
    let vecs = t.mm().read_iovecs(iov, cnt)?;
    if off.is_none() && f.ops().stream() {
        return writev_stream(t, &f, &vecs);
    }
    let mut total = 0u64;
    for (base, len) in vecs {
        if len == 0 {
            continue;
        }
        let n = match write_from(t, &f, base, len, off.map(|o| o + total)) {
            Ok(n) => n,
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        };
        total += n;
        if n < len {
            break;
        }
    }
    Ok(total)
}

/// `readv(2)`.
pub fn sys_readv(t: &Task, fd: i32, iov: u64, cnt: u64) -> Result<u64, Errno> {
    readv_at(t, fd, iov, cnt, None)
}

/// `writev(2)`.
pub fn sys_writev(t: &Task, fd: i32, iov: u64, cnt: u64) -> Result<u64, Errno> {
    sigpipe(t, writev_at(t, fd, iov, cnt, None))
}

/// `preadv(2)` (on x86-64 the whole offset is in the low word).
pub fn sys_preadv(t: &Task, fd: i32, iov: u64, cnt: u64, off: i64) -> Result<u64, Errno> {
    readv_at(t, fd, iov, cnt, Some(check_off(off)?))
}

/// `pwritev(2)`.
pub fn sys_pwritev(t: &Task, fd: i32, iov: u64, cnt: u64, off: i64) -> Result<u64, Errno> {
    writev_at(t, fd, iov, cnt, Some(check_off(off)?))
}

/// `preadv2(2)`: offset -1 uses the file offset; flags are hints.
pub fn sys_preadv2(
    t: &Task,
    fd: i32,
    iov: u64,
    cnt: u64,
    off: i64,
    _hi: i64,
    _flags: u32,
) -> Result<u64, Errno> {
    let off = if off == -1 {
        None
    } else {
        Some(check_off(off)?)
    };
    readv_at(t, fd, iov, cnt, off)
}

/// `pwritev2(2)`.
pub fn sys_pwritev2(
    t: &Task,
    fd: i32,
    iov: u64,
    cnt: u64,
    off: i64,
    _hi: i64,
    _flags: u32,
) -> Result<u64, Errno> {
    let off = if off == -1 {
        None
    } else {
        Some(check_off(off)?)
    };
    writev_at(t, fd, iov, cnt, off)
}

/// `lseek(2)`.
pub fn sys_lseek(t: &Task, fd: i32, off: i64, whence: u32) -> Result<u64, Errno> {
    fd_table(t).get(fd)?.seek(off, whence)
}

// ---- stat family. ----

fn write_stat(t: &Task, addr: u64, st: &Stat) -> Result<u64, Errno> {
    t.mm().write_obj(addr, st)?;
    Ok(0)
}

/// `stat(2)`.
pub fn sys_stat(t: &Task, path: u64, buf: u64) -> Result<u64, Errno> {
    sys_newfstatat(t, AT_FDCWD, path, buf, 0)
}

/// `lstat(2)`.
pub fn sys_lstat(t: &Task, path: u64, buf: u64) -> Result<u64, Errno> {
    sys_newfstatat(t, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)
}

/// `fstat(2)`.
pub fn sys_fstat(t: &Task, fd: i32, buf: u64) -> Result<u64, Errno> {
    let st = fd_table(t).get(fd)?.stat()?;
    write_stat(t, buf, &st)
}

/// `newfstatat(2)`.
pub fn sys_newfstatat(t: &Task, dirfd: i32, path: u64, buf: u64, flags: u32) -> Result<u64, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let w = walk(t);
    let st = w.resolve(t, dirfd, &p, flags)?.stat()?;
    write_stat(t, buf, &st)
}

/// Encodes a `struct statx` (256 bytes).
fn statx_bytes(st: &Stat, mnt_id: u64) -> [u8; 256] {
    const STATX_BASIC_STATS: u32 = 0x7ff;
    const STATX_MNT_ID: u32 = 0x1000;
    let mut b = [0u8; 256];
    let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(0, &(STATX_BASIC_STATS | STATX_MNT_ID).to_le_bytes());
    put(4, &(st.st_blksize as u32).to_le_bytes());
    put(16, &(st.st_nlink as u32).to_le_bytes());
    put(20, &st.st_uid.to_le_bytes());
    put(24, &st.st_gid.to_le_bytes());
    put(28, &(st.st_mode as u16).to_le_bytes());
    put(32, &st.st_ino.to_le_bytes());
    put(40, &st.st_size.to_le_bytes());
    put(48, &st.st_blocks.to_le_bytes());
    let ts = |t: &Timespec| {
        let mut x = [0u8; 16];
        x[..8].copy_from_slice(&t.tv_sec.to_le_bytes());
        x[8..12].copy_from_slice(&(t.tv_nsec as u32).to_le_bytes());
        x
    };
    put(64, &ts(&st.st_atime));
    put(80, &ts(&st.st_ctime));
    put(96, &ts(&st.st_ctime));
    put(112, &ts(&st.st_mtime));
    let major = |d: u64| ((d >> 8) & 0xfff) as u32 | ((d >> 32) & !0xfff) as u32;
    let minor = |d: u64| (d & 0xff) as u32 | ((d >> 12) & !0xff) as u32;
    put(128, &major(st.st_rdev).to_le_bytes());
    put(132, &minor(st.st_rdev).to_le_bytes());
    put(136, &major(st.st_dev).to_le_bytes());
    put(140, &minor(st.st_dev).to_le_bytes());
    put(144, &mnt_id.to_le_bytes());
    b
}

/// `statx(2)` (all basic fields are always filled).
pub fn sys_statx(
    t: &Task,
    dirfd: i32,
    path: u64,
    flags: u32,
    _mask: u32,
    buf: u64,
) -> Result<u64, Errno> {
    const AT_STATX_SYNC_TYPE: u32 = 0x6000;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let w = walk(t);
    let target = w.resolve(t, dirfd, &p, flags)?;
    let st = target.stat()?;
    t.mm().copy_out(buf, &statx_bytes(&st, target.mount.id()))?;
    Ok(0)
}

// ---- access. ----

/// `faccessat2(2)`.
pub fn sys_faccessat2(
    t: &Task,
    dirfd: i32,
    path: u64,
    mode: u32,
    flags: u32,
) -> Result<u64, Errno> {
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let mut w = walk(t);
    if flags & AT_EACCESS == 0 {
        w.cred = real_cred(t);
    }
    let target = w.resolve(t, dirfd, &p, flags)?;
    let st = target.stat()?;
    if mode & access::W_OK != 0
        && target.mount.readonly()
        && FileType::from_mode(st.st_mode) != FileType::CharDevice
    {
        return Err(Errno::EROFS);
    }
    w.cred.check(&st, mode)?;
    Ok(0)
}

/// `faccessat(2)`.
pub fn sys_faccessat(t: &Task, dirfd: i32, path: u64, mode: u32) -> Result<u64, Errno> {
    sys_faccessat2(t, dirfd, path, mode, 0)
}

/// `access(2)`.
pub fn sys_access(t: &Task, path: u64, mode: u32) -> Result<u64, Errno> {
    sys_faccessat2(t, AT_FDCWD, path, mode, 0)
}

// ---- directories. ----

fn getdents_common(t: &Task, fd: i32, buf: u64, count: u32, old: bool) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    let data = f.getdents(count as usize, old)?;
    t.mm().copy_out(buf, &data)?;
    Ok(data.len() as u64)
}

/// `getdents64(2)`.
pub fn sys_getdents64(t: &Task, fd: i32, buf: u64, count: u32) -> Result<u64, Errno> {
    getdents_common(t, fd, buf, count, false)
}

/// `getdents(2)`.
pub fn sys_getdents(t: &Task, fd: i32, buf: u64, count: u32) -> Result<u64, Errno> {
    getdents_common(t, fd, buf, count, true)
}

/// `mkdirat(2)`.
pub fn sys_mkdirat(t: &Task, dirfd: i32, path: u64, mode: u32) -> Result<u64, Errno> {
    let p = read_path(t, path)?;
    let w = walk(t);
    let start = w.start(t, dirfd, &p)?;
    let umask = fs_context(t).umask();
    w.vfs
        .mkdir(&w.root, &start, &p, mode & 0o7777 & !umask, &w.cred)?;
    Ok(0)
}

/// `mkdir(2)`.
pub fn sys_mkdir(t: &Task, path: u64, mode: u32) -> Result<u64, Errno> {
    sys_mkdirat(t, AT_FDCWD, path, mode)
}

/// `mknodat(2)`.
pub fn sys_mknodat(t: &Task, dirfd: i32, path: u64, mode: u32, dev: u64) -> Result<u64, Errno> {
    let p = read_path(t, path)?;
    let w = walk(t);
    let start = w.start(t, dirfd, &p)?;
    let umask = fs_context(t).umask();
    w.vfs.mknod(
        &w.root,
        &start,
        &p,
        (mode & S_IFMT) | (mode & 0o7777 & !umask),
        dev,
        &w.cred,
    )?;
    Ok(0)
}

/// `mknod(2)`.
pub fn sys_mknod(t: &Task, path: u64, mode: u32, dev: u64) -> Result<u64, Errno> {
    sys_mknodat(t, AT_FDCWD, path, mode, dev)
}

/// `unlinkat(2)`.
pub fn sys_unlinkat(t: &Task, dirfd: i32, path: u64, flags: u32) -> Result<u64, Errno> {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let w = walk(t);
    let start = w.start(t, dirfd, &p)?;
    w.vfs
        .unlink(&w.root, &start, &p, flags & AT_REMOVEDIR != 0, &w.cred)?;
    Ok(0)
}

/// `unlink(2)`.
pub fn sys_unlink(t: &Task, path: u64) -> Result<u64, Errno> {
    sys_unlinkat(t, AT_FDCWD, path, 0)
}

/// `rmdir(2)`.
pub fn sys_rmdir(t: &Task, path: u64) -> Result<u64, Errno> {
    sys_unlinkat(t, AT_FDCWD, path, AT_REMOVEDIR)
}

/// `renameat2(2)` (`RENAME_NOREPLACE`, `RENAME_EXCHANGE` on tmpfs).
pub fn sys_renameat2(
    t: &Task,
    odfd: i32,
    old: u64,
    ndfd: i32,
    new: u64,
    flags: u32,
) -> Result<u64, Errno> {
    let (o, n) = (read_path(t, old)?, read_path(t, new)?);
    let w = walk(t);
    let (os, ns) = (w.start(t, odfd, &o)?, w.start(t, ndfd, &n)?);
    w.vfs.rename(&w.root, &os, &o, &ns, &n, flags, &w.cred)?;
    Ok(0)
}

/// `renameat(2)`.
pub fn sys_renameat(t: &Task, odfd: i32, old: u64, ndfd: i32, new: u64) -> Result<u64, Errno> {
    sys_renameat2(t, odfd, old, ndfd, new, 0)
}

/// `rename(2)`.
pub fn sys_rename(t: &Task, old: u64, new: u64) -> Result<u64, Errno> {
    sys_renameat2(t, AT_FDCWD, old, AT_FDCWD, new, 0)
}

/// `linkat(2)`.
pub fn sys_linkat(
    t: &Task,
    odfd: i32,
    old: u64,
    ndfd: i32,
    new: u64,
    flags: u32,
) -> Result<u64, Errno> {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (o, n) = (read_path(t, old)?, read_path(t, new)?);
    let w = walk(t);
    let follow = if flags & AT_SYMLINK_FOLLOW != 0 {
        0
    } else {
        AT_SYMLINK_NOFOLLOW
    };
    let src = w.resolve(t, odfd, &o, follow | (flags & AT_EMPTY_PATH))?;
    let ns = w.start(t, ndfd, &n)?;
    w.vfs.link(&w.root, &src, &ns, &n, &w.cred)?;
    Ok(0)
}

/// `link(2)`.
pub fn sys_link(t: &Task, old: u64, new: u64) -> Result<u64, Errno> {
    sys_linkat(t, AT_FDCWD, old, AT_FDCWD, new, 0)
}

/// `symlinkat(2)`.
pub fn sys_symlinkat(t: &Task, target: u64, ndfd: i32, path: u64) -> Result<u64, Errno> {
    let (tg, p) = (read_path(t, target)?, read_path(t, path)?);
    let w = walk(t);
    let start = w.start(t, ndfd, &p)?;
    w.vfs.symlink(&w.root, &start, &tg, &p, &w.cred)?;
    Ok(0)
}

/// `symlink(2)`.
pub fn sys_symlink(t: &Task, target: u64, path: u64) -> Result<u64, Errno> {
    sys_symlinkat(t, target, AT_FDCWD, path)
}

/// `readlinkat(2)`.
pub fn sys_readlinkat(t: &Task, dirfd: i32, path: u64, buf: u64, size: i32) -> Result<u64, Errno> {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let w = walk(t);
    let target = w.resolve(t, dirfd, &p, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)?;
    let text = Vfs::readlink(&target)?;
    let n = text.len().min(size as usize);
    t.mm().copy_out(buf, &text[..n])?;
    Ok(n as u64)
}

/// `readlink(2)`.
pub fn sys_readlink(t: &Task, path: u64, buf: u64, size: i32) -> Result<u64, Errno> {
    sys_readlinkat(t, AT_FDCWD, path, buf, size)
}

// ---- attributes. ----

fn setattr_at(t: &Task, dirfd: i32, path: u64, flags: u32, attr: &SetAttr) -> Result<u64, Errno> {
    let p = if path == 0 && flags & AT_EMPTY_PATH != 0 {
        Vec::new()
    } else {
        read_path(t, path)?
    };
    let w = walk(t);
    let target = w.resolve(t, dirfd, &p, flags)?;
    w.vfs.setattr(&target, attr, &w.cred)?;
    Ok(0)
}

fn setattr_fd(t: &Task, fd: i32, attr: &SetAttr) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    vfs(t).setattr(f.vfs_path(), attr, &fs_cred(t))?;
    Ok(0)
}

fn mode_attr(mode: u32) -> SetAttr {
    SetAttr {
        mode: Some(mode & 0o7777),
        ..SetAttr::default()
    }
}

/// `fchmodat(2)`.
pub fn sys_fchmodat(t: &Task, dirfd: i32, path: u64, mode: u32) -> Result<u64, Errno> {
    setattr_at(t, dirfd, path, 0, &mode_attr(mode))
}

/// `chmod(2)`.
pub fn sys_chmod(t: &Task, path: u64, mode: u32) -> Result<u64, Errno> {
    setattr_at(t, AT_FDCWD, path, 0, &mode_attr(mode))
}

/// `fchmod(2)`.
pub fn sys_fchmod(t: &Task, fd: i32, mode: u32) -> Result<u64, Errno> {
    setattr_fd(t, fd, &mode_attr(mode))
}

fn owner_attr(uid: i32, gid: i32) -> SetAttr {
    SetAttr {
        uid: (uid != -1).then_some(uid as u32),
        gid: (gid != -1).then_some(gid as u32),
        ..SetAttr::default()
    }
}

/// `fchownat(2)`.
pub fn sys_fchownat(
    t: &Task,
    dirfd: i32,
    path: u64,
    uid: i32,
    gid: i32,
    flags: u32,
) -> Result<u64, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    setattr_at(t, dirfd, path, flags, &owner_attr(uid, gid))
}

/// `chown(2)`.
pub fn sys_chown(t: &Task, path: u64, uid: i32, gid: i32) -> Result<u64, Errno> {
    setattr_at(t, AT_FDCWD, path, 0, &owner_attr(uid, gid))
}

/// `lchown(2)`.
pub fn sys_lchown(t: &Task, path: u64, uid: i32, gid: i32) -> Result<u64, Errno> {
    setattr_at(
        t,
        AT_FDCWD,
        path,
        AT_SYMLINK_NOFOLLOW,
        &owner_attr(uid, gid),
    )
}

/// `fchown(2)`.
pub fn sys_fchown(t: &Task, fd: i32, uid: i32, gid: i32) -> Result<u64, Errno> {
    setattr_fd(t, fd, &owner_attr(uid, gid))
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn times_attr(times: Option<[Timespec; 2]>) -> Result<SetAttr, Errno> {
    let now = crate::fs::now();
    let Some([a, m]) = times else {
        return Ok(SetAttr {
            atime: Some(now),
            mtime: Some(now),
            ..SetAttr::default()
        });
    };
    let conv = |ts: Timespec| -> Result<Option<Timespec>, Errno> {
        match ts.tv_nsec {
            UTIME_OMIT => Ok(None),
            UTIME_NOW => Ok(Some(now)),
            n if (0..1_000_000_000).contains(&n) => Ok(Some(ts)),
            _ => Err(Errno::EINVAL),
        }
    };
    Ok(SetAttr {
        atime: conv(a)?,
        mtime: conv(m)?,
        ..SetAttr::default()
    })
}

/// `utimensat(2)` (a NULL path with a dirfd changes that file, as `futimens`).
pub fn sys_utimensat(
    t: &Task,
    dirfd: i32,
    path: u64,
    times: u64,
    flags: u32,
) -> Result<u64, Errno> {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let ts = if times == 0 {
        None
    } else {
        Some(t.mm().read_obj::<[Timespec; 2]>(times)?)
    };
    let attr = times_attr(ts)?;
    if attr.atime.is_none() && attr.mtime.is_none() {
        return Ok(0);
    }
    if path == 0 {
        if dirfd == AT_FDCWD {
            return Err(Errno::EFAULT);
        }
        return setattr_fd(t, dirfd, &attr);
    }
    setattr_at(t, dirfd, path, flags, &attr)
}

fn timevals(t: &Task, times: u64) -> Result<Option<[Timespec; 2]>, Errno> {
    if times == 0 {
        return Ok(None);
    }
    let tv = t.mm().read_obj::<[Timeval; 2]>(times)?;
    let mut out = [Timespec::default(); 2];
    for (o, v) in out.iter_mut().zip(tv) {
        if !(0..1_000_000).contains(&v.tv_usec) {
            return Err(Errno::EINVAL);
        }
        *o = Timespec {
            tv_sec: v.tv_sec,
            tv_nsec: v.tv_usec * 1000,
        };
    }
    Ok(Some(out))
}

/// `futimesat(2)`.
pub fn sys_futimesat(t: &Task, dirfd: i32, path: u64, times: u64) -> Result<u64, Errno> {
    let attr = times_attr(timevals(t, times)?)?;
    setattr_at(t, dirfd, path, 0, &attr)
}

/// `utimes(2)`.
pub fn sys_utimes(t: &Task, path: u64, times: u64) -> Result<u64, Errno> {
    sys_futimesat(t, AT_FDCWD, path, times)
}

/// `utime(2)`: `struct utimbuf { actime, modtime }` in seconds.
pub fn sys_utime(t: &Task, path: u64, times: u64) -> Result<u64, Errno> {
    let ts = if times == 0 {
        None
    } else {
        let [a, m] = t.mm().read_obj::<[i64; 2]>(times)?;
        Some([
            Timespec {
                tv_sec: a,
                tv_nsec: 0,
            },
            Timespec {
                tv_sec: m,
                tv_nsec: 0,
            },
        ])
    };
    setattr_at(t, AT_FDCWD, path, 0, &times_attr(ts)?)
}

/// `truncate(2)`.
pub fn sys_truncate(t: &Task, path: u64, len: i64) -> Result<u64, Errno> {
    let len = check_off(len)?;
    setattr_at(
        t,
        AT_FDCWD,
        path,
        0,
        &SetAttr {
            size: Some(len),
            ..SetAttr::default()
        },
    )
}

/// `ftruncate(2)`.
pub fn sys_ftruncate(t: &Task, fd: i32, len: i64) -> Result<u64, Errno> {
    let len = check_off(len)?;
    let f = fd_table(t).get(fd)?;
    if !f.writable() || f.vfs_path().file_type()? != FileType::Regular {
        return Err(Errno::EINVAL);
    }
    f.inode().setattr(&SetAttr {
        size: Some(len),
        ..SetAttr::default()
    })?;
    Ok(0)
}

/// `fallocate(2)`: mode 0 (grows the size) and `FALLOC_FL_KEEP_SIZE` (nothing to do:
/// pages are allocated on write); hole punching and the rest are `EOPNOTSUPP`.
pub fn sys_fallocate(t: &Task, fd: i32, mode: u32, off: i64, len: i64) -> Result<u64, Errno> {
    const FALLOC_FL_KEEP_SIZE: u32 = 1;
    let f = writable_file(t, fd)?;
    if off < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    if mode & !FALLOC_FL_KEEP_SIZE != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    match f.vfs_path().file_type()? {
        FileType::Regular => {}
        FileType::Directory => return Err(Errno::EISDIR),
        FileType::Fifo => return Err(Errno::ESPIPE),
        _ => return Err(Errno::ENODEV),
    }
    let end = (off as u64).checked_add(len as u64).ok_or(Errno::EFBIG)?;
    if mode & FALLOC_FL_KEEP_SIZE == 0 && end > f.stat()?.st_size as u64 {
        f.inode().setattr(&SetAttr {
            size: Some(end),
            ..SetAttr::default()
        })?;
    }
    Ok(0)
}

/// `fsync(2)` and `fdatasync(2)`.
pub fn sys_fsync(t: &Task, fd: i32) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    f.ops().fsync()?;
    Ok(0)
}

/// `sync(2)`: nothing is buffered in the Sentry.
pub fn sys_sync(_t: &Task) -> Result<u64, Errno> {
    Ok(0)
}

/// `syncfs(2)`.
pub fn sys_syncfs(t: &Task, fd: i32) -> Result<u64, Errno> {
    fd_table(t).get(fd)?;
    Ok(0)
}

/// `sync_file_range(2)`.
pub fn sys_sync_file_range(
    t: &Task,
    fd: i32,
    off: i64,
    len: i64,
    flags: u32,
) -> Result<u64, Errno> {
    if off < 0 || len < 0 || flags & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    fd_table(t).get(fd)?;
    Ok(0)
}

// ---- working directory. ----

fn check_dir(w: &Walk, p: &VfsPath) -> Result<(), Errno> {
    let st = p.stat()?;
    if FileType::from_mode(st.st_mode) != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    w.cred.check(&st, access::X_OK)
}

/// `chdir(2)`.
pub fn sys_chdir(t: &Task, path: u64) -> Result<u64, Errno> {
    let p = read_path(t, path)?;
    chdir_task(t, &p)?;
    Ok(0)
}

/// Changes `t`'s working directory to `path`, with `t`'s credentials (`chdir` without the
/// copy-in; the runtime sets a new process's directory this way).
pub(crate) fn chdir_task(t: &Task, path: &[u8]) -> Result<(), Errno> {
    let w = walk(t);
    let target = w.resolve(t, AT_FDCWD, path, 0)?;
    check_dir(&w, &target)?;
    fs_context(t).set_cwd(target);
    Ok(())
}

/// `fchdir(2)`.
pub fn sys_fchdir(t: &Task, fd: i32) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    let w = walk(t);
    check_dir(&w, f.vfs_path())?;
    fs_context(t).set_cwd(f.vfs_path().clone());
    Ok(0)
}

/// `chroot(2)` (root only).
pub fn sys_chroot(t: &Task, path: u64) -> Result<u64, Errno> {
    let p = read_path(t, path)?;
    let w = walk(t);
    let target = w.resolve(t, AT_FDCWD, &p, 0)?;
    check_dir(&w, &target)?;
    if t.creds().euid != 0 {
        return Err(Errno::EPERM);
    }
    fs_context(t).set_root(target);
    Ok(0)
}

/// `getcwd(2)`: returns the length including the NUL (`ENOENT` once the directory was
/// removed).
pub fn sys_getcwd(t: &Task, buf: u64, size: u64) -> Result<u64, Errno> {
    let ctx = fs_context(t);
    if ctx.cwd().dentry.is_deleted() {
        return Err(Errno::ENOENT);
    }
    let mut p = ctx.cwd_path();
    p.push(0);
    if (size as usize) < p.len() {
        return Err(Errno::ERANGE);
    }
    t.mm().copy_out(buf, &p)?;
    Ok(p.len() as u64)
}

/// `umask(2)`.
pub fn sys_umask(t: &Task, mask: u32) -> Result<u64, Errno> {
    Ok(u64::from(fs_context(t).set_umask(mask)))
}

// ---- descriptors. ----

/// `dup(2)`.
pub fn sys_dup(t: &Task, fd: i32) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    install(t, f, false)
}

/// `dup3(2)`.
pub fn sys_dup3(t: &Task, old: i32, new: i32, flags: u32) -> Result<u64, Errno> {
    if old == new || flags & !O_CLOEXEC != 0 {
        return Err(Errno::EINVAL);
    }
    let table = fd_table(t);
    let f = table.get(old)?;
    table.insert_at(new, f, flags & O_CLOEXEC != 0)?;
    Ok(new as u64)
}

/// `dup2(2)`.
pub fn sys_dup2(t: &Task, old: i32, new: i32) -> Result<u64, Errno> {
    if old == new {
        fd_table(t).get(old)?;
        return Ok(new as u64);
    }
    sys_dup3(t, old, new, 0)
}

/// `fcntl(2)` commands.
mod fcntl {
    pub const F_DUPFD: i32 = 0;
    pub const F_GETFD: i32 = 1;
    pub const F_SETFD: i32 = 2;
    pub const F_GETFL: i32 = 3;
    pub const F_SETFL: i32 = 4;
    pub const F_GETLK: i32 = 5;
    pub const F_SETLK: i32 = 6;
    pub const F_SETLKW: i32 = 7;
    pub const F_SETOWN: i32 = 8;
    pub const F_GETOWN: i32 = 9;
    pub const F_OFD_GETLK: i32 = 36;
    pub const F_OFD_SETLK: i32 = 37;
    pub const F_OFD_SETLKW: i32 = 38;
    pub const F_DUPFD_CLOEXEC: i32 = 1030;
    pub const F_SETPIPE_SZ: i32 = 1031;
    pub const F_GETPIPE_SZ: i32 = 1032;
    pub const F_ADD_SEALS: i32 = 1033;
    pub const F_GET_SEALS: i32 = 1034;
    pub const FD_CLOEXEC: u64 = 1;
    pub const F_UNLCK: i16 = 2;
}

/// `fcntl(2)`: dup, fd and status flags; locks are advisory no-ops (`F_GETLK` reports
/// no conflicting lock).
pub fn sys_fcntl(t: &Task, fd: i32, cmd: i32, arg: u64) -> Result<u64, Errno> {
    use fcntl::*;
    let table = fd_table(t);
    let f = table.get(fd)?;
    match cmd {
        F_DUPFD | F_DUPFD_CLOEXEC => {
            let min = i32::try_from(arg).map_err(|_| Errno::EINVAL)?;
            Ok(table.insert_min(f, min, cmd == F_DUPFD_CLOEXEC)? as u64)
        }
        F_GETFD => Ok(if table.cloexec(fd)? { FD_CLOEXEC } else { 0 }),
        F_SETFD => {
            table.set_cloexec(fd, arg & FD_CLOEXEC != 0)?;
            Ok(0)
        }
        F_GETFL => Ok(u64::from(f.flags() | O_LARGEFILE)),
        F_SETFL => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            f.set_flags(arg as u32)?;
            Ok(0)
        }
        F_GETLK | F_OFD_GETLK => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            t.mm().write_obj(arg, &F_UNLCK)?;
            Ok(0)
        }
        F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            let _: i16 = t.mm().read_obj(arg)?;
            Ok(0)
        }
        F_GETOWN => Ok(0),
        F_SETOWN => Ok(0),
        F_GETPIPE_SZ => pipe::pipe_size(f.ops().as_ref())
            .map(|n| n as u64)
            .ok_or(Errno::EBADF),
        F_SETPIPE_SZ => {
            let privileged = t.creds().euid == 0;
            pipe::set_pipe_size(f.ops().as_ref(), arg, privileged).map(|n| n as u64)
        }
        F_ADD_SEALS | F_GET_SEALS => Err(Errno::EINVAL),
        _ => Err(Errno::EINVAL),
    }
}

/// `ioctl(2)`: `FIOCLEX`/`FIONCLEX`, `FIONBIO`, `FIONREAD`, and the file's own ioctls
/// (terminal ioctls on host ttys).
pub fn sys_ioctl(t: &Task, fd: i32, cmd: u32, arg: u64) -> Result<u64, Errno> {
    let table = fd_table(t);
    let f = table.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let mm = t.mm();
    match cmd {
        ioctls::FIOCLEX => {
            table.set_cloexec(fd, true)?;
            Ok(0)
        }
        ioctls::FIONCLEX => {
            table.set_cloexec(fd, false)?;
            Ok(0)
        }
        ioctls::FIONBIO => {
            let on: i32 = mm.read_obj(arg)?;
            let fl = f.flags();
            f.set_flags(if on != 0 {
                fl | O_NONBLOCK
            } else {
                fl & !O_NONBLOCK
            })?;
            Ok(0)
        }
        ioctls::FIONREAD => {
            let n = match f.ops().readable() {
                Some(n) => n,
                None => match f.vfs_path().file_type()? {
                    FileType::Regular => (f.stat()?.st_size as u64).saturating_sub(f.offset()),
                    FileType::Directory => return Err(Errno::ENOTTY),
                    _ => return f.ops().ioctl(cmd, arg, &Mem(&mm)),
                },
            };
            mm.write_obj(arg, &(n.min(i32::MAX as u64) as i32))?;
            Ok(0)
        }
        // The netdevice ioctls work on a socket of any family (Linux's dev_ioctl).
        0x8910..=0x89ff if f.stat().is_ok_and(|s| s.st_mode & 0o170000 == 0o140000) => {
            crate::net::ifreq::ioctl(t.kernel().net(), cmd, arg, &Mem(&mm))
        }
        _ => f.ops().ioctl(cmd, arg, &Mem(&mm)),
    }
}

/// `pipe2(2)`.
pub fn sys_pipe2(t: &Task, fds: u64, flags: u32) -> Result<u64, Errno> {
    if flags & !(O_CLOEXEC | O_NONBLOCK | O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = pipe::new_pipe(flags);
    let table = fd_table(t);
    let cloexec = flags & O_CLOEXEC != 0;
    let rfd = table.insert(r, cloexec)?;
    let wfd = match table.insert(w, cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = table.remove(rfd);
            return Err(e);
        }
    };
    if let Err(e) = t.mm().write_obj(fds, &[rfd, wfd]) {
        let _ = table.remove(rfd);
        let _ = table.remove(wfd);
        return Err(e);
    }
    Ok(0)
}

/// `pipe(2)`.
pub fn sys_pipe(t: &Task, fds: u64) -> Result<u64, Errno> {
    sys_pipe2(t, fds, 0)
}

// ---- statfs. ----

fn write_statfs(t: &Task, buf: u64, p: &VfsPath) -> Result<u64, Errno> {
    let s = p.inode().statfs()?;
    let flags: u64 = if p.mount.readonly() { 1 } else { 0 } | 0x400; // ST_RDONLY, ST_RELATIME
    let words: [u64; 15] = [
        s.magic, s.bsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, 0, s.namelen, s.bsize,
        flags, 0, 0, 0, 0,
    ];
    t.mm().write_obj(buf, &words)?;
    Ok(0)
}

/// `statfs(2)`.
pub fn sys_statfs(t: &Task, path: u64, buf: u64) -> Result<u64, Errno> {
    let p = read_path(t, path)?;
    let w = walk(t);
    let target = w.resolve(t, AT_FDCWD, &p, 0)?;
    write_statfs(t, buf, &target)
}

/// `fstatfs(2)`.
pub fn sys_fstatfs(t: &Task, fd: i32, buf: u64) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    write_statfs(t, buf, f.vfs_path())
}

// ---- copies between files. ----

/// Copies up to `count` bytes from `src` to `dst`; `src_off`/`dst_off` are explicit
/// offsets (the file offsets are used and advanced when `None`).
fn copy_files(
    src: &OpenFile,
    mut src_off: Option<&mut u64>,
    dst: &OpenFile,
    mut dst_off: Option<&mut u64>,
    count: u64,
) -> Result<u64, Errno> {
    if !src.readable() || !dst.writable() {
        return Err(Errno::EBADF);
    }
    let count = count.min(MAX_RW);
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    let mut done = 0u64;
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        let r = match src_off.as_deref_mut() {
            Some(o) => src.pread(&mut buf[..want], *o),
            None => src.read(&mut buf[..want]),
        };
        let n = match r {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        };
        if let Some(o) = src_off.as_deref_mut() {
            *o += n as u64;
        }
        let mut w = 0;
        while w < n {
            let r = match dst_off.as_deref_mut() {
                Some(o) => dst.pwrite(&buf[w..n], *o),
                None => dst.write(&buf[w..n]),
            };
            match r {
                Ok(m) => {
                    w += m;
                    if let Some(o) = dst_off.as_deref_mut() {
                        *o += m as u64;
                    }
                }
                Err(_) if done + w as u64 > 0 => return Ok(done + w as u64),
                Err(e) => return Err(e),
            }
        }
        done += n as u64;
        if n < want && src.ops().stream() {
            break;
        }
    }
    Ok(done)
}

fn read_off(t: &Task, addr: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let v: i64 = t.mm().read_obj(addr)?;
    Ok(Some(check_off(v)?))
}

/// `sendfile(2)`.
pub fn sys_sendfile(
    t: &Task,
    out_fd: i32,
    in_fd: i32,
    offp: u64,
    count: u64,
) -> Result<u64, Errno> {
    let table = fd_table(t);
    let (src, dst) = (table.get(in_fd)?, table.get(out_fd)?);
    if dst.flags() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut off = read_off(t, offp)?;
    let n = sigpipe(t, copy_files(&src, off.as_mut(), &dst, None, count))?;
    if let Some(o) = off {
        t.mm().write_obj(offp, &(o as i64))?;
    }
    Ok(n)
}

/// `copy_file_range(2)` (a plain copy through the Sentry).
pub fn sys_copy_file_range(
    t: &Task,
    in_fd: i32,
    in_off: u64,
    out_fd: i32,
    out_off: u64,
    len: u64,
    flags: u32,
) -> Result<u64, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let table = fd_table(t);
    let (src, dst) = (table.get(in_fd)?, table.get(out_fd)?);
    for f in [&src, &dst] {
        match f.vfs_path().file_type()? {
            FileType::Regular => {}
            FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
    }
    if dst.flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let mut io = read_off(t, in_off)?;
    let mut oo = read_off(t, out_off)?;
    let n = sigpipe(t, copy_files(&src, io.as_mut(), &dst, oo.as_mut(), len))?;
    if let Some(o) = io {
        t.mm().write_obj(in_off, &(o as i64))?;
    }
    if let Some(o) = oo {
        t.mm().write_obj(out_off, &(o as i64))?;
    }
    Ok(n)
}

/// `splice(2)`: one side must be a pipe; data is copied through the Sentry.
pub fn sys_splice(
    t: &Task,
    in_fd: i32,
    in_off: u64,
    out_fd: i32,
    out_off: u64,
    len: u64,
    _flags: u32,
) -> Result<u64, Errno> {
    let table = fd_table(t);
    let (src, dst) = (table.get(in_fd)?, table.get(out_fd)?);
    let src_pipe = src.vfs_path().file_type()? == FileType::Fifo;
    let dst_pipe = dst.vfs_path().file_type()? == FileType::Fifo;
    if !src_pipe && !dst_pipe {
        return Err(Errno::EINVAL);
    }
    if (src_pipe && in_off != 0) || (dst_pipe && out_off != 0) {
        return Err(Errno::ESPIPE);
    }
    let mut io = read_off(t, in_off)?;
    let mut oo = read_off(t, out_off)?;
    // A splice moves at most one pipe buffer's worth.
    let n = sigpipe(
        t,
        copy_files(
            &src,
            io.as_mut(),
            &dst,
            oo.as_mut(),
            len.min(pipe::PIPE_SIZE as u64),
        ),
    )?;
    if let Some(o) = io {
        t.mm().write_obj(in_off, &(o as i64))?;
    }
    if let Some(o) = oo {
        t.mm().write_obj(out_off, &(o as i64))?;
    }
    Ok(n)
}

/// `readahead(2)`: a no-op on a valid, readable file.
pub fn sys_readahead(t: &Task, fd: i32, _off: i64, _count: u64) -> Result<u64, Errno> {
    readable_file(t, fd).map_err(|_| Errno::EBADF)?;
    Ok(0)
}

/// `fadvise64(2)`: advice is accepted and ignored.
pub fn sys_fadvise64(t: &Task, fd: i32, _off: i64, len: i64, advice: i32) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    if len < 0 || !(0..=5).contains(&advice) {
        return Err(Errno::EINVAL);
    }
    if f.ops().stream() {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}

/// `memfd_create(2)`: an unnamed tmpfs file backed by the memory file (no sealing).
pub fn sys_memfd_create(t: &Task, name: u64, flags: u32) -> Result<u64, Errno> {
    const MFD_CLOEXEC: u32 = 1;
    const MFD_ALLOW_SEALING: u32 = 2;
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = t.mm().read_c_string(name, 250)?;
    let mf = t.mm().memory_file().clone();
    let dir = crate::fs::tmpfs::Tmpfs::new_root(mf, 0o700, 0, 0);
    let c = fs_cred(t);
    let inode = crate::fs::Inode::create(
        dir.as_ref(),
        b"memfd",
        crate::fs::NewNode::File { mode: 0o777 },
        &c,
    )?;
    crate::fs::Inode::unlink(dir.as_ref(), b"memfd", false)?;
    let mut label = b"/memfd:".to_vec();
    label.extend_from_slice(&name);
    label.extend_from_slice(b" (deleted)");
    let ops = inode.open(O_RDWR)?;
    let f = OpenFile::new(VfsPath::anonymous(inode, &label), O_RDWR, ops);
    install(t, f, flags & MFD_CLOEXEC != 0)
}

// ---- extended attributes: none are stored; the file must exist. ----

fn xattr_path(t: &Task, path: u64, follow: bool) -> Result<VfsPath, Errno> {
    let p = read_path(t, path)?;
    let w = walk(t);
    w.resolve(
        t,
        AT_FDCWD,
        &p,
        if follow { 0 } else { AT_SYMLINK_NOFOLLOW },
    )
}

fn xattr_name(t: &Task, name: u64) -> Result<(), Errno> {
    let n = t.mm().read_c_string(name, 256).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::ERANGE
        } else {
            e
        }
    })?;
    if n.is_empty() {
        return Err(Errno::ERANGE);
    }
    Ok(())
}

/// `getxattr(2)`: no attribute exists (`ENODATA`).
pub fn sys_getxattr(t: &Task, path: u64, name: u64, _v: u64, _size: u64) -> Result<u64, Errno> {
    xattr_path(t, path, true)?;
    xattr_name(t, name)?;
    Err(Errno::ENODATA)
}

/// `lgetxattr(2)`.
pub fn sys_lgetxattr(t: &Task, path: u64, name: u64, _v: u64, _size: u64) -> Result<u64, Errno> {
    xattr_path(t, path, false)?;
    xattr_name(t, name)?;
    Err(Errno::ENODATA)
}

/// `fgetxattr(2)`.
pub fn sys_fgetxattr(t: &Task, fd: i32, name: u64, _v: u64, _size: u64) -> Result<u64, Errno> {
    fd_table(t).get(fd)?;
    xattr_name(t, name)?;
    Err(Errno::ENODATA)
}

/// `listxattr(2)`: an empty list.
pub fn sys_listxattr(t: &Task, path: u64, _list: u64, _size: u64) -> Result<u64, Errno> {
    xattr_path(t, path, true)?;
    Ok(0)
}

/// `llistxattr(2)`.
pub fn sys_llistxattr(t: &Task, path: u64, _list: u64, _size: u64) -> Result<u64, Errno> {
    xattr_path(t, path, false)?;
    Ok(0)
}

/// `flistxattr(2)`.
pub fn sys_flistxattr(t: &Task, fd: i32, _list: u64, _size: u64) -> Result<u64, Errno> {
    fd_table(t).get(fd)?;
    Ok(0)
}

/// `setxattr(2)`: not supported by the sandbox filesystems.
pub fn sys_setxattr(
    t: &Task,
    path: u64,
    name: u64,
    _v: u64,
    _size: u64,
    _flags: u32,
) -> Result<u64, Errno> {
    xattr_path(t, path, true)?;
    xattr_name(t, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// `lsetxattr(2)`.
pub fn sys_lsetxattr(
    t: &Task,
    path: u64,
    name: u64,
    _v: u64,
    _size: u64,
    _flags: u32,
) -> Result<u64, Errno> {
    xattr_path(t, path, false)?;
    xattr_name(t, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// `fsetxattr(2)`.
pub fn sys_fsetxattr(
    t: &Task,
    fd: i32,
    name: u64,
    _v: u64,
    _size: u64,
    _flags: u32,
) -> Result<u64, Errno> {
    fd_table(t).get(fd)?;
    xattr_name(t, name)?;
    Err(Errno::EOPNOTSUPP)
}

/// `removexattr(2)`.
pub fn sys_removexattr(t: &Task, path: u64, name: u64) -> Result<u64, Errno> {
    xattr_path(t, path, true)?;
    xattr_name(t, name)?;
    Err(Errno::ENODATA)
}

/// `lremovexattr(2)`.
pub fn sys_lremovexattr(t: &Task, path: u64, name: u64) -> Result<u64, Errno> {
    xattr_path(t, path, false)?;
    xattr_name(t, name)?;
    Err(Errno::ENODATA)
}

/// `fremovexattr(2)`.
pub fn sys_fremovexattr(t: &Task, fd: i32, name: u64) -> Result<u64, Errno> {
    fd_table(t).get(fd)?;
    xattr_name(t, name)?;
    Err(Errno::ENODATA)
}

/// `flock(2)`: advisory locks always succeed (one sandbox, cooperative programs).
pub fn sys_flock(t: &Task, fd: i32, op: i32) -> Result<u64, Errno> {
    const LOCK_SH: i32 = 1;
    const LOCK_EX: i32 = 2;
    const LOCK_UN: i32 = 8;
    const LOCK_NB: i32 = 4;
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    match op & !LOCK_NB {
        LOCK_SH | LOCK_EX | LOCK_UN => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    //! End to end: a static C program exercising the file system calls runs in a sandbox
    //! whose root is the overlay over a Gofer serving a temp dir (skips without `cc` or
    //! a platform).

    use std::path::Path;
    use std::process::Command;
    use std::sync::Arc;

    use platform::{MemoryFile, Platform};

    use crate::ExitStatus;

    const PROGRAM: &str = r#"
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/openat2.h>
#include <unistd.h>

#define CHECK(n, c) do { if (!(c)) { printf("step %d failed errno %d\n", n, errno); return n; } } while (0)

int main(void) {
    char buf[256];
    struct stat st;
    int fd = open("/data/hello.txt", O_RDONLY);
    CHECK(1, fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf);
    CHECK(2, n == 6 && memcmp(buf, "hello\n", 6) == 0);
    close(fd);
    fd = open("/data/hello.txt", O_WRONLY | O_APPEND);
    CHECK(3, fd >= 0 && write(fd, "more\n", 5) == 5);
    CHECK(4, fstat(fd, &st) == 0 && st.st_size == 11 && S_ISREG(st.st_mode));
    close(fd);
    CHECK(5, open("/data/hello.txt", O_CREAT | O_EXCL | O_WRONLY, 0600) < 0 && errno == EEXIST);
    CHECK(6, mkdir("/work", 0755) == 0 && chdir("/work") == 0);
    CHECK(7, getcwd(buf, sizeof buf) && strcmp(buf, "/work") == 0);
    fd = open("f", O_CREAT | O_RDWR | O_TRUNC, 0644);
    CHECK(8, fd >= 0 && pwrite(fd, "abcdef", 6, 10) == 6);
    CHECK(9, lseek(fd, 0, SEEK_END) == 16 && pread(fd, buf, 4, 12) == 4 && memcmp(buf, "cdef", 4) == 0);
    CHECK(10, ftruncate(fd, 3) == 0 && fstat(fd, &st) == 0 && st.st_size == 3);
    int d = dup(fd);
    CHECK(11, d > fd && fcntl(d, F_GETFD) == 0 && dup2(fd, 100) == 100 && fcntl(100, F_SETFD, FD_CLOEXEC) == 0);
    CHECK(12, fcntl(100, F_GETFD) == FD_CLOEXEC && close(100) == 0 && close(d) == 0 && close(fd) == 0);
    CHECK(13, symlink("f", "l") == 0 && readlink("l", buf, sizeof buf) == 1 && buf[0] == 'f');
    CHECK(14, symlink("loop", "loop") == 0 && open("loop", O_RDONLY) < 0 && errno == ELOOP);
    CHECK(15, open("l", O_RDONLY | O_NOFOLLOW) < 0 && errno == ELOOP);
    CHECK(16, rename("f", "g") == 0 && access("f", F_OK) < 0 && errno == ENOENT && access("g", R_OK) == 0);
    CHECK(17, link("g", "h") == 0 && stat("h", &st) == 0 && st.st_nlink == 2);
    CHECK(18, unlink("h") == 0 && rmdir("/work") < 0 && errno == ENOTEMPTY);
    DIR *dir = opendir(".");
    CHECK(19, dir != NULL);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) count++;
    closedir(dir);
    CHECK(20, count == 5); /* . .. g l loop */
    CHECK(21, chdir("/../../..") == 0 && getcwd(buf, sizeof buf) && strcmp(buf, "/") == 0);
    int p[2];
    CHECK(22, pipe(p) == 0 && write(p[1], "xy", 2) == 2 && read(p[0], buf, 2) == 2 && buf[1] == 'y');
    fd = open("/dev/null", O_WRONLY);
    CHECK(23, fd >= 0 && write(fd, buf, 100) == 100);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
    char link[64] = {0};
    CHECK(24, readlink(buf, link, sizeof link) == 9 && strcmp(link, "/dev/null") == 0);
    struct statfs sf, sr;
    /* Over a Gofer lower, /tmp is part of the overlay root (see Vfs::new_sandbox). */
    CHECK(25, statfs("/tmp", &sf) == 0 && statfs("/", &sr) == 0 && sf.f_type == sr.f_type
              && statfs("/dev", &sr) == 0 && sr.f_type == 0x01021994);
    CHECK(26, stat("/proc/self/cwd", &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(27, umask(077) == 022 && umask(022) == 077);
    CHECK(28, openat(AT_FDCWD, "/nonexistent/x", O_RDONLY) < 0 && errno == ENOENT);
    fd = open("/tmp", O_RDONLY | O_DIRECTORY);
    CHECK(29, fd >= 0 && mkdirat(fd, "sub", 0700) == 0 && fstatat(fd, "sub", &st, 0) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(30, unlinkat(fd, "sub", AT_REMOVEDIR) == 0 && fstatat(fd, "sub", &st, 0) < 0);
    fd = memfd_create("seg", MFD_CLOEXEC);
    CHECK(31, fd >= 0 && write(fd, "12345", 5) == 5 && fstat(fd, &st) == 0 && st.st_size == 5);
    CHECK(32, pread(fd, buf, 5, 0) == 5 && memcmp(buf, "12345", 5) == 0);
    fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);
    CHECK(33, fd >= 0 && write(fd, "tmp", 3) == 3);
    snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd);
    CHECK(34, linkat(AT_FDCWD, buf, AT_FDCWD, "/tmp/named", AT_SYMLINK_FOLLOW) == 0);
    CHECK(35, stat("/tmp/named", &st) == 0 && st.st_size == 3);
    struct open_how how = { .flags = O_RDONLY, .resolve = RESOLVE_IN_ROOT };
    int dfd = open("/data", O_RDONLY | O_DIRECTORY);
    fd = syscall(SYS_openat2, dfd, "/hello.txt", &how, sizeof how);
    CHECK(36, fd >= 0 && read(fd, buf, 5) == 5 && memcmp(buf, "hello", 5) == 0);
    how.resolve = RESOLVE_BENEATH;
    CHECK(37, syscall(SYS_openat2, dfd, "../data/hello.txt", &how, sizeof how) < 0 && errno == EXDEV);
    how.resolve = RESOLVE_NO_SYMLINKS;
    CHECK(38, syscall(SYS_openat2, AT_FDCWD, "/work/l", &how, sizeof how) < 0 && errno == ELOOP);
    CHECK(39, mkdir("/tmp/gone", 0700) == 0 && chdir("/tmp/gone") == 0 && rmdir("/tmp/gone") == 0);
    CHECK(40, getcwd(buf, sizeof buf) == NULL && errno == ENOENT && chdir("/") == 0);
    printf("all ok\n");
    fflush(stdout);
    return 0;
}
"#;

    fn compile(dir: &Path) -> bool {
        let c = dir.join("prog.c");
        if std::fs::write(&c, PROGRAM).is_err() {
            return false;
        }
        match Command::new("cc")
            .args(["-static", "-O1", "-o"])
            .arg(dir.join("prog"))
            .arg(&c)
            .output()
        {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                test_require::skip(
                    "tools",
                    format!("cc failed: {}", String::from_utf8_lossy(&o.stderr)),
                );
                false
            }
            Err(e) => {
                test_require::skip("tools", format!("no cc: {e}"));
                false
            }
        }
    }

    fn platform() -> Option<Arc<dyn Platform>> {
        let mf = Arc::new(MemoryFile::new("fs-syscalls-test", 4 << 30).ok()?);
        match platform_ptrace::PtracePlatform::new(mf) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                test_require::skip("ptrace", format!("platform unavailable: {e}"));
                None
            }
        }
    }

    #[test]
    fn file_syscalls_end_to_end_over_the_gofer() {
        let dir = tempfile::tempdir().unwrap();
        if !compile(dir.path()) {
            return;
        }
        let Some(platform) = platform() else { return };
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/hello.txt"), b"hello\n").unwrap();
        let (status, out, srv) =
            crate::testutil::run_over_gofer(platform, dir.path(), &["/prog"], &[], "/");
        assert_eq!(status, ExitStatus::Exited(0), "output: {out}");
        assert_eq!(out, "all ok\n");
        assert_eq!(
            std::fs::read(dir.path().join("data/hello.txt")).unwrap(),
            b"hello\n",
            "host unchanged"
        );
        assert!(!dir.path().join("work").exists());
        srv.join().unwrap().unwrap();
    }
}
