//! Kernels that did not start under the instruction clock on this host boot.
//!
//! Debian 6.1 stops at "x86: Booting SMP configuration:" under QEMU's icount with two vCPUs
//! (every boot, with shift=0 or 1, sleep on or off; it starts with one vCPU, and 6.12 and
//! later start with two). Under the instruction clock a VM has one vCPU unless `--cpus`
//! says more; where a kernel did not start, `vm --clock auto` boots it on the wall clock,
//! and keeps that here (per kernel and vCPU count) so that the next VM of the same kernel
//! and shape does not wait out the boot deadline again. Kept under /run like the accelerator's verdict: a host reboot (a new QEMU) clears it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::vm::accel::boot_id;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Memo {
    boot_id: String,
    /// "<kernel image path> with <N> vCPUs" -> why it did not start under the instruction
    /// clock.
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

fn key(kernel: &Path, cpus: u32) -> String {
    format!("{} with {cpus} vCPUs", kernel.display())
}

/// Why `kernel` with `cpus` vCPUs did not start under the instruction clock earlier on this
/// host boot.
pub fn did_not_start(kernel: &Path, cpus: u32) -> Option<String> {
    read().kernels.get(&key(kernel, cpus)).cloned()
}

/// Keeps that `kernel` with `cpus` vCPUs did not start under the instruction clock. A memo
/// that cannot be written costs one more wait next time, no more.
pub fn remember(kernel: &Path, cpus: u32, reason: &str) {
    let mut memo = read();
    memo.boot_id = boot_id();
    memo.kernels.insert(key(kernel, cpus), reason.to_string());
    crate::output::keep_verdict(&memo_path(), &memo, "the instruction clock's verdict");
}
