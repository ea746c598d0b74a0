//! `foliobench ab --baseline K1 --candidate K2`: the CI gate in one command. The same sweep
//! runs in the test VM on each kernel, the results are compared, the report is written,
//! and the exit code is the comparison's (0 no regression, 1 regression).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::compare::{load, shares_metrics, verdict, Format, GateArgs};
use crate::exit::{env, usage, Code};
use crate::output::write_atomic;
use crate::run::SweepArgs;
use crate::vm::{VmArgs, VmOpts};

#[derive(Debug, clap::Args)]
pub struct AbArgs {
    /// The kernel without the change: debian:6.1, debian:6.12, a bzImage or a build tree.
    #[arg(long)]
    pub baseline: String,
    /// The kernel with the change.
    #[arg(long)]
    pub candidate: String,
    /// Kernel command-line options for the baseline's boots only (repeatable).
    #[arg(long, value_name = "OPTIONS")]
    pub baseline_append: Vec<String>,
    /// Kernel command-line options for the candidate's boots only (repeatable): gates a
    /// boot-option change, or plants a known regression.
    #[arg(long, value_name = "OPTIONS")]
    pub candidate_append: Vec<String>,
    /// What to run on both kernels, as `run`'s options.
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Where baseline.json, candidate.json, compare.<format> and report.html go.
    #[arg(long, default_value = "results/ab", value_name = "DIR")]
    pub out_dir: PathBuf,
    /// The test VM of each run, as `vm`'s options.
    #[command(flatten)]
    pub machine: VmOpts,
    /// The time limit of each run.
    #[arg(long, default_value = "60m")]
    pub timeout: String,
    #[command(flatten)]
    pub gate: GateArgs,
}

fn extension(f: Format) -> &'static str {
    match f {
        Format::Text => "txt",
        Format::Markdown => "md",
        Format::Ktap => "ktap",
        Format::Junit => "xml",
        Format::Json => "json",
        Format::Kcidb => "kcidb.json",
    }
}

/// The arguments of `foliobench run` inside the guest, writing `out`.
fn run_args(sweep: &SweepArgs, out: &Path) -> Vec<String> {
    let mut v = vec!["run".to_string()];
    v.extend(sweep.to_args());
    v.extend(["--out".into(), out.display().to_string()]);
    v
}

/// Runs `f` with file descriptor 1 pointing at stderr (children inherit it), then puts
/// stdout back.
fn with_stdout_on_stderr<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    use std::io::Write as _;
    use std::os::fd::{AsFd as _, AsRawFd as _};
    std::io::stdout().flush()?;
    let saved = std::io::stdout().as_fd().try_clone_to_owned()?;
    let dup2 = |from: i32| -> Result<()> {
        // SAFETY: `from` is open (stderr, or the saved stdout owned above) and 1 is stdout.
        if unsafe { libc::dup2(from, libc::STDOUT_FILENO) } < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    };
    dup2(libc::STDERR_FILENO)?;
    let r = f();
    std::io::stdout().flush()?;
    dup2(saved.as_raw_fd())?;
    r
}

/// One side's sweep in the test VM; returns its results file.
fn run_side(
    a: &AbArgs,
    dir: &Path,
    side: &str,
    kernel: &str,
    append: &[String],
) -> Result<PathBuf> {
    let out = dir.join(format!("{side}.json"));
    // A file from an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(&out);
    eprintln!(
        "foliobench ab: {side} {kernel}{}: run --suite {}",
        if append.is_empty() {
            String::new()
        } else {
            format!(" (appended: {})", append.join(" "))
        },
        a.sweep.suite.join(",")
    );
    let mut machine = a.machine.clone();
    machine.append.extend(append.iter().cloned());
    // The guest's tables go to stderr: stdout carries only the comparison, so that
    // `ab --format ktap | ...` is KTAP and nothing else.
    let code = with_stdout_on_stderr(|| {
        crate::vm::run(VmArgs {
            kernel: kernel.to_string(),
            machine,
            timeout: a.timeout.clone(),
            share: vec![dir.to_path_buf()],
            boot_log: false,
            dry_run: false,
            args: run_args(&a.sweep, &out),
        })
    })?;
    if code != Code::Ok {
        let why = format!(
            "the {side} run on {kernel} ended with exit {} (see its output above); nothing compared",
            code as u8
        );
        return Err(if code == Code::Usage {
            usage(why)
        } else {
            env(why)
        });
    }
    if !out.exists() {
        return Err(env(format!(
            "the {side} run on {kernel} wrote no {}",
            out.display()
        )));
    }
    Ok(out)
}

pub fn run(mut a: AbArgs) -> Result<Code> {
    a.gate.check()?;
    // ab's defaults: memmap and rmap at 256M (pin on request: its 1 GiB rounds on every
    // geometry take most of an hour per kernel under TCG).
    if a.sweep.suite.is_empty() {
        a.sweep.suite = vec!["memmap".into(), "rmap".into()];
    }
    a.sweep.size.get_or_insert_with(|| "256M".into());
    // What can be checked here is checked before the first VM boots: a typo should not
    // cost a boot.
    a.sweep.check()?;
    for k in [&a.baseline, &a.candidate] {
        crate::boot_kernel::KernelSpec::parse(k)?;
    }
    std::fs::create_dir_all(&a.out_dir).map_err(|e| {
        usage(format!(
            "cannot create --out-dir {}: {e}",
            a.out_dir.display()
        ))
    })?;
    let dir = a.out_dir.canonicalize()?;
    let mut files = Vec::new();
    for (side, kernel, append) in [
        ("baseline", &a.baseline, &a.baseline_append),
        ("candidate", &a.candidate, &a.candidate_append),
    ] {
        files.push(run_side(&a, &dir, side, kernel, append)?);
    }
    let (b, c) = (load(&files[0])?, load(&files[1])?);
    let cmp = a.gate.compare(
        (&files[0].display().to_string(), &b),
        (&files[1].display().to_string(), &c),
    );
    shares_metrics(&cmp, &b, &c)?;
    let text = a.gate.render(&cmp)?;
    let cmp_file = dir.join(format!("compare.{}", extension(a.gate.format)));
    write_atomic(&cmp_file, text.as_bytes())?;
    let runs = vec![
        (files[0].display().to_string(), b),
        (files[1].display().to_string(), c),
    ];
    let html = dir.join("report.html");
    crate::report::write(
        &runs,
        std::slice::from_ref(&cmp),
        Some(&html),
        Some(&dir.join("report.md")),
    )?;
    print!("{text}");
    eprintln!(
        "foliobench ab: {} regressions, {} lost, {} improvements; {} and {} written",
        cmp.regressions(),
        cmp.lost_metrics() + cmp.lost.len(),
        cmp.improvements(),
        cmp_file.display(),
        html.display()
    );
    Ok(verdict(&cmp))
}
