//! Memory system calls: `mmap`, `munmap`, `mprotect`, `brk`, `mremap`, `madvise`, `msync`,
//! `mincore` and the `mlock` family (nothing is ever swapped in the sandbox: `mlock`
//! faults its range in and checks `RLIMIT_MEMLOCK`, and nothing more).

use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mm::{MAP_ANONYMOUS, MAP_LOCKED, PROT_EXEC, PROT_WRITE};

use super::SyscallEntry;
use crate::fs::FileType;
use crate::kernel::Task;
use crate::mm::{MappableFile, VmLimits};

/// The memory system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_MMAP => mmap(Ptr, Uint, Prot, MapFlags, Fd, Hex) -> Ptr = sys_mmap;
    SYS_MUNMAP => munmap(Ptr, Uint) = sys_munmap;
    SYS_MPROTECT => mprotect(Ptr, Uint, Prot) = sys_mprotect;
    SYS_BRK => brk(Ptr) -> Ptr = sys_brk;
    SYS_MREMAP => mremap(Ptr, Uint, Uint, Hex, Ptr) -> Ptr = sys_mremap;
    SYS_MADVISE => madvise(Ptr, Uint, Int) = sys_madvise;
    SYS_MSYNC => msync(Ptr, Uint, Hex) = sys_msync;
    SYS_MINCORE => mincore(Ptr, Uint, Ptr) = sys_mincore;
    SYS_MLOCK => mlock(Ptr, Uint) = sys_mlock;
    SYS_MUNLOCK => munlock(Ptr, Uint) = sys_munlock;
    SYS_MLOCKALL => mlockall(Hex) = sys_mlockall;
    SYS_MUNLOCKALL => munlockall() = sys_munlockall;
];

/// `RLIMIT_DATA`.
const RLIMIT_DATA: usize = 2;
/// `RLIMIT_MEMLOCK`.
const RLIMIT_MEMLOCK: usize = 8;
/// `RLIMIT_AS`.
const RLIMIT_AS: usize = 9;

/// The calling process's limits on its address space.
pub(crate) fn vm_limits(t: &Task) -> VmLimits {
    let tg = t.thread_group();
    let lim = |r| {
        tg.rlimit(r)
            .map_or((u64::MAX, u64::MAX), |l| (l.cur, l.max))
    };
    let (address_space, _) = lim(RLIMIT_AS);
    let (data, data_max) = lim(RLIMIT_DATA);
    VmLimits {
        address_space,
        data,
        data_max,
    }
}

/// `makedev(1, 5)`: `/dev/zero`, whose mappings are anonymous memory.
const DEV_ZERO_RDEV: u64 = (1 << 8) | 5;

/// The file behind `fd` as a mappable file, checked against the mapping's needs;
/// `None` for `/dev/zero` (anonymous memory).
fn mappable_fd(
    t: &Task,
    fd: i32,
    prot: u32,
    flags: u32,
) -> Result<Option<Arc<dyn MappableFile>>, Errno> {
    let f = t.fd_table().get(fd)?;
    if f.is_path_only() {
        return Err(Errno::EBADF);
    }
    if !f.readable() {
        return Err(Errno::EACCES);
    }
    let st = f.stat()?;
    match FileType::from_mode(st.st_mode) {
        FileType::Regular => {}
        FileType::CharDevice if st.st_rdev == DEV_ZERO_RDEV => return Ok(None),
        _ => return Err(Errno::ENODEV),
    }
    // Generated files cannot be mapped (as on Linux); their contents come from the
    // kernel's own state, which a fault (holding the mm lock) must not read.
    if matches!(f.vfs_path().mount.fstype(), "proc" | "sysfs") {
        return Err(Errno::ENODEV);
    }
    if prot & PROT_EXEC != 0 && f.vfs_path().mount.noexec() {
        return Err(Errno::EPERM);
    }
    if crate::mm::mapping_is_shared(flags)? && prot & PROT_WRITE != 0 && !f.writable() {
        return Err(Errno::EACCES);
    }
    Ok(Some(f))
}

/// An anonymous mapping (`MAP_ANONYMOUS`, or of `/dev/zero`). A shared one is backed,
/// as Linux's `shmem_zero_setup`, by an unnamed memory file of its length, so that the
/// processes that inherit it across `fork` share its pages even where none was touched
/// before the fork.
fn mmap_anonymous(
    t: &Task,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    lim: &VmLimits,
) -> Result<u64, Errno> {
    let shared = crate::mm::mapping_is_shared(flags)?;
    let page = crate::mm::PAGE;
    let size = len
        .checked_add(page - 1)
        .map(|l| l & !(page - 1))
        .filter(|&l| l > 0 && l < 1 << 47);
    let (Some(size), true) = (size, shared) else {
        return t.mm().mmap_limited(addr, len, prot, flags, None, lim);
    };
    let mf = t.mm().memory_file().clone();
    let dir = crate::fs::tmpfs::Tmpfs::new_root(mf, 0o700, 0, 0);
    let c = super::fs::fs_cred(t);
    let inode = crate::fs::Inode::create(
        dir.as_ref(),
        b"zero",
        crate::fs::NewNode::File { mode: 0o600 },
        &c,
    )?;
    crate::fs::Inode::unlink(dir.as_ref(), b"zero", false)?;
    inode.setattr(&crate::fs::SetAttr {
        size: Some(size),
        ..crate::fs::SetAttr::default()
    })?;
    let ops = inode.open(linux_abi::flags::open::O_RDWR)?;
    let file: Arc<dyn MappableFile> = crate::fs::OpenFile::new(
        crate::fs::VfsPath::anonymous(inode, b"/dev/zero (deleted)"),
        linux_abi::flags::open::O_RDWR,
        ops,
    );
    t.mm().mmap_limited(
        addr,
        len,
        prot,
        flags & !MAP_ANONYMOUS,
        Some((file, 0)),
        lim,
    )
}

/// `mmap(addr, len, prot, flags, fd, offset)`.
pub fn sys_mmap(
    t: &Task,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    fd: i32,
    off: u64,
) -> Result<u64, Errno> {
    let lim = vm_limits(t);
    if flags & MAP_LOCKED != 0 {
        // Locked memory is populated (`mlock`), within RLIMIT_MEMLOCK: Linux's
        // `can_do_mlock` (EPERM) and `mlock_future_ok` (EAGAIN).
        match memlock_limit(t) {
            Some(0) => return Err(Errno::EPERM),
            Some(l) if len.div_ceil(crate::mm::PAGE) > l / crate::mm::PAGE => {
                return Err(Errno::EAGAIN);
            }
            _ => {}
        }
    }
    if flags & MAP_ANONYMOUS != 0 {
        return mmap_anonymous(t, addr, len, prot, flags, &lim);
    }
    // Linux's order: the descriptor (EBADF), then the length and the mapping type
    // (EINVAL), then the file's access mode (EACCES, in `mappable_fd`).
    if t.fd_table().get(fd)?.is_path_only() {
        return Err(Errno::EBADF);
    }
    if len == 0 {
        return Err(Errno::EINVAL);
    }
    crate::mm::mapping_is_shared(flags)?;
    match mappable_fd(t, fd, prot, flags)? {
        Some(file) => t
            .mm()
            .mmap_limited(addr, len, prot, flags, Some((file, off)), &lim),
        None => mmap_anonymous(t, addr, len, prot, flags | MAP_ANONYMOUS, &lim),
    }
}

/// `munmap(addr, len)`.
pub fn sys_munmap(t: &Task, addr: u64, len: u64) -> Result<u64, Errno> {
    t.mm().munmap(addr, len).map(|()| 0)
}

/// `mprotect(addr, len, prot)`.
pub fn sys_mprotect(t: &Task, addr: u64, len: u64, prot: u32) -> Result<u64, Errno> {
    t.mm()
        .mprotect_limited(addr, len, prot, &vm_limits(t))
        .map(|()| 0)
}

/// `brk(addr)`: returns the new break (the old one when the request fails).
pub fn sys_brk(t: &Task, addr: u64) -> Result<u64, Errno> {
    Ok(t.mm().brk_limited(addr, &vm_limits(t)))
}

/// `mremap(old, old_len, new_len, flags, new_addr)`.
pub fn sys_mremap(
    t: &Task,
    old: u64,
    old_len: u64,
    new_len: u64,
    flags: u32,
    new_addr: u64,
) -> Result<u64, Errno> {
    t.mm()
        .mremap_limited(old, old_len, new_len, flags, new_addr, &vm_limits(t))
}

/// `madvise(addr, len, advice)`.
pub fn sys_madvise(t: &Task, addr: u64, len: u64, advice: u32) -> Result<u64, Errno> {
    t.mm().madvise(addr, len, advice).map(|()| 0)
}

/// `msync(addr, len, flags)`.
pub fn sys_msync(t: &Task, addr: u64, len: u64, flags: u32) -> Result<u64, Errno> {
    t.mm().msync(addr, len, flags).map(|()| 0)
}

/// `mincore(addr, len, vec)`.
pub fn sys_mincore(t: &Task, addr: u64, len: u64, vec: u64) -> Result<u64, Errno> {
    let mm = t.mm();
    let v = mm.mincore(addr, len)?;
    mm.copy_out(vec, &v).map(|()| 0)
}

/// The calling process's `RLIMIT_MEMLOCK` in bytes, `None` when it may lock without
/// limit (`CAP_IPC_LOCK`).
pub(crate) fn memlock_limit(t: &Task) -> Option<u64> {
    if t.creds().has_cap(crate::kernel::CAP_IPC_LOCK) {
        return None;
    }
    Some(
        t.thread_group()
            .rlimit(RLIMIT_MEMLOCK)
            .map_or(u64::MAX, |l| l.cur),
    )
}

/// The page-aligned range `mlock`/`munlock` act on (Linux rounds the start down).
fn lock_range(addr: u64, len: u64) -> Result<(u64, u64), Errno> {
    let page = crate::mm::PAGE;
    let start = addr & !(page - 1);
    let len = len
        .checked_add(addr - start)
        .and_then(|l| l.checked_add(page - 1))
        .ok_or(Errno::ENOMEM)?
        & !(page - 1);
    Ok((start, len))
}

/// `mlock(addr, len)`: pages are never swapped out in the sandbox, so locking is what
/// Linux's `mlock` does first: fault the whole range in. `EPERM` with an
/// `RLIMIT_MEMLOCK` of 0, `ENOMEM` for a range larger than the limit or not mapped; past
/// the sandbox's memory limit the OOM killer's `SIGKILL`. The pages locked by earlier
/// calls are not counted against the limit (only this call's).
pub fn sys_mlock(t: &Task, addr: u64, len: u64) -> Result<u64, Errno> {
    let limit = memlock_limit(t);
    if limit == Some(0) {
        return Err(Errno::EPERM);
    }
    let (start, len) = lock_range(addr, len)?;
    if limit.is_some_and(|l| len > l) {
        return Err(Errno::ENOMEM);
    }
    t.mm().populate_range(start, len).map(|()| 0)
}

/// `munlock(addr, len)`: `ENOMEM` when the range is not all mapped.
pub fn sys_munlock(t: &Task, addr: u64, len: u64) -> Result<u64, Errno> {
    let (start, len) = lock_range(addr, len)?;
    if !t.mm().is_mapped(start, len) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// `mlockall(flags)`: checked as Linux checks it (`EPERM` with an `RLIMIT_MEMLOCK` of 0,
/// `ENOMEM` for `MCL_CURRENT` when the address space is larger than the limit); nothing
/// is swapped in the sandbox, so nothing more is done.
pub fn sys_mlockall(t: &Task, flags: u32) -> Result<u64, Errno> {
    const MCL_CURRENT: u32 = 1;
    const MCL_ONFAULT: u32 = 4;
    if flags == 0 || flags & !7 != 0 || flags == MCL_ONFAULT {
        return Err(Errno::EINVAL);
    }
    let limit = memlock_limit(t);
    if limit == Some(0) {
        return Err(Errno::EPERM);
    }
    if flags & MCL_CURRENT != 0 && limit.is_some_and(|l| t.mm().virtual_size() > l) {
        return Err(Errno::ENOMEM);
    }
    Ok(0)
}

/// `munlockall()`.
pub fn sys_munlockall(_t: &Task) -> Result<u64, Errno> {
    Ok(0)
}
