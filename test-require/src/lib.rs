//! The required-environment switch of rsentry's tests.
//!
//! A test whose environment is missing (no root, no `/dev/kvm`, no `cc`) calls [`skip`]
//! with the name of what it needs and returns. Normally [`skip`] prints the reason and the
//! test passes without having run; when the environment variable [`VAR`]
//! (`RSENTRY_REQUIRE=root,ptrace,kvm,tools`) names that requirement (or says `all`),
//! [`skip`] panics instead, so the test fails. `.ci/run` sets it.
//!
//! ```
//! if !std::path::Path::new("/no/such/tool").exists() {
//!     // Fails the test only when RSENTRY_REQUIRE names "tools" or "all".
//!     # if !test_require::required("tools") {
//!     test_require::skip("tools", "/no/such/tool does not exist");
//!     # }
//! }
//! ```

#![forbid(unsafe_code)]

use std::fmt::Display;

/// The environment variable holding the comma-separated requirement names.
pub const VAR: &str = "RSENTRY_REQUIRE";

/// Every requirement name a test may pass to [`skip`], with what it stands for. Add a
/// name here when a new kind of environment (a new platform) can be missing.
pub const KNOWN: &[(&str, &str)] = &[
    (
        "root",
        "the tests run as uid 0 (namespaces, mounts, pivot_root)",
    ),
    ("ptrace", "the ptrace platform can start its stubs"),
    ("kvm", "/dev/kvm exists and the KVM platform starts"),
    (
        "tools",
        "host programs the tests run or build with: cc and libc6-dev, sh, bash, python3",
    ),
    (
        "ipv6",
        "the host has IPv6 for new interfaces (net.ipv6.conf.{all,default}.disable_ipv6 = 0)",
    ),
];

/// Parses a value of [`VAR`] into the set of required names.
///
/// # Errors
/// The first unknown name.
pub fn parse(value: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name == "all" {
            out.extend(KNOWN.iter().map(|(n, _)| *n));
            continue;
        }
        match KNOWN.iter().find(|(n, _)| *n == name) {
            Some((n, _)) => out.push(*n),
            None => {
                let known: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "{VAR}: unknown requirement {name:?} (known: all, {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

/// True when [`VAR`] names `what` (or `all`).
///
/// # Panics
/// When [`VAR`] holds an unknown name, or `what` is not in [`KNOWN`]: both are mistakes
/// that would otherwise turn the switch off silently.
pub fn required(what: &str) -> bool {
    assert!(
        KNOWN.iter().any(|(n, _)| *n == what),
        "test_require: {what:?} is not a known requirement; add it to KNOWN"
    );
    let value = std::env::var(VAR).unwrap_or_default();
    match parse(&value) {
        Ok(names) => names.contains(&what),
        Err(e) => panic!("{e}"),
    }
}

/// Reports that the calling test cannot run here because `what` is missing, for `reason`.
/// Prints `skipped: REASON` and returns (the caller then returns) unless `what` is
/// required, in which case it panics, failing the test.
///
/// # Panics
/// When `what` is required (see [`required`]).
pub fn skip(what: &str, reason: impl Display) {
    if required(what) {
        panic!("{VAR} requires {what:?}, but this test would skip: {reason}");
    }
    eprintln!("skipped (needs {what}): {reason}");
}

/// True when the process runs as uid 0.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The README's example, compiled as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_all() {
        assert_eq!(parse("").unwrap(), Vec::<&str>::new());
        assert_eq!(parse(" root , kvm").unwrap(), vec!["root", "kvm"]);
        let all = parse("all").unwrap();
        for (n, _) in KNOWN {
            assert!(all.contains(n), "{n}");
        }
    }

    #[test]
    fn an_unknown_name_is_an_error() {
        let e = parse("root,kmv").unwrap_err();
        assert!(e.contains("\"kmv\""), "{e}");
    }

    #[test]
    #[should_panic(expected = "not a known requirement")]
    fn skipping_for_an_unknown_requirement_panics() {
        skip("no-such-requirement", "test");
    }
}
