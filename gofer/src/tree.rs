//! The host tree: every file operation the gofer performs, confined below one root.
//!
//! [`HostTree`] owns a table of *nodes* (an `O_PATH` descriptor each) and a table of
//! *open files* (real descriptors from [`HostTree::open`] or [`HostTree::create`]), both
//! keyed by ids handed to the client. Ids come from one counter and are never reused.
//!
//! Safety rules, enforced here and nowhere else:
//! - a name is one path component: empty names, `.`, `..` and names containing `/` or NUL
//!   are rejected with `EINVAL` before the host sees them;
//! - every component is opened with `openat(parent, name, O_PATH | O_NOFOLLOW)`, so a
//!   symlink is returned as a node of its own (read it with [`HostTree::readlink`]) and is
//!   never followed, whoever swaps it in and whenever;
//! - an `O_PATH` node is turned into a readable/writable descriptor by opening
//!   `/proc/self/fd/<N>` of *our own* descriptor `N` (the directory is opened before the
//!   gofer pivots away from the host root). That magic link names exactly the inode the
//!   node already holds: it cannot be redirected by renames or symlink swaps, unlike a
//!   second lookup of `parent/name`. No client-supplied string is ever resolved through it.
//! - `link` never follows symlinks (`AT_EMPTY_PATH` on the node, or `parent/name` with no
//!   `AT_SYMLINK_FOLLOW` and an identity check);
//! - in read-only mode every mutation fails with `EROFS` before any host call.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use linux_abi::Errno;

use crate::sys;

/// Id of a node (an `O_PATH` handle on a file of the served tree).
pub type NodeId = u64;
/// Id of an open file (a readable and/or writable host descriptor).
pub type FileId = u64;

/// The largest single read, write or directory read the tree performs.
pub const MAX_IO: usize = 4 << 20;

/// Longest name accepted for one path component.
const NAME_MAX: usize = 255;

/// A node: an `O_PATH | O_NOFOLLOW` descriptor plus where it was found.
#[derive(Debug)]
struct Node {
    fd: OwnedFd,
    /// `S_IFMT` bits of the file when the node was made (the type of an inode never changes).
    kind: u32,
    /// The directory node and name this node was reached through (`None` for the root).
    parent: Option<(Arc<Node>, CString)>,
}

impl Node {
    fn is_dir(&self) -> bool {
        self.kind == libc::S_IFDIR
    }
    fn is_symlink(&self) -> bool {
        self.kind == libc::S_IFLNK
    }
}

/// An open file: a real host descriptor and the node it was opened from.
#[derive(Debug)]
struct OpenFile {
    fd: OwnedFd,
    writable: bool,
    /// Directory cursor: the `d_off` cookie the host descriptor is positioned at.
    dir_pos: Mutex<u64>,
    _node: Arc<Node>,
}

impl OpenFile {
    fn new(fd: OwnedFd, writable: bool, node: Arc<Node>) -> OpenFile {
        OpenFile {
            fd,
            writable,
            dir_pos: Mutex::new(0),
            _node: node,
        }
    }
}

/// One directory entry from [`HostTree::read_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: u64,
    /// Cookie to continue reading after this entry.
    pub off: u64,
    /// `DT_*` type.
    pub kind: u8,
    /// Name (never `.` or `..`).
    pub name: Vec<u8>,
}

/// Nodes found by a walk, with their attributes.
type Found = Vec<(Arc<Node>, libc::stat)>;

/// How far a [`HostTree::walk`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEnd {
    /// Every component was found.
    Complete,
    /// The last returned node is a symlink and components remained; the client resolves it.
    Symlink,
    /// The next component failed with this error (`ENOENT`, `ENOTDIR`, `EACCES`, ...).
    Failed(Errno),
}

/// The result of a walk: one node and stat per component reached, and why it stopped.
#[derive(Debug)]
pub struct Walked {
    /// The nodes reached, in order, with their attributes.
    pub nodes: Vec<(NodeId, libc::stat)>,
    /// Why the walk stopped.
    pub end: WalkEnd,
}

/// A new timestamp for [`SetStat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// The current time.
    Now,
    /// An explicit time.
    At {
        /// Seconds since the epoch.
        sec: i64,
        /// Nanoseconds (0..1e9).
        nsec: i64,
    },
}

/// Attribute changes for [`HostTree::set_stat`]; `None` leaves a field alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetStat {
    /// New permission bits (`0o7777` mask).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeSet>,
    /// New modification time.
    pub mtime: Option<TimeSet>,
}

/// Owner for a newly created file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// A host directory tree served below one root. See the module documentation.
#[derive(Debug)]
pub struct HostTree {
    root: Arc<Node>,
    proc_fd: OwnedFd,
    read_only: bool,
    nodes: RwLock<HashMap<NodeId, Arc<Node>>>,
    files: RwLock<HashMap<FileId, Arc<OpenFile>>>,
    next_id: AtomicU64,
    debug_panic_on_walk: bool,
}

/// Checks that `name` is a single, ordinary path component and makes it a C string.
pub fn check_name(name: &[u8]) -> Result<CString, Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    CString::new(name).map_err(|_| Errno::EINVAL)
}

fn path_cstring(p: &Path) -> Result<CString, Errno> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)
}

impl HostTree {
    /// Opens `root` (which the caller trusts; symlinks in it are followed once, here) and
    /// `/proc/self/fd` of this process.
    pub fn new(root: &Path, read_only: bool) -> Result<HostTree, Errno> {
        let proc_fd = open_proc_self_fd()?;
        Self::with_proc_fd(root, read_only, proc_fd)
    }

    /// Testing only: panic when a walk names [`crate::DEBUG_PANIC_NAME`] (see
    /// [`crate::serve_with_debug_panic`]).
    pub fn set_debug_panic_on_walk(&mut self, on: bool) {
        self.debug_panic_on_walk = on;
    }

    /// Panics if the debugging switch is on and `names` names the panic file.
    pub(crate) fn check_debug_panic<N: AsRef<[u8]>>(&self, names: &[N]) {
        if self.debug_panic_on_walk && names.iter().any(|n| n.as_ref() == crate::DEBUG_PANIC_NAME) {
            panic!("debug_panic_on_walk: asked to walk to the panic file");
        }
    }

    /// Like [`HostTree::new`], with a `/proc/self/fd` directory opened earlier (before
    /// the gofer pivoted away from the host root).
    pub fn with_proc_fd(root: &Path, read_only: bool, proc_fd: OwnedFd) -> Result<HostTree, Errno> {
        let croot = path_cstring(root)?;
        let cwd = sys::cwd_fd();
        let fd = sys::openat(cwd, &croot, libc::O_PATH | libc::O_DIRECTORY, 0)?;
        let root = Arc::new(Node {
            fd,
            kind: libc::S_IFDIR,
            parent: None,
        });
        Ok(HostTree {
            root,
            proc_fd,
            read_only,
            nodes: RwLock::new(HashMap::new()),
            files: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            debug_panic_on_walk: false,
        })
    }

    /// Whether every mutation is refused with `EROFS`.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Number of live nodes and open files (for tests and leak checks).
    pub fn live_handles(&self) -> (usize, usize) {
        (self.nodes.read().len(), self.files.read().len())
    }

    fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn insert_node(&self, node: Node) -> NodeId {
        let id = self.new_id();
        self.nodes.write().insert(id, Arc::new(node));
        id
    }

    fn node(&self, id: NodeId) -> Result<Arc<Node>, Errno> {
        self.nodes.read().get(&id).cloned().ok_or(Errno::EBADF)
    }

    fn dir(&self, id: NodeId) -> Result<Arc<Node>, Errno> {
        let n = self.node(id)?;
        if !n.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        Ok(n)
    }

    fn file(&self, id: FileId) -> Result<Arc<OpenFile>, Errno> {
        self.files.read().get(&id).cloned().ok_or(Errno::EBADF)
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Opens `/proc/self/fd/<fd>` with `flags`: a fresh description of exactly the inode
    /// `fd` refers to.
    fn reopen(&self, fd: BorrowedFd<'_>, flags: i32) -> Result<OwnedFd, Errno> {
        let name = CString::new(fd.as_raw_fd().to_string()).map_err(|_| Errno::EINVAL)?;
        sys::openat(self.proc_fd.as_fd(), &name, flags & !libc::O_NOFOLLOW, 0)
    }

    /// Opens `name` in `dir` as a node (never following a symlink) and stats it.
    fn lookup(&self, dir: &Arc<Node>, name: CString) -> Result<(Node, libc::stat), Errno> {
        let fd = sys::openat(dir.fd.as_fd(), &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
        let st = sys::fstat(fd.as_fd())?;
        let node = Node {
            fd,
            kind: st.st_mode & libc::S_IFMT,
            parent: Some((dir.clone(), name)),
        };
        Ok((node, st))
    }

    /// A new node for the served root, with its attributes.
    pub fn mount(&self) -> Result<(NodeId, libc::stat), Errno> {
        let fd = self.reopen(self.root.fd.as_fd(), libc::O_PATH | libc::O_DIRECTORY)?;
        let st = sys::fstat(fd.as_fd())?;
        let id = self.insert_node(Node {
            fd,
            kind: libc::S_IFDIR,
            parent: None,
        });
        Ok((id, st))
    }

    /// Walks `names` from the directory node `dir`, one component at a time, returning a
    /// node per component reached. Stops at a symlink (returned, not followed), a missing
    /// component or any other error. An invalid name fails the whole call with `EINVAL`;
    /// a `dir` that is not a directory with `ENOTDIR`.
    pub fn walk<N: AsRef<[u8]>>(&self, dir: NodeId, names: &[N]) -> Result<Walked, Errno> {
        let (found, end) = self.walk_inner(dir, names)?;
        let mut nodes = Vec::with_capacity(found.len());
        let mut map = self.nodes.write();
        for (node, st) in found {
            let id = self.new_id();
            map.insert(id, node);
            nodes.push((id, st));
        }
        Ok(Walked { nodes, end })
    }

    /// Like [`HostTree::walk`] but only returns attributes; no node outlives the call.
    pub fn walk_stat<N: AsRef<[u8]>>(
        &self,
        dir: NodeId,
        names: &[N],
    ) -> Result<(Vec<libc::stat>, WalkEnd), Errno> {
        let (found, end) = self.walk_inner(dir, names)?;
        Ok((found.into_iter().map(|(_, st)| st).collect(), end))
    }

    fn walk_inner<N: AsRef<[u8]>>(
        &self,
        dir: NodeId,
        names: &[N],
    ) -> Result<(Found, WalkEnd), Errno> {
        let cnames = names
            .iter()
            .map(|n| check_name(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut cur = self.node(dir)?;
        if !cur.is_dir() && !cnames.is_empty() {
            return Err(Errno::ENOTDIR);
        }
        let mut found = Vec::with_capacity(cnames.len());
        for name in cnames {
            if cur.is_symlink() {
                return Ok((found, WalkEnd::Symlink));
            }
            if !cur.is_dir() {
                return Ok((found, WalkEnd::Failed(Errno::ENOTDIR)));
            }
            match self.lookup(&cur, name) {
                Ok((node, st)) => {
                    let node = Arc::new(node);
                    found.push((node.clone(), st));
                    cur = node;
                }
                Err(e) => return Ok((found, WalkEnd::Failed(e))),
            }
        }
        Ok((found, WalkEnd::Complete))
    }

    /// Attributes of a node (`fstatat(fd, "", AT_EMPTY_PATH)`; symlinks are not followed).
    pub fn stat(&self, id: NodeId) -> Result<libc::stat, Errno> {
        sys::fstat(self.node(id)?.fd.as_fd())
    }

    /// Applies attribute changes: owner, then mode, then size, then times. Stops at the
    /// first failure.
    pub fn set_stat(&self, id: NodeId, s: &SetStat) -> Result<(), Errno> {
        self.writable()?;
        let node = self.node(id)?;
        if s.uid.is_some() || s.gid.is_some() {
            sys::fchown_empty(
                node.fd.as_fd(),
                s.uid.unwrap_or(u32::MAX),
                s.gid.unwrap_or(u32::MAX),
            )?;
        }
        if let Some(mode) = s.mode {
            if node.is_symlink() {
                return Err(Errno::EOPNOTSUPP);
            }
            let name = CString::new(node.fd.as_raw_fd().to_string()).map_err(|_| Errno::EINVAL)?;
            sys::fchmodat(self.proc_fd.as_fd(), &name, mode & 0o7777)?;
        }
        if let Some(size) = s.size {
            match node.kind {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            let fd = self.reopen(
                node.fd.as_fd(),
                libc::O_WRONLY | libc::O_NOCTTY | libc::O_NONBLOCK,
            )?;
            sys::ftruncate(fd.as_fd(), size)?;
        }
        if s.atime.is_some() || s.mtime.is_some() {
            let conv = |t: Option<TimeSet>| match t {
                None => libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_OMIT,
                },
                Some(TimeSet::Now) => libc::timespec {
                    tv_sec: 0,
                    tv_nsec: libc::UTIME_NOW,
                },
                Some(TimeSet::At { sec, nsec }) => libc::timespec {
                    tv_sec: sec,
                    tv_nsec: nsec,
                },
            };
            sys::utimens_empty(node.fd.as_fd(), &[conv(s.atime), conv(s.mtime)])?;
        }
        Ok(())
    }

    /// Opens a node for I/O with `flags` (access mode plus `O_TRUNC`, `O_APPEND`,
    /// `O_DIRECT`, `O_SYNC`, `O_DSYNC`, `O_NOATIME`, `O_DIRECTORY`, `O_NONBLOCK`; others are
    /// ignored). Only regular files and directories can be opened (`ENXIO` otherwise,
    /// `ELOOP` for a symlink). Writable opens fail with `EROFS` in read-only mode.
    pub fn open(&self, id: NodeId, flags: i32) -> Result<FileId, Errno> {
        let node = self.node(id)?;
        let flags = sanitize_open_flags(flags);
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writable || flags & libc::O_TRUNC != 0 {
            self.writable()?;
        }
        match node.kind {
            libc::S_IFREG | libc::S_IFDIR => {}
            libc::S_IFLNK => return Err(Errno::ELOOP),
            _ => return Err(Errno::ENXIO),
        }
        let fd = self.reopen(node.fd.as_fd(), flags)?;
        let id = self.new_id();
        self.files
            .write()
            .insert(id, Arc::new(OpenFile::new(fd, writable, node)));
        Ok(id)
    }

    /// A duplicate of an open file's host descriptor, for donation to the client.
    pub fn dup_file(&self, file: FileId) -> Result<OwnedFd, Errno> {
        self.file(file)?.fd.try_clone().map_err(Errno::from)
    }

    /// Whether an open file was opened for writing.
    pub fn file_writable(&self, file: FileId) -> Result<bool, Errno> {
        Ok(self.file(file)?.writable)
    }

    /// Creates and opens a regular file `name` in `dir`. With `O_EXCL` in `flags` an
    /// existing name fails with `EEXIST`; without it an existing regular file is opened
    /// instead (a symlink there fails with `ELOOP`, never followed). A newly created file
    /// gets `owner` (when it differs from the creator's ids). Returns the node, its
    /// attributes and the open file.
    pub fn create(
        &self,
        dir: NodeId,
        name: &[u8],
        flags: i32,
        mode: u32,
        owner: Option<Owner>,
    ) -> Result<(NodeId, libc::stat, FileId), Errno> {
        self.writable()?;
        let name = check_name(name)?;
        let dirn = self.dir(dir)?;
        let excl = flags & libc::O_EXCL != 0;
        let flags = sanitize_open_flags(flags) & !libc::O_DIRECTORY;
        let created = sys::openat(
            dirn.fd.as_fd(),
            &name,
            flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            mode & 0o7777,
        );
        let (fd, path_fd, st) = match created {
            Ok(fd) => {
                let undo = |e: Errno| {
                    let _ = sys::unlinkat(dirn.fd.as_fd(), &name, 0);
                    e
                };
                let path_fd = self.reopen(fd.as_fd(), libc::O_PATH).map_err(undo)?;
                let mut st = sys::fstat(path_fd.as_fd()).map_err(undo)?;
                if let Some(o) = owner
                    && (o.uid, o.gid) != (st.st_uid, st.st_gid)
                {
                    sys::fchown_empty(path_fd.as_fd(), o.uid, o.gid).map_err(undo)?;
                    st = sys::fstat(path_fd.as_fd()).map_err(undo)?;
                }
                (fd, path_fd, st)
            }
            Err(Errno::EEXIST) if !excl => {
                let (node, st) = self.lookup(&dirn, name.clone())?;
                match node.kind {
                    libc::S_IFREG => {}
                    libc::S_IFDIR => return Err(Errno::EISDIR),
                    libc::S_IFLNK => return Err(Errno::ELOOP),
                    _ => return Err(Errno::ENXIO),
                }
                let fd = self.reopen(node.fd.as_fd(), flags)?;
                (fd, node.fd, st)
            }
            Err(e) => return Err(e),
        };
        let node = Arc::new(Node {
            fd: path_fd,
            kind: libc::S_IFREG,
            parent: Some((dirn.clone(), name)),
        });
        let nid = self.new_id();
        self.nodes.write().insert(nid, node.clone());
        let fid = self.new_id();
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        self.files
            .write()
            .insert(fid, Arc::new(OpenFile::new(fd, writable, node)));
        Ok((nid, st, fid))
    }

    /// Finishes a `mkdir`/`mknod`/`symlink`: looks the new name up as a node, chowns it,
    /// and removes it again if that fails.
    fn finish_new(
        &self,
        dirn: &Arc<Node>,
        name: CString,
        owner: Option<Owner>,
        rmflags: i32,
    ) -> Result<(NodeId, libc::stat), Errno> {
        let undo = |e: Errno| {
            let _ = sys::unlinkat(dirn.fd.as_fd(), &name, rmflags);
            e
        };
        let (node, mut st) = self.lookup(dirn, name.clone()).map_err(undo)?;
        if let Some(o) = owner
            && (o.uid, o.gid) != (st.st_uid, st.st_gid)
        {
            sys::fchown_empty(node.fd.as_fd(), o.uid, o.gid).map_err(undo)?;
            st = sys::fstat(node.fd.as_fd()).map_err(undo)?;
        }
        Ok((self.insert_node(node), st))
    }

    /// Creates directory `name` in `dir`.
    pub fn mkdir(
        &self,
        dir: NodeId,
        name: &[u8],
        mode: u32,
        owner: Option<Owner>,
    ) -> Result<(NodeId, libc::stat), Errno> {
        self.writable()?;
        let name = check_name(name)?;
        let dirn = self.dir(dir)?;
        sys::mkdirat(dirn.fd.as_fd(), &name, mode & 0o7777)?;
        self.finish_new(&dirn, name, owner, libc::AT_REMOVEDIR)
    }

    /// Creates a regular file, FIFO or socket node `name` in `dir`. Device nodes are
    /// refused with `EPERM`: a sandbox never creates host devices.
    pub fn mknod(
        &self,
        dir: NodeId,
        name: &[u8],
        mode: u32,
        dev: u64,
        owner: Option<Owner>,
    ) -> Result<(NodeId, libc::stat), Errno> {
        self.writable()?;
        let name = check_name(name)?;
        let dirn = self.dir(dir)?;
        let kind = match mode & libc::S_IFMT {
            0 => libc::S_IFREG,
            k @ (libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK) => k,
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        };
        sys::mknodat(dirn.fd.as_fd(), &name, kind | (mode & 0o7777), dev)?;
        self.finish_new(&dirn, name, owner, 0)
    }

    /// Creates symlink `name` in `dir` pointing at `target` (stored verbatim, never
    /// resolved by the gofer).
    pub fn symlink(
        &self,
        dir: NodeId,
        name: &[u8],
        target: &[u8],
        owner: Option<Owner>,
    ) -> Result<(NodeId, libc::stat), Errno> {
        self.writable()?;
        let name = check_name(name)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= libc::PATH_MAX as usize {
            return Err(Errno::ENAMETOOLONG);
        }
        let target = CString::new(target).map_err(|_| Errno::EINVAL)?;
        let dirn = self.dir(dir)?;
        sys::symlinkat(&target, dirn.fd.as_fd(), &name)?;
        self.finish_new(&dirn, name, owner, 0)
    }

    /// Makes `name` in `dir` a hard link to the node `target`. The source is always a
    /// node the client already reached through walks below the root, so a file outside
    /// cannot be named. Symlinks are never followed.
    pub fn link(
        &self,
        dir: NodeId,
        name: &[u8],
        target: NodeId,
    ) -> Result<(NodeId, libc::stat), Errno> {
        self.writable()?;
        let name = check_name(name)?;
        let dirn = self.dir(dir)?;
        let tn = self.node(target)?;
        if tn.is_dir() {
            return Err(Errno::EPERM);
        }
        match sys::linkat(
            tn.fd.as_fd(),
            sys::EMPTY,
            dirn.fd.as_fd(),
            &name,
            libc::AT_EMPTY_PATH,
        ) {
            Ok(()) => {}
            // Without CAP_DAC_READ_SEARCH: link by the name the node was found under and
            // check the result is the same inode.
            Err(Errno::EPERM) | Err(Errno::ENOENT) if tn.parent.is_some() => {
                let (pnode, pname) = tn.parent.as_ref().ok_or(Errno::EPERM)?;
                sys::linkat(pnode.fd.as_fd(), pname, dirn.fd.as_fd(), &name, 0)?;
                let want = sys::fstat(tn.fd.as_fd())?;
                let got = sys::fstatat(dirn.fd.as_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)?;
                if (got.st_dev, got.st_ino) != (want.st_dev, want.st_ino) {
                    let _ = sys::unlinkat(dirn.fd.as_fd(), &name, 0);
                    return Err(Errno::ESTALE);
                }
            }
            Err(e) => return Err(e),
        }
        self.finish_new(&dirn, name, None, 0)
    }

    /// Removes `name` from `dir` (`flags` may hold `AT_REMOVEDIR`).
    pub fn unlink(&self, dir: NodeId, name: &[u8], flags: i32) -> Result<(), Errno> {
        self.writable()?;
        let name = check_name(name)?;
        let dirn = self.dir(dir)?;
        sys::unlinkat(dirn.fd.as_fd(), &name, flags & libc::AT_REMOVEDIR)
    }

    /// Renames `oldname` in `olddir` to `newname` in `newdir` (`flags`: `RENAME_NOREPLACE`,
    /// `RENAME_EXCHANGE`).
    pub fn rename(
        &self,
        olddir: NodeId,
        oldname: &[u8],
        newdir: NodeId,
        newname: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        self.writable()?;
        let oldname = check_name(oldname)?;
        let newname = check_name(newname)?;
        let od = self.dir(olddir)?;
        let nd = self.dir(newdir)?;
        let flags = flags & (libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE);
        sys::renameat2(od.fd.as_fd(), &oldname, nd.fd.as_fd(), &newname, flags)
    }

    /// The target of a symlink node (`EINVAL` if the node is not a symlink).
    pub fn readlink(&self, id: NodeId) -> Result<Vec<u8>, Errno> {
        let n = self.node(id)?;
        if !n.is_symlink() {
            return Err(Errno::EINVAL);
        }
        sys::readlink_empty(n.fd.as_fd())
    }

    /// Reads directory entries from an open directory starting at the cookie `offset`
    /// (0: the beginning; otherwise the `off` of the last entry received), within a budget
    /// of `count` bytes of `linux_dirent64` records. `.` and `..` are left out: the client
    /// synthesizes them. An empty result means the end of the directory.
    pub fn read_dir(
        &self,
        file: FileId,
        offset: u64,
        count: usize,
    ) -> Result<Vec<DirEntry>, Errno> {
        let f = self.file(file)?;
        let mut pos = f.dir_pos.lock();
        if *pos != offset {
            let off = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
            sys::lseek(f.fd.as_fd(), off, libc::SEEK_SET)?;
            *pos = offset;
        }
        let mut buf = vec![0u8; count.clamp(512, MAX_IO)];
        let mut out = Vec::new();
        while out.is_empty() {
            let n = sys::getdents64(f.fd.as_fd(), &mut buf)?;
            if n == 0 {
                break;
            }
            let mut at = 0;
            while at + 19 <= n {
                let rec = &buf[at..n];
                let ino = u64::from_ne_bytes(rec[0..8].try_into().map_err(|_| Errno::EIO)?);
                let off = u64::from_ne_bytes(rec[8..16].try_into().map_err(|_| Errno::EIO)?);
                let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
                if reclen < 19 || reclen > rec.len() {
                    return Err(Errno::EIO);
                }
                let raw = &rec[19..reclen];
                let name = &raw[..raw.iter().position(|&b| b == 0).unwrap_or(raw.len())];
                *pos = off;
                if name != b"." && name != b".." {
                    out.push(DirEntry {
                        ino,
                        off,
                        kind: rec[18],
                        name: name.to_vec(),
                    });
                }
                at += reclen;
            }
        }
        Ok(out)
    }

    /// Reads up to `len` (at most [`MAX_IO`]) bytes at `off`.
    pub fn pread(&self, file: FileId, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let f = self.file(file)?;
        let mut buf = vec![0u8; len.min(MAX_IO)];
        let n = sys::pread(f.fd.as_fd(), &mut buf, off)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Writes `data` (at most [`MAX_IO`] bytes of it) at `off`; returns the count written.
    pub fn pwrite(&self, file: FileId, off: u64, data: &[u8]) -> Result<usize, Errno> {
        self.writable()?;
        let f = self.file(file)?;
        sys::pwrite(f.fd.as_fd(), &data[..data.len().min(MAX_IO)], off)
    }

    /// Flushes an open file to stable storage.
    pub fn fsync(&self, file: FileId, data_only: bool) -> Result<(), Errno> {
        sys::fsync(self.file(file)?.fd.as_fd(), data_only)
    }

    /// Allocates or punches space in an open file.
    pub fn fallocate(&self, file: FileId, mode: i32, off: u64, len: u64) -> Result<(), Errno> {
        self.writable()?;
        sys::fallocate(self.file(file)?.fd.as_fd(), mode, off, len)
    }

    /// File-system statistics for the file system holding a node.
    pub fn statfs(&self, id: NodeId) -> Result<libc::statfs, Errno> {
        sys::fstatfs(self.node(id)?.fd.as_fd())
    }

    /// Forgets a node (`EBADF` if unknown). Its descriptor closes once no child node or
    /// open file refers to it.
    pub fn close_node(&self, id: NodeId) -> Result<(), Errno> {
        self.nodes.write().remove(&id).map(drop).ok_or(Errno::EBADF)
    }

    /// Closes an open file (`EBADF` if unknown).
    pub fn close_file(&self, id: FileId) -> Result<(), Errno> {
        self.files.write().remove(&id).map(drop).ok_or(Errno::EBADF)
    }

    /// Closes a node or an open file, whichever `id` names.
    pub fn close(&self, id: u64) -> Result<(), Errno> {
        self.close_file(id).or_else(|_| self.close_node(id))
    }
}

/// Keeps only the open flags a client may choose.
fn sanitize_open_flags(flags: i32) -> i32 {
    let allowed = libc::O_ACCMODE
        | libc::O_TRUNC
        | libc::O_APPEND
        | libc::O_DIRECT
        | libc::O_DSYNC
        | libc::O_SYNC
        | libc::O_NOATIME
        | libc::O_DIRECTORY
        | libc::O_NONBLOCK
        | libc::O_LARGEFILE;
    let mut f = flags & allowed;
    if f & libc::O_ACCMODE == libc::O_ACCMODE {
        f &= !libc::O_ACCMODE; // invalid access mode 3: treat as read-only
    }
    f | libc::O_NOCTTY
}

/// Opens this process's `/proc/self/fd` directory.
pub fn open_proc_self_fd() -> Result<OwnedFd, Errno> {
    let path: &CStr = c"/proc/self/fd";
    sys::openat(sys::cwd_fd(), path, libc::O_PATH | libc::O_DIRECTORY, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_components() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"a\0b"] {
            assert_eq!(check_name(bad).err(), Some(Errno::EINVAL), "{bad:?}");
        }
        assert_eq!(check_name(&[b'x'; 256]).err(), Some(Errno::ENAMETOOLONG));
        assert!(check_name(b"...").is_ok());
        assert!(check_name(b".hidden").is_ok());
    }

    #[test]
    fn open_flags_are_sanitized() {
        let f = sanitize_open_flags(libc::O_RDWR | libc::O_CREAT | libc::O_PATH | libc::O_TMPFILE);
        assert_eq!(f & libc::O_ACCMODE, libc::O_RDWR);
        assert_eq!(f & (libc::O_CREAT | libc::O_PATH), 0);
    }
}
