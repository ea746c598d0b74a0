//! `foliobench doctor`: gathers the facts from `workloads` (machine, pmem) and `ebpf`
//! (BTF, BPF flavours, the probe catalog) into the report that `reports` renders.

use anyhow::Result;
use foliobench_ebpf::catalog::CATALOG;
use foliobench_ebpf::kernel::KernelFacts;
use foliobench_reports::doctor::{
    Doctor, Kernel, Module, StructPage, Summary, DOCTOR_SCHEMA_VERSION,
};
use foliobench_reports::facts::{Availability, ModuleState, PmemListing};
use foliobench_workloads::kconfig::{KernelConfig, Symbol};
use foliobench_workloads::{pmem, system};

use crate::exit::Code;
use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

const MODULES: &[&str] = &[
    "nd_e820",
    "nd_pmem",
    "dax_pmem",
    "device_dax",
    "kmem",
    "null_blk",
];

fn avail(available: bool, reason: impl Into<String>) -> Availability {
    Availability {
        available,
        reason: reason.into(),
    }
}

pub fn run(a: DoctorArgs) -> Result<Code> {
    let d = gather();
    a.output.emit(&d, || d.render_text())?;
    Ok(Code::Ok)
}

pub fn gather() -> Doctor {
    let release = system::kernel_release();
    let actions = mount_trace_filesystems();
    let config = KernelConfig::find(&release);
    let (cpu, cpu_model) = system::cpu_kind();

    let facts = KernelFacts::probe();
    let btf_fact = btf_availability(&facts);
    let functions = facts.resolve(&CATALOG.iter().collect::<Vec<_>>());

    let pmem = pmem::list();
    let modules = module_states(&release);
    let (devdax, fsdax) = namespace_modes(&modules, &pmem, config.as_ref());

    let struct_page_size = facts.btf.as_ref().ok().and_then(|b| b.struct_size("page"));
    let struct_page = struct_page(struct_page_size, config.as_ref(), &release);
    let nr_memmap_pages = memmap_pages_availability();

    let mut d = Doctor {
        schema_version: DOCTOR_SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        kernel: Kernel {
            release,
            cmdline: system::kernel_cmdline(),
            cpu,
            cpu_model,
            config: config.as_ref().map(|c| c.source.display().to_string()),
            accelerator: system::vm_accelerator(),
            clock: Some(system::clock()),
            package: system::kernel_package(),
        },
        actions,
        btf: btf_fact,
        bpf: facts.flavours,
        bpf_error: facts.bpf_error,
        functions,
        pmem,
        modules,
        devdax,
        fsdax,
        thp: foliobench_workloads::thp::facts(),
        io_uring: system::io_uring(),
        gup_test: system::gup_test(),
        struct_page,
        nr_memmap_pages,
        summary: Summary::default(),
    };
    d.summarize();
    d
}

/// Mounts tracefs and debugfs where they are missing; says what was done (or failed).
fn mount_trace_filesystems() -> Vec<String> {
    let mut actions = Vec::new();
    // ftrace's function list and gup_test live on these; mounting them changes nothing else.
    for (fs, path) in [
        ("tracefs", "/sys/kernel/tracing"),
        ("debugfs", "/sys/kernel/debug"),
    ] {
        match system::ensure_mounted(fs, path) {
            Ok(true) => actions.push(format!("mounted {fs} at {path}")),
            Ok(false) => {}
            Err(e) => actions.push(format!("could not mount {fs}: {e}")),
        }
    }
    actions
}

fn btf_availability(facts: &KernelFacts) -> Availability {
    match &facts.btf {
        Ok(_) => avail(true, "/sys/kernel/btf/vmlinux parsed"),
        Err(e) => avail(false, e.clone()),
    }
}

/// Whether each of the pmem and DAX modules is loaded, loadable or absent.
fn module_states(release: &str) -> Vec<Module> {
    MODULES
        .iter()
        .map(|m| Module {
            name: m.to_string(),
            state: system::module_state(m, release),
        })
        .collect()
}

/// Whether devdax and fsdax namespaces can be made here, in that order.
fn namespace_modes(
    modules: &[Module],
    pmem: &PmemListing,
    config: Option<&KernelConfig>,
) -> (Availability, Availability) {
    let state = |name: &str| {
        modules
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.state)
            .unwrap_or(ModuleState::Absent)
    };
    let devdax = dax_availability(
        "devdax",
        "DEV_DAX",
        "device_dax",
        state("device_dax"),
        pmem,
        config,
    );
    let fsdax = dax_availability("fsdax", "FS_DAX", "nd_pmem", state("nd_pmem"), pmem, config);
    (devdax, fsdax)
}

/// Whether the kernel accounts the memory map's own pages in /proc/vmstat.
fn memmap_pages_availability() -> Availability {
    if system::vmstat("nr_memmap_pages").is_some() {
        avail(true, "/proc/vmstat has nr_memmap_pages")
    } else {
        avail(false, "/proc/vmstat has no nr_memmap_pages (added in 6.11)")
    }
}

/// Can namespaces be made into this mode here: config, driver, and a region to use.
fn dax_availability(
    mode: &str,
    config_sym: &str,
    module: &str,
    module_state: ModuleState,
    pmem: &PmemListing,
    config: Option<&KernelConfig>,
) -> Availability {
    if let Some(c) = config {
        if !c.enabled(config_sym) {
            return avail(false, format!("kernel built without CONFIG_{config_sym}"));
        }
        if !c.enabled("ZONE_DEVICE") {
            return avail(false, "kernel built without CONFIG_ZONE_DEVICE");
        }
    }
    if module_state == ModuleState::Absent {
        return avail(
            false,
            format!("no {module} driver (neither built in nor a module)"),
        );
    }
    if let Some(e) = &pmem.error {
        return avail(false, e.clone());
    }
    let Some(region) = pmem.regions.first() else {
        return avail(
            false,
            "no pmem region: boot with memmap=SIZE!OFFSET (foliobench vm does) or use real pmem",
        );
    };
    let current: Vec<String> = region
        .namespaces
        .iter()
        .map(|n| format!("{} is {}", n.dev, n.mode.as_deref().unwrap_or("?")))
        .collect();
    avail(
        true,
        format!(
            "{module} {}, {} ({} MiB{}) can hold {mode} namespaces",
            format!("{module_state:?}").to_lowercase(),
            region.dev,
            region.size >> 20,
            if current.is_empty() {
                String::new()
            } else {
                format!("; {}", current.join(", "))
            }
        ),
    )
}

/// Whether `vmemmap_can_optimize()` can hold: power-of-two struct page and, since 6.4,
/// the arch opt-in CONFIG_ARCH_WANT_OPTIMIZE_DAX_VMEMMAP ("mm/vmemmap/devdax: fix kernel crash when
/// probing devdax devices", 2023). Before 6.4 the
/// optimization was not arch-gated.
pub(crate) fn struct_page(
    size: Option<u64>,
    config: Option<&KernelConfig>,
    release: &str,
) -> StructPage {
    let gated = kernel_at_least(release, 6, 4);
    let arch_opt_in: Option<bool> = match (config, gated) {
        (_, Some(false)) => Some(true),
        (Some(c), _) => {
            Some(matches!(c.get("ARCH_WANT_OPTIMIZE_DAX_VMEMMAP"), Symbol::Set(v) if v == "y"))
        }
        (None, _) => None,
    };
    let optimization = match (size, arch_opt_in) {
        (None, _) => avail(false, "unknown: sizeof(struct page) not in BTF"),
        (Some(s), _) if !s.is_power_of_two() => {
            avail(false, format!("never: sizeof(struct page) = {s} is not a power of two"))
        }
        (Some(_), Some(false)) => avail(false, "never: CONFIG_ARCH_WANT_OPTIMIZE_DAX_VMEMMAP is not set"),
        (Some(s), None) => avail(
            false,
            format!("unknown: struct page {s} B is a power of two, but no kernel config was found to tell the arch opt-in"),
        ),
        (Some(s), Some(true)) => avail(
            true,
            format!(
                "can apply to devdax 2M/1G with --map=mem (struct page {s} B, {}); never with --map=dev (altmap)",
                if gated == Some(false) { "kernel predates the arch opt-in" } else { "CONFIG_ARCH_WANT_OPTIMIZE_DAX_VMEMMAP=y" }
            ),
        ),
    };
    StructPage {
        size,
        arch_opt_in,
        optimization,
    }
}

/// `Some(release >= major.minor)`, `None` when the release does not parse.
fn kernel_at_least(release: &str, major: u32, minor: u32) -> Option<bool> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let ma: u32 = it.next()?.parse().ok()?;
    let mi: u32 = it.next()?.parse().ok()?;
    Some((ma, mi) >= (major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> KernelConfig {
        KernelConfig::parse("t".into(), text)
    }

    #[test]
    fn release_comparison() {
        assert_eq!(kernel_at_least("6.12.117+deb12-amd64", 6, 4), Some(true));
        assert_eq!(kernel_at_least("6.1.0-56-amd64", 6, 4), Some(false));
        assert_eq!(kernel_at_least("weird", 6, 4), None);
    }

    #[test]
    fn optimization_verdicts() {
        let on = cfg("CONFIG_ARCH_WANT_OPTIMIZE_DAX_VMEMMAP=y\n");
        assert!(
            struct_page(Some(64), Some(&on), "6.12.117")
                .optimization
                .available
        );
        // 6.4+ and the symbol absent: not selected by this arch.
        let off = cfg("CONFIG_ZONE_DEVICE=y\n");
        assert!(
            !struct_page(Some(64), Some(&off), "6.12.117")
                .optimization
                .available
        );
        // 6.1 predates the gate: applies whenever struct page is a power of two.
        let sp = struct_page(Some(64), None, "6.1.0-56-amd64");
        assert!(sp.optimization.available, "{}", sp.optimization.reason);
        assert!(sp.optimization.reason.contains("predates"));
        let sp = struct_page(Some(80), Some(&on), "6.12.117");
        assert!(!sp.optimization.available && sp.optimization.reason.contains("power of two"));
        let sp = struct_page(Some(64), None, "6.12.117");
        assert!(!sp.optimization.available && sp.optimization.reason.starts_with("unknown"));
    }

    fn devdax(
        state: ModuleState,
        pmem: &PmemListing,
        config: Option<&KernelConfig>,
    ) -> Availability {
        dax_availability("devdax", "DEV_DAX", "device_dax", state, pmem, config)
    }

    #[test]
    fn dax_needs_a_region() {
        let empty = PmemListing {
            regions: vec![],
            error: None,
        };
        let a = devdax(ModuleState::Loadable, &empty, None);
        assert!(!a.available && a.reason.contains("memmap="), "{}", a.reason);
        let listing = PmemListing {
            regions: pmem::parse_list(include_str!(
                "../../workloads/tests/fixtures/ndctl-list-612-fsdax.json"
            ))
            .unwrap(),
            error: None,
        };
        let a = devdax(ModuleState::Loaded, &listing, None);
        assert!(a.available, "{}", a.reason);
        assert!(
            a.reason.contains("region0 (2048 MiB;") && a.reason.contains("namespace0.0 is fsdax"),
            "{}",
            a.reason
        );
        let no_dax = cfg("CONFIG_ZONE_DEVICE=y\n# CONFIG_DEV_DAX is not set\n");
        let a = devdax(ModuleState::Loaded, &listing, Some(&no_dax));
        assert!(!a.available && a.reason.contains("CONFIG_DEV_DAX"));
    }
}
