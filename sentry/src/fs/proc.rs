//! procfs: `/proc` built from kernel data through the [`ProcSource`] trait.
//!
//! The kernel implements [`ProcSource`] (process list, per-process snapshots, fd tables,
//! fs contexts, memory maps) so this module does not depend on kernel internals. `self`
//! and `thread-self` resolve with the caller's ids ([`crate::fs::Caller`]), which every
//! path walk carries in its credentials.
//!
//! Contents: `self`, `thread-self`, `<pid>/{stat,statm,status,cmdline,comm,environ,exe,cwd,
//! root,fd/,fdinfo/,maps,mounts,mountinfo,oom_score_adj,task/}`, `meminfo`, `cpuinfo` (the
//! host's, with only the fields programs use), `uptime`, `loadavg`, `stat`, `version`,
//! `filesystems`, `mounts`, `locks` (the [`Vfs`]'s advisory locks),
//! `sys/kernel/{hostname,osrelease,ostype,version,random/}` and the sandbox's writable
//! sysctls under `sys/` (the kernel's [`crate::kernel::sysctl::Sysctls`], reached through
//! [`ProcSource`]).

use parking_lot::RwLock;
use std::fmt::Write as _;
use std::sync::{Arc, Weak};

use linux_abi::Errno;

use super::file::{FdTable, FsContext};
use super::synth::{Attrs, Finder, Generator, Lister, MagicFn, SynthDir, SynthFile, SynthLink};
use super::vfs::{Vfs, VfsPath};
use super::{Caller, Inode, magic};

/// The release string `uname` and `/proc/sys/kernel/osrelease` report.
pub const OS_RELEASE: &str = crate::kernel::UTS_RELEASE;
/// The `/proc/version` text.
pub const OS_VERSION: &str = crate::kernel::UTS_VERSION;

/// A snapshot of one process for `/proc/<pid>/{stat,status}`.
#[derive(Clone, Debug, Default)]
pub struct ProcInfo {
    /// Thread group id.
    pub pid: i32,
    /// Parent's thread group id.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// Thread ids.
    pub tids: Vec<i32>,
    /// `comm` (at most 15 bytes).
    pub comm: Vec<u8>,
    /// State letter (`R`, `S`, `Z`...).
    pub state: char,
    /// Real, effective, saved, filesystem uid.
    pub uids: [u32; 4],
    /// Real, effective, saved, filesystem gid.
    pub gids: [u32; 4],
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// The argument block (NUL-separated).
    pub cmdline: Vec<u8>,
    /// The environment block (NUL-separated).
    pub environ: Vec<u8>,
    /// Virtual memory size in bytes.
    pub vm_size: u64,
    /// Resident size in bytes.
    pub vm_rss: u64,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
    /// User time in clock ticks (all threads, live and finished).
    pub utime_ticks: u64,
    /// System time in clock ticks.
    pub stime_ticks: u64,
    /// User time of reaped children in clock ticks.
    pub cutime_ticks: u64,
    /// System time of reaped children in clock ticks.
    pub cstime_ticks: u64,
    /// Each live thread's id, user and system time in clock ticks (for
    /// `/proc/<pid>/task/<tid>/stat`).
    pub thread_ticks: Vec<(i32, u64, u64)>,
    /// Resource limits (soft, hard) by `RLIMIT_*` number; empty when unknown.
    pub limits: Vec<(u64, u64)>,
    /// Thread-directed pending signals (of the thread asked about, else the leader).
    pub sig_pending: u64,
    /// Process-directed pending signals.
    pub sig_shared: u64,
    /// Blocked signals.
    pub sig_blocked: u64,
    /// Ignored signals.
    pub sig_ignored: u64,
    /// Signals with a handler.
    pub sig_caught: u64,
    /// The controlling terminal (`tty_nr`), 0 for none.
    pub tty_nr: i32,
    /// The terminal's foreground process group (`tpgid`), -1 for none.
    pub tpgid: i32,
    /// Capability sets: inheritable, permitted, effective, bounding, ambient.
    pub caps: [u64; 5],
    /// `PR_SET_NO_NEW_PRIVS` is set.
    pub no_new_privs: bool,
    /// The file mode creation mask.
    pub umask: u32,
}

/// What procfs needs from the kernel.
pub trait ProcSource: Send + Sync {
    /// Thread group ids of live processes.
    fn pids(&self) -> Vec<i32>;
    /// A snapshot of process `pid` (`None` if gone).
    fn process(&self, pid: i32) -> Option<ProcInfo>;
    /// The `/proc/<pid>/maps` text.
    fn maps(&self, pid: i32) -> Option<Vec<u8>>;
    /// The descriptor table of `pid`.
    fn fd_table(&self, pid: i32) -> Option<Arc<FdTable>>;
    /// The fs context (root, cwd) of `pid`.
    fn fs_context(&self, pid: i32) -> Option<Arc<FsContext>>;
    /// The executable of `pid`.
    fn exe(&self, pid: i32) -> Option<VfsPath>;
    /// The kernel object that is process `pid` (what a `/proc/<pid>` directory stands
    /// for: `pidfd_send_signal` takes its descriptor as a pidfd).
    fn process_object(&self, _pid: i32) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
    /// The host name.
    fn hostname(&self) -> String;
    /// The NIS domain name (`setdomainname`), `(none)` until one is set.
    fn domainname(&self) -> String {
        "(none)".into()
    }
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`): one per boot, the same in
    /// every procfs instance of the kernel.
    fn boot_id(&self) -> String;
    /// Seconds since the sandbox booted.
    fn uptime(&self) -> f64;
    /// The sandbox's memory limit in bytes (its cgroup's), which `/proc/meminfo` reports
    /// as the total; `None` for the host's.
    fn memory_limit(&self) -> Option<u64> {
        None
    }
    /// Bytes of memory the sandbox's programs hold (what its memory limit counts).
    fn memory_usage(&self) -> u64 {
        0
    }
    /// The contents of `/proc/net/<name>` (`None`: no such file).
    fn net_file(&self, _name: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// The contents of `/proc/sysvipc/<name>` (`msg`, `sem`, `shm`) for the IPC
    /// namespace of the reader (`None`: no such file).
    fn sysvipc_file(&self, _name: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// The text of sysctl `name` (a path below `/proc/sys`), without a newline.
    fn sysctl(&self, _name: &str) -> Option<String> {
        None
    }
    /// Sets sysctl `name` from what the calling task wrote.
    fn set_sysctl(&self, _caller: &Caller, _name: &str, _value: &[u8]) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }
    /// `/proc/<pid>/oom_score_adj`.
    fn oom_score_adj(&self, _pid: i32) -> Option<i32> {
        Some(0)
    }
    /// Writes `/proc/<pid>/oom_score_adj` on behalf of the calling task.
    fn set_oom_score_adj(&self, _caller: &Caller, _pid: i32, _value: &[u8]) -> Result<(), Errno> {
        Err(Errno::EACCES)
    }
}

/// The files of `/proc/net`.
const NET_FILES: [&[u8]; 10] = [
    b"tcp",
    b"tcp6",
    b"udp",
    b"udp6",
    b"icmp",
    b"icmp6",
    b"dev",
    b"route",
    b"if_inet6",
    b"unix",
];

/// Shared state of one procfs instance.
pub struct ProcFs {
    attrs: Attrs,
    source: RwLock<Option<Weak<dyn ProcSource>>>,
    vfs: RwLock<Weak<Vfs>>,
}

impl std::fmt::Debug for ProcFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcFs").finish()
    }
}

impl ProcFs {
    fn src(&self) -> Result<Arc<dyn ProcSource>, Errno> {
        self.source
            .read()
            .as_ref()
            .and_then(Weak::upgrade)
            .ok_or(Errno::ENOENT)
    }

    /// Connects the kernel.
    pub fn set_source(&self, s: Weak<dyn ProcSource>) {
        *self.source.write() = Some(s);
    }

    /// Connects the mount tree (for `mounts`).
    pub fn set_vfs(&self, v: Weak<Vfs>) {
        *self.vfs.write() = v;
    }

    fn vfs(&self) -> Option<Arc<Vfs>> {
        self.vfs.read().upgrade()
    }
}

fn generator(f: impl Fn() -> Result<Vec<u8>, Errno> + Send + Sync + 'static) -> Generator {
    Box::new(f)
}

fn file(
    fs: &Arc<ProcFs>,
    f: impl Fn(&ProcFs) -> Result<Vec<u8>, Errno> + Send + Sync + 'static,
) -> Arc<dyn Inode> {
    let fs2 = fs.clone();
    SynthFile::new(fs.attrs, 0o444, generator(move || f(&fs2)))
}

/// `/proc/sys/kernel/{hostname,domainname}`: the UTS names, writable by root as the
/// sysctls (`name` is the sysctl's).
fn uts_file(fs: &Arc<ProcFs>, name: &'static str) -> Arc<dyn Inode> {
    let (f1, f2) = (fs.clone(), fs.clone());
    SynthFile::writable(
        fs.attrs,
        0o644,
        generator(move || {
            let src = f1.src()?;
            let v = if name == "kernel/hostname" {
                src.hostname()
            } else {
                src.domainname()
            };
            Ok(format!("{v}\n").into_bytes())
        }),
        Box::new(move |c, buf| f2.src()?.set_sysctl(c, name, buf)),
    )
}

/// Builds a procfs; connect it with [`ProcFs::set_source`] and [`ProcFs::set_vfs`].
pub fn new_procfs() -> (Arc<ProcFs>, Arc<dyn Inode>) {
    let fs = Arc::new(ProcFs {
        attrs: Attrs::root(super::new_dev(), magic::PROC),
        source: RwLock::new(None),
        vfs: RwLock::new(Weak::new()),
    });
    let a = fs.attrs;
    let kernel_extra: Vec<(&'static [u8], Arc<dyn Inode>)> = vec![
        (b"hostname", uts_file(&fs, "kernel/hostname")),
        (b"domainname", uts_file(&fs, "kernel/domainname")),
        (b"osrelease", SynthFile::fixed(a, format!("{OS_RELEASE}\n"))),
        (b"ostype", SynthFile::fixed(a, "Linux\n")),
        (b"version", SynthFile::fixed(a, format!("{OS_VERSION}\n"))),
        (
            b"random",
            SynthDir::fixed(
                a,
                0o555,
                vec![
                    (
                        b"boot_id",
                        file(
                            &fs,
                            |p| Ok(format!("{}\n", p.src()?.boot_id()).into_bytes()),
                        ),
                    ),
                    (
                        b"uuid",
                        SynthFile::new(
                            a,
                            0o444,
                            generator(|| Ok(format!("{}\n", uuid()).into_bytes())),
                        ),
                    ),
                ],
            ),
        ),
    ];
    let names: Vec<&'static str> = crate::kernel::sysctl::Sysctls::names().collect();
    let sys = sysctl_dir(&fs, &names, "", kernel_extra);
    let statics: Vec<(&'static [u8], Arc<dyn Inode>)> = vec![
        (
            b"meminfo",
            file(&fs, |p| {
                let src = p.src()?;
                Ok(meminfo(src.memory_limit(), src.memory_usage()))
            }),
        ),
        (b"cpuinfo", file(&fs, |_| Ok(cpuinfo()))),
        (
            b"locks",
            file(&fs, |p| {
                Ok(p.vfs()
                    .map(|v| v.locks().proc_locks().into_bytes())
                    .unwrap_or_default())
            }),
        ),
        (
            b"uptime",
            file(&fs, |p| {
                let u = p.src()?.uptime();
                Ok(format!("{u:.2} {:.2}\n", u * ncpus() as f64).into_bytes())
            }),
        ),
        (
            b"loadavg",
            file(&fs, |p| {
                let n = p.src()?.pids().len();
                Ok(format!(
                    "0.00 0.00 0.00 1/{n} {}\n",
                    p.src()?.pids().into_iter().max().unwrap_or(1)
                )
                .into_bytes())
            }),
        ),
        (b"stat", file(&fs, |p| Ok(stat_text(p)))),
        (
            b"version",
            SynthFile::fixed(
                a,
                format!("Linux version {OS_RELEASE} (rsentry) {OS_VERSION}\n"),
            ),
        ),
        (
            b"filesystems",
            SynthFile::fixed(
                a,
                "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\toverlay\nnodev\tdevtmpfs\nnodev\tpipefs\nnodev\t9p\n",
            ),
        ),
        (b"cmdline", SynthFile::fixed(a, "BOOT_IMAGE=/vmlinuz\n")),
        (
            b"config.gz",
            SynthFile::fixed(a, gzip_stored(KERNEL_CONFIG.as_bytes())),
        ),
        (b"mounts", SynthLink::fixed(a, b"self/mounts")),
        (b"sys", sys),
        (
            b"sysvipc",
            SynthDir::fixed(
                a,
                0o555,
                [&b"msg"[..], b"sem", b"shm"]
                    .into_iter()
                    .map(|n| {
                        let f = file(&fs, move |p| p.src()?.sysvipc_file(n).ok_or(Errno::ENOENT));
                        (n, f)
                    })
                    .collect(),
            ),
        ),
        (
            b"net",
            SynthDir::fixed(
                a,
                0o555,
                NET_FILES
                    .iter()
                    .map(|&n| {
                        let f = file(&fs, move |p| {
                            if n == b"unix" {
                                return Ok(
                                    b"Num       RefCount Protocol Flags    Type St Inode Path\n"
                                        .to_vec(),
                                );
                            }
                            p.src()?.net_file(n).ok_or(Errno::ENOENT)
                        });
                        (n, f)
                    })
                    .collect(),
            ),
        ),
    ];
    let statics = Arc::new(statics);
    let (fs_l, st_l) = (fs.clone(), statics.clone());
    let list: Lister = Box::new(move || {
        let mut v: Vec<(Vec<u8>, Arc<dyn Inode>)> =
            st_l.iter().map(|(n, i)| (n.to_vec(), i.clone())).collect();
        v.push((b"self".to_vec(), self_link(&fs_l)));
        v.push((b"thread-self".to_vec(), thread_self_link(&fs_l)));
        if let Ok(src) = fs_l.src() {
            for pid in src.pids() {
                v.push((pid.to_string().into_bytes(), pid_dir(&fs_l, pid, false)));
            }
        }
        v
    });
    let (fs_f, st_f) = (fs.clone(), statics);
    let find: Finder = Box::new(move |name| {
        if let Some((_, i)) = st_f.iter().find(|(n, _)| *n == name) {
            return Some(i.clone());
        }
        match name {
            b"self" => return Some(self_link(&fs_f)),
            b"thread-self" => return Some(thread_self_link(&fs_f)),
            _ => {}
        }
        let pid: i32 = std::str::from_utf8(name).ok()?.parse().ok()?;
        let src = fs_f.src().ok()?;
        if src.process(pid).is_some() {
            return Some(pid_dir(&fs_f, pid, false));
        }
        // A thread id that is not a process id is reachable too (as Linux does).
        src.pids().into_iter().find_map(|p| {
            let info = src.process(p)?;
            info.tids.contains(&pid).then(|| pid_dir(&fs_f, pid, true))
        })
    });
    let root: Arc<dyn Inode> = SynthDir::dynamic(a, 0o555, list, Some(find));
    (fs, root)
}

/// The `/proc/sys` directory at `prefix` (`""` or `"kernel/"`...) holding the sysctls of
/// `names` below it; `kernel_extra` joins `/proc/sys/kernel`.
fn sysctl_dir(
    fs: &Arc<ProcFs>,
    names: &[&'static str],
    prefix: &str,
    mut kernel_extra: Vec<(&'static [u8], Arc<dyn Inode>)>,
) -> Arc<dyn Inode> {
    let a = fs.attrs;
    let mut entries: Vec<(&'static [u8], Arc<dyn Inode>)> = Vec::new();
    let mut subdirs: Vec<&'static str> = Vec::new();
    for name in names.iter().filter(|n| n.starts_with(prefix)) {
        let rest = &name[prefix.len()..];
        match rest.split_once('/') {
            Some((dir, _)) => {
                let dir_start = prefix.len();
                let comp: &'static str = &name[dir_start..dir_start + dir.len()];
                if !subdirs.contains(&comp) {
                    subdirs.push(comp);
                }
            }
            None => {
                let leaf: &'static str = &name[prefix.len()..];
                let name: &'static str = name;
                let (f1, f2) = (fs.clone(), fs.clone());
                entries.push((
                    leaf.as_bytes(),
                    SynthFile::writable(
                        a,
                        0o644,
                        generator(move || {
                            let v = f1.src()?.sysctl(name).ok_or(Errno::ENOENT)?;
                            Ok(format!("{v}\n").into_bytes())
                        }),
                        Box::new(move |c, buf| f2.src()?.set_sysctl(c, name, buf)),
                    ),
                ));
            }
        }
    }
    for comp in subdirs {
        let sub = format!("{prefix}{comp}/");
        let extra = if sub == "kernel/" {
            std::mem::take(&mut kernel_extra)
        } else {
            Vec::new()
        };
        entries.push((comp.as_bytes(), sysctl_dir(fs, names, &sub, extra)));
    }
    entries.append(&mut kernel_extra);
    SynthDir::fixed(a, 0o555, entries)
}

/// `/proc/<pid>/oom_score_adj`: readable by all, writable by the owner (checked by the
/// kernel, which knows the writer).
fn oom_score_adj_file(
    fs: &Arc<ProcFs>,
    tg: impl Fn(&ProcFs) -> Result<i32, Errno> + Copy + Send + Sync + 'static,
) -> Arc<dyn Inode> {
    let (f1, f2) = (fs.clone(), fs.clone());
    SynthFile::writable(
        fs.attrs,
        0o644,
        generator(move || {
            let v = f1.src()?.oom_score_adj(tg(&f1)?).ok_or(Errno::ESRCH)?;
            Ok(format!("{v}\n").into_bytes())
        }),
        Box::new(move |c, buf| f2.src()?.set_oom_score_adj(c, tg(&f2)?, buf)),
    )
}

/// `/proc/config.gz`: the kernel configuration as far as the Sentry implements it, so
/// programs (and LTP) that check for a feature find out whether *this* kernel has it.
/// Features the Sentry lacks (namespaces, dnotify, modules...) are absent.
const KERNEL_CONFIG: &str = "\
# rsentry: the configuration of the Linux ABI the Sentry implements
CONFIG_64BIT=y
CONFIG_X86_64=y
CONFIG_MMU=y
CONFIG_SMP=y
CONFIG_MULTIUSER=y
CONFIG_SYSVIPC=y
CONFIG_POSIX_TIMERS=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_EVENTFD=y
CONFIG_SHMEM=y
CONFIG_TMPFS=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_OVERLAY_FS=y
CONFIG_FILE_LOCKING=y
CONFIG_UNIX=y
CONFIG_INET=y
CONFIG_IPV6=y
CONFIG_NET=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_CHECKPOINT_RESTORE=y
";

/// `data` as a gzip stream of stored (uncompressed) deflate blocks: what `zcat` needs,
/// without a compressor.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(c) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let n = c.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// CRC-32 (IEEE, reflected), as gzip's trailer wants.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn self_link(fs: &Arc<ProcFs>) -> Arc<dyn Inode> {
    SynthLink::per_caller(
        fs.attrs,
        Box::new(|c: &Caller| Ok(c.tgid.to_string().into_bytes())),
    )
}

fn thread_self_link(fs: &Arc<ProcFs>) -> Arc<dyn Inode> {
    SynthLink::per_caller(
        fs.attrs,
        Box::new(|c: &Caller| Ok(format!("{}/task/{}", c.tgid, c.tid).into_bytes())),
    )
}

fn info(fs: &ProcFs, pid: i32) -> Result<ProcInfo, Errno> {
    fs.src()?.process(pid).ok_or(Errno::ESRCH)
}

/// A `/proc/<pid>` (or `task/<tid>`) directory. For a thread (`is_thread`), `pid` is a
/// tid; data comes from its thread group.
fn pid_dir(fs: &Arc<ProcFs>, pid: i32, is_thread: bool) -> Arc<dyn Inode> {
    let a = fs.attrs;
    let tg = move |fs: &ProcFs| -> Result<i32, Errno> {
        if !is_thread {
            return Ok(pid);
        }
        let src = fs.src()?;
        src.pids()
            .into_iter()
            .find(|&p| src.process(p).is_some_and(|i| i.tids.contains(&pid)))
            .ok_or(Errno::ESRCH)
    };
    let magic_link =
        |fs: &Arc<ProcFs>, f: fn(&ProcFs, i32) -> Result<VfsPath, Errno>| -> Arc<dyn Inode> {
            let (f1, f2) = (fs.clone(), fs.clone());
            let text: Generator = generator(move || Ok(f(&f1, tg(&f1)?)?.path_from(None)));
            let m: MagicFn = Box::new(move || f(&f2, tg(&f2)?));
            SynthLink::new(a, text, Some(m))
        };
    let mut entries: Vec<(&[u8], Arc<dyn Inode>)> = vec![
        (
            b"stat",
            file(fs, move |p| Ok(pid_stat(&info(p, tg(p)?)?, pid, is_thread))),
        ),
        (
            b"statm",
            file(fs, move |p| {
                let i = info(p, tg(p)?)?;
                Ok(format!("{} {} 0 0 0 0 0\n", i.vm_size / 4096, i.vm_rss / 4096).into_bytes())
            }),
        ),
        (
            b"status",
            file(fs, move |p| Ok(pid_status(&info(p, tg(p)?)?, pid))),
        ),
        (b"cmdline", file(fs, move |p| Ok(info(p, tg(p)?)?.cmdline))),
        (b"environ", file(fs, move |p| Ok(info(p, tg(p)?)?.environ))),
        (
            b"comm",
            file(fs, move |p| {
                let mut c = info(p, tg(p)?)?.comm;
                c.push(b'\n');
                Ok(c)
            }),
        ),
        (
            b"maps",
            file(fs, move |p| p.src()?.maps(tg(p)?).ok_or(Errno::ESRCH)),
        ),
        (b"mounts", file(fs, move |p| mounts_text(p, tg(p)?, false))),
        (
            b"mountinfo",
            file(fs, move |p| mounts_text(p, tg(p)?, true)),
        ),
        (b"cgroup", SynthFile::fixed(a, "0::/\n")),
        (b"oom_score_adj", oom_score_adj_file(fs, tg)),
        (
            b"limits",
            file(fs, move |p| Ok(limits_text(&info(p, tg(p)?)?))),
        ),
        (
            b"exe",
            magic_link(fs, |p, pid| p.src()?.exe(pid).ok_or(Errno::ENOENT)),
        ),
        (
            b"cwd",
            magic_link(fs, |p, pid| {
                Ok(p.src()?.fs_context(pid).ok_or(Errno::ESRCH)?.cwd())
            }),
        ),
        (
            b"root",
            magic_link(fs, |p, pid| {
                Ok(p.src()?.fs_context(pid).ok_or(Errno::ESRCH)?.root())
            }),
        ),
        (b"fd", fd_dir(fs, pid, is_thread, false)),
        (b"fdinfo", fd_dir(fs, pid, is_thread, true)),
    ];
    if !is_thread {
        let (fl, ff) = (fs.clone(), fs.clone());
        let list: Lister = Box::new(move || {
            info(&fl, pid)
                .map(|i| {
                    i.tids
                        .iter()
                        .map(|&t| (t.to_string().into_bytes(), pid_dir(&fl, t, true)))
                        .collect()
                })
                .unwrap_or_default()
        });
        let find: Finder = Box::new(move |name| {
            let t: i32 = std::str::from_utf8(name).ok()?.parse().ok()?;
            info(&ff, pid)
                .ok()?
                .tids
                .contains(&t)
                .then(|| pid_dir(&ff, t, true))
        });
        entries.push((b"task", SynthDir::dynamic(a, 0o555, list, Some(find))));
        // A process directory names the process it was looked up for, even after its
        // id is reused (Linux keeps the `struct pid` in the inode).
        if let Some(owner) = fs.src().ok().and_then(|s| s.process_object(pid)) {
            return SynthDir::fixed_owned(a, 0o555, entries, &owner);
        }
    }
    SynthDir::fixed(a, 0o555, entries)
}

fn fd_dir(fs: &Arc<ProcFs>, pid: i32, is_thread: bool, fdinfo: bool) -> Arc<dyn Inode> {
    let table = move |fs: &ProcFs| -> Option<Arc<FdTable>> {
        let src = fs.src().ok()?;
        let tgid = if is_thread {
            src.pids()
                .into_iter()
                .find(|&p| src.process(p).is_some_and(|i| i.tids.contains(&pid)))?
        } else {
            pid
        };
        src.fd_table(tgid)
    };
    let entry = move |fs: &Arc<ProcFs>, fd: i32| -> Arc<dyn Inode> {
        let a = fs.attrs;
        let (f1, f2) = (fs.clone(), fs.clone());
        if fdinfo {
            return SynthFile::new(
                a,
                0o444,
                generator(move || {
                    let f = table(&f1)
                        .ok_or(Errno::ENOENT)?
                        .get(fd)
                        .map_err(|_| Errno::ENOENT)?;
                    Ok(format!(
                        "pos:\t{}\nflags:\t0{:o}\nmnt_id:\t{}\n{}",
                        f.offset(),
                        f.flags(),
                        f.vfs_path().mount.id(),
                        f.ops().fdinfo()
                    )
                    .into_bytes())
                }),
            );
        }
        SynthLink::new(
            a,
            generator(move || {
                Ok(table(&f1)
                    .ok_or(Errno::ENOENT)?
                    .get(fd)
                    .map_err(|_| Errno::ENOENT)?
                    .path())
            }),
            Some(Box::new(move || {
                Ok(table(&f2)
                    .ok_or(Errno::ENOENT)?
                    .get(fd)
                    .map_err(|_| Errno::ENOENT)?
                    .vfs_path()
                    .clone())
            })),
        )
    };
    let (fl, ff) = (fs.clone(), fs.clone());
    let list: Lister = Box::new(move || {
        table(&fl)
            .map(|t| {
                t.fds()
                    .into_iter()
                    .map(|(fd, _)| (fd.to_string().into_bytes(), entry(&fl, fd)))
                    .collect()
            })
            .unwrap_or_default()
    });
    let find: Finder = Box::new(move |name| {
        let fd: i32 = std::str::from_utf8(name).ok()?.parse().ok()?;
        table(&ff)?.get(fd).ok()?;
        Some(entry(&ff, fd))
    });
    SynthDir::dynamic(fs.attrs, 0o500, list, Some(find))
}

/// `/proc/<pid>/stat`, or for a thread (`is_thread`) `/proc/<pid>/task/<tid>/stat`,
/// whose times are the thread's own (and no children's).
fn pid_stat(i: &ProcInfo, tid: i32, is_thread: bool) -> Vec<u8> {
    let (utime, stime, cutime, cstime) = if is_thread {
        let (u, s) = i
            .thread_ticks
            .iter()
            .find(|(t, _, _)| *t == tid)
            .map_or((0, 0), |&(_, u, s)| (u, s));
        (u, s, 0, 0)
    } else {
        (i.utime_ticks, i.stime_ticks, i.cutime_ticks, i.cstime_ticks)
    };
    // Fields 1-24, then rsslim .. kstkeip (25-30), the signal sets (31-34), wchan ..
    // cnswap (35-37), exit_signal (38) and the rest zero.
    format!(
        "{} ({}) {} {} {} {} {} {} 4194560 0 0 0 0 {} {} {} {} 20 0 {} 0 {} {} {} 18446744073709551615 0 0 0 0 0 {} {} {} {} 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        tid,
        String::from_utf8_lossy(&i.comm),
        i.state,
        i.ppid,
        i.pgid,
        i.sid,
        i.tty_nr,
        i.tpgid,
        utime,
        stime,
        cutime,
        cstime,
        i.tids.len().max(1),
        i.start_ticks,
        i.vm_size,
        i.vm_rss / 4096,
        i.sig_pending | i.sig_shared,
        i.sig_blocked,
        i.sig_ignored,
        i.sig_caught,
    )
    .into_bytes()
}

/// The `/proc/<pid>/limits` table.
fn limits_text(i: &ProcInfo) -> Vec<u8> {
    const ROWS: [(&str, &str); 16] = [
        ("Max cpu time", "seconds"),
        ("Max file size", "bytes"),
        ("Max data size", "bytes"),
        ("Max stack size", "bytes"),
        ("Max core file size", "bytes"),
        ("Max resident set", "bytes"),
        ("Max processes", "processes"),
        ("Max open files", "files"),
        ("Max locked memory", "bytes"),
        ("Max address space", "bytes"),
        ("Max file locks", "locks"),
        ("Max pending signals", "signals"),
        ("Max msgqueue size", "bytes"),
        ("Max nice priority", ""),
        ("Max realtime priority", ""),
        ("Max realtime timeout", "us"),
    ];
    let v = |x: u64| {
        if x == u64::MAX {
            "unlimited".to_string()
        } else {
            x.to_string()
        }
    };
    let mut s = format!(
        "{:<26}{:<21}{:<21}{:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    for (k, (name, unit)) in ROWS.iter().enumerate() {
        let (soft, hard) = i.limits.get(k).copied().unwrap_or((u64::MAX, u64::MAX));
        let _ = writeln!(s, "{:<26}{:<21}{:<21}{:<10}", name, v(soft), v(hard), unit);
    }
    s.into_bytes()
}

fn pid_status(i: &ProcInfo, tid: i32) -> Vec<u8> {
    let mut s = String::new();
    let state = match i.state {
        'R' => "R (running)",
        'Z' => "Z (zombie)",
        'T' => "T (stopped)",
        'D' => "D (disk sleep)",
        _ => "S (sleeping)",
    };
    let _ = write!(
        s,
        "Name:\t{}\nUmask:\t{:04o}\nState:\t{state}\nTgid:\t{}\nNgid:\t0\nPid:\t{tid}\nPPid:\t{}\nTracerPid:\t0\n",
        String::from_utf8_lossy(&i.comm),
        i.umask,
        i.pid,
        i.ppid
    );
    let [u0, u1, u2, u3] = i.uids;
    let [g0, g1, g2, g3] = i.gids;
    let groups: Vec<String> = i.groups.iter().map(u32::to_string).collect();
    let _ = write!(
        s,
        "Uid:\t{u0}\t{u1}\t{u2}\t{u3}\nGid:\t{g0}\t{g1}\t{g2}\t{g3}\nFDSize:\t64\nGroups:\t{}\n",
        groups.join(" ")
    );
    let _ = write!(
        s,
        "VmPeak:\t{0:>8} kB\nVmSize:\t{0:>8} kB\nVmRSS:\t{1:>8} kB\nVmSwap:\t       0 kB\nThreads:\t{2}\n",
        i.vm_size / 1024,
        i.vm_rss / 1024,
        i.tids.len().max(1)
    );
    let _ = write!(
        s,
        "SigQ:\t0/127431\nSigPnd:\t{2:016x}\nShdPnd:\t{3:016x}\nSigBlk:\t{4:016x}\nSigIgn:\t{5:016x}\nSigCgt:\t{6:016x}\nCapInh:\t{7:016x}\nCapPrm:\t{8:016x}\nCapEff:\t{9:016x}\nCapBnd:\t{10:016x}\nCapAmb:\t{11:016x}\nNoNewPrivs:\t{0}\nSeccomp:\t0\nCpus_allowed_list:\t{1}\nvoluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n",
        u8::from(i.no_new_privs),
        match ncpus() {
            0 | 1 => "0".to_string(),
            n => format!("0-{}", n - 1),
        },
        i.sig_pending,
        i.sig_shared,
        i.sig_blocked,
        i.sig_ignored,
        i.sig_caught,
        i.caps[0],
        i.caps[1],
        i.caps[2],
        i.caps[3],
        i.caps[4],
    );
    s.into_bytes()
}

fn mounts_text(fs: &ProcFs, pid: i32, info_format: bool) -> Result<Vec<u8>, Errno> {
    let vfs = fs.vfs().ok_or(Errno::ENOENT)?;
    let root = fs.src()?.fs_context(pid).map(|c| c.root());
    // Only the mounts of the task's own tree (its container's mount namespace).
    let top = root.as_ref().map(|r| r.mount.top());
    let mut s = Vec::new();
    for m in vfs.mounts() {
        if let Some(t) = &top
            && !Arc::ptr_eq(&m.top(), t)
        {
            continue;
        }
        let mp = match &root {
            Some(r) => {
                let at = vfs.mount_point(&m);
                // Mounts outside the task's root are not shown; paths are relative to it.
                let rp = r.path_from(None);
                if rp == b"/" {
                    at
                } else if at.starts_with(&rp) && (at.len() == rp.len() || at[rp.len()] == b'/') {
                    let rest = at[rp.len()..].to_vec();
                    if rest.is_empty() { b"/".to_vec() } else { rest }
                } else {
                    continue;
                }
            }
            None => vfs.mount_point(&m),
        };
        let opts = if m.readonly() { "ro" } else { "rw" };
        if info_format {
            let parent = m.parent_id().unwrap_or(1);
            // The device its files report (what statx's stx_dev_major/minor match).
            let dev = m.root().inode().stat().map_or(0, |st| st.st_dev);
            let (major, minor) = (super::dev_major(dev), super::dev_minor(dev));
            s.extend_from_slice(format!("{} {} {major}:{minor} / ", m.id(), parent).as_bytes());
            s.extend_from_slice(&escape(&mp));
            s.extend_from_slice(
                format!(" {opts},relatime - {} {} {opts}\n", m.fstype(), m.source()).as_bytes(),
            );
        } else {
            s.extend_from_slice(m.source().as_bytes());
            s.push(b' ');
            s.extend_from_slice(&escape(&mp));
            s.extend_from_slice(format!(" {} {opts},relatime 0 0\n", m.fstype()).as_bytes());
        }
    }
    Ok(s)
}

fn escape(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    for &b in p {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
    out
}

/// Number of CPUs the sandbox reports (the host's online CPUs).
pub fn ncpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The host's `/proc/meminfo` as read the first time (before confinement hides it).
fn host_meminfo() -> Option<&'static str> {
    static HOST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    HOST.get_or_init(|| std::fs::read_to_string("/proc/meminfo").ok())
        .as_deref()
}

fn host_meminfo_kb(key: &str) -> Option<u64> {
    let text = host_meminfo()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Total and free memory in bytes under a memory limit of `limit` bytes of which `used`
/// are taken, on a host with `host_total`: the limit is the total (as gVisor reports a
/// container's; never more than the host has) and free is what it leaves.
pub(crate) fn limited_memory(limit: u64, used: u64, host_total: u64) -> (u64, u64) {
    let total = limit.min(host_total);
    (total, total.saturating_sub(used))
}

fn meminfo(limit: Option<u64>, used: u64) -> Vec<u8> {
    // The host's totals (read when the Sentry starts using it; /proc may be absent after
    // confinement, then fixed values); under a memory limit, the limit and what the
    // sandbox's programs leave of it.
    let host_total = host_meminfo_kb("MemTotal").unwrap_or(8 << 20);
    let (total, free, avail) = match limit {
        Some(l) => {
            let (t, f) = limited_memory(l, used, host_total.saturating_mul(1024));
            (t / 1024, f / 1024, f / 1024)
        }
        None => {
            let free = host_meminfo_kb("MemFree")
                .unwrap_or(host_total / 2)
                .min(host_total);
            let avail = host_meminfo_kb("MemAvailable")
                .unwrap_or(free)
                .min(host_total);
            (host_total, free, avail)
        }
    };
    format!(
        "MemTotal:       {total:>8} kB\nMemFree:        {free:>8} kB\nMemAvailable:   {avail:>8} kB\nBuffers:               0 kB\nCached:                0 kB\nSwapCached:            0 kB\nActive:                0 kB\nInactive:              0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\nDirty:                 0 kB\nShmem:                 0 kB\nHugePages_Total:       0\nHugePages_Free:        0\nHugepagesize:       2048 kB\n"
    )
    .into_bytes()
}

fn cpuinfo() -> Vec<u8> {
    const KEEP: [&str; 12] = [
        "processor",
        "vendor_id",
        "cpu family",
        "model",
        "model name",
        "stepping",
        "cpu MHz",
        "cache size",
        "flags",
        "bogomips",
        "clflush size",
        "address sizes",
    ];
    static HOST: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let host = HOST.get_or_init(|| std::fs::read_to_string("/proc/cpuinfo").ok());
    let mut out = String::new();
    match host {
        Some(text) => {
            for line in text.lines() {
                let key = line.split(':').next().unwrap_or("").trim_end();
                if line.is_empty() {
                    out.push('\n');
                } else if KEEP.contains(&key) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        None => {
            for i in 0..ncpus() {
                let _ = write!(
                    out,
                    "processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: rsentry vCPU\nflags\t\t: fpu sse sse2\n\n"
                );
            }
        }
    }
    out.into_bytes()
}

/// Caches the host's `/proc/cpuinfo` and `/proc/meminfo` (call before the Sentry confines
/// itself).
pub fn prime_host_info() {
    let _ = cpuinfo();
    let _ = host_meminfo();
}

fn stat_text(p: &ProcFs) -> Vec<u8> {
    let mut s = String::from("cpu  0 0 0 0 0 0 0 0 0 0\n");
    for i in 0..ncpus() {
        let _ = writeln!(s, "cpu{i} 0 0 0 0 0 0 0 0 0 0");
    }
    let boot = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
        - p.src().map(|s| s.uptime()).unwrap_or(0.0);
    let n = p.src().map(|s| s.pids().len()).unwrap_or(1);
    let _ = write!(
        s,
        "intr 0\nctxt 0\nbtime {}\nprocesses {n}\nprocs_running 1\nprocs_blocked 0\n",
        boot as u64
    );
    s.into_bytes()
}

/// A random (version 4) UUID in its text form.
pub(crate) fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = super::devfs::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

#[cfg(test)]
mod config_tests {
    #[test]
    fn crc32_and_gzip_framing() {
        assert_eq!(super::crc32(b"123456789"), 0xcbf4_3926);
        let z = super::gzip_stored(b"abc");
        assert_eq!(&z[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(&z[10..15], &[1, 3, 0, 0xfc, 0xff]);
        assert_eq!(&z[15..18], b"abc");
        assert_eq!(z.len(), 26);
    }
}
