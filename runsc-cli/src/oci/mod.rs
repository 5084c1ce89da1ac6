//! The OCI runtime: runc's lifecycle commands over a bundle.
//!
//! `create` checks the bundle, makes the state directory `<root>/<id>` (its `mkdir` is what
//! makes an ID unique), and starts the supervisor (`runsc sandbox`, module [`supervisor`]),
//! which outlives it. The supervisor starts the Gofer and the sandbox process; the sandbox
//! loads the first process and waits. `create` returns once the sandbox is ready, after
//! writing `--pid-file` and `state.json` (both atomically). Every later command talks to the
//! sandbox over `control.sock` in the state directory ([`proto`]); the Sentry serves those
//! requests ([`server`]) through its control API (`sentry::control`).
//!
//! Errors are one line, `runsc: ...`, with exit status 1 as runc uses; with
//! `--log FILE --log-format json` the same message is also appended to the log as runc's
//! `{"level":"error","msg":...}` line, where containerd's shim looks for it.

pub mod bundle;
pub mod cgroup;
pub mod cli;
pub mod console;
pub mod hooks;
pub mod proto;
pub mod server;
pub mod state;
pub mod supervisor;

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Child;

use self::bundle::Bundle;
use self::cli::*;
use self::proto::{ProcessArgs, Reply, Request};
use self::state::{Container, Status, Stored};
use crate::child;
use crate::cli::{GlobalArgs, LogFormat};
use crate::error::RunscError;

/// The OCI runtime spec version we implement.
pub const OCI_VERSION: &str = "1.2.0";
/// Exit status of a failed OCI command (runc's).
pub const EXIT_OCI_ERROR: i32 = 1;

/// An error of an OCI command: one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OciError(String);

impl OciError {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> OciError {
        OciError(msg.into())
    }
}

impl From<OciError> for RunscError {
    fn from(e: OciError) -> RunscError {
        RunscError::Runtime(e.0)
    }
}

/// The OCI commands.
#[derive(Debug)]
pub enum OciCommand {
    /// `create`.
    Create(CreateArgs),
    /// `start`.
    Start(IdArgs),
    /// `state`.
    State(IdArgs),
    /// `kill`.
    Kill(KillArgs),
    /// `delete`.
    Delete(DeleteArgs),
    /// `run`.
    Run(RunArgs),
    /// `exec`.
    Exec(ExecArgs),
    /// `ps`.
    Ps(PsArgs),
    /// `list`.
    List(ListArgs),
    /// `spec`.
    Spec(SpecArgs),
    /// `wait`.
    Wait(IdArgs),
    /// `events`.
    Events(EventsArgs),
    /// `pause`.
    Pause(IdArgs),
    /// `resume`.
    Resume(IdArgs),
    /// `features`.
    Features,
    /// `exec-wait` (internal).
    ExecWait(ExecWaitArgs),
}

/// Runs an OCI command. Every failure becomes exit status 1 (usage errors stay 2).
pub fn run(global: &GlobalArgs, cmd: OciCommand) -> Result<i32, RunscError> {
    let res = match cmd {
        OciCommand::Create(a) => create(global, a, false).map(|_| 0),
        OciCommand::Start(a) => start(global, &a.id),
        OciCommand::State(a) => state_cmd(global, &a.id),
        OciCommand::Kill(a) => kill(global, a),
        OciCommand::Delete(a) => delete(global, a),
        OciCommand::Run(a) => run_cmd(global, a),
        OciCommand::Exec(a) => exec(global, a),
        OciCommand::Ps(a) => ps(global, a),
        OciCommand::List(a) => list(global, a),
        OciCommand::Spec(a) => spec(a),
        OciCommand::Wait(a) => wait_cmd(global, &a.id),
        OciCommand::Events(a) => events(global, a),
        OciCommand::Pause(a) => pause(global, &a.id, true),
        OciCommand::Resume(a) => pause(global, &a.id, false),
        OciCommand::Features => features(),
        OciCommand::ExecWait(a) => exec_wait(global, a),
    };
    res.map_err(|e| {
        let e = match e {
            RunscError::Usage(_) | RunscError::Runtime(_) => e,
            other => RunscError::Runtime(other.to_string()),
        };
        log_error(global, &e);
        e
    })
}

/// Appends runc's JSON error line to `--log` (containerd's shim reports it).
fn log_error(global: &GlobalArgs, e: &RunscError) {
    let (Some(path), LogFormat::Json) = (&global.log, global.log_format) else {
        return;
    };
    let line = serde_json::json!({
        "level": "error",
        "msg": e.to_string(),
        "time": state::now_rfc3339(),
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn err(msg: impl Into<String>) -> RunscError {
    RunscError::Runtime(msg.into())
}

/// Removes a half-made state directory unless disarmed.
struct DirGuard(Option<PathBuf>);

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `create`: returns the container and the supervisor (our child until we exit).
fn create(
    global: &GlobalArgs,
    a: CreateArgs,
    foreground: bool,
) -> Result<(Container, Child), RunscError> {
    let bundle = Bundle::load(&a.bundle)?;
    if a.preserve_fds != 0 {
        return Err(err("--preserve-fds is not supported"));
    }
    state::check_id(&a.id)?;
    // A container of a pod runs in the running sandbox of the pod's sandbox container.
    let pod = match bundle.pod_sandbox(&a.id)? {
        Some(sid) => Some(pod_sandbox(global, &a.id, &sid)?),
        None => None,
    };
    // With a terminal, the container's stdio is a new pseudo-terminal whose master goes
    // to --console-socket; `run` in the foreground without one shares our own terminal.
    let pty = match (
        bundle.process().terminal().unwrap_or(false),
        &a.console_socket,
    ) {
        (false, _) => None,
        (true, Some(sock)) => {
            let size = bundle
                .process()
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u16, b.width() as u16));
            let pty = console::Pty::open(size)?;
            pty.send_master(sock)?;
            Some(pty)
        }
        (true, None) if foreground && nix::unistd::isatty(std::io::stdin()).unwrap_or(false) => {
            None
        }
        (true, None) => {
            return Err(err(
                "process.terminal is true: --console-socket is required (or run in the foreground on a terminal)",
            ));
        }
    };
    let mut boot = bundle.sandbox_boot()?;
    // The sandbox takes the terminal as its own only when it is the container's new one.
    boot.terminal = pty.is_some();
    let cgroup = cgroup::from_spec(&bundle.spec, &a.id, global.systemd_cgroup)?;
    boot.memory_limit = cgroup.as_ref().and_then(|c| c.memory);
    std::fs::create_dir_all(&global.root)
        .map_err(|e| err(format!("create {}: {e}", global.root.display())))?;
    let c = Container::at(&global.root, &a.id)?;
    match std::fs::create_dir(&c.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(err(format!("container with id {} already exists", a.id)));
        }
        Err(e) => return Err(err(format!("create {}: {e}", c.dir.display()))),
    }
    let mut guard = DirGuard(Some(c.dir.clone()));

    let (ready_read, ready_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunscError::nix("pipe", e))?;
    let (launch_read, launch_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunscError::nix("pipe", e))?;
    // The container's processes name their `--debug-log` files by the container, not by
    // pid: the sandbox process is PID 1 of its namespace in every container.
    let mut sup_global = global.clone();
    if sup_global.sandbox_id.is_none() {
        sup_global.sandbox_id = Some(format!("oci-{}", a.id));
    }
    let mut cmd = supervisor::runsc_command(&sup_global, "runsc-supervisor");
    cmd.arg("sandbox")
        .arg("--state-dir")
        .arg(&c.dir)
        .args(["--ready-fd", "3", "--launch-fd", "4"]);
    if let Some(pty) = &pty {
        let [i, o, e] = pty.stdio()?;
        cmd.stdin(i).stdout(o).stderr(e);
    }
    let mut sup =
        child::spawn_detached_with_fds(cmd, &[(&ready_write, 3), (&launch_read, 4)], "supervisor")?;
    drop((ready_write, launch_read, pty));
    let netns = match global.network_for_container() {
        crate::cli::NetworkKind::Sandbox if !boot.host_network => bundle.network_ns_path(),
        _ => None,
    };
    let launch = supervisor::Launch {
        rootfs: bundle.rootfs.clone(),
        boot,
        cgroup: cgroup.clone(),
        netns: if pod.is_some() { None } else { netns },
        pod: pod.as_ref().map(|(_, c)| supervisor::PodLaunch {
            id: a.id.clone(),
            sandbox_socket: c.socket(),
        }),
    };
    let json = serde_json::to_vec(&launch).map_err(|e| err(e.to_string()))?;
    let _ = std::fs::File::from(launch_write).write_all(&json);
    let mut answer = String::new();
    let _ = std::fs::File::from(ready_read)
        .take(64 << 10)
        .read_to_string(&mut answer);
    let answer = answer.trim_end();
    if answer != "ok" {
        let _ = sup.kill();
        let _ = sup.wait();
        if let Some(cg) = &launch.cgroup {
            cg.remove();
        }
        let msg = answer
            .strip_prefix("error: ")
            .map(str::to_owned)
            .unwrap_or_else(|| "the sandbox failed to start".into());
        return Err(err(msg));
    }
    let pid = sup.id() as i32;
    let stored = Stored {
        id: a.id.clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        pid,
        pid_start: state::pid_start_time(pid).unwrap_or(0),
        created: state::now_rfc3339(),
        annotations: bundle
            .spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        process: bundle.spec.process().clone(),
        owner_uid: nix::unistd::geteuid().as_raw(),
        hooks: bundle.spec.hooks().clone(),
        cgroup,
        sandbox: pod.map(|(sid, _)| sid),
    };
    // The create hooks see the container "creating"; one that fails stops and removes
    // it (its poststop hooks run), as runc does.
    let stored_ok = c.store(&stored).and_then(|()| {
        let st = state_json_as(&c, &stored, "creating");
        ["prestart", "createRuntime", "createContainer"]
            .iter()
            .try_for_each(|w| hooks::run_host(&stored.hooks, w, &st))
    });
    if let Err(e) = stored_ok {
        let _ = sup.kill();
        let _ = sup.wait();
        if let Some(cg) = &stored.cgroup {
            cg.remove();
        }
        let _ = hooks::run_host(
            &stored.hooks,
            "poststop",
            &state_json_as(&c, &stored, "stopped"),
        );
        return Err(e.into());
    }
    let stored_ok = match &a.pid_file {
        Some(f) => state::write_atomic(f, pid.to_string().as_bytes())
            .map_err(|e| OciError::new(format!("write pid file {}: {e}", f.display()))),
        None => Ok(()),
    };
    if let Err(e) = stored_ok {
        let _ = sup.kill();
        let _ = sup.wait();
        return Err(e.into());
    }
    guard.0 = None;
    Ok((c, sup))
}

/// The sandbox container `sid` that container `id` joins, checked: it exists, is the
/// root of its sandbox (not itself a container of a pod) and is running.
fn pod_sandbox(
    global: &GlobalArgs,
    id: &str,
    sid: &str,
) -> Result<(String, Container), RunscError> {
    let missing = || err(format!("container {id}: its sandbox {sid} does not exist"));
    let c = Container::open(&global.root, sid).map_err(|_| missing())?;
    let s = c.stored().map_err(|_| missing())?;
    if let Some(root) = &s.sandbox {
        return Err(err(format!(
            "container {id}: {sid} is not a sandbox (it is a container in sandbox {root})"
        )));
    }
    if c.status(&s).0 == Status::Stopped {
        return Err(err(format!(
            "container {id}: its sandbox {sid} is not running"
        )));
    }
    Ok((sid.to_owned(), c))
}

/// The container `id` with its stored state.
fn open(global: &GlobalArgs, id: &str) -> Result<(Container, Stored), RunscError> {
    let c = Container::open(&global.root, id)?;
    let s = c.stored()?;
    Ok((c, s))
}

/// Asks the sandbox; a missing answer means it has stopped.
fn ask(c: &Container, s: &Stored, req: &Request) -> Result<Reply, RunscError> {
    if !state::supervisor_alive(s) {
        return Err(err(format!("container {} is not running", c.id)));
    }
    match c.ask(req) {
        Some(Reply::Error { message }) => Err(err(message)),
        Some(r) => Ok(r),
        None => Err(err(format!("container {} is not running", c.id))),
    }
}

fn start(global: &GlobalArgs, id: &str) -> Result<i32, RunscError> {
    let (c, s) = open(global, id)?;
    match c.status(&s).0 {
        Status::Created => {}
        Status::Running | Status::Paused => {
            return Err(err(format!("container {id} is already running")));
        }
        Status::Stopped => {
            return Err(err(format!("cannot start container {id}: it has stopped")));
        }
    }
    start_container(&c, &s)?;
    Ok(0)
}

/// Runs the startContainer hooks, starts the process, runs the poststart hooks; a hook
/// that fails stops the container and fails the command, as runc's `start` does.
fn start_container(c: &Container, s: &Stored) -> Result<(), RunscError> {
    let kill_all = || {
        let _ = c.ask(&Request::Signal {
            pid: 1,
            signal: libc::SIGKILL,
            all: true,
        });
    };
    if let Err(e) = hooks::run_in_sandbox(c, &s.hooks, &state_json_as(c, s, "created")) {
        kill_all();
        return Err(e.into());
    }
    ask(c, s, &Request::Start)?;
    if let Err(e) = hooks::run_host(&s.hooks, "poststart", &state_json_as(c, s, "running")) {
        kill_all();
        return Err(e.into());
    }
    Ok(())
}

/// The state object with `status` as the hooks of a stage see it.
fn state_json_as(c: &Container, s: &Stored, status: &str) -> serde_json::Value {
    let mut v = state_json_stored(c, s);
    v["status"] = status.into();
    v
}

/// The runtime spec's state object.
fn state_json(c: &Container, s: &Stored) -> serde_json::Value {
    let (status, _) = c.status(s);
    let mut v = state_json_stored(c, s);
    v["status"] = status.name().into();
    if status == Status::Stopped {
        v["pid"] = 0.into();
    }
    v
}

/// The state object from what is stored, without asking the sandbox.
fn state_json_stored(c: &Container, s: &Stored) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": c.id,
        "status": "created",
        "pid": s.pid,
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
        "annotations": s.annotations,
        "owner": owner_name(s.owner_uid),
    })
}

fn owner_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

fn print_json(v: &serde_json::Value) -> Result<(), RunscError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| err(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| RunscError::host("write output", e))
}

fn state_cmd(global: &GlobalArgs, id: &str) -> Result<i32, RunscError> {
    let (c, s) = open(global, id)?;
    print_json(&state_json(&c, &s))?;
    Ok(0)
}

/// Parses a signal as runc does: a number, `KILL` or `SIGKILL` (any case).
pub fn parse_signal(s: &str) -> Result<i32, OciError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(OciError::new(format!("invalid signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN")
        && let Ok(off) = if rt.is_empty() {
            Ok(0)
        } else {
            rt.trim_start_matches('+').parse::<i32>()
        }
        && (0..=30).contains(&off)
    {
        return Ok(34 + off);
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| OciError::new(format!("invalid signal {s:?}")))
}

fn kill(global: &GlobalArgs, a: KillArgs) -> Result<i32, RunscError> {
    let sig = parse_signal(&a.signal)?;
    let (c, s) = open(global, &a.id)?;
    if c.status(&s).0 == Status::Stopped {
        // runc: with `--all` there is nothing left to signal, which is no error
        // (containerd's CRI kills every process of an exited container that way).
        if a.all {
            return Ok(0);
        }
        return Err(err(format!("container {} is not running", a.id)));
    }
    ask(
        &c,
        &s,
        &Request::Signal {
            pid: 1,
            signal: sig,
            all: a.all,
        },
    )?;
    Ok(0)
}

/// Waits until host process `pid` (started at `start`) has ended, at most `limit`.
fn wait_host_exit(pid: i32, start: u64, limit: std::time::Duration) -> bool {
    let gone = || state::pid_start_time(pid) != Some(start) || zombie(pid);
    if gone() {
        return true;
    }
    let Some(pidfd) = crate::host::pidfd_open(pid) else {
        return gone();
    };
    if gone() {
        return true;
    }
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ms = limit.as_millis().min(u128::from(u16::MAX)) as u16;
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
    gone()
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|st| {
            st.rfind(')')
                .and_then(|i| st[i + 1..].split_whitespace().next().map(|s| s == "Z"))
        })
        .unwrap_or(false)
}

fn delete(global: &GlobalArgs, a: DeleteArgs) -> Result<i32, RunscError> {
    let c = match Container::open(&global.root, &a.id) {
        Ok(c) => c,
        Err(_) if a.force && state::check_id(&a.id).is_ok() => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let s = match c.stored() {
        Ok(s) => s,
        // A stale directory (create died half-way): nothing runs, remove it.
        Err(_) => {
            std::fs::remove_dir_all(&c.dir)
                .map_err(|e| err(format!("remove {}: {e}", c.dir.display())))?;
            return Ok(0);
        }
    };
    match c.status(&s).0 {
        // The sandbox is on its way out (or wedged and not answering): its supervisor
        // gets a bounded time to exit with the container's status, then is killed with
        // its processes (they die with it), so nothing outlives the state.
        Status::Stopped if state::supervisor_alive(&s) => {
            if !wait_host_exit(s.pid, s.pid_start, std::time::Duration::from_secs(10)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(s.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                wait_host_exit(s.pid, s.pid_start, std::time::Duration::from_secs(10));
            }
        }
        Status::Stopped => {}
        st @ (Status::Running | Status::Paused) if !a.force => {
            return Err(err(format!(
                "cannot delete container {} that is not stopped: {}",
                a.id,
                st.name()
            )));
        }
        Status::Created | Status::Running | Status::Paused => {
            let _ = c.ask(&Request::Signal {
                pid: 1,
                signal: libc::SIGKILL,
                all: true,
            });
            if !wait_host_exit(s.pid, s.pid_start, std::time::Duration::from_secs(10)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(s.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
    std::fs::remove_dir_all(&c.dir).map_err(|e| err(format!("remove {}: {e}", c.dir.display())))?;
    if let Some(cg) = &s.cgroup {
        cg.remove();
    }
    hooks::run_host(&s.hooks, "poststop", &state_json_as(&c, &s, "stopped"))?;
    Ok(0)
}

fn run_cmd(global: &GlobalArgs, a: RunArgs) -> Result<i32, RunscError> {
    let id = a.create.id.clone();
    let (c, mut sup) = create(global, a.create, !a.detach)?;
    let s = c.stored()?;
    if let Err(e) = start_container(&c, &s) {
        let _ = c.ask(&Request::Signal {
            pid: 1,
            signal: libc::SIGKILL,
            all: true,
        });
        let _ = sup.wait();
        let _ = std::fs::remove_dir_all(&c.dir);
        let _ = hooks::run_host(&s.hooks, "poststop", &state_json_as(&c, &s, "stopped"));
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    crate::signals::block_waited().map_err(|e| RunscError::host("block signals", e))?;
    let status = loop {
        match sup.try_wait() {
            Ok(Some(st)) => {
                use std::os::unix::process::ExitStatusExt;
                break st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            Ok(None) => {}
            Err(e) => return Err(RunscError::host("wait for the container", e)),
        }
        let got = crate::signals::wait_signal().map_err(|e| RunscError::host("wait", e))?;
        if got.signo != libc::SIGCHLD {
            let _ = c.ask(&forwarded(1, got));
        }
    };
    if !a.keep {
        let _ = std::fs::remove_dir_all(&c.dir);
        if let Some(cg) = &s.cgroup {
            cg.remove();
        }
        hooks::run_host(&s.hooks, "poststop", &state_json_as(&c, &s, "stopped"))?;
    }
    tracing::debug!(id, status, "container exited");
    Ok(status)
}

/// Parses `UID[:GID]`.
fn parse_user(s: &str) -> Result<(u32, Option<u32>), OciError> {
    let bad = || OciError::new(format!("--user {s:?}: expected UID[:GID]"));
    match s.split_once(':') {
        Some((u, g)) => Ok((
            u.parse().map_err(|_| bad())?,
            Some(g.parse().map_err(|_| bad())?),
        )),
        None => Ok((s.parse().map_err(|_| bad())?, None)),
    }
}

/// `exec --cap`: each capability joins the bounding, effective, permitted, inheritable and
/// ambient sets (the inheritable one so that the ambient one may hold it), as runc adds it.
fn add_caps(p: &mut ProcessArgs, names: &[String]) -> Result<(), RunscError> {
    for name in names {
        let n = sentry::kernel::cap_from_name(name)
            .ok_or_else(|| err(format!("--cap: unknown capability {name:?}")))?;
        let bit = 1u64 << n;
        // Without sets of its own the process already has root's full sets.
        if let Some(c) = p.caps.as_mut() {
            c.bounding |= bit;
            c.effective |= bit;
            c.permitted |= bit;
            c.inheritable |= bit;
            c.ambient |= bit;
        }
    }
    Ok(())
}

/// The process `exec` runs: `--process FILE`, or the container's process with the
/// command line's arguments and overrides.
/// The process `exec` starts, whether it has a terminal, and the terminal's size.
type ExecProcess = (ProcessArgs, bool, Option<(u16, u16)>);

fn exec_process(a: &ExecArgs, s: &Stored) -> Result<ExecProcess, RunscError> {
    if let Some(file) = &a.process {
        let bytes = std::fs::read(file).map_err(|e| err(format!("{}: {e}", file.display())))?;
        let raw: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| err(format!("{}: malformed: {e}", file.display())))?;
        bundle::check_raw_process(&raw).map_err(|e| err(format!("{}: {e}", file.display())))?;
        let p: oci_spec::runtime::Process = serde_json::from_value(raw)
            .map_err(|e| err(format!("{}: malformed: {e}", file.display())))?;
        let terminal = a.tty || p.terminal().unwrap_or(false);
        let size = p
            .console_size()
            .as_ref()
            .map(|b| (b.height() as u16, b.width() as u16));
        let mut p = bundle::process_args(&p, &s.rootfs)?;
        add_caps(&mut p, &a.caps)?;
        return Ok((p, terminal, size));
    }
    if a.command.is_empty() {
        return Err(RunscError::Usage(
            "exec: missing command (usage: runsc exec [OPTIONS] ID CMD [ARG]...)".into(),
        ));
    }
    let base = s.process.clone().unwrap_or_default();
    let mut envp = base.env().clone().unwrap_or_default();
    for kv in &a.env {
        let Some((k, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(err(format!("--env {kv:?} is not K=V")));
        };
        envp.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(k));
        envp.push(kv.clone());
    }
    let mut argv = a.command.clone();
    if let Some(found) = bundle::resolve_in_path(&s.rootfs, &argv[0], &envp) {
        argv[0] = found;
    }
    let cwd = match &a.cwd {
        Some(c) if c.starts_with('/') => c.clone(),
        Some(c) => return Err(err(format!("--cwd {c:?} is not absolute"))),
        None => base.cwd().to_string_lossy().into_owned(),
    };
    let (mut uid, mut gid) = (base.user().uid(), base.user().gid());
    let mut groups = base.user().additional_gids().clone().unwrap_or_default();
    if let Some(u) = &a.user {
        let (u, g) = parse_user(u)?;
        uid = u;
        gid = g.unwrap_or(0);
        groups.clear();
    }
    groups.extend(&a.additional_gids);
    let mut p = ProcessArgs {
        argv,
        envp,
        cwd: if cwd.is_empty() { "/".into() } else { cwd },
        uid,
        gid,
        groups,
        ..ProcessArgs::default()
    };
    bundle::inherit_settings(&base, &mut p)?;
    if a.no_new_privs {
        p.no_new_privs = true;
    }
    add_caps(&mut p, &a.caps)?;
    Ok((p, a.tty, None))
}

fn exec(global: &GlobalArgs, a: ExecArgs) -> Result<i32, RunscError> {
    let (c, s) = open(global, &a.id)?;
    if a.preserve_fds != 0 {
        return Err(err("--preserve-fds is not supported"));
    }
    let (process, terminal, size) = exec_process(&a, &s)?;
    if c.status(&s).0 == Status::Paused && !a.ignore_paused {
        return Err(err(format!(
            "cannot exec in container {}: it is paused",
            a.id
        )));
    }
    if !matches!(c.status(&s).0, Status::Running | Status::Paused) {
        return Err(err(format!(
            "cannot exec in container {}: it is not running",
            a.id
        )));
    }
    // With a terminal: a new pseudo-terminal whose master goes to --console-socket, or,
    // in the foreground without one, our own terminal.
    let pty = match (terminal, &a.console_socket) {
        (false, _) => None,
        (true, Some(sock)) => {
            let pty = console::Pty::open(size)?;
            pty.send_master(sock)?;
            Some(pty)
        }
        (true, None) if !a.detach && nix::unistd::isatty(std::io::stdin()).unwrap_or(false) => None,
        (true, None) => {
            return Err(err(
                "exec: a terminal needs --console-socket (or the foreground on a terminal)",
            ));
        }
    };
    if !a.detach {
        let stdio = match &pty {
            Some(p) => p.stdio()?,
            None => std_stdio()?,
        };
        let status = run_exec(&c, process, None, a.pid_file.as_deref(), stdio)?;
        return Ok(status);
    }
    // Detached: a child `runsc exec-wait` starts the process and waits for it; its pid
    // goes to --pid-file and its exit status is the process's.
    let (ready_read, ready_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunscError::nix("pipe", e))?;
    let (proc_read, proc_write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunscError::nix("pipe", e))?;
    let mut cmd = supervisor::runsc_command(global, "runsc-exec");
    cmd.arg("exec-wait")
        .args(["--ready-fd", "3", "--process-fd", "4"])
        .arg(&a.id);
    let fds = [(&ready_write, 3), (&proc_read, 4)];
    // The waiter of a process with a terminal leads a session whose controlling terminal
    // it is, so that keys typed into it reach the waiter, which passes them on.
    let mut waiter = match &pty {
        Some(p) => {
            let [i, o, e] = p.stdio()?;
            cmd.stdin(i).stdout(o).stderr(e);
            child::spawn_terminal_session_with_fds(cmd, &fds, "exec waiter")?
        }
        None => child::spawn_detached_with_fds(cmd, &fds, "exec waiter")?,
    };
    drop((ready_write, proc_read, pty));
    let json = serde_json::to_vec(&process).map_err(|e| err(e.to_string()))?;
    let _ = std::fs::File::from(proc_write).write_all(&json);
    let mut answer = String::new();
    let _ = std::fs::File::from(ready_read)
        .take(64 << 10)
        .read_to_string(&mut answer);
    let answer = answer.trim_end();
    if answer != "ok" {
        let _ = waiter.kill();
        let _ = waiter.wait();
        return Err(err(answer
            .strip_prefix("error: ")
            .unwrap_or("exec: the process did not start")));
    }
    if let Some(f) = &a.pid_file {
        state::write_atomic(f, waiter.id().to_string().as_bytes())
            .map_err(|e| err(format!("write pid file {}: {e}", f.display())))?;
    }
    Ok(0)
}

/// Starts `process` in the container with our stdio, reports the start on `ready`, then
/// waits for it, forwarding the signals we get, and returns its status.
fn run_exec(
    c: &Container,
    process: ProcessArgs,
    ready: Option<std::fs::File>,
    pid_file: Option<&Path>,
    stdio: [OwnedFd; 3],
) -> Result<i32, RunscError> {
    let report = |ready: Option<std::fs::File>, msg: &str| {
        if let Some(mut r) = ready {
            let _ = writeln!(r, "{msg}");
        }
    };
    let Some(sock) = c.connect() else {
        let msg = format!("container {} is not running", c.id);
        report(ready, &format!("error: {msg}"));
        return Err(err(msg));
    };
    let raw = stdio.each_ref().map(|f| f.as_raw_fd());
    let pid = match proto::call(sock.as_fd(), &Request::Exec { process }, &raw) {
        Ok(Reply::Pid { pid }) => pid,
        Ok(Reply::Error { message }) => {
            report(ready, &format!("error: {message}"));
            return Err(err(message));
        }
        Ok(other) => {
            let msg = format!("exec: unexpected reply {other:?}");
            report(ready, &format!("error: {msg}"));
            return Err(err(msg));
        }
        Err(e) => {
            let msg = format!("exec: {e}");
            report(ready, &format!("error: {msg}"));
            return Err(err(msg));
        }
    };
    if let Some(f) = pid_file {
        state::write_atomic(f, std::process::id().to_string().as_bytes())
            .map_err(|e| err(format!("write pid file {}: {e}", f.display())))?;
    }
    report(ready, "ok");
    // Signals sent to us go to the process (containerd's shim signals the pid it has).
    crate::signals::block_waited().map_err(|e| RunscError::host("block signals", e))?;
    let fwd = c.clone();
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            while let Ok(got) = crate::signals::wait_signal() {
                if got.signo != libc::SIGCHLD {
                    let _ = fwd.ask(&forwarded(pid, got));
                }
            }
        });
    match proto::call(sock.as_fd(), &Request::Wait { pid }, &[]) {
        Ok(Reply::Exited { status }) => Ok(status),
        Ok(Reply::Error { message }) => Err(err(message)),
        Ok(other) => Err(err(format!("exec: unexpected reply {other:?}"))),
        // The whole sandbox went away: the process was killed with it.
        Err(_) => Ok(128 + libc::SIGKILL),
    }
}

fn exec_wait(global: &GlobalArgs, a: ExecWaitArgs) -> Result<i32, RunscError> {
    let ready = std::fs::File::from(child::take_inherited_fd(a.ready_fd, "ready fd")?);
    let proc_fd = child::take_inherited_fd(a.process_fd, "process fd")?;
    let mut bytes = Vec::new();
    std::fs::File::from(proc_fd)
        .take(proto::MAX_MESSAGE as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| RunscError::host("read process", e))?;
    let process: ProcessArgs =
        serde_json::from_slice(&bytes).map_err(|e| err(format!("bad process: {e}")))?;
    let c = Container::open(&global.root, &a.id)?;
    run_exec(&c, process, Some(ready), None, std_stdio()?)
}

/// Copies of our stdin, stdout and stderr.
fn std_stdio() -> Result<[OwnedFd; 3], RunscError> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>| {
        fd.try_clone_to_owned()
            .map_err(|e| RunscError::host("dup stdio", e))
    };
    Ok([
        dup(std::io::stdin().as_fd())?,
        dup(std::io::stdout().as_fd())?,
        dup(std::io::stderr().as_fd())?,
    ])
}

/// What a signal we got becomes for process `pid`: one that our terminal generated (a
/// key typed into it, a resize; sent by the host kernel, not by a process) goes to the
/// foreground group of `pid`'s terminal; any other is sent to `pid`.
fn forwarded(pid: i32, got: crate::signals::Received) -> Request {
    let keyboard = matches!(
        got.signo,
        libc::SIGINT | libc::SIGQUIT | libc::SIGTSTP | libc::SIGWINCH
    );
    if keyboard && !got.from_process && nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        Request::TerminalSignal {
            pid,
            signal: got.signo,
        }
    } else {
        Request::Signal {
            pid,
            signal: got.signo,
            all: false,
        }
    }
}

fn procs(c: &Container, s: &Stored) -> Result<Vec<proto::Proc>, RunscError> {
    match ask(c, s, &Request::Ps)? {
        Reply::Processes { procs } => Ok(procs),
        other => Err(err(format!("ps: unexpected reply {other:?}"))),
    }
}

fn ps(global: &GlobalArgs, a: PsArgs) -> Result<i32, RunscError> {
    let (c, s) = open(global, &a.id)?;
    let list = procs(&c, &s)?;
    match a.format {
        Format::Json => {
            let pids: Vec<i32> = list.iter().map(|p| p.pid).collect();
            println!(
                "{}",
                serde_json::to_string(&pids).map_err(|e| err(e.to_string()))?
            );
        }
        Format::Table => {
            println!("{:<8} {:>7} {:>7} {:>10} CMD", "UID", "PID", "PPID", "TIME");
            for p in list {
                let secs = p.cpu_ns / 1_000_000_000;
                println!(
                    "{:<8} {:>7} {:>7} {:>4}:{:02}:{:02} {}",
                    p.uid,
                    p.pid,
                    p.ppid,
                    secs / 3600,
                    secs / 60 % 60,
                    secs % 60,
                    p.comm
                );
            }
        }
    }
    Ok(0)
}

fn list(global: &GlobalArgs, a: ListArgs) -> Result<i32, RunscError> {
    let mut ids: Vec<String> = match std::fs::read_dir(&global.root) {
        Ok(d) => d
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| state::check_id(id).is_ok())
            .collect(),
        Err(_) => Vec::new(),
    };
    ids.sort();
    let mut states = Vec::new();
    for id in &ids {
        let c = Container::at(&global.root, id)?;
        // A stale directory has no state to show.
        if let Ok(s) = c.stored() {
            states.push(state_json(&c, &s));
        }
    }
    if a.quiet {
        for s in &states {
            println!("{}", s["id"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&states).map_err(|e| err(e.to_string()))?
        ),
        Format::Table => {
            println!(
                "{:<20} {:>8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for s in &states {
                println!(
                    "{:<20} {:>8} {:<10} {:<40} {:<32} {}",
                    s["id"].as_str().unwrap_or_default(),
                    s["pid"],
                    s["status"].as_str().unwrap_or_default(),
                    s["bundle"].as_str().unwrap_or_default(),
                    s["created"].as_str().unwrap_or_default(),
                    s["owner"].as_str().unwrap_or_default()
                );
            }
        }
    }
    Ok(0)
}

fn spec(a: SpecArgs) -> Result<i32, RunscError> {
    let path: PathBuf = a.bundle.join("config.json");
    if path.exists() {
        return Err(err(format!(
            "file {} exists: remove it first",
            path.display()
        )));
    }
    // `--rootless` (a global flag) changes nothing: the sandbox needs no host privilege
    // inside.
    let spec = bundle::default_spec();
    let text = serde_json::to_vec_pretty(&spec).map_err(|e| err(e.to_string()))?;
    state::write_atomic(&path, &text).map_err(|e| err(format!("write {}: {e}", path.display())))?;
    Ok(0)
}

fn wait_cmd(global: &GlobalArgs, id: &str) -> Result<i32, RunscError> {
    let (c, s) = open(global, id)?;
    let mut status = None;
    if state::supervisor_alive(&s)
        && let Some(sock) = c.connect()
        && let Ok(Reply::Exited { status: st }) =
            proto::call(sock.as_fd(), &Request::Wait { pid: 1 }, &[])
    {
        status = Some(st);
    }
    if status.is_none() {
        // The sandbox is gone or going: its supervisor records the status on the way out.
        wait_host_exit(s.pid, s.pid_start, std::time::Duration::from_secs(30));
        status = c.recorded_exit();
    }
    let Some(status) = status else {
        return Err(err(format!("container {id}: exit status unknown")));
    };
    print_json(&serde_json::json!({ "id": id, "exitStatus": status }))?;
    Ok(0)
}

/// Parses `5`, `5s`, `500ms`, `1m`.
fn parse_interval(s: &str) -> Result<std::time::Duration, OciError> {
    let bad = || OciError::new(format!("invalid interval {s:?}"));
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n * 60),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

fn stats_event(c: &Container, s: &Stored) -> Result<serde_json::Value, RunscError> {
    let list = procs(c, s)?;
    let cpu: u64 = list.iter().map(|p| p.cpu_ns).sum();
    let mem: u64 = list.iter().map(|p| p.rss).sum();
    Ok(serde_json::json!({
        "type": "stats",
        "id": c.id,
        "data": {
            "cpu": { "usage": { "total": cpu, "user": cpu, "kernel": 0 } },
            "memory": { "usage": { "usage": mem } },
            "pids": { "current": list.len() },
        }
    }))
}

fn events(global: &GlobalArgs, a: EventsArgs) -> Result<i32, RunscError> {
    let interval = parse_interval(&a.interval)?;
    let (c, s) = open(global, &a.id)?;
    if a.stats {
        println!("{}", stats_event(&c, &s)?);
        return Ok(0);
    }
    loop {
        if c.status(&s).0 == Status::Stopped {
            return Ok(0);
        }
        match stats_event(&c, &s) {
            Ok(ev) => println!("{ev}"),
            Err(_) => return Ok(0),
        }
        std::thread::sleep(interval);
    }
}

/// `pause` (`freeze`) or `resume`: the container must be running, or paused.
fn pause(global: &GlobalArgs, id: &str, freeze: bool) -> Result<i32, RunscError> {
    let (c, s) = open(global, id)?;
    match (c.status(&s).0, freeze) {
        (Status::Running, true) => ask(&c, &s, &Request::Pause)?,
        (Status::Paused, false) => ask(&c, &s, &Request::Resume)?,
        (_, true) => return Err(err(format!("container {id} is not running"))),
        (_, false) => return Err(err(format!("container {id} is not paused"))),
    };
    Ok(0)
}

fn features() -> Result<i32, RunscError> {
    let f = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec"],
        "linux": {
            "namespaces": ["pid", "mount", "ipc", "uts", "network"],
            "capabilities": sentry::kernel::CAP_NAMES.to_vec(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
        },
        "annotations": {
            "org.opencontainers.runc.version": env!("CARGO_PKG_VERSION"),
            "dev.rsentry.sandbox": "rsentry",
        },
    });
    print_json(&f)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        assert_eq!(parse_signal("9").expect("9"), 9);
        assert_eq!(parse_signal("KILL").expect("KILL"), 9);
        assert_eq!(parse_signal("sigterm").expect("sigterm"), 15);
        assert_eq!(parse_signal("SIGRTMIN+2").expect("rt"), 36);
        for bad in ["0", "65", "NOPE", ""] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn users_and_intervals_parse() {
        assert_eq!(parse_user("1000").expect("uid"), (1000, None));
        assert_eq!(parse_user("1:2").expect("uid:gid"), (1, Some(2)));
        assert!(parse_user("root").is_err());
        assert_eq!(
            parse_interval("5s").expect("5s"),
            std::time::Duration::from_secs(5)
        );
        assert_eq!(
            parse_interval("250ms").expect("ms"),
            std::time::Duration::from_millis(250)
        );
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("5h").is_err());
    }
}
