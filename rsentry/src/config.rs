//! The choices a sandbox is made with: platform, network, bind mounts, limits, and the
//! settings every process of a sandbox shares (logging, `--strace`, test switches).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How application code is run and its system calls trapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Platform {
    /// Stub processes traced with `PTRACE_SYSEMU` (works where ptrace is allowed).
    Ptrace,
    /// A KVM virtual machine (needs `/dev/kvm`).
    Kvm,
    /// Stub processes under a seccomp filter that traps every system call (`SIGSYS`);
    /// the default: the fastest system call round trip of the three.
    #[default]
    Systrap,
}

impl Platform {
    /// The name `runsc --platform` takes.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Ptrace => "ptrace",
            Platform::Kvm => "kvm",
            Platform::Systrap => "systrap",
        }
    }
}

/// The network of a sandbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Network {
    /// No way out: the sandbox has only the Sentry's own loopback interface, and its
    /// processes run in an empty host network namespace.
    #[default]
    None,
    /// The host's network stack: the application's `AF_INET`/`AF_INET6` sockets are host
    /// sockets the Sentry makes on its behalf (gVisor's hostinet), the sandbox process
    /// stays in the host's network namespace, and its seccomp filter allows those
    /// socket calls. A server in the sandbox is reachable on the host's addresses.
    Host,
    /// The Sentry's own stack on a veth pair made for the sandbox: the host end is
    /// addressed (the first address of a /30 of 10.213.0.0/16, the sandbox's `eth0` the
    /// second, its default gateway the host end), so a server in the sandbox is reachable
    /// from the host on that address and the sandbox reaches the host's services there.
    /// Needs host root and iproute2's `ip`.
    Sandbox,
}

/// Whether a bind mount may be written through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    /// Reads only; every modification fails with `EROFS`.
    ReadOnly,
    /// Reads and writes reach the host directory.
    ReadWrite,
}

pub use Access::{ReadOnly, ReadWrite};

/// Resource limits of a sandbox. Zero means "no limit" for every field. Build it with
/// `..Default::default()` so that limits added later keep their "no limit" default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of application memory the sandbox can hold at once (anonymous memory, page
    /// cache of files, tmpfs): the capacity of the Sentry's memory file, and the total
    /// memory `/proc/meminfo` and `sysinfo(2)` report. As under a Linux memory cgroup,
    /// reserving address space is free, and a process that needs memory past the limit,
    /// touching it itself or through a system call that fills it (`read`, `mlock`,
    /// `MAP_POPULATE`, a tmpfs write), is killed with `SIGKILL` (status 128+9; one log
    /// line names its pid and command) while the other processes go on.
    pub memory: u64,
    /// CPU time the whole sandbox may use: user plus system time of all its processes,
    /// live and finished, as the Sentry charges it (time spent blocked is not charged).
    /// When it is spent every process is killed and the sandbox ends with
    /// [`Error::CpuTimeLimit`](crate::Error::CpuTimeLimit) (exit status 128+24, as a
    /// process killed by `SIGXCPU`, for `runsc do`). Enforced within about 10 ms. It is
    /// one budget for the sandbox, unlike `RLIMIT_CPU`, which programs inside can still
    /// set for themselves with Linux's per-process meaning.
    pub cpu_time: Duration,
}

/// A host directory mounted into the sandbox, served by a Gofer of its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    /// The host directory.
    pub source: PathBuf,
    /// Where it appears inside the sandbox (absolute).
    pub target: String,
    /// Read-only or read-write.
    pub access: Access,
}

/// Where a debug build makes a sandbox panic on purpose (tests of the panic policy only).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DebugPanic {
    /// The Sentry panics in the task loop when the application calls `sync(2)`.
    Sentry,
    /// The Gofer panics when asked to walk to [`gofer::DEBUG_PANIC_NAME`].
    Gofer,
}

impl DebugPanic {
    /// The system call that makes the Sentry panic under `--debug-panic=sentry`.
    pub const SENTRY_SYSCALL: u64 = libc::SYS_sync as u64;
}

/// Settings shared by every process of one sandbox (the monitor, the Gofers, the
/// sandbox process), handed down from the process that starts it.
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Prefix of error lines (`runsc`, or `rsentry` for library users).
    pub name: String,
    /// The platform.
    pub platform: Platform,
    /// Debug logging.
    pub debug: bool,
    /// A debug log per process in this directory (implies `debug`).
    pub debug_log: Option<PathBuf>,
    /// Log to this file (appended) instead of standard error.
    pub log: Option<PathBuf>,
    /// Log lines as JSON.
    pub log_json: bool,
    /// Print every application system call.
    pub strace: bool,
    /// Names the logs of this sandbox under `debug_log`.
    pub sandbox_id: Option<String>,
    /// Testing only: panic on purpose.
    pub debug_panic: Option<DebugPanic>,
    /// The network (the sandbox process's namespaces and seccomp filter depend on it).
    #[serde(default)]
    pub network: Network,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            name: "rsentry".into(),
            platform: Platform::default(),
            debug: false,
            debug_log: None,
            log: None,
            log_json: false,
            strace: false,
            sandbox_id: None,
            debug_panic: None,
            network: Network::None,
        }
    }
}
