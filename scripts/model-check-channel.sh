#!/usr/bin/env bash
# Model-check the inter-kernel ring protocol (models/ring.pml) with spin.
# Exits non-zero if any configuration has an error, or if a deliberately
# broken variant (MUTANT) is NOT caught (the model must have teeth).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/models/ring.pml"
command -v spin >/dev/null || { echo "spin not installed (apt-get install spin)"; exit 2; }
command -v cc >/dev/null || { echo "a C compiler is needed"; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Run one configuration; prints a line; returns 0 if spin found no error.
check() {
    local name=$1; shift
    (
        cd "$work"
        rm -f pan* ring.pml.trail
        cp "$model" ring.pml
        spin -a "$@" ring.pml >spin.out 2>&1 || { cat spin.out; exit 3; }
        cc -O2 -DSAFETY -o pan pan.c 2>cc.out || { cat cc.out; exit 3; }
        ./pan -m200000 >pan.out 2>&1 || true
        errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | head -1)
        states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | head -1)
        if [ -z "$errors" ]; then cat pan.out; exit 3; fi
        if grep -q "max search depth too small" pan.out; then echo "$name: search depth too small"; exit 3; fi
        echo "$name: errors=$errors states=$states"
        [ "$errors" = 0 ]
    )
}

fail=0
for config in "-DN=2 -DM=4" "-DN=3 -DM=5" "-DN=2 -DM=4 -DSLEEP=1" "-DN=3 -DM=4 -DSLEEP=1" \
              "-DN=2 -DM=3 -DSCRIBBLES=1" "-DN=2 -DM=4 -DSCRIBBLES=2" "-DN=3 -DM=4 -DSCRIBBLES=1" \
              "-DN=3 -DM=5 -DSCRIBBLES=2" "-DN=2 -DM=3 -DSCRIBBLES=1 -DSLEEP=1" \
              "-DN=3 -DM=4 -DSCRIBBLES=1 -DSLEEP=1"; do
    # shellcheck disable=SC2086
    if ! check "ring $config" $config; then echo "FAIL: ring $config"; fail=1; fi
done
for mutant in "-DN=2 -DM=4 -DMUTANT=1" "-DN=2 -DM=3 -DSCRIBBLES=1 -DMUTANT=2"; do
    # shellcheck disable=SC2086
    if check "mutant $mutant (must fail)" $mutant; then
        echo "FAIL: mutant $mutant was not caught"; fail=1
    else
        echo "ok: mutant $mutant caught"
    fi
done
if [ $fail = 0 ]; then echo "model check: all configurations passed"; fi
exit $fail
