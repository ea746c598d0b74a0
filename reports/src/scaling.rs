//! Cost as the work grows: the same metric measured at several sizes (`run --size
//! 256M,512M,1G`, or memmap runs on namespaces of several sizes via `vm --pmem`), its median
//! at each size, and the least-squares line through them — the slope is the cost per GiB,
//! the intercept the fixed cost, and R² says whether a line describes it at all.

use std::fmt::Write as _;

use crate::chart::{Chart, Series};
use crate::compare::metrics;
use crate::metric::Kind;
use crate::results::Results;
use crate::stats::median;
use crate::suite::Suite;
use crate::units::fmt_size;

const GIB: f64 = (1u64 << 30) as f64;

/// The size a suite's metrics were measured at in one results file: bytes per round (pin,
/// rmap), the file (fsdax), the namespace (memmap).
pub fn suite_size(r: &Results, suite: &str) -> Option<u64> {
    r.part(suite.parse::<Suite>().ok()?)?.size()
}

/// Whether two results files measured every suite they share at the same size: only then
/// are they compared; otherwise they are points of a curve.
pub fn same_sizes(a: &Results, b: &Results) -> bool {
    Suite::ALL.iter().all(
        |s| match (suite_size(a, s.name()), suite_size(b, s.name())) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        },
    )
}

/// One metric across sizes.
pub struct Curve {
    pub suite: String,
    pub subject: String,
    pub name: String,
    pub unit: String,
    pub kind: Kind,
    /// (bytes, median), by size.
    pub points: Vec<(u64, f64)>,
}

/// y = intercept + slope · GiB, by least squares; R² of the fit (None when every y is the
/// same, where any line through them is exact).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope_per_gib: f64,
    pub intercept: f64,
    pub r2: Option<f64>,
}

pub fn fit(points: &[(u64, f64)]) -> Option<Fit> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|(x, _)| *x as f64 / GIB).collect();
    let ys: Vec<f64> = points.iter().map(|(_, y)| *y).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let syy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let sse: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (y - intercept - slope * x).powi(2))
        .sum();
    Some(Fit {
        slope_per_gib: slope,
        intercept,
        r2: (syy > 0.0).then(|| 1.0 - sse / syy),
    })
}

impl Curve {
    pub fn key(&self) -> String {
        format!("{} {} {}", self.suite, self.subject, self.name)
    }

    pub fn fit(&self) -> Option<Fit> {
        fit(&self.points)
    }
}

/// Every metric measured at two sizes or more among `runs`, in the order first seen.
pub fn curves(runs: &[&Results]) -> Vec<Curve> {
    let mut out: Vec<Curve> = Vec::new();
    for r in runs {
        for m in metrics(r) {
            let (Some(size), Some(med)) = (suite_size(r, &m.suite), median(&m.samples)) else {
                continue;
            };
            let key = m.key();
            let c = match out.iter_mut().position(|c| c.key() == key) {
                Some(i) => &mut out[i],
                None => {
                    out.push(Curve {
                        suite: m.suite.clone(),
                        subject: m.subject.clone(),
                        name: m.name.clone(),
                        unit: m.unit.clone(),
                        kind: m.kind,
                        points: vec![],
                    });
                    out.last_mut().expect("just pushed")
                }
            };
            // The same size twice (two runs of one size): the first kept.
            if !c.points.iter().any(|(s, _)| *s == size) {
                c.points.push((size, med));
            }
        }
    }
    out.retain(|c| c.points.len() >= 2);
    for c in &mut out {
        c.points.sort_by_key(|p| p.0);
    }
    out
}

/// The text table: each curve's medians by size, its slope per GiB, fixed part and R².
pub fn render_text(curves: &[Curve]) -> String {
    let mut o = String::new();
    if curves.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "cost as the work grows (median at each size; least-squares line: slope per GiB, fixed part, R²):"
    );
    for c in curves {
        let pts: Vec<String> = c
            .points
            .iter()
            .map(|(s, y)| format!("{}: {}", fmt_size(*s), crate::render::comparison::num(*y)))
            .collect();
        let line = match c.fit() {
            Some(f) => format!(
                "slope {} {}/GiB, fixed {} {}, R² {}",
                crate::render::comparison::num(f.slope_per_gib),
                c.unit,
                crate::render::comparison::num(f.intercept),
                c.unit,
                f.r2.map_or("- (constant)".into(), |r| format!("{r:.3}"))
            ),
            None => "no line (one size)".into(),
        };
        let _ = writeln!(o, "  {} [{}]: {}; {line}", c.key(), c.unit, pts.join(", "));
    }
    o
}

/// One chart per suite and timing metric: the sizes as categories, a bar per subject.
pub fn charts(curves: &[Curve]) -> Vec<Chart> {
    let mut groups: Vec<(String, String, String)> = Vec::new();
    for c in curves.iter().filter(|c| c.kind.is_timing()) {
        let g = (c.suite.clone(), c.name.clone(), c.unit.clone());
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    groups
        .into_iter()
        .map(|(suite, name, unit)| {
            let members: Vec<&Curve> = curves
                .iter()
                .filter(|c| c.suite == suite && c.name == name && c.kind.is_timing())
                .collect();
            let mut sizes: Vec<u64> = members
                .iter()
                .flat_map(|c| c.points.iter().map(|p| p.0))
                .collect();
            sizes.sort_unstable();
            sizes.dedup();
            Chart {
                title: format!("{suite} {name} as the size grows"),
                y_label: unit,
                log_y: true,
                categories: sizes.iter().map(|s| fmt_size(*s)).collect(),
                series: members
                    .iter()
                    .map(|c| {
                        Series::of_values(
                            c.subject.clone(),
                            sizes
                                .iter()
                                .map(|s| c.points.iter().find(|p| p.0 == *s).map(|p| p.1))
                                .collect(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_through_linear_costs_has_its_slope_and_r2_of_one() {
        let g = 1u64 << 30;
        let f = fit(&[(g / 4, 3.0), (g / 2, 5.0), (g, 9.0)]).unwrap();
        assert!((f.slope_per_gib - 8.0).abs() < 1e-9, "{f:?}");
        assert!((f.intercept - 1.0).abs() < 1e-9, "{f:?}");
        assert!((f.r2.unwrap() - 1.0).abs() < 1e-9);
        // A cost that does not grow with the size: slope 0, no R² (constant).
        let f = fit(&[(g / 4, 2.0), (g, 2.0)]).unwrap();
        assert_eq!((f.slope_per_gib, f.r2), (0.0, None));
        // Not a line: R² well below 1.
        let f = fit(&[(g / 4, 1.0), (g / 2, 10.0), (g, 1.0)]).unwrap();
        assert!(f.r2.unwrap() < 0.5, "{f:?}");
        assert_eq!(fit(&[(g, 1.0)]), None);
        assert_eq!(fit(&[(g, 1.0), (g, 2.0)]), None, "one size twice");
    }

    /// Timings are charted across sizes, the GUP call's log2 percentiles with them (they
    /// were times before they had a kind of their own); counts are not.
    #[test]
    fn timings_and_log2_percentiles_are_charted_counts_not() {
        let curve = |name: &str, kind| Curve {
            suite: "pin".into(),
            subject: "devdax:2M:mem io_uring".into(),
            name: name.into(),
            unit: "ns".into(),
            kind,
            points: vec![(1 << 29, 1.0), (1 << 30, 2.0)],
        };
        let charts = charts(&[
            curve("pin", Kind::Time),
            curve("kpin_p50", Kind::Log2),
            curve("grabs_per_page", Kind::Count),
        ]);
        let titles: Vec<&str> = charts.iter().map(|c| c.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "pin pin as the size grows",
                "pin kpin_p50 as the size grows"
            ]
        );
    }
}
