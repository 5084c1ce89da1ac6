//! POSIX message queues: `mq_open`, `mq_unlink`, `mq_timedsend`, `mq_timedreceive`,
//! `mq_notify`, `mq_getsetattr`, in Linux's order of checks (`ipc/mqueue.c`). The queues
//! live in the kernel's IPC namespace (`fs::mqueue`); a queue descriptor is a file of its
//! own (close-on-exec, as Linux installs it).

use std::time::SystemTime;

use linux_abi::flags::mode::{S_IFMT, S_IFSOCK};
use linux_abi::flags::open::{O_ACCMODE, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY};
use linux_abi::signal::SigInfo;

use super::*;
use crate::fs::PATH_MAX;
use crate::fs::mqueue::{
    Creators, MQ_PRIO_MAX, MqAttr, Mqueue, NOTIFY_COOKIE_LEN, NotifyHow, Queue, QueueFile,
    Registration, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, check_queue_name, notify_removed,
    notify_thread,
};

/// `si_code` of a message-queue notification.
const SI_MESGQ: i32 = -3;
/// `struct mq_attr`: flags, maxmsg, msgsize, curmsgs, four reserved longs.
const MQ_ATTR_LEN: usize = 64;

/// A queue name from the application (glibc passes it without the leading `/`): Linux's
/// `getname` (`EFAULT`, `ENAMETOOLONG`, `ENOENT` when empty), then `lookup_one_len`.
fn read_name(t: &Task, addr: u64) -> Result<Vec<u8>, Errno> {
    if addr == 0 {
        return Err(Errno::EFAULT);
    }
    let name = t.mm().read_c_string(addr, PATH_MAX - 1)?;
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    check_queue_name(&name)?;
    Ok(name)
}

fn read_attr(t: &Task, addr: u64) -> Result<[i64; 8], Errno> {
    let mut raw = [0u8; MQ_ATTR_LEN];
    t.mm().copy_in(addr, &mut raw)?;
    let mut out = [0i64; 8];
    for (i, v) in out.iter_mut().enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        *v = i64::from_ne_bytes(w);
    }
    Ok(out)
}

/// The queue behind descriptor `fd` (`EBADF` for any other file).
fn queue_of(t: &Task, fd: i32) -> Result<(Arc<OpenFile>, Arc<Queue>), Errno> {
    let f = t.fd_table().get(fd)?;
    let q = f
        .ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<QueueFile>())
        .map(|qf| qf.0.clone())
        .ok_or(Errno::EBADF)?;
    Ok((f, q))
}

/// An absolute `CLOCK_REALTIME` timeout as a deadline (`EFAULT`, `EINVAL` for a bad
/// timespec, checked before anything else as Linux's `prepare_timeout` does).
fn read_deadline(t: &Task, addr: u64) -> Result<Option<Instant>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts: Timespec = t.mm().read_obj(addr)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let at = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    // A deadline past what an Instant can hold is no deadline.
    Ok(Instant::now().checked_add(at.saturating_sub(now)))
}

/// Waits for a queue operation: `op(block, ticket)` is one step (see
/// `Queue::send_step`); with `O_NONBLOCK` a full or empty queue is `EAGAIN` at once, else
/// the caller waits in line until its turn, the deadline (`ETIMEDOUT`) or a signal
/// (restarted under `SA_RESTART`, as Linux's `ERESTARTSYS`). `cancel` takes the caller
/// out of line, and says whether the operation completed meanwhile (then it counts).
fn wait_for<T>(
    f: &OpenFile,
    q: &Queue,
    deadline: Option<Instant>,
    mut op: impl FnMut(bool, &mut Option<u64>) -> Result<T, Errno>,
    cancel: impl FnOnce(u64) -> Option<T>,
) -> Result<T, Errno> {
    let block = f.flags() & O_NONBLOCK == 0;
    let mut ticket = None;
    match op(block, &mut ticket) {
        Err(Errno::EAGAIN) if ticket.is_some() => {}
        r => return r,
    }
    let r = block_on(&[(q.wait_queue(), events::ALL)], deadline, || {
        op(block, &mut ticket)
    });
    match (r, ticket) {
        (Err(e), Some(id)) => match cancel(id) {
            Some(v) => Ok(v),
            None if e == Errno::EINTR => Err(Errno::ERESTARTSYS),
            None => Err(e),
        },
        (Err(Errno::EINTR), None) => Err(Errno::ERESTARTSYS),
        (r, _) => r,
    }
}

/// Tells the registered process that a message arrived (Linux's `__do_notify`).
fn deliver(t: &Task, r: Registration) {
    match r.how {
        NotifyHow::None => {}
        NotifyHow::Signal {
            signo,
            value,
            exec_id,
        } => {
            if signo == 0 {
                return;
            }
            let Some(tg) = t.kernel().thread_group(r.tgid) else {
                return;
            };
            if tg.exec_count() != exec_id {
                return;
            }
            let mut info = SigInfo::new(signo, SI_MESGQ);
            info.fields[0] = u64::from(t.tgid() as u32) | (u64::from(t.creds().uid) << 32);
            info.fields[1] = value;
            tg.send_signal(info);
        }
        NotifyHow::Thread { sock, cookie } => notify_thread(&sock, cookie),
    }
}

/// `mq_open(name, oflag, mode, attr)`.
pub fn sys_mq_open(t: &Task, name: u64, oflag: u32, mode: u32, attr: u64) -> Result<u64, Errno> {
    use linux_abi::flags::open::O_CREAT;
    let attr = if attr != 0 {
        Some(read_attr(t, attr)?)
    } else {
        None
    };
    let name = read_name(t, name)?;
    let k = t.kernel();
    let who = k.creator(&crate::syscalls::fs::fs_cred(t));
    let attr = attr.filter(|_| oflag & O_CREAT != 0).map(|a| MqAttr {
        maxmsg: a[1],
        msgsize: a[2],
    });
    let mode = mode & !t.fs_context().umask();
    let (q, created) = k
        .ipc()
        .mqueue()
        .open_queue(&name, oflag, mode, attr, &who)?;
    let file = Mqueue::queue_file(k.ipc().mq_mount(), &q, oflag);
    match t.fd_table().insert(file, true) {
        Ok(fd) => Ok(fd as u64),
        Err(e) => {
            if created {
                k.ipc().mqueue().forget_new(&q);
            }
            Err(e)
        }
    }
}

/// `mq_unlink(name)`.
pub fn sys_mq_unlink(t: &Task, name: u64) -> Result<u64, Errno> {
    let name = read_name(t, name)?;
    t.kernel()
        .ipc()
        .mqueue()
        .unlink_queue(&name, &crate::syscalls::fs::fs_cred(t))?;
    Ok(0)
}

/// Whether descriptor flags allow reading or writing the queue (the access mode
/// `O_RDWR|O_WRONLY` allows neither, as Linux's `FMODE_*`).
fn may(f: &OpenFile, write: bool) -> bool {
    match f.flags() & O_ACCMODE {
        O_RDWR => true,
        O_WRONLY => write,
        O_RDONLY => !write,
        _ => false,
    }
}

/// `mq_timedsend(mqd, msg, len, prio, abs_timeout)`.
pub fn sys_mq_timedsend(
    t: &Task,
    mqd: i32,
    msg: u64,
    len: u64,
    prio: u32,
    timeout: u64,
) -> Result<u64, Errno> {
    let deadline = read_deadline(t, timeout)?;
    if prio >= MQ_PRIO_MAX {
        return Err(Errno::EINVAL);
    }
    let (f, q) = queue_of(t, mqd)?;
    if !may(&f, true) {
        return Err(Errno::EBADF);
    }
    if len > q.attr().msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let mut data = vec![0u8; len as usize];
    t.mm().copy_in(msg, &mut data)?;
    let note = wait_for(
        &f,
        &q,
        deadline,
        |block, ticket| q.send_step(&data, prio, block, ticket),
        |id| q.cancel_send(id).then_some(None),
    )?;
    if let Some(r) = note {
        deliver(t, r);
    }
    Ok(0)
}

/// `mq_timedreceive(mqd, msg, len, prio, abs_timeout)`.
pub fn sys_mq_timedreceive(
    t: &Task,
    mqd: i32,
    msg: u64,
    len: u64,
    prio: u64,
    timeout: u64,
) -> Result<u64, Errno> {
    let deadline = read_deadline(t, timeout)?;
    let (f, q) = queue_of(t, mqd)?;
    if !may(&f, false) {
        return Err(Errno::EBADF);
    }
    if len < q.attr().msgsize as u64 {
        return Err(Errno::EMSGSIZE);
    }
    let (data, p) = wait_for(
        &f,
        &q,
        deadline,
        |block, ticket| q.receive_step(block, ticket),
        |id| q.cancel_receive(id),
    )?;
    t.mm().copy_out(msg, &data)?;
    if prio != 0 {
        t.mm().write_obj(prio, &p)?;
    }
    Ok(data.len() as u64)
}

/// `mq_notify(mqd, sevp)`.
pub fn sys_mq_notify(t: &Task, mqd: i32, sevp: u64) -> Result<u64, Errno> {
    let how = if sevp == 0 {
        None
    } else {
        let mut raw = [0u8; 16];
        t.mm().copy_in(sevp, &mut raw)?;
        let value = u64::from_ne_bytes(raw[0..8].try_into().unwrap_or_default());
        let signo = i32::from_ne_bytes(raw[8..12].try_into().unwrap_or_default());
        let notify = i32::from_ne_bytes(raw[12..16].try_into().unwrap_or_default());
        Some(match notify {
            SIGEV_NONE => NotifyHow::None,
            SIGEV_SIGNAL if (0..=64).contains(&signo) => NotifyHow::Signal {
                signo,
                value,
                exec_id: t.thread_group().exec_count(),
            },
            SIGEV_THREAD => {
                let mut cookie = [0u8; NOTIFY_COOKIE_LEN];
                t.mm().copy_in(value, &mut cookie)?;
                let sock = t.fd_table().get(signo)?;
                let is_netlink = sock
                    .ops()
                    .as_any()
                    .is_some_and(|a| a.is::<crate::net::netlink::NetlinkSocket>());
                if !is_netlink {
                    let is_socket = sock.stat().map(|s| s.st_mode & S_IFMT == S_IFSOCK)?;
                    return Err(if is_socket {
                        Errno::EINVAL
                    } else {
                        Errno::ENOTSOCK
                    });
                }
                NotifyHow::Thread { sock, cookie }
            }
            _ => return Err(Errno::EINVAL),
        })
    };
    let (_, q) = queue_of(t, mqd)?;
    let k = t.kernel();
    q.forget_dead(|tgid| k.thread_group(tgid).is_some_and(|tg| !tg.is_exiting()));
    if let Some(r) = q.set_notify(t.tgid(), how)? {
        notify_removed(r);
    }
    Ok(0)
}

/// `mq_getsetattr(mqd, new, old)`: only `O_NONBLOCK` of the descriptor can change.
pub fn sys_mq_getsetattr(t: &Task, mqd: i32, new: u64, old: u64) -> Result<u64, Errno> {
    let new = if new != 0 {
        let a = read_attr(t, new)?;
        if a[0] & !i64::from(O_NONBLOCK) != 0 {
            return Err(Errno::EINVAL);
        }
        Some(a[0])
    } else {
        None
    };
    let (f, q) = queue_of(t, mqd)?;
    let before = [
        i64::from(f.flags() & O_NONBLOCK),
        q.attr().maxmsg,
        q.attr().msgsize,
        q.curmsgs() as i64,
    ];
    if let Some(flags) = new {
        let nb = if flags != 0 { O_NONBLOCK } else { 0 };
        f.set_flags((f.flags() & !O_NONBLOCK) | nb)?;
    }
    if old != 0 {
        let mut raw = [0u8; MQ_ATTR_LEN];
        for (i, v) in before.iter().enumerate() {
            raw[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        t.mm().copy_out(old, &raw)?;
    }
    Ok(0)
}
