//! CPython's own regression tests (Debian's `libpython3.11-testsuite`), the modules that
//! exercise the operating system, run case by case in the sandbox and natively with the
//! same interpreter (the host's `/usr/bin/python3.11`, which the sandbox sees through the
//! Gofer). A test fails on any case whose result in the sandbox differs from the native
//! one, apart from the cases listed with a reason in `cpython/expected.txt`.
//!
//! `cpython/runner.py` runs a module with unittest and prints one line per case. A module
//! gets a time budget; a case that hangs past it is recorded as `TIMEOUT` and the module
//! resumes after it in a new process. A case that differs is run once more alone on both
//! sides and counts only if it differs again, so a timing-sensitive case that lost a race
//! under load does not fail the suite; a case that differs twice does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use integration::{Platform, have_tool, path_str, runsc, scratch_dir};

integration::on_every_platform!(cpython_os_modules_match_native);

/// The interpreter whose test suite Debian's `libpython3.11-testsuite` ships.
const PYTHON: &str = "/usr/bin/python3.11";
/// A file of that test suite, to check it is installed.
const SUITE: &str = "/usr/lib/python3.11/test/test_os.py";

/// The modules (`module` or `module:Class,Class`), each with its time budget in the
/// sandbox (natively they need a fraction) and whether it runs on every platform or only on
/// ptrace: the OS-facing modules issue #13 names. To keep the suite's time bounded, the
/// slow, sleep- and process-heavy ones (poll, tempfile, signals, threads, subprocesses)
/// run on one platform only, and `test_subprocess` runs its POSIX classes but not the
/// `ProcessTestCase` pair (two hundred cases that each start interpreters and mostly
/// repeat the others). `test_epoll`, `test_selectors` and `test_socket` need `AF_INET`
/// sockets and join the list with networking.
const MODULES: &[(&str, u64, Where)] = &[
    ("test_os", 120, Where::Every),
    ("test_posix", 90, Where::Every),
    ("test_fcntl", 30, Where::Every),
    ("test_mmap", 30, Where::Every),
    ("test_select", 30, Where::Every),
    ("test_pty", 30, Where::Every),
    ("test_shutil", 60, Where::Every),
    ("test_resource", 30, Where::Every),
    ("test_time", 60, Where::Every),
    ("test_pipes", 30, Where::Every),
    ("test_poll", 60, Where::Ptrace),
    ("test_tempfile", 90, Where::Ptrace),
    ("test_signal", 180, Where::Ptrace),
    ("test_threading", 180, Where::Ptrace),
    (
        "test_subprocess:POSIXProcessTestCase,ContextManagerTests",
        180,
        Where::Ptrace,
    ),
];

/// Where a module runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Where {
    /// On every platform.
    Every,
    /// On ptrace only (the slow modules; ptrace is present wherever the suite runs).
    Ptrace,
}

/// The result of one case: ok, FAIL, ERROR, skipped, xfail, xpass or TIMEOUT.
type Results = BTreeMap<String, String>;

/// Where a module runs.
#[derive(Clone, Copy, Debug)]
enum Side {
    Native,
    Sandbox(Platform),
}

fn runner() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cpython/runner.py")
}

/// Runs the runner with `args` on `side` in a fresh scratch directory, killing it after
/// `budget`. Returns its stdout and stderr (all of them, also when killed) and whether it
/// was killed.
fn run_runner(side: Side, args: &[String], budget: Duration) -> (String, String, bool) {
    let dir = scratch_dir();
    let out_path = dir.path().join("stdout");
    let out = std::fs::File::create(&out_path).expect("create stdout file");
    let err_path = dir.path().join("stderr");
    let err = std::fs::File::create(&err_path).expect("create stderr file");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    let runner = runner();
    let mut py = vec![PYTHON, "-B", path_str(&runner)];
    py.extend(args.iter().map(String::as_str));
    let mut cmd = match side {
        Side::Native => {
            let mut c = Command::new(py[0]);
            c.args(&py[1..]);
            c
        }
        Side::Sandbox(p) => {
            let mut c = Command::new(runsc());
            c.arg(format!("--platform={}", p.name()))
                .arg("do")
                .arg("--")
                .args(&py);
            c
        }
    };
    cmd.current_dir(&work)
        .env("TMPDIR", &work)
        .env_remove("PYTHONPATH")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // Its own process group, so a timeout also ends what the tests spawned natively.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let start = Instant::now();
    let mut killed = false;
    loop {
        if child.try_wait().expect("wait for runner").is_some() {
            break;
        }
        if start.elapsed() > budget {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: kill(2) has no memory effects; the group is the one our child
            // leads, and the child is not reaped yet, so its id is not reused.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            killed = true;
            break;
        }
        // Polling for the end of a child with a deadline; this orders nothing.
        std::thread::sleep(Duration::from_millis(100));
    }
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    (read(&out_path), read(&err_path), killed)
}

/// Cases run on neither side: natively, as root, they would change the host itself.
/// `test_monotonic_settime` sets the host's real-time clock back an hour (and back again);
/// in the sandbox `clock_settime` is `EPERM` by design, so the case skips itself there.
const NEVER_RUN: &[&str] = &["test.test_time.TimeTestCase.test_monotonic_settime"];

/// Runs `module` on `side`, resuming after a case that hangs (up to a few times).
fn run_module(side: Side, module: &str, budget: Duration) -> Results {
    let mut results = Results::new();
    let mut skip: Vec<String> = NEVER_RUN.iter().map(|s| s.to_string()).collect();
    for _attempt in 0..4 {
        let mut args = Vec::new();
        for s in &skip {
            args.push("--skip".to_string());
            args.push(s.clone());
        }
        args.push(module.to_string());
        let (out, _, killed) = run_runner(side, &args, budget);
        let mut started = None;
        let mut done = false;
        for line in out.lines() {
            if let Some(id) = line.strip_prefix("@@start@@ ") {
                started = Some(id.to_string());
            } else if let Some(rest) = line.strip_prefix("@@case@@ ") {
                if let Some((id, res)) = rest.rsplit_once(' ') {
                    results.insert(id.to_string(), res.to_string());
                    if started.as_deref() == Some(id) {
                        started = None;
                    }
                }
            } else if line.starts_with("@@done@@ ") {
                done = true;
            }
        }
        if done {
            return results;
        }
        // The case that was running when the process ended hung or killed the runner.
        let what = if killed { "TIMEOUT" } else { "CRASH" };
        match started {
            Some(id) => {
                results.insert(id.clone(), what.to_string());
                skip.push(id);
            }
            None => {
                results.insert(format!("{module} (module)"), what.to_string());
                return results;
            }
        }
    }
    results
}

/// Runs one case alone on `side`: its result and the last lines of unittest's report of
/// it (the exception), for the failure message.
fn run_case(side: Side, module: &str, id: &str) -> (String, String) {
    let args = vec!["--only".to_string(), id.to_string(), module.to_string()];
    let (out, err, killed) = run_runner(side, &args, Duration::from_secs(120));
    let prefix = format!("@@case@@ {id} ");
    let result = out
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| if killed { "TIMEOUT" } else { "CRASH" }.to_string());
    // unittest's block for the case: after its header, up to the next separator.
    let block: Vec<&str> = err
        .lines()
        .skip_while(|l| !(l.starts_with("ERROR: ") || l.starts_with("FAIL: ")))
        .skip(2)
        .take_while(|l| !l.starts_with("=====") && !l.starts_with("-----"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let why = block[block.len().saturating_sub(2)..].join(" | ");
    (result, why)
}

/// The listed expected differences: case id -> reason.
fn expected() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("cpython/expected.txt");
    let text = std::fs::read_to_string(&path).expect("read cpython/expected.txt");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (id, reason) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        assert!(
            !reason.trim().is_empty(),
            "cpython/expected.txt: {id} has no reason"
        );
        out.insert(id.to_string(), reason.trim().to_string());
    }
    out
}

/// The native results of every module, computed once for all platforms.
fn native_results() -> &'static BTreeMap<&'static str, Results> {
    static NATIVE: OnceLock<BTreeMap<&'static str, Results>> = OnceLock::new();
    NATIVE.get_or_init(|| {
        MODULES
            .iter()
            .map(|(m, budget, _)| {
                (
                    *m,
                    run_module(Side::Native, m, Duration::from_secs(*budget)),
                )
            })
            .collect()
    })
}

fn cpython_os_modules_match_native(p: Platform) {
    if !have_tool(PYTHON) || !have_tool(SUITE) {
        return;
    }
    let expected = expected();
    let on_ptrace = p == Platform::Ptrace;
    // The sandbox first: the platforms' runs overlap each other, then the first to finish
    // computes the native results the other waits for.
    let sandbox: Vec<(&str, Results)> = MODULES
        .iter()
        .filter(|(_, _, place)| *place == Where::Every || on_ptrace)
        .map(|(m, budget, _)| {
            (
                *m,
                run_module(Side::Sandbox(p), m, Duration::from_secs(*budget)),
            )
        })
        .collect();
    let native = native_results();
    let mut differ = Vec::new();
    let mut listed = 0;
    let (mut total, mut same_ok) = (0, 0);
    for (module, sandbox) in &sandbox {
        let native = &native[module];
        let ids: std::collections::BTreeSet<&String> =
            native.keys().chain(sandbox.keys()).collect();
        for id in ids {
            total += 1;
            let n = native.get(id).map_or("missing", String::as_str);
            let s = sandbox.get(id).map_or("missing", String::as_str);
            if n == s {
                same_ok += usize::from(n == "ok");
                if expected.contains_key(id.as_str()) {
                    eprintln!("{id} is listed in cpython/expected.txt but no longer differs");
                }
                continue;
            }
            if expected.contains_key(id.as_str()) {
                listed += 1;
                continue;
            }
            // Once more, alone on both sides: only a repeated difference counts.
            let (n2, _) = run_case(Side::Native, module, id);
            let (s2, why) = run_case(Side::Sandbox(p), module, id);
            if n2 == s2 {
                eprintln!("{id}: native {n} sandbox {s} at first, {n2} alone on both sides");
                continue;
            }
            differ.push(format!(
                "{id}: native {n} ({n2} alone), sandbox {s} ({s2} alone): {why}"
            ));
        }
    }
    eprintln!(
        "cpython on {}: {total} cases, {same_ok} ok on both sides, {listed} listed differences, {} unlisted",
        p.name(),
        differ.len()
    );
    assert!(
        differ.is_empty(),
        "{} cases differ from native (fix them, or list them with a reason in \
         integration/cpython/expected.txt):\n{}",
        differ.len(),
        differ.join("\n")
    );
}
