//! Device memory with no struct page, mapped the way the drivers of the VM_MIXEDMAP/pte_special work (2008) map it: a PCI
//! memory BAR through sysfs (`/sys/bus/pci/devices/*/resourceN`), which the kernel maps
//! with `io_remap_pfn_range` (VM_IO | VM_PFNMAP, every PTE filled at mmap time).
//!
//! The device must not notice: the mapping is PROT_READ and is never read or written by
//! foliobench (page tables are filled by mmap itself, and GUP refuses VM_PFNMAP before it
//! touches any memory). Prefetchable BARs of devices with no driver bound come first:
//! reads of prefetchable memory have no side effects by PCI's definition, and a BAR a
//! driver claimed is refused by the kernel anyway under CONFIG_IO_STRICT_DEVMEM.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::mapping::Mapping;

const IORESOURCE_MEM: u64 = 0x200;
const IORESOURCE_PREFETCH: u64 = 0x2000;
/// Mapped at most this much of a BAR: enough pages to count, nothing more.
const MAX_BYTES: u64 = 2 << 20;

/// One PCI memory BAR.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub resource: PathBuf,
    pub device: String,
    pub start: u64,
    pub end: u64,
    pub prefetchable: bool,
    /// The driver bound to the device, if any.
    pub driver: Option<String>,
}

impl Bar {
    pub fn len(&self) -> u64 {
        self.end + 1 - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }
}

/// The memory BARs of a device directory's `resource` text (one "start end flags" line per
/// BAR, BAR n on line n; lines 0..6 are BARs, the rest ROM and bridge windows).
pub fn parse_resource(text: &str) -> Vec<(usize, u64, u64, u64)> {
    text.lines()
        .take(6)
        .enumerate()
        .filter_map(|(i, l)| {
            let v: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok())
                .collect();
            match v[..] {
                [s, e, f] if f & IORESOURCE_MEM != 0 && e > s => Some((i, s, e, f)),
                _ => None,
            }
        })
        .collect()
}

/// Every page-sized-or-larger PCI memory BAR, the safest first: prefetchable and without a
/// driver, then without a driver, then prefetchable, then the rest.
pub fn bars() -> Vec<Bar> {
    let mut v = Vec::new();
    let Ok(dir) = fs::read_dir("/sys/bus/pci/devices") else {
        return v;
    };
    for d in dir.flatten() {
        let path = d.path();
        let Ok(text) = fs::read_to_string(path.join("resource")) else {
            continue;
        };
        let read = |f: &str| {
            fs::read_to_string(path.join(f))
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let driver = fs::read_link(path.join("driver"))
            .ok()
            .and_then(|l| l.file_name().map(|n| n.to_string_lossy().to_string()));
        for (i, start, end, flags) in parse_resource(&text) {
            if end + 1 - start < 4096 {
                continue;
            }
            v.push(Bar {
                resource: path.join(format!("resource{i}")),
                device: format!(
                    "{} [{}:{}] class {}{}",
                    d.file_name().to_string_lossy(),
                    read("vendor").trim_start_matches("0x"),
                    read("device").trim_start_matches("0x"),
                    read("class"),
                    driver
                        .as_ref()
                        .map_or(", no driver".into(), |n| format!(", driver {n}"))
                ),
                start,
                end,
                prefetchable: flags & IORESOURCE_PREFETCH != 0,
                driver: driver.clone(),
            });
        }
    }
    v.sort_by_key(|b| (b.driver.is_some(), !b.prefetchable, b.resource.clone()));
    v
}

/// Maps the first BAR the kernel lets us map, read-only. Returns it with the mapping, or
/// every refusal (to say why the row is skipped).
pub fn map_first(bars: &[Bar]) -> Result<(Bar, Mapping, Vec<String>), Vec<String>> {
    let mut tried = Vec::new();
    for b in bars {
        let len = b.len().min(MAX_BYTES) as usize;
        let file = match File::open(&b.resource) {
            Ok(f) => f,
            Err(e) => {
                tried.push(format!("{}: open: {e}", b.resource.display()));
                continue;
            }
        };
        match Mapping::read_only(file, len) {
            Ok(m) => return Ok((b.clone(), m, tried)),
            Err(e) => tried.push(format!("{} ({}): {e}", b.resource.display(), b.device)),
        }
    }
    Err(tried)
}

/// The sysfs name of a BAR: `0000:00:0a.0/resource2`.
pub fn short_name(p: &Path) -> String {
    let dev = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    format!(
        "{dev}/{}",
        p.file_name().unwrap_or_default().to_string_lossy()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A virtio device's `resource` in the test VM: an I/O BAR, a 4 KiB MMIO BAR, the
    /// 16 KiB prefetchable 64-bit BAR 4, and an empty line.
    #[test]
    fn memory_bars_are_found_by_flags() {
        let text = "0x000000000000c000 0x000000000000c03f 0x0000000000040101\n\
                    0x00000000febf6000 0x00000000febf6fff 0x0000000000040200\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x00000000febd4000 0x00000000febd7fff 0x000000000014220c\n\
                    0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
                    0x00000000fe000000 0x00000000feffffff 0x0000000000046200\n";
        let bars = parse_resource(text);
        assert_eq!(bars.len(), 2, "{bars:?}");
        assert_eq!(bars[0].0, 1);
        assert_eq!((bars[1].0, bars[1].1), (4, 0xfebd4000));
        assert!(bars[1].3 & IORESOURCE_PREFETCH != 0);
        assert!(bars[0].3 & IORESOURCE_PREFETCH == 0);
    }
}
