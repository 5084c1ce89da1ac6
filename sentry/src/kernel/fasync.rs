//! Signal-driven I/O (Linux's `fs/fcntl.c` `fown_struct` and `fasync`): a file
//! description with `O_ASYNC` (`F_SETFL` or `FIOASYNC`) signals its owner (`F_SETOWN`,
//! `F_SETOWN_EX`: a thread, a process or a process group) whenever its readiness changes:
//! `SIGIO` from the kernel, or, after `F_SETSIG`, that signal with `si_code` `POLL_IN`,
//! `POLL_OUT`..., `si_band` and `si_fd`. Only files with a wait queue that Linux gives a
//! `fasync` operation take part (sockets, pipes and FIFOs, terminals); for others
//! `FIOASYNC` is `ENOTTY` and `O_ASYNC` is only a flag.
//!
//! The description holds the state (`fs::file::Fasync`); while `O_ASYNC` is on, an entry on the
//! file's wait queue (`SigioNotify`) sends the signals. It holds the file and the
//! kernel weakly, so that neither outlives its last reference because of it.

use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::signal::{SI_KERNEL, SIGIO, SigInfo};

use super::{Kernel, Task};
use crate::fs::file::{OpenFile, SigioOwner};
use crate::waiter::{Events, Notify, events};

/// `F_OWNER_TID`, `F_OWNER_PID`, `F_OWNER_PGRP` (`struct f_owner_ex`'s `type`).
pub const F_OWNER_TID: i32 = 0;
/// See [`F_OWNER_TID`].
pub const F_OWNER_PID: i32 = 1;
/// See [`F_OWNER_TID`].
pub const F_OWNER_PGRP: i32 = 2;

/// `si_code`s of I/O signals, and the `si_band` each carries (Linux's `band_table`).
const REASONS: [(u32, i32, u32); 5] = [
    (
        events::POLLIN,
        1,
        events::POLLIN | events::POLLRDNORM | POLLMSG,
    ),
    (events::POLLOUT, 2, events::WRITE),
    (events::POLLPRI, 5, events::POLLPRI | events::POLLRDBAND),
    (events::POLLERR, 4, events::POLLERR),
    (events::POLLHUP, 6, events::POLLHUP | events::POLLERR),
];
/// `POLLMSG`.
const POLLMSG: u32 = 0x400;

/// Whether the file has Linux's `fasync` operation: sockets, pipes and FIFOs,
/// terminals.
pub fn supports_async(f: &OpenFile) -> bool {
    const S_IFMT: u32 = 0o170000;
    let kind = f.stat().map(|s| s.st_mode & S_IFMT).unwrap_or(0);
    f.ops().wait_queue().is_some()
        && (kind == 0o140000 || kind == 0o010000 || f.ops().terminal().is_some())
}

/// `F_SETOWN`/`F_SETOWN_EX`: `owner` (`None`: nobody) gets the file's I/O signals, with
/// the caller's permission to send them. `ESRCH` for an id no thread, process or group
/// has.
pub fn set_owner(t: &Task, f: &OpenFile, owner: Option<SigioOwner>) -> Result<(), Errno> {
    let k = t.kernel();
    let exists = match owner {
        None => true,
        Some(SigioOwner::Thread(id)) => k.task(id).is_some(),
        Some(SigioOwner::Process(id)) => k.task(id).is_some(),
        Some(SigioOwner::Group(id)) => k
            .pids()
            .into_iter()
            .filter_map(|p| k.thread_group(p))
            .any(|g| g.pgid() == id),
    };
    if !exists {
        return Err(Errno::ESRCH);
    }
    let c = t.creds();
    let mut st = f.fasync();
    st.owner = owner;
    st.setter = (c.uid, c.euid);
    Ok(())
}

/// `F_GETOWN`: the owning process or thread id, a group as its negative id, 0 for none.
pub fn owner_id(f: &OpenFile) -> i32 {
    match f.fasync().owner {
        None => 0,
        Some(SigioOwner::Thread(id) | SigioOwner::Process(id)) => id,
        Some(SigioOwner::Group(id)) => -id,
    }
}

/// Turns signal-driven I/O for `f` (reached through descriptor `fd`) on or off, after
/// its `O_ASYNC` flag changed, which only a file that [`supports_async`] lets happen.
pub fn set_async(t: &Task, f: &Arc<OpenFile>, fd: i32, on: bool) {
    let Some(queue) = f.ops().wait_queue() else {
        return;
    };
    let mut st = f.fasync();
    st.fd = fd;
    match (on, st.entry) {
        (true, None) => {
            let notify = Arc::new(SigioNotify {
                kernel: Arc::downgrade(t.kernel()),
                file: Arc::downgrade(f),
            });
            st.entry = Some(queue.register(events::ALL, notify));
        }
        (false, Some(id)) => {
            st.entry = None;
            queue.unregister(id);
        }
        _ => {}
    }
}

/// The wait-queue entry of a description with `O_ASYNC`.
struct SigioNotify {
    kernel: Weak<Kernel>,
    file: Weak<OpenFile>,
}

impl Notify for SigioNotify {
    fn notify(&self, ev: Events) {
        let (Some(k), Some(f)) = (self.kernel.upgrade(), self.file.upgrade()) else {
            return;
        };
        let (owner, setter, signal, fd) = {
            let st = f.fasync();
            (st.owner, st.setter, st.signal, st.fd)
        };
        let Some(owner) = owner else {
            return;
        };
        for (bit, code, band) in REASONS {
            if ev & bit != 0 {
                let info = if signal == 0 {
                    SigInfo::new(SIGIO, SI_KERNEL)
                } else {
                    let mut i = SigInfo::new(signal, code);
                    i.fields[0] = u64::from(band);
                    i.fields[1] = u64::from(fd as u32);
                    i
                };
                send(&k, owner, setter, info);
                if signal == 0 {
                    // A plain SIGIO carries no reason: one is enough.
                    break;
                }
            }
        }
    }
}

/// Sends `info` to `owner` where the setter of the owner may signal it (Linux's
/// `sigio_perm`: root, or a real or effective uid matching the target's real or saved
/// one).
fn send(k: &Kernel, owner: SigioOwner, (uid, euid): (u32, u32), info: SigInfo) {
    let allowed = |c: super::Credentials| {
        euid == 0 || euid == c.suid || euid == c.uid || uid == c.suid || uid == c.uid
    };
    match owner {
        SigioOwner::Thread(tid) => {
            if let Some(task) = k.task(tid)
                && allowed(task.creds())
            {
                task.send_signal(info);
            }
        }
        SigioOwner::Process(pid) => {
            if let Some(task) = k.task(pid)
                && allowed(task.creds())
            {
                task.thread_group().send_signal(info);
            }
        }
        SigioOwner::Group(pg) => {
            for g in k.pids().into_iter().filter_map(|p| k.thread_group(p)) {
                if g.pgid() == pg
                    && let Some(task) = g.tasks().first()
                    && allowed(task.creds())
                {
                    g.send_signal(info);
                }
            }
        }
    }
}
