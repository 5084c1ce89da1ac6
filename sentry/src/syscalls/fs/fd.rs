//! Descriptor operations: `dup`, `fcntl`, `ioctl`, `pipe2` and `flock`.

use super::*;
use crate::fs::file::seek;
use crate::fs::lock::{self, LockOwner, LockType};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

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
    if let Some(old) = table.insert_at(new, f, flags & O_CLOEXEC != 0)? {
        old.ops().flush(&t.caller());
    }
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
    pub const F_SETSIG: i32 = 10;
    pub const F_GETSIG: i32 = 11;
    pub const F_SETOWN_EX: i32 = 15;
    pub const F_GETOWN_EX: i32 = 16;
    pub const F_OFD_GETLK: i32 = 36;
    pub const F_SETLEASE: i32 = 1024;
    pub const F_GETLEASE: i32 = 1025;
    pub const F_OFD_SETLK: i32 = 37;
    pub const F_OFD_SETLKW: i32 = 38;
    pub const F_DUPFD_CLOEXEC: i32 = 1030;
    pub const F_SETPIPE_SZ: i32 = 1031;
    pub const F_GETPIPE_SZ: i32 = 1032;
    pub const F_ADD_SEALS: i32 = 1033;
    pub const F_GET_SEALS: i32 = 1034;
    pub const FD_CLOEXEC: u64 = 1;
    pub const F_RDLCK: i16 = 0;
    pub const F_WRLCK: i16 = 1;
    pub const F_UNLCK: i16 = 2;
}

/// `fcntl(2)`: dup, fd and status flags, pipe sizes, and advisory record locks (POSIX and
/// open-file-description locks, see [`crate::fs::lock`]).
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
            let was = f.flags() & O_ASYNC;
            // Only a file with Linux's `fasync` operation keeps `O_ASYNC`.
            let mut new = arg as u32;
            if (new & O_ASYNC) != was && !crate::kernel::fasync::supports_async(&f) {
                new = (new & !O_ASYNC) | was;
            }
            f.set_flags(new)?;
            if f.flags() & O_ASYNC != was {
                crate::kernel::fasync::set_async(t, &f, fd, was == 0);
            }
            Ok(0)
        }
        F_GETLK | F_OFD_GETLK | F_SETLK | F_SETLKW | F_OFD_SETLK | F_OFD_SETLKW => {
            if f.is_path_only() {
                return Err(Errno::EBADF);
            }
            record_lock(t, &table, &f, cmd, arg)
        }
        F_GETLEASE | F_SETLEASE if f.is_path_only() => Err(Errno::EBADF),
        F_GETLEASE => {
            let locks = f.file_locks(vfs(t).locks())?;
            Ok(match locks.lease(f.lock_owner()) {
                None => F_UNLCK,
                Some(LockType::Read) => F_RDLCK,
                Some(LockType::Write) => F_WRLCK,
            } as u64)
        }
        F_SETLEASE => set_lease(t, &f, arg),
        F_GETOWN | F_SETOWN | F_GETOWN_EX | F_SETOWN_EX | F_GETSIG | F_SETSIG
            if f.is_path_only() =>
        {
            Err(Errno::EBADF)
        }
        F_GETOWN => Ok(crate::kernel::fasync::owner_id(&f) as i64 as u64),
        F_SETOWN => {
            use crate::fs::file::SigioOwner;
            let who = arg as i32;
            let owner = match who {
                0 => None,
                i32::MIN => return Err(Errno::EINVAL),
                w if w < 0 => Some(SigioOwner::Group(-w)),
                w => Some(SigioOwner::Process(w)),
            };
            crate::kernel::fasync::set_owner(t, &f, owner)?;
            Ok(0)
        }
        F_GETOWN_EX => get_owner_ex(t, &f, arg),
        F_SETOWN_EX => set_owner_ex(t, &f, arg),
        F_GETSIG => Ok(f.fasync().signal as u64),
        F_SETSIG => {
            let sig = i32::try_from(arg).map_err(|_| Errno::EINVAL)?;
            if !(0..=64).contains(&sig) {
                return Err(Errno::EINVAL);
            }
            f.fasync().signal = sig;
            Ok(0)
        }
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

/// `struct f_owner_ex`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct OwnerEx {
    kind: i32,
    pid: i32,
}

/// `F_GETOWN_EX`: the owner's kind and id (a file without one reads as thread 0, as
/// Linux's default owner).
fn get_owner_ex(t: &Task, f: &OpenFile, arg: u64) -> Result<u64, Errno> {
    use crate::fs::file::SigioOwner;
    use crate::kernel::fasync::{F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID};
    let o = match f.fasync().owner {
        None => OwnerEx::default(),
        Some(SigioOwner::Thread(id)) => OwnerEx {
            kind: F_OWNER_TID,
            pid: id,
        },
        Some(SigioOwner::Process(id)) => OwnerEx {
            kind: F_OWNER_PID,
            pid: id,
        },
        Some(SigioOwner::Group(id)) => OwnerEx {
            kind: F_OWNER_PGRP,
            pid: id,
        },
    };
    t.mm().write_obj(arg, &o)?;
    Ok(0)
}

/// `F_SETOWN_EX`: a thread, a process or a process group; id 0 clears the owner.
fn set_owner_ex(t: &Task, f: &OpenFile, arg: u64) -> Result<u64, Errno> {
    use crate::fs::file::SigioOwner;
    use crate::kernel::fasync::{F_OWNER_PGRP, F_OWNER_PID, F_OWNER_TID};
    let o: OwnerEx = t.mm().read_obj(arg)?;
    let owner = match o.kind {
        F_OWNER_TID => SigioOwner::Thread(o.pid),
        F_OWNER_PID => SigioOwner::Process(o.pid),
        F_OWNER_PGRP => SigioOwner::Group(o.pid),
        _ => return Err(Errno::EINVAL),
    };
    if o.pid < 0 {
        return Err(Errno::ESRCH);
    }
    crate::kernel::fasync::set_owner(t, f, (o.pid != 0).then_some(owner))?;
    Ok(0)
}

/// `struct flock` (x86-64 layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
struct Flock {
    l_type: i16,
    l_whence: i16,
    pad0: u32,
    l_start: i64,
    l_len: i64,
    l_pid: i32,
    pad1: u32,
}

/// The byte range `start..=end` a `struct flock` names (Linux's `flock64_to_posix_lock`).
fn lock_range(f: &OpenFile, fl: &Flock) -> Result<(i64, i64), Errno> {
    const MAX: i64 = lock::OFFSET_MAX;
    let base = match fl.l_whence as u32 {
        seek::SEEK_SET => 0,
        seek::SEEK_CUR => f.offset().min(MAX as u64) as i64,
        seek::SEEK_END => f.stat()?.st_size.max(0),
        _ => return Err(Errno::EINVAL),
    };
    if fl.l_start > MAX - base {
        return Err(Errno::EOVERFLOW);
    }
    let start = base + fl.l_start;
    if start < 0 {
        return Err(Errno::EINVAL);
    }
    match fl.l_len {
        0 => Ok((start, MAX)),
        len if len > 0 => {
            if len - 1 > MAX - start {
                return Err(Errno::EOVERFLOW);
            }
            Ok((start, start + (len - 1)))
        }
        len => {
            if start + len < 0 {
                return Err(Errno::EINVAL);
            }
            Ok((start + len, start - 1))
        }
    }
}

/// `F_GETLK`, `F_SETLK`, `F_SETLKW` and their `F_OFD_` forms, with Linux's order of
/// checks (`fcntl_getlk`, `fcntl_setlk`).
fn record_lock(
    t: &Task,
    table: &Arc<FdTable>,
    f: &Arc<OpenFile>,
    cmd: i32,
    arg: u64,
) -> Result<u64, Errno> {
    use fcntl::*;
    let mm = t.mm();
    let mut fl: Flock = mm.read_obj(arg)?;
    let ofd = matches!(cmd, F_OFD_GETLK | F_OFD_SETLK | F_OFD_SETLKW);
    let get = matches!(cmd, F_GETLK | F_OFD_GETLK);
    let kind = || match fl.l_type {
        F_RDLCK => Ok(Some(LockType::Read)),
        F_WRLCK => Ok(Some(LockType::Write)),
        F_UNLCK if !get => Ok(None),
        _ => Err(Errno::EINVAL),
    };
    // Linux checks the type before the range for F_GETLK, after it for F_SETLK.
    let kind = if get {
        let k = kind()?;
        lock_range(f, &fl)?;
        k
    } else {
        lock_range(f, &fl)?;
        kind()?
    };
    let (start, end) = lock_range(f, &fl)?;
    if !get {
        match kind {
            Some(LockType::Read) if !f.readable() => return Err(Errno::EBADF),
            Some(LockType::Write) if !f.writable() => return Err(Errno::EBADF),
            _ => {}
        }
    }
    if ofd && fl.l_pid != 0 {
        return Err(Errno::EINVAL);
    }
    let owner = if ofd {
        f.lock_owner()
    } else {
        table.lock_owner()
    };
    let locks = f.file_locks(vfs(t).locks())?;
    if let Some(kind) = kind.filter(|_| get) {
        match locks.test_record(owner, kind, start, end) {
            None => fl.l_type = F_UNLCK,
            Some(held) => {
                fl.l_type = match held.kind {
                    LockType::Read => F_RDLCK,
                    LockType::Write => F_WRLCK,
                };
                fl.l_whence = seek::SEEK_SET as i16;
                fl.l_start = held.start;
                fl.l_len = if held.end == lock::OFFSET_MAX {
                    0
                } else {
                    held.end - held.start + 1
                };
                // Processes see each other's ids unchanged (one PID namespace).
                fl.l_pid = match held.owner {
                    LockOwner::Process(_) => held.pid,
                    LockOwner::File(_) => -1,
                };
            }
        }
        mm.write_obj(arg, &fl)?;
        return Ok(0);
    }
    let wait = matches!(cmd, F_SETLKW | F_OFD_SETLKW);
    let posix = !ofd;
    if posix && kind.is_some() {
        table.note_posix_locks(&locks);
    }
    let r = locks.set_record(owner, kind, start, end, t.tgid(), wait);
    if posix {
        table.forget_posix_locks(&locks);
    }
    r.map(|()| 0)
}

/// `F_SETLEASE`: Linux's checks in Linux's order (bad type `EINVAL`, not the owner
/// without `CAP_LEASE` `EACCES`, not a regular file `EINVAL`, conflicting opens `EAGAIN`,
/// `fs.leases-enable` off `EINVAL`), then the lease, owned by the description; it is
/// broken by conflicting opens ([`break_leases`]).
fn set_lease(t: &Task, f: &Arc<OpenFile>, arg: u64) -> Result<u64, Errno> {
    use fcntl::*;
    let kind = match i16::try_from(arg as i64) {
        Ok(F_RDLCK) => Some(LockType::Read),
        Ok(F_WRLCK) => Some(LockType::Write),
        Ok(F_UNLCK) => None,
        _ => return Err(Errno::EINVAL),
    };
    let st = f.stat()?;
    if st.st_uid != fs_cred(t).uid && !t.creds().has_cap(crate::kernel::CAP_LEASE) {
        return Err(Errno::EACCES);
    }
    if st.st_mode & S_IFMT != S_IFREG {
        return Err(Errno::EINVAL);
    }
    let locks = f.file_locks(vfs(t).locks())?;
    let key = locks.key();
    let enabled = t.kernel().sysctls().get_int("fs/leases-enable") != 0;
    locks.set_lease(f.lock_owner(), kind, t.tgid(), enabled, |k| {
        open_conflict(t, f, key, k)
    })?;
    Ok(0)
}

/// Whether opens of the file `key` forbid a `kind` lease on `me`: any open for writing
/// (`me` included) for a read lease, any other open for a write lease (Linux's
/// `check_conflicting_open`). Counts the descriptions in the sandbox's descriptor tables.
fn open_conflict(t: &Task, me: &Arc<OpenFile>, key: lock::FileKey, kind: LockType) -> bool {
    let k = t.kernel();
    let mut seen = std::collections::HashSet::new();
    for pid in k.pids() {
        let Some(tg) = k.thread_group(pid) else {
            continue;
        };
        for task in tg.tasks() {
            for (_, f) in task.fd_table().fds() {
                if f.is_path_only()
                    || !seen.insert(Arc::as_ptr(&f) as usize)
                    || f.lock_key() != Some(key)
                {
                    continue;
                }
                let other = !Arc::ptr_eq(&f, me);
                match kind {
                    LockType::Read if f.writable() => return true,
                    LockType::Write if other => return true,
                    _ => {}
                }
            }
        }
    }
    false
}

/// Breaks the leases an open of `f` with `flags` conflicts with, as Linux's
/// `break_lease` at open: each holder gets `SIGIO` once, and the open waits until the
/// leases are given up or downgraded, or `fs.lease-break-time` seconds pass and they
/// are taken down (`EWOULDBLOCK` at once with `O_NONBLOCK`; `EINTR` on a signal).
pub(crate) fn break_leases(t: &Task, f: &Arc<OpenFile>, flags: u32) -> Result<(), Errno> {
    let v = vfs(t);
    let reg = v.locks();
    if !reg.any_leases() || f.is_path_only() {
        return Ok(());
    }
    let Some(locks) = f.lock_key().and_then(|key| reg.find(key)) else {
        return Ok(());
    };
    let write = f.writable() || flags & O_TRUNC != 0;
    let secs = t.kernel().sysctls().get_int("fs/lease-break-time").max(0);
    let break_time = std::time::Duration::from_secs(secs as u64);
    let me = f.lock_owner();
    loop {
        let (tell, wait) = locks.break_leases(me, write, break_time);
        for pid in tell {
            if let Some(tg) = t.kernel().thread_group(pid) {
                use linux_abi::signal::{SI_KERNEL, SIGIO, SigInfo};
                tg.send_signal(SigInfo::new(SIGIO, SI_KERNEL));
            }
        }
        if !wait {
            return Ok(());
        }
        if flags & O_NONBLOCK != 0 {
            return Err(Errno::EWOULDBLOCK);
        }
        locks.wait_leases_broken(me, write)?;
    }
}

/// `ioctl(2)`: `FIOCLEX`/`FIONCLEX`, `FIONBIO`, `FIOASYNC`, `FIONREAD`, and the file's own ioctls
/// (terminal ioctls on host ttys).
pub fn sys_ioctl(t: &Task, fd: i32, cmd: u32, arg: u64) -> Result<u64, Errno> {
    let table = fd_table(t);
    let f = table.get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    if let Some(r) = crate::syscalls::tty::file_ioctl(t, &f, cmd, arg) {
        return r;
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
        ioctls::FIOASYNC => {
            let on: i32 = mm.read_obj(arg)?;
            let want = if on != 0 { O_ASYNC } else { 0 };
            let fl = f.flags();
            if fl & O_ASYNC == want {
                return Ok(0);
            }
            // Only files with Linux's `fasync` operation take it.
            if !crate::kernel::fasync::supports_async(&f) {
                return Err(Errno::ENOTTY);
            }
            f.set_flags((fl & !O_ASYNC) | want)?;
            crate::kernel::fasync::set_async(t, &f, fd, on != 0);
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

/// `flock(2)`: whole-file advisory locks owned by the open file description, independent
/// of `fcntl` record locks (see [`crate::fs::lock`]).
pub fn sys_flock(t: &Task, fd: i32, op: i32) -> Result<u64, Errno> {
    const LOCK_SH: i32 = 1;
    const LOCK_EX: i32 = 2;
    const LOCK_NB: i32 = 4;
    const LOCK_UN: i32 = 8;
    const LOCK_MAND: i32 = 32;
    // Linux ignores the long-broken mandatory flock requests.
    if op & LOCK_MAND != 0 {
        return Ok(0);
    }
    let kind = match op & !LOCK_NB {
        LOCK_SH => Some(LockType::Read),
        LOCK_EX => Some(LockType::Write),
        LOCK_UN => None,
        _ => return Err(Errno::EINVAL),
    };
    let f = fd_table(t).get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    let locks = f.file_locks(vfs(t).locks())?;
    locks.flock(f.lock_owner(), kind, t.tgid(), op & LOCK_NB == 0)?;
    Ok(0)
}
