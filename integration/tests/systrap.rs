//! Bad input aimed at a seccomp-trap platform, through `runsc do`: programs that block,
//! handle or raise SIGSYS, return from forged signal frames, corrupt their stack pointer or
//! alternate signal stack (run on every platform: Linux's behaviour is the contract), and a
//! program that jumps into the systrap stub's own code page (systrap only: on Linux nothing
//! is mapped there, so it must die of SIGSEGV and never make a host system call).
//! C fixtures `fixtures/systrap_*.c` print one `ok:` line per part.

use integration::{Link, Platform, fixture, path_str, run_on, runsc_do};

integration::on_every_platform!(
    sigsys_is_the_applications_own_signal,
    forged_signal_frames_load_registers_and_mask,
    any_stack_pointer_and_a_bad_signal_stack,
);

fn run_fixture(p: Platform, name: &str, expect_ok: &[&str]) {
    run_fixture_args(p, name, &[], expect_ok);
}

fn run_fixture_args(p: Platform, name: &str, args: &[&str], expect_ok: &[&str]) {
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
    assert!(!run.stdout.contains("FAIL"), "{run:#?}");
}

fn sigsys_is_the_applications_own_signal(p: Platform) {
    run_fixture(
        p,
        "systrap_sigsys",
        &[
            "unknown call is ENOSYS without SIGSYS",
            "blocked SIGSYS stays pending and system calls work",
            "handler runs once when unblocked",
            "ignored SIGSYS is dropped",
            "default SIGSYS kills",
        ],
    );
}

fn forged_signal_frames_load_registers_and_mask(p: Platform) {
    run_fixture(
        p,
        "systrap_sigreturn",
        &[
            "resumed at 0x5eed with the frame's mask",
            "resumed at 0x1234 with the frame's mask",
            "forged frame without a signal",
            "parent unaffected",
        ],
    );
}

fn any_stack_pointer_and_a_bad_signal_stack(p: Platform) {
    // KVM: a system call with a non-canonical stack pointer ends in a ring-0 double fault
    // of the platform (the task is killed) instead of working: known, left to the KVM
    // platform's owners; the canonical values are checked there too.
    let args: &[&str] = if p == Platform::Kvm {
        &["canonical"]
    } else {
        &[]
    };
    run_fixture_args(
        p,
        "systrap_stack",
        args,
        &[
            "system calls work whatever the stack pointer",
            "unmapped alternate stack kills with SIGSEGV",
        ],
    );
}

#[test]
fn jumping_into_the_stub_page_is_sigsegv_never_a_host_call() {
    run_on(Platform::Systrap, |p| {
        let bin = fixture("systrap_stubjump", Link::Static);
        let run = runsc_do(p, &[], &[path_str(&bin)]);
        run.assert_success("systrap_stubjump");
        assert!(
            run.stdout
                .contains("system call sites of the stub refuse the application"),
            "the stub page must be found and probed on systrap: {run:#?}"
        );
        for part in ["jumps into the page end in a signal", "sandbox unaffected"] {
            assert!(run.stdout.contains(&format!("ok: {part}")), "{run:#?}");
        }
    });
}
