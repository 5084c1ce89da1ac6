//! The library from a program of its own (`harness = false`: `rsentry::init()` must run
//! first in `main`, as in any program using the library): errors, limits, kill.

use std::io::Read;
use std::time::{Duration, Instant};

use rsentry::{Error, Limits, Sandbox};

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
    let r = Sandbox::builder()
        .network(rsentry::Network::Host)
        .command(["true"])
        .build();
    assert!(matches!(r, Err(Error::Invalid(_))), "{r:?}");
    let bad = rsentry::Profile::from_json(r#"{"version":1,"syscalls":[{"name":"nope"}]}"#);
    assert!(matches!(bad, Err(Error::Policy(_))), "{bad:?}");
}

fn memory_limit() {
    // 512 MiB of touched memory does not fit in 128 MiB; 16 MiB does. Past the limit the
    // allocation fails, or (memory is committed when touched, as with overcommit) the
    // touching process dies, by SIGBUS here as Linux's OOM killer would kill it.
    let prog = "import sys\nn = int(sys.argv[1]) << 20\ntry:\n    b = bytearray(n)\n    print('ok')\nexcept MemoryError:\n    print('MemoryError')\n";
    for mib in ["16", "512"] {
        let out = Sandbox::builder()
            .limits(Limits {
                memory: 128 << 20,
                ..Default::default()
            })
            .command(["/usr/bin/python3", "-c", prog, mib])
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&out.stdout);
        if mib == "16" {
            assert_eq!((out.status.code(), &*stdout), (0, "ok\n"), "{out:?}");
        } else {
            assert!(
                stdout == "MemoryError\n"
                    || (stdout.is_empty() && [128 + 7, 128 + 9].contains(&out.status.code())),
                "{mib} MiB: {out:?}"
            );
        }
    }
}

fn cpu_time_limit() {
    let start = Instant::now();
    let out = Sandbox::builder()
        .limits(Limits {
            cpu_time: Duration::from_secs(1),
            ..Default::default()
        })
        .command(["/usr/bin/python3", "-c", "while True: pass"])
        .output();
    // The stub running the loop is killed at one second of CPU time; the sandbox ends
    // with a failure instead of running for ever.
    match out {
        Ok(o) => assert!(!o.status.success(), "{o:?}"),
        Err(e) => assert!(matches!(e, Error::Sentry(_)), "{e:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(60));
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
