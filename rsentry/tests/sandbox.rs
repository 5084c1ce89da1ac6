//! The library from a program of its own (`harness = false`: `rsentry::init()` must run
//! first in `main`, as in any program using the library): errors, limits, kill.

use std::io::Read;
use std::time::Duration;

use rsentry::{Error, Limits, Platform, Sandbox};

fn main() {
    rsentry::init();
    if !nix::unistd::geteuid().is_root() {
        test_require::skip("root", "starting a sandbox needs root");
        return;
    }
    let tests: [(&str, fn()); 5] = [
        ("missing_programs_are_errors", missing_programs_are_errors),
        (
            "bad_descriptions_are_refused_before_start",
            bad_descriptions,
        ),
        ("memory_limit_bounds_allocation", memory_limit),
        ("cpu_time_limit_ends_a_busy_program", cpu_time_limit),
        ("kill_ends_a_running_sandbox", kill_ends_it),
    ];
    for (name, t) in tests {
        t();
        println!("test {name} ... ok");
    }
}

fn missing_programs_are_errors() {
    let e = Sandbox::builder()
        .command(["/no/such/program"])
        .output()
        .expect_err("not found");
    assert!(
        matches!(&e, Error::NotFound { path, .. } if path == "/no/such/program"),
        "{e:?}"
    );
}

fn bad_descriptions() {
    let r = Sandbox::builder().command(Vec::<&str>::new()).build();
    assert!(matches!(r, Err(Error::Usage(_))), "{r:?}");
    let r = Sandbox::builder()
        .rootfs("/etc/passwd")
        .command(["true"])
        .build();
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    let r = Sandbox::builder()
        .bind("/tmp", "relative", rsentry::ReadOnly)
        .command(["true"])
        .build();
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    let bad = rsentry::Profile::from_json(r#"{"version":1,"syscalls":[{"name":"nope"}]}"#);
    assert!(matches!(bad, Err(Error::Policy(_))), "{bad:?}");
}

/// The platforms the limits are checked on: each has its own way into the application
/// (a memory fault, a preempted busy loop), so each must enforce them.
fn platforms() -> Vec<Platform> {
    let mut all = vec![Platform::Ptrace, Platform::Systrap];
    if std::path::Path::new("/dev/kvm").exists() {
        all.push(Platform::Kvm);
    } else {
        test_require::skip("kvm", "/dev/kvm does not exist");
    }
    all
}

fn memory_limit() {
    for p in platforms() {
        memory_limit_on(p);
    }
}

fn cpu_time_limit() {
    for p in platforms() {
        cpu_time_limit_on(p);
    }
}

fn memory_limit_on(p: Platform) {
    // 16 MiB fit in 128 MiB. Touching 512 MiB, 16 MiB at a time, does not: as under a
    // memory cgroup, the process doing it is killed with SIGKILL and the rest of the
    // sandbox (the shell) goes on and sees the status. The same when the Sentry fills
    // the memory in a system call (`read` from /dev/zero into a fresh 512 MiB buffer):
    // not an error for a living process, the OOM killer's SIGKILL.
    let prog = "import sys\nn = int(sys.argv[1])\nkeep = [bytearray(16 << 20) for _ in range(n // 16)]\nprint('ok')\n";
    // An anonymous mapping, untouched until read into (a bytearray is zeroed first), 1 MiB
    // per call (a read of /dev/zero may return less than asked).
    let read = "import mmap, sys\nb = memoryview(mmap.mmap(-1, int(sys.argv[1]) << 20))\nf = open('/dev/zero', 'rb', buffering=0)\ni = 0\nwhile i < len(b):\n    i += f.readinto(b[i:i + (1 << 20)])\nprint('ok')\n";
    let script = "grep MemTotal /proc/meminfo; /usr/bin/python3 -c \"$2\" \"$1\"; echo status=$?";
    let total = "MemTotal:         131072 kB\n";
    for (prog, mib, want) in [
        (prog, "16", "ok\nstatus=0\n"),
        (prog, "512", "status=137\n"),
        (read, "16", "ok\nstatus=0\n"),
        (read, "512", "status=137\n"),
    ] {
        let want = format!("{total}{want}");
        let out = Sandbox::builder()
            .platform(p)
            .limits(Limits {
                memory: 128 << 20,
                ..Default::default()
            })
            .command(["/bin/sh", "-c", script, "sh", mib, prog])
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            (out.status.code(), &*stdout),
            (0, &*want),
            "{p:?}, {mib} MiB: {out:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let killed = stderr
            .lines()
            .filter(|l| l.contains("out of memory: Killed process") && l.contains("(python3)"))
            .count();
        assert_eq!(killed, usize::from(mib == "512"), "{p:?}: {stderr}");
    }
}

fn cpu_time_limit_on(p: Platform) {
    // Two processes compute, each printing its own CPU time as it grows. The limit is
    // one budget for the sandbox: it ends when their sum (with the shell's and the
    // interpreters' start-up) reaches it, well before either alone would.
    let limit = Duration::from_secs(2);
    let burner = "import time\nlast = 0\nwhile True:\n    t = time.process_time()\n    if t - last >= 0.05:\n        last = t\n        print(t, flush=True)\n";
    let script = format!(
        "/usr/bin/python3 -c '{burner}' | sed -u 's/^/a /' & /usr/bin/python3 -c '{burner}' | sed -u 's/^/b /'; wait"
    );
    let mut child = Sandbox::builder()
        .platform(p)
        .limits(Limits {
            cpu_time: limit,
            ..Default::default()
        })
        .command(["/bin/sh", "-c", &script])
        .spawn()
        .expect("spawn");
    drop(child.stdin.take());
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let e = child
        .wait()
        .expect_err("the CPU time limit ends the sandbox");
    assert!(
        matches!(e, Error::CpuTimeLimit { limit: l } if l == limit),
        "{p:?}: {e:?}"
    );
    assert!(e.to_string().contains("CPU time limit"), "{e}");
    // The last time each process reported.
    let last = |who: &str| -> f64 {
        stdout
            .lines()
            .filter_map(|l| l.strip_prefix(who)?.trim().parse::<f64>().ok())
            .fold(0.0, f64::max)
    };
    let (a, b) = (last("a "), last("b "));
    assert!(a > 0.0 && b > 0.0, "{p:?}: both processes ran: {stdout}");
    // Each report lags the process's time by at most 50 ms, and the budget is
    // enforced within a tick or two: the sum stays within the budget plus that.
    assert!(
        a + b <= limit.as_secs_f64() + 0.3,
        "{p:?}: a {a} s + b {b} s against one budget of {limit:?}"
    );
}

fn kill_ends_it() {
    let mut child = Sandbox::builder()
        .command(["sh", "-c", "echo started; exec sleep 1000"])
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut first = [0u8; 8];
    out.read_exact(&mut first).expect("started");
    assert_eq!(&first, b"started\n");
    child.kill().expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), 128 + 9);
    // Everything of the sandbox is gone: its stdout reaches end-of-file.
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).expect("eof");
    assert!(rest.is_empty());
}
