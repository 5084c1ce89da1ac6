//! UDP sockets: Linux's rules (association, autobind, `MSG_TRUNC`) around smoltcp's UDP.

use std::net::SocketAddr;

use linux_abi::Errno;
use smoltcp::iface::{SocketHandle, SocketSet};
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
}

/// A received datagram.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub data: Vec<u8>,
    pub full_len: usize,
    pub from: SocketAddr,
}

impl Udp {
    pub(crate) fn new(family: i32) -> Udp {
        Udp {
            family,
            opts: Opts::new(DEFAULT_BUF, DEFAULT_BUF),
            handle: None,
            bound: None,
            peer: None,
            shut_rd: false,
            shut_wr: false,
            error: None,
        }
    }

    pub(crate) fn snapshot(
        &self,
        set: &SocketSet<'static>,
        ev: Events,
    ) -> (Events, usize, usize, u8) {
        match self.handle {
            Some(h) => {
                let s = set.get::<udp::Socket<'_>>(h);
                (ev, s.recv_queue(), s.send_queue(), 0)
            }
            None => (ev, 0, 0, 0),
        }
    }

    pub(crate) fn readiness(&self, set: &mut SocketSet<'static>) -> Events {
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
        match self.handle {
            Some(h) => {
                let s = set.get::<udp::Socket<'_>>(h);
                if s.can_recv() {
                    ev |= POLLIN | POLLRDNORM;
                }
                if s.can_send() {
                    ev |= POLLOUT | POLLWRNORM;
                }
            }
            None => ev |= POLLOUT | POLLWRNORM,
        }
        ev
    }

    pub(crate) fn row(
        &self,
        set: &SocketSet<'static>,
    ) -> Vec<(SocketAddr, SocketAddr, u8, usize, usize)> {
        let any = addr::any(self.family, 0);
        match (self.handle, self.bound) {
            (Some(h), Some(b)) => {
                let s = set.get::<udp::Socket<'_>>(h);
                // UDP sockets show TCP_CLOSE (7), or TCP_ESTABLISHED (1) when associated.
                let st = if self.peer.is_some() { 1 } else { 7 };
                vec![(
                    b,
                    self.peer.unwrap_or(any),
                    st,
                    s.send_queue(),
                    s.recv_queue(),
                )]
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
        proto: Proto::Udp,
        addr: a,
        v6only: u.opts.v6only,
        reuseaddr: u.opts.reuseaddr,
        reuseport: u.opts.reuseport,
        listening: false,
        orphan: false,
    };
    let got = i.bind(b)?;
    let (u, set) = parts(i, id)?;
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
    if dst.port() == 0 {
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
            })
        } else {
            Err(Errno::EAGAIN)
        };
    };
    let s = set.get_mut::<udp::Socket<'_>>(h);
    loop {
        let (data, meta) = match s.peek() {
            Ok((d, m)) => (d, *m),
            Err(_) if u.shut_rd => {
                return Ok(Datagram {
                    data: Vec::new(),
                    full_len: 0,
                    from: addr::any(u.family, 0),
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
        };
        if !peek {
            let _ = s.recv();
        }
        return Ok(d);
    }
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
        set.get_mut::<udp::Socket<'_>>(h).set_hop_limit(u.opts.ttl);
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
