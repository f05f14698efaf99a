#!/usr/bin/env bash
# Set up, build, and run the main job: boot a topology (default:
# topologies/default.toml) in QEMU with the default Linux guest, one vCPU per
# cluster. On a terminal: the guest's interactive shell (`poweroff` ends it).
# Without a terminal: the guest's self-check (CPUs, NUMA nodes, work pinned to
# every CPU, timer ticks and IPIs on every CPU), then power-off.
# Arguments go to `cmk guest`, e.g. scripts/run.sh topologies/4x2.toml --stats
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "run: building cmk..." >&2
swift build --product cmk -q >&2
if [ -t 0 ] && [ -t 1 ]; then
  exec .build/debug/cmk guest "$@"
fi
exec .build/debug/cmk guest "$@" --run cmk-self-check
