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
    pub medians: Vec<Option<f64>>,
}

pub struct Matrix {
    /// Kernel releases, in release order.
    pub kernels: Vec<String>,
    pub trends: Vec<Trend>,
    /// Each kernel against the one before it.
    pub steps: Vec<Comparison>,
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
            trends,
            steps,
        }
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
                            .map_or("-".into(), |s| crate::compare::num(s.median)),
                        r.candidate
                            .as_ref()
                            .map_or("-".into(), |s| crate::compare::num(s.median)),
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

    pub fn render_text(&self) -> String {
        let mut o = String::new();
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
                let _ = write!(o, " {:>22}", m.map_or("-".into(), crate::compare::num));
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
