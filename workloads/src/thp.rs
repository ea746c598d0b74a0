//! Choosing the folio size of anonymous memory through the per-size THP controls
//! (`/sys/kernel/mm/transparent_hugepage/hugepages-<N>kB/enabled`, 6.8+), and checking the
//! size actually obtained from the kernel's own counters.
//!
//! The controls are system settings: the guard saves every one before the first change (on
//! disk too, so `foliobench restore` can repair a killed run), and puts them back on drop.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::saved::{Held, StateFile};
use crate::system::{parse_hugepages_dir, read_trim, selected, Thp, ThpSize};

pub const THP_DIR: &str = "/sys/kernel/mm/transparent_hugepage";

fn size_dir(kb: u64) -> PathBuf {
    Path::new(THP_DIR).join(format!("hugepages-{kb}kB"))
}

/// The THP controls: the global mode, the PMD size and every size with its mode; `None`
/// when the kernel has no THP at all.
pub fn facts() -> Option<Thp> {
    let dir = Path::new(THP_DIR);
    if !dir.exists() {
        return None;
    }
    let mut sizes: Vec<ThpSize> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let kb = parse_hugepages_dir(&name)?;
                    let enabled = read_trim(e.path().join("enabled")).and_then(|s| selected(&s));
                    Some(ThpSize { kb, enabled })
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort_by_key(|s| s.kb);
    Some(Thp {
        enabled: read_trim(dir.join("enabled")).and_then(|s| selected(&s)),
        pmd_size_kb: read_trim(dir.join("hpage_pmd_size"))
            .and_then(|s| s.parse::<u64>().ok())
            .map(|b| b / 1024),
        sizes,
    })
}

/// The anonymous folio sizes (kB) this kernel lets user space choose, ascending. Sizes
/// without an `enabled` control (order 1: 8 kB) are not offered for anonymous memory.
pub fn offered_sizes() -> Vec<u64> {
    facts().map_or_else(Vec::new, |t| t.offered_sizes())
}

/// The PMD size in kB (2048 on x86-64), if the kernel has THP.
pub fn pmd_kb() -> Option<u64> {
    facts()?.pmd_size_kb
}

/// One of the per-size counters (`stats/anon_fault_alloc`, `stats/anon_fault_fallback`),
/// 6.9+.
pub fn stat(kb: u64, name: &str) -> Option<u64> {
    fs::read_to_string(size_dir(kb).join("stats").join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Where the per-size controls are saved while a run has them changed.
const STATE: StateFile = StateFile {
    name: "thp-state.json",
    what: "the THP size controls",
};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedControls {
    /// (control file, selected value) as found.
    pub controls: Vec<(PathBuf, String)>,
}

/// The per-size controls as foliobench found them; restored on drop.
pub struct FolioSizes {
    held: Held<SavedControls>,
}

impl FolioSizes {
    /// Saves every per-size control (refusing if another run holds them, or a killed run
    /// left some unrestored).
    pub fn begin() -> Result<FolioSizes, String> {
        let controls: Vec<(PathBuf, String)> = offered_sizes()
            .into_iter()
            .filter_map(|kb| {
                let p = size_dir(kb).join("enabled");
                let v = selected(&fs::read_to_string(&p).ok()?)?;
                Some((p, v))
            })
            .collect();
        Ok(FolioSizes {
            held: STATE.hold(SavedControls { controls }, restore_controls)?,
        })
    }
    /// Lets MADV_HUGEPAGE memory get folios of `kb` only (`madvise` for that size, `never`
    /// for the others); `None`: no large folios at all.
    pub fn choose(&self, kb: Option<u64>) -> Result<(), String> {
        for (p, _) in &self.held.settings.controls {
            let this = p
                .parent()
                .and_then(|d| d.file_name())
                .and_then(|n| parse_hugepages_dir(&n.to_string_lossy()));
            let want = if this.is_some() && this == kb {
                "madvise"
            } else {
                "never"
            };
            fs::write(p, want).map_err(|e| format!("writing {want} to {}: {e}", p.display()))?;
        }
        Ok(())
    }

    /// Puts every control back as it was and forgets the saved state.
    pub fn restore(&mut self) -> Result<(), String> {
        self.held.restore()
    }
}

fn restore_controls(saved: &SavedControls) -> Result<(), String> {
    for (p, v) in &saved.controls {
        fs::write(p, v).map_err(|e| format!("restoring {} to {v}: {e}", p.display()))?;
    }
    Ok(())
}

/// `foliobench restore`'s part: the controls a killed run left changed, if any. The run
/// that saved them must be gone (it restores them itself on its way out): this waits up to
/// `wait` for it, then refuses.
pub fn restore_saved(wait: Duration) -> Result<Option<usize>, String> {
    Ok(STATE
        .restore_left(wait, restore_controls)?
        .map(|s: SavedControls| s.controls.len()))
}
