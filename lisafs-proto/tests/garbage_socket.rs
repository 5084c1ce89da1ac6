//! Hostile peers on a real socket: garbage requests to a `Server`, garbage replies to a
//! `Client`. Neither may panic or hang; bad messages get error replies, broken framing
//! closes the connection.

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use common::MemFs;
use lisafs_proto::codec::{self, HEADER_SIZE, Header};
use lisafs_proto::*;
use nix::sys::socket::{ControlMessage, MsgFlags, Shutdown, recv, sendmsg, shutdown};

fn send_raw(fd: &OwnedFd, bytes: &[u8], fds: &[OwnedFd]) {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(
        fd.as_raw_fd(),
        &[std::io::IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::empty(),
        None,
    )
    .unwrap();
}

/// Receives one record; `None` at end of stream.
fn recv_raw(fd: &OwnedFd) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; RECORD_SIZE];
    // A peer that closes with our records still unread resets the connection.
    let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
        Err(nix::errno::Errno::ECONNRESET) => return None,
        r => r.unwrap(),
    };
    if n == 0 {
        return None;
    }
    buf.truncate(n);
    Some(buf)
}

fn reply_errno(rec: &[u8]) -> (u64, Option<i32>) {
    let (h, resp) = codec::decode_response_frame(rec).unwrap();
    match resp {
        Response::Error(e) => (h.request_id, Some(e.errno)),
        _ => (h.request_id, None),
    }
}

fn serve_memfs() -> (OwnedFd, JoinHandle<Result<(), ServerError>>) {
    let (c, s) = socketpair().unwrap();
    let fs = Arc::new(MemFs::new(1));
    let h = std::thread::spawn(move || Server::new(s).serve(&*fs, 2));
    (c, h)
}

fn frame(id: u64, msg: u16, payload: &[u8]) -> Vec<u8> {
    codec::encode_frame(id, msg, payload).unwrap()
}

fn mount_frame(id: u64) -> Vec<u8> {
    let req = Request::Mount(MountReq::default());
    frame(id, MsgId::Mount as u16, &req.encode().unwrap())
}

/// Checks the connection still works by mounting.
fn assert_alive(c: &OwnedFd, id: u64) {
    send_raw(c, &mount_frame(id), &[]);
    let rec = recv_raw(c).expect("reply");
    assert_eq!(reply_errno(&rec), (id, None));
}

#[test]
fn unknown_message_ids_get_enosys_and_the_connection_survives() {
    let (c, h) = serve_memfs();
    send_raw(&c, &frame(5, 999, &[1, 2, 3]), &[]);
    assert_eq!(reply_errno(&recv_raw(&c).unwrap()), (5, Some(libc::ENOSYS)));
    // The error reply id is not a request.
    send_raw(&c, &frame(6, MsgId::Error as u16, &[2]), &[]);
    assert_eq!(reply_errno(&recv_raw(&c).unwrap()), (6, Some(libc::ENOSYS)));
    assert_alive(&c, 7);
    drop(c);
    assert_eq!(h.join().unwrap(), Ok(()));
}

#[test]
fn bad_payloads_get_einval_and_the_connection_survives() {
    let (c, h) = serve_memfs();
    // Truncated Walk payload.
    send_raw(&c, &frame(1, MsgId::Walk as u16, &[1, 5, 3, b'a']), &[]);
    assert_eq!(reply_errno(&recv_raw(&c).unwrap()), (1, Some(libc::EINVAL)));
    // Trailing bytes.
    send_raw(&c, &frame(2, MsgId::FStat as u16, &[1, 0]), &[]);
    assert_eq!(reply_errno(&recv_raw(&c).unwrap()), (2, Some(libc::EINVAL)));
    // Empty payload for a message with fields.
    send_raw(&c, &frame(3, MsgId::PRead as u16, &[]), &[]);
    assert_eq!(reply_errno(&recv_raw(&c).unwrap()), (3, Some(libc::EINVAL)));
    assert_alive(&c, 4);
    drop(c);
    assert_eq!(h.join().unwrap(), Ok(()));
}

fn nonblocking_pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

/// Every copy of the pipe's write end is closed (reading gives EOF, not EAGAIN).
fn all_writers_closed(r: &OwnedFd) -> bool {
    let mut b = [0u8; 1];
    matches!(nix::unistd::read(r.as_fd(), &mut b), Ok(0))
}

#[test]
fn fds_sent_with_requests_are_refused_and_closed() {
    let (c, h) = serve_memfs();
    for (id, count) in [(1u64, 1usize), (2, MAX_FDS + 3), (3, 64)] {
        let (r, w) = nonblocking_pipe();
        let fds: Vec<OwnedFd> = (0..count).map(|_| w.try_clone().unwrap()).collect();
        drop(w);
        // `count` 64 overflows the server's control buffer (MSG_CTRUNC).
        send_raw(&c, &mount_frame(id), &fds);
        drop(fds);
        assert_eq!(
            reply_errno(&recv_raw(&c).unwrap()),
            (id, Some(libc::EINVAL))
        );
        assert!(all_writers_closed(&r), "server kept some of {count} fds");
    }
    assert_alive(&c, 10);
    drop(c);
    assert_eq!(h.join().unwrap(), Ok(()));
}

#[test]
fn short_records_close_the_connection() {
    let (c, h) = serve_memfs();
    send_raw(&c, &[1, 2, 3], &[]);
    assert_eq!(recv_raw(&c), None);
    assert_eq!(
        h.join().unwrap(),
        Err(ServerError::Protocol(ProtoError::Truncated))
    );
}

#[test]
fn oversized_lengths_get_emsgsize_and_close() {
    let (c, h) = serve_memfs();
    let mut hd = Header {
        request_id: 9,
        msg_id: MsgId::PWrite as u16,
        payload_len: 0,
    }
    .encode();
    hd[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    send_raw(&c, &hd, &[]);
    assert_eq!(
        reply_errno(&recv_raw(&c).unwrap()),
        (9, Some(libc::EMSGSIZE))
    );
    assert_eq!(recv_raw(&c), None);
    assert!(matches!(
        h.join().unwrap(),
        Err(ServerError::Protocol(ProtoError::TooLarge(_)))
    ));
}

#[test]
fn records_larger_than_the_record_size_close() {
    let (c, h) = serve_memfs();
    let big = vec![0u8; RECORD_SIZE + 100];
    let f = frame(3, MsgId::PWrite as u16, &big);
    send_raw(&c, &f, &[]);
    // A best-effort error reply may come first; then the connection closes.
    while let Some(rec) = recv_raw(&c) {
        assert_eq!(reply_errno(&rec).1, Some(libc::EMSGSIZE));
    }
    assert!(h.join().unwrap().is_err());
}

#[test]
fn missing_continuation_records_do_not_hang() {
    // The header announces 200 KiB but only the first record arrives, then EOF.
    let (c, h) = serve_memfs();
    let payload = vec![7u8; 200 * 1024];
    let f = frame(4, MsgId::PWrite as u16, &payload);
    send_raw(&c, &f[..RECORD_SIZE], &[]);
    shutdown(c.as_raw_fd(), Shutdown::Write).unwrap();
    while recv_raw(&c).is_some() {}
    assert!(h.join().unwrap().is_err());

    // A short first record that claims more payload is broken framing too.
    let (c, h) = serve_memfs();
    send_raw(&c, &f[..1000], &[]);
    while recv_raw(&c).is_some() {}
    assert_eq!(
        h.join().unwrap(),
        Err(ServerError::Protocol(ProtoError::Truncated))
    );
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_garbage_records_never_panic_or_hang() {
    let mut rng = Rng(42);
    for _ in 0..150 {
        let (c, h) = serve_memfs();
        for _ in 0..1 + rng.below(4) {
            let mut rec = if rng.below(2) == 0 {
                mount_frame(rng.next())
            } else {
                let req = Request::Walk(WalkReq {
                    dir: NodeId(1),
                    names: vec![b"etc".to_vec(); rng.below(4)],
                });
                frame(rng.next(), MsgId::Walk as u16, &req.encode().unwrap())
            };
            for _ in 0..rng.below(6) {
                let i = rng.below(rec.len());
                rec[i] = rng.next() as u8;
            }
            if rng.below(3) == 0 {
                rec.truncate(rng.below(rec.len() + 1));
            }
            if rec.is_empty() {
                rec.push(0);
            }
            // The peer may already have closed the connection.
            let _ = sendmsg::<()>(
                c.as_raw_fd(),
                &[std::io::IoSlice::new(&rec)],
                &[],
                MsgFlags::MSG_NOSIGNAL,
                None,
            );
        }
        shutdown(c.as_raw_fd(), Shutdown::Write).unwrap();
        while let Some(rec) = recv_raw(&c) {
            assert!(codec::decode_response_frame(&rec).is_ok());
        }
        // Ok or a protocol error, but no panic.
        let _ = h.join().expect("server thread must not panic");
    }
}

/// A fake server that answers the first request with `reply(request_header)`.
fn fake_server(
    reply: impl FnOnce(&Header) -> Vec<Vec<u8>> + Send + 'static,
) -> (Client, JoinHandle<()>) {
    let (c, s) = socketpair().unwrap();
    let h = std::thread::spawn(move || {
        let rec = recv_raw(&s).unwrap();
        let hd = Header::decode(&rec[..HEADER_SIZE]).unwrap();
        for r in reply(&hd) {
            send_raw(&s, &r, &[]);
        }
        // Keep the connection open until the client hangs up.
        while recv_raw(&s).is_some() {}
    });
    (Client::new(c).unwrap(), h)
}

#[test]
fn client_rejects_mismatched_and_garbage_replies() {
    // Wrong message id.
    let (client, h) = fake_server(|hd| {
        let p = Response::Close(EmptyResp {}).encode().unwrap();
        vec![frame(hd.request_id, MsgId::Close as u16, &p)]
    });
    assert_eq!(
        client.fstat(NodeId(1)),
        Err(ClientError::Protocol(ProtoError::UnexpectedReply(
            MsgId::Close as u16
        )))
    );
    drop(client);
    h.join().unwrap();

    // Undecodable payload.
    let (client, h) = fake_server(|hd| vec![frame(hd.request_id, hd.msg_id, &[0xff; 3])]);
    assert!(matches!(
        client.fstat(NodeId(1)),
        Err(ClientError::Protocol(ProtoError::Decode(_)))
    ));
    drop(client);
    h.join().unwrap();

    // A reply to an unknown request is dropped; the right one is still delivered.
    let (client, h) = fake_server(|hd| {
        let p = Response::Error(ErrorResp { errno: libc::EROFS })
            .encode()
            .unwrap();
        vec![
            frame(hd.request_id + 100, 0, &p),
            frame(hd.request_id, 0, &p),
        ]
    });
    assert_eq!(
        client.fstat(NodeId(1)),
        Err(ClientError::Errno(Errno::EROFS))
    );
    drop(client);
    h.join().unwrap();

    // Broken framing: every pending and later call fails.
    let (client, h) = fake_server(|_| vec![vec![1, 2, 3]]);
    assert_eq!(
        client.fstat(NodeId(1)),
        Err(ClientError::Protocol(ProtoError::Truncated))
    );
    assert!(client.is_closed());
    assert!(client.fstat(NodeId(1)).is_err());
    drop(client);
    h.join().unwrap();

    // Nonsense errno values become EIO.
    let (client, h) = fake_server(|hd| {
        let p = Response::Error(ErrorResp { errno: -3 }).encode().unwrap();
        vec![frame(hd.request_id, 0, &p)]
    });
    assert_eq!(client.fstat(NodeId(1)), Err(ClientError::Errno(Errno::EIO)));
    drop(client);
    h.join().unwrap();
}
