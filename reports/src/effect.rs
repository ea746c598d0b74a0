//! The probe effect: what tracing cost on this kernel, as a traced round's time over the
//! median of its untraced (timed) twins. Times in the tables come from the untraced rounds
//! and counts from the traced ones; this ratio says how far apart the two worlds were.

use std::fmt::Write as _;

use crate::stats::median;

/// The traced rounds' median time over the untraced samples' median; `None` when either side
/// is missing or the untraced median is 0.
pub fn ratio(traced: &[f64], untraced: &[f64]) -> Option<f64> {
    let u = median(untraced)?;
    let t = median(traced)?;
    (u > 0.0).then(|| t / u)
}

/// One line per suite: the median ratio over its cells and the cells at either end.
pub fn render(o: &mut String, cells: &[(String, f64)]) {
    if cells.is_empty() {
        return;
    }
    let ratios: Vec<f64> = cells.iter().map(|(_, r)| *r).collect();
    let lo = cells
        .iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("not empty");
    let hi = cells
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("not empty");
    let _ = writeln!(
        o,
        "\nprobe effect (traced round time / untraced median, {} cells): median {:.2}x, from {:.2}x ({}) to {:.2}x ({}); times above are untraced, counts traced",
        cells.len(),
        median(&ratios).expect("not empty"),
        lo.1,
        lo.0,
        hi.1,
        hi.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_of_medians_and_one_line_per_suite() {
        assert_eq!(ratio(&[300.0], &[100.0, 90.0, 110.0]), Some(3.0));
        assert_eq!(ratio(&[300.0], &[]), None);
        assert_eq!(ratio(&[], &[1.0]), None);
        let mut o = String::new();
        render(
            &mut o,
            &[("a".into(), 1.5), ("b".into(), 4.0), ("c".into(), 2.0)],
        );
        assert!(
            o.contains("3 cells): median 2.00x, from 1.50x (a) to 4.00x (b)"),
            "{o}"
        );
        let mut o = String::new();
        render(&mut o, &[]);
        assert!(o.is_empty());
    }
}
