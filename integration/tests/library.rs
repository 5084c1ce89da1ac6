//! The sandbox as a library (`rsentry`'s example program) and least-privilege system-call
//! profiles (`runsc do --record-profile` / `--profile`).

use std::process::Command;

use integration::{
    Platform, assert_one_line_error, example, on_every_platform, path_str, run_command, runsc_do,
    runsc_raw, scratch_dir,
};

/// The example runs a Python one-liner over a read-only bind mount, then `cat` through
/// pipes, on the platform it is given; no `runsc` binary is involved.
fn example_runs(p: Platform) {
    let mut cmd = Command::new(example("sandboxed"));
    cmd.arg(p.name()).env_remove("RUNSC");
    let run = run_command(cmd, b"");
    assert_eq!(run.code, 0, "{run:#?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "hello from the host",
            "1",
            "echoed by cat in the sandbox",
            "cat: exit status 0"
        ],
        "{run:#?}"
    );
}

/// Python that makes one `socket(AF_INET, SOCK_DGRAM)` call beyond what `print(1)` needs
/// (the import of the built-in extension must not search the current directory, which
/// `print(1)` never looks at) and prints its errno.
const SOCKET_PY: &str = "import sys\n\
sys.path[:] = [p for p in sys.path if p]\n\
import _socket\n\
try:\n    _socket.socket(2, 2)\n    print('socket: created')\n\
except OSError as e:\n    print('socket:', e.errno)\n";

/// Debian's interpreter by absolute path: `python3` on a CI machine's `PATH` may be a
/// pyenv shim (a bash script that runs more programs, sockets included), and the profile
/// must describe python3 itself.
const PYTHON: &str = "/usr/bin/python3";

fn record_python(p: Platform, dir: &std::path::Path) -> String {
    let profile = dir.join("python.json");
    let profile = path_str(&profile).to_string();
    let run = runsc_do(
        p,
        &["--record-profile", &profile],
        &[PYTHON, "-c", "print(1)"],
    );
    assert_eq!((run.code, run.stdout.as_str()), (0, "1\n"), "{run:#?}");
    profile
}

/// A profile recorded from `python3 -c 'print(1)'` lets the same command run, and makes a
/// socket call fail with EPERM and one warning naming it.
fn recorded_profile_allows_the_run_and_refuses_a_socket(p: Platform) {
    let dir = scratch_dir();
    let profile = record_python(p, dir.path());
    let text = std::fs::read_to_string(&profile).expect("profile written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("profile is JSON");
    let names: Vec<&str> = json["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    for n in ["write", "exit_group", "mmap"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    // Without HOME, glibc's getpwuid may try nscd over an AF_UNIX socket; print(1) never
    // makes an AF_INET one, which is what the socket program below asks for.
    let inet_sockets: Vec<&serde_json::Value> = json["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|e| e["name"] == "socket")
        .flat_map(|e| e["args"].as_array().into_iter().flatten())
        .filter(|a| a["family"] != "AF_UNIX")
        .collect();
    assert!(inet_sockets.is_empty(), "{text}");
    let run = runsc_do(p, &["--profile", &profile], &[PYTHON, "-c", "print(1)"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "1\n"), "{run:#?}");
    assert!(!run.stderr.contains("profile:"), "{run:#?}");
    let run = runsc_do(p, &["--profile", &profile], &[PYTHON, "-c", SOCKET_PY]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout, "socket: 1\n", "{run:#?}");
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("profile:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{run:#?}");
    assert!(warnings[0].contains("socket(0x2, "), "{run:#?}");
    // Without the profile the same call succeeds.
    let run = runsc_do(p, &[], &[PYTHON, "-c", SOCKET_PY]);
    assert_eq!(run.stdout, "socket: created\n", "{run:#?}");
    // Recording the socket program into the same file merges: now both run.
    let run = runsc_do(
        p,
        &["--record-profile", &profile],
        &[PYTHON, "-c", SOCKET_PY],
    );
    assert_eq!(run.code, 0, "{run:#?}");
    let run = runsc_do(p, &["--profile", &profile], &[PYTHON, "-c", SOCKET_PY]);
    assert_eq!(run.stdout, "socket: created\n", "{run:#?}");
    let run = runsc_do(p, &["--profile", &profile], &[PYTHON, "-c", "print(1)"]);
    assert_eq!(run.stdout, "1\n", "{run:#?}");
}

/// With `"default_action": "kill"`, the first call outside the profile kills the process
/// with SIGSYS (status 128+31), before it can print.
fn kill_profile_kills_on_the_first_call_outside(p: Platform) {
    let dir = scratch_dir();
    let profile = record_python(p, dir.path());
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("read")).expect("json");
    json["default_action"] = "kill".into();
    json.as_object_mut().expect("object").remove("errno");
    std::fs::write(&profile, json.to_string()).expect("write");
    let run = runsc_do(p, &["--profile", &profile], &[PYTHON, "-c", "print(1)"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "1\n"), "{run:#?}");
    let run = runsc_do(p, &["--profile", &profile], &[PYTHON, "-c", SOCKET_PY]);
    assert_eq!(run.code, 128 + 31, "{run:#?}");
    assert_eq!(run.stdout, "", "{run:#?}");
    assert!(run.stderr.contains("socket(0x2, "), "{run:#?}");
    assert!(run.stderr.contains("kill process"), "{run:#?}");
}

on_every_platform!(
    example_runs,
    recorded_profile_allows_the_run_and_refuses_a_socket,
    kill_profile_kills_on_the_first_call_outside,
);

#[test]
fn malformed_profiles_are_refused_at_start() {
    let dir = scratch_dir();
    for (i, (text, needle)) in [
        ("{", "bad profile"),
        (r#"{"version":1,"syscalls":[{"name":"nosuchcall"}]}"#, "nosuchcall"),
        (
            r#"{"version":1,"syscalls":[{"name":"socket","args":[{"family":"AF_NOPE","type":1}]}]}"#,
            "AF_NOPE",
        ),
        (r#"{"version":1,"default_action":"maybe","syscalls":[]}"#, "maybe"),
        (r#"{"version":7,"syscalls":[]}"#, "version"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&path, text).expect("write");
        let run = runsc_raw(&["do", "--profile", path_str(&path), "--", "/bin/true"]);
        assert_one_line_error(&run, 125, needle);
    }
    let run = runsc_raw(&[
        "do",
        "--profile",
        "/no/such/profile.json",
        "--",
        "/bin/true",
    ]);
    assert_one_line_error(&run, 125, "/no/such/profile.json");
}
