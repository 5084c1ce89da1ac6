//! Reading an OCI bundle: `config.json` (parsed with `oci-spec`) and its root file system,
//! turned into what the sandbox needs.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

use super::OciError;
use super::proto::{Caps, ProcessArgs};

/// What the sandbox process (`runsc boot` in OCI mode) is told at start.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxBoot {
    /// The first process.
    pub process: Box<ProcessArgs>,
    /// The host name.
    pub hostname: String,
    /// The spec's mounts the Sentry makes, in order.
    #[serde(default)]
    pub mounts: Vec<BootMount>,
    /// `linux.sysctl` values the Sentry implements, as paths below `/proc/sys`.
    #[serde(default)]
    pub sysctl: Vec<(String, String)>,
    /// `root.readonly`.
    #[serde(default)]
    pub readonly_root: bool,
    /// `process.terminal`: the sandbox's stdio is the container's terminal.
    #[serde(default)]
    pub terminal: bool,
    /// `linux.maskedPaths`.
    #[serde(default)]
    pub masked_paths: Vec<String>,
    /// `linux.readonlyPaths`.
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// The cgroup memory limit, which `/proc/meminfo` reports.
    #[serde(default)]
    pub memory_limit: Option<u64>,
    /// `linux.seccomp`, enforced by the Sentry (`rsentry::seccomp_oci`).
    #[serde(default)]
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The system-call profile named by the [`PROFILE_ANNOTATION`] annotation.
    #[serde(default)]
    pub profile: Option<rsentry::Profile>,
    /// The spec names no network namespace (the container shares the host's, as with
    /// `podman --network=host`): the application's inet sockets are host sockets.
    #[serde(default)]
    pub host_network: bool,
    /// `--network=sandbox` with a namespace of the spec's that has an interface: the
    /// interface the Sentry's stack now speaks for (its packet socket comes with
    /// `--packet-fd`).
    #[serde(default)]
    pub ethernet: Option<rsentry::netsetup::EthSpec>,
}

/// The annotation naming a system-call profile file (`rsentry::profile`) the Sentry
/// enforces for the container, on top of `linux.seccomp` when both are given. A relative
/// path is taken from the bundle directory.
pub const PROFILE_ANNOTATION: &str = "dev.rsentry.profile";

/// The annotations that put a container in a pod: (container type, sandbox id), as
/// containerd's CRI plugin and CRI-O set them.
pub const POD_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri.sandbox-id",
    ),
    (
        "io.kubernetes.cri-o.ContainerType",
        "io.kubernetes.cri-o.SandboxID",
    ),
];

impl SandboxBoot {
    /// The Sentry policies of `linux.seccomp` and of the profile (empty: none).
    pub fn policies(&self) -> Result<Vec<sentry::policy::Policy>, rsentry::Error> {
        let mut layers = Vec::new();
        if let Some(s) = &self.seccomp {
            layers.push(rsentry::seccomp_oci::to_policy(s)?);
        }
        if let Some(p) = &self.profile {
            layers.push(p.to_policy()?);
        }
        Ok(layers)
    }
}

/// A mount the Sentry makes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootMount {
    /// Absolute path inside the container.
    pub destination: String,
    /// What backs it.
    pub kind: BootMountKind,
    /// Mounted read-only.
    pub readonly: bool,
    /// `noexec`.
    #[serde(default)]
    pub noexec: bool,
    /// `nodev`.
    #[serde(default)]
    pub nodev: bool,
}

/// What backs a [`BootMount`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootMountKind {
    /// A host directory served by a Gofer of its own; the n-th bind mount gets the n-th
    /// `--mount-fd`.
    Bind {
        /// The host directory.
        source: PathBuf,
    },
    /// A fresh tmpfs with these permission bits.
    Tmpfs {
        /// `mode=` of the options (default 1777).
        mode: u32,
    },
    /// One of the Sentry's own file systems (`proc`, `sysfs`, `devpts`, `mqueue`), bound from
    /// where it lives in the sandbox.
    Own {
        /// Its path in the sandbox (`/proc`, `/sys`, `/dev/pts`, `/dev/mqueue`).
        path: String,
        /// A `devpts` mount's options (`mode=`, `gid=`, `ptmxmode=`...), checked by
        /// `create`.
        #[serde(default)]
        options: Vec<String>,
    },
}

/// Mount options that are the mount's, not a file system's (`mount(8)`'s flags).
const GENERIC_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "relatime",
    "norelatime",
    "strictatime",
    "noatime",
    "nodiratime",
    "sync",
    "async",
    "rbind",
    "bind",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "defaults",
];

/// Where the Sentry's own file system of mount type `typ` lives; `None` for types it has
/// no file system for. `/dev` (a tmpfs in the spec) is the Sentry's devfs.
fn sentry_provided(dest: &str, typ: &str) -> Option<&'static str> {
    match typ {
        "proc" => Some("/proc"),
        "sysfs" => Some("/sys"),
        "devpts" => Some("/dev/pts"),
        "mqueue" => Some("/dev/mqueue"),
        "tmpfs" if dest == "/dev" => Some("/dev"),
        _ => None,
    }
}

/// The mounts of `spec` that the Sentry makes (bind mounts of host directories, tmpfs);
/// bundle-relative sources are resolved against `bundle`.
pub fn boot_mounts(spec: &Spec, bundle: &Path) -> Result<Vec<BootMount>, OciError> {
    let mut out = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().to_string_lossy().into_owned();
        if !dest.starts_with('/') {
            return Err(OciError::new(format!(
                "mount destination {dest:?} is not absolute"
            )));
        }
        let options = m.options().clone().unwrap_or_default();
        let typ = m.typ().clone().unwrap_or_default();
        let is_bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let readonly = options.iter().any(|o| o == "ro");
        let noexec = options.iter().any(|o| o == "noexec");
        let nodev = options.iter().any(|o| o == "nodev");
        if is_bind {
            let src = m.source().clone().unwrap_or_default();
            let src = bundle.join(src);
            let meta = std::fs::metadata(&src)
                .map_err(|e| OciError::new(format!("bind mount source {}: {e}", src.display())))?;
            if !meta.is_dir() {
                // A Gofer serves directory trees; single files (podman's /etc/hosts,
                // resolv.conf) are not bound yet.
                tracing::debug!(source = %src.display(), %dest, "file bind mount skipped");
                continue;
            }
            out.push(BootMount {
                destination: dest,
                kind: BootMountKind::Bind { source: src },
                readonly,
                noexec,
                nodev,
            });
        } else if let Some(own) = sentry_provided(&dest, &typ) {
            // devpts's own options; the generic ones (ro, nosuid...) are the mount's.
            let options: Vec<String> = if typ == "devpts" {
                options
                    .iter()
                    .filter(|o| !GENERIC_OPTIONS.contains(&o.as_str()))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            if typ == "devpts" {
                sentry::fs::DevptsOptions::parse(options.iter().map(String::as_str)).map_err(
                    |_| {
                        OciError::new(format!(
                            "devpts mount on {dest}: bad options {}",
                            options.join(",")
                        ))
                    },
                )?;
            }
            out.push(BootMount {
                destination: dest,
                kind: BootMountKind::Own {
                    path: own.into(),
                    options,
                },
                readonly,
                noexec,
                nodev,
            });
        } else if typ == "tmpfs" {
            let mode = options
                .iter()
                .find_map(|o| o.strip_prefix("mode="))
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .unwrap_or(0o1777);
            out.push(BootMount {
                destination: dest,
                kind: BootMountKind::Tmpfs {
                    mode: mode & 0o7777,
                },
                readonly,
                noexec,
                nodev,
            });
        } else {
            // cgroup (the Sentry's sysfs has an empty /sys/fs/cgroup), and anything else.
            tracing::debug!(%dest, %typ, "mount type not supported; skipped");
        }
    }
    Ok(out)
}

/// A parsed bundle.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory (absolute).
    pub dir: PathBuf,
    /// The root file system (absolute, a directory).
    pub rootfs: PathBuf,
    /// The parsed `config.json`.
    pub spec: Spec,
    /// The spec's process (a spec without one is refused by [`Bundle::load`]).
    process: Process,
}

/// The search path used when the process's environment has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Bundle {
    /// Loads and checks `dir/config.json`.
    pub fn load(dir: &Path) -> Result<Bundle, OciError> {
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| OciError::new(format!("bundle {}: {e}", dir.display())))?;
        let config = dir.join("config.json");
        let bytes = std::fs::read(&config)
            .map_err(|e| OciError::new(format!("{}: {e}", config.display())))?;
        let raw: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| OciError::new(format!("{}: malformed: {e}", config.display())))?;
        if let Some(p) = raw.get("process") {
            check_raw_process(p)
                .map_err(|e| OciError::new(format!("{}: {e}", config.display())))?;
        }
        let spec: Spec = serde_json::from_value(raw)
            .map_err(|e| OciError::new(format!("{}: malformed: {e}", config.display())))?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| OciError::new(format!("{}: no root", config.display())))?;
        let rootfs = dir.join(root.path());
        let rootfs = std::fs::canonicalize(&rootfs)
            .map_err(|e| OciError::new(format!("rootfs {}: {e}", rootfs.display())))?;
        if !rootfs.is_dir() {
            return Err(OciError::new(format!(
                "rootfs {} is not a directory",
                rootfs.display()
            )));
        }
        let process = spec
            .process()
            .clone()
            .ok_or_else(|| OciError::new(format!("{}: no process", config.display())))?;
        process_args(&process, &rootfs)?;
        boot_mounts(&spec, &dir)?;
        sysctls(&spec)?;
        paths(&spec, "maskedPaths")?;
        paths(&spec, "readonlyPaths")?;
        super::hooks::check(spec.hooks())?;
        Ok(Bundle {
            dir,
            rootfs,
            spec,
            process,
        })
    }

    /// The process of the spec.
    pub fn process(&self) -> &Process {
        &self.process
    }

    /// What the sandbox process needs.
    pub fn sandbox_boot(&self) -> Result<SandboxBoot, OciError> {
        Ok(SandboxBoot {
            process: Box::new(process_args(self.process(), &self.rootfs)?),
            hostname: self
                .spec
                .hostname()
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "runsc".into()),
            mounts: boot_mounts(&self.spec, &self.dir)?,
            sysctl: sysctls(&self.spec)?,
            readonly_root: self
                .spec
                .root()
                .as_ref()
                .and_then(|r| r.readonly())
                .unwrap_or(false),
            terminal: self.process().terminal().unwrap_or(false),
            masked_paths: paths(&self.spec, "maskedPaths")?,
            readonly_paths: paths(&self.spec, "readonlyPaths")?,
            memory_limit: None,
            seccomp: self.spec.linux().as_ref().and_then(|l| l.seccomp().clone()),
            profile: self.profile()?,
            host_network: self.shares_host_network(),
            ethernet: None,
        })
        .and_then(|b| {
            // Malformed sections are refused now, by `create`, never allowed silently.
            b.policies().map_err(|e| OciError::new(e.to_string()))?;
            Ok(b)
        })
    }

    /// Whether the container shares the host's network: its spec names no network
    /// namespace (as `podman --network=host`), or names the one runsc itself is in, or
    /// the host's first one (PID 1's) — as a pod's container does whose pod uses the
    /// node's network (its path is the pause container's namespace, ours). Such a
    /// namespace's interfaces are never taken over: that would take the host's
    /// addresses away from it.
    pub fn shares_host_network(&self) -> bool {
        let Some(ns) = self
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|ns| {
                ns.iter()
                    .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            })
        else {
            return true;
        };
        ns.path()
            .as_ref()
            .is_some_and(|p| rsentry::netsetup::is_host_namespace(p))
    }

    /// The path of the spec's network namespace, when it names an existing one (a CNI
    /// plugin's); `None` for a new namespace or none at all.
    pub fn network_ns_path(&self) -> Option<PathBuf> {
        self.spec
            .linux()
            .as_ref()?
            .namespaces()
            .as_ref()?
            .iter()
            .find(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)?
            .path()
            .clone()
    }

    /// The sandbox a container of a pod joins: `Some(sandbox id)` when the annotations
    /// say the container is not the pod's sandbox container (containerd's CRI plugin:
    /// `io.kubernetes.cri.container-type: container` with
    /// `io.kubernetes.cri.sandbox-id`; CRI-O's `io.kubernetes.cri-o.ContainerType` and
    /// `io.kubernetes.cri-o.SandboxID`). The sandbox container itself (type `sandbox`,
    /// or no annotation) and a container naming itself get `None`: it is a sandbox's
    /// root, as every container without a pod is.
    pub fn pod_sandbox(&self, id: &str) -> Result<Option<String>, OciError> {
        let Some(a) = self.spec.annotations().as_ref() else {
            return Ok(None);
        };
        for (typ, sandbox) in POD_ANNOTATIONS {
            let Some(t) = a.get(*typ) else {
                continue;
            };
            return match t.as_str() {
                "sandbox" => Ok(None),
                "container" => match a.get(*sandbox).map(String::as_str) {
                    Some(s) if s == id => Ok(None),
                    Some(s) if !s.is_empty() => Ok(Some(s.to_owned())),
                    _ => Err(OciError::new(format!(
                        "annotation {typ}=container needs {sandbox}"
                    ))),
                },
                other => Err(OciError::new(format!(
                    "annotation {typ}: unknown container type {other:?}"
                ))),
            };
        }
        Ok(None)
    }

    /// The profile named by the [`PROFILE_ANNOTATION`] annotation, read from the host.
    fn profile(&self) -> Result<Option<rsentry::Profile>, OciError> {
        let Some(path) = self
            .spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(PROFILE_ANNOTATION))
        else {
            return Ok(None);
        };
        let path = self.dir.join(path);
        rsentry::Profile::load(&path)
            .map(Some)
            .map_err(|e| OciError::new(format!("annotation {PROFILE_ANNOTATION}: {e}")))
    }
}

/// `linux.maskedPaths` or `linux.readonlyPaths`: absolute paths.
fn paths(spec: &Spec, which: &str) -> Result<Vec<String>, OciError> {
    let linux = spec.linux().as_ref();
    let list = match which {
        "maskedPaths" => linux.and_then(|l| l.masked_paths().clone()),
        _ => linux.and_then(|l| l.readonly_paths().clone()),
    }
    .unwrap_or_default();
    for p in &list {
        if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return Err(OciError::new(format!(
                "linux.{which}: {p:?} is not an absolute path"
            )));
        }
    }
    Ok(list)
}

/// Keys runc accepts because their kernel namespace is the container's own.
const NAMESPACED_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The spec's `linux.sysctl` values that the Sentry implements, as `/proc/sys` paths.
/// Every value of the Sentry belongs to the sandbox (it is the sandbox's kernel), so any
/// of them may be set, and the UTS names (`kernel.hostname`, `kernel.domainname`) too. A key runc accepts (IPC, `fs.mqueue.*`, `net.*`) that the
/// Sentry does not implement is ignored with a warning, as gVisor does; any other key
/// is refused as runc refuses it.
pub fn sysctls(spec: &Spec) -> Result<Vec<(String, String)>, OciError> {
    let known: Vec<&str> = sentry::kernel::sysctl::Sysctls::names().collect();
    let mut out = Vec::new();
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(out);
    };
    let mut keys: Vec<_> = map.iter().collect();
    keys.sort();
    for (key, value) in keys {
        let path = key.replace('.', "/");
        if key.is_empty() || key.contains('/') || key.split('.').any(str::is_empty) {
            return Err(OciError::new(format!("linux.sysctl: invalid key {key:?}")));
        }
        if known.contains(&path.as_str()) || key == "kernel.hostname" || key == "kernel.domainname"
        {
            out.push((path, value.clone()));
        } else if NAMESPACED_SYSCTLS.contains(&key.as_str())
            || key.starts_with("fs.mqueue.")
            || key.starts_with("net.")
        {
            tracing::warn!(%key, "sysctl not implemented by the Sentry; ignored");
        } else {
            return Err(OciError::new(format!(
                "linux.sysctl: {key:?} is not in a separate kernel namespace"
            )));
        }
    }
    Ok(out)
}

/// Converts a spec process to [`ProcessArgs`], resolving a command without `/` in the
/// process's `PATH` below `rootfs`, as runc does before `execve`.
pub fn process_args(p: &Process, rootfs: &Path) -> Result<ProcessArgs, OciError> {
    let mut argv = p.args().clone().unwrap_or_default();
    if argv.is_empty() {
        return Err(OciError::new("process: args must not be empty"));
    }
    let envp = p.env().clone().unwrap_or_default();
    let cwd = p.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(OciError::new(format!(
            "process: cwd {cwd:?} is not absolute"
        )));
    }
    if let Some(found) = resolve_in_path(rootfs, &argv[0], &envp) {
        argv[0] = found;
    }
    let user = p.user();
    Ok(ProcessArgs {
        argv,
        envp,
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        groups: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
        rlimits: rlimits(p)?,
        caps: caps(p)?,
        no_new_privs: p.no_new_privileges().unwrap_or(false),
    })
}

/// The settings of `p` other than the command (umask, rlimits, capabilities,
/// noNewPrivileges), for `exec` of a command in the container's process context.
pub fn inherit_settings(p: &Process, into: &mut ProcessArgs) -> Result<(), OciError> {
    into.umask = p.user().umask();
    into.rlimits = rlimits(p)?;
    into.caps = caps(p)?;
    into.no_new_privs = p.no_new_privileges().unwrap_or(false);
    Ok(())
}

/// The RLIMIT_* names of the runtime spec, by number.
const RLIMIT_NAMES: [&str; 16] = [
    "RLIMIT_CPU",
    "RLIMIT_FSIZE",
    "RLIMIT_DATA",
    "RLIMIT_STACK",
    "RLIMIT_CORE",
    "RLIMIT_RSS",
    "RLIMIT_NPROC",
    "RLIMIT_NOFILE",
    "RLIMIT_MEMLOCK",
    "RLIMIT_AS",
    "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
];

/// Checks the parts of a raw `process` object whose errors the typed parser reports
/// badly (a list of every variant, a column number): capability names, rlimits.
pub fn check_raw_process(p: &serde_json::Value) -> Result<(), OciError> {
    if let Some(caps) = p.get("capabilities").and_then(|c| c.as_object()) {
        for (set, list) in caps {
            let Some(list) = list.as_array() else {
                continue;
            };
            for c in list {
                let name = c.as_str().unwrap_or_default();
                if sentry::kernel::cap_from_name(name).is_none() {
                    return Err(OciError::new(format!(
                        "process.capabilities.{set}: unknown capability {c}"
                    )));
                }
            }
        }
    }
    if let Some(list) = p.get("rlimits").and_then(|r| r.as_array()) {
        let mut seen = Vec::new();
        for r in list {
            let typ = r.get("type").and_then(|t| t.as_str()).unwrap_or_default();
            if !RLIMIT_NAMES.contains(&typ) {
                return Err(OciError::new(format!(
                    "process.rlimits: unknown resource limit type {:?}",
                    typ
                )));
            }
            if seen.contains(&typ) {
                return Err(OciError::new(format!(
                    "process.rlimits: duplicate resource limit {typ}"
                )));
            }
            seen.push(typ);
            for field in ["soft", "hard"] {
                if let Some(v) = r.get(field)
                    && v.as_u64().is_none()
                {
                    return Err(OciError::new(format!(
                        "process.rlimits: {typ}: {field} limit {v} is not a number from 0 to 2^64-1"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The spec's resource limits; a soft limit above the hard one is an error, as runc's
/// `setrlimit` gives.
fn rlimits(p: &Process) -> Result<Vec<(u32, u64, u64)>, OciError> {
    let mut out = Vec::new();
    for r in p.rlimits().iter().flatten() {
        let n = r.typ() as u32;
        let name = RLIMIT_NAMES.get(n as usize).copied().unwrap_or("?");
        if r.soft() > r.hard() {
            return Err(OciError::new(format!(
                "process.rlimits: {name}: soft limit {} is above the hard limit {}",
                r.soft(),
                r.hard()
            )));
        }
        out.push((n, r.soft(), r.hard()));
    }
    Ok(out)
}

/// The spec's capability sets as masks; `None` without a `capabilities` object.
fn caps(p: &Process) -> Result<Option<Caps>, OciError> {
    let Some(c) = p.capabilities() else {
        return Ok(None);
    };
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| -> Result<u64, OciError> {
        let mut m = 0u64;
        for cap in set.iter().flatten() {
            let name = serde_json::to_value(cap)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let n = sentry::kernel::cap_from_name(&name)
                .ok_or_else(|| OciError::new(format!("unknown capability {name:?}")))?;
            m |= 1 << n;
        }
        Ok(m)
    };
    Ok(Some(Caps {
        effective: mask(c.effective())?,
        permitted: mask(c.permitted())?,
        inheritable: mask(c.inheritable())?,
        bounding: mask(c.bounding())?,
        ambient: mask(c.ambient())?,
    }))
}

/// The first `DIR/name` of the environment's `PATH` that is an executable regular file
/// below `rootfs`; `None` for names with `/` or when nothing matches (the Sentry then
/// reports the name as not found).
pub fn resolve_in_path(rootfs: &Path, name: &str, envp: &[String]) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let path = envp
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .find_map(|dir| {
            let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
            // Follows symlinks on the host below rootfs: an absolute link is resolved
            // against the host's root, so only the common relative-link layouts resolve;
            // anything else is left to the Sentry by its name.
            let host = rootfs.join(candidate.trim_start_matches('/'));
            let meta = std::fs::metadata(&host).ok()?;
            (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(candidate)
        })
}

/// A default `config.json` like `runc spec` writes: `sh` in `rootfs`, a terminal, the
/// usual mounts and namespaces.
pub fn default_spec() -> Spec {
    let mut spec = Spec::default();
    spec.set_version("1.2.0".into());
    spec.set_hostname(Some("runsc".into()));
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bundle(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("rootfs")).expect("mkdir");
        std::fs::write(dir.path().join("config.json"), config).expect("write");
        dir
    }

    #[test]
    fn the_default_spec_loads() {
        let dir =
            write_bundle(&serde_json::to_string(&default_spec()).expect("serialize default spec"));
        let b = Bundle::load(dir.path()).expect("load");
        let boot = b.sandbox_boot().expect("boot");
        assert_eq!(boot.hostname, "runsc");
        assert_eq!(boot.process.argv, ["sh"]);
        assert_eq!(boot.process.cwd, "/");
    }

    #[test]
    fn pod_annotations_name_the_sandbox() {
        let with = |annotations: serde_json::Value| {
            let mut spec = serde_json::to_value(default_spec()).expect("spec");
            spec["annotations"] = annotations;
            let dir = write_bundle(&spec.to_string());
            Bundle::load(dir.path()).expect("load").pod_sandbox("c1")
        };
        let t = "io.kubernetes.cri.container-type";
        let s = "io.kubernetes.cri.sandbox-id";
        assert_eq!(with(serde_json::json!({})).expect("none"), None);
        assert_eq!(
            with(serde_json::json!({ t: "sandbox", s: "c1" })).expect("sandbox"),
            None
        );
        assert_eq!(
            with(serde_json::json!({ t: "container", s: "pod" })).expect("container"),
            Some("pod".to_string())
        );
        // A container that names itself is a sandbox's root.
        assert_eq!(
            with(serde_json::json!({ t: "container", s: "c1" })).expect("itself"),
            None
        );
        assert_eq!(
            with(serde_json::json!({
                "io.kubernetes.cri-o.ContainerType": "container",
                "io.kubernetes.cri-o.SandboxID": "crio-pod",
            }))
            .expect("cri-o"),
            Some("crio-pod".to_string())
        );
        assert!(with(serde_json::json!({ t: "container" })).is_err());
        assert!(with(serde_json::json!({ t: "podlet", s: "pod" })).is_err());
    }

    #[test]
    fn mounts_become_binds_and_tmpfs_and_the_rest_is_the_sentrys() {
        let dir = write_bundle("{}");
        let host = tempfile::tempdir().expect("host dir");
        std::fs::write(host.path().join("f"), "x").expect("write");
        let config = serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts"},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
                {"destination": "/data", "type": "bind", "source": host.path(),
                 "options": ["rbind", "ro"]},
                {"destination": "/etc/hosts", "type": "bind",
                 "source": host.path().join("f"), "options": ["rbind", "rw"]},
                {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "mode=755"]},
            ]
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).expect("write");
        let b = Bundle::load(dir.path()).expect("load");
        let mounts = b.sandbox_boot().expect("boot").mounts;
        let own = |d: &str, path: &str, readonly| BootMount {
            destination: d.into(),
            kind: BootMountKind::Own {
                path: path.into(),
                options: Vec::new(),
            },
            readonly,
            noexec: false,
            nodev: false,
        };
        assert_eq!(
            mounts,
            [
                own("/proc", "/proc", false),
                own("/dev", "/dev", false),
                own("/dev/pts", "/dev/pts", false),
                own("/dev/mqueue", "/dev/mqueue", false),
                BootMount {
                    destination: "/data".into(),
                    kind: BootMountKind::Bind {
                        source: host.path().to_path_buf()
                    },
                    readonly: true,
                    noexec: false,
                    nodev: false,
                },
                BootMount {
                    destination: "/scratch".into(),
                    kind: BootMountKind::Tmpfs { mode: 0o755 },
                    readonly: false,
                    noexec: false,
                    nodev: false,
                },
            ]
        );
        // A bind mount whose source is missing is an error at create.
        let mut bad = config.clone();
        bad["mounts"][4]["source"] = "/no/such/dir".into();
        std::fs::write(dir.path().join("config.json"), bad.to_string()).expect("write");
        let e = Bundle::load(dir.path()).expect_err("missing source");
        assert!(e.to_string().contains("/no/such/dir"), "{e}");
    }

    #[test]
    fn bad_bundles_are_one_line_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Bundle::load(dir.path()).expect_err("missing config");
        assert!(e.to_string().contains("config.json"), "{e}");
        let dir = write_bundle("{ not json");
        let e = Bundle::load(dir.path()).expect_err("malformed");
        assert!(e.to_string().contains("malformed"), "{e}");
        assert!(!e.to_string().contains('\n'));
        let dir = write_bundle(
            r#"{"ociVersion":"1.0.0","root":{"path":"nope"},"process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        );
        let e = Bundle::load(dir.path()).expect_err("missing rootfs");
        assert!(e.to_string().contains("rootfs"), "{e}");
        let dir = write_bundle(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"args":[],"cwd":"/","user":{"uid":0,"gid":0}}}"#,
        );
        assert!(Bundle::load(dir.path()).is_err());
        let dir = write_bundle(
            r#"{"ociVersion":"1.0.0","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"rel","user":{"uid":0,"gid":0}}}"#,
        );
        assert!(Bundle::load(dir.path()).is_err());
    }
}
