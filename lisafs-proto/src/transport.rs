//! Framing over a `SOCK_SEQPACKET` socket, with host fds passed as `SCM_RIGHTS`.
//!
//! A message is a [`Header`] plus its payload. The default socket buffer of a Unix
//! socket (about 208 KiB) cannot hold a 1 MiB record, so a message is sent as one or more
//! records of at most [`RECORD_SIZE`] bytes: the first holds the header and the start of
//! the payload (and the fds), the following ones hold only payload bytes. Senders hold a
//! lock for the whole message so records of two messages never interleave, and a
//! `SOCK_SEQPACKET` socket keeps record boundaries and order.
//!
//! This module owns the crate's only `unsafe` code (building `msghdr` for `recvmsg` and
//! taking ownership of received descriptors).

use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use linux_abi::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, Shutdown, SockFlag, SockType, sendmsg,
};

use crate::codec::{HEADER_SIZE, Header};
use crate::error::ProtoError;
use crate::message::MAX_FDS;

/// Largest record written to or read from the socket.
pub const RECORD_SIZE: usize = 64 * 1024;

/// One received message, reassembled.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) header: Header,
    pub(crate) payload: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// Why receiving a message failed.
#[derive(Debug)]
pub(crate) enum RecvError {
    /// The socket failed (`ECONNRESET`...).
    Io(Errno),
    /// The framing is broken; the connection cannot be used any more. `request_id` is
    /// set when the header was readable.
    Fatal {
        request_id: Option<u64>,
        err: ProtoError,
    },
    /// The message was consumed whole but is unacceptable (e.g. too many fds); the stream
    /// is still in sync.
    Bad { header: Header, err: ProtoError },
}

/// Creates a connected `SOCK_SEQPACKET` socket pair (close-on-exec).
pub fn socketpair() -> Result<(OwnedFd, OwnedFd), Errno> {
    nix::sys::socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(from_nix)
}

/// nix's errno as the workspace's one errno type.
fn from_nix(e: nix::errno::Errno) -> Errno {
    Errno::new(e as i32)
}

/// Shuts both directions of a socket down, waking up any thread blocked reading it.
pub(crate) fn shutdown(fd: BorrowedFd<'_>) {
    let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), Shutdown::Both);
}

/// Whether the peer of a connected socket has closed its end (or the socket failed),
/// without waiting and without consuming anything queued on it.
pub(crate) fn peer_closed(fd: BorrowedFd<'_>) -> bool {
    // POLLRDHUP: the peer shut down its sending side (nix's PollFlags cannot carry it).
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLRDHUP,
        revents: 0,
    };
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        // SAFETY: one valid pollfd and a valid timespec, both live for the call; no
        // signal mask is passed.
        let r = unsafe { libc::ppoll(&mut p, 1, &zero, std::ptr::null()) };
        match r {
            0 => return false,
            r if r > 0 => {
                let gone = libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
                return p.revents & gone != 0;
            }
            _ if Errno::last_os_error() == Errno::EINTR => continue,
            // Cannot tell: a later call finds out.
            _ => return false,
        }
    }
}

fn send_record(fd: RawFd, parts: &[&[u8]], fds: &[RawFd]) -> Result<(), Errno> {
    let iov: Vec<std::io::IoSlice<'_>> = parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
    let want: usize = parts.iter().map(|p| p.len()).sum();
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) if n == want => return Ok(()),
            // A SOCK_SEQPACKET send is atomic; a short count means something odd.
            Ok(_) => return Err(Errno::EIO),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(from_nix(e)),
        }
    }
}

/// Sends one message. The caller must serialise senders on the socket.
pub(crate) fn send_frame(
    fd: BorrowedFd<'_>,
    header: &Header,
    payload: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), Errno> {
    if fds.len() > MAX_FDS || payload.len() != header.payload_len as usize {
        return Err(Errno::EINVAL);
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let h = header.encode();
    let first = payload.len().min(RECORD_SIZE - HEADER_SIZE);
    send_record(fd.as_raw_fd(), &[&h, &payload[..first]], &raw)?;
    for chunk in payload[first..].chunks(RECORD_SIZE) {
        send_record(fd.as_raw_fd(), &[chunk], &[])?;
    }
    Ok(())
}

/// One record as received.
struct Record {
    len: usize,
    truncated: bool,
    fds: Vec<OwnedFd>,
    fds_truncated: bool,
}

/// Control buffer with room for one more fd than allowed, so an excess is detectable.
const CMSG_WORDS: usize = (MAX_FDS + 1 + 8) * size_of::<libc::c_int>() / size_of::<u64>() + 4;

fn recv_record(fd: RawFd, buf: &mut [u8]) -> Result<Record, Errno> {
    let mut cbuf = [0u64; CMSG_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a plain C struct for which all-zero bytes is a valid value.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf.as_mut_ptr().cast();
    mh.msg_controllen = size_of::<[u64; CMSG_WORDS]>() as _;
    let n = loop {
        // SAFETY: `mh` points at `iov` (describing `buf`) and `cbuf`, both live and
        // writable for the call; the kernel writes at most the lengths given.
        let r = unsafe { libc::recvmsg(fd, &mut mh, libc::MSG_CMSG_CLOEXEC) };
        if r >= 0 {
            break r as usize;
        }
        match Errno::last_os_error() {
            Errno::EINTR => continue,
            e => return Err(e),
        }
    };
    let mut fds = Vec::new();
    // SAFETY: `mh` was filled by a successful recvmsg; its control fields describe `cbuf`.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(&mh) };
    while !c.is_null() {
        // SAFETY: CMSG_FIRSTHDR/CMSG_NXTHDR only return headers lying inside `cbuf`.
        let hdr = unsafe { std::ptr::read_unaligned(c) };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: CMSG_LEN is a pure computation.
            let base = unsafe { libc::CMSG_LEN(0) } as usize;
            let count = (hdr.cmsg_len as usize).saturating_sub(base) / size_of::<libc::c_int>();
            // SAFETY: `c` is a valid header inside `cbuf`; CMSG_DATA points after it.
            let data = unsafe { libc::CMSG_DATA(c) }.cast::<libc::c_int>();
            for i in 0..count {
                // SAFETY: the kernel wrote `count` ints after the header, within `cbuf`
                // (cmsg_len never exceeds the control length it reports).
                let raw = unsafe { std::ptr::read_unaligned(data.add(i)) };
                // SAFETY: SCM_RIGHTS installed `raw` as a new descriptor of this process
                // that nothing else owns; we take sole ownership here.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
        // SAFETY: `c` is a valid header of `mh`'s control buffer.
        c = unsafe { libc::CMSG_NXTHDR(&mh, c) };
    }
    Ok(Record {
        len: n,
        truncated: mh.msg_flags & libc::MSG_TRUNC != 0,
        fds_truncated: mh.msg_flags & libc::MSG_CTRUNC != 0,
        fds,
    })
}

/// Receives one message. `buf` is scratch space of at least [`RECORD_SIZE`] bytes.
/// Returns `Ok(None)` at end of stream.
pub(crate) fn recv_frame(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Option<Frame>, RecvError> {
    let raw = fd.as_raw_fd();
    let buf = &mut buf[..RECORD_SIZE];
    let rec = recv_record(raw, buf).map_err(RecvError::Io)?;
    if rec.len == 0 && !rec.truncated {
        // End of stream (an empty record is not a valid message either).
        return Ok(None);
    }
    let fatal = |request_id, err| RecvError::Fatal { request_id, err };
    if rec.len < HEADER_SIZE {
        return Err(fatal(None, ProtoError::Truncated));
    }
    let header = match Header::decode(&buf[..HEADER_SIZE]) {
        Ok(h) => h,
        Err(e) => {
            let mut id = [0u8; 8];
            id.copy_from_slice(&buf[..8]);
            return Err(fatal(Some(u64::from_le_bytes(id)), e));
        }
    };
    let rid = Some(header.request_id);
    if rec.truncated {
        return Err(fatal(rid, ProtoError::TooLarge(rec.len)));
    }
    let total = header.payload_len as usize;
    let got = rec.len - HEADER_SIZE;
    if got > total {
        return Err(fatal(rid, ProtoError::LengthMismatch));
    }
    if got < total && rec.len != RECORD_SIZE {
        // Only a full first record may be continued.
        return Err(fatal(rid, ProtoError::Truncated));
    }
    let mut payload = Vec::with_capacity(total);
    payload.extend_from_slice(&buf[HEADER_SIZE..rec.len]);
    let mut bad_fds = rec.fds_truncated || rec.fds.len() > MAX_FDS;
    let fds = rec.fds;
    while payload.len() < total {
        let r = recv_record(raw, buf).map_err(RecvError::Io)?;
        if r.len == 0 {
            return Err(fatal(rid, ProtoError::Truncated));
        }
        if r.truncated || payload.len() + r.len > total {
            return Err(fatal(rid, ProtoError::LengthMismatch));
        }
        if payload.len() + r.len < total && r.len != RECORD_SIZE {
            return Err(fatal(rid, ProtoError::Truncated));
        }
        // Descriptors only belong on the first record; these close when dropped.
        bad_fds |= !r.fds.is_empty() || r.fds_truncated;
        payload.extend_from_slice(&buf[..r.len]);
    }
    if bad_fds {
        // `fds` are dropped (closed) here.
        return Err(RecvError::Bad {
            header,
            err: ProtoError::BadFds,
        });
    }
    Ok(Some(Frame {
        header,
        payload,
        fds,
    }))
}
