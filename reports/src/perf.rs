//! The perf witness: what the perf subsystem counted around one operation, in counting mode
//! (no BPF, no sampling). A second, independent source for the counts the BPF probes give.

use serde::{Deserialize, Serialize};

/// Software events, as `perf stat` names them.
pub const PAGE_FAULTS: &str = "page-faults";
pub const MINOR_FAULTS: &str = "minor-faults";
pub const MAJOR_FAULTS: &str = "major-faults";
pub const CONTEXT_SWITCHES: &str = "context-switches";
pub const TASK_CLOCK: &str = "task-clock";
/// x86's user page-fault tracepoint, filtered to one mapping's addresses: that mapping's
/// faults alone.
pub const USER_FAULTS_IN_MAPPING: &str = "page faults in the mapping";
/// Hardware events, counted where the machine offers them (bare metal, a working KVM).
pub const CYCLES: &str = "cycles";
pub const INSTRUCTIONS: &str = "instructions";
pub const DTLB_LOAD_MISSES: &str = "dTLB-load-misses";

/// One operation's perf counts, this thread, user and kernel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfCounts {
    /// Event (perf's name, or `category:tracepoint`) and its count; task-clock in ns.
    pub counts: Vec<(String, u64)>,
    /// Events perf could not count here, and why ("not offered here" under software
    /// emulation for the hardware ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_counted: Vec<(String, String)>,
}

impl PerfCounts {
    pub fn get(&self, event: &str) -> Option<u64> {
        self.counts
            .iter()
            .find(|(e, _)| e == event)
            .map(|(_, c)| *c)
    }

    /// `event count, ...; not counted: event (why), ...` for a report line.
    pub fn describe(&self) -> String {
        let counted = self
            .counts
            .iter()
            .map(|(e, c)| format!("{e} {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.not_counted.is_empty() {
            return counted;
        }
        let missing = self
            .not_counted
            .iter()
            .map(|(e, why)| format!("{e} ({why})"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("{counted}; not counted: {missing}")
    }
}
