//! An fsdax file to map: ext4 made on the namespace's block device foliobench just created
//! (so it holds nothing of anybody's), mounted with `-o dax` in a private directory, one
//! preallocated file. Unmounted on drop, before the namespace is reconfigured or restored.

use crate::command::run_tool;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A mounted dax filesystem; unmounted (and its mount point removed) on drop.
pub struct DaxFs {
    pub device: PathBuf,
    pub mountpoint: PathBuf,
}

/// A tool this module needs; the error says which package brings it.
fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    run_tool(cmd, args)
        .map(|_| ())
        .map_err(|e| format!("{e} (e2fsprogs and mount provide mkfs.ext4, mount, umount)"))
}

/// The options /proc/self/mounts shows for a mount point.
fn mount_options(mountpoint: &Path) -> Option<String> {
    let want = mountpoint.to_string_lossy();
    fs::read_to_string("/proc/self/mounts")
        .ok()?
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 3 && f[1] == want)
        .map(|f| f[3].to_string())
}

impl DaxFs {
    /// Makes ext4 on `device` (4 KiB blocks, as DAX needs) and mounts it with `-o dax`.
    /// Refuses to go on if the kernel did not enable DAX on the mount.
    pub fn create(device: &Path) -> Result<DaxFs, String> {
        let dev = device.to_string_lossy().to_string();
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-b",
                "4096",
                "-E",
                "nodiscard",
                "-L",
                "foliobench",
                &dev,
            ],
        )?;
        let mountpoint = Path::new("/run/foliobench").join(format!("fsdax-{}", std::process::id()));
        fs::create_dir_all(&mountpoint)
            .map_err(|e| format!("creating {}: {e}", mountpoint.display()))?;
        let mp = mountpoint.to_string_lossy().to_string();
        if let Err(e) = run("mount", &["-t", "ext4", "-o", "dax", &dev, &mp]) {
            let _ = fs::remove_dir(&mountpoint);
            return Err(e);
        }
        let fs = DaxFs {
            device: device.to_path_buf(),
            mountpoint,
        };
        match mount_options(&fs.mountpoint) {
            Some(o) if o.split(',').any(|x| x == "dax" || x == "dax=always") => Ok(fs),
            o => Err(format!(
                "{dev} mounted without DAX (options: {}): the kernel would page-cache the file",
                o.unwrap_or_default()
            )),
        }
    }

    /// A file of `len` bytes, allocated (fallocate) so faults map pmem, not holes.
    pub fn file(&self, len: u64) -> Result<File, String> {
        let path = self.mountpoint.join("pinned");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        // SAFETY: fallocate on a file we hold open.
        if unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&f), 0, 0, len as i64) } != 0 {
            return Err(format!(
                "fallocate of {len} bytes on {}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(f)
    }
}

impl Drop for DaxFs {
    fn drop(&mut self) {
        let mp = self.mountpoint.to_string_lossy().to_string();
        match run("umount", &[&mp]) {
            Ok(()) => {
                let _ = fs::remove_dir(&self.mountpoint);
            }
            Err(e) => eprintln!(
                "foliobench: could not unmount {mp} ({}): {e}",
                self.device.display()
            ),
        }
    }
}
