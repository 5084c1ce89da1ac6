//! Job control on terminals: the `TIOC*` ioctls that concern sessions and process
//! groups, which the sandbox answers itself (its sessions and groups are its own), as
//! Linux's `drivers/tty/tty_jobctrl.c` does, for host terminals and the Sentry's
//! pseudo-terminals alike; a pseudo-terminal master answers them for its replica, as
//! Linux's do. Byte-level terminal ioctls (`termios`, the window size, queue flushes) are
//! the file's own (`fs::devfs` for a host terminal, `fs::pty`). Also: taking a
//! controlling terminal on `open`, and `TIOCGPTPEER`, which makes a descriptor.

use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::open::*;
use linux_abi::signal::{SIGTTIN, SIGTTOU, SIGWINCH};

use crate::fs::devfs::ioctls;
use crate::fs::file::OpenFile;
use crate::fs::pty::{self, MasterFile};
use crate::fs::tty::Terminal;
use crate::kernel::Task;

/// `CAP_SYS_ADMIN`: may steal another session's terminal, or take one opened write-only.
const CAP_SYS_ADMIN: u32 = 21;
/// `TIOCSTI`: fake input.
const TIOCSTI: u32 = 0x5412;

/// `TIOCSTI` on a pseudo-terminal (Linux with `dev.tty.legacy_tiocsti` on): the caller's
/// controlling terminal, or any with `CAP_SYS_ADMIN`; through the master, the master
/// receives the byte (the master is nobody's controlling terminal).
fn inject(t: &Task, term: &Arc<Terminal>, arg: u64, master: bool) -> Result<u64, Errno> {
    if (master || !is_ctty(t, term)) && !t.creds().has_cap(CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let c: u8 = t.mm().read_obj(arg)?;
    crate::fs::pty::inject(term, t.kernel().terminals(), c, master)?;
    Ok(0)
}

/// The terminal ioctls of file `f` that are the kernel's rather than the file's (job
/// control, `TIOCGPTPEER`), or `None` for the file's own `ioctl`.
pub fn file_ioctl(t: &Task, f: &OpenFile, cmd: u32, arg: u64) -> Option<Result<u64, Errno>> {
    let readable = f.flags() & O_ACCMODE != O_WRONLY;
    if let Some(term) = f.ops().terminal() {
        return ioctl(t, &term, cmd, arg, readable, false);
    }
    let master = pty::as_master(f.ops().as_ref())?;
    if cmd == pty::ioctls::TIOCGPTPEER {
        return Some(open_peer(t, master, arg));
    }
    ioctl(t, master.terminal(), cmd, arg, readable, true)
}

/// The job-control ioctls on a terminal (through its master when `master`), or `None`
/// for the file's own `ioctl`.
pub fn ioctl(
    t: &Task,
    term: &Arc<Terminal>,
    cmd: u32,
    arg: u64,
    readable: bool,
    master: bool,
) -> Option<Result<u64, Errno>> {
    if !master && term.hung_up() {
        // Linux's `hung_up_tty_ioctl`; the VFS answers the descriptor flags first.
        return match cmd {
            ioctls::FIOCLEX | ioctls::FIONCLEX | ioctls::FIONBIO | ioctls::FIOASYNC => None,
            ioctls::TIOCSPGRP => Some(Err(Errno::ENOTTY)),
            _ => Some(Err(Errno::EIO)),
        };
    }
    Some(match cmd {
        ioctls::TIOCSCTTY => set_ctty(t, term, arg, readable),
        ioctls::TIOCNOTTY if master => Err(Errno::ENOTTY),
        ioctls::TIOCNOTTY => give_up(t, term),
        ioctls::TIOCGPGRP => get_pgrp(t, term, arg, master),
        ioctls::TIOCSPGRP => set_pgrp(t, term, arg),
        ioctls::TIOCGSID => get_sid(t, term, arg, master),
        ioctls::TIOCSWINSZ => set_winsize(t, term, arg),
        TIOCSTI if term.pty().is_some() => inject(t, term, arg, master),
        // Changing the terminal from the background needs SIGTTOU's consent; the change
        // itself is the file's.
        ioctls::TCSETS
        | ioctls::TCSETSW
        | ioctls::TCSETSF
        | pty::ioctls::TCSETS2
        | pty::ioctls::TCSETSW2
        | pty::ioctls::TCSETSF2
        | ioctls::TCFLSH
        | ioctls::TCXONC
        | ioctls::TCSBRK
        | pty::ioctls::TCSBRKP => {
            return check_change(t, term).err().map(Err);
        }
        _ => return None,
    })
}

/// `open` of a terminal without `O_NOCTTY` by a session leader without one makes it the
/// session's controlling terminal, if no session has it (Linux's
/// `tty_open_proc_set_tty`; a pseudo-terminal master never becomes one).
pub fn opened(t: &Task, f: &OpenFile, flags: u32) {
    if flags & O_NOCTTY != 0 {
        return;
    }
    let Some(term) = f.ops().terminal() else {
        return;
    };
    let tg = t.thread_group();
    let terminals = t.kernel().terminals();
    if tg.sid() == tg.tgid() && terminals.of(tg.tgid()).is_none() && term.session().is_none() {
        terminals.acquire(&term, tg.tgid(), tg.sid(), tg.pgid());
    }
}

/// `TIOCGPTPEER`: a new descriptor of the master's replica, opened with `flags` (of
/// which `O_ACCMODE`, `O_NOCTTY`, `O_NONBLOCK` and `O_CLOEXEC` matter; Linux checks no
/// others), without a path walk.
fn open_peer(t: &Task, master: &MasterFile, flags: u64) -> Result<u64, Errno> {
    let flags = flags as u32;
    let term = master.terminal();
    let n = term.pty().map_or(0, |p| p.index());
    let inode = master.devpts().replica(n).ok_or(Errno::EIO)?;
    let ops = pty::open_replica(term, master.devpts().terminals(), flags)?;
    let name = format!("/dev/pts/{n}");
    let f = OpenFile::new(
        crate::fs::VfsPath::anonymous(inode, name.as_bytes()),
        flags & (O_ACCMODE | O_NONBLOCK),
        ops,
    );
    opened(t, &f, flags);
    crate::syscalls::fs::install(t, f, flags & O_CLOEXEC != 0)
}

/// Whether `term` is the caller's controlling terminal.
fn is_ctty(t: &Task, term: &Arc<Terminal>) -> bool {
    t.kernel()
        .terminals()
        .of(t.tgid())
        .is_some_and(|c| Arc::ptr_eq(&c, term))
}

/// `TIOCSCTTY`: a session leader without a terminal takes this one (from another
/// session only with `arg == 1` and `CAP_SYS_ADMIN`).
fn set_ctty(t: &Task, term: &Arc<Terminal>, arg: u64, readable: bool) -> Result<u64, Errno> {
    let tg = t.thread_group();
    let leader = tg.sid() == tg.tgid();
    if leader && term.session() == Some(tg.sid()) {
        return Ok(0);
    }
    let terminals = t.kernel().terminals();
    if !leader || terminals.of(tg.tgid()).is_some() {
        return Err(Errno::EPERM);
    }
    let admin = t.creds().has_cap(CAP_SYS_ADMIN);
    if let Some(other) = term.session()
        && session_exists(t, other)
    {
        if arg != 1 || !admin {
            return Err(Errno::EPERM);
        }
        terminals.disassociate(term);
    }
    if !readable && !admin {
        return Err(Errno::EPERM);
    }
    terminals.acquire(term, tg.tgid(), tg.sid(), tg.pgid());
    Ok(0)
}

/// Whether any live process belongs to session `sid`.
fn session_exists(t: &Task, sid: i32) -> bool {
    let k = t.kernel();
    k.pids()
        .into_iter()
        .filter_map(|p| k.thread_group(p))
        .any(|g| !g.is_exiting() && g.sid() == sid)
}

/// `TIOCNOTTY`: the caller gives up its controlling terminal; a session leader takes it
/// from the whole session, and the foreground group gets `SIGHUP` and `SIGCONT`.
fn give_up(t: &Task, term: &Arc<Terminal>) -> Result<u64, Errno> {
    if !is_ctty(t, term) {
        return Err(Errno::ENOTTY);
    }
    let tg = t.thread_group();
    let k = t.kernel();
    if tg.sid() != tg.tgid() {
        k.terminals().drop_process(tg.tgid());
        return Ok(0);
    }
    t.kernel().hang_up(term, true);
    Ok(0)
}

/// `TIOCGPGRP`: the foreground process group (0 if none); through a master, of its
/// replica whoever asks.
fn get_pgrp(t: &Task, term: &Arc<Terminal>, arg: u64, master: bool) -> Result<u64, Errno> {
    if !master && !is_ctty(t, term) {
        return Err(Errno::ENOTTY);
    }
    t.mm().write_obj(arg, &term.foreground().unwrap_or(0))?;
    Ok(0)
}

/// `TIOCGSID`: the terminal's session (through a master, whoever asks).
fn get_sid(t: &Task, term: &Arc<Terminal>, arg: u64, master: bool) -> Result<u64, Errno> {
    if !master && !is_ctty(t, term) {
        return Err(Errno::ENOTTY);
    }
    let sid = term.session().ok_or(Errno::ENOTTY)?;
    t.mm().write_obj(arg, &sid)?;
    Ok(0)
}

/// `TIOCSPGRP`: makes a process group of the caller's session the foreground one. A
/// caller in a background group is stopped by `SIGTTOU` first, unless it ignores or
/// blocks that signal (Linux's `tty_check_change`).
fn set_pgrp(t: &Task, term: &Arc<Terminal>, arg: u64) -> Result<u64, Errno> {
    let tg = t.thread_group();
    if !is_ctty(t, term) || term.session() != Some(tg.sid()) {
        return Err(Errno::ENOTTY);
    }
    check_change(t, term)?;
    let pgid: i32 = t.mm().read_obj(arg)?;
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let k = t.kernel();
    let members: Vec<_> = k
        .pids()
        .into_iter()
        .filter_map(|p| k.thread_group(p))
        .filter(|g| !g.is_exiting() && g.pgid() == pgid)
        .collect();
    if members.is_empty() {
        return Err(Errno::ESRCH);
    }
    if members.iter().any(|g| g.sid() != tg.sid()) {
        return Err(Errno::EPERM);
    }
    term.set_foreground(pgid);
    Ok(0)
}

/// Linux's `tty_check_change` for `SIGTTOU`: a background process may change the
/// terminal only if it ignores or blocks `SIGTTOU`; otherwise its group is sent the
/// signal and the call restarts once it is continued (`EIO` for an orphaned group).
fn check_change(t: &Task, term: &Arc<Terminal>) -> Result<(), Errno> {
    if !is_ctty(t, term) {
        return Ok(());
    }
    let tg = t.thread_group();
    let Some(fg) = term.foreground() else {
        return Ok(());
    };
    if fg == tg.pgid() {
        return Ok(());
    }
    let blocked = t.sigmask() & (1u64 << (SIGTTOU - 1)) != 0;
    if blocked || tg.ignores(SIGTTOU) {
        return Ok(());
    }
    if group_is_orphaned(t, tg.pgid()) {
        return Err(Errno::EIO);
    }
    t.kernel().signal_process_group(tg.pgid(), SIGTTOU);
    Err(Errno::ERESTARTSYS)
}

/// Linux's `job_control` for a read of a terminal: a process of a background group that
/// reads its controlling terminal gets `SIGTTIN` (its group does) and the read restarts
/// once continued; `EIO` if it ignores or blocks `SIGTTIN` or its group is orphaned.
pub fn check_read(t: &Task, term: &Arc<Terminal>) -> Result<(), Errno> {
    let tg = t.thread_group();
    if !is_ctty(t, term) || term.foreground().is_none_or(|fg| fg == tg.pgid()) {
        return Ok(());
    }
    let blocked = t.sigmask() & (1u64 << (SIGTTIN - 1)) != 0;
    if blocked || tg.ignores(SIGTTIN) || group_is_orphaned(t, tg.pgid()) {
        return Err(Errno::EIO);
    }
    t.kernel().signal_process_group(tg.pgid(), SIGTTIN);
    Err(Errno::ERESTARTSYS)
}

/// A write to the controlling terminal from a background group with the terminal's
/// `TOSTOP` set gets `SIGTTOU`, as a change of the terminal does ([`check_change`]).
pub fn check_write(t: &Task, term: &Arc<Terminal>) -> Result<(), Errno> {
    use crate::fs::ldisc::lflag::TOSTOP;
    if !is_ctty(t, term) || term.lflag().is_none_or(|l| l & TOSTOP == 0) {
        return Ok(());
    }
    check_change(t, term)
}

/// POSIX: a process group is orphaned when no member has a parent in another group of
/// the same session.
fn group_is_orphaned(t: &Task, pgid: i32) -> bool {
    let k = t.kernel();
    k.pids()
        .into_iter()
        .filter_map(|p| k.thread_group(p))
        .filter(|g| g.pgid() == pgid && !g.is_exiting())
        .all(|g| {
            g.parent()
                .is_none_or(|p| p.is_exiting() || p.pgid() == pgid || p.sid() != g.sid())
        })
}

/// `TIOCSWINSZ`: the terminal takes the size; when it changed, the foreground group
/// gets `SIGWINCH` (Linux's `tty_do_resize`).
fn set_winsize(t: &Task, term: &Arc<Terminal>, arg: u64) -> Result<u64, Errno> {
    let mut new = [0u8; 8];
    t.mm().copy_in(arg, &mut new)?;
    if term.set_winsize(new)?
        && let Some(fg) = term.foreground()
    {
        t.kernel().signal_process_group(fg, SIGWINCH);
    }
    Ok(0)
}
