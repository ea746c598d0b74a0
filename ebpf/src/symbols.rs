//! What the kernel says about its own functions: `/proc/kallsyms` (is it there at all, or
//! only as a compiler clone such as `foo.constprop.0`?) and ftrace's
//! `available_filter_functions` (can fentry/kprobe-on-ftrace patch it?).

use std::collections::{HashMap, HashSet};

/// Text symbols from `/proc/kallsyms`.
#[derive(Debug, Default)]
pub struct Kallsyms {
    exact: HashSet<String>,
    /// base name -> clone names (`foo` -> [`foo.constprop.0`]).
    clones: HashMap<String, Vec<String>>,
}

/// The address of a data symbol (`vmemmap_base`) in kallsyms text; `None` when absent or
/// shown as 0 (kptr_restrict hides addresses from this reader).
pub fn data_address(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        let (addr, ty, sym) = (it.next()?, it.next()?, it.next()?);
        let data = matches!(ty, "d" | "D" | "b" | "B");
        let addr = u64::from_str_radix(addr, 16).ok()?;
        (data && sym == name && addr != 0).then_some(addr)
    })
}

impl Kallsyms {
    pub fn read() -> std::io::Result<Kallsyms> {
        Ok(Self::parse(&std::fs::read_to_string("/proc/kallsyms")?))
    }

    /// Parses kallsyms text: `address type name [module]`. Only text symbols count.
    pub fn parse(text: &str) -> Kallsyms {
        let mut k = Kallsyms::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let (Some(_addr), Some(ty), Some(name)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            if !matches!(ty, "t" | "T") {
                continue;
            }
            match name.split_once('.') {
                Some((base, _)) => k
                    .clones
                    .entry(base.to_string())
                    .or_default()
                    .push(name.to_string()),
                None => {
                    k.exact.insert(name.to_string());
                }
            }
        }
        k
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.clones.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.exact.contains(name)
    }

    /// Compiler clones of a function (`.constprop.N`, `.isra.N`, `.part.N`), excluding
    /// `.cold` fragments, which are not callable entry points.
    pub fn clones_of(&self, name: &str) -> Vec<String> {
        self.clones
            .get(name)
            .map(|v| {
                v.iter()
                    .filter(|c| !c.ends_with(".cold"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Kernel text addresses to names, for stacks: every text symbol of `/proc/kallsyms`
/// (modules' and BPF programs' too), by address.
#[derive(Debug, Default)]
pub struct Addresses(Vec<(u64, String)>);

impl Addresses {
    pub fn read() -> Addresses {
        Self::parse(&std::fs::read_to_string("/proc/kallsyms").unwrap_or_default())
    }

    pub fn parse(text: &str) -> Addresses {
        let mut v: Vec<(u64, String)> = text
            .lines()
            .filter_map(|line| {
                let mut it = line.split_whitespace();
                let (addr, ty, name) = (it.next()?, it.next()?, it.next()?);
                let addr = u64::from_str_radix(addr, 16).ok()?;
                (matches!(ty, "t" | "T") && addr != 0).then(|| (addr, name.to_string()))
            })
            .collect();
        v.sort();
        Addresses(v)
    }

    /// The function an address lies in (the nearest symbol at or below it); `?` when
    /// there is none (or kallsyms hides addresses from this reader).
    pub fn name(&self, ip: u64) -> &str {
        match self.0.partition_point(|(a, _)| *a <= ip) {
            0 => "?",
            i => &self.0[i - 1].1,
        }
    }
}

/// ftrace's list of patchable functions, or why it could not be read.
#[derive(Debug)]
pub enum FilterFunctions {
    Readable(HashSet<String>),
    Unreadable(String),
}

impl FilterFunctions {
    const PATHS: [&'static str; 2] = [
        "/sys/kernel/tracing/available_filter_functions",
        "/sys/kernel/debug/tracing/available_filter_functions",
    ];

    pub fn read() -> FilterFunctions {
        let mut why = String::from("tracefs is not mounted");
        for p in Self::PATHS {
            match std::fs::read_to_string(p) {
                Ok(text) => return FilterFunctions::Readable(Self::parse(&text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => why = format!("{p}: {e}"),
            }
        }
        FilterFunctions::Unreadable(why)
    }

    /// Lines are `name` or `name [module]`, with `__ftrace_invalid_address___N` entries for
    /// functions ftrace lost; keep the names.
    pub fn parse(text: &str) -> HashSet<String> {
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// `Some(listed)` when the list could be read, `None` when it could not.
    pub fn contains(&self, name: &str) -> Option<bool> {
        match self {
            FilterFunctions::Readable(s) => Some(s.contains(name)),
            FilterFunctions::Unreadable(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_the_function_they_lie_in() {
        let a = Addresses::parse(
            "ffffffff81000000 T _stext\nffffffff812a0000 t try_grab_folio\n\
             ffffffff812a0400 T gup_fast_pud_leaf\nffffffff812a0800 D some_data\n\
             ffffffffc0100000 t bpf_prog_6deef7357e7b4530_fentry_entry_3\t[bpf]\n",
        );
        assert_eq!(a.name(0xffffffff812a0010), "try_grab_folio");
        assert_eq!(a.name(0xffffffff812a0400), "gup_fast_pud_leaf");
        // Data symbols are not functions: the text symbol before it still holds.
        assert_eq!(a.name(0xffffffff812a0900), "gup_fast_pud_leaf");
        assert_eq!(
            a.name(0xffffffffc0100008),
            "bpf_prog_6deef7357e7b4530_fentry_entry_3"
        );
        assert_eq!(a.name(0x1000), "?");
    }

    // Recorded from the Debian 6.12 guest (trimmed).
    const KALLSYMS: &str = "\
ffffffff81234560 T memmap_init_zone_device
ffffffff81234890 t __init_zone_device_page.constprop.0
ffffffff81234990 t foo.cold
ffffffff81300000 D some_data
ffffffffc0a01000 t dev_dax_probe\t[device_dax]
";

    #[test]
    fn kallsyms_exact_clones_and_modules() {
        let k = Kallsyms::parse(KALLSYMS);
        assert!(k.has("memmap_init_zone_device"));
        assert!(k.has("dev_dax_probe"), "module symbols count");
        assert!(!k.has("__init_zone_device_page"), "only a clone exists");
        assert_eq!(
            k.clones_of("__init_zone_device_page"),
            vec!["__init_zone_device_page.constprop.0".to_string()]
        );
        assert!(k.clones_of("foo").is_empty(), ".cold is not an entry point");
        assert!(!k.has("some_data"), "data symbols are not functions");
    }

    #[test]
    fn filter_functions_with_modules() {
        let s = FilterFunctions::parse("pin_user_pages\ndev_dax_probe [device_dax]\n");
        assert!(s.contains("pin_user_pages"));
        assert!(s.contains("dev_dax_probe"));
        assert_eq!(s.len(), 2);
    }
}
