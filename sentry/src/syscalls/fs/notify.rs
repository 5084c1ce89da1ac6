//! inotify: `inotify_init`, `inotify_init1`, `inotify_add_watch`, `inotify_rm_watch`
//! (the watches and events are `fs::inotify`'s).

use super::*;
use crate::fs::anon::anon_file_named;
use crate::fs::inotify::{Inotify, Limits, bits::*};

/// `inotify_init1(flags)`.
pub fn sys_inotify_init1(t: &Task, flags: u32) -> Result<u64, Errno> {
    if flags & !(IN_NONBLOCK | IN_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let sysctl = t.kernel().sysctls();
    let limit = |name: &str| usize::try_from(sysctl.get_int(name)).unwrap_or(0);
    let limits = Limits {
        max_queued_events: limit("fs/inotify/max_queued_events"),
        max_user_instances: limit("fs/inotify/max_user_instances"),
        max_user_watches: limit("fs/inotify/max_user_watches"),
    };
    let ops = Inotify::new(vfs(t).notify(), t.creds().uid, limits, flags)?;
    let f = anon_file_named("inotify", 0o600, O_RDONLY | (flags & O_NONBLOCK), ops);
    install(t, f, flags & IN_CLOEXEC != 0)
}

/// `inotify_init()`.
pub fn sys_inotify_init(t: &Task) -> Result<u64, Errno> {
    sys_inotify_init1(t, 0)
}

/// Runs `op` on the inotify instance behind `fd` (`EBADF` for no file, `EINVAL` for
/// another kind).
fn with_instance<T>(
    t: &Task,
    fd: i32,
    op: impl FnOnce(&Inotify) -> Result<T, Errno>,
) -> Result<T, Errno> {
    let f = fd_table(t).get(fd)?;
    let inst = f
        .ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<Inotify>())
        .ok_or(Errno::EINVAL)?;
    op(inst)
}

/// `inotify_add_watch(fd, path, mask)`.
pub fn sys_inotify_add_watch(t: &Task, fd: i32, path: u64, mask: u32) -> Result<u64, Errno> {
    if mask & IN_MASK_ADD != 0 && mask & IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    if mask & ALL_INOTIFY_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    with_instance(t, fd, |inst| {
        let p = read_path(t, path)?;
        let w = walk(t);
        let follow = if mask & IN_DONT_FOLLOW != 0 {
            Follow::No
        } else {
            Follow::Yes
        };
        let target = w.vfs.resolve(&w.root, &w.cwd, &p, follow, &w.cred)?;
        let st = target.stat()?;
        if mask & IN_ONLYDIR != 0 && st.st_mode & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        // Watching needs read permission on the file (Linux's inotify_find_inode).
        w.cred.check(&st, access::R_OK)?;
        Ok(inst.add_watch(target.inode(), mask)? as u64)
    })
}

/// `inotify_rm_watch(fd, wd)`.
pub fn sys_inotify_rm_watch(t: &Task, fd: i32, wd: i32) -> Result<u64, Errno> {
    with_instance(t, fd, |inst| inst.rm_watch(wd))?;
    Ok(0)
}
