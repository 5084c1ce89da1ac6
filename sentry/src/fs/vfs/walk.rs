//! Path walks: one step (permissions, `.`/`..`, mount crossings), symlink following, and
//! [`Vfs::resolve`]/[`Vfs::resolve_parent`].

use super::*;

impl Vfs {
    /// One walk step from the directory `cur` to `name` (which may be `.` or `..`),
    /// checking search permission and crossing mounts; symlinks are not followed.
    pub fn step(
        &self,
        root: &VfsPath,
        cur: &VfsPath,
        name: &[u8],
        cred: &FsCred,
    ) -> Result<VfsPath, Errno> {
        self.step_with(root, cur, name, cred, WalkOpts::default())
    }

    pub(super) fn step_with(
        &self,
        root: &VfsPath,
        cur: &VfsPath,
        name: &[u8],
        cred: &FsCred,
        opts: WalkOpts,
    ) -> Result<VfsPath, Errno> {
        let st = cur.stat()?;
        if st.st_mode & S_IFMT != S_IFDIR {
            return Err(Errno::ENOTDIR);
        }
        cred.check(&st, access::X_OK)?;
        if name == b"." {
            return Ok(cur.clone());
        }
        if name == b".." {
            let mut c = cur.clone();
            loop {
                if c == *root {
                    return if opts.beneath {
                        Err(Errno::EXDEV)
                    } else {
                        Ok(c)
                    };
                }
                if Arc::ptr_eq(&c.dentry, &c.mount.root) {
                    match &c.mount.parent {
                        Some(_) if opts.no_xdev => return Err(Errno::EXDEV),
                        Some((pm, pd)) => {
                            c = VfsPath {
                                mount: pm.clone(),
                                dentry: pd.clone(),
                            };
                            continue;
                        }
                        None => return Ok(c),
                    }
                }
                return Ok(match c.dentry.parent() {
                    Some(p) => VfsPath {
                        mount: c.mount.clone(),
                        dentry: p,
                    },
                    None => c,
                });
            }
        }
        check_name(name)?;
        let dentry = match cur.dentry.cached_child(name) {
            Some(d) => d,
            None => {
                let inode = cur.inode().lookup(name)?;
                Dentry::new_child(&cur.dentry, name, inode)
            }
        };
        let mut p = VfsPath {
            mount: cur.mount.clone(),
            dentry,
        };
        while let Some(m) = self.mounted_at(&p) {
            if opts.no_xdev {
                return Err(Errno::EXDEV);
            }
            p = VfsPath {
                dentry: m.root.clone(),
                mount: m,
            };
        }
        Ok(p)
    }

    pub(super) fn follow_link(
        &self,
        root: &VfsPath,
        dir: &VfsPath,
        link: &VfsPath,
        cred: &FsCred,
        ws: &mut WalkState,
    ) -> Result<VfsPath, Errno> {
        match link_target(link, cred, ws)? {
            LinkTarget::Magic(target) => Ok(target),
            LinkTarget::Text(text) if text.is_empty() => Err(Errno::ENOENT),
            LinkTarget::Text(text) => self.walk(root, dir, &text, Follow::Yes, cred, ws),
        }
    }

    pub(super) fn walk_parent<'p>(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &'p [u8],
        cred: &FsCred,
        ws: &mut WalkState,
    ) -> Result<(VfsPath, &'p [u8], bool), Errno> {
        if path.is_empty() {
            return Err(Errno::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mut cur = if path[0] == b'/' {
            if ws.opts.beneath {
                return Err(Errno::EXDEV);
            }
            root.clone()
        } else {
            start.clone()
        };
        let comps: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let Some((last, init)) = comps.split_last() else {
            return Ok((cur, b".", true));
        };
        for (i, comp) in init.iter().enumerate() {
            prefetch(&cur, &comps[i..]);
            let next = self.step_with(root, &cur, comp, cred, ws.opts)?;
            cur = if next.file_type()? == FileType::Symlink {
                self.follow_link(root, &cur, &next, cred, ws)?
            } else {
                next
            };
        }
        Ok((cur, last, path.ends_with(b"/")))
    }

    pub(super) fn walk(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        follow: Follow,
        cred: &FsCred,
        ws: &mut WalkState,
    ) -> Result<VfsPath, Errno> {
        let (parent, last, slash) = self.walk_parent(root, start, path, cred, ws)?;
        let mut p = self.step_with(root, &parent, last, cred, ws.opts)?;
        let ft = p.file_type()?;
        if ft == FileType::Symlink && (follow == Follow::Yes || slash) {
            p = self.follow_link(root, &parent, &p, cred, ws)?;
        }
        if slash && p.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(p)
    }

    /// Resolves `path` relative to `start` (absolute paths from `root`).
    pub fn resolve(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        follow: Follow,
        cred: &FsCred,
    ) -> Result<VfsPath, Errno> {
        self.walk(root, start, path, follow, cred, &mut WalkState::default())
    }

    /// Resolves all but the last component of `path`: returns the parent directory, the
    /// last name (`.` for `/`), and whether the path ended with `/`.
    pub fn resolve_parent(
        &self,
        root: &VfsPath,
        start: &VfsPath,
        path: &[u8],
        cred: &FsCred,
    ) -> Result<(VfsPath, Vec<u8>, bool), Errno> {
        let (p, last, slash) =
            self.walk_parent(root, start, path, cred, &mut WalkState::default())?;
        if p.file_type()? != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok((p, last.to_vec(), slash))
    }
}

/// Most components resolved ahead in one [`Inode::prefetch`].
const PREFETCH_MAX: usize = 16;

/// Before the walk steps from `cur` through `rest`: when the next name is not a cached
/// dentry, lets the filesystem resolve the plain components ahead (up to the first `.`
/// or `..`) at once. Two at least: one is the lookup itself.
fn prefetch(cur: &VfsPath, rest: &[&[u8]]) {
    if rest.len() < 2 || cur.dentry.cached_child(rest[0]).is_some() {
        return;
    }
    let plain = rest
        .iter()
        .take(PREFETCH_MAX)
        .take_while(|c| **c != b"." && **c != b".." && c.len() <= super::super::NAME_MAX)
        .count();
    if plain >= 2 {
        cur.inode().prefetch(&rest[..plain]);
    }
}

/// Where a symlink met during a walk leads.
pub(super) enum LinkTarget {
    /// A magic link (`/proc/<pid>/fd/N`, `/proc/self/exe`): the file itself.
    Magic(VfsPath),
    /// An ordinary symlink: its text, to be walked.
    Text(Vec<u8>),
}

/// Counts following `link` against the walk's limits (at most [`MAX_SYMLINKS`],
/// `RESOLVE_NO_SYMLINKS`, `RESOLVE_NO_MAGICLINKS`, `RESOLVE_BENEATH`) and says where it
/// leads.
pub(super) fn link_target(
    link: &VfsPath,
    cred: &FsCred,
    ws: &mut WalkState,
) -> Result<LinkTarget, Errno> {
    ws.links += 1;
    if ws.links > MAX_SYMLINKS || ws.opts.no_symlinks {
        return Err(Errno::ELOOP);
    }
    if let Some(target) = link.inode().magic_link() {
        if ws.opts.no_magiclinks {
            return Err(Errno::ELOOP);
        }
        if ws.opts.beneath {
            return Err(Errno::EXDEV);
        }
        return Ok(LinkTarget::Magic(target?));
    }
    Ok(LinkTarget::Text(link.inode().readlink(&cred.caller)?))
}

pub(super) fn key(p: &VfsPath) -> (u64, usize) {
    (p.mount.id, Arc::as_ptr(&p.dentry) as usize)
}
