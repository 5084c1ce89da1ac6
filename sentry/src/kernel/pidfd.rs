//! Process file descriptors (`pidfd_open`, `CLONE_PIDFD`): a file that names one process.
//! It polls readable once the process has exited, and `pidfd_send_signal`,
//! `pidfd_getfd` and `waitid(P_PIDFD)` act on the process it names.

use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::open::{O_NONBLOCK, O_RDWR};

use super::thread_group::ThreadGroup;
use crate::fs::FileOps;
use crate::fs::file::OpenFile;
use crate::waiter::{Events, WaitQueue, events};

/// The I/O half of a pidfd.
#[derive(Debug)]
pub struct PidFd {
    tgid: i32,
    tg: Weak<ThreadGroup>,
}

impl PidFd {
    /// The process id the descriptor names (as in `/proc/<pid>/fdinfo`'s `Pid:`).
    pub fn tgid(&self) -> i32 {
        self.tgid
    }

    /// The process, while it is still known to the kernel (`ESRCH` after it was reaped).
    pub fn thread_group(&self) -> Result<Arc<ThreadGroup>, Errno> {
        self.tg.upgrade().ok_or(Errno::ESRCH)
    }
}

impl FileOps for PidFd {
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
        // Readable once the whole process has exited (zombie or reaped), as Linux.
        let exited = self.tg.upgrade().is_none_or(|g| g.is_dead());
        if exited {
            mask & (events::POLLIN | events::POLLRDNORM)
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }

    fn needs_polling(&self) -> bool {
        // The exit is announced on the thread group's queue, which this file cannot
        // lend by reference (it holds the group weakly); poll re-checks readiness.
        !self.tg.upgrade().is_none_or(|g| g.is_dead())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// A new pidfd file for process `tg` (`nonblock`: `PIDFD_NONBLOCK`).
pub fn pidfd_file(tg: &Arc<ThreadGroup>, nonblock: bool) -> Arc<OpenFile> {
    let ops = Arc::new(PidFd {
        tgid: tg.tgid(),
        tg: Arc::downgrade(tg),
    });
    let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
    crate::fs::anon::anon_file("pidfd", 0o600, flags, ops)
}

/// The [`PidFd`] behind an open file, if it is one.
pub fn as_pidfd(f: &OpenFile) -> Option<&PidFd> {
    f.ops().as_any()?.downcast_ref::<PidFd>()
}
