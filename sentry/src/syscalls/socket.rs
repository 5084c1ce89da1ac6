//! Socket system calls: `socket`, `socketpair`, `bind`, `listen`, `accept4`, `connect`,
//! names, the send/receive family with control messages (`SCM_RIGHTS`,
//! `SCM_CREDENTIALS`), `shutdown` and socket options.
//!
//! `AF_UNIX` sockets are [`crate::fs::socket`]'s; `AF_INET` and `AF_INET6` sockets are the
//! network stack's ([`crate::net`], their calls in [`super::inet`]); every other family
//! gives `EAFNOSUPPORT`.

use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mode::S_IFSOCK;
use linux_abi::flags::open::*;

use super::SyscallEntry;
use super::fs::{install, make_socket_node, sigpipe, socket_key_at};
use super::inet::{self, inet};
use crate::fs::OpenFile;
use crate::fs::anon::anon_file;
use crate::fs::socket::*;
use crate::kernel::Task;

/// The socket system calls.
pub const ENTRIES: &[SyscallEntry] = crate::syscall_entries![
    SYS_SOCKET => socket(Int, Hex, Int) -> Fd = sys_socket;
    SYS_SOCKETPAIR => socketpair(Int, Hex, Int, Ptr) = sys_socketpair;
    SYS_BIND => bind(Fd, Ptr, Uint) = sys_bind;
    SYS_LISTEN => listen(Fd, Int) = sys_listen;
    SYS_ACCEPT => accept(Fd, Ptr, Ptr) -> Fd = sys_accept;
    SYS_ACCEPT4 => accept4(Fd, Ptr, Ptr, Hex) -> Fd = sys_accept4;
    SYS_CONNECT => connect(Fd, Ptr, Uint) = sys_connect;
    SYS_GETSOCKNAME => getsockname(Fd, Ptr, Ptr) = sys_getsockname;
    SYS_GETPEERNAME => getpeername(Fd, Ptr, Ptr) = sys_getpeername;
    SYS_SENDTO => sendto(Fd, Ptr, Uint, Hex, Ptr, Uint) = sys_sendto;
    SYS_RECVFROM => recvfrom(Fd, Ptr, Uint, Hex, Ptr, Ptr) = sys_recvfrom;
    SYS_SENDMSG => sendmsg(Fd, Ptr, Hex) = sys_sendmsg;
    SYS_RECVMSG => recvmsg(Fd, Ptr, Hex) = sys_recvmsg;
    SYS_SENDMMSG => sendmmsg(Fd, Ptr, Uint, Hex) = sys_sendmmsg;
    SYS_RECVMMSG => recvmmsg(Fd, Ptr, Uint, Hex, Ptr) = sys_recvmmsg;
    SYS_SHUTDOWN => shutdown(Fd, Int) = sys_shutdown;
    SYS_GETSOCKOPT => getsockopt(Fd, Int, Int, Ptr, Ptr) = sys_getsockopt;
    SYS_SETSOCKOPT => setsockopt(Fd, Int, Int, Ptr, Uint) = sys_setsockopt;
];

/// `AF_UNIX`.
pub const AF_UNIX: i32 = 1;
const SOCK_NONBLOCK: u32 = O_NONBLOCK;
const SOCK_CLOEXEC: u32 = O_CLOEXEC;
const SOL_SOCKET: i32 = 1;
const SCM_RIGHTS: i32 = 1;
const SCM_CREDENTIALS: i32 = 2;
/// Most descriptors in one `SCM_RIGHTS` message (`SCM_MAX_FD`).
const SCM_MAX_FD: usize = 253;
/// Longest `sun_path`.
const UNIX_PATH_MAX: usize = 108;
/// `sizeof(struct sockaddr_storage)`.
const SOCKADDR_STORAGE: u32 = 128;
/// Most iovecs (`UIO_MAXIOV`).
pub(super) const UIO_MAXIOV: u64 = 1024;

fn creds_of(t: &Task) -> Ucred {
    let c = t.creds();
    Ucred {
        pid: t.tgid(),
        uid: c.euid,
        gid: c.egid,
    }
}

fn new_socket_file(sock: Arc<UnixSocket>, flags: u32) -> Arc<OpenFile> {
    let nb = flags & SOCK_NONBLOCK;
    sock.set_nonblock(nb != 0);
    anon_file(
        "socket",
        S_IFSOCK | 0o777,
        O_RDWR | nb,
        Arc::new(SocketFile { sock }),
    )
}

fn socket_of(t: &Task, fd: i32) -> Result<Arc<UnixSocket>, Errno> {
    let f = t.fd_table().get(fd)?;
    f.ops()
        .as_any()
        .and_then(|a| a.downcast_ref::<SocketFile>())
        .map(|s| s.sock.clone())
        .ok_or(Errno::ENOTSOCK)
}

fn check_type(domain: i32, ty: u32, protocol: i32) -> Result<i32, Errno> {
    if domain != AF_UNIX {
        return Err(Errno::EAFNOSUPPORT);
    }
    if ty & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if protocol != 0 && protocol != AF_UNIX {
        return Err(Errno::EPROTONOSUPPORT);
    }
    Ok((ty & 0xf) as i32)
}

/// `socket(domain, type, protocol)`.
pub fn sys_socket(t: &Task, domain: i32, ty: u32, protocol: i32) -> Result<u64, Errno> {
    if domain == crate::net::addr::AF_INET
        || domain == crate::net::addr::AF_INET6
        || domain == crate::net::netlink::AF_NETLINK
    {
        return inet::socket(t, domain, ty, protocol);
    }
    let kind = check_type(domain, ty, protocol)?;
    let sock = UnixSocket::new(kind, creds_of(t), t.kernel().unix_names())?;
    install(t, new_socket_file(sock, ty), ty & SOCK_CLOEXEC != 0)
}

/// `socketpair(domain, type, protocol, sv)`.
pub fn sys_socketpair(
    t: &Task,
    domain: i32,
    ty: u32,
    protocol: i32,
    sv: u64,
) -> Result<u64, Errno> {
    if domain == crate::net::addr::AF_INET || domain == crate::net::addr::AF_INET6 {
        // Linux makes the first socket (socket()'s errors), then finds that IP has no
        // socketpair.
        if ty & !(0xf | SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        crate::net::InetSocket::check_type(domain, (ty & 0xf) as i32, protocol)?;
        return Err(Errno::EOPNOTSUPP);
    }
    let kind = check_type(domain, ty, protocol)?;
    let (a, b) = UnixSocket::pair(kind, creds_of(t), t.kernel().unix_names())?;
    let table = t.fd_table();
    let cloexec = ty & SOCK_CLOEXEC != 0;
    let fa = table.insert(new_socket_file(a, ty), cloexec)?;
    let fb = match table.insert(new_socket_file(b, ty), cloexec) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = table.remove(fa);
            return Err(e);
        }
    };
    if let Err(e) = t.mm().write_obj(sv, &[fa, fb]) {
        let _ = table.remove(fa);
        let _ = table.remove(fb);
        return Err(e);
    }
    Ok(0)
}

/// A parsed `sockaddr_un`.
enum Name {
    /// Only the family (autobind on `bind`).
    Unnamed,
    /// Abstract: the bytes after the leading NUL.
    Abstract(Vec<u8>),
    /// A filesystem path.
    Path(Vec<u8>),
}

fn read_sockaddr(t: &Task, addr: u64, len: u32) -> Result<Name, Errno> {
    let len = len as usize;
    if !(2..=2 + UNIX_PATH_MAX).contains(&len) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len];
    t.mm().copy_in(addr, &mut raw)?;
    if i32::from(u16::from_ne_bytes([raw[0], raw[1]])) != AF_UNIX {
        return Err(Errno::EINVAL);
    }
    let path = &raw[2..];
    if path.is_empty() {
        return Ok(Name::Unnamed);
    }
    if path[0] == 0 {
        return Ok(Name::Abstract(path[1..].to_vec()));
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Ok(Name::Path(path[..end].to_vec()))
}

/// Writes a `sockaddr_un` for `name` (the stored `sun_path` bytes) at `addr`, truncated
/// to the caller's length at `len_addr`, and the full length back there.
/// Copies the socket address `raw` out as Linux's `move_addr_to_user`: the caller's
/// length at `ulen` is read first (`EFAULT`), a negative one is `EINVAL`, at most that
/// many bytes go to `uaddr` (`EFAULT`), and the address's full length is stored back at
/// `ulen`. `getsockname` and `getpeername` always call it; `accept` and the receive
/// calls only when the caller passed an address buffer.
pub(super) fn move_addr_to_user(t: &Task, raw: &[u8], uaddr: u64, ulen: u64) -> Result<(), Errno> {
    let mm = t.mm();
    let len: i32 = mm.read_obj(ulen)?;
    let len = len.min(raw.len() as i32);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    if len > 0 {
        mm.copy_out(uaddr, &raw[..len as usize])?;
    }
    mm.write_obj(ulen, &(raw.len() as u32))?;
    Ok(())
}

/// The `sockaddr_un` of a Unix socket's name (`None`: unnamed, the family alone).
fn unix_sockaddr(name: Option<&[u8]>) -> Vec<u8> {
    let mut raw = (AF_UNIX as u16).to_ne_bytes().to_vec();
    if let Some(n) = name {
        raw.extend_from_slice(n);
        if n.first() != Some(&0) {
            raw.push(0);
        }
    }
    raw
}

/// Finds the socket a name refers to.
fn find(t: &Task, name: &Name) -> Result<Arc<UnixSocket>, Errno> {
    let key = match name {
        Name::Unnamed => return Err(Errno::EINVAL),
        Name::Abstract(a) => Key::Abstract(a.clone()),
        Name::Path(p) => socket_key_at(t, p)?,
    };
    t.kernel()
        .unix_names()
        .lookup(&key)
        .ok_or(Errno::ECONNREFUSED)
}

/// `bind(fd, addr, len)`.
pub fn sys_bind(t: &Task, fd: i32, addr: u64, len: u32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::bind(t, s, addr, len);
    }
    let sock = socket_of(t, fd)?;
    match read_sockaddr(t, addr, len)? {
        Name::Unnamed => sock.autobind()?,
        Name::Abstract(a) => {
            let mut stored = vec![0u8];
            stored.extend_from_slice(&a);
            sock.bind(stored, Key::Abstract(a))?;
        }
        Name::Path(p) => {
            if sock.is_bound() {
                return Err(Errno::EINVAL);
            }
            let key = make_socket_node(t, &p)?;
            sock.bind(p, key)?;
        }
    }
    Ok(0)
}

/// `listen(fd, backlog)`.
pub fn sys_listen(t: &Task, fd: i32, backlog: i32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::listen(s, backlog);
    }
    socket_of(t, fd)?.listen(backlog)?;
    Ok(0)
}

/// `accept4(fd, addr, len, flags)`.
pub fn sys_accept4(t: &Task, fd: i32, addr: u64, len: u64, flags: u32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        let _ = s;
        return inet::accept4(t, &f, addr, len, flags);
    }
    if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let sock = socket_of(t, fd)?;
    if sock.sock_type() == SOCK_DGRAM {
        return Err(Errno::EOPNOTSUPP);
    }
    let conn = sock.accept(false)?;
    if addr != 0 {
        let peer = conn.peer_name().ok().flatten();
        move_addr_to_user(t, &unix_sockaddr(peer.as_deref()), addr, len)?;
    }
    install(t, new_socket_file(conn, flags), flags & SOCK_CLOEXEC != 0)
}

/// `accept(fd, addr, len)`.
pub fn sys_accept(t: &Task, fd: i32, addr: u64, len: u64) -> Result<u64, Errno> {
    sys_accept4(t, fd, addr, len, 0)
}

/// `connect(fd, addr, len)`.
pub fn sys_connect(t: &Task, fd: i32, addr: u64, len: u32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::connect(t, s, addr, len);
    }
    let sock = socket_of(t, fd)?;
    let name = read_sockaddr(t, addr, len)?;
    let target = find(t, &name)?;
    sock.connect(&target, false)?;
    Ok(0)
}

/// `getsockname(fd, addr, len)`.
pub fn sys_getsockname(t: &Task, fd: i32, addr: u64, len: u64) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::getsockname(t, s, addr, len);
    }
    let sock = socket_of(t, fd)?;
    move_addr_to_user(t, &unix_sockaddr(sock.name().as_deref()), addr, len)?;
    Ok(0)
}

/// `getpeername(fd, addr, len)`.
pub fn sys_getpeername(t: &Task, fd: i32, addr: u64, len: u64) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::getpeername(t, s, addr, len);
    }
    let sock = socket_of(t, fd)?;
    let peer = sock.peer_name()?;
    move_addr_to_user(t, &unix_sockaddr(peer.as_deref()), addr, len)?;
    Ok(0)
}

fn send_common(
    t: &Task,
    sock: &UnixSocket,
    data: &[u8],
    rights: Vec<Arc<OpenFile>>,
    creds: Ucred,
    to: Option<Name>,
    flags: u32,
) -> Result<u64, Errno> {
    let target = match to {
        Some(n) => Some(find(t, &n)?),
        None => None,
    };
    if sock.sock_type() == SOCK_DGRAM && sock.passcred() && !sock.is_bound() {
        // Linux autobinds a datagram sender that has SO_PASSCRED set.
        sock.autobind()?;
    }
    let r = sock
        .send(data, rights, creds, target.as_ref(), flags)
        .map(|n| n as u64);
    if flags & MSG_NOSIGNAL != 0 {
        r
    } else {
        sigpipe(t, r)
    }
}

/// `sendto(fd, buf, len, flags, addr, addrlen)`.
pub fn sys_sendto(
    t: &Task,
    fd: i32,
    buf: u64,
    len: u64,
    flags: u32,
    addr: u64,
    alen: u32,
) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::sendto(t, s, buf, len, flags, addr, alen);
    }
    let sock = socket_of(t, fd)?;
    let len = len.min(1 << 24) as usize;
    let mut data = vec![0u8; len];
    t.mm().copy_in(buf, &mut data)?;
    let to = if addr == 0 {
        None
    } else {
        Some(read_sockaddr(t, addr, alen)?)
    };
    send_common(t, &sock, &data, Vec::new(), creds_of(t), to, flags)
}

/// `recvfrom(fd, buf, len, flags, addr, addrlen)`.
pub fn sys_recvfrom(
    t: &Task,
    fd: i32,
    buf: u64,
    len: u64,
    flags: u32,
    addr: u64,
    alen: u64,
) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::recvfrom(t, s, buf, len, flags, addr, alen);
    }
    let sock = socket_of(t, fd)?;
    let len = len.min(1 << 24) as usize;
    let r = sock.recv(len, flags)?;
    t.mm().copy_out(buf, &r.data)?;
    if addr != 0 {
        // Connection-mode sockets report no address (a length of 0).
        let from = match sock.sock_type() {
            SOCK_DGRAM => unix_sockaddr(r.from.as_deref()),
            _ => Vec::new(),
        };
        move_addr_to_user(t, &from, addr, alen)?;
    }
    Ok(
        if flags & MSG_TRUNC != 0 && sock.sock_type() != SOCK_STREAM {
            r.full_len as u64
        } else {
            r.data.len() as u64
        },
    )
}

/// A `struct msghdr` as read from the application.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct MsgHdr {
    pub(super) name: u64,
    pub(super) namelen: u32,
    iov: u64,
    iovlen: u64,
    pub(super) control: u64,
    pub(super) controllen: u64,
}

pub(super) const MSGHDR_SIZE: u64 = 56;

pub(super) fn read_msghdr(t: &Task, addr: u64) -> Result<MsgHdr, Errno> {
    let w: [u64; 7] = t.mm().read_obj(addr)?;
    // As Linux's `__copy_msghdr`: no name means no length; a negative one is refused; a
    // longer one than any address is cut to `sockaddr_storage`'s.
    let namelen = if w[0] == 0 { 0 } else { w[1] as u32 as i32 };
    if namelen < 0 {
        return Err(Errno::EINVAL);
    }
    let h = MsgHdr {
        name: w[0],
        namelen: (namelen as u32).min(SOCKADDR_STORAGE),
        iov: w[2],
        iovlen: w[3],
        control: w[4],
        controllen: w[5],
    };
    if h.iovlen > UIO_MAXIOV {
        return Err(Errno::EMSGSIZE);
    }
    Ok(h)
}

pub(super) fn read_iovecs(t: &Task, h: &MsgHdr) -> Result<Vec<(u64, u64)>, Errno> {
    let mut raw = vec![0u8; h.iovlen as usize * 16];
    t.mm().copy_in(h.iov, &mut raw)?;
    let mut total = 0u64;
    raw.chunks_exact(16)
        .map(|c| {
            let base = u64::from_ne_bytes(c[..8].try_into().unwrap_or_default());
            let len = u64::from_ne_bytes(c[8..].try_into().unwrap_or_default());
            if len > i64::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            total = total.saturating_add(len);
            if total > i64::MAX as u64 {
                return Err(Errno::EINVAL);
            }
            Ok((base, len))
        })
        .collect()
}

fn cmsg_align(n: usize) -> usize {
    (n + 7) & !7
}

/// Parses the control messages of a `sendmsg`.
fn parse_control(t: &Task, h: &MsgHdr, creds: &mut Ucred) -> Result<Vec<Arc<OpenFile>>, Errno> {
    let mut rights = Vec::new();
    if h.control == 0 || h.controllen == 0 {
        return Ok(rights);
    }
    if h.controllen > 1 << 16 {
        return Err(Errno::ENOBUFS);
    }
    let mut raw = vec![0u8; h.controllen as usize];
    t.mm().copy_in(h.control, &mut raw)?;
    let mut off = 0;
    while off + 16 <= raw.len() {
        let len = u64::from_ne_bytes(raw[off..off + 8].try_into().unwrap_or_default()) as usize;
        let level = i32::from_ne_bytes(raw[off + 8..off + 12].try_into().unwrap_or_default());
        let ty = i32::from_ne_bytes(raw[off + 12..off + 16].try_into().unwrap_or_default());
        if len < 16 || off + len > raw.len() {
            return Err(Errno::EINVAL);
        }
        let data = &raw[off + 16..off + len];
        match (level, ty) {
            (SOL_SOCKET, SCM_RIGHTS) => {
                let table = t.fd_table();
                for c in data.chunks_exact(4) {
                    let fd = i32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                    rights.push(table.get(fd)?);
                }
                if rights.len() > SCM_MAX_FD {
                    return Err(Errno::EINVAL);
                }
            }
            (SOL_SOCKET, SCM_CREDENTIALS) => {
                if data.len() < 12 {
                    return Err(Errno::EINVAL);
                }
                let pid = i32::from_ne_bytes(data[0..4].try_into().unwrap_or_default());
                let uid = u32::from_ne_bytes(data[4..8].try_into().unwrap_or_default());
                let gid = u32::from_ne_bytes(data[8..12].try_into().unwrap_or_default());
                let c = t.creds();
                use crate::kernel::{CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN};
                let uid_ok = c.has_cap(CAP_SETUID) || [c.uid, c.euid, c.suid].contains(&uid);
                let gid_ok = c.has_cap(CAP_SETGID) || [c.gid, c.egid, c.sgid].contains(&gid);
                if !(c.has_cap(CAP_SYS_ADMIN) || pid == t.tgid()) || !uid_ok || !gid_ok {
                    return Err(Errno::EPERM);
                }
                *creds = Ucred { pid, uid, gid };
            }
            _ => return Err(Errno::EINVAL),
        }
        off += cmsg_align(len);
    }
    Ok(rights)
}

fn sendmsg_one(t: &Task, sock: &UnixSocket, addr: u64, flags: u32) -> Result<u64, Errno> {
    let h = read_msghdr(t, addr)?;
    let iovs = read_iovecs(t, &h)?;
    let total: u64 = iovs.iter().map(|v| v.1).sum();
    let mut data = vec![0u8; total.min(1 << 24) as usize];
    let mut off = 0usize;
    let mm = t.mm();
    for (base, len) in iovs {
        let n = (len as usize).min(data.len() - off);
        mm.copy_in(base, &mut data[off..off + n])?;
        off += n;
    }
    let mut creds = creds_of(t);
    let rights = parse_control(t, &h, &mut creds)?;
    let to = if h.name == 0 || h.namelen == 0 {
        None
    } else {
        Some(read_sockaddr(t, h.name, h.namelen)?)
    };
    send_common(t, sock, &data, rights, creds, to, flags)
}

/// `sendmsg(fd, msg, flags)`.
pub fn sys_sendmsg(t: &Task, fd: i32, msg: u64, flags: u32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::sendmsg(t, s, msg, flags);
    }
    let sock = socket_of(t, fd)?;
    sendmsg_one(t, &sock, msg, flags)
}

fn recvmsg_one(t: &Task, sock: &UnixSocket, addr: u64, flags: u32) -> Result<u64, Errno> {
    let h = read_msghdr(t, addr)?;
    let iovs = read_iovecs(t, &h)?;
    let total: u64 = iovs.iter().map(|v| v.1).sum();
    let r = sock.recv(total.min(1 << 24) as usize, flags)?;
    let mm = t.mm();
    let mut off = 0usize;
    for (base, len) in iovs {
        if off >= r.data.len() {
            break;
        }
        let n = (len as usize).min(r.data.len() - off);
        mm.copy_out(base, &r.data[off..off + n])?;
        off += n;
    }
    let mut out_flags = 0u32;
    if r.full_len > r.data.len() && sock.sock_type() != SOCK_STREAM {
        out_flags |= MSG_TRUNC;
    }
    // Name.
    if h.name != 0 {
        let name = if sock.sock_type() == SOCK_DGRAM {
            r.from.clone()
        } else {
            None
        };
        let mut raw = (AF_UNIX as u16).to_ne_bytes().to_vec();
        if let Some(n) = &name {
            raw.extend_from_slice(n);
            if n.first() != Some(&0) {
                raw.push(0);
            }
        }
        if sock.sock_type() != SOCK_DGRAM {
            raw.clear();
        }
        let n = raw.len().min(h.namelen as usize);
        mm.copy_out(h.name, &raw[..n])?;
        mm.write_obj(addr + 8, &(raw.len() as u32))?;
    }
    // Control messages.
    let mut ctl = Vec::new();
    let cap = if h.control == 0 {
        0
    } else {
        h.controllen as usize
    };
    if let Some(c) = r.creds {
        let len = 16 + 12;
        if ctl.len() + len <= cap {
            ctl.extend_from_slice(&(len as u64).to_ne_bytes());
            ctl.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
            ctl.extend_from_slice(&SCM_CREDENTIALS.to_ne_bytes());
            ctl.extend_from_slice(&c.pid.to_ne_bytes());
            ctl.extend_from_slice(&c.uid.to_ne_bytes());
            ctl.extend_from_slice(&c.gid.to_ne_bytes());
            ctl.resize(cmsg_align(ctl.len()), 0);
        } else {
            out_flags |= MSG_CTRUNC;
        }
    }
    if !r.rights.is_empty() {
        let room = cap.saturating_sub(ctl.len() + 16) / 4;
        let n = r.rights.len().min(room);
        if n < r.rights.len() {
            out_flags |= MSG_CTRUNC;
        }
        if n > 0 {
            let table = t.fd_table();
            let cloexec = flags & MSG_CMSG_CLOEXEC != 0;
            let mut fds = Vec::with_capacity(n);
            for f in r.rights.iter().take(n) {
                match table.insert(f.clone(), cloexec) {
                    Ok(fd) => fds.push(fd),
                    Err(_) => {
                        out_flags |= MSG_CTRUNC;
                        break;
                    }
                }
            }
            let len = 16 + 4 * fds.len();
            ctl.extend_from_slice(&(len as u64).to_ne_bytes());
            ctl.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
            ctl.extend_from_slice(&SCM_RIGHTS.to_ne_bytes());
            for fd in fds {
                ctl.extend_from_slice(&fd.to_ne_bytes());
            }
            if cmsg_align(ctl.len()) <= cap {
                ctl.resize(cmsg_align(ctl.len()), 0);
            }
        }
    }
    if !ctl.is_empty() {
        mm.copy_out(h.control, &ctl)?;
    }
    mm.write_obj(addr + 40, &(ctl.len() as u64))?;
    mm.write_obj(addr + 48, &out_flags)?;
    Ok(
        if flags & MSG_TRUNC != 0 && sock.sock_type() != SOCK_STREAM {
            r.full_len as u64
        } else {
            r.data.len() as u64
        },
    )
}

/// `recvmsg(fd, msg, flags)`.
pub fn sys_recvmsg(t: &Task, fd: i32, msg: u64, flags: u32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::recvmsg(t, s, msg, flags);
    }
    let sock = socket_of(t, fd)?;
    recvmsg_one(t, &sock, msg, flags)
}

/// `sendmmsg(fd, msgvec, vlen, flags)`.
pub fn sys_sendmmsg(t: &Task, fd: i32, vec: u64, n: u32, flags: u32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::sendmmsg(t, s, vec, n, flags);
    }
    let sock = socket_of(t, fd)?;
    let n = n.min(UIO_MAXIOV as u32);
    let mut done = 0u32;
    for i in 0..n {
        let hdr = vec + u64::from(i) * (MSGHDR_SIZE + 8);
        match sendmsg_one(t, &sock, hdr, flags) {
            Ok(len) => t.mm().write_obj(hdr + MSGHDR_SIZE, &(len as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(u64::from(done))
}

/// `recvmmsg(fd, msgvec, vlen, flags, timeout)`: the timeout is only checked between
/// messages, as on Linux.
pub fn sys_recvmmsg(
    t: &Task,
    fd: i32,
    vec: u64,
    n: u32,
    flags: u32,
    _timeout: u64,
) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::recvmmsg(t, s, vec, n, flags, _timeout);
    }
    const MSG_WAITFORONE: u32 = 0x10000;
    let sock = socket_of(t, fd)?;
    let n = n.min(UIO_MAXIOV as u32);
    let mut done = 0u32;
    let mut fl = flags & !MSG_WAITFORONE;
    for i in 0..n {
        let hdr = vec + u64::from(i) * (MSGHDR_SIZE + 8);
        match recvmsg_one(t, &sock, hdr, fl) {
            Ok(len) => t.mm().write_obj(hdr + MSGHDR_SIZE, &(len as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
        if flags & MSG_WAITFORONE != 0 {
            fl |= MSG_DONTWAIT;
        }
    }
    Ok(u64::from(done))
}

/// `shutdown(fd, how)`.
pub fn sys_shutdown(t: &Task, fd: i32, how: i32) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::shutdown(s, how);
    }
    socket_of(t, fd)?.shutdown(how)?;
    Ok(0)
}

mod opt {
    pub const SO_DEBUG: i32 = 1;
    pub const SO_REUSEADDR: i32 = 2;
    pub const SO_TYPE: i32 = 3;
    pub const SO_ERROR: i32 = 4;
    pub const SO_DONTROUTE: i32 = 5;
    pub const SO_BROADCAST: i32 = 6;
    pub const SO_SNDBUF: i32 = 7;
    pub const SO_RCVBUF: i32 = 8;
    pub const SO_KEEPALIVE: i32 = 9;
    pub const SO_OOBINLINE: i32 = 10;
    pub const SO_LINGER: i32 = 13;
    pub const SO_REUSEPORT: i32 = 15;
    pub const SO_PASSCRED: i32 = 16;
    pub const SO_PEERCRED: i32 = 17;
    pub const SO_RCVLOWAT: i32 = 18;
    pub const SO_SNDLOWAT: i32 = 19;
    pub const SO_RCVTIMEO: i32 = 20;
    pub const SO_SNDTIMEO: i32 = 21;
    pub const SO_ACCEPTCONN: i32 = 30;
    pub const SO_SNDBUFFORCE: i32 = 32;
    pub const SO_RCVBUFFORCE: i32 = 33;
    pub const SO_PASSSEC: i32 = 34;
    pub const SO_PROTOCOL: i32 = 38;
    pub const SO_DOMAIN: i32 = 39;
}

/// `getsockopt(fd, level, name, val, len)`.
pub fn sys_getsockopt(
    t: &Task,
    fd: i32,
    level: i32,
    name: i32,
    val: u64,
    len: u64,
) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::getsockopt(t, s, level, name, val, len);
    }
    use opt::*;
    let sock = socket_of(t, fd)?;
    if level != SOL_SOCKET {
        return Err(Errno::ENOPROTOOPT);
    }
    let int = |v: i32| v.to_ne_bytes().to_vec();
    let bytes = match name {
        SO_TYPE => int(sock.sock_type()),
        SO_ERROR => int(sock.take_error().map_or(0, Errno::raw)),
        SO_SNDBUF => int(sock.sndbuf() as i32),
        SO_RCVBUF => int(sock.rcvbuf() as i32),
        SO_REUSEADDR => int(i32::from(sock.reuseaddr())),
        SO_PASSCRED => int(i32::from(sock.passcred())),
        SO_ACCEPTCONN => int(i32::from(sock.is_listening())),
        SO_DOMAIN => int(AF_UNIX),
        SO_PROTOCOL => int(0),
        SO_DEBUG | SO_DONTROUTE | SO_BROADCAST | SO_KEEPALIVE | SO_OOBINLINE | SO_REUSEPORT
        | SO_PASSSEC => int(0),
        SO_RCVLOWAT | SO_SNDLOWAT => int(1),
        SO_LINGER => {
            let (on, secs) = sock.linger();
            [on.to_ne_bytes(), secs.to_ne_bytes()].concat()
        }
        SO_RCVTIMEO | SO_SNDTIMEO => {
            let d = sock.timeout(name == SO_RCVTIMEO).unwrap_or_default();
            [
                (d.as_secs() as i64).to_ne_bytes(),
                i64::from(d.subsec_micros()).to_ne_bytes(),
            ]
            .concat()
        }
        SO_PEERCRED => {
            // An unconnected socket reports pid 0 and the overflow ids.
            let c = sock.peer_cred().unwrap_or(Ucred {
                pid: 0,
                uid: u32::MAX,
                gid: u32::MAX,
            });
            [
                c.pid.to_ne_bytes(),
                c.uid.to_ne_bytes(),
                c.gid.to_ne_bytes(),
            ]
            .concat()
        }
        _ => return Err(Errno::ENOPROTOOPT),
    };
    let mm = t.mm();
    let cap: u32 = mm.read_obj(len)?;
    if (cap as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let n = bytes.len().min(cap as usize);
    mm.copy_out(val, &bytes[..n])?;
    mm.write_obj(len, &(n as u32))?;
    Ok(0)
}

/// `setsockopt(fd, level, name, val, len)`.
pub fn sys_setsockopt(
    t: &Task,
    fd: i32,
    level: i32,
    name: i32,
    val: u64,
    len: u32,
) -> Result<u64, Errno> {
    let f = t.fd_table().get(fd)?;
    if let Some(s) = inet(&f) {
        return inet::setsockopt(t, s, level, name, val, len);
    }
    use opt::*;
    let sock = socket_of(t, fd)?;
    if level != SOL_SOCKET {
        return Err(Errno::ENOPROTOOPT);
    }
    let read_int = || -> Result<i32, Errno> {
        if len < 4 {
            return Err(Errno::EINVAL);
        }
        t.mm().read_obj::<i32>(val)
    };
    match name {
        SO_PASSCRED => sock.set_passcred(read_int()? != 0),
        SO_REUSEADDR => sock.set_reuseaddr(read_int()? != 0),
        SO_SNDBUF | SO_SNDBUFFORCE => sock.set_sndbuf(read_int()?.max(0) as usize),
        SO_RCVBUF | SO_RCVBUFFORCE => sock.set_rcvbuf(read_int()?.max(0) as usize),
        SO_LINGER => {
            if len < 8 {
                return Err(Errno::EINVAL);
            }
            let l: [i32; 2] = t.mm().read_obj(val)?;
            sock.set_linger((l[0], l[1]));
        }
        SO_DEBUG | SO_DONTROUTE | SO_BROADCAST | SO_KEEPALIVE | SO_OOBINLINE | SO_REUSEPORT
        | SO_RCVLOWAT | SO_SNDLOWAT | SO_PASSSEC => {
            read_int()?;
        }
        SO_RCVTIMEO | SO_SNDTIMEO => {
            if len < 16 {
                return Err(Errno::EINVAL);
            }
            let tv: [i64; 2] = t.mm().read_obj(val)?;
            if !(0..1_000_000).contains(&tv[1]) {
                return Err(Errno::EDOM);
            }
            // Negative seconds mean no wait at all on Linux; zero means forever.
            let d = std::time::Duration::new(tv[0].max(0) as u64, tv[1] as u32 * 1000);
            let d = if tv[0] < 0 {
                Some(std::time::Duration::from_nanos(1))
            } else {
                (!d.is_zero()).then_some(d)
            };
            sock.set_timeout(name == SO_RCVTIMEO, d);
        }
        _ => return Err(Errno::ENOPROTOOPT),
    }
    Ok(0)
}
