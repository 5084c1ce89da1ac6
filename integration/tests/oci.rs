//! The OCI lifecycle by hand, as containerd's runc shim drives it: `spec`, `create`,
//! `state`, `start`, `exec`, `ps`, `list`, `kill`, `wait`, `delete`, `run`, and each bad
//! input (missing or malformed `config.json`, unknown ID, duplicate ID, stale state
//! directory, dead sandbox), which must give one `runsc: ...` line, exit status 1 and no
//! state left behind.
//!
//! The test process makes itself a child subreaper, as the shim does, so that it can wait
//! for the pid in `--pid-file` and see the container's exit status there.

use std::path::Path;
use std::process::Stdio;

use integration::{
    Bundle, Platform, assert_one_line_error, on_every_platform, path_str, read_pid, run_command,
    subreaper, wait_pid,
};

const INIT: &[&str] = &[
    "/bin/sh",
    "-c",
    "trap 'echo bye; exit 7' TERM; echo started; while :; do sleep 1; done",
];

fn lifecycle(p: Platform) {
    subreaper();
    let b = Bundle::new(p, INIT);
    let id = "life";
    let pid_file = b.dir.path().join("pid");
    let (run, out) = b.create(id, &pid_file);
    assert_eq!(run.code, 0, "create: {run:#?}");
    let pid = read_pid(&pid_file);
    let st = b.state(id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], id);
    assert_eq!(st["pid"], pid);
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(
        Path::new(st["bundle"].as_str().expect("bundle")),
        std::fs::canonicalize(b.dir.path()).expect("canonical bundle")
    );
    // Created, not started: the program has not run.
    assert_eq!(std::fs::read_to_string(&out).expect("out"), "");

    b.runsc(&["start", id]).assert_success("start");
    assert_eq!(b.state(id)["status"], "running");
    assert_one_line_error(&b.runsc(&["start", id]), 1, "already running");

    let r = b.runsc(&[
        "exec",
        id,
        "/bin/sh",
        "-c",
        "echo $((6*7)); echo err >&2; exit 5",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (5, "42\n", "err\n"),
        "{r:#?}"
    );
    let r = b.runsc(&[
        "exec",
        "--env",
        "GREETING=hi",
        "--cwd",
        "/etc",
        id,
        "sh",
        "-c",
        "echo $GREETING $PWD",
    ]);
    assert_eq!(r.stdout, "hi /etc\n", "{r:#?}");

    // A detached exec: the pid file's process carries the exec'd process's status.
    let exec_pid = b.dir.path().join("exec.pid");
    let r = b.runsc(&[
        "exec",
        "--detach",
        "--pid-file",
        path_str(&exec_pid),
        id,
        "/bin/sh",
        "-c",
        "exit 4",
    ]);
    r.assert_success("exec --detach");
    assert_eq!(wait_pid(read_pid(&exec_pid)), 4);

    let r = b.runsc(&["ps", "--format", "json", id]);
    r.assert_success("ps");
    let pids: Vec<i32> = serde_json::from_str(&r.stdout).expect("ps JSON");
    assert!(pids.contains(&1), "{pids:?}");
    let r = b.runsc(&["ps", id]);
    assert!(r.stdout.lines().any(|l| l.ends_with(" sh")), "{r:#?}");
    let r = b.runsc(&["list", "--format", "json"]);
    let all: serde_json::Value = serde_json::from_str(&r.stdout).expect("list JSON");
    assert_eq!(all[0]["id"], id, "{all}");
    assert_eq!(all[0]["status"], "running", "{all}");
    let r = b.runsc(&["events", "--stats", id]);
    let ev: serde_json::Value = serde_json::from_str(&r.stdout).expect("events JSON");
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["pids"]["current"].as_u64() >= Some(1), "{ev}");

    assert_one_line_error(&b.runsc(&["delete", id]), 1, "not stopped");
    assert_one_line_error(&b.runsc(&["kill", id, "NOSUCHSIG"]), 1, "invalid signal");
    b.runsc(&["kill", id, "TERM"]).assert_success("kill");
    let r = b.runsc(&["wait", id]);
    r.assert_success("wait");
    let w: serde_json::Value = serde_json::from_str(&r.stdout).expect("wait JSON");
    assert_eq!(w["exitStatus"], 7, "{w}");
    // What containerd's shim sees: the pid file's process exits with the container's status.
    assert_eq!(wait_pid(pid), 7);
    assert_eq!(b.state(id)["status"], "stopped");
    assert_eq!(
        std::fs::read_to_string(&out).expect("out"),
        "started\nbye\n"
    );
    assert_one_line_error(&b.runsc(&["kill", id, "KILL"]), 1, "not running");
    // With --all there is nothing left to signal, which is no error (runc's answer, on
    // which containerd's CRI relies to clean up an exited container).
    b.runsc(&["kill", "--all", id, "KILL"])
        .assert_success("kill --all of a stopped container");
    assert_one_line_error(&b.runsc(&["exec", id, "/bin/true"]), 1, "not running");

    b.runsc(&["delete", id]).assert_success("delete");
    assert!(!b.state_dir(id).exists());
    assert_one_line_error(&b.runsc(&["state", id]), 1, "does not exist");
}

fn kill_and_force_delete(p: Platform) {
    subreaper();
    // PID 1 ignores SIGTERM without a handler, as a container's init does under runc.
    let b = Bundle::new(p, &["/bin/sleep", "1000"]);
    let pid_file = b.dir.path().join("pid");
    let (run, _) = b.create("k", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    let pid = read_pid(&pid_file);
    b.runsc(&["start", "k"]).assert_success("start");
    b.runsc(&["kill", "k"]).assert_success("kill TERM");
    assert_eq!(b.state("k")["status"], "running");
    b.runsc(&["delete", "--force", "k"])
        .assert_success("delete --force");
    assert_eq!(wait_pid(pid), 128 + libc::SIGKILL);
    assert!(!b.state_dir("k").exists());
    // A created container can be deleted without --force; its program never runs.
    let (run, out) = b.create("c", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    let pid = read_pid(&pid_file);
    b.runsc(&["delete", "c"]).assert_success("delete created");
    wait_pid(pid);
    assert!(!b.state_dir("c").exists());
    assert_eq!(std::fs::read_to_string(out).expect("out"), "");
}

fn run_waits_and_cleans_up(p: Platform) {
    let b = Bundle::new(p, &["/bin/sh", "-c", "echo hi from $(hostname); exit 3"]);
    let mut cmd = b.base();
    cmd.args(["run", "--bundle", path_str(b.dir.path()), "r"]);
    let r = run_command(cmd, b"");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (3, "hi from runsc\n"),
        "{r:#?}"
    );
    assert!(!b.state_dir("r").exists());
}

fn bad_inputs(p: Platform) {
    subreaper();
    let b = Bundle::new(p, &["/bin/sleep", "1000"]);
    let pid_file = b.dir.path().join("pid");
    // `spec` refuses to overwrite.
    assert_one_line_error(
        &b.runsc(&["spec", "--bundle", path_str(b.dir.path())]),
        1,
        "exists",
    );
    // Unknown and invalid IDs.
    for cmd in [
        &["state", "nope"][..],
        &["start", "nope"],
        &["kill", "nope"],
        &["delete", "nope"],
        &["exec", "nope", "true"],
        &["ps", "nope"],
        &["wait", "nope"],
    ] {
        assert_one_line_error(&b.runsc(cmd), 1, "does not exist");
    }
    b.runsc(&["delete", "--force", "nope"])
        .assert_success("delete --force unknown");
    assert_one_line_error(&b.runsc(&["state", "../x"]), 1, "invalid container id");
    // A program that does not exist fails create, and leaves nothing behind.
    b.edit(|c| c["process"]["args"] = serde_json::json!(["/no/such/program"]));
    let (run, _) = b.create("np", &pid_file);
    assert_one_line_error(&run, 1, "/no/such/program");
    assert!(!b.state_dir("np").exists());
    assert!(!pid_file.exists());
    // Malformed and missing config.json.
    std::fs::write(b.config(), "{ not json").expect("write");
    let (run, _) = b.create("bad", &pid_file);
    assert_one_line_error(&run, 1, "malformed");
    assert!(!b.state_dir("bad").exists());
    std::fs::remove_file(b.config()).expect("rm config");
    let (run, _) = b.create("bad", &pid_file);
    assert_one_line_error(&run, 1, "config.json");
    assert!(!b.state_dir("bad").exists());

    // Duplicate ID: the first container is untouched.
    let b = Bundle::new(p, &["/bin/sleep", "1000"]);
    let (run, _) = b.create("dup", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    let pid = read_pid(&pid_file);
    let other_pid = b.dir.path().join("pid2");
    let (run, _) = b.create("dup", &other_pid);
    assert_one_line_error(&run, 1, "already exists");
    assert!(!other_pid.exists());
    assert_eq!(b.state("dup")["status"], "created");

    // A dead sandbox: its supervisor was killed. The container is stopped.
    // SAFETY: kill(2) has no memory effects; `pid` is the supervisor we just started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    assert_eq!(wait_pid(pid), 128 + libc::SIGKILL);
    assert_eq!(b.state("dup")["status"], "stopped");
    assert_one_line_error(&b.runsc(&["start", "dup"]), 1, "stopped");
    assert_one_line_error(&b.runsc(&["exec", "dup", "/bin/true"]), 1, "not running");
    b.runsc(&["delete", "dup"]).assert_success("delete dead");
    assert!(!b.state_dir("dup").exists());

    // Stale state directories: no state file, or a corrupt one.
    std::fs::create_dir(b.state_dir("stale")).expect("mkdir");
    assert_one_line_error(&b.runsc(&["state", "stale"]), 1, "stale");
    let r = b.runsc(&["list", "-q"]);
    assert_eq!(r.stdout, "", "{r:#?}");
    b.runsc(&["delete", "stale"]).assert_success("delete stale");
    assert!(!b.state_dir("stale").exists());
    std::fs::create_dir(b.state_dir("corrupt")).expect("mkdir");
    std::fs::write(b.state_dir("corrupt").join("state.json"), "{").expect("write");
    assert_one_line_error(&b.runsc(&["state", "corrupt"]), 1, "corrupt state");
    b.runsc(&["delete", "--force", "corrupt"])
        .assert_success("delete corrupt");
}

/// The lines of `/proc/self/status` starting with `prefix`, as `name value`.
fn status_lines(out: &str, prefix: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// The process spec is what the container's process has: user and groups, umask,
/// resource limits (enforced), the five capability sets (and the permission checks that
/// follow from them), noNewPrivileges, and the sandbox's sysctl values.
fn process_spec_honoured(p: Platform) {
    // A soft limit of 8 descriptors: fd 7 can be made, fd 9 cannot (dash says nothing
    // when `exec 9<` fails, so the descriptor directory tells: `ls`'s own, which has
    // the shell's 0, 2 and 7, its pipe as 1 and the directory it reads as 3).
    let b = Bundle::new(
        p,
        &[
            "/bin/sh",
            "-c",
            "echo nofile $(ulimit -Sn) $(ulimit -Hn); exec 7</dev/null 9</dev/null; \
             ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; \
             (ulimit -Hn 4096) 2>/dev/null || echo raise refused; \
             (ulimit -Hn 1024) && echo lowered",
        ],
    );
    b.edit(|c| {
        c["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 8, "hard": 2048}]);
    });
    let r = b.run("ps0");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "nofile 8 2048\n0 1 2 3 7 \nraise refused\nlowered\n"),
        "{r:#?}"
    );

    let script = "grep -E '^(Cap|NoNewPrivs|Umask)' /proc/self/status; \
        echo shmmni $(cat /proc/sys/kernel/shmmni) $(domainname); \
        id -u; id -G; \
        cd /scratch && echo secret > f && ls -ln f | cut -c1-10 && chmod 600 f && \
        chown 1000 f && (cat f 2>/dev/null || echo read refused) && \
        (chmod 644 f 2>/dev/null || echo chmod refused)";
    let b = Bundle::new(p, &["/bin/sh", "-c", script]);
    b.edit(|c| {
        c["process"]["user"] =
            serde_json::json!({"uid": 0, "gid": 0, "additionalGids": [5, 6], "umask": 0o027});
        let caps = serde_json::json!(["CAP_CHOWN", "CAP_KILL"]);
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": [], "ambient": []});
        c["process"]["noNewPrivileges"] = true.into();
        c["linux"]["sysctl"] = serde_json::json!({"kernel.shmmni": "1234",
            "net.ipv4.ping_group_range": "0 0", "kernel.domainname": "example.org"});
        c["mounts"] = serde_json::json!([{"destination": "/scratch", "type": "tmpfs",
            "source": "tmpfs", "options": ["mode=755"]}]);
    });
    let r = b.run("ps1");
    assert_eq!(r.code, 0, "{r:#?}");
    // CAP_CHOWN and CAP_KILL: bits 0 and 5.
    assert_eq!(
        status_lines(&r.stdout, "Cap"),
        [
            "CapInh: 0000000000000000",
            "CapPrm: 0000000000000021",
            "CapEff: 0000000000000021",
            "CapBnd: 0000000000000021",
            "CapAmb: 0000000000000000"
        ],
        "{r:#?}"
    );
    assert_eq!(status_lines(&r.stdout, "NoNewPrivs"), ["NoNewPrivs: 1"]);
    assert_eq!(status_lines(&r.stdout, "Umask"), ["Umask: 0027"]);
    let rest: Vec<&str> = r.stdout.lines().filter(|l| !l.contains(':')).collect();
    assert_eq!(
        rest,
        [
            "shmmni 1234 example.org",
            "0",
            "0 5 6",
            // umask 027 on 0666.
            "-rw-r-----",
            // Root without CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH is held to the mode
            // bits, and without CAP_FOWNER to the owner's rights.
            "read refused",
            "chmod refused",
        ],
        "{r:#?}"
    );

    // An unprivileged user keeps only its ambient capabilities across execve.
    let b = Bundle::new(p, &["/bin/grep", "^Cap", "/proc/self/status"]);
    b.edit(|c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        let caps = serde_json::json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": caps, "ambient": ["CAP_NET_BIND_SERVICE"]});
    });
    let r = b.run("ps2");
    assert_eq!(r.code, 0, "{r:#?}");
    assert_eq!(
        status_lines(&r.stdout, "Cap"),
        [
            "CapInh: 0000000000000420",
            "CapPrm: 0000000000000400",
            "CapEff: 0000000000000400",
            "CapBnd: 0000000000000420",
            "CapAmb: 0000000000000400"
        ],
        "{r:#?}"
    );
}

/// `exec --cap` adds a capability to the container's sets for the new process; an unknown
/// name is a one-line error.
fn exec_caps(p: Platform) {
    subreaper();
    let b = Bundle::new(p, &["/bin/sleep", "1000"]);
    let pid_file = b.dir.path().join("pid");
    let (run, _) = b.create("ec", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    b.runsc(&["start", "ec"]).assert_success("start");
    // The default spec's CAP_NET_BIND_SERVICE, CAP_AUDIT_WRITE and CAP_KILL, and
    // CAP_SYS_ADMIN (bit 21).
    let r = b.runsc(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        "ec",
        "/bin/grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "CapEff:\t0000000020200420\n"),
        "{r:#?}"
    );
    let r = b.runsc(&["exec", "ec", "/bin/grep", "CapEff", "/proc/self/status"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "CapEff:\t0000000020000420\n"),
        "{r:#?}"
    );
    assert_one_line_error(
        &b.runsc(&["exec", "--cap", "CAP_NOPE", "ec", "/bin/true"]),
        1,
        "unknown capability",
    );
    b.runsc(&["kill", "ec", "KILL"]).assert_success("kill");
    assert_eq!(wait_pid(read_pid(&pid_file)), 128 + libc::SIGKILL);
    b.runsc(&["delete", "ec"]).assert_success("delete");
}

#[test]
fn exec_capabilities() {
    integration::run_on(Platform::Systrap, exec_caps);
}

/// Bad process settings are one-line errors at `create`, with nothing left behind.
fn bad_process_settings(p: Platform) {
    let cases: [(&str, serde_json::Value, &str); 6] = [
        (
            "/process/capabilities",
            serde_json::json!({"bounding": ["CAP_NOPE"]}),
            "unknown capability \"CAP_NOPE\"",
        ),
        (
            "/process/rlimits",
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 10}]),
            "soft limit -1",
        ),
        (
            "/process/rlimits",
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 20, "hard": 10}]),
            "above the hard limit",
        ),
        (
            "/process/rlimits",
            serde_json::json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
            "RLIMIT_BOGUS",
        ),
        (
            "/linux/sysctl",
            serde_json::json!({"vm.no_such_knob": "1"}),
            "not in a separate kernel namespace",
        ),
        (
            "/linux/sysctl",
            serde_json::json!({"kernel.shmmni": "lots"}),
            "kernel.shmmni",
        ),
    ];
    for (i, (at, value, needle)) in cases.into_iter().enumerate() {
        let b = Bundle::new(p, &["/bin/true"]);
        b.edit(|c| {
            let slot = at.split('/').skip(1).fold(c, |v, k| &mut v[k]);
            *slot = value;
        });
        let id = format!("bad{i}");
        let (run, _) = b.create(&id, &b.dir.path().join("pid"));
        assert_one_line_error(&run, 1, needle);
        assert!(!b.state_dir(&id).exists(), "{id}");
    }
}

/// `root.readonly`, `maskedPaths`, `readonlyPaths`, the `noexec` and `nodev` options, and
/// the Sentry's own file systems at the spec's destinations with their `ro` option.
fn mounts_protected(p: Platform) {
    let mprotect = integration::fixture("mprotect_exec", integration::Link::Static);
    let mprotect = path_str(&mprotect);
    let script = &format!(
        "cp /bin/true /scratch/true; {mprotect} /bin/true; {mprotect} /scratch/true; \
        rm /scratch/true; for f in /etc/x /scratch/f /dev/shm/f /sys/x /proc/sys/vm/swappiness; do \
            (: > $f) 2>&1 | sed 's/.*: //'; [ -e $f ] && echo $f; done; \
        echo passwd $(wc -c < /etc/passwd) $(stat -c %t:%T /etc/passwd); \
        echo kernel $(ls /proc/sys/kernel | wc -l); [ -n \"$(ls /proc/sys/vm)\" ] && echo vm listed; \
        echo proc2 $(cat /proc2/sys/kernel/shmmni); \
        cp /bin/true /scratch/true && /scratch/true 2>/dev/null || echo noexec refused; \
        /lib64/ld-linux-x86-64.so.2 /scratch/true 2>/dev/null || echo mmap refused; \
        mknod /scratch/null c 1 3 && (: < /scratch/null) 2>&1 | sed 's/.*: //'; \
        grep -E ' (/|/proc/sys|/sys|/dev/shm|/proc2) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1"
    );
    let b = Bundle::new(p, &["/bin/sh", "-c", script]);
    b.edit(|c| {
        // Root with every capability (mknod).
        c["process"]
            .as_object_mut()
            .expect("process")
            .remove("capabilities");
        c["root"]["readonly"] = true.into();
        c["mounts"] = serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["noexec", "nodev"]},
            {"destination": "/proc2", "type": "proc", "source": "proc", "options": ["ro"]},
        ]);
        c["linux"]["maskedPaths"] =
            serde_json::json!(["/etc/passwd", "/proc/sys/kernel", "/no/such/path"]);
        c["linux"]["readonlyPaths"] = serde_json::json!(["/proc/sys", "/dev/shm", "/nope"]);
    });
    let r = b.run("m1");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "ok\nEACCES\n\
             Read-only file system\n\
             /scratch/f\n\
             Read-only file system\n\
             Read-only file system\n\
             Read-only file system\n\
             /proc/sys/vm/swappiness\n\
             passwd 0 1:3\n\
             kernel 0\n\
             vm listed\n\
             proc2 4096\n\
             noexec refused\n\
             mmap refused\n\
             Permission denied\n\
             / ro\n\
             /sys ro\n\
             /dev/shm rw\n\
             /proc2 ro\n\
             /proc/sys ro\n\
             /dev/shm ro\n"
        ),
        "{r:#?}"
    );
    // A relative masked path is refused at create.
    b.edit(|c| c["linux"]["maskedPaths"] = serde_json::json!(["etc/passwd"]));
    let (run, _) = b.create("m2", &b.dir.path().join("pid"));
    assert_one_line_error(&run, 1, "not an absolute path");
}

/// A read-write bind mount: every kind of change reaches the host directory (and no
/// further: symlinks planted on the host resolve inside the sandbox).
fn rw_bind(p: Platform) {
    let host = tempfile::tempdir().expect("host dir");
    std::fs::write(host.path().join("existing"), "old\n").expect("write");
    std::fs::create_dir(host.path().join("ro")).expect("mkdir");
    std::os::unix::fs::symlink("../../../../../../../../tmp", host.path().join("up"))
        .expect("symlink");
    let escape = host.path().join("up").join("..").join("escape");
    let script = "cd /data && echo hello > new && echo more >> new && cat new && \
        printf data | dd of=synced conv=fsync 2>/dev/null && \
        mkdir d && echo x > d/f && mv d d2 && ln -s new link && ln new hard && \
        rm existing && truncate -s 3 hard && touch -d 2001-01-01T00:00:00 new && \
        chmod 640 new && chown 1000:1000 new && \
        (echo no > /data/ro/f) 2>&1 | sed 's/.*: //'; \
        (echo no > /data/up/escape) 2>&1 | sed 's/.*: //'; \
        ls /data | tr '\\n' ' '";
    let b = Bundle::new(p, &["/bin/sh", "-c", script]);
    b.edit(|c| {
        // Root with every capability (chown).
        c["process"]
            .as_object_mut()
            .expect("process")
            .remove("capabilities");
        c["mounts"] = serde_json::json!([
            {"destination": "/data", "type": "bind", "source": host.path(),
             "options": ["rbind", "rw"]},
            {"destination": "/data/ro", "type": "bind", "source": host.path().join("ro"),
             "options": ["rbind", "ro"]},
        ]);
    });
    let r = b.run("rw");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "hello\nmore\nRead-only file system\nRead-only file system\n\
             d2 hard link new ro synced up "
        ),
        "{r:#?}"
    );
    let h = host.path();
    assert_eq!(std::fs::read_to_string(h.join("new")).expect("new"), "hel");
    assert_eq!(
        std::fs::read_to_string(h.join("synced")).expect("synced"),
        "data"
    );
    assert_eq!(
        std::fs::read_to_string(h.join("d2/f")).expect("d2/f"),
        "x\n"
    );
    assert_eq!(
        std::fs::read_link(h.join("link")).expect("link"),
        Path::new("new")
    );
    assert!(!h.join("existing").exists());
    assert!(!h.join("d").exists());
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(h.join("new")).expect("stat new");
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.nlink(), m.mtime()),
        (0o640, 1000, 1000, 2, 978307200)
    );
    assert!(!escape.exists());
    assert!(!h.join("ro/f").exists());

    // Appends land at the host file's end even when the host wrote to it after the
    // sandbox last looked (the Sentry's cached size is stale then).
    subreaper();
    let b = Bundle::new(p, &["/bin/sleep", "1000"]);
    b.edit(|c| {
        c["mounts"] = serde_json::json!([{"destination": "/data", "type": "bind",
            "source": host.path(), "options": ["rbind", "rw"]}]);
    });
    let pid_file = b.dir.path().join("pid");
    let (run, _) = b.create("app", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    b.runsc(&["start", "app"]).assert_success("start");
    let append = |line: &str| {
        let cmd = format!("echo {line} >> /data/app");
        b.runsc(&["exec", "app", "/bin/sh", "-c", &cmd])
            .assert_success("exec append");
    };
    append("one");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(h.join("app"))
            .expect("open on the host");
        f.write_all(b"host\n").expect("host append");
    }
    append("two");
    assert_eq!(
        std::fs::read_to_string(h.join("app")).expect("app"),
        "one\nhost\ntwo\n"
    );
    b.runsc(&["kill", "app", "KILL"]).assert_success("kill");
    assert_eq!(wait_pid(read_pid(&pid_file)), 128 + libc::SIGKILL);
    b.runsc(&["delete", "app"]).assert_success("delete");
}

/// A hook that appends its stage to `log` and saves its stdin (the state) as
/// `DIR/STAGE.json`; `dir` is where the hook sees the test's directory.
fn recording_hook(dir: &str, stage: &str) -> serde_json::Value {
    serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo {stage} $HOOK_ENV >> {dir}/log; cat > {dir}/{stage}.json")],
        "env": [format!("HOOK_ENV=env-{stage}")],
    })
}

/// The hooks run at their stage with the state on stdin; failing and slow hooks fail the
/// command as runc's do.
fn hooks_run(p: Platform) {
    subreaper();
    let host = tempfile::tempdir().expect("hook dir");
    let h = path_str(host.path()).to_owned();
    let b = Bundle::new(p, &["/bin/sh", "-c", "echo ran >> /hooks/log"]);
    b.edit(|c| {
        c["mounts"] = serde_json::json!([{"destination": "/hooks", "type": "bind",
            "source": &h, "options": ["rbind", "rw"]}]);
        c["hooks"] = serde_json::json!({
            "prestart": [recording_hook(&h, "prestart")],
            "createRuntime": [recording_hook(&h, "createRuntime")],
            "createContainer": [recording_hook(&h, "createContainer")],
            // Inside the sandbox: the container's paths.
            "startContainer": [recording_hook("/hooks", "startContainer")],
            "poststart": [recording_hook(&h, "poststart")],
            "poststop": [recording_hook(&h, "poststop")],
        });
    });
    let pid_file = b.dir.path().join("pid");
    let (run, _) = b.create("h1", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    let log = || std::fs::read_to_string(host.path().join("log")).unwrap_or_default();
    assert_eq!(
        log(),
        "prestart env-prestart\ncreateRuntime env-createRuntime\n\
         createContainer env-createContainer\n"
    );
    b.runsc(&["start", "h1"]).assert_success("start");
    let pid = read_pid(&pid_file);
    assert_eq!(wait_pid(pid), 0);
    b.runsc(&["delete", "h1"]).assert_success("delete");
    // The process ran after startContainer (its line comes after that hook's); poststart
    // ran after the start, in some order with the process's own line.
    let got = log();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 7, "{got}");
    assert_eq!(lines[3], "startContainer env-startContainer", "{got}");
    assert_eq!(lines[6], "poststop env-poststop", "{got}");
    let mut middle = lines[4..6].to_vec();
    middle.sort();
    assert_eq!(middle, ["poststart env-poststart", "ran"], "{got}");
    for (stage, status) in [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let st: serde_json::Value = serde_json::from_slice(
            &std::fs::read(host.path().join(format!("{stage}.json"))).expect("state file"),
        )
        .unwrap_or_else(|e| panic!("{stage}: {e}"));
        assert_eq!(
            (st["id"].as_str(), st["status"].as_str()),
            (Some("h1"), Some(status))
        );
        assert_eq!(st["pid"], pid, "{stage}");
        assert_eq!(st["ociVersion"], "1.2.0");
    }

    // A failing create hook fails create with its output, removes the container and runs
    // the poststop hooks.
    std::fs::remove_file(host.path().join("log")).expect("rm log");
    b.edit(|c| {
        c["hooks"]["createRuntime"] = serde_json::json!([{"path": "/bin/sh",
            "args": ["sh", "-c", "echo boom >&2; exit 3"]}]);
    });
    let (run, _) = b.create("h2", &pid_file);
    assert_one_line_error(
        &run,
        1,
        "createRuntime hook /bin/sh: exit status 3, stderr: boom",
    );
    assert!(!b.state_dir("h2").exists());
    assert_eq!(log(), "prestart env-prestart\npoststop env-poststop\n");

    // A hook past its timeout is killed and fails create.
    b.edit(|c| {
        c["hooks"]["createRuntime"] = serde_json::json!([{"path": "/bin/sleep",
            "args": ["sleep", "100"], "timeout": 1}]);
    });
    let (run, _) = b.create("h3", &pid_file);
    assert_one_line_error(&run, 1, "timed out after 1 seconds");
    assert!(!b.state_dir("h3").exists());

    // A failing startContainer hook fails start and stops the container.
    b.edit(|c| {
        c["hooks"]["createRuntime"] = serde_json::json!([]);
        c["hooks"]["startContainer"] = serde_json::json!([{"path": "/bin/false"}]);
    });
    let (run, _) = b.create("h4", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    let pid = read_pid(&pid_file);
    assert_one_line_error(
        &b.runsc(&["start", "h4"]),
        1,
        "startContainer hook /bin/false",
    );
    assert_eq!(wait_pid(pid), 128 + libc::SIGKILL);
    assert_eq!(b.state("h4")["status"], "stopped");
    b.runsc(&["delete", "h4"]).assert_success("delete");

    // A relative hook path is refused at create.
    b.edit(|c| c["hooks"]["poststop"] = serde_json::json!([{"path": "bin/true"}]));
    let (run, _) = b.create("h5", &pid_file);
    assert_one_line_error(&run, 1, "is not absolute");
}

/// The application CPU time of the container, from `events --stats`.
fn cpu_total(b: &Bundle, id: &str) -> u64 {
    let r = b.runsc(&["events", "--stats", id]);
    r.assert_success("events --stats");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("stats JSON");
    v["data"]["cpu"]["usage"]["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("no cpu total: {r:#?}"))
}

/// `pause` freezes every process (no CPU time is used while paused, exec is refused),
/// `resume` lets them run again, and SIGKILL ends a paused container.
fn pause_and_resume(p: Platform) {
    subreaper();
    let b = Bundle::new(
        p,
        &["/bin/sh", "-c", "while :; do echo x > /dev/null; done"],
    );
    let pid_file = b.dir.path().join("pid");
    let (run, _) = b.create("p1", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    let pid = read_pid(&pid_file);
    assert_one_line_error(&b.runsc(&["resume", "p1"]), 1, "not paused");
    assert_one_line_error(&b.runsc(&["pause", "p1"]), 1, "not running");
    b.runsc(&["start", "p1"]).assert_success("start");
    b.runsc(&["pause", "p1"]).assert_success("pause");
    assert_eq!(b.state("p1")["status"], "paused");
    assert_one_line_error(&b.runsc(&["pause", "p1"]), 1, "not running");
    assert_one_line_error(&b.runsc(&["exec", "p1", "/bin/true"]), 1, "paused");
    // With --ignore-paused the process starts, frozen with the rest (its detached waiter
    // keeps the stdio it was given: none here, so that nothing waits for it).
    let status = b
        .base()
        .args(["exec", "-d", "--ignore-paused", "p1", "/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("exec --ignore-paused");
    assert!(status.success(), "exec --ignore-paused: {status}");
    assert_one_line_error(&b.runsc(&["delete", "p1"]), 1, "not stopped: paused");
    let frozen = cpu_total(&b, "p1");
    for _ in 0..20 {
        assert_eq!(cpu_total(&b, "p1"), frozen, "CPU time moved while paused");
    }
    b.runsc(&["resume", "p1"]).assert_success("resume");
    assert_eq!(b.state("p1")["status"], "running");
    assert!(
        (0..2000).any(|_| cpu_total(&b, "p1") > frozen),
        "no CPU time after resume"
    );
    b.runsc(&["pause", "p1"]).assert_success("pause again");
    b.runsc(&["kill", "p1", "KILL"])
        .assert_success("kill paused");
    assert_eq!(wait_pid(pid), 128 + libc::SIGKILL);
    assert_eq!(b.state("p1")["status"], "stopped");
    b.runsc(&["delete", "p1"]).assert_success("delete");
}

/// `cgroupsPath` holds the container's host processes with the spec's limits, which the
/// sandbox shows where programs look: `/proc/meminfo`, `nproc`, the online CPUs.
fn cgroup_limits(p: Platform) {
    let memory = Path::new("/sys/fs/cgroup/memory");
    if !memory.join("cgroup.procs").exists() {
        test_require::skip(
            "root",
            "no cgroup v1 memory controller at /sys/fs/cgroup/memory",
        );
        return;
    }
    subreaper();
    let name = integration::unique_name("rsentry-cg");
    let b = Bundle::new(
        p,
        &[
            "/bin/sh",
            "-c",
            "grep MemTotal /proc/meminfo; nproc; cat /sys/devices/system/cpu/online; \
             grep Cpus_allowed_list /proc/self/status; exec sleep 1000",
        ],
    );
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = format!("/{name}/c1").into();
        c["linux"]["resources"] = serde_json::json!({
            "memory": {"limit": 256 << 20},
            "cpu": {"quota": 50000, "period": 100000},
            "pids": {"limit": 200},
        });
    });
    let pid_file = b.dir.path().join("pid");
    let (run, out) = b.create("cg", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    let pid = read_pid(&pid_file);
    let dir = memory.join(&name).join("c1");
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).expect(f);
    assert_eq!(read(&dir, "memory.limit_in_bytes").trim(), "268435456");
    assert!(
        read(&dir, "cgroup.procs")
            .lines()
            .any(|l| l == pid.to_string()),
        "the supervisor is in the container's cgroup"
    );
    let cpu = Path::new("/sys/fs/cgroup/cpu").join(&name).join("c1");
    if cpu.exists() {
        assert_eq!(read(&cpu, "cpu.cfs_quota_us").trim(), "50000");
    }
    b.runsc(&["start", "cg"]).assert_success("start");
    // The container's output is complete once its shell has exec'd sleep: wait for the
    // sleep to be its process 1 (no sleep of our own).
    let started = (0..1000).any(|_| {
        let r = b.runsc(&["ps", "cg"]);
        r.stdout.contains("sleep")
    });
    assert!(started, "the container never reached its sleep");
    assert_eq!(
        std::fs::read_to_string(&out).expect("output"),
        "MemTotal:         262144 kB\n1\n0\nCpus_allowed_list:\t0\n"
    );
    b.runsc(&["kill", "cg", "KILL"]).assert_success("kill");
    assert_eq!(wait_pid(pid), 128 + libc::SIGKILL);
    b.runsc(&["delete", "cg"]).assert_success("delete");
    assert!(!dir.exists(), "delete removes the cgroup");
    for c in ["memory", "cpu", "cpuacct", "cpuset", "pids"] {
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(c).join(&name));
    }
}

#[test]
fn cgroups() {
    integration::run_on(Platform::Systrap, cgroup_limits);
}

#[test]
fn hooks() {
    integration::run_on(Platform::Systrap, hooks_run);
}

#[test]
fn rw_bind_mounts() {
    integration::run_on(Platform::Systrap, rw_bind);
}

#[test]
fn mounts() {
    integration::run_on(Platform::Systrap, mounts_protected);
}

/// The `mqueue` mount of `runsc spec`'s default mounts: a queue a process of the
/// container made is a file in `/dev/mqueue`, which is an `mqueue` mount there, and in
/// another `mqueue` mount of the spec.
fn mqueue_mounted(p: Platform) {
    let mq = integration::fixture("conf_mqueue", integration::Link::Static);
    let script = format!(
        "{} create /from-container && ls /dev/mqueue && stat -c '%a %s' /dev/mqueue/from-container \
         && ls /mq2 && grep ' /dev/mqueue ' /proc/mounts | cut -d' ' -f1-3",
        path_str(&mq)
    );
    let b = Bundle::new(p, &["/bin/sh", "-c", &script]);
    // A second mqueue mount elsewhere shows the same queues (one IPC namespace).
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().expect("mounts");
        assert!(mounts.iter().any(|m| m["type"] == "mqueue"), "{mounts:?}");
        mounts.push(serde_json::json!(
            {"destination": "/mq2", "type": "mqueue", "source": "mqueue"}
        ));
    });
    let r = b.run("mq");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (
            0,
            "from-container\n600 80\nfrom-container\nmqueue /dev/mqueue mqueue\n"
        ),
        "{r:#?}"
    );
}

/// A `devpts` mount's options: `ptmxmode=` for `ptmx`, `mode=` and `gid=` for new
/// terminals (the default spec's `newinstance,ptmxmode=0666,mode=0620,gid=5` changed);
/// an option devpts does not take is refused by `create`.
fn devpts_mount_options(p: Platform) {
    let code = "import os, pty\n\
                st = os.stat('/dev/pts/ptmx')\n\
                print(oct(st.st_mode & 0o7777))\n\
                m, r = pty.openpty()\n\
                st = os.fstat(r)\n\
                print(oct(st.st_mode & 0o7777), st.st_gid)\n";
    let b = Bundle::new(p, &["/usr/bin/python3", "-c", code]);
    let set = |opts: serde_json::Value| {
        move |c: &mut serde_json::Value| {
            let mounts = c["mounts"].as_array_mut().expect("mounts");
            let pts = mounts
                .iter_mut()
                .find(|m| m["type"] == "devpts")
                .expect("the default spec mounts devpts");
            pts["options"] = opts;
        }
    };
    let r = b.run("pts-default");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "0o666\n0o620 5\n"),
        "{r:#?}"
    );
    b.edit(set(serde_json::json!([
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0600",
        "mode=0640",
        "gid=7"
    ])));
    let r = b.run("pts-options");
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "0o600\n0o640 7\n"),
        "{r:#?}"
    );
    b.edit(set(serde_json::json!(["newinstance", "colour=blue"])));
    let r = b.run("pts-bad");
    assert_one_line_error(&r, 1, "devpts");
}

#[test]
fn devpts_options() {
    integration::run_on(Platform::Systrap, devpts_mount_options);
}

#[test]
fn mqueue_mount() {
    integration::run_on(Platform::Systrap, mqueue_mounted);
}

#[test]
fn process_spec() {
    integration::run_on(Platform::Systrap, process_spec_honoured);
}

#[test]
fn bad_process_spec() {
    integration::run_on(Platform::Systrap, bad_process_settings);
}

#[test]
fn features_and_unsupported_flags() {
    let r = integration::runsc_raw(&["features"]);
    r.assert_success("features");
    let f: serde_json::Value = serde_json::from_str(&r.stdout).expect("features JSON");
    assert_eq!(f["ociVersionMax"], "1.2.0");
    // runc's global flags that containerd and podman pass are accepted.
    let root = tempfile::tempdir().expect("root");
    let log = root.path().join("log.json");
    let r = integration::runsc_raw(&[
        "--root",
        path_str(root.path()),
        "--log",
        path_str(&log),
        "--log-format",
        "json",
        "--systemd-cgroup",
        "state",
        "nope",
    ]);
    assert_one_line_error(&r, 1, "does not exist");
    // The error is also in the log, as runc writes it (containerd's shim reads it).
    let logged = std::fs::read_to_string(&log).expect("log");
    let last: serde_json::Value =
        serde_json::from_str(logged.lines().last().expect("a log line")).expect("log JSON");
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .expect("msg")
            .contains("does not exist")
    );
}

/// A spec without a network namespace (as `podman --network=host` writes it) shares the
/// host's network: a client in the container reaches a server on the host's 127.0.0.1.
/// With the namespace (`runsc spec`'s default), 127.0.0.1 is the sandbox's own.
fn host_network_without_a_network_namespace(p: Platform) {
    use std::io::{Read, Write};
    let host = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = host.local_addr().expect("addr").port();
    let code = format!(
        "import socket, errno\n\
         try:\n    s = socket.create_connection(('127.0.0.1', {port}))\n\
         except OSError as e:\n    print(errno.errorcode[e.errno]); raise SystemExit\n\
         s.sendall(b'ping')\n\
         print(s.makefile().read())\n"
    );
    let b = Bundle::new(p, &["/usr/bin/python3", "-c", &code]);
    let r = b.run("own");
    assert_eq!(r.stdout, "ECONNREFUSED\n", "{r:#?}");
    let server = std::thread::spawn(move || {
        let (mut c, _) = host.accept().expect("accept");
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).expect("read");
        c.write_all(&[b"pong:".as_slice(), &buf].concat())
            .expect("write");
    });
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "network");
    });
    let r = b.run("host");
    server.join().expect("host server");
    assert_eq!((r.code, r.stdout.as_str()), (0, "pong:ping\n"), "{r:#?}");
}

on_every_platform!(
    lifecycle,
    kill_and_force_delete,
    run_waits_and_cleans_up,
    bad_inputs,
    pause_and_resume,
    host_network_without_a_network_namespace
);
