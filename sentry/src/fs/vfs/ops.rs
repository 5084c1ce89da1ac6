//! Namespace operations: create (`mkdir`, `mknod`, `symlink`, `link`), `unlink`,
//! `rename`, `setattr` and `readlink`, with their permission and sticky-bit checks.

use super::*;
use crate::fs::Caller;
use crate::fs::inotify::bits::*;

impl Vfs {
    pub(super) fn prepare_create(
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
        // A read-only mount refuses before the permission check, as Linux's
        // `mnt_want_write` in `filename_create` does.
        if parent.mount.readonly() {
            return Err(Errno::EROFS);
        }
        let pst = parent.stat()?;
        cred.check(&pst, access::W_OK | access::X_OK)?;
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
        // mkdir takes the permission bits and the sticky bit only; a directory in a
        // setgid directory is setgid itself (Linux's vfs_mkdir and inode_init_owner).
        parent.inode().create(
            &last,
            NewNode::Dir {
                mode: (mode & 0o1777) | (pst.st_mode & 0o2000),
            },
            &creator(cred, &pst),
        )?;
        parent.notify_child(&last, IN_CREATE, 0, true);
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
                if mode & S_IFMT != S_IFIFO
                    && mode & S_IFMT != S_IFSOCK
                    && !cred.has_cap(cap::MKNOD)
                {
                    return Err(Errno::EPERM);
                }
                NewNode::Node { mode, rdev }
            }
            S_IFDIR => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        };
        parent.inode().create(&last, node, &creator(cred, &pst))?;
        parent.notify_child(&last, IN_CREATE, 0, false);
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
        parent.notify_child(&last, IN_CREATE, 0, false);
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
        parent.inode().link(&last, old.inode())?;
        if let Some(n) = parent.mount.notify() {
            n.on_inode(old.inode(), IN_ATTRIB);
        }
        parent.notify_child(&last, IN_CREATE, 0, false);
        Ok(())
    }

    pub(super) fn check_sticky(cred: &FsCred, dir: &Stat, victim: &Stat) -> Result<(), Errno> {
        if dir.st_mode & 0o1000 != 0
            && !cred.has_cap(cap::FOWNER)
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
        if parent.mount.readonly() {
            return Err(Errno::EROFS);
        }
        parent.inode().unlink(&last, dir)?;
        if let Some(d) = parent.dentry.forget_child(&last) {
            d.deleted.store(true, Ordering::Release);
        } else {
            victim.dentry.deleted.store(true, Ordering::Release);
        }
        if let Some(n) = parent.mount.notify()
            && n.active()
        {
            // As Linux's vfs_unlink and d_delete: the file's link count changed; with its
            // last name gone it is deleted (at once, or when its last user lets go);
            // then the directory hears of the removal.
            if !is_dir {
                n.on_inode(victim.inode(), IN_ATTRIB);
            }
            if is_dir || vst.st_nlink <= 1 {
                n.on_last_unlink(victim.inode(), Arc::strong_count(&victim.dentry) > 1);
            }
            parent.notify_child(&last, IN_DELETE, 0, is_dir);
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
        let dst_st = match &dst {
            Some(d) => Some(d.stat()?),
            None => None,
        };
        if let Some(st) = &dst_st {
            Self::check_sticky(cred, &np.stat()?, st)?;
        }
        if op.mount.readonly() {
            return Err(Errno::EROFS);
        }
        op.inode().rename(&oname, np.inode(), &nname, flags)?;
        if let Some(n) = op.mount.notify()
            && n.active()
        {
            // As Linux's fsnotify_move, for each name that moved.
            let src_dir = sst.st_mode & S_IFMT == S_IFDIR;
            let cookie = n.next_cookie();
            op.notify_child(&oname, IN_MOVED_FROM, cookie, src_dir);
            np.notify_child(&nname, IN_MOVED_TO, cookie, src_dir);
            if let (Some(d), Some(st)) = (&dst, &dst_st) {
                let dst_dir = st.st_mode & S_IFMT == S_IFDIR;
                if flags & RENAME_EXCHANGE != 0 {
                    let cookie = n.next_cookie();
                    np.notify_child(&nname, IN_MOVED_FROM, cookie, dst_dir);
                    op.notify_child(&oname, IN_MOVED_TO, cookie, dst_dir);
                    n.on_inode(d.inode(), IN_MOVE_SELF);
                } else if !dst_dir {
                    n.on_inode(d.inode(), IN_ATTRIB);
                }
            }
            n.on_inode(src.inode(), IN_MOVE_SELF);
        }
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
        if flags & RENAME_EXCHANGE == 0
            && let (Some(d), Some(st), Some(n)) = (&dst, &dst_st, np.mount.notify())
            && n.active()
            && (st.st_mode & S_IFMT == S_IFDIR || st.st_nlink <= 1)
        {
            // The replaced file lost its last name: deleted (now, or at its last close).
            n.on_last_unlink(d.inode(), Arc::strong_count(&d.dentry) > 1);
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
            && !cred.has_cap(cap::CHOWN)
            && (uid != st.st_uid || cred.uid != st.st_uid)
        {
            return Err(Errno::EPERM);
        }
        if let Some(gid) = attr.gid
            && !cred.has_cap(cap::CHOWN)
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
        if p.mount.readonly() {
            return Err(Errno::EROFS);
        }
        let mut a = attr.clone();
        // A change of owner or group of anything but a directory drops set-user-ID, and
        // set-group-ID when the group may execute (Linux's ATTR_KILL_SUID/SGID: root
        // included).
        if (a.uid.is_some() || a.gid.is_some())
            && a.mode.is_none()
            && FileType::from_mode(st.st_mode) != FileType::Directory
        {
            let m = st.st_mode & 0o7777;
            let mut kept = m & !0o4000;
            if m & 0o2010 == 0o2010 {
                kept &= !0o2000;
            }
            if kept != m {
                a.mode = Some(kept);
            }
        }
        if let Some(m) = a.mode.as_mut() {
            *m &= 0o7777;
            // Clear setgid when the caller is not in the group.
            if !cred.has_cap(cap::FSETID) && !cred.in_group(st.st_gid) {
                *m &= !0o2000;
            }
        }
        p.inode().setattr(&a)?;
        p.notify(setattr_events(&a));
        Ok(())
    }

    /// Reads a symlink's text as `caller` sees it (`EINVAL` for other files).
    pub fn readlink(p: &VfsPath, caller: &Caller) -> Result<Vec<u8>, Errno> {
        if p.file_type()? != FileType::Symlink {
            return Err(Errno::EINVAL);
        }
        p.inode().readlink(caller)
    }
}

/// The inotify events of an attribute change, as Linux's `fsnotify_change`: a new size
/// is a modification, both times set is a `utimes`, one alone an access or a
/// modification, owner and mode changes are attribute changes.
pub(crate) fn setattr_events(a: &SetAttr) -> u32 {
    let mut mask = 0;
    if a.uid.is_some() || a.gid.is_some() || a.mode.is_some() {
        mask |= IN_ATTRIB;
    }
    if a.size.is_some() {
        mask |= IN_MODIFY;
    }
    match (a.atime.is_some(), a.mtime.is_some()) {
        (true, true) => mask |= IN_ATTRIB,
        (true, false) => mask |= IN_ACCESS,
        (false, true) => mask |= IN_MODIFY,
        (false, false) => {}
    }
    mask
}

/// The credentials a new file gets: the caller's uid, and the directory's gid when the
/// directory is setgid.
pub(super) fn creator(cred: &FsCred, parent: &Stat) -> FsCred {
    let mut c = cred.clone();
    if parent.st_mode & 0o2000 != 0 {
        c.gid = parent.st_gid;
    }
    c
}
