//! containerd drives `runsc` as its OCI runtime through the runc v2 shim
//! (`ctr run --runc-binary <our runsc>`), as on a node. The test starts its own containerd
//! (no systemd here) on a socket in a temporary directory, with the CRI plugin off, and
//! stops it at the end. `scripts/test` installs Debian's `containerd` when it is absent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use integration::{Link, Platform, Run, fixture, have_tool, path_str, run_command, runsc};

/// A containerd of our own.
struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("ctd-")
            .tempdir_in("/tmp")
            .expect("containerd dir");
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("sock").display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("config");
        let log = std::fs::File::create(d.join("log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Containerd { child, dir };
        c.wait_ready();
        c
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// Waits (bounded) until containerd answers on its socket.
    fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let out = Command::new("ctr")
                .arg("--address")
                .arg(self.sock())
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run ctr");
            if out.success() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "containerd did not come up: {}",
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `ctr run --rm --runc-binary <runsc> [EXTRA...] --rootfs ROOTFS ID CMD...` (`--rootfs` is
    /// a switch: the root is the first positional argument).
    fn run(&self, rootfs: &Path, extra: &[&str], id: &str, cmd: &[&str]) -> Run {
        let mut c = Command::new("ctr");
        c.arg("--address")
            .arg(self.sock())
            .args(["run", "--rm", "--runc-binary"])
            .arg(runsc())
            .args(extra)
            .arg("--rootfs")
            .arg(rootfs)
            .arg(id)
            .args(cmd);
        run_command(c, b"")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory effects; the child is ours and not yet reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A root file system with the static fixtures the tests run.
fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("rootfs");
    std::fs::create_dir(dir.path().join("bin")).expect("bin");
    for f in ["hello", "ending", "catfile", "writefile"] {
        std::fs::copy(fixture(f, Link::Static), dir.path().join("bin").join(f)).expect("copy");
    }
    dir
}

fn available() -> bool {
    if let Some((what, reason)) = integration::missing(Platform::Systrap) {
        test_require::skip(what, reason);
        return false;
    }
    have_tool("/usr/bin/containerd")
        && have_tool("/usr/bin/ctr")
        && have_tool("/usr/bin/containerd-shim-runc-v2")
}

#[test]
fn ctr_runs_containers_with_runsc() {
    if !available() {
        return;
    }
    let ctd = Containerd::start();
    let root = rootfs();
    let r = ctd.run(root.path(), &[], "hello", &["/bin/hello"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello, world\n"), "{r:#?}");
    // The container's exit status comes out of the shim (it waits on the pid file's pid).
    let r = ctd.run(root.path(), &[], "exit3", &["/bin/ending", "exit", "3"]);
    assert_eq!(r.code, 3, "{r:#?}");
    let r = ctd.run(root.path(), &[], "killed", &["/bin/ending", "kill", "9"]);
    assert_eq!(r.code, 128 + libc::SIGKILL, "{r:#?}");

    // A read-only bind mount of a host directory, served by a Gofer of its own.
    let host = tempfile::tempdir().expect("host dir");
    let content = integration::unique_name("bind");
    std::fs::write(host.path().join("file"), &content).expect("write");
    let bind = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        path_str(host.path())
    );
    let r = ctd.run(
        root.path(),
        &["--mount", &bind],
        "bind-read",
        &["/bin/catfile", "/data/file"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, content.as_str()), "{r:#?}");
    let r = ctd.run(
        root.path(),
        &["--mount", &bind],
        "bind-ro",
        &["/bin/writefile", "/data/new"],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:#?}");
    assert!(!host.path().join("new").exists());

    // A read-write bind mount: the file written (and fsynced) in the container is on the
    // host, with what was written, once the container has gone.
    let rw = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        path_str(host.path())
    );
    let r = ctd.run(
        root.path(),
        &["--mount", &rw],
        "bind-rw",
        &["/bin/writefile", "/data/new"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "ok\n"), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).expect("written on the host"),
        "written in the sandbox\n"
    );
    // The host file's old content is still readable through it.
    let r = ctd.run(
        root.path(),
        &["--mount", &rw],
        "bind-rw-read",
        &["/bin/catfile", "/data/file"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, content.as_str()), "{r:#?}");
}
