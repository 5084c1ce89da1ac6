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

    /// Bytes of the segment in memory (its file's allocated blocks).
    pub(crate) fn rss(&self) -> u64 {
        self.file
            .inode()
            .stat()
            .map_or(0, |st| st.st_blocks.max(0) as u64 * 512)
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

/// Index slots of one kind of object (`IPCMNI`): an id is `seq * IPCMNI + index`.
pub(crate) const IPCMNI: i32 = 32768;

/// The shortest cycle of indexes (Linux's `ipc_min_cycle`, a radix tree node's slots).
const MIN_CYCLE: i32 = 64;

/// Linux's largest sequence number for `IPCMNI` slots (`INT_MAX / IPCMNI`).
const SEQ_MAX: i32 = i32::MAX / IPCMNI;

/// The id allocator of one kind of object (Linux's `struct ipc_ids`): indexes are given
/// cyclically (the first free one after the last given, wrapping at the end of a cycle
/// of `max(64, 1.5 * in use)` indexes), and the sequence number moves on when they wrap, so a removed object's id does not come back soon. It
/// also finds objects by key, without a walk over all of them.
#[derive(Debug)]
pub(crate) struct Ids {
    seq: i32,
    last_idx: i32,
    /// Where the cyclic search for a free index starts.
    cursor: i32,
    /// One bit per index in use.
    used: Vec<u64>,
    /// Key -> id of the objects that have a key (not `IPC_PRIVATE`).
    keys: std::collections::HashMap<i32, i32>,
}

impl Default for Ids {
    fn default() -> Self {
        Ids {
            seq: 0,
            last_idx: -1,
            cursor: 0,
            used: vec![0; IPCMNI as usize / 64],
            keys: std::collections::HashMap::new(),
        }
    }
}

/// The index of `id` (`ipcid_to_idx`).
pub(crate) fn id_index(id: i32) -> i32 {
    id.rem_euclid(IPCMNI)
}

impl Ids {
    /// The lowest free index at or above `start` and below `end`.
    fn free_from(&self, start: i32, end: i32) -> Option<i32> {
        let start = usize::try_from(start).ok()?;
        (start / 64..self.used.len())
            .find_map(|w| {
                let mut bits = self.used[w];
                if w == start / 64 {
                    bits |= (1u64 << (start % 64)) - 1;
                }
                (bits != u64::MAX).then(|| (w * 64) as i32 + bits.trailing_ones() as i32)
            })
            .filter(|&i| i < end)
    }

    /// A new id for an object with `key` when `in_use` objects exist and at most `limit`
    /// may (`ENOSPC` beyond). `next_id` is the `kernel.*_next_id` sysctl: when not
    /// negative it asks for that id (its index or the lowest free one above, with its
    /// sequence; the cyclic search does not move). Returns the id and its sequence
    /// number.
    pub(crate) fn alloc(
        &mut self,
        in_use: usize,
        limit: i64,
        next_id: i64,
        key: i32,
    ) -> Result<(i32, u16), Errno> {
        if in_use as i64 >= limit.min(i64::from(IPCMNI)) {
            return Err(Errno::ENOSPC);
        }
        let (idx, seq) = match i32::try_from(next_id) {
            Ok(want) if want >= 0 => (
                self.free_from(id_index(want), IPCMNI)
                    .ok_or(Errno::ENOSPC)?,
                want / IPCMNI,
            ),
            _ => {
                // The cycle is at least MIN_CYCLE indexes long, and half as long again
                // as the objects in use (Linux's ipc_idr_alloc).
                let end = ((in_use as i32).saturating_mul(3) / 2).clamp(MIN_CYCLE, IPCMNI);
                let idx = self
                    .free_from(self.cursor, end)
                    .or_else(|| self.free_from(0, end))
                    .ok_or(Errno::ENOSPC)?;
                self.cursor = (idx + 1) % IPCMNI;
                if idx <= self.last_idx {
                    self.seq += 1;
                    if self.seq >= SEQ_MAX {
                        self.seq = 0;
                    }
                }
                self.last_idx = idx;
                (idx, self.seq)
            }
        };
        self.used[idx as usize / 64] |= 1 << (idx % 64);
        let id = seq * IPCMNI + idx;
        if key != 0 {
            self.keys.insert(key, id);
        }
        Ok((id, seq as u16))
    }

    /// The id of the object with `key`.
    pub(crate) fn find_key(&self, key: i32) -> Option<i32> {
        self.keys.get(&key).copied()
    }

    /// Forgets object `id` with `key` (removed).
    pub(crate) fn release(&mut self, id: i32, key: i32) {
        let idx = id_index(id);
        self.used[idx as usize / 64] &= !(1 << (idx % 64));
        if self.keys.get(&key) == Some(&id) {
            self.keys.remove(&key);
        }
    }
}

/// The object of `map` at index `idx` (the `*_STAT` commands name objects by index).
/// Only the low bits of `idx` count, as on Linux.
pub(crate) fn by_index<T>(map: &BTreeMap<i32, T>, idx: i32) -> Option<i32> {
    if idx < 0 {
        return None;
    }
    let idx = id_index(idx);
    map.keys().copied().find(|&id| id_index(id) == idx)
}

/// The highest index in use in `map`, 0 when empty (what the `*_INFO` commands return).
pub(crate) fn max_index<T>(map: &BTreeMap<i32, T>) -> i32 {
    map.keys().map(|&id| id_index(id)).max().unwrap_or(0)
}

/// The ids of `map` in index order (the order of `/proc/sysvipc`).
fn by_index_order<T>(map: &BTreeMap<i32, T>) -> Vec<i32> {
    let mut ids: Vec<i32> = map.keys().copied().collect();
    ids.sort_by_key(|&id| id_index(id));
    ids
}

#[derive(Debug, Default)]
pub(crate) struct Namespace {
    pub(crate) shm_ids: Ids,
    pub(crate) sem_ids: Ids,
    pub(crate) msg_ids: Ids,
    pub(crate) shm: BTreeMap<i32, Shm>,
    pub(crate) sem: BTreeMap<i32, SemSet>,
    pub(crate) msg: BTreeMap<i32, MsgQueue>,
    /// Semaphores in all sets (`kernel.sem`'s semmns bounds it).
    pub(crate) used_sems: usize,
    /// `SEM_UNDO` adjustments: (process, set, semaphore) -> value to add at exit.
    pub(crate) undo: BTreeMap<(i32, i32, u16), i32>,
}

impl Namespace {
    /// `/proc/sysvipc/msg`, in Linux's format.
    pub(crate) fn proc_msg(&self) -> String {
        let mut s = String::from(
            "       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n",
        );
        for id in by_index_order(&self.msg) {
            let q = &self.msg[&id];
            let p = &q.perm;
            s += &format!(
                "{:10} {:10}  {:4o}  {:10} {:10} {:5} {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10}\n",
                p.key,
                id,
                p.mode,
                q.bytes,
                q.msgs.len(),
                q.lspid,
                q.lrpid,
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                q.stime,
                q.rtime,
                q.ctime
            );
        }
        s
    }

    /// `/proc/sysvipc/sem`, in Linux's format.
    pub(crate) fn proc_sem(&self) -> String {
        let mut s = String::from(
            "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
        );
        for id in by_index_order(&self.sem) {
            let set = &self.sem[&id];
            let p = &set.perm;
            s += &format!(
                "{:10} {:10}  {:4o} {:10} {:5} {:5} {:5} {:5} {:10} {:10}\n",
                p.key,
                id,
                p.mode,
                set.sems.len(),
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                set.otime,
                set.ctime
            );
        }
        s
    }

    /// `/proc/sysvipc/shm`, in Linux's format (64-bit sizes).
    pub(crate) fn proc_shm(&self) -> String {
        let mut s = String::from(
            "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n",
        );
        for id in by_index_order(&self.shm) {
            let m = &self.shm[&id];
            let p = &m.perm;
            s += &format!(
                "{:10} {:10}  {:4o} {:21} {:5} {:5}  {:5} {:5} {:5} {:5} {:5} {:10} {:10} {:10} {:21} {:21}\n",
                p.key,
                id,
                p.mode,
                m.size,
                m.cpid,
                m.lpid,
                m.nattch(),
                p.uid,
                p.gid,
                p.cuid,
                p.cgid,
                m.atime,
                m.dtime,
                m.ctime,
                m.rss(),
                0
            );
        }
        s
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's numbering: cyclic indexes in a cycle of at least 64, the sequence moving
    /// on at the wrap, `*_next_id` taking the asked index or the next free one.
    #[test]
    fn ids_are_cyclic_with_sequence_numbers() {
        let mut ids = Ids::default();
        let a = ids.alloc(0, 32000, -1, 5).unwrap();
        let b = ids.alloc(1, 32000, -1, 0).unwrap();
        assert_eq!((a, b), ((0, 0), (1, 0)));
        assert_eq!(ids.find_key(5), Some(0));
        ids.release(0, 5);
        assert_eq!(ids.find_key(5), None);
        assert_eq!(
            ids.alloc(1, 32000, -1, 0).unwrap().0,
            2,
            "no reuse of index 0"
        );
        for i in 3..64 {
            assert_eq!(ids.alloc(2, 32000, -1, 0).unwrap().0, i);
            ids.release(i, 0);
        }
        assert_eq!(ids.alloc(2, 32000, -1, 0).unwrap(), (IPCMNI, 1), "wrapped");
        assert_eq!(
            ids.alloc(3, 32000, i64::from(2 * IPCMNI + 1), 0).unwrap().0,
            2 * IPCMNI + 3
        );
        assert_eq!(ids.alloc(4, 4, -1, 0), Err(Errno::ENOSPC));
    }
}
