//! Sets up `tracing` from the global flags (`--debug`, `--debug-log DIR`, `--log FILE`,
//! `--log-format`), as every process of a sandbox does (see `rsentry`'s logging).

use crate::cli::GlobalArgs;
use crate::error::RunscError;

/// Installs the global subscriber for a process running subcommand `command`.
pub fn init(global: &GlobalArgs, command: &str) -> Result<(), RunscError> {
    rsentry::__private::logging::init(&global.settings(), command)
}
