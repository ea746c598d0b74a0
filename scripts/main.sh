#!/usr/bin/env bash
# The main job, end to end: install, build, boot the default test VM (Debian 6.12, 2G of
# emulated pmem), check what it supports (doctor) and run the sweep in it (the memmap suite:
# every geometry, 5 samples each). Results land in ./results on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -q
mkdir -p results
./target/release/foliobench vm -- doctor --out results/doctor.json
./target/release/foliobench vm -- run --suite memmap --out results/memmap.json
echo "foliobench: wrote results/doctor.json and results/memmap.json"
