//! Real programs through `runsc do`, on every platform: each test below is a function of
//! the platform, instantiated once per platform by `on_every_platform!` (KVM tests skip
//! with a printed reason where `/dev/kvm` is absent, or fail when `RSENTRY_REQUIRE` names
//! `kvm`).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use integration::{
    Link, Platform, PreparedRoot, assert_one_line_error, fixture, have_tool, native, path_str,
    runsc, runsc_do, scratch_dir, unique_name,
};

integration::on_every_platform!(
    static_hello,
    dynamic_hello,
    ls_root_matches_native,
    cat_os_release_matches_native,
    sh_echo_matches_native,
    sha256sum_and_python_match_native,
    commands_are_found_in_path,
    working_directory_and_environment_pass_through,
    first_process_is_pid_1,
    unused_syscall_is_enosys,
    tmp_writes_stay_in_the_sandbox,
    symlink_resolves_inside_prepared_root,
    dotdot_and_proc_self_root_stay_inside_prepared_root,
    exit_status_passes_through,
    exec_errors_are_one_line,
    sandbox_process_is_confined,
    debug_log_and_strace,
    sigterm_to_runsc_ends_the_sandbox,
);

fn static_hello(p: Platform) {
    let hello = fixture("hello", Link::Static);
    let run = runsc_do(p, &[], &[path_str(&hello)]);
    run.assert_success("static hello");
    assert_eq!(run.stdout, "hello, world\n");
}

fn dynamic_hello(p: Platform) {
    let hello = fixture("hello", Link::Dynamic);
    let run = runsc_do(p, &[], &[path_str(&hello)]);
    run.assert_success("dynamic hello");
    assert_eq!(run.stdout, "hello, world\n");
}

/// Runs `cmd` natively and in the sandbox and compares status and output.
fn matches_native(p: Platform, cmd: &[&str]) {
    let want = native(cmd);
    want.assert_success("native run");
    let got = runsc_do(p, &[], cmd);
    assert_eq!(
        (got.code, &got.stdout),
        (want.code, &want.stdout),
        "{got:#?}"
    );
}

fn ls_root_matches_native(p: Platform) {
    matches_native(p, &["/bin/ls", "/"]);
}

fn cat_os_release_matches_native(p: Platform) {
    matches_native(p, &["/bin/cat", "/etc/os-release"]);
}

fn sh_echo_matches_native(p: Platform) {
    matches_native(p, &["/bin/sh", "-c", "echo hi"]);
}

fn sha256sum_and_python_match_native(p: Platform) {
    matches_native(p, &["/usr/bin/sha256sum", "/etc/os-release", "/bin/ls"]);
    if have_tool("/usr/bin/python3") {
        matches_native(p, &["/usr/bin/python3", "-c", "print(1)"]);
    }
}

fn commands_are_found_in_path(p: Platform) {
    // `runsc do` looks a bare name up in PATH below the rootfs, like a shell.
    matches_native(p, &["ls", "/"]);
    let run = runsc_do(
        p,
        &["--env", "PATH=/usr/bin:/bin"],
        &["cat", "/etc/os-release"],
    );
    assert_eq!(
        run.stdout,
        native(&["/bin/cat", "/etc/os-release"]).stdout,
        "{run:#?}"
    );
    assert_one_line_error(
        &runsc_do(p, &[], &["no-such-command-rsentry"]),
        127,
        "no-such-command-rsentry",
    );
}

fn working_directory_and_environment_pass_through(p: Platform) {
    let dir = scratch_dir();
    std::fs::write(dir.path().join("data.txt"), "relative contents\n").expect("write");
    let run_in_dir = |cmd: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(runsc());
        c.arg(format!("--platform={}", p.name()))
            .args(["do", "--"])
            .args(cmd);
        c.current_dir(dir.path()).envs(env.iter().copied());
        integration::run_command(c, b"")
    };
    let run = run_in_dir(&["/bin/pwd"], &[]);
    run.assert_success("pwd");
    assert_eq!(run.stdout.trim_end(), path_str(dir.path()));
    let run = run_in_dir(&["/bin/cat", "data.txt"], &[]);
    assert_eq!(run.stdout, "relative contents\n", "{run:#?}");
    let run = run_in_dir(
        &["/usr/bin/printenv", "RSENTRY_TEST_VAR"],
        &[("RSENTRY_TEST_VAR", "v1")],
    );
    assert_eq!(run.stdout, "v1\n", "{run:#?}");
    let run = runsc_do(
        p,
        &["--env", "RSENTRY_TEST_VAR=v2", "--cwd", "/usr"],
        &["/bin/pwd"],
    );
    assert_eq!(run.stdout, "/usr\n", "{run:#?}");
}

fn first_process_is_pid_1(p: Platform) {
    let getpid = fixture("getpid", Link::Static);
    let run = runsc_do(p, &[], &[path_str(&getpid)]);
    run.assert_success("getpid");
    assert_eq!(run.stdout, "1 0\n", "pid and ppid of the first process");
}

fn unused_syscall_is_enosys(p: Platform) {
    let enosys = fixture("enosys", Link::Static);
    let run = runsc_do(p, &[], &[path_str(&enosys)]);
    assert_eq!(run.stdout, "-1 38\n", "{run:#?}");
    run.assert_success("syscall(999)");
}

fn tmp_writes_stay_in_the_sandbox(p: Platform) {
    let writefile = fixture("writefile", Link::Static);
    let target = format!("/tmp/{}", unique_name("tmpwrite"));
    let run = runsc_do(p, &[], &[path_str(&writefile), &target]);
    run.assert_success("write in the sandbox");
    assert_eq!(run.stdout, "ok\n");
    assert!(!Path::new(&target).exists(), "{target} reached the host");
    // The same holds for a path in the host's own tree, not just the sandbox's /tmp.
    let here = std::env::current_dir()
        .expect("cwd")
        .join(unique_name("cwdwrite"));
    let run = runsc_do(p, &[], &[path_str(&writefile), path_str(&here)]);
    run.assert_success("write into the (overlaid) host tree");
    assert!(!here.exists(), "{} reached the host", here.display());
}

fn symlink_resolves_inside_prepared_root(p: Platform) {
    let root = PreparedRoot::new(&["catfile"]);
    let run = runsc_do(p, &["--rootfs", root.path()], &["/bin/catfile", "/link"]);
    run.assert_success("cat /link");
    assert_eq!(
        run.stdout, root.passwd,
        "/link -> /etc/passwd must resolve in the sandbox root"
    );
}

fn dotdot_and_proc_self_root_stay_inside_prepared_root(p: Platform) {
    let root = PreparedRoot::new(&["catfile"]);
    for escape in [
        "/../../../../etc/passwd",
        "/bin/../../../etc/passwd",
        "../../../../../etc/passwd",
        "/proc/self/root/etc/passwd",
        "/proc/self/root/../../etc/passwd",
        "/proc/1/root/etc/passwd",
    ] {
        let run = runsc_do(p, &["--rootfs", root.path()], &["/bin/catfile", escape]);
        run.assert_success(escape);
        assert_eq!(run.stdout, root.passwd, "{escape} left the sandbox root");
    }
}

fn exit_status_passes_through(p: Platform) {
    let ending = fixture("ending", Link::Static);
    let e = path_str(&ending);
    assert_eq!(runsc_do(p, &[], &[e, "exit", "0"]).code, 0);
    assert_eq!(runsc_do(p, &[], &[e, "exit", "42"]).code, 42);
    assert_eq!(runsc_do(p, &[], &[e, "kill", "9"]).code, 128 + 9);
    assert_eq!(runsc_do(p, &[], &[e, "kill", "15"]).code, 128 + 15);
    assert_eq!(runsc_do(p, &[], &[e, "segv"]).code, 128 + 11);
}

fn exec_errors_are_one_line(p: Platform) {
    let dir = scratch_dir();
    let text = dir.path().join("not-elf");
    std::fs::write(&text, "this is not a program\n").expect("write");
    std::fs::set_permissions(&text, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    assert_one_line_error(
        &runsc_do(p, &[], &[path_str(&text)]),
        126,
        "xec format error",
    );
    let missing = dir.path().join("missing");
    assert_one_line_error(
        &runsc_do(p, &[], &[path_str(&missing)]),
        127,
        "No such file",
    );
}

/// Reads `/proc/<pid>/status` field `key`.
fn status_field(pid: u32, key: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
}

/// The child of `parent` whose name (`/proc/PID/comm`, which runsc sets per role) is `comm`.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let ppid = status_field(pid, "PPid:").and_then(|v| v.parse::<u32>().ok());
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if ppid == Some(parent) && name.trim_end() == comm {
            return Some(pid);
        }
    }
    None
}

/// Starts `runsc do` on the `waitstdin` fixture, which runs until its stdin closes.
fn spawn_waiting(p: Platform) -> Child {
    let wait = fixture("waitstdin", Link::Static);
    Command::new(runsc())
        .arg(format!("--platform={}", p.name()))
        .args(["do", "--", path_str(&wait)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runsc")
}

/// Waits (bounded, as a hang guard only) until the sandbox process of `child` has
/// installed its seccomp filters, i.e. finished confining itself, and returns its pid.
fn confined_sandbox(child: &mut Child) -> u32 {
    let deadline = Instant::now() + integration::TIMEOUT;
    loop {
        if let Some(pid) = child_named(child.id(), "runsc-sandbox")
            && status_field(pid, "Seccomp:").as_deref() == Some("2")
        {
            return pid;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let out = std::mem::replace(child, Command::new("true").spawn().expect("true"))
                .wait_with_output()
                .expect("wait");
            panic!("sandbox process never got confined: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sandbox_process_is_confined(p: Platform) {
    let mut child = spawn_waiting(p);
    let sandbox = confined_sandbox(&mut child);
    let field = |k: &str| status_field(sandbox, k).unwrap_or_default();
    let checks = [
        ("NoNewPrivs:", field("NoNewPrivs:"), "1"),
        ("Seccomp_filters:", field("Seccomp_filters:"), "3"),
        ("CapEff:", field("CapEff:"), "0000000000000000"),
        ("CapPrm:", field("CapPrm:"), "0000000000000000"),
        ("CapBnd:", field("CapBnd:"), "0000000000000000"),
        ("CapInh:", field("CapInh:"), "0000000000000000"),
        ("CapAmb:", field("CapAmb:"), "0000000000000000"),
        (
            "NSpid:",
            field("NSpid:")
                .split_whitespace()
                .last()
                .unwrap_or("")
                .to_owned(),
            "1",
        ),
    ];
    let root_entries = std::fs::read_dir(format!("/proc/{sandbox}/root")).map(|d| d.count());
    let ns_differs = |ns: &str| {
        std::fs::read_link(format!("/proc/self/ns/{ns}")).ok()
            != std::fs::read_link(format!("/proc/{sandbox}/ns/{ns}")).ok()
    };
    let namespaces: Vec<bool> = ["mnt", "pid", "net", "ipc", "uts"]
        .iter()
        .map(|n| ns_differs(n))
        .collect();
    // Let the program finish before asserting, so a failure leaves nothing running.
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"12345")
        .expect("feed stdin");
    let out = child.wait_with_output().expect("wait");
    for (name, got, want) in checks {
        assert_eq!(got, want, "{name} of the sandbox process");
    }
    assert_eq!(
        root_entries.ok(),
        Some(0),
        "the sandbox process's root must be empty"
    );
    assert!(
        namespaces.iter().all(|&d| d),
        "namespaces mnt,pid,net,ipc,uts differ: {namespaces:?}"
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n");
}

fn debug_log_and_strace(p: Platform) {
    let hello = fixture("hello", Link::Static);
    let logs = scratch_dir();
    let logdir = path_str(logs.path()).to_owned();
    let mut cmd = Command::new(runsc());
    cmd.args([
        &format!("--platform={}", p.name()),
        "--strace",
        "--debug-log",
        &logdir,
        "do",
        "--",
    ])
    .arg(&hello);
    let run = integration::run_command(cmd, b"");
    run.assert_success("hello with --strace --debug-log");
    assert_eq!(run.stdout, "hello, world\n");
    let mut names: Vec<String> = std::fs::read_dir(logs.path())
        .expect("read log dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for cmd in ["boot", "do", "gofer"] {
        assert!(
            names.iter().any(|n| n.ends_with(&format!(".{cmd}.log"))),
            "no {cmd} log in {names:?}"
        );
    }
    let boot_log = names
        .iter()
        .find(|n| n.ends_with(".boot.log"))
        .expect("boot log");
    let boot = std::fs::read_to_string(logs.path().join(boot_log)).expect("read boot log");
    assert!(boot.contains("confined"), "the sandbox's debug log: {boot}");
    // The Sentry writes --strace lines to its stderr.
    assert!(run.stderr.contains("exit_group"), "strace output: {run:#?}");
}

fn sigterm_to_runsc_ends_the_sandbox(p: Platform) {
    let mut child = spawn_waiting(p);
    confined_sandbox(&mut child);
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "{out:?}");
}
