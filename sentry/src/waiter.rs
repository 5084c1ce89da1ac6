//! Waiting: wait queues, per-task wakers and the blocking helper every sleeping system call
//! uses (modelled on gVisor's `waiter` package).
//!
//! - A [`WaitQueue`] belongs to an object that can become ready: a pipe, a socket, an
//!   eventfd, an epoll instance, a futex bucket, a process's child-exit notifications. The
//!   object calls [`WaitQueue::notify`] with the [`Events`] that happened; every registered
//!   entry whose interest mask intersects them is told.
//! - An entry is anything implementing [`Notify`]: a task's [`Waker`] (to wake a sleeping
//!   task) or a callback (epoll marks an item ready).
//! - A [`Waker`] is the per-task sleeping place: a generation counter behind a mutex and a
//!   condition variable. [`Waker::kick`] bumps the generation and wakes the sleeper; a
//!   sleeper that read the generation *before* re-checking readiness never misses a kick
//!   made after that read (no lost wake-ups). Each task thread installs its waker with
//!   [`set_current_waker`]; threads without one (unit tests, helper threads) get a private
//!   waker on first use.
//! - [`block`] and [`block_on`] register the current waker on some queues, re-check
//!   readiness, and sleep until ready, until a signal is pending ([`EINTR`]) or until the
//!   deadline ([`ETIMEDOUT`]). The signal check is a per-thread hook installed by the task
//!   loop with [`set_signal_pending_check`]; whoever makes a signal pending for a task must
//!   also [`Waker::kick`] that task's waker so that it notices.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use sentry::waiter::{block, events, WaitQueue};
//!
//! let q = Arc::new(WaitQueue::new());
//! let flag = Arc::new(AtomicBool::new(false));
//! let (q2, f2) = (q.clone(), flag.clone());
//! let t = std::thread::spawn(move || {
//!     f2.store(true, Ordering::SeqCst);
//!     q2.notify(events::POLLIN);
//! });
//! block(&[(&q, events::POLLIN)], None, || flag.load(Ordering::SeqCst)).unwrap();
//! t.join().unwrap();
//! ```
//!
//! [`EINTR`]: Errno::EINTR
//! [`ETIMEDOUT`]: Errno::ETIMEDOUT

use parking_lot::{Condvar, Mutex};
use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use linux_abi::Errno;

/// A set of readiness events: the `poll(2)` / `epoll(7)` bits (identical values).
pub type Events = u32;

/// Readiness event bits (`POLL*`, equal to `EPOLL*`).
pub mod events {
    /// Data to read.
    pub const POLLIN: u32 = 0x1;
    /// Urgent data / exceptional condition.
    pub const POLLPRI: u32 = 0x2;
    /// Writing will not block.
    pub const POLLOUT: u32 = 0x4;
    /// Error condition (always reported).
    pub const POLLERR: u32 = 0x8;
    /// Hang up (always reported).
    pub const POLLHUP: u32 = 0x10;
    /// Invalid descriptor (`poll` only).
    pub const POLLNVAL: u32 = 0x20;
    /// Normal data to read.
    pub const POLLRDNORM: u32 = 0x40;
    /// Priority band data to read.
    pub const POLLRDBAND: u32 = 0x80;
    /// Normal data may be written.
    pub const POLLWRNORM: u32 = 0x100;
    /// Priority data may be written.
    pub const POLLWRBAND: u32 = 0x200;
    /// Peer closed its writing half (stream sockets, pipes).
    pub const POLLRDHUP: u32 = 0x2000;
    /// Every readable-side event.
    pub const READ: u32 = POLLIN | POLLRDNORM | POLLPRI | POLLRDBAND | POLLRDHUP;
    /// Every writable-side event.
    pub const WRITE: u32 = POLLOUT | POLLWRNORM | POLLWRBAND;
    /// Events reported whether asked for or not.
    pub const ALWAYS: u32 = POLLERR | POLLHUP;
    /// Every event (what a waiter interested in "anything" registers for).
    pub const ALL: u32 = u32::MAX;
}

/// Something told when a [`WaitQueue`] it is registered on is notified.
pub trait Notify: Send + Sync {
    /// Called with the events that happened (already filtered by the entry's interest).
    /// Runs with the queue's entry list locked: it must not register or unregister on the
    /// same queue.
    fn notify(&self, events: Events);
}

/// A task's sleeping place (see the module documentation).
#[derive(Debug, Default)]
pub struct Waker {
    generation: Mutex<u64>,
    cond: Condvar,
    /// How many threads sleep in [`Waker::sleep`] now (a task's `S` state in `/proc`).
    sleepers: std::sync::atomic::AtomicU32,
}

impl Waker {
    /// A new waker.
    pub fn new() -> Arc<Waker> {
        Arc::new(Waker::default())
    }

    /// Wakes the sleeper (now, or at its next sleep if it read the generation before
    /// this call).
    pub fn kick(&self) {
        *self.generation.lock() += 1;
        self.cond.notify_all();
    }

    /// The current generation; pass it to [`Waker::sleep`] after re-checking readiness.
    pub fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Sleeps until the generation differs from `seen` or `deadline` passes. Returns false
    /// on timeout.
    pub fn sleep(&self, seen: u64, deadline: Option<Instant>) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.sleepers.fetch_add(1, Relaxed);
        let woken = self.sleep_inner(seen, deadline);
        self.sleepers.fetch_sub(1, Relaxed);
        woken
    }

    /// Counts the caller as asleep until the guard is dropped, for a wait that happens
    /// outside [`Waker::sleep`] (a host `ppoll` on a terminal or pipe given as stdio).
    pub fn asleep(&self) -> Asleep<'_> {
        self.sleepers
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Asleep(self)
    }

    /// Whether a thread sleeps on this waker now.
    pub fn is_sleeping(&self) -> bool {
        self.sleepers.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    fn sleep_inner(&self, seen: u64, deadline: Option<Instant>) -> bool {
        let mut g = self.generation.lock();
        while *g == seen {
            match deadline {
                None => self.cond.wait(&mut g),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    self.cond.wait_for(&mut g, d - now);
                }
            }
        }
        true
    }
}

/// A task counted as asleep ([`Waker::asleep`]).
#[derive(Debug)]
pub struct Asleep<'a>(&'a Waker);

impl Drop for Asleep<'_> {
    fn drop(&mut self) {
        self.0
            .sleepers
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Waker {
    /// Same as [`Waker::generation`] (the task-side name).
    pub fn seq(&self) -> u64 {
        self.generation()
    }

    /// Same as [`Waker::kick`] (the task-side name).
    pub fn wake(&self) {
        self.kick();
    }

    /// Sleeps like [`Waker::sleep`], at most [`SAFETY_SLICE`] (the task-side name).
    pub fn wait(&self, seen: u64, deadline: Option<Instant>) {
        let slice = Instant::now() + SAFETY_SLICE;
        self.sleep(seen, Some(deadline.map_or(slice, |d| d.min(slice))));
    }
}

impl Notify for Waker {
    fn notify(&self, _events: Events) {
        self.kick();
    }
}

/// A function used as a wait-queue entry (epoll items, tests).
pub struct FnNotify<F: Fn(Events) + Send + Sync>(pub F);

impl<F: Fn(Events) + Send + Sync> Notify for FnNotify<F> {
    fn notify(&self, events: Events) {
        (self.0)(events)
    }
}

impl<F: Fn(Events) + Send + Sync> fmt::Debug for FnNotify<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnNotify")
    }
}

/// The handle of a registration on a [`WaitQueue`], for [`WaitQueue::unregister`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntryId(u64);

struct Entry {
    id: u64,
    mask: Events,
    target: Arc<dyn Notify>,
}

/// A list of entries waiting for events on one object.
#[derive(Default)]
pub struct WaitQueue {
    entries: Mutex<Vec<Entry>>,
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitQueue")
            .field("entries", &self.entries.lock().len())
            .finish()
    }
}

static NEXT_ENTRY: AtomicU64 = AtomicU64::new(1);

impl WaitQueue {
    /// An empty queue.
    pub fn new() -> WaitQueue {
        WaitQueue::default()
    }

    /// Registers `target` for the events in `mask`.
    pub fn register(&self, mask: Events, target: Arc<dyn Notify>) -> EntryId {
        let id = NEXT_ENTRY.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().push(Entry { id, mask, target });
        EntryId(id)
    }

    /// Registers `target` until the returned guard is dropped.
    pub fn register_scoped(&self, mask: Events, target: Arc<dyn Notify>) -> Registration<'_> {
        Registration {
            queue: self,
            id: self.register(mask, target),
        }
    }

    /// Removes a registration (no-op if already gone).
    pub fn unregister(&self, id: EntryId) {
        self.entries.lock().retain(|e| e.id != id.0);
    }

    /// Tells every entry interested in any of `events` (entries always hear `POLLERR` and
    /// `POLLHUP`).
    pub fn notify(&self, events: Events) {
        let targets: Vec<(Arc<dyn Notify>, Events)> = self
            .entries
            .lock()
            .iter()
            .filter(|e| (e.mask | events::ALWAYS) & events != 0)
            .map(|e| (e.target.clone(), events & (e.mask | events::ALWAYS)))
            .collect();
        for (t, ev) in targets {
            t.notify(ev);
        }
    }

    /// Whether nobody is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.lock().is_empty()
    }

    /// The union of the interest masks of all entries.
    pub fn interest(&self) -> Events {
        self.entries.lock().iter().fold(0, |a, e| a | e.mask)
    }
}

/// A registration removed when dropped (see [`WaitQueue::register_scoped`]).
#[derive(Debug)]
pub struct Registration<'a> {
    queue: &'a WaitQueue,
    id: EntryId,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.queue.unregister(self.id);
    }
}

/// The check a blocking operation makes: true when the calling task must stop waiting
/// (a signal is pending and unblocked, or the task is being killed or is exiting).
pub type SignalPendingCheck = Box<dyn Fn() -> bool>;

thread_local! {
    static WAKER: RefCell<Option<Arc<Waker>>> = const { RefCell::new(None) };
    static SIGNAL_CHECK: RefCell<Option<SignalPendingCheck>> = const { RefCell::new(None) };
}

/// Installs the waker of the calling thread (the task loop does this once per task thread
/// with the task's own waker, which signal senders kick).
pub fn set_current_waker(w: Arc<Waker>) {
    WAKER.with(|c| *c.borrow_mut() = Some(w));
}

/// The calling thread's waker (a private one is made on first use if none is installed).
pub fn current_waker() -> Arc<Waker> {
    WAKER.with(|c| c.borrow_mut().get_or_insert_with(Waker::new).clone())
}

/// Installs the calling thread's signal check (see [`SignalPendingCheck`]).
pub fn set_signal_pending_check(check: SignalPendingCheck) {
    SIGNAL_CHECK.with(|c| *c.borrow_mut() = Some(check));
}

/// Whether the calling thread's task must stop waiting (false without a check).
pub fn signal_pending() -> bool {
    SIGNAL_CHECK.with(|c| c.borrow().as_ref().is_some_and(|f| f()))
}

/// Blocks the calling task until `ready()` returns true.
///
/// Registers the current waker on every queue in `queues` with its interest mask, then
/// loops: read the waker generation, call `ready()`, and sleep until kicked. Returns
/// `Err(EINTR)` when [`signal_pending`] (callers that restart turn it into
/// `ERESTARTSYS`), `Err(ETIMEDOUT)` once `deadline` has passed. `ready()` is always called
/// at least once, before any sleep.
pub fn block(
    queues: &[(&WaitQueue, Events)],
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Errno> {
    block_on(queues, deadline, || {
        if ready() { Ok(()) } else { Err(Errno::EAGAIN) }
    })
}

/// Runs `op` until it stops returning `EAGAIN` ("would block"), sleeping between tries like
/// [`block`]. Returns what `op` returned, or `EINTR` / `ETIMEDOUT`.
pub fn block_on<T>(
    queues: &[(&WaitQueue, Events)],
    deadline: Option<Instant>,
    mut op: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    match op() {
        Err(Errno::EAGAIN) => {}
        r => return r,
    }
    let w = current_waker();
    let _regs: Vec<Registration<'_>> = queues
        .iter()
        .map(|(q, m)| q.register_scoped(*m, w.clone()))
        .collect();
    loop {
        let seen = w.generation();
        match op() {
            Err(Errno::EAGAIN) => {}
            r => return r,
        }
        if signal_pending() {
            return Err(Errno::EINTR);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Errno::ETIMEDOUT);
        }
        // A safety net for wake-ups that ring another waker than the installed one: the
        // signal check runs at least every SAFETY_SLICE.
        let slice = Instant::now() + SAFETY_SLICE;
        w.sleep(seen, Some(deadline.map_or(slice, |d| d.min(slice))));
    }
}

/// The longest [`block_on`] sleeps before re-checking readiness and signals even without
/// a kick.
pub const SAFETY_SLICE: std::time::Duration = std::time::Duration::from_millis(200);

/// Sleeps until `deadline` (or forever), a signal ending the sleep with `EINTR`; the
/// deadline passing gives `Ok` (for `nanosleep`-like calls).
pub fn sleep_until(deadline: Option<Instant>) -> Result<(), Errno> {
    match block(&[], deadline, || false) {
        Err(Errno::ETIMEDOUT) => Ok(()),
        r => r,
    }
}

/// A callback run by a kernel's timer thread (see [`TimerQueue::call_at`]).
pub type TimerCallback = Box<dyn FnOnce() + Send>;

struct TimerEntry {
    at: Instant,
    seq: u64,
    f: TimerCallback,
}

impl PartialEq for TimerEntry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Reversed: the heap's top is the earliest.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
struct TimerHeap {
    entries: std::collections::BinaryHeap<TimerEntry>,
    seq: u64,
    /// Whether the thread runs (it starts with the first callback).
    started: bool,
    /// Set when the owning [`TimerQueue`] is dropped: the thread ends.
    stopped: bool,
}

#[derive(Default)]
struct TimerShared {
    heap: Mutex<TimerHeap>,
    cond: Condvar,
}

/// The timer thread of one kernel: runs callbacks at given instants (timerfd
/// expirations). The [`Kernel`](crate::Kernel) owns one; its thread starts with the first
/// callback and ends, dropping the callbacks still pending, when the queue is dropped.
pub struct TimerQueue {
    shared: Arc<TimerShared>,
}

impl fmt::Debug for TimerQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerQueue")
            .field("pending", &self.pending())
            .finish()
    }
}

impl TimerQueue {
    /// A queue without a thread yet.
    pub fn new() -> Arc<TimerQueue> {
        Arc::new(TimerQueue {
            shared: Arc::default(),
        })
    }

    /// Runs `f` on this queue's timer thread at `at` (at once if it has passed).
    /// Callbacks must be short and must not block; they typically notify a [`WaitQueue`]
    /// or kick a [`Waker`]. Cancel by having `f` check a generation number it captured.
    pub fn call_at(&self, at: Instant, f: TimerCallback) {
        let mut h = self.shared.heap.lock();
        let seq = h.seq;
        h.seq += 1;
        h.entries.push(TimerEntry { at, seq, f });
        if !h.started {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("sentry-timers".into())
                .spawn(move || timer_loop(&shared));
            match spawned {
                Ok(_) => h.started = true,
                // Tried again at the next call; the callback waits until then.
                Err(e) => tracing::error!("cannot start the timer thread: {e}"),
            }
        }
        drop(h);
        self.shared.cond.notify_all();
    }

    /// How many callbacks wait for their time.
    pub fn pending(&self) -> usize {
        self.shared.heap.lock().entries.len()
    }
}

impl Drop for TimerQueue {
    fn drop(&mut self) {
        let pending = {
            let mut h = self.shared.heap.lock();
            h.stopped = true;
            std::mem::take(&mut h.entries)
        };
        self.shared.cond.notify_all();
        // Dropped outside the lock: a callback's captures may be anything.
        drop(pending);
    }
}

fn timer_loop(s: &TimerShared) {
    let mut heap = s.heap.lock();
    while !heap.stopped {
        let now = Instant::now();
        match heap.entries.peek().map(|e| e.at) {
            Some(at) if at <= now => {
                if let Some(e) = heap.entries.pop() {
                    drop(heap);
                    (e.f)();
                    heap = s.heap.lock();
                }
            }
            Some(at) => {
                s.cond.wait_for(&mut heap, at - now);
            }
            None => s.cond.wait(&mut heap),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn notify_wakes_only_interested_entries() {
        let q = WaitQueue::new();
        let hits = Arc::new(AtomicU64::new(0));
        let h = hits.clone();
        let id = q.register(
            events::POLLIN,
            Arc::new(FnNotify(move |ev| {
                h.fetch_add(u64::from(ev), Ordering::SeqCst);
            })),
        );
        q.notify(events::POLLOUT);
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        q.notify(events::POLLIN | events::POLLOUT);
        assert_eq!(hits.load(Ordering::SeqCst), u64::from(events::POLLIN));
        q.notify(events::POLLHUP);
        assert_eq!(
            hits.load(Ordering::SeqCst),
            u64::from(events::POLLIN | events::POLLHUP)
        );
        q.unregister(id);
        assert!(q.is_empty());
    }

    #[test]
    fn timer_callbacks_run() {
        let q = TimerQueue::new();
        let w = Waker::new();
        let seen = w.generation();
        let w2 = w.clone();
        q.call_at(Instant::now(), Box::new(move || w2.kick()));
        assert!(w.sleep(seen, None));
    }

    /// Each kernel has its own timer queue: when one kernel's queue goes, its pending
    /// callbacks go with it (a process-wide timer thread kept them), and the other's still
    /// run.
    #[test]
    fn timer_queues_of_two_kernels_are_separate() {
        struct Dropped(Arc<AtomicBool>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let one = TimerQueue::new();
        let two = TimerQueue::new();
        let gone = Arc::new(AtomicBool::new(false));
        let guard = Dropped(gone.clone());
        let far = Instant::now() + Duration::from_secs(3600);
        one.call_at(
            far,
            Box::new(move || {
                let _keep = &guard;
            }),
        );
        assert_eq!((one.pending(), two.pending()), (1, 0));
        drop(one);
        assert!(
            gone.load(Ordering::SeqCst),
            "the dropped queue's callback is gone"
        );
        let w = Waker::new();
        let seen = w.generation();
        let w2 = w.clone();
        two.call_at(Instant::now(), Box::new(move || w2.kick()));
        assert!(w.sleep(seen, None), "the other kernel's timers still run");
    }

    #[test]
    fn kick_before_sleep_is_not_lost() {
        let w = Waker::new();
        let seen = w.generation();
        w.kick();
        assert!(w.sleep(seen, None), "returns at once");
    }

    #[test]
    fn block_wakes_on_notify_and_unregisters() {
        let q = Arc::new(WaitQueue::new());
        let flag = Arc::new(AtomicBool::new(false));
        let (q2, f2) = (q.clone(), flag.clone());
        let t = std::thread::spawn(move || {
            block(&[(&q2, events::POLLIN)], None, || f2.load(Ordering::SeqCst))
        });
        // Keep notifying until the waiter is surely registered and has seen the flag.
        flag.store(true, Ordering::SeqCst);
        while !t.is_finished() {
            q.notify(events::POLLIN);
            std::thread::yield_now();
        }
        assert_eq!(t.join().unwrap(), Ok(()));
        assert!(q.is_empty(), "registration removed");
    }

    #[test]
    fn block_times_out_and_is_interrupted() {
        let q = WaitQueue::new();
        let d = Instant::now() + Duration::from_millis(1);
        assert_eq!(
            block(&[(&q, events::POLLIN)], Some(d), || false),
            Err(Errno::ETIMEDOUT)
        );
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let waker = Arc::new(std::sync::OnceLock::<Arc<Waker>>::new());
        let w2 = waker.clone();
        let t = std::thread::spawn(move || {
            let _ = w2.set(current_waker());
            set_signal_pending_check(Box::new(move || s2.load(Ordering::SeqCst)));
            block(&[], None, || false)
        });
        let w = loop {
            if let Some(w) = waker.get() {
                break w.clone();
            }
            std::thread::yield_now();
        };
        stop.store(true, Ordering::SeqCst);
        w.kick();
        assert_eq!(t.join().unwrap(), Err(Errno::EINTR));
        assert_eq!(sleep_until(Some(Instant::now())), Ok(()));
    }
}
