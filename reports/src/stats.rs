//! Statistics for comparing two sets of raw samples: median, spread, and the two-sided
//! Mann-Whitney U test (exact permutation distribution for small samples, the normal
//! approximation with tie correction beyond). Written here because the crates that offer
//! the test (e.g. statrs has only the distributions) do not give the exact small-sample
//! p-value with ties, and small samples are what a benchmark in a test VM has.

/// Median of real samples (mean of the two middle ones for an even count).
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

/// Median of integer samples: the same definition as `median`, rounded to the nearest
/// integer (an even count's two middle values are averaged, as `compare` does).
pub fn median_u64(v: &[u64]) -> Option<u64> {
    let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    median(&f).map(|m| m.round() as u64)
}

/// `range_pct` of integer samples.
pub fn range_pct_u64(v: &[u64]) -> Option<f64> {
    let f: Vec<f64> = v.iter().map(|&x| x as f64).collect();
    range_pct(&f)
}

/// (max - min) / |median|, in percent: mmtests' and our tables' spread.
pub fn range_pct(v: &[f64]) -> Option<f64> {
    let m = median(v)?;
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    (m != 0.0).then(|| (hi - lo) * 100.0 / m.abs())
}

/// Midranks (1-based) of the pooled samples: tied values share the mean of their ranks.
fn midranks(pooled: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..pooled.len()).collect();
    idx.sort_by(|&a, &b| pooled[a].total_cmp(&pooled[b]));
    let mut ranks = vec![0.0; pooled.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && pooled[idx[j + 1]] == pooled[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Above this many ways to split the pooled samples, the normal approximation is used.
const EXACT_LIMIT: u64 = 200_000;

fn binomial(n: u64, k: u64) -> u64 {
    (0..k.min(n - k)).fold(1u64, |acc, i| acc.saturating_mul(n - i) / (i + 1))
}

/// Two-sided p-value of the Mann-Whitney U test that `a` and `b` come from the same
/// distribution. None when either side is empty.
pub fn mann_whitney_p(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let ranks = midranks(&pooled);
    let r1: f64 = ranks[..n1].iter().sum();
    let mean = n1 as f64 * (n1 + n2 + 1) as f64 / 2.0;
    let observed = (r1 - mean).abs();
    if binomial((n1 + n2) as u64, n1 as u64) <= EXACT_LIMIT {
        // Every assignment of n1 of the pooled midranks to the first side is equally
        // likely under the null hypothesis: count those at least as extreme.
        let (mut extreme, mut total) = (0u64, 0u64);
        let mut chosen = Vec::with_capacity(n1);
        fn walk(
            ranks: &[f64],
            start: usize,
            left: usize,
            chosen: &mut Vec<f64>,
            f: &mut dyn FnMut(f64),
        ) {
            if left == 0 {
                f(chosen.iter().sum());
                return;
            }
            for i in start..=ranks.len() - left {
                chosen.push(ranks[i]);
                walk(ranks, i + 1, left - 1, chosen, f);
                chosen.pop();
            }
        }
        walk(&ranks, 0, n1, &mut chosen, &mut |s| {
            total += 1;
            if (s - mean).abs() >= observed - 1e-9 {
                extreme += 1;
            }
        });
        return Some(extreme as f64 / total as f64);
    }
    // Normal approximation with the tie correction and a continuity correction.
    let n = (n1 + n2) as f64;
    let mut sorted = pooled.clone();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|&&x| x == sorted[i]).count();
        ties += (j * j * j - j) as f64;
        i += j;
    }
    let var = n1 as f64 * n2 as f64 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some(1.0);
    }
    let z = ((observed - 0.5).max(0.0)) / var.sqrt();
    Some((2.0 * normal_sf(z)).min(1.0))
}

/// The smallest two-sided p-value the exact test can give with these sample counts (all
/// of one side beyond all of the other): below the significance level or no difference
/// can ever be called significant.
pub fn min_p(n1: usize, n2: usize) -> f64 {
    if n1 == 0 || n2 == 0 {
        return 1.0;
    }
    2.0 / binomial((n1 + n2) as u64, n1 as u64) as f64
}

/// Survival function of the standard normal distribution (Abramowitz-Stegun 7.1.26 erfc).
fn normal_sf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    0.5 * poly * (-x * x).exp()
}

/// Welch's t on the logarithms of two samples, the pieces every use takes: the difference
/// of the mean logs (b − a), its squared standard error, and the Welch–Satterthwaite degrees
/// of freedom (None where there is no spread at all). Logarithms because a change is a ratio
/// (and timings are skewed). None with fewer than two values a side, or a value that is
/// not positive.
pub struct WelchLogs {
    pub diff: f64,
    pub se2: f64,
    pub df: Option<f64>,
}

impl WelchLogs {
    pub fn of(a: &[f64], b: &[f64]) -> Option<WelchLogs> {
        if a.len() < 2 || b.len() < 2 || a.iter().chain(b).any(|&x| x.is_nan() || x <= 0.0) {
            return None;
        }
        // Mean of the logs, and the variance of that mean.
        let moments = |v: &[f64]| {
            let l: Vec<f64> = v.iter().map(|x| x.ln()).collect();
            let n = l.len() as f64;
            let m = l.iter().sum::<f64>() / n;
            (
                m,
                l.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / n,
            )
        };
        let ((ma, sa), (mb, sb)) = (moments(a), moments(b));
        let se2 = sa + sb;
        let df = (se2 > 0.0)
            .then(|| se2 * se2 / (sa * sa / (a.len() - 1) as f64 + sb * sb / (b.len() - 1) as f64));
        Some(WelchLogs {
            diff: mb - ma,
            se2,
            df,
        })
    }

    /// The t quantile for a two-sided `level` (e.g. 0.95) at these degrees of freedom.
    fn t(&self, level: f64) -> Option<f64> {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let df = self.df?;
        Some(
            StudentsT::new(0.0, 1.0, df)
                .ok()?
                .inverse_cdf(0.5 + level / 2.0),
        )
    }

    /// Two-sided p-value.
    pub fn p(&self) -> Option<f64> {
        use statrs::distribution::{ContinuousCDF, StudentsT};
        let Some(df) = self.df else {
            return Some(if self.diff == 0.0 { 1.0 } else { 0.0 });
        };
        let t = self.diff / self.se2.sqrt();
        let dist = StudentsT::new(0.0, 1.0, df).ok()?;
        Some((2.0 * dist.sf(t.abs())).min(1.0))
    }

    /// The half-width, in logs, of the interval of `diff` at two-sided `level`; 0 without
    /// spread.
    pub fn half_width(&self, level: f64) -> Option<f64> {
        match self.df {
            None => Some(0.0),
            Some(_) => Some(self.t(level)? * self.se2.sqrt()),
        }
    }
}

/// Two-sided p-value of Welch's t-test on the logarithms of `a` and `b`: for per-boot
/// medians, where the boot is the unit of replication.
pub fn welch_log_p(a: &[f64], b: &[f64]) -> Option<f64> {
    WelchLogs::of(a, b)?.p()
}

/// The smallest change, percent, that Welch's t on the logarithms of per-boot medians
/// calls at `alpha` (two-sided) with samples spread as `a` and `b` are: the minimum
/// detectable effect of a gate with these boots (at 50 % power: a change of exactly this
/// size is called about half the time). 0 where neither side has any spread. None with
/// fewer than two values a side.
pub fn welch_log_mde_pct(a: &[f64], b: &[f64], alpha: f64) -> Option<f64> {
    let h = WelchLogs::of(a, b)?.half_width(1.0 - alpha)?;
    Some((h.exp() - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three boots a side spread as the instruction clock's (52.993 / 52.994 ms, ±0.003 %)
    /// can call a change of hundredths of a percent; spread as the wall clock's (149 / 72
    /// ms) not even a doubling. Checked against SciPy: t.ppf(0.975, 4) = 2.776445.
    #[test]
    fn minimum_detectable_effect_follows_the_spread() {
        let tight =
            welch_log_mde_pct(&[52.993, 52.994, 52.992], &[52.993, 52.994, 52.992], 0.05).unwrap();
        // sd of the logs ~1.887e-5; se = sd * sqrt(2/3); x = 2.776445 * se.
        let sd = ((0.0f64 + 1.0 + 1.0) / 2.0).sqrt() * 0.001 / 52.993;
        let want = ((2.776445 * sd * (2.0f64 / 3.0).sqrt()).exp() - 1.0) * 100.0;
        assert!((tight - want).abs() < 1e-6, "{tight} vs {want}");
        assert!(tight < 0.01, "{tight}");
        let loose = welch_log_mde_pct(&[149.1, 72.0, 110.0], &[149.1, 72.0, 110.0], 0.05).unwrap();
        assert!(loose > 100.0, "{loose}");
        assert_eq!(welch_log_mde_pct(&[5.0, 5.0], &[5.0, 5.0], 0.05), Some(0.0));
        assert_eq!(welch_log_mde_pct(&[5.0], &[5.0, 5.0], 0.05), None);
    }

    /// SciPy: ttest_ind(log([10, 11, 10.5]), log([12, 12.5, 13]), equal_var=False).pvalue
    /// = 0.0089261.
    #[test]
    fn welch_on_logs_matches_r() {
        let p = welch_log_p(&[10.0, 11.0, 10.5], &[12.0, 12.5, 13.0]).unwrap();
        assert!((p - 0.0089261).abs() < 1e-6, "{p}");
        assert_eq!(welch_log_p(&[1.0], &[2.0, 3.0]), None, "one boot");
        assert_eq!(welch_log_p(&[0.0, 1.0], &[2.0, 3.0]), None, "not positive");
        assert_eq!(welch_log_p(&[5.0, 5.0], &[5.0, 5.0]), Some(1.0));
    }

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(range_pct(&[9.0, 10.0, 11.0]), Some(20.0));
        // One definition for integers and reals: the middle two averaged.
        assert_eq!(median_u64(&[5, 1, 3]), Some(3));
        assert_eq!(median_u64(&[4, 1, 3, 2]), Some(3));
        assert_eq!(median_u64(&[4, 1, 2, 2]), Some(2));
        assert_eq!(median_u64(&[]), None);
        assert_eq!(range_pct_u64(&[9, 10, 11]), Some(20.0));
    }

    /// R: wilcox.test(c(1,2,3,4,5), c(6,7,8,9,10))$p.value = 0.007937 (2/252).
    #[test]
    fn exact_p_of_fully_separated_samples() {
        let p = mann_whitney_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
        assert!((min_p(5, 5) - p).abs() < 1e-12);
        // Three a side can never reach 0.05.
        assert!(min_p(3, 3) > 0.05);
    }

    /// Ranks of the first side: 1, 2, 4, 6 (sum 13, mean 18). Of the 70 ways to pick 4
    /// ranks of 8, 7 sum to 13 or less and 7 to 23 or more: p = 14/70.
    #[test]
    fn exact_p_of_overlapping_samples() {
        let p = mann_whitney_p(&[1.1, 2.2, 3.3, 4.4], &[2.5, 3.5, 5.5, 6.5]).unwrap();
        assert!((p - 0.2).abs() < 1e-12, "{p}");
    }

    #[test]
    fn identical_samples_are_not_different() {
        let p = mann_whitney_p(&[5.0; 5], &[5.0; 5]).unwrap();
        assert_eq!(p, 1.0);
        assert_eq!(mann_whitney_p(&[], &[1.0]), None);
    }

    /// R: wilcox.test(1:12, 13:24, exact=FALSE, correct=TRUE)$p.value = 3.658e-05.
    #[test]
    fn normal_approximation_for_large_samples() {
        let a: Vec<f64> = (1..=12).map(f64::from).collect();
        let b: Vec<f64> = (13..=24).map(f64::from).collect();
        let p = mann_whitney_p(&a, &b).unwrap();
        assert!((p - 3.658e-5).abs() < 2e-6, "{p}");
    }
}
