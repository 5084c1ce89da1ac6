//! Thin, checked wrappers over the raw host system calls the gofer makes.
//!
//! This module owns every `unsafe` host call of the file-serving path. Each wrapper issues
//! exactly one system call through `libc::syscall` with a fixed number, so the seccomp
//! allowlist in [`crate::confine`] can name precisely what the tree needs (a libc wrapper
//! may silently switch to a different system call between versions).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use linux_abi::Errno;

/// The empty path used with `AT_EMPTY_PATH`.
pub(crate) const EMPTY: &CStr = c"";

/// Converts a raw syscall return into `Ok(value)` or the thread's errno.
fn check(ret: libc::c_long) -> Result<libc::c_long, Errno> {
    if ret < 0 {
        Err(Errno::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Runs `f` again while it fails with `EINTR`.
fn retry<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(e) if e == Errno::EINTR => continue,
            r => return r,
        }
    }
}

/// `openat(dirfd, name, flags | O_CLOEXEC, mode)`.
pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: i32,
    mode: u32,
) -> Result<OwnedFd, Errno> {
    let ret = retry(|| {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call; the
        // kernel only reads it. `dir` is a live descriptor borrowed for the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_openat,
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode,
            )
        })
    })?;
    // SAFETY: a successful openat returns a fresh descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `newfstatat(fd, name, flags)` into a zeroed `stat`.
pub(crate) fn fstatat(fd: BorrowedFd<'_>, name: &CStr, flags: i32) -> Result<libc::stat, Errno> {
    // SAFETY: `stat` is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated and `st` is a writable `struct stat` of the size
    // the kernel's newfstatat writes on this architecture.
    check(unsafe {
        libc::syscall(
            libc::SYS_newfstatat,
            fd.as_raw_fd(),
            name.as_ptr(),
            &mut st as *mut libc::stat,
            flags,
        )
    })?;
    Ok(st)
}

/// `fstatat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: the node itself.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    fstatat(fd, EMPTY, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
}

/// `fchmodat(dir, name, mode)` (follows a trailing symlink: callers pass magic
/// `/proc/self/fd` entries of their own descriptors only).
pub(crate) fn fchmodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and only read by the kernel.
    check(unsafe { libc::syscall(libc::SYS_fchmodat, dir.as_raw_fd(), name.as_ptr(), mode) })?;
    Ok(())
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`; `u32::MAX` leaves
/// an id unchanged.
pub(crate) fn fchown_empty(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: the path is the static empty string; no memory is written.
    check(unsafe {
        libc::syscall(
            libc::SYS_fchownat,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`.
pub(crate) fn utimens_empty(fd: BorrowedFd<'_>, times: &[libc::timespec; 2]) -> Result<(), Errno> {
    // SAFETY: `times` points to two valid timespecs the kernel only reads.
    check(unsafe {
        libc::syscall(
            libc::SYS_utimensat,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            times.as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// `ftruncate(fd, len)`.
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> Result<(), Errno> {
    let len = i64::try_from(len).map_err(|_| Errno::EFBIG)?;
    // SAFETY: no pointers are involved.
    retry(|| check(unsafe { libc::syscall(libc::SYS_ftruncate, fd.as_raw_fd(), len) }))?;
    Ok(())
}

/// `mkdirat(dir, name, mode)`.
pub(crate) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and only read by the kernel.
    check(unsafe { libc::syscall(libc::SYS_mkdirat, dir.as_raw_fd(), name.as_ptr(), mode) })?;
    Ok(())
}

/// `mknodat(dir, name, mode, dev)`.
pub(crate) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: u64) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and only read by the kernel.
    check(unsafe { libc::syscall(libc::SYS_mknodat, dir.as_raw_fd(), name.as_ptr(), mode, dev) })?;
    Ok(())
}

/// `symlinkat(target, dir, name)`.
pub(crate) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated and only read by the kernel.
    check(unsafe {
        libc::syscall(
            libc::SYS_symlinkat,
            target.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
        )
    })?;
    Ok(())
}

/// `linkat(olddir, oldname, newdir, newname, flags)`. Callers never pass
/// `AT_SYMLINK_FOLLOW`.
pub(crate) fn linkat(
    olddir: BorrowedFd<'_>,
    oldname: &CStr,
    newdir: BorrowedFd<'_>,
    newname: &CStr,
    flags: i32,
) -> Result<(), Errno> {
    debug_assert_eq!(flags & libc::AT_SYMLINK_FOLLOW, 0);
    // SAFETY: both strings are NUL-terminated and only read by the kernel.
    check(unsafe {
        libc::syscall(
            libc::SYS_linkat,
            olddir.as_raw_fd(),
            oldname.as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// `unlinkat(dir, name, flags)`.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and only read by the kernel.
    check(unsafe { libc::syscall(libc::SYS_unlinkat, dir.as_raw_fd(), name.as_ptr(), flags) })?;
    Ok(())
}

/// `renameat2(olddir, oldname, newdir, newname, flags)`.
pub(crate) fn renameat2(
    olddir: BorrowedFd<'_>,
    oldname: &CStr,
    newdir: BorrowedFd<'_>,
    newname: &CStr,
    flags: u32,
) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated and only read by the kernel.
    check(unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            olddir.as_raw_fd(),
            oldname.as_ptr(),
            newdir.as_raw_fd(),
            newname.as_ptr(),
            flags,
        )
    })?;
    Ok(())
}

/// `readlinkat(fd, "")`: the target of the symlink `fd` refers to.
pub(crate) fn readlink_empty(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` is writable for `buf.len()` bytes and outlives the call.
    let n = check(unsafe {
        libc::syscall(
            libc::SYS_readlinkat,
            fd.as_raw_fd(),
            EMPTY.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
        )
    })? as usize;
    buf.truncate(n.min(buf.len()));
    Ok(buf)
}

/// `getdents64(fd, buf)`: raw `linux_dirent64` records; 0 at the end.
pub(crate) fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, Errno> {
    let n = retry(|| {
        // SAFETY: `buf` is writable for `buf.len()` bytes and outlives the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        })
    })?;
    Ok(n as usize)
}

/// `lseek(fd, off, whence)`.
pub(crate) fn lseek(fd: BorrowedFd<'_>, off: i64, whence: i32) -> Result<u64, Errno> {
    // SAFETY: no pointers are involved.
    let r = check(unsafe { libc::syscall(libc::SYS_lseek, fd.as_raw_fd(), off, whence) })?;
    Ok(r as u64)
}

/// `pread64(fd, buf, off)`.
pub(crate) fn pread(fd: BorrowedFd<'_>, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
    let off = i64::try_from(off).map_err(|_| Errno::EINVAL)?;
    let n = retry(|| {
        // SAFETY: `buf` is writable for `buf.len()` bytes and outlives the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_pread64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
                off,
            )
        })
    })?;
    Ok(n as usize)
}

/// `pwrite64(fd, buf, off)`.
pub(crate) fn pwrite(fd: BorrowedFd<'_>, buf: &[u8], off: u64) -> Result<usize, Errno> {
    let off = i64::try_from(off).map_err(|_| Errno::EINVAL)?;
    let n = retry(|| {
        // SAFETY: `buf` is readable for `buf.len()` bytes and outlives the call.
        check(unsafe {
            libc::syscall(
                libc::SYS_pwrite64,
                fd.as_raw_fd(),
                buf.as_ptr(),
                buf.len(),
                off,
            )
        })
    })?;
    Ok(n as usize)
}

/// `fsync(fd)` or `fdatasync(fd)`.
pub(crate) fn fsync(fd: BorrowedFd<'_>, data_only: bool) -> Result<(), Errno> {
    let nr = if data_only {
        libc::SYS_fdatasync
    } else {
        libc::SYS_fsync
    };
    // SAFETY: no pointers are involved.
    retry(|| check(unsafe { libc::syscall(nr, fd.as_raw_fd()) }))?;
    Ok(())
}

/// `fstatfs(fd)`; works on `O_PATH` descriptors.
pub(crate) fn fstatfs(fd: BorrowedFd<'_>) -> Result<libc::statfs, Errno> {
    // SAFETY: `statfs` is plain old data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a writable `struct statfs` of the size the kernel writes.
    check(unsafe {
        libc::syscall(
            libc::SYS_fstatfs,
            fd.as_raw_fd(),
            &mut st as *mut libc::statfs,
        )
    })?;
    Ok(st)
}

/// `fallocate(fd, mode, off, len)`.
pub(crate) fn fallocate(fd: BorrowedFd<'_>, mode: i32, off: u64, len: u64) -> Result<(), Errno> {
    let off = i64::try_from(off).map_err(|_| Errno::EINVAL)?;
    let len = i64::try_from(len).map_err(|_| Errno::EINVAL)?;
    // SAFETY: no pointers are involved.
    retry(|| check(unsafe { libc::syscall(libc::SYS_fallocate, fd.as_raw_fd(), mode, off, len) }))?;
    Ok(())
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

/// `mount_setattr(AT_FDCWD, path, AT_RECURSIVE, {nosuid, nodev, [rdonly]})`: restricts a
/// whole mount tree at once.
pub(crate) fn mount_setattr_recursive(
    path: &std::path::Path,
    read_only: bool,
) -> Result<(), Errno> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let mut set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if read_only {
        set |= MOUNT_ATTR_RDONLY;
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: `cpath` is NUL-terminated and `attr` is a valid `struct mount_attr` whose
    // size is passed; the kernel only reads both.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            cpath.as_ptr(),
            libc::AT_RECURSIVE as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// `AT_FDCWD` as a borrowed descriptor.
pub(crate) fn cwd_fd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a sentinel the *at() calls accept as "the current directory";
    // it is never closed (BorrowedFd does not close) and lives for the whole program.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// `fork()`, for the confinement step that runs while the process has one thread.
///
/// The caller guarantees the process is single-threaded (see
/// [`crate::confine::unshare_and_fork`]); a child of a multi-threaded process could inherit
/// a lock another thread held.
pub(crate) fn fork_single_threaded() -> nix::Result<nix::unistd::ForkResult> {
    // SAFETY: the caller guarantees the process is single-threaded, so the child cannot
    // inherit a lock held by another thread.
    unsafe { nix::unistd::fork() }
}

/// `prctl(PR_SET_PDEATHSIG, sig)`: the kernel sends `sig` when the parent dies.
pub(crate) fn set_parent_death_signal(sig: libc::c_int) -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) }.into())
        .map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub(crate) fn set_no_new_privs() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }.into()).map(drop)
}
