//! `open`/`openat`/`openat2`/`creat`, `close`/`close_range` and `memfd_create`.

use super::*;

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
    break_leases(t, &f, flags)?;
    crate::syscalls::tty::opened(t, &f, flags);
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
    break_leases(t, &f, flags)?;
    crate::syscalls::tty::opened(t, &f, flags);
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
    let f = fd_table(t).remove(fd)?;
    f.ops().flush(&t.caller());
    Ok(0)
}

/// `close_range(2)` (`CLOSE_RANGE_CLOEXEC` supported; `CLOSE_RANGE_UNSHARE` accepted).
pub fn sys_close_range(t: &Task, first: u32, last: u32, flags: u32) -> Result<u64, Errno> {
    const UNSHARE: u32 = 2;
    const CLOEXEC: u32 = 4;
    if flags & !(UNSHARE | CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    // The caller's table first becomes its own, so that a table shared with other
    // processes (CLONE_FILES) keeps its descriptors.
    if flags & UNSHARE != 0 {
        t.unshare_fd_table();
    }
    for f in fd_table(t).close_range(first, last, flags & CLOEXEC != 0) {
        f.ops().flush(&t.caller());
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
    // At most 249 bytes (NAME_MAX less "memfd:"), EINVAL past that.
    let name = t.mm().read_c_string(name, 249).map_err(|e| {
        if e == Errno::ENAMETOOLONG {
            Errno::EINVAL
        } else {
            e
        }
    })?;
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
