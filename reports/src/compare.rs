//! Comparing two results files, metric by metric: the median of each side, its spread, the
//! change, and whether the change is significant — the mmtests `compare-kernels` / 0-day
//! convention (a star for a significant change past the threshold). Which direction is
//! better is part of each metric's definition, never guessed from the numbers.

use serde::{Deserialize, Serialize};

use crate::clock::{repeats, ClockKind, Repeats, WALL_THRESHOLD_PCT};

pub use crate::metric::{Better, Kind, Metric};
use crate::outcome::Outcome;
use crate::results::Results;
use crate::stats::{mann_whitney_p, median, min_p, range_pct, welch_log_mde_pct, welch_log_p};

/// Every comparable quantity of a results file (`Results::metrics`).
pub fn metrics(r: &Results) -> Vec<Metric> {
    r.metrics()
}

/// How one metric changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No significant change past the threshold.
    Same,
    Improvement,
    Regression,
    /// Only the candidate has it (a new metric): not compared.
    Missing,
    /// The base measured it and the candidate did not (absent, or a count that became 0:
    /// a probe inlined away, a path no longer taken): fails the gate unless allowed.
    Lost,
    /// A kernel count that is zero on one side only: the kernels take different paths
    /// (6.1 splits a PMD without an rmap call, 6.12 makes one batched call), so neither
    /// direction means better.
    Incomparable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub n: usize,
    pub median: f64,
    /// (max - min) / median, percent.
    pub range_pct: Option<f64>,
    pub samples: Vec<f64>,
    /// With several boots: each boot's median, the unit the test compares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boot_medians: Vec<f64>,
    /// Spread within a boot: the median over boots of (max - min) / median, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_boot_pct: Option<f64>,
    /// Spread between boots: (max - min) / median of the boots' medians, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_boot_pct: Option<f64>,
}

impl Side {
    fn of(samples: &[f64]) -> Option<Side> {
        Some(Side {
            n: samples.len(),
            median: median(samples)?,
            range_pct: range_pct(samples),
            samples: samples.to_vec(),
            boot_medians: vec![],
            within_boot_pct: None,
            between_boot_pct: None,
        })
    }

    /// The samples of several boots: pooled, with each boot's median and the two spreads.
    fn of_boots(boots: &[Vec<f64>]) -> Option<Side> {
        let pooled: Vec<f64> = boots.iter().flatten().copied().collect();
        let mut side = Side::of(&pooled)?;
        if boots.len() > 1 {
            side.boot_medians = boot_medians(boots);
            side.between_boot_pct = range_pct(&side.boot_medians);
            let within: Vec<f64> = boots.iter().filter_map(|b| range_pct(b)).collect();
            side.within_boot_pct = median(&within);
        }
        Some(side)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub key: String,
    pub suite: String,
    pub unit: String,
    pub better: Better,
    pub kind: Kind,
    pub base: Option<Side>,
    pub candidate: Option<Side>,
    /// Candidate median against base median, percent.
    pub change_pct: Option<f64>,
    /// Mann-Whitney U, two-sided (time metrics).
    pub p_value: Option<f64>,
    /// That p-value adjusted for every time metric of the comparison (Benjamini-Hochberg
    /// or Holm); the verdict uses it.
    #[serde(default)]
    pub p_adjusted: Option<f64>,
    /// The smallest change that counts, percent: --threshold, or the baseline's own
    /// between-boot spread where it is larger (time metrics, several boots).
    #[serde(default)]
    pub min_effect_pct: f64,
    /// The smallest change this comparison could have called (time metrics, several boots
    /// a side): Welch's t at alpha on these boots' spread, and never below
    /// `min_effect_pct`. An A/A run's calibration of the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mde_pct: Option<f64>,
    pub significant: bool,
    pub verdict: Verdict,
    /// Why the verdict is what it is, in words.
    pub why: String,
    /// Under the instruction clock, why this timing does not repeat between boots (it waits
    /// idle, or follows the page allocator's state): it keeps the wall clock's threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub does_not_repeat: Option<String>,
}

impl Row {
    /// Measured in both runs (not only in one).
    pub fn in_both(&self) -> bool {
        !matches!(self.verdict, Verdict::Missing | Verdict::Lost)
    }

    /// Why this row fails the gate, if it does.
    pub(crate) fn failure(&self, allow_missing: bool) -> Option<&'static str> {
        match self.verdict {
            Verdict::Regression => Some("regression"),
            Verdict::Lost if !allow_missing => Some("lost"),
            _ => None,
        }
    }

    pub(crate) fn skipped(&self, allow_missing: bool) -> bool {
        matches!(self.verdict, Verdict::Missing | Verdict::Incomparable)
            || (self.verdict == Verdict::Lost && allow_missing)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub file: String,
    /// The clock its timings were read with.
    #[serde(default = "wall")]
    pub clock: ClockKind,
    pub kernel_release: String,
    pub cpu: String,
    pub started: u64,
    pub tool_version: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub base: RunInfo,
    pub candidate: RunInfo,
    /// Percent a change must pass to count.
    pub threshold_pct: f64,
    /// Significance level of the test.
    pub alpha: f64,
    pub rows: Vec<Row>,
    /// Rows whose outcome differs (measured on one side, refused or skipped on the other).
    pub outcome_changes: Vec<String>,
    /// Things the reader must know to trust the verdicts (emulated CPUs, too few samples).
    pub caveats: Vec<String>,
    /// What the base had and the candidate lost besides metrics: an outcome no longer
    /// measured, a check no longer ok, a geometry that errored. Fails the gate unless
    /// `allow_missing`.
    #[serde(default)]
    pub lost: Vec<String>,
    /// Losses (lost metrics and `lost`) are reported but do not fail the gate.
    #[serde(default)]
    pub allow_missing: bool,
    /// How the p-values were adjusted for the number of metrics.
    #[serde(default)]
    pub correction: Correction,
    /// Boots of the baseline and of the candidate (results files per side).
    #[serde(default = "one_boot_each")]
    pub boots: (usize, usize),
}

fn wall() -> ClockKind {
    ClockKind::Wall
}

/// The smallest change that counts when the user names none: 5 % on the wall clock (an
/// emulated VM's boots spread by tens of percent there), 1 % when every file's timings
/// are instruction time (two boots agree to hundredths of a percent: a 1 % change is
/// seen). The baseline's own between-boot spread still raises it per metric.
pub fn default_threshold_pct(files: &[&Results]) -> f64 {
    if !files.is_empty() && files.iter().all(|r| r.clock() == ClockKind::Instructions) {
        1.0
    } else {
        WALL_THRESHOLD_PCT
    }
}

/// The clock of every file of a side, if they share one.
fn one_clock(files: &[(&str, &Results)]) -> Option<ClockKind> {
    let first = files.first()?.1.clock();
    files
        .iter()
        .all(|(_, r)| r.clock() == first)
        .then_some(first)
}

fn one_boot_each() -> (usize, usize) {
    (1, 1)
}

/// The multiple-comparison correction over a comparison's time metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Correction {
    /// Benjamini-Hochberg: the expected share of false "significant" verdicts stays below
    /// alpha.
    #[default]
    Bh,
    /// Holm: the chance of any false "significant" verdict stays below alpha.
    Holm,
    /// Each metric on its own p-value.
    None,
}

impl Correction {
    /// Adjusted p-values, in the order given (None stays None; all None without a
    /// correction, so each metric is judged on its own p-value).
    pub fn adjust(self, p: &[Option<f64>]) -> Vec<Option<f64>> {
        if self == Correction::None {
            return vec![None; p.len()];
        }
        let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_some()).collect();
        let m = idx.len();
        let mut out = p.to_vec();
        if m == 0 {
            return out;
        }
        idx.sort_by(|&a, &b| p[a].partial_cmp(&p[b]).expect("p-values are numbers"));
        let pv = |i: usize| p[i].expect("kept only Some");
        match self {
            Correction::Bh => {
                // q(k) = min over j >= k of p(j) * m / j, from the largest down.
                let mut running = 1.0f64;
                for (k, &i) in idx.iter().enumerate().rev() {
                    running = running.min(pv(i) * m as f64 / (k + 1) as f64);
                    out[i] = Some(running.min(1.0));
                }
            }
            Correction::Holm => {
                // q(k) = max over j <= k of p(j) * (m - j + 1), from the smallest up.
                let mut running = 0.0f64;
                for (k, &i) in idx.iter().enumerate() {
                    running = running.max(pv(i) * (m - k) as f64);
                    out[i] = Some(running.min(1.0));
                }
            }
            Correction::None => {}
        }
        out
    }

    pub fn describe(self) -> &'static str {
        match self {
            Correction::Bh => "Benjamini-Hochberg (false discovery rate)",
            Correction::Holm => "Holm (family-wise error)",
            Correction::None => "none",
        }
    }
}

impl Comparison {
    /// The clock of the timings compared, or both where they differ (then not judged).
    pub fn clocks_described(&self) -> String {
        if self.base.clock == self.candidate.clock {
            self.base.clock.describe().to_string()
        } else {
            format!(
                "different clocks (base: {}, candidate: {}), not judged",
                self.base.clock.short(),
                self.candidate.clock.short()
            )
        }
    }

    pub fn lost_metrics(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Lost)
            .count()
    }

    /// Why the gate fails: regressions, and losses unless they are allowed. Empty: it
    /// passes.
    pub fn failures(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .rows
            .iter()
            .filter(|r| {
                r.verdict == Verdict::Regression
                    || (r.verdict == Verdict::Lost && !self.allow_missing)
            })
            .map(|r| format!("{}: {}", r.key, r.why))
            .collect();
        if !self.allow_missing {
            v.extend(self.lost.iter().map(|l| format!("lost: {l}")));
        }
        v
    }

    /// The timings judged changed across several boots per side.
    pub fn timing_changes_across_boots(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.kind.is_timing())
            .filter(|r| matches!(r.verdict, Verdict::Regression | Verdict::Improvement))
            .filter(|r| {
                let boots = |s: &Option<Side>| s.as_ref().map_or(0, |s| s.boot_medians.len());
                boots(&r.base) > 1 && boots(&r.candidate) > 1
            })
            .collect()
    }

    /// Of those, what `ab` confirms with more boots before it believes them: a change that
    /// one boot in a fast or a slow mode could make. On the wall clock every one (one devdax
    /// pin: boot medians of 6.3 ms or 9.5 ms, either kernel; three boots per side split by
    /// mode alone once in about thirty times, which Welch's t on three medians reads as a
    /// change). Under the instruction clock only the timings that do not repeat between
    /// boots: the others repeat to 1 % (an A/A of 66 metrics, 3+3 boots, all "same"), so
    /// their change is the kernel's.
    pub fn timing_changes_to_confirm(&self) -> Vec<&str> {
        self.timing_changes_across_boots()
            .into_iter()
            .filter(|r| self.base.clock == ClockKind::Wall || r.does_not_repeat.is_some())
            .map(|r| r.key.as_str())
            .collect()
    }

    /// The suites whose counts changed (changed, appeared or vanished): where a kernel's
    /// changelog is worth reading.
    pub fn suites_with_count_changes(&self) -> Vec<crate::suite::Suite> {
        let mut out = Vec::new();
        for r in self
            .rows
            .iter()
            .filter(|r| r.kind == Kind::Count && r.verdict != Verdict::Same)
        {
            if let Ok(s) = r.suite.parse::<crate::suite::Suite>() {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    pub fn regressions(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Regression)
            .count()
    }
    pub fn improvements(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.verdict == Verdict::Improvement)
            .count()
    }
}

fn info(file: &str, r: &Results) -> RunInfo {
    RunInfo {
        file: file.into(),
        clock: r.clock(),
        kernel_release: r.context.kernel_release.clone(),
        cpu: format!("{:?}", r.context.cpu),
        started: r.context.started,
        tool_version: r.context.tool_version.clone(),
    }
}

/// One metric's samples across the boots of one side.
#[derive(Debug, Clone)]
struct Pooled {
    metric: Metric,
    boots: Vec<Vec<f64>>,
}

impl Pooled {
    fn one(m: &Metric) -> Pooled {
        Pooled {
            metric: m.clone(),
            boots: vec![m.samples.clone()],
        }
    }
}

/// Each boot's median: with several boots, the values the time test compares.
fn boot_medians(boots: &[Vec<f64>]) -> Vec<f64> {
    boots.iter().filter_map(|b| median(b)).collect()
}

/// Every metric of the files of one side, each boot's samples kept apart.
fn pooled(files: &[(&str, &Results)]) -> Vec<Pooled> {
    let mut out: Vec<Pooled> = Vec::new();
    for (_, r) in files {
        for m in metrics(r) {
            match out.iter_mut().find(|p| p.metric.key() == m.key()) {
                Some(p) => {
                    p.metric.samples.extend(&m.samples);
                    p.boots.push(m.samples);
                }
                None => out.push(Pooled::one(&m)),
            }
        }
    }
    out
}

/// The raw p-value of a time metric: Welch's t on the per-boot medians' logarithms when
/// both sides have several boots (the boot is the unit), else Mann-Whitney on the samples.
fn time_p(b: &Pooled, c: &Pooled) -> Option<f64> {
    if b.boots.len() > 1 && c.boots.len() > 1 {
        welch_log_p(&boot_medians(&b.boots), &boot_medians(&c.boots))
    } else {
        mann_whitney_p(&b.metric.samples, &c.metric.samples)
    }
}

/// One boot a side, judged on its own p-value (the unit tests' form).
#[cfg(test)]
fn judge(b: &Metric, c: &Metric, threshold_pct: f64, alpha: f64, adjusted: Option<f64>) -> Row {
    let (b, c) = (Pooled::one(b), Pooled::one(c));
    let raw = time_p(&b, &c);
    judge_pooled(&b, &c, threshold_pct, alpha, (raw, adjusted))
}

/// One metric judged at the threshold its clock gives it: under the instruction clock a
/// timing that waits idle, or follows the page allocator's state, does not repeat and keeps
/// the wall clock's 5 % (saying why); one that repeats to a percent (`Repeats::Coarsely`) keeps
/// its own; the rest `threshold_pct`.
fn judge_on_its_clock(
    (b, c): (&Pooled, &Pooled),
    clock: Option<ClockKind>,
    (threshold_pct, alpha): (f64, f64),
    pq: (Option<f64>, Option<f64>),
) -> Row {
    let m = &b.metric;
    let how = if clock == Some(ClockKind::Instructions) {
        repeats(&m.suite, &m.subject, &m.name)
    } else {
        Repeats::Closely
    };
    let mut row = judge_pooled(b, c, how.threshold_pct(threshold_pct), alpha, pq);
    match how {
        Repeats::Closely => {}
        Repeats::Coarsely { pct, why } => {
            row.why = format!(
                "{}; held to {pct} % under the instruction clock: {why}",
                row.why
            );
        }
        Repeats::Not { why } => {
            row.why = format!(
                "{}; does not repeat under the instruction clock: {why}",
                row.why
            );
            row.does_not_repeat = Some(why.into());
        }
    }
    row
}

/// `p`: a time metric's raw p-value (`time_p`, computed once by the caller) and the same
/// adjusted for the comparison's other metrics (None: judged on the raw one).
fn judge_pooled(
    bp: &Pooled,
    cp: &Pooled,
    threshold: f64,
    alpha: f64,
    (p, adjusted): (Option<f64>, Option<f64>),
) -> Row {
    let b = &bp.metric;
    let (bs, cs) = (Side::of_boots(&bp.boots), Side::of_boots(&cp.boots));
    let (bm, cm) = (bs.as_ref().map(|s| s.median), cs.as_ref().map(|s| s.median));
    let change_pct = match (bm, cm) {
        (Some(x), Some(y)) if x != 0.0 => Some((y - x) * 100.0 / x.abs()),
        (Some(x), Some(y)) if x == y => Some(0.0),
        _ => None,
    };
    let boots = bp.boots.len() > 1 && cp.boots.len() > 1;
    // The noise floor: a change smaller than the baseline's own spread between boots is
    // not a change, whatever the test says.
    let noise = bs
        .as_ref()
        .and_then(|s| s.between_boot_pct)
        .filter(|_| b.kind == Kind::Time);
    let threshold_pct = noise.map_or(threshold, |n| n.max(threshold));
    let identical = bm.is_some() && bm == cm;
    let (p_value, significant, test) = test_of(bp, cp, identical, alpha, (p, adjusted));
    let past = change_pct.is_some_and(|x| x.abs() >= threshold_pct);
    let verdict = verdict_of(b, significant, past, (bm, cm));
    let why = match verdict {
        Verdict::Lost => {
            "lost: none in the candidate run, where the base counted some (a probe gone, or a path no longer taken)".to_string()
        }
        Verdict::Incomparable => format!(
            "not comparable: none in the {} run (the kernels take different paths here)",
            if bm == Some(0.0) { "base" } else { "candidate" }
        ),
        Verdict::Same if significant && noise.is_some_and(|n| n > threshold) => format!(
            "{test}; change within the baseline's between-boot spread of {threshold_pct:.1}%"
        ),
        Verdict::Same if significant => {
            format!("{test}; change within the {threshold_pct}% threshold")
        }
        _ => test,
    };
    Row {
        key: b.key(),
        suite: b.suite.clone(),
        unit: b.unit.clone(),
        better: b.better,
        kind: b.kind,
        base: bs,
        candidate: cs,
        change_pct,
        p_value,
        p_adjusted: adjusted,
        min_effect_pct: threshold_pct,
        mde_pct: (b.kind == Kind::Time && boots)
            .then(|| welch_log_mde_pct(&boot_medians(&bp.boots), &boot_medians(&cp.boots), alpha))
            .flatten()
            .map(|m| m.max(threshold_pct)),
        significant,
        verdict,
        why,
        does_not_repeat: None,
    }
}

/// The test a metric's kind calls for: its p-value (timings), whether it found a
/// difference, and its name with its figures.
fn test_of(
    bp: &Pooled,
    cp: &Pooled,
    identical: bool,
    alpha: f64,
    (p, adjusted): (Option<f64>, Option<f64>),
) -> (Option<f64>, bool, String) {
    let (b, c) = (&bp.metric, &cp.metric);
    let boots = bp.boots.len() > 1 && cp.boots.len() > 1;
    let lo = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match b.kind {
        // Instruction time can repeat to the nanosecond: equal medians are the same, and a
        // test on samples without spread would only divide by zero.
        Kind::Time if identical => (None, false, "identical medians on both sides".to_string()),
        Kind::Time => {
            let floor = min_p(b.samples.len(), c.samples.len());
            let name = if boots {
                format!(
                    "Welch t on {}+{} boot medians",
                    bp.boots.len(),
                    cp.boots.len()
                )
            } else {
                "Mann-Whitney".to_string()
            };
            let test = if !boots && floor > alpha {
                format!(
                    "{}+{} samples cannot reach p<{alpha} (at best p={floor:.3}): use more --repeat",
                    b.samples.len(),
                    c.samples.len()
                )
            } else {
                match adjusted {
                    Some(q) => format!("{name} p={:.4}, adjusted {q:.4}", p.unwrap_or(1.0)),
                    None => format!("{name} p={:.4}", p.unwrap_or(1.0)),
                }
            };
            (p, adjusted.or(p).is_some_and(|p| p < alpha), test)
        }
        Kind::Log2 => {
            let (b_lo, b_hi) = (lo(&b.samples) / 2.0, hi(&b.samples));
            let (c_lo, c_hi) = (lo(&c.samples) / 2.0, hi(&c.samples));
            let apart = b_hi < c_lo || c_hi < b_lo;
            (
                None,
                apart,
                if apart {
                    "log2 buckets: more than one bucket apart".to_string()
                } else {
                    "log2 buckets: within a bucket of each other (the histogram's resolution)"
                        .to_string()
                },
            )
        }
        Kind::Count => {
            let disjoint = hi(&b.samples) < lo(&c.samples) || hi(&c.samples) < lo(&b.samples);
            (
                None,
                disjoint,
                if disjoint {
                    "kernel count: the ranges do not overlap".to_string()
                } else if b.samples == c.samples {
                    "kernel count: unchanged".to_string()
                } else {
                    "kernel count: the ranges overlap".to_string()
                },
            )
        }
    }
}

/// Regression or improvement only when the test found a difference past the threshold; a
/// count that went to or came from zero says a path changed.
fn verdict_of(
    b: &Metric,
    significant: bool,
    past: bool,
    (bm, cm): (Option<f64>, Option<f64>),
) -> Verdict {
    let zero_on_one_side =
        b.kind == Kind::Count && significant && (bm == Some(0.0)) != (cm == Some(0.0));
    if zero_on_one_side && cm == Some(0.0) {
        Verdict::Lost
    } else if zero_on_one_side {
        Verdict::Incomparable
    } else if !(significant && past) {
        Verdict::Same
    } else {
        let up = cm > bm;
        match (b.better, up) {
            (Better::Lower, true) | (Better::Higher, false) => Verdict::Regression,
            _ => Verdict::Improvement,
        }
    }
}

/// A row shown without a test: its sides as they are, the verdict and why given.
fn unjudged(
    m: &Metric,
    (base, candidate): (Option<Side>, Option<Side>),
    verdict: Verdict,
    why: String,
) -> Row {
    Row {
        key: m.key(),
        suite: m.suite.clone(),
        unit: m.unit.clone(),
        better: m.better,
        kind: m.kind,
        base,
        candidate,
        change_pct: None,
        p_value: None,
        p_adjusted: None,
        min_effect_pct: 0.0,
        mde_pct: None,
        significant: false,
        verdict,
        why,
        does_not_repeat: None,
    }
}

/// A timing whose sides were read with different clocks: shown, never judged.
fn across_clocks(bp: &Pooled, cp: &Pooled, clocks: (Option<ClockKind>, Option<ClockKind>)) -> Row {
    let name = |c: Option<ClockKind>| c.map_or("mixed", ClockKind::name);
    unjudged(
        &bp.metric,
        (Side::of_boots(&bp.boots), Side::of_boots(&cp.boots)),
        Verdict::Incomparable,
        format!(
            "not compared: timings of different clocks (base: {}, candidate: {})",
            name(clocks.0),
            name(clocks.1)
        ),
    )
}

fn missing(m: &Metric, base: bool) -> Row {
    let side = Side::of(&m.samples);
    if base {
        unjudged(
            m,
            (side, None),
            Verdict::Lost,
            "lost: measured in the base run, not in the candidate".into(),
        )
    } else {
        unjudged(
            m,
            (None, side),
            Verdict::Missing,
            "only in the candidate run".into(),
        )
    }
}

/// A cell (suite, memory, driver...) and what became of it, in words.
type OutcomeOf = (String, String);

fn outcomes(r: &Results) -> Vec<OutcomeOf> {
    let word = |o: &Outcome| match o {
        Outcome::Measured => "measured".to_string(),
        Outcome::Refused { errno, .. } => format!("refused ({errno})"),
        Outcome::Skipped { reason } => format!("skipped ({reason})"),
    };
    let mut v: Vec<OutcomeOf> = r
        .parts()
        .flat_map(|p| p.outcomes())
        .map(|(k, o)| (k, word(&o)))
        .collect();
    if let Some(p) = &r.pfnmap {
        v.push(("pfnmap".into(), word(&p.outcome)));
        for x in &p.pins {
            v.push((format!("pfnmap pin {}", x.driver.name()), word(&x.outcome)));
        }
    }
    v
}

/// Compares every metric the two runs share, in the base's order, then those only one has;
/// time metrics' p-values adjusted together by `correction`.
pub fn compare(
    base: (&str, &Results),
    cand: (&str, &Results),
    threshold_pct: f64,
    alpha: f64,
    correction: Correction,
) -> Comparison {
    compare_boots(&[base], &[cand], threshold_pct, alpha, correction)
}

/// `compare` over several boots a side (`ab --boots`): each metric's samples pooled per
/// side, the boot as the unit of the time test, the baseline's between-boot spread as
/// the smallest change that counts. Outcomes, checks and the run info are the first
/// boot's of each side.
pub fn compare_boots(
    bases: &[(&str, &Results)],
    cands: &[(&str, &Results)],
    threshold_pct: f64,
    alpha: f64,
    correction: Correction,
) -> Comparison {
    let ((base_file, base), (cand_file, cand)) = (bases[0], cands[0]);
    let (bm, cm) = (pooled(bases), pooled(cands));
    // Timings of different clocks are not judged (instruction time against wall time says
    // nothing about the kernel); counts are.
    let clocks = (one_clock(bases), one_clock(cands));
    let one_clock_for_all = matches!(clocks, (Some(b), Some(c)) if b == c);
    let pairs: Vec<(&Pooled, Option<&Pooled>)> = bm
        .iter()
        .map(|b| (b, cm.iter().find(|c| c.metric.key() == b.metric.key())))
        .collect();
    let raw: Vec<Option<f64>> = pairs
        .iter()
        .map(|(b, c)| match c {
            Some(c) if b.metric.kind == Kind::Time && one_clock_for_all => time_p(b, c),
            _ => None,
        })
        .collect();
    let adjusted = correction.adjust(&raw);
    let mut rows = Vec::new();
    for (((b, c), p), q) in pairs.iter().zip(&raw).zip(&adjusted) {
        match c {
            Some(c) if b.metric.kind.is_timing() && !one_clock_for_all => {
                rows.push(across_clocks(b, c, clocks))
            }
            Some(c) => rows.push(judge_on_its_clock(
                (b, c),
                clocks.0,
                (threshold_pct, alpha),
                (*p, *q),
            )),
            None => rows.push(missing(&b.metric, true)),
        }
    }
    for c in cm
        .iter()
        .filter(|c| !bm.iter().any(|b| b.metric.key() == c.metric.key()))
    {
        rows.push(missing(&c.metric, false));
    }
    let (bo, co) = (outcomes(base), outcomes(cand));
    let outcome_changes: Vec<String> = bo
        .iter()
        .filter_map(|(k, b)| {
            let (_, c) = co.iter().find(|(k2, _)| k2 == k)?;
            (b != c).then(|| format!("{k}: {b} -> {c}"))
        })
        .collect();
    let lost = losses(base, cand, (&bo, &co));
    let caveats = caveats_of((base, cand), clocks, &rows, alpha);
    Comparison {
        base: info(base_file, base),
        candidate: info(cand_file, cand),
        boots: (bases.len(), cands.len()),
        threshold_pct,
        alpha,
        rows,
        outcome_changes,
        caveats,
        lost,
        allow_missing: false,
        correction,
    }
}

/// What a reader must know before trusting the comparison's timings: emulation, clocks,
/// accelerators, too few samples.
fn caveats_of(
    (base, cand): (&Results, &Results),
    clocks: (Option<ClockKind>, Option<ClockKind>),
    rows: &[Row],
    alpha: f64,
) -> Vec<String> {
    let one_clock_for_all = matches!(clocks, (Some(b), Some(c)) if b == c);
    let mut caveats = Vec::new();
    for (side, r) in [("base", base), ("candidate", cand)] {
        if r.context.cpu == crate::facts::Cpu::Emulated {
            caveats.push(format!(
                "the {side} run's CPU was emulated (QEMU TCG): its timings carry the emulator's cost; compare runs of one machine only"
            ));
        }
    }
    if !one_clock_for_all {
        let name = |c: Option<ClockKind>| c.map_or("a mix of clocks", ClockKind::short);
        caveats.push(format!(
            "the runs' timings were read with different clocks (base: {}, candidate: {}): timings are not judged, counts are",
            name(clocks.0),
            name(clocks.1)
        ));
    }
    let accel = |r: &Results| {
        r.context
            .machine
            .as_ref()
            .and_then(|m| m.accelerator.clone())
            .unwrap_or_else(|| "no test VM (or not recorded)".into())
    };
    let (ba, ca) = (accel(base), accel(cand));
    if ba != ca {
        caveats.push(format!(
            "the runs used different accelerators (base: {ba}, candidate: {ca}): their timings are not comparable"
        ));
    }
    let few = rows
        .iter()
        .filter(|r| r.kind == Kind::Time && r.why.contains("cannot reach"))
        .count();
    if few > 0 {
        caveats.push(format!(
            "{few} timing metrics have too few samples for any difference to be significant at p<{alpha}"
        ));
    }
    caveats
}

/// What the candidate lost besides metrics: outcomes measured on the base and not on the
/// candidate (or absent), checks ok on the base and not on the candidate, memmap geometries
/// that errored on the candidate only.
fn losses(base: &Results, cand: &Results, (bo, co): (&[OutcomeOf], &[OutcomeOf])) -> Vec<String> {
    let mut v = Vec::new();
    for (k, _) in bo.iter().filter(|(_, b)| b == "measured") {
        match co.iter().find(|(k2, _)| k2 == k) {
            Some((_, c)) if c != "measured" => v.push(format!("{k}: measured -> {c}")),
            Some(_) => {}
            None => v.push(format!("{k}: measured -> absent")),
        }
    }
    let cand_checks = cand.checks();
    for (k, b) in base.checks() {
        if !(b.measured && b.agrees) {
            continue;
        }
        match cand_checks.iter().find(|(k2, _)| *k2 == k) {
            Some((_, c)) if c.measured && c.agrees => {}
            Some((_, c)) => v.push(format!(
                "check {k}: ok -> {}: {}",
                c.verdict().trim(),
                c.detail
            )),
            None => v.push(format!("check {k}: ok -> absent")),
        }
    }
    for m in &cand.memmap {
        let Some(e) = &m.error else { continue };
        let errored_on_base = base
            .memmap
            .iter()
            .any(|b| b.geometry == m.geometry && b.error.is_some());
        if !errored_on_base {
            v.push(format!(
                "memmap {}: error on the candidate: {e}",
                m.geometry
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::comparison::change;

    /// A recorded 6.12 run (memmap, pin, fsdax) on `clock`, every pin time scaled by `f`.
    fn recorded(clock: ClockKind, f: f64) -> Results {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/matrix/6.12.117.json"))
                .unwrap();
        for row in v["pin"]["results"].as_array_mut().unwrap() {
            for s in row["samples"].as_array_mut().unwrap() {
                if let Some(ns) = s["pin_ns"].as_f64() {
                    s["pin_ns"] = ((ns * f).round() as u64).into();
                }
            }
        }
        let mut r: Results = serde_json::from_value(v).unwrap();
        r.context.machine.as_mut().unwrap().clock = Some(match clock {
            ClockKind::Wall => crate::clock::Clock::wall(),
            ClockKind::Instructions => crate::clock::Clock::instructions(),
        });
        r
    }

    /// Three instruction-clock boots whose memmap timings of the first geometry are scaled
    /// by `f` (and a jitter of ±0.04 %).
    fn memmap_boots(f: f64) -> Vec<Results> {
        [1.0, 1.0004, 0.9996]
            .map(|j| {
                let mut r = recorded(ClockKind::Instructions, 1.0);
                for s in &mut r.memmap[0].samples {
                    s.create_ns = (s.create_ns as f64 * f * j) as u64;
                    s.memmap_init_ns = s.memmap_init_ns.map(|n| (n as f64 * f * j) as u64);
                    // The CPU time of a recorded 2M creation (6.12.118, one vCPU).
                    s.create_busy_ns = Some((58.9e6 * f * j) as u64);
                }
                r
            })
            .to_vec()
    }

    /// Under the instruction clock a 3 % change of memmap_init_zone_device is a
    /// regression, while the same change of the whole `ndctl create-namespace`, which
    /// waits idle and does not repeat there, stays below the wall clock's 5 % and says why.
    #[test]
    fn timings_that_wait_idle_keep_the_wall_clocks_threshold() {
        let c = compare_boots(
            &side_of(&memmap_boots(1.0)),
            &side_of(&memmap_boots(1.03)),
            1.0,
            0.05,
            Correction::Bh,
        );
        let row = |k: &str| c.rows.iter().find(|r| r.key == k).unwrap();
        let init = row("memmap devdax:4K:mem memmap_init");
        assert_eq!(init.verdict, Verdict::Regression, "{}", init.why);
        let create = row("memmap devdax:4K:mem create_namespace");
        assert_eq!(create.verdict, Verdict::Same, "{}", create.why);
        assert_eq!(create.min_effect_pct, 5.0);
        assert!(
            create
                .why
                .contains("does not repeat under the instruction clock: a whole ndctl command"),
            "{}",
            create.why
        );
        assert!(!init.why.contains("does not repeat"), "{}", init.why);
        assert!(create.does_not_repeat.as_ref().unwrap().contains("ndctl"));
        assert_eq!(init.does_not_repeat, None);
    }

    /// The whole ndctl command's CPU time repeats, to a percent: under the instruction
    /// clock a 3 % change is "same" at its 5 % and a 7 % one a regression, not "does not
    /// repeat" either way.
    #[test]
    fn a_whole_commands_cpu_time_is_held_to_five_percent() {
        for (f, verdict) in [(1.03, Verdict::Same), (1.07, Verdict::Regression)] {
            let c = compare_boots(
                &side_of(&memmap_boots(1.0)),
                &side_of(&memmap_boots(f)),
                1.0,
                0.05,
                Correction::Bh,
            );
            let cpu = c
                .rows
                .iter()
                .find(|r| r.key == "memmap devdax:4K:mem create_namespace_cpu")
                .unwrap();
            assert_eq!(cpu.verdict, verdict, "{f}: {}", cpu.why);
            assert_eq!(cpu.min_effect_pct, 5.0, "{}", cpu.why);
            assert!(
                cpu.why.contains("held to 5 % under the instruction clock"),
                "{}",
                cpu.why
            );
            assert_eq!(cpu.does_not_repeat, None);
        }
    }

    fn boots_of(clock: ClockKind, f: f64) -> Vec<Results> {
        [1.0, 1.0004, 0.9996]
            .map(|j| recorded(clock, f * j))
            .to_vec()
    }

    fn side_of(v: &[Results]) -> Vec<(&str, &Results)> {
        v.iter().map(|r| ("x.json", r)).collect()
    }

    /// Pin times doubled on the candidate: called a regression when both sides' timings
    /// are instruction time (the positive control), never judged when the sides' clocks
    /// differ, while their counts are still compared.
    #[test]
    fn timings_of_different_clocks_are_not_judged_counts_are() {
        use ClockKind::*;
        let base = boots_of(Instructions, 1.0);
        let same = compare_boots(
            &side_of(&base),
            &side_of(&boots_of(Instructions, 2.0)),
            1.0,
            0.05,
            Correction::Bh,
        );
        assert!(same.regressions() > 0, "{}", same.render_text());
        assert!(
            same.header().contains("timings: instruction time"),
            "{}",
            same.header()
        );
        let mixed = compare_boots(
            &side_of(&base),
            &side_of(&boots_of(Wall, 2.0)),
            1.0,
            0.05,
            Correction::Bh,
        );
        assert_eq!(mixed.regressions(), 0, "{}", mixed.render_text());
        assert!(mixed.failures().is_empty());
        let timings: Vec<&Row> = mixed.rows.iter().filter(|r| r.kind.is_timing()).collect();
        assert!(!timings.is_empty());
        for r in &timings {
            assert_eq!(r.verdict, Verdict::Incomparable, "{}", r.key);
            assert!(
                r.why
                    .contains("different clocks (base: instructions, candidate: wall)"),
                "{}",
                r.why
            );
            assert_eq!(r.p_value, None);
        }
        let counts: Vec<&Row> = mixed
            .rows
            .iter()
            .filter(|r| r.kind == Kind::Count)
            .collect();
        assert!(!counts.is_empty());
        assert!(
            counts.iter().all(|r| r.verdict == Verdict::Same),
            "counts still judged"
        );
        assert!(
            mixed.caveats.iter().any(|c| c.contains("different clocks")),
            "{:?}",
            mixed.caveats
        );
        assert!(
            mixed.header().contains("different clocks"),
            "{}",
            mixed.header()
        );
        // One side's boots on two clocks is a mix too.
        let mut half = boots_of(Instructions, 1.0);
        half[2] = recorded(Wall, 1.0);
        let c = compare_boots(&side_of(&base), &side_of(&half), 1.0, 0.05, Correction::Bh);
        assert!(c
            .rows
            .iter()
            .filter(|r| r.kind.is_timing())
            .all(|r| r.verdict == Verdict::Incomparable));
    }

    /// Files without a clock are wall-clock files; the default threshold is 1 % only when
    /// every file is instruction time.
    #[test]
    fn the_default_threshold_follows_the_clock() {
        use ClockKind::*;
        let (i, w) = (recorded(Instructions, 1.0), recorded(Wall, 1.0));
        assert_eq!(default_threshold_pct(&[&i, &i]), 1.0);
        assert_eq!(default_threshold_pct(&[&i, &w]), 5.0);
        let mut old = recorded(Wall, 1.0);
        old.context.machine.as_mut().unwrap().clock = None;
        assert_eq!(old.clock(), Wall);
        assert_eq!(default_threshold_pct(&[&old, &old]), 5.0);
    }

    /// Equal medians are "same" without a test; every timing of an A/A on several boots
    /// gets a minimum detectable effect no smaller than the threshold, and it is printed.
    #[test]
    fn an_a_against_a_prints_the_smallest_change_it_could_call() {
        let a = boots_of(ClockKind::Instructions, 1.0);
        let c = compare_boots(&side_of(&a), &side_of(&a), 1.0, 0.05, Correction::Bh);
        assert!(c.failures().is_empty());
        let pin = c
            .rows
            .iter()
            .find(|r| r.key == "pin devdax:4K:mem io_uring pin")
            .expect("pin row");
        assert_eq!(pin.verdict, Verdict::Same);
        assert!(pin.why.contains("identical medians"), "{}", pin.why);
        let mde = pin.mde_pct.unwrap();
        // Boots spread by +-0.04 %: the test alone could call ~0.1 %; the threshold is the floor.
        assert_eq!(mde, 1.0);
        let text = c.render_text();
        assert!(text.contains("smallest change the gate can call"), "{text}");
        assert!(
            text.contains("pin devdax:4K:mem io_uring pin: 1.00% (between boots 0.080% / 0.080%)"),
            "{text}"
        );
        let c = compare_boots(&side_of(&a), &side_of(&a), 0.0, 0.05, Correction::Bh);
        let pin = c
            .rows
            .iter()
            .find(|r| r.key == "pin devdax:4K:mem io_uring pin")
            .unwrap();
        assert!(
            pin.mde_pct.unwrap() > 0.05 && pin.mde_pct.unwrap() < 0.5,
            "{:?}",
            pin.mde_pct
        );
    }

    fn metric(kind: Kind, better: Better, samples: &[f64]) -> Metric {
        Metric {
            suite: "rmap".into(),
            subject: "munmap anon 2048K".into(),
            name: "time".into(),
            unit: "ms".into(),
            better,
            kind,
            samples: samples.to_vec(),
        }
    }

    #[test]
    fn a_significant_slowdown_past_the_threshold_is_a_regression() {
        let b = metric(Kind::Time, Better::Lower, &[10.0, 10.2, 9.9, 10.1, 10.0]);
        let c = metric(Kind::Time, Better::Lower, &[12.0, 12.1, 11.9, 12.2, 12.0]);
        let r = judge(&b, &c, 5.0, 0.05, None);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
        assert!((r.p_value.unwrap() - 2.0 / 252.0).abs() < 1e-12);
        // The same change where higher is better is an improvement.
        let b = metric(Kind::Time, Better::Higher, &b.samples);
        let c = metric(Kind::Time, Better::Higher, &c.samples);
        assert_eq!(judge(&b, &c, 5.0, 0.05, None).verdict, Verdict::Improvement);
    }

    #[test]
    fn small_changes_and_overlaps_are_the_same() {
        let b = metric(Kind::Time, Better::Lower, &[10.0, 10.2, 9.9, 10.1, 10.0]);
        let c = metric(Kind::Time, Better::Lower, &[10.3, 10.4, 10.35, 10.45, 10.5]);
        let r = judge(&b, &c, 5.0, 0.05, None);
        assert!(r.significant);
        assert_eq!(r.verdict, Verdict::Same, "within threshold: {r:?}");
        let c = metric(Kind::Time, Better::Lower, &[8.0, 14.0, 9.0, 13.0, 10.0]);
        assert_eq!(judge(&b, &c, 5.0, 0.05, None).verdict, Verdict::Same);
    }

    #[test]
    fn three_samples_a_side_say_they_cannot_be_significant() {
        let b = metric(Kind::Time, Better::Lower, &[1.0, 1.0, 1.0]);
        let c = metric(Kind::Time, Better::Lower, &[9.0, 9.0, 9.0]);
        let r = judge(&b, &c, 5.0, 0.05, None);
        assert_eq!(r.verdict, Verdict::Same);
        assert!(r.why.contains("cannot reach"), "{}", r.why);
    }

    /// 6.1 -> 6.12, munmap of 32 MiB of PMD folios: 8192 page_remove_rmap calls against
    /// 16 folio_remove_rmap_ptes calls (seen in the VM).
    #[test]
    fn counts_change_when_their_ranges_part() {
        let b = metric(Kind::Count, Better::Lower, &[8192.0]);
        let c = metric(Kind::Count, Better::Lower, &[16.0]);
        let r = judge(&b, &c, 5.0, 0.05, None);
        assert_eq!(r.verdict, Verdict::Improvement, "{r:?}");
        assert_eq!(judge(&c, &b, 5.0, 0.05, None).verdict, Verdict::Regression);
        assert_eq!(judge(&b, &b, 5.0, 0.05, None).verdict, Verdict::Same);
        // 6.1 -> 6.12 pte_remap of 32 MiB of PMD folios: no rmap call on 6.1 (the split
        // sets the mapcounts itself), 16 batched calls on 6.12: a different path, not a
        // regression.
        let z = metric(Kind::Count, Better::Lower, &[0.0]);
        let r = judge(&z, &c, 5.0, 0.05, None);
        assert_eq!(r.verdict, Verdict::Incomparable);
        assert_eq!(change(&r), "new");
        assert!(r.why.contains("none in the base run"), "{}", r.why);
    }

    fn comparison(rows: Vec<Row>) -> Comparison {
        let info = |k: &str| RunInfo {
            file: format!("{k}.json"),
            clock: ClockKind::Wall,
            kernel_release: k.into(),
            cpu: "Emulated".into(),
            started: 0,
            tool_version: "0.1.0".into(),
        };
        Comparison {
            base: info("6.1.0-56-amd64"),
            candidate: info("6.12.117+deb12-amd64"),
            threshold_pct: 5.0,
            alpha: 0.05,
            rows,
            outcome_changes: vec![],
            caveats: vec![],
            lost: vec![],
            allow_missing: false,
            correction: Correction::Bh,
            boots: (1, 1),
        }
    }

    #[test]
    fn ktap_and_junit_mark_regressions_and_skips() {
        let b = metric(Kind::Count, Better::Lower, &[16.0]);
        let c = metric(Kind::Count, Better::Lower, &[8192.0]);
        let cmp = comparison(vec![
            judge(&b, &c, 5.0, 0.05, None),
            judge(&b, &b, 5.0, 0.05, None),
            missing(&b, true),
        ]);
        let k = cmp.render_ktap();
        let lines: Vec<&str> = k.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines[0], "KTAP version 1");
        assert_eq!(lines[1], "1..3");
        assert_eq!(lines[2], "not ok 1 rmap_munmap_anon_2048K_time");
        assert_eq!(lines[3], "ok 2 rmap_munmap_anon_2048K_time");
        // Measured on the base only: lost, which fails the gate.
        assert_eq!(lines[4], "not ok 3 rmap_munmap_anon_2048K_time");
        let j = cmp.render_junit();
        assert!(j.contains(r#"tests="3" failures="2" skipped="0""#), "{j}");
        assert_eq!(j.matches("<testcase ").count(), 3);
        // Allowed: the loss is a skip, only the regression fails.
        let mut allowed = cmp.clone();
        allowed.allow_missing = true;
        let k = allowed.render_ktap();
        assert!(
            k.contains("ok 3 rmap_munmap_anon_2048K_time # SKIP lost: measured in the base run"),
            "{k}"
        );
        assert_eq!(allowed.failures().len(), 1);
        assert!(allowed
            .render_junit()
            .contains(r#"tests="3" failures="1" skipped="1""#));
    }

    /// Seen in an A/A of 6.12 (3 boots a side): one GUP call's p50 in the 8.4 ms bucket on
    /// every base boot and in the 16.8 ms one on every candidate boot, one latency on a
    /// bucket's edge. One bucket apart is within the histogram's resolution; two are a change.
    #[test]
    fn log2_percentiles_change_only_past_a_bucket() {
        let b = metric(Kind::Log2, Better::Lower, &[8388608.0; 3]);
        let c = metric(Kind::Log2, Better::Lower, &[16777216.0; 3]);
        let r = judge(&b, &c, 5.0, 0.05, None);
        assert_eq!(r.verdict, Verdict::Same, "{r:?}");
        assert!(r.why.contains("within a bucket"), "{}", r.why);
        let worse = metric(Kind::Log2, Better::Lower, &[33554432.0; 3]);
        let r = judge(&b, &worse, 5.0, 0.05, None);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
        assert_eq!(
            judge(&worse, &b, 5.0, 0.05, None).verdict,
            Verdict::Improvement
        );
        // A side that spans the gap is not apart.
        let mixed = metric(Kind::Log2, Better::Lower, &[16777216.0, 33554432.0]);
        assert_eq!(judge(&b, &mixed, 5.0, 0.05, None).verdict, Verdict::Same);
        // Pooled over boots (the gate's path): the same rule, no Welch t on zero spread.
        let per_boot = |v: f64| Pooled {
            boots: vec![vec![v]; 3],
            ..Pooled::one(&metric(Kind::Log2, Better::Lower, &[v; 3]))
        };
        let r = judge_pooled_raw(&per_boot(8388608.0), &per_boot(16777216.0), None);
        assert_eq!(r.verdict, Verdict::Same, "{r:?}");
        let r = judge_pooled_raw(&per_boot(8388608.0), &per_boot(33554432.0), None);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
    }

    /// A candidate that lost a measurement, a count, an outcome or a check fails the gate,
    /// though no metric regressed.
    #[test]
    fn losses_fail_the_gate_unless_allowed() {
        let b = metric(Kind::Count, Better::Lower, &[512.0]);
        let zero = metric(Kind::Count, Better::Lower, &[0.0]);
        let r = judge(&b, &zero, 5.0, 0.05, None);
        assert_eq!(r.verdict, Verdict::Lost, "a count that became 0: {r:?}");
        assert_eq!(
            judge(&zero, &b, 5.0, 0.05, None).verdict,
            Verdict::Incomparable,
            "a count that appeared is a different path, not a loss"
        );
        assert_eq!(missing(&b, false).verdict, Verdict::Missing, "new metric");
        let mut cmp = comparison(vec![judge(&b, &b, 5.0, 0.05, None)]);
        assert!(cmp.failures().is_empty());
        cmp.lost = vec!["pin devdax:2M:mem io_uring: measured -> refused (EOPNOTSUPP)".into()];
        assert_eq!(cmp.failures().len(), 1, "{:?}", cmp.failures());
        let k = cmp.render_ktap();
        assert!(k.contains("1..2"), "{k}");
        assert!(k.contains("not ok 2 lost_pin_devdax"), "{k}");
        assert!(cmp.render_text().contains("gate: FAIL"));
        cmp.allow_missing = true;
        assert!(cmp.failures().is_empty());
        assert!(cmp.render_text().contains("gate: pass"));
    }

    /// `judge_pooled` with the raw p-value computed as `compare_boots` computes it.
    fn judge_pooled_raw(b: &Pooled, c: &Pooled, adjusted: Option<f64>) -> Row {
        judge_pooled(b, c, 5.0, 0.05, (time_p(b, c), adjusted))
    }

    fn boots(medians: &[f64]) -> Pooled {
        // Each boot: its median with a 2 % spread around it.
        let b: Vec<Vec<f64>> = medians
            .iter()
            .map(|m| vec![m * 0.99, *m, m * 1.01])
            .collect();
        let mut p = Pooled::one(&metric(Kind::Time, Better::Lower, &[]));
        p.metric.samples = b.iter().flatten().copied().collect();
        p.boots = b;
        p
    }

    /// What `ab` confirms with more boots: a timing changed across boots, not a count, not a
    /// timing of one boot a side, not an unchanged one. The boot medians are a devdax pin's
    /// in a CI run of the planted THP regression, which cannot touch devdax: every base boot
    /// in the fast mode, every candidate boot in the slow one.
    #[test]
    fn timing_changes_across_boots_are_the_ones_to_confirm() {
        let split = judge_pooled_raw(
            &boots(&[8.2055, 7.7366, 7.7157]),
            &boots(&[11.442, 10.456, 12.275]),
            None,
        );
        assert_eq!(split.verdict, Verdict::Regression, "{split:?}");
        let same = judge_pooled_raw(&boots(&[8.0, 8.1, 8.2]), &boots(&[8.0, 8.1, 8.2]), None);
        assert_eq!(same.verdict, Verdict::Same, "{same:?}");
        // One boot a side, eight rounds each: Mann-Whitney on the rounds.
        let one = |m: f64| {
            let mut p = boots(&[m]);
            p.boots = vec![(0..8).map(|i| m + i as f64 * 0.01).collect()];
            p.metric.samples = p.boots[0].clone();
            p
        };
        let one_boot = judge_pooled_raw(&one(8.0), &one(12.0), None);
        assert_eq!(one_boot.verdict, Verdict::Regression, "{one_boot:?}");
        let count = judge(
            &metric(Kind::Count, Better::Lower, &[1.0]),
            &metric(Kind::Count, Better::Lower, &[512.0]),
            5.0,
            0.05,
            None,
        );
        assert_eq!(count.verdict, Verdict::Regression, "{count:?}");
        let key = |mut r: Row, k: &str| {
            r.key = k.into();
            r
        };
        let mut idle = split.clone();
        idle.does_not_repeat = Some("a whole ndctl command".into());
        let mut cmp = comparison(vec![
            key(split, "pin devdax:2M:mem io_uring pin"),
            key(idle, "memmap devdax:2M:mem create_namespace"),
            key(same, "pin devdax:2M:mem io_uring unpin"),
            key(one_boot, "memmap devdax:2M:mem devm_memremap_pages"),
            key(count, "pin anon:thp io_uring grabs_per_page"),
        ]);
        let keys = |c: &Comparison| -> Vec<String> {
            c.timing_changes_across_boots()
                .iter()
                .map(|r| r.key.clone())
                .collect()
        };
        let changed = [
            "pin devdax:2M:mem io_uring pin",
            "memmap devdax:2M:mem create_namespace",
        ];
        assert_eq!(keys(&cmp), changed);
        // On the wall clock each is confirmed; under the instruction clock only the one
        // that does not repeat between boots.
        assert_eq!(cmp.timing_changes_to_confirm(), changed);
        cmp.base.clock = ClockKind::Instructions;
        cmp.candidate.clock = ClockKind::Instructions;
        assert_eq!(keys(&cmp), changed);
        assert_eq!(
            cmp.timing_changes_to_confirm(),
            ["memmap devdax:2M:mem create_namespace"]
        );
    }

    /// With several boots a side the boot is the unit: Welch's t on the boots' medians, and
    /// no change smaller than the baseline's spread between boots counts.
    #[test]
    fn boots_are_the_unit_and_their_spread_the_floor() {
        let base = boots(&[10.0, 10.5, 11.0]);
        let r = judge_pooled_raw(&base, &boots(&[12.0, 12.5, 13.0]), None);
        assert_eq!(r.verdict, Verdict::Regression, "{r:?}");
        assert!(
            r.why.starts_with("Welch t on 3+3 boot medians p=0.0089"),
            "{}",
            r.why
        );
        let s = r.base.as_ref().unwrap();
        assert_eq!(s.boot_medians, [10.0, 10.5, 11.0]);
        assert!((s.between_boot_pct.unwrap() - 100.0 / 10.5).abs() < 1e-9);
        assert!((s.within_boot_pct.unwrap() - 2.0).abs() < 1e-9);
        assert!((r.min_effect_pct - 100.0 / 10.5).abs() < 1e-9);
        // +7.6 %: past the 5 % threshold but inside the baseline's 9.5 % between boots.
        // Welch alone does not call it (p = 0.097); even an adjusted p that did, the floor
        // would not count.
        let cand = boots(&[11.0, 11.3, 11.6]);
        let r = judge_pooled_raw(&base, &cand, None);
        assert_eq!(r.verdict, Verdict::Same, "{r:?}");
        let r = judge_pooled_raw(&base, &cand, Some(0.001));
        assert!(r.significant, "{r:?}");
        assert_eq!(r.verdict, Verdict::Same, "{r:?}");
        assert!(r.why.contains("between-boot spread of 9.5%"), "{}", r.why);
        // One boot a side: Mann-Whitney on the samples, the threshold alone.
        let one = judge_pooled_raw(&boots(&[10.0]), &boots(&[12.0]), None);
        assert!(one.why.contains("cannot reach"), "{}", one.why);
        assert_eq!(one.min_effect_pct, 5.0);
    }

    /// R's p.adjust(c(0.01, 0.04, 0.03, 0.005), "BH") = 0.02 0.04 0.04 0.02;
    /// "holm" = 0.03 0.06 0.06 0.02.
    #[test]
    fn p_values_are_adjusted_as_r_does() {
        let p = [Some(0.01), Some(0.04), None, Some(0.03), Some(0.005)];
        let round = |v: Vec<Option<f64>>| {
            v.into_iter()
                .map(|x| x.map(|x| (x * 1e6).round() / 1e6))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            round(Correction::Bh.adjust(&p)),
            [Some(0.02), Some(0.04), None, Some(0.04), Some(0.02)]
        );
        assert_eq!(
            round(Correction::Holm.adjust(&p)),
            [Some(0.03), Some(0.06), None, Some(0.06), Some(0.02)]
        );
        assert_eq!(Correction::None.adjust(&p), [None; 5]);
        // Judged on the adjusted value: p = 0.0079 alone is significant, adjusted over 20
        // metrics it is not.
        let b = metric(Kind::Time, Better::Lower, &[10.0, 10.2, 9.9, 10.1, 10.0]);
        let c = metric(Kind::Time, Better::Lower, &[12.0, 12.1, 11.9, 12.2, 12.0]);
        assert_eq!(judge(&b, &c, 5.0, 0.05, None).verdict, Verdict::Regression);
        let r = judge(&b, &c, 5.0, 0.05, Some(0.158));
        assert_eq!(r.verdict, Verdict::Same, "{r:?}");
        assert!(r.why.contains("adjusted 0.1580"), "{}", r.why);
    }
}
