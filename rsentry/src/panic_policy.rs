//! What a panic does in any process of a sandbox (`runsc do` or the monitor, the Gofer,
//! the sandbox process): the process ends at
//! once, with one line on standard error and exit status 125.
//!
//! The hook runs in the panicking thread *before* any unwinding: it writes
//! `runsc: <role>: panic in thread <name> at <file>:<line>: <message>` with a single
//! `write(2)` (no lock, so a panic inside the logger cannot deadlock it) and calls
//! `exit_group(125)`. Nothing unwinds, no `catch_unwind` can swallow it, and no other thread
//! keeps running on state the panic left half-updated or keeps waiting for the thread
//! that panicked. What follows is the ordinary exit of that process:
//! - `boot`: it is PID 1 of the sandbox's PID namespace, so the kernel kills every stub
//!   process; the VM and its vCPU threads go with the process; `runsc do` sees status 125,
//!   kills and reaps the Gofer and exits with 125.
//! - `gofer`: the serving process exits 125, its parent passes that on, and `runsc do`
//!   ends the sandbox (SIGKILL) and exits with 125.
//! - `do`: its children die with it (`PR_SET_PDEATHSIG`).
//!
//! (`panic = "abort"` in the profiles would end the process the same way, but with
//! `SIGABRT` and a core dump instead of a line and 125, and it would make every test build
//! compile the workspace twice: cargo ignores the setting for test harnesses.)
//!
//! `--debug-panic` (hidden) exists only to test this policy: see
//! [`crate::config::DebugPanic`].

use std::sync::Arc;

use platform::{AddressSpace, Context, MemoryFile, Platform, PlatformError, Registers, Trap};

use crate::error::EXIT_RUNTIME_ERROR;

/// Installs the hook for a process whose log lines start with `<name>: <role>:` (`role`
/// is e.g. `"sandbox"`, `"gofer"`; empty for `runsc` itself).
pub fn install(name: &str, role: &str) {
    let prefix = if role.is_empty() {
        format!("{name}:")
    } else {
        format!("{name}: {role}:")
    };
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "an unknown place".into());
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let message = one_line(&format!(
            "panic in thread {} at {location}: {payload}",
            thread.name().unwrap_or("unnamed")
        ));
        let line = format!("{prefix} {message}\n");
        crate::host::write_and_exit(line.as_bytes(), EXIT_RUNTIME_ERROR);
    }));
}

/// Newlines and other control characters as spaces: the report is exactly one line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A platform that is `inner` in every way, except that a context panics when the
/// application makes system call `nr`: the panic happens in a Sentry task thread, inside
/// the task loop, where a real bug would.
#[derive(Debug)]
pub struct PanicOnSyscall {
    inner: Arc<dyn Platform>,
    nr: u64,
}

impl PanicOnSyscall {
    /// Wraps `inner`.
    pub fn wrap(inner: Arc<dyn Platform>, nr: u64) -> Arc<dyn Platform> {
        Arc::new(PanicOnSyscall { inner, nr })
    }
}

impl Platform for PanicOnSyscall {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn memory_file(&self) -> &Arc<MemoryFile> {
        self.inner.memory_file()
    }
    fn min_user_address(&self) -> u64 {
        self.inner.min_user_address()
    }
    fn max_user_address(&self) -> u64 {
        self.inner.max_user_address()
    }
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        self.inner.new_address_space()
    }
    fn new_context(&self) -> Result<Arc<dyn Context>, PlatformError> {
        Ok(Arc::new(PanicContext {
            inner: self.inner.new_context()?,
            nr: self.nr,
        }))
    }
}

#[derive(Debug)]
struct PanicContext {
    inner: Arc<dyn Context>,
    nr: u64,
}

impl Context for PanicContext {
    fn switch(
        &self,
        address_space: &dyn AddressSpace,
        regs: &mut Registers,
    ) -> Result<Trap, PlatformError> {
        let trap = self.inner.switch(address_space, regs)?;
        if matches!(trap, Trap::Syscall) && regs.gp.orig_rax == self.nr {
            panic!(
                "--debug-panic=sentry: the application made system call {}",
                self.nr
            );
        }
        Ok(trap)
    }
    fn interrupt(&self) {
        self.inner.interrupt()
    }
    fn release(&self) {
        self.inner.release()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_are_one_line() {
        assert_eq!(super::one_line("a\nb\tc"), "a b c");
    }
}
