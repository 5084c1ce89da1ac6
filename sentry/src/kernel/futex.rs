//! Futexes: wait queues keyed by address.
//!
//! Private futexes (`FUTEX_PRIVATE_FLAG`) are keyed by (address space, address); shared
//! ones by the memory-file offset of the word when it lies in a shared mapping, so that
//! processes sharing memory after `fork` or through a shared file meet on the same queue
//! (a shared futex in private memory falls back to the private key, as on Linux).
//!
//! A waiter checks the futex word under the queue lock, so a waker that changes the word
//! and then calls wake (taking the same lock) can never be missed. A waiter sleeps on its
//! task's [`super::task::Waker`], so that signals and exits interrupt it.

use parking_lot::{Mutex, MutexGuard};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use linux_abi::Errno;

use super::task::{Task, Waker};

/// Wake all waiters whose bitset intersects this (the plain `FUTEX_WAIT`/`WAKE` bitset).
pub const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// Where a futex lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// (address space, address).
    Private(usize, u64),
    /// Memory-file offset.
    Shared(u64),
}

#[derive(Debug)]
struct Entry {
    waker: Arc<Waker>,
    woken: Arc<AtomicBool>,
    bitset: u32,
}

impl Entry {
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The futex wait queues of one kernel.
#[derive(Debug, Default)]
pub struct Futexes {
    queues: Mutex<HashMap<Key, Vec<Entry>>>,
}

fn key(t: &Task, addr: u64, private: bool) -> Result<Key, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    if !private && let Some(off) = mm.shared_offset(addr)? {
        return Ok(Key::Shared(off));
    }
    Ok(Key::Private(Arc::as_ptr(&mm) as *const u8 as usize, addr))
}

/// The operation and comparison of `FUTEX_WAKE_OP`, decoded from `val3`.
fn wake_op(encoded: u32, old: u32) -> Result<(u32, bool), Errno> {
    let sext12 = |v: u32| ((v << 20) as i32) >> 20;
    let mut op = (encoded >> 28) & 0xf;
    let cmp = (encoded >> 24) & 0xf;
    let mut oparg = sext12((encoded >> 12) & 0xfff) as u32;
    let cmparg = sext12(encoded & 0xfff);
    if op & 8 != 0 {
        op &= 7;
        oparg = 1u32.checked_shl(oparg).unwrap_or(0);
    }
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return Err(Errno::ENOSYS),
    };
    let o = old as i32;
    let hit = match cmp {
        0 => o == cmparg,
        1 => o != cmparg,
        2 => o < cmparg,
        3 => o <= cmparg,
        4 => o > cmparg,
        5 => o >= cmparg,
        _ => return Err(Errno::ENOSYS),
    };
    Ok((new, hit))
}

impl Futexes {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Vec<Entry>>> {
        self.queues.lock()
    }

    fn wake_locked(q: &mut HashMap<Key, Vec<Entry>>, k: Key, n: u32, bitset: u32) -> u64 {
        let Some(list) = q.get_mut(&k) else {
            return 0;
        };
        let mut woken = 0u64;
        list.retain(|e| {
            if woken < u64::from(n) && e.bitset & bitset != 0 {
                e.wake();
                woken += 1;
                false
            } else {
                true
            }
        });
        if list.is_empty() {
            q.remove(&k);
        }
        woken
    }

    /// Blocks `t` while the word at `addr` equals `val`, until woken or `deadline`.
    /// Errors: `EAGAIN` (value differs), `ETIMEDOUT`, `EINTR` (a signal or exit),
    /// `EFAULT`, `EINVAL`.
    pub fn wait(
        &self,
        t: &Task,
        addr: u64,
        private: bool,
        val: u32,
        bitset: u32,
        deadline: Option<Instant>,
    ) -> Result<(), Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let k = key(t, addr, private)?;
        let woken = Arc::new(AtomicBool::new(false));
        {
            let mut q = self.lock();
            let cur: u32 = t.mm().read_obj(addr)?;
            if cur != val {
                return Err(Errno::EAGAIN);
            }
            q.entry(k).or_default().push(Entry {
                waker: t.waker().clone(),
                woken: woken.clone(),
                bitset,
            });
        }
        let res = t.block_on(deadline, || woken.load(Ordering::Acquire).then_some(Ok(())));
        if res.is_err() {
            // Leave the queue (a requeue may have moved us to another key); a wake that
            // raced with the timeout or signal still counts as a wake.
            let mut q = self.lock();
            q.retain(|_, list| {
                list.retain(|e| !Arc::ptr_eq(&e.woken, &woken));
                !list.is_empty()
            });
            if woken.load(Ordering::Acquire) {
                return Ok(());
            }
        }
        res
    }

    /// Wakes up to `n` waiters on `addr` whose bitset intersects `bitset`; returns how many.
    pub fn wake(&self, t: &Task, addr: u64, n: u32, bitset: u32) -> Result<u64, Errno> {
        self.wake_key(t, addr, false, n, bitset)
    }

    /// [`Futexes::wake`] with the private flag.
    pub fn wake_key(
        &self,
        t: &Task,
        addr: u64,
        private: bool,
        n: u32,
        bitset: u32,
    ) -> Result<u64, Errno> {
        if bitset == 0 {
            return Err(Errno::EINVAL);
        }
        let k = key(t, addr, private)?;
        Ok(Self::wake_locked(&mut self.lock(), k, n, bitset))
    }

    /// `FUTEX_CMP_REQUEUE`/`FUTEX_REQUEUE`: wakes up to `n_wake` waiters on `addr` and
    /// moves up to `n_requeue` of the rest to `addr2`. With `expected`, fails with
    /// `EAGAIN` unless the word at `addr` still holds it.
    #[allow(clippy::too_many_arguments)]
    pub fn requeue(
        &self,
        t: &Task,
        addr: u64,
        addr2: u64,
        private: bool,
        n_wake: u32,
        n_requeue: u32,
        expected: Option<u32>,
    ) -> Result<u64, Errno> {
        let (k1, k2) = (key(t, addr, private)?, key(t, addr2, private)?);
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
                e.wake();
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

    /// `FUTEX_WAKE_OP`: applies the operation encoded in `op` to the word at `addr2`,
    /// wakes up to `n` waiters on `addr` and, if the comparison of the old value holds,
    /// up to `n2` on `addr2`.
    #[allow(clippy::too_many_arguments)]
    pub fn wake_op(
        &self,
        t: &Task,
        addr: u64,
        addr2: u64,
        private: bool,
        n: u32,
        n2: u32,
        op: u32,
    ) -> Result<u64, Errno> {
        let (k1, k2) = (key(t, addr, private)?, key(t, addr2, private)?);
        if !addr2.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let mut q = self.lock();
        let mm = t.mm();
        let old: u32 = mm.read_obj(addr2)?;
        let (new, hit) = wake_op(op, old)?;
        mm.write_obj(addr2, &new)?;
        let mut woken = Self::wake_locked(&mut q, k1, n, FUTEX_BITSET_MATCH_ANY);
        if hit {
            woken += Self::wake_locked(&mut q, k2, n2, FUTEX_BITSET_MATCH_ANY);
        }
        Ok(woken)
    }
}

#[cfg(test)]
mod tests {
    use super::wake_op;

    #[test]
    fn wake_op_decodes_operation_and_comparison() {
        // FUTEX_OP(FUTEX_OP_SET, 0, FUTEX_OP_CMP_GT, 1): the glibc condvar encoding.
        let enc = (4 << 24) | 1;
        assert_eq!(wake_op(enc, 5).unwrap(), (0, true));
        assert_eq!(wake_op(enc, 1).unwrap(), (0, false));
        // ADD 3, compare EQ 7.
        let add = (1 << 28) | (3 << 12) | 7;
        assert_eq!(wake_op(add, 7).unwrap(), (10, true));
        // OPARG_SHIFT: OR (1 << 4).
        let or_shift = ((8 | 2) << 28) | (4 << 12);
        assert_eq!(wake_op(or_shift, 1).unwrap().0, 0x11);
        assert!(wake_op(7 << 28, 0).is_err());
    }
}
