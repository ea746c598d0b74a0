//! What the kernel reports for the pages of a mapping: shared by the fsdax and pin suites.

use serde::{Deserialize, Serialize};

/// What the kernel reports for the pages of a mapping, from /proc/self/pagemap (each base
/// page's pfn) and /proc/kpageflags and /proc/kpagecount (by pfn).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageFacts {
    /// Base pages of the mapping.
    pub pages: u64,
    /// Present in the page tables, with a pfn.
    pub present: u64,
    /// 2 MiB pieces of the mapping whose pfns are contiguous and start 2 MiB-aligned: the
    /// pieces a PMD could map.
    pub pmd_contiguous: u64,
    /// Runs of physically consecutive pages, in the mapping's order: where the allocator
    /// placed the pages, not the same in every boot for anonymous memory. A block layer
    /// merges each run's pages into one segment; in transfers longer than 1 MiB that decided
    /// how many GUP calls an O_DIRECT read made (now it transfers 1 MiB at a time). `None`
    /// in files from before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contiguous_runs: Option<u64>,
    /// kpageflags bits set, by the kernel's names (NOPAGE, COMPOUND_HEAD, THP, ...), with
    /// how many of the present pages have each.
    pub flags: Vec<(String, u64)>,
    /// kpagecount values, with how many present pages have each.
    pub refcounts: Vec<(u64, u64)>,
    /// Present pfns whose struct page the kernel's vmemmap holds (read by BPF): the
    /// witness that tells ZONE_DEVICE memory (has struct pages) from a BAR (none), where
    /// kpageflags says NOPAGE for both. `None` when it could not be read, and why.
    #[serde(default)]
    pub vmemmap_struct_pages: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vmemmap_error: Option<String>,
    /// Where the pfns came from when not from /proc/self/pagemap (which gives none for a
    /// PUD-mapped devdax page on some kernels): the device's physical range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pfn_source: Option<String>,
}

impl PageFacts {
    pub fn flag(&self, name: &str) -> u64 {
        self.flags
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, c)| *c)
    }

    /// Present pages the kernel shows a struct page for: kpageflags without NOPAGE, and not
    /// past max_pfn (where kpageflags ends).
    pub fn with_struct_page(&self) -> u64 {
        self.present
            .saturating_sub(self.flag("NOPAGE") + self.flag("BEYOND_MAX_PFN"))
    }

    pub fn describe(&self) -> String {
        let flags = if self.flags.is_empty() {
            "none".to_string()
        } else {
            self.flags
                .iter()
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let counts = self
            .refcounts
            .iter()
            .map(|(v, c)| format!("{v}: {c}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{}/{} pages present, {} PMD-contiguous 2M pieces{}; struct pages in the vmemmap: {}; kpageflags: {flags}; kpagecount: {}",
            self.present,
            self.pages,
            self.pmd_contiguous,
            self.contiguous_runs
                .map_or(String::new(), |r| format!(", {r} physically contiguous runs")),
            self.vmemmap_struct_pages.map_or_else(
                || format!("not read ({})", self.vmemmap_error.as_deref().unwrap_or("-")),
                |n| n.to_string()
            ),
            if counts.is_empty() {
                "-".into()
            } else {
                counts
            }
        ) + &self
            .pfn_source
            .as_ref()
            .map_or(String::new(), |s| format!(" ({s})"))
    }
}
