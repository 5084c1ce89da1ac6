//! Traps from application code that only a kernel sees, on every platform: privileged
//! and legacy instructions give the signals Linux x86-64 gives (`fixtures/trap_insn.c`),
//! and calls into the legacy vsyscall page are emulated as Linux does
//! (`fixtures/trap_vsyscall.c`), and a signal frame whose selectors or FPU state pointer a
//! handler forged ends the process as Linux's `rt_sigreturn` does
//! (`fixtures/sig_badframe.c`); a system call made with a non-canonical stack pointer
//! runs as on Linux (`fixtures/trap_badrsp.c`). Each fixture prints one line per case.

use integration::{Link, Platform, fixture, native, path_str, runsc_do};

integration::on_every_platform!(
    privileged_instructions_give_linux_signals,
    vsyscall_page_calls_are_emulated,
    forged_sigreturn_frames_end_as_on_linux,
    a_system_call_with_a_non_canonical_stack_pointer_returns,
);

/// What Linux x86-64 gives for each case of `trap_insn`. I/O instructions, `hlt` and
/// `cli` in user mode raise #GP: `SIGSEGV` with `SI_KERNEL` (128). `int 0x80` and
/// `sysenter` are 32-bit system call entries, which the sandbox does not offer (as Linux
/// without IA32 emulation): `SIGSEGV`, `SI_KERNEL` — except `sysenter` on AMD CPUs, where
/// it is an invalid opcode in 64-bit mode and Linux gives `SIGILL`, `ILL_ILLOPN` (see
/// [`sysenter_expected`]).
const INSN_EXPECTED: &[(&str, &str)] = &[
    ("out_imm", "SEGV code 128"),
    ("out_dx", "SEGV code 128"),
    ("in_imm", "SEGV code 128"),
    ("in_dx", "SEGV code 128"),
    ("ins", "SEGV code 128"),
    ("outs", "SEGV code 128"),
    ("int80", "SEGV code 128"),
    ("sysenter", "per CPU vendor"),
    ("hlt", "SEGV code 128"),
    ("cli", "SEGV code 128"),
    ("ud2", "ILL code 2"),
    ("int3", "TRAP code 128"),
];

/// Cases whose Linux answer does not depend on IA32 emulation: checked natively too.
const NATIVE_TOO: &[&str] = &[
    "out_imm", "out_dx", "in_imm", "in_dx", "ins", "outs", "hlt", "cli", "ud2", "int3",
];

/// What Linux gives for `sysenter` in 64-bit mode on this CPU: AMD raises #UD, Intel
/// enters the kernel's 32-bit entry, which a kernel without one refuses with #GP.
fn sysenter_expected() -> &'static str {
    let l = std::arch::x86_64::__cpuid(0);
    let vendor: Vec<u8> = [l.ebx, l.edx, l.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    if vendor == b"AuthenticAMD" || vendor == b"HygonGenuine" {
        "ILL code 2"
    } else {
        "SEGV code 128"
    }
}

fn expected_lines(cases: &[&str]) -> String {
    cases
        .iter()
        .map(|c| {
            let (_, want) = INSN_EXPECTED
                .iter()
                .find(|(n, _)| n == c)
                .expect("a known case");
            let want = if *c == "sysenter" {
                sysenter_expected()
            } else {
                want
            };
            format!("{c}: {want}\n")
        })
        .collect()
}

fn privileged_instructions_give_linux_signals(p: Platform) {
    let exe = fixture("trap_insn", Link::Static);
    let all: Vec<&str> = INSN_EXPECTED.iter().map(|(n, _)| *n).collect();
    let run = runsc_do(p, &[], &[path_str(&exe)]);
    assert_eq!(run.stdout, expected_lines(&all), "{run:#?}");
    assert_eq!(run.code, 0, "{run:#?}");
    // The table is Linux's: the host agrees where it can.
    let mut cmd = vec![path_str(&exe)];
    cmd.extend_from_slice(NATIVE_TOO);
    if sysenter_expected() == "ILL code 2" {
        // On AMD the host's answer does not depend on IA32 emulation either.
        cmd.push("sysenter");
    }
    let host = native(&cmd);
    let native_cases: Vec<&str> = cmd[1..].to_vec();
    assert_eq!(
        host.stdout,
        expected_lines(&native_cases),
        "natively: {host:#?}"
    );
}

/// `trap_vsyscall`'s output on Linux with `vsyscall=xonly`, the default.
const VSYSCALL_EXPECTED: &str = "gettimeofday: ok\n\
    time: ok\n\
    getcpu: ok\n\
    kernel pointer: SEGV code 1 addr ok rip in vsyscall page\n\
    faulting pointer: SEGV code 128 rip in vsyscall page\n\
    misaligned entry: SEGV code 128 rip in vsyscall page\n\
    read of the page: SEGV code 1 addr ok rip elsewhere\n";

fn vsyscall_page_calls_are_emulated(p: Platform) {
    let exe = fixture("trap_vsyscall", Link::Static);
    let run = runsc_do(p, &[], &[path_str(&exe)]);
    assert_eq!(run.stdout, VSYSCALL_EXPECTED, "{run:#?}");
    assert_eq!(run.code, 0, "{run:#?}");
    // The host is the oracle where it emulates the page too (vsyscall=xonly).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    if maps.contains("[vsyscall]") {
        let host = native(&[path_str(&exe)]);
        assert_eq!(host.stdout, VSYSCALL_EXPECTED, "natively: {host:#?}");
    }
}

/// `sig_badframe`'s output on Linux x86-64.
const BADFRAME_EXPECTED: &str = "cs_rpl0: exit 7\n\
    cs_null: killed by SEGV\n\
    cs_user32: killed by SEGV\n\
    ss_null_strict: killed by SEGV\n\
    ss_null_lax: exit 7\n\
    fpstate_unmapped: killed by SEGV\n";

fn forged_sigreturn_frames_end_as_on_linux(p: Platform) {
    let exe = fixture("sig_badframe", Link::Static);
    let host = native(&[path_str(&exe)]);
    assert_eq!(host.stdout, BADFRAME_EXPECTED, "natively: {host:#?}");
    let run = runsc_do(p, &[], &[path_str(&exe)]);
    assert_eq!(run.stdout, BADFRAME_EXPECTED, "{run:#?}");
    assert_eq!(run.code, 0, "{run:#?}");
}

fn a_system_call_with_a_non_canonical_stack_pointer_returns(p: Platform) {
    let exe = fixture("trap_badrsp", Link::Static);
    let want = "getpid with a non-canonical rsp: ok\n";
    let host = native(&[path_str(&exe)]);
    assert_eq!(host.stdout, want, "natively: {host:#?}");
    let run = runsc_do(p, &[], &[path_str(&exe)]);
    assert_eq!(run.stdout, want, "{run:#?}");
    assert_eq!(run.code, 0, "{run:#?}");
}
