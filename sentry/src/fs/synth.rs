//! Building blocks for synthetic, read-only filesystems (procfs, sysfs, parts of devfs):
//! directories whose entries come from a fixed map or a generator, files whose contents
//! are generated when opened, and symlinks whose target is computed (optionally "magic",
//! resolving to an object rather than text).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::types::Stat;

use super::vfs::VfsPath;
use super::{Caller, DirEntry, FileOps, FileType, FsStat, Inode, make_stat, new_ino};

/// Produces the contents of a generated file.
pub type Generator = Box<dyn Fn() -> Result<Vec<u8>, Errno> + Send + Sync>;

/// Lists a generated directory.
pub type Lister = Box<dyn Fn() -> Vec<(Vec<u8>, Arc<dyn Inode>)> + Send + Sync>;

/// Looks one name up in a generated directory.
pub type Finder = Box<dyn Fn(&[u8]) -> Option<Arc<dyn Inode>> + Send + Sync>;

/// Resolves a magic link.
/// Produces a symlink's text for the task that reads it (`/proc/self`).
pub type CallerGenerator = Box<dyn Fn(&Caller) -> Result<Vec<u8>, Errno> + Send + Sync>;

pub type MagicFn = Box<dyn Fn() -> Result<VfsPath, Errno> + Send + Sync>;

/// Common attributes of synthetic inodes.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    /// Device number of the filesystem.
    pub dev: u64,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `statfs` magic.
    pub magic: u64,
}

impl Attrs {
    /// Root-owned attributes on device `dev` with the given magic.
    pub fn root(dev: u64, magic: u64) -> Attrs {
        Attrs {
            dev,
            uid: 0,
            gid: 0,
            magic,
        }
    }
}

enum DirKind {
    Static(BTreeMap<Vec<u8>, Arc<dyn Inode>>),
    Dynamic { list: Lister, find: Option<Finder> },
}

/// A synthetic directory.
pub struct SynthDir {
    attrs: Attrs,
    ino: u64,
    mode: u32,
    kind: DirKind,
    /// The kernel object the directory stands for (a `/proc/<pid>` directory's
    /// process), held weakly.
    owner: Option<std::sync::Weak<dyn Any + Send + Sync>>,
}

impl fmt::Debug for SynthDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynthDir").field("ino", &self.ino).finish()
    }
}

impl SynthDir {
    /// An empty directory.
    pub fn empty(mode: u32) -> Arc<SynthDir> {
        Self::fixed(Attrs::root(0, super::magic::ANON), mode, Vec::new())
    }

    /// A directory with fixed entries.
    pub fn fixed(attrs: Attrs, mode: u32, entries: Vec<(&[u8], Arc<dyn Inode>)>) -> Arc<SynthDir> {
        let map = entries.into_iter().map(|(n, i)| (n.to_vec(), i)).collect();
        Arc::new(SynthDir {
            attrs,
            ino: new_ino(),
            mode,
            kind: DirKind::Static(map),
            owner: None,
        })
    }

    /// A directory with fixed entries that stands for the kernel object `owner`.
    pub fn fixed_owned(
        attrs: Attrs,
        mode: u32,
        entries: Vec<(&[u8], Arc<dyn Inode>)>,
        owner: &Arc<dyn Any + Send + Sync>,
    ) -> Arc<SynthDir> {
        let map = entries.into_iter().map(|(n, i)| (n.to_vec(), i)).collect();
        Arc::new(SynthDir {
            attrs,
            ino: new_ino(),
            mode,
            kind: DirKind::Static(map),
            owner: Some(Arc::downgrade(owner)),
        })
    }

    /// Whether the directory stands for a kernel object (alive or not).
    pub fn has_owner(&self) -> bool {
        self.owner.is_some()
    }

    /// The object the directory stands for, while it exists.
    pub fn owner(&self) -> Option<Arc<dyn Any + Send + Sync>> {
        self.owner.as_ref()?.upgrade()
    }

    /// A directory listed by `list`; `find` (when given) looks up names that `list`
    /// does not show or is expensive for.
    pub fn dynamic(attrs: Attrs, mode: u32, list: Lister, find: Option<Finder>) -> Arc<SynthDir> {
        Arc::new(SynthDir {
            attrs,
            ino: new_ino(),
            mode,
            kind: DirKind::Dynamic { list, find },
            owner: None,
        })
    }
}

impl Inode for SynthDir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(make_stat(
            self.attrs.dev,
            self.ino,
            S_IFDIR | self.mode,
            2,
            self.attrs.uid,
            self.attrs.gid,
            0,
        ))
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        match &self.kind {
            DirKind::Static(m) => m.get(name).cloned().ok_or(Errno::ENOENT),
            DirKind::Dynamic { list, find } => {
                if let Some(f) = find {
                    return f(name).ok_or(Errno::ENOENT);
                }
                list()
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, i)| i)
                    .ok_or(Errno::ENOENT)
            }
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let entries: Vec<(Vec<u8>, Arc<dyn Inode>)> = match &self.kind {
            DirKind::Static(m) => m.iter().map(|(n, i)| (n.clone(), i.clone())).collect(),
            DirKind::Dynamic { list, .. } => list(),
        };
        Ok(entries
            .into_iter()
            .map(|(name, i)| {
                let st = i.stat().unwrap_or_default();
                DirEntry {
                    name,
                    ino: st.st_ino,
                    kind: FileType::from_mode(st.st_mode),
                }
            })
            .collect())
    }

    fn cacheable(&self) -> bool {
        matches!(self.kind, DirKind::Static(_))
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(self.attrs.magic))
    }

    fn not_writable(&self) -> Errno {
        Errno::EACCES
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Takes what a program wrote to a tunable file (each `write` call is one value).
pub type Store = Box<dyn Fn(&Caller, &[u8]) -> Result<(), Errno> + Send + Sync>;

/// A file whose contents are generated at open.
pub struct SynthFile {
    attrs: Attrs,
    ino: u64,
    mode: u32,
    size: u64,
    generate: Generator,
    store: Option<Arc<Store>>,
}

impl fmt::Debug for SynthFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynthFile").field("ino", &self.ino).finish()
    }
}

impl SynthFile {
    /// A read-only (mode `0444` by default) generated file.
    pub fn new(attrs: Attrs, mode: u32, generate: Generator) -> Arc<SynthFile> {
        Arc::new(SynthFile {
            attrs,
            ino: new_ino(),
            mode,
            size: 0,
            generate,
            store: None,
        })
    }

    /// A tunable file (`/proc/sys/...`, `oom_score_adj`): reads show `generate`, each
    /// write is handed to `store` whole (offsets are ignored, as Linux's sysctl handlers
    /// take a value per write). Permission to open it for writing comes from `mode`.
    pub fn writable(attrs: Attrs, mode: u32, generate: Generator, store: Store) -> Arc<SynthFile> {
        Arc::new(SynthFile {
            attrs,
            ino: new_ino(),
            mode,
            size: 0,
            generate,
            store: Some(Arc::new(store)),
        })
    }

    /// A file with fixed contents (reports its real size, as sysfs does with 4096).
    pub fn fixed(attrs: Attrs, contents: impl Into<Vec<u8>>) -> Arc<SynthFile> {
        let c: Vec<u8> = contents.into();
        let size = c.len() as u64;
        Arc::new(SynthFile {
            attrs,
            ino: new_ino(),
            mode: 0o444,
            size,
            generate: Box::new(move || Ok(c.clone())),
            store: None,
        })
    }
}

impl Inode for SynthFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(make_stat(
            self.attrs.dev,
            self.ino,
            S_IFREG | self.mode,
            1,
            self.attrs.uid,
            self.attrs.gid,
            self.size,
        ))
    }

    fn open(&self, flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        use linux_abi::flags::open::{O_ACCMODE, O_RDONLY, O_WRONLY};
        let acc = flags & O_ACCMODE;
        // Generated files take no writes, whatever the caller's privileges; tunables do.
        if acc != O_RDONLY && self.store.is_none() {
            return Err(Errno::EACCES);
        }
        // A write-only open of a tunable does not run the generator (it may be costly
        // or, for a write-only value, meaningless).
        let data = if acc == O_WRONLY {
            Vec::new()
        } else {
            (self.generate)()?
        };
        Ok(Arc::new(BufferFile {
            data,
            store: self.store.clone(),
        }))
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(self.attrs.magic))
    }

    fn not_writable(&self) -> Errno {
        Errno::EACCES
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An open file reading from a snapshot taken at open (and, for a tunable, storing
/// each write).
pub struct BufferFile {
    data: Vec<u8>,
    store: Option<Arc<Store>>,
}

impl fmt::Debug for BufferFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferFile")
            .field("len", &self.data.len())
            .field("writable", &self.store.is_some())
            .finish()
    }
}

impl FileOps for BufferFile {
    fn read_at(&self, buf: &mut [u8], off: u64) -> Result<usize, Errno> {
        let Ok(off) = usize::try_from(off) else {
            return Ok(0);
        };
        if off >= self.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(self.data.len() - off);
        buf[..n].copy_from_slice(&self.data[off..off + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], off: u64) -> Result<usize, Errno> {
        self.write_by(&Caller::KERNEL, buf, off)
    }

    fn write_by(&self, caller: &Caller, buf: &[u8], _off: u64) -> Result<usize, Errno> {
        let store = self.store.as_ref().ok_or(Errno::EACCES)?;
        store(caller, buf)?;
        Ok(buf.len())
    }

    fn readable(&self) -> Option<u64> {
        Some(self.data.len() as u64)
    }
}

/// A symlink with a computed target.
pub struct SynthLink {
    attrs: Attrs,
    ino: u64,
    target: CallerGenerator,
    /// Whether the text depends on the caller (then `lstat` reports size 0, as procfs).
    per_caller: bool,
    magic: Option<MagicFn>,
}

impl fmt::Debug for SynthLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynthLink").field("ino", &self.ino).finish()
    }
}

impl SynthLink {
    /// A symlink whose text is produced by `target`; with `magic`, following it yields
    /// that object directly.
    pub fn new(attrs: Attrs, target: Generator, magic: Option<MagicFn>) -> Arc<SynthLink> {
        Arc::new(SynthLink {
            attrs,
            ino: new_ino(),
            target: Box::new(move |_| target()),
            per_caller: false,
            magic,
        })
    }

    /// A symlink whose text depends on the task that reads it (`/proc/self`).
    pub fn per_caller(attrs: Attrs, target: CallerGenerator) -> Arc<SynthLink> {
        Arc::new(SynthLink {
            attrs,
            ino: new_ino(),
            target,
            per_caller: true,
            magic: None,
        })
    }

    /// A symlink with fixed text.
    pub fn fixed(attrs: Attrs, target: &[u8]) -> Arc<SynthLink> {
        let t = target.to_vec();
        Self::new(attrs, Box::new(move || Ok(t.clone())), None)
    }
}

impl Inode for SynthLink {
    fn stat(&self) -> Result<Stat, Errno> {
        let len = if self.per_caller {
            0
        } else {
            (self.target)(&Caller::KERNEL)
                .map(|t| t.len() as u64)
                .unwrap_or(0)
        };
        Ok(make_stat(
            self.attrs.dev,
            self.ino,
            S_IFLNK | 0o777,
            1,
            self.attrs.uid,
            self.attrs.gid,
            len,
        ))
    }

    fn readlink(&self, caller: &Caller) -> Result<Vec<u8>, Errno> {
        (self.target)(caller)
    }

    fn magic_link(&self) -> Option<Result<VfsPath, Errno>> {
        self.magic.as_ref().map(|m| m())
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(self.attrs.magic))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
