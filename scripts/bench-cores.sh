#!/usr/bin/env bash
# Pairings per hub CPU-second at GOMAXPROCS 1 and 2: this tree against a
# baseline commit (BASE, default 0b75463, the code issue 15 was filed at),
# side by side in one run, rounds alternating, each against a fresh
# `tryst serve` with the in-memory store and its per-address limits off.
#
#   scripts/bench-cores.sh            # ROUNDS=3 PAIRINGS=20000 PROCS="1 2"
#
# At GOMAXPROCS 1 the hub is pinned to CPU 0 and the load generator to the
# others (taskset), so the hub's one core is its own; at larger P both share
# the machine, and only the hub's own CPU (from /proc) is counted. The same
# bench client (this tree's) drives both builds. PROFILE=dir also saves a
# 10 s CPU profile of each serve (one per round, build and P). Figures:
# docs/BENCHMARKS.md ("Hub: per-core scaling").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
BASE=${BASE:-0b75463}
ROUNDS=${ROUNDS:-3}
PAIRINGS=${PAIRINGS:-20000}
WORKERS=${WORKERS:-64}
PROCS=${PROCS:-1 2}
ncpu=$(nproc)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/new" ./cmd/tryst
git worktree add --detach "$tmp/base" "$BASE" >/dev/null 2>&1
(cd "$tmp/base" && go build -o "$tmp/old" ./cmd/tryst)
hz=$(getconf CLK_TCK)

printf '%-6s %-4s %-6s %12s %16s\n' round P build pairings/s per-hub-CPU-s
for round in $(seq "$ROUNDS"); do
  for P in $PROCS; do
    hubcpus=0-$((ncpu - 1)); gencpus=$hubcpus
    if [ "$P" -lt "$ncpu" ]; then hubcpus=0-$((P - 1)); gencpus=$P-$((ncpu - 1)); fi
    for build in old new; do
      port=$(free_port); mport=$(free_port)
      # The baseline has neither a state directory nor these limits.
      extra=(--max-conns-per-ip -1)
      [ "$build" = new ] && extra+=(--state-dir "$tmp/state" --credentials-per-ip -1 --rooms-per-ip -1 --idle-rooms-per-ip -1)
      TRYST_TURN_SECRET=bench-cores-secret-0123456789 GOMAXPROCS=$P taskset -c "$hubcpus" "$tmp/$build" serve \
        --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" --turn-listen 127.0.0.1:0 \
        --turn-tls-listen 127.0.0.1:0 --log-level warn "${extra[@]}" \
        2>"$tmp/$build.log" &
      spid=$!; pids+=("$spid")
      wait_ready "http://127.0.0.1:$mport/metrics"
      prof=
      if [ -n "${PROFILE:-}" ]; then
        mkdir -p "$PROFILE"
        (sleep 2; curl -fs -o "$PROFILE/cpu-$build-P$P-r$round.pprof" \
          "http://127.0.0.1:$mport/debug/pprof/profile?seconds=10") &
        prof=$!
      fi
      h0=$(cpu_ticks "$spid")
      taskset -c "$gencpus" "$tmp/new" bench hub --hub "http://127.0.0.1:$port" --phases pair \
        --pairings "$PAIRINGS" --workers "$WORKERS" --json >"$tmp/out.json"
      h1=$(cpu_ticks "$spid")
      [ -z "$prof" ] || wait "$prof"
      kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
      python3 - "$tmp/out.json" "$round" "$P" "$build" "$hz" "$((h1 - h0))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["pairings"]
n = max(r["completed"], 1)
hz, ticks = int(sys.argv[5]), int(sys.argv[6])
print(f'{sys.argv[2]:<6} {sys.argv[3]:<4} {sys.argv[4]:<6} {r["per_second"]:12.0f} {n / max(ticks / hz, 1e-9):16.0f}'
      + (f'   {r["failed"]} failed: {r.get("first_error", "")}' if r["failed"] else ''))
PY
    done
  done
done
