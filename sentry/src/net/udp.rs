//! UDP sockets: Linux's rules (association, autobind, `MSG_TRUNC`) around smoltcp's UDP;
//! and ICMP echo ("ping") sockets, `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)` and
//! `(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)`, which follow the same datagram rules around
//! smoltcp's ICMP socket, as Linux's `net/ipv4/ping.c`: the port of the socket's address
//! is its echo identifier (its own port space), what the application sends is an echo
//! request (type and code checked, identifier and checksum filled in), and what it
//! receives are the echo replies to its identifier, header included.

use std::net::SocketAddr;

use linux_abi::Errno;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::icmp;
use smoltcp::socket::udp::{self, PacketBuffer, PacketMetadata, UdpMetadata};
use smoltcp::wire::IpListenEndpoint;

use super::addr::{self, AF_INET, AF_INET6};
use super::tcp::Opts;
use super::{Bind, Inner, Proto, Sock};
use crate::waiter::{Events, events};

/// Linux's default `SO_RCVBUF`/`SO_SNDBUF` for UDP (`rmem_default`).
pub const DEFAULT_BUF: usize = 212_992;
/// The largest UDP payload over IPv4 (65535 - 20 - 8); IPv6 allows 65527.
const MAX_PAYLOAD_V4: usize = 65_507;
const MAX_PAYLOAD_V6: usize = 65_527;
/// Datagrams a socket's queues hold at most.
const MAX_PACKETS: usize = 512;

/// A UDP socket's Linux-side state.
#[derive(Debug)]
pub(crate) struct Udp {
    pub family: i32,
    pub opts: Opts,
    pub handle: Option<SocketHandle>,
    pub bound: Option<SocketAddr>,
    /// The association made by `connect`.
    pub peer: Option<SocketAddr>,
    pub shut_rd: bool,
    pub shut_wr: bool,
    pub error: Option<Errno>,
    /// An ICMP echo ("ping") socket rather than UDP.
    pub ping: bool,
    /// A ping socket's next echo reply, taken out of smoltcp's queue (`MSG_PEEK`).
    pub stash: Option<(Vec<u8>, SocketAddr)>,
}

/// ICMP echo request and reply types, for IPv4 and IPv6.
const ECHO_REQUEST: [u8; 2] = [8, 128];
const ECHO_REPLY: [u8; 2] = [0, 129];
/// The size of an ICMP echo header (type, code, checksum, identifier, sequence).
const ICMP_HEADER: usize = 8;

/// A received datagram.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub data: Vec<u8>,
    pub full_len: usize,
    pub from: SocketAddr,
    /// The address it was sent to (`IP_PKTINFO`), where known.
    pub local: Option<std::net::IpAddr>,
}

impl Udp {
    pub(crate) fn new(family: i32, ping: bool) -> Udp {
        Udp {
            family,
            opts: Opts::new(DEFAULT_BUF, DEFAULT_BUF),
            handle: None,
            bound: None,
            peer: None,
            shut_rd: false,
            shut_wr: false,
            error: None,
            ping,
            stash: None,
        }
    }

    /// The queue lengths of the smoltcp socket (receive, send).
    fn queues(&self, set: &SocketSet<'static>) -> (usize, usize) {
        match self.handle {
            Some(h) if self.ping => {
                let s = set.get::<icmp::Socket<'_>>(h);
                (s.recv_queue(), s.send_queue())
            }
            Some(h) => {
                let s = set.get::<udp::Socket<'_>>(h);
                (s.recv_queue(), s.send_queue())
            }
            None => (0, 0),
        }
    }

    pub(crate) fn snapshot(
        &self,
        set: &SocketSet<'static>,
        ev: Events,
    ) -> (Events, usize, usize, u8) {
        let (rx, tx) = self.queues(set);
        (ev, rx, tx, 0)
    }

    pub(crate) fn readiness(&mut self, set: &mut SocketSet<'static>) -> Events {
        if self.ping
            && let Some(h) = self.handle
        {
            // Readable only with a reply the application is to see.
            ping_fill(self, set.get_mut::<icmp::Socket<'_>>(h));
        }
        use events::*;
        let mut ev = 0;
        if self.error.is_some() {
            ev |= POLLERR;
        }
        if self.shut_rd {
            ev |= POLLIN | POLLRDNORM | POLLRDHUP;
        }
        if self.shut_rd && self.shut_wr {
            ev |= POLLHUP;
        }
        let (recv, send) = match self.handle {
            Some(h) if self.ping => {
                let s = set.get::<icmp::Socket<'_>>(h);
                (self.stash.is_some(), s.can_send())
            }
            Some(h) => {
                let s = set.get::<udp::Socket<'_>>(h);
                (s.can_recv(), s.can_send())
            }
            None => (false, true),
        };
        if recv {
            ev |= POLLIN | POLLRDNORM;
        }
        if send {
            ev |= POLLOUT | POLLWRNORM;
        }
        ev
    }

    pub(crate) fn row(
        &self,
        set: &SocketSet<'static>,
    ) -> Vec<(SocketAddr, SocketAddr, u8, usize, usize)> {
        let any = addr::any(self.family, 0);
        match (self.handle, self.bound) {
            (Some(_), Some(b)) => {
                let (rx, tx) = self.queues(set);
                // UDP sockets show TCP_CLOSE (7), or TCP_ESTABLISHED (1) when associated.
                let st = if self.peer.is_some() { 1 } else { 7 };
                vec![(b, self.peer.unwrap_or(any), st, tx, rx)]
            }
            _ => Vec::new(),
        }
    }
}

fn parts(i: &mut Inner, id: u64) -> Result<(&mut Udp, &mut SocketSet<'static>), Errno> {
    match i.socks.get_mut(&id) {
        Some(Sock::Udp(u)) => Ok((u, &mut i.sockets)),
        _ => Err(Errno::EBADF),
    }
}

pub(crate) fn bind(i: &mut Inner, id: u64, a: SocketAddr) -> Result<(), Errno> {
    let (u, _) = parts(i, id)?;
    if u.bound.is_some() {
        return Err(Errno::EINVAL);
    }
    if u.family == AF_INET && a.is_ipv6() {
        return Err(Errno::EAFNOSUPPORT);
    }
    if u.family == AF_INET6 && a.is_ipv4() && u.opts.v6only {
        return Err(Errno::EADDRNOTAVAIL);
    }
    let b = Bind {
        id,
        proto: if u.ping { Proto::Ping } else { Proto::Udp },
        addr: a,
        v6only: u.opts.v6only,
        reuseaddr: u.opts.reuseaddr,
        reuseport: u.opts.reuseport,
        listening: false,
        orphan: false,
    };
    let got = i.bind(b)?;
    let (u, set) = parts(i, id)?;
    if u.ping {
        let rx = icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; MAX_PACKETS],
            vec![0u8; u.opts.rcvbuf.clamp(MAX_PAYLOAD_V6 + 1, 4 << 20)],
        );
        let tx = icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; MAX_PACKETS],
            vec![0u8; u.opts.sndbuf.clamp(MAX_PAYLOAD_V6 + 1, 4 << 20)],
        );
        let mut s = icmp::Socket::new(rx, tx);
        s.set_hop_limit(Some(u.opts.ttl.unwrap_or(64)));
        s.bind(icmp::Endpoint::Ident(got.port()))
            .map_err(|_| Errno::EINVAL)?;
        u.handle = Some(set.add(s));
        u.bound = Some(got);
        return Ok(());
    }
    let rx = PacketBuffer::new(
        vec![PacketMetadata::EMPTY; MAX_PACKETS],
        vec![0u8; u.opts.rcvbuf.clamp(MAX_PAYLOAD_V6 + 1, 4 << 20)],
    );
    let tx = PacketBuffer::new(
        vec![PacketMetadata::EMPTY; MAX_PACKETS],
        vec![0u8; u.opts.sndbuf.clamp(MAX_PAYLOAD_V6 + 1, 4 << 20)],
    );
    let mut s = udp::Socket::new(rx, tx);
    s.set_hop_limit(u.opts.ttl);
    let laddr = (!got.ip().is_unspecified()).then(|| addr::to_ip(got.ip()));
    s.bind(IpListenEndpoint {
        addr: laddr,
        port: got.port(),
    })
    .map_err(|_| Errno::EINVAL)?;
    u.handle = Some(set.add(s));
    u.bound = Some(got);
    Ok(())
}

fn autobind(i: &mut Inner, id: u64) -> Result<(), Errno> {
    let (u, _) = parts(i, id)?;
    if u.bound.is_none() {
        let fam = u.family;
        bind(i, id, addr::any(fam, 0))?;
    }
    Ok(())
}

/// `connect`: sets (`Some`) or dissolves (`None`) the association.
pub(crate) fn connect(i: &mut Inner, id: u64, to: Option<SocketAddr>) -> Result<(), Errno> {
    let Some(mut to) = to else {
        parts(i, id)?.0.peer = None;
        return Ok(());
    };
    {
        let (u, _) = parts(i, id)?;
        if u.family == AF_INET && to.is_ipv6() {
            return Err(Errno::EAFNOSUPPORT);
        }
    }
    if to.ip().is_unspecified() {
        to.set_ip(match to {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    if !i.routable(to.ip()) {
        return Err(Errno::ENETUNREACH);
    }
    autobind(i, id)?;
    parts(i, id)?.0.peer = Some(to);
    Ok(())
}

/// Sends one datagram to `to` (or the associated peer).
pub(crate) fn send(
    i: &mut Inner,
    id: u64,
    data: &[u8],
    to: Option<SocketAddr>,
) -> Result<usize, Errno> {
    let (u, _) = parts(i, id)?;
    if u.shut_wr {
        return Err(Errno::EPIPE);
    }
    if let Some(e) = u.error.take() {
        return Err(e);
    }
    let mut dst = match (to, u.peer) {
        (Some(t), _) => t,
        (None, Some(p)) => p,
        (None, None) => return Err(Errno::EDESTADDRREQ),
    };
    if u.family == AF_INET && dst.is_ipv6() {
        return Err(Errno::EAFNOSUPPORT);
    }
    let max = if dst.is_ipv4() {
        MAX_PAYLOAD_V4
    } else {
        MAX_PAYLOAD_V6
    };
    if data.len() > max {
        return Err(Errno::EMSGSIZE);
    }
    if u.ping {
        // An echo request of the socket's family, code 0; the port names nothing.
        let v6 = usize::from(u.family == AF_INET6);
        if data.len() < ICMP_HEADER || data[0] != ECHO_REQUEST[v6] || data[1] != 0 {
            return Err(Errno::EINVAL);
        }
    } else if dst.port() == 0 {
        return Err(Errno::EINVAL);
    }
    if dst.ip().is_unspecified() {
        dst.set_ip(match dst {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    if !i.routable(dst.ip()) {
        return Err(Errno::ENETUNREACH);
    }
    autobind(i, id)?;
    let (u, set) = parts(i, id)?;
    let Some(h) = u.handle else {
        return Err(Errno::EINVAL);
    };
    let local = u
        .bound
        .filter(|b| !b.ip().is_unspecified())
        .map(|b| addr::to_ip(b.ip()));
    if u.ping {
        let ident = u.bound.map_or(0, |b| b.port());
        let s = set.get_mut::<icmp::Socket<'_>>(h);
        if data.len() > s.payload_send_capacity() {
            return Err(Errno::EMSGSIZE);
        }
        let mut pkt = data.to_vec();
        pkt[2..4].fill(0);
        pkt[4..6].copy_from_slice(&ident.to_be_bytes());
        // smoltcp parses the message again and computes its checksum.
        return match s.send_slice(&pkt, addr::to_ip(dst.ip())) {
            Ok(()) => Ok(data.len()),
            Err(icmp::SendError::BufferFull) => Err(Errno::EAGAIN),
            Err(icmp::SendError::Unaddressable) => Err(Errno::EINVAL),
        };
    }
    let mut meta = UdpMetadata::from(addr::to_endpoint(dst));
    meta.local_address = local;
    let s = set.get_mut::<udp::Socket<'_>>(h);
    if data.len() > s.payload_send_capacity() {
        return Err(Errno::EMSGSIZE);
    }
    match s.send_slice(data, meta) {
        Ok(()) => Ok(data.len()),
        Err(udp::SendError::BufferFull) => Err(Errno::EAGAIN),
        Err(udp::SendError::Unaddressable) => Err(Errno::EINVAL),
    }
}

/// Receives (or peeks at) one datagram: at most `len` bytes of it.
pub(crate) fn recv(i: &mut Inner, id: u64, len: usize, peek: bool) -> Result<Datagram, Errno> {
    let (u, set) = parts(i, id)?;
    if let Some(e) = u.error.take() {
        return Err(e);
    }
    let Some(h) = u.handle else {
        return if u.shut_rd {
            Ok(Datagram {
                data: Vec::new(),
                full_len: 0,
                from: addr::any(u.family, 0),
                local: None,
            })
        } else {
            Err(Errno::EAGAIN)
        };
    };
    if u.ping {
        return recv_ping(u, set.get_mut::<icmp::Socket<'_>>(h), len, peek);
    }
    let s = set.get_mut::<udp::Socket<'_>>(h);
    loop {
        let (data, meta) = match s.peek() {
            Ok((d, m)) => (d, *m),
            Err(_) if u.shut_rd => {
                return Ok(Datagram {
                    data: Vec::new(),
                    full_len: 0,
                    from: addr::any(u.family, 0),
                    local: None,
                });
            }
            Err(_) => return Err(Errno::EAGAIN),
        };
        let from = addr::from_endpoint(meta.endpoint);
        // Datagrams from others than the associated peer, or of the other family for an
        // AF_INET socket, are not for this socket.
        let wrong_family = u.family == AF_INET && from.is_ipv6();
        let foreign = u.peer.is_some_and(|p| p != from);
        if wrong_family || foreign {
            let _ = s.recv();
            continue;
        }
        let d = Datagram {
            data: data[..data.len().min(len)].to_vec(),
            full_len: data.len(),
            from,
            local: meta.local_address.map(addr::from_ip),
        };
        if !peek {
            let _ = s.recv();
        }
        return Ok(d);
    }
}

/// Moves the next echo reply for a ping socket out of smoltcp's queue into the
/// socket's stash (smoltcp's ICMP socket cannot peek), dropping what is not for the
/// application: echo requests (the socket hears those of its identifier, its own among
/// them), the other family's messages, and those from others than the associated peer.
fn ping_fill(u: &mut Udp, s: &mut icmp::Socket<'_>) {
    let reply = ECHO_REPLY[usize::from(u.family == AF_INET6)];
    while u.stash.is_none() {
        let Ok((data, from)) = s.recv() else {
            return;
        };
        let from = SocketAddr::new(addr::from_ip(from), 0);
        let wrong_family = u.family == AF_INET && from.is_ipv6();
        let foreign = u.peer.is_some_and(|p| p.ip() != from.ip());
        if !wrong_family && !foreign && data.first() == Some(&reply) {
            u.stash = Some((data.to_vec(), from));
        }
    }
}

/// [`recv`] of a ping socket: the next echo reply, header included.
fn recv_ping(
    u: &mut Udp,
    s: &mut icmp::Socket<'_>,
    len: usize,
    peek: bool,
) -> Result<Datagram, Errno> {
    ping_fill(u, s);
    let Some((data, from)) = &u.stash else {
        if u.shut_rd {
            return Ok(Datagram {
                data: Vec::new(),
                full_len: 0,
                from: addr::any(u.family, 0),
                local: None,
            });
        }
        return Err(Errno::EAGAIN);
    };
    let d = Datagram {
        data: data[..data.len().min(len)].to_vec(),
        full_len: data.len(),
        from: *from,
        local: None,
    };
    if !peek {
        u.stash = None;
    }
    Ok(d)
}

/// `shutdown`.
pub(crate) fn shutdown(i: &mut Inner, id: u64, rd: bool, wr: bool) -> Result<(), Errno> {
    let (u, _) = parts(i, id)?;
    if u.peer.is_none() && u.bound.is_none() {
        return Err(Errno::ENOTCONN);
    }
    u.shut_rd |= rd;
    u.shut_wr |= wr;
    Ok(())
}

/// Bytes of the next datagram (`FIONREAD`/`SIOCINQ`).
pub(crate) fn pending(i: &mut Inner, id: u64) -> usize {
    let Ok((u, set)) = parts(i, id) else { return 0 };
    match u.handle {
        Some(h) if u.ping => {
            ping_fill(u, set.get_mut::<icmp::Socket<'_>>(h));
            u.stash.as_ref().map_or(0, |(d, _)| d.len())
        }
        Some(h) => set
            .get_mut::<udp::Socket<'_>>(h)
            .peek()
            .map_or(0, |(d, _)| d.len()),
        None => 0,
    }
}

/// Applies changed options.
pub(crate) fn reapply(i: &mut Inner, id: u64) {
    if let Ok((u, set)) = parts(i, id)
        && let Some(h) = u.handle
    {
        if u.ping {
            set.get_mut::<icmp::Socket<'_>>(h)
                .set_hop_limit(Some(u.opts.ttl.unwrap_or(64)));
        } else {
            set.get_mut::<udp::Socket<'_>>(h).set_hop_limit(u.opts.ttl);
        }
    }
}

/// The local address (`getsockname`).
pub(crate) fn local(i: &mut Inner, id: u64) -> Option<SocketAddr> {
    parts(i, id).ok().and_then(|(u, _)| u.bound)
}

/// Clears a pending error.
pub(crate) fn take_error(i: &mut Inner, id: u64) -> Option<Errno> {
    parts(i, id).ok().and_then(|(u, _)| u.error.take())
}

pub(crate) fn peer(i: &mut Inner, id: u64) -> Option<SocketAddr> {
    parts(i, id).ok().and_then(|(u, _)| u.peer)
}
