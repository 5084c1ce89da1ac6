//! A Gofer process: serves one host directory (the sandbox root read-only, or a bind
//! mount) over the lisafs socket it inherited, confined by the `gofer` crate.

use std::os::fd::RawFd;
use std::path::Path;

use crate::backends;
use crate::child;
use crate::config::{DebugPanic, Settings};
use crate::error::Error;

/// Runs the Gofer until the Sentry hangs up.
pub fn run(settings: &Settings, root: &Path, read_only: bool, fd: RawFd) -> Result<i32, Error> {
    // Ctrl-C reaches the whole process group; the Gofer must outlive the application's
    // reaction to it, and dies with its parent (PR_SET_PDEATHSIG) or when the socket
    // closes.
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        crate::host::ignore_signal(sig).map_err(|e| Error::nix("ignore SIGINT", e))?;
    }
    let sock = child::take_inherited_fd(fd, "gofer socket")?;
    // Shown by ps/top instead of "exe" (we were started through /proc/self/exe).
    let _ = nix::sys::prctl::set_name(c"runsc-gofer");
    child::raise_nofile_limit();
    tracing::debug!(root = %root.display(), read_only, "gofer starting");
    let debug_panic = settings.debug_panic == Some(DebugPanic::Gofer);
    backends::serve_gofer(root, sock, read_only, debug_panic)
}
