//! Client and server over a real `SOCK_SEQPACKET` socketpair with the toy `MemFs`.

mod common;

use std::io::Read;
use std::sync::{Arc, Barrier};

use common::{BLOCK_INO, MemFs, RENDEZVOUS_INO, start};
use lisafs_proto::*;

fn root_of(client: &Client) -> Inode {
    client.mount(b"").expect("mount").root
}

#[test]
fn every_operation_works_end_to_end() {
    let fs = Arc::new(MemFs::new(1));
    let (client, _server, h) = start(Arc::clone(&fs), 2);
    let root = root_of(&client);
    assert!(root.stat.is_dir());
    assert_eq!(root.stat.ino, 1);

    // Walk / WalkStat.
    let w = client.walk(root.id, &["etc", "passwd"]).unwrap();
    assert_eq!(w.status, WalkStatus::Complete);
    assert_eq!(w.nodes.len(), 2);
    assert!(w.nodes[0].stat.is_dir());
    assert_eq!(w.nodes[1].stat.size, 11);
    let ws = client.walk_stat(root.id, &["usr", "bin"]).unwrap();
    assert_eq!(ws.status, WalkStatus::Complete);
    assert_eq!(ws.stats.len(), 2);
    assert!(ws.stats[1].is_dir());
    let (etc, passwd) = (w.nodes[0].id, w.nodes[1].id);

    // FStat / SetStat.
    assert_eq!(client.fstat(passwd).unwrap().size, 11);
    let st = client
        .set_stat(SetStatReq {
            node: passwd,
            mode: Some(0o600),
            uid: Some(1000),
            gid: None,
            size: Some(4),
            atime: Some(SetTime::At(Timespec { sec: 5, nsec: 6 })),
            mtime: Some(SetTime::Now),
        })
        .unwrap();
    assert_eq!(st.mode, libc::S_IFREG | 0o600);
    assert_eq!((st.uid, st.gid, st.size), (1000, 0, 4));
    assert_eq!(st.atime, Timespec { sec: 5, nsec: 6 });
    assert_eq!(st.mtime, Timespec { sec: 1, nsec: 0 });
    assert_eq!(
        client.set_stat(SetStatReq {
            node: etc,
            size: Some(0),
            ..SetStatReq::default()
        }),
        Err(ClientError::Errno(Errno::EISDIR))
    );

    // Creation.
    let d = client.mkdir_at(root.id, b"new", 0o700, 5, 6).unwrap();
    assert_eq!(d.stat.mode, libc::S_IFDIR | 0o700);
    assert_eq!((d.stat.uid, d.stat.gid), (5, 6));
    assert_eq!(
        client.mkdir_at(root.id, b"new", 0o700, 5, 6),
        Err(ClientError::Errno(Errno::EEXIST))
    );
    let f = client
        .open_create_at(d.id, b"file", libc::O_RDWR as u32, 0o640, 7, 8)
        .unwrap();
    assert_eq!(f.node.stat.mode, libc::S_IFREG | 0o640);
    assert!(f.fd.is_some());
    assert_eq!(client.pwrite(f.handle, 3, b"abc").unwrap(), 3);
    assert_eq!(client.pread(f.handle, 0, 100).unwrap(), b"\0\0\0abc");
    client.fsync(f.handle, true).unwrap();
    client.fallocate(f.handle, 0, 0, 10).unwrap();
    assert_eq!(client.fstat(f.node.id).unwrap().size, 10);
    let n = client
        .mknod_at(d.id, b"null", libc::S_IFCHR | 0o666, 0x103, 0, 0)
        .unwrap();
    assert_eq!(n.stat.rdev, 0x103);
    assert_eq!(n.stat.file_type(), libc::S_IFCHR);
    let s = client.symlink_at(d.id, b"sl", b"../etc", 0, 0).unwrap();
    assert!(s.stat.is_symlink());
    assert_eq!(client.read_link_at(s.id).unwrap(), b"../etc");
    assert_eq!(
        client.read_link_at(d.id),
        Err(ClientError::Errno(Errno::EINVAL))
    );
    let l = client.link_at(d.id, b"hard", f.node.id).unwrap();
    assert_eq!(l.stat.ino, f.node.stat.ino);
    assert_eq!(l.stat.nlink, 2);

    // Getdents64 in pages.
    let dir = client.open_at(d.id, libc::O_RDONLY as u32).unwrap();
    let mut names = Vec::new();
    let mut off = 0;
    loop {
        // Room for about one entry per call.
        let ents = client.getdents64(dir.handle, off, 32).unwrap();
        if ents.is_empty() {
            break;
        }
        off = ents.last().unwrap().off;
        names.extend(ents.into_iter().map(|e| (e.name, e.kind)));
    }
    assert_eq!(
        names,
        vec![
            (b"file".to_vec(), libc::DT_REG),
            (b"hard".to_vec(), libc::DT_REG),
            (b"null".to_vec(), libc::DT_CHR),
            (b"sl".to_vec(), libc::DT_LNK),
        ]
    );

    // Rename and unlink.
    client
        .rename_at(d.id, b"hard", root.id, b"moved", 0)
        .unwrap();
    let w2 = client.walk_stat(root.id, &["moved"]).unwrap();
    assert_eq!(w2.status, WalkStatus::Complete);
    assert_eq!(
        client.unlink_at(root.id, b"new", 0),
        Err(ClientError::Errno(Errno::EISDIR))
    );
    assert_eq!(
        client.unlink_at(root.id, b"new", libc::AT_REMOVEDIR as u32),
        Err(ClientError::Errno(Errno::ENOTEMPTY))
    );
    for name in [&b"file"[..], b"null", b"sl"] {
        client.unlink_at(d.id, name, 0).unwrap();
    }
    client
        .unlink_at(root.id, b"new", libc::AT_REMOVEDIR as u32)
        .unwrap();
    assert_eq!(
        client.walk_stat(root.id, &["new"]).unwrap().status,
        WalkStatus::NotFound
    );

    // StatFS.
    let sfs = client.fstatfs(root.id).unwrap();
    assert_eq!((sfs.fs_type, sfs.name_length), (0x0102_1994, 255));

    // Close everything in one batch; the ids are gone afterwards.
    assert!(fs.live_nodes() > 0);
    let nodes = [root.id, etc, passwd, d.id, f.node.id, n.id, s.id, l.id];
    client.close(&nodes, &[f.handle, dir.handle]).unwrap();
    assert_eq!(fs.live_nodes(), 0);
    assert_eq!(fs.live_handles(), 0);
    assert_eq!(client.fstat(passwd), Err(ClientError::Errno(Errno::EBADF)));

    drop(client);
    assert_eq!(h.join().unwrap(), Ok(()));
}

#[test]
fn walk_stops_at_missing_component_and_at_symlink() {
    let fs = Arc::new(MemFs::new(1));
    let (client, _server, _h) = start(fs, 1);
    let root = root_of(&client);
    let w = client.walk(root.id, &["usr", "nope", "x"]).unwrap();
    assert_eq!(w.status, WalkStatus::NotFound);
    assert_eq!(w.nodes.len(), 1, "index of the missing component");
    let w = client.walk(root.id, &["lnk", "passwd"]).unwrap();
    assert_eq!(w.status, WalkStatus::Symlink);
    assert_eq!(w.nodes.len(), 1);
    assert!(w.nodes[0].stat.is_symlink());
    assert_eq!(client.read_link_at(w.nodes[0].id).unwrap(), b"/etc");
    let ws = client.walk_stat(root.id, &["lnk", "passwd"]).unwrap();
    assert_eq!(ws.status, WalkStatus::Symlink);
    assert_eq!(ws.stats.len(), 1);
    // Names the server rejects and walks through a file.
    assert_eq!(
        client.walk(root.id, &[".."]),
        Err(ClientError::Errno(Errno::EINVAL))
    );
    assert_eq!(
        client.walk(root.id, &["etc", "passwd", "x"]),
        Err(ClientError::Errno(Errno::ENOTDIR))
    );
    let empty: [&str; 0] = [];
    let w = client.walk(root.id, &empty).unwrap();
    assert_eq!((w.status, w.nodes.len()), (WalkStatus::Complete, 0));
}

#[test]
fn large_reads_and_writes_span_several_records() {
    let fs = Arc::new(MemFs::new(1));
    let (client, _server, _h) = start(fs, 2);
    let root = root_of(&client);
    let big = client.walk(root.id, &["big"]).unwrap().nodes[0];
    let o = client.open_at(big.id, libc::O_RDWR as u32).unwrap();
    // A full 1 MiB read at an odd offset.
    let data = client.pread(o.handle, 7, MAX_IO_SIZE).unwrap();
    assert_eq!(data.len(), MAX_IO_SIZE as usize);
    assert!(
        data.iter()
            .enumerate()
            .all(|(i, &b)| b == ((i + 7) % 251) as u8)
    );
    // A larger request is clamped to MAX_IO_SIZE.
    assert_eq!(
        client.pread(o.handle, 0, u32::MAX).unwrap().len(),
        MAX_IO_SIZE as usize
    );
    // Reads at the end are short.
    assert_eq!(client.pread(o.handle, (2 << 20) - 3, 100).unwrap().len(), 3);
    // A write larger than MAX_IO_SIZE is short.
    let payload: Vec<u8> = (0..MAX_IO_SIZE as usize + 100)
        .map(|i| (i % 13) as u8)
        .collect();
    let n = client.pwrite(o.handle, 1, &payload).unwrap();
    assert_eq!(n, MAX_IO_SIZE as u64);
    let back = client.pread(o.handle, 1, MAX_IO_SIZE).unwrap();
    assert_eq!(back, payload[..MAX_IO_SIZE as usize]);
}

#[test]
fn open_donates_a_readable_host_fd() {
    let fs = Arc::new(MemFs::new(1));
    let (client, _server, _h) = start(fs, 1);
    let root = root_of(&client);
    let passwd = client.walk(root.id, &["etc", "passwd"]).unwrap().nodes[1];
    let opened = client.open_at(passwd.id, libc::O_RDONLY as u32).unwrap();
    let fd = opened.fd.expect("donated fd");
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    assert_eq!(s, "root:x:0:0\n");
    // Many opens from several threads: each gets its own working fd.
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..25 {
                    let o = client.open_at(root.id, 0).unwrap();
                    let mut v = Vec::new();
                    std::fs::File::from(o.fd.unwrap())
                        .read_to_end(&mut v)
                        .unwrap();
                    assert_eq!(v, b"hello through a pipe");
                    client.close(&[], &[o.handle]).unwrap();
                }
            });
        }
    });
}

#[test]
fn several_calls_are_in_flight_at_once() {
    const N: usize = 4;
    let fs = Arc::new(MemFs::new(N));
    let (client, _server, _h) = start(fs, N);
    // Each FStat(RENDEZVOUS) only returns once N of them are inside the server at the
    // same time, which needs N requests in flight on one client.
    let barrier = Barrier::new(N);
    std::thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                barrier.wait();
                let st = client.fstat(NodeId(RENDEZVOUS_INO)).unwrap();
                assert_eq!(st.ino, RENDEZVOUS_INO);
            });
        }
    });
}

#[test]
fn many_threads_get_their_own_replies() {
    let fs = Arc::new(MemFs::new(1));
    let (client, _server, _h) = start(fs, 3);
    let root = root_of(&client);
    let big = client.walk(root.id, &["big"]).unwrap().nodes[0];
    let h = client.open_at(big.id, 0).unwrap().handle;
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let client = &client;
            s.spawn(move || {
                for i in 0..150u64 {
                    let off = (t * 1000 + i * 7) % (1 << 20);
                    let len = 1 + ((t + i) % 3000) as u32;
                    let d = client.pread(h, off, len).unwrap();
                    assert_eq!(d.len(), len as usize);
                    assert!(
                        d.iter()
                            .enumerate()
                            .all(|(j, &b)| b == ((off as usize + j) % 251) as u8)
                    );
                    let w = client.walk(root.id, &["etc", "passwd"]).unwrap();
                    assert_eq!(w.nodes[1].stat.size, 11);
                    client.close(&[w.nodes[0].id, w.nodes[1].id], &[]).unwrap();
                }
            });
        }
    });
}

#[test]
fn server_shutdown_fails_pending_and_later_calls() {
    let fs = Arc::new(MemFs::new(1));
    let (client, server, h) = start(Arc::clone(&fs), 2);
    root_of(&client);
    std::thread::scope(|s| {
        let pending = s.spawn(|| client.fstat(NodeId(BLOCK_INO)));
        // Make sure the server has seen something after the blocking call was queued;
        // whether the blocked call reached it or not, it must fail, not hang.
        server.shutdown();
        assert_eq!(pending.join().unwrap(), Err(ClientError::Disconnected));
    });
    assert_eq!(client.fstat(NodeId(1)), Err(ClientError::Disconnected));
    assert!(client.is_closed());
    fs.release();
    assert_eq!(h.join().unwrap(), Ok(()));
}

#[test]
fn dropped_server_socket_fails_calls() {
    let (c, s) = socketpair().unwrap();
    let client = Client::new(c).unwrap();
    drop(s);
    assert_eq!(client.mount(b""), Err(ClientError::Disconnected));
    assert_eq!(
        client.fstat(NodeId(1)).unwrap_err().errno(),
        Errno::EIO,
        "transport errors map to EIO"
    );
}

#[test]
fn check_connected_notices_a_gone_server_without_a_call() {
    let (c, s) = socketpair().unwrap();
    let client = Client::new(c).unwrap();
    assert_eq!(client.check_connected(), Ok(()));
    assert_eq!(
        client.check_connected(),
        Ok(()),
        "asking twice changes nothing"
    );
    assert!(!client.is_closed());
    drop(s);
    assert_eq!(client.check_connected(), Err(ClientError::Disconnected));
    assert!(client.is_closed(), "the connection is marked dead");
    assert_eq!(client.check_connected(), Err(ClientError::Disconnected));
}

#[test]
fn check_connected_leaves_queued_replies_alone() {
    let fs = Arc::new(MemFs::new(1));
    let (client, server, h) = start(Arc::clone(&fs), 2);
    root_of(&client);
    assert_eq!(client.check_connected(), Ok(()));
    assert_eq!(client.fstat(NodeId(1)).unwrap().ino, 1);
    server.shutdown();
    assert_eq!(client.check_connected(), Err(ClientError::Disconnected));
    assert_eq!(client.fstat(NodeId(1)), Err(ClientError::Disconnected));
    assert_eq!(h.join().unwrap(), Ok(()));
}

#[test]
fn client_shutdown_stops_the_server() {
    let fs = Arc::new(MemFs::new(1));
    let (client, _server, h) = start(fs, 4);
    root_of(&client);
    client.shutdown();
    assert_eq!(client.mount(b""), Err(ClientError::Disconnected));
    assert_eq!(h.join().unwrap(), Ok(()));
}

#[test]
fn unimplemented_messages_get_enosys() {
    struct Nothing;
    impl Dispatcher for Nothing {}
    let (c, s) = socketpair().unwrap();
    let h = std::thread::spawn(move || Server::new(s).serve(&Nothing, 1));
    let client = Client::new(c).unwrap();
    assert_eq!(client.mount(b""), Err(ClientError::Errno(Errno::ENOSYS)));
    assert_eq!(
        client.close(&[NodeId(1)], &[]),
        Err(ClientError::Errno(Errno::ENOSYS))
    );
    drop(client);
    assert_eq!(h.join().unwrap(), Ok(()));
}

/// Helper run in a child process by `killed_server_process_fails_calls`: serves `MemFs`
/// on stdin (a socket). Does nothing when run as a normal test.
#[test]
fn child_server_process() {
    if std::env::var_os("LISAFS_CHILD_SERVER").is_none() {
        return;
    }
    use std::os::fd::AsFd;
    let sock = std::io::stdin().as_fd().try_clone_to_owned().unwrap();
    let fs = MemFs::new(1);
    let r = Server::new(sock).serve(&fs, 2);
    std::process::exit(if r.is_ok() { 0 } else { 1 });
}

#[test]
fn killed_server_process_fails_pending_and_later_calls() {
    let (c, s) = socketpair().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_server_process", "--nocapture"])
        .env("LISAFS_CHILD_SERVER", "1")
        .stdin(std::process::Stdio::from(s))
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = Client::new(c).unwrap();
    let root = root_of(&client);
    assert_eq!(
        client.walk(root.id, &["etc"]).unwrap().status,
        WalkStatus::Complete
    );
    std::thread::scope(|s| {
        let pending = s.spawn(|| client.fstat(NodeId(BLOCK_INO)));
        child.kill().unwrap();
        assert_eq!(pending.join().unwrap(), Err(ClientError::Disconnected));
    });
    child.wait().unwrap();
    assert_eq!(
        client.walk(root.id, &["etc"]),
        Err(ClientError::Disconnected)
    );
}

#[test]
fn concurrent_large_transfers_do_not_deadlock() {
    // Requests and replies much larger than the socket buffers, from more client
    // threads than server threads: someone must always be reading replies, or the
    // server blocks writing them and stops reading requests.
    let fs = Arc::new(MemFs::new(1));
    let (client, _server, _h) = start(fs, 2);
    let root = root_of(&client);
    let big = client.walk(root.id, &["big"]).unwrap().nodes[0];
    let h = client.open_at(big.id, libc::O_RDWR as u32).unwrap().handle;
    std::thread::scope(|s| {
        for t in 0..6u8 {
            let client = &client;
            s.spawn(move || {
                let data = vec![t; MAX_IO_SIZE as usize];
                for i in 0..6 {
                    if (i + t) % 2 == 0 {
                        assert_eq!(client.pwrite(h, 0, &data).unwrap(), MAX_IO_SIZE as u64);
                    } else {
                        let d = client.pread(h, 0, MAX_IO_SIZE).unwrap();
                        assert_eq!(d.len(), MAX_IO_SIZE as usize);
                    }
                    assert!(client.fstat(big.id).unwrap().size >= MAX_IO_SIZE as u64);
                }
            });
        }
    });
}
