//! The hugetlb suite's plan: every huge page size the kernel has, `--size` bytes of each.

use anyhow::Result;
use foliobench_reports::hugetlb::size_name;
use foliobench_reports::precision::Rounds;
use foliobench_workloads::suites;

use super::planned::{run_suite, PlannedSuite, Running};
use crate::exit::env;

/// The hugetlb suite as planned: every page size, `size` bytes of each.
pub struct Hugetlb {
    pub page_kbs: Vec<u64>,
    pub size: u64,
}

impl PlannedSuite for Hugetlb {
    fn describe(&self, rounds: &Rounds) -> Vec<String> {
        vec![format!(
            "hugetlb: {} MiB of {} pages, vm.hugetlb_optimize_vmemmap off then on ({}), the pools and the control restored afterwards",
            self.size >> 20,
            self.page_kbs.iter().map(|&kb| size_name(kb)).collect::<Vec<_>>().join(" and "),
            rounds.describe()
        )]
    }
    fn on_namespace(&self) -> bool {
        false
    }
    fn run(&self, r: &mut Running) -> Result<()> {
        let plan = suites::hugetlb::Plan {
            page_kbs: self.page_kbs.clone(),
            size: self.size,
            struct_page: r.k.struct_page,
        };
        r.into.hugetlb = Some(run_suite(&plan, r)?);
        Ok(())
    }
}

/// The page sizes (kB) and the bytes per size.
pub fn plan(size: u64) -> Result<Hugetlb> {
    let sizes = foliobench_workloads::hugetlb::page_sizes();
    if sizes.is_empty() {
        return Err(env(format!(
            "--suite hugetlb: this kernel has no HugeTLB page sizes ({} is empty or absent)",
            foliobench_workloads::hugetlb::HUGEPAGES_DIR
        )));
    }
    Ok(Hugetlb {
        page_kbs: sizes,
        size,
    })
}
