#!/usr/bin/env bash
# Linux guest tests (docs/guest.md): boot the default Debian guest on cmk with
# `cmk guest --run` and check what the guest and the kernel print. Needs the
# default guest in the cache (scripts/setup.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build --product cmk -q
cmk=.build/debug/cmk
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
. tests/qemu/gdb-session.sh

# run NAME TOPOLOGY 'GUEST COMMANDS' [cmk guest options...]: output in $work/NAME.out
run_guest() {
  local name=$1 topology=$2 commands=$3
  shift 3
  local start=$SECONDS
  if ! "$cmk" guest "$topology" --run "$commands" --timeout 180 "$@" </dev/null >"$work/$name.out" 2>"$work/$name.err"; then
    fail "$name: cmk guest exited non-zero: $(tail -n 5 "$work/$name.out"; tail -n 5 "$work/$name.err")"
    return 1
  fi
  # The guest's tty ends its lines with CR LF.
  tr -d '\r' <"$work/$name.out" >"$work/$name.tmp" && mv "$work/$name.tmp" "$work/$name.out"
  echo "guest test $name: $((SECONDS - start)) s" >&2
}
has() {  # NAME REGEX DESCRIPTION
  grep -Eq "$2" "$work/$1.out" || fail "$1: $3 (no line matching '$2')"
}

# 1. The Debian kernel reaches its shell on one vCPU, runs commands, powers off.
if run_guest uname topologies/1x4.toml 'uname -r; nproc; grep -c processor /proc/cpuinfo'; then
  has uname '^6\.1\.[0-9]+-[0-9]+-cloud-arm64$' "the Debian cloud kernel's release"
  has uname '^1$' "nproc = 1"
  has uname '^guest: run exit=0$' "the commands succeed"
  has uname '^cmk: guest start vcpus=1 ' "the kernel starts vCPU 0"
  has uname '^cmk: guest power off$' "PSCI SYSTEM_OFF reached the kernel"
  has uname '^cmk: guest stage2 cluster=0 ipa=0x[0-9a-f]+-0x[0-9a-f]+ only ok$' "stage 2 maps only the guest region"
fi

# 2. Timer interrupts arrive (arch_timer rises) and the console is
#    interrupt-driven (the PL011's interrupt is registered).
if run_guest timer topologies/default.toml \
  'a=$(awk "/arch_timer/ {print \$2}" /proc/interrupts); sleep 1; b=$(awk "/arch_timer/ {print \$2}" /proc/interrupts); echo "ticks $a $b"; grep -c uart-pl011 /proc/interrupts'; then
  if ! python3 - "$work/timer.out" <<'PY'
import re, sys
m = [re.match(r"^ticks (\d+) (\d+)$", l) for l in open(sys.argv[1]).read().splitlines()]
m = [x for x in m if x]
sys.exit(0 if m and int(m[0].group(2)) > int(m[0].group(1)) > 0 else 1)
PY
  then fail "timer: arch_timer ticks did not rise: $(grep '^ticks' "$work/timer.out")"; fi
  has timer '^1$' "uart-pl011 in /proc/interrupts"
fi

# 3. An access outside the guest's memory: an abort in the guest (busybox
#    reports a bus error), one cmk line naming the IPA, and the kernel and the
#    guest keep running to a clean power-off with stage 2 unchanged.
if run_guest devmem topologies/1x4.toml \
  'devmem 0x41000000 32 0xdead; echo "write status $?"; devmem 0x41000000 32; echo "read status $?"; echo still-running' --stats; then
  has devmem '^cmk: guest abort ipa=0x41000000 pc=0x[0-9a-f]+ write region=unmapped' "the write is refused and logged"
  has devmem '^cmk: guest abort ipa=0x41000000 pc=0x[0-9a-f]+ read region=unmapped' "the read is refused and logged"
  has devmem '^write status 135$' "the write dies of SIGBUS in the guest"
  has devmem '^read status 135$' "the read dies of SIGBUS in the guest"
  has devmem '^still-running$' "the guest goes on"
  has devmem '^cmk: guest stage2 cluster=0 ipa=0x[0-9a-f]+-0x[0-9a-f]+ only ok$' "stage 2 unchanged"
  has devmem '^unmapped +2 ' "--stats counts two unmapped accesses"
  n=$(grep -c '^cmk: guest abort' "$work/devmem.out" || true)
  [ "$n" -eq 2 ] || fail "devmem: expected exactly 2 abort lines, found $n"
fi

# 4. The SMP guest: one vCPU per cluster (or per core, `[guest] vcpus =
#    "core"`), one NUMA node per cluster (counted from the topology file by
#    Python's tomllib, not by cmk), work pinned to every CPU, timer ticks and
#    IPIs on every CPU, every cluster's stage 2 re-checked, power-off with
#    status 0. With a vCPU per core, `--stats` also shows each cluster's big
#    lock (a row per cluster with its cores and figures).
for topology in topologies/default.toml topologies/4x1.toml topologies/4x2.toml topologies/uneven.toml \
  topologies/8x1.toml topologies/2x4-core.toml; do
  name=smp-$(basename "$topology" .toml)
  read -r cpus clusters placement cores < <(python3 -c '
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb"))
placement = t.get("guest", {}).get("vcpus", "cluster")
cores = [len(c["cores"]) for c in t["cluster"]]
print(sum(cores) if placement == "core" else len(cores), len(cores), placement, ",".join(map(str, cores)))' "$topology")
  options=()
  [ "$placement" = core ] && options=(--stats)
  run_guest "$name" "$topology" cmk-self-check ${options[@]+"${options[@]}"} || continue
  has "$name" "^guest: cpus=$cpus nodes=$clusters\$" "$cpus vCPUs in $clusters NUMA nodes"
  has "$name" '^guest: every cpu ran work$' "work pinned to every CPU ran"
  has "$name" '^guest: every cpu took timer ticks and IPIs$' "timer ticks and IPIs on every CPU"
  has "$name" '^guest: run exit=0$' "the self-check passed"
  has "$name" "^cmk: guest vcpu $((cpus - 1)) on cluster $((clusters - 1))( |\$)" "the last vCPU started on the last cluster"
  for ((c = 0; c < clusters; c++)); do
    has "$name" "^cmk: guest stage2 cluster=$c ipa=0x[0-9a-f]+-0x[0-9a-f]+ only ok\$" "cluster $c's stage 2 re-checked"
  done
  has "$name" '^cmk: guest power off$' "the guest powered off"
  if [ "$placement" = core ]; then
    IFS=, read -r -a per <<<"$cores"
    has "$name" '^big lock by cluster ' "--stats prints the big-lock table"
    for ((c = 0; c < clusters; c++)); do
      has "$name" "^$c +${per[c]} +[0-9]+ +[0-9]+ \([0-9.]+%\) " "--stats: cluster $c's big-lock row (its ${per[c]} cores)"
    done
  fi
done

# 5. CPU hot-unplug and plug across clusters: PSCI CPU_OFF on vCPU 1 (its
#    cluster tells the others it is off; Linux confirms with AFFINITY_INFO on
#    vCPU 0), then CPU_ON again (a message to cluster 1, which restarts it).
if run_guest hotplug topologies/default.toml \
  'echo 0 > /sys/devices/system/cpu/cpu1/online; echo "online after off: $(cat /sys/devices/system/cpu/online)"; echo 1 > /sys/devices/system/cpu/cpu1/online; echo "online after on: $(cat /sys/devices/system/cpu/online)"; cmk-self-check'; then
  has hotplug '^online after off: 0$' "vCPU 1 went offline"
  has hotplug '^online after on: 0-1$' "vCPU 1 came back"
  n=$(grep -c '^cmk: guest vcpu 1 on cluster 1$' "$work/hotplug.out" || true)
  [ "$n" -eq 2 ] || fail "hotplug: cluster 1 should start vCPU 1 twice, started it $n times"
  has hotplug '^guest: every cpu took timer ticks and IPIs$' "both CPUs work after the plug"
fi

# 6. A guest that reboots: cmk reports it and fails.
set +e
"$cmk" guest topologies/1x4.toml --run 'reboot -f' --timeout 180 </dev/null >"$work/reset.out" 2>"$work/reset.err"
status=$?
set -e
[ "$status" -eq 5 ] || fail "reset: expected exit status 5, got $status"
grep -q '^cmk: guest reset$' "$work/reset.out" || fail "reset: no 'cmk: guest reset' line"

# 6. cmk guest --gdb (docs/guest.md): QEMU's gdbstub, stopped before the first
#    instruction; the printed command, in batch mode, breaks at the cluster
#    entry, reads a register, continues, detaches; the guest's run completes.
check_gdb() {
  if ! command -v gdb-multiarch >/dev/null; then
    fail "cmk guest --gdb: gdb-multiarch not installed (scripts/setup.sh installs it)"
    return
  fi
  # --print-command names the attach command, with the vmlinux's symbols.
  : >"$work/vmlinux"
  if ! "$cmk" guest topologies/1x4.toml --gdb --gdb-port 4321 --vmlinux "$work/vmlinux" --print-command \
      </dev/null >"$work/gdb-print.out" 2>"$work/gdb-print.err" \
      || ! grep -q -- "-gdb tcp:127.0.0.1:4321 -S" "$work/gdb-print.out" \
      || ! grep -qF "gdb: gdb-multiarch -q $(pwd)/.build-kernel/aarch64-none-none-elf/release/cmk-kernel -ex 'add-symbol-file $work/vmlinux' -ex 'target remote 127.0.0.1:4321'" "$work/gdb-print.out"; then
    fail "cmk guest --gdb --print-command: no gdbstub options or attach command: $(cat "$work/gdb-print.out" "$work/gdb-print.err" | tail -n 5)"
  fi
  local port=$((20000 + RANDOM % 20000)) start=$SECONDS
  "$cmk" guest topologies/1x4.toml --gdb --gdb-port "$port" --run true --timeout 180 </dev/null \
    >"$work/gdb-guest.out" 2>"$work/gdb-guest.err" &
  local guest=$! result=0
  gdb_session "$guest" "$work/gdb-guest.err" "pc" "$work/gdb.txt" || result=$?
  local status=$gdb_run_status
  tr -d '\r' <"$work/gdb-guest.out" >"$work/gdb-guest.tmp" && mv "$work/gdb-guest.tmp" "$work/gdb-guest.out"
  if [ "$result" -eq 1 ]; then
    fail "cmk guest --gdb printed no gdb-multiarch command: $(cat "$work/gdb-guest.err")"
  elif [ "$result" -ne 0 ]; then
    fail "cmk guest --gdb: no break at cmk_cluster_entry, pc or detach: $(grep -v '^During symbol' "$work/gdb.txt" | tail -n 8)"
  elif [ "$status" -ne 0 ] || ! grep -q '^guest: run exit=0$' "$work/gdb-guest.out"; then
    fail "cmk guest --gdb: the guest's run did not complete after gdb detached (status $status): $(tail -n 3 "$work/gdb-guest.out"; tail -n 3 "$work/gdb-guest.err")"
  else
    echo "guest test gdb: broke at cmk_cluster_entry, read pc, detached; run exit=0: $((SECONDS - start)) s" >&2
  fi
}
check_gdb

if [ "$failures" -ne 0 ]; then
  echo "guest tests: $failures failure(s)" >&2
  exit 1
fi
echo "guest tests: all passed" >&2
