//! Helpers shared by the Sentry's end-to-end unit tests (compiled for tests only).

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use platform::Platform;

use crate::{ExitStatus, SandboxConfig};

/// Runs `argv` through [`crate::run_sandbox`] with `root` served read-only by an
/// in-process Gofer (no confinement), stdin and stderr on `/dev/null`. Returns the exit
/// status, everything written to stdout, and the Gofer's thread (which ends once the
/// sandbox has hung up).
pub(crate) fn run_over_gofer(
    platform: Arc<dyn Platform>,
    root: &Path,
    argv: &[&str],
    envp: &[&str],
    cwd: &str,
) -> (
    ExitStatus,
    String,
    JoinHandle<Result<(), gofer::GoferError>>,
) {
    let (client, server) = lisafs_proto::socketpair().unwrap();
    let host_root = root.to_path_buf();
    let gofer = std::thread::spawn(move || {
        gofer::serve(
            &host_root,
            server,
            gofer::GoferOptions {
                read_only: true,
                confine: false,
                threads: 2,
            },
        )
    });
    let (mut out_r, out_w) = std::io::pipe().unwrap();
    let null = OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    let err = OwnedFd::from(
        std::fs::File::options()
            .write(true)
            .open("/dev/null")
            .unwrap(),
    );
    let config = SandboxConfig {
        argv: argv.iter().map(|s| s.as_bytes().to_vec()).collect(),
        envp: envp.iter().map(|s| s.as_bytes().to_vec()).collect(),
        cwd: cwd.into(),
        uid: 0,
        gid: 0,
        hostname: "sentry-test".into(),
        stdio: [null, OwnedFd::from(out_w), err],
        gofer: Some(client),
        strace: std::env::var_os("SENTRY_TEST_STRACE").is_some(),
        mounts: Vec::new(),
        files: Vec::new(),
        filter: None,
        recorder: None,
        cpu_budget: None,
        console_signals: None,
        host_network: false,
        ethernet: None,
        memory_limit: None,
    };
    // Read stdout on the side so a leaked write end fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = out_r.read_to_string(&mut out);
        let _ = tx.send(out);
    });
    let status = crate::run_sandbox(platform, config).unwrap();
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("stdout closed after the sandbox ends");
    (status, out, gofer)
}
