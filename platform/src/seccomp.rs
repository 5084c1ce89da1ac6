//! The host system calls a platform makes from the Sentry's process, in a form the runtime
//! turns into the Sentry's seccomp filter.
//!
//! Each platform crate exports a function (by convention `seccomp::host_syscalls()`)
//! returning a [`HostSyscalls`] list: every system call its Sentry side (and the helper
//! processes it forks from the Sentry, which inherit the filter) makes, with the argument
//! rules that narrow it and the reason it is needed. The runtime's filter is its own base
//! list plus the chosen platform's list, and nothing else: a sandbox on one platform cannot
//! make the calls only another platform needs (a ptrace sandbox no KVM `ioctl`, a KVM
//! sandbox no `ptrace`).
//!
//! Lists combine by union, number by number: a call allowed with any arguments in one list
//! stays allowed with any arguments; otherwise the alternatives of both lists are kept.
//!
//! The types are plain data (no seccomp library in this crate), so a platform needs no
//! dependency to export its list.
//!
//! ```
//! use platform::seccomp::{ArgCondition, HostSyscall};
//!
//! let list = vec![
//!     HostSyscall::any(libc::SYS_ptrace, "the tracer's requests"),
//!     HostSyscall::when(
//!         libc::SYS_prctl,
//!         vec![vec![ArgCondition::eq(0, libc::PR_SET_PDEATHSIG as u64)]],
//!         "helpers die with the Sentry",
//!     ),
//! ];
//! assert!(list[0].allows_any_arguments());
//! assert!(!list[1].allows_any_arguments());
//! ```

/// How many bytes of an argument a condition compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgWidth {
    /// The low 32 bits (`int` arguments: flags, commands, fds).
    Dword,
    /// All 64 bits (pointers, sizes, `unsigned long` requests).
    Qword,
}

/// The comparison of one argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgOp {
    /// `arg == value`.
    Eq(u64),
    /// `arg & mask == value`.
    MaskedEq {
        /// Bits compared.
        mask: u64,
        /// Their required value.
        value: u64,
    },
}

/// One condition on one argument of a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArgCondition {
    /// The argument's index, 0 to 5.
    pub index: u8,
    /// How much of it is compared.
    pub width: ArgWidth,
    /// The comparison.
    pub op: ArgOp,
}

impl ArgCondition {
    /// The low 32 bits of argument `index` equal `value`.
    pub const fn eq(index: u8, value: u64) -> ArgCondition {
        ArgCondition {
            index,
            width: ArgWidth::Dword,
            op: ArgOp::Eq(value),
        }
    }

    /// The low 32 bits of argument `index`, masked with `mask`, equal `value`.
    pub const fn masked_eq(index: u8, mask: u64, value: u64) -> ArgCondition {
        ArgCondition {
            index,
            width: ArgWidth::Dword,
            op: ArgOp::MaskedEq { mask, value },
        }
    }

    /// The same comparison on all 64 bits of the argument.
    pub const fn qword(self) -> ArgCondition {
        ArgCondition {
            width: ArgWidth::Qword,
            ..self
        }
    }
}

/// One allowed host system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSyscall {
    /// The x86-64 system call number.
    pub nr: i64,
    /// Alternatives, any one of which must hold; each is a list of conditions that must
    /// all hold. Empty: any arguments.
    pub when: Vec<Vec<ArgCondition>>,
    /// Why the platform needs it.
    pub reason: &'static str,
}

impl HostSyscall {
    /// `nr` with any arguments.
    pub fn any(nr: i64, reason: &'static str) -> HostSyscall {
        HostSyscall {
            nr,
            when: Vec::new(),
            reason,
        }
    }

    /// `nr` only when one of the alternatives `when` holds (must not be empty).
    pub fn when(nr: i64, when: Vec<Vec<ArgCondition>>, reason: &'static str) -> HostSyscall {
        debug_assert!(!when.is_empty(), "use HostSyscall::any for no conditions");
        HostSyscall { nr, when, reason }
    }

    /// `nr` when argument `index` equals one of `values` (low 32 bits).
    pub fn when_arg_one_of(
        nr: i64,
        index: u8,
        values: &[u64],
        reason: &'static str,
    ) -> HostSyscall {
        let when = values
            .iter()
            .map(|&v| vec![ArgCondition::eq(index, v)])
            .collect();
        HostSyscall { nr, when, reason }
    }

    /// Whether every argument value is allowed.
    pub fn allows_any_arguments(&self) -> bool {
        self.when.is_empty()
    }
}

/// A platform's list of host system calls (see the module documentation).
pub type HostSyscalls = Vec<HostSyscall>;

/// Alternatives of argument conditions: any one must hold, each a list of conditions that
/// must all hold. Empty: any arguments.
pub type Alternatives = Vec<Vec<ArgCondition>>;

/// One system call of merged lists (see [`merge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    /// The system call number.
    pub nr: i64,
    /// The union of the alternatives; empty: any arguments.
    pub when: Alternatives,
    /// The reasons of every list that named it.
    pub reasons: Vec<&'static str>,
}

/// Combines lists by union, number by number (see the module documentation): one entry
/// per number, in ascending order.
pub fn merge(lists: &[&[HostSyscall]]) -> Vec<Merged> {
    // `None`: any arguments.
    let mut by_nr: std::collections::BTreeMap<i64, (Option<Alternatives>, Vec<&'static str>)> =
        std::collections::BTreeMap::new();
    for entry in lists.iter().flat_map(|l| l.iter()) {
        let slot = by_nr
            .entry(entry.nr)
            .or_insert_with(|| (Some(Vec::new()), Vec::new()));
        slot.1.push(entry.reason);
        match (&mut slot.0, entry.allows_any_arguments()) {
            (None, _) => {}
            (Some(_), true) => slot.0 = None,
            (Some(alts), false) => {
                for alt in &entry.when {
                    if !alts.contains(alt) {
                        alts.push(alt.clone());
                    }
                }
            }
        }
    }
    by_nr
        .into_iter()
        .map(|(nr, (when, reasons))| Merged {
            nr,
            when: when.unwrap_or_default(),
            reasons,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_a_union_and_any_arguments_wins() {
        let a = [
            HostSyscall::when_arg_one_of(16, 1, &[1, 2], "tty"),
            HostSyscall::any(101, "ptrace"),
        ];
        let b = [
            HostSyscall::when(
                16,
                vec![vec![ArgCondition::masked_eq(1, 0xff00, 0xae00)]],
                "kvm",
            ),
            HostSyscall::when_arg_one_of(101, 0, &[0], "traceme"),
            HostSyscall::when_arg_one_of(16, 1, &[2], "dup"),
        ];
        let got = merge(&[&a, &b]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].nr, 16);
        assert_eq!(got[0].when.len(), 3, "{:?}", got[0].when);
        assert_eq!(got[0].reasons, ["tty", "kvm", "dup"]);
        assert_eq!(got[1].nr, 101);
        assert!(
            got[1].when.is_empty(),
            "any arguments must win: {:?}",
            got[1]
        );
    }
}
