#!/usr/bin/env bash
# What links into the kernel image, and how many lines of Swift it is built
# from (the minimality budget: seL4 is ~10k lines).
set -euo pipefail
cd "$(dirname "$0")/.."
elf=.build-kernel/aarch64-none-none-elf/release/cmk-kernel
size_tool=$(command -v llvm-size || echo "$(dirname "$(readlink -f "$(command -v swift)")")/llvm-size")
if [ -x "$size_tool" ]; then "$size_tool" -A "$elf" | awk '$1 ~ /^\.(text|rodata|data|bss)$/ {printf "kernel %-8s %8d bytes\n", $1, $2}'; fi
lines=$(find Sources/{Kernel,Cluster,BigLock,InterKernel,Arch,Boot} -name '*.swift' -exec cat {} + | grep -cvE '^\s*(//.*)?$' || true)
asm=$(cat Sources/ArchAsm/*.S Sources/ArchAsm/*.c Sources/ArchAsm/include/*.h | grep -cvE '^\s*(//.*)?$' || true)
echo "kernel source: $lines lines of Swift, $asm lines of assembly/C (non-blank, non-comment)"
