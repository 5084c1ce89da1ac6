//! System V IPC: shared memory (`shmget`, `shmat`, `shmdt`, `shmctl`), semaphores
//! (`semget`, `semop`, `semtimedop`, `semctl`) and message queues (`msgget`, `msgsnd`,
//! `msgrcv`, `msgctl`); and POSIX message queues (`mq_*`, in `mqueue.rs`).
//!
//! The objects live in one IPC namespace per Sentry process (a sandbox runs one kernel).
//! A shared memory segment is an unlinked tmpfs file, mapped `MAP_SHARED` by `shmat`, so
//! every attachment uses the same pages; its attach count is the number of mappings
//! holding the file. Semaphore sets and message queues own a [`WaitQueue`]; blocked
//! `semop`/`msgsnd`/`msgrcv` sleep on it and see `EIDRM` when the object is removed.
//!
//! Ids are Linux's: an index (given cyclically, `kernel::ipc::Ids`) plus 32768 times a
//! sequence number; the `*_STAT`/`*_STAT_ANY` commands take an index, the `*_INFO`
//! commands return the highest index in use. Limits come from the sandbox's sysctls
//! (`kernel.shmmax`, `shmall`, `shmmni`, `msgmax`, `msgmnb`, `msgmni`, `sem`), and
//! `kernel.{msg,sem,shm}_next_id` choose the next id. The namespace's objects are listed
//! in `/proc/sysvipc/{msg,sem,shm}` (`Namespace::proc_*`).
//!
//! `SEM_UNDO` adjustments are kept per process and applied by
//! the kernel's IPC namespace (`kernel/ipc.rs`), which
//! the process exit path calls. Not implemented: a removed segment that is still
//! attached (`SHM_DEST`) leaves the namespace at once instead of when its last mapping
//! goes; `SHM_LOCK` only sets the mode bit (the sandbox never swaps).

use parking_lot::MutexGuard;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linux_abi::Errno;
use linux_abi::flags::mm::{MAP_FIXED, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE};
use linux_abi::flags::open::O_RDWR;
use linux_abi::types::Timespec;

use super::SyscallEntry;
use crate::fs::{Inode, NewNode, OpenFile, SetAttr, VfsPath};
use crate::kernel::Task;
use crate::mm::{MappableFile, PAGE};

mod mqueue;
mod msg;
mod sem;
mod shm;
use crate::waiter::{WaitQueue, block_on, events};
pub use mqueue::*;
pub use msg::*;
pub use sem::*;
pub use shm::*;

/// The System V IPC system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_SHMGET => shmget(Int, Uint, Oct) = sys_shmget;
    SYS_SHMAT => shmat(Int, Ptr, Hex) -> Ptr = sys_shmat;
    SYS_SHMDT => shmdt(Ptr) = sys_shmdt;
    SYS_SHMCTL => shmctl(Int, Int, Ptr) = sys_shmctl;
    SYS_SEMGET => semget(Int, Int, Oct) = sys_semget;
    SYS_SEMOP => semop(Int, Ptr, Uint) = sys_semop;
    SYS_SEMTIMEDOP => semtimedop(Int, Ptr, Uint, Ptr) = sys_semtimedop;
    SYS_SEMCTL => semctl(Int, Int, Int, Hex) = sys_semctl;
    SYS_MSGGET => msgget(Int, Oct) = sys_msgget;
    SYS_MSGSND => msgsnd(Int, Ptr, Uint, Hex) = sys_msgsnd;
    SYS_MSGRCV => msgrcv(Int, Ptr, Uint, Int, Hex) = sys_msgrcv;
    SYS_MSGCTL => msgctl(Int, Int, Ptr) = sys_msgctl;
    SYS_MQ_OPEN => mq_open(Str, OpenFlags, Oct, Ptr) -> Fd = sys_mq_open;
    SYS_MQ_UNLINK => mq_unlink(Str) = sys_mq_unlink;
    SYS_MQ_TIMEDSEND => mq_timedsend(Fd, Ptr, Uint, Uint, Ptr) = sys_mq_timedsend;
    SYS_MQ_TIMEDRECEIVE => mq_timedreceive(Fd, Ptr, Uint, Ptr, Ptr) = sys_mq_timedreceive;
    SYS_MQ_NOTIFY => mq_notify(Fd, Ptr) = sys_mq_notify;
    SYS_MQ_GETSETATTR => mq_getsetattr(Fd, Ptr, Ptr) = sys_mq_getsetattr;
];

const IPC_PRIVATE: i32 = 0;
const IPC_CREAT: u32 = 0o1000;
const IPC_EXCL: u32 = 0o2000;
const IPC_NOWAIT: u32 = 0o4000;
const SEM_UNDO: i16 = 0x1000;
const IPC_RMID: i32 = 0;
const IPC_SET: i32 = 1;
const IPC_STAT: i32 = 2;
const IPC_INFO: i32 = 3;
/// `IPC_64` is or'ed into commands by glibc.
const IPC_64: i32 = 0x100;

const SHM_RDONLY: u32 = 0o10000;
const SHM_RND: u32 = 0o20000;
const SHM_EXEC: u32 = 0o100000;
const SHM_REMAP: u32 = 0o40000;
const SHM_HUGETLB: u32 = 0o4000;
/// The `shm_perm.mode` bit of a segment locked with `SHM_LOCK`.
const SHM_LOCKED: u32 = 0o2000;
const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;
const SHMMIN: u64 = 1;

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;
use crate::kernel::ipc::SEMVMX;

const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;
const MSG_COPY: u32 = 0o40000;
const MSG_NOERROR: u32 = 0o10000;
const MSG_EXCEPT: u32 = 0o20000;

use crate::kernel::ipc::{
    Ids, Msg, MsgQueue, Namespace, Perm, Sem, SemSet, Shm, by_index, max_index, now_secs,
};

/// A new id for an object with `key`, `in_use` of them now and at most sysctl `limit`
/// (`ENOSPC`), at the id sysctl `next` asks for if it is set (which then goes back to -1,
/// as on Linux).
fn new_id(
    t: &Task,
    ids: &mut Ids,
    in_use: usize,
    key: i32,
    limit: &str,
    next: &str,
) -> Result<(i32, u16), Errno> {
    let s = t.kernel().sysctls();
    let want = s.get_int(next);
    let (id, seq) = ids.alloc(in_use, s.get_int(limit), want, key)?;
    if want >= 0 {
        s.set(next, b"-1")?;
    }
    Ok((id, seq))
}

/// The `kernel.sem` sysctl: semmsl, semmns, semopm, semmni.
fn sem_limits(t: &Task) -> [i64; 4] {
    let text = t.kernel().sysctls().get("kernel/sem").unwrap_or_default();
    let mut v = [32000, 1_024_000_000, 500, 32000];
    for (slot, w) in v.iter_mut().zip(text.split_whitespace()) {
        *slot = w.parse().unwrap_or(*slot);
    }
    v
}

/// The calling task's IPC namespace (its kernel's).
fn ns(t: &Task) -> MutexGuard<'_, Namespace> {
    t.kernel().ipc().lock()
}

/// Resolves `key` for a `*get` call: an existing id of `map` (found by `ids`), or
/// `None` to create. `more` checks an existing object (its size) before the
/// permissions, as Linux does.
fn lookup_key<T>(
    t: &Task,
    ids: &Ids,
    map: &BTreeMap<i32, T>,
    perm_of: impl Fn(&T) -> Perm,
    key: i32,
    flags: u32,
    more: impl Fn(&T) -> Result<(), Errno>,
) -> Result<Option<i32>, Errno> {
    if key == IPC_PRIVATE {
        return Ok(None);
    }
    match ids.find_key(key).and_then(|id| Some((id, map.get(&id)?))) {
        Some((id, o)) => {
            if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            more(o)?;
            let want = (flags >> 6) & 7 & 6;
            perm_of(o).check(t, want)?;
            Ok(Some(id))
        }
        None if flags & IPC_CREAT != 0 => Ok(None),
        None => Err(Errno::ENOENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(types: &[i64]) -> VecDeque<Msg> {
        types
            .iter()
            .map(|&mtype| Msg {
                mtype,
                data: vec![],
            })
            .collect()
    }

    #[test]
    fn msgrcv_selects_by_type() {
        let q = msgs(&[3, 1, 2, 1]);
        assert_eq!(pick(&q, 0, 0), Some(0));
        assert_eq!(pick(&q, 2, 0), Some(2));
        assert_eq!(pick(&q, 3, MSG_EXCEPT), Some(1));
        assert_eq!(pick(&q, -2, 0), Some(1), "lowest type <= 2, first of them");
        assert_eq!(pick(&q, 5, 0), None);
        assert_eq!(pick(&VecDeque::new(), 0, 0), None);
    }

    #[test]
    fn sem_undo_applies_at_process_exit() {
        let ipc = crate::kernel::ipc::IpcNamespace::default();
        let id = {
            let mut n = ipc.lock();
            let id = 1;
            n.sem.insert(
                id,
                SemSet {
                    perm: Perm::default(),
                    sems: vec![Sem { val: 0, pid: 0 }],
                    otime: 0,
                    ctime: 0,
                    queue: Arc::new(WaitQueue::new()),
                    removed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
                    ncnt: vec![0],
                    zcnt: vec![0],
                },
            );
            // Process 4242 did +3 with SEM_UNDO; the set is at 3 now.
            n.sem.get_mut(&id).unwrap().sems[0].val = 3;
            n.undo.insert((4242, id, 0), -3);
            id
        };
        ipc.process_exited(4243);
        assert_eq!(
            ipc.lock().sem[&id].sems[0].val,
            3,
            "another process's exit changes nothing"
        );
        ipc.process_exited(4242);
        assert_eq!(ipc.lock().sem[&id].sems[0].val, 0);
        assert!(!ipc.lock().undo.keys().any(|k| k.0 == 4242));
    }

    #[test]
    fn semop_is_all_or_nothing() {
        let mut set = SemSet {
            perm: Perm::default(),
            sems: vec![Sem { val: 1, pid: 0 }, Sem { val: 0, pid: 0 }],
            otime: 0,
            ctime: 0,
            queue: Arc::new(WaitQueue::new()),
            removed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            ncnt: vec![0; 2],
            zcnt: vec![0; 2],
        };
        let ops = [
            SemBuf {
                num: 0,
                op: -1,
                flg: 0,
            },
            SemBuf {
                num: 1,
                op: -1,
                flg: 0,
            },
        ];
        assert_eq!(try_semop(&mut set, &ops, 7).err().map(|e| e.1), Some(1));
        assert_eq!(set.sems[0].val, 1, "nothing applied");
        let ops = [
            SemBuf {
                num: 1,
                op: 0,
                flg: 0,
            },
            SemBuf {
                num: 0,
                op: -1,
                flg: 0,
            },
        ];
        assert!(try_semop(&mut set, &ops, 7).is_ok());
        assert_eq!((set.sems[0].val, set.sems[0].pid), (0, 7));
        let ops = [SemBuf {
            num: 0,
            op: 0,
            flg: 0,
        }];
        assert!(
            try_semop(&mut set, &ops, 7).is_ok(),
            "wait-for-zero passes at zero"
        );
    }
}
