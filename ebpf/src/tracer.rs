//! Start probes, run a workload, read the histograms.
//!
//! `funcs.bpf.c` holds SLOTS probes per object: each slot has a copy of every flavour's
//! programs (fentry/fexit, kprobe/kretprobe, tracepoints), turned on by autoload, with its
//! attach target and argument set before load. The probes of a round load as one object
//! (one BTF parse by libbpf, one load), SLOTS at a time; an object the kernel refuses is
//! loaded again probe by probe, so that one refused probe costs only itself. All objects
//! share one tgid filter map, so "this command and its children" means the same thing to
//! every probe.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, ProgramMut, TracepointCategory};

use foliobench_reports::facts::{Flavour, Resolution, TargetKind};
use foliobench_reports::trace::{since_all, NotTraced, ProbeStats};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/funcs.skel.rs"));
}
use skel::*;

/// Probes per object: the slots of `funcs.bpf.c` (its `SLOTS`).
const SLOTS: usize = 32;

/// Backing storage for the loaded objects: it must outlive the `Tracer` that borrows it
/// (libbpf-rs skeletons borrow their object).
#[derive(Default)]
pub struct ProbeStorage(Vec<MaybeUninit<OpenObject>>);

/// Which processes the probes count.
#[derive(Debug, Clone, Default)]
pub enum Filter {
    /// Everything on the system.
    #[default]
    All,
    /// These processes and every process they fork from now on.
    Tgids(Vec<u32>),
}

impl Filter {
    /// This process and the children it forks.
    pub fn this_process() -> Filter {
        Filter::Tgids(vec![std::process::id()])
    }
}

/// What one traced round gave: the probes' counts in each marked span of the work.
pub struct Traced<K> {
    pub spans: Vec<(K, Vec<ProbeStats>)>,
    /// Probes that resolved but could not be loaded or attached, with the kernel's reason.
    pub failed: Vec<NotTraced>,
    /// Probes attached; 0 when nothing could be (the work then ran untraced).
    pub attached: usize,
}

/// `probes` counted only (calls and argument, no latency), but for those named in `timed`.
/// The suites' traced rounds exist for counts: an exit probe per call would only add to the
/// probe effect they report.
pub fn counting(probes: &[Resolution], timed: &[&str]) -> Vec<Resolution> {
    probes
        .iter()
        .map(|r| Resolution {
            count_only: !timed.contains(&r.probe.as_str()),
            ..r.clone()
        })
        .collect()
}

/// Whether any of `probes` can be traced here at all.
pub fn any_traceable(probes: &[Resolution]) -> bool {
    probes.iter().any(|r| r.flavour.is_some())
}

/// One traced round: `probes` are loaded and attached once, `work` runs, and calls its
/// hook with `(key, true)` before and `(key, false)` after each part it wants measured;
/// what the probes counted in between is that span's. Timings are never taken here: a
/// traced round is for counts, its timed twin runs with nothing attached.
pub fn around<K, T>(
    probes: &[Resolution],
    filter: &Filter,
    work: impl FnOnce(&mut dyn FnMut(K, bool)) -> T,
) -> Result<(T, Traced<K>)> {
    let mut storage = ProbeStorage::default();
    let tracer = Tracer::start(&mut storage, probes, filter)?;
    let mut spans = Vec::new();
    let mut before: Vec<ProbeStats> = Vec::new();
    let out = work(&mut |key: K, start: bool| {
        let now = tracer.read();
        if start {
            before = now;
        } else {
            spans.push((key, since_all(&now, &before)));
        }
    });
    let attached = tracer.attached();
    let failed = std::mem::take(&mut { tracer }.failed);
    Ok((
        out,
        Traced {
            spans,
            failed,
            attached,
        },
    ))
}

/// `around` with the whole of `work` as the one span.
pub fn whole<T>(
    probes: &[Resolution],
    filter: &Filter,
    work: impl FnOnce() -> T,
) -> Result<(T, Vec<ProbeStats>, Traced<()>)> {
    let (out, mut t) = around(probes, filter, |hook| {
        hook((), true);
        let out = work();
        hook((), false);
        out
    })?;
    let stats = t.spans.pop().map(|(_, s)| s).unwrap_or_default();
    Ok((out, stats, t))
}

/// One probe, attached: its slot in an object and the links of its programs.
struct Attached {
    res: Resolution,
    function: String,
    object: usize,
    slot: usize,
    _links: Vec<Link>,
}

pub struct Tracer<'obj> {
    // Declared first: links are dropped (probes detached) before their objects.
    probes: Vec<Attached>,
    /// The fork-following programs' links (with a process filter).
    follow: Vec<Link>,
    objects: Vec<FuncsSkel<'obj>>,
    /// Probes that resolved but could not be loaded or attached, with the kernel's reason.
    pub failed: Vec<NotTraced>,
}

impl<'obj> Tracer<'obj> {
    /// Loads and attaches every probe with a flavour; probes that fail are recorded in
    /// `failed`, not fatal. Errors only when BPF cannot be used at all.
    pub fn start(
        storage: &'obj mut ProbeStorage,
        probes: &[Resolution],
        filter: &Filter,
    ) -> Result<Tracer<'obj>> {
        crate::quiet_libbpf();
        let traceable: Vec<&Resolution> = probes.iter().filter(|r| r.flavour.is_some()).collect();
        // An object per SLOTS probes, and one per probe where an object is refused.
        let chunks: Vec<&[&Resolution]> = traceable.chunks(SLOTS).collect();
        storage.0 = (0..chunks.len() + traceable.len())
            .map(|_| MaybeUninit::uninit())
            .collect();
        let mut spare = storage.0.iter_mut();
        let mut t = Tracer {
            probes: Vec::new(),
            follow: Vec::new(),
            objects: Vec::new(),
            failed: Vec::new(),
        };
        let filtering = matches!(filter, Filter::Tgids(_));
        for chunk in chunks {
            let slot = spare.next().context("object storage")?;
            match t.load(slot, chunk, filtering) {
                Ok(()) => {}
                Err(_) if chunk.len() > 1 => {
                    // Which probe the kernel refuses is not said: load each alone.
                    for res in chunk {
                        let slot = spare.next().context("object storage")?;
                        if let Err(e) = t.load(slot, std::slice::from_ref(res), filtering) {
                            t.failed.push(not_traced(res, e));
                        }
                    }
                }
                Err(e) => t.failed.push(not_traced(chunk[0], e)),
            }
        }
        if let (Filter::Tgids(pids), Some(first)) = (filter, t.objects.first()) {
            for &pid in pids {
                first
                    .maps
                    .tgids
                    .update(&pid.to_ne_bytes(), &[1u8], MapFlags::ANY)
                    .context("adding a pid to the trace filter")?;
            }
        }
        Ok(t)
    }

    pub fn attached(&self) -> usize {
        self.probes.len()
    }

    /// Reads every probe's aggregates (the probes keep running).
    pub fn read(&self) -> Vec<ProbeStats> {
        // Each object's argument values in one pass over its map, not one pass per probe.
        let mut values: Vec<HashMap<usize, Vec<(u64, u64)>>> =
            self.objects.iter().map(arg_values).collect();
        self.probes
            .iter()
            .map(|p| {
                let v = values[p.object].remove(&p.slot).unwrap_or_default();
                read(&self.objects[p.object], p, v)
            })
            .collect()
    }

    /// Loads one object for `chunk` (slot k for chunk[k]) and attaches its probes; a probe
    /// whose attach is refused is recorded in `failed`. Err: the object was not loaded.
    fn load(
        &mut self,
        storage: &'obj mut MaybeUninit<OpenObject>,
        chunk: &[&Resolution],
        filtering: bool,
    ) -> Result<()> {
        let mut open = FuncsSkelBuilder::default()
            .open(storage)
            .context("opening the probe object")?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("probe object has no .rodata")?;
        rodata.filter_tgid = filtering;
        for (k, res) in chunk.iter().enumerate() {
            rodata.arg_index[k] = res.arg_index.map_or(-1, |i| i as i32);
            rodata.timed[k] = !res.count_only;
        }
        // A map no probe of this object uses gets one entry, not thousands preallocated:
        // the per-thread LRU alone is about 3 MiB, built at load and freed later by a
        // deferred work item (seen landing in the memmap suite's next teardown).
        let maps = &mut open.maps;
        if chunk.iter().all(|r| r.count_only) {
            maps.threads.set_max_entries(1)?;
        }
        if chunk.iter().all(|r| r.arg_index.is_none()) {
            maps.values.set_max_entries(1)?;
        }
        if !filtering {
            maps.tgids.set_max_entries(1)?;
        }
        // The first object follows forks into the shared map; the others reuse it.
        let owner = self.objects.first();
        for mut p in open.open_object_mut().progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            let wanted = match name.rsplit_once('_').map(|(f, k)| (f, k.parse::<usize>())) {
                Some((prog, Ok(k))) => chunk
                    .get(k)
                    .filter(|res| programs(res).contains(&prog))
                    .map(|res| (matches!(prog, "fentry_entry" | "fexit_exit"), res)),
                _ => None,
            };
            let follow = name == "follow_fork" || name == "forget_freed";
            p.set_autoload(wanted.is_some() || (follow && filtering && owner.is_none()));
            if let Some((true, res)) = wanted {
                p.set_attach_target(0, res.function.clone())?;
            }
        }
        if let Some(owner) = owner {
            open.maps
                .tgids
                .reuse_fd(owner.maps.tgids.as_fd())
                .context("sharing the pid filter")?;
        }
        let skel = open
            .load()
            .map_err(|e| anyhow::anyhow!("load refused: {}", crate::capability::describe(&e)))?;
        let object = self.objects.len();
        if filtering && owner.is_none() {
            self.follow.push(attach_one(
                "sched_process_fork",
                skel.progs.follow_fork.attach(),
            )?);
            self.follow.push(attach_one(
                "sched_process_free",
                skel.progs.forget_freed.attach(),
            )?);
        }
        for (k, res) in chunk.iter().enumerate() {
            let prog = |name: &str| {
                let want = format!("{name}_{k}");
                skel.object()
                    .progs_mut()
                    .find(|p| p.name().to_string_lossy() == want)
            };
            let function = res.function.clone().unwrap_or_default();
            match attach(&prog, res, &function) {
                Ok(links) => {
                    self.probes.push(Attached {
                        res: (*res).clone(),
                        function,
                        object,
                        slot: k,
                        _links: links,
                    });
                }
                Err(e) => self.failed.push(not_traced(res, e)),
            }
        }
        self.objects.push(skel);
        Ok(())
    }
}

fn not_traced(res: &Resolution, e: anyhow::Error) -> NotTraced {
    NotTraced {
        probe: res.probe.clone(),
        reason: format!("{e:#}"),
    }
}

/// The programs of a slot that `res` turns on, by name without the slot number.
fn programs(res: &Resolution) -> &'static [&'static str] {
    let pair = res.kind == TargetKind::Syscall;
    match (res.flavour, res.count_only) {
        (Some(Flavour::Fentry), false) => &["fentry_entry", "fexit_exit"],
        (Some(Flavour::Fentry), true) => &["fentry_entry"],
        (Some(Flavour::Kprobe), false) => &["kprobe_entry", "kretprobe_exit"],
        (Some(Flavour::Kprobe), true) => &["kprobe_entry"],
        (Some(Flavour::Tracepoint), _) if pair => &["tp_entry", "tp_exit"],
        (Some(Flavour::Tracepoint), _) => &["tp_event"],
        (None, _) => &[],
    }
}

/// Every exact argument value counted in one object, by slot, in value order.
fn arg_values(skel: &FuncsSkel<'_>) -> HashMap<usize, Vec<(u64, u64)>> {
    let map = &skel.maps.values;
    let mut by_slot: HashMap<usize, Vec<(u64, u64)>> = HashMap::new();
    for key in map.keys() {
        // struct value_key: u32 slot, u32 pad, u64 value.
        let (Ok(slot), Ok(value)) = (
            key[..4].try_into().map(u32::from_ne_bytes),
            key[8..16].try_into().map(u64::from_ne_bytes),
        ) else {
            continue;
        };
        let count = map
            .lookup(&key, MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| v.try_into().ok().map(u64::from_ne_bytes))
            .unwrap_or(0);
        by_slot
            .entry(slot as usize)
            .or_default()
            .push((value, count));
    }
    for v in by_slot.values_mut() {
        v.sort();
    }
    by_slot
}

fn read(skel: &FuncsSkel<'_>, p: &Attached, values: Vec<(u64, u64)>) -> ProbeStats {
    let st = skel.maps.bss_data.as_deref().map(|b| &b.stats[p.slot]);
    let (calls, returns, total_ns, lat, arg, sum, dropped) = match st {
        Some(b) => (
            b.calls,
            b.returns,
            b.total_ns,
            b.latency_slots.to_vec(),
            b.arg_slots.to_vec(),
            b.arg_sum,
            b.values_dropped,
        ),
        None => (0, 0, 0, vec![], vec![], 0, 0),
    };
    ProbeStats {
        probe: p.res.probe.clone(),
        group: p.res.group,
        function: p.function.clone(),
        flavour: p.res.flavour.expect("loaded probes have one"),
        calls,
        returns,
        total_ns,
        latency_log2: lat,
        arg_name: p.res.arg_name.clone(),
        arg_log2: if p.res.arg_index.is_some() {
            arg
        } else {
            vec![]
        },
        arg_values: if p.res.arg_index.is_some() {
            values
        } else {
            vec![]
        },
        arg_sum: sum,
        arg_values_dropped: dropped,
    }
}

/// Attaches the programs of one slot that `res` turned on (`prog` finds them by name).
fn attach<'a>(
    prog: &dyn Fn(&str) -> Option<ProgramMut<'a>>,
    res: &Resolution,
    function: &str,
) -> Result<Vec<Link>> {
    let get = |name: &str| prog(name).with_context(|| format!("no program {name}"));
    let mut links = Vec::new();
    for &name in programs(res) {
        let p = get(name)?;
        let link = match name {
            "fentry_entry" | "fexit_exit" => p.attach(),
            "kprobe_entry" => p.attach_kprobe(false, function),
            "kretprobe_exit" => p.attach_kprobe(true, function),
            _ => {
                let (cat, event) = function
                    .split_once(':')
                    .with_context(|| format!("tracepoint '{function}' is not category:name"))?;
                let event = if name == "tp_exit" {
                    event.replacen("sys_enter_", "sys_exit_", 1)
                } else {
                    event.to_string()
                };
                p.attach_tracepoint(TracepointCategory::Custom(cat.into()), &event)
            }
        };
        links.push(attach_one(name, link)?);
    }
    Ok(links)
}

fn attach_one(what: &str, r: libbpf_rs::Result<Link>) -> Result<Link> {
    r.map_err(|e| {
        anyhow::anyhow!(
            "attaching {what} refused: {}",
            crate::capability::describe(&e)
        )
    })
}
