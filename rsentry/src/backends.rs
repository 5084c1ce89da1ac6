//! The calls into the other crates of the workspace: creating a platform, serving files
//! (the Gofer) and running the Sentry. Everything that depends on their exact API is here.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use crate::config::Platform as PlatformKind;
use crate::error::Error;
use crate::spec::BootSpec;

/// Whether the platform must be created before the sandbox process gives up the host's
/// file system (it opens a device), or can be created after confinement is complete.
pub fn platform_needs_host_files(kind: PlatformKind) -> bool {
    kind == PlatformKind::Kvm
}

/// Whether the platform forks its stubs before the sandbox process installs its seccomp
/// filter (systrap: the stubs' own filter must be the only one their application threads
/// run under, or the Sentry's allowlist would decide about application system calls
/// before the trap does). Such a platform is created after every other confinement step.
pub fn platform_forks_before_seccomp(kind: PlatformKind) -> bool {
    kind == PlatformKind::Systrap
}

/// Creates the platform chosen with `--platform`, over a fresh memory file of `memory`
/// bytes (0: the default capacity).
pub fn create_platform(
    kind: PlatformKind,
    memory: u64,
) -> Result<Arc<dyn platform::Platform>, Error> {
    if kind == PlatformKind::Kvm && !Path::new("/dev/kvm").exists() {
        return Err(Error::Platform("kvm: /dev/kvm does not exist".into()));
    }
    let capacity = match memory {
        0 => platform::MemoryFile::DEFAULT_CAPACITY,
        n => n,
    };
    let memory = platform::MemoryFile::new("rsentry-memory", capacity)
        .map_err(|e| Error::Platform(format!("memory file: {e}")))?;
    let memory = Arc::new(memory);
    let platform: Arc<dyn platform::Platform> = match kind {
        PlatformKind::Ptrace => Arc::new(
            platform_ptrace::PtracePlatform::new(memory)
                .map_err(|e| Error::Platform(format!("ptrace: {e}")))?,
        ),
        PlatformKind::Kvm => Arc::new(
            platform_kvm::KvmPlatform::new(memory)
                .map_err(|e| Error::Platform(format!("kvm: {e}")))?,
        ),
        PlatformKind::Systrap => Arc::new(
            platform_systrap::SystrapPlatform::new(memory)
                .map_err(|e| Error::Platform(format!("systrap: {e}")))?,
        ),
    };
    Ok(platform)
}

/// Serves `root` over the lisafs socket `sock` until the Sentry hangs up, confined (own
/// namespaces, `pivot_root` into `root`, trimmed capabilities, seccomp). Returns the exit
/// status for `runsc gofer`: 0, or that of a serving process that failed (it reported
/// why itself), 128+N when it was killed by signal N.
pub fn serve_gofer(
    root: &Path,
    sock: OwnedFd,
    read_only: bool,
    debug_panic_on_walk: bool,
) -> Result<i32, Error> {
    let opts = gofer::GoferOptions {
        read_only,
        confine: true,
        threads: 0,
    };
    match gofer::serve_with_debug_panic(root, sock, opts, debug_panic_on_walk) {
        Ok(()) => Ok(0),
        Err(gofer::GoferError::ChildExited(code)) => Ok(code),
        Err(gofer::GoferError::ChildKilled(sig)) => Ok(128 + sig),
        Err(e) => Err(Error::Gofer(e.to_string())),
    }
}

/// Lets the Sentry read what it needs from the host before the process gives up the host's
/// file system (the host's `/proc/cpuinfo`).
pub fn prepare_sentry() {
    sentry::fs::prime_host_info();
}

/// Runs the program of `spec` in the Sentry of a confined process and returns the
/// shell-style exit status (code, or 128+N when killed by signal N).
pub fn run_sentry(
    confined: crate::boot::Confined,
    spec: BootSpec,
    gofer: Option<OwnedFd>,
    mounts: Vec<OwnedFd>,
    settings: &crate::config::Settings,
    recorder: Option<Arc<sentry::policy::Recorder>>,
    packet: Option<OwnedFd>,
) -> Result<i32, Error> {
    let crate::boot::Confined {
        platform,
        stdio,
        console_signals,
    } = confined;
    let strace = settings.strace;
    let host_network = settings.network == crate::config::Network::Host;
    let filter = match &spec.profile {
        Some(p) => Some(Arc::new(sentry::policy::Filter::new(vec![p.to_policy()?]))),
        None => None,
    };
    if spec.mounts.len() != mounts.len() {
        return Err(Error::Invalid(format!(
            "{} bind mounts but {} Gofer sockets",
            spec.mounts.len(),
            mounts.len()
        )));
    }
    let mounts = spec
        .mounts
        .iter()
        .zip(mounts)
        .map(|(m, sock)| {
            (
                m.target.clone(),
                sentry::control::MountSource::Gofer(sock),
                m.readonly,
            )
        })
        .collect();
    let config = sentry::SandboxConfig {
        argv: spec.argv,
        envp: spec.envp,
        cwd: spec.cwd,
        uid: spec.uid,
        gid: spec.gid,
        hostname: spec.hostname,
        stdio,
        gofer,
        strace,
        mounts,
        files: spec
            .files
            .into_iter()
            .map(|f| (f.path, f.contents))
            .collect(),
        filter,
        recorder,
        cpu_budget: (!spec.limits.cpu_time.is_zero()).then_some(spec.limits.cpu_time),
        console_signals,
        host_network,
        ethernet: match (packet, &spec.ethernet) {
            (Some(packet), Some(e)) => Some(sentry::EthernetConfig {
                packet,
                mac: e.mac,
                addr: e.addr,
                prefix: e.prefix,
                gateway: e.gateway,
                addrs6: e.addrs6.clone(),
                gateway6: e.gateway6,
            }),
            _ => None,
        },
        // The memory file's capacity (`create_platform`) enforces it; the Sentry
        // reports it.
        memory_limit: (spec.limits.memory != 0).then_some(spec.limits.memory),
    };
    match sentry::run_sandbox(platform, config) {
        Ok(status) => Ok(status.to_shell_code()),
        Err(sentry::SentryError::Exec { path, errno }) => Err(exec_error(path, errno)),
        Err(sentry::SentryError::CpuBudgetExceeded { budget }) => {
            Err(Error::CpuTimeLimit { limit: budget })
        }
        Err(e) => Err(Error::Sentry(e.to_string())),
    }
}

/// Maps a failed exec of the first program like a shell does: ENOENT (and ENOTDIR) is
/// "not found" (127), everything else "cannot execute" (126).
fn exec_error(path: String, errno: linux_abi::Errno) -> Error {
    let reason = if errno == linux_abi::Errno::ENXIO {
        // The Sentry's loader says this only for an image shorter than its segments.
        "truncated executable: a loadable segment extends past the end of the file".to_owned()
    } else if errno == linux_abi::Errno::ENOEXEC {
        "Exec format error: not an executable this kernel can load (bad or truncated ELF \
         header, or a script without #!)"
            .to_owned()
    } else {
        errno
            .description()
            .map(str::to_owned)
            .unwrap_or_else(|| errno.to_string())
    };
    if errno == linux_abi::Errno::ENOENT || errno == linux_abi::Errno::ENOTDIR {
        Error::NotFound { path, reason }
    } else {
        Error::CannotExecute { path, reason }
    }
}
