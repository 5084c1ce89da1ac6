//! Harness for the end-to-end tests in `tests/`: finds (and builds) the `runsc` binary,
//! compiles the C fixtures in `fixtures/` with the system `cc`, and runs commands through
//! `runsc do` and natively, with a generous timeout so a broken sandbox fails a test
//! instead of hanging the suite.
//!
//! ```no_run
//! use integration::{Link, Platform, fixture, runsc_do};
//! let hello = fixture("hello", Link::Static);
//! let run = runsc_do(Platform::Ptrace, &[], &[hello.to_str().unwrap()]);
//! assert_eq!(run.stdout, "hello, world\n");
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;

use parking_lot::Mutex;
use std::time::Duration;

mod bundle;
pub use bundle::{Bundle, read_pid, subreaper, wait_pid};
mod containerd;
mod nginx;
pub use containerd::{Containerd, Image};
pub use nginx::{NGINX, NginxSite, nginx_command, nginx_site};

/// Longest a single sandboxed command may run before the test kills it and fails. Not a
/// performance assertion: only a guard against hangs.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// A platform to run the sandbox on: the library's own type, whose `name()` is the
/// `--platform` value.
pub use rsentry::Platform;

/// What is missing to run sandboxes on platform `p` here, if anything: the
/// [`test_require`] name of the requirement and a reason.
pub fn missing(p: Platform) -> Option<(&'static str, String)> {
    if !test_require::is_root() {
        return Some((
            "root",
            "runsc do needs root (namespaces, pivot_root)".into(),
        ));
    }
    match p {
        Platform::Kvm if !Path::new("/dev/kvm").exists() => {
            Some(("kvm", "kvm: /dev/kvm does not exist".into()))
        }
        _ => None,
    }
}

/// How a fixture is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `cc -static`.
    Static,
    /// Dynamically linked against the system libc.
    Dynamic,
}

/// What a finished command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// Exit code, or 128+N when killed by signal N.
    pub code: i32,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl Run {
    fn from_output(out: Output) -> Run {
        use std::os::unix::process::ExitStatusExt;
        let code = out
            .status
            .code()
            .or_else(|| out.status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        Run {
            code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with everything known unless the command exited with 0.
    pub fn assert_success(&self, what: &str) -> &Run {
        assert_eq!(self.code, 0, "{what} failed: {self:#?}");
        self
    }
}

/// The target directory and profile directory the test executable was built into
/// (`<target>/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("test executable has a directory");
    let profile = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps has a parent")
    } else {
        deps
    };
    profile.to_path_buf()
}

/// The newest modification time of the sources `runsc` is built from: every workspace
/// member's `Cargo.toml` and `src/` (except this crate), the root `Cargo.toml` and
/// `Cargo.lock`.
fn newest_source() -> Option<std::time::SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<std::time::SystemTime>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, newest);
            } else if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                *newest = (*newest).max(Some(t));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let mut newest = None;
    for f in ["Cargo.toml", "Cargo.lock"] {
        let t = std::fs::metadata(root.join(f))
            .and_then(|m| m.modified())
            .ok();
        newest = newest.max(t);
    }
    for e in std::fs::read_dir(root).ok()?.flatten() {
        let p = e.path();
        let member = p.join("Cargo.toml");
        if p.file_name().is_some_and(|n| n == "integration") || !member.exists() {
            continue;
        }
        newest = newest.max(std::fs::metadata(&member).and_then(|m| m.modified()).ok());
        walk(&p.join("src"), &mut newest);
    }
    newest
}

/// The `runsc` binary under test.
///
/// `$RUNSC` if set; otherwise `<target>/<profile>/runsc` next to this test executable. When
/// that binary is missing or older than any source it is built from, it is (re)built first
/// with `cargo build -p runsc-cli --bin runsc` in the same profile and target directory, so a
/// fresh clone and an edited tree both test the current code, and an up-to-date build
/// (`scripts/test` builds the workspace first) is used as it is.
pub fn runsc() -> &'static Path {
    static RUNSC: OnceLock<PathBuf> = OnceLock::new();
    RUNSC.get_or_init(|| {
        if let Some(p) = std::env::var_os("RUNSC") {
            return PathBuf::from(p);
        }
        built(Path::new("runsc"), &["-p", "runsc-cli", "--bin", "runsc"])
    })
}

/// The example program `name` of the `rsentry` library crate
/// (`<target>/<profile>/examples/NAME`), (re)built like [`runsc`] when missing or stale.
pub fn example(name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock();
    built(
        &Path::new("examples").join(name),
        &["-p", "rsentry", "--example", name],
    )
}

/// `<target>/<profile>/REL`, built first with `cargo build ARGS` in the same profile and
/// target directory when it is missing or older than any source it is built from.
fn built(rel: &Path, args: &[&str]) -> PathBuf {
    let profile = profile_dir();
    let bin = profile.join(rel);
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let newest = newest_source();
    let example_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rsentry/examples");
    let newest = std::fs::read_dir(example_src)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .fold(newest, |n, t| n.max(Some(t)));
    if built.is_some() && built >= newest {
        return bin;
    }
    let target = profile
        .parent()
        .expect("profile has a parent")
        .to_path_buf();
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--quiet"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", &target);
    match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cargo.arg("--release");
        }
        Some(other) => {
            cargo.args(["--profile", other]);
        }
        None => {}
    }
    let status = cargo.status().expect("run cargo");
    assert!(status.success(), "cargo build {args:?} failed");
    assert!(bin.exists(), "{} missing after build", bin.display());
    bin
}

/// Where compiled fixtures go: `<target>/<profile>/integration-fixtures`.
fn fixture_dir() -> PathBuf {
    let dir = profile_dir().join("integration-fixtures");
    std::fs::create_dir_all(&dir).expect("create fixture dir");
    dir
}

/// Compiles `fixtures/<name>.c` (once per process and whenever the source is newer) and
/// returns the executable's absolute path.
pub fn fixture(name: &str, link: Link) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.c"));
    let suffix = match link {
        Link::Static => "static",
        Link::Dynamic => "dynamic",
    };
    let out = fixture_dir().join(format!("{name}-{suffix}"));
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // The source, or a shared header of the fixtures (`sync.h`) if that is newer.
    let headers = std::fs::read_dir(src.parent().expect("fixtures dir"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "h"));
    let newest = headers.fold(mtime(&src), |n, h| n.max(mtime(&h)));
    if let (Some(bin), Some(source)) = (mtime(&out), newest)
        && bin >= source
    {
        return out;
    }
    // Compile to a unique name and rename, so concurrent test binaries never see a
    // half-written executable.
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let mut cc = Command::new("cc");
    cc.args(["-O1", "-Wall", "-o"]).arg(&tmp).arg(&src);
    if link == Link::Static {
        cc.arg("-static");
    }
    let res = cc.output().expect("run cc (install gcc and libc6-dev)");
    assert!(
        res.status.success(),
        "cc {name} failed:\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    std::fs::rename(&tmp, &out).expect("install fixture");
    out
}

/// Runs `cmd` with `stdin` fed to it and returns what it did, killing it after [`TIMEOUT`].
pub fn run_command(mut cmd: Command, stdin: &[u8]) -> Run {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    // Feeding and closing stdin from a thread: a sandbox that never reads must not block us.
    std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(out) => Run::from_output(out.expect("wait for command")),
        Err(_) => {
            // SAFETY: kill(2) has no memory effects; `pid` is our own child, not yet reaped
            // (the waiting thread is still blocked), so the number cannot have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {TIMEOUT:?}");
        }
    }
}

/// Runs `runsc` with exactly `args`.
pub fn runsc_raw(args: &[&str]) -> Run {
    let mut cmd = Command::new(runsc());
    cmd.args(args);
    run_command(cmd, b"")
}

/// Runs `runsc --platform=P do OPTS... -- CMD...`.
pub fn runsc_do(platform: Platform, opts: &[&str], cmd: &[&str]) -> Run {
    runsc_do_stdin(platform, opts, cmd, b"")
}

/// Like [`runsc_do`], with `stdin` fed to the command.
pub fn runsc_do_stdin(platform: Platform, opts: &[&str], cmd: &[&str], stdin: &[u8]) -> Run {
    let mut c = Command::new(runsc());
    c.arg(format!("--platform={}", platform.name()))
        .arg("do")
        .args(opts)
        .arg("--")
        .args(cmd);
    run_command(c, stdin)
}

/// Runs `cmd` natively, for comparison.
pub fn native(cmd: &[&str]) -> Run {
    let mut c = Command::new(cmd[0]);
    c.args(&cmd[1..]);
    run_command(c, b"")
}

/// A fresh temporary directory below `<target>/<profile>`, which the sandbox sees through
/// the Gofer. Removed on drop.
pub fn scratch_dir() -> tempfile::TempDir {
    let base = profile_dir().join("integration-scratch");
    std::fs::create_dir_all(&base).expect("create scratch base");
    tempfile::Builder::new()
        .prefix("scratch-")
        .tempdir_in(base)
        .expect("scratch dir")
}

/// A name no other test run uses, for files the tests create.
pub fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "rsentry-{tag}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A prepared root file system: `bin/` with static fixtures, `etc/passwd` with contents
/// unique to this root, and `link` -> `/etc/passwd` (absolute: must resolve inside it).
#[derive(Debug)]
pub struct PreparedRoot {
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// The contents of its `etc/passwd`.
    pub passwd: String,
}

impl PreparedRoot {
    /// Builds the root with the named static fixtures copied into `bin/`.
    pub fn new(fixtures: &[&str]) -> PreparedRoot {
        let dir = tempfile::Builder::new()
            .prefix("rsentry-root-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path();
        for d in ["bin", "etc", "tmp"] {
            std::fs::create_dir(root.join(d)).expect("mkdir");
        }
        for f in fixtures {
            std::fs::copy(fixture(f, Link::Static), root.join("bin").join(f))
                .expect("copy fixture");
        }
        let passwd = format!("sandbox-only passwd {}\n", unique_name("passwd"));
        std::fs::write(root.join("etc/passwd"), &passwd).expect("write passwd");
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).expect("symlink");
        PreparedRoot { dir, passwd }
    }

    /// The root's path on the host.
    pub fn path(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }
}

/// Asserts that `run` failed with `code` and exactly one line on stderr, `runsc: ...`
/// containing `needle`, and nothing on stdout.
pub fn assert_one_line_error(run: &Run, code: i32, needle: &str) {
    assert_eq!(run.code, code, "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr: {run:#?}");
    assert!(lines[0].starts_with("runsc: "), "{run:#?}");
    assert!(lines[0].contains(needle), "expected {needle:?} in {run:#?}");
    assert_eq!(run.stdout, "", "{run:#?}");
}

/// Instantiates each named `fn(Platform)` of the calling test file as a `#[test]` in one
/// module per platform (`ptrace::`, `kvm::`, `systrap::`; parametrised, not duplicated); each skips with
/// a printed reason where its platform cannot run, or fails when `RSENTRY_REQUIRE` names
/// what is missing ([`run_on`]). A new platform is one more `module Variant` pair here.
#[macro_export]
macro_rules! on_every_platform {
    ($($name:ident),* $(,)?) => {
        $crate::__on_platforms! { [$($name),*] ptrace Ptrace kvm Kvm systrap Systrap }
    };
}

/// Implementation of [`on_every_platform!`]: one module per `module Variant` pair.
#[doc(hidden)]
#[macro_export]
macro_rules! __on_platforms {
    ($names:tt) => {};
    ($names:tt $module:ident $variant:ident $($rest:tt)*) => {
        $crate::__on_one_platform! { $module $variant $names }
        $crate::__on_platforms! { $names $($rest)* }
    };
}

/// Implementation of [`on_every_platform!`]: the module of one platform.
#[doc(hidden)]
#[macro_export]
macro_rules! __on_one_platform {
    ($module:ident $variant:ident [$($name:ident),*]) => {
        mod $module {
            $( #[test] fn $name() { $crate::run_on($crate::Platform::$variant, super::$name) } )*
        }
    };
}

/// Runs `test` on platform `p`; where `p` cannot run here, prints why and returns, or
/// panics when `RSENTRY_REQUIRE` requires what is missing ([`test_require::skip`]).
pub fn run_on(p: Platform, test: fn(Platform)) {
    if let Some((what, reason)) = missing(p) {
        test_require::skip(what, reason);
        return;
    }
    test(p);
}

/// Skips (or, when `RSENTRY_REQUIRE` names `tools`, fails) the calling test unless the
/// host program `path` exists. Returns whether it exists.
pub fn have_tool(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    test_require::skip("tools", format!("{path} does not exist"));
    false
}

/// The address (without its prefix length) that a line of `ip -o addr` names after
/// `inet`: `10.213.0.2` of `2: eth0    inet 10.213.0.2/30 scope global eth0`.
pub fn inet_address(line: &str) -> Option<&str> {
    line.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
}

/// A path as the `&str` that command lines take (test paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
