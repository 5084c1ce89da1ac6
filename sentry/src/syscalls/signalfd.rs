//! `signalfd4(2)`: a file from which the calling task reads its pending signals (those in
//! the file's mask) as `struct signalfd_siginfo` records.
//!
//! The file is bound to the kernel, not to a task: like Linux, a read or poll looks at
//! the pending signals of the task doing it (the [`Caller`] that the read and poll
//! system calls pass in). A blocking read sleeps with [`Task::block_on`], which
//! every newly queued signal rings. `poll`/`epoll` re-check readiness periodically
//! ([`FileOps::needs_polling`]) since signal queues have no wait queue.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::open::*;
use linux_abi::signal::SigInfo;

use super::SyscallEntry;
use crate::fs::anon::anon_file;
use crate::fs::{Caller, FileOps};
use crate::kernel::{Kernel, Task};
use crate::waiter::{Events, events};

/// The signalfd system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_SIGNALFD => signalfd(Fd, Ptr, Uint) -> Fd = sys_signalfd;
    SYS_SIGNALFD4 => signalfd4(Fd, Ptr, Uint, Hex) -> Fd = sys_signalfd4;
];

/// `SFD_NONBLOCK`.
const SFD_NONBLOCK: u32 = O_NONBLOCK;
/// `SFD_CLOEXEC`.
const SFD_CLOEXEC: u32 = O_CLOEXEC;
/// `SIGKILL` and `SIGSTOP` are never read through a signalfd.
const UNREADABLE: u64 =
    (1 << (linux_abi::signal::SIGKILL - 1)) | (1 << (linux_abi::signal::SIGSTOP - 1));

/// A signalfd.
#[derive(Debug)]
pub struct SignalFd {
    mask: AtomicU64,
    nonblock: AtomicBool,
    kernel: Weak<Kernel>,
}

impl SignalFd {
    /// The calling task.
    fn task(&self, caller: &Caller) -> Result<Arc<Task>, Errno> {
        self.kernel
            .upgrade()
            .and_then(|k| k.task(caller.tid))
            .ok_or(Errno::EINVAL)
    }

    fn mask(&self) -> u64 {
        self.mask.load(Ordering::Relaxed) & !UNREADABLE
    }

    fn take(&self, t: &Task) -> Option<SigInfo> {
        let mask = self.mask();
        t.pending()
            .take(mask)
            .or_else(|| t.thread_group().shared_pending().take(mask))
    }
}

/// Encodes a `struct signalfd_siginfo` (128 bytes).
fn encode(i: &SigInfo) -> [u8; 128] {
    let mut b = [0u8; 128];
    let put32 =
        |b: &mut [u8; 128], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    put32(&mut b, 0, i.signo as u32);
    put32(&mut b, 4, i.errno as u32);
    put32(&mut b, 8, i.code as u32);
    put32(&mut b, 12, i.pid() as u32); // ssi_pid
    put32(&mut b, 16, i.uid()); // ssi_uid
    // ssi_status (SIGCHLD) and ssi_int/ssi_ptr (sigqueue) live in the second union word.
    let w1 = i.fields[1];
    put32(&mut b, 40, w1 as u32); // ssi_status
    put32(&mut b, 44, w1 as u32); // ssi_int
    b[48..56].copy_from_slice(&w1.to_ne_bytes()); // ssi_ptr
    b[72..80].copy_from_slice(&i.addr().to_ne_bytes()); // ssi_addr
    b
}

impl FileOps for SignalFd {
    /// Without a calling task (`splice`, `sendfile`): `EINVAL`, as Linux's signalfd,
    /// which has no `splice_read`.
    fn read_at(&self, _buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EINVAL)
    }

    fn read_by(&self, caller: &Caller, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.len() < 128 {
            return Err(Errno::EINVAL);
        }
        let t = self.task(caller)?;
        let first = if self.nonblock.load(Ordering::Relaxed) {
            self.take(&t).ok_or(Errno::EAGAIN)?
        } else {
            t.block_on(None, || self.take(&t).map(Ok))?
        };
        buf[..128].copy_from_slice(&encode(&first));
        let mut n = 128;
        while n + 128 <= buf.len() {
            let Some(i) = self.take(&t) else { break };
            buf[n..n + 128].copy_from_slice(&encode(&i));
            n += 128;
        }
        Ok(n)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readiness(&self, _mask: Events) -> Events {
        0
    }

    fn readiness_for(&self, caller: &Caller, mask: Events) -> Events {
        let Ok(t) = self.task(caller) else { return 0 };
        let pending = t.pending().set() | t.thread_group().shared_pending_set();
        if pending & self.mask() != 0 {
            (events::POLLIN | events::POLLRDNORM) & mask
        } else {
            0
        }
    }

    fn needs_polling(&self) -> bool {
        true
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

/// `signalfd4(fd, mask, sizemask, flags)`: a new signalfd (`fd == -1`) or a new mask for
/// an existing one.
pub fn sys_signalfd4(t: &Task, fd: i32, mask: u64, size: u64, flags: u32) -> Result<u64, Errno> {
    if size != 8 || flags & !(SFD_NONBLOCK | SFD_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let m: u64 = t.mm().read_obj(mask)?;
    if fd != -1 {
        let f = t.fd_table().get(fd)?;
        let s = f
            .ops()
            .as_any()
            .and_then(|a| a.downcast_ref::<SignalFd>())
            .ok_or(Errno::EINVAL)?;
        s.mask.store(m, Ordering::Relaxed);
        return Ok(fd as u64);
    }
    let ops = Arc::new(SignalFd {
        mask: AtomicU64::new(m),
        nonblock: AtomicBool::new(flags & SFD_NONBLOCK != 0),
        kernel: Arc::downgrade(t.kernel()),
    });
    let f = anon_file("signalfd", 0o600, O_RDWR | (flags & SFD_NONBLOCK), ops);
    super::fs::install(t, f, flags & SFD_CLOEXEC != 0)
}

/// `signalfd(fd, mask, sizemask)`.
pub fn sys_signalfd(t: &Task, fd: i32, mask: u64, size: u64) -> Result<u64, Errno> {
    sys_signalfd4(t, fd, mask, size, 0)
}
