//! Arguments of the OCI lifecycle commands, in runc's shapes.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// A command that names one container.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The container ID.
    pub id: String,
}

/// `create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The bundle directory (holds config.json); default the current directory.
    #[arg(long, short = 'b', value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Write the pid of the process whose exit status is the container's to FILE.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the master end of the container's terminal.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (the sandbox always has its own root).
    #[arg(long, hide = true)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (the sandbox has no host keyring).
    #[arg(long, hide = true)]
    pub no_new_keyring: bool,
    /// Accepted for runc compatibility; must be 0.
    #[arg(long, hide = true, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container ID.
    pub id: String,
}

/// `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Create and start, then return without waiting.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Same as for `create`.
    #[command(flatten)]
    pub create: CreateArgs,
}

/// `kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// The container ID.
    pub id: String,
    /// Signal name (`TERM`, `SIGKILL`) or number; default SIGTERM.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kill a running container first; an unknown ID is not an error.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The container ID.
    pub id: String,
}

/// `exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A JSON file with the process to run (the `process` object of config.json).
    #[arg(long, short = 'p', value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Start the process and return without waiting.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// Write the pid of the process that carries the exec'd process's exit status.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the master end of the process's terminal.
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,
    /// Add or override an environment variable (repeatable).
    #[arg(long, short = 'e', value_name = "K=V")]
    pub env: Vec<String>,
    /// `UID[:GID]` to run as.
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Additional group ids (repeatable).
    #[arg(long = "additional-gids", short = 'g', value_name = "GID")]
    pub additional_gids: Vec<u32>,
    /// Set `PR_SET_NO_NEW_PRIVS` for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability to the bounding, effective, permitted and ambient sets
    /// (repeatable), as runc's `exec --cap`.
    #[arg(long = "cap", short = 'c', value_name = "CAP")]
    pub caps: Vec<String>,
    /// Accepted for runc compatibility.
    #[arg(long, hide = true, value_name = "LABEL")]
    pub process_label: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long, hide = true, value_name = "PROFILE")]
    pub apparmor: Option<String>,
    /// Exec even into a paused container (the process starts frozen).
    #[arg(long)]
    pub ignore_paused: bool,
    /// Accepted for runc compatibility; must be 0.
    #[arg(long, hide = true, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The container ID.
    pub id: String,
    /// The command and its arguments (without `--process`).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<String>,
}

/// Output formats of `ps` and `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table.
    Table,
    /// JSON.
    Json,
}

/// `ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The container ID.
    pub id: String,
    /// `ps` options (accepted and ignored).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ps_args: Vec<String>,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Only the IDs.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `spec`.
#[derive(Debug, Args)]
pub struct SpecArgs {
    /// Where to write config.json; default the current directory.
    #[arg(long, short = 'b', value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
}

/// `events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// Seconds between stats events (a Go duration like `5s` is accepted).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// The container ID.
    pub id: String,
}

/// `sandbox` (internal): the supervisor of one container's sandbox.
#[derive(Debug, Args)]
pub struct SupervisorArgs {
    /// The container's state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Pipe on which readiness (or the error) is reported.
    #[arg(long, value_name = "N")]
    pub ready_fd: i32,
    /// Pipe carrying the launch description (JSON).
    #[arg(long, value_name = "N")]
    pub launch_fd: i32,
}

/// `exec-wait` (internal): the process `exec --detach` leaves behind, which carries the
/// exec'd process's exit status.
#[derive(Debug, Args)]
pub struct ExecWaitArgs {
    /// The container ID.
    pub id: String,
    /// Pipe on which the start (or the error) is reported.
    #[arg(long, value_name = "N")]
    pub ready_fd: i32,
    /// Pipe carrying the process (JSON).
    #[arg(long, value_name = "N")]
    pub process_fd: i32,
}
