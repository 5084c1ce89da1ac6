//! `--strace` output: each call with decoded arguments and its result, one line on the
//! Sentry's stderr, e.g. `[pid 1] openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3`.

use std::fmt::Write as _;

use linux_abi::Errno;
use linux_abi::sysno::{SYS_EXIT, SYS_EXIT_GROUP, syscall_name};

use super::SyscallEntry;
use crate::kernel::Task;

/// How strace prints an argument or result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgFmt {
    /// Signed decimal (64-bit).
    Int,
    /// Signed decimal (32-bit).
    I32,
    /// Unsigned decimal.
    Uint,
    /// Hexadecimal.
    Hex,
    /// Octal (modes).
    Oct,
    /// A pointer: hex, or `NULL`.
    Ptr,
    /// A file descriptor (`AT_FDCWD` shown by name).
    Fd,
    /// A NUL-terminated string in application memory (paths), shown quoted.
    Str,
    /// `open` flags.
    OpenFlags,
    /// `PROT_*` bits.
    Prot,
    /// `MAP_*` flags.
    MapFlags,
    /// A signal number.
    Signal,
    /// A clock id.
    Clock,
}

const MAX_STR: usize = 64;

fn flags(v: u64, names: &[(u64, &str)], zero: &str) -> String {
    if v == 0 {
        return zero.to_string();
    }
    let mut out = Vec::new();
    let mut rest = v;
    for &(bit, name) in names {
        if bit != 0 && rest & bit == bit {
            out.push(name.to_string());
            rest &= !bit;
        }
    }
    if rest != 0 {
        out.push(format!("{rest:#x}"));
    }
    out.join("|")
}

fn quote(s: &[u8], truncated: bool) -> String {
    let mut out = String::from("\"");
    for &b in s {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
    if truncated {
        out.push_str("...");
    }
    out
}

fn open_flags(v: u64) -> String {
    use linux_abi::flags::open::*;
    let acc = match v as u32 & O_ACCMODE {
        O_RDONLY => "O_RDONLY",
        O_WRONLY => "O_WRONLY",
        O_RDWR => "O_RDWR",
        _ => "O_ACCMODE",
    };
    let names: &[(u64, &str)] = &[
        (O_CREAT.into(), "O_CREAT"),
        (O_EXCL.into(), "O_EXCL"),
        (O_NOCTTY.into(), "O_NOCTTY"),
        (O_TRUNC.into(), "O_TRUNC"),
        (O_APPEND.into(), "O_APPEND"),
        (O_NONBLOCK.into(), "O_NONBLOCK"),
        (O_SYNC.into(), "O_SYNC"),
        (O_DSYNC.into(), "O_DSYNC"),
        (O_DIRECT.into(), "O_DIRECT"),
        (O_LARGEFILE.into(), "O_LARGEFILE"),
        (O_DIRECTORY.into(), "O_DIRECTORY"),
        (O_NOFOLLOW.into(), "O_NOFOLLOW"),
        (O_NOATIME.into(), "O_NOATIME"),
        (O_CLOEXEC.into(), "O_CLOEXEC"),
        (O_PATH.into(), "O_PATH"),
    ];
    let rest = flags(v & !u64::from(O_ACCMODE), names, "");
    if rest.is_empty() {
        acc.to_string()
    } else {
        format!("{acc}|{rest}")
    }
}

fn signal_name(sig: i64) -> String {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match sig {
        1..=31 => NAMES[(sig - 1) as usize].to_string(),
        32..=64 => format!("SIGRT_{}", sig - 32),
        _ => sig.to_string(),
    }
}

/// Formats one value.
pub(crate) fn format_arg(t: &Task, fmt: ArgFmt, v: u64) -> String {
    use linux_abi::flags::mm::*;
    match fmt {
        ArgFmt::Int => (v as i64).to_string(),
        ArgFmt::I32 => (v as u32 as i32).to_string(),
        ArgFmt::Uint => v.to_string(),
        ArgFmt::Hex => format!("{v:#x}"),
        ArgFmt::Oct => format!("{v:#o}"),
        ArgFmt::Ptr if v == 0 => "NULL".to_string(),
        ArgFmt::Ptr => format!("{v:#x}"),
        ArgFmt::Fd if v as u32 as i32 == linux_abi::flags::at::AT_FDCWD => "AT_FDCWD".to_string(),
        ArgFmt::Fd => (v as u32 as i32).to_string(),
        ArgFmt::Str if v == 0 => "NULL".to_string(),
        ArgFmt::Str => match t.mm().read_c_string(v, MAX_STR) {
            Ok(s) => quote(&s, false),
            Err(Errno::ENAMETOOLONG) => {
                let mut buf = [0u8; MAX_STR];
                match t.mm().copy_in(v, &mut buf) {
                    Ok(()) => quote(&buf, true),
                    Err(_) => format!("{v:#x}"),
                }
            }
            Err(_) => format!("{v:#x}"),
        },
        ArgFmt::OpenFlags => open_flags(v),
        ArgFmt::Prot => flags(
            v,
            &[
                (PROT_READ.into(), "PROT_READ"),
                (PROT_WRITE.into(), "PROT_WRITE"),
                (PROT_EXEC.into(), "PROT_EXEC"),
            ],
            "PROT_NONE",
        ),
        ArgFmt::MapFlags => {
            let kind = match v as u32 & MAP_SHARED_VALIDATE {
                MAP_SHARED => "MAP_SHARED",
                MAP_PRIVATE => "MAP_PRIVATE",
                MAP_SHARED_VALIDATE => "MAP_SHARED_VALIDATE",
                _ => "0",
            };
            let rest = flags(
                v & !u64::from(MAP_SHARED_VALIDATE),
                &[
                    (MAP_FIXED.into(), "MAP_FIXED"),
                    (MAP_ANONYMOUS.into(), "MAP_ANONYMOUS"),
                    (MAP_32BIT.into(), "MAP_32BIT"),
                    (MAP_GROWSDOWN.into(), "MAP_GROWSDOWN"),
                    (MAP_DENYWRITE.into(), "MAP_DENYWRITE"),
                    (MAP_NORESERVE.into(), "MAP_NORESERVE"),
                    (MAP_POPULATE.into(), "MAP_POPULATE"),
                    (MAP_STACK.into(), "MAP_STACK"),
                    (MAP_FIXED_NOREPLACE.into(), "MAP_FIXED_NOREPLACE"),
                ],
                "",
            );
            if rest.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}|{rest}")
            }
        }
        ArgFmt::Signal => signal_name(v as i64),
        ArgFmt::Clock => match v {
            0 => "CLOCK_REALTIME".into(),
            1 => "CLOCK_MONOTONIC".into(),
            2 => "CLOCK_PROCESS_CPUTIME_ID".into(),
            3 => "CLOCK_THREAD_CPUTIME_ID".into(),
            4 => "CLOCK_MONOTONIC_RAW".into(),
            5 => "CLOCK_REALTIME_COARSE".into(),
            6 => "CLOCK_MONOTONIC_COARSE".into(),
            7 => "CLOCK_BOOTTIME".into(),
            _ => (v as i64).to_string(),
        },
    }
}

/// Formats `name(args...)` before the call runs (strings are read before the call).
pub(crate) fn format_call(t: &Task, e: &SyscallEntry, args: &[u64; 6]) -> String {
    let parts: Vec<String> = e
        .args
        .iter()
        .zip(args.iter())
        .map(|(&f, &v)| format_arg(t, f, v))
        .collect();
    format!("{}({})", e.name, parts.join(", "))
}

fn emit(t: &Task, line: &str) {
    t.kernel().strace_line(line);
}

/// Prints the finished call.
pub(crate) fn print_result(t: &Task, e: &SyscallEntry, call: &str, res: &Result<u64, Errno>) {
    let r = match res {
        // exit and exit_group do not return.
        Ok(_) if e.nr == SYS_EXIT || e.nr == SYS_EXIT_GROUP => "?".to_string(),
        Ok(v) => format_arg(t, e.ret, *v),
        Err(errno) => format!(
            "-1 {} ({})",
            errno.name().unwrap_or("E?"),
            errno.description().unwrap_or("unknown error")
        ),
    };
    emit(t, &format!("[pid {}] {call} = {r}", t.tid()));
}

/// Prints a call the Sentry does not implement.
pub(crate) fn print_unknown(t: &Task, nr: u64, args: &[u64; 6]) {
    let name = syscall_name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_string);
    let a: Vec<String> = args.iter().map(|v| format!("{v:#x}")).collect();
    emit(
        t,
        &format!(
            "[pid {}] {name}({}) = -1 ENOSYS ({})",
            t.tid(),
            a.join(", "),
            Errno::ENOSYS.description().unwrap_or("unknown error")
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_decoding() {
        assert_eq!(open_flags(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open_flags(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(quote(b"a\"b\n", false), "\"a\\\"b\\n\"");
        assert_eq!(
            flags(0x22, &[(0x20, "MAP_ANONYMOUS")], "0"),
            "MAP_ANONYMOUS|0x2"
        );
    }
}
