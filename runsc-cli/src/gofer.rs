//! `runsc gofer` (internal): the Gofer process, serving the sandbox root read-only over the
//! lisafs socket it inherited, confined by the `gofer` crate.

use crate::backends;
use crate::child;
use crate::cli::{GlobalArgs, GoferArgs};
use crate::error::RunscError;
use crate::panic_policy::DebugPanic;

/// Runs the Gofer until the Sentry hangs up.
pub fn run(global: &GlobalArgs, args: GoferArgs) -> Result<i32, RunscError> {
    // Ctrl-C reaches the whole process group; the Gofer must outlive the application's
    // reaction to it, and dies with runsc (PR_SET_PDEATHSIG) or when the socket closes.
    for sig in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        // SAFETY: SIG_IGN installs no handler code.
        unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) }
            .map_err(|e| RunscError::nix("ignore SIGINT", e))?;
    }
    let sock = child::take_inherited_fd(args.fd, "gofer socket")?;
    // Shown by ps/top instead of "exe" (we were started through /proc/self/exe).
    let _ = nix::sys::prctl::set_name(c"runsc-gofer");
    child::raise_nofile_limit();
    tracing::debug!(root = %args.serve_root.display(), read_only = args.read_only, "gofer starting");
    let debug_panic = global.debug_panic == Some(DebugPanic::Gofer);
    backends::serve_gofer(&args.serve_root, sock, args.read_only, debug_panic)
}
