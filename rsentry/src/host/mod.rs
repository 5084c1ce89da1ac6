//! Every host call of the crate that Rust cannot check: raw descriptors, code run between
//! `fork` and `exec`, signal handlers, and leaving a process at once. Each block says why
//! it is sound; the rest of the crate is safe Rust (`#![deny(unsafe_code)]`).
#![allow(unsafe_code)]

pub mod signals;

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A close-on-exec duplicate of descriptor `n` numbered `min` or above.
pub fn dup_cloexec(n: RawFd, min: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads the descriptor table; an invalid `n` gives EBADF
    // and creates nothing.
    let raw = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, min) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` was just created by F_DUPFD_CLOEXEC and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Whether descriptor `n` is open.
pub fn fd_is_open(n: RawFd) -> bool {
    // SAFETY: F_GETFD only inspects the descriptor table; an invalid number gives EBADF.
    unsafe { libc::fcntl(n, libc::F_GETFD) >= 0 }
}

/// Takes ownership of descriptor `n`, which our parent handed down for this process's
/// exclusive use (named on the command line or in the role's settings). Only
/// `child::take_inherited_fd` calls this, once per number, after checking it is open.
pub fn own_inherited_fd(n: RawFd) -> OwnedFd {
    // SAFETY: see above: the number is open, and no other owner exists in this process.
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// Makes `cmd`'s child, between `fork` and `exec`: unblock every signal, ask for `SIGKILL`
/// when its parent dies (`die_with_parent`), lead a new session with its stdin terminal
/// as the controlling one (`terminal_session`), `dup2` each `(source, target)` pair, and
/// mark every descriptor from `first_free` upwards close-on-exec.
pub fn child_setup(
    cmd: &mut Command,
    pairs: Vec<(RawFd, RawFd)>,
    first_free: RawFd,
    die_with_parent: bool,
    terminal_session: bool,
) {
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (sigemptyset, sigprocmask, prctl, setsid, ioctl with an
    // integer argument, dup2, close_range) on
    // plain integers and a stack sigset; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            // The monitor blocks the signals it waits for; the child starts with none
            // blocked.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            if libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if die_with_parent && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A session of its own whose controlling terminal is its stdin: the keys typed
            // into that terminal become signals for it.
            if terminal_session && (libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0) {
                return Err(std::io::Error::last_os_error());
            }
            for &(src, dst) in &pairs {
                if libc::dup2(src, dst) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // Anything else the caller leaked to us must not reach the child.
            let rc = libc::syscall(
                libc::SYS_close_range,
                first_free as libc::c_uint,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Forks a helper process that closes the descriptors `close`, runs `f` and exits with 0
/// when it returns true, 1 when not. The calling process must have a single thread
/// (checked by the caller), so the child cannot inherit a lock some other thread held.
pub fn fork_helper(close: &[RawFd], f: impl FnOnce() -> bool) -> nix::Result<nix::unistd::Pid> {
    // SAFETY: single-threaded caller (see above); the child runs `f`, which does plain
    // file I/O, and leaves with _exit without running the parent's destructors.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            for &fd in close {
                // SAFETY: the child's copies of descriptors its parent keeps; nothing in
                // the child uses them.
                unsafe { libc::close(fd) };
            }
            let ok = f();
            // SAFETY: _exit ends the forked child at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => Ok(child),
    }
}

/// Ignores signal `sig` in this process.
pub fn ignore_signal(sig: nix::sys::signal::Signal) -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no handler code.
    unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn) }.map(|_| ())
}

/// Writes `line` to standard error with one `write(2)` (no lock) and ends the process
/// with `code` at once: no unwinding, no destructor, no other thread keeps running.
pub fn write_and_exit(line: &[u8], code: i32) -> ! {
    // SAFETY: write(2) from a buffer we own; exit_group ends every thread of the process
    // and never returns.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::syscall(libc::SYS_exit_group, code);
    }
    // exit_group does not return; should the impossible happen, abort.
    std::process::abort()
}

/// The index of interface `name` in the calling thread's network namespace.
pub fn if_index(name: &std::ffi::CStr) -> std::io::Result<u32> {
    // SAFETY: `name` is a valid NUL-terminated string; if_nametoindex only reads it.
    let i = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if i == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(i)
}

/// A raw `AF_PACKET` socket (every protocol, close-on-exec) bound to interface `ifindex`
/// of the calling thread's network namespace: the Sentry's Ethernet link.
pub fn packet_socket(ifindex: u32) -> std::io::Result<OwnedFd> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket takes integers only.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a new descriptor from the kernel, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind reads `size_of::<sockaddr_ll>()` bytes of `sll`, which is valid.
    let r = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}
