//! The socket system calls on `AF_INET`/`AF_INET6` sockets ([`crate::net`]): the
//! user-memory side (socket addresses, `msghdr`s, option buffers) of what
//! [`InetSocket`] does. [`super::socket`] dispatches here by the socket's type.

use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mode::S_IFSOCK;
use linux_abi::flags::open::{O_CLOEXEC, O_NONBLOCK, O_RDWR};

use super::fs::{install, sigpipe};
use super::socket::{MSGHDR_SIZE, MsgHdr, UIO_MAXIOV, move_addr_to_user, read_iovecs, read_msghdr};
use crate::fs::OpenFile;
use crate::fs::anon::anon_file;
use crate::fs::socket::MSG_CTRUNC;
use crate::kernel::{CAP_NET_BIND_SERVICE, Task};
use crate::net::addr::{AF_INET, AF_INET6};
use crate::net::hostinet::HostSocket;
use crate::net::netlink::{AF_NETLINK, NetlinkSocket};
use crate::net::socket::SocketOps;
use crate::net::socket::{MSG_PEEK, MSG_TRUNC};
use crate::net::{IPPROTO_ICMP, IPPROTO_ICMPV6, InetSocket};

const MSG_NOSIGNAL: u32 = 0x4000;
/// Longest socket address accepted (`sizeof(struct sockaddr_storage)`).
const SOCKADDR_MAX: u32 = 128;
/// Most bytes moved by one call (Linux caps at `MAX_RW_COUNT`; this bounds our copies).
const MAX_IO: u64 = 1 << 26;

/// The network socket (inet or netlink) behind a file, if it is one.
pub fn inet(f: &OpenFile) -> Option<&dyn SocketOps> {
    let a = f.ops().as_any()?;
    if let Some(s) = a.downcast_ref::<InetSocket>() {
        return Some(s);
    }
    if let Some(s) = a.downcast_ref::<HostSocket>() {
        return Some(s);
    }
    a.downcast_ref::<NetlinkSocket>()
        .map(|s| s as &dyn SocketOps)
}

/// Makes the file of a new socket.
pub fn socket_file(sock: Arc<InetSocket>, flags: u32) -> Arc<OpenFile> {
    let nb = flags & O_NONBLOCK;
    sock.set_nonblock(nb != 0);
    anon_file("TCP", S_IFSOCK | 0o777, O_RDWR | nb, sock)
}

/// `socket(AF_INET/AF_INET6, ...)`.
pub fn socket(t: &Task, domain: i32, ty: u32, protocol: i32) -> Result<u64, Errno> {
    if ty & !(0xf | O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if domain == AF_NETLINK {
        let sock = NetlinkSocket::new(t.kernel().net(), (ty & 0xf) as i32, protocol, t.tgid())?;
        sock.set_nonblock(ty & O_NONBLOCK != 0);
        let f = anon_file(
            "NETLINK",
            S_IFSOCK | 0o777,
            O_RDWR | (ty & O_NONBLOCK),
            sock,
        );
        return install(t, f, ty & O_CLOEXEC != 0);
    }
    if let Some(hn) = t.kernel().hostnet() {
        let sock = HostSocket::new(hn, t.kernel().net(), domain, (ty & 0xf) as i32, protocol)?;
        return install(t, host_socket_file(sock, ty), ty & O_CLOEXEC != 0);
    }
    let kind = (ty & 0xf) as i32;
    if InetSocket::check_type(domain, kind, protocol)
        .is_ok_and(|p| p == IPPROTO_ICMP || p == IPPROTO_ICMPV6)
    {
        may_ping(t)?;
    }
    let sock = InetSocket::new(t.kernel().net(), domain, kind, protocol)?;
    install(t, socket_file(sock, ty), ty & O_CLOEXEC != 0)
}

/// Ping sockets are for the groups of `net.ipv4.ping_group_range` (the caller's
/// effective group or a supplementary one), else `EACCES`, as Linux's `ping_init_sock`.
fn may_ping(t: &Task) -> Result<(), Errno> {
    let range = t
        .kernel()
        .sysctls()
        .get("net/ipv4/ping_group_range")
        .unwrap_or_default();
    let mut it = range
        .split_whitespace()
        .map(|v| v.parse::<i64>().unwrap_or(-1));
    let (lo, hi) = (it.next().unwrap_or(1), it.next().unwrap_or(0));
    let c = t.creds();
    let inside = |g: u32| (lo..=hi).contains(&i64::from(g));
    if inside(c.egid) || c.groups.iter().any(|&g| inside(g)) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Makes the file of a new host socket (`--network=host`).
fn host_socket_file(sock: Arc<HostSocket>, flags: u32) -> Arc<OpenFile> {
    let nb = flags & O_NONBLOCK;
    sock.set_nonblock(nb != 0);
    anon_file("TCP", S_IFSOCK | 0o777, O_RDWR | nb, sock)
}

fn read_addr(t: &Task, addr: u64, len: u32) -> Result<Vec<u8>, Errno> {
    if len > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    t.mm().copy_in(addr, &mut raw)?;
    Ok(raw)
}

/// The first port that needs no privilege to bind (Linux's default
/// `net.ipv4.ip_unprivileged_port_start`).
const UNPRIVILEGED_PORT_START: u16 = 1024;

/// `bind`: a port below 1024 needs `CAP_NET_BIND_SERVICE` (`EACCES`), checked before
/// the address is (as Linux's `inet_bind`).
pub fn bind(t: &Task, s: &dyn SocketOps, addr: u64, len: u32) -> Result<u64, Errno> {
    let raw = read_addr(t, addr, len)?;
    if raw.len() >= 4 {
        let family = i32::from(u16::from_ne_bytes([raw[0], raw[1]]));
        let port = u16::from_be_bytes([raw[2], raw[3]]);
        if (family == AF_INET || family == AF_INET6)
            && port != 0
            && port < UNPRIVILEGED_PORT_START
            && !t.creds().has_cap(CAP_NET_BIND_SERVICE)
        {
            return Err(Errno::EACCES);
        }
    }
    s.bind(&raw)?;
    Ok(0)
}

/// `listen`.
pub fn listen(s: &dyn SocketOps, backlog: i32) -> Result<u64, Errno> {
    s.listen(backlog)?;
    Ok(0)
}

/// `accept4`.
pub fn accept4(t: &Task, f: &OpenFile, addr: u64, len: u64, flags: u32) -> Result<u64, Errno> {
    if flags & !(O_NONBLOCK | O_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    if addr != 0 && len != 0 {
        // Check the length before taking a connection off the queue.
        let cap: i32 = t.mm().read_obj(len)?;
        if cap < 0 {
            return Err(Errno::EINVAL);
        }
    }
    let any = f.ops().as_any();
    if let Some(s) = any.and_then(|a| a.downcast_ref::<HostSocket>()) {
        let (conn, peer) = s.accept(false)?;
        if addr != 0 {
            move_addr_to_user(t, &peer, addr, len)?;
        }
        return install(t, host_socket_file(conn, flags), flags & O_CLOEXEC != 0);
    }
    let Some(s) = any.and_then(|a| a.downcast_ref::<InetSocket>()) else {
        return Err(Errno::EOPNOTSUPP);
    };
    let (conn, peer) = s.accept(false)?;
    if addr != 0 {
        move_addr_to_user(t, &peer, addr, len)?;
    }
    install(t, socket_file(conn, flags), flags & O_CLOEXEC != 0)
}

/// `connect`.
pub fn connect(t: &Task, s: &dyn SocketOps, addr: u64, len: u32) -> Result<u64, Errno> {
    s.connect(&read_addr(t, addr, len)?)?;
    Ok(0)
}

/// `getsockname`.
pub fn getsockname(t: &Task, s: &dyn SocketOps, addr: u64, len: u64) -> Result<u64, Errno> {
    move_addr_to_user(t, &s.name(), addr, len)?;
    Ok(0)
}

/// `getpeername`.
pub fn getpeername(t: &Task, s: &dyn SocketOps, addr: u64, len: u64) -> Result<u64, Errno> {
    let p = s.peer_name()?;
    move_addr_to_user(t, &p, addr, len)?;
    Ok(0)
}

fn finish_send(t: &Task, r: Result<usize, Errno>, flags: u32) -> Result<u64, Errno> {
    let r = r.map(|n| n as u64);
    if flags & MSG_NOSIGNAL != 0 {
        r
    } else {
        sigpipe(t, r)
    }
}

/// `sendto`.
pub fn sendto(
    t: &Task,
    s: &dyn SocketOps,
    buf: u64,
    len: u64,
    flags: u32,
    addr: u64,
    alen: u32,
) -> Result<u64, Errno> {
    let mut data = vec![0u8; len.min(MAX_IO) as usize];
    t.mm().copy_in(buf, &mut data)?;
    let to = if addr == 0 {
        None
    } else {
        Some(read_addr(t, addr, alen)?)
    };
    finish_send(t, s.send(&data, to.as_deref(), flags), flags)
}

/// `recvfrom`.
pub fn recvfrom(
    t: &Task,
    s: &dyn SocketOps,
    buf: u64,
    len: u64,
    flags: u32,
    addr: u64,
    alen: u64,
) -> Result<u64, Errno> {
    let r = s.recv(len.min(MAX_IO) as usize, flags)?;
    t.mm().copy_out(buf, &r.data)?;
    if addr != 0 {
        move_addr_to_user(t, r.from.as_deref().unwrap_or_default(), addr, alen)?;
    }
    Ok(if flags & MSG_TRUNC != 0 {
        r.full_len
    } else {
        r.data.len()
    } as u64)
}

fn sendmsg_one(t: &Task, s: &dyn SocketOps, addr: u64, flags: u32) -> Result<u64, Errno> {
    let h: MsgHdr = read_msghdr(t, addr)?;
    let iovs = read_iovecs(t, &h)?;
    let total: u64 = iovs.iter().map(|v| v.1).sum();
    let mut data = vec![0u8; total.min(MAX_IO) as usize];
    let mut off = 0usize;
    let mm = t.mm();
    for (base, len) in iovs {
        let n = (len as usize).min(data.len() - off);
        mm.copy_in(base, &mut data[off..off + n])?;
        off += n;
    }
    let to = if h.name == 0 || h.namelen == 0 {
        None
    } else {
        Some(read_addr(t, h.name, h.namelen)?)
    };
    finish_send(t, s.send(&data, to.as_deref(), flags), flags)
}

fn recvmsg_one(t: &Task, s: &dyn SocketOps, addr: u64, flags: u32) -> Result<u64, Errno> {
    let h = read_msghdr(t, addr)?;
    let iovs = read_iovecs(t, &h)?;
    let total: u64 = iovs.iter().map(|v| v.1).sum();
    let r = s.recv(total.min(MAX_IO) as usize, flags)?;
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
    if r.full_len > r.data.len() {
        out_flags |= MSG_TRUNC;
    }
    if h.name != 0 {
        match &r.from {
            Some(from) => {
                let n = from.len().min(h.namelen as usize);
                mm.copy_out(h.name, &from[..n])?;
                mm.write_obj(addr + 8, &(from.len() as u32))?;
            }
            None => mm.write_obj(addr + 8, &0u32)?,
        }
    }
    // Control messages: whole ones that fit (MSG_CTRUNC when one does not).
    let mut fit = 0usize;
    let mut pos = 0usize;
    while pos + 16 <= r.control.len() {
        let mut len = [0u8; 8];
        len.copy_from_slice(&r.control[pos..pos + 8]);
        let space = (u64::from_ne_bytes(len) as usize).next_multiple_of(8);
        if h.control == 0 || pos + space.min(r.control.len() - pos) > h.controllen as usize {
            out_flags |= MSG_CTRUNC;
            break;
        }
        pos += space.min(r.control.len() - pos);
        fit = pos;
    }
    if fit > 0 {
        mm.copy_out(h.control, &r.control[..fit])?;
    }
    mm.write_obj(addr + 40, &(fit as u64))?;
    mm.write_obj(addr + 48, &out_flags)?;
    Ok(if flags & MSG_TRUNC != 0 {
        r.full_len
    } else {
        r.data.len()
    } as u64)
}

/// `sendmsg`.
pub fn sendmsg(t: &Task, s: &dyn SocketOps, msg: u64, flags: u32) -> Result<u64, Errno> {
    sendmsg_one(t, s, msg, flags)
}

/// `recvmsg`.
pub fn recvmsg(t: &Task, s: &dyn SocketOps, msg: u64, flags: u32) -> Result<u64, Errno> {
    recvmsg_one(t, s, msg, flags)
}

/// `sendmmsg`.
pub fn sendmmsg(t: &Task, s: &dyn SocketOps, vec: u64, n: u32, flags: u32) -> Result<u64, Errno> {
    let n = n.min(UIO_MAXIOV as u32);
    let mut done = 0u32;
    for k in 0..n {
        let hdr = vec + u64::from(k) * (MSGHDR_SIZE + 8);
        match sendmsg_one(t, s, hdr, flags) {
            Ok(len) => t.mm().write_obj(hdr + MSGHDR_SIZE, &(len as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
    }
    Ok(u64::from(done))
}

/// `recvmmsg` (the timeout is checked between messages, as on Linux).
pub fn recvmmsg(
    t: &Task,
    s: &dyn SocketOps,
    vec: u64,
    n: u32,
    flags: u32,
    timeout: u64,
) -> Result<u64, Errno> {
    const MSG_WAITFORONE: u32 = 0x10000;
    const MSG_DONTWAIT: u32 = 0x40;
    let deadline = if timeout == 0 {
        None
    } else {
        let ts: [i64; 2] = t.mm().read_obj(timeout)?;
        if ts[0] < 0 || !(0..1_000_000_000).contains(&ts[1]) {
            return Err(Errno::EINVAL);
        }
        std::time::Instant::now().checked_add(std::time::Duration::new(ts[0] as u64, ts[1] as u32))
    };
    let n = n.min(UIO_MAXIOV as u32);
    let mut done = 0u32;
    let mut fl = flags & !MSG_WAITFORONE;
    for k in 0..n {
        let hdr = vec + u64::from(k) * (MSGHDR_SIZE + 8);
        match recvmsg_one(t, s, hdr, fl) {
            Ok(len) => t.mm().write_obj(hdr + MSGHDR_SIZE, &(len as u32))?,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        done += 1;
        if flags & MSG_WAITFORONE != 0 {
            fl |= MSG_DONTWAIT;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
    }
    let _ = MSG_PEEK;
    Ok(u64::from(done))
}

/// `shutdown`.
pub fn shutdown(s: &dyn SocketOps, how: i32) -> Result<u64, Errno> {
    s.shutdown(how)?;
    Ok(0)
}

/// `getsockopt`.
pub fn getsockopt(
    t: &Task,
    s: &dyn SocketOps,
    level: i32,
    name: i32,
    val: u64,
    len: u64,
) -> Result<u64, Errno> {
    let mm = t.mm();
    let cap: i32 = mm.read_obj(len)?;
    if cap < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = s.getsockopt(level, name)?;
    let n = bytes.len().min(cap as usize);
    mm.copy_out(val, &bytes[..n])?;
    mm.write_obj(len, &(n as u32))?;
    Ok(0)
}

/// `setsockopt`.
pub fn setsockopt(
    t: &Task,
    s: &dyn SocketOps,
    level: i32,
    name: i32,
    val: u64,
    len: u32,
) -> Result<u64, Errno> {
    if (len as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len.min(4096) as usize];
    if !raw.is_empty() {
        t.mm().copy_in(val, &mut raw)?;
    }
    s.setsockopt(level, name, &raw)?;
    Ok(0)
}
