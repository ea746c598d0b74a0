//! The hugetlb suite: HugeTLB's vmemmap optimization (HVO) per huge page size, off and on.
//! Each round grows the pool from empty to the pages asked for and shrinks it back, each
//! by one write of `nr_hugepages` (timed), with free memory and `nr_memmap_pages` read
//! around both; a traced round counts the kernel's optimize/restore calls.

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, any_traceable, counting, Filter};
use foliobench_reports::hugetlb::{
    checks, size_name, BootPoolRelease, HugetlbResult, HugetlbSample, HugetlbSuite,
};
use foliobench_reports::outcome::Outcome;
use foliobench_reports::precision::Rounds;
use foliobench_reports::suite::Suite;
use foliobench_reports::trace::ProbeStats;

use super::{failed, refused, Result, SuiteCtx, SuiteRun};
use crate::hugetlb::HugetlbControls;
use crate::system::{settled_free_pages_kb, vm_accelerator, vmstat};

pub const METHOD: &str = "per huge page size, with vm.hugetlb_optimize_vmemmap off then on \
    (it applies to pages allocated from then on): the pool grown from empty to the pages \
    asked for by one write of nr_hugepages and shrunk back to empty by another, each write \
    timed; free memory (buddy and per-CPU lists, settled) and nr_memmap_pages read around \
    each; one untimed warm-up round, the timed rounds untraced, then one traced round \
    counting the vmemmap optimize and restore calls (its probes loaded while the pool \
    holds the pages, so that their memory is not taken from the range the pool gives \
    back); the control and the pools restored \
    afterwards";

pub struct Plan {
    /// Huge page sizes, kB.
    pub page_kbs: Vec<u64>,
    /// Bytes of huge pages per size (at least one page).
    pub size: u64,
    /// sizeof(struct page), for the model.
    pub struct_page: u64,
}

impl SuiteRun for Plan {
    type Results = HugetlbSuite;
    const SUITE: Suite = Suite::Hugetlb;
    fn run(
        &self,
        ctx: &SuiteCtx,
        probes: &[Resolution],
        _: &mut Vec<String>,
    ) -> Result<HugetlbSuite> {
        // Inside foliobench's test VM a pool reserved at boot (1G pages, which run time
        // cannot give there) is released once, then each size measured from empty.
        let (mut controls, boot) = if vm_accelerator().is_some() {
            HugetlbControls::begin_taking_boot_pools(&self.page_kbs)
        } else {
            HugetlbControls::begin(&self.page_kbs).map(|c| (c, vec![]))
        }
        .map_err(refused)?;
        let found = controls.hvo_found();
        let (mut results, mut boot_pools) = (Vec::new(), Vec::new());
        for &kb in &self.page_kbs {
            // A boot pool is released just before its own size's rows, which grow the pool
            // back into the range it frees: released first, that range (a whole GiB for a
            // 1G page) would lie free through the other sizes' rounds and probe loads, for
            // any allocation to split.
            if let Some(&(_, pages)) = boot.iter().find(|&&(b, _)| b == kb) {
                ctx.check_interrupted("HugeTLB controls restored, no results written")?;
                boot_pools.push(
                    release_boot_pool(&controls, kb, pages, found.unwrap_or(false))
                        .map_err(failed)?,
                );
            }
            let pages = (self.size / (kb * 1024)).max(1);
            for hvo in [false, true] {
                ctx.check_interrupted("HugeTLB controls restored, no results written")?;
                let row = |outcome, samples, probes| HugetlbResult {
                    page_kb: kb,
                    hvo,
                    outcome,
                    pages,
                    samples,
                    probes,
                };
                if found.is_none() {
                    let reason = "this kernel has no vm.hugetlb_optimize_vmemmap".to_string();
                    if hvo {
                        results.push(row(Outcome::Skipped { reason }, vec![], vec![]));
                        continue;
                    }
                } else {
                    controls.set_hvo(hvo).map_err(failed)?;
                }
                eprintln!(
                    "foliobench: hugetlb: {} x {pages}, hvo={}",
                    size_name(kb),
                    if hvo { "on" } else { "off" }
                );
                let freed = boot.iter().any(|&(b, _)| b == kb);
                results.push(
                    match measure(&controls, kb, pages, &ctx.rounds, probes, freed) {
                        Ok((samples, probes)) => row(Outcome::Measured, samples, probes),
                        Err(reason) => row(Outcome::Skipped { reason }, vec![], vec![]),
                    },
                );
            }
        }
        controls.restore().map_err(failed)?;
        let mut checks = checks(&results, self.struct_page);
        checks.extend(boot_pools.iter().flat_map(|b| b.checks(self.struct_page)));
        Ok(HugetlbSuite {
            size: self.size,
            repeat: ctx.rounds.min,
            method: METHOD.into(),
            struct_page: self.struct_page,
            hvo_control: found,
            checks,
            results,
            boot_pools,
        })
    }
}

/// Empties a pool reserved at boot, by one timed write, with free memory and the memmap
/// counters read around it. `hvo`: the optimization as the kernel booted.
fn release_boot_pool(
    c: &HugetlbControls,
    kb: u64,
    pages: u64,
    hvo: bool,
) -> std::result::Result<BootPoolRelease, String> {
    eprintln!(
        "foliobench: hugetlb: releasing the boot pool of {pages} {} pages (hvo={} at boot)",
        size_name(kb),
        if hvo { "on" } else { "off" }
    );
    let (f0, m0) = memory()?;
    let took = empty_pool(c, kb, "the boot pool")?;
    let (f1, m1) = memory()?;
    Ok(BootPoolRelease {
        page_kb: kb,
        pages,
        hvo,
        free_ns: took.as_nanos() as u64,
        returned_kb: f1 - f0,
        memmap_pages: delta(m0.0, m1.0),
        memmap_boot_pages: delta(m0.1, m1.1),
    })
}

/// Free memory (settled, kB) and the memmap counters (`nr_memmap_pages`,
/// `nr_memmap_boot_pages`; 6.11+).
type Memory = (i64, (Option<i64>, Option<i64>));

fn memory() -> std::result::Result<Memory, String> {
    let free = settled_free_pages_kb().ok_or("free memory not readable (/proc/zoneinfo)")?;
    Ok((
        free,
        (vmstat("nr_memmap_pages"), vmstat("nr_memmap_boot_pages")),
    ))
}

/// Empties the pool of `kb` pages by one timed write; an error if pages stay in it.
fn empty_pool(
    c: &HugetlbControls,
    kb: u64,
    what: &str,
) -> std::result::Result<std::time::Duration, String> {
    let (took, left) = c.set_pool(kb, 0)?;
    if left != 0 {
        return Err(format!("{what} kept {left} pages after writing 0"));
    }
    Ok(took)
}

/// A counter's change, where the kernel has it.
fn delta(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    a.zip(b).map(|(a, b)| b - a)
}

/// One round: grow the pool to `pages`, shrink it to empty.
fn round(c: &HugetlbControls, kb: u64, pages: u64) -> std::result::Result<HugetlbSample, String> {
    let (f0, m0) = memory()?;
    let (alloc, obtained) = c.set_pool(kb, pages)?;
    let (f1, m1) = memory()?;
    let release = empty_pool(c, kb, "the pool")?;
    let (f2, m2) = memory()?;
    Ok(HugetlbSample {
        obtained,
        alloc_ns: alloc.as_nanos() as u64,
        free_ns: release.as_nanos() as u64,
        taken_kb: f0 - f1,
        returned_kb: f2 - f1,
        memmap_pages_grow: delta(m0.0, m1.0),
        memmap_pages_shrink: delta(m1.0, m2.0),
        memmap_boot_pages_grow: delta(m0.1, m1.1),
        memmap_boot_pages_shrink: delta(m1.1, m2.1),
    })
}

/// Tries of the warm-up round before a size is given up.
const WARM_TRIES: u32 = 5;

/// The warm-up round, tried again (after compacting memory and a pause) while the pool does
/// not grow to `pages` and `retry` (the suite freed a boot pool of this size: the range is
/// there to be had), and how many tries it took. A 1G page needs a whole free, aligned
/// GiB, and kernel memory allocated while that GiB lies free can land in it for good (see
/// `traced_round`): compaction cannot move it, so the tries are for what can.
fn warm_up(
    c: &HugetlbControls,
    kb: u64,
    pages: u64,
    retry: bool,
) -> std::result::Result<(HugetlbSample, u32), String> {
    let mut warm = round(c, kb, pages)?;
    let mut tries = 1;
    while retry && warm.obtained < pages && tries < WARM_TRIES {
        // Best effort: compaction moves what it can out of the way (root only).
        let _ = std::fs::write("/proc/sys/vm/compact_memory", "1");
        std::thread::sleep(std::time::Duration::from_millis(500));
        warm = round(c, kb, pages)?;
        tries += 1;
    }
    if tries > 1 && warm.obtained == pages {
        eprintln!(
            "foliobench: hugetlb: the pool of {} pages grew to {pages} on try {tries} (memory compacted between tries)",
            size_name(kb)
        );
    }
    Ok((warm, tries))
}

/// A warm-up round (`retry`: see `warm_up`), timed rounds while imprecise, then a traced
/// one. Err: why the size
/// cannot be measured here (the pool could not be grown to `pages`).
fn measure(
    c: &HugetlbControls,
    kb: u64,
    pages: u64,
    rounds: &Rounds,
    probes: &[Resolution],
    retry: bool,
) -> std::result::Result<(Vec<HugetlbSample>, Vec<ProbeStats>), String> {
    let (warm, tries) = warm_up(c, kb, pages, retry)?;
    if warm.obtained < pages {
        return Err(format!(
            "the kernel gave {} of {pages} {} pages at run time{} (no free, aligned range that large){}",
            warm.obtained,
            size_name(kb),
            if tries > 1 {
                format!(" in {tries} tries, memory compacted between them")
            } else {
                String::new()
            },
            if kb >= 1 << 20 {
                "; reserve them at boot (vm --append \"hugepagesz=1G hugepages=1\"): inside foliobench's test VM the suite releases that pool once, then grows the pool into the range it freed"
            } else {
                ""
            }
        ));
    }
    let mut samples: Vec<HugetlbSample> = Vec::new();
    loop {
        let times: [Vec<u64>; 2] = [
            samples.iter().map(|s| s.alloc_ns).collect(),
            samples.iter().map(|s| s.free_ns).collect(),
        ];
        if !rounds.want_more_ns(samples.len(), &times) {
            break;
        }
        samples.push(round(c, kb, pages)?);
    }
    let probes = if any_traceable(probes) {
        traced_round(c, kb, pages, probes)?
    } else {
        vec![]
    };
    Ok((samples, probes))
}

/// The traced round, with its probes loaded while the pool holds the pages: loading them
/// allocates unmovable kernel memory (BPF programs, maps, trampolines, the kernel's BTF on
/// the first load of a boot), and when the allocator has to take that from the movable
/// blocks it takes the largest free one first, which is the range the pool has just given
/// back (a reading of the allocator, not traced). Measured on 7.3 (`hugepagesz=1G
/// hugepages=1`, the boot pool released): grown again at once, or after a foliobench
/// command without probes, the pool got its 1G page; after one `foliobench trace` with two
/// probes it got 0, then 0 again; with the probes loaded before the release, 1, and 1 after
/// two more loads. In CI the HVO-on rows could not grow a pool of 1 page in 5 tries right
/// after the HVO-off rows' traced round, whose own grow nothing checked. The pool is
/// emptied under the probes, then the round counted: the emptying is not in it.
fn traced_round(
    c: &HugetlbControls,
    kb: u64,
    pages: u64,
    probes: &[Resolution],
) -> std::result::Result<Vec<ProbeStats>, String> {
    let (_, held) = c.set_pool(kb, pages)?;
    if held < pages {
        return Err(format!(
            "traced round: the pool grew to {held} of {pages} {} pages before the probes were loaded",
            size_name(kb)
        ));
    }
    let (done, mut traced) =
        tracer::around(&counting(probes, &[]), &Filter::this_process(), |hook| {
            empty_pool(c, kb, "the pool, before the traced round")?;
            hook((), true);
            let s = round(c, kb, pages);
            hook((), false);
            s
        })
        .map_err(|e| format!("traced round: {e:#}"))?;
    let s = done?;
    if s.obtained < pages {
        return Err(format!(
            "traced round: the kernel gave {} of {pages} {} pages, so its counts are not the timed rounds' work",
            s.obtained,
            size_name(kb)
        ));
    }
    Ok(traced.spans.pop().map(|(_, s)| s).unwrap_or_default())
}
