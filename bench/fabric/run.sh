#!/usr/bin/env bash
# Builds and runs bench_fabric (RMA write latency/bandwidth next to fi_pingpong).
#   bench/fabric/run.sh [bench_fabric options]     e.g. --sizes 8,4096 --iterations 2000
# SQUALL_BUILD_DIR picks the build tree (default build/release, configured if missing).
# Numbers depend heavily on idle CPUs: both sides busy-poll, so run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${SQUALL_BUILD_DIR:-build/release}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --target bench_fabric
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs" >&2
exec "$build/bench/fabric/bench_fabric" "$@"
