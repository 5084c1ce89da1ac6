//! [`InetSocket`]: an application's `AF_INET`/`AF_INET6` socket (its file operations,
//! blocking rules, options), over a [`Stack`].

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use linux_abi::Errno;

use super::addr::{self, AF_INET, AF_INET6, Parsed};
use super::tcp::{self, Opts, Tcp};
use super::udp::{self, Udp};
use super::{
    IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, Inner, SOCK_DGRAM, SOCK_STREAM, Sock,
    Stack,
};
use crate::fs::{FileOps, UserMem};
use crate::waiter::{Events, WaitQueue, block_on, events};

/// `MSG_OOB`.
pub const MSG_OOB: u32 = 1;
/// `MSG_PEEK`.
pub const MSG_PEEK: u32 = 2;
/// `MSG_ERRQUEUE`.
pub const MSG_ERRQUEUE: u32 = 0x2000;
const SOCK_RAW: i32 = 3;
/// `MSG_TRUNC`.
pub const MSG_TRUNC: u32 = 0x20;
/// `MSG_DONTWAIT`.
pub const MSG_DONTWAIT: u32 = 0x40;
/// `MSG_WAITALL`.
pub const MSG_WAITALL: u32 = 0x100;

/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;
/// `IPPROTO_IP` (`SOL_IP`).
pub const SOL_IP: i32 = 0;
/// `IPPROTO_IPV6`.
pub const SOL_IPV6: i32 = 41;

/// What [`InetSocket::recv`] got.
#[derive(Debug, Default)]
pub struct Received {
    /// The bytes read.
    pub data: Vec<u8>,
    /// The datagram's full length (for `MSG_TRUNC`).
    pub full_len: usize,
    /// The sender's address (datagrams), as a `sockaddr` of the socket's family.
    pub from: Option<Vec<u8>>,
    /// Control messages, encoded (`struct cmsghdr` each, 8-byte aligned).
    pub control: Vec<u8>,
}

/// Appends one control message (`cmsg_len`, `cmsg_level`, `cmsg_type`, the data, padded
/// to `CMSG_SPACE`) to `out`.
pub fn push_cmsg(out: &mut Vec<u8>, level: i32, ty: i32, data: &[u8]) {
    out.extend_from_slice(&((16 + data.len()) as u64).to_ne_bytes());
    out.extend_from_slice(&level.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(8), 0);
}

/// What the socket system calls need from a socket of the Sentry's network families.
pub trait SocketOps: Send + Sync {
    /// `bind` to the `sockaddr` bytes `raw`.
    fn bind(&self, raw: &[u8]) -> Result<(), Errno>;
    /// `listen(backlog)`.
    fn listen(&self, _backlog: i32) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
    /// `connect` to the `sockaddr` bytes `raw`.
    fn connect(&self, raw: &[u8]) -> Result<(), Errno>;
    /// Sends `data` (to `to`, a `sockaddr`, for datagrams).
    fn send(&self, data: &[u8], to: Option<&[u8]>, flags: u32) -> Result<usize, Errno>;
    /// Receives up to `len` bytes.
    fn recv(&self, len: usize, flags: u32) -> Result<Received, Errno>;
    /// `shutdown(how)`.
    fn shutdown(&self, how: i32) -> Result<(), Errno>;
    /// `getsockname`.
    fn name(&self) -> Vec<u8>;
    /// `getpeername`.
    fn peer_name(&self) -> Result<Vec<u8>, Errno>;
    /// `getsockopt(level, name)`: the option's bytes.
    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno>;
    /// `setsockopt(level, name, val)`.
    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno>;
}

impl SocketOps for InetSocket {
    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        InetSocket::bind(self, raw)
    }
    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        InetSocket::listen(self, backlog)
    }
    fn connect(&self, raw: &[u8]) -> Result<(), Errno> {
        InetSocket::connect(self, raw)
    }
    fn send(&self, data: &[u8], to: Option<&[u8]>, flags: u32) -> Result<usize, Errno> {
        InetSocket::send(self, data, to, flags)
    }
    fn recv(&self, len: usize, flags: u32) -> Result<Received, Errno> {
        InetSocket::recv(self, len, flags)
    }
    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        InetSocket::shutdown(self, how)
    }
    fn name(&self) -> Vec<u8> {
        InetSocket::name(self)
    }
    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        InetSocket::peer_name(self)
    }
    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        InetSocket::getsockopt(self, level, name)
    }
    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        InetSocket::setsockopt(self, level, name, val)
    }
}

/// An `AF_INET`/`AF_INET6` socket.
#[derive(Debug)]
pub struct InetSocket {
    stack: Arc<Stack>,
    id: u64,
    family: i32,
    ty: i32,
    protocol: i32,
    queue: Arc<WaitQueue>,
    nonblock: AtomicBool,
}

fn timeout_is_eagain(e: Errno) -> Errno {
    if e == Errno::ETIMEDOUT {
        Errno::EAGAIN
    } else {
        e
    }
}

fn opts_mut(i: &mut Inner, id: u64) -> Result<&mut Opts, Errno> {
    match i.socks.get_mut(&id) {
        Some(Sock::Tcp(t)) => Ok(&mut t.opts),
        Some(Sock::Udp(u)) => Ok(&mut u.opts),
        None => Err(Errno::EBADF),
    }
}

fn int(v: i32) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

impl InetSocket {
    /// `socket(family, ty, protocol)` on `stack`: `ty` without flags.
    pub fn new(
        stack: &Arc<Stack>,
        family: i32,
        ty: i32,
        protocol: i32,
    ) -> Result<Arc<InetSocket>, Errno> {
        let protocol = Self::check_type(family, ty, protocol)?;
        let sock = match ty {
            SOCK_STREAM => Sock::Tcp(Tcp::new(family)),
            _ => Sock::Udp(Udp::new(
                family,
                protocol == IPPROTO_ICMP || protocol == IPPROTO_ICMPV6,
            )),
        };
        let queue = Arc::new(WaitQueue::new());
        let id = stack.add(sock, &queue);
        Ok(Arc::new(InetSocket {
            stack: stack.clone(),
            id,
            family,
            ty,
            protocol,
            queue,
            nonblock: AtomicBool::new(false),
        }))
    }

    /// What `socket(family, ty, protocol)` would make: its protocol, or Linux's error
    /// (`inet_create`'s order: the type, then the protocol, then the privilege).
    pub fn check_type(family: i32, ty: i32, protocol: i32) -> Result<i32, Errno> {
        if family != AF_INET && family != AF_INET6 {
            return Err(Errno::EAFNOSUPPORT);
        }
        match (ty, protocol) {
            (SOCK_STREAM, 0 | IPPROTO_TCP) => Ok(IPPROTO_TCP),
            (SOCK_DGRAM, 0 | IPPROTO_UDP) => Ok(IPPROTO_UDP),
            // Ping sockets; the caller checks `net.ipv4.ping_group_range`.
            (SOCK_DGRAM, IPPROTO_ICMP) if family == AF_INET => Ok(IPPROTO_ICMP),
            (SOCK_DGRAM, IPPROTO_ICMPV6) if family == AF_INET6 => Ok(IPPROTO_ICMPV6),
            (SOCK_STREAM | SOCK_DGRAM, _) => Err(Errno::EPROTONOSUPPORT),
            // A raw socket names its protocol: IPPROTO_IP is no wildcard there.
            (SOCK_RAW, 0) => Err(Errno::EPROTONOSUPPORT),
            // SOCK_RAW needs --net-raw; SOCK_SEQPACKET and others do not exist for IP.
            (SOCK_RAW, _) => Err(Errno::EPERM),
            (1..=6 | 10, _) => Err(Errno::ESOCKTNOSUPPORT),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Sets `O_NONBLOCK`.
    pub fn set_nonblock(&self, nb: bool) {
        self.nonblock.store(nb, Ordering::Relaxed);
    }

    fn nonblocking(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.nonblock.load(Ordering::Relaxed)
    }

    fn timeout(&self, receive: bool) -> Option<Instant> {
        let t = self.stack.with(|i| {
            opts_mut(i, self.id)
                .ok()
                .and_then(|o| if receive { o.rcvtimeo } else { o.sndtimeo })
        });
        t.and_then(|d| Instant::now().checked_add(d))
    }

    fn wait<T>(
        &self,
        nonblock: bool,
        receive: bool,
        mask: Events,
        mut op: impl FnMut(&mut Inner) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let mut attempt = || self.stack.with(|i| op(i));
        if nonblock {
            return attempt();
        }
        let deadline = self.timeout(receive);
        block_on(&[(&self.queue, mask | events::ALWAYS)], deadline, attempt)
            .map_err(timeout_is_eagain)
    }

    /// `bind` to the `sockaddr` bytes `raw`.
    pub fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        let a = match addr::parse(self.family, raw)? {
            Parsed::Addr(a) => a,
            // AF_UNSPEC is INADDR_ANY for an AF_INET socket only if the address is 0.
            Parsed::Unspec if self.family == AF_INET && raw.len() >= 8 && raw[4..8] == [0; 4] => {
                SocketAddr::new(
                    std::net::Ipv4Addr::UNSPECIFIED.into(),
                    u16::from_be_bytes([raw[2], raw[3]]),
                )
            }
            Parsed::Unspec => return Err(Errno::EAFNOSUPPORT),
        };
        self.stack.with(|i| match self.ty {
            SOCK_STREAM => tcp::bind(i, self.id, a),
            _ => udp::bind(i, self.id, a),
        })
    }

    /// `listen(backlog)`.
    pub fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if self.ty != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        self.stack.with(|i| tcp::listen(i, self.id, backlog))
    }

    /// `accept`: the new socket and its peer's address.
    pub fn accept(&self, nonblock: bool) -> Result<(Arc<InetSocket>, Vec<u8>), Errno> {
        if self.ty != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let nb = nonblock || self.nonblocking(0);
        let queue = Arc::new(WaitQueue::new());
        let (id, peer) = self.wait(nb, true, events::POLLIN, |i| {
            let t = tcp::accept(i, self.id)?;
            let peer = t.remote.unwrap_or(addr::any(self.family, 0));
            let local = t.local;
            let (v6only, reuseaddr) = (t.opts.v6only, t.opts.reuseaddr);
            let id = i.insert(Sock::Tcp(t), &queue);
            // The connection holds its port like the listener (Linux's inherited bind
            // bucket): a new bind needs SO_REUSEADDR on both while it lives.
            if let Some(local) = local {
                i.binds.push(super::Bind {
                    id,
                    proto: super::Proto::Tcp,
                    addr: local,
                    v6only,
                    reuseaddr,
                    reuseport: false,
                    listening: false,
                    orphan: false,
                });
            }
            Ok((id, peer))
        })?;
        let s = Arc::new(InetSocket {
            stack: self.stack.clone(),
            id,
            family: self.family,
            ty: self.ty,
            protocol: self.protocol,
            queue,
            nonblock: AtomicBool::new(false),
        });
        Ok((s, addr::format(self.family, peer)))
    }

    /// `connect` to the `sockaddr` bytes `raw`.
    pub fn connect(&self, raw: &[u8]) -> Result<(), Errno> {
        let to = match addr::parse(self.family, raw) {
            Ok(Parsed::Addr(a)) => Some(a),
            Ok(Parsed::Unspec) => None,
            Err(Errno::EAFNOSUPPORT) if self.ty == SOCK_DGRAM => return Err(Errno::EAFNOSUPPORT),
            Err(e) => return Err(e),
        };
        if self.ty == SOCK_DGRAM {
            return self.stack.with(|i| udp::connect(i, self.id, to));
        }
        let Some(to) = to else {
            // AF_UNSPEC on a TCP socket: disconnect; a fresh socket just succeeds.
            return Ok(());
        };
        match self.stack.with(|i| tcp::connect(i, self.id, to)) {
            Err(Errno::EINPROGRESS) => {}
            r => return r,
        }
        if self.nonblocking(0) {
            return Err(Errno::EINPROGRESS);
        }
        let deadline = self.timeout(false);
        block_on(&[(&self.queue, events::ALL)], deadline, || {
            self.stack.with(|i| tcp::connect_done(i, self.id))
        })
        .map_err(|e| {
            if e == Errno::ETIMEDOUT {
                Errno::EINPROGRESS
            } else {
                e
            }
        })
    }

    /// Sends `data` (to the `sockaddr` bytes `to`, for datagrams). A blocking stream send
    /// queues everything unless interrupted (then it reports what it queued).
    pub fn send(&self, data: &[u8], to: Option<&[u8]>, flags: u32) -> Result<usize, Errno> {
        let nb = self.nonblocking(flags);
        if self.ty == SOCK_DGRAM {
            // UDP has no urgent data (udp_sendmsg).
            if flags & MSG_OOB != 0 {
                return Err(Errno::EOPNOTSUPP);
            }
            let to = match to {
                Some(raw) => match addr::parse(self.family, raw)? {
                    Parsed::Addr(a) => Some(a),
                    Parsed::Unspec => return Err(Errno::EAFNOSUPPORT),
                },
                None => None,
            };
            return self.wait(nb, false, events::POLLOUT, |i| {
                udp::send(i, self.id, data, to)
            });
        }
        if to.is_some() {
            // Linux ignores the address on a connected stream, and wants one connected.
        }
        let mut sent = 0;
        loop {
            let r = self.wait(nb, false, events::POLLOUT, |i| {
                tcp::send(i, self.id, &data[sent..])
            });
            match r {
                Ok(n) => {
                    sent += n;
                    if sent >= data.len() || nb {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives up to `len` bytes.
    pub fn recv(&self, len: usize, flags: u32) -> Result<Received, Errno> {
        let nb = self.nonblocking(flags);
        let peek = flags & MSG_PEEK != 0;
        // No ICMP errors are queued (IP_RECVERR is not kept): the error queue is empty.
        if flags & MSG_ERRQUEUE != 0 {
            return Err(Errno::EAGAIN);
        }
        // TCP urgent data is never kept apart (it arrives in line), so there is none to
        // read out of band (tcp_recv_urg's EINVAL).
        if flags & MSG_OOB != 0 && self.ty == SOCK_STREAM {
            return Err(Errno::EINVAL);
        }
        if self.ty == SOCK_DGRAM {
            let (d, control) = self.wait(nb, true, events::POLLIN, |i| {
                let d = udp::recv(i, self.id, len, peek)?;
                let control = pktinfo(i, self.id, self.family, d.local);
                Ok((d, control))
            })?;
            return Ok(Received {
                data: d.data,
                full_len: d.full_len,
                from: Some(addr::format(self.family, d.from)),
                control,
            });
        }
        let mut buf = vec![0u8; len];
        let waitall = flags & MSG_WAITALL != 0 && !peek;
        let mut got = 0;
        loop {
            let r = self.wait(nb, true, events::POLLIN, |i| {
                tcp::recv(i, self.id, &mut buf[got..], peek)
            });
            match r {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if !waitall || got >= len || nb {
                        break;
                    }
                }
                Err(_) if got > 0 => break,
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        Ok(Received {
            full_len: got,
            data: buf,
            control: Vec::new(),
            from: None,
        })
    }

    /// `shutdown(how)`.
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        let (rd, wr) = match how {
            0 => (true, false),
            1 => (false, true),
            2 => (true, true),
            _ => return Err(Errno::EINVAL),
        };
        self.stack.with(|i| match self.ty {
            SOCK_STREAM => tcp::shutdown(i, self.id, rd, wr),
            _ => udp::shutdown(i, self.id, rd, wr),
        })
    }

    /// `getsockname`.
    pub fn name(&self) -> Vec<u8> {
        let a = self.stack.with(|i| match i.socks.get(&self.id) {
            Some(Sock::Tcp(t)) => t.local.or(t.bound),
            Some(Sock::Udp(_)) => udp::local(i, self.id),
            None => None,
        });
        addr::format(self.family, a.unwrap_or(addr::any(self.family, 0)))
    }

    /// `getpeername`.
    pub fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        let a = self.stack.with(|i| match i.socks.get(&self.id) {
            Some(Sock::Tcp(t))
                if t.listen.is_none() && t.conn.is_some() && !t.dead && !t.connecting =>
            {
                t.remote
            }
            Some(Sock::Tcp(t)) if t.was_connected && !t.dead => t.remote,
            Some(Sock::Udp(_)) => udp::peer(i, self.id),
            _ => None,
        });
        a.map(|a| addr::format(self.family, a))
            .ok_or(Errno::ENOTCONN)
    }

    /// Bytes readable now (`FIONREAD`).
    pub fn pending(&self) -> usize {
        self.stack.with(|i| match i.socks.get(&self.id) {
            Some(Sock::Tcp(t)) => match (t.listen.is_none(), t.conn) {
                (true, Some(h)) => i
                    .sockets
                    .get::<smoltcp::socket::tcp::Socket<'_>>(h)
                    .recv_queue(),
                _ => 0,
            },
            Some(Sock::Udp(_)) => udp::pending(i, self.id),
            None => 0,
        })
    }

    /// Bytes sent and not yet acknowledged (`SIOCOUTQ`).
    pub fn unsent(&self) -> usize {
        self.stack.with(|i| match i.socks.get(&self.id) {
            Some(Sock::Tcp(t)) => t.conn.map_or(0, |h| {
                i.sockets
                    .get::<smoltcp::socket::tcp::Socket<'_>>(h)
                    .send_queue()
            }),
            _ => 0,
        })
    }

    /// `getsockopt(level, name)`: the option's bytes.
    pub fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let tcp = self.ty == SOCK_STREAM;
        self.stack.with(|i| {
            if level == SOL_SOCKET {
                let err = match i.socks.get_mut(&self.id) {
                    Some(Sock::Tcp(t)) if name == 4 => t.error.take(),
                    Some(Sock::Udp(_)) if name == 4 => udp::take_error(i, self.id),
                    _ => None,
                };
                let listening =
                    matches!(i.socks.get(&self.id), Some(Sock::Tcp(t)) if t.listen.is_some());
                let o = opts_mut(i, self.id)?;
                return Ok(match name {
                    3 => int(self.ty),                   // SO_TYPE
                    4 => int(err.map_or(0, Errno::raw)), // SO_ERROR
                    38 => int(self.protocol),            // SO_PROTOCOL
                    39 => int(self.family),              // SO_DOMAIN
                    30 => int(i32::from(listening)),     // SO_ACCEPTCONN
                    2 => int(i32::from(o.reuseaddr)),
                    15 => int(i32::from(o.reuseport)),
                    9 => int(i32::from(o.keepalive)),
                    6 => int(i32::from(o.broadcast)),
                    7 => int(o.sndbuf as i32),
                    8 => int(o.rcvbuf as i32),
                    18 => int(o.rcvlowat),
                    19 => int(1),
                    13 => [
                        int(i32::from(o.linger.is_some())),
                        int(o.linger.unwrap_or(0) as i32),
                    ]
                    .concat(),
                    20 | 21 => {
                        let d =
                            if name == 20 { o.rcvtimeo } else { o.sndtimeo }.unwrap_or_default();
                        [
                            (d.as_secs() as i64).to_ne_bytes(),
                            i64::from(d.subsec_micros()).to_ne_bytes(),
                        ]
                        .concat()
                    }
                    17 => [
                        0i32.to_ne_bytes(),
                        (-1i32).to_ne_bytes(),
                        (-1i32).to_ne_bytes(),
                    ]
                    .concat(),
                    // SO_DEBUG, SO_DONTROUTE, SO_OOBINLINE, SO_NO_CHECK, SO_PRIORITY,
                    // SO_PASSCRED, SO_TIMESTAMP*, SO_MARK, SO_RXQ_OVFL, SO_BUSY_POLL...
                    1 | 5 | 10 | 11 | 12 | 16 | 29 | 35 | 36 | 40 | 46 | 63 | 64 => {
                        int(flag(o, level, name))
                    }
                    25 => Vec::new(), // SO_BINDTODEVICE: none
                    _ => return Err(Errno::ENOPROTOOPT),
                });
            }
            if level == IPPROTO_TCP && tcp {
                if name == 11 {
                    return tcp::info(i, self.id);
                }
                let o = opts_mut(i, self.id)?;
                return Ok(match name {
                    1 => int(i32::from(o.nodelay)),
                    2 => int(if o.maxseg == 0 { 536 } else { o.maxseg as i32 }),
                    3 => int(i32::from(o.cork)),
                    4 => int(o.keepidle as i32),
                    5 => int(o.keepintvl as i32),
                    6 => int(o.keepcnt as i32),
                    7 => int(6),  // TCP_SYNCNT
                    8 => int(60), // TCP_LINGER2
                    9 => int(o.defer_accept as i32),
                    10 => int(65_535), // TCP_WINDOW_CLAMP
                    12 => int(1),      // TCP_QUICKACK
                    13 => {
                        let mut v = o.congestion.as_bytes().to_vec();
                        v.resize(16, 0);
                        v
                    }
                    18 => int(o.user_timeout as i32),
                    23 | 25 | 30 => int(flag(o, level, name)),
                    _ => return Err(Errno::ENOPROTOOPT),
                });
            }
            if level == SOL_IP {
                let o = opts_mut(i, self.id)?;
                return Ok(match name {
                    1 => int(i32::from(o.tos)),
                    2 => int(i32::from(o.ttl.unwrap_or(64))),
                    4 => Vec::new(), // IP_OPTIONS
                    10 => int(flag_or(o, level, name, 1)),
                    14 => int(65_535), // IP_MTU
                    8 | 11 | 12 | 13 | 15 | 24 | 33 | 34 | 49 => {
                        int(flag_or(o, level, name, i32::from(name == 33 || name == 34)))
                    }
                    _ => return Err(Errno::ENOPROTOOPT),
                });
            }
            if level == SOL_IPV6 && self.family == AF_INET6 {
                let o = opts_mut(i, self.id)?;
                return Ok(match name {
                    26 => int(i32::from(o.v6only)),
                    16 => int(i32::from(o.ttl.unwrap_or(64))),
                    67 => int(i32::from(o.tos)),
                    18 | 19 | 23 | 25 | 49 | 24 | 51 | 66 => {
                        int(flag_or(o, level, name, i32::from(name == 18 || name == 19)))
                    }
                    _ => return Err(Errno::ENOPROTOOPT),
                });
            }
            if level == IPPROTO_UDP && !tcp {
                let o = opts_mut(i, self.id)?;
                return Ok(match name {
                    1 | 100 | 103 | 104 => int(flag(o, level, name)),
                    _ => return Err(Errno::ENOPROTOOPT),
                });
            }
            // A level the socket's protocols do not know: IPv4's getsockopt says
            // EOPNOTSUPP (do_ip_getsockopt), IPv6's ENOPROTOOPT.
            Err(if self.family == AF_INET {
                Errno::EOPNOTSUPP
            } else {
                Errno::ENOPROTOOPT
            })
        })
    }

    /// `setsockopt(level, name, val)`.
    pub fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let tcp = self.ty == SOCK_STREAM;
        let get_int = || -> Result<i32, Errno> {
            match val.len() {
                0 => Err(Errno::EINVAL),
                1..=3 => Ok(i32::from(val[0])),
                _ => Ok(i32::from_ne_bytes([val[0], val[1], val[2], val[3]])),
            }
        };
        self.stack.with(|i| {
            let bound = match i.socks.get(&self.id) {
                Some(Sock::Tcp(t)) => t.bound.is_some(),
                Some(Sock::Udp(u)) => u.bound.is_some(),
                None => false,
            };
            let o = opts_mut(i, self.id)?;
            match (level, name) {
                (SOL_SOCKET, 2) => o.reuseaddr = get_int()? != 0,
                (SOL_SOCKET, 15) => o.reuseport = get_int()? != 0,
                (SOL_SOCKET, 9) => o.keepalive = get_int()? != 0,
                (SOL_SOCKET, 6) => o.broadcast = get_int()? != 0,
                // Linux doubles the request for bookkeeping and enforces minimums.
                (SOL_SOCKET, 7 | 32) => {
                    o.sndbuf = (get_int()?.max(0) as usize)
                        .min(4 << 20)
                        .saturating_mul(2)
                        .max(4608)
                }
                (SOL_SOCKET, 8 | 33) => {
                    o.rcvbuf = (get_int()?.max(0) as usize)
                        .min(4 << 20)
                        .saturating_mul(2)
                        .max(2304)
                }
                (SOL_SOCKET, 18) => o.rcvlowat = get_int()?.max(1),
                (SOL_SOCKET, 19) => return Err(Errno::ENOPROTOOPT),
                (SOL_SOCKET, 13) => {
                    if val.len() < 8 {
                        return Err(Errno::EINVAL);
                    }
                    let on = i32::from_ne_bytes([val[0], val[1], val[2], val[3]]);
                    let secs = i32::from_ne_bytes([val[4], val[5], val[6], val[7]]);
                    o.linger = (on != 0).then_some(secs.max(0) as u32);
                }
                (SOL_SOCKET, 20 | 21) => {
                    if val.len() < 16 {
                        return Err(Errno::EINVAL);
                    }
                    let s = i64::from_ne_bytes(val[..8].try_into().unwrap_or_default());
                    let us = i64::from_ne_bytes(val[8..16].try_into().unwrap_or_default());
                    if !(0..1_000_000).contains(&us) {
                        return Err(Errno::EDOM);
                    }
                    let d = if s < 0 {
                        Some(Duration::from_nanos(1))
                    } else {
                        let d = Duration::new(s as u64, us as u32 * 1000);
                        (!d.is_zero()).then_some(d)
                    };
                    if name == 20 {
                        o.rcvtimeo = d
                    } else {
                        o.sndtimeo = d
                    }
                }
                (SOL_SOCKET, 25) => {
                    // SO_BINDTODEVICE: only "lo" (or nothing) exists.
                    let dev: Vec<u8> = val.iter().copied().take_while(|&b| b != 0).collect();
                    if !dev.is_empty() && dev != b"lo" {
                        return Err(Errno::ENODEV);
                    }
                }
                (SOL_SOCKET, 1 | 5 | 10 | 11 | 12 | 16 | 29 | 35 | 36 | 40 | 46 | 63 | 64) => {
                    set_flag(o, level, name, get_int()?)
                }
                (IPPROTO_TCP, 1) if tcp => o.nodelay = get_int()? != 0,
                (IPPROTO_TCP, 3) if tcp => o.cork = get_int()? != 0,
                (IPPROTO_TCP, 2) if tcp => {
                    let v = get_int()?;
                    if v != 0 && !(88..=65_535).contains(&v) {
                        return Err(Errno::EINVAL);
                    }
                    o.maxseg = v as u32;
                }
                (IPPROTO_TCP, 4 | 5) if tcp => {
                    let v = get_int()?;
                    if !(1..=32_767).contains(&v) {
                        return Err(Errno::EINVAL);
                    }
                    if name == 4 {
                        o.keepidle = v as u32
                    } else {
                        o.keepintvl = v as u32
                    }
                }
                (IPPROTO_TCP, 6) if tcp => {
                    let v = get_int()?;
                    if !(1..=127).contains(&v) {
                        return Err(Errno::EINVAL);
                    }
                    o.keepcnt = v as u32;
                }
                (IPPROTO_TCP, 9) if tcp => o.defer_accept = get_int()?.max(0) as u32,
                (IPPROTO_TCP, 18) if tcp => {
                    let v = get_int()?;
                    if v < 0 {
                        return Err(Errno::EINVAL);
                    }
                    o.user_timeout = v as u32;
                }
                (IPPROTO_TCP, 13) if tcp => {
                    let n: Vec<u8> = val.iter().copied().take_while(|&b| b != 0).collect();
                    o.congestion = match &n[..] {
                        b"cubic" => "cubic",
                        b"reno" => "reno",
                        _ => return Err(Errno::ENOENT),
                    };
                }
                (IPPROTO_TCP, 7 | 8 | 10 | 12 | 23 | 25 | 30) if tcp => {
                    set_flag(o, level, name, get_int()?)
                }
                (SOL_IP, 1) => o.tos = get_int()? as u8,
                (SOL_IP, 2) => {
                    let v = get_int()?;
                    o.ttl = match v {
                        -1 => None,
                        1..=255 => Some(v as u8),
                        _ => return Err(Errno::EINVAL),
                    };
                }
                (SOL_IP, 8 | 10 | 11 | 12 | 13 | 15 | 24 | 33 | 34 | 49) => {
                    set_flag(o, level, name, get_int()?)
                }
                (SOL_IP, 35..=40) if !tcp => {} // multicast membership: nothing to join on lo
                (SOL_IPV6, 26) if self.family == AF_INET6 => {
                    if bound {
                        return Err(Errno::EINVAL);
                    }
                    o.v6only = get_int()? != 0;
                }
                (SOL_IPV6, 16) if self.family == AF_INET6 => {
                    let v = get_int()?;
                    o.ttl = match v {
                        -1 => None,
                        0..=255 => Some(v as u8),
                        _ => return Err(Errno::EINVAL),
                    };
                }
                (SOL_IPV6, 67) if self.family == AF_INET6 => o.tos = get_int()? as u8,
                (SOL_IPV6, 18 | 19 | 23 | 24 | 25 | 49 | 51 | 66) if self.family == AF_INET6 => {
                    set_flag(o, level, name, get_int()?)
                }
                (SOL_IPV6, 20 | 21) if self.family == AF_INET6 && !tcp => {} // group membership
                (IPPROTO_UDP, 1 | 100 | 103 | 104) if !tcp => set_flag(o, level, name, get_int()?),
                _ => return Err(Errno::ENOPROTOOPT),
            }
            if tcp {
                tcp::reapply(i, self.id);
            } else {
                udp::reapply(i, self.id);
            }
            Ok(())
        })
    }
}

/// `IP_PKTINFO` (8) and `IPV6_PKTINFO` (50, asked for with `IPV6_RECVPKTINFO`, 49): the
/// interface a datagram came in on and the address it was sent to, for a socket that
/// asked (Linux's `ip_cmsg_recv_pktinfo`, `ip6_datagram_recv_specific_ctl`).
fn pktinfo(i: &mut Inner, id: u64, family: i32, local: Option<std::net::IpAddr>) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(local) = local else { return out };
    let Ok(o) = opts_mut(i, id) else { return out };
    let (v4, v6) = (flag(o, SOL_IP, 8) != 0, flag(o, SOL_IPV6, 49) != 0);
    let ifindex: i32 = i.interface_of(local);
    match local {
        std::net::IpAddr::V4(a) if v4 => {
            let mut d = ifindex.to_ne_bytes().to_vec();
            d.extend_from_slice(&a.octets()); // ipi_spec_dst
            d.extend_from_slice(&a.octets()); // ipi_addr
            push_cmsg(&mut out, SOL_IP, 8, &d);
        }
        std::net::IpAddr::V4(a) if v6 && family == AF_INET6 => {
            let mut d = a.to_ipv6_mapped().octets().to_vec();
            d.extend_from_slice(&ifindex.to_ne_bytes());
            push_cmsg(&mut out, SOL_IPV6, 50, &d);
        }
        std::net::IpAddr::V6(a) if v6 => {
            let mut d = a.octets().to_vec();
            d.extend_from_slice(&ifindex.to_ne_bytes());
            push_cmsg(&mut out, SOL_IPV6, 50, &d);
        }
        _ => {}
    }
    out
}

fn flag(o: &Opts, level: i32, name: i32) -> i32 {
    flag_or(o, level, name, 0)
}

fn flag_or(o: &Opts, level: i32, name: i32, default: i32) -> i32 {
    o.flags
        .iter()
        .find(|(k, _)| *k == (level, name))
        .map_or(default, |(_, v)| *v)
}

fn set_flag(o: &mut Opts, level: i32, name: i32, v: i32) {
    o.flags.retain(|(k, _)| *k != (level, name));
    o.flags.push(((level, name), v));
}

impl Drop for InetSocket {
    fn drop(&mut self) {
        let id = self.id;
        self.stack.with(|i| i.remove(id));
    }
}

impl FileOps for InetSocket {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let r = self.recv(buf.len(), 0)?;
        buf[..r.data.len()].copy_from_slice(&r.data);
        Ok(r.data.len())
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        if self.ty == SOCK_STREAM {
            return self.send(buf, None, 0);
        }
        self.send(buf, None, 0)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readable(&self) -> Option<u64> {
        Some(self.pending() as u64)
    }

    fn readiness(&self, mask: Events) -> Events {
        self.stack.with(|i| i.readiness(self.id)) & (mask | events::ALWAYS)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.set_nonblock(flags & linux_abi::flags::open::O_NONBLOCK != 0);
        Ok(())
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        const FIONREAD: u32 = 0x541B;
        const SIOCOUTQ: u32 = 0x5411;
        const SIOCOUTQNSD: u32 = 0x894B;
        const SIOCATMARK: u32 = 0x8905;
        let n = match cmd {
            // Whether the next byte is the urgent mark: never, as urgent data is in line.
            SIOCATMARK if self.ty == SOCK_STREAM => 0,
            FIONREAD => self.pending(),
            SIOCOUTQ | SIOCOUTQNSD => self.unsent(),
            _ => return super::ifreq::ioctl(&self.stack, cmd, arg, mem),
        };
        mem.copy_out(arg, &(n as i32).to_ne_bytes())?;
        Ok(0)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}
