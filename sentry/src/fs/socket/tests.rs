use super::*;

fn cred() -> Ucred {
    Ucred {
        pid: 1,
        uid: 1000,
        gid: 100,
    }
}

/// Autobind names count per kernel: the first autobound socket of each of two kernels
/// gets the same name, the next one of a kernel a new one, and a bound socket's
/// second autobind is `EINVAL`.
#[test]
fn autobind_names_are_per_kernel() {
    let (one, two) = (Arc::default(), Arc::default());
    let a = UnixSocket::new(SOCK_DGRAM, cred(), &one).unwrap();
    let b = UnixSocket::new(SOCK_DGRAM, cred(), &two).unwrap();
    let c = UnixSocket::new(SOCK_DGRAM, cred(), &one).unwrap();
    for s in [&a, &b, &c] {
        s.autobind().unwrap();
    }
    assert_eq!(a.name(), Some(b"\x0000000".to_vec()));
    assert_eq!(b.name(), a.name(), "the other kernel counts on its own");
    assert_eq!(c.name(), Some(b"\x0000001".to_vec()));
    assert_eq!(a.autobind(), Err(Errno::EINVAL));
}

#[test]
fn stream_pair_transfers_and_hangs_up() {
    let names = Arc::new(SocketNames::default());
    let (a, b) = UnixSocket::pair(SOCK_STREAM, cred(), &names).unwrap();
    assert_eq!(a.send(b"hello", vec![], cred(), None, 0), Ok(5));
    assert_eq!(a.send(b" world", vec![], cred(), None, 0), Ok(6));
    let r = b.recv(64, MSG_PEEK).unwrap();
    assert_eq!(r.data, b"hello world");
    let r = b.recv(3, 0).unwrap();
    assert_eq!(r.data, b"hel");
    assert_eq!(b.recv(64, 0).unwrap().data, b"lo world");
    assert_eq!(b.recv(64, MSG_DONTWAIT).err(), Some(Errno::EAGAIN));
    assert_eq!(b.peer_cred(), Some(cred()));
    a.shutdown(SHUT_WR).unwrap();
    assert!(b.recv(64, 0).unwrap().data.is_empty(), "EOF after SHUT_WR");
    assert_eq!(a.send(b"x", vec![], cred(), None, 0), Err(Errno::EPIPE));
    drop(a);
    assert_eq!(b.send(b"x", vec![], cred(), None, 0), Err(Errno::EPIPE));
    assert_ne!(b.poll_events() & events::POLLHUP, 0);
}

#[test]
fn seqpacket_and_dgram_keep_boundaries() {
    let names = Arc::new(SocketNames::default());
    for ty in [SOCK_SEQPACKET, SOCK_DGRAM] {
        let (a, b) = UnixSocket::pair(ty, cred(), &names).unwrap();
        a.send(b"one", vec![], cred(), None, 0).unwrap();
        a.send(b"second", vec![], cred(), None, 0).unwrap();
        let r = b.recv(2, 0).unwrap();
        assert_eq!((r.data.as_slice(), r.full_len), (&b"on"[..], 3));
        assert_eq!(b.recv(64, 0).unwrap().data, b"second");
    }
}

#[test]
fn listen_connect_accept_by_name() {
    let names = Arc::new(SocketNames::default());
    let srv = UnixSocket::new(SOCK_STREAM, cred(), &names).unwrap();
    let key = Key::Abstract(b"sentry-unit-test".to_vec());
    srv.bind(b"\0sentry-unit-test".to_vec(), key.clone())
        .unwrap();
    let other = UnixSocket::new(SOCK_STREAM, cred(), &names).unwrap();
    assert_eq!(
        other.bind(b"x".to_vec(), key.clone()),
        Err(Errno::EADDRINUSE)
    );
    srv.listen(4).unwrap();
    let cli = UnixSocket::new(SOCK_STREAM, cred(), &names).unwrap();
    assert_eq!(srv.accept(true).err(), Some(Errno::EAGAIN));
    cli.connect(&names.lookup(&key).unwrap(), false).unwrap();
    assert_ne!(srv.poll_events() & events::POLLIN, 0);
    let conn = srv.accept(false).unwrap();
    cli.send(b"ping", vec![], cred(), None, 0).unwrap();
    assert_eq!(conn.recv(8, 0).unwrap().data, b"ping");
    assert_eq!(
        cli.peer_name().unwrap(),
        Some(b"\0sentry-unit-test".to_vec())
    );
    drop(srv);
    assert!(names.lookup(&key).is_none(), "name released");
}

#[test]
fn dgram_sendto_names_the_sender() {
    let names = Arc::new(SocketNames::default());
    let rx = UnixSocket::new(SOCK_DGRAM, cred(), &names).unwrap();
    let key = Key::Abstract(b"sentry-unit-dgram".to_vec());
    rx.bind(b"\0sentry-unit-dgram".to_vec(), key).unwrap();
    let tx = UnixSocket::new(SOCK_DGRAM, cred(), &names).unwrap();
    tx.bind(
        b"\0sentry-unit-dgram-tx".to_vec(),
        Key::Abstract(b"sentry-unit-dgram-tx".to_vec()),
    )
    .unwrap();
    tx.send(b"d", vec![], cred(), Some(&rx), 0).unwrap();
    rx.set_passcred(true);
    let r = rx.recv(8, 0).unwrap();
    assert_eq!(r.from, Some(b"\0sentry-unit-dgram-tx".to_vec()));
    assert_eq!(r.creds, Some(cred()));
    assert_eq!(tx.send(b"d", vec![], cred(), None, 0), Err(Errno::ENOTCONN));
}
