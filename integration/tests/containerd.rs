//! containerd drives `runsc` as its OCI runtime through the runc v2 shim
//! (`ctr run --runc-binary <our runsc>`), as on a node. The test starts its own containerd
//! (no systemd here) on a socket in a temporary directory, with the CRI plugin off, and
//! stops it at the end. `scripts/test` installs Debian's `containerd` when it is absent.

use integration::{Containerd, Link, Platform, fixture, have_tool, path_str};

/// A root file system with the static fixtures the tests run.
fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("rootfs");
    std::fs::create_dir(dir.path().join("bin")).expect("bin");
    for f in ["hello", "ending", "catfile", "writefile"] {
        std::fs::copy(fixture(f, Link::Static), dir.path().join("bin").join(f)).expect("copy");
    }
    dir
}

fn available() -> bool {
    if let Some((what, reason)) = integration::missing(Platform::Systrap) {
        test_require::skip(what, reason);
        return false;
    }
    have_tool("/usr/bin/containerd")
        && have_tool("/usr/bin/ctr")
        && have_tool("/usr/bin/containerd-shim-runc-v2")
}

#[test]
fn ctr_runs_containers_with_runsc() {
    if !available() {
        return;
    }
    let ctd = Containerd::start();
    let root = rootfs();
    let r = ctd.run(root.path(), &[], "hello", &["/bin/hello"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "hello, world\n"), "{r:#?}");
    // The container's exit status comes out of the shim (it waits on the pid file's pid).
    let r = ctd.run(root.path(), &[], "exit3", &["/bin/ending", "exit", "3"]);
    assert_eq!(r.code, 3, "{r:#?}");
    let r = ctd.run(root.path(), &[], "killed", &["/bin/ending", "kill", "9"]);
    assert_eq!(r.code, 128 + libc::SIGKILL, "{r:#?}");

    // A read-only bind mount of a host directory, served by a Gofer of its own.
    let host = tempfile::tempdir().expect("host dir");
    let content = integration::unique_name("bind");
    std::fs::write(host.path().join("file"), &content).expect("write");
    let bind = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        path_str(host.path())
    );
    let r = ctd.run(
        root.path(),
        &["--mount", &bind],
        "bind-read",
        &["/bin/catfile", "/data/file"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, content.as_str()), "{r:#?}");
    let r = ctd.run(
        root.path(),
        &["--mount", &bind],
        "bind-ro",
        &["/bin/writefile", "/data/new"],
    );
    assert_eq!(r.code, 1, "{r:#?}");
    assert!(r.stderr.contains("Read-only file system"), "{r:#?}");
    assert!(!host.path().join("new").exists());

    // A read-write bind mount: the file written (and fsynced) in the container is on the
    // host, with what was written, once the container has gone.
    let rw = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        path_str(host.path())
    );
    let r = ctd.run(
        root.path(),
        &["--mount", &rw],
        "bind-rw",
        &["/bin/writefile", "/data/new"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "ok\n"), "{r:#?}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("new")).expect("written on the host"),
        "written in the sandbox\n"
    );
    // The host file's old content is still readable through it.
    let r = ctd.run(
        root.path(),
        &["--mount", &rw],
        "bind-rw-read",
        &["/bin/catfile", "/data/file"],
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, content.as_str()), "{r:#?}");
}
