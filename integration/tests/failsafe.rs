//! Regressions found by probing the sandbox from outside, as a careless program would:
//! each once killed the sandbox, logged to the user's stderr, or gave the wrong errno.

use std::process::{Command, Stdio};

use integration::{Platform, native, path_str, runsc, runsc_do, scratch_dir};

integration::on_every_platform!(
    fsync_of_stdio_gives_linux_s_answer_and_never_kills_the_sandbox,
    munmap_from_address_zero_unmaps_like_linux_and_logs_nothing,
    truncated_executables_fail_as_on_linux,
);

const FSYNC_STDOUT: &str = r#"
import os
for f in (os.fsync, os.fdatasync):
    try:
        f(1)
        print(f.__name__, "ok", flush=True)
    except OSError as e:
        print(f.__name__, e.errno, flush=True)
"#;

/// `fsync(1)` on a pipe is `EINVAL` on Linux, and flushes a regular file; the Sentry's
/// seccomp filter used to refuse the host fsync and end the sandbox with 125.
fn fsync_of_stdio_gives_linux_s_answer_and_never_kills_the_sandbox(p: Platform) {
    // stdout a pipe.
    let run = runsc_do(p, &[], &["/usr/bin/python3", "-c", FSYNC_STDOUT]);
    let want = native(&["/usr/bin/python3", "-c", FSYNC_STDOUT]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout, want.stdout, "{run:#?}");
    assert_eq!(run.stdout, "fsync 22\nfdatasync 22\n");
    // stdout a host file, as `runsc do ... > file`.
    let dir = scratch_dir();
    for (cmd, expect) in [
        (
            vec!["/usr/bin/python3", "-c", FSYNC_STDOUT],
            &b"fsync ok\nfdatasync ok\n"[..],
        ),
        (
            vec!["/bin/dd", "if=/dev/zero", "bs=1", "count=1", "conv=fsync"],
            &b"\0"[..],
        ),
    ] {
        let out_path = dir.path().join("out");
        let out = std::fs::File::create(&out_path).unwrap();
        let st = Command::new(runsc())
            .arg(format!("--platform={}", p.name()))
            .arg("do")
            .arg("--")
            .args(&cmd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            st.status.code(),
            Some(0),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        assert_eq!(std::fs::read(&out_path).unwrap(), expect, "{cmd:?}");
    }
}

const MUNMAP_ZERO: &str = r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
for i in range(3):
    p = libc.mmap(0x10000, 4096, 3, 0x22 | 0x10, -1, 0)
    assert p == 0x10000, p
    ctypes.memset(0x10000, 7, 1)
    print("munmap", libc.munmap(0, 0x11000), ctypes.get_errno())
    print("listed", any(l.startswith("00010000-") for l in open("/proc/self/maps")))
    # Mapped again without MAP_FIXED: must be a fresh zero page, not the old one.
    q = libc.mmap(0x10000, 4096, 3, 0x22 | 0x100000, -1, 0)
    print("again", hex(q), ctypes.string_at(0x10000, 1))
    libc.munmap(0x10000, 4096)
"#;

/// `munmap(0, 0x11000)` over a page at 0x10000 returns 0 on Linux and unmaps it; it
/// used to give `EINVAL`, print an ERROR line each time, and leave the platform's page.
fn munmap_from_address_zero_unmaps_like_linux_and_logs_nothing(p: Platform) {
    let run = runsc_do(p, &[], &["/usr/bin/python3", "-c", MUNMAP_ZERO]);
    let want = native(&["/usr/bin/python3", "-c", MUNMAP_ZERO]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.stdout, want.stdout, "{run:#?}");
    assert!(
        run.stdout
            .starts_with("munmap 0 0\nlisted False\nagain 0x10000 b'\\x00'\n")
    );
    assert_eq!(run.stderr, "", "internal errors stay in the debug log");
}

/// An ELF whose header is cut is `ENOEXEC`; one whose segments are cut gets through
/// Linux's point of no return and dies of `SIGSEGV`. Both were "No such device or
/// address" (ENXIO).
fn truncated_executables_fail_as_on_linux(p: Platform) {
    let dir = scratch_dir();
    let true_bin = std::fs::read("/bin/true").unwrap();
    for (n, len) in [("head", 100usize), ("body", 4096)] {
        let path = dir.path().join(n);
        std::fs::write(&path, &true_bin[..len]).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    let head = dir.path().join("head");
    let body = dir.path().join("body");
    let script = format!(
        "import os, sys\n\
         try:\n    os.execv({h:?}, ['t'])\n\
         except OSError as e:\n    print('execv', e.errno, flush=True)\n\
         pid = os.fork()\n\
         if pid == 0:\n    os.execv({b:?}, ['t'])\n\
         _, st = os.waitpid(pid, 0)\n\
         print('signal', os.WTERMSIG(st) if os.WIFSIGNALED(st) else None)\n",
        h = path_str(&head),
        b = path_str(&body),
    );
    let run = runsc_do(p, &[], &["/usr/bin/python3", "-c", &script]);
    let want = native(&["/usr/bin/python3", "-c", &script]);
    assert_eq!(run.stdout, want.stdout, "{run:#?}");
    assert_eq!(run.stdout, "execv 8\nsignal 11\n");
    // As PID 1, runsc says what is wrong with the file.
    let run = runsc_do(p, &[], &[path_str(&head)]);
    assert_eq!(run.code, 126, "{run:#?}");
    assert!(run.stderr.contains("Exec format error"), "{run:#?}");
    let run = runsc_do(p, &[], &[path_str(&body)]);
    assert_eq!(run.code, 126, "{run:#?}");
    assert!(run.stderr.contains("truncated executable"), "{run:#?}");
}
