//! Namespace operations on paths: directories, `mknod`, `unlink`, `rename`, `link`,
//! `symlink`, `readlink`, and the working directory (`chdir`, `chroot`, `getcwd`, `umask`).

use super::*;

pub(super) fn getdents_common(
    t: &Task,
    fd: i32,
    buf: u64,
    count: u32,
    old: bool,
) -> Result<u64, Errno> {
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
    // An empty path reads the link `dirfd` is (an O_PATH descriptor of one); when it is
    // none, Linux says the name does not exist rather than "not a link".
    if p.is_empty() && target.file_type()? != FileType::Symlink {
        return Err(Errno::ENOENT);
    }
    let text = Vfs::readlink(&target, &t.caller())?;
    let n = text.len().min(size as usize);
    t.mm().copy_out(buf, &text[..n])?;
    Ok(n as u64)
}

/// `readlink(2)`.
pub fn sys_readlink(t: &Task, path: u64, buf: u64, size: i32) -> Result<u64, Errno> {
    sys_readlinkat(t, AT_FDCWD, path, buf, size)
}

pub(super) fn check_dir(w: &Walk, p: &VfsPath) -> Result<(), Errno> {
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
