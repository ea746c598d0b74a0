//! `foliobench run --suite pin`: pin and unpin time, kernel pin latencies and refcount
//! grabs per pinned page, per memory (devdax geometries, fsdax, anonymous) and pin driver.

use std::fs::{File, OpenOptions};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use foliobench_ebpf::catalog::Resolution;
use foliobench_reports::check::Check;
use foliobench_reports::geometry::Geometry;
use foliobench_reports::outcome::Outcome;
use foliobench_reports::pin::{order_checks, PinDriver, PinMemory, PinResult, PinSuite, Prepared};
use foliobench_workloads::blockdev::SourceDevice;
use foliobench_workloads::fsdax::{DaxFs, FsKind};
use foliobench_workloads::mapping::{Mapping, WorkloadError, PAGE};
use foliobench_workloads::namespace::Provisioner;
use foliobench_workloads::pin::{FixedBuffers, GupTestCmd};
use foliobench_workloads::pin_suite::{self, Driver};
use foliobench_workloads::system;

use crate::exit::{env, usage};
use crate::units::fmt_size;

const DRIVER_NAMES: &str = "io_uring, odirect, gup_test";

pub const WARMUP: &str = "each mapping is written once per 4 KiB page before anything is timed \
    (faults it in; the host backs never-used emulated pmem on first touch), then each driver \
    runs one untimed pin+unpin round";

/// What the pin suite will measure.
pub struct Plan {
    pub memories: Vec<PinMemory>,
    pub drivers: Vec<PinDriver>,
    pub size: u64,
}

impl Plan {
    pub fn wants_dax(&self) -> bool {
        self.memories.iter().any(|m| m.geometry().is_some())
    }

    pub fn describe(&self, repeat: usize) -> String {
        format!(
            "{} x {} ({} per round, {repeat} timed rounds each)",
            self.memories
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.drivers
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(", "),
            fmt_size(self.size)
        )
    }
}

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

/// The O_DIRECT source, opened. Fields drop in order: the descriptor is closed before the
/// device is removed (an open block device would keep null_blk from unloading).
pub(crate) struct OdirectSource {
    file: File,
    device: SourceDevice,
}

/// The drivers' resources, set up once for the run; each is the open file or why not.
pub(crate) struct Drivers {
    io_uring: Result<FixedBuffers, String>,
    odirect: Result<OdirectSource, String>,
    gup_test: Result<File, String>,
}

impl Drivers {
    /// The O_DIRECT device opened for writing (the pin of a read-only source), or why not.
    pub(crate) fn odirect_writer(&self) -> Result<File, String> {
        self.odirect
            .as_ref()
            .map_err(String::clone)
            .and_then(|o| o.device.open_write())
    }

    pub(crate) fn open(plan: &Plan, notes: &mut Vec<String>) -> Drivers {
        let wants = |d: PinDriver| plan.drivers.contains(&d);
        let io_uring = if wants(PinDriver::IoUring) {
            let a = system::io_uring();
            if a.available {
                FixedBuffers::new().map_err(|e| e.to_string())
            } else {
                Err(a.reason)
            }
        } else {
            Err("not selected".into())
        };
        let odirect = if wants(PinDriver::Odirect) {
            SourceDevice::create(plan.size).and_then(|device| {
                Ok(OdirectSource {
                    file: device.open()?,
                    device,
                })
            })
        } else {
            Err("not selected".into())
        };
        let gup_test = if plan
            .drivers
            .iter()
            .any(|d| d.name().starts_with("gup_test"))
        {
            if let Ok(true) = system::ensure_mounted("debugfs", "/sys/kernel/debug") {
                notes.push("mounted debugfs at /sys/kernel/debug for gup_test".into());
            }
            let a = system::gup_test();
            if a.available {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(system::GUP_TEST)
                    .map_err(|e| format!("opening {}: {e}", system::GUP_TEST))
            } else {
                Err(a.reason)
            }
        } else {
            Err("not selected".into())
        };
        Drivers {
            io_uring,
            odirect,
            gup_test,
        }
    }

    pub(crate) fn get(&self, d: PinDriver) -> Result<Driver<'_>, String> {
        let cmd = |c| {
            self.gup_test
                .as_ref()
                .map(|f| Driver::GupTest(f, c))
                .map_err(String::clone)
        };
        match d {
            PinDriver::IoUring => self
                .io_uring
                .as_ref()
                .map(Driver::IoUring)
                .map_err(String::clone),
            PinDriver::Odirect => self
                .odirect
                .as_ref()
                .map(|o| Driver::Odirect(&o.file))
                .map_err(String::clone),
            PinDriver::GupTestPinFast => cmd(GupTestCmd::PinFast),
            PinDriver::GupTestPinLongterm => cmd(GupTestCmd::PinLongterm),
            PinDriver::GupTestGupFast => cmd(GupTestCmd::GupFast),
        }
    }
}

/// A memory mapped for pinning, with what keeps it alive (dropped in reverse: the mapping,
/// then the dax filesystem it may live on).
struct Ready {
    mapping: Mapping,
    _fs: Option<DaxFs>,
    info: Prepared,
}

/// Configures the namespace as `g` (if dax) and maps `size` bytes of it.
fn prepare(m: PinMemory, size: u64, prov: Option<&Provisioner>) -> Result<Ready, String> {
    let len = size as usize;
    let (mapping, fs, usable, mapped) = match m {
        PinMemory::Anon { thp } => (
            Mapping::anonymous(len, thp).map_err(|e| e.to_string())?,
            None,
            None,
            format!(
                "anonymous memory, {}",
                if thp {
                    "MADV_HUGEPAGE"
                } else {
                    "MADV_NOHUGEPAGE"
                }
            ),
        ),
        PinMemory::Dax(g) => {
            let prov = prov.ok_or("no namespace")?;
            let applied = prov.apply(g).map_err(|e| e.to_string())?;
            let usable = applied.usable_size();
            if let Some(u) = usable.filter(|u| *u < size) {
                return Err(format!(
                    "the device offers {} MiB, less than --size {}",
                    u >> 20,
                    fmt_size(size)
                ));
            }
            match g {
                Geometry::Devdax { .. } => {
                    let path = applied.dax_device().ok_or("ndctl reported no dax device")?;
                    let f = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&path)
                        .map_err(|e| format!("opening {path}: {e}"))?;
                    let mapping = Mapping::shared(f, len).map_err(|e| e.to_string())?;
                    (mapping, None, usable, format!("{path} (MAP_SHARED)"))
                }
                Geometry::Fsdax { .. } => {
                    let dev = applied
                        .block_device()
                        .ok_or("ndctl reported no block device")?;
                    let fs = DaxFs::create(std::path::Path::new(&dev), FsKind::Ext4)?;
                    let f = fs.file(size)?;
                    let mapping = Mapping::shared(f, len).map_err(|e| e.to_string())?;
                    let what = format!("a file on ext4 -o dax on {dev} (MAP_SHARED)");
                    (mapping, Some(fs), usable, what)
                }
                Geometry::Pfnmap => return Err("pfnmap has no struct pages to pin".into()),
            }
        }
    };
    let touch = mapping.touch();
    let thp_bytes = match m {
        PinMemory::Anon { .. } => mapping.thp_bytes(),
        PinMemory::Dax(_) => None,
    };
    Ok(Ready {
        mapping,
        _fs: fs,
        info: Prepared {
            memory: m,
            touch_ns: Some(touch.as_nanos() as u64),
            usable_size: usable,
            thp_bytes,
            mapped,
        },
    })
}

fn row(m: PinMemory, d: PinDriver, size: u64, outcome: Outcome) -> PinResult {
    PinResult {
        memory: m,
        driver: d,
        outcome,
        bytes: size,
        pages: size / PAGE as u64,
        warmup_rounds: 0,
        samples: vec![],
        kernel: vec![],
        grabs: None,
    }
}

/// Runs the pin suite: every memory, prepared once, then every driver on it.
#[allow(clippy::too_many_arguments)]
pub fn suite(
    plan: &Plan,
    prov: Option<&Provisioner>,
    no_namespace: Option<&str>,
    repeat: usize,
    latency: &[Resolution],
    grab: &[Resolution],
    notes: &mut Vec<String>,
    interrupted: &AtomicBool,
) -> Result<PinSuite> {
    let drivers = Drivers::open(plan, notes);
    let mut suite = PinSuite {
        size: plan.size,
        repeat,
        warmup: WARMUP.into(),
        odirect_device: drivers
            .odirect
            .as_ref()
            .ok()
            .map(|o| o.device.description.clone()),
        ..Default::default()
    };
    let mut not_traced: Vec<String> = Vec::new();
    let skip_all = |suite: &mut PinSuite, m: PinMemory, reason: &str| {
        for &d in &plan.drivers {
            suite.results.push(row(
                m,
                d,
                plan.size,
                Outcome::Skipped {
                    reason: reason.to_string(),
                },
            ));
        }
    };
    for &m in &plan.memories {
        if m.geometry().is_some() && prov.is_none() {
            skip_all(
                &mut suite,
                m,
                &format!(
                    "no namespace granted{}",
                    if no_namespace.is_some() {
                        " (see the note)"
                    } else {
                        ""
                    }
                ),
            );
            continue;
        }
        eprintln!("foliobench: pin: preparing {m}");
        let prepared = match prepare(m, plan.size, prov) {
            Ok(p) => p,
            Err(why) => {
                skip_all(&mut suite, m, &format!("could not map {m}: {why}"));
                continue;
            }
        };
        for &d in &plan.drivers {
            let driver = match drivers.get(d) {
                Ok(x) => x,
                Err(why) => {
                    suite
                        .results
                        .push(row(m, d, plan.size, Outcome::Skipped { reason: why }));
                    continue;
                }
            };
            eprintln!("foliobench: pin: {m} {d}");
            let mut r = row(m, d, plan.size, Outcome::Measured);
            match pin_suite::measure(&prepared.mapping, &driver, repeat, latency, grab) {
                Ok(x) => {
                    r.warmup_rounds = x.warmup_rounds;
                    r.pages = x.pages;
                    r.samples = x.samples;
                    r.kernel = x.kernel;
                    r.grabs = x.grabs;
                    for n in x.not_traced {
                        if !not_traced.contains(&n) {
                            not_traced.push(n);
                        }
                    }
                }
                Err(e @ WorkloadError::Refused { .. }) => {
                    r.outcome = Outcome::Refused {
                        errno: e.refusal().unwrap_or_default(),
                        detail: e.to_string(),
                    };
                }
                Err(e) => {
                    r.outcome = Outcome::Skipped {
                        reason: format!("failed: {e}"),
                    }
                }
            }
            suite.results.push(r);
            if interrupted.load(Ordering::Relaxed) {
                return Err(env("interrupted: namespace restored, no results written"));
            }
        }
        suite.prepared.push(prepared.info);
    }
    notes.extend(
        not_traced
            .into_iter()
            .map(|n| format!("pin probe not traced: {n}")),
    );
    suite.checks = order_checks(&suite.results);
    suite.checks.extend(refs_checks(&suite.results));
    Ok(suite)
}

/// References taken (the grab probes' `refs` summed) against the pages the driver pinned:
/// the probe layer and the driver must agree on how much was pinned.
fn refs_checks(results: &[PinResult]) -> Vec<Check> {
    results
        .iter()
        .filter_map(|r| {
            let g = r.grabs.as_ref()?;
            (g.calls > 0).then(|| Check {
                what: format!(
                    "{} {}: references taken vs pages pinned",
                    r.memory, r.driver
                ),
                agrees: g.refs == g.pages,
                detail: format!("{} refs in {} grabs for {} pages", g.refs, g.calls, g.pages),
            })
        })
        .collect()
}
