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
use super::inotify::FsNotify;
use super::{
    FileType, FsCred, Inode, MAX_SYMLINKS, NewNode, PATH_MAX, SetAttr, access, cap, check_name,
};

mod open;
mod ops;
mod walk;
use ops::*;
use walk::*;

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

    /// Marks the name removed by other means than the VFS (`mq_unlink`): paths through
    /// it end in ` (deleted)`.
    pub(crate) fn set_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
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
    readonly: AtomicBool,
    /// `MS_NOEXEC`: nothing on it can be executed or mapped executable.
    noexec: AtomicBool,
    /// `MS_NODEV`: its device nodes cannot be opened.
    nodev: AtomicBool,
    /// The notification hub of the tree's files (`None` outside any tree).
    notify: Option<Arc<FsNotify>>,
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
    /// A mount with no parent (a tree's root, or the anonymous files' mount) of the
    /// filesystem whose root inode is `root`, named `name` in its root dentry.
    fn parentless(
        root: Arc<dyn Inode>,
        name: &[u8],
        fstype: &str,
        source: &str,
        notify: Option<Arc<FsNotify>>,
    ) -> Arc<Mount> {
        Arc::new(Mount {
            id: next_mount_id(),
            fstype: fstype.into(),
            source: source.into(),
            root: Dentry::new_root(root, name),
            parent: None,
            readonly: AtomicBool::new(false),
            noexec: AtomicBool::new(false),
            nodev: AtomicBool::new(false),
            notify,
        })
    }

    /// A mount of `root` in no tree (Linux's `kern_mount`): files that a system call
    /// opens without a path walk (`mq_open`'s queues) live on it, named from its root.
    pub fn internal(root: Arc<dyn Inode>, fstype: &str, source: &str) -> Arc<Mount> {
        Mount::parentless(root, b"/", fstype, source, None)
    }

    /// The notification hub of the tree this mount is in (inotify); `None` for files in
    /// no tree.
    pub fn notify(&self) -> Option<&Arc<FsNotify>> {
        self.notify.as_ref()
    }

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
        self.readonly.load(Ordering::Acquire)
    }

    /// Makes the mount read-only or read-write (`MS_REMOUNT|MS_BIND`); open files keep
    /// the access they were opened with, as on Linux.
    pub fn set_readonly(&self, readonly: bool) {
        self.readonly.store(readonly, Ordering::Release);
    }

    /// Whether the mount is `noexec`.
    pub fn noexec(&self) -> bool {
        self.noexec.load(Ordering::Acquire)
    }

    /// Whether the mount is `nodev`.
    pub fn nodev(&self) -> bool {
        self.nodev.load(Ordering::Acquire)
    }

    /// Sets `noexec` and `nodev`.
    pub fn set_flags(&self, noexec: bool, nodev: bool) {
        self.noexec.store(noexec, Ordering::Release);
        self.nodev.store(nodev, Ordering::Release);
    }

    /// The id of the mount this one is mounted on (`None` for the root of a tree).
    pub fn parent_id(&self) -> Option<u64> {
        self.parent.as_ref().map(|(m, _)| m.id)
    }

    /// The root mount of the tree (mount namespace) this mount belongs to.
    pub fn top(self: &Arc<Mount>) -> Arc<Mount> {
        let mut m = self.clone();
        while let Some((p, _)) = &m.parent {
            let p = p.clone();
            m = p;
        }
        m
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
        Mount::parentless(
            super::synth::SynthDir::empty(0o555),
            b"anon",
            "anon_inodefs",
            "none",
            None,
        )
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

    /// `name` below the root of `mount`, bound to `inode` without a lookup (a file the
    /// caller found by other means, as `mq_open` finds its queue).
    pub fn detached_child(mount: &Arc<Mount>, name: &[u8], inode: Arc<dyn Inode>) -> VfsPath {
        VfsPath {
            mount: mount.clone(),
            dentry: Dentry::new_child(&mount.root, name, inode),
        }
    }

    /// The inode.
    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.dentry.inode
    }

    /// Reports the inotify event `mask` on this file to its watches and its
    /// directory's, the directory's with the file's name (inotify).
    pub fn notify(&self, mask: u32) {
        if mask == 0 {
            return;
        }
        if let Some(n) = &self.mount.notify {
            n.on_dentry(&self.dentry, mask);
        }
    }

    /// Reports `mask` to the watches of the directory this path is, about its child
    /// `name` (see [`FsNotify::on_child`]).
    pub(crate) fn notify_child(&self, name: &[u8], mask: u32, cookie: u32, is_dir: bool) {
        if let Some(n) = &self.mount.notify {
            n.on_child(&self.dentry.inode, name, mask, cookie, is_dir);
        }
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
    /// The procfs instances mounted at each tree's `/proc` (sandbox trees only).
    procfs: Mutex<Vec<Arc<super::proc::ProcFs>>>,
    /// Where procfs learns about processes (set once the kernel exists).
    proc_source: Mutex<Option<Weak<dyn super::ProcSource>>>,
    /// The kernel's `mqueue` file system, mounted at each tree's `/dev/mqueue` (set once
    /// the kernel exists).
    mqueue: Mutex<Option<Arc<dyn Inode>>>,
    /// The advisory locks of the files of this tree.
    locks: super::lock::LockRegistry,
    /// The inotify watches of the files of this tree.
    notify: Arc<FsNotify>,
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
        let notify = FsNotify::new();
        let mount = Mount::parentless(root, b"/", fstype, source, Some(notify.clone()));
        let root = VfsPath {
            dentry: mount.root.clone(),
            mount: mount.clone(),
        };
        Arc::new(Vfs {
            root,
            mounts: Mutex::new(HashMap::new()),
            all: Mutex::new(vec![mount]),
            procfs: Mutex::new(Vec::new()),
            proc_source: Mutex::new(None),
            mqueue: Mutex::new(None),
            locks: super::lock::LockRegistry::default(),
            notify,
        })
    }

    /// The inotify hub of this tree's files.
    pub fn notify(&self) -> &Arc<FsNotify> {
        &self.notify
    }

    /// The advisory locks (`fcntl`, `flock`) of the files of this tree.
    pub fn locks(&self) -> &super::lock::LockRegistry {
        &self.locks
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
        Ok(self.attach(
            at,
            Dentry::new_root(fs_root, b"/"),
            fstype,
            source,
            readonly,
        ))
    }

    /// Bind-mounts what `src` names (a directory or a file, with everything below it)
    /// on `at`, as `mount --bind`: a directory needs a directory, a file a non-directory.
    pub fn bind(&self, at: &VfsPath, src: &VfsPath, readonly: bool) -> Result<Arc<Mount>, Errno> {
        let src_dir = src.file_type()? == FileType::Directory;
        let at_dir = at.file_type()? == FileType::Directory;
        if src_dir != at_dir {
            return Err(if at_dir {
                Errno::EISDIR
            } else {
                Errno::ENOTDIR
            });
        }
        let (fstype, source) = (src.mount.fstype.clone(), src.mount.source.clone());
        Ok(self.attach(at, src.dentry.clone(), &fstype, &source, readonly))
    }

    fn attach(
        &self,
        at: &VfsPath,
        root: Arc<Dentry>,
        fstype: &str,
        source: &str,
        readonly: bool,
    ) -> Arc<Mount> {
        let m = Arc::new(Mount {
            id: next_mount_id(),
            fstype: fstype.into(),
            source: source.into(),
            root,
            parent: Some((at.mount.clone(), at.dentry.clone())),
            readonly: AtomicBool::new(readonly),
            noexec: AtomicBool::new(false),
            nodev: AtomicBool::new(false),
            notify: Some(self.notify.clone()),
        });
        // The mount point must be found again by name even where the directory does not
        // cache its children (procfs): it is remembered in its parent while mounted on
        // (the mount holds it).
        if let Some(parent) = at.dentry.parent() {
            let name = at.dentry.name();
            let mut c = parent.children.lock();
            let known = c
                .get(&name)
                .and_then(Weak::upgrade)
                .is_some_and(|d| Arc::ptr_eq(&d, &at.dentry));
            if !known {
                c.insert(name, Arc::downgrade(&at.dentry));
            }
        }
        at.dentry.mounted.store(true, Ordering::Release);
        self.mounts.lock().insert(key(at), m.clone());
        self.all.lock().push(m.clone());
        m
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
}

/// The root file system of a sandbox tree: an overlay of a fresh tmpfs over the Gofer's
/// read-only tree, or a bare tmpfs.
fn sandbox_root_fs(
    mf: &Arc<platform::MemoryFile>,
    gofer: Option<std::os::fd::OwnedFd>,
) -> Result<(Arc<dyn Inode>, &'static str, &'static str), Errno> {
    let upper = super::tmpfs::Tmpfs::new_root(mf.clone(), 0o755, 0, 0);
    Ok(match gofer {
        Some(sock) => {
            let lower =
                super::gofer::new_gofer_root(sock, super::gofer::Revalidate::Never, mf.clone())?;
            (
                super::overlay::new_overlay(upper, lower),
                "overlay",
                "overlay",
            )
        }
        None => (upper, "tmpfs", "tmpfs"),
    })
}

impl Vfs {
    /// Builds the sandbox tree: the root is an overlay of a tmpfs over the Gofer's tree
    /// (read-only lower) when `gofer` is given, else a bare tmpfs; `/proc`, `/dev` (with
    /// `/dev/shm`) and `/sys` are the Sentry's own, and so is `/tmp` (a tmpfs) when there
    /// is no Gofer lower. `/dev/tty` opens the caller's terminal in `terminals`. Connect
    /// procfs to the kernel
    /// with [`Vfs::set_proc_source`].
    pub fn new_sandbox(
        mf: Arc<platform::MemoryFile>,
        gofer: Option<std::os::fd::OwnedFd>,
        terminals: Arc<super::tty::Terminals>,
    ) -> Result<Arc<Vfs>, Errno> {
        let has_lower = gofer.is_some();
        let (root, fstype, source) = sandbox_root_fs(&mf, gofer)?;
        let vfs = Vfs::new(root, fstype, source);
        let r = vfs.root();
        vfs.populate(&r, mf, has_lower, terminals)?;
        Ok(vfs)
    }

    /// Builds another tree in this mount table, separate from the first one and from
    /// any other (a container's mount namespace in a pod): its root is made as
    /// [`Vfs::new_sandbox`] makes the first one's (an overlay over `gofer`'s tree, or a
    /// bare tmpfs), with `/proc`, `/dev`, `/sys` of its own. Nothing in one tree can be
    /// reached by name from another: a walk never leaves its caller's root.
    pub fn new_tree(
        self: &Arc<Vfs>,
        mf: Arc<platform::MemoryFile>,
        gofer: Option<std::os::fd::OwnedFd>,
        terminals: Arc<super::tty::Terminals>,
    ) -> Result<VfsPath, Errno> {
        let has_lower = gofer.is_some();
        let (root, fstype, source) = sandbox_root_fs(&mf, gofer)?;
        let mount = Mount::parentless(root, b"/", fstype, source, Some(self.notify.clone()));
        self.all.lock().push(mount.clone());
        let r = VfsPath {
            dentry: mount.root.clone(),
            mount,
        };
        if let Err(e) = self.populate(&r, mf, has_lower, terminals) {
            self.remove_tree(&r.mount);
            return Err(e);
        }
        Ok(r)
    }

    /// Forgets every mount of the tree whose root mount is `top` (made by
    /// [`Vfs::new_tree`]): once the files open in it are closed, its file systems go
    /// (and a Gofer's connection closes). The first tree cannot be removed.
    pub fn remove_tree(&self, top: &Arc<Mount>) {
        if Arc::ptr_eq(top, &self.root.mount) {
            return;
        }
        let gone: Vec<Arc<Mount>> = {
            let mut all = self.all.lock();
            let (gone, keep) = all.drain(..).partition(|m| Arc::ptr_eq(&m.top(), top));
            *all = keep;
            gone
        };
        self.mounts
            .lock()
            .retain(|_, m| !gone.iter().any(|g| Arc::ptr_eq(g, m)));
    }

    /// Makes `/proc`, `/dev`, `/sys` and (without a Gofer lower) `/tmp` in the tree
    /// rooted at `r`.
    fn populate(
        self: &Arc<Vfs>,
        r: &VfsPath,
        mf: Arc<platform::MemoryFile>,
        has_lower: bool,
        terminals: Arc<super::tty::Terminals>,
    ) -> Result<(), Errno> {
        use super::tmpfs::Tmpfs;
        let vfs = self;
        let cred = FsCred::root();
        let dir = |name: &[u8], mode: u32| -> Result<VfsPath, Errno> {
            match vfs.step(r, r, name, &cred) {
                Ok(p) => Ok(p),
                Err(e) if e == Errno::ENOENT => {
                    r.inode().create(name, NewNode::Dir { mode }, &cred)?;
                    vfs.step(r, r, name, &cred)
                }
                Err(e) => Err(e),
            }
        };
        let (procfs, proc_root) = super::proc::new_procfs();
        procfs.set_vfs(Arc::downgrade(vfs));
        if let Some(src) = vfs.proc_source.lock().clone() {
            procfs.set_source(src);
        }
        vfs.procfs.lock().push(procfs);
        vfs.mount(&dir(b"proc", 0o555)?, proc_root, "proc", "proc", false)?;
        let (devfs, devpts) = super::devfs::new_devfs(mf.clone(), terminals)?;
        vfs.mount(&dir(b"dev", 0o755)?, devfs, "tmpfs", "devtmpfs", false)?;
        let pts = vfs.resolve(r, r, b"/dev/pts", Follow::Yes, &cred)?;
        vfs.mount(&pts, devpts, "devpts", "devpts", false)?;
        let mqueue = vfs.mqueue.lock().clone();
        if let Some(mq) = mqueue {
            vfs.mount_mqueue(r, mq)?;
        }
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
        Ok(())
    }

    /// Mounts the kernel's `mqueue` file system (its POSIX message queues) at
    /// `/dev/mqueue` of the first tree and of every tree made later.
    pub fn set_mqueue(&self, root: Arc<dyn Inode>) -> Result<(), Errno> {
        *self.mqueue.lock() = Some(root.clone());
        self.mount_mqueue(&self.root(), root)
    }

    fn mount_mqueue(&self, r: &VfsPath, root: Arc<dyn Inode>) -> Result<(), Errno> {
        let at = self.resolve(r, r, b"/dev/mqueue", Follow::Yes, &FsCred::root())?;
        self.mount(&at, root, "mqueue", "mqueue", false)?;
        Ok(())
    }

    /// Connects procfs to the kernel's process data.
    pub fn set_proc_source(&self, src: Weak<dyn super::ProcSource>) {
        *self.proc_source.lock() = Some(src.clone());
        for p in self.procfs.lock().iter() {
            p.set_source(src.clone());
        }
    }

    /// A fs context rooted at the tree root with working directory `cwd` (absolute).
    pub fn root_context(&self, cwd: &[u8]) -> Result<super::FsContext, Errno> {
        self.context_at(self.root(), cwd)
    }

    /// A fs context rooted at `root` (the root of a tree, see [`Vfs::new_tree`]) with
    /// working directory `cwd` (absolute, resolved from `root`).
    pub fn context_at(&self, root: VfsPath, cwd: &[u8]) -> Result<super::FsContext, Errno> {
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
        if p.mount.noexec() {
            return Err(Errno::EACCES);
        }
        // Execute permission is what counts; the kernel reads the image regardless of R.
        Self::open_path(&p, O_RDONLY, cred, true)
    }
}
