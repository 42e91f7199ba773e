#!/usr/bin/env bash
# Builds and runs bench_sst (SMC message rate vs point-to-point sends, single-link bandwidth,
# failure-detection time), all with sst_node processes over libfabric tcp on loopback.
#   bench/sst/run.sh [bench_sst options]   e.g. --only smc --messages 50000 --repeat 5
#   bench/sst/run.sh --quick               a short run (CI size: fewer messages and trials)
# SQUALL_BUILD_DIR picks the build tree (default build/release, configured if missing).
# The tables go to stdout (markdown), progress to stderr. Figures depend heavily on idle CPUs:
# every member process polls, so run on a quiet machine and compare within one invocation.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${SQUALL_BUILD_DIR:-build/release}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --target bench_sst sst_node
# The fabric layer's benchmark is shown next to our link stream when it builds.
cmake --build "$build" --target bench_fabric >/dev/null 2>&1 || true
args=("$@")
if [ "${1:-}" = "--quick" ]; then
  args=(--messages 5000 --repeat 1 --trials 3 --link-mib 64 "${@:2}")
fi
exec "$build/bench/sst/bench_sst" "${args[@]}"
