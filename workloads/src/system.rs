//! Facts about the running kernel and machine, read from procfs and sysfs.

use std::ffi::CString;
use std::fs;
use std::path::Path;

pub use foliobench_reports::facts::{Availability, Cpu, ModuleState, Thp, ThpSize};

pub(crate) fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(p).ok().map(|s| s.trim().to_string())
}

pub fn kernel_release() -> String {
    read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into())
}

/// Set by `foliobench vm` in the guest: the accelerator the VM runs under (kvm, tcg).
pub const ACCEL_ENV: &str = "FOLIOBENCH_ACCEL";
/// Set by `foliobench vm` in the guest: the Debian package booted, `name=version`.
pub const KERNEL_PACKAGE_ENV: &str = "FOLIOBENCH_KERNEL_PACKAGE";

/// Set by `foliobench vm` in the guest: the clock the guest's time runs on (`wall`,
/// `instructions`), and the QEMU options that made it.
pub const CLOCK_ENV: &str = "FOLIOBENCH_CLOCK";
pub const CLOCK_QEMU_ENV: &str = "FOLIOBENCH_CLOCK_QEMU";

/// The clock this process's timings are read with: the test VM's as `foliobench vm` set
/// it, else the wall clock (a host, or a VM foliobench did not boot).
pub fn clock() -> foliobench_reports::clock::Clock {
    use foliobench_reports::clock::{Clock, ClockKind};
    match std::env::var(CLOCK_ENV)
        .ok()
        .as_deref()
        .and_then(ClockKind::parse)
    {
        Some(kind) => Clock {
            kind,
            qemu_options: std::env::var(CLOCK_QEMU_ENV).ok().filter(|s| !s.is_empty()),
        },
        None => Clock::wall(),
    }
}

/// The accelerator of the test VM this runs in; None outside one.
pub fn vm_accelerator() -> Option<String> {
    std::env::var(ACCEL_ENV).ok().filter(|s| !s.is_empty())
}

/// The Debian kernel package (`name=version`) booted, when the test VM booted one.
pub fn kernel_package() -> Option<String> {
    std::env::var(KERNEL_PACKAGE_ENV)
        .ok()
        .filter(|s| !s.is_empty())
}

pub fn kernel_cmdline() -> String {
    read_trim("/proc/cmdline").unwrap_or_default()
}

pub fn cpu_kind() -> (Cpu, String) {
    let info = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    classify_cpu(&info)
}

/// QEMU's TCG CPU models name themselves ("QEMU TCG CPU", "QEMU Virtual CPU"); a
/// hardware-assisted guest shows the host's model with the `hypervisor` flag.
pub fn classify_cpu(cpuinfo: &str) -> (Cpu, String) {
    let field = |key: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let model = field("model name");
    let flags = field("flags");
    let kind = if model.contains("QEMU") || model.contains("TCG") {
        Cpu::Emulated
    } else if flags.split_whitespace().any(|f| f == "hypervisor") {
        Cpu::Virtualized
    } else {
        Cpu::Bare
    };
    (kind, model)
}

/// Whether a filesystem of this type is mounted at `target` (per /proc/self/mounts).
pub fn is_mounted(fstype: &str, target: &str) -> bool {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts.lines().any(|l| {
        let mut it = l.split_whitespace();
        let _src = it.next();
        it.next() == Some(target) && it.next() == Some(fstype)
    })
}

/// Mounts a pseudo filesystem (tracefs, debugfs) where it is expected, if it is not there.
/// Returns whether it mounted it, so callers can say so.
pub fn ensure_mounted(fstype: &str, target: &str) -> Result<bool, String> {
    if is_mounted(fstype, target) {
        return Ok(false);
    }
    let (src, tgt, ty) = (
        CString::new("none").expect("no NUL"),
        CString::new(target).map_err(|e| e.to_string())?,
        CString::new(fstype).map_err(|e| e.to_string())?,
    );
    // SAFETY: all pointers are valid C strings; no data argument.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), ty.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        Ok(true)
    } else {
        Err(format!(
            "mount -t {fstype} {target}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// `hugepages-64kB` -> 64.
pub fn parse_hugepages_dir(name: &str) -> Option<u64> {
    name.strip_prefix("hugepages-")?
        .strip_suffix("kB")?
        .parse()
        .ok()
}

/// The bracketed choice of a sysfs selector: `always [madvise] never` -> `madvise`.
pub fn selected(s: &str) -> Option<String> {
    let start = s.find('[')?;
    let end = s[start..].find(']')? + start;
    Some(s[start + 1..end].to_string())
}

/// Sets up a real io_uring instance: the only test that covers seccomp, the
/// `kernel.io_uring_disabled` sysctl and kernels built without it.
pub fn io_uring() -> Availability {
    match io_uring::IoUring::new(2) {
        Ok(_) => Availability {
            available: true,
            reason: "io_uring_setup() succeeded".into(),
        },
        Err(e) => Availability {
            available: false,
            reason: format!(
                "io_uring_setup() failed: {e}{}",
                match read_trim("/proc/sys/kernel/io_uring_disabled").as_deref() {
                    Some(v) if v != "0" => format!(" (kernel.io_uring_disabled = {v})"),
                    _ => String::new(),
                }
            ),
        },
    }
}

pub const GUP_TEST: &str = "/sys/kernel/debug/gup_test";

/// The kernel's own GUP benchmark (CONFIG_GUP_TEST); debugfs must be mounted.
pub fn gup_test() -> Availability {
    if Path::new(GUP_TEST).exists() {
        Availability {
            available: true,
            reason: format!("{GUP_TEST} exists"),
        }
    } else if !is_mounted("debugfs", "/sys/kernel/debug") {
        Availability {
            available: false,
            reason: "debugfs is not mounted at /sys/kernel/debug".into(),
        }
    } else {
        Availability {
            available: false,
            reason: format!("{GUP_TEST} is absent: kernel built without CONFIG_GUP_TEST"),
        }
    }
}

/// A kernel module's state. Module names use `_`; files may use `-`.
pub fn module_state(name: &str, release: &str) -> ModuleState {
    let sys = Path::new("/sys/module").join(name);
    let moddir = Path::new("/lib/modules").join(release);
    let listed = |file: &str| {
        fs::read_to_string(moddir.join(file))
            .map(|t| module_listed(&t, name))
            .unwrap_or(false)
    };
    if listed("modules.builtin") {
        ModuleState::Builtin
    } else if sys.join("initstate").exists() {
        ModuleState::Loaded
    } else if sys.exists() {
        // In /sys/module without initstate: built in (it has parameters).
        ModuleState::Builtin
    } else if listed("modules.dep") {
        ModuleState::Loadable
    } else if !moddir.join("modules.builtin").exists() {
        ModuleState::Unknown
    } else {
        ModuleState::Absent
    }
}

/// Whether a modules.builtin / modules.dep listing names the module `name`.
pub fn module_listed(listing: &str, name: &str) -> bool {
    let want = name.replace('-', "_");
    listing.lines().any(|l| {
        let path = l.split(':').next().unwrap_or("");
        let file = path.rsplit('/').next().unwrap_or("");
        let base = file.split(".ko").next().unwrap_or("");
        !base.is_empty() && base.replace('-', "_") == want
    })
}

/// A /proc/vmstat counter, if this kernel has it (e.g. `nr_memmap_pages`, added in 6.11).
pub fn vmstat(key: &str) -> Option<i64> {
    procfs::vmstat().ok()?.get(key).copied()
}

/// Runs the kernel's vmstat refresh on every CPU at once (a write to
/// /proc/sys/vm/stat_refresh): folds the per-CPU counter deltas and decays the per-CPU page
/// lists' high marks. Best effort: refused (not root), or an error reporting negative
/// counters after the refresh was done, it only leaves what follows a bit stale.
pub fn refresh_vm_stats() {
    let _ = fs::write("/proc/sys/vm/stat_refresh", "1");
}

/// `/proc/vmstat`'s nr_foll_pin_acquired and nr_foll_pin_released (5.8+): the kernel's own
/// count of FOLL_PIN references taken and dropped, system-wide. The per-CPU deltas are
/// folded first (vm.stat_refresh): unfolded, each CPU may hold back up to its threshold.
pub fn foll_pins() -> Option<(i64, i64)> {
    refresh_vm_stats();
    let v = procfs::vmstat().ok()?;
    Some((
        *v.get("nr_foll_pin_acquired")?,
        *v.get("nr_foll_pin_released")?,
    ))
}

/// A /proc/meminfo field in kB, by its name there (MemTotal, MemFree, MemAvailable).
pub fn meminfo_kb(key: &str) -> Option<i64> {
    use procfs::Current;
    let m = procfs::Meminfo::current().ok()?;
    let bytes = match key {
        "MemTotal" => Some(m.mem_total),
        "MemFree" => Some(m.mem_free),
        "MemAvailable" => m.mem_available,
        _ => None,
    }?;
    i64::try_from(bytes / 1024).ok()
}

/// Free memory in kB as the page allocator holds it: every zone's buddy free pages
/// (`nr_free_pages`, MemFree's source) plus the pages waiting in its per-CPU lists (each
/// pageset's `count`), read from /proc/zoneinfo after folding the per-CPU vmstat diffs
/// (a write to /proc/sys/vm/stat_refresh). MemFree alone leaves out the per-CPU lists,
/// which hold up to several MiB that come and go with any allocation: around a namespace
/// teardown on 6.12 MemFree rose by 24576..32800 kB for a 32768 kB memmap, this by
/// 32668..32912. procfs has no zoneinfo reader, hence by hand.
pub fn free_pages_kb() -> Option<i64> {
    // Without the fold the counters lag by up to a threshold per CPU and zone; still a
    // reading where the refresh is refused.
    refresh_vm_stats();
    free_pages_in_zoneinfo(&fs::read_to_string("/proc/zoneinfo").ok()?).map(|p| p * 4)
}

/// `free_pages_kb` once it has stopped moving (`settled`).
pub fn settled_free_pages_kb() -> Option<i64> {
    settled(free_pages_kb)
}

/// `read` once it has stopped moving: two readings 20 ms apart within 64 KiB, or the last
/// of 50. What is freed after a delay lands before it, not in the next reading: a closed
/// BPF object's maps are freed by a deferred work item after an RCU grace period, and
/// under emulation that came during the next namespace teardown (5.4 MiB too much for two
/// geometries of one 6.12 run).
fn settled(read: impl Fn() -> Option<i64>) -> Option<i64> {
    let mut last = read()?;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = read()?;
        if (now - last).abs() <= 64 {
            return Some(now);
        }
        last = now;
    }
    Some(last)
}

/// Memory no counter accounts for, in kB, once it has stopped moving: MemTotal less the
/// free pages (per-CPU lists included) and every /proc/meminfo field that holds pages
/// (`ACCOUNTED`). A vmemmap in RAM and its page tables are in it, and nothing moves it
/// when memory only changes hands: a process exiting, a slab or a BPF map freed, page
/// cache read in. Around a teardown, free memory alone counted those too.
pub fn settled_unaccounted_kb() -> Option<i64> {
    settled(|| {
        let free = free_pages_kb()?;
        unaccounted_kb_in_meminfo(&fs::read_to_string("/proc/meminfo").ok()?, free)
    })
}

/// The /proc/meminfo fields that hold pages, without overlaps (Cached holds Shmem, Slab the
/// two S* fields, AnonPages AnonHugePages). The ones a kernel lacks count 0.
const ACCOUNTED: &[&str] = &[
    "Buffers",
    "Cached",
    "SwapCached",
    "AnonPages",
    "Slab",
    "KernelStack",
    "PageTables",
    "SecPageTables",
    "Bounce",
    "WritebackTmp",
    "VmallocUsed",
    "Percpu",
    "Hugetlb",
    "Unaccepted",
    "Zswap",
    "Balloon",
    "GPUActive",
    "GPUReclaim",
];

/// MemTotal less `free_kb` and the `ACCOUNTED` fields of a /proc/meminfo text, in kB.
pub fn unaccounted_kb_in_meminfo(text: &str, free_kb: i64) -> Option<i64> {
    let (mut total, mut accounted) = (None, 0i64);
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let kb = || {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<i64>()
                .ok()
        };
        if name == "MemTotal" {
            total = kb();
        } else if ACCOUNTED.contains(&name) {
            accounted += kb()?;
        }
    }
    Some(total? - free_kb - accounted)
}

/// Every task's run time on every CPU since boot, in ns: /proc/schedstat's `rq_cpu_time`
/// summed (CONFIG_SCHED_INFO). The idle task is not in it, so around a command that mostly
/// waits (ndctl on 9p I/O and RCU grace periods) it is the work done, where its elapsed
/// time under the instruction clock is mostly the clock jumping to the next timer while the
/// guest idles.
/// Measured (6.12.118, one vCPU, two boots of six `ndctl create-namespace` of devdax 2M):
/// 58.3-64.1 ms busy in 5.1-24.9 s elapsed; medians 58.9 / 59.1 ms.
pub fn cpu_busy_ns() -> Option<u64> {
    busy_ns_in_schedstat(&fs::read_to_string("/proc/schedstat").ok()?)
}

/// The `rq_cpu_time` of every `cpuN` line of a /proc/schedstat text, summed. Versions 15-17
/// (2.6.35 to today) print it seventh after the CPU's name; another version is not read.
pub fn busy_ns_in_schedstat(text: &str) -> Option<u64> {
    let version: u32 = text
        .lines()
        .next()?
        .strip_prefix("version ")?
        .trim()
        .parse()
        .ok()?;
    if !(15..=17).contains(&version) {
        return None;
    }
    let mut cpus = text.lines().filter_map(|l| {
        let mut words = l.split_whitespace();
        let name = words.next()?;
        name.strip_prefix("cpu")?.parse::<u32>().ok()?;
        Some(words.nth(6).and_then(|w| w.parse::<u64>().ok()))
    });
    let first = cpus.next()??;
    cpus.try_fold(first, |sum, n| Some(sum + n?))
}

/// Buddy free pages plus per-CPU list pages in a /proc/zoneinfo text, in pages. The names
/// are matched whole: 6.15+ also has `nr_free_pages_blocks`.
pub fn free_pages_in_zoneinfo(text: &str) -> Option<i64> {
    let (mut free, mut seen) = (0i64, false);
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(value)) = (words.next(), words.next()) else {
            continue;
        };
        if name == "nr_free_pages" || name == "count:" {
            free += value.parse::<i64>().ok()?;
            seen |= name == "nr_free_pages";
        }
    }
    seen.then_some(free)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// procfs reads the same figures as the files say (MemTotal does not change).
    #[test]
    fn meminfo_and_vmstat_by_name() {
        let text = fs::read_to_string("/proc/meminfo").unwrap();
        let total: i64 = text
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        assert_eq!(meminfo_kb("MemTotal"), Some(total));
        assert!(meminfo_kb("MemFree").is_some_and(|f| f > 0 && f <= total));
        assert_eq!(meminfo_kb("NoSuchField"), None);
        assert!(vmstat("nr_free_pages").is_some_and(|n| n > 0));
        assert_eq!(vmstat("no_such_counter"), None);
    }

    /// /proc/meminfo of the test VM (Debian 7.3.4, 4 GiB, idle): MemTotal 4007872 less the
    /// free pages given and the fields that hold pages (Cached 8232, AnonPages 27096, Slab
    /// 18688, KernelStack 976, PageTables 724, VmallocUsed 14432, Percpu 304; the others 0),
    /// never MemFree, Shmem, SReclaimable or AnonHugePages, which others already hold.
    #[test]
    fn unaccounted_memory_is_total_less_free_and_every_holder() {
        let text = include_str!("../tests/fixtures/meminfo-7.3.txt");
        assert_eq!(unaccounted_kb_in_meminfo(text, 3_872_152), Some(65_268));
        // A process's 2 MiB THP freed: AnonPages falls as free memory rises, nothing else.
        let exited = text.replace("AnonPages:         27096", "AnonPages:         25048");
        assert_eq!(unaccounted_kb_in_meminfo(&exited, 3_874_200), Some(65_268));
        // A vmemmap freed: free memory rises and no field falls.
        assert_eq!(unaccounted_kb_in_meminfo(text, 3_880_408), Some(57_012));
        assert_eq!(unaccounted_kb_in_meminfo("Cached: 1 kB\n", 0), None);
    }

    /// /proc/schedstat of the test VM (Debian 6.12.118, one vCPU, version 16, schedstats
    /// off: their counters read 0) and a two-CPU text: rq_cpu_time summed, never run_delay;
    /// an unknown version or a short line is not read.
    #[test]
    fn cpu_busy_is_rq_cpu_time_summed() {
        let one =
            "version 16\ntimestamp 4294946574\ncpu0 0 0 0 0 0 0 5772293270 6187284867 35482\n";
        assert_eq!(busy_ns_in_schedstat(one), Some(5_772_293_270));
        let two = "version 17\ntimestamp 1\ncpu0 1 0 2 3 4 5 100 7 8\n\
                   domain0 MC 3 1 2 3 4 5 6 7 8 9\ncpu1 1 0 2 3 4 5 23 7 8\n";
        assert_eq!(busy_ns_in_schedstat(two), Some(123));
        assert_eq!(
            busy_ns_in_schedstat(&one.replace("version 16", "version 18")),
            None
        );
        assert_eq!(busy_ns_in_schedstat("version 16\ncpu0 0 0 0 0 0 0\n"), None);
        assert_eq!(busy_ns_in_schedstat("version 16\ntimestamp 1\n"), None);
    }

    /// /proc/zoneinfo of the test VM (Debian 7.3.4, 4 GiB): zones' buddy pages and their
    /// per-CPU lists, `nr_free_pages_blocks` (6.15+) not mistaken for either.
    #[test]
    fn free_pages_sum_buddy_and_per_cpu_lists() {
        let text = include_str!("../tests/fixtures/zoneinfo-7.3.txt");
        assert_eq!(free_pages_in_zoneinfo(text), Some(957049 + 12406));
        assert_eq!(
            free_pages_in_zoneinfo("Node 0, zone DMA\n  pages free 3\n"),
            None
        );
        assert!(free_pages_kb().is_some_and(|kb| kb > 0));
    }

    #[test]
    fn selector_parsing() {
        assert_eq!(
            selected("always [madvise] never").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            selected("[always] inherit madvise never").as_deref(),
            Some("always")
        );
        assert_eq!(selected("no brackets"), None);
    }

    #[test]
    fn hugepages_dir_names() {
        assert_eq!(parse_hugepages_dir("hugepages-2048kB"), Some(2048));
        assert_eq!(parse_hugepages_dir("hugepages-64kB"), Some(64));
        assert_eq!(parse_hugepages_dir("enabled"), None);
        assert_eq!(parse_hugepages_dir("hugepages-kB"), None);
    }

    #[test]
    fn module_listing_matches_names_not_prefixes() {
        let dep = "kernel/drivers/dax/device_dax.ko.xz: kernel/drivers/dax/dax.ko.xz\n\
                   kernel/drivers/nvdimm/nd_pmem.ko.xz: kernel/drivers/nvdimm/libnvdimm.ko.xz\n";
        assert!(module_listed(dep, "device_dax"));
        assert!(module_listed(dep, "nd_pmem"));
        assert!(!module_listed(dep, "dax_pmem"));
        assert!(
            !module_listed(dep, "dax"),
            "dependencies after ':' are not entries"
        );
        assert!(module_listed(
            "kernel/drivers/dax/dax-pmem.ko\n",
            "dax_pmem"
        ));
    }

    #[test]
    fn cpu_classification() {
        let tcg = "model name\t: QEMU TCG CPU version 2.5+\nflags\t\t: fpu hypervisor\n";
        assert_eq!(classify_cpu(tcg).0, Cpu::Emulated);
        let kvm = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse hypervisor\n";
        assert_eq!(classify_cpu(kvm).0, Cpu::Virtualized);
        let bare = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse\n";
        assert_eq!(classify_cpu(bare).0, Cpu::Bare);
    }
}
