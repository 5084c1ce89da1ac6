//! `runsc do`: runs one command in a fresh sandbox and exits with its status.
//!
//! Processes (all started from `/proc/self/exe`, i.e. this binary):
//! ```text
//! runsc do ──┬── runsc gofer --serve-root ROOTFS --read-only --fd 3   (lisafs server)
//!            └── runsc boot --spec-fd 3 --gofer-fd 4                  (the Sentry)
//! ```
//! `runsc do` makes a `SOCK_SEQPACKET` socketpair (one end to each child), starts the Gofer,
//! enters a new PID namespace for its *next* child only (`unshare(CLONE_NEWPID)`), starts
//! the sandbox process (so it is PID 1 there, and its ptrace stubs die with it), writes the
//! JSON boot spec into a pipe, and waits. `SIGTERM`/`SIGHUP` (and `SIGINT`/`SIGQUIT` sent
//! with `kill`) are forwarded to the sandbox. When it exits, the Gofer is killed and
//! reaped, and its status becomes ours.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{Pid, pipe2};

use crate::child;
use crate::cli::{DoArgs, GlobalArgs, PlatformKind};
use crate::error::{EXIT_RUNTIME_ERROR, RunscError};
use crate::signals;
use crate::spec::BootSpec;

/// The usage line shown with a missing command.
const USAGE: &str = "usage: runsc do [--rootfs DIR] [--cwd DIR] [--env K=V]... -- CMD [ARG]...";

/// Checks the arguments and builds the boot spec and the canonical rootfs.
pub fn prepare(args: DoArgs) -> Result<(BootSpec, PathBuf), RunscError> {
    if args.command.is_empty() {
        return Err(RunscError::Usage(format!("do: missing command ({USAGE})")));
    }
    let rootfs = std::fs::canonicalize(&args.rootfs).map_err(|e| {
        RunscError::Invalid(format!(
            "do: rootfs {}: {}",
            args.rootfs.display(),
            strerror(&e)
        ))
    })?;
    if !rootfs.is_dir() {
        return Err(RunscError::Invalid(format!(
            "do: rootfs {} is not a directory",
            args.rootfs.display()
        )));
    }
    let cwd: Vec<u8> = match args.cwd {
        Some(c) if c.as_bytes().first() == Some(&b'/') => c.into_vec(),
        Some(c) => {
            return Err(RunscError::Invalid(format!(
                "do: --cwd {c:?} is not absolute"
            )));
        }
        None if rootfs == Path::new("/") => std::env::current_dir()
            .map(|p| p.into_os_string().into_vec())
            .unwrap_or_else(|_| b"/".to_vec()),
        None => b"/".to_vec(),
    };
    let envp = merge_env(
        std::env::vars_os().map(|(k, v)| (k.into_vec(), v.into_vec())),
        &args.env,
    )?;
    let mut argv: Vec<Vec<u8>> = args.command.into_iter().map(OsString::into_vec).collect();
    if let Some(found) = resolve_in_path(&rootfs, &argv[0], &envp) {
        argv[0] = found;
    }
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "runsc".into());
    let spec = BootSpec {
        argv,
        envp,
        cwd,
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        hostname,
    };
    Ok((spec, rootfs))
}

/// The search path used when the environment has no `PATH` (the usual default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Resolves a command name without `/` against the sandbox's `PATH`, the way a shell would
/// before `execve`: the first `DIR/name` that is an executable regular file in the root file
/// system. Looked up on the host below `rootfs` (the same files the Gofer serves; the
/// Sentry's own `/proc`, `/dev` and `/sys` are not searched). `None` leaves the
/// name to the Sentry, which then reports it as not found.
pub fn resolve_in_path(rootfs: &Path, name: &[u8], envp: &[Vec<u8>]) -> Option<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains(&b'/') {
        return None;
    }
    let path = envp
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|&b| b == b':')
        .filter(|d| d.first() == Some(&b'/'))
        .find_map(|dir| {
            let mut candidate = dir.to_vec();
            while candidate.last() == Some(&b'/') {
                candidate.pop();
            }
            candidate.push(b'/');
            candidate.extend_from_slice(name);
            let host = rootfs.join(OsStr::from_bytes(&candidate[1..]));
            let meta = std::fs::metadata(&host).ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
        })
}

/// The inherited environment with `--env K=V` overrides applied (in place) or appended.
/// Names and values are bytes, as Linux passes them.
pub fn merge_env(
    inherited: impl Iterator<Item = (Vec<u8>, Vec<u8>)>,
    overrides: &[OsString],
) -> Result<Vec<Vec<u8>>, RunscError> {
    let mut vars: Vec<(Vec<u8>, Vec<u8>)> = inherited.collect();
    for o in overrides {
        let bytes = o.as_bytes();
        let Some(eq) = bytes.iter().position(|&b| b == b'=').filter(|&i| i > 0) else {
            return Err(RunscError::Invalid(format!("do: --env {o:?} is not K=V")));
        };
        let (k, v) = (&bytes[..eq], &bytes[eq + 1..]);
        match vars.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.to_vec(),
            None => vars.push((k.to_vec(), v.to_vec())),
        }
    }
    Ok(vars
        .into_iter()
        .map(|(mut k, v)| {
            k.push(b'=');
            k.extend_from_slice(&v);
            k
        })
        .collect())
}

fn strerror(e: &std::io::Error) -> String {
    e.raw_os_error()
        .and_then(|n| linux_abi::Errno::new(n).description())
        .map(str::to_owned)
        .unwrap_or_else(|| e.to_string())
}

/// A child `runsc` with our global flags; it names its logs after this sandbox (our host
/// pid unless `--sandbox-id` was given).
fn runsc_command(global: &GlobalArgs, arg0: &str) -> Command {
    let mut global = global.clone();
    global
        .sandbox_id
        .get_or_insert_with(|| std::process::id().to_string());
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(arg0).args(global.to_args());
    cmd
}

/// Runs `runsc do`; returns the exit status.
pub fn run(global: &GlobalArgs, args: DoArgs) -> Result<i32, RunscError> {
    let (spec, rootfs) = prepare(args)?;
    if global.platform == PlatformKind::Kvm && !Path::new("/dev/kvm").exists() {
        return Err(RunscError::Invalid(
            "--platform=kvm: /dev/kvm does not exist".into(),
        ));
    }
    // Orphans below us (the serving Gofer when its parent dies first) become our children,
    // so that we reap them before we exit instead of leaving zombies to the host's init.
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| RunscError::nix("PR_SET_CHILD_SUBREAPER", e))?;
    let (sentry_end, gofer_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RunscError::nix("socketpair", e))?;

    let mut gofer_cmd = runsc_command(global, "runsc-gofer");
    gofer_cmd
        .arg("gofer")
        .arg("--serve-root")
        .arg(&rootfs)
        .arg("--read-only")
        .args(["--fd", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut gofer = child::spawn_with_fds(gofer_cmd, &[(&gofer_end, 3)], "gofer")?;
    drop(gofer_end);
    let gofer_pid = Pid::from_raw(gofer.id() as i32);
    let result = start_and_wait_sandbox(global, &spec, sentry_end, gofer_pid);
    // The Gofer exits by itself when the Sentry's end closes: give it a moment, so that a
    // Gofer that failed while the application was finishing is still seen as failed, then
    // make sure of it.
    let deadline = std::time::Instant::now() + GOFER_GRACE;
    while !gofer_exited(gofer_pid) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || signals::wait_signal_timeout(left).is_err() {
            break;
        }
    }
    let failed = gofer_failed(gofer_pid);
    let _ = gofer.kill();
    let _ = gofer.wait();
    reap_orphans();
    match result {
        Ok(_) if failed => {
            tracing::debug!("the gofer failed");
            Ok(EXIT_RUNTIME_ERROR)
        }
        r => r,
    }
}

/// How long `runsc do` waits for the Gofer to exit by itself once the sandbox has ended.
const GOFER_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the Gofer has exited (it stays unreaped).
fn gofer_exited(gofer: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::Pid(gofer), flags), Ok(WaitStatus::StillAlive))
}

/// Waits for every child left (orphans we adopted as subreaper): each dies with its
/// parent (`PR_SET_PDEATHSIG`), so this ends once they have.
fn reap_orphans() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::__WALL)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

fn start_and_wait_sandbox(
    global: &GlobalArgs,
    spec: &BootSpec,
    sentry_end: OwnedFd,
    gofer: Pid,
) -> Result<i32, RunscError> {
    let (spec_read, spec_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunscError::nix("pipe", e))?;
    signals::block_waited().map_err(|e| RunscError::host("block signals", e))?;
    // Our next child becomes PID 1 of a new PID namespace; we stay where we are.
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| match e {
        nix::errno::Errno::EPERM => {
            RunscError::Invalid("do: creating a PID namespace needs root (CAP_SYS_ADMIN)".into())
        }
        e => RunscError::nix("unshare(CLONE_NEWPID)", e),
    })?;
    let mut boot_cmd = runsc_command(global, "runsc-sandbox");
    boot_cmd
        .arg("boot")
        .args(["--spec-fd", "3", "--gofer-fd", "4"]);
    let boot = child::spawn_with_fds(boot_cmd, &[(&spec_read, 3), (&sentry_end, 4)], "sandbox")?;
    drop(spec_read);
    drop(sentry_end);
    let json = serde_json::to_vec(spec).map_err(|e| RunscError::Invalid(e.to_string()))?;
    // A sandbox that dies before reading gives EPIPE here; its exit status says why.
    let _ = std::fs::File::from(spec_write).write_all(&json);
    wait_sandbox(boot, gofer)
}

/// Whether the Gofer has exited with a failure status (a panic or an error it reported
/// itself), without reaping it (`WNOWAIT`: the caller reaps it later by its `Child`).
/// A Gofer killed by a signal does not count: the Sentry then sees its channel closed
/// and the application gets `EIO`, as the fault tests expect.
fn gofer_failed(gofer: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(
        waitid(Id::Pid(gofer), flags),
        Ok(WaitStatus::Exited(_, code)) if code != 0 && code < 128
    )
}

/// Waits for the sandbox process, forwarding signals, and converts its status. A Gofer
/// that fails ends the sandbox (SIGKILL; as PID 1 of its namespace it takes its stubs
/// along) with status 125.
fn wait_sandbox(boot: Child, gofer: Pid) -> Result<i32, RunscError> {
    let pid = Pid::from_raw(boot.id() as i32);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RunscError::nix("wait for sandbox", e)),
        }
        if gofer_failed(gofer) {
            tracing::debug!("the gofer failed; ending the sandbox");
            let _ = kill(pid, Signal::SIGKILL);
            while let Err(nix::errno::Errno::EINTR) = waitpid(pid, None) {}
            return Ok(EXIT_RUNTIME_ERROR);
        }
        let got = signals::wait_signal().map_err(|e| RunscError::host("wait for signals", e))?;
        if got.signo == libc::SIGCHLD {
            continue;
        }
        let forward = matches!(got.signo, libc::SIGTERM | libc::SIGHUP) || got.from_process;
        if forward && let Ok(sig) = Signal::try_from(got.signo) {
            tracing::debug!(signal = got.signo, "forwarding to the sandbox");
            let _ = kill(pid, sig);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cmd: &[&str]) -> DoArgs {
        DoArgs {
            rootfs: "/".into(),
            cwd: None,
            env: Vec::new(),
            command: cmd.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn env_overrides_in_place_and_appends() {
        let inherited = [
            (b"A".to_vec(), b"1".to_vec()),
            (b"B".to_vec(), b"2\xff".to_vec()),
        ];
        let got = merge_env(
            inherited.into_iter(),
            &[
                "B=x=y".into(),
                "C=".into(),
                OsString::from_vec(b"D=\xfe".to_vec()),
            ],
        )
        .expect("merge");
        assert_eq!(got, [&b"A=1"[..], b"B=x=y", b"C=", b"D=\xfe"]);
        assert!(merge_env(std::iter::empty(), &["novalue".into()]).is_err());
        assert!(merge_env(std::iter::empty(), &["=v".into()]).is_err());
    }

    #[test]
    fn missing_command_and_bad_rootfs_are_rejected() {
        assert!(matches!(prepare(args(&[])), Err(RunscError::Usage(_))));
        let mut a = args(&["true"]);
        a.rootfs = "/proc/self/exe".into();
        let e = prepare(a).expect_err("file rootfs");
        assert!(e.to_string().contains("not a directory"), "{e}");
        let mut a = args(&["true"]);
        a.rootfs = "/nonexistent-rootfs-xyz".into();
        assert!(prepare(a).is_err());
        let mut a = args(&["true"]);
        a.cwd = Some("relative".into());
        assert!(prepare(a).is_err());
    }

    #[test]
    fn commands_are_found_in_path() {
        let env = [b"PATH=/nonexistent:/bin:/usr/bin".to_vec()];
        let root = Path::new("/");
        assert_eq!(
            resolve_in_path(root, b"sh", &env).as_deref(),
            Some(&b"/bin/sh"[..])
        );
        assert_eq!(resolve_in_path(root, b"./sh", &env), None);
        assert_eq!(resolve_in_path(root, b"no-such-command-xyz", &env), None);
        // Directories and non-executables do not count.
        assert_eq!(
            resolve_in_path(root, b"passwd", &[b"PATH=/etc".to_vec()]),
            None
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        // A name that is not UTF-8 is found all the same.
        let name = OsStr::from_bytes(b"tool\xff");
        std::fs::write(dir.path().join("bin").join(name), "x").expect("write");
        std::fs::set_permissions(
            dir.path().join("bin").join(name),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        assert_eq!(
            resolve_in_path(dir.path(), b"tool\xff", &[b"PATH=/bin".to_vec()]).as_deref(),
            Some(&b"/bin/tool\xff"[..])
        );
    }

    #[test]
    fn defaults_pass_the_caller_through() {
        let (spec, rootfs) = prepare(args(&["echo", "hi"])).expect("prepare");
        assert_eq!(rootfs, Path::new("/"));
        assert_eq!(spec.argv[1], b"hi");
        assert!(spec.argv[0].ends_with(b"/echo"), "{:?}", spec.argv);
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(Path::new(OsStr::from_bytes(&spec.cwd)), cwd);
        assert!(spec.envp.iter().any(|e| e.starts_with(b"PATH=")));
        let mut a = args(&["true"]);
        a.rootfs = "/tmp".into();
        assert_eq!(prepare(a).expect("prepare").0.cwd, b"/");
    }
}
