//! The library's front door: [`Sandbox::builder`], [`SandboxBuilder`], [`Child`],
//! [`Output`], [`ExitStatus`].

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Stdio};

use crate::config::{Access, Bind, Limits, Network, Platform, Settings};
use crate::error::{
    EXIT_CANNOT_EXECUTE, EXIT_CPU_LIMIT, EXIT_NOT_FOUND, EXIT_RUNTIME_ERROR, Error,
};
use crate::monitor::{self, Launch};
use crate::profile::Profile;
use crate::role::{self, Role};
use crate::spec::{BootSpec, MountSpec};

/// A sandbox description, checked and ready to start ([`Sandbox::spawn`]).
#[derive(Debug)]
pub struct Sandbox {
    launch: Launch,
    settings: Settings,
}

/// Describes a sandbox: what runs in it, on what, with what it may see and use.
///
/// By default the sandbox sees the host's `/` read-only under a private writable overlay
/// (as `runsc do`), inherits this process's environment, starts in this process's
/// working directory (when the root is the host's `/`, else in `/`), and runs on the
/// systrap platform without network.
#[derive(Debug)]
pub struct SandboxBuilder {
    rootfs: PathBuf,
    network: Network,
    env_clear: bool,
    env: Vec<(OsString, OsString)>,
    cwd: Option<OsString>,
    binds: Vec<Bind>,
    limits: Limits,
    command: Vec<OsString>,
    profile: Option<Profile>,
    record: Option<PathBuf>,
    hostname: Option<String>,
    settings: Settings,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

impl Sandbox {
    /// A builder with the defaults described at [`SandboxBuilder`].
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            rootfs: PathBuf::from("/"),
            network: Network::None,
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            binds: Vec::new(),
            limits: Limits::default(),
            command: Vec::new(),
            profile: None,
            record: None,
            hostname: None,
            settings: Settings::default(),
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }

    /// Runs the sandbox from the calling process and returns its exit status, as
    /// `runsc do` does: the calling process must be single-threaded, have nothing else
    /// to do, and have called [`crate::init`]. Signals `SIGTERM`, `SIGHUP` (and `SIGINT`,
    /// `SIGQUIT` sent by a process) are forwarded to the sandbox.
    #[doc(hidden)]
    pub fn run_here(self) -> Result<i32, Error> {
        monitor::run(&self.settings, self.launch, None)
    }

    fn spawn_with(
        self,
        stdin: Option<Stdio>,
        stdout: Option<Stdio>,
        stderr: Option<Stdio>,
    ) -> Result<Child, Error> {
        let (launch_read, launch_write) = pipe()?;
        let (report_read, report_write) = pipe()?;
        let role = Role::Monitor {
            launch_fd: 3,
            report_fd: 4,
        };
        let mut cmd = role::command(role, &self.settings, "rsentry-monitor")?;
        cmd.stdin(stdin.unwrap_or_else(Stdio::piped))
            .stdout(stdout.unwrap_or_else(Stdio::piped))
            .stderr(stderr.unwrap_or_else(Stdio::piped));
        let mut child = crate::child::spawn_free_with_fds(
            cmd,
            &[(&launch_read, 3), (&report_write, 4)],
            "sandbox monitor",
        )?;
        drop((launch_read, report_write));
        let json = serde_json::to_vec(&self.launch).map_err(|e| Error::Invalid(e.to_string()))?;
        // A monitor that dies before reading gives EPIPE here; its status says why.
        let _ = std::fs::File::from(launch_write).write_all(&json);
        Ok(Child {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            report: Some(report_read),
        })
    }

    /// Starts the sandbox; its standard streams are pipes unless the builder set them.
    pub fn spawn(self) -> Result<Child, Error> {
        self.spawn_with(None, None, None)
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::nix("pipe", e))
}

impl SandboxBuilder {
    /// The host directory the sandbox sees as `/`: served read-only by a Gofer, under a
    /// private writable overlay kept in the sandbox's memory. Default: the host's `/`.
    pub fn rootfs(mut self, dir: impl Into<PathBuf>) -> Self {
        self.rootfs = dir.into();
        self
    }

    /// How application code is run ([`Platform::Systrap`] by default).
    pub fn platform(mut self, p: Platform) -> Self {
        self.settings.platform = p;
        self
    }

    /// The network ([`Network::None`] by default, or [`Network::Host`]).
    pub fn network(mut self, n: Network) -> Self {
        self.network = n;
        self
    }

    /// Sets an environment variable of the program.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Starts from an empty environment instead of this process's.
    pub fn env_clear(mut self) -> Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// The working directory inside the sandbox (absolute).
    pub fn cwd(mut self, dir: impl AsRef<OsStr>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Mounts host directory `source` at `target` inside the sandbox, served by a Gofer
    /// of its own; with [`Access::ReadWrite`], writes reach the host directory.
    pub fn bind(
        mut self,
        source: impl Into<PathBuf>,
        target: impl Into<String>,
        access: Access,
    ) -> Self {
        self.binds.push(Bind {
            source: source.into(),
            target: target.into(),
            access,
        });
        self
    }

    /// Resource limits (see [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The program and its arguments; the program is looked up in the sandbox's `PATH`
    /// when it has no `/`.
    pub fn command<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command = argv.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }

    /// Enforces a system-call profile in the Sentry (see [`crate::profile`]).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Records every system call the program makes, with its argument classes, into the
    /// profile file `path` when the sandbox ends (merged into a profile already there).
    pub fn record_profile(mut self, path: impl Into<PathBuf>) -> Self {
        self.record = Some(path.into());
        self
    }

    /// The host name inside the sandbox (default: the host's).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = Some(name.into());
        self
    }

    /// Prints every system call of the program, strace-style, to the log.
    pub fn strace(mut self, on: bool) -> Self {
        self.settings.strace = on;
        self
    }

    /// Writes a debug log per process of the sandbox into `dir`.
    pub fn debug_log(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.debug_log = Some(dir.into());
        self
    }

    /// The program's standard input (default: a pipe for [`Self::spawn`], nothing for
    /// [`Self::output`]).
    pub fn stdin(mut self, s: impl Into<Stdio>) -> Self {
        self.stdin = Some(s.into());
        self
    }

    /// The program's standard output (default: a pipe).
    pub fn stdout(mut self, s: impl Into<Stdio>) -> Self {
        self.stdout = Some(s.into());
        self
    }

    /// The program's standard error (default: a pipe).
    pub fn stderr(mut self, s: impl Into<Stdio>) -> Self {
        self.stderr = Some(s.into());
        self
    }

    /// Settings shared by every process of the sandbox (`runsc` passes its flags).
    #[doc(hidden)]
    pub fn settings(mut self, s: Settings) -> Self {
        let platform = self.settings.platform;
        self.settings = s;
        self.settings.platform = platform;
        self
    }

    /// Checks the description and makes it a [`Sandbox`] (with its standard streams
    /// still to choose at [`Sandbox::spawn`]).
    pub fn build(self) -> Result<Sandbox, Error> {
        Ok(self.split()?.0)
    }

    #[allow(clippy::type_complexity)]
    fn split(self) -> Result<(Sandbox, [Option<Stdio>; 3]), Error> {
        let stdio = [self.stdin, self.stdout, self.stderr];
        if self.command.is_empty() {
            return Err(Error::Usage("missing command".into()));
        }
        let rootfs = std::fs::canonicalize(&self.rootfs).map_err(|e| {
            Error::Invalid(format!(
                "rootfs {}: {}",
                self.rootfs.display(),
                monitor::strerror(&e)
            ))
        })?;
        if !rootfs.is_dir() {
            return Err(Error::Invalid(format!(
                "rootfs {} is not a directory",
                self.rootfs.display()
            )));
        }
        let cwd: Vec<u8> = match self.cwd {
            Some(c) if c.as_bytes().first() == Some(&b'/') => c.into_vec(),
            Some(c) => return Err(Error::Invalid(format!("cwd {c:?} is not absolute"))),
            None if rootfs == Path::new("/") => std::env::current_dir()
                .map(|p| p.into_os_string().into_vec())
                .unwrap_or_else(|_| b"/".to_vec()),
            None => b"/".to_vec(),
        };
        let inherited: Vec<(Vec<u8>, Vec<u8>)> = if self.env_clear {
            Vec::new()
        } else {
            std::env::vars_os()
                .filter(|(k, _)| k != role::ROLE_ENV)
                .map(|(k, v)| (k.into_vec(), v.into_vec()))
                .collect()
        };
        let envp = merge_env(inherited, self.env)?;
        let mut argv: Vec<Vec<u8>> = self.command.into_iter().map(OsString::into_vec).collect();
        if let Some(found) = monitor::resolve_in_path(&rootfs, &argv[0], &envp) {
            argv[0] = found;
        }
        let mut binds = Vec::new();
        let mut mounts = Vec::new();
        for b in self.binds {
            let source = std::fs::canonicalize(&b.source).map_err(|e| {
                Error::Invalid(format!(
                    "bind {}: {}",
                    b.source.display(),
                    monitor::strerror(&e)
                ))
            })?;
            if !source.is_dir() {
                return Err(Error::Invalid(format!(
                    "bind {}: not a directory",
                    b.source.display()
                )));
            }
            if !b.target.starts_with('/') || b.target.split('/').any(|c| c == "..") {
                return Err(Error::Invalid(format!(
                    "bind target {:?} must be absolute, without \"..\"",
                    b.target
                )));
            }
            mounts.push(MountSpec {
                target: b.target.clone(),
                readonly: b.access == Access::ReadOnly,
            });
            binds.push(Bind { source, ..b });
        }
        if let Some(p) = &self.profile {
            p.to_policy()?;
        }
        let hostname = self.hostname.unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "rsentry".into())
        });
        let boot = BootSpec {
            argv,
            envp,
            cwd,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            hostname,
            mounts,
            profile: self.profile,
            record: self.record.is_some(),
            limits: self.limits,
            ethernet: None,
            files: Vec::new(),
        };
        let launch = Launch {
            boot,
            rootfs,
            binds,
            record: self.record,
        };
        let mut settings = self.settings;
        settings.network = self.network;
        let sandbox = Sandbox { launch, settings };
        Ok((sandbox, stdio))
    }

    /// Starts the sandbox and returns at once; standard streams not set on the builder
    /// are pipes ([`Child::stdin`], [`Child::stdout`], [`Child::stderr`]).
    pub fn spawn(self) -> Result<Child, Error> {
        let (sandbox, [i, o, e]) = self.split()?;
        sandbox.spawn_with(i, o, e)
    }

    /// Runs the sandbox to its end with the standard streams of this process (unless
    /// set on the builder) and returns its status.
    pub fn status(self) -> Result<ExitStatus, Error> {
        let (sandbox, [i, o, e]) = self.split()?;
        let inherit = |s: Option<Stdio>| Some(s.unwrap_or_else(Stdio::inherit));
        sandbox
            .spawn_with(inherit(i), inherit(o), inherit(e))?
            .wait()
    }

    /// Runs the sandbox to its end, with no standard input (unless set), and collects
    /// its standard output and error.
    pub fn output(self) -> Result<Output, Error> {
        let (sandbox, [i, o, e]) = self.split()?;
        let child = sandbox.spawn_with(Some(i.unwrap_or_else(Stdio::null)), o, e)?;
        child.wait_with_output()
    }
}

/// The environment `inherited` with `overrides` applied (in place) or appended. Names
/// and values are bytes, as Linux passes them; a name must be non-empty and without `=`.
pub(crate) fn merge_env(
    inherited: Vec<(Vec<u8>, Vec<u8>)>,
    overrides: Vec<(OsString, OsString)>,
) -> Result<Vec<Vec<u8>>, Error> {
    let mut vars = inherited;
    for (k, v) in overrides {
        let (k, v) = (k.into_vec(), v.into_vec());
        if k.is_empty() || k.contains(&b'=') || k.contains(&0) || v.contains(&0) {
            return Err(Error::Invalid(format!(
                "environment variable {:?} is not a valid name",
                String::from_utf8_lossy(&k)
            )));
        }
        match vars.iter_mut().find(|(name, _)| *name == k) {
            Some(slot) => slot.1 = v,
            None => vars.push((k, v)),
        }
    }
    Ok(vars
        .into_iter()
        .map(|(mut k, v)| {
            k.push(b'=');
            k.extend_from_slice(&v);
            k
        })
        .collect())
}

/// How a sandbox ended, as a shell reports it: the program's exit code, or 128+N when it
/// was killed by signal N (a profile's `kill` gives 128+31, `SIGSYS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus(i32);

impl ExitStatus {
    /// The shell-style code.
    pub fn code(self) -> i32 {
        self.0
    }

    /// Whether the program exited with 0.
    pub fn success(self) -> bool {
        self.0 == 0
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

/// What [`SandboxBuilder::output`] collected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How the sandbox ended.
    pub status: ExitStatus,
    /// Everything the program wrote to its standard output.
    pub stdout: Vec<u8>,
    /// Everything the program (and the sandbox, for its own errors) wrote to standard
    /// error.
    pub stderr: Vec<u8>,
}

/// A running sandbox ([`SandboxBuilder::spawn`]).
#[derive(Debug)]
pub struct Child {
    child: std::process::Child,
    report: Option<OwnedFd>,
    /// The program's standard input, when it is a pipe.
    pub stdin: Option<ChildStdin>,
    /// The program's standard output, when it is a pipe.
    pub stdout: Option<ChildStdout>,
    /// The program's standard error, when it is a pipe.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// The host pid of the sandbox's monitor process.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Ends the sandbox at once (`SIGKILL` to its monitor, whose processes die with it).
    pub fn kill(&mut self) -> Result<(), Error> {
        self.child
            .kill()
            .map_err(|e| Error::host("kill the sandbox", e))
    }

    /// Asks the program to end: `SIGTERM`, forwarded to the sandbox.
    pub fn terminate(&self) -> Result<(), Error> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .map_err(|e| Error::nix("signal the sandbox", e))
    }

    /// Waits for the sandbox to end (closing its standard input first, as
    /// `std::process::Child::wait` does). A sandbox that could not start (a program
    /// that is not found, a broken root file system) gives its error.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .map_err(|e| Error::host("wait for the sandbox", e))?;
        self.finish(status)
    }

    /// Waits for the end while collecting standard output and error (read at the same
    /// time, so that neither pipe fills up).
    pub fn wait_with_output(mut self) -> Result<Output, Error> {
        drop(self.stdin.take());
        let err_reader = self.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut b = Vec::new();
                let _ = e.read_to_end(&mut b);
                b
            })
        });
        let mut stdout = Vec::new();
        if let Some(mut o) = self.stdout.take() {
            let _ = o.read_to_end(&mut stdout);
        }
        let stderr = err_reader
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    fn finish(&mut self, status: std::process::ExitStatus) -> Result<ExitStatus, Error> {
        use std::os::unix::process::ExitStatusExt;
        let code = match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => EXIT_RUNTIME_ERROR,
        };
        if matches!(
            code,
            EXIT_RUNTIME_ERROR | EXIT_CANNOT_EXECUTE | EXIT_NOT_FOUND | EXIT_CPU_LIMIT | 2
        ) && let Some(fd) = self.report.take()
        {
            let mut bytes = Vec::new();
            let _ = std::fs::File::from(fd).read_to_end(&mut bytes);
            if let Some(e) = role::report_error(&bytes) {
                return Err(e);
            }
        }
        Ok(ExitStatus(code))
    }
}
