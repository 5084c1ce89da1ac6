//! Dentries, mounts, the path walk and the namespace operations.
//!
//! A [`Dentry`] names an [`Inode`]: it has a name, a parent link and a cache of its
//! children (weak, so unused dentries go away; filesystems cache their own inodes).
//! A [`Mount`] attaches a filesystem's root dentry on a mountpoint dentry of its parent
//! mount; a [`VfsPath`] is a (mount, dentry) pair, the unit the walk works with.
//!
//! The walk ([`Vfs::resolve`], [`Vfs::resolve_parent`]) follows at most
//! [`MAX_SYMLINKS`] symlinks (`ELOOP` past that), clamps `..` at the caller's root, crosses
//! mounts both ways and checks search permission on every directory it passes.
//! The namespace operations (`open`, `mkdir`, `unlink`, `rename`...) take the caller's
//! root, a start directory (cwd or a dirfd) and [`FsCred`], and check permissions as Linux.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::flags::open::*;
use linux_abi::types::Stat;

use super::file::OpenFile;
use super::{
    FileType, FsCred, Inode, MAX_SYMLINKS, NewNode, PATH_MAX, SetAttr, access, check_name,
};

/// `renameat2` flag: fail if the target exists.
pub const RENAME_NOREPLACE: u32 = 1;
/// `renameat2` flag: swap the two names.
pub const RENAME_EXCHANGE: u32 = 2;

/// A name in the directory tree bound to an inode.
pub struct Dentry {
    inode: Arc<dyn Inode>,
    name: Mutex<Vec<u8>>,
    parent: Mutex<Option<Arc<Dentry>>>,
    children: Mutex<HashMap<Vec<u8>, Weak<Dentry>>>,
    mounted: AtomicBool,
    deleted: AtomicBool,
}

impl fmt::Debug for Dentry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dentry")
            .field("name", &String::from_utf8_lossy(&self.name()))
            .finish()
    }
}

impl Dentry {
    /// A dentry with no parent (a filesystem root or an anonymous file).
    pub fn new_root(inode: Arc<dyn Inode>, name: &[u8]) -> Arc<Dentry> {
        Arc::new(Dentry {
            inode,
            name: Mutex::new(name.to_vec()),
            parent: Mutex::new(None),
            children: Mutex::new(HashMap::new()),
            mounted: AtomicBool::new(false),
            deleted: AtomicBool::new(false),
        })
    }

    fn new_child(parent: &Arc<Dentry>, name: &[u8], inode: Arc<dyn Inode>) -> Arc<Dentry> {
        let d = Dentry::new_root(inode, name);
        *d.parent.lock() = Some(parent.clone());
        if parent.inode.cacheable() {
            let mut c = parent.children.lock();
            c.retain(|_, w| w.strong_count() > 0);
            c.insert(name.to_vec(), Arc::downgrade(&d));
        }
        d
    }

    /// The inode.
    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    /// The current name.
    pub fn name(&self) -> Vec<u8> {
        self.name.lock().clone()
    }

    /// The parent dentry (`None` at a filesystem root).
    pub fn parent(&self) -> Option<Arc<Dentry>> {
        self.parent.lock().clone()
    }

    /// Whether the name was removed.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    fn cached_child(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        self.children.lock().get(name).and_then(Weak::upgrade)
    }

    fn forget_child(&self, name: &[u8]) -> Option<Arc<Dentry>> {
        self.children.lock().remove(name).and_then(|w| w.upgrade())
    }
}

/// A mounted filesystem.
pub struct Mount {
    id: u64,
    fstype: String,
    source: String,
    root: Arc<Dentry>,
    parent: Option<(Arc<Mount>, Arc<Dentry>)>,
    readonly: bool,
}

impl fmt::Debug for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mount")
            .field("id", &self.id)
            .field("fstype", &self.fstype)
            .finish()
    }
}

impl Mount {
    /// The mount id (as in `/proc/self/mountinfo`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The filesystem type name (`tmpfs`, `proc`...).
    pub fn fstype(&self) -> &str {
        &self.fstype
    }

    /// The source shown in `/proc/mounts`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The root dentry of the mounted filesystem.
    pub fn root(&self) -> &Arc<Dentry> {
        &self.root
    }

    /// Whether the mount is read-only.
    pub fn readonly(&self) -> bool {
        self.readonly
    }
}

fn next_mount_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The mount holding anonymous files (host FDs, pipes) that are not in any tree.
pub fn anon_mount() -> Arc<Mount> {
    static ANON: OnceLock<Arc<Mount>> = OnceLock::new();
    ANON.get_or_init(|| {
        Arc::new(Mount {
            id: next_mount_id(),
            fstype: "anon_inodefs".into(),
            source: "none".into(),
            root: Dentry::new_root(super::synth::SynthDir::empty(0o555), b"anon"),
            parent: None,
            readonly: false,
        })
    })
    .clone()
}

/// A position in the mount tree: a dentry in a mount.
#[derive(Clone, Debug)]
pub struct VfsPath {
    /// The mount.
    pub mount: Arc<Mount>,
    /// The dentry within it.
    pub dentry: Arc<Dentry>,
}

impl PartialEq for VfsPath {
    fn eq(&self, o: &VfsPath) -> bool {
        Arc::ptr_eq(&self.mount, &o.mount) && Arc::ptr_eq(&self.dentry, &o.dentry)
    }
}

impl VfsPath {
    /// An anonymous path (not reachable by name) for `inode`, named `name`
    /// (e.g. `pipe:[12]`).
    pub fn anonymous(inode: Arc<dyn Inode>, name: &[u8]) -> VfsPath {
        VfsPath {
            mount: anon_mount(),
            dentry: Dentry::new_root(inode, name),
        }
    }

    /// The inode.
    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.dentry.inode
    }

    /// The attributes of the inode.
    pub fn stat(&self) -> Result<Stat, Errno> {
        self.dentry.inode.stat()
    }

    /// The type of the file.
    pub fn file_type(&self) -> Result<FileType, Errno> {
        Ok(FileType::from_mode(self.stat()?.st_mode))
    }

    /// The absolute path as seen from `root` (the whole tree when `None`). A deleted file
    /// gets ` (deleted)` appended; an anonymous file is just its name.
    pub fn path_from(&self, root: Option<&VfsPath>) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut mnt = self.mount.clone();
        let mut d = self.dentry.clone();
        loop {
            if let Some(r) = root
                && Arc::ptr_eq(&r.mount, &mnt)
                && Arc::ptr_eq(&r.dentry, &d)
            {
                break;
            }
            if Arc::ptr_eq(&d, &mnt.root) {
                match &mnt.parent {
                    Some((pm, pd)) => {
                        let (pm, pd) = (pm.clone(), pd.clone());
                        mnt = pm;
                        d = pd;
                        continue;
                    }
                    None => {
                        if Arc::ptr_eq(&mnt, &anon_mount()) {
                            return self.dentry.name();
                        }
                        break;
                    }
                }
            }
            match d.parent() {
                Some(p) => {
                    parts.push(d.name());
                    d = p;
                }
                None => {
                    // An anonymous dentry: just its name.
                    return self.dentry.name();
                }
            }
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        if self.dentry.is_deleted() {
            out.extend_from_slice(b" (deleted)");
        }
        out
    }
}

/// The mount tree of one sandbox.
pub struct Vfs {
    root: VfsPath,
    mounts: Mutex<HashMap<(u64, usize), Arc<Mount>>>,
    all: Mutex<Vec<Arc<Mount>>>,
    /// The procfs mounted at `/proc` (sandbox trees only).
    procfs: OnceLock<Arc<super::proc::ProcFs>>,
}

impl fmt::Debug for Vfs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vfs")
            .field("mounts", &self.all.lock().len())
            .finish()
    }
}

/// How a walk ends on a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    /// Follow a final symlink.
    Yes,
    /// Return the final symlink itself.
    No,
}

/// `openat2` resolve restrictions (`RESOLVE_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalkOpts {
    /// `RESOLVE_NO_SYMLINKS`: any symlink gives `ELOOP`.
    pub no_symlinks: bool,
    /// `RESOLVE_NO_MAGICLINKS`: a magic link (`/proc/<pid>/fd/N`...) gives `ELOOP`.
    pub no_magiclinks: bool,
    /// `RESOLVE_NO_XDEV`: crossing a mount gives `EXDEV`.
    pub no_xdev: bool,
    /// `RESOLVE_BENEATH`: leaving the root (absolute paths, `..` at the root, absolute
    /// symlinks, magic links) gives `EXDEV` instead of clamping.
    pub beneath: bool,
}

/// Per-walk state: symlinks followed so far and the restrictions.
#[derive(Debug, Default)]
struct WalkState {
    links: u32,
    opts: WalkOpts,
}

impl Vfs {
    /// A mount tree whose root is `root` (a filesystem root inode of type `fstype`).
    pub fn new(root: Arc<dyn Inode>, fstype: &str, source: &str) -> Arc<Vfs> {
        let mount = Arc::new(Mount {
            id: next_mount_id(),
            fstype: fstype.into(),
            source: source.into(),
            root: Dentry::new_root(root, b"/"),
            parent: None,
            readonly: false,
        });
        let root = VfsPath {
            dentry: mount.root.clone(),
            mount: mount.clone(),
        };
        Arc::new(Vfs {
            root,
            mounts: Mutex::new(HashMap::new()),
            all: Mutex::new(vec![mount]),
            procfs: OnceLock::new(),
        })
    }

    /// The root of the tree.
    pub fn root(&self) -> VfsPath {
        self.root.clone()
    }

    /// Mounts the filesystem whose root is `fs_root` on the directory `at`.
    pub fn mount(
        &self,
        at: &VfsPath,
        fs_root: Arc<dyn Inode>,
        fstype: &str,
        source: &str,
        readonly: bool,
    ) -> Result<Arc<Mount>, Errno> {
        if at.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let m = Arc::new(Mount {
            id: next_mount_id(),
            fstype: fstype.into(),
            source: source.into(),
            root: Dentry::new_root(fs_root, b"/"),
            parent: Some((at.mount.clone(), at.dentry.clone())),
            readonly,
        });
        at.dentry.mounted.store(true, Ordering::Release);
        self.mounts.lock().insert(key(at), m.clone());
        self.all.lock().push(m.clone());
        Ok(m)
    }

    /// Every mount, in mount order (for `/proc/mounts`).
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        self.all.lock().clone()
    }

    /// The path of a mount's mountpoint as seen from the tree root.
    pub fn mount_point(&self, m: &Arc<Mount>) -> Vec<u8> {
        match &m.parent {
            Some((pm, pd)) => VfsPath {
                mount: pm.clone(),
                dentry: pd.clone(),
            }
            .path_from(None),
            None => b"/".to_vec(),
        }
    }

    fn mounted_at(&self, p: &VfsPath) -> Option<Arc<Mount>> {
        if !p.dentry.mounted.load(Ordering::Acquire) {
            return None;
        }
        self.mounts.lock().get(&key(p)).cloned()
    }

    /// One walk step from the directory `cur` to `name` (which may be `.` or `..`),
    /// checking search permission and crossing mounts; symlinks are not followed.
    pub fn step(
        &self,
        root: &VfsPath,
        cur: &VfsPath,
        name: &[u8],
        cred: &FsCred,
    ) -> Result<VfsPath, Errno> {
        self.step_with(root, cur, name, cred, WalkOpts::default())
    }

    fn step_with(
        &self,
        root: &VfsPath,
        cur: &VfsPath,
        name: &[u8],
        cred: &FsCred,
        opts: WalkOpts,
    ) -> Result<VfsPath, Errno> {
        let st = cur.stat()?;
        if st.st_mode & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        cred.check(&st, access::X_OK)?;
        if name == b"." {
            return Ok(cur.clone());
        }
        if name == b".." {
            let mut c = cur.clone();
            loop {
                if c == *root {
                    return if opts.beneath {
                        Err(Errno::EXDEV)
                    } else {
                        Ok(c)
                    };
                }
                if Arc::ptr_eq(&c.dentry, &c.mount.root) {
                    match &c.mount.parent {
                        Some(_) if opts.no_xdev => return Err(Errno::EXDEV),
                        Some((pm, pd)) => {
                            c = VfsPath {
                                mount: pm.clone(),
                                dentry: pd.clone(),
                            };
                            continue;
                        }
                        None => return Ok(c),
                    }
                }
                return Ok(match c.dentry.parent() {
                    Some(p) => VfsPath {
                        mount: c.mount.clone(),
                        dentry: p,
                    },
                    None => c,
                });
            }
        }
        check_name(name)?;
        let dentry = match cur.dentry.cached_child(name) {
            Some(d) => d,
            None => {
                let inode = cur.inode().lookup(name)?;
                Dentry::new_child(&cur.dentry, name, inode)
            }
        };
        let mut p = VfsPath {
            mount: cur.mount.clone(),
            dentry,
        };
        while let Some(m) = self.mounted_at(&p) {
            if opts.no_xdev {
                return Err(Errno::EXDEV);
            }
            p = VfsPath {
                dentry: m.root.clone(),
                mount: m,
            };
        }
        Ok(p)
    }

    fn follow_link(
        &self,
        root: &VfsPath,
        dir: &VfsPath,
        link: &VfsPath,
        cred: &FsCred,
        ws: &mut WalkState,
    ) -> Result<VfsPath, Errno> {
        match link_target(link, ws)? {
            LinkTarget::Magic(target) => Ok(target),
            LinkTarget::Text(text) if text.is_empty() => Err(Errno::ENOENT),
            LinkTarget::Text(text) => self.walk(root, dir, &text, Follow::Yes, cred, ws),
        }
    }

    fn walk_parent<'p>(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &'p [u8],
        cred: &FsCred,
        ws: &mut WalkState,
    ) -> Result<(VfsPath, &'p [u8], bool), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut cur = if path[0] == b'/' {
            if ws.opts.beneath {
                return Err(Errno::EXDEV);
            }
            root.clone()
        } else {
            start.clone()
        };
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let Some((last, init)) = comps.split_last() else {
            return Ok((cur, b".", true));
        };
        for comp in init {
            let next = self.step_with(root, &cur, comp, cred, ws.opts)?;
            cur = if next.file_type()? == FileType::Symlink {
                self.follow_link(root, &cur, &next, cred, ws)?
            } else {
                next
            };
        }
        Ok((cur, last, path.ends_with(b"/")))
    }

    fn walk(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        follow: Follow,
        cred: &FsCred,
        ws: &mut WalkState,
    ) -> Result<VfsPath, Errno> {
        let (parent, last, slash) = self.walk_parent(root, start, path, cred, ws)?;
        let mut p = self.step_with(root, &parent, last, cred, ws.opts)?;
        let ft = p.file_type()?;
        if ft == FileType::Symlink && (follow == Follow::Yes || slash) {
            p = self.follow_link(root, &parent, &p, cred, ws)?;
        }
        if slash && p.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(p)
    }

    /// Resolves `path` relative to `start` (absolute paths from `root`).
    pub fn resolve(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        follow: Follow,
        cred: &FsCred,
    ) -> Result<VfsPath, Errno> {
        self.walk(root, start, path, follow, cred, &mut WalkState::default())
    }

    /// Resolves all but the last component of `path`: returns the parent directory, the
    /// last name (`.` for `/`), and whether the path ended with `/`.
    pub fn resolve_parent(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        cred: &FsCred,
    ) -> Result<(VfsPath, Vec<u8>, bool), Errno> {
        let (p, last, slash) =
            self.walk_parent(root, start, path, cred, &mut WalkState::default())?;
        if p.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok((p, last.to_vec(), slash))
    }

    /// Opens (and with `O_CREAT` creates) `path` with `open(2)` flags, `mode` already
    /// masked by the umask.
    #[allow(clippy::too_many_arguments)]
    pub fn open_at(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        flags: u32,
        mode: u32,
        cred: &FsCred,
    ) -> Result<Arc<OpenFile>, Errno> {
        self.open_at_with(root, start, path, flags, mode, cred, WalkOpts::default())
    }

    /// [`Vfs::open_at`] with `openat2` resolve restrictions (for `RESOLVE_IN_ROOT` and
    /// `RESOLVE_BENEATH` pass the start directory as `root`).
    #[allow(clippy::too_many_arguments)]
    pub fn open_at_with(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        flags: u32,
        mode: u32,
        cred: &FsCred,
        opts: WalkOpts,
    ) -> Result<Arc<OpenFile>, Errno> {
        let mut ws = WalkState { links: 0, opts };
        let mut created = false;
        let target = if flags & O_CREAT != 0 && flags & O_PATH == 0 {
            let (mut parent, last, slash) = self.walk_parent(root, start, path, cred, &mut ws)?;
            let mut last = last.to_vec();
            if slash || last == b"." || last == b".." {
                return Err(Errno::EISDIR);
            }
            loop {
                match self.step_with(root, &parent, &last, cred, ws.opts) {
                    Ok(p) => {
                        if flags & O_EXCL != 0 {
                            return Err(Errno::EEXIST);
                        }
                        if p.file_type()? == FileType::Symlink {
                            if flags & O_NOFOLLOW != 0 {
                                return Err(Errno::ELOOP);
                            }
                            let text = match link_target(&p, &mut ws)? {
                                LinkTarget::Magic(t) => break t,
                                LinkTarget::Text(text) => text,
                            };
                            let (np, nl, nslash) =
                                self.walk_parent(root, &parent, &text, cred, &mut ws)?;
                            if nslash {
                                return Err(Errno::EISDIR);
                            }
                            last = nl.to_vec();
                            parent = np;
                            continue;
                        }
                        break p;
                    }
                    Err(e) if e == Errno::ENOENT => {
                        let pst = parent.stat()?;
                        cred.check(&pst, access::W_OK | access::X_OK)?;
                        if parent.mount.readonly {
                            return Err(Errno::EROFS);
                        }
                        let inode = parent.inode().create(
                            &last,
                            NewNode::File {
                                mode: mode & 0o7777,
                            },
                            &creator(cred, &pst),
                        )?;
                        created = true;
                        break VfsPath {
                            mount: parent.mount.clone(),
                            dentry: Dentry::new_child(&parent.dentry, &last, inode),
                        };
                    }
                    Err(e) => return Err(e),
                }
            }
        } else {
            let follow = if flags & O_NOFOLLOW != 0 {
                Follow::No
            } else {
                Follow::Yes
            };
            self.walk(root, start, path, follow, cred, &mut ws)?
        };
        Self::open_path(&target, flags, cred, created)
    }

    /// `open(O_TMPFILE)`: an unnamed regular file in the directory `path` (it can be given
    /// a name later with `linkat(fd, "", AT_EMPTY_PATH)`); `mode` already masked.
    pub fn open_tmpfile(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        flags: u32,
        mode: u32,
        cred: &FsCred,
    ) -> Result<Arc<OpenFile>, Errno> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let acc = flags & O_ACCMODE;
        if acc != O_WRONLY && acc != O_RDWR {
            return Err(Errno::EINVAL);
        }
        let dir = self.resolve(root, start, path, Follow::Yes, cred)?;
        let st = dir.stat()?;
        if FileType::from_mode(st.st_mode) != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        cred.check(&st, access::W_OK | access::X_OK)?;
        if dir.mount.readonly {
            return Err(Errno::EROFS);
        }
        let (name, inode) = loop {
            let name = format!(".tmpfile-{}", NEXT.fetch_add(1, Ordering::Relaxed)).into_bytes();
            match dir.inode().create(
                &name,
                NewNode::File {
                    mode: mode & 0o7777,
                },
                &creator(cred, &st),
            ) {
                Ok(i) => break (name, i),
                Err(e) if e == Errno::EEXIST => continue,
                Err(e) => return Err(e),
            }
        };
        dir.inode().unlink(&name, false)?;
        let dentry = Dentry::new_child(&dir.dentry, &name, inode);
        dir.dentry.forget_child(&name);
        dentry.deleted.store(true, Ordering::Release);
        let target = VfsPath {
            mount: dir.mount.clone(),
            dentry,
        };
        Self::open_path(&target, flags & !O_TMPFILE & !O_CREAT, cred, true)
    }

    /// Opens an already-resolved path (permission checks unless `created`).
    pub fn open_path(
        target: &VfsPath,
        flags: u32,
        cred: &FsCred,
        created: bool,
    ) -> Result<Arc<OpenFile>, Errno> {
        let st = target.stat()?;
        let ft = FileType::from_mode(st.st_mode);
        if flags & O_PATH != 0 {
            if flags & O_DIRECTORY != 0 && ft != FileType::Directory {
                return Err(Errno::ENOTDIR);
            }
            return Ok(OpenFile::new(
                target.clone(),
                flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW),
                Arc::new(super::NoIo),
            ));
        }
        if ft == FileType::Symlink {
            return Err(Errno::ELOOP);
        }
        if flags & O_DIRECTORY != 0 && ft != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        let acc = flags & O_ACCMODE;
        let wants_write =
            acc == O_WRONLY || acc == O_RDWR || (flags & O_TRUNC != 0 && ft == FileType::Regular);
        if ft == FileType::Directory && (acc != O_RDONLY || flags & O_TRUNC != 0) {
            return Err(Errno::EISDIR);
        }
        if acc == O_ACCMODE {
            return Err(Errno::EINVAL);
        }
        if !created {
            let mut mask = 0;
            if acc == O_RDONLY || acc == O_RDWR {
                mask |= access::R_OK;
            }
            if wants_write {
                mask |= access::W_OK;
            }
            cred.check(&st, mask)?;
        }
        if wants_write && target.mount.readonly && ft == FileType::Regular {
            return Err(Errno::EROFS);
        }
        if flags & O_TRUNC != 0 && ft == FileType::Regular && st.st_size != 0 {
            target.inode().setattr(&SetAttr {
                size: Some(0),
                ..SetAttr::default()
            })?;
        }
        let ops = target.inode().open(flags)?;
        Ok(OpenFile::new(
            target.clone(),
            flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
            ops,
        ))
    }

    fn prepare_create(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        cred: &FsCred,
        dir_ok_slash: bool,
    ) -> Result<(VfsPath, Vec<u8>, Stat), Errno> {
        let (parent, last, slash) = self.resolve_parent(root, start, path, cred)?;
        if last == b"." || last == b".." {
            return Err(Errno::EEXIST);
        }
        check_name(&last)?;
        match self.step(root, &parent, &last, cred) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(e) if e == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
        if slash && !dir_ok_slash {
            return Err(Errno::ENOENT);
        }
        let pst = parent.stat()?;
        cred.check(&pst, access::W_OK | access::X_OK)?;
        if parent.mount.readonly {
            return Err(Errno::EROFS);
        }
        Ok((parent, last, pst))
    }

    /// `mkdirat`: `mode` already masked by the umask.
    pub fn mkdir(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        mode: u32,
        cred: &FsCred,
    ) -> Result<(), Errno> {
        let (parent, last, pst) = self.prepare_create(root, start, path, cred, true)?;
        parent.inode().create(
            &last,
            NewNode::Dir {
                mode: mode & 0o7777,
            },
            &creator(cred, &pst),
        )?;
        Ok(())
    }

    /// `mknodat`: `mode` includes the type bits and is already masked by the umask.
    pub fn mknod(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        mode: u32,
        rdev: u64,
        cred: &FsCred,
    ) -> Result<(), Errno> {
        let (parent, last, pst) = self.prepare_create(root, start, path, cred, false)?;
        let node = match mode & S_IFMT {
            0 | S_IFREG => NewNode::File {
                mode: mode & 0o7777,
            },
            S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK => {
                if mode & S_IFMT != S_IFIFO && mode & S_IFMT != S_IFSOCK && !cred.is_root() {
                    return Err(Errno::EPERM);
                }
                NewNode::Node { mode, rdev }
            }
            S_IFDIR => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        };
        parent.inode().create(&last, node, &creator(cred, &pst))?;
        Ok(())
    }

    /// `symlinkat`.
    pub fn symlink(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        target: &[u8],
        path: &[u8],
        cred: &FsCred,
    ) -> Result<(), Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let (parent, last, pst) = self.prepare_create(root, start, path, cred, false)?;
        parent.inode().create(
            &last,
            NewNode::Symlink {
                target: target.to_vec(),
            },
            &creator(cred, &pst),
        )?;
        Ok(())
    }

    /// `linkat`: makes `new` (relative to `new_start`) a link to the resolved `old`.
    pub fn link(
        &self,
        root: &VfsPath,
        old: &VfsPath,
        new_start: &VfsPath,
        new: &[u8],
        cred: &FsCred,
    ) -> Result<(), Errno> {
        let ft = old.file_type()?;
        if ft == FileType::Directory {
            return Err(Errno::EPERM);
        }
        let (parent, last, _pst) = self.prepare_create(root, new_start, new, cred, false)?;
        if !Arc::ptr_eq(&parent.mount, &old.mount) {
            return Err(Errno::EXDEV);
        }
        parent.inode().link(&last, old.inode())
    }

    fn check_sticky(cred: &FsCred, dir: &Stat, victim: &Stat) -> Result<(), Errno> {
        if dir.st_mode & 0o1000 != 0
            && !cred.is_root()
            && cred.uid != dir.st_uid
            && cred.uid != victim.st_uid
        {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    /// `unlinkat` (`dir` for `AT_REMOVEDIR`/`rmdir`).
    pub fn unlink(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        dir: bool,
        cred: &FsCred,
    ) -> Result<(), Errno> {
        let (parent, last, slash) = self.resolve_parent(root, start, path, cred)?;
        if last == b"." {
            return Err(if dir { Errno::EINVAL } else { Errno::EISDIR });
        }
        if last == b".." {
            return Err(if dir { Errno::ENOTEMPTY } else { Errno::EISDIR });
        }
        let victim = self.step(root, &parent, &last, cred)?;
        let vst = victim.stat()?;
        let is_dir = vst.st_mode & S_IFMT == S_IFDIR;
        if dir && !is_dir {
            return Err(Errno::ENOTDIR);
        }
        if !dir && is_dir {
            return Err(Errno::EISDIR);
        }
        if !dir && slash {
            return Err(Errno::ENOTDIR);
        }
        if !Arc::ptr_eq(&victim.mount, &parent.mount)
            || victim.dentry.mounted.load(Ordering::Acquire)
        {
            return Err(Errno::EBUSY);
        }
        let pst = parent.stat()?;
        cred.check(&pst, access::W_OK | access::X_OK)?;
        Self::check_sticky(cred, &pst, &vst)?;
        if parent.mount.readonly {
            return Err(Errno::EROFS);
        }
        parent.inode().unlink(&last, dir)?;
        if let Some(d) = parent.dentry.forget_child(&last) {
            d.deleted.store(true, Ordering::Release);
        } else {
            victim.dentry.deleted.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// `renameat2`.
    #[allow(clippy::too_many_arguments)]
    pub fn rename(
        &self,
        root: &VfsPath,
        old_start: &VfsPath,
        old: &[u8],
        new_start: &VfsPath,
        new: &[u8],
        flags: u32,
        cred: &FsCred,
    ) -> Result<(), Errno> {
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0
            || (flags & RENAME_NOREPLACE != 0 && flags & RENAME_EXCHANGE != 0)
        {
            return Err(Errno::EINVAL);
        }
        let (op, oname, _) = self.resolve_parent(root, old_start, old, cred)?;
        let (np, nname, _) = self.resolve_parent(root, new_start, new, cred)?;
        for n in [&oname, &nname] {
            if n.as_slice() == b"." || n.as_slice() == b".." {
                return Err(Errno::EBUSY);
            }
        }
        let src = self.step(root, &op, &oname, cred)?;
        let sst = src.stat()?;
        if !Arc::ptr_eq(&op.mount, &np.mount) || !Arc::ptr_eq(&src.mount, &op.mount) {
            return Err(Errno::EXDEV);
        }
        if src.dentry.mounted.load(Ordering::Acquire) {
            return Err(Errno::EBUSY);
        }
        let dst = match self.step(root, &np, &nname, cred) {
            Ok(d) => Some(d),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        if let Some(d) = &dst {
            if Arc::ptr_eq(&d.dentry, &src.dentry) || crate::fs::same_inode(d.inode(), src.inode())
            {
                return Ok(());
            }
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            if d.dentry.mounted.load(Ordering::Acquire) || !Arc::ptr_eq(&d.mount, &np.mount) {
                return Err(Errno::EBUSY);
            }
        } else if flags & RENAME_EXCHANGE != 0 {
            return Err(Errno::ENOENT);
        }
        // The destination may not be inside the source.
        if sst.st_mode & S_IFMT == S_IFDIR {
            let mut d = Some(np.dentry.clone());
            while let Some(x) = d {
                if Arc::ptr_eq(&x, &src.dentry) {
                    return Err(Errno::EINVAL);
                }
                d = x.parent();
            }
        }
        for dir in [&op, &np] {
            let st = dir.stat()?;
            cred.check(&st, access::W_OK | access::X_OK)?;
        }
        Self::check_sticky(cred, &op.stat()?, &sst)?;
        if let Some(d) = &dst {
            Self::check_sticky(cred, &np.stat()?, &d.stat()?)?;
        }
        if op.mount.readonly {
            return Err(Errno::EROFS);
        }
        op.inode().rename(&oname, np.inode(), &nname, flags)?;
        // Fix the dentry cache.
        let moved = op.dentry.forget_child(&oname);
        let replaced = np.dentry.forget_child(&nname);
        if flags & RENAME_EXCHANGE != 0 {
            if let Some(r) = replaced {
                *r.name.lock() = oname.clone();
                *r.parent.lock() = Some(op.dentry.clone());
                op.dentry
                    .children
                    .lock()
                    .insert(oname.clone(), Arc::downgrade(&r));
            }
        } else if let Some(r) = replaced {
            r.deleted.store(true, Ordering::Release);
        }
        let m = moved.unwrap_or(src.dentry);
        *m.name.lock() = nname.clone();
        *m.parent.lock() = Some(np.dentry.clone());
        if np.inode().cacheable() {
            np.dentry.children.lock().insert(nname, Arc::downgrade(&m));
        }
        Ok(())
    }

    /// Changes attributes of a resolved path with Linux's ownership and permission rules.
    pub fn setattr(&self, p: &VfsPath, attr: &SetAttr, cred: &FsCred) -> Result<(), Errno> {
        let st = p.stat()?;
        if attr.mode.is_some() && !cred.owns(&st) {
            return Err(Errno::EPERM);
        }
        if let Some(uid) = attr.uid
            && !cred.is_root()
            && (uid != st.st_uid || cred.uid != st.st_uid)
        {
            return Err(Errno::EPERM);
        }
        if let Some(gid) = attr.gid
            && !cred.is_root()
            && (cred.uid != st.st_uid || !cred.in_group(gid))
        {
            return Err(Errno::EPERM);
        }
        if attr.size.is_some() {
            let ft = FileType::from_mode(st.st_mode);
            if ft == FileType::Directory {
                return Err(Errno::EISDIR);
            }
            if ft != FileType::Regular {
                return Err(Errno::EINVAL);
            }
            cred.check(&st, access::W_OK)?;
        }
        if (attr.atime.is_some() || attr.mtime.is_some()) && !cred.owns(&st) {
            // Setting both to "now" only needs write access.
            cred.check(&st, access::W_OK).map_err(|_| Errno::EPERM)?;
        }
        if p.mount.readonly {
            return Err(Errno::EROFS);
        }
        let mut a = attr.clone();
        if let Some(m) = a.mode.as_mut() {
            *m &= 0o7777;
            // Clear setgid when the caller is not in the group.
            if !cred.is_root() && !cred.in_group(st.st_gid) {
                *m &= !0o2000;
            }
        }
        p.inode().setattr(&a)
    }

    /// Reads a symlink's text (`EINVAL` for other files).
    pub fn readlink(p: &VfsPath) -> Result<Vec<u8>, Errno> {
        if p.file_type()? != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        p.inode().readlink()
    }
}

/// The credentials a new file gets: the caller's uid, and the directory's gid when the
/// directory is setgid.
fn creator(cred: &FsCred, parent: &Stat) -> FsCred {
    let mut c = cred.clone();
    if parent.st_mode & 0o2000 != 0 {
        c.gid = parent.st_gid;
    }
    c
}

/// Where a symlink met during a walk leads.
enum LinkTarget {
    /// A magic link (`/proc/<pid>/fd/N`, `/proc/self/exe`): the file itself.
    Magic(VfsPath),
    /// An ordinary symlink: its text, to be walked.
    Text(Vec<u8>),
}

/// Counts following `link` against the walk's limits (at most [`MAX_SYMLINKS`],
/// `RESOLVE_NO_SYMLINKS`, `RESOLVE_NO_MAGICLINKS`, `RESOLVE_BENEATH`) and says where it
/// leads.
fn link_target(link: &VfsPath, ws: &mut WalkState) -> Result<LinkTarget, Errno> {
    ws.links += 1;
    if ws.links > MAX_SYMLINKS || ws.opts.no_symlinks {
        return Err(Errno::ELOOP);
    }
    if let Some(target) = link.inode().magic_link() {
        if ws.opts.no_magiclinks {
            return Err(Errno::ELOOP);
        }
        if ws.opts.beneath {
            return Err(Errno::EXDEV);
        }
        return Ok(LinkTarget::Magic(target?));
    }
    Ok(LinkTarget::Text(link.inode().readlink()?))
}

fn key(p: &VfsPath) -> (u64, usize) {
    (p.mount.id, Arc::as_ptr(&p.dentry) as usize)
}

impl Vfs {
    /// Builds the sandbox tree: the root is an overlay of a tmpfs over the Gofer's tree
    /// (read-only lower) when `gofer` is given, else a bare tmpfs; `/proc`, `/dev` (with
    /// `/dev/shm`) and `/sys` are the Sentry's own, and so is `/tmp` (a tmpfs) when there
    /// is no Gofer lower. Connect procfs to the kernel
    /// with [`Vfs::set_proc_source`].
    pub fn new_sandbox(
        mf: Arc<platform::MemoryFile>,
        gofer: Option<std::os::fd::OwnedFd>,
    ) -> Result<Arc<Vfs>, Errno> {
        use super::tmpfs::Tmpfs;
        let upper = Tmpfs::new_root(mf.clone(), 0o755, 0, 0);
        let has_lower = gofer.is_some();
        let (root, fstype, source): (Arc<dyn Inode>, &str, &str) = match gofer {
            Some(sock) => {
                let lower = super::gofer::new_gofer_root(sock)?;
                (
                    super::overlay::new_overlay(upper, lower),
                    "overlay",
                    "overlay",
                )
            }
            None => (upper, "tmpfs", "tmpfs"),
        };
        let vfs = Vfs::new(root, fstype, source);
        let r = vfs.root();
        let cred = FsCred::root();
        let dir = |name: &[u8], mode: u32| -> Result<VfsPath, Errno> {
            match vfs.step(&r, &r, name, &cred) {
                Ok(p) => Ok(p),
                Err(e) if e == Errno::ENOENT => {
                    r.inode().create(name, NewNode::Dir { mode }, &cred)?;
                    vfs.step(&r, &r, name, &cred)
                }
                Err(e) => Err(e),
            }
        };
        let (procfs, proc_root) = super::proc::new_procfs();
        procfs.set_vfs(Arc::downgrade(&vfs));
        let _ = vfs.procfs.set(procfs);
        vfs.mount(&dir(b"proc", 0o555)?, proc_root, "proc", "proc", false)?;
        vfs.mount(
            &dir(b"dev", 0o755)?,
            super::devfs::new_devfs(mf.clone())?,
            "tmpfs",
            "devtmpfs",
            false,
        )?;
        vfs.mount(
            &dir(b"sys", 0o555)?,
            super::sysfs::new_sysfs(),
            "sysfs",
            "sysfs",
            true,
        )?;
        // Over a Gofer lower, `/tmp` stays part of the overlay, as in gVisor's `runsc do`:
        // the caller's working directory (often below the host's /tmp) must be visible,
        // and writes land in the tmpfs upper all the same.
        // A root without a `/tmp` (a minimal `--rootfs`) gets one in the upper layer.
        let tmp = dir(b"tmp", 0o1777)?;
        if !has_lower {
            vfs.mount(
                &tmp,
                Tmpfs::new_root(mf, 0o1777, 0, 0),
                "tmpfs",
                "tmpfs",
                false,
            )?;
        }
        Ok(vfs)
    }

    /// Connects procfs to the kernel's process data.
    pub fn set_proc_source(&self, src: Weak<dyn super::ProcSource>) {
        if let Some(p) = self.procfs.get() {
            p.set_source(src);
        }
    }

    /// A fs context rooted at the tree root with working directory `cwd` (absolute).
    pub fn root_context(&self, cwd: &[u8]) -> Result<super::FsContext, Errno> {
        let root = self.root();
        let c = self.resolve(&root, &root, cwd, Follow::Yes, &FsCred::root())?;
        if c.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(super::FsContext::new(root, c))
    }

    /// Opens `path` relative to `ctx` (the loader uses this for the executable and
    /// `PT_INTERP`); `mode` is masked with the context's umask.
    pub fn open(
        &self,
        ctx: &super::FsContext,
        cred: &FsCred,
        path: &[u8],
        flags: u32,
        mode: u32,
    ) -> Result<Arc<OpenFile>, Errno> {
        self.open_at(
            &ctx.root(),
            &ctx.cwd(),
            path,
            flags,
            mode & !ctx.umask(),
            cred,
        )
    }

    /// Opens `path` for `execve` (and the loader's `PT_INTERP`): it must be a regular file
    /// on which the caller has execute permission (`EACCES` otherwise), opened read-only.
    pub fn open_exec(
        &self,
        ctx: &super::FsContext,
        cred: &FsCred,
        path: &[u8],
    ) -> Result<Arc<OpenFile>, Errno> {
        let p = self.resolve(&ctx.root(), &ctx.cwd(), path, Follow::Yes, cred)?;
        let st = p.stat()?;
        if FileType::from_mode(st.st_mode) != FileType::Regular {
            return Err(Errno::EACCES);
        }
        cred.check(&st, access::X_OK)?;
        // Execute permission is what counts; the kernel reads the image regardless of R.
        Self::open_path(&p, O_RDONLY, cred, true)
    }
}
