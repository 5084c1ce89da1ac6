//! The runtime spec's hooks (`config.json` `hooks`), run where and when the spec says:
//!
//! | hook | when | where |
//! |---|---|---|
//! | `prestart`, `createRuntime` | `create`, once the sandbox is ready | the host (runtime namespace) |
//! | `createContainer` | `create`, after those | the host (see below) |
//! | `startContainer` | `start`, before the process runs | inside the sandbox: the path resolves in the container |
//! | `poststart` | `start`, after the process started | the host |
//! | `poststop` | `delete` (and the end of `run`), after the container is gone | the host |
//!
//! Each hook gets the container's state JSON on its stdin, only its own `env`, and is killed
//! when its `timeout` (seconds) runs out. A failing create or start hook fails the command
//! as runc's does: the container is stopped and, for `create`, removed (its poststop hooks
//! run). A failing `poststop` hook is reported after the container is deleted anyway.
//!
//! `createContainer` hooks belong in the container's namespaces with a path of the runtime
//! namespace; the Sentry's namespaces are not host namespaces a host program could join,
//! so they run on the host, as gVisor runs them.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use oci_spec::runtime::{Hook, Hooks};

use super::OciError;
use super::proto::{self, ProcessArgs, Reply, Request};
use super::state::Container;

/// The hook lists of a spec, by the spec's names.
pub fn list<'a>(hooks: &'a Option<Hooks>, which: &str) -> &'a [Hook] {
    let Some(h) = hooks else {
        return &[];
    };
    let l = match which {
        "prestart" =>
        {
            #[allow(deprecated)]
            h.prestart()
        }
        "createRuntime" => h.create_runtime(),
        "createContainer" => h.create_container(),
        "startContainer" => h.start_container(),
        "poststart" => h.poststart(),
        "poststop" => h.poststop(),
        _ => &None,
    };
    l.as_deref().unwrap_or(&[])
}

/// Most bytes of a hook's output kept for the error message.
const OUTPUT_KEPT: usize = 4096;

fn one_line(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(OUTPUT_KEPT)]).into_owned();
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn timeout_of(h: &Hook) -> Result<Option<Duration>, OciError> {
    match h.timeout() {
        None => Ok(None),
        Some(t) if t > 0 => Ok(Some(Duration::from_secs(t as u64))),
        Some(t) => Err(OciError::new(format!(
            "hook {}: timeout {t} must be positive",
            h.path().display()
        ))),
    }
}

/// Checks the hooks of a spec: absolute paths, positive timeouts.
pub fn check(hooks: &Option<Hooks>) -> Result<(), OciError> {
    for which in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        for h in list(hooks, which) {
            if !h.path().is_absolute() {
                return Err(OciError::new(format!(
                    "hooks.{which}: path {:?} is not absolute",
                    h.path()
                )));
            }
            timeout_of(h)?;
        }
    }
    Ok(())
}

/// Runs the `which` hooks on the host in order with `state` on their stdin; the first that
/// fails ends the run with its error.
pub fn run_host(
    hooks: &Option<Hooks>,
    which: &str,
    state: &serde_json::Value,
) -> Result<(), OciError> {
    let input = state.to_string().into_bytes();
    for h in list(hooks, which) {
        run_one(h, &input)
            .map_err(|e| OciError::new(format!("{which} hook {}: {e}", h.path().display())))?;
    }
    Ok(())
}

/// Reads all of `r` on a thread of its own.
fn collect(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut out);
        }
        out
    })
}

/// Waits until the process behind `pidfd` has ended, at most `limit` (forever if `None`);
/// false when the time ran out.
fn wait_readable(fd: &OwnedFd, limit: Option<Duration>) -> bool {
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let deadline = limit.map(|l| std::time::Instant::now() + l);
    loop {
        let left = match deadline {
            None => nix::poll::PollTimeout::NONE,
            Some(d) => {
                let ms = d
                    .saturating_duration_since(std::time::Instant::now())
                    .as_millis()
                    .min(i32::MAX as u128) as i32;
                nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX)
            }
        };
        match nix::poll::poll(&mut fds, left) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}

fn run_one(h: &Hook, input: &[u8]) -> Result<(), String> {
    let args = h.args().clone().unwrap_or_default();
    let mut cmd = Command::new(h.path());
    if let Some(a0) = args.first() {
        cmd.arg0(a0);
    }
    cmd.args(args.iter().skip(1))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let limit = timeout_of(h).map_err(|e| e.to_string())?;
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let out = collect(child.stdout.take());
    let err = collect(child.stderr.take());
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin gets EPIPE here: not an error.
        let _ = stdin.write_all(input);
    }
    let timed_out = match crate::host::pidfd_open(child.id() as i32) {
        Some(pidfd) => !wait_readable(&pidfd, limit),
        None => false,
    };
    if timed_out {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if timed_out {
        return Err(format!(
            "timed out after {} seconds",
            limit.map_or(0, |l| l.as_secs())
        ));
    }
    if status.success() {
        return Ok(());
    }
    let mut msg = match status.code() {
        Some(c) => format!("exit status {c}"),
        None => format!("killed by {status}"),
    };
    for (name, text) in [("stdout", out), ("stderr", err)] {
        let t = one_line(&text);
        if !t.is_empty() {
            msg.push_str(&format!(", {name}: {t}"));
        }
    }
    Err(msg)
}

/// Runs the `startContainer` hooks inside the sandbox (the path is the container's), as
/// root, with `state` on stdin.
pub fn run_in_sandbox(
    c: &Container,
    hooks: &Option<Hooks>,
    state: &serde_json::Value,
) -> Result<(), OciError> {
    let input = state.to_string().into_bytes();
    for h in list(hooks, "startContainer") {
        run_one_in_sandbox(c, h, &input).map_err(|e| {
            OciError::new(format!("startContainer hook {}: {e}", h.path().display()))
        })?;
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())
}

fn run_one_in_sandbox(c: &Container, h: &Hook, input: &[u8]) -> Result<(), String> {
    let path = h.path().to_string_lossy().into_owned();
    let mut argv = h.args().clone().unwrap_or_default();
    if argv.is_empty() {
        argv.push(path.clone());
    }
    argv[0] = path;
    let process = ProcessArgs {
        argv,
        envp: h.env().clone().unwrap_or_default(),
        cwd: "/".into(),
        ..ProcessArgs::default()
    };
    let limit = timeout_of(h).map_err(|e| e.to_string())?;
    let sock = c
        .connect()
        .ok_or_else(|| format!("container {} is not running", c.id))?;
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let reply = proto::call(
        sock.as_fd(),
        &Request::Exec { process },
        &[in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
    );
    drop((in_r, out_w, err_w));
    let pid = match reply {
        Ok(Reply::Pid { pid }) => pid,
        Ok(Reply::Error { message }) => return Err(message),
        Ok(other) => return Err(format!("unexpected reply {other:?}")),
        Err(e) => return Err(e.to_string()),
    };
    let out = collect(Some(std::fs::File::from(out_r)));
    let err = collect(Some(std::fs::File::from(err_r)));
    {
        let mut w = std::fs::File::from(in_w);
        let _ = w.write_all(input);
    }
    if let Some(l) = limit {
        let _ = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(l.as_secs() as i64, 0),
        );
    }
    let status = match proto::call(sock.as_fd(), &Request::Wait { pid }, &[]) {
        Ok(Reply::Exited { status }) => status,
        Ok(Reply::Error { message }) => return Err(message),
        Ok(other) => return Err(format!("unexpected reply {other:?}")),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            let _ = c.ask(&Request::Signal {
                pid,
                signal: libc::SIGKILL,
                all: false,
            });
            return Err(format!(
                "timed out after {} seconds",
                limit.map_or(0, |l| l.as_secs())
            ));
        }
        Err(e) => return Err(e.to_string()),
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if status == 0 {
        return Ok(());
    }
    let mut msg = format!("exit status {status}");
    for (name, text) in [("stdout", out), ("stderr", err)] {
        let t = one_line(&text);
        if !t.is_empty() {
            msg.push_str(&format!(", {name}: {t}"));
        }
    }
    Err(msg)
}
