//! The VM's console: boot output told from the guest's, the watchdog that stops a silent
//! boot, progress lines, and how a boot ended.

use super::*;

/// A console line from the kernel (`[    3.52] ...`), not from the guest command.
pub fn is_kernel_log(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('[')
        && t[1..].split_once(']').is_some_and(|(ts, _)| {
            ts.trim().split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && a.chars().all(|c| c.is_ascii_digit())
                    && b.chars().all(|c| c.is_ascii_digit())
            })
        })
}

/// The end of a console tail, for an error message.
pub(super) fn last_lines(tail: &[String]) -> String {
    if tail.is_empty() {
        return "(none: QEMU printed nothing)".into();
    }
    tail[tail.len().saturating_sub(15)..].join("\n")
}

/// How one boot ended.
pub(super) enum Boot {
    /// The guest command ran and wrote its exit status.
    Ran,
    /// The guest never reached its start marker within the deadline, or QEMU said KVM
    /// cannot run it; QEMU was stopped. Nothing ran in the guest.
    NoLife {
        kvm_error: Option<String>,
        output: BootOutput,
    },
    /// The VM died before the guest command started (kernel oops while booting): nothing
    /// was done in the guest, so booting again is safe.
    DiedBooting(BootOutput),
    /// The guest command started but no exit status came back.
    DiedRunning(BootOutput),
}

/// The VM ended after the guest command had started, without its exit status (an exit code
/// of 3, environment). `vm` never runs a user's command twice; `ab`, whose runs are its own
/// and write a fresh file, boots such a run once more.
#[derive(Debug)]
pub struct VmDied(pub String);

impl std::fmt::Display for VmDied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for VmDied {}

/// What the console showed of a boot that went wrong.
pub(super) struct BootOutput {
    /// The first line that says the kernel is in trouble, if one came.
    pub(super) oops: Option<String>,
    pub(super) tail: Vec<String>,
}

impl BootOutput {
    /// The oops, else the last console line: what a retry message quotes.
    pub(super) fn first_sign(&self) -> &str {
        self.oops
            .as_deref()
            .unwrap_or_else(|| self.tail.last().map_or("no output", |s| s.as_str()))
    }
}

/// What the console shows besides the guest's output.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Show {
    pub(super) boot_log: bool,
    pub(super) expect: Option<Duration>,
}

/// "3m 12s of ~20m 00s, ~16m 48s left": how far a run expected to take `expect` has come.
pub(super) fn progress(elapsed: Duration, expect: Duration) -> String {
    let mins = |d: Duration| {
        let s = d.as_secs();
        if s >= 60 {
            format!("{}m {:02}s", s / 60, s % 60)
        } else {
            format!("{s}s")
        }
    };
    match expect.checked_sub(elapsed) {
        Some(left) => format!(
            "{} of ~{}, ~{} left",
            mins(elapsed),
            mins(expect),
            mins(left)
        ),
        None => format!("{}, past the ~{} expected", mins(elapsed), mins(expect)),
    }
}

/// When to give up on a VM.
pub(super) struct Waits<'a> {
    pub(super) deadline: Instant,
    /// As the user wrote it, for the message.
    pub(super) timeout: &'a str,
    /// How long the guest may take to reach its start marker.
    pub(super) life: Duration,
    pub(super) interrupted: &'a AtomicBool,
}

/// Boots once and waits, killing the VM's process group on the deadline, a signal, a
/// guest that shows no sign of life in time, or QEMU saying KVM cannot run it.
pub(super) fn boot(cmd: &mut Command, show: Show, w: &Waits<'_>, exit_file: &Path) -> Result<Boot> {
    let mut vm = RunningVm::start(cmd, show)?;
    let watch = vm.watch(w)?;
    let console = vm.drain_console();
    match watch {
        Watch::Stopped(fail) => Err(fail.into()),
        Watch::NoLife { kvm_error } => Ok(Boot::NoLife {
            kvm_error,
            output: BootOutput {
                oops: console.oops(),
                tail: console.tail_lines(),
            },
        }),
        Watch::Exited => Ok(console.how_boot_ended(exit_file)),
    }
}

/// vng (with QEMU under it) in its own process group, its console read by two threads.
pub(super) struct RunningVm {
    pub(super) child: std::process::Child,
    pub(super) pgid: i32,
    pub(super) started_at: Instant,
    pub(super) console: Arc<Console>,
    pub(super) pumps: [std::thread::JoinHandle<()>; 2],
}

/// Why `RunningVm::watch` stopped watching.
pub(super) enum Watch {
    /// vng exited by itself.
    Exited,
    /// No start marker within the guest's life deadline, or QEMU said KVM cannot run the
    /// guest; the VM was killed.
    NoLife { kvm_error: Option<String> },
    /// The overall timeout or a signal; the VM was killed.
    Stopped(Fail),
}

impl RunningVm {
    /// Starts vng and the threads that forward its stdout and stderr.
    pub(super) fn start(cmd: &mut Command, show: Show) -> Result<RunningVm> {
        // Its own process group, so a timeout or Ctrl-C takes down vng and QEMU together.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let started_at = Instant::now();
        let mut child = cmd.spawn().context("starting vng")?;
        let pgid = child.id() as i32;
        let console = Arc::new(Console {
            boot_log: show.boot_log,
            expect: show.expect.map(|e| (started_at, e)),
            ..Default::default()
        });
        let pumps = [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ]
        .map(|r| {
            let c = Arc::clone(&console);
            std::thread::spawn(move || c.forward(r))
        });
        Ok(RunningVm {
            child,
            pgid,
            started_at,
            console,
            pumps,
        })
    }

    /// Polls until vng exits, or kills it for one of the reasons in `w`.
    pub(super) fn watch(&mut self, w: &Waits<'_>) -> Result<Watch> {
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(Watch::Exited);
            }
            let started = self.console.started.load(Ordering::Relaxed);
            let kvm_error = self.console.kvm_error();
            if !started && (kvm_error.is_some() || self.started_at.elapsed() > w.life) {
                self.kill();
                return Ok(Watch::NoLife { kvm_error });
            }
            let expired = Instant::now() > w.deadline;
            if expired || w.interrupted.load(Ordering::Relaxed) {
                self.kill();
                return Ok(Watch::Stopped(if expired {
                    Fail {
                        code: Code::Timeout,
                        msg: format!(
                            "the test VM did not finish within {} and was killed",
                            w.timeout
                        ),
                    }
                } else {
                    Fail {
                        code: Code::Environment,
                        msg: "interrupted: the test VM was killed".into(),
                    }
                }));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the whole process group (vng and QEMU) and reaps vng.
    pub(super) fn kill(&mut self) {
        // SAFETY: signalling our own child's process group.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// Waits for the console threads to read the last of the output.
    pub(super) fn drain_console(self) -> Arc<Console> {
        for p in self.pumps {
            let _ = p.join();
        }
        self.console
    }
}

/// Guest exit codes map onto ours one to one; anything unknown is an environment error.
pub(super) fn guest_code(c: i32) -> Code {
    match c {
        0 => Code::Ok,
        1 => Code::Regression,
        2 => Code::Usage,
        4 => Code::Skipped,
        5 => Code::Timeout,
        _ => Code::Environment,
    }
}

/// Splits the VM's console into boot output and the guest command's output.
#[derive(Default)]
pub(super) struct Console {
    pub(super) boot_log: bool,
    /// When the VM started and how long its command is expected to take (`--expect`).
    pub(super) expect: Option<(Instant, Duration)>,
    pub(super) started: AtomicBool,
    pub(super) tail: Mutex<VecDeque<String>>,
    /// The first line that says why the kernel died.
    pub(super) oops: Mutex<Option<String>>,
    /// The first line in which QEMU says KVM cannot run the guest.
    pub(super) kvm_error: Mutex<Option<String>>,
}

impl Console {
    pub(super) fn oops(&self) -> Option<String> {
        self.oops.lock().ok().and_then(|o| o.clone())
    }

    pub(super) fn kvm_error(&self) -> Option<String> {
        self.kvm_error.lock().ok().and_then(|k| k.clone())
    }

    /// The last BOOT_TAIL lines of boot output.
    pub(super) fn tail_lines(&self) -> Vec<String> {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// How a boot ended whose vng exited by itself, from what its console showed.
    pub(super) fn how_boot_ended(&self, exit_file: &Path) -> Boot {
        let ran = self.started.load(Ordering::Relaxed);
        let kvm_error = self.kvm_error();
        match (ran, exit_file.exists()) {
            (true, true) => Boot::Ran,
            (true, false) => Boot::DiedRunning(BootOutput {
                oops: self.oops(),
                tail: self.tail_lines(),
            }),
            // QEMU gave up on KVM and exited by itself.
            (false, _) if kvm_error.is_some() => Boot::NoLife {
                kvm_error,
                output: BootOutput {
                    oops: None,
                    tail: self.tail_lines(),
                },
            },
            (false, _) => Boot::DiedBooting(BootOutput {
                oops: self.oops(),
                tail: self.tail_lines(),
            }),
        }
    }

    pub(super) fn forward(&self, r: impl std::io::Read) {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.trim() == MARKER {
                self.started.store(true, Ordering::Relaxed);
                continue;
            }
            let guest = self.started.load(Ordering::Relaxed) && !is_kernel_log(line);
            if guest {
                match (self.expect, line.strip_prefix("foliobench: ")) {
                    (Some((t0, e)), Some(rest)) => {
                        println!("foliobench: [{}] {rest}", progress(t0.elapsed(), e))
                    }
                    _ => println!("{line}"),
                }
                continue;
            }
            if self.boot_log {
                eprintln!("{line}");
            }
            let first = |slot: &Mutex<Option<String>>| {
                if let Ok(mut o) = slot.lock() {
                    o.get_or_insert_with(|| line.trim().to_string());
                }
            };
            if ["Oops:", "BUG:", "Kernel panic", "WARNING:"]
                .iter()
                .any(|k| line.contains(k))
            {
                first(&self.oops);
            }
            if accel::KVM_FAILURES.iter().any(|k| line.contains(k)) {
                first(&self.kvm_error);
            }
            if let Ok(mut t) = self.tail.lock() {
                if t.len() == BOOT_TAIL {
                    t.pop_front();
                }
                t.push_back(line.to_string());
            }
        }
    }
}
