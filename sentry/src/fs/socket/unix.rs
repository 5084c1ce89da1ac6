//! The Unix socket: connection state, bind/listen/connect/accept, send and receive,
//! options.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use linux_abi::Errno;

use super::*;
use crate::fs::FileOps;
use crate::fs::file::OpenFile;

use crate::waiter::{EntryId, Events, FnNotify, WaitQueue, block_on, events};

#[derive(Debug, Default)]
enum Conn {
    #[default]
    Unconnected,
    Listening {
        backlog: usize,
        pending: VecDeque<Arc<UnixSocket>>,
    },
    Connected {
        tx: Arc<Buffer>,
        /// The forwarder of `tx.space` into this socket's queue.
        fwd: Option<EntryId>,
        peer_name: Option<Vec<u8>>,
    },
}

#[derive(Debug)]
struct Inner {
    name: Option<Vec<u8>>,
    key: Option<Key>,
    conn: Conn,
    /// Datagram default destination (`connect` on a `SOCK_DGRAM`).
    dgram_peer: Option<Weak<UnixSocket>>,
    shut_rd: bool,
    shut_wr: bool,
    passcred: bool,
    peer_cred: Option<Ucred>,
    sndbuf: usize,
    reuseaddr: bool,
    linger: (i32, i32),
    error: Option<Errno>,
    /// `SO_RCVTIMEO` / `SO_SNDTIMEO` (`None`: wait forever).
    rcvtimeo: Option<Duration>,
    sndtimeo: Option<Duration>,
}

/// A Unix domain socket.
#[derive(Debug)]
pub struct UnixSocket {
    ty: i32,
    me: Weak<UnixSocket>,
    queue: Arc<WaitQueue>,
    rx: Arc<Buffer>,
    inner: Mutex<Inner>,
    nonblock: AtomicBool,
    /// The creator's credentials (`SO_PEERCRED` of the other end).
    cred: Ucred,
    /// Where `bind` registers names (the kernel's).
    names: Arc<SocketNames>,
}

/// What [`UnixSocket::recv`] got.
#[derive(Debug, Default)]
pub struct Received {
    /// The bytes copied (at most the buffer length).
    pub data: Vec<u8>,
    /// The message's full length (`MSG_TRUNC` on datagrams).
    pub full_len: usize,
    /// Passed descriptions.
    pub rights: Vec<Arc<OpenFile>>,
    /// The sender's credentials (when `SO_PASSCRED` is set).
    pub creds: Option<Ucred>,
    /// The sender's name (datagrams).
    pub from: Option<Vec<u8>>,
}

impl UnixSocket {
    /// A new unconnected socket of type `ty` made by a process with credentials `cred`.
    pub fn new(ty: i32, cred: Ucred, names: &Arc<SocketNames>) -> Result<Arc<UnixSocket>, Errno> {
        if !matches!(ty, SOCK_STREAM | SOCK_DGRAM | SOCK_SEQPACKET) {
            return Err(Errno::ESOCKTNOSUPPORT);
        }
        let queue = Arc::new(WaitQueue::new());
        let rx = Buffer::new(&queue);
        Ok(Arc::new_cyclic(|me| UnixSocket {
            ty,
            me: me.clone(),
            queue,
            rx,
            inner: Mutex::new(Inner {
                name: None,
                key: None,
                conn: Conn::Unconnected,
                dgram_peer: None,
                shut_rd: false,
                shut_wr: false,
                passcred: false,
                peer_cred: None,
                sndbuf: DEFAULT_BUF,
                reuseaddr: false,
                linger: (0, 0),
                error: None,
                rcvtimeo: None,
                sndtimeo: None,
            }),
            nonblock: AtomicBool::new(false),
            cred,
            names: names.clone(),
        }))
    }

    /// `socketpair`: two connected sockets.
    pub fn pair(
        ty: i32,
        cred: Ucred,
        names: &Arc<SocketNames>,
    ) -> Result<(Arc<UnixSocket>, Arc<UnixSocket>), Errno> {
        let a = UnixSocket::new(ty, cred, names)?;
        let b = UnixSocket::new(ty, cred, names)?;
        if ty == SOCK_DGRAM {
            a.inner.lock().dgram_peer = Some(Arc::downgrade(&b));
            b.inner.lock().dgram_peer = Some(Arc::downgrade(&a));
            a.inner.lock().peer_cred = Some(cred);
            b.inner.lock().peer_cred = Some(cred);
        } else {
            link(&a, &b, None, None);
        }
        Ok((a, b))
    }

    /// The socket type.
    pub fn sock_type(&self) -> i32 {
        self.ty
    }

    /// Sets `O_NONBLOCK`.
    pub fn set_nonblock(&self, nb: bool) {
        self.nonblock.store(nb, Ordering::Relaxed);
    }

    fn nonblocking(&self, flags: u32) -> bool {
        flags & MSG_DONTWAIT != 0 || self.nonblock.load(Ordering::Relaxed)
    }

    /// The bound name (`getsockname`; `None` when unbound).
    pub fn name(&self) -> Option<Vec<u8>> {
        self.inner.lock().name.clone()
    }

    /// The peer's name (`getpeername`): `ENOTCONN` when not connected.
    pub fn peer_name(&self) -> Result<Option<Vec<u8>>, Errno> {
        let i = self.inner.lock();
        match &i.conn {
            Conn::Connected { peer_name, .. } => Ok(peer_name.clone()),
            _ => match i.dgram_peer.as_ref().and_then(Weak::upgrade) {
                Some(p) => Ok(p.name()),
                None => Err(Errno::ENOTCONN),
            },
        }
    }

    /// `bind` to `name` (the `sun_path` bytes) under `key`.
    pub fn bind(&self, name: Vec<u8>, key: Key) -> Result<(), Errno> {
        let mut i = self.inner.lock();
        if i.key.is_some() {
            return Err(Errno::EINVAL);
        }
        let mut r = self.names.bound.lock();
        r.retain(|_, w| w.strong_count() > 0);
        if r.contains_key(&key) {
            return Err(Errno::EADDRINUSE);
        }
        r.insert(key.clone(), self.me.clone());
        i.name = Some(name);
        i.key = Some(key);
        Ok(())
    }

    /// Binds to a free abstract name of five hex digits, as Linux's autobind (`bind`
    /// with only the family, a datagram send with `SO_PASSCRED`): `ENOSPC` once every
    /// such name is taken, `EINVAL` if already bound.
    pub fn autobind(&self) -> Result<(), Errno> {
        const NAMES: u32 = 1 << 20;
        for _ in 0..NAMES {
            let n = self.names.next_auto.fetch_add(1, Ordering::Relaxed) % NAMES;
            let name = format!("{n:05x}").into_bytes();
            let mut stored = vec![0u8];
            stored.extend_from_slice(&name);
            match self.bind(stored, Key::Abstract(name)) {
                Err(Errno::EADDRINUSE) => continue,
                r => return r,
            }
        }
        Err(Errno::ENOSPC)
    }

    /// Whether the socket is bound.
    pub fn is_bound(&self) -> bool {
        self.inner.lock().key.is_some()
    }

    /// `listen(backlog)`.
    pub fn listen(&self, backlog: i32) -> Result<(), Errno> {
        if self.ty == SOCK_DGRAM {
            return Err(Errno::EOPNOTSUPP);
        }
        let mut i = self.inner.lock();
        if i.key.is_none() {
            return Err(Errno::EINVAL);
        }
        let backlog = backlog.clamp(1, 4096) as usize;
        match &mut i.conn {
            Conn::Unconnected => {
                i.conn = Conn::Listening {
                    backlog,
                    pending: VecDeque::new(),
                }
            }
            Conn::Listening { backlog: b, .. } => *b = backlog,
            Conn::Connected { .. } => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// Whether the socket listens (`SO_ACCEPTCONN`).
    pub fn is_listening(&self) -> bool {
        matches!(self.inner.lock().conn, Conn::Listening { .. })
    }

    /// `connect` to `target` (found by name). Streams and seqpackets queue a new server
    /// socket on the listener; datagram sockets just remember the peer.
    pub fn connect(&self, target: &Arc<UnixSocket>, flags_nonblock: bool) -> Result<(), Errno> {
        if target.ty != self.ty {
            return Err(Errno::EPROTOTYPE);
        }
        if self.ty == SOCK_DGRAM {
            let mut i = self.inner.lock();
            i.dgram_peer = Some(Arc::downgrade(target));
            i.peer_cred = Some(target.cred);
            return Ok(());
        }
        if matches!(self.inner.lock().conn, Conn::Connected { .. }) {
            return Err(Errno::EISCONN);
        }
        if matches!(self.inner.lock().conn, Conn::Listening { .. }) {
            return Err(Errno::EINVAL);
        }
        let nonblock = flags_nonblock || self.nonblock.load(Ordering::Relaxed);
        let me = self.me.upgrade().ok_or(Errno::EBADF)?;
        let mut op = || {
            let mut ti = target.inner.lock();
            let listener_name = ti.name.clone();
            let Conn::Listening { backlog, pending } = &mut ti.conn else {
                return Err(Errno::ECONNREFUSED);
            };
            if pending.len() >= *backlog {
                return Err(Errno::EAGAIN);
            }
            let server = UnixSocket::new(self.ty, target.cred, &self.names)?;
            // The accepted socket has the listener's name; options are not inherited.
            server.inner.lock().name = listener_name.clone();
            link(&me, &server, listener_name, self.name());
            pending.push_back(server);
            Ok(())
        };
        if nonblock {
            op()?;
        } else {
            block_on(&[(&target.queue, events::ALL)], None, &mut op)?;
        }
        target.queue.notify(events::POLLIN | events::POLLRDNORM);
        Ok(())
    }

    /// `accept`: the next connection on the backlog.
    pub fn accept(&self, nonblock: bool) -> Result<Arc<UnixSocket>, Errno> {
        let nonblock = nonblock || self.nonblock.load(Ordering::Relaxed);
        let op = || {
            let mut i = self.inner.lock();
            let Conn::Listening { pending, .. } = &mut i.conn else {
                return Err(Errno::EINVAL);
            };
            pending.pop_front().ok_or(Errno::EAGAIN)
        };
        let s = if nonblock {
            op()?
        } else {
            block_on(&[(&self.queue, events::POLLIN)], self.deadline(true), op)
                .map_err(timeout_is_eagain)?
        };
        // Room freed on the backlog for blocked connectors.
        self.queue.notify(events::POLLOUT);
        Ok(s)
    }

    /// The peer's credentials (`SO_PEERCRED`).
    pub fn peer_cred(&self) -> Option<Ucred> {
        self.inner.lock().peer_cred
    }

    fn tx(&self) -> Result<Arc<Buffer>, Errno> {
        let i = self.inner.lock();
        if i.shut_wr {
            return Err(Errno::EPIPE);
        }
        match &i.conn {
            Conn::Connected { tx, .. } => Ok(tx.clone()),
            _ => Err(Errno::ENOTCONN),
        }
    }

    /// Sends `data` (with `rights` and `creds`) to the peer, or to `to` for datagrams.
    /// Streams may send part of a large buffer; other types send whole messages.
    pub fn send(
        &self,
        data: &[u8],
        rights: Vec<Arc<OpenFile>>,
        creds: Ucred,
        to: Option<&Arc<UnixSocket>>,
        flags: u32,
    ) -> Result<usize, Errno> {
        let nonblock = self.nonblocking(flags);
        if self.ty == SOCK_DGRAM {
            return self.send_dgram(data, rights, creds, to, nonblock);
        }
        if to.is_some() {
            let connected = matches!(self.inner.lock().conn, Conn::Connected { .. });
            return Err(if connected {
                Errno::EISCONN
            } else {
                Errno::EOPNOTSUPP
            });
        }
        let tx = self.tx()?;
        if data.is_empty() && self.ty == SOCK_STREAM {
            return Ok(0);
        }
        if self.ty == SOCK_SEQPACKET && data.len() > self.inner.lock().sndbuf.max(DEFAULT_BUF) {
            return Err(Errno::EMSGSIZE);
        }
        let mut done = 0;
        let mut rights = Some(rights);
        let stream = self.ty == SOCK_STREAM;
        let mut op = || {
            let mut s = tx.state.lock();
            if !s.reader {
                return Err(Errno::EPIPE);
            }
            let left = data.len() - done;
            let room = s.capacity.saturating_sub(s.bytes);
            let n = if stream {
                // Like a pipe: take what fits, at least something once there is room.
                if room == 0 && s.bytes > 0 {
                    return Err(Errno::EAGAIN);
                }
                left.min(room.max(1))
            } else {
                if s.bytes > 0 && s.bytes + left > s.capacity {
                    return Err(Errno::EAGAIN);
                }
                left
            };
            s.msgs.push_back(Message {
                data: data[done..done + n].to_vec(),
                rights: rights.take().unwrap_or_default(),
                creds,
                from: None,
            });
            s.bytes += n;
            done += n;
            drop(s);
            tx.tell_reader(events::POLLIN | events::POLLRDNORM);
            if done == data.len() {
                Ok(done)
            } else {
                Err(Errno::EAGAIN)
            }
        };
        let r = if nonblock {
            op()
        } else {
            block_on(&[(&tx.space, events::ALL)], self.deadline(false), &mut op)
                .map_err(timeout_is_eagain)
        };
        match r {
            Err(_) if done > 0 => Ok(done),
            r => r,
        }
    }

    fn send_dgram(
        &self,
        data: &[u8],
        rights: Vec<Arc<OpenFile>>,
        creds: Ucred,
        to: Option<&Arc<UnixSocket>>,
        nonblock: bool,
    ) -> Result<usize, Errno> {
        let target = match to {
            Some(t) => t.clone(),
            None => {
                let i = self.inner.lock();
                if i.shut_wr {
                    return Err(Errno::EPIPE);
                }
                match &i.dgram_peer {
                    Some(w) => w.upgrade().ok_or(Errno::ECONNREFUSED)?,
                    None => return Err(Errno::ENOTCONN),
                }
            }
        };
        if target.ty != SOCK_DGRAM {
            return Err(Errno::EPROTOTYPE);
        }
        if let Some(p) = target.inner.lock().dgram_peer.as_ref()
            && !std::ptr::eq(p.as_ptr(), self.me.as_ptr())
            && p.strong_count() > 0
        {
            // A connected datagram socket only takes datagrams from its peer.
            return Err(Errno::EPERM);
        }
        if data.len() > self.inner.lock().sndbuf.max(DEFAULT_BUF) {
            return Err(Errno::EMSGSIZE);
        }
        let from = self.name();
        let buf = target.rx.clone();
        let mut rights = Some(rights);
        let mut op = || {
            let mut s = buf.state.lock();
            if !s.reader {
                return Err(Errno::ECONNREFUSED);
            }
            if s.bytes > 0 && s.bytes + data.len() > s.capacity {
                return Err(Errno::EAGAIN);
            }
            s.msgs.push_back(Message {
                data: data.to_vec(),
                rights: rights.take().unwrap_or_default(),
                creds,
                from: from.clone(),
            });
            s.bytes += data.len();
            Ok(data.len())
        };
        let n = if nonblock {
            op()?
        } else {
            block_on(&[(&buf.space, events::ALL)], self.deadline(false), &mut op)
                .map_err(timeout_is_eagain)?
        };
        buf.tell_reader(events::POLLIN | events::POLLRDNORM);
        Ok(n)
    }

    /// Receives up to `len` bytes. Datagram and seqpacket reads take one message (the rest
    /// of a longer one is lost, `full_len` tells its size); stream reads gather bytes from
    /// consecutive messages but stop before one carrying descriptions.
    pub fn recv(&self, len: usize, flags: u32) -> Result<Received, Errno> {
        let nonblock = self.nonblocking(flags);
        let peek = flags & MSG_PEEK != 0;
        let waitall = flags & MSG_WAITALL != 0 && self.ty == SOCK_STREAM && !peek;
        let mut out = Received::default();
        let passcred = self.inner.lock().passcred;
        let stream = self.ty == SOCK_STREAM;
        let mut op = || {
            let shut_rd = self.inner.lock().shut_rd;
            let mut s = self.rx.state.lock();
            if s.msgs.is_empty() {
                let eof = shut_rd || (self.ty != SOCK_DGRAM && s.had_writer && s.writers == 0);
                if eof || !out.data.is_empty() && !waitall {
                    return Ok(());
                }
                if self.ty != SOCK_DGRAM && !s.had_writer {
                    return Err(Errno::ENOTCONN);
                }
                return Err(Errno::EAGAIN);
            }
            if !stream {
                let m = if peek {
                    s.msgs.front().map(|m| Message {
                        data: m.data.clone(),
                        rights: m.rights.clone(),
                        creds: m.creds,
                        from: m.from.clone(),
                    })
                } else {
                    s.msgs.pop_front()
                };
                let Some(m) = m else {
                    return Err(Errno::EAGAIN);
                };
                if !peek {
                    s.bytes -= m.data.len();
                }
                out.full_len = m.data.len();
                out.data = m.data[..m.data.len().min(len)].to_vec();
                out.rights = m.rights;
                out.creds = passcred.then_some(m.creds);
                out.from = m.from;
                return Ok(());
            }
            // Stream: gather.
            let mut i = 0;
            while out.data.len() < len && i < s.msgs.len() {
                let first = out.data.is_empty() && out.rights.is_empty();
                let m = &s.msgs[i];
                if !first && !m.rights.is_empty() {
                    break;
                }
                let take = (len - out.data.len()).min(m.data.len());
                out.data.extend_from_slice(&m.data[..take]);
                if first {
                    out.creds = passcred.then_some(m.creds);
                }
                if peek {
                    if first {
                        out.rights = m.rights.clone();
                    }
                    i += 1;
                    continue;
                }
                let m = &mut s.msgs[i];
                if first {
                    out.rights = std::mem::take(&mut m.rights);
                }
                m.data.drain(..take);
                if m.data.is_empty() {
                    s.msgs.pop_front();
                } else {
                    i += 1;
                }
                s.bytes -= take;
            }
            out.full_len = out.data.len();
            if waitall && out.data.len() < len {
                drop(s);
                self.rx.space.notify(events::POLLOUT | events::POLLWRNORM);
                return Err(Errno::EAGAIN);
            }
            Ok(())
        };
        let r = if nonblock {
            op()
        } else {
            block_on(
                &[(&self.queue, events::POLLIN | events::POLLHUP)],
                self.deadline(true),
                &mut op,
            )
            .map_err(timeout_is_eagain)
        };
        if !peek {
            self.rx.space.notify(events::POLLOUT | events::POLLWRNORM);
        }
        match r {
            Ok(()) => Ok(out),
            Err(_) if !out.data.is_empty() => Ok(out),
            Err(e) => Err(e),
        }
    }

    /// `shutdown(how)`.
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !matches!(how, SHUT_RD | SHUT_WR | SHUT_RDWR) {
            return Err(Errno::EINVAL);
        }
        let tx = {
            let mut i = self.inner.lock();
            let connected = matches!(i.conn, Conn::Connected { .. }) || i.dgram_peer.is_some();
            if !connected {
                return Err(Errno::ENOTCONN);
            }
            let mut tx = None;
            if how != SHUT_WR {
                i.shut_rd = true;
            }
            if how != SHUT_RD && !i.shut_wr {
                i.shut_wr = true;
                if let Conn::Connected { tx: t, .. } = &i.conn {
                    tx = Some(t.clone());
                }
            }
            tx
        };
        if let Some(tx) = tx {
            tx.close_writer();
        }
        if how != SHUT_WR {
            self.rx.state.lock().reader = self.ty == SOCK_DGRAM;
            self.rx.space.notify(events::ALL);
        }
        self.queue.notify(events::ALL);
        Ok(())
    }

    fn deadline(&self, receive: bool) -> Option<Instant> {
        let i = self.inner.lock();
        let t = if receive { i.rcvtimeo } else { i.sndtimeo };
        t.and_then(|d| Instant::now().checked_add(d))
    }

    /// `SO_RCVTIMEO` (`receive`) or `SO_SNDTIMEO`; `None` waits forever.
    pub fn timeout(&self, receive: bool) -> Option<Duration> {
        let i = self.inner.lock();
        if receive { i.rcvtimeo } else { i.sndtimeo }
    }

    /// Sets `SO_RCVTIMEO` (`receive`) or `SO_SNDTIMEO`.
    pub fn set_timeout(&self, receive: bool, t: Option<Duration>) {
        let mut i = self.inner.lock();
        if receive {
            i.rcvtimeo = t;
        } else {
            i.sndtimeo = t;
        }
    }

    /// `SO_PASSCRED`.
    pub fn set_passcred(&self, on: bool) {
        self.inner.lock().passcred = on;
    }

    /// `SO_PASSCRED` value.
    pub fn passcred(&self) -> bool {
        self.inner.lock().passcred
    }

    /// `SO_RCVBUF` value.
    pub fn rcvbuf(&self) -> usize {
        self.rx.state.lock().capacity
    }

    /// Sets `SO_RCVBUF` (doubled, like Linux).
    pub fn set_rcvbuf(&self, n: usize) {
        self.rx.state.lock().capacity = (n.saturating_mul(2)).max(MIN_BUF);
    }

    /// `SO_SNDBUF` value.
    pub fn sndbuf(&self) -> usize {
        self.inner.lock().sndbuf
    }

    /// Sets `SO_SNDBUF` (doubled, like Linux).
    pub fn set_sndbuf(&self, n: usize) {
        self.inner.lock().sndbuf = (n.saturating_mul(2)).max(MIN_BUF);
    }

    /// `SO_REUSEADDR`.
    pub fn reuseaddr(&self) -> bool {
        self.inner.lock().reuseaddr
    }

    /// Sets `SO_REUSEADDR`.
    pub fn set_reuseaddr(&self, on: bool) {
        self.inner.lock().reuseaddr = on;
    }

    /// `SO_LINGER` (onoff, seconds).
    pub fn linger(&self) -> (i32, i32) {
        self.inner.lock().linger
    }

    /// Sets `SO_LINGER`.
    pub fn set_linger(&self, l: (i32, i32)) {
        self.inner.lock().linger = l;
    }

    /// Takes `SO_ERROR`.
    pub fn take_error(&self) -> Option<Errno> {
        self.inner.lock().error.take()
    }

    /// Bytes waiting (`FIONREAD`, `SIOCINQ`).
    pub fn pending_bytes(&self) -> usize {
        let s = self.rx.state.lock();
        if self.ty == SOCK_STREAM {
            s.bytes
        } else {
            s.msgs.front().map_or(0, |m| m.data.len())
        }
    }

    fn poll_events(&self) -> Events {
        let i = self.inner.lock();
        let mut ev = 0;
        match &i.conn {
            Conn::Listening { pending, .. } => {
                if !pending.is_empty() {
                    ev |= events::POLLIN | events::POLLRDNORM;
                }
                return ev;
            }
            Conn::Connected { tx, .. } => {
                let t = tx.state.lock();
                if !t.reader {
                    ev |= events::POLLHUP;
                    if !i.shut_wr {
                        ev |= events::POLLERR;
                    }
                } else if !i.shut_wr && (t.bytes == 0 || t.bytes < t.capacity) {
                    ev |= events::POLLOUT | events::POLLWRNORM;
                }
            }
            Conn::Unconnected => {
                if self.ty == SOCK_DGRAM {
                    let writable = match i.dgram_peer.as_ref().and_then(Weak::upgrade) {
                        Some(p) => p.rx.has_space(1),
                        None => true,
                    };
                    if writable && !i.shut_wr {
                        ev |= events::POLLOUT | events::POLLWRNORM;
                    }
                } else {
                    ev |= events::POLLOUT | events::POLLHUP;
                }
            }
        }
        let s = self.rx.state.lock();
        if !s.msgs.is_empty() {
            ev |= events::POLLIN | events::POLLRDNORM;
        }
        let peer_gone = self.ty != SOCK_DGRAM && s.had_writer && s.writers == 0;
        if peer_gone || i.shut_rd {
            ev |= events::POLLIN | events::POLLRDNORM | events::POLLRDHUP;
        }
        if i.shut_wr && (peer_gone || i.shut_rd) {
            ev |= events::POLLHUP;
        }
        ev
    }
}

/// A socket timeout ends a blocking call with `EAGAIN`, as on Linux.
fn timeout_is_eagain(e: Errno) -> Errno {
    if e == Errno::ETIMEDOUT {
        Errno::EAGAIN
    } else {
        e
    }
}

/// Connects `a` and `b` crosswise.
fn link(
    a: &Arc<UnixSocket>,
    b: &Arc<UnixSocket>,
    a_peer: Option<Vec<u8>>,
    b_peer: Option<Vec<u8>>,
) {
    for (x, y, peer_name) in [(a, b, a_peer), (b, a, b_peer)] {
        let tx = y.rx.clone();
        tx.add_writer();
        let fwd_q = Arc::downgrade(&x.queue);
        let fwd = tx.space.register(
            events::ALL,
            Arc::new(FnNotify(move |ev| {
                if let Some(q) = fwd_q.upgrade() {
                    q.notify(ev);
                }
            })),
        );
        let mut i = x.inner.lock();
        i.peer_cred = Some(y.cred);
        i.conn = Conn::Connected {
            tx,
            fwd: Some(fwd),
            peer_name,
        };
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let i = self.inner.get_mut();
        if let Some(key) = i.key.take() {
            let mut r = self.names.bound.lock();
            if r.get(&key)
                .is_some_and(|w| std::ptr::eq(w.as_ptr(), self.me.as_ptr()))
            {
                r.remove(&key);
            }
        }
        match std::mem::take(&mut i.conn) {
            Conn::Connected { tx, fwd, .. } => {
                if let Some(id) = fwd {
                    tx.space.unregister(id);
                }
                if !i.shut_wr {
                    tx.close_writer();
                }
            }
            Conn::Listening { pending, .. } => drop(pending),
            Conn::Unconnected => {}
        }
        self.rx.close_reader();
    }
}

/// The [`FileOps`] of a socket file: a stream over [`UnixSocket`].
#[derive(Debug)]
pub struct SocketFile {
    /// The socket.
    pub sock: Arc<UnixSocket>,
}

impl FileOps for SocketFile {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        let r = self.sock.recv(buf.len(), 0)?;
        buf[..r.data.len()].copy_from_slice(&r.data);
        Ok(r.data.len())
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        self.sock.send(buf, Vec::new(), self.sock.cred, None, 0)
    }

    fn stream(&self) -> bool {
        true
    }

    fn readable(&self) -> Option<u64> {
        Some(self.sock.pending_bytes() as u64)
    }

    fn readiness(&self, mask: Events) -> Events {
        self.sock.poll_events() & (mask | events::ALWAYS)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.sock.queue)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        self.sock
            .set_nonblock(flags & linux_abi::flags::open::O_NONBLOCK != 0);
        Ok(())
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn crate::fs::UserMem) -> Result<u64, Errno> {
        const FIONREAD: u32 = 0x541B;
        if cmd == FIONREAD {
            let n = self.sock.pending_bytes() as i32;
            mem.copy_out(arg, &n.to_ne_bytes())?;
            return Ok(0);
        }
        Err(Errno::ENOTTY)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
