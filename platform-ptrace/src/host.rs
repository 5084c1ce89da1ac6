//! Per host thread bookkeeping: the thread's id, its CPU when pinned, and the stub threads
//! it traces.
//!
//! A ptrace tracer is a *thread*: when it exits, every stub thread it traces is detached,
//! and `PTRACE_O_EXITKILL` then kills the whole stub process. So when a host thread that
//! drove stub threads exits, a thread-local destructor makes each of its stub threads exit
//! on its own first (an injected `exit(0)`), leaving the address space usable by the other
//! threads, and reaps the stub threads of released address spaces.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use crate::process::StubThread;
use crate::sys::{self, Pid};

#[derive(Debug, Default)]
struct HostThread {
    tid: Cell<Pid>,
    cpu: Cell<Option<usize>>,
    stubs: RefCell<Vec<Arc<StubThread>>>,
}

impl Drop for HostThread {
    fn drop(&mut self) {
        for t in self.stubs.get_mut().drain(..) {
            t.retire();
        }
    }
}

thread_local! {
    static HOST: HostThread = HostThread::default();
}

/// The calling thread's id (cached).
pub fn tid() -> Pid {
    HOST.try_with(|h| {
        let t = h.tid.get();
        if t != 0 {
            return t;
        }
        let t = sys::gettid();
        h.tid.set(t);
        t
    })
    .unwrap_or_else(|_| sys::gettid())
}

/// Records that the calling thread traces `t`, and reaps stub threads of released
/// address spaces it still holds.
pub fn register(t: &Arc<StubThread>) {
    let _ = HOST.try_with(|h| {
        let mut stubs = h.stubs.borrow_mut();
        stubs.retain(|s| {
            if s.is_defunct() {
                s.retire();
                false
            } else {
                true
            }
        });
        stubs.push(Arc::clone(t));
    });
}

/// Forgets `t` (already retired by the caller).
pub fn unregister(t: &Arc<StubThread>) {
    let _ = HOST.try_with(|h| h.stubs.borrow_mut().retain(|s| !Arc::ptr_eq(s, t)));
}

/// The CPU the calling thread is pinned to, pinning it to `choose()` first if it is not.
pub fn pinned_cpu(choose: impl FnOnce() -> Option<usize>) -> Option<usize> {
    HOST.try_with(|h| {
        if let Some(c) = h.cpu.get() {
            return Some(c);
        }
        let c = choose()?;
        match sys::pin_to_cpu(0, c) {
            Ok(()) => {
                h.cpu.set(Some(c));
                Some(c)
            }
            Err(e) => {
                tracing::debug!(cpu = c, error = %e, "cannot pin tracer thread");
                None
            }
        }
    })
    .ok()
    .flatten()
}
