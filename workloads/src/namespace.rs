//! Reconfiguring pmem namespaces without losing anybody's data.
//!
//! `ndctl create-namespace -f` destroys what is on a namespace. So foliobench only touches a
//! namespace it was granted (by name, or the emulated pmem `foliobench vm` creates), refuses
//! one that is mounted, open, mapped, holds a filesystem or is onlined as system RAM,
//! records the original configuration on disk before the first change, restores it when the
//! `Provisioner` is dropped (normal end, error, Ctrl-C) and leaves the record for
//! `foliobench restore` if the process is killed. One flock keeps two runs apart.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use foliobench_reports::geometry::{Geometry, Map};
use serde::{Deserialize, Serialize};

use crate::pmem::{self, Namespace, Region};
use crate::system::cpu_busy_ns;

pub use crate::error::RunError;

use RunError::{Failed, Refused};

pub const STATE_DIR: &str = "/var/lib/foliobench";
const LOCK_PATH: &str = "/run/lock/foliobench.lock";

fn state_path() -> PathBuf {
    Path::new(STATE_DIR).join("namespace-state.json")
}

/// What is written before the first change, so a killed run can be repaired.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedState {
    pub pid: u32,
    pub original: Namespace,
}

/// A namespace to reconfigure, chosen and checked.
#[derive(Debug, Clone)]
pub struct Target {
    pub region: Region,
    pub namespace: Namespace,
    /// Why foliobench may touch it.
    pub grant: String,
}

/// Whether this region is the emulated pmem of `memmap=` (the e820 bus) inside the test VM.
fn emulated_in_vm(region: &Region) -> bool {
    let in_vm = std::env::var_os("FOLIOBENCH_IN_VM").is_some();
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let e820 = fs::read_link(Path::new("/sys/bus/nd/devices").join(&region.dev))
        .map(|p| p.to_string_lossy().contains("e820_pmem"))
        .unwrap_or(false);
    in_vm && e820 && cmdline.split_whitespace().any(|w| w.starts_with("memmap="))
}

/// Picks the namespace to use: the one named with `--namespace`, or in the test VM the
/// emulated pmem's. Refuses anything else.
pub fn choose(granted: Option<&str>) -> Result<Target, RunError> {
    let listing = pmem::list();
    if let Some(e) = listing.error {
        return Err(Failed(e));
    }
    let all: Vec<(Region, Namespace)> = listing
        .regions
        .iter()
        .flat_map(|r| r.namespaces.iter().map(move |n| (r.clone(), n.clone())))
        .collect();
    if let Some(name) = granted {
        let (region, namespace) =
            all.into_iter()
                .find(|(_, n)| n.dev == name)
                .ok_or_else(|| {
                    Refused(format!(
                        "--namespace {name}: no such namespace (see `ndctl list -N`)"
                    ))
                })?;
        return Ok(Target {
            region,
            namespace,
            grant: format!("granted with --namespace {name}"),
        });
    }
    let emulated: Vec<(Region, Namespace)> =
        all.into_iter().filter(|(r, _)| emulated_in_vm(r)).collect();
    match emulated.as_slice() {
        [(region, namespace)] => Ok(Target {
            region: region.clone(),
            namespace: namespace.clone(),
            grant: "emulated pmem of this test VM (memmap=)".into(),
        }),
        [] => Err(Refused(
            "no namespace granted: pass --namespace NAME for one foliobench may reconfigure \
             (its data will be destroyed and its configuration restored), or run inside `foliobench vm`"
                .into(),
        )),
        _ => Err(Refused("several emulated namespaces: pass --namespace NAME".into())),
    }
}

/// The device nodes of a namespace: /dev/pmemN (raw, fsdax, sector) or /dev/daxN.M.
fn device_nodes(ns: &Namespace) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(b) = &ns.blockdev {
        v.push(format!("/dev/{b}"));
    }
    if let Some(c) = &ns.chardev {
        v.push(format!("/dev/{c}"));
    }
    v
}

/// Why a namespace must not be touched now, if anything says so.
pub fn in_use(ns: &Namespace) -> Option<String> {
    let nodes = device_nodes(ns);
    if nodes.is_empty() {
        return None;
    }
    if let Some(why) = holders(&nodes) {
        return Some(why);
    }
    if let Some(b) = &ns.blockdev {
        let out = Command::new("blkid")
            .args(["-p", "-o", "export", &format!("/dev/{b}")])
            .output();
        if let Ok(o) = out {
            let text = String::from_utf8_lossy(&o.stdout);
            if let Some(t) = text.lines().find_map(|l| l.strip_prefix("TYPE=")) {
                return Some(format!("/dev/{b} holds a {t} filesystem or signature"));
            }
        }
    }
    if let Some(c) = &ns.chardev {
        let driver = fs::read_link(Path::new("/sys/bus/dax/devices").join(c).join("driver")).ok();
        if driver.is_some_and(|d| d.ends_with("kmem")) {
            return Some(format!("{c} is onlined as system RAM (kmem)"));
        }
    }
    None
}

/// Whether any of these device nodes is mounted, or open or mapped by another process.
pub fn holders(nodes: &[String]) -> Option<String> {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for l in mounts.lines() {
        let src = l.split_whitespace().next().unwrap_or("");
        if let Some(n) = nodes
            .iter()
            .find(|n| src == n.as_str() || src.starts_with(&format!("{n}p")))
        {
            return Some(format!(
                "{n} is mounted ({})",
                l.split_whitespace().nth(1).unwrap_or("?")
            ));
        }
    }
    let me = std::process::id().to_string();
    for proc in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = proc.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        for fd in fs::read_dir(proc.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(t) = fs::read_link(fd.path()) {
                if let Some(n) = nodes.iter().find(|n| t == Path::new(n.as_str())) {
                    return Some(format!("{n} is open by pid {pid}"));
                }
            }
        }
        if let Ok(maps) = fs::read_to_string(proc.path().join("maps")) {
            // The path is the last field of a maps line; compare it whole (pmem0 != pmem01).
            let mapped = |n: &&String| {
                maps.lines()
                    .any(|l| l.split_whitespace().last() == Some(n.as_str()))
            };
            if let Some(n) = nodes.iter().find(mapped) {
                return Some(format!("{n} is mapped by pid {pid}"));
            }
        }
    }
    None
}

/// The ndctl arguments that configure a namespace as `g`.
pub fn create_args(ns: &str, g: Geometry) -> Vec<String> {
    let map = |m: Map| match m {
        Map::Mem => "mem",
        Map::Dev => "dev",
    };
    let mut v: Vec<String> = ["create-namespace", "-f", "-e", ns]
        .iter()
        .map(|s| s.to_string())
        .collect();
    match g {
        Geometry::Devdax { align, map: m } => v.extend([
            "-m".into(),
            "devdax".into(),
            "-M".into(),
            map(m).into(),
            "-a".into(),
            align.to_string(),
        ]),
        Geometry::Fsdax { map: m } => {
            v.extend(["-m".into(), "fsdax".into(), "-M".into(), map(m).into()])
        }
        Geometry::Pfnmap => {}
    }
    v
}

/// The ndctl arguments that put a namespace back as it was.
pub fn restore_args(orig: &Namespace) -> Vec<String> {
    let mut v: Vec<String> = ["create-namespace", "-f", "-e", &orig.dev]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mode = orig.mode.clone().unwrap_or_else(|| "raw".into());
    v.extend(["-m".into(), mode.clone()]);
    if mode == "fsdax" || mode == "devdax" {
        if let Some(m) = &orig.map {
            v.extend(["-M".into(), m.clone()]);
        }
        if let Some(a) = orig.align {
            v.extend(["-a".into(), a.to_string()]);
        }
    }
    v
}

/// How long one ndctl command took.
#[derive(Debug, Clone, Copy)]
pub struct Took {
    pub elapsed: Duration,
    /// Every task's run time on every CPU meanwhile (`system::cpu_busy_ns`): ndctl and
    /// the kworkers that probe the device. Absent without /proc/schedstat.
    pub cpu_busy: Option<Duration>,
}

fn ndctl(args: &[String]) -> Result<(serde_json::Value, Took), RunError> {
    let busy = cpu_busy_ns();
    let t = Instant::now();
    let out = Command::new("ndctl")
        .args(args)
        .output()
        .map_err(|e| Failed(format!("running ndctl: {e} (install Debian's `ndctl`)")))?;
    let took = Took {
        elapsed: t.elapsed(),
        cpu_busy: busy
            .zip(cpu_busy_ns())
            .map(|(b, a)| Duration::from_nanos(a.saturating_sub(b))),
    };
    if !out.status.success() {
        return Err(Failed(format!(
            "ndctl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    Ok((v, took))
}

/// Exclusive right to reconfigure namespaces on this machine.
pub struct Lock {
    /// Held open for its flock; closing it releases the lock.
    _file: fs::File,
}

impl Lock {
    pub fn take() -> Result<Lock, RunError> {
        let _ = fs::create_dir_all("/run/lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_PATH)
            .map_err(|e| Failed(format!("{LOCK_PATH}: {e}")))?;
        // SAFETY: flock on a file we hold open.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(Failed(format!(
                "another foliobench run is reconfiguring namespaces ({LOCK_PATH} is locked); wait for it to finish"
            )));
        }
        Ok(Lock { _file: f })
    }
}

/// A namespace foliobench is reconfiguring; restores the original on drop.
pub struct Provisioner {
    pub target: Target,
    restored: bool,
    /// Whether this provisioner's last ndctl call left the namespace disabled: then the
    /// next sample starts from there without another ndctl run (about 0.3 s under
    /// emulation, once per memmap sample).
    disabled: AtomicBool,
    _lock: Lock,
}

/// The result of one reconfiguration.
#[derive(Debug, Clone)]
pub struct Applied {
    pub took: Took,
    /// What ndctl reported for the namespace it created.
    pub ndctl: serde_json::Value,
}

impl Applied {
    /// The usable size ndctl reports for the namespace it created (devdax: its dax device).
    pub fn usable_size(&self) -> Option<u64> {
        self.ndctl["daxregion"]["devices"][0]["size"]
            .as_u64()
            .or_else(|| self.ndctl["size"].as_u64())
    }

    /// `/dev/daxX.Y` of a devdax namespace.
    pub fn dax_device(&self) -> Option<String> {
        self.ndctl["daxregion"]["devices"][0]["chardev"]
            .as_str()
            .map(|c| format!("/dev/{c}"))
    }

    /// `/dev/pmemN` of an fsdax namespace.
    pub fn block_device(&self) -> Option<String> {
        self.ndctl["blockdev"].as_str().map(|b| format!("/dev/{b}"))
    }
}

impl Provisioner {
    /// Checks the target, takes the lock and saves the original configuration.
    pub fn begin(target: Target) -> Result<Provisioner, RunError> {
        let lock = Lock::take()?;
        if let Ok(text) = fs::read_to_string(state_path()) {
            return Err(Refused(format!(
                "a previous run left {} unrestored ({}); run `foliobench restore` first",
                state_path().display(),
                text.trim()
            )));
        }
        if let Some(why) = in_use(&target.namespace) {
            return Err(Refused(format!(
                "refusing to reconfigure {}: {why}",
                target.namespace.dev
            )));
        }
        let state = SavedState {
            pid: std::process::id(),
            original: target.namespace.clone(),
        };
        fs::create_dir_all(STATE_DIR).map_err(|e| Failed(format!("{STATE_DIR}: {e}")))?;
        let json = serde_json::to_vec_pretty(&state).expect("serializable");
        fs::write(state_path(), json)
            .map_err(|e| Failed(format!("{}: {e}", state_path().display())))?;
        Ok(Provisioner {
            target,
            restored: false,
            disabled: AtomicBool::new(false),
            _lock: lock,
        })
    }

    pub fn namespace(&self) -> &str {
        &self.target.namespace.dev
    }

    /// Tears the namespace's memremap down (memunmap_pages, the vmemmap freed): the known
    /// state deltas are measured from. Returns how long ndctl took.
    pub fn disable(&self) -> Result<Took, RunError> {
        self.disabled.store(false, Ordering::SeqCst);
        let took = ndctl(&["disable-namespace".into(), self.namespace().into()])?.1;
        self.disabled.store(true, Ordering::SeqCst);
        Ok(took)
    }

    /// The namespace disabled: by `disable`, unless this provisioner's last call did that.
    pub fn ensure_disabled(&self) -> Result<(), RunError> {
        if !self.disabled.load(Ordering::SeqCst) {
            self.disable()?;
        }
        Ok(())
    }

    pub fn apply(&self, g: Geometry) -> Result<Applied, RunError> {
        self.disabled.store(false, Ordering::SeqCst);
        let (ndctl, took) = ndctl(&create_args(self.namespace(), g))?;
        Ok(Applied { took, ndctl })
    }

    /// Re-reads the namespace and compares it with the original: mode, map and size.
    pub fn verify_restored(&self) -> Result<String, RunError> {
        let now = pmem::list()
            .regions
            .into_iter()
            .flat_map(|r| r.namespaces)
            .find(|n| n.dev == self.target.namespace.dev)
            .ok_or_else(|| Failed(format!("{} is gone after restore", self.namespace())))?;
        let o = &self.target.namespace;
        let same = now.mode == o.mode && now.map == o.map && now.size == o.size;
        let desc = |n: &Namespace| {
            format!(
                "{} mode={} map={} size={}",
                n.dev,
                n.mode.as_deref().unwrap_or("?"),
                n.map.as_deref().unwrap_or("-"),
                n.size
            )
        };
        if same {
            Ok(format!("verified: {}", desc(&now)))
        } else {
            Err(Failed(format!(
                "restore did not give back the original: now {}, was {}",
                desc(&now),
                desc(o)
            )))
        }
    }

    /// Puts the original configuration back and forgets the saved state.
    pub fn restore(&mut self) -> Result<(), RunError> {
        if self.restored {
            return Ok(());
        }
        self.disabled.store(false, Ordering::SeqCst);
        ndctl(&restore_args(&self.target.namespace))?;
        self.restored = true;
        let _ = fs::remove_file(state_path());
        Ok(())
    }
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        if !self.restored {
            match self.restore() {
                Ok(()) => eprintln!("foliobench: restored {} to its original configuration", self.namespace()),
                Err(e) => eprintln!(
                    "foliobench: could not restore {}: {e}; its original configuration is saved in {}: run `foliobench restore`",
                    self.namespace(),
                    state_path().display()
                ),
            }
        }
    }
}

/// Whether a foliobench process with this pid (other than us) still exists. A run killed
/// with probes attached can take seconds to exit (BPF trampolines wait for RCU grace
/// periods) and holds the lock until it has.
pub(crate) fn foliobench_alive(pid: u32) -> bool {
    // `pid (comm) S ...`: a zombie (Z) or dead (X) process has closed its files and lock;
    // an init that does not reap (as in the test VM) can leave one for good.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    pid != std::process::id()
        && stat.contains("(foliobench)")
        && !matches!(state, None | Some("Z") | Some("X"))
}

/// Waits up to `wait` for the foliobench run `pid`, which saved `what` and restores it
/// itself on its way out, to be gone; refuses if it is still running then.
pub(crate) fn wait_for_exit(pid: u32, wait: Duration, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let mut said = false;
    while foliobench_alive(pid) {
        if Instant::now() > deadline {
            return Err(format!(
                "pid {pid} (foliobench) is still running and will restore {what} itself; stop it first"
            ));
        }
        if !said {
            eprintln!("foliobench: waiting for pid {pid} (the run that saved {what}) to exit");
            said = true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// `foliobench restore`: puts back a namespace a killed run left reconfigured. Waits up to
/// `wait` for that run to finish exiting.
pub fn restore_saved(wait: Duration) -> Result<Option<Namespace>, RunError> {
    let text = match fs::read_to_string(state_path()) {
        Ok(t) => t,
        Err(_) => return Ok(None),
    };
    let state: SavedState = serde_json::from_str(&text).map_err(|e| {
        Failed(format!(
            "{} is not a foliobench state file: {e}",
            state_path().display()
        ))
    })?;
    let deadline = Instant::now() + wait;
    wait_for_exit(state.pid, wait, &state.original.dev).map_err(Refused)?;
    // The run is gone; its lock goes with its last file descriptor.
    let _lock = loop {
        match Lock::take() {
            Ok(l) => break l,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    ndctl(&restore_args(&state.original))?;
    let _ = fs::remove_file(state_path());
    Ok(Some(state.original))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_names_its_devices_and_size() {
        let dax = Applied {
            took: Took {
                elapsed: Duration::ZERO,
                cpu_busy: None,
            },
            ndctl: serde_json::json!({"dev":"namespace0.0","mode":"devdax","size":2111832064u64,
                "daxregion":{"id":0,"size":2111832064u64,"align":2097152,"devices":[{"chardev":"dax0.0","size":2111832064u64}]}}),
        };
        assert_eq!(dax.usable_size(), Some(2111832064));
        assert_eq!(dax.dax_device().as_deref(), Some("/dev/dax0.0"));
        assert_eq!(dax.block_device(), None);
        let fs = Applied {
            took: Took {
                elapsed: Duration::ZERO,
                cpu_busy: None,
            },
            ndctl: serde_json::json!({"dev":"namespace0.0","mode":"fsdax","size":2145386496u64,"blockdev":"pmem0"}),
        };
        assert_eq!(fs.usable_size(), Some(2145386496));
        assert_eq!(fs.block_device().as_deref(), Some("/dev/pmem0"));
    }

    fn ns(mode: &str, map: Option<&str>, align: Option<u64>) -> Namespace {
        Namespace {
            dev: "namespace0.0".into(),
            mode: Some(mode.into()),
            map: map.map(String::from),
            size: 2 << 30,
            align,
            blockdev: None,
            chardev: None,
            state: None,
        }
    }

    #[test]
    fn create_arguments_per_geometry() {
        let g: Geometry = "devdax:2M:dev".parse().unwrap();
        assert_eq!(
            create_args("namespace0.0", g).join(" "),
            "create-namespace -f -e namespace0.0 -m devdax -M dev -a 2097152"
        );
        let g: Geometry = "fsdax:mem".parse().unwrap();
        assert_eq!(
            create_args("namespace0.0", g).join(" "),
            "create-namespace -f -e namespace0.0 -m fsdax -M mem"
        );
    }

    #[test]
    fn restore_arguments_put_back_mode_map_and_align() {
        assert_eq!(
            restore_args(&ns("fsdax", Some("mem"), None)).join(" "),
            "create-namespace -f -e namespace0.0 -m fsdax -M mem"
        );
        assert_eq!(
            restore_args(&ns("devdax", Some("dev"), Some(1 << 30))).join(" "),
            "create-namespace -f -e namespace0.0 -m devdax -M dev -a 1073741824"
        );
        assert_eq!(
            restore_args(&ns("raw", None, None)).join(" "),
            "create-namespace -f -e namespace0.0 -m raw"
        );
    }

    #[test]
    fn a_namespace_without_device_nodes_is_not_in_use() {
        assert_eq!(in_use(&ns("raw", None, None)), None);
    }

    #[test]
    fn liveness_of_the_saved_pid() {
        assert!(
            !foliobench_alive(std::process::id()),
            "never waits for itself"
        );
        assert!(!foliobench_alive(u32::MAX), "no such process");
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        assert!(!foliobench_alive(child.id()), "not a foliobench");
        child.kill().unwrap();
        let _ = child.wait();
    }

    #[test]
    fn an_open_device_is_refused() {
        // A file another process holds open stands in for a device node.
        let f = tempfile::NamedTempFile::new().unwrap();
        let node = f.path().to_string_lossy().into_owned();
        assert_eq!(holders(std::slice::from_ref(&node)), None);
        let mut child = Command::new("sleep")
            .arg("5")
            .stdin(fs::File::open(f.path()).unwrap())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let why = holders(std::slice::from_ref(&node));
        child.kill().unwrap();
        let _ = child.wait();
        let why = why.expect("refused");
        // Usually the child; another test's process forked while the file was open (before
        // its exec) holds it too, and may be found first.
        assert!(why.starts_with(&format!("{node} is open by pid ")), "{why}");
    }
}
