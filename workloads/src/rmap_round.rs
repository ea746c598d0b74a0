//! One rmap round in a fresh, small process: this binary run again with the round in
//! `FOLIOBENCH_RMAP_ROUND`. The file case's rounds too: run from foliobench itself, its
//! munmap followed the tool's own mappings (9.46 and 14.27 µs in two main jobs' runs).
//!
//! Why: `fork()` copies the page tables of every private mapping of the process that forks,
//! not only the mapping under test. Done from foliobench itself, the timed fork copied the
//! tool's own 16-21 MB of anonymous memory (libbpf's BTF, symbol tables, results), whose size
//! changed from boot to boot: two boots timed a 32 MiB fork of 2M folios at 1.730 and 1.953
//! ms of instruction time, and a fork with no mapping at 0.832 and 1.061 ms. The thread's own
//! benchmarks fork a small C program; a re-executed foliobench holds little more than its
//! stack and the mapping under test, the same in every boot (244 kB of RssAnon before its
//! mapping in the main job, against 16-21 MB).
//!
//! The helper is bound to the CPU it starts on, and so are the children it forks. Unbound,
//! a child was sometimes woken on the other vCPU, whose instructions the instruction clock
//! also counts: a 2M fork's rounds fell in two modes, 1.10 and 1.20 ms. On its CPU, the child
//! could still preempt the parent before fork() returned: each operation runs unpreempted
//! (`crate::unpreempted`).
//!
//! The protocol, on the helper's stdout: `B <op> <start> <end>` / `E <op>` before and after
//! each operation (`<start> <end>`: the address range of the mapping it works on) when the
//! parent traces (the helper then waits for one byte on stdin before going on, so
//! that the parent reads its probes just around the operation), then `R <json>` with the
//! times and folio checks, or `X <message>` on failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use foliobench_reports::rmap::{FolioCheck, RmapOp};
use serde::{Deserialize, Serialize};

use crate::mapping::WorkloadError;
use crate::rmap::{run_file, run_group, Folio, Hook, Step, GROUPS};

const ENV: &str = "FOLIOBENCH_RMAP_ROUND";

/// What the helper runs: every group of `GROUPS` once, on `size` bytes of `folio_kb` folios.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Round {
    pub ops: Vec<RmapOp>,
    pub size: usize,
    pub folio: Folio,
    /// Stop before and after each operation for the parent (a traced round), and before
    /// the fork, the control: the same fork with the mapping left out of the child.
    pub stepped: bool,
    /// The file case instead (`rmap::run_file`): this file on a dax filesystem, faulted in
    /// and unmapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
}

/// What a round gave.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RoundTimes {
    /// Each operation's time, ns.
    pub times: Vec<(RmapOp, u64)>,
    pub checks: Vec<FolioCheck>,
    /// This process's RssAnon (kB) before the round mapped anything.
    pub anon_kb: Option<u64>,
}

impl Round {
    /// Runs the round in a fresh process of this binary; `hook` runs in this process just
    /// before and after each of the helper's operations when the round is `stepped`.
    pub fn run_apart(&self, hook: Hook) -> Result<RoundTimes, WorkloadError> {
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            WorkloadError::Failed(format!("rmap round in a helper process: {what}: {e}"))
        };
        let exe = std::env::current_exe().map_err(|e| failed("this binary's path", &e))?;
        let spec = serde_json::to_string(self).map_err(|e| failed("its plan", &e))?;
        let mut command = Command::new(&exe);
        // SAFETY: between fork and exec only personality(2), a plain system call.
        unsafe {
            command.pre_exec(|| {
                // The same layout in every boot: with address-space randomisation the
                // stack's offset within its page moved, and with it how many stack pages
                // a fork copies (the operation's fork and the control's then differed
                // by a page in one boot and not in another: fork 2M counted 21 or 22).
                let now = libc::personality(0xffff_ffff);
                if now != -1 {
                    libc::personality(
                        (now as libc::c_ulong) | libc::ADDR_NO_RANDOMIZE as libc::c_ulong,
                    );
                }
                Ok(())
            });
        }
        let mut child = command
            .env(ENV, spec)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| failed(&format!("starting {}", exe.display()), &e))?;
        let mut to_helper = child.stdin.take().expect("piped");
        let from_helper = BufReader::new(child.stdout.take().expect("piped"));
        let mut result = Err(failed("it ended without a result", &"no R line"));
        for line in from_helper.lines() {
            let line = line.map_err(|e| failed("reading it", &e))?;
            let (tag, rest) = line.split_once(' ').unwrap_or((&line, ""));
            match tag {
                "B" | "E" => {
                    let (op, step) =
                        parse_step(tag, rest).ok_or_else(|| failed("an unreadable line", &line))?;
                    hook(op, step);
                    to_helper
                        .write_all(b"g")
                        .map_err(|e| failed("answering it", &e))?;
                }
                "R" => {
                    result = serde_json::from_str(rest).map_err(|e| failed("its result", &e));
                }
                "X" => result = Err(WorkloadError::Failed(rest.to_string())),
                _ => {}
            }
        }
        drop(to_helper);
        let status = child.wait().map_err(|e| failed("waiting for it", &e))?;
        match result {
            Ok(r) if status.success() => Ok(r),
            Ok(_) => Err(failed("it ended", &status)),
            Err(e) => Err(e),
        }
    }

    /// In the helper: the round itself.
    fn run_here(&self, out: &mut impl Write) -> Result<RoundTimes, WorkloadError> {
        let mut stdin = std::io::stdin().lock();
        let mut step = |op: Option<RmapOp>, step: Step| {
            if self.stepped {
                let op = serde_json::to_string(&op).unwrap_or_default();
                let line = match step {
                    Step::Before { vmas: (start, end) } => format!("B {op} {start} {end}"),
                    Step::After => format!("E {op}"),
                };
                let _ = writeln!(out, "{line}").and_then(|_| out.flush());
                let _ = stdin.read(&mut [0u8]);
            }
        };
        let mut round = RoundTimes {
            anon_kb: rss_anon_kb(),
            ..Default::default()
        };
        let ns = |times: Vec<(RmapOp, Duration)>| -> Vec<(RmapOp, u64)> {
            times
                .into_iter()
                .map(|(op, d)| (op, d.as_nanos() as u64))
                .collect()
        };
        if let Some(path) = &self.file {
            round.times = ns(run_file(path, self.size, &mut step)?);
            return Ok(round);
        }
        for g in GROUPS {
            let (times, check) = run_group(g, &self.ops, self.size, self.folio, &mut step)?;
            round.checks.push(check);
            round.times.extend(ns(times));
        }
        Ok(round)
    }
}

/// A `B <op> <start> <end>` or `E <op>` line of the helper (`tag` and the rest).
fn parse_step(tag: &str, rest: &str) -> Option<(Option<RmapOp>, Step)> {
    let mut words = rest.split(' ');
    let op = serde_json::from_str(words.next()?).ok()?;
    let step = match tag {
        "B" => Step::Before {
            vmas: (words.next()?.parse().ok()?, words.next()?.parse().ok()?),
        },
        _ => Step::After,
    };
    Some((op, step))
}

/// `RssAnon` of /proc/self/status, kB.
fn rss_anon_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// In `main`, first: if this process is an rmap helper, runs its round, prints the result
/// and returns the exit status; otherwise `None`.
pub fn serve_if_asked() -> Option<i32> {
    let spec = std::env::var(ENV).ok()?;
    // The parent decides when to stop (Ctrl-C reaches the whole process group): finish the
    // round, and go with the parent if it is killed.
    // SAFETY: plain signal disposition and prctl calls on this process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let cpu = libc::sched_getcpu();
        if cpu >= 0 {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    let mut out = std::io::stdout().lock();
    let result = serde_json::from_str::<Round>(&spec)
        .map_err(|e| WorkloadError::Failed(format!("{ENV}: {e}")))
        .and_then(|r| r.run_here(&mut out));
    let line = match &result {
        Ok(r) => format!("R {}", serde_json::to_string(r).unwrap_or_default()),
        Err(e) => format!("X {e}"),
    };
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    Some(if result.is_ok() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_lines_carry_the_mapping_range_before_an_operation() {
        assert_eq!(
            parse_step("B", "\"fork\" 140737304076288 140737320853504"),
            Some((
                Some(RmapOp::Fork),
                Step::Before {
                    vmas: (140737304076288, 140737320853504)
                }
            ))
        );
        assert_eq!(
            parse_step("B", "null 4096 8192"),
            Some((None, Step::Before { vmas: (4096, 8192) }))
        );
        assert_eq!(
            parse_step("E", "\"munmap\""),
            Some((Some(RmapOp::Munmap), Step::After))
        );
        // A start without its range is not a span the parent can count.
        assert_eq!(parse_step("B", "\"fork\""), None);
    }
}
