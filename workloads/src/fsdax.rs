//! An fsdax file to map: ext4 or xfs made on the namespace's block device foliobench just
//! created (so it holds nothing of anybody's), mounted with `-o dax` in a private directory,
//! one preallocated file. Unmounted on drop, before the namespace is reconfigured or restored.

use crate::command::run_tool;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The one file `DaxFs::file` makes, in the filesystem's root.
pub const FILE_NAME: &str = "pinned";

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
    /// the page size) and allocate in 2 MiB-aligned pieces, so that PMD faults can map the
    /// whole file: ext4 with 2 MiB clusters (bigalloc: its stripe hints alone left
    /// fallocate's extent at block 8487 on 6.12, and 0 of 32 pieces PMD-mapped), xfs with a
    /// 2 MiB stripe unit and without reflink (DAX refuses shared extents on 6.12's xfs).
    pub fn mkfs(&self) -> (&'static str, &'static [&'static str]) {
        match self {
            FsKind::Ext4 => (
                "mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-b",
                    "4096",
                    "-O",
                    "bigalloc",
                    "-C",
                    "2M",
                    "-E",
                    "nodiscard",
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

/// One extent of a file (FS_IOC_FIEMAP): where its bytes lie on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub logical: u64,
    pub physical: u64,
    pub length: u64,
}

/// struct fiemap and struct fiemap_extent (include/uapi/linux/fiemap.h), read by hand: no
/// well-kept crate wraps this one ioctl.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
const FIEMAP_HEADER: usize = 32;
const FIEMAP_EXTENT: usize = 56;
const FIEMAP_FLAG_SYNC: u32 = 1;

/// The file's extents, as its filesystem reports them.
pub fn extents(f: &File) -> Result<Vec<Extent>, String> {
    const MAX: usize = 4096;
    let mut buf = vec![0u8; FIEMAP_HEADER + MAX * FIEMAP_EXTENT];
    buf[8..16].copy_from_slice(&u64::MAX.to_ne_bytes()); // fm_length: the whole file
    buf[16..20].copy_from_slice(&FIEMAP_FLAG_SYNC.to_ne_bytes());
    buf[24..28].copy_from_slice(&(MAX as u32).to_ne_bytes()); // fm_extent_count
                                                              // SAFETY: buf holds a struct fiemap with room for MAX extents, as fm_extent_count says.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(f),
            FS_IOC_FIEMAP as _,
            buf.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(format!(
            "FS_IOC_FIEMAP: {}",
            std::io::Error::last_os_error()
        ));
    }
    let u64_at = |o: usize| u64::from_ne_bytes(buf[o..o + 8].try_into().expect("8 bytes"));
    let mapped = u32::from_ne_bytes(buf[20..24].try_into().expect("4 bytes")) as usize;
    Ok((0..mapped.min(MAX))
        .map(|i| {
            let e = FIEMAP_HEADER + i * FIEMAP_EXTENT;
            Extent {
                logical: u64_at(e),
                physical: u64_at(e + 8),
                length: u64_at(e + 16),
            }
        })
        .collect())
}

/// How many 2 MiB pieces of a `len`-byte file lie each inside one extent whose device offset
/// is 2 MiB-aligned where the file offset is: the pieces a PMD fault can map (if the
/// device itself starts 2 MiB-aligned in physical memory, which pagemap then shows).
pub fn pmd_aligned_pieces(extents: &[Extent], len: u64) -> u64 {
    const PMD: u64 = 2 << 20;
    (0..len / PMD)
        .filter(|i| {
            let start = i * PMD;
            extents.iter().any(|e| {
                e.logical <= start
                    && start + PMD <= e.logical + e.length
                    && (e.physical + (start - e.logical)) % PMD == 0
            })
        })
        .count() as u64
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
        let path = self.mountpoint.join(FILE_NAME);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen on 6.12, 64 MiB fallocated: ext4 with stripe hints put the one extent at block
    /// 8487 (no piece aligned); with 2 MiB clusters at block 18432 (all 32).
    #[test]
    fn aligned_pieces_need_aligned_extents() {
        let one = |block: u64| Extent {
            logical: 0,
            physical: block * 4096,
            length: 64 << 20,
        };
        assert_eq!(pmd_aligned_pieces(&[one(8487)], 64 << 20), 0);
        assert_eq!(pmd_aligned_pieces(&[one(18432)], 64 << 20), 32);
        // Two extents, the second starting mid-piece: that piece is in neither whole.
        let split = [
            Extent {
                logical: 0,
                physical: 2 << 20,
                length: 3 << 20,
            },
            Extent {
                logical: 3 << 20,
                physical: 10 << 20,
                length: 3 << 20,
            },
        ];
        assert_eq!(pmd_aligned_pieces(&split, 6 << 20), 1);
    }
}
