//! tmpfs: an in-memory filesystem whose file data lives in the platform `MemoryFile`.
//!
//! Each regular file keeps a sparse map from page index to a page of the memory file
//! (allocated with `MemoryFile::allocate` on first write, freed on truncate and when the
//! file goes away), so `mm` can map those very pages `MAP_SHARED`
//! ([`FileOps::page_offset`]). Directories hold `Arc<dyn Inode>` children, which lets
//! devfs put device inodes of its own into a tmpfs tree ([`TmpInode::add_child`]).

use parking_lot::Mutex;
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use crate::mm::Frame;
use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::types::{Stat, Timespec};
use platform::MemoryFile;

use super::vfs::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use super::{
    Caller, DirEntry, FileOps, FileType, FsCred, FsStat, Inode, NewNode, SetAttr, magic, new_ino,
    now,
};

const PAGE: u64 = 4096;

/// One tmpfs instance.
#[derive(Debug)]
pub struct Tmpfs {
    dev: u64,
    mf: Arc<MemoryFile>,
    rename_lock: Mutex<()>,
}

impl Tmpfs {
    /// A new, empty tmpfs storing data in `mf`; returns its root directory.
    pub fn new_root(mf: Arc<MemoryFile>, mode: u32, uid: u32, gid: u32) -> Arc<TmpInode> {
        let fs = Arc::new(Tmpfs {
            dev: super::new_dev(),
            mf,
            rename_lock: Mutex::new(()),
        });
        TmpInode::new(
            &fs,
            S_IFDIR | (mode & 0o7777),
            uid,
            gid,
            Body::Dir(Mutex::new(BTreeMap::new())),
            0,
        )
    }
}

#[derive(Debug)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

#[derive(Debug, Default)]
struct Data {
    size: u64,
    pages: BTreeMap<u64, Arc<Frame>>,
}

/// A directory's children.
type Children = Mutex<BTreeMap<Vec<u8>, Arc<dyn Inode>>>;

#[derive(Debug)]
enum Body {
    File(Mutex<Data>),
    Dir(Children),
    Symlink(Vec<u8>),
    /// A device node, socket or FIFO; a FIFO's pipe lives here while it is open.
    Node(super::pipe::Fifo),
}

/// A tmpfs file, directory, symlink or device node.
#[derive(Debug)]
pub struct TmpInode {
    me: Weak<TmpInode>,
    fs: Arc<Tmpfs>,
    ino: u64,
    rdev: u64,
    meta: Mutex<Meta>,
    body: Body,
    xattrs: super::xattr::XattrStore,
}

impl TmpInode {
    fn new(fs: &Arc<Tmpfs>, mode: u32, uid: u32, gid: u32, body: Body, rdev: u64) -> Arc<TmpInode> {
        let t = now();
        Arc::new_cyclic(|me| TmpInode {
            me: me.clone(),
            fs: fs.clone(),
            ino: new_ino(),
            rdev,
            meta: Mutex::new(Meta {
                mode,
                uid,
                gid,
                nlink: 1,
                atime: t,
                mtime: t,
                ctime: t,
            }),
            body,
            xattrs: Default::default(),
        })
    }

    fn dir(&self) -> Result<&Children, Errno> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn touch(&self, mtime: bool) {
        let t = now();
        let mut m = self.meta.lock();
        if mtime {
            m.mtime = t;
        }
        m.ctime = t;
    }

    /// Adds a foreign inode (a device) as `name` in this directory.
    pub fn add_child(&self, name: &[u8], inode: Arc<dyn Inode>) -> Result<(), Errno> {
        let mut d = self.dir()?.lock();
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        d.insert(name.to_vec(), inode);
        Ok(())
    }

    /// Creates `name` directly (no permission checks), for building trees at start.
    pub fn mkdir_p(&self, name: &[u8], mode: u32) -> Result<Arc<dyn Inode>, Errno> {
        if let Ok(i) = self.lookup(name) {
            return Ok(i);
        }
        self.create(name, NewNode::Dir { mode }, &FsCred::root())
    }

    /// Type and inode number of a child without computing its full attributes (a tmpfs
    /// directory's `stat` counts its subdirectories).
    fn entry_of(i: &Arc<dyn Inode>) -> (FileType, u64) {
        match i.as_any().downcast_ref::<TmpInode>() {
            Some(t) => {
                let kind = match &t.body {
                    Body::File(_) => FileType::Regular,
                    Body::Dir(_) => FileType::Directory,
                    Body::Symlink(_) => FileType::Symlink,
                    Body::Node(_) => FileType::from_mode(t.meta.lock().mode),
                };
                (kind, t.ino)
            }
            None => {
                let st = i.stat().unwrap_or_default();
                (FileType::from_mode(st.st_mode), st.st_ino)
            }
        }
    }

    fn child_is_dir(i: &Arc<dyn Inode>) -> bool {
        Self::entry_of(i).0 == FileType::Directory
    }

    /// Whether a directory child has no entries.
    fn child_is_empty(i: &Arc<dyn Inode>) -> Result<bool, Errno> {
        match i.as_any().downcast_ref::<TmpInode>() {
            Some(t) => Ok(t.dir()?.lock().is_empty()),
            None => Ok(i.readdir()?.is_empty()),
        }
    }

    fn adjust_nlink(inode: &Arc<dyn Inode>, delta: i64) {
        if let Some(t) = inode.as_any().downcast_ref::<TmpInode>() {
            let mut m = t.meta.lock();
            m.nlink = m.nlink.saturating_add_signed(delta);
            m.ctime = now();
        }
    }

    fn data(&self) -> Result<&Mutex<Data>, Errno> {
        match &self.body {
            Body::File(d) => Ok(d),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn truncate(&self, d: &mut Data, size: u64) -> Result<(), Errno> {
        if size < d.size {
            let first_gone = size.div_ceil(PAGE);
            // A page still mapped somewhere stays that mapping's until it is unmapped;
            // the file lets go of it here.
            drop(d.pages.split_off(&first_gone));
            if !size.is_multiple_of(PAGE)
                && let Some(f) = d.pages.get(&(size / PAGE))
            {
                self.fs
                    .mf
                    .zero(f.offset() + size % PAGE, PAGE - size % PAGE)?;
            }
        }
        d.size = size;
        Ok(())
    }

    fn page(&self, d: &mut Data, idx: u64) -> Result<Arc<Frame>, Errno> {
        if let Some(f) = d.pages.get(&idx) {
            return Ok(f.clone());
        }
        let f = Frame::alloc(&self.fs.mf)?;
        d.pages.insert(idx, f.clone());
        Ok(f)
    }

    fn read_data(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let d = self.data()?.lock();
        if off >= d.size {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(d.size - off) as usize;
        let mut done = 0usize;
        while done < n {
            let pos = off + done as u64;
            let in_page = (pos % PAGE) as usize;
            let chunk = (PAGE as usize - in_page).min(n - done);
            match d.pages.get(&(pos / PAGE)) {
                Some(f) => self
                    .fs
                    .mf
                    .read_at(f.offset() + in_page as u64, &mut buf[done..done + chunk])?,
                None => buf[done..done + chunk].fill(0),
            }
            done += chunk;
        }
        Ok(n)
    }

    fn write_data(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        let mut d = self.data()?.lock();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = off + done as u64;
            let in_page = (pos % PAGE) as usize;
            let chunk = (PAGE as usize - in_page).min(buf.len() - done);
            let po = match self.page(&mut d, pos / PAGE) {
                Ok(p) => p.offset(),
                Err(e) if done == 0 => return Err(e),
                // Out of memory: what was written stays, and the writer is killed (the
                // error reaches the task loop, never the application).
                Err(e) if e == crate::mm::EOOM => {
                    let end = off + done as u64;
                    d.size = d.size.max(end);
                    drop(d);
                    self.touch(true);
                    return Err(e);
                }
                Err(_) => break,
            };
            self.fs
                .mf
                .write_at(po + in_page as u64, &buf[done..done + chunk])?;
            done += chunk;
        }
        let end = off + done as u64;
        if end > d.size {
            d.size = end;
        }
        drop(d);
        self.touch(true);
        Ok(done)
    }
}

impl Inode for TmpInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let m = self.meta.lock();
        let (size, nlink, blocks) = match &self.body {
            Body::File(d) => {
                let d = d.lock();
                (d.size, m.nlink, d.pages.len() as u64 * 8)
            }
            Body::Dir(c) => {
                let c = c.lock();
                let subdirs = c.values().filter(|i| Self::child_is_dir(i)).count() as u64;
                (4096, 2 + subdirs, 8)
            }
            Body::Symlink(t) => (t.len() as u64, m.nlink, 0),
            Body::Node(_) => (0, m.nlink, 0),
        };
        Ok(Stat {
            st_dev: self.fs.dev,
            st_ino: self.ino,
            st_nlink: nlink,
            st_mode: m.mode,
            st_uid: m.uid,
            st_gid: m.gid,
            st_rdev: self.rdev,
            st_size: size as i64,
            st_blksize: 4096,
            st_blocks: blocks as i64,
            st_atime: m.atime,
            st_mtime: m.mtime,
            st_ctime: m.ctime,
            ..Stat::default()
        })
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        self.dir()?.lock().get(name).cloned().ok_or(Errno::ENOENT)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let d = self.dir()?.lock();
        Ok(d.iter()
            .map(|(n, i)| {
                let (kind, ino) = Self::entry_of(i);
                DirEntry {
                    name: n.clone(),
                    ino,
                    kind,
                }
            })
            .collect())
    }

    fn create(&self, name: &[u8], node: NewNode, cred: &FsCred) -> Result<Arc<dyn Inode>, Errno> {
        let mut d = self.dir()?.lock();
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let (mode, body, rdev) = match node {
            NewNode::File { mode } => (S_IFREG | mode, Body::File(Mutex::new(Data::default())), 0),
            NewNode::Dir { mode } => (S_IFDIR | mode, Body::Dir(Mutex::new(BTreeMap::new())), 0),
            NewNode::Symlink { target } => (S_IFLNK | 0o777, Body::Symlink(target), 0),
            NewNode::Node { mode, rdev } => (mode, Body::Node(Default::default()), rdev),
        };
        let inode: Arc<dyn Inode> = TmpInode::new(&self.fs, mode, cred.uid, cred.gid, body, rdev);
        d.insert(name.to_vec(), inode.clone());
        drop(d);
        self.touch(true);
        Ok(inode)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        match target.as_any().downcast_ref::<TmpInode>() {
            Some(t) if Arc::ptr_eq(&t.fs, &self.fs) => {}
            _ => return Err(Errno::EXDEV),
        }
        let mut d = self.dir()?.lock();
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        d.insert(name.to_vec(), target.clone());
        drop(d);
        Self::adjust_nlink(target, 1);
        self.touch(true);
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let mut d = self.dir()?.lock();
        let victim = d.get(name).cloned().ok_or(Errno::ENOENT)?;
        let vdir = Self::child_is_dir(&victim);
        if dir != vdir {
            return Err(if dir { Errno::ENOTDIR } else { Errno::EISDIR });
        }
        if vdir && !Self::child_is_empty(&victim)? {
            return Err(Errno::ENOTEMPTY);
        }
        d.remove(name);
        drop(d);
        Self::adjust_nlink(&victim, -1);
        self.touch(true);
        Ok(())
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let nd = match new_dir.as_any().downcast_ref::<TmpInode>() {
            Some(t) if Arc::ptr_eq(&t.fs, &self.fs) => t,
            _ => return Err(Errno::EXDEV),
        };
        let _g = self.fs.rename_lock.lock();
        let src = self.lookup(old)?;
        let dst = nd.lookup(new).ok();
        if flags & RENAME_EXCHANGE != 0 {
            let dst = dst.ok_or(Errno::ENOENT)?;
            self.dir()?.lock().insert(old.to_vec(), dst);
            nd.dir()?.lock().insert(new.to_vec(), src);
        } else {
            if let Some(dst) = &dst {
                if flags & RENAME_NOREPLACE != 0 {
                    return Err(Errno::EEXIST);
                }
                let (sd, dd) = (Self::child_is_dir(&src), Self::child_is_dir(dst));
                if sd && !dd {
                    return Err(Errno::ENOTDIR);
                }
                if !sd && dd {
                    return Err(Errno::EISDIR);
                }
                if dd && !Self::child_is_empty(dst)? {
                    return Err(Errno::ENOTEMPTY);
                }
                Self::adjust_nlink(dst, -1);
            }
            self.dir()?.lock().remove(old);
            nd.dir()?.lock().insert(new.to_vec(), src);
        }
        self.touch(true);
        nd.touch(true);
        Ok(())
    }

    fn readlink(&self, _caller: &Caller) -> Result<Vec<u8>, Errno> {
        match &self.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn setattr(&self, a: &SetAttr) -> Result<(), Errno> {
        if let Some(size) = a.size {
            let data = self.data()?;
            let mut d = data.lock();
            self.truncate(&mut d, size)?;
            drop(d);
            self.touch(true);
        }
        let mut m = self.meta.lock();
        if let Some(mode) = a.mode {
            m.mode = (m.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(u) = a.uid {
            m.uid = u;
        }
        if let Some(g) = a.gid {
            m.gid = g;
        }
        if let Some(t) = a.atime {
            m.atime = t;
        }
        if let Some(t) = a.mtime {
            m.mtime = t;
        }
        m.ctime = now();
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.xattrs.get(name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        self.xattrs.set(name, value, flags)?;
        self.touch(false);
        Ok(())
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(self.xattrs.list())
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        self.xattrs.remove(name)?;
        self.touch(false);
        Ok(())
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        match &self.body {
            Body::File(_) => {
                let me = self.me.upgrade().ok_or(Errno::ENOENT)?;
                Ok(Arc::new(TmpFile { inode: me }))
            }
            Body::Node(fifo) => {
                let m = self.meta.lock().mode & S_IFMT;
                if m == S_IFIFO {
                    // A named FIFO: every opener shares the inode's pipe buffer.
                    fifo.open(flags)
                } else {
                    Err(Errno::ENXIO)
                }
            }
            _ => Ok(Arc::new(super::NoIo)),
        }
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(magic::TMPFS))
    }

    fn not_writable(&self) -> Errno {
        Errno::EPERM
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open tmpfs regular file.
#[derive(Debug)]
pub struct TmpFile {
    inode: Arc<TmpInode>,
}

impl FileOps for TmpFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        self.inode.read_data(buf, off)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        self.inode.write_data(buf, off)
    }

    fn shared_page(&self, off: u64) -> Option<Result<Arc<Frame>, Errno>> {
        Some(self.inode.data().and_then(|d| {
            let mut d = d.lock();
            self.inode.page(&mut d, off / PAGE)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn mf() -> Arc<MemoryFile> {
        Arc::new(MemoryFile::new("tmpfs-test", 64 << 20).unwrap())
    }

    #[test]
    fn files_dirs_links_and_truncate() {
        let root = Tmpfs::new_root(mf(), 0o755, 0, 0);
        let cred = FsCred::root();
        let f = root
            .create(b"f", NewNode::File { mode: 0o644 }, &cred)
            .unwrap();
        let ops = f.open(0).unwrap();
        assert_eq!(ops.write_at(b"hello world", 5000).unwrap(), 11);
        assert_eq!(f.stat().unwrap().st_size, 5011);
        let mut buf = [1u8; 16];
        assert_eq!(ops.read_at(&mut buf, 4998).unwrap(), 13);
        assert_eq!(&buf[..13], b"\0\0hello world");
        f.setattr(&SetAttr {
            size: Some(5003),
            ..Default::default()
        })
        .unwrap();
        f.setattr(&SetAttr {
            size: Some(6000),
            ..Default::default()
        })
        .unwrap();
        let mut buf = [1u8; 8];
        assert_eq!(ops.read_at(&mut buf, 5000).unwrap(), 8);
        assert_eq!(
            &buf, b"hel\0\0\0\0\0",
            "truncate zeroes the tail of the last page"
        );
        assert!(ops.shared_page(0).unwrap().is_ok());

        root.create(b"d", NewNode::Dir { mode: 0o755 }, &cred)
            .unwrap();
        assert_eq!(root.stat().unwrap().st_nlink, 3);
        assert_eq!(
            root.create(b"d", NewNode::File { mode: 0 }, &cred).err(),
            Some(Errno::EEXIST)
        );
        root.link(b"g", &f).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 2);
        root.unlink(b"f", false).unwrap();
        assert_eq!(f.stat().unwrap().st_nlink, 1);
        assert_eq!(root.unlink(b"d", false), Err(Errno::EISDIR));
        let d = root.lookup(b"d").unwrap();
        d.create(
            b"x",
            NewNode::Symlink {
                target: b"/y".to_vec(),
            },
            &cred,
        )
        .unwrap();
        assert_eq!(
            d.lookup(b"x").unwrap().readlink(&Caller::KERNEL).unwrap(),
            b"/y"
        );
        assert_eq!(root.unlink(b"d", true), Err(Errno::ENOTEMPTY));
        let root_dyn: Arc<dyn Inode> = root.clone();
        root.rename(b"g", &root_dyn, b"h", 0).unwrap();
        assert!(root.lookup(b"g").is_err());
        assert!(super::super::same_inode(&root.lookup(b"h").unwrap(), &f));
        let names: Vec<_> = root
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec![b"d".to_vec(), b"h".to_vec()]);
    }
}
