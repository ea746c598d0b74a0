//! The fsdax suite: a file on ext4 and on xfs mounted `-o dax` on the granted namespace
//! (fsdax, struct pages in RAM): PMD against PTE faults (the `fs_dax` tracepoints with their
//! result), the read fault-in time, what pagemap/kpageflags/kpagecount and smaps say of the
//! mapped pages, and which pin kinds the kernel allows. Also the PFN-map row: a PCI BAR
//! mapped read-only, its struct pages, and the pins refused.

use std::fs::File;
use std::time::Duration;

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, any_traceable, counting, Filter};
use foliobench_reports::fsdax::{
    fault_checks, FsdaxResult, FsdaxSuite, PageFacts, PfnmapResult, PinTry, SmapsFacts,
    PERF_TRACEPOINTS,
};
use foliobench_reports::geometry::{Geometry, Map};
use foliobench_reports::outcome::Outcome;
use foliobench_reports::perf::PerfCounts;
use foliobench_reports::pin::PinDriver;
use foliobench_reports::precision::Rounds;
use foliobench_reports::trace::ProbeStats;
use foliobench_reports::units::fmt_size;

use super::pin::Drivers;
use super::{failed, Result, SuiteCtx};
use crate::fsdax::{self, DaxFs, FsKind};
use crate::mapping::{Mapping, WorkloadError, PAGE};
use crate::namespace::Provisioner;
use crate::pin::PinTiming;
use crate::{pagemap, perf, pfnmap, system};

/// A PMD's worth of bytes: the file is made and mapped in whole PMDs.
pub const PMD: u64 = 2 << 20;

pub const METHOD: &str = "the file is written once per 4 KiB page (allocation), then each \
    round maps it afresh (2 MiB-aligned, MAP_SHARED) and reads one byte per 4 KiB page: an \
    untimed warm-up, the timed rounds, then a traced round whose mapping is also inspected \
    (pagemap, kpageflags, kpagecount, smaps) and pinned once by each driver";

fn outcome_of(e: &WorkloadError) -> Outcome {
    match e.refusal() {
        Some(errno) => Outcome::Refused {
            errno,
            detail: e.to_string(),
        },
        None => Outcome::Skipped {
            reason: e.to_string(),
        },
    }
}

/// Each driver once on `m` (`read_only`: without FOLL_WRITE where the driver can).
fn try_pins(m: &Mapping, drivers: &Drivers, read_only: bool) -> Vec<PinTry> {
    let writer = if read_only {
        drivers.odirect_writer().ok()
    } else {
        None
    };
    PinDriver::ALL
        .iter()
        .map(|&d| {
            let r: Result<PinTiming, Outcome> = match drivers.get(d) {
                Err(reason) => Err(Outcome::Skipped { reason }),
                Ok(driver) => if read_only {
                    driver.round_read_only(m, writer.as_ref())
                } else {
                    driver.round(m)
                }
                .map_err(|e| outcome_of(&e)),
            };
            match r {
                Ok(t) => PinTry {
                    driver: d,
                    outcome: Outcome::Measured,
                    pin_ns: Some(t.pin.as_nanos() as u64),
                },
                Err(outcome) => PinTry {
                    driver: d,
                    outcome,
                    pin_ns: None,
                },
            }
        })
        .collect()
}

fn skipped(kind: FsKind, reason: String) -> FsdaxResult {
    FsdaxResult {
        fs: kind.name().into(),
        outcome: Outcome::Skipped { reason },
        setup: kind.describe(),
        mapping_aligned: false,
        file_pmd_pieces: None,
        first_write_ns: 0,
        fault_ns: vec![],
        faults: vec![],
        traced_fault_ns: None,
        misaligned_faults: vec![],
        pages: None,
        smaps: None,
        pins: vec![],
        perf: None,
    }
}

/// The fsdax suite's plan: the file's size, and the pin drivers it pins the file with
/// (opened once, shared with the PFN-map row).
pub struct Plan<'a> {
    pub size: u64,
    pub drivers: &'a Drivers,
}

impl super::SuiteRun for Plan<'_> {
    type Results = FsdaxSuite;
    const SUITE: foliobench_reports::suite::Suite = foliobench_reports::suite::Suite::Fsdax;
    fn run(
        &self,
        ctx: &SuiteCtx,
        probes: &[Resolution],
        _: &mut Vec<String>,
    ) -> Result<FsdaxSuite> {
        let prov = ctx.prov.ok_or_else(|| {
            super::refused(ctx.no_namespace.unwrap_or("no namespace was granted"))
        })?;
        run(prov, self.size, ctx, probes, self.drivers)
    }
}

/// A `size` file on each filesystem in turn, on the namespace made fsdax afresh for each.
pub fn run(
    prov: &Provisioner,
    size: u64,
    ctx: &SuiteCtx,
    probes: &[Resolution],
    drivers: &Drivers,
) -> Result<FsdaxSuite> {
    let rounds = ctx.rounds;
    let mut results = Vec::new();
    for kind in FsKind::ALL {
        ctx.check_interrupted("namespace restored, no results written")?;
        eprintln!("foliobench: fsdax: {} -o dax", kind.name());
        results.push(measure(prov, kind, size, &rounds, probes, drivers)?);
    }
    let checks = fault_checks(&results, size);
    Ok(FsdaxSuite {
        size,
        repeat: rounds.min,
        method: METHOD.into(),
        results,
        checks,
    })
}

fn measure(
    prov: &Provisioner,
    kind: FsKind,
    size: u64,
    rounds: &Rounds,
    probes: &[Resolution],
    drivers: &Drivers,
) -> Result<FsdaxResult> {
    let dax = match DaxFile::on_fresh_namespace(prov, kind, size)? {
        Ok(dax) => dax,
        Err(reason) => return Ok(skipped(kind, reason)),
    };
    let (aligned, first_write_ns) = dax.first_write()?;
    let fault_ns = dax.timed_fault_ins(rounds)?;
    let traced = dax.traced_round(probes, drivers)?;
    let misaligned_faults = dax.misaligned_faults(probes)?;
    let perf = dax.perf_round()?;
    let layout = dax.layout.clone();
    drop(dax);
    let mut r = FsdaxResult {
        fs: kind.name().into(),
        outcome: Outcome::Measured,
        setup: kind.describe(),
        mapping_aligned: aligned,
        file_pmd_pieces: layout.as_ref().ok().copied(),
        first_write_ns,
        fault_ns,
        faults: traced.faults,
        traced_fault_ns: Some(traced.fault_ns),
        misaligned_faults,
        pages: traced.pages.as_ref().ok().cloned(),
        smaps: traced.smaps,
        pins: traced.pins,
        perf: Some(perf),
    };
    if let Err(e) = traced.pages {
        r.setup.push_str(&format!("; page facts not read: {e}"));
    }
    if let Err(e) = layout {
        r.setup.push_str(&format!("; extents not read: {e}"));
    }
    Ok(r)
}

/// The test file on a dax filesystem of its own. Fields drop in order: the file is closed
/// before the filesystem is unmounted.
struct DaxFile {
    file: File,
    _fs: DaxFs,
    size: u64,
    /// 2 MiB pieces in 2 MiB-aligned extents (FIEMAP), or why it could not be read.
    layout: Result<u64, String>,
}

/// What the traced round saw of its mapping.
struct Traced {
    faults: Vec<ProbeStats>,
    /// The traced fault-in's own time: the probe effect.
    fault_ns: u64,
    pages: Result<PageFacts, String>,
    smaps: Option<SmapsFacts>,
    pins: Vec<PinTry>,
}

impl DaxFile {
    /// A `size` file on a `kind` filesystem made on the namespace, made fsdax afresh so that
    /// nothing of another filesystem is left. The inner error is why the row is skipped.
    fn on_fresh_namespace(
        prov: &Provisioner,
        kind: FsKind,
        size: u64,
    ) -> Result<Result<DaxFile, String>> {
        let applied = prov.apply(Geometry::Fsdax { map: Map::Mem })?;
        if let Some(u) = applied.usable_size().filter(|u| *u <= size) {
            return Ok(Err(format!(
                "the namespace offers {} MiB, not more than --size {}",
                u >> 20,
                fmt_size(size)
            )));
        }
        let dev = applied
            .block_device()
            .ok_or_else(|| failed("ndctl reported no block device"))?;
        let fs = match DaxFs::create(std::path::Path::new(&dev), kind) {
            Ok(fs) => fs,
            Err(e) => return Ok(Err(e)),
        };
        let file = fs.file(size).map_err(failed)?;
        // The layout is read before anything is timed (fallocate decided it).
        let layout = fsdax::extents(&file).map(|e| fsdax::pmd_aligned_pieces(&e, size));
        Ok(Ok(DaxFile {
            file,
            _fs: fs,
            size,
            layout,
        }))
    }

    /// A fresh MAP_SHARED mapping of the whole file, `offset` bytes past 2 MiB alignment.
    fn map_at(&self, offset: usize) -> Result<Mapping> {
        let f = self.file.try_clone()?;
        Ok(Mapping::shared_aligned(
            f,
            self.size as usize,
            PMD as usize,
            offset,
        )?)
    }

    fn map(&self) -> Result<Mapping> {
        self.map_at(0)
    }

    /// The first write of every page (allocating the file's blocks), timed, on a first
    /// mapping; and whether that mapping came out 2 MiB-aligned.
    fn first_write(&self) -> Result<(bool, u64)> {
        let first = self.map()?;
        let aligned = first.addr() % PMD == 0;
        let first_write = first.write_each(PAGE);
        drop(first);
        Ok((aligned, first_write.as_nanos() as u64))
    }

    /// One untimed warm-up read fault-in, then the timed ones (as many as `rounds` asks for
    /// their precision), each on a fresh mapping.
    fn timed_fault_ins(&self, rounds: &Rounds) -> Result<Vec<u64>> {
        self.map()?.read_each(PAGE); // warm-up
        let mut fault_ns = Vec::with_capacity(rounds.min);
        while rounds.want_more_ns(fault_ns.len(), &[&fault_ns]) {
            let m = self.map()?;
            fault_ns.push(m.read_each(PAGE).as_nanos() as u64);
        }
        Ok(fault_ns)
    }

    /// The traced round: the same fault-in with the fault tracepoints, then the mapping as
    /// the kernel reports it, then the pins.
    fn traced_round(&self, probes: &[Resolution], drivers: &Drivers) -> Result<Traced> {
        let m = self.map()?;
        let (faults, took) = count_faults(probes, &mut || m.read_each(PAGE))?;
        let pages = pagemap::page_facts(m.addr(), self.size);
        let smaps = pagemap::own_smaps(m.addr());
        let pins = try_pins(&m, drivers, false);
        drop(m);
        Ok(Traced {
            faults,
            fault_ns: took.as_nanos() as u64,
            pages,
            smaps,
            pins,
        })
    }

    /// The perf witness: a read fault-in of a fresh aligned mapping, counted by perf alone;
    /// the user faults counted in the mapping's addresses only, as the process may fault
    /// elsewhere meanwhile (its own text, paged in from the host's share).
    fn perf_round(&self) -> Result<PerfCounts> {
        let m = self.map()?;
        let mine = [perf::Filtered::user_faults_in(m.addr(), self.size)];
        let (_, counts) = perf::count(&PERF_TRACEPOINTS, &mine, || m.read_each(PAGE));
        Ok(counts)
    }

    /// The fault tracepoints of a read fault-in of a mapping 4 KiB off 2 MiB alignment.
    fn misaligned_faults(&self, probes: &[Resolution]) -> Result<Vec<ProbeStats>> {
        let m = self.map_at(PAGE)?;
        let (faults, _) = count_faults(probes, &mut || m.read_each(PAGE))?;
        drop(m);
        Ok(faults)
    }
}

/// The fault tracepoints' counts (for this process) around `work`; empty when they cannot
/// be traced here.
fn count_faults(
    probes: &[Resolution],
    work: &mut dyn FnMut() -> Duration,
) -> Result<(Vec<ProbeStats>, Duration)> {
    if !any_traceable(probes) {
        return Ok((vec![], work()));
    }
    let (took, stats, _) = tracer::whole(&counting(probes, &[]), &Filter::this_process(), work)?;
    Ok((stats, took))
}

/// The PFN-map row: the safest PCI memory BAR mapped read-only (never accessed), what the
/// kernel reports for its pfns, nr_memmap_pages around it, and each pin tried once.
pub fn pfnmap_row(drivers: &Drivers) -> PfnmapResult {
    let before = system::vmstat("nr_memmap_pages");
    let mut row = PfnmapResult {
        outcome: Outcome::Skipped {
            reason: String::new(),
        },
        resource: String::new(),
        device: String::new(),
        bytes: 0,
        prefetchable: false,
        iomem: vec![],
        pagemap_present: None,
        pages: None,
        smaps: None,
        nr_memmap_pages_delta: None,
        pins: vec![],
        tried: vec![],
    };
    let bars = pfnmap::bars();
    if bars.is_empty() {
        row.outcome = Outcome::Skipped {
            reason: "no PCI memory BAR on this machine (/sys/bus/pci/devices/*/resource)".into(),
        };
        return row;
    }
    let (bar, m, tried) = match pfnmap::map_first(&bars) {
        Ok(x) => x,
        Err(tried) => {
            row.outcome = Outcome::Skipped {
                reason: format!("no PCI memory BAR could be mapped: {}", tried.join("; ")),
            };
            row.tried = tried;
            return row;
        }
    };
    row.tried = tried;
    row.resource = pfnmap::short_name(&bar.resource);
    row.device = bar.device.clone();
    row.prefetchable = bar.prefetchable;
    row.bytes = m.len() as u64;
    let iomem = std::fs::read_to_string("/proc/iomem").unwrap_or_default();
    row.iomem = pagemap::iomem_owners(&iomem, bar.start, bar.start + row.bytes - 1);
    row.pagemap_present = pagemap::pfns(m.addr(), row.bytes)
        .ok()
        .map(|v| v.iter().flatten().count() as u64);
    // pagemap hides VM_PFNMAP pfns, so the BAR's own physical pages are looked up.
    let pfns: Vec<Option<u64>> = (bar.start / 4096..(bar.start + row.bytes) / 4096)
        .map(Some)
        .collect();
    match pagemap::pfn_facts(&pfns) {
        Ok(p) => row.pages = Some(p),
        Err(e) => row.tried.push(format!("page facts not read: {e}")),
    }
    row.smaps = pagemap::own_smaps(m.addr());
    row.pins = try_pins(&m, drivers, true);
    drop(m);
    row.nr_memmap_pages_delta = before
        .zip(system::vmstat("nr_memmap_pages"))
        .map(|(b, a)| a - b);
    row.outcome = Outcome::Measured;
    row
}
