//! OCI `linux.seccomp` (runtime spec, as Docker and Kubernetes write it) enforced by the
//! Sentry: the section becomes a `sentry::policy::Policy`, checked before each
//! application system call is dispatched, with the semantics runc gets from libseccomp:
//!
//! - `defaultAction` for calls no rule matches; `defaultErrnoRet` (default `EPERM`) with
//!   `SCMP_ACT_ERRNO`; each `syscalls[]` entry gives its `action` (with `errnoRet`,
//!   default `EPERM`) to the calls it `names` whose `args` conditions all hold.
//! - Conditions compare the raw 64-bit argument registers, unsigned: `SCMP_CMP_NE`, `LT`,
//!   `LE`, `EQ`, `GE`, `GT` against `value`; `SCMP_CMP_MASKED_EQ` is
//!   `(arg & value) == valueTwo`. As runc does, when two conditions of one entry name the
//!   same argument, each becomes a rule of its own (they are alternatives).
//! - Several matching rules: the most restrictive action wins (see `sentry::policy`).
//! - Actions: `SCMP_ACT_ALLOW`; `SCMP_ACT_ERRNO`; `SCMP_ACT_KILL` and
//!   `SCMP_ACT_KILL_THREAD` (the thread, and the process with its last thread);
//!   `SCMP_ACT_KILL_PROCESS`; `SCMP_ACT_TRAP` (`SIGSYS`); `SCMP_ACT_LOG` (runs, logged);
//!   `SCMP_ACT_TRACE` fails with `ENOSYS`, what the kernel does when no tracer is
//!   attached (the sandbox has none); `SCMP_ACT_NOTIFY` is refused (no seccomp agent).
//! - Names are x86-64 system calls (`linux_abi::sysno`); a name the table does not know
//!   is skipped, as libseccomp and runc skip names unknown to them.
//! - `architectures`: the sandbox runs x86-64 code only, whose calls every filter covers
//!   (libseccomp always includes the native architecture); the other names are accepted
//!   and have no effect. `flags` have no effect either (`SECCOMP_FILTER_FLAG_*` concern the
//!   host kernel's filter).
//! - `SCMP_ACT_ERRNO` refusals are not logged (the kernel does not log them either);
//!   kills, traps and `SCMP_ACT_LOG` are, with one `warn` line naming the call.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use sentry::policy::{self, Action, ArgCmp, Cmp, Policy, Rule};

use crate::error::Error;
use crate::profile::syscall_number;

fn bad(m: impl std::fmt::Display) -> Error {
    Error::Policy(format!("linux.seccomp: {m}"))
}

/// The action for `act` with `errno` (`errnoRet`/`defaultErrnoRet`).
fn action(act: LinuxSeccompAction, errno: Option<u32>, what: &str) -> Result<Action, Error> {
    if errno.is_some()
        && !matches!(
            act,
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
        )
    {
        return Err(bad(format!(
            "{what}: an errno return only goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE"
        )));
    }
    Ok(match act {
        LinuxSeccompAction::ScmpActAllow => Action::Allow,
        LinuxSeccompAction::ScmpActLog => Action::Log,
        LinuxSeccompAction::ScmpActErrno => {
            let e = errno.map_or(libc::EPERM as u64, u64::from);
            Action::Errno(policy::errno_value(e).map_err(|e| bad(format!("{what}: {e}")))?)
        }
        LinuxSeccompAction::ScmpActTrace => Action::Errno(libc::ENOSYS as u16),
        LinuxSeccompAction::ScmpActTrap => Action::Trap(0),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            Action::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(bad(format!(
                "{what}: SCMP_ACT_NOTIFY is not supported (no seccomp agent)"
            )));
        }
    })
}

/// The Sentry policy of an OCI `linux.seccomp` section; an error for anything malformed
/// or unsupported (never a silent allow).
pub fn to_policy(s: &LinuxSeccomp) -> Result<Policy, Error> {
    if s.listener_path().is_some() {
        return Err(bad("listenerPath: seccomp agents are not supported"));
    }
    let default = action(s.default_action(), s.default_errno_ret(), "defaultAction")?;
    let mut p = Policy::new("seccomp", default, false);
    for (i, call) in s.syscalls().iter().flatten().enumerate() {
        let what = format!("syscalls[{i}]");
        let act = action(call.action(), call.errno_ret(), &what)?;
        let mut conds = Vec::new();
        let mut per_index = [0usize; 6];
        for a in call.args().iter().flatten() {
            if a.index() >= 6 {
                return Err(bad(format!(
                    "{what}: argument index {} is out of range (0 to 5)",
                    a.index()
                )));
            }
            per_index[a.index()] += 1;
            let (op, value) = match a.op() {
                LinuxSeccompOperator::ScmpCmpNe => (Cmp::Ne, a.value()),
                LinuxSeccompOperator::ScmpCmpLt => (Cmp::Lt, a.value()),
                LinuxSeccompOperator::ScmpCmpLe => (Cmp::Le, a.value()),
                LinuxSeccompOperator::ScmpCmpEq => (Cmp::Eq, a.value()),
                LinuxSeccompOperator::ScmpCmpGe => (Cmp::Ge, a.value()),
                LinuxSeccompOperator::ScmpCmpGt => (Cmp::Gt, a.value()),
                LinuxSeccompOperator::ScmpCmpMaskedEq => {
                    (Cmp::MaskedEq(a.value()), a.value_two().unwrap_or(0))
                }
            };
            conds.push(ArgCmp::new(a.index(), op, value).map_err(|e| bad(format!("{what}: {e}")))?);
        }
        // runc: conditions on one argument are alternatives, each a rule of its own.
        let alternatives: Vec<Vec<ArgCmp>> = if per_index.iter().any(|&n| n > 1) {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        for name in call.names() {
            let Some(nr) = syscall_number(name) else {
                tracing::debug!(name, "linux.seccomp: unknown system call skipped");
                continue;
            };
            for conditions in &alternatives {
                p.add_rule(
                    nr,
                    Rule {
                        action: act,
                        conditions: conditions.clone(),
                    },
                )
                .map_err(|e| bad(format!("{what}: {e}")))?;
            }
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_abi::sysno;

    fn parse(json: &str) -> Result<Policy, Error> {
        let s: LinuxSeccomp = serde_json::from_str(json).map_err(bad)?;
        to_policy(&s)
    }

    fn args(a: &[u64]) -> [u64; 6] {
        let mut r = [0; 6];
        r[..a.len()].copy_from_slice(a);
        r
    }

    #[test]
    fn docker_style_denials_and_defaults() {
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{"names":["mount","unshare","ptrace","no_such_call"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                            {"names":["reboot"],"action":"SCMP_ACT_ERRNO"},
                            {"names":["kexec_load"],"action":"SCMP_ACT_KILL_PROCESS"},
                            {"names":["acct"],"action":"SCMP_ACT_TRACE"}]}"#,
        )
        .expect("policy");
        assert_eq!(p.decide(sysno::SYS_MOUNT, &args(&[])), Action::Errno(1));
        assert_eq!(p.decide(sysno::SYS_PTRACE, &args(&[])), Action::Errno(1));
        assert_eq!(
            p.decide(sysno::SYS_REBOOT, &args(&[])),
            Action::Errno(libc::EPERM as u16)
        );
        assert_eq!(
            p.decide(sysno::SYS_KEXEC_LOAD, &args(&[])),
            Action::KillProcess
        );
        assert_eq!(
            p.decide(sysno::SYS_ACCT, &args(&[])),
            Action::Errno(libc::ENOSYS as u16)
        );
        assert_eq!(p.decide(sysno::SYS_READ, &args(&[])), Action::Allow);
    }

    #[test]
    fn argument_conditions_follow_libseccomp_and_runc() {
        // Docker's personality rule: allowed for three values, refused otherwise.
        let p = parse(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,
                "syscalls":[
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]},
                  {"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]},
                  {"names":["write"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_GE"},{"index":2,"value":100,"op":"SCMP_CMP_LT"}]},
                  {"names":["close"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"},{"index":0,"value":4,"op":"SCMP_CMP_EQ"}]}
                ]}"#,
        )
        .expect("policy");
        let deny = Action::Errno(38);
        assert_eq!(p.decide(sysno::SYS_PERSONALITY, &args(&[8])), Action::Allow);
        assert_eq!(p.decide(sysno::SYS_PERSONALITY, &args(&[1])), deny);
        // No namespace flag: allowed; CLONE_NEWUSER: refused.
        assert_eq!(
            p.decide(sysno::SYS_CLONE, &args(&[0x11 | 0x100])),
            Action::Allow
        );
        assert_eq!(p.decide(sysno::SYS_CLONE, &args(&[0x1000_0000])), deny);
        // Two arguments: both must hold.
        assert_eq!(
            p.decide(sysno::SYS_WRITE, &args(&[1, 0, 99])),
            Action::Allow
        );
        assert_eq!(p.decide(sysno::SYS_WRITE, &args(&[1, 0, 100])), deny);
        assert_eq!(p.decide(sysno::SYS_WRITE, &args(&[0, 0, 1])), deny);
        // One argument twice: alternatives.
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[3])), Action::Allow);
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[4])), Action::Allow);
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[5])), deny);
    }

    #[test]
    fn malformed_sections_are_errors() {
        for bad_json in [
            r#"{"defaultAction":"SCMP_ACT_NOPE"}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":6,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_NOPE"}]}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOTIFY"}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1}"#,
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":0}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_NOPE"]}"#,
            r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock"}"#,
            r#"{"syscalls":[]}"#,
        ] {
            assert!(parse(bad_json).is_err(), "accepted: {bad_json}");
        }
    }
}
