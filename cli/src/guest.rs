//! The guest's command, checked on the host before a boot: foliobench's own command line
//! (given by `main`, which owns it) parses each `;`-separated command, so that a typo costs
//! no boot, and its output options say which directories the guest must be able to write.

use std::path::Path;

use anyhow::Result;

use crate::exit::usage;
use crate::vm::{guest_commands, Guest};

/// Options of foliobench's commands whose value is a file or directory the command writes.
const WRITTEN_PATHS: &[&str] = &["out", "html", "markdown", "out_dir"];

/// Every command of `args` (the arguments after `vm --`), parsed with `cli`: the
/// directories they write, or the answer to the first `--help`/`--version`.
pub fn check(cli: &clap::Command, args: &[String]) -> Result<Guest> {
    let cwd = std::env::current_dir()?;
    let mut writes = Vec::new();
    for cmd in guest_commands(args) {
        match one(cli, cmd, &cwd)? {
            Guest::Writes(w) => writes.extend(w),
            answered => return Ok(answered),
        }
    }
    Ok(Guest::Writes(writes))
}

/// Parses the guest's arguments here, so that a typo costs no boot, and finds the
/// directories its output options write to: the guest sees the host read-only outside the
/// shared directories, and a write elsewhere would vanish with the guest's overlay.
fn one(cli: &clap::Command, args: &[String], cwd: &Path) -> Result<Guest> {
    let argv = std::iter::once("foliobench".to_string()).chain(args.iter().cloned());
    let mut m = match cli.clone().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                    Ok(Guest::Answered(e.render().to_string()))
                }
                _ => Err(usage(format!(
                    "the command for the guest is not valid (nothing was booted):\n{}",
                    e.render()
                ))),
            }
        }
    };
    // The innermost subcommand holds the options.
    while let Some((_, sub)) = m.remove_subcommand() {
        m = sub;
    }
    let mut dirs = Vec::new();
    for id in WRITTEN_PATHS {
        let Ok(Some(values)) = m.try_get_raw(id) else {
            continue;
        };
        for v in values {
            let path = cwd.join(v);
            let dir = if *id == "out_dir" {
                path.clone()
            } else {
                path.parent()
                    .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf)
            };
            let dir = dir.canonicalize().map_err(|e| {
                usage(format!(
                    "--{} {}: the directory {} cannot be used on the host ({e}); create it first",
                    id.replace('_', "-"),
                    Path::new(v).display(),
                    dir.display()
                ))
            })?;
            if dir == Path::new("/") {
                return Err(usage(format!(
                    "--{} {}: the guest may not write the host's / ; write under a directory",
                    id.replace('_', "-"),
                    Path::new(v).display()
                )));
            }
            dirs.push(dir);
        }
    }
    Ok(Guest::Writes(dirs))
}
