//! The sandbox process: it reads its boot spec, creates the platform, confines itself (see
//! `confine` and `seccomp`) and runs the Sentry; its exit status is the application's.
//! `runsc boot` (an OCI container's sandbox) uses `confine` too.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::sync::Arc;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;

use crate::backends;
use crate::child;
use crate::config::{DebugPanic, Network, Settings};
use crate::confine;
use crate::error::Error;
use crate::host::signals;
use crate::panic_policy::PanicOnSyscall;
use crate::seccomp;
use crate::spec::{BootSpec, MAX_SPEC_BYTES};

/// Reads the spec's bytes from the pipe.
pub fn read_spec_bytes(fd: OwnedFd) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::host("read boot spec", e))?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(Error::Invalid("boot spec too large".into()));
    }
    Ok(bytes)
}

/// Our own copies of stdio for the application (the Sentry's fds 0-2 stay for logging).
/// A closed stdio descriptor becomes `/dev/null`, opened now while the host is reachable.
fn stdio_copies() -> Result<[OwnedFd; 3], Error> {
    let copy = |n: RawFd| -> Result<OwnedFd, Error> {
        if let Ok(fd) = crate::host::dup_cloexec(n, 3) {
            return Ok(fd);
        }
        let flags = if n == 0 {
            OFlag::O_RDONLY
        } else {
            OFlag::O_WRONLY
        };
        open("/dev/null", flags | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| Error::nix("open /dev/null for closed stdio", e))
    };
    Ok([copy(0)?, copy(1)?, copy(2)?])
}

/// Limits applied to the sandbox process before it creates its platform.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostLimits {
    /// Capacity of the memory file (0: the default).
    pub memory: u64,
}

/// What a confined sandbox process has to start its Sentry with.
pub struct Confined {
    /// The platform.
    pub platform: Arc<dyn platform::Platform>,
    /// Copies of stdio for the application.
    pub stdio: [OwnedFd; 3],
    /// With a terminal among stdio: the pipe that carries the terminal's keyboard signals
    /// (`SandboxConfig::console_signals`).
    pub console_signals: Option<OwnedFd>,
}

impl std::fmt::Debug for Confined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confined")
            .field("platform", &self.platform.name())
            .field("stdio", &self.stdio)
            .field("console_signals", &self.console_signals)
            .finish()
    }
}

/// Confines the calling process (which must have a single thread and be host root) and
/// creates its platform, in the order `confine` documents.
pub fn confine(settings: &Settings, limits: HostLimits) -> Result<Confined, Error> {
    signals::install().map_err(|e| Error::host("install signal handlers", e))?;
    // With a terminal among stdio, its keyboard signals are for the application: they
    // are blocked now, while this is the only thread, and taken by a thread of their own
    // once confinement is complete.
    let console = [
        std::io::stdin().as_fd(),
        std::io::stdout().as_fd(),
        std::io::stderr().as_fd(),
    ]
    .into_iter()
    .any(|fd| nix::unistd::isatty(fd).unwrap_or(false));
    let console_pipe = if console {
        signals::block_console_signals().map_err(|e| Error::host("block console signals", e))?;
        Some(std::io::pipe().map_err(|e| Error::host("console-signal pipe", e))?)
    } else {
        None
    };
    // Shown by ps/top instead of "exe" (we were started through /proc/self/exe).
    let _ = nix::sys::prctl::set_name(c"runsc-sandbox");
    child::raise_nofile_limit();
    let kind = settings.platform;
    // KVM opens /dev/kvm, so it is created while the process is still host root and the
    // host is reachable; it starts no thread or process. ptrace forks its master stub from
    // a thread of its own, so it is created after confinement is complete: the stubs
    // inherit the user namespace, the empty root, the empty capability sets and the
    // seccomp filter.
    let early = if backends::platform_needs_host_files(kind) {
        Some(backends::create_platform(kind, limits.memory)?)
    } else {
        None
    };
    confine::enter_user_namespace()?;
    confine::unshare_namespaces(settings.network == Network::Host)?;
    let stdio = stdio_copies()?;
    backends::prepare_sentry();
    // Capabilities are per thread: dropping them below must cover every thread there is.
    let threads = confine::thread_count()?;
    if threads != 1 {
        return Err(Error::Confine(format!(
            "{threads} threads exist before capabilities are dropped"
        )));
    }
    confine::pivot_to_empty_root()?;
    confine::drop_capabilities()?;
    confine::set_no_new_privs()?;
    // systrap forks its master stub here: confined in every other way, but without the
    // Sentry's filter (its stubs install their own, stricter one).
    let early = match early {
        None if backends::platform_forks_before_seccomp(kind) => {
            Some(backends::create_platform(kind, limits.memory)?)
        }
        early => early,
    };
    seccomp::install(kind, settings.network)?;
    let platform = match early {
        Some(p) => p,
        None => backends::create_platform(kind, limits.memory)?,
    };
    let platform = match settings.debug_panic {
        Some(DebugPanic::Sentry) => PanicOnSyscall::wrap(platform, DebugPanic::SENTRY_SYSCALL),
        _ => platform,
    };
    let console_signals = match console_pipe {
        Some((r, w)) => {
            signals::forward_console_signals(w)
                .map_err(|e| Error::host("start the console-signal thread", e))?;
            Some(OwnedFd::from(r))
        }
        None => None,
    };
    tracing::debug!(platform = platform.name(), "confined; starting the Sentry");
    Ok(Confined {
        platform,
        stdio,
        console_signals,
    })
}

/// The sandbox process of a monitor (`runsc do`, a library sandbox): runs one program.
pub fn run_do(
    settings: &Settings,
    spec_fd: RawFd,
    gofer_fd: RawFd,
    mount_fds: &[RawFd],
    (record_fd, packet_fd): (Option<RawFd>, Option<RawFd>),
) -> Result<i32, Error> {
    let spec_fd = child::take_inherited_fd(spec_fd, "spec fd")?;
    let spec = BootSpec::parse(&read_spec_bytes(spec_fd)?).map_err(Error::Invalid)?;
    let gofer = child::take_inherited_fd(gofer_fd, "gofer fd")?;
    let mounts = mount_fds
        .iter()
        .map(|&n| child::take_inherited_fd(n, "mount fd"))
        .collect::<Result<Vec<_>, _>>()?;
    let record = record_fd
        .map(|n| child::take_inherited_fd(n, "record fd"))
        .transpose()?;
    let packet = packet_fd
        .map(|n| child::take_inherited_fd(n, "packet fd"))
        .transpose()?;
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    tracing::debug!(
        argv = ?spec.argv.iter().map(|a| lossy(a)).collect::<Vec<_>>(),
        cwd = %lossy(&spec.cwd),
        "sandbox starting"
    );
    // A bad profile is refused before anything runs.
    if let Some(p) = &spec.profile {
        p.to_policy()?;
    }
    // The CPU time limit is the Sentry's budget for the whole sandbox (see
    // `backends::run_sentry`), not a host limit.
    let limits = HostLimits {
        memory: spec.limits.memory,
    };
    let confined = confine(settings, limits)?;
    let recorder = record
        .as_ref()
        .map(|_| Arc::new(sentry::policy::Recorder::default()));
    let status = backends::run_sentry(
        confined,
        spec,
        Some(gofer),
        mounts,
        settings,
        recorder.clone(),
        packet,
    );
    if let (Some(fd), Some(rec)) = (record, recorder) {
        let json = serde_json::to_vec(&rec.snapshot()).map_err(|e| Error::Sentry(e.to_string()))?;
        std::fs::File::from(fd)
            .write_all(&json)
            .map_err(|e| Error::host("send the recording", e))?;
    }
    status
}
