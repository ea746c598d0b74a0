//! `foliobench doctor`: what this kernel and machine support, each answer with its reason,
//! and the summary of what foliobench can and cannot measure here.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::facts::{
    Availability, Cpu, Flavour, FlavourSupport, Group, ModuleState, PmemListing, Resolution, Thp,
};

/// Bumped when a field changes meaning or disappears; readers refuse other versions.
pub const DOCTOR_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Doctor {
    pub schema_version: u32,
    pub tool_version: String,
    pub kernel: Kernel,
    /// What doctor changed to be able to look (e.g. mounted tracefs), so nothing is silent.
    pub actions: Vec<String>,
    pub btf: Availability,
    /// fentry, kprobe, tracepoint: each loaded, attached and fired for real.
    pub bpf: Vec<FlavourSupport>,
    /// Why BPF could not be tried at all, when it could not.
    pub bpf_error: Option<String>,
    /// The probe catalog resolved on this kernel.
    pub functions: Vec<Resolution>,
    pub pmem: PmemListing,
    pub modules: Vec<Module>,
    pub devdax: Availability,
    pub fsdax: Availability,
    pub thp: Option<Thp>,
    pub io_uring: Availability,
    pub gup_test: Availability,
    pub struct_page: StructPage,
    /// `/proc/vmstat nr_memmap_pages` (6.11+).
    pub nr_memmap_pages: Availability,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kernel {
    pub release: String,
    pub cmdline: String,
    pub cpu: Cpu,
    pub cpu_model: String,
    /// Where the kernel's build config was read from, if anywhere.
    pub config: Option<String>,
    /// The test VM's accelerator (kvm, tcg); None outside a test VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
    /// The clock the guest's time ran on (absent in files before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<crate::clock::Clock>,
    /// The Debian kernel package booted (`name=version`), when it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Module {
    pub name: String,
    pub state: ModuleState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StructPage {
    /// `sizeof(struct page)` from BTF.
    pub size: Option<u64>,
    /// CONFIG_ARCH_WANT_OPTIMIZE_DAX_VMEMMAP (6.4+); `None` when unknown.
    pub arch_opt_in: Option<bool>,
    /// Whether `vmemmap_can_optimize()` can hold for a compound devdax geometry without
    /// altmap (`--map=mem`). `--map=dev` never optimizes.
    pub optimization: Availability,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub can: Vec<String>,
    pub cannot: Vec<String>,
}

impl Summary {
    fn put(&mut self, ok: bool, can: impl Into<String>, cannot: impl Into<String>) {
        if ok {
            self.can.push(can.into())
        } else {
            self.cannot.push(cannot.into())
        }
    }
}

impl Doctor {
    pub fn flavour(&self, f: Flavour) -> Option<&FlavourSupport> {
        self.bpf.iter().find(|s| s.flavour == f)
    }

    fn usable(&self, f: Flavour) -> bool {
        self.flavour(f).is_some_and(|s| s.usable())
    }

    /// Function probes of a group (not syscall tracepoints), split by whether they
    /// trace here, and for `with_arg`, also record their argument (batch sizes).
    fn traced(&self, group: Group, with_arg: bool) -> (Vec<&str>, Vec<&str>) {
        let (yes, no): (Vec<&Resolution>, Vec<&Resolution>) = self
            .functions
            .iter()
            .filter(|r| r.group == group && !r.is_tracepoint())
            .partition(|r| r.flavour.is_some() && (!with_arg || r.arg_index.is_some()));
        (
            yes.iter().map(|r| r.probe.as_str()).collect(),
            no.iter().map(|r| r.probe.as_str()).collect(),
        )
    }

    /// Derives what foliobench can measure here from the facts above.
    pub fn summarize(&mut self) {
        let mut s = Summary::default();
        let fn_flavours: Vec<&str> = [Flavour::Fentry, Flavour::Kprobe]
            .into_iter()
            .filter(|f| self.usable(*f))
            .map(Flavour::name)
            .collect();
        s.put(
            !fn_flavours.is_empty(),
            format!("kernel function tracing ({})", fn_flavours.join(", ")),
            "kernel function tracing: neither fentry nor kprobes work here",
        );
        s.put(
            self.usable(Flavour::Tracepoint),
            "tracepoint tracing",
            "tracepoint tracing: tracepoint programs do not work here",
        );
        s.put(
            self.thp.is_some(),
            "rmap workload timings on anonymous THP",
            "rmap workloads: no transparent huge pages",
        );
        let (rmap_yes, rmap_no) = self.traced(Group::Rmap, true);
        if !rmap_yes.is_empty() {
            s.can
                .push(format!("rmap batch histograms via {}", rmap_yes.join(", ")));
        }
        if !rmap_no.is_empty() {
            s.cannot.push(format!("trace {}", rmap_no.join(", ")));
        }
        s.put(
            self.devdax.available,
            "struct page cost and pinning on devdax",
            format!("devdax measurements: {}", self.devdax.reason),
        );
        s.put(
            self.fsdax.available,
            "fsdax measurements",
            format!("fsdax measurements: {}", self.fsdax.reason),
        );
        let memmap_traced = self
            .traced(Group::Memmap, false)
            .0
            .contains(&"memmap_init_zone_device");
        s.put(
            self.devdax.available && memmap_traced,
            "memmap_init_zone_device latency",
            "memmap_init_zone_device latency (needs devdax and a traceable memmap_init_zone_device)",
        );
        s.put(
            self.nr_memmap_pages.available,
            "nr_memmap_pages deltas",
            format!("nr_memmap_pages deltas: {}", self.nr_memmap_pages.reason),
        );
        s.put(
            self.io_uring.available,
            "long-term pins via io_uring buffer registration",
            format!("io_uring pins: {}", self.io_uring.reason),
        );
        s.put(
            self.gup_test.available,
            "the kernel's gup_test benchmark",
            format!("gup_test: {}", self.gup_test.reason),
        );
        self.summary = s;
    }

    pub fn summary_line(&self) -> String {
        format!(
            "foliobench can measure here: {}. Cannot: {}.",
            if self.summary.can.is_empty() {
                "nothing".into()
            } else {
                self.summary.can.join("; ")
            },
            if self.summary.cannot.is_empty() {
                "nothing".into()
            } else {
                self.summary.cannot.join("; ")
            }
        )
    }

    /// The terminal form: one line per fact, `yes`/`no`/`?` first, then the reason.
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        self.render_kernel(&mut o);
        self.render_bpf(&mut o);
        self.render_zone_device(&mut o);
        self.render_memory(&mut o);
        let _ = writeln!(o, "\n{}", self.summary_line());
        o
    }

    fn render_kernel(&self, o: &mut String) {
        let _ = writeln!(
            o,
            "kernel      {} ({:?} CPU: {})",
            self.kernel.release, self.kernel.cpu, self.kernel.cpu_model
        );
        if let Some(p) = &self.kernel.package {
            let _ = writeln!(o, "package     {p}");
        }
        if let Some(a) = &self.kernel.accelerator {
            let _ = writeln!(o, "test VM     accelerator {a}");
        }
        if let Some(c) = &self.kernel.clock {
            let _ = writeln!(o, "clock       {}", c.kind.describe());
        }
        let _ = writeln!(o, "cmdline     {}", self.kernel.cmdline);
        let _ = writeln!(
            o,
            "config      {}",
            self.kernel
                .config
                .as_deref()
                .unwrap_or("not found (no /boot/config-<release>, no $FOLIOBENCH_KERNEL_CONFIG)")
        );
        for a in &self.actions {
            let _ = writeln!(o, "did         {a}");
        }
    }

    fn render_bpf(&self, o: &mut String) {
        let _ = writeln!(o, "\nBPF");
        let _ = writeln!(
            o,
            "  {} BTF         {}",
            mark(self.btf.available),
            self.btf.reason
        );
        if let Some(e) = &self.bpf_error {
            let _ = writeln!(o, "  no  BPF         {e}");
        }
        for f in &self.bpf {
            let _ = writeln!(
                o,
                "  {} {:<11} {}: {}",
                mark(f.usable()),
                f.flavour.name(),
                f.target,
                f.reason
            );
        }
        let _ = writeln!(o, "\nProbe catalog");
        for r in &self.functions {
            let how = r.flavour.map(Flavour::name).unwrap_or("-");
            let _ = writeln!(
                o,
                "  {} {:<30} {:<10} {}",
                mark(r.flavour.is_some()),
                r.probe,
                how,
                r.reason
            );
        }
    }

    fn render_zone_device(&self, o: &mut String) {
        let _ = writeln!(o, "\nZONE_DEVICE");
        match &self.pmem.error {
            Some(e) => {
                let _ = writeln!(o, "  no  pmem        {e}");
            }
            None if self.pmem.regions.is_empty() => {
                let _ = writeln!(o, "  no  pmem        no pmem regions (ndctl list is empty)");
            }
            None => {
                for r in &self.pmem.regions {
                    let _ = writeln!(
                        o,
                        "  yes {:<11} {} MiB {}",
                        r.dev,
                        r.size >> 20,
                        r.kind.as_deref().unwrap_or("")
                    );
                    for n in &r.namespaces {
                        let _ = writeln!(
                            o,
                            "        {:<13} mode={} map={} size={} MiB {}",
                            n.dev,
                            n.mode.as_deref().unwrap_or("?"),
                            n.map.as_deref().unwrap_or("-"),
                            n.size >> 20,
                            n.chardev.as_deref().or(n.blockdev.as_deref()).unwrap_or("")
                        );
                    }
                }
            }
        }
        let mods: Vec<String> = self
            .modules
            .iter()
            .map(|m| format!("{}={:?}", m.name, m.state).to_lowercase())
            .collect();
        let _ = writeln!(o, "      modules     {}", mods.join(" "));
        let _ = writeln!(
            o,
            "  {} devdax      {}",
            mark(self.devdax.available),
            self.devdax.reason
        );
        let _ = writeln!(
            o,
            "  {} fsdax       {}",
            mark(self.fsdax.available),
            self.fsdax.reason
        );
        let sp = &self.struct_page;
        let _ = writeln!(
            o,
            "  {} struct page {} bytes; vmemmap optimization: {}",
            mark(sp.size.is_some()),
            sp.size.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
            sp.optimization.reason
        );
        let _ = writeln!(
            o,
            "  {} nr_memmap_pages {}",
            mark(self.nr_memmap_pages.available),
            self.nr_memmap_pages.reason
        );
    }

    fn render_memory(&self, o: &mut String) {
        let _ = writeln!(o, "\nMemory and pinning");
        match &self.thp {
            Some(t) => {
                let sizes: Vec<String> = t
                    .sizes
                    .iter()
                    .map(|s| format!("{}K={}", s.kb, s.enabled.as_deref().unwrap_or("n/a")))
                    .collect();
                let _ = writeln!(
                    o,
                    "  yes THP         enabled={} pmd={}K sizes: {}",
                    t.enabled.as_deref().unwrap_or("?"),
                    t.pmd_size_kb
                        .map(|k| k.to_string())
                        .unwrap_or_else(|| "?".into()),
                    sizes.join(" ")
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "  no  THP         no /sys/kernel/mm/transparent_hugepage"
                );
            }
        }
        let _ = writeln!(
            o,
            "  {} io_uring    {}",
            mark(self.io_uring.available),
            self.io_uring.reason
        );
        let _ = writeln!(
            o,
            "  {} gup_test    {}",
            mark(self.gup_test.available),
            self.gup_test.reason
        );
    }
}

/// A fact's first column.
fn mark(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no "
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avail(available: bool, reason: &str) -> Availability {
        Availability {
            available,
            reason: reason.into(),
        }
    }

    fn flavour(f: Flavour, ok: bool) -> FlavourSupport {
        FlavourSupport {
            flavour: f,
            loads: ok || f == Flavour::Fentry,
            attaches: ok,
            fires: ok,
            target: "t".into(),
            reason: if ok {
                "ran".into()
            } else {
                "load refused: EPERM".into()
            },
        }
    }

    fn host_like() -> Doctor {
        Doctor {
            schema_version: DOCTOR_SCHEMA_VERSION,
            tool_version: "0".into(),
            kernel: Kernel {
                release: "6.18".into(),
                cmdline: String::new(),
                cpu: Cpu::Virtualized,
                cpu_model: "x".into(),
                config: None,
                accelerator: None,
                clock: None,
                package: None,
            },
            actions: vec![],
            btf: avail(true, "present"),
            bpf: vec![
                flavour(Flavour::Fentry, false),
                flavour(Flavour::Kprobe, false),
                flavour(Flavour::Tracepoint, true),
            ],
            bpf_error: None,
            functions: vec![Resolution {
                probe: "folio_add_anon_rmap_ptes".into(),
                group: Group::Rmap,
                kind: Default::default(),
                function: Some("folio_add_anon_rmap_ptes".into()),
                flavour: None,
                present: true,
                btf: true,
                arg_index: None,
                arg_name: None,
                vma_index: None,
                reason: "neither".into(),
                count_only: false,
                stacks: false,
                stacks_every: 0,
            }],
            pmem: PmemListing {
                regions: vec![],
                error: None,
            },
            modules: vec![],
            devdax: avail(false, "no pmem region"),
            fsdax: avail(false, "no pmem region"),
            thp: None,
            io_uring: avail(true, "ok"),
            gup_test: avail(false, "absent"),
            struct_page: StructPage {
                size: Some(64),
                arch_opt_in: None,
                optimization: avail(false, "unknown"),
            },
            nr_memmap_pages: avail(true, "present"),
            summary: Summary::default(),
        }
    }

    #[test]
    fn summary_reflects_refusals() {
        let mut d = host_like();
        d.summarize();
        let line = d.summary_line();
        assert!(line.contains("neither fentry nor kprobes"), "{line}");
        assert!(d.summary.can.iter().any(|c| c == "tracepoint tracing"));
        assert!(d
            .summary
            .cannot
            .iter()
            .any(|c| c.contains("devdax measurements: no pmem region")));
        assert!(d
            .summary
            .cannot
            .iter()
            .any(|c| c.contains("trace folio_add_anon_rmap_ptes")));
        assert!(d.summary.can.iter().any(|c| c.contains("io_uring")));
    }

    #[test]
    fn text_names_every_flavour_and_the_summary() {
        let mut d = host_like();
        d.summarize();
        let t = d.render_text();
        for f in [
            "fentry",
            "kprobe",
            "tracepoint",
            "load refused: EPERM",
            "foliobench can measure here:",
        ] {
            assert!(t.contains(f), "missing {f} in\n{t}");
        }
    }

    #[test]
    fn json_round_trips() {
        let mut d = host_like();
        d.summarize();
        let j = serde_json::to_string(&d).unwrap();
        let back: Doctor = serde_json::from_str(&j).unwrap();
        assert_eq!(back.summary.can, d.summary.can);
        assert_eq!(back.bpf.len(), 3);
    }
}
