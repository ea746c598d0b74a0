//! A suite as `run` handles it once its arguments are checked: one value per suite planned,
//! in the suites' order, each saying what it will reconfigure and measure, checking that it
//! fits the namespace taken, and running its loop (`workloads::suites`) into its part of
//! the results. `run` loops over them; adding a suite is its plan's impl here and one line
//! in `plan`.

use anyhow::Result;
use foliobench_reports::fsdax::{FsdaxSuite, PfnmapResult};
use foliobench_reports::hugetlb::HugetlbSuite;
use foliobench_reports::memmap::MemmapResult;
use foliobench_reports::pin::PinSuite;
use foliobench_reports::precision::Rounds;
use foliobench_reports::results::{Context, Results, RESULTS_SCHEMA_VERSION};
use foliobench_reports::rmap::RmapSuite;
use foliobench_reports::suite::Suite;
use foliobench_workloads::namespace::Target;
use foliobench_workloads::suites::{self, SuiteCtx, SuiteRun};

use super::{run_err, KernelSide};

/// A suite planned for this run.
pub(super) trait PlannedSuite {
    /// What it will measure, for the plan line `run` prints before changing anything.
    fn describe(&self, rounds: &Rounds) -> Vec<String>;
    /// Whether it measures on the namespace (then its line names the namespace taken).
    fn on_namespace(&self) -> bool {
        true
    }
    /// Checked against the namespace taken, before anything is changed.
    fn fits(&self, _t: &Target, _size_text: &str) -> Result<()> {
        Ok(())
    }
    /// Its loop, into its part of the results.
    fn run(&self, r: &mut Running) -> Result<()>;
}

/// What a suite's loop is given: the shared context, the kernel's side (model inputs,
/// probes), the run's notes, and the results it fills its part of.
pub(super) struct Running<'a, 'c> {
    pub ctx: &'a SuiteCtx<'c>,
    pub k: &'a KernelSide,
    pub notes: &'a mut Vec<String>,
    pub into: &'a mut SuiteResults,
}

/// Every suite's part of the results.
#[derive(Default)]
pub(super) struct SuiteResults {
    pub memmap: Vec<MemmapResult>,
    pub pin: Option<PinSuite>,
    pub rmap: Option<RmapSuite>,
    pub fsdax: Option<FsdaxSuite>,
    pub pfnmap: Option<PfnmapResult>,
    pub hugetlb: Option<HugetlbSuite>,
}

impl SuiteResults {
    /// The results file: the parts, the context and the suites' names.
    pub fn into_results(self, context: Context, suites: &[Suite]) -> Results {
        Results {
            schema_version: RESULTS_SCHEMA_VERSION,
            context,
            suites: suites.iter().map(|s| s.name().to_string()).collect(),
            memmap: self.memmap,
            pin: self.pin,
            rmap: self.rmap,
            fsdax: self.fsdax,
            hugetlb: self.hugetlb,
            pfnmap: self.pfnmap,
        }
    }
}

/// One suite's loop with its probes.
pub(super) fn run_suite<S: SuiteRun>(plan: &S, r: &mut Running) -> Result<S::Results> {
    plan.run(r.ctx, r.k.probes_of(S::SUITE), r.notes)
        .map_err(run_err)
}

impl PlannedSuite for suites::pin::Plan {
    fn describe(&self, rounds: &Rounds) -> Vec<String> {
        vec![format!(
            "pin: {}",
            suites::pin::Plan::describe(self, rounds)
        )]
    }
    fn on_namespace(&self) -> bool {
        self.wants_dax()
    }
    fn fits(&self, t: &Target, size_text: &str) -> Result<()> {
        let region = t.region.size;
        if self.wants_dax() && self.size >= region {
            return Err(crate::exit::usage(format!(
                "--size {size_text}: the pin suite maps --size bytes of {}, which has {} MiB \
                 (and a dax device offers less than its namespace): choose a smaller --size",
                t.namespace.dev,
                region >> 20
            )));
        }
        Ok(())
    }
    fn run(&self, r: &mut Running) -> Result<()> {
        r.into.pin = Some(run_suite(self, r)?);
        Ok(())
    }
}

impl PlannedSuite for suites::rmap::Plan {
    fn describe(&self, _: &Rounds) -> Vec<String> {
        self.fsdax
            .then(|| format!("rmap: a file on {}", suites::rmap::FSDAX))
            .into_iter()
            .collect()
    }
    fn on_namespace(&self) -> bool {
        self.fsdax
    }
    fn run(&self, r: &mut Running) -> Result<()> {
        r.into.rmap = Some(run_suite(self, r)?);
        Ok(())
    }
}
