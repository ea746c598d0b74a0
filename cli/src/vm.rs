//! `foliobench vm`: boot a test VM with emulated pmem (virtme-ng) and run foliobench in it.
//!
//! The guest shares the host's filesystem read-only; the current directory (where results
//! go) and a private state directory are shared writable. vng does not return the guest
//! command's exit code when it falls back to the serial console, so the guest writes it to
//! the state directory and that is what `foliobench vm` exits with.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::accel::{self, Accel, AccelChoice};
use crate::boot_kernel::{self, KernelSpec};
use crate::exit::{env, usage, Code, Fail};
use crate::icount_memo;
use crate::units::{fmt_size, parse_size, GIB, MIB};
use foliobench_reports::clock::{ClockKind, ICOUNT_QEMU_OPTIONS};

/// Where the emulated pmem starts in guest physical memory: above the 4 GiB boundary,
/// clear of the PCI hole below it.
const PMEM_OFFSET: u64 = 4 * GIB;
/// QEMU's q35 keeps up to 2 GiB (pc: 3 GiB) of RAM below 4 GiB; the guest needs at least
/// this much RAM besides the pmem so that the pmem range is backed by RAM.
const MIN_MEMORY: u64 = 3 * GIB;
/// Namespaces are made of whole memory sections (128 MiB on x86_64).
const SECTION: u64 = 128 * MIB;
/// Modules the guest loads before running: pmem from memmap=, devdax, fsdax.
const GUEST_MODULES: &[&str] = &["nd_e820", "nd_pmem", "dax_pmem", "device_dax"];
/// Printed by the guest script before foliobench starts: what comes before is boot output.
const MARKER: &str = "foliobench-guest-start";
/// Lines of boot output kept to explain a VM that died before the guest command ran.
const BOOT_TAIL: usize = 40;
/// TCG can oops while the kernel patches its own text at boot (int3 from a static key
/// flip with several vCPUs, seen with the CONFIG_GUP_TEST kernel); such a boot is retried.
const BOOT_ATTEMPTS: u32 = 3;

/// QEMU's ivshmem-plain: BAR 2 is 2 MiB of host RAM, prefetchable, and no driver in the
/// guest claims it.
const PFNMAP_DEVICE: &str =
    "-object memory-backend-ram,id=foliobench-pfnmap,size=2M -device ivshmem-plain,memdev=foliobench-pfnmap";

/// The test VM's shape and accelerator: shared by `vm` and `ab`.
#[derive(Debug, Clone, clap::Args)]
pub struct VmOpts {
    /// Emulated pmem (memmap=SIZE!4G); 0 for none.
    #[arg(long, default_value = "2G")]
    pub pmem: String,
    /// Guest RAM besides the pmem.
    #[arg(long, default_value = "4G")]
    pub memory: String,
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
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

fn require(tool: &str, package: &str) -> Result<()> {
    if foliobench_workloads::command::which(tool).is_some() {
        Ok(())
    } else {
        Err(env(format!("`{tool}` not found: install {package}")))
    }
}

/// A console line from the kernel (`[    3.52] ...`), not from the guest command.
pub fn is_kernel_log(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('[')
        && t[1..].split_once(']').is_some_and(|(ts, _)| {
            ts.trim().split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && a.chars().all(|c| c.is_ascii_digit())
                    && b.chars().all(|c| c.is_ascii_digit())
            })
        })
}

/// What the guest is told about the VM it runs in (recorded in its results' context).
pub struct GuestEnv<'a> {
    pub config: Option<&'a Path>,
    pub accel: Accel,
    /// The clock of the guest's time.
    pub clock: ClockKind,
    /// The Debian package and version booted, if it is one.
    pub package: Option<&'a str>,
}

/// The shell line run inside the guest.
fn guest_script(exe: &Path, args: &[String], cwd: &Path, state: &Path, g: &GuestEnv) -> String {
    let q = |s: &str| {
        shlex::try_quote(s)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| "''".into())
    };
    let mut envs = vec![
        "FOLIOBENCH_IN_VM=1".to_string(),
        format!(
            "{}={}",
            foliobench_workloads::system::ACCEL_ENV,
            g.accel.name()
        ),
        format!(
            "{}={}",
            foliobench_workloads::system::CLOCK_ENV,
            g.clock.name()
        ),
    ];
    if g.clock == ClockKind::Instructions {
        envs.push(format!(
            "{}={}",
            foliobench_workloads::system::CLOCK_QEMU_ENV,
            q(ICOUNT_QEMU_OPTIONS)
        ));
    }
    if let Some(c) = g.config {
        envs.push(format!(
            "{}={}",
            foliobench_workloads::kconfig::CONFIG_ENV,
            q(&c.to_string_lossy())
        ));
    }
    if let Some(p) = g.package {
        envs.push(format!(
            "{}={}",
            foliobench_workloads::system::KERNEL_PACKAGE_ENV,
            q(p)
        ));
    }
    // Several commands run in turn in the one boot; the first that fails ends the line,
    // and its status is the guest's.
    let cmds: Vec<String> = guest_commands(args)
        .into_iter()
        .map(|c| {
            std::iter::once(envs.join(" "))
                .chain(std::iter::once(q(&exe.to_string_lossy())))
                .chain(c.iter().map(|a| q(a)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!(
        "modprobe -qa {mods} 2>/dev/null; echo {MARKER}; cd {cwd} && {cmds}; echo $? > {exit}",
        mods = GUEST_MODULES.join(" "),
        cwd = q(&cwd.to_string_lossy()),
        cmds = cmds.join(" && "),
        exit = q(&state.join("exit").to_string_lossy()),
    )
}

/// The guest's commands: the arguments after `--`, split at each `;` argument (`vm -- doctor
/// --out d.json ';' run --suite memmap --out r.json` boots once for both).
pub fn guest_commands(args: &[String]) -> Vec<&[String]> {
    args.split(|a| a == ";").filter(|c| !c.is_empty()).collect()
}

/// What the guest command is, as the guest will parse it: checked by the caller (`main`,
/// which owns foliobench's command line, or `ab`/`matrix`, which wrote the command).
pub enum Guest {
    /// Runs in the guest; these directories must be writable there.
    Writes(Vec<PathBuf>),
    /// `--help`, `--version`: the same binary answers here, without a boot.
    Answered(String),
}

/// The directories the guest may write: the state directory, the current directory, the
/// user's `--share`s and those the guest command writes to, without one inside another.
fn shared_dirs(
    state: &Path,
    cwd: &Path,
    share: &[PathBuf],
    writes: &[PathBuf],
) -> Result<Vec<PathBuf>> {
    let mut dirs = vec![state.to_path_buf()];
    if cwd != Path::new("/") {
        dirs.push(cwd.to_path_buf());
    }
    for d in share {
        dirs.push(
            d.canonicalize()
                .map_err(|e| usage(format!("--share {}: {e}", d.display())))?,
        );
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dirs.into_iter().chain(writes.iter().cloned()) {
        if !out.iter().any(|o| d.starts_with(o)) {
            out.retain(|o| !o.starts_with(&d));
            out.push(d);
        }
    }
    Ok(out)
}

/// How the guest command reaches the guest.
#[derive(Clone, Copy)]
enum Pass {
    /// On the vng command line (for --dry-run, to be read).
    Inline,
    /// In a file in the shared state directory, run with `sh FILE`.
    File,
}

/// Everything a boot needs, checked before the first one.
struct Launch {
    vng: PathBuf,
    kernel: boot_kernel::BootKernel,
    layout: Layout,
    cpus: u32,
    tcg_threads: TcgThreads,
    clock: ClockChoice,
    /// `--append`: more kernel command-line options.
    append: Vec<String>,
    args: Vec<String>,
    cwd: PathBuf,
    exe: PathBuf,
    /// The directories the guest may write (the state directory first).
    shared: Vec<PathBuf>,
    /// Where the guest writes its exit status; removed with it.
    state: tempfile::TempDir,
    show: Show,
    timeout: Duration,
    timeout_text: String,
    /// `--boot-deadline`, when given (else the accelerator's).
    boot_deadline: Option<Duration>,
    /// How the first boot is made (KVM or TCG) and whether KVM may fall back.
    accel: accel::Plan,
}

fn parse_duration(flag: &str, text: &str, example: &str) -> Result<Duration> {
    humantime::parse_duration(text)
        .map_err(|e| usage(format!("{flag} '{text}': {e}; write e.g. {example}")))
}

/// Checks the arguments, the guest command and the host; prepares the kernel. `None`:
/// the guest command was `--help` or `--version`, answered here.
fn launch(a: &VmArgs, guest: Guest) -> Result<Option<Launch>> {
    let spec = KernelSpec::parse(&a.kernel)?;
    let m = &a.machine;
    let layout = Layout::new(
        parse_size("--pmem", &m.pmem)?,
        parse_size("--memory", &m.memory)?,
    )?;
    let timeout = parse_duration("--timeout", &a.timeout, "90s or 20m")?;
    let expect = a
        .expect
        .as_deref()
        .map(|d| parse_duration("--expect", d, "20m or 1h"))
        .transpose()?;
    let boot_deadline = m
        .boot_deadline
        .as_deref()
        .map(|d| parse_duration("--boot-deadline", d, "90s or 3m"))
        .transpose()?;
    if m.cpus == 0 {
        return Err(usage("--cpus must be at least 1"));
    }
    let cwd = std::env::current_dir()?;
    let args = if a.args.is_empty() {
        vec!["doctor".to_string()]
    } else {
        a.args.clone()
    };
    let mut writes = match guest {
        Guest::Writes(w) => w,
        Guest::Answered(text) => {
            print!("{text}");
            return Ok(None);
        }
    };
    writes.sort();
    writes.dedup();
    let available = foliobench_workloads::system::meminfo_kb("MemAvailable")
        .map_or(u64::MAX, |kb| kb as u64 * 1024);
    layout.check_host(available)?;
    let vng = vng()?;
    require("qemu-system-x86_64", "Debian's qemu-system-x86")?;
    require(
        "busybox",
        "Debian's busybox-static (virtme-ng builds its initramfs with it)",
    )?;
    // Before the kernel is fetched: `--accel kvm` without KVM is an error at once.
    let accel = accel::plan(m.clock.check(m.accel, m.tcg_threads)?)?;
    let kernel = boot_kernel::prepare(&spec)?;
    let state = tempfile::Builder::new()
        .prefix("foliobench-vm-")
        .tempdir()?;
    let shared = shared_dirs(state.path(), &cwd, &a.share, &writes)?;
    Ok(Some(Launch {
        vng,
        kernel,
        layout,
        cpus: m.cpus,
        tcg_threads: m.tcg_threads,
        clock: m.clock,
        append: m.append.clone(),
        args,
        cwd,
        exe: std::env::current_exe()?,
        shared,
        state,
        show: Show {
            boot_log: a.boot_log,
            expect,
        },
        timeout,
        timeout_text: a.timeout.clone(),
        boot_deadline,
        accel,
    }))
}

impl Launch {
    /// The vng command that boots the guest under `accel` and runs the guest command.
    fn command(&self, accel: Accel, clock: ClockChoice, how: Pass) -> Result<Command> {
        let guest = GuestEnv {
            config: self.kernel.config.as_deref(),
            accel,
            clock: clock.resolve(accel, self.tcg_threads),
            package: self.kernel.package.as_deref(),
        };
        let script = guest_script(&self.exe, &self.args, &self.cwd, self.state.path(), &guest);
        // vng hands the guest its command on the kernel command line, which holds 2048
        // bytes on x86: a longer one overflows at boot (a fortify WARNING in start_kernel,
        // then a hang). So the script goes in a file in the shared state directory.
        let script = match how {
            Pass::Inline => script,
            Pass::File => {
                let file = self.state.path().join("guest.sh");
                std::fs::write(&file, format!("{script}\n"))
                    .with_context(|| format!("writing {}", file.display()))?;
                format!("sh {}", shlex::try_quote(&file.to_string_lossy())?)
            }
        };
        let mut cmd = Command::new(&self.vng);
        // vng runs its sibling scripts (virtme-run) through PATH: a venv's bin must be on it.
        if let Some(bin) = self.vng.parent() {
            let path = std::env::var_os("PATH").unwrap_or_default();
            let paths = std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&path));
            if let Ok(joined) = std::env::join_paths(paths) {
                cmd.env("PATH", joined);
            }
        }
        // 9p straight away: vng otherwise tries virtiofsd for every share first.
        cmd.arg("-v")
            .arg("--force-9p")
            .arg("-r")
            .arg(&self.kernel.run);
        if accel == Accel::Tcg {
            cmd.arg("--disable-kvm");
            let mut qemu = Vec::new();
            if self.tcg_threads == TcgThreads::Single {
                qemu.push("-accel tcg,thread=single");
            }
            if guest.clock == ClockKind::Instructions {
                qemu.push(ICOUNT_QEMU_OPTIONS);
            }
            if !qemu.is_empty() {
                cmd.arg(format!("--qemu-opts={}", qemu.join(" ")));
            }
        }
        cmd.arg("--memory")
            .arg(format!("{}M", self.layout.qemu_memory() / MIB));
        cmd.arg("--cpus").arg(self.cpus.to_string());
        if let Some(m) = self.layout.memmap() {
            cmd.arg("--append").arg(m);
        }
        for a in &self.append {
            // One word with '=': a value starting with '-' would be taken for an option.
            cmd.arg(format!("--append={a}"));
        }
        for d in &self.shared {
            cmd.arg("--rwdir").arg(d);
        }
        // A small device with a memory BAR and no guest driver: what the PFN-map row maps
        // (read-only, never accessed), instead of a BAR some driver uses.
        // One word with '=': argparse takes a separate value starting with '-' for an option.
        cmd.arg(format!("--qemu-opts={PFNMAP_DEVICE}"));
        cmd.arg("--").arg(&script);
        Ok(cmd)
    }

    fn say_boot(&self, accel: Accel, clock: ClockChoice, why: &str) {
        eprintln!(
            "foliobench: booting {} [{}] with {} RAM + {} pmem, {} CPUs, {}, clock: {} ({why})",
            self.kernel.label,
            self.kernel.release.as_deref().unwrap_or("release unknown"),
            fmt_size(self.layout.memory),
            fmt_size(self.layout.pmem),
            self.cpus,
            match (accel, self.tcg_threads) {
                (Accel::Kvm, _) => "KVM",
                (Accel::Tcg, TcgThreads::Multi) => "software emulation (TCG)",
                (Accel::Tcg, TcgThreads::Single) =>
                    "software emulation (TCG), one host thread for all vCPUs",
            },
            clock.resolve(accel, self.tcg_threads).describe()
        )
    }

    /// The clock of the first boot: auto takes the wall clock at once for a kernel that
    /// did not start under the instruction clock earlier on this host boot.
    fn first_clock(&self) -> (ClockChoice, Option<String>) {
        match (self.clock, icount_memo::did_not_start(&self.kernel.run)) {
            (ClockChoice::Auto, Some(why)) => (
                ClockChoice::Wall,
                Some(format!(
                    "wall clock: this kernel did not start under the instruction clock earlier on this host boot ({why})"
                )),
            ),
            (c, _) => (c, None),
        }
    }

    /// Boots until the guest command has run: under KVM while it is proven (falling back to
    /// TCG when `plan` allows), again after an oops at boot (up to BOOT_ATTEMPTS).
    fn boot_until_ran(&self, interrupted: &AtomicBool) -> Result<()> {
        let plan = &self.accel;
        let deadline = Instant::now() + self.timeout;
        let (clock, clock_why) = self.first_clock();
        let mut at = Attempt {
            accel: plan.accel,
            clock,
            failed_boots: 0,
        };
        self.say_boot(
            at.accel,
            at.clock,
            &clock_why.map_or_else(|| plan.why.clone(), |w| format!("{}; {w}", plan.why)),
        );
        loop {
            let life = self
                .boot_deadline
                .unwrap_or_else(|| at.accel.boot_deadline());
            let waits = Waits {
                deadline,
                timeout: &self.timeout_text,
                life,
                interrupted,
            };
            let exit_file = self.state.path().join("exit");
            let mut cmd = self.command(at.accel, at.clock, Pass::File)?;
            match boot(&mut cmd, self.show, &waits, &exit_file)? {
                Boot::Ran => {
                    if at.accel == Accel::Kvm && plan.fallback {
                        accel::remember(Accel::Kvm, "a guest reached its start marker under KVM");
                    }
                    return Ok(());
                }
                Boot::NoLife { kvm_error, output } => {
                    self.retry_after_no_life(&mut at, life, kvm_error, output)?
                }
                // KVM not yet proven and QEMU gone before the guest started: KVM's doing
                // until shown otherwise (no KVM_FAILURES line need be among its words).
                Boot::DiedBooting(output) if at.accel == Accel::Kvm && plan.fallback => {
                    let reason = format!(
                        "QEMU died before the guest started: {}",
                        output.first_sign()
                    );
                    accel::remember(Accel::Tcg, &reason);
                    at.accel = Accel::Tcg;
                    self.say_boot(
                        at.accel,
                        at.clock,
                        &format!("KVM cannot run this guest: {reason}"),
                    );
                }
                Boot::DiedBooting(output) => at.retry_after_boot_death(output)?,
                Boot::DiedRunning(output) => {
                    return Err(anyhow::Error::new(VmDied(format!(
                        "the guest command started but the VM ended without an exit status \
                         (the kernel crashed or the command was killed); rerun with --boot-log.{} \
                         Last console lines:\n{}",
                        output
                            .oops
                            .map_or(String::new(), |o| format!(" First sign of trouble: {o}.")),
                        last_lines(&output.tail)
                    ))))
                }
            }
        }
    }

    /// After a guest that never reached its start: `Ok` to boot again (under TCG when KVM
    /// may fall back, else once more while attempts remain), else why it is given up.
    fn retry_after_no_life(
        &self,
        at: &mut Attempt,
        life: Duration,
        kvm_error: Option<String>,
        output: BootOutput,
    ) -> Result<()> {
        let silent = kvm_error.is_none();
        let reason = kvm_error.unwrap_or_else(|| {
            format!(
                "no sign of life (guest-start marker) within {}",
                humantime::format_duration(life)
            )
        });
        if at.accel == Accel::Kvm && self.accel.fallback {
            accel::remember(Accel::Tcg, &reason);
            at.accel = Accel::Tcg;
            self.say_boot(
                at.accel,
                at.clock,
                &format!("KVM cannot run this guest: {reason}"),
            );
            return Ok(());
        }
        // A guest silent under the instruction clock that auto chose (Debian 6.1 stops
        // bringing up its second vCPU under icount): the wall clock, remembered for this
        // kernel; a clock asked for by name is kept, and the boot fails as any other.
        let icount = at.clock.resolve(at.accel, self.tcg_threads) == ClockKind::Instructions;
        if silent && icount && at.clock == ClockChoice::Auto {
            let why = format!("{reason} ({})", output.first_sign());
            icount_memo::remember(&self.kernel.run, &why);
            at.clock = ClockChoice::Wall;
            self.say_boot(
                at.accel,
                at.clock,
                &format!(
                    "the guest did not start under the instruction clock: {why}; its timings are wall-clock timings"
                ),
            );
            return Ok(());
        }
        // A guest that hung before its command started (seen under TCG: a warning at the
        // first instant of boot, then nothing) is booted again, as an oops at boot is;
        // nothing ran in it.
        if silent && at.failed_boots + 1 < BOOT_ATTEMPTS {
            at.failed_boots += 1;
            eprintln!(
                "foliobench: {reason} ({}); QEMU stopped, booting again (attempt {} of {BOOT_ATTEMPTS})",
                output.first_sign(),
                at.failed_boots + 1
            );
            return Ok(());
        }
        let hint = match at.accel {
            Accel::Kvm => " (try --accel tcg)",
            Accel::Tcg if icount => {
                " (under the instruction clock: Debian 6.1 never starts its second vCPU there; try --clock wall, or --cpus 1)"
            }
            Accel::Tcg => " (a slow or loaded machine: raise --boot-deadline)",
        };
        Err(env(format!(
            "the guest did not start under {}: {reason}; QEMU was stopped{hint}.{} Last console lines:\n{}",
            at.accel.name(),
            output.oops.map_or(String::new(), |o| format!(" First sign of trouble: {o}.")),
            last_lines(&output.tail)
        )))
    }
}

/// Where `boot_until_ran` stands: the accelerator of the next boot, and how many boots
/// failed before the guest command could start.
struct Attempt {
    accel: Accel,
    /// The clock asked for, or the wall clock where auto's instruction clock failed.
    clock: ClockChoice,
    failed_boots: u32,
}

impl Attempt {
    /// After the VM died while booting: `Ok` to boot again while attempts remain (nothing
    /// ran in the guest), else the error with the last boot's output.
    fn retry_after_boot_death(&mut self, output: BootOutput) -> Result<()> {
        if self.failed_boots + 1 < BOOT_ATTEMPTS {
            self.failed_boots += 1;
            eprintln!(
                "foliobench: the VM died while booting, before the guest command ran ({}); \
                 booting again (attempt {} of {BOOT_ATTEMPTS})",
                output.first_sign(),
                self.failed_boots + 1
            );
            return Ok(());
        }
        Err(env(format!(
            "the VM failed to boot {BOOT_ATTEMPTS} times, before the guest command started; last boot output:\n{}",
            output.tail.join("\n")
        )))
    }
}

pub fn run(a: VmArgs, guest: Guest) -> Result<Code> {
    let Some(l) = launch(&a, guest)? else {
        return Ok(Code::Ok);
    };
    if a.dry_run {
        // Shown with the guest command inline (its file goes with the state directory).
        let cmd = l.command(l.accel.accel, l.first_clock().0, Pass::Inline)?;
        let words: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|s| {
                shlex::try_quote(&s.to_string_lossy())
                    .map(|c| c.into_owned())
                    .unwrap_or_default()
            })
            .collect();
        println!("{}", words.join(" "));
        return Ok(Code::Ok);
    }
    let interrupted = crate::exit::interrupt_flag()?;
    l.boot_until_ran(&interrupted)?;
    let s = std::fs::read_to_string(l.state.path().join("exit"))
        .context("reading the guest's exit status")?;
    let code: i32 = s
        .trim()
        .parse()
        .with_context(|| format!("guest exit status '{}'", s.trim()))?;
    Ok(guest_code(code))
}

/// `vng` on PATH, else the one scripts/setup.sh installs in foliobench's own venv.
fn vng() -> Result<PathBuf> {
    if let Some(p) = foliobench_workloads::command::which("vng") {
        return Ok(p);
    }
    let venv = dirs::cache_dir()
        .unwrap_or_else(|| PathBuf::from("/var/cache"))
        .join("foliobench/venv/bin/vng");
    if venv.is_file() {
        return Ok(venv);
    }
    Err(env(format!(
        "`vng` (virtme-ng) not found on PATH nor at {}: run scripts/setup.sh, which installs it there",
        venv.display()
    )))
}

/// The end of a console tail, for an error message.
fn last_lines(tail: &[String]) -> String {
    if tail.is_empty() {
        return "(none: QEMU printed nothing)".into();
    }
    tail[tail.len().saturating_sub(15)..].join("\n")
}

/// How one boot ended.
enum Boot {
    /// The guest command ran and wrote its exit status.
    Ran,
    /// The guest never reached its start marker within the deadline, or QEMU said KVM
    /// cannot run it; QEMU was stopped. Nothing ran in the guest.
    NoLife {
        kvm_error: Option<String>,
        output: BootOutput,
    },
    /// The VM died before the guest command started (kernel oops while booting): nothing
    /// was done in the guest, so booting again is safe.
    DiedBooting(BootOutput),
    /// The guest command started but no exit status came back.
    DiedRunning(BootOutput),
}

/// The VM ended after the guest command had started, without its exit status (an exit code
/// of 3, environment). `vm` never runs a user's command twice; `ab`, whose runs are its own
/// and write a fresh file, boots such a run once more.
#[derive(Debug)]
pub struct VmDied(pub String);

impl std::fmt::Display for VmDied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VmDied {}

/// What the console showed of a boot that went wrong.
struct BootOutput {
    /// The first line that says the kernel is in trouble, if one came.
    oops: Option<String>,
    tail: Vec<String>,
}

impl BootOutput {
    /// The oops, else the last console line: what a retry message quotes.
    fn first_sign(&self) -> &str {
        self.oops
            .as_deref()
            .unwrap_or_else(|| self.tail.last().map_or("no output", |s| s.as_str()))
    }
}

/// What the console shows besides the guest's output.
#[derive(Debug, Clone, Copy, Default)]
struct Show {
    boot_log: bool,
    expect: Option<Duration>,
}

/// "3m 12s of ~20m 00s, ~16m 48s left": how far a run expected to take `expect` has come.
fn progress(elapsed: Duration, expect: Duration) -> String {
    let mins = |d: Duration| {
        let s = d.as_secs();
        if s >= 60 {
            format!("{}m {:02}s", s / 60, s % 60)
        } else {
            format!("{s}s")
        }
    };
    match expect.checked_sub(elapsed) {
        Some(left) => format!(
            "{} of ~{}, ~{} left",
            mins(elapsed),
            mins(expect),
            mins(left)
        ),
        None => format!("{}, past the ~{} expected", mins(elapsed), mins(expect)),
    }
}

/// When to give up on a VM.
struct Waits<'a> {
    deadline: Instant,
    /// As the user wrote it, for the message.
    timeout: &'a str,
    /// How long the guest may take to reach its start marker.
    life: Duration,
    interrupted: &'a AtomicBool,
}

/// Boots once and waits, killing the VM's process group on the deadline, a signal, a
/// guest that shows no sign of life in time, or QEMU saying KVM cannot run it.
fn boot(cmd: &mut Command, show: Show, w: &Waits<'_>, exit_file: &Path) -> Result<Boot> {
    let mut vm = RunningVm::start(cmd, show)?;
    let watch = vm.watch(w)?;
    let console = vm.drain_console();
    match watch {
        Watch::Stopped(fail) => Err(fail.into()),
        Watch::NoLife { kvm_error } => Ok(Boot::NoLife {
            kvm_error,
            output: BootOutput {
                oops: console.oops(),
                tail: console.tail_lines(),
            },
        }),
        Watch::Exited => Ok(console.how_boot_ended(exit_file)),
    }
}

/// vng (with QEMU under it) in its own process group, its console read by two threads.
struct RunningVm {
    child: std::process::Child,
    pgid: i32,
    started_at: Instant,
    console: Arc<Console>,
    pumps: [std::thread::JoinHandle<()>; 2],
}

/// Why `RunningVm::watch` stopped watching.
enum Watch {
    /// vng exited by itself.
    Exited,
    /// No start marker within the guest's life deadline, or QEMU said KVM cannot run the
    /// guest; the VM was killed.
    NoLife { kvm_error: Option<String> },
    /// The overall timeout or a signal; the VM was killed.
    Stopped(Fail),
}

impl RunningVm {
    /// Starts vng and the threads that forward its stdout and stderr.
    fn start(cmd: &mut Command, show: Show) -> Result<RunningVm> {
        // Its own process group, so a timeout or Ctrl-C takes down vng and QEMU together.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let started_at = Instant::now();
        let mut child = cmd.spawn().context("starting vng")?;
        let pgid = child.id() as i32;
        let console = Arc::new(Console {
            boot_log: show.boot_log,
            expect: show.expect.map(|e| (started_at, e)),
            ..Default::default()
        });
        let pumps = [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ]
        .map(|r| {
            let c = Arc::clone(&console);
            std::thread::spawn(move || c.forward(r))
        });
        Ok(RunningVm {
            child,
            pgid,
            started_at,
            console,
            pumps,
        })
    }

    /// Polls until vng exits, or kills it for one of the reasons in `w`.
    fn watch(&mut self, w: &Waits<'_>) -> Result<Watch> {
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(Watch::Exited);
            }
            let started = self.console.started.load(Ordering::Relaxed);
            let kvm_error = self.console.kvm_error();
            if !started && (kvm_error.is_some() || self.started_at.elapsed() > w.life) {
                self.kill();
                return Ok(Watch::NoLife { kvm_error });
            }
            let expired = Instant::now() > w.deadline;
            if expired || w.interrupted.load(Ordering::Relaxed) {
                self.kill();
                return Ok(Watch::Stopped(if expired {
                    Fail {
                        code: Code::Timeout,
                        msg: format!(
                            "the test VM did not finish within {} and was killed",
                            w.timeout
                        ),
                    }
                } else {
                    Fail {
                        code: Code::Environment,
                        msg: "interrupted: the test VM was killed".into(),
                    }
                }));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the whole process group (vng and QEMU) and reaps vng.
    fn kill(&mut self) {
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// Waits for the console threads to read the last of the output.
    fn drain_console(self) -> Arc<Console> {
        for p in self.pumps {
            let _ = p.join();
        }
        self.console
    }
}

/// Guest exit codes map onto ours one to one; anything unknown is an environment error.
fn guest_code(c: i32) -> Code {
    match c {
        0 => Code::Ok,
        1 => Code::Regression,
        2 => Code::Usage,
        4 => Code::Skipped,
        5 => Code::Timeout,
        _ => Code::Environment,
    }
}

/// Splits the VM's console into boot output and the guest command's output.
#[derive(Default)]
struct Console {
    boot_log: bool,
    /// When the VM started and how long its command is expected to take (`--expect`).
    expect: Option<(Instant, Duration)>,
    started: AtomicBool,
    tail: Mutex<VecDeque<String>>,
    /// The first line that says why the kernel died.
    oops: Mutex<Option<String>>,
    /// The first line in which QEMU says KVM cannot run the guest.
    kvm_error: Mutex<Option<String>>,
}

impl Console {
    fn oops(&self) -> Option<String> {
        self.oops.lock().ok().and_then(|o| o.clone())
    }

    fn kvm_error(&self) -> Option<String> {
        self.kvm_error.lock().ok().and_then(|k| k.clone())
    }

    /// The last BOOT_TAIL lines of boot output.
    fn tail_lines(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How a boot ended whose vng exited by itself, from what its console showed.
    fn how_boot_ended(&self, exit_file: &Path) -> Boot {
        let ran = self.started.load(Ordering::Relaxed);
        let kvm_error = self.kvm_error();
        match (ran, exit_file.exists()) {
            (true, true) => Boot::Ran,
            (true, false) => Boot::DiedRunning(BootOutput {
                oops: self.oops(),
                tail: self.tail_lines(),
            }),
            // QEMU gave up on KVM and exited by itself.
            (false, _) if kvm_error.is_some() => Boot::NoLife {
                kvm_error,
                output: BootOutput {
                    oops: None,
                    tail: self.tail_lines(),
                },
            },
            (false, _) => Boot::DiedBooting(BootOutput {
                oops: self.oops(),
                tail: self.tail_lines(),
            }),
        }
    }

    fn forward(&self, r: impl std::io::Read) {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.trim() == MARKER {
                self.started.store(true, Ordering::Relaxed);
                continue;
            }
            let guest = self.started.load(Ordering::Relaxed) && !is_kernel_log(line);
            if guest {
                match (self.expect, line.strip_prefix("foliobench: ")) {
                    (Some((t0, e)), Some(rest)) => {
                        println!("foliobench: [{}] {rest}", progress(t0.elapsed(), e))
                    }
                    _ => println!("{line}"),
                }
                continue;
            }
            if self.boot_log {
                eprintln!("{line}");
            }
            let first = |slot: &Mutex<Option<String>>| {
                if let Ok(mut o) = slot.lock() {
                    o.get_or_insert_with(|| line.trim().to_string());
                }
            };
            if ["Oops:", "BUG:", "Kernel panic", "WARNING:"]
                .iter()
                .any(|k| line.contains(k))
            {
                first(&self.oops);
            }
            if accel::KVM_FAILURES.iter().any(|k| line.contains(k)) {
                first(&self.kvm_error);
            }
            if let Ok(mut t) = self.tail.lock() {
                if t.len() == BOOT_TAIL {
                    t.pop_front();
                }
                t.push_back(line.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_of;

    #[test]
    fn progress_says_the_time_left_or_the_overrun() {
        let s = Duration::from_secs;
        assert_eq!(
            progress(s(192), s(1200)),
            "3m 12s of ~20m 00s, ~16m 48s left"
        );
        assert_eq!(progress(s(5), s(50)), "5s of ~50s, ~45s left");
        assert_eq!(
            progress(s(1265), s(1200)),
            "21m 05s, past the ~20m 00s expected"
        );
    }

    #[test]
    fn the_instruction_clock_is_tcg_only() {
        use ClockChoice::*;
        // auto: instructions where icount exists (TCG, one thread), wall elsewhere.
        assert_eq!(
            Auto.resolve(Accel::Tcg, TcgThreads::Single),
            ClockKind::Instructions
        );
        assert_eq!(
            Auto.resolve(Accel::Kvm, TcgThreads::Single),
            ClockKind::Wall
        );
        assert_eq!(Auto.resolve(Accel::Tcg, TcgThreads::Multi), ClockKind::Wall);
        assert_eq!(
            Wall.resolve(Accel::Tcg, TcgThreads::Single),
            ClockKind::Wall
        );
        // Asked for explicitly: under KVM or with a thread per vCPU, a usage error (2).
        for (accel, threads) in [
            (AccelChoice::Kvm, TcgThreads::Single),
            (AccelChoice::Tcg, TcgThreads::Multi),
        ] {
            let e = Instructions.check(accel, threads).unwrap_err();
            assert_eq!(code_of(&e), Code::Usage, "{e}");
            assert!(e.to_string().contains("--clock instructions needs"), "{e}");
        }
        // auto accel becomes TCG for it; the other clocks leave the choice alone.
        assert_eq!(
            Instructions
                .check(AccelChoice::Auto, TcgThreads::Single)
                .unwrap(),
            AccelChoice::Tcg
        );
        assert_eq!(
            Auto.check(AccelChoice::Kvm, TcgThreads::Multi).unwrap(),
            AccelChoice::Kvm
        );
    }

    #[test]
    fn default_layout_is_the_verified_one() {
        let l = Layout::new(2 * GIB, 4 * GIB).unwrap();
        assert_eq!(l.qemu_memory(), 6 * GIB);
        assert_eq!(l.memmap().as_deref(), Some("memmap=2G!4G"));
        assert_eq!(Layout::new(0, 4 * GIB).unwrap().memmap(), None);
    }

    #[test]
    fn layout_refusals() {
        let e = Layout::new(100 * MIB, 4 * GIB).unwrap_err();
        assert_eq!(code_of(&e), Code::Usage);
        assert!(e.to_string().contains("128M"));
        let e = Layout::new(2 * GIB, 2 * GIB).unwrap_err();
        assert!(e.to_string().contains("at least 3G"));
        let e = Layout::new(64 * GIB, 4 * GIB)
            .unwrap()
            .check_host(24 * GIB)
            .unwrap_err();
        assert_eq!(code_of(&e), Code::Usage);
        assert!(e.to_string().contains("lower --pmem"), "{e}");
        Layout::new(2 * GIB, 4 * GIB)
            .unwrap()
            .check_host(22 * GIB)
            .unwrap();
    }

    #[test]
    fn kernel_log_lines_are_recognised() {
        assert!(is_kernel_log(
            "[    3.389602] Invalid ELF header magic: != ELF"
        ));
        assert!(is_kernel_log("[ 1234.5] x"));
        assert!(!is_kernel_log("[ok] done"));
        assert!(!is_kernel_log("kernel      6.12.117+deb12-amd64"));
        assert!(!is_kernel_log("[] x"));
    }

    #[test]
    fn guest_script_quotes_and_reports_exit() {
        let s = guest_script(
            Path::new("/work/target/foliobench"),
            &["doctor".into(), "--out".into(), "a b.json".into()],
            Path::new("/work/x"),
            Path::new("/tmp/st"),
            &GuestEnv {
                config: Some(Path::new("/c/config-6.12")),
                accel: Accel::Tcg,
                clock: ClockKind::Instructions,
                package: Some("linux-image-6.12.117+deb12-amd64=6.12.117-1"),
            },
        );
        assert!(s.contains("cd /work/x && FOLIOBENCH_IN_VM=1 FOLIOBENCH_ACCEL=tcg FOLIOBENCH_CLOCK=instructions FOLIOBENCH_CLOCK_QEMU='-icount shift=0,sleep=off' FOLIOBENCH_KERNEL_CONFIG=/c/config-6.12 FOLIOBENCH_KERNEL_PACKAGE='linux-image-6.12.117+deb12-amd64=6.12.117-1' /work/target/foliobench doctor --out 'a b.json'; echo $? > /tmp/st/exit"), "{s}");
        assert!(s.starts_with("modprobe -qa nd_e820"));
        assert!(s.contains(&format!("; echo {MARKER}; cd ")));
        // Two commands in one boot: the second runs only if the first succeeded, and the
        // status written is the first failure's.
        let args: Vec<String> = ["doctor", ";", "run", "--suite", "memmap"]
            .map(String::from)
            .to_vec();
        assert_eq!(guest_commands(&args).len(), 2);
        let s = guest_script(
            Path::new("/fb"),
            &args,
            Path::new("/w"),
            Path::new("/st"),
            &GuestEnv {
                config: None,
                accel: Accel::Tcg,
                clock: ClockKind::Wall,
                package: None,
            },
        );
        assert!(
            s.contains("cd /w && FOLIOBENCH_IN_VM=1 FOLIOBENCH_ACCEL=tcg FOLIOBENCH_CLOCK=wall /fb doctor && FOLIOBENCH_IN_VM=1 FOLIOBENCH_ACCEL=tcg FOLIOBENCH_CLOCK=wall /fb run --suite memmap; echo $? > /st/exit"),
            "{s}"
        );
    }
}
