//! The sandbox process's side of the control protocol (`runsc boot --control-fd N`):
//! runs after confinement, inside the seccomp filter, so it only reads, writes and passes
//! descriptors on sockets it already holds.
//!
//! The supervisor hands every client connection over the control channel (one packet
//! with the connection's descriptor); each connection is served on its own thread, so a
//! `Wait` can block without holding up anything else.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::{Condvar, Mutex};

use sentry::control::{CapSets, InitState, MountFlags, MountSource, ProcessSpec, Sandbox};

use super::bundle::{BootMount, BootMountKind, SandboxBoot};
use super::proto::{self, InitStatus, Proc, ProcessArgs, Reply, Request};
use crate::error::RunscError;

/// Counts the requests being served, so that the sandbox answers them before it exits:
/// a `Wait` for the first process, and a `Signal` that ends it (the reply to a `kill`
/// must not lose the race with the sandbox's exit, or `kill` says "not running" of the
/// container it has just killed).
#[derive(Debug, Default)]
struct InFlight {
    count: Mutex<usize>,
    done: Condvar,
}

impl InFlight {
    fn enter(&self) {
        *self.count.lock() += 1;
    }

    fn leave(&self) {
        let mut c = self.count.lock();
        *c = c.saturating_sub(1);
        self.done.notify_all();
    }

    /// Waits (at most `limit`) until no request is left unanswered.
    fn drain(&self, limit: std::time::Duration) {
        let mut c = self.count.lock();
        let _ = self.done.wait_while_for(&mut c, |c| *c > 0, limit);
    }
}

fn spec_of(p: ProcessArgs, stdio: [OwnedFd; 3]) -> ProcessSpec {
    ProcessSpec {
        argv: p.argv,
        envp: p.envp,
        cwd: p.cwd,
        uid: p.uid,
        gid: p.gid,
        groups: p.groups,
        stdio,
        umask: p.umask,
        rlimits: p.rlimits,
        caps: p.caps.map(|c| CapSets {
            effective: c.effective,
            permitted: c.permitted,
            inheritable: c.inheritable,
            bounding: c.bounding,
            ambient: c.ambient,
        }),
        no_new_privs: p.no_new_privs,
    }
}

fn error_reply(e: impl std::fmt::Display) -> Reply {
    Reply::Error {
        message: e.to_string(),
    }
}

/// A readable message for a failed load (missing program, bad cwd...).
fn sentry_error(e: sentry::SentryError) -> String {
    match e {
        sentry::SentryError::Exec { path, errno } => format!(
            "{path}: {}",
            errno
                .description()
                .map(str::to_owned)
                .unwrap_or_else(|| errno.to_string())
        ),
        e => e.to_string(),
    }
}

/// Runs the sandbox of an OCI container: loads the first process, reports ready (or the
/// error) on `control`, serves connections, and returns the first process's status once
/// it ends.
pub fn run(
    platform: Arc<dyn platform::Platform>,
    boot: SandboxBoot,
    stdio: [OwnedFd; 3],
    (gofer, mount_socks): (Option<OwnedFd>, Vec<OwnedFd>),
    control: OwnedFd,
    strace: bool,
    // The terminal-signal pipe, and the packet socket of `--network=sandbox`.
    (console_signals, packet): (Option<OwnedFd>, Option<OwnedFd>),
) -> Result<i32, RunscError> {
    let host_network = boot.host_network;
    let sandbox = match Sandbox::new(platform, &boot.hostname, strace, gofer) {
        Ok(s) if host_network && s.kernel().enable_host_network().is_err() => {
            let _ = proto::send(
                control.as_fd(),
                &Reply::Error {
                    message: "cannot set up the host network".into(),
                },
                &[],
            );
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
        Ok(s) => Arc::new(s),
        Err(e) => {
            // Reported by `create`; the container's stderr is not ours to write to.
            tracing::debug!("sandbox setup failed: {e}");
            let _ = proto::send(control.as_fd(), &error_reply(&e), &[]);
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
    };
    if let (Some(packet), Some(e)) = (packet, &boot.ethernet) {
        sandbox
            .kernel()
            .net()
            .attach_ethernet(sentry::EthernetConfig {
                packet,
                mac: e.mac,
                addr: e.addr,
                prefix: e.prefix,
                gateway: e.gateway,
                addrs6: e.addrs6.clone(),
                gateway6: e.gateway6,
            });
    }
    if let Some(pipe) = console_signals {
        sandbox
            .kernel()
            .forward_console_signals(pipe)
            .map_err(|e| RunscError::host("start the console-signal thread", e))?;
    }
    if let Some(l) = boot.memory_limit {
        sandbox.set_memory_limit(l);
    }
    match boot.policies() {
        Ok(layers) if layers.is_empty() => {}
        Ok(layers) => {
            let filter = Arc::new(sentry::policy::Filter::new(layers));
            sandbox.kernel().policy().set_filter(filter);
        }
        Err(e) => {
            let _ = proto::send(
                control.as_fd(),
                &Reply::Error {
                    message: e.to_string(),
                },
                &[],
            );
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
    }
    for (key, value) in &boot.sysctl {
        if let Err(e) = sandbox.set_sysctl(key, value) {
            let message = format!(
                "linux.sysctl: {}={value:?}: {}",
                key.replace('/', "."),
                e.description().unwrap_or("invalid value")
            );
            let _ = proto::send(control.as_fd(), &Reply::Error { message }, &[]);
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
    }
    if let Err(msg) = make_mounts(&sandbox, None, &boot.mounts, mount_socks) {
        tracing::debug!("mounts failed: {msg}");
        let _ = proto::send(control.as_fd(), &Reply::Error { message: msg }, &[]);
        return Ok(crate::error::EXIT_RUNTIME_ERROR);
    }
    if let Err(msg) = protect_paths(&sandbox, None, &boot) {
        tracing::debug!("{msg}");
        let _ = proto::send(control.as_fd(), &Reply::Error { message: msg }, &[]);
        return Ok(crate::error::EXIT_RUNTIME_ERROR);
    }
    match sandbox.create_init(spec_of(*boot.process, stdio)) {
        Ok(pid) => proto::send(control.as_fd(), &Reply::Ready { pid }, &[])
            .map_err(|e| RunscError::host("report ready", e))?,
        Err(e) => {
            let msg = sentry_error(e);
            tracing::debug!("loading the first process failed: {msg}");
            let _ = proto::send(control.as_fd(), &Reply::Error { message: msg }, &[]);
            return Ok(crate::error::EXIT_RUNTIME_ERROR);
        }
    }
    let in_flight = Arc::new(InFlight::default());
    {
        let sandbox = sandbox.clone();
        let in_flight = in_flight.clone();
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || accept_loop(sandbox, in_flight, control))
            .map_err(|e| RunscError::host("start the control thread", e))?;
    }
    let status = sandbox
        .wait_init()
        .map_err(|e| RunscError::Sentry(e.to_string()))?;
    in_flight.drain(std::time::Duration::from_secs(2));
    Ok(status.to_shell_code())
}

fn flags(m: &BootMount) -> MountFlags {
    MountFlags {
        noexec: m.noexec,
        nodev: m.nodev,
    }
}

/// Makes the spec's mounts in order: a bind mount that fails is an error; a tmpfs that
/// cannot be placed (its destination is in a synthetic tree) is logged and skipped.
fn make_mounts(
    sandbox: &Sandbox,
    cid: Option<&str>,
    mounts: &[BootMount],
    socks: Vec<OwnedFd>,
) -> Result<(), String> {
    let mut socks = socks.into_iter();
    for m in mounts {
        match &m.kind {
            BootMountKind::Bind { source } => {
                let sock = socks
                    .next()
                    .ok_or_else(|| format!("no Gofer for the bind mount on {}", m.destination))?;
                sandbox
                    .mount(
                        cid,
                        &m.destination,
                        MountSource::Gofer(sock),
                        m.readonly,
                        flags(m),
                    )
                    .map_err(|e| {
                        format!("bind mount {} on {}: {e}", source.display(), m.destination)
                    })?;
            }
            BootMountKind::Own { path, options } => {
                sandbox
                    .mount_own(cid, path, &m.destination, m.readonly, flags(m))
                    .map_err(|e| format!("mount {path} on {}: {e}", m.destination))?;
                if path == "/dev/pts" {
                    let o = sentry::fs::DevptsOptions::parse(options.iter().map(String::as_str))
                        .map_err(|e| format!("devpts options {}: {e}", options.join(",")))?;
                    sandbox
                        .set_devpts_options(cid, &m.destination, o)
                        .map_err(|e| format!("devpts options on {}: {e}", m.destination))?;
                }
            }
            BootMountKind::Tmpfs { mode } => {
                if let Err(e) = sandbox.mount(
                    cid,
                    &m.destination,
                    MountSource::Tmpfs(*mode),
                    m.readonly,
                    flags(m),
                ) {
                    tracing::warn!(destination = %m.destination, "tmpfs mount skipped: {e}");
                }
            }
        }
    }
    Ok(())
}

/// `readonlyPaths`, then `maskedPaths` (runc's order: a mask inside a read-only path
/// stays visible; a path that does not exist is skipped, as runc skips it) and, last,
/// the read-only root.
fn protect_paths(sandbox: &Sandbox, cid: Option<&str>, boot: &SandboxBoot) -> Result<(), String> {
    for p in &boot.readonly_paths {
        match sandbox.readonly_path(cid, p) {
            Ok(true) => {}
            Ok(false) => tracing::debug!(path = %p, "read-only path does not exist"),
            Err(e) => return Err(format!("linux.readonlyPaths: {p}: {e}")),
        }
    }
    for p in &boot.masked_paths {
        match sandbox.mask_path(cid, p) {
            Ok(true) => {}
            Ok(false) => tracing::debug!(path = %p, "masked path does not exist"),
            Err(e) => return Err(format!("linux.maskedPaths: {p}: {e}")),
        }
    }
    if boot.readonly_root {
        sandbox
            .set_root_readonly(cid)
            .map_err(|e| format!("root.readonly: {e}"))?;
    }
    Ok(())
}

/// Takes client connections from the supervisor until it hangs up.
fn accept_loop(sandbox: Arc<Sandbox>, in_flight: Arc<InFlight>, control: OwnedFd) {
    static CONNECTIONS: AtomicUsize = AtomicUsize::new(0);
    loop {
        let conn = match proto::recv_raw(control.as_fd()) {
            Ok(Some((_, mut fds))) if !fds.is_empty() => fds.swap_remove(0),
            Ok(Some(_)) => continue,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("control channel: {e}");
                return;
            }
        };
        let n = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let sandbox = sandbox.clone();
        let in_flight = in_flight.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("control-{n}"))
            .spawn(move || serve(&sandbox, &in_flight, conn, None));
        if let Err(e) = spawned {
            tracing::warn!("cannot serve a control connection: {e}");
        }
    }
}

/// Serves `conn` for container `cid` of the pod on a thread of its own.
fn serve_attached(sandbox: &Arc<Sandbox>, in_flight: &Arc<InFlight>, conn: OwnedFd, cid: String) {
    static ATTACHED: AtomicUsize = AtomicUsize::new(0);
    let n = ATTACHED.fetch_add(1, Ordering::Relaxed);
    let sandbox = sandbox.clone();
    let in_flight = in_flight.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("control-c{n}"))
        .spawn(move || serve(&sandbox, &in_flight, conn, Some(&cid)));
    if let Err(e) = spawned {
        tracing::warn!("cannot serve a control connection: {e}");
    }
}

/// Serves one connection until the client hangs up; `cid` is the pod container it was
/// attached to (`None`: the sandbox's root container).
fn serve(sandbox: &Arc<Sandbox>, in_flight: &Arc<InFlight>, conn: OwnedFd, cid: Option<&str>) {
    loop {
        let (req, fds) = match proto::recv::<Request>(conn.as_fd()) {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                let _ = proto::send(conn.as_fd(), &error_reply(e), &[]);
                return;
            }
        };
        // Answered before the sandbox exits, whatever the request did to the first process.
        in_flight.enter();
        let reply = match (req, cid) {
            (Request::Attach { container }, None) => {
                match (fds.into_iter().next(), super::state::check_id(&container)) {
                    (Some(conn), Ok(())) => {
                        serve_attached(sandbox, in_flight, conn, container);
                        Reply::Ok
                    }
                    (None, _) => error_reply("attach needs the connection's descriptor"),
                    (_, Err(e)) => error_reply(e),
                }
            }
            (Request::Attach { .. }, Some(_)) => error_reply("already attached to a container"),
            (req, None) => handle(sandbox, req, fds),
            (req, Some(id)) => handle_in(sandbox, id, req, fds),
        };
        let sent = proto::send(conn.as_fd(), &reply, &[]);
        in_flight.leave();
        if sent.is_err() {
            return;
        }
    }
}

fn handle(sandbox: &Sandbox, req: Request, fds: Vec<OwnedFd>) -> Reply {
    match req {
        Request::Start => match sandbox.start() {
            Ok(()) => Reply::Ok,
            Err(_) => match sandbox.init_state() {
                Some(InitState::Running) => error_reply("the container is already running"),
                _ => error_reply("the container has stopped"),
            },
        },
        Request::State => state_reply(sandbox, sandbox.init_state()),
        Request::Exec { process } => {
            let Ok(stdio) = <[OwnedFd; 3]>::try_from(fds) else {
                return error_reply("exec needs exactly three descriptors (stdio)");
            };
            match sandbox.exec(spec_of(process, stdio)) {
                Ok(pid) => Reply::Pid { pid },
                Err(e) => error_reply(sentry_error(e)),
            }
        }
        Request::Wait { pid } => match sandbox.wait(pid) {
            Some(st) => Reply::Exited {
                status: st.to_shell_code(),
            },
            None => error_reply(format!("no process {pid} to wait for")),
        },
        Request::Signal { pid, signal, all } => {
            // The root container's processes only: a pod's other containers are
            // signalled through their own connections.
            let r = if all {
                sandbox.signal_container(None, signal)
            } else {
                sandbox.signal_in(None, pid, signal)
            };
            match r {
                Ok(()) => Reply::Ok,
                Err(e) => error_reply(format!("signal {signal} to {pid}: {e}")),
            }
        }
        Request::TerminalSignal { pid, signal } => match sandbox.terminal_signal(pid, signal) {
            Ok(()) => Reply::Ok,
            Err(e) => error_reply(format!("terminal signal {signal} for {pid}: {e}")),
        },
        Request::Pause => {
            sandbox.pause();
            Reply::Ok
        }
        Request::Resume => {
            sandbox.resume();
            Reply::Ok
        }
        Request::Ps => processes(sandbox, None),
        Request::Attach { .. } | Request::Create { .. } | Request::Destroy => {
            error_reply("only for a container of a pod")
        }
    }
}

fn processes(sandbox: &Sandbox, cid: Option<&str>) -> Reply {
    Reply::Processes {
        procs: sandbox
            .processes_in(cid)
            .into_iter()
            .map(|p| Proc {
                pid: p.pid,
                ppid: p.ppid,
                uid: p.uid,
                comm: p.comm,
                threads: p.threads,
                cpu_ns: p.cpu_ns,
                rss: p.rss,
            })
            .collect(),
    }
}

fn state_reply(sandbox: &Sandbox, st: Option<InitState>) -> Reply {
    match st {
        Some(InitState::Created) => Reply::State {
            status: InitStatus::Created,
            exit: None,
        },
        Some(InitState::Running) | None if sandbox.is_paused() => Reply::State {
            status: InitStatus::Paused,
            exit: None,
        },
        Some(InitState::Running) | None => Reply::State {
            status: InitStatus::Running,
            exit: None,
        },
        Some(InitState::Stopped(st)) => Reply::State {
            status: InitStatus::Stopped,
            exit: Some(st.to_shell_code()),
        },
    }
}

/// A request on a connection attached to container `id` of the pod: `pid` 1 names the
/// container's first process, and signals, `ps` and `exec` stay within the container.
fn handle_in(sandbox: &Sandbox, id: &str, req: Request, fds: Vec<OwnedFd>) -> Reply {
    match req {
        Request::Create { boot } => create_in(sandbox, id, boot, fds),
        Request::Destroy => {
            sandbox.remove_container(id);
            Reply::Ok
        }
        Request::Start => match sandbox.start_in(id) {
            Ok(()) => Reply::Ok,
            Err(_) => match sandbox.container_state(id) {
                Some(InitState::Running) => error_reply("the container is already running"),
                None => error_reply(format!("no container {id} in this sandbox")),
                _ => error_reply("the container has stopped"),
            },
        },
        Request::State => match sandbox.container_state(id) {
            None => Reply::State {
                status: InitStatus::Stopped,
                exit: None,
            },
            st => state_reply(sandbox, st),
        },
        Request::Exec { process } => {
            let Ok(stdio) = <[OwnedFd; 3]>::try_from(fds) else {
                return error_reply("exec needs exactly three descriptors (stdio)");
            };
            match sandbox.exec_in(Some(id), spec_of(process, stdio)) {
                Ok(pid) => Reply::Pid { pid },
                Err(e) => error_reply(sentry_error(e)),
            }
        }
        Request::Wait { pid } => {
            let pid = if pid == 1 {
                match sandbox.init_pid(Some(id)) {
                    Some(p) => p,
                    None => return error_reply(format!("no container {id} in this sandbox")),
                }
            } else {
                pid
            };
            match sandbox.wait(pid) {
                Some(st) => Reply::Exited {
                    status: st.to_shell_code(),
                },
                None => error_reply(format!("no process {pid} to wait for")),
            }
        }
        Request::Signal { pid, signal, all } => {
            let r = if all {
                sandbox.signal_container(Some(id), signal)
            } else if pid == 1 {
                sandbox.signal_init_in(id, signal)
            } else {
                sandbox.signal_in(Some(id), pid, signal)
            };
            match r {
                Ok(()) => Reply::Ok,
                Err(e) => error_reply(format!("signal {signal} to {pid}: {e}")),
            }
        }
        Request::Ps => processes(sandbox, Some(id)),
        req @ (Request::TerminalSignal { .. } | Request::Pause | Request::Resume) => {
            handle(sandbox, req, fds)
        }
        Request::Attach { .. } => error_reply("already attached to a container"),
    }
}

/// Adds container `id` to the pod: its tree over the Gofer that rides on the message,
/// its mounts, and its first process, loaded; answers `Ready` with its pid.
fn create_in(sandbox: &Sandbox, id: &str, boot: serde_json::Value, fds: Vec<OwnedFd>) -> Reply {
    let boot: SandboxBoot = match serde_json::from_value(boot) {
        Ok(b) => b,
        Err(e) => return error_reply(format!("bad container description: {e}")),
    };
    let binds = boot
        .mounts
        .iter()
        .filter(|m| matches!(m.kind, BootMountKind::Bind { .. }))
        .count();
    if fds.len() != 4 + binds {
        return error_reply(format!(
            "a container needs its stdio, its root's Gofer and {binds} bind mount Gofers: got {} descriptors",
            fds.len()
        ));
    }
    let mut fds = fds.into_iter();
    let (Some(i), Some(o), Some(e), Some(root)) = (fds.next(), fds.next(), fds.next(), fds.next())
    else {
        return error_reply("missing descriptors");
    };
    // The container's own system-call policy (its `linux.seccomp` and profile), in
    // force before its first process is loaded.
    let filter = match boot.policies() {
        Ok(layers) if layers.is_empty() => None,
        Ok(layers) => Some(Arc::new(sentry::policy::Filter::new(layers))),
        Err(e) => return error_reply(format!("container {id}: {e}")),
    };
    if let Err(e) = sandbox.add_container(id, Some(root)) {
        return error_reply(format!("container {id}: {e}"));
    }
    sandbox.kernel().policy().set_container_filter(id, filter);
    let made = make_mounts(sandbox, Some(id), &boot.mounts, fds.collect())
        .and_then(|()| protect_paths(sandbox, Some(id), &boot))
        .and_then(|()| {
            sandbox
                .create_in(id, spec_of(*boot.process, [i, o, e]))
                .map_err(sentry_error)
        });
    match made {
        Ok(pid) => Reply::Ready { pid },
        Err(msg) => {
            tracing::debug!(container = id, "creating the container failed: {msg}");
            sandbox.remove_container(id);
            Reply::Error { message: msg }
        }
    }
}
