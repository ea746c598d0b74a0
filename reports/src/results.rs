//! The results file: versioned, raw samples kept, with the run's context. Readers refuse a
//! schema version they do not know, naming both versions.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::facts::Cpu;
use crate::fsdax::{FsdaxSuite, PfnmapResult};
use crate::geometry::{Geometry, Map, ModelRow, PAGE_SIZE};
use crate::pin::PinSuite;
use crate::rmap::RmapSuite;

/// 2: the pin and rmap suites; the namespace became optional (anonymous-memory runs have
/// none).
pub const RESULTS_SCHEMA_VERSION: u32 = 2;
/// Older versions this reader still reads (each a subset of the current one).
const READABLE_VERSIONS: &[u32] = &[1, 2];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub context: Context,
    /// The suites run: memmap, pin.
    #[serde(default)]
    pub suites: Vec<String>,
    #[serde(default)]
    pub memmap: Vec<MemmapResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinSuite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rmap: Option<RmapSuite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsdax: Option<FsdaxSuite>,
    /// The PFN-map floor measured: device memory mapped with no struct page (the memmap
    /// suite's pfnmap geometry, and the fsdax suite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfnmap: Option<PfnmapResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Context {
    pub tool_version: String,
    pub kernel_release: String,
    pub kernel_cmdline: String,
    pub cpu: Cpu,
    pub cpu_model: String,
    /// The machine the kernel ran on (absent in files of foliobench before 0.1's reports).
    #[serde(default)]
    pub machine: Option<Machine>,
    /// Seconds since the epoch when the run started.
    pub started: u64,
    pub struct_page: u64,
    /// The kernel side of vmemmap_can_optimize() (arch opt-in, power-of-two struct page).
    pub vmemmap_optimization: bool,
    pub nr_memmap_pages: bool,
    /// The namespace reconfigured, if any was.
    pub namespace: Option<String>,
    pub namespace_size: Option<u64>,
    /// The namespace as re-read after it was restored.
    pub restored: Option<String>,
    /// Probe id, kernel function and mechanism of every probe used.
    pub probes: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    /// CPUs online.
    pub cpus: usize,
    /// MemTotal.
    pub memory_kb: u64,
    /// The test VM's accelerator (kvm, tcg); None when not run in a test VM (or by a
    /// foliobench before it recorded one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    /// The Debian kernel package booted, `name=version`, when it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_package: Option<String>,
}

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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub what: String,
    pub agrees: bool,
    pub detail: String,
}

/// Median of integer samples (lower middle for an even count: stays an observed value).
pub fn median_u64(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

fn med<F: Fn(&MemmapSample) -> Option<u64>>(s: &[MemmapSample], f: F) -> Option<u64> {
    median_u64(s.iter().filter_map(f).collect())
}

fn compare(what: &str, measured: u64, expected: u64, explain: &str) -> Check {
    let diff = measured as i64 - expected as i64;
    let agrees = diff == 0;
    let detail = if agrees {
        format!("{measured} = {expected}{explain}")
    } else {
        let pct = if expected == 0 {
            f64::INFINITY
        } else {
            diff as f64 * 100.0 / expected as f64
        };
        format!("{measured} vs {expected}: differs by {diff:+} ({pct:+.1}%){explain}")
    };
    Check {
        what: what.into(),
        agrees,
        detail,
    }
}

/// Compares the sources of one geometry: vmstat and the probes against the model, and the
/// struct pages initialised against the model. Never picks one silently.
pub fn checks(model: &ModelRow, samples: &[MemmapSample], nr_memmap_pages: bool) -> Vec<Check> {
    let mut v = Vec::new();
    let dev = model.geometry.map() == Some(Map::Dev);
    match med(samples, |s| {
        s.nr_memmap_pages_delta.map(|d| d.max(0) as u64)
    }) {
        Some(delta) => v.push(compare(
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
        v.push(compare(
            "vmemmap pages allocated from RAM (probe) vs model",
            p,
            model.ram_pages,
            "",
        ));
    }
    if let Some(n) = med(samples, |s| s.memmap_init_nr_pages) {
        v.push(compare(
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
            (true, Some(usable)) => v.push(compare(
                "struct pages initialised (probe) vs usable device pages",
                n,
                usable / PAGE_SIZE,
                &format!(
                    " (altmap: the {} pages the device reserves for struct pages and alignment are not initialised)",
                    model.size.saturating_sub(usable) / PAGE_SIZE
                ),
            )),
            _ => v.push(compare("struct pages initialised (probe) vs model", n, model.init_struct_pages, "")),
        }
    }
    v
}

/// A suite's checks under a title, one `ok` / `MISMATCH` line each.
pub fn render_checks(o: &mut String, title: &str, checks: &[Check]) {
    if checks.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{title} (a mismatch is reported, never hidden):");
    for c in checks {
        let _ = writeln!(
            o,
            "  {} {}: {}",
            if c.agrees { "ok      " } else { "MISMATCH" },
            c.what,
            c.detail
        );
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1}", bytes / (1 << 20) as f64)
}

impl Results {
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let c = &self.context;
        let _ = writeln!(
            o,
            "foliobench run ({}) on {} ({:?} CPU){}, struct page {} B",
            self.suites.join(", "),
            c.kernel_release,
            c.cpu,
            match (&c.namespace, c.namespace_size) {
                (Some(n), Some(s)) => format!(", {n} ({} MiB)", s >> 20),
                _ => String::new(),
            },
            c.struct_page
        );
        for n in &c.notes {
            let _ = writeln!(o, "note: {n}");
        }
        if let Some(r) = &c.restored {
            let _ = writeln!(o, "namespace restored afterwards, {r}");
        }
        if !self.memmap.is_empty() {
            let _ = writeln!(o, "\nmemmap suite:");
            self.render_memmap(&mut o);
        }
        if let Some(p) = &self.pin {
            let _ = writeln!(o);
            p.render_text(&mut o);
        }
        if let Some(r) = &self.rmap {
            let _ = writeln!(o);
            r.render_text(&mut o);
        }
        if let Some(f) = &self.fsdax {
            let _ = writeln!(o);
            f.render_text(&mut o);
        }
        if let Some(p) = &self.pfnmap {
            let _ = writeln!(o);
            p.render_text(&mut o);
            render_checks(&mut o, "pfnmap checks", &p.checks());
        }
        o
    }

    fn render_memmap(&self, o: &mut String) {
        let base = self
            .memmap
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
        for r in &self.memmap {
            let s = &r.samples;
            let f = |v: Option<u64>| v.map_or("-".to_string(), |x| x.to_string());
            let init = med(s, |x| x.memmap_init_ns);
            let memfree = median_u64(
                s.iter()
                    .map(|x| (-x.memfree_delta_kb).max(0) as u64)
                    .collect(),
            );
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
                med(s, |x| Some(x.create_ns))
                    .map_or("-".into(), |n| format!("{:.0}", n as f64 / 1e6)),
                memfree.map_or("-".into(), |k| format!("-{}M", mib(k as f64 * 1024.0))),
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
        for r in &self.memmap {
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
}

/// Reads a results file, refusing other schema versions by name.
pub fn parse(text: &str) -> Result<Results, String> {
    #[derive(Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let v: Version = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            format!("truncated results file (it ends before its JSON does): {e}")
        } else {
            format!("not a foliobench results file: {e}")
        }
    })?;
    if !READABLE_VERSIONS.contains(&v.schema_version) {
        return Err(format!(
            "results schema version {} is not readable by this foliobench (schema version {RESULTS_SCHEMA_VERSION}, reads {READABLE_VERSIONS:?})",
            v.schema_version
        ));
    }
    serde_json::from_str(text).map_err(|e| format!("malformed results file: {e}"))
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

    #[test]
    fn median_keeps_an_observed_value() {
        assert_eq!(median_u64(vec![5, 1, 3]), Some(3));
        assert_eq!(median_u64(vec![4, 1, 3, 2]), Some(2));
        assert_eq!(median_u64(vec![]), None);
    }

    #[test]
    fn other_schema_versions_are_refused_by_name() {
        let e = parse(r#"{"schema_version": 7}"#).unwrap_err();
        assert!(
            e.contains("version 7") && e.contains("schema version 2"),
            "{e}"
        );
        assert!(parse("{").unwrap_err().contains("truncated results file"));
        assert!(parse("3")
            .unwrap_err()
            .contains("not a foliobench results file"));
        assert!(parse(r#"{"schema_version": 2}"#)
            .unwrap_err()
            .contains("malformed"));
    }
}
