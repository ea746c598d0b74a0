#!/usr/bin/env bash
# Installs what foliobench needs on a Debian 12 machine of this kind, idempotently:
# Debian packages, virtme-ng from PyPI, then builds the workspace. Sourced by main.sh
# and test.sh; safe to run again (installs only what is missing).
set -euo pipefail

APT_PACKAGES=(
  qemu-system-x86   # the test VM (software emulation here)
  kmod              # depmod/modprobe: vng and the guest load modules
  busybox-static    # virtme-ng builds its initramfs with busybox
  ndctl daxctl      # pmem namespaces, JSON output
  clang llvm        # BPF programs (CO-RE)
  libelf-dev zlib1g-dev pkg-config  # libbpf
  bpftool           # vmlinux.h from BTF at build time
  bpftrace          # independent cross-checks in the tests
  xfsprogs e2fsprogs  # the fsdax suite: mkfs.xfs, mkfs.ext4
)
VIRTME_NG_VERSION=1.42

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
  apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v vng >/dev/null 2>&1 || [ "$(vng --version 2>/dev/null | awk '{print $2}')" != "$VIRTME_NG_VERSION" ]; then
  echo "foliobench setup: pip install virtme-ng==$VIRTME_NG_VERSION" >&2
  python3 -m pip install -q --root-user-action=ignore "virtme-ng==$VIRTME_NG_VERSION"
  hash -r
fi
# pyenv installs console scripts behind shims; make sure vng is on PATH for what follows.
if ! command -v vng >/dev/null 2>&1; then
  export PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
fi
command -v vng >/dev/null || { echo "foliobench setup: vng not on PATH after install" >&2; exit 3; }
