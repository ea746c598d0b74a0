//! The probe catalog: which kernel functions foliobench traces, under which names on which
//! kernels, and how each resolves on the running kernel (fentry, kprobe, or not at all, and why).

pub use foliobench_reports::facts::{Flavour, FlavourSupport, Group, Resolution, TargetKind};

use crate::btf::{BtfHome, KernelBtf};
use crate::symbols::{FilterFunctions, Kallsyms};

/// What a probe attaches to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A kernel function, under its names newest first (one entry covers e.g. 6.12 and
    /// 6.1), and the names of the parameter to record, looked up in BTF.
    Function {
        names: &'static [&'static str],
        arg: &'static [&'static str],
    },
    /// The `syscalls:sys_enter_<name>` / `sys_exit_<name>` tracepoints: the syscall's
    /// latency, for kernels where the functions inside it cannot be traced.
    Syscall(&'static str),
    /// One tracepoint, `category:name`, counted, with one integer field of its record
    /// (e.g. a fault's `result`) recorded as the argument.
    Event {
        name: &'static str,
        field: &'static str,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub id: &'static str,
    pub group: Group,
    pub target: Target,
    pub what: &'static str,
}

const fn func(
    id: &'static str,
    group: Group,
    names: &'static [&'static str],
    arg: &'static [&'static str],
    what: &'static str,
) -> Probe {
    Probe {
        id,
        group,
        target: Target::Function { names, arg },
        what,
    }
}

const fn syscall(id: &'static str, group: Group, name: &'static str, what: &'static str) -> Probe {
    Probe {
        id,
        group,
        target: Target::Syscall(name),
        what,
    }
}

const fn event(
    id: &'static str,
    group: Group,
    name: &'static str,
    field: &'static str,
    what: &'static str,
) -> Probe {
    Probe {
        id,
        group,
        target: Target::Event { name, field },
        what,
    }
}

const NR: &[&str] = &["nr_pages", "npages"];

pub const CATALOG: &[Probe] = &[
    func(
        "memmap_init_zone_device",
        Group::Memmap,
        &["memmap_init_zone_device"],
        NR,
        "initialises the struct pages of a ZONE_DEVICE range",
    ),
    func(
        "memmap_init_compound",
        Group::Memmap,
        &["memmap_init_compound"],
        NR,
        "initialises the tail struct pages of one compound devmap page",
    ),
    func(
        "__init_zone_device_page",
        Group::Memmap,
        &["__init_zone_device_page"],
        &[],
        "initialises one ZONE_DEVICE struct page",
    ),
    func(
        "devm_memremap_pages",
        Group::Vmemmap,
        &["devm_memremap_pages"],
        &[],
        "maps a device range and creates its struct pages",
    ),
    func(
        "__populate_section_memmap",
        Group::Vmemmap,
        &["__populate_section_memmap"],
        NR,
        "populates the vmemmap of one memory section",
    ),
    func(
        "vmemmap_populate",
        Group::Vmemmap,
        &["vmemmap_populate"],
        &[],
        "allocates and maps vmemmap (struct page) pages",
    ),
    func(
        "vmemmap_populate_compound_pages",
        Group::Vmemmap,
        &["vmemmap_populate_compound_pages"],
        &[],
        "vmemmap population that reuses tail struct page pages",
    ),
    func(
        "vmemmap_alloc_block_buf",
        Group::Vmemmap,
        &["vmemmap_alloc_block_buf"],
        &["size"],
        "allocates one vmemmap block from RAM: calls x size = struct page memory allocated",
    ),
    func(
        "vmemmap_alloc_block",
        Group::Vmemmap,
        &["vmemmap_alloc_block"],
        &["size"],
        "allocates one page-table page, or one RAM vmemmap block for vmemmap_alloc_block_buf: calls less the latter's RAM calls = the vmemmap's page tables",
    ),
    // Where nr_memmap_pages is accounted (6.11+): its argument summed is what vmstat's
    // counter moved by, at the call that moved it (a third witness beside the allocator's
    // count and the counter itself: which of them disagrees, and where).
    func(
        "memmap_pages_add",
        Group::Vmemmap,
        &["memmap_pages_add"],
        &["delta"],
        "accounts struct page memory in nr_memmap_pages: delta summed = the counter's move",
    ),
    func(
        "altmap_alloc_block_buf",
        Group::Vmemmap,
        &["altmap_alloc_block_buf"],
        &["size"],
        "allocates one vmemmap block from the device (altmap, --map=dev)",
    ),
    func(
        "pin_user_pages",
        Group::Pin,
        &["pin_user_pages"],
        NR,
        "FOLL_PIN through the slow GUP path",
    ),
    func(
        "pin_user_pages_fast",
        Group::Pin,
        &["pin_user_pages_fast"],
        NR,
        "FOLL_PIN through GUP-fast",
    ),
    func(
        "__gup_longterm_locked",
        Group::Pin,
        &["__gup_longterm_locked"],
        NR,
        "FOLL_LONGTERM pins (migrates out of movable zones first)",
    ),
    func(
        "gup_fast_fallback",
        Group::Pin,
        &["gup_fast_fallback", "internal_get_user_pages_fast"],
        NR,
        "GUP-fast with slow-path fallback",
    ),
    func(
        "unpin_user_pages",
        Group::Pin,
        &["unpin_user_pages"],
        NR,
        "releases FOLL_PIN references",
    ),
    func(
        "unpin_user_folio",
        Group::Grab,
        &["unpin_user_folio"],
        &["npages"],
        "releases FOLL_PIN references on one folio (bio completion, io_uring unregistration)",
    ),
    func(
        "unpin_user_page",
        Group::Grab,
        &["unpin_user_page"],
        &[],
        "releases one FOLL_PIN reference",
    ),
    func(
        "gup_put_folio",
        Group::Grab,
        &["gup_put_folio"],
        &["refs"],
        "drops pin/get references on a folio: every unpin goes through it",
    ),
    func(
        "__bio_release_pages",
        Group::Grab,
        &["__bio_release_pages"],
        &[],
        "puts the pages of a finished bio (before 6.5, O_DIRECT's FOLL_GET references: one inlined put_page per page)",
    ),
    func(
        "get_user_pages_fast",
        Group::Pin,
        &["get_user_pages_fast"],
        NR,
        "FOLL_GET references through GUP-fast (not a pin)",
    ),
    func(
        "io_pin_pages",
        Group::Pin,
        &["io_pin_pages"],
        &[],
        "io_uring's long-term pin of a registered buffer",
    ),
    func(
        "io_sqe_buffer_register",
        Group::Pin,
        &["io_sqe_buffer_register"],
        &[],
        "io_uring fixed-buffer registration",
    ),
    syscall(
        "sys_io_uring_register",
        Group::Pin,
        "io_uring_register",
        "io_uring_register(2): buffer registration and unregistration",
    ),
    // 6.1 has both: try_grab_folio for GUP-fast, try_grab_page (one reference per call) for
    // slow GUP and GUP-fast's devmap path; each is traced under its own name.
    func(
        "try_grab_folio",
        Group::Grab,
        &["try_grab_folio"],
        &["refs"],
        "takes pin/get references on a folio (slow GUP; GUP-fast before 6.10)",
    ),
    func(
        "try_grab_page",
        Group::Grab,
        &["try_grab_page"],
        &[],
        "takes one pin/get reference on a page (slow GUP and GUP-fast's devmap path, before 6.10)",
    ),
    func(
        "try_grab_folio_fast",
        Group::Grab,
        &["try_grab_folio_fast"],
        &["refs"],
        "takes pin/get references on a folio (GUP-fast)",
    ),
    func(
        "folio_add_anon_rmap_ptes",
        Group::Rmap,
        &["folio_add_anon_rmap_ptes", "page_add_anon_rmap"],
        NR,
        "adds anon rmap for a batch of PTEs of one folio",
    ),
    func(
        "folio_remove_rmap_ptes",
        Group::Rmap,
        &["folio_remove_rmap_ptes", "page_remove_rmap"],
        NR,
        "removes rmap for a batch of PTEs of one folio",
    ),
    func(
        "folio_add_file_rmap_ptes",
        Group::Rmap,
        &["folio_add_file_rmap_ptes", "page_add_file_rmap"],
        NR,
        "adds file rmap for a batch of PTEs of one folio",
    ),
    func(
        "folio_try_dup_anon_rmap_ptes",
        Group::Rmap,
        &["folio_try_dup_anon_rmap_ptes", "page_try_dup_anon_rmap"],
        NR,
        "fork's rmap duplication for a batch of PTEs",
    ),
    // HugeTLB's rmap (seed 003's hugetlb_* calls) is per whole folio and static inline on
    // 6.8+ (hugetlb_add_new_anon_rmap, hugetlb_try_dup_anon_rmap, hugetlb_remove_rmap; the
    // out-of-line hugetlb_add_anon_rmap serves only migration): counted at their callers,
    // the fault (once per folio) and the page-table walks of fork and munmap (once per VMA).
    func(
        "hugetlb_fault",
        Group::Rmap,
        &["hugetlb_fault"],
        &[],
        "one HugeTLB page fault (a COW copies and maps a whole folio)",
    ),
    func(
        "copy_hugetlb_page_range",
        Group::Rmap,
        &["copy_hugetlb_page_range"],
        &[],
        "fork's copy of one HugeTLB VMA's page table entries (dups each folio's rmap)",
    ),
    func(
        "__unmap_hugepage_range",
        Group::Rmap,
        &["__unmap_hugepage_range"],
        &[],
        "zaps a range of one HugeTLB VMA (removes each folio's rmap)",
    ),
    syscall(
        "sys_munmap",
        Group::Rmap,
        "munmap",
        "munmap(2): zaps PTEs, removes rmap",
    ),
    syscall(
        "sys_mprotect",
        Group::Rmap,
        "mprotect",
        "mprotect(2): splits PMD mappings (PTE-remap)",
    ),
    syscall(
        "sys_madvise",
        Group::Rmap,
        "madvise",
        "madvise(2): MADV_DONTNEED zaps PTEs",
    ),
    event(
        "dax_pmd_fault_done",
        Group::Fault,
        "fs_dax:dax_pmd_fault_done",
        "result",
        "an fsdax PMD fault ended: NOPAGE mapped 2 MiB, FALLBACK retries with PTEs",
    ),
    event(
        "dax_pte_fault_done",
        Group::Fault,
        "fs_dax:dax_pte_fault_done",
        "result",
        "an fsdax PTE (4 KiB) fault ended",
    ),
    // How a DAX fault maps what it found: a folio (fsdax since 6.15, "ZONE_DEVICE folios")
    // or a bare pfn (before). By PMD (an order-9 folio) or by PTE (a base page).
    func(
        "vmf_insert_folio_pmd",
        Group::Fault,
        &["vmf_insert_folio_pmd"],
        &[],
        "maps a PMD-sized folio (order 9) at a fault: fsdax faults since 6.15",
    ),
    func(
        "vmf_insert_pfn_pmd",
        Group::Fault,
        &["vmf_insert_pfn_pmd", "vmf_insert_pfn_pmd_prot"],
        &[],
        "maps a 2 MiB pfn range by PMD, no folio: fsdax faults before 6.15",
    ),
    func(
        "vmf_insert_page_mkwrite",
        Group::Fault,
        &["vmf_insert_page_mkwrite"],
        &[],
        "maps one page (its folio) by PTE at a fault: fsdax PTE faults since 6.15",
    ),
    func(
        "vmf_insert_mixed",
        Group::Fault,
        &["vmf_insert_mixed", "vmf_insert_mixed_mkwrite"],
        &[],
        "maps one pfn by PTE at a fault, no folio: fsdax PTE faults before 6.15",
    ),
    func(
        "dev_dax_probe",
        Group::Dax,
        &["dev_dax_probe"],
        &[],
        "device-dax probe (memremaps the namespace)",
    ),
    // Per folio: 6.12+ has static out-of-line __*_folio functions under the batched
    // hugetlb_vmemmap_{optimize,restore}_folios that a pool write takes; 6.1 has only the
    // per-page hugetlb_vmemmap_{optimize,restore}. Both are called for every folio, HVO on
    // or off (they return early when it does not apply): calls count pages, not savings.
    func(
        "__hugetlb_vmemmap_optimize_folio",
        Group::Hugetlb,
        &["__hugetlb_vmemmap_optimize_folio", "hugetlb_vmemmap_optimize"],
        &[],
        "optimizes one HugeTLB folio's vmemmap (frees all but its head page)",
    ),
    func(
        "__hugetlb_vmemmap_restore_folio",
        Group::Hugetlb,
        &["__hugetlb_vmemmap_restore_folio", "hugetlb_vmemmap_restore"],
        &[],
        "restores one HugeTLB folio's vmemmap before it is freed",
    ),
];

/// Probes selected by `--probe`: a probe id or a group name (memmap, vmemmap, pin, grab,
/// rmap, dax). Unknown names are returned as the error.
pub fn select(names: &[String]) -> Result<Vec<&'static Probe>, String> {
    let mut out: Vec<&'static Probe> = Vec::new();
    for n in names {
        let found: Vec<&'static Probe> = CATALOG
            .iter()
            .filter(|p| p.id == n || group_name(p.group) == n)
            .collect();
        if found.is_empty() {
            return Err(n.clone());
        }
        for p in found {
            if !out.iter().any(|o| o.id == p.id) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// A probe on any kernel function by name (`trace --function`), resolved like the catalog's
/// (fentry, else kprobe, a `.constprop` clone included). The catalog is static data; the
/// handful of names given on a command line are leaked to live as long as it.
pub fn function_probe(name: &str) -> &'static Probe {
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    let names: &'static [&'static str] = Box::leak(Box::new([name]));
    Box::leak(Box::new(Probe {
        id: name,
        group: Group::Function,
        target: Target::Function { names, arg: &[] },
        what: "a kernel function named with --function",
    }))
}

pub fn group_name(g: Group) -> &'static str {
    match g {
        Group::Memmap => "memmap",
        Group::Vmemmap => "vmemmap",
        Group::Pin => "pin",
        Group::Grab => "grab",
        Group::Rmap => "rmap",
        Group::Dax => "dax",
        Group::Fault => "fault",
        Group::Hugetlb => "hugetlb",
        Group::Function => "function",
    }
}

/// What the running kernel offers for resolving a probe; built once from kallsyms, BTF,
/// ftrace and the capability probe.
pub trait KernelView {
    fn in_kallsyms(&self, name: &str) -> bool;
    fn clones_of(&self, name: &str) -> Vec<String>;
    fn btf_home(&self, name: &str) -> Option<BtfHome>;
    /// `None` when ftrace's list could not be read.
    fn ftrace_patchable(&self, name: &str) -> Option<bool>;
    fn flavour_usable(&self, f: Flavour) -> bool;
    /// Index and name of the first parameter of `func` named one of `names` (from BTF).
    fn param_index(&self, func: &str, names: &[&str]) -> Option<(usize, String)>;
    /// Whether tracefs lists the tracepoint; `None` when tracefs cannot be read.
    fn tracepoint_exists(&self, category: &str, name: &str) -> Option<bool>;
    /// Byte offset of an integer field in the tracepoint's record (tracefs `format`).
    fn tracepoint_field(&self, _category: &str, _name: &str, _field: &str) -> Option<usize> {
        None
    }
}

/// The names of a function's `struct vm_area_struct *` parameter, first match wins: `vma`
/// (the rmap functions, hugetlb_fault, __unmap_hugepage_range), `src_vma` (fork's
/// copy_hugetlb_page_range: the parent's VMA, whose range the child's copy shares).
const VMA_PARAMS: &[&str] = &["vma", "src_vma"];

pub fn resolve(probe: &Probe, k: &dyn KernelView) -> Resolution {
    let r = Resolution {
        probe: probe.id.to_string(),
        group: probe.group,
        kind: match probe.target {
            Target::Function { .. } => TargetKind::Function,
            Target::Syscall(_) => TargetKind::Syscall,
            Target::Event { .. } => TargetKind::Event,
        },
        function: None,
        flavour: None,
        present: false,
        btf: false,
        arg_index: None,
        arg_name: None,
        vma_index: None,
        reason: String::new(),
        count_only: false,
        stacks: false,
        stacks_every: 0,
    };
    match probe.target {
        Target::Function { names, arg } => resolve_function(r, names, arg, k),
        Target::Syscall(name) => resolve_syscall(r, name, k),
        Target::Event { name, field } => resolve_event(r, name, field, k),
    }
}

fn resolve_event(mut r: Resolution, full: &str, field: &str, k: &dyn KernelView) -> Resolution {
    r.function = Some(full.to_string());
    let Some((cat, name)) = full.split_once(':') else {
        r.reason = format!("'{full}' is not category:name");
        return r;
    };
    match k.tracepoint_exists(cat, name) {
        Some(false) => {
            r.reason = format!("no tracepoint {full} in this kernel");
            return r;
        }
        None => {
            r.reason = "tracefs is not readable, so tracepoints cannot be found".into();
            return r;
        }
        Some(true) => r.present = true,
    }
    if !k.flavour_usable(Flavour::Tracepoint) {
        r.reason = "tracepoint programs do not work here".into();
        return r;
    }
    r.flavour = Some(Flavour::Tracepoint);
    r.reason = format!("tracepoint {full}");
    match k.tracepoint_field(cat, name, field) {
        Some(off) => {
            r.reason
                .push_str(&format!("; records {field} (offset {off} of its record)"));
            r.arg_index = Some(off);
            r.arg_name = Some(field.to_string());
        }
        None => r.reason.push_str(&format!(
            "; no field {field} in its format, so none is recorded"
        )),
    }
    r
}

/// The offset of `field` in a tracefs `format` file's text (`field:int result; offset:72;`).
pub fn format_field_offset(format: &str, field: &str) -> Option<usize> {
    format.lines().find_map(|l| {
        let l = l.trim();
        let decl = l.strip_prefix("field:")?.split(';').next()?;
        let name = decl.split_whitespace().last()?;
        if name != field {
            return None;
        }
        l.split(';')
            .find_map(|p| p.trim().strip_prefix("offset:"))
            .and_then(|o| o.trim().parse().ok())
    })
}

fn resolve_syscall(mut r: Resolution, name: &str, k: &dyn KernelView) -> Resolution {
    let enter = format!("sys_enter_{name}");
    r.function = Some(format!("syscalls:{enter}"));
    match k.tracepoint_exists("syscalls", &enter) {
        Some(false) => {
            r.reason =
                format!("no tracepoint syscalls:{enter} (kernel without syscall tracepoints?)");
            return r;
        }
        _ => r.present = true,
    }
    if k.flavour_usable(Flavour::Tracepoint) {
        r.flavour = Some(Flavour::Tracepoint);
        r.reason = format!(
            "tracepoints syscalls:sys_enter_{name}/sys_exit_{name}: latency of the whole syscall"
        );
    } else {
        r.reason = "tracepoint programs do not work here".into();
    }
    r
}

fn resolve_function(
    mut r: Resolution,
    names: &[&str],
    arg: &[&str],
    k: &dyn KernelView,
) -> Resolution {
    let Some(name) = names.iter().find(|n| k.in_kallsyms(n)) else {
        // Not a symbol under any name: inlined everywhere, only cloned, or absent.
        let clones: Vec<String> = names.iter().flat_map(|n| k.clones_of(n)).collect();
        if let Some(clone) = clones.first() {
            r.function = Some(clone.clone());
            r.present = true;
            if k.flavour_usable(Flavour::Kprobe) {
                r.flavour = Some(Flavour::Kprobe);
                r.reason = format!("only a compiler clone {clone} (no BTF): kprobe on the clone");
            } else {
                r.reason = format!(
                    "only a compiler clone {clone} (no BTF for fentry) and kprobes are unavailable"
                );
            }
        } else {
            r.reason = format!(
                "not in /proc/kallsyms as {}: inlined or not built into this kernel",
                names.join(" or ")
            );
        }
        return r;
    };
    r.function = Some(name.to_string());
    r.present = true;
    let btf = k.btf_home(name);
    r.btf = btf.is_some();
    let ftrace = k.ftrace_patchable(name);
    let alias = if name == &names[0] {
        String::new()
    } else {
        format!(" (this kernel's name for {})", names[0])
    };

    if ftrace == Some(false) {
        r.reason = format!(
            "{name}{alias} is not in available_filter_functions (notrace or ftrace-blacklisted)"
        );
        return r;
    }
    if r.btf && k.flavour_usable(Flavour::Fentry) {
        r.flavour = Some(Flavour::Fentry);
        let home = match btf {
            Some(BtfHome::Module(m)) => format!(" (BTF of module {m})"),
            _ => String::new(),
        };
        r.reason = format!("fentry/fexit on {name}{alias}{home}");
    } else if k.flavour_usable(Flavour::Kprobe) {
        r.flavour = Some(Flavour::Kprobe);
        r.reason = if r.btf {
            format!("kprobe/kretprobe on {name}{alias}: fentry is not usable on this kernel")
        } else {
            format!("kprobe/kretprobe on {name}{alias}: no BTF entry, so no fentry")
        };
    } else {
        r.reason = format!(
            "{name}{alias} exists but neither fentry{} nor kprobes are usable here",
            if r.btf { "" } else { " (no BTF)" }
        );
    }
    if r.flavour.is_some() {
        // The VMA a call works on: what lets a span count one mapping's calls alone.
        r.vma_index = k.param_index(name, VMA_PARAMS).map(|(i, _)| i);
    }
    if r.flavour.is_some() && !arg.is_empty() {
        match k.param_index(name, arg) {
            Some((i, n)) => {
                r.reason.push_str(&format!("; records {n} (argument {i})"));
                r.arg_index = Some(i);
                r.arg_name = Some(n);
            }
            None => r.reason.push_str(&format!(
                "; no parameter named {} in its BTF signature, so none is recorded",
                arg.join(" or ")
            )),
        }
    }
    r
}

/// The running kernel, as the resolver sees it.
pub struct LiveKernel<'a> {
    pub kallsyms: &'a Kallsyms,
    pub btf: Option<&'a KernelBtf>,
    pub ftrace: &'a FilterFunctions,
    pub flavours: &'a [FlavourSupport],
}

impl KernelView for LiveKernel<'_> {
    fn in_kallsyms(&self, name: &str) -> bool {
        self.kallsyms.has(name)
    }
    fn clones_of(&self, name: &str) -> Vec<String> {
        self.kallsyms.clones_of(name)
    }
    fn btf_home(&self, name: &str) -> Option<BtfHome> {
        self.btf.and_then(|b| b.function(name))
    }
    fn ftrace_patchable(&self, name: &str) -> Option<bool> {
        self.ftrace.contains(name)
    }
    fn flavour_usable(&self, f: Flavour) -> bool {
        self.flavours.iter().any(|s| s.flavour == f && s.usable())
    }
    fn param_index(&self, func: &str, names: &[&str]) -> Option<(usize, String)> {
        self.btf?.param_index(func, names)
    }
    fn tracepoint_exists(&self, category: &str, name: &str) -> Option<bool> {
        tracefs_events().map(|d| d.join(category).join(name).exists())
    }
    fn tracepoint_field(&self, category: &str, name: &str, field: &str) -> Option<usize> {
        let f = std::fs::read_to_string(tracefs_events()?.join(category).join(name).join("format"));
        format_field_offset(&f.ok()?, field)
    }
}

/// The tracefs `events` directory, if tracefs is mounted and readable.
pub fn tracefs_events() -> Option<std::path::PathBuf> {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .map(std::path::PathBuf::from)
    .find(|p| std::fs::read_dir(p).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Fake {
        syms: HashSet<&'static str>,
        clones: Vec<(&'static str, &'static str)>,
        btf: HashSet<&'static str>,
        ftrace: Option<HashSet<&'static str>>,
        flavours: Vec<Flavour>,
    }

    impl KernelView for Fake {
        fn in_kallsyms(&self, n: &str) -> bool {
            self.syms.contains(n)
        }
        fn clones_of(&self, n: &str) -> Vec<String> {
            self.clones
                .iter()
                .filter(|(b, _)| *b == n)
                .map(|(_, c)| c.to_string())
                .collect()
        }
        fn btf_home(&self, n: &str) -> Option<BtfHome> {
            self.btf.contains(n).then_some(BtfHome::Vmlinux)
        }
        fn ftrace_patchable(&self, n: &str) -> Option<bool> {
            self.ftrace.as_ref().map(|s| s.contains(n))
        }
        fn flavour_usable(&self, f: Flavour) -> bool {
            self.flavours.contains(&f)
        }
        fn param_index(&self, func: &str, names: &[&str]) -> Option<(usize, String)> {
            // 6.12's folio_add_anon_rmap_ptes(folio, page, nr_pages, vma, address, flags);
            // 6.1's page_add_anon_rmap(page, vma, address, flags) has no page count.
            let params: &[&str] = match func {
                "folio_add_anon_rmap_ptes" => {
                    &["folio", "page", "nr_pages", "vma", "address", "flags"]
                }
                "page_add_anon_rmap" => &["page", "vma", "address", "flags"],
                _ => return None,
            };
            names.iter().find_map(|n| {
                params
                    .iter()
                    .position(|p| p == n)
                    .map(|i| (i, n.to_string()))
            })
        }
        fn tracepoint_exists(&self, _: &str, name: &str) -> Option<bool> {
            Some(name != "sys_enter_missing")
        }
    }

    fn probe(id: &str) -> &'static Probe {
        CATALOG.iter().find(|p| p.id == id).unwrap()
    }

    /// Debian 6.12 in the test VM: fentry and kprobes usable.
    fn guest_612() -> Fake {
        let f = ["memmap_init_zone_device", "folio_add_anon_rmap_ptes"];
        Fake {
            syms: f.into_iter().collect(),
            clones: vec![(
                "__init_zone_device_page",
                "__init_zone_device_page.constprop.0",
            )],
            btf: f.into_iter().collect(),
            ftrace: Some(f.into_iter().collect()),
            flavours: vec![Flavour::Fentry, Flavour::Kprobe, Flavour::Tracepoint],
        }
    }

    #[test]
    fn fentry_preferred_when_btf_and_fentry_work() {
        let r = resolve(probe("memmap_init_zone_device"), &guest_612());
        assert_eq!(r.flavour, Some(Flavour::Fentry));
        assert_eq!(r.function.as_deref(), Some("memmap_init_zone_device"));
    }

    #[test]
    fn inlined_function_reported_not_traced() {
        let r = resolve(probe("folio_try_dup_anon_rmap_ptes"), &guest_612());
        assert_eq!(r.flavour, None);
        assert!(!r.present);
        assert!(r.reason.contains("inlined"), "{}", r.reason);
    }

    #[test]
    fn constprop_clone_falls_back_to_kprobe() {
        let r = resolve(probe("__init_zone_device_page"), &guest_612());
        assert_eq!(r.flavour, Some(Flavour::Kprobe));
        assert_eq!(
            r.function.as_deref(),
            Some("__init_zone_device_page.constprop.0")
        );
    }

    #[test]
    fn old_kernel_name_is_used_and_named() {
        let k = Fake {
            syms: ["page_add_anon_rmap"].into_iter().collect(),
            clones: vec![],
            btf: ["page_add_anon_rmap"].into_iter().collect(),
            ftrace: None,
            flavours: vec![Flavour::Fentry],
        };
        let r = resolve(probe("folio_add_anon_rmap_ptes"), &k);
        assert_eq!(r.function.as_deref(), Some("page_add_anon_rmap"));
        assert_eq!(r.flavour, Some(Flavour::Fentry));
        assert!(r
            .reason
            .contains("this kernel's name for folio_add_anon_rmap_ptes"));
        assert_eq!(
            r.arg_index, None,
            "6.1's page_add_anon_rmap has no nr_pages"
        );
        assert_eq!(r.vma_index, Some(1), "page_add_anon_rmap(page, vma, ..)");
        assert!(
            r.reason.contains("no parameter named nr_pages"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn argument_position_comes_from_btf() {
        let mut k = guest_612();
        k.syms.insert("folio_add_anon_rmap_ptes");
        let r = resolve(probe("folio_add_anon_rmap_ptes"), &k);
        assert_eq!(r.arg_index, Some(2));
        assert_eq!(r.vma_index, Some(3), "(folio, page, nr_pages, vma, ..)");
        assert_eq!(r.arg_name.as_deref(), Some("nr_pages"));
    }

    #[test]
    fn syscall_tracepoints_are_what_remains_on_the_host() {
        let host = Fake {
            syms: HashSet::new(),
            clones: vec![],
            btf: HashSet::new(),
            ftrace: None,
            flavours: vec![Flavour::Tracepoint],
        };
        let r = resolve(probe("sys_io_uring_register"), &host);
        assert_eq!(r.flavour, Some(Flavour::Tracepoint));
        assert_eq!(
            r.function.as_deref(),
            Some("syscalls:sys_enter_io_uring_register")
        );
        let none = Fake {
            flavours: vec![],
            ..host
        };
        assert_eq!(resolve(probe("sys_io_uring_register"), &none).flavour, None);
    }

    #[test]
    fn selection_by_id_and_group() {
        let pin = select(&["pin".into()]).unwrap();
        assert!(pin.iter().all(|p| p.group == Group::Pin) && pin.len() >= 7);
        let two = select(&["memmap_init_zone_device".into(), "memmap".into()]).unwrap();
        assert_eq!(
            two.iter()
                .filter(|p| p.id == "memmap_init_zone_device")
                .count(),
            1,
            "no duplicates"
        );
        assert_eq!(select(&["pinn".into()]).unwrap_err(), "pinn");
    }

    /// The host here: tracepoints only, ftrace list unreadable.
    #[test]
    fn host_without_fentry_or_kprobes_traces_nothing_by_function() {
        let k = Fake {
            syms: ["pin_user_pages"].into_iter().collect(),
            clones: vec![],
            btf: ["pin_user_pages"].into_iter().collect(),
            ftrace: None,
            flavours: vec![Flavour::Tracepoint],
        };
        let r = resolve(probe("pin_user_pages"), &k);
        assert!(r.present && r.btf);
        assert_eq!(r.flavour, None);
        assert!(
            r.reason.contains("neither fentry nor kprobes"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn notrace_function_is_refused() {
        let mut k = guest_612();
        k.ftrace = Some(HashSet::new());
        let r = resolve(probe("memmap_init_zone_device"), &k);
        assert_eq!(r.flavour, None);
        assert!(r.reason.contains("available_filter_functions"));
    }

    /// 6.12's fs_dax:dax_pmd_fault_done format, as tracefs printed it in the test VM.
    #[test]
    fn event_fields_are_found_by_name_in_the_format() {
        let format = "name: dax_pmd_fault_done\nID: 1062\nformat:\n\
            \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
            \tfield:unsigned long ino;\toffset:8;\tsize:8;\tsigned:0;\n\
            \tfield:unsigned int flags;\toffset:68;\tsize:4;\tsigned:0;\n\
            \tfield:int result;\toffset:72;\tsize:4;\tsigned:1;\n";
        assert_eq!(format_field_offset(format, "result"), Some(72));
        assert_eq!(format_field_offset(format, "flags"), Some(68));
        assert_eq!(format_field_offset(format, "resul"), None);
        let r = resolve(probe("dax_pmd_fault_done"), &guest_612());
        assert_eq!(r.flavour, Some(Flavour::Tracepoint));
        assert_eq!(r.function.as_deref(), Some("fs_dax:dax_pmd_fault_done"));
        // The fake kernel has no format files: counted, no field.
        assert_eq!(r.arg_index, None);
        assert!(r.reason.contains("no field result"), "{}", r.reason);
    }

    #[test]
    fn catalog_ids_unique_and_names_nonempty() {
        let mut seen = HashSet::new();
        for p in CATALOG {
            assert!(seen.insert(p.id), "duplicate probe id {}", p.id);
            if let Target::Function { names, .. } = p.target {
                assert!(!names.is_empty());
                assert_eq!(names[0], p.id, "the newest name is the probe's id");
            }
        }
    }
}
