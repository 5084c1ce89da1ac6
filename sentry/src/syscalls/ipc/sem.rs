//! System V semaphores: `semget`, `semop`, `semtimedop`, `semctl`, and the `SEM_UNDO`
//! adjustments applied at process exit.

use super::*;

/// `semget(key, nsems, flags)`.
pub fn sys_semget(t: &Task, key: i32, nsems: i32, flags: u32) -> Result<u64, Errno> {
    let [semmsl, semmns, _, semmni] = sem_limits(t);
    if nsems < 0 || i64::from(nsems) > semmsl {
        return Err(Errno::EINVAL);
    }
    let mut guard = ns(t);
    let n = &mut *guard;
    if let Some(id) = lookup_key(
        t,
        &n.sem_ids,
        &n.sem,
        |s| s.perm,
        key,
        flags,
        |s| {
            if nsems as usize > s.sems.len() {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        },
    )? {
        return Ok(id as u64);
    }
    if nsems == 0 {
        return Err(Errno::EINVAL);
    }
    if n.used_sems as i64 + i64::from(nsems) > semmns {
        return Err(Errno::ENOSPC);
    }
    let (id, seq) = {
        let s = t.kernel().sysctls();
        let want = s.get_int("kernel/sem_next_id");
        let r = n.sem_ids.alloc(n.sem.len(), semmni, want, key)?;
        if want >= 0 {
            s.set("kernel/sem_next_id", b"-1")?;
        }
        r
    };
    n.used_sems += nsems as usize;
    let mut perm = Perm::new(t, key, flags);
    perm.seq = seq;
    let cnt = nsems as usize;
    n.sem.insert(
        id,
        SemSet {
            perm,
            sems: vec![Sem::default(); cnt],
            otime: 0,
            ctime: now_secs(),
            queue: Arc::new(WaitQueue::new()),
            removed: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            ncnt: vec![0; cnt],
            zcnt: vec![0; cnt],
        },
    );
    Ok(id as u64)
}

/// One `struct sembuf`.
#[derive(Clone, Copy, Debug)]
pub(super) struct SemBuf {
    pub(super) num: u16,
    pub(super) op: i16,
    pub(super) flg: i16,
}

/// Applies `ops` atomically if they can all proceed; `Err(EAGAIN)` with the semaphore
/// that blocks (and whether it waits for zero) otherwise.
pub(super) fn try_semop(
    set: &mut SemSet,
    ops: &[SemBuf],
    pid: i32,
) -> Result<(), (Errno, usize, bool)> {
    let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
    for o in ops {
        let i = o.num as usize;
        let v = vals[i];
        if o.op == 0 {
            if v != 0 {
                return Err((Errno::EAGAIN, i, true));
            }
        } else {
            let nv = v + i32::from(o.op);
            if nv < 0 {
                return Err((Errno::EAGAIN, i, false));
            }
            if nv > SEMVMX {
                return Err((Errno::ERANGE, i, false));
            }
            vals[i] = nv;
        }
    }
    for (i, v) in vals.into_iter().enumerate() {
        set.sems[i].val = v;
    }
    for o in ops {
        set.sems[o.num as usize].pid = pid;
    }
    set.otime = now_secs();
    Ok(())
}

pub(super) fn semop_common(
    t: &Task,
    id: i32,
    sops: u64,
    nsops: u32,
    deadline: Option<Instant>,
) -> Result<u64, Errno> {
    let nsops = nsops as usize;
    if nsops == 0 {
        return Err(Errno::EINVAL);
    }
    if nsops as i64 > sem_limits(t)[2] {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; nsops * 6];
    t.mm().copy_in(sops, &mut raw)?;
    let ops: Vec<SemBuf> = raw
        .chunks_exact(6)
        .map(|c| SemBuf {
            num: u16::from_ne_bytes([c[0], c[1]]),
            op: i16::from_ne_bytes([c[2], c[3]]),
            flg: i16::from_ne_bytes([c[4], c[5]]),
        })
        .collect();
    let nowait = ops.iter().any(|o| o.flg as u32 & IPC_NOWAIT != 0);
    let alters = ops.iter().any(|o| o.op != 0);
    let (queue, removed) = {
        let n = ns(t);
        let s = n.sem.get(&id).ok_or(Errno::EINVAL)?;
        if ops.iter().any(|o| o.num as usize >= s.sems.len()) {
            return Err(Errno::EFBIG);
        }
        s.perm.check(t, if alters { 2 } else { 4 })?;
        (s.queue.clone(), s.removed.clone())
    };
    let pid = t.tgid();
    let mut waiting: Option<(usize, bool)> = None;
    let mut op = || {
        if removed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(Errno::EIDRM);
        }
        let mut n = ns(t);
        let s = n.sem.get_mut(&id).ok_or(Errno::EIDRM)?;
        if let Some((i, z)) = waiting.take() {
            if z {
                s.zcnt[i] = s.zcnt[i].saturating_sub(1);
            } else {
                s.ncnt[i] = s.ncnt[i].saturating_sub(1);
            }
        }
        match try_semop(s, &ops, pid) {
            Ok(()) => Ok(()),
            Err((Errno::EAGAIN, i, z)) if !nowait => {
                if z {
                    s.zcnt[i] += 1;
                } else {
                    s.ncnt[i] += 1;
                }
                waiting = Some((i, z));
                Err(Errno::EAGAIN)
            }
            Err((e, _, _)) => Err(e),
        }
    };
    let r = if nowait {
        op()
    } else {
        let r = block_on(&[(&queue, events::ALL)], deadline, &mut op);
        if let Some((i, z)) = waiting
            && let Some(s) = ns(t).sem.get_mut(&id)
        {
            if z {
                s.zcnt[i] = s.zcnt[i].saturating_sub(1);
            } else {
                s.ncnt[i] = s.ncnt[i].saturating_sub(1);
            }
        }
        r.map_err(|e| {
            if e == Errno::ETIMEDOUT {
                Errno::EAGAIN
            } else {
                e
            }
        })
    };
    r?;
    if ops.iter().any(|o| o.flg & SEM_UNDO != 0 && o.op != 0) {
        let mut n = ns(t);
        for o in ops.iter().filter(|o| o.flg & SEM_UNDO != 0 && o.op != 0) {
            let adj = n.undo.entry((pid, id, o.num)).or_insert(0);
            *adj -= i32::from(o.op);
        }
        n.undo.retain(|_, a| *a != 0);
    }
    if alters {
        queue.notify(events::ALL);
    }
    Ok(0)
}

/// `semop(id, sops, nsops)`.
pub fn sys_semop(t: &Task, id: i32, sops: u64, nsops: u32) -> Result<u64, Errno> {
    semop_common(t, id, sops, nsops, None)
}

/// `semtimedop(id, sops, nsops, timeout)`.
pub fn sys_semtimedop(t: &Task, id: i32, sops: u64, nsops: u32, ts: u64) -> Result<u64, Errno> {
    let deadline = if ts == 0 {
        None
    } else {
        let v: Timespec = t.mm().read_obj(ts)?;
        if v.tv_sec < 0 || !(0..1_000_000_000).contains(&v.tv_nsec) {
            return Err(Errno::EINVAL);
        }
        Instant::now().checked_add(Duration::new(v.tv_sec as u64, v.tv_nsec as u32))
    };
    semop_common(t, id, sops, nsops, deadline)
}

/// `semctl(id, num, cmd, arg)`.
pub fn sys_semctl(t: &Task, id: i32, num: i32, cmd: i32, arg: u64) -> Result<u64, Errno> {
    let cmd = cmd & !IPC_64;
    let mut n = ns(t);
    if matches!(cmd, IPC_INFO | SEM_INFO) {
        // struct seminfo: semmap, semmni, semmns, semmnu, semmsl, semopm, semume,
        // semusz, semvmx, semaem. SEM_INFO puts the sets and semaphores in use in semusz
        // and semaem; IPC_INFO the compiled-in values.
        let [semmsl, semmns, semopm, semmni] = sem_limits(t).map(|v| v as i32);
        let (usz, aem) = if cmd == SEM_INFO {
            (
                n.sem.len() as i32,
                n.sem.values().map(|s| s.sems.len()).sum::<usize>() as i32,
            )
        } else {
            (20, SEMVMX)
        };
        let vals: [i32; 10] = [
            semmns, semmni, semmns, semmns, semmsl, semopm, semopm, usz, SEMVMX, aem,
        ];
        let b: Vec<u8> = vals.iter().flat_map(|v| v.to_ne_bytes()).collect();
        t.mm().copy_out(arg, &b)?;
        return Ok(max_index(&n.sem) as u64);
    }
    let id = if matches!(cmd, SEM_STAT | SEM_STAT_ANY) {
        by_index(&n.sem, id).ok_or(Errno::EINVAL)?
    } else {
        id
    };
    let s = n.sem.get_mut(&id).ok_or(Errno::EINVAL)?;
    let idx = |s: &SemSet| -> Result<usize, Errno> {
        usize::try_from(num)
            .ok()
            .filter(|&i| i < s.sems.len())
            .ok_or(Errno::EINVAL)
    };
    let r = match cmd {
        IPC_RMID => {
            s.perm.owner(t)?;
            s.removed.store(true, std::sync::atomic::Ordering::Release);
            let q = s.queue.clone();
            let (key, cnt) = (s.perm.key, s.sems.len());
            n.sem.remove(&id);
            n.sem_ids.release(id, key);
            n.used_sems -= cnt;
            n.undo.retain(|&(_, sid, _), _| sid != id);
            drop(n);
            q.notify(events::ALL);
            return Ok(0);
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            if cmd != SEM_STAT_ANY {
                s.perm.check(t, 4)?;
            }
            let mut b = s.perm.bytes().to_vec();
            for v in [
                s.otime as u64,
                0,
                s.ctime as u64,
                0,
                s.sems.len() as u64,
                0,
                0,
            ] {
                b.extend_from_slice(&v.to_ne_bytes());
            }
            t.mm().copy_out(arg, &b)?;
            if cmd == IPC_STAT { 0 } else { id as u64 }
        }
        IPC_SET => {
            s.perm.owner(t)?;
            let mut raw = [0u8; 48];
            t.mm().copy_in(arg, &mut raw)?;
            s.perm.set_from(&raw);
            s.ctime = now_secs();
            0
        }
        GETVAL => {
            s.perm.check(t, 4)?;
            s.sems[idx(s)?].val as u64
        }
        GETPID => {
            s.perm.check(t, 4)?;
            s.sems[idx(s)?].pid as u64
        }
        GETNCNT => {
            s.perm.check(t, 4)?;
            u64::from(s.ncnt[idx(s)?])
        }
        GETZCNT => {
            s.perm.check(t, 4)?;
            u64::from(s.zcnt[idx(s)?])
        }
        GETALL => {
            s.perm.check(t, 4)?;
            let b: Vec<u8> = s
                .sems
                .iter()
                .flat_map(|x| (x.val as u16).to_ne_bytes())
                .collect();
            t.mm().copy_out(arg, &b)?;
            0
        }
        SETVAL => {
            s.perm.check(t, 2)?;
            let i = idx(s)?;
            let v = arg as u32 as i32;
            if !(0..=SEMVMX).contains(&v) {
                return Err(Errno::ERANGE);
            }
            s.sems[i] = Sem {
                val: v,
                pid: t.tgid(),
            };
            s.ctime = now_secs();
            let q = s.queue.clone();
            n.undo
                .retain(|&(_, sid, num), _| !(sid == id && usize::from(num) == i));
            drop(n);
            q.notify(events::ALL);
            return Ok(0);
        }
        SETALL => {
            s.perm.check(t, 2)?;
            let mut raw = vec![0u8; s.sems.len() * 2];
            t.mm().copy_in(arg, &mut raw)?;
            let vals: Vec<i32> = raw
                .chunks_exact(2)
                .map(|c| i32::from(u16::from_ne_bytes([c[0], c[1]])))
                .collect();
            if vals.iter().any(|&v| v > SEMVMX) {
                return Err(Errno::ERANGE);
            }
            let pid = t.tgid();
            for (x, v) in s.sems.iter_mut().zip(vals) {
                *x = Sem { val: v, pid };
            }
            s.ctime = now_secs();
            let q = s.queue.clone();
            n.undo.retain(|&(_, sid, _), _| sid != id);
            drop(n);
            q.notify(events::ALL);
            return Ok(0);
        }
        _ => return Err(Errno::EINVAL),
    };
    Ok(r)
}
