//! Extended attributes kept in memory ([`XattrStore`]), for the file systems that keep
//! them themselves (tmpfs, and through its upper layer the overlay), and the namespaces
//! they accept.

use parking_lot::Mutex;
use std::collections::BTreeMap;

use linux_abi::Errno;

/// `setxattr` flag: fail if the attribute exists.
pub const XATTR_CREATE: u32 = 1;
/// `setxattr` flag: fail if the attribute does not exist.
pub const XATTR_REPLACE: u32 = 2;
/// The longest attribute name.
pub const XATTR_NAME_MAX: usize = 255;
/// The largest attribute value.
pub const XATTR_SIZE_MAX: usize = 65536;
/// The largest name list.
pub const XATTR_LIST_MAX: usize = 65536;

/// The namespace of an attribute name, as Linux's `xattr_permission` tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// `user.*`: regular files and directories only, by file permission.
    User,
    /// `trusted.*`: `CAP_SYS_ADMIN` only.
    Trusted,
    /// `security.*`: no check of the VFS's own.
    Security,
    /// `system.*` (POSIX ACLs): not kept here.
    System,
    /// Anything else: not supported by any file system.
    Other,
}

impl Namespace {
    /// The namespace of `name`.
    pub fn of(name: &[u8]) -> Namespace {
        if name.starts_with(b"user.") {
            Namespace::User
        } else if name.starts_with(b"trusted.") {
            Namespace::Trusted
        } else if name.starts_with(b"security.") {
            Namespace::Security
        } else if name.starts_with(b"system.") {
            Namespace::System
        } else {
            Namespace::Other
        }
    }
}

/// One file's attributes, for a file system that keeps `user.*`, `trusted.*` and
/// `security.*` attributes (Linux's tmpfs with `CONFIG_TMPFS_XATTR`); the rest is
/// `EOPNOTSUPP`.
#[derive(Debug, Default)]
pub struct XattrStore {
    attrs: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn supported(name: &[u8]) -> Result<(), Errno> {
    match Namespace::of(name) {
        Namespace::User | Namespace::Trusted | Namespace::Security => Ok(()),
        Namespace::System | Namespace::Other => Err(Errno::EOPNOTSUPP),
    }
}

impl XattrStore {
    /// The value of `name` (`ENODATA` if it has none).
    pub fn get(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        supported(name)?;
        self.attrs.lock().get(name).cloned().ok_or(Errno::ENODATA)
    }

    /// Sets `name` with `setxattr` flags (`EEXIST` with `XATTR_CREATE` for an existing
    /// one, `ENODATA` with `XATTR_REPLACE` for a missing one).
    pub fn set(&self, name: &[u8], value: &[u8], flags: u32) -> Result<(), Errno> {
        supported(name)?;
        let mut a = self.attrs.lock();
        let exists = a.contains_key(name);
        if flags & XATTR_CREATE != 0 && exists {
            return Err(Errno::EEXIST);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return Err(Errno::ENODATA);
        }
        a.insert(name.to_vec(), value.to_vec());
        Ok(())
    }

    /// Every name, in order.
    pub fn list(&self) -> Vec<Vec<u8>> {
        self.attrs.lock().keys().cloned().collect()
    }

    /// Removes `name` (`ENODATA` if it has none).
    pub fn remove(&self, name: &[u8]) -> Result<(), Errno> {
        supported(name)?;
        self.attrs
            .lock()
            .remove(name)
            .map(|_| ())
            .ok_or(Errno::ENODATA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_namespaces_and_listing() {
        let s = XattrStore::default();
        assert_eq!(s.get(b"user.a"), Err(Errno::ENODATA));
        assert_eq!(s.set(b"user.a", b"1", XATTR_REPLACE), Err(Errno::ENODATA));
        s.set(b"user.a", b"1", XATTR_CREATE).unwrap();
        assert_eq!(s.set(b"user.a", b"2", XATTR_CREATE), Err(Errno::EEXIST));
        s.set(b"user.a", b"2", XATTR_REPLACE).unwrap();
        s.set(b"trusted.b", b"", 0).unwrap();
        assert_eq!(s.get(b"user.a").unwrap(), b"2");
        assert_eq!(s.list(), vec![b"trusted.b".to_vec(), b"user.a".to_vec()]);
        assert_eq!(
            s.set(b"system.posix_acl_access", b"", 0),
            Err(Errno::EOPNOTSUPP)
        );
        assert_eq!(s.set(b"foo.bar", b"", 0), Err(Errno::EOPNOTSUPP));
        s.remove(b"user.a").unwrap();
        assert_eq!(s.remove(b"user.a"), Err(Errno::ENODATA));
    }
}
