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
    Caller, FdTable, FileType, FsContext, FsCred, OpenFile, PATH_MAX, SetAttr, UserMem, Vfs,
    VfsPath, access, pipe,
};
use crate::kernel::Task;
use crate::mm::MemoryManager;

mod attr;
mod fd;
mod notify;
mod open;
mod path;
mod rw;
mod splice;
mod stat;
mod xattr;
pub use attr::*;
pub use fd::*;
pub use notify::*;
pub use open::*;
pub use path::*;
pub use rw::*;
pub use splice::*;
pub use stat::*;
pub use xattr::*;

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
    SYS_TEE => tee(Fd, Fd, Uint, Hex) = sys_tee;
    SYS_VMSPLICE => vmsplice(Fd, Ptr, Uint, Hex) = sys_vmsplice;
    SYS_INOTIFY_INIT => inotify_init() -> Fd = sys_inotify_init;
    SYS_INOTIFY_INIT1 => inotify_init1(Hex) -> Fd = sys_inotify_init1;
    SYS_INOTIFY_ADD_WATCH => inotify_add_watch(Fd, Str, Hex) = sys_inotify_add_watch;
    SYS_INOTIFY_RM_WATCH => inotify_rm_watch(Fd, Int) = sys_inotify_rm_watch;
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
        caps: c.cap_effective,
        caller: t.caller(),
    }
}

/// The real-id credentials `access(2)` checks with: a real uid other than 0 has no
/// capabilities for the check, uid 0 its permitted set (`do_faccessat`).
fn real_cred(t: &Task) -> FsCred {
    let c = t.creds();
    FsCred {
        uid: c.uid,
        gid: c.gid,
        caps: if c.uid == 0 { c.cap_permitted } else { 0 },
        groups: c.groups,
        caller: t.caller(),
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
