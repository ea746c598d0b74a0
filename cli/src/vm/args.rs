//! `vm`'s arguments: the test VM's shape (memory, pmem, CPUs), accelerator and clock.

use super::*;

/// The test VM's shape and accelerator: shared by `vm` and `ab`.
#[derive(Debug, Clone, clap::Args)]
pub struct VmOpts {
    /// Emulated pmem (memmap=SIZE!4G); 0 for none.
    #[arg(long, default_value = "2G")]
    pub pmem: String,
    /// Guest RAM besides the pmem.
    #[arg(long, default_value = "4G")]
    pub memory: String,
    /// vCPUs [default: 1 under the instruction clock, 2 on the wall clock]. The instruction
    /// clock counts every vCPU's instructions, so work on another vCPU (a kworker, the
    /// tool's own process) lands in a timing: with two, COW of 4K pages took 48.35-49.30 ms
    /// over 12 rounds, munmap 4.33-5.00 ms; with one, 9 and 12 of 12 rounds were alike.
    #[arg(long)]
    pub cpus: Option<u32>,
    /// KVM, software emulation (TCG), or auto: KVM once a guest has been seen to boot
    /// with it on this host boot, else TCG.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelChoice,
    /// Stop a guest that has not reached its start (no sign of life) within this long
    /// (default 1m under KVM, 3m under TCG).
    #[arg(long, value_name = "DURATION")]
    pub boot_deadline: Option<String>,
    /// Kernel command-line options for the guest, after foliobench's own (repeatable; e.g.
    /// --append transparent_hugepage=never).
    #[arg(long = "append", value_name = "OPTIONS")]
    pub append: Vec<String>,
    /// Under TCG: one host thread for all vCPUs (single) or one per vCPU (multi, QEMU's
    /// default). Single is the default: guests died now and then mid-suite with a thread
    /// per vCPU, where probes or perf counters patch kernel text (cause not proven), and on
    /// 2 host cores it was not slower (memmap suite 150 s against 226 s; fsdax and rmap
    /// 125 s against 128 s).
    #[arg(long, value_enum, default_value = "single")]
    pub tcg_threads: TcgThreads,
    /// The guest's clock. instructions: QEMU's instruction counter (`-icount
    /// shift=0,sleep=off`, 1 ns = 1 guest instruction): timings repeat between boots to
    /// within a fraction of a percent, but are not real time (cache and TLB misses cost
    /// nothing). wall: real time, which under software emulation measures the host as much
    /// as the kernel. auto: instructions under software emulation, wall under KVM (QEMU's
    /// icount exists only in TCG).
    #[arg(long, value_enum, default_value = "auto")]
    pub clock: ClockChoice,
}

/// What the user asked for with `--clock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockChoice {
    Auto,
    Instructions,
    Wall,
}

impl ClockChoice {
    /// The clock of a boot under `accel`: icount needs TCG with one thread for all vCPUs.
    pub fn resolve(self, accel: Accel, threads: TcgThreads) -> ClockKind {
        match (self, accel, threads) {
            (ClockChoice::Auto, Accel::Tcg, TcgThreads::Single)
            | (ClockChoice::Instructions, ..) => ClockKind::Instructions,
            _ => ClockKind::Wall,
        }
    }

    /// The vCPUs of a boot on `clock` when `--cpus` does not say.
    pub fn default_cpus(clock: ClockKind) -> u32 {
        match clock {
            ClockKind::Instructions => 1,
            ClockKind::Wall => 2,
        }
    }

    /// The accelerator choice this clock allows: refuses KVM or a thread per vCPU with the
    /// instruction clock (exit 2), and turns auto into TCG for it.
    pub fn check(self, accel: AccelChoice, threads: TcgThreads) -> Result<AccelChoice> {
        if self != ClockChoice::Instructions {
            return Ok(accel);
        }
        if accel == AccelChoice::Kvm {
            return Err(usage(
                "--clock instructions needs software emulation: QEMU's instruction counter (icount) exists only under TCG; use --accel tcg, or --clock wall under KVM",
            ));
        }
        if threads == TcgThreads::Multi {
            return Err(usage(
                "--clock instructions needs --tcg-threads single: QEMU's icount cannot run one thread per vCPU",
            ));
        }
        Ok(AccelChoice::Tcg)
    }
}

/// QEMU's `-accel tcg,thread=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TcgThreads {
    Single,
    Multi,
}

#[derive(Debug, clap::Args)]
pub struct VmArgs {
    /// debian:6.12, debian:6.1, debian:<version>, a bzImage, or a kernel build tree.
    #[arg(long, default_value = "debian:6.12")]
    pub kernel: String,
    #[command(flatten)]
    pub machine: VmOpts,
    /// Kill the VM after this long (e.g. 90s, 20m).
    #[arg(long, default_value = "30m")]
    pub timeout: String,
    /// More host directories the guest may write (the current directory always is).
    #[arg(long = "share", value_name = "DIR")]
    pub share: Vec<PathBuf>,
    /// Show the kernel's console log too, not only foliobench's output.
    #[arg(long)]
    pub boot_log: bool,
    /// How long the guest command is expected to take (e.g. 20m, from an earlier run): each
    /// progress line then says how long the VM has run and about how long is left.
    #[arg(long, value_name = "DURATION")]
    pub expect: Option<String>,
    /// Print the vng command and exit.
    #[arg(long)]
    pub dry_run: bool,
    /// foliobench arguments to run inside the guest (default: doctor).
    #[arg(last = true)]
    pub args: Vec<String>,
}

/// The guest's memory layout, checked against what the host can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub pmem: u64,
    pub memory: u64,
}

impl Layout {
    pub fn new(pmem: u64, memory: u64) -> Result<Layout> {
        if pmem % SECTION != 0 {
            return Err(usage(format!(
                "--pmem {}: must be a multiple of 128M (the memory section size namespaces are built from)",
                fmt_size(pmem)
            )));
        }
        if memory < MIN_MEMORY {
            return Err(usage(format!(
                "--memory {}: at least 3G is needed, because the pmem is carved from guest RAM above 4 GiB \
                 and QEMU keeps up to 3 GiB of it below 4 GiB",
                fmt_size(memory)
            )));
        }
        Ok(Layout { pmem, memory })
    }

    /// What QEMU is given: the pmem is carved out of it by memmap=.
    pub fn qemu_memory(&self) -> u64 {
        self.memory + self.pmem
    }

    pub fn memmap(&self) -> Option<String> {
        (self.pmem > 0).then(|| format!("memmap={}!{}", fmt_size(self.pmem), fmt_size(PMEM_OFFSET)))
    }

    /// Refuses a VM larger than the host's available memory (QEMU would be OOM-killed
    /// half way, or the emulated pmem would silently swap).
    pub fn check_host(&self, mem_available: u64) -> Result<()> {
        let need = self.qemu_memory() + 512 * MIB;
        if need > mem_available {
            return Err(usage(format!(
                "the VM needs {} (--memory {} + --pmem {} + 512M for QEMU) but this machine has {} available; \
                 lower --pmem or --memory",
                fmt_size(need),
                fmt_size(self.memory),
                fmt_size(self.pmem),
                fmt_size(mem_available / MIB * MIB)
            )));
        }
        Ok(())
    }
}

pub(super) fn parse_duration(flag: &str, text: &str, example: &str) -> Result<Duration> {
    humantime::parse_duration(text)
        .map_err(|e| usage(format!("{flag} '{text}': {e}; write e.g. {example}")))
}
