//! `foliobench ab --baseline K1 --candidate K2`: the CI gate in one command. The same sweep
//! runs in the test VM on each kernel, the results are compared, the report is written,
//! and the exit code is the comparison's (0 no regression, 1 regression).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::compare::{load_all, named, shares_metrics, verdict, Format, GateArgs};
use crate::exit::{env, usage, Code};
use crate::output::write_atomic;
use crate::run::SweepArgs;
use crate::vm::{ClockChoice, Guest, VmArgs, VmOpts};
use foliobench_reports::clock::ClockKind;
use foliobench_reports::compare::Comparison;
use foliobench_reports::results::Results;
use foliobench_reports::suite::Suite;

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
    /// Boots of each kernel, interleaved (baseline, candidate, baseline, ...): the boot is
    /// the unit of the time test, and the baseline's spread between boots the smallest
    /// change that counts. 3 is the fewest that estimates that spread with Welch's t on
    /// both sides; 1 judges the rounds of a single boot (no between-boot noise seen).
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub boots: usize,
    /// With several boots: when a timing is judged changed, boot each kernel N more times
    /// (interleaved) and judge again on all boots; only that verdict counts. A whole boot
    /// of an emulated VM can land in a fast or a slow mode on the wall clock, and three
    /// boots a side split by mode alone once in about thirty times. Under the instruction
    /// clock only the timings that do not repeat between boots are confirmed (the whole
    /// ndctl commands, the io_uring unpin of 4K pages). 0: believe the first verdict.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub confirm_boots: usize,
    /// Exit codes for `git bisect run`: 0 good, 1 bad (a regression or a loss), 125 when
    /// this kernel cannot be tested (it does not build, boot or run), 128 to stop the
    /// bisection (foliobench's own command line or files are wrong).
    #[arg(long)]
    pub bisect: bool,
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

/// What `ab` and `matrix` settle before the first boot, so that a typo costs no boot: the
/// default sweep (memmap and rmap at 256M; pin on request, its 1 GiB rounds on every
/// geometry take most of an hour per kernel under TCG), the sweep's and kernels' validity,
/// and the output directory (made; returned canonical).
pub fn before_booting(
    sweep: &mut SweepArgs,
    kernels: &[&String],
    out_dir: &Path,
) -> Result<PathBuf> {
    if sweep.suite.is_empty() {
        sweep.suite = vec![Suite::Memmap.name().into(), Suite::Rmap.name().into()];
    }
    sweep.size.get_or_insert_with(|| "256M".into());
    sweep.check()?;
    if sweep.sizes().len() > 1 {
        return Err(usage(
            "--size takes one size here (a gate compares like with like); for a cost curve, `run --size` with a list",
        ));
    }
    for k in kernels {
        crate::vm::boot_kernel::KernelSpec::parse(k)?;
    }
    std::fs::create_dir_all(out_dir).map_err(|e| {
        usage(format!(
            "cannot create --out-dir {}: {e}",
            out_dir.display()
        ))
    })?;
    Ok(out_dir.canonicalize()?)
}

/// What every VM run of `ab` and `matrix` shares: the sweep, the VM, its time limit and
/// the directory the results go to.
pub struct SweepInVm<'a> {
    pub sweep: &'a SweepArgs,
    pub machine: &'a VmOpts,
    pub timeout: &'a str,
    pub dir: &'a Path,
    /// The clock the first run ran on, which every later run takes: a kernel that does not
    /// start under the instruction clock (Debian 6.1) puts the whole comparison on the
    /// wall clock, rather than leaving its timings unjudged between clocks.
    pub clock: std::cell::Cell<Option<ClockChoice>>,
}

/// One sweep in the test VM on `kernel`, writing `out` (a file of `dir`); `label` names the
/// run in messages.
pub fn run_side(
    s: &SweepInVm,
    out: &Path,
    label: &str,
    kernel: &str,
    append: &[String],
) -> Result<PathBuf> {
    // A file from an earlier run must not pass for this one's.
    let _ = std::fs::remove_file(out);
    eprintln!(
        "foliobench: {label} {kernel}{}: run --suite {}",
        if append.is_empty() {
            String::new()
        } else {
            format!(" (appended: {})", append.join(" "))
        },
        s.sweep.suite.join(",")
    );
    let mut machine = s.machine.clone();
    machine.append.extend(append.iter().cloned());
    if let Some(c) = s.clock.get() {
        machine.clock = c;
    }
    // The guest's tables go to stderr: stdout carries only the comparison, so that
    // `ab --format ktap | ...` is KTAP and nothing else.
    let boot = || {
        with_stdout_on_stderr(|| {
            crate::vm::run(
                VmArgs {
                    kernel: kernel.to_string(),
                    machine: machine.clone(),
                    timeout: s.timeout.to_string(),
                    share: vec![s.dir.to_path_buf()],
                    boot_log: false,
                    expect: None,
                    dry_run: false,
                    args: run_args(s.sweep, out),
                },
                // ab wrote this command from its typed sweep; its one output is in `dir`,
                // which is shared.
                Guest::Writes(vec![]),
            )
        })
    };
    // A VM that died mid-run (seen once in about thirty instruction-clock boots) is booted
    // once more: the run is ab's own and writes a fresh file.
    let code = match boot() {
        Err(e) if e.downcast_ref::<crate::vm::VmDied>().is_some() => {
            eprintln!(
                "foliobench: {label} {kernel}: the VM died during the run, booting it once more: {}",
                e.to_string().lines().next().unwrap_or_default()
            );
            let _ = std::fs::remove_file(out);
            boot()?
        }
        other => other?,
    };
    if code != Code::Ok {
        let why = format!(
            "the run {label} on {kernel} ended with exit {} (see its output above); nothing compared",
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
            "the run {label} on {kernel} wrote no {}",
            out.display()
        )));
    }
    if s.clock.get().is_none() {
        let ran = crate::compare::load(out)?.clock();
        eprintln!(
            "foliobench: every run of this comparison takes the clock the first ran on: {}",
            ran.describe()
        );
        s.clock.set(Some(match ran {
            ClockKind::Wall => ClockChoice::Wall,
            ClockKind::Instructions => ClockChoice::Instructions,
        }));
    }
    Ok(out.to_path_buf())
}

/// `ab`, with `--bisect`'s exit codes where asked.
pub fn run(a: AbArgs) -> Result<Code> {
    if !a.bisect {
        return gate(a);
    }
    // The commit under test is the candidate: one that did not build (no bzImage in the
    // tree) is skipped, not judged.
    if let Err(e) = crate::vm::boot_kernel::KernelSpec::parse(&a.candidate) {
        eprintln!("foliobench: error: {e:#}");
        eprintln!("foliobench ab --bisect: no kernel to test: exit 125 (git bisect skips it)");
        return Ok(Code::BisectSkip);
    }
    Ok(match gate(a) {
        Ok(Code::Ok) => Code::Ok,
        Ok(Code::Regression) => Code::Regression,
        Ok(other) => {
            eprintln!(
                "foliobench ab --bisect: exit {} -> 125 (cannot test this kernel)",
                other as u8
            );
            Code::BisectSkip
        }
        Err(e) => {
            eprintln!("foliobench: error: {e:#}");
            if crate::exit::code_of(&e) == Code::Usage {
                eprintln!("foliobench ab --bisect: foliobench's own input is wrong: stopping the bisection (exit 128)");
                Code::BisectAbort
            } else {
                eprintln!("foliobench ab --bisect: this kernel cannot be tested: exit 125 (git bisect skips it)");
                Code::BisectSkip
            }
        }
    })
}

/// Whether the first boots' verdict needs `confirm` more boots a side, and says so: a
/// timing judged changed that one boot in a fast or slow mode could change. Says too which
/// changes are believed as they are (under the instruction clock, those of timings that
/// repeat between boots).
fn confirms(cmp: &Comparison, boots: usize, confirm: usize) -> bool {
    if confirm == 0 {
        return false;
    }
    let to_confirm = cmp.timing_changes_to_confirm();
    let believed: Vec<&str> = cmp
        .timing_changes_across_boots()
        .into_iter()
        .map(|r| r.key.as_str())
        .filter(|k| !to_confirm.contains(k))
        .collect();
    if !believed.is_empty() {
        eprintln!(
            "foliobench ab: {} timing(s) changed on {boots}+{boots} boots ({}); instruction time repeats between boots, so no more boots confirm them",
            believed.len(),
            believed.join(", ")
        );
    }
    if !to_confirm.is_empty() {
        eprintln!(
            "foliobench ab: {} timing(s) changed on {boots}+{boots} boots ({}); confirming with {confirm} more boots of each kernel, judged on all",
            to_confirm.len(),
            to_confirm.join(", "),
        );
    }
    !to_confirm.is_empty()
}

/// What a boot is called in the progress lines.
fn boot_label(side: &str, boot: usize, boots: usize, confirm: usize) -> String {
    if boots == 1 {
        format!("ab: {side}")
    } else if boot > boots {
        format!(
            "ab: {side} (boot {boot} of {}, confirming)",
            boots + confirm
        )
    } else {
        format!("ab: {side} (boot {boot} of {boots})")
    }
}

/// Writes the gate's comparison, its report of `runs` and the one-line summary.
fn write_gate(
    gate: &GateArgs,
    dir: &Path,
    cmp: &Comparison,
    runs: Vec<(String, Results)>,
) -> Result<()> {
    let text = gate.render(cmp)?;
    let cmp_file = dir.join(format!("compare.{}", extension(gate.format)));
    write_atomic(&cmp_file, text.as_bytes())?;
    let html = dir.join("report.html");
    crate::report::write(
        &runs,
        std::slice::from_ref(cmp),
        Some(&html),
        Some(&dir.join("report.md")),
    )?;
    print!("{text}");
    if let [(_, base), (_, cand)] = runs.as_slice() {
        if base.context.kernel_release != cand.context.kernel_release {
            eprint!("{}", crate::changelog::behind_counts(cmp, base, cand));
        }
    }
    eprintln!(
        "foliobench ab: {} regressions, {} lost, {} improvements; {} and {} written",
        cmp.regressions(),
        cmp.lost_metrics() + cmp.lost.len(),
        cmp.improvements(),
        cmp_file.display(),
        html.display()
    );
    Ok(())
}

fn gate(mut a: AbArgs) -> Result<Code> {
    a.gate.check()?;
    if a.boots == 0 {
        return Err(usage("--boots 0: give at least 1 (3 by default)"));
    }
    // ab's defaults: memmap and rmap at 256M (pin on request: its 1 GiB rounds on every
    // geometry take most of an hour per kernel under TCG).
    let dir = before_booting(&mut a.sweep, &[&a.baseline, &a.candidate], &a.out_dir)?;
    // Interleaved, so that drift of the host (load, thermal, caches) falls on both sides.
    let (mut base_files, mut cand_files) = (Vec::new(), Vec::new());
    let vm = SweepInVm {
        sweep: &a.sweep,
        machine: &a.machine,
        timeout: &a.timeout,
        dir: &dir,
        clock: Default::default(),
    };
    // One boot a side: baseline.json; several: baseline-1.json, ...
    let file = |side: &str, boot: usize| match a.boots {
        1 => dir.join(format!("{side}.json")),
        _ => dir.join(format!("{side}-{boot}.json")),
    };
    let label = |side: &str, boot: usize| boot_label(side, boot, a.boots, a.confirm_boots);
    let boot_both = |boots: std::ops::RangeInclusive<usize>,
                     base_files: &mut Vec<PathBuf>,
                     cand_files: &mut Vec<PathBuf>|
     -> Result<()> {
        for boot in boots {
            for (side, kernel, append, files) in [
                (
                    "baseline",
                    &a.baseline,
                    &a.baseline_append,
                    &mut *base_files,
                ),
                (
                    "candidate",
                    &a.candidate,
                    &a.candidate_append,
                    &mut *cand_files,
                ),
            ] {
                files.push(run_side(
                    &vm,
                    &file(side, boot),
                    &label(side, boot),
                    kernel,
                    append,
                )?);
            }
        }
        Ok(())
    };
    boot_both(1..=a.boots, &mut base_files, &mut cand_files)?;
    let judge = |base_files: &[PathBuf], cand_files: &[PathBuf]| -> Result<_> {
        let (bases, cands) = (load_all(base_files)?, load_all(cand_files)?);
        let cmp = a.gate.compare_boots(&named(&bases), &named(&cands));
        Ok((bases, cands, cmp))
    };
    let (mut bases, mut cands, mut cmp) = judge(&base_files, &cand_files)?;
    if confirms(&cmp, a.boots, a.confirm_boots) {
        boot_both(
            a.boots + 1..=a.boots + a.confirm_boots,
            &mut base_files,
            &mut cand_files,
        )?;
        (bases, cands, cmp) = judge(&base_files, &cand_files)?;
    }
    shares_metrics(&cmp, &bases[0].1, &cands[0].1)?;
    // The report shows the first boot of each side.
    write_gate(
        &a.gate,
        &dir,
        &cmp,
        vec![bases[0].clone(), cands[0].clone()],
    )?;
    Ok(verdict(&cmp))
}
