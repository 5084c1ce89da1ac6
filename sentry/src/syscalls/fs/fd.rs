//! Descriptor operations: `dup`, `fcntl`, `ioctl`, `pipe2` and `flock`.

use super::*;

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
pub(super) mod fcntl {
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
            let privileged = t.creds().has_cap(crate::kernel::CAP_SYS_RESOURCE);
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
