//! The memmap suite's measurement: one namespace creation per sample, from the namespace
//! disabled (a known state: no memremap), with the memmap and vmemmap probes attached.

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, Filter};
use foliobench_reports::geometry::{Geometry, Map};
use foliobench_reports::memmap::MemmapSample;
use foliobench_reports::trace::ProbeStats;

use crate::namespace::{NamespaceError, Provisioner};
use crate::system::{meminfo_kb, vmstat};

fn stat<'a>(stats: &'a [ProbeStats], id: &str) -> Option<&'a ProbeStats> {
    stats.iter().find(|s| s.probe == id)
}

/// Measures one creation of geometry `g`. The namespace is left configured as `g`.
pub fn measure(
    prov: &Provisioner,
    g: Geometry,
    probes: &[Resolution],
) -> Result<MemmapSample, NamespaceError> {
    prov.disable()?;
    let vm_before = vmstat("nr_memmap_pages");
    let free_before = meminfo_kb("MemFree").unwrap_or(0);
    // System-wide: the driver may probe from a kworker, not from ndctl's own context.
    let (applied, stats, _) = tracer::whole(probes, &Filter::All, || prov.apply(g))
        .map_err(|e| NamespaceError::Failed(format!("starting probes: {e:#}")))?;
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
