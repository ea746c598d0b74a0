//! A block device for the O_DIRECT pin driver to read from, created for the run and removed
//! after it: a null_blk device (no data, completion inline: the I/O itself costs nothing),
//! or, where null_blk is missing, a loop device over a sparse file (the I/O then costs a
//! copy, which is said).

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use foliobench_reports::facts::ModuleState;

use crate::command::run_tool as run;
use crate::system::{ensure_mounted, module_state};

const CONFIGFS: &str = "/sys/kernel/config";

/// What is behind the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// null_blk, memory_backed=0, irqmode=0 (completes inline, in the reading task).
    NullBlk,
    /// A loop device over a sparse file.
    Loop,
}

/// A block device foliobench created; removed on drop (and the module unloaded if it was
/// foliobench that loaded it).
pub struct SourceDevice {
    pub kind: Kind,
    pub path: PathBuf,
    /// How it was set up, for the results' notes.
    pub description: String,
    undo: Undo,
}

enum Undo {
    NullBlk {
        dir: PathBuf,
        unload_module: bool,
    },
    Loop {
        /// Deleted when dropped, after the loop device is detached.
        _backing: tempfile::NamedTempFile,
    },
}

fn write(path: &Path, value: &str) -> Result<(), String> {
    fs::write(path, value).map_err(|e| format!("writing {value} to {}: {e}", path.display()))
}

impl SourceDevice {
    /// A device of at least `bytes`: null_blk if it can be had, else a loop device. The
    /// error names why neither worked.
    pub fn create(bytes: u64) -> Result<SourceDevice, String> {
        match Self::null_blk(bytes) {
            Ok(d) => Ok(d),
            Err(why_not) => Self::loop_device(bytes).map(|mut d| {
                d.description = format!("{} (null_blk unavailable: {why_not})", d.description);
                d
            }),
        }
    }

    /// A configfs null_blk device named foliobench-<pid>: its own parameters, whatever
    /// null_blk devices exist already, and built-in or modular null_blk alike.
    pub fn null_blk(bytes: u64) -> Result<SourceDevice, String> {
        let release = crate::system::kernel_release();
        let unload_module = match module_state("null_blk", &release) {
            ModuleState::Builtin | ModuleState::Loaded => false,
            ModuleState::Loadable => {
                // nr_devices=0: no default device; ours comes from configfs.
                run("modprobe", &["null_blk", "nr_devices=0"])?;
                true
            }
            other => return Err(format!("null_blk is {other:?} in {release}")),
        };
        let fail = |e: String| {
            if unload_module {
                let _ = run("modprobe", &["-r", "null_blk"]);
            }
            e
        };
        ensure_mounted("configfs", CONFIGFS).map_err(fail)?;
        let name = format!("foliobench{}", std::process::id());
        let dir = Path::new(CONFIGFS).join("nullb").join(&name);
        fs::create_dir(&dir).map_err(|e| fail(format!("creating {}: {e}", dir.display())))?;
        let dev = SourceDevice {
            kind: Kind::NullBlk,
            path: Path::new("/dev").join(&name),
            description: format!(
                "null_blk /dev/{name} (configfs: memory_backed=0, irqmode=0, blocksize 4096)"
            ),
            undo: Undo::NullBlk {
                dir: dir.clone(),
                unload_module,
            },
        };
        // From here on, drop undoes what was done.
        let mib = bytes.div_ceil(1 << 20).max(1);
        for (attr, value) in [
            ("size", mib.to_string()),
            ("blocksize", "4096".to_string()),
            ("memory_backed", "0".to_string()),
            ("irqmode", "0".to_string()),
            ("completion_nsec", "0".to_string()),
            ("power", "1".to_string()),
        ] {
            write(&dir.join(attr), &value)?;
        }
        wait_for(&dev.path)?;
        Ok(dev)
    }

    /// A loop device over a sparse file in /dev/shm (tmpfs).
    pub fn loop_device(bytes: u64) -> Result<SourceDevice, String> {
        let backing = tempfile::Builder::new()
            .prefix("foliobench-odirect-")
            .tempfile_in("/dev/shm")
            .or_else(|_| tempfile::NamedTempFile::new())
            .map_err(|e| format!("creating the loop device's backing file: {e}"))?;
        backing
            .as_file()
            .set_len(bytes)
            .map_err(|e| format!("sizing the loop device's backing file: {e}"))?;
        let file = backing.path().to_string_lossy().to_string();
        let loopdev = run("losetup", &["--find", "--show", &file])?;
        Ok(SourceDevice {
            kind: Kind::Loop,
            path: PathBuf::from(&loopdev),
            description: format!("loop device {loopdev} over a sparse file (reads cost a copy)"),
            undo: Undo::Loop { _backing: backing },
        })
    }

    /// Opens the device for O_DIRECT reads.
    pub fn open(&self) -> Result<File, String> {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&self.path)
            .map_err(|e| format!("opening {} with O_DIRECT: {e}", self.path.display()))
    }
}

impl SourceDevice {
    /// Opens the device for O_DIRECT writes (what is written is discarded or lands in
    /// foliobench's own backing file: the device was made for the run).
    pub fn open_write(&self) -> Result<File, String> {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(&self.path)
            .map_err(|e| {
                format!(
                    "opening {} with O_DIRECT for writing: {e}",
                    self.path.display()
                )
            })
    }
}

/// udev may be absent (as in the test VM): devtmpfs creates the node, shortly.
fn wait_for(path: &Path) -> Result<(), String> {
    for _ in 0..100 {
        if path.exists() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(format!("{} did not appear", path.display()))
}

impl Drop for SourceDevice {
    fn drop(&mut self) {
        let result = match &self.undo {
            Undo::NullBlk { dir, unload_module } => {
                let _ = write(&dir.join("power"), "0");
                let r = fs::remove_dir(dir).map_err(|e| format!("removing {}: {e}", dir.display()));
                match (r, *unload_module) {
                    (Ok(()), true) => run("modprobe", &["-r", "null_blk"]).map(|_| ()),
                    (r, _) => r,
                }
            }
            Undo::Loop { .. } => run("losetup", &["-d", &self.path.to_string_lossy()]).map(|_| ()),
        };
        if let Err(e) = result {
            eprintln!("foliobench: could not remove {}: {e}", self.path.display());
        }
    }
}
