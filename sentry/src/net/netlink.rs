//! `AF_NETLINK` / `NETLINK_ROUTE` sockets: the link, address and route dumps that
//! `ip`, glibc's `getifaddrs` and `if_nameindex` ask for, answered from the [`Stack`],
//! and `RTM_NEWADDR`/`RTM_DELADDR` applied to it.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use linux_abi::Errno;

use super::socket::{MSG_DONTWAIT, MSG_PEEK, Received, SocketOps};
use super::{IFF_LOOPBACK, Link, Stack};
use crate::fs::{FileOps, UserMem};
use crate::waiter::{Events, WaitQueue, block_on, events};

/// `AF_NETLINK`.
pub const AF_NETLINK: i32 = 16;
/// `NETLINK_ROUTE`.
pub const NETLINK_ROUTE: i32 = 0;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_MULTI: u16 = 2;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;

/// `sizeof(struct sockaddr_nl)`.
const SOCKADDR_NL_LEN: usize = 12;

/// A netlink route socket.
#[derive(Debug)]
pub struct NetlinkSocket {
    stack: Arc<Stack>,
    ty: i32,
    port: AtomicU32,
    queue: WaitQueue,
    replies: Mutex<VecDeque<Vec<u8>>>,
    nonblock: AtomicBool,
    /// Requested buffer sizes (reported back doubled, as for any socket).
    bufs: Mutex<(i32, i32)>,
    /// The thread group that made the socket: the port an autobind picks first.
    owner_tgid: i32,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn attr(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(align4(out.len()), 0);
}

fn message(ty: u16, flags: u16, seq: u32, port: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + body.len());
    m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&port.to_ne_bytes());
    m.extend_from_slice(body);
    m.resize(align4(m.len()), 0);
    m
}

fn link_body(l: &Link) -> Vec<u8> {
    let mut b = Vec::new();
    b.push(0); // ifi_family: AF_UNSPEC
    b.push(0);
    let arphrd: u16 = if l.flags & IFF_LOOPBACK != 0 { 772 } else { 1 };
    b.extend_from_slice(&arphrd.to_ne_bytes());
    b.extend_from_slice(&(l.index as i32).to_ne_bytes());
    b.extend_from_slice(&l.flags.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes()); // ifi_change
    let mut name = l.name.as_bytes().to_vec();
    name.push(0);
    attr(&mut b, 3, &name); // IFLA_IFNAME
    attr(&mut b, 13, &1000u32.to_ne_bytes()); // IFLA_TXQLEN
    // IFLA_OPERSTATE: loopback has no carrier to report (IF_OPER_UNKNOWN, as on Linux).
    attr(
        &mut b,
        16,
        &[if l.flags & IFF_LOOPBACK != 0 { 0 } else { 6 }],
    );
    attr(&mut b, 17, &[0]); // IFLA_LINKMODE
    attr(&mut b, 4, &l.mtu.to_ne_bytes()); // IFLA_MTU
    attr(&mut b, 27, &0u32.to_ne_bytes()); // IFLA_GROUP
    attr(&mut b, 31, &1u32.to_ne_bytes()); // IFLA_NUM_TX_QUEUES
    attr(&mut b, 32, &1u32.to_ne_bytes()); // IFLA_NUM_RX_QUEUES
    attr(&mut b, 33, &[1]); // IFLA_CARRIER
    attr(&mut b, 6, b"noqueue\0"); // IFLA_QDISC
    attr(&mut b, 1, &l.hwaddr); // IFLA_ADDRESS
    attr(
        &mut b,
        2,
        &vec![if l.flags & IFF_LOOPBACK != 0 { 0 } else { 0xff }; l.hwaddr.len()],
    ); // IFLA_BROADCAST
    // IFLA_STATS64: 24 u64 counters, rx/tx packets then bytes first.
    let mut st = [0u64; 24];
    st[0] = l.rx.0;
    st[1] = l.tx.0;
    st[2] = l.rx.1;
    st[3] = l.tx.1;
    let st: Vec<u8> = st.iter().flat_map(|v| v.to_ne_bytes()).collect();
    attr(&mut b, 23, &st);
    let st32: Vec<u8> = st
        .chunks(8)
        .flat_map(|c| (u64::from_ne_bytes(c.try_into().unwrap_or_default()) as u32).to_ne_bytes())
        .collect();
    attr(&mut b, 7, &st32); // IFLA_STATS
    b
}

fn addr_body(l: &Link, a: IpAddr, prefix: u8) -> Vec<u8> {
    let mut b = Vec::new();
    let (fam, bytes): (u8, Vec<u8>) = match a {
        IpAddr::V4(v) => (2, v.octets().to_vec()),
        IpAddr::V6(v) => (10, v.octets().to_vec()),
    };
    b.push(fam);
    b.push(prefix);
    b.push(0x80); // IFA_F_PERMANENT
    b.push(addr_scope(a));
    b.extend_from_slice(&l.index.to_ne_bytes());
    attr(&mut b, 1, &bytes); // IFA_ADDRESS
    if fam == 2 {
        attr(&mut b, 2, &bytes); // IFA_LOCAL
        let mut name = l.name.as_bytes().to_vec();
        name.push(0);
        attr(&mut b, 3, &name); // IFA_LABEL
    }
    attr(&mut b, 8, &0x80u32.to_ne_bytes()); // IFA_FLAGS
    // IFA_CACHEINFO: preferred and valid lifetimes forever.
    let ci: Vec<u8> = [u32::MAX, u32::MAX, 0, 0]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    attr(&mut b, 6, &ci);
    b
}

/// The scope of address `a`: `RT_SCOPE_HOST` for loopback, `RT_SCOPE_LINK` for IPv6
/// link-local, `RT_SCOPE_UNIVERSE` otherwise.
fn addr_scope(a: IpAddr) -> u8 {
    match a {
        _ if a.is_loopback() => 254,
        IpAddr::V6(v) if v.is_unicast_link_local() => 253,
        _ => 0,
    }
}

/// The main table's routes of link `l` (`ip route`, `ip -6 route`): the subnet of each
/// IPv4 address (scope link), the prefix of each IPv6 address (metric 256), and the
/// default routes through the link's gateways (IPv6: metric 1024), as Linux lists them.
/// The family is each body's first byte.
fn main_route_bodies(l: &Link) -> Vec<Vec<u8>> {
    if l.flags & super::IFF_LOOPBACK != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(gw) = l.gateway {
        let mut b = vec![2, 0, 0, 0, 254, 3, 0, 1]; // main, boot, scope universe, unicast
        b.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut b, 15, &254u32.to_ne_bytes()); // RTA_TABLE
        attr(&mut b, 5, &gw.octets()); // RTA_GATEWAY
        attr(&mut b, 4, &l.index.to_ne_bytes()); // RTA_OIF
        out.push(b);
    }
    let mut prefixes6: Vec<(std::net::Ipv6Addr, u8)> = Vec::new();
    for (a, prefix) in &l.addrs {
        if let IpAddr::V6(v) = a {
            let p = u32::from((*prefix).min(128));
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            let net = std::net::Ipv6Addr::from(u128::from(*v) & m);
            if !prefixes6.contains(&(net, *prefix)) {
                prefixes6.push((net, *prefix));
            }
        }
    }
    for (net, prefix) in prefixes6 {
        let mut b = vec![10, prefix, 0, 0, 254, 2, 0, 1]; // main, kernel, scope universe, unicast
        b.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut b, 15, &254u32.to_ne_bytes()); // RTA_TABLE
        attr(&mut b, 1, &net.octets()); // RTA_DST
        attr(&mut b, 6, &256u32.to_ne_bytes()); // RTA_PRIORITY
        attr(&mut b, 4, &l.index.to_ne_bytes()); // RTA_OIF
        attr(&mut b, 20, &[0]); // RTA_PREF: medium
        out.push(b);
    }
    if let Some(gw) = l.gateway6 {
        let mut b = vec![10, 0, 0, 0, 254, 3, 0, 1]; // main, boot, scope universe, unicast
        b.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut b, 15, &254u32.to_ne_bytes()); // RTA_TABLE
        attr(&mut b, 5, &gw.octets()); // RTA_GATEWAY
        attr(&mut b, 6, &1024u32.to_ne_bytes()); // RTA_PRIORITY
        attr(&mut b, 4, &l.index.to_ne_bytes()); // RTA_OIF
        attr(&mut b, 20, &[0]); // RTA_PREF: medium
        out.push(b);
    }
    for (a, prefix) in &l.addrs {
        let IpAddr::V4(v) = a else { continue };
        let m = if *prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(*prefix))
        };
        let mut b = vec![2, *prefix, 0, 0, 254, 2, 253, 1]; // main, kernel, scope link, unicast
        b.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut b, 15, &254u32.to_ne_bytes()); // RTA_TABLE
        attr(&mut b, 1, &(u32::from(*v) & m).to_be_bytes()); // RTA_DST
        attr(&mut b, 7, &v.octets()); // RTA_PREFSRC
        attr(&mut b, 4, &l.index.to_ne_bytes()); // RTA_OIF
        out.push(b);
    }
    out
}

fn route_body(l: &Link, a: IpAddr, prefix: u8) -> Vec<u8> {
    // The local table's route to the interface's own address range (`ip route show
    // table local`): loopback's whole range, another link's address alone.
    let prefix = if l.flags & super::IFF_LOOPBACK != 0 {
        prefix
    } else if a.is_ipv4() {
        32
    } else {
        128
    };
    let mut b = Vec::new();
    let (fam, bytes): (u8, Vec<u8>) = match a {
        IpAddr::V4(v) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            (2, (u32::from(v) & m).to_be_bytes().to_vec())
        }
        IpAddr::V6(v) => (10, v.octets().to_vec()),
    };
    b.extend_from_slice(&[fam, prefix, 0, 0, 255, 2, 254, 2]); // table local, proto kernel, scope host, RTN_LOCAL
    b.extend_from_slice(&0u32.to_ne_bytes());
    attr(&mut b, 15, &255u32.to_ne_bytes()); // RTA_TABLE
    attr(&mut b, 1, &bytes); // RTA_DST
    attr(&mut b, 4, &l.index.to_ne_bytes()); // RTA_OIF
    if let IpAddr::V4(v) = a {
        attr(&mut b, 7, &v.octets()); // RTA_PREFSRC
    }
    b
}

impl NetlinkSocket {
    /// `socket(AF_NETLINK, ty, protocol)`.
    pub fn new(
        stack: &Arc<Stack>,
        ty: i32,
        protocol: i32,
        owner_tgid: i32,
    ) -> Result<Arc<NetlinkSocket>, Errno> {
        if ty != 3 && ty != 2 {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        if protocol != NETLINK_ROUTE {
            return Err(Errno::EPROTONOSUPPORT);
        }
        Ok(Arc::new(NetlinkSocket {
            stack: stack.clone(),
            ty,
            port: AtomicU32::new(0),
            queue: WaitQueue::new(),
            replies: Mutex::new(VecDeque::new()),
            nonblock: AtomicBool::new(false),
            bufs: Mutex::new((212_992, 212_992)),
            owner_tgid,
        }))
    }

    /// Queues `msg` for the socket's reader as it is: a message of the kernel's own (a
    /// POSIX message queue's `SIGEV_THREAD` cookie, which has no netlink header).
    pub fn deliver(&self, msg: Vec<u8>) {
        self.replies.lock().push_back(msg);
        self.queue.notify(events::POLLIN | events::POLLRDNORM);
    }

    /// Sets `O_NONBLOCK`.
    pub fn set_nonblock(&self, nb: bool) {
        self.nonblock.store(nb, Ordering::Relaxed);
    }

    fn port_id(&self) -> u32 {
        let p = self.port.load(Ordering::Relaxed);
        if p != 0 {
            return p;
        }
        // Autobind: the owner's thread group id, as Linux's first choice.
        let id = self.owner_tgid.max(1) as u32;
        let _ = self
            .port
            .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed);
        self.port.load(Ordering::Relaxed)
    }

    fn answer(&self, req: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut off = 0;
        let port = self.port_id();
        while off + 16 <= req.len() {
            let len = u32::from_ne_bytes(req[off..off + 4].try_into().unwrap_or_default()) as usize;
            if len < 16 || off + len > req.len() {
                break;
            }
            let ty = u16::from_ne_bytes([req[off + 4], req[off + 5]]);
            let flags = u16::from_ne_bytes([req[off + 6], req[off + 7]]);
            let seq = u32::from_ne_bytes(req[off + 8..off + 12].try_into().unwrap_or_default());
            let hdr = &req[off..off + 16];
            let body = &req[off + 16..off + len];
            let family = body.first().copied().unwrap_or(0);
            let links = self.stack.links();
            let done = |out: &mut Vec<Vec<u8>>| {
                out.push(message(
                    NLMSG_DONE,
                    NLM_F_MULTI,
                    seq,
                    port,
                    &0i32.to_ne_bytes(),
                ));
            };
            let mut err: i32 = 0;
            match ty {
                RTM_GETLINK if flags & NLM_F_DUMP == NLM_F_DUMP => {
                    for l in &links {
                        out.push(message(RTM_NEWLINK, NLM_F_MULTI, seq, port, &link_body(l)));
                    }
                    done(&mut out);
                    off += align4(len);
                    continue;
                }
                RTM_GETLINK => {
                    // By index (ifinfomsg.ifi_index) or by IFLA_IFNAME.
                    let idx = body
                        .get(4..8)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().unwrap_or_default()));
                    let name = find_attr(body.get(16..).unwrap_or_default(), 3)
                        .map(|n| n.split(|&b| b == 0).next().unwrap_or_default().to_vec());
                    match links.iter().find(|l| {
                        (idx > 0 && l.index as i32 == idx)
                            || name.as_deref() == Some(l.name.as_bytes())
                    }) {
                        Some(l) => {
                            out.push(message(RTM_NEWLINK, 0, seq, port, &link_body(l)));
                            if flags & NLM_F_ACK == 0 {
                                off += align4(len);
                                continue;
                            }
                        }
                        None => err = -Errno::ENODEV.raw(),
                    }
                }
                RTM_GETADDR => {
                    for l in &links {
                        for (a, p) in &l.addrs {
                            let f = if a.is_ipv4() { 2 } else { 10 };
                            if family == 0 || family == f {
                                out.push(message(
                                    RTM_NEWADDR,
                                    NLM_F_MULTI,
                                    seq,
                                    port,
                                    &addr_body(l, *a, *p),
                                ));
                            }
                        }
                    }
                    done(&mut out);
                    off += align4(len);
                    continue;
                }
                RTM_GETROUTE => {
                    for l in &links {
                        for body in main_route_bodies(l) {
                            if family == 0 || body.first() == Some(&family) {
                                out.push(message(RTM_NEWROUTE, NLM_F_MULTI, seq, port, &body));
                            }
                        }
                        for (a, p) in &l.addrs {
                            let f = if a.is_ipv4() { 2 } else { 10 };
                            if family == 0 || family == f {
                                out.push(message(
                                    RTM_NEWROUTE,
                                    NLM_F_MULTI,
                                    seq,
                                    port,
                                    &route_body(l, *a, *p),
                                ));
                            }
                        }
                    }
                    done(&mut out);
                    off += align4(len);
                    continue;
                }
                RTM_NEWADDR | RTM_DELADDR => {
                    err = match self.change_addr(ty == RTM_NEWADDR, body) {
                        Ok(()) => 0,
                        Err(e) => -e.raw(),
                    };
                }
                _ => err = -Errno::EOPNOTSUPP.raw(),
            }
            if err != 0 || flags & NLM_F_ACK != 0 {
                let mut b = err.to_ne_bytes().to_vec();
                b.extend_from_slice(hdr);
                out.push(message(NLMSG_ERROR, 0, seq, port, &b));
            }
            off += align4(len);
        }
        out
    }

    fn change_addr(&self, add: bool, body: &[u8]) -> Result<(), Errno> {
        if body.len() < 8 {
            return Err(Errno::EINVAL);
        }
        let (fam, prefix) = (body[0], body[1]);
        let index = u32::from_ne_bytes(body[4..8].try_into().unwrap_or_default());
        let attrs = &body[8..];
        let raw = find_attr(attrs, 2)
            .or_else(|| find_attr(attrs, 1))
            .ok_or(Errno::EINVAL)?;
        let a: IpAddr = match (fam, raw.len()) {
            (2, 4) => std::net::Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]).into(),
            (10, 16) => {
                let mut o = [0u8; 16];
                o.copy_from_slice(raw);
                std::net::Ipv6Addr::from(o).into()
            }
            _ => return Err(Errno::EINVAL),
        };
        self.stack.change_addr(index, a, prefix, add)
    }
}

/// The payload of the first attribute of type `ty` in `attrs`.
fn find_attr(attrs: &[u8], ty: u16) -> Option<&[u8]> {
    let mut off = 0;
    while off + 4 <= attrs.len() {
        let len = u16::from_ne_bytes([attrs[off], attrs[off + 1]]) as usize;
        let t = u16::from_ne_bytes([attrs[off + 2], attrs[off + 3]]) & 0x3fff;
        if len < 4 || off + len > attrs.len() {
            return None;
        }
        if t == ty {
            return Some(&attrs[off + 4..off + len]);
        }
        off += align4(len);
    }
    None
}

fn sockaddr_nl(port: u32) -> Vec<u8> {
    let mut v = vec![0u8; SOCKADDR_NL_LEN];
    v[..2].copy_from_slice(&(AF_NETLINK as u16).to_ne_bytes());
    v[4..8].copy_from_slice(&port.to_ne_bytes());
    v
}

impl SocketOps for NetlinkSocket {
    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        if raw.len() < SOCKADDR_NL_LEN
            || i32::from(u16::from_ne_bytes([raw[0], raw[1]])) != AF_NETLINK
        {
            return Err(Errno::EINVAL);
        }
        let pid = u32::from_ne_bytes(raw[4..8].try_into().unwrap_or_default());
        if pid != 0 {
            self.port.store(pid, Ordering::Relaxed);
        } else {
            self.port_id();
        }
        Ok(())
    }

    fn connect(&self, raw: &[u8]) -> Result<(), Errno> {
        if raw.len() < SOCKADDR_NL_LEN {
            return Err(Errno::EINVAL);
        }
        self.port_id();
        Ok(())
    }

    fn send(&self, data: &[u8], _to: Option<&[u8]>, _flags: u32) -> Result<usize, Errno> {
        let replies = self.answer(data);
        self.replies.lock().extend(replies);
        self.queue.notify(events::POLLIN | events::POLLRDNORM);
        Ok(data.len())
    }

    fn recv(&self, len: usize, flags: u32) -> Result<Received, Errno> {
        let nb = flags & MSG_DONTWAIT != 0 || self.nonblock.load(Ordering::Relaxed);
        let op = || {
            let mut q = self.replies.lock();
            let m = if flags & MSG_PEEK != 0 {
                q.front().cloned()
            } else {
                q.pop_front()
            };
            m.ok_or(Errno::EAGAIN)
        };
        let m = if nb {
            op()?
        } else {
            block_on(&[(&self.queue, events::POLLIN)], None, op)?
        };
        Ok(Received {
            full_len: m.len(),
            data: m[..m.len().min(len)].to_vec(),
            control: Vec::new(),
            from: Some(sockaddr_nl(0)),
        })
    }

    fn shutdown(&self, _how: i32) -> Result<(), Errno> {
        Ok(())
    }

    fn name(&self) -> Vec<u8> {
        sockaddr_nl(self.port_id())
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        Ok(sockaddr_nl(0))
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        let b = self.bufs.lock();
        match (level, name) {
            (1, 3) => Ok(self.ty.to_ne_bytes().to_vec()),
            (1, 7) => Ok((b.1 * 2).to_ne_bytes().to_vec()),
            (1, 8) => Ok((b.0 * 2).to_ne_bytes().to_vec()),
            (1, 38) => Ok(NETLINK_ROUTE.to_ne_bytes().to_vec()),
            (1, 39) => Ok(AF_NETLINK.to_ne_bytes().to_vec()),
            (1, 4) => Ok(0i32.to_ne_bytes().to_vec()),
            (270, _) => Ok(0i32.to_ne_bytes().to_vec()),
            _ => Err(Errno::ENOPROTOOPT),
        }
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        let v = val
            .get(..4)
            .map(|b| i32::from_ne_bytes(b.try_into().unwrap_or_default()));
        match (level, name) {
            (1, 7 | 32) => self.bufs.lock().1 = v.ok_or(Errno::EINVAL)?.max(2304),
            (1, 8 | 33) => self.bufs.lock().0 = v.ok_or(Errno::EINVAL)?.max(2304),
            (1, 16 | 35 | 40 | 47) => {}
            // SOL_NETLINK: membership, extended acks, strict checking, caps...
            (270, 1..=12) => {}
            _ => return Err(Errno::ENOPROTOOPT),
        }
        Ok(())
    }
}

impl FileOps for NetlinkSocket {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let r = self.recv(buf.len(), 0)?;
        buf[..r.data.len()].copy_from_slice(&r.data);
        Ok(r.data.len())
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        self.send(buf, None, 0)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readiness(&self, mask: Events) -> Events {
        let mut ev = events::POLLOUT | events::POLLWRNORM;
        if !self.replies.lock().is_empty() {
            ev |= events::POLLIN | events::POLLRDNORM;
        }
        ev & (mask | events::ALWAYS)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.set_nonblock(flags & linux_abi::flags::open::O_NONBLOCK != 0);
        Ok(())
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        super::ifreq::ioctl(&self.stack, cmd, arg, mem)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// `--network=sandbox`'s `eth0` as everything the application reads shows it: the
    /// interface list, the netlink address and route messages, `/proc/net/if_inet6`.
    #[test]
    fn eth0s_ipv6_addresses_and_routes_are_listed_everywhere() {
        let (a, _peer) = std::os::unix::net::UnixDatagram::pair().expect("pair");
        let stack = Stack::new_loopback();
        let ula: Ipv6Addr = "fd52:7362:6e74:9::2".parse().expect("addr");
        let gw: Ipv6Addr = "fd52:7362:6e74:9::1".parse().expect("addr");
        let ll: Ipv6Addr = "fe80::52:aff:fed5:2".parse().expect("addr");
        stack.attach_ethernet(crate::EthernetConfig {
            packet: std::os::fd::OwnedFd::from(a),
            mac: [2, 0x52, 10, 0xd5, 0, 2],
            addr: Ipv4Addr::new(10, 213, 0, 2),
            prefix: 30,
            gateway: Some(Ipv4Addr::new(10, 213, 0, 1)),
            addrs6: vec![(ula, 64)],
            gateway6: Some(gw),
        });
        let links = stack.links();
        assert_eq!(
            links[0].addrs,
            [
                (IpAddr::V4(Ipv4Addr::LOCALHOST), 8),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), 128)
            ]
        );
        let eth = &links[1];
        assert_eq!(
            eth.addrs,
            [
                (IpAddr::V4(Ipv4Addr::new(10, 213, 0, 2)), 30),
                (IpAddr::V6(ula), 64),
                (IpAddr::V6(ll), 64)
            ]
        );
        assert_eq!(eth.gateway6, Some(gw));
        // Scopes: global for the unique local address, link for fe80::.
        assert_eq!(addr_body(eth, IpAddr::V6(ula), 64)[3], 0);
        assert_eq!(addr_body(eth, IpAddr::V6(ll), 64)[3], 253);
        // The main table: (family, prefix length, destination or gateway).
        let routes: Vec<(u8, u8, Vec<u8>)> = main_route_bodies(eth)
            .iter()
            .map(|b| {
                let attrs = &b[12..];
                let what = find_attr(attrs, 1)
                    .or_else(|| find_attr(attrs, 5))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                (b[0], b[1], what)
            })
            .collect();
        let v6 = |s: &str| s.parse::<Ipv6Addr>().expect("addr").octets().to_vec();
        assert!(
            routes.contains(&(10, 64, v6("fd52:7362:6e74:9::"))),
            "{routes:?}"
        );
        assert!(routes.contains(&(10, 64, v6("fe80::"))), "{routes:?}");
        assert!(
            routes.contains(&(10, 0, gw.octets().to_vec())),
            "{routes:?}"
        );
        assert!(routes.contains(&(2, 0, vec![10, 213, 0, 1])), "{routes:?}");
        assert_eq!(routes.len(), 5, "{routes:?}");
        let if_inet6 = String::from_utf8(
            super::super::procnet::render(&stack, b"if_inet6").expect("if_inet6"),
        )
        .expect("utf-8");
        assert_eq!(
            if_inet6,
            "00000000000000000000000000000001 01 80 10 80       lo\n\
             fd5273626e7400090000000000000002 02 40 00 80     eth0\n\
             fe8000000000000000520afffed50002 02 40 20 80     eth0\n"
        );
    }
}
