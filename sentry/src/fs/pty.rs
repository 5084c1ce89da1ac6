//! Pseudo-terminal pairs: a master (what `/dev/ptmx` opens) and its replica
//! (`/dev/pts/N`), joined by a line discipline ([`super::ldisc`]), as Linux's
//! `drivers/tty/pty.c` with `n_tty`.
//!
//! The pair lives in the replica's [`Terminal`] (a terminal of kind pty), so that job
//! control ([`super::tty`], `syscalls::tty`) treats it like any terminal. Closing the
//! last master hangs the replica up: its entry leaves devpts, the session leader whose
//! controlling terminal it was gets `SIGHUP` and `SIGCONT`, reads of the replica return
//! 0, writes and ioctls `EIO`. Closing the last replica makes master reads `EIO` once the
//! output is drained, and `POLLHUP`.

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use linux_abi::Errno;
use linux_abi::flags::open::*;
use parking_lot::Mutex;

use super::devpts::Devpts;
use super::ldisc::{self, Ldisc, Termios};
use super::tty::{Terminal, Terminals};
use super::{FileOps, UserMem};
use crate::waiter::{Events, WaitQueue, block, events};

/// The major number of `/dev/pts/N` (`UNIX98_PTY_SLAVE_MAJOR`).
pub const PTS_MAJOR: u32 = 136;

/// Terminal ioctls of pseudo-terminals (x86-64 numbers).
pub mod ioctls {
    /// Get `struct termios`.
    pub const TCGETS: u32 = 0x5401;
    /// Set `struct termios` now.
    pub const TCSETS: u32 = 0x5402;
    /// Set after draining output.
    pub const TCSETSW: u32 = 0x5403;
    /// Set after draining output and flushing input.
    pub const TCSETSF: u32 = 0x5404;
    /// Get `struct termios2`.
    pub const TCGETS2: u32 = 0x802C_542A;
    /// Set `struct termios2` now.
    pub const TCSETS2: u32 = 0x402C_542B;
    /// Set `struct termios2` after draining.
    pub const TCSETSW2: u32 = 0x402C_542C;
    /// Set `struct termios2` after draining and flushing input.
    pub const TCSETSF2: u32 = 0x402C_542D;
    /// Send a break (none on a pty) after draining output.
    pub const TCSBRK: u32 = 0x5409;
    /// Suspend or restart output or input.
    pub const TCXONC: u32 = 0x540A;
    /// Discard queued input or output.
    pub const TCFLSH: u32 = 0x540B;
    /// Bytes in the output queue.
    pub const TIOCOUTQ: u32 = 0x5411;
    /// Get the window size.
    pub const TIOCGWINSZ: u32 = 0x5413;
    /// Set the window size.
    pub const TIOCSWINSZ: u32 = 0x5414;
    /// Bytes ready to read (`TIOCINQ`).
    pub const FIONREAD: u32 = 0x541B;
    /// Packet mode of the master.
    pub const TIOCPKT: u32 = 0x5420;
    /// Set the line discipline.
    pub const TIOCSETD: u32 = 0x5423;
    /// Get the line discipline.
    pub const TIOCGETD: u32 = 0x5424;
    /// `TCSBRK` with a duration.
    pub const TCSBRKP: u32 = 0x5425;
    /// The replica's number.
    pub const TIOCGPTN: u32 = 0x8004_5430;
    /// Lock or unlock the replica (`unlockpt`).
    pub const TIOCSPTLCK: u32 = 0x4004_5431;
    /// The device number of the replica.
    pub const TIOCGDEV: u32 = 0x8004_5432;
    /// Packet mode, read back.
    pub const TIOCGPKT: u32 = 0x8004_5438;
    /// Whether the replica is locked.
    pub const TIOCGPTLCK: u32 = 0x8004_5439;
    /// Open the replica of this master.
    pub const TIOCGPTPEER: u32 = 0x5441;
}

/// The shared state of a pair.
#[derive(Debug, Default)]
struct State {
    ld: Ldisc,
    /// The replica may not be opened (`TIOCSPTLCK`; new pairs start locked).
    locked: bool,
    /// Open replica files.
    replicas: usize,
    /// Every replica file closed since one was opened (Linux's `TTY_OTHER_CLOSED` of the
    /// master).
    replica_closed: bool,
    /// The master closed: the replica is hung up.
    hung_up: bool,
}

/// One pseudo-terminal pair: its number, line discipline and wait queue.
#[derive(Debug)]
pub struct Pty {
    index: u32,
    /// The devpts instance that numbers it.
    devpts: Weak<Devpts>,
    state: Mutex<State>,
    /// Notified with every change, for both ends.
    queue: WaitQueue,
}

impl Pty {
    /// A new, locked pair numbered `index`.
    pub fn new(index: u32, devpts: Weak<Devpts>) -> Pty {
        Pty {
            index,
            devpts,
            state: Mutex::new(State {
                locked: true,
                ..State::default()
            }),
            queue: WaitQueue::new(),
        }
    }

    /// The number of its replica, `/dev/pts/N`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// `c_lflag` of its `termios`.
    pub fn lflag(&self) -> u32 {
        self.state.lock().ld.termios.lflag
    }

    /// Sets the window size; returns whether it changed.
    pub fn set_winsize(&self, new: [u8; 8]) -> bool {
        let mut s = self.state.lock();
        let changed = s.ld.winsize != new;
        s.ld.winsize = new;
        changed
    }

    /// Whether the master closed.
    pub fn hung_up(&self) -> bool {
        self.state.lock().hung_up
    }

    /// Whether the replica is locked (`TIOCSPTLCK`).
    pub fn locked(&self) -> bool {
        self.state.lock().locked
    }

    fn notify(&self) {
        self.queue.notify(events::ALL);
    }
}

/// Delivers the signals a line discipline raised to `term`'s foreground group.
fn deliver(terminals: &Terminals, term: &Terminal, sigs: &[i32]) {
    for &sig in sigs {
        terminals.signal_foreground(term, sig);
    }
}

/// Runs `op` until it completes, waiting on the pair's queue for `ready` in between
/// (`EAGAIN` for a non-blocking file). `op` returns `None` to wait.
fn wait_for<T>(
    pty: &Pty,
    nonblock: bool,
    mask: Events,
    mut op: impl FnMut() -> Option<Result<T, Errno>>,
    ready: impl Fn(&State) -> bool,
) -> Result<T, Errno> {
    loop {
        if let Some(r) = op() {
            return r;
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        block(&[(&pty.queue, mask)], None, || ready(&pty.state.lock()))?;
    }
}

/// `TIOCSTI`: `c` as if typed into the replica (`master` false; echoed, processed) or
/// received by the master (`master` true: it reads it).
pub fn inject(term: &Terminal, terminals: &Terminals, c: u8, master: bool) -> Result<(), Errno> {
    let pty = term.pty().ok_or(Errno::ENOTTY)?;
    let mut sigs = Vec::new();
    {
        let mut s = pty.state.lock();
        if master {
            s.ld.send_char(c);
        } else {
            s.ld.inject(c, &mut sigs);
        }
    }
    pty.notify();
    deliver(terminals, term, &sigs);
    Ok(())
}

/// The master of a pair (what `/dev/ptmx` opens).
#[derive(Debug)]
pub struct MasterFile {
    term: Arc<Terminal>,
    pty: Arc<Pty>,
    devpts: Arc<Devpts>,
    nonblock: AtomicBool,
}

/// The master `ops` is, if it is one.
pub fn as_master(ops: &dyn FileOps) -> Option<&MasterFile> {
    ops.as_any()?.downcast_ref::<MasterFile>()
}

impl MasterFile {
    /// A master for the new pair `term` of `devpts`.
    pub fn new(term: Arc<Terminal>, pty: Arc<Pty>, devpts: Arc<Devpts>, flags: u32) -> MasterFile {
        MasterFile {
            term,
            pty,
            devpts,
            nonblock: AtomicBool::new(flags & O_NONBLOCK != 0),
        }
    }

    /// The pair's terminal (its replica side, for job control).
    pub fn terminal(&self) -> &Arc<Terminal> {
        &self.term
    }

    /// The devpts instance of the pair.
    pub fn devpts(&self) -> &Arc<Devpts> {
        &self.devpts
    }

    fn pty(&self) -> &Pty {
        &self.pty
    }
}

impl Drop for MasterFile {
    /// The last master closed: the replica is hung up and leaves devpts.
    fn drop(&mut self) {
        let pty = &self.pty;
        {
            // Under the pair's lock, against the last replica closing meanwhile.
            let mut s = pty.state.lock();
            s.hung_up = true;
            self.devpts.remove(pty.index(), s.replicas > 0);
        }
        self.devpts.terminals().hang_up(&self.term);
        pty.notify();
    }
}

impl FileOps for MasterFile {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let pty = self.pty();
        wait_for(
            pty,
            self.nonblock.load(Ordering::Relaxed),
            events::POLLIN | events::POLLHUP,
            || {
                let mut s = pty.state.lock();
                if let Some(n) = s.ld.master_read(buf) {
                    drop(s);
                    pty.notify();
                    return Some(Ok(n));
                }
                s.replica_closed.then_some(Err(Errno::EIO))
            },
            |s| s.ld.master_readable() || s.replica_closed,
        )
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        let pty = self.pty();
        let mut done = 0;
        let r = wait_for(
            pty,
            self.nonblock.load(Ordering::Relaxed),
            events::POLLOUT,
            || {
                let mut sigs = Vec::new();
                let n = pty.state.lock().ld.master_write(&buf[done..], &mut sigs);
                done += n;
                if n > 0 {
                    pty.notify();
                }
                deliver(self.devpts.terminals(), &self.term, &sigs);
                (done == buf.len()).then_some(Ok(done))
            },
            |s| s.ld.input_room() > 0,
        );
        match r {
            Err(_) if done > 0 => Ok(done),
            r => r,
        }
    }

    fn stream(&self) -> bool {
        true
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        pty_ioctl(
            &self.term,
            &self.pty,
            self.devpts.terminals(),
            true,
            cmd,
            arg,
            mem,
        )
    }

    fn readable(&self) -> Option<u64> {
        Some(self.pty().state.lock().ld.output_available() as u64)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.nonblock
            .store(flags & O_NONBLOCK != 0, Ordering::Relaxed);
        Ok(())
    }

    fn readiness(&self, mask: Events) -> Events {
        let s = self.pty().state.lock();
        let mut ev = 0;
        if s.ld.master_readable() {
            ev |= events::POLLIN | events::POLLRDNORM;
            if s.ld.packet && s.ld.pkt_status != 0 {
                ev |= events::POLLPRI;
            }
        }
        if s.ld.input_room() > 0 {
            ev |= events::POLLOUT | events::POLLWRNORM;
        }
        if s.replica_closed {
            ev |= events::POLLHUP;
        }
        ev & (mask | events::ALWAYS)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty().queue)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

/// An open replica (`/dev/pts/N`, `/dev/tty` of a process whose terminal it is,
/// `TIOCGPTPEER`).
#[derive(Debug)]
pub struct ReplicaFile {
    term: Arc<Terminal>,
    pty: Arc<Pty>,
    terminals: Arc<Terminals>,
    nonblock: AtomicBool,
}

/// Opens the replica of `term`: `EIO` while it is locked or after its master closed.
pub fn open_replica(
    term: &Arc<Terminal>,
    terminals: &Arc<Terminals>,
    flags: u32,
) -> Result<Arc<dyn FileOps>, Errno> {
    let pty = term.pty().ok_or(Errno::ENXIO)?;
    let mut s = pty.state.lock();
    if s.locked || s.hung_up {
        return Err(Errno::EIO);
    }
    s.replicas += 1;
    s.replica_closed = false;
    drop(s);
    pty.notify();
    Ok(Arc::new(ReplicaFile {
        term: term.clone(),
        pty: pty.clone(),
        terminals: terminals.clone(),
        nonblock: AtomicBool::new(flags & O_NONBLOCK != 0),
    }))
}

impl Drop for ReplicaFile {
    fn drop(&mut self) {
        let pty = &self.pty;
        let mut s = pty.state.lock();
        s.replicas -= 1;
        if s.replicas == 0 {
            s.replica_closed = true;
            if s.hung_up
                && let Some(d) = pty.devpts.upgrade()
            {
                d.release(pty.index());
            }
        }
        drop(s);
        pty.notify();
    }
}

/// A tenth of a second, `VTIME`'s unit.
const DECISECOND: Duration = Duration::from_millis(100);

impl ReplicaFile {
    fn pty(&self) -> &Pty {
        &self.pty
    }

    /// Linux's `n_tty_read`: one line in canonical mode; else as `VMIN` and `VTIME` say
    /// (`VMIN` bytes, the timer between bytes once one came; with `VMIN` 0, whatever
    /// comes before `VTIME` runs out, possibly nothing).
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let pty = self.pty();
        let (canon, vmin, vtime) = {
            let s = pty.state.lock();
            let t = &s.ld.termios;
            (
                t.canonical(),
                usize::from(t.cc[ldisc::cc::VMIN]),
                u32::from(t.cc[ldisc::cc::VTIME]),
            )
        };
        let nonblock = self.nonblock.load(Ordering::Relaxed);
        let (minimum, mut deadline, gap) = if canon {
            (1, None, None)
        } else if vmin > 0 {
            (vmin, None, (vtime > 0).then(|| DECISECOND * vtime))
        } else {
            (1, Some(Instant::now() + DECISECOND * vtime), None)
        };
        let mut done = 0;
        loop {
            let mut sigs = Vec::new();
            let got = {
                let mut s = pty.state.lock();
                if s.hung_up {
                    return Ok(done);
                }
                s.ld.replica_read(&mut buf[done..], &mut sigs)
            };
            deliver(&self.terminals, &self.term, &sigs);
            if let Some(n) = got {
                pty.notify();
                if canon {
                    return Ok(n);
                }
                done += n;
                if done >= minimum.min(buf.len()) {
                    return Ok(done);
                }
                if let Some(g) = gap {
                    deadline = Some(Instant::now() + g);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(done);
            }
            if nonblock {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(Errno::EAGAIN)
                };
            }
            let mask = events::POLLIN | events::POLLHUP;
            match block(&[(&pty.queue, mask)], deadline, || {
                let s = pty.state.lock();
                s.hung_up || s.ld.readable(1)
            }) {
                Ok(()) | Err(Errno::ETIMEDOUT) => {}
                Err(e) if done > 0 && e == Errno::EINTR => return Ok(done),
                Err(e) => return Err(e),
            }
        }
    }
}

impl FileOps for ReplicaFile {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read(buf)
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        let pty = self.pty();
        let mut done = 0;
        let r = wait_for(
            pty,
            self.nonblock.load(Ordering::Relaxed),
            events::POLLOUT | events::POLLHUP,
            || {
                let mut s = pty.state.lock();
                if s.hung_up {
                    return Some(Err(Errno::EIO));
                }
                let n = s.ld.replica_write(&buf[done..]);
                drop(s);
                done += n;
                if n > 0 {
                    pty.notify();
                }
                (done == buf.len()).then_some(Ok(done))
            },
            |s| s.hung_up || s.ld.output_room(),
        );
        match r {
            Err(_) if done > 0 => Ok(done),
            r => r,
        }
    }

    fn stream(&self) -> bool {
        true
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        pty_ioctl(&self.term, &self.pty, &self.terminals, false, cmd, arg, mem)
    }

    fn readable(&self) -> Option<u64> {
        Some(self.pty().state.lock().ld.input_available() as u64)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.nonblock
            .store(flags & O_NONBLOCK != 0, Ordering::Relaxed);
        Ok(())
    }

    fn terminal(&self) -> Option<Arc<Terminal>> {
        Some(self.term.clone())
    }

    fn readiness(&self, mask: Events) -> Events {
        let s = self.pty().state.lock();
        if s.hung_up {
            return mask & (events::READ | events::WRITE) | events::ALWAYS;
        }
        let t = &s.ld.termios;
        // Linux's `input_available_p` for poll: VMIN bytes when there is no timer.
        let (vmin, vtime) = (t.cc[ldisc::cc::VMIN], t.cc[ldisc::cc::VTIME]);
        let min = if vtime == 0 && vmin > 0 {
            usize::from(vmin)
        } else {
            1
        };
        let mut ev = 0;
        if s.ld.readable(min) {
            ev |= events::POLLIN | events::POLLRDNORM;
        }
        if s.ld.output_room() {
            ev |= events::POLLOUT | events::POLLWRNORM;
        }
        ev & (mask | events::ALWAYS)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty().queue)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

fn read_i32(mem: &dyn UserMem, arg: u64) -> Result<i32, Errno> {
    let mut b = [0u8; 4];
    mem.copy_in(arg, &mut b)?;
    Ok(i32::from_ne_bytes(b))
}

fn write_u32(mem: &dyn UserMem, arg: u64, v: u32) -> Result<u64, Errno> {
    mem.copy_out(arg, &v.to_ne_bytes())?;
    Ok(0)
}

/// The byte-level terminal ioctls of either end (`master` says which); the job-control
/// ones are `syscalls::tty`'s. `termios` and the window size are the pair's whichever end
/// asks, as Linux's `tty_mode_ioctl` takes the replica for a master.
fn pty_ioctl(
    term: &Arc<Terminal>,
    pty: &Pty,
    terminals: &Terminals,
    master: bool,
    cmd: u32,
    arg: u64,
    mem: &dyn UserMem,
) -> Result<u64, Errno> {
    use ioctls::*;
    if !master && pty.hung_up() {
        return Err(Errno::EIO);
    }
    match cmd {
        TCGETS | TCGETS2 => {
            let t = pty.state.lock().ld.termios;
            mem.copy_out(arg, &t.to_bytes(cmd == TCGETS2))?;
            Ok(0)
        }
        TCSETS | TCSETSW | TCSETSF | TCSETS2 | TCSETSW2 | TCSETSF2 => {
            let two = matches!(cmd, TCSETS2 | TCSETSW2 | TCSETSF2);
            let mut b = vec![
                0u8;
                if two {
                    ldisc::TERMIOS2_SIZE
                } else {
                    ldisc::TERMIOS_SIZE
                }
            ];
            mem.copy_in(arg, &mut b)?;
            let mut new = Termios::from_bytes(&b);
            let mut sigs = Vec::new();
            {
                let mut s = pty.state.lock();
                new.line = s.ld.termios.line;
                if matches!(cmd, TCSETSF | TCSETSF2) {
                    s.ld.flush_input(true);
                }
                s.ld.set_termios(new, &mut sigs);
            }
            pty.notify();
            deliver(terminals, term, &sigs);
            Ok(0)
        }
        TIOCGWINSZ => {
            let ws = pty.state.lock().ld.winsize;
            mem.copy_out(arg, &ws)?;
            Ok(0)
        }
        TIOCSWINSZ => {
            let mut ws = [0u8; 8];
            mem.copy_in(arg, &mut ws)?;
            pty.set_winsize(ws);
            Ok(0)
        }
        FIONREAD => {
            let s = pty.state.lock();
            let n = if master {
                s.ld.output_available()
            } else {
                s.ld.input_available()
            };
            write_u32(mem, arg, n as u32)
        }
        // A pty's driver holds no output (Linux's `pty_chars_in_buffer` is 0).
        TIOCOUTQ => write_u32(mem, arg, 0),
        TCFLSH => {
            let (input, output) = match arg {
                0 => (true, false),
                1 => (false, true),
                2 => (true, true),
                _ => return Err(Errno::EINVAL),
            };
            // The master's input is the replica's output, and the reverse; the master's
            // own buffer is flushed whole, the replica's output only as far as the tty
            // buffer goes (Linux's `pty_flush_buffer`).
            let mut s = pty.state.lock();
            match (master, input, output) {
                (false, i, o) => {
                    if i {
                        s.ld.flush_input(true);
                    }
                    if o {
                        s.ld.flush_output(false);
                    }
                }
                (true, i, o) => {
                    if i {
                        s.ld.flush_output(true);
                    }
                    if o {
                        s.ld.flush_pending_input();
                    }
                }
            }
            drop(s);
            pty.notify();
            Ok(0)
        }
        TCXONC => {
            let mut s = pty.state.lock();
            match arg {
                0 => s.ld.stop(),
                1 => s.ld.start(),
                2 | 3 => {
                    let c = s.ld.termios.cc[if arg == 2 {
                        ldisc::cc::VSTOP
                    } else {
                        ldisc::cc::VSTART
                    }];
                    if !master {
                        s.ld.send_char(c);
                    }
                }
                _ => return Err(Errno::EINVAL),
            }
            drop(s);
            pty.notify();
            Ok(0)
        }
        // Output never waits in a pty's driver, and a pty has no break to send.
        TCSBRK | TCSBRKP => Ok(0),
        TIOCGETD => write_u32(mem, arg, 0),
        TIOCSETD => match read_i32(mem, arg)? {
            0 => Ok(0),
            _ => Err(Errno::EINVAL),
        },
        TIOCGDEV => write_u32(mem, arg, term.device_number() as u32),
        TIOCGPTN if master => write_u32(mem, arg, pty.index()),
        TIOCSPTLCK if master => {
            let v = read_i32(mem, arg)?;
            pty.state.lock().locked = v != 0;
            Ok(0)
        }
        TIOCGPTLCK if master => write_u32(mem, arg, u32::from(pty.locked())),
        TIOCPKT if master => {
            let on = read_i32(mem, arg)? != 0;
            let mut s = pty.state.lock();
            if on && !s.ld.packet {
                s.ld.pkt_status = 0;
            }
            s.ld.packet = on;
            Ok(0)
        }
        TIOCGPKT if master => write_u32(mem, arg, u32::from(pty.state.lock().ld.packet)),
        _ => Err(Errno::ENOTTY),
    }
}
