//! `runsc sandbox` (internal): the supervisor of one container, started by `create` and
//! left running when `create` returns. Its pid is the one in `--pid-file`, and its exit
//! status is the container's (containerd's shim waits for it).
//!
//! ```text
//! runsc sandbox (supervisor: control.sock listener, exit.json)
//!  ├── runsc gofer --serve-root ROOTFS --read-only --fd 3
//!  └── runsc boot --spec-fd 3 --gofer-fd 4 --control-fd 5   (the Sentry, PID 1 of a new
//!                                                            PID namespace)
//! ```
//!
//! It binds `control.sock`, starts the Gofer and the sandbox process like `runsc do`
//! does, waits for the sandbox to report that the first process is loaded, tells `create`
//! (over the ready pipe), then hands every connection on `control.sock` to the sandbox and
//! waits for it to exit. It records the exit status in `exit.json` and exits with it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sched::{CloneFlags, unshare};
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, accept4, bind, listen, socketpair,
};
use serde::{Deserialize, Serialize};

use super::bundle::{BootMountKind, SandboxBoot};
use super::proto::{self, Reply, Request};
use super::state::{CONTROL_SOCKET, EXIT_FILE, write_atomic};
use crate::child;
use crate::cli::GlobalArgs;
use crate::error::RunscError;

/// What `create` sends the supervisor.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Launch {
    /// The root file system on the host.
    pub rootfs: PathBuf,
    /// The sandbox process's boot description.
    pub boot: SandboxBoot,
    /// The cgroup to run in.
    #[serde(default)]
    pub cgroup: Option<super::cgroup::Cgroup>,
    /// `--network=sandbox`: the spec's network namespace, whose interface the Sentry
    /// takes over.
    #[serde(default)]
    pub netns: Option<PathBuf>,
    /// A container of a pod: it runs in the existing sandbox named here instead of a
    /// sandbox of its own.
    #[serde(default)]
    pub pod: Option<PodLaunch>,
}

/// Where a pod container's sandbox is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PodLaunch {
    /// The container's id.
    pub id: String,
    /// The control socket of the pod's sandbox (its root container's).
    pub sandbox_socket: PathBuf,
}

/// The largest launch description accepted.
const MAX_LAUNCH: u64 = 16 << 20;

/// A `runsc` child command with the global flags.
pub fn runsc_command(global: &GlobalArgs, arg0: &str) -> Command {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(arg0).args(global.to_args());
    cmd
}

/// Runs the supervisor; returns the container's exit status.
pub fn run(global: &GlobalArgs, args: super::cli::SupervisorArgs) -> Result<i32, RunscError> {
    let ready = child::take_inherited_fd(args.ready_fd, "ready fd")?;
    let launch_fd = child::take_inherited_fd(args.launch_fd, "launch fd")?;
    let _ = nix::sys::prctl::set_name(c"runsc-supervisor");
    let mut ready = std::fs::File::from(ready);
    let launch = match read_launch(launch_fd) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(ready, "error: {e}");
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
    };
    if launch.pod.is_some() {
        return run_in_pod(global, &args.state_dir, launch, ready);
    }
    let started = start(global, &args.state_dir, launch);
    let (mut boot, mut gofers, listener, control) = match started {
        Ok(s) => s,
        Err(e) => {
            // `create` prints it; the container's stderr (ours) is not for runtime errors.
            tracing::debug!("sandbox start failed: {e}");
            let _ = writeln!(ready, "error: {e}");
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
    };
    let _ = writeln!(ready, "ok");
    drop(ready);
    drop((listener, control));
    let status = match boot.wait() {
        Ok(st) => shell_status(st),
        Err(e) => {
            tracing::error!("wait for the sandbox: {e}");
            crate::error::EXIT_RUNTIME_ERROR
        }
    };
    let exit = serde_json::json!({ "status": status });
    if let Err(e) = write_atomic(&args.state_dir.join(EXIT_FILE), exit.to_string().as_bytes()) {
        tracing::debug!("record the exit status: {e}");
    }
    end_all(&mut gofers);
    Ok(status)
}

/// Kills and reaps `children`.
fn end_all(children: &mut Vec<Child>) {
    for mut c in children.drain(..) {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A child's status as a shell reports it.
fn shell_status(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => crate::error::EXIT_RUNTIME_ERROR,
    }
}

/// The sandbox process, the Gofers (root first), the listener and the control channel.
type Started = (Child, Vec<Child>, OwnedFd, OwnedFd);

/// Binds the control socket, starts the Gofer and the sandbox, and waits until the
/// sandbox reports its first process loaded.
fn start(global: &GlobalArgs, state_dir: &Path, mut launch: Launch) -> Result<Started, RunscError> {
    enter_cgroup(&launch)?;

    // --network=sandbox: the interface of the spec's network namespace becomes the
    // Sentry's (a thread joins the namespace: before the PID namespace below).
    let link = match &launch.netns {
        Some(ns) => rsentry::netsetup::take_over(ns)?,
        None => None,
    };
    launch.boot.ethernet = link.as_ref().map(|l| l.spec.clone());

    let listener = bind_control(state_dir)?;
    let (sentry_end, mount_socks, mut gofers) = start_gofers(global, &launch)?;

    let (control, control_sandbox_end) = pair()?;
    // Connections are handed to the sandbox until it exits (the thread ends with us). It
    // starts now: after unshare(CLONE_NEWPID) no thread can be created.
    {
        let listener = listener
            .try_clone()
            .map_err(|e| RunscError::host("dup control socket", e))?;
        let control = control
            .try_clone()
            .map_err(|e| RunscError::host("dup control channel", e))?;
        std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || accept_loop(listener, control))
            .map_err(|e| RunscError::host("start the accept thread", e))?;
    }
    let (spec_read, spec_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunscError::nix("pipe", e))?;
    // Our next child becomes PID 1 of a new PID namespace.
    if let Err(e) = unshare(CloneFlags::CLONE_NEWPID) {
        end_all(&mut gofers);
        return Err(RunscError::nix("unshare(CLONE_NEWPID)", e));
    }
    let mut boot_cmd = runsc_command(global, "runsc-sandbox");
    boot_cmd
        .arg("boot")
        .args(["--spec-fd", "3", "--gofer-fd", "4", "--control-fd", "5"]);
    let mut fds = vec![(&spec_read, 3), (&sentry_end, 4), (&control_sandbox_end, 5)];
    for (i, s) in mount_socks.iter().enumerate() {
        let n = 6 + i as i32;
        boot_cmd.arg("--mount-fd").arg(n.to_string());
        fds.push((s, n));
    }
    if let Some(l) = &link {
        let n = 6 + mount_socks.len() as i32;
        boot_cmd.arg("--packet-fd").arg(n.to_string());
        fds.push((&l.packet, n));
    }
    let spawned = child::spawn_with_fds(boot_cmd, &fds, "sandbox");
    drop((mount_socks, link));
    let mut boot = match spawned {
        Ok(b) => b,
        Err(e) => {
            end_all(&mut gofers);
            return Err(e);
        }
    };
    drop((spec_read, sentry_end, control_sandbox_end));
    let json = serde_json::to_vec(&launch.boot).map_err(|e| RunscError::Invalid(e.to_string()))?;
    // A sandbox that dies before reading gives EPIPE here; its status says why.
    let _ = std::fs::File::from(spec_write).write_all(&json);
    let failed = |boot: &mut Child, gofers: &mut Vec<Child>, e: RunscError| {
        let _ = boot.kill();
        let _ = boot.wait();
        end_all(gofers);
        Err(e)
    };
    match proto::recv::<Reply>(control.as_fd()) {
        Ok(Some((Reply::Ready { pid }, _))) => {
            tracing::debug!(pid, "sandbox ready");
            Ok((boot, gofers, listener, control))
        }
        Ok(Some((Reply::Error { message }, _))) => {
            failed(&mut boot, &mut gofers, RunscError::Sentry(message))
        }
        Ok(Some((other, _))) => failed(
            &mut boot,
            &mut gofers,
            RunscError::Sentry(format!("unexpected message {other:?}")),
        ),
        Ok(None) | Err(_) => {
            let st = boot.wait().map(shell_status).unwrap_or(-1);
            end_all(&mut gofers);
            Err(RunscError::Sentry(format!(
                "the sandbox exited while starting (status {st})"
            )))
        }
    }
}

/// Reads what `create` sends.
fn read_launch(launch_fd: OwnedFd) -> Result<Launch, RunscError> {
    let mut bytes = Vec::new();
    std::fs::File::from(launch_fd)
        .take(MAX_LAUNCH + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RunscError::host("read launch description", e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| RunscError::Invalid(format!("bad launch description: {e}")))
}

/// Into the container's cgroup before anything is started: the Gofers and the sandbox
/// follow. A cgroup without limits that cannot be made is only logged.
fn enter_cgroup(launch: &Launch) -> Result<(), RunscError> {
    if let Some(cg) = &launch.cgroup {
        match cg.enter() {
            Ok(()) => {}
            Err(e) if cg.limited => return Err(e.into()),
            Err(e) => tracing::warn!("container cgroup not used: {e}"),
        }
        if let Some(n) = cg.cpu_count() {
            super::cgroup::limit_affinity(n)?;
        }
    }
    Ok(())
}

/// Binds and listens on the container's `control.sock`.
fn bind_control(state_dir: &Path) -> Result<OwnedFd, RunscError> {
    let listener = proto::seqpacket().map_err(|e| RunscError::host("control socket", e))?;
    let path = state_dir.join(CONTROL_SOCKET);
    let _ = std::fs::remove_file(&path);
    let addr = UnixAddr::new(&path).map_err(|e| RunscError::nix("control socket address", e))?;
    bind(listener.as_raw_fd(), &addr).map_err(|e| RunscError::nix("bind control socket", e))?;
    listen(&listener, Backlog::new(64).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| RunscError::nix("listen on control socket", e))?;
    Ok(listener)
}

fn pair() -> Result<(OwnedFd, OwnedFd), RunscError> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RunscError::nix("socketpair", e))
}

/// Starts the Gofer of the root (read-only) and one per bind mount (read-write unless
/// the mount is read-only); returns the Sentry's ends of their channels (root first)
/// and the Gofer processes.
fn start_gofers(
    global: &GlobalArgs,
    launch: &Launch,
) -> Result<(OwnedFd, Vec<OwnedFd>, Vec<Child>), RunscError> {
    let (sentry_end, gofer_end) = pair()?;
    let mut gofer_cmd = runsc_command(global, "runsc-gofer");
    gofer_cmd
        .arg("gofer")
        .arg("--serve-root")
        .arg(&launch.rootfs)
        .arg("--read-only")
        .args(["--fd", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut gofers = vec![child::spawn_with_fds(
        gofer_cmd,
        &[(&gofer_end, 3)],
        "gofer",
    )?];
    drop(gofer_end);
    let mut mount_socks: Vec<OwnedFd> = Vec::new();
    for m in &launch.boot.mounts {
        let BootMountKind::Bind { source } = &m.kind else {
            continue;
        };
        let started = pair().and_then(|(sentry_end, gofer_end)| {
            let mut cmd = runsc_command(global, "runsc-gofer");
            cmd.arg("gofer").arg("--serve-root").arg(source);
            if m.readonly {
                cmd.arg("--read-only");
            }
            cmd.args(["--fd", "3"])
                .stdin(Stdio::null())
                .stdout(Stdio::null());
            let c = child::spawn_with_fds(cmd, &[(&gofer_end, 3)], "gofer")?;
            Ok((sentry_end, c))
        });
        match started {
            Ok((s, c)) => {
                gofers.push(c);
                mount_socks.push(s);
            }
            Err(e) => {
                end_all(&mut gofers);
                return Err(e);
            }
        }
    }
    Ok((sentry_end, mount_socks, gofers))
}

/// The supervisor of a container of a pod: its Gofers are started here and donated to
/// the pod's running sandbox, which adds the container to its kernel; its connections
/// are handed to the sandbox attached to the container; it waits for the container's
/// first process over the control socket and exits with its status.
fn run_in_pod(
    global: &GlobalArgs,
    state_dir: &Path,
    launch: Launch,
    mut ready: std::fs::File,
) -> Result<i32, RunscError> {
    let Some(pod) = launch.pod.clone() else {
        return Err(RunscError::Invalid("not a pod container".into()));
    };
    let started = start_in_pod(global, state_dir, &launch, &pod);
    let (mut gofers, listener, conn) = match started {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!("container start failed: {e}");
            let _ = writeln!(ready, "error: {e}");
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
    };
    // Our stdio now belongs to the container's first process, in the sandbox.
    let _ = writeln!(ready, "ok");
    drop(ready);
    {
        let pod = pod.clone();
        let spawned = std::thread::Builder::new()
            .name("accept".into())
            .spawn(move || attach_loop(listener, &pod));
        if let Err(e) = spawned {
            tracing::warn!("cannot start the accept thread: {e}");
        }
    }
    let status = match proto::call(conn.as_fd(), &Request::Wait { pid: 1 }, &[]) {
        Ok(Reply::Exited { status }) => status,
        Ok(other) => {
            tracing::warn!("wait for the container: unexpected reply {other:?}");
            crate::error::EXIT_RUNTIME_ERROR
        }
        // The sandbox is gone, and the container with it.
        Err(_) => 128 + libc::SIGKILL,
    };
    // The sandbox forgets the container (its tree, and so the Gofers' channels).
    let _ = proto::call(conn.as_fd(), &Request::Destroy, &[]);
    let exit = serde_json::json!({ "status": status });
    if let Err(e) = write_atomic(&state_dir.join(EXIT_FILE), exit.to_string().as_bytes()) {
        tracing::debug!("record the exit status: {e}");
    }
    end_all(&mut gofers);
    Ok(status)
}

/// A connection to the pod's sandbox attached to container `pod.id`: our end of a
/// socket pair whose other end rides on an `Attach` request.
fn attach(pod: &PodLaunch, conn: &OwnedFd) -> Result<(), RunscError> {
    let sock = proto::connect_to(&pod.sandbox_socket)
        .map_err(|_| RunscError::Runtime("the pod's sandbox is not running".into()))?;
    match proto::call(
        sock.as_fd(),
        &Request::Attach {
            container: pod.id.clone(),
        },
        &[conn.as_raw_fd()],
    ) {
        Ok(Reply::Ok) => Ok(()),
        Ok(Reply::Error { message }) => Err(RunscError::Sentry(message)),
        Ok(other) => Err(RunscError::Sentry(format!("unexpected reply {other:?}"))),
        Err(_) => Err(RunscError::Runtime(
            "the pod's sandbox is not running".into(),
        )),
    }
}

/// Starts the container's Gofers and has the pod's sandbox create the container; returns
/// the Gofers, our control listener and our attached connection.
fn start_in_pod(
    global: &GlobalArgs,
    state_dir: &Path,
    launch: &Launch,
    pod: &PodLaunch,
) -> Result<(Vec<Child>, OwnedFd, OwnedFd), RunscError> {
    enter_cgroup(launch)?;
    let listener = bind_control(state_dir)?;
    let (mine, theirs) = pair()?;
    attach(pod, &theirs)?;
    drop(theirs);
    let (root, mounts, mut gofers) = start_gofers(global, launch)?;
    let binds = mounts.len();
    if 4 + binds > proto::MAX_FDS {
        end_all(&mut gofers);
        return Err(RunscError::Invalid(format!(
            "a container of a pod can have at most {} bind mounts of directories",
            proto::MAX_FDS - 4
        )));
    }
    let boot = match serde_json::to_value(&launch.boot) {
        Ok(b) => b,
        Err(e) => {
            end_all(&mut gofers);
            return Err(RunscError::Invalid(e.to_string()));
        }
    };
    let mut fds = vec![0, 1, 2, root.as_raw_fd()];
    fds.extend(mounts.iter().map(|m| m.as_raw_fd()));
    let created = proto::call(mine.as_fd(), &Request::Create { boot }, &fds);
    drop((root, mounts));
    match created {
        Ok(Reply::Ready { pid }) => {
            tracing::debug!(pid, "container ready");
            Ok((gofers, listener, mine))
        }
        other => {
            end_all(&mut gofers);
            Err(match other {
                Ok(Reply::Error { message }) => RunscError::Sentry(message),
                Ok(r) => RunscError::Sentry(format!("unexpected reply {r:?}")),
                Err(_) => RunscError::Runtime("the pod's sandbox is not running".into()),
            })
        }
    }
}

/// Hands every connection on `listener` to the pod's sandbox, attached to our container.
fn attach_loop(listener: OwnedFd, pod: &PodLaunch) {
    loop {
        let conn = match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // accept4 just created this descriptor.
            Ok(fd) => crate::host::own_new_fd(fd),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNABORTED) => continue,
            Err(e) => {
                tracing::warn!("accept on the control socket: {e}");
                return;
            }
        };
        // A sandbox that is gone closes the connection: the client sees it stopped.
        if let Err(e) = attach(pod, &conn) {
            tracing::debug!("attach a connection: {e}");
        }
    }
}

/// Hands every connection on `listener` to the sandbox over `control`.
fn accept_loop(listener: OwnedFd, control: OwnedFd) {
    loop {
        let conn = match accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
            // accept4 just created this descriptor.
            Ok(fd) => crate::host::own_new_fd(fd),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::ECONNABORTED) => continue,
            Err(e) => {
                tracing::warn!("accept on the control socket: {e}");
                return;
            }
        };
        if proto::send(
            control.as_fd(),
            &serde_json::Value::Null,
            &[conn.as_raw_fd()],
        )
        .is_err()
        {
            // The sandbox is gone; the connection closes and the client sees it stopped.
            return;
        }
    }
}
