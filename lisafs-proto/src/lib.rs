//! A lisafs-style file protocol between the Sentry (client) and the gofer (server).
//!
//! - [`message`]: the messages ([`Request`], [`Response`], one `*Req`/`*Resp` struct
//!   per message), [`Stat`], [`NodeId`] / [`HandleId`] and the size limits.
//! - [`codec`]: the only place that knows the wire encoding (bincode 2 with a byte limit,
//!   behind a fixed 16-byte header).
//! - transport: framing on a `SOCK_SEQPACKET` socket, host fds via `SCM_RIGHTS`
//!   ([`socketpair`] creates a connected pair).
//! - [`Client`]: blocking, `Send + Sync`, many calls in flight from many threads,
//!   matched by request id; a dead peer fails every pending and later call.
//! - [`Dispatcher`] / [`Server`]: implement one method per message, run the loop.
//!
//! Nodes and open handles are referenced by `u64` ids handed out by the server and
//! never reused. Errors are Linux errnos ([`Errno`], `linux-abi`'s, re-exported).
//!
//! ```
//! use lisafs_proto::*;
//!
//! struct Root;
//! impl Dispatcher for Root {
//!     fn mount(&self, _req: MountReq) -> HandlerResult<MountResp> {
//!         let stat = Stat { mode: libc::S_IFDIR | 0o755, ..Stat::default() };
//!         Ok(MountResp { root: Inode { id: NodeId(1), stat }, max_payload: MAX_PAYLOAD as u32 })
//!     }
//!     fn fstat(&self, req: FStatReq) -> HandlerResult<FStatResp> {
//!         if req.node != NodeId(1) { return Err(Errno::EBADF); }
//!         Ok(FStatResp { stat: Stat { mode: libc::S_IFDIR | 0o755, ..Stat::default() } })
//!     }
//! }
//!
//! let (client_sock, server_sock) = socketpair().unwrap();
//! let server = std::thread::spawn(move || Server::new(server_sock).serve(&Root, 2));
//! let client = Client::new(client_sock).unwrap();
//! let root = client.mount(b"").unwrap().root;
//! assert!(client.fstat(root.id).unwrap().is_dir());
//! assert_eq!(client.fstat(NodeId(7)), Err(ClientError::Errno(Errno::EBADF)));
//! assert_eq!(client.walk(root.id, &["etc"]), Err(ClientError::Errno(Errno::ENOSYS)));
//! drop(client);
//! server.join().unwrap().unwrap();
//! ```

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod client;
pub mod codec;
mod error;
pub mod message;
mod server;
#[allow(unsafe_code)]
// The crate's only host FFI (`recvmsg`/`SCM_RIGHTS`); each block has its `// SAFETY:` line.
mod transport;

pub use client::Client;
pub use error::{ClientError, ProtoError, ServerError};
pub use message::*;
pub use server::{Dispatcher, HandlerResult, Server, dispatch};
pub use transport::{RECORD_SIZE, socketpair};

/// The workspace's one errno type, which handlers return and errors carry.
pub use linux_abi::Errno;

// The client and server are shared between threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
    assert_send_sync::<Server>();
};
