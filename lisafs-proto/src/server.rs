//! The server half: the [`Dispatcher`] trait a file server implements, the [`dispatch`]
//! function mapping a [`Request`] to it, and the [`Server`] loop that reads requests,
//! dispatches them on one or more threads and writes replies with donated fds.
//!
//! Malformed requests (undecodable payload, unknown message id, fds where none belong)
//! get an `Error` reply (`EINVAL`, `ENOSYS`, `EMSGSIZE`); broken framing (truncated or
//! oversized records, bad header) gets a best-effort error reply and closes the
//! connection. Nothing a peer sends can make the server panic.

use parking_lot::Mutex;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use linux_abi::Errno;

use crate::codec::Header;
use crate::error::ServerError;
use crate::message::*;
use crate::transport::{self, Frame, RECORD_SIZE, RecvError};

/// What a handler returns: a reply or a host errno.
pub type HandlerResult<T> = Result<T, Errno>;

/// The operations a file server implements, one method per message.
///
/// Every method has a default that fails with `ENOSYS`. Methods may be called
/// concurrently from several server threads. Ids never need to be reused: hand out
/// monotonically increasing [`NodeId`]s and [`HandleId`]s.
pub trait Dispatcher: Send + Sync {
    /// `Mount`: the root node of the tree named by `req.path`.
    fn mount(&self, req: MountReq) -> HandlerResult<MountResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `Walk`: walk the components, stopping at the first missing one or at a symlink.
    fn walk(&self, req: WalkReq) -> HandlerResult<WalkResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `WalkStat`: like `walk` but creating no nodes.
    fn walk_stat(&self, req: WalkStatReq) -> HandlerResult<WalkStatResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `FStat`.
    fn fstat(&self, req: FStatReq) -> HandlerResult<FStatResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `SetStat`: apply every `Some` field; reply with the attributes after.
    fn set_stat(&self, req: SetStatReq) -> HandlerResult<SetStatResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `OpenAt`: open the node; put the host fd in [`Opened::fd`] to donate it.
    fn open_at(&self, req: OpenAtReq) -> HandlerResult<Opened> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `OpenCreateAt`: create and open; put the host fd in [`CreatedFile::fd`].
    fn open_create_at(&self, req: OpenCreateAtReq) -> HandlerResult<CreatedFile> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `MkdirAt`.
    fn mkdir_at(&self, req: MkdirAtReq) -> HandlerResult<NewNodeResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `MknodAt`.
    fn mknod_at(&self, req: MknodAtReq) -> HandlerResult<NewNodeResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `SymlinkAt`.
    fn symlink_at(&self, req: SymlinkAtReq) -> HandlerResult<NewNodeResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `LinkAt`.
    fn link_at(&self, req: LinkAtReq) -> HandlerResult<NewNodeResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `UnlinkAt`.
    fn unlink_at(&self, req: UnlinkAtReq) -> HandlerResult<()> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `RenameAt`.
    fn rename_at(&self, req: RenameAtReq) -> HandlerResult<()> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `ReadLinkAt`.
    fn read_link_at(&self, req: ReadLinkAtReq) -> HandlerResult<ReadLinkAtResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `Getdents64`: `req.count` is already clamped to [`MAX_IO_SIZE`].
    fn getdents64(&self, req: Getdents64Req) -> HandlerResult<Getdents64Resp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `PRead`: `req.count` is already clamped to [`MAX_IO_SIZE`].
    fn pread(&self, req: PReadReq) -> HandlerResult<PReadResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `PWrite`: `req.data` is at most [`MAX_IO_SIZE`] bytes.
    fn pwrite(&self, req: PWriteReq) -> HandlerResult<PWriteResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `FSync`.
    fn fsync(&self, req: FSyncReq) -> HandlerResult<()> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `FStatFS`.
    fn fstatfs(&self, req: FStatFsReq) -> HandlerResult<FStatFsResp> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `FAllocate`.
    fn fallocate(&self, req: FAllocateReq) -> HandlerResult<()> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
    /// `Close`: release the ids; unknown ids are ignored.
    fn close(&self, req: CloseReq) -> HandlerResult<()> {
        let _ = req;
        Err(Errno::ENOSYS)
    }
}

/// Runs one request through a [`Dispatcher`], returning the reply and the fds to donate
/// with it. Handler errors become [`Response::Error`].
pub fn dispatch<D: Dispatcher + ?Sized>(d: &D, req: Request) -> (Response, Vec<OwnedFd>) {
    fn fd_vec(fd: Option<OwnedFd>) -> Vec<OwnedFd> {
        fd.into_iter().collect()
    }
    let r: HandlerResult<(Response, Vec<OwnedFd>)> = match req {
        Request::Mount(r) => d.mount(r).map(|v| (Response::Mount(v), vec![])),
        Request::Walk(r) => d.walk(r).map(|v| (Response::Walk(v), vec![])),
        Request::WalkStat(r) => d.walk_stat(r).map(|v| (Response::WalkStat(v), vec![])),
        Request::FStat(r) => d.fstat(r).map(|v| (Response::FStat(v), vec![])),
        Request::SetStat(r) => d.set_stat(r).map(|v| (Response::SetStat(v), vec![])),
        Request::OpenAt(r) => d.open_at(r).map(|v| {
            (
                Response::OpenAt(OpenAtResp { handle: v.handle }),
                fd_vec(v.fd),
            )
        }),
        Request::OpenCreateAt(r) => d.open_create_at(r).map(|v| {
            (
                Response::OpenCreateAt(OpenCreateAtResp {
                    node: v.node,
                    handle: v.handle,
                }),
                fd_vec(v.fd),
            )
        }),
        Request::MkdirAt(r) => d.mkdir_at(r).map(|v| (Response::MkdirAt(v), vec![])),
        Request::MknodAt(r) => d.mknod_at(r).map(|v| (Response::MknodAt(v), vec![])),
        Request::SymlinkAt(r) => d.symlink_at(r).map(|v| (Response::SymlinkAt(v), vec![])),
        Request::LinkAt(r) => d.link_at(r).map(|v| (Response::LinkAt(v), vec![])),
        Request::UnlinkAt(r) => d
            .unlink_at(r)
            .map(|()| (Response::UnlinkAt(EmptyResp {}), vec![])),
        Request::RenameAt(r) => d
            .rename_at(r)
            .map(|()| (Response::RenameAt(EmptyResp {}), vec![])),
        Request::ReadLinkAt(r) => d.read_link_at(r).map(|v| (Response::ReadLinkAt(v), vec![])),
        Request::Getdents64(mut r) => {
            r.count = r.count.min(MAX_IO_SIZE);
            d.getdents64(r).map(|v| (Response::Getdents64(v), vec![]))
        }
        Request::PRead(mut r) => {
            r.count = r.count.min(MAX_IO_SIZE);
            d.pread(r).map(|v| (Response::PRead(v), vec![]))
        }
        Request::PWrite(r) => {
            if r.data.len() > MAX_IO_SIZE as usize {
                Err(Errno::EMSGSIZE)
            } else {
                d.pwrite(r).map(|v| (Response::PWrite(v), vec![]))
            }
        }
        Request::FSync(r) => d.fsync(r).map(|()| (Response::FSync(EmptyResp {}), vec![])),
        Request::FStatFs(r) => d.fstatfs(r).map(|v| (Response::FStatFs(v), vec![])),
        Request::FAllocate(r) => d
            .fallocate(r)
            .map(|()| (Response::FAllocate(EmptyResp {}), vec![])),
        Request::Close(r) => d.close(r).map(|()| (Response::Close(EmptyResp {}), vec![])),
    };
    match r {
        Ok(v) => v,
        Err(e) => (error_response(e), vec![]),
    }
}

fn error_response(errno: Errno) -> Response {
    Response::Error(ErrorResp { errno: errno.raw() })
}

/// The server loop on one connection.
#[derive(Debug)]
pub struct Server {
    sock: OwnedFd,
    /// Held while reading one whole message; holds the scratch record buffer.
    recv: Mutex<Vec<u8>>,
    /// Held while writing one whole message.
    send: Mutex<()>,
    stopping: AtomicBool,
    error: Mutex<Option<ServerError>>,
}

impl Server {
    /// Wraps a connected `SOCK_SEQPACKET` socket.
    pub fn new(sock: OwnedFd) -> Server {
        Server {
            sock,
            recv: Mutex::new(vec![0u8; RECORD_SIZE]),
            send: Mutex::new(()),
            stopping: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    /// The connection socket.
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Serves requests with `threads` worker threads (at least one: the calling thread)
    /// until the peer closes the connection (`Ok`), [`Server::shutdown`] is called
    /// (`Ok`), or the connection fails or its framing breaks (`Err`).
    pub fn serve<D: Dispatcher + ?Sized>(&self, d: &D, threads: usize) -> Result<(), ServerError> {
        let extra = threads.max(1) - 1;
        std::thread::scope(|s| {
            for i in 0..extra {
                let spawned = std::thread::Builder::new()
                    .name(format!("lisafs-server-{i}"))
                    .spawn_scoped(s, || self.worker(d));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "lisafs: cannot spawn a server thread");
                }
            }
            self.worker(d);
        });
        match self.error.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops [`Server::serve`]: closes the connection and wakes the workers.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        transport::shutdown(self.sock.as_fd());
    }

    fn fail(&self, e: ServerError) {
        let mut err = self.error.lock();
        if err.is_none() {
            *err = Some(e);
        }
        drop(err);
        self.shutdown();
    }

    fn worker<D: Dispatcher + ?Sized>(&self, d: &D) {
        loop {
            let r = {
                let mut buf = self.recv.lock();
                if self.stopping.load(Ordering::SeqCst) {
                    return;
                }
                transport::recv_frame(self.sock.as_fd(), &mut buf)
            };
            match r {
                Ok(Some(frame)) => self.handle(d, frame),
                Ok(None) => {
                    tracing::debug!("lisafs: client closed the connection");
                    self.stopping.store(true, Ordering::SeqCst);
                    return;
                }
                Err(RecvError::Bad { header, err }) => {
                    tracing::debug!(error = %err, "lisafs: rejected request");
                    self.reply(header.request_id, &error_response(err.errno()), &[]);
                }
                Err(RecvError::Fatal { request_id, err }) => {
                    tracing::warn!(error = %err, "lisafs: broken request framing, closing");
                    if let Some(id) = request_id {
                        self.reply(id, &error_response(err.errno()), &[]);
                    }
                    self.fail(ServerError::Protocol(err));
                    return;
                }
                Err(RecvError::Io(Errno::ECONNRESET)) => {
                    self.stopping.store(true, Ordering::SeqCst);
                    return;
                }
                Err(RecvError::Io(e)) => {
                    self.fail(ServerError::Io(e));
                    return;
                }
            }
        }
    }

    fn handle<D: Dispatcher + ?Sized>(&self, d: &D, frame: Frame) {
        let id = frame.header.request_id;
        if !frame.fds.is_empty() {
            // No request carries fds: close them before replying.
            drop(frame);
            self.reply(id, &error_response(Errno::EINVAL), &[]);
            return;
        }
        let req = match Request::decode(frame.header.msg_id, &frame.payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, msg_id = frame.header.msg_id, "lisafs: bad request");
                self.reply(id, &error_response(e.errno()), &[]);
                return;
            }
        };
        tracing::trace!(request_id = id, ?req, "lisafs: request");
        let (resp, fds) = dispatch(d, req);
        self.reply(id, &resp, &fds);
    }

    fn reply(&self, request_id: u64, resp: &Response, fds: &[OwnedFd]) {
        let (msg_id, payload, fds) = match resp.encode() {
            Ok(p) => (resp.msg_id(), p, fds),
            Err(e) => {
                tracing::warn!(error = %e, "lisafs: reply cannot be encoded");
                let err = error_response(e.errno());
                match err.encode() {
                    Ok(p) => (MsgId::Error, p, &[][..]),
                    Err(_) => return,
                }
            }
        };
        let header = Header {
            request_id,
            msg_id: msg_id as u16,
            payload_len: payload.len() as u32,
        };
        let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
        let _g = self.send.lock();
        if let Err(e) = transport::send_frame(self.sock.as_fd(), &header, &payload, &borrowed) {
            tracing::debug!(error = %e, "lisafs: cannot send reply");
        }
    }
}
