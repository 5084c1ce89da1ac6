//! The seccomp policy of the sandbox (Sentry) process, installed last, on every thread.
//!
//! Three filters are stacked (the kernel applies the most restrictive answer):
//! 1. `clone3` fails with `ENOSYS`: its flags live in memory, where seccomp cannot see them,
//!    so glibc falls back to `clone`, whose flags the allowlist checks.
//! 2. `open`, `openat`, `openat2` and `creat` fail with `EACCES` and never reach the kernel:
//!    the Sentry opens no host path (files come from the Gofer as donated descriptors), but
//!    library code that *tries* (Rust's `available_parallelism` reading cgroup files, a
//!    best-effort read of `/proc/meminfo`) gets an error instead of killing the sandbox.
//! 3. The allowlist ([`allowlist`]); anything else raises `SIGSYS` without running, and the
//!    handler in `signals` prints the call's name and exits with status 125. The calls of
//!    filters 1 and 2 pass this one, so that their errno is the answer.
//!
//! The filters are inherited by every ptrace stub process the Sentry forks. Application
//! system calls never reach them (`PTRACE_SYSEMU` stops them before seccomp runs); the
//! stubs' own start-up and the calls the platform injects into them (mmap of the memory
//! file, munmap, clone, prctl) do, and are covered by the entries below.
//!
//! Never allowed: `open`, `openat`, `openat2`, `creat` (see above), `execve`, `execveat`,
//! `mount`, `unshare`, `setns`, `chroot`, `pivot_root`; and, except under
//! `--network=host` ([`host_network_allowlist`]), `socket`, `connect`, `bind`.

use std::collections::BTreeMap;

use platform::seccomp::{ArgCondition, ArgOp, ArgWidth, HostSyscall, HostSyscalls};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::config::Network;
use crate::config::Platform as PlatformKind;
use crate::error::Error;

/// One argument condition in seccompiler's terms.
fn condition(c: &ArgCondition) -> Result<SeccompCondition, Error> {
    let width = match c.width {
        ArgWidth::Dword => SeccompCmpArgLen::Dword,
        ArgWidth::Qword => SeccompCmpArgLen::Qword,
    };
    let (op, value) = match c.op {
        ArgOp::Eq(v) => (SeccompCmpOp::Eq, v),
        ArgOp::MaskedEq { mask, value } => (SeccompCmpOp::MaskedEq(mask), value),
    };
    SeccompCondition::new(c.index, width, op, value)
        .map_err(|e| Error::Confine(format!("seccomp condition: {e}")))
}

/// The alternatives of one entry in seccompiler's terms (empty: any arguments).
fn rules(when: &[Vec<ArgCondition>]) -> Result<Vec<SeccompRule>, Error> {
    when.iter()
        .map(|alt| {
            let conds = alt.iter().map(condition).collect::<Result<Vec<_>, _>>()?;
            SeccompRule::new(conds).map_err(|e| Error::Confine(format!("seccomp rule: {e}")))
        })
        .collect()
}

/// The filter of a sandbox on `platform`: the base list ([`base_allowlist`]) plus the
/// platform's own list, merged number by number ([`platform::seccomp::merge`]).
pub fn allowlist(kind: PlatformKind) -> HostSyscalls {
    let mut list = base_allowlist();
    list.extend(match kind {
        PlatformKind::Ptrace => platform_ptrace::seccomp::host_syscalls(),
        PlatformKind::Kvm => platform_kvm::seccomp::host_syscalls(),
        PlatformKind::Systrap => platform_systrap::seccomp::host_syscalls(),
    });
    list
}

/// What `--network=host` adds: the host socket calls the Sentry makes for the
/// application's `AF_INET`/`AF_INET6` sockets (`sentry/src/host/net.rs`). Sockets are
/// created only as `AF_INET`/`AF_INET6` streams or datagrams, non-blocking and
/// close-on-exec; the other calls act on descriptors the Sentry owns.
pub fn host_network_allowlist() -> HostSyscalls {
    use libc::*;
    let any = Vec::<Vec<ArgCondition>>::new;
    let e = |nr: c_long, when: Vec<Vec<ArgCondition>>, reason: &'static str| HostSyscall {
        nr,
        when,
        reason,
    };
    let flags = (SOCK_NONBLOCK | SOCK_CLOEXEC) as u64;
    let mut socket = Vec::new();
    for family in [AF_INET, AF_INET6] {
        for ty in [SOCK_STREAM, SOCK_DGRAM] {
            socket.push(vec![
                ArgCondition::eq(0, family as u64),
                ArgCondition::eq(1, ty as u64 | flags),
            ]);
        }
    }
    const SIOCOUTQNSD: u64 = 0x894b;
    vec![
        e(
            SYS_socket,
            socket,
            "host network: the application's inet sockets (TCP/UDP only)",
        ),
        e(SYS_bind, any(), "host network: bind"),
        e(SYS_listen, any(), "host network: listen"),
        e(
            SYS_accept4,
            vec![vec![ArgCondition::eq(3, flags)]],
            "host network: accept, non-blocking and close-on-exec",
        ),
        e(SYS_connect, any(), "host network: connect"),
        e(SYS_sendto, any(), "host network: send"),
        e(SYS_recvfrom, any(), "host network: receive"),
        e(SYS_getsockname, any(), "host network: getsockname"),
        e(SYS_getpeername, any(), "host network: getpeername"),
        e(SYS_setsockopt, any(), "host network: allowlisted options"),
        e(SYS_getsockopt, any(), "host network: allowlisted options"),
        e(
            SYS_ioctl,
            vec![
                vec![ArgCondition::eq(1, TIOCOUTQ)],
                vec![ArgCondition::eq(1, SIOCOUTQNSD)],
            ],
            "host network: SIOCOUTQ, SIOCOUTQNSD",
        ),
        e(SYS_ppoll, any(), "host network: readiness of a host socket"),
        e(
            SYS_epoll_create1,
            any(),
            "host network: the notifier's epoll instance",
        ),
        e(SYS_epoll_ctl, any(), "host network: watch host sockets"),
        e(SYS_epoll_wait, any(), "host network: the notifier waits"),
        e(SYS_epoll_pwait, any(), "host network: the notifier waits"),
    ]
}

/// Namespace-creating `clone` flags.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u64;

/// What every Sentry needs whatever its platform, with a reason for each entry.
pub fn base_allowlist() -> HostSyscalls {
    use libc::*;
    let any = Vec::<Vec<ArgCondition>>::new;
    let e = |nr: c_long, when: Vec<Vec<ArgCondition>>, reason: &'static str| HostSyscall {
        nr,
        when,
        reason,
    };
    let one_of = |arg: u8, values: &[u64]| -> Vec<Vec<ArgCondition>> {
        values
            .iter()
            .map(|&v| vec![ArgCondition::eq(arg, v)])
            .collect()
    };
    vec![
        // I/O on descriptors the Sentry already holds.
        e(
            SYS_read,
            any(),
            "host fds: stdio passed through, gofer-donated files, pipes",
        ),
        e(
            SYS_write,
            any(),
            "host fds: stdio passed through, gofer-donated files, logs",
        ),
        e(SYS_readv, any(), "vectored read on host fds"),
        e(
            SYS_writev,
            any(),
            "vectored write on host fds (also the tracing writer)",
        ),
        e(SYS_pread64, any(), "positional read of gofer-donated files"),
        e(
            SYS_pwrite64,
            any(),
            "positional write of gofer-donated files",
        ),
        e(
            SYS_preadv,
            any(),
            "vectored positional read of gofer-donated files",
        ),
        e(
            SYS_pwritev,
            any(),
            "vectored positional write of gofer-donated files",
        ),
        e(SYS_lseek, any(), "seek on host fds"),
        e(
            SYS_fsync,
            any(),
            "fsync/fdatasync of passed-through stdio (a host file for `runsc do ... > file`)",
        ),
        e(SYS_close, any(), "close host fds the Sentry owns"),
        e(
            SYS_fstat,
            any(),
            "stat an fd the Sentry holds (donated file, stdio)",
        ),
        e(
            SYS_newfstatat,
            one_of(3, &[AT_EMPTY_PATH as u64]),
            "glibc's fstat(); only with AT_EMPTY_PATH, i.e. on an fd, never a path",
        ),
        e(
            SYS_statx,
            vec![vec![ArgCondition::masked_eq(
                2,
                AT_EMPTY_PATH as u64,
                AT_EMPTY_PATH as u64,
            )]],
            "Rust's File::metadata on held fds; only with AT_EMPTY_PATH, never a path",
        ),
        e(
            SYS_fcntl,
            one_of(
                1,
                &[
                    F_DUPFD as u64,
                    F_GETFD as u64,
                    F_SETFD as u64,
                    F_GETFL as u64,
                    F_SETFL as u64,
                    F_DUPFD_CLOEXEC as u64,
                    F_ADD_SEALS as u64,
                    F_GET_SEALS as u64,
                ],
            ),
            "fd flags, duplicates (the ptrace master stub moves the memfd), memfd seals",
        ),
        e(
            SYS_ioctl,
            one_of(
                1,
                &[
                    TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCGWINSZ, TIOCSWINSZ, TIOCOUTQ, TCFLSH,
                    TCXONC, TCSBRK, FIONREAD, FIONBIO, FIOCLEX, FIONCLEX,
                ],
            ),
            "terminal ioctls on passed-through stdio",
        ),
        // The Gofer channel.
        e(
            SYS_sendmsg,
            any(),
            "lisafs requests to the Gofer on the inherited socket",
        ),
        e(
            SYS_shutdown,
            any(),
            "lisafs client hangs up the Gofer channel (wakes its reader thread)",
        ),
        e(
            SYS_recvmsg,
            any(),
            "lisafs replies and donated fds (SCM_RIGHTS) from the Gofer",
        ),
        // Memory.
        e(
            SYS_mmap,
            any(),
            "Sentry heap and stacks, the memory file; also injected into ptrace stubs to map application memory (which may be executable)",
        ),
        e(
            SYS_munmap,
            any(),
            "Sentry heap; injected into ptrace stubs to unmap application memory",
        ),
        e(
            SYS_mprotect,
            any(),
            "Sentry heap and thread guard pages; injected into ptrace stubs",
        ),
        e(
            SYS_mremap,
            any(),
            "Sentry heap growth (realloc of large buffers)",
        ),
        e(
            SYS_madvise,
            any(),
            "Sentry allocator returning memory; MADV_DONTNEED on the memory file",
        ),
        e(SYS_brk, any(), "Sentry heap"),
        e(
            SYS_memfd_create,
            any(),
            "the memory file holding application memory",
        ),
        e(SYS_ftruncate, any(), "growing the memory file"),
        e(
            SYS_fallocate,
            any(),
            "punching freed ranges out of the memory file",
        ),
        // Threads, signals, time.
        e(
            SYS_clone,
            vec![vec![ArgCondition::masked_eq(
                0,
                CLONE_NAMESPACE_FLAGS | CLONE_THREAD as u64,
                CLONE_THREAD as u64,
            )]],
            "Sentry task threads; never new namespaces (processes: see the platform's list)",
        ),
        e(SYS_set_robust_list, any(), "glibc thread start"),
        e(
            SYS_rseq,
            any(),
            "glibc thread start registers restartable sequences",
        ),
        e(
            SYS_futex,
            any(),
            "mutexes, condition variables, thread join",
        ),
        e(SYS_sched_yield, any(), "spin-then-yield locks"),
        e(
            SYS_sched_getaffinity,
            any(),
            "CPU placement of tracer/stub pairs",
        ),
        e(SYS_exit, any(), "thread exit"),
        e(
            SYS_exit_group,
            any(),
            "Sentry exit with the application's status",
        ),
        e(
            SYS_rt_sigaction,
            any(),
            "Sentry signal handlers (SIGSYS reporter, std's stack overflow handler)",
        ),
        e(SYS_rt_sigprocmask, any(), "signal masks of Sentry threads"),
        e(
            SYS_ppoll,
            any(),
            "a blocking read of a host terminal, pipe or socket waits in slices",
        ),
        e(
            SYS_rt_sigtimedwait,
            any(),
            "the console-signal thread takes the terminal's signals",
        ),
        e(
            SYS_rt_sigreturn,
            any(),
            "return from a Sentry signal handler",
        ),
        e(
            SYS_sigaltstack,
            any(),
            "std's per-thread alternate signal stack",
        ),
        e(
            SYS_restart_syscall,
            any(),
            "restart of an interrupted sleep",
        ),
        e(
            SYS_gettid,
            any(),
            "thread identity for context ownership and logs",
        ),
        e(SYS_getpid, any(), "process identity for logs"),
        e(
            SYS_tgkill,
            any(),
            "Context::interrupt: kick a stub thread or a vCPU thread",
        ),
        e(SYS_tkill, any(), "Context::interrupt on older paths"),
        e(
            SYS_prctl,
            one_of(0, &[PR_SET_NAME as u64, PR_GET_NAME as u64]),
            "thread names",
        ),
        e(
            SYS_clock_gettime,
            any(),
            "time for the application and timers (vDSO fallback)",
        ),
        e(SYS_clock_getres, any(), "clock_getres for the application"),
        e(SYS_gettimeofday, any(), "vDSO fallback"),
        e(
            SYS_clock_nanosleep,
            any(),
            "application sleeps and timeouts",
        ),
        e(SYS_nanosleep, any(), "application sleeps and timeouts"),
        e(
            SYS_sysinfo,
            any(),
            "host memory totals for the application's sysinfo and /proc/meminfo",
        ),
        e(
            SYS_getcpu,
            any(),
            "vDSO fallback of sched_getcpu (CPU placement)",
        ),
        e(
            SYS_getrandom,
            any(),
            "AT_RANDOM, getrandom and /dev/urandom for the application; hash seeds",
        ),
    ]
}

/// Calls answered with an error by a filter of their own, never run: number, errno, why.
pub fn errno_list() -> Vec<(i64, i32, &'static str)> {
    use libc::*;
    let no_host_paths = "the Sentry opens no host path; attempts fail instead of killing it";
    vec![
        (
            SYS_clone3,
            ENOSYS,
            "flags in memory, unverifiable: glibc falls back to clone",
        ),
        (SYS_open, EACCES, no_host_paths),
        (SYS_openat, EACCES, no_host_paths),
        (SYS_openat2, EACCES, no_host_paths),
        (SYS_creat, EACCES, no_host_paths),
    ]
}

/// Builds the BPF programs, in installation order: one filter per errno of
/// [`errno_list`], then the allowlist (with [`host_network_allowlist`] under
/// `--network=host`).
pub fn build(kind: PlatformKind, network: Network) -> Result<Vec<BpfProgram>, Error> {
    let arch = TargetArch::x86_64;
    let compile = |rules: BTreeMap<i64, Vec<SeccompRule>>, mismatch, matched| {
        let filter = SeccompFilter::new(rules, mismatch, matched, arch)
            .map_err(|e| Error::Confine(format!("seccomp filter: {e}")))?;
        BpfProgram::try_from(filter).map_err(|e| Error::Confine(format!("seccomp compile: {e}")))
    };
    let mut by_errno: BTreeMap<i32, BTreeMap<i64, Vec<SeccompRule>>> = BTreeMap::new();
    for (nr, errno, _) in errno_list() {
        by_errno.entry(errno).or_default().insert(nr, Vec::new());
    }
    let mut progs = Vec::new();
    for (errno, rules) in by_errno {
        progs.push(compile(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
        )?);
    }
    let base = base_allowlist();
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = base.iter().find(|e| !seen.insert(e.nr)) {
        return Err(Error::Confine(format!(
            "syscall {} listed twice in the base list",
            dup.nr
        )));
    }
    let platform_list = allowlist(kind).split_off(base.len());
    let net_list = match network {
        Network::Host => host_network_allowlist(),
        _ => Vec::new(),
    };
    let mut rules = BTreeMap::new();
    for m in platform::seccomp::merge(&[&base, &platform_list, &net_list]) {
        tracing::trace!(nr = m.nr, reasons = ?m.reasons, "seccomp allow");
        rules.insert(m.nr, self::rules(&m.when)?);
    }
    for (nr, _, _) in errno_list() {
        if rules.insert(nr, Vec::new()).is_some() {
            return Err(Error::Confine(format!(
                "syscall {nr} both allowed and refused"
            )));
        }
    }
    progs.push(compile(rules, SeccompAction::Trap, SeccompAction::Allow)?);
    Ok(progs)
}

/// Installs the filters on every thread of the process (TSYNC). Must be the last step of
/// confinement.
pub fn install(kind: PlatformKind, network: Network) -> Result<(), Error> {
    for prog in build(kind, network)? {
        seccompiler::apply_filter_all_threads(&prog)
            .map_err(|e| Error::Confine(format!("install seccomp filter: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_a_reason_and_dangerous_calls_are_absent() {
        for kind in [
            PlatformKind::Ptrace,
            PlatformKind::Kvm,
            PlatformKind::Systrap,
        ] {
            every_entry_has_a_reason_and_dangerous_calls_are_absent_on(kind);
        }
    }

    fn every_entry_has_a_reason_and_dangerous_calls_are_absent_on(kind: PlatformKind) {
        let list = allowlist(kind);
        assert!(list.iter().all(|e| !e.reason.is_empty()));
        for nr in [
            libc::SYS_open,
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_creat,
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_mount,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_chroot,
            libc::SYS_pivot_root,
        ] {
            assert!(
                list.iter().all(|e| e.nr != nr),
                "syscall {nr} must not be allowed"
            );
        }
    }

    /// Forks a child that installs the filters and runs `body`; returns its wait status.
    fn in_filtered_child(body: fn() -> i32) -> i32 {
        in_filtered_child_on(PlatformKind::Ptrace, body)
    }

    /// The same with the filter of a sandbox on `kind`.
    fn in_filtered_child_on(kind: PlatformKind, body: impl FnOnce() -> i32) -> i32 {
        in_filtered_child_net(kind, Network::None, body)
    }

    /// The same with the filter of a sandbox on `kind` with `network`.
    fn in_filtered_child_net(
        kind: PlatformKind,
        network: Network,
        body: impl FnOnce() -> i32,
    ) -> i32 {
        let progs = build(kind, network).expect("build");
        // SAFETY: the child only makes raw system calls (prctl, seccomp, the body's calls)
        // and leaves with _exit; it touches no lock the parent's threads could hold.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            for p in &progs {
                if seccompiler::apply_filter(p).is_err() {
                    // SAFETY: _exit is always safe to call.
                    unsafe { libc::_exit(100) };
                }
            }
            let code = body();
            // SAFETY: as above.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer; `pid` is our child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        status
    }

    #[test]
    fn allows_fd_duplication_refuses_open_and_traps_the_rest() {
        let status = in_filtered_child(|| {
            // SAFETY: plain descriptor calls on stdin's number.
            unsafe {
                let a = libc::syscall(libc::SYS_fcntl, 0, libc::F_DUPFD, 5);
                let b = libc::syscall(libc::SYS_fcntl, 0, libc::F_DUPFD, 5);
                if a < 0 || b < 0 { 1 } else { 0 }
            }
        });
        assert_eq!(
            status, 0,
            "fcntl(F_DUPFD) twice under the filter: status {status:#x}"
        );
        let status = in_filtered_child(|| {
            // SAFETY: openat with a static NUL-terminated path.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    c"/".as_ptr(),
                    libc::O_RDONLY,
                )
            };
            // SAFETY: reads the calling thread's errno.
            let e = unsafe { *libc::__errno_location() };
            if r == -1 && e == libc::EACCES { 0 } else { 1 }
        });
        assert_eq!(
            status, 0,
            "openat must fail with EACCES: status {status:#x}"
        );
        let status = in_filtered_child(|| {
            // SAFETY: socket(2) with integer arguments.
            unsafe { libc::syscall(libc::SYS_socket, libc::AF_INET, libc::SOCK_STREAM, 0) };
            0
        });
        assert!(
            libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
            "socket must raise SIGSYS: status {status:#x}"
        );
    }

    /// `socket(AF_INET, SOCK_STREAM | NONBLOCK | CLOEXEC)`: 0 if it succeeded.
    fn inet_socket_call() -> i32 {
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket(2) with integer arguments.
        let fd = unsafe { libc::syscall(libc::SYS_socket, libc::AF_INET, ty, 0) };
        if fd >= 0 { 0 } else { 1 }
    }

    #[test]
    fn only_the_host_network_filter_makes_inet_sockets() {
        for kind in [PlatformKind::Ptrace, PlatformKind::Systrap] {
            let status = in_filtered_child_net(kind, Network::None, inet_socket_call);
            assert!(killed_by_sigsys(status), "{kind:?}, none: {status:#x}");
            let status = in_filtered_child_net(kind, Network::Host, inet_socket_call);
            assert_eq!(status, 0, "{kind:?}, host: {status:#x}");
            // Only TCP/UDP over IPv4/IPv6, non-blocking and close-on-exec.
            for (family, ty) in [
                (
                    libc::AF_UNIX,
                    libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                ),
                (
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                ),
                (
                    libc::AF_INET,
                    libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                ),
                (libc::AF_INET, libc::SOCK_STREAM),
            ] {
                let status = in_filtered_child_net(kind, Network::Host, || {
                    // SAFETY: socket(2) with integer arguments.
                    unsafe { libc::syscall(libc::SYS_socket, family, ty, 0) };
                    0
                });
                assert!(
                    killed_by_sigsys(status),
                    "{kind:?}, host: socket({family}, {ty:#x}) allowed: {status:#x}"
                );
            }
        }
    }

    /// Application memory for the ioctl walk: a plain buffer.
    struct Buf(std::cell::RefCell<Vec<u8>>);

    impl sentry::fs::UserMem for Buf {
        fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), linux_abi::Errno> {
            let b = self.0.borrow();
            let a = addr as usize;
            buf.copy_from_slice(b.get(a..a + buf.len()).ok_or(linux_abi::Errno::EFAULT)?);
            Ok(())
        }
        fn copy_out(&self, addr: u64, buf: &[u8]) -> Result<(), linux_abi::Errno> {
            let mut b = self.0.borrow_mut();
            let a = addr as usize;
            b.get_mut(a..a + buf.len())
                .ok_or(linux_abi::Errno::EFAULT)?
                .copy_from_slice(buf);
            Ok(())
        }
    }

    /// Every operation a passed-through host file (the stdio given to `runsc`) offers the
    /// application, on every kind of host descriptor, under each platform's real Sentry
    /// filter: each may fail with an errno, none may make a host call the filter refuses
    /// (which kills the sandbox). `fsync` on stdout did, before it was in the filter.
    #[test]
    fn host_file_operations_pass_the_sentry_filter() {
        use sentry::fs::{Caller, Terminals, host_fd_file};
        use std::os::fd::OwnedFd;
        let dir = tempfile::tempdir().unwrap();
        let reg = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("out"))
            .unwrap();
        let (pr, pw) = std::io::pipe().unwrap();
        let (s1, _s2) = std::os::unix::net::UnixStream::pair().unwrap();
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .unwrap();
        // Reads must not wait for data that never comes: the empty pipe and socket are
        // non-blocking.
        s1.set_nonblocking(true).unwrap();
        let pr = OwnedFd::from(pr);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&pr);
        // SAFETY: fcntl on a descriptor we own, integer arguments only.
        let r = unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
        assert_eq!(r, 0);
        // A pseudo-terminal's replica, as a container with `terminal: true` gets.
        let pty = nix::pty::openpty(None, None).unwrap();
        // Non-blocking, as the pipe and socket: no read may wait for typing.
        nix::fcntl::fcntl(
            &pty.slave,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let terminals = Terminals::default();
        let files = [
            ("terminal", host_fd_file(pty.slave, &terminals)),
            ("regular file", host_fd_file(OwnedFd::from(reg), &terminals)),
            ("pipe read end", host_fd_file(pr, &terminals)),
            (
                "pipe write end",
                host_fd_file(OwnedFd::from(pw), &terminals),
            ),
            ("unix socket", host_fd_file(OwnedFd::from(s1), &terminals)),
            ("/dev/null", host_fd_file(OwnedFd::from(null), &terminals)),
        ];
        for kind in [
            PlatformKind::Ptrace,
            PlatformKind::Kvm,
            PlatformKind::Systrap,
        ] {
            for (what, f) in &files {
                let status = in_filtered_child_on(kind, || {
                    let me = Caller { tgid: 1, tid: 1 };
                    let mem = Buf(std::cell::RefCell::new(vec![0u8; 256]));
                    let ops = f.ops();
                    let _ = f.write(&me, b"x");
                    let _ = ops.set_status_flags(libc::O_NONBLOCK as u32);
                    let _ = f.read(&me, &mut [0u8; 8]);
                    let _ = f.stat();
                    let _ = ops.fsync();
                    let _ = ops.readable();
                    let _ = ops.readiness(u32::MAX);
                    let _ = ops.stream_seek(0, 1);
                    let _ = ops.stream_seek(0, 2);
                    for cmd in [
                        libc::TCGETS,
                        libc::TCSETS,
                        libc::TIOCGWINSZ,
                        libc::TIOCSWINSZ,
                        libc::FIONREAD,
                        libc::TIOCOUTQ,
                        libc::TCFLSH,
                        libc::TCXONC,
                        libc::TCSBRK,
                        libc::TIOCGPGRP,
                        libc::TIOCSPGRP,
                    ] {
                        let _ = ops.ioctl(cmd as u32, 0, &mem);
                    }
                    0
                });
                assert_eq!(
                    status, 0,
                    "{what} on {kind:?}: a host call outside the filter (status {status:#x})"
                );
            }
        }
    }

    #[test]
    fn filters_compile() {
        for kind in [
            PlatformKind::Ptrace,
            PlatformKind::Kvm,
            PlatformKind::Systrap,
        ] {
            let progs = build(kind, Network::None).expect("build");
            assert_eq!(progs.len(), 3);
            let progs = build(kind, Network::Host).expect("build host");
            assert_eq!(progs.len(), 3);
            assert!(progs.iter().all(|p| !p.is_empty()));
        }
    }

    fn killed_by_sigsys(status: i32) -> bool {
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS
    }

    /// `ioctl(0, KVM_GET_API_VERSION)`: the call is made whatever fd 0 is; only the filter
    /// decides whether it reaches the kernel.
    fn kvm_ioctl() -> i32 {
        const KVM_GET_API_VERSION: u64 = 0xae00;
        // SAFETY: an ioctl without argument memory; on a non-KVM fd it fails with ENOTTY.
        unsafe { libc::syscall(libc::SYS_ioctl, 0, KVM_GET_API_VERSION, 0) };
        0
    }

    /// `ptrace(PTRACE_PEEKDATA, getppid(), 0)`: harmless if it ran (we are not the tracer).
    fn ptrace_call() -> i32 {
        // SAFETY: PEEKDATA on a process we do not trace fails with ESRCH; no memory written.
        unsafe {
            libc::syscall(
                libc::SYS_ptrace,
                libc::PTRACE_PEEKDATA,
                libc::getppid(),
                0,
                0,
            )
        };
        0
    }

    /// `clone(SIGCHLD)`, a new process (not a thread): the child exits at once.
    fn fork_call() -> i32 {
        // SAFETY: a raw fork; the child only calls _exit.
        let pid =
            unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
        if pid == 0 {
            // SAFETY: _exit is always safe.
            unsafe { libc::_exit(0) };
        }
        0
    }

    #[test]
    fn each_platform_gets_its_own_calls_and_not_the_others() {
        // ptrace: KVM ioctls are refused, its own calls pass.
        let status = in_filtered_child_on(PlatformKind::Ptrace, kvm_ioctl);
        assert!(
            killed_by_sigsys(status),
            "KVM ioctl under ptrace filter: {status:#x}"
        );
        let status = in_filtered_child_on(PlatformKind::Ptrace, ptrace_call);
        assert_eq!(status, 0, "ptrace under ptrace filter: {status:#x}");
        let status = in_filtered_child_on(PlatformKind::Ptrace, fork_call);
        assert_eq!(status, 0, "fork under ptrace filter: {status:#x}");
        // KVM: ptrace and forks are refused, KVM ioctls pass.
        let status = in_filtered_child_on(PlatformKind::Kvm, ptrace_call);
        assert!(
            killed_by_sigsys(status),
            "ptrace under KVM filter: {status:#x}"
        );
        let status = in_filtered_child_on(PlatformKind::Kvm, fork_call);
        assert!(
            killed_by_sigsys(status),
            "fork under KVM filter: {status:#x}"
        );
        let status = in_filtered_child_on(PlatformKind::Kvm, kvm_ioctl);
        assert_eq!(status, 0, "KVM ioctl under KVM filter: {status:#x}");
    }
}
