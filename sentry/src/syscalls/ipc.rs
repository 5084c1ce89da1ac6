//! System V IPC: shared memory (`shmget`, `shmat`, `shmdt`, `shmctl`), semaphores
//! (`semget`, `semop`, `semtimedop`, `semctl`) and message queues (`msgget`, `msgsnd`,
//! `msgrcv`, `msgctl`).
//!
//! The objects live in one IPC namespace per Sentry process (a sandbox runs one kernel).
//! A shared memory segment is an unlinked tmpfs file, mapped `MAP_SHARED` by `shmat`, so
//! every attachment uses the same pages; its attach count is the number of mappings
//! holding the file. Semaphore sets and message queues own a [`WaitQueue`]; blocked
//! `semop`/`msgsnd`/`msgrcv` sleep on it and see `EIDRM` when the object is removed.
//!
//! `SEM_UNDO` adjustments are kept per process and applied by [`process_exited`], which
//! the process exit path calls. Not implemented: `MSG_COPY`; the `*_INFO` commands report
//! fixed limits.

use parking_lot::{Mutex, MutexGuard};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use linux_abi::Errno;
use linux_abi::flags::mm::{MAP_FIXED, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE};
use linux_abi::flags::open::O_RDWR;
use linux_abi::types::Timespec;

use super::SyscallEntry;
use crate::fs::{Inode, NewNode, OpenFile, SetAttr, VfsPath};
use crate::kernel::Task;
use crate::mm::{MappableFile, PAGE};
use crate::waiter::{WaitQueue, block_on, events};

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
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHMMIN: u64 = 1;
const SHMMAX: u64 = 1 << 36;

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEMMSL: usize = 32000;
const SEMVMX: i32 = 32767;
const SEMOPM: usize = 500;

const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_NOERROR: u32 = 0o10000;
const MSG_EXCEPT: u32 = 0o20000;
const MSGMAX: usize = 8192;
const MSGMNB: usize = 16384;

/// Permissions of an IPC object (`struct ipc64_perm`).
#[derive(Clone, Copy, Debug, Default)]
struct Perm {
    key: i32,
    uid: u32,
    gid: u32,
    cuid: u32,
    cgid: u32,
    mode: u32,
    seq: u16,
}

impl Perm {
    fn new(t: &Task, key: i32, mode: u32) -> Perm {
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

    fn bytes(&self) -> [u8; 48] {
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
    fn check(&self, t: &Task, want: u32) -> Result<(), Errno> {
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

    fn owner(&self, t: &Task) -> Result<(), Errno> {
        let c = t.creds();
        if c.euid == 0 || c.euid == self.uid || c.euid == self.cuid {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// `IPC_SET`: uid, gid and mode from a user `ipc64_perm`.
    fn set_from(&mut self, raw: &[u8]) {
        let word = |o: usize| u32::from_ne_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
        self.uid = word(4);
        self.gid = word(8);
        self.mode = (self.mode & !0o777) | (word(20) & 0o777);
    }
}

fn now_secs() -> i64 {
    crate::fs::now().tv_sec
}

#[derive(Debug)]
struct Shm {
    perm: Perm,
    size: u64,
    file: Arc<OpenFile>,
    cpid: i32,
    lpid: i32,
    atime: i64,
    dtime: i64,
    ctime: i64,
}

impl Shm {
    fn nattch(&self) -> u64 {
        // The registry holds one reference; every mapping holds another.
        Arc::strong_count(&self.file).saturating_sub(1) as u64
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sem {
    val: i32,
    pid: i32,
}

#[derive(Debug)]
struct SemSet {
    perm: Perm,
    sems: Vec<Sem>,
    otime: i64,
    ctime: i64,
    queue: Arc<WaitQueue>,
    removed: Arc<std::sync::atomic::AtomicBool>,
    /// Waiters for an increase (`semncnt`) and for zero (`semzcnt`), per semaphore.
    ncnt: Vec<u32>,
    zcnt: Vec<u32>,
}

#[derive(Debug)]
struct Msg {
    mtype: i64,
    data: Vec<u8>,
}

#[derive(Debug)]
struct MsgQueue {
    perm: Perm,
    msgs: VecDeque<Msg>,
    bytes: usize,
    qbytes: usize,
    stime: i64,
    rtime: i64,
    ctime: i64,
    lspid: i32,
    lrpid: i32,
    queue: Arc<WaitQueue>,
    removed: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug, Default)]
struct Namespace {
    next_id: i32,
    shm: BTreeMap<i32, Shm>,
    sem: BTreeMap<i32, SemSet>,
    msg: BTreeMap<i32, MsgQueue>,
    /// `SEM_UNDO` adjustments: (process, set, semaphore) -> value to add at exit.
    undo: BTreeMap<(i32, i32, u16), i32>,
}

fn ns() -> MutexGuard<'static, Namespace> {
    static NS: OnceLock<Mutex<Namespace>> = OnceLock::new();
    NS.get_or_init(|| Mutex::new(Namespace::default())).lock()
}

impl Namespace {
    fn alloc_id(&mut self) -> i32 {
        // Ids of removed objects are not reused soon (like Linux's sequence numbers).
        self.next_id = (self.next_id + 1) & 0x3fff_ffff;
        self.next_id
    }
}

/// Resolves `key` in `map` for a `*get` call: an existing id, or `None` to create.
fn lookup_key<T>(
    t: &Task,
    map: &BTreeMap<i32, T>,
    perm_of: impl Fn(&T) -> Perm,
    key: i32,
    flags: u32,
) -> Result<Option<i32>, Errno> {
    if key == IPC_PRIVATE {
        return Ok(None);
    }
    match map.iter().find(|(_, o)| perm_of(o).key == key) {
        Some((&id, o)) => {
            if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let want = (flags >> 6) & 7 & 6;
            perm_of(o).check(t, want)?;
            Ok(Some(id))
        }
        None if flags & IPC_CREAT != 0 => Ok(None),
        None => Err(Errno::ENOENT),
    }
}

// ---- shared memory ----

fn new_segment(t: &Task, key: i32, size: u64) -> Result<Arc<OpenFile>, Errno> {
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
    let mut n = ns();
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
        let mut n = ns();
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
    t.mm().mmap(at, size, prot, mflags, Some((mf, 0)))
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
    let mut n = ns();
    let pid = t.tgid();
    for s in n.shm.values_mut() {
        if s.file.path() == v.name {
            s.dtime = now_secs();
            s.lpid = pid;
        }
    }
    Ok(0)
}

fn shm_stat_bytes(s: &Shm) -> Vec<u8> {
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
    let mut n = ns();
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

// ---- semaphores ----

/// `semget(key, nsems, flags)`.
pub fn sys_semget(t: &Task, key: i32, nsems: i32, flags: u32) -> Result<u64, Errno> {
    let mut n = ns();
    if let Some(id) = lookup_key(t, &n.sem, |s| s.perm, key, flags)? {
        if n.sem
            .get(&id)
            .is_some_and(|s| nsems as usize > s.sems.len())
        {
            return Err(Errno::EINVAL);
        }
        return Ok(id as u64);
    }
    if nsems <= 0 || nsems as usize > SEMMSL {
        return Err(Errno::EINVAL);
    }
    let id = n.alloc_id();
    let cnt = nsems as usize;
    n.sem.insert(
        id,
        SemSet {
            perm: Perm::new(t, key, flags),
            sems: vec![Sem::default(); cnt],
            otime: 0,
            ctime: now_secs(),
            queue: Arc::new(WaitQueue::new()),
            removed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            ncnt: vec![0; cnt],
            zcnt: vec![0; cnt],
        },
    );
    Ok(id as u64)
}

/// One `struct sembuf`.
#[derive(Clone, Copy, Debug)]
struct SemBuf {
    num: u16,
    op: i16,
    flg: i16,
}

/// Applies `ops` atomically if they can all proceed; `Err(EAGAIN)` with the semaphore
/// that blocks (and whether it waits for zero) otherwise.
fn try_semop(set: &mut SemSet, ops: &[SemBuf], pid: i32) -> Result<(), (Errno, usize, bool)> {
    let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
    for o in ops {
        let i = o.num as usize;
        let v = vals[i];
        if o.op == 0 {
            if v != 0 {
                return Err((Errno::EAGAIN, i, true));
            }
        } else {
            let nv = v + i32::from(o.op);
            if nv < 0 {
                return Err((Errno::EAGAIN, i, false));
            }
            if nv > SEMVMX {
                return Err((Errno::ERANGE, i, false));
            }
            vals[i] = nv;
        }
    }
    for (i, v) in vals.into_iter().enumerate() {
        set.sems[i].val = v;
    }
    for o in ops {
        set.sems[o.num as usize].pid = pid;
    }
    set.otime = now_secs();
    Ok(())
}

fn semop_common(
    t: &Task,
    id: i32,
    sops: u64,
    nsops: u32,
    deadline: Option<Instant>,
) -> Result<u64, Errno> {
    let nsops = nsops as usize;
    if nsops == 0 {
        return Err(Errno::EINVAL);
    }
    if nsops > SEMOPM {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; nsops * 6];
    t.mm().copy_in(sops, &mut raw)?;
    let ops: Vec<SemBuf> = raw
        .chunks_exact(6)
        .map(|c| SemBuf {
            num: u16::from_ne_bytes([c[0], c[1]]),
            op: i16::from_ne_bytes([c[2], c[3]]),
            flg: i16::from_ne_bytes([c[4], c[5]]),
        })
        .collect();
    let nowait = ops.iter().any(|o| o.flg as u32 & IPC_NOWAIT != 0);
    let alters = ops.iter().any(|o| o.op != 0);
    let (queue, removed) = {
        let n = ns();
        let s = n.sem.get(&id).ok_or(Errno::EINVAL)?;
        if ops.iter().any(|o| o.num as usize >= s.sems.len()) {
            return Err(Errno::EFBIG);
        }
        s.perm.check(t, if alters { 2 } else { 4 })?;
        (s.queue.clone(), s.removed.clone())
    };
    let pid = t.tgid();
    let mut waiting: Option<(usize, bool)> = None;
    let mut op = || {
        if removed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Errno::EIDRM);
        }
        let mut n = ns();
        let s = n.sem.get_mut(&id).ok_or(Errno::EIDRM)?;
        if let Some((i, z)) = waiting.take() {
            if z {
                s.zcnt[i] = s.zcnt[i].saturating_sub(1);
            } else {
                s.ncnt[i] = s.ncnt[i].saturating_sub(1);
            }
        }
        match try_semop(s, &ops, pid) {
            Ok(()) => Ok(()),
            Err((Errno::EAGAIN, i, z)) if !nowait => {
                if z {
                    s.zcnt[i] += 1;
                } else {
                    s.ncnt[i] += 1;
                }
                waiting = Some((i, z));
                Err(Errno::EAGAIN)
            }
            Err((e, _, _)) => Err(e),
        }
    };
    let r = if nowait {
        op()
    } else {
        let r = block_on(&[(&queue, events::ALL)], deadline, &mut op);
        if let Some((i, z)) = waiting
            && let Some(s) = ns().sem.get_mut(&id)
        {
            if z {
                s.zcnt[i] = s.zcnt[i].saturating_sub(1);
            } else {
                s.ncnt[i] = s.ncnt[i].saturating_sub(1);
            }
        }
        r.map_err(|e| {
            if e == Errno::ETIMEDOUT {
                Errno::EAGAIN
            } else {
                e
            }
        })
    };
    r?;
    if ops.iter().any(|o| o.flg & SEM_UNDO != 0 && o.op != 0) {
        let mut n = ns();
        for o in ops.iter().filter(|o| o.flg & SEM_UNDO != 0 && o.op != 0) {
            let adj = n.undo.entry((pid, id, o.num)).or_insert(0);
            *adj -= i32::from(o.op);
        }
        n.undo.retain(|_, a| *a != 0);
    }
    if alters {
        queue.notify(events::ALL);
    }
    Ok(0)
}

/// Applies and forgets the `SEM_UNDO` adjustments of process `tgid` (call when a process
/// exits): each semaphore moves back by what the process's undoable operations did,
/// clamped to `[0, SEMVMX]`, and its waiters are woken.
pub fn process_exited(tgid: i32) {
    let mut n = ns();
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

/// `semop(id, sops, nsops)`.
pub fn sys_semop(t: &Task, id: i32, sops: u64, nsops: u32) -> Result<u64, Errno> {
    semop_common(t, id, sops, nsops, None)
}

/// `semtimedop(id, sops, nsops, timeout)`.
pub fn sys_semtimedop(t: &Task, id: i32, sops: u64, nsops: u32, ts: u64) -> Result<u64, Errno> {
    let deadline = if ts == 0 {
        None
    } else {
        let v: Timespec = t.mm().read_obj(ts)?;
        if v.tv_sec < 0 || !(0..1_000_000_000).contains(&v.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Instant::now().checked_add(Duration::new(v.tv_sec as u64, v.tv_nsec as u32))
    };
    semop_common(t, id, sops, nsops, deadline)
}

/// `semctl(id, num, cmd, arg)`.
pub fn sys_semctl(t: &Task, id: i32, num: i32, cmd: i32, arg: u64) -> Result<u64, Errno> {
    let cmd = cmd & !IPC_64;
    let mut n = ns();
    if matches!(cmd, IPC_INFO | SEM_INFO) {
        // struct seminfo: semmap, semmni, semmns, semmnu, semmsl, semopm, semume,
        // semusz, semvmx, semaem.
        let vals: [i32; 10] = [
            1024,
            32000,
            1 << 30,
            1 << 30,
            SEMMSL as i32,
            SEMOPM as i32,
            500,
            20,
            SEMVMX,
            SEMVMX,
        ];
        let b: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        t.mm().copy_out(arg, &b)?;
        return Ok(n.sem.keys().max().copied().unwrap_or(0) as u64);
    }
    let s = n.sem.get_mut(&id).ok_or(Errno::EINVAL)?;
    let idx = |s: &SemSet| -> Result<usize, Errno> {
        usize::try_from(num)
            .ok()
            .filter(|&i| i < s.sems.len())
            .ok_or(Errno::EINVAL)
    };
    let r = match cmd {
        IPC_RMID => {
            s.perm.owner(t)?;
            s.removed.store(true, std::sync::atomic::Ordering::Release);
            let q = s.queue.clone();
            n.sem.remove(&id);
            n.undo.retain(|&(_, sid, _), _| sid != id);
            drop(n);
            q.notify(events::ALL);
            return Ok(0);
        }
        IPC_STAT | SEM_STAT => {
            s.perm.check(t, 4)?;
            let mut b = s.perm.bytes().to_vec();
            for v in [
                s.otime as u64,
                0,
                s.ctime as u64,
                0,
                s.sems.len() as u64,
                0,
                0,
            ] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            t.mm().copy_out(arg, &b)?;
            if cmd == SEM_STAT { id as u64 } else { 0 }
        }
        IPC_SET => {
            s.perm.owner(t)?;
            let mut raw = [0u8; 48];
            t.mm().copy_in(arg, &mut raw)?;
            s.perm.set_from(&raw);
            s.ctime = now_secs();
            0
        }
        GETVAL => {
            s.perm.check(t, 4)?;
            s.sems[idx(s)?].val as u64
        }
        GETPID => {
            s.perm.check(t, 4)?;
            s.sems[idx(s)?].pid as u64
        }
        GETNCNT => {
            s.perm.check(t, 4)?;
            u64::from(s.ncnt[idx(s)?])
        }
        GETZCNT => {
            s.perm.check(t, 4)?;
            u64::from(s.zcnt[idx(s)?])
        }
        GETALL => {
            s.perm.check(t, 4)?;
            let b: Vec<u8> = s
                .sems
                .iter()
                .flat_map(|x| (x.val as u16).to_ne_bytes())
                .collect();
            t.mm().copy_out(arg, &b)?;
            0
        }
        SETVAL => {
            s.perm.check(t, 2)?;
            let i = idx(s)?;
            let v = arg as u32 as i32;
            if !(0..=SEMVMX).contains(&v) {
                return Err(Errno::ERANGE);
            }
            s.sems[i] = Sem {
                val: v,
                pid: t.tgid(),
            };
            s.ctime = now_secs();
            let q = s.queue.clone();
            n.undo
                .retain(|&(_, sid, num), _| !(sid == id && usize::from(num) == i));
            drop(n);
            q.notify(events::ALL);
            return Ok(0);
        }
        SETALL => {
            s.perm.check(t, 2)?;
            let mut raw = vec![0u8; s.sems.len() * 2];
            t.mm().copy_in(arg, &mut raw)?;
            let vals: Vec<i32> = raw
                .chunks_exact(2)
                .map(|c| i32::from(u16::from_ne_bytes([c[0], c[1]])))
                .collect();
            if vals.iter().any(|&v| v > SEMVMX) {
                return Err(Errno::ERANGE);
            }
            let pid = t.tgid();
            for (x, v) in s.sems.iter_mut().zip(vals) {
                *x = Sem { val: v, pid };
            }
            s.ctime = now_secs();
            let q = s.queue.clone();
            n.undo.retain(|&(_, sid, _), _| sid != id);
            drop(n);
            q.notify(events::ALL);
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok(r)
}

// ---- message queues ----

/// `msgget(key, flags)`.
pub fn sys_msgget(t: &Task, key: i32, flags: u32) -> Result<u64, Errno> {
    let mut n = ns();
    if let Some(id) = lookup_key(t, &n.msg, |q| q.perm, key, flags)? {
        return Ok(id as u64);
    }
    let id = n.alloc_id();
    n.msg.insert(
        id,
        MsgQueue {
            perm: Perm::new(t, key, flags),
            msgs: VecDeque::new(),
            bytes: 0,
            qbytes: MSGMNB,
            stime: 0,
            rtime: 0,
            ctime: now_secs(),
            lspid: 0,
            lrpid: 0,
            queue: Arc::new(WaitQueue::new()),
            removed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        },
    );
    Ok(id as u64)
}

fn msg_handles(
    t: &Task,
    id: i32,
    want: u32,
) -> Result<(Arc<WaitQueue>, Arc<std::sync::atomic::AtomicBool>), Errno> {
    let n = ns();
    let q = n.msg.get(&id).ok_or(Errno::EINVAL)?;
    q.perm.check(t, want)?;
    Ok((q.queue.clone(), q.removed.clone()))
}

/// `msgsnd(id, msgp, size, flags)`.
pub fn sys_msgsnd(t: &Task, id: i32, msgp: u64, size: u64, flags: u32) -> Result<u64, Errno> {
    let size = size as usize;
    if size > MSGMAX {
        return Err(Errno::EINVAL);
    }
    let mtype: i64 = t.mm().read_obj(msgp)?;
    if mtype <= 0 {
        return Err(Errno::EINVAL);
    }
    let mut data = vec![0u8; size];
    t.mm().copy_in(msgp + 8, &mut data)?;
    let (queue, removed) = msg_handles(t, id, 2)?;
    let pid = t.tgid();
    let mut msg = Some(Msg { mtype, data });
    let mut op = || {
        if removed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Errno::EIDRM);
        }
        let mut n = ns();
        let q = n.msg.get_mut(&id).ok_or(Errno::EIDRM)?;
        if q.bytes + size > q.qbytes {
            return Err(Errno::EAGAIN);
        }
        if let Some(m) = msg.take() {
            q.bytes += m.data.len();
            q.msgs.push_back(m);
        }
        q.lspid = pid;
        q.stime = now_secs();
        Ok(())
    };
    if flags & IPC_NOWAIT != 0 {
        op()?;
    } else {
        block_on(&[(&queue, events::ALL)], None, &mut op)?;
    }
    queue.notify(events::ALL);
    Ok(0)
}

/// Which message `msgrcv` takes for `msgtyp` and `flags`.
fn pick(msgs: &VecDeque<Msg>, msgtyp: i64, flags: u32) -> Option<usize> {
    if msgtyp == 0 {
        return (!msgs.is_empty()).then_some(0);
    }
    if msgtyp > 0 {
        let except = flags & MSG_EXCEPT != 0;
        return msgs.iter().position(|m| (m.mtype == msgtyp) != except);
    }
    let limit = msgtyp.saturating_neg();
    msgs.iter()
        .enumerate()
        .filter(|(_, m)| m.mtype <= limit)
        .min_by_key(|(i, m)| (m.mtype, *i))
        .map(|(i, _)| i)
}

/// `msgrcv(id, msgp, size, msgtyp, flags)`.
pub fn sys_msgrcv(
    t: &Task,
    id: i32,
    msgp: u64,
    size: u64,
    msgtyp: i64,
    flags: u32,
) -> Result<u64, Errno> {
    if (size as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let size = size as usize;
    let (queue, removed) = msg_handles(t, id, 4)?;
    let pid = t.tgid();
    let op = || {
        if removed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Errno::EIDRM);
        }
        let mut n = ns();
        let q = n.msg.get_mut(&id).ok_or(Errno::EIDRM)?;
        let Some(i) = pick(&q.msgs, msgtyp, flags) else {
            return Err(Errno::EAGAIN);
        };
        if q.msgs[i].data.len() > size && flags & MSG_NOERROR == 0 {
            return Err(Errno::E2BIG);
        }
        let m = q.msgs.remove(i).ok_or(Errno::EAGAIN)?;
        q.bytes -= m.data.len();
        q.lrpid = pid;
        q.rtime = now_secs();
        Ok(m)
    };
    let m = if flags & IPC_NOWAIT != 0 {
        op().map_err(|e| if e == Errno::EAGAIN { Errno::ENOMSG } else { e })?
    } else {
        block_on(&[(&queue, events::ALL)], None, op)?
    };
    queue.notify(events::ALL);
    let n = m.data.len().min(size);
    t.mm().write_obj(msgp, &m.mtype)?;
    t.mm().copy_out(msgp + 8, &m.data[..n])?;
    Ok(n as u64)
}

/// `msgctl(id, cmd, buf)`.
pub fn sys_msgctl(t: &Task, id: i32, cmd: i32, buf: u64) -> Result<u64, Errno> {
    let cmd = cmd & !IPC_64;
    let mut n = ns();
    if matches!(cmd, IPC_INFO | MSG_INFO) {
        // struct msginfo: msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql, msgseg.
        let vals: [i32; 8] = [
            32000,
            32000,
            MSGMAX as i32,
            MSGMNB as i32,
            32000,
            16,
            32000,
            0xffff,
        ];
        let b: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        t.mm().copy_out(buf, &b)?;
        return Ok(n.msg.keys().max().copied().unwrap_or(0) as u64);
    }
    let q = n.msg.get_mut(&id).ok_or(Errno::EINVAL)?;
    match cmd {
        IPC_STAT | MSG_STAT => {
            q.perm.check(t, 4)?;
            let mut b = q.perm.bytes().to_vec();
            for v in [
                q.stime as u64,
                q.rtime as u64,
                q.ctime as u64,
                q.bytes as u64,
                q.msgs.len() as u64,
                q.qbytes as u64,
            ] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            b.extend_from_slice(&q.lspid.to_ne_bytes());
            b.extend_from_slice(&q.lrpid.to_ne_bytes());
            b.extend_from_slice(&[0u8; 16]);
            t.mm().copy_out(buf, &b)?;
            Ok(if cmd == MSG_STAT { id as u64 } else { 0 })
        }
        IPC_SET => {
            q.perm.owner(t)?;
            let mut raw = [0u8; 96];
            t.mm().copy_in(buf, &mut raw)?;
            q.perm.set_from(&raw[..48]);
            let qbytes = u64::from_ne_bytes(raw[88..96].try_into().unwrap_or_default()) as usize;
            if qbytes > MSGMNB && t.creds().euid != 0 {
                return Err(Errno::EPERM);
            }
            q.qbytes = qbytes;
            q.ctime = now_secs();
            let wq = q.queue.clone();
            drop(n);
            wq.notify(events::ALL);
            Ok(0)
        }
        IPC_RMID => {
            q.perm.owner(t)?;
            q.removed.store(true, std::sync::atomic::Ordering::Release);
            let wq = q.queue.clone();
            n.msg.remove(&id);
            drop(n);
            wq.notify(events::ALL);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
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
        let id = {
            let mut n = ns();
            let id = n.alloc_id();
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
        process_exited(4243);
        assert_eq!(
            ns().sem[&id].sems[0].val,
            3,
            "another process's exit changes nothing"
        );
        process_exited(4242);
        assert_eq!(ns().sem[&id].sems[0].val, 0);
        assert!(!ns().undo.keys().any(|k| k.0 == 4242));
        ns().sem.remove(&id);
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
