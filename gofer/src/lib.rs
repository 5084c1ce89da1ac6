//! Serves a host directory tree over `lisafs-proto`, confined to the sandbox root.
//!
//! - [`tree`]: [`tree::HostTree`], every file operation, safely below one root.
//! - [`confine`]: namespaces, `pivot_root`, capabilities and the seccomp allowlist.
//! - `server`: the `lisafs_proto::Dispatcher` implementation on [`HostTree`].
//! - [`serve`]: the single entry point `runsc gofer` calls.
//!
//! ```
//! use gofer::{GoferOptions, serve};
//! use lisafs_proto::{Client, WalkStatus, socketpair};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir(dir.path().join("etc"))?;
//! std::fs::write(dir.path().join("etc/hostname"), "sandbox\n")?;
//!
//! let (client_sock, gofer_sock) = socketpair()?;
//! let root = dir.path().to_path_buf();
//! // `runsc gofer` passes `confine: true`; tests that cannot unshare pass `false`.
//! let opts = GoferOptions { read_only: true, confine: false, threads: 1 };
//! let gofer = std::thread::spawn(move || serve(&root, gofer_sock, opts));
//!
//! let client = Client::new(client_sock)?;
//! let root = client.mount(b"")?.root;
//! let w = client.walk(root.id, &["etc", "hostname"])?;
//! assert_eq!(w.status, WalkStatus::Complete);
//! let file = client.open_at(w.nodes[1].id, libc::O_RDONLY as u32)?;
//! assert_eq!(client.pread(file.handle, 0, 64)?, b"sandbox\n");
//! let donated = std::fs::File::from(file.fd.expect("the gofer donates a host fd"));
//! assert_eq!(std::io::read_to_string(donated)?, "sandbox\n");
//! drop(client); // hanging up ends `serve`
//! gofer.join().expect("gofer thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod confine;
mod server;
#[allow(unsafe_code)] // The crate's only host FFI: each block has its `// SAFETY:` line.
mod sys;
pub mod tree;

use std::os::fd::OwnedFd;
use std::path::Path;

pub use tree::HostTree;

/// How [`serve`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoferOptions {
    /// Refuse every mutation (`EROFS`); when confined the root is also mounted read-only.
    pub read_only: bool,
    /// Confine the process before serving (namespaces, `pivot_root`, capabilities,
    /// seccomp). Needs root; tests that cannot unshare pass `false`.
    pub confine: bool,
    /// Server threads; 0 picks a default ([`default_threads`]).
    pub threads: usize,
}

/// The name whose walk makes a Gofer started with [`serve_with_debug_panic`] panic.
pub const DEBUG_PANIC_NAME: &[u8] = b"rsentry-debug-panic";

impl Default for GoferOptions {
    fn default() -> Self {
        GoferOptions {
            read_only: false,
            confine: true,
            threads: 0,
        }
    }
}

/// The default number of server threads: 1 on machines with at most 2 CPUs, where the
/// benchmark shows a single thread has the lowest latency (every hand-off between server
/// threads is a futex wake-up, tens of microseconds on a nested VM) and no consistent
/// throughput loss; otherwise half the CPUs, at most 4 (not measured here).
pub fn default_threads() -> usize {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if cpus <= 2 { 1 } else { (cpus / 2).min(4) }
}

/// Serves `root` over the lisafs connection `sock` until the client hangs up.
///
/// With `opts.confine` the calling process must be single-threaded: it enters new
/// namespaces and forks; the child confines itself to `root` and serves, while the
/// caller closes its copy of `sock`, confines itself to waiting
/// ([`confine::confine_waiter`]: no capabilities, a seccomp filter that allows little more
/// than `wait4`, `write` and `exit_group`), waits for the child and returns its outcome.
/// The child dies with the caller (`PR_SET_PDEATHSIG`).
pub fn serve(root: &Path, sock: OwnedFd, opts: GoferOptions) -> Result<(), GoferError> {
    serve_with_debug_panic(root, sock, opts, false)
}

/// [`serve`], and with `debug_panic_on_walk` the Gofer panics when asked to walk to a file
/// named [`DEBUG_PANIC_NAME`]: a switch for the tests of the runtime's panic policy only.
pub fn serve_with_debug_panic(
    root: &Path,
    sock: OwnedFd,
    opts: GoferOptions,
    debug_panic_on_walk: bool,
) -> Result<(), GoferError> {
    let threads = if opts.threads == 0 {
        default_threads()
    } else {
        opts.threads
    };
    if !opts.confine {
        let mut tree = HostTree::new(root, opts.read_only).map_err(GoferError::Root)?;
        tree.set_debug_panic_on_walk(debug_panic_on_walk);
        return run(&tree, sock, threads);
    }
    match confine::unshare_and_fork()? {
        confine::Side::Parent(child) => {
            drop(sock);
            // Nothing left to do but wait: give up every privilege first. Should that fail,
            // the child dies with us (PR_SET_PDEATHSIG).
            confine::confine_waiter()?;
            confine::wait_child(child)
        }
        confine::Side::Child => {
            let code = match serve_confined(root, sock, opts, threads, debug_panic_on_walk) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "gofer: serving failed");
                    1
                }
            };
            std::process::exit(code)
        }
    }
}

/// The confined child: confine, open the tree at the new `/`, install seccomp, serve.
fn serve_confined(
    root: &Path,
    sock: OwnedFd,
    opts: GoferOptions,
    threads: usize,
    debug_panic_on_walk: bool,
) -> Result<(), GoferError> {
    let proc_fd = confine::confine(root, opts.read_only)?;
    let mut tree = HostTree::with_proc_fd(Path::new("/"), opts.read_only, proc_fd)
        .map_err(GoferError::Root)?;
    tree.set_debug_panic_on_walk(debug_panic_on_walk);
    confine::install_seccomp()?;
    run(&tree, sock, threads)
}

fn run(tree: &HostTree, sock: OwnedFd, threads: usize) -> Result<(), GoferError> {
    tracing::debug!(threads, read_only = tree.read_only(), "gofer: serving");
    lisafs_proto::Server::new(sock)
        .serve(tree, threads)
        .map_err(GoferError::Serve)
}

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
    /// The serving child of a confined gofer exited with this non-zero status (it has
    /// logged why).
    #[error("gofer child failed: exit status {0}")]
    ChildExited(i32),
    /// The serving child of a confined gofer was killed by this signal.
    #[error("gofer child killed by signal {0}")]
    ChildKilled(i32),
    /// The lisafs server loop failed.
    #[error("lisafs server: {0}")]
    Serve(lisafs_proto::ServerError),
    /// Opening the served root failed.
    #[error("opening the served root: {0}")]
    Root(linux_abi::Errno),
}
