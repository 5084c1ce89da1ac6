//! Process and identity system calls: ids, exit, `execve`, credentials, `prctl`,
//! `arch_prctl`, `set_tid_address`, robust lists and `rseq`.

use linux_abi::Errno;

use super::SyscallEntry;
use crate::kernel::process::{
    CloneArgs, WALL, WCLONE, WCONTINUED, WEXITED, WNOHANG, WNOTHREAD, WNOWAIT, WSTOPPED, WaitWho,
    clone_flags, do_clone, do_wait,
};
use crate::kernel::{NGROUPS_MAX, Task};

/// The process system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_GETPID => getpid() = sys_getpid;
    SYS_GETPPID => getppid() = sys_getppid;
    SYS_GETTID => gettid() = sys_gettid;
    SYS_EXIT => exit(I32) = sys_exit;
    SYS_EXIT_GROUP => exit_group(I32) = sys_exit_group;
    SYS_EXECVE => execve(Str, Ptr, Ptr) = sys_execve;
    SYS_EXECVEAT => execveat(Fd, Str, Ptr, Ptr, Hex) = sys_execveat;
    SYS_CLONE => clone(Hex, Ptr, Ptr, Ptr, Hex) = sys_clone;
    SYS_CLONE3 => clone3(Ptr, Uint) = sys_clone3;
    SYS_UNSHARE => unshare(Hex) = sys_unshare;
    SYS_FORK => fork() = sys_fork;
    SYS_VFORK => vfork() = sys_vfork;
    SYS_WAIT4 => wait4(Int, Ptr, Hex, Ptr) = sys_wait4;
    SYS_WAITID => waitid(Int, Int, Ptr, Hex, Ptr) = sys_waitid;
    SYS_SET_TID_ADDRESS => set_tid_address(Ptr) = sys_set_tid_address;
    SYS_SET_ROBUST_LIST => set_robust_list(Ptr, Uint) = sys_set_robust_list;
    SYS_GET_ROBUST_LIST => get_robust_list(I32, Ptr, Ptr) = sys_get_robust_list;
    SYS_FUTEX => futex(Ptr, Int, Uint, Ptr, Ptr, Uint) = sys_futex;
    SYS_RSEQ => rseq(Ptr, Uint, Hex, Hex) = sys_rseq;
    SYS_PIDFD_OPEN => pidfd_open(Int, Hex) = sys_pidfd_open;
    SYS_PIDFD_SEND_SIGNAL => pidfd_send_signal(Fd, Signal, Ptr, Hex) = sys_pidfd_send_signal;
    SYS_PIDFD_GETFD => pidfd_getfd(Fd, Int, Hex) = sys_pidfd_getfd;
    SYS_ARCH_PRCTL => arch_prctl(Hex, Hex) = sys_arch_prctl;
    SYS_PRCTL => prctl(Int, Hex, Hex, Hex, Hex) = sys_prctl;
    SYS_GETUID => getuid() = sys_getuid;
    SYS_GETEUID => geteuid() = sys_geteuid;
    SYS_GETGID => getgid() = sys_getgid;
    SYS_GETEGID => getegid() = sys_getegid;
    SYS_SETUID => setuid(Uint) = sys_setuid;
    SYS_SETGID => setgid(Uint) = sys_setgid;
    SYS_SETREUID => setreuid(I32, I32) = sys_setreuid;
    SYS_SETREGID => setregid(I32, I32) = sys_setregid;
    SYS_SETRESUID => setresuid(I32, I32, I32) = sys_setresuid;
    SYS_SETRESGID => setresgid(I32, I32, I32) = sys_setresgid;
    SYS_GETRESUID => getresuid(Ptr, Ptr, Ptr) = sys_getresuid;
    SYS_GETRESGID => getresgid(Ptr, Ptr, Ptr) = sys_getresgid;
    SYS_SETFSUID => setfsuid(Uint) = sys_setfsuid;
    SYS_SETFSGID => setfsgid(Uint) = sys_setfsgid;
    SYS_GETGROUPS => getgroups(Int, Ptr) = sys_getgroups;
    SYS_SETGROUPS => setgroups(Int, Ptr) = sys_setgroups;
    SYS_CAPGET => capget(Ptr, Ptr) = sys_capget;
    SYS_CAPSET => capset(Ptr, Ptr) = sys_capset;
    SYS_GETPGRP => getpgrp() = sys_getpgrp;
    SYS_GETPGID => getpgid(Int) = sys_getpgid;
    SYS_SETPGID => setpgid(Int, Int) = sys_setpgid;
    SYS_GETSID => getsid(Int) = sys_getsid;
    SYS_SETSID => setsid() = sys_setsid;
];

/// `getpid()`: the thread group id (1 for the first process).
pub fn sys_getpid(t: &Task) -> Result<u64, Errno> {
    Ok(t.tgid() as u64)
}

/// `getppid()`: 0 for PID 1.
pub fn sys_getppid(t: &Task) -> Result<u64, Errno> {
    Ok(t.thread_group().ppid() as u64)
}

/// `gettid()`.
pub fn sys_gettid(t: &Task) -> Result<u64, Errno> {
    Ok(t.tid() as u64)
}

/// `exit(code)`: ends the calling thread.
pub fn sys_exit(t: &Task, code: i32) -> Result<u64, Errno> {
    t.exit_thread(code as u8);
    Ok(0)
}

/// `exit_group(code)`: ends every thread of the process.
pub fn sys_exit_group(t: &Task, code: i32) -> Result<u64, Errno> {
    t.exit_group(code as u8);
    Ok(0)
}

/// Most bytes of `argv` plus `envp` accepted by `execve`.
const MAX_EXEC_ARGS: usize = crate::loader::MAX_ARG_BYTES;

/// `execve(path, argv, envp)`.
pub fn sys_execve(t: &Task, path: u64, argv: u64, envp: u64) -> Result<u64, Errno> {
    let mm = t.mm();
    let path = mm.read_c_string(path, 4096)?;
    drop(mm);
    exec_common(t, path, argv, envp)
}

fn exec_common(t: &Task, path: Vec<u8>, argv: u64, envp: u64) -> Result<u64, Errno> {
    let mm = t.mm();
    let argv = mm.read_string_array(argv, MAX_EXEC_ARGS)?;
    let envp = mm.read_string_array(envp, MAX_EXEC_ARGS)?;
    drop(mm);
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    t.execve(&path, argv, envp)?;
    Ok(0)
}

const AT_FDCWD: i32 = -100;
const AT_EMPTY_PATH: u32 = 0x1000;
const AT_SYMLINK_NOFOLLOW: u32 = 0x100;

/// `execveat(dirfd, path, argv, envp, flags)`: relative paths start at `dirfd`;
/// `AT_EMPTY_PATH` runs the file `dirfd` itself.
pub fn sys_execveat(
    t: &Task,
    dirfd: i32,
    path: u64,
    argv: u64,
    envp: u64,
    flags: u32,
) -> Result<u64, Errno> {
    if flags & !(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = t.mm().read_c_string(path, 4096)?;
    let full = if p.first() == Some(&b'/') || dirfd == AT_FDCWD {
        p
    } else {
        let f = t.fd_table().get(dirfd)?;
        let mut base = f.path();
        if p.is_empty() {
            if flags & AT_EMPTY_PATH == 0 {
                return Err(Errno::ENOENT);
            }
            base
        } else {
            if base.last() != Some(&b'/') {
                base.push(b'/');
            }
            base.extend_from_slice(&p);
            base
        }
    };
    exec_common(t, full, argv, envp)
}

/// `fork()`.
pub fn sys_fork(t: &Task) -> Result<u64, Errno> {
    let a = CloneArgs {
        exit_signal: linux_abi::signal::SIGCHLD,
        ..Default::default()
    };
    do_clone(t, &a).map(|tid| tid as u64)
}

/// `vfork()`: the parent sleeps until the child execs or exits.
pub fn sys_vfork(t: &Task) -> Result<u64, Errno> {
    let a = CloneArgs {
        flags: clone_flags::CLONE_VM | clone_flags::CLONE_VFORK,
        exit_signal: linux_abi::signal::SIGCHLD,
        ..Default::default()
    };
    do_clone(t, &a).map(|tid| tid as u64)
}

/// `clone(flags, stack, parent_tid, child_tid, tls)` (x86-64 argument order).
pub fn sys_clone(
    t: &Task,
    flags: u64,
    stack: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
) -> Result<u64, Errno> {
    let pidfd = flags & clone_flags::CLONE_PIDFD != 0;
    if pidfd
        && flags
            & (clone_flags::CLONE_PARENT_SETTID
                | clone_flags::CLONE_THREAD
                | clone_flags::CLONE_DETACHED)
            != 0
    {
        // The pidfd is written where the parent tid would go.
        return Err(Errno::EINVAL);
    }
    let a = CloneArgs {
        flags: flags & !0xff & !clone_flags::CLONE_PIDFD,
        stack,
        parent_tid: if pidfd { 0 } else { parent_tid },
        child_tid,
        tls,
        exit_signal: (flags & 0xff) as i32,
    };
    clone_with_pidfd(t, &a, pidfd.then_some(parent_tid))
}

/// Runs `do_clone` and, for `CLONE_PIDFD`, installs a close-on-exec pidfd for the child
/// and writes its number to `pidfd_at`.
fn clone_with_pidfd(t: &Task, a: &CloneArgs, pidfd_at: Option<u64>) -> Result<u64, Errno> {
    let Some(at) = pidfd_at else {
        return do_clone(t, a).map(|tid| tid as u64);
    };
    // Check the destination before the child exists, as Linux does.
    t.mm().write_obj(at, &-1i32)?;
    let tid = do_clone(t, a)?;
    if let Some(tg) = t.kernel().thread_group(tid) {
        let file = crate::kernel::pidfd::pidfd_file(&tg, false);
        let fd = t.fd_table().insert(file, true)?;
        t.mm().write_obj(at, &fd)?;
    }
    Ok(tid as u64)
}

/// `struct clone_args` up to `tls` (`CLONE_ARGS_SIZE_VER0` is 64 bytes).
#[repr(C)]
#[derive(Debug, Default, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
struct CloneArgs3 {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// The `clone3` flags Linux knows: the legacy ones, `CLONE_CLEAR_SIGHAND` and
/// `CLONE_INTO_CGROUP`.
const CLONE3_KNOWN: u64 = 0xffff_ff00 | 0x1_0000_0000 | 0x2_0000_0000;
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `CLONE_ARGS_SIZE_VER2`: up to `cgroup`.
const CLONE_ARGS_SIZE_VER2: u64 = 88;

/// `unshare(flags)`: a descriptor table (`CLONE_FILES`) or filesystem context
/// (`CLONE_FS`) of the caller's own; `CLONE_SYSVSEM` has nothing to undo (no semaphore
/// undo lists are kept apart). The thread flags are accepted for a single-threaded
/// process, as Linux; namespaces are refused (EPERM) as `clone` refuses them.
pub fn sys_unshare(t: &Task, flags: u64) -> Result<u64, Errno> {
    use crate::kernel::process::clone_flags::*;
    let known = CLONE_FILES
        | CLONE_FS
        | CLONE_SYSVSEM
        | CLONE_THREAD
        | CLONE_SIGHAND
        | CLONE_VM
        | CLONE_NEWNS
        | CLONE_NEW_OTHERS;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & (CLONE_THREAD | CLONE_SIGHAND | CLONE_VM) != 0 && t.thread_group().tasks().len() > 1
    {
        return Err(Errno::EINVAL);
    }
    if flags & (CLONE_NEWNS | CLONE_NEW_OTHERS) != 0 {
        return Err(Errno::EPERM);
    }
    if flags & CLONE_FILES != 0 {
        t.unshare_fd_table();
    }
    if flags & CLONE_FS != 0 {
        t.unshare_fs_context();
    }
    Ok(0)
}

/// `clone3(args, size)`: checked as Linux's `copy_clone_args_from_user` and
/// `clone3_args_valid` (unknown trailing bytes `E2BIG`, bad combinations `EINVAL`).
pub fn sys_clone3(t: &Task, args: u64, size: u64) -> Result<u64, Errno> {
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    if size < 64 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let a: CloneArgs3 = mm.read_obj(args)?;
    let mut ext = [0u64; 3];
    if size > 64 {
        let mut rest = vec![0u8; (size - 64) as usize];
        mm.copy_in(args + 64, &mut rest)?;
        if rest.len() > (CLONE_ARGS_SIZE_VER2 - 64) as usize
            && rest[(CLONE_ARGS_SIZE_VER2 - 64) as usize..]
                .iter()
                .any(|&b| b != 0)
        {
            return Err(Errno::E2BIG);
        }
        for (i, chunk) in rest.chunks(8).take(3).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            ext[i] = u64::from_le_bytes(b);
        }
    }
    let [set_tid, set_tid_size, _cgroup] = ext;
    if a.flags & !CLONE3_KNOWN != 0
        || a.flags & 0xff != 0
        || a.exit_signal > 64
        || (a.flags & CLONE_CLEAR_SIGHAND != 0 && a.flags & clone_flags::CLONE_SIGHAND != 0)
        || (a.exit_signal != 0
            && a.flags & (clone_flags::CLONE_THREAD | clone_flags::CLONE_PARENT) != 0)
        || set_tid_size > 32
        || (set_tid == 0 && set_tid_size != 0)
        || (set_tid != 0 && set_tid_size == 0)
        || (a.stack == 0) != (a.stack_size == 0)
    {
        return Err(Errno::EINVAL);
    }
    if set_tid_size != 0 {
        // Choosing the child's pid (checkpoint/restore) is not supported.
        return Err(Errno::EPERM);
    }
    if a.flags & CLONE_INTO_CGROUP != 0 {
        // There is no cgroup file system to name a cgroup with.
        return Err(Errno::EBADF);
    }
    let pidfd = a.flags & clone_flags::CLONE_PIDFD != 0;
    if pidfd && a.flags & (clone_flags::CLONE_THREAD | clone_flags::CLONE_DETACHED) != 0 {
        return Err(Errno::EINVAL);
    }
    let stack = if a.stack == 0 {
        0
    } else {
        a.stack.wrapping_add(a.stack_size)
    };
    let c = CloneArgs {
        flags: a.flags & !(clone_flags::CLONE_PIDFD | CLONE_CLEAR_SIGHAND),
        stack,
        parent_tid: a.parent_tid,
        child_tid: a.child_tid,
        tls: a.tls,
        exit_signal: a.exit_signal as i32,
    };
    let tid = clone_with_pidfd(t, &c, pidfd.then_some(a.pidfd))?;
    if a.flags & CLONE_CLEAR_SIGHAND != 0
        && let Some(g) = t.kernel().thread_group(tid as i32)
    {
        g.reset_handlers_on_exec();
    }
    Ok(tid)
}

/// `pidfd_open(pid, flags)`: a pidfd for process `pid` (a thread-group leader).
pub fn sys_pidfd_open(t: &Task, pid: i32, flags: u32) -> Result<u64, Errno> {
    use linux_abi::flags::open::O_NONBLOCK;
    if flags & !O_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let k = t.kernel();
    let Some(tg) = k.thread_group(pid) else {
        // A thread id that is not a process id is EINVAL, an unknown id ESRCH.
        return Err(if k.task(pid).is_some() {
            Errno::EINVAL
        } else {
            Errno::ESRCH
        });
    };
    if tg.is_dead() && tg.tasks().is_empty() && tg.is_exit_notified() && tg.is_reaped() {
        return Err(Errno::ESRCH);
    }
    let file = crate::kernel::pidfd::pidfd_file(&tg, flags & O_NONBLOCK != 0);
    Ok(t.fd_table().insert(file, true)? as u64)
}

/// The process a pidfd descriptor names.
fn pidfd_target(t: &Task, pidfd: i32) -> Result<std::sync::Arc<crate::kernel::ThreadGroup>, Errno> {
    let f = t.fd_table().get(pidfd)?;
    let p = crate::kernel::pidfd::as_pidfd(&f).ok_or(Errno::EBADF)?;
    p.thread_group()
}

/// `pidfd_send_signal(pidfd, sig, info, flags)`: like `kill` (or `rt_sigqueueinfo` with
/// `info`) to the process the pidfd names.
pub fn sys_pidfd_send_signal(
    t: &Task,
    pidfd: i32,
    sig: i32,
    info: u64,
    flags: u32,
) -> Result<u64, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let f = t.fd_table().get(pidfd)?;
    let tg = match crate::kernel::pidfd::as_pidfd(&f) {
        Some(p) => p.thread_group()?,
        // A `/proc/<pid>` directory names its process too (Linux's
        // `tgid_pidfd_to_pid`); the process may be gone.
        None => crate::kernel::pidfd::proc_dir_process(&f)
            .ok_or(Errno::EBADF)?
            .ok_or(Errno::ESRCH)?,
    };
    if tg.is_dead() {
        return Err(Errno::ESRCH);
    }
    if info == 0 {
        return super::signal::sys_kill_group(t, &tg, sig);
    }
    super::signal::sys_queue_group(t, &tg, sig, info)
}

/// `pidfd_getfd(pidfd, targetfd, flags)`: a close-on-exec duplicate of the target's
/// descriptor, for a caller allowed to trace it (`PTRACE_MODE_ATTACH_REALCREDS`).
pub fn sys_pidfd_getfd(t: &Task, pidfd: i32, targetfd: i32, flags: u32) -> Result<u64, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let tg = pidfd_target(t, pidfd)?;
    let target = tg.tasks().into_iter().next().ok_or(Errno::ESRCH)?;
    if !t.may_access(&target) {
        return Err(Errno::EPERM);
    }
    let file = target.fd_table().get(targetfd)?;
    Ok(t.fd_table().insert(file, true)? as u64)
}

fn wait_who(t: &Task, pid: i32) -> WaitWho {
    match pid {
        -1 => WaitWho::Any,
        0 => WaitWho::Pgid(t.thread_group().pgid()),
        p if p < 0 => WaitWho::Pgid(p.wrapping_neg()),
        p => WaitWho::Pid(p),
    }
}

/// `wait4(pid, wstatus, options, rusage)`; the rusage is the child's with its reaped
/// children's.
pub fn sys_wait4(
    t: &Task,
    pid: i32,
    wstatus: u64,
    options: u32,
    rusage: u64,
) -> Result<u64, Errno> {
    if options & !(WNOHANG | WSTOPPED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let r = do_wait(t, wait_who(t, pid), options | WEXITED)?;
    let Some(r) = r else {
        return Ok(0);
    };
    if wstatus != 0 {
        t.mm().write_obj(wstatus, &r.wstatus)?;
    }
    if rusage != 0 {
        t.mm()
            .write_obj(rusage, &super::sys::Rusage::from_times(r.usage))?;
    }
    Ok(r.pid as u64)
}

const P_ALL: i32 = 0;
const P_PID: i32 = 1;
const P_PGID: i32 = 2;
const P_PIDFD: i32 = 3;

/// `waitid(idtype, id, infop, options, rusage)`.
pub fn sys_waitid(
    t: &Task,
    idtype: i32,
    id: i32,
    infop: u64,
    options: u32,
    rusage: u64,
) -> Result<u64, Errno> {
    if options & !(WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)
        != 0
        || options & (WEXITED | WSTOPPED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    // A non-blocking pidfd makes the wait non-blocking: EAGAIN instead of sleeping
    // (unless the caller asked for WNOHANG itself), as Linux's kernel_waitid.
    let mut nonblock = false;
    let who = match idtype {
        P_ALL => WaitWho::Any,
        P_PID if id > 0 => WaitWho::Pid(id),
        P_PGID if id >= 0 => WaitWho::Pgid(if id == 0 { t.thread_group().pgid() } else { id }),
        P_PIDFD => {
            let f = t.fd_table().get(id)?;
            let p = crate::kernel::pidfd::as_pidfd(&f).ok_or(Errno::EINVAL)?;
            nonblock = f.flags() & linux_abi::flags::open::O_NONBLOCK != 0;
            WaitWho::Pid(p.tgid())
        }
        _ => return Err(Errno::EINVAL),
    };
    let r = do_wait(t, who, if nonblock { options | WNOHANG } else { options })?;
    if r.is_none() && nonblock && options & WNOHANG == 0 {
        return Err(Errno::EAGAIN);
    }
    let mm = t.mm();
    if infop != 0 {
        let info = match r {
            Some(r) => {
                let mut i = linux_abi::signal::SigInfo::new(linux_abi::signal::SIGCHLD, r.code);
                i.set_pid_uid(r.pid, r.uid);
                i.fields[1] = u64::from(r.status as u32);
                i
            }
            None => linux_abi::signal::SigInfo::new(0, 0),
        };
        mm.write_obj(infop, &info)?;
    }
    if rusage != 0 {
        let ru = r.map_or_else(super::sys::Rusage::default, |r| {
            super::sys::Rusage::from_times(r.usage)
        });
        mm.write_obj(rusage, &ru)?;
    }
    Ok(0)
}

/// `set_tid_address(tidptr)`.
pub fn sys_set_tid_address(t: &Task, tidptr: u64) -> Result<u64, Errno> {
    t.set_clear_child_tid(tidptr);
    Ok(t.tid() as u64)
}

/// Size of `struct robust_list_head`.
const ROBUST_LIST_HEAD_SIZE: u64 = 24;

/// `set_robust_list(head, len)`.
pub fn sys_set_robust_list(t: &Task, head: u64, len: u64) -> Result<u64, Errno> {
    if len != ROBUST_LIST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    t.set_robust_list(head, len);
    Ok(0)
}

/// `get_robust_list(tid, head_ptr, len_ptr)`.
pub fn sys_get_robust_list(t: &Task, tid: i32, head_ptr: u64, len_ptr: u64) -> Result<u64, Errno> {
    let target = if tid == 0 {
        None
    } else {
        Some(t.kernel().task(tid).ok_or(Errno::ESRCH)?)
    };
    let (head, len) = target.as_deref().unwrap_or(t).robust_list();
    let mm = t.mm();
    mm.write_obj(head_ptr, &head)?;
    mm.write_obj(len_ptr, &len)?;
    Ok(0)
}

const FUTEX_WAIT: u32 = 0;
const FUTEX_WAKE: u32 = 1;
const FUTEX_REQUEUE: u32 = 3;
const FUTEX_CMP_REQUEUE: u32 = 4;
const FUTEX_WAKE_OP: u32 = 5;
const FUTEX_WAIT_BITSET: u32 = 9;
const FUTEX_WAKE_BITSET: u32 = 10;
const FUTEX_PRIVATE_FLAG: u32 = 128;
const FUTEX_CLOCK_REALTIME: u32 = 256;

/// `futex(uaddr, op, val, timeout_or_val2, uaddr2, val3)`: wait, wake (with bitsets),
/// requeue and wake-op, private or shared (keyed by the shared memory itself).
pub fn sys_futex(
    t: &Task,
    uaddr: u64,
    op: u32,
    val: u32,
    timeout: u64,
    uaddr2: u64,
    val3: u32,
) -> Result<u64, Errno> {
    use crate::kernel::FUTEX_BITSET_MATCH_ANY as ANY;
    let futexes = t.kernel().futexes();
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
    match cmd {
        FUTEX_WAIT | FUTEX_WAIT_BITSET => {
            let deadline = if timeout == 0 {
                None
            } else {
                let ts: linux_abi::types::Timespec = t.mm().read_obj(timeout)?;
                if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
                    return Err(Errno::EINVAL);
                }
                let d = std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
                let rel = if cmd == FUTEX_WAIT {
                    d
                } else {
                    // Absolute, on CLOCK_REALTIME or CLOCK_MONOTONIC.
                    let clock = if op & FUTEX_CLOCK_REALTIME != 0 { 0 } else { 1 };
                    d.saturating_sub(super::time::clock_now(t, clock)?)
                };
                // A deadline past what Instant can hold is no deadline.
                std::time::Instant::now().checked_add(rel)
            };
            let bitset = if cmd == FUTEX_WAIT { ANY } else { val3 };
            match futexes.wait(t, uaddr, private, val, bitset, deadline) {
                Ok(()) => Ok(0),
                // Without a timeout the wait restarts after a handler with SA_RESTART.
                Err(Errno::EINTR) if timeout == 0 => Err(Errno::ERESTARTSYS),
                Err(e) => Err(e),
            }
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE { ANY } else { val3 };
            futexes.wake_key(t, uaddr, private, val, bitset)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let expected = (cmd == FUTEX_CMP_REQUEUE).then_some(val3);
            let n_requeue = u32::try_from(timeout).unwrap_or(u32::MAX);
            futexes.requeue(t, uaddr, uaddr2, private, val, n_requeue, expected)
        }
        FUTEX_WAKE_OP => {
            let n2 = u32::try_from(timeout).unwrap_or(u32::MAX);
            futexes.wake_op(t, uaddr, uaddr2, private, val, n2, val3)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `rseq(...)`: restartable sequences are not supported; glibc falls back.
pub fn sys_rseq(_t: &Task, _rseq: u64, _len: u32, _flags: u32, _sig: u32) -> Result<u64, Errno> {
    Err(Errno::ENOSYS)
}

const ARCH_SET_GS: u32 = 0x1001;
const ARCH_SET_FS: u32 = 0x1002;
const ARCH_GET_FS: u32 = 0x1003;
const ARCH_GET_GS: u32 = 0x1004;
const ARCH_GET_CPUID: u32 = 0x1011;
const ARCH_SET_CPUID: u32 = 0x1012;

/// Whether `addr` is a canonical user address (valid FS/GS base).
fn canonical(addr: u64) -> bool {
    addr < 0x0000_8000_0000_0000
}

/// `arch_prctl(code, addr)`: FS/GS base and the CPUID-faulting query.
pub fn sys_arch_prctl(t: &Task, code: u32, addr: u64) -> Result<u64, Errno> {
    match code {
        ARCH_SET_FS | ARCH_SET_GS => {
            if !canonical(addr) {
                return Err(Errno::EPERM);
            }
            let mut r = t.regs();
            if code == ARCH_SET_FS {
                r.gp.fs_base = addr;
                r.gp.fs = 0;
            } else {
                r.gp.gs_base = addr;
                r.gp.gs = 0;
            }
            Ok(0)
        }
        ARCH_GET_FS | ARCH_GET_GS => {
            let v = {
                let r = t.regs();
                if code == ARCH_GET_FS {
                    r.gp.fs_base
                } else {
                    r.gp.gs_base
                }
            };
            t.mm().write_obj(addr, &v)?;
            Ok(0)
        }
        // CPUID faulting is not available: CPUID always works.
        ARCH_GET_CPUID => Ok(1),
        ARCH_SET_CPUID => {
            if addr == 0 {
                Err(Errno::ENODEV)
            } else {
                Ok(0)
            }
        }
        _ => Err(Errno::EINVAL),
    }
}

const PR_SET_PDEATHSIG: i32 = 1;
const PR_GET_PDEATHSIG: i32 = 2;
const PR_GET_DUMPABLE: i32 = 3;
const PR_SET_DUMPABLE: i32 = 4;
const PR_GET_KEEPCAPS: i32 = 7;
const PR_SET_KEEPCAPS: i32 = 8;
const PR_SET_NAME: i32 = 15;
const PR_GET_NAME: i32 = 16;
const PR_GET_SECCOMP: i32 = 21;
const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_SET_TIMERSLACK: i32 = 29;
const PR_GET_TIMERSLACK: i32 = 30;
const PR_SET_CHILD_SUBREAPER: i32 = 36;
const PR_GET_CHILD_SUBREAPER: i32 = 37;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const PR_GET_NO_NEW_PRIVS: i32 = 39;
const PR_GET_TID_ADDRESS: i32 = 40;
const PR_SET_THP_DISABLE: i32 = 41;
const PR_GET_THP_DISABLE: i32 = 42;
const PR_CAP_AMBIENT: i32 = 47;
const PR_SET_VMA: i32 = 0x53564d41;
/// The highest capability number reported by `PR_CAPBSET_READ`.
const CAP_LAST_CAP: u64 = 40;

/// `prctl(option, arg2, arg3, arg4, arg5)`.
pub fn sys_prctl(
    t: &Task,
    option: i32,
    arg2: u64,
    arg3: u64,
    arg4: u64,
    arg5: u64,
) -> Result<u64, Errno> {
    use std::sync::atomic::Ordering;
    let tg = t.thread_group();
    match option {
        PR_SET_PDEATHSIG => {
            if arg2 > 64 {
                return Err(Errno::EINVAL);
            }
            t.set_pdeathsig(arg2 as i32);
            Ok(0)
        }
        PR_GET_PDEATHSIG => {
            t.mm().write_obj(arg2, &t.pdeathsig())?;
            Ok(0)
        }
        PR_GET_DUMPABLE => Ok(tg.dumpable.load(Ordering::Relaxed) as u64),
        PR_SET_DUMPABLE => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            tg.dumpable.store(arg2 as i32, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_KEEPCAPS => Ok(u64::from(t.creds().keep_caps)),
        PR_SET_KEEPCAPS => {
            if arg2 > 1 {
                return Err(Errno::EINVAL);
            }
            t.update_creds(|c| c.keep_caps = arg2 == 1);
            Ok(0)
        }
        PR_SET_NAME => {
            let mut buf = [0u8; 16];
            let mm = t.mm();
            // The name may be shorter than 16 bytes at the end of a mapping: read up to a NUL.
            let name = mm.read_c_string(arg2, 15).or_else(|e| {
                if e == Errno::ENAMETOOLONG {
                    mm.copy_in(arg2, &mut buf[..15])
                        .map(|()| buf[..15].to_vec())
                } else {
                    Err(e)
                }
            })?;
            t.set_comm(&name);
            Ok(0)
        }
        PR_GET_NAME => {
            let mut buf = [0u8; 16];
            let c = t.comm();
            buf[..c.len()].copy_from_slice(&c);
            t.mm().copy_out(arg2, &buf)?;
            Ok(0)
        }
        PR_GET_SECCOMP => Ok(0),
        PR_CAPBSET_READ => {
            if arg2 > CAP_LAST_CAP {
                Err(Errno::EINVAL)
            } else {
                Ok((t.creds().cap_bounding >> arg2) & 1)
            }
        }
        PR_CAPBSET_DROP => {
            if arg2 > CAP_LAST_CAP {
                return Err(Errno::EINVAL);
            }
            t.update_creds(|c| c.drop_bounding(arg2 as u32))?;
            Ok(0)
        }
        PR_GET_TIMERSLACK => Ok(t.sched().timer_slack_ns),
        PR_SET_TIMERSLACK => {
            let mut s = t.sched();
            s.timer_slack_ns = if arg2 == 0 {
                s.default_timer_slack_ns
            } else {
                arg2
            };
            Ok(0)
        }
        PR_SET_CHILD_SUBREAPER => {
            tg.child_subreaper.store(arg2 != 0, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_CHILD_SUBREAPER => {
            t.mm()
                .write_obj(arg2, &i32::from(tg.child_subreaper.load(Ordering::Relaxed)))?;
            Ok(0)
        }
        PR_SET_NO_NEW_PRIVS => {
            if arg2 != 1 {
                return Err(Errno::EINVAL);
            }
            tg.no_new_privs.store(true, Ordering::Relaxed);
            Ok(0)
        }
        PR_GET_NO_NEW_PRIVS => Ok(u64::from(tg.no_new_privs.load(Ordering::Relaxed))),
        PR_GET_TID_ADDRESS => {
            t.mm().write_obj(arg2, &t.clear_child_tid())?;
            Ok(0)
        }
        PR_SET_THP_DISABLE => Ok(0),
        PR_GET_THP_DISABLE => Ok(0),
        PR_CAP_AMBIENT => prctl_ambient(t, arg2, arg3, arg4, arg5),
        PR_SET_VMA => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

const PR_CAP_AMBIENT_IS_SET: u64 = 1;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_LOWER: u64 = 3;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

/// `prctl(PR_CAP_AMBIENT, op, cap, 0, 0)`.
fn prctl_ambient(t: &Task, op: u64, cap: u64, a4: u64, a5: u64) -> Result<u64, Errno> {
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
        if cap != 0 || a4 != 0 || a5 != 0 {
            return Err(Errno::EINVAL);
        }
        t.update_creds(|c| c.cap_ambient = 0);
        return Ok(0);
    }
    if a4 != 0 || a5 != 0 || cap > CAP_LAST_CAP {
        return Err(Errno::EINVAL);
    }
    match op {
        PR_CAP_AMBIENT_IS_SET => Ok((t.creds().cap_ambient >> cap) & 1),
        PR_CAP_AMBIENT_RAISE => t.update_creds(|c| c.raise_ambient(cap as u32)).map(|()| 0),
        PR_CAP_AMBIENT_LOWER => {
            t.update_creds(|c| c.cap_ambient &= !(1u64 << cap));
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// `getuid()`.
pub fn sys_getuid(t: &Task) -> Result<u64, Errno> {
    Ok(u64::from(t.creds().uid))
}

/// `geteuid()`.
pub fn sys_geteuid(t: &Task) -> Result<u64, Errno> {
    Ok(u64::from(t.creds().euid))
}

/// `getgid()`.
pub fn sys_getgid(t: &Task) -> Result<u64, Errno> {
    Ok(u64::from(t.creds().gid))
}

/// `getegid()`.
pub fn sys_getegid(t: &Task) -> Result<u64, Errno> {
    Ok(u64::from(t.creds().egid))
}

/// `setuid(uid)`.
pub fn sys_setuid(t: &Task, uid: u32) -> Result<u64, Errno> {
    t.update_creds(|c| c.setuid(uid)).map(|()| 0)
}

/// `setgid(gid)`.
pub fn sys_setgid(t: &Task, gid: u32) -> Result<u64, Errno> {
    t.update_creds(|c| c.setgid(gid)).map(|()| 0)
}

/// `setreuid(ruid, euid)`.
pub fn sys_setreuid(t: &Task, ruid: u32, euid: u32) -> Result<u64, Errno> {
    t.update_creds(|c| c.setreuid(ruid, euid)).map(|()| 0)
}

/// `setregid(rgid, egid)`.
pub fn sys_setregid(t: &Task, rgid: u32, egid: u32) -> Result<u64, Errno> {
    t.update_creds(|c| c.setregid(rgid, egid)).map(|()| 0)
}

/// `setresuid(ruid, euid, suid)`.
pub fn sys_setresuid(t: &Task, r: u32, e: u32, s: u32) -> Result<u64, Errno> {
    t.update_creds(|c| c.setresuid(r, e, s)).map(|()| 0)
}

/// `setresgid(rgid, egid, sgid)`.
pub fn sys_setresgid(t: &Task, r: u32, e: u32, s: u32) -> Result<u64, Errno> {
    t.update_creds(|c| c.setresgid(r, e, s)).map(|()| 0)
}

fn write_three(t: &Task, ptrs: [u64; 3], vals: [u32; 3]) -> Result<u64, Errno> {
    let mm = t.mm();
    for (p, v) in ptrs.into_iter().zip(vals) {
        mm.write_obj(p, &v)?;
    }
    Ok(0)
}

/// `getresuid(ruid, euid, suid)`.
pub fn sys_getresuid(t: &Task, r: u64, e: u64, s: u64) -> Result<u64, Errno> {
    let c = t.creds();
    write_three(t, [r, e, s], [c.uid, c.euid, c.suid])
}

/// `getresgid(rgid, egid, sgid)`.
pub fn sys_getresgid(t: &Task, r: u64, e: u64, s: u64) -> Result<u64, Errno> {
    let c = t.creds();
    write_three(t, [r, e, s], [c.gid, c.egid, c.sgid])
}

/// `setfsuid(uid)`: returns the previous fsuid.
pub fn sys_setfsuid(t: &Task, uid: u32) -> Result<u64, Errno> {
    Ok(u64::from(t.update_creds(|c| c.setfsuid(uid))))
}

/// `setfsgid(gid)`: returns the previous fsgid.
pub fn sys_setfsgid(t: &Task, gid: u32) -> Result<u64, Errno> {
    Ok(u64::from(t.update_creds(|c| c.setfsgid(gid))))
}

/// `getgroups(size, list)`.
pub fn sys_getgroups(t: &Task, size: i32, list: u64) -> Result<u64, Errno> {
    let groups = t.creds().groups;
    let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    if size == 0 {
        return Ok(groups.len() as u64);
    }
    if size < groups.len() {
        return Err(Errno::EINVAL);
    }
    t.mm().write_obj(list, groups.as_slice())?;
    Ok(groups.len() as u64)
}

/// `setgroups(size, list)`.
pub fn sys_setgroups(t: &Task, size: i32, list: u64) -> Result<u64, Errno> {
    let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
    if size > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut groups = vec![0u32; size];
    t.mm().copy_in(
        list,
        zerocopy::IntoBytes::as_mut_bytes(groups.as_mut_slice()),
    )?;
    t.update_creds(|c| c.setgroups(groups)).map(|()| 0)
}

/// `getpgrp()`.
pub fn sys_getpgrp(t: &Task) -> Result<u64, Errno> {
    Ok(t.thread_group().pgid() as u64)
}

fn process(t: &Task, pid: i32) -> Result<std::sync::Arc<crate::kernel::ThreadGroup>, Errno> {
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    if pid == 0 || pid == t.tgid() {
        return Ok(t.thread_group().clone());
    }
    t.kernel()
        .thread_group(pid)
        .filter(|g| !g.is_reaped())
        .ok_or(Errno::ESRCH)
}

/// `getpgid(pid)` (a negative pid names no process: ESRCH, as Linux's lookup).
pub fn sys_getpgid(t: &Task, pid: i32) -> Result<u64, Errno> {
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    Ok(process(t, pid)?.pgid() as u64)
}

/// `setpgid(pid, pgid)`: the caller or one of its children, into a group of the same
/// session.
pub fn sys_setpgid(t: &Task, pid: i32, pgid: i32) -> Result<u64, Errno> {
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let me = t.thread_group().clone();
    let target = if pid == 0 || pid == me.tgid() {
        me.clone()
    } else {
        let c = me
            .children()
            .into_iter()
            .find(|c| c.tgid() == pid)
            .ok_or(Errno::ESRCH)?;
        if c.sid() != me.sid() {
            return Err(Errno::EPERM);
        }
        if c.has_exec() {
            return Err(Errno::EACCES);
        }
        c
    };
    let pgid = if pgid == 0 { target.tgid() } else { pgid };
    // A session leader cannot move.
    if target.sid() == target.tgid() {
        return Err(Errno::EPERM);
    }
    if pgid != target.tgid() {
        let k = t.kernel();
        let exists = k.pids().into_iter().any(|p| {
            k.thread_group(p)
                .is_some_and(|g| !g.is_dead() && g.pgid() == pgid && g.sid() == me.sid())
        });
        if !exists {
            return Err(Errno::EPERM);
        }
    }
    target.set_pgid(pgid);
    Ok(0)
}

/// `getsid(pid)`.
pub fn sys_getsid(t: &Task, pid: i32) -> Result<u64, Errno> {
    if pid < 0 {
        return Err(Errno::ESRCH);
    }
    Ok(process(t, pid)?.sid() as u64)
}

/// `setsid()`: a new session and process group led by the caller.
pub fn sys_setsid(t: &Task) -> Result<u64, Errno> {
    let me = t.thread_group();
    let k = t.kernel();
    let leads_group = k.pids().into_iter().any(|p| {
        k.thread_group(p)
            .is_some_and(|g| !g.is_dead() && g.pgid() == me.tgid())
    });
    if leads_group {
        return Err(Errno::EPERM);
    }
    me.set_sid(me.tgid());
    me.set_pgid(me.tgid());
    // A new session starts without a controlling terminal.
    k.terminals().drop_process(me.tgid());
    Ok(me.tgid() as u64)
}

/// `_LINUX_CAPABILITY_VERSION_1` (32-bit sets).
const CAP_V1: u32 = 0x1998_0330;
/// `_LINUX_CAPABILITY_VERSION_2` (64-bit sets, deprecated).
const CAP_V2: u32 = 0x2007_1026;
/// `_LINUX_CAPABILITY_VERSION_3` (64-bit sets).
const CAP_V3: u32 = 0x2008_0522;

/// Reads a `cap_user_header_t`; an unknown version is answered with the preferred one.
fn cap_header(t: &Task, hdr: u64) -> Result<(u32, i32), Errno> {
    let [version, pid]: [u32; 2] = t.mm().read_obj(hdr)?;
    if !matches!(version, CAP_V1 | CAP_V2 | CAP_V3) {
        t.mm().write_obj(hdr, &CAP_V3)?;
        return Err(Errno::EINVAL);
    }
    Ok((version, pid as i32))
}

/// `capget(hdr, data)`.
pub fn sys_capget(t: &Task, hdr: u64, data: u64) -> Result<u64, Errno> {
    let (version, pid) = match cap_header(t, hdr) {
        Ok((v, pid)) => {
            if pid < 0 || (pid != 0 && t.kernel().task(pid).is_none()) {
                return Err(if pid < 0 { Errno::EINVAL } else { Errno::ESRCH });
            }
            (v, pid)
        }
        // Probing for the version with a NULL data pointer succeeds.
        Err(e) if data == 0 => return if e == Errno::EINVAL { Ok(0) } else { Err(e) },
        Err(e) => return Err(e),
    };
    if data == 0 {
        return Ok(0);
    }
    let c = match pid {
        0 => t.creds(),
        pid => t.kernel().task(pid).ok_or(Errno::ESRCH)?.creds(),
    };
    let words = |v: u64| [v as u32, (v >> 32) as u32];
    let (e, p, i) = (
        words(c.cap_effective),
        words(c.cap_permitted),
        words(c.cap_inheritable),
    );
    let n = if version == CAP_V1 { 1 } else { 2 };
    let mut out = Vec::with_capacity(3 * n);
    for k in 0..n {
        out.extend_from_slice(&[e[k], p[k], i[k]]);
    }
    t.mm().write_obj(data, out.as_slice())?;
    Ok(0)
}

/// `capset(hdr, data)`: only the caller's own sets, within its permitted set.
pub fn sys_capset(t: &Task, hdr: u64, data: u64) -> Result<u64, Errno> {
    let (version, pid) = cap_header(t, hdr)?;
    if pid != 0 && pid != t.tid() {
        return Err(Errno::EPERM);
    }
    let n = if version == CAP_V1 { 1 } else { 2 };
    let mut raw = vec![0u32; 3 * n];
    t.mm()
        .copy_in(data, zerocopy::IntoBytes::as_mut_bytes(raw.as_mut_slice()))?;
    let join = |k: usize| {
        let lo = u64::from(raw[k]);
        let hi = if n == 2 { u64::from(raw[3 + k]) } else { 0 };
        lo | (hi << 32)
    };
    t.update_creds(|c| c.capset(join(0), join(1), join(2)))
        .map(|()| 0)
}
