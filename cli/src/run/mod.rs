//! `foliobench run --suite memmap,pin,rmap,fsdax`: the measurement suites, one results file.
//! This module checks the arguments into each suite's plan (its submodules), takes the
//! namespace (if a suite needs one), runs the suites' loops (`workloads::suites`) and
//! restores the namespace.

use anyhow::Result;
use foliobench_ebpf::catalog::{self, Flavour, Resolution};
use foliobench_ebpf::kernel::KernelFacts;
use foliobench_reports::geometry::Geometry;
use foliobench_reports::pin::PinMemory;
use foliobench_reports::results::{Context, Machine, Results, RESULTS_SCHEMA_VERSION};
use foliobench_workloads::kconfig::KernelConfig;
use foliobench_workloads::namespace::{self, NamespaceError, Provisioner, Target};
use foliobench_workloads::suites::{self, SuiteCtx, SuiteError};
use foliobench_workloads::system;

use crate::exit::{env, usage, Code};
use crate::output::OutputArgs;
use crate::units::{fmt_size, parse_size};

mod fsdax;
mod pin;
mod rmap;

pub const SUITES: &[&str] = &["memmap", "pin", "rmap", "fsdax"];

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
    /// Samples per geometry (memmap) or timed rounds per memory and driver (pin); at
    /// least 4 for a timing difference to be significant at 0.05.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// pin: bytes pinned per round (a multiple of every geometry's alignment: 1G for
    /// devdax:1G); rmap: bytes of anonymous memory per round (whole PMD folios); fsdax:
    /// the file mapped on each filesystem (whole 2M pieces). Default: run 1G, ab 256M.
    #[arg(long)]
    pub size: Option<String>,
    /// rmap: folio sizes (4K, each mTHP size the kernel offers, the PMD size); default all.
    #[arg(long = "folio-size", value_delimiter = ',', value_name = "S")]
    pub folio_sizes: Vec<String>,
    /// pin: the drivers, comma-separated or repeated: io_uring, odirect, gup_test; default
    /// all (those this kernel lacks are reported as skipped).
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
        ];
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
                SUITES.join(", ")
            )));
        }
        suites(&self.suite)?;
        if let Some(s) = &self.size {
            parse_size("--size", s)?;
        }
        if self.repeat == 0 {
            return Err(usage(
                "--repeat must be at least 1 (4 or more for significance)",
            ));
        }
        Ok(())
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
    #[command(flatten)]
    pub output: OutputArgs,
}

/// A suite's error as foliobench's: refused is the user's to fix (exit 2), else exit 3.
fn suite_err(e: SuiteError) -> anyhow::Error {
    match e {
        SuiteError::Refused(m) => usage(m),
        SuiteError::Failed(m) => env(m),
    }
}

pub(crate) fn ns_err(e: NamespaceError) -> anyhow::Error {
    match e {
        NamespaceError::Refused(m) => usage(m),
        NamespaceError::Failed(m) => env(m),
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
pub(crate) fn suites(given: &[String]) -> Result<Vec<&'static str>> {
    for s in given {
        if !SUITES.contains(&s.as_str()) {
            return Err(usage(format!(
                "unknown suite '{s}': available: {}",
                SUITES.join(", ")
            )));
        }
    }
    Ok(SUITES
        .iter()
        .copied()
        .filter(|s| given.iter().any(|g| g == s))
        .collect())
}

/// Splits --geometry between the suites: anon:* is the pin suite's, pfnmap the memmap
/// suite's; the rest go to both.
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
        let is_anon = g.trim().starts_with("anon:");
        let is_pfnmap = g.trim() == "pfnmap";
        if is_anon && !pin {
            return Err(usage(format!(
                "--geometry {g}: anonymous memory is measured by the pin suite (--suite pin)"
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

pub fn run(args: RunArgs) -> Result<Code> {
    // First: Ctrl-C while the kernel is being probed (seconds under emulation) must also end
    // cleanly, not kill the process half-way.
    let interrupted = crate::exit::interrupt_flag()?;
    args.sweep.check()?;
    let RunArgs {
        sweep: a,
        namespace: granted,
        output,
    } = args;
    let size_text = a.size.clone().unwrap_or_else(|| "1G".into());
    let size = parse_size("--size", &size_text)?;
    let suites = suites(&a.suite)?;
    let (do_memmap, do_pin, do_rmap, do_fsdax) = (
        suites.contains(&"memmap"),
        suites.contains(&"pin"),
        suites.contains(&"rmap"),
        suites.contains(&"fsdax"),
    );
    let fsdax_size = if do_fsdax {
        Some(fsdax::check_size(size)?)
    } else {
        None
    };
    if !do_rmap && !a.folio_sizes.is_empty() {
        return Err(usage("--folio-size is for the rmap suite (--suite rmap)"));
    }
    let rmap_plan = if do_rmap {
        Some(rmap::plan(&a.folio_sizes, size)?)
    } else {
        None
    };
    let (geometries, memories) = split_geometries(&a.geometries, do_memmap, do_pin)?;

    // A namespace is needed for the memmap suite and for dax memories. With the default
    // sweep and none granted (e.g. on the host), the pin suite still measures anonymous
    // memory and reports the dax rows as skipped.
    let wants_dax = (do_pin && memories.iter().any(|m| m.geometry().is_some()))
        || rmap_plan.as_ref().is_some_and(|p| p.fsdax);
    let named_dax =
        (do_pin && !a.geometries.is_empty()) || rmap_plan.as_ref().is_some_and(|p| p.fsdax_named);
    if do_pin && !a.geometries.is_empty() {
        // Memories named on the command line are checked before anything else is.
        pin::plan(memories.clone(), &a.drivers, size, true)?;
    }
    let mut no_namespace = None;
    let target: Option<Target> = if do_memmap || do_fsdax || wants_dax {
        match namespace::choose(granted.as_deref()) {
            Ok(t) => Some(t),
            Err(NamespaceError::Refused(why))
                if !do_memmap && !do_fsdax && !named_dax && granted.is_none() =>
            {
                no_namespace = Some(why);
                None
            }
            Err(e) => return Err(ns_err(e)),
        }
    } else {
        None
    };
    let pin_plan = if do_pin {
        Some(pin::plan(memories, &a.drivers, size, target.is_some())?)
    } else {
        None
    };
    if let Some(t) = &target {
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
        if let Some(f) = fsdax_size.filter(|f| *f >= region) {
            return Err(usage(format!(
                "--size {}: the fsdax suite makes a file of --size bytes on {}, which has {} MiB \
                 (and a filesystem needs some of it): choose a smaller --size",
                fmt_size(f),
                t.namespace.dev,
                region >> 20
            )));
        }
        if let Some(p) = &pin_plan {
            if p.wants_dax() && p.size >= region {
                return Err(usage(format!(
                    "--size {}: the pin suite maps --size bytes of {}, which has {} MiB (and a dax \
                     device offers less than its namespace): choose a smaller --size",
                    size_text,
                    t.namespace.dev,
                    region >> 20
                )));
            }
        }
    }

    let release = system::kernel_release();
    let facts = KernelFacts::probe();
    let struct_page_size = facts.btf.as_ref().ok().and_then(|b| b.struct_size("page"));
    let sp = crate::doctor::struct_page(
        struct_page_size,
        KernelConfig::find(&release).as_ref(),
        &release,
    );
    let mut notes = Vec::new();
    let struct_page = struct_page_size.unwrap_or_else(|| {
        notes.push("sizeof(struct page) not in BTF: the model assumes 64".into());
        64
    });
    notes.push(format!("vmemmap optimization: {}", sp.optimization.reason));
    let nr_memmap = system::vmstat("nr_memmap_pages").is_some();
    let mut used: Vec<Resolution> = Vec::new();
    let mut untraceable: Vec<String> = Vec::new();
    let memmap_probes = if do_memmap {
        if !nr_memmap {
            notes.push("this kernel has no /proc/vmstat nr_memmap_pages (added in 6.11): vmstat figures are absent".into());
        }
        resolve(
            &facts,
            &["memmap", "vmemmap"],
            &mut notes,
            &mut used,
            &mut untraceable,
        )
    } else {
        vec![]
    };
    let fault_probes = if do_fsdax {
        resolve(&facts, &["fault"], &mut notes, &mut used, &mut untraceable)
    } else {
        vec![]
    };
    let rmap_probes = if do_rmap {
        resolve(&facts, &["rmap"], &mut notes, &mut used, &mut untraceable)
    } else {
        vec![]
    };
    let (pin_latency, pin_grab) = if do_pin {
        (
            resolve(&facts, &["pin"], &mut notes, &mut used, &mut untraceable),
            resolve(&facts, &["grab"], &mut notes, &mut used, &mut untraceable),
        )
    } else {
        (vec![], vec![])
    };
    if !untraceable.is_empty() {
        notes.push(format!(
            "probes not used, {NO_TRACING}: {}",
            untraceable.join(", ")
        ));
    }
    if let Some(why) = &no_namespace {
        notes.push(format!("dax memories not measured: {why}"));
    }

    let do_pfnmap = do_fsdax || (do_memmap && geometries.contains(&Geometry::Pfnmap));
    if let Some(t) = &target {
        let orig = &t.namespace;
        let mut plan: Vec<String> = Vec::new();
        if do_memmap {
            plan.push(format!(
                "memmap: {} ({} samples each)",
                geometries
                    .iter()
                    .filter(|g| **g != Geometry::Pfnmap)
                    .map(|g| g.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                a.repeat
            ));
        }
        if let Some(p) = &pin_plan {
            plan.push(format!("pin: {}", p.describe(a.repeat)));
        }
        if rmap_plan.as_ref().is_some_and(|p| p.fsdax) {
            plan.push(format!("rmap: a file on {}", suites::rmap::FSDAX));
        }
        if let Some(f) = fsdax_size {
            plan.push(format!(
                "fsdax: a {} file on ext4 and on xfs -o dax",
                fmt_size(f)
            ));
        }
        if do_pfnmap {
            plan.push("pfnmap: a PCI memory BAR mapped read-only, never accessed".into());
        }
        eprintln!(
            "foliobench: plan: reconfigure {} ({}, {} MiB, now {}; {}) for {}, then restore it to {}",
            orig.dev,
            t.region.dev,
            t.region.size >> 20,
            mode_map(orig),
            t.grant,
            plan.join("; "),
            mode_map(orig),
        );
    } else if let Some(p) = &pin_plan {
        eprintln!("foliobench: plan: pin: {}", p.describe(a.repeat));
    }
    if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(env(
            "interrupted before anything was changed: no results written",
        ));
    }
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut prov = target
        .clone()
        .map(Provisioner::begin)
        .transpose()
        .map_err(ns_err)?;

    let ctx = SuiteCtx {
        prov: prov.as_ref(),
        no_namespace: no_namespace.as_deref(),
        repeat: a.repeat,
        interrupted: &interrupted,
    };
    let memmap_results = match (&prov, do_memmap) {
        (Some(p), true) => {
            let plan = suites::memmap::Plan {
                geometries: geometries.clone(),
                struct_page,
                optimization: sp.optimization.available,
                nr_memmap,
            };
            suites::memmap::run(&plan, p, &ctx, &memmap_probes).map_err(suite_err)?
        }
        _ => vec![],
    };
    let pin_results = match pin_plan {
        Some(plan) => Some(
            suites::pin::run(&plan, &ctx, &pin_latency, &pin_grab, &mut notes)
                .map_err(suite_err)?,
        ),
        None => None,
    };
    let rmap_results = match rmap_plan {
        Some(plan) => Some(suites::rmap::run(&plan, &ctx, &rmap_probes).map_err(suite_err)?),
        None => None,
    };
    // The drivers the fsdax suite and the PFN-map row pin with (a source device for
    // O_DIRECT at least as large as what they map).
    let fsdax_drivers = if do_fsdax || do_pfnmap {
        let size = fsdax_size.unwrap_or(0).max(2 << 20);
        Some(suites::pin::Drivers::open(
            &pin::plan(vec![], &a.drivers, size, false)?,
            &mut notes,
        ))
    } else {
        None
    };
    let fsdax_results = match (&prov, fsdax_size, &fsdax_drivers) {
        (Some(p), Some(size), Some(d)) => {
            Some(suites::fsdax::run(p, size, &ctx, &fault_probes, d).map_err(suite_err)?)
        }
        _ => None,
    };
    let pfnmap_result = match (&fsdax_drivers, do_pfnmap) {
        (Some(d), true) => {
            eprintln!("foliobench: pfnmap: a PCI memory BAR, read-only");
            Some(suites::fsdax::pfnmap_row(d))
        }
        _ => None,
    };
    drop(fsdax_drivers);
    let restored = match prov.as_mut() {
        Some(p) => {
            p.restore().map_err(ns_err)?;
            let r = p.verify_restored().map_err(ns_err)?;
            eprintln!("foliobench: restored the namespace, {r}");
            Some(r)
        }
        None => None,
    };

    let (cpu, cpu_model) = system::cpu_kind();
    let report = Results {
        schema_version: RESULTS_SCHEMA_VERSION,
        context: Context {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            kernel_release: release,
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
            }),
            started,
            struct_page,
            vmemmap_optimization: sp.optimization.available,
            nr_memmap_pages: nr_memmap,
            namespace: target.as_ref().map(|t| t.namespace.dev.clone()),
            namespace_size: target.as_ref().map(|t| t.region.size),
            restored,
            probes: used
                .iter()
                .filter_map(|p| {
                    Some(format!(
                        "{} ({} on {})",
                        p.probe,
                        p.mechanism.map(Flavour::name)?,
                        p.function.as_deref()?
                    ))
                })
                .collect(),
            notes,
        },
        suites: suites.iter().map(|s| s.to_string()).collect(),
        memmap: memmap_results,
        pin: pin_results,
        rmap: rmap_results,
        fsdax: fsdax_results,
        pfnmap: pfnmap_result,
    };
    output.emit(&report, || report.render_text())?;
    Ok(Code::Ok)
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
        match p.mechanism {
            Some(_) => used.push(p.clone()),
            None if p.reason.contains(NO_TRACING) => untraceable.push(p.probe.clone()),
            None => notes.push(format!("probe {} not used: {}", p.probe, p.reason)),
        }
    }
    probes
}

/// `foliobench restore`: repair after a killed run.
pub fn restore() -> Result<Code> {
    match namespace::restore_saved(std::time::Duration::from_secs(120)).map_err(ns_err)? {
        Some(ns) => println!("foliobench: restored {} to {}", ns.dev, mode_map(&ns)),
        None => println!("foliobench: nothing to restore (no saved namespace state)"),
    }
    match foliobench_workloads::thp::restore_saved(std::time::Duration::from_secs(120))
        .map_err(env)?
    {
        Some(n) => println!("foliobench: restored {n} THP size controls"),
        None => println!("foliobench: no THP size controls to restore"),
    }
    Ok(Code::Ok)
}
