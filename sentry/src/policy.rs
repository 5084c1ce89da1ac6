//! System-call policies enforced by the Sentry itself, before dispatch: least-privilege
//! profiles (`runsc do --profile`) and OCI `linux.seccomp` sections. They narrow what the
//! application can reach of the Sentry; the host never sees an application's system call
//! in any case.
//!
//! A [`Policy`] is what libseccomp builds from a filter description: a default [`Action`]
//! and, per system call number, [`Rule`]s, each an action and a list of argument
//! comparisons ([`ArgCmp`]) that must all hold. Comparisons work on the raw 64-bit
//! register values, unsigned, as libseccomp's `SCMP_CMP_*` operators define them
//! (`MaskedEq`: `(arg & mask) == value`).
//!
//! When more than one rule of a call matches, the most restrictive action wins, in the
//! order the kernel uses between stacked seccomp filters (seccomp(2)): kill process >
//! kill thread > trap > errno > log > allow; between two errno rules, the first one
//! added. A [`Filter`] stacks policies the same way (a profile and a `linux.seccomp`
//! section may both apply).
//!
//! The [`Recorder`] learns a program's needs: each call, with the argument classes that
//! matter for attack surface ([`class_fields`]); a profile written from it allows exactly
//! those.
//!
//! Every refused call is reported with one `warn` line (target `sentry::policy`) naming
//! the call, its arguments and the action, unless the policy was built with
//! `log_errno: false` (OCI seccomp, where `SCMP_ACT_ERRNO` is silent as in the kernel);
//! kills, traps and `SCMP_ACT_LOG` are always reported.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use linux_abi::Errno;
use linux_abi::signal::SigInfo;
use linux_abi::sysno;
use parking_lot::Mutex;

use crate::kernel::Task;

/// What happens to a system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// It runs.
    Allow,
    /// It runs, and is logged (`SCMP_ACT_LOG`).
    Log,
    /// It fails with this errno without running.
    Errno(u16),
    /// `SIGSYS` is forced on the calling thread (`si_code` `SYS_SECCOMP`, `si_errno` the
    /// value), without running the call (`SCMP_ACT_TRAP`).
    Trap(u16),
    /// The calling thread ends as if killed by `SIGSYS`; the last thread takes its
    /// process with it (`SCMP_ACT_KILL_THREAD`).
    KillThread,
    /// The process is killed by `SIGSYS` (`SCMP_ACT_KILL_PROCESS`).
    KillProcess,
}

impl Action {
    /// Rank in the kernel's precedence (higher wins).
    fn rank(self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::Log => 1,
            Action::Errno(_) => 2,
            Action::Trap(_) => 3,
            Action::KillThread => 4,
            Action::KillProcess => 5,
        }
    }

    /// The more restrictive of `self` and `other` (`self` on a tie).
    pub fn stricter(self, other: Action) -> Action {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Allow => write!(f, "allow"),
            Action::Log => write!(f, "log"),
            Action::Errno(e) => match Errno::new(i32::from(*e)).name() {
                Some(name) => write!(f, "errno {name}"),
                None => write!(f, "errno {e}"),
            },
            Action::Trap(_) => write!(f, "trap (SIGSYS)"),
            Action::KillThread => write!(f, "kill thread"),
            Action::KillProcess => write!(f, "kill process"),
        }
    }
}

/// A comparison operator of libseccomp (`SCMP_CMP_*`), unsigned 64-bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `arg != value`.
    Ne,
    /// `arg < value`.
    Lt,
    /// `arg <= value`.
    Le,
    /// `arg == value`.
    Eq,
    /// `arg >= value`.
    Ge,
    /// `arg > value`.
    Gt,
    /// `(arg & mask) == value`.
    MaskedEq(u64),
}

/// One condition on an argument register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgCmp {
    index: usize,
    op: Cmp,
    value: u64,
}

/// A malformed policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An argument index outside 0..=5.
    #[error("argument index {0} is out of range (0 to 5)")]
    ArgIndex(usize),
    /// A system call number the table does not know.
    #[error("system call number {0} is out of range")]
    Number(u64),
    /// An errno value outside 1..=4095.
    #[error("errno value {0} is out of range (1 to 4095)")]
    ErrnoValue(u64),
}

impl ArgCmp {
    /// `args[index] op value`; `index` must be below 6.
    pub fn new(index: usize, op: Cmp, value: u64) -> Result<ArgCmp, PolicyError> {
        if index >= 6 {
            return Err(PolicyError::ArgIndex(index));
        }
        Ok(ArgCmp { index, op, value })
    }

    /// Whether the condition holds for these argument registers.
    pub fn matches(&self, args: &[u64; 6]) -> bool {
        let a = args[self.index];
        match self.op {
            Cmp::Ne => a != self.value,
            Cmp::Lt => a < self.value,
            Cmp::Le => a <= self.value,
            Cmp::Eq => a == self.value,
            Cmp::Ge => a >= self.value,
            Cmp::Gt => a > self.value,
            Cmp::MaskedEq(mask) => a & mask == self.value,
        }
    }
}

/// An action taken when every condition holds (no condition: always).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What happens to a matching call.
    pub action: Action,
    /// Conditions that must all hold.
    pub conditions: Vec<ArgCmp>,
}

impl Rule {
    fn matches(&self, args: &[u64; 6]) -> bool {
        self.conditions.iter().all(|c| c.matches(args))
    }
}

/// A checked errno for [`Action::Errno`] and [`Action::Trap`] (1..=4095, as the kernel
/// accepts in `SECCOMP_RET_DATA` for errno).
pub fn errno_value(v: u64) -> Result<u16, PolicyError> {
    if (1..=4095).contains(&v) {
        Ok(v as u16)
    } else {
        Err(PolicyError::ErrnoValue(v))
    }
}

/// A default action and rules per system call (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Names the policy in log lines (`profile`, `seccomp`).
    source: String,
    default: Action,
    rules: BTreeMap<u64, Vec<Rule>>,
    log_errno: bool,
}

impl Policy {
    /// An empty policy: every call gets `default`. `log_errno` says whether refusals
    /// with an errno are logged (kills, traps and `Log` always are).
    pub fn new(source: &str, default: Action, log_errno: bool) -> Policy {
        Policy {
            source: source.to_string(),
            default,
            rules: BTreeMap::new(),
            log_errno,
        }
    }

    /// Adds a rule for system call `nr`.
    pub fn add_rule(&mut self, nr: u64, rule: Rule) -> Result<(), PolicyError> {
        if nr >= sysno::SYSCALL_COUNT {
            return Err(PolicyError::Number(nr));
        }
        self.rules.entry(nr).or_default().push(rule);
        Ok(())
    }

    /// The default action.
    pub fn default_action(&self) -> Action {
        self.default
    }

    /// The action for call `nr` with `args`: the most restrictive matching rule's, or the
    /// default when none matches.
    pub fn decide(&self, nr: u64, args: &[u64; 6]) -> Action {
        let mut found: Option<Action> = None;
        for r in self.rules.get(&nr).into_iter().flatten() {
            if r.matches(args) {
                found = Some(found.map_or(r.action, |f| f.stricter(r.action)));
            }
        }
        found.unwrap_or(self.default)
    }
}

/// Policies stacked like seccomp filters: every one is asked, the most restrictive
/// answer wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    layers: Vec<Policy>,
}

impl Filter {
    /// A filter of `layers`.
    pub fn new(layers: Vec<Policy>) -> Filter {
        Filter { layers }
    }

    /// Whether there is no policy at all.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The action and the policy that decided it (`None`: nothing to enforce).
    pub fn decide(&self, nr: u64, args: &[u64; 6]) -> Option<(Action, &Policy)> {
        let mut best: Option<(Action, &Policy)> = None;
        for p in &self.layers {
            let a = p.decide(nr, args);
            best = match best {
                Some((b, bp)) if a.rank() <= b.rank() => Some((b, bp)),
                _ => Some((a, p)),
            };
        }
        best
    }
}

/// A field of an argument class: which register, and which of its bits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassField {
    /// Its name in profiles (`family`, `type`, `request`, `option`, `flags`, `prot`).
    pub name: &'static str,
    /// The argument register.
    pub index: usize,
    /// The bits that count.
    pub mask: u64,
}

const INT: u64 = 0xffff_ffff;
/// `SOCK_TYPE_MASK`: the type without `SOCK_NONBLOCK` and `SOCK_CLOEXEC`.
const SOCK_TYPE_MASK: u64 = 0xf;
/// `O_ACCMODE | O_CREAT`: the class of an open (read, write or both; creating or not).
const OPEN_CLASS_MASK: u64 = 0o3 | 0o100;

const SOCKET: &[ClassField] = &[
    ClassField {
        name: "family",
        index: 0,
        mask: INT,
    },
    ClassField {
        name: "type",
        index: 1,
        mask: SOCK_TYPE_MASK,
    },
];

const fn one(name: &'static str, index: usize, mask: u64) -> [ClassField; 1] {
    [ClassField { name, index, mask }]
}

const IOCTL: &[ClassField] = &one("request", 1, INT);
const PRCTL: &[ClassField] = &one("option", 0, INT);
const CLONE: &[ClassField] = &one("flags", 0, u64::MAX);
const OPEN: &[ClassField] = &one("flags", 1, OPEN_CLASS_MASK);
const OPENAT: &[ClassField] = &one("flags", 2, OPEN_CLASS_MASK);
const PROT: &[ClassField] = &one("prot", 2, INT);

/// The argument classes recorded for system call `nr` (empty: the call alone counts):
/// socket family and type (`socket`, `socketpair`), ioctl request, `prctl` option,
/// `clone` flags, the class of an open's flags (access mode and `O_CREAT`), and the
/// protections of `mmap`, `mprotect` and `pkey_mprotect`.
pub fn class_fields(nr: u64) -> &'static [ClassField] {
    match nr {
        sysno::SYS_SOCKET | sysno::SYS_SOCKETPAIR => SOCKET,
        sysno::SYS_IOCTL => IOCTL,
        sysno::SYS_PRCTL => PRCTL,
        sysno::SYS_CLONE => CLONE,
        sysno::SYS_OPEN => OPEN,
        sysno::SYS_OPENAT => OPENAT,
        sysno::SYS_MMAP | sysno::SYS_MPROTECT | sysno::SYS_PKEY_MPROTECT => PROT,
        _ => &[],
    }
}

/// The class values of a call: one per [`class_fields`] entry.
pub fn classify(nr: u64, args: &[u64; 6]) -> Vec<u64> {
    class_fields(nr)
        .iter()
        .map(|f| args[f.index] & f.mask)
        .collect()
}

/// The conditions that match exactly the calls of class `values` of call `nr`.
pub fn class_conditions(nr: u64, values: &[u64]) -> Vec<ArgCmp> {
    class_fields(nr)
        .iter()
        .zip(values)
        .map(|(f, &v)| ArgCmp {
            index: f.index,
            op: Cmp::MaskedEq(f.mask),
            value: v & f.mask,
        })
        .collect()
}

/// What a recording run saw: per call number, the argument classes.
pub type Recording = BTreeMap<u64, BTreeSet<Vec<u64>>>;

/// Records every system call of the sandbox with its argument classes.
#[derive(Debug, Default)]
pub struct Recorder {
    seen: Mutex<Recording>,
}

impl Recorder {
    /// Notes a call.
    pub fn record(&self, nr: u64, args: &[u64; 6]) {
        let class = classify(nr, args);
        let mut seen = self.seen.lock();
        let set = seen.entry(nr).or_default();
        if !set.contains(&class) {
            set.insert(class);
        }
    }

    /// What was recorded so far.
    pub fn snapshot(&self) -> Recording {
        self.seen.lock().clone()
    }
}

/// The policy state of one kernel: the root container's filter, set before the first
/// process runs, and the filter of each other container of a pod, set before its first
/// process runs (a pod's containers each have their own `linux.seccomp`, as with runc).
#[derive(Debug, Default)]
pub struct KernelPolicy {
    filter: OnceLock<Arc<Filter>>,
    containers: parking_lot::RwLock<std::collections::HashMap<Arc<str>, Arc<Filter>>>,
    recorder: OnceLock<Arc<Recorder>>,
}

impl KernelPolicy {
    /// Enforces `filter` on the root container's processes from now on (once; later
    /// calls are ignored and return false).
    pub fn set_filter(&self, filter: Arc<Filter>) -> bool {
        self.filter.set(filter).is_ok()
    }

    /// Enforces `filter` (or, `None`, nothing) on the processes of pod container `id`,
    /// replacing what an earlier container of that id had.
    pub fn set_container_filter(&self, id: &str, filter: Option<Arc<Filter>>) {
        let mut c = self.containers.write();
        match filter {
            Some(f) => {
                c.insert(Arc::from(id), f);
            }
            None => {
                c.remove(id);
            }
        }
    }

    /// Records into `recorder` from now on (once; later calls return false).
    pub fn set_recorder(&self, recorder: Arc<Recorder>) -> bool {
        self.recorder.set(recorder).is_ok()
    }

    /// Records and enforces for call `nr` of `t`; returns the value for `rax` when the
    /// call must not run.
    pub(crate) fn check(&self, t: &Task, nr: u64, args: &[u64; 6]) -> Option<u64> {
        if let Some(r) = self.recorder.get() {
            r.record(nr, args);
        }
        // The filter of `t`'s container: the root's borrowed (every call of a sandbox
        // without pods comes here), another's held while deciding.
        match t.thread_group().container() {
            None => enforce(t, nr, args, self.filter.get()?),
            Some(id) => {
                let filter = self.containers.read().get(id).cloned()?;
                enforce(t, nr, args, &filter)
            }
        }
    }
}

/// Applies `filter`'s decision for call `nr` of `t` (see [`KernelPolicy::check`]).
fn enforce(t: &Task, nr: u64, args: &[u64; 6], filter: &Filter) -> Option<u64> {
    let (action, policy) = filter.decide(nr, args)?;
    let log = match action {
        Action::Allow => false,
        Action::Errno(_) => policy.log_errno,
        _ => true,
    };
    if log {
        tracing::warn!(
            target: "sentry::policy",
            pid = t.tgid(),
            tid = t.tid(),
            "{}: {} -> {action}",
            policy.source,
            describe(nr, args)
        );
    }
    match action {
        Action::Allow | Action::Log => None,
        Action::Errno(e) => Some((-i64::from(e)) as u64),
        Action::Trap(e) => {
            t.force_signal(sigsys_info(nr, e));
            Some(Errno::ENOSYS.as_return())
        }
        Action::KillThread if t.thread_group().tasks().len() > 1 => {
            t.exit_thread(0);
            Some(Errno::ENOSYS.as_return())
        }
        Action::KillThread | Action::KillProcess => {
            t.thread_group().kill(linux_abi::signal::SIGSYS);
            Some(Errno::ENOSYS.as_return())
        }
    }
}

/// `SYS_SECCOMP`: `si_code` of a seccomp `SIGSYS`.
const SYS_SECCOMP: i32 = 1;
/// `AUDIT_ARCH_X86_64`.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// The `siginfo` of a trapped call: `si_syscall` and `si_arch` after `si_call_addr`.
fn sigsys_info(nr: u64, errno: u16) -> SigInfo {
    let mut info = SigInfo::new(linux_abi::signal::SIGSYS, SYS_SECCOMP);
    info.errno = i32::from(errno);
    info.fields[1] = (nr & 0xffff_ffff) | (u64::from(AUDIT_ARCH_X86_64) << 32);
    info
}

/// `name(arg, ...)` with as many arguments as the call takes (six when unknown).
pub fn describe(nr: u64, args: &[u64; 6]) -> String {
    let arity = crate::syscalls::lookup(nr).map_or(6, |e| e.args.len());
    let name = sysno::syscall_name(nr)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("syscall_{nr}"));
    let list: Vec<String> = args[..arity].iter().map(|a| format!("{a:#x}")).collect();
    format!("{name}({})", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[u64]) -> [u64; 6] {
        let mut r = [0; 6];
        r[..a.len()].copy_from_slice(a);
        r
    }

    fn rule(action: Action, conds: &[(usize, Cmp, u64)]) -> Rule {
        Rule {
            action,
            conditions: conds
                .iter()
                .map(|&(i, op, v)| ArgCmp::new(i, op, v).expect("cmp"))
                .collect(),
        }
    }

    #[test]
    fn operators_compare_unsigned_64_bit_values() {
        let a = args(&[5, u64::MAX, 0x1234]);
        let t = |i, op, v| ArgCmp::new(i, op, v).expect("cmp").matches(&a);
        assert!(t(0, Cmp::Eq, 5) && !t(0, Cmp::Eq, 6));
        assert!(t(0, Cmp::Ne, 6) && !t(0, Cmp::Ne, 5));
        assert!(t(0, Cmp::Lt, 6) && !t(0, Cmp::Lt, 5));
        assert!(t(0, Cmp::Le, 5) && !t(0, Cmp::Le, 4));
        assert!(t(0, Cmp::Ge, 5) && !t(0, Cmp::Ge, 6));
        assert!(t(0, Cmp::Gt, 4) && !t(0, Cmp::Gt, 5));
        // -1 is the largest value, not a negative one.
        assert!(t(1, Cmp::Gt, 5));
        assert!(t(2, Cmp::MaskedEq(0xff), 0x34));
        assert!(!t(2, Cmp::MaskedEq(0xff), 0x1234));
        assert!(t(2, Cmp::MaskedEq(0xf000), 0x1000));
        assert_eq!(ArgCmp::new(6, Cmp::Eq, 0), Err(PolicyError::ArgIndex(6)));
    }

    #[test]
    fn conditions_are_anded_and_unmatched_calls_get_the_default() {
        let mut p = Policy::new("test", Action::Errno(1), true);
        p.add_rule(
            sysno::SYS_SOCKET,
            rule(
                Action::Allow,
                &[(0, Cmp::Eq, 1), (1, Cmp::MaskedEq(0xf), 1)],
            ),
        )
        .expect("rule");
        p.add_rule(sysno::SYS_READ, rule(Action::Allow, &[]))
            .expect("rule");
        assert_eq!(p.decide(sysno::SYS_READ, &args(&[0, 0, 9])), Action::Allow);
        assert_eq!(
            p.decide(sysno::SYS_SOCKET, &args(&[1, 1 | 0o4000])),
            Action::Allow,
            "SOCK_NONBLOCK is outside the mask"
        );
        assert_eq!(
            p.decide(sysno::SYS_SOCKET, &args(&[2, 1])),
            Action::Errno(1)
        );
        assert_eq!(
            p.decide(sysno::SYS_SOCKET, &args(&[1, 2])),
            Action::Errno(1)
        );
        assert_eq!(p.decide(sysno::SYS_WRITE, &args(&[])), Action::Errno(1));
        assert!(
            p.add_rule(sysno::SYSCALL_COUNT, rule(Action::Allow, &[]))
                .is_err()
        );
    }

    #[test]
    fn the_most_restrictive_matching_rule_wins() {
        let mut p = Policy::new("test", Action::Allow, true);
        // Allowed in general, refused for fd 3, killed for fd 4; an errno rule added
        // later for fd 3 loses to the first.
        p.add_rule(sysno::SYS_CLOSE, rule(Action::Allow, &[]))
            .expect("rule");
        p.add_rule(
            sysno::SYS_CLOSE,
            rule(Action::Errno(13), &[(0, Cmp::Eq, 3)]),
        )
        .expect("rule");
        p.add_rule(sysno::SYS_CLOSE, rule(Action::Errno(1), &[(0, Cmp::Ge, 3)]))
            .expect("rule");
        p.add_rule(
            sysno::SYS_CLOSE,
            rule(Action::KillProcess, &[(0, Cmp::Eq, 4)]),
        )
        .expect("rule");
        p.add_rule(sysno::SYS_CLOSE, rule(Action::Log, &[(0, Cmp::Eq, 2)]))
            .expect("rule");
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[0])), Action::Allow);
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[2])), Action::Log);
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[3])), Action::Errno(13));
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[5])), Action::Errno(1));
        assert_eq!(p.decide(sysno::SYS_CLOSE, &args(&[4])), Action::KillProcess);
        // A matching rule overrides the default even when it is more permissive.
        let mut q = Policy::new("test", Action::KillProcess, true);
        q.add_rule(sysno::SYS_CLOSE, rule(Action::Allow, &[(0, Cmp::Lt, 3)]))
            .expect("rule");
        assert_eq!(q.decide(sysno::SYS_CLOSE, &args(&[1])), Action::Allow);
        assert_eq!(q.decide(sysno::SYS_CLOSE, &args(&[3])), Action::KillProcess);
    }

    #[test]
    fn stacked_policies_give_the_strictest_answer() {
        let mut a = Policy::new("a", Action::Allow, true);
        a.add_rule(sysno::SYS_MOUNT, rule(Action::Errno(1), &[]))
            .expect("rule");
        let mut b = Policy::new("b", Action::Allow, true);
        b.add_rule(sysno::SYS_MOUNT, rule(Action::Trap(0), &[]))
            .expect("rule");
        b.add_rule(sysno::SYS_GETPID, rule(Action::Log, &[]))
            .expect("rule");
        let f = Filter::new(vec![a, b]);
        let (act, p) = f.decide(sysno::SYS_MOUNT, &args(&[])).expect("decided");
        assert_eq!((act, p.source.as_str()), (Action::Trap(0), "b"));
        assert_eq!(
            f.decide(sysno::SYS_GETPID, &args(&[])).map(|d| d.0),
            Some(Action::Log)
        );
        assert_eq!(
            f.decide(sysno::SYS_READ, &args(&[])).map(|d| d.0),
            Some(Action::Allow)
        );
        assert!(Filter::default().decide(0, &args(&[])).is_none());
    }

    #[test]
    fn classes_keep_only_the_bits_that_matter() {
        // socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)
        let call = args(&[2, 1 | 0o2000000, 0]);
        assert_eq!(classify(sysno::SYS_SOCKET, &call), vec![2, 1]);
        let conds = class_conditions(sysno::SYS_SOCKET, &[2, 1]);
        assert!(conds.iter().all(|c| c.matches(&call)));
        assert!(!conds.iter().all(|c| c.matches(&args(&[10, 1]))));
        // openat(fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC)
        let open = args(&[3, 0x1000, 0o1 | 0o100 | 0o1000 | 0o2000000]);
        assert_eq!(classify(sysno::SYS_OPENAT, &open), vec![0o101]);
        assert_eq!(classify(sysno::SYS_GETPID, &open), Vec::<u64>::new());
        let r = Recorder::default();
        r.record(sysno::SYS_OPENAT, &open);
        r.record(sysno::SYS_OPENAT, &args(&[3, 0x2000, 0o101]));
        r.record(sysno::SYS_OPENAT, &args(&[3, 0x2000, 0]));
        r.record(sysno::SYS_GETPID, &args(&[]));
        let snap = r.snapshot();
        assert_eq!(snap[&sysno::SYS_OPENAT].len(), 2);
        assert_eq!(snap[&sysno::SYS_GETPID].len(), 1);
    }

    #[test]
    fn errno_values_are_checked_and_traps_carry_the_call() {
        assert_eq!(errno_value(1), Ok(1));
        assert!(errno_value(0).is_err() && errno_value(4096).is_err());
        let info = sigsys_info(101, 5);
        assert_eq!(info.errno, 5);
        assert_eq!(info.fields[1] & 0xffff_ffff, 101);
        assert_eq!(info.fields[1] >> 32, u64::from(AUDIT_ARCH_X86_64));
        assert_eq!(describe(sysno::SYS_CLOSE, &args(&[3, 9])), "close(0x3)");
    }
}
