#!/usr/bin/env bash
# Squall vs etcd, side by side, in one command (docs/performance.md).
#
#   bench/vs_etcd/run.sh [--quick] [--no-install] [--no-build] [--build DIR] [--root DIR]
#                        [--profile] [--no-docs] [--keep]
#
# Installs the dependencies (deploy/install-deps.sh: etcd-server and etcd-client included),
# builds the release preset (squalld, squallctl, squall-loadgen), starts a 3-node Squall
# cluster (tools/squall-local, REST on 127.0.0.1:8080-8082) and a 3-node etcd 3.4 cluster
# (clients on 127.0.0.1:24790-24792, peers on 24800-24802, one data dir per member on the same
# disk, default fsync), runs every workload with squall-loadgen against one then the other,
# prints each figure side by side with the ratio Squall/etcd, writes the tables into
# docs/performance.md (between its "vs_etcd results" markers) and tears both clusters down.
#   --quick     short runs and fewer rows (about 2 minutes once built)
#   --profile   perf record of Squall node 0 during the 64-connection put run
#   --no-docs   print the tables only; --keep leaves both clusters running
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build="$repo/build/release"
root=/tmp/squall-vs-etcd
quick=0 install=1 compile=1 profile=0 docs=1 keep=0

usage() { sed -n '3,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "vs_etcd: $*" >&2; exit 1; }
note() { echo "[vs_etcd] $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --no-install) install=0 ;;
    --no-build) compile=0 ;;
    --build) build=$(realpath -m "${2:?}"); shift ;;
    --root) root=$(realpath -m "${2:?}"); shift ;;
    --profile) profile=1 ;;
    --no-docs) docs=0 ;;
    --keep) keep=1 ;;
    -h | --help) usage ;;
    *) echo "vs_etcd: unknown option $1" >&2; usage ;;
  esac
  shift
done
case "$root" in /tmp/?*) ;; *) die "--root must be a directory under /tmp (it is wiped)" ;; esac

loadgen="$build/bench/loadgen/squall-loadgen"
squall_endpoints=127.0.0.1:8080,127.0.0.1:8081,127.0.0.1:8082
etcd_client_port() { echo $((24790 + $1)); }
etcd_peer_port() { echo $((24800 + $1)); }
etcd_endpoints=127.0.0.1:24790,127.0.0.1:24791,127.0.0.1:24792
results="$root/results"

# ---------------------------------------------------------------------------------------
# Set-up and teardown.

build_all() {
  if [ $install = 1 ]; then "$repo/deploy/install-deps.sh"; fi
  command -v etcd >/dev/null || die "no etcd binary (deploy/install-deps.sh installs etcd-server)"
  if [ $compile = 1 ]; then
    if [ "$build" = "$repo/build/release" ]; then
      (cd "$repo" && cmake --preset release >/dev/null)
    else
      cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    cmake --build "$build" --target squalld squallctl squall-loadgen -j2
  fi
  [ -x "$loadgen" ] || die "no squall-loadgen at $loadgen"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_etcd() {
  local id cluster="" dir
  for id in 0 1 2; do
    cluster+="${cluster:+,}e$id=http://127.0.0.1:$(etcd_peer_port $id)"
    port_busy "$(etcd_client_port $id)" && die "port $(etcd_client_port $id) is in use"
  done
  for id in 0 1 2; do
    dir="$root/etcd/e$id"
    mkdir -p "$dir"
    # Default fsync and snapshot settings; the quota and compaction only keep long runs with
    # 1 MiB values from filling etcd's 2 GiB default backend (an alarm stops all writes).
    setsid etcd --name "e$id" --data-dir "$dir/data" \
      --listen-client-urls "http://127.0.0.1:$(etcd_client_port $id)" \
      --advertise-client-urls "http://127.0.0.1:$(etcd_client_port $id)" \
      --listen-peer-urls "http://127.0.0.1:$(etcd_peer_port $id)" \
      --initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer_port $id)" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token squall-vs-etcd \
      --quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
      --auto-compaction-mode revision --auto-compaction-retention 10000 \
      --log-level warn >"$dir/etcd.log" 2>&1 </dev/null &
    echo $! >"$dir/etcd.pid"
  done
  local deadline=$((SECONDS + 60)) healthy
  while true; do
    healthy=0
    for id in 0 1 2; do
      curl -s -m 2 "http://127.0.0.1:$(etcd_client_port $id)/health" | grep -q '"true"' &&
        healthy=$((healthy + 1))
    done
    [ $healthy = 3 ] && break
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$root"/etcd/e*/etcd.log >&2
      die "etcd not healthy after 60 s"
    fi
    sleep 0.5
  done
  note "etcd $(etcd --version | head -1 | awk '{print $3}') up: $etcd_endpoints"
}

stop_etcd() {
  local pidfile pid
  for pidfile in "$root"/etcd/e*/etcd.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

start_squall() {
  "$repo/tools/squall-local" up -n 3 --root "$root/squall" --build "$build" >&2
}

# After a Squall run: if a node has exited, the incident is recorded (it goes under the
# tables, with the nodes' last warnings), the logs are kept and the cluster is started afresh
# so the remaining rows still run; the next get row preloads again.
incidents=""
squall_fresh=0
check_squall() {
  "$repo/tools/squall-local" status --root "$root/squall" >/dev/null 2>&1 && return 0
  local n=$((${incident_count:-0} + 1)) id
  incident_count=$n
  note "Squall lost node(s) during '$1': restarting the cluster (logs in $results/incident$n)"
  mkdir -p "$results/incident$n"
  local stopped warnings
  stopped=$("$repo/tools/squall-local" status --root "$root/squall" 2>&1 | grep -c stopped ||
    true)
  incidents+="- During $1 (Squall): $stopped of 3 nodes exited. Last warnings:"$'\n'
  for id in 0 1 2; do
    cp "$root/squall/node$id/squalld.log" "$results/incident$n/node$id.log" 2>/dev/null || true
    warnings=$(grep -E ' (warning|error) ' "$root/squall/node$id/squalld.log" 2>/dev/null |
      tail -n 3 | sed "s/^/  - node $id: /" || true)
    [ -n "$warnings" ] && incidents+="$warnings"$'\n'
  done
  "$repo/tools/squall-local" down --root "$root/squall" >&2 || true
  "$repo/tools/squall-local" wipe --root "$root/squall" >&2
  start_squall
  squall_fresh=1
}

teardown() {
  local status=$?
  if [ $keep = 1 ]; then
    note "--keep: clusters left running (tools/squall-local down --root $root/squall;" \
      "kill \$(cat $root/etcd/e*/etcd.pid))"
    exit $status
  fi
  "$repo/tools/squall-local" down --root "$root/squall" >&2 || true
  stop_etcd
  local log
  for log in "$root"/squall/node*/squalld.log "$root"/etcd/e*/etcd.log; do
    [ -f "$log" ] && cp "$log" "$results/$(basename "$(dirname "$log")").$(basename "$log")"
  done
  rm -rf -- "$root/squall" "$root/etcd"
  exit $status
}

# ---------------------------------------------------------------------------------------
# Workloads.

duration=15 warmup=3 keys=10000 big_requests=200
if [ $quick = 1 ]; then duration=3 warmup=1 keys=1000 big_requests=20; fi
common=(--duration "$duration" --warmup "$warmup" --threads 2 --timeout-ms 20000)
tables=""

# The markdown header of a comparison table; $1 = 1 for watch tables.
header() {
  if [ "$1" = 1 ]; then
    echo "| workload | Squall events/s | etcd events/s | S/E | Squall put→event p50 ms |" \
      "etcd p50 ms | S/E | Squall p99 ms | etcd p99 ms | S/E | Squall p99.9 ms |" \
      "etcd p99.9 ms | errors S / E |"
  else
    echo "| workload | Squall ops/s | etcd ops/s | S/E | Squall latency p50 ms | etcd p50 ms |" \
      "S/E | Squall p99 ms | etcd p99 ms | S/E | Squall p99.9 ms | etcd p99.9 ms |" \
      "errors S / E |"
  fi
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
}

# pair <id> <label> <loadgen options...>: the same run against Squall, then etcd.
pair() {
  local id=$1 label=$2 target endpoints
  shift 2
  case " $* " in *" --preload "*) squall_fresh=0 ;; esac
  for target in squall etcd; do
    endpoints=$squall_endpoints
    [ $target = etcd ] && endpoints=$etcd_endpoints
    note "$label: $target"
    if [ $target = squall ]; then check_squall "the rows before \"$label\""; fi
    if [ $profile = 1 ] && [ $target = squall ] && [ "$id" = put-c64 ]; then
      start_profile
    fi
    "$loadgen" run --target $target --endpoints "$endpoints" "$@" \
      --json "$results/$id.$target.json" >"$results/$id.$target.txt" ||
      die "squall-loadgen failed on $label against $target (see $results/$id.$target.txt)"
    [ -n "${perf_pid:-}" ] && stop_profile
    if [ $target = squall ]; then check_squall "\"$label\""; fi
  done
  local row
  row=$("$loadgen" compare --label "$label" --squall "$results/$id.squall.json" \
    --etcd "$results/$id.etcd.json")
  echo "$row"
  tables+="$row"$'\n'
}

perf_pid=""
start_profile() {
  command -v perf >/dev/null || { note "no perf: no profile"; return; }
  local pid
  pid=$(cat "$root/squall/node0/squalld.pid")
  perf record -F 499 -g -p "$pid" -o "$results/squalld-node0.perf.data" \
    -- sleep $((warmup + duration)) >/dev/null 2>&1 &
  perf_pid=$!
}
stop_profile() {
  wait "$perf_pid" || true
  perf_pid=""
  perf report -i "$results/squalld-node0.perf.data" --no-children --sort comm,dso,symbol \
    --stdio 2>/dev/null | grep -v '^$' | head -120 >"$results/squalld-node0.profile.txt" || true
  note "profile of node 0: $results/squalld-node0.profile.txt"
}

# --preload for the first get row of a key space and after a Squall restart (both targets are
# preloaded, so the two runs stay identical).
preload_flag() {
  if [ $squall_fresh = 1 ]; then echo --preload; fi
}

run_workloads() {
  local c conns
  conns=(1 16 64 256)
  [ $quick = 1 ] && conns=(1 64)

  tables+=$'\n**Puts, 100 B values, closed loop** (key space '"$keys"$')\n\n'"$(header 0)"$'\n'
  for c in "${conns[@]}"; do
    pair "put-c$c" "put 100 B, $c conn" "${common[@]}" -c "$c" --mix put:1 \
      --keys "$keys" --value-bytes 100 --prefix p/
  done

  tables+=$'\n**Gets of 100 B values** (key space '"$keys"$', preloaded; linearizable:\n'
  tables+=$'Squall default, etcd default range; stable: Squall consistency=stable, etcd\n'
  tables+=$'serializable=true)\n\n'"$(header 0)"$'\n'
  squall_fresh=1
  for c in "${conns[@]}"; do
    pair "get-c$c" "linearizable get, $c conn" "${common[@]}" -c "$c" --mix get:1 \
      --keys "$keys" --value-bytes 100 --prefix g/ $(preload_flag)
    pair "sget-c$c" "stable get, $c conn" "${common[@]}" -c "$c" --mix stable_get:1 \
      --keys "$keys" --value-bytes 100 --prefix g/ $(preload_flag)
  done

  tables+=$'\n**Mixed and conditional**\n\n'"$(header 0)"$'\n'
  pair mix-c64 "50/50 put / linearizable get, 64 conn" "${common[@]}" -c 64 \
    --mix put:1,get:1 --keys "$keys" --value-bytes 100 --prefix g/ $(preload_flag)
  local cas_conns=(16 64)
  [ $quick = 1 ] && cas_conns=(16)
  for c in "${cas_conns[@]}"; do
    pair "cas-c$c" "conditional put (CAS), $c conn" "${common[@]}" -c "$c" --mix cas:1 \
      --keys "$keys" --value-bytes 100 --prefix c/
  done

  tables+=$'\n**1 MiB values** ('"$big_requests"$' measured requests, 16 keys)\n\n'
  tables+="$(header 0)"$'\n'
  local big_conns=(1 8)
  [ $quick = 1 ] && big_conns=(4)
  for c in "${big_conns[@]}"; do
    pair "big-put-c$c" "put 1 MiB, $c conn" --requests "$big_requests" --warmup 1 --threads 2 \
      --timeout-ms 60000 -c "$c" --mix put:1 --keys 16 --value-bytes 1048576 --prefix b/
  done
  squall_fresh=1
  pair big-get-c4 "linearizable get 1 MiB, 4 conn" --requests "$big_requests" --warmup 1 \
    --threads 2 --timeout-ms 60000 -c 4 --mix get:1 --keys 16 --value-bytes 1048576 \
    --prefix b/ $(preload_flag)

  tables+=$'\n**Watch** (put→event: from the put\'s send to the event\'s arrival at a watcher;\n'
  tables+=$'watchers spread over the 3 nodes / members)\n\n'"$(header 1)"$'\n'
  pair watch-1 "1 watcher, 100 puts/s" "${common[@]}" -c 4 --rate 100 --watchers 1 \
    --prefix w1/ --keys 1000 --value-bytes 100
  local fan_watchers=1000
  pair "watch-$fan_watchers" "$fan_watchers watchers, 10 puts/s" "${common[@]}" -c 4 \
    --rate 10 --watchers "$fan_watchers" --watcher-threads 2 --prefix wf/ --keys 1000 \
    --value-bytes 100
}

machine_section() {
  local cpu mode="${duration} s measured after a ${warmup} s warmup per run"
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  [ $quick = 1 ] && mode="--quick: $mode"
  cat <<EOF
Run started $started_at, \`bench/vs_etcd/run.sh$([ $quick = 1 ] && echo ' --quick')\` ($mode).

- Machine: $(nproc) CPUs ($cpu), $(uname -sr); data directories on
  $(df -h "$root" | awk 'NR == 2 {print $1 " (" $2 ")"}'); load average at start $load_start.
- Squall: 3 nodes from \`tools/squall-local\` (RelWithDebInfo, libfabric \`tcp\` on \`lo\`,
  1 shard x 3 replicas).
- etcd: $(etcd --version | head -1 | awk '{print $3}') (Debian \`etcd-server\`), 3 members,
  default fsync.
- Load: \`squall-loadgen\`, 2 event-loop threads, connections round-robin over the 3 nodes /
  members; client, servers and kernel share the same CPUs.
EOF
}

# Replaces what lies between the markers in docs/performance.md with the machine and tables.
write_docs() {
  local doc="$repo/docs/performance.md" begin='<!-- vs_etcd results begin -->'
  local end='<!-- vs_etcd results end -->'
  if ! grep -qF "$begin" "$doc" 2>/dev/null || ! grep -qF "$end" "$doc"; then
    note "no results markers in $doc: tables not written"
    return
  fi
  awk -v begin="$begin" -v end="$end" -v section="$results/section.md" '
    $0 == begin { print; while ((getline line < section) > 0) print line; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }' "$doc" >"$results/performance.md"
  cp "$results/performance.md" "$doc"
  note "tables written into $doc"
}

# ---------------------------------------------------------------------------------------

build_all
mkdir -p "$root"
rm -rf -- "$root/squall" "$root/etcd" "$results"
mkdir -p "$results"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
started_at=$(date -u +%FT%TZ)
trap teardown EXIT
start_squall
start_etcd
run_workloads
{
  machine_section
  printf '%s\n' "$tables"
  if [ -n "$incidents" ]; then
    printf '\n**Incidents** (Squall nodes that exited during a run; the cluster was restarted '
    printf 'afresh for the following rows):\n\n%s\n' "$incidents"
  fi
} >"$results/section.md"
echo
cat "$results/section.md"
[ $docs = 1 ] && write_docs
note "results (text and JSON per run): $results"
