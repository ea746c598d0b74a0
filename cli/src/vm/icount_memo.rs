//! Kernels that did not start under the instruction clock on this host boot.
//!
//! Debian 6.1 stops at "x86: Booting SMP configuration:" under QEMU's icount with two vCPUs
//! (every boot, with shift=0 or 1, sleep on or off; it starts with one vCPU, and 6.12 and
//! later start with two). `vm --clock auto` then boots it on the wall clock, and keeps
//! that here so that the next VM of the same kernel does not wait out the boot deadline
//! again. Kept under /run like the accelerator's verdict: a host reboot (a new QEMU) clears it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::vm::accel::boot_id;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    boot_id: String,
    /// Kernel image path -> why it did not start under the instruction clock.
    kernels: BTreeMap<String, String>,
}

fn memo_path() -> PathBuf {
    std::env::var_os("FOLIOBENCH_CLOCK_CACHE").map_or_else(
        || PathBuf::from("/run/foliobench/icount.json"),
        PathBuf::from,
    )
}

fn read() -> Memo {
    let memo: Memo = std::fs::read_to_string(memo_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if memo.boot_id == boot_id() {
        memo
    } else {
        Memo::default()
    }
}

/// Why `kernel` did not start under the instruction clock earlier on this host boot.
pub fn did_not_start(kernel: &Path) -> Option<String> {
    read().kernels.get(&kernel.display().to_string()).cloned()
}

/// Keeps that `kernel` did not start under the instruction clock. A memo that cannot be
/// written costs one more wait next time, no more.
pub fn remember(kernel: &Path, reason: &str) {
    let mut memo = read();
    memo.boot_id = boot_id();
    memo.kernels
        .insert(kernel.display().to_string(), reason.to_string());
    crate::output::keep_verdict(&memo_path(), &memo, "the instruction clock's verdict");
}
