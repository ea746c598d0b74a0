//! rmap workloads on anonymous memory, as in the rmap interface overhaul's microbenchmarks
//! ("mm/rmap: interface overhaul", 2023): PTE-remap of PMD-mapped THPs, fork, munmap, MADV_DONTNEED per PTE, and COW of
//! one byte per folio. Each returns the wall time of the operation itself; the set-up around
//! it (mapping, faulting in, children) is not timed.

use std::time::{Duration, Instant};

use foliobench_reports::rmap::{FolioCheck, RmapOp};
use serde::{Deserialize, Serialize};

use crate::mapping::{Mapping, WorkloadError, PAGE};
use crate::thp;
use crate::unpreempted::Unpreempted;

fn errno(what: &str) -> WorkloadError {
    WorkloadError::Failed(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// A child that shares the parent's memory until it is released; it never returns into Rust
/// (only async-signal-safe calls after fork).
struct Child {
    pid: libc::pid_t,
    /// Write end of the pipe the child blocks on; closing it lets the child exit.
    release: libc::c_int,
}

impl Child {
    /// Forks a child that waits for its release, then exits.
    fn fork() -> Result<(Child, Duration), WorkloadError> {
        let mut fds = [0; 2];
        // SAFETY: a fresh pipe into a two-int array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(errno("pipe2"));
        }
        let t = Instant::now();
        // SAFETY: the child only calls read/_exit (async-signal-safe) and never returns.
        let pid = unsafe { libc::fork() };
        let took = t.elapsed();
        match pid {
            -1 => {
                // SAFETY: closing the pipe we made.
                unsafe {
                    libc::close(fds[0]);
                    libc::close(fds[1]);
                }
                Err(errno("fork"))
            }
            0 => {
                // SAFETY: in the child: wait for the parent to close the pipe, then exit
                // without running any Rust destructors or atexit handlers.
                unsafe {
                    libc::close(fds[1]);
                    let mut b = 0u8;
                    libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
                    libc::_exit(0)
                }
            }
            pid => {
                // SAFETY: the parent keeps only the write end.
                unsafe { libc::close(fds[0]) };
                Ok((
                    Child {
                        pid,
                        release: fds[1],
                    },
                    took,
                ))
            }
        }
    }

    /// Lets the child exit and reaps it.
    fn finish(self) -> Result<(), WorkloadError> {
        // SAFETY: closing our pipe end and waiting for our own child.
        unsafe {
            libc::close(self.release);
            let mut status = 0;
            if libc::waitpid(self.pid, &mut status, 0) != self.pid {
                return Err(errno("waitpid"));
            }
        }
        std::mem::forget(self);
        Ok(())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: as in finish(); reached only on an error path.
        unsafe {
            libc::close(self.release);
            let mut status = 0;
            libc::waitpid(self.pid, &mut status, 0);
        }
    }
}

/// PTE-maps every PMD-mapped THP of `m`: mprotect of its first base page read-only splits
/// the PMD; mprotect back lets the VMAs merge again, so later operations see one VMA of
/// PTE-mapped folios.
pub fn pte_remap(m: &Mapping, pmd: usize) -> Result<Duration, WorkloadError> {
    let t = Instant::now();
    for off in (0..m.len()).step_by(pmd) {
        let page = (m.addr() as usize + off) as *mut libc::c_void;
        for prot in [libc::PROT_READ, libc::PROT_READ | libc::PROT_WRITE] {
            // SAFETY: one page inside our own mapping.
            if unsafe { libc::mprotect(page, PAGE, prot) } != 0 {
                return Err(errno("mprotect"));
            }
        }
    }
    Ok(t.elapsed())
}

/// Times fork() in the parent; the child then exits and is reaped (untimed). The child waits
/// for its release first: exiting at once, its teardown of the whole mapping ran on the other
/// vCPU while the parent's fork() returned, and under the instruction clock (one clock for
/// every vCPU) the overlap moved fork's time by 9-15 % between boots of 32 MiB rounds.
pub fn fork() -> Result<Duration, WorkloadError> {
    let (child, took) = Child::fork()?;
    child.finish()?;
    Ok(took)
}

/// Where `run_group` calls its hook: just before an operation, with the address range of
/// the mapping it works on (what a traced span counts), and just after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Before { vmas: (u64, u64) },
    After,
}

/// Called around each operation (`Some`) and around the control fork (`None`).
pub type Hook<'a> = &'a mut dyn FnMut(Option<RmapOp>, Step);

fn range_of(m: &Mapping) -> (u64, u64) {
    (m.addr(), m.addr() + m.len() as u64)
}

/// The control fork: `mapping` left out of the child (MADV_DONTFORK), `hook(None, ..)`
/// around it, naming the mapping: nothing of it is the child's, so a span that counts its
/// VMAs alone counts no rmap call (the negative control).
fn fork_without(mapping: &Mapping, hook: Hook) -> Result<(), WorkloadError> {
    let advise = |advice| {
        // SAFETY: our own mapping, whole; only whether fork copies it changes.
        if unsafe { libc::madvise(mapping.addr() as *mut _, mapping.len(), advice) } != 0 {
            return Err(errno("madvise"));
        }
        Ok(())
    };
    advise(libc::MADV_DONTFORK)?;
    hook(
        None,
        Step::Before {
            vmas: range_of(mapping),
        },
    );
    let forked = fork();
    hook(None, Step::After);
    advise(libc::MADV_DOFORK)?;
    forked.map(|_| ())
}

/// Times the munmap of the whole mapping.
pub fn munmap(m: Mapping) -> Result<Duration, WorkloadError> {
    let t = Instant::now();
    m.unmap()
        .map_err(|e| WorkloadError::Failed(format!("munmap: {e}")))?;
    Ok(t.elapsed())
}

/// Times MADV_DONTNEED of every base page, one call each.
pub fn dontneed_per_pte(m: &Mapping) -> Result<Duration, WorkloadError> {
    let t = Instant::now();
    for off in (0..m.len()).step_by(PAGE) {
        // SAFETY: one page inside our own mapping; its contents are ours to drop.
        if unsafe {
            libc::madvise(
                (m.addr() as usize + off) as *mut _,
                PAGE,
                libc::MADV_DONTNEED,
            )
        } != 0
        {
            return Err(errno("madvise"));
        }
    }
    Ok(t.elapsed())
}

/// With a child sharing the memory, times writing one byte per folio (COW faults).
pub fn cow(m: &Mapping, folio: usize) -> Result<Duration, WorkloadError> {
    let (child, _) = Child::fork()?;
    let took = m.write_each(folio);
    child.finish()?;
    Ok(took)
}

/// What a round's mapping is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folio {
    pub kb: u64,
    /// The PMD size, kB: anonymous folios of this size are PMD-mapped THPs.
    pub pmd_kb: u64,
    /// HugeTLB pages of `kb` (MAP_HUGETLB, from a pool the caller reserved), rather than
    /// anonymous memory whose folio size the THP controls choose.
    #[serde(default)]
    pub hugetlb: bool,
}

impl Folio {
    /// A PMD-mapped THP, which PTE-remap splits (not a HugeTLB page: it is never split).
    fn is_pmd_thp(&self) -> bool {
        self.kb == self.pmd_kb && !self.hugetlb
    }
}

/// Maps `size` bytes of `kb` HugeTLB pages and faults them in; the check is the mapping's
/// Private_Hugetlb in smaps.
fn prepare_hugetlb(size: usize, kb: u64) -> Result<(Mapping, FolioCheck), WorkloadError> {
    let m = Mapping::hugetlb(size, kb)?;
    m.populate();
    let expected = (size as u64) / (kb * 1024);
    let bytes = m.smaps_bytes("Private_Hugetlb");
    let obtained = bytes.map(|b| b / (kb * 1024));
    let check = FolioCheck {
        folio_kb: kb,
        expected,
        obtained,
        verified: obtained == Some(expected),
        detail: format!(
            "MAP_HUGETLB; Private_Hugetlb of the mapping: {}",
            bytes.map_or("unknown".into(), |b| format!("{} kB", b / 1024))
        ),
    };
    Ok((m, check))
}

/// Maps `size` bytes of anonymous memory meant to be made of `folio_kb` folios (the size
/// controls set by the caller), faults it in for writing, and checks what the kernel
/// allocated.
pub fn prepare(
    size: usize,
    folio_kb: u64,
    pmd_kb: u64,
) -> Result<(Mapping, FolioCheck), WorkloadError> {
    let folio = folio_kb as usize * 1024;
    let large = folio_kb > 4;
    let alloc_before = thp::stat(folio_kb, "anon_fault_alloc");
    let fallback_before = thp::stat(folio_kb, "anon_fault_fallback");
    let m = Mapping::anonymous(size, large)?;
    // Faulted in for writing by the kernel's own loop: the same fault handler (and folio
    // size choice) as a write per page, without a user fault per page.
    m.populate();
    let expected = (size / folio) as u64;
    let check = if !large {
        let thp = m.thp_bytes();
        FolioCheck {
            folio_kb,
            expected,
            obtained: thp.map(|b| expected - b / PAGE as u64),
            verified: thp == Some(0),
            detail: format!(
                "MADV_NOHUGEPAGE; AnonHugePages of the mapping: {}",
                thp.map_or("unknown".into(), |b| format!("{} kB", b / 1024))
            ),
        }
    } else if folio_kb == pmd_kb {
        let thp = m.thp_bytes();
        let obtained = thp.map(|b| b / folio as u64);
        FolioCheck {
            folio_kb,
            expected,
            obtained,
            verified: obtained == Some(expected),
            detail: format!(
                "AnonHugePages of the mapping: {} of {expected} PMD folios",
                obtained.map_or("unknown".into(), |n| n.to_string())
            ),
        }
    } else {
        let after = thp::stat(folio_kb, "anon_fault_alloc");
        let fallback = thp::stat(folio_kb, "anon_fault_fallback")
            .zip(fallback_before)
            .map(|(a, b)| a.saturating_sub(b));
        let obtained = after.zip(alloc_before).map(|(a, b)| a.saturating_sub(b));
        FolioCheck {
            folio_kb,
            expected,
            obtained,
            // Other processes may fault folios of this size meanwhile: at least as many.
            verified: obtained.is_some_and(|n| n >= expected),
            detail: match obtained {
                Some(n) => format!(
                    "hugepages-{folio_kb}kB/stats/anon_fault_alloc +{n} for {expected} folios{}",
                    fallback.map_or(String::new(), |f| format!(", anon_fault_fallback +{f}"))
                ),
                None => format!("this kernel has no hugepages-{folio_kb}kB/stats counters: the folio size is not verified"),
            },
        }
    };
    Ok((m, check))
}

/// Where the file case maps its file: a fixed address, 512 GiB-aligned, between where the
/// kernel puts the program and its heap (0x55.., 0x56..) and where it puts mappings (below
/// 0x7f..). Its page tables (a PUD and a PMD table) are its own in every round, allocated by
/// the fault-in and freed by the munmap, and its neighbours in the VMA tree are the same.
/// Measured (6.12.118, one vCPU, 16 MiB, two runs of 6 rounds per boot): placed by the
/// kernel under address-space randomization, the munmap's medians were 13.03-13.51 µs
/// between three boots (8.25 µs in every round without randomization, norandmaps); here
/// 9.786-9.791 µs in three boots, 9.768-9.773 µs with norandmaps.
pub const FILE_MAPPING_AT: usize = 0x6000_0000_0000;

/// The file case's round: `path` (a file on a filesystem mounted `-o dax`) fsynced, mapped
/// shared at `FILE_MAPPING_AT`, faulted in for writing, then unmapped; the fault-in and the
/// munmap each timed, unpreempted, from just after a tick. `hook` as in `run_group`.
///
/// Why the fsync and the tick: not every round's first write fault journalled the mtime
/// (6 `ext4_dirty_inode` calls for 5 rounds and the file's creation), the rounds being
/// closer together than a tick, and its fault-in fell on 52.57 µs plus 0, 2.8 or 6.0 µs by
/// round. Each round now starts with the inode in no running journal transaction, and after
/// a tick (so its mtime has moved).
pub fn run_file(
    path: &std::path::Path,
    size: usize,
    hook: Hook,
) -> Result<Vec<(RmapOp, Duration)>, WorkloadError> {
    let failed = |what: String| WorkloadError::Failed(format!("{what} {}", path.display()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| failed(format!("opening ({e})")))?;
    file.sync_all()
        .map_err(|e| failed(format!("fsync ({e}) of")))?;
    let m = Mapping::shared_at(file, size, FILE_MAPPING_AT)?;
    let vmas = range_of(&m);
    let fault = unpreempted(hook, RmapOp::Fault, vmas, || m.touch());
    let unmapped = unpreempted(hook, RmapOp::Munmap, vmas, || munmap(m))?;
    Ok(vec![(RmapOp::Fault, fault), (RmapOp::Munmap, unmapped)])
}

/// Runs `op` (on the mapping at `vmas`) as a real-time task started just after a tick,
/// between `hook`'s `Before` and `After`, so that a traced round's probe reads stay outside
/// it.
fn unpreempted<T>(hook: Hook, op: RmapOp, vmas: (u64, u64), f: impl FnOnce() -> T) -> T {
    hook(Some(op), Step::Before { vmas });
    let held = Unpreempted::enter_after_tick();
    let out = f();
    drop(held);
    hook(Some(op), Step::After);
    out
}

/// The operations that share one prepared mapping, in order: PTE-remap (PMD folios only)
/// then fork then munmap; COW of one byte per folio alone; of every page alone;
/// MADV_DONTNEED alone.
pub const GROUPS: [&[RmapOp]; 4] = [
    &[RmapOp::PteRemap, RmapOp::Fork, RmapOp::Munmap],
    &[RmapOp::Cow],
    &[RmapOp::CowEachPage],
    &[RmapOp::DontneedPerPte],
];

/// Runs the operations of `group` that are in `ops` on one fresh mapping. `hook(Some(op),
/// Step::Before {..})` runs just before an operation and `hook(Some(op), Step::After)` just
/// after (for tracing), each naming the mapping's address range. The fork is preceded by the
/// control, `hook(None, ..)` around it: the same fork with the mapping marked MADV_DONTFORK,
/// which leaves the allocator caches alike before every timed fork and, counted on the
/// mapping's VMAs, must count nothing (the negative control); a
/// PMD-sized folio is PTE-remapped first (untimed, unless PteRemap itself is measured),
/// as the thread's benchmarks work on PTE-mapped large folios.
pub fn run_group(
    group: &[RmapOp],
    ops: &[RmapOp],
    size: usize,
    folio: Folio,
    hook: Hook,
) -> Result<(Vec<(RmapOp, Duration)>, FolioCheck), WorkloadError> {
    let folio_kb = folio.kb;
    let (m, check) = if folio.hugetlb {
        prepare_hugetlb(size, folio.kb)?
    } else {
        prepare(size, folio.kb, folio.pmd_kb)?
    };
    let pmd = folio.pmd_kb as usize * 1024;
    let is_pmd = folio.is_pmd_thp();
    let mut out = Vec::new();
    if is_pmd && !(group.contains(&RmapOp::PteRemap) && ops.contains(&RmapOp::PteRemap)) {
        pte_remap(&m, pmd)?;
    }
    let mut m = Some(m);
    for &op in group.iter().filter(|o| ops.contains(o)) {
        let mapping = m.as_ref().expect("munmap is last");
        if op == RmapOp::PteRemap && !is_pmd {
            continue;
        }
        // COW allocates a page per page written: from the per-CPU page lists' floor in
        // every round (see `page_lists`).
        if matches!(op, RmapOp::Cow | RmapOp::CowEachPage) {
            crate::page_lists::settle();
        }
        // Every timed fork follows an untimed one, whose child exits on this CPU: it leaves
        // the allocator caches a fork draws from (the per-CPU cache of kernel stacks, slab
        // CPU slabs, the per-CPU page lists) in the same state before every timed fork. Without
        // it, some rounds' forks paid a vmalloc'd kernel stack or a slab or page-list refill
        // and others not (30-45K instructions in 1-4 of 9 rounds, 2M folios).
        // No control for HugeTLB: 7.3 refuses MADV_DOFORK on a HugeTLB VMA (EINVAL; 6.12
        // takes it), and the helper has no HugeTLB memory but the mapping, so what the
        // hugetlb probes count is the mapping's alone: its warm-up fork is a plain one.
        if op == RmapOp::Fork {
            if folio.hugetlb {
                fork()?;
            } else {
                fork_without(mapping, hook)?;
            }
        }
        let vmas = range_of(mapping);
        let took = unpreempted(hook, op, vmas, || {
            let mapping = m.as_ref().expect("munmap is last");
            match op {
                RmapOp::PteRemap => pte_remap(mapping, pmd),
                RmapOp::Fork => fork(),
                RmapOp::Munmap => munmap(m.take().expect("mapped")),
                RmapOp::DontneedPerPte => dontneed_per_pte(mapping),
                RmapOp::Cow => cow(mapping, folio_kb as usize * 1024),
                RmapOp::CowEachPage => cow(mapping, PAGE),
                // The file case's fault-in; not in the anonymous groups.
                RmapOp::Fault => Ok(mapping.touch()),
            }
        });
        out.push((op, took?));
    }
    Ok((out, check))
}
