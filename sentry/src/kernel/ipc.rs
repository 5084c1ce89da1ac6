//! The IPC namespace of one kernel: System V shared memory segments, semaphore sets,
//! message queues and the `SEM_UNDO` adjustments, and the POSIX message queues (an
//! `mqueue` file system, `fs::mqueue`). The system calls that use it live in
//! `syscalls::ipc` and `syscalls::ipc::mqueue`; the kernel owns the state, and applies a
//! process's undo adjustments when it exits ([`IpcNamespace::process_exited`]).

use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use linux_abi::Errno;

use super::Task;
use crate::fs::OpenFile;
use crate::fs::mqueue::Mqueue;
use crate::waiter::{WaitQueue, events};

/// Largest semaphore value (`SEMVMX`).
pub(crate) const SEMVMX: i32 = 32767;

/// Permissions of an IPC object (`struct ipc64_perm`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Perm {
    pub(crate) key: i32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) cuid: u32,
    pub(crate) cgid: u32,
    pub(crate) mode: u32,
    pub(crate) seq: u16,
}

impl Perm {
    pub(crate) fn new(t: &Task, key: i32, mode: u32) -> Perm {
        let c = t.creds();
        Perm {
            key,
            uid: c.euid,
            gid: c.egid,
            cuid: c.euid,
            cgid: c.egid,
            mode: mode & 0o777,
            seq: 0,
        }
    }

    pub(crate) fn bytes(&self) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0..4].copy_from_slice(&self.key.to_ne_bytes());
        b[4..8].copy_from_slice(&self.uid.to_ne_bytes());
        b[8..12].copy_from_slice(&self.gid.to_ne_bytes());
        b[12..16].copy_from_slice(&self.cuid.to_ne_bytes());
        b[16..20].copy_from_slice(&self.cgid.to_ne_bytes());
        b[20..24].copy_from_slice(&self.mode.to_ne_bytes());
        b[24..26].copy_from_slice(&self.seq.to_ne_bytes());
        b
    }

    /// Checks `want` (4 read, 2 write) for `t`.
    pub(crate) fn check(&self, t: &Task, want: u32) -> Result<(), Errno> {
        let c = t.creds();
        if c.euid == 0 {
            return Ok(());
        }
        let bits = if c.euid == self.uid || c.euid == self.cuid {
            self.mode >> 6
        } else if c.egid == self.gid || c.egid == self.cgid || c.groups.contains(&self.gid) {
            self.mode >> 3
        } else {
            self.mode
        } & 7;
        if bits & want == want {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    pub(crate) fn owner(&self, t: &Task) -> Result<(), Errno> {
        let c = t.creds();
        if c.euid == 0 || c.euid == self.uid || c.euid == self.cuid {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// `IPC_SET`: uid, gid and mode from a user `ipc64_perm`.
    pub(crate) fn set_from(&mut self, raw: &[u8]) {
        let word = |o: usize| u32::from_ne_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
        self.uid = word(4);
        self.gid = word(8);
        self.mode = (self.mode & !0o777) | (word(20) & 0o777);
    }
}

pub(crate) fn now_secs() -> i64 {
    crate::fs::now().tv_sec
}

#[derive(Debug)]
pub(crate) struct Shm {
    pub(crate) perm: Perm,
    pub(crate) size: u64,
    pub(crate) file: Arc<OpenFile>,
    pub(crate) cpid: i32,
    pub(crate) lpid: i32,
    pub(crate) atime: i64,
    pub(crate) dtime: i64,
    pub(crate) ctime: i64,
}

impl Shm {
    pub(crate) fn nattch(&self) -> u64 {
        // The registry holds one reference; every mapping holds another.
        Arc::strong_count(&self.file).saturating_sub(1) as u64
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sem {
    pub(crate) val: i32,
    pub(crate) pid: i32,
}

#[derive(Debug)]
pub(crate) struct SemSet {
    pub(crate) perm: Perm,
    pub(crate) sems: Vec<Sem>,
    pub(crate) otime: i64,
    pub(crate) ctime: i64,
    pub(crate) queue: Arc<WaitQueue>,
    pub(crate) removed: Arc<std::sync::atomic::AtomicBool>,
    /// Waiters for an increase (`semncnt`) and for zero (`semzcnt`), per semaphore.
    pub(crate) ncnt: Vec<u32>,
    pub(crate) zcnt: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct Msg {
    pub(crate) mtype: i64,
    pub(crate) data: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct MsgQueue {
    pub(crate) perm: Perm,
    pub(crate) msgs: VecDeque<Msg>,
    pub(crate) bytes: usize,
    pub(crate) qbytes: usize,
    pub(crate) stime: i64,
    pub(crate) rtime: i64,
    pub(crate) ctime: i64,
    pub(crate) lspid: i32,
    pub(crate) lrpid: i32,
    pub(crate) queue: Arc<WaitQueue>,
    pub(crate) removed: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, Default)]
pub(crate) struct Namespace {
    pub(crate) next_id: i32,
    pub(crate) shm: BTreeMap<i32, Shm>,
    pub(crate) sem: BTreeMap<i32, SemSet>,
    pub(crate) msg: BTreeMap<i32, MsgQueue>,
    /// `SEM_UNDO` adjustments: (process, set, semaphore) -> value to add at exit.
    pub(crate) undo: BTreeMap<(i32, i32, u16), i32>,
}

impl Namespace {
    pub(crate) fn alloc_id(&mut self) -> i32 {
        // Ids of removed objects are not reused soon (like Linux's sequence numbers).
        self.next_id = (self.next_id + 1) & 0x3fff_ffff;
        self.next_id
    }
}

/// One kernel's IPC namespace: the System V objects and the POSIX message queues (the
/// namespace's `mqueue` file system, `fs::mqueue`).
#[derive(Debug)]
pub(crate) struct IpcNamespace {
    sysv: Mutex<Namespace>,
    mqueue: Arc<Mqueue>,
    /// The internal mount `mq_open`'s descriptors are on.
    mq_mount: Arc<crate::fs::Mount>,
}

impl Default for IpcNamespace {
    fn default() -> Self {
        let mqueue = Mqueue::new();
        IpcNamespace {
            sysv: Mutex::default(),
            mq_mount: Mqueue::internal_mount(&mqueue),
            mqueue,
        }
    }
}

impl IpcNamespace {
    /// The POSIX message queues (the namespace's `mqueue` file system).
    pub(crate) fn mqueue(&self) -> &Arc<Mqueue> {
        &self.mqueue
    }

    /// The mount the descriptors of `mq_open` are on (named `/<queue>` from its root).
    pub(crate) fn mq_mount(&self) -> &Arc<crate::fs::Mount> {
        &self.mq_mount
    }

    /// Locks the namespace.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Namespace> {
        self.sysv.lock()
    }

    /// Applies and forgets the `SEM_UNDO` adjustments of process `tgid` (call when a process
    /// exits): each semaphore moves back by what the process's undoable operations did,
    /// clamped to `[0, SEMVMX]`, and its waiters are woken.
    pub(crate) fn process_exited(&self, tgid: i32) {
        let mut n = self.lock();
        let mine: Vec<((i32, i32, u16), i32)> = n
            .undo
            .range((tgid, i32::MIN, 0)..=(tgid, i32::MAX, u16::MAX))
            .map(|(k, v)| (*k, *v))
            .collect();
        if mine.is_empty() {
            return;
        }
        let mut queues = Vec::new();
        for ((_, id, num), adj) in mine {
            n.undo.remove(&(tgid, id, num));
            if let Some(set) = n.sem.get_mut(&id)
                && let Some(sem) = set.sems.get_mut(usize::from(num))
            {
                sem.val = (sem.val + adj).clamp(0, SEMVMX);
                sem.pid = tgid;
                queues.push(set.queue.clone());
            }
        }
        drop(n);
        for q in queues {
            q.notify(events::ALL);
        }
    }
}

/// `RLIMIT_MSGQUEUE`.
const RLIMIT_MSGQUEUE: usize = 12;

impl crate::fs::mqueue::Creators for super::Kernel {
    /// The sandbox's `fs.mqueue` tunables, and the real user and `RLIMIT_MSGQUEUE` of
    /// the process behind `cred` (none for the Sentry itself).
    fn creator(&self, cred: &crate::fs::FsCred) -> crate::fs::mqueue::Creator {
        let s = self.sysctls();
        let task = self.task(cred.caller.tid);
        crate::fs::mqueue::Creator {
            cred: cred.clone(),
            ruid: task.as_ref().map_or(cred.uid, |t| t.creds().uid),
            rlimit: task
                .and_then(|t| t.thread_group().rlimit(RLIMIT_MSGQUEUE))
                .map_or(u64::MAX, |r| r.cur),
            msg_max: s.get_int("fs/mqueue/msg_max"),
            msgsize_max: s.get_int("fs/mqueue/msgsize_max"),
            queues_max: s.get_int("fs/mqueue/queues_max"),
            msg_default: s.get_int("fs/mqueue/msg_default"),
            msgsize_default: s.get_int("fs/mqueue/msgsize_default"),
        }
    }
}
