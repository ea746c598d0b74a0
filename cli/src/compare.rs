//! `foliobench compare BASE CAND`: every metric of two results files side by side, with a
//! significance test on the raw samples; the exit code is the CI verdict.

use std::path::{Path, PathBuf};

use anyhow::Result;
use foliobench_reports::compare::{
    compare_boots, default_threshold_pct, Comparison, Correction, Row,
};
use foliobench_reports::results::{self, Results};
use foliobench_reports::seed003;

use crate::exit::{usage, Code};
use crate::output::write_atomic;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Ktap,
    Junit,
    Json,
    /// KCIDB I/O JSON (schema v5.3) for KernelCI's database.
    Kcidb,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline results file (e.g. the unpatched kernel's); several boots' files
    /// separated by commas (`baseline-1.json,baseline-2.json,...`, as `ab --boots` writes).
    pub base: String,
    /// The candidate results file (e.g. the patched kernel's), or several, comma-separated.
    pub candidate: String,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Also write the output to this file (written whole or not at all).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// How a comparison is judged and printed; shared with `ab`.
#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    /// A significant change counts only past this many percent (default: 1 when every
    /// run's timings are instruction time, else 5; a metric's baseline spread between
    /// boots raises it).
    #[arg(long, value_name = "PCT")]
    pub threshold: Option<f64>,
    /// Significance level of the Mann-Whitney U test on timing samples.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// How the timing p-values are adjusted for the number of metrics compared: bh
    /// (Benjamini-Hochberg, false discovery rate), holm (family-wise error) or none.
    #[arg(long, value_enum, default_value_t = CorrectionArg::Bh)]
    pub correction: CorrectionArg,
    /// Report what the candidate lost (a metric, outcome or check the baseline had) without
    /// failing the gate for it.
    #[arg(long)]
    pub allow_missing: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CorrectionArg {
    Bh,
    Holm,
    None,
}

impl GateArgs {
    pub fn check(&self) -> Result<()> {
        check_significance(self.threshold.unwrap_or(0.0), self.alpha)
    }

    /// Several boots a side compared under these gate settings.
    pub fn compare_boots(&self, b: &[(&str, &Results)], c: &[(&str, &Results)]) -> Comparison {
        let correction = match self.correction {
            CorrectionArg::Bh => Correction::Bh,
            CorrectionArg::Holm => Correction::Holm,
            CorrectionArg::None => Correction::None,
        };
        let files: Vec<&Results> = b.iter().chain(c).map(|(_, r)| *r).collect();
        let threshold = self
            .threshold
            .unwrap_or_else(|| default_threshold_pct(&files));
        let mut cmp = compare_boots(b, c, threshold, self.alpha, correction);
        cmp.allow_missing = self.allow_missing;
        cmp
    }

    pub fn render(&self, c: &Comparison) -> Result<String> {
        Ok(match self.format {
            // Seed 003's table follows where the comparison has its rmap rows.
            Format::Text => c.render_text() + &seed003::render(c).unwrap_or_default(),
            Format::Markdown => {
                c.render_markdown()
                    + &seed003::render(c)
                        .map(|t| format!("\n```\n{}```\n", t.trim_start()))
                        .unwrap_or_default()
            }
            Format::Ktap => c.render_ktap(),
            Format::Junit => c.render_junit(),
            Format::Json => serde_json::to_string_pretty(c)? + "\n",
            Format::Kcidb => foliobench_reports::kcidb::render(c),
        })
    }
}

/// Refuses a threshold that is not a percentage or an alpha that is not a level.
pub fn check_significance(threshold: f64, alpha: f64) -> Result<()> {
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(usage(format!(
            "--threshold {threshold} is not a percentage: give a number >= 0, e.g. --threshold 5"
        )));
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(usage(format!(
            "--alpha {alpha} is not a significance level: give a number between 0 and 1, e.g. --alpha 0.05"
        )));
    }
    Ok(())
}

/// Reads a results file; anything wrong with it is the user's to fix (exit 2), named with
/// the file.
pub fn load(path: &Path) -> Result<Results> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read results file {}: {e}", path.display())))?;
    results::parse(&text).map_err(|e| usage(format!("{}: {e}", path.display())))
}

fn suites(r: &Results) -> String {
    if r.suites.is_empty() {
        "none".into()
    } else {
        r.suites.join(",")
    }
}

/// Two files with no metric in common are a mismatch (different suites or geometries), not
/// a pass.
pub fn shares_metrics(cmp: &Comparison, b: &Results, c: &Results) -> Result<()> {
    if cmp.rows.iter().any(Row::in_both) {
        return Ok(());
    }
    Err(usage(format!(
        "{} and {} have no metric in common (base suites: {}; candidate suites: {}): compare runs of the same suites and geometries",
        cmp.base.file,
        cmp.candidate.file,
        suites(b),
        suites(c),
    )))
}

/// The comparison's exit code: 1 if any metric regressed, or the candidate lost what the
/// baseline measured (unless allowed); the reasons go to stderr.
pub fn verdict(c: &Comparison) -> Code {
    let failures = c.failures();
    for f in &failures {
        eprintln!("foliobench: gate: {f}");
    }
    if !failures.is_empty() {
        Code::Regression
    } else {
        Code::Ok
    }
}

/// Results files as `compare_boots` takes them.
pub fn named(v: &[(String, Results)]) -> Vec<(&str, &Results)> {
    v.iter().map(|(f, r)| (f.as_str(), r)).collect()
}

/// Results files, each with its name as given.
pub fn load_all<P: AsRef<Path>>(files: &[P]) -> Result<Vec<(String, Results)>> {
    files
        .iter()
        .map(|f| Ok((f.as_ref().display().to_string(), load(f.as_ref())?)))
        .collect()
}

/// The files of one side: one path, or several boots' separated by commas.
fn load_side(list: &str) -> Result<Vec<(String, Results)>> {
    load_all(&list.split(',').collect::<Vec<_>>())
}

pub fn run(a: CompareArgs) -> Result<Code> {
    a.gate.check()?;
    let (bases, cands) = (load_side(&a.base)?, load_side(&a.candidate)?);
    let cmp = a.gate.compare_boots(&named(&bases), &named(&cands));
    shares_metrics(&cmp, &bases[0].1, &cands[0].1)?;
    let out = a.gate.render(&cmp)?;
    if let Some(p) = &a.out {
        write_atomic(p, out.as_bytes())?;
    }
    print!("{out}");
    Ok(verdict(&cmp))
}
