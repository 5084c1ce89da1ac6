//! The processes of a sandbox are the host program itself, re-executed through
//! `/proc/self/exe` with the environment variable [`ROLE_ENV`] naming their role (and the
//! descriptors they inherited). [`init`](crate::init), called first in `main`, recognises
//! it, runs the role and exits; in any other process it returns at once.
//!
//! Re-executing (rather than forking) means every sandbox process starts single-threaded,
//! from a clean image, whatever threads the host program runs; the same binary means no
//! `runsc` on `PATH` and no version skew.
//!
//! Roles:
//! - `monitor`: what `runsc do` is: starts the Gofers and the sandbox process, waits,
//!   forwards signals, reports (one per sandbox started with [`crate::Sandbox::spawn`]).
//! - `gofer`: serves one host directory over its inherited lisafs socket.
//! - `boot`: the sandbox process: confines itself and runs the Sentry.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::Error;

/// The environment variable that marks a re-executed sandbox process (JSON [`RoleEnv`]).
pub const ROLE_ENV: &str = "RSENTRY_SANDBOX_ROLE";

/// A role and its inherited descriptors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Role {
    /// The monitor of one sandbox: reads its [`crate::monitor::Launch`] from `launch_fd`;
    /// writes a one-line error report to `report_fd` when the sandbox cannot start.
    Monitor {
        /// Pipe with the launch description.
        launch_fd: RawFd,
        /// Pipe for the error report.
        report_fd: RawFd,
    },
    /// A Gofer serving `root` over `fd`.
    Gofer {
        /// The host directory.
        root: PathBuf,
        /// Refuse modifications.
        read_only: bool,
        /// The lisafs socket.
        fd: RawFd,
    },
    /// The sandbox process.
    Boot {
        /// Pipe with the [`crate::spec::BootSpec`].
        spec_fd: RawFd,
        /// The root's lisafs socket.
        gofer_fd: RawFd,
        /// The bind mounts' lisafs sockets.
        mount_fds: Vec<RawFd>,
        /// Pipe for the recording, when recording.
        record_fd: Option<RawFd>,
        /// Pipe for the error report.
        report_fd: Option<RawFd>,
        /// `--network=sandbox`: the packet socket on the sandbox's `eth0`.
        #[serde(default)]
        packet_fd: Option<RawFd>,
    },
}

/// The contents of [`ROLE_ENV`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoleEnv {
    /// What to run.
    pub role: Role,
    /// Shared settings.
    pub settings: Settings,
}

/// A command re-executing this program in `role`, named `arg0` in `ps`.
pub fn command(role: Role, settings: &Settings, arg0: &str) -> Result<Command, Error> {
    let env = RoleEnv {
        role,
        settings: settings.clone(),
    };
    let json = serde_json::to_string(&env).map_err(|e| Error::Invalid(e.to_string()))?;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(arg0).env(ROLE_ENV, json);
    Ok(cmd)
}

/// The role of this process, if it is a sandbox process.
pub fn current() -> Option<Result<RoleEnv, Error>> {
    let raw: OsString = std::env::var_os(ROLE_ENV)?;
    Some(
        raw.into_string()
            .map_err(|_| Error::Invalid(format!("{ROLE_ENV} is not UTF-8")))
            .and_then(|s| {
                serde_json::from_str(&s).map_err(|e| Error::Invalid(format!("bad {ROLE_ENV}: {e}")))
            }),
    )
}

/// Runs this process's role, if it has one, and exits; returns otherwise.
pub fn init() {
    let Some(env) = current() else {
        return;
    };
    let env = match env {
        Ok(env) => env,
        Err(e) => {
            eprintln!("rsentry: {e}");
            std::process::exit(crate::error::EXIT_RUNTIME_ERROR);
        }
    };
    let name = env.settings.name.clone();
    let (role_name, log_name) = match &env.role {
        Role::Monitor { .. } => ("", "monitor"),
        Role::Gofer { .. } => ("gofer", "gofer"),
        Role::Boot { .. } => ("sandbox", "boot"),
    };
    crate::panic_policy::install(&name, role_name);
    if let Err(e) = crate::logging::init(&env.settings, log_name) {
        eprintln!("{name}: {e}");
        std::process::exit(e.exit_code());
    }
    let report = match &env.role {
        Role::Monitor { report_fd, .. } => Some(*report_fd),
        Role::Boot { report_fd, .. } => *report_fd,
        Role::Gofer { .. } => None,
    };
    let report = report.and_then(|n| crate::child::take_inherited_fd(n, "report fd").ok());
    let result = match env.role {
        Role::Monitor { launch_fd, .. } => {
            crate::monitor::run_role(&env.settings, launch_fd, report.as_ref())
        }
        Role::Gofer {
            root,
            read_only,
            fd,
        } => crate::gofer::run(&env.settings, &root, read_only, fd),
        Role::Boot {
            spec_fd,
            gofer_fd,
            mount_fds,
            record_fd,
            packet_fd,
            ..
        } => crate::boot::run_do(
            &env.settings,
            spec_fd,
            gofer_fd,
            &mount_fds,
            (record_fd, packet_fd),
        ),
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            tracing::debug!(error = ?e, "sandbox process failed");
            eprintln!("{name}: {e}");
            if let Some(fd) = &report {
                write_report(fd, &e);
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// What a failed sandbox process tells the program that started it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`Error::exit_code`].
    pub code: i32,
    /// The error's one line.
    pub message: String,
    /// The CPU time limit in nanoseconds, for [`Error::CpuTimeLimit`].
    #[serde(default)]
    pub cpu_limit_ns: Option<u64>,
}

/// Longest report kept.
const MAX_REPORT: usize = 4096;

fn write_report(fd: &OwnedFd, e: &Error) {
    let mut message = e.to_string();
    message.truncate(MAX_REPORT);
    let cpu_limit_ns = match e {
        Error::CpuTimeLimit { limit } => Some(u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX)),
        _ => None,
    };
    let r = Report {
        code: e.exit_code(),
        message,
        cpu_limit_ns,
    };
    if let (Ok(json), Ok(fd)) = (serde_json::to_vec(&r), fd.try_clone()) {
        let _ = std::fs::File::from(fd).write_all(&json);
    }
}

/// The error a report stands for.
pub fn report_error(bytes: &[u8]) -> Option<Error> {
    let r: Report = serde_json::from_slice(bytes).ok()?;
    let split = || {
        let (path, reason) = r.message.rsplit_once(": ").unwrap_or(("", &r.message));
        (path.to_string(), reason.to_string())
    };
    Some(match r.code {
        crate::error::EXIT_NOT_FOUND => {
            let (path, reason) = split();
            Error::NotFound { path, reason }
        }
        crate::error::EXIT_CANNOT_EXECUTE => {
            let (path, reason) = split();
            Error::CannotExecute { path, reason }
        }
        crate::error::EXIT_USAGE => Error::Usage(r.message),
        crate::error::EXIT_CPU_LIMIT => Error::CpuTimeLimit {
            limit: std::time::Duration::from_nanos(r.cpu_limit_ns?),
        },
        _ => Error::Sentry(r.message),
    })
}
