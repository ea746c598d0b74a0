//! The fsdax suite's results (ext4 and xfs mounted `-o dax`: PMD against PTE faults, the
//! fault-in time, what the kernel says of the mapped pages, which pins succeed) and the
//! PFN-map row (device memory with no struct page); and their terminal tables.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::chart::{Chart, Series};
use crate::check::{render_checks, Check};
use crate::metric::{measured, ms, once, Better::*, MetricSpec, Metrics};
use crate::outcome::Outcome;
use crate::perf::PerfCounts;
use crate::pin::PinDriver;
use crate::stats::median_u64;
use crate::trace::ProbeStats;

/// `VM_FAULT_NOPAGE`: the fault installed the mapping itself.
pub const VM_FAULT_NOPAGE: u64 = 0x100;
/// `VM_FAULT_FALLBACK`: a PMD fault gave up; the kernel retries it with PTEs.
pub const VM_FAULT_FALLBACK: u64 = 0x800;

pub use crate::pages::PageFacts;

/// The mapping's own lines of /proc/self/smaps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmapsFacts {
    pub rss_kb: u64,
    /// File memory the kernel counts as PMD-mapped (a folio it knows of, mapped by a PMD).
    pub file_pmd_mapped_kb: u64,
    /// The VmFlags line (`mm`: VM_MIXEDMAP, `pf`: VM_PFNMAP, `io`: VM_IO, `hg`: VM_HUGEPAGE).
    pub vm_flags: String,
}

/// One pin kind tried once on the mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinTry {
    pub driver: PinDriver,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The pin's time where it succeeded, ns.
    pub pin_ns: Option<u64>,
}

fn pins_text(pins: &[PinTry]) -> String {
    pins.iter()
        .map(|p| {
            let o = match &p.outcome {
                Outcome::Measured => "pinned".to_string(),
                Outcome::Refused { errno, .. } => format!("refused {errno}"),
                Outcome::Skipped { reason } => format!("skipped ({reason})"),
            };
            format!("{} {o}", p.driver.name())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsdaxResult {
    /// ext4 or xfs.
    pub fs: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How the filesystem was made and mounted.
    pub setup: String,
    /// The file's mapping starts 2 MiB-aligned.
    pub mapping_aligned: bool,
    /// 2 MiB pieces of the file that lie each in one extent at a 2 MiB-aligned device
    /// offset (FIEMAP, read before timing): the layout a PMD fault needs. Fault-in times
    /// of two files compare the DAX fault paths only where both are whole.
    #[serde(default)]
    pub file_pmd_pieces: Option<u64>,
    /// The first write of every base page of the fresh file (allocating blocks), ns.
    pub first_write_ns: u64,
    /// Read fault-in of the whole mapping, one per timed round (a fresh mapping each), ns.
    pub fault_ns: Vec<u64>,
    /// The fault tracepoints in a separate traced round of the same read fault-in.
    pub faults: Vec<ProbeStats>,
    /// That traced fault-in's own time, ns: against `fault_ns`, the probe effect.
    #[serde(default)]
    pub traced_fault_ns: Option<u64>,
    /// The same, for a mapping of the file placed 4 KiB off 2 MiB alignment: the PTE path
    /// and the PMD fallback, measured beside the aligned case.
    #[serde(default)]
    pub misaligned_faults: Vec<ProbeStats>,
    pub pages: Option<PageFacts>,
    pub smaps: Option<SmapsFacts>,
    pub pins: Vec<PinTry>,
    /// The perf witness: one more read fault-in of a fresh aligned mapping, with perf
    /// counting page faults and the same fs_dax tracepoints (no BPF attached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf: Option<PerfCounts>,
}

/// The fs_dax tracepoints both witnesses count, as perf names them.
pub const PERF_TRACEPOINTS: [&str; 2] = ["fs_dax:dax_pmd_fault_done", "fs_dax:dax_pte_fault_done"];

/// The DAX fault tracepoints of one fault-in, read by their result flags.
pub struct Faults<'a>(pub &'a [ProbeStats]);

impl Faults<'_> {
    fn event(&self, id: &str) -> Option<&ProbeStats> {
        self.0.iter().find(|p| p.probe == id)
    }

    fn results_with(&self, id: &str, bit: u64) -> Option<u64> {
        let p = self.event(id)?;
        p.arg_name.as_ref()?;
        Some(
            p.arg_values
                .iter()
                .filter(|(v, _)| v & bit != 0)
                .map(|(_, c)| c)
                .sum(),
        )
    }

    /// PMD faults that ended (mapped or not).
    pub fn pmd_faults(&self) -> Option<u64> {
        self.event("dax_pmd_fault_done").map(|p| p.calls)
    }

    /// PMD faults that gave up for PTEs (result has VM_FAULT_FALLBACK).
    pub fn pmd_fallbacks(&self) -> Option<u64> {
        self.results_with("dax_pmd_fault_done", VM_FAULT_FALLBACK)
    }

    /// PMD faults that installed a PMD mapping (result has VM_FAULT_NOPAGE).
    pub fn pmd_mapped(&self) -> Option<u64> {
        self.results_with("dax_pmd_fault_done", VM_FAULT_NOPAGE)
    }

    pub fn pte_faults(&self) -> Option<u64> {
        self.event("dax_pte_fault_done").map(|p| p.calls)
    }

    /// How the faults mapped what they found, by the insert functions called: (probe,
    /// calls, what that maps), those traced on this kernel, called or not.
    pub fn inserts(&self) -> Vec<(&str, u64, &'static str)> {
        INSERTS
            .iter()
            .filter_map(|(id, what)| Some((*id, self.event(id)?.calls, *what)))
            .collect()
    }

    /// The calls of one insert function, where it was traced.
    pub fn insert_calls(&self, id: &str) -> Option<u64> {
        self.event(id).map(|p| p.calls)
    }
}

/// The fault path's insert functions (catalog probes) and what each maps.
pub const INSERTS: [(&str, &str); 4] = [
    ("vmf_insert_folio_pmd", "an order-9 folio by PMD"),
    ("vmf_insert_pfn_pmd", "a 2 MiB pfn range by PMD, no folio"),
    ("vmf_insert_page_mkwrite", "a base page's folio by PTE"),
    ("vmf_insert_mixed", "a pfn by PTE, no folio"),
];

impl FsdaxResult {
    /// The traced fault-in's time over the untraced median.
    pub fn probe_effect(&self) -> Option<crate::effect::Effect> {
        let t = self.traced_fault_ns? as f64;
        let untraced: Vec<f64> = self.fault_ns.iter().map(|&x| x as f64).collect();
        crate::effect::of(&[t], &untraced)
    }

    /// The faults of the traced fault-in of the 2 MiB-aligned mapping.
    pub fn aligned(&self) -> Faults<'_> {
        Faults(&self.faults)
    }

    /// The faults of a fault-in of a mapping 4 KiB off 2 MiB alignment (no PMD can map it).
    pub fn misaligned(&self) -> Faults<'_> {
        Faults(&self.misaligned_faults)
    }

    pub fn pmd_faults(&self) -> Option<u64> {
        self.aligned().pmd_faults()
    }

    pub fn pmd_fallbacks(&self) -> Option<u64> {
        self.aligned().pmd_fallbacks()
    }

    pub fn pmd_mapped(&self) -> Option<u64> {
        self.aligned().pmd_mapped()
    }

    pub fn pte_faults(&self) -> Option<u64> {
        self.aligned().pte_faults()
    }

    /// Median fault-in time per GiB, ns.
    /// Whether every 2 MiB piece of the file was laid out for a PMD (`None`: not read).
    pub fn layout_whole(&self, size: u64) -> Option<bool> {
        self.file_pmd_pieces.map(|p| p == size / (2 << 20))
    }

    pub fn fault_ns_per_gib(&self, size: u64) -> Option<f64> {
        let m = median_u64(&self.fault_ns)?;
        (size > 0).then(|| m as f64 * (1u64 << 30) as f64 / size as f64)
    }
}

/// A mapping of device memory that has no struct page: a PCI memory BAR, mapped read-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PfnmapResult {
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The sysfs resource file mapped, and what the device is.
    pub resource: String,
    pub device: String,
    pub bytes: u64,
    pub prefetchable: bool,
    /// What /proc/iomem says owns the mapped range, outermost first.
    pub iomem: Vec<String>,
    /// Pages /proc/self/pagemap shows present: 0, as its walk skips VM_PFNMAP mappings.
    pub pagemap_present: Option<u64>,
    /// kpageflags and kpagecount of the BAR's pfns (from its physical address in sysfs).
    pub pages: Option<PageFacts>,
    pub smaps: Option<SmapsFacts>,
    /// /proc/vmstat nr_memmap_pages after the mapping and the pins, minus before (6.11+).
    pub nr_memmap_pages_delta: Option<i64>,
    pub pins: Vec<PinTry>,
    /// BARs that were tried first and why they could not be mapped.
    pub tried: Vec<String>,
}

impl PfnmapResult {
    /// Struct pages behind the mapping: present pfns whose struct page the vmemmap holds
    /// (kpageflags in results from before that witness). Zero is the PFN-map floor.
    pub fn struct_pages(&self) -> Option<u64> {
        let p = self.pages.as_ref()?;
        match (p.vmemmap_struct_pages, &p.vmemmap_error) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            // Results from before the vmemmap witness: what kpageflags said.
            (None, None) => Some(p.with_struct_page()),
        }
    }

    pub fn checks(&self) -> Vec<Check> {
        let mut v = Vec::new();
        if self.outcome != Outcome::Measured {
            return v;
        }
        if let Some(p) = &self.pages {
            let what = "pfnmap: no struct page behind the mapping";
            let kpf = format!(
                "kpageflags shows a struct page for {} (it cannot tell: NOPAGE for ZONE_DEVICE pfns on 6.1 and 6.12, a struct page for this BAR on 7.3); /proc/iomem: {}",
                p.with_struct_page(),
                self.iomem.join(" > ")
            );
            v.push(match p.vmemmap_struct_pages {
                Some(n) => Check::new(
                    what,
                    p.present > 0 && n == 0,
                    format!(
                        "{n} of the BAR's {} pfns have a struct page in the vmemmap; {kpf}",
                        p.present
                    ),
                ),
                None => Check::skipped(
                    what,
                    format!(
                        "not measured: {}; {kpf}",
                        p.vmemmap_error
                            .as_deref()
                            .unwrap_or("the vmemmap was not read")
                    ),
                ),
            });
        }
        if let Some(d) = self.nr_memmap_pages_delta {
            v.push(Check::new(
                "pfnmap: mapping and pinning allocate no struct page memory",
                d == 0,
                format!("nr_memmap_pages changed by {d}"),
            ));
        }
        let pinned: Vec<&str> = self
            .pins
            .iter()
            .filter(|p| p.outcome == Outcome::Measured)
            .map(|p| p.driver.name())
            .collect();
        if !self.pins.is_empty() {
            v.push(Check::new(
                "pfnmap: every pin is refused (no struct page, no refcount)",
                pinned.is_empty()
                    && self
                        .pins
                        .iter()
                        .any(|p| matches!(p.outcome, Outcome::Refused { .. })),
                if pinned.is_empty() {
                    pins_text(&self.pins)
                } else {
                    format!("pinned by {}", pinned.join(", "))
                },
            ));
        }
        v
    }

    pub fn render_text(&self, o: &mut String) {
        match &self.outcome {
            Outcome::Measured => {}
            Outcome::Skipped { reason } => {
                let _ = writeln!(o, "pfnmap (measured): skipped: {reason}");
                return;
            }
            Outcome::Refused { errno, detail } => {
                let _ = writeln!(o, "pfnmap (measured): refused ({errno}): {detail}");
                return;
            }
        }
        let _ = writeln!(
            o,
            "pfnmap (measured): {} KiB of {} ({}{}), mapped read-only and never accessed",
            self.bytes >> 10,
            self.resource,
            self.device,
            if self.prefetchable {
                ", prefetchable"
            } else {
                ""
            }
        );
        let _ = writeln!(
            o,
            "  struct pages: {}   nr_memmap_pages delta: {}",
            self.struct_pages().map_or("-".into(), |n| n.to_string()),
            self.nr_memmap_pages_delta
                .map_or("- (no nr_memmap_pages)".into(), |d| d.to_string())
        );
        if let Some(s) = &self.smaps {
            let _ = writeln!(o, "  smaps: Rss {} kB, VmFlags: {}", s.rss_kb, s.vm_flags);
        }
        if let Some(n) = self.pagemap_present {
            let _ = writeln!(
                o,
                "  pagemap: {n} of {} pages present (its walk skips VM_PFNMAP mappings)",
                self.bytes / 4096
            );
        }
        if let Some(p) = &self.pages {
            let _ = writeln!(o, "  the BAR's pfns: {}", p.describe());
        }
        let _ = writeln!(o, "  /proc/iomem: {}", self.iomem.join(" > "));
        let _ = writeln!(o, "  pins: {}", pins_text(&self.pins));
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsdaxSuite {
    /// Bytes of the file mapped per round.
    pub size: u64,
    pub repeat: usize,
    pub method: String,
    pub results: Vec<FsdaxResult>,
    pub checks: Vec<Check>,
}

impl FsdaxSuite {
    /// The fsdax suite's charts: fault-in time per GiB, and PMD against PTE faults.
    pub fn charts(&self) -> Vec<Chart> {
        let f = self;
        let mut out = Vec::new();
        let rows: Vec<_> = f
            .results
            .iter()
            .filter(|x| x.outcome == Outcome::Measured)
            .collect();
        let cats: Vec<String> = rows.iter().map(|x| format!("{} -o dax", x.fs)).collect();
        let per_gib = (1u64 << 30) as f64 / f.size.max(1) as f64;
        let samples: Vec<Vec<f64>> = rows
            .iter()
            .map(|x| {
                x.fault_ns
                    .iter()
                    .map(|&n| n as f64 / 1e6 * per_gib)
                    .collect()
            })
            .collect();
        out.push(Chart {
            title: format!(
                "fsdax read fault-in time per GiB ({} MiB file; median and samples)",
                f.size >> 20
            ),
            y_label: "ms per GiB".into(),
            log_y: false,
            categories: cats.clone(),
            series: vec![Series::of_samples("fault-in", samples)],
        });
        let count = |name: &str, get: &dyn Fn(&FsdaxResult) -> Option<u64>| {
            Series::of_values(
                name,
                rows.iter().map(|x| get(x).map(|v| v as f64)).collect(),
            )
        };
        out.push(Chart {
            title: "fsdax faults of one fault-in: PMD mappings against PTE faults".into(),
            y_label: "faults (log)".into(),
            log_y: true,
            categories: cats,
            series: vec![
                count("PMD mapped", &|x| x.pmd_mapped()),
                count("PMD fell back", &|x| x.pmd_fallbacks()),
                count("PTE faults", &|x| x.pte_faults()),
                count("PTE faults, mapping 4K off 2M", &|x| {
                    x.misaligned().pte_faults()
                }),
            ],
        });
        out
    }
}

impl Metrics for FsdaxSuite {
    type Row = FsdaxResult;
    const SUITE: &'static str = "fsdax";
    const METRICS: &'static [MetricSpec<Self, FsdaxResult>] = &[
        // A file whose layout is known not to suit PMDs times its allocator, not the DAX
        // fault path: not offered for comparison.
        MetricSpec::time("fault_in_per_gib", |s, r| {
            if r.layout_whole(s.size) == Some(false) {
                return vec![];
            }
            let per_gib = (1u64 << 30) as f64 / s.size.max(1) as f64;
            r.fault_ns.iter().map(|&x| ms(x) * per_gib).collect()
        }),
        MetricSpec::count("pmd_mapped", "faults", Higher, |_, r| once(r.pmd_mapped())),
        MetricSpec::count("pmd_fallbacks", "faults", Lower, |_, r| {
            once(r.pmd_fallbacks())
        }),
        MetricSpec::count("pte_faults", "faults", Lower, |_, r| once(r.pte_faults())),
        // Folios or bare pfns at the fault: which the kernel maps changed in 6.15.
        MetricSpec::count("folio_pmd_inserts", "calls", Higher, |_, r| {
            once(r.aligned().insert_calls("vmf_insert_folio_pmd"))
        }),
        MetricSpec::count("pfn_pmd_inserts", "calls", Lower, |_, r| {
            once(r.aligned().insert_calls("vmf_insert_pfn_pmd"))
        }),
    ];

    fn subjects(&self) -> Vec<(String, &FsdaxResult)> {
        measured(&self.results, |r| &r.outcome, |r| r.fs.clone())
    }
}

impl Metrics for PfnmapResult {
    type Row = PfnmapResult;
    const SUITE: &'static str = "pfnmap";
    const METRICS: &'static [MetricSpec<Self, PfnmapResult>] =
        &[MetricSpec::count("struct_pages", "pages", Lower, |_, r| {
            once(r.struct_pages())
        })];

    fn subjects(&self) -> Vec<(String, &PfnmapResult)> {
        if self.outcome == Outcome::Measured {
            vec![("pci_bar".into(), self)]
        } else {
            vec![]
        }
    }
}

/// What the fault counts say about each filesystem's mapping.
pub fn fault_checks(results: &[FsdaxResult], size: u64) -> Vec<Check> {
    let mut v = Vec::new();
    for r in results.iter().filter(|r| r.outcome == Outcome::Measured) {
        v.push(misaligned_check(r, size));
        v.push(aligned_check(r, size));
        v.push(layout_check(r, size));
        v.push(struct_page_check(r));
        v.push(perf_check(r));
    }
    v
}

/// The perf witness against the BPF round: the same fault-in counted by perf's tracepoint
/// counters must give the BPF tracepoints' counts, and the user faults in the mapping's
/// addresses the faults that mapped something (PMD faults that did not fall back, plus PTE
/// faults). perf's `page-faults` counts the whole process (its text paged in from the
/// host's share, a stack page): shown, not compared.
fn perf_check(r: &FsdaxResult) -> Check {
    let what = format!("{}: perf counts the faults the BPF round counted", r.fs);
    let Some(perf) = &r.perf else {
        return Check::skipped(what, "not measured: perf counters were not read");
    };
    let (Some(pmd), Some(pte), Some(mapped)) = (r.pmd_faults(), r.pte_faults(), r.pmd_mapped())
    else {
        return Check::skipped(
            what,
            "not measured: the fs_dax fault tracepoints were not traced by BPF",
        );
    };
    let (Some(perf_pmd), Some(perf_pte), Some(mine)) = (
        perf.get(PERF_TRACEPOINTS[0]),
        perf.get(PERF_TRACEPOINTS[1]),
        perf.get(crate::perf::USER_FAULTS_IN_MAPPING),
    ) else {
        return Check::skipped(
            what,
            format!("not measured: perf could not count: {}", perf.describe()),
        );
    };
    let fell = pmd - mapped.min(pmd);
    let handled = pmd - fell + pte;
    let all = match perf.get(crate::perf::PAGE_FAULTS) {
        Some(n) => format!(" ({n} page-faults in the whole process)"),
        None => String::new(),
    };
    Check::new(
        what,
        perf_pmd == pmd && perf_pte == pte && mine == handled,
        format!(
            "perf: {perf_pmd} PMD, {perf_pte} PTE fault tracepoints, {mine} user faults in the mapping{all}; BPF: {pmd} PMD ({fell} fell back), {pte} PTE, so {handled} faults"
        ),
    )
}

/// A mapping 4 KiB off 2 MiB alignment: every PMD try falls back, every page a PTE fault.
fn misaligned_check(r: &FsdaxResult, size: u64) -> Check {
    let what = format!("{}: a mapping 4K off 2M alignment is mapped by PTEs", r.fs);
    let mis = r.misaligned();
    let (Some(pmd), Some(fell), Some(pte)) =
        (mis.pmd_faults(), mis.pmd_fallbacks(), mis.pte_faults())
    else {
        return Check::skipped(
            what,
            "not measured: the fs_dax fault tracepoints were not traced",
        );
    };
    // The mapping's last 2 MiB piece is short of a PMD, so at most pmds - 1 PMD faults can
    // be tried, and every one must fall back.
    Check::new(
        what,
        pmd == fell && pte == size / 4096 && mis.pmd_mapped() == Some(0),
        format!(
            "{pmd} PMD faults, {fell} fell back; {pte} PTE faults for {} pages",
            size / 4096
        ),
    )
}

/// The aligned mapping: every 2 MiB piece by a PMD, no PTE fault.
fn aligned_check(r: &FsdaxResult, size: u64) -> Check {
    let what = format!("{}: the file is mapped by PMDs", r.fs);
    let pmds = size / (2 << 20);
    let (Some(pmd), Some(pte)) = (r.pmd_faults(), r.pte_faults()) else {
        return Check::skipped(
            what,
            "not measured: the fs_dax fault tracepoints were not traced",
        );
    };
    let mapped = r.pmd_mapped();
    Check::new(
        what,
        mapped == Some(pmds) && pte == 0,
        format!(
            "{} of {pmds} 2M pieces PMD-mapped ({pmd} PMD faults, {} fell back), {pte} PTE faults",
            opt(mapped),
            opt(r.pmd_fallbacks()),
        ),
    )
}

/// The file's layout, read before timing: every 2 MiB piece in a 2 MiB-aligned extent.
fn layout_check(r: &FsdaxResult, size: u64) -> Check {
    let what = format!("{}: the file lies in 2M-aligned extents (FIEMAP)", r.fs);
    match r.file_pmd_pieces {
        Some(n) => Check::new(
            what,
            n == size / (2 << 20),
            format!(
                "{n} of {} 2M pieces{}",
                size / (2 << 20),
                if n == size / (2 << 20) {
                    ""
                } else {
                    ": its fault-in times the allocator's layout, not the DAX fault path, and is not compared"
                }
            ),
        ),
        None => Check::skipped(what, "not measured: FIEMAP could not be read"),
    }
}

/// The positive control of the pfnmap row's "no struct page": the same witness, on the
/// namespace's own pfns, must find a struct page behind every one.
fn struct_page_check(r: &FsdaxResult) -> Check {
    let what = format!(
        "{}: every pfn of the file has a struct page (vmemmap; the pfnmap check's positive control)",
        r.fs
    );
    let Some(p) = &r.pages else {
        return Check::skipped(what, "not measured: the mapping's pfns were not read");
    };
    match p.vmemmap_struct_pages {
        Some(n) => Check::new(
            what,
            p.present > 0 && n == p.present,
            format!(
                "{n} of {} present pfns; kpageflags shows a struct page for {}",
                p.present,
                p.with_struct_page()
            ),
        ),
        None => Check::skipped(
            what,
            format!(
                "not measured: {}",
                p.vmemmap_error
                    .as_deref()
                    .unwrap_or("the vmemmap was not read")
            ),
        ),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

impl FsdaxSuite {
    pub fn render_text(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "fsdax suite: a {} MiB file per filesystem, {} timed rounds; {}",
            self.size >> 20,
            self.repeat,
            self.method
        );
        self.render_fault_table(o);
        for r in self
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Measured)
        {
            r.render_mapping(o);
        }
        let cells: Vec<(String, crate::effect::Effect)> = self
            .results
            .iter()
            .filter_map(|r| Some((format!("{} fault-in", r.fs), r.probe_effect()?)))
            .collect();
        crate::effect::render(o, &cells);
        render_checks(o, "fsdax checks", &self.checks);
    }

    /// One line per filesystem: how its mapping was faulted in (PMD, fallback, PTE) and
    /// how long that took; a skipped or refused one says why instead.
    fn render_fault_table(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "{:<6} {:>10} {:>10} {:>9} {:>10} {:>10} {:>12} {:>12} {:>8} {:>7}",
            "fs",
            "extents 2M",
            "PMD mapped",
            "fallback",
            "PTE faults",
            "fault ms",
            "ms per GiB",
            "1st write ms",
            "range %",
            "aligned"
        );
        for r in &self.results {
            match &r.outcome {
                Outcome::Measured => self.render_fault_row(r, o),
                Outcome::Skipped { reason } => {
                    let _ = writeln!(o, "{:<6} skipped: {reason}", r.fs);
                }
                Outcome::Refused { errno, detail } => {
                    let _ = writeln!(o, "{:<6} refused ({errno}): {detail}", r.fs);
                }
            }
        }
    }

    /// One measured filesystem's line of the fault table.
    fn render_fault_row(&self, r: &FsdaxResult, o: &mut String) {
        let med = median_u64(&r.fault_ns);
        let range = match (r.fault_ns.iter().min(), r.fault_ns.iter().max(), med) {
            (Some(a), Some(b), Some(m)) if m > 0 => {
                format!("{:.0}", (b - a) as f64 * 100.0 / m as f64)
            }
            _ => "-".into(),
        };
        let _ = writeln!(
            o,
            "{:<6} {:>10} {:>10} {:>9} {:>10} {:>10} {:>12} {:>12} {:>8} {:>7}",
            r.fs,
            r.file_pmd_pieces
                .map_or("-".into(), |n| format!("{n}/{}", self.size / (2 << 20))),
            opt(r.pmd_mapped()),
            opt(r.pmd_fallbacks()),
            opt(r.pte_faults()),
            med.map_or("-".into(), |m| format!("{:.3}", m as f64 / 1e6)),
            r.fault_ns_per_gib(self.size)
                .map_or("-".into(), |x| format!("{:.3}", x / 1e6)),
            format!("{:.3}", r.first_write_ns as f64 / 1e6),
            range,
            if r.mapping_aligned { "2M" } else { "no" }
        );
    }
}

impl FsdaxResult {
    /// What the kernel says of this filesystem's mapping: the faults of the misaligned
    /// mapping, smaps, the pages' flags and refcounts, and which pins succeeded.
    fn render_mapping(&self, o: &mut String) {
        let _ = writeln!(o, "{} ({}):", self.fs, self.setup);
        let called: Vec<String> = self
            .aligned()
            .inserts()
            .into_iter()
            .filter(|(_, n, _)| *n > 0)
            .map(|(id, n, what)| format!("{id} {n} ({what})"))
            .collect();
        if !called.is_empty() {
            let _ = writeln!(o, "  the faults mapped: {}", called.join(", "));
        }
        let mis = self.misaligned();
        if let Some(pte) = mis.pte_faults() {
            let _ = writeln!(
                o,
                "  mapped 4K off 2M alignment: {} PMD faults ({} fell back), {pte} PTE faults",
                opt(mis.pmd_faults()),
                opt(mis.pmd_fallbacks())
            );
        }
        if let Some(s) = &self.smaps {
            let _ = writeln!(
                o,
                "  smaps: Rss {} kB, FilePmdMapped {} kB, VmFlags: {}",
                s.rss_kb, s.file_pmd_mapped_kb, s.vm_flags
            );
        }
        if let Some(c) = &self.perf {
            let _ = writeln!(
                o,
                "  perf (a fault-in counted by perf alone): {}",
                c.describe()
            );
        }
        if let Some(p) = &self.pages {
            let _ = writeln!(o, "  pages: {}", p.describe());
            if p.present > 0 && p.with_struct_page() == 0 {
                let _ = writeln!(
                    o,
                    "  (this kernel's kpageflags/kpagecount do not expose ZONE_DEVICE pages: \
                     NOPAGE for every pfn, so folio size and refcount are not visible here)"
                );
            }
        }
        let _ = writeln!(o, "  pins: {}", pins_text(&self.pins));
    }
}

impl crate::suite::SuiteReport for FsdaxSuite {
    fn first_screen(&self) -> (&'static str, &'static [(&'static str, &'static str)]) {
        (
            "fault sizes of a file on fsdax, per filesystem",
            &[
                ("fault_in_per_gib", "fault-in per GiB (ms)"),
                ("pmd_mapped", "PMD faults"),
                ("pmd_fallbacks", "PMD fallbacks"),
                ("pte_faults", "PTE faults"),
            ],
        )
    }
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
    fn outcomes(&self) -> Vec<(String, Outcome)> {
        let mut v = Vec::new();
        for x in &self.results {
            v.push((format!("fsdax {}", x.fs), x.outcome.clone()));
            for p in &x.pins {
                v.push((
                    format!("fsdax {} pin {}", x.fs, p.driver.name()),
                    p.outcome.clone(),
                ));
            }
        }
        v
    }
    fn suite(&self) -> crate::suite::Suite {
        crate::suite::Suite::Fsdax
    }
    fn metrics(&self) -> Vec<crate::metric::Metric> {
        <FsdaxSuite as crate::metric::Metrics>::metrics(self)
    }
    fn charts(&self) -> Vec<Chart> {
        FsdaxSuite::charts(self)
    }
    fn checks(&self) -> Vec<(String, Check)> {
        crate::suite::named_checks(crate::suite::Suite::Fsdax, &self.checks)
    }
    fn render_text(&self, o: &mut String) {
        let _ = writeln!(o);
        FsdaxSuite::render_text(self, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Flavour, Group};

    fn event(id: &str, calls: u64, values: Vec<(u64, u64)>) -> ProbeStats {
        ProbeStats {
            probe: id.into(),
            group: Group::Fault,
            function: format!("fs_dax:{id}"),
            flavour: Flavour::Tracepoint,
            calls,
            returns: 0,
            total_ns: 0,
            latency_log2: vec![],
            arg_name: Some("result".into()),
            arg_log2: vec![],
            arg_values: values,
            arg_sum: 0,
            arg_values_dropped: 0,
            stacks: vec![],
            outside_vmas: 0,
        }
    }

    fn row(fs: &str, faults: Vec<ProbeStats>) -> FsdaxResult {
        FsdaxResult {
            fs: fs.into(),
            outcome: Outcome::Measured,
            setup: String::new(),
            mapping_aligned: true,
            file_pmd_pieces: None,
            first_write_ns: 1,
            fault_ns: vec![4_000_000, 2_000_000, 3_000_000],
            faults,
            traced_fault_ns: None,
            misaligned_faults: vec![],
            pages: None,
            smaps: None,
            pins: vec![],
            perf: None,
        }
    }

    /// Seen on 6.12 and 7.3 (32 MiB, aligned): 16 PMD faults, none fell back, no PTE fault,
    /// and perf counting the same tracepoints and 16 user faults in the mapping.
    #[test]
    fn perf_witness_must_agree_with_the_bpf_counts() {
        let mut r = row(
            "xfs",
            vec![
                event("dax_pmd_fault_done", 16, vec![(0x100, 16)]),
                event("dax_pte_fault_done", 0, vec![]),
            ],
        );
        assert!(!perf_check(&r).measured, "no perf counts: SKIP");
        // Seen in CI on 6.12 and 7.3: 17 page-faults, one of them major (the process's
        // own text paged in), beside the mapping's 16.
        let counts = |pmd: u64, pte: u64, mine: u64, all: u64| PerfCounts {
            counts: vec![
                (PERF_TRACEPOINTS[0].into(), pmd),
                (PERF_TRACEPOINTS[1].into(), pte),
                (crate::perf::USER_FAULTS_IN_MAPPING.into(), mine),
                (crate::perf::PAGE_FAULTS.into(), all),
            ],
            not_counted: vec![],
        };
        r.perf = Some(counts(16, 0, 16, 16));
        let c = perf_check(&r);
        assert!(c.agrees && c.measured, "{c:?}");
        assert!(
            c.detail.contains("16 user faults in the mapping"),
            "{}",
            c.detail
        );
        r.perf = Some(counts(16, 0, 16, 17));
        let c = perf_check(&r);
        assert!(c.agrees, "a fault elsewhere in the process: {c:?}");
        assert!(c.detail.contains("17 page-faults in the whole process"));
        r.perf = Some(counts(16, 0, 17, 17));
        assert!(
            !perf_check(&r).agrees,
            "a fault in the mapping BPF did not see"
        );
        r.perf = Some(counts(16, 0, 15, 16));
        assert!(!perf_check(&r).agrees, "a fault BPF saw that perf did not");
        r.perf = Some(counts(12, 4, 16, 16));
        assert!(!perf_check(&r).agrees, "tracepoint counts differ");
        // Without the filtered count (not x86): not measured, whatever page-faults says.
        r.perf = Some(PerfCounts {
            counts: vec![
                (PERF_TRACEPOINTS[0].into(), 16),
                (PERF_TRACEPOINTS[1].into(), 0),
                (crate::perf::PAGE_FAULTS.into(), 16),
            ],
            not_counted: vec![],
        });
        assert!(!perf_check(&r).measured, "{:?}", perf_check(&r));
        // 4 of 16 fell back and took 2048 PTE faults: 12 + 2048 faults mapped something.
        r.faults = vec![
            event("dax_pmd_fault_done", 16, vec![(0x100, 12), (0x800, 4)]),
            event("dax_pte_fault_done", 2048, vec![(0x100, 2048)]),
        ];
        r.perf = Some(counts(16, 2048, 2060, 2061));
        assert!(perf_check(&r).agrees, "{:?}", perf_check(&r));
    }

    /// Result flags as the kernel prints them: NOPAGE (0x100) for a PMD installed,
    /// FALLBACK (0x800) for one given up.
    #[test]
    fn pmd_faults_are_split_by_their_result() {
        let r = row(
            "xfs",
            vec![
                event("dax_pmd_fault_done", 16, vec![(0x100, 12), (0x800, 4)]),
                event("dax_pte_fault_done", 2048, vec![(0x100, 2048)]),
            ],
        );
        assert_eq!(r.pmd_faults(), Some(16));
        assert_eq!(r.pmd_mapped(), Some(12));
        assert_eq!(r.pmd_fallbacks(), Some(4));
        assert_eq!(r.pte_faults(), Some(2048));
        let c = fault_checks(std::slice::from_ref(&r), 32 << 20);
        // Per filesystem: the misaligned mapping, the aligned one, the layout, the struct
        // pages, the perf witness.
        assert_eq!(c.len(), 5);
        assert!(!c[1].agrees, "{}", c[1].detail);
        assert!(c[1].detail.contains("12 of 16"), "{}", c[1].detail);
        assert!(
            !c[0].measured && !c[2].measured && !c[3].measured,
            "no misaligned faults, no extents, no pages: SKIP"
        );
        let all = row(
            "ext4",
            vec![
                event("dax_pmd_fault_done", 16, vec![(0x100, 16)]),
                event("dax_pte_fault_done", 0, vec![]),
            ],
        );
        assert!(fault_checks(&[all], 32 << 20)[1].agrees);
        // Misaligned: 15 PMD tries (the last piece is short) all fall back, 8192 PTEs.
        let mut m = row("xfs", vec![]);
        m.misaligned_faults = vec![
            event("dax_pmd_fault_done", 15, vec![(0x800, 15)]),
            event("dax_pte_fault_done", 8192, vec![(0x100, 8192)]),
        ];
        assert!(fault_checks(std::slice::from_ref(&m), 32 << 20)[0].agrees);
        m.misaligned_faults[1].calls = 8000;
        assert!(!fault_checks(&[m], 32 << 20)[0].agrees);
        // 32 MiB read in 3 ms (the median) is 96 ms per GiB.
        assert_eq!(r.fault_ns_per_gib(32 << 20), Some(96_000_000.0));
    }

    /// Seen on 6.12 (64 MiB): ext4 with stripe hints laid the file out at block 8487, so no
    /// piece could be PMD-mapped; that file's fault-in is not offered to compare.
    #[test]
    fn a_file_laid_out_for_ptes_is_not_compared() {
        let mut r = row("ext4", vec![]);
        r.fault_ns = vec![330_000_000];
        r.file_pmd_pieces = Some(0);
        let c = layout_check(&r, 64 << 20);
        assert!(!c.agrees && c.measured, "{c:?}");
        assert!(c.detail.starts_with("0 of 32 2M pieces"), "{}", c.detail);
        let suite = FsdaxSuite {
            size: 64 << 20,
            results: vec![r.clone()],
            ..Default::default()
        };
        let fault_in = |s: &FsdaxSuite| {
            FsdaxSuite::METRICS
                .iter()
                .find(|m| m.name == "fault_in_per_gib")
                .map(|m| (m.samples)(s, &s.results[0]))
                .unwrap()
        };
        assert!(fault_in(&suite).is_empty());
        r.file_pmd_pieces = Some(32);
        let whole = FsdaxSuite {
            results: vec![r],
            ..suite
        };
        assert_eq!(fault_in(&whole).len(), 1);
        assert!(layout_check(&whole.results[0], 64 << 20).agrees);
    }

    #[test]
    fn a_pfnmap_with_a_struct_page_or_a_pin_fails_its_checks() {
        let mut p = PfnmapResult {
            outcome: Outcome::Measured,
            resource: "resource2".into(),
            device: "x".into(),
            bytes: 8192,
            prefetchable: true,
            iomem: vec!["PCI Bus 0000:00".into()],
            pagemap_present: Some(0),
            pages: Some(PageFacts {
                pages: 2,
                present: 2,
                flags: vec![("NOPAGE".into(), 2)],
                vmemmap_struct_pages: Some(0),
                ..Default::default()
            }),
            smaps: None,
            nr_memmap_pages_delta: Some(0),
            pins: vec![PinTry {
                driver: PinDriver::IoUring,
                outcome: Outcome::Refused {
                    errno: "EFAULT".into(),
                    detail: String::new(),
                },
                pin_ns: None,
            }],
            tried: vec![],
        };
        assert_eq!(p.struct_pages(), Some(0));
        assert!(p.checks().iter().all(|c| c.agrees));
        p.pages.as_mut().unwrap().vmemmap_struct_pages = Some(1);
        p.pins[0].outcome = Outcome::Measured;
        assert_eq!(p.struct_pages(), Some(1));
        assert_eq!(p.checks().iter().filter(|c| !c.agrees).count(), 2);
        // kpageflags alone cannot say "no struct page": without the vmemmap, SKIP.
        let pages = p.pages.as_mut().unwrap();
        pages.vmemmap_struct_pages = None;
        pages.vmemmap_error = Some("no vmemmap_base".into());
        let c = &p.checks()[0];
        assert!(!c.measured && c.detail.contains("no vmemmap_base"), "{c:?}");
        assert_eq!(p.struct_pages(), None);
    }

    /// Seen, 32 MiB file, 16 PMD faults: 6.12 maps pfn ranges (no folio), 7.3 order-9
    /// folios; 6.12 has no vmf_insert_folio_pmd to trace (None, not 0).
    #[test]
    fn fault_inserts_say_folio_or_pfn() {
        let probe = |id: &str, calls| event(id, calls, vec![]);
        let k612 = [
            probe("dax_pmd_fault_done", 16),
            probe("vmf_insert_pfn_pmd", 16),
            probe("vmf_insert_mixed", 0),
        ];
        let k73 = [
            probe("dax_pmd_fault_done", 16),
            probe("vmf_insert_folio_pmd", 16),
            probe("vmf_insert_pfn_pmd", 0),
            probe("vmf_insert_page_mkwrite", 0),
            probe("vmf_insert_mixed", 0),
        ];
        assert_eq!(Faults(&k612).insert_calls("vmf_insert_folio_pmd"), None);
        assert_eq!(Faults(&k612).insert_calls("vmf_insert_pfn_pmd"), Some(16));
        assert_eq!(Faults(&k73).insert_calls("vmf_insert_folio_pmd"), Some(16));
        let called: Vec<&str> = Faults(&k73)
            .inserts()
            .into_iter()
            .filter(|x| x.1 > 0)
            .map(|x| x.2)
            .collect();
        assert_eq!(called, ["an order-9 folio by PMD"]);
    }
}
