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

/// The wall clock's default threshold (percent): an emulated VM's boots spread by tens of
/// percent there. A timing that does not repeat under the instruction clock keeps it there.
pub const WALL_THRESHOLD_PCT: f64 = 5.0;

/// How a timing repeats between boots of one kernel under the instruction clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Repeats {
    /// To hundredths of a percent: judged at whatever threshold the caller asks for.
    Closely,
    /// To a few percent: held to `pct`, for `why`.
    Coarsely { pct: f64, why: &'static str },
    /// Not: it waits idle or follows an allocator's state; the wall clock's threshold.
    Not { why: &'static str },
}

impl Repeats {
    /// The smallest change that counts for this timing, given the one asked for.
    pub fn threshold_pct(self, asked: f64) -> f64 {
        match self {
            Repeats::Closely => asked,
            Repeats::Coarsely { pct, .. } => asked.max(pct),
            Repeats::Not { .. } => asked.max(WALL_THRESHOLD_PCT),
        }
    }

    /// Why it does not repeat closely, if it does not.
    pub fn why(self) -> Option<&'static str> {
        match self {
            Repeats::Closely => None,
            Repeats::Coarsely { why, .. } | Repeats::Not { why } => Some(why),
        }
    }
}

/// How a metric of kind time repeats under the instruction clock (`subject` as in `Metric`,
/// e.g. `anon:4K io_uring`): the one table of the timings that do not repeat closely.
/// Measured (Debian 6.12.118, two boots of the main job's sweep, 2026-12-04): 87 of 88
/// kernel-side timings of the memmap and pin suites within 1 % between boots, every rmap
/// operation within 0.8 %; the whole ndctl commands 2–1169 %, the io_uring unpin of 4K pages
/// up to 1.9 % (anonymous; devdax 0.6 %, and 20.8–21.8 ms over one boot's six rounds).
pub fn repeats(suite: &str, subject: &str, name: &str) -> Repeats {
    let io_uring_4k = |s: &str| {
        s.ends_with(" io_uring") && (s.starts_with("anon:4K ") || s.starts_with("devdax:4K:"))
    };
    match (suite, name) {
        // bpftrace around each unregistration (6.12.118, 1 GiB): 3078 pages freed in every
        // round; the rounds where the per-CPU list overflowed into the buddy allocator
        // (free_pcppages_bulk) were 1.7-4.3 % slower. A 2M or 1G unpin frees a few pages.
        ("pin", "unpin") if io_uring_4k(subject) => Repeats::Not {
            why: "the unregistration frees 3078 pages, and whether the per-CPU page lists overflow into the buddy allocator follows the allocator's state, which the kernel retunes once a second",
        },
        ("memmap", "create_namespace" | "destroy_namespace") => Repeats::Not {
            why: "a whole ndctl command's elapsed time: it waits on 9p I/O and RCU grace periods, and an idle guest's instruction clock jumps to its next timer (its CPU time, the _cpu metric, leaves the waits out)",
        },
        ("memmap", "memfree_drop") => Repeats::Not {
            why: "free memory, not a time: per-CPU lists and deferred frees move it",
        },
        // 6.12.118, one vCPU: two boots of six devdax 2M creations, create medians 58.9 /
        // 59.1 ms and disable 31.1 / 31.3 ms, disable's rounds 30.6-31.8 ms.
        ("memmap", "create_namespace_cpu" | "destroy_namespace_cpu") => Repeats::Coarsely {
            pct: 5.0,
            why: "a whole ndctl command's CPU time: ndctl and the kworkers, tens of millions of instructions that vary by a few percent, and the first creation of a geometry after another one does more",
        },
        // 6.12.117, instruction clock, 32 MiB: rounds alternate between two values, 96.47
        // and 98.30 ms in three boots (5 rounds each: L H L H L), with values between in
        // others (96.57-97.85); CI's two boots' medians 96.747 / 97.893 ms. The per-CPU page
        // lists brought to their floor before the mapping too left it alternating.
        ("rmap", "time") if subject == "cow_each_page anon 2048K" => Repeats::Coarsely {
            pct: 2.5,
            why: "the COW of every 4K page of PTE-mapped 2M THPs alternates round by round between two values 1.9 % apart (8192 page allocations; why it alternates is not found), so its median follows which one the rounds start on",
        },
        _ => Repeats::Closely,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_commands_are_named_as_not_repeating() {
        let not =
            |suite, subject, name| matches!(repeats(suite, subject, name), Repeats::Not { .. });
        assert!(repeats("memmap", "devdax:4K:mem", "create_namespace")
            .why()
            .unwrap()
            .contains("ndctl"));
        assert!(not("memmap", "devdax:4K:mem", "memfree_drop"));
        assert_eq!(
            repeats("memmap", "devdax:4K:mem", "memmap_init"),
            Repeats::Closely
        );
        // Their CPU time repeats, to a percent: judged at 5 %.
        let cpu = repeats("memmap", "devdax:4K:mem", "destroy_namespace_cpu");
        assert!(matches!(cpu, Repeats::Coarsely { pct, .. } if pct == 5.0));
        assert_eq!(cpu.threshold_pct(1.0), 5.0);
        assert_eq!(cpu.threshold_pct(8.0), 8.0);
        assert_eq!(
            repeats("memmap", "devdax:4K:mem", "create_namespace").threshold_pct(1.0),
            WALL_THRESHOLD_PCT
        );
        assert_eq!(repeats("pin", "anon:4K io_uring", "pin"), Repeats::Closely);
        // The COW of every page of 2M THPs alternates between two values 1.9 % apart.
        let each = repeats("rmap", "cow_each_page anon 2048K", "time");
        assert_eq!(each.threshold_pct(1.0), 2.5);
        assert!(each.why().unwrap().contains("alternates"));
        // The file case's fault-in and munmap repeat since each round starts with the
        // file's metadata committed, after a tick, mapped at a fixed address; the COW of
        // every 4K page and of one byte per 2M folio are not the alternating one.
        for subject in [
            "munmap fsdax:mem 4K",
            "fault fsdax:mem 4K",
            "munmap anon 4K",
            "cow_each_page anon 4K",
            "cow anon 2048K",
        ] {
            assert_eq!(
                repeats("rmap", subject, "time"),
                Repeats::Closely,
                "{subject}"
            );
        }
    }

    /// The io_uring unpin of 4K pages, and only of 4K pages, follows the page allocator.
    #[test]
    fn the_io_uring_unpin_of_4k_pages_is_named_as_not_repeating() {
        for subject in [
            "anon:4K io_uring",
            "devdax:4K:mem io_uring",
            "devdax:4K:dev io_uring",
        ] {
            let r = repeats("pin", subject, "unpin");
            assert!(matches!(r, Repeats::Not { .. }), "{subject}");
            assert!(r.why().unwrap().contains("per-CPU page lists"));
        }
        for subject in [
            "anon:thp io_uring",
            "devdax:2M:mem io_uring",
            "devdax:1G:dev io_uring",
            "hugetlb:2M io_uring",
        ] {
            assert_eq!(
                repeats("pin", subject, "unpin"),
                Repeats::Closely,
                "{subject}"
            );
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
