//! Seed 003's own microbenchmark table ("mm/rmap: interface overhaul", Hildenbrand 2023: 1 GiB
//! on a Xeon Silver 4210R) beside a comparison's rmap rows, each measured change with its
//! 95 % interval, so that a reader sees the paper's claims and this run's answer side by
//! side. A comparison of two kernels holds more than the rmap series (6.1 -> 6.12 holds a
//! year of mm work): the table says so.

use std::fmt::Write as _;

use crate::compare::{Comparison, Row, Side};
use crate::stats::{median, WelchLogs};

/// (operation, folio KiB, what the seed says). The seed's "faster" is a negative change.
pub const CLAIMS: &[(&str, u64, &str)] = &[
    ("pte_remap", 2048, "more than 10 % faster (rmap batching)"),
    ("fork", 2048, "more than 4 % faster (folio conversion)"),
    ("dontneed_per_pte", 2048, "2 % faster (folio conversion)"),
    ("cow", 2048, "faster (folio conversion; no figure)"),
    ("munmap", 2048, "slightly faster (< 1 %)"),
    ("fork", 4, "< 1 % (0.74 %, maybe noise)"),
    ("munmap", 4, "< 1 %"),
    ("dontneed_per_pte", 4, "< 1 %"),
    ("cow", 4, "< 1 %"),
];

/// The 95 % interval of the candidate's change against the base, percent: Welch's t on the
/// logarithms of the boot medians where each side has several boots (the boot is the unit),
/// else a percentile bootstrap of the ratio of medians over the rounds (2000 resamples, a
/// fixed seed: the same files give the same interval).
pub fn change_interval(base: &Side, cand: &Side) -> Option<(f64, f64)> {
    if base.boot_medians.len() > 1 && cand.boot_medians.len() > 1 {
        return welch_log_interval(&base.boot_medians, &cand.boot_medians);
    }
    bootstrap_interval(&base.samples, &cand.samples)
}

fn welch_log_interval(b: &[f64], c: &[f64]) -> Option<(f64, f64)> {
    let w = WelchLogs::of(b, c)?;
    let half = w.half_width(0.95)?;
    let pct = |x: f64| (x.exp() - 1.0) * 100.0;
    Some((pct(w.diff - half), pct(w.diff + half)))
}

fn bootstrap_interval(b: &[f64], c: &[f64]) -> Option<(f64, f64)> {
    if b.len() < 2 || c.len() < 2 {
        return None;
    }
    // xorshift64: no dependency for a fixed, reproducible stream of indices.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut resample = |v: &[f64]| {
        let r: Vec<f64> = (0..v.len()).map(|_| v[next(v.len())]).collect();
        median(&r)
    };
    let mut ratios: Vec<f64> = (0..2000)
        .filter_map(|_| {
            let (mb, mc) = (resample(b)?, resample(c)?);
            (mb > 0.0).then(|| (mc / mb - 1.0) * 100.0)
        })
        .collect();
    if ratios.len() < 100 {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    let at = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

fn row<'a>(c: &'a Comparison, op: &str, kb: u64) -> Option<&'a Row> {
    let key = format!("rmap {op} anon {kb}K time");
    c.rows.iter().find(|r| r.key == key)
}

/// The table, when the comparison has any of the seed's rows; None otherwise.
pub fn render(c: &Comparison) -> Option<String> {
    let rows: Vec<(&str, u64, &str, &Row)> = CLAIMS
        .iter()
        .filter_map(|&(op, kb, claim)| Some((op, kb, claim, row(c, op, kb)?)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\nseed 003's microbenchmarks (\"mm/rmap: interface overhaul\", Hildenbrand 2023; 1 GiB, Xeon Silver 4210R) beside {} -> {} (timings: {}; the kernels differ by more than the rmap series):",
        c.base.kernel_release,
        c.candidate.kernel_release,
        c.base.clock.short()
    );
    let _ = writeln!(
        o,
        "  {:<18} {:>6}  {:<40} {:>9}  {:<22} verdict",
        "operation", "folio", "seed 003 says", "measured", "95% interval"
    );
    for (op, kb, claim, r) in rows {
        let interval = match (&r.base, &r.candidate) {
            (Some(b), Some(cand)) => change_interval(b, cand),
            _ => None,
        };
        let _ = writeln!(
            o,
            "  {:<18} {:>5}K  {:<40} {:>9}  {:<22} {:?}",
            op,
            kb,
            claim,
            r.change_pct.map_or("-".into(), |x| format!("{x:+.2}%")),
            interval.map_or("-".into(), |(lo, hi)| format!("[{lo:+.2}%, {hi:+.2}%]")),
            r.verdict
        );
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SciPy: with boot medians (100, 101, 99) and (90, 91, 89), the Welch interval of
    /// exp(mean difference of the logs) - 1; a bootstrap of fully separated rounds lies wholly below
    /// zero; the same files give the same bootstrap interval.
    #[test]
    fn intervals_of_a_change() {
        // scipy.stats.t.ppf(0.975, df) with Welch's df on the logs: [-12.140917, -7.808356].
        let (lo, hi) = welch_log_interval(&[100.0, 101.0, 99.0], &[90.0, 91.0, 89.0]).unwrap();
        assert!(
            (lo + 12.140917).abs() < 1e-5 && (hi + 7.808356).abs() < 1e-5,
            "[{lo}, {hi}]"
        );
        let b = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2];
        let c = [90.0, 91.0, 89.0, 90.5, 89.5, 90.2];
        let (lo, hi) = bootstrap_interval(&b, &c).unwrap();
        assert!(lo >= -11.0 && hi <= -9.0 && lo < hi, "[{lo}, {hi}]");
        assert_eq!(bootstrap_interval(&b, &c), Some((lo, hi)));
        let (lo, hi) = bootstrap_interval(&b, &b).unwrap();
        assert!(lo < 0.0 && hi > 0.0, "A/A straddles zero: [{lo}, {hi}]");
        assert_eq!(bootstrap_interval(&[1.0], &c), None);
    }
}
