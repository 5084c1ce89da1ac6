//! Error types at the crate boundary: decoding/framing errors ([`ProtoError`]), client
//! call errors ([`ClientError`]) and server loop errors ([`ServerError`]).

use linux_abi::Errno;

/// A message or frame could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The payload could not be decoded.
    #[error("malformed payload: {0}")]
    Decode(String),
    /// The payload could not be encoded.
    #[error("cannot encode payload: {0}")]
    Encode(String),
    /// Bytes were left over after decoding the payload.
    #[error("{0} trailing bytes after payload")]
    TrailingBytes(usize),
    /// The message id is not known.
    #[error("unknown message id {0}")]
    UnknownMessage(u16),
    /// The payload exceeds the maximum message size.
    #[error("message of {0} bytes is too large")]
    TooLarge(usize),
    /// The frame is shorter than its header or its declared length.
    #[error("truncated frame")]
    Truncated,
    /// The frame carries more bytes than its header declares.
    #[error("frame length does not match its header")]
    LengthMismatch,
    /// A reserved header field is not zero.
    #[error("malformed frame header")]
    BadHeader,
    /// Too many file descriptors (or descriptors where none belong) came with a message.
    #[error("unexpected or too many file descriptors")]
    BadFds,
    /// A reply does not match its request.
    #[error("unexpected reply message id {0}")]
    UnexpectedReply(u16),
}

impl ProtoError {
    /// The errno an error reply carries for this error.
    pub fn errno(&self) -> Errno {
        match self {
            ProtoError::UnknownMessage(_) => Errno::ENOSYS,
            ProtoError::TooLarge(_) => Errno::EMSGSIZE,
            _ => Errno::EINVAL,
        }
    }
}

/// A client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server replied with an error.
    #[error("server error: {0}")]
    Errno(Errno),
    /// The connection is closed (peer exited, EOF, reset, or the client shut down).
    #[error("connection closed")]
    Disconnected,
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(Errno),
    /// The peer violated the protocol, or the request cannot be encoded.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtoError),
}

impl ClientError {
    /// The errno to report to an application for this error: the server's errno, or
    /// `EIO` for transport and protocol failures.
    pub fn errno(&self) -> Errno {
        match self {
            ClientError::Errno(e) => *e,
            ClientError::Protocol(ProtoError::TooLarge(_)) => Errno::EMSGSIZE,
            _ => Errno::EIO,
        }
    }
}

/// The server loop stopped because of an error (a clean EOF is not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// A socket operation failed.
    #[error("socket error: {0}")]
    Io(Errno),
    /// The client sent a frame that broke the framing; the connection was closed.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtoError),
}
