//! `foliobench report`: results files as one self-contained HTML page (tables and SVG charts)
//! or as Markdown. With several files, each after the first is also compared against it.

use std::fmt::Write as _;

use crate::chart::{Chart, Series};
use crate::compare::{Comparison, Verdict};
use crate::geometry::PAGE_SIZE;
use crate::outcome::Outcome;
use crate::pin::PinDriver;
use crate::results::Results;
use crate::stats::median;

/// One results file and the name it is shown under.
pub struct Named<'a> {
    pub file: String,
    pub results: &'a Results,
}

fn mib(pages: u64) -> f64 {
    (pages * PAGE_SIZE) as f64 / (1 << 20) as f64
}

fn med(v: &[f64]) -> Option<f64> {
    median(v)
}

/// Every chart a results file has data for, in the order of the suites.
pub fn charts(r: &Results) -> Vec<Chart> {
    let mut out = Vec::new();
    if !r.memmap.is_empty() {
        let cats: Vec<String> = r.memmap.iter().map(|m| m.geometry.to_string()).collect();
        let per = |f: &dyn Fn(&crate::memmap::MemmapSample) -> Option<f64>| -> Vec<Vec<f64>> {
            r.memmap
                .iter()
                .map(|m| m.samples.iter().filter_map(f).collect())
                .collect()
        };
        let series = |name: &str, samples: Vec<Vec<f64>>, dots: bool| Series {
            name: name.into(),
            values: samples.iter().map(|s| med(s)).collect(),
            samples: if dots { samples } else { vec![] },
        };
        // pfnmap is the floor: no struct pages, so the model's 0 is drawn as its value.
        out.push(Chart {
            title: "struct page (vmemmap) memory in RAM per geometry".into(),
            y_label: "MiB".into(),
            log_y: false,
            categories: cats.clone(),
            series: vec![
                Series {
                    name: "model".into(),
                    values: r
                        .memmap
                        .iter()
                        .map(|m| Some(mib(m.model.ram_pages)))
                        .collect(),
                    samples: vec![],
                },
                series(
                    "measured: vmemmap allocations from RAM (probe)",
                    per(&|s| s.probe_ram_vmemmap_pages.map(mib)),
                    false,
                ),
                series(
                    "nr_memmap_pages delta (RAM and device)",
                    per(&|s| s.nr_memmap_pages_delta.map(|d| mib(d.max(0) as u64))),
                    false,
                ),
            ],
        });
        out.push(Chart {
            title: "memmap_init_zone_device time per geometry (median and samples)".into(),
            y_label: "ms (log)".into(),
            log_y: true,
            categories: cats,
            series: vec![series(
                "memmap_init_zone_device",
                per(&|s| s.memmap_init_ns.map(|n| n as f64 / 1e6)),
                true,
            )],
        });
    }
    if let Some(p) = &r.pin {
        let drivers: Vec<PinDriver> = PinDriver::ALL
            .into_iter()
            .filter(|d| {
                p.results
                    .iter()
                    .any(|x| x.driver == *d && x.outcome == Outcome::Measured)
            })
            .collect();
        let mut memories: Vec<String> = Vec::new();
        for x in &p.results {
            let m = x.memory.to_string();
            if !memories.contains(&m) {
                memories.push(m);
            }
        }
        let cell = |m: &str, d: PinDriver| {
            p.results.iter().find(|x| {
                x.driver == d && x.memory.to_string() == m && x.outcome == Outcome::Measured
            })
        };
        for d in &drivers {
            let pin: Vec<Vec<f64>> = memories
                .iter()
                .map(|m| {
                    cell(m, *d).map_or(vec![], |x| {
                        x.samples.iter().map(|s| s.pin_ns as f64 / 1e6).collect()
                    })
                })
                .collect();
            let unpin: Vec<Vec<f64>> = memories
                .iter()
                .map(|m| {
                    cell(m, *d).map_or(vec![], |x| {
                        x.samples
                            .iter()
                            .filter_map(|s| s.unpin_ns.map(|n| n as f64 / 1e6))
                            .collect()
                    })
                })
                .collect();
            out.push(Chart {
                title: format!(
                    "{} pin and unpin time per memory ({} MiB; median and samples)",
                    d.name(),
                    p.size >> 20
                ),
                y_label: "ms (log)".into(),
                log_y: true,
                categories: memories.clone(),
                series: vec![
                    Series {
                        name: "pin".into(),
                        values: pin.iter().map(|s| med(s)).collect(),
                        samples: pin,
                    },
                    Series {
                        name: "unpin".into(),
                        values: unpin.iter().map(|s| med(s)).collect(),
                        samples: unpin,
                    },
                ],
            });
        }
        out.push(Chart {
            title: "refcount grabs (try_grab_folio*) per pinned page".into(),
            y_label: "calls per page (log)".into(),
            log_y: true,
            categories: memories.clone(),
            series: drivers
                .iter()
                .map(|d| Series {
                    name: d.name().into(),
                    values: memories
                        .iter()
                        .map(|m| cell(m, *d)?.grabs.as_ref()?.per_page())
                        .collect(),
                    samples: vec![],
                })
                .collect(),
        });
    }
    if let Some(rm) = &r.rmap {
        let mut folios: Vec<(String, u64)> = Vec::new();
        for x in &rm.results {
            let k = (x.memory.clone(), x.folio_kb);
            if !folios.contains(&k) {
                folios.push(k);
            }
        }
        let cats: Vec<String> = folios
            .iter()
            .map(|(m, kb)| {
                if m == crate::rmap::ANON {
                    format!("{kb}K")
                } else {
                    m.clone()
                }
            })
            .collect();
        let mut ops = Vec::new();
        for x in &rm.results {
            if !ops.contains(&x.op) {
                ops.push(x.op);
            }
        }
        let row = |op, (m, kb): &(String, u64)| {
            rm.results.iter().find(|x| {
                x.op == op && &x.memory == m && x.folio_kb == *kb && x.outcome == Outcome::Measured
            })
        };
        out.push(Chart {
            title: format!(
                "rmap operation time per folio size ({} MiB; median and samples)",
                rm.size >> 20
            ),
            y_label: "ms (log)".into(),
            log_y: true,
            categories: cats.clone(),
            series: ops
                .iter()
                .map(|op| {
                    let samples: Vec<Vec<f64>> = folios
                        .iter()
                        .map(|f| {
                            row(*op, f).map_or(vec![], |x| {
                                x.samples.iter().map(|&n| n as f64 / 1e6).collect()
                            })
                        })
                        .collect();
                    Series {
                        name: op.name().into(),
                        values: samples.iter().map(|s| med(s)).collect(),
                        samples,
                    }
                })
                .collect(),
        });
        // Batch-size histograms: calls per nr_pages value, one series per folio size.
        for op in &ops {
            let Some(probe) = op.batch_probe() else {
                continue;
            };
            let hists: Vec<(&str, &[(u64, u64)])> = folios
                .iter()
                .zip(&cats)
                .filter_map(|(f, c)| {
                    let p = row(*op, f)?.probe(probe)?;
                    (!p.arg_values.is_empty()).then_some((c.as_str(), p.arg_values.as_slice()))
                })
                .collect();
            if hists.is_empty() {
                continue;
            }
            let mut values: Vec<u64> = hists
                .iter()
                .flat_map(|(_, h)| h.iter().map(|(v, _)| *v))
                .collect();
            values.sort_unstable();
            values.dedup();
            out.push(Chart {
                title: format!("{} batch sizes: {probe} calls per nr_pages", op.name()),
                y_label: "calls (log)".into(),
                log_y: true,
                categories: values.iter().map(|v| format!("nr_pages {v}")).collect(),
                series: hists
                    .iter()
                    .map(|(c, h)| Series {
                        name: format!("folio {c}"),
                        values: values
                            .iter()
                            .map(|v| h.iter().find(|(x, _)| x == v).map(|(_, n)| *n as f64))
                            .collect(),
                        samples: vec![],
                    })
                    .collect(),
            });
        }
    }
    if let Some(f) = &r.fsdax {
        let rows: Vec<_> = f
            .results
            .iter()
            .filter(|x| x.outcome == Outcome::Measured)
            .collect();
        let cats: Vec<String> = rows.iter().map(|x| format!("{} -o dax", x.fs)).collect();
        let per_gib = (1u64 << 30) as f64 / f.size.max(1) as f64;
        let samples: Vec<Vec<f64>> = rows
            .iter()
            .map(|x| {
                x.fault_ns
                    .iter()
                    .map(|&n| n as f64 / 1e6 * per_gib)
                    .collect()
            })
            .collect();
        out.push(Chart {
            title: format!(
                "fsdax read fault-in time per GiB ({} MiB file; median and samples)",
                f.size >> 20
            ),
            y_label: "ms per GiB".into(),
            log_y: false,
            categories: cats.clone(),
            series: vec![Series {
                name: "fault-in".into(),
                values: samples.iter().map(|s| med(s)).collect(),
                samples,
            }],
        });
        let count = |name: &str, get: &dyn Fn(&crate::fsdax::FsdaxResult) -> Option<u64>| Series {
            name: name.into(),
            values: rows.iter().map(|x| get(x).map(|v| v as f64)).collect(),
            samples: vec![],
        };
        out.push(Chart {
            title: "fsdax faults of one fault-in: PMD mappings against PTE faults".into(),
            y_label: "faults (log)".into(),
            log_y: true,
            categories: cats,
            series: vec![
                count("PMD mapped", &|x| x.pmd_mapped()),
                count("PMD fell back", &|x| x.pmd_fallbacks()),
                count("PTE faults", &|x| x.pte_faults()),
                count("PTE faults, mapping 4K off 2M", &|x| {
                    x.misaligned().pte_faults()
                }),
            ],
        });
    }
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
            s.as_ref()
                .map_or("-".to_string(), |s| crate::compare::num(s.median))
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

/// The whole report as one HTML file: no external resources, SVG charts inline.
pub fn html(runs: &[Named], comparisons: &[Comparison]) -> Result<String, String> {
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>foliobench report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1500px; }}
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; }}
tr.worse {{ background: #fdd; }} tr.better {{ background: #dfd; }}
figure {{ margin: 1em 0; overflow-x: auto; }} .note {{ color: #a50; }}
</style></head><body>
<h1>foliobench report</h1>"#
    );
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
            "<p>threshold {}%, Mann-Whitney U at alpha {} on timings; kernel counts differ when their ranges do not overlap. * = significant and past the threshold.</p>",
            c.threshold_pct, c.alpha
        );
        comparison_table(&mut o, c);
    }
    for n in runs {
        let _ = writeln!(o, "<h2>{}</h2>", esc(&title(n)));
        let _ = writeln!(
            o,
            "<p>{}; tool {}; {} probes</p><details><summary>kernel command line</summary><code>{}</code></details>",
            esc(&n.results.context.machine.as_ref().map_or(
                n.results.context.cpu_model.clone(),
                |m| format!(
                    "{} ({}, {} CPUs, {} MiB{}{})",
                    m.hostname,
                    n.results.context.cpu_model,
                    m.cpus,
                    m.memory_kb >> 10,
                    m.accelerator
                        .as_ref()
                        .map_or(String::new(), |a| format!(", test VM under {a}")),
                    m.kernel_package
                        .as_ref()
                        .map_or(String::new(), |p| format!(", {p}")),
                )
            )),
            esc(&n.results.context.tool_version),
            n.results.context.probes.len(),
            esc(&n.results.context.kernel_cmdline),
        );
        for c in charts(n.results) {
            let svg = c.svg()?;
            let _ = writeln!(o, "<figure class=\"chart\">{svg}</figure>");
        }
        let _ = writeln!(o, "<pre>{}</pre>", esc(&n.results.render_text()));
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
    for c in comparisons {
        let _ = writeln!(
            o,
            "## {} against {}\n\n{}",
            c.candidate.kernel_release,
            c.base.kernel_release,
            c.render_markdown()
        );
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
