//! The suites foliobench has, as a type, and what every suite's results must say.
//!
//! Adding a suite: a variant of [`Suite`], its results type implementing [`SuiteReport`],
//! and its arm in `Results::part` (an exhaustive match: the compiler names what is missing).
//! `results`, `report` and `compare` loop over [`Suite::ALL`]; the unit test below fails for a
//! suite whose recorded results give no metrics, charts, checks or text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::chart::Chart;
use crate::check::Check;
use crate::metric::Metric;
use crate::outcome::Outcome;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// ZONE_DEVICE memmap: struct page memory and `memmap_init_zone_device` per geometry.
    Memmap,
    /// Pinning (`pin_user_pages*`, GUP-fast, long-term pins) per memory and driver.
    Pin,
    /// rmap batching (`folio_*_rmap_ptes`) per folio size.
    Rmap,
    /// fsdax: fault sizes of a file on ext4/xfs `-o dax`, and the PFN-map floor.
    Fsdax,
    /// HugeTLB's vmemmap optimization (HVO): struct page memory and pool grow/shrink time.
    Hugetlb,
}

impl Suite {
    /// Every suite, in the order reports show them.
    pub const ALL: [Suite; 5] = [
        Suite::Memmap,
        Suite::Pin,
        Suite::Rmap,
        Suite::Fsdax,
        Suite::Hugetlb,
    ];

    /// The name used on the command line, in results files and in metric keys.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Memmap => "memmap",
            Suite::Pin => "pin",
            Suite::Rmap => "rmap",
            Suite::Fsdax => "fsdax",
            Suite::Hugetlb => "hugetlb",
        }
    }

    /// Every suite's name, for messages: "memmap, pin, rmap, fsdax".
    pub fn names() -> String {
        Suite::ALL.map(Suite::name).join(", ")
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Suite {
    type Err = String;
    fn from_str(s: &str) -> Result<Suite, String> {
        Suite::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown suite '{s}': available: {}", Suite::names()))
    }
}

/// What a suite's results say, whatever the suite: its part of `compare` (metrics), of the
/// report (charts, text) and of the checks.
pub trait SuiteReport {
    fn suite(&self) -> Suite;
    /// Every comparable quantity (the suite's metric table applied to its rows).
    fn metrics(&self) -> Vec<Metric>;
    fn charts(&self) -> Vec<Chart>;
    /// Its checks, each named as the report shows it ("pin: …", "memmap devdax:2M:mem: …").
    fn checks(&self) -> Vec<(String, Check)>;
    /// Its section of the terminal report.
    fn render_text(&self, o: &mut String);
    /// The size its metrics were measured at: bytes per round (pin, rmap), the file
    /// (fsdax), the namespace (memmap). Runs of one suite at different sizes are points
    /// of a curve, not a comparison.
    fn size(&self) -> Option<u64>;
    /// What became of each row ("pin devdax:2M:mem io_uring" measured, refused, skipped):
    /// compared apart from the metrics, so that a row that stops being measured is seen.
    fn outcomes(&self) -> Vec<(String, Outcome)>;
    /// The report's first screen: what the table is, and the metrics it shows (metric
    /// name, column heading), the answers the suite exists for.
    fn first_screen(&self) -> (&'static str, &'static [(&'static str, &'static str)]);
    /// Columns the first screen derives from the rows rather than shows as a metric (per
    /// TiB, the model, the ratio to 4K): per column its heading and (subject, cell) pairs,
    /// the subjects those of the suite's metrics.
    fn first_screen_derived(&self) -> Vec<Derived> {
        vec![]
    }
    /// Lines under the first screen's table: what it leaves out, and why.
    fn first_screen_notes(&self) -> Vec<String> {
        vec![]
    }
}

/// A derived first-screen column: its heading, and per subject its cell.
pub type Derived = (String, Vec<(String, String)>);

/// Names a suite's own checks "suite: what".
pub fn named_checks(suite: Suite, checks: &[Check]) -> Vec<(String, Check)> {
    named_checks_as(suite.name(), checks)
}

/// Names checks "part: what" (the PFN-map floor, measured by two suites, is no suite).
pub fn named_checks_as(part: &str, checks: &[Check]) -> Vec<(String, Check)> {
    checks
        .iter()
        .map(|c| (format!("{part}: {}", c.what), c.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{parse, Results};

    #[test]
    fn names_parse_back() {
        for s in Suite::ALL {
            assert_eq!(s.name().parse::<Suite>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        let e = "bogus".parse::<Suite>().unwrap_err();
        assert_eq!(
            e,
            "unknown suite 'bogus': available: memmap, pin, rmap, fsdax, hugetlb"
        );
    }

    /// Recorded runs of real kernels (6.12), one holding each suite (the first that has it
    /// is the one read).
    fn recorded() -> Vec<Results> {
        [
            include_str!("../../tests/fixtures/suites/memmap-6.12.118.json"),
            include_str!("../../tests/fixtures/matrix/6.12.117.json"),
            include_str!("../../tests/fixtures/suites/rmap-6.12.118.json"),
            include_str!("../../tests/fixtures/suites/hugetlb-6.12.118.json"),
        ]
        .into_iter()
        .map(|t| parse(t).unwrap())
        .collect()
    }

    /// A suite registered without metrics, charts, checks or text fails here: every suite of
    /// `Suite::ALL` must say all four on a recorded run that has it.
    #[test]
    fn every_suite_says_its_metrics_charts_checks_and_text() {
        let runs = recorded();
        for s in Suite::ALL {
            let (run, part) = runs
                .iter()
                .find_map(|r| r.part(s).map(|p| (r, p)))
                .unwrap_or_else(|| panic!("no recorded run has the {s} suite: add one"));
            assert_eq!(part.suite(), s);
            let metrics = part.metrics();
            assert!(!metrics.is_empty(), "{s}: no metrics");
            assert!(
                metrics.iter().all(|m| m.suite == s.name()),
                "{s}: a metric of another suite"
            );
            assert!(
                part.charts().iter().any(|c| !c.is_empty()),
                "{s}: no charts"
            );
            assert!(!part.checks().is_empty(), "{s}: no checks");
            let mut text = String::new();
            part.render_text(&mut text);
            assert!(
                text.contains(s.name()),
                "{s}: its text does not name it:\n{text}"
            );
            assert!(part.size().is_some_and(|b| b > 0), "{s}: no size");
            let (_, chosen) = part.first_screen();
            assert!(
                chosen
                    .iter()
                    .all(|(n, _)| metrics.iter().any(|m| m.name == *n)),
                "{s}: a first-screen metric it does not have"
            );
            let table = crate::summary::tables(run);
            assert!(
                table.iter().any(|t| t.title.starts_with(s.name())),
                "{s}: no first-screen table"
            );
        }
    }
}
