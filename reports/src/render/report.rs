//! `foliobench report`: results files as one self-contained HTML page (tables and SVG charts)
//! or as Markdown. With several files, each after the first is also compared against it.

use std::fmt::Write as _;

use crate::chart::Chart;
use crate::compare::{Comparison, Verdict};
use crate::results::Results;

/// One results file and the name it is shown under.
pub struct Named<'a> {
    pub file: String,
    pub results: &'a Results,
}

/// Every chart a results file has data for, in the order of the suites.
pub fn charts(r: &Results) -> Vec<Chart> {
    let mut out: Vec<Chart> = r.parts().flat_map(|p| p.charts()).collect();
    out.retain(|c| !c.is_empty());
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn title(n: &Named) -> String {
    format!(
        "{} — {} ({:?} CPU), {}",
        n.file,
        n.results.context.kernel_release,
        n.results.context.cpu,
        n.results.suites.join(", ")
    )
}

fn comparison_table(o: &mut String, c: &Comparison) {
    let _ = writeln!(
        o,
        "<table><tr><th>metric</th><th>unit</th><th>better</th><th>base</th><th>candidate</th><th>change</th><th>verdict</th><th>why</th></tr>"
    );
    for r in &c.rows {
        let class = match r.verdict {
            Verdict::Regression => "worse",
            Verdict::Improvement => "better",
            _ => "",
        };
        let side = |s: &Option<crate::compare::Side>| {
            s.as_ref().map_or("-".to_string(), |s| {
                crate::render::comparison::num(s.median)
            })
        };
        let star = if class.is_empty() { "" } else { "*" };
        let _ = writeln!(
            o,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td></tr>",
            esc(&r.key),
            esc(&r.unit),
            r.better,
            side(&r.base),
            side(&r.candidate),
            r.change_pct.map_or("-".into(), |x| format!("{x:+.1}%{star}")),
            r.verdict,
            esc(&r.why)
        );
    }
    let _ = writeln!(o, "</table>");
    for x in c.outcome_changes.iter().chain(&c.caveats) {
        let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(x));
    }
}

/// The machine a file's kernel ran on, in one line.
fn machine(n: &Named) -> String {
    let c = &n.results.context;
    c.machine.as_ref().map_or(c.cpu_model.clone(), |m| {
        format!(
            "{} ({}, {} CPU{}, {} MiB{}{})",
            m.hostname,
            c.cpu_model,
            m.cpus,
            if m.cpus == 1 { "" } else { "s" },
            m.memory_kb >> 10,
            m.accelerator
                .as_ref()
                .map_or(String::new(), |a| format!(", test VM under {a}")),
            m.kernel_package
                .as_ref()
                .map_or(String::new(), |p| format!(", {p}")),
        )
    })
}

/// One run's section, folded: its machine, clock, charts and text.
fn run_section(o: &mut String, n: &Named) -> Result<(), String> {
    let _ = writeln!(
        o,
        "<details class=\"run\"><summary>{}</summary>",
        esc(&title(n))
    );
    let _ = writeln!(
        o,
        "<p>{}; tool {}; {} probes</p><p class=\"clock\">timings: {}</p><details><summary>kernel command line</summary><code>{}</code></details>",
        esc(&machine(n)),
        esc(&n.results.context.tool_version),
        n.results.context.probes.len(),
        esc(n.results.clock().describe()),
        esc(&n.results.context.kernel_cmdline),
    );
    for c in charts(n.results) {
        let svg = c.svg()?;
        let _ = writeln!(o, "<figure class=\"chart\">{svg}</figure>");
    }
    let _ = writeln!(o, "<pre>{}</pre></details>", esc(&n.results.render_text()));
    Ok(())
}

/// One file's first screen as terminal text: its kernel and clock, each suite's table
/// (columns aligned, figures to the right), the checks line and the mismatches in full.
pub fn summary_text(r: &Results) -> String {
    use crate::render::text_table::{render, wrap, TERMINAL};
    let mut o = wrap(
        &format!(
            "== {} ({}); timings: {}",
            r.context.kernel_release,
            r.suites.join(", "),
            r.clock().describe()
        ),
        TERMINAL,
        "   ",
    );
    for t in crate::summary::tables(r) {
        o.push('\n');
        o.push_str(&wrap(&t.title, TERMINAL, "  "));
        let header: Vec<String> = std::iter::once(String::new())
            .chain(t.columns.iter().cloned())
            .collect();
        let rows: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|(s, cells)| {
                std::iter::once(s.clone())
                    .chain(cells.iter().cloned())
                    .collect()
            })
            .collect();
        o.push_str(&render(&header, &rows, TERMINAL));
        for n in &t.notes {
            o.push_str(&wrap(&format!("  {n}"), TERMINAL, "    "));
        }
    }
    let (line, bad) = crate::summary::checks(r);
    let _ = writeln!(o, "\nchecks: {line}");
    for (what, c) in bad {
        o.push_str(&wrap(
            &format!("  MISMATCH {what}: {}", c.detail),
            TERMINAL,
            "    ",
        ));
    }
    o
}

/// What one boot's first screen says, whichever writer shows it: the heading's parts, the
/// checks counted over its files, their tables.
struct BootSummary {
    release: String,
    suites: String,
    machine: String,
    clock: &'static str,
    checks: String,
    mismatches: Vec<(String, crate::check::Check)>,
    tables: Vec<crate::summary::SummaryTable>,
}

impl BootSummary {
    fn of(boot: &[&Named]) -> Option<BootSummary> {
        let first = boot.first()?;
        let results: Vec<&Results> = boot.iter().map(|n| n.results).collect();
        let (checks, mismatches) = crate::summary::checks_of(&results);
        Some(BootSummary {
            release: first.results.context.kernel_release.clone(),
            suites: results
                .iter()
                .flat_map(|r| r.suites.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(", "),
            machine: machine(first),
            clock: first.results.clock().describe(),
            checks,
            mismatches,
            tables: results
                .iter()
                .flat_map(|r| crate::summary::tables(r))
                .collect(),
        })
    }
}

/// `summary_section` as Markdown.
fn summary_markdown(o: &mut String, boot: &[&Named]) {
    let Some(b) = BootSummary::of(boot) else {
        return;
    };
    let _ = writeln!(
        o,
        "## {} ({})\n\n{}; timings: {}\n\nchecks: {}\n",
        b.release, b.suites, b.machine, b.clock, b.checks
    );
    for t in &b.tables {
        let _ = writeln!(o, "**{}**\n\n| | {} |", t.title, t.columns.join(" | "));
        let _ = writeln!(o, "|---|{}", "---:|".repeat(t.columns.len()));
        for (subject, cells) in &t.rows {
            let _ = writeln!(o, "| {subject} | {} |", cells.join(" | "));
        }
        for n in &t.notes {
            let _ = writeln!(o, "\n{n}");
        }
        let _ = writeln!(o);
    }
    for (what, c) in &b.mismatches {
        let _ = writeln!(o, "- MISMATCH {what}: {}", c.detail);
    }
    let _ = writeln!(o);
}

/// One boot's first screen (its files together): the kernel, machine and clock, the checks
/// count, each suite's table, then the mismatches.
fn summary_section(o: &mut String, boot: &[&Named]) {
    let Some(b) = BootSummary::of(boot) else {
        return;
    };
    let _ = writeln!(
        o,
        "<h2 class=\"summary\">{} ({})</h2><p class=\"machine\">{}; timings: {}</p><p class=\"checks\">checks: {}{}</p><div class=\"flow\">",
        esc(&b.release),
        esc(&b.suites),
        esc(&b.machine),
        esc(b.clock),
        esc(&b.checks),
        if b.mismatches.is_empty() { "" } else { " (the mismatches in full below the tables)" }
    );
    for t in &b.tables {
        let _ = writeln!(
            o,
            "<div class=\"wide\"><table class=\"summary\"><caption>{}</caption><tr><th></th>{}</tr>",
            esc(&t.title),
            t.columns
                .iter()
                // A kernel identifier may break after its underscores, not overflow.
                .map(|c| format!("<th>{}</th>", esc(c).replace('_', "_<wbr>")))
                .collect::<String>()
        );
        for (subject, cells) in &t.rows {
            let _ = writeln!(
                o,
                "<tr><td>{}</td>{}</tr>",
                esc(subject),
                cells
                    .iter()
                    .map(|c| format!("<td>{}</td>", esc(c)))
                    .collect::<String>()
            );
        }
        let _ = writeln!(o, "</table>");
        for n in &t.notes {
            let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(n));
        }
        let _ = writeln!(o, "</div>");
    }
    let _ = writeln!(o, "</div>");
    for (what, c) in &b.mismatches {
        let _ = writeln!(
            o,
            "<p class=\"mismatch\">MISMATCH {}: {}</p>",
            esc(what),
            esc(&c.detail)
        );
    }
}

/// The files of one boot, in the order given: consecutive files of the same kernel, machine
/// and clock and different suites (the main job's memmap+pin, fsdax and rmap files) share
/// one first screen.
fn boots<'a, 'b>(runs: &'b [Named<'a>]) -> Vec<Vec<&'b Named<'a>>> {
    let key = |n: &Named| {
        (
            n.results.context.kernel_release.clone(),
            machine(n),
            n.results.clock(),
        )
    };
    // Two files with a suite in common are two runs (a comparison's sides), not one boot's.
    let shares_a_suite = |b: &[&Named], n: &Named| {
        b.iter().any(|x| {
            x.results
                .suites
                .iter()
                .any(|s| n.results.suites.contains(s))
        })
    };
    let mut out: Vec<Vec<&Named>> = Vec::new();
    for n in runs {
        match out.last_mut() {
            Some(b) if key(b[0]) == key(n) && !shares_a_suite(b, n) => b.push(n),
            _ => out.push(vec![n]),
        }
    }
    out
}

/// The whole report as one HTML file: no external resources, SVG charts inline.
pub fn html(runs: &[Named], comparisons: &[Comparison]) -> Result<String, String> {
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>foliobench report</title>
<style>
body {{ font-family: sans-serif; margin: 1em 2em; }}
pre {{ background: #f6f6f6; padding: 1em; font-size: 12px; white-space: pre-wrap; overflow-wrap: anywhere; }}
.wide {{ max-width: 100%; overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 13px; }}
h1 {{ font-size: 1.4em; margin: 0.3em 0; }} h2.summary {{ font-size: 1.2em; margin: 0.4em 0 0.2em; }}
.machine {{ font-size: 12px; margin: 0 0 0.5em; color: #444; }}
.flow {{ display: flex; flex-wrap: wrap; gap: 0.6em 1.5em; align-items: flex-start; }}
.flow .wide {{ flex: 0 1 auto; }}
table.summary {{ font-size: 12px; }} table.summary td, table.summary th {{ padding: 1px 5px; }}
table.summary th {{ max-width: 7.5em; vertical-align: bottom; }}
table.summary caption {{ text-align: left; font-weight: bold; }}
.wide p.note {{ font-size: 12px; margin: 0.2em 0; width: 0; min-width: 100%; }}
table.summary td:not(:first-child) {{ text-align: right; }}
figure svg {{ max-width: 100%; height: auto; }}
.checks {{ font-weight: bold; font-size: 14px; margin: 0.2em 0 0.5em; }} .mismatch {{ color: #b00; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
tr.worse {{ background: #fdd; }} tr.better {{ background: #dfd; }}
figure {{ margin: 1em 0; overflow-x: auto; }} .note {{ color: #a50; }}
</style></head><body>
<h1>foliobench report</h1>"#
    );
    for boot in boots(runs) {
        summary_section(&mut o, &boot);
    }
    for c in comparisons {
        let _ = writeln!(
            o,
            "<h2>{} against {}: {} regressions, {} improvements</h2>",
            esc(&c.candidate.kernel_release),
            esc(&c.base.kernel_release),
            c.regressions(),
            c.improvements()
        );
        let _ = writeln!(
            o,
            "<p>timings: {}; threshold {}%, alpha {}, p-values adjusted: {}; kernel counts differ when their ranges do not overlap. * = significant and past the threshold.</p>",
            esc(&c.clocks_described()),
            c.threshold_pct,
            c.alpha,
            c.correction.describe()
        );
        comparison_table(&mut o, c);
    }
    let all: Vec<&Results> = runs.iter().map(|n| n.results).collect();
    let curves = crate::scaling::curves(&all);
    if !curves.is_empty() {
        let _ = writeln!(o, "<h2>Cost as the work grows</h2>");
        for c in crate::scaling::charts(&curves) {
            let svg = c.svg()?;
            let _ = writeln!(o, "<figure class=\"chart\">{svg}</figure>");
        }
        let _ = writeln!(
            o,
            "<pre>{}</pre>",
            esc(&crate::scaling::render_text(&curves))
        );
    }
    let _ = writeln!(o, "<h2>Details</h2>");
    for n in runs {
        run_section(&mut o, n)?;
    }
    // Counted by the browser after it parsed the page: the test reads this attribute from
    // chromium's DOM dump to know the charts were really there as SVG elements.
    let _ = writeln!(
        o,
        "<script>document.body.dataset.charts = document.querySelectorAll('figure.chart svg').length;</script>\n</body></html>"
    );
    Ok(o)
}

pub fn markdown(runs: &[Named], comparisons: &[Comparison]) -> String {
    let mut o = String::from("# foliobench report\n\n");
    for boot in boots(runs) {
        summary_markdown(&mut o, &boot);
    }
    for c in comparisons {
        let _ = writeln!(
            o,
            "## {} against {}\n\n{}",
            c.candidate.kernel_release,
            c.base.kernel_release,
            c.render_markdown()
        );
    }
    let all: Vec<&Results> = runs.iter().map(|n| n.results).collect();
    let scaling = crate::scaling::render_text(&crate::scaling::curves(&all));
    if !scaling.is_empty() {
        let _ = writeln!(o, "## Cost as the work grows\n\n```text\n{scaling}```\n");
    }
    for n in runs {
        let _ = writeln!(
            o,
            "## {}\n\n```text\n{}```\n",
            title(n),
            n.results.render_text()
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The main job's files of one boot (different suites) make one first screen; two runs
    /// of the same suites on the same machine (a comparison's sides) stay two.
    #[test]
    fn one_boots_files_share_a_first_screen() {
        let recorded =
            crate::results::parse(include_str!("../../../tests/fixtures/matrix/6.12.117.json"))
                .unwrap();
        let mut run = recorded.clone();
        run.suites = vec!["memmap".into(), "pin".into()];
        run.fsdax = None;
        let mut fsdax = recorded.clone();
        fsdax.suites = vec!["fsdax".into()];
        fsdax.memmap = vec![];
        fsdax.pin = None;
        let named = |file: &str, results| Named {
            file: file.into(),
            results,
        };
        let one_boot = [named("run.json", &run), named("fsdax.json", &fsdax)];
        assert_eq!(boots(&one_boot).len(), 1);
        let md = markdown(&one_boot, &[]);
        assert_eq!(md.matches("\n## 6.12.117").count(), 1, "{md}");
        assert!(md.contains("(memmap, pin, fsdax)"), "{md}");
        let two_runs = [named("a.json", &run), named("b.json", &run)];
        assert_eq!(boots(&two_runs).len(), 2);
        // Another kernel is another boot.
        let mut other = fsdax.clone();
        other.context.kernel_release = "7.3.4+deb13-amd64".into();
        assert_eq!(
            boots(&[named("run.json", &run), named("x.json", &other)]).len(),
            2
        );
    }
}
