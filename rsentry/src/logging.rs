//! Sets up `tracing` in each process of a sandbox from its [`Settings`] (`runsc`'s
//! `--debug`, `--debug-log DIR`, `--log FILE`, `--log-format`).
//!
//! Without `--debug` only errors are logged (the sandbox's stderr is the application's, so
//! e.g. the Sentry's once-per-name warnings about unimplemented system calls stay out of
//! it), and, at level warn, the one line per system call a profile refuses
//! (`sentry::policy`), per process the memory limit kills (`sentry::oom`) and when the
//! CPU time limit ends the sandbox (`sentry::cpu_limit`);
//! with `--debug` everything from debug up. `RUST_LOG` overrides the level. Colours
//! only when the destination is a terminal.
//! Every process (`runsc`, the Gofer, the sandbox) opens its log destination at start,
//! before it confines itself, so logging keeps working after `pivot_root`.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

use crate::config::Settings;
use crate::error::Error;

/// Installs the global subscriber for a process running subcommand `command`.
pub fn init(global: &Settings, command: &str) -> Result<(), Error> {
    let debug = global.debug || global.debug_log.is_some();
    let default = if debug {
        "debug"
    } else {
        "error,sentry::policy=warn,sentry::oom=warn,sentry::cpu_limit=warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let file = if let Some(dir) = &global.debug_log {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::host(format!("create {}", dir.display()), e))?;
        // Named by sandbox, not by in-sandbox pid (the sandbox process is PID 1 of its own
        // namespace in every sandbox): concurrent sandboxes never share a file.
        let id = global
            .sandbox_id
            .clone()
            .unwrap_or_else(|| std::process::id().to_string());
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(Error::Invalid(format!("bad sandbox id {id:?}")));
        }
        let name = format!("runsc.{id}.{command}.log");
        Some(open_append(&dir.join(name))?)
    } else if let Some(f) = &global.log {
        Some(open_append(f)?)
    } else {
        None
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    // A second init (never happens in the binary) is harmless, so its error is ignored.
    let _ = match (file, global.log_json) {
        (Some(f), false) => builder
            .with_ansi(false)
            .with_writer(Mutex::new(f))
            .try_init(),
        (Some(f), true) => builder.json().with_writer(Mutex::new(f)).try_init(),
        (None, false) => builder
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr)
            .try_init(),
        (None, true) => builder.json().with_writer(io::stderr).try_init(),
    };
    Ok(())
}

fn open_append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::host(format!("open log {}", path.display()), e))
}
