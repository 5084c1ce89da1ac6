//! The control protocol between the OCI commands and a running sandbox.
//!
//! Transport: `SOCK_SEQPACKET` Unix sockets, one JSON message per packet, descriptors
//! (an exec'd process's stdio, a client connection) as `SCM_RIGHTS` on the same packet.
//! A client connects to `control.sock` in the container's state directory; the supervisor
//! accepts and hands the connection to the Sentry, which serves it on a thread of its own.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
    connect, recvmsg, sendmsg, socket,
};
use serde::{Deserialize, Serialize};

/// Largest message accepted (a process spec with a big environment fits easily).
pub const MAX_MESSAGE: usize = 1 << 20;
/// Most descriptors accepted on one message (a pod container's creation carries its
/// stdio, its root's Gofer and one Gofer per bind mount).
pub const MAX_FDS: usize = 64;

/// A process to start in the sandbox, as the Sentry needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessArgs {
    /// argv; `argv[0]` is the program.
    pub argv: Vec<String>,
    /// `K=V` strings.
    pub envp: Vec<String>,
    /// Absolute working directory.
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    #[serde(default)]
    pub groups: Vec<u32>,
    /// The file mode creation mask (022 when absent).
    #[serde(default)]
    pub umask: Option<u32>,
    /// Resource limits: `(RLIMIT_* number, soft, hard)`.
    #[serde(default)]
    pub rlimits: Vec<(u32, u64, u64)>,
    /// Capability sets (`None`: the defaults of the uid).
    #[serde(default)]
    pub caps: Option<Caps>,
    /// `noNewPrivileges`.
    #[serde(default)]
    pub no_new_privs: bool,
}

/// The five capability sets, as bit masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps {
    /// Effective.
    pub effective: u64,
    /// Permitted.
    pub permitted: u64,
    /// Inheritable.
    pub inheritable: u64,
    /// Bounding.
    pub bounding: u64,
    /// Ambient.
    pub ambient: u64,
}

/// A request to the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run the container's first process.
    Start,
    /// Where the first process is.
    State,
    /// Start another process; its stdin, stdout and stderr ride on the message.
    Exec {
        /// What to run.
        process: ProcessArgs,
    },
    /// Wait for a process (1, or one started by `Exec`) to end.
    Wait {
        /// Its pid inside the sandbox.
        pid: i32,
    },
    /// A signal the terminal of process `pid` generated (a key typed into it, a resize),
    /// for its foreground process group.
    TerminalSignal {
        /// The process whose controlling terminal it is.
        pid: i32,
        /// The signal number.
        signal: i32,
    },
    /// Send a signal.
    Signal {
        /// Its pid inside the sandbox (ignored with `all`).
        pid: i32,
        /// The signal number.
        signal: i32,
        /// Every process of the sandbox.
        all: bool,
    },
    /// List the processes.
    Ps,
    /// Freeze every process.
    Pause,
    /// Thaw them.
    Resume,
    /// Serve the connection that rides on this message (one descriptor) for container
    /// `container` of the pod: its requests then act on that container, and `pid` 1 in
    /// them names the container's first process. Sent by a pod container's supervisor.
    Attach {
        /// The container's id.
        container: String,
    },
    /// On an attached connection: add the connection's container to the pod and load its
    /// first process. The descriptors are its stdin, stdout and stderr, the Gofer of its
    /// root, then one Gofer per bind mount, in the order of `boot.mounts`.
    Create {
        /// Its boot description (`bundle::SandboxBoot`, as JSON).
        boot: serde_json::Value,
    },
    /// On an attached connection: forget the container (its processes are killed, its
    /// file system tree released).
    Destroy,
}

/// The state of the container's first process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitStatus {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Running, frozen by `pause`.
    Paused,
    /// Ended.
    Stopped,
}

/// One process, for `ps` and `events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    /// Pid inside the sandbox.
    pub pid: i32,
    /// Parent pid inside the sandbox.
    pub ppid: i32,
    /// Real uid.
    pub uid: u32,
    /// Command name.
    pub comm: String,
    /// Threads.
    pub threads: usize,
    /// CPU time of application code, ns.
    pub cpu_ns: u64,
    /// Resident bytes.
    pub rss: u64,
}

/// A reply from the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// Failed, with a one-line reason.
    Error {
        /// The reason.
        message: String,
    },
    /// The sandbox is ready: its first process is loaded.
    Ready {
        /// Its pid inside the sandbox.
        pid: i32,
    },
    /// A process was started.
    Pid {
        /// Its pid inside the sandbox.
        pid: i32,
    },
    /// A process ended with this shell-style status (code, or 128+N).
    Exited {
        /// The status.
        status: i32,
    },
    /// The first process's state.
    State {
        /// The status.
        status: InitStatus,
        /// The exit status when stopped.
        exit: Option<i32>,
    },
    /// The processes.
    Processes {
        /// The list.
        procs: Vec<Proc>,
    },
}

/// Sends `msg` with `fds` attached as one packet.
pub fn send<T: Serialize>(sock: BorrowedFd<'_>, msg: &T, fds: &[RawFd]) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    if bytes.len() > MAX_MESSAGE {
        return Err(std::io::Error::other("control message too large"));
    }
    let iov = [IoSlice::new(&bytes)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &cmsg };
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one packet: its payload and descriptors; `None` at end of stream.
pub fn recv_raw(sock: BorrowedFd<'_>) -> std::io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let r = recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        );
        let msg = match r {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    for fd in raw {
                        // The kernel just installed `fd` in our table for this message.
                        fds.push(crate::host::own_new_fd(fd));
                    }
                }
            }
        }
        let n = msg.bytes;
        let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        if truncated {
            return Err(std::io::Error::other("control message too large"));
        }
        buf.truncate(n);
        return Ok(Some((buf, fds)));
    }
}

/// Receives and parses one message; `None` at end of stream.
pub fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
) -> std::io::Result<Option<(T, Vec<OwnedFd>)>> {
    let Some((bytes, fds)) = recv_raw(sock)? else {
        return Ok(None);
    };
    let msg = serde_json::from_slice(&bytes)
        .map_err(|e| std::io::Error::other(format!("bad control message: {e}")))?;
    Ok(Some((msg, fds)))
}

/// A new `SOCK_SEQPACKET` Unix socket (close-on-exec).
pub fn seqpacket() -> std::io::Result<OwnedFd> {
    Ok(socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// Connects to the control socket at `path`.
pub fn connect_to(path: &Path) -> std::io::Result<OwnedFd> {
    let sock = seqpacket()?;
    let addr = UnixAddr::new(path)?;
    connect(sock.as_raw_fd(), &addr)?;
    Ok(sock)
}

/// Sends `req` on `sock` and reads the reply.
pub fn call(sock: BorrowedFd<'_>, req: &Request, fds: &[RawFd]) -> std::io::Result<Reply> {
    send(sock, req, fds)?;
    match recv::<Reply>(sock)? {
        Some((r, _)) => Ok(r),
        None => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the sandbox closed the connection",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn messages_and_descriptors_cross_a_socketpair() {
        let (a, b) = nix::sys::socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let req = Request::Exec {
            process: ProcessArgs {
                argv: vec!["/bin/true".into()],
                cwd: "/".into(),
                ..Default::default()
            },
        };
        let devnull = std::fs::File::open("/dev/null").expect("open");
        send(a.as_fd(), &req, &[devnull.as_raw_fd()]).expect("send");
        let (got, fds) = recv::<Request>(b.as_fd()).expect("recv").expect("message");
        assert_eq!(got, req);
        assert_eq!(fds.len(), 1);
        drop(a);
        assert!(recv::<Request>(b.as_fd()).expect("eof").is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let (a, b) = nix::sys::socket::socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        nix::unistd::write(&a, b"\x00{not json").expect("write");
        assert!(recv::<Request>(b.as_fd()).is_err());
    }
}
