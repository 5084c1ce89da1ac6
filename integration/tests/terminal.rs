//! Terminals: a container with `process.terminal` and an `exec --tty`, whose
//! pseudo-terminal master arrives over `--console-socket` (this test plays containerd's
//! shim); `runsc do` on a terminal, as from an interactive shell; and the job-control
//! ioctls (`TIOCSCTTY`, `TIOCGSID`, `tcsetpgrp`, `TIOCNOTTY`), compared with Linux.
//! Keys typed into a terminal (`^C`) become `SIGINT` for its foreground group inside.

use std::io::{IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration::{
    Bundle, Link, Platform, fixture, have_tool, native, on_every_platform, path_str, runsc,
    runsc_do,
};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

on_every_platform!(
    job_control_matches_linux,
    runsc_do_on_a_terminal_gets_its_keys,
    container_terminal_over_the_console_socket,
    exec_terminal_over_the_console_socket,
    script_runs_a_command_on_a_pseudo_terminal,
    python_pty_fork_gets_keys_and_lines,
);

/// Longest wait for expected output: a guard against hangs, not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(60);

/// The master side of a terminal and what has been read from it.
struct Master {
    fd: OwnedFd,
    seen: String,
}

impl Master {
    fn new(fd: OwnedFd) -> Master {
        Master {
            fd,
            seen: String::new(),
        }
    }

    /// Reads until `want` has been seen (panics after [`PATIENCE`]) and returns all seen.
    fn expect(&mut self, want: &str) -> &str {
        let deadline = Instant::now() + PATIENCE;
        while !self.seen.contains(want) {
            assert!(self.read_some(deadline), "no {want:?} in {:?}", self.seen);
        }
        &self.seen
    }

    /// Reads everything until the last replica closes (EOF or EIO on the master).
    fn read_to_end(&mut self) -> &str {
        let deadline = Instant::now() + PATIENCE;
        while self.read_some(deadline) {}
        &self.seen
    }

    /// One read, waiting at most until `deadline`; false at end of file.
    fn read_some(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        let n = poll(&mut fds, PollTimeout::from(ms)).expect("poll");
        assert!(
            n > 0 || Instant::now() < deadline,
            "timed out: {:?}",
            self.seen
        );
        if n == 0 {
            return true;
        }
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&self.fd, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => false,
            Ok(k) => {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..k]));
                true
            }
            Err(nix::errno::Errno::EINTR) => true,
            Err(e) => panic!("read the terminal: {e}"),
        }
    }

    fn type_keys(&self, keys: &[u8]) {
        std::fs::File::from(self.fd.try_clone().expect("dup"))
            .write_all(keys)
            .expect("type");
    }
}

/// A child killed (and reaped) when the test ends, failed or not.
struct Killed(Child);

impl Killed {
    fn wait_ok(&mut self) -> bool {
        self.0.wait().expect("wait").success()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` with a new terminal as stdio, in a session whose controlling terminal it
/// is (as a login shell runs a command).
fn spawn_on_terminal(mut cmd: Command) -> (Killed, Master) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    // Close-on-exec: no other test's child may hold this terminal open.
    for fd in [&pty.master, &pty.slave] {
        nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .expect("FD_CLOEXEC");
    }
    let replica = pty.slave;
    cmd.stdin(replica.try_clone().expect("dup"))
        .stdout(replica.try_clone().expect("dup"))
        .stderr(replica.try_clone().expect("dup"));
    // SAFETY: setsid and an integer ioctl are async-signal-safe and touch no memory of
    // the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = Killed(cmd.spawn().expect("spawn"));
    drop(replica);
    (child, Master::new(pty.master))
}

/// The job-control fixture prints the same parts in the sandbox as natively.
fn job_control_matches_linux(p: Platform) {
    let exe = fixture("conf_tty", Link::Static);
    let parts = "ok controlling terminal\r\nok errors\r\nok foreground group\r\n\
                 ok background read and write\r\nok background change\r\nok hangup\r\n\
                 ok no controlling terminal\r\n";
    let (mut child, mut m) = spawn_on_terminal(Command::new(&exe));
    assert_eq!(m.read_to_end(), parts, "natively");
    assert!(child.wait_ok());
    let mut cmd = Command::new(runsc());
    cmd.arg(format!("--platform={}", p.name()))
        .args(["do", "--"])
        .arg(&exe);
    let (mut child, mut m) = spawn_on_terminal(cmd);
    assert_eq!(m.read_to_end(), parts, "in the sandbox");
    assert!(child.wait_ok());
}

/// A shell script that reports its terminal, traps SIGINT, and reads two lines: `^C`
/// interrupts the first read (as on Linux, `read` then returns empty), the second gets
/// what is typed.
///
/// "ready" comes from a background watcher once the shell is asleep (`S` in /proc) in
/// its `read`, so that the `^C` typed then interrupts the read rather than arriving
/// before it (which would run the trap and leave the read waiting for a line).
const TRAP_AND_READ: &str = "tty; trap 'echo got-INT' INT; \
     (while [ \"$(cut -d' ' -f3 /proc/$$/stat)\" != S ]; do :; done; echo ready) & \
     read x; echo x=$x; read y; echo y=$y";

/// `runsc do` started from an interactive shell: the program sees the terminal as
/// `/dev/pts/0`, and `^C` interrupts it (not the sandbox).
fn runsc_do_on_a_terminal_gets_its_keys(p: Platform) {
    let mut cmd = Command::new(runsc());
    cmd.arg(format!("--platform={}", p.name()))
        .args(["do", "--", "/bin/sh", "-c", TRAP_AND_READ]);
    let (mut child, mut m) = spawn_on_terminal(cmd);
    m.expect("ready");
    m.type_keys(b"\x03");
    m.expect("got-INT\r\nx=\r\n");
    m.type_keys(b"hello\n");
    let out = m.read_to_end().to_string();
    assert!(child.wait_ok(), "{out}");
    assert!(out.starts_with("/dev/pts/0\r\n"), "{out}");
    assert!(out.contains("y=hello"), "{out}");
}

/// Accepts one connection on the console socket and returns the descriptor it carries.
fn receive_master(listener: &UnixListener) -> OwnedFd {
    let (conn, _) = listener.accept().expect("accept on the console socket");
    let mut buf = [0u8; 256];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg");
    let fd = msg
        .cmsgs()
        .expect("cmsgs")
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .expect("a descriptor on the console socket");
    // SAFETY: recvmsg just installed this descriptor for us; nothing else owns it.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

/// `create --console-socket` for a bundle with a terminal; returns the terminal.
fn create_with_terminal(b: &Bundle, id: &str, listener: &UnixListener, sock: &Path) -> Master {
    let mut create = b.base();
    create
        .args([
            "create",
            "--bundle",
            path_str(b.dir.path()),
            "--console-socket",
        ])
        .arg(sock)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = create.spawn().expect("create");
    let master = receive_master(listener);
    let out = child.wait_with_output().expect("create");
    assert!(out.status.success(), "{out:?}");
    Master::new(master)
}

/// A container with `terminal: true` and a `consoleSize`: its stdio is a terminal of that
/// size, `/dev/pts/0`; `^C` typed into the master interrupts the foreground group.
fn container_terminal_over_the_console_socket(p: Platform) {
    let script = format!("stty size; {TRAP_AND_READ}");
    let b = Bundle::new(p, &["/bin/sh", "-c", &script]);
    b.edit(|c| {
        c["process"]["terminal"] = true.into();
        c["process"]["consoleSize"] = serde_json::json!({ "height": 33, "width": 101 });
    });
    let sock = b.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let mut m = create_with_terminal(&b, "t1", &listener, &sock);
    b.runsc(&["start", "t1"]).assert_success("start");
    m.expect("ready");
    m.type_keys(b"\x03");
    m.expect("got-INT\r\nx=\r\n");
    m.type_keys(b"hello\n");
    let out = m.expect("y=hello").to_string();
    assert!(out.starts_with("33 101\r\n/dev/pts/0\r\n"), "{out}");
    let w = b.runsc(&["wait", "t1"]);
    w.assert_success("wait");
    b.runsc(&["delete", "t1"]).assert_success("delete");
}

/// `exec --tty --detach --console-socket`, as containerd's shim runs `kubectl exec -it`:
/// the process gets a terminal of its own (`/dev/pts/1`) in a session of its own, and
/// `^C` typed into that terminal reaches it through the waiter.
fn exec_terminal_over_the_console_socket(p: Platform) {
    let b = Bundle::new(p, &["/bin/sh", "-c", "echo up; read x"]);
    b.edit(|c| c["process"]["terminal"] = true.into());
    let sock = b.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let mut init = create_with_terminal(&b, "t2", &listener, &sock);
    b.runsc(&["start", "t2"]).assert_success("start");
    init.expect("up");
    let exec_sock = b.dir.path().join("exec.sock");
    let exec_listener = UnixListener::bind(&exec_sock).expect("bind");
    let pid_file = b.dir.path().join("exec.pid");
    let mut exec = b.base();
    exec.args(["exec", "--detach", "--tty", "--pid-file"])
        .arg(&pid_file)
        .arg("--console-socket")
        .arg(&exec_sock)
        .args(["t2", "/bin/sh", "-c", TRAP_AND_READ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = exec.spawn().expect("exec");
    let mut m = Master::new(receive_master(&exec_listener));
    let out = child.wait_with_output().expect("exec");
    assert!(out.status.success(), "{out:?}");
    m.expect("ready");
    m.type_keys(b"\x03");
    m.expect("got-INT\r\nx=\r\n");
    m.type_keys(b"bye\n");
    let out = m.expect("y=bye").to_string();
    assert!(out.starts_with("/dev/pts/1\r\n"), "{out}");
    init.type_keys(b"\n");
    b.runsc(&["wait", "t2"]).assert_success("wait");
    b.runsc(&["delete", "t2"]).assert_success("delete");
}

/// util-linux's `script` makes a pseudo-terminal inside the sandbox (`/dev/ptmx`) and runs
/// a shell on it: `stty` sets and reads its window size, `tty` names it.
fn script_runs_a_command_on_a_pseudo_terminal(p: Platform) {
    if !have_tool("/usr/bin/script") {
        return;
    }
    let cmd = [
        "/usr/bin/script",
        "-qc",
        "stty rows 30 cols 100; stty size; tty",
        "/dev/null",
    ];
    let run = runsc_do(p, &[], &cmd);
    run.assert_success("script");
    assert!(run.stdout.starts_with("30 100\r\n/dev/pts/"), "{run:#?}");
    assert!(run.stdout.ends_with("\r\n"), "{run:#?}");
}

/// Python's `pty.fork`: the child leads a session on the replica; `^C` typed into the
/// master is `SIGINT` for it (echoed as `^C`, the typed input flushed), then a line is
/// read in canonical mode with its echo; the master reads `EIO` once the child is gone.
/// The same as natively.
const PTY_FORK: &str = r#"import os, pty, signal, sys
pid, fd = pty.fork()
if pid == 0:
    got = []
    signal.signal(signal.SIGINT, lambda s, f: got.append(s))
    print("ready", os.isatty(0), os.getsid(0) == os.getpid(), flush=True)
    line = sys.stdin.readline()
    print("line=" + line.strip(), "got", got, flush=True)
    os._exit(7)
seen = b""
def until(want):
    global seen
    while want not in seen:
        d = os.read(fd, 1024)
        if not d:
            break
        seen += d
until(b"ready True True\r\n")
os.write(fd, b"\x03")
until(b"^C")
os.write(fd, b"hello\n")
until(b"got")
try:
    until(b"never")
except OSError as e:
    print("master read after the child:", e.errno)
_, status = os.waitpid(pid, 0)
print(repr(seen.decode()), os.waitstatus_to_exitcode(status))
m, s = os.openpty()
print(os.ttyname(s).startswith("/dev/pts/"), os.isatty(m))
"#;

fn python_pty_fork_gets_keys_and_lines(p: Platform) {
    if !have_tool("/usr/bin/python3") {
        return;
    }
    let want = "master read after the child: 5\n\
                'ready True True\\r\\n^Chello\\r\\nline=hello got [2]\\r\\n' 7\n\
                True True\n";
    let run = native(&["python3", "-c", PTY_FORK]);
    run.assert_success("natively");
    assert_eq!(run.stdout, want, "natively: {run:#?}");
    let run = runsc_do(p, &[], &["python3", "-c", PTY_FORK]);
    run.assert_success("in the sandbox");
    assert_eq!(run.stdout, want, "in the sandbox: {run:#?}");
}
