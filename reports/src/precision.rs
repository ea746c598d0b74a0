//! How precise a timing is, and how many timed rounds to take for it: the 95 % confidence
//! interval of the median from order statistics (distribution-free: no normality assumed,
//! which emulated timings with their long right tails would break), and the rule a suite's
//! loop follows — at least `min` rounds, more while some timing's interval is wider than the
//! target, at most `max`. The report and the loops share this one definition of "precise".

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

use crate::metric::{Kind, Metric};
use crate::stats::median;

/// The confidence of the median's interval.
pub const CONFIDENCE: f64 = 0.95;

/// The median's confidence interval: the order statistics x(j) ≤ median ≤ x(n+1-j) with the
/// largest j whose coverage, 1 − 2·P(Bin(n, ½) ≤ j−1), is at least `confidence`. None when
/// even [min, max] covers less (n < 6 at 95 %).
pub fn median_ci(v: &[f64], confidence: f64) -> Option<(f64, f64)> {
    let n = v.len() as u64;
    let j = ci_rank(n, confidence)?;
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    Some((s[j as usize - 1], s[(n - j) as usize]))
}

/// The 1-based rank j of the interval's lower end for n samples (see `median_ci`).
fn ci_rank(n: u64, confidence: f64) -> Option<u64> {
    if n == 0 {
        return None;
    }
    let b = Binomial::new(0.5, n).ok()?;
    let alpha_half = (1.0 - confidence) / 2.0;
    // P(B ≤ j−1) ≤ α/2, the largest such j (at most n/2).
    (1..=n / 2)
        .take_while(|&j| b.cdf(j - 1) <= alpha_half + 1e-12)
        .last()
}

/// The fewest samples that have a median interval at `confidence`.
pub fn fewest_for_ci(confidence: f64) -> usize {
    (1..64)
        .find(|&n| ci_rank(n, confidence).is_some())
        .unwrap_or(64) as usize
}

/// Rounds that agree this closely settle a timing before it has an interval: with fewer
/// rounds than an interval needs (6 at 95 %), a timing whose every round lies within
/// `CLOSE` × the target of its median is precise. The instruction clock repeats to
/// hundredths of a percent (a devdax pin: 36.315 / 36.317 ms), and a sixth round would buy
/// nothing; the wall clock's rounds under emulation (20–70 % apart) never settle this way.
/// Half the target: the rmap operations that free or allocate many pages (COW, MADV_DONTNEED)
/// follow the page allocator's state, their first three rounds ±1.3–2.3 % at 32 MiB under the
/// instruction clock (2026-12-05, the main job); the three rounds more that a quarter of the
/// target (±1.25 %) asked for moved their medians by 0.00–0.06 %.
pub const CLOSE: f64 = 0.5;
/// The fewest rounds that settle a timing by agreement alone.
pub const FEWEST_CLOSE: usize = 3;

/// One timing's precision.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    pub n: usize,
    pub median: f64,
    /// The 95 % interval of the median; None with too few samples for one.
    pub ci: Option<(f64, f64)>,
    /// The farther of the smallest and largest sample from the median, percent of it.
    pub spread_pct: Option<f64>,
}

impl Precision {
    pub fn of(v: &[f64]) -> Option<Precision> {
        let median = median(v)?;
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Precision {
            n: v.len(),
            median,
            ci: median_ci(v, CONFIDENCE),
            spread_pct: (median != 0.0)
                .then(|| (median - lo).max(hi - median) * 100.0 / median.abs()),
        })
    }

    /// The interval's larger distance from the median, in percent of it (a conservative
    /// "± x %"); None without an interval or with a zero median.
    pub fn half_width_pct(&self) -> Option<f64> {
        let (lo, hi) = self.ci?;
        (self.median != 0.0)
            .then(|| (self.median - lo).max(hi - self.median) * 100.0 / self.median.abs())
    }

    /// Within ± `target_pct` of the median at 95 %; or, before an interval exists, every
    /// round within `CLOSE` × the target of the median (`settled_by_agreement`).
    pub fn within(&self, target_pct: f64) -> bool {
        match self.half_width_pct() {
            Some(h) => h <= target_pct,
            None => self.settled_by_agreement(target_pct),
        }
    }

    /// Too few rounds for an interval, but at least `FEWEST_CLOSE` that agree within
    /// `CLOSE` × the target.
    pub fn settled_by_agreement(&self, target_pct: f64) -> bool {
        self.ci.is_none()
            && self.n >= FEWEST_CLOSE
            && self.spread_pct.is_some_and(|s| s <= target_pct * CLOSE)
    }

    pub fn describe(&self) -> String {
        if let (None, Some(s)) = (self.ci, self.spread_pct) {
            if self.n >= FEWEST_CLOSE {
                return format!(
                    "rounds within ±{s:.3}% of the median (n={}; no 95% CI: at least {} rounds needed)",
                    self.n,
                    fewest_for_ci(CONFIDENCE)
                );
            }
        }
        match self.half_width_pct() {
            Some(h) => format!("±{h:.1}% (95% CI of the median, n={})", self.n),
            None if self.ci.is_some() => format!(
                "median 0, interval {:?}: no precision relative to it (n={})",
                self.ci.unwrap_or_default(),
                self.n
            ),
            None => format!(
                "no 95% CI of the median from n={} (at least {} rounds needed)",
                self.n,
                fewest_for_ci(CONFIDENCE)
            ),
        }
    }
}

/// How far off the target a timing may be and still be given rounds up to the cap: its
/// projected half-width at the cap at most twice the target. The 1/√n projection is rough
/// for an interval that is [min, max] at n = 6, so the margin is generous.
pub const HOPELESS: f64 = 2.0;

/// How many timed rounds a measurement takes: at least `min`; then, while some timing of
/// it is not within ± `target_pct` (95 % CI of the median) and may still get there by
/// `max` (see `HOPELESS`), more, up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rounds {
    pub min: usize,
    pub max: usize,
    pub target_pct: f64,
}

impl Rounds {
    /// Exactly `n` rounds, whatever their precision.
    pub fn exactly(n: usize) -> Rounds {
        Rounds {
            min: n,
            max: n,
            target_pct: 0.0,
        }
    }

    /// Whether to take another round after `taken`, given each timing's samples so far.
    /// Rounds past `min` are taken only where they can buy an interval: not when `max` is
    /// below the fewest samples that have one.
    pub fn want_more(&self, taken: usize, timings: &[Vec<f64>]) -> bool {
        if taken < self.min {
            return true;
        }
        if taken >= self.max || self.max < fewest_for_ci(CONFIDENCE) {
            return false;
        }
        timings
            .iter()
            .filter_map(|t| Precision::of(t))
            .any(|p| !p.within(self.target_pct) && self.may_reach(&p))
    }

    /// Whether the rounds left before the cap may bring this timing within the target: its
    /// interval, shrunk as 1/√n to `max` rounds, is at most `HOPELESS` times the target. A
    /// timing far wider than that (emulated memmap timings are ±12–120 % at 10 rounds) would
    /// spend the rounds up to the cap without buying the precision they are taken for. A
    /// timing with no interval yet may always get one.
    fn may_reach(&self, p: &Precision) -> bool {
        match (p.ci, p.half_width_pct()) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(h)) => {
                h * (p.n as f64 / self.max as f64).sqrt() <= HOPELESS * self.target_pct
            }
        }
    }

    /// `want_more` for integer (ns) samples.
    pub fn want_more_ns<T: AsRef<[u64]>>(&self, taken: usize, timings: &[T]) -> bool {
        let f: Vec<Vec<f64>> = timings
            .iter()
            .map(|t| t.as_ref().iter().map(|&x| x as f64).collect())
            .collect();
        self.want_more(taken, &f)
    }

    pub fn describe(&self) -> String {
        if self.min == self.max {
            format!("{} timed rounds", self.min)
        } else {
            format!(
                "{}..{} timed rounds, more while a timing's 95% CI of the median is wider than ±{}% and could reach it by round {} (projected as 1/√n, within {}× the target)",
                self.min, self.max, self.target_pct, self.max, HOPELESS
            )
        }
    }
}

/// The precision of every timing of a run: how many are within the target, and each that
/// is not, with why (too few rounds for an interval, or the cap reached).
pub fn render(o: &mut String, metrics: &[Metric], rounds: Option<&Rounds>) {
    let timings: Vec<(&Metric, Precision)> = metrics
        .iter()
        .filter(|m| m.kind == Kind::Time && m.samples.len() > 1)
        .filter_map(|m| Some((m, Precision::of(&m.samples)?)))
        .collect();
    if timings.is_empty() {
        return;
    }
    let target = rounds.map_or(5.0, |r| r.target_pct).max(f64::EPSILON);
    let imprecise: Vec<&(&Metric, Precision)> =
        timings.iter().filter(|(_, p)| !p.within(target)).collect();
    let _ = writeln!(
        o,
        "\nprecision of the timings ({}): {} of {} within ±{target}% (95% CI of the median; before one exists, every round within ±{}%){}",
        rounds.map_or("rounds not recorded".into(), Rounds::describe),
        timings.len() - imprecise.len(),
        timings.len(),
        target * CLOSE,
        if imprecise.is_empty() {
            ""
        } else {
            "; not precise enough to compare at that level:"
        }
    );
    for (m, p) in imprecise {
        let early = rounds
            .filter(|r| p.n < r.max && !r.may_reach(p))
            .map(|r| {
                format!(
                    "; stopped before the cap: the {} rounds up to it could not buy ±{}%",
                    r.max - p.n,
                    r.target_pct
                )
            })
            .unwrap_or_default();
        let idle = crate::clock::repeats(&m.suite, &m.subject, &m.name)
            .why()
            .map_or(String::new(), |w| format!(" ({w})"));
        let settle = if p.ci.is_none() && p.n >= FEWEST_CLOSE {
            format!(", wider than the ±{}% that settles rounds", target * CLOSE)
        } else {
            String::new()
        };
        let _ = writeln!(o, "  {}: {}{settle}{early}{idle}", m.key(), p.describe());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_interval_ranks_match_the_binomial_tables() {
        // n < 6 has no 95 % interval: even [min, max] covers 1 - 2/32 = 93.75 % at n = 5.
        assert_eq!(fewest_for_ci(0.95), 6);
        assert_eq!(ci_rank(5, 0.95), None);
        assert_eq!(ci_rank(6, 0.95), Some(1));
        // The published table (e.g. Conover): n = 10 → x(2)..x(9); n = 20 → x(6)..x(15).
        assert_eq!(ci_rank(10, 0.95), Some(2));
        assert_eq!(ci_rank(20, 0.95), Some(6));
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(median_ci(&v, 0.95), Some((2.0, 9.0)));
    }

    #[test]
    fn precision_is_the_larger_distance_from_the_median() {
        let p = Precision::of(&[100.0, 101.0, 99.0, 100.0, 104.0, 98.0]).unwrap();
        assert_eq!(p.ci, Some((98.0, 104.0)));
        assert!((p.half_width_pct().unwrap() - 4.0).abs() < 1e-9);
        assert!(p.within(5.0) && !p.within(3.0));
        let zero = Precision::of(&[0.0, 0.0, 0.0, 4.0, -4.0, 0.0]).unwrap();
        assert!(
            zero.describe()
                .starts_with("median 0, interval (-4.0, 4.0)"),
            "{}",
            zero.describe()
        );
        let few = Precision::of(&[1.0, 2.0, 3.0]).unwrap();
        assert!(!few.within(90.0));
        assert!(
            few.describe().contains("at least 6 rounds"),
            "{}",
            few.describe()
        );
    }

    #[test]
    fn rounds_go_on_while_imprecise_and_stop_at_the_cap() {
        let r = Rounds {
            min: 3,
            max: 10,
            target_pct: 5.0,
        };
        let tight = vec![vec![100.0, 101.0, 99.0, 100.0, 102.0, 98.0]];
        // ±8 % at n = 6: projected ±6.2 % at 10, within twice the target: worth rounds.
        let loose = vec![vec![100.0, 108.0, 93.0, 100.0, 104.0, 97.0]];
        assert!(r.want_more(2, &tight), "below the minimum");
        assert!(
            r.want_more(3, &[vec![100.0, 104.0, 97.0]]),
            "no interval yet"
        );
        // Rounds that agree within half the target need no interval (the instruction
        // clock's); a hair wider, they do.
        assert!(
            !r.want_more(3, &[vec![100.0, 102.5, 97.5]]),
            "settled by agreement"
        );
        assert!(r.want_more(3, &[vec![100.0, 102.6, 98.8]]));
        assert!(r.want_more(2, &[vec![100.0, 100.0]]), "below the minimum");
        let lone = Rounds { min: 2, ..r };
        assert!(
            lone.want_more(2, &[vec![100.0, 100.0]]),
            "two rounds never settle"
        );
        let icount = Precision::of(&[36.315, 36.317, 36.316, 36.315, 36.316]).unwrap();
        assert!(icount.within(1.0), "{}", icount.describe());
        assert!(
            icount
                .describe()
                .starts_with("rounds within ±0.003% of the median (n=5"),
            "{}",
            icount.describe()
        );
        assert!(!r.want_more(6, &tight), "precise: stop");
        assert!(r.want_more(6, &loose), "imprecise: go on");
        assert!(!r.want_more(10, &loose), "the cap");
        // One imprecise timing among precise ones keeps the round going.
        assert!(r.want_more(6, &[tight[0].clone(), loose[0].clone()]));
        // A cap below 6 cannot buy an interval: exactly the minimum.
        let short = Rounds {
            min: 1,
            max: 2,
            target_pct: 5.0,
        };
        assert!(!short.want_more(1, &loose));
        assert!(!Rounds::exactly(5).want_more(5, &loose));
        assert!(Rounds::exactly(5).want_more(4, &tight));
    }

    #[test]
    fn rounds_stop_where_the_cap_cannot_buy_the_target() {
        let r = Rounds {
            min: 5,
            max: 10,
            target_pct: 5.0,
        };
        // ±80 % at n = 6 (an emulated memmap_init): ±62 % projected at 10, hopeless.
        let hopeless = vec![100.0, 150.0, 60.0, 100.0, 180.0, 40.0];
        assert!(!r.want_more(6, std::slice::from_ref(&hopeless)));
        // Still below the minimum: the minimum is taken whatever the precision.
        assert!(r.want_more(4, &[hopeless[..4].to_vec()]));
        // At the edge: ±12 % at n = 6 projects to ±9.3 % at 10 (≤ 10: go on); ±14 % to
        // ±10.8 % (> 10: stop).
        let at = |h: f64| vec![100.0, 100.0 + h, 100.0 - h / 2.0, 100.0, 101.0, 99.0];
        assert!(r.want_more(6, &[at(12.0)]));
        assert!(!r.want_more(6, &[at(14.0)]));
        // One hopeless timing does not stop a round another timing can still make precise.
        assert!(r.want_more(6, &[hopeless.clone(), at(12.0)]));
        // A zero median has no relative precision to reach.
        assert!(!r.want_more(6, &[vec![0.0, 0.0, 0.0, 4.0, -4.0, 0.0]]));
    }

    #[test]
    fn the_report_names_each_imprecise_timing() {
        let m = |name: &str, samples: Vec<f64>| Metric {
            suite: "pin".into(),
            subject: "devdax:2M:mem io_uring".into(),
            name: name.into(),
            unit: "ms".into(),
            better: crate::metric::Better::Lower,
            kind: Kind::Time,
            samples,
        };
        let ms = [
            m("pin", vec![100.0, 101.0, 99.0, 100.0, 102.0, 98.0]),
            m("unpin", vec![100.0, 150.0, 60.0, 100.0, 180.0, 40.0]),
        ];
        let mut o = String::new();
        let r = Rounds {
            min: 5,
            max: 6,
            target_pct: 5.0,
        };
        render(&mut o, &ms, Some(&r));
        assert!(o.contains("1 of 2 within ±5%"), "{o}");
        assert!(o.contains("devdax:2M:mem io_uring unpin: ±80.0%"), "{o}");
        assert!(!o.contains("io_uring pin:"), "{o}");
        assert!(!o.contains("stopped before the cap"), "at the cap: {o}");
        // With a cap of 10, the same ±80 % says the rounds stopped early, and why.
        let mut o = String::new();
        render(&mut o, &ms, Some(&Rounds { max: 10, ..r }));
        assert!(
            o.contains("unpin: ±80.0% (95% CI of the median, n=6); stopped before the cap: the 4 rounds up to it could not buy ±5%"),
            "{o}"
        );
    }
}
