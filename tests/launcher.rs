//! The test-VM launcher's handling of VMs that die: boots that oops before the guest
//! command runs are retried, then reported; a guest that dies mid-command is reported.
//!
//! A real kernel oopses at boot only by chance (TCG text patching), so these tests put a
//! stand-in `vng` first on PATH: it prints an oops and exits the first N times, then runs
//! the guest script directly on this host. It stands in for the VM's failure modes only;
//! what runs inside is the real foliobench.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::*;

const FAKE_VNG: &str = r#"#!/bin/bash
n=$(( $(cat "$FAKE_VNG_STATE/boots" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_VNG_STATE/boots"
if [ "$n" -le "${FAKE_VNG_OOPS:-0}" ]; then
  echo "[    2.480389] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI" >&2
  echo "[    2.487732] Kernel panic - not syncing: Fatal exception in interrupt" >&2
  exit 255
fi
if [ -n "$FAKE_VNG_DIE_RUNNING" ]; then
  echo foliobench-guest-start
  exit 255
fi
exec sh -c "${@: -1}"
"#;

fn launch(oops: u32, die_running: bool, guest: &[&str]) -> (Output, u32) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let vng = bin.join("vng");
    std::fs::write(&vng, FAKE_VNG).unwrap();
    std::fs::set_permissions(&vng, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Any file with the x86 boot header passes as a bzImage.
    let mut image = vec![0u8; 0x1000];
    image[0x202..0x206].copy_from_slice(b"HdrS");
    let image_path = dir.path().join("bzImage");
    std::fs::write(&image_path, image).unwrap();

    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = foliobench();
    cmd.env("PATH", path)
        .env("FAKE_VNG_STATE", dir.path())
        .env("FAKE_VNG_OOPS", oops.to_string())
        .current_dir(dir.path())
        .args(["vm", "--kernel"])
        .arg(&image_path)
        .arg("--");
    if die_running {
        cmd.env("FAKE_VNG_DIE_RUNNING", "1");
    }
    cmd.args(guest);
    let out = run(&mut cmd);
    let boots = std::fs::read_to_string(dir.path().join("boots")).unwrap_or_default();
    (out, boots.trim().parse().unwrap_or(0))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
    assert!(stderr(&out).contains("started but the VM ended without an exit status"));
}

#[test]
fn the_guest_exit_status_is_returned() {
    let (out, _) = launch(0, false, &["doctor", "--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("--no-such-flag"),
        "the guest's error is streamed"
    );
}
