//! The command line: global flags and subcommands, parsed with `clap`'s derive API.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::oci::cli as oci;

/// runsc: run a program in the rsentry sandbox.
#[derive(Debug, Parser)]
#[command(name = "runsc", version, about, propagate_version = true)]
pub struct Cli {
    /// Flags that apply to every subcommand.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by all subcommands; `runsc` forwards them to the processes it starts.
#[derive(Clone, Debug, Args)]
pub struct GlobalArgs {
    /// Directory for runtime state (used by the OCI lifecycle commands).
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        default_value = "/run/rsentry"
    )]
    pub root: PathBuf,
    /// How application code is run and trapped.
    #[arg(long, global = true, value_enum, default_value_t = PlatformKind::Systrap)]
    pub platform: PlatformKind,
    /// Network for the sandbox: `none` (the Sentry's loopback only), `host` (the
    /// application's sockets are host sockets) or `sandbox` (the Sentry's stack on an
    /// Ethernet link: for `do` a veth pair made for the sandbox, the host end addressed;
    /// for a container the interface of the spec's network namespace). Default: `none`
    /// for `do`, `sandbox` for a container (as gVisor's).
    #[arg(long, global = true, value_enum)]
    pub network: Option<NetworkKind>,
    /// Switch on debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Write a debug log per process (runsc, gofer, sandbox) into DIR; implies --debug.
    #[arg(long, global = true, value_name = "DIR")]
    pub debug_log: Option<PathBuf>,
    /// Print every system call of the application, strace-style, to the log.
    #[arg(long, global = true)]
    pub strace: bool,
    /// Log to FILE (appended) instead of standard error.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Names this sandbox's logs under --debug-log (`runsc.ID.COMMAND.log`); `runsc do`
    /// passes its own host pid to the processes it starts. Default: the host pid.
    #[arg(long, global = true, hide = true, value_name = "ID")]
    pub sandbox_id: Option<String>,
    /// Testing only: make the Sentry or the Gofer panic on purpose (see `panic_policy`).
    #[arg(long, global = true, value_enum, hide = true, value_name = "WHERE")]
    pub debug_panic: Option<DebugPanic>,
    /// Accepted for runc compatibility (containerd and podman pass it; there is no
    /// systemd to ask here).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (`--rootless`, `--rootless=true|false|auto`).
    #[arg(long, global = true, hide = true, value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true")]
    pub rootless: Option<String>,
}

impl GlobalArgs {
    /// `--network` of `runsc do`: loopback only unless asked.
    pub fn network_for_do(&self) -> NetworkKind {
        self.network.unwrap_or(NetworkKind::None)
    }

    /// `--network` of a container: the Sentry's own stack on the spec's namespace
    /// unless asked otherwise.
    pub fn network_for_container(&self) -> NetworkKind {
        self.network.unwrap_or(NetworkKind::Sandbox)
    }

    /// The settings every process of a sandbox shares, from these flags.
    pub fn settings(&self) -> rsentry::__private::Settings {
        rsentry::__private::Settings {
            name: "runsc".into(),
            platform: self.platform.to_lib(),
            debug: self.debug,
            debug_log: self.debug_log.clone(),
            log: self.log.clone(),
            log_json: self.log_format == LogFormat::Json,
            strace: self.strace,
            sandbox_id: self.sandbox_id.clone(),
            debug_panic: self.debug_panic.map(|p| match p {
                DebugPanic::Sentry => rsentry::__private::DebugPanic::Sentry,
                DebugPanic::Gofer => rsentry::__private::DebugPanic::Gofer,
            }),
            network: self.network_for_do().to_lib(),
        }
    }

    /// The same flags as arguments, for a child `runsc` process.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut v: Vec<std::ffi::OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            format!("--platform={}", self.platform.name()).into(),
            format!("--log-format={}", self.log_format.name()).into(),
        ];
        if let Some(n) = self.network {
            v.push(format!("--network={}", n.name()).into());
        }
        if self.debug {
            v.push("--debug".into());
        }
        if self.strace {
            v.push("--strace".into());
        }
        if let Some(d) = &self.debug_log {
            v.push("--debug-log".into());
            v.push(d.clone().into());
        }
        if let Some(f) = &self.log {
            v.push("--log".into());
            v.push(f.clone().into());
        }
        if let Some(id) = &self.sandbox_id {
            v.push(format!("--sandbox-id={id}").into());
        }
        if let Some(p) = self.debug_panic {
            v.push(format!("--debug-panic={}", p.name()).into());
        }
        v
    }
}

/// `--platform`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlatformKind {
    /// Stub processes traced with PTRACE_SYSEMU.
    Ptrace,
    /// A KVM virtual machine (needs /dev/kvm).
    Kvm,
    /// Stub processes under a seccomp filter that traps every system call (SIGSYS).
    Systrap,
}

impl PlatformKind {
    /// The library's name for it.
    pub fn to_lib(self) -> rsentry::Platform {
        match self {
            PlatformKind::Ptrace => rsentry::Platform::Ptrace,
            PlatformKind::Kvm => rsentry::Platform::Kvm,
            PlatformKind::Systrap => rsentry::Platform::Systrap,
        }
    }

    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            PlatformKind::Ptrace => "ptrace",
            PlatformKind::Kvm => "kvm",
            PlatformKind::Systrap => "systrap",
        }
    }
}

/// Where `--debug-panic` makes a sandbox panic (a hidden switch for the tests of the panic
/// policy; it gives the application no new power: only whoever starts `runsc` sets it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DebugPanic {
    /// The Sentry panics in the application thread's task loop when the application calls
    /// `sync(2)`.
    Sentry,
    /// The Gofer panics when asked to walk to a file named [`gofer::DEBUG_PANIC_NAME`].
    Gofer,
}

impl DebugPanic {
    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            DebugPanic::Sentry => "sentry",
            DebugPanic::Gofer => "gofer",
        }
    }
}

/// `--network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NetworkKind {
    /// No network: only a loopback-less empty network namespace.
    None,
    /// The host's network stack: the application's sockets are host sockets.
    Host,
    /// The Sentry's own network stack on an Ethernet link (`do`: a veth pair made for the
    /// sandbox; a container: its network namespace's interface).
    Sandbox,
}

impl NetworkKind {
    /// The library's value.
    pub fn to_lib(self) -> rsentry::Network {
        match self {
            NetworkKind::Host => rsentry::Network::Host,
            NetworkKind::Sandbox => rsentry::Network::Sandbox,
            NetworkKind::None => rsentry::Network::None,
        }
    }

    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::None => "none",
            NetworkKind::Host => "host",
            NetworkKind::Sandbox => "sandbox",
        }
    }
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The flag value.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new sandbox, with the host's root read-only under a private
    /// writable overlay; passes the environment and working directory through.
    Do(DoArgs),
    /// Create a container from an OCI bundle; its process waits for `start`.
    Create(oci::CreateArgs),
    /// Start a created container's process.
    Start(oci::IdArgs),
    /// Print a container's state (the OCI runtime spec's JSON).
    State(oci::IdArgs),
    /// Send a signal to a container's first process (or, with --all, to every process).
    Kill(oci::KillArgs),
    /// Delete a container (and, with --force, kill it first).
    Delete(oci::DeleteArgs),
    /// Create and start a container, and wait for it.
    Run(oci::RunArgs),
    /// Run another process in a running container.
    Exec(oci::ExecArgs),
    /// List the processes of a container.
    Ps(oci::PsArgs),
    /// List the containers under --root.
    List(oci::ListArgs),
    /// Write a default config.json.
    Spec(oci::SpecArgs),
    /// Wait for a container's first process to exit and print its status.
    Wait(oci::IdArgs),
    /// Print a container's resource usage (--stats once; otherwise every --interval).
    Events(oci::EventsArgs),
    /// Freeze every process of a container (not supported yet).
    Pause(oci::IdArgs),
    /// Thaw a paused container (not supported yet).
    Resume(oci::IdArgs),
    /// Print what this runtime supports (the OCI features JSON).
    Features,
    /// Internal: the supervisor of a container's sandbox.
    #[command(hide = true)]
    Sandbox(oci::SupervisorArgs),
    /// Internal: carries the exit status of a process started by `exec --detach`.
    #[command(hide = true)]
    ExecWait(oci::ExecWaitArgs),
    /// Internal: the Gofer process that serves the root file system.
    #[command(hide = true)]
    Gofer(GoferArgs),
    /// Internal: the sandbox process that runs the Sentry.
    #[command(hide = true)]
    Boot(BootArgs),
}

/// `runsc do`.
#[derive(Debug, Args)]
pub struct DoArgs {
    /// Root file system of the sandbox (served read-only, with a private writable overlay).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub rootfs: PathBuf,
    /// Working directory inside the sandbox (default: the caller's when the rootfs is `/`,
    /// else `/`).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<std::ffi::OsString>,
    /// Add or override an environment variable (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<std::ffi::OsString>,
    /// Enforce the system-call profile in FILE (see `rsentry::profile`): a call outside
    /// it gets the profile's action (an errno, or the process is killed) and one warning.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Record every system call the command makes, with the argument classes that
    /// matter, into the profile FILE when it ends (merged into a profile already there).
    #[arg(long, value_name = "FILE")]
    pub record_profile: Option<PathBuf>,
    /// The command and its arguments (any bytes, as Linux passes them).
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `runsc gofer` (internal).
#[derive(Debug, Args)]
pub struct GoferArgs {
    /// The host directory to serve.
    #[arg(long = "serve-root", value_name = "DIR")]
    pub serve_root: PathBuf,
    /// Refuse every modification.
    #[arg(long)]
    pub read_only: bool,
    /// The inherited lisafs socket.
    #[arg(long, value_name = "N")]
    pub fd: i32,
}

/// `runsc boot` (internal).
#[derive(Debug, Args)]
pub struct BootArgs {
    /// The inherited pipe carrying the JSON boot spec.
    #[arg(long, value_name = "N")]
    pub spec_fd: i32,
    /// The inherited lisafs socket to the Gofer.
    #[arg(long, value_name = "N")]
    pub gofer_fd: Option<i32>,
    /// The inherited control channel of an OCI container's sandbox (the spec is then the
    /// OCI boot description).
    #[arg(long, value_name = "N")]
    pub control_fd: Option<i32>,
    /// The inherited lisafs sockets of an OCI container's bind mounts, in mount order.
    #[arg(long = "mount-fd", value_name = "N")]
    pub mount_fds: Vec<i32>,
    /// The inherited packet socket on the interface the Sentry takes over
    /// (`--network=sandbox`).
    #[arg(long, value_name = "N")]
    pub packet_fd: Option<i32>,
}
