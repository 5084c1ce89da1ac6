//! Per-task scheduling attributes: nice value, policy and real-time priority, CPU
//! affinity and timer slack. The Sentry's host threads are scheduled by the host as they
//! are; these values are kept so programs read back what they set, with Linux's rules for
//! who may set what (checked by the system calls).

/// `SCHED_OTHER`.
pub const SCHED_OTHER: i32 = 0;
/// `SCHED_FIFO`.
pub const SCHED_FIFO: i32 = 1;
/// `SCHED_RR`.
pub const SCHED_RR: i32 = 2;
/// `SCHED_BATCH`.
pub const SCHED_BATCH: i32 = 3;
/// `SCHED_IDLE`.
pub const SCHED_IDLE: i32 = 5;
/// `SCHED_DEADLINE`.
pub const SCHED_DEADLINE: i32 = 6;
/// The default timer slack (50 µs), also what `PR_SET_TIMERSLACK 0` restores.
pub const DEFAULT_TIMER_SLACK_NS: u64 = 50_000;

/// The scheduling attributes of one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedParams {
    /// Nice value, -20..=19.
    pub nice: i32,
    /// Policy (`SCHED_*`).
    pub policy: i32,
    /// Real-time priority (1..=99 for FIFO/RR, else 0).
    pub priority: i32,
    /// `SCHED_RESET_ON_FORK`.
    pub reset_on_fork: bool,
    /// `SCHED_DEADLINE`'s runtime, deadline and period in nanoseconds (zero for the
    /// other policies).
    pub deadline: (u64, u64, u64),
    /// A fair task's own time slice in nanoseconds (`sched_setattr`'s runtime), 0 for
    /// the default.
    pub slice: u64,
    /// Allowed CPUs, one bit per CPU.
    pub affinity: Vec<u8>,
    /// `PR_GET_TIMERSLACK` value in nanoseconds.
    pub timer_slack_ns: u64,
    /// What `PR_SET_TIMERSLACK 0` goes back to (the slack inherited at creation).
    pub default_timer_slack_ns: u64,
}

impl SchedParams {
    /// The attributes of the first task: nice 0, `SCHED_OTHER`, every one of `ncpus` CPUs.
    pub fn new(ncpus: usize) -> SchedParams {
        let mut affinity = vec![0u8; ncpus.div_ceil(8)];
        for c in 0..ncpus {
            affinity[c / 8] |= 1 << (c % 8);
        }
        SchedParams {
            nice: 0,
            policy: SCHED_OTHER,
            priority: 0,
            reset_on_fork: false,
            deadline: (0, 0, 0),
            slice: 0,
            affinity,
            timer_slack_ns: DEFAULT_TIMER_SLACK_NS,
            default_timer_slack_ns: DEFAULT_TIMER_SLACK_NS,
        }
    }

    /// What a child created by `clone` starts with.
    pub fn for_child(&self) -> SchedParams {
        let mut c = self.clone();
        if c.reset_on_fork {
            c.reset_on_fork = false;
            if c.policy == SCHED_FIFO || c.policy == SCHED_RR || c.policy == SCHED_DEADLINE {
                c.policy = SCHED_OTHER;
                c.priority = 0;
                c.deadline = (0, 0, 0);
            }
            c.nice = c.nice.max(0);
        }
        c.default_timer_slack_ns = c.timer_slack_ns;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_on_fork_drops_real_time_and_negative_nice() {
        let mut p = SchedParams::new(2);
        assert_eq!(p.affinity, vec![0b11]);
        p.policy = SCHED_FIFO;
        p.priority = 10;
        p.nice = -5;
        assert_eq!(p.for_child().policy, SCHED_FIFO);
        p.reset_on_fork = true;
        let c = p.for_child();
        assert_eq!(
            (c.policy, c.priority, c.nice, c.reset_on_fork),
            (SCHED_OTHER, 0, 0, false)
        );
    }
}
