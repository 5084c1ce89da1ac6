//! The boot spec: what the monitor tells the sandbox process to run, sent as JSON over a
//! pipe.
//! Arguments, environment and working directory are byte strings (JSON arrays of numbers):
//! Linux passes bytes, which need not be UTF-8.

use serde::{Deserialize, Serialize};

/// Everything the sandbox process needs besides its inherited file descriptors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSpec {
    /// argv; `argv[0]` is the program as the user typed it.
    pub argv: Vec<Vec<u8>>,
    /// The environment, `K=V`.
    pub envp: Vec<Vec<u8>>,
    /// Absolute working directory inside the sandbox.
    pub cwd: Vec<u8>,
    /// User id of the application.
    pub uid: u32,
    /// Group id of the application.
    pub gid: u32,
    /// Host name seen by the application.
    pub hostname: String,
    /// Bind mounts, in the order of their Gofer sockets.
    pub mounts: Vec<MountSpec>,
    /// The system-call profile to enforce.
    pub profile: Option<crate::profile::Profile>,
    /// Record every system call (the recording goes to the monitor at the end).
    pub record: bool,
    /// Resource limits.
    pub limits: crate::config::Limits,
    /// `--network=sandbox`: the link whose packet socket comes as an inherited descriptor.
    #[serde(default)]
    pub ethernet: Option<crate::netsetup::EthSpec>,
    /// Files of the sandbox's own, written into its root's writable overlay before the
    /// program starts (`--network=sandbox`: `/etc/hosts`, `/etc/resolv.conf`).
    #[serde(default)]
    pub files: Vec<FileSpec>,
}

/// A file the Sentry writes into the sandbox's root (mode 0644, owned by root).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSpec {
    /// Absolute path inside the sandbox.
    pub path: String,
    /// The file's contents.
    pub contents: Vec<u8>,
}

/// A bind mount as the sandbox process sees it (its Gofer socket comes separately).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the sandbox.
    pub target: String,
    /// Whether writes are refused.
    pub readonly: bool,
}

/// Largest spec accepted (argv and environment are bounded by the kernel's ARG_MAX-like
/// limits anyway; this keeps a broken writer from exhausting memory).
pub const MAX_SPEC_BYTES: u64 = 16 << 20;

impl BootSpec {
    /// Parses a spec, checking the invariants the sandbox relies on.
    pub fn parse(bytes: &[u8]) -> Result<BootSpec, String> {
        let spec: BootSpec =
            serde_json::from_slice(bytes).map_err(|e| format!("bad boot spec: {e}"))?;
        if spec.argv.is_empty() {
            return Err("bad boot spec: empty argv".into());
        }
        if spec.cwd.first() != Some(&b'/') {
            return Err(format!(
                "bad boot spec: cwd {:?} is not absolute",
                String::from_utf8_lossy(&spec.cwd)
            ));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BootSpec {
        BootSpec {
            argv: vec![b"/bin/true\xff".to_vec()],
            envp: vec!["A=B".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "h".into(),
            mounts: vec![MountSpec {
                target: "/data".into(),
                readonly: true,
            }],
            profile: None,
            record: false,
            limits: Default::default(),
            ethernet: None,
            files: Vec::new(),
        }
    }

    #[test]
    fn round_trip() {
        let s = spec();
        let bytes = serde_json::to_vec(&s).expect("serialize");
        assert_eq!(BootSpec::parse(&bytes), Ok(s));
    }

    #[test]
    fn rejects_garbage_and_bad_invariants() {
        assert!(BootSpec::parse(b"\x00garbage").is_err());
        let mut s = spec();
        s.argv.clear();
        assert!(BootSpec::parse(&serde_json::to_vec(&s).expect("serialize")).is_err());
        let mut s = spec();
        s.cwd = "rel".into();
        assert!(BootSpec::parse(&serde_json::to_vec(&s).expect("serialize")).is_err());
    }
}
