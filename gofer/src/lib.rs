//! Serves a host directory tree over `lisafs-proto`, confined to the sandbox root.
//!
//! - [`tree`]: [`tree::HostTree`], every file operation, safely below one root.
//! - [`confine`]: namespaces, `pivot_root`, capabilities and the seccomp allowlist.

pub mod confine;
mod sys;
pub mod tree;

pub use tree::HostTree;

/// Errors at the gofer's boundary.
#[derive(Debug, thiserror::Error)]
pub enum GoferError {
    /// A confinement step failed with a host errno.
    #[error("confinement step `{step}` failed: errno {errno}")]
    Confine {
        /// Which step.
        step: &'static str,
        /// The host errno.
        errno: i32,
    },
    /// Capability manipulation failed.
    #[error("capabilities: {0}")]
    Caps(String),
    /// Building or installing the seccomp filter failed.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// The serving child of a confined gofer failed.
    #[error("gofer child failed: {0}")]
    ChildFailed(String),
    /// Opening the served root failed.
    #[error("opening the served root: {0}")]
    Root(linux_abi::Errno),
}
