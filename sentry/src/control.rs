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
//!
//! A pod is one sandbox with several containers: the first process and its tree are the
//! sandbox's root container (the pod's pause container); [`Sandbox::add_container`] adds
//! another container, with a file system tree of its own ([`Vfs::new_tree`], its root
//! served by its own Gofer) in which its processes are rooted. Its processes share the
//! kernel (one PID space, one network stack, as in a pod that shares its PID namespace),
//! carry the container's id ([`ThreadGroup::container`]) and are signalled, listed and
//! waited for per container. Methods that take `cid: Option<&str>` act on that container,
//! or on the root container for `None`.
//!
//! [`Vfs::new_tree`]: crate::fs::Vfs::new_tree

use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use linux_abi::Errno;
use linux_abi::signal::{SI_USER, SIGKILL, SIGSTOP, SigInfo};

use crate::fs::{FdTable, VfsPath};
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
    /// The other containers of the pod, by id.
    containers: BTreeMap<String, Sub>,
}

/// A container of the pod other than the root one.
#[derive(Debug)]
struct Sub {
    /// Its id, as its processes carry it.
    tag: Arc<str>,
    /// The root of its file system tree.
    root: VfsPath,
    /// Its first process while it is loaded but not started.
    unstarted: Option<Arc<Task>>,
    /// Its first process.
    init: Option<Arc<ThreadGroup>>,
}

impl Sub {
    fn state(&self) -> Option<InitState> {
        let tg = self.init.as_ref()?;
        Some(if self.unstarted.is_some() {
            InitState::Created
        } else if let Some(st) = tg.is_dead().then(|| tg.exit_status()).flatten() {
            InitState::Stopped(st)
        } else {
            InitState::Running
        })
    }
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

    /// The root of container `cid`'s tree (`ENOENT` for an unknown container).
    fn tree(&self, cid: Option<&str>) -> Result<VfsPath, Errno> {
        match cid {
            None => Ok(self.kernel.vfs().root()),
            Some(id) => self
                .inner()
                .containers
                .get(id)
                .map(|c| c.root.clone())
                .ok_or(Errno::ENOENT),
        }
    }

    /// Mounts `src` at the absolute path `dest` of container `cid`'s tree, creating
    /// missing directories on the way (in the root's writable overlay), before the
    /// container's first process runs.
    pub fn mount(
        &self,
        cid: Option<&str>,
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
        let root = self.tree(cid).map_err(SentryError::Filesystem)?;
        let cur = self
            .make_dirs(&root, dest)
            .map_err(SentryError::Filesystem)?;
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

    /// Resolves the absolute path `path` in the tree at `root` as root, following
    /// symlinks.
    fn lookup(&self, root: &VfsPath, path: &str) -> Result<VfsPath, Errno> {
        if !path.starts_with('/') {
            return Err(Errno::EINVAL);
        }
        let vfs = self.kernel.vfs();
        vfs.resolve(
            root,
            root,
            path.as_bytes(),
            crate::fs::vfs::Follow::Yes,
            &crate::fs::FsCred::root(),
        )
    }

    /// Makes container `cid`'s root file system read-only (the spec's `root.readonly`):
    /// writes below it fail with `EROFS`; the mounts on it keep their own setting.
    pub fn set_root_readonly(&self, cid: Option<&str>) -> Result<(), Errno> {
        self.tree(cid)?.mount.set_readonly(true);
        Ok(())
    }

    /// Masks `path` as runc does for `maskedPaths`: a directory is covered by an empty
    /// read-only tmpfs, anything else by `/dev/null`. A path that does not exist is left
    /// alone (`Ok(false)`), as runc leaves it.
    pub fn mask_path(&self, cid: Option<&str>, path: &str) -> Result<bool, Errno> {
        let root = self.tree(cid)?;
        let at = match self.lookup(&root, path) {
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
            let null = self.lookup(&root, "/dev/null")?;
            vfs.bind(&at, &null, false)?;
        }
        Ok(true)
    }

    /// Makes `path` read-only as runc does for `readonlyPaths` (a read-only bind mount
    /// of itself). A path that does not exist is left alone (`Ok(false)`).
    pub fn readonly_path(&self, cid: Option<&str>, path: &str) -> Result<bool, Errno> {
        let root = self.tree(cid)?;
        let at = match self.lookup(&root, path) {
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
        cid: Option<&str>,
        own: &str,
        dest: &str,
        readonly: bool,
        flags: MountFlags,
    ) -> Result<(), Errno> {
        let root = self.tree(cid)?;
        let src = self.lookup(&root, own)?;
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
            let at = self.make_dirs(&root, dest)?;
            vfs.bind(&at, &src, readonly)?
        };
        if readonly {
            m.set_readonly(true);
        }
        m.set_flags(flags.noexec, flags.nodev);
        Ok(())
    }

    /// Gives the devpts mounted at `path` of container `cid`'s tree the mount options
    /// `o` (an OCI `devpts` mount's `mode=`, `gid=`, `ptmxmode=`...): `ENOTDIR`-like
    /// `EINVAL` when no devpts is there.
    pub fn set_devpts_options(
        &self,
        cid: Option<&str>,
        path: &str,
        o: crate::fs::DevptsOptions,
    ) -> Result<(), Errno> {
        let root = self.tree(cid)?;
        let at = self.lookup(&root, path)?;
        let inode = at.inode();
        let pts = inode
            .as_any()
            .downcast_ref::<crate::fs::devpts::Devpts>()
            .ok_or(Errno::EINVAL)?;
        pts.set_options(o);
        Ok(())
    }

    /// Writes a file of the sandbox's own at the absolute path `path` of container
    /// `cid`'s tree, owned by root with permission bits `mode`, replacing what the root
    /// file system has there (in its writable overlay; the host's file is untouched),
    /// before the container's first process runs: the `/etc/hosts` and
    /// `/etc/resolv.conf` a sandbox network gets.
    pub fn write_file(
        &self,
        cid: Option<&str>,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), Errno> {
        use crate::fs::{FsCred, NewNode};
        let (dir, name) = path.rsplit_once('/').ok_or(Errno::EINVAL)?;
        if !path.starts_with('/') || name.is_empty() || name == "." || name == ".." {
            return Err(Errno::EINVAL);
        }
        let root = self.tree(cid)?;
        let parent = self.make_dirs(&root, dir)?;
        let cred = FsCred::root();
        let dir = parent.inode();
        match dir.create(name.as_bytes(), NewNode::File { mode }, &cred) {
            Ok(_) => {}
            Err(Errno::EEXIST) => {
                dir.unlink(name.as_bytes(), false)?;
                dir.create(name.as_bytes(), NewNode::File { mode }, &cred)?;
            }
            Err(e) => return Err(e),
        }
        // Through the tree, so that the file written is the one a lookup finds.
        let file = self
            .kernel
            .vfs()
            .step(&root, &parent, name.as_bytes(), &cred)?;
        let ops = file.inode().open(linux_abi::flags::open::O_WRONLY)?;
        let mut off = 0;
        while off < contents.len() {
            match ops.write_at(&contents[off..], off as u64)? {
                0 => return Err(Errno::EIO),
                n => off += n,
            }
        }
        Ok(())
    }

    /// Creates the missing directories of `dest` in the tree at `root` (in its writable
    /// upper layer) and returns it.
    fn make_dirs(&self, root: &VfsPath, dest: &str) -> Result<VfsPath, Errno> {
        use crate::fs::{FsCred, NewNode};
        let vfs = self.kernel.vfs();
        let root = root.clone();
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

    /// Creates a process for `spec` in container `cid` and loads its program, without
    /// running it.
    fn load(&self, cid: Option<&str>, spec: ProcessSpec) -> Result<Arc<Task>, SentryError> {
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
        let (root, tag) = match cid {
            None => (self.kernel.vfs().root(), None),
            Some(id) => {
                let inner = self.inner();
                let c = inner
                    .containers
                    .get(id)
                    .ok_or(SentryError::Config("no such container"))?;
                (c.root.clone(), Some(c.tag.clone()))
            }
        };
        let ctx = self
            .kernel
            .vfs()
            .context_at(root, b"/")
            .map_err(SentryError::Filesystem)?;
        if let Some(m) = spec.umask {
            ctx.set_umask(m & 0o777);
        }
        let t = Task::new_process(&self.kernel, 0, creds, Arc::new(fds), Arc::new(ctx))?;
        let tg = t.thread_group();
        if let Some(tag) = tag {
            tg.set_container(tag);
        }
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
        let t = self.load(None, spec)?;
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
        self.exec_in(None, spec)
    }

    /// Starts another process in container `cid` (`runc exec`), rooted in its tree, and
    /// returns its pid. The container's first process must be running.
    pub fn exec_in(&self, cid: Option<&str>, spec: ProcessSpec) -> Result<i32, SentryError> {
        if self.inner().init.as_ref().is_none_or(|i| i.is_exiting()) {
            return Err(SentryError::Config("the sandbox is not running"));
        }
        if let Some(id) = cid {
            match self.container_state(id) {
                Some(InitState::Running) => {}
                None => return Err(SentryError::Config("no such container")),
                Some(_) => return Err(SentryError::Config("the container is not running")),
            }
        }
        let t = self.load(cid, spec)?;
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
                _ => inner.execs.get(&pid).cloned().or_else(|| {
                    inner
                        .containers
                        .values()
                        .filter_map(|c| c.init.as_ref())
                        .find(|i| i.tgid() == pid)
                        .cloned()
                }),
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

    /// Adds container `id` to the pod: a file system tree of its own whose root is an
    /// overlay over the tree `gofer` serves (a bare tmpfs without one), with its own
    /// `/proc`, `/dev` and `/sys`. Its mounts are made with the `cid` methods, then its
    /// first process is loaded with [`Sandbox::create_in`]. An id in use by a container
    /// that has not stopped is refused; a stopped one's is taken over.
    pub fn add_container(&self, id: &str, gofer: Option<OwnedFd>) -> Result<(), SentryError> {
        if id.is_empty() {
            return Err(SentryError::Config("empty container id"));
        }
        if self.inner().init.as_ref().is_none_or(|i| i.is_exiting()) {
            return Err(SentryError::Config("the sandbox is not running"));
        }
        match self.container_state(id) {
            Some(InitState::Stopped(_)) => self.remove_container(id),
            None if self.inner().containers.contains_key(id) => self.remove_container(id),
            None => {}
            Some(_) => return Err(SentryError::Config("the container already exists")),
        }
        let vfs = self.kernel.vfs();
        let root = vfs
            .new_tree(
                self.kernel.platform().memory_file().clone(),
                gofer,
                self.kernel.terminals_shared(),
            )
            .map_err(SentryError::Filesystem)?;
        let mut inner = self.inner();
        if inner.containers.contains_key(id) {
            drop(inner);
            vfs.remove_tree(&root.mount);
            return Err(SentryError::Config("the container already exists"));
        }
        inner.containers.insert(
            id.to_string(),
            Sub {
                tag: Arc::from(id),
                root,
                unstarted: None,
                init: None,
            },
        );
        Ok(())
    }

    /// Loads container `id`'s first process without running it, rooted in its tree.
    pub fn create_in(&self, id: &str, spec: ProcessSpec) -> Result<i32, SentryError> {
        match self.inner().containers.get(id) {
            None => return Err(SentryError::Config("no such container")),
            Some(c) if c.init.is_some() => {
                return Err(SentryError::Config(
                    "the container already has a first process",
                ));
            }
            Some(_) => {}
        }
        let t = self.load(Some(id), spec)?;
        let pid = t.tgid();
        let tg = t.thread_group().clone();
        let mut inner = self.inner();
        match inner.containers.get_mut(id) {
            Some(c) if c.init.is_none() => {
                c.init = Some(tg);
                c.unstarted = Some(t);
                Ok(pid)
            }
            _ => {
                drop(inner);
                tg.kill(SIGKILL);
                let h = task::spawn(t).map_err(SentryError::Thread)?;
                self.kernel.track_thread(h);
                Err(SentryError::Config("the container changed while loading"))
            }
        }
    }

    /// Runs container `id`'s first process. When it ends, the container's other
    /// processes are killed, as the end of a container's init ends its container.
    pub fn start_in(&self, id: &str) -> Result<(), SentryError> {
        let (t, tag) = {
            let mut inner = self.inner();
            let c = inner
                .containers
                .get_mut(id)
                .ok_or(SentryError::Config("no such container"))?;
            let t = c.unstarted.take().ok_or(SentryError::Config(
                "the first process is not waiting to start",
            ))?;
            (t, c.tag.clone())
        };
        let tg = t.thread_group().clone();
        let h = task::spawn(t).map_err(SentryError::Thread)?;
        self.kernel.track_thread(h);
        let kernel = self.kernel.clone();
        let reaper = std::thread::Builder::new()
            .name(format!("container-{id}"))
            .spawn(move || {
                tg.wait_exit();
                for g in groups_of(&kernel, Some(&tag)) {
                    g.kill(SIGKILL);
                }
            })
            .map_err(SentryError::Thread)?;
        self.kernel.track_thread(reaper);
        Ok(())
    }

    /// The state of container `id`'s first process (`None`: no such container, or not
    /// loaded yet).
    pub fn container_state(&self, id: &str) -> Option<InitState> {
        self.inner().containers.get(id)?.state()
    }

    /// The pid of container `cid`'s first process.
    pub fn init_pid(&self, cid: Option<&str>) -> Option<i32> {
        let inner = self.inner();
        match cid {
            None => inner.init.as_ref().map(|g| g.tgid()),
            Some(id) => inner.containers.get(id)?.init.as_ref().map(|g| g.tgid()),
        }
    }

    /// Ends container `id`'s first process before it ever ran.
    fn kill_unstarted_in(&self, id: &str) -> bool {
        let t = match self.inner().containers.get_mut(id) {
            Some(c) => c.unstarted.take(),
            None => None,
        };
        let Some(t) = t else {
            return false;
        };
        t.thread_group().kill(SIGKILL);
        match task::spawn(t) {
            Ok(h) => self.kernel.track_thread(h),
            Err(e) => tracing::error!("cannot end the unstarted first process: {e}"),
        }
        true
    }

    /// Sends `sig` to the first process of container `id` (its `kill` without `--all`).
    /// Unlike the sandbox's PID 1 it is an ordinary process of the shared PID space, so
    /// default actions apply. `SIGKILL` ends an unstarted one.
    pub fn signal_init_in(&self, id: &str, sig: i32) -> Result<(), Errno> {
        if !(1..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        if sig == SIGKILL && self.kill_unstarted_in(id) {
            return Ok(());
        }
        let tg = self
            .inner()
            .containers
            .get(id)
            .and_then(|c| c.init.clone())
            .ok_or(Errno::ESRCH)?;
        if tg.is_dead() {
            return Err(Errno::ESRCH);
        }
        tg.send_signal(SigInfo::new(sig, SI_USER));
        Ok(())
    }

    /// Sends `sig` to process `pid` if it belongs to container `cid` (`ESRCH` if not).
    pub fn signal_in(&self, cid: Option<&str>, pid: i32, sig: i32) -> Result<(), Errno> {
        if cid.is_none() && pid == 1 {
            return self.signal(pid, sig);
        }
        let tg = self.kernel.thread_group(pid).ok_or(Errno::ESRCH)?;
        if tg.container().map(|c| &**c) != cid {
            return Err(Errno::ESRCH);
        }
        match cid {
            None => self.signal(pid, sig),
            Some(_) if !(1..=64).contains(&sig) => Err(Errno::EINVAL),
            Some(_) => {
                tg.send_signal(SigInfo::new(sig, SI_USER));
                Ok(())
            }
        }
    }

    /// Sends `sig` to every process of container `cid` (its `kill --all`).
    pub fn signal_container(&self, cid: Option<&str>, sig: i32) -> Result<(), Errno> {
        if !(1..=64).contains(&sig) {
            return Err(Errno::EINVAL);
        }
        if sig == SIGKILL {
            match cid {
                None => {
                    self.kill_unstarted();
                }
                Some(id) => {
                    self.kill_unstarted_in(id);
                }
            }
        }
        for tg in groups_of(&self.kernel, cid) {
            tg.send_signal(SigInfo::new(sig, SI_USER));
        }
        Ok(())
    }

    /// The live processes of container `cid`, by pid.
    pub fn processes_in(&self, cid: Option<&str>) -> Vec<ProcessInfo> {
        self.processes()
            .into_iter()
            .filter(|p| {
                self.kernel
                    .thread_group(p.pid)
                    .is_some_and(|g| g.container().map(|c| &**c) == cid)
            })
            .collect()
    }

    /// Removes container `id` from the pod: its processes are killed and its tree is
    /// forgotten (its file systems go once nothing holds them open).
    pub fn remove_container(&self, id: &str) {
        self.kill_unstarted_in(id);
        for g in groups_of(&self.kernel, Some(id)) {
            g.kill(SIGKILL);
        }
        let gone = self.inner().containers.remove(id);
        if let Some(c) = gone {
            self.kernel.vfs().remove_tree(&c.root.mount);
        }
    }

    /// The ids of the pod's other containers.
    pub fn containers(&self) -> Vec<String> {
        self.inner().containers.keys().cloned().collect()
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

/// The live processes of container `cid` (`None`: the root container's).
fn groups_of(kernel: &Kernel, cid: Option<&str>) -> Vec<Arc<ThreadGroup>> {
    kernel
        .pids()
        .into_iter()
        .filter_map(|pid| kernel.thread_group(pid))
        .filter(|g| !g.is_dead() && g.container().map(|c| &**c) == cid)
        .collect()
}
