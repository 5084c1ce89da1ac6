//! CPU-time accounting (issue #13's "CPU-time clocks must count CPU time"): the fixture
//! `fixtures/conf_cputime.c` checks clocks, `getrusage`, `times`, `wait4`'s rusage,
//! `/proc` stat times, CPU timers and `RLIMIT_CPU` against the elapsed time of the same
//! run, natively (so that its expectations are Linux's own) and through `runsc do` on
//! every platform.

use integration::{Link, Platform, fixture, native, path_str, runsc_do};

integration::on_every_platform!(
    cpu_clocks_count_cpu_time_not_wall_time,
    rlimit_cpu_sends_sigxcpu_then_sigkill,
);

const PARTS: [&str; 6] = [
    "sleep",
    "busy",
    "system",
    "children",
    "clockids",
    "nanosleep",
];

fn expect(p: Option<Platform>, args: &[&str], parts: &[&str]) {
    let exe = fixture("conf_cputime", Link::Static);
    let mut cmd = vec![path_str(&exe)];
    cmd.extend_from_slice(args);
    let run = match p {
        Some(p) => runsc_do(p, &[], &cmd),
        None => {
            let mut n = vec!["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];
            n.extend_from_slice(&cmd);
            native(&n)
        }
    };
    run.assert_success(&format!("conf_cputime on {p:?} (None: natively)"));
    let want: String = parts.iter().map(|s| format!("ok {s}\n")).collect();
    assert_eq!(run.stdout, want, "{p:?}: {run:#?}");
}

fn cpu_clocks_count_cpu_time_not_wall_time(p: Platform) {
    expect(None, &[], &PARTS);
    expect(Some(p), &[], &PARTS);
}

fn rlimit_cpu_sends_sigxcpu_then_sigkill(p: Platform) {
    expect(None, &["rlimit"], &["rlimit"]);
    expect(Some(p), &["rlimit"], &["rlimit"]);
}
