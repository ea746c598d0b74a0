//! `foliobench report RESULTS...`: the results files as terminal tables, and optionally as
//! one HTML file with charts and a Markdown file. A file after the first that is another run
//! of the first's sweep (the same suites, the same sizes) is also compared against it;
//! files of other suites are reported beside it, never compared.

use std::path::PathBuf;

use anyhow::Result;
use foliobench_reports::compare::{compare, default_threshold_pct, Comparison, Correction, Row};
use foliobench_reports::render::text_table::{fit, TERMINAL};
use foliobench_reports::report::{html, markdown, Named};
use foliobench_reports::results::Results;
use foliobench_reports::scaling;

use crate::compare::load;
use crate::exit::{env, Code};
use crate::output::write_atomic;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Results files (`foliobench run --out`); the first is the base of the comparisons
    /// (of the files that are another run of its sweep).
    #[arg(required = true, value_name = "RESULTS")]
    pub results: Vec<PathBuf>,
    /// Write a self-contained HTML report (tables and SVG charts) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the tables as Markdown to this file.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Comparisons: a significant change counts only past this many percent (default: 1
    /// when both runs' timings are instruction time, else 5).
    #[arg(long, value_name = "PCT")]
    pub threshold: Option<f64>,
    /// Comparisons: significance level of the Mann-Whitney U test.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
}

/// Writes the HTML and Markdown reports of loaded results; used by `ab` as well.
pub fn write(
    runs: &[(String, Results)],
    comparisons: &[Comparison],
    html_out: Option<&PathBuf>,
    md_out: Option<&PathBuf>,
) -> Result<()> {
    let named: Vec<Named> = runs
        .iter()
        .map(|(f, r)| Named {
            file: f.clone(),
            results: r,
        })
        .collect();
    if let Some(p) = html_out {
        let page = html(&named, comparisons).map_err(|e| env(format!("drawing a chart: {e}")))?;
        write_atomic(p, page.as_bytes())?;
        eprintln!("foliobench: HTML report written to {}", p.display());
    }
    if let Some(p) = md_out {
        write_atomic(p, markdown(&named, comparisons).as_bytes())?;
        eprintln!("foliobench: Markdown report written to {}", p.display());
    }
    Ok(())
}

/// Two runs of one sweep: the same suites at the same sizes (files of other sizes are
/// points of a curve; files of other suites are parts of one run, or unrelated).
fn same_sweep(a: &Results, b: &Results) -> bool {
    let mut sa = a.suites.clone();
    let mut sb = b.suites.clone();
    sa.sort();
    sb.sort();
    sa == sb && scaling::same_sizes(a, b)
}

pub fn run(a: ReportArgs) -> Result<Code> {
    crate::compare::check_significance(a.threshold.unwrap_or(0.0), a.alpha)?;
    let mut runs = Vec::new();
    for p in &a.results {
        runs.push((p.display().to_string(), load(p)?));
    }
    // `report` reports; a comparison is made only of files that are two runs of one sweep
    // (the same suites, at the same sizes). The main job's run.json, fsdax.json and
    // rmap.json are one run's parts: compared, they gave hundreds of "lost" rows.
    let base = &runs[0];
    let comparisons: Vec<Comparison> = runs[1..]
        .iter()
        .filter(|(f, r)| {
            let same = same_sweep(&base.1, r);
            if !same {
                eprintln!(
                    "foliobench report: {f} ({}) is not another run of {}'s sweep ({}): reported beside it, not compared",
                    r.suites.join(", "),
                    base.0,
                    base.1.suites.join(", ")
                );
            }
            same
        })
        .map(|(f, r)| {
            compare(
                (&base.0, &base.1),
                (f, r),
                a.threshold
                    .unwrap_or_else(|| default_threshold_pct(&[&base.1, r])),
                a.alpha,
                Correction::Bh,
            )
        })
        .filter(|c| c.rows.iter().any(Row::in_both))
        .collect();
    // The first screens first, then the details.
    for (_, r) in &runs {
        println!("{}", foliobench_reports::render::report::summary_text(r));
    }
    for (_, r) in &runs {
        println!("{}", fit(&r.render_text(), TERMINAL));
    }
    let all: Vec<&Results> = runs.iter().map(|(_, r)| r).collect();
    print!("{}", scaling::render_text(&scaling::curves(&all)));
    for c in &comparisons {
        println!("{}", c.render_text());
    }
    write(&runs, &comparisons, a.html.as_ref(), a.markdown.as_ref())?;
    Ok(Code::Ok)
}
