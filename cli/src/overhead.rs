//! `foliobench overhead`: the probe effect. The same command runs untraced, under
//! foliobench's probes and under bpftrace with the same probes (when installed),
//! interleaved, and the medians are compared as ratios.
//!
//! Every variant runs the command through `foliobench timeit`, so that only the command's
//! own wall time is compared (not bpftrace's compile and attach time), with the same
//! wrapper cost in each. Both tracers trace system-wide: bpftrace cannot follow the
//! wrapper's child with `cpid`, and equal scope keeps the comparison fair.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
use foliobench_ebpf::catalog::{self, Flavour, Probe, Resolution};
use foliobench_ebpf::kernel::KernelFacts;
use foliobench_ebpf::tracer::{Filter, ProbeStorage, Tracer};
use foliobench_reports::suite::Suite;
use foliobench_reports::trace::{Overhead, Variant, TRACE_SCHEMA_VERSION};
use foliobench_workloads::system;

use crate::exit::{env, usage, Code, Fail};
use crate::output::OutputArgs;

#[derive(Debug, clap::Args)]
pub struct OverheadArgs {
    /// Probes to attach (ids or groups, as for trace). Default: pin.
    #[arg(long = "probe", value_name = "NAME")]
    pub probes: Vec<String>,
    /// Runs per variant.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The command to time. Default: foliobench's io_uring pin workload with many small
    /// pins (one 4 KiB buffer registered and unregistered 3000 times), so that the probed
    /// calls, not the work inside them, dominate: the per-call cost is then well above the
    /// run-to-run noise (8 buffers of 256 KiB 200 times gave +-30 % untraced spread against
    /// a few percent of probe cost).
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct TimeitArgs {
    /// Where to write the command's wall time in ns.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Runs a command and writes its wall time; exits with its status.
pub fn timeit(a: TimeitArgs) -> Result<Code> {
    let t = Instant::now();
    let status = Command::new(&a.command[0])
        .args(&a.command[1..])
        .status()
        .map_err(|e| usage(format!("cannot run '{}': {e}", a.command[0])))?;
    let ns = t.elapsed().as_nanos();
    std::fs::write(&a.out, ns.to_string())?;
    match status.code() {
        Some(0) => Ok(Code::Ok),
        c => Err(env(format!(
            "'{}' failed ({})",
            a.command[0],
            c.map_or("killed".into(), |c| c.to_string())
        ))),
    }
}

/// The bpftrace equivalent of the attached probes: start time per thread, log2 latency
/// histogram on return, and the argument's histogram, with the same flavour.
pub fn bpftrace_program(probes: &[Resolution]) -> (String, Vec<String>) {
    let mut prog = String::new();
    let mut skipped = Vec::new();
    for (i, r) in probes.iter().enumerate() {
        let Some(f) = r.function.as_deref() else {
            continue;
        };
        let (enter, exit, arg) = match r.flavour {
            // bpftrace's kfunc needs BTF under that name; clones (foo.constprop.0) have none.
            Some(Flavour::Fentry) if !f.contains('.') => (
                format!("kfunc:{f}"),
                format!("kretfunc:{f}"),
                r.arg_name.as_ref().map(|a| format!("args->{a}")),
            ),
            Some(Flavour::Kprobe) if !f.contains('.') => (
                format!("kprobe:{f}"),
                format!("kretprobe:{f}"),
                r.arg_index.map(|i| format!("arg{i}")),
            ),
            Some(Flavour::Tracepoint) => (
                format!("tracepoint:{f}"),
                format!("tracepoint:{}", f.replacen("sys_enter_", "sys_exit_", 1)),
                None,
            ),
            _ => {
                skipped.push(r.probe.clone());
                continue;
            }
        };
        let arg_hist = arg.map_or(String::new(), |a| format!(" @arg{i} = hist({a});"));
        prog.push_str(&format!(
            "{enter} {{ @start{i}[tid] = nsecs;{arg_hist} }}\n\
             {exit} /@start{i}[tid]/ {{ @lat{i} = hist(nsecs - @start{i}[tid]); delete(@start{i}[tid]); }}\n"
        ));
    }
    (prog, skipped)
}

fn timed(prefix: &[String], command: &[String]) -> Result<u64> {
    let out = tempfile::NamedTempFile::new()?;
    let exe = std::env::current_exe()?;
    let mut inner: Vec<String> = vec![
        exe.to_string_lossy().into_owned(),
        "timeit".into(),
        "--out".into(),
    ];
    inner.push(out.path().to_string_lossy().into_owned());
    inner.push("--".into());
    inner.extend(command.iter().cloned());
    let argv: Vec<String> = if prefix.is_empty() {
        inner
    } else {
        let joined = shlex::try_join(inner.iter().map(String::as_str))
            .context("quoting the command for bpftrace")?;
        prefix
            .iter()
            .cloned()
            .chain(["-c".to_string(), joined])
            .collect()
    };
    // The wrapper's own wall time is not the figure: timeit's, of the command alone, is.
    wall_time(&argv)?;
    let ns = std::fs::read_to_string(out.path())?;
    ns.trim()
        .parse()
        .with_context(|| format!("timeit wrote '{ns}'"))
}

/// The default workload: io_uring registrations of anonymous memory, a known call count.
fn default_command() -> Result<Vec<String>> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let args = [
        "workload",
        "io-uring-pin",
        "--size",
        "4K",
        "--buffers",
        "1",
        "--repeat",
        "3000",
    ]
    .iter()
    .map(|s| s.to_string());
    Ok(std::iter::once(exe).chain(args).collect())
}

/// `bpftrace -q -e PROGRAM` attaching the same functions the same way, if bpftrace is here.
fn bpftrace_prefix(traceable: &[Resolution], notes: &mut Vec<String>) -> Option<Vec<String>> {
    let (prog, skipped) = bpftrace_program(traceable);
    let Some(b) = foliobench_workloads::command::which("bpftrace") else {
        notes.push("bpftrace is not installed: no bpftrace comparison".into());
        return None;
    };
    if !skipped.is_empty() {
        notes.push(format!(
            "not in the bpftrace program (no BTF name for kfunc): {}",
            skipped.join(", ")
        ));
    }
    Some(vec![
        b.to_string_lossy().into_owned(),
        "-q".into(),
        "-e".into(),
        prog,
    ])
}

pub fn run(a: OverheadArgs) -> Result<Code> {
    if a.repeat == 0 {
        return Err(usage("--repeat must be at least 1"));
    }
    let selected = selected_probes(&a.probes)?;
    let command = command_to_time(&a)?;
    let facts = KernelFacts::probe();
    let traceable = traceable_probes(&facts, &selected)?;
    let mut notes = facts.refusals();
    let mut bpftrace_prefix = bpftrace_prefix(&traceable, &mut notes);

    let mut variants = empty_variants(bpftrace_prefix.is_some());
    let mut calls_per_run = Vec::new();
    // Warm up once (page cache, first-touch costs), then interleave the variants.
    timed(&[], &command)?;
    for _ in 0..a.repeat {
        variants[0].samples_ns.push(timed(&[], &command)?);
        let (ns, calls) = timed_under_probes(&traceable, &command)?;
        variants[1].samples_ns.push(ns);
        calls_per_run.push(calls);
        if let Some(prefix) = &bpftrace_prefix {
            match timed(prefix, &command) {
                Ok(ns) => variants[2].samples_ns.push(ns),
                Err(e) => {
                    notes.push(format!("bpftrace run failed, comparison dropped: {e:#}"));
                    variants.truncate(2);
                    bpftrace_prefix = None;
                }
            }
        }
    }
    let attach = attach_times(&traceable, a.repeat, bpftrace_prefix.as_deref(), &mut notes)?;
    let o = Overhead {
        attach,
        schema_version: TRACE_SCHEMA_VERSION,
        kernel_release: system::kernel_release(),
        command,
        probes: traceable
            .iter()
            .map(|r| format!("{} ({})", r.probe, r.flavour.map_or("-", Flavour::name)))
            .collect(),
        variants,
        notes,
        calls_per_run,
    };
    a.output.emit(&o, || o.render_text())?;
    Ok(Code::Ok)
}

/// The catalog probes named by `--probe`; the pin group when none is named.
fn selected_probes(probes: &[String]) -> Result<Vec<&'static Probe>> {
    let names = if probes.is_empty() {
        vec![Suite::Pin.name().to_string()]
    } else {
        probes.to_vec()
    };
    catalog::select(&names).map_err(|bad| usage(format!("unknown probe '{bad}'")))
}

fn command_to_time(a: &OverheadArgs) -> Result<Vec<String>> {
    if a.command.is_empty() {
        default_command()
    } else {
        Ok(a.command.clone())
    }
}

/// The selected probes this kernel can attach; skips the run when there are none.
fn traceable_probes(facts: &KernelFacts, selected: &[&Probe]) -> Result<Vec<Resolution>> {
    let traceable: Vec<Resolution> = facts
        .resolve(selected)
        .into_iter()
        .filter(|r| r.flavour.is_some())
        .collect();
    if traceable.is_empty() {
        return Err(Fail {
            code: Code::Skipped,
            msg: "none of the selected probes can be traced here (see foliobench doctor)".into(),
        }
        .into());
    }
    Ok(traceable)
}

/// untraced, foliobench and (when bpftrace is here) bpftrace, in that order, no samples yet.
fn empty_variants(with_bpftrace: bool) -> Vec<Variant> {
    let mut variants = vec![
        Variant {
            name: "untraced".into(),
            samples_ns: vec![],
        },
        Variant {
            name: "foliobench".into(),
            samples_ns: vec![],
        },
    ];
    if with_bpftrace {
        variants.push(Variant {
            name: "bpftrace".into(),
            samples_ns: vec![],
        });
    }
    variants
}

/// The whole cost of tracing a command that does nothing, `repeat` times each, interleaved:
/// `foliobench trace` of the same probes around /bin/true, and bpftrace's program with
/// `-c /bin/true` (bpftrace runs the command once every probe is attached). Wall time of
/// each tracer's process, from its start to its exit: loading, verifying, attaching,
/// detaching (and bpftrace's compiling) all in.
fn attach_times(
    traceable: &[Resolution],
    repeat: usize,
    bpftrace: Option<&[String]>,
    notes: &mut Vec<String>,
) -> Result<Vec<Variant>> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let mut ours = vec![exe, "trace".to_string()];
    for r in traceable {
        ours.extend(["--probe".to_string(), r.probe.clone()]);
    }
    ours.extend(["--".to_string(), "/bin/true".to_string()]);
    let theirs: Option<Vec<String>> = bpftrace.map(|p| {
        p.iter()
            .cloned()
            .chain(["-c".into(), "/bin/true".into()])
            .collect()
    });
    let mut out = vec![Variant {
        name: "foliobench trace".into(),
        samples_ns: vec![],
    }];
    if theirs.is_some() {
        out.push(Variant {
            name: "bpftrace".into(),
            samples_ns: vec![],
        });
    }
    for _ in 0..repeat {
        out[0].samples_ns.push(wall_time(&ours)?);
        if let Some(argv) = &theirs {
            match wall_time(argv) {
                Ok(ns) => out[1].samples_ns.push(ns),
                Err(e) => {
                    notes.push(format!("bpftrace attach run failed, dropped: {e:#}"));
                    out.truncate(1);
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// A process's wall time from spawn to exit, ns; an error if it failed.
fn wall_time(argv: &[String]) -> Result<u64> {
    let t = Instant::now();
    let res = Command::new(&argv[0])
        .args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let ns = t.elapsed().as_nanos() as u64;
    if !res.status.success() {
        let err = String::from_utf8_lossy(&res.stderr);
        return Err(env(format!(
            "`{}` failed ({}): {}",
            argv[0],
            res.status,
            err.lines().last().unwrap_or("")
        )));
    }
    Ok(ns)
}

/// One timed run with foliobench's probes attached system-wide, detached again after; its
/// wall time and the probe calls (entries, all probes) counted around it.
fn timed_under_probes(traceable: &[Resolution], command: &[String]) -> Result<(u64, u64)> {
    let mut storage = ProbeStorage::default();
    let tracer = Tracer::start(&mut storage, traceable, &Filter::All)?;
    if tracer.attached() == 0 {
        return Err(env(format!("no probe attached: {:?}", tracer.failed)));
    }
    let calls = |t: &Tracer| t.read().iter().map(|s| s.calls).sum::<u64>();
    let before = calls(&tracer);
    let ns = timed(&[], command)?;
    Ok((ns, calls(&tracer) - before))
}

#[cfg(test)]
mod tests {
    use super::*;
    use foliobench_ebpf::catalog::{Group, TargetKind};

    fn res(
        probe: &str,
        function: &str,
        flavour: Flavour,
        arg: Option<(usize, &str)>,
    ) -> Resolution {
        Resolution {
            probe: probe.into(),
            group: Group::Pin,
            kind: if flavour == Flavour::Tracepoint {
                TargetKind::Syscall
            } else {
                TargetKind::Function
            },
            function: Some(function.into()),
            flavour: Some(flavour),
            present: true,
            btf: true,
            arg_index: arg.map(|a| a.0),
            arg_name: arg.map(|a| a.1.to_string()),
            vma_index: None,
            reason: String::new(),
            count_only: false,
            stacks: false,
            stacks_every: 0,
        }
    }

    #[test]
    fn bpftrace_program_mirrors_mechanisms() {
        let (p, skipped) = bpftrace_program(&[
            res(
                "pin_user_pages_fast",
                "pin_user_pages_fast",
                Flavour::Fentry,
                Some((1, "nr_pages")),
            ),
            res("x", "x_fn", Flavour::Kprobe, Some((2, "nr_pages"))),
            res(
                "sys_io_uring_register",
                "syscalls:sys_enter_io_uring_register",
                Flavour::Tracepoint,
                None,
            ),
            res(
                "clone",
                "__init_zone_device_page.constprop.0",
                Flavour::Kprobe,
                None,
            ),
        ]);
        assert!(
            p.contains(
                "kfunc:pin_user_pages_fast { @start0[tid] = nsecs; @arg0 = hist(args->nr_pages); }"
            ),
            "{p}"
        );
        assert!(
            p.contains("kretfunc:pin_user_pages_fast /@start0[tid]/"),
            "{p}"
        );
        assert!(
            p.contains("kprobe:x_fn { @start1[tid] = nsecs; @arg1 = hist(arg2); }"),
            "{p}"
        );
        assert!(
            p.contains("tracepoint:syscalls:sys_enter_io_uring_register {"),
            "{p}"
        );
        assert!(
            p.contains("tracepoint:syscalls:sys_exit_io_uring_register /@start2[tid]/"),
            "{p}"
        );
        assert_eq!(skipped, vec!["clone".to_string()]);
    }
}
