//! Freezing the whole sandbox (`runsc pause`/`resume`), as the cgroup freezer freezes a
//! container: every task is held where it would return to the application, so no
//! application code runs, and nothing of it is visible to the application. Blocking system
//! calls stay blocked (a wake-up only makes them look at their condition again, no
//! `EINTR`), signals stay pending, timers keep counting; `SIGKILL` still ends a frozen
//! process. Tasks created while frozen (none can be, but a clone in progress) are held at
//! their first return to the application.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Kernel, Task};

/// How long [`Kernel::freeze`] waits for every task to leave the application.
const SETTLE: Duration = Duration::from_secs(2);

impl Kernel {
    /// Whether the sandbox is frozen.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    /// Freezes every task: forces each out of the application and returns once none runs
    /// application code (or after a bounded wait for one that does not come out).
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Release);
        let tasks = self.all_tasks();
        for t in &tasks {
            t.interrupt();
        }
        let deadline = Instant::now() + SETTLE;
        while tasks.iter().any(|t| t.in_app()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Lets every task run again.
    pub fn thaw(&self) {
        self.frozen.store(false, Ordering::Release);
        for t in self.all_tasks() {
            t.waker().wake();
        }
    }

    fn all_tasks(&self) -> Vec<std::sync::Arc<Task>> {
        self.pids()
            .into_iter()
            .filter_map(|pid| self.thread_group(pid))
            .flat_map(|tg| tg.tasks())
            .collect()
    }
}

impl Task {
    /// Waits while the sandbox is frozen (or until the task must end).
    pub(crate) fn wait_while_frozen(&self) {
        loop {
            let seen = self.waker().seq();
            if !self.kernel().is_frozen() || self.should_stop() || self.kill_pending() {
                return;
            }
            self.waker().wait(seen, None);
        }
    }

    /// Whether `SIGKILL` is pending for the task or its process (it ends a frozen one).
    pub(crate) fn kill_pending(&self) -> bool {
        let bit = super::signal::sig_bit(linux_abi::signal::SIGKILL);
        (self.pending().set() | self.thread_group().shared_pending_set()) & bit != 0
    }
}
