//! The Gofer client filesystem: the host tree served over `lisafs-proto`, read-only.
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

use super::{DirEntry, FileOps, FileType, FsStat, Inode, magic};

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
    stat: Stat,
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
            stat: to_stat(fs.dev, st),
            children: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashSet::new()),
            listing: Mutex::new(None),
            target: Mutex::new(None),
        })
    }

    fn is_dir(&self) -> bool {
        FileType::from_mode(self.stat.st_mode) == FileType::Directory
    }
}

impl Drop for GoferInode {
    fn drop(&mut self) {
        self.fs.release(self.node);
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
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
            FileType::from_mode(child.stat.st_mode),
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

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if FileType::from_mode(self.stat.st_mode) != FileType::Symlink {
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
        let acc = flags & O_ACCMODE;
        if acc != O_RDONLY || flags & O_TRUNC != 0 {
            return Err(Errno::EROFS);
        }
        match FileType::from_mode(self.stat.st_mode) {
            FileType::Regular => {}
            FileType::Directory => return Ok(Arc::new(super::NoIo)),
            // Devices, FIFOs and sockets of the host are not reachable from the sandbox.
            _ => return Err(Errno::ENXIO),
        }
        let opened = self.fs.client.open_at(self.node, O_RDONLY).map_err(errno)?;
        Ok(Arc::new(GoferFile {
            fs: self.fs.clone(),
            handle: opened.handle,
            file: opened.fd.map(File::from),
        }))
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

    fn write_at(&self, _buf: &[u8], _off: u64) -> Result<usize, Errno> {
        Err(Errno::EROFS)
    }

    fn host_fd(&self) -> Option<std::os::fd::RawFd> {
        self.file.as_ref().map(AsRawFd::as_raw_fd)
    }
}
