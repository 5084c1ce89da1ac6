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

/// `shmget(key, size, flags)`.
pub fn sys_shmget(t: &Task, key: i32, size: u64, flags: u32) -> Result<u64, Errno> {
    let mut n = ns(t);
    if let Some(id) = lookup_key(t, &n.shm, |s| s.perm, key, flags)? {
        if n.shm.get(&id).is_some_and(|s| size > s.size) {
            return Err(Errno::EINVAL);
        }
        return Ok(id as u64);
    }
    if !(SHMMIN..=SHMMAX).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let file = new_segment(t, key, size)?;
    let id = n.alloc_id();
    let now = now_secs();
    n.shm.insert(
        id,
        Shm {
            perm: Perm::new(t, key, flags),
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
        } else if !addr.is_multiple_of(PAGE) {
            return Err(Errno::EINVAL);
        }
        mflags |= MAP_FIXED;
    }
    let mf: Arc<dyn MappableFile> = file;
    let lim = crate::syscalls::mm::vm_limits(t);
    t.mm()
        .mmap_limited(at, size, prot, mflags, Some((mf, 0)), &lim)
}

/// `shmdt(addr)`: unmaps the segment attached at `addr`.
pub fn sys_shmdt(t: &Task, addr: u64) -> Result<u64, Errno> {
    let mm = t.mm();
    let v = mm
        .vmas()
        .into_iter()
        .find(|v| v.start == addr && v.shared && v.name.starts_with(b"/SYSV"))
        .ok_or(Errno::EINVAL)?;
    mm.munmap(v.start, v.end - v.start)?;
    let mut n = ns(t);
    let pid = t.tgid();
    for s in n.shm.values_mut() {
        if s.file.path() == v.name {
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

/// `shmctl(id, cmd, buf)`.
pub fn sys_shmctl(t: &Task, id: i32, cmd: i32, buf: u64) -> Result<u64, Errno> {
    let cmd = cmd & !IPC_64;
    let mut n = ns(t);
    match cmd {
        IPC_INFO | SHM_INFO => {
            // struct shminfo64: shmmax, shmmin, shmmni, shmseg, shmall, 4 unused.
            let vals = [SHMMAX, SHMMIN, 4096, 4096, SHMMAX / PAGE, 0, 0, 0, 0];
            let b: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
            t.mm().copy_out(buf, &b)?;
            return Ok(n.shm.keys().max().copied().unwrap_or(0) as u64);
        }
        _ => {}
    }
    let s = n.shm.get_mut(&id).ok_or(Errno::EINVAL)?;
    match cmd {
        IPC_STAT | SHM_STAT => {
            s.perm.check(t, 4)?;
            t.mm().copy_out(buf, &shm_stat_bytes(s))?;
            Ok(if cmd == SHM_STAT { id as u64 } else { 0 })
        }
        IPC_SET => {
            s.perm.owner(t)?;
            let mut raw = [0u8; 48];
            t.mm().copy_in(buf, &mut raw)?;
            s.perm.set_from(&raw);
            s.ctime = now_secs();
            Ok(0)
        }
        IPC_RMID => {
            s.perm.owner(t)?;
            // Attached mappings keep the pages; the id and key go away now.
            n.shm.remove(&id);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
