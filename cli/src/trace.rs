//! `foliobench trace`: live tracing of catalog probes, system-wide for a duration or of one
//! command and its children, printed as log2 histograms like funclatency/bpftrace.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use foliobench_ebpf::catalog::{self, group_name, Probe, CATALOG};
use foliobench_ebpf::kernel::KernelFacts;
use foliobench_ebpf::tracer::{Filter, ProbeStorage, Tracer};
use foliobench_reports::trace::{NotTraced, TraceReport, TRACE_SCHEMA_VERSION};
use foliobench_workloads::command::{CommandError, GatedChild};
use foliobench_workloads::system;

use crate::exit::{usage, Code, Fail};
use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// A probe id or a group (memmap, vmemmap, pin, grab, rmap, dax); repeatable.
    /// Default: every probe (none when --function is given).
    #[arg(long = "probe", value_name = "NAME")]
    pub probes: Vec<String>,
    /// Any kernel function, by its name in kallsyms (as funclatency's FUNC); repeatable.
    #[arg(long = "function", value_name = "FUNC")]
    pub functions: Vec<String>,
    /// Trace the whole system for this long (e.g. 10s), instead of a command.
    #[arg(long)]
    pub duration: Option<String>,
    /// Count each probe's calls per kernel call path too (a BPF stack map, as bcc's
    /// stackcount), symbolised from /proc/kallsyms.
    #[arg(long)]
    pub stacks: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The command to trace, with its children.
    #[arg(last = true)]
    pub command: Vec<String>,
}

fn probe_names() -> String {
    let mut groups: Vec<&str> = CATALOG.iter().map(|p| group_name(p.group)).collect();
    groups.dedup();
    let ids: Vec<&str> = CATALOG.iter().map(|p| p.id).collect();
    format!("groups: {}; probes: {}", groups.join(", "), ids.join(", "))
}

pub fn run(a: TraceArgs) -> Result<Code> {
    let duration = system_wide_duration(&a)?;
    let mut selected = if a.functions.is_empty() || !a.probes.is_empty() {
        selected_probes(&a.probes)?
    } else {
        vec![]
    };
    selected.extend(a.functions.iter().map(|f| catalog::function_probe(f)));

    let facts = KernelFacts::probe();
    let mut resolutions = facts.resolve(&selected);
    if a.stacks {
        resolutions = foliobench_ebpf::tracer::with_stacks(&resolutions);
    }
    let mut report = TraceReport {
        schema_version: TRACE_SCHEMA_VERSION,
        kernel_release: system::kernel_release(),
        command: a.command.clone(),
        command_status: None,
        duration_ns: 0,
        probes: vec![],
        not_traced: resolutions
            .iter()
            .filter(|r| r.flavour.is_none())
            .map(NotTraced::from_resolution)
            .collect(),
        notes: facts.refusals(),
    };

    // The command is forked first but held before exec, so its pid is in the filter
    // before it runs a single instruction.
    let mut child = if a.command.is_empty() {
        None
    } else {
        Some(GatedChild::spawn(&a.command).map_err(|e| usage(e.to_string()))?)
    };
    let filter = child
        .as_ref()
        .map_or(Filter::All, |c| Filter::Tgids(vec![c.pid]));
    let mut storage = ProbeStorage::default();
    let tracer = Tracer::start(&mut storage, &resolutions, &filter)?;
    report.not_traced.extend(tracer.failed.iter().cloned());
    if tracer.attached() == 0 {
        drop(child);
        eprint!("{}", report.render_text());
        return Err(Fail {
            code: Code::Skipped,
            msg: "nothing could be traced here: no selected probe attached (reasons above)".into(),
        }
        .into());
    }

    trace_until_done(child.as_mut(), duration, &mut report)?;
    report.probes = tracer.read();

    a.output.emit(&report, || report.render_text())?;
    Ok(Code::Ok)
}

/// `Some(duration)` to trace the whole system that long, `None` to trace the command;
/// exactly one of the two must be given.
fn system_wide_duration(a: &TraceArgs) -> Result<Option<Duration>> {
    Ok(match (&a.duration, a.command.is_empty()) {
        (Some(_), false) => return Err(usage("give either --duration or -- COMMAND, not both")),
        (None, true) => {
            return Err(usage(
                "give --duration D (system-wide) or -- COMMAND (that command and its children)",
            ))
        }
        (Some(d), true) => Some(
            humantime::parse_duration(d)
                .map_err(|e| usage(format!("--duration '{d}': {e}; write e.g. 10s")))?,
        ),
        (None, false) => None,
    })
}

/// The catalog probes named by `--probe` (ids or groups); every probe when none is named.
fn selected_probes(names: &[String]) -> Result<Vec<&'static Probe>> {
    Ok(if names.is_empty() {
        CATALOG.iter().collect()
    } else {
        catalog::select(names)
            .map_err(|bad| usage(format!("unknown probe '{bad}'; {}", probe_names())))?
    })
}

/// Lets the held command run and waits for it to end, or traces system-wide for
/// `duration` (until Ctrl-C); records how long the probes were attached.
fn trace_until_done(
    child: Option<&mut GatedChild>,
    duration: Option<Duration>,
    report: &mut TraceReport,
) -> Result<()> {
    let interrupted = crate::exit::interrupt_flag()?;
    let started = Instant::now();
    match (child, duration) {
        (Some(c), _) => {
            c.release().map_err(|e| match e {
                CommandError::Exec(..) | CommandError::NotFound(_) => usage(e.to_string()),
                e => e.into(),
            })?;
            // Ctrl-C reaches the command too (same process group); wait for it to end.
            report.command_status = Some(c.wait()?);
        }
        (None, Some(d)) => {
            while started.elapsed() < d && !interrupted.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50).min(d));
            }
        }
        (None, None) => unreachable!("validated above"),
    }
    report.duration_ns = started.elapsed().as_nanos() as u64;
    Ok(())
}
