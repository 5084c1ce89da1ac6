//! The sandbox's processes seen from the host: how `runsc` names their logs, which user
//! they run as, and what arguments reach the application.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{Sandbox, status_field, tree};

use integration::{Platform, on_every_platform, path_str, run_command, runsc};

/// Two sandboxes run at the same time with one `--debug-log` directory: each gets its own
/// three logs (`runsc.ID.do.log`, `.gofer.log`, `.boot.log`), and each Sentry log speaks of
/// its own program only.
fn debug_logs_of_concurrent_sandboxes_do_not_mix(p: Platform) {
    let dir = integration::scratch_dir();
    let logs = dir.path().join("logs");
    let markers = ["first-sandbox-marker", "second-sandbox-marker"];
    let runs: Vec<_> = markers
        .iter()
        .map(|m| {
            let mut cmd = Command::new(runsc());
            cmd.arg(format!("--platform={}", p.name()))
                .args(["--debug-log", path_str(&logs)])
                .args(["do", "--", "/bin/echo", m]);
            std::thread::spawn(move || run_command(cmd, b""))
        })
        .collect();
    for r in runs {
        r.join().expect("runner thread").assert_success("runsc do");
    }
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in std::fs::read_dir(&logs).expect("read log dir") {
        let name = e.expect("entry").file_name().into_string().expect("utf-8");
        let parts: Vec<&str> = name.split('.').collect();
        assert!(
            parts.len() == 4 && parts[0] == "runsc" && parts[3] == "log",
            "{name}"
        );
        by_id
            .entry(parts[1].to_string())
            .or_default()
            .push(parts[2].to_string());
    }
    assert_eq!(by_id.len(), 2, "two sandboxes, two ids: {by_id:?}");
    let mut seen = Vec::new();
    for (id, mut kinds) in by_id {
        kinds.sort();
        assert_eq!(kinds, ["boot", "do", "gofer"], "sandbox {id}");
        let boot = std::fs::read_to_string(logs.join(format!("runsc.{id}.boot.log")))
            .expect("read boot log");
        let mine: Vec<&str> = markers
            .iter()
            .copied()
            .filter(|m| boot.contains(m))
            .collect();
        assert_eq!(mine.len(), 1, "sandbox {id} logs one program: {boot}");
        seen.push(mine[0]);
    }
    seen.sort();
    assert_eq!(seen, markers);
}

/// Two containers with one `--debug-log` directory: each container's processes (the
/// supervisor, the Gofer, the sandbox) log to files named by the container (not
/// `runsc.1.boot.log` for both, as the in-namespace pid gave), and each Sentry log speaks
/// of its own program only.
fn debug_logs_of_concurrent_containers_do_not_mix(p: Platform) {
    let dir = integration::scratch_dir();
    let logs = dir.path().join("logs");
    // Each container runs its own program, whose loading its Sentry logs.
    let programs = ["/usr/bin/echo", "/usr/bin/true"];
    let markers = programs.map(|p| format!("path={p} "));
    let runs: Vec<_> = programs
        .iter()
        .enumerate()
        .map(|(i, prog)| {
            let b = integration::Bundle::new(p, &[prog]);
            let logs = logs.clone();
            std::thread::spawn(move || {
                let mut cmd = b.base();
                cmd.args(["--debug-log", path_str(&logs)])
                    .args(["run", "--bundle", path_str(b.dir.path())])
                    .arg(format!("c{i}"));
                run_command(cmd, b"")
            })
        })
        .collect();
    for r in runs {
        r.join().expect("runner thread").assert_success("runsc run");
    }
    for (i, m) in markers.iter().enumerate() {
        for kind in ["sandbox", "gofer", "boot"] {
            let f = logs.join(format!("runsc.oci-c{i}.{kind}.log"));
            assert!(f.exists(), "{} missing", f.display());
        }
        let boot = std::fs::read_to_string(logs.join(format!("runsc.oci-c{i}.boot.log")))
            .expect("read boot log");
        assert!(
            boot.contains(m.as_str()),
            "container c{i} logs its program: {boot}"
        );
        assert!(
            !boot.contains(markers[1 - i].as_str()),
            "container c{i} logs only its program"
        );
    }
    assert!(!logs.join("runsc.1.boot.log").exists());
}

/// Seen from the host while the application runs: the Sentry and everything below it (the
/// ptrace stubs) run as uid and gid 65534 in a user namespace of their own (root inside,
/// mapped to nobody), in the sandbox's PID namespace, with no capability; the outer Gofer
/// process, which only waits for the serving one, holds no capability and runs under
/// seccomp.
fn sandbox_processes_run_unprivileged(p: Platform) {
    let mut sb = Sandbox::start(p, &[], "echo ready; read x; echo done");
    assert_eq!(sb.line(), "ready\n");
    let procs = tree(sb.pid());
    let boot = procs
        .iter()
        .find(|q| q.comm == "runsc-sandbox")
        .unwrap_or_else(|| panic!("no sandbox process in {procs:#?}"))
        .clone();
    let below_boot = tree(boot.pid);
    if p == Platform::Ptrace {
        assert!(
            below_boot.len() > 1,
            "ptrace stubs expected: {below_boot:#?}"
        );
    }
    for q in &below_boot {
        let what = format!("{} ({})", q.pid, q.comm);
        assert_eq!(
            status_field(q.pid, "Uid").as_deref(),
            Some("65534 65534 65534 65534"),
            "{what}"
        );
        assert_eq!(
            status_field(q.pid, "Gid").as_deref(),
            Some("65534 65534 65534 65534"),
            "{what}"
        );
        assert_eq!(status_field(q.pid, "Groups").as_deref(), Some(""), "{what}");
        assert_eq!(
            status_field(q.pid, "CapEff").as_deref(),
            Some("0000000000000000"),
            "{what}"
        );
        assert_eq!(
            status_field(q.pid, "CapPrm").as_deref(),
            Some("0000000000000000"),
            "{what}"
        );
        let map = std::fs::read_to_string(format!("/proc/{}/uid_map", q.pid)).expect("uid_map");
        let map: Vec<&str> = map.split_whitespace().collect();
        assert_eq!(map, ["0", "65534", "1"], "{what}: uid_map");
        let ns = |pid: i32, kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok();
        assert_ne!(
            ns(q.pid, "user"),
            ns(1, "user"),
            "{what}: own user namespace"
        );
        // NSpid: the host's pid, then the pid in the sandbox's PID namespace.
        let nspid = status_field(q.pid, "NSpid").expect("NSpid");
        assert_eq!(nspid.split(' ').count(), 2, "{what}: NSpid {nspid}");
    }
    assert_eq!(
        status_field(boot.pid, "NSpid").as_deref(),
        Some(format!("{} 1", boot.pid).as_str()),
        "the Sentry is PID 1 of the sandbox's PID namespace"
    );
    let outer_gofer = procs
        .iter()
        .find(|q| q.comm == "runsc-gofer" && q.ppid == sb.pid())
        .unwrap_or_else(|| panic!("no outer gofer in {procs:#?}"));
    for (key, want) in [
        ("CapEff", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapBnd", "0000000000000000"),
        ("NoNewPrivs", "1"),
        ("Seccomp", "2"),
    ] {
        assert_eq!(
            status_field(outer_gofer.pid, key).as_deref(),
            Some(want),
            "outer gofer {key}"
        );
    }
    sb.send("go\n");
    let (code, out, err) = sb.finish();
    assert_eq!((code, out.as_str()), (0, "done\n"), "{err}");
}

/// Arguments, environment entries and the working directory are bytes, as Linux passes
/// them: none needs to be UTF-8 (they were refused with status 2, and a non-UTF-8 working
/// directory silently became `/`).
fn non_utf8_arguments_environment_and_cwd_pass_through(p: Platform) {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = integration::scratch_dir();
    let cwd = dir.path().join(OsStr::from_bytes(b"dir-\xff-x"));
    std::fs::create_dir(&cwd).expect("mkdir");
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let script = "for v in \"$1\" \"$INHERITED\" \"$GIVEN\" \"$(pwd)\"; do \
                  printf '%s' \"$v\" | od -An -tx1 | tr -s ' \\n' '  '; echo; done";
    let mut cmd = Command::new(runsc());
    cmd.current_dir(&cwd)
        .env("INHERITED", OsStr::from_bytes(b"in-\xfe"))
        .arg(format!("--platform={}", p.name()))
        .arg("do")
        .arg("--env")
        .arg(OsStr::from_bytes(b"GIVEN=given-\xfd"))
        .args(["--", "/bin/sh", "-c", script, "sh"])
        .arg(OsStr::from_bytes(b"arg-\xfc"));
    let run = run_command(cmd, b"");
    run.assert_success("runsc do with non-UTF-8 bytes");
    let got: Vec<String> = run.stdout.lines().map(|l| l.trim().to_string()).collect();
    let want = [
        hex(b"arg-\xfc"),
        hex(b"in-\xfe"),
        hex(b"given-\xfd"),
        hex(cwd.as_os_str().as_bytes()),
    ];
    assert_eq!(got, want, "{run:#?}");
}

on_every_platform!(
    debug_logs_of_concurrent_sandboxes_do_not_mix,
    debug_logs_of_concurrent_containers_do_not_mix,
    non_utf8_arguments_environment_and_cwd_pass_through,
    sandbox_processes_run_unprivileged,
);
