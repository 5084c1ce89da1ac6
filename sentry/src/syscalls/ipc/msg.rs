//! System V message queues: `msgget`, `msgsnd`, `msgrcv`, `msgctl`.

use super::*;

/// `msgget(key, flags)`.
pub fn sys_msgget(t: &Task, key: i32, flags: u32) -> Result<u64, Errno> {
    let mut guard = ns(t);
    let n = &mut *guard;
    if let Some(id) = lookup_key(t, &n.msg_ids, &n.msg, |q| q.perm, key, flags, |_| Ok(()))? {
        return Ok(id as u64);
    }
    let (id, seq) = new_id(
        t,
        &mut n.msg_ids,
        n.msg.len(),
        key,
        "kernel/msgmni",
        "kernel/msg_next_id",
    )?;
    let mut perm = Perm::new(t, key, flags);
    perm.seq = seq;
    n.msg.insert(
        id,
        MsgQueue {
            perm,
            msgs: VecDeque::new(),
            bytes: 0,
            qbytes: msgmnb(t),
            stime: 0,
            rtime: 0,
            ctime: now_secs(),
            lspid: 0,
            lrpid: 0,
            queue: Arc::new(WaitQueue::new()),
            removed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        },
    );
    Ok(id as u64)
}

pub(super) fn msg_handles(
    t: &Task,
    id: i32,
    want: u32,
) -> Result<(Arc<WaitQueue>, Arc<std::sync::atomic::AtomicBool>), Errno> {
    let n = ns(t);
    let q = n.msg.get(&id).ok_or(Errno::EINVAL)?;
    q.perm.check(t, want)?;
    Ok((q.queue.clone(), q.removed.clone()))
}

/// `kernel.msgmnb`: the byte limit of a new queue.
fn msgmnb(t: &Task) -> usize {
    t.kernel().sysctls().get_int("kernel/msgmnb").max(0) as usize
}

/// `kernel.msgmax`: the largest message.
fn msgmax(t: &Task) -> usize {
    t.kernel().sysctls().get_int("kernel/msgmax").max(0) as usize
}

/// `msgsnd(id, msgp, size, flags)`.
pub fn sys_msgsnd(t: &Task, id: i32, msgp: u64, size: u64, flags: u32) -> Result<u64, Errno> {
    let size = size as usize;
    if size > msgmax(t) {
        return Err(Errno::EINVAL);
    }
    let mtype: i64 = t.mm().read_obj(msgp)?;
    if mtype <= 0 {
        return Err(Errno::EINVAL);
    }
    let mut data = vec![0u8; size];
    t.mm().copy_in(msgp + 8, &mut data)?;
    let (queue, removed) = msg_handles(t, id, 2)?;
    let pid = t.tgid();
    let mut msg = Some(Msg { mtype, data });
    let mut op = || {
        if removed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Errno::EIDRM);
        }
        let mut n = ns(t);
        let q = n.msg.get_mut(&id).ok_or(Errno::EIDRM)?;
        if q.bytes + size > q.qbytes {
            return Err(Errno::EAGAIN);
        }
        if let Some(m) = msg.take() {
            q.bytes += m.data.len();
            q.msgs.push_back(m);
        }
        q.lspid = pid;
        q.stime = now_secs();
        Ok(())
    };
    if flags & IPC_NOWAIT != 0 {
        op()?;
    } else {
        block_on(&[(&queue, events::ALL)], None, &mut op)?;
    }
    queue.notify(events::ALL);
    Ok(0)
}

/// Which message `msgrcv` takes for `msgtyp` and `flags`.
pub(super) fn pick(msgs: &VecDeque<Msg>, msgtyp: i64, flags: u32) -> Option<usize> {
    if msgtyp == 0 {
        return (!msgs.is_empty()).then_some(0);
    }
    if msgtyp > 0 {
        let except = flags & MSG_EXCEPT != 0;
        return msgs.iter().position(|m| (m.mtype == msgtyp) != except);
    }
    let limit = msgtyp.saturating_neg();
    msgs.iter()
        .enumerate()
        .filter(|(_, m)| m.mtype <= limit)
        .min_by_key(|(i, m)| (m.mtype, *i))
        .map(|(i, _)| i)
}

/// `msgrcv(id, msgp, size, msgtyp, flags)`.
pub fn sys_msgrcv(
    t: &Task,
    id: i32,
    msgp: u64,
    size: u64,
    msgtyp: i64,
    flags: u32,
) -> Result<u64, Errno> {
    if (size as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    let size = size as usize;
    let copy = flags & MSG_COPY != 0;
    if copy && (flags & MSG_EXCEPT != 0 || flags & IPC_NOWAIT == 0) {
        return Err(Errno::EINVAL);
    }
    let (queue, removed) = msg_handles(t, id, 4)?;
    let pid = t.tgid();
    let op = || {
        if removed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Errno::EIDRM);
        }
        let mut n = ns(t);
        let q = n.msg.get_mut(&id).ok_or(Errno::EIDRM)?;
        let found = if copy {
            // MSG_COPY: msgtyp is the position of the message to copy.
            usize::try_from(msgtyp).ok().filter(|&i| i < q.msgs.len())
        } else {
            pick(&q.msgs, msgtyp, flags)
        };
        let Some(i) = found else {
            return Err(Errno::EAGAIN);
        };
        if q.msgs[i].data.len() > size && flags & MSG_NOERROR == 0 {
            return Err(Errno::E2BIG);
        }
        if copy {
            let m = &q.msgs[i];
            return Ok(Msg {
                mtype: m.mtype,
                data: m.data.clone(),
            });
        }
        let m = q.msgs.remove(i).ok_or(Errno::EAGAIN)?;
        q.bytes -= m.data.len();
        q.lrpid = pid;
        q.rtime = now_secs();
        Ok(m)
    };
    let m = if flags & IPC_NOWAIT != 0 {
        op().map_err(|e| if e == Errno::EAGAIN { Errno::ENOMSG } else { e })?
    } else {
        block_on(&[(&queue, events::ALL)], None, op)?
    };
    if !copy {
        queue.notify(events::ALL);
    }
    let n = m.data.len().min(size);
    t.mm().write_obj(msgp, &m.mtype)?;
    t.mm().copy_out(msgp + 8, &m.data[..n])?;
    Ok(n as u64)
}

/// `msgctl(id, cmd, buf)`. `MSG_STAT` and `MSG_STAT_ANY` name a queue by its index (up
/// to what `IPC_INFO`/`MSG_INFO` return); `MSG_STAT_ANY` skips the read permission.
pub fn sys_msgctl(t: &Task, id: i32, cmd: i32, buf: u64) -> Result<u64, Errno> {
    let cmd = cmd & !IPC_64;
    let mut n = ns(t);
    if matches!(cmd, IPC_INFO | MSG_INFO) {
        // struct msginfo: msgpool, msgmap, msgmax, msgmnb, msgmni, msgssz, msgtql, msgseg.
        // MSG_INFO puts the queues, messages and bytes in use in msgpool, msgmap and
        // msgtql; IPC_INFO the compiled-in limits.
        let s = t.kernel().sysctls();
        let mnb = s.get_int("kernel/msgmnb") as i32;
        let (pool, map, tql) = if cmd == MSG_INFO {
            (
                n.msg.len() as i32,
                n.msg.values().map(|q| q.msgs.len()).sum::<usize>() as i32,
                n.msg.values().map(|q| q.bytes).sum::<usize>() as i32,
            )
        } else {
            (32000 * 16384 / 1024, 16384, 16384)
        };
        let vals: [i32; 8] = [
            pool,
            map,
            s.get_int("kernel/msgmax") as i32,
            mnb,
            s.get_int("kernel/msgmni") as i32,
            16,
            tql,
            0xffff,
        ];
        let b: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        t.mm().copy_out(buf, &b)?;
        return Ok(max_index(&n.msg) as u64);
    }
    let id = if matches!(cmd, MSG_STAT | MSG_STAT_ANY) {
        by_index(&n.msg, id).ok_or(Errno::EINVAL)?
    } else {
        id
    };
    let q = n.msg.get_mut(&id).ok_or(Errno::EINVAL)?;
    match cmd {
        IPC_STAT | MSG_STAT | MSG_STAT_ANY => {
            if cmd != MSG_STAT_ANY {
                q.perm.check(t, 4)?;
            }
            let mut b = q.perm.bytes().to_vec();
            for v in [
                q.stime as u64,
                q.rtime as u64,
                q.ctime as u64,
                q.bytes as u64,
                q.msgs.len() as u64,
                q.qbytes as u64,
            ] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            b.extend_from_slice(&q.lspid.to_ne_bytes());
            b.extend_from_slice(&q.lrpid.to_ne_bytes());
            b.extend_from_slice(&[0u8; 16]);
            t.mm().copy_out(buf, &b)?;
            Ok(if cmd == IPC_STAT { 0 } else { id as u64 })
        }
        IPC_SET => {
            q.perm.owner(t)?;
            let mut raw = [0u8; 96];
            t.mm().copy_in(buf, &mut raw)?;
            q.perm.set_from(&raw[..48]);
            let qbytes = u64::from_ne_bytes(raw[88..96].try_into().unwrap_or_default()) as usize;
            if qbytes > msgmnb(t) && t.creds().euid != 0 {
                return Err(Errno::EPERM);
            }
            q.qbytes = qbytes;
            q.ctime = now_secs();
            let wq = q.queue.clone();
            drop(n);
            wq.notify(events::ALL);
            Ok(0)
        }
        IPC_RMID => {
            q.perm.owner(t)?;
            q.removed.store(true, std::sync::atomic::Ordering::Release);
            let wq = q.queue.clone();
            let key = q.perm.key;
            n.msg.remove(&id);
            n.msg_ids.release(id, key);
            drop(n);
            wq.notify(events::ALL);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
