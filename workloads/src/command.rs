//! Runs a command whose pid is known before it executes anything, so that probes can be
//! filtered to it from its first instruction.
//!
//! std's `Command::spawn` waits until the child has exec'd, so a child held back in
//! `pre_exec` would deadlock it; this is the few lines of fork/exec that std cannot do.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("no command given")]
    Empty,
    #[error("cannot run '{0}': not found in PATH")]
    NotFound(String),
    #[error("cannot run '{0}': {1}")]
    Exec(String, std::io::Error),
    #[error("{0}: {1}")]
    Os(&'static str, std::io::Error),
}

/// A forked child waiting, before exec, for `release`.
pub struct GatedChild {
    pub pid: u32,
    gate: libc::c_int,
    exec_err: libc::c_int,
    name: String,
}

/// Where a command is: a path as given, or the first match on PATH.
/// Runs a system tool to completion: its stdout, or an error naming the command line and
/// what it printed on stderr.
pub fn run_tool(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("running {cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    if cmd.contains('/') {
        return Path::new(cmd).exists().then(|| PathBuf::from(cmd));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

fn pipe(flags: libc::c_int) -> Result<[libc::c_int; 2], CommandError> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), flags) } != 0 {
        return Err(CommandError::Os("pipe2", std::io::Error::last_os_error()));
    }
    Ok(fds)
}

impl GatedChild {
    pub fn spawn(argv: &[String]) -> Result<GatedChild, CommandError> {
        let name = argv.first().ok_or(CommandError::Empty)?.clone();
        let path = which(&name).ok_or_else(|| CommandError::NotFound(name.clone()))?;
        // Everything the child needs is allocated before fork: after it, only
        // async-signal-safe calls.
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| CommandError::NotFound(name.clone()))?;
        let cargs: Vec<CString> = argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).map_err(|_| CommandError::NotFound(name.clone())))
            .collect::<Result<_, _>>()?;
        let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        let gate = pipe(libc::O_CLOEXEC)?;
        let err = pipe(libc::O_CLOEXEC)?;
        // SAFETY: fork in a process whose other threads (if any) hold no locks the child
        // needs: the child only calls close, read, execv, write and _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(CommandError::Os("fork", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: async-signal-safe calls on fds we own, pointers prepared above.
            unsafe {
                libc::close(gate[1]);
                libc::close(err[0]);
                let mut b = 0u8;
                while libc::read(gate[0], (&mut b as *mut u8).cast(), 1) < 0
                    && *libc::__errno_location() == libc::EINTR
                {}
                libc::execv(cpath.as_ptr(), ptrs.as_ptr());
                let e = *libc::__errno_location();
                libc::write(err[1], (&e as *const i32).cast(), 4);
                libc::_exit(127);
            }
        }
        // SAFETY: closing the child's ends in the parent.
        unsafe {
            libc::close(gate[0]);
            libc::close(err[1]);
        }
        Ok(GatedChild {
            pid: pid as u32,
            gate: gate[1],
            exec_err: err[0],
            name,
        })
    }

    /// Lets the child exec; returns the exec error, if exec failed.
    pub fn release(&mut self) -> Result<(), CommandError> {
        let mut e: i32 = 0;
        // SAFETY: our own pipe fds; closing the gate wakes the child, and the error pipe
        // closes on successful exec (CLOEXEC) or carries errno.
        let n = unsafe {
            libc::write(self.gate, b"g".as_ptr().cast(), 1);
            libc::close(self.gate);
            self.gate = -1;
            libc::read(self.exec_err, (&mut e as *mut i32).cast(), 4)
        };
        if n == 4 {
            return Err(CommandError::Exec(
                self.name.clone(),
                std::io::Error::from_raw_os_error(e),
            ));
        }
        Ok(())
    }

    /// Waits for the child; its exit code, or 128 + signal as shells report it.
    pub fn wait(&mut self) -> Result<i32, CommandError> {
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(self.pid as i32, &mut status, 0) };
            if r >= 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(CommandError::Os("waitpid", e));
            }
        }
        Ok(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        })
    }
}

impl Drop for GatedChild {
    fn drop(&mut self) {
        // SAFETY: closing fds we own; a child never released sees EOF and execs nothing
        // useful, so kill it instead.
        unsafe {
            if self.gate >= 0 {
                libc::kill(self.pid as i32, libc::SIGKILL);
                libc::close(self.gate);
                let mut status = 0;
                libc::waitpid(self.pid as i32, &mut status, 0);
            }
            libc::close(self.exec_err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_after_release_and_reports_status() {
        let mut c = GatedChild::spawn(&["sh".into(), "-c".into(), "exit 7".into()]).unwrap();
        assert!(c.pid > 0);
        c.release().unwrap();
        assert_eq!(c.wait().unwrap(), 7);
    }

    #[test]
    fn missing_command_is_an_error_before_fork() {
        let e = GatedChild::spawn(&["no-such-command-foliobench".into()])
            .err()
            .unwrap();
        assert!(matches!(e, CommandError::NotFound(_)), "{e}");
    }

    #[test]
    fn exec_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("not-executable");
        std::fs::write(&p, "data").unwrap();
        let mut c = GatedChild::spawn(&[p.to_string_lossy().into_owned()]).unwrap();
        let e = c.release().unwrap_err();
        assert!(e.to_string().contains("Permission denied"), "{e}");
    }

    #[test]
    fn the_child_does_not_run_before_release() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let script = format!("touch {}", marker.display());
        let mut c = GatedChild::spawn(&["sh".into(), "-c".into(), script]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!marker.exists(), "ran before release");
        c.release().unwrap();
        assert_eq!(c.wait().unwrap(), 0);
        assert!(marker.exists());
    }
}
