//! `foliobench run --suite memmap`: struct page cost and memmap init time per geometry,
//! from vmstat, the probes, MemFree and the model side by side.

use std::sync::atomic::Ordering;

use anyhow::Result;
use foliobench_ebpf::catalog::{self, Flavour};
use foliobench_ebpf::kernel::KernelFacts;
use foliobench_reports::geometry::{model, Geometry};
use foliobench_reports::results::{checks, Context, MemmapResult, Results, RESULTS_SCHEMA_VERSION};
use foliobench_workloads::kconfig::KernelConfig;
use foliobench_workloads::memmap;
use foliobench_workloads::namespace::{self, NamespaceError, Provisioner};
use foliobench_workloads::system;

use crate::exit::{env, usage, Code};
use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The suite to run: memmap.
    #[arg(long)]
    pub suite: String,
    /// Geometries (devdax:4K|2M|1G:mem|dev, fsdax:mem|dev, pfnmap); default: all.
    #[arg(long = "geometry", value_name = "G")]
    pub geometries: Vec<String>,
    /// Samples per geometry.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// The namespace foliobench may reconfigure (its data is destroyed; its configuration
    /// is restored). Inside `foliobench vm` the emulated pmem is granted by default.
    #[arg(long)]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

fn ns_err(e: NamespaceError) -> anyhow::Error {
    match e {
        NamespaceError::Refused(m) => usage(m),
        NamespaceError::Failed(m) => env(m),
    }
}

pub fn run(a: RunArgs) -> Result<Code> {
    if a.suite != "memmap" {
        return Err(usage(format!(
            "unknown suite '{}': available: memmap",
            a.suite
        )));
    }
    if a.repeat == 0 {
        return Err(usage("--repeat must be at least 1"));
    }
    let geometries = crate::model::geometries(&a.geometries)?;
    let target = namespace::choose(a.namespace.as_deref()).map_err(ns_err)?;
    let size = target.region.size;
    for g in geometries.iter().filter(|g| **g != Geometry::Pfnmap) {
        if size < g.align() || size % g.align() != 0 {
            return Err(usage(format!(
                "{g} needs a namespace whose size is a multiple of its alignment; {} is {} MiB",
                target.namespace.dev,
                size >> 20
            )));
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
    let selected: Vec<_> =
        catalog::select(&["memmap".into(), "vmemmap".into()]).expect("groups exist");
    let probes = facts.resolve(&selected);
    for p in probes.iter().filter(|p| p.mechanism.is_none()) {
        notes.push(format!("probe {} not used: {}", p.probe, p.reason));
    }
    let nr_memmap = system::vmstat("nr_memmap_pages").is_some();
    if !nr_memmap {
        notes.push("this kernel has no /proc/vmstat nr_memmap_pages (added in 6.11): vmstat figures are absent".into());
    }

    let orig = &target.namespace;
    let measured: Vec<String> = geometries
        .iter()
        .filter(|g| **g != Geometry::Pfnmap)
        .map(|g| g.to_string())
        .collect();
    eprintln!(
        "foliobench: plan: reconfigure {} ({}, {} MiB, now {} map={}; {}) to {} ({} samples each), then restore it to {} map={}",
        orig.dev,
        target.region.dev,
        size >> 20,
        orig.mode.as_deref().unwrap_or("?"),
        orig.map.as_deref().unwrap_or("-"),
        target.grant,
        measured.join(", "),
        a.repeat,
        orig.mode.as_deref().unwrap_or("?"),
        orig.map.as_deref().unwrap_or("-"),
    );
    let interrupted = crate::exit::interrupt_flag()?;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut prov = Provisioner::begin(target.clone()).map_err(ns_err)?;

    let mut results = Vec::new();
    for &g in &geometries {
        let m = model(g, size, struct_page, sp.optimization.available);
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
        for i in 0..a.repeat {
            eprintln!("foliobench: {g} sample {}/{}", i + 1, a.repeat);
            let sample = memmap::measure(&prov, g, &probes);
            // A signal may also have killed ndctl itself (same process group): that is an
            // interruption, not a result.
            if interrupted.load(Ordering::Relaxed) {
                drop(prov);
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
    prov.restore().map_err(ns_err)?;
    let restored = prov.verify_restored().map_err(ns_err)?;
    eprintln!("foliobench: restored the namespace, {restored}");

    let (cpu, cpu_model) = system::cpu_kind();
    let report = Results {
        schema_version: RESULTS_SCHEMA_VERSION,
        context: Context {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            kernel_release: release,
            kernel_cmdline: system::kernel_cmdline(),
            cpu,
            cpu_model,
            started,
            struct_page,
            vmemmap_optimization: sp.optimization.available,
            nr_memmap_pages: nr_memmap,
            namespace: orig.dev.clone(),
            namespace_size: size,
            restored,
            probes: probes
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
        memmap: results,
    };
    a.output.emit(&report, || report.render_text())?;
    Ok(Code::Ok)
}

/// `foliobench restore`: repair after a killed run.
pub fn restore() -> Result<Code> {
    match namespace::restore_saved(std::time::Duration::from_secs(120)).map_err(ns_err)? {
        Some(ns) => println!(
            "foliobench: restored {} to {} map={}",
            ns.dev,
            ns.mode.as_deref().unwrap_or("?"),
            ns.map.as_deref().unwrap_or("-")
        ),
        None => println!("foliobench: nothing to restore (no saved namespace state)"),
    }
    Ok(Code::Ok)
}
