//! `eventfd2(2)`: a 64-bit counter file. Reads return and reset it (or decrement it by one
//! with `EFD_SEMAPHORE`) and block while it is zero; writes add to it and block while the
//! sum would exceed `u64::MAX - 1`.

use parking_lot::Mutex;
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};

use linux_abi::Errno;
use linux_abi::flags::open::O_NONBLOCK;

use super::FileOps;

use crate::waiter::{Events, WaitQueue, block_on, events};

/// `EFD_SEMAPHORE`.
pub const EFD_SEMAPHORE: u32 = 1;
/// `EFD_CLOEXEC`.
pub const EFD_CLOEXEC: u32 = 0o2000000;
/// `EFD_NONBLOCK`.
pub const EFD_NONBLOCK: u32 = 0o4000;

const MAX: u64 = u64::MAX - 1;

/// An eventfd counter.
#[derive(Debug)]
pub struct EventFd {
    count: Mutex<u64>,
    semaphore: bool,
    nonblock: AtomicBool,
    queue: WaitQueue,
}

impl EventFd {
    /// A counter starting at `init`, with `eventfd2` flags.
    pub fn new(init: u64, flags: u32) -> EventFd {
        EventFd {
            count: Mutex::new(init),
            semaphore: flags & EFD_SEMAPHORE != 0,
            nonblock: AtomicBool::new(flags & EFD_NONBLOCK != 0),
            queue: WaitQueue::new(),
        }
    }

    fn run<T>(&self, mask: Events, op: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
        let mut op = op;
        if self.nonblock.load(Ordering::Relaxed) {
            op()
        } else {
            block_on(&[(&self.queue, mask)], None, op)
        }
    }
}

impl FileOps for EventFd {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let v = self.run(events::POLLIN, || {
            let mut c = self.count.lock();
            if *c == 0 {
                return Err(Errno::EAGAIN);
            }
            let v = if self.semaphore { 1 } else { *c };
            *c -= v;
            Ok(v)
        })?;
        self.queue.notify(events::POLLOUT | events::POLLWRNORM);
        buf[..8].copy_from_slice(&v.to_ne_bytes());
        Ok(8)
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        let b: [u8; 8] = buf
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or(Errno::EINVAL)?;
        let v = u64::from_ne_bytes(b);
        if v == u64::MAX {
            return Err(Errno::EINVAL);
        }
        self.run(events::POLLOUT, || {
            let mut c = self.count.lock();
            if MAX - *c < v {
                return Err(Errno::EAGAIN);
            }
            *c += v;
            Ok(())
        })?;
        self.queue.notify(events::POLLIN | events::POLLRDNORM);
        Ok(8)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readiness(&self, mask: Events) -> Events {
        let c = *self.count.lock();
        let mut ev = 0;
        if c > 0 {
            ev |= events::POLLIN | events::POLLRDNORM;
        }
        if c < MAX {
            ev |= events::POLLOUT | events::POLLWRNORM;
        }
        ev & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.nonblock
            .store(flags & O_NONBLOCK != 0, Ordering::Relaxed);
        Ok(())
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_semaphore_modes() {
        let e = EventFd::new(0, EFD_NONBLOCK);
        let mut b = [0u8; 8];
        assert_eq!(e.read_at(&mut b, 0), Err(Errno::EAGAIN));
        e.write_at(&3u64.to_ne_bytes(), 0).unwrap();
        e.write_at(&4u64.to_ne_bytes(), 0).unwrap();
        assert_eq!(e.readiness(events::ALL) & events::POLLIN, events::POLLIN);
        e.read_at(&mut b, 0).unwrap();
        assert_eq!(u64::from_ne_bytes(b), 7);
        let s = EventFd::new(2, EFD_SEMAPHORE | EFD_NONBLOCK);
        s.read_at(&mut b, 0).unwrap();
        assert_eq!(u64::from_ne_bytes(b), 1);
        s.read_at(&mut b, 0).unwrap();
        assert_eq!(s.read_at(&mut b, 0), Err(Errno::EAGAIN));
        assert_eq!(s.write_at(&[0u8; 4], 0), Err(Errno::EINVAL));
        assert_eq!(s.write_at(&(MAX).to_ne_bytes(), 0), Ok(8));
        assert_eq!(s.write_at(&1u64.to_ne_bytes(), 0), Err(Errno::EAGAIN));
    }
}
