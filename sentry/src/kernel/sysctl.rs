//! The sandbox's own `/proc/sys` values: tunables programs read and set (`kernel.pid_max`,
//! `vm.max_map_count`, `fs.pipe-max-size`, ...). Each sandbox has its own set, writable by
//! its root (`CAP_SYS_ADMIN` as on Linux: the file modes are `0644`), and nothing reaches the
//! host. Values are checked as Linux's `proc_dointvec_minmax` and friends do: a number out
//! of range is `EINVAL`.

use parking_lot::Mutex;
use std::collections::BTreeMap;

use linux_abi::Errno;

/// How a value is checked.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// An integer in `min..=max`.
    Int(i64, i64),
    /// An unsigned 64-bit integer (shmmax and the like).
    U64,
    /// Free text of at most this many bytes (a trailing newline is dropped).
    Text(usize),
    /// Whitespace-separated integers, this many.
    Ints(usize),
}

/// `(path below /proc/sys, default, kind)`.
const TABLE: &[(&str, &str, Kind)] = &[
    ("fs/aio-max-nr", "65536", Kind::U64),
    ("fs/file-max", "9223372036854775807", Kind::U64),
    (
        "fs/inotify/max_queued_events",
        "16384",
        Kind::Int(0, i32::MAX as i64),
    ),
    (
        "fs/inotify/max_user_instances",
        "128",
        Kind::Int(0, i32::MAX as i64),
    ),
    (
        "fs/inotify/max_user_watches",
        "65536",
        Kind::Int(0, i32::MAX as i64),
    ),
    ("fs/lease-break-time", "45", Kind::Int(0, i32::MAX as i64)),
    ("fs/leases-enable", "1", Kind::Int(0, 1)),
    ("fs/mqueue/msg_default", "10", Kind::Int(1, 65536)),
    ("fs/mqueue/msg_max", "10", Kind::Int(1, 65536)),
    (
        "fs/mqueue/msgsize_default",
        "8192",
        Kind::Int(128, 16_777_216),
    ),
    ("fs/mqueue/msgsize_max", "8192", Kind::Int(128, 16_777_216)),
    ("fs/mqueue/queues_max", "256", Kind::Int(0, i32::MAX as i64)),
    ("fs/nr_open", "1048576", Kind::Int(64, 1_073_741_816)),
    ("fs/pipe-max-size", "1048576", Kind::Int(4096, 1 << 31)),
    ("fs/pipe-user-pages-hard", "0", Kind::U64),
    ("fs/pipe-user-pages-soft", "16384", Kind::U64),
    ("fs/protected_fifos", "1", Kind::Int(0, 2)),
    ("fs/protected_hardlinks", "1", Kind::Int(0, 1)),
    ("fs/protected_regular", "2", Kind::Int(0, 2)),
    ("fs/protected_symlinks", "1", Kind::Int(0, 1)),
    ("fs/suid_dumpable", "0", Kind::Int(0, 2)),
    ("kernel/cap_last_cap", "40", Kind::Int(40, 40)),
    ("kernel/core_pattern", "core", Kind::Text(127)),
    ("kernel/core_pipe_limit", "0", Kind::Int(0, i32::MAX as i64)),
    ("kernel/core_uses_pid", "0", Kind::Int(0, 1)),
    ("kernel/keys/maxkeys", "200", Kind::Int(0, i32::MAX as i64)),
    ("kernel/msg_next_id", "-1", Kind::Int(-1, i32::MAX as i64)),
    ("kernel/msgmax", "8192", Kind::Int(0, i32::MAX as i64)),
    ("kernel/msgmnb", "16384", Kind::Int(0, i32::MAX as i64)),
    ("kernel/msgmni", "32000", Kind::Int(0, 32768)),
    ("kernel/ngroups_max", "65536", Kind::Int(65536, 65536)),
    ("kernel/overflowgid", "65534", Kind::Int(0, 65535)),
    ("kernel/overflowuid", "65534", Kind::Int(0, 65535)),
    (
        "kernel/panic",
        "0",
        Kind::Int(i32::MIN as i64, i32::MAX as i64),
    ),
    ("kernel/perf_event_paranoid", "2", Kind::Int(-1, 4)),
    ("kernel/pid_max", "4194304", Kind::Int(301, 4_194_304)),
    ("kernel/randomize_va_space", "2", Kind::Int(0, 2)),
    ("kernel/sched_child_runs_first", "0", Kind::Int(0, 1)),
    ("kernel/sem", "32000\t1024000000\t500\t32000", Kind::Ints(4)),
    ("kernel/sem_next_id", "-1", Kind::Int(-1, i32::MAX as i64)),
    ("kernel/shm_next_id", "-1", Kind::Int(-1, i32::MAX as i64)),
    ("kernel/shmall", "18446744073692774399", Kind::U64),
    ("kernel/shmmax", "18446744073692774399", Kind::U64),
    ("kernel/shmmni", "4096", Kind::Int(0, 32768)),
    ("kernel/tainted", "0", Kind::U64),
    ("kernel/threads-max", "254790", Kind::Int(20, 1_073_741_823)),
    // The groups that may make ICMP echo sockets: every group, as container engines set
    // it for a container (Linux's own default, "1 0", allows none).
    ("net/ipv4/ping_group_range", "0\t2147483647", Kind::Ints(2)),
    ("vm/dirty_ratio", "20", Kind::Int(0, 100)),
    ("vm/drop_caches", "0", Kind::Int(1, 4)),
    ("vm/max_map_count", "65530", Kind::Int(0, i32::MAX as i64)),
    ("vm/min_free_kbytes", "67584", Kind::Int(0, i32::MAX as i64)),
    ("vm/mmap_min_addr", "65536", Kind::U64),
    ("vm/overcommit_kbytes", "0", Kind::U64),
    ("vm/overcommit_memory", "0", Kind::Int(0, 2)),
    ("vm/overcommit_ratio", "50", Kind::Int(0, i32::MAX as i64)),
    ("vm/swappiness", "60", Kind::Int(0, 200)),
];

/// The values of one sandbox.
#[derive(Debug)]
pub struct Sysctls {
    values: Mutex<BTreeMap<&'static str, String>>,
}

impl Default for Sysctls {
    fn default() -> Self {
        Sysctls {
            values: Mutex::new(
                TABLE
                    .iter()
                    .map(|(k, v, _)| (*k, (*v).to_string()))
                    .collect(),
            ),
        }
    }
}

impl Sysctls {
    /// The names (paths below `/proc/sys`) of every value.
    pub fn names() -> impl Iterator<Item = &'static str> {
        TABLE.iter().map(|(k, _, _)| *k)
    }

    /// The current text of `name` (without a newline).
    pub fn get(&self, name: &str) -> Option<String> {
        self.lock().get(name).cloned()
    }

    /// The current value of integer `name` (0 if it is not a number).
    pub fn get_int(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Sets `name` from what a program wrote: `EINVAL` if it does not parse or is out of
    /// range, `ENOENT` for an unknown name.
    pub fn set(&self, name: &str, written: &[u8]) -> Result<(), Errno> {
        let (key, _, kind) = TABLE
            .iter()
            .find(|(k, _, _)| *k == name)
            .ok_or(Errno::ENOENT)?;
        let text = std::str::from_utf8(written).map_err(|_| Errno::EINVAL)?;
        let value = match *kind {
            Kind::Int(min, max) => {
                let v: i64 = text.trim().parse().map_err(|_| Errno::EINVAL)?;
                if v < min || v > max {
                    return Err(Errno::EINVAL);
                }
                v.to_string()
            }
            Kind::U64 => text
                .trim()
                .parse::<u64>()
                .map_err(|_| Errno::EINVAL)?
                .to_string(),
            Kind::Text(max) => {
                let t = text.strip_suffix('\n').unwrap_or(text);
                if t.len() > max {
                    return Err(Errno::EINVAL);
                }
                t.to_string()
            }
            Kind::Ints(n) => {
                let v: Vec<i64> = text
                    .split_whitespace()
                    .map(|w| w.parse().map_err(|_| Errno::EINVAL))
                    .collect::<Result<_, _>>()?;
                if v.len() != n {
                    return Err(Errno::EINVAL);
                }
                v.iter().map(i64::to_string).collect::<Vec<_>>().join("\t")
            }
        };
        self.lock().insert(key, value);
        Ok(())
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.values.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_and_private() {
        let a = Sysctls::default();
        let b = Sysctls::default();
        assert_eq!(a.get_int("kernel/pid_max"), 4_194_304);
        a.set("kernel/pid_max", b"32768\n").unwrap();
        assert_eq!(a.get("kernel/pid_max").as_deref(), Some("32768"));
        assert_eq!(b.get_int("kernel/pid_max"), 4_194_304, "per sandbox");
        assert_eq!(a.set("kernel/pid_max", b"100"), Err(Errno::EINVAL));
        assert_eq!(a.set("kernel/pid_max", b"x"), Err(Errno::EINVAL));
        assert_eq!(a.set("vm/overcommit_memory", b"3"), Err(Errno::EINVAL));
        a.set("kernel/core_pattern", b"|/bin/false %p\n").unwrap();
        assert_eq!(
            a.get("kernel/core_pattern").as_deref(),
            Some("|/bin/false %p")
        );
        a.set("kernel/sem", b"1 2 3 4\n").unwrap();
        assert_eq!(a.get("kernel/sem").as_deref(), Some("1\t2\t3\t4"));
        assert_eq!(a.set("kernel/sem", b"1 2"), Err(Errno::EINVAL));
        assert_eq!(a.set("no/such", b"1"), Err(Errno::ENOENT));
    }
}
