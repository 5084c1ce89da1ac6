//! `runsc do`: runs one command in a fresh sandbox and exits with its status: a thin user
//! of the `rsentry` library. `runsc` itself is the sandbox's monitor (the library's
//! `Sandbox::run_here`): it starts the Gofer and the sandbox process, forwards
//! `SIGTERM`/`SIGHUP` (and `SIGINT`/`SIGQUIT` sent with `kill`), and passes the
//! application's status on.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use rsentry::{Profile, Sandbox};

use crate::cli::{DoArgs, GlobalArgs};
use crate::error::RunscError;

/// The usage line shown with a missing command.
const USAGE: &str = "usage: runsc do [--rootfs DIR] [--cwd DIR] [--env K=V]... \
                     [--profile FILE] [--record-profile FILE] -- CMD [ARG]...";

/// Splits `--env K=V` values.
pub fn env_pairs(env: &[OsString]) -> Result<Vec<(OsString, OsString)>, RunscError> {
    env.iter()
        .map(|o| {
            let bytes = o.as_bytes();
            let Some(eq) = bytes.iter().position(|&b| b == b'=').filter(|&i| i > 0) else {
                return Err(RunscError::Invalid(format!("do: --env {o:?} is not K=V")));
            };
            let k = std::ffi::OsStr::from_bytes(&bytes[..eq]).to_owned();
            let v = std::ffi::OsStr::from_bytes(&bytes[eq + 1..]).to_owned();
            Ok((k, v))
        })
        .collect()
}

/// The sandbox `runsc do` runs.
pub fn sandbox(global: &GlobalArgs, args: DoArgs) -> Result<Sandbox, RunscError> {
    if args.command.is_empty() {
        return Err(RunscError::Usage(format!("do: missing command ({USAGE})")));
    }
    let mut b = Sandbox::builder()
        .settings(global.settings())
        .platform(global.platform.to_lib())
        .network(global.network_for_do().to_lib())
        .rootfs(&args.rootfs)
        .command(&args.command);
    for (k, v) in env_pairs(&args.env)? {
        b = b.env(k, v);
    }
    if let Some(c) = &args.cwd {
        b = b.cwd(c);
    }
    if let Some(p) = &args.profile {
        b = b.profile(Profile::load(p)?);
    }
    if let Some(p) = &args.record_profile {
        b = b.record_profile(p);
    }
    b.build().map_err(|e| match e {
        RunscError::Invalid(m) => RunscError::Invalid(format!("do: {m}")),
        e => e,
    })
}

/// Runs `runsc do`; returns the exit status.
pub fn run(global: &GlobalArgs, args: DoArgs) -> Result<i32, RunscError> {
    sandbox(global, args)?.run_here()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn global() -> GlobalArgs {
        crate::cli::Cli::parse_from(["runsc", "list"]).global
    }

    fn args(cmd: &[&str]) -> DoArgs {
        DoArgs {
            rootfs: "/".into(),
            cwd: None,
            env: Vec::new(),
            profile: None,
            record_profile: None,
            command: cmd.iter().map(OsString::from).collect(),
        }
    }

    #[test]
    fn env_values_split_at_the_first_equals_sign() {
        let got = env_pairs(&["B=x=y".into(), "C=".into()]).expect("pairs");
        assert_eq!(got[0], ("B".into(), "x=y".into()));
        assert_eq!(got[1], ("C".into(), "".into()));
        assert!(env_pairs(&["novalue".into()]).is_err());
        assert!(env_pairs(&["=v".into()]).is_err());
    }

    #[test]
    fn missing_command_bad_rootfs_and_bad_profiles_are_rejected() {
        let g = global();
        assert!(matches!(sandbox(&g, args(&[])), Err(RunscError::Usage(_))));
        let mut a = args(&["true"]);
        a.rootfs = "/proc/self/exe".into();
        let e = sandbox(&g, a).expect_err("file rootfs");
        assert!(e.to_string().contains("not a directory"), "{e}");
        let mut a = args(&["true"]);
        a.rootfs = "/nonexistent-rootfs-xyz".into();
        assert!(sandbox(&g, a).is_err());
        let mut a = args(&["true"]);
        a.cwd = Some("relative".into());
        assert!(sandbox(&g, a).is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let bad = dir.path().join("bad.json");
        std::fs::write(
            &bad,
            "{\"version\": 1, \"syscalls\": [{\"name\": \"nope\"}]}",
        )
        .expect("write");
        let mut a = args(&["true"]);
        a.profile = Some(bad);
        let e = sandbox(&g, a).expect_err("bad profile");
        assert!(matches!(e, RunscError::Policy(_)), "{e}");
    }
}
