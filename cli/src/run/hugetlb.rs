//! The hugetlb suite's plan: every huge page size the kernel has, `--size` bytes of each.

use anyhow::Result;

use crate::exit::env;

/// The page sizes (kB) and the bytes per size.
pub fn plan(size: u64) -> Result<(Vec<u64>, u64)> {
    let sizes = foliobench_workloads::hugetlb::page_sizes();
    if sizes.is_empty() {
        return Err(env(format!(
            "--suite hugetlb: this kernel has no HugeTLB page sizes ({} is empty or absent)",
            foliobench_workloads::hugetlb::HUGEPAGES_DIR
        )));
    }
    Ok((sizes, size))
}
