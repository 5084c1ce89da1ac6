//! `runsc gofer` (internal): a Gofer process of an OCI container's sandbox, serving one
//! host directory over the lisafs socket it inherited (see `rsentry`'s gofer).

use crate::cli::{GlobalArgs, GoferArgs};
use crate::error::RunscError;

/// Runs the Gofer until the Sentry hangs up.
pub fn run(global: &GlobalArgs, args: GoferArgs) -> Result<i32, RunscError> {
    rsentry::__private::gofer::run(
        &global.settings(),
        &args.serve_root,
        args.read_only,
        args.fd,
    )
}
