//! Facts about a kernel and machine, as `foliobench doctor` and every results file record
//! them. `workloads` and `ebpf` produce these values; this crate only reads them.

use serde::{Deserialize, Serialize};

/// How the CPU this kernel runs on is provided: bare metal, a hardware-assisted VM, or
/// QEMU's software emulation (TCG), where timings are only meaningful as ratios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cpu {
    Bare,
    Virtualized,
    Emulated,
}

/// Transparent huge pages: the PMD size and the mTHP sizes this kernel offers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Thp {
    /// The selected mode of `transparent_hugepage/enabled` (always, madvise, never).
    pub enabled: Option<String>,
    pub pmd_size_kb: Option<u64>,
    pub sizes: Vec<ThpSize>,
}

impl Thp {
    /// The anonymous folio sizes (kB) user space may choose, ascending: the sizes with an
    /// `enabled` control.
    pub fn offered_sizes(&self) -> Vec<u64> {
        self.sizes
            .iter()
            .filter(|s| s.enabled.is_some())
            .map(|s| s.kb)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThpSize {
    pub kb: u64,
    /// always, inherit, madvise or never.
    pub enabled: Option<String>,
}

/// Whether something can be used here, and why (not).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Availability {
    pub available: bool,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleState {
    Builtin,
    Loaded,
    /// Not loaded, but modprobe can load it.
    Loadable,
    Absent,
    /// This kernel has no module lists (a bare bzImage) and the module is not loaded:
    /// it may be built in without parameters.
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Region {
    pub dev: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub available_size: u64,
    #[serde(default)]
    pub align: Option<u64>,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Namespace {
    pub dev: String,
    /// raw, fsdax, devdax or sector.
    #[serde(default)]
    pub mode: Option<String>,
    /// mem (struct pages in RAM) or dev (struct pages on the device: altmap).
    #[serde(default)]
    pub map: Option<String>,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub align: Option<u64>,
    #[serde(default)]
    pub blockdev: Option<String>,
    #[serde(default)]
    pub chardev: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
}

/// What `ndctl list` said, or why it could not be asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PmemListing {
    pub regions: Vec<Region>,
    /// Set when ndctl is missing or failed; then `regions` is empty for that reason.
    pub error: Option<String>,
}

/// The program flavours of the probe layer, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavour {
    Fentry,
    Kprobe,
    Tracepoint,
}

impl Flavour {
    pub const ALL: [Flavour; 3] = [Flavour::Fentry, Flavour::Kprobe, Flavour::Tracepoint];

    pub fn name(self) -> &'static str {
        match self {
            Flavour::Fentry => "fentry",
            Flavour::Kprobe => "kprobe",
            Flavour::Tracepoint => "tracepoint",
        }
    }
}

/// How far one flavour got: loaded, attached, and seen running.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlavourSupport {
    pub flavour: Flavour,
    pub loads: bool,
    pub attaches: bool,
    pub fires: bool,
    /// The target it was tried on (function or tracepoint).
    pub target: String,
    /// Why it stopped where it did, or what it did.
    pub reason: String,
}

impl FlavourSupport {
    pub fn usable(&self) -> bool {
        self.loads && self.attaches && self.fires
    }
}

/// What a probe is for; the suites select probes by group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// ZONE_DEVICE struct page setup.
    Memmap,
    /// vmemmap population during memremap.
    Vmemmap,
    /// pin_user_pages* and friends.
    Pin,
    /// Per-folio refcount operations of pinning: grabs when pinning, releases when
    /// unpinning. Called per folio or per page, so counted apart from the latencies.
    Grab,
    /// Batched (or pre-folio) rmap updates.
    Rmap,
    /// device-dax driver.
    Dax,
    /// Any kernel function named with `trace --function` (funclatency's FUNC).
    Function,
    /// DAX page faults (the `fs_dax` tracepoints): PMD against PTE mappings.
    Fault,
    /// HugeTLB's vmemmap optimization: a pool page's vmemmap freed and restored.
    Hugetlb,
}

/// What a probe attaches to, as the tracer must know it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A kernel function (entry and return).
    #[default]
    Function,
    /// A syscall's enter/exit tracepoint pair: the whole syscall's latency.
    Syscall,
    /// One tracepoint, counted, with a field of its record.
    Event,
}

/// How one probe resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolution {
    pub probe: String,
    pub group: Group,
    /// Function, syscall tracepoint pair, or one tracepoint.
    #[serde(default)]
    pub kind: TargetKind,
    /// The kernel name found (which may be an older alias, or a compiler clone).
    pub function: Option<String>,
    /// The flavour that will be used, or `None` when it cannot be traced here. Recorded
    /// as `mechanism`, its name in results files.
    #[serde(rename = "mechanism")]
    pub flavour: Option<Flavour>,
    /// Present in the kernel image as a callable symbol.
    pub present: bool,
    pub btf: bool,
    /// The argument recorded (e.g. nr_pages), by position, found by name in BTF.
    #[serde(default)]
    pub arg_index: Option<usize>,
    #[serde(default)]
    pub arg_name: Option<String>,
    /// The argument that is the call's `struct vm_area_struct *`, by position (BTF): with
    /// it the probe can count only the calls on the VMAs a traced span names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vma_index: Option<usize>,
    pub reason: String,
    /// Counted only: calls and the argument, no exit probe and so no latency. The suites'
    /// traced rounds take counts; timing every call there would only add probe effect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub count_only: bool,
    /// Calls counted per kernel stack too (traced rounds only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stacks: bool,
    /// With `stacks`: the stack of one call in this many is taken (0 or 1: every call's).
    #[serde(default, skip_serializing_if = "every_call")]
    pub stacks_every: u32,
}

/// 0 or 1: a stack taken on every call, not sampled.
pub fn every_call(every: &u32) -> bool {
    *every <= 1
}

impl Resolution {
    /// A tracepoint (a syscall pair or one event) rather than a function.
    pub fn is_tracepoint(&self) -> bool {
        self.kind != TargetKind::Function
    }
}
