//! Which accelerator the test VM runs under.
//!
//! /dev/kvm, and even a QEMU that starts a vCPU with it, prove nothing: on some nested hosts
//! every real guest dies at its first instructions under KVM (QEMU prints "KVM internal
//! error" with a register dump and then waits forever). So KVM counts as working only once
//! a real guest booted with it has reached the guest-start marker. The verdict is kept for
//! the rest of the host's boot (keyed by its boot_id), so the failed try costs one boot per
//! host boot at most.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::exit::env;

/// What the user asked for with `--accel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if a guest is proven to boot with it on this host boot, else software emulation.
    Auto,
    /// KVM or an error (exit 3) saying why not.
    Kvm,
    /// Software emulation (QEMU TCG).
    Tcg,
}

/// What a VM actually ran under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// How long a guest may take to reach the guest-start marker before it counts as dead.
    /// Seen here: ~7 s (6.12) to ~24 s (6.1) under TCG on 2 cores; KVM boots in seconds.
    pub fn boot_deadline(self) -> Duration {
        match self {
            Accel::Kvm => Duration::from_secs(60),
            Accel::Tcg => Duration::from_secs(180),
        }
    }
}

/// Console lines with which QEMU says that KVM cannot run this guest.
pub const KVM_FAILURES: &[&str] = &[
    "KVM internal error",
    "KVM: entry failed",
    "emulation failure",
    "failed to initialize kvm",
    "Could not access KVM kernel module",
    // QEMU asserting in its KVM code as the vCPU starts (seen: "kvm_buf_set_msrs: Assertion
    // ... failed" after "failed to set MSR 0x10a"): the process aborts, no guest ran.
    "/kvm/kvm.c",
    "failed to set MSR",
];

/// The KVM device; tests point this elsewhere to play a host with or without one.
fn kvm_device() -> PathBuf {
    std::env::var_os("FOLIOBENCH_KVM_DEVICE")
        .map_or_else(|| PathBuf::from("/dev/kvm"), PathBuf::from)
}

/// Whether this process may open the KVM device at all.
fn kvm_openable() -> Result<(), String> {
    let dev = kvm_device();
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev)
        .map(drop)
        .map_err(|e| format!("{}: {e}", dev.display()))
}

/// A verdict about KVM on this host boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub boot_id: String,
    pub accel: Accel,
    pub reason: String,
    /// Seconds since the epoch.
    pub decided: u64,
}

/// Under /run: gone when the host reboots, which is when the verdict may change.
fn verdict_path() -> PathBuf {
    std::env::var_os("FOLIOBENCH_ACCEL_CACHE").map_or_else(
        || PathBuf::from("/run/foliobench/accel.json"),
        PathBuf::from,
    )
}

/// This host boot's id: verdicts kept under /run hold for it alone.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The verdict of an earlier VM on this host boot, if any.
pub fn cached() -> Option<Verdict> {
    let text = std::fs::read_to_string(verdict_path()).ok()?;
    let v: Verdict = serde_json::from_str(&text).ok()?;
    (v.boot_id == boot_id()).then_some(v)
}

/// Keeps what a boot proved. A cache that cannot be written costs a probe next time, no more.
pub fn remember(accel: Accel, reason: &str) {
    let path = verdict_path();
    let v = Verdict {
        boot_id: boot_id(),
        accel,
        reason: reason.to_string(),
        decided: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    crate::output::keep_verdict(&path, &v, "the accelerator verdict");
}

/// How the first boot is made, and whether a KVM failure may fall back to TCG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub accel: Accel,
    pub fallback: bool,
    /// One line on why this accelerator.
    pub why: String,
}

pub fn plan(choice: AccelChoice) -> Result<Plan> {
    let tcg = |why: String| Plan {
        accel: Accel::Tcg,
        fallback: false,
        why,
    };
    match choice {
        AccelChoice::Tcg => Ok(tcg("--accel tcg".into())),
        AccelChoice::Kvm => {
            kvm_openable().map_err(|e| env(format!("--accel kvm: KVM cannot be used: {e}")))?;
            Ok(Plan {
                accel: Accel::Kvm,
                fallback: false,
                why: "--accel kvm".into(),
            })
        }
        AccelChoice::Auto => {
            if let Err(e) = kvm_openable() {
                return Ok(tcg(format!("no usable KVM: {e}")));
            }
            Ok(match cached() {
                Some(v) if v.accel == Accel::Tcg => tcg(format!(
                    "KVM failed earlier on this host boot ({}); kept in {}",
                    v.reason,
                    verdict_path().display()
                )),
                Some(_) => Plan {
                    accel: Accel::Kvm,
                    fallback: true,
                    why: "KVM booted a guest earlier on this host boot".into(),
                },
                None => Plan {
                    accel: Accel::Kvm,
                    fallback: true,
                    why: "trying KVM: a guest must reach its start marker to prove it works".into(),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_fit_the_accelerator() {
        assert!(Accel::Kvm.boot_deadline() < Accel::Tcg.boot_deadline());
        assert_eq!(Accel::Tcg.boot_deadline(), Duration::from_secs(180));
    }

    #[test]
    fn a_verdict_of_another_host_boot_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("accel.json");
        std::env::set_var("FOLIOBENCH_ACCEL_CACHE", &p);
        remember(Accel::Tcg, "KVM internal error");
        let v = cached().expect("this boot's verdict");
        assert_eq!(v.accel, Accel::Tcg);
        assert_eq!(v.reason, "KVM internal error");
        let stale = Verdict {
            boot_id: "not-this-boot".into(),
            ..v
        };
        std::fs::write(&p, serde_json::to_vec(&stale).unwrap()).unwrap();
        assert_eq!(cached(), None);
        std::env::remove_var("FOLIOBENCH_ACCEL_CACHE");
    }
}
