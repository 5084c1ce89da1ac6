//! devpts: the file system at `/dev/pts` (Linux's `fs/devpts`), with `ptmx`, which makes a
//! new pseudo-terminal pair on each open ([`super::pty`]), and one `N` for each replica,
//! numbered from the lowest free number and gone when its master closes. The host
//! terminals given to the sandbox as stdio get their numbers here too, so that `ttyname`
//! finds them (`/dev/pts/0` for `runsc do`'s own terminal).
//!
//! New replicas belong to the opener's file-system user, group 5 (`tty`) with mode 0620,
//! and `ptmx` has mode 0666, as container runtimes mount devpts
//! (`newinstance,ptmxmode=0666,mode=0620,gid=5`), unless a mount's options
//! ([`DevptsOptions`]) say otherwise; `/dev/ptmx` is a symlink to `pts/ptmx`,
//! as the OCI runtime specification asks. `chmod` and `chown` of a replica (`grantpt`)
//! work.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::types::Stat;
use parking_lot::Mutex;

use super::pty::{MasterFile, PTS_MAJOR, Pty};
use super::tty::{Terminal, Terminals};
use super::{
    Caller, DirEntry, FileOps, FileType, FsCred, FsStat, Inode, NewNode, NodeMeta, SetAttr,
    make_stat, new_dev, new_ino,
};

/// `DEVPTS_SUPER_MAGIC`.
pub const DEVPTS_MAGIC: u64 = 0x1cd1;
/// Most pairs at once (`/proc/sys/kernel/pty/max`).
pub const PTY_MAX: u32 = 4096;
/// The group of new replicas as container runtimes mount devpts (`gid=5`, `tty`).
const TTY_GID: u32 = 5;
/// The mode of new replicas as container runtimes mount devpts (`mode=0620`).
const REPLICA_MODE: u32 = 0o620;

/// The `stat` of a devpts node: a character device `rdev`.
fn device_stat(m: &NodeMeta, dev: u64, ino: u64, rdev: u64) -> Stat {
    let mut st = m.stat(dev, ino, 1, 0);
    st.st_rdev = rdev;
    st
}

/// The options of a devpts instance (`mode=`, `gid=`, `uid=`, `ptmxmode=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevptsOptions {
    /// Permission bits of new replicas.
    pub mode: u32,
    /// Owner of new replicas (`None`: the opener's file-system user).
    pub uid: Option<u32>,
    /// Group of new replicas (`None`: the opener's file-system group).
    pub gid: Option<u32>,
    /// Permission bits of `ptmx`.
    pub ptmxmode: u32,
}

impl Default for DevptsOptions {
    /// As container runtimes mount devpts: `newinstance,ptmxmode=0666,mode=0620,gid=5`.
    fn default() -> Self {
        DevptsOptions {
            mode: REPLICA_MODE,
            uid: None,
            gid: Some(TTY_GID),
            ptmxmode: 0o666,
        }
    }
}

impl DevptsOptions {
    /// The options of a `mount -t devpts -o <options>`: Linux's defaults (`mode=0600`,
    /// the opener's user and group, `ptmxmode=0000`) changed by each option; `EINVAL`
    /// for one Linux does not take or a bad number.
    pub fn parse<'a>(options: impl IntoIterator<Item = &'a str>) -> Result<Self, Errno> {
        let mut o = DevptsOptions {
            mode: 0o600,
            uid: None,
            gid: None,
            ptmxmode: 0,
        };
        let octal = |v: &str| u32::from_str_radix(v, 8).map(|m| m & 0o7777);
        for opt in options {
            let (k, v) = opt.split_once('=').unwrap_or((opt, ""));
            let bad = |_| Errno::EINVAL;
            match k {
                "mode" => o.mode = octal(v).map_err(bad)?,
                "ptmxmode" => o.ptmxmode = octal(v).map_err(bad)?,
                "uid" => o.uid = Some(v.parse().map_err(bad)?),
                "gid" => o.gid = Some(v.parse().map_err(bad)?),
                "max" => {
                    v.parse::<u32>().map_err(bad)?;
                }
                "newinstance" if v.is_empty() => {}
                _ => return Err(Errno::EINVAL),
            }
        }
        Ok(o)
    }
}

/// A `dev_t` as glibc's `makedev` encodes it.
pub fn makedev(major: u32, minor: u32) -> u64 {
    let (major, minor) = (u64::from(major), u64::from(minor));
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// One devpts instance: its root directory.
pub struct Devpts {
    dev: u64,
    ino: u64,
    terminals: Arc<Terminals>,
    ptmx: Arc<PtmxInode>,
    /// Replicas and host terminals by number.
    entries: Mutex<BTreeMap<u32, Arc<dyn Inode>>>,
    /// Numbers of pairs whose master closed while replica files stay open: not named any
    /// more, not free either until the last replica closes (Linux frees a number with the
    /// pair).
    reserved: Mutex<std::collections::BTreeSet<u32>>,
    /// The mount options in force.
    options: Mutex<DevptsOptions>,
    me: Weak<Devpts>,
}

impl std::fmt::Debug for Devpts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devpts")
            .field("dev", &self.dev)
            .field("entries", &self.entries.lock().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Devpts {
    /// A new, empty instance whose terminals' job control is `terminals`'.
    pub fn new(terminals: Arc<Terminals>) -> Arc<Devpts> {
        let dev = new_dev();
        Arc::new_cyclic(|me| Devpts {
            dev,
            ino: 1,
            terminals,
            ptmx: Arc::new(PtmxInode {
                dev,
                devpts: me.clone(),
                meta: Mutex::new(NodeMeta::new(S_IFCHR | 0o666, 0, 0)),
            }),
            entries: Mutex::new(BTreeMap::new()),
            reserved: Mutex::new(std::collections::BTreeSet::new()),
            options: Mutex::new(DevptsOptions::default()),
            me: me.clone(),
        })
    }

    /// Applies mount options: new replicas get their mode and owner, `ptmx` its mode.
    pub fn set_options(&self, o: DevptsOptions) {
        *self.options.lock() = o;
        self.ptmx.meta.lock().mode = S_IFCHR | o.ptmxmode;
    }

    /// The kernel's terminals (job control).
    pub fn terminals(&self) -> &Arc<Terminals> {
        &self.terminals
    }

    /// Takes the lowest free number for `inode` (`ENOSPC` past [`PTY_MAX`]).
    fn add(&self, make: impl FnOnce(u32) -> Arc<dyn Inode>) -> Result<u32, Errno> {
        let mut e = self.entries.lock();
        let reserved = self.reserved.lock();
        let n = (0..PTY_MAX)
            .find(|n| !e.contains_key(n) && !reserved.contains(n))
            .ok_or(Errno::ENOSPC)?;
        e.insert(n, make(n));
        Ok(n)
    }

    /// Names a host terminal `/dev/pts/N`; returns N.
    pub fn add_host(&self, inode: Arc<dyn Inode>) -> Result<u32, Errno> {
        self.add(|_| inode)
    }

    /// Drops `/dev/pts/N` (its master closed); while `keep`, the number stays taken
    /// (replica files are still open) until [`Devpts::release`].
    pub fn remove(&self, n: u32, keep: bool) {
        let mut e = self.entries.lock();
        e.remove(&n);
        if keep {
            self.reserved.lock().insert(n);
        }
    }

    /// The last replica file of a pair whose master closed is gone: its number is free.
    pub fn release(&self, n: u32) {
        self.reserved.lock().remove(&n);
    }

    /// A new pair for `caller`: its master, and the replica `/dev/pts/N` (locked until
    /// `unlockpt`), owned by the caller's file-system user.
    fn new_pair(&self, caller: &Caller, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let me = self.me.upgrade().ok_or(Errno::ENXIO)?;
        let (fsuid, fsgid) = self.terminals.fs_ids(caller.tgid);
        let o = *self.options.lock();
        let (mode, uid, gid) = (o.mode, o.uid.unwrap_or(fsuid), o.gid.unwrap_or(fsgid));
        let mut pair = None;
        self.add(|n| {
            let pty = Arc::new(Pty::new(n, self.me.clone()));
            let t = Terminal::new_pty(pty.clone());
            pair = Some((t.clone(), pty));
            Arc::new(ReplicaInode {
                dev: self.dev,
                ino: new_ino(),
                term: t,
                terminals: self.terminals.clone(),
                meta: Mutex::new(NodeMeta::new(S_IFCHR | mode, uid, gid)),
            })
        })?;
        let (term, pty) = pair.ok_or(Errno::EIO)?;
        Ok(Arc::new(MasterFile::new(term, pty, me, flags)))
    }

    /// The replica inode `/dev/pts/N` of a pair.
    pub fn replica(&self, n: u32) -> Option<Arc<dyn Inode>> {
        self.entries.lock().get(&n).cloned()
    }
}

/// The number a name spells, as devpts accepts it (decimal, no leading zeros).
fn parse_index(name: &[u8]) -> Option<u32> {
    if name.is_empty() || (name.len() > 1 && name[0] == b'0') {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

impl Inode for Devpts {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(make_stat(self.dev, self.ino, S_IFDIR | 0o755, 2, 0, 0, 0))
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if name == b"ptmx" {
            return Ok(self.ptmx.clone());
        }
        parse_index(name)
            .and_then(|n| self.replica(n))
            .ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut out = vec![DirEntry {
            name: b"ptmx".to_vec(),
            ino: 2,
            kind: FileType::CharDevice,
        }];
        for (n, inode) in self.entries.lock().iter() {
            out.push(DirEntry {
                name: n.to_string().into_bytes(),
                ino: inode.stat().map_or(0, |s| s.st_ino),
                kind: FileType::CharDevice,
            });
        }
        Ok(out)
    }

    /// Entries come and go with masters, not through the VFS.
    fn cacheable(&self) -> bool {
        false
    }

    /// devpts has no `create`: `EACCES` for a file (Linux's `lookup_open`), `EPERM` for
    /// the rest (`vfs_mkdir`, `vfs_mknod`, `vfs_symlink`).
    fn create(&self, _name: &[u8], node: NewNode, _cred: &FsCred) -> Result<Arc<dyn Inode>, Errno> {
        Err(match node {
            NewNode::File { .. } => Errno::EACCES,
            _ => Errno::EPERM,
        })
    }

    /// No `link`, `unlink` or `rename` either.
    fn not_writable(&self) -> Errno {
        Errno::EPERM
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat {
            blocks: 0,
            bfree: 0,
            bavail: 0,
            files: 0,
            ffree: 0,
            ..FsStat::memory(DEVPTS_MAGIC)
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `/dev/pts/ptmx`: each open makes a new pair.
#[derive(Debug)]
struct PtmxInode {
    dev: u64,
    devpts: Weak<Devpts>,
    meta: Mutex<NodeMeta>,
}

impl Inode for PtmxInode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(device_stat(&self.meta.lock(), self.dev, 2, makedev(5, 2)))
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.open_by(&Caller::KERNEL, flags)
    }

    fn open_by(&self, caller: &Caller, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        self.devpts
            .upgrade()
            .ok_or(Errno::ENXIO)?
            .new_pair(caller, flags)
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.meta.lock().apply(a)
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(DEVPTS_MAGIC))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `/dev/pts/N` of a pair.
#[derive(Debug)]
struct ReplicaInode {
    dev: u64,
    ino: u64,
    term: Arc<Terminal>,
    terminals: Arc<Terminals>,
    meta: Mutex<NodeMeta>,
}

impl Inode for ReplicaInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let n = self.term.pty().map_or(0, |p| p.index());
        Ok(device_stat(
            &self.meta.lock(),
            self.dev,
            self.ino,
            makedev(PTS_MAJOR, n),
        ))
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        super::pty::open_replica(&self.term, &self.terminals, flags)
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        self.meta.lock().apply(a)
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(DEVPTS_MAGIC))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_abi::flags::open::O_RDWR;

    struct Mem;
    impl super::super::UserMem for Mem {
        fn copy_in(&self, _addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            buf.fill(0);
            Ok(())
        }
        fn copy_out(&self, _addr: u64, _buf: &[u8]) -> Result<(), Errno> {
            Ok(())
        }
    }

    #[test]
    fn pairs_are_numbered_locked_and_removed_with_their_master() {
        let pts = Devpts::new(Arc::new(Terminals::default()));
        let ptmx = pts.lookup(b"ptmx").unwrap();
        let me = Caller { tgid: 1, tid: 1 };
        let m0 = ptmx.open_by(&me, O_RDWR).unwrap();
        let m1 = ptmx.open_by(&me, O_RDWR).unwrap();
        let r0 = pts.lookup(b"0").unwrap();
        assert_eq!(r0.stat().unwrap().st_rdev, makedev(136, 0));
        assert_eq!(r0.stat().unwrap().st_mode, S_IFCHR | 0o620);
        assert_eq!(r0.open(O_RDWR).err(), Some(Errno::EIO), "locked");
        m0.ioctl(super::super::pty::ioctls::TIOCSPTLCK, 0, &Mem)
            .unwrap();
        let f = r0.open(O_RDWR).unwrap();
        assert!(pts.lookup(b"00").is_err() && pts.lookup(b"1").is_ok());
        drop(m0);
        assert_eq!(pts.lookup(b"0").err(), Some(Errno::ENOENT), "gone");
        let mut b = [0u8; 4];
        assert_eq!(f.read_at(&mut b, 0), Ok(0), "hung up: end of file");
        assert_eq!(f.write_at(b"x", 0), Err(Errno::EIO));
        let held = ptmx.open_by(&me, O_RDWR).unwrap();
        assert!(
            pts.lookup(b"2").is_ok(),
            "0 is taken while its replica is open"
        );
        drop(f);
        let again = ptmx.open_by(&me, O_RDWR).unwrap();
        assert!(pts.lookup(b"0").is_ok(), "the lowest free number is reused");
        let names: Vec<_> = pts.readdir().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, [&b"ptmx"[..], b"0", b"1", b"2"]);
        drop((m1, again, held));
    }

    #[test]
    fn bytes_flow_both_ways_through_the_line_discipline() {
        let pts = Devpts::new(Arc::new(Terminals::default()));
        let m = pts.lookup(b"ptmx").unwrap().open(O_RDWR).unwrap();
        m.ioctl(super::super::pty::ioctls::TIOCSPTLCK, 0, &Mem)
            .unwrap();
        let r = pts.lookup(b"0").unwrap().open(O_RDWR).unwrap();
        assert_eq!(m.write_at(b"hi\r", 0), Ok(3));
        let mut b = [0u8; 16];
        assert_eq!(r.read_at(&mut b, 0), Ok(3));
        assert_eq!(&b[..3], b"hi\n");
        assert_eq!(r.write_at(b"ok\n", 0), Ok(3));
        let n = m.read_at(&mut b, 0).unwrap();
        assert_eq!(&b[..n], b"hi\r\nok\r\n", "the echo, then the output");
        drop(r);
        assert_eq!(m.read_at(&mut b, 0), Err(Errno::EIO), "no replica left");
    }
}

#[cfg(test)]
mod blocking_tests {
    use super::*;
    use crate::fs::ldisc;
    use crate::fs::pty::ioctls::*;
    use linux_abi::flags::open::{O_NONBLOCK, O_RDWR};

    /// User memory of one buffer at address 0.
    struct Buf(Mutex<Vec<u8>>);
    impl super::super::UserMem for Buf {
        fn copy_in(&self, _addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
            buf.copy_from_slice(&self.0.lock()[..buf.len()]);
            Ok(())
        }
        fn copy_out(&self, _addr: u64, buf: &[u8]) -> Result<(), Errno> {
            let mut v = self.0.lock();
            v.clear();
            v.extend_from_slice(buf);
            Ok(())
        }
    }

    fn pair(flags: u32) -> (Arc<Devpts>, Arc<dyn FileOps>, Arc<dyn FileOps>) {
        let pts = Devpts::new(Arc::new(Terminals::default()));
        let m = pts.lookup(b"ptmx").unwrap().open(O_RDWR | flags).unwrap();
        m.ioctl(TIOCSPTLCK, 0, &Buf(Mutex::new(vec![0; 4])))
            .unwrap();
        let r = pts.lookup(b"0").unwrap().open(O_RDWR | flags).unwrap();
        (pts, m, r)
    }

    /// Sets the replica raw with `VMIN`/`VTIME`.
    fn raw(r: &Arc<dyn FileOps>, vmin: u8, vtime: u8) {
        let mut t = ldisc::Termios {
            lflag: 0,
            iflag: 0,
            oflag: 0,
            ..ldisc::Termios::default()
        };
        t.cc[ldisc::cc::VMIN] = vmin;
        t.cc[ldisc::cc::VTIME] = vtime;
        r.ioctl(TCSETS, 0, &Buf(Mutex::new(t.to_bytes(false))))
            .unwrap();
    }

    #[test]
    fn a_blocked_read_waits_for_vmin_bytes_from_the_master() {
        let (_pts, m, r) = pair(0);
        raw(&r, 3, 0);
        let reader = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            let n = r.read_at(&mut b, 0).unwrap();
            b[..n].to_vec()
        });
        // One byte at a time: the read returns only once three came.
        for c in [b"a", b"b", b"c"] {
            assert_eq!(m.write_at(c, 0), Ok(1));
        }
        assert_eq!(reader.join().unwrap(), b"abc");
    }

    #[test]
    fn non_blocking_ends_say_eagain_and_a_full_queue_stops_the_writer() {
        let (_pts, m, r) = pair(O_NONBLOCK);
        let mut b = [0u8; 8];
        assert_eq!(m.read_at(&mut b, 0), Err(Errno::EAGAIN));
        assert_eq!(r.read_at(&mut b, 0), Err(Errno::EAGAIN), "no line yet");
        raw(&r, 1, 0);
        let big = vec![b'z'; 64 * 1024];
        let mut total = 0;
        loop {
            match m.write_at(&big, 0) {
                Ok(n) => total += n,
                Err(e) => {
                    assert_eq!(e, Errno::EAGAIN);
                    break;
                }
            }
        }
        assert_eq!(total, ldisc::N_TTY_BUF_SIZE - 1 + ldisc::PENDING_MAX);
        let fionread = Buf(Mutex::new(vec![0; 4]));
        r.ioctl(FIONREAD, 0, &fionread).unwrap();
        assert_eq!(
            u32::from_ne_bytes(fionread.0.lock()[..4].try_into().unwrap()),
            (ldisc::N_TTY_BUF_SIZE - 1) as u32
        );
        assert_eq!(r.read_at(&mut b, 0), Ok(8));
        assert_eq!(m.write_at(b"more", 0), Ok(4), "room again");
    }

    #[test]
    fn vmin_zero_with_vtime_returns_nothing_after_the_timer() {
        let (_pts, _m, r) = pair(0);
        raw(&r, 0, 1);
        let mut b = [0u8; 8];
        assert_eq!(r.read_at(&mut b, 0), Ok(0));
    }

    #[test]
    fn mount_options_parse_as_linux() {
        use super::DevptsOptions;
        let o = DevptsOptions::parse(["newinstance", "ptmxmode=0666", "mode=620", "gid=5"]);
        assert_eq!(o, Ok(DevptsOptions::default()));
        let bare = DevptsOptions::parse([]).unwrap();
        assert_eq!(
            (bare.mode, bare.uid, bare.gid, bare.ptmxmode),
            (0o600, None, None, 0)
        );
        assert_eq!(
            DevptsOptions::parse(["uid=1000", "max=10"]).unwrap().uid,
            Some(1000)
        );
        for bad in ["mode=9", "gid=x", "colour=blue", "newinstance=1", "max=-1"] {
            assert_eq!(DevptsOptions::parse([bad]), Err(Errno::EINVAL), "{bad}");
        }
    }
}
