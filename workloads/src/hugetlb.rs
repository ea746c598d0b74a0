//! The HugeTLB pool and its vmemmap optimization, through the kernel's own controls:
//! `/sys/kernel/mm/hugepages/hugepages-<N>kB/nr_hugepages` (the pool of one page size) and
//! `/proc/sys/vm/hugetlb_optimize_vmemmap` (5.19+: whether pages allocated from now on have
//! their vmemmap optimized; pages already in the pool keep theirs).
//!
//! Both are system settings. The guard records them before the first change, on disk too
//! (so `foliobench restore` can repair a killed run), and puts them back on drop. A pool
//! that is not empty is someone's: it is refused, never shrunk.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::saved::{Held, StateFile};
use crate::system::{parse_hugepages_dir, read_trim};

pub const HUGEPAGES_DIR: &str = "/sys/kernel/mm/hugepages";
pub const HVO_SYSCTL: &str = "/proc/sys/vm/hugetlb_optimize_vmemmap";

/// Where the control and pools are saved while a run has them changed.
const STATE: StateFile = StateFile {
    name: "hugetlb-state.json",
    what: "the HugeTLB controls",
};

fn pool_file(kb: u64) -> PathBuf {
    Path::new(HUGEPAGES_DIR).join(format!("hugepages-{kb}kB/nr_hugepages"))
}

/// The huge page sizes this kernel has, kB, ascending.
pub fn page_sizes() -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(HUGEPAGES_DIR)
        .map(|d| {
            d.flatten()
                .filter_map(|e| parse_hugepages_dir(&e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// Pages in the pool of one size.
pub fn pool(kb: u64) -> Option<u64> {
    read_trim(pool_file(kb))?.parse().ok()
}

/// Pages of a pool reserved on the kernel command line (`hugepagesz=1G hugepages=N`) whose
/// pages are all free: none reserved for a mapping, none surplus. None otherwise.
pub fn free_boot_pool(kb: u64) -> Option<u64> {
    let dir = Path::new(HUGEPAGES_DIR).join(format!("hugepages-{kb}kB"));
    let read = |f: &str| -> Option<u64> { read_trim(dir.join(f))?.parse().ok() };
    let n = read("nr_hugepages")?;
    let reserved_at_boot = read_trim("/proc/cmdline")?
        .split_whitespace()
        .any(|w| w.starts_with("hugepages="));
    (n > 0
        && reserved_at_boot
        && read("free_hugepages")? == n
        && read("resv_hugepages")? == 0
        && read("surplus_hugepages")? == 0)
        .then_some(n)
}

/// `vm.hugetlb_optimize_vmemmap`; None when the kernel has no such control.
pub fn hvo() -> Option<bool> {
    read_trim(HVO_SYSCTL).map(|s| s != "0")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedHugetlb {
    pub hvo: Option<bool>,
    /// (page size kB, pages) of the pools foliobench uses, as found (empty).
    pub pools: Vec<(u64, u64)>,
}

/// The controls as foliobench found them; restored on drop.
pub struct HugetlbControls {
    held: Held<SavedHugetlb>,
}

impl HugetlbControls {
    /// Records the optimization control and the pools of `sizes`, refusing a pool that is
    /// not empty (its pages are someone's) and a state a killed run left.
    pub fn begin(sizes: &[u64]) -> Result<HugetlbControls, String> {
        Self::begin_taking(sizes, false).map(|(c, _)| c)
    }

    /// As `begin`, but a pool reserved at boot whose pages are all free is taken, not
    /// refused: its (size, pages) are returned, to be released once. For foliobench's test
    /// VM only, where nothing else owns them (1G pages cannot be had at run time there);
    /// restoring it afterwards asks the kernel for the pages again, which may give fewer.
    pub fn begin_taking_boot_pools(
        sizes: &[u64],
    ) -> Result<(HugetlbControls, Vec<(u64, u64)>), String> {
        Self::begin_taking(sizes, true)
    }

    fn begin_taking(
        sizes: &[u64],
        boot_pools: bool,
    ) -> Result<(HugetlbControls, Vec<(u64, u64)>), String> {
        let (mut pools, mut boot) = (Vec::new(), Vec::new());
        for &kb in sizes {
            let n = pool(kb).ok_or_else(|| {
                format!(
                    "{}: not readable: this kernel has no {kb} kB huge pages",
                    pool_file(kb).display()
                )
            })?;
            if n != 0 && boot_pools && free_boot_pool(kb) == Some(n) {
                boot.push((kb, n));
            } else if n != 0 {
                return Err(format!(
                    "the {kb} kB HugeTLB pool holds {n} pages: foliobench measures an empty pool and does not take pages that may be in use (a pool reserved at boot, all free, only inside its test VM); empty it (echo 0 > {}) or leave this size out",
                    pool_file(kb).display()
                ));
            }
            pools.push((kb, n));
        }
        let held = STATE.hold(SavedHugetlb { hvo: hvo(), pools }, restore_controls)?;
        Ok((HugetlbControls { held }, boot))
    }

    /// An empty pool of `kb` pages grown to `pages` for a mapping of `for_what`, held (and
    /// put back as found when dropped); refused when the kernel could not give them all.
    pub fn reserve(kb: u64, pages: u64, for_what: &str) -> Result<HugetlbControls, String> {
        let pool = Self::begin(&[kb])?;
        let (_, got) = pool.set_pool(kb, pages)?;
        if got < pages {
            return Err(format!(
                "the {kb} kB HugeTLB pool grew to {got} of the {pages} pages {for_what} needs: \
                 too little free contiguous memory (1G pages may need reserving at boot, which \
                 foliobench does not use)"
            ));
        }
        Ok(pool)
    }

    /// The optimization control as found.
    pub fn hvo_found(&self) -> Option<bool> {
        self.held.settings.hvo
    }

    /// Whether pages allocated from now on have their vmemmap optimized.
    pub fn set_hvo(&self, on: bool) -> Result<(), String> {
        fs::write(HVO_SYSCTL, if on { "1" } else { "0" })
            .map_err(|e| format!("writing {} to {HVO_SYSCTL}: {e}", u8::from(on)))
    }

    /// Sets the pool of `kb` pages to `n` and times the write (the kernel allocates or
    /// frees the pages in it); returns the pages the pool then holds.
    pub fn set_pool(&self, kb: u64, n: u64) -> Result<(Duration, u64), String> {
        let path = pool_file(kb);
        let t = Instant::now();
        fs::write(&path, n.to_string())
            .map_err(|e| format!("writing {n} to {}: {e}", path.display()))?;
        let took = t.elapsed();
        let now = pool(kb).ok_or_else(|| format!("{}: not readable", path.display()))?;
        Ok((took, now))
    }

    /// Puts the pools and the control back as they were and forgets the saved state.
    pub fn restore(&mut self) -> Result<(), String> {
        self.held.restore()
    }
}

fn restore_controls(saved: &SavedHugetlb) -> Result<(), String> {
    for (kb, n) in &saved.pools {
        fs::write(pool_file(*kb), n.to_string())
            .map_err(|e| format!("restoring {} to {n}: {e}", pool_file(*kb).display()))?;
    }
    if let Some(on) = saved.hvo {
        fs::write(HVO_SYSCTL, if on { "1" } else { "0" })
            .map_err(|e| format!("restoring {HVO_SYSCTL}: {e}"))?;
    }
    Ok(())
}

/// `foliobench restore`'s part: the controls a killed run left changed, if any (waiting up
/// to `wait` for the run that saved them to be gone).
pub fn restore_saved(wait: Duration) -> Result<Option<usize>, String> {
    Ok(STATE
        .restore_left(wait, restore_controls)?
        .map(|s: SavedHugetlb| s.pools.len()))
}
