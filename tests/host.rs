//! `foliobench doctor` on the machine the tests run on, checked against independent
//! evidence (bpftrace, bpftool, /proc/kallsyms, sysfs) rather than expected values, so the
//! same test holds on a host that allows everything and on one that refuses fentry and
//! kprobes, as the machines here do.

mod common;

use std::process::Command;

use common::*;

fn doctor() -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("doctor.json");
    let out = run(foliobench()
        .args(["doctor", "--json", "--out"])
        .arg(&out_file));
    assert!(out.status.success(), "doctor exits 0 when it could probe");
    let stdout: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let file = read_json(&out_file);
    assert_eq!(
        stdout["functions"], file["functions"],
        "--out writes the same report"
    );
    file
}

fn bpftrace_attaches(probe: &str) -> Option<bool> {
    let st = Command::new("timeout")
        .args(["60", "bpftrace", "-e", &format!("{probe} {{ exit(); }}")])
        .output()
        .ok()?;
    if st.status.code() == Some(127) {
        return None; // no bpftrace
    }
    Some(st.status.success())
}

#[test]
fn doctor_flavours_agree_with_bpftrace() {
    let d = doctor();
    // Our own program ran for every flavour it calls usable (fires needs real hits).
    for f in ["fentry", "kprobe", "tracepoint"] {
        let e = flavour(&d, f);
        assert!(
            !e["reason"].as_str().unwrap().is_empty(),
            "{f} has a reason"
        );
        if usable(&d, f) {
            assert!(e["reason"].as_str().unwrap().starts_with("ran "), "{e}");
        }
    }
    let Some(kfunc) = bpftrace_attaches("kfunc:vfs_read") else {
        panic!("bpftrace is not installed: scripts/setup.sh installs it");
    };
    assert_eq!(
        usable(&d, "fentry"),
        kfunc,
        "fentry verdict vs bpftrace kfunc:vfs_read"
    );
    let kprobe = bpftrace_attaches("kprobe:vfs_read").unwrap();
    assert_eq!(
        usable(&d, "kprobe"),
        kprobe,
        "kprobe verdict vs bpftrace kprobe:vfs_read"
    );
    let tp = bpftrace_attaches("tracepoint:syscalls:sys_enter_read").unwrap();
    assert_eq!(
        usable(&d, "tracepoint"),
        tp,
        "tracepoint verdict vs bpftrace"
    );
}

#[test]
fn host_refusals_are_explained_and_summarised() {
    let d = doctor();
    let cannot: Vec<&str> = d["summary"]["cannot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    if !usable(&d, "fentry") && !usable(&d, "kprobe") {
        // The machines here: fentry refused (EPERM), no kprobes.
        let fentry = flavour(&d, "fentry")["reason"].as_str().unwrap();
        assert!(
            fentry.contains("refused") || fentry.contains("no BTF"),
            "{fentry}"
        );
        assert!(
            cannot
                .iter()
                .any(|c| c.contains("neither fentry nor kprobes")),
            "{cannot:?}"
        );
        for f in d["functions"].as_array().unwrap() {
            assert!(
                f["mechanism"].is_null(),
                "nothing is traceable by function here: {f}"
            );
        }
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        assert_eq!(d["btf"]["available"], false);
    }
    let pmem = d["pmem"]["regions"].as_array().unwrap();
    if pmem.is_empty() {
        assert_eq!(d["devdax"]["available"], false);
        assert!(
            cannot.iter().any(|c| c.starts_with("devdax measurements")),
            "{cannot:?}"
        );
    }
    if !std::path::Path::new("/sys/kernel/debug/gup_test").exists() {
        assert_eq!(d["gup_test"]["available"], false);
    }
}

#[test]
fn doctor_facts_match_the_kernel() {
    let d = doctor();
    // sizeof(struct page), independently from bpftool's BTF dump.
    let dump = Command::new("bpftool")
        .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dump.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("STRUCT 'page' size="))
        .expect("struct page in BTF");
    let size: u64 = line
        .split("size=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(d["struct_page"]["size"], size);

    // Every function doctor calls absent is absent from kallsyms; every present one is there.
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let names: std::collections::HashSet<&str> = kallsyms
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    for f in d["functions"].as_array().unwrap() {
        if let Some(name) = f["function"].as_str() {
            assert!(
                names.contains(name),
                "{name} reported present but not in kallsyms"
            );
        } else {
            assert!(
                !names.contains(f["probe"].as_str().unwrap()),
                "{f} reported absent"
            );
        }
    }

    // THP sizes as sysfs lists them.
    let mut sizes: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/transparent_hugepage")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_prefix("hugepages-")?
                        .strip_suffix("kB")?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    let got: Vec<u64> = d["thp"]["sizes"]
        .as_array()
        .map(|a| a.iter().map(|s| s["kb"].as_u64().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(got, sizes);

    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(d["kernel"]["release"], release.trim());
}

#[test]
fn bad_arguments_exit_2_with_a_message() {
    let out = run(foliobench().args(["doctor", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(foliobench().args(["vm", "--kernel", "nonsense"]));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown kernel spec 'nonsense'") && err.contains("debian:6.12"),
        "{err}"
    );
    let out = run(foliobench().args(["vm", "--kernel", "debian:latest"]));
    assert_eq!(out.status.code(), Some(2));
    let out = run(foliobench().args(["vm", "--pmem", "100M"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("multiple of 128M"));
    let out = run(foliobench().args(["vm", "--pmem", "1T"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("available"));
    let out = run(foliobench().args(["vm", "--timeout", "soon"]));
    assert_eq!(out.status.code(), Some(2));
    // An unwritable --out is refused without leaving a partial file.
    let out = run(foliobench().args(["doctor", "--out", "/nonexistent-dir/doctor.json"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(!std::path::Path::new("/nonexistent-dir").exists());
}
