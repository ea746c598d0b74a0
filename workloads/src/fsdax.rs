//! An fsdax file to map: ext4 or xfs made on the namespace's block device foliobench just
//! created (so it holds nothing of anybody's), mounted with `-o dax` in a private directory,
//! one preallocated file. Unmounted on drop, before the namespace is reconfigured or restored.

use crate::command::run_tool;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A mounted dax filesystem; unmounted (and its mount point removed) on drop.
pub struct DaxFs {
    pub device: PathBuf,
    pub mountpoint: PathBuf,
    pub kind: FsKind,
}

/// The filesystems with DAX support that foliobench makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Ext4,
    Xfs,
}

impl FsKind {
    pub const ALL: [FsKind; 2] = [FsKind::Ext4, FsKind::Xfs];

    pub fn name(&self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
        }
    }

    /// The mkfs command and arguments, before the device. Both use 4 KiB blocks (DAX needs
    /// the page size) and are told of a 2 MiB stripe, so that large extents start 2 MiB-
    /// aligned and PMD faults can map them; xfs without reflink (DAX refuses shared extents
    /// on 6.12's xfs).
    pub fn mkfs(&self) -> (&'static str, &'static [&'static str]) {
        match self {
            FsKind::Ext4 => (
                "mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-b",
                    "4096",
                    "-E",
                    "nodiscard,stride=512,stripe_width=512",
                    "-L",
                    "foliobench",
                ],
            ),
            FsKind::Xfs => (
                "mkfs.xfs",
                &[
                    "-q",
                    "-f",
                    "-K",
                    "-m",
                    "reflink=0",
                    "-d",
                    "su=2m,sw=1",
                    "-L",
                    "foliobench",
                ],
            ),
        }
    }

    /// The package that brings this mkfs.
    fn package(&self) -> &'static str {
        match self {
            FsKind::Ext4 => "e2fsprogs",
            FsKind::Xfs => "xfsprogs",
        }
    }

    /// How it is made and mounted, for the results.
    pub fn describe(&self) -> String {
        let (cmd, args) = self.mkfs();
        format!("{cmd} {}; mount -o dax", args.join(" "))
    }
}

/// A tool this module needs; the error says which package brings it.
fn run(cmd: &str, args: &[&str], package: &str) -> Result<(), String> {
    run_tool(cmd, args)
        .map(|_| ())
        .map_err(|e| format!("{e} ({package} provides {cmd})"))
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
    /// Makes `kind` on `device` and mounts it with `-o dax`. Refuses to go on if the kernel
    /// did not enable DAX on the mount.
    pub fn create(device: &Path, kind: FsKind) -> Result<DaxFs, String> {
        let dev = device.to_string_lossy().to_string();
        let (mkfs, opts) = kind.mkfs();
        let mut args: Vec<&str> = opts.to_vec();
        args.push(&dev);
        run(mkfs, &args, kind.package())?;
        let mountpoint = Path::new("/run/foliobench").join(format!("fsdax-{}", std::process::id()));
        fs::create_dir_all(&mountpoint)
            .map_err(|e| format!("creating {}: {e}", mountpoint.display()))?;
        let mp = mountpoint.to_string_lossy().to_string();
        if let Err(e) = run(
            "mount",
            &["-t", kind.name(), "-o", "dax", &dev, &mp],
            "mount",
        ) {
            let _ = fs::remove_dir(&mountpoint);
            return Err(e);
        }
        let fs = DaxFs {
            device: device.to_path_buf(),
            mountpoint,
            kind,
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
        match run("umount", &[&mp], "mount") {
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
