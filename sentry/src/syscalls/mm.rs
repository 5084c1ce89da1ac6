//! Memory system calls: `mmap`, `munmap`, `mprotect`, `brk`, `mremap`, `madvise`, `msync`,
//! `mincore` and the `mlock` family (accepted; nothing is ever swapped in the sandbox).

use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mm::{MAP_ANONYMOUS, MAP_SHARED, MAP_SHARED_VALIDATE, PROT_EXEC, PROT_WRITE};

use super::SyscallEntry;
use crate::fs::FileType;
use crate::kernel::Task;
use crate::mm::MappableFile;

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
    SYS_MUNLOCK => munlock(Ptr, Uint) = sys_mlock;
    SYS_MLOCKALL => mlockall(Hex) = sys_mlockall;
    SYS_MUNLOCKALL => munlockall() = sys_munlockall;
];

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
    let shared = matches!(
        flags & MAP_SHARED_VALIDATE,
        MAP_SHARED | MAP_SHARED_VALIDATE
    );
    if shared && prot & PROT_WRITE != 0 && !f.writable() {
        return Err(Errno::EACCES);
    }
    Ok(Some(f))
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
    if flags & MAP_ANONYMOUS != 0 {
        return t.mm().mmap(addr, len, prot, flags, None);
    }
    match mappable_fd(t, fd, prot, flags)? {
        Some(file) => t.mm().mmap(addr, len, prot, flags, Some((file, off))),
        None => t.mm().mmap(addr, len, prot, flags | MAP_ANONYMOUS, None),
    }
}

/// `munmap(addr, len)`.
pub fn sys_munmap(t: &Task, addr: u64, len: u64) -> Result<u64, Errno> {
    t.mm().munmap(addr, len).map(|()| 0)
}

/// `mprotect(addr, len, prot)`.
pub fn sys_mprotect(t: &Task, addr: u64, len: u64, prot: u32) -> Result<u64, Errno> {
    t.mm().mprotect(addr, len, prot).map(|()| 0)
}

/// `brk(addr)`: returns the new break (the old one when the request fails).
pub fn sys_brk(t: &Task, addr: u64) -> Result<u64, Errno> {
    Ok(t.mm().brk(addr))
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
    t.mm().mremap(old, old_len, new_len, flags, new_addr)
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

/// `mlock`/`munlock`: accepted without effect.
pub fn sys_mlock(_t: &Task, _addr: u64, _len: u64) -> Result<u64, Errno> {
    Ok(0)
}

/// `mlockall(flags)`: accepted without effect.
pub fn sys_mlockall(_t: &Task, flags: u32) -> Result<u64, Errno> {
    if flags == 0 || flags & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// `munlockall()`.
pub fn sys_munlockall(_t: &Task) -> Result<u64, Errno> {
    Ok(0)
}
