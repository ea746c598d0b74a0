//! The probe effect: what tracing cost on this kernel, as a traced round's time over the
//! median of its untraced (timed) twins. Times in the tables come from the untraced rounds
//! and counts from the traced ones; this ratio says how far apart the two worlds were.

use std::fmt::Write as _;

use crate::stats::median;

/// What tracing cost one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// The traced rounds' median time over the untraced samples' median.
    pub ratio: f64,
    /// The traced median lies within the untraced samples' range: at this noise, no probe
    /// effect can be told from the spread of the untraced rounds themselves.
    pub within_untraced: bool,
}

/// The traced rounds against their untraced twins; `None` when either side is missing or
/// the untraced median is 0.
pub fn of(traced: &[f64], untraced: &[f64]) -> Option<Effect> {
    let u = median(untraced)?;
    let t = median(traced)?;
    let lo = untraced.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = untraced.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (u > 0.0).then(|| Effect {
        ratio: t / u,
        within_untraced: (lo..=hi).contains(&t),
    })
}

/// One line per suite: the median ratio over its cells, the cells at either end, and how
/// many cells' traced time the untraced rounds' own spread covers.
pub fn render(o: &mut String, cells: &[(String, Effect)]) {
    if cells.is_empty() {
        return;
    }
    let ratios: Vec<f64> = cells.iter().map(|(_, e)| e.ratio).collect();
    let lo = cells
        .iter()
        .min_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio))
        .expect("not empty");
    let hi = cells
        .iter()
        .max_by(|a, b| a.1.ratio.total_cmp(&b.1.ratio))
        .expect("not empty");
    let within = cells.iter().filter(|(_, e)| e.within_untraced).count();
    let _ = writeln!(
        o,
        "\nprobe effect (traced round time / untraced median, {} cells): median {:.2}x, from {:.2}x ({}) to {:.2}x ({}); {within} of {} traced times within their untraced rounds' range (an effect below the noise); times above are untraced, counts traced",
        cells.len(),
        median(&ratios).expect("not empty"),
        lo.1.ratio,
        lo.0,
        hi.1.ratio,
        hi.0,
        cells.len(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_medians_and_one_line_per_suite() {
        let e = of(&[300.0], &[100.0, 90.0, 110.0]).unwrap();
        assert_eq!(e.ratio, 3.0);
        assert!(!e.within_untraced);
        // 105 lies in 90..=110: no effect to tell from the noise, though the ratio is 1.05.
        assert!(of(&[105.0], &[100.0, 90.0, 110.0]).unwrap().within_untraced);
        assert_eq!(of(&[300.0], &[]), None);
        assert_eq!(of(&[], &[1.0]), None);
        let cell = |name: &str, ratio: f64, within_untraced: bool| {
            (
                name.to_string(),
                Effect {
                    ratio,
                    within_untraced,
                },
            )
        };
        let mut o = String::new();
        render(
            &mut o,
            &[
                cell("a", 1.5, true),
                cell("b", 4.0, false),
                cell("c", 2.0, false),
            ],
        );
        assert!(
            o.contains("3 cells): median 2.00x, from 1.50x (a) to 4.00x (b); 1 of 3 traced times within their untraced rounds' range"),
            "{o}"
        );
        let mut o = String::new();
        render(&mut o, &[]);
        assert!(o.is_empty());
    }
}
