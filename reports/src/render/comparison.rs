//! A comparison as text, Markdown, KTAP (the kernel's test format, for KernelCI) and JUnit
//! XML: what `compare`, `ab` and `matrix` print. The judging is `crate::compare`'s.

use std::fmt::Write as _;

use crate::compare::{Comparison, Row, Side, Verdict};

pub(crate) use crate::units::num;

fn side(s: &Option<Side>) -> String {
    match s {
        Some(s) => match s.range_pct {
            Some(r) if s.n > 1 && r > 0.0 => format!("{} ±{r:.0}%", num(s.median)),
            _ => num(s.median),
        },
        None => "-".into(),
    }
}

pub(crate) fn change(r: &Row) -> String {
    let star = if r.verdict == Verdict::Improvement || r.verdict == Verdict::Regression {
        "*"
    } else {
        ""
    };
    match r.change_pct {
        Some(c) => format!("{c:+.1}%{star}"),
        None if matches!(r.verdict, Verdict::Missing | Verdict::Lost) => "-".into(),
        None => "new".into(),
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Same => "same",
        Verdict::Improvement => "better",
        Verdict::Regression => "WORSE",
        Verdict::Lost => "LOST",
        Verdict::Missing | Verdict::Incomparable => "n/a",
    }
}

/// KTAP test names may not contain '#' and should stay on one line.
fn ktap_name(s: &str) -> String {
    s.replace('#', "")
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Comparison {
    pub(crate) fn header(&self) -> String {
        format!(
            "base: {} ({}, {} CPU); candidate: {} ({}, {} CPU); timings: {}; threshold {}%, alpha {}, p-values adjusted: {}{}",
            self.base.kernel_release,
            self.base.file,
            self.base.cpu,
            self.candidate.kernel_release,
            self.candidate.file,
            self.candidate.cpu,
            self.clocks_described(),
            self.threshold_pct,
            self.alpha,
            self.correction.describe(),
            if self.boots == (1, 1) {
                String::new()
            } else {
                format!(
                    "; {}+{} boots, the boot the unit (Welch t on per-boot medians) and the baseline's between-boot spread the smallest change that counts",
                    self.boots.0, self.boots.1
                )
            }
        )
    }

    fn summary(&self) -> String {
        format!(
            "{} metrics: {} regressions, {} lost{}, {} improvements, {} same, {} in the candidate only, {} not comparable; gate: {}",
            self.rows.len(),
            self.regressions(),
            self.lost_metrics() + self.lost.len(),
            if self.allow_missing { " (allowed)" } else { "" },
            self.improvements(),
            self.rows
                .iter()
                .filter(|r| r.verdict == Verdict::Same)
                .count(),
            self.rows
                .iter()
                .filter(|r| r.verdict == Verdict::Missing)
                .count(),
            self.rows
                .iter()
                .filter(|r| r.verdict == Verdict::Incomparable)
                .count(),
            if self.failures().is_empty() { "pass" } else { "FAIL" }
        )
    }

    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "{}", self.header());
        let w = self
            .rows
            .iter()
            .map(|r| r.key.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            o,
            "{:<w$} {:>10} {:>18} {:>18} {:>10} {:>8}  why",
            "metric", "unit", "base", "candidate", "change", "verdict"
        );
        for r in &self.rows {
            let _ = writeln!(
                o,
                "{:<w$} {:>10} {:>18} {:>18} {:>10} {:>8}  {}",
                r.key,
                r.unit,
                side(&r.base),
                side(&r.candidate),
                change(r),
                verdict_word(r.verdict),
                r.why
            );
        }
        self.render_notes(&mut o, "");
        o
    }

    fn render_notes(&self, o: &mut String, bullet: &str) {
        if !self.lost.is_empty() {
            let _ = writeln!(
                o,
                "\n{bullet}lost on the candidate ({}):",
                if self.allow_missing {
                    "allowed by --allow-missing"
                } else {
                    "fails the gate; --allow-missing to accept"
                }
            );
            for l in &self.lost {
                let _ = writeln!(o, "{bullet}  {l}");
            }
        }
        if !self.outcome_changes.is_empty() {
            let _ = writeln!(o, "\n{bullet}outcomes that changed:");
            for c in &self.outcome_changes {
                let _ = writeln!(o, "{bullet}  {c}");
            }
        }
        self.render_calibration(o, bullet);
        for c in &self.caveats {
            let _ = writeln!(o, "{bullet}caveat: {c}");
        }
        let _ = writeln!(
            o,
            "\n{}  (* = significant and past the threshold; lower or higher is better per metric)",
            self.summary()
        );
    }

    /// Per timing judged on several boots: the spread between boots on each side and the
    /// smallest change the gate could call with them (an A/A run calibrates the gate).
    fn render_calibration(&self, o: &mut String, bullet: &str) {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.mde_pct.is_some()).collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            o,
            "\n{bullet}smallest change the gate can call, per timing (Welch t at alpha {} on these boots' medians, at least the threshold or the baseline's spread), with the spread between boots (base / candidate):",
            self.alpha
        );
        let pct = |s: &Option<Side>| {
            s.as_ref()
                .and_then(|s| s.between_boot_pct)
                .map_or("-".into(), |p| format!("{p:.3}%"))
        };
        for r in rows {
            let _ = writeln!(
                o,
                "{bullet}  {}: {:.2}% (between boots {} / {})",
                r.key,
                r.mde_pct.unwrap_or(0.0),
                pct(&r.base),
                pct(&r.candidate)
            );
        }
    }

    pub fn render_markdown(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "{}\n", self.header());
        let _ = writeln!(
            o,
            "| metric | unit | better | base | candidate | change | verdict | why |\n|---|---|---|---|---|---|---|---|"
        );
        for r in &self.rows {
            let _ = writeln!(
                o,
                "| {} | {} | {:?} | {} | {} | {} | {} | {} |",
                r.key,
                r.unit,
                r.better,
                side(&r.base),
                side(&r.candidate),
                change(r),
                verdict_word(r.verdict),
                r.why.replace('|', "/")
            );
        }
        self.render_notes(&mut o, "- ");
        o
    }

    /// KTAP version 1 (Documentation/dev-tools/ktap.rst): one test per metric; a
    /// regression is `not ok`, a metric only one run has is skipped.
    pub fn render_ktap(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "KTAP version 1");
        let _ = writeln!(o, "# foliobench compare: {}", self.header());
        let _ = writeln!(o, "1..{}", self.rows.len() + self.lost.len());
        for (i, r) in self.rows.iter().enumerate() {
            let _ = writeln!(
                o,
                "# {}: base {} candidate {} change {} ({})",
                r.key,
                side(&r.base),
                side(&r.candidate),
                change(r),
                r.why
            );
            let n = i + 1;
            let name = ktap_name(&r.key);
            let _ = match r.verdict {
                Verdict::Regression => writeln!(o, "not ok {n} {name}"),
                Verdict::Lost if !self.allow_missing => writeln!(o, "not ok {n} {name}"),
                Verdict::Missing | Verdict::Incomparable | Verdict::Lost => {
                    writeln!(o, "ok {n} {name} # SKIP {}", r.why)
                }
                _ => writeln!(o, "ok {n} {name}"),
            };
        }
        for (i, l) in self.lost.iter().enumerate() {
            let n = self.rows.len() + i + 1;
            let _ = writeln!(o, "# lost: {l}");
            let name = ktap_name(&format!("lost {}", l.split(':').next().unwrap_or(l)));
            let _ = if self.allow_missing {
                writeln!(o, "ok {n} {name} # SKIP allowed by --allow-missing")
            } else {
                writeln!(o, "not ok {n} {name}")
            };
        }
        let _ = writeln!(o, "# {}", self.summary());
        o
    }

    /// JUnit XML: one testcase per metric, a regression a failure, a one-sided metric
    /// skipped.
    pub fn render_junit(&self) -> String {
        let mut o = String::new();
        let skipped = self
            .rows
            .iter()
            .filter(|r| r.failure(self.allow_missing).is_none() && r.skipped(self.allow_missing))
            .count()
            + if self.allow_missing {
                self.lost.len()
            } else {
                0
            };
        let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            o,
            r#"<testsuites><testsuite name="foliobench compare" tests="{}" failures="{}" skipped="{skipped}">"#,
            self.rows.len() + self.lost.len(),
            self.failures().len()
        );
        let _ = writeln!(
            o,
            "<properties><property name=\"base\" value=\"{}\"/><property name=\"candidate\" value=\"{}\"/></properties>",
            xml(&self.base.kernel_release),
            xml(&self.candidate.kernel_release)
        );
        for r in &self.rows {
            let detail = xml(&format!(
                "base {} candidate {} change {} {}: {}",
                side(&r.base),
                side(&r.candidate),
                change(r),
                r.unit,
                r.why
            ));
            let _ = write!(
                o,
                r#"<testcase classname="foliobench.{}" name="{}">"#,
                xml(&r.suite),
                xml(&r.key)
            );
            let _ = match r.failure(self.allow_missing) {
                Some(what) => write!(o, r#"<failure message="{what}">{detail}</failure>"#),
                None if r.skipped(self.allow_missing) => {
                    write!(o, r#"<skipped message="{detail}"/>"#)
                }
                None => write!(o, "<system-out>{detail}</system-out>"),
            };
            let _ = writeln!(o, "</testcase>");
        }
        for l in &self.lost {
            let _ = write!(
                o,
                r#"<testcase classname="foliobench.lost" name="{}">"#,
                xml(l.split(':').next().unwrap_or(l))
            );
            let _ = if self.allow_missing {
                write!(o, r#"<skipped message="{}"/>"#, xml(l))
            } else {
                write!(o, r#"<failure message="lost">{}</failure>"#, xml(l))
            };
            let _ = writeln!(o, "</testcase>");
        }
        let _ = writeln!(o, "</testsuite></testsuites>");
        o
    }
}
