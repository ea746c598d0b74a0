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
use libbpf_rs::{Link, OpenObject, OpenProgramMut, TracepointCategory};

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

/// Reads of /dev/null made to fire the attached program.
const CALLS: u64 = 8;

fn probe_one(flavour: Flavour) -> Result<FlavourSupport> {
    let mut support = untried(flavour);
    let mut storage = MaybeUninit::uninit();
    let open = open_for(flavour, &mut storage)?;
    let skel = match load(open, flavour) {
        Ok(s) => s,
        Err(reason) => {
            support.reason = reason;
            return Ok(support);
        }
    };
    support.loads = true;

    let _link = match attach(&skel, flavour) {
        Ok(l) => l,
        Err(e) => {
            support.reason = format!("attach refused: {}{}", describe(&e), attach_hint(flavour));
            return Ok(support);
        }
    };
    support.attaches = true;

    let seen = fire(&skel, flavour)?;
    support.fires = seen >= CALLS;
    support.reason = if support.fires {
        format!("ran {seen} times for {CALLS} reads of /dev/null")
    } else {
        format!("attached but ran {seen} times for {CALLS} reads of /dev/null")
    };
    Ok(support)
}

/// The flavour's row before anything is tried: nothing works yet.
fn untried(flavour: Flavour) -> FlavourSupport {
    let target = match flavour {
        Flavour::Tracepoint => TRACEPOINT,
        _ => FUNCTION,
    };
    FlavourSupport {
        flavour,
        loads: false,
        attaches: false,
        fires: false,
        target: target.to_string(),
        reason: String::new(),
    }
}

/// Opens the capability object filtered to this process, with only `flavour`'s program
/// set to load.
fn open_for(
    flavour: Flavour,
    storage: &mut MaybeUninit<OpenObject>,
) -> Result<OpenCapabilitySkel<'_>> {
    let mut open = CapabilitySkelBuilder::default()
        .open(storage)
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
    Ok(open)
}

/// Loads the opened object (for fentry, first pointing it at the function's BTF), or says
/// why the kernel would not.
fn load(mut open: OpenCapabilitySkel<'_>, flavour: Flavour) -> Result<CapabilitySkel<'_>, String> {
    if flavour == Flavour::Fentry {
        if let Err(e) = set_fentry_target(&mut open.progs.probe_fentry, FUNCTION) {
            return Err(format!("no BTF for {FUNCTION}: {e}"));
        }
    }
    open.load()
        .map_err(|e| format!("load refused: {}", describe(&e)))
}

/// Attaches `flavour`'s program to the read path.
fn attach(skel: &CapabilitySkel<'_>, flavour: Flavour) -> Result<Link, libbpf_rs::Error> {
    match flavour {
        Flavour::Fentry => skel.progs.probe_fentry.attach(),
        Flavour::Kprobe => skel.progs.probe_kprobe.attach_kprobe(false, FUNCTION),
        Flavour::Tracepoint => {
            let (cat, name) = TRACEPOINT.split_once('/').expect("category/name");
            skel.progs
                .probe_tracepoint
                .attach_tracepoint(TracepointCategory::Custom(cat.into()), name)
        }
    }
}

/// Reads /dev/null `CALLS` times from this process; how many times `flavour`'s program ran.
fn fire(skel: &CapabilitySkel<'_>, flavour: Flavour) -> Result<u64> {
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
    Ok(bss.hits[flavour as usize])
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
