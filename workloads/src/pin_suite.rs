//! The pin suite's measurement of one (memory, driver) cell: one untimed warm-up round,
//! the timed rounds with nothing attached, then one traced round for the pin functions'
//! latencies and another for the refcount grabs. The two traced rounds are apart so the
//! per-page grab probes do not inflate the pin latencies, and neither touches the timings.

use std::fs::File;

use foliobench_ebpf::catalog::Resolution;
use foliobench_ebpf::tracer::{self, any_traceable, Filter};
use foliobench_reports::facts::Group;
use foliobench_reports::pin::{GrabFunction, Grabs, PinSample};
use foliobench_reports::trace::ProbeStats;

use crate::mapping::{Mapping, WorkloadError};
use crate::pin::{
    gup_test, gup_test_with, odirect, Direction, FixedBuffers, GupTestCmd, PinTiming,
    IO_URING_MAX_BUFFER,
};

/// Pages per GUP call for gup_test, as the selftest's `-n 512` in the kernel's README.
pub const GUP_TEST_PAGES_PER_CALL: u32 = 512;

/// A pin driver with what it needs open.
pub enum Driver<'a> {
    IoUring(&'a FixedBuffers),
    /// The O_DIRECT source device, opened with O_DIRECT.
    Odirect(&'a File),
    /// /sys/kernel/debug/gup_test, and the benchmark.
    GupTest(&'a File, GupTestCmd),
}

impl Driver<'_> {
    /// Pins and unpins the whole mapping once.
    pub fn round(&self, m: &Mapping) -> Result<PinTiming, WorkloadError> {
        match self {
            Driver::IoUring(ring) => ring.round(&m.iovecs(IO_URING_MAX_BUFFER)),
            Driver::Odirect(dev) => odirect(dev, m, IO_URING_MAX_BUFFER, Direction::Read),
            Driver::GupTest(dev, cmd) => gup_test(dev, *cmd, m, GUP_TEST_PAGES_PER_CALL),
        }
    }

    /// Pins and unpins a read-only mapping once, each driver as far as it can without
    /// FOLL_WRITE: io_uring always asks for it; O_DIRECT writes *from* the mapping to
    /// `odirect_out` (opened for writing); gup_test without FOLL_WRITE.
    pub fn round_read_only(
        &self,
        m: &Mapping,
        odirect_out: Option<&File>,
    ) -> Result<PinTiming, WorkloadError> {
        match self {
            Driver::IoUring(ring) => ring.round(&m.iovecs(IO_URING_MAX_BUFFER)),
            Driver::Odirect(_) => match odirect_out {
                Some(out) => odirect(out, m, IO_URING_MAX_BUFFER, Direction::Write),
                None => Err(WorkloadError::Failed(
                    "no block device opened for O_DIRECT writes".into(),
                )),
            },
            Driver::GupTest(dev, cmd) => {
                gup_test_with(dev, *cmd, m, GUP_TEST_PAGES_PER_CALL, false)
            }
        }
    }
}

/// What one cell gave.
#[derive(Debug, Default)]
pub struct Measured {
    pub warmup_rounds: u32,
    pub pages: u64,
    pub samples: Vec<PinSample>,
    pub kernel: Vec<ProbeStats>,
    pub grabs: Option<Grabs>,
    /// Probes that could not be loaded or attached, with the kernel's reason.
    pub not_traced: Vec<String>,
}

/// Runs `d` on `m`: warm-up, `repeat` timed rounds, then the traced rounds with `latency`
/// and `grab` probes. A kernel refusal in the warm-up round is returned as the error.
pub fn measure(
    m: &Mapping,
    d: &Driver,
    repeat: usize,
    latency: &[Resolution],
    grab: &[Resolution],
) -> Result<Measured, WorkloadError> {
    let mut out = Measured::default();
    let warm = d.round(m)?;
    out.warmup_rounds = 1;
    out.pages = warm.pages;
    for _ in 0..repeat {
        let t = d.round(m)?;
        out.samples.push(PinSample {
            pin_ns: t.pin.as_nanos() as u64,
            unpin_ns: t.unpin.map(|u| u.as_nanos() as u64),
        });
    }
    if let Some(stats) = traced(m, d, latency, &mut out.not_traced)? {
        out.kernel = stats.1;
    }
    if let Some((pages, stats)) = traced(m, d, grab, &mut out.not_traced)? {
        out.grabs = grabs(pages, &stats);
    }
    Ok(out)
}

/// One round with `probes` attached to this process (pins, and with null_blk's inline
/// completion also the unpins, run in it). `None` when nothing could be attached.
fn traced(
    m: &Mapping,
    d: &Driver,
    probes: &[Resolution],
    not_traced: &mut Vec<String>,
) -> Result<Option<(u64, Vec<ProbeStats>)>, WorkloadError> {
    if !any_traceable(probes) {
        return Ok(None);
    }
    let (round, stats, t) = match tracer::whole(probes, &Filter::this_process(), || d.round(m)) {
        Ok(x) => x,
        Err(e) => {
            not_traced.push(format!("probes: {e:#}"));
            return Ok(None);
        }
    };
    for f in &t.failed {
        not_traced.push(format!("{}: {}", f.probe, f.reason));
    }
    let round = round?;
    Ok((t.attached > 0).then_some((round.pages, stats)))
}

fn per_function(stats: &[ProbeStats], prefix: &str) -> Vec<GrabFunction> {
    stats
        .iter()
        .filter(|s| s.group == Group::Grab && s.probe.starts_with(prefix))
        .map(|s| GrabFunction {
            function: s.function.clone(),
            calls: s.calls,
            refs: s.arg_sum,
            refs_values: s.arg_values.clone(),
        })
        .collect()
}

/// The grab probes' calls and `refs` summed over the round, and the per-folio releases.
pub fn grabs(pages: u64, stats: &[ProbeStats]) -> Option<Grabs> {
    let by_function = per_function(stats, "try_grab");
    if by_function.is_empty() {
        return None;
    }
    Some(Grabs {
        pages,
        calls: by_function.iter().map(|f| f.calls).sum(),
        refs: by_function.iter().map(|f| f.refs).sum(),
        by_function,
        releases: per_function(stats, "unpin_user_"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use foliobench_reports::facts::Flavour;

    fn stat(probe: &str, group: Group, calls: u64, values: Vec<(u64, u64)>) -> ProbeStats {
        ProbeStats {
            probe: probe.into(),
            group,
            function: probe.into(),
            mechanism: Flavour::Fentry,
            calls,
            returns: calls,
            total_ns: 0,
            latency_log2: vec![],
            arg_name: Some("refs".into()),
            arg_log2: vec![],
            arg_sum: values.iter().map(|(v, n)| v * n).sum(),
            arg_values: values,
            arg_values_dropped: 0,
        }
    }

    /// Seen on 6.12, 2M devdax, long-term pin of 1 GiB: the slow path grabs 1 then 511.
    #[test]
    fn grabs_sum_the_grab_functions_only() {
        let s = vec![
            stat(
                "try_grab_folio",
                Group::Grab,
                1024,
                vec![(1, 512), (511, 512)],
            ),
            stat("try_grab_folio_fast", Group::Grab, 0, vec![]),
            stat("pin_user_pages_fast", Group::Pin, 1, vec![(262144, 1)]),
            stat("unpin_user_folio", Group::Grab, 512, vec![(512, 512)]),
        ];
        let g = grabs(262144, &s).unwrap();
        assert_eq!((g.calls, g.refs), (1024, 262144));
        assert_eq!(g.per_page(), Some(1024.0 / 262144.0));
        assert_eq!(g.by_function.len(), 2);
        assert_eq!(g.release_calls(), 512);
        assert_eq!(g.releases[0].refs, 262144);
        assert!(grabs(1, &s[2..]).is_none());
    }
}
