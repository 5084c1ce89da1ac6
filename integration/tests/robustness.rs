//! Robustness suites, on every platform:
//! - a random-system-call fuzzer in the sandbox (`fixtures/fuzz_syscalls.c`, as PID 1):
//!   100k calls with random numbers and arguments in forked batches, after which the
//!   kernel still works, a follow-up command runs in the same sandbox, and nothing the
//!   fuzzer wrote reached the host;
//! - a load suite: 64 concurrent sandboxes, each fork-heavy (`fixtures/load_forks.c`),
//!   all succeed, and no process, mount or file of theirs is left behind.
//!
//! Sizes are kept small for CI (2 cores). `RSENTRY_FUZZ_CALLS` and `RSENTRY_FUZZ_SEED`
//! change the fuzzer run (`integration/README.md` has the long run).

use std::collections::BTreeSet;
use std::process::Command;

use integration::{Link, Platform, fixture, path_str, run_command, runsc, scratch_dir};

integration::on_every_platform!(
    random_system_calls_leave_the_kernel_alive,
    concurrent_fork_heavy_sandboxes_leave_nothing_behind,
);

/// Calls the fuzzer makes by default.
const FUZZ_CALLS: u64 = 100_000;

/// Names below `/tmp` that the fuzzer's paths (`/tmp/fuzz-*`) could create.
fn fuzz_names_in_tmp() -> BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("fuzz-"))
        .collect()
}

fn random_system_calls_leave_the_kernel_alive(p: Platform) {
    let exe = fixture("fuzz_syscalls", Link::Static);
    let calls = std::env::var("RSENTRY_FUZZ_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FUZZ_CALLS)
        .to_string();
    let seed = std::env::var("RSENTRY_FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let dir = scratch_dir();
    let tmp_before = fuzz_names_in_tmp();
    // Relative paths land in the working directory: a host directory, overlaid.
    let mut cmd = Command::new(runsc());
    cmd.arg(format!("--platform={}", p.name()))
        .args(["do", "--cwd", path_str(dir.path()), "--"])
        .args([path_str(&exe), &seed, &calls, "1000", "--"])
        .args(["/bin/sh", "-c", "echo follow-up $$"]);
    let run = run_command(cmd, b"");
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(run.stdout.contains("fuzz: kernel alive\n"), "{run:#?}");
    // The follow-up replaced PID 1: the same sandbox still runs programs.
    assert!(run.stdout.ends_with("follow-up 1\n"), "{run:#?}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("scratch dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the fuzzer wrote into the host directory: {left:?}"
    );
    assert_eq!(
        fuzz_names_in_tmp(),
        tmp_before,
        "the fuzzer reached the host's /tmp"
    );
}

/// Sandboxes run at once by the load suite.
const SANDBOXES: usize = 64;

/// Host processes whose environment carries `marker`.
fn marked_processes(marker: &str) -> Vec<String> {
    let needle = marker.as_bytes();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle))
        })
        .map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            format!(
                "{}: {}",
                e.file_name().to_string_lossy(),
                String::from_utf8_lossy(&cmd).replace('\0', " ")
            )
        })
        .collect()
}

/// The host's mount table as this process sees it (mount points and sources).
fn mounts() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split(' ').skip(4).take(1).collect::<String>())
        .collect()
}

/// Entries of the directories where a sandbox could leave files: runsc's state
/// directory and shared memory. (`/tmp` is left out: other tests use it meanwhile.)
fn files() -> BTreeSet<String> {
    ["/run/rsentry", "/dev/shm"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(d)
                .into_iter()
                .flatten()
                .flatten()
                .map(move |e| format!("{d}/{}", e.file_name().to_string_lossy()))
        })
        .collect()
}

fn concurrent_fork_heavy_sandboxes_leave_nothing_behind(p: Platform) {
    let exe = fixture("load_forks", Link::Static);
    let marker = format!("RSENTRY_LOAD_MARK={}", integration::unique_name("load"));
    let (mounts_before, files_before) = (mounts(), files());
    let runs: Vec<_> = (0..SANDBOXES)
        .map(|_| {
            let exe = exe.clone();
            let marker = marker.clone();
            std::thread::spawn(move || {
                let mut cmd = Command::new(runsc());
                let (k, v) = marker.split_once('=').expect("marker");
                cmd.env(k, v).arg(format!("--platform={}", p.name())).args([
                    "do",
                    "--",
                    path_str(&exe),
                    "6",
                    "4",
                ]);
                run_command(cmd, b"")
            })
        })
        .collect();
    for (i, r) in runs.into_iter().enumerate() {
        let run = r.join().expect("sandbox thread");
        assert_eq!(run.code, 0, "sandbox {i}: {run:#?}");
        assert_eq!(run.stdout, "load: 31 processes\n", "sandbox {i}: {run:#?}");
    }
    // Every runsc has exited; its Gofers and Sentry must be gone too (they inherit the
    // marker in their environment; ptrace stubs, which unmap everything, cannot be read
    // that way, and die with their Sentry by PR_SET_PDEATHSIG and PTRACE_O_EXITKILL).
    let left = marked_processes(&marker);
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    let new_mounts: Vec<_> = mounts().difference(&mounts_before).cloned().collect();
    assert!(new_mounts.is_empty(), "mounts left behind: {new_mounts:?}");
    let new_files: Vec<_> = files().difference(&files_before).cloned().collect();
    assert!(new_files.is_empty(), "files left behind: {new_files:?}");
}
