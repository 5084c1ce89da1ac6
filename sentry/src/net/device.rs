//! The loopback device: a queue of IP packets in memory.
//!
//! The stack pops each packet itself (so it can look at it before smoltcp does, see
//! `Inner::poll`), puts it in [`LoopDevice::current`] and lets smoltcp take it from there;
//! whatever smoltcp transmits is queued for the next round.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

/// The MTU of `lo` (Linux's is 65536; an IP packet cannot exceed 65535 bytes).
pub const LOOPBACK_MTU: usize = 65535;

/// The in-memory loopback device.
#[derive(Debug, Default)]
pub struct LoopDevice {
    /// Packets transmitted and not yet received.
    pub queue: VecDeque<Bytes>,
    /// The packet handed to smoltcp by the next `receive`.
    pub current: Option<Bytes>,
    /// Counters: (packets, bytes) sent and received, for `/proc/net/dev`.
    pub tx: (u64, u64),
    /// See `tx`.
    pub rx: (u64, u64),
    /// `--network=sandbox`: the Ethernet link packets off loopback leave by.
    pub eth: Option<super::eth::EthLink>,
}

impl Device for LoopDevice {
    type RxToken<'a> = RxToken;
    type TxToken<'a> = TxToken<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.max_transmission_unit = LOOPBACK_MTU;
        caps.medium = Medium::Ip;
        // Nothing corrupts packets in memory: no checksums computed or verified. Packets
        // that leave by an Ethernet link get theirs there (the host verifies them);
        // incoming ones are not verified: the host's veth hands over packets whose
        // checksums it left to offload.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }

    fn receive(&mut self, _now: Instant) -> Option<(RxToken, TxToken<'_>)> {
        let buf = self.current.take()?;
        self.rx.0 += 1;
        self.rx.1 += buf.len() as u64;
        Some((
            RxToken { buf },
            TxToken {
                queue: &mut self.queue,
                tx: &mut self.tx,
                eth: &mut self.eth,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<TxToken<'_>> {
        Some(TxToken {
            queue: &mut self.queue,
            tx: &mut self.tx,
            eth: &mut self.eth,
        })
    }
}

/// A received packet.
#[derive(Debug)]
pub struct RxToken {
    buf: Bytes,
}

impl phy::RxToken for RxToken {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.buf)
    }
}

/// Room for one packet to transmit.
#[derive(Debug)]
pub struct TxToken<'a> {
    queue: &'a mut VecDeque<Bytes>,
    tx: &'a mut (u64, u64),
    eth: &'a mut Option<super::eth::EthLink>,
}

impl phy::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = BytesMut::zeroed(len);
        let r = f(&mut buf);
        if let Some(eth) = self.eth.as_mut() {
            // Off loopback and not to ourselves: out by the link (IPv4 or IPv6).
            match buf.first().map(|b| b >> 4) {
                Some(4) => {
                    let dst = smoltcp::wire::Ipv4Packet::new_checked(&buf[..])
                        .ok()
                        .map(|p| p.dst_addr());
                    if let Some(dst) = dst.filter(|d| eth.takes(*d)) {
                        super::eth::fill_checksums(&mut buf);
                        eth.send_ip(buf.freeze(), dst);
                        return r;
                    }
                }
                Some(6) => {
                    let dst = smoltcp::wire::Ipv6Packet::new_checked(&buf[..])
                        .ok()
                        .map(|p| p.dst_addr());
                    if let Some(dst) = dst.filter(|d| eth.takes6(*d)) {
                        super::eth::fill_checksums(&mut buf);
                        eth.send_ip6(buf.freeze(), dst);
                        return r;
                    }
                }
                _ => {}
            }
        }
        let pkt = buf.freeze();
        self.tx.0 += 1;
        self.tx.1 += len as u64;
        self.queue.push_back(pkt);
        r
    }
}
