#!/usr/bin/env bash
# Set up and run every test: both builds, host tests, ThreadSanitizer stress
# tests, model checks, and QEMU boots. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*" >&2; }

step "setup"
scripts/setup.sh

step "host build (every target)"
swift build

step "bare-metal build (every portable module, Embedded Swift, aarch64-none-none-elf)"
swift build --triple aarch64-none-none-elf --toolset qemu/toolset.json -c release \
  --product cmk-kernel --scratch-path .build-kernel
scripts/kernel-size.sh

step "root task (EL0, Embedded Swift, aarch64-none-none-elf)"
scripts/root-task.sh

step "host tests (kernel property tests: 1,000,000 steps)"
CMK_PROPERTY_STEPS=1000000 swift test

tsan_filters=()
for t in BigLockTests InterKernelTests; do
  [ -d "Tests/$t" ] && tsan_filters+=("$t")
done
if ((${#tsan_filters[@]})); then
  step "ThreadSanitizer stress tests (${tsan_filters[*]})"
  filter=$(IFS='|'; echo "${tsan_filters[*]}")
  swift test --sanitize=thread --scratch-path .build-tsan --filter "$filter"
fi

for check in scripts/model-check-*.sh; do
  [ -e "$check" ] || continue
  step "model check: $check"
  "$check"
done

step "QEMU boots"
tests/qemu/boot-tests.sh

step "Linux guest (cmk guest)"
tests/qemu/guest-tests.sh

step "all tests passed"
