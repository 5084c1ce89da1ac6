//! Least-privilege system-call profiles: learned from a run (`runsc do --record-profile`,
//! [`SandboxBuilder::record_profile`](crate::SandboxBuilder::record_profile)), enforced by
//! the Sentry (`runsc do --profile`, the `dev.rsentry.profile` OCI annotation,
//! [`SandboxBuilder::profile`](crate::SandboxBuilder::profile)).
//!
//! The file is JSON:
//!
//! ```json
//! {
//!   "version": 1,
//!   "default_action": "errno",
//!   "errno": "EPERM",
//!   "syscalls": [
//!     { "name": "read" },
//!     { "name": "socket", "args": [ { "family": "AF_UNIX", "type": "SOCK_STREAM" } ] },
//!     { "name": "openat", "args": [ { "flags": "O_RDONLY" }, { "flags": "O_WRONLY|O_CREAT" } ] },
//!     { "name": "mmap", "args": [ { "prot": "PROT_READ|PROT_WRITE" } ] }
//!   ]
//! }
//! ```
//!
//! A call listed without `args` is allowed with any arguments; with `args`, only when its
//! argument class is one of those listed. The classes (see `sentry::policy::class_fields`):
//! `socket`/`socketpair`: `family`, `type` (without `SOCK_NONBLOCK`/`SOCK_CLOEXEC`);
//! `ioctl`: `request`; `prctl`: `option`; `clone`: `flags` (with the exit signal);
//! `open`/`openat`: `flags` (the access mode and `O_CREAT` only); `mmap`, `mprotect`,
//! `pkey_mprotect`: `prot`. Values are names (`AF_INET`, `TCGETS`, `PR_SET_NAME`,
//! `CLONE_VM|SIGCHLD`...), numbers, or `0x` hex strings, joined with `|`.
//!
//! Anything else gets `default_action`: `errno` (the call fails with `errno`, a name or a
//! number, default `EPERM`) or `kill` (the process is killed by `SIGSYS`), and one
//! warning line naming the call and its arguments on the sandbox's standard error (the
//! log, with `--log`/`--debug-log`).
//!
//! Recording writes the file once, when the sandbox ends; recording into an existing
//! profile merges (the union of both), keeping its action.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use linux_abi::sysno;
use sentry::policy::{self, Action, Policy, Rule};

use crate::error::Error;

/// The format version this crate reads and writes.
pub const PROFILE_VERSION: u32 = 1;

/// What a call outside the profile gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// The call fails with the profile's `errno`.
    #[default]
    Errno,
    /// The process is killed by `SIGSYS`.
    Kill,
}

/// A number or a symbolic value in a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// A plain number.
    Number(u64),
    /// Names, numbers and `0x` hex numbers joined with `|`.
    Text(String),
}

/// One system call of a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyscallEntry {
    /// The x86-64 name (`openat`).
    pub name: String,
    /// The argument classes allowed; absent: any arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<BTreeMap<String, Value>>>,
}

/// A system-call profile (see the module documentation for the file format).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Format version ([`PROFILE_VERSION`]).
    pub version: u32,
    /// What a call outside the profile gets.
    #[serde(default)]
    pub default_action: DefaultAction,
    /// The errno for [`DefaultAction::Errno`] (name or number; default `EPERM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<Value>,
    /// The calls allowed.
    pub syscalls: Vec<SyscallEntry>,
}

impl Profile {
    /// Parses and checks a profile.
    pub fn from_json(text: &str) -> Result<Profile, Error> {
        let p: Profile =
            serde_json::from_str(text).map_err(|e| Error::Policy(format!("bad profile: {e}")))?;
        p.to_policy()?;
        Ok(p)
    }

    /// Reads, parses and checks the profile in `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Profile, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Policy(format!("profile {}: {e}", path.display())))?;
        Profile::from_json(&text)
            .map_err(|e| Error::Policy(format!("profile {}: {e}", path.display())))
    }

    /// The profile as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A profile holds only strings, numbers, maps and lists: it always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Makes every call fail with `errno` (a positive value such as `libc::EPERM`)
    /// outside the profile.
    pub fn deny_with_errno(mut self, errno: i32) -> Profile {
        self.default_action = DefaultAction::Errno;
        self.errno = Some(Value::Number(errno.max(0) as u64));
        self
    }

    /// Makes a call outside the profile kill the process (`SIGSYS`).
    pub fn kill_on_violation(mut self) -> Profile {
        self.default_action = DefaultAction::Kill;
        self.errno = None;
        self
    }

    /// The Sentry policy this profile stands for (errors for unknown names, classes or
    /// values).
    pub fn to_policy(&self) -> Result<Policy, Error> {
        let bad = |m: String| Error::Policy(format!("bad profile: {m}"));
        if self.version != PROFILE_VERSION {
            return Err(bad(format!(
                "version {} (this runsc reads version {PROFILE_VERSION})",
                self.version
            )));
        }
        let default = match self.default_action {
            DefaultAction::Kill => {
                if self.errno.is_some() {
                    return Err(bad("\"errno\" with \"default_action\": \"kill\"".into()));
                }
                Action::KillProcess
            }
            DefaultAction::Errno => {
                let e = match &self.errno {
                    None => libc::EPERM as u64,
                    Some(v) => parse_errno(v).map_err(bad)?,
                };
                Action::Errno(policy::errno_value(e).map_err(|e| bad(e.to_string()))?)
            }
        };
        let mut p = Policy::new("profile", default, true);
        for entry in &self.syscalls {
            let nr = syscall_number(&entry.name)
                .ok_or_else(|| bad(format!("unknown system call {:?}", entry.name)))?;
            let classes: Vec<Vec<u64>> = match &entry.args {
                None => vec![Vec::new()],
                Some(list) => list
                    .iter()
                    .map(|c| class_values(nr, &entry.name, c))
                    .collect::<Result<_, _>>()
                    .map_err(bad)?,
            };
            for values in classes {
                let rule = Rule {
                    action: Action::Allow,
                    conditions: policy::class_conditions(nr, &values),
                };
                p.add_rule(nr, rule).map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(p)
    }

    /// A profile allowing exactly what `rec` saw, refusing the rest with `EPERM`.
    pub fn from_recording(rec: &policy::Recording) -> Profile {
        let syscalls = rec
            .iter()
            .filter_map(|(&nr, classes)| {
                let name = sysno::syscall_name(nr)?.to_string();
                let fields = policy::class_fields(nr);
                let args = (!fields.is_empty()).then(|| {
                    classes
                        .iter()
                        .map(|values| {
                            fields
                                .iter()
                                .zip(values)
                                .map(|(f, &v)| (f.name.to_string(), format_value(nr, f.name, v)))
                                .collect()
                        })
                        .collect()
                });
                Some(SyscallEntry { name, args })
            })
            .collect();
        Profile {
            version: PROFILE_VERSION,
            default_action: DefaultAction::Errno,
            errno: Some(Value::Text("EPERM".into())),
            syscalls,
        }
    }

    /// Adds everything `other` allows (its action is ignored: ours stays).
    pub fn merge(&mut self, other: &Profile) -> Result<(), Error> {
        let mut by_name: BTreeMap<String, Option<BTreeSet<Vec<u64>>>> = BTreeMap::new();
        for e in self.syscalls.iter().chain(&other.syscalls) {
            let nr = syscall_number(&e.name)
                .ok_or_else(|| Error::Policy(format!("unknown system call {:?}", e.name)))?;
            let classes = match &e.args {
                None => None,
                Some(list) => Some(
                    list.iter()
                        .map(|c| class_values(nr, &e.name, c))
                        .collect::<Result<BTreeSet<_>, _>>()
                        .map_err(Error::Policy)?,
                ),
            };
            let slot = by_name
                .entry(e.name.clone())
                .or_insert(Some(BTreeSet::new()));
            match (slot.as_mut(), classes) {
                (Some(_), None) => *slot = None,
                (Some(s), Some(c)) => s.extend(c),
                (None, _) => {}
            }
        }
        self.syscalls = by_name
            .into_iter()
            .map(|(name, classes)| {
                let nr = syscall_number(&name).unwrap_or(0);
                let fields = policy::class_fields(nr);
                let args = classes.map(|set| {
                    set.into_iter()
                        .map(|values| {
                            fields
                                .iter()
                                .zip(values)
                                .map(|(f, v)| (f.name.to_string(), format_value(nr, f.name, v)))
                                .collect()
                        })
                        .collect()
                });
                SyscallEntry { name, args }
            })
            .collect();
        Ok(())
    }

    /// Writes `rec` into `path`: a new profile, or merged into the one already there.
    pub fn record_into(path: &Path, rec: &policy::Recording) -> Result<(), Error> {
        let mut profile = Profile::from_recording(rec);
        if path.exists() {
            let mut old = Profile::load(path)?;
            old.merge(&profile)?;
            profile = old;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, profile.to_json())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| Error::host(format!("write profile {}", path.display()), e))
    }
}

/// The x86-64 number of system call `name`.
pub fn syscall_number(name: &str) -> Option<u64> {
    (0..sysno::SYSCALL_COUNT).find(|&nr| sysno::syscall_name(nr) == Some(name))
}

/// An errno given as a name (`EPERM`) or a number.
fn parse_errno(v: &Value) -> Result<u64, String> {
    match v {
        Value::Number(n) => Ok(*n),
        Value::Text(t) => (1..4096)
            .find(|&n| linux_abi::Errno::new(n).name() == Some(t.trim()))
            .map(|n| n as u64)
            .or_else(|| parse_number(t.trim()))
            .ok_or_else(|| format!("unknown errno {t:?}")),
    }
}

/// The class values of `class` for call `nr`: exactly the fields the call has.
fn class_values(nr: u64, name: &str, class: &BTreeMap<String, Value>) -> Result<Vec<u64>, String> {
    let fields = policy::class_fields(nr);
    if fields.is_empty() {
        return Err(format!("{name} takes no \"args\" classes"));
    }
    if let Some(k) = class.keys().find(|k| !fields.iter().any(|f| f.name == *k)) {
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        return Err(format!(
            "{name}: unknown class field {k:?} (expected {})",
            names.join(", ")
        ));
    }
    fields
        .iter()
        .map(|f| {
            let v = class
                .get(f.name)
                .ok_or_else(|| format!("{name}: class without {:?}", f.name))?;
            let n = parse_value(nr, f.name, v).map_err(|e| format!("{name}: {}: {e}", f.name))?;
            Ok(n & f.mask)
        })
        .collect()
}

fn parse_number(t: &str) -> Option<u64> {
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => t.parse().ok(),
    }
}

fn parse_value(nr: u64, field: &str, v: &Value) -> Result<u64, String> {
    let text = match v {
        Value::Number(n) => return Ok(*n),
        Value::Text(t) => t,
    };
    let names = names_for(nr, field);
    let mut acc = 0u64;
    for tok in text.split('|').map(str::trim) {
        let n = names
            .iter()
            .find(|(name, _)| *name == tok)
            .map(|&(_, v)| v)
            .or_else(|| parse_number(tok))
            .ok_or_else(|| format!("unknown value {tok:?}"))?;
        acc |= n;
    }
    Ok(acc)
}

/// The symbolic form of a class value.
fn format_value(nr: u64, field: &str, v: u64) -> Value {
    let names = names_for(nr, field);
    if let Some((name, _)) = names.iter().find(|&&(_, n)| n == v) {
        return Value::Text((*name).to_string());
    }
    if !is_flags(field) {
        return Value::Text(format!("{v:#x}"));
    }
    let mut parts = Vec::new();
    let mut left = v;
    let mut signal = None;
    if nr == sysno::SYS_CLONE {
        let sig = left & 0xff;
        left &= !0xff;
        if sig != 0 {
            signal = Some(
                SIGNALS
                    .iter()
                    .find(|&&(_, n)| n == sig)
                    .map_or_else(|| sig.to_string(), |(name, _)| (*name).to_string()),
            );
        }
    }
    for &(name, bit) in names {
        if bit.count_ones() == 1 && bit > 0xff && left & bit == bit
            || bit.count_ones() == 1 && nr != sysno::SYS_CLONE && left & bit == bit
        {
            parts.push(name.to_string());
            left &= !bit;
        }
    }
    parts.extend(signal);
    if left != 0 {
        parts.push(format!("{left:#x}"));
    }
    if parts.is_empty() {
        return Value::Number(0);
    }
    Value::Text(parts.join("|"))
}

fn is_flags(field: &str) -> bool {
    field == "flags" || field == "prot"
}

fn names_for(nr: u64, field: &str) -> &'static [(&'static str, u64)] {
    match (nr, field) {
        (_, "family") => FAMILIES,
        (_, "type") => SOCK_TYPES,
        (_, "request") => IOCTLS,
        (_, "option") => PRCTLS,
        (_, "prot") => PROTS,
        (sysno::SYS_CLONE, "flags") => CLONE_FLAGS_AND_SIGNALS,
        (_, "flags") => OPEN_FLAGS,
        _ => &[],
    }
}

const FAMILIES: &[(&str, u64)] = &[
    ("AF_UNSPEC", 0),
    ("AF_UNIX", 1),
    ("AF_INET", 2),
    ("AF_AX25", 3),
    ("AF_IPX", 4),
    ("AF_APPLETALK", 5),
    ("AF_X25", 9),
    ("AF_INET6", 10),
    ("AF_KEY", 15),
    ("AF_NETLINK", 16),
    ("AF_PACKET", 17),
    ("AF_RDS", 21),
    ("AF_CAN", 29),
    ("AF_TIPC", 30),
    ("AF_BLUETOOTH", 31),
    ("AF_ALG", 38),
    ("AF_VSOCK", 40),
    ("AF_XDP", 44),
];

const SOCK_TYPES: &[(&str, u64)] = &[
    ("SOCK_STREAM", 1),
    ("SOCK_DGRAM", 2),
    ("SOCK_RAW", 3),
    ("SOCK_RDM", 4),
    ("SOCK_SEQPACKET", 5),
    ("SOCK_DCCP", 6),
    ("SOCK_PACKET", 10),
];

const IOCTLS: &[(&str, u64)] = &[
    ("TCGETS", 0x5401),
    ("TCSETS", 0x5402),
    ("TCSETSW", 0x5403),
    ("TCSETSF", 0x5404),
    ("TIOCSCTTY", 0x540e),
    ("TIOCGPGRP", 0x540f),
    ("TIOCSPGRP", 0x5410),
    ("TIOCGWINSZ", 0x5413),
    ("TIOCSWINSZ", 0x5414),
    ("FIONREAD", 0x541b),
    ("TIOCSTI", 0x5412),
    ("TIOCNOTTY", 0x5422),
    ("FIONBIO", 0x5421),
    ("TIOCGPTN", 0x8004_5430),
    ("TIOCSPTLCK", 0x4004_5431),
    ("FIONCLEX", 0x5450),
    ("FIOCLEX", 0x5451),
    ("FIOASYNC", 0x5452),
];

const PRCTLS: &[(&str, u64)] = &[
    ("PR_SET_PDEATHSIG", 1),
    ("PR_GET_PDEATHSIG", 2),
    ("PR_GET_DUMPABLE", 3),
    ("PR_SET_DUMPABLE", 4),
    ("PR_SET_KEEPCAPS", 8),
    ("PR_SET_NAME", 15),
    ("PR_GET_NAME", 16),
    ("PR_GET_SECCOMP", 21),
    ("PR_SET_SECCOMP", 22),
    ("PR_CAPBSET_READ", 23),
    ("PR_CAPBSET_DROP", 24),
    ("PR_GET_TIMERSLACK", 30),
    ("PR_SET_TIMERSLACK", 29),
    ("PR_SET_MM", 35),
    ("PR_SET_CHILD_SUBREAPER", 36),
    ("PR_GET_CHILD_SUBREAPER", 37),
    ("PR_SET_NO_NEW_PRIVS", 38),
    ("PR_GET_NO_NEW_PRIVS", 39),
    ("PR_CAP_AMBIENT", 47),
    ("PR_SET_VMA", 0x5356_4d41),
];

const PROTS: &[(&str, u64)] = &[
    ("PROT_NONE", 0),
    ("PROT_READ", 1),
    ("PROT_WRITE", 2),
    ("PROT_EXEC", 4),
    ("PROT_SEM", 8),
    ("PROT_GROWSDOWN", 0x0100_0000),
    ("PROT_GROWSUP", 0x0200_0000),
];

const OPEN_FLAGS: &[(&str, u64)] = &[
    ("O_RDONLY", 0),
    ("O_WRONLY", 1),
    ("O_RDWR", 2),
    ("O_CREAT", 0o100),
];

const CLONE_FLAGS: &[(&str, u64)] = &[
    ("CLONE_VM", 0x100),
    ("CLONE_FS", 0x200),
    ("CLONE_FILES", 0x400),
    ("CLONE_SIGHAND", 0x800),
    ("CLONE_PIDFD", 0x1000),
    ("CLONE_PTRACE", 0x2000),
    ("CLONE_VFORK", 0x4000),
    ("CLONE_PARENT", 0x8000),
    ("CLONE_THREAD", 0x10000),
    ("CLONE_NEWNS", 0x20000),
    ("CLONE_SYSVSEM", 0x40000),
    ("CLONE_SETTLS", 0x80000),
    ("CLONE_PARENT_SETTID", 0x10_0000),
    ("CLONE_CHILD_CLEARTID", 0x20_0000),
    ("CLONE_DETACHED", 0x40_0000),
    ("CLONE_UNTRACED", 0x80_0000),
    ("CLONE_CHILD_SETTID", 0x100_0000),
    ("CLONE_NEWCGROUP", 0x200_0000),
    ("CLONE_NEWUTS", 0x400_0000),
    ("CLONE_NEWIPC", 0x800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
    ("CLONE_IO", 0x8000_0000),
];

const SIGNALS: &[(&str, u64)] = &[("SIGCHLD", 17), ("SIGUSR1", 10), ("SIGUSR2", 12)];

/// Parsing accepts the exit signal by name among the flags.
const CLONE_FLAGS_AND_SIGNALS: &[(&str, u64)] = &{
    let mut all = [("", 0u64); CLONE_FLAGS.len() + SIGNALS.len()];
    let mut i = 0;
    while i < CLONE_FLAGS.len() {
        all[i] = CLONE_FLAGS[i];
        i += 1;
    }
    let mut j = 0;
    while j < SIGNALS.len() {
        all[i + j] = SIGNALS[j];
        j += 1;
    }
    all
};

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[u64]) -> [u64; 6] {
        let mut r = [0; 6];
        r[..a.len()].copy_from_slice(a);
        r
    }

    #[test]
    fn recordings_round_trip_through_readable_json() {
        let r = policy::Recorder::default();
        r.record(sysno::SYS_READ, &args(&[0, 0, 1]));
        r.record(sysno::SYS_SOCKET, &args(&[1, 1 | 0o2000000]));
        r.record(sysno::SYS_OPENAT, &args(&[3, 0, 0o101 | 0o1000]));
        r.record(sysno::SYS_CLONE, &args(&[0x100 | 0x200 | 17]));
        r.record(sysno::SYS_MMAP, &args(&[0, 4096, 3]));
        r.record(sysno::SYS_IOCTL, &args(&[1, 0x5401]));
        let p = Profile::from_recording(&r.snapshot());
        let json = p.to_json();
        for needle in [
            "\"AF_UNIX\"",
            "\"SOCK_STREAM\"",
            "\"O_WRONLY|O_CREAT\"",
            "\"CLONE_VM|CLONE_FS|SIGCHLD\"",
            "\"PROT_READ|PROT_WRITE\"",
            "\"TCGETS\"",
            "\"name\": \"read\"",
        ] {
            assert!(json.contains(needle), "{needle} missing in {json}");
        }
        let back = Profile::from_json(&json).expect("parse");
        assert_eq!(back, p);
        let pol = back.to_policy().expect("policy");
        assert_eq!(
            pol.decide(sysno::SYS_READ, &args(&[5, 1, 2])),
            Action::Allow
        );
        assert_eq!(pol.decide(sysno::SYS_SOCKET, &args(&[1, 1])), Action::Allow);
        assert_eq!(
            pol.decide(sysno::SYS_SOCKET, &args(&[2, 2])),
            Action::Errno(libc::EPERM as u16)
        );
        assert_eq!(
            pol.decide(sysno::SYS_OPENAT, &args(&[3, 0, 0o101])),
            Action::Allow
        );
        assert_eq!(
            pol.decide(sysno::SYS_OPENAT, &args(&[3, 0, 0])),
            Action::Errno(libc::EPERM as u16),
            "reading was never recorded"
        );
        assert_eq!(
            pol.decide(sysno::SYS_WRITE, &args(&[])),
            Action::Errno(libc::EPERM as u16)
        );
    }

    #[test]
    fn merging_is_a_union_and_any_absorbs_classes() {
        let mut a = Profile::from_json(
            r#"{"version":1,"default_action":"kill","syscalls":[
                {"name":"socket","args":[{"family":"AF_UNIX","type":"SOCK_STREAM"}]},
                {"name":"ioctl"}]}"#,
        )
        .expect("a");
        let b = Profile::from_json(
            r#"{"version":1,"syscalls":[
                {"name":"socket","args":[{"family":2,"type":"0x2"}]},
                {"name":"ioctl","args":[{"request":"TCGETS"}]},
                {"name":"getpid"}]}"#,
        )
        .expect("b");
        a.merge(&b).expect("merge");
        assert_eq!(a.default_action, DefaultAction::Kill);
        let pol = a.to_policy().expect("policy");
        assert_eq!(pol.decide(sysno::SYS_SOCKET, &args(&[2, 2])), Action::Allow);
        assert_eq!(pol.decide(sysno::SYS_SOCKET, &args(&[1, 1])), Action::Allow);
        assert_eq!(
            pol.decide(sysno::SYS_SOCKET, &args(&[10, 1])),
            Action::KillProcess
        );
        assert_eq!(pol.decide(sysno::SYS_IOCTL, &args(&[0, 7])), Action::Allow);
        assert_eq!(pol.decide(sysno::SYS_GETPID, &args(&[])), Action::Allow);
        let ioctl = a
            .syscalls
            .iter()
            .find(|e| e.name == "ioctl")
            .expect("ioctl");
        assert_eq!(ioctl.args, None);
    }

    #[test]
    fn malformed_profiles_are_refused() {
        for bad in [
            "",
            "{",
            r#"{"version":2,"syscalls":[]}"#,
            r#"{"version":1}"#,
            r#"{"version":1,"syscalls":[{"name":"no_such_call"}]}"#,
            r#"{"version":1,"syscalls":[{"name":"read","args":[{"fd":1}]}]}"#,
            r#"{"version":1,"syscalls":[{"name":"socket","args":[{"family":"AF_NOPE","type":1}]}]}"#,
            r#"{"version":1,"syscalls":[{"name":"socket","args":[{"family":1}]}]}"#,
            r#"{"version":1,"default_action":"allow","syscalls":[]}"#,
            r#"{"version":1,"errno":"ENOTANERRNO","syscalls":[]}"#,
            r#"{"version":1,"errno":0,"syscalls":[]}"#,
            r#"{"version":1,"default_action":"kill","errno":"EPERM","syscalls":[]}"#,
            r#"{"version":1,"syscalls":[],"extra":true}"#,
        ] {
            assert!(
                matches!(Profile::from_json(bad), Err(Error::Policy(_))),
                "accepted: {bad}"
            );
        }
        let p = Profile::from_json(r#"{"version":1,"errno":"EACCES","syscalls":[]}"#).expect("ok");
        assert_eq!(
            p.to_policy().expect("policy").default_action(),
            Action::Errno(libc::EACCES as u16)
        );
    }
}
