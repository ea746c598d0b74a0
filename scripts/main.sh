#!/usr/bin/env bash
# The main job, end to end: install, build, boot the default test VM (Debian 6.12, 2G of
# emulated pmem), check what it supports (doctor) and run the sweep in it: the memmap and pin
# suites (every geometry, 3 to 10 samples or timed rounds each; under the instruction clock the
# :dev memories are mapped but not pinned; the pfnmap floor measured on a PCI BAR), the fsdax
# suite (ext4 and xfs -o dax, 256 MiB files) and the rmap suite (every folio size the kernel
# offers, 3 to 6 rounds; 16 MiB per round instead of the tool's 1 GiB, because this VM is
# software-emulated: at 256 MiB the rmap suite took 12 min 10 s, three quarters of it faulting in
# and zeroing fresh memory for each round, not the operations timed; at 32 MiB 138 s on a slower
# host of this kind, and the instruction clock repeats a 16 MiB round between boots within 0.46 %
# for anonymous memory, 2026-12-05). Results land in
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
# The VM's clock is QEMU's instruction counter under TCG (`vm --clock`, default auto), where
# kernel-side timings repeat to hundredths of a percent: 3 rounds that agree that closely
# settle a timing, so each measurement takes at least 3 rounds, and more (up to 10; rmap 6)
# only while a timing is imprecise. On the wall clock no 3 rounds agree that closely, and the
# rounds go on to the 6 that have a 95 % interval of the median, as before.
./target/release/foliobench vm --timeout 90m "${expect[@]}" -- \
  doctor --out results/doctor.json ';' \
  run --suite memmap,pin --repeat 3 --max-repeat 10 --out results/run.json ';' \
  run --suite fsdax --size 256M --repeat 3 --max-repeat 10 --out results/fsdax.json ';' \
  run --suite rmap --size 16M --repeat 3 --max-repeat 6 --out results/rmap.json
mkdir -p "$(dirname "$took_file")" && echo $(( $(date +%s) - started )) > "$took_file"
./target/release/foliobench report results/run.json results/fsdax.json results/rmap.json \
  --html results/report.html --markdown results/report.md > results/report.txt
echo "foliobench: wrote results/doctor.json, results/run.json, results/fsdax.json, results/rmap.json and the report: results/report.html (results/report.md, results/report.txt)"
