//! `foliobench kernels`: what the test VM can boot as `debian:<version>` — the kernels in
//! the cache, then the registry's per suite, newest first, with their download sizes.

use std::path::Path;

use anyhow::Result;

use crate::exit::Code;
use crate::vm::boot_kernel::{cache_dir, registry};

#[derive(Debug, clap::Args)]
pub struct KernelsArgs {
    /// Only releases starting with this version (e.g. 7.3, 6.12.117).
    pub version: Option<String>,
    /// Refresh the package lists now (else when older than a day).
    #[arg(long)]
    pub refresh: bool,
}

/// Bytes under `p`, not following links.
fn disk_usage(p: &Path) -> u64 {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    std::fs::read_dir(p)
        .map(|d| d.flatten().map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}

fn wanted(release: &str, version: Option<&str>) -> bool {
    version.is_none_or(|v| {
        !crate::vm::boot_kernel::debian_releases(&format!("linux-image-{release}"), v).is_empty()
    })
}

pub fn run(a: KernelsArgs) -> Result<Code> {
    let version = a.version.as_deref();
    let cache = cache_dir()?;
    println!("cached ({}):", cache.display());
    let mut cached: Vec<(String, String, u64)> = std::fs::read_dir(&cache)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join(".complete").exists())
                .map(|e| {
                    let package = std::fs::read_to_string(e.path().join(".complete"))
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        package,
                        disk_usage(&e.path()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    cached.retain(|(r, _, _)| wanted(r, version));
    cached.sort_by_key(|(r, _, _)| std::cmp::Reverse(crate::vm::boot_kernel::version_key(r)));
    if cached.is_empty() {
        println!("  none");
    }
    for (release, package, bytes) in &cached {
        println!(
            "  debian:{release:<28} {package}  {} MiB on disk",
            bytes >> 20
        );
    }
    let reg = registry()?;
    reg.refresh(a.refresh)?;
    let kernels = reg.kernels()?;
    let mut suite = "";
    for k in kernels.iter().filter(|k| wanted(&k.release, version)) {
        if k.suite != suite {
            suite = &k.suite;
            println!("\n{suite}:");
        }
        println!(
            "  debian:{:<28} {:<22} {:>4} MiB{}",
            k.release,
            k.version,
            k.size >> 20,
            if !k.missing.is_empty() {
                format!(
                    "  cannot be fetched: {} not in the registry",
                    k.missing.join(", ")
                )
            } else if k.parts.len() > 1 {
                "  (image, modules and base packages)".to_string()
            } else {
                String::new()
            }
        );
    }
    if let Some(age) = reg.age() {
        println!(
            "\npackage lists {} h old; `foliobench kernels --refresh` fetches them again",
            age.as_secs() / 3600
        );
    }
    Ok(Code::Ok)
}
