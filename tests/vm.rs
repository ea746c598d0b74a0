//! `foliobench vm` end to end: boots real kernels under QEMU (virtme-ng) and checks what
//! foliobench reports inside them. Each test boots its own VM; they run one at a time.
// A test is a scenario read top to bottom: the 80-line lint is for the tool's functions.
#![allow(clippy::too_many_lines)]

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Two VMs at once would not fit the CI machine's 2 cores in reasonable time.
static ONE_VM: Mutex<()> = Mutex::new(());

/// Runs `foliobench vm [vm_args] --timeout 10m -- [guest]` from a fresh directory, which
/// the guest writes its results to (so reading them proves they reach the host); one VM at
/// a time. Asserts the run succeeded.
///
/// On the wall clock unless `vm_args` names a clock: these tests assert the kernel's
/// counts, which no clock changes, and the instruction clock costs about half as much
/// host time again under TCG (a pin run: 19.5 s against 12.9 s). The tests about time
/// (the gates, `instruction_clock_repeats_between_boots`) and doctor's run on the default.
fn in_vm(vm_args: &[&str], guest: &[&str]) -> (std::process::Output, tempfile::TempDir) {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = run(foliobench()
        .arg("vm")
        .args(if vm_args.contains(&"--kernel") {
            &[][..]
        } else {
            &["--kernel", DEBIAN_612][..]
        })
        .args(vm_args)
        .args(if vm_args.contains(&"--clock") {
            &[][..]
        } else {
            &["--clock", "wall"][..]
        })
        .args(["--timeout", "10m", "--"])
        .args(guest)
        .current_dir(dir.path()));
    assert!(out.status.success(), "foliobench vm failed");
    (out, dir)
}

/// Runs a shell command line in the VM: `trace` of a syscall the line does not make serves
/// as the guest's shell runner (the guest command is foliobench's).
fn in_vm_sh(vm_args: &[&str], line: &str) -> (std::process::Output, tempfile::TempDir) {
    in_vm(
        vm_args,
        &[
            "trace",
            "--probe",
            "sys_io_uring_register",
            "--out",
            "outer.json",
            "--",
            "sh",
            "-c",
            line,
        ],
    )
}

/// `doctor` in a VM; returns its report.
fn doctor_in_vm(vm_args: &[&str]) -> Value {
    let (out, dir) = in_vm(vm_args, &["doctor", "--out", "doctor.json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("foliobench can measure here:"),
        "the guest's output is streamed"
    );
    assert!(
        !stdout
            .lines()
            .any(|l| l.starts_with("[ ") && l.contains("] ")),
        "kernel log is filtered from stdout"
    );
    let d = read_json(&dir.path().join("doctor.json"));
    // The accelerator the launcher announced is the one the guest recorded.
    let said = String::from_utf8_lossy(&out.stderr);
    let accel = if said.contains(", KVM (") {
        "kvm"
    } else {
        "tcg"
    };
    assert!(
        said.contains("software emulation (TCG)") || accel == "kvm",
        "{said}"
    );
    assert_eq!(d["kernel"]["accelerator"], accel, "{}", d["kernel"]);
    // And the clock it announced: in_vm's wall clock unless a clock is named; auto's
    // instruction clock under TCG.
    let clock = match (accel, vm_args.windows(2).find(|w| w[0] == "--clock")) {
        (_, None) => "wall",
        (_, Some(w)) if w[1] != "auto" => w[1],
        ("tcg", _) => "instructions",
        _ => "wall",
    };
    assert_eq!(d["kernel"]["clock"]["kind"], clock, "{}", d["kernel"]);
    let icount = clock == "instructions";
    assert_eq!(said.contains("clock: instruction time"), icount, "{said}");
    assert_eq!(
        d["kernel"]["clock"]["qemu_options"] == "-icount shift=0,sleep=off",
        icount,
        "{}",
        d["kernel"]
    );
    d
}

#[test]
fn debian_612_supports_what_the_sweep_needs() {
    let d = doctor_in_vm(&["--clock", "auto"]);
    // Exactly the pinned kernel, and the exact package it came from.
    let release = DEBIAN_612.strip_prefix("debian:").unwrap();
    assert_eq!(d["kernel"]["release"], release);
    let package = d["kernel"]["package"].as_str().unwrap();
    assert!(
        package.starts_with(&format!("linux-image-{release}=6.12.117-")),
        "{package}"
    );
    assert!(d["kernel"]["cmdline"]
        .as_str()
        .unwrap()
        .contains("memmap=2G!4G"));
    assert!(
        d["kernel"]["config"]
            .as_str()
            .unwrap()
            .contains("config-6.12"),
        "vm passes the kernel config"
    );
    for f in ["fentry", "kprobe", "tracepoint"] {
        assert!(usable(&d, f), "{f} in the 6.12 guest: {}", flavour(&d, f));
    }
    assert_eq!(d["devdax"]["available"], true, "{}", d["devdax"]);
    assert_eq!(d["fsdax"]["available"], true, "{}", d["fsdax"]);
    let region = &d["pmem"]["regions"][0];
    assert_eq!(region["size"], 2u64 << 30, "2G of emulated pmem");
    assert_eq!(d["struct_page"]["size"], 64);
    assert_eq!(d["struct_page"]["optimization"]["available"], true);
    assert_eq!(d["nr_memmap_pages"]["available"], true);
    assert_eq!(probe(&d, "memmap_init_zone_device")["mechanism"], "fentry");
    assert_eq!(probe(&d, "folio_add_anon_rmap_ptes")["mechanism"], "fentry");
    assert_eq!(
        probe(&d, "dev_dax_probe")["mechanism"],
        "fentry",
        "module BTF of device_dax"
    );
    // Inlined on 6.12 (seen in the test VM): reported, not crashed on.
    let dup = probe(&d, "folio_try_dup_anon_rmap_ptes");
    assert!(
        dup["mechanism"].is_null() && dup["reason"].as_str().unwrap().contains("inlined"),
        "{dup}"
    );
    let clone = probe(&d, "__init_zone_device_page");
    assert_eq!(clone["mechanism"], "kprobe", "{clone}");
    assert_eq!(d["gup_test"]["available"], false);
    assert_eq!(d["io_uring"]["available"], true);

    // The host gives different, true answers (different kernel, no pmem here).
    let host = foliobench().args(["doctor", "--json"]).output().unwrap();
    let host: Value = serde_json::from_slice(&host.stdout).unwrap();
    assert_ne!(host["kernel"]["release"], d["kernel"]["release"]);
    assert_ne!(host["summary"], d["summary"]);
}

#[test]
fn debian_61_reports_what_it_lacks() {
    let d = doctor_in_vm(&["--kernel", DEBIAN_61]);
    assert_eq!(
        d["kernel"]["release"],
        DEBIAN_61.strip_prefix("debian:").unwrap()
    );
    assert!(usable(&d, "fentry"), "{}", flavour(&d, "fentry"));
    assert_eq!(d["devdax"]["available"], true, "{}", d["devdax"]);
    // No nr_memmap_pages before 6.11, the pre-folio rmap names, no arch gate before 6.4.
    assert_eq!(d["nr_memmap_pages"]["available"], false);
    let rmap = probe(&d, "folio_add_anon_rmap_ptes");
    assert_eq!(rmap["function"], "page_add_anon_rmap", "{rmap}");
    assert_eq!(
        probe(&d, "folio_remove_rmap_ptes")["function"],
        "page_remove_rmap"
    );
    let why = d["struct_page"]["optimization"]["reason"].as_str().unwrap();
    assert!(why.contains("predates"), "{why}");
    let cannot = d["summary"]["cannot"].to_string();
    assert!(cannot.contains("nr_memmap_pages"), "{cannot}");
}

/// The row of a pin results file for one memory and driver.
fn pin_row<'a>(r: &'a Value, memory: &str, driver: &str) -> &'a Value {
    r["pin"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["memory"] == memory && x["driver"] == driver)
        .unwrap_or_else(|| panic!("no pin row {memory} {driver}"))
}

fn grabs_per_page(row: &Value) -> f64 {
    let g = &row["grabs"];
    g["calls"].as_f64().unwrap() / g["pages"].as_f64().unwrap()
}

/// A measured pin row: its timed rounds, and the probe layer's references agreeing with
/// the pages the driver pinned.
fn assert_pinned(row: &Value, pages: u64, repeat: usize) {
    assert_eq!(row["status"], "measured", "{row}");
    assert_eq!(row["pages"], pages, "{row}");
    let samples = row["samples"].as_array().unwrap();
    assert_eq!(samples.len(), repeat, "{row}");
    assert!(
        samples.iter().all(|s| s["pin_ns"].as_u64().unwrap() > 0),
        "{row}"
    );
    let g = &row["grabs"];
    assert_eq!(g["pages"], pages, "{row}");
    assert_eq!(g["refs"], pages, "one reference per pinned page: {row}");
}

/// The CONFIG_GUP_TEST kernel: the kernel's own gup_test benchmarks run as pin drivers on
/// devdax and anonymous THP, and O_DIRECT uses the built-in null_blk through configfs.
#[test]
fn gup_test_driver_on_the_guptest_kernel() {
    let image = shared_dir().join("kernels/bzImage-6.12-guptest");
    assert!(image.exists(), "{} is part of ../shared", image.display());
    let (out, dir) = in_vm(
        &["--kernel", image.to_str().unwrap()],
        &[
            "run",
            "--suite",
            "pin",
            "--repeat",
            "2",
            "--size",
            "256M",
            "--driver",
            "gup_test,odirect",
            "--geometry",
            "devdax:2M:mem",
            "--geometry",
            "anon:thp",
            "--out",
            "pin.json",
        ],
    );
    let r = read_json(&dir.path().join("pin.json"));
    let pages = 65536;
    for memory in ["devdax:2M:mem", "anon:thp"] {
        for driver in [
            "gup_test:pin_fast",
            "gup_test:pin_longterm",
            "gup_test:gup_fast",
            "odirect",
        ] {
            let row = pin_row(&r, memory, driver);
            assert_pinned(row, pages, 2);
            if driver.starts_with("gup_test") {
                // gup_test times the put itself.
                assert!(row["samples"][0]["unpin_ns"].as_u64().is_some(), "{row}");
            }
        }
    }
    // GUP-fast on devdax grabs one reference per base page on 6.12 (seen in the test VM);
    // on anonymous THP, one per PMD-mapped folio.
    assert_eq!(
        grabs_per_page(pin_row(&r, "devdax:2M:mem", "gup_test:pin_fast")),
        1.0
    );
    assert!(grabs_per_page(pin_row(&r, "anon:thp", "gup_test:pin_fast")) < 0.01);
    // The kernel's pin counters: FOLL_PIN benchmarks move them by the references the probes
    // counted, GUP_FAST_BENCHMARK (FOLL_GET) does not move them: the witness's negative.
    for memory in ["devdax:2M:mem", "anon:thp"] {
        let pin = &pin_row(&r, memory, "gup_test:pin_fast")["grabs"];
        assert_eq!(pin["foll_pin"]["acquired"], pin["refs"], "{memory}: {pin}");
        assert_eq!(pin["foll_pin"]["released"], pin["refs"], "{memory}: {pin}");
        let get = &pin_row(&r, memory, "gup_test:gup_fast")["grabs"];
        assert!(get["refs"].as_u64().unwrap() > 0, "{memory}: {get}");
        assert_eq!(get["foll_pin"]["acquired"], 0, "{memory}: {get}");
    }
    let device = r["pin"]["odirect_device"].as_str().unwrap();
    assert!(device.starts_with("null_blk"), "{device}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("gup_test:pin_longterm"));
}

/// The pin suite on Debian 6.12 with io_uring and O_DIRECT: every devdax order, fsdax and
/// anonymous THP measured; fsdax long-term pins reported as refused; the probe layer's
/// references match the pages pinned; the io_uring_register syscalls seen by an independent
/// tracepoint match the rounds run; null_blk, the dax mount and the namespace are put back.
#[test]
fn pin_suite_on_612() {
    let fb = env!("CARGO_BIN_EXE_foliobench");
    let inner = format!(
        "{fb} run --suite pin --repeat 2 --driver io_uring,odirect \
           --geometry devdax:4K:mem --geometry devdax:2M:mem --geometry devdax:1G:mem \
           --geometry fsdax:mem --geometry anon:thp --geometry hugetlb:2M --out pin.json; \
         echo $? > pin.status; cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages > pool.txt; \
         ls /sys/kernel/config/nullb > nullb.txt; grep -c '^null_blk ' /proc/modules > modules.txt; \
         grep -c /run/foliobench /proc/mounts > mounts.txt"
    );
    let (out, dir) = in_vm(
        &[],
        &[
            "trace",
            "--probe",
            "sys_io_uring_register",
            "--out",
            "t.json",
            "--",
            "sh",
            "-c",
            &inner,
        ],
    );
    let read = |f: &str| {
        std::fs::read_to_string(dir.path().join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("pin.status"), "0");
    let r = read_json(&dir.path().join("pin.json"));
    let pages = 262144;
    for memory in [
        "devdax:4K:mem",
        "devdax:2M:mem",
        "devdax:1G:mem",
        "anon:thp",
        "hugetlb:2M",
    ] {
        for driver in ["io_uring", "odirect"] {
            assert_pinned(pin_row(&r, memory, driver), pages, 2);
        }
    }
    // O_DIRECT in 1 MiB transfers: one GUP call of 256 pages each, so two grabs per THP
    // wherever the allocator put it (in 1 GiB transfers, two boots of the main job took
    // 6878 and 8545 grabs, as physically adjacent THPs merged into one bio segment).
    let thp = pin_row(&r, "anon:thp", "odirect");
    assert_eq!(thp["grabs"]["calls"], pages / 256, "{}", thp["grabs"]);
    let prepared = r["pin"]["prepared"].as_array().unwrap();
    let runs = prepared.iter().find(|p| p["memory"] == "anon:thp").unwrap()["pages"]
        ["contiguous_runs"]
        .as_u64()
        .unwrap();
    assert!(
        (1..=512).contains(&runs),
        "THPs in {runs} physically contiguous runs"
    );
    // devdax:2M vs hugetlb:2M, the memory HVO was made for: the long-term pin of 2M devdax
    // takes a reference per base page on 6.12 (slow GUP, follow_devmap_pmd), HugeTLB's one
    // per folio (GUP-fast: 512 grabs of 512 references). Seen at 64 MiB: 16384 grabs and
    // 9.07 ms against 32 grabs and 0.78 ms.
    let hugetlb = &pin_row(&r, "hugetlb:2M", "io_uring")["grabs"];
    assert_eq!(hugetlb["calls"], 512, "{hugetlb}");
    // Where 6.12 grabs 2M devdax per base page: slow GUP's devmap path, by kernel stack.
    let g = &pin_row(&r, "devdax:2M:mem", "io_uring")["grabs"];
    // One call's stack in 64 is taken (the grab round makes one call per page): 4096 of
    // the 262144 grabs, every one on this path.
    let f = grab_function(g, "try_grab_folio").unwrap();
    assert_eq!(f["stacks_every"], 64, "{f}");
    let slow = &f["stacks"][0];
    assert_eq!(slow["calls"], 262144 / 64, "{slow}");
    assert_eq!(
        slow["frames"].as_array().unwrap()[..2],
        [json!("try_grab_folio"), json!("follow_devmap_pmd")],
        "{slow}"
    );
    // The kernel's own pin counters witness the probes: every reference acquired and
    // released in the round; while registered, io_uring holds one pin per folio of its
    // coalesced buffer (seen: 512 for 1 GiB of 2M, 1 for a 1G page).
    for (memory, held) in [
        ("devdax:1G:mem", 1),
        ("devdax:2M:mem", 512),
        ("hugetlb:2M", 512),
    ] {
        let f = &pin_row(&r, memory, "io_uring")["grabs"]["foll_pin"];
        assert_eq!(f["acquired"], 262144, "{memory}: {f}");
        assert_eq!(f["released"], 262144, "{memory}: {f}");
        assert_eq!(f["held"], held, "{memory}: {f}");
    }
    assert_eq!(
        grabs_per_page(pin_row(&r, "devdax:2M:mem", "io_uring")),
        1.0
    );
    // The pool reserved for the row is put back as found.
    assert_eq!(read("pool.txt"), "0");
    assert_pinned(pin_row(&r, "fsdax:mem", "odirect"), pages, 2);
    let refused = pin_row(&r, "fsdax:mem", "io_uring");
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(refused["errno"], "EOPNOTSUPP", "{refused}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("refused by kernel (EOPNOTSUPP)"),
        "{stdout}"
    );

    // Long-term pins of a 1G devdax page take its references in one batch
    // (__get_user_pages' page_increm); 4K takes one per page.
    let io = |m: &str| grabs_per_page(pin_row(&r, m, "io_uring"));
    assert_eq!(io("devdax:4K:mem"), 1.0);
    assert!(io("devdax:1G:mem") < 0.001, "{}", io("devdax:1G:mem"));
    // GUP-fast pins anonymous THP one folio at a time.
    assert!(io("anon:thp") < 0.01);
    let checks = r["pin"]["checks"].to_string();
    assert!(
        checks.contains("io_uring devdax:*:mem: pin time falls with the order"),
        "{checks}"
    );
    // The positive control of the pfnmap row's "no struct page": every devdax and fsdax pfn
    // has one in the vmemmap, though kpageflags shows none of them on 6.12 (NOPAGE).
    let dax: Vec<&Value> = r["pin"]["prepared"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["memory"] != "anon:thp" && p["memory"] != "hugetlb:2M")
        .collect();
    assert_eq!(dax.len(), 4, "{}", r["pin"]["prepared"]);
    for p in dax {
        let f = &p["pages"];
        if p["memory"] == "devdax:1G:mem" {
            // 6.12's pagemap walk gives no pfn for a PUD-mapped devdax page: the dax
            // device's physical range gives them, and says so.
            let source = f["pfn_source"].as_str().unwrap_or_default();
            assert!(
                source.contains("the dax device's physical range")
                    && source.contains("no pfn in /proc/self/pagemap"),
                "{p}"
            );
        }
        assert_eq!(f["present"], pages, "{}: {f}", p["memory"]);
        assert_eq!(f["vmemmap_struct_pages"], pages, "{}: {f}", p["memory"]);
        assert!(
            f["flags"].to_string().contains("NOPAGE"),
            "{}: {f}",
            p["memory"]
        );
    }
    let struct_page_checks: Vec<&Value> = r["pin"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["what"]
                .as_str()
                .unwrap()
                .ends_with("a struct page behind every pfn")
        })
        .collect();
    assert_eq!(struct_page_checks.len(), 4, "{checks}");
    let ok = struct_page_checks
        .iter()
        .filter(|c| c["measured"] == true && c["agrees"] == true)
        .count();
    assert_eq!(
        ok, 4,
        "4K, 2M, 1G (by its physical range) and fsdax: {checks}"
    );

    // 5 memories x (1 warm-up + 2 timed + 3 traced: 2 latency rounds, as many as --repeat
    // up to 3, and 1 grab round; + 1 round read while its pins are held) rounds x
    // (register + unregister), and one refused registration on fsdax.
    let t = read_json(&dir.path().join("t.json"));
    assert_eq!(t["probes"][0]["calls"], 71, "{}", t["probes"][0]);
    // Kernel latency per GUP call from those rounds' histograms.
    assert_eq!(pin_row(&r, "devdax:4K:mem", "io_uring")["kernel_rounds"], 2);
    assert!(stdout.contains("kpin per GUP call: p50 <="), "{stdout}");

    let device = r["pin"]["odirect_device"].as_str().unwrap();
    assert!(device.starts_with("null_blk"), "{device}");
    assert!(
        !read("nullb.txt").contains("foliobench"),
        "null_blk device removed"
    );
    assert_eq!(read("modules.txt"), "0", "null_blk unloaded again");
    assert_eq!(read("mounts.txt"), "0", "dax filesystem unmounted");
    assert!(
        r["context"]["restored"]
            .as_str()
            .unwrap()
            .starts_with("verified: namespace0.0 mode=fsdax map=mem"),
        "{}",
        r["context"]
    );
}

#[test]
fn guest_exit_status_is_returned() {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    // A namespace that does not exist: a usage error the guest finds (exit 2).
    let out = run(foliobench().args([
        "vm",
        "--kernel",
        DEBIAN_612,
        "--",
        "run",
        "--suite",
        "memmap",
        "--namespace",
        "namespace9.9",
    ]));
    assert_eq!(
        out.status.code(),
        Some(2),
        "the guest's usage error comes back as exit 2"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("namespace9.9"),
        "guest stderr is streamed"
    );
}

/// `--out` outside the current directory: the guest sees the host read-only there, so the
/// launcher shares that directory; the file must be on the host afterwards.
#[test]
fn results_land_where_the_user_asked() {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let cwd = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("doctor.json");
    let out = run(foliobench()
        .args(["vm", "--kernel", DEBIAN_612, "--timeout", "10m", "--"])
        .args(["doctor", "--out"])
        .arg(&file)
        .current_dir(cwd.path()));
    assert_eq!(out.status.code(), Some(0));
    let d = read_json(&file);
    assert_eq!(
        d["kernel"]["release"],
        DEBIAN_612.strip_prefix("debian:").unwrap()
    );
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "nothing written to the current directory instead"
    );
}

#[test]
fn timeout_kills_the_vm() {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    // A directory of its own: the VM shares it (--rwdir), so its processes name it.
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out = run(foliobench()
        .args([
            "vm",
            "--kernel",
            DEBIAN_612,
            "--timeout",
            "4s",
            "--",
            "doctor",
        ])
        .current_dir(dir.path()));
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did not finish within 4s"));
    // Kernel cache is warm here (other tests), so the 4 s budget plus set-up is all it took.
    assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
    // No QEMU of ours survives: vng and QEMU were in one process group, killed together.
    std::thread::sleep(Duration::from_millis(500));
    let ps = std::process::Command::new("pgrep")
        .args(["-f", &dir.path().to_string_lossy()])
        .output()
        .unwrap();
    let left = String::from_utf8_lossy(&ps.stdout);
    let alive: Vec<&str> = left
        .lines()
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            !stat.is_empty() && !stat.contains(") Z ")
        })
        .collect();
    assert!(alive.is_empty(), "VM processes left running: {alive:?}");
}

#[test]
fn dry_run_shows_the_vng_command() {
    let out = run(foliobench().args([
        "vm",
        "--kernel",
        DEBIAN_612,
        "--dry-run",
        "--pmem",
        "1G",
        "--memory",
        "3G",
        "--",
        "doctor",
    ]));
    assert!(out.status.success());
    let cmd = String::from_utf8_lossy(&out.stdout);
    assert!(
        cmd.split_whitespace()
            .next()
            .is_some_and(|w| w.ends_with("vng")),
        "{cmd}"
    );
    assert!(
        cmd.contains("memmap=1G!4G") && cmd.contains("--memory 4096M"),
        "{cmd}"
    );
    assert!(
        cmd.contains(" --force-9p ") && cmd.contains(" --rwdir "),
        "{cmd}"
    );
    let image = cmd
        .split_whitespace()
        .skip_while(|w| *w != "-r")
        .nth(1)
        .expect("-r IMAGE");
    assert!(
        Path::new(image).is_file(),
        "the kernel image exists: {image}"
    );
}

/// bpftrace's `-o` output: `@name: N` and `@name[key]: N` lines.
fn bpftrace_maps(text: &str) -> std::collections::HashMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.trim().rsplit_once(": ")?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn value_count(p: &Value, v: u64) -> u64 {
    p["arg_values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[0] == v)
        .map_or(0, |e| e[1].as_u64().unwrap())
}

/// `trace --probe pin` on a command that pins memory: non-empty histograms whose counts
/// agree with bpftrace's count of the same calls in the same run.
#[test]
fn trace_pin_counts_agree_with_bpftrace() {
    let workload = format!(
        "{} workload io-uring-pin --size 8M --buffers 4 --repeat 2",
        env!("CARGO_BIN_EXE_foliobench")
    );
    let bt = "kfunc:io_sqe_buffer_register /pid == cpid/ { @reg = count(); } \
              kfunc:pin_user_pages_fast /pid == cpid/ { @fast[args->nr_pages] = count(); } \
              kfunc:try_grab_folio_fast /pid == cpid/ { @grab[args->refs] = count(); }";
    let (out, dir) = in_vm(
        &[],
        &[
            "trace",
            "--probe",
            "pin",
            "--probe",
            "grab",
            "--out",
            "trace.json",
            "--",
            "bpftrace",
            "-q",
            "-o",
            "bt.txt",
            "-e",
            bt,
            "-c",
            &workload,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("io_sqe_buffer_register (fentry on io_sqe_buffer_register): calls 8"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nsecs : count     distribution"),
        "histograms are printed"
    );

    let t = read_json(&dir.path().join("trace.json"));
    let bt = bpftrace_maps(
        &std::fs::read_to_string(dir.path().join("bt.txt")).expect("bpftrace wrote its maps"),
    );
    assert_eq!(t["command_status"], 0);

    // 4 buffers x 2 registrations, by the workload's own account, by ours and by bpftrace's.
    let reg = trace_probe(&t, "io_sqe_buffer_register");
    assert_eq!(reg["calls"], 8);
    assert_eq!(bt["@reg"], 8);
    assert!(reg["latency_log2"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_u64().unwrap() > 0));

    // Each registration pins its 2048 pages in one pin_user_pages_fast call.
    let fast = trace_probe(&t, "pin_user_pages_fast");
    assert_eq!(fast["arg_name"], "nr_pages");
    assert_eq!(value_count(fast, 2048), 8);
    assert_eq!(bt["@fast[2048]"], 8);

    // Refcount grabs: one per folio, `refs` pages at a time; same counts per value.
    let grab = trace_probe(&t, "try_grab_folio_fast");
    let values = grab["arg_values"].as_array().unwrap();
    assert!(!values.is_empty());
    for e in values {
        let (v, n) = (e[0].as_u64().unwrap(), e[1].as_u64().unwrap());
        if v > 2 {
            // Small refs also come from bpftrace's own process, which only we count.
            assert_eq!(bt.get(&format!("@grab[{v}]")).copied(), Some(n), "refs={v}");
        }
    }
}

/// On 6.1 the pre-folio names are traced and say so; no nr_pages is invented for them.
#[test]
fn trace_on_61_uses_old_names() {
    let (_, dir) = in_vm(
        &["--kernel", DEBIAN_61],
        &[
            "trace",
            "--probe",
            "rmap",
            "--probe",
            "pin",
            "--out",
            "trace.json",
            "--",
            env!("CARGO_BIN_EXE_foliobench"),
            "workload",
            "io-uring-pin",
            "--size",
            "8M",
            "--buffers",
            "2",
        ],
    );
    let t = read_json(&dir.path().join("trace.json"));
    let rmap = trace_probe(&t, "folio_remove_rmap_ptes");
    assert_eq!(rmap["function"], "page_remove_rmap");
    assert!(
        rmap["arg_name"].is_null(),
        "page_remove_rmap has no nr_pages"
    );
    assert!(
        rmap["calls"].as_u64().unwrap() > 0,
        "the workload's exit unmaps its memory"
    );
    assert_eq!(trace_probe(&t, "io_sqe_buffer_register")["calls"], 2);
}

/// A function entered again on the same thread before it returns is timed per call:
/// opening a file on overlayfs runs vfs_open -> ovl_open -> backing_file_open -> vfs_open on
/// the real file. With start times keyed by thread alone, the inner entry overwrote the
/// outer's and the outer return went unseen (returns = calls / 2 for those); keyed by thread
/// and depth, every return is.
#[test]
fn nested_calls_are_each_timed() {
    let inner = format!(
        "mount -t tmpfs none /mnt && mkdir /mnt/l /mnt/u /mnt/w /mnt/m && \
         mount -t overlay overlay -o lowerdir=/mnt/l,upperdir=/mnt/u,workdir=/mnt/w /mnt/m && \
         echo x > /mnt/m/f && {} trace --function vfs_open --function ovl_open --out t.json \
           -- cat /mnt/m/f /mnt/m/f /mnt/m/f",
        env!("CARGO_BIN_EXE_foliobench")
    );
    // The overlay module must be loaded before the inner trace resolves ovl_open.
    let (_, dir) = in_vm_sh(&[], &inner);
    let t = read_json(&dir.path().join("t.json"));
    let outer = trace_probe(&t, "vfs_open");
    let ovl = trace_probe(&t, "ovl_open")["calls"].as_u64().unwrap();
    let calls = outer["calls"].as_u64().unwrap();
    assert!(ovl >= 3, "cat opened through overlayfs: {t}");
    assert!(calls >= 2 * ovl, "each ovl_open nests a vfs_open: {outer}");
    assert_eq!(outer["returns"], calls, "every nested return seen: {outer}");
    let histogram: u64 = outer["latency_log2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(histogram, calls, "{outer}");
}

/// The probe-overhead figure in the guest, with fentry probes and bpftrace's kfunc twins.
#[test]
fn overhead_compares_with_bpftrace_in_the_guest() {
    let (_, dir) = in_vm(&[], &["overhead", "--repeat", "2", "--out", "o.json"]);
    let o = read_json(&dir.path().join("o.json"));
    let names: Vec<&str> = names_of(&o, "variants", "name");
    assert_eq!(
        names,
        ["untraced", "foliobench", "bpftrace"],
        "notes: {}",
        o["notes"]
    );
    assert!(
        o["probes"]
            .to_string()
            .contains("pin_user_pages_fast (fentry)"),
        "{}",
        o["probes"]
    );
    for v in o["variants"].as_array().unwrap() {
        assert_eq!(v["samples_ns"].as_array().unwrap().len(), 2);
    }
    // The probe calls of each foliobench run, the per-call cost's denominator: the default
    // workload registers and unregisters a buffer 3000 times, each an io_uring_register(2)
    // (the syscall tracepoint) and one io_sqe_buffer_register per registration.
    let calls = o["calls_per_run"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{o}");
    for c in calls {
        assert!(c.as_u64().unwrap() >= 3 * 3000, "{o}");
    }
    // The whole cost of tracing nothing, each tracer's process from start to exit, twice.
    let attach: Vec<&str> = names_of(&o, "attach", "name");
    assert_eq!(attach, ["foliobench trace", "bpftrace"], "{}", o["notes"]);
    for v in o["attach"].as_array().unwrap() {
        let runs = v["samples_ns"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{v}");
        // Loading and attaching 9 probes is not free, even for a command that does nothing.
        assert!(
            runs.iter().all(|ns| ns.as_u64().unwrap() > 10_000_000),
            "{v}"
        );
    }
}

fn arg_values(p: &Value) -> Vec<(u64, u64)> {
    p["arg_values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e[0].as_u64().unwrap(), e[1].as_u64().unwrap()))
        .collect()
}

/// Tracing a devdax reconfiguration (align 2M) in the throwaway VM: the memmap probes
/// (fentry) and the per-page initialiser (a kprobe on its .constprop clone) must tell one
/// consistent story, whatever the figures are.
#[test]
fn trace_memmap_of_a_devdax_namespace() {
    let (_, dir) = in_vm(
        &[],
        &[
            "trace",
            "--probe",
            "memmap",
            "--probe",
            "vmemmap",
            "--out",
            "trace.json",
            "--",
            "ndctl",
            "create-namespace",
            "-f",
            "-e",
            "namespace0.0",
            "-m",
            "devdax",
            "-M",
            "mem",
            "-a",
            "2M",
        ],
    );
    let t = read_json(&dir.path().join("trace.json"));
    assert_eq!(t["command_status"], 0, "ndctl create-namespace succeeded");
    let zone = trace_probe(&t, "memmap_init_zone_device");
    assert_eq!(zone["calls"], 1);
    let [(zone_pages, 1)] = arg_values(zone)[..] else {
        panic!("{zone}")
    };
    // One memmap_init_compound per 2M compound page, all with the same nr_pages.
    let compound = trace_probe(&t, "memmap_init_compound");
    let [(per_compound, n_compound)] = arg_values(compound)[..] else {
        panic!("{compound}")
    };
    assert_eq!(
        n_compound * 512,
        zone_pages,
        "one compound page per 2M of the range"
    );
    // Each initialises per_compound struct pages through __init_zone_device_page.
    let page = trace_probe(&t, "__init_zone_device_page");
    assert_eq!(page["mechanism"], "kprobe");
    assert_eq!(page["function"], "__init_zone_device_page.constprop.0");
    assert_eq!(page["calls"].as_u64().unwrap(), n_compound * per_compound);
    // Struct page memory allocated, from the allocator's own calls.
    let alloc = trace_probe(&t, "vmemmap_alloc_block_buf");
    let bytes: u64 = arg_values(alloc).iter().map(|(size, n)| size * n).sum();
    assert!(bytes > 0, "{alloc}");
}

fn memmap_result<'a>(r: &'a Value, g: &str) -> &'a Value {
    r["memmap"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| geometry_name(&m["geometry"]) == g)
        .unwrap_or_else(|| panic!("no {g}"))
}

/// "devdax:2M:mem" from the serialized geometry.
fn geometry_name(g: &Value) -> String {
    match g["mode"].as_str().unwrap() {
        "devdax" => {
            let a = match g["align"].as_u64().unwrap() {
                4096 => "4K",
                2097152 => "2M",
                1073741824 => "1G",
                _ => "?",
            };
            format!("devdax:{a}:{}", g["map"].as_str().unwrap())
        }
        "fsdax" => format!("fsdax:{}", g["map"].as_str().unwrap()),
        m => m.to_string(),
    }
}

fn median_field(m: &Value, field: &str) -> u64 {
    let mut v: Vec<u64> = m["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s[field].as_u64())
        .collect();
    v.sort();
    v[(v.len() - 1) / 2]
}

/// The whole memmap suite in one command on Debian 6.12: every geometry measured, the
/// sources agree for devdax mem, the work per geometry falls with the compound order, and
/// the namespace is back as it was.
#[test]
fn memmap_suite_on_612() {
    let (out, dir) = in_vm(
        &[],
        &[
            "run",
            "--suite",
            "memmap",
            "--repeat",
            "1",
            "--out",
            "memmap.json",
        ],
    );
    let r = read_json(&dir.path().join("memmap.json"));
    assert_eq!(r["schema_version"], 2);
    let ctx = &r["context"];
    assert!(
        ctx["restored"]
            .as_str()
            .unwrap()
            .starts_with("verified: namespace0.0 mode=fsdax map=mem"),
        "{ctx}"
    );
    // Results say what ran them: the VM's accelerator and the exact kernel package.
    let said = String::from_utf8_lossy(&out.stderr);
    let accel = if said.contains(", KVM (") {
        "kvm"
    } else {
        "tcg"
    };
    assert_eq!(ctx["machine"]["accelerator"], accel, "{ctx}");
    let release = DEBIAN_612.strip_prefix("debian:").unwrap();
    assert!(
        ctx["machine"]["kernel_package"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("linux-image-{release}="))),
        "{ctx}"
    );
    // The guest's stderr arrives through the console, on stdout.
    assert!(String::from_utf8_lossy(&out.stdout).contains("plan: reconfigure namespace0.0"));
    // nr_memmap_pages is accounted where memory is added: memmap_pages_add's calls by
    // kernel stack, its delta summed equal to the counter's move (2048 at 2M, 16 calls:
    // one per 128 MiB section).
    let two_m = r["memmap"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| geometry_name(&m["geometry"]) == "devdax:2M:mem")
        .unwrap();
    let t = &two_m["traced"];
    assert_eq!(t["memmap_pages_added"], 2048, "{t}");
    let top = &t["memmap_pages_add_stacks"][0];
    assert_eq!(top["calls"], 16, "{top}");
    assert_eq!(top["arg_sum"], 2048, "{top}");
    assert_eq!(
        top["frames"].as_array().unwrap()[..2],
        [json!("memmap_pages_add"), json!("sparse_add_section")],
        "{top}"
    );
    for m in r["memmap"].as_array().unwrap() {
        let g = geometry_name(&m["geometry"]);
        if g == "pfnmap" {
            assert!(m["samples"].as_array().unwrap().is_empty());
            assert_eq!(m["model"]["vmemmap_pages"], 0);
            continue;
        }
        assert!(m["error"].is_null(), "{g}: {}", m["error"]);
        assert_eq!(m["samples"].as_array().unwrap().len(), 1, "{g}");
        assert!(!m["checks"].as_array().unwrap().is_empty(), "{g}");
        if g.ends_with(":mem") && g.starts_with("devdax") {
            for c in m["checks"].as_array().unwrap() {
                assert_eq!(c["agrees"], true, "{g}: {c}");
            }
        }
    }
    // The pfnmap row is measured too, not only modelled: a BAR with no struct page.
    assert_eq!(r["pfnmap"]["status"], "measured", "{}", r["pfnmap"]);
    assert_eq!(r["pfnmap"]["nr_memmap_pages_delta"], 0);
    // The kernel's exact answers for 2 GiB on 6.12 (x86-64, 64-byte struct page, vmemmap
    // optimization on): struct pages in vmemmap (nr_memmap_pages, timed samples), struct
    // pages initialised (compound_nr_pages(): 128 per 2M folio, 256 per 1G folio with only
    // the reserved vmemmap pages initialised; traced sample), and every one freed again.
    // And the vmemmap's page tables (vmemmap_alloc_block's calls less the RAM blocks): none
    // for a PMD-mapped vmemmap, one PTE table per 2 MiB of a compound one mapped page by
    // page: 16 for 2 GiB of 2M or of 1G folios (1G: 16 tables for 4 vmemmap pages).
    for (g, memmap_pages, initialised, page_tables) in [
        ("devdax:4K:mem", 8192, 524288, 0),
        ("devdax:2M:mem", 2048, 131072, 16),
        ("devdax:1G:mem", 4, 256, 16),
        ("devdax:2M:dev", 8192, 515584, 0),
    ] {
        let m = memmap_result(&r, g);
        assert_eq!(
            median_field(m, "nr_memmap_pages_delta"),
            memmap_pages,
            "{g}"
        );
        assert_eq!(median_field(m, "nr_memmap_pages_left"), 0, "{g}");
        assert!(m["samples"][0]["destroy_ns"].as_u64().unwrap() > 0, "{g}");
        // Timed samples attach no vmemmap probe; the traced one does.
        assert!(m["samples"][0]["probe_ram_vmemmap_pages"].is_null(), "{g}");
        assert_eq!(m["traced"]["init_struct_pages"], initialised, "{g}");
        if g.ends_with(":mem") {
            assert_eq!(m["traced"]["probe_ram_vmemmap_pages"], memmap_pages, "{g}");
        }
        assert_eq!(m["traced"]["vmemmap_page_tables"], page_tables, "{g}");
        // The traced sample follows a warm-up creation under the same attachment, which
        // counted the same (the repeat check, ok among every devdax:mem check above).
        assert_eq!(
            m["traced_warm_up"]["vmemmap_page_tables"], page_tables,
            "{g}"
        );
        // The free memory the teardowns gave back (the median of the geometry's every
        // teardown, traced ones too): the memmap in RAM and its tables (32 MiB, 8 MiB +
        // 64 KiB, 80 KiB; about 0 with the memmap on the device), within the check's 1 MiB
        // either side.
        assert_eq!(
            teardown_check(m)["agrees"],
            true,
            "{g}: {}",
            teardown_check(m)
        );
        // Every timed sample times devm_memremap_pages, the span of the probe effect.
        assert!(median_field(m, "memremap_ns") > 0, "{g}");
    }
    // Base pages on the device: only the per-page initialiser counts the struct pages, in a
    // sample of its own, not in the traced one whose time is the probe effect.
    let four_k_dev = memmap_result(&r, "devdax:4K:dev");
    let per_page = &four_k_dev["traced_per_page"];
    assert!(
        per_page["init_struct_pages"].as_u64().unwrap() > 0,
        "{four_k_dev}"
    );
    assert_eq!(
        four_k_dev["traced"]["init_struct_pages"],
        per_page["init_struct_pages"]
    );
    assert!(memmap_result(&r, "devdax:2M:mem")["traced_per_page"].is_null());
    assert!(String::from_utf8_lossy(&out.stdout).contains("traced/x"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checks (median of samples"));
}

/// The memmap check that reads the free memory the teardowns gave back.
fn teardown_check(m: &Value) -> &Value {
    m["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["what"]
                .as_str()
                .unwrap()
                .starts_with("memory the teardowns gave back")
        })
        .unwrap_or_else(|| panic!("no teardown check in {}", m["checks"]))
}

/// On 6.1 the suite runs and says what that kernel does not expose.
#[test]
fn memmap_suite_on_61_is_honest() {
    let (_, dir) = in_vm(
        &["--kernel", DEBIAN_61],
        &[
            "run",
            "--suite",
            "memmap",
            "--repeat",
            "1",
            "--geometry",
            "devdax:2M:mem",
            "--out",
            "memmap.json",
        ],
    );
    let r = read_json(&dir.path().join("memmap.json"));
    assert_eq!(r["context"]["nr_memmap_pages"], false);
    let m = memmap_result(&r, "devdax:2M:mem");
    assert!(m["samples"][0]["nr_memmap_pages_delta"].is_null());
    assert!(
        m["checks"].to_string().contains("added in 6.11"),
        "{}",
        m["checks"]
    );
    assert!(
        m["samples"][0]["memmap_init_ns"].as_u64().unwrap() > 0,
        "fentry works on 6.1"
    );
    // Without nr_memmap_pages the free memory a teardown gives back still witnesses the
    // optimised memmap: 8 MiB and its tables for 2 GiB of 2M folios, not 32 MiB.
    let back = teardown_check(m);
    assert_eq!(back["agrees"], true, "{back}");
    assert!(
        back["detail"]
            .as_str()
            .unwrap()
            .contains("8192 KiB of struct pages"),
        "{back}"
    );
}

/// Debian's 7.3 from trixie-backports (fetched from foliobench's own package lists, the
/// split packaging unpacked): ZONE_DEVICE pages are folios (6.15), so 7.3's kpageflags shows
/// a struct page for the BAR too; the vmemmap witness still says none there and one behind
/// every devdax and fsdax pfn. Long-term pins of 2M devdax grab once per folio part (1 +
/// 511 references), where 6.12 grabs every base page.
#[test]
fn struct_pages_and_folio_grabs_on_debian_73() {
    let fb = env!("CARGO_BIN_EXE_foliobench");
    let inner = format!(
        "{fb} run --suite fsdax --size 32M --repeat 1 --out fsdax.json && \
         {fb} run --suite pin --geometry devdax:2M:mem --geometry devdax:4K:dev \
           --geometry hugetlb:2M --driver io_uring --size 64M --repeat 1 --out pin.json"
    );
    let (_, dir) = in_vm_sh(&["--kernel", DEBIAN_73], &inner);
    let f = read_json(&dir.path().join("fsdax.json"));
    assert_eq!(
        f["context"]["machine"]["kernel_package"],
        "linux-image-7.3.4+deb13-amd64=7.3.4-1~bpo13+1"
    );
    let bar = &f["pfnmap"]["pages"];
    assert_eq!(bar["present"], 512, "{bar}");
    assert_eq!(bar["vmemmap_struct_pages"], 0, "{bar}");
    // kpageflags cannot tell: no NOPAGE for the BAR's pfns on 7.3.
    assert!(!bar["flags"].to_string().contains("NOPAGE"), "{bar}");
    for x in f["fsdax"]["results"].as_array().unwrap() {
        assert_eq!(x["pages"]["vmemmap_struct_pages"], 8192, "{}", x["pages"]);
        // DAX pages are folios now: smaps counts the mapping in Rss (6.12: 0 kB), still
        // not as FilePmdMapped though 16 PMDs map it; long-term pins are still refused.
        assert_eq!(x["smaps"]["rss_kb"], 32768, "{}", x["smaps"]);
        assert_eq!(x["smaps"]["file_pmd_mapped_kb"], 0, "{}", x["smaps"]);
        let ring = pin_try(x, "io_uring");
        assert_eq!(ring["errno"], "EOPNOTSUPP", "{ring}");
        // The fault path maps an order-9 folio per 2 MiB piece (6.12: a pfn range).
        assert_eq!(fault_probe(x, "vmf_insert_folio_pmd"), Some(16), "{x}");
        assert_eq!(fault_probe(x, "vmf_insert_pfn_pmd"), Some(0), "{x}");
    }
    assert!(
        f["fsdax"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["agrees"] == true),
        "{}",
        f["fsdax"]["checks"]
    );
    let r = read_json(&dir.path().join("pin.json"));
    for p in r["pin"]["prepared"].as_array().unwrap() {
        if p["memory"] != "hugetlb:2M" {
            assert_eq!(p["pages"]["vmemmap_struct_pages"], 16384, "{p}");
        }
    }
    // HugeTLB's 2M folios: one GUP-fast grab of 512 references each (seen: 32 grabs, where
    // devdax:2M took 65: 32 + 32 + 1, the fast path's grab and drop, then slow GUP's).
    let h = &pin_row(&r, "hugetlb:2M", "io_uring")["grabs"];
    assert_eq!(h["calls"], 32, "{h}");
    // The kernel's pin counters count 7.3's double grab too: 16896 references acquired
    // and released for 16384 pages of devdax:2M (the fast path's 512, dropped, then slow
    // GUP's), 16384 for HugeTLB's; 32 pins held while registered (one per folio).
    let f = &pin_row(&r, "devdax:2M:mem", "io_uring")["grabs"]["foll_pin"];
    assert_eq!(
        (&f["acquired"], &f["released"], &f["held"]),
        (&16896.into(), &16896.into(), &32.into()),
        "{f}"
    );
    let f = &h["foll_pin"];
    assert_eq!(f["acquired"], 16384, "{f}");
    // The stacks behind 7.3's double grab of devdax:2M: GUP-fast grabs a folio and drops
    // it (long-term pins of a file mapping are refused there), then slow GUP grabs.
    let g = &pin_row(&r, "devdax:2M:mem", "io_uring")["grabs"];
    let top = |function: &str| {
        let s =
            &grab_function(g, function).unwrap_or_else(|| panic!("{function}: {g}"))["stacks"][0];
        s["frames"]
            .as_array()
            .unwrap()
            .iter()
            .take(3)
            .map(|f| f.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        top("try_grab_folio_fast").starts_with("try_grab_folio_fast gup_fast_fallback"),
        "{g}"
    );
    assert!(
        top("gup_put_folio").starts_with("gup_put_folio gup_fast_fallback"),
        "{g}"
    );
    assert!(
        top("try_grab_folio").starts_with("try_grab_folio __get_user_pages"),
        "{g}"
    );
    assert_eq!(
        grab_function(h, "try_grab_folio_fast").expect("traced")["refs_values"],
        serde_json::json!([[512, 32]]),
        "{h}"
    );
    let g = &pin_row(&r, "devdax:2M:mem", "io_uring")["grabs"];
    let slow = grab_function(g, "try_grab_folio").expect("try_grab_folio traced");
    // 32 folios of 2M: the first page, then the other 511 in one grab.
    assert_eq!(slow["calls"], 64, "{g}");
    assert_eq!(
        slow["refs_values"],
        serde_json::json!([[1, 32], [511, 32]]),
        "{g}"
    );
}

/// Debian 6.1: O_DIRECT pins of 2M devdax grab every base page through try_grab_page
/// (GUP-fast's devmap path), traced under its own name beside try_grab_folio, and the
/// releases are the bios' (FOLL_GET: put_page per page, inline). The struct page witness
/// tells the namespace's pfns (struct pages) from the BAR's (none) on 6.1 as on 6.12.
#[test]
fn pin_grabs_and_struct_pages_on_61() {
    let fb = env!("CARGO_BIN_EXE_foliobench");
    let inner = format!(
        "{fb} run --suite pin --geometry devdax:2M:mem --geometry fsdax:mem \
           --driver odirect,io_uring,xdp_umem --size 64M --repeat 1 --out pin.json && \
         {fb} run --suite fsdax --size 32M --repeat 1 --out fsdax.json"
    );
    let (_, dir) = in_vm_sh(&["--kernel", DEBIAN_61], &inner);
    let r = read_json(&dir.path().join("pin.json"));
    let row = pin_row(&r, "devdax:2M:mem", "odirect");
    assert_pinned(row, 16384, 1);
    let g = &row["grabs"];
    let by = |f: &str| grab_function(g, f).map_or(0, |x| x["calls"].as_u64().unwrap());
    assert_eq!(by("try_grab_page"), 16384, "one grab per base page: {g}");
    assert_eq!(grabs_per_page(row), 1.0);
    assert!(by("__bio_release_pages") > 0, "releases seen: {g}");
    // Long-term pins on 6.1: io_uring refuses devdax (its own rule for file-backed memory);
    // AF_XDP's UMEM registration pins it through slow GUP, one try_grab_page per base page.
    // fsdax is refused by GUP itself for FOLL_LONGTERM, through either.
    assert_eq!(
        pin_row(&r, "devdax:2M:mem", "io_uring")["errno"],
        "EOPNOTSUPP"
    );
    let xdp = pin_row(&r, "devdax:2M:mem", "xdp_umem");
    assert_eq!(xdp["status"], "measured", "{xdp}");
    assert_eq!(xdp["pages"], 16384, "{xdp}");
    let g = &xdp["grabs"];
    let by = |f: &str| grab_function(g, f).map_or(0, |x| x["calls"].as_u64().unwrap());
    assert_eq!(by("try_grab_page"), 16384, "one grab per base page: {g}");
    assert_eq!(g["gup_calls"], 1, "one pin_user_pages call: {g}");
    for d in ["io_uring", "xdp_umem"] {
        assert_eq!(pin_row(&r, "fsdax:mem", d)["errno"], "EOPNOTSUPP", "{d}");
    }
    // The devdax positive control: struct pages behind all 16384 pfns.
    let prepared = &r["pin"]["prepared"][0]["pages"];
    assert_eq!(prepared["vmemmap_struct_pages"], 16384, "{prepared}");
    let f = read_json(&dir.path().join("fsdax.json"));
    for x in f["fsdax"]["results"].as_array().unwrap() {
        assert_eq!(
            x["pages"]["vmemmap_struct_pages"], x["pages"]["present"],
            "{}",
            x["pages"]
        );
    }
    assert_eq!(
        f["pfnmap"]["pages"]["vmemmap_struct_pages"], 0,
        "{}",
        f["pfnmap"]
    );
}

/// A namespace another process holds open is refused, and nothing is changed.
#[test]
fn memmap_suite_refuses_an_open_namespace() {
    let inner = format!(
        "exec 3</dev/pmem0; {} run --suite memmap --repeat 1 --geometry devdax:2M:mem",
        env!("CARGO_BIN_EXE_foliobench")
    );
    // trace runs the shell (which holds /dev/pmem0 open) and records its exit status.
    let (out, dir) = in_vm(
        &[],
        &[
            "trace", "--probe", "memmap", "--out", "t.json", "--", "sh", "-c", &inner,
        ],
    );
    let t = read_json(&dir.path().join("t.json"));
    assert_eq!(t["command_status"], 2, "refused as a usage error");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("refusing to reconfigure namespace0.0: /dev/pmem0 is open by pid"),
        "{all}"
    );
    let init = t["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == "memmap_init_zone_device")
        .unwrap();
    assert_eq!(init["calls"], 0, "no namespace was created");
}

/// The calls of a fault probe in an fsdax row's traced fault-in; None where not traced.
fn fault_probe(row: &Value, id: &str) -> Option<u64> {
    row["faults"]
        .as_array()?
        .iter()
        .find(|p| p["probe"] == id)
        .map(|p| p["calls"].as_u64().unwrap())
}

/// A grab or release function's entry in a pin row's `grabs`.
fn grab_function<'a>(grabs: &'a Value, function: &str) -> Option<&'a Value> {
    grabs["by_function"]
        .as_array()?
        .iter()
        .chain(grabs["releases"].as_array().into_iter().flatten())
        .find(|x| x["function"] == function)
}

/// The mode of namespace0.0 in `ndctl list -N` output (an object or an array).
fn ns_mode(listing: &str) -> String {
    let v: Value =
        serde_json::from_str(listing).unwrap_or_else(|e| panic!("ndctl JSON: {e}: {listing}"));
    let ns = if v.is_array() { v[0].clone() } else { v };
    format!(
        "{}:{}",
        ns["mode"].as_str().unwrap_or("?"),
        ns["map"].as_str().unwrap_or("-")
    )
}

/// Ctrl-C mid-suite restores the namespace; after SIGKILL, `foliobench restore` does.
#[test]
fn interrupted_and_killed_runs_are_restored() {
    let fb = env!("CARGO_BIN_EXE_foliobench");
    // 60 samples take about a minute on the fastest host seen (a sample ~1 s), so the
    // signals at 15 s and 35 s land mid-run; at 20 samples a fast host finished before 35 s.
    let suite =
        format!("{fb} run --suite memmap --repeat 60 --max-repeat 60 --geometry devdax:4K:mem");
    let script = format!(
        "timeout --preserve-status -s INT 15 {suite}; echo $? > int.status; ndctl list -N -i > after-int.json; \
         timeout -s KILL 35 {suite}; ndctl list -N -i > after-kill.json; \
         ls /var/lib/foliobench > state.txt; {fb} restore > restore.txt; echo $? > restore.status; \
         ndctl list -N -i > after-restore.json"
    );
    let (_, dir) = in_vm(
        &[],
        &[
            "trace",
            "--probe",
            "memmap_init_zone_device",
            "--",
            "sh",
            "-c",
            &script,
        ],
    );
    let read = |f: &str| {
        std::fs::read_to_string(dir.path().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))
    };
    assert_eq!(
        read("int.status").trim(),
        "3",
        "an interrupted run is an error, not a result"
    );
    assert_eq!(
        ns_mode(&read("after-int.json")),
        "fsdax:mem",
        "restored after Ctrl-C"
    );
    assert!(
        read("state.txt").contains("namespace-state.json"),
        "a killed run leaves its saved state"
    );
    // Where the kill lands is timing; what restore must do is not.
    eprintln!("after the kill: {}", ns_mode(&read("after-kill.json")));
    assert_eq!(read("restore.status").trim(), "0");
    assert!(read("restore.txt").contains("restored namespace0.0 to fsdax map=mem"));
    assert_eq!(ns_mode(&read("after-restore.json")), "fsdax:mem");
}

/// The rmap row of one operation and folio size.
fn rmap_row<'a>(r: &'a Value, op: &str, kb: u64) -> &'a Value {
    r["rmap"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["op"] == op && x["folio_kb"] == kb && x["memory"] != "hugetlb")
        .unwrap_or_else(|| panic!("no rmap row {op} {kb}K"))
}

/// What one probe counted in the rmap row of `op` on HugeTLB pages of `kb`.
fn hugetlb_calls(r: &Value, op: &str, kb: u64, probe: &str) -> u64 {
    let row = r["rmap"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["op"] == op && x["folio_kb"] == kb && x["memory"] == "hugetlb")
        .unwrap_or_else(|| panic!("no rmap row {op} hugetlb {kb}K"));
    row["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == probe)
        .unwrap_or_else(|| panic!("no {probe} in {row}"))["calls"]
        .as_u64()
        .unwrap()
}

/// How many calls of an rmap probe had this nr_pages during an operation.
fn batches(row: &Value, probe: &str, nr_pages: u64) -> u64 {
    row["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == probe)
        .unwrap_or_else(|| panic!("{probe} not traced: {row}"))["arg_values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v[0] == nr_pages)
        .map_or(0, |v| v[1].as_u64().unwrap())
}

/// Debian 6.12: the folio sizes asked for are obtained (the kernel's counters say so), and
/// PTE-remap, fork (the child's zap) and munmap hand the rmap functions whole folios.
#[test]
fn rmap_suite_on_612() {
    let (_, dir) = in_vm(
        &[],
        &[
            "run",
            "--suite",
            "rmap",
            "--size",
            "32M",
            "--repeat",
            "1",
            "--folio-size",
            "4K,64K,2M,fsdax,hugetlb:2M",
            "--out",
            "rmap.json",
        ],
    );
    let r = read_json(&dir.path().join("rmap.json"));
    let rm = &r["rmap"];
    assert_eq!(rm["batched_api"], true);
    // HugeTLB's 16 folios of 2M beside THP's: fork copies the VMA in one walk, munmap zaps
    // it in one, COW faults once per folio (its rmap calls are inline on 6.12).
    assert_eq!(
        hugetlb_calls(&r, "fork", 2048, "copy_hugetlb_page_range"),
        1
    );
    assert_eq!(
        hugetlb_calls(&r, "munmap", 2048, "__unmap_hugepage_range"),
        1
    );
    assert_eq!(hugetlb_calls(&r, "cow", 2048, "hugetlb_fault"), 16);
    for f in rm["folios"].as_array().unwrap() {
        assert_eq!(f["verified"], true, "{f}");
    }
    // 32 MiB: 512 folios of 64K, 16 of 2M.
    assert_eq!(
        batches(rmap_row(&r, "munmap", 64), "folio_remove_rmap_ptes", 16),
        512
    );
    // PMD folios: whole-folio batches for munmap and for fork (the child's zap), exactly.
    assert_eq!(
        batches(rmap_row(&r, "fork", 2048), "folio_remove_rmap_ptes", 512),
        16
    );
    // The folio size is verified on every mapping, timed rounds included.
    for f in rm["folios"].as_array().unwrap() {
        assert!(
            f["detail"].as_str().unwrap().contains("on each of the"),
            "{f}"
        );
    }
    // fork's counts are the mapping's: the probes count only calls on its VMA, one
    // folio_remove_rmap_ptes call per 4K folio of the 32 MiB, exactly. Before, a control fork
    // without the mapping was subtracted, made at another moment, when the helper's own
    // memory could differ by a page or two (seen: 8191, and 63 for 64 folios of 256K).
    let fork4k = rmap_row(&r, "fork", 4);
    let own: u64 = fork4k["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["function"].as_str().unwrap().starts_with("syscalls:"))
        .map(|p| p["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(own, 8192, "{fork4k}");
    // The negative control: the same fork without the mapping counts none of its calls, and
    // left out the rest of the helper's (the child's exit zaps it too).
    for kb in [4, 64, 2048] {
        let what = format!("fork {kb}K without the mapping (MADV_DONTFORK): no rmap call on it");
        let c = rm["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["what"] == what.as_str())
            .unwrap_or_else(|| panic!("no check {what}: {}", rm["checks"]));
        assert_eq!(c["agrees"], true, "{c}");
        assert!(
            c["detail"]
                .as_str()
                .unwrap()
                .starts_with("0 rmap calls on the mapping, "),
            "{c}"
        );
    }
    // COW of every page beside COW of one byte per folio, and the probe effect per cell.
    assert_eq!(rmap_row(&r, "cow_each_page", 2048)["status"], "measured");
    assert!(rmap_row(&r, "fork", 64)["traced_ns"].as_u64().unwrap() > 0);
    assert_eq!(
        batches(rmap_row(&r, "fork", 64), "folio_remove_rmap_ptes", 16),
        512
    );
    assert_eq!(
        batches(
            rmap_row(&r, "pte_remap", 2048),
            "folio_add_anon_rmap_ptes",
            512
        ),
        16
    );
    assert_eq!(
        batches(rmap_row(&r, "munmap", 2048), "folio_remove_rmap_ptes", 512),
        16
    );
    assert_eq!(
        batches(rmap_row(&r, "munmap", 4), "folio_remove_rmap_ptes", 1),
        8192
    );
    for c in rm["checks"].as_array().unwrap() {
        assert_eq!(c["agrees"], true, "{c}");
    }
    for row in rm["results"].as_array().unwrap() {
        assert_eq!(row["status"], "measured", "{row}");
        assert_eq!(row["samples"].as_array().unwrap().len(), 1);
    }
    // The file case: faulting a file on ext4 -o dax in. On 6.12 fsdax pages are devmap
    // PTEs outside the rmap (the ZONE_DEVICE refcounting series, 6.15, changes that), so the file
    // rmap function, traced here (the fork's child calls it), is not called.
    let fault = rm["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["op"] == "fault" && x["memory"] == "fsdax:mem")
        .expect("fsdax fault row");
    let file_rmap = fault["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == "folio_add_file_rmap_ptes")
        .expect("traced");
    assert_eq!(file_rmap["calls"], 0, "{fault}");
    assert!(r["context"]["restored"]
        .as_str()
        .unwrap()
        .starts_with("verified: namespace0.0 mode=fsdax map=mem"));
}

/// Debian 6.1 predates the batched rmap API: the suite runs with that kernel's per-page
/// functions, only 4K and PMD folios exist, and it says batching is absent.
#[test]
fn rmap_suite_on_61_says_batching_is_absent() {
    let (out, dir) = in_vm(
        &["--kernel", DEBIAN_61],
        &[
            "run",
            "--suite",
            "rmap",
            "--size",
            "32M",
            "--repeat",
            "1",
            "--out",
            "rmap.json",
        ],
    );
    let r = read_json(&dir.path().join("rmap.json"));
    let rm = &r["rmap"];
    assert_eq!(rm["batched_api"], false);
    let kbs: Vec<u64> = rm["folios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["folio_kb"].as_u64().unwrap())
        .collect();
    assert_eq!(kbs, [4, 2048], "no mTHP controls on 6.1");
    let functions = rm["rmap_functions"].to_string();
    assert!(functions.contains("page_remove_rmap"), "{functions}");
    let munmap = rmap_row(&r, "munmap", 2048);
    assert_eq!(munmap["status"], "measured");
    let remove = munmap["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == "folio_remove_rmap_ptes")
        .unwrap();
    assert_eq!(remove["function"], "page_remove_rmap");
    assert!(
        remove["arg_values"].as_array().unwrap().is_empty(),
        "no batch sizes to show"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("batched rmap API: no"));
    // "Not applicable" is a SKIP, never an ok.
    let whole = rm["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["what"].as_str().unwrap().contains("takes whole folios"))
        .collect::<Vec<_>>();
    assert!(!whole.is_empty());
    for c in whole {
        assert_eq!(c["measured"], false, "{c}");
        assert_eq!(c["agrees"], false, "{c}");
    }
}

/// The gate's sweep for the A/A and planted runs: memmap (which THP cannot affect) and the
/// pins of 2M devdax and anonymous THP, 3 boots a side.
const GATE_SWEEP: &[&str] = &[
    "--suite",
    "memmap,pin",
    "--geometry",
    "devdax:2M:mem",
    "--geometry",
    "anon:thp",
    "--driver",
    "io_uring",
    "--size",
    "64M",
    "--repeat",
    "3",
    "--boots",
    "3",
    "--timeout",
    "20m",
    "--format",
    "json",
];

/// `ab` of 6.12 against itself, the candidate with `extra` options; its comparison.
fn gate_612(extra: &[&str]) -> (std::process::Output, Value) {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = run(foliobench()
        .args(["ab", "--baseline", DEBIAN_612, "--candidate", DEBIAN_612])
        .args(GATE_SWEEP)
        .args(extra)
        .args(["--out-dir", "ab"])
        .current_dir(dir.path()));
    let cmp: Value = serde_json::from_slice(&out.stdout).expect("the comparison as JSON");
    for side in ["baseline", "candidate"] {
        for boot in 1..=3 {
            assert!(dir.path().join(format!("ab/{side}-{boot}.json")).exists());
        }
    }
    (out, cmp)
}

/// A/A: the same kernel on both sides, 3 boots each, passes the gate: the between-boot
/// spread (seen up to 83 % for a devdax pin whose rounds spread 11 %) is the unit of the
/// test, and the p-values are adjusted over the metrics. (Seen in 3 runs: smallest
/// adjusted p 0.755, 0.592, 0.072.) Seen failing once, when the GUP call's p50 was still
/// judged as a timing: 8.4 ms on all three base boots, 16.8 ms on all three candidate
/// boots, one log2 bucket apart, "p=0.0000" from Welch's t on no spread at all.
#[test]
fn ab_a_against_a_passes() {
    let (out, cmp) = gate_612(&[]);
    // 3+3 boots, or 6+6 where a timing looked changed on 3+3 and was then confirmed (or
    // not: the exit status below) on 3 more boots a side.
    let boots = cmp["boots"][0].as_u64().unwrap();
    let confirmed = String::from_utf8_lossy(&out.stderr).contains("confirming with 3 more boots");
    assert_eq!(
        cmp["boots"],
        serde_json::json!(if confirmed { [6, 6] } else { [3, 3] })
    );
    let worse: Vec<&Value> = cmp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] != "same" && r["verdict"] != "improvement")
        .collect();
    assert_eq!(out.status.code(), Some(0), "A/A flagged: {worse:?}");
    assert!(worse.is_empty(), "{worse:?}");
    let pin = cmp["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "pin anon:thp io_uring pin")
        .unwrap();
    assert_eq!(
        pin["base"]["boot_medians"].as_array().unwrap().len() as u64,
        boots,
        "{pin}"
    );
    assert!(pin["p_adjusted"].as_f64().is_some(), "{pin}");
}

/// A planted regression: the candidate booted with transparent_hugepage=never. The gate
/// fails and names the anon:thp pin metrics (refcount grabs per page, an exact count, and the
/// pin or unpin time), and nothing of memmap or devdax, which THP cannot affect.
///
/// Which of the anon:thp timings reach significance varies: a whole boot of this emulated VM
/// can run twice as slow as another, and Welch t on 3+3 boot medians then has little power.
/// Seen on one CI machine: pin (6× slower in this test's own runs, candidate boot medians
/// 12.6 / 6.3 / 6.3 ms against 0.98 / 0.58 / 1.22) not flagged while unpin, the GUP call's
/// p50/p90/p99 and grabs per page were. So the test asks for the exact count and for one of
/// the two timings of the registration, not for every timing.
///
/// Seen on another CI run: the devdax pin flagged too (boot medians 8.2 / 7.7 / 7.7 ms
/// against 11.4 / 10.5 / 12.3, p adjusted 0.02). Devdax is pinned before anon:thp in each
/// boot, and a rerun of this gate showed why: boots of either kernel land at ~6.3 ms or
/// ~9.5 ms as a whole. So `ab` confirms a timing change with 3 more boots a side before it
/// believes it; THP's real change must survive that, and the test asks for it.
///
/// Under the instruction clock (this gate's, under TCG) a change of a timing that repeats
/// between boots is believed on 3+3 boots; only a timing that does not repeat (a whole
/// ndctl command) would be confirmed with more.
#[test]
fn ab_flags_a_planted_regression() {
    let (out, cmp) = gate_612(&["--candidate-append", "transparent_hugepage=never"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let instructions = cmp["base"]["clock"] == "instructions";
    let confirmed = stderr.contains("confirming with 3 more boots of each kernel, judged on all");
    let n = if confirmed { 6 } else { 3 };
    assert_eq!(cmp["boots"], serde_json::json!([n, n]));
    let rows = cmp["rows"].as_array().unwrap();
    if instructions {
        let believed = stderr
            .lines()
            .find(|l| l.contains("so no more boots confirm them"))
            .unwrap_or_else(|| panic!("no unconfirmed changes said: {stderr}"));
        assert!(believed.contains("pin anon:thp io_uring"), "{believed}");
        // What was confirmed, if anything, is a timing named as not repeating.
        if let Some(line) = stderr.lines().find(|l| l.contains("confirming with")) {
            let keys = line.split_once("boots (").unwrap().1;
            for key in keys.split_once("); confirming").unwrap().0.split(", ") {
                let r = rows.iter().find(|r| r["key"] == key).unwrap();
                assert!(r["does_not_repeat"].is_string(), "{r}");
            }
        }
    } else {
        assert!(confirmed, "{stderr}");
    }
    let flagged: Vec<&str> = rows
        .iter()
        .filter(|r| r["verdict"] == "regression")
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert!(
        flagged.contains(&"pin anon:thp io_uring grabs_per_page"),
        "grabs per page not flagged: {flagged:?}"
    );
    let timing = ["pin anon:thp io_uring pin", "pin anon:thp io_uring unpin"]
        .into_iter()
        .find(|k| flagged.contains(k));
    let Some(timing) = timing else {
        panic!("neither pin nor unpin time flagged: {flagged:?}");
    };
    assert!(
        flagged.iter().all(|k| k.starts_with("pin anon:thp ")),
        "only what THP affects: {flagged:?}"
    );
    assert!(
        stderr.contains(&format!(
            "foliobench: gate: {timing}: Welch t on {n}+{n} boot medians"
        )),
        "{stderr}"
    );
    assert!(
        cmp["candidate"]["kernel_release"] == cmp["base"]["kernel_release"],
        "{}",
        cmp["candidate"]
    );
}

/// The median pin time of each boot's rounds, and their range (max - min) / median.
fn pin_time(r: &Value, memory: &str) -> (f64, f64) {
    let mut ns: Vec<f64> = pin_row(r, memory, "io_uring")["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["pin_ns"].as_f64().unwrap())
        .collect();
    ns.sort_by(f64::total_cmp);
    let median = ns[ns.len() / 2];
    (median, (ns[ns.len() - 1] - ns[0]) / median)
}

/// The instruction clock makes a kernel-side timing repeat between boots: two boots of
/// one devdax pin run agree within 1 % (seen: 36.315 / 36.317 ms at 256 MiB, where two
/// wall-clock boots gave 56.1 / 90.6 ms), and each records its clock and QEMU's options.
/// The rmap suite's operations on 2M folios too: fork repeats (within 3 %) only because the
/// rounds run in a small helper process bound to one CPU (forked from the tool itself, two
/// boots gave 1.730 / 1.953 ms, as the tool's own memory differed between boots).
#[test]
fn instruction_clock_repeats_between_boots() {
    let boot = || {
        let (_, dir) = in_vm(
            &["--clock", "instructions"],
            &[
                "run",
                "--suite",
                "pin",
                "--geometry",
                "devdax:2M:mem",
                "--driver",
                "io_uring",
                "--size",
                "64M",
                "--repeat",
                "5",
                "--out",
                "p.json",
                ";",
                "run",
                "--suite",
                "rmap",
                "--folio-size",
                "4K,2M",
                "--size",
                "32M",
                "--repeat",
                "5",
                "--max-repeat",
                "5",
                "--out",
                "r.json",
                ";",
                "run",
                "--suite",
                "memmap",
                "--geometry",
                "devdax:2M:mem",
                "--repeat",
                "3",
                "--max-repeat",
                "3",
                "--out",
                "m.json",
            ],
        );
        (
            (
                read_json(&dir.path().join("p.json")),
                read_json(&dir.path().join("r.json")),
            ),
            read_json(&dir.path().join("m.json")),
        )
    };
    let (((a, ra_json), ma_json), ((b, rb_json), mb_json)) = (boot(), boot());
    for r in [&a, &b, &ra_json, &rb_json, &ma_json, &mb_json] {
        assert_eq!(
            r["context"]["machine"]["clock"],
            serde_json::json!({"kind": "instructions", "qemu_options": "-icount shift=0,sleep=off"})
        );
    }
    let ((ma, ra), (mb, rb)) = (pin_time(&a, "devdax:2M:mem"), pin_time(&b, "devdax:2M:mem"));
    let between = (ma - mb).abs() / ma.min(mb);
    assert!(
        between < 0.01,
        "boot medians {ma} / {mb} ns: {:.3} % apart",
        between * 100.0
    );
    assert!(
        ra < 0.05 && rb < 0.05,
        "rounds within a boot spread {ra:.4} / {rb:.4}"
    );
    let median = |r: &Value, op: &str, kb: u64| {
        let mut ns: Vec<f64> = rmap_row(r, op, kb)["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect();
        ns.sort_by(f64::total_cmp);
        ns[ns.len() / 2]
    };
    // Every operation to 1 % but one: fork too, since it runs unpreempted (its child, on its CPU,
    // preempted it inside its timing in some rounds: modes ~93K instructions apart, 10 %
    // between boots; forked from the tool itself, 12.9 %), after a tick (a tick inside it:
    // 1.2 % between boots) and after an untimed fork (allocator refills in some rounds'
    // forks: 30-45K instructions in 1-4 of 9 rounds). COW of 4K pages, 4096 allocations,
    // since every COW starts from the per-CPU page lists at their floor (from whatever the
    // last helper left: 48.258 or 49.175 ms, 1.7 % between two boots' medians).
    let spreads: Vec<(&str, u64, f64, f64, f64)> = [
        ("pte_remap", 2048, 0.01),
        ("fork", 2048, 0.01),
        ("munmap", 2048, 0.01),
        ("dontneed_per_pte", 2048, 0.01),
        ("cow", 2048, 0.01),
        // Its rounds alternate between two values 1.9 % apart (96.47 / 98.30 ms), so the
        // tool holds it to 2.5 % and says why (`clock::repeats`); CI read 96.747 / 97.893.
        ("cow_each_page", 2048, 0.025),
        ("cow", 4, 0.01),
        ("cow_each_page", 4, 0.01),
        ("munmap", 4, 0.01),
    ]
    .into_iter()
    .map(|(op, kb, bound)| {
        let (x, y) = (median(&ra_json, op, kb), median(&rb_json, op, kb));
        (op, kb, x, y, (x - y).abs() / x.min(y) / bound)
    })
    .collect();
    assert!(
        spreads.iter().all(|s| s.4 < 1.0),
        "rmap boot medians (op, folio kB, ns, ns, spread / its bound): {spreads:?}"
    );
    // The helper's own memory, not the tool's 16-21 MB (244 kB seen on 6.12).
    for r in [&ra_json, &rb_json] {
        let kb = r["rmap"]["forking_process_anon_kb"].as_u64().unwrap();
        assert!((1..2048).contains(&kb), "forking process held {kb} kB");
    }
    // memmap_init_zone_device to 1 %, and the whole ndctl commands to 5 % by their CPU
    // time (every task's, /proc/schedstat), which leaves out the idle waits whose jumps
    // make their elapsed times 5-31 s. Seen on 6.12.118: create 56.5-67.6 ms busy, disable
    // 26-28 ms.
    let memmap =
        |r: &Value, field: &str| median_field(memmap_result(r, "devdax:2M:mem"), field) as f64;
    let memmap_spreads: Vec<(&str, f64, f64, f64)> = [
        ("memmap_init_ns", 0.01),
        ("create_busy_ns", 0.05),
        ("destroy_busy_ns", 0.05),
    ]
    .into_iter()
    .map(|(field, bound)| {
        let (x, y) = (memmap(&ma_json, field), memmap(&mb_json, field));
        (field, x, y, (x - y).abs() / x.min(y) / bound)
    })
    .collect();
    assert!(
        memmap_spreads.iter().all(|s| s.1 > 0.0 && s.3 < 1.0),
        "memmap boot medians (field, ns, ns, spread / its bound): {memmap_spreads:?}"
    );
}

/// Several guest commands in one boot (the main job's form): each runs, in turn.
#[test]
fn one_boot_runs_several_commands() {
    let (out, dir) = in_vm(
        &[],
        &[
            "doctor", "--out", "d.json", ";", "run", "--suite", "fsdax", "--size", "32M",
            "--repeat", "1", "--out", "f.json",
        ],
    );
    assert!(out.status.success());
    // Both commands ran: doctor's report and the fsdax suite's results, from one `vm`.
    let d = read_json(&dir.path().join("d.json"));
    let f = read_json(&dir.path().join("f.json"));
    assert_eq!(d["kernel"]["release"], f["context"]["kernel_release"]);
    assert_eq!(f["fsdax"]["results"].as_array().unwrap().len(), 2);
}

/// The CI gate from the issue: `ab` with Debian 6.1 as the baseline and 6.12 as the
/// candidate, memmap and rmap, in one command. Its exit code must be the comparison's, its
/// KTAP must parse with the kernel's own parser, the rmap batching difference must be
/// judged (6.1's per-page calls against 6.12's batches), and the report must load in
/// chromium with its charts.
#[test]
fn ab_gate_61_against_612() {
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let out = run(foliobench()
        .args(["ab", "--baseline", DEBIAN_61, "--candidate", DEBIAN_612])
        .args(["--suite", "memmap,rmap", "--geometry", "devdax:4K:mem"])
        .args(["--geometry", "devdax:2M:mem", "--folio-size", "4K,2M"])
        .args(["--size", "32M", "--repeat", "4", "--timeout", "15m"])
        .args(["--boots", "1", "--format", "ktap", "--out-dir", "ab"])
        .current_dir(dir.path()));
    let ab = dir.path().join("ab");
    let ktap = std::fs::read_to_string(ab.join("compare.ktap")).unwrap();
    assert_eq!(
        ktap,
        String::from_utf8_lossy(&out.stdout),
        "printed and written"
    );
    let k = ktap_parsed(&ktap);
    assert_eq!(k["errors"].as_array().unwrap().len(), 0, "{k}");
    let failed = k["failed"].as_u64().unwrap();
    assert_eq!(
        out.status.code(),
        Some(if failed > 0 { 1 } else { 0 }),
        "exit 1 exactly when a metric regressed ({failed} did)"
    );
    // The same files through `compare` give the same verdicts, as JSON.
    let c = run(foliobench()
        .args([
            "compare",
            "baseline.json",
            "candidate.json",
            "--format",
            "json",
        ])
        .current_dir(&ab));
    assert_eq!(c.status.code(), out.status.code());
    let j: Value = serde_json::from_slice(&c.stdout).unwrap();
    assert!(j["base"]["kernel_release"]
        .as_str()
        .unwrap()
        .starts_with("6.1."));
    assert!(j["candidate"]["kernel_release"]
        .as_str()
        .unwrap()
        .starts_with("6.12."));
    let row = |key: &str| {
        j["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {j}"))
            .clone()
    };
    // munmap of 16 PMD folios, PTE-mapped: 8192 page_remove_rmap calls on 6.1, one
    // folio_remove_rmap_ptes per folio on 6.12 (plus what else the zap meets).
    let munmap = row("rmap munmap anon 2048K rmap_calls");
    assert_eq!(munmap["base"]["median"], 8192.0, "{munmap}");
    assert!(
        munmap["candidate"]["median"].as_f64().unwrap() < 100.0,
        "{munmap}"
    );
    assert_eq!(munmap["verdict"], "improvement", "{munmap}");
    // 4K folios: one page per call on both kernels.
    let munmap4k = row("rmap munmap anon 4K rmap_calls");
    assert_eq!(munmap4k["verdict"], "same", "{munmap4k}");
    // The memmap counts are the kernel's and agree; nr_memmap_pages exists on 6.12 only.
    let init = row("memmap devdax:2M:mem struct_pages_initialised");
    assert_eq!(init["verdict"], "same", "{init}");
    assert_eq!(
        row("memmap devdax:2M:mem nr_memmap_pages_delta")["verdict"],
        "missing"
    );
    // The timing rows carry a p-value from 4+4 samples.
    let t = row("memmap devdax:4K:mem memmap_init");
    assert!(t["p_value"].as_f64().is_some(), "{t}");
    let charts = charts_in_chromium(&ab.join("report.html")).expect("the page's script ran");
    // Per kernel: struct page memory, memmap init time, rmap times; 6.12 adds batch sizes.
    assert!(charts >= 7, "{charts} charts");
}

/// Sum of a fault tracepoint's `result` counts that have `bit` set.
fn results_with(faults: &Value, probe: &str, bit: u64) -> u64 {
    let p = faults
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == probe)
        .unwrap_or_else(|| panic!("no {probe} in {faults}"));
    arg_values(p)
        .iter()
        .filter(|(v, _)| v & bit != 0)
        .map(|(_, c)| c)
        .sum()
}

fn calls(faults: &Value, probe: &str) -> u64 {
    faults
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["probe"] == probe)
        .and_then(|p| p["calls"].as_u64())
        .unwrap_or_else(|| panic!("no {probe} in {faults}"))
}

fn pin_try<'a>(row: &'a Value, driver: &str) -> &'a Value {
    entry(row, "pins", "driver", driver)
}

/// The fsdax suite on ext4 and xfs, and the PFN-map row, in the default VM: PMD against
/// PTE faults counted by the fs_dax tracepoints, pins tried, a BAR with no struct page
/// whose pins are refused with their errno, and the namespace restored.
#[test]
fn fsdax_suite_and_pfnmap_row_on_612() {
    const NOPAGE: u64 = 0x100;
    const FALLBACK: u64 = 0x800;
    let (out, dir) = in_vm(
        &[],
        &[
            "run",
            "--suite",
            "fsdax",
            "--size",
            "32M",
            "--repeat",
            "3",
            "--out",
            "fsdax.json",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r = read_json(&dir.path().join("fsdax.json"));
    assert!(
        r["context"]["restored"]
            .as_str()
            .unwrap()
            .starts_with("verified: namespace0.0 mode=fsdax map=mem"),
        "{}",
        r["context"]
    );
    assert!(stdout.contains("fsdax suite: a 32 MiB file per filesystem"));
    let pages = 32 * 256;
    let rows = r["fsdax"]["results"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|x| x["fs"].as_str().unwrap()).collect();
    assert_eq!(names, ["ext4", "xfs"]);
    for x in rows {
        let fs = x["fs"].as_str().unwrap();
        assert_eq!(x["status"], "measured", "{fs}: {x}");
        assert_eq!(x["mapping_aligned"], true, "{fs}");
        // --repeat 3: 3 rounds if precise (never: no 95 % interval has fewer than 6), so
        // 6 when the cap (twice --repeat) allows and the 6 are within ±5 %, else 6 at the cap.
        let fault: Vec<f64> = x["fault_ns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(fault.len(), 6, "{fs}: {fault:?}");
        assert_rounds_followed_precision(&[fault], (3, 6, 5.0), fs);
        // Laid out for PMDs before anything was timed (FIEMAP): 16 aligned 2M pieces.
        assert_eq!(x["file_pmd_pieces"], 16, "{fs}");
        // 6.12 maps each 2 MiB piece as a pfn range, no folio (folios came in 6.15).
        assert_eq!(fault_probe(x, "vmf_insert_pfn_pmd"), Some(16), "{fs}");
        assert_eq!(
            fault_probe(x, "vmf_insert_folio_pmd"),
            None,
            "{fs}: not in 6.12"
        );
        // The positive control of "no struct page": every pfn of the file has one in the
        // vmemmap, where kpageflags says NOPAGE.
        assert_eq!(
            x["pages"]["vmemmap_struct_pages"], pages,
            "{fs}: {}",
            x["pages"]
        );
        assert!(x["traced_fault_ns"].as_u64().unwrap() > 0, "{fs}");
        // 2 MiB-aligned mapping of a file made with 2 MiB stripes: 16 PMD mappings.
        let f = &x["faults"];
        let pmd = calls(f, "dax_pmd_fault_done");
        assert_eq!(
            results_with(f, "dax_pmd_fault_done", NOPAGE),
            16,
            "{fs}: {f}"
        );
        assert_eq!(results_with(f, "dax_pmd_fault_done", FALLBACK), 0, "{fs}");
        assert_eq!(pmd, 16, "{fs}");
        assert_eq!(calls(f, "dax_pte_fault_done"), 0, "{fs}");
        // 4 KiB off alignment: every PMD try falls back and each page takes a PTE fault.
        let m = &x["misaligned_faults"];
        let tries = calls(m, "dax_pmd_fault_done");
        assert!(tries > 0, "{fs}: {m}");
        assert_eq!(
            results_with(m, "dax_pmd_fault_done", FALLBACK),
            tries,
            "{fs}"
        );
        assert_eq!(calls(m, "dax_pte_fault_done"), pages, "{fs}");
        // The perf witness, with no BPF attached: the same 16 PMD faults, and 16 user
        // faults in the mapping's addresses (page-faults counts the whole process: CI saw
        // 17, one major, the binary's text paged in); no hardware counter under emulation.
        let perf = |e: &str| {
            x["perf"]["counts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c[0] == e)
                .map(|c| c[1].as_u64().unwrap())
        };
        assert_eq!(
            perf("fs_dax:dax_pmd_fault_done"),
            Some(16),
            "{fs}: {}",
            x["perf"]
        );
        assert_eq!(perf("fs_dax:dax_pte_fault_done"), Some(0), "{fs}");
        assert_eq!(
            perf("page faults in the mapping"),
            Some(16),
            "{fs}: {}",
            x["perf"]
        );
        assert!(perf("page-faults").unwrap() >= 16, "{fs}: {}", x["perf"]);
        assert!(
            x["perf"]["not_counted"].to_string().contains("cycles"),
            "{fs}: {}",
            x["perf"]
        );
        // pagemap gives a pfn for every page; kpageflags says what it can of them.
        assert_eq!(x["pages"]["present"], pages, "{fs}");
        // 6.12 does not count DAX mappings in Rss (7.3 does: 32768 kB).
        assert_eq!(x["smaps"]["rss_kb"], 0, "{fs}: {}", x["smaps"]);
        assert!(!x["smaps"]["vm_flags"].as_str().unwrap().is_empty());
        // A short-term FOLL_PIN of fsdax works; each pin kind has an outcome.
        assert_eq!(pin_try(x, "odirect")["status"], "measured", "{fs}");
        let ring = pin_try(x, "io_uring");
        assert!(
            ring["status"] == "measured" || ring["errno"].is_string(),
            "{ring}"
        );
    }
    assert!(r["fsdax"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["agrees"] == true));

    // The PFN-map row: QEMU's ivshmem BAR, read-only.
    let p = &r["pfnmap"];
    assert_eq!(p["status"], "measured", "{p}");
    assert!(p["device"].as_str().unwrap().contains("[1af4:1110]"), "{p}");
    assert_eq!(p["nr_memmap_pages_delta"], 0);
    assert_eq!(p["pagemap_present"], 0, "pagemap skips VM_PFNMAP");
    assert!(p["smaps"]["vm_flags"]
        .as_str()
        .unwrap()
        .split(' ')
        .any(|f| f == "pf"));
    let bar_pages = p["bytes"].as_u64().unwrap() / 4096;
    assert_eq!(p["pages"]["present"], bar_pages);
    let nopage = p["pages"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f[0] == "NOPAGE" || f[0] == "BEYOND_MAX_PFN")
        .map(|f| f[1].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(nopage, bar_pages, "no pfn of the BAR has a struct page");
    // The negative control, by the method that said yes for the file's pfns.
    assert_eq!(p["pages"]["vmemmap_struct_pages"], 0, "{}", p["pages"]);
    for d in ["io_uring", "odirect"] {
        let t = pin_try(p, d);
        assert_eq!(t["status"], "refused", "{t}");
        assert_eq!(t["errno"], "EFAULT", "{t}");
    }
    assert!(stdout.contains("struct pages: 0"));
    assert!(stdout.contains("probe effect (traced round time / untraced median, 2 cells)"));

    // The same file through compare (with itself) and report: the new metrics are there.
    let f = dir.path().join("fsdax.json");
    let c = run(foliobench().arg("compare").arg(&f).arg(&f));
    assert!(c.status.success());
    let text = String::from_utf8_lossy(&c.stdout);
    for m in [
        "fsdax xfs pmd_mapped",
        "fsdax ext4 fault_in_per_gib",
        "pfnmap pci_bar struct_pages",
    ] {
        assert!(text.contains(m), "{m} missing from:\n{text}");
    }
    let html = dir.path().join("r.html");
    let rep = run(foliobench().arg("report").arg(&f).arg("--html").arg(&html));
    assert!(rep.status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("fsdax read fault-in time per GiB"));
    assert!(page.contains("PMD mappings against PTE faults"));
}

/// The hugetlb suite on one kernel: 64 2M pages, HVO off then on. Returns the 2M rows
/// (off, on) after the checks every kernel must pass: every round obtained its pages, the
/// vmemmap given back by free memory is the model's (0 off; 7 of 8 pages per 2M page on:
/// 1792 kB), the per-folio optimize probe ran once per page either way and the restore
/// probe for every page on 6.1 and only for optimized pages since; the control and pool
/// put back.
fn hugetlb_2m_rows(
    kernel: &str,
    (optimize, restore): (&str, &str),
    restores_off: u64,
) -> (Value, Value) {
    hugetlb_rows(kernel, &[], (optimize, restore), restores_off).0
}

/// `hugetlb_2m_rows`, booted with `append` on the kernel command line; also the whole
/// suite's results.
fn hugetlb_rows(
    kernel: &str,
    append: &[&str],
    (optimize, restore): (&str, &str),
    restores_off: u64,
) -> ((Value, Value), Value) {
    let fb = env!("CARGO_BIN_EXE_foliobench");
    let inner = format!(
        "{fb} run --suite hugetlb --size 128M --repeat 3 --out h.json && \
         cat /proc/sys/vm/hugetlb_optimize_vmemmap \
           /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages > after.txt"
    );
    let mut args = vec!["--kernel", kernel];
    args.extend(append);
    let (out, dir) = in_vm_sh(&args, &inner);
    // A boot pool (1G) is released just before its own size's rows, not before the 2M
    // rows: kernel memory allocated while the freed GiB lies free (probes loaded) lands in
    // it, and the 1G pool then cannot grow back.
    let said = String::from_utf8_lossy(&out.stdout);
    if let Some(release) = said.find("releasing the boot pool") {
        let last_2m = said.rfind("hugetlb: 2M x").expect("the 2M rows");
        let first_1g = said.find("hugetlb: 1G x").expect("the 1G rows");
        assert!(last_2m < release && release < first_1g, "{kernel}: {said}");
    }
    let stdout = std::fs::read_to_string(dir.path().join("after.txt")).unwrap();
    let r = read_json(&dir.path().join("h.json"));
    let h = &r["hugetlb"];
    assert_eq!(h["hvo_control"], false, "{kernel}: the control as found");
    let row = |hvo: bool| {
        h["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["page_kb"] == 2048 && x["hvo"] == hvo)
            .unwrap_or_else(|| panic!("{kernel}: no 2M hvo={hvo} row"))
            .clone()
    };
    let (off, on) = (row(false), row(true));
    for (x, freed_kb, restores) in [(&off, 0i64, restores_off), (&on, 1792, 64)] {
        assert_eq!(x["outcome"]["status"], "measured", "{kernel}: {x}");
        for s in x["samples"].as_array().unwrap() {
            assert_eq!(s["obtained"], 64, "{kernel}: {s}");
        }
        let freed: Vec<i64> = x["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| 64 * 2048 - s["taken_kb"].as_i64().unwrap())
            .collect();
        let closest = freed.iter().map(|f| (f - freed_kb).abs()).min().unwrap();
        assert!(
            closest <= 512,
            "{kernel} hvo={}: vmemmap freed {freed:?} kB, model {freed_kb}",
            x["hvo"]
        );
        let calls = |f: &str| {
            x["probes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["function"] == f)
                .unwrap_or_else(|| panic!("{kernel}: no probe on {f}: {}", x["probes"]))["calls"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(calls(optimize), 64, "{kernel}");
        assert_eq!(calls(restore), restores, "{kernel}");
    }
    // Restored: the control off and the pool empty, as found.
    assert!(
        stdout.contains("0\n0\n"),
        "{kernel}: after the run: {stdout}"
    );
    ((off, on), h.clone())
}

/// 7.3 booted with `hugepagesz=1G hugepages=1`: the boot pool released once gives back the
/// whole GiB with no vmemmap restored (HVO off at boot), and the 1G rows are measured from
/// empty afterwards: with HVO on each page gives back 4095 of its 4096 vmemmap pages.
fn hugetlb_boot_pool_on_73(h: &Value) {
    let boot = &h["boot_pools"][0];
    assert_eq!(boot["page_kb"], 1 << 20, "{h}");
    assert_eq!(
        (boot["pages"].as_u64(), boot["hvo"].as_bool()),
        (Some(1), Some(false))
    );
    let back = boot["returned_kb"].as_i64().unwrap();
    assert!((back - (1 << 20)).abs() <= 512, "released {back} kB");
    let memmap =
        boot["memmap_pages"].as_i64().unwrap() + boot["memmap_boot_pages"].as_i64().unwrap();
    assert_eq!(memmap, 0, "{boot}");
    let on = h["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["page_kb"] == 1 << 20 && x["hvo"] == true)
        .unwrap();
    assert_eq!(on["outcome"]["status"], "measured", "{on}");
    for s in on["samples"].as_array().unwrap() {
        assert_eq!(s["obtained"], 1, "{s}");
        let grow = s["memmap_pages_grow"].as_i64().unwrap()
            + s["memmap_boot_pages_grow"].as_i64().unwrap();
        assert_eq!(grow, -4095, "{s}");
    }
}

/// HugeTLB's vmemmap optimization, the trick the seeds' compound devmaps copied, measured
/// the same way on 6.1, 6.12 and 7.3 (1G pages: the 4 GiB VM cannot allocate one at run
/// time, and says so). Where the kernel has the memmap counters (6.11+), they account the
/// 448 vmemmap pages 64 optimized 2M pages give back, exactly: on 6.12 as +64 on
/// nr_memmap_pages (a new head page each) and -512 on nr_memmap_boot_pages (their
/// boot-time vmemmap), on 7.3 as -448 on nr_memmap_pages once the first round has used up
/// boot-time vmemmap; shrinking the pool restores 448.
#[test]
fn hugetlb_suite_on_61_612_73() {
    let (_, on) = hugetlb_2m_rows(
        DEBIAN_61,
        ("hugetlb_vmemmap_optimize", "hugetlb_vmemmap_restore"),
        64,
    );
    assert!(
        on["samples"][0]["memmap_pages_grow"].is_null(),
        "6.1 has no nr_memmap_pages"
    );
    for kernel in [DEBIAN_612, DEBIAN_73] {
        // 7.3 boots with one 1G page reserved (HVO off, Debian's default): inside the test
        // VM the suite releases that pool once, then measures 1G from empty in the range
        // it freed.
        let append: &[&str] = if kernel == DEBIAN_73 {
            &["--append", "hugepagesz=1G hugepages=1"]
        } else {
            &[]
        };
        let ((off, on), h) = hugetlb_rows(
            kernel,
            append,
            (
                "__hugetlb_vmemmap_optimize_folio",
                "__hugetlb_vmemmap_restore_folio",
            ),
            0,
        );
        if kernel == DEBIAN_73 {
            hugetlb_boot_pool_on_73(&h);
        }
        let sum = |s: &Value, a: &str, b: &str| s[a].as_i64().unwrap() + s[b].as_i64().unwrap();
        for s in off["samples"].as_array().unwrap() {
            assert_eq!(sum(s, "memmap_pages_grow", "memmap_boot_pages_grow"), 0);
        }
        for s in on["samples"].as_array().unwrap() {
            assert_eq!(
                sum(s, "memmap_pages_grow", "memmap_boot_pages_grow"),
                -448,
                "{kernel}: {s}"
            );
            assert_eq!(
                sum(s, "memmap_pages_shrink", "memmap_boot_pages_shrink"),
                448,
                "{kernel}: {s}"
            );
        }
        if kernel == DEBIAN_612 {
            let s = &on["samples"][0];
            assert_eq!(
                (
                    s["memmap_pages_grow"].as_i64(),
                    s["memmap_boot_pages_grow"].as_i64()
                ),
                (Some(64), Some(-512))
            );
        }
    }
}
