//! The memmap suite's results: one namespace creation per sample, per geometry, its
//! sources (vmstat, probes, the free memory a teardown gives back, the model) checked
//! against each other, and its table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::chart::{Chart, Series};
use crate::check::{equal, equal_signed, Check};
use crate::geometry::{Geometry, Map, ModelRow, PAGE_SIZE};
use crate::metric::{ms, Better::*, Kind::*, MetricSpec, Metrics};
use crate::stats::{median, median_u64};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemmapResult {
    pub geometry: Geometry,
    pub model: ModelRow,
    /// Timed samples: only memmap_init_zone_device's own entry and exit attached.
    pub samples: Vec<MemmapSample>,
    /// One more sample with every memmap and vmemmap probe attached: the counts, and by its
    /// times against the samples', the probe effect. Absent in results written before it.
    #[serde(default)]
    pub traced: Option<MemmapSample>,
    /// The creation just before the traced sample, under the same attachment: it warms the
    /// freshly patched code (translated anew under emulation), so that the traced sample's
    /// time is the probes' cost alone; its counts must be the traced sample's. Absent in
    /// older results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_warm_up: Option<MemmapSample>,
    /// Where nothing else counts the struct pages initialised (base pages on the device,
    /// memmap_init_compound inlined), one more sample with the per-page initialiser alone
    /// (a kprobe per struct page): its count is the traced sample's; its time is no figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_per_page: Option<MemmapSample>,
    /// How the sources compare (median of the samples against each other and the model).
    pub checks: Vec<Check>,
    /// Why this geometry could not be measured, if it could not.
    pub error: Option<String>,
}

/// One namespace creation, measured from the namespace disabled, and its teardown.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemmapSample {
    /// `ndctl create-namespace` elapsed time, by the run's clock.
    pub create_ns: u64,
    /// `ndctl disable-namespace` elapsed time after it: memunmap_pages, the vmemmap freed.
    #[serde(default)]
    pub destroy_ns: Option<u64>,
    /// The CPU time every task spent while `ndctl create-namespace` ran (/proc/schedstat's
    /// rq_cpu_time, every CPU): ndctl and the kworkers, without the idle waits that
    /// make most of the elapsed time. Absent in older results or without /proc/schedstat.
    #[serde(default)]
    pub create_busy_ns: Option<u64>,
    /// The same for `ndctl disable-namespace`.
    #[serde(default)]
    pub destroy_busy_ns: Option<u64>,
    /// `/proc/vmstat nr_memmap_pages` after minus before (6.11+).
    pub nr_memmap_pages_delta: Option<i64>,
    /// `nr_memmap_pages` after the teardown minus before the creation: 0 when the teardown
    /// freed every struct page it allocated.
    #[serde(default)]
    pub nr_memmap_pages_left: Option<i64>,
    /// MemFree after minus before, in KiB; absent when /proc/meminfo could not be read.
    pub memfree_delta_kb: Option<i64>,
    /// Memory the teardown gave back that no other counter held, in KiB: the fall across it
    /// of MemTotal less the free pages (per-CPU lists included, /proc/zoneinfo) and every
    /// /proc/meminfo field that holds pages; the memmap in RAM and its page tables, with
    /// nothing attached. Results before 2026-12-05 hold the free pages' rise alone. Absent
    /// in older results or where zoneinfo could not be read.
    #[serde(default)]
    pub teardown_freed_kb: Option<i64>,
    /// vmemmap pages allocated from RAM, from vmemmap_alloc_block_buf's sizes.
    pub probe_ram_vmemmap_pages: Option<u64>,
    /// Page-table pages allocated to map the vmemmap: vmemmap_alloc_block's calls less the
    /// RAM blocks vmemmap_alloc_block_buf asked it for (absent in older results).
    #[serde(default)]
    pub vmemmap_page_tables: Option<u64>,
    pub memmap_init_ns: Option<u64>,
    /// devm_memremap_pages' time: the span every other probe of the suite fires in (the
    /// vmemmap populated, the struct pages initialised). Absent in older results.
    #[serde(default)]
    pub memremap_ns: Option<u64>,
    pub memmap_init_nr_pages: Option<u64>,
    /// memmap_pages_add's `delta` summed over the creation (traced sample; 6.11+): where
    /// nr_memmap_pages is accounted, the third witness beside the counter and the allocator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memmap_pages_added: Option<i64>,
    /// Its calls by kernel call path (traced sample).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memmap_pages_add_stacks: Vec<crate::trace::StackCount>,
    /// Struct pages initialised: memmap_init_compound's nr_pages summed (compound), or
    /// memmap_init_zone_device's nr_pages (base pages).
    pub init_struct_pages: Option<u64>,
    /// Bytes the namespace offers after configuration.
    pub usable_size: Option<u64>,
}

fn med<F: Fn(&MemmapSample) -> Option<u64>>(s: &[MemmapSample], f: F) -> Option<u64> {
    median_u64(&s.iter().filter_map(f).collect::<Vec<_>>())
}

fn med_i64<F: Fn(&MemmapSample) -> Option<i64>>(s: &[MemmapSample], f: F) -> Option<i64> {
    median(
        &s.iter()
            .filter_map(|x| f(x).map(|v| v as f64))
            .collect::<Vec<_>>(),
    )
    .map(|m| m.round() as i64)
}

/// A count the traced sample takes (older results: the samples' median).
fn count<F: Fn(&MemmapSample) -> Option<u64>>(
    samples: &[MemmapSample],
    traced: Option<&MemmapSample>,
    f: F,
) -> Option<u64> {
    match traced {
        Some(t) => f(t),
        None => med(samples, f),
    }
}

/// Compares the sources of one geometry: vmstat and the probes against the model, and the
/// struct pages initialised against the model. Never picks one silently; a source that is
/// missing is a SKIP line that says why.
pub fn checks(
    model: &ModelRow,
    samples: &[MemmapSample],
    traced: Option<&MemmapSample>,
    nr_memmap_pages: bool,
) -> Vec<Check> {
    let dev = model.geometry.map() == Some(Map::Dev);
    let no_vmstat = if nr_memmap_pages {
        "not measured: nr_memmap_pages could not be read"
    } else {
        "not measurable: this kernel has no nr_memmap_pages (added in 6.11)"
    };
    let delta_what = "nr_memmap_pages delta vs model";
    let mut v = vec![match med_i64(samples, |s| s.nr_memmap_pages_delta) {
        Some(delta) => equal_signed(
            delta_what,
            delta,
            model.vmemmap_pages as i64,
            if dev {
                " (nr_memmap_pages counts struct pages on the device too)"
            } else {
                ""
            },
        ),
        None => Check::skipped(delta_what, no_vmstat),
    }];
    let left_what = "teardown frees every struct page (nr_memmap_pages back where it was)";
    v.push(match med_i64(samples, |s| s.nr_memmap_pages_left) {
        Some(left) => equal_signed(left_what, left, 0, ""),
        None if samples.iter().all(|s| s.destroy_ns.is_none()) => Check::skipped(
            left_what,
            "not measured: results from before teardowns were",
        ),
        None => Check::skipped(left_what, no_vmstat),
    });
    let ram_what = "vmemmap pages allocated from RAM (probe) vs model";
    v.push(
        match count(samples, traced, |s| s.probe_ram_vmemmap_pages) {
            Some(p) => equal(ram_what, p, model.ram_pages, ""),
            None if dev => Check::skipped(
                ram_what,
                "not measurable: vmemmap_alloc_block_buf serves the altmap (device) too",
            ),
            None => Check::skipped(ram_what, "not measured: vmemmap_alloc_block_buf not traced"),
        },
    );
    v.push(accounting_check(samples, traced));
    v.push(page_tables_check(model, samples, traced));
    let range_what = "memmap_init_zone_device nr_pages vs range";
    v.push(match count(samples, traced, |s| s.memmap_init_nr_pages) {
        Some(n) => equal(range_what, n, model.size / PAGE_SIZE, ""),
        None => Check::skipped(
            range_what,
            "not measured: memmap_init_zone_device not traced",
        ),
    });
    v.push(struct_pages_check(model, samples, traced));
    v
}

/// nr_memmap_pages' move against what memmap_pages_add was handed at its calls (traced
/// sample): equal unless something else accounts struct pages meanwhile. With the
/// allocator's count (`vmemmap pages allocated from RAM`) it says which of the three
/// disagrees: on 6.16/6.18 the accounting adds the unoptimised memmap (8192 for 2 GiB at
/// 2M), counter and calls alike, where the allocator handed out 2048.
fn accounting_check(samples: &[MemmapSample], traced: Option<&MemmapSample>) -> Check {
    let what = "memmap_pages_add (summed delta, probe) vs nr_memmap_pages delta";
    let Some(t) = traced else {
        return Check::skipped(what, "not measured: no traced sample");
    };
    match (t.memmap_pages_added, t.nr_memmap_pages_delta) {
        (Some(added), Some(delta)) => {
            let mut c = equal_signed(what, added, delta, "");
            if let Some(top) = t.memmap_pages_add_stacks.first() {
                let _ = write!(
                    c.detail,
                    "; accounted at {} ({} calls{})",
                    top.path(4),
                    top.calls,
                    match t.memmap_pages_add_stacks.len() {
                        1 => String::new(),
                        n => format!(", and {} other paths", n - 1),
                    }
                );
            }
            c
        }
        (None, _) => Check::skipped(
            what,
            "not measured: memmap_pages_add not traced (6.11+, or inlined)",
        ),
        (Some(_), None) if samples.iter().all(|s| s.nr_memmap_pages_delta.is_none()) => {
            Check::skipped(what, "not measurable: no nr_memmap_pages")
        }
        (Some(_), None) => Check::skipped(what, "not measured: nr_memmap_pages unread"),
    }
}

/// The two traced creations (the warm-up and the traced sample, one attachment) counted the
/// same: the vmemmap pages from RAM, its page tables, memmap_init_zone_device's range and
/// the struct pages initialised. Kernel counts are deterministic; a difference means a
/// count caught something else (another creation, a deferred free) or the kernel changed
/// its path between two identical creations.
pub fn repeat_check(warm: Option<&MemmapSample>, traced: Option<&MemmapSample>) -> Check {
    let what = "traced counts repeat (warm-up creation vs traced sample)";
    let (Some(w), Some(t)) = (warm, traced) else {
        return Check::skipped(
            what,
            "not measured: no warm-up creation (results from before it, or no traced sample)",
        );
    };
    let counts = |s: &MemmapSample| {
        [
            ("vmemmap RAM pages", s.probe_ram_vmemmap_pages),
            ("page tables", s.vmemmap_page_tables),
            ("memmap_init_zone_device nr_pages", s.memmap_init_nr_pages),
            // The per-page initialiser counts in a sample of its own, merged into the
            // traced sample only: compared where the warm-up counted it too.
            (
                "struct pages initialised",
                s.init_struct_pages
                    .filter(|_| w.init_struct_pages.is_some()),
            ),
        ]
    };
    let (cw, ct) = (counts(w), counts(t));
    if cw.iter().chain(&ct).all(|(_, v)| v.is_none()) {
        return Check::skipped(what, "not measured: no count in either creation");
    }
    let differ: Vec<String> = cw
        .iter()
        .zip(&ct)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((name, a), (_, b))| format!("{name} {a:?} then {b:?}"))
        .collect();
    if differ.is_empty() {
        let same: Vec<String> = cw
            .iter()
            .filter_map(|(name, v)| v.map(|v| format!("{name} {v}")))
            .collect();
        Check::new(what, true, format!("both: {}", same.join(", ")))
    } else {
        Check::new(what, false, differ.join("; "))
    }
}

/// The vmemmap's page tables against the model's range: the PTE tables of a vmemmap
/// mapped page by page (compound, optimized) at least, a few more at most; a PMD-mapped
/// vmemmap has none but at its ends.
fn page_tables_check(
    model: &ModelRow,
    samples: &[MemmapSample],
    traced: Option<&MemmapSample>,
) -> Check {
    let what = "vmemmap page tables (probe) vs model";
    let Some(n) = count(samples, traced, |s| s.vmemmap_page_tables) else {
        return Check::skipped(
            what,
            "not measured: vmemmap_alloc_block not traced, or the vmemmap's own pages among its allocations unknown (vmemmap_alloc_block_buf never called and no nr_memmap_pages delta within them)",
        );
    };
    let (lo, hi) = model.page_tables_range();
    let agrees = (lo..=hi).contains(&n);
    Check {
        what: what.into(),
        measured: true,
        agrees,
        detail: format!(
            "{n} page-table pages ({} KiB) against {lo}..={hi}: {} PTE tables for a vmemmap {}, up to {} more at its ends and for upper levels not present yet",
            n * PAGE_SIZE / 1024,
            model.pte_tables,
            if model.optimized {
                "mapped page by page (compound)"
            } else {
                "mapped by PMDs"
            },
            hi - lo
        ),
    }
}

/// Slack for the page allocator's other traffic while a teardown runs, in KiB. Seen on
/// 6.12 with the free pages alone (2 GiB at 1G: a 16 KiB memmap and 64 KiB of tables):
/// 28..688 KiB given back, and once 10304 KiB at 2M (8256 modelled); with what other
/// counters gave up taken out, every sample within 48 KiB of the model (3 rounds of the 8
/// geometries). An eighth of the 2M geometry's memmap, so an unoptimised (32 MiB) or
/// unfreed one is far out.
const TEARDOWN_SLACK_KB: i64 = 1024;

/// The memory the teardowns gave back that no counter held against the model's memmap in
/// RAM plus its page tables: the one witness that sees the tables, the struct pages and
/// nothing of the tool (the timed samples' probes do not fire in a teardown, and the traced
/// ones' maps stay allocated across theirs).
fn teardown_freed_check(model: &ModelRow, kb: Option<i64>) -> Check {
    let what = "memory the teardowns gave back that no counter held (free pages, per-CPU lists included, less what /proc/meminfo's fields gave up; median of every teardown) vs model's memmap in RAM and page tables";
    let Some(kb) = kb else {
        return Check::skipped(
            what,
            "not measured: /proc/zoneinfo unreadable, or results from before this witness",
        );
    };
    let page_kb = (PAGE_SIZE / 1024) as i64;
    let (lo, hi) = model.page_tables_range();
    let lo_kb = (model.ram_pages + lo) as i64 * page_kb - TEARDOWN_SLACK_KB;
    let hi_kb = (model.ram_pages + hi) as i64 * page_kb + TEARDOWN_SLACK_KB;
    Check::new(
        what,
        (lo_kb..=hi_kb).contains(&kb),
        format!(
            "{kb} KiB against {lo_kb}..={hi_kb}: {} KiB of struct pages in RAM, {}..={} KiB of page tables, {TEARDOWN_SLACK_KB} KiB either side for the allocator's other traffic",
            model.ram_pages as i64 * page_kb,
            lo as i64 * page_kb,
            hi as i64 * page_kb,
        ),
    )
}

/// The struct pages initialised against the model, or with an altmap the usable pages.
fn struct_pages_check(
    model: &ModelRow,
    samples: &[MemmapSample],
    traced: Option<&MemmapSample>,
) -> Check {
    let dev = model.geometry.map() == Some(Map::Dev);
    let Some(n) = count(samples, traced, |s| s.init_struct_pages) else {
        return Check::skipped(
            "struct pages initialised (probe) vs model",
            "not measured: neither memmap_init_compound nor the per-page initialiser could be traced",
        );
    };
    match (dev, med(samples, |s| s.usable_size)) {
        // With altmap, memmap_init_zone_device starts after the pfns reserved on the
        // device for the struct pages (vmem_altmap_offset): the usable pages are the
        // ones initialised.
        (true, Some(usable)) => equal(
            "struct pages initialised (probe) vs usable device pages",
            n,
            usable / PAGE_SIZE,
            &format!(
                " (altmap: the {} pages the device reserves for struct pages and alignment are not initialised)",
                model.size.saturating_sub(usable) / PAGE_SIZE
            ),
        ),
        _ => equal("struct pages initialised (probe) vs model", n, model.init_struct_pages, ""),
    }
}

impl MemmapResult {
    /// Every creation of this geometry, each followed by its teardown: the traced warm-up,
    /// traced and per-page samples, then the timed ones.
    fn creations(&self) -> impl Iterator<Item = &MemmapSample> {
        self.traced_warm_up
            .iter()
            .chain(&self.traced)
            .chain(&self.traced_per_page)
            .chain(&self.samples)
    }

    /// The memory the teardowns gave back that no counter held, in KiB: the median over every
    /// teardown of the geometry, the traced samples' too, for the figure does not depend on
    /// what is attached. One reading is not the figure: under host load (three or four VMs
    /// on two cores, 6.12, the wall clock) 7 teardowns in about 680 gave back 0.5 to 1.5 MiB
    /// more than the rest (5 of them in one boot, never two of one geometry), and CI once
    /// read 1284 KiB for a devdax:1G:mem model of 80..96 KiB from its one timed sample.
    pub fn teardown_freed_kb(&self) -> Option<i64> {
        median(
            &self
                .creations()
                .filter_map(|s| s.teardown_freed_kb.map(|k| k as f64))
                .collect::<Vec<_>>(),
        )
        .map(|m| m.round() as i64)
    }

    /// `teardown_freed_kb` against the model's memmap in RAM and its page tables.
    pub fn teardown_check(&self) -> Check {
        teardown_freed_check(&self.model, self.teardown_freed_kb())
    }

    /// One value per sample, where the sample has it.
    fn each(&self, f: impl Fn(&MemmapSample) -> Option<f64>) -> Vec<f64> {
        self.samples.iter().filter_map(f).collect()
    }

    /// A count: the traced sample's, or in older results every sample's.
    fn counted(&self, f: impl Fn(&MemmapSample) -> Option<f64>) -> Vec<f64> {
        match &self.traced {
            Some(t) => f(t).into_iter().collect(),
            None => self.each(f),
        }
    }

    /// The traced sample against the timed samples' median: what the probes cost on this
    /// kernel.
    pub fn probe_effect(&self) -> Option<crate::effect::Effect> {
        self.effect_of(self.traced.as_ref()?)
    }

    /// The per-page count's sample against the same median: the cost of a kprobe per struct
    /// page, said beside the probe effect, not in it.
    pub fn per_page_effect(&self) -> Option<crate::effect::Effect> {
        self.effect_of(self.traced_per_page.as_ref()?)
    }

    /// `t` against the timed median over devm_memremap_pages, the span every probe fires
    /// in, where both sides timed it; else over the creation's wall time. Around that span
    /// (ndctl, sysfs, udev) the wall time moved by a factor of 2-3 between untraced samples
    /// under emulation and would hide the effect.
    fn effect_of(&self, t: &MemmapSample) -> Option<crate::effect::Effect> {
        let untraced = self.each(|s| s.memremap_ns.map(|n| n as f64));
        match t.memremap_ns {
            Some(n) if !untraced.is_empty() => crate::effect::of(&[n as f64], &untraced),
            _ => crate::effect::of(
                &[t.create_ns as f64],
                &self.each(|s| Some(s.create_ns as f64)),
            ),
        }
    }
}

impl Metrics for [MemmapResult] {
    type Row = MemmapResult;
    const SUITE: &'static str = "memmap";
    const METRICS: &'static [MetricSpec<Self, MemmapResult>] = &[
        MetricSpec::time("memmap_init", |_, r| r.each(|x| x.memmap_init_ns.map(ms))),
        MetricSpec::time("create_namespace", |_, r| r.each(|x| Some(ms(x.create_ns)))),
        MetricSpec::time("destroy_namespace", |_, r| r.each(|x| x.destroy_ns.map(ms))),
        MetricSpec::time("create_namespace_cpu", |_, r| {
            r.each(|x| x.create_busy_ns.map(ms))
        }),
        MetricSpec::time("destroy_namespace_cpu", |_, r| {
            r.each(|x| x.destroy_busy_ns.map(ms))
        }),
        MetricSpec::count("vmemmap_ram_pages", "pages", Lower, |_, r| {
            r.counted(|x| x.probe_ram_vmemmap_pages.map(|v| v as f64))
        }),
        MetricSpec::count("vmemmap_page_tables", "pages", Lower, |_, r| {
            r.counted(|x| x.vmemmap_page_tables.map(|v| v as f64))
        }),
        MetricSpec::count("nr_memmap_pages_delta", "pages", Lower, |_, r| {
            r.each(|x| x.nr_memmap_pages_delta.map(|v| v as f64))
        }),
        MetricSpec::count("struct_pages_initialised", "pages", Lower, |_, r| {
            r.counted(|x| x.init_struct_pages.map(|v| v as f64))
        }),
        MetricSpec::count("usable", "MiB", Higher, |_, r| {
            r.each(|x| x.usable_size.map(|v| (v >> 20) as f64))
        }),
        MetricSpec::new("memfree_drop", "KiB", Lower, Time, |_, r| {
            r.each(|x| x.memfree_delta_kb.map(|d| -d as f64))
        }),
    ];

    fn subjects(&self) -> Vec<(String, &MemmapResult)> {
        self.iter().map(|m| (m.geometry.to_string(), m)).collect()
    }
}

/// The memmap suite's charts: struct page memory per geometry, and init time.
pub fn charts(results: &[MemmapResult]) -> Vec<Chart> {
    if results.is_empty() {
        return vec![];
    }
    let mut out = Vec::new();
    let cats: Vec<String> = results.iter().map(|m| m.geometry.to_string()).collect();
    let per = |f: &dyn Fn(&MemmapSample) -> Option<f64>| -> Vec<Vec<f64>> {
        results.iter().map(|m| m.each(f)).collect()
    };
    let counted = |f: &dyn Fn(&MemmapSample) -> Option<f64>| -> Vec<Vec<f64>> {
        results.iter().map(|m| m.counted(f)).collect()
    };
    let medians = |name: &str, samples: Vec<Vec<f64>>| {
        Series::of_values(name, samples.iter().map(|s| median(s)).collect())
    };
    // pfnmap is the floor: no struct pages, so the model's 0 is drawn as its value.
    out.push(Chart {
        title: "struct page (vmemmap) memory in RAM per geometry".into(),
        y_label: "MiB".into(),
        log_y: false,
        categories: cats.clone(),
        series: vec![
            Series::of_values(
                "model",
                results
                    .iter()
                    .map(|m| Some(mib(m.model.ram_pages as i64)))
                    .collect(),
            ),
            medians(
                "measured: vmemmap allocations from RAM (probe)",
                counted(&|s| s.probe_ram_vmemmap_pages.map(|p| mib(p as i64))),
            ),
            medians(
                "nr_memmap_pages delta (RAM and device)",
                per(&|s| s.nr_memmap_pages_delta.map(mib)),
            ),
            Series::of_values(
                "given back at teardown, held by no counter (page tables included)",
                results
                    .iter()
                    .map(|m| m.teardown_freed_kb().map(|k| k as f64 / 1024.0))
                    .collect(),
            ),
        ],
    });
    out.push(Chart {
        title: "memmap_init_zone_device time per geometry (median and samples)".into(),
        y_label: "ms (log)".into(),
        log_y: true,
        categories: cats,
        series: vec![Series::of_samples(
            "memmap_init_zone_device",
            per(&|s| s.memmap_init_ns.map(|n| n as f64 / 1e6)),
        )],
    });
    out.push(ndctl_chart(
        results,
        "namespace creation and teardown (ndctl), elapsed, per geometry",
        (|s| Some(s.create_ns), |s| s.destroy_ns),
    ));
    // Apart from the elapsed times: a few % of them, and under the instruction clock the
    // one of the two that repeats.
    out.push(ndctl_chart(
        results,
        "CPU busy while ndctl ran (every task, every CPU: ndctl, kworkers) per geometry",
        (|s| s.create_busy_ns, |s| s.destroy_busy_ns),
    ));
    out
}

/// One time of each ndctl command per geometry, in ms: (create-namespace, disable-namespace).
type NdctlTimes = (
    fn(&MemmapSample) -> Option<u64>,
    fn(&MemmapSample) -> Option<u64>,
);

fn ndctl_chart(results: &[MemmapResult], title: &str, (create, destroy): NdctlTimes) -> Chart {
    let per = |f: fn(&MemmapSample) -> Option<u64>| -> Vec<Vec<f64>> {
        results
            .iter()
            .map(|m| m.each(|s| f(s).map(|n| n as f64 / 1e6)))
            .collect()
    };
    Chart {
        title: title.into(),
        y_label: "ms".into(),
        log_y: false,
        categories: results.iter().map(|m| m.geometry.to_string()).collect(),
        series: vec![
            Series::of_samples("create-namespace", per(create)),
            Series::of_samples("disable-namespace", per(destroy)),
        ],
    }
}

/// Pages as MiB (a delta may be negative).
fn mib(pages: i64) -> f64 {
    (pages * PAGE_SIZE as i64) as f64 / (1 << 20) as f64
}

/// The memmap table, then every geometry's checks.
pub fn render_text(results: &[MemmapResult], o: &mut String) {
    let base = results
        .iter()
        .find(|r| r.geometry.to_string() == "devdax:4K:mem")
        .and_then(|r| med(&r.samples, |s| s.memmap_init_ns));
    let _ = writeln!(
        o,
        "{:<14} {:>3} {:>12} {:>12} {:>10} {:>11} {:>9} {:>10} {:>10} {:>10} {:>11} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "geometry",
        "n",
        "model pages",
        "vmstat",
        "probe RAM",
        "init (ms)",
        "init/4K",
        "create ms",
        "destroy ms",
        "create cpu",
        "destroy cpu",
        "traced/x",
        "MemFree",
        "freed",
        "usable",
        "given up"
    );
    for r in results {
        render_row(r, base, o);
    }
    let cells: Vec<(String, crate::effect::Effect)> = results
        .iter()
        .filter_map(|r| Some((r.geometry.to_string(), r.probe_effect()?)))
        .collect();
    crate::effect::render(o, &cells);
    let per_page: Vec<String> = results
        .iter()
        .filter_map(|r| Some(format!("{} {:.2}x", r.geometry, r.per_page_effect()?.ratio)))
        .collect();
    if !per_page.is_empty() {
        let _ = writeln!(
            o,
            "per-page count samples (a kprobe on every struct page initialised, in a sample of their own; counts only): {}",
            per_page.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "(timed samples attach only memmap_init_zone_device and devm_memremap_pages, once per creation each; probe RAM and the counts come from one traced sample, and traced/x is its devm_memremap_pages time (where every probe fires; else its creation time) over the timed median; MemFree is its change across the creation, probes' memory and per-CPU lists in it; freed is the memory a teardown gave back that no counter held (free pages, per-CPU lists included, less what /proc/meminfo's fields gave up), the median of every teardown of the geometry, traced ones too (their probes' maps stay allocated across them); create and destroy ms are ndctl's elapsed times, create and destroy cpu the CPU time every task spent meanwhile (ndctl, kworkers; /proc/schedstat), which leaves out the idle waits)"
    );
    let _ = writeln!(
        o,
        "\nchecks (median of samples; a mismatch is reported, never hidden):"
    );
    for r in results {
        if let Some(e) = &r.error {
            let _ = writeln!(o, "  {:<14} not measured: {e}", r.geometry.to_string());
        }
        for c in &r.checks {
            let _ = writeln!(
                o,
                "  {:<14} {} {}: {}",
                r.geometry.to_string(),
                c.verdict(),
                c.what,
                c.detail
            );
        }
    }
}

/// One geometry's row of the memmap table.
fn render_row(r: &MemmapResult, base: Option<u64>, o: &mut String) {
    let s = &r.samples;
    let f = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
    let ms = |v: Option<u64>| v.map_or("-".into(), |n| format!("{:.0}", n as f64 / 1e6));
    let cpu_ms = |v: Option<u64>| v.map_or("-".into(), |n| format!("{:.1}", n as f64 / 1e6));
    let init = med(s, |x| x.memmap_init_ns);
    let usable = med(s, |x| x.usable_size);
    let _ = writeln!(
        o,
        "{:<14} {:>3} {:>12} {:>12} {:>10} {:>11} {:>9} {:>10} {:>10} {:>10} {:>11} {:>8} {:>10} {:>9} {:>9} {:>9}",
        r.geometry.to_string(),
        s.len(),
        r.model.vmemmap_pages,
        med_i64(s, |x| x.nr_memmap_pages_delta).map_or("-".into(), |d| d.to_string()),
        f(count(s, r.traced.as_ref(), |x| x.probe_ram_vmemmap_pages)),
        init.map_or("-".into(), |n| format!("{:.2}", n as f64 / 1e6)),
        match (init, base) {
            (Some(i), Some(b)) if b > 0 => format!("{:.3}", i as f64 / b as f64),
            _ => "-".into(),
        },
        ms(med(s, |x| Some(x.create_ns))),
        ms(med(s, |x| x.destroy_ns)),
        cpu_ms(med(s, |x| x.create_busy_ns)),
        cpu_ms(med(s, |x| x.destroy_busy_ns)),
        r.probe_effect()
            .map_or("-".into(), |x| format!("{:.2}", x.ratio)),
        med_i64(s, |x| x.memfree_delta_kb)
            .map_or("-".into(), |k| format!("{:+.1}M", k as f64 / 1024.0)),
        r.teardown_freed_kb()
            .map_or("-".into(), |k| format!("{:+.2}M", k as f64 / 1024.0)),
        usable.map_or("-".into(), |u| format!("{}M", u >> 20)),
        // Device capacity not offered to the user: info block, alignment, and with
        // --map=dev the struct pages themselves.
        usable.map_or("-".into(), |u| format!(
            "{}M",
            r.model.size.saturating_sub(u) >> 20
        )),
    );
}
/// The first screen's per-geometry answers beside the counts: the struct page memory in
/// RAM per TiB of device (measured), the model's pages (in RAM / on the device), and whether
/// the vmemmap optimization applied (the measured RAM pages are the optimized model's).
fn memmap_derived(rows: &[MemmapResult]) -> Vec<crate::suite::Derived> {
    const TIB: f64 = (1u64 << 40) as f64;
    let ram = |r: &MemmapResult| {
        crate::stats::median(&r.counted(|x| x.probe_ram_vmemmap_pages.map(|v| v as f64)))
    };
    let col = |heading: &str, f: &dyn Fn(&MemmapResult) -> Option<String>| {
        (
            heading.to_string(),
            rows.iter()
                .filter(|r| r.error.is_none())
                .filter_map(|r| f(r).map(|c| (r.geometry.to_string(), c)))
                .collect(),
        )
    };
    vec![
        col("in RAM per TiB", &|r| {
            let per_tib = ram(r)? * 4096.0 * TIB / r.model.size as f64;
            Some(crate::units::fmt_bytes(per_tib))
        }),
        col("model: pages in RAM / on device", &|r| {
            Some(format!("{} / {}", r.model.ram_pages, r.model.device_pages))
        }),
        col("vmemmap optimization", &|r| {
            Some(
                match (r.model.optimized, ram(r)) {
                    (false, _) => "does not apply",
                    (true, Some(m)) if m as u64 == r.model.ram_pages => "applied",
                    (true, Some(_)) => "NOT applied",
                    (true, None) => "applies (RAM not measured)",
                }
                .to_string(),
            )
        }),
    ]
}

impl crate::suite::SuiteReport for Vec<MemmapResult> {
    fn first_screen_derived(&self) -> Vec<crate::suite::Derived> {
        memmap_derived(self)
    }
    fn first_screen(&self) -> (&'static str, &'static [(&'static str, &'static str)]) {
        (
            "struct page memory and memmap_init_zone_device per geometry",
            &[
                ("vmemmap_ram_pages", "vmemmap in RAM (pages)"),
                ("nr_memmap_pages_delta", "nr_memmap_pages change"),
                ("struct_pages_initialised", "struct pages initialised"),
                // Not the whole `ndctl create-namespace`'s elapsed time: it waits on 9p I/O
                // and RCU grace periods, and its instruction time is mostly the clock
                // jumping while the guest idles (13-31 s with one vCPU).
                ("memmap_init", "memmap_init_zone_device (ms)"),
                // Its CPU time, which leaves the idle waits out and repeats.
                ("create_namespace_cpu", "create-namespace CPU busy (ms)"),
            ],
        )
    }
    fn size(&self) -> Option<u64> {
        self.first().map(|m| m.model.size)
    }
    fn outcomes(&self) -> Vec<(String, crate::outcome::Outcome)> {
        // A geometry that could not be measured is an error of the run (`Results::failures`)
        // and a loss in `compare`: memmap rows have no outcome of their own.
        vec![]
    }
    fn suite(&self) -> crate::suite::Suite {
        crate::suite::Suite::Memmap
    }
    fn metrics(&self) -> Vec<crate::metric::Metric> {
        crate::metric::Metrics::metrics(self.as_slice())
    }
    fn charts(&self) -> Vec<Chart> {
        charts(self)
    }
    /// Named by geometry: "memmap devdax:2M:mem: what".
    fn checks(&self) -> Vec<(String, Check)> {
        self.iter()
            .flat_map(|m| {
                m.checks
                    .iter()
                    .map(move |c| (format!("memmap {}: {}", m.geometry, c.what), c.clone()))
            })
            .collect()
    }
    fn render_text(&self, o: &mut String) {
        let _ = writeln!(o, "\nmemmap suite:");
        render_text(self, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::model;

    fn g(s: &str) -> Geometry {
        s.parse().unwrap()
    }

    fn sample(vmstat: i64, probe: u64, init: u64) -> MemmapSample {
        MemmapSample {
            create_ns: 1_000_000,
            nr_memmap_pages_delta: Some(vmstat),
            probe_ram_vmemmap_pages: Some(probe),
            memmap_init_nr_pages: Some(524288),
            init_struct_pages: Some(init),
            destroy_ns: Some(500_000),
            nr_memmap_pages_left: Some(0),
            // A PMD-mapped vmemmap: no page tables (within 0..=4 for 2 GiB).
            vmemmap_page_tables: Some(0),
            teardown_freed_kb: Some(probe as i64 * 4),
            // memmap_pages_add handed what the counter moved by.
            memmap_pages_added: Some(vmstat),
            ..Default::default()
        }
    }

    /// Seen on 6.12, 2 GiB devdax:2M:mem: both traced creations counted 2048 RAM pages, 16
    /// page tables, 524288 pfns, 131072 struct pages. A count that moved, a warm-up missing,
    /// and the per-page count merged into the traced sample only are told apart.
    #[test]
    fn traced_counts_must_repeat() {
        let t = MemmapSample {
            vmemmap_page_tables: Some(16),
            ..sample(2048, 2048, 131072)
        };
        let c = repeat_check(Some(&t), Some(&t));
        assert!(c.measured && c.agrees, "{c:?}");
        assert!(c.detail.contains("page tables 16"), "{}", c.detail);
        let moved = MemmapSample {
            vmemmap_page_tables: Some(17),
            ..t.clone()
        };
        let c = repeat_check(Some(&t), Some(&moved));
        assert!(c.measured && !c.agrees, "{c:?}");
        assert!(
            c.detail.contains("page tables Some(16) then Some(17)"),
            "{}",
            c.detail
        );
        let c = repeat_check(None, Some(&t));
        assert!(!c.measured && !c.agrees);
        // 4K:dev: the struct pages come from the per-page sample, merged after.
        let warm = MemmapSample {
            init_struct_pages: None,
            ..t.clone()
        };
        let merged = MemmapSample {
            init_struct_pages: Some(515584),
            ..t.clone()
        };
        assert!(repeat_check(Some(&warm), Some(&merged)).agrees);
        // A count the traced sample lost is a difference, not a skip.
        let lost = MemmapSample {
            probe_ram_vmemmap_pages: None,
            ..t.clone()
        };
        assert!(!repeat_check(Some(&t), Some(&lost)).agrees);
    }

    /// Free memory given back by the teardowns of 2 GiB namespaces on 6.12 (buddy and
    /// per-CPU lists, four teardowns each): ok at each geometry; an unoptimised 2M memmap,
    /// a memmap never freed or no reading at all is not.
    #[test]
    fn teardown_gives_back_the_memmap_and_its_tables() {
        let seen = [
            ("devdax:4K:mem", [32668, 32912, 32752, 32792]),
            ("devdax:2M:mem", [9828, 8380, 8360, 8224]),
            ("devdax:1G:mem", [28, 688, 624, 96]),
        ];
        for (geometry, kb) in seen {
            let r = torn_down(geometry, None, &kb);
            let c = r.teardown_check();
            assert!(c.measured && c.agrees, "{geometry}: {c:?}");
        }
        let unoptimised = torn_down("devdax:2M:mem", None, &[32768, 32752, 32792]).teardown_check();
        assert!(!unoptimised.agrees, "{unoptimised:?}");
        assert!(unoptimised.detail.contains("32768 KiB against 7232..="));
        let kept = torn_down("devdax:4K:mem", None, &[12, 400, -300]).teardown_check();
        assert!(!kept.agrees, "{kept:?}");
        let unread = torn_down("devdax:4K:mem", None, &[]).teardown_check();
        assert!(!unread.measured && !unread.agrees, "{unread:?}");
    }

    /// Every teardown of a geometry is a reading, the traced samples' too: CI's one timed
    /// sample of devdax:1G:mem read 1284 KiB (6.12.117, wall clock, the host loaded), where
    /// its traced samples read 80..104 here. With them the median is the model's; alone,
    /// the outlier is a mismatch, and an unoptimised memmap stays one with them.
    #[test]
    fn one_teardowns_outlier_is_outvoted_by_the_others() {
        let r = torn_down("devdax:1G:mem", Some([80, 104]), &[1284]);
        assert_eq!(r.teardown_freed_kb(), Some(104));
        assert!(r.teardown_check().agrees, "{:?}", r.teardown_check());
        let alone = torn_down("devdax:1G:mem", None, &[1284]).teardown_check();
        assert!(!alone.agrees, "{alone:?}");
        assert!(
            alone.detail.starts_with("1284 KiB against -944..=1120"),
            "{alone:?}"
        );
        let unoptimised = torn_down("devdax:2M:mem", Some([32768, 32792]), &[8256]);
        assert!(!unoptimised.teardown_check().agrees);
        let mut o = String::new();
        render_text(
            &[torn_down("devdax:1G:mem", Some([80, 104]), &[1284])],
            &mut o,
        );
        assert!(o.contains(" +0.10M "), "{o}");
    }

    /// A 2 GiB result of `geometry` whose teardowns read `traced` (warm-up, traced sample)
    /// and `timed` KiB.
    fn torn_down(geometry: &str, traced: Option<[i64; 2]>, timed: &[i64]) -> MemmapResult {
        let freed = |k: i64| MemmapSample {
            teardown_freed_kb: Some(k),
            ..Default::default()
        };
        let m = model(g(geometry), 2 << 30, 64, true);
        MemmapResult {
            geometry: m.geometry,
            model: m,
            samples: timed.iter().map(|&k| freed(k)).collect(),
            traced_warm_up: traced.map(|t| freed(t[0])),
            traced: traced.map(|t| freed(t[1])),
            traced_per_page: None,
            checks: vec![],
            error: None,
        }
    }

    #[test]
    fn agreeing_sources_are_ok_and_mismatches_say_by_how_much() {
        let m = model(g("devdax:2M:mem"), 2 << 30, 64, true);
        let compound = |vmstat| MemmapSample {
            vmemmap_page_tables: Some(17),
            ..sample(vmstat, 2048, 131072)
        };
        let c = checks(&m, &[compound(2048)], Some(&compound(2048)), true);
        assert!(c.iter().all(|c| c.agrees), "{c:?}");
        let c = checks(&m, &[compound(2050)], Some(&compound(2050)), true);
        let bad = c.iter().find(|c| !c.agrees).unwrap();
        assert!(bad.detail.contains("differs by +2"), "{}", bad.detail);
        // 6.16/6.18: the accounting and the counter agree with each other (8192), not with
        // the allocator (2048): memmap_pages_add says where the counter got it.
        let mut whole = compound(8192);
        whole.probe_ram_vmemmap_pages = Some(2048);
        whole.memmap_pages_add_stacks = vec![crate::trace::StackCount {
            frames: vec!["memmap_pages_add".into(), "section_activate".into()],
            calls: 16,
            arg_sum: 8192,
        }];
        let c = checks(&m, &[whole.clone()], Some(&whole), true);
        let acc = c
            .iter()
            .find(|c| c.what.starts_with("memmap_pages_add"))
            .unwrap();
        assert!(acc.agrees, "{acc:?}");
        assert!(
            acc.detail
                .contains("accounted at memmap_pages_add ← section_activate (16 calls)"),
            "{}",
            acc.detail
        );
        let ram = c
            .iter()
            .find(|c| c.what.starts_with("vmemmap pages allocated"))
            .unwrap();
        assert!(ram.agrees, "the allocator gave the optimised 2048: {ram:?}");
        assert!(c
            .iter()
            .any(|c| c.what.starts_with("nr_memmap_pages delta") && !c.agrees));
        // A counter moved by something else than memmap_pages_add's calls.
        let mut apart = compound(2048);
        apart.memmap_pages_added = Some(2047);
        let c = checks(&m, &[apart.clone()], Some(&apart), true);
        assert!(c
            .iter()
            .any(|c| c.what.starts_with("memmap_pages_add") && !c.agrees));
    }

    /// Seen on 6.12, 2 GiB devdax:2M:dev: 2014 MiB usable, 515584 struct pages initialised.
    #[test]
    fn altmap_is_explained() {
        let m = model(g("devdax:2M:dev"), 2 << 30, 64, true);
        let mut s = sample(8192, 0, 515584);
        s.usable_size = Some(2014 << 20);
        s.probe_ram_vmemmap_pages = None;
        let c = checks(&m, &[s.clone()], Some(&s), true);
        // vmemmap_alloc_block_buf serves the altmap too: that check is not made, and says so.
        let (made, skipped): (Vec<_>, Vec<_>) = c.iter().partition(|c| c.measured);
        assert!(made.iter().all(|c| c.agrees), "{c:?}");
        assert_eq!(skipped.len(), 1, "{c:?}");
        assert!(skipped[0].detail.contains("altmap") && !skipped[0].agrees);
        assert!(c[0].detail.contains("on the device too"));
        assert!(
            c.iter()
                .any(|c| c.detail.contains("the 8704 pages the device reserves")),
            "{c:?}"
        );
    }

    #[test]
    fn old_kernels_say_what_they_lack() {
        let m = model(g("devdax:4K:mem"), 2 << 30, 64, true);
        let mut s = sample(0, 8192, 524288);
        s.nr_memmap_pages_delta = None;
        let c = checks(&m, &[s], None, false);
        assert!(c[0].detail.contains("added in 6.11"));
        assert!(!c[0].measured && !c[0].agrees, "not measured is not ok");
    }

    /// Timed samples carry no counts: the traced sample's are checked, and its creation time
    /// against the timed median is the probe effect.
    #[test]
    fn counts_come_from_the_traced_sample() {
        let m = model(g("devdax:4K:mem"), 2 << 30, 64, true);
        let timed = MemmapSample {
            probe_ram_vmemmap_pages: None,
            init_struct_pages: None,
            vmemmap_page_tables: None,
            // Every sample's teardown is read: it runs with nothing attached.
            teardown_freed_kb: Some(32768),
            ..sample(8192, 0, 0)
        };
        let traced = MemmapSample {
            create_ns: 5_000_000,
            ..sample(8192, 8192, 524288)
        };
        let c = checks(&m, &[timed.clone(), timed.clone()], Some(&traced), true);
        assert!(c.iter().all(|c| c.agrees), "{c:?}");
        let c = checks(&m, std::slice::from_ref(&timed), None, true);
        // RAM pages, page tables, struct pages, and memmap_pages_add: traced counts only.
        assert_eq!(c.iter().filter(|c| !c.measured).count(), 4, "{c:?}");
        let r = MemmapResult {
            geometry: m.geometry,
            model: m,
            samples: vec![timed.clone(), timed],
            traced: Some(traced),
            traced_per_page: None,
            traced_warm_up: None,
            checks: vec![],
            error: None,
        };
        // No devm_memremap_pages time (older results): the creation's.
        assert_eq!(r.probe_effect().map(|e| e.ratio), Some(5.0));
        let mut o = String::new();
        render_text(std::slice::from_ref(&r), &mut o);
        assert!(o.contains(" 5.00 "), "{o}");

        // With it, the span every probe fires in: ndctl's wall time around it (here 5x)
        // is not the probes' cost.
        let memremap = |create_ns: u64, ms: u64| MemmapSample {
            create_ns,
            memremap_ns: Some(ms * 1_000_000),
            ..r.samples[0].clone()
        };
        let r = MemmapResult {
            samples: vec![
                memremap(1_000_000, 100),
                memremap(1_000_000, 110),
                memremap(1_000_000, 90),
            ],
            traced: Some(memremap(5_000_000, 105)),
            traced_per_page: Some(memremap(6_000_000, 300)),
            ..r
        };
        let e = r.probe_effect().unwrap();
        assert!((e.ratio - 1.05).abs() < 1e-9 && e.within_untraced, "{e:?}");
        assert_eq!(r.per_page_effect().map(|e| e.ratio), Some(3.0));
        let mut o = String::new();
        render_text(&[r], &mut o);
        assert!(o.contains("per-page count samples (a kprobe on every struct page initialised, in a sample of their own; counts only): devdax:4K:mem 3.00x"), "{o}");
    }

    /// A delta below zero is shown as it is, and a teardown that leaves struct pages behind
    /// is a mismatch.
    #[test]
    fn deltas_are_signed_and_teardown_must_free_everything() {
        let m = model(g("devdax:2M:mem"), 2 << 30, 64, true);
        let mut s = sample(-5, 2048, 131072);
        s.nr_memmap_pages_left = Some(2048);
        let c = checks(&m, &[s], None, true);
        assert!(
            c[0].detail.starts_with("-5 vs 2048: differs by -2053"),
            "{}",
            c[0].detail
        );
        assert!(!c[1].agrees && c[1].measured && c[1].detail.starts_with("2048 vs 0"));
    }

    /// A recorded 6.12.118 run (one vCPU, instruction clock, 3 rounds): the whole ndctl
    /// commands' CPU time is a metric of its own beside their elapsed time, and both show in
    /// the table. devdax:2M:mem: create 67.4, 56.5, 56.6 ms busy in 10.5-12.8 s elapsed.
    #[test]
    fn whole_commands_have_their_cpu_time_beside_their_elapsed_time() {
        let r: crate::results::Results = serde_json::from_str(include_str!(
            "../../tests/fixtures/suites/memmap-6.12.118.json"
        ))
        .unwrap();
        let metrics = r.memmap.metrics();
        let samples = |name: &str| {
            metrics
                .iter()
                .find(|m| m.subject == "devdax:2M:mem" && m.name == name)
                .unwrap_or_else(|| panic!("no {name}"))
                .samples
                .clone()
        };
        assert_eq!(
            samples("create_namespace_cpu"),
            [67.386448, 56.531003, 56.623167]
        );
        assert_eq!(samples("destroy_namespace_cpu").len(), 3);
        assert!(samples("create_namespace").iter().all(|&e| e > 10_000.0));
        let mut text = String::new();
        render_text(&r.memmap, &mut text);
        let row = text
            .lines()
            .find(|l| l.starts_with("devdax:2M:mem"))
            .unwrap();
        assert!(row.contains(" 56.6 ") && row.contains(" 28.2 "), "{row}");
    }
}
