#!/usr/bin/env bash
# The whole test suite: install, then formatting, lints, unit tests and the integration
# tests, which run foliobench on this host and inside test VMs (Debian 6.12, 6.1 and the
# CONFIG_GUP_TEST kernel from ../shared/kernels when present).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
cargo test --workspace --locked
