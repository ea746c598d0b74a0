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

use crate::namespace::{foliobench_alive, wait_for_exit, STATE_DIR};
use crate::system::{parse_hugepages_dir, read_trim, selected, Thp, ThpSize};

pub const THP_DIR: &str = "/sys/kernel/mm/transparent_hugepage";

fn state_path() -> PathBuf {
    Path::new(STATE_DIR).join("thp-state.json")
}

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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedControls {
    pub pid: u32,
    /// (control file, selected value) as found.
    pub controls: Vec<(PathBuf, String)>,
}

/// The per-size controls as foliobench found them; restored on drop.
pub struct FolioSizes {
    saved: SavedControls,
    restored: bool,
}

impl FolioSizes {
    /// Saves every per-size control (refusing if another run holds them, or a killed run
    /// left some unrestored).
    pub fn begin() -> Result<FolioSizes, String> {
        if let Ok(text) = fs::read_to_string(state_path()) {
            let owner = serde_json::from_str::<SavedControls>(&text).map(|s| s.pid);
            return Err(match owner {
                Ok(pid) if foliobench_alive(pid) => format!(
                    "pid {pid} (foliobench) is using the THP size controls now; wait for it to finish"
                ),
                _ => format!(
                    "a previous run left the THP size controls changed ({}); run `foliobench restore` first",
                    text.trim()
                ),
            });
        }
        let controls: Vec<(PathBuf, String)> = offered_sizes()
            .into_iter()
            .filter_map(|kb| {
                let p = size_dir(kb).join("enabled");
                let v = selected(&fs::read_to_string(&p).ok()?)?;
                Some((p, v))
            })
            .collect();
        let saved = SavedControls {
            pid: std::process::id(),
            controls,
        };
        fs::create_dir_all(STATE_DIR).map_err(|e| format!("{STATE_DIR}: {e}"))?;
        // create_new: of two runs starting at once, one saves and the other is refused.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(state_path())
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    &serde_json::to_vec_pretty(&saved).expect("serializable"),
                )
            })
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => format!(
                    "{}: another foliobench run saved the THP size controls just now; wait for it to finish",
                    state_path().display()
                ),
                _ => format!("{}: {e}", state_path().display()),
            })?;
        Ok(FolioSizes {
            saved,
            restored: false,
        })
    }

    /// Lets MADV_HUGEPAGE memory get folios of `kb` only (`madvise` for that size, `never`
    /// for the others); `None`: no large folios at all.
    pub fn choose(&self, kb: Option<u64>) -> Result<(), String> {
        for (p, _) in &self.saved.controls {
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
        if self.restored {
            return Ok(());
        }
        restore_controls(&self.saved)?;
        self.restored = true;
        Ok(())
    }
}

fn restore_controls(saved: &SavedControls) -> Result<(), String> {
    for (p, v) in &saved.controls {
        fs::write(p, v).map_err(|e| format!("restoring {} to {v}: {e}", p.display()))?;
    }
    let _ = fs::remove_file(state_path());
    Ok(())
}

impl Drop for FolioSizes {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            eprintln!(
                "foliobench: could not restore the THP size controls: {e}; they are saved in {}: run `foliobench restore`",
                state_path().display()
            );
        }
    }
}

/// `foliobench restore`'s part: the controls a killed run left changed, if any. The run
/// that saved them must be gone (it restores them itself on its way out): this waits up to
/// `wait` for it, then refuses.
pub fn restore_saved(wait: Duration) -> Result<Option<usize>, String> {
    let Ok(text) = fs::read_to_string(state_path()) else {
        return Ok(None);
    };
    let saved: SavedControls =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", state_path().display()))?;
    wait_for_exit(saved.pid, wait, "the THP size controls")?;
    // It may have restored them on its way out.
    if !state_path().exists() {
        return Ok(None);
    }
    restore_controls(&saved)?;
    Ok(Some(saved.controls.len()))
}
