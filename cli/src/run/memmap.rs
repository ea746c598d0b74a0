//! `foliobench run --suite memmap`: the memmap suite's plan (its loop is
//! `workloads::suites::memmap`): the geometries, checked against the namespace, and what the
//! model needs of the kernel.

use anyhow::Result;
use foliobench_reports::geometry::Geometry;
use foliobench_reports::precision::Rounds;
use foliobench_workloads::namespace::Target;
use foliobench_workloads::suites::memmap::Plan;

use super::planned::{run_suite, PlannedSuite, Running};
use crate::exit::usage;

/// Every geometry to create must tile the namespace: its size a multiple of the alignment.
pub fn check_fits(geometries: &[Geometry], t: &Target) -> Result<()> {
    let region = t.region.size;
    for g in geometries.iter().filter(|g| **g != Geometry::Pfnmap) {
        if region < g.align() || region % g.align() != 0 {
            return Err(usage(format!(
                "{g} needs a namespace whose size is a multiple of its alignment; {} is {} MiB",
                t.namespace.dev,
                region >> 20
            )));
        }
    }
    Ok(())
}

/// The memmap suite as planned: its geometries; what the model needs of the kernel is read
/// once the plan is known (`KernelSide`).
pub struct Memmap {
    pub geometries: Vec<Geometry>,
}

impl PlannedSuite for Memmap {
    fn describe(&self, rounds: &Rounds) -> Vec<String> {
        vec![format!(
            "memmap: {} ({} each)",
            self.geometries
                .iter()
                .filter(|g| **g != Geometry::Pfnmap)
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            rounds.describe()
        )]
    }
    fn fits(&self, t: &Target, _: &str) -> Result<()> {
        check_fits(&self.geometries, t)
    }
    fn run(&self, r: &mut Running) -> Result<()> {
        if r.ctx.prov.is_none() {
            return Ok(());
        }
        let plan = Plan {
            geometries: self.geometries.clone(),
            struct_page: r.k.struct_page,
            optimization: r.k.optimization,
            nr_memmap: r.k.nr_memmap,
        };
        r.into.memmap = run_suite(&plan, r)?;
        Ok(())
    }
}
