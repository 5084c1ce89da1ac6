//! Extended attributes: none are stored; the file must exist.

use super::*;

pub(super) fn xattr_path(t: &Task, path: u64, follow: bool) -> Result<VfsPath, Errno> {
    let p = read_path(t, path)?;
    let w = walk(t);
    w.resolve(
        t,
        AT_FDCWD,
        &p,
        if follow { 0 } else { AT_SYMLINK_NOFOLLOW },
    )
}

pub(super) fn xattr_name(t: &Task, name: u64) -> Result<(), Errno> {
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
