//! The gofer serves a temp dir correctly through a real lisafs client over a socketpair
//! (server in a thread, unconfined), and refuses escapes and mutations when read-only.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use gofer::{GoferOptions, serve};
use lisafs_proto::{
    Client, ClientError, Errno, SetStatReq, SetTime, Timespec, WalkStatus, socketpair,
};

struct Served {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    client: Option<Client>,
    server: Option<std::thread::JoinHandle<Result<(), gofer::GoferError>>>,
}

impl Served {
    fn client(&self) -> &Client {
        self.client.as_ref().expect("client")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Hanging up ends the server loop cleanly.
        drop(self.client.take());
        if let Some(s) = self.server.take() {
            let r = s.join().expect("server thread");
            if !std::thread::panicking() {
                r.expect("serve returned an error");
            }
        }
    }
}

fn served(read_only: bool, setup: impl FnOnce(&PathBuf, &PathBuf)) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).expect("mkdir");
    fs::create_dir(&outside).expect("mkdir");
    fs::write(outside.join("secret"), b"SECRET").expect("write");
    setup(&root, &outside);
    let (c, s) = socketpair().expect("socketpair");
    let r = root.clone();
    let opts = GoferOptions {
        read_only,
        confine: false,
        threads: 2,
    };
    let server = std::thread::spawn(move || serve(&r, s, opts));
    let client = Client::new(c).expect("client");
    Served {
        _dir: dir,
        root,
        outside,
        client: Some(client),
        server: Some(server),
    }
}

fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

#[test]
fn create_read_write_rename_link_symlink_unlink_getdents_setstat() {
    let s = served(false, |_, _| {});
    let c = s.client();
    let (uid, gid) = ids();
    let root = c.mount(b"").expect("mount").root;
    assert!(root.stat.is_dir());

    // create + write through the gofer, read through the donated fd.
    let f = c
        .open_create_at(root.id, b"file", libc::O_RDWR as u32, 0o644, uid, gid)
        .expect("create");
    assert_eq!(f.node.stat.mode & 0o777, 0o644);
    assert_eq!(c.pwrite(f.handle, 0, b"0123456789").expect("pwrite"), 10);
    assert_eq!(c.pread(f.handle, 3, 4).expect("pread"), b"3456");
    let mut donated = fs::File::from(f.fd.expect("donated fd"));
    donated.seek(SeekFrom::Start(0)).expect("seek");
    let mut buf = String::new();
    donated.read_to_string(&mut buf).expect("read donated");
    assert_eq!(buf, "0123456789");
    assert_eq!(fs::read(s.root.join("file")).expect("host"), b"0123456789");

    // Without O_EXCL an existing file is opened; with it, EEXIST.
    let again = c
        .open_create_at(root.id, b"file", libc::O_RDONLY as u32, 0o600, uid, gid)
        .expect("reopen");
    assert_eq!(again.node.stat.ino, f.node.stat.ino);
    let excl = (libc::O_RDWR | libc::O_EXCL) as u32;
    assert_eq!(
        c.open_create_at(root.id, b"file", excl, 0o600, uid, gid)
            .err(),
        Some(ClientError::Errno(Errno::EEXIST))
    );

    // setstat
    let st = c
        .set_stat(SetStatReq {
            node: f.node.id,
            mode: Some(0o600),
            size: Some(4),
            mtime: Some(SetTime::At(Timespec {
                sec: 12345,
                nsec: 6,
            })),
            ..SetStatReq::default()
        })
        .expect("setstat");
    assert_eq!(
        (st.mode & 0o7777, st.size, st.mtime.sec, st.mtime.nsec),
        (0o600, 4, 12345, 6)
    );
    assert_eq!(c.fstat(f.node.id).expect("fstat").size, 4);

    // rename, link, symlink, mkdir
    c.rename_at(root.id, b"file", root.id, b"renamed", 0)
        .expect("rename");
    assert!(s.root.join("renamed").exists() && !s.root.join("file").exists());
    let l = c.link_at(root.id, b"hard", f.node.id).expect("link");
    assert_eq!(l.stat.ino, f.node.stat.ino);
    assert_eq!(l.stat.nlink, 2);
    let d = c.mkdir_at(root.id, b"dir", 0o750, uid, gid).expect("mkdir");
    assert!(d.stat.is_dir());
    let sl = c
        .symlink_at(d.id, b"sl", b"../renamed", uid, gid)
        .expect("symlink");
    assert!(sl.stat.is_symlink());
    assert_eq!(c.read_link_at(sl.id).expect("readlink"), b"../renamed");
    assert_eq!(
        fs::read_link(s.root.join("dir/sl")).expect("host readlink"),
        PathBuf::from("../renamed")
    );

    // walk
    let w = c.walk(root.id, &["dir", "sl"]).expect("walk");
    assert_eq!(w.status, WalkStatus::Complete);
    assert_eq!(w.nodes.len(), 2);
    let w = c.walk(root.id, &["dir", "missing"]).expect("walk");
    assert_eq!(w.status, WalkStatus::NotFound);
    assert_eq!(w.nodes.len(), 1);
    let ws = c.walk_stat(root.id, &["dir", "sl"]).expect("walk_stat");
    assert_eq!(ws.stats.len(), 2);

    // getdents
    let dirh = c.open_at(root.id, libc::O_RDONLY as u32).expect("open dir");
    let mut names = Vec::new();
    let mut off = 0;
    loop {
        let ents = c.getdents64(dirh.handle, off, 64).expect("getdents");
        let Some(last) = ents.last() else { break };
        off = last.off;
        names.extend(
            ents.into_iter()
                .map(|e| String::from_utf8_lossy(&e.name).into_owned()),
        );
    }
    names.sort();
    assert_eq!(names, ["dir", "hard", "renamed"]);

    // unlink
    c.unlink_at(d.id, b"sl", 0).expect("unlink symlink");
    assert_eq!(
        c.unlink_at(root.id, b"dir", 0).err(),
        Some(ClientError::Errno(Errno::EISDIR))
    );
    c.unlink_at(root.id, b"dir", libc::AT_REMOVEDIR as u32)
        .expect("rmdir");
    c.unlink_at(root.id, b"hard", 0).expect("unlink");
    assert!(!s.root.join("hard").exists());

    c.fsync(f.handle, false).expect("fsync");
    assert!(c.fstatfs(root.id).expect("statfs").block_size > 0);
    c.close(&[f.node.id, l.id, d.id, sl.id], &[f.handle, dirh.handle])
        .expect("close");
    assert_eq!(
        c.fstat(f.node.id).err(),
        Some(ClientError::Errno(Errno::EBADF))
    );
}

#[test]
fn escapes_fail() {
    let s = served(false, |root, outside| {
        symlink(outside, root.join("abs")).expect("symlink");
        symlink("../outside", root.join("rel")).expect("symlink");
        symlink(outside.join("secret"), root.join("file_abs")).expect("symlink");
    });
    let c = s.client();
    let (uid, gid) = ids();
    let root = c.mount(b"").expect("mount").root;
    let einval = Some(ClientError::Errno(Errno::EINVAL));
    for bad in ["..", ".", "", "a/b", "/", "../outside"] {
        assert_eq!(c.walk(root.id, &[bad]).err(), einval, "{bad:?}");
        assert_eq!(
            c.open_create_at(root.id, bad.as_bytes(), 2, 0o600, uid, gid)
                .err(),
            einval,
            "{bad:?}"
        );
    }
    assert_eq!(c.mount(b"../outside").err(), einval);
    for link in ["abs", "rel"] {
        let w = c.walk(root.id, &[link, "secret"]).expect("walk");
        assert_eq!(w.status, WalkStatus::Symlink, "{link}");
        assert_eq!(w.nodes.len(), 1);
        let sl = w.nodes[0].id;
        assert_eq!(
            c.walk(sl, &["secret"]).err(),
            Some(ClientError::Errno(Errno::ENOTDIR))
        );
        assert_eq!(
            c.open_at(sl, 0).err(),
            Some(ClientError::Errno(Errno::ELOOP))
        );
        assert_eq!(
            c.open_create_at(sl, b"x", 2, 0o600, uid, gid).err(),
            Some(ClientError::Errno(Errno::ENOTDIR))
        );
        assert_eq!(
            c.mkdir_at(sl, b"x", 0o700, uid, gid).err(),
            Some(ClientError::Errno(Errno::ENOTDIR))
        );
    }
    let w = c.walk(root.id, &["file_abs"]).expect("walk");
    let sl = w.nodes[0].id;
    assert_eq!(
        c.open_at(sl, 0).err(),
        Some(ClientError::Errno(Errno::ELOOP))
    );
    // Opening an existing symlink by name with O_CREAT does not follow it either.
    assert_eq!(
        c.open_create_at(root.id, b"file_abs", 2, 0o600, uid, gid)
            .err(),
        Some(ClientError::Errno(Errno::ELOOP))
    );
    // SetStat on a symlink changes the link (owner/times), never its target.
    let before = fs::metadata(s.outside.join("secret")).expect("meta");
    let _ = c.set_stat(SetStatReq {
        node: sl,
        mode: Some(0o777),
        size: Some(0),
        ..SetStatReq::default()
    });
    let after = fs::metadata(s.outside.join("secret")).expect("meta");
    assert_eq!(
        (before.len(), before.mode_bits()),
        (after.len(), after.mode_bits())
    );
    assert_eq!(fs::read(s.outside.join("secret")).expect("read"), b"SECRET");
    assert_eq!(fs::read_dir(&s.outside).expect("readdir").count(), 1);
}

trait ModeBits {
    fn mode_bits(&self) -> u32;
}
impl ModeBits for fs::Metadata {
    fn mode_bits(&self) -> u32 {
        std::os::unix::fs::PermissionsExt::mode(&self.permissions())
    }
}

#[test]
fn read_only_gives_erofs() {
    let s = served(true, |root, _| {
        fs::write(root.join("f"), b"data").expect("write");
    });
    let c = s.client();
    let (uid, gid) = ids();
    let root = c.mount(b"").expect("mount").root;
    let f = c.walk(root.id, &["f"]).expect("walk").nodes[0].id;
    let rofs = Some(ClientError::Errno(Errno::EROFS));
    assert_eq!(
        c.open_create_at(root.id, b"n", 2, 0o600, uid, gid).err(),
        rofs
    );
    assert_eq!(c.mkdir_at(root.id, b"n", 0o700, uid, gid).err(), rofs);
    assert_eq!(
        c.mknod_at(root.id, b"n", libc::S_IFIFO | 0o600, 0, uid, gid)
            .err(),
        rofs
    );
    assert_eq!(c.symlink_at(root.id, b"n", b"f", uid, gid).err(), rofs);
    assert_eq!(c.link_at(root.id, b"n", f).err(), rofs);
    assert_eq!(c.unlink_at(root.id, b"f", 0).err(), rofs);
    assert_eq!(c.rename_at(root.id, b"f", root.id, b"g", 0).err(), rofs);
    assert_eq!(
        c.set_stat(SetStatReq {
            node: f,
            size: Some(0),
            ..SetStatReq::default()
        })
        .err(),
        rofs
    );
    assert_eq!(c.open_at(f, libc::O_WRONLY as u32).err(), rofs);
    let h = c.open_at(f, libc::O_RDONLY as u32).expect("open");
    assert_eq!(c.pread(h.handle, 0, 100).expect("pread"), b"data");
    assert_eq!(c.pwrite(h.handle, 0, b"x").err(), rofs);
    assert_eq!(fs::read(s.root.join("f")).expect("read"), b"data");
}

#[test]
fn many_threads_share_one_connection() {
    let s = served(false, |root, _| {
        for i in 0..16 {
            fs::write(root.join(format!("f{i}")), format!("content {i}")).expect("write");
        }
    });
    let c = s.client();
    let root = c.mount(b"").expect("mount").root;
    std::thread::scope(|sc| {
        for i in 0..16 {
            sc.spawn(move || {
                for _ in 0..50 {
                    let name = format!("f{i}");
                    let w = c.walk(root.id, &[name.as_str()]).expect("walk");
                    let node = w.nodes[0].id;
                    let h = c.open_at(node, 0).expect("open");
                    assert_eq!(
                        c.pread(h.handle, 0, 64).expect("pread"),
                        format!("content {i}").as_bytes()
                    );
                    c.close(&[node], &[h.handle]).expect("close");
                }
            });
        }
    });
}

#[test]
fn bad_requests_get_errors_not_panics() {
    let s = served(false, |root, _| {
        fs::create_dir_all(root.join("sub/dir")).expect("mkdir");
        fs::write(root.join("sub/file"), b"x").expect("write");
    });
    let c = s.client();
    let (uid, gid) = ids();
    // Mount of a sub-tree walks to it; it must be a directory reached without symlinks.
    let sub = c.mount(b"sub/dir").expect("mount sub-tree").root;
    assert!(sub.stat.is_dir());
    assert_eq!(
        c.mount(b"sub/file").err(),
        Some(ClientError::Errno(Errno::ENOTDIR))
    );
    assert_eq!(
        c.mount(b"sub/missing").err(),
        Some(ClientError::Errno(Errno::ENOENT))
    );
    let root = c.mount(b"").expect("mount").root;
    let ebadf = Some(ClientError::Errno(Errno::EBADF));
    assert_eq!(c.fstat(lisafs_proto::NodeId(u64::MAX)).err(), ebadf);
    assert_eq!(c.pread(lisafs_proto::HandleId(12345), 0, 10).err(), ebadf);
    assert_eq!(c.walk(lisafs_proto::NodeId(0), &["sub"]).err(), ebadf);
    let file = c.walk(root.id, &["sub", "file"]).expect("walk").nodes[1].id;
    assert_eq!(
        c.walk(file, &["x"]).err(),
        Some(ClientError::Errno(Errno::ENOTDIR))
    );
    assert_eq!(
        c.mkdir_at(file, b"x", 0o700, uid, gid).err(),
        Some(ClientError::Errno(Errno::ENOTDIR))
    );
    assert_eq!(
        c.read_link_at(file).err(),
        Some(ClientError::Errno(Errno::EINVAL))
    );
    let h = c.open_at(file, libc::O_RDONLY as u32).expect("open");
    assert_eq!(
        c.getdents64(h.handle, 0, 4096).err(),
        Some(ClientError::Errno(Errno::ENOTDIR))
    );
    assert_eq!(
        c.pread(h.handle, u64::MAX, 10).err(),
        Some(ClientError::Errno(Errno::EINVAL))
    );
    assert_eq!(
        c.mknod_at(root.id, b"dev", libc::S_IFBLK | 0o600, 0x0801, uid, gid)
            .err(),
        Some(ClientError::Errno(Errno::EPERM))
    );
    let long = vec![b'n'; 300];
    assert_eq!(
        c.mkdir_at(root.id, &long, 0o700, uid, gid).err(),
        Some(ClientError::Errno(Errno::ENAMETOOLONG))
    );
    // Closing unknown ids is not an error.
    c.close(
        &[lisafs_proto::NodeId(999_999)],
        &[lisafs_proto::HandleId(999_999)],
    )
    .expect("close");
    // The connection still works.
    assert!(c.fstat(root.id).expect("fstat").is_dir());
}
