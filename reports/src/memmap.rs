//! The memmap suite's results: one namespace creation per sample, per geometry, its
//! sources (vmstat, probes, MemFree, the model) checked against each other, and its table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::chart::{Chart, Series};
use crate::check::{equal, Check};
use crate::geometry::{Geometry, Map, ModelRow, PAGE_SIZE};
use crate::metric::{ms, Better::*, Kind::*, MetricSpec, Metrics};
use crate::stats::{median, median_u64};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemmapResult {
    pub geometry: Geometry,
    pub model: ModelRow,
    pub samples: Vec<MemmapSample>,
    /// How the sources compare (median of the samples against each other and the model).
    pub checks: Vec<Check>,
    /// Why this geometry could not be measured, if it could not.
    pub error: Option<String>,
}

/// One namespace creation, measured from the namespace disabled.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemmapSample {
    /// `ndctl create-namespace` wall time.
    pub create_ns: u64,
    /// `/proc/vmstat nr_memmap_pages` after minus before (6.11+).
    pub nr_memmap_pages_delta: Option<i64>,
    pub memfree_delta_kb: i64,
    /// vmemmap pages allocated from RAM, from vmemmap_alloc_block_buf's sizes.
    pub probe_ram_vmemmap_pages: Option<u64>,
    pub memmap_init_ns: Option<u64>,
    pub memmap_init_nr_pages: Option<u64>,
    /// Struct pages initialised: memmap_init_compound's nr_pages summed (compound), or
    /// memmap_init_zone_device's nr_pages (base pages).
    pub init_struct_pages: Option<u64>,
    /// Bytes the namespace offers after configuration.
    pub usable_size: Option<u64>,
}

fn med<F: Fn(&MemmapSample) -> Option<u64>>(s: &[MemmapSample], f: F) -> Option<u64> {
    median_u64(&s.iter().filter_map(f).collect::<Vec<_>>())
}

/// Compares the sources of one geometry: vmstat and the probes against the model, and the
/// struct pages initialised against the model. Never picks one silently.
pub fn checks(model: &ModelRow, samples: &[MemmapSample], nr_memmap_pages: bool) -> Vec<Check> {
    let mut v = Vec::new();
    let dev = model.geometry.map() == Some(Map::Dev);
    match med(samples, |s| {
        s.nr_memmap_pages_delta.map(|d| d.max(0) as u64)
    }) {
        Some(delta) => v.push(equal(
            "nr_memmap_pages delta vs model",
            delta,
            model.vmemmap_pages,
            if dev {
                " (nr_memmap_pages counts struct pages on the device too)"
            } else {
                ""
            },
        )),
        None if !nr_memmap_pages => v.push(Check {
            what: "nr_memmap_pages delta vs model".into(),
            agrees: true,
            detail: "not measurable: this kernel has no nr_memmap_pages (added in 6.11)".into(),
        }),
        None => {}
    }
    if let Some(p) = med(samples, |s| s.probe_ram_vmemmap_pages) {
        v.push(equal(
            "vmemmap pages allocated from RAM (probe) vs model",
            p,
            model.ram_pages,
            "",
        ));
    }
    if let Some(n) = med(samples, |s| s.memmap_init_nr_pages) {
        v.push(equal(
            "memmap_init_zone_device nr_pages vs range",
            n,
            model.size / PAGE_SIZE,
            "",
        ));
    }
    if let Some(n) = med(samples, |s| s.init_struct_pages) {
        match (dev, med(samples, |s| s.usable_size)) {
            // With altmap, memmap_init_zone_device starts after the pfns reserved on the
            // device for the struct pages (vmem_altmap_offset): the usable pages are the
            // ones initialised.
            (true, Some(usable)) => v.push(equal(
                "struct pages initialised (probe) vs usable device pages",
                n,
                usable / PAGE_SIZE,
                &format!(
                    " (altmap: the {} pages the device reserves for struct pages and alignment are not initialised)",
                    model.size.saturating_sub(usable) / PAGE_SIZE
                ),
            )),
            _ => v.push(equal("struct pages initialised (probe) vs model", n, model.init_struct_pages, "")),
        }
    }
    v
}

impl MemmapResult {
    /// One value per sample, where the sample has it.
    fn each(&self, f: impl Fn(&MemmapSample) -> Option<f64>) -> Vec<f64> {
        self.samples.iter().filter_map(f).collect()
    }
}

impl Metrics for [MemmapResult] {
    type Row = MemmapResult;
    const SUITE: &'static str = "memmap";
    const METRICS: &'static [MetricSpec<Self, MemmapResult>] = &[
        MetricSpec::time("memmap_init", |_, r| r.each(|x| x.memmap_init_ns.map(ms))),
        MetricSpec::time("create_namespace", |_, r| r.each(|x| Some(ms(x.create_ns)))),
        MetricSpec::count("vmemmap_ram_pages", "pages", Lower, |_, r| {
            r.each(|x| x.probe_ram_vmemmap_pages.map(|v| v as f64))
        }),
        MetricSpec::count("nr_memmap_pages_delta", "pages", Lower, |_, r| {
            r.each(|x| x.nr_memmap_pages_delta.map(|v| v as f64))
        }),
        MetricSpec::count("struct_pages_initialised", "pages", Lower, |_, r| {
            r.each(|x| x.init_struct_pages.map(|v| v as f64))
        }),
        MetricSpec::count("usable", "MiB", Higher, |_, r| {
            r.each(|x| x.usable_size.map(|v| (v >> 20) as f64))
        }),
        MetricSpec::new("memfree_drop", "KiB", Lower, Time, |_, r| {
            r.each(|x| Some((-x.memfree_delta_kb) as f64))
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
        results
            .iter()
            .map(|m| m.samples.iter().filter_map(f).collect())
            .collect()
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
                    .map(|m| Some(mib(m.model.ram_pages)))
                    .collect(),
            ),
            medians(
                "measured: vmemmap allocations from RAM (probe)",
                per(&|s| s.probe_ram_vmemmap_pages.map(mib)),
            ),
            medians(
                "nr_memmap_pages delta (RAM and device)",
                per(&|s| s.nr_memmap_pages_delta.map(|d| mib(d.max(0) as u64))),
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
    out
}

/// Pages as MiB.
fn mib(pages: u64) -> f64 {
    (pages * PAGE_SIZE) as f64 / (1 << 20) as f64
}

fn mib_of(bytes: f64) -> String {
    format!("{:.1}", bytes / (1 << 20) as f64)
}

/// The memmap table, then every geometry's checks.
pub fn render_text(results: &[MemmapResult], o: &mut String) {
    let base = results
        .iter()
        .find(|r| r.geometry.to_string() == "devdax:4K:mem")
        .and_then(|r| med(&r.samples, |s| s.memmap_init_ns));
    let _ = writeln!(
        o,
        "{:<14} {:>3} {:>12} {:>12} {:>10} {:>11} {:>9} {:>10} {:>10} {:>9} {:>9}",
        "geometry",
        "n",
        "model pages",
        "vmstat",
        "probe RAM",
        "init (ms)",
        "init/4K",
        "create ms",
        "MemFree",
        "usable",
        "given up"
    );
    for r in results {
        let s = &r.samples;
        let f = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
        let init = med(s, |x| x.memmap_init_ns);
        let memfree = med(s, |x| Some((-x.memfree_delta_kb).max(0) as u64));
        let _ = writeln!(
            o,
            "{:<14} {:>3} {:>12} {:>12} {:>10} {:>11} {:>9} {:>10} {:>10} {:>9} {:>9}",
            r.geometry.to_string(),
            s.len(),
            r.model.vmemmap_pages,
            f(med(s, |x| x.nr_memmap_pages_delta.map(|d| d.max(0) as u64))),
            f(med(s, |x| x.probe_ram_vmemmap_pages)),
            init.map_or("-".into(), |n| format!("{:.2}", n as f64 / 1e6)),
            match (init, base) {
                (Some(i), Some(b)) if b > 0 => format!("{:.3}", i as f64 / b as f64),
                _ => "-".into(),
            },
            med(s, |x| Some(x.create_ns)).map_or("-".into(), |n| format!("{:.0}", n as f64 / 1e6)),
            memfree.map_or("-".into(), |k| format!("-{}M", mib_of(k as f64 * 1024.0))),
            med(s, |x| x.usable_size).map_or("-".into(), |u| format!("{}M", u >> 20)),
            // Device capacity not offered to the user: info block, alignment, and with
            // --map=dev the struct pages themselves.
            med(s, |x| x.usable_size).map_or("-".into(), |u| format!(
                "{}M",
                r.model.size.saturating_sub(u) >> 20
            )),
        );
    }
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
                if c.agrees { "ok      " } else { "MISMATCH" },
                c.what,
                c.detail
            );
        }
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
            ..Default::default()
        }
    }

    #[test]
    fn agreeing_sources_are_ok_and_mismatches_say_by_how_much() {
        let m = model(g("devdax:2M:mem"), 2 << 30, 64, true);
        let c = checks(&m, &[sample(2048, 2048, 131072)], true);
        assert!(c.iter().all(|c| c.agrees), "{c:?}");
        let c = checks(&m, &[sample(2050, 2048, 131072)], true);
        let bad = c.iter().find(|c| !c.agrees).unwrap();
        assert!(bad.detail.contains("differs by +2"), "{}", bad.detail);
    }

    /// Seen on 6.12, 2 GiB devdax:2M:dev: 2014 MiB usable, 515584 struct pages initialised.
    #[test]
    fn altmap_is_explained() {
        let m = model(g("devdax:2M:dev"), 2 << 30, 64, true);
        let mut s = sample(8192, 0, 515584);
        s.usable_size = Some(2014 << 20);
        let c = checks(&m, &[s], true);
        assert!(c.iter().all(|c| c.agrees), "{c:?}");
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
        let c = checks(&m, &[s], false);
        assert!(c[0].detail.contains("added in 6.11"));
    }
}
