//! inotify: watches on files and directories, and the events the VFS reports to them.
//!
//! [`FsNotify`] is one mount tree's notification hub (Linux's fsnotify, for inotify
//! only). Watches are kept by file identity (device and inode number), so every name and
//! every mount of a file share them, as Linux's marks on the inode. The VFS reports each
//! change where Linux's `fsnotify_*` hooks do: a file's own watches get the event, and a
//! watched directory gets its children's events with the child's name. Nothing is done,
//! not even a `stat`, while no watch exists.
//!
//! [`Inotify`] is an `inotify_init1` descriptor: its watches (numbered from 1, never
//! reused), and its queue of events, read as `struct inotify_event` records. As Linux:
//! an event identical to the last one queued is merged into it; past the instance's
//! `max_queued_events` one `IN_Q_OVERFLOW` event ends the queue; `IN_ONESHOT` watches go
//! after their first event; a removed watch queues `IN_IGNORED`; a file deleted while
//! open is reported deleted (`IN_DELETE_SELF`) at its last close.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::mode::{S_IFDIR, S_IFMT};
use linux_abi::flags::open::O_NONBLOCK;

use super::lock::FileKey;
use super::vfs::Dentry;
use super::{FileOps, Inode};
use crate::waiter::{Events, WaitQueue, block_on, events};

/// The event and flag bits of `<sys/inotify.h>`.
pub mod bits {
    /// File read.
    pub const IN_ACCESS: u32 = 0x1;
    /// File written.
    pub const IN_MODIFY: u32 = 0x2;
    /// Metadata changed.
    pub const IN_ATTRIB: u32 = 0x4;
    /// A writable file closed.
    pub const IN_CLOSE_WRITE: u32 = 0x8;
    /// A read-only file closed.
    pub const IN_CLOSE_NOWRITE: u32 = 0x10;
    /// File opened.
    pub const IN_OPEN: u32 = 0x20;
    /// A name moved out of the watched directory.
    pub const IN_MOVED_FROM: u32 = 0x40;
    /// A name moved into the watched directory.
    pub const IN_MOVED_TO: u32 = 0x80;
    /// A name created in the watched directory.
    pub const IN_CREATE: u32 = 0x100;
    /// A name removed from the watched directory.
    pub const IN_DELETE: u32 = 0x200;
    /// The watched file deleted.
    pub const IN_DELETE_SELF: u32 = 0x400;
    /// The watched file moved.
    pub const IN_MOVE_SELF: u32 = 0x800;
    /// Every event above.
    pub const IN_ALL_EVENTS: u32 = 0xfff;
    /// The file system unmounted.
    pub const IN_UNMOUNT: u32 = 0x2000;
    /// The queue overflowed.
    pub const IN_Q_OVERFLOW: u32 = 0x4000;
    /// The watch was removed.
    pub const IN_IGNORED: u32 = 0x8000;
    /// Watch only a directory.
    pub const IN_ONLYDIR: u32 = 0x0100_0000;
    /// Do not follow a final symlink.
    pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
    /// No events for children once unlinked.
    pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
    /// Fail with `EEXIST` if the file is already watched.
    pub const IN_MASK_CREATE: u32 = 0x1000_0000;
    /// Add to the watch's mask instead of replacing it.
    pub const IN_MASK_ADD: u32 = 0x2000_0000;
    /// The subject is a directory.
    pub const IN_ISDIR: u32 = 0x4000_0000;
    /// One event, then the watch goes.
    pub const IN_ONESHOT: u32 = 0x8000_0000;
    /// Every bit `inotify_add_watch` knows.
    pub const ALL_INOTIFY_BITS: u32 = IN_ALL_EVENTS
        | IN_UNMOUNT
        | IN_Q_OVERFLOW
        | IN_IGNORED
        | IN_ONLYDIR
        | IN_DONT_FOLLOW
        | IN_EXCL_UNLINK
        | IN_MASK_CREATE
        | IN_MASK_ADD
        | IN_ISDIR
        | IN_ONESHOT;
    /// `inotify_init1` flags.
    pub const IN_NONBLOCK: u32 = 0o4000;
    /// See `IN_NONBLOCK`.
    pub const IN_CLOEXEC: u32 = 0o2000000;
}
use bits::*;

/// The size of `struct inotify_event` without its name.
const EVENT_HEADER: usize = 16;

/// The mount tree's notification hub (see the module documentation).
#[derive(Debug, Default)]
pub struct FsNotify {
    /// Live watches, of every instance: nothing is looked up while it is 0.
    live: AtomicUsize,
    /// The last move cookie given out.
    cookie: AtomicU32,
    /// The watches of each watched file.
    marks: Mutex<HashMap<FileKey, Vec<Arc<Watch>>>>,
    /// Watched files whose last name went while they were open: deleted at last close.
    unlinked_open: Mutex<HashSet<FileKey>>,
    /// Instances and watches per user (real uid), for the `max_user_*` limits.
    per_user: Mutex<HashMap<u32, (usize, usize)>>,
}

/// One watch of one instance on one file.
#[derive(Debug)]
struct Watch {
    wd: i32,
    key: FileKey,
    /// Events wanted, with `IN_ONESHOT` and `IN_EXCL_UNLINK`.
    mask: AtomicU32,
    instance: Weak<Inotify>,
}

/// The identity and type of an inode, if it has them.
fn key_of(inode: &Arc<dyn Inode>) -> Option<(FileKey, bool)> {
    let st = inode.stat().ok()?;
    Some(((st.st_dev, st.st_ino), st.st_mode & S_IFMT == S_IFDIR))
}

impl FsNotify {
    /// A hub with no watches.
    pub fn new() -> Arc<FsNotify> {
        Arc::new(FsNotify::default())
    }

    /// Whether any watch exists (the hooks do nothing otherwise).
    pub fn active(&self) -> bool {
        self.live.load(Ordering::Acquire) > 0
    }

    /// A new cookie tying an `IN_MOVED_FROM` to its `IN_MOVED_TO`.
    pub fn next_cookie(&self) -> u32 {
        let c = self.cookie.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if c == 0 { self.next_cookie() } else { c }
    }

    /// `mask` happened to the file of `d`: its own watches get it, and its directory's
    /// watches get it with its name (as Linux's `fsnotify_parent`), unless the name was
    /// removed and the watch has `IN_EXCL_UNLINK`.
    pub fn on_dentry(&self, d: &Dentry, mask: u32) {
        if !self.active() {
            return;
        }
        let Some((key, dir)) = key_of(d.inode()) else {
            return;
        };
        let mask = if dir { mask | IN_ISDIR } else { mask };
        if let Some(parent) = d.parent()
            && let Some((pkey, _)) = key_of(parent.inode())
        {
            self.deliver(pkey, mask, 0, Some(&d.name()), d.is_deleted());
        }
        self.deliver(key, mask, 0, None, false);
    }

    /// `mask` happened to `inode` itself: only its own watches get it, without
    /// `IN_ISDIR` (as Linux reports `IN_MOVE_SELF` and `IN_DELETE_SELF`).
    pub fn on_inode(&self, inode: &Arc<dyn Inode>, mask: u32) {
        if !self.active() {
            return;
        }
        if let Some((key, _)) = key_of(inode) {
            self.deliver(key, mask, 0, None, false);
        }
    }

    /// `mask` happened to the name `name` in the directory `dir` (create, delete, moves;
    /// `is_dir` when the name is a directory's).
    pub fn on_child(
        &self,
        dir: &Arc<dyn Inode>,
        name: &[u8],
        mask: u32,
        cookie: u32,
        is_dir: bool,
    ) {
        if !self.active() {
            return;
        }
        if let Some((key, _)) = key_of(dir) {
            let mask = if is_dir { mask | IN_ISDIR } else { mask };
            self.deliver(key, mask, cookie, Some(name), false);
        }
    }

    /// The last name of `inode` went. If `busy` (it is still open or in use), it is
    /// deleted when the last user lets go ([`FsNotify::on_release`]); otherwise now:
    /// `IN_DELETE_SELF`, then every watch on it goes with `IN_IGNORED`.
    pub fn on_last_unlink(&self, inode: &Arc<dyn Inode>, busy: bool) {
        if !self.active() {
            return;
        }
        let Some((key, dir)) = key_of(inode) else {
            return;
        };
        if busy && !dir {
            if self.marks.lock().contains_key(&key) {
                self.unlinked_open.lock().insert(key);
            }
            return;
        }
        self.deleted(key);
    }

    /// The last user of a file whose last name went let go of it (see
    /// [`FsNotify::on_last_unlink`]).
    pub fn on_release(&self, inode: &Arc<dyn Inode>) {
        if !self.active() {
            return;
        }
        let Some((key, _)) = key_of(inode) else {
            return;
        };
        if self.unlinked_open.lock().remove(&key) {
            self.deleted(key);
        }
    }

    fn deleted(&self, key: FileKey) {
        self.deliver(key, IN_DELETE_SELF, 0, None, false);
        let watches = self.marks.lock().remove(&key).unwrap_or_default();
        self.unlinked_open.lock().remove(&key);
        for w in watches {
            self.forget(&w);
        }
    }

    /// Queues `mask` to the watches of `key` that want it.
    fn deliver(&self, key: FileKey, mask: u32, cookie: u32, name: Option<&[u8]>, unlinked: bool) {
        let watches = match self.marks.lock().get(&key) {
            Some(w) => w.clone(),
            None => return,
        };
        for w in watches {
            let wants = w.mask.load(Ordering::Acquire);
            if wants & mask & (IN_ALL_EVENTS | IN_UNMOUNT) == 0 {
                continue;
            }
            if name.is_some() && unlinked && wants & IN_EXCL_UNLINK != 0 {
                continue;
            }
            let Some(inst) = w.instance.upgrade() else {
                continue;
            };
            inst.push(Event {
                wd: w.wd,
                mask,
                cookie,
                name: name.map(<[u8]>::to_vec),
            });
            if wants & IN_ONESHOT != 0 && self.remove_mark(&w) {
                self.forget(&w);
            }
        }
    }

    /// Takes `w` out of the file's watches (the instance still has it).
    fn remove_mark(&self, w: &Arc<Watch>) -> bool {
        let mut marks = self.marks.lock();
        let Some(list) = marks.get_mut(&w.key) else {
            return false;
        };
        let before = list.len();
        list.retain(|x| !Arc::ptr_eq(x, w));
        let removed = list.len() != before;
        if list.is_empty() {
            marks.remove(&w.key);
        }
        removed
    }

    /// `w`, already out of the marks, leaves its instance with `IN_IGNORED`.
    fn forget(&self, w: &Arc<Watch>) {
        if let Some(inst) = w.instance.upgrade()
            && inst.drop_watch(w.wd)
        {
            inst.push(Event {
                wd: w.wd,
                mask: IN_IGNORED,
                cookie: 0,
                name: None,
            });
        }
        self.live.fetch_sub(1, Ordering::AcqRel);
    }

    fn count_user(&self, uid: u32, instances: isize, watches: isize) {
        let mut u = self.per_user.lock();
        let e = u.entry(uid).or_default();
        e.0 = e.0.saturating_add_signed(instances);
        e.1 = e.1.saturating_add_signed(watches);
        if *e == (0, 0) {
            u.remove(&uid);
        }
    }
}

/// One queued event.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Option<Vec<u8>>,
}

impl Event {
    /// The name's length in the record: NUL-terminated, padded to a multiple of the
    /// header's size.
    fn name_len(&self) -> usize {
        self.name
            .as_ref()
            .map_or(0, |n| (n.len() + 1).next_multiple_of(EVENT_HEADER))
    }

    fn size(&self) -> usize {
        EVENT_HEADER + self.name_len()
    }

    fn write(&self, out: &mut [u8]) {
        let len = self.name_len();
        out[0..4].copy_from_slice(&self.wd.to_ne_bytes());
        out[4..8].copy_from_slice(&self.mask.to_ne_bytes());
        out[8..12].copy_from_slice(&self.cookie.to_ne_bytes());
        out[12..16].copy_from_slice(&(len as u32).to_ne_bytes());
        let rest = &mut out[EVENT_HEADER..EVENT_HEADER + len];
        rest.fill(0);
        if let Some(n) = &self.name {
            rest[..n.len()].copy_from_slice(n);
        }
    }
}

/// The limits an instance was made with (`/proc/sys/fs/inotify`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `max_queued_events`.
    pub max_queued_events: usize,
    /// `max_user_instances`.
    pub max_user_instances: usize,
    /// `max_user_watches`.
    pub max_user_watches: usize,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Event>,
    bytes: usize,
    watches: BTreeMap<i32, Arc<Watch>>,
    by_key: HashMap<FileKey, i32>,
}

/// An inotify instance (see the module documentation).
#[derive(Debug)]
pub struct Inotify {
    /// This instance (what its watches point back to).
    me: Weak<Inotify>,
    hub: Arc<FsNotify>,
    uid: u32,
    limits: Limits,
    next_wd: AtomicI32,
    state: Mutex<State>,
    queue: WaitQueue,
    nonblock: AtomicBool,
}

impl Inotify {
    /// A new instance of user `uid` (`EMFILE` past `max_user_instances`); `flags` are
    /// `inotify_init1`'s.
    pub fn new(
        hub: &Arc<FsNotify>,
        uid: u32,
        limits: Limits,
        flags: u32,
    ) -> Result<Arc<Inotify>, Errno> {
        {
            let mut u = hub.per_user.lock();
            let e = u.entry(uid).or_default();
            if e.0 >= limits.max_user_instances {
                return Err(Errno::EMFILE);
            }
            e.0 += 1;
        }
        Ok(Arc::new_cyclic(|me| Inotify {
            me: me.clone(),
            hub: hub.clone(),
            uid,
            limits,
            next_wd: AtomicI32::new(1),
            state: Mutex::new(State::default()),
            queue: WaitQueue::new(),
            nonblock: AtomicBool::new(flags & IN_NONBLOCK != 0),
        }))
    }

    /// `inotify_add_watch` on the resolved `inode`, `mask` already checked: the watch's
    /// descriptor (the existing one, its mask replaced or added to, if the file is
    /// watched already).
    pub fn add_watch(&self, inode: &Arc<dyn Inode>, mask: u32) -> Result<i32, Errno> {
        let (key, _) = key_of(inode).ok_or(Errno::ENOENT)?;
        let wanted = mask & (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK);
        let mut st = self.state.lock();
        if let Some(wd) = st.by_key.get(&key).copied()
            && let Some(w) = st.watches.get(&wd)
        {
            if mask & IN_MASK_CREATE != 0 {
                return Err(Errno::EEXIST);
            }
            if mask & IN_MASK_ADD != 0 {
                w.mask.fetch_or(wanted, Ordering::AcqRel);
            } else {
                w.mask.store(wanted, Ordering::Release);
            }
            return Ok(wd);
        }
        {
            let mut u = self.hub.per_user.lock();
            let e = u.entry(self.uid).or_default();
            if e.1 >= self.limits.max_user_watches {
                return Err(Errno::ENOSPC);
            }
            e.1 += 1;
        }
        let wd = self.next_wd.fetch_add(1, Ordering::Relaxed);
        if wd <= 0 {
            self.hub.count_user(self.uid, 0, -1);
            return Err(Errno::ENOSPC);
        }
        let w = Arc::new(Watch {
            wd,
            key,
            mask: AtomicU32::new(wanted),
            instance: self.me.clone(),
        });
        st.watches.insert(wd, w.clone());
        st.by_key.insert(key, wd);
        self.hub.live.fetch_add(1, Ordering::AcqRel);
        self.hub.marks.lock().entry(key).or_default().push(w);
        Ok(wd)
    }

    /// `inotify_rm_watch`: `EINVAL` for a descriptor that is not a live watch.
    pub fn rm_watch(&self, wd: i32) -> Result<(), Errno> {
        let w = self
            .state
            .lock()
            .watches
            .get(&wd)
            .cloned()
            .ok_or(Errno::EINVAL)?;
        if self.hub.remove_mark(&w) {
            self.hub.forget(&w);
        }
        Ok(())
    }

    /// Takes the watch `wd` out of the instance; whether it was there.
    fn drop_watch(&self, wd: i32) -> bool {
        let mut st = self.state.lock();
        let Some(w) = st.watches.remove(&wd) else {
            return false;
        };
        st.by_key.remove(&w.key);
        drop(st);
        self.hub.count_user(self.uid, 0, -1);
        true
    }

    fn push(&self, ev: Event) {
        let mut st = self.state.lock();
        let overflow = Event {
            wd: -1,
            mask: IN_Q_OVERFLOW,
            cookie: 0,
            name: None,
        };
        let ev = if st.events.len() >= self.limits.max_queued_events {
            overflow
        } else {
            ev
        };
        if st.events.back() == Some(&ev) {
            return;
        }
        st.bytes += ev.size();
        st.events.push_back(ev);
        drop(st);
        self.queue.notify(events::POLLIN | events::POLLRDNORM);
    }
}

impl Drop for Inotify {
    /// The last close: every watch goes (no events: nobody can read them).
    fn drop(&mut self) {
        let watches = std::mem::take(&mut self.state.get_mut().watches);
        for w in watches.values() {
            if self.hub.remove_mark(w) {
                self.hub.live.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.hub.count_user(self.uid, -1, -(watches.len() as isize));
    }
}

impl FileOps for Inotify {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let mut op = || {
            let mut st = self.state.lock();
            let first = st.events.front().ok_or(Errno::EAGAIN)?;
            if first.size() > buf.len() {
                return Err(Errno::EINVAL);
            }
            let mut done = 0;
            while let Some(ev) = st.events.front() {
                let n = ev.size();
                if done + n > buf.len() {
                    break;
                }
                ev.write(&mut buf[done..done + n]);
                done += n;
                st.bytes -= n;
                st.events.pop_front();
            }
            Ok(done)
        };
        if self.nonblock.load(Ordering::Relaxed) {
            op()
        } else {
            block_on(&[(&self.queue, events::POLLIN)], None, op)
        }
    }

    fn write_at(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readable(&self) -> Option<u64> {
        Some(self.state.lock().bytes as u64)
    }

    fn readiness(&self, mask: Events) -> Events {
        if self.state.lock().events.is_empty() {
            0
        } else {
            (events::POLLIN | events::POLLRDNORM) & mask
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.nonblock
            .store(flags & O_NONBLOCK != 0, Ordering::Relaxed);
        Ok(())
    }

    /// One line per watch, as Linux's `inotify_show_fdinfo` (without the file handle):
    /// the device in the kernel's own encoding, the mask with the watch's flags.
    fn fdinfo(&self) -> String {
        let st = self.state.lock();
        let mut out = String::new();
        for (wd, w) in &st.watches {
            let (dev, ino) = w.key;
            out.push_str(&format!(
                "inotify wd:{wd:x} ino:{ino:x} sdev:{:x} mask:{:x} ignored_mask:0\n",
                (super::dev_major(dev) << 20) | super::dev_minor(dev),
                w.mask.load(Ordering::Acquire)
            ));
        }
        out
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}
