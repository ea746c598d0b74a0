//! A timed operation run as a real-time task, so that no ordinary task preempts it, and
//! started just after a timer tick, so that no tick falls inside a short one.
//!
//! Under the instruction clock every instruction a vCPU runs between an operation's two
//! timestamps counts, whoever runs it: a task that preempts the operation, or the tick's
//! interrupt and softirq, add their own instructions to the operation's time, in some rounds
//! and not in others.

use std::time::{Duration, Instant};

/// While held, this thread is a real-time task (SCHED_FIFO, priority 1) and its children
/// ordinary ones (SCHED_RESET_ON_FORK); dropped, it is SCHED_OTHER again.
///
/// Why: a forked child, bound to the parent's CPU like the parent, is a new CFS task; whether
/// it preempted the parent before fork() returned depended on the parent's place in the
/// run queue (EEVDF), so the child's first steps (return from fork, its stack's COW faults,
/// its read) fell inside the parent's timing in some rounds and not in others: fork's rounds
/// fell in two modes ~100K instructions apart. No CFS task (the child, a kworker woken on
/// this CPU) preempts a SCHED_FIFO one. Only around the operation: a real-time task that ran
/// through the fault-in of a large mapping would meet RT throttling (950 of every 1000 ms).
/// Without the privilege (not root), the operation runs as it is, and says nothing.
pub struct Unpreempted(bool);

impl Unpreempted {
    pub fn enter() -> Self {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: changes this thread's own policy; the param lives across the call.
        let ok = unsafe {
            libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
        } == 0;
        Unpreempted(ok)
    }

    /// As `enter`, then waits for the next timer tick, so that an operation shorter than a
    /// tick period (4 ms at HZ=250) starts with a whole period before it.
    ///
    /// Why: a tick inside the timed window (interrupt, timer and RCU softirqs) costs
    /// thousands of instructions. Every round takes the same number of instructions, so
    /// where the tick fell relative to the operation followed from where it fell when the
    /// boot began: a 2M fork's boot medians moved by 1.1-1.8 % (1.095 / 1.108 ms).
    pub fn enter_after_tick() -> Self {
        let held = Self::enter();
        // Nothing to align to on a tickless CPU: the operation starts as it is.
        let _ = wait_for_tick((tick_period() * 2).min(Duration::from_millis(100)));
        held
    }
}

/// The coarse clock's resolution: one tick period.
fn tick_period() -> Duration {
    let mut res = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the one timespec passed.
    unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) };
    Duration::new(res.tv_sec.max(0) as u64, res.tv_nsec.max(0) as u32)
}

/// Spins until the coarse monotonic clock moves: it moves when the tick updates the
/// kernel's time, once per tick on a busy CPU. Gives up after `bound` (a CPU whose tick is
/// stopped, nohz_full); says whether the clock moved.
fn wait_for_tick(bound: Duration) -> bool {
    let coarse = || {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes the one timespec passed.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        (ts.tv_sec, ts.tv_nsec)
    };
    // The tick read first: a thread descheduled before its deadline is set finds the clock
    // moved when it runs again, rather than its deadline already past (seen on a loaded host).
    let start = coarse();
    let deadline = Instant::now() + bound;
    loop {
        if coarse() != start {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::hint::spin_loop();
    }
}

impl Drop for Unpreempted {
    fn drop(&mut self) {
        if self.0 {
            let param = libc::sched_param { sched_priority: 0 };
            // SAFETY: as in enter().
            unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> libc::c_int {
        // SAFETY: reads this thread's own policy.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn real_time_while_held_with_ordinary_children_and_ordinary_after() {
        assert_eq!(policy(), libc::SCHED_OTHER);
        let held = Unpreempted::enter();
        if held.0 {
            // The flag is reported with the policy: children start SCHED_OTHER.
            assert_eq!(policy(), libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK);
        } else {
            // Not allowed (no CAP_SYS_NICE): nothing changed.
            assert_eq!(policy(), libc::SCHED_OTHER);
        }
        drop(held);
        assert_eq!(policy(), libc::SCHED_OTHER);
    }

    #[test]
    fn the_wait_ends_on_a_tick_not_on_its_bound() {
        // A busy CPU ticks: the coarse clock moves, every time. The bound here is a second,
        // not two periods: on a loaded host a tick can come late (a stolen vCPU) while the
        // fine clock runs on, which made this test fail with the tool's own bound.
        for _ in 0..5 {
            assert!(wait_for_tick(Duration::from_secs(1)));
        }
    }
}
