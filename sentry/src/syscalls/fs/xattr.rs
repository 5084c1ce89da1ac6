//! Extended attributes: the `*xattr` calls with Linux's checks (name length, value
//! size, flags, read-only mounts, the namespaces' permissions of `xattr_permission`);
//! the file systems keep the values (`Inode::getxattr` and the rest).

use super::*;
use crate::fs::cap;
use crate::fs::inotify::bits::IN_ATTRIB;
use crate::fs::xattr::{
    Namespace, XATTR_CREATE, XATTR_LIST_MAX, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX,
};

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

/// The file of `fd` (`EBADF` for an `O_PATH` descriptor, as Linux).
fn xattr_fd(t: &Task, fd: i32) -> Result<VfsPath, Errno> {
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    Ok(f.vfs_path().clone())
}

/// The attribute name at `addr`: `ERANGE` when empty or longer than `XATTR_NAME_MAX`.
fn xattr_name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    let n = t.mm().read_c_string(addr, XATTR_NAME_MAX).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::ERANGE
        } else {
            e
        }
    })?;
    if n.is_empty() {
        return Err(Errno::ERANGE);
    }
    Ok(n)
}

/// Linux's `xattr_permission`: who may read (`write` false) or change an attribute of
/// the file `st`.
fn permission(t: &Task, st: &Stat, name: &[u8], write: bool) -> Result<(), Errno> {
    let cred = fs_cred(t);
    let denied = if write { Errno::EPERM } else { Errno::ENODATA };
    match Namespace::of(name) {
        Namespace::Security | Namespace::System => return Ok(()),
        Namespace::Trusted => {
            return if cred.has_cap(cap::SYS_ADMIN) {
                Ok(())
            } else {
                Err(denied)
            };
        }
        Namespace::User => {
            let ft = FileType::from_mode(st.st_mode);
            if ft != FileType::Regular && ft != FileType::Directory {
                return Err(denied);
            }
            if ft == FileType::Directory && st.st_mode & 0o1000 != 0 && write && !cred.owns(st) {
                return Err(Errno::EPERM);
            }
        }
        Namespace::Other => {}
    }
    cred.check(st, if write { access::W_OK } else { access::R_OK })
}

fn get(t: &Task, p: &VfsPath, name: &[u8], value: u64, size: u64) -> Result<u64, Errno> {
    permission(t, &p.stat()?, name, false)?;
    let v = p.inode().getxattr(name)?;
    copy_out_sized(t, value, size, &v, XATTR_SIZE_MAX)
}

/// Gives `data` to a caller's buffer of `size` bytes at `addr`, as the `get`/`list`
/// calls do: size 0 asks for the length; a buffer too small is `ERANGE`, or `E2BIG`
/// when even the largest one (`max`, where `size` is capped) would be.
fn copy_out_sized(t: &Task, addr: u64, size: u64, data: &[u8], max: usize) -> Result<u64, Errno> {
    if size == 0 {
        return Ok(data.len() as u64);
    }
    let size = size.min(max as u64);
    if data.len() as u64 > size {
        return Err(if size >= max as u64 {
            Errno::E2BIG
        } else {
            Errno::ERANGE
        });
    }
    t.mm().copy_out(addr, data)?;
    Ok(data.len() as u64)
}

/// The name and value of a `setxattr` call, checked as Linux's `setxattr_copy`.
fn set_args(
    t: &Task,
    name: u64,
    value: u64,
    size: u64,
    flags: u32,
) -> Result<(Vec<u8>, Vec<u8>), Errno> {
    if flags & !(XATTR_CREATE | XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    let name = xattr_name(t, name)?;
    if size > XATTR_SIZE_MAX as u64 {
        return Err(Errno::E2BIG);
    }
    let mut v = vec![0u8; size as usize];
    if size > 0 {
        t.mm().copy_in(value, &mut v)?;
    }
    Ok((name, v))
}

fn set(t: &Task, p: &VfsPath, name: &[u8], value: &[u8], flags: u32) -> Result<u64, Errno> {
    if p.mount.readonly() {
        return Err(Errno::EROFS);
    }
    permission(t, &p.stat()?, name, true)?;
    p.inode().setxattr(name, value, flags)?;
    p.notify(IN_ATTRIB);
    Ok(0)
}

fn list(t: &Task, p: &VfsPath, out: u64, size: u64) -> Result<u64, Errno> {
    let trusted = fs_cred(t).has_cap(cap::SYS_ADMIN);
    let mut buf = Vec::new();
    for n in p.inode().listxattr()? {
        if !trusted && Namespace::of(&n) == Namespace::Trusted {
            continue;
        }
        buf.extend_from_slice(&n);
        buf.push(0);
    }
    copy_out_sized(t, out, size, &buf, XATTR_LIST_MAX)
}

fn remove(t: &Task, p: &VfsPath, name: &[u8]) -> Result<u64, Errno> {
    if p.mount.readonly() {
        return Err(Errno::EROFS);
    }
    permission(t, &p.stat()?, name, true)?;
    p.inode().removexattr(name)?;
    p.notify(IN_ATTRIB);
    Ok(0)
}

/// `getxattr(2)`.
pub fn sys_getxattr(t: &Task, path: u64, name: u64, v: u64, size: u64) -> Result<u64, Errno> {
    let name = xattr_name(t, name)?;
    get(t, &xattr_path(t, path, true)?, &name, v, size)
}

/// `lgetxattr(2)`.
pub fn sys_lgetxattr(t: &Task, path: u64, name: u64, v: u64, size: u64) -> Result<u64, Errno> {
    let name = xattr_name(t, name)?;
    get(t, &xattr_path(t, path, false)?, &name, v, size)
}

/// `fgetxattr(2)`.
pub fn sys_fgetxattr(t: &Task, fd: i32, name: u64, v: u64, size: u64) -> Result<u64, Errno> {
    let p = xattr_fd(t, fd)?;
    get(t, &p, &xattr_name(t, name)?, v, size)
}

/// `listxattr(2)`.
pub fn sys_listxattr(t: &Task, path: u64, list_addr: u64, size: u64) -> Result<u64, Errno> {
    list(t, &xattr_path(t, path, true)?, list_addr, size)
}

/// `llistxattr(2)`.
pub fn sys_llistxattr(t: &Task, path: u64, list_addr: u64, size: u64) -> Result<u64, Errno> {
    list(t, &xattr_path(t, path, false)?, list_addr, size)
}

/// `flistxattr(2)`.
pub fn sys_flistxattr(t: &Task, fd: i32, list_addr: u64, size: u64) -> Result<u64, Errno> {
    list(t, &xattr_fd(t, fd)?, list_addr, size)
}

/// `setxattr(2)`.
pub fn sys_setxattr(
    t: &Task,
    path: u64,
    name: u64,
    v: u64,
    size: u64,
    flags: u32,
) -> Result<u64, Errno> {
    let (name, value) = set_args(t, name, v, size, flags)?;
    set(t, &xattr_path(t, path, true)?, &name, &value, flags)
}

/// `lsetxattr(2)`.
pub fn sys_lsetxattr(
    t: &Task,
    path: u64,
    name: u64,
    v: u64,
    size: u64,
    flags: u32,
) -> Result<u64, Errno> {
    let (name, value) = set_args(t, name, v, size, flags)?;
    set(t, &xattr_path(t, path, false)?, &name, &value, flags)
}

/// `fsetxattr(2)`.
pub fn sys_fsetxattr(
    t: &Task,
    fd: i32,
    name: u64,
    v: u64,
    size: u64,
    flags: u32,
) -> Result<u64, Errno> {
    let p = xattr_fd(t, fd)?;
    let (name, value) = set_args(t, name, v, size, flags)?;
    set(t, &p, &name, &value, flags)
}

/// `removexattr(2)`.
pub fn sys_removexattr(t: &Task, path: u64, name: u64) -> Result<u64, Errno> {
    let name = xattr_name(t, name)?;
    remove(t, &xattr_path(t, path, true)?, &name)
}

/// `lremovexattr(2)`.
pub fn sys_lremovexattr(t: &Task, path: u64, name: u64) -> Result<u64, Errno> {
    let name = xattr_name(t, name)?;
    remove(t, &xattr_path(t, path, false)?, &name)
}

/// `fremovexattr(2)`.
pub fn sys_fremovexattr(t: &Task, fd: i32, name: u64) -> Result<u64, Errno> {
    let p = xattr_fd(t, fd)?;
    remove(t, &p, &xattr_name(t, name)?)
}
