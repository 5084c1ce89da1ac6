//! Linux conformance fixes found by LTP and CPython's tests (issue #13), each checked by a
//! C fixture `fixtures/conf_*.c` through `runsc do` on every platform, and natively where
//! running it on the host is harmless, so the expected results are Linux's own. Each
//! fixture prints one `ok <part>` line per part and exits with the failed step otherwise.

use integration::{Link, Platform, fixture, native, path_str, runsc_do};

integration::on_every_platform!(
    sysctls_are_private_writable_and_checked,
    scheduling_attributes_subreaper_and_cpu_clocks,
    pidfds_clone3_checks_and_resethand,
);

/// Runs fixture `name` in the sandbox with `args` and checks it printed exactly `parts`.
fn expect_parts(p: Platform, name: &str, args: &[&str], parts: &[&str]) {
    let exe = fixture(name, Link::Static);
    let mut cmd = vec![path_str(&exe)];
    cmd.extend_from_slice(args);
    let run = runsc_do(p, &[], &cmd);
    run.assert_success(name);
    let want: String = parts.iter().map(|s| format!("ok {s}\n")).collect();
    assert_eq!(run.stdout, want, "{run:#?}");
}

/// Runs fixture `name` natively, in a new PID namespace (so it is not confused by the
/// test runner's own process tree), and checks it printed exactly `parts`.
fn expect_native_parts(name: &str, parts: &[&str]) {
    let exe = fixture(name, Link::Static);
    let run = native(&["unshare", "--pid", "--fork", "--kill-child", path_str(&exe)]);
    run.assert_success(name);
    let want: String = parts.iter().map(|s| format!("ok {s}\n")).collect();
    assert_eq!(run.stdout, want, "natively: {run:#?}");
}

fn sysctls_are_private_writable_and_checked(p: Platform) {
    // Not natively: it writes sysctls, which would change the host.
    expect_parts(
        p,
        "conf_sysctl",
        &[],
        &["sysctl", "sysctl permissions", "oom_score_adj"],
    );
}

fn scheduling_attributes_subreaper_and_cpu_clocks(p: Platform) {
    let parts = [
        "nice",
        "scheduler",
        "affinity",
        "timer slack",
        "subreaper",
        "cpu clocks",
    ];
    expect_native_parts("conf_sched", &parts);
    expect_parts(p, "conf_sched", &["sandbox"], &parts);
}

fn pidfds_clone3_checks_and_resethand(p: Platform) {
    let parts = [
        "pidfd_open poll waitid",
        "pidfd_send_signal pidfd_getfd",
        "clone3",
        "SA_RESETHAND keeps SA_SIGINFO",
    ];
    expect_native_parts("conf_pidfd", &parts);
    expect_parts(p, "conf_pidfd", &[], &parts);
}
