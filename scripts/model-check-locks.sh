#!/usr/bin/env bash
# Model-check the big locks (models/clh.pml, models/mcs.pml) with spin, for 3 cores:
# mutual exclusion, no deadlock, no livelock. Then check that spin does find the
# bugs planted by -DNOHOOK (deadlock), -DSPLITSWAP (mutual exclusion),
# so a passing run means something. Exits non-zero on any unexpected result.
# Needs: spin, gcc (Debian packages spin, gcc).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v spin >/dev/null || { echo "model-check-locks: spin is not installed (apt-get install spin)"; exit 2; }

failures=0
# check MODEL WHAT EXPECT [DEFINES...]: EXPECT is "pass" or "fail".
check() {
    local model="$1" what="$2" expect="$3"; shift 3
    local dir="$work/$(basename "$model" .pml)-$what-$*"
    dir="${dir// /_}"
    mkdir -p "$dir"
    cp "$root/models/$model" "$dir/"
    (
        cd "$dir"
        spin "$@" -a "$model" >spin.log 2>&1
        case "$what" in
            safety)   gcc -O2 -DSAFETY -o pan pan.c 2>>spin.log; ./pan -m1000000 >pan.log 2>&1 || true ;;
            liveness) gcc -O2 -DNP -o pan pan.c 2>>spin.log; ./pan -m1000000 -l -f >pan.log 2>&1 || true ;;
        esac
    )
    local errors states
    errors="$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$dir/pan.log" | head -1)"
    states="$(sed -n 's/^ *\([0-9e+.]*\) states, stored.*/\1/p' "$dir/pan.log" | head -1)"
    local found="pass"
    if [ -z "$errors" ]; then found="broken"; elif [ "$errors" != 0 ]; then found="fail"; fi
    if grep -q "max search depth too small" "$dir/pan.log"; then found="truncated"; fi
    local label="$model $what ${*:-(as written)}"
    if [ "$found" = "$expect" ]; then
        if [ "$expect" = pass ]; then
            echo "ok   $label: no errors, $states states"
        else
            echo "ok   $label: spin found the planted bug ($(grep -m1 -oE 'assertion violated[^(]*|invalid end state|non-progress cycle|acceptance cycle' "$dir/pan.log" || echo error))"
        fi
    else
        echo "FAIL $label: expected $expect, got $found"
        sed -n '1,25p' "$dir/pan.log"
        failures=$((failures + 1))
    fi
}

check clh.pml safety pass
check clh.pml liveness pass
check clh.pml safety fail -DNOHOOK
check clh.pml safety fail -DSPLITSWAP
check mcs.pml safety pass
check mcs.pml liveness pass
check mcs.pml safety fail -DNOHOOK
check mcs.pml safety fail -DSPLITSWAP

if [ "$failures" != 0 ]; then
    echo "model-check-locks: $failures check(s) failed"
    exit 1
fi
echo "model-check-locks: all checks passed"
