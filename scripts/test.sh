#!/usr/bin/env bash
# The whole test suite: install, then formatting, lints, unit tests and the integration
# tests, which run foliobench on this host and inside test VMs (Debian 6.12, 6.1 and the
# CONFIG_GUP_TEST kernel from ../shared/kernels when present).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# Test-only tools: chromium (the HTML report is loaded in a real headless browser) and the
# kernel's own KTAP parser (tools/testing/kunit/kunit_parser.py, from Debian's linux-source
# package: only its two files are kept).
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "foliobench setup: installing chromium" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium >/dev/null
fi
export FOLIOBENCH_KUNIT_DIR="${FOLIOBENCH_KUNIT_DIR:-$HOME/.cache/foliobench/kunit}"
if [ ! -f "$FOLIOBENCH_KUNIT_DIR/kunit_parser.py" ]; then
  echo "foliobench setup: fetching the kernel's KTAP parser (linux-source-6.12)" >&2
  tmp=$(mktemp -d)
  chmod 0777 "$tmp"  # apt downloads as its sandbox user
  (cd "$tmp" && apt-get download -qq linux-source-6.12 \
    && dpkg-deb --fsys-tarfile linux-source-6.12_*.deb \
      | tar -xO --wildcards './usr/src/linux-source-6.12.tar.xz' \
      | tar -xJ --wildcards '*/tools/testing/kunit/kunit_parser.py' '*/tools/testing/kunit/kunit_printer.py')
  mkdir -p "$FOLIOBENCH_KUNIT_DIR"
  cp "$tmp"/linux-source-6.12/tools/testing/kunit/kunit_p*.py "$FOLIOBENCH_KUNIT_DIR"/
  rm -rf "$tmp"
fi
# KernelCI's own schema package validates `compare --format kcidb` (pinned, own venv).
KCIDB_IO_VERSION=141
export FOLIOBENCH_KCIDB_VENV="${FOLIOBENCH_KCIDB_VENV:-$HOME/.cache/foliobench/kcidb-venv}"
if ! "$FOLIOBENCH_KCIDB_VENV/bin/python" -c "import kcidb_io" 2>/dev/null; then
  echo "foliobench setup: kcidb-io==$KCIDB_IO_VERSION into $FOLIOBENCH_KCIDB_VENV" >&2
  rm -rf "$FOLIOBENCH_KCIDB_VENV"
  /usr/bin/python3 -m venv "$FOLIOBENCH_KCIDB_VENV"
  "$FOLIOBENCH_KCIDB_VENV/bin/python" -m pip install -q --disable-pip-version-check "kcidb-io==$KCIDB_IO_VERSION"
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -q -- -D warnings
cargo test --workspace --locked
