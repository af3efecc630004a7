#!/usr/bin/env bash
# Memory per idle connection, as `tryst bench hub --phases mem` measures it
# (RSS growth / connections held), for this tree against a baseline commit
# (BASE, default 0b75463, the code issue 15 was filed at) and, if given,
# PREV (another commit), side by side in one run, rounds alternating, each
# against a fresh `tryst serve` with the in-memory store and its per-address
# limits off.
#
#   scripts/bench-mem.sh       # ROUNDS=2 CONNS=19900 SETTLES="3s 20s"
#
# The connections come from 40 loopback addresses (127.0.0.2-41) so that
# 19,900 of them stay clear of the ephemeral ports of one address; RLIMIT_NOFILE
# must allow CONNS plus a few hundred (20,000 here). TLS=1 serves WSS with a
# self-signed certificate (openssl) that the bench trusts (--ca-file). Figures:
# docs/BENCHMARKS.md ("Per-core scaling and memory per connection").
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
BASE=${BASE:-0b75463}
PREV=${PREV:-}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-19900}
SETTLES=${SETTLES:-3s 20s}
TLS=${TLS:-}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for w in base prev; do git worktree remove --force "$tmp/$w" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

go build -o "$tmp/new" ./cmd/tryst
builds=(base new)
git worktree add --detach "$tmp/base" "$BASE" >/dev/null 2>&1
(cd "$tmp/base" && go build -o "$tmp/base.bin" ./cmd/tryst)
mv "$tmp/base.bin" "$tmp/base-bin"
if [ -n "$PREV" ]; then
  git worktree add --detach "$tmp/prev" "$PREV" >/dev/null 2>&1
  (cd "$tmp/prev" && go build -o "$tmp/prev-bin" ./cmd/tryst)
  builds=(base prev new)
fi
bin() { case $1 in new) echo "$tmp/new" ;; *) echo "$tmp/$1-bin" ;; esac; }
scheme=http tls=() trust=()
if [ -n "$TLS" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-mem \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  scheme=https tls=(--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem") trust=(--ca-file "$tmp/cert.pem")
fi

printf '%-6s %-6s %-5s %s\n' round settle build 'memory per connection'
for round in $(seq "$ROUNDS"); do
  for settle in $SETTLES; do
    for build in "${builds[@]}"; do
      port=$(free_port); mport=$(free_port)
      extra=(--max-conns-per-ip -1)
      # The baseline has neither a state directory nor these limits.
      [ "$build" = base ] || extra+=(--state-dir "$tmp/state" --credentials-per-ip -1 --rooms-per-ip -1 --idle-rooms-per-ip -1)
      TRYST_TURN_SECRET=bench-mem-secret-0123456789 "$(bin "$build")" serve \
        --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$mport" --turn-listen 127.0.0.1:0 \
        --turn-tls-listen 127.0.0.1:0 --log-level warn "${tls[@]}" "${extra[@]}" 2>"$tmp/$build.log" &
      spid=$!; pids+=("$spid")
      wait_ready "http://127.0.0.1:$mport/metrics"
      line=$("$tmp/new" bench hub --hub "$scheme://127.0.0.1:$port" "${trust[@]}" --metrics "http://127.0.0.1:$mport/metrics" \
        --sources 127.0.0.2-127.0.0.41 --conns "$CONNS" --phases mem --settle "$settle" | grep '^memory per connection')
      kill -9 "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
      printf '%-6s %-6s %-5s %s\n' "$round" "$settle" "$build" "${line#memory per connection}"
    done
  done
done
