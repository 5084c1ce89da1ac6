//! Container state under `--root`: one directory per container ID holding
//!
//! - `state.json`: what `create` learnt (bundle, supervisor pid and its start time,
//!   creation time, annotations, the process of `config.json` for `exec`), written
//!   atomically once the sandbox is ready;
//! - `control.sock`: the sandbox's control socket;
//! - `exit.json`: the first process's exit status, written atomically by the supervisor
//!   when the sandbox ends.
//!
//! The status (`created`, `running`, `paused`, `stopped`) is never stored: it is asked of
//! the sandbox, and a sandbox that does not answer is stopped.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::OciError;
use super::proto::{self, InitStatus, Reply, Request};

/// The state file.
pub const STATE_FILE: &str = "state.json";
/// The control socket.
pub const CONTROL_SOCKET: &str = "control.sock";
/// The exit status file.
pub const EXIT_FILE: &str = "exit.json";

/// What `create` stores.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stored {
    /// The container ID.
    pub id: String,
    /// The bundle directory (absolute).
    pub bundle: PathBuf,
    /// The root file system (absolute).
    pub rootfs: PathBuf,
    /// Host pid of the supervisor (the pid in `--pid-file`).
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22), to tell it
    /// from a later process that reuses the pid.
    pub pid_start: u64,
    /// RFC 3339 creation time.
    pub created: String,
    /// The spec's annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// The spec's process (the base of `exec` with arguments).
    pub process: Option<oci_spec::runtime::Process>,
    /// The uid of whoever created it.
    pub owner_uid: u32,
    /// The spec's hooks (`start` and `delete` run theirs).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's cgroup (removed by `delete`).
    #[serde(default)]
    pub cgroup: Option<super::cgroup::Cgroup>,
    /// For a container of a pod: the id of the pod's sandbox (root) container, in whose
    /// sandbox it runs.
    #[serde(default)]
    pub sandbox: Option<String>,
}

/// The status of a container, as the runtime spec names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Running, frozen by `pause`.
    Paused,
    /// Ended (or its sandbox is gone).
    Stopped,
}

impl Status {
    /// The spec's name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Checks a container ID the way runc does: not empty, no path separators, only
/// `[A-Za-z0-9_+.-]`, and not `.` or `..`.
pub fn check_id(id: &str) -> Result<(), OciError> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(OciError::new(format!("invalid container id {id:?}")))
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsynced,
/// renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// The start time of host process `pid` (clock ticks since boot), if it exists.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the supervisor recorded in `s` still runs (and is not a zombie).
pub fn supervisor_alive(s: &Stored) -> bool {
    if pid_start_time(s.pid) != Some(s.pid_start) {
        return false;
    }
    std::fs::read_to_string(format!("/proc/{}/stat", s.pid))
        .ok()
        .and_then(|st| {
            st.rfind(')')
                .and_then(|i| st[i + 1..].split_whitespace().next().map(str::to_owned))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

/// A container's state directory.
#[derive(Clone, Debug)]
pub struct Container {
    /// The ID.
    pub id: String,
    /// `<root>/<id>`.
    pub dir: PathBuf,
}

impl Container {
    /// The container `id` under `root` (not checked for existence).
    pub fn at(root: &Path, id: &str) -> Result<Container, OciError> {
        check_id(id)?;
        Ok(Container {
            id: id.to_owned(),
            dir: root.join(id),
        })
    }

    /// The existing container `id`, or "does not exist".
    pub fn open(root: &Path, id: &str) -> Result<Container, OciError> {
        let c = Container::at(root, id)?;
        if !c.dir.is_dir() {
            return Err(OciError::new(format!("container {id} does not exist")));
        }
        Ok(c)
    }

    /// The control socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(CONTROL_SOCKET)
    }

    /// Reads `state.json`; a missing or unreadable one is a stale directory.
    pub fn stored(&self) -> Result<Stored, OciError> {
        let bytes = std::fs::read(self.dir.join(STATE_FILE)).map_err(|_| {
            OciError::new(format!(
                "container {}: no state (stale state directory; `delete --force {}` removes it)",
                self.id, self.id
            ))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            OciError::new(format!(
                "container {}: corrupt state ({e}); `delete --force {}` removes it",
                self.id, self.id
            ))
        })
    }

    /// Stores `s` atomically.
    pub fn store(&self, s: &Stored) -> Result<(), OciError> {
        let bytes = serde_json::to_vec_pretty(s).map_err(|e| OciError::new(e.to_string()))?;
        write_atomic(&self.dir.join(STATE_FILE), &bytes)
            .map_err(|e| OciError::new(format!("write state of {}: {e}", self.id)))
    }

    /// The exit status the supervisor recorded, if any.
    pub fn recorded_exit(&self) -> Option<i32> {
        let bytes = std::fs::read(self.dir.join(EXIT_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        v.get("status")?.as_i64().map(|s| s as i32)
    }

    /// Connects to the sandbox; `None` when it does not answer.
    pub fn connect(&self) -> Option<std::os::fd::OwnedFd> {
        proto::connect_to(&self.socket()).ok()
    }

    /// Asks the sandbox one question on a fresh connection; `None` when it does not answer.
    pub fn ask(&self, req: &Request) -> Option<Reply> {
        use std::os::fd::AsFd;
        let sock = match proto::connect_to(&self.socket()) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("connect to the sandbox: {e}");
                return None;
            }
        };
        match proto::call(sock.as_fd(), req, &[]) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::debug!("ask the sandbox: {e}");
                None
            }
        }
    }

    /// The live status and, once stopped, the exit status.
    pub fn status(&self, s: &Stored) -> (Status, Option<i32>) {
        if supervisor_alive(s)
            && let Some(Reply::State { status, exit }) = self.ask(&Request::State)
        {
            let st = match status {
                InitStatus::Created => Status::Created,
                InitStatus::Running => Status::Running,
                InitStatus::Paused => Status::Paused,
                InitStatus::Stopped => Status::Stopped,
            };
            return (st, exit);
        }
        (Status::Stopped, self.recorded_exit())
    }
}

/// The current time in RFC 3339 (UTC, nanoseconds), as runc writes `created`.
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_like_runc() {
        for ok in ["a", "abc-1_2.3+4", "X"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "é", "../x"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let s = now_rfc3339();
        assert_eq!(s.len(), 30, "{s}");
        assert!(s.ends_with('Z'));
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").expect("write");
        write_atomic(&p, b"two").expect("write");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readdir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn our_own_start_time_is_readable() {
        let me = std::process::id() as i32;
        assert!(pid_start_time(me).is_some());
        assert!(pid_start_time(-5).is_none());
    }
}
