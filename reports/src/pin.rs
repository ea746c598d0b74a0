//! The pin suite's results: per memory and pin driver, user-space pin and unpin times, the
//! kernel's own pin-function latencies and the refcount grabs per pinned page, and the
//! terminal table of them.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::chart::{Chart, Series};
use crate::check::{render_checks, Check};
use crate::geometry::{Geometry, GeometryError, Map};
use crate::metric::{measured, ms as ms_f64, Better::*, Kind::Log2, MetricSpec, Metrics};
use crate::outcome::Outcome;
use crate::pages::PageFacts;
use crate::stats::{median_u64, range_pct_u64};
use crate::trace::{frequent_values, percentiles_text, ProbeStats};

/// The memory pinned: a ZONE_DEVICE geometry, or anonymous memory as the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum PinMemory {
    Dax(Geometry),
    /// Private anonymous memory; `thp`: MADV_HUGEPAGE (else MADV_NOHUGEPAGE).
    Anon {
        thp: bool,
    },
    /// Private HugeTLB memory of `kb` pages (MAP_HUGETLB), from a pool reserved for the
    /// row: the memory HVO was made for, beside devdax of the same folio size.
    Hugetlb {
        kb: u64,
    },
}

impl PinMemory {
    /// The default sweep: every devdax and fsdax geometry, then anonymous memory.
    pub fn all() -> Vec<PinMemory> {
        Geometry::all()
            .into_iter()
            .filter(|g| *g != Geometry::Pfnmap)
            .map(PinMemory::Dax)
            .chain([
                PinMemory::Anon { thp: false },
                PinMemory::Anon { thp: true },
            ])
            .collect()
    }

    pub fn geometry(&self) -> Option<Geometry> {
        match self {
            PinMemory::Dax(g) => Some(*g),
            PinMemory::Anon { .. } | PinMemory::Hugetlb { .. } => None,
        }
    }

    /// The page size the mapping's length must be a multiple of.
    pub fn align(&self) -> u64 {
        match self {
            PinMemory::Dax(g) => g.align(),
            PinMemory::Anon { .. } => crate::geometry::PAGE_SIZE,
            PinMemory::Hugetlb { kb } => kb * 1024,
        }
    }

    /// Base pages per folio where the memory fixes it (devdax: its align; HugeTLB: its page
    /// size); None where it does not (anonymous memory, fsdax).
    pub fn folio_pages(&self) -> Option<u64> {
        match self {
            PinMemory::Dax(Geometry::Devdax { align, .. }) => Some(align / 4096),
            PinMemory::Hugetlb { kb } => Some(kb / 4),
            _ => None,
        }
    }
}

impl fmt::Display for PinMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinMemory::Dax(g) => write!(f, "{g}"),
            PinMemory::Anon { thp: false } => write!(f, "anon:4K"),
            PinMemory::Anon { thp: true } => write!(f, "anon:thp"),
            PinMemory::Hugetlb { kb } => write!(f, "hugetlb:{}", crate::hugetlb::size_name(*kb)),
        }
    }
}

pub const PIN_MEMORY_FORMS: &str =
    "devdax:4K|2M|1G:mem|dev, fsdax:mem|dev, anon:4K, anon:thp, hugetlb:2M|1G";

impl FromStr for PinMemory {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "anon:4K" | "anon:4k" => Ok(PinMemory::Anon { thp: false }),
            "anon:thp" | "anon:THP" => Ok(PinMemory::Anon { thp: true }),
            "hugetlb:2M" | "hugetlb:2m" => Ok(PinMemory::Hugetlb { kb: 2048 }),
            "hugetlb:1G" | "hugetlb:1g" => Ok(PinMemory::Hugetlb { kb: 1 << 20 }),
            "pfnmap" => Err(
                "pfnmap has no struct pages, so nothing can pin it (GUP refuses VM_PFNMAP); \
                 its refused pins are measured by `run --suite fsdax` (the pfnmap row)"
                    .into(),
            ),
            other => other
                .parse::<Geometry>()
                .map(PinMemory::Dax)
                .map_err(|GeometryError(g)| {
                    format!("invalid memory '{g}': valid forms are {PIN_MEMORY_FORMS}")
                }),
        }
    }
}

impl TryFrom<String> for PinMemory {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PinMemory> for String {
    fn from(m: PinMemory) -> String {
        m.to_string()
    }
}

/// A kernel pin path, driven from user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PinDriver {
    /// io_uring fixed-buffer registration: FOLL_LONGTERM; unregistration unpins.
    #[serde(rename = "io_uring")]
    IoUring,
    /// O_DIRECT read from a block device into the mapping, in 1 MiB transfers: FOLL_PIN via
    /// GUP-fast; the bio's completion unpins.
    #[serde(rename = "odirect")]
    Odirect,
    /// gup_test PIN_FAST_BENCHMARK: pin_user_pages_fast, timed by the kernel.
    #[serde(rename = "gup_test:pin_fast")]
    GupTestPinFast,
    /// gup_test PIN_LONGTERM_BENCHMARK: pin_user_pages with FOLL_LONGTERM.
    #[serde(rename = "gup_test:pin_longterm")]
    GupTestPinLongterm,
    /// gup_test GUP_FAST_BENCHMARK: get_user_pages_fast (FOLL_GET references, not pins).
    #[serde(rename = "gup_test:gup_fast")]
    GupTestGupFast,
    /// AF_XDP UMEM registration: pin_user_pages with FOLL_LONGTERM (slow GUP), then a
    /// vmap of the area; the socket's release unpins after an RCU grace period.
    #[serde(rename = "xdp_umem")]
    XdpUmem,
}

impl PinDriver {
    pub const ALL: [PinDriver; 6] = [
        PinDriver::IoUring,
        PinDriver::Odirect,
        PinDriver::GupTestPinFast,
        PinDriver::GupTestPinLongterm,
        PinDriver::GupTestGupFast,
        PinDriver::XdpUmem,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            PinDriver::IoUring => "io_uring",
            PinDriver::Odirect => "odirect",
            PinDriver::GupTestPinFast => "gup_test:pin_fast",
            PinDriver::GupTestPinLongterm => "gup_test:pin_longterm",
            PinDriver::GupTestGupFast => "gup_test:gup_fast",
            PinDriver::XdpUmem => "xdp_umem",
        }
    }

    /// What "pin" and "unpin" time mean for this driver.
    pub fn timing(&self) -> &'static str {
        match self {
            PinDriver::IoUring => {
                "io_uring_register(IORING_REGISTER_BUFFERS) / (IORING_UNREGISTER_BUFFERS), user-space clock"
            }
            PinDriver::Odirect => {
                "the O_DIRECT reads, user-space clock: pin, I/O and unpin at completion together"
            }
            PinDriver::XdpUmem => {
                "setsockopt(XDP_UMEM_REG), user-space clock: the long-term pin and a vmap of the area; the unpin follows the socket's release after an RCU grace period, untimed"
            }
            _ => "gup_test's own get/put times (kernel ktime, µs)",
        }
    }
}

impl fmt::Display for PinDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One timed round: the whole mapping pinned and unpinned once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PinSample {
    pub pin_ns: u64,
    /// Absent where the driver cannot time the unpin apart (O_DIRECT).
    pub unpin_ns: Option<u64>,
}

/// Refcount grabs in the traced round (try_grab_folio*): one per folio, or one per page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grabs {
    /// Pages pinned in the traced round.
    pub pages: u64,
    pub calls: u64,
    /// References taken (the `refs` arguments summed).
    pub refs: u64,
    /// Per function: (function, calls, refs; `refs` argument values with their counts).
    pub by_function: Vec<GrabFunction>,
    /// The per-folio releases in the same round (unpin_user_folio / unpin_user_page; refs
    /// is the pages released, where the function says).
    #[serde(default)]
    pub releases: Vec<GrabFunction>,
    /// GUP calls that pinned those pages (pin_user_pages*, get_user_pages_fast, counted in
    /// the latency round of the same work); `None` when they were not traced.
    #[serde(default)]
    pub gup_calls: Option<u64>,
    /// The kernel's own pin counters over the same round; absent in older results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foll_pin: Option<FollPins>,
}

/// `/proc/vmstat` nr_foll_pin_acquired and nr_foll_pin_released, after minus before a
/// round (system-wide, per-CPU deltas folded): an independent witness of the pins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollPins {
    pub acquired: i64,
    pub released: i64,
    /// Acquired less released while an io_uring registration still held its pins, against
    /// before it (another round): the leak check's positive control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrabFunction {
    pub function: String,
    pub calls: u64,
    pub refs: u64,
    pub refs_values: Vec<(u64, u64)>,
    /// Its calls per kernel call path, most first (the grab round counts stacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<crate::trace::StackCount>,
    /// The stacks' calls are of one call in this many (0 or 1: of every call).
    #[serde(default, skip_serializing_if = "crate::facts::every_call")]
    pub stacks_every: u32,
}

/// The release functions (probe ids and kernel names alike; `unpin_user_` a prefix), in
/// the order `Grabs::release_calls` prefers them. The pin suite traces these.
pub const RELEASES: &[&str] = &["gup_put_folio", "unpin_user_", "__bio_release_pages"];

impl Grabs {
    /// "; call paths: N× a ← b ← …, …": where the grabs and releases were made, the top
    /// three paths of each function that counted stacks (empty when none did); where only
    /// one call in N had its stack taken, the counts are of those and the header says so.
    pub fn paths(&self) -> String {
        let functions = || self.by_function.iter().chain(&self.releases);
        let v: Vec<String> = functions()
            .flat_map(|f| f.stacks.iter().take(3))
            .map(|s| format!("{}× {}", s.calls, s.path(5)))
            .collect();
        let every = functions()
            .filter(|f| !f.stacks.is_empty())
            .map(|f| f.stacks_every)
            .max()
            .unwrap_or(0);
        match (v.is_empty(), every > 1) {
            (true, _) => String::new(),
            (false, false) => format!("; call paths: {}", v.join(", ")),
            (false, true) => format!(
                "; call paths (the stacks of 1 call in {every}): {}",
                v.join(", ")
            ),
        }
    }

    pub fn per_page(&self) -> Option<f64> {
        (self.pages > 0).then(|| self.calls as f64 / self.pages as f64)
    }

    /// Release calls, from the one funnel every unpin goes through (gup_put_folio) where it
    /// was traced, else the unpin_user_* functions, else the bios' page releases (6.1's
    /// O_DIRECT takes FOLL_GET references, put page by page inline: one call per bio).
    pub fn release_calls(&self) -> u64 {
        let calls = |prefix: &str| -> u64 {
            self.releases
                .iter()
                .filter(|f| f.function.starts_with(prefix))
                .map(|f| f.calls)
                .sum()
        };
        RELEASES
            .iter()
            .map(|p| calls(p))
            .find(|&c| c > 0)
            .unwrap_or(0)
    }

    /// References per grab: the batch a grab takes (1 on a per-page path).
    pub fn refs_per_grab(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.refs as f64 / self.calls as f64)
    }

    pub fn grabs_per_call(&self) -> Option<f64> {
        self.gup_calls
            .filter(|&c| c > 0)
            .map(|c| self.calls as f64 / c as f64)
    }

    /// Pages each GUP call was asked for: gup_test asks 512 at a time, a bio at most
    /// about 256, so no path can grab less than once per call.
    pub fn pages_per_call(&self) -> Option<f64> {
        self.gup_calls
            .filter(|&c| c > 0)
            .map(|c| self.pages as f64 / c as f64)
    }

    /// The fewest grabs that can pin these pages with folios of `folio_pages`: every call
    /// grabs at least once, every folio at least once (a folio larger than a call is
    /// grabbed again by every call that reaches it).
    pub fn fewest(&self, folio_pages: u64) -> Option<u64> {
        let calls = self.gup_calls.filter(|&c| c > 0)?;
        Some(calls.max(self.pages.div_ceil(folio_pages.max(1))))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinResult {
    pub memory: PinMemory,
    pub driver: PinDriver,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Bytes pinned per round.
    pub bytes: u64,
    pub pages: u64,
    /// Untimed rounds run before the timed ones (after the mapping was touched).
    pub warmup_rounds: u32,
    pub samples: Vec<PinSample>,
    /// Pin-function latencies from a separate traced round (not the timed ones).
    pub kernel: Vec<ProbeStats>,
    /// Refcount grabs from another traced round.
    pub grabs: Option<Grabs>,
    /// The traced rounds' own times (latency round, grab round): against `samples`, the
    /// probe effect.
    #[serde(default)]
    pub traced_samples: Vec<PinSample>,
    /// Rounds the latency probes (`kernel`) stayed attached for: their counts and times
    /// are that many rounds'. 1 in results written before.
    #[serde(default = "one_round")]
    pub kernel_rounds: u32,
}

fn one_round() -> u32 {
    1
}

/// How a memory was prepared before its pins were timed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prepared {
    pub memory: PinMemory,
    /// Wall time of faulting the mapping in for writing before the rounds
    /// (MADV_POPULATE_WRITE; results before 2026-12-02: writing one byte in each base page,
    /// which also made the host allocate never-used emulated pmem).
    pub touch_ns: Option<u64>,
    /// Bytes the device offers (dax), for the record.
    pub usable_size: Option<u64>,
    /// AnonHugePages of the process after the touch (anonymous memory).
    pub thp_bytes: Option<u64>,
    /// What was mapped (device, file, anonymous).
    pub mapped: String,
    /// The dax mapping's pages after the touch: the positive control of the pfnmap row's
    /// "no struct page" (every devdax and fsdax pfn has one in the vmemmap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<PageFacts>,
    /// Why `pages` could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages_error: Option<String>,
}

/// The pin suite's part of a results file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PinSuite {
    /// Bytes pinned per round.
    pub size: u64,
    pub repeat: usize,
    /// How warm-up was done.
    pub warmup: String,
    /// The O_DIRECT source device, if one was set up.
    pub odirect_device: Option<String>,
    pub prepared: Vec<Prepared>,
    pub results: Vec<PinResult>,
    pub checks: Vec<Check>,
}

pub const PIN_PROBES: &[&str] = &[
    "pin_user_pages",
    "pin_user_pages_fast",
    "get_user_pages_fast",
];

impl PinSuite {
    /// The pin suite's charts: pin and unpin time per driver, and grabs per page.
    pub fn charts(&self) -> Vec<Chart> {
        let p = self;
        let mut out = Vec::new();
        let drivers: Vec<PinDriver> = PinDriver::ALL
            .into_iter()
            .filter(|d| {
                p.results
                    .iter()
                    .any(|x| x.driver == *d && x.outcome == Outcome::Measured)
            })
            .collect();
        let mut memories: Vec<String> = Vec::new();
        for x in &p.results {
            let m = x.memory.to_string();
            if !memories.contains(&m) {
                memories.push(m);
            }
        }
        let cell = |m: &str, d: PinDriver| {
            p.results.iter().find(|x| {
                x.driver == d && x.memory.to_string() == m && x.outcome == Outcome::Measured
            })
        };
        for d in &drivers {
            let pin: Vec<Vec<f64>> = memories
                .iter()
                .map(|m| {
                    cell(m, *d).map_or(vec![], |x| {
                        x.samples.iter().map(|s| s.pin_ns as f64 / 1e6).collect()
                    })
                })
                .collect();
            let unpin: Vec<Vec<f64>> = memories
                .iter()
                .map(|m| {
                    cell(m, *d).map_or(vec![], |x| {
                        x.samples
                            .iter()
                            .filter_map(|s| s.unpin_ns.map(|n| n as f64 / 1e6))
                            .collect()
                    })
                })
                .collect();
            out.push(Chart {
                title: format!(
                    "{} pin and unpin time per memory ({} MiB; median and samples)",
                    d.name(),
                    p.size >> 20
                ),
                y_label: "ms (log)".into(),
                log_y: true,
                categories: memories.clone(),
                series: vec![
                    Series::of_samples("pin", pin),
                    Series::of_samples("unpin", unpin),
                ],
            });
        }
        out.push(Chart {
            title: "refcount grabs (try_grab_folio*) per pinned page".into(),
            y_label: "calls per page (log)".into(),
            log_y: true,
            categories: memories.clone(),
            series: drivers
                .iter()
                .map(|d| Series {
                    name: d.name().into(),
                    values: memories
                        .iter()
                        .map(|m| cell(m, *d)?.grabs.as_ref()?.per_page())
                        .collect(),
                    samples: vec![],
                })
                .collect(),
        });
        out
    }
}

impl Metrics for PinSuite {
    type Row = PinResult;
    const SUITE: &'static str = "pin";
    const METRICS: &'static [MetricSpec<Self, PinResult>] = &[
        // O_DIRECT's time is the pin, the I/O and the unpin at completion together: a metric
        // of its own, never set beside a pure pin time.
        MetricSpec::time("pin", |_, r| {
            if matches!(r.driver, PinDriver::Odirect | PinDriver::XdpUmem) {
                return vec![];
            }
            r.samples.iter().map(|x| ms_f64(x.pin_ns)).collect()
        }),
        // AF_XDP's registration also vmaps what it pinned.
        MetricSpec::time("umem_pin_and_vmap", |_, r| {
            if r.driver != PinDriver::XdpUmem {
                return vec![];
            }
            r.samples.iter().map(|x| ms_f64(x.pin_ns)).collect()
        }),
        MetricSpec::time("read_with_pin_io_unpin", |_, r| {
            if r.driver != PinDriver::Odirect {
                return vec![];
            }
            r.samples.iter().map(|x| ms_f64(x.pin_ns)).collect()
        }),
        MetricSpec::time("unpin", |_, r| {
            r.samples
                .iter()
                .filter_map(|x| x.unpin_ns.map(ms_f64))
                .collect()
        }),
        // One GUP call's kernel latency from the traced rounds' histograms (log2 buckets:
        // a change is a step of 2x). A latency, so judged as one: not a deterministic count.
        MetricSpec::new("kpin_p50", "ns", Lower, Log2, |_, r| r.kpin_samples(0.5)),
        MetricSpec::new("kpin_p90", "ns", Lower, Log2, |_, r| r.kpin_samples(0.9)),
        MetricSpec::new("kpin_p99", "ns", Lower, Log2, |_, r| r.kpin_samples(0.99)),
        MetricSpec::count("grabs_per_page", "calls/page", Lower, |_, r| {
            r.grabs
                .as_ref()
                .and_then(|g| g.per_page())
                .into_iter()
                .collect()
        }),
    ];

    fn subjects(&self) -> Vec<(String, &PinResult)> {
        measured(
            &self.results,
            |r| &r.outcome,
            |r| format!("{} {}", r.memory, r.driver.name()),
        )
    }
}

impl PinResult {
    /// The traced rounds' pin time over the untraced median.
    pub fn probe_effect(&self) -> Option<crate::effect::Effect> {
        let pins = |v: &[PinSample]| v.iter().map(|s| s.pin_ns as f64).collect::<Vec<_>>();
        crate::effect::of(&pins(&self.traced_samples), &pins(&self.samples))
    }

    pub fn pin_median(&self) -> Option<u64> {
        median_u64(&self.samples.iter().map(|s| s.pin_ns).collect::<Vec<_>>())
    }

    pub fn unpin_median(&self) -> Option<u64> {
        median_u64(
            &self
                .samples
                .iter()
                .filter_map(|s| s.unpin_ns)
                .collect::<Vec<_>>(),
        )
    }

    /// (max - min) / median of the pin times, in percent.
    pub fn pin_range_pct(&self) -> Option<f64> {
        range_pct_u64(&self.samples.iter().map(|s| s.pin_ns).collect::<Vec<_>>())
    }

    /// Kernel time per round in the named functions in the traced rounds, if any of them
    /// was traced.
    pub fn kernel_ns(&self, probes: &[&str]) -> Option<u64> {
        let hits = self.kernel_hits(probes);
        (!hits.is_empty()).then(|| {
            hits.iter().map(|p| p.total_ns).sum::<u64>() / u64::from(self.kernel_rounds.max(1))
        })
    }

    fn kernel_hits(&self, probes: &[&str]) -> Vec<&ProbeStats> {
        self.kernel
            .iter()
            .filter(|p| probes.contains(&p.probe.as_str()) && p.returns > 0)
            .collect()
    }

    /// `kernel_percentile_ns` as a metric's one sample.
    fn kpin_samples(&self, q: f64) -> Vec<f64> {
        self.kernel_percentile_ns(q)
            .map(|x| x as f64)
            .into_iter()
            .collect()
    }

    /// One GUP call's kernel latency histogram: the entry points' log2 histograms merged,
    /// over every call of the traced rounds.
    pub fn kernel_histogram(&self) -> Vec<u64> {
        let mut slots: Vec<u64> = Vec::new();
        for p in self.kernel_hits(PIN_PROBES) {
            if slots.len() < p.latency_log2.len() {
                slots.resize(p.latency_log2.len(), 0);
            }
            for (s, n) in slots.iter_mut().zip(&p.latency_log2) {
                *s += n;
            }
        }
        slots
    }

    /// The `q` quantile of one GUP call's kernel latency.
    pub fn kernel_percentile_ns(&self, q: f64) -> Option<u64> {
        crate::trace::log2_percentile(&self.kernel_histogram(), q)
    }
}

/// Whether pin time falls with the compound order (4K -> 2M -> 1G), per driver and struct
/// page placement: the seeds' claim, checked on what was measured. (Grabs per page cannot
/// fall past the pages of one call: `grab_checks` holds them to what is possible.)
pub fn order_checks(results: &[PinResult]) -> Vec<Check> {
    let mut out = Vec::new();
    for driver in PinDriver::ALL {
        for map in [Map::Mem, Map::Dev] {
            let row = |align: u64| {
                results.iter().find(|r| {
                    r.driver == driver
                        && r.outcome == Outcome::Measured
                        && r.memory == PinMemory::Dax(Geometry::Devdax { align, map })
                })
            };
            let rows: Vec<(&str, &PinResult)> = [("4K", 4096), ("2M", 2 << 20), ("1G", 1 << 30)]
                .into_iter()
                .filter_map(|(n, a)| row(a).map(|r| (n, r)))
                .collect();
            if rows.len() < 2 {
                continue;
            }
            let m = match map {
                Map::Mem => "mem",
                Map::Dev => "dev",
            };
            let times: Vec<(&str, u64)> = rows
                .iter()
                .filter_map(|(n, r)| Some((*n, r.pin_median()?)))
                .collect();
            let base = times[0].1.max(1) as f64;
            out.push(Check::new(
                format!("{driver} devdax:*:{m}: pin time falls with the order"),
                times.windows(2).all(|w| w[1].1 < w[0].1),
                times
                    .iter()
                    .map(|(n, t)| format!("{n} {:.3}", *t as f64 / base))
                    .collect::<Vec<_>>()
                    .join(" -> ")
                    + " (median pin time relative to 4K)",
            ));
        }
    }
    out
}

/// A ratio as a count where it is whole (512), else to two places (1.33); `-` if absent.
fn ratio(v: Option<f64>) -> String {
    match v {
        Some(x) if (x - x.round()).abs() < 1e-9 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
        None => "-".into(),
    }
}

fn ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

impl PinSuite {
    /// The row each ratio is taken against: devdax:4K:mem with the same driver, else
    /// anon:4K.
    fn base(&self, driver: PinDriver) -> Option<u64> {
        let measured = |m: &str| {
            self.results.iter().find(|r| {
                r.driver == driver && r.outcome == Outcome::Measured && r.memory.to_string() == m
            })
        };
        measured("devdax:4K:mem")
            .or_else(|| measured("anon:4K"))
            .and_then(PinResult::pin_median)
    }

    pub fn render_text(&self, o: &mut String) {
        self.render_prepared(o);
        self.render_table(o);
        let _ = writeln!(
            o,
            "\npin = {}; odirect: {}; kpin: kernel time in pin_user_pages* per round, \
             from up to 3 traced rounds; grabs/rel: try_grab_* calls and releases (gup_put_folio, else \
             unpin_user_folio/page, else __bio_release_pages: one per bio) per pinned page in another",
            PinDriver::IoUring.timing(),
            PinDriver::Odirect.timing()
        );
        let cells: Vec<(String, crate::effect::Effect)> = self
            .results
            .iter()
            .filter_map(|r| {
                Some((
                    format!("{} {}", r.driver.name(), r.memory),
                    r.probe_effect()?,
                ))
            })
            .collect();
        crate::effect::render(o, &cells);
        self.render_grabs(o);
        render_checks(o, "pin checks, on medians", &self.checks);
    }

    /// The table: a row per memory and driver, but one line for a memory every driver
    /// skipped and one, after the rows, for a driver skipped on every memory.
    fn render_table(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "{:<14} {:<21} {:>2} {:>8} {:>10} {:>7} {:>8} {:>7} {:>10} {:>10} {:>10} {:>10}",
            "memory",
            "driver",
            "n",
            "pages",
            "pin ms",
            "range",
            "ns/page",
            "pin/4K",
            "unpin ms",
            "kpin ms",
            "grabs/page",
            "rel/page"
        );
        let mut shown_skipped: Vec<PinMemory> = Vec::new();
        let skipped_drivers = self.skipped_drivers();
        for r in &self.results {
            if skipped_drivers.iter().any(|(d, _)| *d == r.driver) {
                continue;
            }
            if let Some(reason) = self.skipped_by_every_driver(r) {
                if !shown_skipped.contains(&r.memory) {
                    shown_skipped.push(r.memory);
                    let _ = writeln!(
                        o,
                        "{:<14} {:<21} skipped: {reason}",
                        r.memory.to_string(),
                        "(every driver)"
                    );
                }
                continue;
            }
            match &r.outcome {
                Outcome::Measured => self.render_row(r, o),
                Outcome::Refused { errno, .. } => {
                    let _ = writeln!(
                        o,
                        "{:<14} {:<21} refused by kernel ({errno})",
                        r.memory.to_string(),
                        r.driver.name()
                    );
                }
                Outcome::Skipped { reason } => {
                    let _ = writeln!(
                        o,
                        "{:<14} {:<21} skipped: {reason}",
                        r.memory.to_string(),
                        r.driver.name()
                    );
                }
            }
        }
        for (d, reason) in &skipped_drivers {
            let _ = writeln!(
                o,
                "{:<14} {:<21} skipped: {reason}",
                "(every memory)",
                d.name()
            );
        }
    }

    /// Why `r`'s memory was skipped, where every driver (more than one) skipped it for
    /// that same reason: such a memory takes one line.
    fn skipped_by_every_driver<'r>(&self, r: &'r PinResult) -> Option<&'r str> {
        let Outcome::Skipped { reason } = &r.outcome else {
            return None;
        };
        let rows: Vec<&PinResult> = self
            .results
            .iter()
            .filter(|x| x.memory == r.memory)
            .collect();
        (rows.len() > 1 && rows.iter().all(|x| x.outcome == r.outcome)).then_some(reason.as_str())
    }

    /// The run's set-up: its size and rounds, the O_DIRECT source, each memory as mapped.
    fn render_prepared(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "pin suite: {} MiB per round, {} timed rounds per row; warm-up: {}",
            self.size >> 20,
            self.repeat,
            self.warmup
        );
        if let Some(d) = &self.odirect_device {
            let _ = writeln!(o, "O_DIRECT source: {d}");
        }
        for p in &self.prepared {
            let _ = writeln!(
                o,
                "  {:<14} {}{}{}{}",
                p.memory.to_string(),
                p.mapped,
                p.touch_ns
                    .map_or(String::new(), |t| format!(", faulted in {} ms", ms(t))),
                p.usable_size.map_or(String::new(), |u| format!(
                    ", device offers {} MiB",
                    u >> 20
                )),
                p.thp_bytes.map_or(String::new(), |b| format!(
                    ", AnonHugePages {} MiB",
                    b >> 20
                )),
            );
            if let Some(f) = &p.pages {
                let _ = writeln!(o, "  {:<14} {}", "", f.describe());
            }
        }
    }

    /// A driver skipped for one reason on every memory takes one line, after the table.
    fn skipped_drivers(&self) -> Vec<(PinDriver, &str)> {
        PinDriver::ALL
            .iter()
            .filter_map(|&d| {
                let rows: Vec<&PinResult> = self.results.iter().filter(|x| x.driver == d).collect();
                match rows.first().map(|r| &r.outcome) {
                    Some(first @ Outcome::Skipped { reason })
                        if rows.len() > 1 && rows.iter().all(|x| &x.outcome == first) =>
                    {
                        Some((d, reason.as_str()))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// One measured row of the table.
    fn render_row(&self, r: &PinResult, o: &mut String) {
        let pin = r.pin_median();
        let dash = || "-".to_string();
        let _ = writeln!(
            o,
            "{:<14} {:<21} {:>2} {:>8} {:>10} {:>7} {:>8} {:>7} {:>10} {:>10} {:>10} {:>10}",
            r.memory.to_string(),
            r.driver.name(),
            r.samples.len(),
            r.pages,
            pin.map_or_else(dash, ms),
            r.pin_range_pct().map_or_else(dash, |p| format!("{p:.0}%")),
            pin.filter(|_| r.pages > 0)
                .map_or_else(dash, |p| format!("{:.0}", p as f64 / r.pages as f64)),
            match (pin, self.base(r.driver)) {
                (Some(p), Some(b)) if b > 0 => format!("{:.3}", p as f64 / b as f64),
                _ => dash(),
            },
            r.unpin_median().map_or_else(dash, ms),
            r.kernel_ns(PIN_PROBES).map_or_else(dash, ms),
            r.grabs
                .as_ref()
                .and_then(Grabs::per_page)
                .map_or_else(dash, |g| format!("{g:.6}")),
            r.grabs
                .as_ref()
                // AF_XDP's unpins run after an RCU grace period, outside the process.
                .filter(|g| g.pages > 0 && !g.releases.is_empty())
                .filter(|_| r.driver != PinDriver::XdpUmem)
                .map_or_else(dash, |g| format!(
                    "{:.6}",
                    g.release_calls() as f64 / g.pages as f64
                )),
        );
    }

    /// Each measured row's grab and release functions, and each refusal's detail.
    /// Why an O_DIRECT row's releases are not all counted, when they are not: bios complete
    /// outside the traced process in a loop device's worker, or (6.1, reads into clean
    /// pages) in the bio dirty worker, a kworker.
    fn partial_releases(&self, r: &PinResult, g: &Grabs) -> Option<String> {
        if r.driver == PinDriver::XdpUmem {
            return Some(
                " (releases not counted: the socket's release unpins the UMEM after an RCU grace period, outside the traced process)"
                    .into(),
            );
        }
        if r.driver != PinDriver::Odirect {
            return None;
        }
        if self
            .odirect_device
            .as_deref()
            .is_some_and(|d| d.starts_with("loop"))
        {
            return Some(
                " (releases partial: the loop device's worker completes the bios, outside the traced process)"
                    .into(),
            );
        }
        let bios = g.gup_calls?;
        let released = g.release_calls();
        let per_bio = g
            .releases
            .iter()
            .any(|f| f.function.starts_with("__bio_release_pages") && f.calls == released);
        (per_bio && released < bios).then(|| {
            format!(
                " (releases partial: {released} of {bios} bios released their pages in this process; the others in a kworker, the bio dirty worker)"
            )
        })
    }

    fn render_grabs(&self, o: &mut String) {
        for r in &self.results {
            let who = format!("{:<14} {:<21}", r.memory.to_string(), r.driver.name());
            match &r.outcome {
                Outcome::Refused { detail, .. } => {
                    let _ = writeln!(o, "  {who} {detail}");
                }
                Outcome::Measured => {
                    if let Some(g) = &r.grabs {
                        let funcs = g
                            .by_function
                            .iter()
                            .chain(&g.releases)
                            .filter(|f| f.calls > 0)
                            .map(|f| {
                                format!(
                                    "{} {} calls ({})",
                                    f.function,
                                    f.calls,
                                    frequent_values(&f.refs_values)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; ");
                        if !funcs.is_empty() {
                            let per = ratio;
                            let partial = self.partial_releases(r, g);
                            let _ = writeln!(
                                o,
                                "  {who} grabs: {funcs}; {} pages per GUP call, {} grabs per call, {} refs per grab{}",
                                per(g.pages_per_call()),
                                per(g.grabs_per_call()),
                                per(g.refs_per_grab()),
                                partial.unwrap_or_default()
                            );
                        }
                    }
                    if let Some(q) = percentiles_text(&r.kernel_histogram()) {
                        let _ = writeln!(
                            o,
                            "  {who} kpin per GUP call: {q} ({} traced rounds, log2 buckets)",
                            r.kernel_rounds
                        );
                    }
                }
                Outcome::Skipped { .. } => {}
            }
        }
    }
}

/// Per devdax or HugeTLB row: the grabs taken against the fewest possible, one per folio per
/// call.
/// Slow GUP takes a folio's first page apart from the rest (follow_page, then
/// page_increm), so up to twice that is still per folio; more is per page.
pub fn grab_checks(results: &[PinResult]) -> Vec<Check> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.outcome == Outcome::Measured) {
        let Some(folio_pages) = r.memory.folio_pages() else {
            continue;
        };
        let Some(grabs) = &r.grabs else { continue };
        let what = format!(
            "{} {}: refcount grabs per folio per GUP call",
            r.driver, r.memory
        );
        let Some(fewest) = grabs.fewest(folio_pages) else {
            out.push(Check::skipped(
                what,
                "not measured: the GUP calls (pin_user_pages*, get_user_pages_fast) were not traced",
            ));
            continue;
        };
        let per = ratio;
        out.push(Check::new(
            what,
            grabs.calls <= 2 * fewest,
            format!(
                "{} grabs of {} pages in {} calls ({} pages per call, {} refs per grab, {} grabs per call); fewest possible {fewest} (one per call and per {folio_pages}-page folio){}",
                grabs.calls,
                grabs.pages,
                grabs.gup_calls.unwrap_or(0),
                per(grabs.pages_per_call()),
                per(grabs.refs_per_grab()),
                per(grabs.grabs_per_call()),
                if grabs.calls >= grabs.pages && folio_pages > 1 {
                    ": one grab per base page, this path grabs per page"
                } else {
                    ""
                }
            ) + &if grabs.calls <= 2 * fewest {
                String::new()
            } else {
                grabs.paths()
            },
        ));
    }
    out
}

/// Per traced row, the kernel's own pin counters (`/proc/vmstat` nr_foll_pin_*) over the
/// grab round against the probes: the references acquired are the references the grab
/// probes counted (a fast-path grab that is dropped again counts in both), and every one is
/// released by the end of the round (a leak check). FOLL_GET paths (gup_test's gup_fast,
/// O_DIRECT before 6.2) take no pin: there the counter must not move, the witness's
/// negative control.
pub fn foll_pin_checks(results: &[PinResult]) -> Vec<Check> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.outcome == Outcome::Measured) {
        let Some(g) = &r.grabs else { continue };
        let Some(f) = g.foll_pin else { continue };
        let name = format!("{} {}", r.driver, r.memory);
        let counters = format!(
            "nr_foll_pin_acquired {:+}, nr_foll_pin_released {:+}",
            f.acquired, f.released
        );
        let refs = g.refs as i64;
        if r.driver == PinDriver::GupTestGupFast {
            out.push(Check::new(
                format!("{name}: FOLL_GET takes no pin (vmstat)"),
                f.acquired == 0 && f.released == 0,
                format!("{counters} while the probes counted {refs} references got"),
            ));
            continue;
        }
        let what = format!("{name}: the kernel's pin counters (vmstat) vs the probes' references");
        if r.driver == PinDriver::Odirect && f.acquired == 0 && refs > 0 {
            out.push(Check::skipped(
                what,
                format!("not applicable: this kernel's O_DIRECT took its {refs} references with FOLL_GET, not FOLL_PIN ({counters})"),
            ));
            continue;
        }
        out.push(Check::new(
            what,
            f.acquired == refs,
            format!("{counters}; the grab probes counted {refs} references"),
        ));
        let what = format!("{name}: every pin released by the end of the round (vmstat)");
        if let Some(h) = f.held {
            // io_uring keeps one pin per folio of a buffer it can coalesce (huge folios,
            // 6.10+) and drops the others at registration: seen, 512 held for 1 GiB of 2M
            // devdax and 1 for a 1G page on 6.12 and 7.3, one per page on 6.1.
            let pages = r.pages as i64;
            let per = if h == pages {
                "one per page".to_string()
            } else if h > 0 && pages % h == 0 {
                format!(
                    "one per {}-page folio: io_uring keeps one pin per folio of a coalesced buffer",
                    pages / h
                )
            } else {
                "neither one per page nor one per folio".to_string()
            };
            out.push(Check::new(
                format!("{name}: pins still registered are seen as held (vmstat)"),
                h > 0 && pages % h == 0,
                format!("acquired - released {h:+} while the registration held {pages} pages pinned ({per})"),
            ));
        }
        out.push(if r.driver == PinDriver::XdpUmem {
            Check::skipped(
                what,
                format!("not applicable: the UMEM is unpinned after an RCU grace period, past the round ({counters})"),
            )
        } else {
            Check::new(what, f.released == f.acquired, counters)
        });
    }
    out
}

/// Per dax memory: every pfn of the mapping has a struct page in the vmemmap. The positive
/// control of the pfnmap row's "no struct page" (same witness, opposite answer), and of the
/// kernel keeping struct pages for ZONE_DEVICE memory in RAM (`mem`) or on the device (`dev`).
pub fn struct_page_checks(prepared: &[Prepared]) -> Vec<Check> {
    prepared
        .iter()
        .filter(|p| matches!(p.memory, PinMemory::Dax(_)))
        .map(|p| {
            let what = format!("{}: a struct page behind every pfn", p.memory);
            match p.pages.as_ref().map(|f| (f, f.vmemmap_struct_pages)) {
                Some((f, Some(n))) => Check::new(
                    what,
                    f.pages > 0 && f.present == f.pages && n == f.present,
                    format!(
                        "{n} of {} present pfns ({} pages mapped) have a struct page in the vmemmap; kpageflags shows {}",
                        f.present,
                        f.pages,
                        f.with_struct_page()
                    ),
                ),
                Some((f, None)) => Check::skipped(
                    what,
                    format!(
                        "not measured: {}",
                        f.vmemmap_error.as_deref().unwrap_or("the vmemmap was not read")
                    ),
                ),
                None => Check::skipped(
                    what,
                    format!(
                        "not measured: {}",
                        p.pages_error.as_deref().unwrap_or("the pages were not read")
                    ),
                ),
            }
        })
        .collect()
}

/// References taken (the grab probes' `refs` summed) against the pages the driver pinned:
/// the probe layer and the driver must agree on how much was pinned.
pub fn refs_checks(results: &[PinResult]) -> Vec<Check> {
    results
        .iter()
        .filter_map(|r| {
            let g = r.grabs.as_ref()?;
            (g.calls > 0).then(|| {
                let agrees = g.refs == g.pages;
                Check::new(
                    format!(
                        "{} {}: references taken vs pages pinned",
                        r.memory, r.driver
                    ),
                    agrees,
                    format!(
                        "{} refs in {} grabs for {} pages{}",
                        g.refs,
                        g.calls,
                        g.pages,
                        if agrees { String::new() } else { g.paths() }
                    ),
                )
            })
        })
        .collect()
}

impl PinMemory {
    /// The 4K memory of the same kind a row is set against on the first screen: devdax
    /// 2M/1G against devdax 4K with the struct pages in the same place, anonymous THP and
    /// HugeTLB against anonymous 4K pages (fsdax: none).
    fn base_4k(&self) -> Option<PinMemory> {
        match self {
            PinMemory::Dax(Geometry::Devdax { map, .. }) => {
                Some(PinMemory::Dax(Geometry::Devdax {
                    align: 4096,
                    map: *map,
                }))
            }
            PinMemory::Anon { .. } | PinMemory::Hugetlb { .. } => {
                Some(PinMemory::Anon { thp: false })
            }
            _ => None,
        }
    }
}

/// The first screen's note of the memories it has no row for (every driver's row skipped
/// with one reason), grouped by that reason: "devdax:4K:dev, fsdax:dev: not pinned: ...".
fn not_measured_memories(suite: &PinSuite) -> Vec<String> {
    let mut by_reason: Vec<(&str, Vec<String>)> = Vec::new();
    let mut memories: Vec<PinMemory> = Vec::new();
    for r in &suite.results {
        if !memories.contains(&r.memory) {
            memories.push(r.memory);
        }
    }
    for m in memories {
        let rows: Vec<&PinResult> = suite.results.iter().filter(|r| r.memory == m).collect();
        let reasons: Vec<&str> = rows
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Skipped { reason } => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        let Some(&why) = reasons.first() else {
            continue;
        };
        if reasons.len() != rows.len() || reasons.iter().any(|x| *x != why) {
            continue;
        }
        match by_reason.iter_mut().find(|(w, _)| *w == why) {
            Some((_, ms)) => ms.push(m.to_string()),
            None => by_reason.push((why, vec![m.to_string()])),
        }
    }
    by_reason
        .into_iter()
        .map(|(why, ms)| format!("not in the table: {}: {why}", ms.join(", ")))
        .collect()
}

/// The first screen's ns per pinned page and the time against the same driver's 4K row
/// (`base_4k`), per measured row: the pin's median, or O_DIRECT's whole read.
fn pin_derived(suite: &PinSuite) -> Vec<crate::suite::Derived> {
    let median_ns = |r: &PinResult| {
        crate::stats::median(
            &r.samples
                .iter()
                .map(|x| x.pin_ns as f64)
                .collect::<Vec<_>>(),
        )
    };
    let measured = || {
        suite
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Measured)
    };
    let subject = |r: &PinResult| format!("{} {}", r.memory, r.driver.name());
    let per_page = measured()
        .filter_map(|r| {
            let t = median_ns(r)?;
            (r.pages > 0).then(|| (subject(r), crate::units::short(t / r.pages as f64)))
        })
        .collect();
    let vs_4k = measured()
        .filter_map(|r| {
            let base = r.memory.base_4k()?;
            let b = measured().find(|x| x.memory == base && x.driver == r.driver)?;
            let ratio = median_ns(r)? / median_ns(b)?;
            Some((subject(r), format!("{ratio:.2}×")))
        })
        .collect();
    let per_folio = measured()
        .filter_map(|r| {
            let folio = r.memory.folio_pages()?;
            let per_page = r.grabs.as_ref()?.per_page()?;
            Some((subject(r), crate::units::short(per_page * folio as f64)))
        })
        .collect();
    vec![
        ("ns per page".into(), per_page),
        ("grabs per folio".into(), per_folio),
        ("time vs 4K".into(), vs_4k),
    ]
}

impl crate::suite::SuiteReport for PinSuite {
    fn first_screen_derived(&self) -> Vec<crate::suite::Derived> {
        pin_derived(self)
    }
    fn first_screen_notes(&self) -> Vec<String> {
        not_measured_memories(self)
    }
    fn first_screen(&self) -> (&'static str, &'static [(&'static str, &'static str)]) {
        (
            "pin time and grabs per memory and driver (vs 4K: devdax against devdax:4K of the same map, THP and HugeTLB against anon:4K)",
            &[
                ("pin", "pin (ms)"),
                ("unpin", "unpin (ms)"),
                ("read_with_pin_io_unpin", "O_DIRECT read (ms)"),
                ("grabs_per_page", "grabs per page"),
            ],
        )
    }
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
    fn outcomes(&self) -> Vec<(String, Outcome)> {
        self.results
            .iter()
            .map(|x| {
                (
                    format!("pin {} {}", x.memory, x.driver.name()),
                    x.outcome.clone(),
                )
            })
            .collect()
    }
    fn suite(&self) -> crate::suite::Suite {
        crate::suite::Suite::Pin
    }
    fn metrics(&self) -> Vec<crate::metric::Metric> {
        <PinSuite as crate::metric::Metrics>::metrics(self)
    }
    fn charts(&self) -> Vec<Chart> {
        PinSuite::charts(self)
    }
    fn checks(&self) -> Vec<(String, Check)> {
        crate::suite::named_checks(crate::suite::Suite::Pin, &self.checks)
    }
    fn render_text(&self, o: &mut String) {
        let _ = writeln!(o);
        PinSuite::render_text(self, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memories with no row in the first screen are named under it, by reason; a
    /// memory measured with one driver and skipped with another is in the table.
    #[test]
    fn the_first_screen_names_the_memories_it_leaves_out() {
        let skipped = |mem: &str, driver: PinDriver, reason: &str| PinResult {
            outcome: Outcome::Skipped {
                reason: reason.into(),
            },
            ..row(mem, driver, 0, 0)
        };
        let why = "not pinned: instruction time does not count where the struct pages are";
        let suite = PinSuite {
            results: vec![
                row("devdax:2M:mem", PinDriver::IoUring, 10, 512),
                skipped("devdax:2M:mem", PinDriver::GupTestPinFast, "no gup_test"),
                skipped("devdax:2M:dev", PinDriver::IoUring, why),
                skipped("devdax:2M:dev", PinDriver::GupTestPinFast, why),
                skipped("fsdax:dev", PinDriver::IoUring, why),
                skipped("anon:thp", PinDriver::IoUring, "could not map anon:thp"),
            ],
            ..Default::default()
        };
        assert_eq!(
            not_measured_memories(&suite),
            [
                format!("not in the table: devdax:2M:dev, fsdax:dev: {why}"),
                "not in the table: anon:thp: could not map anon:thp".to_string(),
            ]
        );
        assert!(not_measured_memories(&PinSuite::default()).is_empty());
    }

    fn row(mem: &str, driver: PinDriver, pin: u64, grabs: u64) -> PinResult {
        PinResult {
            memory: mem.parse().unwrap(),
            driver,
            outcome: Outcome::Measured,
            bytes: 1 << 30,
            pages: 262144,
            warmup_rounds: 1,
            samples: vec![PinSample {
                pin_ns: pin,
                unpin_ns: Some(pin / 10),
            }],
            kernel: vec![],
            traced_samples: vec![],
            kernel_rounds: 1,
            grabs: Some(Grabs {
                pages: 262144,
                calls: grabs,
                refs: 262144,
                by_function: vec![],
                releases: vec![],
                gup_calls: None,
                foll_pin: None,
            }),
        }
    }

    #[test]
    fn memories_parse_and_print_back() {
        for s in [
            "devdax:2M:dev",
            "fsdax:mem",
            "anon:4K",
            "anon:thp",
            "hugetlb:2M",
            "hugetlb:1G",
        ] {
            assert_eq!(s.parse::<PinMemory>().unwrap().to_string(), s);
        }
        // Pages per folio where the memory fixes it: devdax by its align, HugeTLB by its
        // page size; anonymous memory and fsdax by nothing.
        let pages = |s: &str| s.parse::<PinMemory>().unwrap().folio_pages();
        assert_eq!(pages("devdax:2M:mem"), Some(512));
        assert_eq!(pages("hugetlb:2M"), Some(512));
        assert_eq!(pages("hugetlb:1G"), Some(262144));
        assert_eq!(pages("anon:thp"), None);
        assert_eq!(pages("fsdax:dev"), None);
        assert!("hugetlb:4M".parse::<PinMemory>().is_err());
        assert!("pfnmap"
            .parse::<PinMemory>()
            .unwrap_err()
            .contains("no struct pages"));
        let e = "devdax:3M:mem".parse::<PinMemory>().unwrap_err();
        assert!(e.contains("anon:thp") && e.contains("devdax:3M:mem"), "{e}");
        let json = serde_json::to_string(&PinMemory::Anon { thp: true }).unwrap();
        assert_eq!(json, "\"anon:thp\"");
        assert_eq!(PinMemory::all().len(), 10);
    }

    /// Seen on 6.12: long-term pins fall 4K -> 2M -> 1G.
    #[test]
    fn order_checks_say_what_falls_and_what_does_not() {
        let rs = vec![
            row("devdax:4K:mem", PinDriver::IoUring, 280, 262144),
            row("devdax:2M:mem", PinDriver::IoUring, 40, 1024),
            row("devdax:1G:mem", PinDriver::IoUring, 2, 2),
            row("devdax:4K:mem", PinDriver::Odirect, 900, 262144),
            row("devdax:2M:mem", PinDriver::Odirect, 1000, 262144),
        ];
        let c = order_checks(&rs);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].what.starts_with("io_uring") && c[0].agrees, "{c:?}");
        assert!(c[1].what.starts_with("odirect") && !c[1].agrees, "{c:?}");
    }

    /// Held to what is possible: one grab per folio per call. Seen on 6.12 (1 GiB): long-term
    /// io_uring pins of 2M devdax take 1024 grabs in 512 calls of one folio (1 + 511 refs);
    /// gup_test's 512-page calls on 1G devdax cannot grab less than once per call; GUP-fast
    /// on 2M devdax grabs every base page.
    #[test]
    fn grabs_are_held_to_one_per_folio_per_call() {
        let with_calls = |mut r: PinResult, calls: u64| {
            r.grabs.as_mut().unwrap().gup_calls = Some(calls);
            r
        };
        let rs = vec![
            with_calls(row("devdax:2M:mem", PinDriver::IoUring, 40, 1024), 512),
            with_calls(row("devdax:1G:mem", PinDriver::GupTestPinFast, 2, 512), 512),
            with_calls(
                row("devdax:2M:mem", PinDriver::GupTestPinFast, 9, 262144),
                512,
            ),
            row("devdax:4K:mem", PinDriver::Odirect, 900, 262144),
        ];
        let c = grab_checks(&rs);
        assert_eq!(c.len(), 4);
        assert!(c[0].agrees, "{}", c[0].detail);
        assert!(
            c[0].detail.contains("fewest possible 512"),
            "{}",
            c[0].detail
        );
        assert!(c[1].agrees, "{}", c[1].detail);
        assert!(
            c[1].detail.contains("512 pages per call"),
            "{}",
            c[1].detail
        );
        assert!(!c[2].agrees);
        assert!(c[2].detail.contains("grabs per page"), "{}", c[2].detail);
        assert!(!c[3].measured, "no GUP calls traced: SKIP, {:?}", c[3]);
        // HugeTLB rows are held to their page size as devdax rows to their align.
        let c = grab_checks(&[
            with_calls(row("hugetlb:2M", PinDriver::IoUring, 40, 512), 512),
            with_calls(row("hugetlb:2M", PinDriver::Odirect, 40, 262144), 512),
        ]);
        assert_eq!(c.len(), 2);
        assert!(
            c[0].what.starts_with("io_uring hugetlb:2M"),
            "{}",
            c[0].what
        );
        assert!(
            c[0].agrees && c[0].detail.contains("512-page folio"),
            "{}",
            c[0].detail
        );
        assert!(
            !c[1].agrees && c[1].detail.contains("grabs per page"),
            "{}",
            c[1].detail
        );
        // Seen on 6.12, O_DIRECT of 256 MiB of 4K devdax: 257 bios of at most 255 pages,
        // one grab per page, which is the fewest for 4K folios.
        let mut od = with_calls(row("devdax:4K:mem", PinDriver::Odirect, 900, 65536), 257);
        od.grabs.as_mut().unwrap().pages = 65536;
        let c = grab_checks(&[od]);
        assert!(c[0].agrees, "{}", c[0].detail);
        assert!(
            c[0].detail.contains("fewest possible 65536"),
            "{}",
            c[0].detail
        );
    }

    /// Seen on 6.12 (64 MiB devdax 2M:mem): 16384 present pfns, all with a struct page in the
    /// vmemmap, kpageflags NOPAGE for all; a BAR's pfns read 0 and must fail this check.
    #[test]
    fn struct_page_check_says_present_for_devdax_and_fails_without() {
        let prepared = |memory: &str, n: Option<u64>| Prepared {
            memory: memory.parse().unwrap(),
            touch_ns: None,
            usable_size: None,
            thp_bytes: None,
            mapped: String::new(),
            pages: Some(PageFacts {
                pages: 16384,
                present: 16384,
                flags: vec![("NOPAGE".into(), 16384)],
                vmemmap_struct_pages: n,
                vmemmap_error: n.is_none().then(|| "no vmemmap_base".to_string()),
                ..Default::default()
            }),
            pages_error: None,
        };
        let c = struct_page_checks(&[
            prepared("devdax:2M:mem", Some(16384)),
            prepared("devdax:4K:dev", Some(0)),
            prepared("fsdax:mem", None),
            prepared("anon:thp", Some(16384)),
        ]);
        assert_eq!(c.len(), 3, "anonymous memory is not a dax control: {c:?}");
        assert!(c[0].agrees && c[0].measured, "{:?}", c[0]);
        assert!(c[0].detail.contains("16384 of 16384"), "{}", c[0].detail);
        assert!(
            c[0].detail.contains("kpageflags shows 0"),
            "{}",
            c[0].detail
        );
        assert!(!c[1].agrees && c[1].measured, "{:?}", c[1]);
        assert!(!c[2].measured && c[2].detail.contains("no vmemmap_base"));
    }

    /// The kernel's pin counters against the probes: equal on a pin (7.3's devdax:2M
    /// double grab counts in both: 16896 for 16384 pages), every pin released; a leak and a
    /// FOLL_GET path that moved the pin counter are mismatches; O_DIRECT with FOLL_GET is
    /// not applicable.
    #[test]
    fn the_kernels_pin_counters_witness_the_probes() {
        let with = |memory, driver, refs: u64, acquired: i64, released: i64| {
            let mut r = row(memory, driver, 1_000_000, 1);
            let g = r.grabs.as_mut().unwrap();
            g.refs = refs;
            g.foll_pin = Some(FollPins {
                acquired,
                released,
                held: None,
            });
            r
        };
        let c = foll_pin_checks(&[
            with("devdax:2M:mem", PinDriver::IoUring, 16896, 16896, 16896),
            with(
                "devdax:2M:mem",
                PinDriver::GupTestPinFast,
                16384,
                16384,
                16383,
            ),
            with("anon:thp", PinDriver::GupTestGupFast, 16384, 0, 0),
            with("anon:thp", PinDriver::GupTestGupFast, 16384, 512, 512),
            with("devdax:2M:mem", PinDriver::Odirect, 16384, 0, 0),
        ]);
        let verdicts: Vec<(bool, bool)> = c.iter().map(|c| (c.measured, c.agrees)).collect();
        assert_eq!(
            verdicts,
            [
                (true, true),   // io_uring: acquired = references
                (true, true),   // io_uring: all released
                (true, true),   // pin_fast: acquired = references
                (true, false),  // pin_fast: one pin left
                (true, true),   // gup_fast: no pin
                (true, false),  // gup_fast: the counter moved
                (false, false), // O_DIRECT with FOLL_GET: not applicable
            ],
            "{c:#?}"
        );
        assert!(
            c[0].detail.contains("nr_foll_pin_acquired +16896"),
            "{}",
            c[0].detail
        );
        // Pins held by a registration: one per page (6.1) or per folio (6.12+: 512 for
        // 1 GiB of 2M folios) is seen; none seen means the witness is blind.
        let held = |h: i64| {
            let mut r = with("devdax:2M:mem", PinDriver::IoUring, 262144, 262144, 262144);
            r.pages = 262144;
            r.grabs.as_mut().unwrap().foll_pin.as_mut().unwrap().held = Some(h);
            foll_pin_checks(&[r])
                .into_iter()
                .find(|c| c.what.ends_with("seen as held (vmstat)"))
                .unwrap()
        };
        assert!(held(262144).agrees && held(512).agrees && held(1).agrees);
        assert!(
            held(512).detail.contains("one per 512-page folio"),
            "{}",
            held(512).detail
        );
        assert!(!held(0).agrees && !held(100).agrees);
    }

    /// Seen on Debian 6.1, 64 MiB of devdax:2M:mem: AF_XDP's UMEM registration pins it
    /// long-term (io_uring refuses it there) with one try_grab_page per base page; its
    /// releases run after an RCU grace period outside the process, so the table says "-"
    /// for them, not 0, and its time is not a plain pin time.
    /// Paths from sampled stacks say so; paths of every call's stack, and no stacks, do not.
    #[test]
    fn sampled_call_paths_say_how_often_a_stack_was_taken() {
        let grab = |stacks_every| GrabFunction {
            function: "try_grab_folio".into(),
            calls: 262144,
            refs: 262144,
            refs_values: vec![],
            // Seen on 6.12.118, 1 GiB of devdax:2M:mem, io_uring, 1 stack in 64.
            stacks: vec![crate::trace::StackCount {
                frames: vec!["try_grab_folio".into(), "follow_devmap_pmd".into()],
                calls: 4096,
                arg_sum: 4096,
            }],
            stacks_every,
        };
        let g = |stacks_every| Grabs {
            pages: 262144,
            calls: 262144,
            refs: 262144,
            by_function: vec![grab(stacks_every)],
            releases: vec![],
            gup_calls: Some(1),
            foll_pin: None,
        };
        assert_eq!(
            g(64).paths(),
            "; call paths (the stacks of 1 call in 64): 4096× try_grab_folio ← follow_devmap_pmd"
        );
        assert_eq!(
            g(0).paths(),
            "; call paths: 4096× try_grab_folio ← follow_devmap_pmd"
        );
        let mut none = g(64);
        none.by_function[0].stacks.clear();
        assert_eq!(none.paths(), "");
    }

    #[test]
    fn xdp_umem_rows_say_their_releases_are_not_counted() {
        let mut r = row("devdax:2M:mem", PinDriver::XdpUmem, 10_970_000, 16384);
        r.samples[0].unpin_ns = None;
        r.grabs = Some(Grabs {
            pages: 16384,
            calls: 16384,
            refs: 16384,
            by_function: vec![GrabFunction {
                function: "try_grab_page".into(),
                calls: 16384,
                refs: 16384,
                refs_values: vec![],
                stacks: vec![],
                stacks_every: 0,
            }],
            releases: vec![GrabFunction {
                function: "unpin_user_pages".into(),
                calls: 0,
                refs: 0,
                refs_values: vec![],
                stacks: vec![],
                stacks_every: 0,
            }],
            gup_calls: Some(1),
            foll_pin: None,
        });
        let suite = PinSuite {
            size: 64 << 20,
            repeat: 1,
            results: vec![r],
            ..Default::default()
        };
        let mut o = String::new();
        suite.render_text(&mut o);
        let line = o
            .lines()
            .find(|l| l.starts_with("devdax:2M:mem  xdp_umem"))
            .unwrap();
        assert!(line.trim_end().ends_with("1.000000          -"), "{line}");
        assert!(
            o.contains("releases not counted: the socket's release unpins"),
            "{o}"
        );
        let names: Vec<String> = suite.metrics().into_iter().map(|m| m.name).collect();
        assert!(
            names.contains(&"umem_pin_and_vmap".to_string()),
            "{names:?}"
        );
        assert!(!names.contains(&"pin".to_string()), "{names:?}");
    }

    #[test]
    fn refused_and_skipped_rows_stay_in_the_table() {
        let mut refused = row("fsdax:mem", PinDriver::IoUring, 0, 0);
        refused.outcome = Outcome::Refused {
            errno: "EOPNOTSUPP".into(),
            detail: "io_uring buffer registration refused".into(),
        };
        refused.samples.clear();
        let mut skipped = row("devdax:2M:mem", PinDriver::GupTestPinFast, 0, 0);
        skipped.outcome = Outcome::Skipped {
            reason: "no gup_test".into(),
        };
        let suite = PinSuite {
            size: 1 << 30,
            repeat: 5,
            results: vec![
                row("devdax:4K:mem", PinDriver::IoUring, 2_000_000, 262144),
                refused,
                skipped,
            ],
            ..Default::default()
        };
        let mut o = String::new();
        suite.render_text(&mut o);
        assert!(
            o.contains("fsdax:mem      io_uring              refused by kernel (EOPNOTSUPP)"),
            "{o}"
        );
        assert!(o.contains("skipped: no gup_test"), "{o}");
        assert!(o.contains("1.000"), "{o}");
        let back: PinSuite = serde_json::from_str(&serde_json::to_string(&suite).unwrap()).unwrap();
        assert_eq!(back, suite);
    }

    /// Three latency rounds of one 65536-page GUP call each: kpin is per round, and the
    /// percentiles come from the merged histograms of the entry points.
    #[test]
    fn kernel_latency_is_per_round_with_percentiles() {
        let mut r = row("devdax:4K:mem", PinDriver::IoUring, 280, 65536);
        let mut slots = vec![0u64; 64];
        slots[24] = 2; // [16.8 ms, 33.6 ms)
        slots[25] = 1; // [33.6 ms, 67.1 ms)
        r.kernel = vec![ProbeStats {
            probe: "pin_user_pages_fast".into(),
            group: crate::facts::Group::Pin,
            function: "pin_user_pages_fast".into(),
            flavour: crate::facts::Flavour::Fentry,
            calls: 3,
            returns: 3,
            total_ns: 90_000_000,
            latency_log2: slots,
            arg_name: None,
            arg_log2: vec![],
            arg_values: vec![],
            arg_sum: 0,
            arg_values_dropped: 0,
            stacks: vec![],
            outside_vmas: 0,
        }];
        r.kernel_rounds = 3;
        assert_eq!(r.kernel_ns(PIN_PROBES), Some(30_000_000));
        assert_eq!(r.kernel_percentile_ns(0.5), Some(1 << 25));
        assert_eq!(r.kernel_percentile_ns(0.99), Some(1 << 26));
        let old: PinResult = serde_json::from_value({
            let mut v = serde_json::to_value(&r).unwrap();
            v.as_object_mut().unwrap().remove("kernel_rounds");
            v
        })
        .unwrap();
        assert_eq!(old.kernel_rounds, 1, "results from before count one round");
    }
}
