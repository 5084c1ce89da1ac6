//! The stat families (`stat`, `fstat`, `newfstatat`, `statx`), `access`/`faccessat` and
//! `statfs`/`fstatfs`.

use super::*;

pub(super) fn write_stat(t: &Task, addr: u64, st: &Stat) -> Result<u64, Errno> {
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
pub(super) fn statx_bytes(st: &Stat, mnt_id: u64) -> [u8; 256] {
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
    let major = |d: u64| crate::fs::dev_major(d) as u32;
    let minor = |d: u64| crate::fs::dev_minor(d) as u32;
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
    mask: u32,
    buf: u64,
) -> Result<u64, Errno> {
    const AT_STATX_SYNC_TYPE: u32 = 0x6000;
    const STATX_RESERVED: u32 = 0x8000_0000;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & STATX_RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let w = walk(t);
    let target = w.resolve(t, dirfd, &p, flags)?;
    let st = target.stat()?;
    t.mm().copy_out(buf, &statx_bytes(&st, target.mount.id()))?;
    Ok(0)
}

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

pub(super) fn write_statfs(t: &Task, buf: u64, p: &VfsPath) -> Result<u64, Errno> {
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
