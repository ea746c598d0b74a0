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

/// Why a metric of kind time does not repeat under the instruction clock, if it does not
/// (`subject` as in `Metric`, e.g. `anon:4K io_uring`). Measured (Debian 6.12.118, two boots
/// of the main job's sweep, 2026-12-04): 87 of 88 kernel-side timings of the memmap and pin
/// suites within 1 % between boots, every rmap operation within 0.8 %; the whole ndctl
/// commands 2–1169 %, the io_uring unpin of 4K pages up to 1.9 % (anonymous; devdax 0.6 %,
/// and 20.8–21.8 ms over one boot's six rounds).
pub fn not_repeating(suite: &str, subject: &str, name: &str) -> Option<&'static str> {
    let io_uring_4k = |s: &str| {
        s.ends_with(" io_uring") && (s.starts_with("anon:4K ") || s.starts_with("devdax:4K:"))
    };
    match (suite, name) {
        // bpftrace around each unregistration (6.12.118, 1 GiB): 3078 pages freed in every
        // round; the rounds where the per-CPU list overflowed into the buddy allocator
        // (free_pcppages_bulk) were 1.7-4.3 % slower. A 2M or 1G unpin frees a few pages.
        ("pin", "unpin") if io_uring_4k(subject) => Some(
            "the unregistration frees 3078 pages, and whether the per-CPU page lists overflow into the buddy allocator follows the allocator's state, which the kernel retunes once a second",
        ),
        ("memmap", "create_namespace" | "destroy_namespace") => Some(
            "a whole ndctl command's elapsed time: it waits on 9p I/O and RCU grace periods, and an idle guest's instruction clock jumps to its next timer (its CPU time, the _cpu metric, leaves the waits out)",
        ),
        ("memmap", "memfree_drop") => Some(
            "free memory, not a time: per-CPU lists and deferred frees move it",
        ),
        _ => None,
    }
}

/// A timing that repeats between boots under the instruction clock, but to a percent rather
/// than hundredths: the threshold it keeps there (percent), and why. Measured (6.12.118, one
/// vCPU): the whole ndctl commands' CPU time, two boots of six devdax 2M creations, create
/// medians 58.9 / 59.1 ms and disable 31.1 / 31.3 ms, disable's rounds 30.6-31.8 ms.
pub fn coarse(suite: &str, name: &str) -> Option<(f64, &'static str)> {
    match (suite, name) {
        ("memmap", "create_namespace_cpu" | "destroy_namespace_cpu") => Some((
            5.0,
            "a whole ndctl command's CPU time: ndctl and the kworkers, tens of millions of instructions that vary by a few percent, and the first creation of a geometry after another one does more",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_commands_are_named_as_not_repeating() {
        assert!(not_repeating("memmap", "devdax:4K:mem", "create_namespace")
            .unwrap()
            .contains("ndctl"));
        assert!(not_repeating("memmap", "devdax:4K:mem", "memfree_drop").is_some());
        assert_eq!(
            not_repeating("memmap", "devdax:4K:mem", "memmap_init"),
            None
        );
        // Their CPU time repeats, to a percent: judged at 5 %.
        assert_eq!(
            not_repeating("memmap", "devdax:4K:mem", "create_namespace_cpu"),
            None
        );
        assert_eq!(coarse("memmap", "destroy_namespace_cpu").unwrap().0, 5.0);
        assert_eq!(coarse("memmap", "memmap_init"), None);
        assert_eq!(not_repeating("pin", "anon:4K io_uring", "pin"), None);
        // The file case's fault-in and munmap repeat since each round starts with the
        // file's metadata committed, after a tick, mapped at a fixed address.
        assert_eq!(not_repeating("rmap", "munmap fsdax:mem 4K", "time"), None);
        assert_eq!(not_repeating("rmap", "fault fsdax:mem 4K", "time"), None);
        assert_eq!(not_repeating("rmap", "munmap anon 4K", "time"), None);
    }

    /// The io_uring unpin of 4K pages, and only of 4K pages, follows the page allocator.
    #[test]
    fn the_io_uring_unpin_of_4k_pages_is_named_as_not_repeating() {
        for subject in [
            "anon:4K io_uring",
            "devdax:4K:mem io_uring",
            "devdax:4K:dev io_uring",
        ] {
            assert!(not_repeating("pin", subject, "unpin")
                .unwrap()
                .contains("per-CPU page lists"));
        }
        for subject in [
            "anon:thp io_uring",
            "devdax:2M:mem io_uring",
            "devdax:1G:dev io_uring",
            "hugetlb:2M io_uring",
        ] {
            assert_eq!(not_repeating("pin", subject, "unpin"), None, "{subject}");
        }
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
