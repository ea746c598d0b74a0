#!/usr/bin/env bash
# A benchmark of foliobench itself (not a test: nothing here passes or fails on a number).
# In one boot of the default test VM: the wall time of each stage of the main job, then
# foliobench's probe effect against bpftrace's on the same probes and workload (`overhead`:
# untraced, foliobench, bpftrace, interleaved). Writes results/bench/bench.json and prints a
# short table; each suite's traced/untraced ratio is read from its own results.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -q
out="$PWD/results/bench"
mkdir -p "$out"
rm -f "$out"/*.ns
fb="$PWD/target/release/foliobench"
start=$(date +%s%N)
"$fb" vm --timeout 120m -- \
  timeit --out "$out/doctor.ns" -- "$fb" doctor --out "$out/doctor.json" ';' \
  timeit --out "$out/memmap_pin.ns" -- "$fb" run --suite memmap,pin --out "$out/run.json" ';' \
  timeit --out "$out/fsdax.ns" -- "$fb" run --suite fsdax --size 256M --out "$out/fsdax.json" ';' \
  timeit --out "$out/rmap.ns" -- "$fb" run --suite rmap --size 64M --max-repeat 6 --out "$out/rmap.json" ';' \
  overhead --repeat 5 --out "$out/overhead.json" ';' \
  overhead --repeat 5 --probe memmap --probe vmemmap --probe pin --probe grab --probe rmap \
    --probe dax --out "$out/overhead-catalog.json" >&2
total=$(( ($(date +%s%N) - start) ))
python3 - "$out" "$total" <<'PY'
import json, os, sys
out, total = sys.argv[1], int(sys.argv[2])
stages = {}
for s in ["doctor", "memmap_pin", "fsdax", "rmap"]:
    p = os.path.join(out, s + ".ns")
    stages[s] = int(open(p).read()) if os.path.exists(p) else None
ov = json.load(open(os.path.join(out, "overhead.json")))
med = lambda v: sorted(v)[len(v) // 2] if v else None
variants = {v["name"]: med(v["samples_ns"]) for v in ov["variants"]}
ratios = {n: (variants[n] / variants["untraced"]) if variants.get("untraced") and variants.get(n) else None
          for n in variants if n != "untraced"}
machine = json.load(open(os.path.join(out, "run.json")))["context"]
def attach(path):
    o = json.load(open(path))
    got = {v["name"]: med(v["samples_ns"]) for v in o.get("attach", [])}
    ours, theirs = got.get("foliobench trace"), got.get("bpftrace")
    return {"probes": len(o["probes"]), "foliobench_ns": ours, "bpftrace_ns": theirs,
            "ratio": ours / theirs if ours and theirs else None}
attach_pin = attach(os.path.join(out, "overhead.json"))
attach_all = attach(os.path.join(out, "overhead-catalog.json"))
bench = {
    "machine": machine.get("machine"), "cpu_model": machine["cpu_model"],
    "kernel_release": machine["kernel_release"],
    "stages_ns": stages, "vm_total_ns": total,
    "overhead": {"command": ov["command"], "probes": ov["probes"], "median_ns": variants,
                 "ratio_to_untraced": ratios},
    "attach": {"pin": attach_pin, "catalog": attach_all},
}
json.dump(bench, open(os.path.join(out, "bench.json"), "w"), indent=2)
print(f"foliobench bench on {bench['kernel_release']} ({bench['cpu_model']}):")
for s, ns in stages.items():
    print(f"  {s:<12} {ns / 1e9:8.1f} s" if ns else f"  {s:<12}        -")
print(f"  {'whole boot':<12} {total / 1e9:8.1f} s")
for n, r in ratios.items():
    print(f"  probe effect, {n}: {r:.3f}x untraced" if r else f"  probe effect, {n}: -")
for name, a in [("pin group", attach_pin), ("whole catalog", attach_all)]:
    if a["ratio"]:
        print(f"  start+attach+detach, {name} ({a['probes']} probes): foliobench {a['foliobench_ns'] / 1e6:.0f} ms, "
              f"bpftrace {a['bpftrace_ns'] / 1e6:.0f} ms, ratio {a['ratio']:.3f}")
    else:
        print(f"  start+attach+detach, {name}: no bpftrace comparison")
PY
for f in run fsdax rmap; do
  "$fb" report "$out/$f.json" | grep -i "probe effect" | sed "s/^/  $f: /" || true
done
