//! The Sentry's caches of Gofer files against the truth (issue 15): a shared bind mount
//! sees what the host changes while the sandbox runs; rename, unlink and create keep the
//! cached names right, in the overlay root (never revalidated) and in a read-write bind
//! mount (revalidated on access); writes to the overlay survive the cache's evictions.
//! `MAP_SHARED` mappings of a bind-mounted file share the Gofer page cache's pages with
//! each other and with `read`/`write`, and reach the host at `fsync` and exit.
//! Events are ordered by the commands themselves (an `exec` runs after the host's change
//! has returned), never by sleeping.

use std::path::Path;

use integration::{
    Bundle, Link, Platform, fixture, native, on_every_platform, path_str, runsc_do, scratch_dir,
};

/// The shell's way of showing only an error's reason.
const REASON: &str = "2>&1 | sed 's/.*: //'";

/// Operations in `dir` whose answers depend on the cache following each change: a
/// remembered miss made real, a rename, an unlink, a directory renamed with its contents.
/// `dir` holds `a` ("lower a") beforehand.
fn namespace_script(dir: &str) -> String {
    format!(
        "cd {dir} && cat a && cat nothere {REASON}; echo made > nothere && cat nothere && \
         mv a b && (cat a {REASON}) && cat b && rm b && (cat b {REASON}) && \
         mkdir d && echo in > d/x && mv d e && cat e/x && (cat d/x {REASON}) && \
         echo again > b && cat b && ls | tr '\\n' ' '"
    )
}

const NAMESPACE_OUT: &str = "lower a\nNo such file or directory\nmade\n\
    No such file or directory\nlower a\nNo such file or directory\nin\n\
    No such file or directory\nagain\nb e nothere ";

/// In the overlay root of `runsc do` (a Gofer lower that is never revalidated).
fn rename_unlink_and_create_keep_the_overlay_consistent(p: Platform) {
    let dir = scratch_dir();
    std::fs::write(dir.path().join("a"), "lower a\n").expect("a");
    let script = namespace_script(path_str(dir.path()));
    let run = runsc_do(p, &[], &["/bin/sh", "-c", &script]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, NAMESPACE_OUT),
        "{run:#?}"
    );
    // The host's tree was never written.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["a"]);
}

fn bind(b: &Bundle, host: &Path, options: &[&str]) {
    b.edit(|c| {
        c["mounts"] = serde_json::json!([{"destination": "/data", "type": "bind",
            "source": host, "options": options}]);
    });
}

/// In a read-write bind mount (revalidated on access): the same answers, and the host
/// ends up with what the sandbox did.
fn rename_unlink_and_create_keep_a_bind_mount_consistent(p: Platform) {
    let host = scratch_dir();
    let h = host.path();
    std::fs::write(h.join("a"), "lower a\n").expect("a");
    let b = Bundle::new(p, &["/bin/sh", "-c", &namespace_script("/data")]);
    bind(&b, h, &["rbind", "rw"]);
    let r = b.run("ns");
    assert_eq!((r.code, r.stdout.as_str()), (0, NAMESPACE_OUT), "{r:#?}");
    assert_eq!(std::fs::read_to_string(h.join("b")).expect("b"), "again\n");
    assert_eq!(std::fs::read_to_string(h.join("e/x")).expect("e/x"), "in\n");
    assert!(!h.join("a").exists() && !h.join("d").exists());
}

/// What the host changes in a bind mount while the container runs is seen by the next
/// look: a file rewritten in place, a file replaced by a rename, a name removed, a name
/// that was missing and now exists, the listing.
fn host_changes_are_seen_under_a_bind_mount(p: Platform) {
    let host = scratch_dir();
    let h = host.path();
    std::fs::write(h.join("f"), "one").expect("f");
    std::fs::write(h.join("other"), "the other file\n").expect("other");
    std::fs::write(h.join("gone"), "x\n").expect("gone");
    let b = Bundle::new(p, &["/bin/sleep", "1000"]);
    bind(&b, h, &["rbind", "ro"]);
    let pid_file = b.dir.path().join("pid");
    let (run, _) = b.create("app", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    b.runsc(&["start", "app"]).assert_success("start");
    let look = || {
        let script = format!(
            "cd /data && cat f; echo; stat -c %s f; cat late {REASON}; cat r {REASON}; \
             cat gone {REASON}; ls | tr '\\n' ' '"
        );
        let r = b.runsc(&["exec", "app", "/bin/sh", "-c", &script]);
        assert_eq!(r.code, 0, "{r:#?}");
        r.stdout
    };
    assert_eq!(
        look(),
        "one\n3\nNo such file or directory\nNo such file or directory\nx\nf gone other "
    );
    std::fs::write(h.join("f"), "changed in place").expect("rewrite f");
    std::fs::write(h.join("late"), "late\n").expect("late");
    std::fs::rename(h.join("other"), h.join("r")).expect("rename");
    std::fs::remove_file(h.join("gone")).expect("remove");
    assert_eq!(
        look(),
        "changed in place\n16\nlate\nthe other file\nNo such file or directory\nf late r "
    );
    // A name replaced by another file.
    std::fs::write(h.join("new"), "replacement").expect("new");
    std::fs::rename(h.join("new"), h.join("f")).expect("replace f");
    assert_eq!(
        look(),
        "replacement\n11\nlate\nthe other file\nNo such file or directory\nf late r "
    );
    b.runsc(&["kill", "app", "KILL"]).assert_success("kill");
    b.runsc(&["delete", "--force", "app"])
        .assert_success("delete");
}

/// Writes to the overlay stay while thousands of other files pass through the cache
/// (more than it keeps), and the lower file under them is unchanged.
fn overlay_writes_survive_cache_evictions(p: Platform) {
    let dir = scratch_dir();
    let d = dir.path();
    std::fs::write(d.join("a"), "lower\n").expect("a");
    std::fs::create_dir(d.join("many")).expect("many");
    for i in 0..5000 {
        std::fs::write(d.join("many").join(format!("f{i}")), "").expect("many/f");
    }
    let script = format!(
        "cd {} && echo upper >> a && echo new > w && cat many/* && ls -l many > /dev/null && \
         cat a w && ls many | wc -l",
        path_str(d)
    );
    let run = runsc_do(p, &[], &["/bin/sh", "-c", &script]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "lower\nupper\nnew\n5000\n"),
        "{run:#?}"
    );
    assert_eq!(std::fs::read_to_string(d.join("a")).expect("a"), "lower\n");
    assert!(!d.join("w").exists());
}

/// The host descriptors the Gofer donates to the Sentry (one shared per file read) are
/// the Sentry's: the application's descriptor table has only what it opened, and no
/// other number reaches a host descriptor.
fn donated_descriptors_never_reach_the_application(p: Platform) {
    let dir = scratch_dir();
    std::fs::write(dir.path().join("f"), "data\n").expect("f");
    let script = format!(
        "cd {} && exec 3< f 4< f && cat f f > /dev/null && head -c 2 <&4 && echo && \
         n=0; for i in $(seq 5 300); do (: <&$i) 2>/dev/null && n=$((n+1)); done; \
         echo $n; ls /proc/self/fd | tr '\\n' ' '",
        path_str(dir.path())
    );
    let run = runsc_do(p, &[], &["/bin/sh", "-c", &script]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "da\n0\n0 1 2 3 4 5 "),
        "{run:#?}"
    );
}

on_every_platform!(
    donated_descriptors_never_reach_the_application,
    rename_unlink_and_create_keep_the_overlay_consistent,
    rename_unlink_and_create_keep_a_bind_mount_consistent,
    host_changes_are_seen_under_a_bind_mount,
    overlay_writes_survive_cache_evictions,
    shared_mappings_of_a_bind_mounted_file_share_pages_and_reach_the_host,
    a_truncated_shared_mapping_never_shows_other_memory,
    fstat_of_an_open_file_sees_host_changes_under_a_bind_mount,
);

/// What `mmap_shared` prints when Linux's page cache semantics hold.
const MMAP_SHARED_OUT: &str = "the other mapping sees it: ok\n\
    read sees it: ok\n\
    write is seen by the mappings: ok\n\
    fsync: ok\n\
    child: ok\n\
    the parent's mapping sees the child's write: ok\n";

/// The bytes `mmap_shared` leaves in its 8 KiB file of `x`s.
fn mmap_shared_file() -> Vec<u8> {
    let mut want = vec![b'x'; 8192];
    for (off, s) in [
        (100, "through-a"),
        (4096 + 7, "by-write"),
        (200, "synced"),
        (300, "child-exit"),
        (400, "at-exit"),
    ] {
        want[off..off + s.len()].copy_from_slice(s.as_bytes());
    }
    want
}

/// Two mappings of one file in a read-write bind mount see each other's writes, `read`
/// and `write` agree with them, and what was written through them reaches the host
/// file, including writes of processes that exit without `munmap` or `msync`.
fn shared_mappings_of_a_bind_mounted_file_share_pages_and_reach_the_host(p: Platform) {
    let exe = fixture("mmap_shared", Link::Static);
    let host = scratch_dir();
    let f = host.path().join("f");
    std::fs::write(&f, vec![b'x'; 8192]).expect("f");
    let nat = native(&[path_str(&exe), path_str(&f)]);
    assert_eq!(nat.stdout, MMAP_SHARED_OUT, "natively: {nat:#?}");
    assert!(
        std::fs::read(&f).expect("f") == mmap_shared_file(),
        "natively"
    );
    std::fs::write(&f, vec![b'x'; 8192]).expect("f");
    let b = Bundle::new(p, &[path_str(&exe), "/data/f"]);
    bind(&b, host.path(), &["rbind", "rw"]);
    let r = b.run("mmap");
    assert_eq!((r.code, r.stdout.as_str()), (0, MMAP_SHARED_OUT), "{r:#?}");
    let got = std::fs::read(&f).expect("f");
    assert!(
        got == mmap_shared_file(),
        "the host file: {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// After a tmpfs file is truncated under a `MAP_SHARED` mapping, the pages the file
/// dropped stay the mapping's: reading them never shows memory the sandbox has since
/// handed to someone else. (Linux raises SIGBUS there; see docs/architecture.md.)
fn a_truncated_shared_mapping_never_shows_other_memory(p: Platform) {
    let exe = fixture("mmap_truncate", Link::Static);
    let run = runsc_do(p, &[], &[path_str(&exe)]);
    assert_eq!(run.code, 0, "{run:#?}");
    assert!(
        matches!(
            run.stdout.as_str(),
            "read after truncate: the old data\n" | "read after truncate: SIGBUS\n"
        ),
        "{run:#?}"
    );
}

/// `fstat` of a file opened before the host changed it (no name walked since, so no
/// revalidation) shows the file as the host has it now, as on Linux.
fn fstat_of_an_open_file_sees_host_changes_under_a_bind_mount(p: Platform) {
    let host = scratch_dir();
    let h = host.path();
    std::fs::write(h.join("f"), "one").expect("f");
    let b = Bundle::new(
        p,
        &["/bin/sh", "-c", "exec 3</data/f; exec /bin/sleep 1000"],
    );
    bind(&b, h, &["rbind", "ro"]);
    let pid_file = b.dir.path().join("pid");
    let (run, _) = b.create("app", &pid_file);
    assert_eq!(run.code, 0, "{run:#?}");
    b.runsc(&["start", "app"]).assert_success("start");
    // Through the open descriptor of process 1 (a magic link: no walk of /data/f). The
    // exec may come before process 1's shell has opened it: it waits for the descriptor.
    let size = || {
        let r = b.runsc(&[
            "exec",
            "app",
            "/bin/sh",
            "-c",
            "until [ -e /proc/1/fd/3 ]; do :; done; exec /bin/stat -L -c %s /proc/1/fd/3",
        ]);
        assert_eq!(r.code, 0, "{r:#?}");
        r.stdout
    };
    assert_eq!(size(), "3\n");
    std::fs::write(h.join("f"), "changed in place").expect("rewrite f");
    assert_eq!(size(), "16\n");
    b.runsc(&["kill", "app", "KILL"]).assert_success("kill");
    b.runsc(&["delete", "--force", "app"])
        .assert_success("delete");
}
