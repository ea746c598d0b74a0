//! The memmap suite: struct page cost and memmap init time per geometry, from vmstat, the
//! probes, MemFree and the model side by side. One sample is one namespace creation from the
//! namespace disabled (a known state).

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, Filter};
use foliobench_reports::geometry::{model, Geometry, Map};
use foliobench_reports::memmap::{checks, MemmapResult, MemmapSample};
use foliobench_reports::trace::ProbeStats;

use super::{Result, SuiteCtx};
use crate::namespace::{Provisioner, RunError};
use crate::system::{meminfo_kb, vmstat};

/// What the memmap suite measures, and what its model needs of the kernel.
pub struct Plan {
    pub geometries: Vec<Geometry>,
    /// sizeof(struct page), from BTF.
    pub struct_page: u64,
    /// The kernel side of vmemmap_can_optimize().
    pub optimization: bool,
    /// Whether /proc/vmstat has nr_memmap_pages (6.11+).
    pub nr_memmap: bool,
}

/// Measures every geometry `ctx.repeat` times on the provisioned namespace, each sample one
/// creation from the namespace disabled.
pub fn run(
    plan: &Plan,
    prov: &Provisioner,
    ctx: &SuiteCtx,
    probes: &[Resolution],
) -> Result<Vec<MemmapResult>> {
    let (repeat, size) = (ctx.repeat, prov.target.region.size);
    let mut results = Vec::new();
    for &g in &plan.geometries {
        let m = model(g, size, plan.struct_page, plan.optimization);
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
            let sample = measure(prov, g, probes);
            // A signal may also have killed ndctl itself (same process group): that is an
            // interruption, not a result.
            ctx.check_interrupted("namespace restored, no results written")?;
            match sample {
                Ok(s) => r.samples.push(s),
                Err(e) => {
                    r.error = Some(e.to_string());
                    break;
                }
            }
        }
        r.checks = checks(&r.model, &r.samples, plan.nr_memmap);
        results.push(r);
    }
    Ok(results)
}

fn stat<'a>(stats: &'a [ProbeStats], id: &str) -> Option<&'a ProbeStats> {
    stats.iter().find(|s| s.probe == id)
}

/// Measures one creation of geometry `g`. The namespace is left configured as `g`.
pub fn measure(
    prov: &Provisioner,
    g: Geometry,
    probes: &[Resolution],
) -> Result<MemmapSample, RunError> {
    prov.disable()?;
    let vm_before = vmstat("nr_memmap_pages");
    let free_before = meminfo_kb("MemFree").unwrap_or(0);
    // System-wide: the driver may probe from a kworker, not from ndctl's own context.
    let (applied, stats, _) = tracer::whole(probes, &Filter::All, || prov.apply(g))
        .map_err(|e| RunError::Failed(format!("starting probes: {e:#}")))?;
    let applied = applied?;
    let vm_after = vmstat("nr_memmap_pages");
    let free_after = meminfo_kb("MemFree").unwrap_or(0);

    let zone = stat(&stats, "memmap_init_zone_device");
    let compound = stat(&stats, "memmap_init_compound").filter(|c| c.calls > 0);
    let alloc = stat(&stats, "vmemmap_alloc_block_buf");
    Ok(MemmapSample {
        create_ns: applied.took.as_nanos() as u64,
        nr_memmap_pages_delta: vm_before.zip(vm_after).map(|(b, a)| a - b),
        memfree_delta_kb: free_after - free_before,
        // vmemmap_alloc_block_buf also serves altmap (device) allocations: RAM only for mem.
        probe_ram_vmemmap_pages: alloc
            .filter(|_| g.map() == Some(Map::Mem))
            .map(|a| a.arg_values.iter().map(|(size, n)| size * n).sum::<u64>() / 4096),
        memmap_init_ns: zone.filter(|z| z.returns > 0).map(|z| z.total_ns),
        memmap_init_nr_pages: zone
            .filter(|z| z.calls > 0 && z.arg_name.is_some())
            .map(|z| z.arg_sum),
        // The per-page initialiser's own call count is the work done; the arguments of the
        // callers are the fallback where it cannot be traced (they overstate with altmap).
        init_struct_pages: match (
            stat(&stats, "__init_zone_device_page").filter(|p| p.calls > 0),
            compound,
            zone,
        ) {
            (Some(p), _, _) => Some(p.calls),
            (None, Some(c), _) if c.arg_name.is_some() => Some(c.arg_sum),
            (None, None, Some(z))
                if z.calls > 0 && z.arg_name.is_some() && g.vmemmap_shift() == 0 =>
            {
                Some(z.arg_sum)
            }
            _ => None,
        },
        usable_size: applied.usable_size(),
    })
}
