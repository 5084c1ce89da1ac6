//! Advisory file locks: POSIX record locks (`fcntl` `F_SETLK`...), open-file-description
//! record locks (`F_OFD_SETLK`...) and whole-file `flock(2)` locks, with Linux's semantics.
//!
//! The locks of one file live in its [`FileLocks`], found by the file's identity inside the
//! sandbox (`st_dev`, `st_ino`: the same object seen through two opens, two processes or
//! two hard links) in the [`LockRegistry`] that the [`Vfs`](super::Vfs) owns. The registry
//! holds its entries weakly; every [`OpenFile`](super::OpenFile) that took part in locking
//! keeps its file's `FileLocks` alive, and a lock outlives no open file of its owner.
//!
//! Owners ([`LockOwner`]): a POSIX lock belongs to a descriptor table (a process; the
//! table records the files it holds locks on and releases them when any descriptor of the
//! file is closed, and when the table goes away at exit); an OFD lock and a `flock` lock
//! belong to the open file description, released at its last close. POSIX and OFD record
//! locks share one list and conflict with each other; `flock` locks are a separate list, as
//! on Linux's local filesystems.
//!
//! Blocking requests (`F_SETLKW`, `flock` without `LOCK_NB`) sleep on the file's wait
//! queue and re-check on every change; a POSIX waiter records which owner it waits for,
//! so a request whose chain of waits comes back to its own owner fails with `EDEADLK`
//! (Linux's `posix_locks_deadlock`).
//!
//! # Example
//!
//! ```
//! use sentry::fs::lock::{LockOwner, LockRegistry, LockType};
//!
//! let reg = LockRegistry::default();
//! let file = reg.get((1, 42));
//! let (a, b) = (LockOwner::Process(1), LockOwner::Process(2));
//! file.set_record(a, Some(LockType::Write), 0, 99, 10, false).unwrap();
//! // A conflicting request fails at once without waiting...
//! assert!(file.set_record(b, Some(LockType::Read), 50, 50, 11, false).is_err());
//! // ...and the test reports the lock in the way.
//! let held = file.test_record(b, LockType::Read, 50, 50).unwrap();
//! assert_eq!((held.start, held.end, held.pid), (0, 99, 10));
//! file.release_records(a);
//! assert!(file.test_record(b, LockType::Write, 0, i64::MAX).is_none());
//! ```

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use linux_abi::Errno;

use crate::waiter::{WaitQueue, block_on, events};

/// The identity of a file for locking: `(st_dev, st_ino)`.
pub type FileKey = (u64, u64);

/// Largest offset a lock can reach (`OFFSET_MAX`); a lock ending here runs to EOF.
pub const OFFSET_MAX: i64 = i64::MAX;

/// Who holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockOwner {
    /// A POSIX record lock's owner: a descriptor table (a process), by its address.
    Process(usize),
    /// An OFD record lock's or a `flock` lock's owner: an open file description, by its
    /// address.
    File(usize),
}

/// A read (shared) or write (exclusive) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockType {
    /// Shared: `F_RDLCK`, `LOCK_SH`.
    Read,
    /// Exclusive: `F_WRLCK`, `LOCK_EX`.
    Write,
}

/// One record lock: bytes `start..=end` of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLock {
    /// The owner.
    pub owner: LockOwner,
    /// Read or write.
    pub kind: LockType,
    /// First byte.
    pub start: i64,
    /// Last byte ([`OFFSET_MAX`]: to the end of the file and beyond).
    pub end: i64,
    /// The thread-group id of the process that set it.
    pub pid: i32,
}

impl RecordLock {
    fn overlaps(&self, start: i64, end: i64) -> bool {
        self.start <= end && start <= self.end
    }
}

/// One `flock` lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WholeLock {
    owner: LockOwner,
    kind: LockType,
    pid: i32,
}

fn conflicts(a: LockType, b: LockType) -> bool {
    a == LockType::Write || b == LockType::Write
}

/// One lease (`F_SETLEASE`), owned by an open file description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lease {
    owner: LockOwner,
    kind: LockType,
    /// The process told of a break (the one that set the lease).
    pid: i32,
    /// Being broken: the type it must come down to (none: removed) and by when.
    breaking: Option<(Option<LockType>, Instant)>,
}

impl Lease {
    /// Whether an open for writing (`write`) or reading conflicts with this lease.
    fn conflicts_with_open(&self, write: bool) -> bool {
        write || self.kind == LockType::Write
    }
}

/// State shared by the tables of one registry.
#[derive(Debug, Default)]
struct Shared {
    /// Which POSIX owner each blocked POSIX request waits for (deadlock detection).
    waits_for: Mutex<HashMap<usize, usize>>,
    /// How many leases exist (opens skip lease breaking while there are none).
    leases: AtomicUsize,
}

/// Longest chain of waits followed (Linux's `MAX_DEADLK_ITERATIONS`).
const MAX_DEADLOCK_STEPS: usize = 10;

/// The locks of one file.
#[derive(Debug)]
pub struct FileLocks {
    key: FileKey,
    state: Mutex<LockState>,
    queue: WaitQueue,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct LockState {
    /// Leases.
    leases: Vec<Lease>,
    /// POSIX and OFD record locks, grouped by owner (in the order owners first locked),
    /// sorted by start within an owner, as Linux keeps them.
    records: Vec<RecordLock>,
    /// `flock` locks.
    whole: Vec<WholeLock>,
}

impl LockState {
    fn conflicting_record(
        &self,
        owner: LockOwner,
        kind: LockType,
        start: i64,
        end: i64,
    ) -> Option<RecordLock> {
        self.records
            .iter()
            .find(|l| l.owner != owner && l.overlaps(start, end) && conflicts(l.kind, kind))
            .copied()
    }

    /// Replaces `owner`'s locks over `start..=end` with `kind` (none: unlock), splitting
    /// and merging as Linux's `posix_lock_inode` does.
    fn apply(&mut self, owner: LockOwner, kind: Option<LockType>, start: i64, end: i64, pid: i32) {
        let at = self.records.iter().position(|l| l.owner == owner);
        let mut mine: Vec<RecordLock> = Vec::new();
        self.records.retain(|l| {
            if l.owner == owner {
                mine.push(*l);
                false
            } else {
                true
            }
        });
        let mut out: Vec<RecordLock> = Vec::with_capacity(mine.len() + 2);
        for l in mine {
            if !l.overlaps(start, end) {
                out.push(l);
                continue;
            }
            if l.start < start {
                out.push(RecordLock {
                    end: start - 1,
                    ..l
                });
            }
            if l.end > end {
                out.push(RecordLock {
                    start: end + 1,
                    ..l
                });
            }
        }
        if let Some(kind) = kind {
            out.push(RecordLock {
                owner,
                kind,
                start,
                end,
                pid,
            });
        }
        out.sort_by_key(|l| l.start);
        // Merge neighbours of the same type that touch or overlap.
        let mut merged: Vec<RecordLock> = Vec::with_capacity(out.len());
        for l in out {
            if let Some(last) = merged.last_mut()
                && last.kind == l.kind
                && (last.end == OFFSET_MAX || last.end + 1 >= l.start)
            {
                last.end = last.end.max(l.end);
                if kind.is_some() && l.overlaps(start, end) {
                    last.pid = pid;
                }
                continue;
            }
            merged.push(l);
        }
        let at = at.unwrap_or(self.records.len()).min(self.records.len());
        self.records.splice(at..at, merged);
    }
}

impl FileLocks {
    /// The file's identity.
    pub fn key(&self) -> FileKey {
        self.key
    }

    /// `F_GETLK`: the first lock of another owner that would block a `kind` lock over
    /// `start..=end` by `owner`.
    pub fn test_record(
        &self,
        owner: LockOwner,
        kind: LockType,
        start: i64,
        end: i64,
    ) -> Option<RecordLock> {
        self.state
            .lock()
            .conflicting_record(owner, kind, start, end)
    }

    /// `F_SETLK`/`F_SETLKW`: sets (`Some(kind)`) or removes (`None`) `owner`'s lock over
    /// `start..=end`. A conflict gives `EAGAIN`, or with `wait` sleeps until the way is
    /// clear (`EINTR` when a signal comes, `EDEADLK` when the waits would close a cycle).
    pub fn set_record(
        &self,
        owner: LockOwner,
        kind: Option<LockType>,
        start: i64,
        end: i64,
        pid: i32,
        wait: bool,
    ) -> Result<(), Errno> {
        if start < 0 || end < start {
            return Err(Errno::EINVAL);
        }
        let attempt = || -> Result<(), Errno> {
            let mut st = self.state.lock();
            if let Some(k) = kind
                && let Some(held) = st.conflicting_record(owner, k, start, end)
            {
                if wait
                    && let (LockOwner::Process(me), LockOwner::Process(them)) = (owner, held.owner)
                {
                    let mut w = self.shared.waits_for.lock();
                    if closes_cycle(&w, me, them) {
                        w.remove(&me);
                        return Err(Errno::EDEADLK);
                    }
                    w.insert(me, them);
                }
                return Err(Errno::EAGAIN);
            }
            st.apply(owner, kind, start, end, pid);
            drop(st);
            self.queue.notify(events::POLLIN);
            Ok(())
        };
        if !wait {
            return attempt();
        }
        let r = block_on(&[(&self.queue, events::POLLIN)], None, attempt);
        if let LockOwner::Process(me) = owner {
            self.shared.waits_for.lock().remove(&me);
        }
        r
    }

    /// Runs `f` on the state, keeping the registry's count of leases right.
    fn with_leases<T>(&self, f: impl FnOnce(&mut LockState) -> T) -> T {
        let mut st = self.state.lock();
        let before = st.leases.len();
        let r = f(&mut st);
        let after = st.leases.len();
        drop(st);
        if after > before {
            self.shared
                .leases
                .fetch_add(after - before, Ordering::AcqRel);
        } else if before > after {
            self.shared
                .leases
                .fetch_sub(before - after, Ordering::AcqRel);
            self.queue.notify(events::POLLIN);
        }
        r
    }

    /// `F_GETLEASE`: `owner`'s lease type (while it is being broken, the type it must
    /// come down to), or none.
    pub fn lease(&self, owner: LockOwner) -> Option<LockType> {
        let st = self.state.lock();
        let l = st.leases.iter().find(|l| l.owner == owner)?;
        match l.breaking {
            Some((to, _)) => to,
            None => Some(l.kind),
        }
    }

    /// `F_SETLEASE` for `owner`: takes, changes (`Some`) or removes (`None`) its lease, as
    /// Linux's `generic_add_lease`/`generic_delete_lease` do. `open_conflict(kind)` says
    /// whether other opens of the file forbid a `kind` lease (`EAGAIN`); `enabled` is
    /// `fs.leases-enable` (a new lease is `EINVAL` without it).
    pub fn set_lease(
        &self,
        owner: LockOwner,
        kind: Option<LockType>,
        pid: i32,
        enabled: bool,
        open_conflict: impl FnOnce(LockType) -> bool,
    ) -> Result<(), Errno> {
        let Some(kind) = kind else {
            return self.with_leases(|st| {
                let i = st
                    .leases
                    .iter()
                    .position(|l| l.owner == owner)
                    .ok_or(Errno::EAGAIN)?;
                st.leases.remove(i);
                Ok(())
            });
        };
        if open_conflict(kind) {
            return Err(Errno::EAGAIN);
        }
        let r = self.with_leases(|st| {
            for l in st.leases.iter().filter(|l| l.owner != owner) {
                if kind == LockType::Write || matches!(l.breaking, Some((None, _))) {
                    return Err(Errno::EAGAIN);
                }
            }
            if let Some(l) = st.leases.iter_mut().find(|l| l.owner == owner) {
                l.kind = kind;
                // Coming down to a read lease settles a pending downgrade.
                if kind == LockType::Read && matches!(l.breaking, Some((Some(_), _))) {
                    l.breaking = None;
                }
                return Ok(());
            }
            if !enabled {
                return Err(Errno::EINVAL);
            }
            st.leases.push(Lease {
                owner,
                kind,
                pid,
                breaking: None,
            });
            Ok(())
        });
        self.queue.notify(events::POLLIN);
        r
    }

    /// Starts breaking the leases an open by `opener` (for writing: `write`) conflicts
    /// with: each gets a deadline `break_time` away and the type it must come down to.
    /// Returns the processes to tell (with the lease-break signal) and whether the open
    /// has leases to wait for.
    pub fn break_leases(
        &self,
        opener: LockOwner,
        write: bool,
        break_time: Duration,
    ) -> (Vec<i32>, bool) {
        let mut st = self.state.lock();
        let now = Instant::now();
        let mut tell = Vec::new();
        let mut wait = false;
        for l in st.leases.iter_mut() {
            if l.owner == opener || !l.conflicts_with_open(write) {
                continue;
            }
            wait = true;
            let to = if write { None } else { Some(LockType::Read) };
            match l.breaking {
                None => {
                    l.breaking = Some((to, now + break_time));
                    tell.push(l.pid);
                }
                // A downgrade under way becomes a removal when a writer comes.
                Some((Some(_), deadline)) if to.is_none() => {
                    l.breaking = Some((None, deadline));
                    tell.push(l.pid);
                }
                Some(_) => {}
            }
        }
        (tell, wait)
    }

    /// Takes down by force the leases whose break time has passed (a removal, or a
    /// downgrade to a read lease).
    fn expire_leases(st: &mut LockState) {
        let now = Instant::now();
        st.leases.retain_mut(|l| match l.breaking {
            Some((to, d)) if d <= now => match to {
                None => false,
                Some(k) => {
                    l.kind = k;
                    l.breaking = None;
                    true
                }
            },
            _ => true,
        });
    }

    /// Waits for the leases being broken for an open by `opener` (see
    /// [`FileLocks::break_leases`]): until one of them changes (its holder gives it up or
    /// downgrades it) or the first break time passes (then it comes down by force).
    /// `EINTR` when a signal comes. The caller breaks again and waits until nothing
    /// conflicts.
    pub fn wait_leases_broken(&self, opener: LockOwner, write: bool) -> Result<(), Errno> {
        let pending = |st: &LockState| -> Option<Instant> {
            let mut first: Option<Instant> = None;
            for l in st
                .leases
                .iter()
                .filter(|l| l.owner != opener && l.conflicts_with_open(write))
            {
                // A conflicting lease not being broken: the caller starts its break.
                let (_, d) = l.breaking?;
                first = Some(first.map_or(d, |f| f.min(d)));
            }
            first
        };
        let deadline = self.with_leases(|st| {
            Self::expire_leases(st);
            pending(st)
        });
        let Some(deadline) = deadline else {
            return Ok(());
        };
        let r = block_on(&[(&self.queue, events::POLLIN)], Some(deadline), || {
            if pending(&self.state.lock()) == Some(deadline) {
                Err(Errno::EAGAIN)
            } else {
                Ok(())
            }
        });
        self.with_leases(Self::expire_leases);
        match r {
            Err(Errno::ETIMEDOUT) => Ok(()),
            r => r,
        }
    }

    /// Removes every record lock of `owner` (close, exit, last close of a description).
    pub fn release_records(&self, owner: LockOwner) {
        let mut st = self.state.lock();
        let before = st.records.len();
        st.records.retain(|l| l.owner != owner);
        let changed = st.records.len() != before;
        drop(st);
        if changed {
            self.queue.notify(events::POLLIN);
        }
    }

    /// Whether `owner` holds any record lock on the file.
    pub fn holds_records(&self, owner: LockOwner) -> bool {
        self.state.lock().records.iter().any(|l| l.owner == owner)
    }

    /// `flock(2)`: takes (`Some(kind)`) or drops (`None`) `owner`'s whole-file lock. A
    /// conversion first drops the old lock, as on Linux (so a failed `LOCK_NB` conversion
    /// leaves none). A conflict gives `EWOULDBLOCK`, or with `wait` sleeps (`EINTR` on a
    /// signal).
    pub fn flock(
        &self,
        owner: LockOwner,
        kind: Option<LockType>,
        pid: i32,
        wait: bool,
    ) -> Result<(), Errno> {
        {
            let mut st = self.state.lock();
            if let Some(i) = st.whole.iter().position(|l| l.owner == owner) {
                if Some(st.whole[i].kind) == kind {
                    return Ok(());
                }
                st.whole.remove(i);
                drop(st);
                self.queue.notify(events::POLLIN);
            }
        }
        let Some(kind) = kind else {
            return Ok(());
        };
        let attempt = || -> Result<(), Errno> {
            let mut st = self.state.lock();
            if st
                .whole
                .iter()
                .any(|l| l.owner != owner && conflicts(l.kind, kind))
            {
                return Err(Errno::EAGAIN);
            }
            st.whole.push(WholeLock { owner, kind, pid });
            Ok(())
        };
        if wait {
            block_on(&[(&self.queue, events::POLLIN)], None, attempt)
        } else {
            attempt()
        }
    }

    /// Removes `owner`'s `flock` lock, record locks and lease (the last close of a
    /// description).
    pub fn release_file(&self, owner: LockOwner) {
        let changed = self.with_leases(|st| {
            let before = st.records.len() + st.whole.len();
            st.records.retain(|l| l.owner != owner);
            st.whole.retain(|l| l.owner != owner);
            st.leases.retain(|l| l.owner != owner);
            st.records.len() + st.whole.len() != before
        });
        if changed {
            self.queue.notify(events::POLLIN);
        }
    }

    /// The record locks, in the table's order (for tests and `/proc/locks`).
    pub fn records(&self) -> Vec<RecordLock> {
        self.state.lock().records.clone()
    }

    fn describe(&self, n: &mut usize, out: &mut String) {
        let (dev, ino) = self.key;
        let dev = format!(
            "{:02x}:{:02x}:{ino}",
            super::dev_major(dev),
            super::dev_minor(dev)
        );
        let word = |k: LockType| match k {
            LockType::Read => "READ",
            LockType::Write => "WRITE",
        };
        let st = self.state.lock();
        for l in &st.records {
            *n += 1;
            let (class, pid) = match l.owner {
                LockOwner::Process(_) => ("POSIX ", l.pid),
                LockOwner::File(_) => ("OFDLCK", -1),
            };
            let end = if l.end == OFFSET_MAX {
                "EOF".to_string()
            } else {
                l.end.to_string()
            };
            let _ = writeln!(
                out,
                "{n}: {class} ADVISORY  {} {pid} {dev} {} {end}",
                word(l.kind),
                l.start
            );
        }
        for l in &st.whole {
            *n += 1;
            let _ = writeln!(
                out,
                "{n}: FLOCK  ADVISORY  {} {} {dev} 0 EOF",
                word(l.kind),
                l.pid
            );
        }
        for l in &st.leases {
            *n += 1;
            let (state, kind) = match l.breaking {
                Some((to, _)) => ("BREAKING", to.map_or("UNLCK", word)),
                None => ("ACTIVE  ", word(l.kind)),
            };
            let _ = writeln!(out, "{n}: LEASE  {state}  {kind} {} {dev} 0 EOF", l.pid);
        }
    }
}

/// Whether `me` waiting for `them` closes a cycle of POSIX owners waiting for each other.
fn closes_cycle(w: &HashMap<usize, usize>, me: usize, them: usize) -> bool {
    let mut cur = them;
    for _ in 0..=MAX_DEADLOCK_STEPS {
        if cur == me {
            return true;
        }
        match w.get(&cur) {
            Some(&next) => cur = next,
            None => return false,
        }
    }
    false
}

/// The lock tables of every locked file of one mount tree, by file identity.
#[derive(Debug, Default)]
pub struct LockRegistry {
    files: Mutex<HashMap<FileKey, Weak<FileLocks>>>,
    shared: Arc<Shared>,
}

impl LockRegistry {
    /// The lock table of the file `key` (made on first use).
    pub fn get(&self, key: FileKey) -> Arc<FileLocks> {
        let mut files = self.files.lock();
        if let Some(l) = files.get(&key).and_then(Weak::upgrade) {
            return l;
        }
        // Forget tables nobody holds any more before adding one.
        files.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(FileLocks {
            key,
            state: Mutex::new(LockState::default()),
            queue: WaitQueue::new(),
            shared: self.shared.clone(),
        });
        files.insert(key, Arc::downgrade(&l));
        l
    }

    /// Whether any lease exists (an open needs to look for leases to break).
    pub fn any_leases(&self) -> bool {
        self.shared.leases.load(Ordering::Acquire) > 0
    }

    /// The lock table of `key` if one exists.
    pub fn find(&self, key: FileKey) -> Option<Arc<FileLocks>> {
        self.files.lock().get(&key).and_then(Weak::upgrade)
    }

    /// The `/proc/locks` text: one line per lock, numbered, in Linux's format.
    pub fn proc_locks(&self) -> String {
        let mut tables: Vec<Arc<FileLocks>> = self
            .files
            .lock()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        tables.sort_by_key(|l| l.key);
        let mut out = String::new();
        let mut n = 0;
        for t in tables {
            t.describe(&mut n, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: LockOwner = LockOwner::Process(1);
    const B: LockOwner = LockOwner::Process(2);
    const R: Option<LockType> = Some(LockType::Read);
    const W: Option<LockType> = Some(LockType::Write);

    fn ranges(f: &FileLocks, o: LockOwner) -> Vec<(LockType, i64, i64)> {
        f.records()
            .into_iter()
            .filter(|l| l.owner == o)
            .map(|l| (l.kind, l.start, l.end))
            .collect()
    }

    #[test]
    fn split_convert_and_merge_one_owner() {
        let reg = LockRegistry::default();
        let f = reg.get((1, 1));
        f.set_record(A, R, 0, 99, 1, false).unwrap();
        f.set_record(A, W, 40, 59, 1, false).unwrap();
        assert_eq!(
            ranges(&f, A),
            vec![
                (LockType::Read, 0, 39),
                (LockType::Write, 40, 59),
                (LockType::Read, 60, 99)
            ]
        );
        // Unlocking the middle splits; relocking read merges everything back.
        f.set_record(A, None, 45, 49, 1, false).unwrap();
        assert_eq!(ranges(&f, A).len(), 4);
        f.set_record(A, R, 40, 59, 1, false).unwrap();
        assert_eq!(ranges(&f, A), vec![(LockType::Read, 0, 99)]);
        // Adjacent ranges of one type merge; to-EOF ranges stay to EOF.
        f.set_record(A, R, 100, OFFSET_MAX, 1, false).unwrap();
        assert_eq!(ranges(&f, A), vec![(LockType::Read, 0, OFFSET_MAX)]);
        f.set_record(A, None, 0, OFFSET_MAX, 1, false).unwrap();
        assert!(f.records().is_empty());
    }

    #[test]
    fn conflicts_between_owners_and_shared_reads() {
        let reg = LockRegistry::default();
        let f = reg.get((1, 2));
        f.set_record(A, R, 0, 9, 1, false).unwrap();
        f.set_record(B, R, 5, 14, 2, false).unwrap();
        assert_eq!(f.set_record(B, W, 5, 5, 2, false), Err(Errno::EAGAIN));
        assert_eq!(f.set_record(B, W, 10, 14, 2, false), Ok(()));
        let c = f.test_record(A, LockType::Write, 0, OFFSET_MAX).unwrap();
        assert_eq!((c.owner, c.start, c.end, c.pid), (B, 5, 9, 2));
        // OFD locks are another owner and conflict with POSIX ones.
        let ofd = LockOwner::File(7);
        assert_eq!(f.set_record(ofd, W, 0, 0, 3, false), Err(Errno::EAGAIN));
        assert_eq!(f.set_record(ofd, W, 20, 20, 3, false), Ok(()));
        f.release_records(B);
        assert_eq!(ranges(&f, B), vec![]);
        assert!(f.test_record(B, LockType::Write, 0, 9).is_some());
    }

    #[test]
    fn flock_conversion_and_exclusivity() {
        let reg = LockRegistry::default();
        let f = reg.get((1, 3));
        let (x, y) = (LockOwner::File(1), LockOwner::File(2));
        f.flock(x, R, 1, false).unwrap();
        f.flock(y, R, 2, false).unwrap();
        assert_eq!(f.flock(x, W, 1, false), Err(Errno::EAGAIN));
        // The failed conversion dropped x's shared lock, as on Linux.
        f.flock(y, W, 2, false).unwrap();
        f.release_file(y);
        f.flock(x, W, 1, false).unwrap();
        // Record locks are independent of flock.
        f.set_record(A, W, 0, OFFSET_MAX, 9, false).unwrap();
    }

    #[test]
    fn blocked_waiter_wakes_and_deadlock_is_refused() {
        let reg = LockRegistry::default();
        let (f, g) = (reg.get((1, 4)), reg.get((1, 5)));
        f.set_record(A, W, 0, 0, 1, false).unwrap();
        g.set_record(B, W, 0, 0, 2, false).unwrap();
        let f2 = f.clone();
        let t = std::thread::spawn(move || f2.set_record(B, W, 0, 0, 2, true));
        // Wait until B is recorded as waiting for A, then A's request for g would close
        // the cycle.
        while !reg.shared.waits_for.lock().contains_key(&2) {
            std::thread::yield_now();
        }
        assert_eq!(g.set_record(A, W, 0, 0, 1, true), Err(Errno::EDEADLK));
        f.set_record(A, None, 0, 0, 1, false).unwrap();
        assert_eq!(t.join().unwrap(), Ok(()));
        assert!(reg.shared.waits_for.lock().is_empty());
        assert_eq!(ranges(&f, B), vec![(LockType::Write, 0, 0)]);
    }

    #[test]
    fn leases_break_on_conflicting_opens() {
        let reg = LockRegistry::default();
        let f = reg.get((1, 6));
        let (x, y) = (LockOwner::File(1), LockOwner::File(2));
        let none = |_| false;
        assert_eq!(f.set_lease(x, None, 1, true, none), Err(Errno::EAGAIN));
        assert_eq!(f.set_lease(x, R, 1, false, none), Err(Errno::EINVAL));
        assert_eq!(f.set_lease(x, R, 1, true, |_| true), Err(Errno::EAGAIN));
        f.set_lease(x, R, 1, true, none).unwrap();
        assert!(reg.any_leases());
        assert_eq!(f.lease(x), R);
        // Readers do not break a read lease; a writer starts the break, once.
        assert_eq!(
            f.break_leases(y, false, Duration::from_secs(60)),
            (vec![], false)
        );
        assert_eq!(
            f.break_leases(y, true, Duration::from_secs(60)),
            (vec![1], true)
        );
        assert_eq!(
            f.break_leases(y, true, Duration::from_secs(60)),
            (vec![], true)
        );
        assert_eq!(f.lease(x), None);
        let f2 = f.clone();
        let t = std::thread::spawn(move || {
            while f2.break_leases(y, true, Duration::from_secs(60)).1 {
                f2.wait_leases_broken(y, true)?;
            }
            Ok::<(), Errno>(())
        });
        f.set_lease(x, None, 1, true, none).unwrap();
        assert_eq!(t.join().unwrap(), Ok(()));
        assert!(!reg.any_leases());
        // A break time that passes takes the lease down by force.
        f.set_lease(x, W, 1, true, none).unwrap();
        assert_eq!(f.break_leases(y, false, Duration::ZERO), (vec![1], true));
        assert_eq!(f.wait_leases_broken(y, false), Ok(()));
        assert_eq!(f.lease(x), R);
        f.release_file(x);
        assert!(!reg.any_leases());
    }

    #[test]
    fn registry_forgets_unheld_tables_and_formats_proc_locks() {
        let reg = LockRegistry::default();
        let f = reg.get((0x801, 12));
        f.set_record(A, W, 0, OFFSET_MAX, 5, false).unwrap();
        f.set_record(LockOwner::File(3), R, 0, OFFSET_MAX, 6, false)
            .unwrap_err();
        f.flock(LockOwner::File(3), R, 6, false).unwrap();
        assert_eq!(
            reg.proc_locks(),
            "1: POSIX  ADVISORY  WRITE 5 08:01:12 0 EOF\n2: FLOCK  ADVISORY  READ 6 08:01:12 0 EOF\n"
        );
        assert!(Arc::ptr_eq(&f, &reg.get((0x801, 12))));
        drop(f);
        assert_eq!(reg.proc_locks(), "");
    }
}
