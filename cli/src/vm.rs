//! `foliobench vm`: boot a test VM with emulated pmem (virtme-ng) and run foliobench in it.
//!
//! The guest shares the host's filesystem read-only; the current directory (where results
//! go) and a private state directory are shared writable. vng does not return the guest
//! command's exit code when it falls back to the serial console, so the guest writes it to
//! the state directory and that is what `foliobench vm` exits with.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::exit::{env, usage, Code, Fail};
use crate::kernel::{self, KernelSpec};
use crate::units::{fmt_size, parse_size, GIB, MIB};

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

#[derive(Debug, clap::Args)]
pub struct VmArgs {
    /// debian:6.12, debian:6.1, debian:<version>, a bzImage, or a kernel build tree.
    #[arg(long, default_value = "debian:6.12")]
    pub kernel: String,
    /// Emulated pmem (memmap=SIZE!4G); 0 for none.
    #[arg(long, default_value = "2G")]
    pub pmem: String,
    /// Guest RAM besides the pmem.
    #[arg(long, default_value = "4G")]
    pub memory: String,
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Kill the VM after this long (e.g. 90s, 20m).
    #[arg(long, default_value = "30m")]
    pub timeout: String,
    /// More host directories the guest may write (the current directory always is).
    #[arg(long = "share", value_name = "DIR")]
    pub share: Vec<PathBuf>,
    /// Show the kernel's console log too, not only foliobench's output.
    #[arg(long)]
    pub boot_log: bool,
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

/// Can QEMU really run a guest with KVM here? /dev/kvm existing is not enough: on some
/// nested setups QEMU aborts setting MSRs at vCPU reset. Start QEMU with KVM, no guest,
/// and ask its monitor to quit: it exits 0 only if the vCPU came up.
pub fn kvm_usable() -> (bool, String) {
    if !Path::new("/dev/kvm").exists() {
        return (false, "no /dev/kvm".into());
    }
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-nodefaults",
            "-display",
            "none",
            "-m",
            "64",
            "-monitor",
            "stdio",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (false, format!("cannot start qemu-system-x86_64: {e}")),
    };
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(b"quit\n");
    }
    match child.wait_with_output() {
        Ok(o) if o.status.success() => (true, "KVM runs a vCPU".into()),
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr);
            let first = err
                .lines()
                .find(|l| l.contains("error") || l.contains("failed"))
                .unwrap_or("")
                .trim();
            (
                false,
                format!("/dev/kvm exists but QEMU cannot run a vCPU with it ({first})"),
            )
        }
        Err(e) => (false, format!("KVM probe failed: {e}")),
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

/// The shell line run inside the guest.
fn guest_script(
    exe: &Path,
    args: &[String],
    cwd: &Path,
    state: &Path,
    config: Option<&Path>,
) -> String {
    let q = |s: &str| {
        shlex::try_quote(s)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| "''".into())
    };
    let mut envs = vec!["FOLIOBENCH_IN_VM=1".to_string()];
    if let Some(c) = config {
        envs.push(format!(
            "{}={}",
            foliobench_workloads::kconfig::CONFIG_ENV,
            q(&c.to_string_lossy())
        ));
    }
    let cmd: Vec<String> = std::iter::once(q(&exe.to_string_lossy()))
        .chain(args.iter().map(|a| q(a)))
        .collect();
    format!(
        "modprobe -qa {mods} 2>/dev/null; echo {MARKER}; cd {cwd} && {envs} {cmd}; echo $? > {exit}",
        mods = GUEST_MODULES.join(" "),
        cwd = q(&cwd.to_string_lossy()),
        envs = envs.join(" "),
        cmd = cmd.join(" "),
        exit = q(&state.join("exit").to_string_lossy()),
    )
}

pub fn run(a: VmArgs) -> Result<Code> {
    let spec = KernelSpec::parse(&a.kernel)?;
    let layout = Layout::new(
        parse_size("--pmem", &a.pmem)?,
        parse_size("--memory", &a.memory)?,
    )?;
    let timeout = humantime::parse_duration(&a.timeout).map_err(|e| {
        usage(format!(
            "--timeout '{}': {e}; write e.g. 90s or 20m",
            a.timeout
        ))
    })?;
    if a.cpus == 0 {
        return Err(usage("--cpus must be at least 1"));
    }
    let available = foliobench_workloads::system::meminfo_kb("MemAvailable")
        .map_or(u64::MAX, |kb| kb as u64 * 1024);
    layout.check_host(available)?;
    require("vng", "virtme-ng (pip install virtme-ng)")?;
    require("qemu-system-x86_64", "Debian's qemu-system-x86")?;
    require(
        "busybox",
        "Debian's busybox-static (virtme-ng builds its initramfs with it)",
    )?;
    let kernel = kernel::prepare(&spec)?;

    let (kvm, why) = kvm_usable();
    eprintln!(
        "foliobench: booting {} [{}] with {} RAM + {} pmem, {} CPUs, {}",
        kernel.label,
        kernel.release.as_deref().unwrap_or("release unknown"),
        fmt_size(layout.memory),
        fmt_size(layout.pmem),
        a.cpus,
        if kvm {
            "KVM".to_string()
        } else {
            format!("software emulation (TCG: {why})")
        }
    );

    let cwd = std::env::current_dir()?;
    let state = tempfile::Builder::new()
        .prefix("foliobench-vm-")
        .tempdir()?;
    let exe = std::env::current_exe()?;
    let args = if a.args.is_empty() {
        vec!["doctor".to_string()]
    } else {
        a.args.clone()
    };
    let script = guest_script(&exe, &args, &cwd, state.path(), kernel.config.as_deref());

    let mut cmd = Command::new("vng");
    // 9p straight away: vng otherwise tries virtiofsd for every share first.
    cmd.arg("-v").arg("--force-9p").arg("-r").arg(&kernel.run);
    if !kvm {
        cmd.arg("--disable-kvm");
    }
    cmd.arg("--memory")
        .arg(format!("{}M", layout.qemu_memory() / MIB));
    cmd.arg("--cpus").arg(a.cpus.to_string());
    if let Some(m) = layout.memmap() {
        cmd.arg("--append").arg(m);
    }
    let mut shared = vec![state.path().to_path_buf()];
    if cwd != Path::new("/") {
        shared.push(cwd.clone());
    }
    shared.extend(a.share.iter().cloned());
    for d in &shared {
        let d = d
            .canonicalize()
            .map_err(|e| usage(format!("--share {}: {e}", d.display())))?;
        cmd.arg("--rwdir").arg(d);
    }
    // A small device with a memory BAR and no guest driver: what the PFN-map row maps
    // (read-only, never accessed), instead of a BAR some driver uses.
    // One word with '=': argparse takes a separate value starting with '-' for an option.
    cmd.arg(format!("--qemu-opts={PFNMAP_DEVICE}"));
    cmd.arg("--").arg(&script);

    if a.dry_run {
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

    // Its own process group, so a timeout or Ctrl-C can take down vng and QEMU together.
    let interrupted = crate::exit::interrupt_flag()?;
    let deadline = Instant::now() + timeout;
    for attempt in 1..=BOOT_ATTEMPTS {
        let waits = Waits {
            deadline,
            timeout: &a.timeout,
            interrupted: &interrupted,
        };
        match boot(&mut cmd, a.boot_log, &waits, &state.path().join("exit"))? {
            Boot::Ran => break,
            Boot::DiedBooting { oops, tail } if attempt < BOOT_ATTEMPTS => {
                eprintln!(
                    "foliobench: the VM died while booting, before the guest command ran ({}); \
                     booting again (attempt {} of {BOOT_ATTEMPTS})",
                    oops.as_deref().unwrap_or_else(|| tail.last().map_or("no output", |s| s.as_str())),
                    attempt + 1
                );
            }
            Boot::DiedBooting { tail, .. } => {
                return Err(env(format!(
                    "the VM failed to boot {BOOT_ATTEMPTS} times, before the guest command started; last boot output:\n{}",
                    tail.join("\n")
                )))
            }
            Boot::DiedRunning => {
                return Err(env(
                    "the guest command started but the VM ended without an exit status \
                     (the kernel crashed or the command was killed); rerun with --boot-log",
                ))
            }
        }
    }
    let s = std::fs::read_to_string(state.path().join("exit"))
        .context("reading the guest's exit status")?;
    let code: i32 = s
        .trim()
        .parse()
        .with_context(|| format!("guest exit status '{}'", s.trim()))?;
    Ok(guest_code(code))
}

/// How one boot ended.
enum Boot {
    /// The guest command ran and wrote its exit status.
    Ran,
    /// The VM died before the guest command started (kernel oops while booting): nothing
    /// was done in the guest, so booting again is safe.
    DiedBooting {
        oops: Option<String>,
        tail: Vec<String>,
    },
    /// The guest command started but no exit status came back.
    DiedRunning,
}

/// When to give up on a VM.
struct Waits<'a> {
    deadline: Instant,
    /// As the user wrote it, for the message.
    timeout: &'a str,
    interrupted: &'a AtomicBool,
}

/// Boots once and waits, killing the VM's process group on the deadline or a signal.
fn boot(cmd: &mut Command, boot_log: bool, w: &Waits<'_>, exit_file: &Path) -> Result<Boot> {
    // Its own process group, so a timeout or Ctrl-C takes down vng and QEMU together.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().context("starting vng")?;
    let pgid = child.id() as i32;
    let console = Arc::new(Console {
        boot_log,
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
    let outcome = loop {
        if child.try_wait()?.is_some() {
            break None;
        }
        let expired = Instant::now() > w.deadline;
        if expired || w.interrupted.load(Ordering::Relaxed) {
            // SAFETY: signalling our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            break Some(if expired {
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
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for p in pumps {
        let _ = p.join();
    }
    if let Some(fail) = outcome {
        return Err(fail.into());
    }
    let ran = console.started.load(Ordering::Relaxed);
    Ok(match (ran, exit_file.exists()) {
        (true, true) => Boot::Ran,
        (true, false) => Boot::DiedRunning,
        (false, _) => Boot::DiedBooting {
            oops: console.oops.lock().ok().and_then(|o| o.clone()),
            tail: console
                .tail
                .lock()
                .map(|t| t.iter().cloned().collect())
                .unwrap_or_default(),
        },
    })
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
    started: AtomicBool,
    tail: Mutex<VecDeque<String>>,
    /// The first line that says why the kernel died.
    oops: Mutex<Option<String>>,
}

impl Console {
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
                println!("{line}");
                continue;
            }
            if self.boot_log {
                eprintln!("{line}");
            }
            if ["Oops:", "BUG:", "Kernel panic"]
                .iter()
                .any(|k| line.contains(k))
            {
                if let Ok(mut o) = self.oops.lock() {
                    o.get_or_insert_with(|| line.trim().to_string());
                }
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
            Some(Path::new("/c/config-6.12")),
        );
        assert!(s.contains("cd /work/x && FOLIOBENCH_IN_VM=1 FOLIOBENCH_KERNEL_CONFIG=/c/config-6.12 /work/target/foliobench doctor --out 'a b.json'; echo $? > /tmp/st/exit"), "{s}");
        assert!(s.starts_with("modprobe -qa nd_e820"));
        assert!(s.contains(&format!("; echo {MARKER}; cd ")));
    }
}
