//! The kernel matrix: one sweep per kernel, every metric across the kernels in release order,
//! and what changed between consecutive kernels (judged as `compare` judges two runs).

use std::fmt::Write as _;

use crate::chart::{Chart, Series};
use crate::compare::{metrics, Comparison, Verdict};
use crate::results::Results;
use crate::stats::median;

/// Natural order of kernel releases: numbers compare as numbers (6.12.117 > 6.12.99 > 6.1).
pub fn release_key(s: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let (mut num, mut txt) = (String::new(), String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !txt.is_empty() {
                out.push((0, std::mem::take(&mut txt)));
            }
            num.push(c);
        } else {
            if !num.is_empty() {
                out.push((num.parse().unwrap_or(u64::MAX), String::new()));
                num.clear();
            }
            txt.push(c);
        }
    }
    if !num.is_empty() {
        out.push((num.parse().unwrap_or(u64::MAX), String::new()));
    }
    if !txt.is_empty() {
        out.push((0, txt));
    }
    out
}

/// One metric's median on each kernel (None where that kernel did not measure it).
pub struct Trend {
    pub key: String,
    pub suite: String,
    pub subject: String,
    pub name: String,
    pub unit: String,
    /// Counts the kernel determines, or timings (noisy: a headline only where counted).
    pub kind: crate::metric::Kind,
    pub medians: Vec<Option<f64>>,
}

/// The seed threads (`../shared/seeds`) and which metrics measure their claims: (suite,
/// metric-name prefix, seed, what it says). A metric that changed across the kernels and
/// matches one is a headline, shown first with the thread that explains it.
const SEED_000: &str = "000 compound pagemaps (Martins 2021)";
const SEED_001: &str = "001 vmemmap/devdax fix (Kumar 2023)";
const SEED_002: &str = "002 ZONE_DEVICE refcounting (Popple, Gunthorpe 2024)";
const SEED_003: &str = "003 rmap interface overhaul (Hildenbrand 2023)";
const SEEDS: &[(&str, &str, &str, &str)] = &[
    ("pin", "grabs_per_page", SEED_002,
     "ZONE_DEVICE pages became refcounted folios and pte_devmap went (6.15, 6.17): GUP grabs a 2M/1G devdax folio once per folio, not once per base page"),
    ("pin", "pin", SEED_000,
     "pinning compound devmaps takes one refcount per folio: the page array in PMEM is slower to pin per base page"),
    ("pin", "umem_pin_and_vmap", SEED_000,
     "pinning compound devmaps takes one refcount per folio: the page array in PMEM is slower to pin per base page"),
    ("pin", "read_with_pin_io_unpin", SEED_002,
     "GUP-fast of devdax without pte_devmap grabs per folio"),
    ("fsdax", "folio_pmd_inserts", SEED_002,
     "fsdax faults map compound (PMD) folios"),
    ("fsdax", "pfn_pmd_inserts", SEED_002,
     "fsdax faults no longer map bare pfns"),
    ("memmap", "vmemmap_", SEED_000,
     "vmemmap cost falls with vmemmap_shift: tail struct pages reused"),
    ("memmap", "struct_pages_initialised", SEED_001,
     "compound_nr_pages(): 2 * (PAGE_SIZE / sizeof(struct page)) per optimized compound page"),
    ("memmap", "nr_memmap_pages_delta", SEED_001,
     "the vmemmap optimization's conditions, visible in nr_memmap_pages (6.11+)"),
    ("rmap", "", SEED_003,
     "batched folio_*_rmap_ptes: one call per folio range"),
];

/// A metric that changed across the kernels, with the seed thread that explains it.
pub struct Headline<'a> {
    pub seed: &'static str,
    pub claim: &'static str,
    pub trend: &'a Trend,
}

/// The checks measured in both runs whose verdict differs: (name, agrees in `b`).
fn check_flips(a: &Results, b: &Results) -> Vec<(String, bool)> {
    let before = a.checks();
    b.checks()
        .into_iter()
        .filter(|(_, c)| c.measured)
        .filter_map(|(name, c)| {
            let was = before.iter().find(|(n, x)| *n == name && x.measured)?;
            (was.1.agrees != c.agrees).then_some((name, c.agrees))
        })
        .collect()
}

/// An entry of Debian's changelog that concerns a suite whose counts changed at a step.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangelogEntry {
    /// The upload that took it.
    pub version: String,
    pub suite: String,
    /// The commit's subject as the changelog gives it.
    pub subject: String,
    /// What in the subject ties it to the suite (a probed function, a kernel area).
    pub why: String,
}

/// What the changelog says happened between two consecutive kernels of the matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepChangelog {
    /// The two package versions.
    pub from: String,
    pub to: String,
    /// Where the changelog was read.
    pub source: String,
    /// Uploads between the two versions.
    pub uploads: usize,
    pub entries: Vec<ChangelogEntry>,
    /// What limits the answer (no changelog, a step across mainline releases).
    pub note: Option<String>,
}

impl StepChangelog {
    /// No changelog could be read, and why.
    pub fn none(why: &str) -> StepChangelog {
        StepChangelog {
            note: Some(why.to_string()),
            ..Default::default()
        }
    }

    /// The changelog's lines for a step, indented under it.
    pub fn render(&self, o: &mut String) {
        if !self.source.is_empty() {
            let n = self.entries.len();
            let _ = writeln!(
                o,
                "  Debian's changelog: {} upload{} after {} up to {}; {n} {} the suites whose counts or checks changed{}",
                self.uploads,
                if self.uploads == 1 { "" } else { "s" },
                self.from,
                self.to,
                if n == 1 { "entry concerns" } else { "entries concern" },
                if n == 0 { "" } else { ":" }
            );
        }
        for e in &self.entries {
            let _ = writeln!(
                o,
                "    {} [{}] {} ({})",
                e.version, e.suite, e.subject, e.why
            );
        }
        if let Some(n) = &self.note {
            let _ = writeln!(o, "  changelog: {n}");
        }
        if !self.source.is_empty() {
            let _ = writeln!(o, "  (read from {})", self.source);
        }
    }
}

pub struct Matrix {
    /// Kernel releases, in release order.
    pub kernels: Vec<String>,
    /// Each kernel's run's clock, in the same order.
    pub clocks: Vec<crate::clock::ClockKind>,
    pub trends: Vec<Trend>,
    /// Each kernel against the one before it.
    pub steps: Vec<Comparison>,
    /// Per step, what Debian's changelog says (only where a count or a check changed;
    /// empty when the changelogs were not looked up).
    pub changelogs: Vec<Option<StepChangelog>>,
    /// Per step, the checks measured on both kernels whose verdict flipped: (name, agrees
    /// on the newer kernel).
    pub check_flips: Vec<Vec<(String, bool)>>,
}

impl Matrix {
    /// `runs` in release order; `steps[i]` compares `runs[i]` with `runs[i + 1]`.
    pub fn new(runs: &[&Results], steps: Vec<Comparison>) -> Matrix {
        let mut trends: Vec<Trend> = Vec::new();
        for (i, r) in runs.iter().enumerate() {
            for m in metrics(r) {
                let key = m.key();
                let t = match trends.iter_mut().position(|t| t.key == key) {
                    Some(p) => &mut trends[p],
                    None => {
                        trends.push(Trend {
                            key,
                            suite: m.suite.clone(),
                            subject: m.subject.clone(),
                            name: m.name.clone(),
                            unit: m.unit.clone(),
                            kind: m.kind,
                            medians: vec![None; runs.len()],
                        });
                        trends.last_mut().expect("just pushed")
                    }
                };
                t.medians[i] = median(&m.samples);
            }
        }
        Matrix {
            kernels: runs
                .iter()
                .map(|r| r.context.kernel_release.clone())
                .collect(),
            clocks: runs.iter().map(|r| r.clock()).collect(),
            trends,
            steps,
            changelogs: Vec::new(),
            check_flips: runs.windows(2).map(|w| check_flips(w[0], w[1])).collect(),
        }
    }

    /// The suites whose counts changed or whose checks flipped at step `i`: the ones whose
    /// changelog entries are worth listing there.
    pub fn suites_changed(&self, i: usize) -> Vec<crate::suite::Suite> {
        let mut out = self
            .steps
            .get(i)
            .map(Comparison::suites_with_count_changes)
            .unwrap_or_default();
        for (name, _) in self.check_flips.get(i).into_iter().flatten() {
            let suite = name.split(':').next().unwrap_or_default();
            if let Ok(s) = suite.parse::<crate::suite::Suite>() {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// The changes between consecutive kernels that count: regressions, improvements,
    /// losses, and counts that appeared or vanished.
    pub fn changes(&self) -> Vec<(usize, String)> {
        let mut v = Vec::new();
        for (i, c) in self.steps.iter().enumerate() {
            for r in &c.rows {
                let word = match r.verdict {
                    Verdict::Regression => "worse",
                    Verdict::Improvement => "better",
                    Verdict::Lost => "lost",
                    Verdict::Incomparable => "appeared",
                    Verdict::Missing => "new",
                    Verdict::Same => continue,
                };
                v.push((
                    i,
                    format!(
                        "{word}: {} {} -> {} ({})",
                        r.key,
                        r.base
                            .as_ref()
                            .map_or("-".into(), |s| crate::render::comparison::num(s.median)),
                        r.candidate
                            .as_ref()
                            .map_or("-".into(), |s| crate::render::comparison::num(s.median)),
                        r.why
                    ),
                ));
            }
            for l in &c.lost {
                v.push((i, format!("lost: {l}")));
            }
        }
        v
    }

    /// The metrics that changed between the first and the last kernel measuring them (by
    /// more than 10 %, or from nothing to something) and that a seed thread explains.
    pub fn headlines(&self) -> Vec<Headline<'_>> {
        let mut out = Vec::new();
        // Counts only: one timing per kernel under emulation is no headline (the changes
        // below judge timings with the significance rules of compare).
        for t in self
            .trends
            .iter()
            .filter(|t| t.kind == crate::metric::Kind::Count)
        {
            let measured: Vec<f64> = t.medians.iter().flatten().copied().collect();
            // A metric absent on some kernels is a change only where absence is the
            // kernel's answer (an insert function that does not exist yet), not where a
            // probe could not be attached there.
            let appeared = t.suite == "fsdax"
                && t.name.ends_with("_inserts")
                && t.medians.iter().any(Option::is_none)
                && !measured.is_empty();
            let changed = appeared
                || match (measured.first(), measured.last()) {
                    (Some(a), Some(b)) if *a != 0.0 => ((b - a) / a).abs() > 0.10,
                    (Some(a), Some(b)) => a != b,
                    _ => false,
                };
            if !changed {
                continue;
            }
            if let Some((_, _, seed, claim)) = SEEDS
                .iter()
                .find(|(suite, prefix, _, _)| t.suite == *suite && t.name.starts_with(prefix))
            {
                out.push(Headline {
                    seed,
                    claim,
                    trend: t,
                });
            }
        }
        out
    }

    fn render_headlines(&self, o: &mut String) {
        let h = self.headlines();
        if h.is_empty() {
            return;
        }
        let _ = writeln!(
            o,
            "what the seed threads predicted, measured across these kernels:"
        );
        let mut seeds: Vec<&str> = Vec::new();
        for x in &h {
            if !seeds.contains(&x.seed) {
                seeds.push(x.seed);
            }
        }
        for seed in seeds {
            let _ = writeln!(o, "  seed {seed}:");
            for x in h.iter().filter(|x| x.seed == seed) {
                let values: Vec<String> = x
                    .trend
                    .medians
                    .iter()
                    .map(|m| m.map_or("-".into(), crate::render::comparison::num))
                    .collect();
                let _ = writeln!(
                    o,
                    "    {} [{}]: {} ({})",
                    x.trend.key,
                    x.trend.unit,
                    values.join(" -> "),
                    x.claim
                );
            }
        }
        let _ = writeln!(o);
    }

    /// The clock of every run, or each kernel's where they differ (timings are then not
    /// judged between those kernels).
    pub fn clocks_described(&self) -> String {
        match self.clocks.first() {
            Some(c) if self.clocks.iter().all(|x| x == c) => c.describe().to_string(),
            Some(_) => format!(
                "different clocks ({}): timings of different clocks are not judged",
                self.kernels
                    .iter()
                    .zip(&self.clocks)
                    .map(|(k, c)| format!("{k}: {}", c.short()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "no runs".into(),
        }
    }

    pub fn render_text(&self) -> String {
        let mut o = String::new();
        self.render_headlines(&mut o);
        let _ = writeln!(o, "timings: {}", self.clocks_described());
        let w = self
            .trends
            .iter()
            .map(|t| t.key.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = write!(o, "{:<w$} {:>8}", "metric", "unit");
        for k in &self.kernels {
            let _ = write!(o, " {:>22}", k);
        }
        let _ = writeln!(o);
        for t in &self.trends {
            let _ = write!(o, "{:<w$} {:>8}", t.key, t.unit);
            for m in &t.medians {
                let _ = write!(
                    o,
                    " {:>22}",
                    m.map_or("-".into(), crate::render::comparison::num)
                );
            }
            let _ = writeln!(o);
        }
        let changes = self.changes();
        for (i, _) in self.kernels.iter().enumerate().skip(1) {
            let _ = writeln!(o, "\n{} -> {}:", self.kernels[i - 1], self.kernels[i]);
            let mine: Vec<&String> = changes
                .iter()
                .filter(|(s, _)| *s == i - 1)
                .map(|(_, c)| c)
                .collect();
            if mine.is_empty() {
                let _ = writeln!(o, "  nothing changed past the threshold");
            }
            for c in mine {
                let _ = writeln!(o, "  {c}");
            }
            // Checks gone from ok to MISMATCH are among the losses above; the other way
            // (a fix) is said here.
            for (name, _) in self
                .check_flips
                .get(i - 1)
                .into_iter()
                .flatten()
                .filter(|(_, ok)| *ok)
            {
                let _ = writeln!(o, "  fixed: check {name}: MISMATCH -> ok");
            }
            if let Some(Some(log)) = self.changelogs.get(i - 1) {
                log.render(&mut o);
            }
        }
        o
    }

    /// One chart per suite and metric name: a bar per kernel (release order) for each
    /// subject, so a trend across kernels reads left to right within each group.
    pub fn charts(&self) -> Vec<Chart> {
        let mut groups: Vec<(String, String, String)> = Vec::new();
        for t in &self.trends {
            let g = (t.suite.clone(), t.name.clone(), t.unit.clone());
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        groups
            .into_iter()
            .map(|(suite, name, unit)| {
                let rows: Vec<&Trend> = self
                    .trends
                    .iter()
                    .filter(|t| t.suite == suite && t.name == name)
                    .collect();
                let spans_orders = {
                    let v: Vec<f64> = rows
                        .iter()
                        .flat_map(|t| t.medians.iter().flatten().copied())
                        .filter(|x| *x > 0.0)
                        .collect();
                    let (lo, hi) = v
                        .iter()
                        .fold((f64::INFINITY, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
                    hi > 0.0 && hi / lo > 100.0
                };
                Chart {
                    title: format!("{suite} {name} across kernels"),
                    y_label: unit,
                    log_y: spans_orders,
                    categories: rows.iter().map(|t| t.subject.clone()).collect(),
                    series: self
                        .kernels
                        .iter()
                        .enumerate()
                        .map(|(k, release)| {
                            Series::of_values(
                                release.clone(),
                                rows.iter().map(|t| t.medians[k]).collect(),
                            )
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

impl Matrix {
    /// A self-contained HTML page: the charts across kernels, then the table and changes.
    pub fn html(&self) -> Result<String, String> {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut o = String::new();
        let _ = writeln!(
            o,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>foliobench kernel matrix</title>\n<style>body {{ font-family: sans-serif; margin: 2em; }} pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }}</style></head><body>\n<h1>foliobench kernel matrix: {}</h1>",
            esc(&self.kernels.join(", "))
        );
        for c in self.charts() {
            if c.is_empty() {
                continue;
            }
            let _ = writeln!(o, "<figure class=\"chart\">{}</figure>", c.svg()?);
        }
        let _ = writeln!(o, "<pre>{}</pre>", esc(&self.render_text()));
        let _ = writeln!(
            o,
            "<script>document.body.dataset.charts = document.querySelectorAll('figure.chart svg').length;</script>\n</body></html>"
        );
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headlines_are_changed_metrics_a_seed_explains() {
        let trend = |suite: &str, subject: &str, name: &str, medians: Vec<Option<f64>>| Trend {
            key: format!("{suite} {subject} {name}"),
            suite: suite.into(),
            subject: subject.into(),
            name: name.into(),
            unit: "u".into(),
            kind: if name == "create_namespace" {
                crate::metric::Kind::Time
            } else {
                crate::metric::Kind::Count
            },
            medians,
        };
        // Seen: devdax 2M GUP-fast grabs per page 6.1 / 6.12 / 7.3 (odirect, 1 GiB).
        let m = Matrix {
            kernels: vec!["6.1".into(), "6.12".into(), "7.3".into()],
            clocks: vec![crate::clock::ClockKind::Wall; 3],
            trends: vec![
                trend(
                    "pin",
                    "devdax:2M:mem odirect",
                    "grabs_per_page",
                    vec![Some(1.0), Some(1.0), Some(0.010082)],
                ),
                trend(
                    "pin",
                    "devdax:4K:mem odirect",
                    "grabs_per_page",
                    vec![Some(1.0), Some(1.0), Some(1.0)],
                ),
                trend(
                    "memmap",
                    "devdax:2M:mem",
                    "create_namespace",
                    vec![Some(1845.9), Some(1191.4), Some(1152.1)],
                ),
                trend(
                    "fsdax",
                    "ext4",
                    "folio_pmd_inserts",
                    vec![None, None, Some(512.0)],
                ),
            ],
            steps: vec![],
            changelogs: vec![],
            check_flips: vec![],
        };
        let h = m.headlines();
        let keys: Vec<&str> = h.iter().map(|x| x.trend.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "pin devdax:2M:mem odirect grabs_per_page",
                "fsdax ext4 folio_pmd_inserts"
            ],
            "unchanged 4K and an unexplained timing are not headlines"
        );
        assert!(h[0].seed.starts_with("002"));
        let t = m.render_text();
        assert!(t.starts_with("what the seed threads predicted"), "{t}");
        assert!(t.contains("1 -> 1 -> 1.008e-2"), "{t}");
    }

    #[test]
    fn releases_sort_as_versions() {
        let mut v = vec![
            "7.3.4+deb13-amd64",
            "6.12.117+deb12-amd64",
            "6.1.0-56-amd64",
            "6.16.12+deb13-amd64",
            "6.12.99+deb12-amd64",
        ];
        v.sort_by_key(|r| release_key(r));
        assert_eq!(
            v,
            [
                "6.1.0-56-amd64",
                "6.12.99+deb12-amd64",
                "6.12.117+deb12-amd64",
                "6.16.12+deb13-amd64",
                "7.3.4+deb13-amd64"
            ]
        );
    }
}
