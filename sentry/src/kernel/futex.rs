//! Futexes: wait queues keyed by (address space, address).
//!
//! A waiter checks the futex word under the queue lock, so a waker that changes the word
//! and then calls wake (taking the same lock) can never be missed. Blocked waiters poll
//! their thread group's exit flag so that `exit_group` and fatal signals end them.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use linux_abi::Errno;

use super::task::Task;

/// Wake all waiters whose bitset intersects this (the plain `FUTEX_WAIT`/`WAKE` bitset).
pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// How often a blocked waiter re-checks whether its process is exiting.
const EXIT_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
struct Waiter {
    woken: Mutex<bool>,
    cv: Condvar,
}

#[derive(Debug)]
struct Entry {
    waiter: Arc<Waiter>,
    bitset: u32,
}

/// The futex wait queues of one kernel.
#[derive(Debug, Default)]
pub struct Futexes {
    queues: Mutex<HashMap<(usize, u64), Vec<Entry>>>,
}

fn key(t: &Task, addr: u64) -> (usize, u64) {
    (Arc::as_ptr(&t.mm()) as *const u8 as usize, addr)
}

impl Futexes {
    fn lock(&self) -> MutexGuard<'_, HashMap<(usize, u64), Vec<Entry>>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Blocks `t` while the word at `addr` equals `val`, until woken, `deadline`, or the
    /// process exits. Errors: `EAGAIN` (value differs), `ETIMEDOUT`, `EINTR`, `EFAULT`.
    pub fn wait(
        &self,
        t: &Task,
        addr: u64,
        val: u32,
        bitset: u32,
        deadline: Option<Instant>,
    ) -> Result<(), Errno> {
        if !addr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let k = key(t, addr);
        let waiter = Arc::new(Waiter::default());
        {
            let mut q = self.lock();
            let cur: u32 = t.mm().read_obj(addr)?;
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            q.entry(k).or_default().push(Entry {
                waiter: waiter.clone(),
                bitset,
            });
        }
        let mut woken = waiter.woken.lock().unwrap_or_else(|p| p.into_inner());
        let res = loop {
            if *woken {
                break Ok(());
            }
            if t.thread_group().is_exiting() {
                break Err(Errno::EINTR);
            }
            let mut wait = EXIT_POLL;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    break Err(Errno::ETIMEDOUT);
                }
                wait = wait.min(d - now);
            }
            woken = waiter
                .cv
                .wait_timeout(woken, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        };
        drop(woken);
        if res.is_err() {
            // Leave the queue; a wake that raced with the timeout still counts as a wake.
            let mut q = self.lock();
            if let Some(list) = q.get_mut(&k) {
                list.retain(|e| !Arc::ptr_eq(&e.waiter, &waiter));
                if list.is_empty() {
                    q.remove(&k);
                }
            }
            if *waiter.woken.lock().unwrap_or_else(|p| p.into_inner()) {
                return Ok(());
            }
        }
        res
    }

    /// Wakes up to `n` waiters on `addr` whose bitset intersects `bitset`; returns how many.
    pub fn wake(&self, t: &Task, addr: u64, n: u32, bitset: u32) -> Result<u64, Errno> {
        if !addr.is_multiple_of(4) || bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let k = key(t, addr);
        let mut q = self.lock();
        let Some(list) = q.get_mut(&k) else {
            return Ok(0);
        };
        let mut woken = 0u64;
        list.retain(|e| {
            if woken < u64::from(n) && e.bitset & bitset != 0 {
                *e.waiter.woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
                e.waiter.cv.notify_one();
                woken += 1;
                false
            } else {
                true
            }
        });
        if list.is_empty() {
            q.remove(&k);
        }
        Ok(woken)
    }

    /// `FUTEX_CMP_REQUEUE`/`FUTEX_REQUEUE`: wakes up to `n_wake` waiters on `addr` and
    /// moves up to `n_requeue` of the rest to `addr2`. With `expected`, fails with
    /// `EAGAIN` unless the word at `addr` still holds it.
    pub fn requeue(
        &self,
        t: &Task,
        addr: u64,
        addr2: u64,
        n_wake: u32,
        n_requeue: u32,
        expected: Option<u32>,
    ) -> Result<u64, Errno> {
        if !addr.is_multiple_of(4) || !addr2.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let (k1, k2) = (key(t, addr), key(t, addr2));
        let mut q = self.lock();
        if let Some(v) = expected {
            let cur: u32 = t.mm().read_obj(addr)?;
            if cur != v {
                return Err(Errno::EAGAIN);
            }
        }
        let list = q.remove(&k1).unwrap_or_default();
        let mut done = 0u64;
        let mut moved = Vec::new();
        let mut rest = Vec::new();
        for e in list {
            if done < u64::from(n_wake) {
                *e.waiter.woken.lock().unwrap_or_else(|p| p.into_inner()) = true;
                e.waiter.cv.notify_one();
                done += 1;
            } else if (moved.len() as u64) < u64::from(n_requeue) {
                moved.push(e);
            } else {
                rest.push(e);
            }
        }
        let requeued = moved.len() as u64;
        if !rest.is_empty() {
            q.insert(k1, rest);
        }
        if !moved.is_empty() {
            q.entry(k2).or_default().extend(moved);
        }
        Ok(done + requeued)
    }
}
