#!/usr/bin/env bash
# The main job, end to end: install, build, boot the default test VM (Debian 6.12, 2G of
# emulated pmem), check what it supports (doctor) and run the sweep in it (the memmap and pin
# suites: every geometry, 5 samples or timed rounds each). Results land in ./results on the
# host.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -q
mkdir -p results
./target/release/foliobench vm -- doctor --out results/doctor.json
./target/release/foliobench vm -- run --suite memmap,pin --out results/run.json
echo "foliobench: wrote results/doctor.json and results/run.json"
