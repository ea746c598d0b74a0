//! `foliobench run --suite rmap`: the folio sizes asked for, checked against what the
//! kernel offers, as the rmap suite's plan (its loop is `workloads::suites::rmap`).

use anyhow::Result;
use foliobench_workloads::suites::rmap::{Plan, FSDAX};
use foliobench_workloads::{hugetlb, thp};

use crate::exit::usage;
use crate::units::{fmt_size, parse_size};

/// Folio sizes: 4K, every size the kernel offers (`hugepages-<N>kB`), the PMD size; the
/// fsdax file case (`fsdax`); HugeTLB pages (`hugetlb:2M`, `hugetlb:1G`, only when named).
pub fn plan(given: &[String], size: u64) -> Result<Plan> {
    let named_any = !given.is_empty();
    let fsdax_named = given.iter().any(|g| g == "fsdax" || g == FSDAX);
    let hugetlb_kbs = hugetlb_sizes(given, size)?;
    let given: Vec<String> = given
        .iter()
        .filter(|g| *g != "fsdax" && *g != FSDAX && !g.starts_with("hugetlb:"))
        .cloned()
        .collect();
    let fsdax = fsdax_named || !named_any;
    let only_fsdax = named_any && given.is_empty();
    // One read of the THP controls for the whole plan.
    let thp = thp::facts();
    let pmd = thp.as_ref().and_then(|t| t.pmd_size_kb);
    let pmd_kb = pmd.unwrap_or(2048);
    let mut offered = vec![4];
    offered.extend(thp.as_ref().map(|t| t.offered_sizes()).unwrap_or_default());
    if pmd.is_some() && !offered.contains(&pmd_kb) {
        // Kernels before per-size controls (6.1) still have PMD THP.
        offered.push(pmd_kb);
    }
    let folio_kbs = if only_fsdax {
        vec![]
    } else if given.is_empty() {
        offered.clone()
    } else {
        let mut v = Vec::new();
        for g in &given {
            let kb = parse_size("--folio-size", g)? / 1024;
            if !offered.contains(&kb) {
                return Err(usage(format!(
                    "--folio-size {g}: this kernel offers {} (and fsdax: a file on ext4 -o dax; hugetlb:<size>: HugeTLB pages)",
                    offered
                        .iter()
                        .map(|k| fmt_size(k * 1024))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if !v.contains(&kb) {
                v.push(kb);
            }
        }
        v
    };
    let largest = folio_kbs.iter().max().copied().unwrap_or(4).max(pmd_kb) * 1024;
    if size == 0 || size % largest != 0 {
        return Err(usage(format!(
            "--size {}: the rmap suite needs a multiple of {} (whole PMD-sized folios)",
            fmt_size(size),
            fmt_size(largest)
        )));
    }
    Ok(Plan {
        folio_kbs,
        size,
        pmd_kb,
        fsdax,
        fsdax_named,
        hugetlb_kbs,
    })
}

/// The HugeTLB page sizes named (`hugetlb:2M`), kB, each one this kernel has and whole in
/// `size`.
fn hugetlb_sizes(given: &[String], size: u64) -> Result<Vec<u64>> {
    let have = hugetlb::page_sizes();
    let mut out = Vec::new();
    for g in given {
        let Some(s) = g.strip_prefix("hugetlb:") else {
            continue;
        };
        let kb = parse_size("--folio-size", s)? / 1024;
        if !have.contains(&kb) {
            return Err(usage(format!(
                "--folio-size {g}: this kernel has HugeTLB pages of {}",
                if have.is_empty() {
                    "no size (CONFIG_HUGETLBFS off)".to_string()
                } else {
                    have.iter()
                        .map(|k| fmt_size(k * 1024))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        if size % (kb * 1024) != 0 {
            return Err(usage(format!(
                "--size {}: {g} maps whole pages, so --size must be a multiple of {}",
                fmt_size(size),
                fmt_size(kb * 1024)
            )));
        }
        if !out.contains(&kb) {
            out.push(kb);
        }
    }
    Ok(out)
}
