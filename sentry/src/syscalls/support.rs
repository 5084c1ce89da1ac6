//! How completely each system call is implemented, for `docs/syscalls.md`.
//!
//! The table of handlers says which calls exist; [`NOTES`] says which of those are partial
//! (and what is missing) or are entries that always fail with `ENOSYS`. [`markdown`] renders
//! the whole table; a test keeps the committed `docs/syscalls.md` equal to it (run
//! `RSENTRY_BLESS=1 cargo test -p sentry syscalls_doc` after changing the table or a note).

use linux_abi::sysno::{SYSCALL_COUNT, syscall_name};

/// The support level of one system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Implemented with Linux's semantics, as far as we know.
    Full,
    /// Implemented, with the given gaps.
    Partial(&'static str),
    /// Declared, but always `ENOSYS` (with why); programs are expected to fall back.
    Enosys(&'static str),
    /// Not in the table: `ENOSYS`, logged once by name.
    Missing,
}

/// Calls of the table that are partial or always `ENOSYS`, by name; every other entry
/// of the table is full.
pub const NOTES: &[(&str, Support)] = &[
    (
        "fcntl",
        Support::Partial(
            "leases are broken only by `open` (not `truncate`), always with `SIGIO` to \
             the holder (not the `F_SETOWN` owner's `F_SETSIG` signal); no file seals \
             (`F_ADD_SEALS`, `F_GET_SEALS`: EINVAL); I/O signals (`O_ASYNC`) follow \
             readiness changes of sockets, pipes and terminals",
        ),
    ),
    (
        "futex",
        Support::Partial(
            "no priority-inheritance operations (`FUTEX_LOCK_PI` and friends: ENOSYS)",
        ),
    ),
    (
        "rseq",
        Support::Enosys("restartable sequences are not offered; glibc falls back"),
    ),
];

/// The support level of system call `nr`.
pub fn support(nr: u64) -> Support {
    let Some(entry) = super::lookup(nr) else {
        return Support::Missing;
    };
    NOTES
        .iter()
        .find(|(name, _)| *name == entry.name)
        .map_or(Support::Full, |(_, s)| *s)
}

/// `docs/syscalls.md`: every x86-64 system call number with its status.
pub fn markdown() -> String {
    let mut rows = String::new();
    let (mut full, mut partial, mut enosys) = (0, 0, 0);
    for nr in 0..SYSCALL_COUNT {
        let Some(name) = syscall_name(nr) else {
            continue;
        };
        let (status, note) = match support(nr) {
            Support::Full => {
                full += 1;
                ("full", "")
            }
            Support::Partial(what) => {
                partial += 1;
                ("partial", what)
            }
            Support::Enosys(why) => {
                enosys += 1;
                ("ENOSYS", why)
            }
            Support::Missing => {
                enosys += 1;
                ("ENOSYS", "not implemented")
            }
        };
        rows.push_str(&format!("| {nr} | `{name}` | {status} | {note} |\n"));
    }
    format!(
        "# System call support\n\n\
         Generated from the Sentry's system call table and `sentry/src/syscalls/support.rs`\n\
         (`RSENTRY_BLESS=1 cargo test -p sentry syscalls_doc` rewrites it; a test fails when\n\
         it is stale). x86-64 numbers. *full*: implemented with Linux's semantics as far as\n\
         our tests and LTP show; *partial*: implemented, with the gaps named; *ENOSYS*: the\n\
         call fails with `ENOSYS` (logged once by name), as gVisor does for what it lacks.\n\n\
         {full} full, {partial} partial, {enosys} ENOSYS.\n\n\
         | nr | name | status | notes |\n|---|---|---|---|\n{rows}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_name_calls_of_the_table() {
        for (name, _) in NOTES {
            let found = (0..SYSCALL_COUNT)
                .any(|nr| super::super::lookup(nr).is_some_and(|e| e.name == *name));
            assert!(found, "support note for {name}, which is not in the table");
        }
    }

    #[test]
    fn syscalls_doc_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/syscalls.md");
        let want = markdown();
        if std::env::var_os("RSENTRY_BLESS").is_some() {
            std::fs::write(&path, &want).expect("write docs/syscalls.md");
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/syscalls.md is stale: run RSENTRY_BLESS=1 cargo test -p sentry syscalls_doc"
        );
    }
}
