//! `epoll(7)`: an interest list of (descriptor, file) items and the readiness they report.
//!
//! Each item registers a callback on its file's [`WaitQueue`]; the callback marks the item
//! as having a new edge and notifies the epoll instance's own queue (so `epoll_wait`, and
//! an outer epoll or `poll` watching this one, wake). [`Epoll::collect`] walks the items
//! and asks each file for its current [`FileOps::readiness`]:
//!
//! - level-triggered items are reported while ready;
//! - `EPOLLET` items are reported once per edge (a notification since the last report, or
//!   the registration itself when the file was ready then);
//! - `EPOLLONESHOT` items are disabled after one report until `EPOLL_CTL_MOD`.
//!
//! Files without a wait queue that may still change (host descriptors,
//! [`FileOps::needs_polling`]) are re-checked periodically by the waiter; `epoll_ctl` on a
//! file that is always ready (regular files, directories) fails with `EPERM` as on Linux.
//! Items hold their file weakly: closing the last descriptor of a file drops its items.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use linux_abi::Errno;

use super::file::OpenFile;
use super::{Caller, FileOps};

use crate::waiter::{EntryId, Events, FnNotify, WaitQueue, events};

/// `EPOLL_CTL_ADD`.
pub const EPOLL_CTL_ADD: i32 = 1;
/// `EPOLL_CTL_DEL`.
pub const EPOLL_CTL_DEL: i32 = 2;
/// `EPOLL_CTL_MOD`.
pub const EPOLL_CTL_MOD: i32 = 3;
/// `EPOLLEXCLUSIVE` (accepted; every waiter is woken).
pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
/// `EPOLLWAKEUP` (ignored).
pub const EPOLLWAKEUP: u32 = 1 << 29;
/// `EPOLLONESHOT`.
pub const EPOLLONESHOT: u32 = 1 << 30;
/// `EPOLLET`.
pub const EPOLLET: u32 = 1 << 31;

/// One reported event (`struct epoll_event` contents).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpollEvent {
    /// The ready events.
    pub events: u32,
    /// The user data given at registration.
    pub data: u64,
}

#[derive(Debug)]
struct Item {
    file: Weak<OpenFile>,
    /// Interest and flags (`EPOLLET`, `EPOLLONESHOT`...).
    mask: u32,
    data: u64,
    /// A notification arrived since the last report (for `EPOLLET`).
    edge: Arc<AtomicBool>,
    /// Disabled by `EPOLLONESHOT` after a report.
    disabled: bool,
    entry: Option<EntryId>,
    /// Last readiness seen, for polled files in edge-triggered mode.
    last: Events,
}

impl Item {
    fn unregister(&mut self) {
        if let (Some(id), Some(f)) = (self.entry.take(), self.file.upgrade())
            && let Some(q) = f.ops().wait_queue()
        {
            q.unregister(id);
        }
    }
}

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    /// Keyed by (descriptor, address of the file description).
    items: Mutex<BTreeMap<(i32, usize), Item>>,
    queue: Arc<WaitQueue>,
}

impl Default for Epoll {
    fn default() -> Self {
        Self::new()
    }
}

impl Epoll {
    /// An empty instance.
    pub fn new() -> Epoll {
        Epoll {
            items: Mutex::new(BTreeMap::new()),
            queue: Arc::new(WaitQueue::new()),
        }
    }

    /// The `nth` (from 0) file registered under descriptor `fd`, in registration-key
    /// order (`kcmp(KCMP_EPOLL_TFD)`; one descriptor number can name several files when
    /// it was closed and reused after registration).
    pub fn target(&self, fd: i32, nth: u32) -> Option<Arc<OpenFile>> {
        self.items
            .lock()
            .range((fd, 0)..=(fd, usize::MAX))
            .filter_map(|(_, i)| i.file.upgrade())
            .nth(nth as usize)
    }

    /// `epoll_ctl`: `op` on descriptor `fd` naming `file`, with `events` and `data`.
    /// `me` is this epoll's own description (a file cannot watch itself).
    pub fn ctl(
        &self,
        me: &Arc<OpenFile>,
        op: i32,
        fd: i32,
        file: &Arc<OpenFile>,
        ev: u32,
        data: u64,
    ) -> Result<(), Errno> {
        if Arc::ptr_eq(me, file) {
            return Err(Errno::EINVAL);
        }
        let ops = file.ops();
        if ops.wait_queue().is_none() && !ops.needs_polling() {
            return Err(Errno::EPERM);
        }
        if let Some(inner) = ops.as_any().and_then(|a| a.downcast_ref::<Epoll>())
            && inner.watches(me, 4)
        {
            return Err(Errno::ELOOP);
        }
        let key = (fd, Arc::as_ptr(file) as usize);
        let mut items = self.items.lock();
        items.retain(|_, i| i.file.strong_count() > 0);
        match op {
            EPOLL_CTL_ADD => {
                if items.contains_key(&key) {
                    return Err(Errno::EEXIST);
                }
                let mut item = Item {
                    file: Arc::downgrade(file),
                    mask: ev,
                    data,
                    edge: Arc::new(AtomicBool::new(false)),
                    disabled: false,
                    entry: None,
                    last: 0,
                };
                self.register(&mut item, file);
                items.insert(key, item);
            }
            EPOLL_CTL_MOD => {
                let item = items.get_mut(&key).ok_or(Errno::ENOENT)?;
                if item.mask & EPOLLEXCLUSIVE != 0 || ev & EPOLLEXCLUSIVE != 0 {
                    return Err(Errno::EINVAL);
                }
                item.unregister();
                item.mask = ev;
                item.data = data;
                item.disabled = false;
                item.edge.store(false, Ordering::Release);
                item.last = 0;
                self.register(item, file);
            }
            EPOLL_CTL_DEL => {
                let mut item = items.remove(&key).ok_or(Errno::ENOENT)?;
                item.unregister();
            }
            _ => return Err(Errno::EINVAL),
        }
        drop(items);
        // The new interest may already be satisfied.
        self.queue.notify(events::POLLIN);
        Ok(())
    }

    fn register(&self, item: &mut Item, file: &Arc<OpenFile>) {
        if let Some(q) = file.ops().wait_queue() {
            let edge = item.edge.clone();
            let mine = Arc::downgrade(&self.queue);
            let interest = (item.mask & !(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP))
                | events::ALWAYS;
            item.entry = Some(q.register(
                interest,
                Arc::new(FnNotify(move |_ev| {
                    edge.store(true, Ordering::Release);
                    if let Some(q) = mine.upgrade() {
                        q.notify(events::POLLIN | events::POLLRDNORM);
                    }
                })),
            ));
            // The registration is an edge only if the file is ready now (Linux's
            // `ep_insert` queues the item then, and later only wake-ups do): a file that
            // becomes ready afterwards is reported when its notification comes, once,
            // even where that notification comes late (a host socket's, from the
            // notifier thread) and `epoll_wait` saw the readiness first. Checked after
            // registering, so that a notification in between is not lost.
            if file.ops().readiness(interest) & interest != 0 {
                item.edge.store(true, Ordering::Release);
            }
        }
    }

    /// Whether `target` is reachable from this instance within `depth` nested levels.
    fn watches(&self, target: &Arc<OpenFile>, depth: u32) -> bool {
        if depth == 0 {
            return true;
        }
        let files: Vec<Arc<OpenFile>> = self
            .items
            .lock()
            .values()
            .filter_map(|i| i.file.upgrade())
            .collect();
        files.iter().any(|f| {
            Arc::ptr_eq(f, target)
                || f.ops()
                    .as_any()
                    .and_then(|a| a.downcast_ref::<Epoll>())
                    .is_some_and(|e| e.watches(target, depth - 1))
        })
    }

    /// Whether some watched file needs periodic re-checks while waiting.
    pub fn needs_polling_items(&self) -> bool {
        self.items
            .lock()
            .values()
            .filter_map(|i| i.file.upgrade())
            .any(|f| f.ops().needs_polling())
    }

    /// Takes up to `max` ready events (consuming edges and one-shots); `peek` only
    /// tells whether any is ready, consuming nothing.
    pub fn collect(&self, caller: &Caller, max: usize, peek: bool) -> Vec<EpollEvent> {
        let mut out = Vec::new();
        let mut items = self.items.lock();
        items.retain(|_, i| i.file.strong_count() > 0);
        for item in items.values_mut() {
            if out.len() >= max {
                break;
            }
            if item.disabled {
                continue;
            }
            let Some(file) = item.file.upgrade() else {
                continue;
            };
            let polled = item.entry.is_none();
            let want = item.mask & !(EPOLLET | EPOLLONESHOT | EPOLLEXCLUSIVE | EPOLLWAKEUP);
            let ready =
                file.ops().readiness_for(caller, want | events::ALWAYS) & (want | events::ALWAYS);
            if ready == 0 {
                if polled {
                    item.last = 0;
                }
                continue;
            }
            if item.mask & EPOLLET != 0 {
                let edge = if polled {
                    ready & !item.last != 0
                } else {
                    item.edge.load(Ordering::Acquire)
                };
                if !edge {
                    continue;
                }
                if !peek {
                    item.edge.store(false, Ordering::Release);
                    item.last = ready;
                }
            }
            if !peek && item.mask & EPOLLONESHOT != 0 {
                item.disabled = true;
            }
            out.push(EpollEvent {
                events: ready,
                data: item.data,
            });
        }
        out
    }

    /// The queue `epoll_wait` sleeps on.
    pub fn queue(&self) -> &WaitQueue {
        &self.queue
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        for item in self.items.lock().values_mut() {
            item.unregister();
        }
    }
}

impl FileOps for Epoll {
    fn read_at(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn write_at(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readiness(&self, mask: Events) -> Events {
        self.readiness_for(&Caller::KERNEL, mask)
    }

    fn readiness_for(&self, caller: &Caller, mask: Events) -> Events {
        if self.collect(caller, 1, true).is_empty() {
            0
        } else {
            (events::POLLIN | events::POLLRDNORM) & mask
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn needs_polling(&self) -> bool {
        self.needs_polling_items()
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::anon::anon_file;
    use crate::fs::pipe::new_pipe;
    use linux_abi::flags::open::O_RDONLY;

    fn ep() -> (Arc<OpenFile>, Arc<Epoll>) {
        let e = Arc::new(Epoll::new());
        let f = anon_file("eventpoll", 0o600, O_RDONLY, e.clone());
        (f, e)
    }

    #[test]
    fn level_edge_and_oneshot() {
        let (r, w) = new_pipe(0);
        let (ef, e) = ep();
        e.ctl(&ef, EPOLL_CTL_ADD, 3, &r, events::POLLIN, 7).unwrap();
        assert!(e.collect(&Caller::KERNEL, 8, false).is_empty());
        w.write(&Caller::KERNEL, b"x").unwrap();
        let ev = e.collect(&Caller::KERNEL, 8, false);
        assert_eq!(
            ev,
            vec![EpollEvent {
                events: events::POLLIN,
                data: 7
            }]
        );
        assert_eq!(
            e.collect(&Caller::KERNEL, 8, false).len(),
            1,
            "level-triggered: still ready"
        );
        e.ctl(&ef, EPOLL_CTL_MOD, 3, &r, events::POLLIN | EPOLLET, 8)
            .unwrap();
        assert_eq!(
            e.collect(&Caller::KERNEL, 8, false).len(),
            1,
            "the MOD is an edge"
        );
        assert!(
            e.collect(&Caller::KERNEL, 8, false).is_empty(),
            "edge consumed"
        );
        w.write(&Caller::KERNEL, b"y").unwrap();
        assert_eq!(
            e.collect(&Caller::KERNEL, 8, false).len(),
            1,
            "new data, new edge"
        );
        e.ctl(&ef, EPOLL_CTL_MOD, 3, &r, events::POLLIN | EPOLLONESHOT, 9)
            .unwrap();
        assert_eq!(e.collect(&Caller::KERNEL, 8, false).len(), 1);
        assert!(
            e.collect(&Caller::KERNEL, 8, false).is_empty(),
            "one-shot disabled"
        );
        assert_eq!(
            e.ctl(&ef, EPOLL_CTL_ADD, 3, &r, events::POLLIN, 0),
            Err(Errno::EEXIST)
        );
        e.ctl(&ef, EPOLL_CTL_DEL, 3, &r, 0, 0).unwrap();
        assert_eq!(e.ctl(&ef, EPOLL_CTL_DEL, 3, &r, 0, 0), Err(Errno::ENOENT));
        assert_eq!(
            e.ctl(&ef, EPOLL_CTL_ADD, 4, &ef, events::POLLIN, 0),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn nested_epoll_and_loops() {
        let (r, w) = new_pipe(0);
        let (inner_f, inner) = ep();
        let (outer_f, outer) = ep();
        inner
            .ctl(&inner_f, EPOLL_CTL_ADD, 3, &r, events::POLLIN, 1)
            .unwrap();
        outer
            .ctl(&outer_f, EPOLL_CTL_ADD, 4, &inner_f, events::POLLIN, 2)
            .unwrap();
        assert!(outer.collect(&Caller::KERNEL, 8, false).is_empty());
        w.write(&Caller::KERNEL, b"z").unwrap();
        assert_eq!(outer.collect(&Caller::KERNEL, 8, false)[0].data, 2);
        assert_eq!(
            inner.ctl(&inner_f, EPOLL_CTL_ADD, 5, &outer_f, events::POLLIN, 0),
            Err(Errno::ELOOP)
        );
    }
}
