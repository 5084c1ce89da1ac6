//! The host tree serves a temp dir correctly and refuses every escape.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gofer::tree::{HostTree, SetStat, TimeSet, WalkEnd};
use linux_abi::Errno;

/// A temp dir with `root/` (served) and `outside/secret` (must stay unreachable).
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    fs::create_dir(&root).expect("mkdir root");
    fs::create_dir(&outside).expect("mkdir outside");
    fs::write(outside.join("secret"), b"SECRET").expect("write secret");
    Fixture {
        _dir: dir,
        root,
        outside,
    }
}

#[test]
fn create_write_read_rename_link_unlink() {
    let f = fixture();
    let t = HostTree::new(&f.root, false).expect("tree");
    let (root, st) = t.mount().expect("mount");
    assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFDIR);

    let (a, st, fa) = t
        .create(root, b"a", libc::O_RDWR, 0o640, None)
        .expect("create");
    assert_eq!(st.st_mode & 0o7777, 0o640);
    assert_eq!(t.pwrite(fa, 0, b"hello world").expect("pwrite"), 11);
    assert_eq!(t.pread(fa, 6, 100).expect("pread"), b"world");
    assert_eq!(
        fs::read(f.root.join("a")).expect("host read"),
        b"hello world"
    );

    // setstat: size, mode, times.
    let set = SetStat {
        size: Some(5),
        mode: Some(0o600),
        mtime: Some(TimeSet::At {
            sec: 1_000_000,
            nsec: 7,
        }),
        atime: Some(TimeSet::Now),
        ..SetStat::default()
    };
    t.set_stat(a, &set).expect("setstat");
    let st = t.stat(a).expect("stat");
    assert_eq!(st.st_size, 5);
    assert_eq!(st.st_mode & 0o7777, 0o600);
    assert_eq!((st.st_mtime, st.st_mtime_nsec), (1_000_000, 7));

    // A second open through the node sees the data.
    let fr = t.open(a, libc::O_RDONLY).expect("open");
    assert_eq!(t.pread(fr, 0, 64).expect("pread"), b"hello");

    t.rename(root, b"a", root, b"b", 0).expect("rename");
    assert!(!f.root.join("a").exists());
    let (l, lst) = t.link(root, b"c", a).expect("link");
    assert_eq!(lst.st_ino, st.st_ino);
    assert_eq!(t.stat(l).expect("stat").st_nlink, 2);
    let (d, _) = t.mkdir(root, b"d", 0o755, None).expect("mkdir");
    let (s, _) = t.symlink(d, b"s", b"../b", None).expect("symlink");
    assert_eq!(t.readlink(s).expect("readlink"), b"../b");
    let (_fifo, fst) = t
        .mknod(root, b"fifo", libc::S_IFIFO | 0o600, 0, None)
        .expect("mknod");
    assert_eq!(fst.st_mode & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!(
        t.mknod(root, b"dev", libc::S_IFCHR | 0o600, 0x0103, None)
            .err(),
        Some(Errno::EPERM)
    );

    let dir = t
        .open(root, libc::O_RDONLY | libc::O_DIRECTORY)
        .expect("open dir");
    let mut all = Vec::new();
    let mut off = 0;
    loop {
        let ents = t.read_dir(dir, off, 100).expect("read_dir");
        let Some(last) = ents.last() else { break };
        off = last.off;
        all.extend(
            ents.iter()
                .map(|e| String::from_utf8_lossy(&e.name).into_owned()),
        );
    }
    // Rewinding with offset 0 starts again.
    assert!(!t.read_dir(dir, 0, 4096).expect("rewind").is_empty());
    all.sort();
    assert_eq!(all, ["b", "c", "d", "fifo"]);

    t.unlink(root, b"c", 0).expect("unlink");
    assert_eq!(t.unlink(root, b"d", 0).err(), Some(Errno::EISDIR));
    t.unlink(d, b"s", 0).expect("unlink symlink");
    t.unlink(root, b"d", libc::AT_REMOVEDIR).expect("rmdir");
    assert_eq!(t.stat(a).expect("stat").st_nlink, 1);

    let sfs = t.statfs(root).expect("statfs");
    assert!(sfs.f_bsize > 0);
    t.fsync(fa, false).expect("fsync");
    t.close(fa).expect("close file");
    t.close(a).expect("close node");
    assert_eq!(t.close(a).err(), Some(Errno::EBADF));
}

#[test]
fn walk_returns_nodes_and_stops_at_symlinks() {
    let f = fixture();
    fs::create_dir_all(f.root.join("x/y")).expect("mkdir");
    fs::write(f.root.join("x/y/z"), b"zz").expect("write");
    symlink(&f.outside, f.root.join("abs")).expect("symlink");
    symlink("../outside", f.root.join("rel")).expect("symlink");
    let t = HostTree::new(&f.root, false).expect("tree");
    let (root, _) = t.mount().expect("mount");

    let w = t.walk(root, &["x", "y", "z"]).expect("walk");
    assert_eq!(w.end, WalkEnd::Complete);
    assert_eq!(w.nodes.len(), 3);
    assert_eq!(w.nodes[2].1.st_size, 2);

    let w = t.walk(root, &["x", "nope", "z"]).expect("walk");
    assert_eq!(w.end, WalkEnd::Failed(Errno::ENOENT));
    assert_eq!(w.nodes.len(), 1);

    let w = t.walk(root, &["x", "y", "z", "w"]).expect("walk");
    assert_eq!(w.end, WalkEnd::Failed(Errno::ENOTDIR));

    // Symlinks pointing out are returned as symlinks, never followed.
    for link in ["abs", "rel"] {
        let w = t.walk(root, &[link, "secret"]).expect("walk");
        assert_eq!(w.end, WalkEnd::Symlink, "{link}");
        assert_eq!(w.nodes.len(), 1);
        let (id, st) = w.nodes[0];
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert_eq!(t.open(id, libc::O_RDONLY).err(), Some(Errno::ELOOP));
        assert_eq!(t.walk(id, &["secret"]).err(), Some(Errno::ENOTDIR));
        assert!(t.readlink(id).is_ok());
        // Creating through a symlink "directory" is refused.
        assert_eq!(
            t.create(id, b"new", libc::O_RDWR, 0o600, None).err(),
            Some(Errno::ENOTDIR)
        );
    }
    assert!(!f.outside.join("new").exists());
}

#[test]
fn dot_dot_and_bad_names_are_rejected() {
    let f = fixture();
    fs::create_dir(f.root.join("sub")).expect("mkdir");
    let t = HostTree::new(&f.root, false).expect("tree");
    let (root, _) = t.mount().expect("mount");
    for bad in ["..", ".", "", "../outside", "/etc", "sub/.."] {
        assert_eq!(t.walk(root, &[bad]).err(), Some(Errno::EINVAL), "{bad:?}");
        assert_eq!(
            t.create(root, bad.as_bytes(), libc::O_RDWR, 0o600, None)
                .err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            t.mkdir(root, bad.as_bytes(), 0o700, None).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(t.unlink(root, bad.as_bytes(), 0).err(), Some(Errno::EINVAL));
        assert_eq!(
            t.rename(root, bad.as_bytes(), root, b"x", 0).err(),
            Some(Errno::EINVAL)
        );
        assert_eq!(
            t.rename(root, b"sub", root, bad.as_bytes(), 0).err(),
            Some(Errno::EINVAL)
        );
    }
    // A symlink whose target climbs out is only ever data.
    let (s, _) = t
        .symlink(root, b"up", b"../outside/secret", None)
        .expect("symlink");
    assert_eq!(t.open(s, libc::O_RDONLY).err(), Some(Errno::ELOOP));
    // Unknown ids are EBADF, not a panic.
    assert_eq!(t.stat(9999).err(), Some(Errno::EBADF));
    assert_eq!(t.pread(9999, 0, 1).err(), Some(Errno::EBADF));
}

#[test]
fn links_only_name_nodes_inside() {
    let f = fixture();
    // A hard link made on the host to an outside file is, once inside, just a file of the
    // tree: the gofer cannot tell and does not need to. What the protocol enforces is that a
    // link *request* names its source by node id, and nodes are only reachable by walking
    // single components from the root; a symlink source is linked as the symlink itself.
    symlink(f.outside.join("secret"), f.root.join("ptr")).expect("symlink");
    let t = HostTree::new(&f.root, false).expect("tree");
    let (root, _) = t.mount().expect("mount");
    let w = t.walk(root, &["ptr"]).expect("walk");
    let (ptr, _) = w.nodes[0];
    let (l, st) = t.link(root, b"hard", ptr).expect("link to symlink");
    assert_eq!(
        st.st_mode & libc::S_IFMT,
        libc::S_IFLNK,
        "linked the symlink, not its target"
    );
    assert_eq!(t.open(l, libc::O_RDONLY).err(), Some(Errno::ELOOP));
    assert_eq!(
        fs::metadata(f.outside.join("secret"))
            .expect("meta")
            .nlink(),
        1
    );
}

#[test]
fn read_only_refuses_every_mutation() {
    let f = fixture();
    fs::write(f.root.join("file"), b"data").expect("write");
    fs::create_dir(f.root.join("dir")).expect("mkdir");
    let t = HostTree::new(&f.root, true).expect("tree");
    let (root, _) = t.mount().expect("mount");
    let w = t.walk(root, &["file"]).expect("walk");
    let (file, _) = w.nodes[0];
    let rofs = Some(Errno::EROFS);
    assert_eq!(t.create(root, b"n", libc::O_RDWR, 0o600, None).err(), rofs);
    assert_eq!(t.mkdir(root, b"n", 0o700, None).err(), rofs);
    assert_eq!(
        t.mknod(root, b"n", libc::S_IFREG | 0o600, 0, None).err(),
        rofs
    );
    assert_eq!(t.symlink(root, b"n", b"file", None).err(), rofs);
    assert_eq!(t.link(root, b"n", file).err(), rofs);
    assert_eq!(t.unlink(root, b"file", 0).err(), rofs);
    assert_eq!(t.rename(root, b"file", root, b"n", 0).err(), rofs);
    assert_eq!(
        t.set_stat(
            file,
            &SetStat {
                mode: Some(0o777),
                ..SetStat::default()
            }
        )
        .err(),
        rofs
    );
    assert_eq!(t.open(file, libc::O_RDWR).err(), rofs);
    assert_eq!(t.open(file, libc::O_RDONLY | libc::O_TRUNC).err(), rofs);
    let fd = t.open(file, libc::O_RDONLY).expect("read-only open");
    assert_eq!(t.pread(fd, 0, 10).expect("pread"), b"data");
    assert_eq!(t.pwrite(fd, 0, b"x").err(), rofs);
    assert_eq!(t.fallocate(fd, 0, 0, 10).err(), rofs);
    assert_eq!(fs::read(f.root.join("file")).expect("read"), b"data");
}

#[test]
fn symlink_swapped_in_during_walks_never_escapes() {
    let f = fixture();
    // root/d is a real directory without "secret"; root/l points at outside/ which has one.
    fs::create_dir(f.root.join("d")).expect("mkdir");
    symlink(&f.outside, f.root.join("l")).expect("symlink");
    let t = HostTree::new(&f.root, false).expect("tree");
    let (root, _) = t.mount().expect("mount");

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let root = f.root.clone();
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Atomically exchange the directory and the symlink, again and again.
                let a =
                    std::ffi::CString::new(root.join("d").into_os_string().into_encoded_bytes())
                        .expect("cstr");
                let b =
                    std::ffi::CString::new(root.join("l").into_os_string().into_encoded_bytes())
                        .expect("cstr");
                // SAFETY: both paths are valid NUL-terminated strings.
                let r = unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                assert_eq!(r, 0, "renameat2 exchange");
                swaps += 1;
            }
            swaps
        })
    };
    let mut symlinks = 0;
    for _ in 0..5_000 {
        for name in ["d", "l"] {
            let w = t.walk(root, &[name, "secret"]).expect("walk");
            match w.end {
                WalkEnd::Symlink => symlinks += 1,
                WalkEnd::Failed(e) => assert_eq!(e, Errno::ENOENT),
                WalkEnd::Complete => panic!("walked outside the root through {name}"),
            }
            for (id, _) in w.nodes {
                t.close(id).expect("close");
            }
            // Creating inside whatever "name" is right now never lands outside.
            if let Ok((id, _, fid)) = t.create(root, b"probe", libc::O_RDWR, 0o600, None) {
                t.close(fid).expect("close");
                t.close(id).expect("close");
                t.unlink(root, b"probe", 0).expect("unlink");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");
    eprintln!("{swaps} swaps, {symlinks} walks stopped at the symlink");
    assert!(symlinks > 0);
    assert_eq!(
        fs::read_dir(&f.outside).expect("readdir").count(),
        1,
        "nothing created outside"
    );
    assert_eq!(t.live_handles().0, 1, "only the root node is left");
}

#[test]
fn nodes_survive_renames() {
    let f = fixture();
    fs::create_dir(f.root.join("d")).expect("mkdir");
    fs::write(f.root.join("d/file"), b"payload").expect("write");
    let t = HostTree::new(&f.root, false).expect("tree");
    let (root, _) = t.mount().expect("mount");
    let w = t.walk(root, &["d", "file"]).expect("walk");
    let (file, _) = w.nodes[1];
    // Renamed (and its directory renamed) on the host: the node still names the same file.
    fs::rename(f.root.join("d/file"), f.root.join("d/moved")).expect("rename");
    fs::rename(f.root.join("d"), f.root.join("e")).expect("rename");
    let h = t.open(file, libc::O_RDWR).expect("open after rename");
    assert_eq!(t.pread(h, 0, 64).expect("pread"), b"payload");
    t.set_stat(
        file,
        &SetStat {
            size: Some(3),
            mode: Some(0o640),
            ..SetStat::default()
        },
    )
    .expect("setstat");
    assert_eq!(fs::read(f.root.join("e/moved")).expect("read"), b"pay");
    // A new file under the old name is a different file.
    fs::create_dir(f.root.join("d")).expect("mkdir");
    fs::write(f.root.join("d/file"), b"other").expect("write");
    assert_eq!(t.pread(h, 0, 64).expect("pread"), b"pay");
}

#[test]
fn link_never_links_another_file() {
    if !test_require::is_root() {
        test_require::skip(
            "root",
            "needs root to drop CAP_DAC_READ_SEARCH from this thread",
        );
        return;
    }
    let f = fixture();
    fs::write(f.root.join("a"), b"original").expect("write");
    let t = HostTree::new(&f.root, false).expect("tree");
    let (root, _) = t.mount().expect("mount");
    let (a, ast) = t.walk(root, &["a"]).expect("walk").nodes[0];
    // Capabilities are per thread: without CAP_DAC_READ_SEARCH, linkat(AT_EMPTY_PATH) of a
    // descriptor opened earlier is refused and the tree links by parent and name instead.
    use caps::{CapSet, Capability};
    caps::drop(None, CapSet::Effective, Capability::CAP_DAC_READ_SEARCH).expect("drop cap");
    let (_, bst) = t.link(root, b"b", a).expect("link");
    assert_eq!(bst.st_ino, ast.st_ino);
    // The node's name now holds a different file: the link is of the node's inode or
    // refused (ESTALE), never of the file that took the name.
    fs::rename(f.root.join("a"), f.root.join("renamed")).expect("rename");
    fs::write(f.root.join("a"), b"impostor").expect("write");
    match t.link(root, b"e", a) {
        Ok((_, est)) => assert_eq!(est.st_ino, ast.st_ino),
        Err(e) => {
            assert_eq!(e, Errno::ESTALE);
            assert!(
                !f.root.join("e").exists(),
                "a refused link is removed again"
            );
        }
    }
    caps::raise(None, CapSet::Effective, Capability::CAP_DAC_READ_SEARCH).expect("raise cap");
    assert_eq!(fs::read(f.root.join("b")).expect("read"), b"original");
}
