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
    let src_pipe = src.vfs_path().file_type()? == FileType::Fifo;
    let dst_pipe = dst.vfs_path().file_type()? == FileType::Fifo;
    if !src_pipe && !dst_pipe {
        return Err(Errno::EINVAL);
    }
    if (src_pipe && in_off != 0) || (dst_pipe && out_off != 0) {
        return Err(Errno::ESPIPE);
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
