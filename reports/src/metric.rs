//! What `compare` compares: each suite declares its metrics once, as a table of
//! (name, unit, better direction, kind, how to read the samples from one of its rows), and
//! says which of its rows were measured under which subject. Adding a metric is one entry.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
}

/// How a metric's samples vary, which decides how a change is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A timing or another noisy quantity: the Mann-Whitney U test on the raw samples.
    Time,
    /// A count the kernel determines (pages, calls): a change is significant when no sample
    /// of one side lies within the other's range (often one traced sample a side).
    Count,
    /// A percentile read from a log2 histogram: its bucket's upper bound, so the value lies
    /// anywhere in (v/2, v]. Seen in an A/A of one kernel: one GUP call's p50 at 8.4 ms on
    /// all three base boots and 16.8 ms on all three candidate boots, a latency sitting on a
    /// bucket edge; with no spread on either side Welch's t called that p = 0. A change is
    /// significant only when no sample's bucket touches the other side's (more than one
    /// bucket apart throughout): the histogram resolves no less.
    Log2,
}

impl Kind {
    /// A timing, read from raw samples or from a log2 histogram (charted as times are).
    pub fn is_timing(self) -> bool {
        matches!(self, Kind::Time | Kind::Log2)
    }
}

/// One quantity of one results file, with its raw samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub suite: String,
    /// What was measured, e.g. `devdax:2M:mem` or `munmap anon 2048K`.
    pub subject: String,
    pub name: String,
    pub unit: String,
    pub better: Better,
    pub kind: Kind,
    pub samples: Vec<f64>,
}

impl Metric {
    /// `suite subject name`: the metric's identity across results files.
    pub fn key(&self) -> String {
        format!("{} {} {}", self.suite, self.subject, self.name)
    }
}

/// One entry of a suite's metric table: `samples` reads them from the suite and one row.
pub struct MetricSpec<S: ?Sized, R> {
    pub name: &'static str,
    pub unit: &'static str,
    pub better: Better,
    pub kind: Kind,
    pub samples: fn(&S, &R) -> Vec<f64>,
}

impl<S: ?Sized, R> MetricSpec<S, R> {
    pub const fn new(
        name: &'static str,
        unit: &'static str,
        better: Better,
        kind: Kind,
        samples: fn(&S, &R) -> Vec<f64>,
    ) -> Self {
        MetricSpec {
            name,
            unit,
            better,
            kind,
            samples,
        }
    }

    /// A timing in ms, lower is better.
    pub const fn time(name: &'static str, samples: fn(&S, &R) -> Vec<f64>) -> Self {
        Self::new(name, "ms", Better::Lower, Kind::Time, samples)
    }

    /// A count the kernel determines.
    pub const fn count(
        name: &'static str,
        unit: &'static str,
        better: Better,
        samples: fn(&S, &R) -> Vec<f64>,
    ) -> Self {
        Self::new(name, unit, better, Kind::Count, samples)
    }
}

/// The measured rows of a suite under their subjects.
pub fn measured<R>(
    rows: &[R],
    outcome: impl Fn(&R) -> &crate::outcome::Outcome,
    subject: impl Fn(&R) -> String,
) -> Vec<(String, &R)> {
    rows.iter()
        .filter(|r| *outcome(r) == crate::outcome::Outcome::Measured)
        .map(|r| (subject(r), r))
        .collect()
}

/// A suite's side of `compare`.
pub trait Metrics: 'static {
    type Row: 'static;
    /// The suite's name, the first part of every metric key.
    const SUITE: &'static str;
    /// Every metric it offers, once.
    const METRICS: &'static [MetricSpec<Self, Self::Row>];
    /// The measured rows and their subjects (refused or skipped rows give no metrics:
    /// their outcomes are compared apart).
    fn subjects(&self) -> Vec<(String, &Self::Row)>;

    /// The table applied to every measured row; a metric without samples is left out.
    fn metrics(&self) -> Vec<Metric> {
        let mut v = Vec::new();
        for (subject, row) in self.subjects() {
            for m in Self::METRICS {
                let samples = (m.samples)(self, row);
                if !samples.is_empty() {
                    v.push(Metric {
                        suite: Self::SUITE.into(),
                        subject: subject.clone(),
                        name: m.name.into(),
                        unit: m.unit.into(),
                        better: m.better,
                        kind: m.kind,
                        samples,
                    });
                }
            }
        }
        v
    }
}

/// Nanoseconds as milliseconds, the unit of every timing metric.
pub fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// A count read once (a traced round), if there is one.
pub fn once(v: Option<u64>) -> Vec<f64> {
    v.map(|x| vec![x as f64]).unwrap_or_default()
}
