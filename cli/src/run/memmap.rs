//! `foliobench run --suite memmap`: the memmap suite's plan (its loop is
//! `workloads::suites::memmap`): the geometries, checked against the namespace, and what the
//! model needs of the kernel.

use anyhow::Result;
use foliobench_reports::geometry::Geometry;
use foliobench_workloads::namespace::Target;
use foliobench_workloads::suites::memmap::Plan;

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

/// The plan: the geometries, sizeof(struct page), the kernel's side of
/// vmemmap_can_optimize() and whether /proc/vmstat has nr_memmap_pages.
pub fn plan(
    geometries: &[Geometry],
    struct_page: u64,
    optimization: bool,
    nr_memmap: bool,
) -> Plan {
    Plan {
        geometries: geometries.to_vec(),
        struct_page,
        optimization,
        nr_memmap,
    }
}
