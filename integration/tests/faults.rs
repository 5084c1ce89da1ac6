//! The fault suite: what a sandbox does when one of its processes panics, dies or is told
//! to stop, on every platform.
//!
//! - A panic in the Sentry or the Gofer (`--debug-panic`, a hidden switch for these tests)
//!   ends the sandbox at once: exit status 125, one `runsc: ... panic ...` line, no process
//!   left.
//! - The Gofer killed while the application works: the application sees `EIO`, the
//!   sandbox finishes, nothing hangs, nothing is left.
//! - The Sentry killed: nothing of the sandbox is left within a second.
//! - `SIGTERM` to `runsc do`: status 143, nothing left.
//!
//! "Nothing left" is checked from the host: while the sandbox runs, the test records every
//! process below `runsc do` (pid and start time) and the PID namespaces they live in; after
//! the end it polls `/proc` until none of those processes and no process in those
//! namespaces remains, or a deadline passes.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Proc, Sandbox, all_pids, pid_ns, stat_of, tree};
use integration::{Platform, on_every_platform};

/// What belongs to one sandbox: its processes and the PID namespaces it made.
#[derive(Debug)]
struct Footprint {
    procs: Vec<Proc>,
    namespaces: BTreeSet<String>,
    /// Open references to those namespaces: they keep each namespace's number from being
    /// reused by a sandbox of a concurrent test after this one's is gone.
    _pins: Vec<std::fs::File>,
}

impl Footprint {
    /// Records the processes below `runsc do` (`root`) and their PID namespaces other
    /// than ours.
    fn of(root: i32) -> Footprint {
        let procs = tree(root);
        let ours = pid_ns(std::process::id() as i32);
        let mut namespaces = BTreeSet::new();
        let mut pins = Vec::new();
        for p in &procs {
            let Some(ns) = pid_ns(p.pid).filter(|ns| Some(ns) != ours.as_ref()) else {
                continue;
            };
            // Pinned first, then read again: the link named the namespace we hold.
            let Ok(pin) = std::fs::File::open(format!("/proc/{}/ns/pid", p.pid)) else {
                continue;
            };
            if pid_ns(p.pid).as_ref() == Some(&ns) && namespaces.insert(ns) {
                pins.push(pin);
            }
        }
        Footprint {
            procs,
            namespaces,
            _pins: pins,
        }
    }

    /// The recorded process named `comm` whose parent is also named `comm` (the inner
    /// Gofer), or the first one named `comm`.
    fn find(&self, comm: &str, inner: bool) -> &Proc {
        self.procs
            .iter()
            .find(|p| {
                p.comm == comm
                    && (!inner || self.procs.iter().any(|q| q.pid == p.ppid && q.comm == comm))
            })
            .unwrap_or_else(|| panic!("no {comm} process in {self:#?}"))
    }

    /// What is still alive of it.
    fn survivors(&self) -> Vec<String> {
        let mut left = Vec::new();
        for p in &self.procs {
            if let Some(now) = stat_of(p.pid).filter(|now| now.start == p.start) {
                left.push(format!(
                    "{} ({}, state {}, parent {})",
                    p.pid, p.comm, now.state, now.ppid
                ));
            }
        }
        for pid in all_pids() {
            if let Some(ns) = pid_ns(pid)
                && self.namespaces.contains(&ns)
                && !left.iter().any(|l| l.starts_with(&format!("{pid} ")))
            {
                left.push(format!("{pid} in {ns}"));
            }
        }
        left
    }

    /// Polls until nothing of the sandbox is left; panics with the survivors after
    /// `deadline`.
    fn assert_gone_within(&self, deadline: Duration, what: &str) {
        let start = Instant::now();
        loop {
            let left = self.survivors();
            if left.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < deadline,
                "{what}: still alive after {deadline:?}: {left:?}"
            );
            std::thread::yield_now();
        }
    }
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// The lines of `stderr` that runsc itself wrote.
fn runsc_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("runsc:")).collect()
}

/// Starts a sandbox that prints `ready`, waits for a line on stdin, then runs `then`;
/// returns it with its footprint taken while it waits.
fn ready_sandbox(p: Platform, global: &[&str], then: &str) -> (Sandbox, Footprint) {
    let mut sb = Sandbox::start(p, global, &format!("echo ready; read x; {then}"));
    assert_eq!(sb.line(), "ready\n");
    let fp = Footprint::of(sb.pid());
    assert!(
        fp.procs.iter().any(|p| p.comm == "runsc-sandbox")
            && fp.procs.iter().any(|p| p.comm == "runsc-gofer")
            && !fp.namespaces.is_empty(),
        "unexpected process tree: {fp:#?}"
    );
    (sb, fp)
}

/// Everything of a finished sandbox must be gone at once (its `runsc do` has exited):
/// the deadline only absorbs the kernel's asynchronous teardown.
const AFTER_EXIT: Duration = Duration::from_secs(1);

fn sentry_panic_ends_the_sandbox(p: Platform) {
    let (mut sb, fp) = ready_sandbox(p, &["--debug-panic=sentry"], "sync; echo after");
    sb.send("go\n");
    let (code, out, err) = sb.finish();
    assert_eq!(code, 125, "status; stdout {out:?} stderr {err:?}");
    assert!(!out.contains("after"), "the application went on: {out:?}");
    let lines = runsc_lines(&err);
    assert_eq!(lines.len(), 1, "one line from runsc: {err:?}");
    assert!(
        lines[0].starts_with("runsc: sandbox: panic in thread ")
            && lines[0].contains("system call 162"),
        "{err:?}"
    );
    fp.assert_gone_within(AFTER_EXIT, "after a Sentry panic");
}

fn gofer_panic_ends_the_sandbox(p: Platform) {
    let (mut sb, fp) = ready_sandbox(
        p,
        &["--debug-panic=gofer"],
        "cat /rsentry-debug-panic; exit 3",
    );
    sb.send("go\n");
    // The application may see EIO and exit before runsc do sees the Gofer's status: the
    // status must be 125 either way.
    let (code, out, err) = sb.finish();
    assert_eq!(code, 125, "status; stdout {out:?} stderr {err:?}");
    let lines = runsc_lines(&err);
    assert_eq!(lines.len(), 1, "one line from runsc: {err:?}");
    assert!(
        lines[0].starts_with("runsc: gofer: panic in thread "),
        "{err:?}"
    );
    fp.assert_gone_within(AFTER_EXIT, "after a Gofer panic");
}

fn gofer_killed_gives_eio(p: Platform) {
    let dir = integration::scratch_dir();
    let file = dir.path().join("data");
    std::fs::write(&file, "payload\n").expect("write data");
    let file = file.to_str().expect("utf-8");
    // Shell built-ins only (an exec would need the Gofer too): the application opens and
    // reads the file over and over until that fails.
    let script = format!(
        "echo ready; n=0; while read l < {file}; do n=$((n+1)); done; echo \"ended after $n\""
    );
    let mut sb = Sandbox::start(p, &[], &script);
    assert_eq!(sb.line(), "ready\n");
    let fp = Footprint::of(sb.pid());
    let gofer = fp.find("runsc-gofer", true);
    kill(gofer.pid, libc::SIGKILL);
    let (code, out, err) = sb.finish();
    assert_eq!(code, 0, "the shell's status; stdout {out:?} stderr {err:?}");
    assert!(out.starts_with("ended after "), "{out:?} {err:?}");
    assert!(err.contains("Input/output error"), "{err:?}");
    assert!(runsc_lines(&err).is_empty(), "{err:?}");
    fp.assert_gone_within(AFTER_EXIT, "after the Gofer was killed");
}

fn sentry_killed_leaves_nothing(p: Platform) {
    let (sb, fp) = ready_sandbox(p, &[], "echo never");
    let sentry = fp.find("runsc-sandbox", false).pid;
    let killed = Instant::now();
    kill(sentry, libc::SIGKILL);
    // runsc do is our child: reaping it is our business, not the sandbox's.
    let (code, out, _) = sb.finish();
    assert_eq!(code, 128 + libc::SIGKILL, "{out:?}");
    // Within a second of the kill, as issue #10 asks; not a performance figure.
    let left = Duration::from_secs(1).saturating_sub(killed.elapsed());
    fp.assert_gone_within(left, "within a second of killing the Sentry");
}

fn sigterm_to_runsc_gives_143(p: Platform) {
    let (sb, fp) = ready_sandbox(p, &[], "echo never");
    kill(sb.pid(), libc::SIGTERM);
    let (code, out, err) = sb.finish();
    assert_eq!(code, 143, "stdout {out:?} stderr {err:?}");
    assert!(!out.contains("never"), "{out:?}");
    fp.assert_gone_within(AFTER_EXIT, "after SIGTERM");
}

on_every_platform!(
    sentry_panic_ends_the_sandbox,
    gofer_panic_ends_the_sandbox,
    gofer_killed_gives_eio,
    sentry_killed_leaves_nothing,
    sigterm_to_runsc_gives_143,
);
