#!/usr/bin/env bash
# Hub CPU and Redis work per pairing: the in-memory store against the Redis
# store, side by side in one run (rounds alternate), on this machine.
#
#   scripts/bench-store.sh                 # ROUNDS=3 PAIRINGS=20000 by default
#
# Starts a redis-server (append-only file, fsync every second: what a
# deployment runs) and two `tryst serve` processes with their per-address
# limits off, one per store, then runs `tryst bench hub --phases pair`
# against each in turn. Reports per round: pairings/s, pairings per hub
# CPU-second, and for Redis the commands it processed and its CPU per
# pairing. Needs redis-server, redis-cli and python3. Figures:
# docs/BENCHMARKS.md ("Room store: memory vs Redis").
#
# MEM=N measures memory per connection instead of pairings: N idle
# connections in rooms of two (`tryst bench hub --phases mem`) against each
# contender in turn, and per node the connections it holds (open file
# descriptors) and its RSS growth (/proc), so that two nodes behind HAProxy
# show what each holds. N ≤ 7000 with BALANCER=1 (HAProxy's maxconn here).
#
# BALANCER=1 adds a third contender: two more Redis nodes behind HAProxy
# (PROXY protocol, leastconn), whose pairings per CPU-second count both
# nodes' CPU and HAProxy's. On one machine that shows the cost of the
# extra hop, not scale-out. Needs haproxy.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
ROUNDS=${ROUNDS:-3}
PAIRINGS=${PAIRINGS:-20000}
WORKERS=${WORKERS:-64}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/tryst" ./cmd/tryst
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp" --save "" --appendonly yes --appendfsync everysec \
  --protected-mode no >"$tmp/redis.log" 2>&1 &
rpid=$!; pids+=("$rpid")
for _ in $(seq 300); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
head -c 32 /dev/urandom | base64 >"$tmp/hub-key"; chmod 600 "$tmp/hub-key"

start_serve() { # name, extra args...
  local name=$1; shift
  local port; port=$(free_port)
  local met; met=$(free_port)
  TRYST_TURN_SECRET=bench-store-secret-0123456789 "$tmp/tryst" serve --listen "127.0.0.1:$port" \
    --metrics-listen "127.0.0.1:$met" --turn-listen 127.0.0.1:0 --turn-tls-listen 127.0.0.1:0 \
    --hub-key-file "$tmp/hub-key" --state-dir "$tmp/$name" --log-level warn \
    --max-conns-per-ip -1 --credentials-per-ip -1 --rooms-per-ip -1 --idle-rooms-per-ip -1 "$@" \
    2>"$tmp/$name.log" &
  echo "$! $port $met"
}
# wait_ready URL: until it answers 200, for at most 30 s.
# start_serve runs in a subshell (process substitution): its PIDs are
# recorded here, so that the trap kills them.
read -r mpid mport mmet < <(start_serve memory)
read -r spid sport smet < <(start_serve redis --store "redis://127.0.0.1:$rport/0")
pids+=("$mpid" "$spid")
for p in "$mport" "$sport"; do wait_ready "http://127.0.0.1:$p/readyz"; done
stores="memory redis"
if [ "${BALANCER:-}" = 1 ]; then
  read -r apid aport amet < <(start_serve node-a --store "redis://127.0.0.1:$rport/0" --proxy-protocol-from 127.0.0.1/32)
  read -r bpid bport bmet < <(start_serve node-b --store "redis://127.0.0.1:$rport/0" --proxy-protocol-from 127.0.0.1/32)
  pids+=("$apid" "$bpid")
  lport=$(free_port)
  cat >"$tmp/haproxy.cfg" <<CFG
global
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend hubs
  bind 127.0.0.1:$lport
  default_backend nodes
backend nodes
  balance leastconn
  default-server send-proxy-v2
  server a 127.0.0.1:$aport
  server b 127.0.0.1:$bport
CFG
  haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
  hpid=$!; pids+=("$hpid")
  wait_ready "http://127.0.0.1:$lport/readyz"
  stores="memory redis balanced"
fi

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

if [ -n "${MEM:-}" ]; then
  printf '%-8s %-6s %12s %14s %14s\n' store node connections RSS-growth-MiB KiB/connection
  for store in $stores; do
    case $store in
      memory) nodes="$mpid"; port=$mport; met=$mmet ;;
      redis) nodes="$spid"; port=$sport; met=$smet ;;
      balanced) nodes="$apid $bpid"; port=$lport; met=$amet ;;
    esac
    declare -A r0 f0
    for p in $nodes; do r0[$p]=$(rss_kib "$p"); f0[$p]=$(fds "$p"); done
    # The bench holds the connections for --settle; they are counted
    # once all are up, then it closes them.
    "$tmp/tryst" bench hub --hub "http://127.0.0.1:$port" --metrics "http://127.0.0.1:$met/metrics" --phases mem \
      --conns "$MEM" --settle 20s --sources 127.0.0.2-127.0.0.41 >"$tmp/mem.txt" 2>&1 &
    bench=$!
    for _ in $(seq 600); do
      held=0; for p in $nodes; do held=$((held + $(fds "$p") - f0[$p])); done
      [ "$held" -ge "$MEM" ] && break
      sleep 0.1
    done
    sleep 3
    i=0
    for p in $nodes; do
      i=$((i + 1))
      n=$(( $(fds "$p") - f0[$p] )); g=$(( $(rss_kib "$p") - r0[$p] ))
      python3 -c "import sys; n, g = int(sys.argv[3]), int(sys.argv[4]); print(f'{sys.argv[1]:<8} {sys.argv[2]:<6} {n:12d} {g/1024:14.1f} {g/max(n,1):14.1f}')" \
        "$store" "$i" "$n" "$g"
    done
    wait "$bench" || { cat "$tmp/mem.txt"; exit 1; }
  done
  exit 0
fi
commands() { redis-cli -p "$rport" info stats | awk -F: '/^total_commands_processed/ {print $2+0}'; }
hz=$(getconf CLK_TCK)

printf '%-6s %-8s %12s %16s %18s %18s\n' round store pairings/s per-hub-CPU-s redis-cmds/pairing redis-CPU-us/pairing
for round in $(seq "$ROUNDS"); do
  for store in $stores; do
    # hub: the processes whose CPU counts as the hub's
    case $store in
      memory) hub=$mpid; port=$mport ;;
      redis) hub=$spid; port=$sport ;;
      balanced) hub="$apid $bpid $hpid"; port=$lport ;;
    esac
    h0=0; for p in $hub; do h0=$((h0 + $(cpu_ticks "$p"))); done
    c0=$(commands); r0=$(cpu_ticks "$rpid")
    "$tmp/tryst" bench hub --hub "http://127.0.0.1:$port" --phases pair --pairings "$PAIRINGS" --workers "$WORKERS" \
      --json >"$tmp/out.json"
    c1=$(commands); r1=$(cpu_ticks "$rpid")
    h1=0; for p in $hub; do h1=$((h1 + $(cpu_ticks "$p"))); done
    python3 - "$tmp/out.json" "$round" "$store" "$((c1 - c0))" "$((r1 - r0))" "$hz" "$((h1 - h0))" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["pairings"]
n = max(r["completed"], 1)
cmds, ticks, hz, hub = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
redis = sys.argv[3] != "memory"
print(f'{sys.argv[2]:<6} {sys.argv[3]:<8} {r["per_second"]:12.0f} {n / max(hub / hz, 1e-9):16.0f} '
      f'{(cmds / n if redis else 0):18.1f} {(ticks / hz * 1e6 / n if redis else 0):18.0f}')
PY
  done
done
