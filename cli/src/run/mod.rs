//! `foliobench run --suite memmap,pin,rmap,fsdax`: the measurement suites, one results file.
//! This module checks the arguments into each suite's plan (its submodules), takes the
//! namespace (if a suite needs one), runs the suites' loops (`workloads::suites`) and
//! restores the namespace.

use anyhow::Result;
use foliobench_ebpf::catalog::{self, Flavour, Resolution};
use foliobench_ebpf::kernel::KernelFacts;
use foliobench_reports::geometry::Geometry;
use foliobench_reports::pin::PinMemory;
use foliobench_reports::precision::Rounds;
use foliobench_reports::results::{Context, Machine, Results};
use foliobench_reports::scaling;
use foliobench_reports::suite::Suite;
use foliobench_workloads::kconfig::KernelConfig;
use foliobench_workloads::namespace::{self, Provisioner, RunError, Target};
use foliobench_workloads::suites::{self, SuiteCtx};
use foliobench_workloads::system;

use crate::exit::{env, usage, Code};
use crate::output::OutputArgs;
use crate::units::parse_size;

mod fsdax;
mod hugetlb;
mod memmap;
mod pin;
mod planned;
mod rmap;

use planned::{PlannedSuite, SuiteResults};

/// What a sweep measures: shared by `run` and `ab` (which passes it on to `run` in the
/// guest).
#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// The suites to run, comma-separated or repeated: memmap, pin, rmap, fsdax (run:
    /// required; ab: memmap,rmap by default, pin's 1 GiB rounds on every geometry taking
    /// most of an hour per kernel under TCG).
    #[arg(long, value_delimiter = ',')]
    pub suite: Vec<String>,
    /// What to measure; default: all. memmap: devdax:4K|2M|1G:mem|dev, fsdax:mem|dev,
    /// pfnmap. pin: the same (but pfnmap) and anon:4K, anon:thp.
    #[arg(long = "geometry", value_name = "G")]
    pub geometries: Vec<String>,
    /// Samples per geometry (memmap) or timed rounds per measurement (pin, rmap, fsdax) at
    /// least; at least 4 for a timing difference to be significant at 0.05.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Timed rounds at most: past --repeat, rounds go on while a timing's 95% confidence
    /// interval of the median is wider than --precision (6 rounds are the fewest that have
    /// one). Default: twice --repeat. Equal to --repeat: exactly that many.
    #[arg(long, value_name = "N")]
    pub max_repeat: Option<usize>,
    /// The precision wanted of each timing, in percent of its median (half the width of
    /// its 95% confidence interval, order statistics).
    #[arg(long, default_value_t = 5.0, value_name = "PCT")]
    pub precision: f64,
    /// pin: bytes pinned per round (a multiple of every geometry's alignment: 1G for
    /// devdax:1G); rmap: bytes of anonymous memory per round (whole PMD folios); fsdax:
    /// the file mapped on each filesystem (whole 2M pieces). Default: run 1G, ab 256M.
    /// run: a comma-separated list (256M,512M,1G) measures each size in turn, writes one
    /// results file per size (r.json: r-256M.json, ...) and the cost per GiB across them.
    #[arg(long)]
    pub size: Option<String>,
    /// rmap: folio sizes (4K, each mTHP size the kernel offers, the PMD size); default all.
    #[arg(long = "folio-size", value_delimiter = ',', value_name = "S")]
    pub folio_sizes: Vec<String>,
    /// pin: the drivers, comma-separated or repeated: io_uring, odirect, gup_test, xdp_umem
    /// (AF_XDP UMEM registration: a long-term pin on every kernel); default io_uring,
    /// odirect, gup_test (those this kernel lacks are reported as skipped).
    #[arg(long = "driver", value_delimiter = ',', value_name = "D")]
    pub drivers: Vec<String>,
}

impl SweepArgs {
    /// The same options as `run` arguments (for the guest).
    pub fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--suite".to_string(),
            self.suite.join(","),
            "--repeat".into(),
            self.repeat.to_string(),
            "--precision".into(),
            self.precision.to_string(),
        ];
        if let Some(m) = self.max_repeat {
            v.extend(["--max-repeat".into(), m.to_string()]);
        }
        for g in &self.geometries {
            v.extend(["--geometry".into(), g.clone()]);
        }
        if let Some(s) = &self.size {
            v.extend(["--size".into(), s.clone()]);
        }
        if !self.folio_sizes.is_empty() {
            v.extend(["--folio-size".into(), self.folio_sizes.join(",")]);
        }
        if !self.drivers.is_empty() {
            v.extend(["--driver".into(), self.drivers.join(",")]);
        }
        v
    }

    /// What can be checked without a kernel: suites, size, repeat.
    pub fn check(&self) -> Result<()> {
        if self.suite.is_empty() {
            return Err(usage(format!(
                "--suite is required: one or more of {}",
                Suite::names()
            )));
        }
        let chosen = suites(&self.suite)?;
        let sizes = self.sizes();
        for s in &sizes {
            parse_size("--size", s)?;
        }
        if sizes.len() > 1 && chosen.contains(&Suite::Memmap) {
            return Err(usage(
                "--size with several sizes is for pin, rmap and fsdax: memmap measures the whole namespace (size it with `vm --pmem`, one boot per size, and give the results files to `report`)",
            ));
        }
        if self.repeat == 0 {
            return Err(usage(
                "--repeat must be at least 1 (4 or more for significance)",
            ));
        }
        if self.max_repeat.is_some_and(|m| m < self.repeat) {
            return Err(usage(format!(
                "--max-repeat must be at least --repeat ({})",
                self.repeat
            )));
        }
        if !(self.precision > 0.0 && self.precision < 100.0) {
            return Err(usage(format!(
                "--precision {} is not a percentage between 0 and 100 (e.g. 5)",
                self.precision
            )));
        }
        Ok(())
    }

    /// The sizes asked for, in order (empty: the default).
    pub fn sizes(&self) -> Vec<String> {
        self.size
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .collect()
    }

    /// How many timed rounds each measurement takes.
    pub fn rounds(&self) -> Rounds {
        Rounds {
            min: self.repeat,
            max: self.max_repeat.unwrap_or(self.repeat * 2),
            target_pct: self.precision,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// The namespace foliobench may reconfigure (its data is destroyed; its configuration
    /// is restored). Inside `foliobench vm` the emulated pmem is granted by default.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Exit 1 (after writing the results) when a check says MISMATCH or a requested
    /// geometry errored: for CI that runs one kernel and has nothing to compare with.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A namespace's or a suite's error as foliobench's: refused is the user's to fix (exit 2),
/// else exit 3.
pub(crate) fn run_err(e: RunError) -> anyhow::Error {
    match e {
        RunError::Refused(m) => usage(m),
        RunError::Failed(m) => env(m),
    }
}

fn mode_map(n: &foliobench_workloads::pmem::Namespace) -> String {
    format!(
        "{} map={}",
        n.mode.as_deref().unwrap_or("?"),
        n.map.as_deref().unwrap_or("-")
    )
}

/// Which suites, in the canonical order, without repeats.
pub(crate) fn suites(given: &[String]) -> Result<Vec<Suite>> {
    let given: Vec<Suite> = given
        .iter()
        .map(|s| s.parse::<Suite>().map_err(usage))
        .collect::<Result<_>>()?;
    Ok(Suite::ALL
        .into_iter()
        .filter(|s| given.contains(s))
        .collect())
}

/// Splits --geometry between the suites: anon:* and hugetlb:* are the pin suite's, pfnmap
/// the memmap suite's; the rest go to both.
fn split_geometries(
    given: &[String],
    memmap: bool,
    pin: bool,
) -> Result<(Vec<Geometry>, Vec<PinMemory>)> {
    if given.is_empty() {
        return Ok((Geometry::all(), PinMemory::all()));
    }
    let (mut geometries, mut memories) = (Vec::new(), Vec::new());
    for g in given {
        let is_anon = g.trim().starts_with("anon:") || g.trim().starts_with("hugetlb:");
        let is_pfnmap = g.trim() == "pfnmap";
        if is_anon && !pin {
            return Err(usage(format!(
                "--geometry {g}: anonymous and HugeTLB memory are pinned by the pin suite (--suite pin); the hugetlb suite takes its page sizes from --size and the kernel"
            )));
        }
        if is_pfnmap && !memmap {
            return Err(usage(format!(
                "--geometry {g}: {}",
                "pfnmap".parse::<PinMemory>().unwrap_err()
            )));
        }
        if memmap && !is_anon {
            geometries.push(g.parse::<Geometry>().map_err(|e| usage(e.to_string()))?);
        }
        if pin && !is_pfnmap {
            memories.push(g.parse::<PinMemory>().map_err(usage)?);
        }
    }
    Ok((geometries, memories))
}

/// What a run will do, checked before anything is changed.
struct RunPlan {
    suites: Vec<Suite>,
    rounds: Rounds,
    /// Each suite's plan, in the suites' order (the PFN-map row with the fsdax suite's).
    planned: Vec<Box<dyn PlannedSuite>>,
    /// The namespace to reconfigure, if a suite needs one and one is granted.
    target: Option<Target>,
    /// Why there is none, when the pin suite goes on without (its dax rows skipped).
    no_namespace: Option<String>,
}

impl RunPlan {
    fn has(&self, suite: Suite) -> bool {
        self.suites.contains(&suite)
    }
}

/// Checks the arguments into every suite's plan and takes the namespace (if one is needed).
fn plan(a: &SweepArgs, granted: Option<&str>) -> Result<RunPlan> {
    let size_text = a.size.clone().unwrap_or_else(|| "1G".into());
    let size = parse_size("--size", &size_text)?;
    let suites = suites(&a.suite)?;
    let has = |s: Suite| suites.contains(&s);
    let (do_memmap, do_pin) = (has(Suite::Memmap), has(Suite::Pin));
    let fsdax = has(Suite::Fsdax)
        .then(|| fsdax::check_size(size))
        .transpose()?;
    if !has(Suite::Rmap) && !a.folio_sizes.is_empty() {
        return Err(usage("--folio-size is for the rmap suite (--suite rmap)"));
    }
    let hugetlb = has(Suite::Hugetlb)
        .then(|| hugetlb::plan(size))
        .transpose()?;
    let rmap = has(Suite::Rmap)
        .then(|| rmap::plan(&a.folio_sizes, size))
        .transpose()?;
    let (geometries, memories) = split_geometries(&a.geometries, do_memmap, do_pin)?;

    // A namespace is needed for the memmap suite and for dax memories. With the default
    // sweep and none granted (e.g. on the host), the pin suite still measures anonymous
    // memory and reports the dax rows as skipped.
    let wants_dax = (do_pin && memories.iter().any(|m| m.geometry().is_some()))
        || rmap.as_ref().is_some_and(|p| p.fsdax);
    let named_dax =
        (do_pin && !a.geometries.is_empty()) || rmap.as_ref().is_some_and(|p| p.fsdax_named);
    if do_pin && !a.geometries.is_empty() {
        // Memories named on the command line are checked before anything else is.
        pin::plan(memories.clone(), &a.drivers, size, true)?;
    }
    let mut no_namespace = None;
    let target: Option<Target> = if do_memmap || fsdax.is_some() || wants_dax {
        match namespace::choose(granted) {
            Ok(t) => Some(t),
            Err(RunError::Refused(why))
                if !do_memmap && fsdax.is_none() && !named_dax && granted.is_none() =>
            {
                no_namespace = Some(why);
                None
            }
            Err(e) => return Err(run_err(e)),
        }
    } else {
        None
    };
    let mut pin = do_pin
        .then(|| pin::plan(memories, &a.drivers, size, target.is_some()))
        .transpose()?;
    if let (Some(p), true) = (pin.as_mut(), a.geometries.is_empty()) {
        pin::map_dev_only(p, foliobench_workloads::system::clock().kind);
    }
    let pfnmap = fsdax.is_some() || (do_memmap && geometries.contains(&Geometry::Pfnmap));
    // The suites' order: memmap, pin, rmap, hugetlb, then fsdax with the PFN-map row.
    let mut planned: Vec<Box<dyn PlannedSuite>> = Vec::new();
    if do_memmap {
        planned.push(Box::new(memmap::Memmap { geometries }));
    }
    if let Some(p) = pin {
        planned.push(Box::new(p));
    }
    if let Some(p) = rmap {
        planned.push(Box::new(p));
    }
    if let Some(p) = hugetlb {
        planned.push(Box::new(p));
    }
    if fsdax.is_some() || pfnmap {
        planned.push(Box::new(fsdax::FsdaxAndPfnmap {
            fsdax,
            pfnmap,
            drivers: a.drivers.clone(),
        }));
    }
    let plan = RunPlan {
        suites,
        rounds: a.rounds(),
        planned,
        target,
        no_namespace,
    };
    check_fits(&plan, &size_text)?;
    Ok(plan)
}

/// Every geometry, file and mapping of the plan fits the namespace taken.
fn check_fits(plan: &RunPlan, size_text: &str) -> Result<()> {
    let Some(t) = &plan.target else {
        return Ok(());
    };
    plan.planned.iter().try_for_each(|p| p.fits(t, size_text))
}

/// What the run needs of the kernel: the model's inputs and every suite's probes.
struct KernelSide {
    release: String,
    struct_page: u64,
    optimization: bool,
    nr_memmap: bool,
    /// Each planned suite's probes (its catalog groups, resolved on this kernel).
    probes: Vec<(Suite, Vec<Resolution>)>,
    /// The probes that will be attached, for the results' context.
    used: Vec<Resolution>,
}

impl KernelSide {
    fn probes_of(&self, suite: Suite) -> &[Resolution] {
        self.probes
            .iter()
            .find(|(s, _)| *s == suite)
            .map_or(&[], |(_, p)| p.as_slice())
    }
}

/// Reads the kernel's facts (BTF, config, vmstat) and resolves the probes of the suites
/// planned; what cannot be used goes to the notes.
fn kernel_side(plan: &RunPlan, notes: &mut Vec<String>) -> KernelSide {
    let release = system::kernel_release();
    let facts = KernelFacts::probe();
    let struct_page_size = facts.btf.as_ref().ok().and_then(|b| b.struct_size("page"));
    let sp = crate::doctor::struct_page(
        struct_page_size,
        KernelConfig::find(&release).as_ref(),
        &release,
    );
    let struct_page = struct_page_size.unwrap_or_else(|| {
        notes.push("sizeof(struct page) not in BTF: the model assumes 64".into());
        64
    });
    notes.push(format!("vmemmap optimization: {}", sp.optimization.reason));
    let nr_memmap = system::vmstat("nr_memmap_pages").is_some();
    if plan.has(Suite::Memmap) && !nr_memmap {
        notes.push("this kernel has no /proc/vmstat nr_memmap_pages (added in 6.11): vmstat figures are absent".into());
    }
    let mut used: Vec<Resolution> = Vec::new();
    let mut untraceable: Vec<String> = Vec::new();
    let probes = plan
        .suites
        .iter()
        .map(|&s| {
            let groups = suites::probe_groups(s);
            (
                s,
                resolve(&facts, groups, notes, &mut used, &mut untraceable),
            )
        })
        .collect();
    if !untraceable.is_empty() {
        notes.push(format!(
            "probes not used, {NO_TRACING}: {}",
            untraceable.join(", ")
        ));
    }
    KernelSide {
        release,
        struct_page,
        optimization: sp.optimization.available,
        nr_memmap,
        probes,
        used,
    }
}

/// Says what will be reconfigured and measured, before anything is.
fn announce(plan: &RunPlan) {
    let on_namespace = |wanted: bool| -> Vec<String> {
        plan.planned
            .iter()
            .filter(|p| plan.target.is_some() && p.on_namespace() == wanted)
            .flat_map(|p| p.describe(&plan.rounds))
            .collect()
    };
    // What does not touch the namespace (or all of it, when none is taken): a line each.
    let apart: Vec<String> = if plan.target.is_some() {
        on_namespace(false)
    } else {
        plan.planned
            .iter()
            .flat_map(|p| p.describe(&plan.rounds))
            .collect()
    };
    for line in apart {
        eprintln!("foliobench: plan: {line}");
    }
    let Some(t) = &plan.target else {
        return;
    };
    let orig = &t.namespace;
    eprintln!(
        "foliobench: plan: reconfigure {} ({}, {} MiB, now {}; {}) for {}, then restore it to {}",
        orig.dev,
        t.region.dev,
        t.region.size >> 20,
        mode_map(orig),
        t.grant,
        on_namespace(true).join("; "),
        mode_map(orig),
    );
}

/// Runs the suites' loops in order, each into its part of the results.
fn execute(
    plan: &RunPlan,
    k: &KernelSide,
    ctx: &SuiteCtx,
    notes: &mut Vec<String>,
) -> Result<SuiteResults> {
    let mut out = SuiteResults::default();
    let mut running = planned::Running {
        ctx,
        k,
        notes,
        into: &mut out,
    };
    for p in &plan.planned {
        p.run(&mut running)?;
    }
    Ok(out)
}

/// What the results say about where they came from.
fn context(
    plan: &RunPlan,
    k: &KernelSide,
    started: u64,
    restored: Option<String>,
    notes: Vec<String>,
) -> Context {
    let (cpu, cpu_model) = system::cpu_kind();
    Context {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        kernel_release: k.release.clone(),
        kernel_cmdline: system::kernel_cmdline(),
        cpu,
        cpu_model,
        machine: Some(Machine {
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_kb: system::meminfo_kb("MemTotal").unwrap_or(0).max(0) as u64,
            accelerator: system::vm_accelerator(),
            kernel_package: system::kernel_package(),
            clock: Some(system::clock()),
        }),
        started,
        struct_page: k.struct_page,
        vmemmap_optimization: k.optimization,
        nr_memmap_pages: k.nr_memmap,
        namespace: plan.target.as_ref().map(|t| t.namespace.dev.clone()),
        namespace_size: plan.target.as_ref().map(|t| t.region.size),
        restored,
        probes: k
            .used
            .iter()
            .filter_map(|p| {
                Some(format!(
                    "{} ({} on {})",
                    p.probe,
                    p.flavour.map(Flavour::name)?,
                    p.function.as_deref()?
                ))
            })
            .collect(),
        notes,
        rounds: Some(plan.rounds),
    }
}

pub fn run(args: RunArgs) -> Result<Code> {
    // First: Ctrl-C while the kernel is being probed (seconds under emulation) must also end
    // cleanly, not kill the process half-way.
    let interrupted = crate::exit::interrupt_flag()?;
    args.sweep.check()?;
    let sizes = args.sweep.sizes();
    if sizes.len() <= 1 {
        let (code, _) = run_one(&args, &interrupted)?;
        return Ok(code);
    }
    // Each size checked before any is measured.
    for size in &sizes {
        plan(&at_size(&args.sweep, size), args.namespace.as_deref())?;
    }
    let mut code = Code::Ok;
    let mut runs = Vec::new();
    for size in &sizes {
        let one = RunArgs {
            sweep: at_size(&args.sweep, size),
            namespace: args.namespace.clone(),
            strict: args.strict,
            output: OutputArgs {
                json: args.output.json,
                out: args.output.out.as_deref().map(|p| per_size_path(p, size)),
            },
        };
        eprintln!("foliobench: size {size}");
        let (c, r) = run_one(&one, &interrupted)?;
        if c != Code::Ok {
            code = c;
        }
        if let Some(p) = &one.output.out {
            eprintln!("foliobench: size {size}: {}", p.display());
        }
        runs.push(r);
    }
    let all: Vec<&Results> = runs.iter().collect();
    print!("{}", scaling::render_text(&scaling::curves(&all)));
    Ok(code)
}

/// The sweep at one of its sizes.
fn at_size(sweep: &SweepArgs, size: &str) -> SweepArgs {
    SweepArgs {
        size: Some(size.to_string()),
        ..sweep.clone()
    }
}

/// `r.json` at size 256M: `r-256M.json`.
fn per_size_path(p: &std::path::Path, size: &str) -> std::path::PathBuf {
    let stem = p
        .file_stem()
        .map_or("results".into(), |s| s.to_string_lossy().into_owned());
    let name = match p.extension() {
        Some(e) => format!("{stem}-{size}.{}", e.to_string_lossy()),
        None => format!("{stem}-{size}"),
    };
    p.with_file_name(name)
}

/// One sweep at one size: its results written (`--out`) and printed.
fn run_one(args: &RunArgs, interrupted: &std::sync::atomic::AtomicBool) -> Result<(Code, Results)> {
    let plan = plan(&args.sweep, args.namespace.as_deref())?;
    let mut notes = Vec::new();
    let kernel = kernel_side(&plan, &mut notes);
    if let Some(why) = &plan.no_namespace {
        notes.push(format!("dax memories not measured: {why}"));
    }
    announce(&plan);
    if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(env(
            "interrupted before anything was changed: no results written",
        ));
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut prov = plan
        .target
        .clone()
        .map(Provisioner::begin)
        .transpose()
        .map_err(run_err)?;
    let ctx = SuiteCtx {
        prov: prov.as_ref(),
        no_namespace: plan.no_namespace.as_deref(),
        rounds: plan.rounds,
        interrupted,
    };
    // On an error the provisioner's drop restores the namespace.
    let results = execute(&plan, &kernel, &ctx, &mut notes)?;
    let restored = match prov.as_mut() {
        Some(p) => {
            p.restore().map_err(run_err)?;
            let r = p.verify_restored().map_err(run_err)?;
            eprintln!("foliobench: restored the namespace, {r}");
            Some(r)
        }
        None => None,
    };
    let report = results.into_results(
        context(&plan, &kernel, started, restored, notes),
        &plan.suites,
    );
    args.output.emit(&report, || report.render_text())?;
    Ok((strict_verdict(&report, args.strict), report))
}

/// With `--strict`, a mismatch or an errored geometry fails the run (exit 1), named on
/// stderr; without, the results say so and the run passes.
fn strict_verdict(report: &Results, strict: bool) -> Code {
    let failures = report.failures();
    if !strict || failures.is_empty() {
        return Code::Ok;
    }
    for f in &failures {
        eprintln!("foliobench: --strict: {f}");
    }
    Code::Regression
}

/// Where function tracing is refused altogether (the host), one note names all the probes.
const NO_TRACING: &str = "neither fentry nor kprobes are usable here";

/// Resolves catalog groups on this kernel; why a probe cannot be used goes to the notes.
fn resolve(
    facts: &KernelFacts,
    groups: &[&str],
    notes: &mut Vec<String>,
    used: &mut Vec<Resolution>,
    untraceable: &mut Vec<String>,
) -> Vec<Resolution> {
    let names: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let selected = catalog::select(&names).expect("groups exist");
    let probes = facts.resolve(&selected);
    for p in &probes {
        match p.flavour {
            Some(_) => used.push(p.clone()),
            None if p.reason.contains(NO_TRACING) => untraceable.push(p.probe.clone()),
            None => notes.push(format!("probe {} not used: {}", p.probe, p.reason)),
        }
    }
    probes
}

/// `foliobench restore`: repair after a killed run.
pub fn restore() -> Result<Code> {
    match namespace::restore_saved(std::time::Duration::from_secs(120)).map_err(run_err)? {
        Some(ns) => println!("foliobench: restored {} to {}", ns.dev, mode_map(&ns)),
        None => println!("foliobench: nothing to restore (no saved namespace state)"),
    }
    match foliobench_workloads::thp::restore_saved(std::time::Duration::from_secs(120))
        .map_err(env)?
    {
        Some(n) => println!("foliobench: restored {n} THP size controls"),
        None => println!("foliobench: no THP size controls to restore"),
    }
    match foliobench_workloads::hugetlb::restore_saved(std::time::Duration::from_secs(120))
        .map_err(env)?
    {
        Some(n) => {
            println!("foliobench: restored {n} HugeTLB pools and vm.hugetlb_optimize_vmemmap")
        }
        None => println!("foliobench: no HugeTLB controls to restore"),
    }
    Ok(Code::Ok)
}
