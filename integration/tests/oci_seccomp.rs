//! An OCI container's `linux.seccomp` section (Docker's profile format) and the
//! `dev.rsentry.profile` annotation, enforced by the Sentry.

use std::path::Path;

use integration::{Bundle, Platform, assert_one_line_error, on_every_platform, path_str, runsc_do};

/// What `mount`, `unshare` and `ptrace` return (errno, 0 on success), via libc.
const PRIVILEGED_PY: &str = "import ctypes\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
def errno(r):\n    return 0 if r == 0 else ctypes.get_errno()\n\
print('mount', errno(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)))\n\
print('unshare', errno(libc.unshare(0x04000000)))\n\
print('ptrace', errno(libc.ptrace(0, 0, None, None)))\n";

/// Docker's format: allow by default, refuse a list with EPERM.
fn docker_style(c: &mut serde_json::Value) {
    c["linux"]["seccomp"] = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            { "names": ["mount", "unshare", "ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["some_future_call"], "action": "SCMP_ACT_ERRNO" }
        ]
    });
}

fn seccomp_section_refuses_what_it_lists(p: Platform) {
    let b = Bundle::new(p, &["/usr/bin/python3", "-c", PRIVILEGED_PY]);
    let unfiltered = b.run("plain");
    assert_eq!(unfiltered.code, 0, "{unfiltered:#?}");
    let refused = "mount 1\nunshare 1\nptrace 1\n";
    assert_ne!(unfiltered.stdout, refused, "{unfiltered:#?}");
    b.edit(docker_style);
    let r = b.run("filtered");
    assert_eq!((r.code, r.stdout.as_str()), (0, refused), "{r:#?}");
    // Ordinary commands run under the same section.
    b.edit(|c| {
        c["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "ls / >/dev/null && echo ok"]);
    });
    let r = b.run("ordinary");
    assert_eq!((r.code, r.stdout.as_str()), (0, "ok\n"), "{r:#?}");
    // A kill action ends the process with SIGSYS.
    b.edit(|c| {
        c["process"]["args"] = serde_json::json!(["/usr/bin/python3", "-c", PRIVILEGED_PY]);
        c["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_KILL_PROCESS".into();
        c["linux"]["seccomp"]["syscalls"][0]
            .as_object_mut()
            .expect("rule")
            .remove("errnoRet");
    });
    let r = b.run("killed");
    assert_eq!((r.code, r.stdout.as_str()), (128 + 31, ""), "{r:#?}");
}

/// The annotation names a profile recorded with `runsc do`: the same program runs, a
/// socket call fails.
fn profile_annotation_is_enforced(p: Platform) {
    let b = Bundle::new(p, &["/usr/bin/python3", "-c", "print(1)"]);
    let profile = b.dir.path().join("python.json");
    let rec = runsc_do(
        p,
        &["--record-profile", path_str(&profile), "--cwd", "/"],
        &["/usr/bin/python3", "-c", "print(1)"],
    );
    assert_eq!(rec.stdout, "1\n", "{rec:#?}");
    b.edit(|c| {
        c["process"]["args"] = serde_json::json!(["/usr/bin/python3", "-c", "print(1)"]);
        c["annotations"]["dev.rsentry.profile"] = "python.json".into();
    });
    let r = b.run("allowed");
    assert_eq!((r.code, r.stdout.as_str()), (0, "1\n"), "{r:#?}");
    b.edit(|c| {
        c["process"]["args"] = serde_json::json!([
            "/usr/bin/python3",
            "-c",
            "import sys\nsys.path[:] = [p for p in sys.path if p]\nimport _socket\n\
             try:\n    _socket.socket(2, 2)\n    print('created')\n\
             except OSError as e:\n    print(e.errno)\n"
        ]);
    });
    let r = b.run("refused");
    assert_eq!((r.code, r.stdout.as_str()), (0, "1\n"), "{r:#?}");
}

on_every_platform!(
    seccomp_section_refuses_what_it_lists,
    profile_annotation_is_enforced
);

#[test]
fn malformed_sections_are_refused_at_create() {
    let b = Bundle::new(Platform::Ptrace, &["/bin/true"]);
    let cases: [(serde_json::Value, &str); 4] = [
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                { "names": ["read"], "action": "SCMP_ACT_ERRNO",
                  "args": [{ "index": 7, "value": 0, "op": "SCMP_CMP_EQ" }] }] }),
            "argument index 7",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                { "names": ["read"], "action": "SCMP_ACT_ERRNO",
                  "args": [{ "index": 0, "value": 0, "op": "SCMP_CMP_NOPE" }] }] }),
            "SCMP_CMP_NOPE",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_NOTIFY" }),
            "SCMP_ACT_NOTIFY",
        ),
        (
            serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1 }),
            "errno",
        ),
    ];
    for (i, (section, needle)) in cases.into_iter().enumerate() {
        b.edit(|c| c["linux"]["seccomp"] = section);
        let r = b.run(&format!("bad{i}"));
        assert_one_line_error(&r, 1, needle);
    }
    b.edit(|c| {
        c["linux"].as_object_mut().expect("linux").remove("seccomp");
        c["annotations"]["dev.rsentry.profile"] = "missing.json".into();
    });
    let r = b.run("noprofile");
    assert_one_line_error(&r, 1, "dev.rsentry.profile");
    assert!(!Path::new(&b.dir.path().join("missing.json")).exists());
}
