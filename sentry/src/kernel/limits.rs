//! Resource limits of the whole sandbox that its programs can read: the memory limit of
//! the container's cgroup (enforced on the host), reported by `/proc/meminfo`.

use std::sync::atomic::Ordering;

use super::Kernel;

impl Kernel {
    /// The sandbox's memory limit (its cgroup's), if any.
    pub fn memory_limit(&self) -> Option<u64> {
        let l = self.memory_limit.load(Ordering::Relaxed);
        (l != u64::MAX).then_some(l)
    }

    /// Sets the memory limit `/proc/meminfo` reports as the total.
    pub fn set_memory_limit(&self, bytes: u64) {
        self.memory_limit.store(bytes, Ordering::Relaxed);
    }
}
