//! What the kernel says about the pages behind one of our mappings: each base page's pfn
//! from /proc/self/pagemap, the pfn's flags and map count from /proc/kpageflags and
//! /proc/kpagecount (all three need CAP_SYS_ADMIN for pfns), the mapping's smaps lines,
//! and who owns a physical range in /proc/iomem. No crate reads these files (procfs reads
//! pagemap but not kpageflags by range), so they are read here, in runs of pfns.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use foliobench_reports::fsdax::{PageFacts, SmapsFacts};

const PAGE: u64 = 4096;
const PM_PRESENT: u64 = 1 << 63;
const PM_PFN_MASK: u64 = (1 << 55) - 1;
const PMD_PAGES: u64 = 512;

/// include/uapi/linux/kernel-page-flags.h, by bit.
const KPF_NAMES: &[(u32, &str)] = &[
    (0, "LOCKED"),
    (2, "REFERENCED"),
    (3, "UPTODATE"),
    (4, "DIRTY"),
    (5, "LRU"),
    (10, "BUDDY"),
    (11, "MMAP"),
    (12, "ANON"),
    (15, "COMPOUND_HEAD"),
    (16, "COMPOUND_TAIL"),
    (17, "HUGE"),
    (19, "HWPOISON"),
    (20, "NOPAGE"),
    (22, "THP"),
    (23, "OFFLINE"),
    (24, "ZERO_PAGE"),
    (26, "PGTABLE"),
];

/// The pfn of each base page of [addr, addr+len), `None` where not present.
pub fn pfns(addr: u64, len: u64) -> Result<Vec<Option<u64>>, String> {
    let f = File::open("/proc/self/pagemap").map_err(|e| format!("/proc/self/pagemap: {e}"))?;
    let n = (len / PAGE) as usize;
    let mut buf = vec![0u8; n * 8];
    f.read_exact_at(&mut buf, addr / PAGE * 8)
        .map_err(|e| format!("reading /proc/self/pagemap: {e}"))?;
    let v: Vec<Option<u64>> = buf
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        .map(|e| (e & PM_PRESENT != 0 && e & PM_PFN_MASK != 0).then_some(e & PM_PFN_MASK))
        .collect();
    Ok(v)
}

/// Reads one u64 per pfn of `pfns` from a /proc/kpage* file, in runs of consecutive pfns;
/// `None` for pfns past the file's end (the kernel's max_pfn: no memory there at all).
fn per_pfn(path: &str, pfns: &[u64]) -> Result<Vec<Option<u64>>, String> {
    let f = File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::with_capacity(pfns.len());
    let mut i = 0;
    while i < pfns.len() {
        let mut j = i + 1;
        while j < pfns.len() && pfns[j] == pfns[j - 1] + 1 && j - i < 65536 {
            j += 1;
        }
        let mut buf = vec![0u8; (j - i) * 8];
        let mut got = 0;
        while got < buf.len() {
            match f.read_at(&mut buf[got..], pfns[i] * 8 + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(format!("reading {path} at pfn {:#x}: {e}", pfns[i])),
            }
        }
        out.extend(buf.chunks_exact(8).enumerate().map(|(k, c)| {
            (k * 8 < got).then(|| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
        }));
        i = j;
    }
    Ok(out)
}

/// How many 2 MiB pieces (512 pages from a 2 MiB-aligned `addr`) have consecutive pfns
/// starting at a 2 MiB-aligned pfn.
pub fn pmd_contiguous(pfns: &[Option<u64>]) -> u64 {
    pfns.chunks_exact(PMD_PAGES as usize)
        .filter(|c| {
            c[0].is_some_and(|p0| {
                p0 % PMD_PAGES == 0 && c.iter().enumerate().all(|(i, p)| *p == Some(p0 + i as u64))
            })
        })
        .count() as u64
}

/// How many runs of physically consecutive pages the mapping is made of, in its own order
/// (a hole ends a run): what a block layer that merges physically adjacent pages into one
/// segment sees of it.
pub fn contiguous_runs(pfns: &[Option<u64>]) -> u64 {
    let mut before = None;
    let mut runs = 0;
    for p in pfns {
        if let Some(p) = p {
            if before.map(|b: u64| b + 1) != Some(*p) {
                runs += 1;
            }
        }
        before = *p;
    }
    runs
}

/// The pseudo-flag of pfns past max_pfn, where /proc/kpageflags ends.
pub const BEYOND_MAX_PFN: &str = "BEYOND_MAX_PFN";

/// Summarises kpageflags and kpagecount values of the present pages (`None`: past max_pfn).
pub fn summarise(pfns: &[Option<u64>], flags: &[Option<u64>], counts: &[Option<u64>]) -> PageFacts {
    let mut by_flag: Vec<(String, u64)> = KPF_NAMES
        .iter()
        .map(|(bit, name)| {
            (
                name.to_string(),
                flags
                    .iter()
                    .flatten()
                    .filter(|f| *f & (1 << bit) != 0)
                    .count() as u64,
            )
        })
        .chain(std::iter::once((
            BEYOND_MAX_PFN.to_string(),
            flags.iter().filter(|f| f.is_none()).count() as u64,
        )))
        .filter(|(_, c)| *c > 0)
        .collect();
    by_flag.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut refcounts: BTreeMap<u64, u64> = BTreeMap::new();
    for c in counts.iter().flatten() {
        *refcounts.entry(*c).or_default() += 1;
    }
    PageFacts {
        pages: pfns.len() as u64,
        present: pfns.iter().filter(|p| p.is_some()).count() as u64,
        pmd_contiguous: pmd_contiguous(pfns),
        contiguous_runs: Some(contiguous_runs(pfns)),
        flags: by_flag,
        refcounts: refcounts.into_iter().collect(),
        vmemmap_struct_pages: None,
        vmemmap_error: None,
        pfn_source: None,
    }
}

/// The page facts of [addr, addr+len) of this process.
pub fn page_facts(addr: u64, len: u64) -> Result<PageFacts, String> {
    let pfns = pfns(addr, len)?;
    let present: Vec<u64> = pfns.iter().flatten().copied().collect();
    if present.is_empty() && !pfns.is_empty() {
        return Err(
            "no pfn in /proc/self/pagemap (not present, or pfns hidden: needs CAP_SYS_ADMIN)"
                .into(),
        );
    }
    pfn_facts(&pfns)
}

/// The page facts of these pfns (`None`: not present in the page tables).
pub fn pfn_facts(pfns: &[Option<u64>]) -> Result<PageFacts, String> {
    let present: Vec<u64> = pfns.iter().flatten().copied().collect();
    let flags = per_pfn("/proc/kpageflags", &present)?;
    let counts = per_pfn("/proc/kpagecount", &present)?;
    let mut facts = summarise(pfns, &flags, &counts);
    match foliobench_ebpf::vmemmap::has_struct_page(&present) {
        Ok(v) => facts.vmemmap_struct_pages = Some(v.iter().filter(|&&b| b).count() as u64),
        Err(e) => facts.vmemmap_error = Some(format!("{e:#}")),
    }
    Ok(facts)
}

/// The `Key: value` lines of the smaps block of the mapping starting at `addr` (written
/// here: the procfs crate parses VmFlags into bits and cannot give back the kernel's
/// two-letter names, which the results keep as the kernel printed them).
pub fn smaps_fields(smaps: &str, addr: u64) -> Option<Vec<(&str, &str)>> {
    let start = format!("{addr:x}-");
    let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
    lines.next()?;
    Some(
        lines
            .map_while(|l| {
                let (key, val) = l.split_once(':')?;
                // The next mapping's header line (`7f..-7f.. rw-p ...`) ends this block.
                (!key.contains(' ') && !key.contains('-')).then_some((key, val.trim()))
            })
            .collect(),
    )
}

/// A `NNN kB` smaps value in bytes.
pub fn smaps_bytes(fields: &[(&str, &str)], key: &str) -> Option<u64> {
    let v = fields.iter().find(|(k, _)| *k == key)?.1;
    v.trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// What the smaps block of the mapping starting at `addr` says of it.
pub fn smaps_facts(smaps: &str, addr: u64) -> Option<SmapsFacts> {
    let f = smaps_fields(smaps, addr)?;
    let kb = |k: &str| smaps_bytes(&f, k).unwrap_or(0) / 1024;
    Some(SmapsFacts {
        rss_kb: kb("Rss"),
        file_pmd_mapped_kb: kb("FilePmdMapped"),
        vm_flags: f
            .iter()
            .find(|(k, _)| *k == "VmFlags")
            .map_or(String::new(), |(_, v)| v.to_string()),
    })
}

/// This process's smaps facts for the mapping at `addr`.
pub fn own_smaps(addr: u64) -> Option<SmapsFacts> {
    smaps_facts(&std::fs::read_to_string("/proc/self/smaps").ok()?, addr)
}

/// The /proc/iomem entries that contain [start, end], outermost first.
pub fn iomem_owners(iomem: &str, start: u64, end: u64) -> Vec<String> {
    let mut chain: Vec<(usize, String)> = Vec::new();
    for l in iomem.lines() {
        let depth = l.len() - l.trim_start().len();
        let Some((range, name)) = l.trim().split_once(" : ") else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        if a <= start && end <= b {
            chain.retain(|(d, _)| *d < depth);
            chain.push((depth, name.to_string()));
        }
    }
    chain.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From the test VM's /proc/iomem (6.12, QEMU q35).
    const IOMEM: &str = "00100000-7ffdefff : System RAM
c0000000-febfffff : PCI Bus 0000:00
  febd4000-febd7fff : 0000:00:01.0
    febd4000-febd7fff : virtio-pci-modern
  febf6000-febf6fff : 0000:00:01.0
100000000-17fffffff : Persistent Memory (legacy)
  100000000-17fffffff : namespace0.0
180000000-1ffffffff : System RAM
  1df600000-1e05fffff : Kernel code
";

    #[test]
    fn iomem_owners_nest() {
        assert_eq!(
            iomem_owners(IOMEM, 0xfebd4000, 0xfebd5fff),
            ["PCI Bus 0000:00", "0000:00:01.0", "virtio-pci-modern"]
        );
        assert_eq!(
            iomem_owners(IOMEM, 0xfebf6000, 0xfebf6fff),
            ["PCI Bus 0000:00", "0000:00:01.0"]
        );
        assert_eq!(
            iomem_owners(IOMEM, 0x100200000, 0x1003fffff),
            ["Persistent Memory (legacy)", "namespace0.0"]
        );
        assert!(iomem_owners(IOMEM, 0x7ffdf000, 0x7ffdffff).is_empty());
    }

    #[test]
    fn pmd_contiguity_needs_aligned_consecutive_pfns() {
        let run = |p0: u64| (0..512).map(move |i| Some(p0 + i));
        let v: Vec<Option<u64>> = run(0x100200).chain(run(0x100401)).collect();
        assert_eq!(pmd_contiguous(&v), 1);
        let mut holes: Vec<Option<u64>> = run(0x100200).collect();
        holes[7] = None;
        assert_eq!(pmd_contiguous(&holes), 0);
    }

    #[test]
    fn runs_end_at_a_gap_or_a_hole() {
        let run = |p0: u64, n: u64| (0..n).map(move |i| Some(p0 + i));
        // Two THPs side by side are one run; a third elsewhere is another.
        let v: Vec<Option<u64>> = run(0x100200, 1024).chain(run(0x200000, 512)).collect();
        assert_eq!(contiguous_runs(&v), 2);
        let mut holes = v.clone();
        holes[100] = None;
        assert_eq!(contiguous_runs(&holes), 3);
        // Descending pfns are not contiguous in the mapping's order.
        assert_eq!(contiguous_runs(&[Some(5), Some(4), Some(3)]), 3);
        assert_eq!(contiguous_runs(&[None, None]), 0);
    }

    #[test]
    fn flags_and_counts_are_tallied_by_name() {
        let pfns = [Some(1), Some(2), None];
        let f = summarise(
            &pfns,
            &[Some(1 << 20), Some((1 << 15) | (1 << 22) | (1 << 11))],
            &[Some(0), Some(1)],
        );
        assert_eq!((f.pages, f.present), (3, 2));
        assert_eq!(f.flag("NOPAGE"), 1);
        assert_eq!(f.flag("THP"), 1);
        assert_eq!(f.flag("COMPOUND_HEAD"), 1);
        assert_eq!(f.with_struct_page(), 1);
        assert_eq!(f.refcounts, [(0, 1), (1, 1)]);
        // A pfn past max_pfn (a 64-bit BAR above RAM): no struct page, no count.
        let g = summarise(&[Some(1 << 40)], &[None], &[None]);
        assert_eq!(g.flag(BEYOND_MAX_PFN), 1);
        assert_eq!(g.with_struct_page(), 0);
        assert!(g.refcounts.is_empty());
    }

    #[test]
    fn smaps_block_of_one_mapping() {
        let smaps = "7f0000000000-7f0002000000 rw-s 00000000 103:00 12 /run/x/file\n\
                     Size:              32768 kB\n\
                     Rss:                   0 kB\n\
                     FilePmdMapped:         0 kB\n\
                     VmFlags: rd wr sh mr mw me ms hg\n\
                     7f0002000000-7f0002004000 r--s 00000000 00:05 9 /sys/x/resource4\n\
                     Rss:                   0 kB\n\
                     VmFlags: rd sh mr mw me ms io pf de dd\n";
        let a = smaps_facts(smaps, 0x7f0000000000).unwrap();
        assert_eq!(a.vm_flags, "rd wr sh mr mw me ms hg");
        let b = smaps_facts(smaps, 0x7f0002000000).unwrap();
        assert!(b.vm_flags.contains("pf"));
        assert!(smaps_facts(smaps, 0x1000).is_none());
    }
}
