//! `foliobench matrix --kernel K1 --kernel K2 ...`: the same sweep in the test VM on each
//! kernel, then every metric across the kernels in release order, a chart per metric group,
//! and what changed between consecutive kernels (each step judged as `compare` judges).

use std::path::PathBuf;

use anyhow::Result;
use foliobench_reports::matrix::{release_key, Matrix};

use crate::ab::{before_booting, run_side, SweepInVm};
use crate::compare::{load_all, GateArgs};
use crate::exit::{usage, Code};
use crate::output::write_atomic;
use crate::run::SweepArgs;
use crate::vm::VmOpts;

#[derive(Debug, clap::Args)]
pub struct MatrixArgs {
    /// A kernel of the matrix (repeat: --kernel debian:6.1 --kernel debian:6.12 ...);
    /// each is booted once, and reported in release order.
    #[arg(long = "kernel", required_unless_present = "results", value_name = "K")]
    pub kernels: Vec<String>,
    /// Build the matrix from results files already written (e.g. by earlier matrix or
    /// `vm -- run` runs, one kernel each), comma-separated, instead of booting.
    #[arg(
        long = "results",
        value_delimiter = ',',
        value_name = "FILE",
        conflicts_with = "kernels"
    )]
    pub results: Vec<PathBuf>,
    /// What to run on every kernel, as `run`'s options.
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Where <n>.json per kernel, matrix.txt and matrix.html go.
    #[arg(long, default_value = "results/matrix", value_name = "DIR")]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub machine: VmOpts,
    /// The time limit of each run.
    #[arg(long, default_value = "60m")]
    pub timeout: String,
    #[command(flatten)]
    pub gate: GateArgs,
}

pub fn run(mut a: MatrixArgs) -> Result<Code> {
    a.gate.check()?;
    if a.kernels.len() + a.results.len() < 2 {
        return Err(usage(
            "a matrix needs at least two kernels: --kernel K1 --kernel K2 ... (or --results F1,F2)",
        ));
    }
    let (dir, files) = if a.results.is_empty() {
        booted(&mut a)?
    } else {
        std::fs::create_dir_all(&a.out_dir)
            .map_err(|e| usage(format!("cannot make {}: {e}", a.out_dir.display())))?;
        (a.out_dir.clone(), a.results.clone())
    };
    let mut runs = load_all(&files)?;
    runs.sort_by_key(|(_, r)| release_key(&r.context.kernel_release));
    let steps = runs
        .windows(2)
        .map(|w| {
            a.gate
                .compare_boots(&[(&w[0].0, &w[0].1)], &[(&w[1].0, &w[1].1)])
        })
        .collect();
    let mut m = Matrix::new(&runs.iter().map(|(_, r)| r).collect::<Vec<_>>(), steps);
    // Where a count or a check changed, what Debian's changelog says about its suites.
    m.changelogs = runs
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let suites = m.suites_changed(i);
            (!suites.is_empty()).then(|| crate::changelog::for_step(&w[0].1, &w[1].1, &suites))
        })
        .collect();
    let text = m.render_text();
    write_atomic(&dir.join("matrix.txt"), text.as_bytes())?;
    let page = m
        .html()
        .map_err(|e| crate::exit::env(format!("drawing a chart: {e}")))?;
    write_atomic(&dir.join("matrix.html"), page.as_bytes())?;
    print!("{text}");
    eprintln!(
        "foliobench matrix: {} kernels; {} and {} written",
        runs.len(),
        dir.join("matrix.txt").display(),
        dir.join("matrix.html").display()
    );
    Ok(Code::Ok)
}

/// One sweep per kernel in the test VM: the output directory and the results files.
fn booted(a: &mut MatrixArgs) -> Result<(PathBuf, Vec<PathBuf>)> {
    let kernels: Vec<&String> = a.kernels.iter().collect();
    let dir = before_booting(&mut a.sweep, &kernels, &a.out_dir)?;
    let vm = SweepInVm {
        sweep: &a.sweep,
        machine: &a.machine,
        timeout: &a.timeout,
        dir: &dir,
        clock: Default::default(),
    };
    let mut files = Vec::new();
    for (i, k) in a.kernels.iter().enumerate() {
        let out = dir.join(format!("{}.json", i + 1));
        let label = format!("matrix: kernel {} of {}", i + 1, a.kernels.len());
        files.push(run_side(&vm, &out, &label, k, &[])?);
    }
    Ok((dir, files))
}
