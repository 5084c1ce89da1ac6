//! The Ethernet link of `--network=sandbox`: IPv4 and IPv6 over a packet socket on the
//! sandbox's end of a veth pair, with ARP and IPv6 neighbour discovery (ours: smoltcp's
//! interface stays an IP one, shared with `lo`, and the device sends each outgoing packet
//! to loopback or to this link).
//!
//! Addresses: one IPv4 address with its subnet, and IPv6 addresses with their prefixes:
//! those the namespace gave the interface, and a link-local `fe80::/64` one made from the
//! hardware address by EUI-64 (as Linux makes it) when none of them is link-local. Each
//! family may have a default gateway.
//!
//! Outgoing: the next hop is the destination when it is on the link (IPv4: the subnet;
//! IPv6: `fe80::/10` or one of the prefixes), the gateway otherwise; its hardware address
//! comes from the neighbour tables, or else an ARP request is broadcast (IPv4) or a
//! Neighbor Solicitation is sent to the next hop's solicited-node multicast group (IPv6,
//! RFC 4861 §7.2.2), and the packet waits (a few per neighbour; TCP retransmits the
//! rest). IPv6 multicast goes to its `33:33:*` group address (RFC 2464 §7).
//!
//! Incoming: frames to our hardware address, to broadcast, and to the `33:33:*` addresses
//! of the groups we are in (all-nodes, and the solicited-node group of each address).
//! ARP requests for our address are answered and every ARP sender on the subnet is
//! learnt. Neighbour discovery is the link's, never the stack's: a Neighbor Solicitation
//! for one of our addresses is answered with an advertisement (to the all-nodes group if
//! it came from the unspecified address, as in duplicate address detection), and the
//! link-layer options of solicitations and advertisements are learnt; the messages are
//! validated as RFC 4861 §7.1 says (hop limit 255, code 0, checksum, no multicast target,
//! and the rules for the unspecified source), router advertisements and redirects are
//! ignored (the addresses and routes are those of the namespace). Other IPv4 and IPv6
//! packets to us go to the stack.
//!
//! Fragments: a packet over the link's MTU is cut into fragments on its way out (IPv4
//! fragments; IPv6 ones with a Fragment header after the unfragmentable part, RFC 8200
//! §4.5: smoltcp's interface is loopback-sized and never fragments), and fragments coming
//! in are reassembled before the stack sees them (as Linux's `ip_fragment`/`ip_defrag` and
//! their IPv6 counterparts: at most [`REASSEMBLY_MAX`] datagrams of either family at once,
//! each given up after [`REASSEMBLY_TIMEOUT`]; an IPv6 fragment overlapping another throws
//! the datagram away, RFC 5722, and neighbour discovery in fragments is ignored, RFC 6980).
//! The host's side sees ordinary Ethernet frames; nothing else of the host is reachable
//! (the host's loopback is not on the link).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
};

/// The link's MTU (the veth's).
pub const ETH_MTU: usize = 1500;
/// Packets kept waiting for neighbours' answers, at most.
const PENDING_MAX: usize = 64;
/// Datagrams being reassembled at once, at most (the oldest is given up for a new one).
pub const REASSEMBLY_MAX: usize = 64;
/// How long a datagram's fragments wait for the rest (Linux's `ipfrag_time`).
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);
const BROADCAST: [u8; 6] = [0xff; 6];
/// The IPv6 all-nodes group.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// ICMPv6 types of neighbour discovery (RFC 4861 §4).
const ND_ROUTER_SOLICIT: u8 = 133;
const ND_REDIRECT: u8 = 137;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
/// Neighbor Advertisement flags (RFC 4861 §4.4).
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;
/// IPv6 next-header numbers.
const NH_HOP_BY_HOP: u8 = 0;
const NH_ROUTING: u8 = 43;
const NH_FRAGMENT: u8 = 44;
const NH_ICMPV6: u8 = 58;
const NH_DEST_OPTS: u8 = 60;
/// The IPv6 fixed header's length.
const IPV6_HEADER: usize = 40;

/// The link-local address Linux gives an Ethernet interface: `fe80::/64` and the
/// interface identifier made from the hardware address by EUI-64 (RFC 4291 appendix A:
/// `ff:fe` in the middle, the universal/local bit inverted).
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[0] = 0xfe;
    o[1] = 0x80;
    o[8] = mac[0] ^ 2;
    o[9] = mac[1];
    o[10] = mac[2];
    o[11] = 0xff;
    o[12] = 0xfe;
    o[13..16].copy_from_slice(&mac[3..6]);
    Ipv6Addr::from(o)
}

/// The solicited-node multicast group of `a` (RFC 4291 §2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    let mut g = [0u8; 16];
    g[0] = 0xff;
    g[1] = 0x02;
    g[11] = 1;
    g[12] = 0xff;
    g[13..16].copy_from_slice(&o[13..16]);
    Ipv6Addr::from(g)
}

/// The Ethernet address of IPv6 multicast group `g` (RFC 2464 §7).
fn multicast_mac(g: Ipv6Addr) -> [u8; 6] {
    let o = g.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// Whether `a` is in `net`/`prefix`.
fn in_prefix6(a: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let p = u32::from(prefix.min(128));
    let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
    u128::from(a) & m == u128::from(net) & m
}

/// The Ethernet link (see the module documentation).
#[derive(Debug)]
pub struct EthLink {
    file: Arc<std::fs::File>,
    /// Our hardware address.
    pub mac: [u8; 6],
    /// Our address.
    pub addr: Ipv4Addr,
    /// The subnet's prefix length.
    pub prefix: u8,
    /// The default gateway, if the link has a default route.
    pub gateway: Option<Ipv4Addr>,
    /// Our IPv6 addresses with their prefix lengths, a link-local one among them (the
    /// one made from `mac` last).
    pub addrs6: Vec<(Ipv6Addr, u8)>,
    /// The IPv6 default gateway, if the link has an IPv6 default route.
    pub gateway6: Option<Ipv6Addr>,
    neighbors: HashMap<Ipv4Addr, [u8; 6]>,
    neighbors6: HashMap<Ipv6Addr, [u8; 6]>,
    /// Packets waiting for their next hop's hardware address.
    pending: VecDeque<(IpAddr, Bytes)>,
    /// The identification of the next datagram this link fragments.
    next_ident: u16,
    /// The same for IPv6.
    next_ident6: u32,
    /// Datagrams being reassembled.
    reassembly: HashMap<FragKey, Reassembly>,
    /// (packets, bytes) received and sent, for `/proc/net/dev` and netlink.
    pub rx: (u64, u64),
    /// See `rx`.
    pub tx: (u64, u64),
}

impl EthLink {
    /// A link over `file` (the packet socket), with IPv4 address `addr` and the
    /// link-local IPv6 address of `mac` (see [`EthLink::set_ipv6`]).
    pub fn new(
        file: Arc<std::fs::File>,
        mac: [u8; 6],
        addr: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
    ) -> EthLink {
        EthLink {
            file,
            mac,
            addr,
            prefix: prefix.min(32),
            gateway,
            addrs6: vec![(link_local(mac), 64)],
            gateway6: None,
            neighbors: HashMap::new(),
            neighbors6: HashMap::new(),
            pending: VecDeque::new(),
            next_ident: 1,
            next_ident6: 1,
            reassembly: HashMap::new(),
            rx: (0, 0),
            tx: (0, 0),
        }
    }

    /// Sets the link's IPv6 addresses and default gateway: `addrs` (unicast ones only;
    /// prefixes over 128 are taken as 128), and the link-local address of the hardware
    /// address after them when none of them is link-local.
    pub fn set_ipv6(&mut self, addrs: &[(Ipv6Addr, u8)], gateway: Option<Ipv6Addr>) {
        let mut v: Vec<(Ipv6Addr, u8)> = Vec::new();
        for &(a, p) in addrs {
            if a.is_unspecified() || a.is_loopback() || a.is_multicast() {
                continue;
            }
            if !v.iter().any(|(b, _)| *b == a) {
                v.push((a, p.min(128)));
            }
        }
        // Listed after the others, as Linux lists an interface's addresses (by scope).
        if !v.iter().any(|(a, _)| is_link_local(*a)) {
            v.push((link_local(self.mac), 64));
        }
        self.addrs6 = v;
        self.gateway6 = gateway.filter(|g| !g.is_multicast() && !g.is_unspecified());
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    fn on_link(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr) & self.mask()
    }

    fn is_broadcast(&self, a: Ipv4Addr) -> bool {
        a.is_broadcast() || (self.on_link(a) && u32::from(a) | self.mask() == u32::MAX)
    }

    /// Whether IPv6 address `a` is on the link: link-local, or in one of our prefixes.
    fn on_link6(&self, a: Ipv6Addr) -> bool {
        is_link_local(a) || self.addrs6.iter().any(|&(n, p)| in_prefix6(a, n, p))
    }

    /// Whether `a` is one of our IPv6 addresses.
    fn is_mine6(&self, a: Ipv6Addr) -> bool {
        self.addrs6.iter().any(|(b, _)| *b == a)
    }

    /// Whether we are in multicast group `g`: all-nodes, or the solicited-node group of
    /// one of our addresses.
    fn in_group(&self, g: Ipv6Addr) -> bool {
        g == ALL_NODES || self.addrs6.iter().any(|(a, _)| solicited_node(*a) == g)
    }

    /// Whether a frame to hardware address `dst` is ours to take.
    fn accepts(&self, dst: [u8; 6]) -> bool {
        dst == self.mac
            || dst == BROADCAST
            || (dst[..2] == [0x33, 0x33]
                && (dst == multicast_mac(ALL_NODES)
                    || self
                        .addrs6
                        .iter()
                        .any(|(a, _)| multicast_mac(solicited_node(*a)) == dst)))
    }

    /// Whether a packet to `dst` leaves through this link (not loopback, not ourselves).
    pub fn takes(&self, dst: Ipv4Addr) -> bool {
        !dst.is_loopback() && dst != self.addr && !dst.is_unspecified()
    }

    /// The same for an IPv6 destination.
    pub fn takes6(&self, dst: Ipv6Addr) -> bool {
        !dst.is_loopback() && !dst.is_unspecified() && !self.is_mine6(dst)
    }

    fn send_frame(&mut self, dst: [u8; 6], proto: EthernetProtocol, payload: &[u8]) {
        let mut buf = vec![0u8; 14 + payload.len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(EthernetAddress(dst));
        f.set_src_addr(EthernetAddress(self.mac));
        f.set_ethertype(proto);
        f.payload_mut().copy_from_slice(payload);
        // A packet socket sends a frame whole or not at all.
        match (&*self.file).write_all(&buf) {
            Ok(()) => {
                self.tx.0 += 1;
                self.tx.1 += buf.len() as u64;
            }
            Err(e) => tracing::debug!("eth0: frame not sent: {e}"),
        }
    }

    fn arp(&mut self, op: ArpOperation, dst_mac: [u8; 6], target: Ipv4Addr, target_mac: [u8; 6]) {
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(self.mac),
            source_protocol_addr: self.addr,
            target_hardware_addr: EthernetAddress(target_mac),
            target_protocol_addr: target,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        self.send_frame(dst_mac, EthernetProtocol::Arp, &buf);
    }

    /// Sends the IPv4 packet `pkt` (checksums filled) to `dst`, in fragments if it is
    /// over the link's MTU.
    pub fn send_ip(&mut self, pkt: Bytes, dst: Ipv4Addr) {
        if pkt.len() <= ETH_MTU {
            self.send_one(pkt, dst);
            return;
        }
        let ident = self.next_ident;
        self.next_ident = self.next_ident.wrapping_add(1);
        for f in fragments(&pkt, ETH_MTU, ident) {
            self.send_one(f, dst);
        }
    }

    /// Sends one packet that fits the link to `dst` (resolving its next hop first).
    fn send_one(&mut self, pkt: Bytes, dst: Ipv4Addr) {
        if self.is_broadcast(dst) {
            self.send_frame(BROADCAST, EthernetProtocol::Ipv4, &pkt);
            return;
        }
        let hop = match (self.on_link(dst), self.gateway) {
            (true, _) => dst,
            (false, Some(gw)) => gw,
            (false, None) => {
                tracing::debug!(%dst, "eth0: no route off the link");
                return;
            }
        };
        if let Some(mac) = self.neighbors.get(&hop).copied() {
            self.send_frame(mac, EthernetProtocol::Ipv4, &pkt);
            return;
        }
        self.wait(IpAddr::V4(hop), pkt);
        self.arp(ArpOperation::Request, BROADCAST, hop, [0; 6]);
    }

    /// Keeps `pkt` until `hop`'s hardware address is known.
    fn wait(&mut self, hop: IpAddr, pkt: Bytes) {
        if self.pending.len() >= PENDING_MAX {
            self.pending.pop_front();
        }
        self.pending.push_back((hop, pkt));
    }

    /// Sends the IPv6 packet `pkt` (checksums filled) to `dst`, in fragments if it is
    /// over the link's MTU.
    pub fn send_ip6(&mut self, pkt: Bytes, dst: Ipv6Addr) {
        if pkt.len() <= ETH_MTU {
            self.send_one6(pkt, dst);
            return;
        }
        let ident = self.next_ident6;
        self.next_ident6 = self.next_ident6.wrapping_add(1);
        for f in fragments6(&pkt, ETH_MTU, ident) {
            self.send_one6(f, dst);
        }
    }

    /// Sends one IPv6 packet that fits the link to `dst` (resolving its next hop first).
    fn send_one6(&mut self, pkt: Bytes, dst: Ipv6Addr) {
        if dst.is_multicast() {
            self.send_frame(multicast_mac(dst), EthernetProtocol::Ipv6, &pkt);
            return;
        }
        let hop = match (self.on_link6(dst), self.gateway6) {
            (true, _) => dst,
            (false, Some(gw)) => gw,
            (false, None) => {
                tracing::debug!(%dst, "eth0: no IPv6 route off the link");
                return;
            }
        };
        if let Some(mac) = self.neighbors6.get(&hop).copied() {
            self.send_frame(mac, EthernetProtocol::Ipv6, &pkt);
            return;
        }
        self.wait(IpAddr::V6(hop), pkt);
        self.solicit(hop);
    }

    /// Our address to send from to on-link `to`: the link-local one for a link-local
    /// destination, else one whose prefix holds it, else the link-local one.
    fn source6(&self, to: Ipv6Addr) -> Ipv6Addr {
        let ll = self
            .addrs6
            .iter()
            .find(|(a, _)| is_link_local(*a))
            .map_or_else(|| link_local(self.mac), |(a, _)| *a);
        if is_link_local(to) {
            return ll;
        }
        self.addrs6
            .iter()
            .find(|&&(a, p)| !is_link_local(a) && in_prefix6(to, a, p))
            .map_or(ll, |(a, _)| *a)
    }

    /// Sends a Neighbor Solicitation for `target` to its solicited-node group, with our
    /// hardware address as the source link-layer option (RFC 4861 §7.2.2).
    fn solicit(&mut self, target: Ipv6Addr) {
        let mut icmp = vec![ND_NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&self.mac);
        let group = solicited_node(target);
        let pkt = ndp_packet(self.source6(target), group, &icmp);
        self.send_frame(multicast_mac(group), EthernetProtocol::Ipv6, &pkt);
    }

    /// Sends a Neighbor Advertisement for our `target` to `to` at `to_mac`, with our
    /// hardware address as the target link-layer option (RFC 4861 §7.2.4).
    fn advertise(&mut self, target: Ipv6Addr, to: Ipv6Addr, to_mac: [u8; 6], solicited: bool) {
        let flags = NA_OVERRIDE | if solicited { NA_SOLICITED } else { 0 };
        let mut icmp = vec![ND_NEIGHBOR_ADVERT, 0, 0, 0, flags, 0, 0, 0];
        icmp.extend_from_slice(&target.octets());
        icmp.extend_from_slice(&[2, 1]);
        icmp.extend_from_slice(&self.mac);
        let pkt = ndp_packet(target, to, &icmp);
        self.send_frame(to_mac, EthernetProtocol::Ipv6, &pkt);
    }

    /// Takes one received frame: the IP packet in it for the stack, if any.
    pub fn input(&mut self, frame: &[u8]) -> Option<Bytes> {
        let f = EthernetFrame::new_checked(frame).ok()?;
        if !self.accepts(f.dst_addr().0) {
            return None;
        }
        self.rx.0 += 1;
        self.rx.1 += frame.len() as u64;
        match f.ethertype() {
            EthernetProtocol::Ipv4 => self.reassemble(f.payload(), Instant::now()),
            EthernetProtocol::Ipv6 => self.input6(f.payload(), f.src_addr().0, Instant::now()),
            EthernetProtocol::Arp => {
                let p = ArpPacket::new_checked(f.payload()).ok()?;
                let ArpRepr::EthernetIpv4 {
                    operation,
                    source_hardware_addr,
                    source_protocol_addr,
                    target_protocol_addr,
                    ..
                } = ArpRepr::parse(&p).ok()?
                else {
                    return None;
                };
                let (sip, smac) = (source_protocol_addr, source_hardware_addr.0);
                if self.on_link(sip) && smac != BROADCAST && smac[0] & 1 == 0 {
                    self.neighbors.insert(sip, smac);
                    self.flush(IpAddr::V4(sip), smac);
                }
                if operation == ArpOperation::Request && target_protocol_addr == self.addr {
                    self.arp(ArpOperation::Reply, smac, sip, smac);
                }
                None
            }
            _ => None,
        }
    }

    /// An IPv6 packet from hardware address `from`: neighbour discovery is handled here,
    /// anything else to one of our addresses or groups goes to the stack (reassembled).
    fn input6(&mut self, p: &[u8], from: [u8; 6], now: Instant) -> Option<Bytes> {
        let ip = smoltcp::wire::Ipv6Packet::new_checked(p).ok()?;
        let dst = ip.dst_addr();
        if !self.is_mine6(dst) && !self.in_group(dst) {
            return None;
        }
        // The packet as the header says it is: a frame may carry padding after it.
        let p = &p[..IPV6_HEADER + usize::from(ip.payload_len())];
        if ndp_type(p).is_some() {
            self.neighbor_discovery(p, from);
            return None;
        }
        let whole = self.reassemble6(p, now)?;
        // Neighbour discovery in fragments is not to be believed (RFC 6980).
        if ndp_type(&whole).is_some() {
            return None;
        }
        Some(whole)
    }

    /// A neighbour discovery message (`p`, a whole IPv6 packet) from hardware address
    /// `from`, validated as RFC 4861 §7.1.1 and §7.1.2 say.
    fn neighbor_discovery(&mut self, p: &[u8], from: [u8; 6]) {
        let ip = smoltcp::wire::Ipv6Packet::new_unchecked(p);
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let icmp = &p[IPV6_HEADER..];
        if ip.hop_limit() != 255 || icmp.len() < 24 || icmp[1] != 0 {
            return;
        }
        let checked = smoltcp::wire::Icmpv6Packet::new_checked(icmp)
            .is_ok_and(|c| c.verify_checksum(&src, &dst));
        if !checked {
            return;
        }
        let ty = icmp[0];
        let mut target = [0u8; 16];
        target.copy_from_slice(&icmp[8..24]);
        let target = Ipv6Addr::from(target);
        if target.is_multicast() {
            return;
        }
        // The options: each a multiple of 8 bytes, none empty.
        let (mut source_ll, mut target_ll) = (None, None);
        let mut opts = &icmp[24..];
        while !opts.is_empty() {
            let len = usize::from(*opts.get(1).unwrap_or(&0)) * 8;
            if len == 0 || len > opts.len() {
                return;
            }
            if len == 8 {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&opts[2..8]);
                match opts[0] {
                    1 => source_ll = Some(mac),
                    2 => target_ll = Some(mac),
                    _ => {}
                }
            }
            opts = &opts[len..];
        }
        match ty {
            ND_NEIGHBOR_SOLICIT => {
                if src.is_unspecified() {
                    // Duplicate address detection: to a solicited-node group, without a
                    // source link-layer option; answered to all nodes.
                    if dst != solicited_node(target) || source_ll.is_some() {
                        return;
                    }
                    if self.is_mine6(target) {
                        self.advertise(target, ALL_NODES, multicast_mac(ALL_NODES), false);
                    }
                    return;
                }
                if let Some(mac) = source_ll {
                    self.learn6(src, mac);
                }
                if self.is_mine6(target) {
                    let to_mac = source_ll
                        .or_else(|| self.neighbors6.get(&src).copied())
                        .unwrap_or(from);
                    self.advertise(target, src, to_mac, true);
                }
            }
            ND_NEIGHBOR_ADVERT => {
                if dst.is_multicast() && icmp[4] & NA_SOLICITED != 0 {
                    return;
                }
                if let Some(mac) = target_ll {
                    self.learn6(target, mac);
                }
            }
            // Router solicitations, advertisements and redirects: the link's addresses
            // and routes are the namespace's.
            _ => {}
        }
    }

    /// Learns that `ip` is at unicast hardware address `mac`, and sends what waited
    /// for it.
    fn learn6(&mut self, ip: Ipv6Addr, mac: [u8; 6]) {
        if mac[0] & 1 != 0 || ip.is_unspecified() || ip.is_multicast() {
            return;
        }
        self.neighbors6.insert(ip, mac);
        self.flush(IpAddr::V6(ip), mac);
    }

    /// The IPv4 packet `p` for the stack: itself if it is whole, the reassembled datagram
    /// if it is the fragment that completes one, `None` while fragments are missing (or
    /// if it is malformed).
    fn reassemble(&mut self, p: &[u8], now: Instant) -> Option<Bytes> {
        let ip = smoltcp::wire::Ipv4Packet::new_checked(p).ok()?;
        // The packet as the header says it is: a frame may carry padding after it.
        let p = &p[..usize::from(ip.total_len())];
        if !ip.more_frags() && ip.frag_offset() == 0 {
            return Some(Bytes::copy_from_slice(p));
        }
        let key = FragKey {
            src: IpAddr::V4(ip.src_addr()),
            dst: IpAddr::V4(ip.dst_addr()),
            ident: u32::from(ip.ident()),
            proto: u8::from(ip.next_header()),
        };
        let hl = usize::from(ip.header_len());
        let frag = Fragment {
            header: &p[..hl],
            offset: usize::from(ip.frag_offset()),
            data: &p[hl..],
            more: ip.more_frags(),
            // The header and payload within the largest IPv4 packet.
            max_end: usize::from(u16::MAX) - hl,
            // Overlaps were allowed by RFC 791; Linux keeps the first.
            overlap_drops: false,
        };
        let (header, data) = self.collect(key, frag, now)?;
        let hl = header.len();
        let mut whole = header;
        whole.extend_from_slice(&data);
        let mut ip = smoltcp::wire::Ipv4Packet::new_unchecked(&mut whole[..]);
        ip.set_total_len(u16::try_from(hl + data.len()).ok()?);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.fill_checksum();
        Some(Bytes::from(whole))
    }

    /// The IPv6 packet `p` for the stack: itself if it has no Fragment header, the
    /// reassembled datagram if it is the fragment that completes one (RFC 8200 §4.5),
    /// `None` while fragments are missing (or if it is malformed).
    fn reassemble6(&mut self, p: &[u8], now: Instant) -> Option<Bytes> {
        let (unfrag, nh_at, nh) = unfragmentable6(p)?;
        if nh != NH_FRAGMENT {
            return Some(Bytes::copy_from_slice(p));
        }
        let fh = p.get(unfrag..unfrag + 8)?;
        let field = u16::from_be_bytes([fh[2], fh[3]]);
        let offset = usize::from(field & !7);
        let more = field & 1 != 0;
        let data = &p[unfrag + 8..];
        let mut header = p[..unfrag].to_vec();
        header[nh_at] = fh[0];
        if offset == 0 && !more {
            // An atomic fragment (RFC 6946): whole, less its Fragment header.
            return Some(Bytes::from(finish6(header, data)?));
        }
        let ip = smoltcp::wire::Ipv6Packet::new_unchecked(p);
        let key = FragKey {
            src: IpAddr::V6(ip.src_addr()),
            dst: IpAddr::V6(ip.dst_addr()),
            ident: u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]),
            proto: NH_FRAGMENT,
        };
        let frag = Fragment {
            header: &header,
            offset,
            data,
            more,
            // The payload length field is 16 bits.
            max_end: usize::from(u16::MAX) - (unfrag - IPV6_HEADER),
            overlap_drops: true,
        };
        let (header, data) = self.collect(key, frag, now)?;
        finish6(header, &data).map(Bytes::from)
    }

    /// Adds fragment `f` of datagram `key`; the datagram's header and payload once it is
    /// complete.
    fn collect(
        &mut self,
        key: FragKey,
        f: Fragment<'_>,
        now: Instant,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        self.reassembly
            .retain(|_, r| now.duration_since(r.started) < REASSEMBLY_TIMEOUT);
        if !self.reassembly.contains_key(&key) && self.reassembly.len() >= REASSEMBLY_MAX {
            let oldest = self
                .reassembly
                .iter()
                .min_by_key(|(_, r)| r.started)
                .map(|(k, _)| *k)?;
            self.reassembly.remove(&oldest);
        }
        let r = self.reassembly.entry(key).or_insert_with(|| Reassembly {
            started: now,
            header: Vec::new(),
            data: Vec::new(),
            have: Vec::new(),
            total: None,
        });
        let (off, part) = (f.offset, f.data);
        let end = off + part.len();
        // A fragment that is not a multiple of 8 bytes must be the last; none reaches past
        // the largest packet.
        if end > f.max_end || (f.more && !part.len().is_multiple_of(8)) {
            self.reassembly.remove(&key);
            return None;
        }
        let blocks = off / 8..end.div_ceil(8).min(r.have.len());
        if f.overlap_drops
            && r.have
                .get(blocks.clone())
                .is_some_and(|b| b.iter().any(|&h| h))
        {
            // RFC 5722: an overlapping fragment throws the datagram away; an exact
            // repeat of one already there is only ignored.
            let repeat = end.div_ceil(8) <= r.have.len()
                && r.have[off / 8..end.div_ceil(8)].iter().all(|&h| h)
                && r.data[off..end] == *part;
            if !repeat {
                self.reassembly.remove(&key);
            }
            return None;
        }
        if off == 0 {
            r.header = f.header.to_vec();
        }
        if !f.more {
            r.total = Some(end);
        }
        if r.data.len() < end {
            r.data.resize(end, 0);
            r.have.resize(end.div_ceil(8), false);
        }
        r.data[off..end].copy_from_slice(part);
        for b in &mut r.have[off / 8..end.div_ceil(8)] {
            *b = true;
        }
        let total = r.total?;
        if r.header.is_empty() || r.data.len() != total || !r.have.iter().all(|&b| b) {
            return None;
        }
        let r = self.reassembly.remove(&key)?;
        Some((r.header, r.data))
    }

    /// Sends the packets waiting for `hop`, now known to be at `mac`.
    fn flush(&mut self, hop: IpAddr, mac: [u8; 6]) {
        let (ready, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(h, _)| *h == hop);
        self.pending = rest.into();
        for (_, p) in ready {
            let proto = match hop {
                IpAddr::V4(_) => EthernetProtocol::Ipv4,
                IpAddr::V6(_) => EthernetProtocol::Ipv6,
            };
            self.send_frame(mac, proto, &p);
        }
    }
}

/// One fragment, as [`EthLink::collect`] takes it.
struct Fragment<'a> {
    /// The header the datagram gets back (from the first fragment).
    header: &'a [u8],
    /// The fragment's offset in the payload.
    offset: usize,
    data: &'a [u8],
    /// More fragments follow.
    more: bool,
    /// The largest payload end the datagram may have.
    max_end: usize,
    /// An overlap throws the datagram away (IPv6).
    overlap_drops: bool,
}

/// The IPv6 packet of unfragmentable part `header` (its next header already the
/// payload's) and `data`, its payload length set.
fn finish6(mut header: Vec<u8>, data: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(header.len() - IPV6_HEADER + data.len()).ok()?;
    header[4..6].copy_from_slice(&len.to_be_bytes());
    header.extend_from_slice(data);
    Some(header)
}

/// Where IPv6 packet `p`'s unfragmentable part ends (after the Hop-by-Hop, Routing and
/// Destination Options headers that precede a Fragment header or the payload), where the
/// next-header field naming what follows it is, and that next header.
fn unfragmentable6(p: &[u8]) -> Option<(usize, usize, u8)> {
    let (mut at, mut nh_at) = (IPV6_HEADER, 6);
    let mut nh = *p.get(6)?;
    while matches!(nh, NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS) {
        let len = (usize::from(*p.get(at + 1)?) + 1) * 8;
        if at + len > p.len() {
            return None;
        }
        nh_at = at;
        nh = p[at];
        at += len;
    }
    Some((at, nh_at, nh))
}

/// The neighbour discovery type of IPv6 packet `p` (ICMPv6 right after the fixed
/// header, as RFC 4861's messages are), if it is such a message.
fn ndp_type(p: &[u8]) -> Option<u8> {
    let ty = *p.get(IPV6_HEADER)?;
    (p.get(6) == Some(&NH_ICMPV6) && (ND_ROUTER_SOLICIT..=ND_REDIRECT).contains(&ty)).then_some(ty)
}

/// An IPv6 packet carrying neighbour discovery message `icmp` from `src` to `dst`, hop
/// limit 255 (RFC 4861 §7.1), its checksum filled.
fn ndp_packet(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; IPV6_HEADER + icmp.len()];
    p[0] = 0x60;
    // An NDP message is a few dozen bytes.
    p[4..6].copy_from_slice(&(icmp.len() as u16).to_be_bytes());
    p[6] = NH_ICMPV6;
    p[7] = 255;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    p[IPV6_HEADER..].copy_from_slice(icmp);
    smoltcp::wire::Icmpv6Packet::new_unchecked(&mut p[IPV6_HEADER..]).fill_checksum(&src, &dst);
    p
}

/// What identifies the fragments of one datagram (RFC 791; RFC 8200 §4.5 for IPv6,
/// whose `proto` is always the Fragment header's number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    ident: u32,
    proto: u8,
}

/// A datagram being reassembled.
#[derive(Debug)]
struct Reassembly {
    started: Instant,
    /// The first fragment's header (empty until it comes).
    header: Vec<u8>,
    /// The payload so far.
    data: Vec<u8>,
    /// Which 8-byte blocks of `data` have come.
    have: Vec<bool>,
    /// The payload's length, once the last fragment has come.
    total: Option<usize>,
}

/// The IPv4 packet `pkt` (checksums filled) cut into fragments of at most `mtu` bytes,
/// all with identification `ident` (the whole packet's DF flag is cleared: the link is
/// the sandbox's own, and fragmenting is what Linux does for a datagram over the
/// interface's MTU).
fn fragments(pkt: &[u8], mtu: usize, ident: u16) -> Vec<Bytes> {
    let Ok(ip) = smoltcp::wire::Ipv4Packet::new_checked(pkt) else {
        return Vec::new();
    };
    let hl = usize::from(ip.header_len());
    let payload = &pkt[hl..usize::from(ip.total_len())];
    let step = (mtu - hl) & !7;
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + step).min(payload.len());
        let mut buf = Vec::with_capacity(hl + end - off);
        buf.extend_from_slice(&pkt[..hl]);
        buf.extend_from_slice(&payload[off..end]);
        let mut f = smoltcp::wire::Ipv4Packet::new_unchecked(&mut buf[..]);
        // Both at most 65535: `buf` is part of an IPv4 packet.
        f.set_total_len((hl + end - off) as u16);
        f.set_ident(ident);
        f.set_dont_frag(false);
        f.set_more_frags(end < payload.len());
        f.set_frag_offset(off as u16);
        f.fill_checksum();
        out.push(Bytes::from(buf));
        off = end;
    }
    out
}

/// The IPv6 packet `pkt` (checksums filled) cut into fragments of at most `mtu` bytes,
/// all with identification `ident`: each the packet's unfragmentable part, a Fragment
/// header and a piece of the rest (RFC 8200 §4.5).
fn fragments6(pkt: &[u8], mtu: usize, ident: u32) -> Vec<Bytes> {
    let Some((unfrag, nh_at, nh)) = unfragmentable6(pkt) else {
        return Vec::new();
    };
    let rest = &pkt[unfrag..];
    let Some(step) = mtu
        .checked_sub(unfrag + 8)
        .map(|s| s & !7)
        .filter(|s| *s > 0)
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut off = 0;
    while off < rest.len() {
        let end = (off + step).min(rest.len());
        let mut buf = Vec::with_capacity(unfrag + 8 + end - off);
        buf.extend_from_slice(&pkt[..unfrag]);
        buf[nh_at] = NH_FRAGMENT;
        buf.extend_from_slice(&[nh, 0]);
        // The offset is below 65536 and a multiple of 8: the 13-bit field, shifted.
        let field = off as u16 | u16::from(end < rest.len());
        buf.extend_from_slice(&field.to_be_bytes());
        buf.extend_from_slice(&ident.to_be_bytes());
        buf.extend_from_slice(&rest[off..end]);
        let len = (buf.len() - IPV6_HEADER) as u16;
        buf[4..6].copy_from_slice(&len.to_be_bytes());
        out.push(Bytes::from(buf));
        off = end;
    }
    out
}

/// Fills the IPv4 header checksum and the TCP, UDP, ICMP or ICMPv6 one of the IPv4 or
/// IPv6 packet in `buf` (smoltcp's interface leaves them out: it is set up for loopback).
pub fn fill_checksums(buf: &mut [u8]) {
    use smoltcp::wire::{
        Icmpv4Packet, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket,
        UdpPacket,
    };
    let (src, dst, proto, payload): (IpAddress, IpAddress, IpProtocol, &mut [u8]) =
        match buf.first().map(|b| b >> 4) {
            Some(4) => {
                let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf[..]) else {
                    return;
                };
                ip.fill_checksum();
                // A fragment's payload is not a whole transport packet; smoltcp sends none.
                if ip.more_frags() || ip.frag_offset() != 0 {
                    return;
                }
                let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
                let hl = usize::from(ip.header_len());
                let end = usize::from(ip.total_len());
                (src.into(), dst.into(), proto, &mut buf[hl..end])
            }
            Some(6) => {
                let Ok(ip) = Ipv6Packet::new_checked(&buf[..]) else {
                    return;
                };
                let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
                let end = IPV6_HEADER + usize::from(ip.payload_len());
                (src.into(), dst.into(), proto, &mut buf[IPV6_HEADER..end])
            }
            _ => return,
        };
    match proto {
        IpProtocol::Tcp => {
            if let Ok(mut t) = TcpPacket::new_checked(payload) {
                t.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut u) = UdpPacket::new_checked(payload) {
                u.fill_checksum(&src, &dst);
            }
        }
        IpProtocol::Icmp => {
            if let Ok(mut i) = Icmpv4Packet::new_checked(payload) {
                i.fill_checksum();
            }
        }
        IpProtocol::Icmpv6 => {
            if let (Ok(mut i), IpAddress::Ipv6(s), IpAddress::Ipv6(d)) =
                (Icmpv6Packet::new_checked(payload), src, dst)
            {
                i.fill_checksum(&s, &d);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::wire::{IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr};
    use std::os::unix::net::UnixDatagram;

    const MAC: [u8; 6] = [2, 0x52, 0, 0, 0, 2];
    const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const ME: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 2);
    const GW: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);

    fn link() -> (EthLink, UnixDatagram) {
        let (a, b) = UnixDatagram::pair().expect("pair");
        let file = Arc::new(std::fs::File::from(std::os::fd::OwnedFd::from(a)));
        (EthLink::new(file, MAC, ME, 30, Some(GW)), b)
    }

    fn frame(dst: [u8; 6], src: [u8; 6], proto: EthernetProtocol, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; 14 + payload.len()];
        let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
        f.set_dst_addr(EthernetAddress(dst));
        f.set_src_addr(EthernetAddress(src));
        f.set_ethertype(proto);
        f.payload_mut().copy_from_slice(payload);
        buf
    }

    fn arp(op: ArpOperation, from: (Ipv4Addr, [u8; 6]), to: Ipv4Addr) -> Vec<u8> {
        let repr = ArpRepr::EthernetIpv4 {
            operation: op,
            source_hardware_addr: EthernetAddress(from.1),
            source_protocol_addr: from.0,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: to,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        buf
    }

    fn udp_packet(dst: Ipv4Addr) -> Vec<u8> {
        let udp = UdpRepr {
            src_port: 1000,
            dst_port: 2000,
        };
        let ip = Ipv4Repr {
            src_addr: ME,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: 8 + 3,
            hop_limit: 64,
        };
        let mut buf = vec![0u8; 20 + 8 + 3];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, &smoltcp::phy::ChecksumCapabilities::ignored());
        udp.emit(
            &mut UdpPacket::new_unchecked(p.payload_mut()),
            &ME.into(),
            &dst.into(),
            3,
            |b| b.copy_from_slice(b"abc"),
            &smoltcp::phy::ChecksumCapabilities::ignored(),
        );
        buf
    }

    fn recv(peer: &UnixDatagram) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let n = peer.recv(&mut buf).expect("recv");
        buf[..n].to_vec()
    }

    #[test]
    fn answers_arp_resolves_the_gateway_and_fills_checksums() {
        let (mut l, peer) = link();
        // An ARP request for our address is answered to its sender.
        let req = arp(ArpOperation::Request, (GW, GW_MAC), ME);
        assert!(
            l.input(&frame(BROADCAST, GW_MAC, EthernetProtocol::Arp, &req))
                .is_none()
        );
        let reply = recv(&peer);
        let f = EthernetFrame::new_checked(&reply[..]).expect("frame");
        assert_eq!(f.dst_addr().0, GW_MAC);
        let ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            ..
        } = ArpRepr::parse(&ArpPacket::new_checked(f.payload()).expect("arp")).expect("repr")
        else {
            panic!("not an Ethernet/IPv4 ARP reply");
        };
        assert_eq!(operation, ArpOperation::Reply);
        assert_eq!((source_hardware_addr.0, source_protocol_addr), (MAC, ME));

        // A fresh link must ask for the gateway first and send once it is answered.
        let (mut l, peer) = link();
        let mut pkt = udp_packet(Ipv4Addr::new(192, 0, 2, 7));
        fill_checksums(&mut pkt);
        l.send_ip(Bytes::from(pkt.clone()), Ipv4Addr::new(192, 0, 2, 7));
        let ask = recv(&peer);
        let f = EthernetFrame::new_checked(&ask[..]).expect("frame");
        assert_eq!(
            (f.dst_addr().0, f.ethertype()),
            (BROADCAST, EthernetProtocol::Arp)
        );
        let ans = arp(ArpOperation::Reply, (GW, GW_MAC), ME);
        assert!(
            l.input(&frame(MAC, GW_MAC, EthernetProtocol::Arp, &ans))
                .is_none()
        );
        let sent = recv(&peer);
        let f = EthernetFrame::new_checked(&sent[..]).expect("frame");
        assert_eq!(
            (f.dst_addr().0, f.ethertype()),
            (GW_MAC, EthernetProtocol::Ipv4)
        );
        let ip = Ipv4Packet::new_checked(f.payload()).expect("ip");
        assert!(ip.verify_checksum(), "IPv4 header checksum");
        let u = UdpPacket::new_checked(ip.payload()).expect("udp");
        assert!(u.verify_checksum(&ME.into(), &Ipv4Addr::new(192, 0, 2, 7).into()));

        // IPv4 for us goes to the stack; frames for another host do not.
        let p = udp_packet(ME);
        let got = l.input(&frame(MAC, GW_MAC, EthernetProtocol::Ipv4, &p));
        assert_eq!(got.as_deref(), Some(&p[..]));
        let other = [2, 9, 9, 9, 9, 9];
        assert!(
            l.input(&frame(other, GW_MAC, EthernetProtocol::Ipv4, &p))
                .is_none()
        );
        assert!(l.input(&[0u8; 5]).is_none(), "a runt frame is ignored");
    }

    /// A UDP packet from `src` to us with a `len`-byte payload, checksums filled.
    fn big_udp(src: Ipv4Addr, len: usize) -> Vec<u8> {
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: ME,
            next_header: IpProtocol::Udp,
            payload_len: 8 + len,
            hop_limit: 64,
        };
        let mut buf = vec![0u8; 20 + 8 + len];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, &smoltcp::phy::ChecksumCapabilities::ignored());
        UdpRepr {
            src_port: 1000,
            dst_port: 2000,
        }
        .emit(
            &mut UdpPacket::new_unchecked(p.payload_mut()),
            &src.into(),
            &ME.into(),
            len,
            |b| {
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (i * 7 % 251) as u8;
                }
            },
            &smoltcp::phy::ChecksumCapabilities::ignored(),
        );
        fill_checksums(&mut buf);
        buf
    }

    fn ipv4_frame(p: &[u8]) -> Vec<u8> {
        frame(MAC, GW_MAC, EthernetProtocol::Ipv4, p)
    }

    #[test]
    fn datagrams_over_the_mtu_are_fragmented_and_reassembled() {
        let whole = big_udp(GW, 4000);
        let frags = fragments(&whole, ETH_MTU, 77);
        assert_eq!(frags.len(), 3);
        for (i, f) in frags.iter().enumerate() {
            let ip = Ipv4Packet::new_checked(&f[..]).expect("fragment");
            assert!(f.len() <= ETH_MTU && ip.verify_checksum());
            assert_eq!((ip.ident(), ip.dont_frag()), (77, false));
            assert_eq!(ip.more_frags(), i < 2);
            assert_eq!(usize::from(ip.frag_offset()), i * 1480);
        }
        // In any order, the last fragment completes the datagram, which is the original
        // but for the flags and identification fragmenting changed.
        let (mut l, _peer) = link();
        for f in [&frags[2], &frags[0]] {
            assert!(l.input(&ipv4_frame(f)).is_none());
        }
        let got = l.input(&ipv4_frame(&frags[1])).expect("reassembled");
        assert_eq!(got.len(), whole.len());
        let ip = Ipv4Packet::new_checked(&got[..]).expect("ip");
        assert!(ip.verify_checksum() && !ip.more_frags() && ip.frag_offset() == 0);
        assert_eq!(ip.payload(), &whole[20..]);
        let u = UdpPacket::new_checked(ip.payload()).expect("udp");
        assert!(u.verify_checksum(&GW.into(), &ME.into()));
        assert!(l.reassembly.is_empty());

        // The same datagram from another source does not mix with it.
        let other = fragments(&big_udp(Ipv4Addr::new(10, 213, 0, 3), 4000), ETH_MTU, 77);
        assert!(l.input(&ipv4_frame(&frags[0])).is_none());
        assert!(l.input(&ipv4_frame(&other[1])).is_none());
        assert!(l.input(&ipv4_frame(&other[2])).is_none());
        assert!(l.input(&ipv4_frame(&frags[2])).is_none());
        assert_eq!(l.reassembly.len(), 2);
    }

    #[test]
    fn reassembly_gives_up_on_stale_bad_and_too_many_datagrams() {
        let (mut l, _peer) = link();
        let start = Instant::now();
        let frags = fragments(&big_udp(GW, 3000), ETH_MTU, 5);
        assert!(l.reassemble(&frags[0], start).is_none());
        // Too late: the first fragment was given up, so the datagram never completes.
        let late = start + REASSEMBLY_TIMEOUT;
        assert!(l.reassemble(&frags[1], late).is_none());
        assert!(l.reassemble(&frags[2], late).is_none());
        assert_eq!(l.reassembly.len(), 1, "only the late fragments wait");

        // A fragment that is not the last must be a multiple of 8 bytes long.
        let (mut l, _peer) = link();
        let mut odd = frags[0].to_vec();
        odd.pop();
        let len = odd.len() as u16;
        let mut ip = Ipv4Packet::new_unchecked(&mut odd[..]);
        ip.set_total_len(len);
        ip.fill_checksum();
        assert!(l.reassemble(&odd, start).is_none());
        assert!(l.reassembly.is_empty());
        // One that would end past 65535 bytes is dropped.
        let mut far = frags[1].to_vec();
        let mut ip = Ipv4Packet::new_unchecked(&mut far[..]);
        ip.set_frag_offset(65528);
        ip.fill_checksum();
        assert!(l.reassemble(&far, start).is_none());
        assert!(l.reassembly.is_empty());

        // At most REASSEMBLY_MAX datagrams wait; the oldest goes first.
        for ident in 0..REASSEMBLY_MAX as u16 + 1 {
            let f = fragments(&big_udp(GW, 3000), ETH_MTU, ident);
            let t = start + Duration::from_millis(u64::from(ident));
            assert!(l.reassemble(&f[0], t).is_none());
        }
        assert_eq!(l.reassembly.len(), REASSEMBLY_MAX);
        assert!(!l.reassembly.keys().any(|k| k.ident == 0));
    }

    // IPv6 and neighbour discovery. Inputs are made and outputs read with smoltcp's own
    // NDP and IPv6 code, not the link's.
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        Icmpv6Packet, Icmpv6Repr, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr,
        RawHardwareAddress,
    };

    const ME6: Ipv6Addr = Ipv6Addr::new(0xfd52, 0x7362, 0x6e74, 7, 0, 0, 0, 2);
    const GW6: Ipv6Addr = Ipv6Addr::new(0xfd52, 0x7362, 0x6e74, 7, 0, 0, 0, 1);
    const GW6_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0xff, 0xfe00, 1);
    const FAR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 9);

    fn link6() -> (EthLink, UnixDatagram) {
        let (mut l, peer) = link();
        l.set_ipv6(&[(ME6, 64)], Some(GW6));
        peer.set_nonblocking(true).expect("nonblocking");
        (l, peer)
    }

    /// The IPv6 packet of `icmp` (an NDP message) from `src` to `dst` with `hop_limit`.
    fn ndp(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, icmp: NdiscRepr<'_>) -> Vec<u8> {
        let icmp = Icmpv6Repr::Ndisc(icmp);
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: icmp.buffer_len(),
            hop_limit,
        };
        let mut buf = vec![0u8; 40 + icmp.buffer_len()];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p);
        icmp.emit(
            &src,
            &dst,
            &mut Icmpv6Packet::new_unchecked(p.payload_mut()),
            &ChecksumCapabilities::default(),
        );
        buf
    }

    fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, ll: Option<[u8; 6]>) -> Vec<u8> {
        let repr = NdiscRepr::NeighborSolicit {
            target_addr: target,
            lladdr: ll.map(|m| RawHardwareAddress::from(EthernetAddress(m))),
        };
        ndp(src, dst, 255, repr)
    }

    fn na(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, target: Ipv6Addr, ll: [u8; 6]) -> Vec<u8> {
        let repr = NdiscRepr::NeighborAdvert {
            flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
            target_addr: target,
            lladdr: Some(RawHardwareAddress::from(EthernetAddress(ll))),
        };
        ndp(src, dst, hop, repr)
    }

    fn ipv6_frame(dst: [u8; 6], p: &[u8]) -> Vec<u8> {
        frame(dst, GW_MAC, EthernetProtocol::Ipv6, p)
    }

    /// A frame the link sent: its Ethernet destination, the IPv6 header, the NDP message.
    fn sent_ndp(bytes: &[u8]) -> ([u8; 6], Ipv6Repr, NdiscRepr<'_>) {
        let f = EthernetFrame::new_checked(bytes).expect("frame");
        assert_eq!(f.ethertype(), EthernetProtocol::Ipv6);
        let dst = f.dst_addr().0;
        let payload = &bytes[14..];
        let ip = Ipv6Packet::new_checked(payload).expect("ipv6");
        let repr = Ipv6Repr::parse(&ip).expect("ipv6 header");
        let icmp = Icmpv6Packet::new_checked(&payload[40..]).expect("icmpv6");
        let parsed = Icmpv6Repr::parse(
            &repr.src_addr,
            &repr.dst_addr,
            &icmp,
            &ChecksumCapabilities::default(),
        )
        .expect("a valid ICMPv6 message (checksum included)");
        match parsed {
            Icmpv6Repr::Ndisc(n) => (dst, repr, n),
            other => panic!("not NDP: {other:?}"),
        }
    }

    fn try_recv(peer: &UnixDatagram) -> Option<Vec<u8>> {
        let mut buf = [0u8; 2048];
        match peer.recv(&mut buf) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("recv: {e}"),
        }
    }

    /// A UDP packet from `src` to `dst` with a `len`-byte payload, checksums filled.
    fn udp6(src: Ipv6Addr, dst: Ipv6Addr, len: usize) -> Vec<u8> {
        let ip = Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Udp,
            payload_len: 8 + len,
            hop_limit: 64,
        };
        let mut buf = vec![0u8; 40 + 8 + len];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p);
        UdpRepr {
            src_port: 1000,
            dst_port: 2000,
        }
        .emit(
            &mut UdpPacket::new_unchecked(p.payload_mut()),
            &src.into(),
            &dst.into(),
            len,
            |b| {
                for (i, x) in b.iter_mut().enumerate() {
                    *x = (i * 7 % 251) as u8;
                }
            },
            &ChecksumCapabilities::ignored(),
        );
        fill_checksums(&mut buf);
        buf
    }

    #[test]
    fn the_link_local_address_is_the_eui64_of_the_hardware_address() {
        // As Linux makes it: 02:52:00:00:00:02 has fe80::52:ff:fe00:2.
        assert_eq!(
            link_local(MAC),
            "fe80::52:ff:fe00:2".parse::<Ipv6Addr>().expect("addr")
        );
        let (l, _peer) = link6();
        assert_eq!(l.addrs6, [(ME6, 64), (link_local(MAC), 64)]);
        // A link-local address of the namespace's own is kept, none made.
        let (mut l, _peer) = link();
        let ll = "fe80::1234".parse().expect("addr");
        l.set_ipv6(&[(ME6, 64), (ll, 64)], None);
        assert_eq!(l.addrs6, [(ME6, 64), (ll, 64)]);
        assert_eq!(
            solicited_node(ME6),
            "ff02::1:ff00:2".parse::<Ipv6Addr>().expect("addr")
        );
    }

    #[test]
    fn neighbor_solicitations_to_our_solicited_node_group_are_answered() {
        let (mut l, peer) = link6();
        let group = solicited_node(ME6);
        let mac = multicast_mac(group);
        assert_eq!(mac, [0x33, 0x33, 0xff, 0, 0, 2]);
        let req = ns(GW6, group, ME6, Some(GW_MAC));
        assert!(
            l.input(&ipv6_frame(mac, &req)).is_none(),
            "not for the stack"
        );
        let reply = recv(&peer);
        let (dst, ip, n) = sent_ndp(&reply);
        assert_eq!(dst, GW_MAC, "to the solicitation's link-layer address");
        assert_eq!((ip.src_addr, ip.dst_addr, ip.hop_limit), (ME6, GW6, 255));
        assert_eq!(
            n,
            NdiscRepr::NeighborAdvert {
                flags: NdiscNeighborFlags::SOLICITED | NdiscNeighborFlags::OVERRIDE,
                target_addr: ME6,
                lladdr: Some(RawHardwareAddress::from(EthernetAddress(MAC))),
            }
        );
        // The soliciting node was learnt: a packet to it goes out at once.
        l.send_ip6(Bytes::from(udp6(ME6, GW6, 3)), GW6);
        let f = recv(&peer);
        assert_eq!(&f[..6], &GW_MAC);

        // The link-local address answers too, in its own group.
        let ll = link_local(MAC);
        let req = ns(GW6_LL, solicited_node(ll), ll, Some(GW_MAC));
        assert!(
            l.input(&ipv6_frame(multicast_mac(solicited_node(ll)), &req))
                .is_none()
        );
        let (_, ip, _) = sent_ndp(&recv(&peer));
        assert_eq!((ip.src_addr, ip.dst_addr), (ll, GW6_LL));

        // Duplicate address detection (from ::) for our address is answered to all nodes.
        let dad = ns(Ipv6Addr::UNSPECIFIED, group, ME6, None);
        assert!(l.input(&ipv6_frame(mac, &dad)).is_none());
        let got = recv(&peer);
        let (dst, ip, n) = sent_ndp(&got);
        assert_eq!(dst, [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(ip.dst_addr, ALL_NODES);
        assert!(
            matches!(n, NdiscRepr::NeighborAdvert { flags, .. } if !flags.contains(NdiscNeighborFlags::SOLICITED))
        );

        // Another node's address, another group's frames, and frames for another
        // hardware address get nothing.
        let other = Ipv6Addr::new(0xfd52, 0x7362, 0x6e74, 7, 0, 0, 0, 3);
        let req = ns(GW6, solicited_node(other), other, Some(GW_MAC));
        assert!(
            l.input(&ipv6_frame(multicast_mac(solicited_node(other)), &req))
                .is_none()
        );
        let req = ns(GW6, ME6, other, Some(GW_MAC));
        assert!(l.input(&ipv6_frame(MAC, &req)).is_none());
        assert!(try_recv(&peer).is_none(), "nothing answered");
    }

    #[test]
    fn next_hops_are_resolved_by_solicitation_and_waiting_packets_flushed() {
        let (mut l, peer) = link6();
        // Off the link: through the gateway, solicited in its group, with our address
        // on its prefix as the source and our link-layer address as an option.
        let pkt = udp6(ME6, FAR6, 5);
        l.send_ip6(Bytes::from(pkt.clone()), FAR6);
        l.send_ip6(Bytes::from(pkt.clone()), FAR6);
        let got = recv(&peer);
        let (dst, ip, n) = sent_ndp(&got);
        assert_eq!(dst, multicast_mac(solicited_node(GW6)));
        assert_eq!(
            (ip.src_addr, ip.dst_addr, ip.hop_limit),
            (ME6, solicited_node(GW6), 255)
        );
        assert_eq!(
            n,
            NdiscRepr::NeighborSolicit {
                target_addr: GW6,
                lladdr: Some(RawHardwareAddress::from(EthernetAddress(MAC))),
            }
        );
        let _second_solicitation = recv(&peer);
        assert!(try_recv(&peer).is_none(), "the packets wait");
        // The advertisement (to us, with the target's link-layer address) sends both.
        let ans = na(GW6, ME6, 255, GW6, GW_MAC);
        assert!(
            l.input(&ipv6_frame(MAC, &ans)).is_none(),
            "not for the stack"
        );
        for _ in 0..2 {
            let f = recv(&peer);
            let e = EthernetFrame::new_checked(&f[..]).expect("frame");
            assert_eq!(
                (e.dst_addr().0, e.ethertype()),
                (GW_MAC, EthernetProtocol::Ipv6)
            );
            assert_eq!(e.payload(), &pkt[..]);
            let ip = Ipv6Packet::new_checked(e.payload()).expect("ipv6");
            let u = UdpPacket::new_checked(ip.payload()).expect("udp");
            assert!(u.verify_checksum(&ME6.into(), &FAR6.into()), "UDP checksum");
        }
        assert!(try_recv(&peer).is_none());

        // A link-local destination is on the link, solicited from our link-local address.
        l.send_ip6(Bytes::from(udp6(link_local(MAC), GW6_LL, 1)), GW6_LL);
        let (_, ip, _) = sent_ndp(&recv(&peer));
        assert_eq!(ip.src_addr, link_local(MAC));

        // Multicast goes to its group's address, with nothing to resolve.
        l.send_ip6(Bytes::from(udp6(ME6, ALL_NODES, 1)), ALL_NODES);
        assert_eq!(&recv(&peer)[..6], &[0x33, 0x33, 0, 0, 0, 1]);

        // IPv6 to us goes to the stack, to others' addresses or groups not.
        let p = udp6(GW6, ME6, 3);
        assert_eq!(l.input(&ipv6_frame(MAC, &p)).as_deref(), Some(&p[..]));
        let p = udp6(GW6, FAR6, 3);
        assert!(l.input(&ipv6_frame(MAC, &p)).is_none());
        let p = udp6(GW6, "ff02::2".parse().expect("addr"), 3);
        assert!(l.input(&ipv6_frame([0x33, 0x33, 0, 0, 0, 2], &p)).is_none());
    }

    #[test]
    fn neighbor_discovery_with_a_hop_limit_below_255_is_ignored() {
        let (mut l, peer) = link6();
        // RFC 4861 §7.1: a message that came through a router is not believed.
        let group = solicited_node(ME6);
        let mut req = ndp(
            GW6,
            group,
            254,
            NdiscRepr::NeighborSolicit {
                target_addr: ME6,
                lladdr: Some(RawHardwareAddress::from(EthernetAddress(GW_MAC))),
            },
        );
        assert!(l.input(&ipv6_frame(multicast_mac(group), &req)).is_none());
        assert!(try_recv(&peer).is_none(), "not answered");
        // Nor one with a bad checksum.
        req[7] = 255;
        req[42] ^= 1;
        assert!(l.input(&ipv6_frame(multicast_mac(group), &req)).is_none());
        assert!(try_recv(&peer).is_none(), "not answered");

        l.send_ip6(Bytes::from(udp6(ME6, FAR6, 5)), FAR6);
        let _solicitation = recv(&peer);
        let forged = na(GW6, ME6, 64, GW6, [2, 6, 6, 6, 6, 6]);
        assert!(l.input(&ipv6_frame(MAC, &forged)).is_none());
        assert!(try_recv(&peer).is_none(), "the packet still waits");
        assert!(l.neighbors6.is_empty(), "nothing learnt");
        // The real answer sends it.
        assert!(
            l.input(&ipv6_frame(MAC, &na(GW6, ME6, 255, GW6, GW_MAC)))
                .is_none()
        );
        assert_eq!(&recv(&peer)[..6], &GW_MAC);
    }

    #[test]
    fn ipv6_packets_over_the_mtu_are_fragmented_and_reassembled() {
        let whole = udp6(GW6, ME6, 4000);
        let frags = fragments6(&whole, ETH_MTU, 0x1234_5678);
        assert_eq!(frags.len(), 3);
        let mut offsets = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let ip = Ipv6Packet::new_checked(&f[..]).expect("fragment");
            assert!(f.len() <= ETH_MTU);
            assert_eq!(ip.next_header(), IpProtocol::Ipv6Frag);
            let fh = &f[40..48];
            assert_eq!(fh[0], u8::from(IpProtocol::Udp));
            assert_eq!(
                u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]),
                0x1234_5678
            );
            let field = u16::from_be_bytes([fh[2], fh[3]]);
            assert_eq!(field & 1 == 1, i < 2, "more fragments");
            offsets.push(usize::from(field & !7));
            assert_eq!(usize::from(ip.payload_len()), f.len() - 40);
        }
        assert_eq!(offsets, [0, 1448, 2896]);
        // Sent by the link when the stack's packet is too big for it.
        let (mut l, peer) = link6();
        assert!(
            l.input(&ipv6_frame(MAC, &na(GW6, ME6, 255, GW6, GW_MAC)))
                .is_none()
        );
        l.send_ip6(Bytes::from(udp6(ME6, GW6, 4000)), GW6);
        for _ in 0..3 {
            let f = recv(&peer);
            assert!(f.len() <= 14 + ETH_MTU && f[14 + 6] == 44, "a fragment");
        }

        // In any order, the last fragment completes the datagram: the original.
        for f in [&frags[2], &frags[0]] {
            assert!(l.input(&ipv6_frame(MAC, f)).is_none());
        }
        let got = l.input(&ipv6_frame(MAC, &frags[1])).expect("reassembled");
        assert_eq!(&got[..], &whole[..]);
        let ip = Ipv6Packet::new_checked(&got[..]).expect("ipv6");
        let u = UdpPacket::new_checked(ip.payload()).expect("udp");
        assert!(u.verify_checksum(&GW6.into(), &ME6.into()));
        assert!(l.reassembly.is_empty());

        // An overlapping fragment throws the datagram away (RFC 5722); a repeat of
        // one already there does not.
        assert!(l.input(&ipv6_frame(MAC, &frags[0])).is_none());
        assert!(l.input(&ipv6_frame(MAC, &frags[0])).is_none());
        assert_eq!(l.reassembly.len(), 1);
        let mut overlap = frags[1].to_vec();
        overlap[42..44].copy_from_slice(&(1440u16 | 1).to_be_bytes());
        assert!(l.input(&ipv6_frame(MAC, &overlap)).is_none());
        assert!(l.reassembly.is_empty(), "given up");
        assert!(l.input(&ipv6_frame(MAC, &frags[1])).is_none());
        assert!(
            l.input(&ipv6_frame(MAC, &frags[2])).is_none(),
            "never complete"
        );

        // Neighbour discovery in fragments is not believed (RFC 6980).
        let (mut l, peer) = link6();
        let req = ns(GW6, ME6, ME6, Some(GW_MAC));
        let mut atomic = req[..40].to_vec();
        atomic[6] = 44;
        atomic.extend_from_slice(&[58, 0, 0, 0, 0, 0, 0, 1]);
        atomic.extend_from_slice(&req[40..]);
        let len = (atomic.len() - 40) as u16;
        atomic[4..6].copy_from_slice(&len.to_be_bytes());
        assert!(l.input(&ipv6_frame(MAC, &atomic)).is_none());
        assert!(try_recv(&peer).is_none());
        // Other atomic fragments are whole packets (RFC 6946).
        let p = udp6(GW6, ME6, 3);
        let mut atomic = p[..40].to_vec();
        atomic[6] = 44;
        atomic.extend_from_slice(&[17, 0, 0, 0, 0, 0, 0, 2]);
        atomic.extend_from_slice(&p[40..]);
        let len = (atomic.len() - 40) as u16;
        atomic[4..6].copy_from_slice(&len.to_be_bytes());
        assert_eq!(l.input(&ipv6_frame(MAC, &atomic)).as_deref(), Some(&p[..]));

        // Limits as for IPv4: a datagram past 65535 bytes of payload is dropped.
        let mut far = frags[1].to_vec();
        far[42..44].copy_from_slice(&(65528u16 | 1).to_be_bytes());
        assert!(l.input(&ipv6_frame(MAC, &far)).is_none());
        assert!(l.reassembly.is_empty());
    }
}
