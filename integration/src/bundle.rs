//! An OCI bundle for the lifecycle tests: a `config.json` made by `runsc spec` and edited
//! as JSON, a root that is the host's `/` (served read-only by the Gofer), and a state
//! root of its own, all temporary. Dropping it force-deletes whatever containers a test
//! left (one that failed half-way), so that no sandbox outlives the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Platform, Run, path_str, run_command, runsc};

/// A temporary bundle and state root for one platform.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory (`config.json`, and whatever a test writes beside it).
    pub dir: tempfile::TempDir,
    /// The `--root` state directory.
    pub root: tempfile::TempDir,
    /// The platform every command of this bundle asks for.
    pub platform: Platform,
}

impl Bundle {
    /// A bundle running `args` with no terminal over a read-only `/`.
    pub fn new(platform: Platform, args: &[&str]) -> Bundle {
        let b = Bundle {
            dir: tempfile::tempdir().expect("bundle dir"),
            root: tempfile::tempdir().expect("state root"),
            platform,
        };
        b.runsc(&["spec", "--bundle", path_str(b.dir.path())])
            .assert_success("spec");
        b.edit(|c| {
            c["root"] = serde_json::json!({ "path": "/", "readonly": true });
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = serde_json::json!(args);
        });
        b
    }

    /// The bundle's `config.json`.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Rewrites `config.json` through `f`.
    pub fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.config()).expect("read config"))
                .expect("parse config");
        f(&mut c);
        std::fs::write(self.config(), serde_json::to_vec(&c).expect("json")).expect("write");
    }

    /// `runsc --root R --platform=P`, ready for a command's arguments.
    pub fn base(&self) -> Command {
        let mut cmd = Command::new(runsc());
        cmd.arg("--root")
            .arg(self.root.path())
            .arg(format!("--platform={}", self.platform.name()));
        cmd
    }

    /// One `runsc` command with stdin closed.
    pub fn runsc(&self, args: &[&str]) -> Run {
        let mut cmd = self.base();
        cmd.args(args);
        run_command(cmd, b"")
    }

    /// `run ID` (create, start, wait, delete) with stdin closed.
    pub fn run(&self, id: &str) -> Run {
        self.runsc(&["run", "--bundle", path_str(self.dir.path()), id])
    }

    /// The state directory of container `id`.
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.path().join(id)
    }

    /// `create`; the container's stdio (which the sandbox keeps) goes to files, so that
    /// nothing waits for its end of a pipe. Returns the run and the stdout file's path.
    pub fn create(&self, id: &str, pid_file: &Path) -> (Run, String) {
        let (run, out) = self.create_bundle(self.dir.path(), id, pid_file);
        (run, out.to_string_lossy().into_owned())
    }

    /// `create` of the bundle in directory `bundle` under this bundle's state root and
    /// platform (a pod's other containers); the container's stdout and stderr go to files
    /// in `bundle`. Returns the run and the stdout file's path.
    pub fn create_bundle(&self, bundle: &Path, id: &str, pid_file: &Path) -> (Run, PathBuf) {
        let out = bundle.join(format!("{id}.out"));
        let err = bundle.join(format!("{id}.err"));
        let mut cmd = self.base();
        cmd.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out"))
            .stderr(std::fs::File::create(&err).expect("err"));
        let status = cmd.status().expect("run create");
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        };
        (run, out)
    }

    /// `state ID`, parsed.
    pub fn state(&self, id: &str) -> serde_json::Value {
        let r = self.runsc(&["state", id]);
        r.assert_success("state");
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("state JSON: {e}: {r:#?}"))
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let Ok(dir) = std::fs::read_dir(self.root.path()) else {
            return;
        };
        for e in dir.flatten() {
            if let Some(id) = e.file_name().to_str() {
                let _ = self.base().args(["delete", "--force", id]).output();
            }
        }
    }
}

/// Makes this process a child subreaper (as containerd's shim is), once.
pub fn subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "PR_SET_CHILD_SUBREAPER");
    });
}

/// Waits for process `pid` (our child by adoption) and returns its shell-style status.
pub fn wait_pid(pid: i32) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out pointer; waitpid has no other memory effects.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::Interrupted,
            "waitpid {pid}: {e}"
        );
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// The pid a `--pid-file` holds.
pub fn read_pid(f: &Path) -> i32 {
    std::fs::read_to_string(f)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}
