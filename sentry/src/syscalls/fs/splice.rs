//! Copies between files: `sendfile`, `copy_file_range`, `splice`, and the advice calls
//! (`readahead`, `fadvise64`).

use super::*;

/// Copies up to `count` bytes from `src` to `dst`; `src_off`/`dst_off` are explicit
/// offsets (the file offsets are used and advanced when `None`). `caller` does the I/O.
pub(super) fn copy_files(
    caller: &Caller,
    src: &OpenFile,
    mut src_off: Option<&mut u64>,
    dst: &OpenFile,
    mut dst_off: Option<&mut u64>,
    count: u64,
) -> Result<u64, Errno> {
    if !src.readable() || !dst.writable() {
        return Err(Errno::EBADF);
    }
    let count = count.min(MAX_RW);
    let mut buf = vec![0u8; (count as usize).min(CHUNK)];
    let mut done = 0u64;
    while done < count {
        let want = ((count - done) as usize).min(CHUNK);
        let r = match src_off.as_deref_mut() {
            Some(o) => src.pread(caller, &mut buf[..want], *o),
            None => src.read(caller, &mut buf[..want]),
        };
        let n = match r {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if done > 0 && e != crate::mm::EOOM => break,
            Err(e) => return Err(e),
        };
        if let Some(o) = src_off.as_deref_mut() {
            *o += n as u64;
        }
        let mut w = 0;
        while w < n {
            let r = match dst_off.as_deref_mut() {
                Some(o) => dst.pwrite(caller, &buf[w..n], *o),
                None => dst.write(caller, &buf[w..n]),
            };
            match r {
                Ok(m) => {
                    w += m;
                    if let Some(o) = dst_off.as_deref_mut() {
                        *o += m as u64;
                    }
                }
                Err(e) if done + w as u64 > 0 && e != crate::mm::EOOM => return Ok(done + w as u64),
                Err(e) => return Err(e),
            }
        }
        done += n as u64;
        if n < want && src.ops().stream() {
            break;
        }
    }
    Ok(done)
}

pub(super) fn read_off(t: &Task, addr: u64) -> Result<Option<u64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let v: i64 = t.mm().read_obj(addr)?;
    Ok(Some(check_off(v)?))
}

/// `sendfile(2)`.
pub fn sys_sendfile(
    t: &Task,
    out_fd: i32,
    in_fd: i32,
    offp: u64,
    count: u64,
) -> Result<u64, Errno> {
    let table = fd_table(t);
    let (src, dst) = (table.get(in_fd)?, table.get(out_fd)?);
    if dst.flags() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut off = read_off(t, offp)?;
    let n = sigpipe(
        t,
        copy_files(&t.caller(), &src, off.as_mut(), &dst, None, count),
    )?;
    if let Some(o) = off {
        t.mm().write_obj(offp, &(o as i64))?;
    }
    Ok(n)
}

/// `copy_file_range(2)` (a plain copy through the Sentry).
pub fn sys_copy_file_range(
    t: &Task,
    in_fd: i32,
    in_off: u64,
    out_fd: i32,
    out_off: u64,
    len: u64,
    flags: u32,
) -> Result<u64, Errno> {
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let table = fd_table(t);
    let (src, dst) = (table.get(in_fd)?, table.get(out_fd)?);
    for f in [&src, &dst] {
        match f.vfs_path().file_type()? {
            FileType::Regular => {}
            FileType::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        }
    }
    if dst.flags() & O_APPEND != 0 {
        return Err(Errno::EBADF);
    }
    let mut io = read_off(t, in_off)?;
    let mut oo = read_off(t, out_off)?;
    let n = sigpipe(
        t,
        copy_files(&t.caller(), &src, io.as_mut(), &dst, oo.as_mut(), len),
    )?;
    if let Some(o) = io {
        t.mm().write_obj(in_off, &(o as i64))?;
    }
    if let Some(o) = oo {
        t.mm().write_obj(out_off, &(o as i64))?;
    }
    Ok(n)
}

/// `splice(2)`: one side must be a pipe; data is copied through the Sentry.
pub fn sys_splice(
    t: &Task,
    in_fd: i32,
    in_off: u64,
    out_fd: i32,
    out_off: u64,
    len: u64,
    _flags: u32,
) -> Result<u64, Errno> {
    let table = fd_table(t);
    let (src, dst) = (table.get(in_fd)?, table.get(out_fd)?);
    // In Linux's order (do_splice): access modes, then offsets on pipes, then
    // O_APPEND on the file written.
    if !src.readable() || !dst.writable() {
        return Err(Errno::EBADF);
    }
    let src_pipe = src.vfs_path().file_type()? == FileType::Fifo;
    let dst_pipe = dst.vfs_path().file_type()? == FileType::Fifo;
    if !src_pipe && !dst_pipe {
        return Err(Errno::EINVAL);
    }
    if (src_pipe && in_off != 0) || (dst_pipe && out_off != 0) {
        return Err(Errno::ESPIPE);
    }
    if src_pipe
        && dst_pipe
        && let (Some(a), Some(b)) = (pipe::pipe_end(&**src.ops()), pipe::pipe_end(&**dst.ops()))
        && pipe::same_pipe(a, b)
    {
        return Err(Errno::EINVAL);
    }
    if !dst_pipe && dst.flags() & O_APPEND != 0 {
        return Err(Errno::EINVAL);
    }
    let mut io = read_off(t, in_off)?;
    let mut oo = read_off(t, out_off)?;
    // A splice moves at most one pipe buffer's worth.
    let n = sigpipe(
        t,
        copy_files(
            &t.caller(),
            &src,
            io.as_mut(),
            &dst,
            oo.as_mut(),
            len.min(pipe::PIPE_SIZE as u64),
        ),
    )?;
    if let Some(o) = io {
        t.mm().write_obj(in_off, &(o as i64))?;
    }
    if let Some(o) = oo {
        t.mm().write_obj(out_off, &(o as i64))?;
    }
    Ok(n)
}

/// `splice`/`tee`/`vmsplice` flags.
const SPLICE_F_NONBLOCK: u32 = 2;
const SPLICE_F_ALL: u32 = 0xf;

/// The pipe end behind `f` (`EINVAL` for another file, as `tee` says).
fn pipe_of(f: &OpenFile) -> Result<&pipe::PipeEnd, Errno> {
    pipe::pipe_end(&**f.ops()).ok_or(Errno::EINVAL)
}

/// `tee(2)`: duplicates up to `len` bytes of one pipe into another without consuming
/// them (see `pipe::tee`).
pub fn sys_tee(t: &Task, in_fd: i32, out_fd: i32, len: u64, flags: u32) -> Result<u64, Errno> {
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let table = fd_table(t);
    let (src, dst) = (table.get(in_fd)?, table.get(out_fd)?);
    if !src.readable() || !dst.writable() {
        return Err(Errno::EBADF);
    }
    let (a, b) = (pipe_of(&src)?, pipe_of(&dst)?);
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let n = sigpipe(
        t,
        pipe::tee(a, b, len, flags & SPLICE_F_NONBLOCK != 0).map(|n| n as u64),
    )?;
    Ok(n)
}

/// `vmsplice(2)`: the iovecs written into a pipe through its write end, or read out of
/// it through its read end (`EBADF` for anything but a pipe).
pub fn sys_vmsplice(t: &Task, fd: i32, iov: u64, cnt: u64, flags: u32) -> Result<u64, Errno> {
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let f = fd_table(t).get(fd)?;
    let writes = f.writable();
    if !writes && !f.readable() {
        return Err(Errno::EBADF);
    }
    let vecs = t.mm().read_iovecs(iov, cnt)?;
    let total = vecs
        .iter()
        .fold(0u64, |a, v| a.saturating_add(v.1))
        .min(STREAM_VEC_MAX);
    if total == 0 {
        return Ok(0);
    }
    let end = pipe::pipe_end(&**f.ops()).ok_or(Errno::EBADF)?;
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let mm = t.mm();
    if writes {
        let mut tmp = Vec::with_capacity(total as usize);
        for &(base, len) in &vecs {
            let at = tmp.len();
            let k = (len as usize).min(total as usize - at);
            tmp.resize(at + k, 0);
            mm.copy_in(base, &mut tmp[at..])?;
        }
        return sigpipe(t, end.write_some(&tmp, nonblock).map(|n| n as u64));
    }
    let mut tmp = vec![0u8; total as usize];
    let n = end.read_with(&mut tmp, nonblock)?;
    let mut done = 0usize;
    for &(base, len) in &vecs {
        if done >= n {
            break;
        }
        let k = (len as usize).min(n - done);
        mm.copy_out(base, &tmp[done..done + k])?;
        done += k;
    }
    Ok(n as u64)
}

/// `readahead(2)`: a no-op on a valid, readable file.
pub fn sys_readahead(t: &Task, fd: i32, _off: i64, _count: u64) -> Result<u64, Errno> {
    readable_file(t, fd).map_err(|_| Errno::EBADF)?;
    Ok(0)
}

/// `fadvise64(2)`: advice is accepted and ignored.
pub fn sys_fadvise64(t: &Task, fd: i32, _off: i64, len: i64, advice: i32) -> Result<u64, Errno> {
    let f = fd_table(t).get(fd)?;
    if len < 0 || !(0..=5).contains(&advice) {
        return Err(Errno::EINVAL);
    }
    if f.ops().stream() {
        return Err(Errno::ESPIPE);
    }
    Ok(0)
}
