//! `--network=host` (gVisor's hostinet): the application's `AF_INET`/`AF_INET6` sockets
//! are host sockets the Sentry makes and drives on its behalf.
//!
//! Every call is the Sentry's, on its own non-blocking host descriptor, with arguments
//! it copied out of application memory and checked: socket types and protocols as the
//! Sentry's own stack accepts them, addresses at most `sockaddr_storage` long, and only
//! socket options whose values are plain data (an allowlist; `SO_ATTACH_FILTER` and the
//! like, whose values hold pointers, are `ENOPROTOOPT`). Blocking is the Sentry's: a
//! call that would block waits on the socket's [`WaitQueue`], which two notifier threads
//! (`sentry-hostnet`, edge-triggered host epoll instances per kernel: one for the
//! receiving side, one for the sending side) ring when the host reports the descriptor
//! ready; so signals interrupt waits as for any other file,
//! and the application's poll, select and epoll see host readiness through the same
//! queue. `SO_RCVTIMEO`/`SO_SNDTIMEO` and `O_NONBLOCK` are kept in the Sentry.

use std::any::Any;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use linux_abi::Errno;
use parking_lot::Mutex;

use super::addr::{AF_INET, AF_INET6};
use super::socket::{MSG_DONTWAIT, MSG_PEEK, MSG_TRUNC, MSG_WAITALL, Received, SocketOps};
use super::{IPPROTO_TCP, IPPROTO_UDP, SOCK_DGRAM, SOCK_STREAM, Stack};
use crate::fs::{FileOps, UserMem};
use crate::host::net as host;
use crate::waiter::{Events, WaitQueue, block_on, events};

/// The host network of one kernel: the epoll instances its notifier threads wait on and
/// the wait queue of every host socket, by key.
///
/// Each direction has an instance of its own because a host epoll reports a
/// descriptor's whole readiness on any wake-up it takes: with one instance watching
/// both, the send side's wake-ups (an ACK freeing buffer space) would come out as new
/// `EPOLLIN` edges of a socket whose data was already reported, and an application's
/// edge-triggered `EPOLLIN` would fire again for old data. Linux's own epoll hears only
/// wake-ups whose kind it asked for; so does each instance here.
#[derive(Debug)]
pub struct HostNet {
    /// The receiving side's instance, then the sending side's.
    epolls: [Arc<host::Epoll>; 2],
    queues: Mutex<HashMap<u64, Weak<WaitQueue>>>,
    next: AtomicU64,
}

/// What each of [`HostNet`]'s instances watches (edge-triggered; errors and hang-ups
/// come with both).
const WATCHED: [u32; 2] = [
    (libc::EPOLLIN | libc::EPOLLPRI | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
    (libc::EPOLLOUT | libc::EPOLLET) as u32,
];

impl HostNet {
    /// Makes the epoll instances and starts the notifier threads.
    pub fn new() -> Result<Arc<HostNet>, Errno> {
        let epolls = [Arc::new(host::Epoll::new()?), Arc::new(host::Epoll::new()?)];
        let net = Arc::new(HostNet {
            epolls: epolls.clone(),
            queues: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        });
        for (epoll, side) in epolls.into_iter().zip(["in", "out"]) {
            let weak = Arc::downgrade(&net);
            std::thread::Builder::new()
                .name(format!("sentry-hostnet-{side}"))
                .spawn(move || notifier(&epoll, &weak))
                .map_err(|e| {
                    tracing::error!("cannot start the host network notifier: {e}");
                    Errno::EAGAIN
                })?;
        }
        Ok(net)
    }

    fn watch(&self, fd: &OwnedFd, queue: &Arc<WaitQueue>) -> Result<u64, Errno> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.queues.lock().insert(key, Arc::downgrade(queue));
        for (i, (epoll, ev)) in self.epolls.iter().zip(WATCHED).enumerate() {
            if let Err(e) = epoll.add(fd.as_fd(), ev, key) {
                for done in &self.epolls[..i] {
                    done.del(fd.as_fd());
                }
                self.queues.lock().remove(&key);
                return Err(e);
            }
        }
        Ok(key)
    }

    fn unwatch(&self, fd: &OwnedFd, key: u64) {
        for epoll in &self.epolls {
            epoll.del(fd.as_fd());
        }
        self.queues.lock().remove(&key);
    }
}

/// A notifier thread: tells each host socket's queue what its instance reported. Ends
/// within a second of the kernel's [`HostNet`] being dropped.
fn notifier(epoll: &host::Epoll, net: &Weak<HostNet>) {
    loop {
        let evs = epoll.wait(1000);
        let Some(n) = net.upgrade() else { return };
        let ready: Vec<(Arc<WaitQueue>, u32)> = {
            let q = n.queues.lock();
            evs.iter()
                .filter_map(|(k, e)| q.get(k).and_then(Weak::upgrade).map(|q| (q, *e)))
                .collect()
        };
        drop(n);
        for (q, e) in ready {
            q.notify(e);
        }
    }
}

/// `SOL_SOCKET`, `SOL_IP`, `SOL_IPV6`.
const SOL_SOCKET: i32 = 1;
const SOL_IP: i32 = 0;
const SOL_IPV6: i32 = 41;

/// The options passed to the host, with the largest value each has: all plain data.
fn host_option(level: i32, name: i32) -> Option<usize> {
    Some(match (level, name) {
        // SO_REUSEADDR, TYPE, ERROR, DONTROUTE, BROADCAST, SNDBUF, RCVBUF, KEEPALIVE,
        // OOBINLINE, REUSEPORT, RCVLOWAT, ACCEPTCONN, PROTOCOL, DOMAIN.
        (SOL_SOCKET, 2..=10 | 15 | 18 | 30 | 38 | 39) => 4,
        (SOL_SOCKET, 13) => 8, // SO_LINGER
        // TCP_NODELAY .. TCP_WINDOW_CLAMP, TCP_QUICKACK, TCP_USER_TIMEOUT,
        // TCP_NOTSENT_LOWAT.
        (IPPROTO_TCP, 1..=10 | 12 | 18 | 25) => 4,
        (IPPROTO_TCP, 11) => 256, // TCP_INFO
        (IPPROTO_TCP, 13) => 16,  // TCP_CONGESTION
        // IP_TOS, IP_TTL, IP_MTU_DISCOVER, IP_MTU, IP_MULTICAST_TTL/LOOP.
        (SOL_IP, 1 | 2 | 10 | 14 | 33 | 34) => 4,
        // IP_MULTICAST_IF, IP_ADD/DROP_MEMBERSHIP (ip_mreqn).
        (SOL_IP, 32 | 35 | 36) => 12,
        // IPV6_UNICAST_HOPS, MULTICAST_IF/HOPS/LOOP, V6ONLY, TCLASS.
        (SOL_IPV6, 16..=19 | 26 | 67) => 4,
        (SOL_IPV6, 20 | 21) => 20, // IPV6_ADD/DROP_MEMBERSHIP (ipv6_mreq)
        (IPPROTO_UDP, 1) => 4,     // UDP_CORK
        _ => return None,
    })
}

/// `send` flags passed to the host: `MSG_OOB`, `MSG_DONTROUTE`, `MSG_EOR`,
/// `MSG_CONFIRM`, `MSG_MORE` (waiting and `SIGPIPE` are the Sentry's).
const SEND_FLAGS: u32 = 0x1 | 0x4 | 0x80 | 0x800 | 0x8000;
/// `recv` flags passed to the host: `MSG_OOB`, `MSG_PEEK`, `MSG_TRUNC`.
const RECV_FLAGS: u32 = 0x1 | MSG_PEEK | MSG_TRUNC;
/// Most bytes one stream `recv` asks the host for (a shorter read is always allowed).
const STREAM_CHUNK: usize = 1 << 20;
/// Longest datagram (IPv4's 65535 less headers; IPv6 jumbograms are not routed here).
const DGRAM_MAX: usize = 65536;
/// The `poll` events asked of the host.
const POLL_ALL: i16 = libc::POLLIN
    | libc::POLLPRI
    | libc::POLLOUT
    | libc::POLLRDNORM
    | libc::POLLRDBAND
    | libc::POLLWRNORM
    | libc::POLLWRBAND
    | libc::POLLRDHUP;

/// An application socket that is a host socket.
#[derive(Debug)]
pub struct HostSocket {
    net: Arc<HostNet>,
    /// The Sentry's own stack, for the interface ioctls.
    stack: Arc<Stack>,
    fd: OwnedFd,
    key: u64,
    family: i32,
    ty: i32,
    queue: Arc<WaitQueue>,
    nonblock: AtomicBool,
    /// `SO_RCVTIMEO`, `SO_SNDTIMEO`.
    timeouts: Mutex<(Option<Duration>, Option<Duration>)>,
}

impl HostSocket {
    /// `socket(family, ty, protocol)` on the host: `ty` without flags.
    pub fn new(
        net: &Arc<HostNet>,
        stack: &Arc<Stack>,
        family: i32,
        ty: i32,
        protocol: i32,
    ) -> Result<Arc<HostSocket>, Errno> {
        if family != AF_INET && family != AF_INET6 {
            return Err(Errno::EAFNOSUPPORT);
        }
        match (ty, protocol) {
            (SOCK_STREAM, 0 | IPPROTO_TCP) | (SOCK_DGRAM, 0 | IPPROTO_UDP) => {}
            (SOCK_STREAM | SOCK_DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
            // SOCK_RAW needs --net-raw; SOCK_SEQPACKET and others do not exist for IP.
            (3, _) => return Err(Errno::EPERM),
            (1..=6 | 10, _) => return Err(Errno::ESOCKTNOSUPPORT),
            _ => return Err(Errno::EINVAL),
        }
        let fd = host::socket(family, ty, protocol)?;
        Self::wrap(net, stack, fd, family, ty)
    }

    fn wrap(
        net: &Arc<HostNet>,
        stack: &Arc<Stack>,
        fd: OwnedFd,
        family: i32,
        ty: i32,
    ) -> Result<Arc<HostSocket>, Errno> {
        let queue = Arc::new(WaitQueue::new());
        let key = net.watch(&fd, &queue)?;
        Ok(Arc::new(HostSocket {
            net: net.clone(),
            stack: stack.clone(),
            fd,
            key,
            family,
            ty,
            queue,
            nonblock: AtomicBool::new(false),
            timeouts: Mutex::new((None, None)),
        }))
    }

    /// Sets `O_NONBLOCK`.
    pub fn set_nonblock(&self, nb: bool) {
        self.nonblock.store(nb, Ordering::Relaxed);
    }

    fn nonblocking(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.nonblock.load(Ordering::Relaxed)
    }

    fn deadline(&self, receive: bool) -> Option<Instant> {
        let t = self.timeouts.lock();
        let d = if receive { t.0 } else { t.1 };
        d.and_then(|d| Instant::now().checked_add(d))
    }

    /// Runs `op` (a non-blocking host call) until it stops saying `EAGAIN`, waiting for
    /// `mask` between tries unless `nonblock`.
    fn wait<T>(
        &self,
        nonblock: bool,
        receive: bool,
        mask: Events,
        op: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if nonblock {
            let mut op = op;
            return op();
        }
        let deadline = self.deadline(receive);
        block_on(&[(&self.queue, mask | events::ALWAYS)], deadline, op).map_err(|e| {
            if e == Errno::ETIMEDOUT {
                Errno::EAGAIN
            } else {
                e
            }
        })
    }

    /// `accept`: the new socket and its peer's address.
    pub fn accept(&self, nonblock: bool) -> Result<(Arc<HostSocket>, Vec<u8>), Errno> {
        if self.ty != SOCK_STREAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let nb = nonblock || self.nonblocking(0);
        let (fd, peer) = self.wait(nb, true, events::POLLIN, || host::accept(self.fd.as_fd()))?;
        let s = Self::wrap(&self.net, &self.stack, fd, self.family, self.ty)?;
        Ok((s, peer))
    }

    fn so_error(&self) -> Result<(), Errno> {
        let v = host::getsockopt(self.fd.as_fd(), SOL_SOCKET, 4, 4)?;
        let e = i32::from_ne_bytes(v.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
        if e == 0 { Ok(()) } else { Err(Errno::new(e)) }
    }

    fn ioctl_int(&self, cmd: u32) -> Result<i32, Errno> {
        crate::host::ioctl_read_int(self.fd.as_raw_fd(), cmd)
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        self.net.unwatch(&self.fd, self.key);
    }
}

fn timeval(d: Option<Duration>) -> Vec<u8> {
    let d = d.unwrap_or_default();
    [
        (d.as_secs() as i64).to_ne_bytes(),
        i64::from(d.subsec_micros()).to_ne_bytes(),
    ]
    .concat()
}

fn parse_timeval(val: &[u8]) -> Result<Option<Duration>, Errno> {
    if val.len() < 16 {
        return Err(Errno::EINVAL);
    }
    let s = i64::from_ne_bytes(val[..8].try_into().unwrap_or_default());
    let us = i64::from_ne_bytes(val[8..16].try_into().unwrap_or_default());
    if !(0..1_000_000).contains(&us) {
        return Err(Errno::EDOM);
    }
    Ok(if s < 0 {
        Some(Duration::from_nanos(1))
    } else {
        let d = Duration::new(s as u64, us as u32 * 1000);
        (!d.is_zero()).then_some(d)
    })
}

impl SocketOps for HostSocket {
    fn bind(&self, raw: &[u8]) -> Result<(), Errno> {
        host::bind(self.fd.as_fd(), raw)
    }

    fn listen(&self, backlog: i32) -> Result<(), Errno> {
        host::listen(self.fd.as_fd(), backlog)
    }

    fn connect(&self, raw: &[u8]) -> Result<(), Errno> {
        match host::connect(self.fd.as_fd(), raw) {
            Err(Errno::EINPROGRESS) if self.ty == SOCK_STREAM => {}
            r => return r,
        }
        if self.nonblocking(0) {
            return Err(Errno::EINPROGRESS);
        }
        let deadline = self.deadline(false);
        block_on(&[(&self.queue, events::ALL)], deadline, || {
            let ev = host::poll_now(self.fd.as_fd(), POLL_ALL)?;
            if ev & (events::POLLOUT | events::POLLERR | events::POLLHUP) == 0 {
                return Err(Errno::EAGAIN);
            }
            self.so_error()
        })
        .map_err(|e| {
            if e == Errno::ETIMEDOUT {
                Errno::EINPROGRESS
            } else {
                e
            }
        })
    }

    fn send(&self, data: &[u8], to: Option<&[u8]>, flags: u32) -> Result<usize, Errno> {
        let nb = self.nonblocking(flags);
        let hf = (flags & SEND_FLAGS) as i32;
        if self.ty == SOCK_DGRAM {
            return self.wait(nb, false, events::POLLOUT, || {
                host::send(self.fd.as_fd(), data, hf, to)
            });
        }
        let mut sent = 0;
        loop {
            let r = self.wait(nb, false, events::POLLOUT, || {
                host::send(self.fd.as_fd(), &data[sent..], hf, None)
            });
            match r {
                Ok(n) => {
                    sent += n;
                    if sent >= data.len() || nb {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    fn recv(&self, len: usize, flags: u32) -> Result<Received, Errno> {
        let nb = self.nonblocking(flags);
        let hf = flags & RECV_FLAGS;
        if self.ty == SOCK_DGRAM {
            let mut buf = vec![0u8; len.min(DGRAM_MAX)];
            let (n, from) = self.wait(nb, true, events::POLLIN, || {
                host::recv(self.fd.as_fd(), &mut buf, (hf | MSG_TRUNC) as i32)
            })?;
            buf.truncate(n.min(buf.len()));
            return Ok(Received {
                data: buf,
                full_len: n,
                control: Vec::new(),
                from: Some(from),
            });
        }
        let mut buf = vec![0u8; len.min(STREAM_CHUNK)];
        let want = buf.len();
        let waitall = flags & MSG_WAITALL != 0 && flags & MSG_PEEK == 0;
        let mut got = 0;
        loop {
            let r = self.wait(nb, true, events::POLLIN, || {
                host::recv(self.fd.as_fd(), &mut buf[got..], hf as i32)
            });
            match r {
                Ok((0, _)) => break,
                Ok((n, _)) => {
                    got += n.min(want - got);
                    if !waitall || got >= want || nb {
                        break;
                    }
                }
                Err(_) if got > 0 => break,
                Err(e) => return Err(e),
            }
        }
        buf.truncate(got);
        Ok(Received {
            full_len: got,
            data: buf,
            control: Vec::new(),
            from: None,
        })
    }

    fn shutdown(&self, how: i32) -> Result<(), Errno> {
        host::shutdown(self.fd.as_fd(), how)
    }

    fn name(&self) -> Vec<u8> {
        host::name(self.fd.as_fd(), false)
            .unwrap_or_else(|_| super::addr::format(self.family, super::addr::any(self.family, 0)))
    }

    fn peer_name(&self) -> Result<Vec<u8>, Errno> {
        host::name(self.fd.as_fd(), true)
    }

    fn getsockopt(&self, level: i32, name: i32) -> Result<Vec<u8>, Errno> {
        if level == SOL_SOCKET && (name == 20 || name == 21) {
            let t = self.timeouts.lock();
            return Ok(timeval(if name == 20 { t.0 } else { t.1 }));
        }
        let cap = host_option(level, name).ok_or(Errno::ENOPROTOOPT)?;
        host::getsockopt(self.fd.as_fd(), level, name, cap)
    }

    fn setsockopt(&self, level: i32, name: i32, val: &[u8]) -> Result<(), Errno> {
        if level == SOL_SOCKET && (name == 20 || name == 21) {
            let d = parse_timeval(val)?;
            let mut t = self.timeouts.lock();
            if name == 20 {
                t.0 = d;
            } else {
                t.1 = d;
            }
            return Ok(());
        }
        host_option(level, name).ok_or(Errno::ENOPROTOOPT)?;
        host::setsockopt(self.fd.as_fd(), level, name, val)
    }
}

impl FileOps for HostSocket {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let r = SocketOps::recv(self, buf.len(), 0)?;
        let n = r.data.len().min(buf.len());
        buf[..n].copy_from_slice(&r.data[..n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        SocketOps::send(self, buf, None, 0)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readable(&self) -> Option<u64> {
        self.ioctl_int(FIONREAD).ok().map(|n| n.max(0) as u64)
    }

    fn readiness(&self, mask: Events) -> Events {
        host::poll_now(self.fd.as_fd(), POLL_ALL).unwrap_or(events::POLLERR)
            & (mask | events::ALWAYS)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.set_nonblock(flags & linux_abi::flags::open::O_NONBLOCK != 0);
        Ok(())
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        const SIOCOUTQ: u32 = 0x5411;
        const SIOCOUTQNSD: u32 = 0x894B;
        match cmd {
            FIONREAD | SIOCOUTQ | SIOCOUTQNSD => {
                let n = self.ioctl_int(cmd)?;
                mem.copy_out(arg, &n.to_ne_bytes())?;
                Ok(0)
            }
            _ => super::ifreq::ioctl(&self.stack, cmd, arg, mem),
        }
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

/// `FIONREAD` (`SIOCINQ`).
const FIONREAD: u32 = 0x541B;
