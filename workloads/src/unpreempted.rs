//! A timed operation run as a real-time task, so that no ordinary task preempts it.
//!
//! Under the instruction clock every instruction a vCPU runs between an operation's two
//! timestamps counts, whoever runs it: a task that preempts the operation adds its own
//! instructions to the operation's time, in some rounds and not in others.

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
}
