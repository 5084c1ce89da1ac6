//! The blocking client half: [`Client`] sends requests from any number of threads and
//! matches replies by request id.
//!
//! There is no reader thread. Replies are read by the callers themselves, "leader and
//! followers": a caller waiting for its reply becomes the reader if nobody else is
//! reading, receives one reply, files it under its request id and wakes only that
//! call's owner, and repeats until its own reply has arrived; then it hands the reading
//! over to one other waiter. Followers wait on their own condition variable. A caller
//! whose reply comes back first thus pays no thread hop at all. Callers decode their own
//! replies. When the peer goes away (EOF, `ECONNRESET`, broken framing)
//! every pending call and every later call fails with an error instead of blocking.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use linux_abi::Errno;

use crate::codec::Header;
use crate::error::{ClientError, ProtoError};
use crate::message::*;
use crate::transport::{self, Frame, RECORD_SIZE, RecvError};

type Reply = Result<Frame, ClientError>;

/// One call in flight.
#[derive(Debug)]
struct Slot {
    /// The reply (or per-call error), once it arrived.
    reply: Option<Reply>,
    /// The caller waits here (with the state mutex).
    cv: Arc<Condvar>,
    /// Whether the caller is blocked on `cv` (and so can be handed the reading).
    waiting: bool,
}

#[derive(Debug)]
struct State {
    next_id: u64,
    /// Calls in flight.
    pending: HashMap<u64, Slot>,
    /// Set once the connection is unusable; every waiter then fails with it.
    dead: Option<ClientError>,
    /// Whether some caller is currently reading from the socket.
    reading: bool,
}

/// A blocking protocol client, usable from many threads at once (`Send + Sync`).
///
/// Dropping the client closes the connection.
#[derive(Debug)]
pub struct Client {
    sock: OwnedFd,
    /// Held while writing one whole message.
    send_lock: Mutex<()>,
    state: Mutex<State>,
    /// Scratch record buffer of the current reader.
    buf: Mutex<Vec<u8>>,
}

impl Client {
    /// Marks the connection dead (first error wins) and wakes every waiter.
    fn fail_all(&self, st: &mut State, err: ClientError) {
        if st.dead.is_none() {
            st.dead = Some(err);
        }
        for slot in st.pending.values() {
            slot.cv.notify_one();
        }
    }

    /// Files a reply for `id` and wakes its caller; unknown or answered ids are dropped.
    fn file_reply(st: &mut State, id: u64, reply: Reply) {
        match st.pending.get_mut(&id) {
            Some(slot) if slot.reply.is_none() => {
                slot.reply = Some(reply);
                slot.cv.notify_one();
            }
            _ => tracing::warn!(
                request_id = id,
                "lisafs: reply for an unknown request dropped"
            ),
        }
    }

    /// Wakes one caller blocked waiting for its reply so that it takes over reading.
    ///
    /// Only a caller actually blocked on its condition variable will do: one still
    /// sending might stay blocked in `sendmsg` (waiting for the server, which may itself
    /// wait for its replies to be read) and leave everyone else without a reader.
    fn hand_over(st: &State) {
        if let Some(slot) = st.pending.values().find(|s| s.waiting && s.reply.is_none()) {
            slot.cv.notify_one();
        }
    }

    /// Files the outcome of one receive.
    fn deliver(&self, st: &mut State, r: Result<Option<Frame>, RecvError>) {
        match r {
            Ok(Some(frame)) => Self::file_reply(st, frame.header.request_id, Ok(frame)),
            Ok(None) => {
                tracing::debug!("lisafs: server closed the connection");
                self.fail_all(st, ClientError::Disconnected);
            }
            Err(RecvError::Io(e)) => {
                tracing::debug!(error = %e, "lisafs: connection failed");
                self.fail_all(st, io_error(e));
            }
            Err(RecvError::Fatal { err, .. }) => {
                tracing::warn!(error = %err, "lisafs: broken reply framing, closing");
                transport::shutdown(self.sock.as_fd());
                self.fail_all(st, ClientError::Protocol(err));
            }
            Err(RecvError::Bad { header, err }) => {
                Self::file_reply(st, header.request_id, Err(ClientError::Protocol(err)));
            }
        }
    }

    /// Waits for the reply to `id`, reading from the socket while nobody else does.
    fn wait_reply(&self, id: u64) -> Reply {
        let mut st = self.state.lock();
        loop {
            let state = &mut *st;
            let Some(slot) = state.pending.get_mut(&id) else {
                // Not registered: cannot happen, but never wait forever.
                return Err(ClientError::Disconnected);
            };
            if let Some(r) = slot.reply.take() {
                state.pending.remove(&id);
                return r;
            }
            let cv = Arc::clone(&slot.cv);
            if let Some(e) = &state.dead {
                let e = e.clone();
                state.pending.remove(&id);
                return Err(e);
            }
            if state.reading {
                slot.waiting = true;
                cv.wait(&mut st);
                if let Some(slot) = st.pending.get_mut(&id) {
                    slot.waiting = false;
                }
                continue;
            }
            st.reading = true;
            drop(st);
            let r = {
                let mut buf = self.buf.lock();
                transport::recv_frame(self.sock.as_fd(), &mut buf)
            };
            st = self.state.lock();
            st.reading = false;
            self.deliver(&mut st, r);
            let mine = st.pending.get(&id).is_some_and(|s| s.reply.is_some());
            if mine || st.dead.is_some() {
                // Leaving: let another waiter read.
                Self::hand_over(&st);
            }
        }
    }
}

fn io_error(e: Errno) -> ClientError {
    match e {
        Errno::ECONNRESET | Errno::EPIPE | Errno::ENOTCONN | Errno::ESHUTDOWN => {
            ClientError::Disconnected
        }
        e => ClientError::Io(e),
    }
}

macro_rules! expect_reply {
    ($resp:expr, $variant:ident) => {
        match $resp {
            Response::$variant(r) => r,
            other => {
                return Err(ClientError::Protocol(ProtoError::UnexpectedReply(
                    other.msg_id() as u16,
                )));
            }
        }
    };
}

fn names<S: AsRef<[u8]>>(names: &[S]) -> Vec<Vec<u8>> {
    names.iter().map(|n| n.as_ref().to_vec()).collect()
}

impl Client {
    /// Starts a client on a connected `SOCK_SEQPACKET` socket (see [`crate::socketpair`]).
    ///
    /// Never fails today; the `Result` leaves room for a connection handshake.
    pub fn new(sock: OwnedFd) -> Result<Client, ClientError> {
        Ok(Client {
            sock,
            send_lock: Mutex::new(()),
            state: Mutex::new(State {
                next_id: 1,
                pending: HashMap::new(),
                dead: None,
                reading: false,
            }),
            buf: Mutex::new(vec![0u8; RECORD_SIZE]),
        })
    }

    /// Closes the connection: pending and later calls fail with
    /// [`ClientError::Disconnected`].
    pub fn shutdown(&self) {
        self.fail_all(&mut self.state.lock(), ClientError::Disconnected);
        transport::shutdown(self.sock.as_fd());
    }

    /// Whether the connection has failed or been shut down.
    pub fn is_closed(&self) -> bool {
        self.state.lock().dead.is_some()
    }

    /// Whether the server is still there, asked of the socket without a round trip: a
    /// server that closed its end (it exited or was killed) marks the connection dead,
    /// so that this and every later call fail with [`ClientError::Disconnected`].
    ///
    /// For callers that can serve a request from a cache or a donated descriptor and
    /// would otherwise never notice that the server is gone.
    pub fn check_connected(&self) -> Result<(), ClientError> {
        let mut st = self.state.lock();
        if let Some(e) = &st.dead {
            return Err(e.clone());
        }
        if transport::peer_closed(self.sock.as_fd()) {
            tracing::debug!("lisafs: server closed the connection");
            self.fail_all(&mut st, ClientError::Disconnected);
            return Err(ClientError::Disconnected);
        }
        Ok(())
    }

    /// Sends any request and waits for its reply. An `Error` reply becomes
    /// [`ClientError::Errno`]; otherwise the reply has the request's message id. Host fds
    /// donated with the reply are returned alongside.
    pub fn call(&self, req: &Request) -> Result<(Response, Vec<OwnedFd>), ClientError> {
        let payload = req.encode()?;
        let msg_id = req.msg_id();
        let request_id = {
            let mut st = self.state.lock();
            if let Some(e) = &st.dead {
                return Err(e.clone());
            }
            let id = st.next_id;
            st.next_id += 1;
            st.pending.insert(
                id,
                Slot {
                    reply: None,
                    cv: Arc::new(Condvar::new()),
                    waiting: false,
                },
            );
            id
        };
        let header = Header {
            request_id,
            msg_id: msg_id as u16,
            payload_len: payload.len() as u32,
        };
        let sent = {
            let _g = self.send_lock.lock();
            transport::send_frame(self.sock.as_fd(), &header, &payload, &[])
        };
        if let Err(e) = sent {
            let mut st = self.state.lock();
            st.pending.remove(&request_id);
            let err = io_error(e);
            if err == ClientError::Disconnected {
                // The peer is gone: fail everything now rather than when a reader
                // notices.
                self.fail_all(&mut st, ClientError::Disconnected);
            }
            return Err(err);
        }
        let frame = self.wait_reply(request_id)?;
        let resp = Response::decode(frame.header.msg_id, &frame.payload)?;
        match resp {
            Response::Error(e) => {
                let errno = if e.errno > 0 {
                    Errno::new(e.errno)
                } else {
                    Errno::EIO
                };
                Err(ClientError::Errno(errno))
            }
            r if r.msg_id() == msg_id => Ok((r, frame.fds)),
            r => Err(ClientError::Protocol(ProtoError::UnexpectedReply(
                r.msg_id() as u16,
            ))),
        }
    }

    fn call_no_fds(&self, req: &Request) -> Result<Response, ClientError> {
        // Unexpected donated fds are closed here.
        self.call(req).map(|(r, _)| r)
    }

    /// `Mount`: attaches to the tree named `path` (empty: the server's root).
    pub fn mount(&self, path: &[u8]) -> Result<MountResp, ClientError> {
        let r = self.call_no_fds(&Request::Mount(MountReq {
            path: path.to_vec(),
        }))?;
        Ok(expect_reply!(r, Mount))
    }

    /// `Walk`: walks `names` below `dir`, one node per component walked.
    pub fn walk<S: AsRef<[u8]>>(&self, dir: NodeId, names_: &[S]) -> Result<WalkResp, ClientError> {
        let r = self.call_no_fds(&Request::Walk(WalkReq {
            dir,
            names: names(names_),
        }))?;
        Ok(expect_reply!(r, Walk))
    }

    /// `WalkStat`: like [`Client::walk`] but returns only attributes.
    pub fn walk_stat<S: AsRef<[u8]>>(
        &self,
        dir: NodeId,
        names_: &[S],
    ) -> Result<WalkStatResp, ClientError> {
        let r = self.call_no_fds(&Request::WalkStat(WalkStatReq {
            dir,
            names: names(names_),
        }))?;
        Ok(expect_reply!(r, WalkStat))
    }

    /// `FStat`: attributes of `node`.
    pub fn fstat(&self, node: NodeId) -> Result<Stat, ClientError> {
        let r = self.call_no_fds(&Request::FStat(FStatReq { node }))?;
        Ok(expect_reply!(r, FStat).stat)
    }

    /// `SetStat`: changes the attributes set in `req`; returns the attributes after.
    pub fn set_stat(&self, req: SetStatReq) -> Result<Stat, ClientError> {
        let r = self.call_no_fds(&Request::SetStat(req))?;
        Ok(expect_reply!(r, SetStat).stat)
    }

    /// `OpenAt`: opens `node` with `open(2)` `flags`; the server may donate a host fd.
    pub fn open_at(&self, node: NodeId, flags: u32) -> Result<Opened, ClientError> {
        let (r, fds) = self.call(&Request::OpenAt(OpenAtReq { node, flags }))?;
        let r = expect_reply!(r, OpenAt);
        Ok(Opened {
            handle: r.handle,
            fd: fds.into_iter().next(),
        })
    }

    /// `OpenCreateAt`: creates and opens `name` in `dir`.
    pub fn open_create_at(
        &self,
        dir: NodeId,
        name: &[u8],
        flags: u32,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<CreatedFile, ClientError> {
        let (r, fds) = self.call(&Request::OpenCreateAt(OpenCreateAtReq {
            dir,
            name: name.to_vec(),
            flags,
            mode,
            uid,
            gid,
        }))?;
        let r = expect_reply!(r, OpenCreateAt);
        Ok(CreatedFile {
            node: r.node,
            handle: r.handle,
            fd: fds.into_iter().next(),
        })
    }

    /// `MkdirAt`: creates directory `name` in `dir`.
    pub fn mkdir_at(
        &self,
        dir: NodeId,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<Inode, ClientError> {
        let r = self.call_no_fds(&Request::MkdirAt(MkdirAtReq {
            dir,
            name: name.to_vec(),
            mode,
            uid,
            gid,
        }))?;
        Ok(expect_reply!(r, MkdirAt).node)
    }

    /// `MknodAt`: creates a special file `name` in `dir` (`mode` includes the type).
    pub fn mknod_at(
        &self,
        dir: NodeId,
        name: &[u8],
        mode: u32,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Inode, ClientError> {
        let r = self.call_no_fds(&Request::MknodAt(MknodAtReq {
            dir,
            name: name.to_vec(),
            mode,
            rdev,
            uid,
            gid,
        }))?;
        Ok(expect_reply!(r, MknodAt).node)
    }

    /// `SymlinkAt`: creates symlink `name` -> `target` in `dir`.
    pub fn symlink_at(
        &self,
        dir: NodeId,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Inode, ClientError> {
        let r = self.call_no_fds(&Request::SymlinkAt(SymlinkAtReq {
            dir,
            name: name.to_vec(),
            target: target.to_vec(),
            uid,
            gid,
        }))?;
        Ok(expect_reply!(r, SymlinkAt).node)
    }

    /// `LinkAt`: creates hard link `name` in `dir` to `target`.
    pub fn link_at(&self, dir: NodeId, name: &[u8], target: NodeId) -> Result<Inode, ClientError> {
        let r = self.call_no_fds(&Request::LinkAt(LinkAtReq {
            dir,
            name: name.to_vec(),
            target,
        }))?;
        Ok(expect_reply!(r, LinkAt).node)
    }

    /// `UnlinkAt`: removes `name` from `dir` (`flags` = `AT_REMOVEDIR` for directories).
    pub fn unlink_at(&self, dir: NodeId, name: &[u8], flags: u32) -> Result<(), ClientError> {
        let r = self.call_no_fds(&Request::UnlinkAt(UnlinkAtReq {
            dir,
            name: name.to_vec(),
            flags,
        }))?;
        expect_reply!(r, UnlinkAt);
        Ok(())
    }

    /// `RenameAt`: renames `old_dir/old_name` to `new_dir/new_name`.
    pub fn rename_at(
        &self,
        old_dir: NodeId,
        old_name: &[u8],
        new_dir: NodeId,
        new_name: &[u8],
        flags: u32,
    ) -> Result<(), ClientError> {
        let r = self.call_no_fds(&Request::RenameAt(RenameAtReq {
            old_dir,
            old_name: old_name.to_vec(),
            new_dir,
            new_name: new_name.to_vec(),
            flags,
        }))?;
        expect_reply!(r, RenameAt);
        Ok(())
    }

    /// `ReadLinkAt`: the target of symlink `node`.
    pub fn read_link_at(&self, node: NodeId) -> Result<Vec<u8>, ClientError> {
        let r = self.call_no_fds(&Request::ReadLinkAt(ReadLinkAtReq { node }))?;
        Ok(expect_reply!(r, ReadLinkAt).target)
    }

    /// `Getdents64`: entries of open directory `handle` after cookie `offset` (0 to
    /// start), within about `count` bytes. Empty at the end.
    pub fn getdents64(
        &self,
        handle: HandleId,
        offset: u64,
        count: u32,
    ) -> Result<Vec<Dirent>, ClientError> {
        let r = self.call_no_fds(&Request::Getdents64(Getdents64Req {
            handle,
            offset,
            count: count.min(MAX_IO_SIZE),
        }))?;
        Ok(expect_reply!(r, Getdents64).entries)
    }

    /// `PRead`: reads up to `count` bytes (clamped to [`MAX_IO_SIZE`]) at `offset`.
    pub fn pread(&self, handle: HandleId, offset: u64, count: u32) -> Result<Vec<u8>, ClientError> {
        let r = self.call_no_fds(&Request::PRead(PReadReq {
            handle,
            offset,
            count: count.min(MAX_IO_SIZE),
        }))?;
        Ok(expect_reply!(r, PRead).data)
    }

    /// `PWrite`: writes `data` at `offset`; at most [`MAX_IO_SIZE`] bytes are sent, so
    /// the count written may be short.
    pub fn pwrite(&self, handle: HandleId, offset: u64, data: &[u8]) -> Result<u64, ClientError> {
        let n = data.len().min(MAX_IO_SIZE as usize);
        let r = self.call_no_fds(&Request::PWrite(PWriteReq {
            handle,
            offset,
            data: data[..n].to_vec(),
        }))?;
        Ok(expect_reply!(r, PWrite).written)
    }

    /// `FSync`: flushes `handle` (`data_only`: `fdatasync`).
    pub fn fsync(&self, handle: HandleId, data_only: bool) -> Result<(), ClientError> {
        let r = self.call_no_fds(&Request::FSync(FSyncReq { handle, data_only }))?;
        expect_reply!(r, FSync);
        Ok(())
    }

    /// `FStatFS`: statistics of the file system holding `node`.
    pub fn fstatfs(&self, node: NodeId) -> Result<StatFs, ClientError> {
        let r = self.call_no_fds(&Request::FStatFs(FStatFsReq { node }))?;
        Ok(expect_reply!(r, FStatFs).statfs)
    }

    /// `FAllocate`: `fallocate(2)` on `handle`.
    pub fn fallocate(
        &self,
        handle: HandleId,
        mode: u32,
        offset: u64,
        len: u64,
    ) -> Result<(), ClientError> {
        let r = self.call_no_fds(&Request::FAllocate(FAllocateReq {
            handle,
            mode,
            offset,
            len,
        }))?;
        expect_reply!(r, FAllocate);
        Ok(())
    }

    /// `Close`: releases many nodes and handles in one call.
    pub fn close(&self, nodes: &[NodeId], handles: &[HandleId]) -> Result<(), ClientError> {
        let r = self.call_no_fds(&Request::Close(CloseReq {
            nodes: nodes.to_vec(),
            handles: handles.to_vec(),
        }))?;
        expect_reply!(r, Close);
        Ok(())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        transport::shutdown(self.sock.as_fd());
    }
}
