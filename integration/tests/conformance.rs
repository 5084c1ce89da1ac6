//! Linux conformance fixes found by LTP and CPython's tests (issue #13), each checked by a
//! C fixture `fixtures/conf_*.c` through `runsc do` on every platform, and natively where
//! running it on the host is harmless, so the expected results are Linux's own. Each
//! fixture prints one `ok <part>` line per part and exits with the failed step otherwise.

use integration::{Link, Platform, fixture, have_tool, native, path_str, runsc_do};

integration::on_every_platform!(
    sysctls_are_private_writable_and_checked,
    scheduling_attributes_subreaper_and_cpu_clocks,
    pidfds_clone3_checks_and_resethand,
    file_locks_posix_ofd_and_flock,
    sqlite_writers_exclude_each_other,
    mmap_errno_order_and_noatime,
    pseudo_terminals_match_linux,
    socket_errors_match_linux,
    set_id_bits_match_linux,
    lookups_fail_as_linux,
    file_size_limit_matches_linux,
    unshare_files_and_fs,
    sync_calls_on_files_without_data,
    signal_driven_io,
    posix_message_queues_match_linux,
    inotify_matches_linux,
    extended_attributes_match_linux,
    tee_vmsplice_and_splice_checks,
    statx_personality_and_getcpu,
    cross_process_calls_match_linux,
    system_v_ipc_matches_linux,
);

/// statx's checks and its mount id and device against `/proc/self/mountinfo`,
/// `personality` values and `STICKY_TIMEOUTS`, `getcpu` within the affinity,
/// `memfd_create`'s name limit, positioned writes with `O_APPEND`/`RWF_APPEND`, RWF
/// flags, `ESPIPE` on pipes and `RENAME_EXCHANGE`.
fn statx_personality_and_getcpu(p: Platform) {
    let parts = ["statx", "personality", "getcpu", "memfd name", "rw"];
    expect_native_parts("conf_misc", &parts);
    expect_parts(p, "conf_misc", &[], &parts);
}

/// `tee`, `vmsplice` and `splice`'s argument checks.
fn tee_vmsplice_and_splice_checks(p: Platform) {
    let parts = ["tee", "vmsplice", "splice"];
    expect_native_parts("conf_splice", &parts);
    expect_parts(p, "conf_splice", &[], &parts);
}

/// System V IPC: ids of index and sequence, the `*_STAT`/`*_STAT_ANY`/`*_INFO` commands,
/// `/proc/sysvipc`, the `kernel.*_next_id` and limit sysctls, `SHM_LOCK`, `shmat`/`shmdt`
/// address rules and `MSG_COPY`. Natively in an IPC namespace of its own (so the host's
/// objects are not seen, and its IPC sysctls are the namespace's).
fn system_v_ipc_matches_linux(p: Platform) {
    let parts = [
        "ids",
        "stat any and shm lock",
        "proc sysvipc",
        "sysctls",
        "shm attach",
        "msg copy",
    ];
    let exe = fixture("conf_sysvipc", Link::Static);
    let args = ["--ipc", "--pid", "--fork", "--kill-child", path_str(&exe)];
    let mut cmd = vec!["unshare"];
    cmd.extend_from_slice(&args);
    let run = native(&cmd);
    run.assert_success("conf_sysvipc");
    let want: String = parts.iter().map(|s| format!("ok {s}\n")).collect();
    assert_eq!(run.stdout, want, "natively: {run:#?}");
    expect_parts(p, "conf_sysvipc", &[], &parts);
}

/// Extended attributes: `user.*` and `trusted.*` through paths and descriptors, flags,
/// sizes, file types, permissions, and the `IN_ATTRIB` they report.
fn extended_attributes_match_linux(p: Platform) {
    let parts = ["user", "types", "fd", "privilege", "inotify"];
    expect_native_parts("conf_xattr", &parts);
    expect_parts(p, "conf_xattr", &[], &parts);
}

/// inotify: argument checks, the events of files and directories (names, cookies,
/// `IN_MOVE_SELF`, `IN_DELETE_SELF`, `IN_IGNORED`), the watch flags, the read format and
/// the queue's overflow.
fn inotify_matches_linux(p: Platform) {
    let parts = ["args", "file", "dir", "flags", "read", "overflow"];
    expect_native_parts("conf_inotify", &parts);
    expect_parts(p, "conf_inotify", &[], &parts);
}

/// `FIOASYNC`, `F_SETOWN`/`F_SETOWN_EX`/`F_SETSIG` and the I/O signals of `O_ASYNC`.
fn signal_driven_io(p: Platform) {
    let parts = ["fioasync", "owner", "sigio", "setsig", "pipe"];
    expect_native_parts("conf_sigio", &parts);
    expect_parts(p, "conf_sigio", &[], &parts);
}

/// `fsync`/`fdatasync`/`sync_file_range` on pipes, sockets and devices.
fn sync_calls_on_files_without_data(p: Platform) {
    let parts = ["fsync", "sync_file_range"];
    expect_native_parts("conf_sync", &parts);
    expect_parts(p, "conf_sync", &[], &parts);
}

/// POSIX message queues (`mq_*`): names, attributes, priorities, blocking, timeouts,
/// notification, poll, fork, the read line, `RLIMIT_MSGQUEUE`, `/proc/self/fd` and the
/// queues in `/dev/mqueue`. Natively in IPC and mount namespaces of its own, with an
/// `mqueue` mounted at a private `/dev/mqueue` (a tmpfs over `/dev` there).
fn posix_message_queues_match_linux(p: Platform) {
    let parts = [
        "names and attributes",
        "priorities",
        "nonblock and timeouts",
        "EINTR and SA_RESTART",
        "notify signal",
        "notify thread",
        "poll and fork",
        "rlimit",
        "proc fd",
        "dev mqueue",
    ];
    let exe = fixture("conf_mqueue", Link::Static);
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs none /mnt && mkdir /mnt/mqueue \
         && mount -t mqueue none /mnt/mqueue && mount --rbind /mnt /dev && exec {} sandbox",
        path_str(&exe)
    );
    // One native run at a time: RLIMIT_MSGQUEUE counts the queues of the host's root in
    // every IPC namespace, and the fixture lowers it to two queues.
    static NATIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let guard = NATIVE.lock().unwrap_or_else(|e| e.into_inner());
    let run = native(&[
        "unshare",
        "--pid",
        "--ipc",
        "--mount",
        "--fork",
        "--kill-child",
        "sh",
        "-c",
        &script,
    ]);
    drop(guard);
    run.assert_success("conf_mqueue");
    let want: String = parts.iter().map(|s| format!("ok {s}\n")).collect();
    assert_eq!(run.stdout, want, "natively: {run:#?}");
    expect_parts(p, "conf_mqueue", &["sandbox"], &parts);
}

/// `unshare(CLONE_FILES/CLONE_FS)` and `close_range(CLOSE_RANGE_UNSHARE)`.
fn unshare_files_and_fs(p: Platform) {
    let parts = ["close_range unshare", "unshare files", "unshare fs"];
    expect_native_parts("conf_unshare", &parts);
    expect_parts(p, "conf_unshare", &[], &parts);
}

/// `RLIMIT_FSIZE`: writes cut at the limit, `EFBIG` and `SIGXFSZ` past it, truncates.
fn file_size_limit_matches_linux(p: Platform) {
    let parts = ["write", "truncate", "pipes unlimited", "sigxfsz"];
    expect_native_parts("conf_fsize", &parts);
    expect_parts(p, "conf_fsize", &[], &parts);
}

/// Negative pids, an empty readlink path, the domain name in /proc, O_PATH to epoll,
/// SCHED_DEADLINE's priorities, VmSwap.
fn lookups_fail_as_linux(p: Platform) {
    let parts = [
        "negative pids",
        "readlink",
        "domainname",
        "descriptors and policies",
        "status",
    ];
    expect_native_parts("conf_lookup", &parts);
    expect_parts(p, "conf_lookup", &[], &parts);
}

/// Set-ID bits: mkdir's mask, setgid directories, chown dropping set-ID.
fn set_id_bits_match_linux(p: Platform) {
    let parts = ["setgid directories", "chown drops set-id"];
    expect_native_parts("conf_setid", &parts);
    expect_parts(p, "conf_setid", &[], &parts);
}

/// The socket calls' errors: types and protocols, address out-parameters, unsupported
/// flags, unknown option levels, ioctls with bad pointers, a privileged port.
fn socket_errors_match_linux(p: Platform) {
    let parts = [
        "socket types",
        "names",
        "flags",
        "options",
        "privileged port",
    ];
    expect_native_parts("conf_sockerr", &parts);
    expect_parts(p, "conf_sockerr", &[], &parts);
}

/// `/dev/ptmx` and devpts: numbering, locking, names, the line discipline, readiness and
/// job control on a pseudo-terminal (`^C`, `SIGTTIN`/`SIGTTOU`, `SIGWINCH`, hang-up).
fn pseudo_terminals_match_linux(p: Platform) {
    let parts = [
        "openpty",
        "line discipline",
        "poll",
        "signal keys",
        "background",
        "window size",
        "hangup",
    ];
    expect_native_parts("conf_pty", &parts);
    expect_parts(p, "conf_pty", &["sandbox"], &parts);
}

fn mmap_errno_order_and_noatime(p: Platform) {
    let parts = ["mmap errno order", "O_NOATIME"];
    expect_native_parts("conf_mmap", &parts);
    expect_parts(p, "conf_mmap", &[], &parts);
}

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
        &["sysctl", "sysctl permissions", "oom_score_adj", "uts"],
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
        "sched_attr",
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

/// Shared anonymous memory across `fork`, `process_vm_readv`/`process_vm_writev`, `kcmp`, `pidfd_send_signal` through a
/// `/proc/<pid>` directory, `waitid` on a non-blocking pidfd and `PIDFD_GET_INFO`.
fn cross_process_calls_match_linux(p: Platform) {
    let parts = [
        "shared anonymous memory",
        "process_vm",
        "kcmp",
        "pidfd_send_signal /proc",
        "waitid nonblocking pidfd",
        "PIDFD_GET_INFO",
    ];
    expect_native_parts("conf_procx", &parts);
    expect_parts(p, "conf_procx", &[], &parts);
}

fn file_locks_posix_ofd_and_flock(p: Platform) {
    let parts = [
        "posix locks",
        "close and exit release",
        "ofd locks",
        "flock",
        "blocked waiter woken by unlock",
        "EDEADLK",
        "EINTR and SA_RESTART",
        "/proc/locks",
        "execve keeps locks",
        "leases",
    ];
    // Natively with its own /proc, so the fixture finds its children there by their pids.
    let exe = fixture("conf_locks", Link::Static);
    let scratch = integration::scratch_dir();
    let dir = path_str(scratch.path());
    let args = ["--pid", "--fork", "--kill-child", "--mount-proc"];
    let mut cmd = vec!["unshare"];
    cmd.extend_from_slice(&args);
    cmd.extend_from_slice(&[path_str(&exe), dir]);
    let run = native(&cmd);
    run.assert_success("conf_locks");
    let want: String = parts.iter().map(|s| format!("ok {s}\n")).collect();
    assert_eq!(run.stdout, want, "natively: {run:#?}");
    // In the sandbox: in /tmp (the overlay's memory upper) and in a directory of the
    // host's tree served by the Gofer.
    expect_parts(p, "conf_locks", &[], &parts);
    expect_parts(p, "conf_locks", &[dir], &parts);
}

/// A shell script in which one sqlite3 holds an exclusive transaction open while a
/// second one tries to write: the second must find the database locked, then succeed
/// once the first commits.
const SQLITE_WRITERS: &str = r#"
set -e
d=$(mktemp -d)
cd "$d"
sqlite3 db 'CREATE TABLE t(x);'
mkfifo in out
sqlite3 db <in >out &
exec 3>in 4<out
printf 'BEGIN EXCLUSIVE;\nINSERT INTO t VALUES(1);\n.print held\n' >&3
read held <&4
echo "first: $held"
if sqlite3 db 'INSERT INTO t VALUES(2);' 2>err; then
    echo "second: wrote while the first held the lock"
else
    echo "second: $(cat err)"
fi
printf 'COMMIT;\n' >&3
exec 3>&-
wait
sqlite3 db 'INSERT INTO t VALUES(3); SELECT group_concat(x) FROM t;'
cd /
rm -r "$d"
"#;

fn sqlite_writers_exclude_each_other(p: Platform) {
    if !have_tool("/usr/bin/sqlite3") {
        test_require::skip("tools", "no /usr/bin/sqlite3 (apt-get install sqlite3)");
        return;
    }
    let want = "first: held\nsecond: Error: in prepare, database is locked (5)\n1,3\n";
    let run = native(&["/bin/sh", "-c", SQLITE_WRITERS]);
    run.assert_success("sqlite3 natively");
    assert_eq!(run.stdout, want, "natively: {run:#?}");
    let run = runsc_do(p, &[], &["/bin/sh", "-c", SQLITE_WRITERS]);
    run.assert_success("sqlite3");
    assert_eq!(run.stdout, want, "{run:#?}");
}
