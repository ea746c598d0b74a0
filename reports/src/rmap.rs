//! The rmap suite's results: per operation and folio size, wall times and the batch sizes
//! (`nr_pages`) the kernel passed to the batched rmap functions; and the terminal table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::chart::{Chart, Series};
use crate::check::{render_checks, Check};
use crate::metric::{measured, ms, Better::*, MetricSpec, Metrics};
use crate::outcome::Outcome;
use crate::stats::{median_u64, range_pct_u64};
use crate::trace::{frequent_values, ProbeStats};

/// An rmap operation (the rmap interface overhaul's microbenchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RmapOp {
    /// mprotect one base page of every PMD-mapped THP read-only and back: the PMD is split,
    /// the folio PTE-mapped (`folio_add_anon_rmap_ptes` with the whole folio), the VMAs merge.
    PteRemap,
    /// fork(): the child shares every folio (`folio_try_dup_anon_rmap_ptes`); the child
    /// exits at once, and its zap is traced with it.
    Fork,
    /// munmap of the whole mapping (`folio_remove_rmap_ptes`).
    Munmap,
    /// madvise(MADV_DONTNEED) of every base page on its own.
    DontneedPerPte,
    /// One byte written per folio while a child shares the memory (COW faults).
    Cow,
    /// One byte written per base page while a child shares the memory: the same number of
    /// COW faults at every folio size, beside `cow`'s one per folio.
    CowEachPage,
    /// A file mapping faulted in page by page (`folio_add_file_rmap_ptes`): the fsdax case.
    Fault,
}

impl RmapOp {
    pub const ALL: [RmapOp; 6] = [
        RmapOp::PteRemap,
        RmapOp::Fork,
        RmapOp::Munmap,
        RmapOp::DontneedPerPte,
        RmapOp::Cow,
        RmapOp::CowEachPage,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            RmapOp::PteRemap => "pte_remap",
            RmapOp::Fork => "fork",
            RmapOp::Munmap => "munmap",
            RmapOp::DontneedPerPte => "dontneed_per_pte",
            RmapOp::Cow => "cow",
            RmapOp::CowEachPage => "cow_each_page",
            RmapOp::Fault => "fault",
        }
    }

    /// The probe whose `nr_pages` shows this operation's batching, and the batch expected
    /// from a folio of `pages` pages.
    pub fn batch_probe(&self) -> Option<&'static str> {
        match self {
            RmapOp::PteRemap => Some("folio_add_anon_rmap_ptes"),
            // fork's dup side is inlined on 6.12; the child's exit zaps the same batches.
            RmapOp::Fork | RmapOp::Munmap => Some("folio_remove_rmap_ptes"),
            RmapOp::Fault => Some("folio_add_file_rmap_ptes"),
            RmapOp::DontneedPerPte | RmapOp::Cow | RmapOp::CowEachPage => None,
        }
    }
}

/// One check per folio size: whether the kernel's counters say it was obtained.
pub fn folio_checks(folios: &[FolioCheck]) -> Vec<Check> {
    folios
        .iter()
        .map(|f| {
            Check::new(
                format!("folio {}K obtained", f.folio_kb),
                f.verified,
                f.detail.clone(),
            )
        })
        .collect()
}

/// The folio size asked for, and what the kernel's counters say was obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolioCheck {
    pub folio_kb: u64,
    /// Folios of that size the mapping should consist of.
    pub expected: u64,
    /// Folios of that size allocated while faulting it in (the kernel's per-size counter
    /// `anon_fault_alloc`, or AnonHugePages for the PMD size), where the kernel tells.
    pub obtained: Option<u64>,
    pub verified: bool,
    pub detail: String,
}

impl FolioCheck {
    /// One check from the checks of every mapping of a folio size (warm-up and timed
    /// rounds): verified only if each was; otherwise the first that was not says why.
    pub fn of_every_mapping(checks: Vec<FolioCheck>) -> FolioCheck {
        let n = checks.len();
        let ok = checks.iter().filter(|c| c.verified).count();
        let mut first = checks
            .iter()
            .find(|c| !c.verified)
            .or(checks.first())
            .cloned()
            .expect("at least one mapping");
        first.verified = ok == n;
        first.detail = if ok == n {
            format!(
                "{}; as on each of the {n} mappings (warm-up and timed rounds)",
                first.detail
            )
        } else {
            format!(
                "{}; verified on {ok} of {n} mappings (warm-up and timed rounds)",
                first.detail
            )
        };
        first
    }
}

/// The memory of anonymous rows; the file case says `fsdax:mem`.
pub const ANON: &str = "anon";

/// The memory of private HugeTLB rows (`--folio-size hugetlb:2M`).
pub const HUGETLB: &str = "hugetlb";

fn anon() -> String {
    ANON.into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RmapResult {
    pub op: RmapOp,
    /// `anon`, `hugetlb`, or `fsdax:mem` for a file on ext4 -o dax.
    #[serde(default = "anon")]
    pub memory: String,
    pub folio_kb: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time of the operation, ns, one per timed round.
    pub samples: Vec<u64>,
    /// The rmap probes during the operation in a separate traced round.
    pub probes: Vec<ProbeStats>,
    /// The operation's time in that traced round: against `samples`, the probe effect.
    #[serde(default)]
    pub traced_ns: Option<u64>,
    /// fork and cow: the same probes around a fork of the process without the mapping
    /// (the child's exit zaps the process's other memory), already subtracted from
    /// `probes`. Empty for the other operations and in older results.
    #[serde(default)]
    pub control: Vec<ProbeStats>,
}

impl RmapSuite {
    /// The rmap suite's charts: time per operation and folio size, and batch sizes.
    pub fn charts(&self) -> Vec<Chart> {
        let rm = self;
        let mut out = Vec::new();
        let mut folios: Vec<(String, u64)> = Vec::new();
        for x in &rm.results {
            let k = (x.memory.clone(), x.folio_kb);
            if !folios.contains(&k) {
                folios.push(k);
            }
        }
        let cats: Vec<String> = folios
            .iter()
            .map(|(m, kb)| {
                if m == ANON {
                    format!("{kb}K")
                } else {
                    m.clone()
                }
            })
            .collect();
        let mut ops = Vec::new();
        for x in &rm.results {
            if !ops.contains(&x.op) {
                ops.push(x.op);
            }
        }
        let row = |op, (m, kb): &(String, u64)| {
            rm.results.iter().find(|x| {
                x.op == op && &x.memory == m && x.folio_kb == *kb && x.outcome == Outcome::Measured
            })
        };
        out.push(Chart {
            title: format!(
                "rmap operation time per folio size ({} MiB; median and samples)",
                rm.size >> 20
            ),
            y_label: "ms (log)".into(),
            log_y: true,
            categories: cats.clone(),
            series: ops
                .iter()
                .map(|op| {
                    let samples: Vec<Vec<f64>> = folios
                        .iter()
                        .map(|f| {
                            row(*op, f).map_or(vec![], |x| {
                                x.samples.iter().map(|&n| n as f64 / 1e6).collect()
                            })
                        })
                        .collect();
                    Series::of_samples(op.name(), samples)
                })
                .collect(),
        });
        // Batch-size histograms: calls per nr_pages value, one series per folio size.
        for op in &ops {
            let hists: Vec<(&str, &RmapResult)> = folios
                .iter()
                .zip(&cats)
                .filter_map(|(f, c)| Some((c.as_str(), row(*op, f)?)))
                .collect();
            out.extend(batch_chart(*op, &hists));
        }
        out
    }
}

/// One operation's batch sizes: its batch probe's calls per nr_pages value, a series per
/// folio size (`rows`: the measured row of each, under its category name).
fn batch_chart(op: RmapOp, rows: &[(&str, &RmapResult)]) -> Option<Chart> {
    let probe = op.batch_probe()?;
    let hists: Vec<(&str, &[(u64, u64)])> = rows
        .iter()
        .filter_map(|(c, r)| {
            let p = r.probe(probe)?;
            (!p.arg_values.is_empty()).then_some((*c, p.arg_values.as_slice()))
        })
        .collect();
    if hists.is_empty() {
        return None;
    }
    let mut values: Vec<u64> = hists
        .iter()
        .flat_map(|(_, h)| h.iter().map(|(v, _)| *v))
        .collect();
    values.sort_unstable();
    values.dedup();
    Some(Chart {
        title: format!("{} batch sizes: {probe} calls per nr_pages", op.name()),
        y_label: "calls (log)".into(),
        log_y: true,
        categories: values.iter().map(|v| format!("nr_pages {v}")).collect(),
        series: hists
            .iter()
            .map(|(c, h)| {
                Series::of_values(
                    format!("folio {c}"),
                    values
                        .iter()
                        .map(|v| h.iter().find(|(x, _)| x == v).map(|(_, n)| *n as f64))
                        .collect(),
                )
            })
            .collect(),
    })
}

impl Metrics for RmapSuite {
    type Row = RmapResult;
    const SUITE: &'static str = "rmap";
    const METRICS: &'static [MetricSpec<Self, RmapResult>] = &[
        MetricSpec::time("time", |_, r| r.samples.iter().map(|&x| ms(x)).collect()),
        // The rmap functions of the traced round (not the syscall tracepoints traced beside
        // them): per-page calls on 6.1, batches on 6.5+; the same quantity on both, so the
        // API change shows as a count.
        MetricSpec::count("rmap_calls", "calls", Lower, |_, r| {
            let rmap: Vec<_> = r.probes.iter().filter(|p| !p.is_syscall()).collect();
            if rmap.is_empty() {
                return vec![];
            }
            vec![rmap.iter().map(|p| p.calls).sum::<u64>() as f64]
        }),
    ];

    fn subjects(&self) -> Vec<(String, &RmapResult)> {
        measured(
            &self.results,
            |r| &r.outcome,
            |r| format!("{} {} {}K", r.op.name(), r.memory, r.folio_kb),
        )
    }
}

impl RmapResult {
    /// The folio size of an anonymous row, `hugetlb:2M` for a HugeTLB one, or the file
    /// case's memory.
    pub fn folio_label(&self) -> String {
        if self.memory == ANON {
            format!("{}K", self.folio_kb)
        } else if self.memory == HUGETLB {
            format!("{HUGETLB}:{}", crate::hugetlb::size_name(self.folio_kb))
        } else {
            self.memory.clone()
        }
    }
    /// The traced round's time over the untraced median.
    pub fn probe_effect(&self) -> Option<crate::effect::Effect> {
        let t = self.traced_ns? as f64;
        crate::effect::of(
            &[t],
            &self.samples.iter().map(|&x| x as f64).collect::<Vec<_>>(),
        )
    }

    pub fn median(&self) -> Option<u64> {
        median_u64(&self.samples)
    }

    pub fn range_pct(&self) -> Option<f64> {
        range_pct_u64(&self.samples)
    }

    pub fn probe(&self, id: &str) -> Option<&ProbeStats> {
        self.probes.iter().find(|p| p.probe == id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RmapSuite {
    /// Bytes of anonymous memory per round.
    pub size: u64,
    pub repeat: usize,
    /// How the rounds were run.
    pub method: String,
    /// Whether this kernel has the batched rmap API, and which functions the probes used.
    pub batched_api: bool,
    pub rmap_functions: Vec<String>,
    pub folios: Vec<FolioCheck>,
    pub results: Vec<RmapResult>,
    pub checks: Vec<Check>,
    /// The anonymous memory (RssAnon, kB) of the process that ran the rounds, before it
    /// mapped anything: fork copies its page tables too. The most any round saw; absent in
    /// files from before the rounds ran in a helper process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forking_process_anon_kb: Option<u64>,
}

/// Whether each operation handled the mapping's folios in whole-folio batches: as many
/// calls with `nr_pages` = the folio's pages as the mapping has folios (the evidence of
/// batching). Other calls (a forked child's exit also zaps the rest of the process) are
/// counted, not judged.
pub fn batch_checks(results: &[RmapResult], batched_api: bool, size: u64) -> Vec<Check> {
    let mut v = Vec::new();
    for r in results
        .iter()
        .filter(|r| r.outcome == Outcome::Measured && r.folio_kb > 4 && r.memory == ANON)
    {
        let Some(id) = r.op.batch_probe() else {
            continue;
        };
        let pages = r.folio_kb / 4;
        let folios = size / (r.folio_kb * 1024);
        let what = format!(
            "{} {}K: {id} takes whole folios ({pages} pages)",
            r.op.name(),
            r.folio_kb
        );
        match r.probe(id) {
            Some(p) if p.arg_name.is_some() && p.calls > 0 => {
                let whole = p.value_count(pages);
                v.push(Check::new(
                    what,
                    whole >= folios,
                    format!(
                        "{whole} calls with nr_pages {pages} for the mapping's {folios} folios; {} other calls",
                        p.calls.saturating_sub(whole)
                    ),
                ));
            }
            Some(p) if !batched_api => v.push(Check::skipped(
                what,
                format!(
                    "not applicable: this kernel has no batched rmap API ({}, per page: {} calls in this operation)",
                    p.function, p.calls
                ),
            )),
            _ => {}
        }
    }
    v
}

/// Per anonymous folio size, the negative control of the counts: the fork with the mapping
/// left out of the child (MADV_DONTFORK), counted on the mapping's VMAs as the operations
/// are, makes no rmap call on them; what it made on the rest of the process is left out
/// (`outside_vmas`), which shows the filter had something to leave out.
pub fn control_checks(results: &[RmapResult]) -> Vec<Check> {
    results
        .iter()
        .filter(|r| {
            r.outcome == Outcome::Measured
                && r.memory == ANON
                && r.op == RmapOp::Fork
                && !r.control.is_empty()
        })
        .map(|r| {
            let rmap = r.control.iter().filter(|p| !p.is_syscall());
            let (on, off) = rmap.fold((0, 0), |(a, b), p| (a + p.calls, b + p.outside_vmas));
            Check::new(
                format!(
                    "fork {}K without the mapping (MADV_DONTFORK): no rmap call on it",
                    r.folio_kb
                ),
                on == 0 && off > 0,
                format!("{on} rmap calls on the mapping, {off} on the rest of the process"),
            )
        })
        .collect()
}

/// Per HugeTLB row, against the mapping: COW takes one fault per folio, never per page
/// (`hugetlb_fault`; the new folio's rmap is added inline, hugetlb_add_new_anon_rmap on
/// 6.12); fork copies the one VMA in one walk (`copy_hugetlb_page_range`, which dups each
/// folio's rmap inline: hugetlb_try_dup_anon_rmap), munmap zaps it in one
/// (`__unmap_hugepage_range`, hugetlb_remove_rmap inline). Seed 003's hugetlb_* rmap calls
/// are static inline on 6.8+: these are their callers.
pub fn hugetlb_checks(results: &[RmapResult], size: u64) -> Vec<Check> {
    let mut v = Vec::new();
    for r in results
        .iter()
        .filter(|r| r.outcome == Outcome::Measured && r.memory == HUGETLB)
    {
        let folios = size / (r.folio_kb * 1024);
        let (id, want, per) = match r.op {
            RmapOp::Cow => ("hugetlb_fault", folios, "one fault per folio copied"),
            RmapOp::Fork => (
                "copy_hugetlb_page_range",
                1,
                "one walk of the mapping's VMA",
            ),
            RmapOp::Munmap => ("__unmap_hugepage_range", 1, "one zap of the mapping's VMA"),
            _ => continue,
        };
        let what = format!("{} {}: {id}, {per}", r.op.name(), r.folio_label());
        v.push(match r.probe(id) {
            Some(p) => Check::new(
                what,
                p.calls == want,
                format!(
                    "{} calls for the mapping's {folios} folios of {} pages (expected {want})",
                    p.calls,
                    r.folio_kb / 4
                ),
            ),
            _ => Check::skipped(what, format!("not measured: {id} was not traced")),
        });
    }
    v
}

/// The first screen's table: a row per folio size (anon, HugeTLB, the file case), a column
/// per operation's median time, and munmap's rmap batch.
fn rmap_derived(suite: &RmapSuite) -> Vec<crate::suite::Derived> {
    let measured = || {
        suite
            .results
            .iter()
            .filter(|r| r.outcome == Outcome::Measured)
    };
    // fork first: every anonymous size has it, so the rows come in the suite's order.
    let ops = [
        RmapOp::Fork,
        RmapOp::Munmap,
        RmapOp::PteRemap,
        RmapOp::DontneedPerPte,
        RmapOp::Cow,
        RmapOp::CowEachPage,
        RmapOp::Fault,
    ];
    let mut cols: Vec<crate::suite::Derived> = ops
        .into_iter()
        .map(|op| {
            let cells = measured()
                .filter(|r| r.op == op)
                .filter_map(|r| {
                    let ms = r.median()? as f64 / 1e6;
                    Some((
                        r.folio_label(),
                        crate::units::figure(ms, |x| format!("{x:.4}")),
                    ))
                })
                .collect();
            (op.name().to_string(), cells)
        })
        .filter(|(_, cells): &crate::suite::Derived| !cells.is_empty())
        .collect();
    let batch = measured()
        .filter(|r| r.op == RmapOp::Munmap)
        .filter_map(|r| {
            let p = r.probe(r.op.batch_probe()?)?;
            Some((r.folio_label(), p.mode()?.to_string()))
        })
        .collect();
    cols.push(("munmap batch".into(), batch));
    cols
}

impl RmapSuite {
    fn base(&self, op: RmapOp) -> Option<u64> {
        self.results
            .iter()
            .find(|r| {
                r.op == op && r.folio_kb == 4 && r.memory == ANON && r.outcome == Outcome::Measured
            })
            .and_then(RmapResult::median)
    }

    pub fn render_text(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "rmap suite: {} MiB of anonymous memory per round, {} timed rounds; {}",
            self.size >> 20,
            self.repeat,
            self.method
        );
        if let Some(kb) = self.forking_process_anon_kb {
            let _ = writeln!(
                o,
                "rounds run in a helper process of {kb} kB of anonymous memory before its mapping (fork copies that process's page tables too, so not the whole tool's)"
            );
        }
        let _ = writeln!(
            o,
            "batched rmap API: {} ({})",
            if self.batched_api {
                "yes"
            } else {
                "no: per-page rmap calls, no batches to show"
            },
            self.rmap_functions.join(", ")
        );
        for f in &self.folios {
            let _ = writeln!(
                o,
                "  folio {:>5}K: {} {}",
                f.folio_kb,
                if f.verified {
                    "verified"
                } else {
                    "NOT VERIFIED"
                },
                f.detail
            );
        }
        let _ = writeln!(
            o,
            "{:<17} {:>7} {:>2} {:>10} {:>7} {:>7}  rmap batches (nr_pages x calls, traced round)",
            "operation", "folio", "n", "median ms", "range", "vs 4K",
        );
        for r in &self.results {
            let folio = r.folio_label();
            match &r.outcome {
                Outcome::Measured => {}
                Outcome::Refused { errno, .. } => {
                    let _ = writeln!(
                        o,
                        "{:<17} {folio:>7} refused by kernel ({errno})",
                        r.op.name()
                    );
                    continue;
                }
                Outcome::Skipped { reason } => {
                    let _ = writeln!(o, "{:<17} {folio:>7} skipped: {reason}", r.op.name());
                    continue;
                }
            }
            self.render_row(r, &folio, o);
        }
        let cells: Vec<(String, crate::effect::Effect)> = self
            .results
            .iter()
            .filter_map(|r| {
                Some((
                    format!("{} {}", r.op.name(), r.folio_label()),
                    r.probe_effect()?,
                ))
            })
            .collect();
        crate::effect::render(o, &cells);
        render_checks(o, "rmap checks", &self.checks);
    }

    /// One measured operation: its timing and the rmap batches of its traced round.
    fn render_row(&self, r: &RmapResult, folio: &str, o: &mut String) {
        let med = r.median();
        let batches = r
            .probes
            .iter()
            .filter(|p| p.calls > 0 && p.group == crate::facts::Group::Rmap && !p.is_syscall())
            .map(|p| {
                if p.arg_values.is_empty() {
                    format!("{} {} calls", p.function, p.calls)
                } else {
                    format!("{} {}", p.function, frequent_values(&p.arg_values))
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            o,
            "{:<17} {folio:>7} {:>2} {:>10} {:>7} {:>7}  {}",
            r.op.name(),
            r.samples.len(),
            med.map_or("-".into(), |m| format!("{:.2}", m as f64 / 1e6)),
            r.range_pct().map_or("-".into(), |p| format!("{p:.0}%")),
            match (med, self.base(r.op)) {
                (Some(m), Some(b)) if b > 0 && r.memory == ANON => {
                    format!("{:.3}", m as f64 / b as f64)
                }
                _ => "-".into(),
            },
            match (batches.is_empty(), r.probes.is_empty()) {
                (false, _) => batches,
                (true, false) => "no rmap calls".to_string(),
                (true, true) => "- (not traced)".to_string(),
            }
        );
    }
}

impl crate::suite::SuiteReport for RmapSuite {
    fn first_screen(&self) -> (&'static str, &'static [(&'static str, &'static str)]) {
        (
            "rmap operations per folio size: median time (ms) of each, and the batch the rmap \
             calls of munmap took (nr_pages, the traced round's most frequent)",
            &[],
        )
    }
    fn first_screen_derived(&self) -> Vec<crate::suite::Derived> {
        rmap_derived(self)
    }
    fn size(&self) -> Option<u64> {
        Some(self.size)
    }
    fn outcomes(&self) -> Vec<(String, Outcome)> {
        self.results
            .iter()
            .map(|x| {
                (
                    format!("rmap {} {} {}K", x.op.name(), x.memory, x.folio_kb),
                    x.outcome.clone(),
                )
            })
            .collect()
    }
    fn suite(&self) -> crate::suite::Suite {
        crate::suite::Suite::Rmap
    }
    fn metrics(&self) -> Vec<crate::metric::Metric> {
        <RmapSuite as crate::metric::Metrics>::metrics(self)
    }
    fn charts(&self) -> Vec<Chart> {
        RmapSuite::charts(self)
    }
    fn checks(&self) -> Vec<(String, Check)> {
        crate::suite::named_checks(crate::suite::Suite::Rmap, &self.checks)
    }
    fn render_text(&self, o: &mut String) {
        let _ = writeln!(o);
        RmapSuite::render_text(self, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Flavour, Group};

    fn probe(function: &str, arg: bool, values: Vec<(u64, u64)>) -> ProbeStats {
        ProbeStats {
            probe: "folio_remove_rmap_ptes".into(),
            group: Group::Rmap,
            function: function.into(),
            flavour: Flavour::Fentry,
            calls: values.iter().map(|(_, n)| n).sum(),
            returns: 0,
            total_ns: 0,
            latency_log2: vec![],
            arg_name: arg.then(|| "nr_pages".into()),
            arg_log2: vec![],
            arg_sum: 0,
            arg_values: if arg { values } else { vec![] },
            arg_values_dropped: 0,
            stacks: vec![],
            outside_vmas: 0,
        }
    }

    fn row(op: RmapOp, kb: u64, p: ProbeStats) -> RmapResult {
        RmapResult {
            op,
            memory: ANON.into(),
            folio_kb: kb,
            outcome: Outcome::Measured,
            samples: vec![1],
            probes: vec![p],
            traced_ns: None,
            control: vec![],
        }
    }

    /// Seen on 6.12, 32 MiB of 2M HugeTLB pages: fork walks the VMA once, munmap zaps it
    /// once, COW faults once per folio.
    #[test]
    fn hugetlb_rows_are_held_to_one_call_per_vma_or_folio() {
        let named = |id: &str, calls: u64| ProbeStats {
            probe: id.into(),
            function: id.into(),
            ..probe(id, false, vec![(0, calls)])
        };
        let hugetlb = |op, p| RmapResult {
            memory: HUGETLB.into(),
            ..row(op, 2048, p)
        };
        let rows = [
            hugetlb(RmapOp::Fork, named("copy_hugetlb_page_range", 1)),
            hugetlb(RmapOp::Munmap, named("__unmap_hugepage_range", 1)),
            hugetlb(RmapOp::Cow, named("hugetlb_fault", 16)),
            // A per-page COW would fault 8192 times; a row without the probe is not measured.
            hugetlb(RmapOp::Cow, named("hugetlb_fault", 8192)),
            hugetlb(RmapOp::Cow, named("folio_remove_rmap_ptes", 9)),
            // Anonymous rows are batch_checks' business.
            row(RmapOp::Fork, 2048, named("copy_hugetlb_page_range", 0)),
        ];
        let c = hugetlb_checks(&rows, 32 << 20);
        assert_eq!(c.len(), 5, "{c:?}");
        assert!(c[0].agrees && c[1].agrees && c[2].agrees, "{c:?}");
        assert_eq!(
            c[2].what,
            "cow hugetlb:2M: hugetlb_fault, one fault per folio copied"
        );
        assert!(c[2]
            .detail
            .starts_with("16 calls for the mapping's 16 folios of 512 pages"));
        assert!(!c[3].agrees, "{:?}", c[3]);
        assert!(!c[4].measured, "{:?}", c[4]);
        assert_eq!(rows[0].folio_label(), "hugetlb:2M");
    }

    /// The control fork of 256K folios on 6.12.118: before the probes counted the mapping's
    /// VMAs alone, it counted 118 folio_remove_rmap_ptes calls of one page (the helper's own
    /// memory, zapped by the child's exit); counted on the mapping, none may remain.
    #[test]
    fn the_control_fork_counts_nothing_on_the_mapping() {
        let control = |calls: u64, outside: u64| RmapResult {
            control: vec![ProbeStats {
                outside_vmas: outside,
                ..probe("folio_remove_rmap_ptes", true, vec![(1, calls)])
            }],
            ..row(
                RmapOp::Fork,
                256,
                probe("folio_remove_rmap_ptes", true, vec![(64, 64)]),
            )
        };
        let rows = [
            control(0, 118),
            // Not filtered by VMA (no vma argument found): the rest counted as the mapping's.
            control(118, 0),
            // Only fork rows carry the check (COW shares fork's control).
            RmapResult {
                op: RmapOp::Cow,
                ..control(0, 118)
            },
        ];
        let c = control_checks(&rows);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].agrees, "{:?}", c[0]);
        assert_eq!(
            c[0].what,
            "fork 256K without the mapping (MADV_DONTFORK): no rmap call on it"
        );
        assert_eq!(
            c[0].detail,
            "0 rmap calls on the mapping, 118 on the rest of the process"
        );
        assert!(!c[1].agrees, "{:?}", c[1]);
    }

    /// Seen on 6.12: munmap of 64K folios removes rmap in batches of 16.
    #[test]
    fn batches_equal_to_the_folio_pass_and_others_are_reported() {
        let good = row(
            RmapOp::Munmap,
            64,
            probe("folio_remove_rmap_ptes", true, vec![(16, 1024), (1, 2)]),
        );
        let bad = row(
            RmapOp::Fork,
            2048,
            probe("folio_remove_rmap_ptes", true, vec![(511, 32), (1, 64)]),
        );
        // 64 MiB: 1024 folios of 64K, 32 of 2M.
        let c = batch_checks(&[good, bad], true, 64 << 20);
        assert_eq!(c.len(), 2);
        assert!(c[0].agrees, "{:?}", c[0]);
        assert!(
            c[0].detail.contains(
                "1024 calls with nr_pages 16 for the mapping's 1024 folios; 2 other calls"
            ),
            "{}",
            c[0].detail
        );
        assert!(!c[1].agrees);
        assert!(
            c[1].detail
                .contains("0 calls with nr_pages 512 for the mapping's 32 folios"),
            "{}",
            c[1].detail
        );
    }

    /// 6.1: page_remove_rmap has no nr_pages; the check says batching is absent.
    #[test]
    fn kernels_without_the_batched_api_say_so() {
        let old = row(
            RmapOp::Munmap,
            2048,
            probe("page_remove_rmap", false, vec![(0, 262144)]),
        );
        let c = batch_checks(&[old], false, 64 << 20);
        assert!(c[0].detail.contains("no batched rmap API"), "{:?}", c[0]);
        let mut o = String::new();
        RmapSuite {
            batched_api: false,
            ..Default::default()
        }
        .render_text(&mut o);
        assert!(o.contains("batched rmap API: no"), "{o}");
    }

    /// A folio size is verified only if every mapping (warm-up and each timed round) got
    /// it; the first that did not says why.
    #[test]
    fn folio_size_is_verified_on_every_mapping() {
        let c = |verified: bool, detail: &str| FolioCheck {
            folio_kb: 64,
            expected: 512,
            obtained: Some(if verified { 512 } else { 300 }),
            verified,
            detail: detail.into(),
        };
        let all = FolioCheck::of_every_mapping(vec![c(true, "a"), c(true, "b"), c(true, "c")]);
        assert!(all.verified);
        assert_eq!(
            all.detail,
            "a; as on each of the 3 mappings (warm-up and timed rounds)"
        );
        let one_bad = FolioCheck::of_every_mapping(vec![
            c(true, "warm-up"),
            c(false, "round 1"),
            c(true, "x"),
        ]);
        assert!(!one_bad.verified);
        assert_eq!(one_bad.obtained, Some(300));
        assert_eq!(
            one_bad.detail,
            "round 1; verified on 2 of 3 mappings (warm-up and timed rounds)"
        );
    }
}
