//! TCP sockets: Linux's socket states and rules around smoltcp's TCP.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use linux_abi::Errno;
use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::wire::{IpAddress, IpListenEndpoint};

use super::addr::{self, AF_INET6};
use super::{Bind, Inner, Orphan, Proto, Sock};
use crate::waiter::{Events, events};

/// Linux's default `SO_RCVBUF` for TCP (`tcp_rmem[1]`).
pub const DEFAULT_RCVBUF: usize = 131_072;
/// Linux's default `SO_SNDBUF` for TCP (`tcp_wmem[1]`).
pub const DEFAULT_SNDBUF: usize = 16_384;
/// The smallest buffer smoltcp gets (the window must hold a few segments).
const MIN_BUFFER: usize = 16_384;
/// The largest.
const MAX_BUFFER: usize = 4 << 20;
/// Listening smoltcp sockets kept ready per local address of a listener.
const POOL: usize = 4;
/// How long a closed connection may take to finish (`tcp_fin_timeout` + `TIME_WAIT`).
const ORPHAN_LIFE: Duration = Duration::from_secs(120);

/// Socket options that Linux keeps per socket (shared by TCP and UDP).
#[derive(Clone, Debug)]
pub(crate) struct Opts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    pub nodelay: bool,
    pub cork: bool,
    pub broadcast: bool,
    pub rcvbuf: usize,
    pub sndbuf: usize,
    pub linger: Option<u32>,
    pub v6only: bool,
    pub rcvtimeo: Option<Duration>,
    pub sndtimeo: Option<Duration>,
    pub keepidle: u32,
    pub keepintvl: u32,
    pub keepcnt: u32,
    pub ttl: Option<u8>,
    pub tos: u8,
    pub maxseg: u32,
    pub rcvlowat: i32,
    pub user_timeout: u32,
    pub defer_accept: u32,
    pub congestion: &'static str,
    /// Per-socket flags that are stored and reported back only (`IP_RECVERR`,
    /// `IP_PKTINFO`, `IPV6_RECVPKTINFO`, `TCP_QUICKACK`, `SO_OOBINLINE`...), by
    /// (level, name).
    pub flags: Vec<((i32, i32), i32)>,
}

impl Opts {
    pub(crate) fn new(rcvbuf: usize, sndbuf: usize) -> Opts {
        Opts {
            reuseaddr: false,
            reuseport: false,
            keepalive: false,
            nodelay: false,
            cork: false,
            broadcast: false,
            rcvbuf,
            sndbuf,
            linger: None,
            v6only: false,
            rcvtimeo: None,
            sndtimeo: None,
            keepidle: 7200,
            keepintvl: 75,
            keepcnt: 9,
            ttl: None,
            tos: 0,
            maxseg: 0,
            rcvlowat: 1,
            user_timeout: 0,
            defer_accept: 0,
            congestion: "cubic",
            flags: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Listener {
    backlog: usize,
    port: u16,
    /// Listening smoltcp sockets per local address.
    pools: Vec<(IpAddress, Vec<SocketHandle>)>,
    /// Connections that left `LISTEN`, oldest first (the accept queue, plus those still
    /// in `SYN_RECEIVED`).
    queue: VecDeque<SocketHandle>,
}

/// A TCP socket's Linux-side state.
#[derive(Debug)]
pub(crate) struct Tcp {
    pub family: i32,
    pub opts: Opts,
    /// The bound local address (the port table has the entry).
    pub bound: Option<SocketAddr>,
    /// The connection's smoltcp socket.
    pub conn: Option<SocketHandle>,
    pub listen: Option<Listener>,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// A non-blocking connect is in progress (or finished and not yet reported).
    pub connecting: bool,
    pub was_connected: bool,
    /// Pending error (`SO_ERROR`).
    pub error: Option<Errno>,
    /// The connection was reset or refused (no more data either way).
    pub dead: bool,
    /// We closed our sending half (so a later `CLOSED` is an orderly end).
    pub fin_sent: bool,
    pub last_state: State,
    pub shut_rd: bool,
    pub shut_wr: bool,
}

/// Linux's TCP state numbers (`/proc/net/tcp`, `TCP_INFO`).
pub(crate) fn linux_state(s: State) -> u8 {
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

fn new_socket(opts: &Opts) -> tcp::Socket<'static> {
    let rx = opts.rcvbuf.clamp(MIN_BUFFER, MAX_BUFFER);
    // Linux's send buffer grows on demand; a fixed one at least as large as the peer's
    // window keeps loopback streams from stalling on it.
    let tx = opts.sndbuf.clamp(DEFAULT_RCVBUF * 2, MAX_BUFFER);
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; rx]),
        tcp::SocketBuffer::new(vec![0u8; tx]),
    );
    apply(&mut s, opts);
    s.set_tsval_generator(Some(tsval));
    // Every segment is acknowledged at once: delayed ACKs only add latency in memory.
    s.set_ack_delay(None);
    s
}

/// RFC 7323 timestamps: a millisecond clock.
fn tsval() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u32)
}

/// Applies the options smoltcp knows to a socket.
pub(crate) fn apply(s: &mut tcp::Socket<'_>, o: &Opts) {
    s.set_nagle_enabled(!o.nodelay && !o.cork);
    s.set_keep_alive(
        o.keepalive
            .then(|| smoltcp::time::Duration::from_secs(u64::from(o.keepidle.max(1)))),
    );
    s.set_hop_limit(o.ttl);
    let t = (o.user_timeout > 0)
        .then(|| smoltcp::time::Duration::from_millis(u64::from(o.user_timeout)));
    s.set_timeout(t);
    s.set_congestion_control(if o.congestion == "reno" {
        tcp::CongestionControl::Reno
    } else {
        tcp::CongestionControl::Cubic
    });
}

impl Tcp {
    pub(crate) fn new(family: i32) -> Tcp {
        Tcp {
            family,
            opts: Opts::new(DEFAULT_RCVBUF, DEFAULT_SNDBUF),
            bound: None,
            conn: None,
            listen: None,
            local: None,
            remote: None,
            connecting: false,
            was_connected: false,
            error: None,
            dead: false,
            fin_sent: false,
            last_state: State::Closed,
            shut_rd: false,
            shut_wr: false,
        }
    }

    /// Whether this socket listens on (`dst`, `port`) with a full accept queue.
    pub(crate) fn listener_full(&self, dst: IpAddress, port: u16) -> bool {
        self.listen.as_ref().is_some_and(|l| {
            l.port == port && l.pools.iter().any(|(a, _)| *a == dst) && l.queue.len() > l.backlog
        })
    }

    pub(crate) fn snapshot(
        &self,
        set: &SocketSet<'static>,
        ev: Events,
    ) -> (Events, usize, usize, u8) {
        if let Some(l) = &self.listen {
            return (ev, l.queue.len(), 0, 10);
        }
        match self.conn {
            Some(h) => {
                let s = set.get::<tcp::Socket<'_>>(h);
                (ev, s.recv_queue(), s.send_queue(), linux_state(s.state()))
            }
            None => (ev, 0, 0, 0),
        }
    }

    pub(crate) fn readiness(&self, set: &mut SocketSet<'static>) -> Events {
        use events::*;
        if let Some(l) = &self.listen {
            let ready = l
                .queue
                .iter()
                .any(|h| acceptable(set.get::<tcp::Socket<'_>>(*h).state()));
            return if ready { POLLIN | POLLRDNORM } else { 0 };
        }
        let mut ev = 0;
        if self.error.is_some() {
            ev |= POLLERR;
        }
        let Some(h) = self.conn else {
            // Never connected (or shut down before): Linux's TCP_CLOSE.
            ev |= POLLOUT | POLLWRNORM | POLLHUP;
            if self.shut_rd {
                ev |= POLLIN | POLLRDNORM | POLLRDHUP;
            }
            return ev;
        };
        let s = set.get::<tcp::Socket<'_>>(h);
        let st = s.state();
        if matches!(st, State::SynSent | State::SynReceived) {
            return ev;
        }
        let fin = matches!(
            st,
            State::CloseWait | State::LastAck | State::Closing | State::TimeWait | State::Closed
        );
        if s.recv_queue() > 0 {
            ev |= POLLIN | POLLRDNORM;
        }
        if fin || self.shut_rd || self.dead {
            ev |= POLLIN | POLLRDNORM | POLLRDHUP;
        }
        let send_shut = self.shut_wr || !matches!(st, State::Established | State::CloseWait);
        if (fin && send_shut) || st == State::Closed || self.dead {
            ev |= POLLHUP;
        }
        if !send_shut && s.send_queue() < s.send_capacity() {
            ev |= POLLOUT | POLLWRNORM;
        }
        ev
    }

    /// Rows for `/proc/net/tcp`.
    pub(crate) fn rows(
        &self,
        set: &SocketSet<'static>,
    ) -> Vec<(SocketAddr, SocketAddr, u8, usize, usize)> {
        let any = addr::any(self.family, 0);
        if let Some(l) = &self.listen {
            let local = self.bound.unwrap_or(any);
            return vec![(local, any, 10, 0, l.queue.len())];
        }
        match self.conn {
            Some(h) => {
                let s = set.get::<tcp::Socket<'_>>(h);
                vec![(
                    self.local.unwrap_or(any),
                    self.remote.unwrap_or(any),
                    linux_state(s.state()),
                    s.send_queue(),
                    s.recv_queue(),
                )]
            }
            None => Vec::new(),
        }
    }
}

/// Whether a connection in this state can be accepted.
fn acceptable(s: State) -> bool {
    !matches!(
        s,
        State::Listen | State::SynReceived | State::SynSent | State::Closed
    )
}

fn tcp_mut(i: &mut Inner, id: u64) -> Result<&mut Tcp, Errno> {
    parts(i, id).map(|(t, _)| t)
}

fn parts(i: &mut Inner, id: u64) -> Result<(&mut Tcp, &mut SocketSet<'static>), Errno> {
    match i.socks.get_mut(&id) {
        Some(Sock::Tcp(t)) => Ok((t, &mut i.sockets)),
        _ => Err(Errno::EBADF),
    }
}

/// Bookkeeping after a packet: pools to accept queues, state changes to errors.
pub(crate) fn after_packet(i: &mut Inner, id: u64) {
    let Some(Sock::Tcp(t)) = i.socks.get_mut(&id) else {
        return;
    };
    if let Some(l) = &mut t.listen {
        let mut moved = false;
        for (_, pool) in &mut l.pools {
            pool.retain(|h| {
                if i.sockets.get::<tcp::Socket<'_>>(*h).state() == State::Listen {
                    true
                } else {
                    l.queue.push_back(*h);
                    moved = true;
                    false
                }
            });
        }
        if moved || l.pools.iter().any(|(_, p)| p.len() < POOL) {
            // Connections reset before being accepted go back to listening or away.
            let mut back = Vec::new();
            l.queue
                .retain(|h| match i.sockets.get::<tcp::Socket<'_>>(*h).state() {
                    State::Listen => {
                        back.push(*h);
                        false
                    }
                    State::Closed => {
                        i.sockets.remove(*h);
                        false
                    }
                    _ => true,
                });
            for h in back {
                let ep = i.sockets.get::<tcp::Socket<'_>>(h).listen_endpoint();
                match l.pools.iter_mut().find(|(a, _)| Some(*a) == ep.addr) {
                    Some((_, p)) => p.push(h),
                    None => {
                        i.sockets.remove(h);
                    }
                }
            }
            if l.queue.len() <= l.backlog {
                let port = l.port;
                for (a, pool) in &mut l.pools {
                    while pool.len() < POOL {
                        let mut s = new_socket(&t.opts);
                        if s.listen(IpListenEndpoint {
                            addr: Some(*a),
                            port,
                        })
                        .is_err()
                        {
                            break;
                        }
                        pool.push(i.sockets.add(s));
                    }
                }
            }
        }
        return;
    }
    let Some(h) = t.conn else { return };
    let s = i.sockets.get::<tcp::Socket<'_>>(h);
    let st = s.state();
    if st == t.last_state {
        return;
    }
    let last = std::mem::replace(&mut t.last_state, st);
    match st {
        State::Closed if last == State::SynSent => {
            t.error = Some(Errno::ECONNREFUSED);
            t.dead = true;
        }
        State::Closed if !t.fin_sent && !matches!(last, State::LastAck | State::TimeWait) => {
            // A reset after the peer's FIN makes writes fail with EPIPE (Linux's
            // tcp_reset in CLOSE_WAIT).
            t.error = Some(if last == State::CloseWait {
                Errno::EPIPE
            } else {
                Errno::ECONNRESET
            });
            t.dead = true;
        }
        State::Established => {
            t.was_connected = true;
            t.local = s.local_endpoint().map(addr::from_endpoint);
            t.remote = s.remote_endpoint().map(addr::from_endpoint);
        }
        _ => {}
    }
}

/// `close` of the application's socket.
pub(crate) fn close(i: &mut Inner, id: u64, t: Tcp) {
    if let Some(l) = t.listen {
        // Connections nobody accepted are reset, as on Linux.
        for h in l.pools.into_iter().flat_map(|(_, p)| p).chain(l.queue) {
            i.sockets.get_mut::<tcp::Socket<'_>>(h).abort();
            i.orphans.push(Orphan {
                handle: h,
                id: 0,
                deadline: std::time::Instant::now(),
            });
        }
        i.unbind(id);
        return;
    }
    let Some(h) = t.conn else {
        i.unbind(id);
        return;
    };
    let s = i.sockets.get_mut::<tcp::Socket<'_>>(h);
    // Unread data, or SO_LINGER with a zero timeout, reset the connection (RFC 2525).
    if s.recv_queue() > 0 || t.opts.linger == Some(0) {
        s.abort();
    } else {
        s.close();
    }
    if let Some(b) = i.binding_mut(id) {
        b.orphan = true;
    }
    i.orphans.push(Orphan {
        handle: h,
        id,
        deadline: std::time::Instant::now() + ORPHAN_LIFE,
    });
}

fn bind_entry(t: &Tcp, id: u64, a: SocketAddr) -> Bind {
    Bind {
        id,
        proto: Proto::Tcp,
        addr: a,
        v6only: t.opts.v6only,
        reuseaddr: t.opts.reuseaddr,
        reuseport: t.opts.reuseport,
        listening: t.listen.is_some(),
        orphan: false,
    }
}

pub(crate) fn bind(i: &mut Inner, id: u64, a: SocketAddr) -> Result<(), Errno> {
    let t = tcp_mut(i, id)?;
    if t.bound.is_some() || t.conn.is_some() {
        return Err(Errno::EINVAL);
    }
    if t.family == addr::AF_INET && a.is_ipv6() {
        return Err(Errno::EAFNOSUPPORT);
    }
    if t.family == AF_INET6 && a.is_ipv4() && t.opts.v6only {
        return Err(Errno::EADDRNOTAVAIL);
    }
    let b = bind_entry(t, id, a);
    let got = i.bind(b)?;
    tcp_mut(i, id)?.bound = Some(got);
    Ok(())
}

pub(crate) fn listen(i: &mut Inner, id: u64, backlog: i32) -> Result<(), Errno> {
    let t = tcp_mut(i, id)?;
    if t.conn.is_some() {
        return Err(Errno::EINVAL);
    }
    // Linux clamps to somaxconn (4096); a negative backlog means the maximum.
    let backlog = if backlog < 0 {
        4096
    } else {
        (backlog as usize).min(4096)
    };
    if let Some(l) = &mut t.listen {
        l.backlog = backlog;
        return Ok(());
    }
    let bound = match t.bound {
        Some(b) => b,
        None => {
            let a = addr::any(t.family, 0);
            bind(i, id, a)?;
            tcp_mut(i, id)?.bound.unwrap_or(a)
        }
    };
    // Two sockets bound with SO_REUSEADDR cannot both listen.
    let t = tcp_mut(i, id)?;
    let mut b = bind_entry(t, id, bound);
    b.listening = true;
    if i.bind_conflict(&b) {
        return Err(Errno::EADDRINUSE);
    }
    if let Some(e) = i.binding_mut(id) {
        e.listening = true;
    }
    let t = tcp_mut(i, id)?;
    let v6only = t.opts.v6only;
    let addrs = i.listen_addrs(bound.ip(), v6only);
    let t = tcp_mut(i, id)?;
    t.listen = Some(Listener {
        backlog,
        port: bound.port(),
        pools: addrs.into_iter().map(|a| (a, Vec::new())).collect(),
        queue: VecDeque::new(),
    });
    // Fill the pools.
    after_packet(i, id);
    Ok(())
}

/// Takes an established connection off the accept queue: the new socket's state.
pub(crate) fn accept(i: &mut Inner, id: u64) -> Result<Tcp, Errno> {
    let (t, set) = parts(i, id)?;
    let Some(l) = &mut t.listen else {
        return Err(Errno::EINVAL);
    };
    let pos = l
        .queue
        .iter()
        .position(|h| acceptable(set.get::<tcp::Socket<'_>>(*h).state()))
        .ok_or(Errno::EAGAIN)?;
    let h = l.queue.remove(pos).ok_or(Errno::EAGAIN)?;
    let mut n = Tcp::new(t.family);
    n.opts = t.opts.clone();
    n.opts.reuseport = false;
    let s = set.get::<tcp::Socket<'_>>(h);
    n.conn = Some(h);
    n.last_state = s.state();
    n.was_connected = true;
    n.local = s.local_endpoint().map(addr::from_endpoint);
    n.remote = s.remote_endpoint().map(addr::from_endpoint);
    // Room in the queue again: refill the pools.
    after_packet(i, id);
    Ok(n)
}

/// Starts a connection to `to` (or reports on one in progress).
pub(crate) fn connect(i: &mut Inner, id: u64, to: SocketAddr) -> Result<(), Errno> {
    let t = tcp_mut(i, id)?;
    if t.listen.is_some() {
        return Err(Errno::EISCONN);
    }
    if let Some(h) = t.conn {
        let st = i.sockets.get::<tcp::Socket<'_>>(h).state();
        let t = tcp_mut(i, id)?;
        return match st {
            State::SynSent | State::SynReceived => Err(Errno::EALREADY),
            _ if t.connecting => {
                t.connecting = false;
                match t.error.take() {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            }
            _ => Err(Errno::EISCONN),
        };
    }
    if t.dead {
        return Err(Errno::EISCONN);
    }
    if t.family == addr::AF_INET && to.is_ipv6() {
        return Err(Errno::EAFNOSUPPORT);
    }
    if t.family == AF_INET6 && to.is_ipv4() && t.opts.v6only {
        return Err(Errno::ENETUNREACH);
    }
    // Connecting to the unspecified address means this host (Linux).
    let mut to = to;
    if to.ip().is_unspecified() {
        to.set_ip(match to {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    if !i.routable(to.ip()) {
        return Err(Errno::ENETUNREACH);
    }
    if to.port() == 0 {
        return Err(Errno::ECONNREFUSED);
    }
    let t = tcp_mut(i, id)?;
    let local = match t.bound {
        Some(b) => b,
        None => {
            let fam = if to.is_ipv4() {
                addr::AF_INET
            } else {
                AF_INET6
            };
            let a = addr::any(fam, 0);
            bind(i, id, a)?;
            tcp_mut(i, id)?.bound.unwrap_or(a)
        }
    };
    let t = tcp_mut(i, id)?;
    let mut s = new_socket(&t.opts);
    let laddr = (!local.ip().is_unspecified()).then(|| addr::to_ip(local.ip()));
    s.connect(
        i.iface.context(),
        addr::to_endpoint(to),
        IpListenEndpoint {
            addr: laddr,
            port: local.port(),
        },
    )
    .map_err(|_| Errno::EADDRNOTAVAIL)?;
    let h = i.sockets.add(s);
    let t = tcp_mut(i, id)?;
    t.conn = Some(h);
    t.last_state = State::SynSent;
    t.connecting = true;
    t.remote = Some(to);
    Err(Errno::EINPROGRESS)
}

/// After `connect` returned `EINPROGRESS`: `Ok` once established, `EAGAIN` while not.
pub(crate) fn connect_done(i: &mut Inner, id: u64) -> Result<(), Errno> {
    let t = tcp_mut(i, id)?;
    let Some(h) = t.conn else {
        return Err(t.error.take().unwrap_or(Errno::ECONNREFUSED));
    };
    let st = i.sockets.get::<tcp::Socket<'_>>(h).state();
    let t = tcp_mut(i, id)?;
    match st {
        State::SynSent | State::SynReceived => Err(Errno::EAGAIN),
        _ => {
            t.connecting = false;
            match t.error.take() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
    }
}

/// Queues as much of `data` as fits: the count, `EAGAIN` when nothing fits.
pub(crate) fn send(i: &mut Inner, id: u64, data: &[u8]) -> Result<usize, Errno> {
    let t = tcp_mut(i, id)?;
    if let Some(e) = t.error.take() {
        return Err(e);
    }
    if t.shut_wr || t.dead {
        return Err(Errno::EPIPE);
    }
    let Some(h) = t.conn else {
        return Err(Errno::EPIPE);
    };
    let s = i.sockets.get_mut::<tcp::Socket<'_>>(h);
    match s.state() {
        State::SynSent | State::SynReceived => Err(Errno::EAGAIN),
        State::Established | State::CloseWait => {
            if data.is_empty() {
                return Ok(0);
            }
            match s.send_slice(data) {
                Ok(0) => Err(Errno::EAGAIN),
                Ok(n) => Ok(n),
                Err(_) => Err(Errno::EPIPE),
            }
        }
        _ => Err(Errno::EPIPE),
    }
}

/// Reads (or peeks) up to `buf.len()` bytes: 0 at end of stream, `EAGAIN` when empty.
pub(crate) fn recv(i: &mut Inner, id: u64, buf: &mut [u8], peek: bool) -> Result<usize, Errno> {
    let t = tcp_mut(i, id)?;
    if t.listen.is_some() {
        return Err(Errno::ENOTCONN);
    }
    let Some(h) = t.conn else {
        if t.shut_rd {
            return Ok(0);
        }
        return Err(t.error.take().unwrap_or(Errno::ENOTCONN));
    };
    let shut_rd = t.shut_rd;
    let s = i.sockets.get_mut::<tcp::Socket<'_>>(h);
    let st = s.state();
    if s.recv_queue() > 0 && !buf.is_empty() {
        let r = if peek {
            s.peek_slice(buf)
        } else {
            s.recv_slice(buf)
        };
        return r.map_err(|_| Errno::ENOTCONN);
    }
    let t = tcp_mut(i, id)?;
    if let Some(e) = t.error.take() {
        return Err(e);
    }
    if t.dead || shut_rd || buf.is_empty() {
        return Ok(0);
    }
    match st {
        State::SynSent
        | State::SynReceived
        | State::Established
        | State::FinWait1
        | State::FinWait2 => Err(Errno::EAGAIN),
        _ => Ok(0),
    }
}

/// `shutdown(how)`.
pub(crate) fn shutdown(i: &mut Inner, id: u64, rd: bool, wr: bool) -> Result<(), Errno> {
    let t = tcp_mut(i, id)?;
    if t.listen.is_some() {
        if rd {
            // Linux stops listening; waiting accepts fail with EINVAL.
            let old = std::mem::replace(t, Tcp::new(t.family));
            let mut fresh = Tcp::new(old.family);
            fresh.opts = old.opts.clone();
            fresh.shut_rd = true;
            close(i, id, old);
            i.socks.insert(id, Sock::Tcp(fresh));
        }
        return Ok(());
    }
    let Some(h) = t.conn else {
        return Err(Errno::ENOTCONN);
    };
    let st = i.sockets.get::<tcp::Socket<'_>>(h).state();
    if matches!(st, State::SynSent) {
        return Err(Errno::ENOTCONN);
    }
    let t = tcp_mut(i, id)?;
    if rd {
        t.shut_rd = true;
    }
    if wr && !t.shut_wr {
        t.shut_wr = true;
        t.fin_sent = true;
        i.sockets.get_mut::<tcp::Socket<'_>>(h).close();
    }
    Ok(())
}

/// Applies changed options to the smoltcp socket.
pub(crate) fn reapply(i: &mut Inner, id: u64) {
    let Ok(t) = tcp_mut(i, id) else { return };
    let o = t.opts.clone();
    let hs: Vec<SocketHandle> = match (&t.listen, t.conn) {
        (Some(l), _) => l
            .pools
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect(),
        (None, Some(h)) => vec![h],
        _ => Vec::new(),
    };
    for h in hs {
        apply(i.sockets.get_mut::<tcp::Socket<'_>>(h), &o);
    }
}

/// The `struct tcp_info` of `TCP_INFO` (Linux's 232-byte layout).
pub(crate) fn info(i: &mut Inner, id: u64) -> Result<Vec<u8>, Errno> {
    let t = tcp_mut(i, id)?;
    let mut v = vec![0u8; 232];
    let put32 =
        |v: &mut Vec<u8>, off: usize, x: u32| v[off..off + 4].copy_from_slice(&x.to_ne_bytes());
    let (state, sendq, recvq, rcvcap) = match (&t.listen, t.conn) {
        (Some(_), _) => (10u8, 0, 0, 0),
        (None, Some(h)) => {
            let s = i.sockets.get::<tcp::Socket<'_>>(h);
            (
                linux_state(s.state()),
                s.send_queue(),
                s.recv_queue(),
                s.recv_capacity(),
            )
        }
        _ => (7, 0, 0, 0),
    };
    const TCPI_OPT_TIMESTAMPS: u8 = 1;
    const TCPI_OPT_WSCALE: u8 = 4;
    v[0] = state;
    v[5] = TCPI_OPT_TIMESTAMPS | TCPI_OPT_WSCALE;
    // snd_wscale:4, rcv_wscale:4 — smoltcp scales by what the receive buffer needs.
    let rcv_ws = (usize::BITS - rcvcap.leading_zeros()).saturating_sub(16) as u8;
    v[6] = (rcv_ws << 4) | rcv_ws;
    put32(&mut v, 8, 200_000); // rto (us)
    put32(&mut v, 12, 40_000); // ato
    put32(&mut v, 16, 65_483); // snd_mss
    put32(&mut v, 20, 65_483); // rcv_mss
    put32(&mut v, 60, 65_535); // pmtu
    put32(&mut v, 68, 50); // rtt (us)
    put32(&mut v, 72, 25); // rttvar
    put32(&mut v, 76, 0x7fff_ffff); // snd_ssthresh
    put32(&mut v, 80, 10); // snd_cwnd
    put32(&mut v, 84, 65_483); // advmss
    put32(&mut v, 88, 3); // reordering
    put32(&mut v, 96, rcvcap as u32); // rcv_space
    put32(&mut v, 144, sendq as u32); // notsent_bytes
    let _ = recvq;
    Ok(v)
}
