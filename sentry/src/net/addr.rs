//! `sockaddr_in` / `sockaddr_in6` in and out, and the conversions between the socket
//! API's addresses (an `AF_INET6` socket sees IPv4 peers as `::ffff:a.b.c.d`) and the
//! stack's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use linux_abi::Errno;
use smoltcp::wire::{IpAddress, IpEndpoint};

/// `AF_UNSPEC`.
pub const AF_UNSPEC: i32 = 0;
/// `AF_INET`.
pub const AF_INET: i32 = 2;
/// `AF_INET6`.
pub const AF_INET6: i32 = 10;

/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub const SOCKADDR_IN6_LEN: usize = 28;
/// The shortest `sockaddr_in6` Linux takes (RFC 2133's, without `sin6_scope_id`).
const SIN6_LEN_RFC2133: usize = 24;

/// What a socket address given to `bind`/`connect`/`sendto` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An address of the socket's family (IPv4 ones already unmapped from
    /// `::ffff:a.b.c.d` for an `AF_INET6` socket).
    Addr(SocketAddr),
    /// `AF_UNSPEC` (dissolves a datagram association on `connect`).
    Unspec,
}

/// Parses the `sockaddr` bytes given to a socket of `family`. `bind` is stricter about
/// the family field than `connect` and `sendto` (see `check_family`).
pub fn parse(family: i32, raw: &[u8]) -> Result<Parsed, Errno> {
    if raw.len() < 2 {
        return Err(Errno::EINVAL);
    }
    let fam = i32::from(u16::from_ne_bytes([raw[0], raw[1]]));
    if fam == AF_UNSPEC && family == AF_INET && raw.len() >= SOCKADDR_IN_LEN {
        // Linux accepts AF_UNSPEC with INADDR_ANY as AF_INET on bind, for old programs;
        // callers decide what AF_UNSPEC means.
        return Ok(Parsed::Unspec);
    }
    if fam == AF_UNSPEC {
        return Ok(Parsed::Unspec);
    }
    match family {
        AF_INET => {
            if raw.len() < SOCKADDR_IN_LEN {
                return Err(Errno::EINVAL);
            }
            if fam != AF_INET {
                return Err(Errno::EAFNOSUPPORT);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Ok(Parsed::Addr(SocketAddr::V4(SocketAddrV4::new(ip, port))))
        }
        AF_INET6 => {
            if fam != AF_INET6 {
                return Err(Errno::EAFNOSUPPORT);
            }
            if raw.len() < SIN6_LEN_RFC2133 {
                return Err(Errno::EINVAL);
            }
            let port = u16::from_be_bytes([raw[2], raw[3]]);
            let flow = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&raw[8..24]);
            let ip = Ipv6Addr::from(o);
            let scope = if raw.len() >= SOCKADDR_IN6_LEN {
                u32::from_ne_bytes([raw[24], raw[25], raw[26], raw[27]])
            } else {
                0
            };
            if let Some(v4) = ip.to_ipv4_mapped() {
                return Ok(Parsed::Addr(SocketAddr::V4(SocketAddrV4::new(v4, port))));
            }
            Ok(Parsed::Addr(SocketAddr::V6(SocketAddrV6::new(
                ip, port, flow, scope,
            ))))
        }
        _ => Err(Errno::EAFNOSUPPORT),
    }
}

/// Formats `addr` as the `sockaddr` a socket of `family` reports (IPv4 addresses mapped
/// into `::ffff:0:0/96` for `AF_INET6`).
pub fn format(family: i32, addr: SocketAddr) -> Vec<u8> {
    if family == AF_INET
        && let SocketAddr::V4(a) = addr
    {
        let mut v = vec![0u8; SOCKADDR_IN_LEN];
        v[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
        v[2..4].copy_from_slice(&a.port().to_be_bytes());
        v[4..8].copy_from_slice(&a.ip().octets());
        return v;
    }
    let (ip, port, flow, scope) = match addr {
        SocketAddr::V4(a) => (a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        SocketAddr::V6(a) => (*a.ip(), a.port(), a.flowinfo(), a.scope_id()),
    };
    let mut v = vec![0u8; SOCKADDR_IN6_LEN];
    v[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
    v[2..4].copy_from_slice(&port.to_be_bytes());
    v[4..8].copy_from_slice(&flow.to_be_bytes());
    v[8..24].copy_from_slice(&ip.octets());
    v[24..28].copy_from_slice(&scope.to_ne_bytes());
    v
}

/// The unspecified address of a family with `port`.
pub fn any(family: i32, port: u16) -> SocketAddr {
    if family == AF_INET6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0))
    } else {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
    }
}

/// A stack endpoint as a socket address.
pub fn from_endpoint(e: IpEndpoint) -> SocketAddr {
    SocketAddr::new(from_ip(e.addr), e.port)
}

/// A stack address as a std one.
pub fn from_ip(a: IpAddress) -> IpAddr {
    match a {
        IpAddress::Ipv4(v4) => IpAddr::V4(v4),
        IpAddress::Ipv6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
    }
}

/// A std address as a stack one.
pub fn to_ip(a: IpAddr) -> IpAddress {
    match a {
        IpAddr::V4(v4) => IpAddress::Ipv4(v4),
        IpAddr::V6(v6) => IpAddress::Ipv6(v6),
    }
}

/// A socket address as a stack endpoint.
pub fn to_endpoint(a: SocketAddr) -> IpEndpoint {
    IpEndpoint::new(to_ip(a.ip()), a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_maps() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let raw = format(AF_INET, a);
        assert_eq!(raw.len(), 16);
        assert_eq!(parse(AF_INET, &raw), Ok(Parsed::Addr(a)));
        // An AF_INET6 socket sees the same address mapped, and gives it back unmapped.
        let raw6 = format(AF_INET6, a);
        assert_eq!(raw6.len(), 28);
        assert_eq!(
            &raw6[8..24],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]
        );
        assert_eq!(parse(AF_INET6, &raw6), Ok(Parsed::Addr(a)));
        let b: SocketAddr = "[::1]:9".parse().unwrap();
        assert_eq!(parse(AF_INET6, &format(AF_INET6, b)), Ok(Parsed::Addr(b)));
        // Wrong family, short lengths.
        assert_eq!(parse(AF_INET, &raw6), Err(Errno::EAFNOSUPPORT));
        assert_eq!(parse(AF_INET, &raw[..8]), Err(Errno::EINVAL));
        assert_eq!(parse(AF_INET6, &raw6[..20]), Err(Errno::EINVAL));
        assert_eq!(parse(AF_INET6, &raw), Err(Errno::EAFNOSUPPORT));
    }
}
