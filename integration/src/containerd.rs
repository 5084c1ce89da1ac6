//! A containerd of the test's own: started on a socket in a temporary directory with a
//! configuration the test chooses (there is no systemd here), and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Run, run_command, runsc};

/// A running containerd, stopped (SIGTERM, then reaped) when dropped.
#[derive(Debug)]
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    /// Starts containerd with the CRI plugin off: what `ctr run` needs.
    pub fn start() -> Containerd {
        Self::start_with("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n")
    }

    /// Starts containerd with its CRI plugin on, as a Kubernetes node runs it: the runtime
    /// handler `runsc` is the runc v2 shim with our `runsc` as its binary (and the default
    /// handler), pod sandboxes start `sandbox_image`, images are unpacked by the `native`
    /// snapshotter, and the CNI directories are empty (pods use the node's network).
    pub fn start_cri(sandbox_image: &str) -> Containerd {
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        Self::start_with(&format!(
            "[{cri}]\n  sandbox_image = \"{sandbox_image}\"\n\
             [{cri}.containerd]\n  snapshotter = \"native\"\n  default_runtime_name = \"runsc\"\n\
             [{cri}.containerd.runtimes.runsc]\n  runtime_type = \"io.containerd.runc.v2\"\n\
             [{cri}.containerd.runtimes.runsc.options]\n  BinaryName = \"{runsc}\"\n\
             [{cri}.cni]\n  bin_dir = \"{{dir}}/cni\"\n  conf_dir = \"{{dir}}/cni\"\n",
            runsc = runsc().display(),
        ))
    }

    /// Starts containerd with `extra` appended to the base configuration (its own root,
    /// state directory and socket); `{dir}` in `extra` is the temporary directory.
    fn start_with(extra: &str) -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("ctd-")
            .tempdir_in("/tmp")
            .expect("containerd dir");
        let d = dir.path();
        std::fs::create_dir(d.join("cni")).expect("cni dir");
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n{extra}\
             [grpc]\n  address = \"{sock}\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("sock").display(),
            extra = extra.replace("{dir}", &d.display().to_string()),
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

    /// containerd's socket.
    pub fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Waits (bounded) until containerd answers on its socket.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
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
                Instant::now() < deadline,
                "containerd did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr --address SOCK ARGS...`.
    pub fn ctr(&self, args: &[&str]) -> Run {
        let mut c = Command::new("ctr");
        c.arg("--address").arg(self.sock()).args(args);
        run_command(c, b"")
    }

    /// `ctr run --rm --runc-binary <runsc> [EXTRA...] --rootfs ROOTFS ID CMD...` (`--rootfs` is
    /// a switch: the root is the first positional argument).
    pub fn run(&self, rootfs: &Path, extra: &[&str], id: &str, cmd: &[&str]) -> Run {
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
        // Shims outlive containerd by design; those this one started (and the sandboxes
        // under them) are ended too, so that a failed test leaves nothing running.
        let sock = self.sock().display().to_string();
        for shim in processes().filter(|(_, _, cmd)| {
            cmd.contains("containerd-shim") && cmd.contains(&format!("-address {sock}"))
        }) {
            kill_tree(shim.0);
        }
    }
}

/// Every host process: `(pid, ppid, command line with spaces)`.
fn processes() -> impl Iterator<Item = (i32, i32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat[stat.rfind(')')? + 1..]
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            Some((pid, ppid, cmd))
        })
}

/// SIGKILLs `pid` and its descendants (children first found, then killed top-down, so
/// none escapes by being reparented meanwhile: a killed parent's children are found
/// before it dies).
fn kill_tree(pid: i32) {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        let parent = all[i];
        all.extend(processes().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    for p in all {
        // SAFETY: kill(2) has no memory effects. The pids were read just now from /proc as
        // descendants of a shim of this test's containerd.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

/// An OCI image built with `umoci` from host files, written as an OCI layout tarball that
/// `ctr images import` takes (no registry is reachable here).
#[derive(Debug)]
pub struct Image<'a> {
    /// The tag (`org.opencontainers.image.ref.name`).
    pub tag: &'a str,
    /// Host files copied in: `(host path, path in the image)`.
    pub files: &'a [(&'a Path, &'a str)],
    /// Symbolic links made: `(path in the image, target)`.
    pub links: &'a [(&'a str, &'a str)],
    /// The image's entrypoint (empty: none).
    pub entrypoint: &'a [&'a str],
    /// The image's command (empty: none).
    pub cmd: &'a [&'a str],
}

impl Image<'_> {
    /// Builds the image in `work` and returns the tarball's path.
    pub fn build(&self, work: &Path) -> PathBuf {
        let layout = work.join(format!("layout-{}", self.tag));
        let bundle = work.join(format!("bundle-{}", self.tag));
        let image = format!("{}:{}", layout.display(), self.tag);
        umoci(&["init", "--layout", path(&layout)]);
        umoci(&["new", "--image", &image]);
        umoci(&["unpack", "--image", &image, path(&bundle)]);
        let rootfs = bundle.join("rootfs");
        for (src, dst) in self.files {
            let to = rootfs.join(dst.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().expect("a file in a directory")).expect("mkdir");
            std::fs::copy(src, &to).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
        for (at, target) in self.links {
            let at = rootfs.join(at.trim_start_matches('/'));
            std::fs::create_dir_all(at.parent().expect("a link in a directory")).expect("mkdir");
            std::os::unix::fs::symlink(target, &at).expect("symlink");
        }
        umoci(&["repack", "--image", &image, path(&bundle)]);
        let mut config = vec!["config".to_string(), "--image".into(), image.clone()];
        for a in self.entrypoint {
            config.push(format!("--config.entrypoint={a}"));
        }
        for a in self.cmd {
            config.push(format!("--config.cmd={a}"));
        }
        let config: Vec<&str> = config.iter().map(String::as_str).collect();
        umoci(&config);
        let tar = work.join(format!("{}.tar", self.tag));
        let out = Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .expect("run tar");
        assert!(out.status.success(), "tar: {out:?}");
        tar
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn umoci(args: &[&str]) {
    let out = Command::new("umoci")
        .args(args)
        .output()
        .expect("run umoci");
    assert!(
        out.status.success(),
        "umoci {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
