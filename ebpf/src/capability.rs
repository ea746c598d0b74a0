//! Which BPF program flavours work on the running kernel: try each one for real.
//!
//! Each flavour is loaded, attached to the read path (`vfs_read`, or the `sys_enter_read`
//! tracepoint) and triggered by reading /dev/null from this process; a flavour counts as
//! usable only when its program ran. `vfs_read` is in BTF and kallsyms on every kernel
//! foliobench supports, unlike the syscall wrappers (no BTF on some kernels).

use std::io::Read;
use std::mem::MaybeUninit;

use anyhow::{Context, Result};
pub use foliobench_reports::facts::{Flavour, FlavourSupport};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenProgramMut, TracepointCategory};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/capability.skel.rs"));
}
use skel::*;

/// The function the fentry and kprobe programs attach to, and the tracepoint.
const FUNCTION: &str = "vfs_read";
const TRACEPOINT: &str = "syscalls/sys_enter_read";

/// Try every flavour. Errors only when BPF cannot be used at all (no object can be opened).
pub fn probe_flavours() -> Result<Vec<FlavourSupport>> {
    // libbpf prints its own diagnostics to stderr; the refusals are reported here instead.
    crate::quiet_libbpf();
    Flavour::ALL.iter().map(|&f| probe_one(f)).collect()
}

fn probe_one(flavour: Flavour) -> Result<FlavourSupport> {
    let target = match flavour {
        Flavour::Tracepoint => TRACEPOINT,
        _ => FUNCTION,
    };
    let mut support = FlavourSupport {
        flavour,
        loads: false,
        attaches: false,
        fires: false,
        target: target.to_string(),
        reason: String::new(),
    };

    let mut storage = MaybeUninit::uninit();
    let mut open = CapabilitySkelBuilder::default()
        .open(&mut storage)
        .context("opening the capability BPF object")?;
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("capability object has no .rodata")?;
    rodata.target_tgid = std::process::id();

    // Load only the program under test, so that a flavour the kernel refuses cannot
    // stop the others from loading.
    let progs = &mut open.progs;
    for (f, prog) in [
        (Flavour::Fentry, &mut progs.probe_fentry),
        (Flavour::Kprobe, &mut progs.probe_kprobe),
        (Flavour::Tracepoint, &mut progs.probe_tracepoint),
    ] {
        prog.set_autoload(f == flavour);
    }
    if flavour == Flavour::Fentry {
        if let Err(e) = set_fentry_target(&mut open.progs.probe_fentry, FUNCTION) {
            support.reason = format!("no BTF for {FUNCTION}: {e}");
            return Ok(support);
        }
    }

    let skel = match open.load() {
        Ok(s) => s,
        Err(e) => {
            support.reason = format!("load refused: {}", describe(&e));
            return Ok(support);
        }
    };
    support.loads = true;

    let link: Result<Link, libbpf_rs::Error> = match flavour {
        Flavour::Fentry => skel.progs.probe_fentry.attach(),
        Flavour::Kprobe => skel.progs.probe_kprobe.attach_kprobe(false, FUNCTION),
        Flavour::Tracepoint => {
            let (cat, name) = TRACEPOINT.split_once('/').expect("category/name");
            skel.progs
                .probe_tracepoint
                .attach_tracepoint(TracepointCategory::Custom(cat.into()), name)
        }
    };
    let _link = match link {
        Ok(l) => l,
        Err(e) => {
            support.reason = format!("attach refused: {}{}", describe(&e), attach_hint(flavour));
            return Ok(support);
        }
    };
    support.attaches = true;

    const CALLS: u64 = 8;
    let mut devnull = std::fs::File::open("/dev/null").context("opening /dev/null")?;
    let mut buf = [0u8; 1];
    for _ in 0..CALLS {
        let _ = devnull.read(&mut buf);
    }
    let bss = skel
        .maps
        .bss_data
        .as_deref()
        .context("capability object has no .bss")?;
    let seen = bss.hits[flavour as usize];
    support.fires = seen >= CALLS;
    support.reason = if support.fires {
        format!("ran {seen} times for {CALLS} reads of /dev/null")
    } else {
        format!("attached but ran {seen} times for {CALLS} reads of /dev/null")
    };
    Ok(support)
}

fn set_fentry_target(prog: &mut OpenProgramMut<'_>, func: &str) -> libbpf_rs::Result<()> {
    prog.set_attach_target(0, Some(func.to_string()))
}

/// Why an attach may have failed, from what the kernel exposes.
fn attach_hint(flavour: Flavour) -> &'static str {
    let exists = |p: &str| std::path::Path::new(p).exists();
    match flavour {
        Flavour::Kprobe
            if !exists("/sys/bus/event_source/devices/kprobe")
                && !exists("/sys/kernel/tracing/kprobe_events")
                && !exists("/sys/kernel/debug/tracing/kprobe_events") =>
        {
            "; this kernel has no kprobes (no kprobe PMU, no kprobe_events)"
        }
        _ => "",
    }
}

/// libbpf errors carry the errno; say it the way the kernel does (EPERM, ENOENT, ...).
pub fn describe(e: &libbpf_rs::Error) -> String {
    let kind = e.kind();
    format!("{e} ({kind:?})")
}
