//! The hugetlb suite's results: HugeTLB's vmemmap optimization (HVO, "Free some vmemmap
//! pages of hugetlb page", 5.18), the trick device-dax's compound devmaps copied, in its
//! original setting. Per huge page size, with `vm.hugetlb_optimize_vmemmap` off and on: the
//! struct page memory the pool's pages keep (free memory and `nr_memmap_pages`, against a
//! model), and the time to grow the pool and to shrink it again (HVO must restore the
//! vmemmap before a page goes back to the buddy allocator).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::chart::{Chart, Series};
use crate::check::{equal_signed, Check};
use crate::metric::{measured, ms, MetricSpec, Metrics};
use crate::outcome::Outcome;
use crate::stats::median;
use crate::suite::{named_checks, Suite, SuiteReport};
use crate::trace::ProbeStats;

const PAGE_KB: u64 = 4;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HugetlbSuite {
    /// Bytes of huge pages asked for per page size (at least one page).
    pub size: u64,
    pub repeat: usize,
    pub method: String,
    /// sizeof(struct page), which the model uses.
    pub struct_page: u64,
    /// `vm.hugetlb_optimize_vmemmap` as found (restored afterwards); None: the kernel has
    /// no such control (no HVO), and the "on" rows are skipped.
    pub hvo_control: Option<bool>,
    pub results: Vec<HugetlbResult>,
    /// Pools reserved on the kernel command line (`hugepagesz=1G hugepages=N`), released
    /// once at the start: in foliobench's test VM only, where 1G pages cannot be had at run
    /// time and nothing else owns them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boot_pools: Vec<BootPoolRelease>,
    pub checks: Vec<Check>,
}

/// A boot-time pool emptied by one write of `nr_hugepages`: what freeing pages that were
/// allocated (and, with HVO, optimized) at boot gives back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootPoolRelease {
    pub page_kb: u64,
    /// Pages the pool held, all free.
    pub pages: u64,
    /// HVO as the kernel booted (`hugetlb_free_vmemmap=`, or its config default): what the
    /// boot's pages got.
    pub hvo: bool,
    /// The write of 0, ns.
    pub free_ns: u64,
    /// Free memory the release gave back (settled), kB.
    pub returned_kb: i64,
    /// `nr_memmap_pages` and `nr_memmap_boot_pages` change while releasing.
    pub memmap_pages: Option<i64>,
    pub memmap_boot_pages: Option<i64>,
}

impl BootPoolRelease {
    pub fn subject(&self) -> String {
        format!(
            "{} boot pool hvo={}",
            size_name(self.page_kb),
            on_off(self.hvo)
        )
    }

    /// Both memmap counters' change.
    pub fn memmap(&self) -> Option<i64> {
        both(self.memmap_pages, self.memmap_boot_pages)
    }

    /// The checks, against the model: with HVO the release restores every page's vmemmap
    /// first (the memmap counters grow by the pages HVO had freed, and free memory gets the
    /// pages less that), without it nothing is restored.
    pub fn checks(&self, struct_page: u64) -> Vec<Check> {
        let per_page = if self.hvo {
            hvo_freed_pages(self.page_kb, struct_page)
        } else {
            0
        };
        let restored = (per_page * self.pages) as i64;
        let expected_kb = (self.pages * self.page_kb) as i64 - restored * PAGE_KB as i64;
        let name = self.subject();
        vec![
            Check::new(
                format!("{name}: free memory given back by the release"),
                (self.returned_kb - expected_kb).abs() <= FREE_MEMORY_SLACK_KB,
                format!(
                    "{} kB against the model's {expected_kb} kB ({} pages of {} kB, less {restored} vmemmap pages restored; within {FREE_MEMORY_SLACK_KB} kB)",
                    self.returned_kb,
                    self.pages,
                    self.page_kb
                ),
            ),
            memmap_check(
                format!("{name}: nr_memmap_pages + nr_memmap_boot_pages while releasing"),
                vec![self.memmap()],
                restored,
            ),
        ]
    }
}

/// One huge page size with HVO off or on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HugetlbResult {
    pub page_kb: u64,
    pub hvo: bool,
    pub outcome: Outcome,
    /// Pages asked for.
    pub pages: u64,
    pub samples: Vec<HugetlbSample>,
    /// One traced round (growing and shrinking the pool once): the vmemmap probes.
    #[serde(default)]
    pub probes: Vec<ProbeStats>,
}

/// One round: the pool grown from 0 to `pages`, then shrunk to 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HugetlbSample {
    /// `nr_hugepages` read back after growing.
    pub obtained: u64,
    /// The write that grew the pool, ns.
    pub alloc_ns: u64,
    /// The write that shrank it to 0, ns.
    pub free_ns: u64,
    /// Free memory (buddy and per-CPU lists, settled) the grown pool took, kB.
    pub taken_kb: i64,
    /// Free memory the shrink gave back (settled, against the full pool), kB. With HVO on,
    /// 6.12 showed -3584 kB for 128 2M pages: the restored vmemmap taken, the pages not yet
    /// back when free memory stopped moving.
    pub returned_kb: i64,
    /// `nr_memmap_pages` (6.11+) change while growing, and while shrinking.
    pub memmap_pages_grow: Option<i64>,
    pub memmap_pages_shrink: Option<i64>,
    /// `nr_memmap_boot_pages` (6.11+) likewise: a pool page whose vmemmap was allocated at
    /// boot gives its pages back to this counter, and takes its new head page from the
    /// other (6.12: +1 and -8 per 2M page).
    #[serde(default)]
    pub memmap_boot_pages_grow: Option<i64>,
    #[serde(default)]
    pub memmap_boot_pages_shrink: Option<i64>,
}

impl HugetlbSample {
    /// Both memmap counters' change while growing (None: the kernel has neither).
    pub fn memmap_grow(&self) -> Option<i64> {
        both(self.memmap_pages_grow, self.memmap_boot_pages_grow)
    }

    /// Both memmap counters' change while shrinking.
    pub fn memmap_shrink(&self) -> Option<i64> {
        both(self.memmap_pages_shrink, self.memmap_boot_pages_shrink)
    }

    /// vmemmap the optimization gave back, kB: what the pages' own memory would take, less
    /// what free memory says was taken.
    pub fn vmemmap_freed_kb(&self, page_kb: u64) -> i64 {
        (self.obtained * page_kb) as i64 - self.taken_kb
    }
}

/// The model of one huge page's struct pages: `page_kb / 4` struct pages of `struct_page`
/// bytes, in 4 KiB vmemmap pages; HVO keeps one (the head's, which the tails' entries map)
/// and frees the rest (7 of 8 at 2M, 4095 of 4096 at 1G with a 64-byte struct page).
pub fn vmemmap_pages(page_kb: u64, struct_page: u64) -> u64 {
    (page_kb / PAGE_KB * struct_page).div_ceil(PAGE_KB * 1024)
}

/// vmemmap pages HVO frees per huge page; 0 when it cannot apply (struct page not a power
/// of two, or its vmemmap fits in one page).
pub fn hvo_freed_pages(page_kb: u64, struct_page: u64) -> u64 {
    if !struct_page.is_power_of_two() {
        return 0;
    }
    vmemmap_pages(page_kb, struct_page).saturating_sub(1)
}

fn both(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

/// Free memory readings move by up to this much around a settled reading (the per-CPU
/// lists and other tasks): a freed-vmemmap figure is checked within it.
pub const FREE_MEMORY_SLACK_KB: i64 = 512;

impl HugetlbResult {
    pub fn subject(&self) -> String {
        format!("{} hvo={}", size_name(self.page_kb), on_off(self.hvo))
    }

    fn median_of(&self, f: impl Fn(&HugetlbSample) -> f64) -> Option<f64> {
        median(&self.samples.iter().map(f).collect::<Vec<_>>())
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

pub fn size_name(kb: u64) -> String {
    if kb >= 1 << 20 {
        format!("{}G", kb >> 20)
    } else {
        format!("{}M", kb >> 10)
    }
}

/// The checks: per row, the vmemmap freed against the model (free memory, and
/// `nr_memmap_pages` where the kernel has it), and every round obtaining all its pages.
/// Off is the negative control, on the positive: a kernel where HVO did not apply fails
/// the "on" rows.
pub fn checks(results: &[HugetlbResult], struct_page: u64) -> Vec<Check> {
    let mut v = Vec::new();
    for r in results.iter().filter(|r| r.outcome == Outcome::Measured) {
        let per_page = if r.hvo {
            hvo_freed_pages(r.page_kb, struct_page)
        } else {
            0
        };
        let name = r.subject();
        let short: Vec<&HugetlbSample> =
            r.samples.iter().filter(|s| s.obtained != r.pages).collect();
        v.push(Check::new(
            format!("{name}: every round obtained its {} pages", r.pages),
            short.is_empty(),
            if short.is_empty() {
                format!("{} rounds", r.samples.len())
            } else {
                format!(
                    "{} of {} rounds obtained fewer",
                    short.len(),
                    r.samples.len()
                )
            },
        ));
        let freed: Vec<i64> = r
            .samples
            .iter()
            .map(|s| s.vmemmap_freed_kb(r.page_kb))
            .collect();
        let expected_kb = (per_page * PAGE_KB * r.pages) as i64;
        // Free memory is a noisy witness: other tasks allocate and free in the window (7.3
        // once gave back 712 kB more; on a busy host, hundreds of MB either way). Its noise
        // lands on either side, while HVO that did not apply (or applied when off) moves
        // every round by the whole model: the round closest to the model is judged, every
        // round shown.
        v.push(Check::new(
            format!("{name}: vmemmap freed, by free memory"),
            closest_round_agrees(&freed, expected_kb),
            format!(
                "{} kB per round against the model's {expected_kb} kB ({per_page} of {} vmemmap pages per {} page, {} pages; the closest round within {FREE_MEMORY_SLACK_KB} kB)",
                kb_list(&freed),
                vmemmap_pages(r.page_kb, struct_page),
                size_name(r.page_kb),
                r.pages,
            ),
        ));
        // The shrink gives the pool's pages back, less the vmemmap restored first. Seen on
        // Debian 6.12.118 with HVO on: nothing came back (a 4 GiB guest's free memory fell
        // by the pool's size every round, and stayed down), while 7.3.4 gave it back.
        let back_kb = (r.pages * r.page_kb) as i64 - expected_kb;
        let returned: Vec<i64> = r.samples.iter().map(|s| s.returned_kb).collect();
        v.push(Check::new(
            format!("{name}: free memory given back by the shrink"),
            closest_round_agrees(&returned, back_kb),
            format!(
                "{} kB per round against the model's {back_kb} kB (the pool's {} pages, less the vmemmap restored; the closest round within {FREE_MEMORY_SLACK_KB} kB)",
                kb_list(&returned),
                r.pages,
            ),
        ));
        let freed = (per_page * r.pages) as i64;
        v.push(memmap_check(
            format!("{name}: nr_memmap_pages + nr_memmap_boot_pages while growing the pool"),
            r.samples.iter().map(HugetlbSample::memmap_grow).collect(),
            -freed,
        ));
        v.push(memmap_check(
            format!("{name}: nr_memmap_pages + nr_memmap_boot_pages while shrinking the pool"),
            r.samples.iter().map(HugetlbSample::memmap_shrink).collect(),
            freed,
        ));
    }
    v
}

/// Whether the round closest to the model is within the free-memory slack of it.
fn closest_round_agrees(rounds: &[i64], model_kb: i64) -> bool {
    rounds
        .iter()
        .map(|f| (f - model_kb).abs())
        .min()
        .is_some_and(|d| d <= FREE_MEMORY_SLACK_KB)
}

fn kb_list(rounds: &[i64]) -> String {
    rounds
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The memmap counters' change in every round, against the vmemmap pages the model frees
/// (growing) or restores (shrinking); a SKIP on a kernel without them.
fn memmap_check(what: String, changes: Vec<Option<i64>>, expected: i64) -> Check {
    let seen: Vec<i64> = changes.iter().flatten().copied().collect();
    let Some(&first) = seen.first() else {
        return Check::skipped(
            what,
            "this kernel has no nr_memmap_pages in /proc/vmstat (6.11+)",
        );
    };
    let mut c = equal_signed(&what, first, expected, " (vmemmap pages, the model's)");
    if seen.iter().any(|g| *g != first) {
        c.agrees = false;
        c.detail = format!("rounds differ: {seen:?}; {}", c.detail);
    }
    c
}

impl Metrics for HugetlbSuite {
    type Row = HugetlbResult;
    const SUITE: &'static str = "hugetlb";
    const METRICS: &'static [MetricSpec<Self, HugetlbResult>] = &[
        MetricSpec::time("grow_pool", |_, r| {
            r.samples.iter().map(|s| ms(s.alloc_ns)).collect()
        }),
        MetricSpec::time("shrink_pool", |_, r| {
            r.samples.iter().map(|s| ms(s.free_ns)).collect()
        }),
        // Free memory is a noisy witness (a check and a chart, not a metric): the memmap
        // counters are the exact figure a comparison can judge.
        MetricSpec::count(
            "memmap_pages_grow",
            "pages",
            crate::metric::Better::Lower,
            |_, r| {
                r.samples
                    .iter()
                    .filter_map(|x| x.memmap_grow().map(|v| v as f64))
                    .collect()
            },
        ),
        MetricSpec::count(
            "memmap_pages_shrink",
            "pages",
            crate::metric::Better::Lower,
            |_, r| {
                r.samples
                    .iter()
                    .filter_map(|x| x.memmap_shrink().map(|v| v as f64))
                    .collect()
            },
        ),
    ];
    fn subjects(&self) -> Vec<(String, &HugetlbResult)> {
        measured(&self.results, |r| &r.outcome, HugetlbResult::subject)
    }
}

impl HugetlbSuite {
    pub fn charts(&self) -> Vec<Chart> {
        let sizes: Vec<u64> = {
            let mut v: Vec<u64> = self.results.iter().map(|r| r.page_kb).collect();
            v.dedup();
            v
        };
        let row = |kb: u64, hvo: bool| {
            self.results
                .iter()
                .find(|r| r.page_kb == kb && r.hvo == hvo && r.outcome == Outcome::Measured)
        };
        let cats: Vec<String> = sizes.iter().map(|&kb| size_name(kb)).collect();
        // Struct page memory per GiB of huge pages: measured (free memory) and the model.
        let per_gib = |kb: u64, hvo: bool| {
            let r = row(kb, hvo)?;
            let full = (vmemmap_pages(kb, self.struct_page) * PAGE_KB) as f64;
            let kept =
                r.median_of(|s| full - s.vmemmap_freed_kb(kb) as f64 / s.obtained.max(1) as f64)?;
            Some(kept * (1 << 20) as f64 / kb as f64)
        };
        let model = |kb: u64, hvo: bool| {
            let kept = vmemmap_pages(kb, self.struct_page)
                - if hvo {
                    hvo_freed_pages(kb, self.struct_page)
                } else {
                    0
                };
            Some(((kept * PAGE_KB) << 20) as f64 / kb as f64)
        };
        let memory = Chart {
            title: "struct page memory per GiB of HugeTLB pages, HVO off and on (median; model)"
                .into(),
            y_label: "kB per GiB (log)".into(),
            log_y: true,
            categories: cats.clone(),
            series: [false, true]
                .into_iter()
                .flat_map(|hvo| {
                    [
                        Series::of_values(
                            format!("measured, hvo={}", on_off(hvo)),
                            sizes.iter().map(|&kb| per_gib(kb, hvo)).collect(),
                        ),
                        Series::of_values(
                            format!("model, hvo={}", on_off(hvo)),
                            sizes.iter().map(|&kb| model(kb, hvo)).collect(),
                        ),
                    ]
                })
                .collect(),
        };
        vec![memory, self.times_chart(&sizes, cats)]
    }

    /// Grow and shrink times per size, HVO off and on.
    fn times_chart(&self, sizes: &[u64], cats: Vec<String>) -> Chart {
        let row = |kb: u64, hvo: bool| {
            self.results
                .iter()
                .find(|r| r.page_kb == kb && r.hvo == hvo && r.outcome == Outcome::Measured)
        };
        Chart {
            title: format!(
                "time to grow the pool to {} MiB and shrink it again (median and samples)",
                self.size >> 20
            ),
            y_label: "ms (log)".into(),
            log_y: true,
            categories: cats,
            series: [(false, true), (true, true), (false, false), (true, false)]
                .into_iter()
                .map(|(hvo, grow)| {
                    Series::of_samples(
                        format!(
                            "{} hvo={}",
                            if grow { "grow" } else { "shrink" },
                            on_off(hvo)
                        ),
                        sizes
                            .iter()
                            .map(|&kb| {
                                row(kb, hvo).map_or_else(Vec::new, |r| {
                                    r.samples
                                        .iter()
                                        .map(|s| ms(if grow { s.alloc_ns } else { s.free_ns }))
                                        .collect()
                                })
                            })
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    /// The boot pools released, one line each.
    fn render_boot_pools(&self, o: &mut String) {
        for b in &self.boot_pools {
            let _ = writeln!(
                o,
                "  boot pool, {} x {} (reserved on the command line, released once): {:.3} ms, free memory {:+} kB, memmap pages {}",
                size_name(b.page_kb),
                b.pages,
                ms(b.free_ns),
                b.returned_kb,
                b.memmap().map_or("-".into(), |d| format!("{d:+}")),
            );
        }
    }

    pub fn render_text(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "hugetlb suite: {} MiB of huge pages per size, {} rounds; {}",
            self.size >> 20,
            self.repeat,
            self.method
        );
        let _ = writeln!(
            o,
            "vm.hugetlb_optimize_vmemmap: {}",
            match self.hvo_control {
                Some(b) => format!("{} as found, restored afterwards", on_off(b)),
                None => "absent: this kernel has no HugeTLB vmemmap optimization".into(),
            }
        );
        let _ = writeln!(
            o,
            "{:<6} {:<4} {:>6} {:>12} {:>12} {:>14} {:>10} {:>16}",
            "size",
            "hvo",
            "pages",
            "grow ms",
            "shrink ms",
            "vmemmap freed",
            "model",
            "nr_memmap_pages"
        );
        for r in &self.results {
            if let Outcome::Measured = r.outcome {
                let med = |f: &dyn Fn(&HugetlbSample) -> f64| {
                    r.median_of(f).map_or("-".into(), |v| format!("{v:.3}"))
                };
                let freed = r
                    .median_of(|s| s.vmemmap_freed_kb(r.page_kb) as f64)
                    .map_or("-".into(), |v| format!("{v:.0} kB"));
                let per_page = if r.hvo {
                    hvo_freed_pages(r.page_kb, self.struct_page)
                } else {
                    0
                };
                let _ = writeln!(
                    o,
                    "{:<6} {:<4} {:>6} {:>12} {:>12} {:>14} {:>10} {:>16}",
                    size_name(r.page_kb),
                    on_off(r.hvo),
                    r.pages,
                    med(&|s| ms(s.alloc_ns)),
                    med(&|s| ms(s.free_ns)),
                    freed,
                    format!("{} kB", per_page * PAGE_KB * r.pages),
                    r.samples
                        .first()
                        .and_then(HugetlbSample::memmap_grow)
                        .map_or("-".into(), |d| format!("{d:+}")),
                );
            } else {
                let _ = writeln!(
                    o,
                    "{:<6} {:<4} {}",
                    size_name(r.page_kb),
                    on_off(r.hvo),
                    r.outcome.describe()
                );
            }
        }
        self.render_boot_pools(o);
        for r in self.results.iter().filter(|r| !r.probes.is_empty()) {
            let calls: Vec<String> = r
                .probes
                .iter()
                .map(|p| format!("{} {}", p.function, p.calls))
                .collect();
            let _ = writeln!(
                o,
                "  traced round, {} (grow and shrink once): {}",
                r.subject(),
                calls.join(", ")
            );
        }
        crate::check::render_checks(o, "hugetlb checks", &self.checks);
    }
}

impl SuiteReport for HugetlbSuite {
    fn first_screen(&self) -> (&'static str, &'static [(&'static str, &'static str)]) {
        (
            "HugeTLB vmemmap optimization per page size, off and on",
            &[
                ("grow_pool", "grow the pool (ms)"),
                ("shrink_pool", "shrink it (ms)"),
                ("memmap_pages_grow", "memmap pages, growing"),
                ("memmap_pages_shrink", "memmap pages, shrinking"),
            ],
        )
    }
    fn suite(&self) -> Suite {
        Suite::Hugetlb
    }
    fn metrics(&self) -> Vec<crate::metric::Metric> {
        let mut v = <HugetlbSuite as Metrics>::metrics(self);
        // A boot pool is released once per boot: one sample a boot, judged across boots.
        for b in &self.boot_pools {
            let metric = |name: &str, unit: &str, kind, samples| crate::metric::Metric {
                suite: "hugetlb".into(),
                subject: b.subject(),
                name: name.into(),
                unit: unit.into(),
                better: crate::metric::Better::Lower,
                kind,
                samples,
            };
            v.push(metric(
                "release_pool",
                "ms",
                crate::metric::Kind::Time,
                vec![ms(b.free_ns)],
            ));
            if let Some(m) = b.memmap() {
                v.push(metric(
                    "memmap_pages_release",
                    "pages",
                    crate::metric::Kind::Count,
                    vec![m as f64],
                ));
            }
        }
        v
    }
    fn charts(&self) -> Vec<Chart> {
        HugetlbSuite::charts(self)
    }
    fn checks(&self) -> Vec<(String, Check)> {
        named_checks(Suite::Hugetlb, &self.checks)
    }
    fn render_text(&self, o: &mut String) {
        let _ = writeln!(o);
        HugetlbSuite::render_text(self, o);
    }
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
    fn outcomes(&self) -> Vec<(String, Outcome)> {
        self.results
            .iter()
            .map(|r| (format!("hugetlb {}", r.subject()), r.outcome.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1G boot pool released with HVO on restores 4095 vmemmap pages first; off, none.
    /// Each model fails the other's figures.
    #[test]
    fn a_boot_pool_release_is_held_to_the_model() {
        let release = |hvo: bool, returned_kb: i64, memmap: i64| BootPoolRelease {
            page_kb: 1 << 20,
            pages: 1,
            hvo,
            free_ns: 1_000_000,
            returned_kb,
            memmap_pages: Some(memmap),
            memmap_boot_pages: Some(0),
        };
        let ok = |b: &BootPoolRelease| b.checks(64).iter().map(|c| c.agrees).collect::<Vec<_>>();
        assert_eq!(ok(&release(true, 1_048_576 - 4095 * 4, 4095)), [true, true]);
        assert_eq!(ok(&release(false, 1_048_576, 0)), [true, true]);
        assert_eq!(
            ok(&release(true, 1_048_576, 0)),
            [false, false],
            "HVO that did not apply"
        );
        assert_eq!(
            ok(&release(false, 1_048_576 - 4095 * 4, 4095)),
            [false, false]
        );
        // Its figures are metrics a comparison across boots can judge.
        let suite = HugetlbSuite {
            boot_pools: vec![release(true, 1_048_576 - 4095 * 4, 4095)],
            ..Default::default()
        };
        let keys: Vec<String> = SuiteReport::metrics(&suite)
            .iter()
            .map(|m| m.key())
            .collect();
        assert_eq!(
            keys,
            [
                "hugetlb 1G boot pool hvo=on release_pool",
                "hugetlb 1G boot pool hvo=on memmap_pages_release"
            ]
        );
    }

    #[test]
    fn the_model_frees_all_but_one_vmemmap_page() {
        assert_eq!(vmemmap_pages(2048, 64), 8);
        assert_eq!(hvo_freed_pages(2048, 64), 7);
        assert_eq!(vmemmap_pages(1 << 20, 64), 4096);
        assert_eq!(hvo_freed_pages(1 << 20, 64), 4095);
        // A struct page that is not a power of two: HVO does not apply.
        assert_eq!(hvo_freed_pages(2048, 56), 0);
    }

    fn sample(taken_kb: i64, grow: Option<i64>) -> HugetlbSample {
        HugetlbSample {
            obtained: 128,
            alloc_ns: 1,
            free_ns: 1,
            taken_kb,
            // The pages back, less the vmemmap restored: what the grow took.
            returned_kb: taken_kb,
            // 6.12's split: the new head page on nr_memmap_pages, the boot-time vmemmap
            // given back on nr_memmap_boot_pages.
            memmap_pages_grow: grow.map(|g| -g / 7),
            memmap_pages_shrink: grow.map(|g| -g),
            memmap_boot_pages_grow: grow.map(|g| g + g / 7),
            memmap_boot_pages_shrink: grow.map(|_| 0),
        }
    }

    fn row(hvo: bool, s: Vec<HugetlbSample>) -> HugetlbResult {
        HugetlbResult {
            page_kb: 2048,
            hvo,
            outcome: Outcome::Measured,
            pages: 128,
            samples: s,
            probes: vec![],
        }
    }

    /// On: 128 2M pages give back 896 vmemmap pages (3584 kB) and nr_memmap_pages falls by
    /// 896; off gives back nothing. The same figures on the wrong side are mismatches.
    #[test]
    fn hvo_on_and_off_are_told_apart() {
        let full = 128 * 2048;
        let on = row(true, vec![sample(full - 3584 + 40, Some(-896)); 3]);
        let off = row(false, vec![sample(full + 100, Some(0)); 3]);
        let c = checks(&[on.clone(), off.clone()], 64);
        assert!(c.iter().all(|c| c.agrees), "{c:#?}");
        // HVO that did not apply: the "on" row's figures are the "off" row's.
        let not_applied = row(true, off.samples.clone());
        let c = checks(&[not_applied], 64);
        assert_eq!(c.iter().filter(|c| !c.agrees).count(), 4, "{c:#?}");
        // Off that freed vmemmap.
        let c = checks(&[row(false, on.samples.clone())], 64);
        assert_eq!(c.iter().filter(|c| !c.agrees).count(), 4, "{c:#?}");
        // A shrink that gives nothing back but takes the restored vmemmap (6.12.118): only
        // the shrink's check fails.
        let mut kept = on.samples[0].clone();
        kept.returned_kb = -3584;
        let c = checks(&[row(true, vec![kept; 3])], 64);
        let bad: Vec<&str> = c
            .iter()
            .filter(|c| !c.agrees)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(
            bad,
            ["2M hvo=on: free memory given back by the shrink"],
            "{c:#?}"
        );
    }

    /// Noisy rounds (7.3: 712 kB more given back) do not fail the free-memory check while
    /// one round agrees; rounds that are all off do.
    #[test]
    fn free_memory_is_judged_on_the_closest_round() {
        let full = 128 * 2048;
        let good = sample(full - 3584, Some(-896));
        let noisy = sample(full - 4296, Some(-896));
        let freed_check = |s: Vec<HugetlbSample>| {
            checks(&[row(true, s)], 64)
                .into_iter()
                .find(|c| c.what.contains("by free memory"))
                .unwrap()
        };
        assert!(freed_check(vec![noisy.clone(), good.clone(), good.clone()]).agrees);
        assert!(freed_check(vec![noisy.clone(), noisy.clone(), good]).agrees);
        assert!(!freed_check(vec![noisy.clone(), noisy.clone(), noisy]).agrees);
    }

    /// The recorded 6.12.118 run: 128 2M pages, HVO off then on.
    #[test]
    fn recorded_612_run() {
        let r = crate::results::parse(include_str!(
            "../../tests/fixtures/suites/hugetlb-6.12.118.json"
        ))
        .unwrap();
        let h = r.hugetlb.unwrap();
        let on = h
            .results
            .iter()
            .find(|r| r.page_kb == 2048 && r.hvo)
            .unwrap();
        assert_eq!(on.samples[0].memmap_pages_grow, Some(128));
        assert_eq!(on.samples[0].memmap_boot_pages_grow, Some(-1024));
        assert_eq!(on.samples[0].memmap_grow(), Some(-896));
        assert!(h.checks.iter().all(|c| c.agrees), "{:#?}", h.checks);
        // Judged again with the shrink's check: its 256 MiB never came back (-3584 kB each
        // round: the restored vmemmap taken, nothing given), while off gave it all back.
        let again = checks(&h.results, h.struct_page);
        let shrink = |hvo: &str| {
            again
                .iter()
                .find(|c| c.what == format!("2M hvo={hvo}: free memory given back by the shrink"))
                .unwrap()
                .agrees
        };
        assert!(shrink("off"));
        assert!(!shrink("on"));
    }

    #[test]
    fn a_kernel_without_nr_memmap_pages_is_a_skip() {
        let c = checks(&[row(true, vec![sample(128 * 2048 - 3584, None)])], 64);
        let skips: Vec<&Check> = c
            .iter()
            .filter(|c| c.what.contains("nr_memmap_pages"))
            .collect();
        assert_eq!(skips.len(), 2);
        assert!(skips.iter().all(|c| !c.measured && !c.agrees));
    }
}
