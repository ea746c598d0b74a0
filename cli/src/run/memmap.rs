//! `foliobench run --suite memmap`: struct page cost and memmap init time per geometry,
//! from vmstat, the probes, MemFree and the model side by side.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use foliobench_ebpf::catalog::Resolution;
use foliobench_reports::geometry::{model, Geometry};
use foliobench_reports::memmap::{checks, MemmapResult};
use foliobench_workloads::memmap;
use foliobench_workloads::namespace::Provisioner;

use crate::exit::env;

/// Measures every geometry `repeat` times on the provisioned namespace.
#[allow(clippy::too_many_arguments)]
pub fn suite(
    prov: &Provisioner,
    geometries: &[Geometry],
    repeat: usize,
    size: u64,
    struct_page: u64,
    optimization: bool,
    nr_memmap: bool,
    probes: &[Resolution],
    interrupted: &AtomicBool,
) -> Result<Vec<MemmapResult>> {
    let mut results = Vec::new();
    for &g in geometries {
        let m = model(g, size, struct_page, optimization);
        let mut r = MemmapResult {
            geometry: g,
            model: m,
            samples: vec![],
            checks: vec![],
            error: None,
        };
        if g == Geometry::Pfnmap {
            r.error = Some("modelled only: no struct pages to create (a real PFN map is measured by the fsdax/pfnmap suite)".into());
            results.push(r);
            continue;
        }
        for i in 0..repeat {
            eprintln!("foliobench: memmap {g} sample {}/{repeat}", i + 1);
            let sample = memmap::measure(prov, g, probes);
            // A signal may also have killed ndctl itself (same process group): that is an
            // interruption, not a result.
            if interrupted.load(Ordering::Relaxed) {
                return Err(env("interrupted: namespace restored, no results written"));
            }
            match sample {
                Ok(s) => r.samples.push(s),
                Err(e) => {
                    r.error = Some(e.to_string());
                    break;
                }
            }
        }
        r.checks = checks(&r.model, &r.samples, nr_memmap);
        results.push(r);
    }
    Ok(results)
}
