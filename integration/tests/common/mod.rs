//! Helpers shared by the test files that look at a sandbox's host processes from outside
//! (`faults.rs`, `outer.rs`).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use integration::{Platform, TIMEOUT, runsc};

/// One host process, identified so that a reused pid is not mistaken for it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
    pub comm: String,
    pub ppid: i32,
    pub state: String,
}

/// Reads `/proc/PID/stat`: (comm, ppid, start time).
pub fn stat_of(pid: i32) -> Option<Proc> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    // After ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice num_threads itrealvalue starttime ...
    let fields: Vec<&str> = s[close + 2..].split(' ').collect();
    Some(Proc {
        pid,
        start: fields.get(19)?.parse().ok()?,
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        state: fields.first()?.to_string(),
    })
}

pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("read /proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The PID namespace of `pid` (the inode in `/proc/PID/ns/pid`'s target).
pub fn pid_ns(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// `root` and every process below it.
pub fn tree(root: i32) -> Vec<Proc> {
    let procs: Vec<Proc> = all_pids().into_iter().filter_map(stat_of).collect();
    let mut found: Vec<Proc> = procs.iter().filter(|p| p.pid == root).cloned().collect();
    let mut i = 0;
    while i < found.len() {
        let parent = found[i].pid;
        found.extend(procs.iter().filter(|p| p.ppid == parent).cloned());
        i += 1;
    }
    found
}

/// The value of field `key` in `/proc/PID/status` (tabs between values kept as spaces).
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A running `runsc do` with piped stdio.
pub struct Sandbox {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Sandbox {
    pub fn start(p: Platform, global: &[&str], script: &str) -> Sandbox {
        let mut cmd = Command::new(runsc());
        cmd.arg(format!("--platform={}", p.name()))
            .args(global)
            .args(["do", "--", "/bin/sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start runsc do");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Sandbox {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Reads one line of the application's output.
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).expect("read stdout");
        l
    }

    /// Sends a line to the application.
    pub fn send(&mut self, s: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(s.as_bytes()).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Waits for `runsc do` (killing it after [`TIMEOUT`]): status, rest of stdout,
    /// stderr. The application's stdin stays open until then, so a `read` keeps it waiting.
    pub fn finish(mut self) -> (i32, String, String) {
        use std::os::unix::process::ExitStatusExt;
        let stdin = self.stdin.take();
        let mut err = self.child.stderr.take().expect("stderr");
        let pid = self.pid();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut stdout = self.stdout;
        let mut child = self.child;
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = stdout.read_to_string(&mut out);
            let mut e = String::new();
            let _ = err.read_to_string(&mut e);
            let status = child.wait();
            drop(stdin);
            let _ = tx.send((status, out, e));
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok((status, out, err)) => {
                let status = status.expect("wait runsc do");
                let code = status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(-1);
                (code, out, err)
            }
            Err(_) => {
                // SAFETY: kill(2) has no memory effects; `pid` is our unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("runsc do did not finish within {TIMEOUT:?}");
            }
        }
    }
}
