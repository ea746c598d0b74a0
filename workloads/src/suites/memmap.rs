//! The memmap suite: struct page cost, memmap init and teardown time per geometry, from
//! vmstat, the probes, the free memory a teardown gives back and the model side by side. A
//! sample is one namespace creation from the namespace disabled (a known state), then its
//! teardown.
//!
//! Timed samples run with only the entry and exit of `memmap_init_zone_device` and
//! `devm_memremap_pages` attached (one pair each per creation, one attachment for all the
//! samples of a geometry): the per-page initialiser is traced by kprobe on Debian's kernels,
//! one per struct page, which made creation several times slower and memmap init two orders
//! of magnitude. The counts (struct pages initialised, vmemmap pages allocated) come from one
//! more sample with every other probe counting, after a warm-up creation under the same
//! attachment (which must count the same); its `devm_memremap_pages` time gives the probe
//! effect. The per-page initialiser counts in a sample of its own, where only it can. These
//! traced samples come first, so that the timed ones never follow another geometry.

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, counting, Filter, ProbeStorage, Tracer};
use foliobench_reports::clock::ClockKind;
use foliobench_reports::geometry::{model, Geometry, Map};
use foliobench_reports::memmap::{checks, repeat_check, MemmapResult, MemmapSample};
use foliobench_reports::trace::{since_all, ProbeStats};

use super::{Result, SuiteCtx};
use crate::namespace::{Applied, Provisioner, RunError};
use crate::system::{meminfo_kb, settled_unaccounted_kb, vmstat};

/// The probes every sample times: each fires once per namespace creation. The timed
/// samples attach only these. devm_memremap_pages encloses every other probe of the suite
/// (the vmemmap's population, memmap_init_zone_device and what it calls), so its time in
/// the traced sample over its untraced median is the probe effect, without the noise of
/// ndctl's own work around it.
pub const TIMED_PROBES: &[&str] = &["memmap_init_zone_device", "devm_memremap_pages"];

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

impl super::SuiteRun for Plan {
    type Results = Vec<MemmapResult>;
    const SUITE: foliobench_reports::suite::Suite = foliobench_reports::suite::Suite::Memmap;
    fn run(
        &self,
        ctx: &SuiteCtx,
        probes: &[Resolution],
        _: &mut Vec<String>,
    ) -> Result<Self::Results> {
        let prov = ctx.prov.ok_or_else(|| {
            super::refused(ctx.no_namespace.unwrap_or("no namespace was granted"))
        })?;
        run(self, prov, ctx, probes)
    }
}

/// Measures every geometry `ctx.rounds` times on the provisioned namespace, then once
/// traced.
pub fn run(
    plan: &Plan,
    prov: &Provisioner,
    ctx: &SuiteCtx,
    probes: &[Resolution],
) -> Result<Vec<MemmapResult>> {
    let timed: Vec<Resolution> = probes
        .iter()
        .filter(|r| TIMED_PROBES.contains(&r.probe.as_str()))
        .cloned()
        .collect();
    let size = prov.target.region.size;
    let mut results = Vec::new();
    for &g in &plan.geometries {
        let mut r = MemmapResult {
            geometry: g,
            model: model(g, size, plan.struct_page, plan.optimization),
            samples: vec![],
            traced: None,
            traced_warm_up: None,
            traced_per_page: None,
            checks: vec![],
            error: None,
        };
        if g == Geometry::Pfnmap {
            r.error = Some("modelled only: no struct pages to create (a real PFN map is measured by the fsdax/pfnmap suite)".into());
            results.push(r);
            continue;
        }
        if let Err(e) = measure_geometry(&mut r, prov, ctx, (&timed, probes)) {
            r.error = Some(e.to_string());
        }
        ctx.check_interrupted("namespace restored, no results written")?;
        r.checks = checks(&r.model, &r.samples, r.traced.as_ref(), plan.nr_memmap);
        r.checks.push(r.teardown_check());
        r.checks
            .push(repeat_check(r.traced_warm_up.as_ref(), r.traced.as_ref()));
        results.push(r);
    }
    Ok(results)
}

/// The traced samples of `r`'s geometry (a warm-up creation and the one counted, with every
/// probe but the per-page initialiser; where nothing else counted the struct pages
/// initialised, one more with that initialiser alone), then the timed ones (as many as
/// `ctx.rounds` asks for the precision of its creation, init and teardown times).
fn measure_geometry(
    r: &mut MemmapResult,
    prov: &Provisioner,
    ctx: &SuiteCtx,
    (timed, all): (&[Resolution], &[Resolution]),
) -> Result<(), RunError> {
    let (g, rounds) = (r.geometry, &ctx.rounds);
    // The traced samples first: their warm-up creation is the first of this geometry after
    // another one, which ndctl and the kworkers spend about 10 ms more CPU time on (2M:mem
    // 64.3 against 54.2 and 55.0 ms, 4K:mem 124.1 against 91.0 and 92.5); the timed samples
    // after them are creations of a geometry that was just created.
    eprintln!("foliobench: memmap {g} traced samples (a warm-up creation, then the one whose counts are kept and whose time is the probe effect)");
    let (per_page, counting): (Vec<Resolution>, Vec<Resolution>) =
        all.iter().cloned().partition(|r| r.probe == PER_PAGE_PROBE);
    let s = measure_warm(prov, g, &counting);
    if ctx.is_interrupted() {
        return Ok(());
    }
    let (warm, mut s) = s?;
    r.traced_warm_up = Some(warm);
    if s.init_struct_pages.is_none() && tracer::any_traceable(&per_page) {
        eprintln!("foliobench: memmap {g} counted again with {PER_PAGE_PROBE} alone: no other probe counts the struct pages initialised here");
        let again = measure(prov, g, &per_page);
        if ctx.is_interrupted() {
            return Ok(());
        }
        let again = again?;
        s.init_struct_pages = again.init_struct_pages;
        r.traced_per_page = Some(again);
    }
    r.traced = Some(s);
    {
        // One attachment of the timed probes for every timed sample, each read before and
        // after its creation: attached and detached per sample they cost a load, a
        // trampoline and its teardown each time.
        let mut storage = ProbeStorage::default();
        let tracer = Tracer::start(&mut storage, timed, &Filter::All).map_err(starting)?;
        while rounds.want_more_ns(r.samples.len(), &timings(&r.samples)) {
            eprintln!(
                "foliobench: memmap {g} sample {} (of {}..{})",
                r.samples.len() + 1,
                rounds.min,
                rounds.max
            );
            let s = sample_under(prov, g, &tracer);
            // A signal may also have killed ndctl itself (same process group): that is an
            // interruption, not a result.
            if ctx.is_interrupted() {
                return Ok(());
            }
            r.samples.push(s?);
        }
    }
    Ok(())
}

/// The per-struct-page initialiser: a `.constprop` clone on Debian's kernels, traced by a
/// kprobe once per struct page (524,288 for 2 GiB at 4K). It counts where nothing else
/// does (base pages on the device, where the altmap's reserve is skipped inside
/// memmap_init_zone_device; a kernel that inlines memmap_init_compound), in a sample of its
/// own: in the traced sample it would make the probe effect its own (2.6x for fsdax:dev).
const PER_PAGE_PROBE: &str = "__init_zone_device_page";

/// Each timing of the samples so far that decides whether to take another: creation,
/// memmap_init_zone_device, teardown. Under the instruction clock, memmap_init_zone_device
/// alone: it repeats to hundredths of a percent there, while the whole ndctl commands wait
/// on udev and I/O, and an idle guest's instruction clock jumps to its next timer
/// (`clock::repeats`): rounds cannot make those repeat.
fn timings(samples: &[MemmapSample]) -> Vec<Vec<u64>> {
    let init = samples.iter().filter_map(|s| s.memmap_init_ns).collect();
    if crate::system::clock().kind == ClockKind::Instructions {
        return vec![init];
    }
    vec![
        samples.iter().map(|s| s.create_ns).collect(),
        init,
        samples.iter().filter_map(|s| s.destroy_ns).collect(),
    ]
}

fn stat<'a>(stats: &'a [ProbeStats], id: &str) -> Option<&'a ProbeStats> {
    stats.iter().find(|s| s.probe == id)
}

/// One creation of geometry `g` from the namespace disabled, with `probes` attached for it
/// alone, then its teardown. The namespace is left disabled.
fn measure(
    prov: &Provisioner,
    g: Geometry,
    probes: &[Resolution],
) -> Result<MemmapSample, RunError> {
    // System-wide: the driver may probe from a kworker, not from ndctl's own context. The
    // timed probes keep their times; the rest count.
    let probes = counting(probes, TIMED_PROBES);
    let mut storage = ProbeStorage::default();
    let tracer = Tracer::start(&mut storage, &probes, &Filter::All).map_err(starting)?;
    // The object outlives the teardown's free-memory readings (its probes do not fire
    // there): closed before, its maps (MiBs) would come back through RCU and a work item,
    // possibly after the readings' settling had seen nothing move yet, between the two.
    let s = sample_under(prov, g, &tracer);
    drop(tracer);
    s
}

/// Two creations of `g` under one attachment of `probes`: the first warms, the second is
/// the traced sample. Under emulation the first run of freshly patched code (the probed
/// functions' entries, the BPF programs) is translated anew, which the traced sample would
/// count as the probes' cost: the timed samples' first creation of devdax:4K:dev took 158 ms
/// against 33-50 ms for the next five. The two must count the same: kernel counts are
/// deterministic.
fn measure_warm(
    prov: &Provisioner,
    g: Geometry,
    probes: &[Resolution],
) -> Result<(MemmapSample, MemmapSample), RunError> {
    // Where nr_memmap_pages is accounted, by call path (section_activate, or
    // __populate_section_memmap on 6.11-6.16).
    let probes: Vec<Resolution> = counting(probes, TIMED_PROBES)
        .into_iter()
        .map(|r| Resolution {
            stacks: r.probe == "memmap_pages_add",
            ..r
        })
        .collect();
    let mut storage = ProbeStorage::default();
    let tracer = Tracer::start(&mut storage, &probes, &Filter::All).map_err(starting)?;
    let warm = sample_under(prov, g, &tracer)?;
    Ok((warm, sample_under(prov, g, &tracer)?))
}

/// One sample with `tracer` already attached: its counts are what the probes counted
/// between a read just before the creation and one just after.
fn sample_under(
    prov: &Provisioner,
    g: Geometry,
    tracer: &Tracer,
) -> Result<MemmapSample, RunError> {
    sample(prov, g, |create| {
        let before = tracer.read();
        let applied = create()?;
        Ok((applied, since_all(&tracer.read(), &before)))
    })
}

fn starting(e: anyhow::Error) -> RunError {
    RunError::Failed(format!("starting probes: {e:#}"))
}

/// The creation of `g` run by `traced` (which returns what its probes counted), from the
/// namespace disabled, with what vmstat and the free memory say around it; then its
/// teardown. The namespace is left disabled.
fn sample(
    prov: &Provisioner,
    g: Geometry,
    traced: impl FnOnce(
        &dyn Fn() -> Result<Applied, RunError>,
    ) -> Result<(Applied, Vec<ProbeStats>), RunError>,
) -> Result<MemmapSample, RunError> {
    prov.ensure_disabled()?;
    let vm_before = vmstat("nr_memmap_pages");
    let free_before = meminfo_kb("MemFree");
    let (applied, stats) = traced(&|| prov.apply(g))?;
    let vm_after = vmstat("nr_memmap_pages");
    let free_after = meminfo_kb("MemFree");
    // No probe fires in the teardown: what it gives back to the page allocator is the
    // memmap in RAM and its page tables, with no BPF object's memory mixed in.
    let held = settled_unaccounted_kb();
    let destroy = prov.disable()?;
    let vm_destroyed = vmstat("nr_memmap_pages");
    let released = settled_unaccounted_kb();

    let zone = stat(&stats, "memmap_init_zone_device");
    let alloc = stat(&stats, "vmemmap_alloc_block_buf");
    let block = stat(&stats, "vmemmap_alloc_block");
    Ok(MemmapSample {
        create_ns: applied.took.elapsed.as_nanos() as u64,
        destroy_ns: Some(destroy.elapsed.as_nanos() as u64),
        create_busy_ns: applied.took.cpu_busy.map(|d| d.as_nanos() as u64),
        destroy_busy_ns: destroy.cpu_busy.map(|d| d.as_nanos() as u64),
        nr_memmap_pages_delta: vm_before.zip(vm_after).map(|(b, a)| a - b),
        nr_memmap_pages_left: vm_before.zip(vm_destroyed).map(|(b, a)| a - b),
        memfree_delta_kb: free_before.zip(free_after).map(|(b, a)| a - b),
        teardown_freed_kb: held.zip(released).map(|(b, a)| b - a),
        // vmemmap_alloc_block_buf also serves altmap (device) allocations: RAM only for mem.
        probe_ram_vmemmap_pages: alloc
            .filter(|a| g.map() == Some(Map::Mem) && a.calls > 0)
            .map(|a| a.arg_values.iter().map(|(size, n)| size * n).sum::<u64>() / 4096),
        vmemmap_page_tables: page_tables(
            block,
            alloc,
            g,
            vm_before.zip(vm_after).map(|(b, a)| a - b),
        ),
        memmap_init_ns: zone.filter(|z| z.returns > 0).map(|z| z.total_ns),
        memremap_ns: stat(&stats, "devm_memremap_pages")
            .filter(|z| z.returns > 0)
            .map(|z| z.total_ns),
        memmap_init_nr_pages: zone
            .filter(|z| z.calls > 0 && z.arg_name.is_some())
            .map(|z| z.arg_sum),
        memmap_pages_added: stat(&stats, "memmap_pages_add")
            .filter(|a| a.arg_name.is_some())
            .map(|a| a.arg_sum as i64),
        memmap_pages_add_stacks: stat(&stats, "memmap_pages_add")
            .map(|a| a.stacks.clone())
            .unwrap_or_default(),
        init_struct_pages: struct_pages_initialised(&stats, g),
        usable_size: applied.usable_size(),
    })
}

/// Page-table pages the vmemmap's mapping took: every vmemmap_alloc_block call but those
/// vmemmap_alloc_block_buf made for RAM blocks (all of its calls without an altmap; with
/// one, --map=dev, it takes none from RAM: vmemmap_can_optimize() is false with an altmap,
/// so every block comes from the device). Needs both probes' counts, else unknown.
fn page_tables(
    block: Option<&ProbeStats>,
    buf: Option<&ProbeStats>,
    g: Geometry,
    vmemmap_pages: Option<i64>,
) -> Option<u64> {
    // A probe that did not attach has no stats.
    let block = block?;
    let block_pages = pages_allocated(block);
    if g.map() != Some(Map::Mem) {
        return Some(block_pages);
    }
    // The RAM blocks among them: vmemmap_alloc_block_buf's, where it is called at all (a
    // kernel that inlines it into its callers, as Debian's 7.3, calls the symbol never);
    // else nr_memmap_pages' delta (6.11+). The allocator's own count comes first: Debian's
    // 6.16 accounts the whole memmap in nr_memmap_pages (8192 pages for 2 GiB at 2M) where
    // the optimised vmemmap allocated 2048.
    let ram_pages = match (buf, vmemmap_pages) {
        (Some(b), _) if b.calls > 0 => pages_allocated(b),
        (_, Some(d)) if d >= 0 => d as u64,
        _ => return None,
    };
    // Fewer pages than RAM blocks cannot happen in this kernel code: unknown, not 0.
    block_pages.checked_sub(ram_pages)
}

/// Pages an allocator probe handed out: its `size` arguments summed, in 4 KiB pages.
fn pages_allocated(p: &ProbeStats) -> u64 {
    if p.arg_values.is_empty() {
        return p.calls;
    }
    p.arg_values.iter().map(|(size, n)| size * n).sum::<u64>() / 4096
}

/// Struct pages memmap_init_zone_device initialised, from the callers' arguments where they
/// are exact: memmap_init_compound's nr_pages summed (head and tails, compound_nr_pages()),
/// memmap_init_zone_device's nr_pages for base pages in RAM. With an altmap that range
/// includes the pfns the device keeps for the struct pages themselves, so base pages on the
/// device count the per-page initialiser's calls: a clone that may serve only some call
/// sites, and then is absent rather than wrong.
fn struct_pages_initialised(stats: &[ProbeStats], g: Geometry) -> Option<u64> {
    let called = |id: &str| stat(stats, id).filter(|p| p.calls > 0);
    let nr_pages = |id: &str| {
        called(id)
            .filter(|p| p.arg_name.is_some())
            .map(|p| p.arg_sum)
    };
    match (g.vmemmap_shift(), g.map()) {
        (0, Some(Map::Mem)) => nr_pages("memmap_init_zone_device"),
        (0, _) => called(PER_PAGE_PROBE).map(|p| p.calls),
        // Where memmap_init_compound is inlined (or not traceable), the initialiser's calls.
        _ => nr_pages("memmap_init_compound").or_else(|| called(PER_PAGE_PROBE).map(|p| p.calls)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foliobench_reports::facts::{Flavour, Group};
    use foliobench_reports::trace::ProbeStats;

    fn alloc(id: &str, sizes: Vec<(u64, u64)>) -> ProbeStats {
        ProbeStats {
            probe: id.into(),
            group: Group::Vmemmap,
            function: id.into(),
            flavour: Flavour::Fentry,
            calls: sizes.iter().map(|(_, n)| n).sum(),
            returns: 0,
            total_ns: 0,
            latency_log2: vec![],
            arg_name: Some("size".into()),
            arg_log2: vec![],
            arg_sum: sizes.iter().map(|(s, n)| s * n).sum(),
            arg_values: sizes,
            arg_values_dropped: 0,
            stacks: vec![],
            outside_vmas: 0,
        }
    }

    /// Seen, 2 GiB: 6.12 calls vmemmap_alloc_block_buf for every RAM block; Debian's 7.3
    /// never calls the symbol (inlined into its callers), and vmemmap_alloc_block's pages
    /// less nr_memmap_pages' delta still give the page tables: 0 / 16 / 16.
    #[test]
    fn page_tables_are_the_allocations_that_are_not_vmemmap() {
        let g = |s: &str| s.parse::<Geometry>().unwrap();
        const P: u64 = 4096;
        const PMD: u64 = 2 << 20;
        // 6.12, 2M:mem: 2048 vmemmap pages and 16 PTE tables.
        let block = alloc("vmemmap_alloc_block", vec![(P, 2064)]);
        let buf = alloc("vmemmap_alloc_block_buf", vec![(P, 2048)]);
        assert_eq!(
            page_tables(Some(&block), Some(&buf), g("devdax:2M:mem"), Some(2048)),
            Some(16)
        );
        assert_eq!(
            page_tables(Some(&block), Some(&buf), g("devdax:2M:mem"), None),
            Some(16)
        );
        // 6.16: nr_memmap_pages counts the whole memmap (8192), the allocator 2048.
        assert_eq!(
            page_tables(Some(&block), Some(&buf), g("devdax:2M:mem"), Some(8192)),
            Some(16)
        );
        // 7.3: the buf symbol is never called.
        let unused = alloc("vmemmap_alloc_block_buf", vec![]);
        assert_eq!(
            page_tables(Some(&block), Some(&unused), g("devdax:2M:mem"), Some(2048)),
            Some(16)
        );
        assert_eq!(
            page_tables(Some(&block), Some(&unused), g("devdax:2M:mem"), None),
            None
        );
        // 4K:mem, PMD-mapped: 16 blocks of 2 MiB are all vmemmap.
        let pmd = alloc("vmemmap_alloc_block", vec![(PMD, 16)]);
        assert_eq!(
            page_tables(Some(&pmd), Some(&unused), g("devdax:4K:mem"), Some(8192)),
            Some(0)
        );
        // 1G:mem: 4 vmemmap pages and 16 PTE tables.
        let one_g = alloc("vmemmap_alloc_block", vec![(P, 20)]);
        assert_eq!(
            page_tables(Some(&one_g), Some(&unused), g("devdax:1G:mem"), Some(4)),
            Some(16)
        );
        // An altmap: every RAM allocation is a page table.
        assert_eq!(
            page_tables(
                Some(&alloc("vmemmap_alloc_block", vec![])),
                None,
                g("devdax:2M:dev"),
                Some(8192)
            ),
            Some(0)
        );
        assert_eq!(
            page_tables(None, Some(&buf), g("devdax:2M:mem"), Some(2048)),
            None
        );
    }

    /// The traced sample leaves the per-page initialiser out; the struct pages initialised
    /// are then unknown exactly where a sample of its own must count them: base pages on the
    /// device (the altmap's reserve skipped), or memmap_init_compound inlined (7.3).
    #[test]
    fn struct_pages_need_the_per_page_sample_only_where_nothing_else_counts_them() {
        let g = |s: &str| s.parse::<Geometry>().unwrap();
        let called = |id: &str, calls: u64, arg_sum: u64| ProbeStats {
            arg_sum,
            calls,
            ..alloc(id, vec![])
        };
        // 6.12, 2 GiB: memmap_init_zone_device's nr_pages, memmap_init_compound's summed.
        let traced = vec![
            called(TIMED_PROBES[0], 1, 524288),
            called("memmap_init_compound", 1024, 131072),
        ];
        assert_eq!(
            struct_pages_initialised(&traced, g("devdax:4K:mem")),
            Some(524288)
        );
        assert_eq!(
            struct_pages_initialised(&traced, g("devdax:2M:mem")),
            Some(131072)
        );
        assert_eq!(struct_pages_initialised(&traced, g("devdax:4K:dev")), None);
        assert_eq!(struct_pages_initialised(&traced, g("fsdax:dev")), None);
        // The per-page sample: one call per struct page past the device's reserve.
        let per_page = vec![called(PER_PAGE_PROBE, 515584, 0)];
        assert_eq!(
            struct_pages_initialised(&per_page, g("devdax:4K:dev")),
            Some(515584)
        );
        // 7.3: memmap_init_compound resolves but is never called.
        let inlined = vec![
            called(TIMED_PROBES[0], 1, 524288),
            called("memmap_init_compound", 0, 0),
        ];
        assert_eq!(struct_pages_initialised(&inlined, g("devdax:2M:mem")), None);
        assert_eq!(
            struct_pages_initialised(&[called(PER_PAGE_PROBE, 131072, 0)], g("devdax:2M:mem")),
            Some(131072)
        );
    }
}
