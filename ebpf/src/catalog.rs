//! The probe catalog: which kernel functions foliobench traces, under which names on which
//! kernels, and how each resolves on the running kernel (fentry, kprobe, or not at all, and why).

pub use foliobench_reports::facts::{Flavour, FlavourSupport, Group, Resolution};

use crate::btf::{BtfHome, KernelBtf};
use crate::symbols::{FilterFunctions, Kallsyms};

/// One traced kernel function. `names` lists the function's names newest first: the
/// resolver takes the first that exists, so one entry covers e.g. 6.12 and 6.1.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub id: &'static str,
    pub group: Group,
    pub names: &'static [&'static str],
    /// Which argument (0-based) carries a page count, where the probe records one.
    pub nr_pages_arg: Option<usize>,
    pub what: &'static str,
}

pub const CATALOG: &[Probe] = &[
    Probe {
        id: "memmap_init_zone_device",
        group: Group::Memmap,
        names: &["memmap_init_zone_device"],
        nr_pages_arg: Some(2),
        what: "initialises the struct pages of a ZONE_DEVICE range",
    },
    Probe {
        id: "memmap_init_compound",
        group: Group::Memmap,
        names: &["memmap_init_compound"],
        nr_pages_arg: Some(5),
        what: "initialises the tail struct pages of one compound devmap page",
    },
    Probe {
        id: "__init_zone_device_page",
        group: Group::Memmap,
        names: &["__init_zone_device_page"],
        nr_pages_arg: None,
        what: "initialises one ZONE_DEVICE struct page",
    },
    Probe {
        id: "devm_memremap_pages",
        group: Group::Vmemmap,
        names: &["devm_memremap_pages"],
        nr_pages_arg: None,
        what: "maps a device range and creates its struct pages",
    },
    Probe {
        id: "__populate_section_memmap",
        group: Group::Vmemmap,
        names: &["__populate_section_memmap"],
        nr_pages_arg: Some(1),
        what: "populates the vmemmap of one memory section",
    },
    Probe {
        id: "vmemmap_populate",
        group: Group::Vmemmap,
        names: &["vmemmap_populate"],
        nr_pages_arg: None,
        what: "allocates and maps vmemmap (struct page) pages",
    },
    Probe {
        id: "vmemmap_populate_compound_pages",
        group: Group::Vmemmap,
        names: &["vmemmap_populate_compound_pages"],
        nr_pages_arg: None,
        what: "vmemmap population that reuses tail struct page pages",
    },
    Probe {
        id: "pin_user_pages",
        group: Group::Pin,
        names: &["pin_user_pages"],
        nr_pages_arg: Some(2),
        what: "FOLL_PIN through the slow GUP path",
    },
    Probe {
        id: "pin_user_pages_fast",
        group: Group::Pin,
        names: &["pin_user_pages_fast"],
        nr_pages_arg: Some(1),
        what: "FOLL_PIN through GUP-fast",
    },
    Probe {
        id: "__gup_longterm_locked",
        group: Group::Pin,
        names: &["__gup_longterm_locked"],
        nr_pages_arg: Some(3),
        what: "FOLL_LONGTERM pins (migrates out of movable zones first)",
    },
    Probe {
        id: "gup_fast_fallback",
        group: Group::Pin,
        names: &["gup_fast_fallback", "internal_get_user_pages_fast"],
        nr_pages_arg: Some(1),
        what: "GUP-fast with slow-path fallback",
    },
    Probe {
        id: "unpin_user_pages",
        group: Group::Pin,
        names: &["unpin_user_pages"],
        nr_pages_arg: Some(1),
        what: "releases FOLL_PIN references",
    },
    Probe {
        id: "io_pin_pages",
        group: Group::Pin,
        names: &["io_pin_pages"],
        nr_pages_arg: None,
        what: "io_uring's long-term pin of a registered buffer",
    },
    Probe {
        id: "io_sqe_buffer_register",
        group: Group::Pin,
        names: &["io_sqe_buffer_register"],
        nr_pages_arg: None,
        what: "io_uring fixed-buffer registration",
    },
    Probe {
        id: "try_grab_folio",
        group: Group::Grab,
        names: &["try_grab_folio", "try_grab_page"],
        nr_pages_arg: Some(1),
        what: "takes pin/get references on a folio (slow GUP)",
    },
    Probe {
        id: "try_grab_folio_fast",
        group: Group::Grab,
        names: &["try_grab_folio_fast"],
        nr_pages_arg: Some(1),
        what: "takes pin/get references on a folio (GUP-fast)",
    },
    Probe {
        id: "folio_add_anon_rmap_ptes",
        group: Group::Rmap,
        names: &["folio_add_anon_rmap_ptes", "page_add_anon_rmap"],
        nr_pages_arg: Some(2),
        what: "adds anon rmap for a batch of PTEs of one folio",
    },
    Probe {
        id: "folio_remove_rmap_ptes",
        group: Group::Rmap,
        names: &["folio_remove_rmap_ptes", "page_remove_rmap"],
        nr_pages_arg: Some(2),
        what: "removes rmap for a batch of PTEs of one folio",
    },
    Probe {
        id: "folio_add_file_rmap_ptes",
        group: Group::Rmap,
        names: &["folio_add_file_rmap_ptes", "page_add_file_rmap"],
        nr_pages_arg: Some(2),
        what: "adds file rmap for a batch of PTEs of one folio",
    },
    Probe {
        id: "folio_try_dup_anon_rmap_ptes",
        group: Group::Rmap,
        names: &["folio_try_dup_anon_rmap_ptes", "page_try_dup_anon_rmap"],
        nr_pages_arg: Some(2),
        what: "fork's rmap duplication for a batch of PTEs",
    },
    Probe {
        id: "dev_dax_probe",
        group: Group::Dax,
        names: &["dev_dax_probe"],
        nr_pages_arg: None,
        what: "device-dax probe (memremaps the namespace)",
    },
];

/// What the running kernel offers for resolving a probe; built once from kallsyms, BTF,
/// ftrace and the capability probe.
pub trait KernelView {
    fn in_kallsyms(&self, name: &str) -> bool;
    fn clones_of(&self, name: &str) -> Vec<String>;
    fn btf_home(&self, name: &str) -> Option<BtfHome>;
    /// `None` when ftrace's list could not be read.
    fn ftrace_patchable(&self, name: &str) -> Option<bool>;
    fn flavour_usable(&self, f: Flavour) -> bool;
}

pub fn resolve(probe: &Probe, k: &dyn KernelView) -> Resolution {
    let mut r = Resolution {
        probe: probe.id.to_string(),
        group: probe.group,
        function: None,
        mechanism: None,
        present: false,
        btf: false,
        reason: String::new(),
    };
    let Some(name) = probe.names.iter().find(|n| k.in_kallsyms(n)) else {
        // Not a symbol under any name: inlined everywhere, only cloned, or absent.
        let clones: Vec<String> = probe.names.iter().flat_map(|n| k.clones_of(n)).collect();
        if let Some(clone) = clones.first() {
            r.function = Some(clone.clone());
            r.present = true;
            if k.flavour_usable(Flavour::Kprobe) {
                r.mechanism = Some(Flavour::Kprobe);
                r.reason = format!("only a compiler clone {clone} (no BTF): kprobe on the clone");
            } else {
                r.reason = format!(
                    "only a compiler clone {clone} (no BTF for fentry) and kprobes are unavailable"
                );
            }
        } else {
            r.reason = format!(
                "not in /proc/kallsyms as {}: inlined or not built into this kernel",
                probe.names.join(" or ")
            );
        }
        return r;
    };
    r.function = Some(name.to_string());
    r.present = true;
    let btf = k.btf_home(name);
    r.btf = btf.is_some();
    let ftrace = k.ftrace_patchable(name);
    let alias = if name == &probe.names[0] {
        String::new()
    } else {
        format!(" (this kernel's name for {})", probe.names[0])
    };

    if ftrace == Some(false) {
        r.reason = format!(
            "{name}{alias} is not in available_filter_functions (notrace or ftrace-blacklisted)"
        );
        return r;
    }
    if r.btf && k.flavour_usable(Flavour::Fentry) {
        r.mechanism = Some(Flavour::Fentry);
        let home = match btf {
            Some(BtfHome::Module(m)) => format!(" (BTF of module {m})"),
            _ => String::new(),
        };
        r.reason = format!("fentry/fexit on {name}{alias}{home}");
    } else if k.flavour_usable(Flavour::Kprobe) {
        r.mechanism = Some(Flavour::Kprobe);
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
}

/// Resolves the whole catalog on the running kernel.
pub fn resolve_all(k: &dyn KernelView) -> Vec<Resolution> {
    CATALOG.iter().map(|p| resolve(p, k)).collect()
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
        assert_eq!(r.mechanism, Some(Flavour::Fentry));
        assert_eq!(r.function.as_deref(), Some("memmap_init_zone_device"));
    }

    #[test]
    fn inlined_function_reported_not_traced() {
        let r = resolve(probe("folio_try_dup_anon_rmap_ptes"), &guest_612());
        assert_eq!(r.mechanism, None);
        assert!(!r.present);
        assert!(r.reason.contains("inlined"), "{}", r.reason);
    }

    #[test]
    fn constprop_clone_falls_back_to_kprobe() {
        let r = resolve(probe("__init_zone_device_page"), &guest_612());
        assert_eq!(r.mechanism, Some(Flavour::Kprobe));
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
        assert_eq!(r.mechanism, Some(Flavour::Fentry));
        assert!(r
            .reason
            .contains("this kernel's name for folio_add_anon_rmap_ptes"));
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
        assert_eq!(r.mechanism, None);
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
        assert_eq!(r.mechanism, None);
        assert!(r.reason.contains("available_filter_functions"));
    }

    #[test]
    fn catalog_ids_unique_and_names_nonempty() {
        let mut seen = HashSet::new();
        for p in CATALOG {
            assert!(seen.insert(p.id), "duplicate probe id {}", p.id);
            assert!(!p.names.is_empty());
            assert_eq!(p.names[0], p.id, "the newest name is the probe's id");
        }
    }
}
