//! The read/write families: `read`/`write`, `pread64`/`pwrite64`, the vectored
//! calls and `lseek`.

use super::*;
use crate::fs::file::EFSIZE;

pub(super) fn read_into(
    t: &Task,
    f: &OpenFile,
    buf: u64,
    count: u64,
    off: Option<u64>,
) -> Result<u64, Errno> {
    if let Some(term) = f.ops().terminal() {
        crate::syscalls::tty::check_read(t, &term)?;
    }
    let count = count.min(MAX_RW);
    let stream = f.ops().stream();
    let mm = t.mm();
    let mut done = 0u64;
    let mut tmp = vec![0u8; (count as usize).min(CHUNK)];
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        let r = match off {
            Some(o) => f.pread(&t.caller(), &mut tmp[..want], o + done),
            None => f.read(&t.caller(), &mut tmp[..want]),
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if done > 0 && e != Errno::EFAULT && e != crate::mm::EOOM => break,
            Err(e) => return Err(e),
        };
        mm.copy_out(buf + done, &tmp[..n])?;
        done += n as u64;
        if n < want || stream {
            break;
        }
    }
    Ok(done)
}

pub(super) fn write_from(
    t: &Task,
    f: &OpenFile,
    buf: u64,
    count: u64,
    off: Option<u64>,
) -> Result<u64, Errno> {
    if let Some(term) = f.ops().terminal() {
        crate::syscalls::tty::check_write(t, &term)?;
    }
    let count = count.min(MAX_RW);
    let mm = t.mm();
    let limit = fsize_limit(t);
    let mut done = 0u64;
    let mut tmp = vec![0u8; (count as usize).min(CHUNK)];
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        if let Err(e) = mm.copy_in(buf + done, &mut tmp[..want]) {
            // Running out of memory is never a short count: the OOM killer ends the
            // process whatever the call returns.
            return if done > 0 && e != crate::mm::EOOM {
                Ok(done)
            } else {
                Err(e)
            };
        }
        let r = match off {
            Some(o) => f.pwrite_limited(&t.caller(), &tmp[..want], o + done, limit),
            None => f.write_limited(&t.caller(), &tmp[..want], limit),
        };
        let n = match r {
            Ok(n) => n,
            Err(e) if done > 0 && e != crate::mm::EOOM => break,
            Err(EFSIZE) => return Err(file_too_large(t)),
            Err(e) => return Err(e),
        };
        done += n as u64;
        if n < want {
            break;
        }
    }
    Ok(done)
}

/// The caller's `RLIMIT_FSIZE` soft limit (`u64::MAX`: none).
pub(super) fn fsize_limit(t: &Task) -> u64 {
    const RLIMIT_FSIZE: usize = 1;
    t.thread_group()
        .rlimit(RLIMIT_FSIZE)
        .map_or(u64::MAX, |r| r.cur)
}

/// A write or truncate past `RLIMIT_FSIZE`: `SIGXFSZ` to the caller (its default action
/// ends the process with a core dump) and the `EFBIG` the call returns, as Linux.
pub(super) fn file_too_large(t: &Task) -> Errno {
    use linux_abi::signal::{SI_USER, SIGXFSZ, SigInfo};
    let mut info = SigInfo::new(SIGXFSZ, SI_USER);
    info.set_pid_uid(t.tgid(), t.creds().uid);
    t.send_signal(info);
    Errno::EFBIG
}

/// Sends the writer `SIGPIPE` for a write that failed with `EPIPE`, as Linux does: the
/// default action kills, a handler runs, an ignored or blocked signal lets the caller see
/// `EPIPE`.
pub(crate) fn sigpipe(t: &Task, r: Result<u64, Errno>) -> Result<u64, Errno> {
    use linux_abi::signal::{SI_USER, SIGPIPE, SigInfo};
    if r == Err(Errno::EPIPE) {
        let mut info = SigInfo::new(SIGPIPE, SI_USER);
        info.set_pid_uid(t.tgid(), t.creds().uid);
        t.send_signal(info);
    }
    r
}

pub(super) fn readable_file(t: &Task, fd: i32) -> Result<Arc<OpenFile>, Errno> {
    let f = fd_table(t).get(fd)?;
    if !f.readable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

pub(super) fn writable_file(t: &Task, fd: i32) -> Result<Arc<OpenFile>, Errno> {
    let f = fd_table(t).get(fd)?;
    if !f.writable() {
        return Err(Errno::EBADF);
    }
    Ok(f)
}

/// `read(2)`.
pub fn sys_read(t: &Task, fd: i32, buf: u64, count: u64) -> Result<u64, Errno> {
    let f = readable_file(t, fd)?;
    read_into(t, &f, buf, count, None)
}

/// `write(2)`.
pub fn sys_write(t: &Task, fd: i32, buf: u64, count: u64) -> Result<u64, Errno> {
    let f = writable_file(t, fd)?;
    sigpipe(t, write_from(t, &f, buf, count, None))
}

pub(super) fn check_off(off: i64) -> Result<u64, Errno> {
    u64::try_from(off).map_err(|_| Errno::EINVAL)
}

/// `pread64(2)`.
pub fn sys_pread64(t: &Task, fd: i32, buf: u64, count: u64, off: i64) -> Result<u64, Errno> {
    let f = readable_file(t, fd)?;
    read_into(t, &f, buf, count, Some(check_off(off)?))
}

/// `pwrite64(2)`.
pub fn sys_pwrite64(t: &Task, fd: i32, buf: u64, count: u64, off: i64) -> Result<u64, Errno> {
    let f = writable_file(t, fd)?;
    write_from(t, &f, buf, count, Some(check_off(off)?))
}

/// The most bytes one vectored transfer on a stream file moves at once.
pub(super) const STREAM_VEC_MAX: u64 = 16 << 20;

/// A vectored read of a stream file (pipe, socket, terminal) is one read, as on Linux:
/// a datagram is one message however many iovecs it fills.
pub(super) fn readv_stream(t: &Task, f: &OpenFile, vecs: &[(u64, u64)]) -> Result<u64, Errno> {
    let total = vecs
        .iter()
        .fold(0u64, |a, v| a.saturating_add(v.1))
        .min(STREAM_VEC_MAX);
    let mut tmp = vec![0u8; total as usize];
    let n = f.read(&t.caller(), &mut tmp)?;
    let mm = t.mm();
    let mut done = 0usize;
    for &(base, len) in vecs {
        if done >= n {
            break;
        }
        let k = (len as usize).min(n - done);
        mm.copy_out(base, &tmp[done..done + k])?;
        done += k;
    }
    Ok(n as u64)
}

/// A vectored write to a stream file is one write, as on Linux: one datagram, and a pipe
/// write of at most `PIPE_BUF` bytes in total stays atomic.
pub(super) fn writev_stream(t: &Task, f: &OpenFile, vecs: &[(u64, u64)]) -> Result<u64, Errno> {
    let mm = t.mm();
    let mut tmp = Vec::new();
    for &(base, len) in vecs {
        let room = STREAM_VEC_MAX - tmp.len() as u64;
        let k = len.min(room) as usize;
        let at = tmp.len();
        tmp.resize(at + k, 0);
        if let Err(e) = mm.copy_in(base, &mut tmp[at..]) {
            if at == 0 {
                return Err(e);
            }
            tmp.truncate(at);
            break;
        }
        if room <= len {
            break;
        }
    }
    Ok(f.write(&t.caller(), &tmp)? as u64)
}

/// A positioned transfer on a pipe, socket or terminal is `ESPIPE` before any access
/// check (Linux's `do_preadv`/`do_pwritev` test `FMODE_PREAD`/`FMODE_PWRITE` first).
fn positioned_on_stream(t: &Task, fd: i32, off: Option<u64>) -> Result<(), Errno> {
    if off.is_some() && fd_table(t).get(fd)?.ops().stream() {
        return Err(Errno::ESPIPE);
    }
    Ok(())
}

pub(super) fn readv_at(
    t: &Task,
    fd: i32,
    iov: u64,
    cnt: u64,
    off: Option<u64>,
) -> Result<u64, Errno> {
    positioned_on_stream(t, fd, off)?;
    let f = readable_file(t, fd)?;
    let vecs = t.mm().read_iovecs(iov, cnt)?;
    if off.is_none() && f.ops().stream() {
        return readv_stream(t, &f, &vecs);
    }
    let mut total = 0u64;
    for (base, len) in vecs {
        if len == 0 {
            continue;
        }
        let n = read_into(t, &f, base, len, off.map(|o| o + total))?;
        total += n;
        if n < len {
            break;
        }
    }
    Ok(total)
}

pub(super) fn writev_at(
    t: &Task,
    fd: i32,
    iov: u64,
    cnt: u64,
    off: Option<u64>,
) -> Result<u64, Errno> {
    positioned_on_stream(t, fd, off)?;
    let f = writable_file(t, fd)?;
    let vecs = t.mm().read_iovecs(iov, cnt)?;
    if off.is_none() && f.ops().stream() {
        return writev_stream(t, &f, &vecs);
    }
    let mut total = 0u64;
    for (base, len) in vecs {
        if len == 0 {
            continue;
        }
        let n = match write_from(t, &f, base, len, off.map(|o| o + total)) {
            Ok(n) => n,
            Err(e) if total > 0 && e != crate::mm::EOOM => break,
            Err(e) => return Err(e),
        };
        total += n;
        if n < len {
            break;
        }
    }
    Ok(total)
}

/// `readv(2)`.
pub fn sys_readv(t: &Task, fd: i32, iov: u64, cnt: u64) -> Result<u64, Errno> {
    readv_at(t, fd, iov, cnt, None)
}

/// `writev(2)`.
pub fn sys_writev(t: &Task, fd: i32, iov: u64, cnt: u64) -> Result<u64, Errno> {
    sigpipe(t, writev_at(t, fd, iov, cnt, None))
}

/// `preadv(2)` (on x86-64 the whole offset is in the low word).
pub fn sys_preadv(t: &Task, fd: i32, iov: u64, cnt: u64, off: i64) -> Result<u64, Errno> {
    readv_at(t, fd, iov, cnt, Some(check_off(off)?))
}

/// `pwritev(2)`.
pub fn sys_pwritev(t: &Task, fd: i32, iov: u64, cnt: u64, off: i64) -> Result<u64, Errno> {
    writev_at(t, fd, iov, cnt, Some(check_off(off)?))
}

/// `preadv2(2)`: offset -1 uses the file offset; flags are hints.
pub fn sys_preadv2(
    t: &Task,
    fd: i32,
    iov: u64,
    cnt: u64,
    off: i64,
    _hi: i64,
    flags: u32,
) -> Result<u64, Errno> {
    let off = if off == -1 {
        None
    } else {
        Some(check_off(off)?)
    };
    rw_flags(t, fd, flags)?;
    readv_at(t, fd, iov, cnt, off)
}

/// `RWF_APPEND`: a `pwritev2` that writes at the end of the file.
const RWF_APPEND: u32 = 0x10;

/// Checks `preadv2`/`pwritev2` flags after the descriptor, as Linux's
/// `kiocb_set_rw_flags`: a flag it does not know is `EOPNOTSUPP`. The known ones are
/// hints here (every write is synchronous and nothing waits on the page cache), but
/// `RWF_APPEND`.
fn rw_flags(t: &Task, fd: i32, flags: u32) -> Result<(), Errno> {
    const RWF_SUPPORTED: u32 = 0xff;
    fd_table(t).get(fd)?;
    if flags & !RWF_SUPPORTED != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// `pwritev2(2)`.
pub fn sys_pwritev2(
    t: &Task,
    fd: i32,
    iov: u64,
    cnt: u64,
    off: i64,
    _hi: i64,
    flags: u32,
) -> Result<u64, Errno> {
    let off = if off == -1 {
        None
    } else {
        Some(check_off(off)?)
    };
    rw_flags(t, fd, flags)?;
    let off = if flags & RWF_APPEND != 0 {
        let f = writable_file(t, fd)?;
        if f.ops().stream() {
            off
        } else {
            Some(f.stat()?.st_size as u64)
        }
    } else {
        off
    };
    writev_at(t, fd, iov, cnt, off)
}

/// `lseek(2)`.
pub fn sys_lseek(t: &Task, fd: i32, off: i64, whence: u32) -> Result<u64, Errno> {
    fd_table(t).get(fd)?.seek(off, whence)
}
