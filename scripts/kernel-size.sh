#!/usr/bin/env bash
# What links into the kernel image, how many lines of source it is built from
# (the minimality budget: seL4 is ~10k lines), and two checks that fail the
# build: no heap (the kernel has none) and no lazily initialised globals
# (swift_once: hidden work and a hidden lock on every access).
set -euo pipefail
cd "$(dirname "$0")/.."
elf=.build-kernel/aarch64-none-none-elf/release/cmk-kernel
bin=$(dirname "$(readlink -f "$(command -v swift)")")
"$bin/llvm-objdump" -h "$elf" | while read -r _ name size _; do
  case "$name" in .text|.rodata|.data|.bss) printf 'kernel %-8s %8d bytes\n' "$name" "$((16#$size))" ;; esac
done
swift_lines=$(find Sources/{Kernel,Cluster,BigLock,InterKernel,Arch,Boot,VMM} -name '*.swift' -exec cat {} + | grep -cvE '^\s*(//.*)?$' || true)
asm_lines=$(cat Sources/ArchAsm/*.S Sources/ArchAsm/*.c Sources/ArchAsm/include/*.h | grep -cvE '^\s*(//.*)?$' || true)
echo "kernel source: $swift_lines lines of Swift, $asm_lines lines of assembly/C (non-blank, non-comment)"
forbidden=$("$bin/llvm-nm" "$elf" | grep -E ' (swift_once|posix_memalign|malloc|free|swift_allocObject|swift_slowAlloc)$' || true)
if [ -n "$forbidden" ]; then
  echo "kernel image links forbidden runtime symbols (heap or lazy globals):" >&2
  echo "$forbidden" >&2
  exit 1
fi
echo "kernel image: no heap, no lazily initialised globals"
# The image (its loaded .data included) must end below the root task's window
# (Machine.rootTaskAddress, RAM base + 12 MiB), where QEMU loads the root task.
image_end=$("$bin/llvm-nm" "$elf" | awk '$3 == "__image_end" { print $1 }')
if (( 16#$image_end > 0x40C00000 )); then
  echo "kernel image ends at 0x$image_end, inside the root task's window (0x40c00000)" >&2
  exit 1
fi
echo "kernel image ends at 0x$image_end, below the root task's window (0x40c00000)"
# The EL0 trap fastpath (vectors.S cmk_fastpath_entry) calls cmk_fastpath
# before it saves the thread's FP/SIMD registers: nothing it reaches may use
# them, except the explicit save and load (cmk_fp_save, cmk_fp_load). Direct
# branches are followed; the only indirect calls are the big lock's wait hint
# (ClusterMain installs cmk_cpu_relax), checked as well.
fp_uses=$("$bin/llvm-objdump" -d --no-show-raw-insn "$elf" | awk -v root=cmk_fastpath '
  /^[0-9a-f]+ <.*>:$/ { fn = $2; gsub(/[<>:]/, "", fn); next }
  fn != "" && NF { body[fn] = body[fn] "\n" $0 }
  END {
    skip["cmk_fp_save"] = 1; skip["cmk_fp_load"] = 1
    n = 0; queue[++n] = root; queue[++n] = "cmk_cpu_relax"; seen[root] = 1; seen["cmk_cpu_relax"] = 1
    for (head = 1; head <= n; head++) {
      f = queue[head]
      if (f in skip) continue
      if (!(f in body)) { if (f == root) print "no " root " in the image"; continue }
      m = split(body[f], lines, "\n")
      for (i = 1; i <= m; i++) {
        ins = lines[i]; sub(/^[^\t]*\t/, "", ins)
        code = ins; sub(/\/\/.*/, "", code); sub(/<.*/, "", code)
        if (code ~ /[ \t,\[](q|d|s|b|h|v)[0-9]+([ \t,.\]]|$)/ || code ~ /fpsr|fpcr/) print f ": " lines[i]
        if (match(ins, /<[^>+]+/)) { t = substr(ins, RSTART + 1, RLENGTH - 1); if (!(t in seen)) { seen[t] = 1; queue[++n] = t } }
      }
    }
  }')
if [ -n "$fp_uses" ]; then
  echo "the trap fastpath reaches FP/SIMD instructions (it runs before the thread's FP/SIMD registers are saved):" >&2
  echo "$fp_uses" >&2
  exit 1
fi
echo "kernel trap fastpath: no FP/SIMD instructions reached from cmk_fastpath"
