//! Process file descriptors (`pidfd_open`, `CLONE_PIDFD`): a file that names one process.
//! It polls readable once the process has exited, and `pidfd_send_signal`,
//! `pidfd_getfd` and `waitid(P_PIDFD)` act on the process it names.

use std::sync::{Arc, OnceLock, Weak};

use zerocopy::{Immutable, IntoBytes};

use linux_abi::Errno;
use linux_abi::flags::open::{O_NONBLOCK, O_RDWR};

use super::thread_group::ThreadGroup;
use crate::fs::file::OpenFile;
use crate::fs::{FileOps, UserMem};
use crate::waiter::{Events, WaitQueue, events};

/// The I/O half of a pidfd.
#[derive(Debug)]
pub struct PidFd {
    tgid: i32,
    tg: Weak<ThreadGroup>,
    /// The process's wait status once it is reaped.
    exit: Arc<OnceLock<i32>>,
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

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        // `_IOWR(PIDFS_IOCTL_MAGIC, 11, struct pidfd_info)` of any size from the first
        // version's on (a smaller one is ENOTTY, as Linux 6.18 validates extensible
        // ioctls); the other pidfs ioctls (namespace descriptors) need namespaces the
        // Sentry does not have.
        let size = ((cmd >> 16) & 0x3fff) as usize;
        if cmd >> 30 != IOC_READ_WRITE
            || (cmd >> 8) & 0xff != PIDFS_IOCTL_MAGIC
            || cmd & 0xff != PIDFD_GET_INFO_NR
            || size < PIDFD_INFO_SIZE_VER0
        {
            return Err(Errno::ENOTTY);
        }
        self.get_info(arg, size, mem)?;
        Ok(0)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

const IOC_READ_WRITE: u32 = 3;
const PIDFS_IOCTL_MAGIC: u32 = 0xff;
const PIDFD_GET_INFO_NR: u32 = 11;
/// The size of the first `struct pidfd_info`: no caller may pass less.
const PIDFD_INFO_SIZE_VER0: usize = 64;
const PIDFD_INFO_PID: u64 = 1 << 0;
const PIDFD_INFO_CREDS: u64 = 1 << 1;
const PIDFD_INFO_EXIT: u64 = 1 << 3;

/// `struct pidfd_info` (Linux 6.16).
#[derive(Default, IntoBytes, Immutable)]
#[repr(C)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
    coredump_mask: u32,
    spare1: u32,
}

impl PidFd {
    /// `ioctl(PIDFD_GET_INFO)` with a `usize`-byte `struct pidfd_info` at `uinfo`, as
    /// Linux's `pidfd_info`: the ids and credentials while the process lives, its wait
    /// status once it has been reaped (when `PIDFD_INFO_EXIT` is asked), `ESRCH`
    /// when neither is available. No cgroup id: the sandbox has no cgroup hierarchy.
    fn get_info(&self, uinfo: u64, usize: usize, mem: &dyn UserMem) -> Result<(), Errno> {
        if uinfo == 0 {
            return Err(Errno::EINVAL);
        }
        let mut mask = [0u8; 8];
        mem.copy_in(uinfo, &mut mask)?;
        let mask = u64::from_ne_bytes(mask);
        let mut info = PidfdInfo::default();
        if mask & PIDFD_INFO_EXIT != 0
            && let Some(&code) = self.exit.get()
        {
            info.mask |= PIDFD_INFO_EXIT;
            info.exit_code = code;
        }
        let tg = self.tg.upgrade().filter(|g| !g.is_reaped());
        match tg {
            None if mask & PIDFD_INFO_EXIT == 0 => return Err(Errno::ESRCH),
            None => {}
            Some(g) => {
                let tasks = g.tasks();
                let leader = tasks.iter().find(|t| t.tid() == g.tgid()).or(tasks.first());
                // A zombie keeps no credentials here; Linux would still report them.
                if let Some(t) = leader {
                    let c = t.creds();
                    (info.ruid, info.euid, info.suid, info.fsuid) =
                        (c.uid, c.euid, c.suid, c.fsuid);
                    (info.rgid, info.egid, info.sgid, info.fsgid) =
                        (c.gid, c.egid, c.sgid, c.fsgid);
                    info.mask |= PIDFD_INFO_CREDS;
                }
                info.ppid = g.ppid() as u32;
                info.tgid = g.tgid() as u32;
                info.pid = g.tgid() as u32;
                info.mask |= PIDFD_INFO_PID;
                if info.ppid == 0 && info.pid != 1 {
                    return Err(Errno::ESRCH);
                }
            }
        }
        // Like copy_struct_to_user: what the caller's size holds, the rest of its buffer
        // zeroed.
        let bytes = info.as_bytes();
        let n = usize.min(bytes.len());
        mem.copy_out(uinfo, &bytes[..n])?;
        if usize > n {
            mem.copy_out(uinfo + n as u64, &vec![0u8; usize - n])?;
        }
        Ok(())
    }
}

/// A new pidfd file for process `tg` (`nonblock`: `PIDFD_NONBLOCK`).
pub fn pidfd_file(tg: &Arc<ThreadGroup>, nonblock: bool) -> Arc<OpenFile> {
    let ops = Arc::new(PidFd {
        tgid: tg.tgid(),
        tg: Arc::downgrade(tg),
        exit: tg.reaped_status().clone(),
    });
    let flags = O_RDWR | if nonblock { O_NONBLOCK } else { 0 };
    crate::fs::anon::anon_file("pidfd", 0o600, flags, ops)
}

/// The [`PidFd`] behind an open file, if it is one.
pub fn as_pidfd(f: &OpenFile) -> Option<&PidFd> {
    f.ops().as_any()?.downcast_ref::<PidFd>()
}

/// For a `/proc/<pid>` directory (not a `task/<tid>` one): `Some` of the process it
/// was opened for, `Some(None)` once that process is gone. `None` for any other file.
pub fn proc_dir_process(f: &OpenFile) -> Option<Option<Arc<ThreadGroup>>> {
    let dir = f
        .inode()
        .as_any()
        .downcast_ref::<crate::fs::synth::SynthDir>()?;
    if !dir.has_owner() {
        return None;
    }
    Some(dir.owner().and_then(|o| o.downcast::<ThreadGroup>().ok()))
}
