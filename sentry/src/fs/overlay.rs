//! overlay: a writable upper filesystem (tmpfs) over a read-only lower one (the Gofer).
//!
//! Reads go to the upper file when there is one, else to the lower. Anything that changes a
//! lower file (open for writing, truncate, chmod, chown, utimes, link) first copies it up:
//! its parent directories are recreated in the upper, then its data and attributes are
//! copied. Removing or renaming away a name that exists in the lower leaves a *whiteout*
//! in the upper (a character device 0/0, as Linux's overlayfs does) which hides the lower
//! entry; a directory created over a whiteout is marked *opaque* (a hidden entry whose name
//! contains a NUL byte, which no path can name) so the lower directory stays hidden.
//! Directory listings merge both layers. Renaming a directory that exists in the lower
//! gives `EXDEV`, as Linux does without `redirect_dir` (`mv` then copies).
//!
//! The lower is never written.

use parking_lot::Mutex;
use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::flags::open::*;
use linux_abi::types::Stat;

use super::vfs::{RENAME_EXCHANGE, RENAME_NOREPLACE};
use super::{Caller, DirEntry, FileOps, FileType, FsCred, FsStat, Inode, NewNode, SetAttr, magic};

/// The hidden entry marking an upper directory opaque.
const OPAQUE: &[u8] = b"\0opaque";

/// Copy-up chunk size.
const CHUNK: usize = 1 << 20;

#[derive(Debug)]
struct OvlFs {
    dev: u64,
    /// Upper inode number -> the lower inode number it was copied up from, so a file keeps
    /// its inode number across copy-up (programs compare `st_ino` of a directory before
    /// and after changing it, e.g. `rm -r`'s fts).
    origin: Mutex<HashMap<u64, u64>>,
}

impl OvlFs {
    fn ino(&self, upper_ino: u64) -> u64 {
        self.origin
            .lock()
            .get(&upper_ino)
            .copied()
            .unwrap_or(upper_ino)
    }

    fn record(&self, upper: &Arc<dyn Inode>, lower: &Arc<dyn Inode>) -> Result<(), Errno> {
        let (u, l) = (upper.stat()?.st_ino, lower.stat()?.st_ino);
        self.origin.lock().insert(u, l);
        Ok(())
    }
}

/// A file of the overlay: an upper part, a lower part, or both (merged directories).
#[derive(Debug)]
pub struct OvlInode {
    me: Weak<OvlInode>,
    fs: Arc<OvlFs>,
    parent: Mutex<Option<Arc<OvlInode>>>,
    name: Mutex<Vec<u8>>,
    lower: Option<Arc<dyn Inode>>,
    upper: Mutex<Option<Arc<dyn Inode>>>,
    children: Mutex<HashMap<Vec<u8>, Weak<OvlInode>>>,
}

/// Builds an overlay of `upper` (an empty, writable directory, normally a tmpfs root) over
/// `lower`, returning its root directory.
pub fn new_overlay(upper: Arc<dyn Inode>, lower: Arc<dyn Inode>) -> Arc<OvlInode> {
    let fs = Arc::new(OvlFs {
        dev: super::new_dev(),
        origin: Mutex::new(HashMap::new()),
    });
    let _ = fs.record(&upper, &lower);
    // The root takes the lower root's attributes.
    if let Ok(st) = lower.stat() {
        let _ = upper.setattr(&SetAttr {
            mode: Some(st.st_mode & 0o7777),
            uid: Some(st.st_uid),
            gid: Some(st.st_gid),
            ..Default::default()
        });
    }
    OvlInode::new(&fs, None, b"/", Some(lower), Some(upper))
}

fn is_whiteout(st: &Stat) -> bool {
    st.st_mode & S_IFMT == S_IFCHR && st.st_rdev == 0
}

fn kind(i: &dyn Inode) -> Result<FileType, Errno> {
    super::file_type(i)
}

impl OvlInode {
    fn new(
        fs: &Arc<OvlFs>,
        parent: Option<Arc<OvlInode>>,
        name: &[u8],
        lower: Option<Arc<dyn Inode>>,
        upper: Option<Arc<dyn Inode>>,
    ) -> Arc<OvlInode> {
        Arc::new_cyclic(|me| OvlInode {
            me: me.clone(),
            fs: fs.clone(),
            parent: Mutex::new(parent),
            name: Mutex::new(name.to_vec()),
            lower,
            upper: Mutex::new(upper),
            children: Mutex::new(HashMap::new()),
        })
    }

    fn upper(&self) -> Option<Arc<dyn Inode>> {
        self.upper.lock().clone()
    }

    fn current(&self) -> Result<Arc<dyn Inode>, Errno> {
        self.upper()
            .or_else(|| self.lower.clone())
            .ok_or(Errno::ENOENT)
    }

    fn is_opaque(upper: &Arc<dyn Inode>) -> bool {
        upper.lookup(OPAQUE).is_ok()
    }

    /// Whether the lower directory shows through this directory.
    fn lower_visible(&self) -> bool {
        match self.upper() {
            Some(u) => !Self::is_opaque(&u),
            None => true,
        }
    }

    /// `RENAME_EXCHANGE`: both files copied up and swapped in the upper layer (a
    /// directory that has a lower part cannot move, `EXDEV`, as for a plain rename).
    fn exchange(&self, old: &[u8], nd: &OvlInode, new: &[u8]) -> Result<(), Errno> {
        let src = self.lookup_ovl(old)?;
        let dst = nd.lookup_ovl(new)?;
        let src_dir = kind(src.current()?.as_ref())? == FileType::Directory;
        let dst_dir = kind(dst.current()?.as_ref())? == FileType::Directory;
        if (src_dir && src.lower.is_some()) || (dst_dir && dst.lower.is_some()) {
            return Err(Errno::EXDEV);
        }
        let su = src.copy_up()?;
        let du = dst.copy_up()?;
        let uo = self.copy_up()?;
        let un = nd.copy_up()?;
        uo.rename(old, &un, new, RENAME_EXCHANGE)?;
        // A directory moved over a lower name must not merge with a lower directory.
        if src_dir && nd.lower_has(new) {
            let _ = su.create(OPAQUE, NewNode::File { mode: 0 }, &FsCred::root());
        }
        if dst_dir && self.lower_has(old) {
            let _ = du.create(OPAQUE, NewNode::File { mode: 0 }, &FsCred::root());
        }
        self.forget(old);
        nd.forget(new);
        *src.parent.lock() = nd.me.upgrade();
        *src.name.lock() = new.to_vec();
        *dst.parent.lock() = self.me.upgrade();
        *dst.name.lock() = old.to_vec();
        nd.cache(new, &src);
        self.cache(old, &dst);
        Ok(())
    }

    /// Copies this file (and its ancestors) up; returns the upper inode.
    fn copy_up(&self) -> Result<Arc<dyn Inode>, Errno> {
        let mut guard = self.upper.lock();
        if let Some(u) = guard.as_ref() {
            return Ok(u.clone());
        }
        let lower = self.lower.clone().ok_or(Errno::ENOENT)?;
        let parent = self.parent.lock().clone().ok_or(Errno::EIO)?;
        let name = self.name.lock().clone();
        let pu = parent.copy_up()?;
        if let Ok(existing) = pu.lookup(&name)
            && !is_whiteout(&existing.stat()?)
        {
            *guard = Some(existing.clone());
            return Ok(existing);
        }
        let st = lower.stat()?;
        let owner = FsCred {
            uid: st.st_uid,
            gid: st.st_gid,
            ..FsCred::root()
        };
        let perm = st.st_mode & 0o7777;
        let up = match FileType::from_mode(st.st_mode) {
            FileType::Directory => pu.create(&name, NewNode::Dir { mode: perm }, &owner)?,
            FileType::Symlink => pu.create(
                &name,
                NewNode::Symlink {
                    target: lower.readlink(&Caller::KERNEL)?,
                },
                &owner,
            )?,
            FileType::Regular => {
                let up = pu.create(&name, NewNode::File { mode: perm }, &owner)?;
                if let Err(e) = copy_data(&lower, &up, st.st_size as u64) {
                    let _ = pu.unlink(&name, false);
                    return Err(e);
                }
                up
            }
            _ => pu.create(
                &name,
                NewNode::Node {
                    mode: st.st_mode,
                    rdev: st.st_rdev,
                },
                &owner,
            )?,
        };
        up.setattr(&SetAttr {
            mode: Some(perm),
            atime: Some(st.st_atime),
            mtime: Some(st.st_mtime),
            ..Default::default()
        })?;
        self.fs.record(&up, &lower)?;
        tracing::trace!(name = %String::from_utf8_lossy(&name), "overlay: copied up");
        *guard = Some(up.clone());
        Ok(up)
    }

    fn cache(&self, name: &[u8], node: &Arc<OvlInode>) {
        let mut c = self.children.lock();
        c.retain(|_, w| w.strong_count() > 0);
        c.insert(name.to_vec(), Arc::downgrade(node));
    }

    fn lookup_ovl(&self, name: &[u8]) -> Result<Arc<OvlInode>, Errno> {
        if name.contains(&0) {
            return Err(Errno::ENOENT);
        }
        if let Some(n) = self.children.lock().get(name).and_then(Weak::upgrade) {
            return Ok(n);
        }
        let me = self.me.upgrade().ok_or(Errno::ENOENT)?;
        let mut upper = None;
        let mut lower_ok = self.lower.is_some();
        if let Some(u) = self.upper() {
            lower_ok &= !Self::is_opaque(&u);
            match u.lookup(name) {
                Ok(i) => {
                    if is_whiteout(&i.stat()?) {
                        return Err(Errno::ENOENT);
                    }
                    let is_dir = kind(i.as_ref())? == FileType::Directory;
                    if !is_dir || Self::is_opaque(&i) {
                        lower_ok = false;
                    }
                    upper = Some(i);
                }
                Err(e) if e == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
        }
        let mut lower = None;
        if lower_ok && let Some(l) = &self.lower {
            match l.lookup(name) {
                Ok(i) => {
                    // A merged directory needs both to be directories.
                    if upper.is_none() || kind(i.as_ref())? == FileType::Directory {
                        lower = Some(i);
                    }
                }
                Err(e) if e == Errno::ENOENT || e == Errno::ENOTDIR => {}
                Err(e) => return Err(e),
            }
        }
        if upper.is_none() && lower.is_none() {
            return Err(Errno::ENOENT);
        }
        let node = OvlInode::new(&self.fs, Some(me), name, lower, upper);
        self.cache(name, &node);
        Ok(node)
    }

    /// Removes a whiteout at `name` in the upper dir `u`; returns whether there was one.
    fn clear_whiteout(u: &Arc<dyn Inode>, name: &[u8]) -> Result<bool, Errno> {
        match u.lookup(name) {
            Ok(i) if is_whiteout(&i.stat()?) => {
                u.unlink(name, false)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn whiteout(u: &Arc<dyn Inode>, name: &[u8]) -> Result<(), Errno> {
        u.create(
            name,
            NewNode::Node {
                mode: S_IFCHR,
                rdev: 0,
            },
            &FsCred::root(),
        )?;
        Ok(())
    }

    /// Removes the whiteouts and the opaque marker from an upper directory that is
    /// logically empty, so the upper filesystem can remove it.
    fn purge(u: &Arc<dyn Inode>) -> Result<(), Errno> {
        for e in u.readdir()? {
            u.unlink(&e.name, false)?;
        }
        Ok(())
    }

    fn ensure_empty(&self) -> Result<(), Errno> {
        if !self.readdir()?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        Ok(())
    }

    fn forget(&self, name: &[u8]) {
        self.children.lock().remove(name);
    }

    /// Whether the lower layer shows an entry `name` in this directory (which then needs
    /// a whiteout once the name is gone from the upper).
    fn lower_has(&self, name: &[u8]) -> bool {
        self.lower_visible() && self.lower.as_ref().is_some_and(|l| l.lookup(name).is_ok())
    }
}

fn copy_data(from: &Arc<dyn Inode>, to: &Arc<dyn Inode>, size: u64) -> Result<(), Errno> {
    let src = from.open(O_RDONLY)?;
    let dst = to.open(O_WRONLY)?;
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    while off < size {
        let n = src.read_at(&mut buf, off)?;
        if n == 0 {
            break;
        }
        let mut w = 0;
        while w < n {
            w += dst.write_at(&buf[w..n], off + w as u64)?;
        }
        off += n as u64;
    }
    Ok(())
}

impl Inode for OvlInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = match self.upper() {
            Some(u) => {
                let mut st = u.stat()?;
                st.st_ino = self.fs.ino(st.st_ino);
                st
            }
            None => self.lower.as_ref().ok_or(Errno::ENOENT)?.stat()?,
        };
        st.st_dev = self.fs.dev;
        Ok(st)
    }

    fn prefetch(&self, names: &[&[u8]]) {
        // Only the lower's lookups are round trips; the upper hides what it hides when
        // the walk looks the names up.
        if let Some(l) = &self.lower
            && self.lower_visible()
        {
            l.prefetch(names);
        }
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if kind(self.current()?.as_ref())? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(self.lookup_ovl(name)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut out: BTreeMap<Vec<u8>, Option<DirEntry>> = BTreeMap::new();
        if let Some(u) = self.upper() {
            for e in u.readdir()? {
                if e.name.contains(&0) {
                    continue;
                }
                let hidden = e.kind == FileType::CharDevice
                    && u.lookup(&e.name)
                        .and_then(|i| i.stat())
                        .map(|s| is_whiteout(&s))
                        .unwrap_or(false);
                let e = DirEntry {
                    ino: self.fs.ino(e.ino),
                    ..e
                };
                out.insert(e.name.clone(), if hidden { None } else { Some(e) });
            }
        }
        if self.lower_visible()
            && let Some(l) = &self.lower
        {
            for e in l.readdir()? {
                out.entry(e.name.clone()).or_insert(Some(e));
            }
        }
        Ok(out.into_values().flatten().collect())
    }

    fn create(&self, name: &[u8], node: NewNode, cred: &FsCred) -> Result<Arc<dyn Inode>, Errno> {
        match self.lookup_ovl(name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(e) if e == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
        let u = self.copy_up()?;
        let had_whiteout = Self::clear_whiteout(&u, name)?;
        let is_dir = matches!(node, NewNode::Dir { .. });
        let i = u.create(name, node, cred)?;
        if is_dir && had_whiteout {
            i.create(OPAQUE, NewNode::File { mode: 0 }, &FsCred::root())?;
        }
        let me = self.me.upgrade().ok_or(Errno::ENOENT)?;
        let n = OvlInode::new(&self.fs, Some(me), name, None, Some(i));
        self.cache(name, &n);
        Ok(n)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let t = target
            .as_any()
            .downcast_ref::<OvlInode>()
            .ok_or(Errno::EXDEV)?;
        if self.lookup_ovl(name).is_ok() {
            return Err(Errno::EEXIST);
        }
        let tu = t.copy_up()?;
        let u = self.copy_up()?;
        Self::clear_whiteout(&u, name)?;
        u.link(name, &tu)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let node = self.lookup_ovl(name)?;
        let is_dir = kind(node.current()?.as_ref())? == FileType::Directory;
        if dir != is_dir {
            return Err(if dir { Errno::ENOTDIR } else { Errno::EISDIR });
        }
        if dir {
            node.ensure_empty()?;
        }
        let u = self.copy_up()?;
        if let Some(nu) = node.upper() {
            if dir {
                Self::purge(&nu)?;
            }
            u.unlink(name, dir)?;
        }
        if self.lower_has(name) {
            Self::whiteout(&u, name)?;
        }
        self.forget(name);
        Ok(())
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let nd = new_dir
            .as_any()
            .downcast_ref::<OvlInode>()
            .ok_or(Errno::EXDEV)?;
        if flags & RENAME_EXCHANGE != 0 {
            return self.exchange(old, nd, new);
        }
        let src = self.lookup_ovl(old)?;
        let src_dir = kind(src.current()?.as_ref())? == FileType::Directory;
        if src_dir && src.lower.is_some() {
            return Err(Errno::EXDEV);
        }
        let dst = match nd.lookup_ovl(new) {
            Ok(d) => Some(d),
            Err(e) if e == Errno::ENOENT => None,
            Err(e) => return Err(e),
        };
        if let Some(d) = &dst {
            if flags & RENAME_NOREPLACE != 0 {
                return Err(Errno::EEXIST);
            }
            let dd = kind(d.current()?.as_ref())? == FileType::Directory;
            if src_dir && !dd {
                return Err(Errno::ENOTDIR);
            }
            if !src_dir && dd {
                return Err(Errno::EISDIR);
            }
            if dd {
                d.ensure_empty()?;
            }
        }
        let su = src.copy_up()?;
        let uo = self.copy_up()?;
        let un = nd.copy_up()?;
        Self::clear_whiteout(&un, new)?;
        if let Some(d) = &dst
            && let Some(du) = d.upper()
            && kind(du.as_ref())? == FileType::Directory
        {
            Self::purge(&du)?;
        }
        uo.rename(old, &un, new, flags & RENAME_NOREPLACE)?;
        if self.lower_has(old) {
            Self::whiteout(&uo, old)?;
        }
        // A directory moved over a lower name must not merge with a lower directory.
        if src_dir && nd.lower_has(new) {
            let _ = su.create(OPAQUE, NewNode::File { mode: 0 }, &FsCred::root());
        }
        self.forget(old);
        nd.forget(new);
        *src.parent.lock() = nd.me.upgrade();
        *src.name.lock() = new.to_vec();
        nd.cache(new, &src);
        Ok(())
    }

    fn readlink(&self, caller: &Caller) -> Result<Vec<u8>, Errno> {
        self.current()?.readlink(caller)
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        self.copy_up()?.setattr(attr)
    }

    // Extended attributes live in the upper layer (a write copies the file up); a
    // lower file that keeps none has none.
    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        match self.current()?.getxattr(name) {
            Err(e) if e == Errno::EOPNOTSUPP && self.upper().is_none() => {
                super::xattr::XattrStore::default().get(name)
            }
            r => r,
        }
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        self.copy_up()?.setxattr(name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        self.current()?.listxattr()
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        if self.upper().is_none() {
            // Nothing to remove below: the lower file keeps none.
            return super::xattr::XattrStore::default().remove(name);
        }
        self.copy_up()?.removexattr(name)
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        let acc = flags & O_ACCMODE;
        let target = if acc == O_WRONLY || acc == O_RDWR || flags & O_TRUNC != 0 {
            self.copy_up()?
        } else {
            self.current()?
        };
        target.open(flags)
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        let mut s = match self.upper() {
            Some(u) => u.statfs()?,
            None => FsStat::memory(magic::TMPFS),
        };
        s.magic = magic::OVERLAY;
        Ok(s)
    }

    fn not_writable(&self) -> Errno {
        Errno::EPERM
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::tmpfs::Tmpfs;
    use platform::MemoryFile;

    fn setup() -> (Arc<dyn Inode>, Arc<OvlInode>) {
        let mf = Arc::new(MemoryFile::new("ovl-test", 64 << 20).unwrap());
        let lower: Arc<dyn Inode> = Tmpfs::new_root(mf.clone(), 0o755, 0, 0);
        let c = FsCred::root();
        let etc = lower
            .create(b"etc", NewNode::Dir { mode: 0o755 }, &c)
            .unwrap();
        let f = etc
            .create(b"passwd", NewNode::File { mode: 0o644 }, &c)
            .unwrap();
        f.open(O_WRONLY)
            .unwrap()
            .write_at(b"root:x:0:0", 0)
            .unwrap();
        etc.create(b"hosts", NewNode::File { mode: 0o644 }, &c)
            .unwrap();
        lower
            .create(b"gone", NewNode::Dir { mode: 0o755 }, &c)
            .unwrap()
            .create(b"x", NewNode::File { mode: 0 }, &c)
            .unwrap();
        let upper: Arc<dyn Inode> = Tmpfs::new_root(mf, 0o755, 0, 0);
        let ovl = new_overlay(upper, lower.clone());
        (lower, ovl)
    }

    fn names(i: &dyn Inode) -> Vec<String> {
        i.readdir()
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect()
    }

    #[test]
    fn copy_up_keeps_lower_unchanged() {
        let (lower, root) = setup();
        let etc = root.lookup(b"etc").unwrap();
        let pw = etc.lookup(b"passwd").unwrap();
        let w = pw.open(O_WRONLY).unwrap();
        w.write_at(b"ROOT", 0).unwrap();
        let mut buf = [0u8; 10];
        pw.open(O_RDONLY).unwrap().read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"ROOT:x:0:0");
        let lpw = lower.lookup(b"etc").unwrap().lookup(b"passwd").unwrap();
        lpw.open(O_RDONLY).unwrap().read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"root:x:0:0", "the lower is never written");
        pw.setattr(&SetAttr {
            mode: Some(0o600),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(lpw.stat().unwrap().st_mode & 0o777, 0o644);
        assert_eq!(pw.stat().unwrap().st_mode & 0o777, 0o600);
        assert_eq!(
            pw.stat().unwrap().st_ino,
            lpw.stat().unwrap().st_ino,
            "copy-up keeps the inode number"
        );
        let etc_ino = lower.lookup(b"etc").unwrap().stat().unwrap().st_ino;
        assert_eq!(etc.stat().unwrap().st_ino, etc_ino);
        let listed = root
            .readdir()
            .unwrap()
            .into_iter()
            .find(|e| e.name == b"etc")
            .unwrap();
        assert_eq!(listed.ino, etc_ino);
    }

    #[test]
    fn whiteouts_and_merged_readdir() {
        let (lower, root) = setup();
        let etc = root.lookup(b"etc").unwrap();
        etc.create(b"new", NewNode::File { mode: 0o644 }, &FsCred::root())
            .unwrap();
        assert_eq!(names(etc.as_ref()), vec!["hosts", "new", "passwd"]);
        etc.unlink(b"hosts", false).unwrap();
        assert_eq!(etc.lookup(b"hosts").err(), Some(Errno::ENOENT));
        assert_eq!(names(etc.as_ref()), vec!["new", "passwd"]);
        assert!(lower.lookup(b"etc").unwrap().lookup(b"hosts").is_ok());
        // A new file over the whiteout.
        etc.create(b"hosts", NewNode::File { mode: 0o644 }, &FsCred::root())
            .unwrap();
        assert_eq!(etc.lookup(b"hosts").unwrap().stat().unwrap().st_size, 0);
        // rmdir of a lower dir: ENOTEMPTY, then empty it, then remove; a new dir is opaque.
        assert_eq!(root.unlink(b"gone", true), Err(Errno::ENOTEMPTY));
        root.lookup(b"gone").unwrap().unlink(b"x", false).unwrap();
        root.unlink(b"gone", true).unwrap();
        assert!(!names(root.as_ref()).contains(&"gone".to_string()));
        let g = root
            .create(b"gone", NewNode::Dir { mode: 0o755 }, &FsCred::root())
            .unwrap();
        assert!(
            names(g.as_ref()).is_empty(),
            "a directory over a whiteout is opaque"
        );
        root.unlink(b"gone", true).unwrap();
        root.create(b"d2", NewNode::Dir { mode: 0o755 }, &FsCred::root())
            .unwrap();
        let root_dyn: Arc<dyn Inode> = root.clone();
        root.rename(b"d2", &root_dyn, b"gone", 0).unwrap();
        let g = root.lookup(b"gone").unwrap();
        assert!(
            names(g.as_ref()).is_empty(),
            "a directory renamed over a lower name is opaque"
        );
        // Rename of a lower file leaves a whiteout behind.
        let root_dyn: Arc<dyn Inode> = root.clone();
        etc.rename(b"passwd", &root_dyn, b"pw", 0).unwrap();
        assert_eq!(etc.lookup(b"passwd").err(), Some(Errno::ENOENT));
        let mut buf = [0u8; 4];
        root.lookup(b"pw")
            .unwrap()
            .open(O_RDONLY)
            .unwrap()
            .read_at(&mut buf, 0)
            .unwrap();
        assert_eq!(&buf, b"root");
        assert_eq!(
            root.rename(b"etc", &root_dyn, b"etc2", 0),
            Err(Errno::EXDEV)
        );
        // A new file over a lower name, removed again, must not uncover the lower file.
        etc.unlink(b"hosts", false).unwrap();
        assert_eq!(etc.lookup(b"hosts").err(), Some(Errno::ENOENT));
        root.create(b"tmpf", NewNode::File { mode: 0o644 }, &FsCred::root())
            .unwrap();
        root.rename(b"tmpf", &etc, b"hosts", 0).unwrap();
        etc.unlink(b"hosts", false).unwrap();
        assert_eq!(etc.lookup(b"hosts").err(), Some(Errno::ENOENT));
    }
}
