//! `foliobench run --suite pin`: the drivers and the size checked against the memories to
//! be measured, as the pin suite's plan (its loop is `workloads::suites::pin`).

use anyhow::Result;
use foliobench_reports::clock::ClockKind;
use foliobench_reports::geometry::Map;
use foliobench_reports::pin::{PinDriver, PinMemory};
use foliobench_workloads::mapping::PAGE;
use foliobench_workloads::suites::pin::{MappedOnly, Plan};

use crate::exit::usage;
use crate::units::fmt_size;

const DRIVER_NAMES: &str = "io_uring, odirect, gup_test, xdp_umem";

/// Checks the pin suite's arguments: drivers by name, a size every memory to be measured
/// can map (`dax`: whether the dax memories will be; else they are reported skipped).
pub fn plan(memories: Vec<PinMemory>, drivers: &[String], size: u64, dax: bool) -> Result<Plan> {
    let mut chosen = Vec::new();
    let names: Vec<&str> = if drivers.is_empty() {
        vec!["io_uring", "odirect", "gup_test"]
    } else {
        drivers.iter().map(|d| d.trim()).collect()
    };
    for n in names {
        let these: &[PinDriver] = match n {
            "io_uring" => &[PinDriver::IoUring],
            "odirect" => &[PinDriver::Odirect],
            "xdp_umem" => &[PinDriver::XdpUmem],
            "gup_test" => &[
                PinDriver::GupTestPinFast,
                PinDriver::GupTestPinLongterm,
                PinDriver::GupTestGupFast,
            ],
            other => {
                return Err(usage(format!(
                    "unknown pin driver '{other}': available: {DRIVER_NAMES}"
                )))
            }
        };
        for d in these {
            if !chosen.contains(d) {
                chosen.push(*d);
            }
        }
    }
    if size == 0 || size % PAGE as u64 != 0 {
        return Err(usage(format!(
            "--size {}: must be a positive multiple of 4K",
            fmt_size(size)
        )));
    }
    for m in memories.iter().filter(|m| dax || m.geometry().is_none()) {
        if size % m.align() != 0 {
            return Err(usage(format!(
                "--size {}: {m} maps in {} pages, so --size must be a multiple of {} \
                 (e.g. --size {})",
                fmt_size(size),
                fmt_size(m.align()),
                fmt_size(m.align()),
                fmt_size(size.div_ceil(m.align()) * m.align())
            )));
        }
    }
    Ok(Plan {
        memories,
        drivers: chosen,
        size,
        mapped_only: None,
    })
}

/// Under the instruction clock the default sweep maps the dax memories whose struct pages
/// are on the device, and reads their page facts, but does not pin them: a pin runs the
/// same instructions wherever the struct pages are, and instruction time does not count the
/// memory latency that tells them apart. Measured (2026-12-05, Debian 6.12.118, the main
/// job's sweep): io_uring and O_DIRECT pins of devdax 1G and 2M and fsdax O_DIRECT within
/// 0.07 % of `:mem`, the io_uring pin of devdax 4K 0.4 %.
pub fn map_dev_only(plan: &mut Plan, clock: ClockKind) {
    if clock != ClockKind::Instructions {
        return;
    }
    let memories: Vec<PinMemory> = plan
        .memories
        .iter()
        .copied()
        .filter(|m| m.geometry().and_then(|g| g.map()) == Some(Map::Dev))
        .collect();
    plan.mapped_only = (!memories.is_empty()).then(|| MappedOnly {
        memories,
        why: "instruction time does not count where the struct pages are (a pin of :dev runs :mem's instructions); name it with --geometry, or pin with --clock wall".into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use foliobench_reports::precision::Rounds;

    #[test]
    fn under_the_instruction_clock_dev_memories_are_mapped_not_pinned() {
        let default = || plan(PinMemory::all(), &[], 1 << 30, true).unwrap();
        let mut wall = default();
        map_dev_only(&mut wall, ClockKind::Wall);
        assert_eq!(wall.mapped_only, None);
        let mut icount = default();
        map_dev_only(&mut icount, ClockKind::Instructions);
        let names: Vec<String> = icount
            .mapped_only
            .as_ref()
            .unwrap()
            .memories
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "devdax:4K:dev",
                "devdax:2M:dev",
                "devdax:1G:dev",
                "fsdax:dev"
            ]
        );
        // Still mapped (their page facts read), so still in the plan's memories; the plan
        // line names them apart from the pinned ones.
        assert_eq!(icount.memories.len(), PinMemory::all().len());
        let line = icount.describe(&Rounds::exactly(3));
        let (pinned, rest) = line.split_once("; mapped, not pinned: ").unwrap();
        assert!(!pinned.contains(":dev"), "{line}");
        assert!(pinned.starts_with("devdax:4K:mem, devdax:2M:mem"), "{line}");
        assert!(
            rest.starts_with("devdax:4K:dev, devdax:2M:dev, devdax:1G:dev, fsdax:dev (instruction time does not count"),
            "{line}"
        );
    }
}
