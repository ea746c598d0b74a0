//! Which kernel the test VM boots: `debian:<version>` (fetched from Debian's registry and
//! cached), a bzImage, or a kernel build tree.

use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::debian_registry::{KernelPackage, Registry, SUITES};
use crate::exit::{env, usage};

const FORMS: &str =
    "debian:6.12 (the default), debian:6.1, debian:<version prefix> (e.g. debian:6.12.117), \
                     a path to a bzImage, or a kernel build tree";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// A Debian `linux-image-<release>-amd64` package; the newest whose release starts
    /// with this version.
    Debian(String),
    Image(PathBuf),
    Tree(PathBuf),
}

impl KernelSpec {
    pub fn parse(s: &str) -> Result<KernelSpec> {
        if let Some(v) = s.strip_prefix("debian:") {
            let valid = !v.is_empty()
                && v.split('.').count() >= 2
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
            if !valid {
                return Err(usage(format!("unknown kernel spec '{s}': a Debian version looks like 6.12 or 6.1; expected {FORMS}")));
            }
            return Ok(KernelSpec::Debian(v.to_string()));
        }
        let p = Path::new(s);
        if p.is_dir() {
            let image = p.join("arch/x86/boot/bzImage");
            if !image.is_file() {
                return Err(usage(format!(
                    "kernel build tree '{s}' has no arch/x86/boot/bzImage: build it first (make bzImage)"
                )));
            }
            return Ok(KernelSpec::Tree(p.to_path_buf()));
        }
        if p.is_file() {
            if !is_bzimage(p) {
                return Err(usage(format!(
                    "'{s}' is not a bzImage (no 'HdrS' boot header); expected {FORMS}"
                )));
            }
            return Ok(KernelSpec::Image(p.to_path_buf()));
        }
        Err(usage(format!(
            "unknown kernel spec '{s}': no such file or directory; expected {FORMS}"
        )))
    }
}

/// The x86 boot protocol's magic "HdrS" at offset 0x202.
fn is_bzimage(p: &Path) -> bool {
    bzimage_header(p).is_some_and(|h| &h[0x202..0x206] == b"HdrS")
}

/// The first 64 KiB: the setup header and the version string it points to.
fn bzimage_header(p: &Path) -> Option<Vec<u8>> {
    let mut buf = Vec::with_capacity(0x10000);
    let n = fs::File::open(p)
        .ok()?
        .take(0x10000)
        .read_to_end(&mut buf)
        .ok()?;
    (n >= 0x210).then_some(buf)
}

/// The release string a bzImage carries (boot protocol: kernel_version at 0x20e, an
/// offset from 0x200 to a NUL-terminated "6.12.117 (user@host) #1 ...").
pub fn bzimage_release(p: &Path) -> Option<String> {
    let h = bzimage_header(p)?;
    let off = u16::from_le_bytes([h[0x20e], h[0x20f]]) as usize + 0x200;
    let s = h.get(off..)?;
    let end = s.iter().position(|&b| b == 0)?;
    let text = std::str::from_utf8(&s[..end]).ok()?;
    text.split_whitespace().next().map(str::to_string)
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct BootKernel {
    /// What `vng -r` gets: an image, or a build tree.
    pub run: PathBuf,
    pub release: Option<String>,
    /// The kernel's build config, passed to the guest for `doctor`.
    pub config: Option<PathBuf>,
    pub label: String,
    /// The Debian package booted, `name=version`, when it is one.
    pub package: Option<String>,
}

pub fn prepare(spec: &KernelSpec) -> Result<BootKernel> {
    match spec {
        KernelSpec::Image(p) => Ok(BootKernel {
            run: p.canonicalize()?,
            release: bzimage_release(p),
            config: None,
            label: p.display().to_string(),
            package: None,
        }),
        KernelSpec::Tree(t) => {
            let t = t.canonicalize()?;
            let config = t.join(".config");
            Ok(BootKernel {
                release: bzimage_release(&t.join("arch/x86/boot/bzImage")),
                config: config.is_file().then_some(config),
                label: t.display().to_string(),
                package: None,
                run: t,
            })
        }
        KernelSpec::Debian(v) => debian(v),
    }
}

/// `linux-image-<release>` names of the generic amd64 flavour (not cloud, rt, dbg).
pub fn debian_releases(pkgnames: &str, version: &str) -> Vec<String> {
    let mut v: Vec<String> = pkgnames
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| n.strip_prefix("linux-image-"))
        .filter(|r| {
            r.ends_with("-amd64") && !r.ends_with("-cloud-amd64") && !r.ends_with("-rt-amd64")
        })
        .filter(|r| {
            r.strip_prefix(version).is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with('.')
                    || rest.starts_with('-')
                    || rest.starts_with('+')
            })
        })
        .map(str::to_string)
        .collect();
    v.sort_by_key(|r| version_key(r));
    v.dedup();
    v
}

/// Natural order: numbers compare as numbers (6.12.117 > 6.12.99, 6.1.0-56 > 6.1.0-9).
pub fn version_key(s: &str) -> Vec<(u64, String)> {
    foliobench_reports::matrix::release_key(s)
}

/// ~/.cache/foliobench/kernels, or /var/cache/foliobench/kernels where there is no home
/// (CI environments without $HOME).
pub fn cache_dir() -> Result<PathBuf> {
    let base = dirs::cache_dir().unwrap_or_else(|| PathBuf::from("/var/cache"));
    Ok(base.join("foliobench").join("kernels"))
}

fn run(cmd: &mut Command, what: &str, pkg: &str) -> Result<std::process::Output> {
    let out = cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            env(format!(
                "{what}: command not found (install Debian's `{pkg}`)"
            ))
        } else {
            env(format!("{what}: {e}"))
        }
    })?;
    if !out.status.success() {
        return Err(env(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

/// foliobench's own registry of Debian's kernel packages, beside the kernel cache.
pub fn registry() -> Result<Registry> {
    let kernels = cache_dir()?;
    let dir = kernels
        .parent()
        .map_or_else(|| kernels.join("apt"), |p| p.join("apt"));
    Registry::open(&dir)
}

/// The newest kernel the registry offers whose release starts with `version`.
pub fn offered(kernels: &[KernelPackage], version: &str) -> Option<KernelPackage> {
    let names: String = kernels
        .iter()
        .filter(|k| k.missing.is_empty())
        .map(|k| format!("linux-image-{}\n", k.release))
        .collect();
    let newest = debian_releases(&names, version).pop()?;
    kernels.iter().find(|k| k.release == newest).cloned()
}

fn debian(version: &str) -> Result<BootKernel> {
    let cache = cache_dir()?;
    // The newest package the registry offers; a cached copy of it is reused. Offline, or
    // with no lists, the newest cached one.
    let reg = registry()?;
    if let Err(e) = reg.refresh(false) {
        eprintln!("foliobench: warning: {e:#}");
    }
    let package = offered(&reg.kernels().unwrap_or_default(), version);
    let release = match &package {
        Some(k) => k.release.clone(),
        None => {
            let cached = cached_releases(&cache, version);
            match cached.last() {
                Some(r) => {
                    eprintln!("foliobench: Debian's registry offers no linux-image-{version}*; using cached {r}");
                    r.clone()
                }
                None => {
                    return Err(usage(format!(
                        "no Debian kernel package matches debian:{version} (linux-image-{version}*-amd64 in {}); \
                         `foliobench kernels` lists what can be booted",
                        SUITES.iter().map(|(_, s)| *s).collect::<Vec<_>>().join(", ")
                    )))
                }
            }
        }
    };
    // One process at a time fetches and links a release; a complete cache directory is
    // never replaced, so another VM may boot from it meanwhile.
    fs::create_dir_all(&cache).map_err(|e| env(format!("creating {}: {e}", cache.display())))?;
    let _lock = lock(&cache.join(format!(".lock-{release}")))?;
    let root = cache.join(&release);
    if root.join(".complete").exists() {
        eprintln!(
            "foliobench: using cached kernel {release} ({})",
            root.display()
        );
    } else {
        let k = package.expect("a release not cached was offered");
        fetch_debian(&cache, &reg, &k)?;
    }
    link_modules(&root, &release)?;
    let image = root.join("boot").join(format!("vmlinuz-{release}"));
    let config = root.join("boot").join(format!("config-{release}"));
    // Kept by fetch_debian; a cache from before versions were recorded has the name only.
    let package = fs::read_to_string(root.join(".complete"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    Ok(BootKernel {
        run: image,
        release: Some(release.clone()),
        config: config.is_file().then_some(config),
        label: format!("debian:{version}"),
        package,
    })
}

/// An exclusive lock on `path` (created), held until the returned file is dropped.
fn lock(path: &Path) -> Result<nix::fcntl::Flock<fs::File>> {
    use nix::fcntl::{Flock, FlockArg};
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| env(format!("{}: {e}", path.display())))?;
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(l),
        Err((f, _)) => {
            eprintln!(
                "foliobench: another foliobench is preparing this kernel; waiting ({})",
                path.display()
            );
            Flock::lock(f, FlockArg::LockExclusive)
                .map_err(|(_, e)| env(format!("locking {}: {e}", path.display())))
        }
    }
}

fn cached_releases(cache: &Path, version: &str) -> Vec<String> {
    let names: String = fs::read_dir(cache)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join(".complete").exists())
                .map(|e| format!("linux-image-{}\n", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    debian_releases(&names, version)
}

fn fetch_debian(cache: &Path, reg: &Registry, k: &KernelPackage) -> Result<()> {
    let release = &k.release;
    let pkg = format!("linux-image-{release}");
    eprintln!(
        "foliobench: fetching {} ({} MiB, {}) from Debian's registry into {}",
        k.parts.join(" "),
        k.size >> 20,
        k.suite,
        cache.display()
    );
    fs::create_dir_all(cache)?;
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache)?;
    // apt's sandbox user must be able to write the download directory.
    let _ = Command::new("chmod").arg("0777").arg(work.path()).status();
    reg.download(k, work.path())?;
    let debs: Vec<PathBuf> = fs::read_dir(work.path())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    if debs.len() != k.parts.len() {
        return Err(env(format!(
            "apt-get download left {} .deb files for the {} packages of {pkg}",
            debs.len(),
            k.parts.len()
        )));
    }
    let tree = work.path().join("tree");
    for deb in &debs {
        run(
            Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tree),
            "dpkg-deb -x",
            "dpkg",
        )?;
    }
    normalise_layout(&tree, release)?;
    // depmod as the package's post-install would (dpkg -i fails on its hooks here).
    run(
        Command::new("depmod").arg("-b").arg(&tree).arg(release),
        "depmod",
        "kmod",
    )?;
    fs::write(tree.join(".complete"), format!("{pkg}={}\n", k.version))?;
    let dest = cache.join(release);
    // Only an incomplete leftover of a killed fetch can be here (the caller holds the
    // lock and found no .complete): nobody boots from it.
    if dest.exists() {
        fs::remove_dir_all(&dest)?;
    }
    fs::rename(&tree, &dest)?;
    eprintln!("foliobench: fetched {pkg}={}", k.version);
    Ok(())
}

/// One layout for both packagings: the old one ships /boot/vmlinuz-<release>,
/// /boot/config-<release> and /lib/modules/<release>; the new one (and merged-/usr packages)
/// /usr/lib/modules/<release>/{vmlinuz,config,System.map} and the modules beside them.
/// Relative links make the old paths point at the new files.
fn normalise_layout(tree: &Path, release: &str) -> Result<()> {
    let usr = tree.join("usr/lib/modules").join(release);
    let boot = tree.join("boot");
    for (file, name) in [
        ("vmlinuz", "vmlinuz"),
        ("config", "config"),
        ("System.map", "System.map"),
    ] {
        let old = boot.join(format!("{name}-{release}"));
        if !old.exists() && usr.join(file).exists() {
            fs::create_dir_all(&boot)?;
            symlink(format!("../usr/lib/modules/{release}/{file}"), &old)?;
        }
    }
    let lib = tree.join("lib/modules").join(release);
    if !lib.exists() && usr.is_dir() {
        fs::create_dir_all(tree.join("lib/modules"))?;
        symlink(format!("../../usr/lib/modules/{release}"), &lib)?;
    }
    if !boot.join(format!("vmlinuz-{release}")).exists() {
        return Err(env(format!(
            "linux-image-{release}: no kernel image in its packages (neither boot/vmlinuz-{release} nor usr/lib/modules/{release}/vmlinuz)"
        )));
    }
    Ok(())
}

/// vng loads modules from /lib/modules/<release> on the host; point it at the cache,
/// unless that directory exists for real (a kernel installed on the host).
fn link_modules(root: &Path, release: &str) -> Result<()> {
    let target = root.join("lib/modules").join(release);
    let link = Path::new("/lib/modules").join(release);
    match fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => {
            if fs::read_link(&link)? == target {
                return Ok(());
            }
            fs::remove_file(&link)?;
        }
        Ok(_) => return Ok(()),
        Err(_) => {}
    }
    fs::create_dir_all("/lib/modules")
        .and_then(|_| symlink(&target, &link))
        .map_err(|e| {
            env(format!(
                "linking {} -> {}: {e} (vng needs the modules there; run as root)",
                link.display(),
                target.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{code_of, Code};

    const APT: &str = "\
linux-image-6.12.99+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)
linux-image-6.12.117+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)
linux-image-6.12.117+deb12-cloud-amd64 - Linux 6.12 for x86-64 cloud (signed)
linux-image-6.12.117+deb12-rt-amd64 - Linux 6.12 for 64-bit PCs (signed), PREEMPT_RT
linux-image-6.12.111+deb12-amd64 - Linux 6.12 for 64-bit PCs (signed)
linux-image-6.1.0-9-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-56-amd64 - Linux 6.1 for 64-bit PCs (signed)
linux-image-6.1.0-56-amd64-dbg - Debug symbols for linux-image-6.1.0-56-amd64
";

    #[test]
    fn newest_generic_flavour_wins() {
        assert_eq!(
            debian_releases(APT, "6.12").last().unwrap(),
            "6.12.117+deb12-amd64"
        );
        assert_eq!(
            debian_releases(APT, "6.1").last().unwrap(),
            "6.1.0-56-amd64"
        );
        assert_eq!(
            debian_releases(APT, "6.12.111").last().unwrap(),
            "6.12.111+deb12-amd64"
        );
        assert!(debian_releases(APT, "6.13").is_empty());
        // 6.1 must not match 6.12.
        assert!(debian_releases(APT, "6.1")
            .iter()
            .all(|r| r.starts_with("6.1.0")));
    }

    #[test]
    fn spec_forms() {
        assert_eq!(
            KernelSpec::parse("debian:6.12").unwrap(),
            KernelSpec::Debian("6.12".into())
        );
        assert_eq!(
            KernelSpec::parse("debian:6.1").unwrap(),
            KernelSpec::Debian("6.1".into())
        );
        for bad in [
            "debian:",
            "debian:latest",
            "debian:6",
            "ubuntu:6.12",
            "/no/such/kernel",
            "debian:6.12;rm",
        ] {
            let e = KernelSpec::parse(bad).unwrap_err();
            assert_eq!(code_of(&e), Code::Usage, "{bad}");
            assert!(
                e.to_string().contains("debian:6.12"),
                "error lists the valid forms: {e}"
            );
        }
    }

    #[test]
    fn a_file_that_is_not_a_bzimage_is_refused() {
        let f = tempfile::NamedTempFile::new().unwrap();
        fs::write(f.path(), vec![0u8; 0x1000]).unwrap();
        let e = KernelSpec::parse(f.path().to_str().unwrap()).unwrap_err();
        assert_eq!(code_of(&e), Code::Usage);
        assert!(e.to_string().contains("not a bzImage"));
    }

    #[test]
    fn a_tree_without_bzimage_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = KernelSpec::parse(d.path().to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("arch/x86/boot/bzImage"));
    }

    /// The test kernel in ../shared/kernels, when it is there.
    #[test]
    fn shared_guptest_kernel_is_a_bzimage_with_a_release() {
        let p =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/kernels/bzImage-6.12-guptest");
        if !p.exists() {
            eprintln!("skipped: {} not present", p.display());
            return;
        }
        assert!(matches!(
            KernelSpec::parse(p.to_str().unwrap()).unwrap(),
            KernelSpec::Image(_)
        ));
        let r = bzimage_release(&p).expect("release string");
        assert!(r.starts_with("6.12."), "{r}");
    }
}
