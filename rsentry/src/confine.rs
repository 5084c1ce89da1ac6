//! Confinement of the sandbox process, step by step, before the Sentry runs application
//! code: namespaces, an empty read-only root, no capabilities, `no_new_privs`. The seccomp
//! filter (module `seccomp`) comes last.
//!
//! Order matters and is enforced by the caller (`boot`):
//! 1. [`unshare_namespaces`] while the process has a single thread (new mount, IPC, UTS and
//!    network namespaces, the host's network namespace kept under `--network=host`; the PID namespace was made by `runsc do` when it started us, so
//!    we are PID 1 and every ptrace stub we fork stays inside it and dies with us);
//! 2. a platform that needs a host device (KVM: `/dev/kvm`) is created; it must start no
//!    thread or process;
//! 3. [`pivot_to_empty_root`]: a fresh 4 KiB tmpfs, read-only, becomes `/`, and the host's
//!    mounts are detached;
//! 4. [`drop_capabilities`]: every set emptied, on the only thread there is;
//! 5. [`set_no_new_privs`];
//! 6. the seccomp filter;
//! 7. a platform that needs no host file (ptrace) is created now, so its stub processes
//!    inherit all of the above.

use std::path::Path;

use caps::CapSet;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{chdir, pivot_root};

use crate::error::Error;

/// The host uid and gid the Sentry and its stubs run as (`nobody`/`nogroup`, as gVisor's
/// sandbox does): root of the sandbox's own user namespace, nobody outside it.
pub const SANDBOX_HOST_ID: u32 = 65534;

/// Moves the calling process (which must be single-threaded and host root) into a new user
/// namespace where it is root, mapped to [`SANDBOX_HOST_ID`] on the host: from the host
/// it is an unprivileged process, and the capabilities it keeps for confining itself
/// (mounts, `pivot_root` of the namespaces it creates next) count only inside. Supplementary
/// groups are dropped.
///
/// The maps must be written by a process privileged in the host's user namespace: a
/// forked helper waits until we have unshared, writes them and exits.
pub fn enter_user_namespace() -> Result<(), Error> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{Gid, Uid, pipe2, setgroups, setresgid, setresuid};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    // Our pid as the host's /proc names it (we are PID 1 of our own PID namespace).
    let host_pid =
        std::fs::read_link("/proc/self").map_err(|e| Error::host("readlink /proc/self", e))?;
    let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::nix("pipe", e))?;
    // The helper closes its copy of the write end first, so that it sees end-of-file
    // should we fail to unshare.
    let child = crate::host::fork_helper(&[w.as_raw_fd()], move || {
        let mut go = [0u8; 1];
        std::fs::File::from(r).read(&mut go).is_ok_and(|n| n == 1)
            && write_id_maps(&host_pid).is_ok()
    })
    .map_err(|e| Error::nix("fork", e))?;
    {
        {
            let unshared = unshare(CloneFlags::CLONE_NEWUSER);
            let mut w = std::fs::File::from(w);
            if unshared.is_ok() {
                let _ = w.write_all(&[1]);
            }
            drop(w);
            let status = loop {
                match waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other,
                }
            };
            unshared.map_err(|e| Error::nix("unshare(user)", e))?;
            if !matches!(status, Ok(WaitStatus::Exited(_, 0))) {
                return Err(Error::Confine(format!(
                    "writing the user namespace's id maps failed: {status:?}"
                )));
            }
        }
    }
    let root_gid = Gid::from_raw(0);
    let root_uid = Uid::from_raw(0);
    setgroups(&[]).map_err(|e| Error::nix("setgroups", e))?;
    setresgid(root_gid, root_gid, root_gid).map_err(|e| Error::nix("setresgid", e))?;
    setresuid(root_uid, root_uid, root_uid).map_err(|e| Error::nix("setresuid", e))?;
    // Changing credentials cleared these. Dumpable: the ptrace platform's stubs inherit it
    // and must stay traceable by the Sentry, which will hold no capability at all.
    nix::sys::prctl::set_dumpable(true).map_err(|e| Error::nix("PR_SET_DUMPABLE", e))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| Error::nix("PR_SET_PDEATHSIG", e))?;
    Ok(())
}

/// Maps uid and gid 0 of the user namespace of process `pid` to [`SANDBOX_HOST_ID`].
fn write_id_maps(pid: &Path) -> std::io::Result<()> {
    let proc = Path::new("/proc").join(pid);
    let map = format!("0 {SANDBOX_HOST_ID} 1\n");
    std::fs::write(proc.join("uid_map"), &map)?;
    std::fs::write(proc.join("gid_map"), &map)
}

/// Existing host directory used as the mount point of the new root before `pivot_root`
/// (inside our private mount namespace; the host never sees the mount).
const NEW_ROOT_MOUNT_POINT: &str = "/proc";

/// Gives the calling process new mount, IPC, UTS and (unless `host_network`) network
/// namespaces and makes every mount private, so nothing we mount or unmount propagates to
/// the host. With `--network=host` the process stays in the host's network namespace:
/// the host sockets it makes for the application must be the host's.
pub fn unshare_namespaces(host_network: bool) -> Result<(), Error> {
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    if !host_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| Error::nix("unshare(mount, ipc, uts, net)", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| Error::nix("make / private", e))?;
    Ok(())
}

/// The number of threads of the calling process (reads `/proc`, so call it before
/// [`pivot_to_empty_root`]).
pub fn thread_count() -> Result<usize, Error> {
    let dir =
        std::fs::read_dir("/proc/self/task").map_err(|e| Error::host("read /proc/self/task", e))?;
    Ok(dir.count())
}

/// Makes an empty, read-only tmpfs the root and current directory, and detaches every
/// host mount. Afterwards no host path can be named by the process.
pub fn pivot_to_empty_root() -> Result<(), Error> {
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("rsentry-root"),
        NEW_ROOT_MOUNT_POINT,
        Some("tmpfs"),
        base,
        Some("size=4k,nr_inodes=2,mode=0555"),
    )
    .map_err(|e| Error::nix("mount empty tmpfs root", e))?;
    chdir(NEW_ROOT_MOUNT_POINT).map_err(|e| Error::nix("chdir new root", e))?;
    // pivot_root(".", ".") stacks the old root on top of the new one at "/"; unmounting
    // "." then detaches the old root with everything below it.
    pivot_root(".", ".").map_err(|e| Error::nix("pivot_root", e))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| Error::nix("detach old root", e))?;
    chdir("/").map_err(|e| Error::nix("chdir /", e))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        base | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| Error::nix("remount root read-only", e))?;
    let entries = std::fs::read_dir(Path::new("/"))
        .map_err(|e| Error::host("read new root", e))?
        .count();
    if entries != 0 {
        return Err(Error::Confine(format!(
            "new root is not empty ({entries} entries)"
        )));
    }
    Ok(())
}

/// Empties the bounding, ambient, inheritable, effective and permitted capability sets of
/// the calling thread (which must be the only one: capabilities are per thread, and
/// threads created later inherit the empty sets).
pub fn drop_capabilities() -> Result<(), Error> {
    let err = |set: &str, e: caps::errors::CapsError| {
        Error::Confine(format!("clear {set} capabilities: {e}"))
    };
    // The bounding set needs CAP_SETPCAP, so it goes first, while we still have it.
    caps::clear(None, CapSet::Bounding).map_err(|e| err("bounding", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| err("ambient", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| err("inheritable", e))?;
    caps::clear(None, CapSet::Effective).map_err(|e| err("effective", e))?;
    caps::clear(None, CapSet::Permitted).map_err(|e| err("permitted", e))?;
    let left = caps::read(None, CapSet::Permitted).map_err(|e| err("read permitted", e))?;
    if !left.is_empty() {
        return Err(Error::Confine(format!("capabilities left: {left:?}")));
    }
    Ok(())
}

/// Sets `PR_SET_NO_NEW_PRIVS`: no later `execve` can gain privileges (and seccomp may be
/// installed without `CAP_SYS_ADMIN`).
pub fn set_no_new_privs() -> Result<(), Error> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| Error::nix("PR_SET_NO_NEW_PRIVS", e))
}
