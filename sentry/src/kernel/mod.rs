//! The kernel core: the [`Kernel`] (global state), thread groups, tasks, credentials and
//! the task loop.
//!
//! Each application thread is a [`Task`] driven by its own host thread (see `task`):
//! it switches into the application through the platform [`platform::Context`] and handles
//! the trap (system call, fault, signal, interrupt). A [`ThreadGroup`] is a process: its
//! tasks share the memory manager, signal actions, resource limits and exit status.

pub mod cpu;
mod creds;
pub mod fasync;
mod freeze;
mod fs_glue;
mod futex;
pub(crate) mod ipc;
mod limits;
pub(crate) mod pidfd;
pub(crate) mod process;
pub(crate) mod sched;
pub(crate) mod sigframe;
pub(crate) mod signal;
pub mod sysctl;
pub(crate) mod task;
mod thread_group;
pub mod timer;
mod vsyscall;

use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Instant, SystemTime};

use linux_abi::Errno;
use platform::Platform;

use crate::fs::{FdTable, Vfs};

pub use creds::{
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_IPC_LOCK,
    CAP_KILL, CAP_LEASE, CAP_NET_BIND_SERVICE, CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_NICE,
    CAP_SYS_RESOURCE,
};
pub use creds::{
    CAP_FULL_SET, CAP_LAST_CAP, CAP_MKNOD, CAP_NAMES, CAP_SETPCAP, Credentials, NGROUPS_MAX,
    cap_from_name,
};
pub use fs_glue::VfsExec;
pub use futex::{FUTEX_BITSET_MATCH_ANY, Futexes};
pub use signal::{SigAction, SigAltStack, SigSet};
pub use task::{ExecImage, ExecSource, Task};
pub use thread_group::JobState;
pub use thread_group::{RLIM_INFINITY, RLIM_NLIMITS, Rlimit, ThreadGroup};

use crate::mm::MemoryManager;
use crate::{ExitStatus, SandboxConfig, SentryError};

/// The release string `uname` reports. Like gVisor, the sandbox claims a fixed release,
/// independent of the host kernel, that glibc and musl accept (also `/proc/sys/kernel/osrelease`).
pub const UTS_RELEASE: &str = "5.15.0-rsentry";
/// The version string `uname` reports.
pub const UTS_VERSION: &str = "#1 SMP rsentry";

/// One flag per system call number (plus one for every out-of-range number): whether the
/// kernel has logged it as unimplemented, so that it logs each once.
#[derive(Debug)]
pub(crate) struct WarnedOnce(Box<[std::sync::atomic::AtomicBool]>);

impl Default for WarnedOnce {
    fn default() -> Self {
        let n = linux_abi::sysno::SYSCALL_COUNT as usize + 1;
        WarnedOnce((0..n).map(|_| Default::default()).collect())
    }
}

impl WarnedOnce {
    /// True the first time it is asked about `nr`.
    pub(crate) fn first(&self, nr: u64) -> bool {
        let last = self.0.len() - 1;
        let i = usize::try_from(nr).map_or(last, |i| i.min(last));
        !self.0[i].swap(true, std::sync::atomic::Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Tables {
    next_pid: i32,
    tasks: BTreeMap<i32, Weak<Task>>,
    groups: BTreeMap<i32, Weak<ThreadGroup>>,
}

/// The global state of one sandbox.
pub struct Kernel {
    platform: Arc<dyn Platform>,
    tables: Mutex<Tables>,
    hostname: Mutex<String>,
    domainname: Mutex<String>,
    boot_instant: Instant,
    boot_realtime: SystemTime,
    /// `/proc/sys/kernel/random/boot_id`, drawn once at boot.
    boot_id: String,
    strace: bool,
    strace_out: Mutex<Option<Box<dyn std::io::Write + Send>>>,
    vfs: Arc<Vfs>,
    exec_source: Mutex<Arc<dyn ExecSource>>,
    futexes: Futexes,
    /// System V IPC objects.
    ipc: ipc::IpcNamespace,
    /// Names of bound Unix sockets (abstract and filesystem).
    unix_names: Arc<crate::fs::socket::SocketNames>,
    /// Serialises making an exited child collectable against `wait` (see
    /// `process::exit_notify_lock`).
    exit_notify: parking_lot::Mutex<()>,
    /// The sandbox's `/proc/sys` values.
    sysctls: sysctl::Sysctls,
    /// Which unimplemented system calls have been logged.
    unimplemented: WarnedOnce,
    /// The timer thread (timerfd expirations).
    timers: Arc<crate::waiter::TimerQueue>,
    ncpus: usize,
    /// Host threads of tasks other than PID 1's first, joined when the sandbox ends.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The network stack of the sandbox.
    net: Arc<crate::net::Stack>,
    /// `--network=host`: the host network the application's inet sockets live on.
    hostnet: std::sync::OnceLock<Arc<crate::net::hostinet::HostNet>>,
    /// Every application task is held before it returns to the application (`pause`).
    frozen: std::sync::atomic::AtomicBool,
    /// The sandbox's memory limit in bytes (`u64::MAX`: none), shown by `/proc/meminfo`.
    memory_limit: std::sync::atomic::AtomicU64,
    /// System-call profile or seccomp policy, and recording.
    policy: crate::policy::KernelPolicy,
    /// CPU accounting of the whole sandbox ([`cpu`]).
    pub(crate) cpu: cpu::KernelCpu,
    /// Controlling terminals of processes, and the console.
    terminals: Arc<crate::fs::tty::Terminals>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("platform", &self.platform.name())
            .field("hostname", &self.hostname())
            .field("tasks", &self.task_count())
            .field("strace", &self.strace)
            .finish_non_exhaustive()
    }
}

impl Kernel {
    /// Creates a kernel on `platform` with host name `hostname` and the sandbox
    /// filesystem tree: an overlay over the Gofer's tree behind `gofer`, or a bare tmpfs
    /// when `gofer` is `None`.
    pub fn new(
        platform: Arc<dyn Platform>,
        hostname: &str,
        strace: bool,
        gofer: Option<std::os::fd::OwnedFd>,
    ) -> Result<Arc<Kernel>, SentryError> {
        crate::fs::proc::prime_host_info();
        let terminals = Arc::new(crate::fs::tty::Terminals::default());
        let vfs = Vfs::new_sandbox(platform.memory_file().clone(), gofer, terminals.clone())
            .map_err(SentryError::Filesystem)?;
        let kernel = Arc::new(Kernel {
            platform,
            tables: Mutex::new(Tables {
                next_pid: 1,
                ..Default::default()
            }),
            hostname: Mutex::new(hostname.to_string()),
            domainname: Mutex::new("(none)".to_string()),
            boot_instant: Instant::now(),
            boot_realtime: SystemTime::now(),
            boot_id: crate::fs::proc::uuid(),
            strace,
            strace_out: Mutex::new(None),
            vfs,
            exec_source: Mutex::new(Arc::new(VfsExec)),
            futexes: Futexes::default(),
            ipc: ipc::IpcNamespace::default(),
            unix_names: Arc::default(),
            exit_notify: parking_lot::Mutex::new(()),
            sysctls: sysctl::Sysctls::default(),
            timers: crate::waiter::TimerQueue::new(),
            unimplemented: WarnedOnce::default(),
            // Counted here, on the thread that builds the kernel: task threads may be
            // pinned to one CPU by the platform.
            ncpus: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(1024),
            threads: Mutex::new(Vec::new()),
            net: crate::net::Stack::new_loopback(),
            hostnet: std::sync::OnceLock::new(),
            frozen: std::sync::atomic::AtomicBool::new(false),
            memory_limit: std::sync::atomic::AtomicU64::new(u64::MAX),
            policy: crate::policy::KernelPolicy::default(),
            cpu: cpu::KernelCpu::default(),
            terminals,
        });
        let proc_source: Weak<Kernel> = Arc::downgrade(&kernel);
        kernel.vfs.set_proc_source(proc_source);
        let creators: Weak<dyn crate::fs::mqueue::Creators> = Arc::downgrade(&kernel) as _;
        kernel.ipc.mqueue().set_creators(creators);
        kernel
            .vfs
            .set_mqueue(kernel.ipc.mqueue().clone())
            .map_err(SentryError::Filesystem)?;
        let job_control: Weak<dyn crate::fs::tty::JobControl> = Arc::downgrade(&kernel) as _;
        kernel.terminals.set_job_control(job_control);
        Ok(kernel)
    }

    /// The controlling terminals of the sandbox's processes.
    pub fn terminals(&self) -> &crate::fs::tty::Terminals {
        &self.terminals
    }

    /// The same, shared (a container's new `/dev` needs it).
    pub(crate) fn terminals_shared(&self) -> Arc<crate::fs::tty::Terminals> {
        self.terminals.clone()
    }

    /// A keyboard signal (`SIGINT`, `SIGQUIT`, `SIGTSTP`) or `SIGWINCH` the host
    /// generated for the console: sent to the console's foreground process group, as
    /// Linux's line discipline sends it. Returns whether anyone got it.
    pub fn console_signal(&self, sig: i32) -> bool {
        let Some(fg) = self.terminals.console().and_then(|t| t.foreground()) else {
            return false;
        };
        self.signal_process_group(fg, sig)
    }

    /// A new process whose stdio has a host terminal (the sandbox's own, or one given to
    /// `exec`) leads its session and has that terminal as its controlling terminal, as
    /// runc's `setsid` and `TIOCSCTTY` give a container process with `terminal: true`.
    pub fn take_terminal(&self, t: &Task) -> Option<Arc<crate::fs::tty::Terminal>> {
        let fds = t.fd_table();
        let term = (0..3).find_map(|fd| fds.get(fd).ok()?.ops().terminal())?;
        let tg = t.thread_group();
        if tg.sid() != tg.tgid() {
            return None;
        }
        if term.session().is_none() {
            self.terminals
                .acquire(&term, tg.tgid(), tg.sid(), tg.pgid());
        }
        Some(term)
    }

    /// Delivers the keyboard signals the host generates for the console to its foreground
    /// group ([`Kernel::console_signal`]), on a thread of its own: the sandbox process's
    /// signal handler writes each signal number as one byte into `pipe`. The thread ends
    /// when the pipe or the kernel does.
    pub fn forward_console_signals(
        self: &Arc<Self>,
        pipe: std::os::fd::OwnedFd,
    ) -> std::io::Result<()> {
        use std::io::Read;
        let kernel = Arc::downgrade(self);
        let mut pipe = std::fs::File::from(pipe);
        std::thread::Builder::new()
            .name("console-signals".into())
            .spawn(move || {
                let mut buf = [0u8; 16];
                loop {
                    let n = match pipe.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => return,
                    };
                    let Some(k) = kernel.upgrade() else {
                        return;
                    };
                    for &sig in &buf[..n] {
                        tracing::debug!(sig, "console signal");
                        k.console_signal(i32::from(sig));
                    }
                }
            })?;
        Ok(())
    }

    /// Sends `sig` from the kernel (`SI_KERNEL`) to every live process of group `pgid`.
    pub fn signal_process_group(&self, pgid: i32, sig: i32) -> bool {
        let members: Vec<Arc<ThreadGroup>> = self
            .pids()
            .into_iter()
            .filter_map(|p| self.thread_group(p))
            .filter(|g| g.pgid() == pgid && !g.is_exiting())
            .collect();
        for g in &members {
            g.send_signal(linux_abi::signal::SigInfo::new(
                sig,
                linux_abi::signal::SI_KERNEL,
            ));
        }
        !members.is_empty()
    }

    /// Sends `sig` from the kernel (`SI_KERNEL`) to process `tgid`.
    pub fn signal_process(&self, tgid: i32, sig: i32) -> bool {
        match self.thread_group(tgid).filter(|g| !g.is_exiting()) {
            Some(g) => {
                g.send_signal(linux_abi::signal::SigInfo::new(
                    sig,
                    linux_abi::signal::SI_KERNEL,
                ));
                true
            }
            None => false,
        }
    }

    /// The session leader gives up `term` (or exits): its foreground group gets `SIGHUP`
    /// (and `SIGCONT` when the terminal was given up rather than left by exiting), and no
    /// process has it any more.
    pub fn hang_up(&self, term: &Arc<crate::fs::tty::Terminal>, cont: bool) {
        if let Some(fg) = term.foreground() {
            self.signal_process_group(fg, linux_abi::signal::SIGHUP);
            if cont {
                self.signal_process_group(fg, linux_abi::signal::SIGCONT);
            }
        }
        self.terminals().disassociate(term);
    }

    /// The number of CPUs the sandbox reports (`sched_getaffinity`, `nproc`).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }

    /// The futex wait queues.
    pub fn futexes(&self) -> &Futexes {
        &self.futexes
    }

    /// Which unimplemented system calls the kernel has logged.
    pub(crate) fn unimplemented(&self) -> &WarnedOnce {
        &self.unimplemented
    }

    /// The kernel's timer thread.
    pub(crate) fn timers(&self) -> &Arc<crate::waiter::TimerQueue> {
        &self.timers
    }

    /// The System V IPC namespace.
    pub(crate) fn ipc(&self) -> &ipc::IpcNamespace {
        &self.ipc
    }

    /// The names bound Unix sockets hold.
    pub(crate) fn unix_names(&self) -> &Arc<crate::fs::socket::SocketNames> {
        &self.unix_names
    }

    /// The lock that makes an exited child collectable and signals its parent in one
    /// step, against `wait` scanning for collectable children.
    pub(crate) fn exit_notify_lock(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.exit_notify.lock()
    }

    /// The sandbox's network stack.
    pub fn net(&self) -> &Arc<crate::net::Stack> {
        &self.net
    }

    /// Makes the application's `AF_INET`/`AF_INET6` sockets host sockets from now on
    /// (`--network=host`; the Sentry's seccomp filter must allow the host socket calls).
    pub fn enable_host_network(&self) -> Result<(), Errno> {
        if self.hostnet.get().is_none() {
            let _ = self.hostnet.set(crate::net::hostinet::HostNet::new()?);
        }
        Ok(())
    }

    /// The host network, under `--network=host`.
    pub(crate) fn hostnet(&self) -> Option<&Arc<crate::net::hostinet::HostNet>> {
        self.hostnet.get()
    }

    /// The system-call policy and recorder of the sandbox.
    pub fn policy(&self) -> &crate::policy::KernelPolicy {
        &self.policy
    }

    /// The sandbox's `/proc/sys` values.
    pub fn sysctls(&self) -> &sysctl::Sysctls {
        &self.sysctls
    }

    /// The sandbox's filesystem tree.
    pub fn vfs(&self) -> &Arc<Vfs> {
        &self.vfs
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock()
    }

    /// The platform that runs application code.
    pub fn platform(&self) -> &Arc<dyn Platform> {
        &self.platform
    }

    /// Whether `--strace` output is on.
    pub fn strace(&self) -> bool {
        self.strace
    }

    /// Sends `--strace` lines to `out` instead of the Sentry's stderr.
    pub fn set_strace_output(&self, out: Box<dyn std::io::Write + Send>) {
        *self.strace_out.lock() = Some(out);
    }

    /// Writes one `--strace` line.
    pub(crate) fn strace_line(&self, line: &str) {
        use std::io::Write;
        let mut out = self.strace_out.lock();
        let _ = match out.as_mut() {
            Some(w) => writeln!(w, "{line}"),
            None => writeln!(std::io::stderr().lock(), "{line}"),
        };
    }

    /// The host name (`uname().nodename`).
    pub fn hostname(&self) -> String {
        self.hostname.lock().clone()
    }

    /// Sets the host name.
    pub fn set_hostname(&self, name: String) {
        *self.hostname.lock() = name;
    }

    /// The NIS domain name (`uname().domainname`).
    pub fn domainname(&self) -> String {
        self.domainname.lock().clone()
    }

    /// Sets the NIS domain name.
    pub fn set_domainname(&self, name: String) {
        *self.domainname.lock() = name;
    }

    /// When the kernel started (for `CLOCK_MONOTONIC`/`BOOTTIME` and uptime).
    pub fn boot_instant(&self) -> Instant {
        self.boot_instant
    }

    /// The wall-clock time the kernel started.
    pub fn boot_realtime(&self) -> SystemTime {
        self.boot_realtime
    }

    /// Replaces how the loader opens executables (the VFS by default; tests load host
    /// files).
    pub fn set_exec_source(&self, src: Arc<dyn ExecSource>) {
        *self.exec_source.lock() = src;
    }

    /// How the loader opens executables.
    pub fn exec_source(&self) -> Arc<dyn ExecSource> {
        self.exec_source.lock().clone()
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

    /// Every live task.
    pub(crate) fn live_tasks(&self) -> Vec<Arc<Task>> {
        self.tables()
            .tasks
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// The ids of all live thread groups (processes), ascending.
    pub fn pids(&self) -> Vec<i32> {
        self.tables().groups.keys().copied().collect()
    }

    /// Keeps the host thread of a new task, to join it when the sandbox ends; finished
    /// threads are joined on the way.
    pub(crate) fn track_thread(&self, h: std::thread::JoinHandle<()>) {
        let mut th = self.threads.lock();
        let (done, live): (Vec<_>, Vec<_>) = th.drain(..).partition(|h| h.is_finished());
        *th = live;
        th.push(h);
        drop(th);
        for h in done {
            let _ = h.join();
        }
    }

    /// Waits (up to `limit`) for every tracked task thread to end.
    pub(crate) fn join_threads(&self, limit: std::time::Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let hs: Vec<_> = std::mem::take(&mut *self.threads.lock());
            if hs.is_empty() {
                return;
            }
            let mut pending = Vec::new();
            for h in hs {
                if h.is_finished() {
                    if h.join().is_err() {
                        tracing::error!("a task thread panicked");
                    }
                } else {
                    pending.push(h);
                }
            }
            if pending.is_empty() {
                continue;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    threads = pending.len(),
                    "task threads still running at exit"
                );
                return;
            }
            self.threads.lock().extend(pending);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The number of live tasks.
    pub fn task_count(&self) -> usize {
        self.tables().tasks.len()
    }

    /// Ends the sandbox after an internal failure (a task thread panicked): every process
    /// is killed with `SIGKILL`, so every task thread leaves its loop and finishes, and
    /// whoever waits for PID 1 sees it killed rather than waiting forever.
    pub(crate) fn fatal(&self) {
        for pid in self.pids() {
            if let Some(g) = self.thread_group(pid) {
                g.kill(linux_abi::signal::SIGKILL);
            }
        }
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
    if config.cwd.first() != Some(&b'/') {
        return Err(SentryError::Config("cwd must be absolute"));
    }
    let SandboxConfig {
        argv,
        envp,
        cwd,
        uid,
        gid,
        hostname,
        stdio,
        gofer,
        strace,
        mounts,
        files,
        filter,
        recorder,
        cpu_budget,
        console_signals,
        host_network,
        ethernet,
        memory_limit,
    } = config;
    let kernel = Kernel::new(platform, &hostname, strace, gofer)?;
    if let Some(l) = memory_limit {
        kernel.set_memory_limit(l);
    }
    if let Some(e) = ethernet {
        kernel.net().attach_ethernet(e);
    }
    if host_network {
        kernel
            .enable_host_network()
            .map_err(|_| SentryError::Config("cannot set up the host network"))?;
    }
    if !mounts.is_empty() || !files.is_empty() {
        let control = crate::control::Sandbox::over(kernel.clone());
        for (path, contents) in files {
            control
                .write_file(None, &path, &contents, 0o644)
                .map_err(SentryError::Filesystem)?;
        }
        for (dest, src, readonly) in mounts {
            control.mount(
                None,
                &dest,
                src,
                readonly,
                crate::control::MountFlags::default(),
            )?;
        }
    }
    if let Some(f) = filter {
        kernel.policy().set_filter(f);
    }
    if let Some(r) = recorder {
        kernel.policy().set_recorder(r);
    }
    let fds = FdTable::new();
    for (i, fd) in stdio.into_iter().enumerate() {
        fds.insert_at(
            i as i32,
            crate::fs::host_fd_file(fd, kernel.terminals()),
            false,
        )
        .map_err(SentryError::Filesystem)?;
    }
    let ctx = kernel
        .vfs()
        .root_context(&cwd)
        .map_err(SentryError::Filesystem)?;
    let creds = Credentials::new(uid, gid);
    let init = Task::new_process(&kernel, 0, creds, Arc::new(fds), Arc::new(ctx))?;
    if cpu_budget.is_some() {
        kernel.set_cpu_budget(cpu_budget);
    }
    if let Some(console) = kernel.take_terminal(&init) {
        kernel.terminals().set_console(&console);
    }
    if let Some(pipe) = console_signals {
        kernel
            .forward_console_signals(pipe)
            .map_err(SentryError::Thread)?;
    }
    let status = start_init_bytes(&kernel, init, argv, envp)?;
    match kernel.cpu_budget() {
        Some(budget) if kernel.cpu_budget_exceeded() => {
            Err(SentryError::CpuBudgetExceeded { budget })
        }
        _ => Ok(status),
    }
}

/// [`start_init_bytes`] with UTF-8 arguments and environment (for tests).
#[cfg(test)]
pub(crate) fn start_init(
    kernel: &Arc<Kernel>,
    init: Arc<Task>,
    argv: &[String],
    envp: &[String],
) -> Result<ExitStatus, SentryError> {
    let bytes = |v: &[String]| v.iter().map(|s| s.as_bytes().to_vec()).collect();
    start_init_bytes(kernel, init, bytes(argv), bytes(envp))
}

/// Loads `argv[0]` into `init`, runs it on its own host thread and waits for the thread
/// group to end. Arguments and environment are bytes, as Linux passes them.
pub(crate) fn start_init_bytes(
    kernel: &Arc<Kernel>,
    init: Arc<Task>,
    argv: Vec<Vec<u8>>,
    envp: Vec<Vec<u8>>,
) -> Result<ExitStatus, SentryError> {
    let path = argv.first().cloned().unwrap_or_default();
    match init.execve(&path, argv, envp) {
        Ok(()) => {}
        // Loading it needed more memory than the sandbox has: the OOM killer's SIGKILL,
        // as for any other process.
        Err(errno) if errno == crate::mm::EOOM => {
            init.oom_kill();
            return Ok(ExitStatus::Signaled(linux_abi::signal::SIGKILL));
        }
        Err(errno) => {
            return Err(SentryError::Exec {
                path: String::from_utf8_lossy(&path).into_owned(),
                errno,
            });
        }
    }
    let tg = init.thread_group().clone();
    let thread = task::spawn(init).map_err(SentryError::Thread)?;
    let status = tg.wait_exit();
    // The task threads release their platform contexts on the way out; wait for them so
    // that no stub outlives the sandbox run.
    if thread.join().is_err() {
        tracing::error!("the PID 1 task thread panicked");
    }
    for pid in kernel.pids() {
        if let Some(g) = kernel.thread_group(pid) {
            g.kill(linux_abi::signal::SIGKILL);
        }
    }
    kernel.join_threads(std::time::Duration::from_secs(5));
    match status {
        ExitStatus::Signaled(sig) => {
            tracing::warn!(
                pid = 1,
                tasks = kernel.task_count(),
                "killed by signal {sig}"
            )
        }
        ExitStatus::Exited(code) => {
            tracing::info!(pid = 1, code, tasks = kernel.task_count(), "exited")
        }
    }
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

#[cfg(test)]
mod tests;

impl crate::fs::tty::JobControl for Kernel {
    fn signal_group(&self, pgid: i32, sig: i32) -> bool {
        self.signal_process_group(pgid, sig)
    }

    fn signal_process(&self, tgid: i32, sig: i32) -> bool {
        Kernel::signal_process(self, tgid, sig)
    }

    fn fs_ids(&self, tgid: i32) -> Option<(u32, u32)> {
        let c = self.thread_group(tgid)?.tasks().first()?.creds();
        Some((c.fsuid, c.fsgid))
    }
}
