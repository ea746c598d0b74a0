//! Counting perf events around one operation: the software events `perf stat` shows by
//! default, named tracepoints, and hardware counters where the machine offers them. Counting
//! mode only (no sampling, no BPF): the kernel bumps a counter per event, which is the
//! cheapest independent witness of the BPF probes' counts.

use perf_event::events::{Cache, CacheId, CacheOp, CacheResult, Event, Hardware, Software};
use perf_event::{Builder, Counter};
use std::os::fd::AsRawFd;

use foliobench_reports::perf::{self as names, PerfCounts};

/// Counters of this thread, user and kernel side (the tracepoints fire in the kernel).
fn open<E: Event>(event: E) -> std::io::Result<Counter> {
    Builder::new(event)
        .observe_self()
        .any_cpu()
        .include_kernel()
        .build()
}

/// The tracepoint's id from tracefs (`category:name`).
fn tracepoint_id(tp: &str) -> Result<u64, String> {
    let (category, name) = tp
        .split_once(':')
        .ok_or_else(|| format!("{tp}: not category:name"))?;
    let events = foliobench_ebpf::catalog::tracefs_events().ok_or("tracefs is not mounted")?;
    let path = events.join(category).join(name).join("id");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Why an event could not be opened, in the reader's terms.
fn why_not(hardware: bool, e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::EOPNOTSUPP) if hardware => {
            "not offered here (no hardware PMU)".into()
        }
        Some(libc::EACCES | libc::EPERM) => format!("{e} (perf_event_paranoid, or not root)"),
        _ => e.to_string(),
    }
}

/// A counter of `event`, or why not in the reader's terms.
fn event<E: Event>(event: E, hardware: bool) -> Result<Counter, String> {
    open(event).map_err(|e| why_not(hardware, &e))
}

/// A tracepoint's counter (`category:name`), or why not.
fn open_tracepoint(tp: &str) -> Result<Counter, String> {
    event(
        perf_event::events::Tracepoint::with_id(tracepoint_id(tp)?),
        false,
    )
}

/// A tracepoint counted only where its filter holds (tracefs's filter syntax, e.g.
/// `address >= 0x7f0000000000 && address < 0x7f0002000000`), under a name of its own.
pub struct Filtered {
    pub name: String,
    pub tracepoint: &'static str,
    pub filter: String,
}

impl Filtered {
    /// The user page faults (x86's `exceptions:page_fault_user`) whose address lies in
    /// `[addr, addr + len)`: the faults of one mapping, and none of the process's others
    /// (its own text paged in, a stack page), which perf's `page-faults` also counts.
    pub fn user_faults_in(addr: u64, len: u64) -> Filtered {
        Filtered {
            name: names::USER_FAULTS_IN_MAPPING.into(),
            tracepoint: "exceptions:page_fault_user",
            filter: format!("address >= {addr:#x} && address < {:#x}", addr + len),
        }
    }

    /// The tracepoint's counter with the filter set, or why not.
    fn open(&self) -> Result<Counter, String> {
        let tp = self.tracepoint;
        let c = open_tracepoint(tp).map_err(|why| format!("{tp}: {why}"))?;
        set_filter(&c, &self.filter).map_err(|e| format!("filter {:?}: {e}", self.filter))?;
        Ok(c)
    }
}

/// Sets a tracepoint counter's filter (PERF_EVENT_IOC_SET_FILTER; perf-event2 has no call
/// for it).
fn set_filter(counter: &Counter, filter: &str) -> std::io::Result<()> {
    let filter = std::ffi::CString::new(filter)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid perf fd and a NUL-terminated string the kernel copies before returning.
    let rc = unsafe {
        perf_event_open_sys::ioctls::SET_FILTER(counter.as_raw_fd(), filter.as_ptr() as *mut _)
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Counters running on this thread, from `start` to `stop`.
pub struct Session {
    counters: Vec<(String, Counter)>,
    counts: PerfCounts,
}

impl Session {
    /// Opens and enables the default software events, `tracepoints`, the `filtered`
    /// tracepoints (each under its name) and, where offered, cycles, instructions and dTLB
    /// load misses. What cannot be opened is noted, not fatal.
    pub fn start(tracepoints: &[&str], filtered: &[Filtered]) -> Session {
        const DTLB_MISS: Cache = Cache {
            which: CacheId::DTLB,
            operation: CacheOp::READ,
            result: CacheResult::MISS,
        };
        let mut counts = PerfCounts::default();
        let mut counters: Vec<(String, Counter)> = Vec::new();
        let mut add = |name: &str, c: Result<Counter, String>| match c {
            Ok(c) => counters.push((name.to_string(), c)),
            Err(why) => counts.not_counted.push((name.to_string(), why)),
        };
        add(names::PAGE_FAULTS, event(Software::PAGE_FAULTS, false));
        add(names::MINOR_FAULTS, event(Software::PAGE_FAULTS_MIN, false));
        add(names::MAJOR_FAULTS, event(Software::PAGE_FAULTS_MAJ, false));
        add(
            names::CONTEXT_SWITCHES,
            event(Software::CONTEXT_SWITCHES, false),
        );
        add(names::TASK_CLOCK, event(Software::TASK_CLOCK, false));
        for tp in tracepoints {
            add(tp, open_tracepoint(tp));
        }
        add(names::CYCLES, event(Hardware::CPU_CYCLES, true));
        add(names::INSTRUCTIONS, event(Hardware::INSTRUCTIONS, true));
        add(names::DTLB_LOAD_MISSES, event(DTLB_MISS, true));
        for f in filtered {
            add(&f.name, f.open());
        }
        for (name, c) in &mut counters {
            if let Err(e) = c.enable() {
                counts
                    .not_counted
                    .push((name.clone(), format!("enable: {e}")));
            }
        }
        Session { counters, counts }
    }

    /// Disables the counters and reads them.
    pub fn stop(mut self) -> PerfCounts {
        for (_, c) in &mut self.counters {
            let _ = c.disable();
        }
        for (name, mut c) in self.counters {
            match c.read() {
                Ok(n) => self.counts.counts.push((name, n)),
                Err(e) => self.counts.not_counted.push((name, format!("read: {e}"))),
            }
        }
        self.counts
    }
}

/// `work`, with perf counting as `Session::start` does.
pub fn count<T>(
    tracepoints: &[&str],
    filtered: &[Filtered],
    work: impl FnOnce() -> T,
) -> (T, PerfCounts) {
    let session = Session::start(tracepoints, filtered);
    let out = work();
    (out, session.stop())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host tests run as root (they drive THP and namespaces), so perf may count the
    /// kernel side here.
    #[test]
    fn page_faults_of_a_fresh_mapping_are_counted() {
        let pages = 64usize;
        let (_, c) = count(&[], &[], || {
            let m = crate::mapping::Mapping::anonymous(pages * 4096, false).unwrap();
            m.touch();
        });
        eprintln!("{}", c.describe());
        let faults = c
            .get(names::PAGE_FAULTS)
            .unwrap_or_else(|| panic!("{}", c.describe()));
        assert!(faults >= pages as u64, "{}", c.describe());
        assert!(faults < 2 * pages as u64, "{}", c.describe());
        assert_eq!(c.get(names::MAJOR_FAULTS), Some(0), "{}", c.describe());
    }

    /// The filtered counter counts one mapping's faults and not another's touched in the
    /// same window (the negative control), where page-faults counts both.
    #[test]
    fn user_faults_are_counted_in_the_filtered_mapping_alone() {
        if !std::path::Path::new("/sys/kernel/tracing/events/exceptions/page_fault_user").exists() {
            eprintln!("skipped: no exceptions:page_fault_user tracepoint here (not x86, or tracefs not mounted)");
            return;
        }
        let pages = 64usize;
        let a = crate::mapping::Mapping::anonymous(pages * 4096, false).unwrap();
        let b = crate::mapping::Mapping::anonymous(pages * 4096, false).unwrap();
        let mine = [Filtered::user_faults_in(a.addr(), (pages * 4096) as u64)];
        let (_, c) = count(&[], &mine, || {
            a.touch();
            b.touch();
        });
        assert_eq!(
            c.get(names::USER_FAULTS_IN_MAPPING),
            Some(pages as u64),
            "{}",
            c.describe()
        );
        assert!(
            c.get(names::PAGE_FAULTS).unwrap() >= 2 * pages as u64,
            "{}",
            c.describe()
        );
    }

    /// `populate` faults the mapping in from the kernel's own loop: no user fault for it,
    /// and none for the writes after it (every page is already mapped writable).
    #[test]
    fn a_populated_mapping_takes_no_user_faults() {
        let pages = 64usize;
        let m = crate::mapping::Mapping::anonymous(pages * 4096, false).unwrap();
        let (_, c) = count(&[], &[], || {
            m.populate();
            m.touch();
        });
        let faults = c
            .get(names::PAGE_FAULTS)
            .unwrap_or_else(|| panic!("{}", c.describe()));
        assert!(faults < pages as u64 / 8, "{}", c.describe());
    }
}
