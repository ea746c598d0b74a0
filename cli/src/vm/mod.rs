//! `foliobench vm`: boot a test VM with emulated pmem (virtme-ng) and run foliobench in it.
//!
//! The guest shares the host's filesystem read-only; the current directory (where results
//! go) and a private state directory are shared writable. vng does not return the guest
//! command's exit code when it falls back to the serial console, so the guest writes it to
//! the state directory and that is what `foliobench vm` exits with.
//!
//! `args`: the command line; `script`: what runs in the guest; `console`: what the boot
//! prints and how it ended; here: launching, booting and retrying.

pub mod accel;
mod args;
pub mod boot_kernel;
mod console;
pub mod icount_memo;
mod script;

pub use args::*;
pub use console::*;
pub use script::*;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::exit::{env, usage, Code, Fail};
use crate::units::{fmt_size, parse_size, GIB, MIB};
use accel::{Accel, AccelChoice};
use boot_kernel::KernelSpec;
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

fn require(tool: &str, package: &str) -> Result<()> {
    if foliobench_workloads::command::which(tool).is_some() {
        Ok(())
    } else {
        Err(env(format!("`{tool}` not found: install {package}")))
    }
}

/// Everything a boot needs, checked before the first one.
struct Launch {
    vng: PathBuf,
    kernel: boot_kernel::BootKernel,
    layout: Layout,
    /// `--cpus`; `None`: by the boot's clock (`ClockChoice::default_cpus`).
    cpus: Option<u32>,
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
    if m.cpus == Some(0) {
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
    /// The vCPUs of a boot on `clock`.
    fn cpus(&self, clock: ClockKind) -> u32 {
        self.cpus
            .unwrap_or_else(|| ClockChoice::default_cpus(clock))
    }

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
        cmd.arg("--cpus").arg(self.cpus(guest.clock).to_string());
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
        let kind = clock.resolve(accel, self.tcg_threads);
        let cpus = self.cpus(kind);
        eprintln!(
            "foliobench: booting {} [{}] with {} RAM + {} pmem, {cpus} {}{}, {}, clock: {} ({why})",
            self.kernel.label,
            self.kernel.release.as_deref().unwrap_or("release unknown"),
            fmt_size(self.layout.memory),
            fmt_size(self.layout.pmem),
            if cpus == 1 { "CPU" } else { "CPUs" },
            match (self.cpus, kind) {
                (None, ClockKind::Instructions) => {
                    " (the instruction clock counts every vCPU's instructions)"
                }
                _ => "",
            },
            match (accel, self.tcg_threads) {
                (Accel::Kvm, _) => "KVM",
                (Accel::Tcg, TcgThreads::Multi) => "software emulation (TCG)",
                (Accel::Tcg, TcgThreads::Single) =>
                    "software emulation (TCG), one host thread for all vCPUs",
            },
            kind.describe()
        )
    }

    /// The clock of the first boot: auto takes the wall clock at once for a kernel that
    /// did not start under the instruction clock earlier on this host boot.
    fn first_clock(&self) -> (ClockChoice, Option<String>) {
        let cpus = self.cpus(ClockKind::Instructions);
        match (self.clock, icount_memo::did_not_start(&self.kernel.run, cpus)) {
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
            icount_memo::remember(&self.kernel.run, self.cpus(ClockKind::Instructions), &why);
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
