//! foliobench's own view of Debian's kernel packages: its own sources list and package lists
//! under its cache, never the host's apt configuration. It covers the suites where the
//! kernels of the seeds live: bookworm (with updates and security), bookworm-backports,
//! trixie-backports and sid. apt does the fetching and the signature checks; this module
//! only points it at its own directories and reads the package lists it keeps.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::Result;

use crate::exit::env;

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// (archive, suite), in the order `kernels` lists them.
pub const SUITES: &[(&str, &str)] = &[
    ("http://deb.debian.org/debian", "bookworm"),
    ("http://deb.debian.org/debian", "bookworm-updates"),
    ("http://deb.debian.org/debian-security", "bookworm-security"),
    ("http://deb.debian.org/debian", "bookworm-backports"),
    ("http://deb.debian.org/debian", "trixie-backports"),
    ("http://deb.debian.org/debian", "sid"),
];

/// Package lists older than this are refreshed before they are used.
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// One bootable kernel the registry offers: `linux-image-<release>` of the generic amd64
/// flavour, and the packages that make it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelPackage {
    pub release: String,
    pub version: String,
    pub suite: String,
    /// Download size of every part, bytes.
    pub size: u64,
    /// The packages to fetch: the image package alone (up to 6.18), or from 6.19 on the
    /// small `linux-image` meta package with its `linux-binary` (the image), `linux-modules`
    /// and `linux-base` (config, System.map, modules.builtin*).
    pub parts: Vec<String>,
    /// Parts the image depends on that the suite's list does not have (seen for 7.0 and
    /// 7.1 in trixie-backports): such a kernel cannot be fetched whole.
    pub missing: Vec<String>,
}

pub struct Registry {
    dir: PathBuf,
}

impl Registry {
    /// The registry's directory (made, with its sources list, if it is not there).
    pub fn open(dir: &Path) -> Result<Registry> {
        for d in ["lists/partial", "cache/archives/partial"] {
            fs::create_dir_all(dir.join(d))
                .map_err(|e| env(format!("creating {}: {e}", dir.join(d).display())))?;
        }
        let status = dir.join("status");
        if !status.exists() {
            fs::write(&status, "")?;
        }
        let sources = sources_list();
        let path = dir.join("sources.list");
        if fs::read_to_string(&path).ok().as_deref() != Some(sources.as_str()) {
            fs::write(&path, sources)?;
        }
        // apt's sandbox user writes the lists and the downloads.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("a+rwX")
            .arg(dir)
            .status();
        Ok(Registry {
            dir: dir.to_path_buf(),
        })
    }

    /// The options that make apt-get and apt-cache use this registry and nothing of the
    /// host's configuration.
    pub fn apt_options(&self) -> Vec<String> {
        let d = |p: &str| self.dir.join(p).display().to_string();
        let mut v = vec![
            format!("Dir::Etc::sourcelist={}", d("sources.list")),
            "Dir::Etc::sourceparts=/nonexistent".to_string(),
            // Nothing of the host's apt configuration either (proxies aside: env vars).
            "Dir::Etc::parts=/nonexistent".to_string(),
            // The lists stay compressed as fetched (sid's is 65 MB as text).
            "Acquire::GzipIndexes=true".to_string(),
            format!("Dir::State::Lists={}", d("lists")),
            format!("Dir::State::status={}", d("status")),
            format!("Dir::Cache={}", d("cache")),
            "Acquire::Languages=none".to_string(),
            "APT::Architectures=amd64".to_string(),
        ];
        // The cache is under root's home, which apt's sandbox user cannot enter; root
        // fetches into it itself (as apt would, with a warning).
        // SAFETY: geteuid cannot fail and touches no memory.
        if unsafe { libc::geteuid() } == 0 {
            v.push("APT::Sandbox::User=root".to_string());
        }
        // Only the Packages lists are needed: no AppStream, icons or Contents.
        for t in [
            "DEP-11",
            "DEP-11-icons",
            "DEP-11-icons-small",
            "DEP-11-icons-hidpi",
            "CNF",
        ] {
            v.push(format!(
                "Acquire::IndexTargets::deb::{t}::DefaultEnabled=false"
            ));
        }
        v.into_iter().flat_map(|o| ["-o".to_string(), o]).collect()
    }

    fn stamp(&self) -> PathBuf {
        self.dir.join("lists/.foliobench-updated")
    }

    /// When the lists were last refreshed.
    pub fn age(&self) -> Option<Duration> {
        let t = fs::metadata(self.stamp()).ok()?.modified().ok()?;
        SystemTime::now().duration_since(t).ok()
    }

    /// `apt-get update` of the registry when asked, or when its lists are missing or older
    /// than a day. A failed refresh with lists already there is a warning: they are used.
    pub fn refresh(&self, force: bool) -> Result<()> {
        if !force && self.age().is_some_and(|a| a < MAX_AGE) {
            return Ok(());
        }
        eprintln!(
            "foliobench: refreshing Debian's package lists ({}) into {}",
            SUITES
                .iter()
                .map(|(_, s)| *s)
                .collect::<Vec<_>>()
                .join(", "),
            self.dir.display()
        );
        let out = Command::new("apt-get")
            .args(self.apt_options())
            .args(["-q", "update"])
            .output();
        let failed = match out {
            Ok(o) if o.status.success() => {
                let err = String::from_utf8_lossy(&o.stderr);
                // apt exits 0 when a list could not be fetched: its warnings say so.
                err.lines()
                    .find(|l| {
                        l.starts_with("E:")
                            || (l.starts_with("W:")
                                && (l.contains("Failed to fetch") || l.contains("GPG error")))
                    })
                    .map(str::to_string)
            }
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => Some(format!("apt-get: {e} (install Debian's apt)")),
        };
        match failed {
            None => {
                fs::write(self.stamp(), "")?;
                Ok(())
            }
            Some(why) if self.age().is_some() => {
                eprintln!("foliobench: warning: refreshing the package lists failed, using those of before: {why}");
                Ok(())
            }
            Some(why) => Err(env(format!(
                "fetching Debian's package lists failed (network, or a mirror down): {why}"
            ))),
        }
    }

    /// Every bootable kernel in the registry's lists, newest first within each suite.
    pub fn kernels(&self) -> Result<Vec<KernelPackage>> {
        let mut all = Vec::new();
        for entry in fs::read_dir(self.dir.join("lists"))?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(suite) = suite_of_list(&name) else {
                continue;
            };
            all.extend(kernels_in(&cat_list(&entry.path())?, &suite));
        }
        let order = |s: &str| SUITES.iter().position(|(_, x)| *x == s).unwrap_or(99);
        all.sort_by(|a, b| {
            order(&a.suite).cmp(&order(&b.suite)).then_with(|| {
                foliobench_reports::matrix::release_key(&b.release)
                    .cmp(&foliobench_reports::matrix::release_key(&a.release))
            })
        });
        Ok(all)
    }

    /// Downloads `k`'s packages into `into`.
    pub fn download(&self, k: &KernelPackage, into: &Path) -> Result<()> {
        let pinned: Vec<String> = k
            .parts
            .iter()
            .map(|p| format!("{p}={}", k.version))
            .collect();
        let out = Command::new("apt-get")
            .args(self.apt_options())
            .args(["-q", "download"])
            .args(&pinned)
            .current_dir(into)
            .output()
            .map_err(|e| env(format!("apt-get download: {e} (install Debian's apt)")))?;
        if !out.status.success() {
            return Err(env(format!(
                "apt-get download {} failed: {}",
                pinned.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }
}

/// A package list as text, whatever apt compressed it with.
fn cat_list(path: &Path) -> Result<String> {
    let out = Command::new("/usr/lib/apt/apt-helper")
        .arg("cat-file")
        .arg(path)
        .output()
        .map_err(|e| env(format!("apt-helper cat-file: {e} (install Debian's apt)")))?;
    if !out.status.success() {
        return Err(env(format!(
            "apt-helper cat-file {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sources_list() -> String {
    SUITES
        .iter()
        .map(|(archive, suite)| {
            format!("deb [arch=amd64 signed-by={KEYRING}] {archive} {suite} main\n")
        })
        .collect()
}

/// The suite a package list is for, from apt's file name
/// (`deb.debian.org_debian_dists_trixie-backports_main_binary-amd64_Packages`).
fn suite_of_list(file: &str) -> Option<String> {
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    if !(file.ends_with("_Packages") || stem.ends_with("_Packages")) {
        return None;
    }
    let rest = file.split("_dists_").nth(1)?;
    Some(rest.split('_').next()?.to_string())
}

/// A stanza's fields that matter here.
#[derive(Default)]
struct Stanza<'a> {
    package: &'a str,
    version: &'a str,
    size: u64,
    depends: &'a str,
}

fn stanzas(text: &str) -> impl Iterator<Item = Stanza<'_>> {
    text.split("\n\n").map(|block| {
        let mut s = Stanza::default();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                s.package = v.trim();
            } else if let Some(v) = line.strip_prefix("Version: ") {
                s.version = v.trim();
            } else if let Some(v) = line.strip_prefix("Size: ") {
                s.size = v.trim().parse().unwrap_or(0);
            } else if let Some(v) = line.strip_prefix("Depends: ") {
                s.depends = v.trim();
            }
        }
        s
    })
}

/// The generic amd64 flavour's release of an image package name (not cloud, rt, dbg or
/// unsigned, nor a meta package such as linux-image-6.12-amd64).
fn generic_release(package: &str) -> Option<&str> {
    let r = package.strip_prefix("linux-image-")?;
    let generic = r.starts_with(|c: char| c.is_ascii_digit())
        && r.matches('.').count() >= 2
        && r.ends_with("-amd64")
        && !r.ends_with("-cloud-amd64")
        && !r.ends_with("-rt-amd64");
    generic.then_some(r)
}

/// The kernels of one suite's package list: each image package, with the split parts its
/// Depends names (linux-binary, linux-modules, linux-base of the same release).
pub fn kernels_in(text: &str, suite: &str) -> Vec<KernelPackage> {
    let mut sizes: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut images = Vec::new();
    for s in stanzas(text) {
        if !s.package.starts_with("linux-") {
            continue;
        }
        sizes.insert((s.package, s.version), s.size);
        if let Some(r) = generic_release(s.package) {
            images.push((r, s.version, s.size, s.depends));
        }
    }
    images
        .into_iter()
        .map(|(release, version, size, depends)| {
            let mut parts = vec![format!("linux-image-{release}")];
            let mut missing = Vec::new();
            let names = |part: &str| {
                depends
                    .split(',')
                    .any(|d| d.split_whitespace().next() == Some(part))
            };
            // A self-contained image (6.18: vmlinuz, config, modules and modules.builtin in
            // the one package) names linux-base only for its docs: not needed to boot.
            let split = names(&format!("linux-binary-{release}"));
            for kind in ["linux-binary-", "linux-modules-", "linux-base-"] {
                let part = format!("{kind}{release}");
                if names(&part) && sizes.contains_key(&(part.as_str(), version)) {
                    parts.push(part);
                } else if names(&part) && (split || kind != "linux-base-") {
                    missing.push(part);
                }
            }
            let size = size
                + parts[1..]
                    .iter()
                    .map(|p| sizes.get(&(p.as_str(), version)).copied().unwrap_or(0))
                    .sum::<u64>();
            KernelPackage {
                release: release.to_string(),
                version: version.to_string(),
                suite: suite.to_string(),
                size,
                parts,
                missing,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stanzas as trixie-backports' list has them (trimmed): 6.16 in one package, 7.3 split.
    const TRIXIE_BACKPORTS: &str = "\
Package: linux-image-6.16.12+deb13-amd64
Source: linux-signed-amd64 (6.16.12+1~bpo13+1)
Version: 6.16.12-1~bpo13+1
Depends: kmod, initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool
Size: 169667600

Package: linux-image-6.18.12+deb13-amd64
Version: 6.18.12-1~bpo13+1
Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, kmod, linux-base-6.18.12+deb13-amd64 (= 6.18.12-1~bpo13+1)
Size: 167374292

Package: linux-image-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Depends: dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, linux-base-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)
Size: 1900

Package: linux-binary-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Size: 14138336

Package: linux-modules-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Size: 106862204

Package: linux-base-7.3.4+deb13-amd64
Version: 7.3.4-1~bpo13+1
Size: 1077476

Package: linux-image-7.3.4+deb13-cloud-amd64
Version: 7.3.4-1~bpo13+1
Size: 1900

Package: linux-image-7.3-amd64
Version: 7.3.4-1~bpo13+1
Depends: linux-image-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)
Size: 1500

Package: linux-image-7.3.4+deb13-amd64-dbg
Version: 7.3.4-1~bpo13+1
Size: 900000000
";

    #[test]
    fn both_packagings_are_read_with_their_parts_and_sizes() {
        let mut k = kernels_in(TRIXIE_BACKPORTS, "trixie-backports");
        // 6.18 in one package that names a linux-base the list lacks: only its docs are
        // there (vmlinuz, config, modules and modules.builtin are in the image), so it can
        // be fetched.
        let k618 = k.remove(1);
        assert_eq!(k618.release, "6.18.12+deb13-amd64");
        assert_eq!(k618.parts, ["linux-image-6.18.12+deb13-amd64"]);
        assert!(k618.missing.is_empty(), "{k618:?}");
        assert_eq!(k.len(), 2, "{k:?}");
        assert_eq!(k[0].release, "6.16.12+deb13-amd64");
        assert_eq!(k[0].parts, ["linux-image-6.16.12+deb13-amd64"]);
        assert_eq!(k[0].size, 169667600);
        assert_eq!(k[1].release, "7.3.4+deb13-amd64");
        assert_eq!(
            k[1].parts,
            [
                "linux-image-7.3.4+deb13-amd64",
                "linux-binary-7.3.4+deb13-amd64",
                "linux-modules-7.3.4+deb13-amd64",
                "linux-base-7.3.4+deb13-amd64"
            ]
        );
        assert_eq!(k[1].size, 1900 + 14138336 + 106862204 + 1077476);
        assert_eq!(k[1].version, "7.3.4-1~bpo13+1");
        assert!(k[0].missing.is_empty() && k[1].missing.is_empty());
        // 7.1.13 in trixie-backports: the image names a modules and a base package the
        // list does not have.
        let cut = TRIXIE_BACKPORTS.replace("Package: linux-modules-7.3.4", "Package: gone-7.3.4");
        let k = kernels_in(&cut, "trixie-backports");
        assert_eq!(k[2].missing, ["linux-modules-7.3.4+deb13-amd64"]);
        assert_eq!(k[2].parts.len(), 3);
        // A split image without its base cannot boot: the base is its config and builtins.
        let cut = TRIXIE_BACKPORTS.replace("Package: linux-base-7.3.4", "Package: gone-7.3.4");
        let k = kernels_in(&cut, "trixie-backports");
        assert_eq!(k[2].missing, ["linux-base-7.3.4+deb13-amd64"]);
    }

    #[test]
    fn the_suite_comes_from_the_list_file_name() {
        assert_eq!(
            suite_of_list(
                "deb.debian.org_debian_dists_trixie-backports_main_binary-amd64_Packages"
            )
            .as_deref(),
            Some("trixie-backports")
        );
        assert_eq!(
            suite_of_list(
                "deb.debian.org_debian-security_dists_bookworm-security_main_binary-amd64_Packages"
            )
            .as_deref(),
            Some("bookworm-security")
        );
        assert_eq!(
            suite_of_list("deb.debian.org_debian_dists_sid_InRelease"),
            None
        );
    }

    #[test]
    fn the_sources_list_names_every_suite_with_debians_keyring() {
        let s = sources_list();
        assert_eq!(s.lines().count(), SUITES.len());
        assert!(s.contains("debian-security bookworm-security main"), "{s}");
        assert!(s.lines().all(|l| l.contains(KEYRING)), "{s}");
    }
}
