//! `runsc`: the command-line interface of the rsentry sandbox.
//!
//! `runsc do -- CMD` runs a command in a sandbox through the `rsentry` library: a Gofer
//! process serves the root file system, a separate, confined sandbox process runs the
//! Sentry (our kernel) on the chosen platform (both this binary, re-executed by the
//! library). An OCI container's processes are the internal subcommands `sandbox`, `gofer`
//! and `boot`.
//!
//! Exit statuses: the application's (128+N when killed by signal N); 2 for usage errors;
//! 125 when runsc or the sandbox fails; 126 when the command cannot be executed (exec
//! format error, permission denied); 127 when it is not found.

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod boot;
mod cli;
mod error;
mod gofer;
mod host;
mod logging;
mod oci;
mod run_do;

/// The library's modules the OCI runtime builds on, under the names it uses.
use rsentry::__private::{child, signals};

use clap::Parser;
use clap::error::ErrorKind;

use crate::cli::{Cli, Command};
use crate::error::{EXIT_USAGE, RunscError};

fn main() {
    // The processes of a `runsc do` sandbox are this binary re-executed by the library.
    rsentry::init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help and version go to stdout in full; a failed print has nowhere to go.
            let _ = e.print();
            std::process::exit(0);
        }
        Err(e) => {
            // clap's message spans several lines (tip, usage); keep the first.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("runsc: {}", first.trim_start_matches("error: "));
            std::process::exit(EXIT_USAGE);
        }
    };
    rsentry::__private::panic_policy::install(
        "runsc",
        match &cli.command {
            Command::Do(_) => "",
            Command::Gofer(_) => "gofer",
            Command::Boot(_) => "sandbox",
            Command::Sandbox(_) => "supervisor",
            _ => "",
        },
    );
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            tracing::debug!(error = ?e, "runsc failed");
            eprintln!("runsc: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32, RunscError> {
    let name = match &cli.command {
        Command::Do(_) => "do",
        Command::Gofer(_) => "gofer",
        Command::Boot(_) => "boot",
        Command::Sandbox(_) => "sandbox",
        _ => "oci",
    };
    logging::init(&cli.global, name)?;
    let oci = match cli.command {
        Command::Do(args) => return run_do::run(&cli.global, args),
        Command::Gofer(args) => return gofer::run(&cli.global, args),
        Command::Boot(args) => return boot::run(&cli.global, args),
        Command::Sandbox(args) => return oci::supervisor::run(&cli.global, args),
        Command::Create(a) => oci::OciCommand::Create(a),
        Command::Start(a) => oci::OciCommand::Start(a),
        Command::State(a) => oci::OciCommand::State(a),
        Command::Kill(a) => oci::OciCommand::Kill(a),
        Command::Delete(a) => oci::OciCommand::Delete(a),
        Command::Run(a) => oci::OciCommand::Run(a),
        Command::Exec(a) => oci::OciCommand::Exec(a),
        Command::Ps(a) => oci::OciCommand::Ps(a),
        Command::List(a) => oci::OciCommand::List(a),
        Command::Spec(a) => oci::OciCommand::Spec(a),
        Command::Wait(a) => oci::OciCommand::Wait(a),
        Command::Events(a) => oci::OciCommand::Events(a),
        Command::Pause(a) => oci::OciCommand::Pause(a),
        Command::Resume(a) => oci::OciCommand::Resume(a),
        Command::Features => oci::OciCommand::Features,
        Command::ExecWait(a) => oci::OciCommand::ExecWait(a),
    };
    oci::run(&cli.global, oci)
}
