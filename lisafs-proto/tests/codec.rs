//! Encoding round trips for every message, and the decoder's rejection of garbage,
//! including a fixed-seed randomized test (the stable-Rust stand-in for the fuzzer).

use lisafs_proto::codec::{self, HEADER_SIZE, Header};
use lisafs_proto::*;

fn stat(n: u64) -> Stat {
    Stat {
        dev: n,
        ino: n + 1,
        mode: libc::S_IFREG | 0o644,
        nlink: 3,
        uid: 1000,
        gid: u32::MAX,
        rdev: u64::MAX,
        size: 1 << 40,
        blksize: 4096,
        blocks: 8,
        atime: Timespec {
            sec: -5,
            nsec: 999_999_999,
        },
        mtime: Timespec {
            sec: i64::MAX,
            nsec: 0,
        },
        ctime: Timespec {
            sec: i64::MIN,
            nsec: 1,
        },
    }
}

fn inode(n: u64) -> Inode {
    Inode {
        id: NodeId(n),
        stat: stat(n),
    }
}

/// One sample request per message id.
fn sample_requests() -> Vec<Request> {
    let names = vec![b"usr".to_vec(), b"bin".to_vec(), vec![0xff, 0x00, 0x80]];
    vec![
        Request::Mount(MountReq {
            path: b"/".to_vec(),
        }),
        Request::Walk(WalkReq {
            dir: NodeId(1),
            names: names.clone(),
        }),
        Request::WalkStat(WalkStatReq {
            dir: NodeId(u64::MAX),
            names,
        }),
        Request::FStat(FStatReq { node: NodeId(9) }),
        Request::SetStat(SetStatReq {
            node: NodeId(2),
            mode: Some(0o755),
            uid: None,
            gid: Some(7),
            size: Some(0),
            atime: Some(SetTime::Now),
            mtime: Some(SetTime::At(Timespec { sec: 3, nsec: 4 })),
        }),
        Request::OpenAt(OpenAtReq {
            node: NodeId(3),
            flags: libc::O_RDWR as u32,
        }),
        Request::OpenCreateAt(OpenCreateAtReq {
            dir: NodeId(1),
            name: b"f".to_vec(),
            flags: 0,
            mode: 0o600,
            uid: 1,
            gid: 2,
        }),
        Request::MkdirAt(MkdirAtReq {
            dir: NodeId(1),
            name: b"d".to_vec(),
            mode: 0o700,
            uid: 0,
            gid: 0,
        }),
        Request::MknodAt(MknodAtReq {
            dir: NodeId(1),
            name: b"n".to_vec(),
            mode: libc::S_IFIFO | 0o600,
            rdev: 5,
            uid: 0,
            gid: 0,
        }),
        Request::SymlinkAt(SymlinkAtReq {
            dir: NodeId(1),
            name: b"s".to_vec(),
            target: b"../../x".to_vec(),
            uid: 0,
            gid: 0,
        }),
        Request::LinkAt(LinkAtReq {
            dir: NodeId(1),
            name: b"l".to_vec(),
            target: NodeId(4),
        }),
        Request::UnlinkAt(UnlinkAtReq {
            dir: NodeId(1),
            name: b"d".to_vec(),
            flags: libc::AT_REMOVEDIR as u32,
        }),
        Request::RenameAt(RenameAtReq {
            old_dir: NodeId(1),
            old_name: b"a".to_vec(),
            new_dir: NodeId(2),
            new_name: b"b".to_vec(),
            flags: 1,
        }),
        Request::ReadLinkAt(ReadLinkAtReq { node: NodeId(5) }),
        Request::Getdents64(Getdents64Req {
            handle: HandleId(6),
            offset: u64::MAX,
            count: 4096,
        }),
        Request::PRead(PReadReq {
            handle: HandleId(6),
            offset: 1 << 50,
            count: MAX_IO_SIZE,
        }),
        Request::PWrite(PWriteReq {
            handle: HandleId(6),
            offset: 0,
            data: vec![0xab; MAX_IO_SIZE as usize],
        }),
        Request::FSync(FSyncReq {
            handle: HandleId(6),
            data_only: true,
        }),
        Request::FStatFs(FStatFsReq { node: NodeId(1) }),
        Request::FAllocate(FAllocateReq {
            handle: HandleId(6),
            mode: 3,
            offset: 10,
            len: 20,
        }),
        Request::Close(CloseReq {
            nodes: (0..1000).map(NodeId).collect(),
            handles: vec![HandleId(1), HandleId(u64::MAX)],
        }),
    ]
}

/// One sample reply per message id (plus the error reply).
fn sample_responses() -> Vec<Response> {
    vec![
        Response::Error(ErrorResp {
            errno: libc::ENOENT,
        }),
        Response::Mount(MountResp {
            root: inode(1),
            max_payload: MAX_PAYLOAD as u32,
        }),
        Response::Walk(WalkResp {
            status: WalkStatus::Symlink,
            nodes: vec![inode(2), inode(3)],
        }),
        Response::WalkStat(WalkStatResp {
            status: WalkStatus::NotFound,
            stats: vec![stat(4)],
        }),
        Response::FStat(FStatResp { stat: stat(5) }),
        Response::SetStat(SetStatResp { stat: stat(6) }),
        Response::OpenAt(OpenAtResp {
            handle: HandleId(7),
        }),
        Response::OpenCreateAt(OpenCreateAtResp {
            node: inode(8),
            handle: HandleId(9),
        }),
        Response::MkdirAt(NewNodeResp { node: inode(10) }),
        Response::MknodAt(NewNodeResp { node: inode(11) }),
        Response::SymlinkAt(NewNodeResp { node: inode(12) }),
        Response::LinkAt(NewNodeResp { node: inode(13) }),
        Response::UnlinkAt(EmptyResp {}),
        Response::RenameAt(EmptyResp {}),
        Response::ReadLinkAt(ReadLinkAtResp {
            target: b"/etc/x".to_vec(),
        }),
        Response::Getdents64(Getdents64Resp {
            entries: vec![
                Dirent {
                    ino: 1,
                    off: 2,
                    kind: libc::DT_DIR,
                    name: b".hidden".to_vec(),
                },
                Dirent {
                    ino: u64::MAX,
                    off: u64::MAX,
                    kind: libc::DT_LNK,
                    name: vec![0xfe; 255],
                },
            ],
        }),
        Response::PRead(PReadResp {
            data: (0..MAX_IO_SIZE).map(|i| i as u8).collect(),
        }),
        Response::PWrite(PWriteResp { written: 12 }),
        Response::FSync(EmptyResp {}),
        Response::FStatFs(FStatFsResp {
            statfs: StatFs {
                fs_type: 0xef53,
                block_size: 4096,
                blocks: 1,
                blocks_free: 2,
                blocks_available: 3,
                files: 4,
                files_free: 5,
                name_length: 255,
                fragment_size: 4096,
            },
        }),
        Response::FAllocate(EmptyResp {}),
        Response::Close(EmptyResp {}),
    ]
}

#[test]
fn samples_cover_every_message_id() {
    let mut req_ids: Vec<u16> = sample_requests()
        .iter()
        .map(|r| r.msg_id() as u16)
        .collect();
    let mut resp_ids: Vec<u16> = sample_responses()
        .iter()
        .map(|r| r.msg_id() as u16)
        .collect();
    req_ids.sort();
    resp_ids.sort();
    let all: Vec<u16> = MsgId::ALL.iter().map(|m| *m as u16).collect();
    assert_eq!(resp_ids, all);
    assert_eq!(req_ids, all[1..]);
    for &id in &all {
        assert_eq!(MsgId::from_u16(id).map(|m| m as u16), Some(id));
    }
    assert_eq!(MsgId::from_u16(all.len() as u16), None);
}

#[test]
fn every_request_round_trips() {
    for req in sample_requests() {
        let payload = req.encode().unwrap();
        assert!(payload.len() <= MAX_PAYLOAD, "{:?}", req.msg_id());
        let frame = codec::encode_frame(77, req.msg_id() as u16, &payload).unwrap();
        let (h, back) = codec::decode_request_frame(&frame).unwrap();
        assert_eq!(h.request_id, 77);
        assert_eq!(h.payload_len as usize, payload.len());
        assert_eq!(back, req);
        assert_eq!(Request::decode(req.msg_id() as u16, &payload).unwrap(), req);
    }
}

#[test]
fn every_response_round_trips() {
    for resp in sample_responses() {
        let payload = resp.encode().unwrap();
        assert!(payload.len() <= MAX_PAYLOAD);
        let frame = codec::encode_frame(u64::MAX, resp.msg_id() as u16, &payload).unwrap();
        let (h, back) = codec::decode_response_frame(&frame).unwrap();
        assert_eq!(h.request_id, u64::MAX);
        assert_eq!(back, resp);
    }
}

#[test]
fn bulk_data_is_encoded_compactly() {
    let req = Request::PWrite(PWriteReq {
        handle: HandleId(1),
        offset: 0,
        data: vec![0xff; 1000],
    });
    // One length prefix plus the raw bytes, not one varint per byte.
    assert!(req.encode().unwrap().len() < 1010);
}

#[test]
fn oversized_messages_are_refused() {
    let req = Request::PWrite(PWriteReq {
        handle: HandleId(1),
        offset: 0,
        data: vec![0; MAX_PAYLOAD],
    });
    assert!(matches!(
        req.encode(),
        Err(ProtoError::TooLarge(_)) | Err(ProtoError::Encode(_))
    ));
    let mut h = Header {
        request_id: 1,
        msg_id: MsgId::FStat as u16,
        payload_len: 0,
    }
    .encode();
    h[12..16].copy_from_slice(&(MAX_PAYLOAD as u32 + 1).to_le_bytes());
    assert_eq!(
        codec::decode_request_frame(&h),
        Err(ProtoError::TooLarge(MAX_PAYLOAD + 1))
    );
    assert_eq!(
        codec::encode_frame(1, 4, &vec![0; MAX_PAYLOAD + 1]),
        Err(ProtoError::TooLarge(MAX_PAYLOAD + 1))
    );
}

#[test]
fn truncated_frames_are_rejected() {
    for req in sample_requests() {
        let payload = req.encode().unwrap();
        let frame = codec::encode_frame(1, req.msg_id() as u16, &payload).unwrap();
        // Every strict prefix fails (cheaply: sample the cut points of big frames).
        let step = (frame.len() / 200).max(1);
        for cut in (0..frame.len()).step_by(step) {
            assert!(codec::decode_request_frame(&frame[..cut]).is_err());
            if cut >= HEADER_SIZE {
                // A consistent header whose payload is cut short.
                let p = &payload[..cut - HEADER_SIZE];
                let f = codec::encode_frame(1, req.msg_id() as u16, p).unwrap();
                assert!(
                    codec::decode_request_frame(&f).is_err(),
                    "{:?} cut at {cut}",
                    req.msg_id()
                );
            }
        }
    }
}

#[test]
fn trailing_bytes_unknown_ids_and_bad_headers_are_rejected() {
    let mut payload = Request::FStat(FStatReq { node: NodeId(1) })
        .encode()
        .unwrap();
    payload.push(0);
    assert_eq!(
        Request::decode(MsgId::FStat as u16, &payload),
        Err(ProtoError::TrailingBytes(1))
    );
    assert_eq!(
        Request::decode(999, &[]),
        Err(ProtoError::UnknownMessage(999))
    );
    assert_eq!(
        Request::decode(MsgId::Error as u16, &[2]),
        Err(ProtoError::UnknownMessage(0))
    );
    assert_eq!(
        Response::decode(u16::MAX, &[]),
        Err(ProtoError::UnknownMessage(u16::MAX))
    );
    let mut h = codec::encode_frame(1, MsgId::FStat as u16, &[1]).unwrap();
    h[10] = 1;
    assert_eq!(codec::decode_request_frame(&h), Err(ProtoError::BadHeader));
    let mut f = codec::encode_frame(1, MsgId::FStat as u16, &[1]).unwrap();
    f.push(9);
    assert_eq!(
        codec::decode_request_frame(&f),
        Err(ProtoError::LengthMismatch)
    );
    // A bad enum discriminant and a bool that is not 0/1.
    let mut walk = Response::Walk(WalkResp {
        status: WalkStatus::Complete,
        nodes: vec![],
    })
    .encode()
    .unwrap();
    walk[0] = 9;
    assert!(Response::decode(MsgId::Walk as u16, &walk).is_err());
    let fsync = [1u8, 2];
    assert!(Request::decode(MsgId::FSync as u16, &fsync).is_err());
    // Errno mapping for error replies.
    assert_eq!(ProtoError::UnknownMessage(5).errno(), Errno::ENOSYS);
    assert_eq!(ProtoError::TooLarge(5).errno(), Errno::EMSGSIZE);
    assert_eq!(ProtoError::Truncated.errno(), Errno::EINVAL);
}

#[test]
fn huge_length_prefixes_do_not_allocate() {
    // A Walk whose name count claims u64::MAX entries, and a PRead reply whose data
    // claims 2^62 bytes: both must fail quickly, without allocating.
    let mut walk = vec![1u8]; // dir = NodeId(1)
    walk.push(253); // varint: u64 follows
    walk.extend_from_slice(&u64::MAX.to_le_bytes());
    assert!(Request::decode(MsgId::Walk as u16, &walk).is_err());
    let mut pread = vec![253u8];
    pread.extend_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(Response::decode(MsgId::PRead as u16, &pread).is_err());
    let mut close = vec![252u8];
    close.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Request::decode(MsgId::Close as u16, &close).is_err());
}

/// xorshift64*: a tiny deterministic generator so the test is reproducible.
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
fn randomized_garbage_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let seeds: Vec<Vec<u8>> = sample_requests()
        .iter()
        .filter(|r| r.msg_id() != MsgId::PWrite)
        .map(|r| codec::encode_frame(1, r.msg_id() as u16, &r.encode().unwrap()).unwrap())
        .chain(
            sample_responses()
                .iter()
                .filter(|r| r.msg_id() != MsgId::PRead)
                .map(|r| codec::encode_frame(1, r.msg_id() as u16, &r.encode().unwrap()).unwrap()),
        )
        .collect();
    let mut decoded_ok = 0u32;
    for iter in 0..200_000u32 {
        let mut buf = if iter % 4 == 0 {
            // Pure noise.
            let n = rng.below(300);
            (0..n).map(|_| rng.next() as u8).collect()
        } else {
            // A valid frame, mutated.
            let mut b = seeds[rng.below(seeds.len())].clone();
            for _ in 0..1 + rng.below(4) {
                match rng.below(4) {
                    0 if !b.is_empty() => {
                        let i = rng.below(b.len());
                        b[i] = rng.next() as u8;
                    }
                    1 if !b.is_empty() => {
                        let i = rng.below(b.len());
                        b.truncate(i);
                    }
                    2 => b.push(rng.next() as u8),
                    _ if b.len() > HEADER_SIZE => {
                        // Flip a payload byte to a varint marker.
                        let i = HEADER_SIZE + rng.below(b.len() - HEADER_SIZE);
                        b[i] = 251 + rng.below(5) as u8;
                    }
                    _ => {}
                }
            }
            b
        };
        // Keep the header's length consistent half of the time so the payload decoder
        // (not just the length check) sees the mutations.
        if buf.len() >= HEADER_SIZE && rng.below(2) == 0 {
            let len = (buf.len() - HEADER_SIZE) as u32;
            buf[12..16].copy_from_slice(&len.to_le_bytes());
            buf[10] = 0;
            buf[11] = 0;
        }
        if codec::decode_request_frame(&buf).is_ok() {
            decoded_ok += 1;
        }
        if codec::decode_response_frame(&buf).is_ok() {
            decoded_ok += 1;
        }
    }
    // Some mutations are harmless (e.g. a changed name byte); the point is no panic.
    assert!(decoded_ok > 0);
}

#[test]
fn host_stat_conversions() {
    let st = nix::sys::stat::stat("/").unwrap();
    let s = Stat::from_host(&st);
    assert!(s.is_dir());
    assert_eq!(s.ino, st.st_ino);
    assert_eq!(s.mtime.sec, st.st_mtime);
    assert_eq!(s.mtime.nsec as i64, st.st_mtime_nsec);
    let mut sfs = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: the path is NUL-terminated and `sfs` is writable for a `struct statfs`.
    let rc = unsafe { libc::statfs(c"/".as_ptr(), sfs.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: statfs succeeded and filled the struct (which was zeroed anyway).
    let sfs = unsafe { sfs.assume_init() };
    let f = StatFs::from_host(&sfs);
    assert_eq!(f.blocks, sfs.f_blocks);
    assert_eq!(f.block_size, sfs.f_bsize as u64);
    assert!(f.name_length > 0);
}
