#!/usr/bin/env bash
# Build the EL0 root task (docs/design.md, "Builds") to
# .build-root-task/cmk-root-task.bin, the raw file image QEMU loads, and check
# it: it links no kernel code, and file + bss fit RootTaskLayout.imageLimit.
# `cmk boot` does the same build itself when a source is newer.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --triple aarch64-none-none-elf --toolset qemu/toolset-root-task.json -c release \
  --product cmk-root-task --scratch-path .build-root-task
elf=.build-root-task/aarch64-none-none-elf/release/cmk-root-task
bin=$(dirname "$(readlink -f "$(command -v swift)")")
"$bin/llvm-objcopy" -O binary "$elf" .build-root-task/cmk-root-task.bin
file_size=$(stat -c %s .build-root-task/cmk-root-task.bin)
symbol() { "$bin/llvm-nm" "$elf" | awk -v s="$1" '$3 == s { print $1 }'; }
image_end=$((16#$(symbol __image_end)))
image_start=$((16#$(symbol __image_start)))
memory_size=$((image_end - image_start))
limit=$((0x400000))  # RootTaskLayout.imageLimit
echo "root task: $file_size bytes file image, $memory_size bytes in memory (with bss; limit $limit)"
if ((image_start != 0x400000)); then
  echo "root task not linked at RootTaskLayout.imageBase (0x400000)" >&2; exit 1
fi
if ((memory_size > limit)); then
  echo "root task image exceeds RootTaskLayout.imageLimit" >&2; exit 1
fi
# No kernel code: the kernel's modules and entry points must not appear.
kernel=$("$bin/llvm-nm" "$elf" | grep -E '\$e(6Kernel|4Boot|7Cluster|7BigLock|11InterKernel|4Arch|3VMM)|cmk_(cluster_entry|vectors|secondary_entry)' || true)
if [ -n "$kernel" ]; then
  echo "root task links kernel symbols:" >&2
  echo "$kernel" >&2
  exit 1
fi
echo "root task: no kernel symbols"
