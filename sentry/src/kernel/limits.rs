//! Resource limits of the whole sandbox that its programs can read: the memory limit
//! (`rsentry`'s `Limits::memory`, an OCI container's `linux.resources.memory.limit`),
//! reported by `/proc/meminfo` and `sysinfo(2)` as the total memory. It is enforced by
//! the capacity of the memory file: an allocation that finds it full is the OOM
//! killer's case (`crate::mm::EOOM`, `Task::oom_kill`).

use std::sync::atomic::Ordering;

use super::Kernel;

impl Kernel {
    /// The sandbox's memory limit (its cgroup's), if any.
    pub fn memory_limit(&self) -> Option<u64> {
        let l = self.memory_limit.load(Ordering::Relaxed);
        (l != u64::MAX).then_some(l)
    }

    /// Sets the memory limit `/proc/meminfo` and `sysinfo(2)` report as the total.
    pub fn set_memory_limit(&self, bytes: u64) {
        self.memory_limit.store(bytes, Ordering::Relaxed);
    }

    /// Bytes of application memory in use: the allocated pages of the memory file
    /// (anonymous memory, file pages, tmpfs), what a memory cgroup charges.
    pub fn memory_usage(&self) -> u64 {
        self.platform().memory_file().used()
    }
}
