//! Command-line errors of `runsc`: each gives exactly one line on stderr and a non-zero
//! status, before any sandbox starts (so these need no working platform).

use std::process::Command;

use integration::{assert_one_line_error, have_tool, run_command, runsc, runsc_raw};

#[test]
fn missing_command() {
    assert_one_line_error(&runsc_raw(&["do"]), 2, "missing command");
    assert_one_line_error(&runsc_raw(&["do", "--"]), 2, "missing command");
    assert_one_line_error(&runsc_raw(&["do", "--env", "A=B"]), 2, "missing command");
}

#[test]
fn unknown_flags() {
    assert_one_line_error(
        &runsc_raw(&["do", "--no-such-flag", "--", "/bin/true"]),
        2,
        "--no-such-flag",
    );
    assert_one_line_error(
        &runsc_raw(&["--frobnicate", "do", "--", "/bin/true"]),
        2,
        "--frobnicate",
    );
    assert_one_line_error(
        &runsc_raw(&["--platform=vax", "do", "--", "/bin/true"]),
        2,
        "vax",
    );
    assert_one_line_error(&runsc_raw(&["no-such-subcommand"]), 2, "no-such-subcommand");
}

#[test]
fn rootfs_must_be_a_directory() {
    assert_one_line_error(
        &runsc_raw(&["do", "--rootfs", "/etc/passwd", "--", "/bin/true"]),
        125,
        "not a directory",
    );
    assert_one_line_error(
        &runsc_raw(&["do", "--rootfs", "/no/such/rootfs", "--", "/bin/true"]),
        125,
        "No such file or directory",
    );
}

#[test]
fn bad_do_options() {
    assert_one_line_error(
        &runsc_raw(&["do", "--cwd", "rel", "--", "/bin/true"]),
        125,
        "not absolute",
    );
    assert_one_line_error(
        &runsc_raw(&["do", "--env", "NOEQUALS", "--", "/bin/true"]),
        125,
        "K=V",
    );
}

#[test]
fn unknown_network() {
    // Every mode is supported by every command now (`sandbox` for containers too): an
    // unknown one is a usage error.
    assert_one_line_error(
        &runsc_raw(&["--network=bogus", "list"]),
        2,
        "invalid value 'bogus'",
    );
}

#[test]
fn kvm_without_dev_kvm() {
    // Where /dev/kvm exists, hide it: run runsc in a private mount namespace whose /dev is
    // an empty tmpfs (needs root and util-linux's unshare).
    if std::path::Path::new("/dev/kvm").exists() {
        if !test_require::is_root() {
            test_require::skip("root", "hiding /dev/kvm needs a mount namespace");
            return;
        }
        if !have_tool("/usr/bin/unshare") {
            return;
        }
        let mut cmd = Command::new("/usr/bin/unshare");
        cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
            .arg("mount -t tmpfs none /dev && exec \"$0\" --platform=kvm do -- /bin/true")
            .arg(runsc());
        assert_one_line_error(&run_command(cmd, b""), 125, "/dev/kvm");
        return;
    }
    assert_one_line_error(
        &runsc_raw(&["--platform=kvm", "do", "--", "/bin/true"]),
        125,
        "/dev/kvm",
    );
}

#[test]
fn help_lists_do_but_not_the_internal_commands() {
    let run = runsc_raw(&["--help"]);
    assert_eq!(run.code, 0, "{run:#?}");
    let commands: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(commands.contains(&"do"), "{run:#?}");
    assert!(
        !commands.contains(&"boot") && !commands.contains(&"gofer"),
        "{commands:?}"
    );
}
