//! System V shared memory: `shmget`, `shmat`, `shmdt`, `shmctl`.

use super::*;

pub(super) fn new_segment(t: &Task, key: i32, size: u64) -> Result<Arc<OpenFile>, Errno> {
    let mf = t.mm().memory_file().clone();
    let dir = crate::fs::tmpfs::Tmpfs::new_root(mf, 0o700, 0, 0);
    let cred = crate::fs::FsCred::root();
    let inode = dir.create(b"shm", NewNode::File { mode: 0o600 }, &cred)?;
    dir.unlink(b"shm", false)?;
    inode.setattr(&SetAttr {
        size: Some(size),
        ..SetAttr::default()
    })?;
    let label = format!("/SYSV{key:08x} (deleted)");
    let ops = inode.open(O_RDWR)?;
    Ok(OpenFile::new(
        VfsPath::anonymous(inode, label.as_bytes()),
        O_RDWR,
        ops,
    ))
}

/// `shmget(key, size, flags)`: sizes are checked against `kernel.shmmax` and
/// `kernel.shmall`, the number of segments against `kernel.shmmni` (`ENOSPC`), and an
/// existing segment smaller than `size` is `EINVAL` (before the permission check, as on
/// Linux). The sandbox's kernel has no huge pages (its `/proc/config.gz` has no
/// `CONFIG_HUGETLBFS`): `SHM_HUGETLB` is `EINVAL`, as on such a Linux.
pub fn sys_shmget(t: &Task, key: i32, size: u64, flags: u32) -> Result<u64, Errno> {
    let mut guard = ns(t);
    let n = &mut *guard;
    if let Some(id) = lookup_key(
        t,
        &n.shm_ids,
        &n.shm,
        |s| s.perm,
        key,
        flags,
        |s| {
            if size > s.size {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        },
    )? {
        return Ok(id as u64);
    }
    let sysctls = t.kernel().sysctls();
    let shmmax = sysctls
        .get("kernel/shmmax")
        .and_then(|v| v.parse::<u64>().ok());
    if size < SHMMIN || size > shmmax.unwrap_or(u64::MAX) {
        return Err(Errno::EINVAL);
    }
    let pages = size.div_ceil(PAGE);
    let shmall = sysctls
        .get("kernel/shmall")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    let total: u64 = n.shm.values().map(|s| s.size.div_ceil(PAGE)).sum();
    if total.checked_add(pages).is_none_or(|t| t > shmall) {
        return Err(Errno::ENOSPC);
    }
    if flags & SHM_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    let (id, seq) = new_id(
        t,
        &mut n.shm_ids,
        n.shm.len(),
        key,
        "kernel/shmmni",
        "kernel/shm_next_id",
    )?;
    let file = new_segment(t, key, size)?;
    let now = now_secs();
    let mut perm = Perm::new(t, key, flags);
    perm.seq = seq;
    n.shm.insert(
        id,
        Shm {
            perm,
            size,
            file,
            cpid: t.tgid(),
            lpid: 0,
            atime: 0,
            dtime: 0,
            ctime: now,
        },
    );
    Ok(id as u64)
}

/// `shmat(id, addr, flags)`.
pub fn sys_shmat(t: &Task, id: i32, addr: u64, flags: u32) -> Result<u64, Errno> {
    let (file, size) = {
        let mut n = ns(t);
        let s = n.shm.get_mut(&id).ok_or(Errno::EINVAL)?;
        let want = if flags & SHM_RDONLY != 0 { 4 } else { 6 };
        s.perm.check(t, want)?;
        s.atime = now_secs();
        s.lpid = t.tgid();
        (s.file.clone(), s.size)
    };
    let mut prot = PROT_READ;
    if flags & SHM_RDONLY == 0 {
        prot |= PROT_WRITE;
    }
    if flags & SHM_EXEC != 0 {
        prot |= PROT_EXEC;
    }
    let mut mflags = MAP_SHARED;
    let mut at = addr;
    if addr != 0 {
        if flags & SHM_RND != 0 {
            at = addr & !(PAGE - 1);
            // A round-down to the null page cannot be remapped.
            if at == 0 && flags & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        } else if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        if flags & SHM_REMAP == 0 {
            // Without SHM_REMAP an address already mapped is refused.
            let end = at.saturating_add(size.div_ceil(PAGE) * PAGE);
            if t.mm().vmas().iter().any(|v| v.start < end && at < v.end) {
                return Err(Errno::EINVAL);
            }
        }
        mflags |= MAP_FIXED;
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let mf: Arc<dyn MappableFile> = file;
    let lim = crate::syscalls::mm::vm_limits(t);
    t.mm()
        .mmap_limited(at, size, prot, mflags, Some((mf, 0)), &lim)
}

/// `shmdt(addr)`: unmaps the attachment that starts at `addr`: every piece of it (an
/// `mprotect` may have split it), as Linux does.
pub fn sys_shmdt(t: &Task, addr: u64) -> Result<u64, Errno> {
    if !addr.is_multiple_of(PAGE) {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let vmas = mm.vmas();
    let is_shm = |v: &crate::mm::VmaInfo| v.shared && v.name.starts_with(b"/SYSV");
    let first = vmas
        .iter()
        .find(|v| v.start == addr && v.offset == 0 && is_shm(v))
        .ok_or(Errno::EINVAL)?;
    let name = first.name.clone();
    let size = {
        let n = ns(t);
        n.shm
            .values()
            .find(|s| s.file.path() == name)
            .map_or(first.end - first.start, |s| s.size.div_ceil(PAGE) * PAGE)
    };
    let end = addr.saturating_add(size);
    for v in vmas
        .iter()
        .filter(|v| is_shm(v) && v.name == name && v.start >= addr && v.start < end)
        .filter(|v| v.start - addr == v.offset)
    {
        mm.munmap(v.start, v.end - v.start)?;
    }
    let mut n = ns(t);
    let pid = t.tgid();
    for s in n.shm.values_mut() {
        if s.file.path() == name {
            s.dtime = now_secs();
            s.lpid = pid;
        }
    }
    Ok(0)
}

pub(super) fn shm_stat_bytes(s: &Shm) -> Vec<u8> {
    let mut b = s.perm.bytes().to_vec();
    for v in [s.size, s.atime as u64, s.dtime as u64, s.ctime as u64] {
        b.extend_from_slice(&v.to_ne_bytes());
    }
    b.extend_from_slice(&s.cpid.to_ne_bytes());
    b.extend_from_slice(&s.lpid.to_ne_bytes());
    b.extend_from_slice(&s.nattch().to_ne_bytes());
    b.extend_from_slice(&[0u8; 16]);
    b
}

/// `shmctl(id, cmd, buf)`. `SHM_STAT` and `SHM_STAT_ANY` name a segment by its index
/// (up to what `IPC_INFO`/`SHM_INFO` return); `SHM_STAT_ANY` skips the read permission.
pub fn sys_shmctl(t: &Task, id: i32, cmd: i32, buf: u64) -> Result<u64, Errno> {
    let cmd = cmd & !IPC_64;
    let mut n = ns(t);
    match cmd {
        IPC_INFO => {
            // struct shminfo64: shmmax, shmmin, shmmni, shmseg, shmall, 4 unused.
            let s = t.kernel().sysctls();
            let num = |k: &str| s.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let vals = [
                num("kernel/shmmax"),
                SHMMIN,
                num("kernel/shmmni"),
                4096,
                num("kernel/shmall"),
                0,
                0,
                0,
                0,
            ];
            let b: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
            t.mm().copy_out(buf, &b)?;
            return Ok(max_index(&n.shm) as u64);
        }
        SHM_INFO => {
            // struct shm_info: used_ids (int, padded), shm_tot and shm_rss (pages),
            // shm_swp, swap_attempts, swap_successes.
            let tot: u64 = n.shm.values().map(|s| s.size.div_ceil(PAGE)).sum();
            let rss: u64 = n.shm.values().map(|s| s.rss() / PAGE).sum();
            let mut b = (n.shm.len() as u64).to_ne_bytes().to_vec();
            for v in [tot, rss, 0, 0, 0] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            t.mm().copy_out(buf, &b)?;
            return Ok(max_index(&n.shm) as u64);
        }
        _ => {}
    }
    let id = if matches!(cmd, SHM_STAT | SHM_STAT_ANY) {
        by_index(&n.shm, id).ok_or(Errno::EINVAL)?
    } else {
        id
    };
    let s = n.shm.get_mut(&id).ok_or(Errno::EINVAL)?;
    match cmd {
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            if cmd != SHM_STAT_ANY {
                s.perm.check(t, 4)?;
            }
            t.mm().copy_out(buf, &shm_stat_bytes(s))?;
            Ok(if cmd == IPC_STAT { 0 } else { id as u64 })
        }
        IPC_SET => {
            s.perm.owner(t)?;
            let mut raw = [0u8; 48];
            t.mm().copy_in(buf, &mut raw)?;
            s.perm.set_from(&raw);
            s.ctime = now_secs();
            Ok(0)
        }
        SHM_LOCK | SHM_UNLOCK => {
            // Pages are never swapped out in the sandbox: locking is the mode bit, with
            // Linux's permission rules.
            if !t.creds().has_cap(crate::kernel::CAP_IPC_LOCK) {
                let euid = t.creds().euid;
                if euid != s.perm.uid && euid != s.perm.cuid {
                    return Err(Errno::EPERM);
                }
                if cmd == SHM_LOCK && crate::syscalls::mm::memlock_limit(t) == Some(0) {
                    return Err(Errno::EPERM);
                }
            }
            if cmd == SHM_LOCK {
                s.perm.mode |= SHM_LOCKED;
            } else {
                s.perm.mode &= !SHM_LOCKED;
            }
            Ok(0)
        }
        IPC_RMID => {
            s.perm.owner(t)?;
            // Attached mappings keep the pages; the id and key go away now.
            let key = s.perm.key;
            n.shm.remove(&id);
            n.shm_ids.release(id, key);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
