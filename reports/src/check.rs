//! A check: one comparison of what the kernel did against what it should have done (or
//! one source against another), stored in the results and printed `ok` / `MISMATCH`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub what: String,
    pub agrees: bool,
    pub detail: String,
}

impl Check {
    pub fn new(what: impl Into<String>, agrees: bool, detail: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            agrees,
            detail: detail.into(),
        }
    }
}

/// Whether `measured` equals `expected`; a difference is given with its size and sign.
pub fn equal(what: &str, measured: u64, expected: u64, explain: &str) -> Check {
    let diff = measured as i64 - expected as i64;
    let agrees = diff == 0;
    let detail = if agrees {
        format!("{measured} = {expected}{explain}")
    } else {
        let pct = if expected == 0 {
            f64::INFINITY
        } else {
            diff as f64 * 100.0 / expected as f64
        };
        format!("{measured} vs {expected}: differs by {diff:+} ({pct:+.1}%){explain}")
    };
    Check {
        what: what.into(),
        agrees,
        detail,
    }
}

/// A suite's checks under a title, one `ok` / `MISMATCH` line each.
pub fn render_checks(o: &mut String, title: &str, checks: &[Check]) {
    if checks.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{title} (a mismatch is reported, never hidden):");
    for c in checks {
        let _ = writeln!(
            o,
            "  {} {}: {}",
            if c.agrees { "ok      " } else { "MISMATCH" },
            c.what,
            c.detail
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_says_by_how_much() {
        assert!(equal("x", 4, 4, "").agrees);
        let c = equal("x", 2050, 2048, " (why)");
        assert!(!c.agrees);
        assert_eq!(c.detail, "2050 vs 2048: differs by +2 (+0.1%) (why)");
        let mut o = String::new();
        render_checks(&mut o, "t", &[c]);
        assert!(o.contains("MISMATCH x: 2050 vs 2048"), "{o}");
    }
}
