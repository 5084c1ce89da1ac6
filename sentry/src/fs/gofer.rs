//! The Gofer client filesystem: the host tree served over `lisafs-proto`. Read-only as the
//! lower layer of the root overlay; read-write for a read-write bind mount, where every
//! change is made by the Gofer (creation, removal, rename, attributes, data through the
//! host descriptor it donates or `PWrite`, `fsync` through `FSync`) and the caches of the
//! directories involved are dropped.
//!
//! Each [`GoferInode`] holds a node id of the Gofer (closed when the inode goes away) and
//! caches its attributes, its directory listing, its symlink target, its looked-up
//! children and the names found missing. Child directories and symlinks are kept for the
//! life of the parent (path walks pass through them again and again; at most
//! [`MAX_KEPT`] of them, as each holds a Gofer descriptor); other files while in use and
//! the last few hundred used. The tree is used as the read-only lower
//! of the overlay, so the caches never go stale from the Sentry's side; changes made on
//! the host while the sandbox runs may not be seen. File data is read with `pread` on the
//! host FD the Gofer donates at open (the Sentry never opens host paths itself), falling
//! back to `PRead` messages when no FD was donated.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::open::*;
use linux_abi::types::{Stat, Timespec};
use lisafs_proto::{Client, ClientError, HandleId, NodeId, WalkStatus};

use super::{Caller, DirEntry, FileOps, FileType, FsStat, Inode, magic};

/// Directory listing chunk requested per `Getdents64`.
const DENTS_CHUNK: u32 = 64 * 1024;

fn errno(e: ClientError) -> Errno {
    Errno::new(e.errno())
}

/// One connection to a Gofer.
#[derive(Debug)]
pub struct GoferFs {
    client: Client,
    dev: u64,
    /// Node ids released but not yet closed on the Gofer (closed in batches).
    pending_close: Mutex<Vec<NodeId>>,
    /// How many directories and symlinks are kept cached (bounded: each costs the Gofer
    /// an open descriptor).
    kept: std::sync::atomic::AtomicUsize,
}

/// Most directories and symlinks kept cached (see the module documentation); past this they are cached only while used.
pub const MAX_KEPT: usize = 4096;

/// How many released nodes are closed with one `Close` message.
const CLOSE_BATCH: usize = 64;

impl GoferFs {
    fn release(&self, node: NodeId) {
        let batch = {
            let mut p = self.pending_close.lock();
            p.push(node);
            if p.len() < CLOSE_BATCH {
                return;
            }
            std::mem::take(&mut *p)
        };
        if let Err(e) = self.client.close(&batch, &[]) {
            tracing::debug!("gofer: closing {} nodes: {e}", batch.len());
        }
    }
}

impl Drop for GoferFs {
    fn drop(&mut self) {
        let p = std::mem::take(&mut *self.pending_close.lock());
        if !p.is_empty() {
            let _ = self.client.close(&p, &[]);
        }
    }
}

/// A cached child: kept alive (directories, symlinks) or only remembered.
#[derive(Debug)]
enum Cached {
    Kept(Arc<GoferInode>),
    Seen(Weak<GoferInode>),
}

impl Cached {
    fn get(&self) -> Option<Arc<GoferInode>> {
        match self {
            Cached::Kept(a) => Some(a.clone()),
            Cached::Seen(w) => w.upgrade(),
        }
    }
}

/// A node of the served tree.
#[derive(Debug)]
pub struct GoferInode {
    fs: Arc<GoferFs>,
    node: NodeId,
    /// The attributes, shared with the open files (writes grow the size).
    stat: Arc<Mutex<Stat>>,
    children: Mutex<HashMap<Vec<u8>, Cached>>,
    missing: Mutex<HashSet<Vec<u8>>>,
    listing: Mutex<Option<Vec<DirEntry>>>,
    target: Mutex<Option<Vec<u8>>>,
    /// Directories only: the recently used files of the whole tree (shared).
    recent: Option<Arc<Recent>>,
}

/// Keeps the most recently looked-up files alive, so that the several calls a program
/// makes on one path in a row (`statx`, `getxattr`, `open`...) walk the Gofer once. Held
/// by directories only, so it never keeps itself alive.
#[derive(Debug, Default)]
struct Recent {
    files: Mutex<std::collections::VecDeque<Arc<GoferInode>>>,
}

/// How many recently used files stay cached.
const RECENT_FILES: usize = 256;

impl Recent {
    fn touch(&self, f: &Arc<GoferInode>) {
        let mut q = self.files.lock();
        if q.iter().any(|x| Arc::ptr_eq(x, f)) {
            return;
        }
        if q.len() >= RECENT_FILES {
            q.pop_front();
        }
        q.push_back(f.clone());
    }
}

fn to_stat(dev: u64, s: &lisafs_proto::Stat) -> Stat {
    let ts = |t: lisafs_proto::Timespec| Timespec {
        tv_sec: t.sec,
        tv_nsec: i64::from(t.nsec),
    };
    Stat {
        st_dev: dev,
        st_ino: s.ino,
        st_nlink: s.nlink,
        st_mode: s.mode,
        st_uid: s.uid,
        st_gid: s.gid,
        st_rdev: s.rdev,
        st_size: s.size as i64,
        st_blksize: i64::from(s.blksize.max(512)),
        st_blocks: s.blocks as i64,
        st_atime: ts(s.atime),
        st_mtime: ts(s.mtime),
        st_ctime: ts(s.ctime),
        ..Stat::default()
    }
}

/// Connects to the Gofer on `sock`, mounts its root and returns the root inode.
pub fn new_gofer_root(sock: OwnedFd) -> Result<Arc<GoferInode>, Errno> {
    let client = Client::new(sock).map_err(errno)?;
    let m = client.mount(b"").map_err(errno)?;
    let fs = Arc::new(GoferFs {
        client,
        dev: super::new_dev(),
        pending_close: Mutex::new(Vec::new()),
        kept: std::sync::atomic::AtomicUsize::new(0),
    });
    Ok(GoferInode::new(
        &fs,
        m.root.id,
        &m.root.stat,
        &Arc::new(Recent::default()),
    ))
}

impl GoferInode {
    fn new(
        fs: &Arc<GoferFs>,
        node: NodeId,
        st: &lisafs_proto::Stat,
        recent: &Arc<Recent>,
    ) -> Arc<GoferInode> {
        let is_dir = st.mode & linux_abi::flags::mode::S_IFMT == linux_abi::flags::mode::S_IFDIR;
        Arc::new(GoferInode {
            recent: is_dir.then(|| recent.clone()),
            fs: fs.clone(),
            node,
            stat: Arc::new(Mutex::new(to_stat(fs.dev, st))),
            children: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashSet::new()),
            listing: Mutex::new(None),
            target: Mutex::new(None),
        })
    }

    fn is_dir(&self) -> bool {
        FileType::from_mode(self.mode()) == FileType::Directory
    }

    fn mode(&self) -> u32 {
        self.stat.lock().st_mode
    }

    /// Forgets what this directory knew about `name` (it was created, removed or
    /// renamed) and its listing.
    fn changed(&self, name: &[u8]) {
        self.children.lock().remove(name);
        self.missing.lock().remove(name);
        *self.listing.lock() = None;
    }

    /// Re-reads the attributes from the Gofer.
    fn refresh(&self) -> Result<(), Errno> {
        let st = self.fs.client.fstat(self.node).map_err(errno)?;
        *self.stat.lock() = to_stat(self.fs.dev, &st);
        Ok(())
    }

    /// A child just made by the Gofer, remembered as found.
    fn adopt(&self, name: &[u8], n: &lisafs_proto::Inode) -> Arc<GoferInode> {
        self.changed(name);
        let recent = self.recent.clone().unwrap_or_default();
        let child = GoferInode::new(&self.fs, n.id, &n.stat, &recent);
        self.children
            .lock()
            .insert(name.to_vec(), Cached::Seen(Arc::downgrade(&child)));
        if let (Some(r), false) = (&self.recent, child.is_dir()) {
            r.touch(&child);
        }
        child
    }

    /// `other` as an inode of the same Gofer connection (`EXDEV` otherwise).
    fn same_fs<'a>(&self, other: &'a Arc<dyn Inode>) -> Result<&'a GoferInode, Errno> {
        other
            .as_any()
            .downcast_ref::<GoferInode>()
            .filter(|o| Arc::ptr_eq(&o.fs, &self.fs))
            .ok_or(Errno::EXDEV)
    }
}

/// `AT_REMOVEDIR`.
const AT_REMOVEDIR: u32 = 0x200;

fn set_time(t: Option<Timespec>) -> Option<lisafs_proto::SetTime> {
    t.map(|t| {
        lisafs_proto::SetTime::At(lisafs_proto::Timespec {
            sec: t.tv_sec,
            nsec: t.tv_nsec.clamp(0, 999_999_999) as u32,
        })
    })
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        self.fs.release(self.node);
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(*self.stat.lock())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let hit = self.children.lock().get(name).and_then(Cached::get);
        if let Some(c) = hit {
            if let (Some(r), false) = (&self.recent, c.is_dir()) {
                r.touch(&c);
            }
            return Ok(c);
        }
        if self.missing.lock().contains(name) {
            return Err(Errno::ENOENT);
        }
        let r = self.fs.client.walk(self.node, &[name]).map_err(errno)?;
        let Some(n) = r.nodes.first() else {
            if r.status == WalkStatus::NotFound {
                self.missing.lock().insert(name.to_vec());
            }
            return Err(Errno::ENOENT);
        };
        // Close any extra nodes a misbehaving server returned.
        if r.nodes.len() > 1 {
            let extra: Vec<NodeId> = r.nodes[1..].iter().map(|n| n.id).collect();
            let _ = self.fs.client.close(&extra, &[]);
        }
        let recent = self.recent.clone().unwrap_or_default();
        let child = GoferInode::new(&self.fs, n.id, &n.stat, &recent);
        let keep = matches!(
            FileType::from_mode(child.mode()),
            FileType::Directory | FileType::Symlink
        ) && self
            .fs
            .kept
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            < MAX_KEPT;
        let mut c = self.children.lock();
        if c.len() % 64 == 63 {
            c.retain(|_, e| e.get().is_some());
        }
        let entry = if keep {
            Cached::Kept(child.clone())
        } else {
            Cached::Seen(Arc::downgrade(&child))
        };
        c.insert(name.to_vec(), entry);
        drop(c);
        if let (Some(r), false) = (&self.recent, child.is_dir()) {
            r.touch(&child);
        }
        Ok(child)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if let Some(l) = self.listing.lock().as_ref() {
            return Ok(l.clone());
        }
        let opened = self
            .fs
            .client
            .open_at(self.node, O_RDONLY | O_DIRECTORY)
            .map_err(errno)?;
        let mut out = Vec::new();
        let mut off = 0u64;
        let res = loop {
            match self.fs.client.getdents64(opened.handle, off, DENTS_CHUNK) {
                Ok(ents) if ents.is_empty() => break Ok(()),
                Ok(ents) => {
                    let last = ents.last().map(|e| e.off).unwrap_or(off);
                    for e in ents {
                        if e.name == b"."
                            || e.name == b".."
                            || e.name.is_empty()
                            || e.name.contains(&b'/')
                        {
                            continue;
                        }
                        let kind = match e.kind {
                            1 => FileType::Fifo,
                            2 => FileType::CharDevice,
                            4 => FileType::Directory,
                            6 => FileType::BlockDevice,
                            10 => FileType::Symlink,
                            12 => FileType::Socket,
                            _ => FileType::Regular,
                        };
                        out.push(DirEntry {
                            name: e.name,
                            ino: e.ino,
                            kind,
                        });
                    }
                    if last == off {
                        break Ok(());
                    }
                    off = last;
                }
                Err(e) => break Err(errno(e)),
            }
        };
        let _ = self.fs.client.close(&[], &[opened.handle]);
        res?;
        *self.listing.lock() = Some(out.clone());
        Ok(out)
    }

    fn readlink(&self, _caller: &Caller) -> Result<Vec<u8>, Errno> {
        if FileType::from_mode(self.mode()) != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        if let Some(t) = self.target.lock().as_ref() {
            return Ok(t.clone());
        }
        let t = self.fs.client.read_link_at(self.node).map_err(errno)?;
        *self.target.lock() = Some(t.clone());
        Ok(t)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        match FileType::from_mode(self.mode()) {
            FileType::Regular => {}
            FileType::Directory if flags & O_ACCMODE == O_RDONLY => {
                return Ok(Arc::new(super::NoIo));
            }
            FileType::Directory => return Err(Errno::EISDIR),
            // Devices, FIFOs and sockets of the host are not reachable from the sandbox.
            _ => return Err(Errno::ENXIO),
        }
        // The access mode, truncation and `O_APPEND`: appends happen at the host file's
        // real end, atomically, even while a host program appends to it too. A read-only
        // Gofer refuses writable opens with EROFS.
        let host_flags = flags & (O_ACCMODE | O_TRUNC | O_APPEND);
        let opened = self
            .fs
            .client
            .open_at(self.node, host_flags)
            .map_err(errno)?;
        if flags & O_TRUNC != 0 {
            self.refresh()?;
        }
        Ok(Arc::new(GoferFile {
            fs: self.fs.clone(),
            handle: opened.handle,
            file: opened.fd.map(File::from),
            stat: self.stat.clone(),
            append: std::sync::atomic::AtomicBool::new(flags & O_APPEND != 0),
            host_append: flags & O_APPEND != 0,
            node: self.node,
        }))
    }

    fn create(
        &self,
        name: &[u8],
        node: super::NewNode,
        cred: &super::FsCred,
    ) -> Result<Arc<dyn Inode>, Errno> {
        use super::NewNode;
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let c = &self.fs.client;
        let (uid, gid) = (cred.uid, cred.gid);
        let made: lisafs_proto::Inode = match node {
            NewNode::File { mode } => {
                let f = c
                    .open_create_at(self.node, name, O_RDONLY | O_EXCL, mode, uid, gid)
                    .map_err(errno)?;
                let _ = c.close(&[], &[f.handle]);
                Ok(f.node)
            }
            NewNode::Dir { mode } => c.mkdir_at(self.node, name, mode, uid, gid),
            NewNode::Symlink { target } => c.symlink_at(self.node, name, &target, uid, gid),
            NewNode::Node { mode, rdev } => c.mknod_at(self.node, name, mode, rdev, uid, gid),
        }
        .map_err(errno)?;
        let child = self.adopt(name, &made);
        let _ = self.refresh();
        Ok(child)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let t = self.same_fs(target)?;
        let made = self
            .fs
            .client
            .link_at(self.node, name, t.node)
            .map_err(errno)?;
        self.adopt(name, &made);
        let _ = t.refresh();
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let flags = if dir { AT_REMOVEDIR } else { 0 };
        let r = self
            .fs
            .client
            .unlink_at(self.node, name, flags)
            .map_err(errno);
        self.changed(name);
        r?;
        self.missing.lock().insert(name.to_vec());
        let _ = self.refresh();
        Ok(())
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let nd = self.same_fs(new_dir)?;
        let r = self
            .fs
            .client
            .rename_at(self.node, old, nd.node, new, flags)
            .map_err(errno);
        self.changed(old);
        nd.changed(new);
        r?;
        let _ = self.refresh();
        let _ = nd.refresh();
        Ok(())
    }

    fn setattr(&self, attr: &super::SetAttr) -> Result<(), Errno> {
        let st = self
            .fs
            .client
            .set_stat(lisafs_proto::SetStatReq {
                node: self.node,
                mode: attr.mode,
                uid: attr.uid,
                gid: attr.gid,
                size: attr.size,
                atime: set_time(attr.atime),
                mtime: set_time(attr.mtime),
            })
            .map_err(errno)?;
        *self.stat.lock() = to_stat(self.fs.dev, &st);
        Ok(())
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        let s = self.fs.client.fstatfs(self.node).map_err(errno)?;
        Ok(FsStat {
            magic: magic::V9FS,
            bsize: s.block_size,
            blocks: s.blocks,
            bfree: s.blocks_free,
            bavail: s.blocks_available,
            files: s.files,
            ffree: s.files_free,
            namelen: s.name_length,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open Gofer file.
#[derive(Debug)]
pub struct GoferFile {
    fs: Arc<GoferFs>,
    handle: HandleId,
    file: Option<File>,
    /// The inode's attributes: writes move the size and the modification time.
    stat: Arc<Mutex<Stat>>,
    /// Opened (or set) `O_APPEND`: the size is read back from the host after a write.
    append: std::sync::atomic::AtomicBool,
    /// Opened with `O_APPEND`: the host descriptor appends by itself, atomically (and
    /// keeps doing so if the application clears `O_APPEND` later).
    host_append: bool,
    /// The node, to read the attributes back.
    node: NodeId,
}

impl Drop for GoferFile {
    fn drop(&mut self) {
        let _ = self.fs.client.close(&[], &[self.handle]);
    }
}

impl FileOps for GoferFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if let Some(f) = &self.file {
            loop {
                match f.read_at(buf, off) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let count = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let data = self
            .fs
            .client
            .pread(self.handle, off, count)
            .map_err(errno)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let append = self.append.load(std::sync::atomic::Ordering::Relaxed);
        let off = if append && !self.host_append {
            self.fs.client.fstat(self.node).map_err(errno)?.size
        } else {
            off
        };
        let n = match &self.file {
            Some(f) => loop {
                match f.write_at(buf, off) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                }
            },
            None => self
                .fs
                .client
                .pwrite(self.handle, off, buf)
                .map_err(errno)? as usize,
        };
        if n > 0 && append {
            // The host put the data at its end, wherever that was.
            if let Ok(st) = self.fs.client.fstat(self.node) {
                *self.stat.lock() = to_stat(self.fs.dev, &st);
            }
        } else if n > 0 {
            let now = super::now();
            let mut st = self.stat.lock();
            st.st_size = st.st_size.max((off + n as u64) as i64);
            st.st_blocks = (st.st_size + 511) / 512;
            st.st_mtime = now;
            st.st_ctime = now;
        }
        Ok(n)
    }

    fn fsync(&self) -> Result<(), Errno> {
        self.fs.client.fsync(self.handle, false).map_err(errno)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        // The host descriptor keeps the `O_APPEND` it was opened with; appends turned on
        // later go where the host says the end is just before the write.
        self.append
            .store(flags & O_APPEND != 0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn host_fd(&self) -> Option<std::os::fd::RawFd> {
        self.file.as_ref().map(AsRawFd::as_raw_fd)
    }
}
