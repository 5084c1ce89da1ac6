//! devfs: `/dev` with `null`, `zero`, `full`, `random`, `urandom`, `tty`, the `fd`,
//! `stdin`, `stdout`, `stderr` and `ptmx` (to `pts/ptmx`) symlinks, a `shm` directory and
//! a `pts` directory where the sandbox mounts devpts ([`super::devpts`]), an `mqueue`
//! directory where it mounts the kernel's message queues (`super::mqueue`) (`tty` opens the
//! caller's controlling terminal, `ENXIO` without one); and [`host_fd_file`], which passes
//! a host FD (stdio given at start or with `exec`) through as a file.
//!
//! The tree itself is a tmpfs (so `/dev/shm` is ordinary tmpfs storage) with device inodes
//! added. Host-FD files read and write the host FD and forward a fixed set of harmless
//! terminal ioctls (`TCGETS`, `TCSETS*`, `TIOCGWINSZ`, `TIOCSWINSZ`, `FIONREAD`, `TCFLSH`,
//! `TCXONC`, `TCSBRK`); job control (`TIOCGPGRP`, `TIOCSPGRP`, `TIOCSCTTY`, `TIOCNOTTY`,
//! `TIOCGSID`) is the sandbox's own (see [`super::tty`]), never forwarded.

use std::any::Any;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::sync::{Arc, OnceLock};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::flags::open::*;
use linux_abi::flags::termios::TERMIOS_SIZE;
use linux_abi::types::{Stat, Timespec};
use platform::MemoryFile;

use super::devpts::Devpts;
use super::file::OpenFile;
use super::synth::{Attrs, SynthLink};
use super::tmpfs::{TmpInode, Tmpfs};
use super::tty::{Terminal, Terminals};
use super::vfs::VfsPath;
use super::{Caller, FileOps, FsStat, Inode, UserMem, magic, make_stat, new_ino};

/// `ioctl` numbers the Sentry understands.
pub mod ioctls {
    /// Get terminal attributes.
    pub const TCGETS: u32 = 0x5401;
    /// Set terminal attributes now.
    pub const TCSETS: u32 = 0x5402;
    /// Set terminal attributes after draining output.
    pub const TCSETSW: u32 = 0x5403;
    /// Set terminal attributes after draining and flushing input.
    pub const TCSETSF: u32 = 0x5404;
    /// Get the foreground process group.
    pub const TIOCGPGRP: u32 = 0x540F;
    /// Wait until output drains, then (argument 0) send a break.
    pub const TCSBRK: u32 = 0x5409;
    /// Suspend or restart output or input.
    pub const TCXONC: u32 = 0x540A;
    /// Discard queued input or output.
    pub const TCFLSH: u32 = 0x540B;
    /// Make the terminal the caller's controlling terminal.
    pub const TIOCSCTTY: u32 = 0x540E;
    /// Bytes in the output queue.
    pub const TIOCOUTQ: u32 = 0x5411;
    /// Set the window size.
    pub const TIOCSWINSZ: u32 = 0x5414;
    /// Give up the controlling terminal.
    pub const TIOCNOTTY: u32 = 0x5422;
    /// The session of the terminal.
    pub const TIOCGSID: u32 = 0x5429;
    /// Set the foreground process group.
    pub const TIOCSPGRP: u32 = 0x5410;
    /// Get the window size.
    pub const TIOCGWINSZ: u32 = 0x5413;
    /// Bytes ready to read.
    pub const FIONREAD: u32 = 0x541B;
    /// Set or clear non-blocking I/O.
    pub const FIONBIO: u32 = 0x5421;
    /// Set or clear signal-driven I/O (`O_ASYNC`).
    pub const FIOASYNC: u32 = 0x5452;
    /// Clear close-on-exec.
    pub const FIONCLEX: u32 = 0x5450;
    /// Set close-on-exec.
    pub const FIOCLEX: u32 = 0x5451;
}

/// Size of `struct winsize`.
const WINSIZE_SIZE: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DevKind {
    Null,
    Zero,
    Full,
    Random,
    Tty,
}

/// A character device of devfs.
#[derive(Debug)]
struct DevNode {
    dev: u64,
    ino: u64,
    rdev: u64,
    mode: u32,
    kind: DevKind,
    /// The kernel's controlling terminals (what `/dev/tty` opens).
    terminals: Arc<Terminals>,
}

const fn mkdev(major: u64, minor: u64) -> u64 {
    (major << 8) | minor
}

impl Inode for DevNode {
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = make_stat(self.dev, self.ino, S_IFCHR | self.mode, 1, 0, 0, 0);
        st.st_rdev = self.rdev;
        Ok(st)
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if self.kind == DevKind::Tty {
            return Err(Errno::ENXIO);
        }
        Ok(Arc::new(DevFile { kind: self.kind }))
    }

    /// `/dev/tty` is the caller's controlling terminal (`ENXIO` without one).
    fn open_by(&self, caller: &Caller, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        if self.kind != DevKind::Tty {
            return self.open(flags);
        }
        let t = self.terminals.of(caller.tgid).ok_or(Errno::ENXIO)?;
        match t.host_file() {
            Some(file) => Ok(Arc::new(HostFile {
                file: file.clone(),
                terminal: Some(t.clone()),
            })),
            None => super::pty::open_replica(&t, &self.terminals, flags),
        }
    }

    fn setattr(&self, _a: &super::SetAttr) -> Result<(), Errno> {
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Debug)]
struct DevFile {
    kind: DevKind,
}

impl FileOps for DevFile {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        match self.kind {
            DevKind::Null => Ok(0),
            DevKind::Zero | DevKind::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            DevKind::Random => {
                fill_random(buf)?;
                Ok(buf.len())
            }
            DevKind::Tty => Err(Errno::ENXIO),
        }
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        match self.kind {
            DevKind::Full => Err(Errno::ENOSPC),
            DevKind::Tty => Err(Errno::ENXIO),
            _ => Ok(buf.len()),
        }
    }

    fn stream(&self) -> bool {
        true
    }

    /// Linux lets `lseek` succeed on the memory devices and leaves them at offset 0
    /// (`null_lseek`, `noop_llseek`); assemblers seek in `-o /dev/null`.
    fn stream_seek(&self, _off: i64, whence: u32) -> Result<u64, Errno> {
        match (self.kind, whence) {
            (DevKind::Tty, _) => Err(Errno::ESPIPE),
            (_, 0..=2) => Ok(0),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Linux's memory devices (`null`, `zero`, `full`, `random`, `urandom`) have no `fsync`
    /// operation, so `fsync`/`fdatasync` on them fail with `EINVAL`.
    fn fsync(&self) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
}

/// Fills `buf` with random bytes from the host's `/dev/urandom` equivalent (`getrandom`).
pub fn fill_random(buf: &mut [u8]) -> Result<(), Errno> {
    crate::host::fill_random(buf)
}

/// Builds the devfs tree (a tmpfs with device nodes) and returns its root, with the
/// devpts instance to mount at its `pts` directory (`ptmx` is a symlink to `pts/ptmx`).
pub fn new_devfs(
    mf: Arc<MemoryFile>,
    terminals: Arc<Terminals>,
) -> Result<(Arc<TmpInode>, Arc<Devpts>), Errno> {
    let root = Tmpfs::new_root(mf, 0o755, 0, 0);
    let dev = root.stat()?.st_dev;
    let nodes: [(&[u8], DevKind, u64, u32); 6] = [
        (b"null", DevKind::Null, mkdev(1, 3), 0o666),
        (b"zero", DevKind::Zero, mkdev(1, 5), 0o666),
        (b"full", DevKind::Full, mkdev(1, 7), 0o666),
        (b"random", DevKind::Random, mkdev(1, 8), 0o666),
        (b"urandom", DevKind::Random, mkdev(1, 9), 0o666),
        (b"tty", DevKind::Tty, mkdev(5, 0), 0o666),
    ];
    for (name, kind, rdev, mode) in nodes {
        root.add_child(
            name,
            Arc::new(DevNode {
                dev,
                ino: new_ino(),
                rdev,
                mode,
                kind,
                terminals: terminals.clone(),
            }),
        )?;
    }
    let a = Attrs::root(dev, magic::TMPFS);
    for (name, target) in [
        (&b"fd"[..], &b"/proc/self/fd"[..]),
        (b"stdin", b"/proc/self/fd/0"),
        (b"stdout", b"/proc/self/fd/1"),
        (b"stderr", b"/proc/self/fd/2"),
        (b"ptmx", b"pts/ptmx"),
    ] {
        root.add_child(name, SynthLink::fixed(a, target))?;
    }
    let shm = root.mkdir_p(b"shm", 0o777)?;
    shm.setattr(&super::SetAttr {
        mode: Some(0o1777),
        ..Default::default()
    })?;
    root.mkdir_p(b"pts", 0o755)?;
    root.mkdir_p(b"mqueue", 0o755)?;
    let devpts = Devpts::new(terminals.clone());
    terminals.set_pts(&devpts);
    Ok((root, devpts))
}

/// The inode behind a host FD passed through.
#[derive(Debug)]
pub struct HostFdInode {
    file: Arc<File>,
    ino: u64,
    /// Shared by every open of a host terminal (`/proc/self/fd/N`).
    terminal: Option<Arc<Terminal>>,
}

fn host_dev() -> u64 {
    static DEV: OnceLock<u64> = OnceLock::new();
    *DEV.get_or_init(super::new_dev)
}

impl Inode for HostFdInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let md = self.file.metadata()?;
        let ft = md.file_type();
        let mode = if ft.is_char_device() {
            S_IFCHR
        } else if ft.is_fifo() {
            S_IFIFO
        } else if ft.is_socket() {
            S_IFSOCK
        } else if ft.is_dir() {
            S_IFDIR
        } else {
            S_IFREG
        };
        let ts = |s: i64, n: i64| Timespec {
            tv_sec: s,
            tv_nsec: n,
        };
        Ok(Stat {
            st_dev: host_dev(),
            st_ino: self.ino,
            st_nlink: 1,
            st_mode: mode | (md.mode() & 0o7777),
            st_uid: md.uid(),
            st_gid: md.gid(),
            st_rdev: md.rdev(),
            st_size: md.size() as i64,
            st_blksize: md.blksize() as i64,
            st_blocks: md.blocks() as i64,
            st_atime: ts(md.atime(), md.atime_nsec()),
            st_mtime: ts(md.mtime(), md.mtime_nsec()),
            st_ctime: ts(md.ctime(), md.ctime_nsec()),
            ..Stat::default()
        })
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        Ok(Arc::new(HostFile {
            file: self.file.clone(),
            terminal: self.terminal.clone(),
        }))
    }

    fn setattr(&self, _a: &super::SetAttr) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(magic::ANON))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open host FD.
#[derive(Debug)]
pub struct HostFile {
    file: Arc<File>,
    /// The sandbox's job-control state when the host FD is a terminal.
    terminal: Option<Arc<Terminal>>,
}

/// How long a read of a host terminal, pipe or socket waits in the host at a time before
/// it checks for a signal: the most a signal can wait to interrupt such a read.
const HOST_READ_SLICE: std::time::Duration = std::time::Duration::from_millis(50);

impl HostFile {
    /// A blocking read of a host terminal, pipe or socket waits for data in slices, so
    /// that a signal for the task interrupts it (`EINTR`, restarted or not as the signal's
    /// `SA_RESTART` says) as on Linux, instead of waiting in the host for input that may
    /// never come. Regular files and non-blocking descriptors read at once.
    fn wait_readable(&self) -> Result<(), Errno> {
        let fd = self.file.as_raw_fd();
        let nonblock = crate::host::status_flags(fd).is_some_and(|f| f & O_NONBLOCK != 0);
        if nonblock || self.file.metadata().is_ok_and(|m| m.is_file()) {
            return Ok(());
        }
        // The task is asleep (`S` in /proc) while it waits in the host, as on Linux.
        let waker = crate::waiter::current_waker();
        let _asleep = waker.asleep();
        while !crate::host::wait_readable(fd, HOST_READ_SLICE)? {
            if crate::waiter::signal_pending() {
                return Err(Errno::EINTR);
            }
        }
        Ok(())
    }

    fn retry<T>(mut f: impl FnMut() -> std::io::Result<T>) -> Result<T, Errno> {
        loop {
            match f() {
                Ok(v) => return Ok(v),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl FileOps for HostFile {
    fn read_at(&self, buf: &mut [u8], _off: u64) -> Result<usize, Errno> {
        self.wait_readable()?;
        Self::retry(|| (&*self.file).read(buf))
    }

    fn write_at(&self, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Self::retry(|| (&*self.file).write(buf))
    }

    fn stream(&self) -> bool {
        true
    }

    fn ioctl(&self, cmd: u32, arg: u64, mem: &dyn UserMem) -> Result<u64, Errno> {
        use ioctls::*;
        let fd = self.file.as_raw_fd();
        match cmd {
            TCGETS | TIOCGWINSZ => {
                let mut buf = vec![
                    0u8;
                    if cmd == TCGETS {
                        TERMIOS_SIZE
                    } else {
                        WINSIZE_SIZE
                    }
                ];
                host_ioctl(fd, cmd, &mut buf)?;
                mem.copy_out(arg, &buf)?;
                Ok(0)
            }
            TCSETS | TCSETSW | TCSETSF => {
                let mut buf = vec![0u8; TERMIOS_SIZE];
                mem.copy_in(arg, &mut buf)?;
                host_ioctl(fd, cmd, &mut buf)?;
                Ok(0)
            }
            FIONREAD | TIOCOUTQ => {
                let mut buf = [0u8; 4];
                host_ioctl(fd, cmd, &mut buf)?;
                mem.copy_out(arg, &buf)?;
                Ok(0)
            }
            // Integer arguments: a queue selector, a flow action, a break flag.
            TCFLSH | TCXONC | TCSBRK if self.terminal.is_some() => {
                crate::host::ioctl_int(fd, cmd, arg)?;
                Ok(0)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    fn readable(&self) -> Option<u64> {
        let mut buf = [0u8; 4];
        host_ioctl(self.file.as_raw_fd(), ioctls::FIONREAD, &mut buf).ok()?;
        Some(u64::from(u32::from_ne_bytes(buf)))
    }

    fn fsync(&self) -> Result<(), Errno> {
        // The host's answer is Linux's: a regular file is flushed, a pipe, socket or
        // terminal gives EINVAL. (The Sentry's seccomp filter allows fsync(2) for this.)
        self.file.sync_all().map_err(Errno::from)
    }

    fn host_fd(&self) -> Option<std::os::fd::RawFd> {
        Some(self.file.as_raw_fd())
    }

    fn terminal(&self) -> Option<Arc<Terminal>> {
        self.terminal.clone()
    }

    fn readiness(&self, mask: crate::waiter::Events) -> crate::waiter::Events {
        use crate::waiter::events::*;
        // The Sentry's seccomp policy has no poll(2); FIONREAD tells whether bytes wait.
        // A descriptor that cannot tell (a regular file, /dev/null) is reported ready and
        // its read decides; end of file on an empty host pipe or terminal is not seen
        // until data or a signal arrives. Writes to host descriptors never wait here.
        let readable = self.readable().is_none_or(|n| n > 0);
        let mut ev = POLLOUT | POLLWRNORM;
        if readable {
            ev |= POLLIN | POLLRDNORM;
        }
        ev & mask
    }

    fn needs_polling(&self) -> bool {
        true
    }

    fn stream_seek(&self, off: i64, whence: u32) -> Result<u64, Errno> {
        use std::io::{Seek, SeekFrom};
        // Only regular host files seek; the host offset stays shared with whoever gave
        // us the descriptor (a shell's `>>` keeps appending after the sandbox).
        if !self.file.metadata()?.is_file() {
            return Err(Errno::ESPIPE);
        }
        let pos = match whence {
            0 => SeekFrom::Start(u64::try_from(off).map_err(|_| Errno::EINVAL)?),
            1 => SeekFrom::Current(off),
            2 => SeekFrom::End(off),
            _ => return Err(Errno::EINVAL),
        };
        Ok((&*self.file).seek(pos)?)
    }
}

/// Runs one of the allowed ioctls on a host FD with an argument buffer sized for it.
fn host_ioctl(fd: i32, cmd: u32, buf: &mut [u8]) -> Result<(), Errno> {
    let need = match cmd {
        ioctls::TCGETS | ioctls::TCSETS | ioctls::TCSETSW | ioctls::TCSETSF => TERMIOS_SIZE,
        ioctls::TIOCGWINSZ | ioctls::TIOCSWINSZ => WINSIZE_SIZE,
        ioctls::FIONREAD | ioctls::TIOCOUTQ => 4,
        _ => return Err(Errno::ENOTTY),
    };
    if buf.len() < need {
        return Err(Errno::EINVAL);
    }
    crate::host::ioctl_buf(fd, cmd, buf)
}

/// Wraps a host FD given at start (stdio) or with `exec` as a file description. Its
/// access mode is the host FD's. A host terminal is interned in `terminals`: every
/// descriptor of it shares one [`Terminal`] (see [`FileOps::terminal`]) and one inode,
/// named `/dev/pts/N` there.
pub fn host_fd_file(fd: OwnedFd, terminals: &Terminals) -> Arc<OpenFile> {
    let fl = crate::host::status_flags(fd.as_raw_fd());
    let acc = fl.map_or(O_RDWR, |f| f & O_ACCMODE);
    let nonblock = fl.map_or(0, |f| f & O_NONBLOCK);
    let raw = fd.as_raw_fd();
    let file = Arc::new(File::from(fd));
    if host_ioctl(raw, ioctls::TCGETS, &mut [0u8; TERMIOS_SIZE]).is_ok() {
        let (terminal, inode, name) = terminals.intern(&file, |t| {
            Arc::new(HostFdInode {
                file: file.clone(),
                ino: new_ino(),
                terminal: Some(t.clone()),
            })
        });
        let ops: Arc<dyn FileOps> = Arc::new(HostFile {
            file,
            terminal: Some(terminal),
        });
        return OpenFile::new(VfsPath::anonymous(inode, &name), acc | nonblock, ops);
    }
    let inode = Arc::new(HostFdInode {
        file: file.clone(),
        ino: new_ino(),
        terminal: None,
    });
    let ops: Arc<dyn FileOps> = Arc::new(HostFile {
        file,
        terminal: None,
    });
    // Named as Linux names such files in /proc/<pid>/fd (host paths are not shown).
    let name = match inode.stat().map(|st| st.st_mode & S_IFMT) {
        Ok(S_IFIFO) => format!(
            "pipe:[{}]",
            inode.file.metadata().map(|m| m.ino()).unwrap_or(0)
        ),
        Ok(S_IFSOCK) => format!(
            "socket:[{}]",
            inode.file.metadata().map(|m| m.ino()).unwrap_or(0)
        ),
        _ => format!("host:[{raw}]"),
    };
    OpenFile::new(
        VfsPath::anonymous(inode, name.as_bytes()),
        acc | nonblock,
        ops,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::Caller;

    #[test]
    fn devices_behave() {
        let mf = Arc::new(MemoryFile::new("devfs-test", 16 << 20).unwrap());
        let terminals = Arc::new(Terminals::default());
        let (root, _pts) = new_devfs(mf, terminals.clone()).unwrap();
        let mut buf = [7u8; 16];
        let null = root.lookup(b"null").unwrap().open(O_RDWR).unwrap();
        assert_eq!(null.read_at(&mut buf, 0).unwrap(), 0);
        assert_eq!(null.write_at(b"xyz", 0).unwrap(), 3);
        let zero = root.lookup(b"zero").unwrap().open(O_RDONLY).unwrap();
        assert_eq!(zero.read_at(&mut buf, 0).unwrap(), 16);
        assert_eq!(buf, [0; 16]);
        let full = root.lookup(b"full").unwrap().open(O_WRONLY).unwrap();
        assert_eq!(full.write_at(b"a", 0), Err(Errno::ENOSPC));
        for dev in [&null, &zero, &full] {
            assert_eq!(dev.fsync(), Err(Errno::EINVAL), "fsync on a memory device");
        }
        assert_eq!(
            null.stream_seek(100, 0),
            Ok(0),
            "lseek on /dev/null succeeds at 0"
        );
        assert_eq!(zero.stream_seek(-5, 2), Ok(0));
        assert_eq!(null.stream_seek(0, 9), Err(Errno::EINVAL));
        let ur = root.lookup(b"urandom").unwrap().open(O_RDONLY).unwrap();
        assert_eq!(ur.read_at(&mut buf, 0).unwrap(), 16);
        // /dev/tty is the caller's controlling terminal: none here, then one.
        let tty = root.lookup(b"tty").unwrap();
        let me = Caller { tgid: 7, tid: 7 };
        assert_eq!(tty.open_by(&me, O_RDWR).err(), Some(Errno::ENXIO));
        let t = Terminal::new(Arc::new(File::open("/dev/null").unwrap()));
        terminals.acquire(&t, 7, 7, 7);
        let f = tty.open_by(&me, O_RDWR).unwrap();
        assert!(f.terminal().is_some_and(|x| Arc::ptr_eq(&x, &t)));
        let other = Caller { tgid: 8, tid: 8 };
        assert_eq!(tty.open_by(&other, O_RDWR).err(), Some(Errno::ENXIO));
        assert_eq!(
            root.lookup(b"stdout")
                .unwrap()
                .readlink(&Caller::KERNEL)
                .unwrap(),
            b"/proc/self/fd/1"
        );
        assert_eq!(
            root.lookup(b"null").unwrap().stat().unwrap().st_rdev,
            mkdev(1, 3)
        );
        assert_eq!(
            root.lookup(b"shm").unwrap().stat().unwrap().st_mode,
            S_IFDIR | 0o1777
        );
    }

    #[test]
    fn host_fd_passthrough() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fa = host_fd_file(OwnedFd::from(a), &Terminals::default());
        let fb = host_fd_file(OwnedFd::from(b), &Terminals::default());
        assert_eq!(fa.write(&Caller::KERNEL, b"ping").unwrap(), 4);
        let mut buf = [0u8; 8];
        assert_eq!(fb.read(&Caller::KERNEL, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        assert_eq!(fa.stat().unwrap().st_mode & S_IFMT, S_IFSOCK);
        assert!(String::from_utf8_lossy(&fa.path()).starts_with("socket:["));
        assert_eq!(fa.seek(0, 0), Err(Errno::ESPIPE));
    }

    #[test]
    fn host_regular_file_seeks_on_the_host_offset() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(b"abcdef").unwrap();
        let f = host_fd_file(
            OwnedFd::from(tmp.try_clone().unwrap()),
            &Terminals::default(),
        );
        assert_eq!(f.seek(2, 0).unwrap(), 2);
        let mut buf = [0u8; 8];
        assert_eq!(f.read(&Caller::KERNEL, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"cdef");
        assert_eq!(f.stat().unwrap().st_size, 6);
    }

    /// A terminal passed through as stdio to one sandbox is that sandbox's `/dev/tty`
    /// only: another sandbox in the same process still has none.
    #[test]
    fn two_sandboxes_have_separate_controlling_terminals() {
        use crate::fs::FsCred;
        use crate::fs::vfs::{Follow, Vfs};
        // A pty master answers TCGETS like any terminal.
        let ptmx = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/ptmx")
        {
            Ok(f) => f,
            Err(e) => {
                test_require::skip("root", format!("no /dev/ptmx to make a terminal: {e}"));
                return;
            }
        };
        let mf = Arc::new(MemoryFile::new("devfs-tty-test", 16 << 20).unwrap());
        let (t1, t2) = (
            Arc::new(Terminals::default()),
            Arc::new(Terminals::default()),
        );
        let one = Vfs::new_sandbox(mf.clone(), None, t1.clone()).unwrap();
        let two = Vfs::new_sandbox(mf, None, t2).unwrap();
        let stdin = host_fd_file(OwnedFd::from(ptmx), &t1);
        let term = stdin.ops().terminal().unwrap();
        t1.acquire(&term, 1, 1, 1);
        let init = Caller { tgid: 1, tid: 1 };
        let open = |v: &Vfs, path: &[u8]| {
            let r = v.root();
            v.resolve(&r, &r, path, Follow::Yes, &FsCred::root())
                .and_then(|p| p.inode().open_by(&init, O_RDWR))
                .map(|_| ())
        };
        assert_eq!(
            open(&one, b"/dev/tty"),
            Ok(()),
            "the terminal is this sandbox's tty"
        );
        assert_eq!(
            open(&one, b"/dev/pts/0"),
            Ok(()),
            "and is named in its /dev/pts"
        );
        assert_eq!(
            open(&two, b"/dev/tty"),
            Err(Errno::ENXIO),
            "the other sandbox has no controlling terminal"
        );
        assert_eq!(open(&two, b"/dev/pts/0"), Err(Errno::ENOENT));
    }
}
