//! `foliobench run --suite pin`: the drivers and the size checked against the memories to
//! be measured, as the pin suite's plan (its loop is `workloads::suites::pin`).

use anyhow::Result;
use foliobench_reports::pin::{PinDriver, PinMemory};
use foliobench_workloads::mapping::PAGE;
use foliobench_workloads::suites::pin::Plan;

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
    })
}
