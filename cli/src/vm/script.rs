//! What runs in the guest: the shell script that loads the pmem modules and runs
//! foliobench's commands, the environment it is told, and the host directories it may write.

use super::*;

/// What the guest is told about the VM it runs in (recorded in its results' context).
pub struct GuestEnv<'a> {
    pub config: Option<&'a Path>,
    pub accel: Accel,
    /// The clock of the guest's time.
    pub clock: ClockKind,
    /// The Debian package and version booted, if it is one.
    pub package: Option<&'a str>,
}

/// The shell line run inside the guest.
pub(super) fn guest_script(
    exe: &Path,
    args: &[String],
    cwd: &Path,
    state: &Path,
    g: &GuestEnv,
) -> String {
    let q = |s: &str| {
        shlex::try_quote(s)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| "''".into())
    };
    let mut envs = vec![
        "FOLIOBENCH_IN_VM=1".to_string(),
        format!(
            "{}={}",
            foliobench_workloads::system::ACCEL_ENV,
            g.accel.name()
        ),
        format!(
            "{}={}",
            foliobench_workloads::system::CLOCK_ENV,
            g.clock.name()
        ),
    ];
    if g.clock == ClockKind::Instructions {
        envs.push(format!(
            "{}={}",
            foliobench_workloads::system::CLOCK_QEMU_ENV,
            q(ICOUNT_QEMU_OPTIONS)
        ));
    }
    if let Some(c) = g.config {
        envs.push(format!(
            "{}={}",
            foliobench_workloads::kconfig::CONFIG_ENV,
            q(&c.to_string_lossy())
        ));
    }
    if let Some(p) = g.package {
        envs.push(format!(
            "{}={}",
            foliobench_workloads::system::KERNEL_PACKAGE_ENV,
            q(p)
        ));
    }
    // Several commands run in turn in the one boot; the first that fails ends the line,
    // and its status is the guest's.
    let cmds: Vec<String> = guest_commands(args)
        .into_iter()
        .map(|c| {
            std::iter::once(envs.join(" "))
                .chain(std::iter::once(q(&exe.to_string_lossy())))
                .chain(c.iter().map(|a| q(a)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!(
        "modprobe -qa {mods} 2>/dev/null; echo {MARKER}; cd {cwd} && {cmds}; echo $? > {exit}",
        mods = GUEST_MODULES.join(" "),
        cwd = q(&cwd.to_string_lossy()),
        cmds = cmds.join(" && "),
        exit = q(&state.join("exit").to_string_lossy()),
    )
}

/// The guest's commands: the arguments after `--`, split at each `;` argument (`vm -- doctor
/// --out d.json ';' run --suite memmap --out r.json` boots once for both).
pub fn guest_commands(args: &[String]) -> Vec<&[String]> {
    args.split(|a| a == ";").filter(|c| !c.is_empty()).collect()
}

/// What the guest command is, as the guest will parse it: checked by the caller (`main`,
/// which owns foliobench's command line, or `ab`/`matrix`, which wrote the command).
pub enum Guest {
    /// Runs in the guest; these directories must be writable there.
    Writes(Vec<PathBuf>),
    /// `--help`, `--version`: the same binary answers here, without a boot.
    Answered(String),
}

/// The directories the guest may write: the state directory, the current directory, the
/// user's `--share`s and those the guest command writes to, without one inside another.
pub(super) fn shared_dirs(
    state: &Path,
    cwd: &Path,
    share: &[PathBuf],
    writes: &[PathBuf],
) -> Result<Vec<PathBuf>> {
    let mut dirs = vec![state.to_path_buf()];
    if cwd != Path::new("/") {
        dirs.push(cwd.to_path_buf());
    }
    for d in share {
        dirs.push(
            d.canonicalize()
                .map_err(|e| usage(format!("--share {}: {e}", d.display())))?,
        );
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for d in dirs.into_iter().chain(writes.iter().cloned()) {
        if !out.iter().any(|o| d.starts_with(o)) {
            out.retain(|o| !o.starts_with(&d));
            out.push(d);
        }
    }
    Ok(out)
}

/// How the guest command reaches the guest.
#[derive(Clone, Copy)]
pub(super) enum Pass {
    /// On the vng command line (for --dry-run, to be read).
    Inline,
    /// In a file in the shared state directory, run with `sh FILE`.
    File,
}
