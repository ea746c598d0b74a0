//! foliobench: struct page cost, memmap init, pinning and rmap batching, measured on a
//! live kernel. This crate parses arguments into plans and dispatches; the work is in the
//! others (workloads::suites runs the suites, reports renders their results).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

mod ab;
mod changelog;
mod compare;
mod debian_registry;
mod doctor;
mod exit;
mod guest;
mod kernels;
mod matrix;
mod model;
mod output;
mod overhead;
mod report;
mod run;
mod trace;
mod units;
mod vm;
mod workload;

#[derive(Parser)]
#[command(name = "foliobench", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// What this kernel and machine support, and what foliobench can measure here.
    Doctor(doctor::DoctorArgs),
    /// Boot a test VM (virtme-ng, emulated pmem) and run foliobench inside it.
    Vm(vm::VmArgs),
    /// Trace catalog probes (latency and argument histograms), system-wide or for a command.
    Trace(trace::TraceArgs),
    /// Run a measurement suite (memmap) in this kernel.
    Run(run::RunArgs),
    /// Compare two results files metric by metric; exit 1 if the candidate regressed.
    Compare(compare::CompareArgs),
    /// Results files as tables, an HTML report with charts, or Markdown.
    Report(report::ReportArgs),
    /// The CI gate: the same sweep in the test VM on two kernels, compared; exit 1 if the
    /// candidate regressed.
    Ab(Box<ab::AbArgs>),
    /// The same sweep on N kernels: every metric across them in release order, and what
    /// changed between consecutive kernels.
    Matrix(Box<matrix::MatrixArgs>),
    /// The kernels `vm --kernel debian:<version>` can boot: cached, and Debian's registry
    /// per suite.
    Kernels(kernels::KernelsArgs),
    /// Restore a namespace that a killed run left reconfigured.
    Restore,
    /// Struct page cost of every geometry for a size, from the model (capacity planning).
    Model(model::ModelArgs),
    /// Run one kernel workload by itself.
    #[command(subcommand)]
    Workload(workload::Workload),
    /// The probe effect: a command untraced, traced by foliobench, and under bpftrace.
    Overhead(overhead::OverheadArgs),
    /// Run a command and write its wall time (used by `overhead`).
    #[command(hide = true)]
    Timeit(overhead::TimeitArgs),
}

/// The whole command line as clap sees it (`vm` parses the guest's arguments with it).
pub fn cli_command() -> clap::Command {
    Cli::command()
}

fn main() -> ExitCode {
    // A re-executed copy of this binary that runs one rmap round (the suite forks from a
    // small process, not from the whole tool).
    if let Some(code) = foliobench_workloads::rmap_round::serve_if_asked() {
        return ExitCode::from(code as u8);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // Under `git bisect run`, a command line clap refuses (exit 2) would mark every
        // commit bad: stop the bisection instead.
        Err(e) if e.use_stderr() && std::env::args().any(|a| a == "--bisect") => {
            let _ = e.print();
            return ExitCode::from(exit::Code::BisectAbort as u8);
        }
        Err(e) => e.exit(),
    };
    if matches!(
        cli.cmd,
        Cmd::Report(_) | Cmd::Compare(_) | Cmd::Model(_) | Cmd::Kernels(_)
    ) {
        // Commands that only read files and print end quietly when their reader goes away
        // (`| head`), as Unix tools do; the ones that change the kernel keep Rust's
        // default (EPIPE is an error) so that they always restore what they changed.
        // SAFETY: no other thread exists yet; SIG_DFL is a valid disposition.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let result = match cli.cmd {
        Cmd::Doctor(a) => doctor::run(a),
        Cmd::Vm(a) => guest::check(&cli_command(), &a.args).and_then(|g| vm::run(a, g)),
        Cmd::Trace(a) => trace::run(a),
        Cmd::Workload(w) => workload::run(w),
        Cmd::Model(a) => model::run(a),
        Cmd::Run(a) => run::run(a),
        Cmd::Compare(a) => compare::run(a),
        Cmd::Report(a) => report::run(a),
        Cmd::Ab(a) => ab::run(*a),
        Cmd::Kernels(a) => kernels::run(a),
        Cmd::Matrix(a) => matrix::run(*a),
        Cmd::Restore => run::restore(),
        Cmd::Overhead(a) => overhead::run(a),
        Cmd::Timeit(a) => overhead::timeit(a),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("foliobench: error: {e:#}");
            ExitCode::from(exit::code_of(&e) as u8)
        }
    }
}
