#!/usr/bin/env bash
# Installs what foliobench needs on a Debian 12 machine, idempotently: Debian packages,
# virtme-ng from PyPI into a virtual environment of foliobench's own (stock Debian has no
# pip, and its Python refuses system-wide installs: PEP 668), then checks the Rust
# toolchain. Sourced by main.sh and test.sh; safe to run again (installs only what is
# missing). Every step that fails says which one.
set -eEuo pipefail
trap 'echo "foliobench setup: failed (exit $?) at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR

APT_PACKAGES=(
  qemu-system-x86   # the test VM
  kmod              # depmod/modprobe: vng and the guest load modules
  busybox-static    # virtme-ng builds its initramfs with busybox
  ndctl daxctl      # pmem namespaces, JSON output
  clang llvm        # BPF programs (CO-RE)
  libelf-dev zlib1g-dev pkg-config  # libbpf
  bpftool           # vmlinux.h from BTF at build time
  bpftrace          # independent cross-checks in the tests
  xfsprogs e2fsprogs  # the fsdax suite: mkfs.xfs, mkfs.ext4
  python3 python3-venv  # virtme-ng's own environment (ensurepip is a separate package)
)
VIRTME_NG_VERSION=1.42
# Where virtme-ng lives: foliobench finds `vng` there too when it is not on PATH.
FOLIOBENCH_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/foliobench/venv"

if [ "$(id -u)" != 0 ]; then
  echo "foliobench setup: run as root (apt-get, /lib/modules links, namespaces)" >&2
  exit 3
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The kernel packages are resolved through apt-cache, which needs package lists.
if [ ${#missing[@]} -gt 0 ] || ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
  echo "foliobench setup: apt-get update${missing:+; installing ${missing[*]}}" >&2
  apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
fi

# virtme-ng, pinned, in a venv made with Debian's own Python (not whatever python3 comes
# first on PATH: a pyenv or conda one may vanish).
vng_version() { "$FOLIOBENCH_VENV/bin/vng" --version 2>/dev/null | awk '{print $2}' || true; }
if [ "$(vng_version)" != "$VIRTME_NG_VERSION" ]; then
  echo "foliobench setup: virtme-ng==$VIRTME_NG_VERSION into $FOLIOBENCH_VENV" >&2
  rm -rf "$FOLIOBENCH_VENV"
  /usr/bin/python3 -m venv "$FOLIOBENCH_VENV"
  "$FOLIOBENCH_VENV/bin/python" -m pip install -q --disable-pip-version-check "virtme-ng==$VIRTME_NG_VERSION"
  if [ "$(vng_version)" != "$VIRTME_NG_VERSION" ]; then
    echo "foliobench setup: $FOLIOBENCH_VENV/bin/vng does not report version $VIRTME_NG_VERSION after install" >&2
    exit 3
  fi
fi
export PATH="$FOLIOBENCH_VENV/bin:$PATH"

# Rust: the workspace's rust-version or newer. Debian 12's own rustc (1.63) is too old.
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
need_rust=$(sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../Cargo.toml")
have_rust=$(cargo --version 2>/dev/null | awk '{print $2}' || true)
if [ -z "$have_rust" ] || [ "$(printf '%s\n%s\n' "$need_rust" "$have_rust" | sort -V | head -1)" != "$need_rust" ]; then
  echo "foliobench setup: foliobench needs Rust >= $need_rust (rust-version in Cargo.toml); this machine has ${have_rust:-no cargo}." >&2
  echo "  Install a current toolchain with rustup (Debian 13 packages it as \`rustup\`; elsewhere see rustup's own installer), then run this again." >&2
  exit 3
fi
