//! Attributes: `chmod`, `chown`, the `utime` family, `truncate`, `fallocate` and the
//! `sync` calls.

use super::*;
use crate::fs::inotify::bits::IN_MODIFY;

pub(super) fn setattr_at(
    t: &Task,
    dirfd: i32,
    path: u64,
    flags: u32,
    attr: &SetAttr,
) -> Result<u64, Errno> {
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

pub(super) fn setattr_fd(t: &Task, fd: i32, attr: &SetAttr) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    vfs(t).setattr(f.vfs_path(), attr, &fs_cred(t))?;
    Ok(0)
}

pub(super) fn mode_attr(mode: u32) -> SetAttr {
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

pub(super) fn owner_attr(uid: i32, gid: i32) -> SetAttr {
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

pub(super) const UTIME_NOW: i64 = (1 << 30) - 1;
pub(super) const UTIME_OMIT: i64 = (1 << 30) - 2;

pub(super) fn times_attr(times: Option<[Timespec; 2]>) -> Result<SetAttr, Errno> {
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

pub(super) fn timevals(t: &Task, times: u64) -> Result<Option<[Timespec; 2]>, Errno> {
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
    if len > fsize_limit(t) {
        let p = read_path(t, path)?;
        let w = walk(t);
        let target = w.resolve(t, AT_FDCWD, &p, 0)?;
        if len > target.stat()?.st_size as u64 {
            return Err(file_too_large(t));
        }
    }
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
    // Growing past RLIMIT_FSIZE (Linux's inode_newsize_ok).
    if len > fsize_limit(t) && len > f.stat()?.st_size as u64 {
        return Err(file_too_large(t));
    }
    f.inode().setattr(&SetAttr {
        size: Some(len),
        ..SetAttr::default()
    })?;
    f.vfs_path().notify(IN_MODIFY);
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
    if mode & FALLOC_FL_KEEP_SIZE == 0 && end > fsize_limit(t) && end > f.stat()?.st_size as u64 {
        return Err(file_too_large(t));
    }
    if mode & FALLOC_FL_KEEP_SIZE == 0 && end > f.stat()?.st_size as u64 {
        f.inode().setattr(&SetAttr {
            size: Some(end),
            ..SetAttr::default()
        })?;
    }
    f.vfs_path().notify(IN_MODIFY);
    Ok(0)
}

/// `fsync(2)` and `fdatasync(2)`.
pub fn sys_fsync(t: &Task, fd: i32) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    // Only files with data on a file system can be synced: a pipe, socket, FIFO or
    // character device has no fsync (EINVAL), as on Linux.
    if !matches!(
        f.vfs_path().file_type()?,
        FileType::Regular | FileType::Directory | FileType::BlockDevice
    ) {
        return Err(Errno::EINVAL);
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
    // Linux's order: the descriptor, the arguments, then the kind of file (ESPIPE for
    // anything without pages of its own).
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    if off < 0 || len < 0 || flags & !7 != 0 || off.checked_add(len).is_none() {
        return Err(Errno::EINVAL);
    }
    if !matches!(
        f.vfs_path().file_type()?,
        FileType::Regular | FileType::Directory | FileType::BlockDevice | FileType::Symlink
    ) {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}
