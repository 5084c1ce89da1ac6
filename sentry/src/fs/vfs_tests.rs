//! Tests of the walk, the namespace operations, file descriptions, the sandbox tree and the
//! Gofer client against the real Gofer.

use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::flags::open::*;
use platform::MemoryFile;

use super::file::seek;
use super::proc::{ProcInfo, ProcSource};
use super::tmpfs::Tmpfs;
use super::vfs::{Follow, RENAME_NOREPLACE, Vfs, VfsPath};
use super::*;

fn mf() -> Arc<MemoryFile> {
    Arc::new(MemoryFile::new("vfs-test", 256 << 20).unwrap())
}

fn tree() -> (Arc<Vfs>, VfsPath) {
    let vfs = Vfs::new(Tmpfs::new_root(mf(), 0o755, 0, 0), "tmpfs", "tmpfs");
    let r = vfs.root();
    (vfs, r)
}

fn root() -> FsCred {
    FsCred::root()
}

fn user() -> FsCred {
    FsCred::user(1000, 1000, vec![])
}

fn resolve(vfs: &Vfs, r: &VfsPath, p: &str) -> Result<VfsPath, Errno> {
    vfs.resolve(r, r, p.as_bytes(), Follow::Yes, &root())
}

fn create(vfs: &Vfs, r: &VfsPath, p: &str, data: &[u8]) -> Arc<OpenFile> {
    let f = vfs
        .open_at(r, r, p.as_bytes(), O_CREAT | O_RDWR, 0o644, &root())
        .unwrap();
    assert_eq!(f.write(&Caller::KERNEL, data).unwrap(), data.len());
    f
}

#[test]
fn symlink_loops_give_eloop_and_chains_resolve() {
    let (vfs, r) = tree();
    vfs.symlink(&r, &r, b"b", b"a", &root()).unwrap();
    vfs.symlink(&r, &r, b"a", b"b", &root()).unwrap();
    vfs.symlink(&r, &r, b"self", b"self", &root()).unwrap();
    assert_eq!(resolve(&vfs, &r, "/a").err(), Some(Errno::ELOOP));
    assert_eq!(resolve(&vfs, &r, "self/x").err(), Some(Errno::ELOOP));
    // lstat-style resolution of the link itself works.
    let l = vfs.resolve(&r, &r, b"/a", Follow::No, &root()).unwrap();
    assert_eq!(l.file_type().unwrap(), FileType::Symlink);
    // A chain of 40 links resolves; 41 does not.
    vfs.mkdir(&r, &r, b"/d", 0o755, &root()).unwrap();
    vfs.symlink(&r, &r, b"/d", b"l0", &root()).unwrap();
    for i in 1..=41 {
        vfs.symlink(
            &r,
            &r,
            format!("l{}", i - 1).as_bytes(),
            format!("l{i}").as_bytes(),
            &root(),
        )
        .unwrap();
    }
    assert!(resolve(&vfs, &r, "l39").is_ok());
    assert_eq!(resolve(&vfs, &r, "l40").err(), Some(Errno::ELOOP));
    // Relative links resolve from the link's directory.
    vfs.mkdir(&r, &r, b"/d/e", 0o755, &root()).unwrap();
    vfs.symlink(&r, &r, b"../d/e", b"/d/up", &root()).unwrap();
    assert_eq!(resolve(&vfs, &r, "/d/up").unwrap().path_from(None), b"/d/e");
}

#[test]
fn dotdot_is_clamped_at_the_root_and_crosses_mounts() {
    let (vfs, r) = tree();
    vfs.mkdir(&r, &r, b"/a", 0o755, &root()).unwrap();
    vfs.mkdir(&r, &r, b"/a/b", 0o755, &root()).unwrap();
    assert!(resolve(&vfs, &r, "/../../..").unwrap() == r);
    assert!(resolve(&vfs, &r, "../a/../..").unwrap() == r);
    // A task root (chroot) clamps too.
    let a = resolve(&vfs, &r, "/a").unwrap();
    let b = vfs
        .resolve(&a, &a, b"/b/../../../b", Follow::Yes, &root())
        .unwrap();
    assert_eq!(b.path_from(Some(&a)), b"/b");
    // Mount crossing both ways.
    let mnt = resolve(&vfs, &r, "/a/b").unwrap();
    vfs.mount(
        &mnt,
        Tmpfs::new_root(mf(), 0o1777, 0, 0),
        "tmpfs",
        "tmpfs",
        false,
    )
    .unwrap();
    let inner = resolve(&vfs, &r, "/a/b").unwrap();
    assert_eq!(
        inner.stat().unwrap().st_mode & 0o7777,
        0o1777,
        "the walk lands on the mounted root"
    );
    create(&vfs, &r, "/a/b/x", b"x");
    let x = resolve(&vfs, &r, "/a/b/x").unwrap();
    assert_eq!(x.path_from(None), b"/a/b/x");
    assert_eq!(resolve(&vfs, &r, "/a/b/..").unwrap().path_from(None), b"/a");
    assert_eq!(
        vfs.unlink(&r, &r, b"/a/b", true, &root()),
        Err(Errno::EBUSY)
    );
    assert_eq!(vfs.link(&r, &x, &r, b"/xlink", &root()), Err(Errno::EXDEV));
}

#[test]
fn binds_of_files_and_directories_and_read_only_mounts() {
    let (vfs, r) = tree();
    vfs.mkdir(&r, &r, b"/d", 0o755, &root()).unwrap();
    create(&vfs, &r, "/d/f", b"data");
    create(&vfs, &r, "/other", b"other!");
    // A file bound on a file: the walk lands on the source, reads come from it.
    let at = resolve(&vfs, &r, "/d/f").unwrap();
    let src = resolve(&vfs, &r, "/other").unwrap();
    vfs.bind(&at, &src, false).unwrap();
    let f = vfs.open_at(&r, &r, b"/d/f", O_RDONLY, 0, &root()).unwrap();
    assert_eq!(read_all(&f), b"other!");
    // A directory cannot go on a file, nor a file on a directory.
    let d = resolve(&vfs, &r, "/d").unwrap();
    assert_eq!(vfs.bind(&at, &d, false).err(), Some(Errno::ENOTDIR));
    assert_eq!(vfs.bind(&d, &src, false).err(), Some(Errno::EISDIR));
    // A read-only bind of a directory on itself: writes below it are EROFS, even where
    // the mode bits would refuse first; the same files outside stay writable.
    vfs.bind(&d, &d, true).unwrap();
    assert_eq!(
        vfs.open_at(&r, &r, b"/d/new", O_CREAT | O_WRONLY, 0o644, &root())
            .err(),
        Some(Errno::EROFS)
    );
    assert_eq!(
        vfs.mkdir(&r, &r, b"/d/sub", 0o755, &user()).err(),
        Some(Errno::EROFS)
    );
    // Making the root read-only leaves the mounts on it as they were.
    vfs.mkdir(&r, &r, b"/t", 0o755, &root()).unwrap();
    let t = resolve(&vfs, &r, "/t").unwrap();
    vfs.mount(
        &t,
        Tmpfs::new_root(mf(), 0o1777, 0, 0),
        "tmpfs",
        "tmpfs",
        false,
    )
    .unwrap();
    r.mount.set_readonly(true);
    assert_eq!(
        vfs.mkdir(&r, &r, b"/x", 0o755, &root()).err(),
        Some(Errno::EROFS)
    );
    create(&vfs, &r, "/t/ok", b"ok");
}

#[test]
fn open_flags() {
    let (vfs, r) = tree();
    let c = root();
    create(&vfs, &r, "/f", b"hello");
    assert_eq!(
        vfs.open_at(&r, &r, b"/f", O_CREAT | O_EXCL | O_RDWR, 0o644, &c)
            .err(),
        Some(Errno::EEXIST)
    );
    let f = vfs.open_at(&r, &r, b"/f", O_RDWR | O_TRUNC, 0, &c).unwrap();
    assert_eq!(f.stat().unwrap().st_size, 0, "O_TRUNC truncates");
    f.write(&Caller::KERNEL, b"abc").unwrap();
    assert_eq!(
        vfs.open_at(&r, &r, b"/f", O_RDONLY | O_DIRECTORY, 0, &c)
            .err(),
        Some(Errno::ENOTDIR)
    );
    assert_eq!(
        vfs.open_at(&r, &r, b"/f/", O_RDONLY, 0, &c).err(),
        Some(Errno::ENOTDIR)
    );
    assert_eq!(
        vfs.open_at(&r, &r, b"/", O_WRONLY, 0, &c).err(),
        Some(Errno::EISDIR)
    );
    assert_eq!(
        vfs.open_at(&r, &r, b"/missing", O_RDONLY, 0, &c).err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        vfs.open_at(&r, &r, b"/missing/x", O_CREAT | O_RDWR, 0, &c)
            .err(),
        Some(Errno::ENOENT)
    );
    vfs.symlink(&r, &r, b"/f", b"/lnk", &c).unwrap();
    assert_eq!(
        vfs.open_at(&r, &r, b"/lnk", O_RDONLY | O_NOFOLLOW, 0, &c)
            .err(),
        Some(Errno::ELOOP)
    );
    let p = vfs
        .open_at(&r, &r, b"/lnk", O_PATH | O_NOFOLLOW, 0, &c)
        .unwrap();
    assert_eq!(p.stat().unwrap().st_mode & S_IFMT, S_IFLNK);
    assert_eq!(
        p.read(&Caller::KERNEL, &mut [0u8; 4]),
        Err(Errno::EBADF),
        "O_PATH files do no I/O"
    );
    // O_CREAT through a dangling symlink creates the target.
    vfs.symlink(&r, &r, b"/made", b"/dangling", &c).unwrap();
    vfs.open_at(&r, &r, b"/dangling", O_CREAT | O_WRONLY, 0o600, &c)
        .unwrap();
    assert!(resolve(&vfs, &r, "/made").is_ok());
    let long = "x".repeat(256);
    assert_eq!(resolve(&vfs, &r, &long).err(), Some(Errno::ENAMETOOLONG));
    let very_long = "a/".repeat(2100);
    assert_eq!(
        resolve(&vfs, &r, &very_long).err(),
        Some(Errno::ENAMETOOLONG)
    );
    // O_APPEND writes at the end; offsets are per description.
    let a = vfs
        .open_at(&r, &r, b"/f", O_WRONLY | O_APPEND, 0, &c)
        .unwrap();
    a.write(&Caller::KERNEL, b"Z").unwrap();
    let rd = vfs.open_at(&r, &r, b"/f", O_RDONLY, 0, &c).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(rd.read(&Caller::KERNEL, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"abcZ");
    assert_eq!(rd.write(&Caller::KERNEL, b"no"), Err(Errno::EBADF));
    assert_eq!(rd.seek(-1, seek::SEEK_END).unwrap(), 3);
    assert_eq!(rd.seek(-10, seek::SEEK_CUR), Err(Errno::EINVAL));
}

#[test]
fn permissions_follow_mode_bits() {
    let (vfs, r) = tree();
    let u = user();
    assert_eq!(
        vfs.open_at(&r, &r, b"/f", O_CREAT | O_RDWR, 0o600, &u)
            .err(),
        Some(Errno::EACCES)
    );
    create(&vfs, &r, "/secret", b"s");
    vfs.setattr(
        &resolve(&vfs, &r, "/secret").unwrap(),
        &SetAttr {
            mode: Some(0o600),
            ..Default::default()
        },
        &root(),
    )
    .unwrap();
    assert_eq!(
        vfs.open_at(&r, &r, b"/secret", O_RDONLY, 0, &u).err(),
        Some(Errno::EACCES)
    );
    assert!(
        vfs.open_at(&r, &r, b"/secret", O_RDONLY, 0, &root())
            .is_ok()
    );
    // O_NOATIME: the owner or CAP_FOWNER only, even where reading is allowed (LTP open02).
    create(&vfs, &r, "/public", b"p");
    assert!(vfs.open_at(&r, &r, b"/public", O_RDONLY, 0, &u).is_ok());
    assert_eq!(
        vfs.open_at(&r, &r, b"/public", O_RDONLY | O_NOATIME, 0, &u)
            .err(),
        Some(Errno::EPERM)
    );
    assert!(
        vfs.open_at(&r, &r, b"/public", O_RDONLY | O_NOATIME, 0, &root())
            .is_ok()
    );
    vfs.mkdir(&r, &r, b"/home", 0o755, &root()).unwrap();
    let home = resolve(&vfs, &r, "/home").unwrap();
    vfs.setattr(
        &home,
        &SetAttr {
            uid: Some(1000),
            gid: Some(1000),
            ..Default::default()
        },
        &root(),
    )
    .unwrap();
    vfs.mkdir(&r, &r, b"/home/sub", 0o700, &u).unwrap();
    let sub = resolve(&vfs, &r, "/home/sub").unwrap();
    assert_eq!(sub.stat().unwrap().st_uid, 1000);
    vfs.setattr(
        &sub,
        &SetAttr {
            mode: Some(0o000),
            ..Default::default()
        },
        &u,
    )
    .unwrap();
    assert_eq!(
        vfs.resolve(&r, &r, b"/home/sub/x", Follow::Yes, &u).err(),
        Some(Errno::EACCES)
    );
    assert_eq!(
        vfs.setattr(
            &resolve(&vfs, &r, "/secret").unwrap(),
            &SetAttr {
                mode: Some(0o777),
                ..Default::default()
            },
            &u
        ),
        Err(Errno::EPERM)
    );
    // Sticky directories protect other users' files.
    vfs.mkdir(&r, &r, b"/tmp", 0o777, &root()).unwrap();
    let tmp = resolve(&vfs, &r, "/tmp").unwrap();
    vfs.setattr(
        &tmp,
        &SetAttr {
            mode: Some(0o1777),
            ..Default::default()
        },
        &root(),
    )
    .unwrap();
    create(&vfs, &r, "/tmp/roots", b"");
    assert_eq!(
        vfs.unlink(&r, &r, b"/tmp/roots", false, &u),
        Err(Errno::EPERM)
    );
}

#[test]
fn namespace_operations_keep_dentries_right() {
    let (vfs, r) = tree();
    let c = root();
    vfs.mkdir(&r, &r, b"/d", 0o755, &c).unwrap();
    assert_eq!(vfs.mkdir(&r, &r, b"/d", 0o755, &c), Err(Errno::EEXIST));
    let f = create(&vfs, &r, "/d/f", b"data");
    vfs.rename(&r, &r, b"/d/f", &r, b"/g", 0, &c).unwrap();
    assert_eq!(f.path(), b"/g", "an open file follows its rename");
    create(&vfs, &r, "/h", b"");
    assert_eq!(
        vfs.rename(&r, &r, b"/g", &r, b"/h", RENAME_NOREPLACE, &c),
        Err(Errno::EEXIST)
    );
    vfs.rename(&r, &r, b"/g", &r, b"/h", 0, &c).unwrap();
    assert_eq!(
        vfs.rename(&r, &r, b"/d", &r, b"/d/x", 0, &c),
        Err(Errno::EINVAL)
    );
    assert_eq!(vfs.unlink(&r, &r, b"/d", false, &c), Err(Errno::EISDIR));
    assert_eq!(vfs.unlink(&r, &r, b"/h", true, &c), Err(Errno::ENOTDIR));
    let held = vfs.open_at(&r, &r, b"/h", O_RDONLY, 0, &c).unwrap();
    vfs.unlink(&r, &r, b"/h", false, &c).unwrap();
    assert_eq!(held.path(), b"/h (deleted)");
    let mut buf = [0u8; 4];
    assert_eq!(
        held.read(&Caller::KERNEL, &mut buf).unwrap(),
        4,
        "an unlinked open file stays readable"
    );
    vfs.link(&r, &resolve(&vfs, &r, "/d").unwrap(), &r, b"/dl", &c)
        .unwrap_err();
    create(&vfs, &r, "/d/a", b"");
    create(&vfs, &r, "/d/b", b"");
    let d = vfs
        .open_at(&r, &r, b"/d", O_RDONLY | O_DIRECTORY, 0, &c)
        .unwrap();
    let bytes = d.getdents(4096, false).unwrap();
    let mut names = Vec::new();
    let mut off = 0;
    while off < bytes.len() {
        let reclen = u16::from_le_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
        let name = &bytes[off + 19..off + reclen];
        names.push(
            String::from_utf8_lossy(
                &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())],
            )
            .into_owned(),
        );
        off += reclen;
    }
    assert_eq!(names, vec![".", "..", "a", "b"]);
    assert!(
        d.getdents(4096, false).unwrap().is_empty(),
        "end of directory"
    );
    d.seek(0, seek::SEEK_SET).unwrap();
    assert_eq!(
        d.getdents(8, false),
        Err(Errno::EINVAL),
        "a buffer too small for one entry"
    );
    assert_eq!(d.read(&Caller::KERNEL, &mut buf), Err(Errno::EISDIR));
}

#[test]
fn fd_table_semantics() {
    let (vfs, r) = tree();
    let f = create(&vfs, &r, "/f", b"");
    let t = FdTable::new();
    assert_eq!(t.insert(f.clone(), false).unwrap(), 0);
    assert_eq!(t.insert(f.clone(), true).unwrap(), 1);
    assert_eq!(t.insert(f.clone(), false).unwrap(), 2);
    t.remove(1).unwrap();
    assert_eq!(t.insert(f.clone(), true).unwrap(), 1, "lowest free number");
    assert_eq!(t.insert_min(f.clone(), 10, false).unwrap(), 10);
    let child = t.fork();
    t.close_on_exec();
    assert_eq!(t.get(1).err(), Some(Errno::EBADF));
    assert!(child.get(1).is_ok(), "fork copies the table");
    t.set_limit(3);
    assert_eq!(t.insert(f.clone(), false).unwrap(), 1);
    assert_eq!(t.insert(f, false).err(), Some(Errno::EMFILE));
    assert_eq!(t.close_range(0, u32::MAX, false).len(), 4);
}

#[derive(Debug)]
struct FakeKernel {
    fds: Arc<FdTable>,
    ctx: Arc<FsContext>,
}

impl ProcSource for FakeKernel {
    fn pids(&self) -> Vec<i32> {
        vec![1]
    }
    fn process(&self, pid: i32) -> Option<ProcInfo> {
        (pid == 1).then(|| ProcInfo {
            pid: 1,
            tids: vec![1, 2],
            comm: b"init".to_vec(),
            state: 'R',
            cmdline: b"/bin/init\0-x\0".to_vec(),
            ..ProcInfo::default()
        })
    }
    fn maps(&self, _pid: i32) -> Option<Vec<u8>> {
        Some(b"00400000-00401000 r-xp 00000000 00:00 0 /bin/init\n".to_vec())
    }
    fn fd_table(&self, _pid: i32) -> Option<Arc<FdTable>> {
        Some(self.fds.clone())
    }
    fn fs_context(&self, _pid: i32) -> Option<Arc<FsContext>> {
        Some(self.ctx.clone())
    }
    fn exe(&self, _pid: i32) -> Option<VfsPath> {
        None
    }
    fn hostname(&self) -> String {
        "box".into()
    }
    fn boot_id(&self) -> String {
        "8d3a2b9e-1f0c-4c2d-9a8b-0e6f5d4c3b2a".into()
    }
    fn uptime(&self) -> f64 {
        1.5
    }
}

fn read_all(f: &OpenFile) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = f.read(&Caller::KERNEL, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn sandbox_tree_dev_proc_and_sys() {
    let vfs = Vfs::new_sandbox(mf(), None, Default::default()).unwrap();
    let ctx = Arc::new(vfs.root_context(b"/tmp").unwrap());
    let fds = Arc::new(FdTable::new());
    let kernel: Arc<dyn ProcSource> = Arc::new(FakeKernel {
        fds: fds.clone(),
        ctx: ctx.clone(),
    });
    let weak: Weak<dyn ProcSource> = Arc::downgrade(&kernel);
    vfs.set_proc_source(weak);
    let c = FsCred {
        caller: crate::fs::Caller { tgid: 1, tid: 1 },
        ..root()
    };
    let open = |p: &str, fl: u32| vfs.open(&ctx, &c, p.as_bytes(), fl, 0o644);
    assert_eq!(ctx.cwd_path(), b"/tmp");
    let null = open("/dev/null", O_WRONLY).unwrap();
    assert_eq!(null.write(&Caller::KERNEL, b"gone").unwrap(), 4);
    let local = open("x", O_CREAT | O_RDWR).unwrap();
    assert_eq!(local.path(), b"/tmp/x");
    fds.insert(local, false).unwrap();
    fds.insert(null, false).unwrap();
    // Magic links reopen the very file.
    let again = open("/dev/fd/0", O_RDWR).unwrap();
    again.write(&Caller::KERNEL, b"via proc").unwrap();
    assert_eq!(
        open("/tmp/x", O_RDONLY).map(|f| read_all(&f)).unwrap(),
        b"via proc"
    );
    assert_eq!(
        Vfs::readlink(
            &vfs.resolve(&ctx.root(), &ctx.cwd(), b"/proc/self/fd/1", Follow::No, &c)
                .unwrap(),
            &c.caller
        )
        .unwrap(),
        b"/dev/null"
    );
    assert_eq!(
        read_all(&open("/proc/self/comm", O_RDONLY).unwrap()),
        b"init\n"
    );
    // `/proc/self` and `/proc/thread-self` follow the caller passed in, not the thread.
    let self_as = |tgid: i32, tid: i32, link: &[u8]| {
        let caller = crate::fs::Caller { tgid, tid };
        let p = vfs
            .resolve(&ctx.root(), &ctx.cwd(), link, Follow::No, &c)
            .unwrap();
        Vfs::readlink(&p, &caller).unwrap()
    };
    assert_eq!(self_as(1, 1, b"/proc/self"), b"1");
    assert_eq!(self_as(7, 9, b"/proc/self"), b"7");
    assert_eq!(self_as(7, 9, b"/proc/thread-self"), b"7/task/9");
    assert_eq!(
        vfs.resolve(&ctx.root(), &ctx.cwd(), b"/proc/self", Follow::Yes, &c)
            .unwrap()
            .path_from(None),
        b"/proc/1"
    );
    assert_eq!(
        read_all(&open("/proc/1/cmdline", O_RDONLY).unwrap()),
        b"/bin/init\0-x\0"
    );
    assert!(
        String::from_utf8(read_all(&open("/proc/self/status", O_RDONLY).unwrap()))
            .unwrap()
            .contains("Threads:\t2")
    );
    assert!(read_all(&open("/proc/1/task/2/stat", O_RDONLY).unwrap()).starts_with(b"2 (init) R"));
    assert_eq!(
        read_all(&open("/proc/sys/kernel/hostname", O_RDONLY).unwrap()),
        b"box\n"
    );
    // The boot id is the kernel's, not drawn anew by each procfs instance.
    assert_eq!(
        read_all(&open("/proc/sys/kernel/random/boot_id", O_RDONLY).unwrap()),
        b"8d3a2b9e-1f0c-4c2d-9a8b-0e6f5d4c3b2a\n"
    );
    let mounts = String::from_utf8(read_all(&open("/proc/mounts", O_RDONLY).unwrap())).unwrap();
    assert!(mounts.contains("proc /proc proc rw"), "{mounts}");
    assert!(mounts.contains("tmpfs /tmp tmpfs rw"), "{mounts}");
    assert_eq!(
        read_all(&open("/proc/self/cwd/x", O_RDONLY).unwrap()),
        b"via proc"
    );
    assert!(!read_all(&open("/proc/meminfo", O_RDONLY).unwrap()).is_empty());
    assert_eq!(open("/proc/meminfo", O_WRONLY).err(), Some(Errno::EACCES));
    assert_eq!(
        open("/proc/2", O_RDONLY)
            .map(|f| f.stat().unwrap().st_mode & S_IFMT)
            .unwrap(),
        S_IFDIR
    );
    assert_eq!(open("/proc/99", O_RDONLY).err(), Some(Errno::ENOENT));
    assert!(!read_all(&open("/sys/devices/system/cpu/online", O_RDONLY).unwrap()).is_empty());
    assert_eq!(open("/sys/x", O_CREAT | O_RDWR).err(), Some(Errno::EROFS));
    let shm = open("/dev/shm/seg", O_CREAT | O_RDWR).unwrap();
    assert!(
        shm.ops().shared_page(0).is_some(),
        "tmpfs pages can be mapped"
    );
    assert_eq!(shm.inode().statfs().unwrap().magic, magic::TMPFS);
}

#[test]
fn gofer_lower_under_overlay() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/hosts"), b"127.0.0.1 localhost\n").unwrap();
    std::fs::write(dir.path().join("etc/motd"), b"hi\n").unwrap();
    std::os::unix::fs::symlink("etc/hosts", dir.path().join("hosts")).unwrap();
    let (client, server) = lisafs_proto::socketpair().unwrap();
    let host_root = dir.path().to_path_buf();
    let srv = std::thread::spawn(move || {
        ::gofer::serve(
            &host_root,
            server,
            ::gofer::GoferOptions {
                read_only: true,
                confine: false,
                threads: 2,
            },
        )
    });
    {
        let vfs = Vfs::new_sandbox(mf(), Some(client), Default::default()).unwrap();
        let ctx = vfs.root_context(b"/").unwrap();
        let c = root();
        let open = |p: &str, fl: u32| vfs.open(&ctx, &c, p.as_bytes(), fl, 0o644);
        assert_eq!(
            read_all(&open("/hosts", O_RDONLY).unwrap()),
            b"127.0.0.1 localhost\n"
        );
        assert_eq!(open("/etc/nothere", O_RDONLY).err(), Some(Errno::ENOENT));
        // Writes land in the overlay, never on the host.
        let w = open("/etc/hosts", O_WRONLY | O_APPEND).unwrap();
        w.write(&Caller::KERNEL, b"10.0.0.1 box\n").unwrap();
        assert_eq!(
            read_all(&open("/etc/hosts", O_RDONLY).unwrap()),
            b"127.0.0.1 localhost\n10.0.0.1 box\n"
        );
        vfs.unlink(&ctx.root(), &ctx.cwd(), b"/etc/motd", false, &c)
            .unwrap();
        vfs.mkdir(&ctx.root(), &ctx.cwd(), b"/etc/new", 0o755, &c)
            .unwrap();
        let d = open("/etc", O_RDONLY | O_DIRECTORY).unwrap();
        let bytes = d.getdents(4096, false).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("hosts") && text.contains("new") && !text.contains("motd"));
        assert_eq!(
            open("/etc", O_RDONLY)
                .unwrap()
                .inode()
                .statfs()
                .unwrap()
                .magic,
            magic::OVERLAY
        );
    }
    assert_eq!(
        std::fs::read(dir.path().join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert!(dir.path().join("etc/motd").exists());
    assert!(!dir.path().join("etc/new").exists());
    srv.join().unwrap().unwrap();
}

#[test]
fn concurrent_namespace_operations_do_not_deadlock() {
    let mf = mf();
    let lower: Arc<dyn Inode> = Tmpfs::new_root(mf.clone(), 0o755, 0, 0);
    lower
        .create(b"shared", NewNode::Dir { mode: 0o777 }, &root())
        .unwrap();
    let upper = Tmpfs::new_root(mf, 0o755, 0, 0);
    let vfs = Vfs::new(overlay::new_overlay(upper, lower), "overlay", "overlay");
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let vfs = vfs.clone();
            std::thread::spawn(move || {
                let r = vfs.root();
                let c = root();
                for i in 0..100 {
                    let p = format!("/shared/{n}-{i}");
                    let q = format!("/shared/{n}-{i}.r");
                    let f = vfs
                        .open_at(&r, &r, p.as_bytes(), O_CREAT | O_RDWR, 0o644, &c)
                        .unwrap();
                    f.write(&Caller::KERNEL, b"data").unwrap();
                    vfs.rename(&r, &r, p.as_bytes(), &r, q.as_bytes(), 0, &c)
                        .unwrap();
                    let d = vfs
                        .open_at(&r, &r, b"/shared", O_RDONLY | O_DIRECTORY, 0, &c)
                        .unwrap();
                    d.getdents(65536, false).unwrap();
                    if i % 2 == 1 {
                        vfs.unlink(&r, &r, q.as_bytes(), false, &c).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let r = vfs.root();
    let d = vfs
        .open_at(&r, &r, b"/shared", O_RDONLY | O_DIRECTORY, 0, &root())
        .unwrap();
    assert_eq!(d.inode().readdir().unwrap().len(), 200);
}

#[test]
fn container_trees_are_separate_mount_namespaces() {
    let mf = mf();
    let vfs = Vfs::new_sandbox(mf.clone(), None, Default::default()).unwrap();
    let a = vfs.root();
    let before = vfs.mounts().len();
    // Two containers of a pod: a second tree in the same mount table.
    let b = vfs.new_tree(mf.clone(), None, Default::default()).unwrap();
    assert_ne!(a.mount.id(), b.mount.id());
    assert!(Arc::ptr_eq(&b.mount.top(), &b.mount));
    create(&vfs, &a, "/only-a", b"a");
    create(&vfs, &b, "/only-b", b"b");
    assert!(resolve(&vfs, &a, "/only-a").is_ok());
    assert_eq!(resolve(&vfs, &b, "/only-a").err(), Some(Errno::ENOENT));
    assert_eq!(resolve(&vfs, &a, "/only-b").err(), Some(Errno::ENOENT));
    // Neither `..` nor an absolute symlink leads out of a tree.
    assert_eq!(
        resolve(&vfs, &b, "/../../only-a").err(),
        Some(Errno::ENOENT)
    );
    vfs.symlink(&b, &b, b"/only-a", b"link", &root()).unwrap();
    assert_eq!(resolve(&vfs, &b, "/link").err(), Some(Errno::ENOENT));
    // Each tree has its own /tmp, /dev and /proc: a file made in one is not in the other.
    create(&vfs, &a, "/tmp/t", b"a");
    assert_eq!(resolve(&vfs, &b, "/tmp/t").err(), Some(Errno::ENOENT));
    create(&vfs, &a, "/dev/shm/s", b"a");
    assert_eq!(resolve(&vfs, &b, "/dev/shm/s").err(), Some(Errno::ENOENT));
    assert!(resolve(&vfs, &b, "/dev/null").is_ok());
    // A mount in one tree is not seen in the other, nor listed in its /proc/mounts.
    let data = vfs.mkdir(&a, &a, b"/data", 0o755, &root());
    assert!(data.is_ok());
    let at = resolve(&vfs, &a, "/data").unwrap();
    vfs.mount(
        &at,
        Tmpfs::new_root(mf.clone(), 0o755, 0, 0),
        "tmpfs",
        "only-in-a",
        false,
    )
    .unwrap();
    let ctx = Arc::new(vfs.context_at(b.clone(), b"/").unwrap());
    let kernel: Arc<dyn ProcSource> = Arc::new(FakeKernel {
        fds: Arc::new(FdTable::new()),
        ctx: ctx.clone(),
    });
    let weak: Weak<dyn ProcSource> = Arc::downgrade(&kernel);
    vfs.set_proc_source(weak);
    assert_eq!(ctx.cwd_path(), b"/");
    let c = FsCred {
        caller: crate::fs::Caller { tgid: 1, tid: 1 },
        ..root()
    };
    let mounts = vfs
        .open(&ctx, &c, b"/proc/mounts", O_RDONLY, 0)
        .map(|f| String::from_utf8(read_all(&f)).unwrap())
        .unwrap();
    assert!(mounts.contains("proc /proc proc rw"), "{mounts}");
    assert!(!mounts.contains("only-in-a"), "{mounts}");
    assert_eq!(mounts.lines().count(), before, "{mounts}");
    // Removing the second tree forgets its mounts; the first keeps its own.
    vfs.remove_tree(&b.mount);
    assert_eq!(vfs.mounts().len(), before + 1);
    assert!(resolve(&vfs, &a, "/data").is_ok());
    // The first tree cannot be removed.
    vfs.remove_tree(&a.mount);
    assert_eq!(vfs.mounts().len(), before + 1);
}
