//! Start probes, run a workload, read the histograms.
//!
//! One instance of `funcs.bpf.c` per resolved probe, its flavour (fentry/fexit,
//! kprobe/kretprobe or a tracepoint pair) chosen by autoload, its attach target and
//! argument set before load. All instances share one tgid filter map, so "this command and
//! its children" means the same thing to every probe.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, TracepointCategory};

use foliobench_reports::facts::{Flavour, Resolution, TargetKind};
use foliobench_reports::trace::{since_all, NotTraced, ProbeStats};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/funcs.skel.rs"));
}
use skel::*;

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

struct Instance<'obj> {
    res: Resolution,
    function: String,
    skel: FuncsSkel<'obj>,
    _links: Vec<Link>,
}

pub struct Tracer<'obj> {
    instances: Vec<Instance<'obj>>,
    /// Probes that resolved but could not be loaded or attached, with the kernel's reason.
    pub failed: Vec<NotTraced>,
    /// Index of the instance that owns the shared tgid map (and follows forks).
    filter_owner: Option<usize>,
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
        storage.0 = traceable.iter().map(|_| MaybeUninit::uninit()).collect();
        let mut t = Tracer {
            instances: Vec::new(),
            failed: Vec::new(),
            filter_owner: None,
        };
        let filtering = matches!(filter, Filter::Tgids(_));
        for (slot, res) in storage.0.iter_mut().zip(traceable) {
            let owner = t.filter_owner.map(|i| &t.instances[i].skel);
            match Instance::load(slot, res, filtering, owner) {
                Ok(inst) => {
                    if filtering && t.filter_owner.is_none() {
                        t.filter_owner = Some(t.instances.len());
                    }
                    t.instances.push(inst);
                }
                Err(e) => t.failed.push(NotTraced {
                    probe: res.probe.clone(),
                    reason: format!("{e:#}"),
                }),
            }
        }
        if let (Filter::Tgids(pids), Some(i)) = (filter, t.filter_owner) {
            for &pid in pids {
                t.instances[i]
                    .skel
                    .maps
                    .tgids
                    .update(&pid.to_ne_bytes(), &[1u8], MapFlags::ANY)
                    .context("adding a pid to the trace filter")?;
            }
        }
        Ok(t)
    }

    pub fn attached(&self) -> usize {
        self.instances.len()
    }

    /// Reads every probe's aggregates (the probes keep running).
    pub fn read(&self) -> Vec<ProbeStats> {
        self.instances.iter().map(Instance::read).collect()
    }
}

impl<'obj> Instance<'obj> {
    fn load(
        slot: &'obj mut MaybeUninit<OpenObject>,
        res: &Resolution,
        filtering: bool,
        filter_owner: Option<&FuncsSkel<'_>>,
    ) -> Result<Instance<'obj>> {
        let flavour = res.flavour.context("no flavour")?;
        let function = res.function.clone().context("no function")?;
        let mut open = FuncsSkelBuilder::default()
            .open(slot)
            .context("opening the probe object")?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .context("probe object has no .rodata")?;
        rodata.filter_tgid = filtering;
        rodata.arg_index = res.arg_index.map_or(-1, |i| i as i32);
        rodata.timed = !res.count_only;

        let p = &mut open.progs;
        p.fentry_entry.set_autoload(flavour == Flavour::Fentry);
        p.fexit_exit
            .set_autoload(flavour == Flavour::Fentry && !res.count_only);
        p.kprobe_entry.set_autoload(flavour == Flavour::Kprobe);
        p.kretprobe_exit
            .set_autoload(flavour == Flavour::Kprobe && !res.count_only);
        // A syscall pair (enter/exit: a latency), or one event (counted, with a field).
        let pair = res.kind == TargetKind::Syscall;
        p.tp_entry
            .set_autoload(flavour == Flavour::Tracepoint && pair);
        p.tp_exit
            .set_autoload(flavour == Flavour::Tracepoint && pair);
        p.tp_event
            .set_autoload(flavour == Flavour::Tracepoint && !pair);
        // The first filtering instance follows forks into the shared map; the others reuse it.
        p.follow_fork
            .set_autoload(filtering && filter_owner.is_none());
        p.forget_freed
            .set_autoload(filtering && filter_owner.is_none());
        if flavour == Flavour::Fentry {
            p.fentry_entry
                .set_attach_target(0, Some(function.clone()))?;
            if !res.count_only {
                p.fexit_exit.set_attach_target(0, Some(function.clone()))?;
            }
        }
        if let Some(owner) = filter_owner {
            open.maps
                .tgids
                .reuse_fd(owner.maps.tgids.as_fd())
                .context("sharing the pid filter")?;
        }
        let skel = open
            .load()
            .map_err(|e| anyhow::anyhow!("load refused: {}", crate::capability::describe(&e)))?;

        let mut links = attach(&skel, res, flavour, &function)?;
        if filtering && filter_owner.is_none() {
            links.push(attach_one(
                "sched_process_fork",
                skel.progs.follow_fork.attach(),
            )?);
            links.push(attach_one(
                "sched_process_free",
                skel.progs.forget_freed.attach(),
            )?);
        }
        Ok(Instance {
            res: res.clone(),
            function,
            skel,
            _links: links,
        })
    }

    fn read(&self) -> ProbeStats {
        let bss = self.skel.maps.bss_data.as_deref();
        let (calls, returns, total_ns, lat, arg, sum, dropped) = match bss {
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
        let mut values: Vec<(u64, u64)> = Vec::new();
        if self.res.arg_index.is_some() {
            let map = &self.skel.maps.values;
            for key in map.keys() {
                let count = map
                    .lookup(&key, MapFlags::ANY)
                    .ok()
                    .flatten()
                    .and_then(|v| v.try_into().ok().map(u64::from_ne_bytes))
                    .unwrap_or(0);
                if let Ok(k) = key.as_slice().try_into() {
                    values.push((u64::from_ne_bytes(k), count));
                }
            }
            values.sort();
        }
        ProbeStats {
            probe: self.res.probe.clone(),
            group: self.res.group,
            function: self.function.clone(),
            flavour: self.res.flavour.expect("loaded probes have one"),
            calls,
            returns,
            total_ns,
            latency_log2: lat,
            arg_name: self.res.arg_name.clone(),
            arg_log2: if self.res.arg_index.is_some() {
                arg
            } else {
                vec![]
            },
            arg_values: values,
            arg_sum: sum,
            arg_values_dropped: dropped,
        }
    }
}

/// Attaches the loaded program pair (or single event) of `flavour` to `function`.
fn attach(
    skel: &FuncsSkel<'_>,
    res: &Resolution,
    flavour: Flavour,
    function: &str,
) -> Result<Vec<Link>> {
    let attach = attach_one;
    let progs = &skel.progs;
    let pair = res.kind == TargetKind::Syscall;
    Ok(match flavour {
        Flavour::Fentry if res.count_only => {
            vec![attach("fentry", progs.fentry_entry.attach())?]
        }
        Flavour::Fentry => vec![
            attach("fentry", progs.fentry_entry.attach())?,
            attach("fexit", progs.fexit_exit.attach())?,
        ],
        Flavour::Kprobe if res.count_only => vec![attach(
            "kprobe",
            progs.kprobe_entry.attach_kprobe(false, function),
        )?],
        Flavour::Kprobe => vec![
            attach("kprobe", progs.kprobe_entry.attach_kprobe(false, function))?,
            attach(
                "kretprobe",
                progs.kretprobe_exit.attach_kprobe(true, function),
            )?,
        ],
        Flavour::Tracepoint => {
            let (cat, enter) = function
                .split_once(':')
                .with_context(|| format!("tracepoint '{function}' is not category:name"))?;
            if !pair {
                let cat = TracepointCategory::Custom(cat.into());
                vec![attach(enter, progs.tp_event.attach_tracepoint(cat, enter))?]
            } else {
                let exit = enter.replacen("sys_enter_", "sys_exit_", 1);
                vec![
                    attach(
                        enter,
                        progs
                            .tp_entry
                            .attach_tracepoint(TracepointCategory::Custom(cat.into()), enter),
                    )?,
                    attach(
                        &exit,
                        progs
                            .tp_exit
                            .attach_tracepoint(TracepointCategory::Custom(cat.into()), &exit),
                    )?,
                ]
            }
        }
    })
}

fn attach_one(what: &str, r: libbpf_rs::Result<Link>) -> Result<Link> {
    r.map_err(|e| {
        anyhow::anyhow!(
            "attaching {what} refused: {}",
            crate::capability::describe(&e)
        )
    })
}
