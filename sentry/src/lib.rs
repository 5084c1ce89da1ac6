//! The rsentry kernel: tasks, memory manager, loader, VFS and system calls.
//!
//! The Sentry runs an unmodified Linux x86-64 program on top of any [`platform::Platform`]:
//! every system call, fault and synchronous signal of the program comes back to the Sentry,
//! which emulates it. The crate is organised by subsystem:
//!
//! - [`kernel`]: the [`Kernel`], tasks ([`Task`]), thread groups, credentials and the task
//!   loop that drives a platform [`platform::Context`].
//! - `mm`: the memory manager ([`MemoryManager`]): VMAs, demand paging, copy-in/out.
//! - `loader`: ELF (static, static-PIE, dynamic with `PT_INTERP`) and `#!` loading and the
//!   initial stack.
//! - `syscalls`: the system call table, dispatch and `--strace` output.
//! - [`waiter`]: wait queues, per-task wakers and the blocking helper of every sleeping call.
//!
//! The entry point is [`run_sandbox`].

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod control;
pub mod fs;
#[allow(unsafe_code)]
mod host;
pub mod kernel;
pub(crate) mod loader;
pub(crate) mod mm;
pub(crate) mod net;
pub mod policy;
pub(crate) mod syscalls;
pub mod waiter;

#[cfg(test)]
mod testutil;

use std::os::fd::OwnedFd;
use std::sync::Arc;

pub use kernel::{Credentials, Kernel, Task, ThreadGroup};
pub use mm::MemoryManager;

/// What the runtime asks the Sentry to run.
#[derive(Debug)]
pub struct SandboxConfig {
    /// The program and its arguments, as bytes (Linux passes bytes, not UTF-8); `argv[0]`
    /// is the program path as the user typed it.
    pub argv: Vec<Vec<u8>>,
    /// The environment, as `K=V` byte strings.
    pub envp: Vec<Vec<u8>>,
    /// The initial working directory (absolute, inside the sandbox), as bytes.
    pub cwd: Vec<u8>,
    /// The user id of the first process.
    pub uid: u32,
    /// The group id of the first process.
    pub gid: u32,
    /// The sandbox host name (`uname`, `/proc/sys/kernel/hostname`).
    pub hostname: String,
    /// Host descriptors passed through as the application's fds 0, 1 and 2.
    pub stdio: [OwnedFd; 3],
    /// A lisafs socket to the Gofer serving the root (read-only lower layer); `None` gives
    /// an empty tmpfs root.
    pub gofer: Option<OwnedFd>,
    /// Print every system call and its result to the Sentry's stderr.
    pub strace: bool,
    /// More file systems, mounted before the program starts: absolute destination,
    /// source, read-only.
    pub mounts: Vec<(String, control::MountSource, bool)>,
    /// Files of the sandbox's own, written into the root's writable overlay before the
    /// program starts (absolute path, contents; mode 0644, owned by root), replacing the
    /// root file system's: a sandbox network's `/etc/hosts` and `/etc/resolv.conf`.
    pub files: Vec<(String, Vec<u8>)>,
    /// The system-call policy to enforce ([`policy`]).
    pub filter: Option<Arc<policy::Filter>>,
    /// Records every system call of the sandbox ([`policy::Recorder`]).
    pub recorder: Option<Arc<policy::Recorder>>,
    /// CPU time the whole sandbox may use (all tasks, live and finished); once spent,
    /// every process is killed and [`run_sandbox`] returns
    /// [`SentryError::CpuBudgetExceeded`].
    pub cpu_budget: Option<std::time::Duration>,
    /// The read end of the pipe on which the sandbox process's signal handler writes the
    /// keyboard signals (and `SIGWINCH`) the host sends for its terminal; they go to the
    /// console's foreground process group.
    pub console_signals: Option<OwnedFd>,
    /// `--network=host`: the application's inet sockets are host sockets made by the
    /// Sentry (the sandbox process must be in the host's network namespace, with the
    /// host-network seccomp filter).
    pub host_network: bool,
    /// `--network=sandbox`: an Ethernet link for the stack.
    pub ethernet: Option<EthernetConfig>,
    /// The sandbox's memory limit in bytes, which `/proc/meminfo` and `sysinfo(2)` report
    /// as the total ([`Kernel::set_memory_limit`]). The platform's memory file, whose
    /// capacity enforces it, must be no larger.
    pub memory_limit: Option<u64>,
}

/// An Ethernet link of the Sentry's stack (`--network=sandbox`): a packet socket bound to
/// the sandbox's end of a veth pair, and how the sandbox's `eth0` is addressed.
#[derive(Debug)]
pub struct EthernetConfig {
    /// A raw `AF_PACKET` socket on the interface (opened before the seccomp filter; the
    /// Sentry only reads and writes frames on it).
    pub packet: OwnedFd,
    /// The interface's hardware address.
    pub mac: [u8; 6],
    /// Its IPv4 address.
    pub addr: std::net::Ipv4Addr,
    /// The prefix length of the link's subnet.
    pub prefix: u8,
    /// The default gateway (the host's end), if the link has a default route.
    pub gateway: Option<std::net::Ipv4Addr>,
    /// Its IPv6 addresses with their prefix lengths (a link-local one is made from the
    /// hardware address when none of them is link-local).
    pub addrs6: Vec<(std::net::Ipv6Addr, u8)>,
    /// The IPv6 default gateway, if the link has an IPv6 default route.
    pub gateway6: Option<std::net::Ipv6Addr>,
}

/// How the first process of the sandbox ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit`/`exit_group` with this code.
    Exited(u8),
    /// It was killed by this signal.
    Signaled(i32),
}

impl ExitStatus {
    /// The status a shell reports: the exit code, or 128 + the signal number.
    pub fn to_shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => i32::from(c),
            ExitStatus::Signaled(s) => 128 + s,
        }
    }

    /// The `wait` status word (`WIFEXITED`/`WIFSIGNALED` encoding).
    pub fn to_wait_status(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => i32::from(c) << 8,
            ExitStatus::Signaled(s) => s & 0x7f,
        }
    }
}

/// Why the sandbox could not be started or run.
#[derive(Debug, thiserror::Error)]
pub enum SentryError {
    /// The platform failed to create an address space or context.
    #[error("platform: {0}")]
    Platform(#[from] platform::PlatformError),
    /// The root filesystem could not be set up.
    #[error("filesystem setup: {0}")]
    Filesystem(linux_abi::Errno),
    /// The program could not be loaded (missing, not executable, bad ELF...).
    #[error("cannot execute {path}: {errno}")]
    Exec {
        /// The program path.
        path: String,
        /// Why.
        errno: linux_abi::Errno,
    },
    /// The configuration is unusable (empty argv, relative cwd...).
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A host thread could not be created.
    #[error("cannot spawn a task thread: {0}")]
    Thread(std::io::Error),
    /// The sandbox's CPU budget ([`SandboxConfig::cpu_budget`]) was spent: every process
    /// was killed.
    #[error("CPU time limit of {budget:?} exceeded: every process was killed")]
    CpuBudgetExceeded {
        /// The budget.
        budget: std::time::Duration,
    },
}

/// Runs the program described by `config` in a fresh sandbox kernel on `platform` and
/// returns how its first process (PID 1) ended.
pub fn run_sandbox(
    platform: Arc<dyn platform::Platform>,
    config: SandboxConfig,
) -> Result<ExitStatus, SentryError> {
    kernel::run_sandbox(platform, config)
}
