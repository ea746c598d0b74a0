//! This CPU's per-CPU page lists brought to their floor before an operation that allocates
//! thousands of pages.
//!
//! Since 6.7 the kernel tunes each per-CPU page list's high mark itself: it grows while the
//! CPU allocates and frees in bulk, and decays by an eighth at each vmstat refresh (once a
//! second), freeing what the list holds above it. COW of 16 MiB of 4K pages allocates 4096
//! pages: from the list, if the helper that exited before it left that many there (48.258
//! ms of instruction time, 6.12.118), or from the buddy allocator in refills (49.175 ms).
//! The first round of a folio size always met the second case, later ones whenever the
//! once-a-second decay fell between rounds: the medians of two boots were 1.7 % apart.
//! Writing `/proc/sys/vm/stat_refresh` runs that refresh at once; repeated until the marks
//! stop moving, every round starts from the floor (12 of 12 rounds 49.189-49.192 ms).
//! Operations that free (munmap, MADV_DONTNEED) are not settled: they repeat from the
//! state the fault-in before them leaves (4.327 ms in 12 of 12 rounds), and from the floor
//! they did not (munmap 5.445-5.602 ms).

use crate::system::refresh_vm_stats;

/// Refreshes at most this many times (the decay is an eighth per refresh).
const MOST: u32 = 64;

/// Refreshes until this CPU's high marks stop moving (at most `MOST` times). Where they
/// cannot be read, or the refresh is refused (not root), they do not move: one refresh.
pub fn settle() {
    // SAFETY: plain system call.
    let cpu = u32::try_from(unsafe { libc::sched_getcpu() }).ok();
    let marks = || {
        let text = std::fs::read_to_string("/proc/zoneinfo").ok()?;
        high_marks(&text, cpu?)
    };
    let mut before = marks();
    for _ in 0..MOST {
        refresh_vm_stats();
        let now = marks();
        if now == before {
            return;
        }
        before = now;
    }
}

/// The `high:` of `cpu`'s page list in each zone of /proc/zoneinfo, in zone order.
pub fn high_marks(zoneinfo: &str, cpu: u32) -> Option<Vec<u64>> {
    let want = format!("cpu: {cpu}");
    let mut marks = Vec::new();
    let mut mine = false;
    for line in zoneinfo.lines().map(str::trim) {
        if line.starts_with("cpu:") {
            mine = line == want;
        } else if let Some(v) = line.strip_prefix("high:").filter(|_| mine) {
            marks.push(v.trim().parse().ok()?);
            mine = false;
        }
    }
    (!marks.is_empty()).then_some(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of /proc/zoneinfo from 6.12.118 with two vCPUs, just after boot (the zones'
    /// counters left out).
    const ZONEINFO: &str = "Node 0, zone      DMA
  pagesets
    cpu: 0
              count: 0
              high:  0
              batch: 1
  vm stats threshold: 4
    cpu: 1
              count: 0
              high:  0
              batch: 1
  vm stats threshold: 4
Node 0, zone    DMA32
  pagesets
    cpu: 0
              count: 552
              high:  5306
              batch: 63
  vm stats threshold: 20
    cpu: 1
              count: 0
              high:  0
              batch: 63
  vm stats threshold: 20
Node 0, zone   Normal
  pagesets
    cpu: 0
              count: 3087
              high:  5211
              batch: 63
  vm stats threshold: 20
    cpu: 1
              count: 871
              high:  8551
              batch: 63
  vm stats threshold: 20
";

    #[test]
    fn high_marks_are_read_per_cpu_and_zone() {
        assert_eq!(high_marks(ZONEINFO, 0), Some(vec![0, 5306, 5211]));
        assert_eq!(high_marks(ZONEINFO, 1), Some(vec![0, 0, 8551]));
        assert_eq!(high_marks(ZONEINFO, 2), None);
    }
}
