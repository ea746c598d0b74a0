//! What `foliobench trace` (and every suite that traces) records per probe, and the
//! funclatency/bpftrace-style terminal rendering of it.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::facts::{Flavour, Group, Resolution};

pub const TRACE_SCHEMA_VERSION: u32 = 1;

/// Aggregates of one probe, read from its BPF maps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeStats {
    pub probe: String,
    pub group: Group,
    /// The kernel function (or tracepoint) attached to.
    pub function: String,
    /// Recorded as `mechanism`, its name in results files.
    #[serde(rename = "mechanism")]
    pub flavour: Flavour,
    pub calls: u64,
    /// Calls whose return was seen (a call still running at read time is not).
    pub returns: u64,
    pub total_ns: u64,
    /// log2 buckets of latency in ns: bucket i counts [2^i, 2^(i+1)); 0 and 1 in bucket 0.
    pub latency_log2: Vec<u64>,
    /// The argument recorded, if any (e.g. nr_pages).
    pub arg_name: Option<String>,
    pub arg_log2: Vec<u64>,
    /// Exact values of the argument and their counts, ascending.
    pub arg_values: Vec<(u64, u64)>,
    /// The argument summed in the kernel, modulo 2^64: a signed argument's sum (a page
    /// count's delta) reads as i64, and a difference of two reads is taken wrapping.
    pub arg_sum: u64,
    /// Distinct values that did not fit the exact-value map (still in `arg_log2`).
    pub arg_values_dropped: u64,
    /// Calls per kernel call path, most first (where the probe counted stacks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<StackCount>,
    /// Calls not counted above because their VMA lay outside the range the span named
    /// (the rest of a process whose one mapping is measured); 0 where none was named.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub outside_vmas: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The calls a probe saw on one kernel call path, and its argument summed over them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackCount {
    /// Function names, innermost first (the probed function's callers); `?` where an
    /// address has no symbol; empty when the stack could not be taken.
    pub frames: Vec<String>,
    pub calls: u64,
    pub arg_sum: u64,
}

impl StackCount {
    /// "a ← b ← c": the call path as a kernel developer reads it, innermost first, up to
    /// `depth` frames.
    pub fn path(&self, depth: usize) -> String {
        if self.frames.is_empty() {
            return "(no stack)".into();
        }
        let mut p = self
            .frames
            .iter()
            .take(depth)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ← ");
        if self.frames.len() > depth {
            p.push_str(" ← …");
        }
        p
    }
}

/// `now` less `before`, per call path: what a span added (paths with no new calls left
/// out), most calls first.
pub fn stacks_since(now: &[StackCount], before: &[StackCount]) -> Vec<StackCount> {
    let mut v: Vec<StackCount> = now
        .iter()
        .filter_map(|n| {
            let b = before.iter().find(|b| b.frames == n.frames);
            let calls = n.calls - b.map_or(0, |b| b.calls.min(n.calls));
            (calls > 0).then(|| StackCount {
                frames: n.frames.clone(),
                calls,
                arg_sum: n.arg_sum.wrapping_sub(b.map_or(0, |b| b.arg_sum)),
            })
        })
        .collect();
    v.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.frames.cmp(&b.frames)));
    v
}

/// The `q` quantile of a log2 histogram (bucket i: [2^i, 2^(i+1))), as its bucket's upper
/// bound; `None` for an empty one.
pub fn log2_percentile(slots: &[u64], q: f64) -> Option<u64> {
    let total: u64 = slots.iter().sum();
    if total == 0 {
        return None;
    }
    // The smallest bucket whose cumulative count reaches q of the total (at least one).
    let want = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    slots.iter().enumerate().find_map(|(i, n)| {
        seen += n;
        (seen >= want).then(|| 1u64 << (i + 1).min(63))
    })
}

/// `p50 <= X, p90 <= Y, p99 <= Z` of a log2 latency histogram; `None` for an empty one.
pub fn percentiles_text(slots: &[u64]) -> Option<String> {
    let q = |x| log2_percentile(slots, x).map(fmt_ns);
    Some(format!(
        "p50 <= {}, p90 <= {}, p99 <= {}",
        q(0.5)?,
        q(0.9)?,
        q(0.99)?
    ))
}

/// Every probe's counts between two reads of the same probes.
pub fn since_all(now: &[ProbeStats], before: &[ProbeStats]) -> Vec<ProbeStats> {
    now.iter()
        .map(|n| match before.iter().find(|b| b.probe == n.probe) {
            Some(b) => n.since(b),
            None => n.clone(),
        })
        .collect()
}

impl ProbeStats {
    /// A syscall's enter/exit tracepoint pair (results files carry the tracepoint's name,
    /// `syscalls:sys_enter_<name>`, not the catalog's kind).
    pub fn is_syscall(&self) -> bool {
        self.function.starts_with("syscalls:")
    }

    /// The `q` quantile (0..1) of the latency, as the upper bound of its log2 bucket (2^(i+1)
    /// ns): the histogram is all the kernel kept, so this is as precise as it gets.
    pub fn percentile_ns(&self, q: f64) -> Option<u64> {
        log2_percentile(&self.latency_log2, q)
    }

    pub fn avg_ns(&self) -> Option<u64> {
        (self.returns > 0).then(|| self.total_ns / self.returns)
    }

    /// What happened between `before` and this read of the same probe (the BPF maps only
    /// count up): one loaded probe then serves several operations.
    pub fn since(&self, before: &ProbeStats) -> ProbeStats {
        let sub = |a: &[u64], b: &[u64]| -> Vec<u64> {
            a.iter()
                .enumerate()
                .map(|(i, x)| x.saturating_sub(b.get(i).copied().unwrap_or(0)))
                .collect()
        };
        let arg_values = self
            .arg_values
            .iter()
            .filter_map(|(v, n)| {
                let d = n.saturating_sub(before.value_count(*v));
                (d > 0).then_some((*v, d))
            })
            .collect();
        ProbeStats {
            calls: self.calls.saturating_sub(before.calls),
            returns: self.returns.saturating_sub(before.returns),
            total_ns: self.total_ns.saturating_sub(before.total_ns),
            latency_log2: sub(&self.latency_log2, &before.latency_log2),
            arg_log2: sub(&self.arg_log2, &before.arg_log2),
            arg_values,
            // Wrapping: a signed argument's negative values before (a teardown's -512 pages
            // per section) left the sum "above" the one after; saturating, the first memmap
            // geometry's memmap_pages_add read 0 after its namespace's old mode was torn
            // down under the same attachment.
            arg_sum: self.arg_sum.wrapping_sub(before.arg_sum),
            arg_values_dropped: self
                .arg_values_dropped
                .saturating_sub(before.arg_values_dropped),
            stacks: stacks_since(&self.stacks, &before.stacks),
            outside_vmas: self.outside_vmas.saturating_sub(before.outside_vmas),
            ..self.clone()
        }
    }

    /// The most frequent exact argument value (the typical batch), if any was recorded.
    pub fn mode(&self) -> Option<u64> {
        self.arg_values
            .iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(v, _)| *v)
    }

    /// How many calls had this exact argument value.
    pub fn value_count(&self, v: u64) -> u64 {
        self.arg_values
            .iter()
            .find(|(k, _)| *k == v)
            .map_or(0, |(_, c)| *c)
    }
}

/// A probe that was asked for but is not traced, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotTraced {
    pub probe: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TraceReport {
    pub schema_version: u32,
    pub kernel_release: String,
    /// The traced command, or empty for a system-wide trace of a duration.
    pub command: Vec<String>,
    pub command_status: Option<i32>,
    pub duration_ns: u64,
    pub probes: Vec<ProbeStats>,
    pub not_traced: Vec<NotTraced>,
    /// Facts about how the trace was taken (fallbacks, filters).
    pub notes: Vec<String>,
}

impl NotTraced {
    pub fn from_resolution(r: &Resolution) -> NotTraced {
        NotTraced {
            probe: r.probe.clone(),
            reason: r.reason.clone(),
        }
    }
}

fn bar(count: u64, max: u64, width: usize) -> String {
    let n = if max == 0 {
        0
    } else {
        ((count as f64 / max as f64) * width as f64).round() as usize
    };
    format!("|{:<width$}|", "*".repeat(n.min(width)))
}

/// A log2 histogram as funclatency prints it, from the first to the last non-empty bucket.
pub fn render_log2(o: &mut String, unit: &str, slots: &[u64]) {
    let Some(last) = slots.iter().rposition(|&c| c > 0) else {
        return;
    };
    let first = slots.iter().position(|&c| c > 0).unwrap_or(0);
    let max = slots.iter().copied().max().unwrap_or(0);
    let _ = writeln!(o, "     {unit:>20} : count     distribution");
    for (i, &c) in slots.iter().enumerate().take(last + 1).skip(first) {
        let lo: u64 = if i == 0 { 0 } else { 1 << i };
        let hi: u64 = (1u64 << (i + 1)) - 1;
        let _ = writeln!(o, "     {lo:>9} -> {hi:<9} : {c:<9} {}", bar(c, max, 40));
    }
}

/// Exact values (batch sizes) as a table, when there are few enough to read.
fn render_values(o: &mut String, name: &str, values: &[(u64, u64)]) {
    if values.is_empty() {
        return;
    }
    let max = values.iter().map(|(_, c)| *c).max().unwrap_or(0);
    let _ = writeln!(o, "     {name:>20} : count     distribution");
    for (v, c) in values {
        let _ = writeln!(o, "     {v:>20} : {c:<9} {}", bar(*c, max, 40));
    }
}

/// The most frequent argument values as `value x count`, most frequent first; the rest
/// summed up (the JSON has them all).
pub fn frequent_values(values: &[(u64, u64)]) -> String {
    const SHOWN: usize = 4;
    let mut v = values.to_vec();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut s = v
        .iter()
        .take(SHOWN)
        .map(|(val, n)| format!("{val}x{n}"))
        .collect::<Vec<_>>()
        .join(" ");
    if v.len() > SHOWN {
        let rest: u64 = v[SHOWN..].iter().map(|(_, n)| n).sum();
        s.push_str(&format!(
            " and {rest} calls with {} other values",
            v.len() - SHOWN
        ));
    }
    s
}

pub fn fmt_ns(ns: u64) -> String {
    match ns {
        n if n >= 1_000_000_000 => format!("{:.2} s", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.2} ms", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.2} us", n as f64 / 1e3),
        n => format!("{n} ns"),
    }
}

/// A probe's call paths as stackcount prints them: the count, then the frames innermost
/// first, one per line.
fn render_stacks(o: &mut String, p: &ProbeStats) {
    for s in &p.stacks {
        let arg = match &p.arg_name {
            Some(n) => format!(", {n} summed {}", s.arg_sum),
            None => String::new(),
        };
        let _ = writeln!(o, "  {} calls{arg}:", s.calls);
        for f in &s.frames {
            let _ = writeln!(o, "    {f}");
        }
        if s.frames.is_empty() {
            let _ = writeln!(o, "    (no stack)");
        }
    }
}

impl TraceReport {
    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let what = if self.command.is_empty() {
            format!("system-wide for {}", fmt_ns(self.duration_ns))
        } else {
            format!(
                "`{}` ({}, exit status {})",
                self.command.join(" "),
                fmt_ns(self.duration_ns),
                self.command_status
                    .map_or("unknown".into(), |s| s.to_string())
            )
        };
        let _ = writeln!(
            o,
            "Tracing {} probes on {}: {what}",
            self.probes.len(),
            self.kernel_release
        );
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        for p in &self.probes {
            let _ = writeln!(
                o,
                "\n{} ({} on {}): calls {}, avg {}, total {}",
                p.probe,
                p.flavour.name(),
                p.function,
                p.calls,
                p.avg_ns().map_or("-".into(), fmt_ns),
                fmt_ns(p.total_ns)
            );
            if let Some(q) = percentiles_text(&p.latency_log2) {
                let _ = writeln!(o, "{q} (log2 buckets)");
            }
            render_log2(&mut o, "nsecs", &p.latency_log2);
            if let Some(name) = &p.arg_name {
                if p.arg_values.len() <= 16 && p.arg_values_dropped == 0 {
                    render_values(&mut o, name, &p.arg_values);
                } else {
                    render_log2(&mut o, name, &p.arg_log2);
                }
            }
            render_stacks(&mut o, p);
        }
        if !self.not_traced.is_empty() {
            let _ = writeln!(o, "\nNot traced:");
            for n in &self.not_traced {
                let _ = writeln!(o, "  {}: {}", n.probe, n.reason);
            }
        }
        o
    }
}

/// Wall time of one command untraced, under foliobench's probes and under bpftrace with
/// the same probes: the probe effect, as a ratio (timings under emulation mean nothing
/// absolute).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Overhead {
    pub schema_version: u32,
    pub kernel_release: String,
    pub command: Vec<String>,
    /// Probes attached in the traced runs (id and flavour).
    pub probes: Vec<String>,
    pub variants: Vec<Variant>,
    pub notes: Vec<String>,
    /// The whole cost of tracing a command that does nothing: each tracer's process
    /// started, the same probes attached, `/bin/true` run, detached, exited; wall time, ns.
    /// Variants "foliobench trace" and "bpftrace" (when installed). Absent before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attach: Vec<Variant>,
    /// Probe calls (entries, every probe summed) in each of foliobench's traced runs, as its
    /// own probes counted them: the same probes fire the same number of times under bpftrace.
    /// Absent before.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls_per_run: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    /// untraced, foliobench, bpftrace.
    pub name: String,
    /// Raw wall times of the command, ns, in run order.
    pub samples_ns: Vec<u64>,
}

/// Median of raw samples, ns (stats' one definition).
fn median(samples: &[u64]) -> Option<f64> {
    let v: Vec<f64> = samples.iter().map(|&x| x as f64).collect();
    crate::stats::median(&v)
}

/// The median of the variant named `name` among `variants`.
fn median_of(variants: &[Variant], name: &str) -> Option<f64> {
    variants
        .iter()
        .find(|v| v.name == name)
        .and_then(|v| median(&v.samples_ns))
}

impl Overhead {
    /// median(variant) / median(untraced).
    pub fn ratio(&self, name: &str) -> Option<f64> {
        Some(median_of(&self.variants, name)? / median_of(&self.variants, "untraced")?)
    }

    /// The cost of one probed call, ns: (median(variant) - median(untraced)) / the median
    /// calls per run. None without calls or either median.
    pub fn per_call_ns(&self, name: &str) -> Option<f64> {
        let calls = median(&self.calls_per_run).filter(|&c| c > 0.0)?;
        Some((median_of(&self.variants, name)? - median_of(&self.variants, "untraced")?) / calls)
    }

    pub fn render_text(&self) -> String {
        let mut o = String::new();
        let runs = self.variants.first().map_or(0, |v| v.samples_ns.len());
        let _ = writeln!(
            o,
            "Probe overhead on {}: `{}`, {runs} runs per variant, interleaved",
            self.kernel_release,
            self.command.join(" ")
        );
        let _ = writeln!(o, "probes: {}", self.probes.join(", "));
        for n in &self.notes {
            let _ = writeln!(o, "note: {n}");
        }
        let _ = writeln!(
            o,
            "{:<12} {:>12} {:>12} {:>12} {:>8}",
            "variant", "median", "min", "max", "ratio"
        );
        for v in &self.variants {
            let min = v.samples_ns.iter().min().copied().unwrap_or(0);
            let max = v.samples_ns.iter().max().copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "{:<12} {:>12} {:>12} {:>12} {:>8}",
                v.name,
                median(&v.samples_ns).map_or("-".into(), |m| fmt_ns(m as u64)),
                fmt_ns(min),
                fmt_ns(max),
                self.ratio(&v.name)
                    .map_or("-".into(), |r| format!("{r:.3}"))
            );
        }
        if let Some(calls) = median(&self.calls_per_run) {
            let per_call: Vec<String> = self
                .variants
                .iter()
                .skip(1)
                .filter_map(|v| {
                    self.per_call_ns(&v.name)
                        .map(|c| format!("{} {c:.0} ns", v.name))
                })
                .collect();
            let _ = writeln!(
                o,
                "per probed call ((median - untraced median) / {calls:.0} probe calls per run, \
                 counted by foliobench's probes): {}",
                per_call.join(", ")
            );
        }
        self.render_attach(&mut o);
        o
    }

    /// foliobench's whole start-attach-detach cost over bpftrace's (median of each).
    pub fn attach_ratio(&self) -> Option<f64> {
        Some(median_of(&self.attach, "foliobench trace")? / median_of(&self.attach, "bpftrace")?)
    }

    fn render_attach(&self, o: &mut String) {
        if self.attach.is_empty() {
            return;
        }
        let _ = writeln!(
            o,
            "start, attach the probes, run /bin/true, detach, exit (whole process, wall time):"
        );
        for v in &self.attach {
            let _ = writeln!(
                o,
                "  {:<16} median {:>10} (min {}, max {}, {} runs)",
                v.name,
                median(&v.samples_ns).map_or("-".into(), |m| fmt_ns(m as u64)),
                fmt_ns(v.samples_ns.iter().min().copied().unwrap_or(0)),
                fmt_ns(v.samples_ns.iter().max().copied().unwrap_or(0)),
                v.samples_ns.len()
            );
        }
        if let Some(r) = self.attach_ratio() {
            let _ = writeln!(o, "  foliobench trace / bpftrace: {r:.3}");
        }
    }
}

#[cfg(test)]
mod tests {
    fn counted(calls: u64, values: Vec<(u64, u64)>) -> ProbeStats {
        ProbeStats {
            probe: "folio_remove_rmap_ptes".into(),
            group: Group::Rmap,
            function: "folio_remove_rmap_ptes".into(),
            flavour: Flavour::Fentry,
            calls,
            returns: calls,
            total_ns: calls * 100,
            latency_log2: vec![calls, 0],
            arg_name: Some("nr_pages".into()),
            arg_log2: vec![0, calls],
            arg_sum: values.iter().map(|(v, n)| v * n).sum(),
            arg_values: values,
            arg_values_dropped: 0,
            stacks: vec![],
            outside_vmas: 0,
        }
    }

    /// Call paths, read around a span: the span's own calls per path, most first; a path
    /// prints innermost first.
    #[test]
    fn stacks_since_are_the_spans_own_paths() {
        let path = |f: &[&str], calls, arg_sum| StackCount {
            frames: f.iter().map(|s| s.to_string()).collect(),
            calls,
            arg_sum,
        };
        let fast = [
            "try_grab_folio_fast",
            "gup_fast_pud_leaf",
            "gup_fast_fallback",
        ];
        let slow = ["try_grab_folio", "follow_page_mask", "__get_user_pages"];
        let before = vec![path(&fast, 2, 524288)];
        let now = vec![path(&fast, 3, 786432), path(&slow, 2, 262144)];
        let d = stacks_since(&now, &before);
        assert_eq!(d, vec![path(&slow, 2, 262144), path(&fast, 1, 262144)]);
        assert_eq!(d[1].path(2), "try_grab_folio_fast ← gup_fast_pud_leaf ← …");
        assert_eq!(path(&[], 1, 0).path(3), "(no stack)");
        // A path with nothing new is not the span's.
        assert!(stacks_since(&before, &before).is_empty());
    }

    /// One loaded probe, read around each operation: the operation's own calls.
    #[test]
    fn since_is_what_happened_in_between() {
        let before = counted(3, vec![(1, 3)]);
        let after = counted(35, vec![(1, 3), (512, 32)]);
        let d = after.since(&before);
        assert_eq!((d.calls, d.returns, d.total_ns), (32, 32, 3200));
        assert_eq!(d.arg_values, vec![(512, 32)]);
        assert_eq!(d.arg_sum, 512 * 32);
        assert_eq!(d.latency_log2, vec![32, 0]);
        assert_eq!(d.mode(), Some(512));
        assert_eq!(counted(0, vec![]).mode(), None);
    }

    /// memmap_pages_add(-512) 16 times (a teardown), then +512 16 times (a creation),
    /// under one attachment: the creation's sum is +8192, read from a kernel sum that went
    /// below zero and back.
    #[test]
    fn a_signed_arguments_sum_is_taken_wrapping() {
        let mut before = counted(16, vec![]);
        before.arg_sum = (-8192i64) as u64;
        let mut after = counted(32, vec![]);
        after.arg_sum = 0;
        assert_eq!(after.since(&before).arg_sum as i64, 8192);
        // And back down: a teardown read on its own is -8192.
        assert_eq!(before.since(&after).arg_sum as i64, -8192);
    }

    #[test]
    fn frequent_values_come_first_and_the_rest_is_counted() {
        let v = [(1, 3), (2, 1), (3, 9), (4, 1), (5, 2), (6, 1)];
        assert_eq!(
            frequent_values(&v),
            "3x9 1x3 5x2 2x1 and 2 calls with 2 other values"
        );
        assert_eq!(frequent_values(&[(512, 2)]), "512x2");
    }

    use super::*;

    fn stats() -> ProbeStats {
        let mut lat = vec![0u64; 64];
        lat[10] = 3;
        lat[12] = 1;
        ProbeStats {
            probe: "pin_user_pages_fast".into(),
            group: Group::Pin,
            function: "pin_user_pages_fast".into(),
            flavour: Flavour::Fentry,
            calls: 4,
            returns: 4,
            total_ns: 8000,
            latency_log2: lat,
            arg_name: Some("nr_pages".into()),
            arg_log2: vec![],
            arg_values: vec![(2048, 4)],
            arg_sum: 8192,
            arg_values_dropped: 0,
            stacks: vec![],
            outside_vmas: 0,
        }
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3, 1, 2]), Some(2.0));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2.5));
        assert_eq!(median(&[]), None);
        let o = Overhead {
            schema_version: TRACE_SCHEMA_VERSION,
            kernel_release: "k".into(),
            command: vec!["x".into()],
            probes: vec![],
            variants: vec![
                Variant {
                    name: "untraced".into(),
                    samples_ns: vec![100, 110, 90],
                },
                Variant {
                    name: "foliobench".into(),
                    samples_ns: vec![120, 130, 110],
                },
            ],
            notes: vec![],
            attach: vec![],
            calls_per_run: vec![],
        };
        assert_eq!(o.ratio("foliobench"), Some(1.2));
        assert_eq!(o.ratio("bpftrace"), None);
        let t = o.render_text();
        assert!(t.contains("foliobench") && t.contains("1.200"), "{t}");
        assert!(!t.contains("start, attach"), "{t}");
        // No calls counted: no per-call figure, not a division by nothing.
        assert_eq!(o.per_call_ns("foliobench"), None);
        assert!(!t.contains("per probed call"), "{t}");
        let o = Overhead {
            calls_per_run: vec![4, 5, 6],
            ..o
        };
        // (120 - 100) / 5 calls.
        assert_eq!(o.per_call_ns("foliobench"), Some(4.0));
        assert!(o.render_text().contains("foliobench 4 ns"));
        assert_eq!(o.attach_ratio(), None);
        let o = Overhead {
            attach: vec![
                Variant {
                    name: "foliobench trace".into(),
                    samples_ns: vec![300, 200, 250],
                },
                Variant {
                    name: "bpftrace".into(),
                    samples_ns: vec![1000, 900, 1100],
                },
            ],
            ..o
        };
        assert_eq!(o.attach_ratio(), Some(0.25));
        let t = o.render_text();
        assert!(t.contains("foliobench trace / bpftrace: 0.250"), "{t}");
    }

    #[test]
    fn log2_buckets_and_bars() {
        let mut o = String::new();
        render_log2(&mut o, "nsecs", &stats().latency_log2);
        let lines: Vec<&str> = o.lines().collect();
        assert_eq!(lines.len(), 4, "header + buckets 10..=12:\n{o}");
        assert!(
            lines[1].contains("1024 -> 2047")
                && lines[1].contains(": 3 ")
                && lines[1].contains(&"*".repeat(40))
        );
        assert!(lines[2].contains("2048 -> 4095") && lines[2].contains(": 0 "));
        assert!(
            lines[3].contains("4096 -> 8191")
                && lines[3].contains(&format!("|{}{}|", "*".repeat(13), " ".repeat(27)))
        );
        let mut empty = String::new();
        render_log2(&mut empty, "nsecs", &[0; 64]);
        assert!(empty.is_empty());
    }

    #[test]
    fn report_text_has_counts_values_and_reasons() {
        let r = TraceReport {
            schema_version: TRACE_SCHEMA_VERSION,
            kernel_release: "6.12".into(),
            command: vec!["x".into()],
            command_status: Some(0),
            duration_ns: 5_000_000,
            probes: vec![stats()],
            not_traced: vec![NotTraced {
                probe: "try_grab_folio".into(),
                reason: "neither fentry nor kprobes".into(),
            }],
            notes: vec![],
        };
        let t = r.render_text();
        assert!(t.contains("calls 4, avg 2.00 us, total 8.00 us"), "{t}");
        assert!(t.contains("2048 : 4 "), "{t}");
        assert!(
            t.contains("try_grab_folio: neither fentry nor kprobes"),
            "{t}"
        );
        assert_eq!(stats().value_count(2048), 4);
        assert_eq!(stats().value_count(1), 0);
    }

    /// Buckets: 3 calls in [4, 8) ns, 6 in [1024, 2048), 1 in [2^20, 2^21).
    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        let mut slots = vec![0u64; 64];
        slots[2] = 3;
        slots[10] = 6;
        slots[20] = 1;
        assert_eq!(log2_percentile(&slots, 0.3), Some(8));
        assert_eq!(log2_percentile(&slots, 0.5), Some(2048));
        assert_eq!(log2_percentile(&slots, 0.9), Some(2048));
        assert_eq!(log2_percentile(&slots, 0.99), Some(1 << 21));
        assert_eq!(log2_percentile(&[0, 0], 0.5), None);
        assert_eq!(
            percentiles_text(&slots).unwrap(),
            format!(
                "p50 <= {}, p90 <= {}, p99 <= {}",
                fmt_ns(2048),
                fmt_ns(2048),
                fmt_ns(1 << 21)
            )
        );
        assert_eq!(percentiles_text(&[0, 0]), None);
    }
}
