//! The names Unix sockets are bound to, one table per kernel.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::*;

/// A bound name: abstract, or the (device, inode) of a socket file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// An abstract name (without the leading NUL).
    Abstract(Vec<u8>),
    /// A socket inode in the VFS.
    Inode(u64, u64),
}

/// The names Unix sockets are bound to (abstract names and socket inodes): one per
/// kernel, so two sandboxes in one process never see each other's sockets.
#[derive(Debug, Default)]
pub struct SocketNames {
    pub(super) bound: Mutex<HashMap<Key, Weak<UnixSocket>>>,
    /// The next autobind name to try (Linux's `ordernum`, per kernel).
    pub(super) next_auto: std::sync::atomic::AtomicU32,
}

impl SocketNames {
    /// Finds the socket bound to `key`.
    pub fn lookup(&self, key: &Key) -> Option<Arc<UnixSocket>> {
        self.bound.lock().get(key).and_then(Weak::upgrade)
    }
}
