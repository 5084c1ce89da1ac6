//! Confinement of the gofer process: namespaces, a private mount tree rooted at the served
//! directory, a minimal capability set and a seccomp allowlist.
//!
//! The order matters and is fixed by [`serve`](crate::serve):
//! 1. [`unshare_and_fork`]: new mount, PID, IPC, UTS and network namespaces; the server
//!    runs in the forked child, PID 1 of the new PID namespace.
//! 2. [`confine`] (in the child): mounts private, root bind-mounted onto itself
//!    (`nosuid,nodev`, read-only when serving read-only), `pivot_root` into it and the old
//!    root detached; capabilities trimmed to [`KEPT_CAPS`]; `no_new_privs` set.
//! 3. [`install_seccomp`], last: anything outside [`allowed_syscalls`] kills the process.

use std::os::fd::OwnedFd;
use std::path::Path;

use caps::{CapSet, Capability, CapsHashSet};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, chdir, pivot_root};
use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use crate::GoferError;
use crate::sys;
use crate::tree::open_proc_self_fd;

/// Capabilities the gofer keeps: exactly what serving files as root needs.
pub const KEPT_CAPS: [Capability; 5] = [
    // chown on SetStat and on files created for a sandbox user.
    Capability::CAP_CHOWN,
    // Read/write files regardless of their mode bits (the Sentry checks permissions).
    Capability::CAP_DAC_OVERRIDE,
    // Search any directory; linkat(AT_EMPTY_PATH) of a node.
    Capability::CAP_DAC_READ_SEARCH,
    // chmod/utimes on files owned by other users.
    Capability::CAP_FOWNER,
    // Keep set-id bits when writing or chowning on behalf of the sandbox.
    Capability::CAP_FSETID,
];

/// Which side of [`unshare_and_fork`] the caller is on.
#[derive(Debug)]
pub enum Side {
    /// The original process; the child serves. Wait for it with [`wait_child`].
    Parent(Pid),
    /// The forked child: PID 1 of the new PID namespace. Call [`confine`] next.
    Child,
}

fn step(what: &'static str) -> impl FnOnce(nix::Error) -> GoferError {
    move |e| GoferError::Confine {
        step: what,
        errno: e as i32,
    }
}

/// Enters new mount, PID, IPC, UTS and network namespaces and forks: the child is the first
/// process of the new PID namespace. Call it while the process is single-threaded.
pub fn unshare_and_fork() -> Result<Side, GoferError> {
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNET,
    )
    .map_err(step("unshare"))?;
    // No mount event of ours may propagate back to the host.
    make_mounts_private()?;
    match sys::fork_single_threaded().map_err(step("fork"))? {
        ForkResult::Parent { child } => Ok(Side::Parent(child)),
        ForkResult::Child => {
            // Die with the parent: a gofer must not outlive its runsc.
            sys::set_parent_death_signal(libc::SIGKILL).map_err(|e| GoferError::Confine {
                step: "pdeathsig",
                errno: e.raw(),
            })?;
            Ok(Side::Child)
        }
    }
}

/// The system calls of the process that waits for the serving child (the caller's side of
/// [`unshare_and_fork`]), with the reason for each: it only waits, logs and exits.
pub fn waiter_syscalls() -> Vec<(i64, &'static str)> {
    use libc::*;
    vec![
        (SYS_wait4, "waiting for the serving child"),
        (SYS_waitid, "waiting for the serving child"),
        (SYS_write, "log lines and the panic report"),
        (SYS_writev, "log lines"),
        (SYS_close, "closing descriptors on the way out"),
        (SYS_exit, "leaving"),
        (SYS_exit_group, "leaving"),
        (SYS_restart_syscall, "a wait interrupted by a signal"),
        (SYS_rt_sigreturn, "return from a signal handler"),
        (SYS_rt_sigprocmask, "glibc masks signals in exit paths"),
        (SYS_rt_sigaction, "glibc resets handlers in exit paths"),
        (SYS_sigaltstack, "std's stack overflow handler teardown"),
        (SYS_brk, "allocations for log and error messages"),
        (SYS_mmap, "allocations for log and error messages"),
        (SYS_munmap, "allocations for log and error messages"),
        (SYS_mremap, "allocations for log and error messages"),
        (SYS_madvise, "allocator returning memory"),
        (SYS_futex, "locks of the logger and stdio"),
        (SYS_getpid, "process identity for logs"),
        (SYS_gettid, "thread identity for logs"),
        (
            SYS_clock_gettime,
            "log timestamps when the vDSO is unavailable",
        ),
        (SYS_sched_yield, "spinning locks"),
    ]
}

/// Confines the process that waits for the serving child: no capability in any set,
/// `no_new_privs`, and a seccomp filter that kills it on any call outside
/// [`waiter_syscalls`]. From here on it can only wait, log and exit.
pub fn confine_waiter() -> Result<(), GoferError> {
    let cerr = |e: caps::errors::CapsError| GoferError::Caps(e.to_string());
    caps::clear(None, CapSet::Bounding).map_err(cerr)?;
    caps::clear(None, CapSet::Ambient).map_err(cerr)?;
    caps::clear(None, CapSet::Inheritable).map_err(cerr)?;
    caps::clear(None, CapSet::Effective).map_err(cerr)?;
    caps::clear(None, CapSet::Permitted).map_err(cerr)?;
    nix::sys::prctl::set_no_new_privs().map_err(step("no_new_privs"))?;
    let rules = waiter_syscalls()
        .into_iter()
        .map(|(nr, _why)| (nr, vec![]))
        .collect();
    let filter = compile(rules, SeccompAction::KillProcess, SeccompAction::Allow)?;
    seccompiler::apply_filter_all_threads(&filter).map_err(|e| GoferError::Seccomp(e.to_string()))
}

/// Waits for the serving child; `Ok` if it exited with status 0.
pub fn wait_child(child: Pid) -> Result<(), GoferError> {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
            Ok(WaitStatus::Exited(_, code)) => {
                return Err(GoferError::ChildExited(code));
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                return Err(GoferError::ChildKilled(sig as i32));
            }
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(step("waitpid")(e)),
        }
    }
}

/// Restricts the calling process (the child of [`unshare_and_fork`]) to `root`: after this
/// `/` is the served root. Returns `/proc/self/fd` opened beforehand, for
/// [`HostTree::with_proc_fd`](crate::tree::HostTree::with_proc_fd).
///
/// It first takes a private copy of the mount table (`unshare(CLONE_NEWNS)` again, harmless
/// after [`unshare_and_fork`]), so nothing it mounts, detaches or makes read-only can ever
/// touch the caller's mounts. Serving `/` itself needs no `pivot_root` (there is no
/// outside); the kernel-interface mounts are detached and the attributes set all the same.
pub fn confine(root: &Path, read_only: bool) -> Result<OwnedFd, GoferError> {
    unshare(CloneFlags::CLONE_NEWNS).map_err(step("unshare mount namespace"))?;
    make_mounts_private()?;
    // Opened while the host /proc is still reachable: the tree reopens its own O_PATH
    // descriptors through it. It keeps the detached host proc mount alive, nothing else.
    let proc_fd = open_proc_self_fd().map_err(|e| GoferError::Confine {
        step: "open /proc/self/fd",
        errno: e.raw(),
    })?;
    let root = std::fs::canonicalize(root).map_err(|e| GoferError::Confine {
        step: "canonicalize root",
        errno: e.raw_os_error().unwrap_or(libc::EINVAL),
    })?;
    let root = root.as_path();
    let is_slash = root == Path::new("/");
    if !is_slash {
        // Recursive bind, so file systems mounted below the root (a separate /home) are
        // served; kernel-interface file systems among them are detached next. (A bind of
        // "/" onto itself would stack where path lookup never enters it, hence the special
        // case.)
        mount(
            Some(root),
            root,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(step("bind root"))?;
    }
    detach_pseudo_mounts(root)?;
    set_mount_attrs(root, read_only)?;
    if !is_slash {
        chdir(root).map_err(step("chdir root"))?;
        // pivot_root(".", "."): the old root ends up stacked on "/", then detached.
        pivot_root(".", ".").map_err(step("pivot_root"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(step("detach old root"))?;
    }
    chdir("/").map_err(step("chdir /"))?;
    drop_caps()?;
    Ok(proc_fd)
}

/// Makes every mount of this namespace private: no mount event propagates to the host.
fn make_mounts_private() -> Result<(), GoferError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step("make mounts private"))
}

/// File systems that are kernel interfaces rather than files: never served, even when
/// mounted below the served root (a host `/` has `/proc`, `/sys`, `/dev` ...).
pub const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "bpf",
    "configfs",
    "fusectl",
    "pstore",
    "efivarfs",
    "hugetlbfs",
    "binfmt_misc",
    "autofs",
    "nsfs",
    "selinuxfs",
    "rpc_pipefs",
];

/// Undoes the octal escapes (`\040` for a space) of a `mountinfo` path.
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(((d[0] - b'0') << 6) | ((d[1] - b'0') << 3) | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Mount points strictly below `root` whose file system type is in [`PSEUDO_FS`], deepest
/// first, from the text of `/proc/self/mountinfo`.
pub fn pseudo_mounts_below(mountinfo: &str, root: &Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut prefix = root.as_os_str().as_bytes().to_vec();
    if prefix.last() != Some(&b'/') {
        prefix.push(b'/');
    }
    let mut found: Vec<std::path::PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mount_point = unescape_mountinfo(left.split(' ').nth(4)?);
            let fstype = right.split(' ').next()?;
            (PSEUDO_FS.contains(&fstype)
                && mount_point.starts_with(&prefix)
                && mount_point.len() > prefix.len())
            .then(|| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&mount_point)))
        })
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    found.dedup();
    found
}

/// Detaches every kernel-interface mount below `root` (in the gofer's private namespace).
fn detach_pseudo_mounts(root: &Path) -> Result<(), GoferError> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| GoferError::Confine {
            step: "read mountinfo",
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        })?;
    for mp in pseudo_mounts_below(&info, root) {
        // A mount point listed twice (below the original and below the bind) or hidden by
        // an earlier detach is no longer a mount: EINVAL/ENOENT are expected then.
        match umount2(&mp, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(step("detach pseudo file system")(e)),
        }
    }
    Ok(())
}

/// Makes the whole served tree `nosuid,nodev` (and read-only when serving read-only) with
/// `mount_setattr(AT_RECURSIVE)`; on kernels without it, remounts the top mount only.
fn set_mount_attrs(root: &Path, read_only: bool) -> Result<(), GoferError> {
    match sys::mount_setattr_recursive(root, read_only) {
        Ok(()) => Ok(()),
        Err(e) if e == linux_abi::Errno::ENOSYS => {
            tracing::warn!(
                "mount_setattr unavailable: only the top mount of the root is restricted"
            );
            let mut flags =
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            if read_only {
                flags |= MsFlags::MS_RDONLY;
            }
            mount(None::<&str>, root, None::<&str>, flags, None::<&str>)
                .map_err(step("remount root"))
        }
        Err(e) => Err(GoferError::Confine {
            step: "mount_setattr",
            errno: e.raw(),
        }),
    }
}

/// Trims every capability set to [`KEPT_CAPS`] and sets `no_new_privs`.
pub fn drop_caps() -> Result<(), GoferError> {
    let keep: CapsHashSet = KEPT_CAPS.iter().copied().collect();
    let cerr = |e: caps::errors::CapsError| GoferError::Caps(e.to_string());
    // The bounding set first: dropping from it needs CAP_SETPCAP in the effective set.
    for cap in caps::all() {
        // A capability this kernel does not know reads as an error: nothing to drop.
        if !keep.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(cerr)?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(cerr)?;
    caps::clear(None, CapSet::Inheritable).map_err(cerr)?;
    let have = caps::read(None, CapSet::Permitted).map_err(cerr)?;
    let kept: CapsHashSet = have.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &kept).map_err(cerr)?;
    caps::set(None, CapSet::Permitted, &kept).map_err(cerr)?;
    sys::set_no_new_privs().map_err(|e| GoferError::Confine {
        step: "no_new_privs",
        errno: e.raw(),
    })?;
    Ok(())
}

/// The system calls a serving gofer makes, each with the reason it needs it.
pub fn allowed_syscalls() -> Vec<(i64, &'static str)> {
    vec![
        // --- the host tree (crate::sys issues exactly these numbers) ---
        (
            libc::SYS_openat,
            "walk with O_PATH|O_NOFOLLOW; create; reopen via /proc/self/fd",
        ),
        (
            libc::SYS_newfstatat,
            "stat nodes with AT_EMPTY_PATH; identity check after link",
        ),
        (
            libc::SYS_fchmodat,
            "SetStat mode through the node's /proc/self/fd entry",
        ),
        (
            libc::SYS_fchownat,
            "SetStat owner, owner of created files (AT_EMPTY_PATH)",
        ),
        (libc::SYS_utimensat, "SetStat times (AT_EMPTY_PATH)"),
        (libc::SYS_ftruncate, "SetStat size on a reopened descriptor"),
        (libc::SYS_mkdirat, "MkdirAt"),
        (libc::SYS_mknodat, "MknodAt (regular, FIFO, socket only)"),
        (libc::SYS_symlinkat, "SymlinkAt"),
        (libc::SYS_linkat, "LinkAt"),
        (
            libc::SYS_unlinkat,
            "UnlinkAt; undoing a create whose chown failed",
        ),
        (libc::SYS_renameat2, "RenameAt"),
        (
            libc::SYS_readlinkat,
            "ReadLinkAt with an empty path on the symlink node",
        ),
        (libc::SYS_getdents64, "Getdents64"),
        (libc::SYS_lseek, "Getdents64 continuing from a cookie"),
        (libc::SYS_pread64, "PRead"),
        (libc::SYS_pwrite64, "PWrite"),
        (libc::SYS_fsync, "FSync"),
        (libc::SYS_fdatasync, "FSync of data only"),
        (libc::SYS_fstatfs, "FStatFs"),
        (libc::SYS_fallocate, "FAllocate"),
        (libc::SYS_close, "Close; donated descriptors after sending"),
        (
            libc::SYS_fcntl,
            "F_DUPFD_CLOEXEC: a copy of an open file to donate",
        ),
        // --- the lisafs channel (lisafs-proto's transport) ---
        (libc::SYS_recvmsg, "receive requests"),
        (
            libc::SYS_sendmsg,
            "send replies, donated descriptors as SCM_RIGHTS",
        ),
        (
            libc::SYS_shutdown,
            "the server closing the channel on a framing error",
        ),
        (libc::SYS_write, "log lines to stderr"),
        // --- the Rust runtime: memory, threads, synchronisation ---
        (libc::SYS_mmap, "allocator and thread stacks"),
        (libc::SYS_munmap, "allocator and thread stacks"),
        (libc::SYS_mremap, "allocator growth"),
        (libc::SYS_mprotect, "thread stack guard pages"),
        (libc::SYS_madvise, "allocator returning memory"),
        (libc::SYS_brk, "allocator (main arena)"),
        (
            libc::SYS_futex,
            "mutexes, condition variables, thread joins",
        ),
        (
            libc::SYS_sched_yield,
            "parking_lot's locks yield while spinning",
        ),
        // Never reached: the first filter answers ENOSYS so glibc falls back to clone,
        // whose flags the allowlist can check ([`CLONE_THREAD_ONLY`]).
        (
            libc::SYS_clone3,
            "worker threads (answered with ENOSYS, see above)",
        ),
        (
            libc::SYS_set_robust_list,
            "new threads register their robust futex list",
        ),
        (libc::SYS_rseq, "new threads register restartable sequences"),
        (
            libc::SYS_rt_sigprocmask,
            "thread creation blocks signals around clone",
        ),
        (
            libc::SYS_rt_sigaction,
            "std's stack-overflow handler set-up in new threads",
        ),
        (
            libc::SYS_sigaltstack,
            "per-thread stack-overflow handler stack",
        ),
        (libc::SYS_getrandom, "HashMap random keys in a new thread"),
        (
            libc::SYS_sched_getaffinity,
            "glibc malloc counts CPUs when a new thread makes an arena",
        ),
        (
            libc::SYS_clock_gettime,
            "log timestamps when the vDSO is unavailable",
        ),
        (
            libc::SYS_gettid,
            "std and glibc thread bookkeeping in new threads",
        ),
        (libc::SYS_exit, "worker threads finishing"),
        (libc::SYS_exit_group, "the gofer finishing"),
    ]
}

/// System calls allowed only with a fixed first argument: (number, argument 0, why).
pub fn allowed_with_arg0() -> Vec<(i64, u64, &'static str)> {
    vec![(
        libc::SYS_prctl,
        libc::PR_SET_NAME as u64,
        "std names the server's worker threads",
    )]
}

/// `clone` is allowed only with `CLONE_THREAD` set (which needs `CLONE_VM` and
/// `CLONE_SIGHAND`): worker threads, never a new process.
pub const CLONE_THREAD_ONLY: (i64, u64) = (libc::SYS_clone, libc::CLONE_THREAD as u64);

fn serr(e: seccompiler::BackendError) -> GoferError {
    GoferError::Seccomp(e.to_string())
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: SeccompAction,
    matched: SeccompAction,
) -> Result<BpfProgram, GoferError> {
    let arch = std::env::consts::ARCH.try_into().map_err(serr)?;
    SeccompFilter::new(rules, mismatch, matched, arch)
        .map_err(serr)?
        .try_into()
        .map_err(serr)
}

/// Compiles the allowlist: [`allowed_syscalls`], [`allowed_with_arg0`] and
/// [`CLONE_THREAD_ONLY`] are allowed; any other call kills the process.
pub fn seccomp_filter() -> Result<BpfProgram, GoferError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = allowed_syscalls()
        .into_iter()
        .map(|(nr, _why)| (nr, vec![]))
        .collect();
    for (nr, arg0, _why) in allowed_with_arg0() {
        let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, arg0)
            .map_err(serr)?;
        rules
            .entry(nr)
            .or_default()
            .push(SeccompRule::new(vec![cond]).map_err(serr)?);
    }
    let (nr, flag) = CLONE_THREAD_ONLY;
    let cond = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Qword,
        SeccompCmpOp::MaskedEq(flag),
        flag,
    )
    .map_err(serr)?;
    rules
        .entry(nr)
        .or_default()
        .push(SeccompRule::new(vec![cond]).map_err(serr)?);
    compile(rules, SeccompAction::KillProcess, SeccompAction::Allow)
}

/// The filter installed before the allowlist: `clone3` fails with `ENOSYS` (its flags live
/// in memory a filter cannot read); everything else is left to the allowlist.
pub fn clone3_enosys_filter() -> Result<BpfProgram, GoferError> {
    let rules = [(libc::SYS_clone3, vec![])].into_iter().collect();
    compile(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
    )
}

/// Installs both filters on every thread (sets `no_new_privs`): first
/// [`clone3_enosys_filter`], then [`seccomp_filter`]. The kernel applies the most
/// restrictive verdict of all filters, so `clone3` (allowed by the second) gets `ENOSYS`.
pub fn install_seccomp() -> Result<(), GoferError> {
    let ierr = |e: seccompiler::Error| GoferError::Seccomp(e.to_string());
    let first = clone3_enosys_filter()?;
    let allow = seccomp_filter()?;
    seccompiler::apply_filter_all_threads(&first).map_err(ierr)?;
    seccompiler::apply_filter_all_threads(&allow).map_err(ierr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_mounts_are_found_below_the_root_only() {
        let info = "\
22 1 8:1 / / rw - ext4 /dev/vda rw
23 22 0:5 / /proc rw - proc proc rw
24 22 0:6 / /srv/root rw - ext4 /dev/vdb rw
25 24 0:7 / /srv/root/proc rw - proc proc rw
26 24 0:8 / /srv/root/sys rw - sysfs sysfs rw
27 26 0:9 / /srv/root/sys/fs/cgroup rw - cgroup2 cgroup2 rw
28 24 0:10 / /srv/root/home rw - ext4 /dev/vdc rw
29 24 0:11 / /srv/root/my\\040dir rw - proc proc rw
30 22 0:12 / /srv/rootless rw - proc proc rw
";
        let got = pseudo_mounts_below(info, Path::new("/srv/root"));
        let want: Vec<std::path::PathBuf> = [
            "/srv/root/sys/fs/cgroup",
            "/srv/root/my dir",
            "/srv/root/proc",
            "/srv/root/sys",
        ]
        .iter()
        .map(Into::into)
        .collect();
        assert_eq!(got, want);
        let all = pseudo_mounts_below(info, Path::new("/"));
        assert_eq!(all.len(), 6);
        assert!(!all.contains(&"/srv/root/home".into()));
    }

    #[test]
    fn seccomp_filters_compile() {
        assert!(!seccomp_filter().expect("allowlist").is_empty());
        assert!(!clone3_enosys_filter().expect("clone3 filter").is_empty());
        let names: Vec<i64> = allowed_syscalls().iter().map(|(nr, _)| *nr).collect();
        assert!(!names.contains(&libc::SYS_execve) && !names.contains(&libc::SYS_ptrace));
        assert!(!names.contains(&libc::SYS_mount) && !names.contains(&libc::SYS_socket));
    }
}
