//! Opening: [`Vfs::open_at`] (with `O_CREAT`), `O_TMPFILE` and `O_PATH` opens.

use super::*;
use crate::fs::inotify::bits::{IN_CREATE, IN_MODIFY, IN_OPEN};

impl Vfs {
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
                            let text = match link_target(&p, cred, &mut ws)? {
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
                        // EROFS before EACCES, as Linux's `lookup_open`.
                        if parent.mount.readonly() {
                            return Err(Errno::EROFS);
                        }
                        let pst = parent.stat()?;
                        cred.check(&pst, access::W_OK | access::X_OK)?;
                        let inode = parent.inode().create(
                            &last,
                            NewNode::File {
                                mode: mode & 0o7777,
                            },
                            &creator(cred, &pst),
                        )?;
                        created = true;
                        parent.notify_child(&last, IN_CREATE, 0, false);
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
        if dir.mount.readonly() {
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
                Arc::new(super::super::NoIo),
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
        // Linux's may_open: only the owner (or CAP_FOWNER) may skip atime updates.
        if flags & O_NOATIME != 0 && !cred.owns(&st) {
            return Err(Errno::EPERM);
        }
        if matches!(ft, FileType::CharDevice | FileType::BlockDevice) && target.mount.nodev() {
            return Err(Errno::EACCES);
        }
        if wants_write && target.mount.readonly() && ft == FileType::Regular {
            return Err(Errno::EROFS);
        }
        if flags & O_TRUNC != 0 && ft == FileType::Regular && st.st_size != 0 {
            target.inode().setattr(&SetAttr {
                size: Some(0),
                ..SetAttr::default()
            })?;
        }
        let ops = target.inode().open_by(&cred.caller, flags)?;
        let f = OpenFile::new(
            target.clone(),
            flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC),
            ops,
        );
        // As Linux: the open, then the truncation (even of an empty file; not of one
        // the open created).
        target.notify(IN_OPEN);
        if flags & O_TRUNC != 0 && ft == FileType::Regular && !created {
            target.notify(IN_MODIFY);
        }
        Ok(f)
    }
}
