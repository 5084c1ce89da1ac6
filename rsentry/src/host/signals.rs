//! Signal handlers of the sandbox process.
//!
//! - `SIGSYS` (a call outside the seccomp allowlist): prints
//!   `runsc: sandbox: seccomp denied syscall N (name)` and exits with status 125. The call
//!   itself never ran.
//! - `SIGTERM`, `SIGHUP`, `SIGINT`: exit with 128+N. As the init of its PID namespace the
//!   sandbox process would otherwise ignore them; `runsc do` forwards `SIGTERM`/`SIGHUP` to
//!   it. The Sentry may install handlers of its own later (forwarding to the application).
//!
//! Handlers only call async-signal-safe system calls (`write`, `exit_group`) and format
//! into a stack buffer.

use crate::error::EXIT_RUNTIME_ERROR;

/// Byte offset of `si_syscall` in `siginfo_t` for `SIGSYS` on x86-64 (after `si_signo`,
/// `si_errno`, `si_code`, padding and `si_call_addr`).
const SI_SYSCALL_OFFSET: usize = 24;

/// Installs the handlers described in the module comment.
pub fn install() -> std::io::Result<()> {
    set_handler(libc::SIGSYS, on_sigsys)?;
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        set_handler(sig, on_terminate)?;
    }
    Ok(())
}

/// An `SA_SIGINFO` signal handler.
type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);

fn set_handler(sig: libc::c_int, handler: Handler) -> std::io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value to fill in.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as *const () as libc::sighandler_t;
    sa.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `sa.sa_mask` is a valid sigset_t owned by us.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: `sa` is fully initialised and the handler has the SA_SIGINFO signature and
    // only calls async-signal-safe functions.
    if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Appends `s` to `buf` at `*len`, truncating at the end of `buf`.
fn push(buf: &mut [u8], len: &mut usize, s: &[u8]) {
    for &b in s {
        if *len < buf.len() {
            buf[*len] = b;
            *len += 1;
        }
    }
}

/// Appends the decimal form of `n`.
fn push_num(buf: &mut [u8], len: &mut usize, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push(buf, len, &digits[i..]);
}

/// Formats the message for a denied syscall `nr`.
fn denied_message(buf: &mut [u8], nr: u64) -> usize {
    let mut len = 0;
    push(buf, &mut len, b"runsc: sandbox: seccomp denied syscall ");
    push_num(buf, &mut len, nr);
    if let Some(name) = linux_abi::sysno::syscall_name(nr) {
        push(buf, &mut len, b" (");
        push(buf, &mut len, name.as_bytes());
        push(buf, &mut len, b")");
    }
    push(buf, &mut len, b"\n");
    len
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let nr = if info.is_null() {
        u64::MAX
    } else {
        // SAFETY: for SIGSYS the kernel fills `_sigsys` in the siginfo it passes; the
        // 4-byte `si_syscall` lies at SI_SYSCALL_OFFSET inside the 128-byte structure.
        let raw = unsafe {
            info.cast::<u8>()
                .add(SI_SYSCALL_OFFSET)
                .cast::<i32>()
                .read_unaligned()
        };
        raw as u32 as u64
    };
    let mut buf = [0u8; 128];
    let len = denied_message(&mut buf, nr);
    // SAFETY: write and exit_group are async-signal-safe; `buf[..len]` is initialised.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::syscall(libc::SYS_exit_group, EXIT_RUNTIME_ERROR);
    }
}

extern "C" fn on_terminate(sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: exit_group is async-signal-safe.
    unsafe {
        libc::syscall(libc::SYS_exit_group, 128 + sig);
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_call() {
        let mut buf = [0u8; 128];
        let n = denied_message(&mut buf, 257);
        assert_eq!(
            &buf[..n],
            b"runsc: sandbox: seccomp denied syscall 257 (openat)\n"
        );
        let n = denied_message(&mut buf, 99999);
        assert_eq!(&buf[..n], b"runsc: sandbox: seccomp denied syscall 99999\n");
    }
}

/// The signals a terminal sends its foreground process group (`^C`, `^\\`, `^Z`, and
/// `SIGWINCH` on a resize): the sandbox process hands them to the Sentry, which sends
/// them to the foreground group of the sandbox's own terminal.
pub const CONSOLE_SIGNALS: [i32; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGWINCH];

/// The signal set of `signals`.
fn sigset_of(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset to initialise.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is valid, writable storage; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Blocks `signals` in the calling thread (the old mask is not needed).
fn block(signals: &[i32]) -> std::io::Result<()> {
    let set = sigset_of(signals);
    // SAFETY: `set` is an initialised sigset_t; the old mask is not needed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Blocks [`CONSOLE_SIGNALS`] in the calling thread, before the sandbox process has any
/// other: every thread it creates inherits the mask, so no Sentry thread is interrupted
/// by them; [`forward_console_signals`] takes them from the pending set.
pub fn block_console_signals() -> std::io::Result<()> {
    block(&CONSOLE_SIGNALS)
}

/// Starts a thread that waits for [`CONSOLE_SIGNALS`] (blocked by
/// [`block_console_signals`]) and writes each one's number, as one byte, into `w` (a
/// pipe whose read end the Sentry's `Kernel::forward_console_signals` reads; made before
/// the seccomp filter, which has no `pipe2`).
pub fn forward_console_signals(mut w: std::io::PipeWriter) -> std::io::Result<()> {
    use std::io::Write;
    std::thread::Builder::new()
        .name("host-console-signals".into())
        .spawn(move || {
            let set = sigset_of(&CONSOLE_SIGNALS);
            loop {
                // SAFETY: an all-zero siginfo_t is valid storage for the kernel to fill.
                let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
                // SAFETY: `set` is initialised and `info` is writable storage of its type.
                let signo = unsafe { libc::sigwaitinfo(&set, &mut info) };
                if signo < 0 {
                    if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                        continue;
                    }
                    return;
                }
                if w.write_all(&[signo as u8]).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// A signal `runsc do` received while waiting for the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The signal number.
    pub signo: i32,
    /// Whether a process sent it (`kill`, `sigqueue`), as opposed to the kernel (a
    /// terminal's Ctrl-C, which already reached the sandbox in the same process group).
    pub from_process: bool,
}

/// The signals `runsc do` handles synchronously while it waits for the sandbox. The
/// keyboard's `SIGTSTP` and `SIGWINCH` are among them: they are for the application (the
/// sandbox process takes them from the terminal itself), so a monitor neither stops nor
/// acts on them.
pub const WAITED_SIGNALS: [i32; 7] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTSTP,
    libc::SIGWINCH,
];

/// Blocks [`WAITED_SIGNALS`] in the calling thread, so they stay pending until
/// [`wait_signal`] takes them. The mask is inherited across fork and exec: `child` empties
/// it again in every child it starts.
pub fn block_waited() -> std::io::Result<()> {
    block(&WAITED_SIGNALS)
}

/// Like [`wait_signal`], giving up after `timeout` (`None` then).
pub fn wait_signal_timeout(timeout: std::time::Duration) -> std::io::Result<Option<Received>> {
    let set = sigset_of(&WAITED_SIGNALS);
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: an all-zero siginfo_t is valid storage for the kernel to fill.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` and `ts` are initialised, `info` is writable storage of the right type.
    let signo = unsafe { libc::sigtimedwait(&set, &mut info, &ts) };
    if signo < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(Received {
        signo,
        from_process: info.si_code <= 0,
    }))
}

/// Waits for one of [`WAITED_SIGNALS`] (which must be blocked).
pub fn wait_signal() -> std::io::Result<Received> {
    let set = sigset_of(&WAITED_SIGNALS);
    loop {
        // SAFETY: an all-zero siginfo_t is valid storage for the kernel to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is initialised and `info` is writable storage of the right type.
        let signo = unsafe { libc::sigwaitinfo(&set, &mut info) };
        if signo < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(Received {
            signo,
            from_process: info.si_code <= 0,
        });
    }
}
