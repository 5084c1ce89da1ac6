//! The Ethernet link of `--network=sandbox`: IPv4 over a packet socket on the sandbox's
//! end of a veth pair, with ARP (ours: smoltcp's interface stays an IP one, shared with
//! `lo`, and the device sends each outgoing packet to loopback or to this link).
//!
//! Outgoing: the next hop is the destination on the link's subnet, the gateway
//! otherwise; its hardware address comes from the neighbour table, or an ARP request is
//! broadcast and the packet waits (a few per neighbour; TCP retransmits the rest).
//! Incoming: ARP requests for our address are answered and every ARP sender on the
//! subnet is learnt; IPv4 frames to our hardware address (or broadcast) go to the stack.
//! The host's side sees ordinary Ethernet frames; nothing else of the host is reachable
//! (the host's loopback is not on the link).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
};

/// The link's MTU (the veth's).
pub const ETH_MTU: usize = 1500;
/// Packets kept waiting for one ARP answer, at most.
const PENDING_MAX: usize = 64;
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

    /// Sends the IPv4 packet `pkt` to `dst` (resolving its next hop first).
    pub fn send_ip(&mut self, pkt: Bytes, dst: Ipv4Addr) {
        if pkt.len() > ETH_MTU {
            // smoltcp's interface is loopback-sized; TCP segments on this link are cut to
            // the peer's MSS, so only an oversized datagram gets here (no fragmentation).
            tracing::debug!(len = pkt.len(), "eth0: packet over the MTU dropped");
            return;
        }
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
            EthernetProtocol::Ipv4 => Some(Bytes::copy_from_slice(f.payload())),
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

    fn flush(&mut self, hop: Ipv4Addr, mac: [u8; 6]) {
        let (ready, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|(h, _)| *h == hop);
        self.pending = rest.into();
        for (_, p) in ready {
            self.send_frame(mac, EthernetProtocol::Ipv4, &p);
        }
    }
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
}
