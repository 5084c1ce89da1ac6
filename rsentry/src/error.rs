//! The error type of the library (and of `runsc`), and how each error maps to an exit
//! status.

/// Exit status for errors of `runsc` itself (bad input, a sandbox that could not start),
/// as docker and podman use it.
pub const EXIT_RUNTIME_ERROR: i32 = 125;
/// Exit status when the command exists but cannot be executed (not an executable, not
/// ELF, permission denied), as shells use it.
pub const EXIT_CANNOT_EXECUTE: i32 = 126;
/// Exit status when the command is not found, as shells use it.
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit status for usage errors (unknown flag, missing command), as clap uses it.
pub const EXIT_USAGE: i32 = 2;
/// Exit status when the sandbox's CPU time limit ended it: 128 + `SIGXCPU`, the status
/// of a process killed at its CPU limit, which shells report as "CPU time limit
/// exceeded".
pub const EXIT_CPU_LIMIT: i32 = 128 + 24;

/// Why a sandbox could not be started or run. The `Display` form is one line (`runsc`
/// prints it as `runsc: <error>`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// A flag value or a path given by the user is unusable.
    #[error("{0}")]
    Invalid(String),
    /// The command to run cannot be executed (exec format error, permission denied).
    #[error("{path}: {reason}")]
    CannotExecute {
        /// The command as given.
        path: String,
        /// strerror-style reason.
        reason: String,
    },
    /// The command to run does not exist in the sandbox.
    #[error("{path}: {reason}")]
    NotFound {
        /// The command as given.
        path: String,
        /// strerror-style reason.
        reason: String,
    },
    /// A host operation needed to set up the sandbox failed.
    #[error("{op}: {source}")]
    Host {
        /// What runsc was doing.
        op: String,
        /// The host error.
        source: std::io::Error,
    },
    /// The platform could not be created.
    #[error("platform: {0}")]
    Platform(String),
    /// The Gofer failed.
    #[error("gofer: {0}")]
    Gofer(String),
    /// The Sentry failed for a reason other than the command itself.
    #[error("sandbox: {0}")]
    Sentry(String),
    /// Confinement (namespaces, pivot_root, capabilities, seccomp) failed.
    #[error("confinement: {0}")]
    Confine(String),
    /// A system-call profile or an OCI `linux.seccomp` section is malformed.
    #[error("{0}")]
    Policy(String),
    /// An OCI lifecycle command failed (exit status 1, as runc).
    #[error("{0}")]
    Runtime(String),
    /// The sandbox used up its CPU time limit ([`crate::Limits::cpu_time`]): every
    /// process in it was killed.
    #[error("CPU time limit of {limit:?} exceeded: every process of the sandbox was killed")]
    CpuTimeLimit {
        /// The limit.
        limit: std::time::Duration,
    },
}

/// Exit status of an OCI lifecycle command that failed, as runc's.
const EXIT_OCI_ERROR: i32 = 1;

impl Error {
    /// An [`Error::Host`] from an `io::Error`.
    pub fn host(op: impl Into<String>, source: std::io::Error) -> Error {
        Error::Host {
            op: op.into(),
            source,
        }
    }

    /// An [`Error::Host`] from a `nix` errno.
    pub fn nix(op: impl Into<String>, e: nix::errno::Errno) -> Error {
        Error::Host {
            op: op.into(),
            source: std::io::Error::from_raw_os_error(e as i32),
        }
    }

    /// The exit status `runsc` gives for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::CannotExecute { .. } => EXIT_CANNOT_EXECUTE,
            Error::NotFound { .. } => EXIT_NOT_FOUND,
            Error::Runtime(_) => EXIT_OCI_ERROR,
            Error::Policy(_) => EXIT_RUNTIME_ERROR,
            Error::CpuTimeLimit { .. } => EXIT_CPU_LIMIT,
            _ => EXIT_RUNTIME_ERROR,
        }
    }
}
