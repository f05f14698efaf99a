# Sourced by boot-tests.sh and guest-tests.sh: one gdb batch session against
# a `cmk ... --gdb` run already started in the background.
#
# gdb_session PID STDERR-FILE REGISTERS OUTPUT-FILE
#   waits (up to 60 s) for the run to print its gdb-multiarch command on
#   STDERR-FILE, runs that command in batch mode (break at cmk_cluster_entry,
#   continue, `info registers REGISTERS`, detach) into OUTPUT-FILE, then waits
#   for the run; its exit status is left in `gdb_run_status`. Returns 1 (and
#   has killed the run) if no command appeared, 2 if gdb failed, 3 if the
#   session did not break, show the pc, and detach. Call it directly, not in
#   $(...): the run must be a child of the calling shell.
gdb_session() {
  local run=$1 err=$2 registers=$3 out=$4 attach=""
  for _ in $(seq 1 300); do
    attach=$(grep -o "gdb-multiarch -q .*" "$err" 2>/dev/null || true)
    [ -n "$attach" ] && break
    sleep 0.2
  done
  if [ -z "$attach" ]; then
    kill "$run" 2>/dev/null || true; wait "$run" 2>/dev/null || true
    return 1
  fi
  local gdb_status=0
  eval "timeout 60 $attach -batch -nx -ex 'break cmk_cluster_entry' -ex continue -ex 'info registers $registers' -ex detach" \
    >"$out" 2>&1 || gdb_status=$?
  gdb_run_status=0
  wait "$run" || gdb_run_status=$?
  [ "$gdb_status" -eq 0 ] || return 2
  grep -q "hit Breakpoint 1, .* in cmk_cluster_entry" "$out" \
    && grep -qE "^pc +0x[0-9a-f]+ +0x[0-9a-f]+ <cmk_cluster_entry\+[0-9]+>" "$out" \
    && grep -q "detached" "$out" || return 3
}
