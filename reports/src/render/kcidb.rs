//! A comparison as KCIDB I/O JSON (schema v5.3), the format KernelCI's database takes:
//! one checkout and one build per kernel compared, one test per metric of the candidate
//! (PASS, FAIL for a regression or a loss, SKIP where it could not be compared) with its
//! figures in `misc`, and one FAIL test per loss that is not a metric.

use serde_json::{json, Value};

use crate::compare::{Comparison, Row, RunInfo, Verdict};

const ORIGIN: &str = "foliobench";

/// FNV-1a: a stable id from a run's identity (no cryptographic claim).
fn fnv(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

fn run_id(r: &RunInfo) -> String {
    format!(
        "{ORIGIN}:{}",
        fnv(&format!("{}|{}|{}", r.kernel_release, r.started, r.file))
    )
}

/// A KCIDB test path: dot-separated segments of `[a-zA-Z0-9_-]`.
pub fn test_path(key: &str) -> String {
    let seg = |w: &str| -> String {
        w.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    std::iter::once(ORIGIN.to_string())
        .chain(key.split_whitespace().map(seg))
        .collect::<Vec<_>>()
        .join(".")
}

fn status(r: &Row, allow_missing: bool) -> &'static str {
    match r.verdict {
        Verdict::Regression => "FAIL",
        Verdict::Lost if !allow_missing => "FAIL",
        Verdict::Lost | Verdict::Missing | Verdict::Incomparable => "SKIP",
        Verdict::Same | Verdict::Improvement => "PASS",
    }
}

fn checkout_and_build(r: &RunInfo, side: &str) -> (Value, Value) {
    let id = run_id(r);
    let checkout = json!({
        "id": id,
        "origin": ORIGIN,
        "comment": format!("{side}: {}", r.kernel_release),
        "valid": true,
    });
    let build = json!({
        "id": format!("{id}:build"),
        "origin": ORIGIN,
        "checkout_id": id,
        "architecture": "x86_64",
        "comment": r.kernel_release,
        "status": "PASS",
        "misc": {"results_file": r.file, "tool_version": r.tool_version},
    });
    (checkout, build)
}

/// The comparison as one KCIDB I/O object.
pub fn render(c: &Comparison) -> String {
    let (bc, bb) = checkout_and_build(&c.base, "baseline");
    let (cc, cb) = checkout_and_build(&c.candidate, "candidate");
    let build_id = cb["id"].as_str().unwrap_or_default().to_string();
    let env = json!({"comment": format!("{} CPU", c.candidate.cpu)});
    let mut tests: Vec<Value> = c
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut t = json!({
                "id": format!("{build_id}:{i}"),
                "build_id": build_id,
                "origin": ORIGIN,
                "path": test_path(&r.key),
                "status": status(r, c.allow_missing),
                "environment": env,
                "comment": r.why,
                "misc": {
                    "metric": r.key,
                    "unit": r.unit,
                    "better": r.better,
                    "verdict": r.verdict,
                    "base_kernel": c.base.kernel_release,
                    "base_median": r.base.as_ref().map(|s| s.median),
                    "candidate_median": r.candidate.as_ref().map(|s| s.median),
                    "change_pct": r.change_pct,
                    "p_value": r.p_value,
                    "p_adjusted": r.p_adjusted,
                },
            });
            if let Some(s) = &r.candidate {
                t["number"] = json!({"value": s.median, "unit": r.unit});
            }
            t
        })
        .collect();
    for (i, l) in c.lost.iter().enumerate() {
        let what = l.split(':').next().unwrap_or(l);
        tests.push(json!({
            "id": format!("{build_id}:lost{i}"),
            "build_id": build_id,
            "origin": ORIGIN,
            "path": test_path(&format!("lost {what}")),
            "status": if c.allow_missing { "SKIP" } else { "FAIL" },
            "environment": env,
            "comment": l,
        }));
    }
    let doc = json!({
        "version": {"major": 5, "minor": 3},
        "checkouts": [bc, cc],
        "builds": [bb, cb],
        "tests": tests,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_kcidb_paths() {
        assert_eq!(
            test_path("pin devdax:2M:mem io_uring pin"),
            "foliobench.pin.devdax_2M_mem.io_uring.pin"
        );
        assert_eq!(
            test_path("rmap munmap anon 2048K rmap_calls"),
            "foliobench.rmap.munmap.anon.2048K.rmap_calls"
        );
    }
}
