//! The Sentry's network stack: `AF_INET`/`AF_INET6` sockets over smoltcp.
//!
//! One [`Stack`] per kernel. It owns the interfaces (today `lo`: 127.0.0.1/8 and ::1 over
//! an in-memory [`device::LoopDevice`]), smoltcp's socket set, and the Linux-side state of
//! every socket: bound ports, options, accept queues, pending errors. Everything sits
//! behind one lock; each socket operation takes it, does its work, runs the stack until no
//! packet is left in flight (so loopback traffic is delivered inside the calling system
//! call, with no thread hop), and then wakes the [`WaitQueue`]s of sockets whose readiness
//! moved. A background thread (`sentry-net`) only runs smoltcp's timers (retransmission,
//! keep-alive, `TIME_WAIT`), sleeping until the next one is due.
//!
//! What smoltcp does not do the Linux way is done around it:
//! - listen backlogs: a smoltcp socket in `LISTEN` becomes the connection when a SYN
//!   arrives, so a listener keeps a small pool of listening smoltcp sockets per local
//!   address, moves those that left `LISTEN` to its accept queue after every packet, and
//!   refills the pool; when the queue is over the backlog, SYNs to it are dropped before
//!   smoltcp sees them (the client retries, as with Linux);
//! - bind rules (`EADDRINUSE`, `SO_REUSEADDR`, `SO_REUSEPORT`, dual-stack overlap),
//!   ephemeral ports (32768..=60999), sockets closed by the application that still finish
//!   their connection (`FIN_WAIT`, `TIME_WAIT`) and keep their port meanwhile;
//! - errors: `ECONNREFUSED` when a SYN is answered by RST, `ECONNRESET` when an
//!   established connection is reset, reported once by `SO_ERROR` or the next call;
//! - IPv4-mapped addresses for dual-stack `AF_INET6` sockets (see [`addr`]).

pub mod addr;
pub mod device;
pub mod eth;
pub mod hostinet;
pub mod ifreq;
pub mod netlink;
pub mod procnet;
pub mod socket;
mod tcp;
mod udp;

use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};

use linux_abi::Errno;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::wire::{
    HardwareAddress, IpAddress, IpCidr, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
};

use crate::waiter::{Events, WaitQueue};
use device::LoopDevice;

pub use socket::InetSocket;

/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = 2;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: i32 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: i32 = 17;
/// `IPPROTO_ICMP` (ping sockets of `AF_INET`).
pub const IPPROTO_ICMP: i32 = 1;
/// `IPPROTO_ICMPV6` (ping sockets of `AF_INET6`).
pub const IPPROTO_ICMPV6: i32 = 58;

/// First and last ephemeral port (Linux's `ip_local_port_range`).
const EPHEMERAL: (u16, u16) = (32768, 60999);

/// The transport of a bound port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Tcp,
    Udp,
    /// ICMP echo identifiers of ping sockets.
    Ping,
}

/// One entry of the port table.
#[derive(Clone, Debug)]
pub(crate) struct Bind {
    id: u64,
    proto: Proto,
    addr: SocketAddr,
    v6only: bool,
    reuseaddr: bool,
    reuseport: bool,
    listening: bool,
    /// Held by a connection the application closed (`TIME_WAIT` and friends).
    orphan: bool,
}

/// Whether two local addresses (with their `IPV6_V6ONLY`) can receive the same packets.
fn overlap(a: IpAddr, a_v6only: bool, b: IpAddr, b_v6only: bool) -> bool {
    let wild = |x: IpAddr, v6only: bool, other: IpAddr| match x {
        IpAddr::V4(v) => v.is_unspecified() && other.is_ipv4(),
        IpAddr::V6(v) => v.is_unspecified() && (other.is_ipv6() || !v6only),
    };
    a == b || wild(a, a_v6only, b) || wild(b, b_v6only, a)
}

/// A socket of the stack: its Linux-side state.
#[derive(Debug)]
pub(crate) enum Sock {
    Tcp(tcp::Tcp),
    Udp(udp::Udp),
}

/// A socket's queue and the readiness last announced on it.
#[derive(Debug)]
struct Watch {
    queue: Weak<WaitQueue>,
    last: (Events, usize, usize, u8),
}

/// A smoltcp socket whose application socket is closed, finishing its connection.
#[derive(Debug)]
struct Orphan {
    handle: SocketHandle,
    /// The port-table entry it keeps (0: none).
    id: u64,
    /// When to give up and reset (Linux's `tcp_fin_timeout` and `TIME_WAIT`).
    deadline: std::time::Instant,
}

/// The lock-protected state of a [`Stack`].
pub(crate) struct Inner {
    iface: Interface,
    dev: LoopDevice,
    sockets: SocketSet<'static>,
    start: std::time::Instant,
    socks: HashMap<u64, Sock>,
    watches: HashMap<u64, Watch>,
    next_id: u64,
    binds: Vec<Bind>,
    next_port: u16,
    orphans: Vec<Orphan>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("socks", &self.socks.len())
            .field("binds", &self.binds.len())
            .finish_non_exhaustive()
    }
}

/// Wakes the stack's timer thread.
#[derive(Debug, Default)]
struct Timer {
    /// When the thread will run the stack next (`None`: not before it is kicked).
    next: Mutex<Option<std::time::Instant>>,
    cond: Condvar,
}

/// A network stack (see the module documentation).
#[derive(Debug)]
pub struct Stack {
    inner: Mutex<Inner>,
    timer: Arc<Timer>,
}

/// A network interface as `ip link` / `getifaddrs` show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Name (`lo`).
    pub name: String,
    /// `IFF_*` flags.
    pub flags: u32,
    /// MTU.
    pub mtu: u32,
    /// Hardware address (empty for loopback's all-zero one).
    pub hwaddr: Vec<u8>,
    /// Addresses with prefix lengths.
    pub addrs: Vec<(IpAddr, u8)>,
    /// (packets, bytes) received and sent.
    pub rx: (u64, u64),
    /// See `rx`.
    pub tx: (u64, u64),
    /// The default gateway reached through this link (`--network=sandbox`'s `eth0`).
    pub gateway: Option<std::net::Ipv4Addr>,
    /// The IPv6 default gateway reached through this link.
    pub gateway6: Option<std::net::Ipv6Addr>,
}

/// `IFF_UP`.
pub const IFF_UP: u32 = 0x1;
/// `IFF_BROADCAST`.
pub const IFF_BROADCAST: u32 = 0x2;
/// `IFF_MULTICAST`.
pub const IFF_MULTICAST: u32 = 0x1000;
/// `IFF_LOOPBACK`.
pub const IFF_LOOPBACK: u32 = 0x8;
/// `IFF_RUNNING`.
pub const IFF_RUNNING: u32 = 0x40;
/// `IFF_LOWER_UP`.
pub const IFF_LOWER_UP: u32 = 0x10000;

impl Stack {
    /// A stack with the loopback interface only (`--network=none`).
    pub fn new_loopback() -> Arc<Stack> {
        let mut dev = LoopDevice::default();
        let start = std::time::Instant::now();
        let mut config = Config::new(HardwareAddress::Ip);
        config.random_seed = random_seed();
        let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::ZERO);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(IpAddress::v4(127, 0, 0, 1), 8));
            let _ = a.push(IpCidr::new(
                IpAddress::Ipv6(std::net::Ipv6Addr::LOCALHOST),
                128,
            ));
        });
        let stack = Arc::new(Stack {
            inner: Mutex::new(Inner {
                iface,
                dev,
                sockets: SocketSet::new(Vec::new()),
                start,
                socks: HashMap::new(),
                watches: HashMap::new(),
                next_id: 1,
                binds: Vec::new(),
                next_port: EPHEMERAL.0 + (random_seed() % 1000) as u16,
                orphans: Vec::new(),
            }),
            timer: Arc::new(Timer::default()),
        });
        let weak = Arc::downgrade(&stack);
        let timer = stack.timer.clone();
        let spawned = std::thread::Builder::new()
            .name("sentry-net".into())
            .spawn(move || timer_loop(&weak, &timer));
        if let Err(e) = spawned {
            tracing::error!("cannot start the network timer thread: {e}");
        }
        stack
    }

    /// Runs `f` on the stack's state, then the stack itself, then wakes whoever waits on
    /// sockets whose readiness changed.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let (r, wake, next) = {
            let mut g = self.inner.lock();
            let r = f(&mut g);
            g.run();
            let wake = g.changed();
            let next = g.next_timer();
            (r, wake, next)
        };
        for (q, ev) in wake {
            q.notify(ev);
        }
        self.arm(next);
        r
    }

    fn arm(&self, next: Option<std::time::Instant>) {
        let Some(next) = next else { return };
        let mut n = self.timer.next.lock();
        if n.is_none_or(|cur| next < cur) {
            *n = Some(next);
            self.timer.cond.notify_one();
        }
    }

    /// Registers a socket's state and its wait queue; returns its id.
    pub(crate) fn add(&self, sock: Sock, queue: &Arc<WaitQueue>) -> u64 {
        self.with(|i| i.insert(sock, queue))
    }

    /// The interfaces.
    pub fn links(&self) -> Vec<Link> {
        let i = self.inner.lock();
        let eth_addrs: Vec<(IpAddr, u8)> = i.dev.eth.as_ref().map_or_else(Vec::new, |e| {
            std::iter::once((IpAddr::V4(e.addr), e.prefix))
                .chain(e.addrs6.iter().map(|&(a, p)| (IpAddr::V6(a), p)))
                .collect()
        });
        let mut links = vec![Link {
            index: 1,
            name: "lo".into(),
            flags: IFF_UP | IFF_LOOPBACK | IFF_RUNNING | IFF_LOWER_UP,
            mtu: 65536,
            hwaddr: vec![0; 6],
            addrs: i
                .iface
                .ip_addrs()
                .iter()
                .map(|c| (addr::from_ip(c.address()), c.prefix_len()))
                .filter(|(a, _)| !eth_addrs.iter().any(|(e, _)| e == a))
                .collect(),
            rx: i.dev.rx,
            tx: i.dev.tx,
            gateway: None,
            gateway6: None,
        }];
        if let Some(e) = &i.dev.eth {
            links.push(Link {
                index: 2,
                name: "eth0".into(),
                flags: IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST | IFF_LOWER_UP,
                mtu: eth::ETH_MTU as u32,
                hwaddr: e.mac.to_vec(),
                addrs: eth_addrs,
                rx: e.rx,
                tx: e.tx,
                gateway: e.gateway,
                gateway6: e.gateway6,
            });
        }
        links
    }

    /// Adds (`add`) or removes an address of interface `index` (`RTM_NEWADDR`,
    /// `RTM_DELADDR`).
    pub fn change_addr(&self, index: u32, a: IpAddr, prefix: u8, add: bool) -> Result<(), Errno> {
        if index != 1 {
            return Err(Errno::ENODEV);
        }
        let max = if a.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(Errno::EINVAL);
        }
        self.with(|i| {
            let cidr = IpCidr::new(addr::to_ip(a), prefix);
            let present = i
                .iface
                .ip_addrs()
                .iter()
                .any(|c| c.address() == cidr.address());
            match (add, present) {
                (true, true) => Err(Errno::EEXIST),
                (false, false) => Err(Errno::EADDRNOTAVAIL),
                (true, false) => {
                    let mut full = false;
                    i.iface.update_ip_addrs(|v| full = v.push(cidr).is_err());
                    if full { Err(Errno::ENOSPC) } else { Ok(()) }
                }
                (false, true) => {
                    i.iface
                        .update_ip_addrs(|v| v.retain(|c| c.address() != cidr.address()));
                    Ok(())
                }
            }
        })
    }

    /// Gives the stack an Ethernet link (`--network=sandbox`): its addresses (IPv4, and
    /// IPv6 with a link-local one) and default routes, and a `sentry-eth` thread that
    /// reads frames from the packet socket.
    pub fn attach_ethernet(self: &Arc<Self>, cfg: crate::EthernetConfig) {
        let file = Arc::new(std::fs::File::from(cfg.packet));
        let mut link = eth::EthLink::new(file.clone(), cfg.mac, cfg.addr, cfg.prefix, cfg.gateway);
        link.set_ipv6(&cfg.addrs6, cfg.gateway6);
        self.with(|i| {
            let mut dropped = Vec::new();
            i.iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::new(IpAddress::Ipv4(cfg.addr), link.prefix));
                for &(v6, p) in &link.addrs6 {
                    if a.push(IpCidr::new(IpAddress::Ipv6(v6), p)).is_err() {
                        dropped.push(v6);
                    }
                }
            });
            // The interface holds 8 addresses; the link answers only for those it has.
            if !dropped.is_empty() {
                tracing::warn!(?dropped, "eth0: too many IPv6 addresses, some left out");
                link.addrs6.retain(|(a, _)| !dropped.contains(a));
            }
            if let Some(gw) = cfg.gateway {
                let _ = i.iface.routes_mut().add_default_ipv4_route(gw);
            }
            if let Some(gw) = link.gateway6 {
                let _ = i.iface.routes_mut().add_default_ipv6_route(gw);
            }
            i.dev.eth = Some(link);
        });
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("sentry-eth".into())
            .spawn(move || eth_loop(&weak, &file));
        if let Err(e) = spawned {
            tracing::error!("cannot start the Ethernet reader: {e}");
        }
    }

    /// TCP and UDP sockets for `/proc/net/{tcp,tcp6,udp,udp6}`: (local, remote, Linux
    /// state number, send queue, receive queue), of `family`'s sockets.
    pub fn table(&self, proto: i32, v6: bool) -> Vec<(SocketAddr, SocketAddr, u8, usize, usize)> {
        let mut g = self.inner.lock();
        g.table(proto, v6)
    }
}

/// A seed for smoltcp's sequence numbers and our first ephemeral port: std's hasher keys
/// come from getrandom(2).
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// Reads frames from the packet socket until the stack is gone or the socket fails.
fn eth_loop(stack: &Weak<Stack>, file: &std::fs::File) {
    use std::io::Read;
    // Large enough for the host's GSO packets, which a veth hands over whole.
    let mut buf = vec![0u8; 65536 + 14];
    loop {
        let n = match (&*file).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("eth0: reading frames failed: {e}");
                return;
            }
        };
        let Some(s) = stack.upgrade() else { return };
        let frame = &buf[..n];
        s.with(|i| {
            let pkt = i.dev.eth.as_mut().and_then(|e| e.input(frame));
            if let Some(p) = pkt {
                i.dev.queue.push_back(p);
            }
        });
    }
}

fn timer_loop(stack: &Weak<Stack>, timer: &Timer) {
    loop {
        {
            let mut next = timer.next.lock();
            loop {
                let now = std::time::Instant::now();
                match *next {
                    Some(t) if t <= now => break,
                    Some(t) => {
                        timer.cond.wait_for(&mut next, t - now);
                    }
                    None => {
                        timer
                            .cond
                            .wait_for(&mut next, std::time::Duration::from_secs(1));
                        if stack.strong_count() == 0 {
                            return;
                        }
                    }
                }
            }
            *next = None;
        }
        let Some(s) = stack.upgrade() else { return };
        s.with(|_| ());
    }
}

impl Inner {
    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.start.elapsed().as_micros() as i64)
    }

    /// Registers a socket's state and its wait queue; returns its id.
    pub(crate) fn insert(&mut self, sock: Sock, queue: &Arc<WaitQueue>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.socks.insert(id, sock);
        self.watches.insert(
            id,
            Watch {
                queue: Arc::downgrade(queue),
                last: (0, 0, 0, 0),
            },
        );
        id
    }

    /// Runs the stack until no packet is in flight.
    fn run(&mut self) {
        let now = self.now();
        for _ in 0..10_000 {
            while let smoltcp::iface::PollResult::SocketStateChanged =
                self.iface
                    .poll_egress(now, &mut self.dev, &mut self.sockets)
            {}
            if self.dev.queue.is_empty() {
                break;
            }
            while let Some(p) = self.dev.queue.pop_front() {
                if self.drop_syn(&p) {
                    continue;
                }
                self.dev.current = Some(p);
                self.iface
                    .poll_ingress_single(now, &mut self.dev, &mut self.sockets);
                self.after_packet();
            }
            self.reap_orphans();
        }
    }

    /// Whether `p` is a SYN to a listener whose accept queue is full (dropped, as Linux
    /// does, so that the client retries instead of being refused).
    fn drop_syn(&self, p: &[u8]) -> bool {
        let (dst, payload) = match p.first().map(|b| b >> 4) {
            Some(4) => match Ipv4Packet::new_checked(p) {
                Ok(ip) if ip.next_header() == IpProtocol::Tcp => (
                    IpAddress::Ipv4(ip.dst_addr()),
                    &p[ip.header_len() as usize..],
                ),
                _ => return false,
            },
            Some(6) => match Ipv6Packet::new_checked(p) {
                Ok(ip) if ip.next_header() == IpProtocol::Tcp => {
                    (IpAddress::Ipv6(ip.dst_addr()), &p[40..])
                }
                _ => return false,
            },
            _ => return false,
        };
        let Ok(t) = TcpPacket::new_checked(payload) else {
            return false;
        };
        if !t.syn() || t.ack() {
            return false;
        }
        self.socks.values().any(|s| match s {
            Sock::Tcp(tcp) => tcp.listener_full(dst, t.dst_port()),
            Sock::Udp(_) => false,
        })
    }

    /// Bookkeeping after each packet: accept queues and connection errors.
    fn after_packet(&mut self) {
        let ids: Vec<u64> = self.socks.keys().copied().collect();
        for id in ids {
            tcp::after_packet(self, id);
        }
    }

    fn reap_orphans(&mut self) {
        let now = std::time::Instant::now();
        let mut done = Vec::new();
        self.orphans.retain(|o| {
            let s = self
                .sockets
                .get_mut::<smoltcp::socket::tcp::Socket<'_>>(o.handle);
            if s.state() == smoltcp::socket::tcp::State::Closed {
                done.push((o.handle, o.id));
                false
            } else {
                // Data for a socket the application closed resets the connection, as on
                // Linux (the sender learns its data will never be read).
                if now >= o.deadline || s.recv_queue() > 0 {
                    s.abort();
                }
                true
            }
        });
        for (h, id) in done {
            self.sockets.remove(h);
            if id != 0 {
                self.binds.retain(|b| b.id != id);
            }
        }
    }

    /// The wait queues to notify, with the events now ready there.
    fn changed(&mut self) -> Vec<(Arc<WaitQueue>, Events)> {
        let mut out = Vec::new();
        let ids: Vec<u64> = self.watches.keys().copied().collect();
        for id in ids {
            let snap = self.snapshot(id);
            let Some(w) = self.watches.get_mut(&id) else {
                continue;
            };
            if snap != w.last {
                w.last = snap;
                if let Some(q) = w.queue.upgrade() {
                    out.push((q, snap.0));
                }
            }
        }
        out
    }

    fn snapshot(&mut self, id: u64) -> (Events, usize, usize, u8) {
        let ev = self.readiness(id);
        match self.socks.get(&id) {
            Some(Sock::Tcp(t)) => t.snapshot(&self.sockets, ev),
            Some(Sock::Udp(u)) => u.snapshot(&self.sockets, ev),
            None => (0, 0, 0, 0),
        }
    }

    /// The readiness of socket `id` (`poll` bits).
    pub(crate) fn readiness(&mut self, id: u64) -> Events {
        match self.socks.get_mut(&id) {
            Some(Sock::Tcp(t)) => t.readiness(&mut self.sockets),
            Some(Sock::Udp(u)) => u.readiness(&mut self.sockets),
            None => 0,
        }
    }

    fn next_timer(&mut self) -> Option<std::time::Instant> {
        let now = self.now();
        let d = self.iface.poll_delay(now, &self.sockets);
        let mut next = d.map(|d| {
            std::time::Instant::now() + std::time::Duration::from_micros(d.total_micros())
        });
        if let Some(o) = self.orphans.iter().map(|o| o.deadline).min() {
            next = Some(next.map_or(o, |n| n.min(o)));
        }
        next
    }

    /// Whether `addr` is one of the stack's own addresses (or unspecified).
    fn is_local(&self, addr: IpAddr) -> bool {
        addr.is_unspecified() || self.iface.has_ip_addr(addr::to_ip(addr))
    }

    /// The index of the interface that has local address `a` (`eth0`'s, 2, or else the
    /// loopback's, 1).
    pub(crate) fn interface_of(&self, a: IpAddr) -> i32 {
        match (&self.dev.eth, a) {
            (Some(e), IpAddr::V4(v)) if v == e.addr => 2,
            (Some(e), IpAddr::V6(v)) if e.addrs6.iter().any(|(x, _)| *x == v) => 2,
            _ => 1,
        }
    }

    /// Whether the stack has a route to `addr` (with an Ethernet link, every IPv4
    /// address: the default route; every IPv6 one when the link has an IPv6 default
    /// route, link-local ones always).
    fn routable(&self, addr: IpAddr) -> bool {
        let v4 = match addr {
            IpAddr::V4(_) => true,
            IpAddr::V6(v) => v.to_ipv4_mapped().is_some(),
        };
        if let Some(e) = &self.dev.eth {
            if v4 {
                return true;
            }
            if let IpAddr::V6(v) = addr
                && !v.is_loopback()
                && (e.gateway6.is_some() || v.is_unicast_link_local())
            {
                return true;
            }
        }
        let a = addr::to_ip(addr);
        self.iface.ip_addrs().iter().any(|c| c.contains_addr(&a))
    }

    /// The local addresses a socket bound to `addr` listens on.
    fn listen_addrs(&self, addr: IpAddr, v6only: bool) -> Vec<IpAddress> {
        if !addr.is_unspecified() {
            return vec![addr::to_ip(addr)];
        }
        self.iface
            .ip_addrs()
            .iter()
            .map(|c| c.address())
            .filter(|a| match (a, addr) {
                (IpAddress::Ipv4(_), IpAddr::V4(_)) => true,
                (IpAddress::Ipv4(_), IpAddr::V6(_)) => !v6only,
                (IpAddress::Ipv6(_), IpAddr::V6(_)) => true,
                (IpAddress::Ipv6(_), IpAddr::V4(_)) => false,
            })
            .collect()
    }

    /// Checks `b` against the port table (without adding it).
    fn bind_conflict(&self, b: &Bind) -> bool {
        self.binds.iter().any(|o| {
            o.id != b.id
                && o.proto == b.proto
                && o.addr.port() == b.addr.port()
                && overlap(o.addr.ip(), o.v6only, b.addr.ip(), b.v6only)
                && !(b.reuseport && o.reuseport && !o.orphan)
                && !(b.reuseaddr && o.reuseaddr && (b.proto == Proto::Udp || !o.listening))
        })
    }

    /// Adds `b` to the port table, choosing an ephemeral port when its port is 0.
    fn bind(&mut self, mut b: Bind) -> Result<SocketAddr, Errno> {
        if !self.is_local(b.addr.ip()) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        if b.addr.port() == 0 {
            let span = u32::from(EPHEMERAL.1 - EPHEMERAL.0) + 1;
            let mut found = false;
            for _ in 0..span {
                let p = self.next_port;
                self.next_port = if p >= EPHEMERAL.1 { EPHEMERAL.0 } else { p + 1 };
                b.addr.set_port(p);
                // An ephemeral port is one nobody else holds at all.
                let busy = self
                    .binds
                    .iter()
                    .any(|o| o.proto == b.proto && o.addr.port() == p);
                if !busy {
                    found = true;
                    break;
                }
            }
            if !found {
                return Err(Errno::EADDRINUSE);
            }
        } else if self.bind_conflict(&b) {
            return Err(Errno::EADDRINUSE);
        }
        let a = b.addr;
        self.binds.retain(|o| o.id != b.id);
        self.binds.push(b);
        Ok(a)
    }

    fn unbind(&mut self, id: u64) {
        self.binds.retain(|b| b.id != id);
    }

    fn binding_mut(&mut self, id: u64) -> Option<&mut Bind> {
        self.binds.iter_mut().find(|b| b.id == id && !b.orphan)
    }

    /// Forgets socket `id` (its file was closed).
    pub(crate) fn remove(&mut self, id: u64) {
        self.watches.remove(&id);
        match self.socks.remove(&id) {
            Some(Sock::Tcp(t)) => tcp::close(self, id, t),
            Some(Sock::Udp(u)) => {
                if let Some(h) = u.handle {
                    self.sockets.remove(h);
                }
                self.unbind(id);
            }
            None => {}
        }
    }

    fn table(&mut self, proto: i32, v6: bool) -> Vec<(SocketAddr, SocketAddr, u8, usize, usize)> {
        let mut out = Vec::new();
        for s in self.socks.values() {
            match (s, proto) {
                (Sock::Tcp(t), IPPROTO_TCP) if (t.family == addr::AF_INET6) == v6 => {
                    out.extend(t.rows(&self.sockets))
                }
                (Sock::Udp(u), IPPROTO_UDP) if (u.family == addr::AF_INET6) == v6 && !u.ping => {
                    out.extend(u.row(&self.sockets))
                }
                (Sock::Udp(u), IPPROTO_ICMP) if (u.family == addr::AF_INET6) == v6 && u.ping => {
                    out.extend(u.row(&self.sockets))
                }
                _ => {}
            }
        }
        if proto == IPPROTO_TCP {
            for o in &self.orphans {
                let s = self
                    .sockets
                    .get::<smoltcp::socket::tcp::Socket<'_>>(o.handle);
                if let (Some(l), Some(r)) = (s.local_endpoint(), s.remote_endpoint()) {
                    let l = addr::from_endpoint(l);
                    if l.is_ipv6() == v6 {
                        out.push((
                            l,
                            addr::from_endpoint(r),
                            tcp::linux_state(s.state()),
                            s.send_queue(),
                            s.recv_queue(),
                        ));
                    }
                }
            }
        }
        out
    }
}
