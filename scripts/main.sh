#!/usr/bin/env bash
# The main job, end to end: install, build, boot the default test VM (Debian 6.12, 2G of
# emulated pmem), check what it supports (doctor) and run the sweep in it: the memmap and pin
# suites (every geometry, 5 samples or timed rounds each; the pfnmap floor measured on a PCI
# BAR), the fsdax suite (ext4 and xfs -o dax, 256 MiB files) and the rmap suite (every folio size
# the kernel offers, 6 rounds; 64 MiB per round instead of the tool's 1 GiB, because this VM is
# software-emulated: at 256 MiB the rmap suite took 12 min 10 s, three quarters of it faulting
# in and zeroing fresh memory for each round, not the operations timed). Results land in
# ./results on the host, and the report of them in results/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -q
mkdir -p results
# How long the last main job took on this machine, as the estimate for this one.
took_file="${XDG_CACHE_HOME:-$HOME/.cache}/foliobench/main-job.seconds"
expect=()
if [ -s "$took_file" ]; then
  echo "foliobench: the main job took $(( $(cat "$took_file") / 60 )) min $(( $(cat "$took_file") % 60 )) s here last time; expect about as long (each progress line says how much is left)" >&2
  expect=(--expect "$(cat "$took_file")s")
else
  echo "foliobench: first main job on this machine: no estimate yet (its time is kept for the next one)" >&2
fi
started=$(date +%s)
# One boot for all of it: the guest runs the commands in turn (';'), stopping at a failure.
# rmap's 45 timings never reach +-5 % under emulation, so its rounds are capped at 6 (the
# fewest with a 95 % interval of the median) instead of twice --repeat: 10 rounds of its 4K
# folios alone took 5 minutes.
./target/release/foliobench vm --timeout 90m "${expect[@]}" -- \
  doctor --out results/doctor.json ';' \
  run --suite memmap,pin --out results/run.json ';' \
  run --suite fsdax --size 256M --out results/fsdax.json ';' \
  run --suite rmap --size 64M --max-repeat 6 --out results/rmap.json
mkdir -p "$(dirname "$took_file")" && echo $(( $(date +%s) - started )) > "$took_file"
./target/release/foliobench report results/run.json results/fsdax.json results/rmap.json \
  --html results/report.html --markdown results/report.md > results/report.txt
echo "foliobench: wrote results/doctor.json, results/run.json, results/fsdax.json, results/rmap.json and the report: results/report.html (results/report.md, results/report.txt)"
