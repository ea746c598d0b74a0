//! The rmap suite: rmap batching on anonymous memory per folio size (and on a file on
//! fsdax) — wall time per operation, and the `nr_pages` batches the kernel's rmap functions
//! received in a separate traced round.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, any_traceable, counting, Filter, Mark};
use foliobench_reports::geometry::{Geometry, Map};
use foliobench_reports::outcome::Outcome;
use foliobench_reports::precision::Rounds;
use foliobench_reports::rmap::{
    batch_checks, control_checks, folio_checks, hugetlb_checks, FolioCheck, RmapOp, RmapResult,
    RmapSuite, ANON, HUGETLB,
};
use foliobench_reports::trace::ProbeStats;

use super::{failed, refused, Result, SuiteCtx};
use crate::fsdax::{DaxFs, FsKind};
use crate::hugetlb::HugetlbControls;
use crate::namespace::Provisioner;
use crate::rmap::{Folio, Step};
use crate::rmap_round::Round;
use crate::thp::FolioSizes;

pub const METHOD: &str = "per folio size, only that size is enabled (hugepages-<N>kB/enabled = \
    madvise, the others never; restored afterwards) and the memory is MADV_HUGEPAGE (4K: \
    MADV_NOHUGEPAGE); each round maps and faults in fresh memory for pte_remap+fork+munmap, for \
    cow and for dontneed_per_pte (PMD folios are PTE-remapped first, untimed, as in the \
    thread's benchmarks); one untimed warm-up round on an eighth of the size (at least a PMD), \
    the timed rounds untraced, then one traced \
    round whose probe counts are taken just around each operation, on the mapping's VMAs only \
    (a forked child's exit zaps the whole process); every round runs in a \
    fresh helper process (this binary again) bound to one CPU, so that fork copies a small \
    process and its child stays on that CPU; each operation runs as a SCHED_FIFO task (its \
    children SCHED_OTHER) started just after a timer tick, so that neither its child, a kworker \
    nor the tick interrupts it inside its timing (operations shorter than a tick); every timed \
    fork follows an untimed one (the control: the mapping left out), so that the kernel-stack, \
    slab and page-list caches it draws from are alike in every round; every COW starts with \
    this CPU's per-CPU page lists decayed to their floor (/proc/sys/vm/stat_refresh until \
    their high marks stop moving; as root), so that its thousands of allocations refill them \
    alike in every round";

pub struct Plan {
    pub folio_kbs: Vec<u64>,
    pub size: u64,
    pub pmd_kb: u64,
    /// The file-backed case: a file on ext4 -o dax on the namespace (`--folio-size fsdax`).
    pub fsdax: bool,
    /// Whether fsdax was asked for by name (then a missing namespace is an error).
    pub fsdax_named: bool,
    /// HugeTLB page sizes, kB (`--folio-size hugetlb:2M`): fork, munmap and COW of private
    /// HugeTLB memory, whose rmap is per whole folio.
    pub hugetlb_kbs: Vec<u64>,
}

/// The operations on HugeTLB memory: it is never PTE-mapped, so neither PTE-remap nor a
/// per-page COW or MADV_DONTNEED (HugeTLB takes only whole pages) has a HugeTLB form.
const HUGETLB_OPS: [RmapOp; 3] = [RmapOp::Fork, RmapOp::Munmap, RmapOp::Cow];

fn memory_name(folio: Folio) -> &'static str {
    if folio.hugetlb {
        HUGETLB
    } else {
        ANON
    }
}

/// The file-backed case's name in --folio-size and in the results.
pub const FSDAX: &str = "fsdax:mem";

fn skipped(folio: Folio, op: RmapOp, reason: String) -> RmapResult {
    RmapResult {
        op,
        memory: memory_name(folio).into(),
        folio_kb: folio.kb,
        outcome: Outcome::Skipped { reason },
        samples: vec![],
        probes: vec![],
        traced_ns: None,
        control: vec![],
    }
}

impl super::SuiteRun for Plan {
    type Results = RmapSuite;
    const SUITE: foliobench_reports::suite::Suite = foliobench_reports::suite::Suite::Rmap;
    fn run(&self, ctx: &SuiteCtx, probes: &[Resolution], _: &mut Vec<String>) -> Result<RmapSuite> {
        run(self, ctx, probes)
    }
}

/// Runs every operation on every folio size, then the file case.
pub fn run(plan: &Plan, ctx: &SuiteCtx, probes: &[Resolution]) -> Result<RmapSuite> {
    let batched = probes.iter().any(|p| {
        p.probe == "folio_add_anon_rmap_ptes"
            && p.function.as_deref() == Some("folio_add_anon_rmap_ptes")
    });
    let mut suite = RmapSuite {
        size: plan.size,
        repeat: ctx.rounds.min,
        method: METHOD.into(),
        batched_api: batched,
        rmap_functions: probes
            .iter()
            .filter(|p| !p.probe.starts_with("sys_"))
            .map(|p| match (&p.function, p.flavour) {
                (Some(f), Some(m)) => format!("{f} ({})", m.name()),
                (Some(f), None) => format!("{f} (not traceable: {})", p.reason),
                (None, _) => format!("{}: {}", p.probe, p.reason),
            })
            .collect(),
        ..Default::default()
    };
    run_anonymous(plan, ctx, probes, &mut suite)?;
    run_hugetlb(plan, ctx, probes, &mut suite)?;
    if plan.fsdax {
        eprintln!("foliobench: rmap: {FSDAX} file");
        suite.results.extend(file_case(plan, ctx, probes));
    }
    suite.checks = batch_checks(&suite.results, batched, plan.size);
    suite
        .checks
        .extend(hugetlb_checks(&suite.results, plan.size));
    suite.checks.extend(control_checks(&suite.results));
    suite.checks.extend(folio_checks(&suite.folios));
    Ok(suite)
}

/// Every folio size in turn, the only one the THP controls allow (restored afterwards).
fn run_anonymous(
    plan: &Plan,
    ctx: &SuiteCtx,
    probes: &[Resolution],
    suite: &mut RmapSuite,
) -> Result<()> {
    let mut sizes = FolioSizes::begin().map_err(refused)?;
    for &kb in &plan.folio_kbs {
        let ops: Vec<RmapOp> = RmapOp::ALL
            .into_iter()
            .filter(|op| *op != RmapOp::PteRemap || kb == plan.pmd_kb)
            .collect();
        let folio = Folio {
            kb,
            pmd_kb: plan.pmd_kb,
            hugetlb: false,
        };
        match sizes.choose((kb > 4).then_some(kb)) {
            Err(e) => skip_all(
                suite,
                folio,
                &ops,
                &format!("cannot choose the folio size: {e}"),
            ),
            Ok(()) => {
                eprintln!("foliobench: rmap: folio {kb}K");
                measure_into(suite, plan, folio, &ops, ctx, probes);
            }
        }
        ctx.check_interrupted("THP size controls restored, no results written")?;
    }
    sizes.restore().map_err(failed)
}

/// Every HugeTLB page size in turn, from a pool reserved for it (put back as found): twice
/// the round's pages, since COW after fork copies every folio.
fn run_hugetlb(
    plan: &Plan,
    ctx: &SuiteCtx,
    probes: &[Resolution],
    suite: &mut RmapSuite,
) -> Result<()> {
    for &kb in &plan.hugetlb_kbs {
        let folio = Folio {
            kb,
            pmd_kb: plan.pmd_kb,
            hugetlb: true,
        };
        let want = 2 * plan.size / (kb * 1024);
        let round = "a round (its mapping and the COW copies)";
        match HugetlbControls::reserve(kb, want, round) {
            Err(e) => skip_all(suite, folio, &HUGETLB_OPS, &e),
            Ok(mut pool) => {
                eprintln!("foliobench: rmap: HugeTLB {kb}K");
                measure_into(suite, plan, folio, &HUGETLB_OPS, ctx, probes);
                pool.restore().map_err(failed)?;
            }
        }
        ctx.check_interrupted("HugeTLB pool restored, no results written")?;
    }
    Ok(())
}

fn skip_all(suite: &mut RmapSuite, folio: Folio, ops: &[RmapOp], why: &str) {
    for &op in ops {
        suite.results.push(skipped(folio, op, why.to_string()));
    }
}

/// One folio's rows into the suite: measured, or skipped with why.
fn measure_into(
    suite: &mut RmapSuite,
    plan: &Plan,
    folio: Folio,
    ops: &[RmapOp],
    ctx: &SuiteCtx,
    probes: &[Resolution],
) {
    match measure(plan, folio, ops, &ctx.rounds, probes, ctx.interrupted) {
        Ok((rows, check, anon_kb)) => {
            suite.results.extend(rows);
            suite.folios.push(check);
            suite.forking_process_anon_kb = suite.forking_process_anon_kb.max(anon_kb);
        }
        Err(e) => skip_all(suite, folio, ops, &format!("failed: {e:#}")),
    }
}

/// The file case's rows: measured, or skipped with the reason.
fn file_case(plan: &Plan, ctx: &SuiteCtx, probes: &[Resolution]) -> Vec<RmapResult> {
    let row = |op, outcome, (samples, probes, traced_ns)| RmapResult {
        op,
        memory: FSDAX.into(),
        folio_kb: 4,
        outcome,
        samples,
        probes,
        traced_ns,
        control: vec![],
    };
    let ops = [RmapOp::Fault, RmapOp::Munmap];
    let skip = |reason: String| -> Vec<RmapResult> {
        ops.iter()
            .map(|&op| {
                row(
                    op,
                    Outcome::Skipped {
                        reason: reason.clone(),
                    },
                    Default::default(),
                )
            })
            .collect()
    };
    let Some(p) = ctx.prov else {
        return skip("no namespace granted (see the note)".into());
    };
    match measure_fsdax(p, (plan.size, plan.pmd_kb), &ctx.rounds, probes) {
        Ok(mut rows) => ops
            .iter()
            .map(|&op| row(op, Outcome::Measured, rows.remove(&op).unwrap_or_default()))
            .collect(),
        Err(e) => skip(format!("failed: {e:#}")),
    }
}

/// The rows of one folio size, its folio check, and the most anonymous memory (kB) the
/// helper process held before mapping.
type Rows = (Vec<RmapResult>, FolioCheck, Option<u64>);

/// The warm-up round's mapping: an eighth of a timed round's, at least one PMD, whole PMDs.
/// It warms the operations' code paths (and, under emulation, their translation), which
/// does not take a timed round's memory: at 64 MiB a full-size warm-up was an eighth of the
/// suite's time.
fn warm_up_size(size: usize, pmd_kb: u64) -> usize {
    let pmd = pmd_kb as usize * 1024;
    (size / 8).max(pmd).div_ceil(pmd) * pmd
}

fn measure(
    plan: &Plan,
    folio: Folio,
    ops: &[RmapOp],
    rounds: &Rounds,
    probes: &[Resolution],
    interrupted: &AtomicBool,
) -> Result<Rows> {
    let round = |size: usize| Round {
        ops: ops.to_vec(),
        size,
        folio,
        stepped: false,
        file: None,
    };
    let mut noop = |_: Option<RmapOp>, _: Step| {};
    // The folio size obtained is checked on every mapping, warm-up and timed: a round
    // whose mapping fell back to smaller folios would time something else.
    // (Whole HugeTLB pages: a 1G page's warm-up is a whole 1G page.)
    let warm_up =
        round(warm_up_size(plan.size as usize, plan.pmd_kb.max(folio.kb))).run_apart(&mut noop)?;
    let mut checks = warm_up.checks;
    let mut anon_kb = warm_up.anon_kb;
    let mut samples: HashMap<RmapOp, Vec<u64>> = HashMap::new();
    let mut taken = 0;
    // A round runs every operation: rounds go on while any operation's time is imprecise.
    while rounds.want_more_ns(taken, &samples.values().collect::<Vec<_>>()) {
        taken += 1;
        let done = round(plan.size as usize).run_apart(&mut noop)?;
        checks.extend(done.checks);
        anon_kb = anon_kb.max(done.anon_kb);
        for (op, t) in done.times {
            samples.entry(op).or_default().push(t);
        }
        if interrupted.load(Ordering::Relaxed) {
            break;
        }
    }
    let traced_round = Round {
        ops: ops.to_vec(),
        size: plan.size as usize,
        folio,
        stepped: true,
        file: None,
    };
    let ((traced, traced_ns), control) = traced_round_apart(&traced_round, probes)?;
    let rows = ops
        .iter()
        .map(|&op| {
            // Counted on the mapping's VMAs alone: a forked child's exit zaps all of the
            // helper's memory, and the parent's own writes while the child lives are COW
            // faults too, whose number followed the stack's layout (1-2 pages apart between
            // the control and the fork, and between boots). The control, the fork without
            // the mapping, must count none of its calls.
            let probes = traced.get(&op).cloned().unwrap_or_default();
            let control = match op {
                RmapOp::Fork | RmapOp::Cow | RmapOp::CowEachPage => control.clone(),
                _ => vec![],
            };
            RmapResult {
                op,
                memory: memory_name(folio).into(),
                folio_kb: folio.kb,
                outcome: Outcome::Measured,
                samples: samples.remove(&op).unwrap_or_default(),
                probes,
                traced_ns: traced_ns.get(&op).copied(),
                control,
            }
        })
        .collect();
    Ok((rows, FolioCheck::of_every_mapping(checks), anon_kb))
}

/// One round (`stepped`) with the rmap probes loaded once, read just before and after each
/// operation and around the control: the same fork with the mapping left out of the child
/// (MADV_DONTFORK), just before the fork under test (the child's exit zaps the rest of the
/// helper's memory too). Empty when nothing can be traced.
fn traced_round_apart(round: &Round, probes: &[Resolution]) -> Result<(Traced, Vec<ProbeStats>)> {
    if !any_traceable(probes) {
        return Ok(Default::default());
    }
    // The helper is forked after the probes are attached: the filter follows it.
    let (done, t) = tracer::around_vmas(&counting(probes, &[]), &Filter::this_process(), |mark| {
        round.run_apart(&mut |op, step| {
            mark(
                op,
                match step {
                    Step::Before { vmas } => Mark::Start(Some(vmas)),
                    Step::After => Mark::End,
                },
            )
        })
    })?;
    let times = done?.times;
    let mut per_op = HashMap::new();
    let mut control = vec![];
    for (key, stats) in t.spans {
        match key {
            Some(op) => {
                per_op.insert(op, stats);
            }
            None => control = stats,
        }
    }
    Ok(((per_op, times.into_iter().collect()), control))
}

/// Per operation, what the probes counted and how long it took with them attached.
type Traced = (HashMap<RmapOp, Vec<ProbeStats>>, HashMap<RmapOp, u64>);

/// Per operation: the timed samples, the traced round's probes and time.
type FileRows = HashMap<RmapOp, (Vec<u64>, Vec<ProbeStats>, Option<u64>)>;

/// The file-backed case: the namespace as fsdax, ext4 -o dax on it, one file mapped shared;
/// each round faults it in and unmaps it (`rmap::run_file`), in a fresh helper process as
/// the anonymous rounds are. Warm-up, timed rounds, then a traced round.
fn measure_fsdax(
    prov: &Provisioner,
    (size, pmd_kb): (u64, u64),
    rounds: &Rounds,
    probes: &[Resolution],
) -> Result<FileRows> {
    let applied = prov.apply(Geometry::Fsdax { map: Map::Mem })?;
    let dev = applied
        .block_device()
        .ok_or_else(|| failed("ndctl reported no block device"))?;
    let fs = DaxFs::create(std::path::Path::new(&dev), FsKind::Ext4).map_err(failed)?;
    let file = fs.file(size).map_err(failed)?;
    let path = fs.mountpoint.join(crate::fsdax::FILE_NAME);
    let round = |stepped| Round {
        ops: vec![RmapOp::Fault, RmapOp::Munmap],
        size: size as usize,
        folio: Folio {
            kb: 4,
            pmd_kb,
            hugetlb: false,
        },
        stepped,
        file: Some(path.clone()),
    };
    let mut noop = |_: Option<RmapOp>, _: Step| {};
    let mut out: FileRows = HashMap::new();
    round(false).run_apart(&mut noop)?;
    let mut taken = 0;
    while rounds.want_more_ns(taken, &out.values().map(|r| &r.0).collect::<Vec<_>>()) {
        taken += 1;
        for (op, ns) in round(false).run_apart(&mut noop)?.times {
            out.entry(op).or_default().0.push(ns);
        }
    }
    let ((deltas, times), _) = traced_round_apart(&round(true), probes)?;
    for (op, d) in deltas {
        out.entry(op).or_default().1 = d;
    }
    for (op, t) in times {
        out.entry(op).or_default().2 = Some(t);
    }
    drop(file);
    drop(fs);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::warm_up_size;

    #[test]
    fn the_warm_up_is_an_eighth_in_whole_pmds() {
        const M: usize = 1 << 20;
        assert_eq!(warm_up_size(64 * M, 2048), 8 * M);
        assert_eq!(warm_up_size(1024 * M, 2048), 128 * M);
        // Never less than one PMD (a PMD folio must fit), and whole PMDs.
        assert_eq!(warm_up_size(4 * M, 2048), 2 * M);
        assert_eq!(warm_up_size(20 * M, 2048), 4 * M);
    }
}
