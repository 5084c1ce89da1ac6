//! Signal system calls. Actions, masks and the alternate stack are stored exactly; delivery
//! to handlers is not implemented yet, so `kill`/`tgkill` aimed at the caller's own
//! process apply the default action (terminate, or ignore for the signals Linux ignores).

use linux_abi::Errno;
use linux_abi::signal::{SIGCHLD, SIGCONT, SIGKILL, SIGSTOP, SIGURG, SIGWINCH};

use super::SyscallEntry;
use crate::kernel::{SigAction, SigAltStack, Task};

/// The signal system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_RT_SIGACTION => rt_sigaction(Signal, Ptr, Ptr, Uint) = sys_rt_sigaction;
    SYS_RT_SIGPROCMASK => rt_sigprocmask(Int, Ptr, Ptr, Uint) = sys_rt_sigprocmask;
    SYS_SIGALTSTACK => sigaltstack(Ptr, Ptr) = sys_sigaltstack;
    SYS_RT_SIGPENDING => rt_sigpending(Ptr, Uint) = sys_rt_sigpending;
    SYS_KILL => kill(Int, Signal) = sys_kill;
    SYS_TKILL => tkill(Int, Signal) = sys_tkill;
    SYS_TGKILL => tgkill(Int, Int, Signal) = sys_tgkill;
];

const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const SIG_SETMASK: i32 = 2;
const SS_ONSTACK: i32 = 1;
const SS_DISABLE: i32 = 2;
const MINSIGSTKSZ: u64 = 2048;

fn valid_signal(sig: i32) -> bool {
    (1..=64).contains(&sig)
}

/// `rt_sigaction(sig, act, oldact, sigsetsize)`.
pub fn sys_rt_sigaction(
    t: &Task,
    sig: i32,
    act: u64,
    oldact: u64,
    setsize: u64,
) -> Result<u64, Errno> {
    if setsize != 8 || !valid_signal(sig) {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let tg = t.thread_group();
    let old = if act != 0 {
        if sig == SIGKILL || sig == SIGSTOP {
            return Err(Errno::EINVAL);
        }
        let new: SigAction = mm.read_obj(act)?;
        tg.set_action(sig, new)
    } else {
        tg.action(sig)
    };
    if oldact != 0 {
        mm.write_obj(oldact, &old)?;
    }
    Ok(0)
}

/// `rt_sigprocmask(how, set, oldset, sigsetsize)`.
pub fn sys_rt_sigprocmask(
    t: &Task,
    how: i32,
    set: u64,
    oldset: u64,
    setsize: u64,
) -> Result<u64, Errno> {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let mm = t.mm();
    let old = t.sigmask();
    if set != 0 {
        let s: u64 = mm.read_obj(set)?;
        let new = match how {
            SIG_BLOCK => old | s,
            SIG_UNBLOCK => old & !s,
            SIG_SETMASK => s,
            _ => return Err(Errno::EINVAL),
        };
        t.set_sigmask(new);
    }
    if oldset != 0 {
        mm.write_obj(oldset, &old)?;
    }
    Ok(0)
}

/// `sigaltstack(ss, old_ss)`.
pub fn sys_sigaltstack(t: &Task, ss: u64, old_ss: u64) -> Result<u64, Errno> {
    let mm = t.mm();
    let old = t.altstack();
    if ss != 0 {
        let new: SigAltStack = mm.read_obj(ss)?;
        if new.flags & !(SS_DISABLE | SS_ONSTACK | (1 << 31)) != 0 {
            return Err(Errno::EINVAL);
        }
        if new.flags & SS_DISABLE != 0 {
            t.set_altstack(SigAltStack {
                flags: SS_DISABLE,
                ..Default::default()
            });
        } else {
            if new.size < MINSIGSTKSZ {
                return Err(Errno::ENOMEM);
            }
            t.set_altstack(SigAltStack { flags: 0, ..new });
        }
    }
    if old_ss != 0 {
        mm.write_obj(old_ss, &old)?;
    }
    Ok(0)
}

/// `rt_sigpending(set, sigsetsize)`: nothing is ever pending yet.
pub fn sys_rt_sigpending(t: &Task, set: u64, setsize: u64) -> Result<u64, Errno> {
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    t.mm().write_obj(set, &0u64)?;
    Ok(0)
}

/// Signals whose default action is to do nothing.
fn default_ignored(sig: i32) -> bool {
    matches!(sig, SIGCHLD | SIGCONT | SIGURG | SIGWINCH)
}

/// Sends `sig` to the thread group `tgid` with the default action.
fn send(t: &Task, tgid: i32, sig: i32) -> Result<u64, Errno> {
    if sig != 0 && !valid_signal(sig) {
        return Err(Errno::EINVAL);
    }
    let tg = t.kernel().thread_group(tgid).ok_or(Errno::ESRCH)?;
    if sig == 0 {
        return Ok(0);
    }
    let act = tg.action(sig);
    if act.handler == crate::kernel::SigAction::default().handler {
        if !default_ignored(sig) && sig != SIGSTOP {
            tg.kill(sig);
        }
    } else if act.has_handler() {
        tracing::warn!(
            sig,
            tgid,
            "signal handler delivery not implemented; signal dropped"
        );
    }
    Ok(0)
}

/// `kill(pid, sig)`: supports the caller's own process (pid, 0 or -1 reach it).
pub fn sys_kill(t: &Task, pid: i32, sig: i32) -> Result<u64, Errno> {
    let target = if pid <= 0 { t.tgid() } else { pid };
    send(t, target, sig)
}

/// `tkill(tid, sig)`.
pub fn sys_tkill(t: &Task, tid: i32, sig: i32) -> Result<u64, Errno> {
    let task = t.kernel().task(tid).ok_or(Errno::ESRCH)?;
    send(t, task.tgid(), sig)
}

/// `tgkill(tgid, tid, sig)`.
pub fn sys_tgkill(t: &Task, tgid: i32, tid: i32, sig: i32) -> Result<u64, Errno> {
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let task = t.kernel().task(tid).ok_or(Errno::ESRCH)?;
    if task.tgid() != tgid {
        return Err(Errno::ESRCH);
    }
    send(t, tgid, sig)
}
