//! Calls that look into another process: `kcmp` (do two tasks share a kernel object?)
//! and `process_vm_readv`/`process_vm_writev` (copy between two address spaces).
//!
//! Both need the caller to pass Linux's ptrace access check on the tasks they name
//! ([`Task::may_access`]). Memory is copied through the Sentry's memory managers of
//! both processes, page by page, so that a fault part-way reports the bytes moved so far
//! as Linux does; no host system call ever sees an application-chosen address.

use std::cmp::Ordering;
use std::sync::Arc;

use linux_abi::Errno;

use super::SyscallEntry;
use crate::kernel::Task;
use crate::mm::{MemoryManager, PAGE};

/// The cross-process system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_PROCESS_VM_READV => process_vm_readv(Int, Ptr, Hex, Ptr, Hex, Hex) = sys_process_vm_readv;
    SYS_PROCESS_VM_WRITEV => process_vm_writev(Int, Ptr, Hex, Ptr, Hex, Hex) = sys_process_vm_writev;
    SYS_KCMP => kcmp(Int, Int, Int, Hex, Hex) = sys_kcmp;
];

const KCMP_FILE: i32 = 0;
const KCMP_VM: i32 = 1;
const KCMP_FILES: i32 = 2;
const KCMP_FS: i32 = 3;
const KCMP_SIGHAND: i32 = 4;
const KCMP_IO: i32 = 5;
const KCMP_SYSVSEM: i32 = 6;
const KCMP_EPOLL_TFD: i32 = 7;

/// `kcmp`'s answer for two object identities: 0 equal, 1 less, 2 greater. Linux orders
/// obfuscated kernel pointers; any consistent total order will do, so this orders the
/// objects' addresses in the Sentry.
fn kcmp_order(a: usize, b: usize) -> u64 {
    match a.cmp(&b) {
        Ordering::Equal => 0,
        Ordering::Less => 1,
        Ordering::Greater => 2,
    }
}

fn addr<T: ?Sized>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a).cast::<()>() as usize
}

/// The file `idx` of `t` (`EBADF` when there is none); Linux reads the index as an
/// `unsigned int`.
fn file_of(t: &Task, idx: u64) -> Result<Arc<crate::fs::file::OpenFile>, Errno> {
    let fd = i32::try_from(idx as u32).map_err(|_| Errno::EBADF)?;
    t.fd_table().get(fd)
}

/// The identity of `t`'s System V semaphore undo list. The Sentry keeps undo
/// adjustments per process (`CLONE_SYSVSEM` does not share them); a process that has
/// none has no list, like Linux's `NULL` `undo_list`, and all such compare equal.
fn sysvsem_id(t: &Task) -> usize {
    let tgid = t.tgid();
    let has = t
        .kernel()
        .ipc()
        .lock()
        .undo
        .keys()
        .any(|&(pid, _, _)| pid == tgid);
    if has { tgid as usize } else { 0 }
}

/// `struct kcmp_epoll_slot`.
#[derive(Clone, Copy, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
#[repr(C)]
struct KcmpEpollSlot {
    efd: u32,
    tfd: u32,
    toff: u32,
}

/// `kcmp(pid1, pid2, type, idx1, idx2)`: whether tasks `pid1` and `pid2` share the
/// kernel object `type` names (0), or how the two objects order (1, 2).
pub fn sys_kcmp(
    t: &Task,
    pid1: i32,
    pid2: i32,
    kind: i32,
    idx1: u64,
    idx2: u64,
) -> Result<u64, Errno> {
    let k = t.kernel();
    let (Some(a), Some(b)) = (k.task(pid1), k.task(pid2)) else {
        return Err(Errno::ESRCH);
    };
    if !t.may_access(&a) || !t.may_access(&b) {
        return Err(Errno::EPERM);
    }
    let (x, y) = match kind {
        KCMP_FILE => (addr(&file_of(&a, idx1)?), addr(&file_of(&b, idx2)?)),
        KCMP_VM => (addr(&a.mm()), addr(&b.mm())),
        KCMP_FILES => (addr(&a.fd_table()), addr(&b.fd_table())),
        KCMP_FS => (addr(&a.fs_context()), addr(&b.fs_context())),
        // Signal handlers live in the thread group.
        KCMP_SIGHAND => (addr(a.thread_group()), addr(b.thread_group())),
        // The Sentry keeps no per-task I/O context (Linux's is NULL until a task does
        // block I/O through an I/O scheduler): every task has the same, none.
        KCMP_IO => (0, 0),
        KCMP_SYSVSEM => (sysvsem_id(&a), sysvsem_id(&b)),
        KCMP_EPOLL_TFD => {
            let slot: KcmpEpollSlot = t.mm().read_obj(idx2)?;
            let f = file_of(&a, idx1)?;
            let ep = b
                .fd_table()
                .get(i32::try_from(slot.efd).map_err(|_| Errno::EBADF)?)?;
            let ep_ops = ep.ops();
            let epoll = ep_ops
                .as_any()
                .and_then(|x| x.downcast_ref::<crate::fs::epoll::Epoll>())
                .ok_or(Errno::EINVAL)?;
            let tfd = i32::try_from(slot.tfd).map_err(|_| Errno::ENOENT)?;
            let target = epoll.target(tfd, slot.toff).ok_or(Errno::ENOENT)?;
            (addr(&f), addr(&target))
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok(kcmp_order(x, y))
}

/// Linux's `MAX_RW_COUNT`: the most one call transfers.
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// A position in a list of local iovecs.
struct IovCursor {
    iovs: Vec<(u64, u64)>,
    idx: usize,
    off: u64,
    left: u64,
}

impl IovCursor {
    fn new(iovs: Vec<(u64, u64)>) -> IovCursor {
        let mut left = 0u64;
        let mut kept = Vec::with_capacity(iovs.len());
        for (base, len) in iovs {
            // Like import_iovec: the total is cut at MAX_RW_COUNT.
            let len = len.min(MAX_RW_COUNT - left);
            left += len;
            if len > 0 {
                kept.push((base, len));
            }
        }
        IovCursor {
            iovs: kept,
            idx: 0,
            off: 0,
            left,
        }
    }

    /// The next piece of at most `max` bytes that stays within one page.
    fn piece(&self, max: u64) -> Option<(u64, u64)> {
        let &(base, len) = self.iovs.get(self.idx)?;
        let a = base.wrapping_add(self.off);
        let n = (len - self.off).min(PAGE - a % PAGE).min(max);
        Some((a, n))
    }

    fn advance(&mut self, n: u64) {
        self.off += n;
        self.left -= n;
        if self
            .iovs
            .get(self.idx)
            .is_some_and(|&(_, len)| self.off == len)
        {
            self.idx += 1;
            self.off = 0;
        }
    }
}

/// Moves bytes between the local iovecs (in `local`) and the remote ones (in `remote`)
/// one page at a time; `write` copies local to remote. Returns the bytes moved, or the
/// error when a fault stopped it before any byte moved.
fn transfer(
    local: &MemoryManager,
    remote: &MemoryManager,
    lcur: &mut IovCursor,
    rvec: &[(u64, u64)],
    write: bool,
) -> Result<u64, Errno> {
    let mut done = 0u64;
    let mut buf = vec![0u8; PAGE as usize];
    let mut run = || -> Result<(), Errno> {
        for &(rbase, rlen) in rvec {
            let mut roff = 0u64;
            while roff < rlen && lcur.left > 0 {
                let ra = rbase.checked_add(roff).ok_or(Errno::EFAULT)?;
                let rn = (PAGE - ra % PAGE).min(rlen - roff).min(lcur.left);
                let chunk = &mut buf[..rn as usize];
                if write {
                    // Gather from the local side; on a local fault, what was gathered
                    // still reaches the remote page before the error.
                    let mut got = 0u64;
                    let mut err = None;
                    while got < rn {
                        let Some((la, ln)) = lcur.piece(rn - got) else {
                            break;
                        };
                        let r = got as usize..(got + ln) as usize;
                        if let Err(e) = local.copy_in(la, &mut chunk[r]) {
                            err = Some(e);
                            break;
                        }
                        lcur.advance(ln);
                        got += ln;
                    }
                    remote.copy_out(ra, &chunk[..got as usize])?;
                    done += got;
                    if let Some(e) = err {
                        return Err(e);
                    }
                } else {
                    remote.copy_in(ra, chunk)?;
                    let mut put = 0u64;
                    while put < rn {
                        let Some((la, ln)) = lcur.piece(rn - put) else {
                            break;
                        };
                        local.copy_out(la, &chunk[put as usize..(put + ln) as usize])?;
                        lcur.advance(ln);
                        put += ln;
                        done += ln;
                    }
                }
                roff += rn;
            }
        }
        Ok(())
    };
    match run() {
        Err(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// `process_vm_readv` and `process_vm_writev`, in Linux's order of checks; `local` and
/// `remote` are (iovec array, count).
fn process_vm_rw(
    t: &Task,
    pid: i32,
    (lvec, liovcnt): (u64, u64),
    (rvec, riovcnt): (u64, u64),
    flags: u64,
    write: bool,
) -> Result<u64, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let mut lcur = IovCursor::new(mm.read_iovecs(lvec, liovcnt)?);
    if lcur.left == 0 {
        return Ok(0);
    }
    let rv = mm.read_iovecs(rvec, riovcnt)?;
    if rv.iter().all(|&(_, len)| len == 0) {
        return Ok(0);
    }
    let target = t.kernel().task(pid).ok_or(Errno::ESRCH)?;
    if !t.may_access(&target) {
        return Err(Errno::EPERM);
    }
    if target.is_finished() {
        return Err(Errno::ESRCH);
    }
    let remote = target.mm();
    transfer(&mm, &remote, &mut lcur, &rv, write)
}

/// `process_vm_readv(pid, lvec, liovcnt, rvec, riovcnt, flags)`: copies from process
/// `pid`'s memory at `rvec` into the caller's at `lvec`.
pub fn sys_process_vm_readv(
    t: &Task,
    pid: i32,
    lvec: u64,
    liovcnt: u64,
    rvec: u64,
    riovcnt: u64,
    flags: u64,
) -> Result<u64, Errno> {
    process_vm_rw(t, pid, (lvec, liovcnt), (rvec, riovcnt), flags, false)
}

/// `process_vm_writev(pid, lvec, liovcnt, rvec, riovcnt, flags)`: copies the caller's
/// memory at `lvec` into process `pid`'s at `rvec`.
pub fn sys_process_vm_writev(
    t: &Task,
    pid: i32,
    lvec: u64,
    liovcnt: u64,
    rvec: u64,
    riovcnt: u64,
    flags: u64,
) -> Result<u64, Errno> {
    process_vm_rw(t, pid, (lvec, liovcnt), (rvec, riovcnt), flags, true)
}
