//! The Ethernet link of `--network=sandbox`: IPv4 over a packet socket on the sandbox's
//! end of a veth pair, with ARP (ours: smoltcp's interface stays an IP one, shared with
//! `lo`, and the device sends each outgoing packet to loopback or to this link).
//!
//! Outgoing: the next hop is the destination on the link's subnet, the gateway
//! otherwise; its hardware address comes from the neighbour table, or an ARP request is
//! broadcast and the packet waits (a few per neighbour; TCP retransmits the rest).
//! Incoming: ARP requests for our address are answered and every ARP sender on the
//! subnet is learnt; IPv4 frames to our hardware address (or broadcast) go to the stack.
//! Fragments: a packet over the link's MTU is cut into IPv4 fragments on its way out
//! (smoltcp's interface is loopback-sized and never fragments), and fragments coming in
//! are reassembled before the stack sees them (as Linux's `ip_fragment` and
//! `ip_defrag`: at most [`REASSEMBLY_MAX`] datagrams at once, each given up after
//! [`REASSEMBLY_TIMEOUT`]).
//! The host's side sees ordinary Ethernet frames; nothing else of the host is reachable
//! (the host's loopback is not on the link).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
};

/// The link's MTU (the veth's).
pub const ETH_MTU: usize = 1500;
/// Packets kept waiting for one ARP answer, at most.
const PENDING_MAX: usize = 64;
/// Datagrams being reassembled at once, at most (the oldest is given up for a new one).
pub const REASSEMBLY_MAX: usize = 64;
/// How long a datagram's fragments wait for the rest (Linux's `ipfrag_time`).
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(30);
const BROADCAST: [u8; 6] = [0xff; 6];

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
    neighbors: HashMap<Ipv4Addr, [u8; 6]>,
    pending: VecDeque<(Ipv4Addr, Bytes)>,
    /// The identification of the next datagram this link fragments.
    next_ident: u16,
    /// Datagrams being reassembled.
    reassembly: HashMap<FragKey, Reassembly>,
    /// (packets, bytes) received and sent, for `/proc/net/dev` and netlink.
    pub rx: (u64, u64),
    /// See `rx`.
    pub tx: (u64, u64),
}

impl EthLink {
    /// A link over `file` (the packet socket).
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
            neighbors: HashMap::new(),
            pending: VecDeque::new(),
            next_ident: 1,
            reassembly: HashMap::new(),
            rx: (0, 0),
            tx: (0, 0),
        }
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

    /// Whether a packet to `dst` leaves through this link (not loopback, not ourselves).
    pub fn takes(&self, dst: Ipv4Addr) -> bool {
        !dst.is_loopback() && dst != self.addr && !dst.is_unspecified()
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
        if self.pending.len() >= PENDING_MAX {
            self.pending.pop_front();
        }
        self.pending.push_back((hop, pkt));
        self.arp(ArpOperation::Request, BROADCAST, hop, [0; 6]);
    }

    /// Takes one received frame: the IPv4 packet in it for the stack, if any.
    pub fn input(&mut self, frame: &[u8]) -> Option<Bytes> {
        let f = EthernetFrame::new_checked(frame).ok()?;
        let dst = f.dst_addr().0;
        if dst != self.mac && dst != BROADCAST {
            return None;
        }
        self.rx.0 += 1;
        self.rx.1 += frame.len() as u64;
        match f.ethertype() {
            EthernetProtocol::Ipv4 => self.reassemble(f.payload(), Instant::now()),
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
                    self.flush(sip, smac);
                }
                if operation == ArpOperation::Request && target_protocol_addr == self.addr {
                    self.arp(ArpOperation::Reply, smac, sip, smac);
                }
                None
            }
            _ => None,
        }
    }

    /// The packet `p` for the stack: itself if it is whole, the reassembled datagram if
    /// it is the fragment that completes one, `None` while fragments are missing (or if
    /// it is malformed).
    fn reassemble(&mut self, p: &[u8], now: Instant) -> Option<Bytes> {
        let ip = smoltcp::wire::Ipv4Packet::new_checked(p).ok()?;
        // The packet as the header says it is: a frame may carry padding after it.
        let p = &p[..usize::from(ip.total_len())];
        if !ip.more_frags() && ip.frag_offset() == 0 {
            return Some(Bytes::copy_from_slice(p));
        }
        self.reassembly
            .retain(|_, r| now.duration_since(r.started) < REASSEMBLY_TIMEOUT);
        let key = FragKey {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            ident: ip.ident(),
            proto: u8::from(ip.next_header()),
        };
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
        let hl = usize::from(ip.header_len());
        let off = usize::from(ip.frag_offset());
        let part = &p[hl..];
        let end = off + part.len();
        // A fragment that is not a multiple of 8 bytes must be the last; none reaches past
        // the largest IPv4 packet.
        if end + hl > usize::from(u16::MAX) || (ip.more_frags() && !part.len().is_multiple_of(8)) {
            self.reassembly.remove(&key);
            return None;
        }
        if off == 0 {
            r.header = p[..hl].to_vec();
        }
        if !ip.more_frags() {
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
        let hl = r.header.len();
        let mut whole = Vec::with_capacity(hl + total);
        whole.extend_from_slice(&r.header);
        whole.extend_from_slice(&r.data);
        let mut ip = smoltcp::wire::Ipv4Packet::new_unchecked(&mut whole[..]);
        ip.set_total_len(u16::try_from(hl + total).ok()?);
        ip.set_more_frags(false);
        ip.set_frag_offset(0);
        ip.fill_checksum();
        Some(Bytes::from(whole))
    }

    fn flush(&mut self, hop: Ipv4Addr, mac: [u8; 6]) {
        let (ready, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(h, _)| *h == hop);
        self.pending = rest.into();
        for (_, p) in ready {
            self.send_frame(mac, EthernetProtocol::Ipv4, &p);
        }
    }
}

/// What identifies the fragments of one datagram (RFC 791).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FragKey {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
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

/// Fills the IPv4 header checksum and the TCP, UDP or ICMP one of the packet in `buf`
/// (smoltcp's interface leaves them out: it is set up for loopback).
pub fn fill_checksums(buf: &mut [u8]) {
    use smoltcp::wire::{Icmpv4Packet, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket};
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut buf[..]) else {
        return;
    };
    ip.fill_checksum();
    let (src, dst, proto) = (ip.src_addr(), ip.dst_addr(), ip.next_header());
    // A fragment's payload is not a whole transport packet; smoltcp sends none.
    if ip.more_frags() || ip.frag_offset() != 0 {
        return;
    }
    let payload = ip.payload_mut();
    let (s, d) = (src.into(), dst.into());
    match proto {
        IpProtocol::Tcp => {
            if let Ok(mut t) = TcpPacket::new_checked(payload) {
                t.fill_checksum(&s, &d);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut u) = UdpPacket::new_checked(payload) {
                u.fill_checksum(&s, &d);
            }
        }
        IpProtocol::Icmp => {
            if let Ok(mut i) = Icmpv4Packet::new_checked(payload) {
                i.fill_checksum();
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
}
