//! The monitor of one sandbox (`runsc do` runs it in its own process; a library sandbox
//! gets one re-executed for it): starts the Gofers and the sandbox process, waits, and
//! passes on the sandbox's status.
//!
//! Processes (all started from `/proc/self/exe`, i.e. this binary, see `role`):
//! ```text
//! monitor ──┬── gofer ROOTFS (read-only)           lisafs server of the root
//!           ├── gofer SOURCE (per bind mount)      lisafs server of a bind mount
//!           └── boot                               the sandbox process (the Sentry)
//! ```
//! The monitor makes a `SOCK_SEQPACKET` socketpair per Gofer (one end to each side),
//! starts the Gofers, enters a new PID namespace for its *next* child only
//! (`unshare(CLONE_NEWPID)`), starts the sandbox process (so it is PID 1 there, and its
//! ptrace stubs die with it), writes the JSON boot spec into a pipe, and waits.
//! `SIGTERM`/`SIGHUP` (and `SIGINT`/`SIGQUIT` sent with `kill`) are forwarded to the
//! sandbox. When it exits, the Gofers are killed and reaped, a recording (if any) is
//! written into its profile file, and the sandbox's status becomes ours.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::{Pid, pipe2};
use serde::{Deserialize, Serialize};

use crate::child;
use crate::config::{Access, Bind, Settings};
use crate::error::{EXIT_RUNTIME_ERROR, Error};
use crate::host::signals;
use crate::role::{self, Role};
use crate::spec::{BootSpec, MAX_SPEC_BYTES};

/// Everything the monitor needs to start a sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Launch {
    /// What the sandbox process runs.
    pub boot: BootSpec,
    /// The host directory served (read-only, under the Sentry's writable overlay) as `/`.
    pub rootfs: PathBuf,
    /// Bind mounts, in the order of `boot.mounts`.
    pub binds: Vec<Bind>,
    /// Where the recording goes (merged into a profile already there).
    pub record: Option<PathBuf>,
}

/// Runs the monitor role: reads the [`Launch`] from `launch_fd`, runs it.
pub fn run_role(
    settings: &Settings,
    launch_fd: RawFd,
    report: Option<&OwnedFd>,
) -> Result<i32, Error> {
    let fd = child::take_inherited_fd(launch_fd, "launch fd")?;
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::host("read launch description", e))?;
    let launch: Launch = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("bad launch description: {e}")))?;
    let _ = nix::sys::prctl::set_name(c"rsentry-monitor");
    run(settings, launch, report)
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

pub(crate) fn strerror(e: &std::io::Error) -> String {
    e.raw_os_error()
        .and_then(|n| linux_abi::Errno::new(n).description())
        .map(str::to_owned)
        .unwrap_or_else(|| e.to_string())
}

/// Runs the sandbox of `launch` from this (single-threaded) process; returns the exit
/// status: the application's, 128+N when it was killed by signal N, 125 when the sandbox
/// failed.
/// `report`, when given, is handed to the sandbox process, which writes its start-up
/// error there (a program not found...).
pub fn run(settings: &Settings, launch: Launch, report: Option<&OwnedFd>) -> Result<i32, Error> {
    let mut settings = settings.clone();
    settings
        .sandbox_id
        .get_or_insert_with(|| std::process::id().to_string());
    let settings = &settings;
    if settings.platform == crate::config::Platform::Kvm && !Path::new("/dev/kvm").exists() {
        return Err(Error::Invalid(
            "--platform=kvm: /dev/kvm does not exist".into(),
        ));
    }
    // Orphans below us (a serving Gofer when its parent dies first) become our children,
    // so that we reap them before we exit instead of leaving zombies to the host's init.
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::nix("PR_SET_CHILD_SUBREAPER", e))?;
    let mut gofers: Vec<Child> = Vec::new();
    let mut socks: Vec<OwnedFd> = Vec::new();
    let mut sources = vec![(launch.rootfs.clone(), true)];
    sources.extend(
        launch
            .binds
            .iter()
            .map(|b| (b.source.clone(), b.access == Access::ReadOnly)),
    );
    for (root, read_only) in sources {
        match start_gofer(settings, root, read_only) {
            Ok((g, s)) => {
                gofers.push(g);
                socks.push(s);
            }
            Err(e) => {
                end_gofers(&mut gofers);
                return Err(e);
            }
        }
    }
    let gofer_pids: Vec<Pid> = gofers
        .iter()
        .map(|g| Pid::from_raw(g.id() as i32))
        .collect();
    let result = start_and_wait_sandbox(settings, &launch, socks, &gofer_pids, report);
    // A Gofer exits by itself when the Sentry's end closes: give them a moment, so that a
    // Gofer that failed while the application was finishing is still seen as failed,
    // then make sure of it.
    let deadline = std::time::Instant::now() + GOFER_GRACE;
    while !gofer_pids.iter().all(|&g| gofer_exited(g)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || signals::wait_signal_timeout(left).is_err() {
            break;
        }
    }
    let failed = gofer_pids.iter().any(|&g| gofer_failed(g));
    end_gofers(&mut gofers);
    reap_orphans();
    match result {
        Ok(_) if failed => {
            tracing::debug!("a gofer failed");
            Ok(EXIT_RUNTIME_ERROR)
        }
        r => r,
    }
}

fn end_gofers(gofers: &mut Vec<Child>) {
    for g in gofers.iter_mut() {
        let _ = g.kill();
        let _ = g.wait();
    }
    gofers.clear();
}

/// Starts a Gofer serving `root`; returns it and the Sentry's end of its socket.
fn start_gofer(
    settings: &Settings,
    root: PathBuf,
    read_only: bool,
) -> Result<(Child, OwnedFd), Error> {
    let (sentry_end, gofer_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::nix("socketpair", e))?;
    let role = Role::Gofer {
        root,
        read_only,
        fd: 3,
    };
    let mut cmd = role::command(role, settings, "runsc-gofer")?;
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let gofer = child::spawn_with_fds(cmd, &[(&gofer_end, 3)], "gofer")?;
    Ok((gofer, sentry_end))
}

/// How long the monitor waits for the Gofers to exit by itself once the sandbox has ended.
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
    settings: &Settings,
    launch: &Launch,
    socks: Vec<OwnedFd>,
    gofers: &[Pid],
    report: Option<&OwnedFd>,
) -> Result<i32, Error> {
    let (spec_read, spec_write) =
        pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::nix("pipe", e))?;
    signals::block_waited().map_err(|e| Error::host("block signals", e))?;
    // The recording is read on the side while the sandbox runs (it may exceed a pipe's
    // buffer); the thread starts now, with the waited signals blocked, because no thread
    // can be created after unshare(CLONE_NEWPID).
    let recording = match &launch.record {
        Some(_) => {
            let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::nix("pipe", e))?;
            let reader = std::thread::Builder::new()
                .name("recording".into())
                .spawn(move || {
                    let mut bytes = Vec::new();
                    let _ = std::fs::File::from(r).read_to_end(&mut bytes);
                    bytes
                })
                .map_err(|e| Error::host("start the recording reader", e))?;
            Some((reader, w))
        }
        None => None,
    };
    // --network=sandbox: the veth pair and the packet socket, made before the PID
    // namespace (a thread does it); the link goes when `link` drops, after the sandbox.
    let link = match settings.network {
        crate::config::Network::Sandbox => Some(crate::netsetup::create(std::process::id())?),
        _ => None,
    };
    // Our next child becomes PID 1 of a new PID namespace; we stay where we are.
    unshare(CloneFlags::CLONE_NEWPID).map_err(|e| match e {
        nix::errno::Errno::EPERM => {
            Error::Invalid("creating a PID namespace needs root (CAP_SYS_ADMIN)".into())
        }
        e => Error::nix("unshare(CLONE_NEWPID)", e),
    })?;
    let mut socks = socks.into_iter();
    let root_sock = socks
        .next()
        .ok_or_else(|| Error::Invalid("no root Gofer".into()))?;
    let mounts: Vec<OwnedFd> = socks.collect();
    let mut fds: Vec<(&OwnedFd, RawFd)> = vec![(&spec_read, 3), (&root_sock, 4)];
    let mut next = 5;
    let mut mount_fds = Vec::new();
    for m in &mounts {
        fds.push((m, next));
        mount_fds.push(next);
        next += 1;
    }
    let record_fd = recording.as_ref().map(|(_, w)| {
        fds.push((w, next));
        next += 1;
        next - 1
    });
    let report_fd = report.map(|r| {
        fds.push((r, next));
        next += 1;
        next - 1
    });
    let packet_fd = link.as_ref().map(|l| {
        fds.push((&l.packet, next));
        next += 1;
        next - 1
    });
    let role = Role::Boot {
        spec_fd: 3,
        gofer_fd: 4,
        mount_fds,
        record_fd,
        report_fd,
        packet_fd,
    };
    let boot_cmd = role::command(role, settings, "runsc-sandbox")?;
    let boot = child::spawn_with_fds(boot_cmd, &fds, "sandbox")?;
    drop(fds);
    drop((spec_read, root_sock, mounts));
    let recording = recording.map(|(reader, w)| {
        drop(w);
        reader
    });
    let mut boot_spec = launch.boot.clone();
    boot_spec.ethernet = link.as_ref().map(|l| l.spec.clone());
    if let Some(l) = &link {
        // Names the sandbox's stack can use: its own hosts file, and the host's
        // resolvers that a link of its own reaches. An absent host file is an empty one.
        let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        boot_spec.files = crate::netsetup::etc_files(&l.spec, &boot_spec.hostname, &resolv);
    }
    let json = serde_json::to_vec(&boot_spec).map_err(|e| Error::Invalid(e.to_string()))?;
    // A sandbox that dies before reading gives EPIPE here; its exit status says why.
    let _ = std::fs::File::from(spec_write).write_all(&json);
    let status = wait_sandbox(boot, gofers);
    drop(link);
    if let (Some(reader), Some(path)) = (recording, &launch.record) {
        let bytes = reader.join().unwrap_or_default();
        if !bytes.is_empty() {
            let rec: sentry::policy::Recording = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Sentry(format!("bad recording: {e}")))?;
            crate::profile::Profile::record_into(path, &rec)?;
        }
    }
    status
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
fn wait_sandbox(boot: Child, gofers: &[Pid]) -> Result<i32, Error> {
    let pid = Pid::from_raw(boot.id() as i32);
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::nix("wait for sandbox", e)),
        }
        if gofers.iter().any(|&g| gofer_failed(g)) {
            tracing::debug!("the gofer failed; ending the sandbox");
            let _ = kill(pid, Signal::SIGKILL);
            while let Err(nix::errno::Errno::EINTR) = waitpid(pid, None) {}
            return Ok(EXIT_RUNTIME_ERROR);
        }
        let got = signals::wait_signal().map_err(|e| Error::host("wait for signals", e))?;
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
}
