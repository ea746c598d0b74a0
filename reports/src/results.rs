//! The results file: versioned, raw samples kept, with the run's context. Readers refuse a
//! schema version they do not know, naming both versions.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::check::Check;
use crate::clock::{Clock, ClockKind};
use crate::facts::Cpu;
use crate::fsdax::{FsdaxSuite, PfnmapResult};
use crate::hugetlb::HugetlbSuite;
use crate::memmap::MemmapResult;
use crate::metric::{Metric, Metrics};
use crate::pin::PinSuite;
use crate::rmap::RmapSuite;
use crate::suite::{Suite, SuiteReport};

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugetlb: Option<HugetlbSuite>,
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
    /// Probe id, kernel function and flavour of every probe used.
    pub probes: Vec<String>,
    pub notes: Vec<String>,
    /// How many timed rounds each measurement took (absent in files of foliobench before
    /// rounds followed precision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<crate::precision::Rounds>,
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
    /// The clock the run's timings were read with (absent in files of foliobench before
    /// it recorded one: those ran on the wall clock, the only one there was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<Clock>,
}

impl Results {
    /// The clock of the run's timings: the wall clock where the file records none.
    pub fn clock(&self) -> ClockKind {
        self.context
            .machine
            .as_ref()
            .and_then(|m| m.clock.as_ref())
            .map_or(ClockKind::Wall, |c| c.kind)
    }

    /// Every check of the run, each named with its suite (and geometry, for memmap).
    pub fn checks(&self) -> Vec<(String, Check)> {
        let mut v: Vec<(String, Check)> = self.parts().flat_map(|p| p.checks()).collect();
        if let Some(p) = &self.pfnmap {
            v.extend(crate::suite::named_checks_as("pfnmap", &p.checks()));
        }
        v
    }

    /// Each suite's part of the file, if it ran: an exhaustive match, so that a new suite
    /// is a compile error here until its results say what a suite says.
    pub fn part(&self, s: Suite) -> Option<&dyn SuiteReport> {
        match s {
            Suite::Memmap => (!self.memmap.is_empty()).then_some(&self.memmap as &dyn SuiteReport),
            Suite::Pin => self.pin.as_ref().map(|p| p as &dyn SuiteReport),
            Suite::Rmap => self.rmap.as_ref().map(|p| p as &dyn SuiteReport),
            Suite::Fsdax => self.fsdax.as_ref().map(|p| p as &dyn SuiteReport),
            Suite::Hugetlb => self.hugetlb.as_ref().map(|p| p as &dyn SuiteReport),
        }
    }

    /// The suites' parts the file has, in the order of `Suite::ALL`.
    pub fn parts(&self) -> impl Iterator<Item = &dyn SuiteReport> {
        Suite::ALL.into_iter().filter_map(|s| self.part(s))
    }

    /// What went wrong in the run: a requested geometry that could not be measured, a
    /// check that disagrees. `run --strict` fails on any.
    pub fn failures(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .memmap
            .iter()
            .filter_map(|m| {
                let e = m.error.as_ref()?;
                Some(format!("memmap {}: error: {e}", m.geometry))
            })
            .collect();
        v.extend(
            self.checks()
                .into_iter()
                .filter(|(_, c)| c.measured && !c.agrees)
                .map(|(k, c)| format!("{k}: MISMATCH: {}", c.detail)),
        );
        v
    }

    /// Every comparable quantity of the file, from each suite's metric table.
    pub fn metrics(&self) -> Vec<Metric> {
        let mut v: Vec<Metric> = self.parts().flat_map(|p| p.metrics()).collect();
        v.extend(self.pfnmap.iter().flat_map(Metrics::metrics));
        // A subject measured twice in one file (a geometry given twice) keeps both, told apart
        // by their order, so that each is compared with its counterpart.
        let keys: Vec<String> = v.iter().map(Metric::key).collect();
        for (i, m) in v.iter_mut().enumerate() {
            let n = keys[..i].iter().filter(|k| **k == keys[i]).count();
            if n > 0 {
                m.subject = format!("{} ({})", m.subject, n + 1);
            }
        }
        v
    }

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
        let _ = writeln!(o, "timings: {}", self.clock().describe());
        for n in &c.notes {
            let _ = writeln!(o, "note: {n}");
        }
        if let Some(r) = &c.restored {
            let _ = writeln!(o, "namespace restored afterwards, {r}");
        }
        for p in self.parts() {
            p.render_text(&mut o);
        }
        if let Some(p) = &self.pfnmap {
            let _ = writeln!(o);
            p.render_text(&mut o);
            crate::check::render_checks(&mut o, "pfnmap checks", &p.checks());
        }
        crate::precision::render(&mut o, &self.metrics(), c.rounds.as_ref());
        o
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
