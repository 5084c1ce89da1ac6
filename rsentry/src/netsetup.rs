//! `--network=sandbox` for a sandbox the monitor starts (`runsc do`): a veth pair made
//! for it, the host end addressed, the other end (`eth0`) in a network namespace of its
//! own, with an `AF_PACKET` socket on it that the sandbox process inherits and the
//! Sentry's stack speaks Ethernet, ARP and IPv6 neighbour discovery over.
//!
//! The namespace is made by a short-lived thread of the monitor (`unshare(CLONE_NEWNET)`
//! affects that thread only), which also brings `eth0` up (an `ip` it starts lives in
//! its namespace) and opens the packet socket there. Nothing else holds the namespace:
//! the socket keeps it, and with it the veth pair, alive exactly as long as the sandbox
//! (and this monitor) hold the socket; [`SandboxLink`]'s drop also deletes the host end
//! explicitly. The pair's /30 comes from 10.213.0.0/16, skipping any /30 that an address
//! of the host already uses: the host end is its first address, the sandbox its second.
//! Where the host has IPv6, the pair also gets a /64 of the unique local
//! `fd52:7362:6e74::/48` that holds no host address (the host end `::1`, the sandbox
//! `::2`, the host end its IPv6 default gateway); the kernel's own IPv6 is turned off on
//! the sandbox's end, whose addresses are the Sentry's alone. Without IPv6 on the host
//! the link is IPv4 only.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The sandbox's end of the link, as the Sentry configures it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EthSpec {
    /// `eth0`'s hardware address.
    pub mac: [u8; 6],
    /// Its address.
    pub addr: Ipv4Addr,
    /// The prefix length (30).
    pub prefix: u8,
    /// The default gateway (the host end for `do`), if the link has a default route.
    pub gateway: Option<Ipv4Addr>,
    /// Its IPv6 addresses with their prefix lengths (the Sentry adds a link-local one,
    /// made from `mac`, when none of them is link-local).
    #[serde(default)]
    pub addrs6: Vec<(Ipv6Addr, u8)>,
    /// The IPv6 default gateway, if the link has an IPv6 default route.
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
}

/// A veth pair made for one sandbox.
#[derive(Debug)]
pub struct SandboxLink {
    /// The host end's name (`rsb<pid>`).
    pub host_if: String,
    /// The packet socket on `eth0`, for the sandbox process.
    pub packet: OwnedFd,
    /// What the Sentry is told.
    pub spec: EthSpec,
    /// The host end's interface index.
    host_index: u32,
}

impl Drop for SandboxLink {
    fn drop(&mut self) {
        // Deleting one end deletes the pair. Over netlink, not `ip`: by now the monitor
        // may be unable to fork (its PID namespace for children has lost its init).
        if let Err(e) = delete_link(self.host_index) {
            tracing::debug!(host_if = %self.host_if, "deleting the sandbox link: {e}");
        }
    }
}

/// `RTM_DELLINK` of interface `index`, waiting for the kernel's answer.
fn delete_link(index: u32) -> Result<(), nix::errno::Errno> {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, send, socket,
    };
    use std::os::fd::AsRawFd;
    let s = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    const RTM_DELLINK: u16 = 17;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_DELLINK.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel's
    msg.extend_from_slice(&[0, 0, 0, 0]); // family, pad, type
    msg.extend_from_slice(&(index as i32).to_ne_bytes());
    msg.extend_from_slice(&[0; 8]); // flags, change
    send(s.as_raw_fd(), &msg, MsgFlags::empty())?;
    let mut ack = [0u8; 1024];
    let n = recv(s.as_raw_fd(), &mut ack, MsgFlags::empty())?;
    // NLMSG_ERROR (2) with error 0 is the acknowledgement.
    if n >= 20 && u16::from_ne_bytes([ack[4], ack[5]]) == 2 {
        let e = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
        if e != 0 {
            return Err(nix::errno::Errno::from_raw(-e));
        }
    }
    Ok(())
}

/// The `ip` program of iproute2.
fn ip_path() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

/// Runs `ip ARGS...`; its stderr becomes the error.
fn ip(args: &[&str]) -> Result<String, Error> {
    let out = Command::new(ip_path())
        .args(args)
        .output()
        .map_err(|e| Error::host("run ip (iproute2) for --network=sandbox", e))?;
    if !out.status.success() {
        return Err(Error::Invalid(format!(
            "--network=sandbox: ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The host's IPv4 addresses.
fn host_addrs() -> Result<Vec<Ipv4Addr>, Error> {
    let out = ip(&["-o", "-4", "addr", "show"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|&x| x == "inet")?;
            w.next()?.split('/').next()?.parse().ok()
        })
        .collect())
}

/// The /48 of unique local addresses (RFC 4193) whose /64s the links of `do` get.
const ULA_48: [u16; 3] = [0xfd52, 0x7362, 0x6e74];

/// Whether the host has IPv6 for a new interface: the protocol there (not disabled at
/// boot) and not disabled for all or new interfaces (`net.ipv6.conf.{all,default}.
/// disable_ipv6`).
fn host_has_ipv6() -> bool {
    let on = |p: &str| std::fs::read_to_string(p).is_ok_and(|v| v.trim() == "0");
    on("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        && on("/proc/sys/net/ipv6/conf/default/disable_ipv6")
}

/// The host's IPv6 addresses.
fn host_addrs6() -> Result<Vec<Ipv6Addr>, Error> {
    let out = ip(&["-o", "-6", "addr", "show"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|&x| x == "inet6")?;
            w.next()?.split('/').next()?.parse().ok()
        })
        .collect())
}

/// A /64 of [`ULA_48`] (its network address) holding none of the addresses in `used`,
/// starting from one derived from `seed` as [`pick_subnet`] does.
fn pick_subnet6(seed: u32, used: &[Ipv6Addr]) -> Option<Ipv6Addr> {
    (0..65536u32).find_map(|k| {
        let n = (seed.wrapping_mul(7919).wrapping_add(k) % 65536) as u16;
        let net = Ipv6Addr::new(ULA_48[0], ULA_48[1], ULA_48[2], n, 0, 0, 0, 0);
        let taken = used
            .iter()
            .any(|a| a.segments()[..4] == net.segments()[..4]);
        (!taken).then_some(net)
    })
}

/// Address `host` of the /64 `net`.
fn in_subnet6(net: Ipv6Addr, host: u16) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(net) | u128::from(host))
}

/// Turns the host kernel's IPv6 off on interface `name` of the calling thread's network
/// namespace: the Sentry's stack speaks IPv6 there, and the kernel must not answer
/// neighbour solicitations or make addresses of its own beside it. Nothing to do where
/// the host has no IPv6.
fn disable_kernel_ipv6(name: &str) {
    // /proc/sys/net is the namespace of the thread that opens it.
    let path = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    match std::fs::write(&path, "1") {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(%path, "cannot turn the kernel's IPv6 off: {e}"),
    }
}

/// A free /30 of 10.213.0.0/16 (its network address), starting from one derived from
/// `seed` so that concurrent sandboxes rarely try the same one.
fn pick_subnet(seed: u32) -> Result<Ipv4Addr, Error> {
    let used = host_addrs()?;
    for k in 0..16384u32 {
        let n = (seed.wrapping_mul(7919).wrapping_add(k)) % 16384;
        let net = u32::from(Ipv4Addr::new(10, 213, 0, 0)) + n * 4;
        if !used.iter().any(|a| u32::from(*a) & !3 == net) {
            return Ok(Ipv4Addr::from(net));
        }
    }
    Err(Error::Invalid(
        "--network=sandbox: no free /30 in 10.213.0.0/16".into(),
    ))
}

/// Makes the link of the sandbox of monitor `id` (the monitor's pid). Needs host root
/// and iproute2; must run before the monitor enters a new PID namespace (it starts a
/// thread).
pub fn create(id: u32) -> Result<SandboxLink, Error> {
    let net = u32::from(pick_subnet(id)?);
    let (host_addr, addr) = (Ipv4Addr::from(net + 1), Ipv4Addr::from(net + 2));
    // IPv6 too where the host has it: a /64 of unique local addresses, the host end ::1
    // and the sandbox ::2; IPv4 only otherwise.
    let mut v6 = if host_has_ipv6() {
        match host_addrs6() {
            Ok(used) => pick_subnet6(id, &used),
            Err(e) => {
                tracing::debug!("the host's IPv6 addresses: {e}");
                None
            }
        }
    } else {
        None
    }
    .map(|net| (in_subnet6(net, 1), in_subnet6(net, 2)));
    // Locally administered, unicast; the rest from the address, unique per link.
    let o = addr.octets();
    let mac = [0x02, 0x52, o[0], o[1], o[2], o[3]];
    let mac_s = mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let host_if = format!("rsb{id}");
    let (tid_tx, tid_rx) = std::sync::mpsc::channel::<Result<i32, Error>>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<bool>();
    let ns_thread = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<OwnedFd, Error> {
            let r = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map(|()| nix::unistd::gettid().as_raw())
                .map_err(|e| Error::nix("unshare(CLONE_NEWNET)", e));
            let ok = r.is_ok();
            let _ = tid_tx.send(r);
            if !ok || !go_rx.recv().unwrap_or(false) {
                return Err(Error::Invalid("--network=sandbox: no veth".into()));
            }
            // Started from this thread, `ip` runs in its namespace.
            ip(&["link", "set", "lo", "up"])?;
            disable_kernel_ipv6("eth0");
            ip(&["link", "set", "eth0", "up"])?;
            let index = crate::host::if_index(c"eth0")
                .map_err(|e| Error::host("find eth0 in the sandbox's namespace", e))?;
            crate::host::packet_socket(index)
                .map_err(|e| Error::host("open a packet socket on eth0", e))
        })
        .map_err(|e| Error::host("start the network namespace thread", e))?;
    let tid = match tid_rx.recv() {
        Ok(Ok(tid)) => tid,
        Ok(Err(e)) => {
            let _ = ns_thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = ns_thread.join();
            return Err(Error::Invalid("--network=sandbox: namespace thread".into()));
        }
    };
    let made = ip(&[
        "link",
        "add",
        &host_if,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "address",
        &mac_s,
        "netns",
        &tid.to_string(),
    ]);
    let made = made.and_then(|_| {
        // The link exists from here on: dropped with its guard on any error below.
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &host_if])?;
        if let Some((host6, _)) = v6 {
            // No duplicate address detection: the link is new and ours, and the address
            // is usable at once.
            let host6 = format!("{host6}/64");
            if let Err(e) = ip(&["-6", "addr", "add", &host6, "dev", &host_if, "nodad"]) {
                tracing::warn!("--network=sandbox: IPv4 only: {e}");
                v6 = None;
            }
        }
        ip(&["link", "set", &host_if, "up"])
    });
    let _ = go_tx.send(made.is_ok());
    let packet = ns_thread
        .join()
        .map_err(|_| Error::Invalid("--network=sandbox: namespace thread panicked".into()));
    let spec = EthSpec {
        mac,
        addr,
        prefix: 30,
        gateway: Some(host_addr),
        addrs6: v6.map(|(_, a)| vec![(a, 64)]).unwrap_or_default(),
        gateway6: v6.map(|(h, _)| h),
    };
    match (made, packet) {
        (Ok(_), Ok(Ok(packet))) => {
            tracing::debug!(%host_if, %host_addr, %addr, "sandbox link");
            let c = std::ffi::CString::new(host_if.clone())
                .map_err(|_| Error::Invalid("--network=sandbox: link name".into()));
            let index = c.and_then(|c| {
                crate::host::if_index(&c).map_err(|e| Error::host("find the host end", e))
            });
            match index {
                Ok(host_index) => Ok(SandboxLink {
                    host_if,
                    packet,
                    spec,
                    host_index,
                }),
                Err(e) => {
                    let _ = ip(&["link", "del", &host_if]);
                    Err(e)
                }
            }
        }
        (made, packet) => {
            let _ = ip(&["link", "del", &host_if]);
            Err(match (made, packet) {
                (Err(e), _) | (_, Err(e)) | (_, Ok(Err(e))) => e,
                (Ok(_), Ok(Ok(_))) => Error::Invalid("--network=sandbox".into()),
            })
        }
    }
}

/// An interface of a network namespace made for a container (by a CNI plugin), taken
/// over by the Sentry's stack: the packet socket on it, and what the Sentry is told.
#[derive(Debug)]
pub struct TakenLink {
    /// The interface's name in its namespace.
    pub name: String,
    /// The packet socket on it, for the sandbox process.
    pub packet: OwnedFd,
    /// Its address, prefix, hardware address and default gateway.
    pub spec: EthSpec,
}

/// `--network=sandbox` for an OCI container: joins the network namespace at `ns` (the
/// spec's, set up by a CNI plugin) in a short-lived thread, finds its first Ethernet
/// interface with an IPv4 address, opens a packet socket on it and removes its
/// addresses from the host kernel (with their routes), so that only the Sentry answers
/// for them, as gVisor does. `None` when the namespace has no such interface (loopback
/// only, as a namespace made by `ctr run` without CNI).
///
/// The namespace the caller runs in, and PID 1's, are refused: their interfaces are the
/// host's, and taking one over would take the host's addresses away.
pub fn take_over(ns: &std::path::Path) -> Result<Option<TakenLink>, Error> {
    let ns_file = std::fs::File::open(ns)
        .map_err(|e| Error::host(format!("open network namespace {}", ns.display()), e))?;
    refuse_host_namespace(&ns_file, ns)?;
    let thread = std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || -> Result<Option<TakenLink>, Error> {
            // setns affects this thread only; an `ip` it starts runs in the namespace.
            nix::sched::setns(&ns_file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::nix("setns(CLONE_NEWNET)", e))?;
            let Some(Ethernet {
                name,
                mac,
                addr,
                prefix,
                addrs6,
            }) = first_ethernet(&ip(&["-j", "addr", "show"])?)?
            else {
                return Ok(None);
            };
            let gateway = default_gateway(&ip(&["-j", "route", "show", "default"])?, &name);
            // A namespace without IPv6 has no IPv6 routes to show.
            let gateway6 = ip(&["-j", "-6", "route", "show", "default"])
                .ok()
                .and_then(|j| default_gateway(&j, &name));
            let c = std::ffi::CString::new(name.clone())
                .map_err(|_| Error::Invalid(format!("interface name {name:?}")))?;
            let index = crate::host::if_index(&c)
                .map_err(|e| Error::host(format!("find {name} in the container's namespace"), e))?;
            let packet = crate::host::packet_socket(index)
                .map_err(|e| Error::host(format!("open a packet socket on {name}"), e))?;
            ip(&["addr", "flush", "dev", &name])?;
            disable_kernel_ipv6(&name);
            ip(&["link", "set", "lo", "up"])?;
            tracing::debug!(%name, %addr, prefix, ?gateway, ?addrs6, ?gateway6, "container link taken over");
            Ok(Some(TakenLink {
                name,
                packet,
                spec: EthSpec {
                    mac,
                    addr,
                    prefix,
                    gateway,
                    addrs6,
                    gateway6,
                },
            }))
        })
        .map_err(|e| Error::host("start the network namespace thread", e))?;
    thread
        .join()
        .map_err(|_| Error::Invalid("--network=sandbox: namespace thread panicked".into()))?
}

/// Whether the namespace file described by `m` is the caller's own network namespace or
/// PID 1's.
fn is_host(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    ["/proc/self/ns/net", "/proc/1/ns/net"]
        .iter()
        .any(|host| std::fs::metadata(host).is_ok_and(|h| (h.dev(), h.ino()) == (m.dev(), m.ino())))
}

/// Whether `ns` names the host's network namespace (the caller's own or PID 1's): its
/// interfaces are the host's, never taken over; a container naming it shares the host's
/// network. `false` when `ns` cannot be read.
pub fn is_host_namespace(ns: &std::path::Path) -> bool {
    std::fs::metadata(ns).is_ok_and(|m| is_host(&m))
}

/// An error if `ns_file` (opened from `ns`) is the caller's own network namespace or
/// PID 1's.
fn refuse_host_namespace(ns_file: &std::fs::File, ns: &std::path::Path) -> Result<(), Error> {
    let m = ns_file
        .metadata()
        .map_err(|e| Error::host(format!("stat network namespace {}", ns.display()), e))?;
    if is_host(&m) {
        return Err(Error::Invalid(format!(
            "{} is the host's network namespace: its interfaces are not taken over",
            ns.display()
        )));
    }
    Ok(())
}

/// An interface as `ip` lists it.
#[derive(Debug, PartialEq, Eq)]
struct Ethernet {
    name: String,
    mac: [u8; 6],
    /// Its IPv4 address and prefix length.
    addr: Ipv4Addr,
    prefix: u8,
    /// Its IPv6 addresses (the kernel's link-local one among them) and prefix lengths.
    addrs6: Vec<(Ipv6Addr, u8)>,
}

/// From `ip -j addr show`: the first Ethernet interface that is up and has an IPv4
/// address, with its IPv6 addresses (less those that failed duplicate address
/// detection).
fn first_ethernet(json: &str) -> Result<Option<Ethernet>, Error> {
    let links: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Error::Invalid(format!("ip -j addr: {e}")))?;
    let mut found = None;
    for l in links.as_array().into_iter().flatten() {
        if l["link_type"] != "ether" {
            continue;
        }
        let Some(name) = l["ifname"].as_str() else {
            continue;
        };
        let mac = l["address"].as_str().and_then(parse_mac);
        let inet = l["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|a| {
                (a["family"] == "inet").then_some(())?;
                let addr: Ipv4Addr = a["local"].as_str()?.parse().ok()?;
                let prefix = u8::try_from(a["prefixlen"].as_u64()?).ok()?;
                Some((addr, prefix))
            });
        let addrs6 = l["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| {
                (a["family"] == "inet6" && a["dadfailed"] != true).then_some(())?;
                let addr: Ipv6Addr = a["local"].as_str()?.parse().ok()?;
                let prefix = u8::try_from(a["prefixlen"].as_u64()?).ok()?;
                Some((addr, prefix))
            })
            .collect();
        if let (Some(mac), Some((addr, prefix))) = (mac, inet) {
            if found.is_some() {
                tracing::warn!(ifname = name, "only the first interface is taken over");
                continue;
            }
            found = Some(Ethernet {
                name: name.to_owned(),
                mac,
                addr,
                prefix,
                addrs6,
            });
        }
    }
    Ok(found)
}

/// From `ip -j [-6] route show default`: the gateway of the default route through
/// `dev`.
fn default_gateway<A: std::str::FromStr>(json: &str, dev: &str) -> Option<A> {
    let routes: serde_json::Value = serde_json::from_str(json).ok()?;
    routes
        .as_array()?
        .iter()
        .filter(|r| r["dev"] == dev)
        .find_map(|r| r["gateway"].as_str()?.parse().ok())
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// The `/etc/hosts` and `/etc/resolv.conf` of a sandbox on a link of its own, as a
/// container engine writes a bridged container's: `hosts` names localhost and the
/// sandbox's host name at its address; `resolv.conf` is the host's (`host_resolv`) less
/// the name servers the sandbox cannot reach ([`sandbox_resolv_conf`]).
pub fn etc_files(eth: &EthSpec, hostname: &str, host_resolv: &str) -> Vec<crate::spec::FileSpec> {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n\
         {}\t{hostname}\n",
        eth.addr
    );
    vec![
        crate::spec::FileSpec {
            path: "/etc/hosts".into(),
            contents: hosts.into_bytes(),
        },
        crate::spec::FileSpec {
            path: "/etc/resolv.conf".into(),
            contents: sandbox_resolv_conf(host_resolv).into_bytes(),
        },
    ]
}

/// The public resolvers a container engine falls back on when the host names none
/// that a bridged container can reach (Docker's defaults).
const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// The host's `resolv.conf` for a sandbox whose stack has only its own loopback and an
/// IPv4 link: `nameserver` lines naming a loopback address (a local resolver such as
/// systemd-resolved's 127.0.0.53 is the host's, not the sandbox's) or an IPv6 one
/// are dropped, everything else (search domains, options) is kept; when no name server
/// is left, the public fallbacks are named instead, as Docker does.
pub fn sandbox_resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let reachable = words
                .next()
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .is_some_and(|a| a.is_ipv4() && !a.is_loopback() && !a.is_unspecified());
            if !reachable {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for a in FALLBACK_NAMESERVERS {
            out.push_str("nameserver ");
            out.push_str(a);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn resolv_conf_drops_what_the_sandbox_cannot_reach() {
        let host = "# comment\nnameserver 127.0.0.53\nsearch example.org\n\
                    nameserver 10.0.0.2\nnameserver ::1\nnameserver fd00::1\n\
                    nameserver 0.0.0.0\nnameserver bogus\noptions edns0 trust-ad\n";
        assert_eq!(
            super::sandbox_resolv_conf(host),
            "# comment\nsearch example.org\nnameserver 10.0.0.2\noptions edns0 trust-ad\n"
        );
        // Only a local resolver: the public fallbacks, search and options kept.
        assert_eq!(
            super::sandbox_resolv_conf("nameserver 127.0.0.53\noptions edns0\n"),
            "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            super::sandbox_resolv_conf(""),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }

    #[test]
    fn hosts_name_the_sandbox_at_its_address() {
        let eth = super::EthSpec {
            mac: [2, 0, 0, 0, 0, 1],
            addr: std::net::Ipv4Addr::new(10, 213, 0, 2),
            prefix: 30,
            gateway: None,
            addrs6: Vec::new(),
            gateway6: None,
        };
        let files = super::etc_files(&eth, "box", "nameserver 10.1.1.1\n");
        assert_eq!(files[0].path, "/etc/hosts");
        let hosts = String::from_utf8(files[0].contents.clone()).unwrap();
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
        assert!(hosts.ends_with("\n10.213.0.2\tbox\n"), "{hosts}");
        assert_eq!(files[1].path, "/etc/resolv.conf");
        assert_eq!(files[1].contents, b"nameserver 10.1.1.1\n");
    }

    use super::*;

    #[test]
    fn the_hosts_own_namespace_is_refused() {
        // Only the check: take_over itself must never be tried on the host's namespace.
        let own = std::fs::File::open("/proc/self/ns/net").expect("own namespace");
        match refuse_host_namespace(&own, std::path::Path::new("/proc/self/ns/net")) {
            Err(Error::Invalid(m)) => assert!(m.contains("host's network namespace"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A file that is no namespace of the host's passes.
        let other = tempfile::tempfile().expect("temp file");
        assert!(refuse_host_namespace(&other, std::path::Path::new("x")).is_ok());
    }

    #[test]
    fn the_first_ethernet_interface_and_its_gateway_are_found() {
        let addrs = r#"[
          {"ifindex":1,"ifname":"lo","link_type":"loopback","address":"00:00:00:00:00:00",
           "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
          {"ifindex":2,"ifname":"eth0","link_type":"ether","address":"0a:58:0a:58:00:05",
           "addr_info":[{"family":"inet6","local":"fe80::1","prefixlen":64},
                        {"family":"inet","local":"10.88.0.5","prefixlen":16}]},
          {"ifindex":3,"ifname":"eth1","link_type":"ether","address":"0a:58:0a:59:00:05",
           "addr_info":[{"family":"inet","local":"10.89.0.5","prefixlen":24}]}
        ]"#;
        let e = first_ethernet(addrs).unwrap().unwrap();
        assert_eq!(e.name, "eth0");
        assert_eq!(e.mac, [0x0a, 0x58, 0x0a, 0x58, 0x00, 0x05]);
        assert_eq!((e.addr, e.prefix), (Ipv4Addr::new(10, 88, 0, 5), 16));
        assert_eq!(e.addrs6, [("fe80::1".parse().unwrap(), 64)]);
        let routes = r#"[{"dst":"default","gateway":"10.89.0.1","dev":"eth1"},
                         {"dst":"default","gateway":"10.88.0.1","dev":"eth0"}]"#;
        assert_eq!(
            default_gateway(routes, "eth0"),
            Some(Ipv4Addr::new(10, 88, 0, 1))
        );
        assert_eq!(default_gateway::<Ipv4Addr>("[]", "eth0"), None);
        // Loopback only (a namespace without CNI): nothing to take over.
        let lo = r#"[{"ifindex":1,"ifname":"lo","link_type":"loopback","address":"00:00:00:00:00:00","addr_info":[]}]"#;
        assert_eq!(first_ethernet(lo).unwrap(), None);
        assert!(first_ethernet("not json").is_err());
        assert_eq!(parse_mac("0a:58:0a:58:00"), None);
    }

    #[test]
    fn ipv6_addresses_and_the_ipv6_default_route_are_read() {
        // As a CNI plugin leaves a dual-stack namespace: a unique local address, the
        // kernel's link-local one, one that failed duplicate address detection.
        let addrs = r#"[
          {"ifindex":2,"ifname":"eth0","link_type":"ether","address":"0a:58:0a:58:00:05",
           "addr_info":[{"family":"inet","local":"10.88.0.5","prefixlen":16},
                        {"family":"inet6","local":"fd00:88::5","prefixlen":64,"scope":"global"},
                        {"family":"inet6","local":"fd00:99::5","prefixlen":64,"dadfailed":true},
                        {"family":"inet6","local":"fe80::858:aff:fe58:5","prefixlen":64,"scope":"link"}]}
        ]"#;
        let e = first_ethernet(addrs).unwrap().unwrap();
        assert_eq!(
            e.addrs6,
            [
                ("fd00:88::5".parse().unwrap(), 64),
                ("fe80::858:aff:fe58:5".parse().unwrap(), 64)
            ]
        );
        let routes = r#"[{"dst":"default","gateway":"fe80::1","dev":"eth0","metric":1024}]"#;
        assert_eq!(
            default_gateway::<Ipv6Addr>(routes, "eth0"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(default_gateway::<Ipv6Addr>(routes, "eth1"), None);
        // An IPv4 route has no IPv6 gateway.
        let v4 = r#"[{"dst":"default","gateway":"10.88.0.1","dev":"eth0"}]"#;
        assert_eq!(default_gateway::<Ipv6Addr>(v4, "eth0"), None);
    }

    #[test]
    fn the_links_ipv6_subnet_avoids_the_hosts_addresses() {
        let first = pick_subnet6(0, &[]).unwrap();
        assert_eq!(first, "fd52:7362:6e74::".parse::<Ipv6Addr>().unwrap());
        // A host address in the /64 (any of it) moves the pick to the next one.
        let used = ["fd52:7362:6e74:0:abcd::9".parse().unwrap()];
        assert_eq!(
            pick_subnet6(0, &used).unwrap(),
            "fd52:7362:6e74:1::".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            in_subnet6(first, 2),
            "fd52:7362:6e74::2".parse::<Ipv6Addr>().unwrap()
        );
        // Different sandboxes start from different subnets.
        assert_ne!(pick_subnet6(1, &[]), pick_subnet6(2, &[]));
    }
}
