//! Pods: several containers in one sandbox, as containerd's CRI plugin makes them. The
//! pod's sandbox container (`io.kubernetes.cri.container-type: sandbox`) is a sandbox's
//! root, as any container; a container whose annotations name it
//! (`container-type: container`, `io.kubernetes.cri.sandbox-id: <its id>`) runs in that
//! sandbox's kernel with its own root file system (its bundle's rootfs, served by a Gofer
//! of its own), its own mounts and its own process. Each is driven by the usual commands;
//! its `--pid-file` process carries its status.

use std::path::{Path, PathBuf};

use integration::{
    Bundle, Platform, Run, assert_one_line_error, on_every_platform, read_pid, subreaper, wait_pid,
};

const TYPE: &str = "io.kubernetes.cri.container-type";
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// A container bundle of the pod: a root file system of its own (the host's program
/// directories bound read-only into it, plus `files`) and the sandbox container's
/// `config.json` with `args` and the annotations that put it in pod `sandbox`.
struct Member {
    dir: tempfile::TempDir,
}

impl Member {
    fn new(pod: &Bundle, sandbox: &str, args: &[&str], files: &[(&str, &str)]) -> Member {
        let dir = tempfile::tempdir().expect("bundle dir");
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).expect("rootfs");
        let mut mounts: Vec<serde_json::Value> = Vec::new();
        for d in ["usr", "bin", "sbin", "lib", "lib64", "etc"] {
            let host = Path::new("/").join(d);
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&host).expect("readlink");
                std::os::unix::fs::symlink(target, rootfs.join(d)).expect("symlink");
            } else {
                std::fs::create_dir(rootfs.join(d)).expect("mkdir");
                mounts.push(serde_json::json!({
                    "destination": format!("/{d}"),
                    "type": "bind",
                    "source": host,
                    "options": ["rbind", "ro"],
                }));
            }
        }
        for (path, text) in files {
            let p = rootfs.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(pod.config()).expect("read config"))
                .expect("parse config");
        c["root"] = serde_json::json!({ "path": "rootfs", "readonly": false });
        c["process"]["args"] = serde_json::json!(args);
        c["mounts"].as_array_mut().expect("mounts").extend(mounts);
        c["annotations"] = serde_json::json!({ TYPE: "container", SANDBOX_ID: sandbox });
        std::fs::write(
            dir.path().join("config.json"),
            serde_json::to_vec(&c).expect("json"),
        )
        .expect("write config");
        Member { dir }
    }

    /// Changes the bundle's `config.json`.
    fn edit(&self, f: impl FnOnce(&mut serde_json::Value)) {
        let path = self.dir.path().join("config.json");
        let mut c: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("parse");
        f(&mut c);
        std::fs::write(&path, serde_json::to_vec(&c).expect("json")).expect("write config");
    }

    /// `create` with this bundle in the pod's state root; the container's stdout goes
    /// to a file. Returns the run, the stdout file and the pid file.
    fn create(&self, pod: &Bundle, id: &str) -> (Run, PathBuf, PathBuf) {
        let pid_file = self.dir.path().join(format!("{id}.pid"));
        let (run, out) = pod.create_bundle(self.dir.path(), id, &pid_file);
        (run, out, pid_file)
    }
}

/// The pod's sandbox container: a pause-like init that only waits.
fn sandbox(p: Platform, id: &str) -> (Bundle, i32) {
    let b = Bundle::new(p, &["/bin/sleep", "100000"]);
    b.edit(|c| c["annotations"] = serde_json::json!({ TYPE: "sandbox", SANDBOX_ID: id }));
    let pid_file = b.dir.path().join("pod.pid");
    let (run, _) = b.create(id, &pid_file);
    assert_eq!(run.code, 0, "create the sandbox: {run:#?}");
    b.runsc(&["start", id]).assert_success("start the sandbox");
    (b, read_pid(&pid_file))
}

fn pids(b: &Bundle, id: &str) -> Vec<i32> {
    let r = b.runsc(&["ps", "--format", "json", id]);
    r.assert_success("ps");
    serde_json::from_str(&r.stdout).expect("ps JSON")
}

fn wait_status(b: &Bundle, id: &str) -> serde_json::Value {
    let r = b.runsc(&["wait", id]);
    r.assert_success("wait");
    let w: serde_json::Value = serde_json::from_str(&r.stdout).expect("wait JSON");
    w["exitStatus"].clone()
}

fn two_containers_in_one_sandbox(p: Platform) {
    subreaper();
    let (pod, pod_pid) = sandbox(p, "pod");
    let a = Member::new(
        &pod,
        "pod",
        &[
            "/bin/sh",
            "-c",
            "trap 'echo bye; exit 7' TERM; cat /only-a; echo started; while :; do sleep 1; done",
        ],
        &[("/only-a", "in a\n"), ("/adir/note", "note of a\n")],
    );
    // b ends with status 3 once told to (a file an exec'd process makes).
    let b = Member::new(
        &pod,
        "pod",
        &[
            "/bin/sh",
            "-c",
            "cat /only-b; while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3",
        ],
        &[("/only-b", "in b\n")],
    );
    let (run, a_out, a_pid_file) = a.create(&pod, "a");
    assert_eq!(run.code, 0, "create a: {run:#?}");
    let (run, b_out, b_pid_file) = b.create(&pod, "b");
    assert_eq!(run.code, 0, "create b: {run:#?}");
    let (a_pid, b_pid) = (read_pid(&a_pid_file), read_pid(&b_pid_file));
    assert_eq!(pod.state("a")["status"], "created");
    assert_eq!(pod.state("a")["pid"], a_pid);
    assert_eq!(std::fs::read_to_string(&a_out).expect("a out"), "");
    pod.runsc(&["start", "a"]).assert_success("start a");
    pod.runsc(&["start", "b"]).assert_success("start b");
    assert_eq!(pod.state("a")["status"], "running");
    assert_one_line_error(&pod.runsc(&["start", "a"]), 1, "already running");

    // Each sees its own root and not the other's, nor the sandbox container's (`/`).
    let r = pod.runsc(&[
        "exec",
        "a",
        "/bin/sh",
        "-c",
        "cat /only-a; ls /only-b /work 2>/dev/null; echo $?",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "in a\n2\n"), "{r:#?}");
    let r = pod.runsc(&[
        "exec",
        "b",
        "/bin/sh",
        "-c",
        "cat /only-b; ls /only-a /adir 2>/dev/null; echo $?",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "in b\n2\n"), "{r:#?}");
    // The working directory is looked up in the container's root; /proc works there
    // and lists only the container's own mounts.
    let r = pod.runsc(&[
        "exec",
        "--cwd",
        "/adir",
        "a",
        "/bin/sh",
        "-c",
        "pwd; cat note; cat /proc/self/comm; grep -c only-b /proc/mounts; exit 4",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (4, "/adir\nnote of a\ncat\n0\n"),
        "{r:#?}"
    );
    assert_one_line_error(
        &pod.runsc(&["exec", "--cwd", "/adir", "b", "/bin/true"]),
        1,
        "/adir",
    );
    // Writes stay in the container's own tree.
    pod.runsc(&["exec", "a", "/bin/sh", "-c", "echo x > /tmp/from-a"])
        .assert_success("write in a");
    let r = pod.runsc(&["exec", "b", "/bin/sh", "-c", "test -e /tmp/from-a; echo $?"]);
    assert_eq!(r.stdout, "1\n", "{r:#?}");

    // ps lists each container's processes only.
    let (pa, pb, pp) = (pids(&pod, "a"), pids(&pod, "b"), pids(&pod, "pod"));
    assert!(!pa.is_empty() && !pb.is_empty(), "{pa:?} {pb:?}");
    assert_eq!(pp, vec![1], "the sandbox container's processes");
    assert!(
        pa.iter().all(|p| !pb.contains(p) && *p != 1),
        "{pa:?} {pb:?}"
    );

    // Killing a leaves b and the sandbox running; a's status comes out of `wait` and
    // of its pid file's process.
    pod.runsc(&["kill", "a", "TERM"]).assert_success("kill a");
    assert_eq!(wait_status(&pod, "a"), 7);
    assert_eq!(wait_pid(a_pid), 7);
    assert_eq!(pod.state("a")["status"], "stopped");
    assert_eq!(
        std::fs::read_to_string(&a_out).expect("a out"),
        "in a\nstarted\nbye\n"
    );
    assert_one_line_error(&pod.runsc(&["exec", "a", "/bin/true"]), 1, "not running");
    assert_eq!(pod.state("b")["status"], "running");
    assert_eq!(pod.state("pod")["status"], "running");
    pod.runsc(&["delete", "a"]).assert_success("delete a");
    assert!(!pod.state_dir("a").exists());

    // b's own exit status, told by an exec'd process.
    pod.runsc(&["exec", "b", "/bin/touch", "/tmp/go"])
        .assert_success("exec touch");
    assert_eq!(wait_status(&pod, "b"), 3);
    assert_eq!(wait_pid(b_pid), 3);
    assert_eq!(std::fs::read_to_string(&b_out).expect("b out"), "in b\n");
    pod.runsc(&["delete", "b"]).assert_success("delete b");

    // The id of a container that was deleted can be used again in the same sandbox;
    // `kill --all` reaches every process of the container and only those.
    let (run, _, c_pid_file) = b.create(&pod, "b");
    assert_eq!(run.code, 0, "create b again: {run:#?}");
    let c_pid = read_pid(&c_pid_file);
    pod.runsc(&["start", "b"]).assert_success("start b again");
    pod.runsc(&[
        "exec",
        "b",
        "/bin/sh",
        "-c",
        "/bin/sleep 100000 </dev/null >/dev/null 2>&1 &",
    ])
    .assert_success("exec a background sleep");
    let before = pids(&pod, "b");
    assert!(before.len() >= 2, "init and the orphaned sleep: {before:?}");
    pod.runsc(&["kill", "--all", "b", "KILL"])
        .assert_success("kill --all");
    assert_eq!(wait_pid(c_pid), 128 + libc::SIGKILL);
    assert_eq!(pod.state("b")["status"], "stopped");
    assert_eq!(pod.state("pod")["status"], "running");
    assert_eq!(pids(&pod, "pod"), vec![1]);
    pod.runsc(&["delete", "b"]).assert_success("delete b");

    // Deleting the sandbox container ends the containers still in it.
    let (run, _, d_pid_file) = a.create(&pod, "d");
    assert_eq!(run.code, 0, "create d: {run:#?}");
    let d_pid = read_pid(&d_pid_file);
    pod.runsc(&["start", "d"]).assert_success("start d");
    pod.runsc(&["delete", "--force", "pod"])
        .assert_success("delete the sandbox");
    assert_eq!(wait_pid(pod_pid), 128 + libc::SIGKILL);
    assert_eq!(wait_pid(d_pid), 128 + libc::SIGKILL);
    assert_eq!(pod.state("d")["status"], "stopped");
    pod.runsc(&["delete", "d"]).assert_success("delete d");
}

fn bad_pod_inputs(p: Platform) {
    subreaper();
    let (pod, pod_pid) = sandbox(p, "pod");
    let m = Member::new(&pod, "nosuch", &["/bin/true"], &[]);
    let (run, _, _) = m.create(&pod, "x");
    assert_one_line_error(&run, 1, "sandbox nosuch does not exist");
    assert!(!pod.state_dir("x").exists());

    // A container id that is taken (by the sandbox container itself here).
    let m = Member::new(&pod, "pod", &["/bin/sleep", "100000"], &[]);
    let (run, _, _) = m.create(&pod, "pod");
    assert_eq!(run.code, 1, "{run:#?}");
    assert_eq!(pod.state("pod")["status"], "running");
    let (run, _, c_pid_file) = m.create(&pod, "c");
    assert_eq!(run.code, 0, "{run:#?}");
    let (run, _, _) = m.create(&pod, "c");
    assert_one_line_error(&run, 1, "already exists");
    assert_eq!(pod.state("c")["status"], "created");

    // A container of the pod is not a sandbox.
    let m2 = Member::new(&pod, "c", &["/bin/true"], &[]);
    let (run, _, _) = m2.create(&pod, "y");
    assert_one_line_error(&run, 1, "not a sandbox");
    assert!(!pod.state_dir("y").exists());

    // A missing program is reported by create, as for any container.
    let m3 = Member::new(&pod, "pod", &["/no/such/program"], &[]);
    let (run, _, _) = m3.create(&pod, "z");
    assert_one_line_error(&run, 1, "/no/such/program");
    assert!(!pod.state_dir("z").exists());

    // A sandbox that has stopped takes no more containers.
    pod.runsc(&["kill", "pod", "KILL"])
        .assert_success("kill the sandbox");
    assert_eq!(wait_pid(pod_pid), 128 + libc::SIGKILL);
    assert_eq!(wait_pid(read_pid(&c_pid_file)), 128 + libc::SIGKILL);
    let (run, _, _) = m.create(&pod, "late");
    assert_one_line_error(&run, 1, "is not running");
    assert!(!pod.state_dir("late").exists());
}

/// A seccomp section that refuses `mkdir` and `mkdirat` with `errno`.
fn refuse_mkdir(errno: u32) -> serde_json::Value {
    serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno }
        ]
    })
}

/// Each container of a pod has its own `linux.seccomp`, as with runc: the sandbox
/// container's section does not reach the others, and another's own applies to its
/// processes only.
fn each_container_has_its_own_seccomp(p: Platform) {
    subreaper();
    let pod = Bundle::new(p, &["/bin/sleep", "100000"]);
    pod.edit(|c| {
        c["annotations"] = serde_json::json!({ TYPE: "sandbox", SANDBOX_ID: "sc" });
        c["linux"]["seccomp"] = refuse_mkdir(1);
    });
    let pid_file = pod.dir.path().join("pod.pid");
    let (run, _) = pod.create("sc", &pid_file);
    assert_eq!(run.code, 0, "create the sandbox: {run:#?}");
    pod.runsc(&["start", "sc"])
        .assert_success("start the sandbox");
    let pod_pid = read_pid(&pid_file);
    let script = "mkdir /tmp/made 2>/dev/null && echo made || echo refused";
    // Built from the pod's config: `free` drops the sandbox container's section,
    // `own` has one of its own (EACCES, 13).
    let free = Member::new(&pod, "sc", &["/bin/sh", "-c", script], &[]);
    free.edit(|c| {
        c["linux"].as_object_mut().expect("linux").remove("seccomp");
    });
    let own = Member::new(&pod, "sc", &["/bin/sh", "-c", script], &[]);
    own.edit(|c| c["linux"]["seccomp"] = refuse_mkdir(13));
    for (m, id, want) in [(&free, "free", "made\n"), (&own, "own", "refused\n")] {
        let (run, out, pid_file) = m.create(&pod, id);
        assert_eq!(run.code, 0, "create {id}: {run:#?}");
        pod.runsc(&["start", id]).assert_success("start");
        assert_eq!(wait_pid(read_pid(&pid_file)), 0, "{id}");
        assert_eq!(std::fs::read_to_string(&out).expect("out"), want, "{id}");
        pod.runsc(&["delete", id]).assert_success("delete");
    }
    // The sandbox container's own processes keep its section.
    let r = pod.runsc(&["exec", "sc", "/bin/sh", "-c", script]);
    assert_eq!(r.stdout, "refused\n", "{r:#?}");
    pod.runsc(&["delete", "--force", "sc"])
        .assert_success("delete the sandbox");
    assert_eq!(wait_pid(pod_pid), 128 + libc::SIGKILL);
}

on_every_platform!(
    two_containers_in_one_sandbox,
    bad_pod_inputs,
    each_container_has_its_own_seccomp
);
