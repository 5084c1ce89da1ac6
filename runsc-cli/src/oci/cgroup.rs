//! The spec's `linux.cgroupsPath` and `linux.resources`: the container's host processes
//! (supervisor, Gofers, sandbox) live in that cgroup, whose memory, CPU and pids limits
//! the host enforces. Cgroup v1 controllers are used where they are mounted (a hybrid
//! host: `memory`, `cpu`, `cpuset`, `pids` below `/sys/fs/cgroup`), cgroup v2 otherwise.
//!
//! Inside, the limits are where programs look: the memory limit is `/proc/meminfo`'s
//! total (the Sentry is told), and the CPU count (quota / period rounded up, or the
//! cpuset's size) is the sandbox's affinity, which `sched_getaffinity`, `nproc` and
//! `/sys/devices/system/cpu/online` report.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::OciError;

/// Where cgroup file systems are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers a container's processes are put in.
const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "cpuset", "pids"];

/// A container's cgroup and its limits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// Limits were asked for: failing to set them up fails the container.
    pub limited: bool,
    /// The path below each hierarchy's root, starting with `/`.
    pub path: String,
    /// `memory.limit` in bytes.
    pub memory: Option<u64>,
    /// `cpu.quota` in microseconds per `period`.
    pub cpu_quota: Option<i64>,
    /// `cpu.period` in microseconds.
    pub cpu_period: Option<u64>,
    /// `cpu.shares`.
    pub cpu_shares: Option<u64>,
    /// `cpu.cpus` (a cpuset list such as `0-1,3`).
    pub cpus: Option<String>,
    /// `pids.limit`.
    pub pids: Option<i64>,
}

/// The cgroup of `spec` for container `id`: `cgroupsPath` (`/a/b`, or systemd's
/// `slice:prefix:name` with `--systemd-cgroup`, mapped as runc's cgroupfs driver maps it),
/// or `/runsc/<id>` without one when the spec sets limits. `None` without either.
pub fn from_spec(spec: &Spec, id: &str, systemd: bool) -> Result<Option<Cgroup>, OciError> {
    let Some(linux) = spec.linux() else {
        return Ok(None);
    };
    let raw = linux
        .cgroups_path()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    let limited = linux.resources().as_ref().is_some_and(|r| {
        r.memory()
            .as_ref()
            .and_then(|m| m.limit())
            .is_some_and(|l| l > 0)
            || r.cpu()
                .as_ref()
                .is_some_and(|c| c.quota().is_some_and(|q| q > 0) || c.cpus().is_some())
            || r.pids().as_ref().is_some_and(|p| p.limit() > 0)
    });
    let path = match raw {
        None if !limited => return Ok(None),
        None => format!("/runsc/{id}"),
        Some(p) if systemd || (!p.starts_with('/') && p.matches(':').count() == 2) => {
            let parts: Vec<&str> = p.split(':').collect();
            let [slice, prefix, name] = parts[..] else {
                return Err(OciError::new(format!(
                    "linux.cgroupsPath {p:?}: expected slice:prefix:name"
                )));
            };
            let slice = if slice.is_empty() {
                "system.slice"
            } else {
                slice
            };
            format!("/{slice}/{prefix}-{name}.scope")
        }
        Some(p) if p.starts_with('/') => p,
        Some(p) => format!("/{p}"),
    };
    if path.split('/').any(|c| c == ".." || c == ".") {
        return Err(OciError::new(format!(
            "linux.cgroupsPath {path:?} must not contain . or .."
        )));
    }
    let mut cg = Cgroup {
        path,
        limited,
        ..Cgroup::default()
    };
    if let Some(r) = linux.resources() {
        if let Some(m) = r.memory() {
            cg.memory = match m.limit() {
                Some(l) if l > 0 => Some(l as u64),
                Some(l) if l != -1 && l != 0 => {
                    return Err(OciError::new(format!(
                        "linux.resources.memory.limit {l} is invalid"
                    )));
                }
                _ => None,
            };
        }
        if let Some(c) = r.cpu() {
            cg.cpu_quota = c.quota().filter(|q| *q > 0);
            cg.cpu_period = c.period().filter(|p| *p > 0);
            cg.cpu_shares = c.shares().filter(|s| *s > 0);
            cg.cpus = c.cpus().clone().filter(|s| !s.is_empty());
        }
        if let Some(p) = r.pids() {
            cg.pids = Some(p.limit()).filter(|l| *l > 0);
        }
    }
    if let Some(c) = &cg.cpus {
        parse_cpu_list(c).ok_or_else(|| {
            OciError::new(format!("linux.resources.cpu.cpus {c:?} is not a CPU list"))
        })?;
    }
    Ok(Some(cg))
}

/// The CPUs of a list such as `0-2,5`.
pub fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b >= 4096 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => {
                let c: usize = part.parse().ok()?;
                if c >= 4096 {
                    return None;
                }
                out.push(c);
            }
        }
    }
    Some(out)
}

fn write(dir: &Path, file: &str, value: &str) -> Result<(), OciError> {
    std::fs::write(dir.join(file), value)
        .map_err(|e| OciError::new(format!("cgroup {}: {e}", dir.join(file).display())))
}

/// Whether the v1 `controller` hierarchy is mounted.
fn v1(controller: &str) -> Option<PathBuf> {
    let p = Path::new(CGROUP_ROOT).join(controller);
    p.join("cgroup.procs").exists().then_some(p)
}

/// The directories of the container's cgroup (v1 controllers, or the v2 one).
fn dirs(cg: &Cgroup) -> Vec<(String, PathBuf)> {
    let rel = cg.path.trim_start_matches('/');
    let v1: Vec<(String, PathBuf)> = V1_CONTROLLERS
        .iter()
        .filter_map(|c| v1(c).map(|root| (c.to_string(), root.join(rel))))
        .collect();
    if !v1.is_empty() {
        return v1;
    }
    let unified = Path::new(CGROUP_ROOT);
    if unified.join("cgroup.controllers").exists() {
        return vec![("unified".into(), unified.join(rel))];
    }
    Vec::new()
}

impl Cgroup {
    /// Creates the cgroup, sets its limits and moves the calling process into it (its
    /// children to come follow). Called by the supervisor before it starts anything.
    pub fn enter(&self) -> Result<(), OciError> {
        let dirs = dirs(self);
        if dirs.is_empty() {
            return Err(OciError::new("no cgroup file system is mounted"));
        }
        let me = std::process::id().to_string();
        for (ctrl, dir) in &dirs {
            std::fs::create_dir_all(dir)
                .map_err(|e| OciError::new(format!("cgroup {}: {e}", dir.display())))?;
            match ctrl.as_str() {
                "memory" => {
                    if let Some(m) = self.memory {
                        write(dir, "memory.limit_in_bytes", &m.to_string())?;
                    }
                }
                "cpu" => {
                    if let Some(p) = self.cpu_period {
                        write(dir, "cpu.cfs_period_us", &p.to_string())?;
                    }
                    if let Some(q) = self.cpu_quota {
                        write(dir, "cpu.cfs_quota_us", &q.to_string())?;
                    }
                    if let Some(s) = self.cpu_shares {
                        write(dir, "cpu.shares", &s.to_string())?;
                    }
                }
                "cpuset" => {
                    // A new cpuset is empty, and its children can only have what it has:
                    // each level made here gets its parent's CPUs and memory nodes, the
                    // container's own level the spec's CPUs.
                    let root = Path::new(CGROUP_ROOT).join("cpuset");
                    let mut level = root.clone();
                    for comp in self.path.split('/').filter(|c| !c.is_empty()) {
                        level.push(comp);
                        for file in ["cpuset.cpus", "cpuset.mems"] {
                            let cur = std::fs::read_to_string(level.join(file)).unwrap_or_default();
                            if cur.trim().is_empty() {
                                write(&level, file, &inherited(&level, file))?;
                            }
                        }
                    }
                    if let Some(c) = &self.cpus {
                        write(dir, "cpuset.cpus", c)?;
                    }
                }
                "pids" => {
                    if let Some(p) = self.pids {
                        write(dir, "pids.max", &p.to_string())?;
                    }
                }
                "unified" => {
                    if let Some(m) = self.memory {
                        write(dir, "memory.max", &m.to_string())?;
                    }
                    if let Some(q) = self.cpu_quota {
                        let period = self.cpu_period.unwrap_or(100_000);
                        write(dir, "cpu.max", &format!("{q} {period}"))?;
                    }
                    if let Some(c) = &self.cpus {
                        write(dir, "cpuset.cpus", c)?;
                    }
                    if let Some(p) = self.pids {
                        write(dir, "pids.max", &p.to_string())?;
                    }
                }
                _ => {}
            }
            write(dir, "cgroup.procs", &me)?;
        }
        Ok(())
    }

    /// The number of CPUs the limits leave: quota / period rounded up, at most the
    /// cpuset's CPUs; `None` without a CPU limit.
    pub fn cpu_count(&self) -> Option<usize> {
        let by_quota = self.cpu_quota.map(|q| {
            let period = self.cpu_period.unwrap_or(100_000).max(1);
            (q as u64).div_ceil(period).max(1) as usize
        });
        let by_set = self
            .cpus
            .as_deref()
            .and_then(parse_cpu_list)
            .map(|l| l.len().max(1));
        match (by_quota, by_set) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Removes the cgroup's directories (once its processes are gone); errors are
    /// ignored, as a directory still in use cannot go.
    pub fn remove(&self) {
        for (_, dir) in dirs(self) {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// The value of `file` in the nearest ancestor of `dir` that has one set.
fn inherited(dir: &Path, file: &str) -> String {
    let mut cur = dir.parent();
    while let Some(d) = cur {
        if let Ok(v) = std::fs::read_to_string(d.join(file))
            && !v.trim().is_empty()
        {
            return v.trim().to_string();
        }
        cur = d.parent();
    }
    String::new()
}

/// Restricts the calling process (and what it starts) to `n` of the CPUs it may use now.
pub fn limit_affinity(n: usize) -> Result<(), OciError> {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;
    let cur = sched_getaffinity(Pid::from_raw(0))
        .map_err(|e| OciError::new(format!("sched_getaffinity: {e}")))?;
    let mut set = CpuSet::new();
    let mut taken = 0;
    for c in 0..CpuSet::count() {
        if taken == n {
            break;
        }
        if cur.is_set(c).unwrap_or(false) {
            let _ = set.set(c);
            taken += 1;
        }
    }
    if taken == 0 {
        return Ok(());
    }
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|e| OciError::new(format!("sched_setaffinity: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_counts() {
        assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("3"), Some(vec![3]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        let cg = Cgroup {
            cpu_quota: Some(150_000),
            cpu_period: Some(100_000),
            ..Cgroup::default()
        };
        assert_eq!(cg.cpu_count(), Some(2));
        let cg = Cgroup {
            cpu_quota: Some(150_000),
            cpus: Some("0".into()),
            ..Cgroup::default()
        };
        assert_eq!(cg.cpu_count(), Some(1));
        assert_eq!(Cgroup::default().cpu_count(), None);
    }
}
