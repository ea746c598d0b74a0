//! A check: one comparison of what the kernel did against what it should have done (or
//! one source against another), stored in the results and printed `ok` / `MISMATCH`.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub what: String,
    /// Measured and as expected. A check that could not be made never agrees.
    pub agrees: bool,
    pub detail: String,
    /// False when a source was missing here (a kernel without the counter, a probe that
    /// cannot attach) or the check does not apply: printed `SKIP`, never `ok`.
    #[serde(default = "measured_by_default")]
    pub measured: bool,
}

fn measured_by_default() -> bool {
    true
}

impl Check {
    pub fn new(what: impl Into<String>, agrees: bool, detail: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            agrees,
            detail: detail.into(),
            measured: true,
        }
    }

    /// A check that could not be made, and why.
    pub fn skipped(what: impl Into<String>, why: impl Into<String>) -> Check {
        Check {
            what: what.into(),
            agrees: false,
            detail: why.into(),
            measured: false,
        }
    }

    /// `ok`, `MISMATCH` or `SKIP`, padded to one width.
    pub fn verdict(&self) -> &'static str {
        match (self.measured, self.agrees) {
            (false, _) => "SKIP    ",
            (true, true) => "ok      ",
            (true, false) => "MISMATCH",
        }
    }
}

/// Whether `measured` equals `expected`; a difference is given with its size and sign.
pub fn equal(what: &str, measured: u64, expected: u64, explain: &str) -> Check {
    equal_signed(what, measured as i64, expected as i64, explain)
}

/// `equal` for values that may fall below zero (deltas): never clamped.
pub fn equal_signed(what: &str, measured: i64, expected: i64, explain: &str) -> Check {
    let diff = measured - expected;
    let agrees = diff == 0;
    let detail = if agrees {
        format!("{measured} = {expected}{explain}")
    } else {
        let pct = if expected == 0 {
            f64::INFINITY.copysign(diff as f64)
        } else {
            diff as f64 * 100.0 / expected as f64
        };
        format!("{measured} vs {expected}: differs by {diff:+} ({pct:+.1}%){explain}")
    };
    Check::new(what, agrees, detail)
}

/// A suite's checks under a title, one `ok` / `MISMATCH` line each.
pub fn render_checks(o: &mut String, title: &str, checks: &[Check]) {
    if checks.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{title} (a mismatch is reported, never hidden):");
    for c in checks {
        let _ = writeln!(o, "  {} {}: {}", c.verdict(), c.what, c.detail);
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
        let c = equal_signed("x", -3, 0, "");
        assert_eq!(c.detail, "-3 vs 0: differs by -3 (-inf%)");
    }

    #[test]
    fn a_check_not_made_is_never_ok() {
        let c = Check::skipped("x", "no counter");
        assert!(!c.agrees);
        let mut o = String::new();
        render_checks(&mut o, "t", &[c]);
        assert!(o.contains("SKIP     x: no counter"), "{o}");
        // Results written before `measured` existed read as measured.
        let old: Check = serde_json::from_str(r#"{"what":"x","agrees":true,"detail":""}"#).unwrap();
        assert!(old.measured && old.verdict() == "ok      ");
    }
}
