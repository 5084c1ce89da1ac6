//! The system call table, dispatch and `--strace` output.
//!
//! Each subsystem file declares its calls with [`crate::syscall_entries!`]: number, name, the
//! strace format of each argument, optionally the format of the result, and the handler.
//! A handler is a plain typed function, e.g.
//!
//! ```ignore
//! pub fn sys_getpid(t: &Task) -> Result<u64, Errno>
//! pub fn sys_munmap(t: &Task, addr: u64, len: u64) -> Result<u64, Errno>
//! ```
//!
//! The [`Handler`] adapters convert the six raw registers into the handler's argument
//! types ([`FromArg`]). [`dispatch`] looks the number up in one table built from all
//! lists; an unknown number returns `ENOSYS` and is logged once by name.

pub mod crossproc;
pub mod fs;
pub mod inet;
pub mod ipc;
pub mod mm;
pub mod poll;
pub mod process;
pub mod signal;
pub mod signalfd;
pub mod socket;
#[cfg(test)]
pub(crate) mod support;
pub mod sys;
pub mod time;
pub mod tty;

mod strace;

use std::sync::LazyLock;

use linux_abi::Errno;
use linux_abi::sysno::{SYSCALL_COUNT, syscall_name};

use crate::kernel::Task;

pub use strace::ArgFmt;

/// Converts a raw register value into a handler argument type.
pub trait FromArg {
    /// Converts `raw` (the register value).
    fn from_arg(raw: u64) -> Self;
}

impl FromArg for u64 {
    fn from_arg(raw: u64) -> Self {
        raw
    }
}

impl FromArg for i64 {
    fn from_arg(raw: u64) -> Self {
        raw as i64
    }
}

impl FromArg for u32 {
    fn from_arg(raw: u64) -> Self {
        raw as u32
    }
}

impl FromArg for i32 {
    fn from_arg(raw: u64) -> Self {
        raw as u32 as i32
    }
}

impl FromArg for usize {
    fn from_arg(raw: u64) -> Self {
        raw as usize
    }
}

/// A typed handler callable with the raw arguments; `A` is the tuple of argument types.
pub trait Handler<A> {
    /// Converts the arguments and calls the handler.
    fn call(&self, t: &Task, args: &[u64; 6]) -> Result<u64, Errno>;
}

macro_rules! impl_handler {
    ($($T:ident $i:tt),*) => {
        impl<F, $($T: FromArg),*> Handler<($($T,)*)> for F
        where
            F: Fn(&Task, $($T),*) -> Result<u64, Errno>,
        {
            #[allow(unused_variables)]
            fn call(&self, t: &Task, args: &[u64; 6]) -> Result<u64, Errno> {
                self(t, $($T::from_arg(args[$i])),*)
            }
        }
    };
}

impl_handler!();
impl_handler!(A 0);
impl_handler!(A 0, B 1);
impl_handler!(A 0, B 1, C 2);
impl_handler!(A 0, B 1, C 2, D 3);
impl_handler!(A 0, B 1, C 2, D 3, E 4);
impl_handler!(A 0, B 1, C 2, D 3, E 4, G 5);

/// The raw entry point stored in the table.
pub type RawHandler = fn(&Task, &[u64; 6]) -> Result<u64, Errno>;

/// One system call: number, name, handler and strace formats.
#[derive(Debug, Clone, Copy)]
pub struct SyscallEntry {
    /// The number (`linux_abi::sysno::SYS_*`).
    pub nr: u64,
    /// The name strace prints.
    pub name: &'static str,
    /// The handler with argument conversion.
    pub call: RawHandler,
    /// How strace prints each argument (also the arity).
    pub args: &'static [ArgFmt],
    /// How strace prints the result.
    pub ret: ArgFmt,
}

/// Declares a list of system calls:
///
/// ```ignore
/// const ENTRIES: &[SyscallEntry] = syscall_entries![
///     SYS_GETPID => getpid() = sys_getpid;
///     SYS_MMAP => mmap(Ptr, Uint, Prot, MapFlags, Fd, Hex) -> Ptr = sys_mmap;
/// ];
/// ```
#[macro_export]
macro_rules! syscall_entries {
    ($( $nr:ident => $name:ident ( $($fmt:ident),* ) $(-> $ret:ident)? = $handler:path ; )*) => {
        &[$(
            $crate::syscalls::SyscallEntry {
                nr: linux_abi::sysno::$nr,
                name: stringify!($name),
                call: |t, a| $crate::syscalls::Handler::call(&$handler, t, a),
                args: &[$($crate::syscalls::ArgFmt::$fmt),*],
                ret: $crate::syscall_entries!(@ret $($ret)?),
            },
        )*]
    };
    (@ret) => { $crate::syscalls::ArgFmt::Int };
    (@ret $ret:ident) => { $crate::syscalls::ArgFmt::$ret };
}

/// The per-family lists of entries.
const LISTS: &[&[SyscallEntry]] = &[
    crossproc::ENTRIES,
    fs::ENTRIES,
    ipc::ENTRIES,
    mm::ENTRIES,
    poll::ENTRIES,
    process::ENTRIES,
    signal::ENTRIES,
    signalfd::ENTRIES,
    socket::ENTRIES,
    sys::ENTRIES,
    time::ENTRIES,
];

/// Numbers that more than one entry claims (the table keeps the first): must be none.
#[cfg(test)]
fn duplicate_numbers(lists: &[&[SyscallEntry]]) -> Vec<u64> {
    let mut seen = std::collections::BTreeSet::new();
    lists
        .iter()
        .flat_map(|l| l.iter())
        .filter(|e| !seen.insert(e.nr))
        .map(|e| e.nr)
        .collect()
}

/// All lists, in one table indexed by number.
static TABLE: LazyLock<Vec<Option<&'static SyscallEntry>>> = LazyLock::new(|| {
    let mut table = vec![None; SYSCALL_COUNT as usize];
    for e in LISTS.iter().flat_map(|l| l.iter()) {
        match table.get_mut(e.nr as usize) {
            Some(slot @ None) => *slot = Some(e),
            Some(Some(old)) => tracing::error!(
                nr = e.nr,
                old = old.name,
                new = e.name,
                "duplicate syscall entry"
            ),
            None => tracing::error!(nr = e.nr, name = e.name, "syscall number out of range"),
        }
    }
    table
});

/// The table entry for `nr`, if the Sentry implements it.
pub fn lookup(nr: u64) -> Option<&'static SyscallEntry> {
    TABLE.get(usize::try_from(nr).ok()?).copied().flatten()
}

/// Logs an unimplemented system call once per number and kernel (`warned` is the
/// kernel's); returns whether this call logged.
pub(crate) fn warn_unimplemented(warned: &crate::kernel::WarnedOnce, nr: u64) -> bool {
    if !warned.first(nr) {
        return false;
    }
    match syscall_name(nr) {
        Some(name) => tracing::warn!(nr, "unimplemented system call {name}: ENOSYS"),
        None => tracing::warn!(nr, "unknown system call number: ENOSYS"),
    }
    true
}

/// Runs system call `nr` with `args` for `t` and returns the value for `rax`.
pub fn dispatch(t: &Task, nr: u64, args: [u64; 6]) -> u64 {
    if let Some(refused) = t.kernel().policy().check(t, nr, &args) {
        return refused;
    }
    let Some(entry) = lookup(nr) else {
        warn_unimplemented(t.kernel().unimplemented(), nr);
        if t.kernel().strace() {
            strace::print_unknown(t, nr, &args);
        }
        return Errno::ENOSYS.as_return();
    };
    let pre = t
        .kernel()
        .strace()
        .then(|| strace::format_call(t, entry, &args));
    let res = (entry.call)(t, &args);
    if let Some(pre) = pre {
        strace::print_result(t, entry, &pre, &res);
    }
    match res {
        Ok(v) => v,
        Err(e) => e.as_return(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_system_call_has_two_table_entries() {
        assert_eq!(duplicate_numbers(LISTS), Vec::<u64>::new());
        // The check itself sees a number claimed twice.
        let first = &fs::ENTRIES[..1];
        assert_eq!(duplicate_numbers(&[first, first]), vec![first[0].nr]);
    }

    #[test]
    fn table_has_names_and_no_gaps_in_core_calls() {
        for (nr, name) in [
            (39u64, "getpid"),
            (9, "mmap"),
            (12, "brk"),
            (63, "uname"),
            (231, "exit_group"),
        ] {
            let e = lookup(nr).unwrap_or_else(|| panic!("{name} missing"));
            assert_eq!(e.name, name);
            assert_eq!(Some(e.name), syscall_name(nr));
        }
    }

    #[test]
    fn raw_arguments_convert_like_the_kernel_truncates_them() {
        assert_eq!(i32::from_arg(u64::MAX), -1);
        assert_eq!(
            i32::from_arg(0xffff_ff9c),
            -100,
            "AT_FDCWD passed as a 32-bit int"
        );
        assert_eq!(i32::from_arg(0x1_0000_0005), 5, "upper half ignored");
        assert_eq!(u32::from_arg(0x1_0000_0007), 7);
        assert_eq!(i64::from_arg(u64::MAX), -1);
        assert_eq!(u64::from_arg(42), 42);
        assert_eq!(usize::from_arg(9), 9);
    }

    #[test]
    fn every_entry_sits_at_its_own_number_with_its_linux_name() {
        for nr in 0..SYSCALL_COUNT {
            if let Some(e) = lookup(nr) {
                assert_eq!(e.nr, nr);
                assert_eq!(Some(e.name), syscall_name(nr), "entry {nr}");
                assert!(e.args.len() <= 6);
            }
        }
    }

    #[test]
    fn unknown_numbers_are_not_in_the_table_and_warn_once() {
        assert!(lookup(100_000).is_none());
        assert!(lookup(u64::MAX).is_none());
        // Number 450 (set_mempolicy_home_node) is not implemented.
        assert!(lookup(450).is_none());
        let (one, two) = (
            crate::kernel::WarnedOnce::default(),
            crate::kernel::WarnedOnce::default(),
        );
        assert!(warn_unimplemented(&one, 450));
        assert!(!warn_unimplemented(&one, 450));
        assert!(warn_unimplemented(&one, u64::MAX));
        assert!(
            !warn_unimplemented(&one, 100_000),
            "out-of-range numbers warn once"
        );
        assert!(
            warn_unimplemented(&two, 450),
            "another kernel's log says it once too"
        );
    }
}
