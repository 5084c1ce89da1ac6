//! Unix domain sockets (`AF_UNIX`): stream, datagram and sequenced-packet.
//!
//! Every socket owns a receive [`Buffer`] (a queue of [`Message`]s with a byte capacity)
//! and a [`WaitQueue`](crate::waiter::WaitQueue). A connection links two sockets crosswise: each one's send buffer
//! is the other's receive buffer. Buffers hold no sockets (only a weak link to the
//! reader's queue and a queue of their own for "space freed"), so there are no reference
//! cycles: closing a socket closes the reading side of its buffer (the peer's sends fail
//! with `EPIPE`) and the writing side of its send buffer (the peer reads end of file).
//!
//! - `connect` on a listening socket makes the server-side socket at once and queues it
//!   on the listener's backlog (`accept` takes it), as Linux does.
//! - Datagrams (`SOCK_DGRAM`) go to the receive buffer of the addressed (or connected)
//!   socket, tagged with the sender's address.
//! - Messages carry file descriptions (`SCM_RIGHTS`) and the sender's credentials
//!   (`SCM_CREDENTIALS`, delivered when the receiver set `SO_PASSCRED`). On a stream,
//!   a read never merges data across a message carrying descriptions.
//! - Names are abstract (first byte NUL) or filesystem paths; the syscall layer makes the
//!   socket inode for a path and binds under its (device, inode) [`Key`].
//!
//! The module is independent of tasks: credentials come in as [`Ucred`], descriptions as
//! [`OpenFile`](crate::fs::OpenFile)s, and user memory is copied by the syscall layer.

mod buffer;
mod names;
mod unix;

pub use buffer::{Buffer, Message};
pub use names::{Key, SocketNames};
pub use unix::{SocketFile, UnixSocket};

/// `SOCK_STREAM`.
pub const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`.
pub const SOCK_DGRAM: i32 = 2;
/// `SOCK_SEQPACKET`.
pub const SOCK_SEQPACKET: i32 = 5;

/// `MSG_OOB`.
#[allow(dead_code)] // ABI value, named for completeness.
pub const MSG_OOB: u32 = 1;
/// `MSG_PEEK`.
pub const MSG_PEEK: u32 = 2;
/// `MSG_CTRUNC`.
pub const MSG_CTRUNC: u32 = 8;
/// `MSG_TRUNC`.
pub const MSG_TRUNC: u32 = 0x20;
/// `MSG_DONTWAIT`.
pub const MSG_DONTWAIT: u32 = 0x40;
/// `MSG_EOR`.
#[allow(dead_code)] // ABI value, named for completeness.
pub const MSG_EOR: u32 = 0x80;
/// `MSG_WAITALL`.
pub const MSG_WAITALL: u32 = 0x100;
/// `MSG_NOSIGNAL`.
pub const MSG_NOSIGNAL: u32 = 0x4000;
/// `MSG_CMSG_CLOEXEC`.
pub const MSG_CMSG_CLOEXEC: u32 = 0x4000_0000;

/// `SHUT_RD`.
pub const SHUT_RD: i32 = 0;
/// `SHUT_WR`.
pub const SHUT_WR: i32 = 1;
/// `SHUT_RDWR`.
pub const SHUT_RDWR: i32 = 2;

/// Default `SO_SNDBUF`/`SO_RCVBUF`.
pub const DEFAULT_BUF: usize = 212_992;
/// Smallest buffer size accepted by `setsockopt`.
const MIN_BUF: usize = 4608;

/// Credentials of a process (`struct ucred`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ucred {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}
