//! Run an untrusted program in the rsentry sandbox, from Rust, with one call.
//!
//! The program's system calls never reach the host kernel: a platform (ptrace, KVM,
//! systrap) traps them and the Sentry, rsentry's application kernel, implements them in a
//! confined process of its own (namespaces, an empty root, no capabilities, a seccomp
//! filter). Files come from a Gofer, another confined process, the only one that opens
//! host paths. These are the same processes `runsc do` starts; no `runsc` binary is
//! needed.
//!
//! ```no_run
//! use std::time::Duration;
//! use rsentry::{Limits, Network, Platform, ReadOnly, Sandbox};
//!
//! fn main() -> Result<(), rsentry::Error> {
//!     rsentry::init(); // first thing in main: the sandbox's own processes start here
//!     let out = Sandbox::builder()
//!         .platform(Platform::Systrap)
//!         .network(Network::None)
//!         .env("LANG", "C.UTF-8")
//!         .cwd("/tmp")
//!         .bind("/srv/data", "/data", ReadOnly)
//!         .limits(Limits { memory: 256 << 20, cpu_time: Duration::from_secs(10), ..Default::default() })
//!         .command(["python3", "-c", "print(1)"])
//!         .output()?;
//!     assert_eq!(out.stdout, b"1\n");
//!     Ok(())
//! }
//! ```
//!
//! # How the processes start
//! The sandbox's processes are this very program, re-executed through `/proc/self/exe`
//! with an environment variable naming their role. [`init`] must therefore be the first
//! call in `main`: in those processes it runs the role and never returns; everywhere else
//! it returns at once. Nothing is forked from the calling process itself, so the library
//! is safe to use from a multi-threaded program. Starting a sandbox needs root (it
//! creates namespaces), as `runsc` does.
//!
//! Each sandbox has a *monitor* process (what `runsc do` is), which starts one Gofer for
//! the root and one per bind mount, then the sandbox process as PID 1 of a new PID
//! namespace, and passes its status on. [`Child::kill`] ends them all.
//!
//! # System-call profiles
//! [`SandboxBuilder::record_profile`] learns what a program uses (each call, with the
//! argument classes that matter: socket family and type, ioctl request, `prctl` option,
//! `clone` flags, open flags class, `mmap` protections); [`SandboxBuilder::profile`]
//! enforces such a [`Profile`] in the Sentry's dispatch. See [`profile`] for the format.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[doc(hidden)]
pub mod backends;
#[doc(hidden)]
pub mod boot;
mod builder;
#[doc(hidden)]
pub mod child;
mod config;
mod confine;
mod error;
#[doc(hidden)]
pub mod gofer;
#[doc(hidden)]
pub mod host;
#[doc(hidden)]
pub mod logging;
mod monitor;
pub mod netsetup;
#[doc(hidden)]
pub mod panic_policy;
pub mod profile;
mod role;
#[doc(hidden)]
pub mod seccomp;
pub mod seccomp_oci;
#[doc(hidden)]
pub mod spec;

pub use builder::{Child, ExitStatus, Output, Sandbox, SandboxBuilder};
pub use config::{Access, Limits, Network, Platform, ReadOnly, ReadWrite};
pub use error::Error;
pub use profile::Profile;

/// Runs this process's part of a sandbox when it is one of a sandbox's own processes
/// (re-executed by this library), and exits then; returns at once otherwise. Call it
/// first in `main`, before anything else (threads, argument parsing, output).
pub fn init() {
    role::init();
}

/// The pieces `runsc` builds its OCI runtime from. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::backends;
    pub use crate::boot;
    pub use crate::child;
    pub use crate::config::{Bind, DebugPanic, Settings};
    pub use crate::error::{
        EXIT_CANNOT_EXECUTE, EXIT_CPU_LIMIT, EXIT_NOT_FOUND, EXIT_RUNTIME_ERROR, EXIT_USAGE,
    };
    pub use crate::gofer;
    pub use crate::host::signals;
    pub use crate::logging;
    pub use crate::panic_policy;
    pub use crate::seccomp;
    pub use crate::spec;
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
