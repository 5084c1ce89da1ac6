//! POSIX message queues (Linux's `ipc/mqueue.c`): the `mqueue` file system of one IPC
//! namespace. Its root directory is the registry of queues by name; each queue is an
//! inode whose open files are the queue descriptors `mq_open` returns (reading one gives
//! the `QSIZE:... NOTIFY:...` line, `poll` says whether a message can be received or
//! sent). The system calls (`syscalls::ipc::mqueue`) use [`Mqueue::open_queue`],
//! [`Mqueue::unlink_queue`] and the [`Queue`] behind a descriptor, whose blocked senders
//! and receivers wait in line ([`Queue::send_step`]); the same file system is mounted at
//! `/dev/mqueue` of every tree, where `ls`, `stat`, `rm` (= `mq_unlink`) and
//! `open(O_CREAT)` (a queue with the default attributes) work as on Linux.
//!
//! Accounting is Linux's: a queue costs `maxmsg * (msgsize + 48) + min(maxmsg, 32768) * 48`
//! bytes against `RLIMIT_MSGQUEUE` of its creator's real user, given back when the queue
//! is gone (unlinked and its last descriptor closed); the number of queues is checked
//! against `fs.mqueue.queues_max` unless the creator has `CAP_SYS_RESOURCE`.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::types::Stat;
use parking_lot::Mutex;

use super::file::OpenFile;
use super::vfs::{Dentry, Mount, VfsPath};
use super::{
    Caller, DirEntry, FileOps, FileType, FsCred, FsStat, Inode, NAME_MAX, NewNode, NodeMeta,
    SetAttr, access, new_dev, new_ino, now,
};
use crate::waiter::{Events, WaitQueue, events};

/// `MQUEUE_MAGIC`.
pub const MQUEUE_MAGIC: u64 = 0x1980_2007;
/// The size a queue file reports (`FILENT_SIZE`).
pub const FILENT_SIZE: u64 = 80;
/// Priorities are below this (`MQ_PRIO_MAX`).
pub const MQ_PRIO_MAX: u32 = 32768;
/// Most messages a queue may hold, even with `CAP_SYS_RESOURCE` (`HARD_MSGMAX`).
pub const HARD_MSGMAX: i64 = 65536;
/// Largest message size, even with `CAP_SYS_RESOURCE` (`HARD_MSGSIZEMAX`).
pub const HARD_MSGSIZEMAX: i64 = 16 << 20;
/// `sizeof(struct msg_msg)` and `sizeof(struct posix_msg_tree_node)` on x86-64, which
/// Linux charges per message and per priority slot.
const MSG_OVERHEAD: u64 = 48;
/// `CAP_SYS_RESOURCE`.
const CAP_SYS_RESOURCE: u32 = 24;
/// `SIGEV_SIGNAL`, `SIGEV_NONE`, `SIGEV_THREAD`.
pub const SIGEV_SIGNAL: i32 = 0;
/// No notification beyond the registration itself.
pub const SIGEV_NONE: i32 = 1;
/// A message to a netlink socket (glibc's thread notification).
pub const SIGEV_THREAD: i32 = 2;
/// Length of a `SIGEV_THREAD` cookie (`NOTIFY_COOKIE_LEN`).
pub const NOTIFY_COOKIE_LEN: usize = 32;

/// A queue's limits (`mq_maxmsg`, `mq_msgsize`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MqAttr {
    /// Most messages.
    pub maxmsg: i64,
    /// Largest message.
    pub msgsize: i64,
}

/// The namespace's tunables and the creator's rights, for making a queue.
#[derive(Clone, Debug)]
pub struct Creator {
    /// File-system credentials (owner of the new queue, permission checks).
    pub cred: FsCred,
    /// The real user charged for the queue's memory.
    pub ruid: u32,
    /// `RLIMIT_MSGQUEUE` (soft) of the creator.
    pub rlimit: u64,
    /// `fs.mqueue.msg_max`, `msgsize_max`, `queues_max`, `msg_default`, `msgsize_default`.
    pub msg_max: i64,
    /// `fs.mqueue.msgsize_max`.
    pub msgsize_max: i64,
    /// `fs.mqueue.queues_max`.
    pub queues_max: i64,
    /// `fs.mqueue.msg_default`.
    pub msg_default: i64,
    /// `fs.mqueue.msgsize_default`.
    pub msgsize_default: i64,
}

/// Who makes a queue through the file system (`open(O_CREAT)` in `/dev/mqueue`): the
/// namespace's tunables and the limits of the process behind `cred.caller`. The kernel
/// provides it ([`Mqueue::set_creators`]).
pub trait Creators: Send + Sync {
    /// The creator for `cred`.
    fn creator(&self, cred: &FsCred) -> Creator;
}

impl Creator {
    /// A creator with Linux's default tunables and no memory limit (a file system
    /// without a kernel).
    fn from_cred(cred: &FsCred) -> Creator {
        Creator {
            cred: cred.clone(),
            ruid: cred.uid,
            rlimit: u64::MAX,
            msg_max: 10,
            msgsize_max: 8192,
            queues_max: 256,
            msg_default: 10,
            msgsize_default: 8192,
        }
    }

    fn privileged(&self) -> bool {
        self.cred.has_cap(CAP_SYS_RESOURCE)
    }
}

/// How a registered process is told (`struct sigevent`'s choice).
#[derive(Clone, Debug)]
pub enum NotifyHow {
    /// `SIGEV_NONE`.
    None,
    /// `SIGEV_SIGNAL` with this signal (0: none) and `sigev_value`.
    Signal {
        /// The signal.
        signo: i32,
        /// `si_value`.
        value: u64,
        /// The registering process's exec generation: a later program is not signalled.
        exec_id: u64,
    },
    /// `SIGEV_THREAD`: the cookie goes to this netlink socket.
    Thread {
        /// The socket (glibc's helper thread reads it).
        sock: Arc<OpenFile>,
        /// The cookie, last byte set to the reason when sent.
        cookie: [u8; NOTIFY_COOKIE_LEN],
    },
}

impl NotifyHow {
    fn code(&self) -> i32 {
        match self {
            NotifyHow::None => SIGEV_NONE,
            NotifyHow::Signal { .. } => SIGEV_SIGNAL,
            NotifyHow::Thread { .. } => SIGEV_THREAD,
        }
    }
}

/// A process registered with `mq_notify`.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The registered process.
    pub tgid: i32,
    /// How it is told.
    pub how: NotifyHow,
}

/// One `mqueue` instance: the root directory and the queues by name.
pub struct Mqueue {
    dev: u64,
    meta: Mutex<NodeMeta>,
    names: Mutex<BTreeMap<Vec<u8>, Arc<Queue>>>,
    /// Live queues, named or not (`mq_queues_count`).
    count: Arc<AtomicUsize>,
    /// Bytes charged per real user (`RLIMIT_MSGQUEUE`).
    charged: Arc<Mutex<BTreeMap<u32, u64>>>,
    /// The kernel, for queues made through the file system.
    creators: Mutex<Option<Weak<dyn Creators>>>,
}

impl std::fmt::Debug for Mqueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mqueue")
            .field("dev", &self.dev)
            .field("queues", &self.names.lock().len())
            .finish_non_exhaustive()
    }
}

/// Checks a queue name as `mq_open` gets it (without glibc's leading `/`): Linux's
/// `lookup_one_len` refuses an empty name, `.`, `..` and a `/` (`EACCES`); the
/// directory's lookup a name longer than `NAME_MAX` (`ENAMETOOLONG`).
pub fn check_queue_name(name: &[u8]) -> Result<(), Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EACCES);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

impl Mqueue {
    /// A new, empty instance (one per IPC namespace).
    pub fn new() -> Arc<Mqueue> {
        Arc::new(Mqueue {
            dev: new_dev(),
            meta: Mutex::new(NodeMeta::new(S_IFDIR | 0o1777, 0, 0)),
            names: Mutex::new(BTreeMap::new()),
            count: Arc::new(AtomicUsize::new(0)),
            charged: Arc::new(Mutex::new(BTreeMap::new())),
            creators: Mutex::new(None),
        })
    }

    /// Connects the file system to the kernel whose tunables and process limits a queue
    /// made by `open(O_CREAT)` is checked against.
    pub fn set_creators(&self, c: Weak<dyn Creators>) {
        *self.creators.lock() = Some(c);
    }

    /// The internal mount for descriptors of `fs` (Linux's `mq_mnt`; the IPC namespace
    /// keeps it).
    pub fn internal_mount(fs: &Arc<Mqueue>) -> Arc<Mount> {
        Mount::internal(fs.clone(), "mqueue", "mqueue")
    }

    /// The queue named `name`, if any.
    pub fn get(&self, name: &[u8]) -> Option<Arc<Queue>> {
        self.names.lock().get(name).cloned()
    }

    /// Bytes charged to real user `uid`.
    #[cfg(test)]
    pub fn charged(&self, uid: u32) -> u64 {
        self.charged.lock().get(&uid).copied().unwrap_or(0)
    }

    /// `mq_open`'s lookup-or-create (Linux's `prepare_open` and `mqueue_get_inode`): the
    /// queue `name`, and whether it is new, (already checked with [`check_queue_name`]) for `oflag` (access mode,
    /// `O_CREAT`, `O_EXCL`); a new one gets `mode` (umask applied) and `attr` or the
    /// defaults.
    pub fn open_queue(
        &self,
        name: &[u8],
        oflag: u32,
        mode: u32,
        attr: Option<MqAttr>,
        who: &Creator,
    ) -> Result<(Arc<Queue>, bool), Errno> {
        use linux_abi::flags::open::{O_ACCMODE, O_CREAT, O_EXCL, O_RDWR, O_WRONLY};
        let mut names = self.names.lock();
        if let Some(q) = names.get(name) {
            if oflag & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
                return Err(Errno::EEXIST);
            }
            let want = match oflag & O_ACCMODE {
                O_WRONLY => access::W_OK,
                O_RDWR => access::R_OK | access::W_OK,
                0 => access::R_OK,
                _ => return Err(Errno::EINVAL),
            };
            who.cred.check(&q.stat()?, want)?;
            return Ok((q.clone(), false));
        }
        if oflag & O_CREAT == 0 {
            return Err(Errno::ENOENT);
        }
        // The directory is 1777: anyone may create (Linux's may_create passes).
        let q = self.make_queue(name, mode, attr, who)?;
        names.insert(name.to_vec(), q.clone());
        self.touch_dir();
        Ok((q, true))
    }

    fn make_queue(
        &self,
        name: &[u8],
        mode: u32,
        attr: Option<MqAttr>,
        who: &Creator,
    ) -> Result<Arc<Queue>, Errno> {
        let count = self.count.load(Ordering::Acquire);
        if count as i64 >= who.queues_max && !who.privileged() {
            return Err(Errno::ENOSPC);
        }
        let attr = attr.unwrap_or(MqAttr {
            maxmsg: who.msg_max.min(who.msg_default),
            msgsize: who.msgsize_max.min(who.msgsize_default),
        });
        if attr.maxmsg <= 0 || attr.msgsize <= 0 {
            return Err(Errno::EINVAL);
        }
        let (maxmsg_limit, msgsize_limit) = if who.privileged() {
            (HARD_MSGMAX, HARD_MSGSIZEMAX)
        } else {
            (who.msg_max, who.msgsize_max)
        };
        if attr.maxmsg > maxmsg_limit || attr.msgsize > msgsize_limit {
            return Err(Errno::EINVAL);
        }
        let bytes = cost(attr);
        {
            let mut charged = self.charged.lock();
            let c = charged.entry(who.ruid).or_insert(0);
            if c.saturating_add(bytes) > who.rlimit {
                return Err(Errno::EMFILE);
            }
            *c += bytes;
        }
        self.count.fetch_add(1, Ordering::AcqRel);
        Ok(Arc::new_cyclic(|me| Queue {
            me: me.clone(),
            dev: self.dev,
            ino: new_ino(),
            name: name.to_vec(),
            attr,
            charge: (who.ruid, bytes),
            count: self.count.clone(),
            charged: self.charged.clone(),
            meta: Mutex::new(NodeMeta::new(
                S_IFREG | (mode & 0o7777),
                who.cred.uid,
                who.cred.gid,
            )),
            state: Mutex::new(State::default()),
            wq: WaitQueue::new(),
            dentry: Mutex::new(Weak::new()),
        }))
    }

    /// Takes back a queue `open_queue` just made for a descriptor that could not be
    /// installed (Linux finds `EMFILE` before it creates anything).
    pub fn forget_new(&self, q: &Arc<Queue>) {
        let mut names = self.names.lock();
        if names.get(&q.name).is_some_and(|n| Arc::ptr_eq(n, q)) {
            names.remove(&q.name);
        }
    }

    /// `mq_unlink(name)`: removes the name (the queue lives on while descriptors of it
    /// are open). Deleting from the sticky directory needs ownership or `CAP_FOWNER`.
    pub fn unlink_queue(&self, name: &[u8], cred: &FsCred) -> Result<(), Errno> {
        let mut names = self.names.lock();
        let q = names.get(name).ok_or(Errno::ENOENT)?;
        let st = q.stat()?;
        let dir_st = self.meta.lock().stat(self.dev, 1, 2, 0);
        cred.check(&dir_st, access::W_OK | access::X_OK)?;
        if cred.uid != st.st_uid && cred.uid != dir_st.st_uid && !cred.owns(&st) {
            return Err(Errno::EACCES);
        }
        if let Some(q) = names.remove(name) {
            q.unlinked();
        }
        drop(names);
        self.touch_dir();
        Ok(())
    }

    fn touch_dir(&self) {
        let mut m = self.meta.lock();
        let t = now();
        m.mtime = t;
        m.ctime = t;
    }

    /// A new descriptor's file description for `q` with `flags` (the `open(2)` flags of
    /// `mq_open`), named `/name` on `mount` (see [`Mqueue::internal_mount`]), as Linux
    /// shows it in `/proc/<pid>/fd`.
    pub fn queue_file(mount: &Arc<Mount>, q: &Arc<Queue>, flags: u32) -> Arc<OpenFile> {
        use linux_abi::flags::open::{O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC};
        // One dentry per queue while descriptors use it, so mq_unlink can mark it.
        let mut cached = q.dentry.lock();
        let path = match cached.upgrade() {
            Some(dentry) => VfsPath {
                mount: mount.clone(),
                dentry,
            },
            None => {
                let p = VfsPath::detached_child(mount, &q.name, q.clone());
                *cached = Arc::downgrade(&p.dentry);
                p
            }
        };
        drop(cached);
        let ops: Arc<dyn FileOps> = Arc::new(QueueFile(q.clone()));
        OpenFile::new(path, flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC), ops)
    }
}

/// What a queue of `attr` costs against `RLIMIT_MSGQUEUE` (Linux's `mq_bytes` plus
/// `mq_treesize`).
pub fn cost(attr: MqAttr) -> u64 {
    let maxmsg = attr.maxmsg as u64;
    let msgsize = attr.msgsize as u64;
    maxmsg
        .saturating_mul(msgsize)
        .saturating_add(maxmsg.saturating_mul(MSG_OVERHEAD))
        .saturating_add(maxmsg.min(u64::from(MQ_PRIO_MAX)) * MSG_OVERHEAD)
}

impl Inode for Mqueue {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.meta.lock().stat(self.dev, 1, 2, 0))
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.get(name)
            .map(|q| q as Arc<dyn Inode>)
            .ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Ok(self
            .names
            .lock()
            .iter()
            .map(|(n, q)| DirEntry {
                name: n.clone(),
                ino: q.ino,
                kind: FileType::Regular,
            })
            .collect())
    }

    /// Queues come and go through the system calls, not only through the VFS.
    fn cacheable(&self) -> bool {
        false
    }

    /// `open(O_CREAT)` makes a queue with the default attributes; nothing else can be
    /// made here (`EPERM` as Linux's mqueue directory has no `mkdir`, `mknod`, `symlink`).
    fn create(&self, name: &[u8], node: NewNode, cred: &FsCred) -> Result<Arc<dyn Inode>, Errno> {
        let NewNode::File { mode } = node else {
            return Err(Errno::EPERM);
        };
        let source = self.creators.lock().as_ref().and_then(Weak::upgrade);
        let who = source.map_or_else(|| Creator::from_cred(cred), |s| s.creator(cred));
        let mut names = self.names.lock();
        if names.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let q = self.make_queue(name, mode, None, &who)?;
        names.insert(name.to_vec(), q.clone());
        drop(names);
        self.touch_dir();
        Ok(q)
    }

    /// `unlink` (the VFS checked the permissions) is `mq_unlink`.
    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        if dir {
            return Err(Errno::ENOTDIR);
        }
        self.names
            .lock()
            .remove(name)
            .ok_or(Errno::ENOENT)?
            .unlinked();
        self.touch_dir();
        Ok(())
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.meta.lock().apply(a)
    }

    fn not_writable(&self) -> Errno {
        Errno::EPERM
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(MQUEUE_MAGIC))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Debug, Default)]
struct State {
    /// Messages by priority, each priority first in first out.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    curmsgs: usize,
    /// Bytes of the messages queued.
    qsize: u64,
    /// Receivers blocked on the empty queue, in arrival order, and the messages handed
    /// to them (a send to a waiting receiver bypasses the queue and notifies nobody).
    receivers: VecDeque<u64>,
    handed: BTreeMap<u64, (Vec<u8>, u32)>,
    /// Senders blocked on the full queue with their messages, and those whose message a
    /// receive has queued for them.
    senders: VecDeque<(u64, Vec<u8>, u32)>,
    sent: std::collections::BTreeSet<u64>,
    next_ticket: u64,
    notify: Option<Registration>,
}

impl State {
    fn take_id(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    fn insert(&mut self, data: Vec<u8>, prio: u32) {
        self.curmsgs += 1;
        self.qsize += data.len() as u64;
        self.msgs.entry(prio).or_default().push_back(data);
    }

    fn take_first(&mut self) -> Option<(Vec<u8>, u32)> {
        let mut e = self.msgs.last_entry()?;
        let prio = *e.key();
        let data = e.get_mut().pop_front()?;
        if e.get().is_empty() {
            e.remove();
        }
        self.curmsgs -= 1;
        self.qsize -= data.len() as u64;
        Some((data, prio))
    }
}

/// One message queue (the inode).
pub struct Queue {
    me: Weak<Queue>,
    dev: u64,
    ino: u64,
    name: Vec<u8>,
    attr: MqAttr,
    /// (real user, bytes) charged for it.
    charge: (u32, u64),
    count: Arc<AtomicUsize>,
    charged: Arc<Mutex<BTreeMap<u32, u64>>>,
    meta: Mutex<NodeMeta>,
    state: Mutex<State>,
    wq: WaitQueue,
    /// The name `mq_open`'s descriptors have on the internal mount.
    dentry: Mutex<Weak<Dentry>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("attr", &self.attr)
            .finish_non_exhaustive()
    }
}

impl Drop for Queue {
    /// The queue is gone (no name, no descriptor): its charge and count go back.
    fn drop(&mut self) {
        let (uid, bytes) = self.charge;
        let mut c = self.charged.lock();
        if let Some(v) = c.get_mut(&uid) {
            *v = v.saturating_sub(bytes);
            if *v == 0 {
                c.remove(&uid);
            }
        }
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Queue {
    /// The limits it was made with.
    pub fn attr(&self) -> MqAttr {
        self.attr
    }

    /// The name is gone: descriptors show ` (deleted)`.
    fn unlinked(&self) {
        if let Some(d) = self.dentry.lock().upgrade() {
            d.set_deleted();
        }
    }

    /// Messages queued (`mq_curmsgs`).
    pub fn curmsgs(&self) -> usize {
        self.state.lock().curmsgs
    }

    /// The queue blocked senders and receivers (and `poll`) wait on.
    pub fn wait_queue(&self) -> &WaitQueue {
        &self.wq
    }

    fn touch(&self, modify: bool) {
        let mut m = self.meta.lock();
        let t = now();
        m.atime = t;
        m.ctime = t;
        if modify {
            m.mtime = t;
        }
    }

    /// One step of a send of `data` at `prio` (run again by the waiting loop until it
    /// is not `EAGAIN`; `ticket` starts `None`). A receiver blocked on the queue gets the
    /// message directly, the oldest first (Linux's `pipelined_send`); else it is queued.
    /// A full queue is `EAGAIN`; with `block`, the send also waits in line, and a
    /// receive that makes room queues the first waiting sender's message for it. Returns
    /// the registration to notify when the queue went from empty to non-empty (it is
    /// removed: a notification is one-shot).
    pub fn send_step(
        &self,
        data: &[u8],
        prio: u32,
        block: bool,
        ticket: &mut Option<u64>,
    ) -> Result<Option<Registration>, Errno> {
        let mut s = self.state.lock();
        if let Some(id) = *ticket {
            return if s.sent.remove(&id) {
                *ticket = None;
                Ok(None)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        if s.curmsgs as i64 >= self.attr.maxmsg {
            if block {
                let id = s.take_id();
                s.senders.push_back((id, data.to_vec(), prio));
                *ticket = Some(id);
            }
            return Err(Errno::EAGAIN);
        }
        if let Some(id) = s.receivers.pop_front() {
            s.handed.insert(id, (data.to_vec(), prio));
            drop(s);
            self.touch(true);
            self.wq.notify(events::ALL);
            return Ok(None);
        }
        s.insert(data.to_vec(), prio);
        let note = if s.curmsgs == 1 {
            s.notify.take()
        } else {
            None
        };
        drop(s);
        self.touch(true);
        self.wq.notify(events::ALL);
        Ok(note)
    }

    /// One step of a receive (see [`Queue::send_step`]): the oldest message of the
    /// highest priority, or one handed to this receiver while it waited. An empty queue
    /// is `EAGAIN`; with `block` the receiver also waits in line.
    pub fn receive_step(
        &self,
        block: bool,
        ticket: &mut Option<u64>,
    ) -> Result<(Vec<u8>, u32), Errno> {
        let mut s = self.state.lock();
        if let Some(id) = *ticket {
            return match s.handed.remove(&id) {
                Some(m) => {
                    *ticket = None;
                    Ok(m)
                }
                None => Err(Errno::EAGAIN),
            };
        }
        let Some(m) = s.take_first() else {
            if block {
                let id = s.take_id();
                s.receivers.push_back(id);
                *ticket = Some(id);
            }
            return Err(Errno::EAGAIN);
        };
        // Room now: the first waiting sender's message goes in (`pipelined_receive`).
        if let Some((id, data, prio)) = s.senders.pop_front() {
            s.insert(data, prio);
            s.sent.insert(id);
        }
        drop(s);
        self.touch(true);
        self.wq.notify(events::ALL);
        Ok(m)
    }

    /// A blocked send stopped waiting (timeout, signal): `true` if its message went in
    /// meanwhile (the send succeeded), else it leaves the line.
    pub fn cancel_send(&self, id: u64) -> bool {
        let mut s = self.state.lock();
        if s.sent.remove(&id) {
            return true;
        }
        s.senders.retain(|w| w.0 != id);
        false
    }

    /// A blocked receive stopped waiting: the message handed to it meanwhile, if any
    /// (the receive succeeded), else it leaves the line.
    pub fn cancel_receive(&self, id: u64) -> Option<(Vec<u8>, u32)> {
        let mut s = self.state.lock();
        if let Some(m) = s.handed.remove(&id) {
            return Some(m);
        }
        s.receivers.retain(|&w| w != id);
        None
    }

    /// `mq_notify`: registers `tgid` (`EBUSY` if a process is registered already), or
    /// with `None` removes `tgid`'s registration (another process's stays). Returns a
    /// registration that was removed.
    pub fn set_notify(
        &self,
        tgid: i32,
        how: Option<NotifyHow>,
    ) -> Result<Option<Registration>, Errno> {
        let mut s = self.state.lock();
        let out = match how {
            None => {
                if s.notify.as_ref().is_some_and(|r| r.tgid == tgid) {
                    s.notify.take()
                } else {
                    None
                }
            }
            Some(_) if s.notify.is_some() => return Err(Errno::EBUSY),
            Some(how) => {
                s.notify = Some(Registration { tgid, how });
                None
            }
        };
        drop(s);
        self.touch(false);
        Ok(out)
    }

    /// Forgets the registration of a process for which `alive` is false (it exited:
    /// Linux drops a registration when its owner closes the descriptor, as at exit).
    pub fn forget_dead(&self, alive: impl Fn(i32) -> bool) {
        let mut s = self.state.lock();
        if s.notify.as_ref().is_some_and(|r| !alive(r.tgid)) {
            s.notify = None;
        }
    }

    /// The line a read of a descriptor gives.
    pub fn info_line(&self) -> String {
        let s = self.state.lock();
        let (notify, signo, pid) = match &s.notify {
            Some(r) => (
                r.how.code(),
                match r.how {
                    NotifyHow::Signal { signo, .. } => signo,
                    _ => 0,
                },
                r.tgid,
            ),
            None => (0, 0, 0),
        };
        format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            s.qsize, notify, signo, pid
        )
    }
}

impl Inode for Queue {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.meta.lock().stat(self.dev, self.ino, 1, FILENT_SIZE))
    }

    /// An `open` in `/dev/mqueue` gives a descriptor like `mq_open`'s.
    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let q = self.me.upgrade().ok_or(Errno::ENOENT)?;
        Ok(Arc::new(QueueFile(q)))
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.meta.lock().apply(a)
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(MQUEUE_MAGIC))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The last byte of a `SIGEV_THREAD` cookie: a message arrived, or the registration went.
const NOTIFY_WOKENUP: u8 = 1;
const NOTIFY_REMOVED: u8 = 2;

/// Sends a `SIGEV_THREAD` cookie to its netlink socket, the last byte saying `why`.
fn send_cookie(sock: &OpenFile, mut cookie: [u8; NOTIFY_COOKIE_LEN], why: u8) {
    cookie[NOTIFY_COOKIE_LEN - 1] = why;
    if let Some(s) = sock
        .ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<crate::net::netlink::NetlinkSocket>())
    {
        s.deliver(cookie.to_vec());
    }
}

/// A removed registration: a `SIGEV_THREAD` one is told (`NOTIFY_REMOVED`), as Linux's
/// `remove_notification` does.
pub fn notify_removed(r: Registration) {
    if let NotifyHow::Thread { sock, cookie } = r.how {
        send_cookie(&sock, cookie, NOTIFY_REMOVED);
    }
}

/// A message arrived for a `SIGEV_THREAD` registration (`NOTIFY_WOKENUP`).
pub fn notify_thread(sock: &OpenFile, cookie: [u8; NOTIFY_COOKIE_LEN]) {
    send_cookie(sock, cookie, NOTIFY_WOKENUP);
}

/// An open queue: a descriptor `mq_open` returned, or an `open` in `/dev/mqueue`.
#[derive(Debug)]
pub struct QueueFile(pub Arc<Queue>);

impl FileOps for QueueFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let line = self.0.info_line();
        let b = line.as_bytes();
        let start = (off as usize).min(b.len());
        let n = buf.len().min(b.len() - start);
        buf[..n].copy_from_slice(&b[start..start + n]);
        if n > 0 {
            self.0.touch(false);
        }
        Ok(n)
    }

    /// Closing a descriptor drops the closer's `mq_notify` registration.
    fn flush(&self, caller: &Caller) {
        if let Ok(Some(r)) = self.0.set_notify(caller.tgid, None) {
            notify_removed(r);
        }
    }

    fn readiness(&self, mask: Events) -> Events {
        let s = self.0.state.lock();
        let mut r = 0;
        if s.curmsgs > 0 {
            r |= events::POLLIN | events::POLLRDNORM;
        }
        if (s.curmsgs as i64) < self.0.attr.maxmsg {
            r |= events::POLLOUT | events::POLLWRNORM;
        }
        r & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.0.wq)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_abi::flags::open::{O_CREAT, O_EXCL, O_RDONLY, O_RDWR, O_WRONLY};

    fn send(q: &Queue, m: &[u8], p: u32) -> Result<Option<Registration>, Errno> {
        q.send_step(m, p, false, &mut None)
    }

    fn recv(q: &Queue) -> Result<(Vec<u8>, u32), Errno> {
        q.receive_step(false, &mut None)
    }

    fn creator(uid: u32) -> Creator {
        let mut c = Creator::from_cred(&FsCred::user(uid, uid, vec![]));
        c.rlimit = 819_200;
        c
    }

    #[test]
    fn priorities_come_out_highest_first_and_fifo_within_one() {
        let fs = Mqueue::new();
        let (q, _) = fs
            .open_queue(b"q", O_CREAT | O_RDWR, 0o600, None, &creator(1000))
            .unwrap();
        for (m, p) in [(&b"a"[..], 1), (b"b", 5), (b"c", 1), (b"d", 5), (b"e", 0)] {
            send(&q, m, p).unwrap();
        }
        let got: Vec<(Vec<u8>, u32)> = (0..5).map(|_| recv(&q).unwrap()).collect();
        let want: Vec<(Vec<u8>, u32)> = [("b", 5), ("d", 5), ("a", 1), ("c", 1), ("e", 0)]
            .iter()
            .map(|(m, p)| (m.as_bytes().to_vec(), *p))
            .collect();
        assert_eq!(got, want);
        assert_eq!(recv(&q), Err(Errno::EAGAIN));
    }

    #[test]
    fn full_queue_refuses_and_notification_is_one_shot() {
        let fs = Mqueue::new();
        let attr = MqAttr {
            maxmsg: 2,
            msgsize: 8,
        };
        let (q, _) = fs
            .open_queue(b"q", O_CREAT | O_RDWR, 0o600, Some(attr), &creator(1000))
            .unwrap();
        q.set_notify(7, Some(NotifyHow::None)).unwrap();
        assert_eq!(
            q.set_notify(8, Some(NotifyHow::None)).err(),
            Some(Errno::EBUSY)
        );
        assert!(
            q.info_line()
                .starts_with("QSIZE:0          NOTIFY:1     SIGNO:0     NOTIFY_PID:7     \n")
        );
        assert_eq!(send(&q, b"abc", 0).unwrap().map(|r| r.tgid), Some(7));
        assert!(send(&q, b"de", 0).unwrap().is_none(), "one-shot");
        assert_eq!(send(&q, b"f", 0).err(), Some(Errno::EAGAIN));
        assert_eq!(
            q.info_line(),
            "QSIZE:5          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n"
        );
        // A blocked sender waits in line; a receive queues its message for it.
        let mut w = None;
        assert_eq!(
            q.send_step(b"w", 9, true, &mut w).err(),
            Some(Errno::EAGAIN)
        );
        assert_eq!(recv(&q).unwrap(), (b"abc".to_vec(), 0));
        assert!(q.send_step(b"w", 9, true, &mut w).unwrap().is_none());
        assert_eq!(w, None, "sent");
        assert_eq!(recv(&q).unwrap(), (b"w".to_vec(), 9));
        assert_eq!(recv(&q).unwrap(), (b"de".to_vec(), 0));
        // A blocked receiver gets the next message handed to it: the queue stays empty
        // and nobody is notified.
        q.set_notify(7, Some(NotifyHow::None)).unwrap();
        let mut r = None;
        assert_eq!(q.receive_step(true, &mut r), Err(Errno::EAGAIN));
        assert!(send(&q, b"x", 1).unwrap().is_none());
        assert_eq!(q.curmsgs(), 0);
        assert_eq!(q.receive_step(true, &mut r).unwrap(), (b"x".to_vec(), 1));
        // One that gave up leaves the line: the next send is queued and notifies.
        let mut r = None;
        assert_eq!(q.receive_step(true, &mut r), Err(Errno::EAGAIN));
        assert_eq!(r.map(|id| q.cancel_receive(id)), Some(None));
        assert_eq!(send(&q, b"y", 0).unwrap().map(|r| r.tgid), Some(7));
        assert_eq!(q.curmsgs(), 1);
    }

    #[test]
    fn open_checks_names_attributes_and_limits() {
        let fs = Mqueue::new();
        let who = creator(1000);
        assert_eq!(check_queue_name(b""), Err(Errno::EACCES));
        assert_eq!(check_queue_name(b"a/b"), Err(Errno::EACCES));
        assert_eq!(check_queue_name(b".."), Err(Errno::EACCES));
        assert_eq!(check_queue_name(&[b'x'; 256]), Err(Errno::ENAMETOOLONG));
        assert_eq!(
            fs.open_queue(b"q", O_RDONLY, 0, None, &who).err(),
            Some(Errno::ENOENT)
        );
        let bad = MqAttr {
            maxmsg: 11,
            msgsize: 8,
        };
        assert_eq!(
            fs.open_queue(b"q", O_CREAT | O_RDONLY, 0o600, Some(bad), &who)
                .err(),
            Some(Errno::EINVAL),
            "above msg_max without CAP_SYS_RESOURCE"
        );
        fs.open_queue(b"q", O_CREAT | O_RDONLY, 0o600, None, &who)
            .unwrap();
        assert_eq!(fs.charged(1000), 82_880);
        assert_eq!(
            fs.open_queue(b"q", O_CREAT | O_EXCL, 0o600, None, &who)
                .err(),
            Some(Errno::EEXIST)
        );
        assert_eq!(
            fs.open_queue(b"q", O_WRONLY, 0, None, &creator(1001)).err(),
            Some(Errno::EACCES)
        );
        assert_eq!(
            fs.open_queue(b"q", 3, 0, None, &who).err(),
            Some(Errno::EINVAL)
        );
        // 819200 bytes hold nine default queues.
        for i in 1..9u8 {
            fs.open_queue(&[b'a' + i], O_CREAT, 0o600, None, &who)
                .unwrap();
        }
        assert_eq!(
            fs.open_queue(b"z", O_CREAT, 0o600, None, &who).err(),
            Some(Errno::EMFILE)
        );
        assert_eq!(
            fs.unlink_queue(b"q", &FsCred::user(1001, 1001, vec![])),
            Err(Errno::EACCES)
        );
        fs.unlink_queue(b"q", &who.cred).unwrap();
        assert_eq!(
            fs.charged(1000),
            8 * 82_880,
            "charge returned with the queue"
        );
        assert_eq!(fs.unlink_queue(b"q", &who.cred), Err(Errno::ENOENT));
    }
}
