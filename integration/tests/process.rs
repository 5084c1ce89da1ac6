//! Processes, threads, signals, futexes and timers through `runsc do`, on every platform:
//! C fixtures (`fixtures/proc_*.c`, `fixtures/sig_*.c`) check the precise semantics
//! (wait options, signal frames, restart rules, futex operations) and print one `ok:` line
//! per part; real programs (sh, bash job control, make -j2, gcc, python3 with threads and
//! subprocess) check the whole. No test asserts a timing.

use std::path::Path;

use integration::{Link, Platform, fixture, native, path_str, runsc_do, scratch_dir};

integration::on_every_platform!(
    wait_never_misses_an_exited_child,
    fork_wait_sessions_kill_and_limits,
    signal_frames_restart_and_fault_signals,
    raw_futex_operations_and_robust_lists,
    threads_tgkill_and_exec_from_a_thread,
    exec_from_a_thread_never_loses_the_new_image,
    timers_alarm_and_interrupted_sleeps,
    default_actions_give_shell_exit_codes,
    stop_and_continue_a_child,
    shell_pipelines_match_native,
    bash_job_control,
    make_runs_two_jobs,
    gcc_compiles_and_runs_a_program,
    python_threads_and_subprocess,
    proc_stat_state_letters,
);

/// Runs a self-checking fixture and checks it succeeded and printed every `ok:` line.
fn run_fixture(p: Platform, name: &str, args: &[&str], expect_ok: &[&str]) {
    let bin = fixture(name, Link::Static);
    let mut cmd = vec![path_str(&bin)];
    cmd.extend_from_slice(args);
    let run = runsc_do(p, &[], &cmd);
    run.assert_success(name);
    for part in expect_ok {
        assert!(
            run.stdout.contains(&format!("ok: {part}")),
            "{name}: no 'ok: {part}' in {run:#?}"
        );
    }
}

/// The fixtures order events on a process being asleep (`S`, `fixtures/sync.h`): a
/// process in non-blocking system calls must show `R`, never `S`.
fn proc_stat_state_letters(p: Platform) {
    run_fixture(
        p,
        "proc_state",
        &[],
        &["busy R", "stopped T, zombie Z", "blocked S"],
    );
    // The same fixture natively: the letters are Linux's.
    let bin = fixture("proc_state", Link::Static);
    native(&[path_str(&bin)]).assert_success("proc_state natively");
}

fn fork_wait_sessions_kill_and_limits(p: Platform) {
    run_fixture(
        p,
        "proc_wait",
        &[],
        &[
            "fork exit codes",
            "killed child status",
            "WNOHANG and ECHILD",
            "WUNTRACED WCONTINUED WNOWAIT",
            "SIGCHLD stop reports",
            "reparenting",
            "setsid getsid",
            "kill pid 0 and -pgrp",
            "close-on-exec",
            "vfork",
            "RLIMIT_NOFILE",
            "auto-reap",
            "RLIMIT_NPROC",
        ],
    );
}

fn signal_frames_restart_and_fault_signals(p: Platform) {
    run_fixture(
        p,
        "sig_frame",
        &[],
        &[
            "SIGSEGV siginfo and ucontext",
            "repeated faults",
            "xmm preserved, sigaltstack",
            "SA_RESTART and EINTR",
            "SA_NODEFER SA_RESETHAND",
            "sigqueue sigtimedwait sigpending",
            "sigsuspend",
            "SIGCHLD",
            "SIGPIPE",
            "SIGFPE SIGILL forced SIGSEGV",
        ],
    );
}

fn raw_futex_operations_and_robust_lists(p: Platform) {
    run_fixture(
        p,
        "proc_futex",
        &[],
        &[
            "EAGAIN ETIMEDOUT",
            "WAIT WAKE CHILD_CLEARTID",
            "REQUEUE CMP_REQUEUE",
            "WAKE_OP",
            "BITSET",
            "shared futex across processes",
            "robust list",
        ],
    );
}

/// Regression: `execve` from a non-leader thread waited for the old leader's "finished"
/// flag, which was set before the old leader left its thread group by tid, so the old
/// leader could remove the new leader (same tid) and the process ended with status 0
/// before its new image ran (9 of 160 runs under parallel load). Many concurrent runs
/// make the interleaving likely; every one must run the new image.
fn exec_from_a_thread_never_loses_the_new_image(p: Platform) {
    let runners: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..25 {
                    run_fixture(
                        p,
                        "proc_threads",
                        &[],
                        &["exec from a thread (pid 1, threads 1)"],
                    );
                }
            })
        })
        .collect();
    for r in runners {
        r.join().expect("runner thread");
    }
}

fn threads_tgkill_and_exec_from_a_thread(p: Platform) {
    run_fixture(
        p,
        "proc_threads",
        &[],
        &[
            "pthreads",
            "tgkill and condvar",
            "exec from a thread (pid 1, threads 1)",
        ],
    );
}

fn timers_alarm_and_interrupted_sleeps(p: Platform) {
    run_fixture(
        p,
        "sig_timers",
        &[],
        &[
            "setitimer periodic",
            "alarm",
            "timer_create SIGEV_SIGNAL",
            "SIGEV_THREAD_ID",
            "nanosleep EINTR rem",
            "clock_nanosleep abstime",
        ],
    );
}

fn default_actions_give_shell_exit_codes(p: Platform) {
    let bin = fixture("sig_die", Link::Static);
    for (how, code) in [("term", 143), ("segv", 139), ("abort", 134)] {
        let run = runsc_do(p, &[], &[path_str(&bin), how]);
        assert_eq!(run.code, code, "{how}: {run:#?}");
    }
}

fn stop_and_continue_a_child(p: Platform) {
    let bin = fixture("sig_die", Link::Static);
    let run = runsc_do(p, &[], &[path_str(&bin), "stop-cont"]);
    run.assert_success("stop-cont");
    assert_eq!(run.stdout, "child exit 9\n");
    // A stopped process whose group is orphaned gets SIGHUP (and SIGCONT), as on Linux.
    let run = runsc_do(p, &[], &[path_str(&bin), "orphan"]);
    run.assert_success("orphan");
    assert_eq!(run.stdout, "orphan hup\n");
    // PR_SET_PDEATHSIG fires when the parent dies.
    let run = runsc_do(p, &[], &[path_str(&bin), "pdeathsig"]);
    run.assert_success("pdeathsig");
    assert_eq!(run.stdout, "pdeathsig killed\n");
}

/// Runs `sh -c script` natively and in the sandbox and compares.
fn same_as_native(p: Platform, script: &str) {
    let cmd = ["/bin/sh", "-c", script];
    let want = native(&cmd);
    let got = runsc_do(p, &[], &cmd);
    assert_eq!(
        (got.code, &got.stdout),
        (want.code, &want.stdout),
        "{script}: {got:#?}"
    );
}

fn shell_pipelines_match_native(p: Platform) {
    same_as_native(
        p,
        "seq 1 2000 | grep 7 | sort -rn | head -n 3; echo $(( $(seq 1 100 | wc -l) * 2 ))",
    );
    same_as_native(p, "(exit 7); echo $?; sh -c 'kill -TERM $$'; echo $?");
    // The signal arrives while the shell sleeps in `wait`: the subshell sends it once
    // /proc shows the shell asleep (S), with builtins only.
    same_as_native(
        p,
        "trap 'echo usr1' USR1; \
         (until read -r _ _ s _ < /proc/$$/stat && [ \"$s\" = S ]; do :; done; kill -USR1 $$) & \
         wait; wait; echo done",
    );
}

/// A shell that waits in `sigsuspend` for SIGCHLD must find the child collectable once
/// the signal arrived (a race here hung `(sleep 0.2; echo late) & wait` now and then).
fn wait_never_misses_an_exited_child(p: Platform) {
    same_as_native(
        p,
        "i=0; while [ $i -lt 60 ]; do (exit 3) & wait; (exit 4) & wait $!; \
         r=$?; [ $r = 4 ] || echo \"bad $r\"; i=$((i+1)); done; echo $i",
    );
}

fn bash_job_control(p: Platform) {
    let script = "sleep 5 & jobs; kill %1; wait %1; echo \"status $?\"; \
                  sleep 5 & pid=$!; kill -STOP $pid; kill -CONT $pid; kill $pid; wait $pid; echo $?";
    let cmd = ["/bin/bash", "-c", script];
    let want = native(&cmd);
    let got = runsc_do(p, &[], &cmd);
    got.assert_success("bash");
    assert_eq!(got.stdout, want.stdout, "{got:#?}");
    assert!(got.stdout.contains("status 143"), "{got:#?}");
    // A job stopped by SIGTSTP shows as T and survives its siblings' exits (no SIGHUP:
    // its group is not orphaned by them).
    // (The stop takes effect after `kill` returns: wait for it in /proc, not for time.)
    let script = "sleep 5 & p=$!; kill -TSTP $p; \
                  until read -r _ _ s _ < /proc/$p/stat && [ \"$s\" = T ]; do :; done; \
                  ps -o stat= -p $p | cut -c1; kill -CONT $p; kill $p; wait $p; echo $?";
    let cmd = ["/bin/bash", "-c", script];
    let got = runsc_do(p, &[], &cmd);
    assert_eq!((got.code, got.stdout.as_str()), (0, "T\n143\n"), "{got:#?}");
}

fn make_runs_two_jobs(p: Platform) {
    let dir = scratch_dir();
    std::fs::write(
        dir.path().join("Makefile"),
        "all: a b\n\tcat a b\na:\n\techo A > a\nb:\n\techo B > b\n",
    )
    .expect("write Makefile");
    let run = runsc_do(p, &[], &["make", "-s", "-j2", "-C", path_str(dir.path())]);
    run.assert_success("make -j2");
    assert!(run.stdout.ends_with("A\nB\n"), "{run:#?}");
}

fn gcc_compiles_and_runs_a_program(p: Platform) {
    let dir = scratch_dir();
    let src = dir.path().join("prog.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\nint main(void) { printf(\"built %d\\n\", 6 * 7); return 0; }\n",
    )
    .expect("write source");
    let script = format!("gcc -O1 -o /tmp/prog {} && /tmp/prog", path_str(&src));
    let run = runsc_do(p, &[], &["/bin/sh", "-c", &script]);
    run.assert_success("gcc");
    assert_eq!(run.stdout, "built 42\n");
}

fn python_threads_and_subprocess(p: Platform) {
    let script = r#"
import signal, subprocess, threading
out = []
def work(i):
    r = subprocess.run(["sh", "-c", f"echo child {i}; exit {i}"], capture_output=True, text=True)
    out.append((i, r.returncode, r.stdout.strip()))
ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(sorted(out))
p = subprocess.Popen(["sleep", "30"])
p.send_signal(signal.SIGTERM)
print("sleep", p.wait())
print(subprocess.run("seq 1 5 | tac | head -n 2", shell=True, capture_output=True, text=True).stdout.split())
"#;
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let run = runsc_do(p, &[], &[python, "-c", script]);
    run.assert_success("python3");
    assert_eq!(
        run.stdout,
        "[(0, 0, 'child 0'), (1, 1, 'child 1'), (2, 2, 'child 2'), (3, 3, 'child 3')]\n\
         sleep -15\n['5', '4']\n"
    );
}
