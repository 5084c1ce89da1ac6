//! `runsc boot` (internal): the sandbox process. It reads its boot spec, creates the
//! platform, confines itself (see `confine` and `seccomp`) and runs the Sentry; its exit
//! status is the application's.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::backends;
use crate::child;
use crate::cli::{BootArgs, GlobalArgs};
use crate::confine;
use crate::error::RunscError;
use crate::panic_policy::{DebugPanic, PanicOnSyscall};
use crate::seccomp;
use crate::signals;
use crate::spec::{BootSpec, MAX_SPEC_BYTES};

/// What the sandbox process runs: one program (`do`), or an OCI container's sandbox.
enum BootMode {
    Do(BootSpec),
    Oci(crate::oci::bundle::SandboxBoot, OwnedFd, Vec<OwnedFd>),
}

/// Reads and parses the spec from the pipe.
fn read_spec(fd: OwnedFd) -> Result<BootSpec, RunscError> {
    BootSpec::parse(&read_spec_bytes(fd)?).map_err(RunscError::Invalid)
}

/// Reads the spec's bytes from the pipe.
fn read_spec_bytes(fd: OwnedFd) -> Result<Vec<u8>, RunscError> {
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RunscError::host("read boot spec", e))?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(RunscError::Invalid("boot spec too large".into()));
    }
    Ok(bytes)
}

/// Our own copies of stdio for the application (the Sentry's fds 0-2 stay for logging).
/// A closed stdio descriptor becomes `/dev/null`, opened now while the host is reachable.
fn stdio_copies() -> Result<[OwnedFd; 3], RunscError> {
    let copy = |n: RawFd| -> Result<OwnedFd, RunscError> {
        // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor that we own exclusively; an
        // invalid `n` gives EBADF and no descriptor.
        let raw = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 3) };
        if raw >= 0 {
            // SAFETY: `raw` was just created by F_DUPFD_CLOEXEC and is owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(raw) });
        }
        let flags = if n == 0 {
            OFlag::O_RDONLY
        } else {
            OFlag::O_WRONLY
        };
        open("/dev/null", flags | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| RunscError::nix("open /dev/null for closed stdio", e))
    };
    Ok([copy(0)?, copy(1)?, copy(2)?])
}

/// Runs the sandbox process; returns the exit status for `runsc boot`.
pub fn run(global: &GlobalArgs, args: BootArgs) -> Result<i32, RunscError> {
    let spec_fd = child::take_inherited_fd(args.spec_fd, "spec fd")?;
    let mode = match args.control_fd {
        None => BootMode::Do(read_spec(spec_fd)?),
        Some(n) => {
            let control = child::take_inherited_fd(n, "control fd")?;
            let boot = serde_json::from_slice(&read_spec_bytes(spec_fd)?)
                .map_err(|e| RunscError::Invalid(format!("bad boot spec: {e}")))?;
            let mounts = args
                .mount_fds
                .iter()
                .map(|&n| child::take_inherited_fd(n, "mount fd"))
                .collect::<Result<Vec<_>, _>>()?;
            BootMode::Oci(boot, control, mounts)
        }
    };
    let gofer = args
        .gofer_fd
        .map(|n| child::take_inherited_fd(n, "gofer fd"))
        .transpose()?;
    signals::install().map_err(|e| RunscError::host("install signal handlers", e))?;
    // Shown by ps/top instead of "exe" (we were started through /proc/self/exe).
    let _ = nix::sys::prctl::set_name(c"runsc-sandbox");
    if let BootMode::Do(spec) = &mode {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        tracing::debug!(
            argv = ?spec.argv.iter().map(|a| lossy(a)).collect::<Vec<_>>(),
            cwd = %lossy(&spec.cwd),
            "sandbox starting"
        );
    } else {
        tracing::debug!("sandbox starting");
    }

    child::raise_nofile_limit();
    // KVM opens /dev/kvm, so it is created while the process is still host root and the
    // host is reachable; it starts no thread or process. ptrace forks its master stub from
    // a thread of its own, so it is created after confinement is complete: the stubs
    // inherit the user namespace, the empty root, the empty capability sets and the
    // seccomp filter.
    let early = if backends::platform_needs_host_files(global.platform) {
        Some(backends::create_platform(global.platform)?)
    } else {
        None
    };
    confine::enter_user_namespace()?;
    confine::unshare_namespaces()?;
    let stdio = stdio_copies()?;
    backends::prepare_sentry();
    // Capabilities are per thread: dropping them below must cover every thread there is.
    let threads = confine::thread_count()?;
    if threads != 1 {
        return Err(RunscError::Confine(format!(
            "{threads} threads exist before capabilities are dropped"
        )));
    }
    confine::pivot_to_empty_root()?;
    confine::drop_capabilities()?;
    confine::set_no_new_privs()?;
    // systrap forks its master stub here: confined in every other way, but without the
    // Sentry's filter (its stubs install their own, stricter one).
    let early = match early {
        None if backends::platform_forks_before_seccomp(global.platform) => {
            Some(backends::create_platform(global.platform)?)
        }
        early => early,
    };
    seccomp::install(global.platform)?;
    let platform = match early {
        Some(p) => p,
        None => backends::create_platform(global.platform)?,
    };
    let platform = match global.debug_panic {
        Some(DebugPanic::Sentry) => PanicOnSyscall::wrap(platform, DebugPanic::SENTRY_SYSCALL),
        _ => platform,
    };
    tracing::debug!(platform = platform.name(), "confined; starting the Sentry");
    match mode {
        BootMode::Do(spec) => backends::run_sentry(platform, spec, stdio, gofer, global.strace),
        BootMode::Oci(boot, control, mounts) => crate::oci::server::run(
            platform,
            boot,
            stdio,
            (gofer, mounts),
            control,
            global.strace,
        ),
    }
}
