//! Terminals of containers and `exec`'d processes (`process.terminal`, `exec --tty`):
//! a pseudo-terminal pair on the host whose replica becomes the process's stdio and whose
//! master goes to the caller over `--console-socket`, as runc does: one message on a
//! connected Unix stream socket carrying the master descriptor (`SCM_RIGHTS`) and, as
//! data, a name for it. containerd's shim and podman's conmon receive it there.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::pty::{OpenptyResult, Winsize, openpty};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};

use crate::error::RunscError;

/// A host pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    /// The controlling side, for whoever drives the terminal.
    pub master: OwnedFd,
    /// The terminal the process gets as stdin, stdout and stderr.
    pub replica: OwnedFd,
}

impl Pty {
    /// A new pair, `size` (`process.consoleSize`: rows, columns) applied when given.
    pub fn open(size: Option<(u16, u16)>) -> Result<Pty, RunscError> {
        let ws = size.map(|(rows, cols)| Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        });
        let OpenptyResult { master, slave } =
            openpty(ws.as_ref(), None).map_err(|e| RunscError::nix("openpty", e))?;
        for fd in [&master, &slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(|e| RunscError::nix("fcntl(FD_CLOEXEC)", e))?;
        }
        Ok(Pty {
            master,
            replica: slave,
        })
    }

    /// Three copies of the replica, for stdin, stdout and stderr.
    pub fn stdio(&self) -> Result<[OwnedFd; 3], RunscError> {
        let dup = || {
            self.replica
                .try_clone()
                .map_err(|e| RunscError::host("dup the terminal", e))
        };
        Ok([dup()?, dup()?, dup()?])
    }

    /// Sends the master end over the Unix stream socket at `socket`.
    pub fn send_master(&self, socket: &Path) -> Result<(), RunscError> {
        let what = |e: std::io::Error| {
            RunscError::Runtime(format!("console socket {}: {e}", socket.display()))
        };
        let stream = std::os::unix::net::UnixStream::connect(socket).map_err(what)?;
        let fds = [self.master.as_raw_fd()];
        let name = b"/dev/ptmx";
        sendmsg::<()>(
            stream.as_raw_fd(),
            &[IoSlice::new(name)],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| what(e.into()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;

    #[test]
    fn the_master_arrives_over_the_console_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let pty = Pty::open(Some((24, 80))).unwrap();
        pty.send_master(&path).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("a descriptor");
        let master = crate::host::own_new_fd(fd);
        // What is written on the received master comes out of the replica.
        std::fs::File::from(master).write_all(b"hi\n").unwrap();
        let [mut r, ..] = pty.stdio().unwrap().map(std::fs::File::from);
        let mut got = [0u8; 3];
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi\n");
    }
}
