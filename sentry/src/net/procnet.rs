//! `/proc/net` files, in Linux's formats, from a [`Stack`].

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use super::{IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, Stack};

fn hex_addr(a: SocketAddr, v6: bool) -> String {
    // Addresses are printed as the kernel's 32-bit words in host (little-endian) order.
    let ip = match (a.ip(), v6) {
        (IpAddr::V4(v), false) => format!("{:08X}", u32::from_ne_bytes(v.octets())),
        (ip, _) => {
            let o = match ip {
                IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
                IpAddr::V6(v) => v.octets(),
            };
            o.chunks(4)
                .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
    };
    format!("{ip}:{:04X}", a.port())
}

/// `/proc/net/tcp`, `tcp6`, `udp`, `udp6`, and `icmp`, `icmp6` (ping sockets, their
/// echo identifier as the port).
fn sockets(stack: &Stack, proto: i32, v6: bool) -> Vec<u8> {
    let mut out = String::new();
    if v6 {
        out.push_str("  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
    } else {
        out.push_str("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n");
    }
    for (n, (l, r, st, tx, rx)) in stack.table(proto, v6).into_iter().enumerate() {
        let _ = writeln!(
            out,
            "{n:4}: {} {} {st:02X} {tx:08X}:{rx:08X} 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0",
            hex_addr(l, v6),
            hex_addr(r, v6)
        );
    }
    out.into_bytes()
}

/// The contents of `/proc/net/<name>`, if the file exists.
pub fn render(stack: &Stack, name: &[u8]) -> Option<Vec<u8>> {
    Some(match name {
        b"tcp" => sockets(stack, IPPROTO_TCP, false),
        b"tcp6" => sockets(stack, IPPROTO_TCP, true),
        b"udp" => sockets(stack, IPPROTO_UDP, false),
        b"udp6" => sockets(stack, IPPROTO_UDP, true),
        b"icmp" => sockets(stack, IPPROTO_ICMP, false),
        b"icmp6" => sockets(stack, IPPROTO_ICMP, true),
        b"dev" => {
            let mut out = String::from(
                "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
            );
            for l in stack.links() {
                let _ = writeln!(
                    out,
                    "{:>6}: {:>7} {:>7}    0    0    0     0          0         0 {:>8} {:>7}    0    0    0     0       0          0",
                    l.name, l.rx.1, l.rx.0, l.tx.1, l.tx.0
                );
            }
            out.into_bytes()
        }
        b"route" => {
            // IPv4 routes of the main table: none on a loopback-only stack (127.0.0.0/8
            // is in the local table, as on Linux); with an Ethernet link, its subnet and
            // the default route. Addresses print as Linux prints a __be32 with %08X.
            let mut out = String::from(
                "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT                                                       \n",
            );
            let hex = |a: std::net::Ipv4Addr| format!("{:08X}", u32::from_ne_bytes(a.octets()));
            for l in stack.links() {
                if l.flags & super::IFF_LOOPBACK != 0 {
                    continue;
                }
                let mut row = |dst, gw, flags: u32, mask| {
                    let line = format!(
                        "{}\t{}\t{}\t{flags:04X}\t0\t0\t0\t{}\t0\t0\t0",
                        l.name,
                        hex(dst),
                        hex(gw),
                        hex(mask)
                    );
                    let _ = writeln!(out, "{line:<127}");
                };
                let any = std::net::Ipv4Addr::UNSPECIFIED;
                if let Some(gw) = l.gateway {
                    row(any, gw, 0x3, any); // RTF_UP | RTF_GATEWAY
                }
                for (a, p) in &l.addrs {
                    if let IpAddr::V4(v) = a {
                        let m = if *p == 0 {
                            0
                        } else {
                            u32::MAX << (32 - u32::from(*p))
                        };
                        let net = std::net::Ipv4Addr::from(u32::from(*v) & m);
                        row(net, any, 0x1, std::net::Ipv4Addr::from(m));
                    }
                }
            }
            out.into_bytes()
        }
        b"if_inet6" => {
            let mut out = String::new();
            for l in stack.links() {
                for (a, p) in &l.addrs {
                    if let IpAddr::V6(v) = a {
                        let hex: String = v.octets().iter().map(|b| format!("{b:02x}")).collect();
                        // Scope: host (0x10) for loopback addresses, link (0x20) for
                        // link-local ones, global (0) otherwise.
                        let scope = if v.is_loopback() {
                            0x10
                        } else if v.is_unicast_link_local() {
                            0x20
                        } else {
                            0
                        };
                        let _ = writeln!(
                            out,
                            "{hex} {:02x} {p:02x} {scope:02x} 80 {:>8}",
                            l.index, l.name
                        );
                    }
                }
            }
            out.into_bytes()
        }
        _ => return None,
    })
}
