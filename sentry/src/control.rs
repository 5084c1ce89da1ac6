//! The control API of a long-lived sandbox: what an OCI runtime asks of the Sentry after
//! `create` (start the container's process, run more processes in it, signal them, list
//! them, wait for them).
//!
//! [`run_sandbox`](crate::run_sandbox) builds a kernel, runs one program and returns when it
//! ends. A [`Sandbox`] splits that up: [`Sandbox::new`] builds the kernel,
//! [`Sandbox::create_init`] loads the first program (PID 1) without running it,
//! [`Sandbox::start`] runs it, and [`Sandbox::exec`] starts further processes in the same
//! kernel (like `runc exec`: they have no parent inside the sandbox). Every method may be
//! called from any host thread.

use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::signal::{SI_USER, SIGKILL, SIGSTOP, SigInfo};

use crate::fs::FdTable;
use crate::kernel::signal::SIG_DFL;
use crate::kernel::{Credentials, Kernel, Task, ThreadGroup, task};
use crate::{ExitStatus, SentryError};

/// A process to start in a sandbox.
#[derive(Debug)]
pub struct ProcessSpec {
    /// The program and its arguments; `argv[0]` is the program path.
    pub argv: Vec<String>,
    /// The environment, as `K=V` strings.
    pub envp: Vec<String>,
    /// The working directory (absolute, inside the sandbox).
    pub cwd: String,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
    /// Host descriptors that become the process's fds 0, 1 and 2.
    pub stdio: [OwnedFd; 3],
    /// The file mode creation mask (022 when `None`).
    pub umask: Option<u32>,
    /// Resource limits: `(RLIMIT_* number, soft, hard)`; the others keep their defaults.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// The capability sets before the program is executed (`None`: root's full sets
    /// for uid 0, none for others); `execve` then transforms them as Linux does.
    pub caps: Option<CapSets>,
    /// `PR_SET_NO_NEW_PRIVS` is set before the program runs.
    pub no_new_privs: bool,
}

/// The five capability sets of a process, as bit masks (`1 << CAP_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Effective.
    pub effective: u64,
    /// Permitted.
    pub permitted: u64,
    /// Inheritable.
    pub inheritable: u64,
    /// Bounding.
    pub bounding: u64,
    /// Ambient.
    pub ambient: u64,
}

/// `RLIMIT_NOFILE`.
const RLIMIT_NOFILE: usize = 7;

/// Mount options besides read-only (`nosuid` needs nothing: the Sentry honours no
/// set-id bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// `noexec`.
    pub noexec: bool,
    /// `nodev`.
    pub nodev: bool,
}

/// What a mount of the container's spec is backed by.
#[derive(Debug)]
pub enum MountSource {
    /// A host directory served by a Gofer over this lisafs socket (a bind mount).
    Gofer(OwnedFd),
    /// A fresh tmpfs (in the sandbox's memory file) with these permission bits.
    Tmpfs(u32),
}

/// One process of the sandbox, as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Process id inside the sandbox.
    pub pid: i32,
    /// Parent's process id (0 for PID 1 and for processes started by [`Sandbox::exec`]).
    pub ppid: i32,
    /// Real user id.
    pub uid: u32,
    /// The command name (`/proc/<pid>/comm`).
    pub comm: String,
    /// Number of threads.
    pub threads: usize,
    /// CPU time used by application code, in nanoseconds.
    pub cpu_ns: u64,
    /// Resident memory in bytes.
    pub rss: u64,
}

/// Where the sandbox's first process is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitState {
    /// Loaded, not started.
    Created,
    /// Running.
    Running,
    /// Ended with this status.
    Stopped(ExitStatus),
}

#[derive(Debug, Default)]
struct Inner {
    /// PID 1 while it is loaded but not started.
    unstarted: Option<Arc<Task>>,
    init: Option<Arc<ThreadGroup>>,
    init_thread: Option<std::thread::JoinHandle<()>>,
    /// Processes started by `exec`, kept so that their status can be collected.
    execs: BTreeMap<i32, Arc<ThreadGroup>>,
}

/// A sandbox kernel driven from outside (see the module documentation).
#[derive(Debug)]
pub struct Sandbox {
    kernel: Arc<Kernel>,
    inner: Mutex<Inner>,
}

fn creds(spec: &ProcessSpec) -> Credentials {
    let mut c = Credentials::new(spec.uid, spec.gid);
    c.groups = spec.groups.clone();
    if let Some(caps) = spec.caps {
        let all = crate::kernel::CAP_FULL_SET;
        c.cap_effective = caps.effective & all;
        c.cap_permitted = caps.permitted & all;
        c.cap_inheritable = caps.inheritable & all;
        c.cap_bounding = caps.bounding & all;
        // As `PR_CAP_AMBIENT_RAISE` would: only what is permitted and inheritable.
        c.cap_ambient = caps.ambient & c.cap_permitted & c.cap_inheritable;
    }
    c
}

impl Sandbox {
    /// Builds the kernel: host name, `--strace`, and the root served by `gofer` (an
    /// overlay over it; a bare tmpfs without one).
    pub fn new(
        platform: Arc<dyn platform::Platform>,
        hostname: &str,
        strace: bool,
        gofer: Option<OwnedFd>,
    ) -> Result<Sandbox, SentryError> {
        Ok(Sandbox {
            kernel: Kernel::new(platform, hostname, strace, gofer)?,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The kernel.
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// A control handle over an existing kernel (`run_sandbox` uses it to mount).
    pub(crate) fn over(kernel: Arc<Kernel>) -> Sandbox {
        Sandbox {
            kernel,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Mounts `src` at the absolute path `dest`, creating missing directories on the way
    /// (in the root's writable overlay), before the first process runs.
    pub fn mount(
        &self,
        dest: &str,
        src: MountSource,
        readonly: bool,
        flags: MountFlags,
    ) -> Result<(), SentryError> {
        if !dest.starts_with('/') {
            return Err(SentryError::Config("mount destination must be absolute"));
        }
        if dest.split('/').any(|c| c == "..") {
            return Err(SentryError::Config("mount destination must not contain .."));
        }
        let cur = self.make_dirs(dest).map_err(SentryError::Filesystem)?;
        let vfs = self.kernel.vfs();
        let (inode, fstype, source): (Arc<dyn crate::fs::Inode>, _, _) = match src {
            MountSource::Gofer(sock) => (
                // A bind mount: the host may change it while the sandbox runs.
                crate::fs::gofer::new_gofer_root(
                    sock,
                    crate::fs::gofer::Revalidate::OnAccess,
                    self.kernel.platform().memory_file().clone(),
                )
                .map_err(SentryError::Filesystem)?,
                "9p",
                "none",
            ),
            MountSource::Tmpfs(mode) => (
                crate::fs::tmpfs::Tmpfs::new_root(
                    self.kernel.platform().memory_file().clone(),
                    mode,
                    0,
                    0,
                ),
                "tmpfs",
                "tmpfs",
            ),
        };
        vfs.mount(&cur, inode, fstype, source, readonly)
            .map_err(SentryError::Filesystem)?
            .set_flags(flags.noexec, flags.nodev);
        Ok(())
    }

    /// Resolves the absolute path `path` as root, following symlinks.
    fn lookup(&self, path: &str) -> Result<crate::fs::VfsPath, Errno> {
        if !path.starts_with('/') {
            return Err(Errno::EINVAL);
        }
        let vfs = self.kernel.vfs();
        let root = vfs.root();
        vfs.resolve(
            &root,
            &root,
            path.as_bytes(),
            crate::fs::vfs::Follow::Yes,
            &crate::fs::FsCred::root(),
        )
    }

    /// Makes the root file system read-only (the spec's `root.readonly`): writes below
    /// it fail with `EROFS`; the mounts on it keep their own setting.
    pub fn set_root_readonly(&self) {
        self.kernel.vfs().root().mount.set_readonly(true);
    }

    /// Masks `path` as runc does for `maskedPaths`: a directory is covered by an empty
    /// read-only tmpfs, anything else by `/dev/null`. A path that does not exist is left
    /// alone (`Ok(false)`), as runc leaves it.
    pub fn mask_path(&self, path: &str) -> Result<bool, Errno> {
        let at = match self.lookup(path) {
            Ok(p) => p,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        let vfs = self.kernel.vfs();
        if at.file_type()? == crate::fs::FileType::Directory {
            let empty = crate::fs::tmpfs::Tmpfs::new_root(
                self.kernel.platform().memory_file().clone(),
                0o755,
                0,
                0,
            );
            vfs.mount(&at, empty, "tmpfs", "tmpfs", true)?;
        } else {
            let null = self.lookup("/dev/null")?;
            vfs.bind(&at, &null, false)?;
        }
        Ok(true)
    }

    /// Makes `path` read-only as runc does for `readonlyPaths` (a read-only bind mount
    /// of itself). A path that does not exist is left alone (`Ok(false)`).
    pub fn readonly_path(&self, path: &str) -> Result<bool, Errno> {
        let at = match self.lookup(path) {
            Ok(p) => p,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        self.kernel.vfs().bind(&at, &at, true)?;
        Ok(true)
    }

    /// Mounts one of the Sentry's own file systems (`/proc`, `/sys`, `/dev/pts`...,
    /// named by its path in the sandbox) at `dest` as a bind, or, when `dest` is where it
    /// already is, gives it the options (on the mount itself when it is a mount's root,
    /// else through a bind of itself).
    pub fn mount_own(
        &self,
        own: &str,
        dest: &str,
        readonly: bool,
        flags: MountFlags,
    ) -> Result<(), Errno> {
        let src = self.lookup(own)?;
        let vfs = self.kernel.vfs();
        let m = if own.trim_end_matches('/') == dest.trim_end_matches('/') {
            if Arc::ptr_eq(&src.dentry, src.mount.root()) {
                src.mount.clone()
            } else if readonly || flags != MountFlags::default() {
                vfs.bind(&src, &src, readonly)?
            } else {
                return Ok(());
            }
        } else {
            let at = self.make_dirs(dest)?;
            vfs.bind(&at, &src, readonly)?
        };
        if readonly {
            m.set_readonly(true);
        }
        m.set_flags(flags.noexec, flags.nodev);
        Ok(())
    }

    /// Creates the missing directories of `dest` (in the root's writable upper layer)
    /// and returns it.
    fn make_dirs(&self, dest: &str) -> Result<crate::fs::VfsPath, Errno> {
        use crate::fs::{FsCred, NewNode};
        let vfs = self.kernel.vfs();
        let root = vfs.root();
        let cred = FsCred::root();
        let mut cur = root.clone();
        for name in dest.split('/').filter(|c| !c.is_empty() && *c != ".") {
            let name = name.as_bytes();
            if name == b".." {
                return Err(Errno::EINVAL);
            }
            cur = match vfs.step(&root, &cur, name, &cred) {
                Ok(p) => p,
                Err(Errno::ENOENT) => {
                    cur.inode()
                        .create(name, NewNode::Dir { mode: 0o755 }, &cred)?;
                    vfs.step(&root, &cur, name, &cred)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(cur)
    }

    /// Sets the sandbox's `/proc/sys` value `name` (a path below `/proc/sys`) as a write
    /// by its root would: `ENOENT` for a value the Sentry does not have, `EINVAL` for one
    /// out of range.
    pub fn set_sysctl(&self, name: &str, value: &str) -> Result<(), Errno> {
        match name {
            // The UTS names, at most 64 bytes as `sethostname` takes them.
            "kernel/hostname" | "kernel/domainname" => {
                let v = value.strip_suffix('\n').unwrap_or(value);
                if v.len() > 64 {
                    return Err(Errno::EINVAL);
                }
                if name == "kernel/hostname" {
                    self.kernel.set_hostname(v.to_string());
                } else {
                    self.kernel.set_domainname(v.to_string());
                }
                Ok(())
            }
            _ => self.kernel.sysctls().set(name, value.as_bytes()),
        }
    }

    /// Creates a process for `spec` and loads its program, without running it.
    fn load(&self, spec: ProcessSpec) -> Result<Arc<Task>, SentryError> {
        if spec.argv.is_empty() {
            return Err(SentryError::Config("empty argv"));
        }
        if !spec.cwd.starts_with('/') {
            return Err(SentryError::Config("cwd must be absolute"));
        }
        let creds = creds(&spec);
        let fds = FdTable::new();
        let ProcessSpec {
            argv, envp, stdio, ..
        } = spec;
        for (i, fd) in stdio.into_iter().enumerate() {
            fds.insert_at(
                i as i32,
                crate::fs::host_fd_file(fd, self.kernel.terminals()),
                false,
            )
            .map_err(SentryError::Filesystem)?;
        }
        let ctx = self
            .kernel
            .vfs()
            .root_context(b"/")
            .map_err(SentryError::Filesystem)?;
        if let Some(m) = spec.umask {
            ctx.set_umask(m & 0o777);
        }
        let t = Task::new_process(&self.kernel, 0, creds, Arc::new(fds), Arc::new(ctx))?;
        let tg = t.thread_group();
        self.kernel.take_terminal(&t);
        for &(res, soft, hard) in &spec.rlimits {
            let res = res as usize;
            if res >= crate::kernel::RLIM_NLIMITS || soft > hard {
                return Err(SentryError::Config("invalid resource limit"));
            }
            tg.set_rlimit(
                res,
                crate::kernel::Rlimit {
                    cur: soft,
                    max: hard,
                },
            );
            if res == RLIMIT_NOFILE {
                t.fd_table()
                    .set_limit(u32::try_from(soft).unwrap_or(u32::MAX));
            }
        }
        if spec.no_new_privs {
            tg.no_new_privs
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        // The working directory is looked up with the process's own credentials, as
        // runc's `chdir` after switching user does.
        let cwd_b = spec.cwd.as_bytes().to_vec();
        let path = argv.first().cloned().unwrap_or_default();
        let exec_err = |errno| SentryError::Exec {
            path: path.clone(),
            // A program too big for the sandbox's memory is refused here, before it runs.
            errno: if errno == crate::mm::EOOM {
                Errno::ENOMEM
            } else {
                errno
            },
        };
        crate::syscalls::fs::chdir_task(&t, &cwd_b).map_err(|errno| SentryError::Exec {
            path: spec.cwd.clone(),
            errno,
        })?;
        let argv_b = argv.iter().map(|s| s.as_bytes().to_vec()).collect();
        let envp_b = envp.iter().map(|s| s.as_bytes().to_vec()).collect();
        t.execve(path.as_bytes(), argv_b, envp_b)
            .map_err(exec_err)?;
        Ok(t)
    }

    /// Loads the first process (PID 1) without running it: a missing or unusable program
    /// is reported here, as `runc create` does.
    pub fn create_init(&self, spec: ProcessSpec) -> Result<i32, SentryError> {
        let mut inner = self.inner();
        if inner.init.is_some() {
            return Err(SentryError::Config(
                "the sandbox already has a first process",
            ));
        }
        drop(inner);
        let t = self.load(spec)?;
        let pid = t.tgid();
        // The first process's terminal is the console: the host's keyboard signals
        // (`SIGINT`, `SIGQUIT`, `SIGTSTP`) and `SIGWINCH` are for its foreground group.
        if let Some(console) = self.kernel.terminals().of(pid) {
            self.kernel.terminals().set_console(&console);
        }
        inner = self.inner();
        inner.init = Some(t.thread_group().clone());
        inner.unstarted = Some(t);
        Ok(pid)
    }

    /// Runs the first process.
    pub fn start(&self) -> Result<(), SentryError> {
        let mut inner = self.inner();
        let Some(t) = inner.unstarted.take() else {
            return Err(SentryError::Config(
                "the first process is not waiting to start",
            ));
        };
        let h = task::spawn(t).map_err(SentryError::Thread)?;
        inner.init_thread = Some(h);
        Ok(())
    }

    /// The state of the first process.
    pub fn init_state(&self) -> Option<InitState> {
        let inner = self.inner();
        let tg = inner.init.as_ref()?;
        Some(if inner.unstarted.is_some() {
            InitState::Created
        } else if let Some(st) = tg.is_dead().then(|| tg.exit_status()).flatten() {
            InitState::Stopped(st)
        } else {
            InitState::Running
        })
    }

    /// Waits for the first process to end (it must have been created), then ends every
    /// other process and waits (a bounded time) for their threads. Returns its status.
    pub fn wait_init(&self) -> Result<ExitStatus, SentryError> {
        let tg = self
            .inner()
            .init
            .clone()
            .ok_or(SentryError::Config("the sandbox has no first process"))?;
        let status = tg.wait_exit();
        if let Some(h) = self.inner().init_thread.take()
            && h.join().is_err()
        {
            tracing::error!("the PID 1 task thread panicked");
        }
        for pid in self.kernel.pids() {
            if let Some(g) = self.kernel.thread_group(pid) {
                g.kill(SIGKILL);
            }
        }
        self.kernel.join_threads(std::time::Duration::from_secs(5));
        Ok(status)
    }

    /// Ends the first process before it ever ran (`delete` of a created container).
    pub fn kill_unstarted(&self) -> bool {
        let mut inner = self.inner();
        let Some(t) = inner.unstarted.take() else {
            return false;
        };
        // Run it just to let it die: the kill is seen before any application code runs.
        t.thread_group().kill(SIGKILL);
        match task::spawn(t) {
            Ok(h) => inner.init_thread = Some(h),
            Err(e) => tracing::error!("cannot end the unstarted first process: {e}"),
        }
        true
    }

    /// Starts another process in the sandbox (`runc exec`) and returns its pid.
    pub fn exec(&self, spec: ProcessSpec) -> Result<i32, SentryError> {
        if self.inner().init.as_ref().is_none_or(|i| i.is_exiting()) {
            return Err(SentryError::Config("the sandbox is not running"));
        }
        let t = self.load(spec)?;
        let pid = t.tgid();
        let tg = t.thread_group().clone();
        let h = task::spawn(t).map_err(SentryError::Thread)?;
        self.kernel.track_thread(h);
        let mut inner = self.inner();
        inner.execs.retain(|_, g| !g.is_dead());
        inner.execs.insert(pid, tg);
        Ok(pid)
    }

    /// Waits for process `pid` (the first one, or one started by [`Sandbox::exec`]) to
    /// end and returns its status; `None` for other pids.
    pub fn wait(&self, pid: i32) -> Option<ExitStatus> {
        let tg = {
            let inner = self.inner();
            match &inner.init {
                Some(i) if i.tgid() == pid => Some(i.clone()),
                _ => inner.execs.get(&pid).cloned(),
            }
        }?;
        Some(tg.wait_exit())
    }

    /// Sends `sig` to process `pid` from outside the sandbox. As for a signal sent to a
    /// container's init from the host, PID 1 ignores signals whose action is the default
    /// one, except `SIGKILL` and `SIGSTOP`.
    pub fn signal(&self, pid: i32, sig: i32) -> Result<(), Errno> {
        if !(1..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        if pid == 1 && self.kill_unstarted_if(sig) {
            return Ok(());
        }
        let tg = self.kernel.thread_group(pid).ok_or(Errno::ESRCH)?;
        if pid == 1 && sig != SIGKILL && sig != SIGSTOP && tg.action(sig).handler == SIG_DFL {
            return Ok(());
        }
        tg.send_signal(SigInfo::new(sig, SI_USER));
        Ok(())
    }

    /// A signal the terminal of process `pid` generated on the host (a key typed into it,
    /// a resize): it goes to the terminal's foreground process group, as Linux's line
    /// discipline sends it. `ENOTTY` if `pid` has no controlling terminal.
    pub fn terminal_signal(&self, pid: i32, sig: i32) -> Result<(), Errno> {
        if !(1..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        let term = self.kernel.terminals().of(pid).ok_or(Errno::ENOTTY)?;
        if let Some(fg) = term.foreground() {
            self.kernel.signal_process_group(fg, sig);
        }
        Ok(())
    }

    fn kill_unstarted_if(&self, sig: i32) -> bool {
        if sig == SIGKILL {
            return self.kill_unstarted();
        }
        false
    }

    /// Sends `sig` to every process of the sandbox (`kill --all`).
    pub fn signal_all(&self, sig: i32) -> Result<(), Errno> {
        if !(1..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        if sig == SIGKILL {
            self.kill_unstarted();
        }
        for pid in self.kernel.pids() {
            if let Some(tg) = self.kernel.thread_group(pid) {
                tg.send_signal(SigInfo::new(sig, SI_USER));
            }
        }
        Ok(())
    }

    /// Sets the memory limit the sandbox's `/proc/meminfo` reports (the container's
    /// cgroup limit, enforced on the host).
    pub fn set_memory_limit(&self, bytes: u64) {
        self.kernel.set_memory_limit(bytes);
    }

    /// Freezes every process of the sandbox (`pause`): no application code runs until
    /// [`Sandbox::resume`]; `SIGKILL` still ends processes.
    pub fn pause(&self) {
        self.kernel.freeze();
    }

    /// Lets the processes run again after [`Sandbox::pause`].
    pub fn resume(&self) {
        self.kernel.thaw();
    }

    /// Whether the sandbox is paused.
    pub fn is_paused(&self) -> bool {
        self.kernel.is_frozen()
    }

    /// The live processes, by pid.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.kernel
            .pids()
            .into_iter()
            .filter_map(|pid| {
                let tg = self.kernel.thread_group(pid)?;
                if tg.is_dead() {
                    return None;
                }
                let tasks = tg.tasks();
                let leader = tasks.first()?;
                Some(ProcessInfo {
                    pid,
                    ppid: tg.ppid(),
                    uid: leader.creds().uid,
                    comm: String::from_utf8_lossy(&leader.comm()).into_owned(),
                    threads: tasks.len(),
                    cpu_ns: tg.cpu_time().as_nanos() as u64,
                    rss: leader.mm().resident_pages() * crate::mm::PAGE,
                })
            })
            .collect()
    }
}
