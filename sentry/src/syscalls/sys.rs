//! System information and scheduling calls: `uname`, host and domain names, `sysinfo`,
//! resource limits and usage, `getrandom`, CPU affinity, `sched_yield`, `getcpu`.

use linux_abi::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::SyscallEntry;
use std::sync::Arc;

use crate::kernel::sched::{
    SCHED_BATCH, SCHED_DEADLINE, SCHED_FIFO, SCHED_IDLE, SCHED_OTHER, SCHED_RR,
};
use crate::kernel::{
    CAP_SYS_NICE, RLIM_INFINITY, RLIM_NLIMITS, Rlimit, Task, UTS_RELEASE, UTS_VERSION,
};

/// The system information calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_UNAME => uname(Ptr) = sys_uname;
    SYS_SETHOSTNAME => sethostname(Str, Uint) = sys_sethostname;
    SYS_SETDOMAINNAME => setdomainname(Str, Uint) = sys_setdomainname;
    SYS_SYSINFO => sysinfo(Ptr) = sys_sysinfo;
    SYS_GETRLIMIT => getrlimit(Int, Ptr) = sys_getrlimit;
    SYS_SETRLIMIT => setrlimit(Int, Ptr) = sys_setrlimit;
    SYS_PRLIMIT64 => prlimit64(Int, Int, Ptr, Ptr) = sys_prlimit64;
    SYS_GETRUSAGE => getrusage(Int, Ptr) = sys_getrusage;
    SYS_GETRANDOM => getrandom(Ptr, Uint, Hex) = sys_getrandom;
    SYS_SCHED_YIELD => sched_yield() = sys_sched_yield;
    SYS_SCHED_GETAFFINITY => sched_getaffinity(Int, Uint, Ptr) = sys_sched_getaffinity;
    SYS_SCHED_SETAFFINITY => sched_setaffinity(Int, Uint, Ptr) = sys_sched_setaffinity;
    SYS_GETCPU => getcpu(Ptr, Ptr, Ptr) = sys_getcpu;
    SYS_GETPRIORITY => getpriority(Int, Int) = sys_getpriority;
    SYS_SCHED_GETSCHEDULER => sched_getscheduler(Int) = sys_sched_getscheduler;
    SYS_SCHED_SETSCHEDULER => sched_setscheduler(Int, Int, Ptr) = sys_sched_setscheduler;
    SYS_SCHED_GETPARAM => sched_getparam(Int, Ptr) = sys_sched_getparam;
    SYS_SCHED_SETPARAM => sched_setparam(Int, Ptr) = sys_sched_setparam;
    SYS_SCHED_GET_PRIORITY_MAX => sched_get_priority_max(Int) = sys_sched_get_priority_max;
    SYS_SCHED_GET_PRIORITY_MIN => sched_get_priority_min(Int) = sys_sched_get_priority_min;
    SYS_SCHED_RR_GET_INTERVAL => sched_rr_get_interval(Int, Ptr) = sys_sched_rr_get_interval;
    SYS_SCHED_SETATTR => sched_setattr(Int, Ptr, Hex) = sys_sched_setattr;
    SYS_SCHED_GETATTR => sched_getattr(Int, Ptr, Uint, Hex) = sys_sched_getattr;
    SYS_PERSONALITY => personality(Hex) -> Hex = sys_personality;
    SYS_SETPRIORITY => setpriority(Int, Int, Int) = sys_setpriority;
];

/// `struct utsname`: six 65-byte fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Utsname {
    /// `sysname`.
    pub sysname: [u8; 65],
    /// `nodename`.
    pub nodename: [u8; 65],
    /// `release`.
    pub release: [u8; 65],
    /// `version`.
    pub version: [u8; 65],
    /// `machine`.
    pub machine: [u8; 65],
    /// `domainname`.
    pub domainname: [u8; 65],
}

fn field(s: &str) -> [u8; 65] {
    let mut f = [0u8; 65];
    let n = s.len().min(64);
    f[..n].copy_from_slice(&s.as_bytes()[..n]);
    f
}

/// The `uname` answer for `t`'s kernel.
pub fn utsname(t: &Task) -> Utsname {
    Utsname {
        sysname: field("Linux"),
        nodename: field(&t.kernel().hostname()),
        release: field(UTS_RELEASE),
        version: field(UTS_VERSION),
        machine: field("x86_64"),
        domainname: field(&t.kernel().domainname()),
    }
}

/// `uname(buf)`.
pub fn sys_uname(t: &Task, buf: u64) -> Result<u64, Errno> {
    t.mm().write_obj(buf, &utsname(t))?;
    Ok(0)
}

fn read_name(t: &Task, name: u64, len: u64) -> Result<String, Errno> {
    if !t.creds().has_cap(crate::kernel::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    if len > 64 {
        return Err(Errno::EINVAL);
    }
    let mut buf = vec![0u8; len as usize];
    t.mm().copy_in(name, &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// `sethostname(name, len)`.
pub fn sys_sethostname(t: &Task, name: u64, len: u64) -> Result<u64, Errno> {
    let n = read_name(t, name, len)?;
    t.kernel().set_hostname(n);
    Ok(0)
}

/// `setdomainname(name, len)`.
pub fn sys_setdomainname(t: &Task, name: u64, len: u64) -> Result<u64, Errno> {
    let n = read_name(t, name, len)?;
    t.kernel().set_domainname(n);
    Ok(0)
}

/// `struct sysinfo`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SysInfo {
    /// Seconds since boot.
    pub uptime: i64,
    /// 1, 5 and 15 minute load averages (<< 16).
    pub loads: [u64; 3],
    /// Total RAM.
    pub totalram: u64,
    /// Free RAM.
    pub freeram: u64,
    /// Shared RAM.
    pub sharedram: u64,
    /// Buffer RAM.
    pub bufferram: u64,
    /// Total swap.
    pub totalswap: u64,
    /// Free swap.
    pub freeswap: u64,
    /// Number of processes.
    pub procs: u16,
    /// Padding.
    pub pad: [u8; 6],
    /// Total high memory.
    pub totalhigh: u64,
    /// Free high memory.
    pub freehigh: u64,
    /// Unit of the memory fields.
    pub mem_unit: u32,
    /// Padding.
    pub _f: [u8; 4],
}

/// The host's total and available memory in bytes (from the host's `sysinfo`).
fn host_memory() -> (u64, u64) {
    crate::host::memory().unwrap_or((4 << 30, 2 << 30))
}

/// `sysinfo(info)`.
pub fn sys_sysinfo(t: &Task, info: u64) -> Result<u64, Errno> {
    let (mut total, mut free) = host_memory();
    if let Some(limit) = t.kernel().memory_limit() {
        (total, free) = crate::fs::proc::limited_memory(limit, t.kernel().memory_usage(), total);
    }
    let si = SysInfo {
        uptime: t.kernel().boot_instant().elapsed().as_secs() as i64 + 1,
        totalram: total,
        freeram: free,
        procs: t.kernel().task_count().min(u16::MAX as usize) as u16,
        mem_unit: 1,
        ..Default::default()
    };
    t.mm().write_obj(info, &si)?;
    Ok(0)
}

/// `RLIMIT_NOFILE`.
const RLIMIT_NOFILE: usize = 7;
/// The largest descriptor limit (`/proc/sys/fs/nr_open`).
const NR_OPEN: u64 = 1 << 20;

fn resource(res: i32) -> Result<usize, Errno> {
    usize::try_from(res)
        .ok()
        .filter(|&r| r < RLIM_NLIMITS)
        .ok_or(Errno::EINVAL)
}

/// `getrlimit(resource, rlim)`.
pub fn sys_getrlimit(t: &Task, res: i32, rlim: u64) -> Result<u64, Errno> {
    let r = t
        .thread_group()
        .rlimit(resource(res)?)
        .ok_or(Errno::EINVAL)?;
    t.mm().write_obj(rlim, &r)?;
    Ok(0)
}

/// `setrlimit(resource, rlim)`.
pub fn sys_setrlimit(t: &Task, res: i32, rlim: u64) -> Result<u64, Errno> {
    sys_prlimit64(t, 0, res, rlim, 0)
}

/// `prlimit64(pid, resource, new, old)`.
pub fn sys_prlimit64(t: &Task, pid: i32, res: i32, new: u64, old: u64) -> Result<u64, Errno> {
    let res = resource(res)?;
    let tg = if pid == 0 || pid == t.tgid() {
        t.thread_group().clone()
    } else {
        t.kernel().thread_group(pid).ok_or(Errno::ESRCH)?
    };
    let mm = t.mm();
    let new_lim = if new != 0 {
        Some(mm.read_obj::<Rlimit>(new)?)
    } else {
        None
    };
    let cur = tg.rlimit(res).ok_or(Errno::EINVAL)?;
    if let Some(n) = new_lim {
        if n.cur > n.max && n.max != RLIM_INFINITY {
            return Err(Errno::EINVAL);
        }
        if n.max > cur.max && !t.creds().has_cap(crate::kernel::CAP_SYS_RESOURCE) {
            return Err(Errno::EPERM);
        }
        // RLIMIT_NOFILE cannot exceed the kernel's nr_open.
        if res == RLIMIT_NOFILE && n.max > NR_OPEN {
            return Err(Errno::EPERM);
        }
        tg.set_rlimit(res, n);
        if res == crate::kernel::cpu::RLIMIT_CPU && n.cur != RLIM_INFINITY {
            // The CPU ticker enforces it.
            t.kernel().kick_cpu_ticker();
        }
        if res == RLIMIT_NOFILE {
            // The descriptor tables enforce the soft limit.
            let lim = u32::try_from(n.cur).unwrap_or(u32::MAX);
            for task in tg.tasks() {
                task.fd_table().set_limit(lim);
            }
        }
    }
    if old != 0 {
        mm.write_obj(old, &cur)?;
    }
    Ok(0)
}

/// `struct rusage` (times and 14 counters).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct Rusage {
    /// User time.
    pub utime: linux_abi::types::Timeval,
    /// System time.
    pub stime: linux_abi::types::Timeval,
    /// `ru_maxrss` and the other counters.
    pub counters: [i64; 14],
}

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

impl Rusage {
    /// A `struct rusage` with the CPU times `t` (and the other counters zero).
    pub fn from_times(t: crate::kernel::cpu::CpuTimes) -> Rusage {
        let tv = |d: std::time::Duration| linux_abi::types::Timeval {
            tv_sec: d.as_secs() as i64,
            tv_usec: i64::from(d.subsec_micros()),
        };
        Rusage {
            utime: tv(t.user),
            stime: tv(t.sys),
            counters: [0; 14],
        }
    }
}

/// `getrusage(who, usage)`: user and system time as charged by the task loop
/// ([`crate::kernel::cpu`]), max RSS from the mm.
pub fn sys_getrusage(t: &Task, who: i32, usage: u64) -> Result<u64, Errno> {
    let ru = match who {
        RUSAGE_SELF | RUSAGE_THREAD => {
            let times = if who == RUSAGE_SELF {
                t.thread_group().cpu_times()
            } else {
                t.cpu_times()
            };
            let mut ru = Rusage::from_times(times);
            ru.counters[0] = (t.mm().resident_pages() * 4) as i64; // ru_maxrss in KiB
            ru
        }
        RUSAGE_CHILDREN => Rusage::from_times(t.thread_group().children_cpu_times()),
        _ => return Err(Errno::EINVAL),
    };
    t.mm().write_obj(usage, &ru)?;
    Ok(0)
}

/// `getrandom(buf, len, flags)`: bytes from the host's `getrandom`.
pub fn sys_getrandom(t: &Task, buf: u64, len: u64, flags: u32) -> Result<u64, Errno> {
    const GRND_NONBLOCK: u32 = 1;
    const GRND_RANDOM: u32 = 2;
    const GRND_INSECURE: u32 = 4;
    if flags & !(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) != 0 {
        return Err(Errno::EINVAL);
    }
    let len = len.min(32 << 20) as usize;
    let mut data = vec![0u8; len.min(1 << 16)];
    let mut done = 0usize;
    while done < len {
        let n = (len - done).min(data.len());
        let r = match crate::host::getrandom(&mut data[..n]) {
            Ok(r) => r,
            Err(e) => return if done > 0 { Ok(done as u64) } else { Err(e) },
        };
        t.mm().copy_out(buf.wrapping_add(done as u64), &data[..r])?;
        done += r;
    }
    Ok(done as u64)
}

/// `sched_yield()`.
pub fn sys_sched_yield(_t: &Task) -> Result<u64, Errno> {
    std::thread::yield_now();
    Ok(0)
}

/// The task `pid` names for the scheduling calls (0: the caller): `EINVAL` for a
/// negative id, `ESRCH` for none.
fn sched_target(t: &Task, pid: i32) -> Result<Arc<Task>, Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 {
        return t.kernel().task(t.tid()).ok_or(Errno::ESRCH);
    }
    t.kernel().task(pid).ok_or(Errno::ESRCH)
}

/// The task the affinity calls name: unlike the `sched_*param` family, Linux looks a
/// negative pid up like any other, so it is `ESRCH`, not `EINVAL`.
fn affinity_target(t: &Task, pid: i32) -> Result<Arc<Task>, Errno> {
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    sched_target(t, pid)
}

/// Whether `t` may change the scheduling of `target` (Linux's `check_same_owner`, or
/// `CAP_SYS_NICE`).
fn may_reschedule(t: &Task, target: &Task) -> bool {
    let me = t.creds();
    let them = target.creds();
    me.euid == them.uid || me.euid == them.euid || me.has_cap(CAP_SYS_NICE)
}

/// `sched_getaffinity(pid, len, mask)`: the mask last set (every CPU at first).
pub fn sys_sched_getaffinity(t: &Task, pid: i32, len: u64, mask: u64) -> Result<u64, Errno> {
    let n = t.kernel().ncpus();
    let bytes = n.div_ceil(64) * 8;
    if (len as usize) < n.div_ceil(8) || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let target = affinity_target(t, pid)?;
    let mut m = target.sched().affinity.clone();
    m.resize(bytes, 0);
    t.mm().copy_out(mask, &m)?;
    Ok(bytes as u64)
}

/// `sched_setaffinity(pid, len, mask)`: kept (intersected with the sandbox's CPUs) for
/// `sched_getaffinity`; `EINVAL` if no CPU is left.
pub fn sys_sched_setaffinity(t: &Task, pid: i32, len: u64, mask: u64) -> Result<u64, Errno> {
    let target = affinity_target(t, pid)?;
    let n = t.kernel().ncpus();
    let bytes = n.div_ceil(64) * 8;
    let mut m = vec![0u8; bytes];
    let take = (len as usize).min(bytes);
    t.mm().copy_in(mask, &mut m[..take])?;
    if !may_reschedule(t, &target) {
        return Err(Errno::EPERM);
    }
    let mut allowed = vec![0u8; n.div_ceil(8)];
    for c in 0..n {
        if m[c / 8] & (1 << (c % 8)) != 0 {
            allowed[c / 8] |= 1 << (c % 8);
        }
    }
    if allowed.iter().all(|&b| b == 0) {
        return Err(Errno::EINVAL);
    }
    target.sched().affinity = allowed;
    Ok(0)
}

/// `getcpu(cpu, node, cache)`.
pub fn sys_getcpu(t: &Task, cpu: u64, node: u64, _cache: u64) -> Result<u64, Errno> {
    // The host thread may run anywhere; the task runs, as far as it can tell, on a CPU
    // its affinity allows: the host's CPU when allowed, the first allowed one otherwise.
    let host = crate::host::current_cpu();
    let allowed = |c: u32| {
        let aff = &t.sched().affinity;
        aff.get(c as usize / 8)
            .is_some_and(|b| b & (1 << (c % 8)) != 0)
    };
    let c = if allowed(host) {
        host
    } else {
        (0..t.kernel().ncpus() as u32)
            .find(|&c| allowed(c))
            .unwrap_or(host)
    };
    let mm = t.mm();
    if cpu != 0 {
        mm.write_obj(cpu, &c)?;
    }
    if node != 0 {
        mm.write_obj(node, &0u32)?;
    }
    Ok(0)
}

const PRIO_PROCESS: i32 = 0;
const PRIO_PGRP: i32 = 1;
const PRIO_USER: i32 = 2;
const RLIMIT_NICE: usize = 13;
const RLIMIT_RTPRIO: usize = 14;

/// The tasks `which`/`who` of `getpriority`/`setpriority` name.
fn prio_targets(t: &Task, which: i32, who: i32) -> Result<Vec<Arc<Task>>, Errno> {
    let k = t.kernel();
    let every = || {
        k.pids()
            .into_iter()
            .filter_map(|p| k.thread_group(p))
            .flat_map(|tg| tg.tasks())
    };
    let out: Vec<Arc<Task>> = match which {
        PRIO_PROCESS => {
            let tid = if who == 0 { t.tid() } else { who };
            k.task(tid).into_iter().collect()
        }
        PRIO_PGRP => {
            let pgid = if who == 0 {
                t.thread_group().pgid()
            } else {
                who
            };
            every()
                .filter(|x| x.thread_group().pgid() == pgid)
                .collect()
        }
        PRIO_USER => {
            let uid = if who == 0 { t.creds().uid } else { who as u32 };
            every().filter(|x| x.creds().uid == uid).collect()
        }
        _ => return Err(Errno::EINVAL),
    };
    if out.is_empty() {
        return Err(Errno::ESRCH);
    }
    Ok(out)
}

/// `getpriority(which, who)`: the highest priority among the named tasks, as the raw
/// call returns it (`20 - nice`).
pub fn sys_getpriority(t: &Task, which: i32, who: i32) -> Result<u64, Errno> {
    let best = prio_targets(t, which, who)?
        .iter()
        .map(|x| 20 - x.sched().nice)
        .max()
        .unwrap_or(20);
    Ok(best as u64)
}

/// `setpriority(which, who, prio)`: sets the nice value (clamped to -20..=19) of every
/// named task; `EPERM` for another user's task, `EACCES` for a lower nice value than the
/// task has without `CAP_SYS_NICE` or room in `RLIMIT_NICE`.
pub fn sys_setpriority(t: &Task, which: i32, who: i32, prio: i32) -> Result<u64, Errno> {
    let nice = prio.clamp(-20, 19);
    let targets = prio_targets(t, which, who)?;
    let rlim = t
        .thread_group()
        .rlimit(RLIMIT_NICE)
        .map_or(0, |l| l.cur.min(40) as i32);
    let privileged = t.creds().has_cap(CAP_SYS_NICE);
    let mut err = None;
    for x in targets {
        if !may_reschedule(t, &x) {
            err = Some(Errno::EPERM);
            continue;
        }
        let mut s = x.sched();
        if nice < s.nice && 20 - nice > rlim && !privileged {
            err = Some(Errno::EACCES);
            continue;
        }
        s.nice = nice;
    }
    err.map_or(Ok(0), Err)
}

/// `SCHED_RESET_ON_FORK`, or-ed into a policy.
const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

/// Checks `priority` for `policy` and whether `t` may give them to `target`.
fn set_sched(
    t: &Task,
    target: &Task,
    policy: i32,
    priority: i32,
    reset: bool,
) -> Result<(), Errno> {
    let rt = policy == SCHED_FIFO || policy == SCHED_RR;
    match policy {
        SCHED_FIFO | SCHED_RR if (1..=99).contains(&priority) => {}
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE if priority == 0 => {}
        _ => return Err(Errno::EINVAL),
    }
    if !may_reschedule(t, target) {
        return Err(Errno::EPERM);
    }
    let privileged = t.creds().has_cap(CAP_SYS_NICE);
    if rt && !privileged {
        let rlim = t.thread_group().rlimit(RLIMIT_RTPRIO).map_or(0, |l| l.cur);
        let cur = target.sched().priority;
        if u64::try_from(priority).unwrap_or(0) > rlim.max(u64::try_from(cur).unwrap_or(0)) {
            return Err(Errno::EPERM);
        }
    }
    let mut s = target.sched();
    if s.reset_on_fork && !reset && !privileged {
        return Err(Errno::EPERM);
    }
    s.policy = policy;
    s.priority = priority;
    s.reset_on_fork = reset;
    s.deadline = (0, 0, 0);
    Ok(())
}

/// `sched_getscheduler(pid)`.
pub fn sys_sched_getscheduler(t: &Task, pid: i32) -> Result<u64, Errno> {
    let s = sched_target(t, pid)?.sched().clone();
    let reset = if s.reset_on_fork {
        SCHED_RESET_ON_FORK
    } else {
        0
    };
    Ok((s.policy | reset) as u64)
}

/// `sched_setscheduler(pid, policy, param)`: the policy and priority are kept for the
/// getters (the host schedules the Sentry's threads as it does); real-time policies need
/// `CAP_SYS_NICE` or `RLIMIT_RTPRIO`.
pub fn sys_sched_setscheduler(t: &Task, pid: i32, policy: i32, param: u64) -> Result<u64, Errno> {
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = t.mm().read_obj(param)?;
    let target = sched_target(t, pid)?;
    let reset = policy & SCHED_RESET_ON_FORK != 0;
    set_sched(t, &target, policy & !SCHED_RESET_ON_FORK, prio, reset)?;
    Ok(0)
}

/// `sched_getparam(pid, param)`.
pub fn sys_sched_getparam(t: &Task, pid: i32, param: u64) -> Result<u64, Errno> {
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let prio = sched_target(t, pid)?.sched().priority;
    t.mm().write_obj(param, &prio)?;
    Ok(0)
}

/// `sched_setparam(pid, param)`: a new priority within the task's policy.
pub fn sys_sched_setparam(t: &Task, pid: i32, param: u64) -> Result<u64, Errno> {
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let prio: i32 = t.mm().read_obj(param)?;
    let target = sched_target(t, pid)?;
    let (policy, reset) = {
        let s = target.sched();
        (s.policy, s.reset_on_fork)
    };
    set_sched(t, &target, policy, prio, reset)?;
    Ok(0)
}

/// `struct sched_attr` (the `SCHED_ATTR_SIZE_VER1` layout).
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// The first `struct sched_attr`'s size.
const SCHED_ATTR_SIZE_VER0: u32 = 48;
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
const SCHED_FLAG_UTIL_CLAMP: u64 = 0x20 | 0x40;
const SCHED_FLAG_ALL: u64 = 0x7f;

/// Linux's `__checkparam_dl`: a deadline, a runtime of at least 1024 ns, runtime <=
/// deadline <= period, and a period between 100 us and 4.194304 s.
fn deadline_params_ok(a: &SchedAttr) -> bool {
    let period = if a.period == 0 { a.deadline } else { a.period };
    a.deadline != 0
        && a.runtime >= 1 << 10
        && a.deadline & (1 << 63) == 0
        && a.period & (1 << 63) == 0
        && period >= a.deadline
        && a.deadline >= a.runtime
        && (100_000..=4_194_304_000).contains(&period)
}

/// Linux's default time slice of a fair task (`sysctl_sched_base_slice`): 0.7 ms
/// scaled by 1 + log2 of the CPUs, counting at most 8.
fn default_slice(ncpus: usize) -> u64 {
    700_000 * (1 + u64::from(ncpus.clamp(1, 8).ilog2()))
}

/// `sched_setattr(pid, attr, flags)`: the policy, nice value or priority, and
/// `SCHED_DEADLINE`'s parameters (kept for the getters, as the other policies are),
/// checked as Linux's `sched_setattr` and `__sched_setscheduler`.
pub fn sys_sched_setattr(t: &Task, pid: i32, uattr: u64, flags: u32) -> Result<u64, Errno> {
    if uattr == 0 || pid < 0 || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let mut size: u32 = mm.read_obj(uattr)?;
    if size == 0 {
        size = SCHED_ATTR_SIZE_VER0;
    }
    let ksize = std::mem::size_of::<SchedAttr>() as u32;
    let too_big = || -> Result<u64, Errno> {
        mm.write_obj(uattr, &ksize)?;
        Err(Errno::E2BIG)
    };
    if !(SCHED_ATTR_SIZE_VER0..=4096).contains(&size) {
        return too_big();
    }
    let mut raw = vec![0u8; size as usize];
    mm.copy_in(uattr, &mut raw)?;
    if raw.iter().skip(ksize as usize).any(|&b| b != 0) {
        return too_big();
    }
    let mut a = SchedAttr::default();
    let n = raw.len().min(ksize as usize);
    a.as_mut_bytes()[..n].copy_from_slice(&raw[..n]);
    if a.flags & SCHED_FLAG_UTIL_CLAMP != 0 && size < ksize {
        return Err(Errno::EINVAL);
    }
    let nice = a.nice.clamp(-20, 19);
    if (a.policy as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let target = sched_target(t, pid)?;
    let cur = target.sched().clone();
    let (policy, reset) = if a.flags & SCHED_FLAG_KEEP_POLICY != 0 {
        (cur.policy, cur.reset_on_fork)
    } else {
        (a.policy as i32, a.flags & SCHED_FLAG_RESET_ON_FORK != 0)
    };
    if a.flags & SCHED_FLAG_KEEP_PARAMS != 0 {
        a.priority = cur.priority as u32;
        (a.runtime, a.deadline, a.period) = cur.deadline;
    }
    if !matches!(
        policy,
        SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE
    ) || a.flags & !SCHED_FLAG_ALL != 0
        || a.priority > 99
    {
        return Err(Errno::EINVAL);
    }
    let rt = policy == SCHED_FIFO || policy == SCHED_RR;
    if (policy == SCHED_DEADLINE && !deadline_params_ok(&a)) || rt != (a.priority != 0) {
        return Err(Errno::EINVAL);
    }
    let privileged = t.creds().has_cap(CAP_SYS_NICE);
    if !privileged {
        let fair = matches!(policy, SCHED_OTHER | SCHED_BATCH | SCHED_IDLE);
        let nice_floor = 20
            - t.thread_group()
                .rlimit(RLIMIT_NICE)
                .map_or(0, |l| l.cur.min(40) as i32);
        let rtprio = t.thread_group().rlimit(RLIMIT_RTPRIO).map_or(0, |l| l.cur);
        let denied = (fair && nice < cur.nice && nice < nice_floor)
            || (rt && policy != cur.policy && rtprio == 0)
            || (rt && a.priority as i32 > cur.priority && u64::from(a.priority) > rtprio)
            || policy == SCHED_DEADLINE
            || !may_reschedule(t, &target)
            || (cur.reset_on_fork && !reset);
        if denied {
            return Err(Errno::EPERM);
        }
    }
    if a.flags & SCHED_FLAG_UTIL_CLAMP != 0 {
        // Utilization clamping (CONFIG_UCLAMP_TASK) is not part of this kernel.
        return Err(Errno::EOPNOTSUPP);
    }
    let mut s = target.sched();
    s.policy = policy;
    s.reset_on_fork = reset;
    s.priority = a.priority as i32;
    s.deadline = if policy == SCHED_DEADLINE {
        (a.runtime, a.deadline, a.period)
    } else {
        (0, 0, 0)
    };
    if !rt && policy != SCHED_DEADLINE {
        s.nice = nice;
        // A fair task's runtime is its slice, within 0.1 ms and 100 ms (Linux 6.12's
        // custom slices); 0 is the default.
        s.slice = if a.runtime == 0 {
            0
        } else {
            a.runtime.clamp(100_000, 100_000_000)
        };
    }
    Ok(0)
}

/// `sched_getattr(pid, attr, size, flags)`: the attributes as `sched_setattr` takes
/// them, in at most `size` bytes (the size written is what was filled).
pub fn sys_sched_getattr(
    t: &Task,
    pid: i32,
    uattr: u64,
    size: u32,
    flags: u32,
) -> Result<u64, Errno> {
    if uattr == 0 || pid < 0 || !(SCHED_ATTR_SIZE_VER0..=4096).contains(&size) || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let s = sched_target(t, pid)?.sched().clone();
    let ksize = std::mem::size_of::<SchedAttr>() as u32;
    let mut a = SchedAttr {
        size: size.min(ksize),
        policy: s.policy as u32,
        ..SchedAttr::default()
    };
    if s.reset_on_fork {
        a.flags |= SCHED_FLAG_RESET_ON_FORK;
    }
    match s.policy {
        SCHED_DEADLINE => (a.runtime, a.deadline, a.period) = s.deadline,
        SCHED_FIFO | SCHED_RR => a.priority = s.priority as u32,
        _ => {
            a.nice = s.nice;
            a.runtime = if s.slice != 0 {
                s.slice
            } else {
                default_slice(t.kernel().ncpus())
            };
        }
    }
    t.mm().copy_out(uattr, &a.as_bytes()[..a.size as usize])?;
    Ok(0)
}

/// `sched_get_priority_max(policy)`.
pub fn sys_sched_get_priority_max(_t: &Task, policy: i32) -> Result<u64, Errno> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok(99),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// `sched_get_priority_min(policy)`.
pub fn sys_sched_get_priority_min(_t: &Task, policy: i32) -> Result<u64, Errno> {
    match policy {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// `sched_rr_get_interval(pid, tp)`: Linux's round-robin slice (100 ms) for
/// `SCHED_RR` tasks, 0 for the others.
pub fn sys_sched_rr_get_interval(t: &Task, pid: i32, tp: u64) -> Result<u64, Errno> {
    let target = sched_target(t, pid)?;
    let slice = if target.sched().policy == SCHED_RR {
        linux_abi::types::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        }
    } else {
        linux_abi::types::Timespec::default()
    };
    t.mm().write_obj(tp, &slice)?;
    Ok(0)
}

/// `personality(persona)`: any value is kept (as Linux, whose only execution domain is
/// Linux's; the flags change nothing here); `0xffffffff` queries.
pub fn sys_personality(t: &Task, persona: u32) -> Result<u64, Errno> {
    let old = t.thread_group().personality();
    if persona != u32::MAX {
        t.thread_group().set_personality(persona);
    }
    Ok(u64::from(old))
}
