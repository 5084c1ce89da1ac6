//! podman runs containers with `runsc` as its OCI runtime (`podman --runtime <our runsc>
//! run --rm --rootfs DIR ...`, through conmon), with its storage in a temporary directory.
//! `scripts/test` installs Debian's `podman` when it is absent.

use std::process::Command;

use integration::{Link, Platform, Run, fixture, have_tool, path_str, run_command, runsc};

/// `podman --runtime <runsc> run --rm --network none --ulimit ... [EXTRA...] --rootfs DIR CMD...`.
fn podman_run(
    store: &tempfile::TempDir,
    rootfs: &std::path::Path,
    extra: &[&str],
    cmd: &[&str],
) -> Run {
    let mut c = Command::new("podman");
    c.arg("--runtime")
        .arg(runsc())
        .arg("--root")
        .arg(store.path().join("root"))
        .arg("--runroot")
        .arg(store.path().join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ])
        .args(["run", "--rm", "--network", "none"])
        // podman's default limits are above what the sandbox's host process may set here.
        .args([
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ])
        .args(extra)
        .arg("--rootfs")
        .arg(rootfs)
        .args(cmd);
    run_command(c, b"")
}

#[test]
fn podman_runs_containers_with_runsc() {
    if let Some((what, reason)) = integration::missing(Platform::Systrap) {
        test_require::skip(what, reason);
        return;
    }
    if !have_tool("/usr/bin/podman") || !have_tool("/usr/bin/conmon") {
        return;
    }
    let store = tempfile::tempdir().expect("podman storage");
    let root = tempfile::tempdir().expect("rootfs");
    std::fs::create_dir(root.path().join("bin")).expect("bin");
    for f in ["hello", "ending", "catfile"] {
        std::fs::copy(fixture(f, Link::Static), root.path().join("bin").join(f)).expect("copy");
    }
    let r = podman_run(&store, root.path(), &[], &["/bin/hello"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello, world\n"), "{r:#?}");
    let r = podman_run(&store, root.path(), &[], &["/bin/ending", "exit", "5"]);
    assert_eq!(r.code, 5, "{r:#?}");
    let host = tempfile::tempdir().expect("host dir");
    let content = integration::unique_name("podman");
    std::fs::write(host.path().join("f"), &content).expect("write");
    let vol = format!("{}:/data:ro", path_str(host.path()));
    let r = podman_run(
        &store,
        root.path(),
        &["-v", &vol],
        &["/bin/catfile", "/data/f"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, content.as_str()), "{r:#?}");
}
