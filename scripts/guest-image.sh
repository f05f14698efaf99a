#!/usr/bin/env bash
# Build the default Linux guest of `cmk guest` into a cache outside the
# repository, once:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/cmk/guest/
#     Image               Debian bookworm's cloud arm64 kernel (raw arm64 Image)
#     Image.package       the package it came from (name and version)
#     busybox             busybox-static's arm64 binary (kept: the initramfs is
#                         rebuilt offline and without root when guest/ changes)
#     initramfs.cpio.gz   busybox, /dev/console and our /init (guest/init)
#     initramfs.init      the exact guest/init inside it: the cache key
#
# Idempotent and offline once built: apt is used only when Image or busybox is
# missing (`dpkg --add-architecture arm64`, `apt-get update` with root or sudo;
# `apt-get download` and `dpkg -x` need no root). The initramfs is rebuilt
# whenever guest/init differs from initramfs.init. Every file is written to a
# temporary name and renamed into place. Nothing binary lands in the repository.
#
#   scripts/guest-image.sh            build what is missing or stale
#   scripts/guest-image.sh --force    download and build everything again
#   scripts/guest-image.sh --print    print the cache folder and exit
#
# /dev/console: `cpio -o` can only archive a device node that exists on disk,
# and making one needs root. The initramfs is therefore two concatenated newc
# archives (the kernel's unpacker accepts any number): a tiny one written here
# by hand (/dev and the character device /dev/console 5,1, owner 0:0) and
# `cpio -o -H newc -R 0:0` of an ordinary staging folder for the rest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/cmk/guest"
init_src="$root/guest/init"
force=0
case "${1:-}" in
  --force) force=1 ;;
  --print) echo "$cache"; exit 0 ;;
  "") ;;
  *) echo "guest-image: unknown option \`$1' (--force, --print)" >&2; exit 2 ;;
esac

say() { echo "guest-image: $*" >&2; }
die() { echo "guest-image: error: $*" >&2; exit 1; }

[ -f "$init_src" ] || die "$init_src is missing"
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The arm64 Image header: "ARM\x64" at 0x38 (little-endian 0x644d5241).
is_arm64_image() {
  [ "$(od -An -tx1 -j 56 -N 4 "$1" 2>/dev/null | tr -d ' \n')" = "41524d64" ]
}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

# --- the Debian packages (only when the kernel or busybox is missing) -------
if [ $force -eq 1 ] || ! is_arm64_image "$cache/Image" 2>/dev/null || [ ! -x "$cache/busybox" ]; then
  command -v apt-get >/dev/null || die "apt-get not found: the default guest comes from Debian packages"
  command -v dpkg >/dev/null || die "dpkg not found"
  if ! dpkg --print-foreign-architectures | grep -qx arm64 && [ "$(dpkg --print-architecture)" != arm64 ]; then
    say "adding the arm64 architecture to dpkg"
    "${sudo_cmd[@]}" dpkg --add-architecture arm64
  fi
  say "apt-get update"
  "${sudo_cmd[@]}" apt-get update -q >&2 || die "apt-get update failed (network? sources?)"
  kernel_pkg=$(apt-cache depends linux-image-cloud-arm64:arm64 2>/dev/null \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-arm64\)\(:arm64\)\?$/\1/p' | head -n1)
  [ -n "$kernel_pkg" ] || die "cannot find the cloud kernel: \`apt-cache depends linux-image-cloud-arm64:arm64' names no linux-image-*-cloud-arm64 (is bookworm main in the apt sources?)"
  say "downloading $kernel_pkg:arm64 and busybox-static:arm64"
  mkdir -p "$tmp/debs" "$tmp/x"
  # As root, apt's download sandbox user (_apt) cannot enter our private
  # temporary folder: download as root then (the files are not installed).
  sandbox=()
  if [ "$(id -u)" -eq 0 ]; then sandbox=(-o APT::Sandbox::User=root); fi
  (cd "$tmp/debs" && apt-get download -q "${sandbox[@]}" "$kernel_pkg:arm64" "busybox-static:arm64" >&2) \
    || die "apt-get download failed"
  for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$tmp/x"; done
  vmlinuz=$(ls "$tmp"/x/boot/vmlinuz-* 2>/dev/null | head -n1)
  [ -n "$vmlinuz" ] || die "$kernel_pkg has no /boot/vmlinuz-*"
  is_arm64_image "$vmlinuz" || die "$vmlinuz is not an arm64 Image (no \"ARM\\x64\" at 0x38)"
  [ -x "$tmp/x/bin/busybox" ] || die "busybox-static has no /bin/busybox"
  version=$(dpkg-deb -f "$tmp"/debs/"${kernel_pkg}"_*.deb Version)
  cp "$vmlinuz" "$tmp/Image"
  echo "$kernel_pkg $version $(basename "$vmlinuz")" > "$tmp/Image.package"
  cp "$tmp/x/bin/busybox" "$tmp/busybox"
  mv -f "$tmp/Image" "$cache/Image"
  mv -f "$tmp/Image.package" "$cache/Image.package"
  mv -f "$tmp/busybox" "$cache/busybox"
  rm -f "$cache/initramfs.init"   # new busybox: rebuild the initramfs
  say "kernel: $(cat "$cache/Image.package") ($(stat -c %s "$cache/Image") bytes)"
fi

# --- the initramfs (when guest/init changed) -------------------------------
if [ $force -eq 0 ] && [ -f "$cache/initramfs.cpio.gz" ] && cmp -s "$init_src" "$cache/initramfs.init" 2>/dev/null; then
  say "up to date in $cache"
  exit 0
fi
command -v cpio >/dev/null || die "cpio not found: run scripts/setup.sh (installs cpio)"
command -v gzip >/dev/null || die "gzip not found"
say "building the initramfs (guest/init changed or missing)"

# One newc header (docs: Linux's Documentation/driver-api/early-userspace/
# buffer-format.rst): "070701", 13 eight-digit hex fields, the name with its
# NUL, padded to 4 bytes. Only entries without data are written here.
newc() {  # name mode(octal) rdevmajor rdevminor ino
  local name=$1 mode=$2 major=$3 minor=$4 ino=$5
  local namesize=$(( ${#name} + 1 ))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$ino" "$((8#$mode))" 0 0 1 0 0 0 0 "$major" "$minor" "$namesize" 0
  printf '%s\0' "$name"
  local pad=$(( (4 - (110 + namesize) % 4) % 4 ))
  head -c "$pad" /dev/zero
}
{
  newc dev 040755 0 0 1
  newc dev/console 020600 5 1 2
  newc TRAILER!!! 0 0 0 0
} > "$tmp/console.cpio"

stage="$tmp/root"
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc}
cp "$cache/busybox" "$stage/bin/busybox"
chmod 0755 "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
cp "$init_src" "$stage/init"
chmod 0755 "$stage/init"
(cd "$stage" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$tmp/rest.cpio"
cat "$tmp/console.cpio" "$tmp/rest.cpio" | gzip -9 -n > "$tmp/initramfs.cpio.gz"
cp "$init_src" "$tmp/initramfs.init"
mv -f "$tmp/initramfs.cpio.gz" "$cache/initramfs.cpio.gz"
mv -f "$tmp/initramfs.init" "$cache/initramfs.init"
say "initramfs: $(stat -c %s "$cache/initramfs.cpio.gz") bytes in $cache"
