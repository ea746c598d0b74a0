//! The test-VM launcher's handling of VMs that die or never live: boots that oops before
//! the guest command runs are retried, then reported; a guest that dies mid-command is
//! reported; a KVM that starts QEMU but kills every guest is found out by the boot itself
//! and left for software emulation (or refused with `--accel kvm`); a guest that shows no
//! sign of life is stopped by the boot watchdog, not by `--timeout`; the guest command is
//! checked, and the directories it writes shared, before anything boots.
//!
//! A real kernel oopses at boot only by chance (TCG text patching), and a KVM that kills
//! guests is a property of some hosts, so these tests put a stand-in `vng` first on PATH:
//! it plays those failures (as the machine of issue 14 does: QEMU prints "KVM internal
//! error" and a register dump, then waits forever), else runs the guest script directly
//! on this host. It stands in for the VM's failure modes only; what runs inside is the
//! real foliobench.
// A test is a scenario read top to bottom: the 80-line lint is for the tool's functions.
#![allow(clippy::too_many_lines)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::*;

const FAKE_VNG: &str = r#"#!/bin/bash
n=$(( $(cat "$FAKE_VNG_STATE/boots" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_VNG_STATE/boots"
accel=kvm
cpus=
prev=
for a in "$@"; do
  [ "$a" = --disable-kvm ] && accel=tcg
  [ "$prev" = --cpus ] && cpus=$a
  prev=$a
done
echo "$accel" >> "$FAKE_VNG_STATE/accels"
echo "$cpus" >> "$FAKE_VNG_STATE/cpus"
if [ "$accel" = kvm ] && [ -n "$FAKE_KVM_BROKEN" ]; then
  echo "KVM internal error. Suberror: 1" >&2
  echo "extra data[0]: 0x0000000000000001" >&2
  echo "emulation failure" >&2
  echo "RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000000 RDX=0000000000000000" >&2
  echo "Code=fa 0f 77 c4 4e 8d 54 00 00 <c4> 42 69 f7 d1 c4 42 69 f7 c0" >&2
  exec sleep 600
fi
if [ "$accel" = kvm ] && [ -n "$FAKE_KVM_ABORTS" ]; then
  echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2
  echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion \`ret == cpu->kvm_msr_buf->nmsrs' failed." >&2
  exit 134
fi
# Debian 6.1 under QEMU's icount with two vCPUs: the boot stops bringing up the second.
if [ -n "$FAKE_ICOUNT_SILENT" ] && [[ "$*" == *"-icount "* ]] && [ "$cpus" -gt 1 ]; then
  echo "[    0.519230] x86: Booting SMP configuration:"
  exec sleep 600
fi
if [ "$accel" = kvm ] && [ -n "$FAKE_KVM_SILENT" ] || [ -n "$FAKE_SILENT" ]; then
  exec sleep 600
fi
# vng passes the guest command on the kernel command line (2048 bytes on x86).
last="${@: -1}"
if [ "${#last}" -gt 1024 ]; then
  echo "[    0.087632] WARNING: CPU: 0 PID: 0 at lib/string_helpers.c:1032 __fortify_report+0x43/0x50" >&2
  exec sleep 600
fi
if [ "$n" -le "${FAKE_VNG_OOPS:-0}" ]; then
  echo "[    2.480389] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI" >&2
  echo "[    2.487732] Kernel panic - not syncing: Fatal exception in interrupt" >&2
  exit 255
fi
if [ -n "$FAKE_VNG_DIE_RUNNING" ]; then
  echo foliobench-guest-start
  echo "[   41.202611] BUG: kernel NULL pointer dereference, address: 0000000000000008"
  exit 255
fi
exec sh -c "${@: -1}"
"#;

/// A stand-in vng and kernel image in a directory of their own.
struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    fn new() -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let vng = bin.join("vng");
        std::fs::write(&vng, FAKE_VNG).unwrap();
        std::fs::set_permissions(&vng, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Any file with the x86 boot header passes as a bzImage.
        let mut image = vec![0u8; 0x1000];
        image[0x202..0x206].copy_from_slice(b"HdrS");
        std::fs::write(dir.path().join("bzImage"), image).unwrap();
        Fake { dir }
    }

    /// `foliobench vm --kernel <fake> [vm_args] -- [guest]` with the stand-in vng first on
    /// PATH, a KVM device that opens (/dev/null) unless `env` says otherwise, and an
    /// accelerator verdict kept in this directory (never the host's).
    fn vm(&self, env: &[(&str, &str)], vm_args: &[&str], guest: &[&str]) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = foliobench();
        cmd.env("PATH", path)
            .env("FAKE_VNG_STATE", self.dir.path())
            .env("FOLIOBENCH_KVM_DEVICE", "/dev/null")
            .env("FOLIOBENCH_ACCEL_CACHE", self.dir.path().join("accel.json"))
            .env(
                "FOLIOBENCH_CLOCK_CACHE",
                self.dir.path().join("icount.json"),
            )
            .current_dir(self.dir.path())
            .args(["vm", "--timeout", "5m", "--kernel"])
            .arg(self.dir.path().join("bzImage"))
            .args(vm_args)
            .arg("--")
            .args(guest);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    }

    /// The accelerator of each boot so far.
    fn accels(&self) -> Vec<String> {
        self.per_boot("accels")
    }

    /// Each boot's `--cpus`.
    fn cpus(&self) -> Vec<String> {
        self.per_boot("cpus")
    }

    fn per_boot(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `foliobench vm --accel tcg` with a stand-in that oopses `oops` times first (or lets the
/// guest die once started); returns the output and how many boots there were.
fn launch(oops: u32, die_running: bool, guest: &[&str]) -> (Output, u32) {
    let f = Fake::new();
    let oops = oops.to_string();
    let mut env = vec![("FAKE_VNG_OOPS", oops.as_str())];
    if die_running {
        env.push(("FAKE_VNG_DIE_RUNNING", "1"));
    }
    let out = f.vm(&env, &["--accel", "tcg"], guest);
    (out, f.accels().len() as u32)
}

#[test]
fn a_boot_oops_is_retried_and_said() {
    let (out, boots) = launch(2, false, &["doctor", "--json"]);
    assert_eq!(boots, 3, "two oopses, then the run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("Oops: int3")
            && err.contains("attempt 2 of 3")
            && err.contains("attempt 3 of 3"),
        "{err}"
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the guest's output is forwarded whole");
    assert_eq!(doc["schema_version"], 1);
}

#[test]
fn a_kernel_that_never_boots_is_an_environment_error_with_its_log() {
    let (out, boots) = launch(99, false, &["doctor"]);
    assert_eq!(boots, 3, "gives up after three boots");
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("failed to boot 3 times") && err.contains("Kernel panic - not syncing"),
        "{err}"
    );
}

#[test]
fn a_guest_that_dies_mid_command_is_not_retried() {
    let (out, boots) = launch(0, true, &["doctor"]);
    assert_eq!(
        boots, 1,
        "the guest command had started: never run it twice"
    );
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(
        err.contains("started but the VM ended without an exit status"),
        "{err}"
    );
    // What the kernel said after the start explains it.
    assert!(
        err.contains("First sign of trouble: [   41.202611] BUG: kernel NULL pointer"),
        "{err}"
    );
}

#[test]
fn the_guest_exit_status_is_returned() {
    // The fsdax suite refuses to run without a namespace: exit 2, from the guest.
    let (out, boots) = launch(0, false, &["run", "--suite", "fsdax"]);
    assert_eq!(boots, 1);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("--namespace"),
        "the guest's error is streamed"
    );
}

/// A long guest command (a shell script through `trace -- sh -c`, say) must not reach the
/// kernel command line, which a real kernel overflows at boot: it travels in a file.
#[test]
fn a_long_guest_command_does_not_overflow_the_kernel_command_line() {
    let f = Fake::new();
    let long = format!("true {}", "x".repeat(3000));
    let out = f.vm(
        &[],
        &["--accel", "tcg", "--boot-deadline", "5s"],
        &["timeit", "--out", "t.ns", "--", "sh", "-c", &long],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.accels(), ["tcg"], "booted once");
    assert!(f.dir.path().join("t.ns").exists(), "the guest command ran");
}

#[test]
fn a_guest_command_typo_costs_no_boot() {
    let (out, boots) = launch(0, false, &["doctor", "--no-such-flag"]);
    assert_eq!(boots, 0, "nothing booted");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--no-such-flag") && err.contains("nothing was booted"),
        "{err}"
    );
    // --help is answered here by the same binary.
    let (out, boots) = launch(0, false, &["run", "--help"]);
    assert_eq!((boots, out.status.code()), (0, Some(0)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--suite"));
}

/// The machine of issue 14: /dev/kvm opens, QEMU starts, every guest dies at its first
/// instruction and QEMU waits forever. auto falls back to TCG at once (QEMU said why), keeps
/// that verdict for the host's boot, and the results say which accelerator ran.
#[test]
fn a_kvm_that_kills_guests_falls_back_to_software_emulation() {
    let f = Fake::new();
    let broken = [("FAKE_KVM_BROKEN", "1")];
    let out = f.vm(&broken, &[], &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "not --timeout's exit 5");
    assert_eq!(f.accels(), ["kvm", "tcg"]);
    let err = stderr(&out);
    assert!(
        err.contains("KVM cannot run this guest: KVM internal error")
            && err.contains("software emulation (TCG)"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kernel"]["accelerator"], "tcg");

    // The verdict holds for this host boot: no second KVM try.
    let out = f.vm(&broken, &[], &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(f.accels(), ["kvm", "tcg", "tcg"]);
    assert!(stderr(&out).contains("KVM failed earlier on this host boot (KVM internal error"));
}

/// A host whose QEMU aborts in its KVM code as the vCPU starts (an assertion after "failed
/// to set MSR"): a death before the guest started under an unproven KVM is KVM's, so auto
/// falls back to TCG at once rather than booting KVM again until the attempts run out.
#[test]
fn a_qemu_that_aborts_under_kvm_falls_back_to_software_emulation() {
    let f = Fake::new();
    let out = f.vm(&[("FAKE_KVM_ABORTS", "1")], &[], &["doctor", "--json"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(f.accels(), ["kvm", "tcg"]);
    assert!(
        err.contains("KVM cannot run this guest") && err.contains("failed to set MSR"),
        "{err}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kernel"]["accelerator"], "tcg");
}

/// The same machine with `--accel kvm`: an error with QEMU's own words, exit 3.
#[test]
fn accel_kvm_that_cannot_run_a_guest_is_an_error_with_the_reason() {
    let f = Fake::new();
    let out = f.vm(
        &[("FAKE_KVM_BROKEN", "1")],
        &["--accel", "kvm"],
        &["doctor"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(f.accels(), ["kvm"], "no fallback when KVM was asked for");
    let err = stderr(&out);
    assert!(
        err.contains("did not start under kvm: KVM internal error")
            && err.contains("Code=fa 0f 77")
            && err.contains("--accel tcg"),
        "{err}"
    );
    // No KVM device at all: refused before booting.
    let out = f.vm(
        &[("FOLIOBENCH_KVM_DEVICE", "/nonexistent/kvm")],
        &["--accel", "kvm"],
        &["doctor"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("KVM cannot be used: /nonexistent/kvm"));
    assert_eq!(f.accels(), ["kvm"], "nothing booted");
}

/// A KVM guest that hangs without a word is stopped by the boot watchdog, and auto falls
/// back; a guest silent under TCG too is booted again (3 boots in all), then an error with
/// what was seen, exit 3, not a wait for --timeout.
#[test]
fn the_boot_watchdog_stops_a_guest_without_sign_of_life() {
    let f = Fake::new();
    let out = f.vm(
        &[("FAKE_KVM_SILENT", "1")],
        &["--boot-deadline", "3s"],
        &["doctor", "--json"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(f.accels(), ["kvm", "tcg"]);
    assert!(stderr(&out).contains("no sign of life (guest-start marker) within 3s"));

    let out = f.vm(
        &[("FAKE_SILENT", "1")],
        &["--accel", "tcg", "--boot-deadline", "3s"],
        &["doctor"],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "the watchdog's exit, not --timeout's 5"
    );
    // A hang before the guest command started is booted again, as an oops at boot is; the
    // first silent boot was under auto's instruction clock, which gives way to the wall
    // clock before the three attempts.
    assert_eq!(f.accels(), ["kvm", "tcg", "tcg", "tcg", "tcg", "tcg"]);
    let err = stderr(&out);
    assert!(
        err.contains("booting again (attempt 3 of 3)")
            && err.contains("did not start under tcg: no sign of life")
            && err.contains("QEMU printed nothing")
            && err.contains("raise --boot-deadline"),
        "{err}"
    );
}

/// A KVM that works is used, and proven once per host boot; no KVM device means TCG
/// without a try.
#[test]
fn a_working_kvm_is_used_and_no_kvm_means_tcg() {
    let f = Fake::new();
    let out = f.vm(&[], &[], &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(f.accels(), ["kvm"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kernel"]["accelerator"], "kvm");
    let out = f.vm(&[], &[], &["doctor", "--json"]);
    assert!(stderr(&out).contains("KVM booted a guest earlier on this host boot"));

    let f = Fake::new();
    let out = f.vm(
        &[("FOLIOBENCH_KVM_DEVICE", "/nonexistent/kvm")],
        &[],
        &["doctor", "--json"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(f.accels(), ["tcg"]);
    assert!(stderr(&out).contains("no usable KVM: /nonexistent/kvm"));
}

#[test]
fn accel_values_are_checked() {
    let out = run(foliobench().args(["vm", "--accel", "foo", "--dry-run"]));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("'foo'") && err.contains("auto") && err.contains("kvm") && err.contains("tcg"),
        "{err}"
    );
    let out = run(foliobench().args(["vm", "--boot-deadline", "soon", "--dry-run"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--boot-deadline 'soon'"));
}

/// `--append` reaches the guest's kernel command line after foliobench's own memmap=.
#[test]
fn appended_kernel_options_follow_the_pmem_option() {
    let f = Fake::new();
    let out = f.vm(
        &[],
        &[
            "--accel",
            "tcg",
            "--dry-run",
            "--append",
            "transparent_hugepage=never",
            "--append",
            "mitigations=off nosmt",
        ],
        &["doctor"],
    );
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8_lossy(&out.stdout);
    let memmap = line.find("--append 'memmap=2G!4G'").expect(&line);
    let thp = line
        .find("'--append=transparent_hugepage=never'")
        .expect(&line);
    assert!(memmap < thp, "{line}");
    assert!(line.contains("'--append=mitigations=off nosmt'"), "{line}");
}

/// Under TCG the guest's clock is QEMU's instruction counter unless asked otherwise, and the
/// guest is told which clock it runs on (its results record it); under KVM, or with a
/// thread per vCPU, icount does not exist: asking for it is a usage error before any boot.
#[test]
fn the_clock_is_chosen_and_passed_to_the_guest() {
    let f = Fake::new();
    let line = |args: &[&str]| {
        let out = f.vm(&[], args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tcg = line(&["--accel", "tcg", "--dry-run"]);
    assert!(
        tcg.contains("'--qemu-opts=-accel tcg,thread=single -icount shift=0,sleep=off'"),
        "{tcg}"
    );
    assert!(tcg.contains("FOLIOBENCH_CLOCK=instructions"), "{tcg}");
    let wall = line(&["--accel", "tcg", "--clock", "wall", "--dry-run"]);
    assert!(!wall.contains("-icount"), "{wall}");
    assert!(wall.contains("FOLIOBENCH_CLOCK=wall"), "{wall}");
    let multi = line(&["--accel", "tcg", "--tcg-threads", "multi", "--dry-run"]);
    assert!(!multi.contains("-icount"), "{multi}");
    assert!(multi.contains("FOLIOBENCH_CLOCK=wall"), "{multi}");
    for bad in [
        &["--accel", "kvm", "--clock", "instructions"][..],
        &[
            "--accel",
            "tcg",
            "--tcg-threads",
            "multi",
            "--clock",
            "instructions",
        ][..],
    ] {
        let out = f.vm(&[], bad, &[]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--clock instructions needs"),
            "{}",
            stderr(&out)
        );
    }
    assert!(f.accels().is_empty(), "nothing booted");
}

/// A kernel that does not start under the instruction clock (Debian 6.1 with two vCPUs):
/// by default it gets one vCPU there (the clock counts every vCPU's instructions) and
/// starts. Given two: auto boots it again on the wall clock, says so, and the guest records
/// the wall clock; the next VM of that kernel and shape starts on the wall clock at once.
/// Asked for by name, the instruction clock is kept and the boot fails as any other.
#[test]
fn a_kernel_silent_under_the_instruction_clock_falls_back_to_the_wall_clock() {
    let f = Fake::new();
    let env = [("FAKE_ICOUNT_SILENT", "1")];
    let out = f.vm(
        &env,
        &["--accel", "tcg", "--boot-deadline", "3s"],
        &["doctor", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "with 4G RAM + 2G pmem, 1 CPU (the instruction clock counts every vCPU's instructions)"
        ),
        "{}",
        stderr(&out)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kernel"]["clock"]["kind"], "instructions");
    assert_eq!(f.cpus(), ["1"], "one boot, one vCPU");
    let f = Fake::new();
    let args = ["--accel", "tcg", "--boot-deadline", "3s", "--cpus", "2"];
    let out = f.vm(&env, &args, &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("the guest did not start under the instruction clock: no sign of life")
            && err.contains("x86: Booting SMP configuration")
            && err.contains("clock: wall clock"),
        "{err}"
    );
    assert_eq!(f.accels().len(), 2, "one silent boot, one that ran");
    assert_eq!(f.cpus(), ["2", "2"], "--cpus as asked, on either clock");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["kernel"]["clock"]["kind"], "wall", "{}", doc["kernel"]);
    // Remembered: the next VM of the kernel boots once, on the wall clock.
    let out = f.vm(&env, &args, &["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("did not start under the instruction clock earlier on this host boot"),
        "{}",
        stderr(&out)
    );
    assert_eq!(f.accels().len(), 3);
    // By name: no fallback; three silent boots, then exit 3.
    let g = Fake::new();
    let out = g.vm(
        &env,
        &[
            "--accel",
            "tcg",
            "--boot-deadline",
            "2s",
            "--clock",
            "instructions",
            "--cpus",
            "2",
        ],
        &["doctor"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("try --clock wall"),
        "{}",
        stderr(&out)
    );
    assert_eq!(g.accels().len(), 3);
}

/// Output options after `--` name host directories the guest must be able to write: they
/// are shared, or the run is refused before booting.
#[test]
fn the_directories_the_guest_writes_are_shared() {
    let f = Fake::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let out_file = elsewhere.path().join("pin.json");
    let out = f.vm(
        &[],
        &["--accel", "tcg", "--dry-run"],
        &["run", "--suite", "pin", "--out", out_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8_lossy(&out.stdout);
    let want = format!(
        "--rwdir {}",
        elsewhere.path().canonicalize().unwrap().display()
    );
    assert!(line.contains(&want), "{line}");
    // Under TCG one host thread runs every vCPU unless asked otherwise.
    assert!(line.contains("-accel tcg,thread=single"), "{line}");
    let out = f.vm(
        &[],
        &["--accel", "tcg", "--tcg-threads", "multi", "--dry-run"],
        &[],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("thread=single"));
    // report's --html and --markdown too; a directory inside one already shared is not
    // shared twice.
    let sub = elsewhere.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let out = f.vm(&[], &["--accel", "tcg", "--dry-run", "--share"], &[]);
    assert_eq!(out.status.code(), Some(2), "--share needs a value");
    let mut args = vec!["--accel", "tcg", "--dry-run", "--share"];
    let e = elsewhere.path().to_str().unwrap().to_string();
    args.push(&e);
    let html = sub.join("r.html");
    let md = sub.join("r.md");
    let out = f.vm(
        &[],
        &args,
        &[
            "report",
            "a.json",
            "--html",
            html.to_str().unwrap(),
            "--markdown",
            md.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        line.matches("--rwdir").count(),
        3,
        "state, cwd, the --share: {line}"
    );

    // A directory that does not exist on the host: exit 2 before anything boots.
    let out = f.vm(
        &[],
        &["--accel", "tcg"],
        &["doctor", "--out", "/nonexistent-dir/x.json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent-dir"),
        "{}",
        stderr(&out)
    );
    assert!(f.accels().is_empty(), "nothing booted");
}
