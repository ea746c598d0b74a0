//! `foliobench run --suite fsdax`: the file size checked, as the fsdax suite's plan (its
//! loop is `workloads::suites::fsdax`).

use anyhow::Result;
use foliobench_reports::precision::Rounds;
use foliobench_workloads::namespace::Target;
use foliobench_workloads::suites;
use foliobench_workloads::suites::fsdax::PMD;

use super::planned::{run_suite, PlannedSuite, Running};
use crate::exit::usage;
use crate::units::fmt_size;

/// The fsdax suite and the PFN-map row (the fsdax suite's, or the memmap suite's pfnmap
/// geometry): both pin with the drivers asked for, opened once.
pub struct FsdaxAndPfnmap {
    /// The fsdax suite's file size (None: the PFN-map row only).
    pub fsdax: Option<u64>,
    pub pfnmap: bool,
    pub drivers: Vec<String>,
}

impl PlannedSuite for FsdaxAndPfnmap {
    fn describe(&self, _: &Rounds) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(f) = self.fsdax {
            v.push(format!(
                "fsdax: a {} file on ext4 and on xfs -o dax",
                fmt_size(f)
            ));
        }
        if self.pfnmap {
            v.push("pfnmap: a PCI memory BAR mapped read-only, never accessed".into());
        }
        v
    }
    fn fits(&self, t: &Target, _: &str) -> Result<()> {
        let region = t.region.size;
        match self.fsdax.filter(|f| *f >= region) {
            Some(f) => Err(usage(format!(
                "--size {}: the fsdax suite makes a file of --size bytes on {}, which has {} MiB \
                 (and a filesystem needs some of it): choose a smaller --size",
                fmt_size(f),
                t.namespace.dev,
                region >> 20
            ))),
            None => Ok(()),
        }
    }
    fn run(&self, r: &mut Running) -> Result<()> {
        // The drivers the fsdax suite and the PFN-map row pin with (a source device for
        // O_DIRECT at least as large as what they map).
        let size = self.fsdax.unwrap_or(0).max(2 << 20);
        let drivers = suites::pin::Drivers::open(
            &super::pin::plan(vec![], &self.drivers, size, false)?,
            r.notes,
        );
        if let (Some(_), Some(size)) = (r.ctx.prov, self.fsdax) {
            let fsdax = suites::fsdax::Plan {
                size,
                drivers: &drivers,
            };
            r.into.fsdax = Some(run_suite(&fsdax, r)?);
        }
        if self.pfnmap {
            eprintln!("foliobench: pfnmap: a PCI memory BAR, read-only");
            r.into.pfnmap = Some(suites::fsdax::pfnmap_row(&drivers));
        }
        Ok(())
    }
}

/// The file size: whole PMDs.
pub fn check_size(size: u64) -> Result<u64> {
    if size == 0 || size % PMD != 0 {
        return Err(usage(format!(
            "--size {}: the fsdax suite maps its file in 2M pieces, so --size must be a \
             multiple of 2M (e.g. --size {})",
            fmt_size(size),
            fmt_size(size.div_ceil(PMD).max(1) * PMD)
        )));
    }
    Ok(size)
}
