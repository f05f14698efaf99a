#!/usr/bin/env bash
# Set up, build, and boot a topology in QEMU (default: topologies/default.toml).
# Arguments go to `cmk boot`, e.g. scripts/run.sh topologies/2x4.toml --json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "run: building cmk..." >&2
swift build --product cmk -q >&2
exec .build/debug/cmk boot "$@"
