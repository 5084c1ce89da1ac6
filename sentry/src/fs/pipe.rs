//! Pipes: anonymous (`pipe2`) and named (FIFOs on tmpfs).
//!
//! A [`Pipe`] is a bounded byte buffer with reader and writer counts. Reads block while it
//! is empty and a writer exists (end of file once every writer is gone); writes block while
//! it is full and fail with `EPIPE` once every reader is gone (the syscall layer sends
//! `SIGPIPE`). `O_NONBLOCK` gives `EAGAIN` instead of blocking.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::flags::open::*;
use linux_abi::types::Stat;

use super::file::OpenFile;
use super::vfs::VfsPath;
use super::{FileOps, FsStat, Inode, UserMem, magic, make_stat, new_ino};
use crate::waiter::{Events, WaitQueue, block_on, events};

/// Default pipe capacity (`F_GETPIPE_SZ`).
pub const PIPE_SIZE: usize = 65536;
/// Writes of at most this many bytes are atomic.
pub const PIPE_BUF: usize = 4096;

#[derive(Debug, Default)]
struct State {
    buf: VecDeque<u8>,
    /// Lengths of the packets written in packet mode (`O_DIRECT`), in order, with the
    /// byte runs written normally in between: (length, is a packet).
    segs: VecDeque<(usize, bool)>,
    /// Capacity in bytes (`F_SETPIPE_SZ`); 0 until first used means [`PIPE_SIZE`].
    capacity: usize,
    readers: usize,
    writers: usize,
    /// Whether any writer ever existed (a FIFO opened only for reading sees no EOF yet).
    had_writer: bool,
    /// Opens of each side so far: a blocking FIFO open waits for the other side to have
    /// opened since, even if it already closed again.
    reader_opens: u64,
    writer_opens: u64,
}

impl State {
    /// Appends `data`; in packet mode as packets of at most `PIPE_BUF` bytes.
    fn put(&mut self, data: &[u8], packet: bool) {
        self.buf.extend(data);
        if packet {
            for c in data.chunks(PIPE_BUF) {
                self.segs.push_back((c.len(), true));
            }
        } else {
            match self.segs.back_mut() {
                Some((n, false)) => *n += data.len(),
                _ => self.segs.push_back((data.len(), false)),
            }
        }
    }

    /// Reads into `out`: bytes written normally run together; a packet is read alone
    /// and whatever of it does not fit in `out` is discarded.
    fn take(&mut self, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() {
            let Some(&(len, packet)) = self.segs.front() else {
                break;
            };
            if packet && done > 0 {
                break;
            }
            let n = len.min(out.len() - done);
            for (d, b) in out[done..done + n].iter_mut().zip(self.buf.drain(..n)) {
                *d = b;
            }
            done += n;
            if packet {
                self.buf.drain(..len - n);
                self.segs.pop_front();
                break;
            }
            if n == len {
                self.segs.pop_front();
            } else if let Some(f) = self.segs.front_mut() {
                f.0 -= n;
            }
        }
        done
    }

    fn capacity(&self) -> usize {
        if self.capacity == 0 {
            PIPE_SIZE
        } else {
            self.capacity
        }
    }
}

/// Largest `F_SETPIPE_SZ` (`/proc/sys/fs/pipe-max-size`).
pub const PIPE_MAX_SIZE: usize = 1 << 20;

/// `F_GETPIPE_SZ` of a pipe or FIFO end (`None` for other files).
pub fn pipe_size(ops: &dyn FileOps) -> Option<usize> {
    let end = ops.as_any()?.downcast_ref::<PipeEnd>()?;
    Some(end.pipe.state.lock().capacity())
}

/// `F_SETPIPE_SZ`: sets the capacity to `size` rounded up to a power of two pages;
/// `EBUSY` if more bytes are buffered, `EPERM` past [`PIPE_MAX_SIZE`] without privilege.
pub fn set_pipe_size(ops: &dyn FileOps, size: u64, privileged: bool) -> Result<usize, Errno> {
    let end = ops
        .as_any()
        .and_then(|a| a.downcast_ref::<PipeEnd>())
        .ok_or(Errno::EBADF)?;
    if size > (1 << 31) {
        return Err(Errno::EINVAL);
    }
    let n = (size as usize).max(4096).next_power_of_two();
    if n > PIPE_MAX_SIZE && !privileged {
        return Err(Errno::EPERM);
    }
    let mut s = end.pipe.state.lock();
    if s.buf.len() > n {
        return Err(Errno::EBUSY);
    }
    s.capacity = n;
    drop(s);
    end.pipe.wake_all();
    Ok(n)
}

/// A pipe buffer shared by its ends.
#[derive(Debug)]
pub struct Pipe {
    state: Mutex<State>,
    /// Notified with `POLLIN`/`POLLOUT`/`POLLHUP`/`POLLERR` on every change.
    queue: WaitQueue,
}

impl Pipe {
    fn new() -> Arc<Pipe> {
        Arc::new(Pipe {
            state: Mutex::new(State::default()),
            queue: WaitQueue::new(),
        })
    }

    /// The readiness of an end (`read`/`write` say which directions it has).
    fn readiness(&self, read: bool, write: bool) -> Events {
        let s = self.state.lock();
        let mut ev = 0;
        if read {
            if !s.buf.is_empty() {
                ev |= events::POLLIN | events::POLLRDNORM;
            }
            if s.writers == 0 && s.had_writer {
                ev |= events::POLLHUP;
            }
        }
        if write {
            if s.capacity().saturating_sub(s.buf.len()) >= PIPE_BUF {
                ev |= events::POLLOUT | events::POLLWRNORM;
            }
            if s.readers == 0 {
                ev |= events::POLLERR;
            }
        }
        ev
    }

    fn wake_all(&self) {
        self.queue.notify(events::ALL);
    }

    /// Bytes waiting to be read.
    pub fn len(&self) -> usize {
        self.state.lock().buf.len()
    }

    fn end(self: &Arc<Pipe>, read: bool, write: bool, flags: u32) -> Arc<PipeEnd> {
        self.end_seen(read, write, flags).0
    }

    /// Like [`Pipe::end`], also returning what a blocking FIFO open waits for, taken in
    /// the same critical section as the new end: (a reader is present, reader opens so
    /// far, a writer is present, writer opens so far).
    fn end_seen(
        self: &Arc<Pipe>,
        read: bool,
        write: bool,
        flags: u32,
    ) -> (Arc<PipeEnd>, (bool, u64, bool, u64)) {
        let mut s = self.state.lock();
        let seen = (s.readers > 0, s.reader_opens, s.writers > 0, s.writer_opens);
        if read {
            s.readers += 1;
            s.reader_opens += 1;
        }
        if write {
            s.writers += 1;
            s.writer_opens += 1;
            s.had_writer = true;
        }
        drop(s);
        self.wake_all();
        let end = Arc::new(PipeEnd {
            pipe: self.clone(),
            read,
            write,
            nonblock: AtomicBool::new(flags & O_NONBLOCK != 0),
            direct: AtomicBool::new(flags & O_DIRECT != 0),
        });
        (end, seen)
    }
}

/// One open end of a pipe.
#[derive(Debug)]
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
    nonblock: AtomicBool,
    /// Packet mode (`O_DIRECT`): each write of up to `PIPE_BUF` bytes is one packet.
    direct: AtomicBool,
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut s = self.pipe.state.lock();
        if self.read {
            s.readers -= 1;
        }
        if self.write {
            s.writers -= 1;
        }
        drop(s);
        self.pipe.wake_all();
    }
}

/// The pipe end behind `ops`, if it is one.
pub fn pipe_end(ops: &dyn FileOps) -> Option<&PipeEnd> {
    ops.as_any()?.downcast_ref::<PipeEnd>()
}

/// Whether two ends are of one pipe.
pub fn same_pipe(a: &PipeEnd, b: &PipeEnd) -> bool {
    Arc::ptr_eq(&a.pipe, &b.pipe)
}

/// `tee`: copies up to `len` bytes queued in `src`'s pipe to `dst`'s without consuming
/// them, as Linux's `link_pipe`: waits (unless `nonblock`, or either end is
/// non-blocking) for data in `src` and room in `dst`; 0 when `src` has no data and no
/// writer left; `EPIPE` when `dst` has no reader; `EINVAL` for one pipe.
pub fn tee(src: &PipeEnd, dst: &PipeEnd, len: usize, nonblock: bool) -> Result<usize, Errno> {
    if Arc::ptr_eq(&src.pipe, &dst.pipe) {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let nonblock =
        nonblock || src.nonblock.load(Ordering::Relaxed) || dst.nonblock.load(Ordering::Relaxed);
    let op = || {
        // Both pipes locked, in a fixed order, so two tees the other way round cannot
        // deadlock.
        let (a, b) = (&src.pipe, &dst.pipe);
        let (sa, mut sb) = if Arc::as_ptr(a) < Arc::as_ptr(b) {
            let sa = a.state.lock();
            (sa, b.state.lock())
        } else {
            let sb = b.state.lock();
            (a.state.lock(), sb)
        };
        if sb.readers == 0 {
            return Err(Errno::EPIPE);
        }
        if sa.buf.is_empty() {
            return if sa.writers == 0 && sa.had_writer {
                Ok(0)
            } else {
                Err(Errno::EAGAIN)
            };
        }
        let room = sb.capacity().saturating_sub(sb.buf.len());
        if room == 0 {
            return Err(Errno::EAGAIN);
        }
        let n = len.min(sa.buf.len()).min(room);
        let data: Vec<u8> = sa.buf.iter().take(n).copied().collect();
        sb.put(&data, false);
        drop((sa, sb));
        b.queue.notify(events::POLLIN | events::POLLRDNORM);
        Ok(n)
    };
    if nonblock {
        op()
    } else {
        let q = [
            (&src.pipe.queue, events::POLLIN | events::POLLHUP),
            (&dst.pipe.queue, events::POLLOUT | events::POLLERR),
        ];
        block_on(&q, None, op)
    }
}

impl PipeEnd {
    /// A read that does not wait when `nonblock` even on a blocking end (`vmsplice`
    /// with `SPLICE_F_NONBLOCK`).
    pub fn read_with(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        self.read_inner(buf, nonblock || self.nonblock.load(Ordering::Relaxed))
    }

    /// `vmsplice` into the pipe: waits (unless `nonblock` or the end is non-blocking)
    /// for room, then queues as much of `buf` as fits, as Linux's `vmsplice_to_pipe`;
    /// `EPIPE` without a reader.
    pub fn write_some(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let nonblock = nonblock || self.nonblock.load(Ordering::Relaxed);
        let op = || {
            let mut s = self.pipe.state.lock();
            if s.readers == 0 {
                return Err(Errno::EPIPE);
            }
            let room = s.capacity().saturating_sub(s.buf.len());
            if room == 0 {
                return Err(Errno::EAGAIN);
            }
            let n = room.min(buf.len());
            s.put(&buf[..n], self.direct.load(Ordering::Relaxed));
            drop(s);
            self.pipe.queue.notify(events::POLLIN | events::POLLRDNORM);
            Ok(n)
        };
        if nonblock || buf.is_empty() {
            op()
        } else {
            let q = [(&self.pipe.queue, events::POLLOUT | events::POLLERR)];
            block_on(&q, None, op)
        }
    }

    fn read_inner(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let q = [(&self.pipe.queue, events::POLLIN | events::POLLHUP)];
        let mut op = || {
            let mut s = self.pipe.state.lock();
            if !s.buf.is_empty() {
                let n = s.take(buf);
                drop(s);
                self.pipe.queue.notify(events::POLLOUT | events::POLLWRNORM);
                return Ok(n);
            }
            if s.writers == 0 && s.had_writer {
                return Ok(0);
            }
            Err(Errno::EAGAIN)
        };
        if nonblock {
            op()
        } else {
            block_on(&q, None, &mut op)
        }
    }

    fn write_inner(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let q = [(&self.pipe.queue, events::POLLOUT | events::POLLERR)];
        let mut done = 0;
        let mut op = || {
            let mut s = self.pipe.state.lock();
            if s.readers == 0 {
                return Err(Errno::EPIPE);
            }
            let room = s.capacity().saturating_sub(s.buf.len());
            let left = buf.len() - done;
            // Writes of at most PIPE_BUF bytes go in whole or wait; larger ones may be split.
            if room > 0 && (left > PIPE_BUF || room >= left) {
                let n = room.min(left);
                s.put(&buf[done..done + n], self.direct.load(Ordering::Relaxed));
                done += n;
                drop(s);
                self.pipe.queue.notify(events::POLLIN | events::POLLRDNORM);
                if done == buf.len() {
                    return Ok(done);
                }
            }
            Err(Errno::EAGAIN)
        };
        let r = if nonblock {
            op()
        } else {
            block_on(&q, None, &mut op)
        };
        match r {
            Err(_) if done > 0 => Ok(done),
            r => r,
        }
    }
}

impl FileOps for PipeEnd {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        self.read_inner(buf, self.nonblock.load(Ordering::Relaxed))
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        self.write_inner(buf, self.nonblock.load(Ordering::Relaxed))
    }

    fn stream(&self) -> bool {
        true
    }

    fn readable(&self) -> Option<u64> {
        Some(self.pipe.len() as u64)
    }

    fn readiness(&self, mask: Events) -> Events {
        self.pipe.readiness(self.read, self.write) & (mask | events::ALWAYS)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.nonblock
            .store(flags & O_NONBLOCK != 0, Ordering::Relaxed);
        self.direct.store(flags & O_DIRECT != 0, Ordering::Relaxed);
        Ok(())
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        const FIONREAD: u32 = 0x541B;
        if cmd == FIONREAD {
            let n = self.pipe.len() as i32;
            mem.copy_out(arg, &n.to_ne_bytes())?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }
}

/// The inode of an anonymous pipe (what `fstat` and `/proc/<pid>/fd` see).
#[derive(Debug)]
pub struct PipeInode {
    ino: u64,
    pipe: Arc<Pipe>,
}

impl Inode for PipeInode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(make_stat(
            pipefs_dev(),
            self.ino,
            S_IFIFO | 0o600,
            1,
            0,
            0,
            0,
        ))
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(magic::PIPEFS))
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        // Re-opening through /proc/<pid>/fd: this pipe's buffer, and like Linux for a
        // pipe (not a FIFO) the open never waits for the other side.
        open_pipe(&self.pipe, flags, false)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn pipefs_dev() -> u64 {
    static DEV: OnceLock<u64> = OnceLock::new();
    *DEV.get_or_init(super::new_dev)
}

/// The pipe of a FIFO inode (Linux's `i_pipe`): every opener of the inode shares one
/// buffer while any end is open; the next open after the last close starts a new one.
/// It lives in the inode, so nothing outside the inode (another FIFO with the same inode
/// number, another kernel) can reach it.
#[derive(Debug, Default)]
pub struct Fifo(Mutex<Weak<Pipe>>);

impl Fifo {
    fn pipe(&self) -> Arc<Pipe> {
        let mut w = self.0.lock();
        if let Some(p) = w.upgrade() {
            return p;
        }
        let p = Pipe::new();
        *w = Arc::downgrade(&p);
        p
    }

    /// Opens an end with `open(2)` flags.
    ///
    /// As on Linux, a blocking read-only open waits for a writer and a blocking write-only
    /// open waits for a reader (`EINTR` if a signal comes first); a non-blocking write-only
    /// open without a reader fails with `ENXIO`; read-write opens never wait.
    pub fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        open_pipe(&self.pipe(), flags, true)
    }
}

/// Opens an end of pipe `p`; `fifo` says whether open waits for the other side.
fn open_pipe(p: &Arc<Pipe>, flags: u32, fifo: bool) -> Result<Arc<dyn FileOps>, Errno> {
    let acc = flags & O_ACCMODE;
    let nonblock = flags & O_NONBLOCK != 0;
    if fifo && acc == O_WRONLY && nonblock && p.state.lock().readers == 0 {
        return Err(Errno::ENXIO);
    }
    let (end, (reader_there, readers0, writer_there, writers0)) =
        p.end_seen(acc != O_WRONLY, acc != O_RDONLY, flags);
    if fifo && !nonblock && acc != O_RDWR {
        // Wait until the other side is, or has been since this open, present.
        let want_writer = acc == O_RDONLY;
        let partner_there = if want_writer {
            writer_there
        } else {
            reader_there
        };
        if !partner_there {
            crate::waiter::block(&[(&p.queue, events::ALL)], None, || {
                let s = p.state.lock();
                if want_writer {
                    s.writer_opens > writers0
                } else {
                    s.reader_opens > readers0
                }
            })?;
        }
    }
    Ok(end)
}

/// Makes an anonymous pipe: returns the read end and the write end (`pipe2` flags
/// `O_NONBLOCK` honoured; `O_CLOEXEC` is the fd table's business).
pub fn new_pipe(flags: u32) -> (Arc<OpenFile>, Arc<OpenFile>) {
    let ino = new_ino();
    let p = Pipe::new();
    let nb = flags & (O_NONBLOCK | O_DIRECT);
    let inode: Arc<dyn Inode> = Arc::new(PipeInode {
        ino,
        pipe: p.clone(),
    });
    let name = format!("pipe:[{ino}]");
    let path = VfsPath::anonymous(inode, name.as_bytes());
    let r = OpenFile::new(path.clone(), O_RDONLY | nb, p.end(true, false, nb));
    let w = OpenFile::new(path, O_WRONLY | nb, p.end(false, true, nb));
    (r, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Caller;

    #[test]
    fn pipe_transfers_and_signals_eof_and_epipe() {
        let (r, w) = new_pipe(0);
        assert_eq!(w.write(&Caller::KERNEL, b"abc").unwrap(), 3);
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&Caller::KERNEL, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        let t = std::thread::spawn(move || {
            w.write(&Caller::KERNEL, b"late").unwrap();
        });
        assert_eq!(
            r.read(&Caller::KERNEL, &mut buf).unwrap(),
            4,
            "blocking read waits for the writer"
        );
        t.join().unwrap();
        assert_eq!(
            r.read(&Caller::KERNEL, &mut buf).unwrap(),
            0,
            "EOF after the writer is gone"
        );
        let (r2, w2) = new_pipe(O_NONBLOCK);
        assert_eq!(r2.read(&Caller::KERNEL, &mut buf), Err(Errno::EAGAIN));
        drop(r2);
        assert_eq!(w2.write(&Caller::KERNEL, b"x"), Err(Errno::EPIPE));
        assert_eq!(w2.seek(0, 0), Err(Errno::ESPIPE));
        assert!(String::from_utf8_lossy(&w2.path()).starts_with("pipe:["));
    }

    #[test]
    fn packet_mode_keeps_write_boundaries() {
        let (r, w) = new_pipe(O_DIRECT | O_NONBLOCK);
        w.write(&Caller::KERNEL, b"one").unwrap();
        w.write(&Caller::KERNEL, b"second").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(r.read(&Caller::KERNEL, &mut buf).unwrap(), 3);
        assert_eq!(
            r.read(&Caller::KERNEL, &mut buf[..2]).unwrap(),
            2,
            "the rest of a packet is dropped"
        );
        assert_eq!(r.read(&Caller::KERNEL, &mut buf), Err(Errno::EAGAIN));
        // Without O_DIRECT, writes run together.
        w.set_flags(O_NONBLOCK).unwrap();
        w.write(&Caller::KERNEL, b"ab").unwrap();
        w.write(&Caller::KERNEL, b"cd").unwrap();
        assert_eq!(r.read(&Caller::KERNEL, &mut buf).unwrap(), 4);
    }

    #[test]
    fn fifo_opens_meet_even_if_the_other_side_left_already() {
        let fifo = Arc::new(Fifo::default());
        assert_eq!(fifo.open(O_WRONLY | O_NONBLOCK).err(), Some(Errno::ENXIO));
        let f2 = fifo.clone();
        let reader = std::thread::spawn(move || f2.open(O_RDONLY).map(|_| ()));
        // The writer opens once the reader is there, and closes at once.
        loop {
            if fifo.pipe().state.lock().readers > 0 {
                break;
            }
            std::thread::yield_now();
        }
        drop(fifo.open(O_WRONLY).unwrap());
        assert_eq!(reader.join().unwrap(), Ok(()));
        let rw = fifo.open(O_RDWR).unwrap();
        assert!(fifo.open(O_WRONLY).is_ok(), "a reader is present");
        drop(rw);
    }

    #[test]
    fn fifos_of_two_kernels_with_one_inode_number_do_not_share_a_buffer() {
        // Two sandboxes' tmpfs may give FIFOs the same inode number: the buffer belongs to
        // the inode, not to a process-wide table keyed by that number.
        let a = Fifo::default();
        let b = Fifo::default();
        let a_rw = a.open(O_RDWR | O_NONBLOCK).unwrap();
        let b_rw = b.open(O_RDWR | O_NONBLOCK).unwrap();
        assert_eq!(a_rw.write_at(b"secret", 0), Ok(6));
        let mut buf = [0u8; 8];
        assert_eq!(b_rw.read_at(&mut buf, 0), Err(Errno::EAGAIN));
        assert_eq!(a_rw.read_at(&mut buf, 0), Ok(6));
        // The last close ends the buffer; the next open starts an empty one.
        assert_eq!(a_rw.write_at(b"left", 0), Ok(4));
        drop(a_rw);
        let again = a.open(O_RDWR | O_NONBLOCK).unwrap();
        assert_eq!(again.read_at(&mut buf, 0), Err(Errno::EAGAIN));
    }

    #[test]
    fn blocked_read_ends_with_eintr_when_interrupted() {
        let (r, _w) = new_pipe(0);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s2 = stop.clone();
        let waker = crate::waiter::Waker::new();
        let w2 = waker.clone();
        let t = std::thread::spawn(move || {
            crate::waiter::set_current_waker(w2);
            crate::waiter::set_signal_pending_check(Box::new(move || s2.load(Ordering::Relaxed)));
            let mut buf = [0u8; 4];
            r.read(&Caller::KERNEL, &mut buf)
        });
        stop.store(true, Ordering::Relaxed);
        // A signal sender kicks the task's waker after making the signal pending.
        waker.kick();
        assert_eq!(t.join().unwrap(), Err(Errno::EINTR));
    }
}
