//! The Gofer client filesystem: the host tree served over `lisafs-proto`. Read-only as the
//! lower layer of the root overlay; read-write for a read-write bind mount, where every
//! change is made by the Gofer (creation, removal, rename, attributes, data through the
//! host descriptor it donates or `PWrite`, `fsync` through `FSync`) and the caches of the
//! directories involved are dropped.
//!
//! Each [`GoferInode`] holds a node id of the Gofer (closed when the inode goes away) and
//! caches its attributes, its directory listing, its symlink target, its looked-up
//! children (weakly) and the names found missing. What stays alive is decided per mount
//! by its [`NodeCache`]: the most recently used nodes and missing names, at most
//! [`CACHE_LIMIT`] together, least recently used evicted first. How the caches learn of
//! host changes is the mount's [`Revalidate`] policy: never for a tree only this sandbox
//! sees (the overlay's read-only lower), on every access by name for shared bind mounts.
//! The Sentry's own changes (creation, removal, rename) drop what the directories
//! involved knew about the names. File data is read with `pread` on the host FD the
//! Gofer donates at open (the Sentry never opens host paths itself), falling back to
//! `PRead` messages when no FD was donated.

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

use super::pagecache::PageCache;
use super::{Caller, DirEntry, FileOps, FileType, FsStat, Inode, magic};
use crate::mm::{Frame, PAGE};

/// Directory listing chunk requested per `Getdents64`.
const DENTS_CHUNK: u32 = 64 * 1024;

fn errno(e: ClientError) -> Errno {
    e.errno()
}

/// How a mount's caches learn of changes made outside the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revalidate {
    /// Never: only this sandbox sees the tree (the root of `runsc do` and of an OCI
    /// container, the read-only lower of the overlay), so what was looked up once stays
    /// true. Names found missing are remembered, listings kept.
    Never,
    /// On every access by name (shared bind mounts, which the host may change while the
    /// sandbox runs): each walk step through a cached name asks the Gofer, in one
    /// `WalkStat`, whether it still leads to the same file and refreshes its attributes.
    /// No names are remembered as missing and no listing is kept.
    OnAccess,
}

/// One connection to a Gofer.
#[derive(Debug)]
pub struct GoferFs {
    client: Client,
    dev: u64,
    /// Node ids and handles released but not yet closed on the Gofer (closed in
    /// batches).
    pending_close: Mutex<(Vec<NodeId>, Vec<HandleId>)>,
    revalidate: Revalidate,
    /// The memory file the page caches of mapped files live in.
    mf: Arc<platform::MemoryFile>,
}

/// How many nodes and missing names one mount's [`NodeCache`] keeps, together. Each
/// cached node costs the Gofer one `O_PATH` descriptor.
pub const CACHE_LIMIT: usize = 4096;

/// How many released nodes are closed with one `Close` message.
const CLOSE_BATCH: usize = 64;

impl GoferFs {
    fn release(&self, node: Option<NodeId>, handle: Option<HandleId>) {
        let (nodes, handles) = {
            let mut p = self.pending_close.lock();
            p.0.extend(node);
            p.1.extend(handle);
            if p.0.len() + p.1.len() < CLOSE_BATCH {
                return;
            }
            std::mem::take(&mut *p)
        };
        if let Err(e) = self.client.close(&nodes, &handles) {
            tracing::debug!("gofer: closing {} nodes: {e}", nodes.len() + handles.len());
        }
    }
}

impl Drop for GoferFs {
    fn drop(&mut self) {
        let (nodes, handles) = std::mem::take(&mut *self.pending_close.lock());
        if !nodes.is_empty() || !handles.is_empty() {
            let _ = self.client.close(&nodes, &handles);
        }
    }
}

/// An open handle of the Gofer and the host descriptor it donated for it (if any).
#[derive(Debug)]
struct HostFile {
    fs: Arc<GoferFs>,
    handle: HandleId,
    file: Option<File>,
    /// Closed with the next batch rather than at once (the shared read-only handle of
    /// a node: nothing waits for its close).
    batched: bool,
}

impl Drop for HostFile {
    fn drop(&mut self) {
        if self.batched {
            self.fs.release(None, Some(self.handle));
        } else {
            let _ = self.fs.client.close(&[], &[self.handle]);
        }
    }
}

/// What the cache of a mount holds, keyed by node id or by (directory, missing name).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Node(u64),
    Missing(u64, Vec<u8>),
}

#[derive(Debug)]
enum Entry {
    /// A node kept alive (with its children, attributes, listing, link target): held for
    /// its reference only.
    Node(#[allow(dead_code)] Arc<GoferInode>),
    /// A name remembered as missing in this directory.
    Missing(Weak<GoferInode>),
}

#[derive(Debug, Default)]
struct Lru {
    next: u64,
    stamps: HashMap<Key, u64>,
    order: std::collections::BTreeMap<u64, (Key, Entry)>,
}

/// The dentry and attribute cache of one Gofer mount: keeps the most recently used nodes
/// alive (directories' children are only weak references; a walk finds a child again
/// while the cache or an open file holds it) and bounds the names remembered as missing,
/// together at most `limit` entries; the least recently used goes first. A node evicted
/// is closed on the Gofer once nothing else holds it; a missing name evicted is
/// forgotten by its directory. Held strongly by the mount's root inode only (every other
/// inode holds it weakly), so it never keeps itself alive and goes with the mount.
#[derive(Debug)]
pub(crate) struct NodeCache {
    limit: usize,
    lru: Mutex<Lru>,
}

impl NodeCache {
    fn new(limit: usize) -> Arc<NodeCache> {
        Arc::new(NodeCache {
            limit: limit.max(1),
            lru: Mutex::new(Lru::default()),
        })
    }

    fn put(&self, key: Key, entry: Entry) {
        let evicted = {
            let mut l = self.lru.lock();
            l.next += 1;
            let stamp = l.next;
            let old = l
                .stamps
                .insert(key.clone(), stamp)
                .and_then(|o| l.order.remove(&o));
            l.order.insert(stamp, (key, entry));
            let mut evicted = Vec::new();
            while l.order.len() > self.limit {
                let Some((_, (k, e))) = l.order.pop_first() else {
                    break;
                };
                l.stamps.remove(&k);
                evicted.push((k, e));
            }
            (old, evicted)
        };
        // Dropped here, outside the lock: a node's last reference closes it.
        for (k, e) in evicted.1 {
            if let (Key::Missing(_, name), Entry::Missing(dir)) = (k, e)
                && let Some(d) = dir.upgrade()
            {
                d.missing.lock().remove(&name);
            }
        }
    }

    /// Marks `n` as just used.
    fn touch(&self, n: &Arc<GoferInode>) {
        self.put(Key::Node(n.node.0), Entry::Node(n.clone()));
    }

    /// How many entries are held (nodes and missing names).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lru.lock().order.len()
    }
}

/// A node of the served tree.
#[derive(Debug)]
pub struct GoferInode {
    fs: Arc<GoferFs>,
    me: Weak<GoferInode>,
    node: NodeId,
    /// The attributes, shared with the open files (writes grow the size).
    stat: Arc<Mutex<Stat>>,
    /// Children looked up; the mount's cache decides how long they live.
    children: Mutex<HashMap<Vec<u8>, Weak<GoferInode>>>,
    missing: Mutex<HashSet<Vec<u8>>>,
    listing: Mutex<Option<Vec<DirEntry>>>,
    target: Mutex<Option<Vec<u8>>>,
    /// Regular files: the read-only handle every read-only open shares, opened by the
    /// first, with the host descriptor the Gofer donated for it (reads, `fstat` and
    /// page faults then need no message). Closed with the node.
    read_only: Mutex<Option<Arc<HostFile>>>,
    /// Regular files: the pages of `MAP_SHARED` mappings, shared with the open files
    /// (empty until the file is mapped so).
    pages: Arc<PageCache>,
    /// The mount's cache (held strongly by the root only).
    cache: Weak<NodeCache>,
    /// The root's strong reference to the cache.
    _cache_owner: Option<Arc<NodeCache>>,
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

/// Takes the attributes a host file's metadata gives into `st` (the device stays the
/// mount's).
fn host_attrs(st: &mut Stat, m: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    st.st_ino = m.ino();
    st.st_nlink = m.nlink();
    st.st_mode = m.mode();
    st.st_uid = m.uid();
    st.st_gid = m.gid();
    st.st_rdev = m.rdev();
    st.st_size = m.size() as i64;
    st.st_blksize = m.blksize().max(512) as i64;
    st.st_blocks = m.blocks() as i64;
    let ts = |sec: i64, nsec: i64| Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    st.st_atime = ts(m.atime(), m.atime_nsec());
    st.st_mtime = ts(m.mtime(), m.mtime_nsec());
    st.st_ctime = ts(m.ctime(), m.ctime_nsec());
}

/// Connects to the Gofer on `sock`, mounts its root and returns the root inode; the
/// mount's caches follow `revalidate`.
/// Page caches of mapped files live in `mf`.
pub fn new_gofer_root(
    sock: OwnedFd,
    revalidate: Revalidate,
    mf: Arc<platform::MemoryFile>,
) -> Result<Arc<GoferInode>, Errno> {
    new_gofer_root_with(sock, revalidate, CACHE_LIMIT, mf)
}

/// [`new_gofer_root`] with a cache of `limit` entries.
pub(crate) fn new_gofer_root_with(
    sock: OwnedFd,
    revalidate: Revalidate,
    limit: usize,
    mf: Arc<platform::MemoryFile>,
) -> Result<Arc<GoferInode>, Errno> {
    let client = Client::new(sock).map_err(errno)?;
    let m = client.mount(b"").map_err(errno)?;
    let fs = Arc::new(GoferFs {
        client,
        dev: super::new_dev(),
        pending_close: Mutex::new((Vec::new(), Vec::new())),
        revalidate,
        mf,
    });
    let cache = NodeCache::new(limit);
    Ok(GoferInode::new(
        &fs,
        m.root.id,
        &m.root.stat,
        Arc::downgrade(&cache),
        Some(cache),
    ))
}

impl GoferInode {
    fn new(
        fs: &Arc<GoferFs>,
        node: NodeId,
        st: &lisafs_proto::Stat,
        cache: Weak<NodeCache>,
        _cache_owner: Option<Arc<NodeCache>>,
    ) -> Arc<GoferInode> {
        Arc::new_cyclic(|me| GoferInode {
            fs: fs.clone(),
            me: me.clone(),
            node,
            stat: Arc::new(Mutex::new(to_stat(fs.dev, st))),
            children: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashSet::new()),
            listing: Mutex::new(None),
            target: Mutex::new(None),
            read_only: Mutex::new(None),
            pages: Arc::new(PageCache::new(fs.mf.clone())),
            cache,
            _cache_owner,
        })
    }

    /// A child node of this directory (not yet remembered).
    fn child(&self, n: &lisafs_proto::Inode) -> Arc<GoferInode> {
        GoferInode::new(&self.fs, n.id, &n.stat, self.cache.clone(), None)
    }

    fn is_dir(&self) -> bool {
        FileType::from_mode(self.mode()) == FileType::Directory
    }

    fn mode(&self) -> u32 {
        self.stat.lock().st_mode
    }

    /// Marks `n` as just used in the mount's cache.
    fn touch(&self, n: &Arc<GoferInode>) {
        if let Some(c) = self.cache.upgrade() {
            c.touch(n);
        }
    }

    /// Remembers `name` as a child of this directory and marks it used.
    fn remember(&self, name: &[u8], child: &Arc<GoferInode>) {
        {
            let mut c = self.children.lock();
            if c.len() % 64 == 63 {
                c.retain(|_, e| e.strong_count() > 0);
            }
            c.insert(name.to_vec(), Arc::downgrade(child));
        }
        self.touch(child);
    }

    /// Remembers `name` as missing (only where nothing outside changes the tree).
    fn remember_missing(&self, name: &[u8]) {
        if self.fs.revalidate != Revalidate::Never {
            return;
        }
        let Some(c) = self.cache.upgrade() else {
            return;
        };
        self.missing.lock().insert(name.to_vec());
        c.put(
            Key::Missing(self.node.0, name.to_vec()),
            Entry::Missing(self.me.clone()),
        );
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

    /// For [`Revalidate::OnAccess`]: whether `name` still leads to the file `c` (same
    /// inode and type on the host), refreshing its attributes if so. `ENOENT` when the
    /// name is gone.
    fn still_there(&self, name: &[u8], c: &GoferInode) -> Result<bool, Errno> {
        let r = self
            .fs
            .client
            .walk_stat(self.node, &[name])
            .map_err(errno)?;
        let Some(st) = r.stats.first() else {
            self.changed(name);
            return Err(Errno::ENOENT);
        };
        let mut cur = c.stat.lock();
        let same = cur.st_ino == st.ino
            && cur.st_mode & linux_abi::flags::mode::S_IFMT
                == st.mode & linux_abi::flags::mode::S_IFMT;
        if same {
            *cur = to_stat(self.fs.dev, st);
        }
        Ok(same)
    }

    /// A child just made by the Gofer, remembered as found.
    fn adopt(&self, name: &[u8], n: &lisafs_proto::Inode) -> Arc<GoferInode> {
        self.changed(name);
        let child = self.child(n);
        self.remember(name, &child);
        child
    }

    /// A new open handle of this node on the Gofer, with `flags`.
    fn open_host(&self, flags: u32, batched: bool) -> Result<HostFile, Errno> {
        let opened = self.fs.client.open_at(self.node, flags).map_err(errno)?;
        Ok(HostFile {
            fs: self.fs.clone(),
            handle: opened.handle,
            file: opened.fd.map(File::from),
            batched,
        })
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
        self.fs.release(Some(self.node), None);
    }
}

impl Inode for GoferInode {
    fn stat(&self) -> Result<Stat, Errno> {
        if self.fs.revalidate == Revalidate::OnAccess {
            // The host may change a shared file at any time, and `fstat` of an open file
            // walks no name that would revalidate it: the donated descriptor of the
            // node's read handle says how the file is now, without a message.
            let io = self.read_only.lock().clone();
            if let Some(m) = io.as_ref().and_then(|io| io.file.as_ref()?.metadata().ok()) {
                let mut st = self.stat.lock();
                host_attrs(&mut st, &m);
            }
        }
        Ok(*self.stat.lock())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if !self.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let hit = self.children.lock().get(name).and_then(Weak::upgrade);
        if let Some(c) = hit {
            if self.fs.revalidate == Revalidate::Never || self.still_there(name, &c)? {
                self.touch(&c);
                return Ok(c);
            }
            // Another file now has that name.
            self.changed(name);
        } else if self.missing.lock().contains(name) {
            return Err(Errno::ENOENT);
        }
        let r = self.fs.client.walk(self.node, &[name]).map_err(errno)?;
        let Some(n) = r.nodes.first() else {
            if r.status == WalkStatus::NotFound {
                self.remember_missing(name);
            }
            return Err(Errno::ENOENT);
        };
        // Close any extra nodes a misbehaving server returned.
        if r.nodes.len() > 1 {
            let extra: Vec<NodeId> = r.nodes[1..].iter().map(|n| n.id).collect();
            let _ = self.fs.client.close(&extra, &[]);
        }
        let child = self.child(n);
        self.remember(name, &child);
        Ok(child)
    }

    fn prefetch(&self, names: &[&[u8]]) {
        // Under revalidation every step asks the Gofer anyway.
        if self.fs.revalidate != Revalidate::Never {
            return;
        }
        let Some(mut dir) = self.me.upgrade() else {
            return;
        };
        // Down what is known already.
        let mut rest = names;
        while let Some((first, tail)) = rest.split_first() {
            if !dir.is_dir() || dir.missing.lock().contains(*first) {
                return;
            }
            let hit = dir.children.lock().get(*first).and_then(Weak::upgrade);
            match hit {
                Some(c) => {
                    dir = c;
                    rest = tail;
                }
                None => break,
            }
        }
        if rest.len() < 2 || !dir.is_dir() {
            return;
        }
        // The rest in one Walk; it stops at a symlink or a missing name. A failure only
        // leaves the walk to look the names up one by one.
        let Ok(r) = dir.fs.client.walk(dir.node, rest) else {
            return;
        };
        if r.nodes.len() > rest.len() {
            let extra: Vec<NodeId> = r.nodes[rest.len()..].iter().map(|n| n.id).collect();
            let _ = dir.fs.client.close(&extra, &[]);
        }
        for (name, n) in rest.iter().zip(&r.nodes) {
            let child = dir.child(n);
            dir.remember(name, &child);
            dir = child;
        }
        if r.status == WalkStatus::NotFound
            && let Some(name) = rest.get(r.nodes.len())
        {
            dir.remember_missing(name);
        }
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
        if self.fs.revalidate == Revalidate::Never {
            *self.listing.lock() = Some(out.clone());
        }
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
        let shared = host_flags & (O_ACCMODE | O_TRUNC) == O_RDONLY;
        let io = match shared {
            true => {
                let mut ro = self.read_only.lock();
                match ro.as_ref() {
                    Some(io) => {
                        // No message goes to the Gofer: ask the socket whether it is still
                        // there, so that a dead Gofer gives EIO on open, as uncached
                        // opens do, rather than a sandbox that never notices.
                        self.fs.client.check_connected().map_err(errno)?;
                        io.clone()
                    }
                    None => {
                        let io = Arc::new(self.open_host(O_RDONLY, true)?);
                        *ro = Some(io.clone());
                        io
                    }
                }
            }
            false => Arc::new(self.open_host(host_flags, false)?),
        };
        if flags & O_TRUNC != 0 {
            self.refresh()?;
        }
        Ok(Arc::new(GoferFile {
            io,
            pages: self.pages.clone(),
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
        self.remember_missing(name);
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
        if let Some(size) = attr.size {
            self.pages.truncate(size)?;
        }
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

    fn cacheable(&self) -> bool {
        // Under revalidation every walk step comes here, to ask the Gofer.
        self.fs.revalidate == Revalidate::Never
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open Gofer file.
#[derive(Debug)]
pub struct GoferFile {
    /// The Gofer's handle and donated descriptor: the node's shared one for read-only
    /// opens, one of its own otherwise.
    io: Arc<HostFile>,
    /// The inode's page cache: `read` and `write` go through it while the file is
    /// mapped `MAP_SHARED`.
    pages: Arc<PageCache>,
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

impl GoferFile {
    /// Reads from the host file: its donated descriptor, or a `PRead` message.
    fn read_host(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if let Some(f) = &self.io.file {
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
            .io
            .fs
            .client
            .pread(self.io.handle, off, count)
            .map_err(errno)?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    /// Writes to the host file: its donated descriptor, or a `PWrite` message.
    fn write_host(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        match &self.io.file {
            Some(f) => loop {
                match f.write_at(buf, off) {
                    Ok(n) => break Ok(n),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e.into()),
                }
            },
            None => Ok(self
                .io
                .fs
                .client
                .pwrite(self.io.handle, off, buf)
                .map_err(errno)? as usize),
        }
    }

    fn size(&self) -> u64 {
        self.stat.lock().st_size.max(0) as u64
    }
}

impl FileOps for GoferFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        if self.pages.is_empty() {
            return self.read_host(buf, off);
        }
        self.pages
            .read(buf, off, self.size(), |b, o| self.read_host(b, o))
    }

    fn write_at(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let append = self.append.load(std::sync::atomic::Ordering::Relaxed);
        let off = if append && !self.host_append {
            self.io.fs.client.fstat(self.node).map_err(errno)?.size
        } else {
            off
        };
        let n = self.write_host(buf, off)?;
        if n > 0 && !self.pages.is_empty() {
            // Where the data landed: the host's end for an appending descriptor.
            let at = if self.host_append {
                self.io
                    .fs
                    .client
                    .fstat(self.node)
                    .map_err(errno)?
                    .size
                    .saturating_sub(n as u64)
            } else {
                off
            };
            self.pages.wrote(&buf[..n], at)?;
        }
        if n > 0 && append {
            // The host put the data at its end, wherever that was.
            if let Ok(st) = self.io.fs.client.fstat(self.node) {
                *self.stat.lock() = to_stat(self.io.fs.dev, &st);
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

    fn shared_page(&self, off: u64) -> Option<Result<Arc<Frame>, Errno>> {
        Some(self.pages.page(off / PAGE, |b, o| self.read_host(b, o)))
    }

    fn writeback_shared(&self, off: u64, len: u64) -> Result<(), Errno> {
        self.pages
            .flush(off, len, self.size(), |b, o| self.write_host(b, o))
    }

    fn fsync(&self) -> Result<(), Errno> {
        // Writes through shared mappings first, as Linux's fsync writes dirty pages.
        if !self.pages.is_empty() {
            self.writeback_shared(0, u64::MAX)?;
        }
        self.io
            .fs
            .client
            .fsync(self.io.handle, false)
            .map_err(errno)
    }

    fn set_status_flags(&self, flags: u32) -> Result<(), Errno> {
        // The host descriptor keeps the `O_APPEND` it was opened with; appends turned on
        // later go where the host says the end is just before the write.
        self.append
            .store(flags & O_APPEND != 0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn host_fd(&self) -> Option<std::os::fd::RawFd> {
        self.io.file.as_ref().map(AsRawFd::as_raw_fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{FsCred, NewNode};
    use std::path::Path;

    type Server = std::thread::JoinHandle<Result<(), ::gofer::GoferError>>;

    /// A Gofer serving `dir` in a thread, and the root of its mount.
    fn mount(
        dir: &Path,
        revalidate: Revalidate,
        limit: usize,
        read_only: bool,
    ) -> (Arc<GoferInode>, Server) {
        let (client, server) = lisafs_proto::socketpair().unwrap();
        let host = dir.to_path_buf();
        let srv = std::thread::spawn(move || {
            ::gofer::serve(
                &host,
                server,
                ::gofer::GoferOptions {
                    read_only,
                    confine: false,
                    threads: 1,
                },
            )
        });
        (
            new_gofer_root_with(client, revalidate, limit, test_mf()).unwrap(),
            srv,
        )
    }

    fn test_mf() -> Arc<platform::MemoryFile> {
        Arc::new(platform::MemoryFile::new("gofer-test", 16 << 20).unwrap())
    }

    fn cached(dir: &GoferInode, name: &str) -> bool {
        dir.children
            .lock()
            .get(name.as_bytes())
            .is_some_and(|w| w.strong_count() > 0)
    }

    fn ino(i: &Arc<dyn Inode>) -> u64 {
        i.stat().unwrap().st_ino
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..40 {
            std::fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
        }
        let (root, srv) = mount(dir.path(), Revalidate::Never, 8, true);
        for i in 0..40 {
            root.lookup(format!("f{i}").as_bytes()).unwrap();
            // f0 is used again and again, so it stays.
            root.lookup(b"f0").unwrap();
        }
        let cache = root._cache_owner.clone().unwrap();
        assert!(cache.len() <= 8, "{} entries", cache.len());
        assert!(cached(&root, "f0") && cached(&root, "f39"));
        assert!(!cached(&root, "f1") && !cached(&root, "f20"));
        // An evicted name is walked again and found.
        assert_eq!(root.lookup(b"f1").unwrap().stat().unwrap().st_size, 1);
        drop((root, cache));
        srv.join().unwrap().unwrap();
    }

    #[test]
    fn missing_names_are_remembered_bounded_and_forgotten_by_a_create() {
        let dir = tempfile::tempdir().unwrap();
        let (root, srv) = mount(dir.path(), Revalidate::Never, 8, false);
        assert_eq!(root.lookup(b"late").err(), Some(Errno::ENOENT));
        // Under `Never` the miss is remembered: a file the host makes behind the
        // sandbox's back is not looked for again.
        std::fs::write(dir.path().join("late"), b"host").unwrap();
        assert_eq!(root.lookup(b"late").err(), Some(Errno::ENOENT));
        // A create through the mount forgets the miss.
        root.create(b"made", NewNode::File { mode: 0o644 }, &FsCred::root())
            .unwrap();
        assert_eq!(
            root.lookup(b"made").unwrap().stat().unwrap().st_mode & 0o777,
            0o644
        );
        assert_eq!(root.lookup(b"nothere").err(), Some(Errno::ENOENT));
        assert!(root.missing.lock().contains(&b"nothere"[..]));
        root.create(b"nothere", NewNode::Dir { mode: 0o755 }, &FsCred::root())
            .unwrap();
        assert!(crate::fs::is_dir(root.lookup(b"nothere").unwrap().as_ref()));
        // Many misses stay within the bound.
        for i in 0..50 {
            assert_eq!(
                root.lookup(format!("no{i}").as_bytes()).err(),
                Some(Errno::ENOENT)
            );
        }
        let cache = root._cache_owner.clone().unwrap();
        assert!(cache.len() <= 8, "{} entries", cache.len());
        assert!(root.missing.lock().len() <= 8);
        // An unlink remembers the name as missing, a rename both names.
        root.unlink(b"made", false).unwrap();
        assert_eq!(root.lookup(b"made").err(), Some(Errno::ENOENT));
        // The early miss was evicted: the host's file is found now.
        assert_eq!(root.lookup(b"late").unwrap().stat().unwrap().st_size, 4);
        let me: Arc<dyn Inode> = root.clone();
        root.create(b"a", NewNode::File { mode: 0o600 }, &FsCred::root())
            .unwrap();
        let a = ino(&root.lookup(b"a").unwrap());
        root.rename(b"a", &me, b"b", 0).unwrap();
        assert_eq!(root.lookup(b"a").err(), Some(Errno::ENOENT));
        assert_eq!(ino(&root.lookup(b"b").unwrap()), a);
        drop((root, me, cache));
        srv.join().unwrap().unwrap();
    }

    #[test]
    fn read_only_opens_share_the_nodes_donated_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"first").unwrap();
        let (root, srv) = mount(dir.path(), Revalidate::OnAccess, 64, false);
        let f = root.lookup(b"f").unwrap();
        let a = f.open(O_RDONLY).unwrap();
        let b = f.open(O_RDONLY).unwrap();
        let fd = a.host_fd().expect("a donated descriptor");
        assert_eq!(b.host_fd(), Some(fd), "one handle per node for reading");
        drop((a, b));
        // Kept with the node after the last close: the next open sends no message.
        let c = f.open(O_RDONLY).unwrap();
        assert_eq!(c.host_fd(), Some(fd));
        // Writers get their own, and readers see what they wrote.
        let w = f.open(O_WRONLY).unwrap();
        assert_ne!(w.host_fd(), Some(fd));
        assert_eq!(w.write_at(b"SECOND", 0).unwrap(), 6);
        let mut buf = [0u8; 16];
        assert_eq!(c.read_at(&mut buf, 0).unwrap(), 6);
        assert_eq!(&buf[..6], b"SECOND");
        // So does a change the host makes in place.
        std::fs::write(dir.path().join("f"), b"host").unwrap();
        assert_eq!(c.read_at(&mut buf, 0).unwrap(), 4);
        assert_eq!(&buf[..4], b"host");
        drop((c, w, f, root));
        srv.join().unwrap().unwrap();
    }

    #[test]
    fn a_cached_read_only_open_fails_with_eio_once_the_gofer_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"data").unwrap();
        let (client, server) = lisafs_proto::socketpair().unwrap();
        let gofer_end = server.try_clone().unwrap();
        let host = dir.path().to_path_buf();
        let srv = std::thread::spawn(move || {
            let opts = ::gofer::GoferOptions {
                read_only: false,
                confine: false,
                threads: 1,
            };
            ::gofer::serve(&host, server, opts)
        });
        let root = new_gofer_root_with(client, Revalidate::Never, 64, test_mf()).unwrap();
        let f = root.lookup(b"f").unwrap();
        drop(f.open(O_RDONLY).unwrap());
        // The Gofer goes away as a killed one would: its socket is shut down.
        // std shuts a socket of any type down through UnixStream.
        std::os::unix::net::UnixStream::from(gofer_end)
            .shutdown(std::net::Shutdown::Both)
            .unwrap();
        let _ = srv.join().unwrap();
        // The node and its read handle are still cached: no message would be sent.
        assert_eq!(f.open(O_RDONLY).err(), Some(Errno::EIO));
        assert_eq!(root.lookup(b"g").err(), Some(Errno::EIO));
    }

    #[test]
    fn a_prefetch_walks_many_names_in_one_message_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        std::fs::write(dir.path().join("a/b/c/f"), b"deep").unwrap();
        std::os::unix::fs::symlink("c", dir.path().join("a/b/l")).unwrap();
        let (root, srv) = mount(dir.path(), Revalidate::Never, 64, true);
        {
            let names: [&[u8]; 5] = [b"a", b"b", b"c", b"nothere", b"x"];
            root.prefetch(&names);
            // Everything up to the missing name is known, and the miss is remembered.
            assert!(cached(&root, "a"));
            let a = root.lookup(b"a").unwrap();
            let a = a.as_any().downcast_ref::<GoferInode>().unwrap();
            assert!(cached(a, "b"));
            let b = a.lookup(b"b").unwrap();
            let b = b.as_any().downcast_ref::<GoferInode>().unwrap();
            assert!(cached(b, "c"));
            let c = b.lookup(b"c").unwrap();
            let c = c.as_any().downcast_ref::<GoferInode>().unwrap();
            assert!(c.missing.lock().contains(&b"nothere"[..]));
            assert_eq!(c.lookup(b"f").unwrap().stat().unwrap().st_size, 4);
            // A walk stops at a symlink, which is kept, not followed.
            root.prefetch(&[b"a", b"b", b"l", b"f"]);
            assert!(cached(b, "l"));
            let l = b.lookup(b"l").unwrap();
            assert_eq!(l.readlink(&Caller::KERNEL).unwrap(), b"c");
            // A name the Gofer refuses fails the Walk, which changes nothing.
            root.prefetch(&[b"a", b"b", b"c", b"..", b"f"]);
            assert!(cached(&root, "a") && cached(b, "c"));
        }
        drop(root);
        srv.join().unwrap().unwrap();
    }

    #[test]
    fn a_revalidating_mount_sees_host_changes() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path();
        std::fs::write(h.join("f"), b"one").unwrap();
        std::fs::write(h.join("other"), b"other file").unwrap();
        let (root, srv) = mount(h, Revalidate::OnAccess, 64, true);
        assert!(!root.cacheable(), "every walk step must reach the mount");
        let f = root.lookup(b"f").unwrap();
        assert_eq!(f.stat().unwrap().st_size, 3);
        // Changed in place: same inode, new attributes.
        std::fs::write(h.join("f"), b"longer").unwrap();
        let again = root.lookup(b"f").unwrap();
        assert!(crate::fs::same_inode(&f, &again));
        assert_eq!(again.stat().unwrap().st_size, 6);
        // Replaced: another file under the name.
        std::fs::rename(h.join("other"), h.join("f")).unwrap();
        let replaced = root.lookup(b"f").unwrap();
        assert_eq!(replaced.stat().unwrap().st_size, 10);
        assert_ne!(ino(&replaced), ino(&f));
        // Removed, then made again: no miss is remembered.
        std::fs::remove_file(h.join("f")).unwrap();
        assert_eq!(root.lookup(b"f").err(), Some(Errno::ENOENT));
        std::fs::write(h.join("f"), b"back").unwrap();
        assert_eq!(root.lookup(b"f").unwrap().stat().unwrap().st_size, 4);
        // Listings are read again.
        std::fs::write(h.join("new"), b"").unwrap();
        let names: Vec<Vec<u8>> = root
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&b"new".to_vec()), "{names:?}");
        std::fs::remove_file(h.join("new")).unwrap();
        let names: Vec<Vec<u8>> = root
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(!names.contains(&b"new".to_vec()), "{names:?}");
        drop((root, f, again, replaced));
        srv.join().unwrap().unwrap();
    }
}
