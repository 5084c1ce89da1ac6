//! The kernel core: the [`Kernel`] (global state), thread groups, tasks, credentials and
//! the task loop.
//!
//! Each application thread is a [`Task`] driven by its own host thread (see [`task`]):
//! it switches into the application through the platform [`platform::Context`] and handles
//! the trap (system call, fault, signal, interrupt). A [`ThreadGroup`] is a process: its
//! tasks share the memory manager, signal actions, resource limits and exit status.

mod creds;
mod signal;
pub mod task;
mod thread_group;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Instant, SystemTime};

use linux_abi::Errno;
use platform::Platform;

pub use creds::{Credentials, NGROUPS_MAX};
pub use signal::{SigAction, SigAltStack, SigSet};
pub use task::{ExecSource, Task};
pub use thread_group::{RLIM_INFINITY, RLIM_NLIMITS, Rlimit, ThreadGroup};

use crate::mm::MemoryManager;
use crate::{ExitStatus, SandboxConfig, SentryError};

/// The release string `uname` reports. Like gVisor, the sandbox claims a fixed, old-enough
/// release that glibc and musl accept, independent of the host kernel.
pub const UTS_RELEASE: &str = "4.4.0";
/// The version string `uname` reports.
pub const UTS_VERSION: &str = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

#[derive(Debug, Default)]
struct Tables {
    next_pid: i32,
    tasks: BTreeMap<i32, Weak<Task>>,
    groups: BTreeMap<i32, Weak<ThreadGroup>>,
}

/// The global state of one sandbox.
#[derive(Debug)]
pub struct Kernel {
    platform: Arc<dyn Platform>,
    tables: Mutex<Tables>,
    hostname: Mutex<String>,
    domainname: Mutex<String>,
    boot_instant: Instant,
    boot_realtime: SystemTime,
    strace: bool,
    exec_source: Mutex<Option<Arc<dyn ExecSource>>>,
}

impl Kernel {
    /// Creates a kernel on `platform` with host name `hostname`.
    pub fn new(platform: Arc<dyn Platform>, hostname: &str, strace: bool) -> Arc<Kernel> {
        Arc::new(Kernel {
            platform,
            tables: Mutex::new(Tables {
                next_pid: 1,
                ..Default::default()
            }),
            hostname: Mutex::new(hostname.to_string()),
            domainname: Mutex::new("(none)".to_string()),
            boot_instant: Instant::now(),
            boot_realtime: SystemTime::now(),
            strace,
            exec_source: Mutex::new(None),
        })
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The platform that runs application code.
    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.platform
    }

    /// Whether `--strace` output is on.
    pub fn strace(&self) -> bool {
        self.strace
    }

    /// The host name (`uname().nodename`).
    pub fn hostname(&self) -> String {
        self.hostname
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the host name.
    pub fn set_hostname(&self, name: String) {
        *self.hostname.lock().unwrap_or_else(|p| p.into_inner()) = name;
    }

    /// The NIS domain name (`uname().domainname`).
    pub fn domainname(&self) -> String {
        self.domainname
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the NIS domain name.
    pub fn set_domainname(&self, name: String) {
        *self.domainname.lock().unwrap_or_else(|p| p.into_inner()) = name;
    }

    /// When the kernel started (for `CLOCK_MONOTONIC`/`BOOTTIME` and uptime).
    pub fn boot_instant(&self) -> Instant {
        self.boot_instant
    }

    /// The wall-clock time the kernel started.
    pub fn boot_realtime(&self) -> SystemTime {
        self.boot_realtime
    }

    /// Sets how the loader opens executables (the VFS, or a test source).
    pub fn set_exec_source(&self, src: Arc<dyn ExecSource>) {
        *self.exec_source.lock().unwrap_or_else(|p| p.into_inner()) = Some(src);
    }

    /// How the loader opens executables.
    pub fn exec_source(&self) -> Result<Arc<dyn ExecSource>, Errno> {
        self.exec_source
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(Errno::ENOENT)
    }

    /// Allocates a fresh thread id (the first is 1).
    pub(crate) fn alloc_tid(&self) -> i32 {
        let mut t = self.tables();
        let mut id = t.next_pid;
        while t.tasks.contains_key(&id) || t.groups.contains_key(&id) {
            id = if id >= (1 << 22) { 2 } else { id + 1 };
        }
        t.next_pid = if id >= (1 << 22) { 2 } else { id + 1 };
        id
    }

    pub(crate) fn register_task(&self, t: &Arc<Task>) {
        let mut tb = self.tables();
        tb.tasks.insert(t.tid(), Arc::downgrade(t));
        if t.tid() == t.tgid() {
            tb.groups.insert(t.tgid(), Arc::downgrade(t.thread_group()));
        }
    }

    pub(crate) fn unregister_task(&self, tid: i32) {
        self.tables().tasks.remove(&tid);
    }

    pub(crate) fn unregister_group(&self, tgid: i32) {
        self.tables().groups.remove(&tgid);
    }

    /// The task with thread id `tid`, if alive.
    pub fn task(&self, tid: i32) -> Option<Arc<Task>> {
        self.tables().tasks.get(&tid).and_then(Weak::upgrade)
    }

    /// The thread group with id `tgid`, if alive.
    pub fn thread_group(&self, tgid: i32) -> Option<Arc<ThreadGroup>> {
        self.tables().groups.get(&tgid).and_then(Weak::upgrade)
    }

    /// The ids of all live thread groups (processes), ascending.
    pub fn pids(&self) -> Vec<i32> {
        self.tables().groups.keys().copied().collect()
    }

    /// The number of live tasks.
    pub fn task_count(&self) -> usize {
        self.tables().tasks.len()
    }
}

/// Builds a kernel for `config`, starts PID 1 and waits for it to end.
pub(crate) fn run_sandbox(
    platform: Arc<dyn Platform>,
    config: SandboxConfig,
) -> Result<ExitStatus, SentryError> {
    if config.argv.is_empty() {
        return Err(SentryError::Config("empty argv"));
    }
    if !config.cwd.starts_with('/') {
        return Err(SentryError::Config("cwd must be absolute"));
    }
    let kernel = Kernel::new(platform, &config.hostname, config.strace);
    let creds = Credentials::new(config.uid, config.gid);
    let init = Task::new_init(&kernel, creds, &config)?;
    start_init(&kernel, init, &config.argv, &config.envp)
}

/// Loads `argv[0]` into `init`, runs it on its own host thread and waits for the thread
/// group to end.
pub(crate) fn start_init(
    kernel: &Arc<Kernel>,
    init: Arc<Task>,
    argv: &[String],
    envp: &[String],
) -> Result<ExitStatus, SentryError> {
    let path = argv.first().cloned().unwrap_or_default();
    let argv_b: Vec<Vec<u8>> = argv.iter().map(|s| s.as_bytes().to_vec()).collect();
    let envp_b: Vec<Vec<u8>> = envp.iter().map(|s| s.as_bytes().to_vec()).collect();
    init.execve(path.as_bytes(), argv_b, envp_b)
        .map_err(|errno| SentryError::Exec {
            path: path.clone(),
            errno,
        })?;
    let tg = init.thread_group().clone();
    task::spawn(init).map_err(SentryError::Thread)?;
    let status = tg.wait_exit();
    tracing::info!(?status, tasks = kernel.task_count(), "PID 1 exited");
    Ok(status)
}

/// Creates the memory manager of a fresh process on the kernel's platform.
pub(crate) fn new_mm(kernel: &Kernel) -> Result<Arc<MemoryManager>, Errno> {
    MemoryManager::new(kernel.platform().as_ref())
        .map(Arc::new)
        .map_err(|e| {
            tracing::error!("creating an address space: {e}");
            Errno::ENOMEM
        })
}
