//! The pin suite: pin and unpin time, kernel pin latencies and refcount grabs per pinned
//! page, per memory (devdax geometries, fsdax, anonymous) and pin driver. Each cell: one
//! untimed warm-up round, the timed rounds with nothing attached, then one traced round
//! for the pin functions' latencies and another for the refcount grabs (apart, so that the
//! per-page grab probes do not inflate the latencies; neither touches the timings). The
//! drivers of one memory run their timed rounds first, then share each probe set's one
//! attachment for their traced rounds. Every pin and unpin runs as a SCHED_FIFO task
//! (`crate::unpreempted`): no ordinary task preempts it inside its timing.

use std::fs::{File, OpenOptions};

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, any_traceable, counting, with_sampled_stacks, Filter};
use foliobench_reports::facts::Group;
use foliobench_reports::geometry::Geometry;
use foliobench_reports::hugetlb::size_name;
use foliobench_reports::outcome::Outcome;
use foliobench_reports::pages::PageFacts;
use foliobench_reports::pin::{
    foll_pin_checks, grab_checks, order_checks, refs_checks, struct_page_checks, FollPins,
    GrabFunction, Grabs, PinDriver, PinMemory, PinResult, PinSample, PinSuite, Prepared,
    PIN_PROBES, RELEASES,
};
use foliobench_reports::precision::Rounds;
use foliobench_reports::trace::ProbeStats;
use foliobench_reports::units::fmt_size;

use super::{Result, SuiteCtx};
use crate::blockdev::SourceDevice;
use crate::fsdax::{DaxFs, FsKind};
use crate::hugetlb::{self, HugetlbControls};
use crate::mapping::{Mapping, WorkloadError, PAGE};
use crate::namespace::Provisioner;
use crate::pagemap;
use crate::pin::{Driver, FixedBuffers, GupTestCmd, PinTiming};
use crate::system;

pub const WARMUP: &str = "each mapping is faulted in for writing before anything is timed \
    (MADV_POPULATE_WRITE), then each driver runs one untimed pin+unpin round (where a driver \
    writes the memory, as O_DIRECT reads do, the host backs never-used emulated pmem then)";

/// What the pin suite will measure.
pub struct Plan {
    pub memories: Vec<PinMemory>,
    pub drivers: Vec<PinDriver>,
    pub size: u64,
    /// Memories mapped and their page facts read, but not pinned: every driver's row is
    /// skipped with the reason.
    pub mapped_only: Option<MappedOnly>,
}

/// Memories a plan maps but does not pin, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedOnly {
    pub memories: Vec<PinMemory>,
    pub why: String,
}

impl Plan {
    fn why_mapped_only(&self, m: PinMemory) -> Option<&str> {
        let o = self.mapped_only.as_ref()?;
        o.memories.contains(&m).then_some(o.why.as_str())
    }

    pub fn wants_dax(&self) -> bool {
        self.memories.iter().any(|m| m.geometry().is_some())
    }

    pub fn describe(&self, rounds: &Rounds) -> String {
        let mapped_only = match &self.mapped_only {
            Some(o) => format!(
                "; mapped, not pinned: {} ({})",
                o.memories
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                o.why
            ),
            None => String::new(),
        };
        format!(
            "{} x {} ({} per round, {} each{mapped_only})",
            self.memories
                .iter()
                .filter(|m| self.why_mapped_only(**m).is_none())
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.drivers
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(", "),
            fmt_size(self.size),
            rounds.describe()
        )
    }
}

/// The O_DIRECT source, opened. Fields drop in order: the descriptor is closed before the
/// device is removed (an open block device would keep null_blk from unloading).
pub struct OdirectSource {
    file: File,
    device: SourceDevice,
}

/// The drivers' resources, set up once for the run; each is the open file or why not.
pub struct Drivers {
    io_uring: Result<FixedBuffers, String>,
    odirect: Result<OdirectSource, String>,
    gup_test: Result<File, String>,
    /// Whether AF_XDP sockets can be made here (CONFIG_XDP_SOCKETS, a permitted socket).
    xdp_umem: Result<(), String>,
}

impl Drivers {
    /// The O_DIRECT device opened for writing (the pin of a read-only source), or why not.
    pub fn odirect_writer(&self) -> Result<File, String> {
        self.odirect
            .as_ref()
            .map_err(String::clone)
            .and_then(|o| o.device.open_write())
    }

    pub fn open(plan: &Plan, notes: &mut Vec<String>) -> Drivers {
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
        let xdp_umem = if wants(PinDriver::XdpUmem) {
            crate::pin::xdp_sockets()
        } else {
            Err("not selected".into())
        };
        Drivers {
            io_uring,
            odirect,
            gup_test,
            xdp_umem,
        }
    }

    pub fn get(&self, d: PinDriver) -> Result<Driver<'_>, String> {
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
            // A socket per round; a refused registration is the row's outcome.
            PinDriver::XdpUmem => self.xdp_umem.clone().map(|()| Driver::XdpUmem),
        }
    }
}

/// A memory mapped for pinning, with what keeps it alive (dropped in reverse: the mapping,
/// then the dax filesystem it may live on).
struct Ready {
    mapping: Mapping,
    _fs: Option<DaxFs>,
    /// The HugeTLB pool reserved for the mapping, emptied after it.
    _pool: Option<HugetlbControls>,
    info: Prepared,
}

/// A memory mapped, before it is faulted in.
struct Mapped {
    mapping: Mapping,
    fs: Option<DaxFs>,
    pool: Option<HugetlbControls>,
    /// What the dax device offers, for dax memories.
    usable: Option<u64>,
    /// What was mapped, for the results.
    what: String,
    /// The dax device, for devdax: its physical range stands in for pagemap where needed.
    dax_device: Option<String>,
}

impl Mapped {
    fn plain(mapping: Mapping, what: String) -> Mapped {
        Mapped {
            mapping,
            fs: None,
            pool: None,
            usable: None,
            what,
            dax_device: None,
        }
    }
}

/// `size` bytes of `kb` HugeTLB pages, from a pool reserved for the row (put back as found
/// when the row is done).
fn map_hugetlb(kb: u64, size: u64) -> Result<Mapped, String> {
    let want = size / (kb * 1024);
    let pool = HugetlbControls::reserve(kb, want, "the row")?;
    let what = format!(
        "private HugeTLB memory (MAP_HUGETLB), {want} pages of {} from a pool reserved for the \
         row; vm.hugetlb_optimize_vmemmap {}",
        size_name(kb),
        match hugetlb::hvo() {
            Some(true) => "on",
            Some(false) => "off",
            None => "absent",
        }
    );
    let mapping = Mapping::hugetlb(size as usize, kb).map_err(|e| e.to_string())?;
    Ok(Mapped {
        pool: Some(pool),
        ..Mapped::plain(mapping, what)
    })
}

/// Configures the namespace as `g` and maps `size` bytes of it.
fn map_dax(g: Geometry, size: u64, prov: Option<&Provisioner>) -> Result<Mapped, String> {
    let len = size as usize;
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
            Ok(Mapped {
                usable,
                dax_device: Some(path.clone()),
                ..Mapped::plain(mapping, format!("{path} (MAP_SHARED)"))
            })
        }
        Geometry::Fsdax { .. } => {
            let dev = applied
                .block_device()
                .ok_or("ndctl reported no block device")?;
            let fs = DaxFs::create(std::path::Path::new(&dev), FsKind::Ext4)?;
            let f = fs.file(size)?;
            let mapping = Mapping::shared(f, len).map_err(|e| e.to_string())?;
            let what = format!("a file on ext4 -o dax on {dev} (MAP_SHARED)");
            Ok(Mapped {
                usable,
                fs: Some(fs),
                ..Mapped::plain(mapping, what)
            })
        }
        Geometry::Pfnmap => Err("pfnmap has no struct pages to pin".into()),
    }
}

/// Maps `size` bytes of `m` (configuring the namespace if it is dax) and faults them in.
fn prepare(m: PinMemory, size: u64, prov: Option<&Provisioner>) -> Result<Ready, String> {
    let Mapped {
        mapping,
        fs,
        pool,
        usable,
        what: mapped,
        dax_device,
    } = match m {
        PinMemory::Hugetlb { kb } => map_hugetlb(kb, size)?,
        PinMemory::Anon { thp } => Mapped::plain(
            Mapping::anonymous(size as usize, thp).map_err(|e| e.to_string())?,
            format!(
                "anonymous memory, {}",
                if thp {
                    "MADV_HUGEPAGE"
                } else {
                    "MADV_NOHUGEPAGE"
                }
            ),
        ),
        PinMemory::Dax(g) => map_dax(g, size, prov)?,
    };
    let touch = mapping.populate();
    let thp_bytes = match m {
        PinMemory::Anon { .. } => mapping.thp_bytes(),
        PinMemory::Dax(_) | PinMemory::Hugetlb { .. } => None,
    };
    let (pages, pages_error) = page_facts_of(m, &mapping, size, dax_device.as_deref());
    Ok(Ready {
        mapping,
        _fs: fs,
        _pool: pool,
        info: Prepared {
            memory: m,
            touch_ns: Some(touch.as_nanos() as u64),
            usable_size: usable,
            thp_bytes,
            mapped,
            pages,
            pages_error,
        },
    })
}

/// The page facts of a pinned memory, or why not: for dax memory the struct pages behind
/// its pfns, for anonymous and HugeTLB memory where the allocator placed it (not the same
/// in every boot).
fn page_facts_of(
    m: PinMemory,
    mapping: &Mapping,
    size: u64,
    dax_device: Option<&str>,
) -> (Option<PageFacts>, Option<String>) {
    match (pagemap::page_facts(mapping.addr(), size), m) {
        (Ok(f), _) => (Some(f), None),
        // 6.12's pagemap gives no pfn for a PUD-mapped (1G) devdax page: the device's
        // own physical range says which pfns the mapping's first bytes are.
        (Err(e), PinMemory::Dax(Geometry::Devdax { .. })) => {
            match dax_device.map(|d| dax_range_facts(d, size)) {
                Some(Ok(mut f)) => {
                    f.pfn_source = Some(format!(
                        "{}; /proc/self/pagemap: {e}",
                        f.pfn_source.unwrap_or_default()
                    ));
                    (Some(f), None)
                }
                Some(Err(e2)) => (None, Some(format!("{e}; and {e2}"))),
                None => (None, Some(e)),
            }
        }
        (Err(e), _) => (None, Some(e)),
    }
}

/// The page facts of a devdax device's first `len` bytes (the mapping, from offset 0) by
/// its physical range (`/sys/bus/dax/devices/<dax>/resource`): a namespace's dax device is
/// one range.
fn dax_range_facts(dev: &str, len: u64) -> Result<PageFacts, String> {
    let name = dev.trim_start_matches("/dev/");
    let path = format!("/sys/bus/dax/devices/{name}/resource");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let start = u64::from_str_radix(text.trim().trim_start_matches("0x"), 16)
        .map_err(|e| format!("{path}: {:?}: {e}", text.trim()))?;
    let size = std::fs::read_to_string(format!("/sys/bus/dax/devices/{name}/size"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("no size for {name}"))?;
    let first = start / PAGE as u64;
    let pfns: Vec<Option<u64>> = (first..first + size.min(len) / PAGE as u64)
        .map(Some)
        .collect();
    let mut f = pagemap::pfn_facts(&pfns)?;
    f.pfn_source = Some(format!(
        "pfns from the dax device's physical range ({path}: {start:#x}, {} MiB)",
        size >> 20
    ));
    Ok(f)
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
        traced_samples: vec![],
        kernel_rounds: 1,
    }
}

impl super::SuiteRun for Plan {
    type Results = PinSuite;
    const SUITE: foliobench_reports::suite::Suite = foliobench_reports::suite::Suite::Pin;
    /// The latency probes (group pin) and the grab probes (group grab) go to two traced
    /// rounds.
    fn run(
        &self,
        ctx: &SuiteCtx,
        probes: &[Resolution],
        notes: &mut Vec<String>,
    ) -> Result<PinSuite> {
        let (grab, latency): (Vec<Resolution>, Vec<Resolution>) = probes
            .iter()
            .cloned()
            .partition(|r| r.group == foliobench_reports::facts::Group::Grab);
        run(self, ctx, &latency, &grab, notes)
    }
}

/// Runs the pin suite: every memory, prepared once, then every driver on it. `latency` and
/// `grab` are the probes of its two traced rounds.
pub fn run(
    plan: &Plan,
    ctx: &SuiteCtx,
    latency: &[Resolution],
    grab: &[Resolution],
    notes: &mut Vec<String>,
) -> Result<PinSuite> {
    let drivers = Drivers::open(plan, notes);
    let mut suite = empty_suite(plan, ctx.rounds.min, &drivers);
    let mut not_traced: Vec<String> = Vec::new();
    let pin_run = PinRun {
        plan,
        ctx,
        drivers: &drivers,
        latency,
        grab,
    };
    for &m in &plan.memories {
        pin_run.memory(m, &mut suite, &mut not_traced)?;
    }
    notes.extend(
        not_traced
            .into_iter()
            .map(|n| format!("pin probe not traced: {n}")),
    );
    suite.checks = order_checks(&suite.results);
    suite.checks.extend(grab_checks(&suite.results));
    suite.checks.extend(foll_pin_checks(&suite.results));
    suite.checks.extend(refs_checks(&suite.results));
    suite.checks.extend(struct_page_checks(&suite.prepared));
    Ok(suite)
}

/// The suite's header, before any row.
fn empty_suite(plan: &Plan, repeat: usize, drivers: &Drivers) -> PinSuite {
    PinSuite {
        size: plan.size,
        repeat,
        warmup: WARMUP.into(),
        odirect_device: drivers
            .odirect
            .as_ref()
            .ok()
            .map(|o| o.device.description.clone()),
        ..Default::default()
    }
}

/// What every memory of one pin run is measured with.
struct PinRun<'a> {
    plan: &'a Plan,
    ctx: &'a SuiteCtx<'a>,
    drivers: &'a Drivers,
    latency: &'a [Resolution],
    grab: &'a [Resolution],
}

impl PinRun<'_> {
    /// One memory: mapped (on the namespace configured for it, if dax), then every driver
    /// on it; unmapped (and its filesystem unmounted) on return.
    fn memory(
        &self,
        m: PinMemory,
        suite: &mut PinSuite,
        not_traced: &mut Vec<String>,
    ) -> Result<()> {
        let (plan, ctx) = (self.plan, self.ctx);
        if m.geometry().is_some() && ctx.prov.is_none() {
            let see_note = if ctx.no_namespace.is_some() {
                " (see the note)"
            } else {
                ""
            };
            self.skip_memory(suite, m, &format!("no namespace granted{see_note}"));
            return Ok(());
        }
        eprintln!("foliobench: pin: preparing {m}");
        let prepared = match prepare(m, plan.size, ctx.prov) {
            Ok(p) => p,
            Err(why) => {
                self.skip_memory(suite, m, &format!("could not map {m}: {why}"));
                return Ok(());
            }
        };
        if let Some(why) = plan.why_mapped_only(m) {
            eprintln!("foliobench: pin: {m} mapped, not pinned: {why}");
            self.skip_memory(suite, m, &format!("not pinned: {why}"));
            suite.prepared.push(prepared.info);
            return Ok(());
        }
        // Every driver's warm-up and timed rounds first, nothing attached; then each probe
        // set attached once for every driver's traced rounds. Under emulation attaching and
        // detaching a set took 0.7-2.3 s, more than the traced rounds it served.
        let mut cells: Vec<(PinResult, Option<(Driver, Measured)>)> = Vec::new();
        for &d in &plan.drivers {
            let r = row(m, d, plan.size, Outcome::Measured);
            let driver = match self.drivers.get(d) {
                Ok(x) => x,
                Err(why) => {
                    cells.push((row(m, d, plan.size, Outcome::Skipped { reason: why }), None));
                    continue;
                }
            };
            eprintln!("foliobench: pin: {m} {d}");
            match untraced(&prepared.mapping, &driver, &ctx.rounds) {
                Ok(x) => cells.push((r, Some((driver, x)))),
                Err(e) => {
                    let mut r = r;
                    failed(&mut r, e);
                    cells.push((r, None));
                }
            }
            ctx.check_interrupted("namespace restored, no results written")?;
        }
        traced_phases(
            m,
            &prepared.mapping,
            &mut cells,
            (&ctx.rounds, self.latency, self.grab),
            not_traced,
        );
        ctx.check_interrupted("namespace restored, no results written")?;
        for (mut r, x) in cells {
            if let Some((_, x)) = x {
                fill(&mut r, x);
            }
            suite.results.push(r);
        }
        suite.prepared.push(prepared.info);
        Ok(())
    }

    /// A skipped row for every driver on `m`.
    fn skip_memory(&self, suite: &mut PinSuite, m: PinMemory, reason: &str) {
        for &d in &self.plan.drivers {
            suite.results.push(row(
                m,
                d,
                self.plan.size,
                Outcome::Skipped {
                    reason: reason.to_string(),
                },
            ));
        }
    }
}

/// The row of a cell whose rounds failed: a kernel refusal is its outcome, anything else
/// a skip with the error.
fn failed(r: &mut PinResult, e: WorkloadError) {
    r.outcome = match e {
        e @ WorkloadError::Refused { .. } => Outcome::Refused {
            errno: e.refusal().unwrap_or_default(),
            detail: e.to_string(),
        },
        e => Outcome::Skipped {
            reason: format!("failed: {e}"),
        },
    };
}

/// A measured cell's row from what its rounds gave.
fn fill(r: &mut PinResult, x: Measured) {
    r.warmup_rounds = x.warmup_rounds;
    r.pages = x.pages;
    r.samples = x.samples;
    r.kernel = x.kernel;
    r.grabs = x.grabs;
    r.traced_samples = x.traced_samples.iter().map(sample).collect();
    r.kernel_rounds = x.kernel_rounds.max(1);
}

/// What one cell gave.
#[derive(Debug, Default)]
pub struct Measured {
    pub warmup_rounds: u32,
    pub pages: u64,
    pub samples: Vec<PinSample>,
    pub kernel: Vec<ProbeStats>,
    pub grabs: Option<Grabs>,
    /// The traced rounds' own times: the probe effect.
    pub traced_samples: Vec<PinTiming>,
    /// Rounds the latency probes stayed attached for (their counts are that many rounds').
    pub kernel_rounds: u32,
}

/// The pin and the unpin times of the rounds so far (a driver without unpin times: none).
fn pin_unpin_ns(samples: &[PinSample]) -> [Vec<u64>; 2] {
    [
        samples.iter().map(|s| s.pin_ns).collect(),
        samples.iter().filter_map(|s| s.unpin_ns).collect(),
    ]
}

/// A round's times as the results record them.
fn sample(t: &PinTiming) -> PinSample {
    PinSample {
        pin_ns: t.pin.as_nanos() as u64,
        unpin_ns: t.unpin.map(|u| u.as_nanos() as u64),
    }
}

/// Runs `d` on `m`: warm-up, then the timed rounds with nothing attached (as many as
/// `rounds` asks for the pin and unpin times' precision). A kernel refusal in the warm-up
/// round is returned as the error.
fn untraced(m: &Mapping, d: &Driver, rounds: &Rounds) -> Result<Measured, WorkloadError> {
    let mut out = Measured::default();
    let warm = d.round(m)?;
    out.warmup_rounds = 1;
    out.pages = warm.pages;
    while rounds.want_more_ns(out.samples.len(), &pin_unpin_ns(&out.samples)) {
        out.samples.push(sample(&d.round(m)?));
    }
    Ok(out)
}

/// The traced rounds of every cell still measured: the pin functions' latencies from
/// several rounds (so that the percentiles rest on more than one call per cell), then the
/// grabs and releases counted, not timed, in one more (one is made per folio or per page:
/// apart, they do not inflate the latencies). A cell whose traced round fails gets that
/// outcome.
fn traced_phases(
    what: PinMemory,
    m: &Mapping,
    cells: &mut [(PinResult, Option<(Driver, Measured)>)],
    (rounds, latency, grab): (&Rounds, &[Resolution], &[Resolution]),
    not_traced: &mut Vec<String>,
) {
    let latency_rounds = rounds.min.clamp(1, LATENCY_ROUNDS);
    eprintln!("foliobench: pin: {what} traced rounds: pin latencies, {latency_rounds} per driver");
    for (x, ts, stats, _) in traced(m, cells, latency, (latency_rounds, false), not_traced) {
        x.kernel = stats;
        x.kernel_rounds = ts.len() as u32;
        x.traced_samples.extend(ts);
    }
    // Counted per kernel stack too: which call paths took (and dropped) the references.
    eprintln!(
        "foliobench: pin: {what} traced rounds: grabs and releases counted (kernel stacks of 1 call in {STACKS_EVERY}), 1 per driver"
    );
    let grab = with_sampled_stacks(&counting(grab, &[]), STACKS_EVERY);
    for (x, ts, stats, foll_pin) in traced(m, cells, &grab, (1, true), not_traced) {
        let per_round = gup_calls(&x.kernel).map(|c| c / u64::from(x.kernel_rounds.max(1)));
        x.grabs = grabs(ts[0].pages, &stats, STACKS_EVERY).map(|g| Grabs {
            gup_calls: per_round,
            foll_pin,
            ..g
        });
        x.traced_samples.extend(ts);
    }
    eprintln!("foliobench: pin: {what} pins held, read from /proc/vmstat: 1 round per driver that holds them");
    held_pins(m, cells, not_traced);
}

/// For each cell whose driver holds its pins across calls (io_uring), one more untimed
/// round that reads the kernel's pin counters while they are held, into its `foll_pin`.
fn held_pins(
    m: &Mapping,
    cells: &mut [(PinResult, Option<(Driver, Measured)>)],
    not_traced: &mut Vec<String>,
) {
    for (_, x) in cells.iter_mut() {
        let Some((d, measured)) = x.as_mut() else {
            continue;
        };
        let Some(f) = measured.grabs.as_mut().and_then(|g| g.foll_pin.as_mut()) else {
            continue;
        };
        match d.held_pins(m) {
            Some(Ok(h)) => f.held = Some(h),
            Some(Err(e)) => not_traced.push(format!("pins held (vmstat): {e}")),
            None => {}
        }
    }
}

/// `rounds` rounds of every measured cell's driver with `probes` attached once for all of
/// them, to this process (pins, and with null_blk's inline completion also the unpins, run
/// in it); each driver's rounds are a span of their own. Gives each cell that ran its
/// rounds' timings and counts, and with `witness` the kernel's pin counters over them
/// (`/proc/vmstat`, read just outside the probes' span); a cell whose rounds failed takes
/// that outcome. Nothing when nothing could be attached.
fn traced<'c>(
    m: &Mapping,
    cells: &'c mut [(PinResult, Option<(Driver, Measured)>)],
    probes: &[Resolution],
    (rounds, witness): (usize, bool),
    not_traced: &mut Vec<String>,
) -> Vec<TracedCell<'c>> {
    if !any_traceable(probes) || cells.iter().all(|(_, x)| x.is_none()) {
        return vec![];
    }
    let work = |hook: &mut dyn FnMut(usize, bool)| {
        cells
            .iter()
            .enumerate()
            .filter_map(|(i, (_, x))| Some((i, &x.as_ref()?.0)))
            .map(|(i, d)| {
                let pins = || witness.then(system::foll_pins).flatten();
                let before = pins();
                hook(i, true);
                let out = (0..rounds)
                    .map(|_| d.round(m))
                    .collect::<Result<Vec<_>, _>>();
                hook(i, false);
                let pins = before.zip(pins()).map(|(b, a)| FollPins {
                    acquired: a.0 - b.0,
                    released: a.1 - b.1,
                    held: None,
                });
                (i, out.map(|o| (o, pins)))
            })
            .collect::<Vec<_>>()
    };
    // Once per reason: every memory tries the same probes.
    let mut note = |n: String| {
        if !not_traced.contains(&n) {
            not_traced.push(n);
        }
    };
    let (outs, t) = match tracer::around(probes, &Filter::this_process(), work) {
        Ok(x) => x,
        Err(e) => {
            note(format!("probes: {e:#}"));
            return vec![];
        }
    };
    for f in &t.failed {
        note(format!("{}: {}", f.probe, f.reason));
    }
    let attached = t.attached > 0;
    let mut spans: Vec<Option<Vec<ProbeStats>>> = vec![None; cells.len()];
    for (i, s) in t.spans {
        spans[i] = Some(s);
    }
    let mut by_cell: Vec<Option<Result<RoundsOut, WorkloadError>>> =
        (0..cells.len()).map(|_| None).collect();
    for (i, o) in outs {
        by_cell[i] = Some(o);
    }
    let mut got = Vec::new();
    for (((r, x), o), s) in cells.iter_mut().zip(by_cell).zip(spans) {
        match o {
            Some(Ok((ts, pins))) if attached => {
                if let Some((_, measured)) = x.as_mut() {
                    got.push((measured, ts, s.unwrap_or_default(), pins));
                }
            }
            Some(Err(e)) => {
                failed(r, e);
                *x = None;
            }
            _ => {}
        }
    }
    got
}

/// A cell's traced rounds: their times and the kernel's pin counters over them.
type RoundsOut = (Vec<PinTiming>, Option<FollPins>);

/// What a traced phase gives a cell: its rounds' times, the probes' counts and the pin
/// counters.
type TracedCell<'c> = (
    &'c mut Measured,
    Vec<PinTiming>,
    Vec<ProbeStats>,
    Option<FollPins>,
);

/// The grab round takes the kernel stack of one grab or release in this many. Every call's
/// (one per page) made it 85 % of its memory's pin time: 1 GiB of devdax 4K pages, io_uring
/// and O_DIRECT, took 14.0 s of guest time against 2.2 s with no stacks (6.12.118, the
/// instruction clock). 1 in 64 is 4096 stacks of a 1 GiB round of 4K pages, 8 of one of 2M
/// folios; the first call's is always taken.
const STACKS_EVERY: u32 = 64;

fn per_function(stats: &[ProbeStats], prefix: &str, stacks_every: u32) -> Vec<GrabFunction> {
    stats
        .iter()
        .filter(|s| s.group == Group::Grab && s.probe.starts_with(prefix))
        .map(|s| GrabFunction {
            function: s.function.clone(),
            calls: s.calls,
            // A function without a count argument takes or drops one reference per call.
            refs: if s.arg_name.is_some() {
                s.arg_sum
            } else {
                s.calls
            },
            refs_values: s.arg_values.clone(),
            stacks: s.stacks.clone(),
            stacks_every,
        })
        .collect()
}

/// Latency rounds per cell at most (fewer when --repeat is smaller).
const LATENCY_ROUNDS: usize = 3;

/// GUP calls in a traced round; `None` when no entry point was traced.
fn gup_calls(stats: &[ProbeStats]) -> Option<u64> {
    let entries: Vec<&ProbeStats> = stats
        .iter()
        // The GUP entry points every driver pins through (the fast ones fall back to the
        // slow path inside the same call).
        .filter(|p| PIN_PROBES.contains(&p.probe.as_str()))
        .collect();
    (!entries.is_empty()).then(|| entries.iter().map(|p| p.calls).sum())
}

/// The grab probes' calls and `refs` summed over the round, and the per-folio releases.
pub fn grabs(pages: u64, stats: &[ProbeStats], stacks_every: u32) -> Option<Grabs> {
    let by_function = per_function(stats, "try_grab", stacks_every);
    if by_function.is_empty() {
        return None;
    }
    Some(Grabs {
        pages,
        calls: by_function.iter().map(|f| f.calls).sum(),
        refs: by_function.iter().map(|f| f.refs).sum(),
        by_function,
        releases: RELEASES
            .iter()
            .flat_map(|r| per_function(stats, r, stacks_every))
            .collect(),
        gup_calls: None,
        foll_pin: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foliobench_reports::facts::Flavour;

    fn stat(probe: &str, group: Group, calls: u64, values: Vec<(u64, u64)>) -> ProbeStats {
        ProbeStats {
            probe: probe.into(),
            group,
            function: probe.into(),
            flavour: Flavour::Fentry,
            calls,
            returns: calls,
            total_ns: 0,
            latency_log2: vec![],
            arg_name: Some("refs".into()),
            arg_log2: vec![],
            arg_sum: values.iter().map(|(v, n)| v * n).sum(),
            arg_values: values,
            arg_values_dropped: 0,
            stacks: vec![],
            outside_vmas: 0,
        }
    }

    /// Seen on 6.12, 2M devdax, long-term pin of 1 GiB: the slow path grabs 1 then 511.
    #[test]
    fn grabs_sum_the_grab_functions_only() {
        let s = vec![
            stat(
                "try_grab_folio",
                Group::Grab,
                1024,
                vec![(1, 512), (511, 512)],
            ),
            stat("try_grab_folio_fast", Group::Grab, 0, vec![]),
            stat("pin_user_pages_fast", Group::Pin, 1, vec![(262144, 1)]),
            stat("unpin_user_folio", Group::Grab, 512, vec![(512, 512)]),
        ];
        let g = grabs(262144, &s, 1).unwrap();
        assert_eq!((g.calls, g.refs), (1024, 262144));
        assert_eq!(g.per_page(), Some(1024.0 / 262144.0));
        assert_eq!(g.by_function.len(), 2);
        assert_eq!(g.release_calls(), 512);
        assert_eq!(g.releases[0].refs, 262144);
        assert!(grabs(1, &s[2..], 1).is_none());
    }
}
