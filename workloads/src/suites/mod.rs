//! The suites' loops: each drives the kernel for one suite from a plan (what to measure,
//! which `cli` builds from the arguments) and one `SuiteCtx`, and returns that suite's part
//! of the results (`reports::<suite>`). Timed rounds run with nothing attached; counts come
//! from separate traced rounds.

pub mod fsdax;
pub mod hugetlb;
pub mod memmap;
pub mod pin;
pub mod rmap;

use std::sync::atomic::{AtomicBool, Ordering};

use foliobench_ebpf::catalog::Resolution;
use foliobench_reports::precision::Rounds;
use foliobench_reports::suite::Suite;

use crate::mapping::WorkloadError;
use crate::namespace::Provisioner;

/// What every suite's loop is given besides its plan and its probes.
pub struct SuiteCtx<'a> {
    /// The namespace foliobench may reconfigure, if one was granted.
    pub prov: Option<&'a Provisioner>,
    /// Why none was, when none was: said in the rows it leaves unmeasured.
    pub no_namespace: Option<&'a str>,
    /// Timed rounds (or samples) per measurement: how many at least, at most, and the
    /// precision that ends them in between.
    pub rounds: Rounds,
    /// Set by SIGINT/SIGTERM: a suite stops at the next safe point.
    pub interrupted: &'a AtomicBool,
}

impl SuiteCtx<'_> {
    /// Whether SIGINT/SIGTERM arrived.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// An error to end the suite with if the run was interrupted.
    pub fn check_interrupted(&self, what_was_done: &str) -> Result<()> {
        if self.is_interrupted() {
            return Err(RunError::Failed(format!("interrupted: {what_was_done}")));
        }
        Ok(())
    }
}

/// One suite's loop, whatever the suite: its plan (what to measure, built by `cli` from
/// the arguments) runs with the shared context and the probes of its catalog groups, and
/// returns that suite's part of the results.
pub trait SuiteRun {
    /// The suite's part of the results (`reports::<suite>`).
    type Results;
    const SUITE: Suite;
    fn run(
        &self,
        ctx: &SuiteCtx,
        probes: &[Resolution],
        notes: &mut Vec<String>,
    ) -> Result<Self::Results>;
}

/// The probe catalog's groups each suite counts with (`ebpf::catalog`): an exhaustive
/// match, so that a new suite says which probes it needs.
pub fn probe_groups(suite: Suite) -> &'static [&'static str] {
    match suite {
        Suite::Memmap => &["memmap", "vmemmap"],
        Suite::Pin => &["pin", "grab"],
        Suite::Rmap => &["rmap"],
        Suite::Fsdax => &["fault"],
        Suite::Hugetlb => &["hugetlb"],
    }
}

pub use crate::error::RunError;

pub type Result<T, E = RunError> = std::result::Result<T, E>;

pub(crate) fn failed(msg: impl Into<String>) -> RunError {
    RunError::Failed(msg.into())
}

pub(crate) fn refused(msg: impl Into<String>) -> RunError {
    RunError::Refused(msg.into())
}

impl From<WorkloadError> for RunError {
    fn from(e: WorkloadError) -> Self {
        RunError::Failed(e.to_string())
    }
}

impl From<std::io::Error> for RunError {
    fn from(e: std::io::Error) -> Self {
        RunError::Failed(e.to_string())
    }
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Failed(format!("{e:#}"))
    }
}
