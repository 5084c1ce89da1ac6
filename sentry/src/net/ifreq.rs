//! The netdevice ioctls (`netdevice(7)`): `SIOCGIFCONF` and the `SIOCGIF*` queries of one
//! interface by name (or by index for `SIOCGIFNAME`), answered from the [`Stack`]'s links.

use std::net::IpAddr;

use linux_abi::Errno;

use super::{Link, Stack};
use crate::fs::UserMem;

const SIOCGIFNAME: u32 = 0x8910;
const SIOCGIFCONF: u32 = 0x8912;
const SIOCGIFFLAGS: u32 = 0x8913;
const SIOCSIFFLAGS: u32 = 0x8914;
const SIOCGIFADDR: u32 = 0x8915;
const SIOCGIFBRDADDR: u32 = 0x8919;
const SIOCGIFNETMASK: u32 = 0x891b;
const SIOCGIFMETRIC: u32 = 0x891d;
const SIOCGIFMTU: u32 = 0x8921;
const SIOCGIFHWADDR: u32 = 0x8927;
const SIOCGIFINDEX: u32 = 0x8933;
const SIOCGIFTXQLEN: u32 = 0x8942;

/// `sizeof(struct ifreq)`.
const IFREQ_LEN: usize = 40;
const IFNAMSIZ: usize = 16;

fn sockaddr_in(ip: std::net::Ipv4Addr) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..2].copy_from_slice(&2u16.to_ne_bytes());
    s[4..8].copy_from_slice(&ip.octets());
    s
}

fn first_v4(l: &Link) -> Option<(std::net::Ipv4Addr, u8)> {
    l.addrs.iter().find_map(|(a, p)| match a {
        IpAddr::V4(v) => Some((*v, *p)),
        IpAddr::V6(_) => None,
    })
}

fn name_bytes(l: &Link) -> [u8; IFNAMSIZ] {
    let mut n = [0u8; IFNAMSIZ];
    let b = l.name.as_bytes();
    n[..b.len().min(IFNAMSIZ - 1)].copy_from_slice(&b[..b.len().min(IFNAMSIZ - 1)]);
    n
}

/// The link an `ifreq`'s name names.
fn by_name<'a>(links: &'a [Link], req: &[u8; IFREQ_LEN]) -> Option<&'a Link> {
    let end = req[..IFNAMSIZ]
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(IFNAMSIZ);
    links.iter().find(|l| l.name.as_bytes() == &req[..end])
}

/// Answers a netdevice ioctl; other commands are `ENOTTY`.
pub fn ioctl(stack: &Stack, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
    let links = stack.links();
    if cmd == SIOCGIFCONF {
        let mut hdr = [0u8; 16];
        mem.copy_in(arg, &mut hdr)?;
        let len = i32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let buf = u64::from_ne_bytes(hdr[8..16].try_into().unwrap_or_default());
        // One entry per interface with an IPv4 address.
        let entries: Vec<[u8; IFREQ_LEN]> = links
            .iter()
            .filter_map(|l| {
                let (ip, _) = first_v4(l)?;
                let mut r = [0u8; IFREQ_LEN];
                r[..IFNAMSIZ].copy_from_slice(&name_bytes(l));
                r[IFNAMSIZ..IFNAMSIZ + 16].copy_from_slice(&sockaddr_in(ip));
                Some(r)
            })
            .collect();
        let total = if buf == 0 {
            // A null buffer asks for the size needed.
            entries.len() * IFREQ_LEN
        } else {
            let room = (len.max(0) as usize) / IFREQ_LEN;
            let n = entries.len().min(room);
            for (k, e) in entries.iter().take(n).enumerate() {
                mem.copy_out(buf + (k * IFREQ_LEN) as u64, e)?;
            }
            n * IFREQ_LEN
        };
        mem.copy_out(arg, &(total as i32).to_ne_bytes())?;
        return Ok(0);
    }
    let known = [
        SIOCGIFNAME,
        SIOCGIFFLAGS,
        SIOCGIFADDR,
        SIOCGIFBRDADDR,
        SIOCGIFNETMASK,
        SIOCGIFMETRIC,
        SIOCGIFMTU,
        SIOCGIFHWADDR,
        SIOCGIFINDEX,
        SIOCGIFTXQLEN,
    ];
    // The netdevice commands that change an interface: Linux reads the request first
    // (EFAULT), finds the interface (ENODEV). The sandbox's links are set up by runsc,
    // so asking for what an interface already is succeeds and changing it is refused.
    let setters = [
        0x8914, 0x8916, 0x8918, 0x891a, 0x891c, 0x891e, 0x8922, 0x8923, 0x8924, 0x8943,
    ];
    if setters.contains(&cmd) {
        let mut req = [0u8; IFREQ_LEN];
        mem.copy_in(arg, &mut req)?;
        let link = by_name(&links, &req).ok_or(Errno::ENODEV)?;
        let flags = u16::from_ne_bytes([req[16], req[17]]);
        return match cmd {
            SIOCSIFFLAGS if u32::from(flags) == link.flags & 0xffff => Ok(0),
            _ => Err(Errno::EOPNOTSUPP),
        };
    }
    if !known.contains(&cmd) {
        return Err(Errno::ENOTTY);
    }
    let mut req = [0u8; IFREQ_LEN];
    mem.copy_in(arg, &mut req)?;
    let link = if cmd == SIOCGIFNAME {
        let idx = u32::from_ne_bytes([req[16], req[17], req[18], req[19]]);
        links.iter().find(|l| l.index == idx)
    } else {
        by_name(&links, &req)
    }
    .ok_or(Errno::ENODEV)?;
    let mut out = [0u8; 24];
    match cmd {
        SIOCGIFNAME => {
            req[..IFNAMSIZ].copy_from_slice(&name_bytes(link));
            mem.copy_out(arg, &req)?;
            return Ok(0);
        }
        SIOCGIFFLAGS => out[..2].copy_from_slice(&(link.flags as u16).to_ne_bytes()),
        SIOCGIFADDR => {
            let (ip, _) = first_v4(link).ok_or(Errno::EADDRNOTAVAIL)?;
            out[..16].copy_from_slice(&sockaddr_in(ip));
        }
        SIOCGIFNETMASK => {
            let (_, p) = first_v4(link).ok_or(Errno::EADDRNOTAVAIL)?;
            let m = if p == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(p))
            };
            out[..16].copy_from_slice(&sockaddr_in(m.into()));
        }
        SIOCGIFBRDADDR => {
            let (ip, p) = first_v4(link).ok_or(Errno::EADDRNOTAVAIL)?;
            let m = if p == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(p))
            };
            let b = if link.flags & super::IFF_LOOPBACK != 0 {
                0
            } else {
                u32::from(ip) | !m
            };
            out[..16].copy_from_slice(&sockaddr_in(b.into()));
        }
        SIOCGIFMETRIC => {}
        SIOCGIFMTU => out[..4].copy_from_slice(&(link.mtu as i32).to_ne_bytes()),
        SIOCGIFHWADDR => {
            // ARPHRD_LOOPBACK (772) or ARPHRD_ETHER (1).
            let ty: u16 = if link.flags & super::IFF_LOOPBACK != 0 {
                772
            } else {
                1
            };
            out[..2].copy_from_slice(&ty.to_ne_bytes());
            let n = link.hwaddr.len().min(14);
            out[2..2 + n].copy_from_slice(&link.hwaddr[..n]);
        }
        SIOCGIFINDEX => out[..4].copy_from_slice(&(link.index as i32).to_ne_bytes()),
        SIOCGIFTXQLEN => out[..4].copy_from_slice(&1000i32.to_ne_bytes()),
        _ => return Err(Errno::ENOTTY),
    }
    req[IFNAMSIZ..].copy_from_slice(&out);
    mem.copy_out(arg, &req)?;
    Ok(0)
}
