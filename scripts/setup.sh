#!/usr/bin/env bash
# Install what cmk needs on a fresh Debian/Ubuntu machine. Idempotent: it only
# calls apt-get when a package is missing. Needs root or sudo for that.
#   qemu-system-arm       qemu-system-aarch64, to boot the kernel
#   device-tree-compiler  dtc, to read QEMU's device tree (docs, debugging)
#   libnuma-dev           hosted clusters: partitions on their NUMA node
#   spin                  model checks of the lock and channel protocols
#   cpio                  the default guest's initramfs (scripts/guest-image.sh)
#   gdb-multiarch         `cmk boot --gdb`: debugging the kernel in QEMU (docs/boot.md)
# Then builds the default Linux guest of `cmk guest` into
# ${XDG_CACHE_HOME:-~/.cache}/cmk/guest (once; offline afterwards).
set -euo pipefail
packages=(qemu-system-arm device-tree-compiler libnuma-dev spin cpio gdb-multiarch)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
if ! command -v swift >/dev/null; then
  echo "setup: swift not found: install the Swift 6.3 toolchain and put it on PATH" >&2
  exit 1
fi
"$(dirname "$0")/guest-image.sh"
