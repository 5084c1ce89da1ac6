//! The blocking client half: [`Client`] sends requests from any number of threads and
//! matches replies by request id.
//!
//! A dedicated reader thread receives every reply and hands it to the waiting caller
//! through a one-shot channel; callers decode their own replies. When the peer goes away
//! (EOF, `ECONNRESET`, broken framing) every pending call and every later call fails with
//! an error instead of blocking.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use nix::errno::Errno;

use crate::codec::Header;
use crate::error::{ClientError, ProtoError};
use crate::message::*;
use crate::transport::{self, Frame, RECORD_SIZE, RecvError};

type Reply = Result<Frame, ClientError>;

#[derive(Debug)]
struct State {
    next_id: u64,
    pending: HashMap<u64, SyncSender<Reply>>,
    dead: Option<ClientError>,
}

#[derive(Debug)]
struct Inner {
    sock: OwnedFd,
    send_lock: Mutex<()>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// Marks the connection dead and fails every pending call with `err`.
    fn fail_all(&self, err: ClientError) {
        let mut st = lock(&self.state);
        if st.dead.is_none() {
            st.dead = Some(err.clone());
        }
        for (_, tx) in st.pending.drain() {
            let _ = tx.send(Err(err.clone()));
        }
    }

    fn reader_loop(&self) {
        let mut buf = vec![0u8; RECORD_SIZE];
        loop {
            match transport::recv_frame(self.sock.as_fd(), &mut buf) {
                Ok(Some(frame)) => {
                    let tx = lock(&self.state).pending.remove(&frame.header.request_id);
                    match tx {
                        Some(tx) => {
                            let _ = tx.send(Ok(frame));
                        }
                        None => tracing::warn!(
                            request_id = frame.header.request_id,
                            "lisafs: reply for an unknown request dropped"
                        ),
                    }
                }
                Ok(None) => {
                    tracing::debug!("lisafs: server closed the connection");
                    self.fail_all(ClientError::Disconnected);
                    return;
                }
                Err(RecvError::Io(e)) => {
                    tracing::debug!(error = %e, "lisafs: connection failed");
                    self.fail_all(io_error(e));
                    return;
                }
                Err(RecvError::Fatal { err, .. }) => {
                    tracing::warn!(error = %err, "lisafs: broken reply framing, closing");
                    transport::shutdown(self.sock.as_fd());
                    self.fail_all(ClientError::Protocol(err));
                    return;
                }
                Err(RecvError::Bad { header, err }) => {
                    let tx = lock(&self.state).pending.remove(&header.request_id);
                    if let Some(tx) = tx {
                        let _ = tx.send(Err(ClientError::Protocol(err)));
                    }
                }
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

/// A blocking protocol client, usable from many threads at once (`Send + Sync`).
///
/// Dropping the client closes the connection and joins its reader thread.
#[derive(Debug)]
pub struct Client {
    inner: Arc<Inner>,
    reader: Option<JoinHandle<()>>,
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
    /// Spawns the reader thread; fails only if the thread cannot be spawned.
    pub fn new(sock: OwnedFd) -> Result<Client, ClientError> {
        let inner = Arc::new(Inner {
            sock,
            send_lock: Mutex::new(()),
            state: Mutex::new(State {
                next_id: 1,
                pending: HashMap::new(),
                dead: None,
            }),
        });
        let r = Arc::clone(&inner);
        let reader = std::thread::Builder::new()
            .name("lisafs-client".into())
            .spawn(move || r.reader_loop())
            .map_err(|e| ClientError::Io(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
        Ok(Client {
            inner,
            reader: Some(reader),
        })
    }

    /// Closes the connection: pending and later calls fail with
    /// [`ClientError::Disconnected`].
    pub fn shutdown(&self) {
        self.inner.fail_all(ClientError::Disconnected);
        transport::shutdown(self.inner.sock.as_fd());
    }

    /// Whether the connection has failed or been shut down.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.state).dead.is_some()
    }

    /// Sends any request and waits for its reply. An `Error` reply becomes
    /// [`ClientError::Errno`]; otherwise the reply has the request's message id. Host fds
    /// donated with the reply are returned alongside.
    pub fn call(&self, req: &Request) -> Result<(Response, Vec<OwnedFd>), ClientError> {
        let payload = req.encode()?;
        let msg_id = req.msg_id();
        let (tx, rx) = sync_channel(1);
        let request_id = {
            let mut st = lock(&self.inner.state);
            if let Some(e) = &st.dead {
                return Err(e.clone());
            }
            let id = st.next_id;
            st.next_id += 1;
            st.pending.insert(id, tx);
            id
        };
        let header = Header {
            request_id,
            msg_id: msg_id as u16,
            payload_len: payload.len() as u32,
        };
        let sent = {
            let _g = lock(&self.inner.send_lock);
            transport::send_frame(self.inner.sock.as_fd(), &header, &payload, &[])
        };
        if let Err(e) = sent {
            lock(&self.inner.state).pending.remove(&request_id);
            let err = io_error(e);
            if err == ClientError::Disconnected {
                // The peer is gone: fail everything now rather than when the reader
                // notices.
                self.inner.fail_all(ClientError::Disconnected);
            }
            return Err(err);
        }
        let frame = rx.recv().map_err(|_| ClientError::Disconnected)??;
        let resp = Response::decode(frame.header.msg_id, &frame.payload)?;
        match resp {
            Response::Error(e) => {
                let errno = if e.errno > 0 { e.errno } else { libc::EIO };
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
        self.shutdown();
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}
