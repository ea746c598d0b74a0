//! The clock a run's timings were read with. Under QEMU's software emulation the wall clock
//! measures the host as much as the kernel (two boots of one pin run: 149 and 72 ms);
//! QEMU's instruction counter (`-icount shift=0,sleep=off`) makes the guest's clock count
//! guest instructions instead (1 ns = 1 instruction), so the same run repeats to a few
//! parts in 100 000 — but that is not real time: cache and TLB misses cost nothing in it.
//! Timings of different clocks are never judged against each other.

use serde::{Deserialize, Serialize};

/// QEMU's options for the instruction clock: one guest instruction per ns (shift=0), and
/// no sleeping while the guest idles (its clock jumps to the next timer instead, so idle
/// time costs no host time and does not depend on the host).
pub const ICOUNT_QEMU_OPTIONS: &str = "-icount shift=0,sleep=off";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// Real time: CLOCK_MONOTONIC of a machine that runs at its own speed (bare metal,
    /// KVM, or TCG without icount, where the host's speed and load show through).
    Wall,
    /// QEMU's instruction counter: guest time advances 1 ns per guest instruction.
    Instructions,
}

impl ClockKind {
    pub fn name(self) -> &'static str {
        match self {
            ClockKind::Wall => "wall",
            ClockKind::Instructions => "instructions",
        }
    }

    pub fn parse(s: &str) -> Option<ClockKind> {
        match s {
            "wall" => Some(ClockKind::Wall),
            "instructions" => Some(ClockKind::Instructions),
            _ => None,
        }
    }

    /// What a timing of this clock is, for a reader who has never run the tool.
    pub fn describe(self) -> &'static str {
        match self {
            ClockKind::Wall => "wall clock (real time; under software emulation the host's speed and load show in it)",
            ClockKind::Instructions => "instruction time (QEMU icount: 1 ns = 1 guest instruction; not real time: cache and TLB misses cost nothing)",
        }
    }

    /// A few words, for a table's heading.
    pub fn short(self) -> &'static str {
        match self {
            ClockKind::Wall => "wall clock",
            ClockKind::Instructions => "instruction time, 1 ns = 1 guest instruction",
        }
    }
}

/// The clock of a run, as recorded in its results' context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub kind: ClockKind,
    /// The QEMU options that made it (the instruction clock's), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qemu_options: Option<String>,
}

impl Clock {
    pub fn wall() -> Clock {
        Clock {
            kind: ClockKind::Wall,
            qemu_options: None,
        }
    }

    pub fn instructions() -> Clock {
        Clock {
            kind: ClockKind::Instructions,
            qemu_options: Some(ICOUNT_QEMU_OPTIONS.into()),
        }
    }
}

/// Why a metric of kind time does not repeat under the instruction clock, if it does not.
/// Measured (Debian 6.12.118, two boots of the main job's sweep, 2026-12-04): 87 of 88
/// kernel-side timings of the memmap and pin suites within 1 % between boots (the worst, the
/// io_uring unpin of 4K anonymous pages, 1.9 %), every rmap operation within 0.8 %; these,
/// 2–1169 %.
pub fn idle_waits(suite: &str, name: &str) -> Option<&'static str> {
    match (suite, name) {
        ("memmap", "create_namespace" | "destroy_namespace") => Some(
            "a whole ndctl command: it waits on udev, 9p I/O and RCU grace periods, and an idle guest's instruction clock jumps to its next timer",
        ),
        ("memmap", "memfree_drop") => Some(
            "free memory, not a time: per-CPU lists and deferred frees move it",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_commands_are_named_as_not_repeating() {
        assert!(idle_waits("memmap", "create_namespace")
            .unwrap()
            .contains("ndctl"));
        assert!(idle_waits("memmap", "memfree_drop").is_some());
        assert_eq!(idle_waits("memmap", "memmap_init"), None);
        assert_eq!(idle_waits("pin", "pin"), None);
    }

    #[test]
    fn names_round_trip_and_files_say_which_options() {
        for k in [ClockKind::Wall, ClockKind::Instructions] {
            assert_eq!(ClockKind::parse(k.name()), Some(k));
        }
        assert_eq!(ClockKind::parse("tsc"), None);
        let j = serde_json::to_string(&Clock::instructions()).unwrap();
        assert_eq!(
            j,
            r#"{"kind":"instructions","qemu_options":"-icount shift=0,sleep=off"}"#
        );
        assert_eq!(
            serde_json::to_string(&Clock::wall()).unwrap(),
            r#"{"kind":"wall"}"#
        );
    }
}
