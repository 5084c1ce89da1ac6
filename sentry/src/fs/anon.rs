//! Anonymous inodes (`anon_inode:[eventfd]`, `[eventpoll]`, `[timerfd]`, sockets): the
//! inode behind files that live in no directory.

use std::any::Any;
use std::sync::{Arc, OnceLock};

use linux_abi::Errno;
use linux_abi::flags::mode::*;
use linux_abi::types::Stat;

use super::file::OpenFile;
use super::vfs::VfsPath;
use super::{FileOps, FsStat, Inode, magic, make_stat, new_ino};

/// An inode with no name and no data of its own.
#[derive(Debug)]
pub struct AnonInode {
    ino: u64,
    mode: u32,
}

impl Inode for AnonInode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(make_stat(anon_dev(), self.ino, self.mode, 1, 0, 0, 0))
    }

    fn statfs(&self) -> Result<FsStat, Errno> {
        Ok(FsStat::memory(magic::ANON))
    }

    fn open(&self, _flags: u32) -> Result<Arc<dyn FileOps>, Errno> {
        // Re-opening an anonymous file through /proc/<pid>/fd is not supported.
        Err(Errno::ENXIO)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn anon_dev() -> u64 {
    static DEV: OnceLock<u64> = OnceLock::new();
    *DEV.get_or_init(super::new_dev)
}

/// A file description for `ops` on a fresh anonymous inode. `kind` is the bracketed
/// name (`"eventfd"` gives the path `anon_inode:[eventfd]`); `mode` the type and
/// permission bits `fstat` shows; `flags` the status flags.
pub fn anon_file(kind: &str, mode: u32, flags: u32, ops: Arc<dyn FileOps>) -> Arc<OpenFile> {
    anon_file_named(&format!("[{kind}]"), mode, flags, ops)
}

/// [`anon_file`] with the name as given, unbracketed (`"inotify"` gives
/// `anon_inode:inotify`, as Linux names an inotify descriptor).
pub fn anon_file_named(name: &str, mode: u32, flags: u32, ops: Arc<dyn FileOps>) -> Arc<OpenFile> {
    let ino = new_ino();
    let name = if mode & S_IFMT == S_IFSOCK {
        format!("socket:[{ino}]")
    } else {
        format!("anon_inode:{name}")
    };
    let inode: Arc<dyn Inode> = Arc::new(AnonInode { ino, mode });
    OpenFile::new(VfsPath::anonymous(inode, name.as_bytes()), flags, ops)
}
