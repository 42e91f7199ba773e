#!/usr/bin/env bash
# quick_puts: puts (and gets) against a fresh 3-node local cluster, with each node's context
# switches per second — the before/after check of docs/performance.md, without etcd.
#
#   bench/quick_puts.sh [--build DIR] [--root DIR] [--seconds S] [--conns "1 16 64 256"]
#                       [--gets] [--rate R]
#
# Starts tools/squall-local (REST on 127.0.0.1:8080-8082) from DIR (default build/release),
# preloads nothing, runs squall-loadgen closed-loop puts of 100 B values over 1,000 keys for
# S seconds (default 5, after a 1 s warmup) at each connection count, and prints one line per
# run: ops/s, p50/p99 ms, and the voluntary + involuntary context switches per second of
# each squalld (all its threads, from /proc/<pid>/task/*/status, over the run), then each
# squalld's CPU time (user + system) and context switches per request (warmup included, as
# the counters span the whole run) — the figures to compare on a shared, noisy machine, where
# ops/s follows the other load. --gets adds linearizable and stable gets at the same counts.
# --rate R runs an open loop of R requests/s in total instead of a closed loop: the same work
# for both sides of a comparison, so CPU per request compares fairly. The cluster is torn
# down at the end (also on failure).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="$repo/build/release"
root=/tmp/squall-quick-puts
seconds=5
conns="1 64"
gets=0
rate=0

while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$(realpath -m "${2:?}"); shift ;;
    --root) root=$(realpath -m "${2:?}"); shift ;;
    --seconds) seconds=${2:?}; shift ;;
    --conns) conns=${2:?}; shift ;;
    --gets) gets=1 ;;
    --rate) rate=${2:?}; shift ;;
    -h | --help) sed -n '3,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) echo "quick_puts: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case "$root" in /tmp/?*) ;; *) echo "quick_puts: --root must be under /tmp" >&2; exit 2 ;; esac

loadgen="$build/bench/loadgen/squall-loadgen"
local_cluster="$repo/tools/squall-local"
endpoints=127.0.0.1:8080,127.0.0.1:8081,127.0.0.1:8082

down() { "$local_cluster" down --root "$root" >/dev/null 2>&1 || true; }
trap down EXIT
rm -rf "$root"
"$local_cluster" up -n 3 --root "$root" --build "$build" >/dev/null

switches() {  # total context switches of every squalld, space-separated
  local id pid
  for id in 0 1 2; do
    pid=$(cat "$root/node$id/squalld.pid")
    cat /proc/"$pid"/task/*/status 2>/dev/null |
      awk '/ctxt_switches/ {sum += $2} END {printf "%d ", sum}'
  done
}

cpu_ticks() {  # user + system clock ticks of every squalld, space-separated
  local id pid
  for id in 0 1 2; do
    pid=$(cat "$root/node$id/squalld.pid")
    awk '{printf "%d ", $14 + $15}' /proc/"$pid"/stat
  done
}

run() {  # mix, connections
  local mix=$1 c=$2 before after cpu_before cpu_after start end json="$root/run.json"
  before=($(switches))
  cpu_before=($(cpu_ticks))
  start=$(date +%s.%N)
  "$loadgen" run --target squall --endpoints "$endpoints" -c "$c" --mix "$mix" --keys 1000 \
    --rate "$rate" --value-bytes 100 --duration "$seconds" --warmup 1 --json "$json" -q >/dev/null
  end=$(date +%s.%N)
  after=($(switches))
  cpu_after=($(cpu_ticks))
  local elapsed rates="" switched="" ticks=""
  elapsed=$(echo "$end - $start" | bc -l)
  for i in 0 1 2; do
    rates+=$(printf "%6.0f " "$(echo "(${after[$i]} - ${before[$i]}) / $elapsed" | bc -l)")
    switched+="$((after[i] - before[i])) "
    ticks+="$((cpu_after[i] - cpu_before[i])) "
  done
  python3 - "$json" "$mix" "$c" "$rates" "$switched" "$ticks" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_ms"]
requests = max(1, r.get("warmup_requests", 0) + sum(o["count"] for o in r["ops"].values()))
us_per_tick = 1e6 / int(sys.argv[7])
cpu = " ".join(f"{int(t) * us_per_tick / requests:5.0f}" for t in sys.argv[6].split())
ctx = " ".join(f"{int(s) / requests:4.1f}" for s in sys.argv[5].split())
print(f"{sys.argv[2]:>12} {sys.argv[3]:>4} conn: {r['ops_per_s']:9.0f} ops/s  "
      f"p50 {lat['p50']:7.3f} ms  p99 {lat['p99']:7.3f} ms  errors {sum(r['errors'].values())}"
      f"  ctx switches/s per node: {sys.argv[4]}"
      f" per request: {ctx}  CPU us per request per node: {cpu}")
EOF
}

if [ $gets = 1 ]; then
  "$loadgen" run --target squall --endpoints "$endpoints" -c 16 --mix put:1 --keys 1000 \
    --value-bytes 100 --requests 1000 --preload -q >/dev/null
fi
for c in $conns; do run put:1 "$c"; done
if [ $gets = 1 ]; then
  for c in $conns; do run get:1 "$c"; done
  for c in $conns; do run stable_get:1 "$c"; done
fi
