//! Writing results files.

use std::path::Path;

use anyhow::Result;

/// Writes to a temporary file beside `path` and renames it: never a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| crate::exit::usage(format!("cannot write {}: {e}", path.display())))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    // NamedTempFile is created 0600; a results file is an ordinary file.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    tmp.persist(path)
        .map_err(|e| crate::exit::usage(format!("cannot write {}: {}", path.display(), e.error)))?;
    Ok(())
}

/// Keeps a small verdict of this host boot (under /run): the directory made, the file
/// written whole. One that cannot be written costs a probe next time, no more: said, not
/// an error.
pub fn keep_verdict(path: &Path, value: &impl serde::Serialize, what: &str) {
    let write = || -> Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        write_atomic(path, &serde_json::to_vec_pretty(value)?)
    };
    if let Err(e) = write() {
        eprintln!(
            "foliobench: could not keep {what} in {}: {e:#}",
            path.display()
        );
    }
}

/// How a command's report is given back: table or JSON on stdout, and a JSON file.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file (written whole or not at all).
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
}

impl OutputArgs {
    /// Writes `--out`, then prints JSON or `text()`.
    pub fn emit<T: serde::Serialize>(
        &self,
        report: &T,
        text: impl FnOnce() -> String,
    ) -> Result<()> {
        if let Some(p) = &self.out {
            write_atomic(p, &serde_json::to_vec_pretty(report)?)?;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            print!("{}", text());
        }
        Ok(())
    }
}
