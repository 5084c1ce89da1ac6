//! `runsc boot` (internal): the sandbox process of an OCI container. It reads its boot
//! description, confines itself and creates the platform (`rsentry`'s `boot::confine`,
//! the same steps as a `runsc do` sandbox), then serves the supervisor's requests.

use rsentry::__private::boot::{self, HostLimits};
use rsentry::__private::child;

use crate::cli::{BootArgs, GlobalArgs};
use crate::error::RunscError;

/// Runs the sandbox process; returns the exit status for `runsc boot`.
pub fn run(global: &GlobalArgs, args: BootArgs) -> Result<i32, RunscError> {
    let spec_fd = child::take_inherited_fd(args.spec_fd, "spec fd")?;
    let Some(control) = args.control_fd else {
        return Err(RunscError::Usage("boot: --control-fd is required".into()));
    };
    let control = child::take_inherited_fd(control, "control fd")?;
    let mut sandbox: crate::oci::bundle::SandboxBoot =
        serde_json::from_slice(&boot::read_spec_bytes(spec_fd)?)
            .map_err(|e| RunscError::Invalid(format!("bad boot spec: {e}")))?;
    let mounts = args
        .mount_fds
        .iter()
        .map(|&n| child::take_inherited_fd(n, "mount fd"))
        .collect::<Result<Vec<_>, _>>()?;
    let packet = args
        .packet_fd
        .map(|n| child::take_inherited_fd(n, "packet fd"))
        .transpose()?;
    let gofer = args
        .gofer_fd
        .map(|n| child::take_inherited_fd(n, "gofer fd"))
        .transpose()?;
    tracing::debug!("sandbox starting");
    // A container with a terminal: this process leads a host session whose controlling
    // terminal is the container's, so that the keys typed into it (^C, ^Z) and resizes
    // become signals for it, which the Sentry hands to the container's foreground group.
    if sandbox.terminal {
        crate::host::take_controlling_terminal(0)
            .map_err(|e| RunscError::host("make the terminal the sandbox's", e))?;
    }
    // `--network=host`, or a spec without a network namespace.
    let mut settings = global.settings();
    if sandbox.host_network {
        settings.network = rsentry::Network::Host;
    }
    sandbox.host_network = settings.network == rsentry::Network::Host;
    // The container's memory limit is also the capacity of the memory file, so that a
    // process that fills it is the Sentry's OOM killer's (one process, as runc's
    // containers see it) before the host cgroup's (the whole sandbox).
    let limits = HostLimits {
        memory: sandbox.memory_limit.unwrap_or(0),
    };
    let confined = boot::confine(&settings, limits)?;
    crate::oci::server::run(
        confined.platform,
        sandbox,
        confined.stdio,
        (gofer, mounts),
        control,
        global.strace,
        (confined.console_signals, packet),
    )
}
