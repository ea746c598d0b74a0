//! What the running kernel offers the probe layer, probed once: BTF, which BPF flavours
//! really work, kallsyms and ftrace's function list. `doctor` reports it; `trace` and the
//! suites resolve the catalog against it.

use crate::btf::KernelBtf;
use crate::capability::{self, FlavourSupport};
use crate::catalog::{resolve, LiveKernel, Probe, Resolution};
use crate::symbols::{FilterFunctions, Kallsyms};

pub struct KernelFacts {
    pub btf: Result<KernelBtf, String>,
    pub flavours: Vec<FlavourSupport>,
    /// Why no flavour could be tried at all, when BPF is unusable.
    pub bpf_error: Option<String>,
    kallsyms: Kallsyms,
    ftrace: FilterFunctions,
}

impl KernelFacts {
    /// Probes the running kernel (loads and fires a program of each flavour).
    pub fn probe() -> KernelFacts {
        let btf = if KernelBtf::available() {
            KernelBtf::load().map_err(|e| format!("{e:#}"))
        } else {
            Err("no /sys/kernel/btf/vmlinux: kernel built without CONFIG_DEBUG_INFO_BTF".into())
        };
        let (flavours, bpf_error) = match capability::probe_flavours() {
            Ok(v) => (v, None),
            Err(e) => (vec![], Some(format!("{e:#}"))),
        };
        KernelFacts {
            btf,
            flavours,
            bpf_error,
            kallsyms: Kallsyms::read().unwrap_or_default(),
            ftrace: FilterFunctions::read(),
        }
    }

    pub fn resolve(&self, probes: &[&Probe]) -> Vec<Resolution> {
        let view = LiveKernel {
            kallsyms: &self.kallsyms,
            btf: self.btf.as_ref().ok(),
            ftrace: &self.ftrace,
            flavours: &self.flavours,
        };
        probes.iter().map(|p| resolve(p, &view)).collect()
    }

    /// One line per flavour that does not work, for explaining degraded traces.
    pub fn refusals(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .flavours
            .iter()
            .filter(|f| !f.usable())
            .map(|f| format!("{} on {}: {}", f.flavour.name(), f.target, f.reason))
            .collect();
        if let Some(e) = &self.bpf_error {
            v.push(format!("BPF unusable: {e}"));
        }
        v
    }
}
