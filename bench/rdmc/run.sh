#!/usr/bin/env bash
# Builds and runs bench_rdmc (RDMC throughput per algorithm vs sequential point-to-point
# writes and single-link bandwidth), with rdmc_node processes over libfabric tcp on loopback.
#   bench/rdmc/run.sh [bench_rdmc options]   e.g. --members 3 --sizes-mib 4,64 --block-kib 256
#   bench/rdmc/run.sh --quick                a short run (3 members, 1 and 16 MiB, 64 MiB/run)
#   bench/rdmc/run.sh --full                 adds 256 MiB messages (about 3 GiB of memory)
# SQUALL_BUILD_DIR picks the build tree (default build/release, configured if missing).
# Tables go to stdout (markdown), progress to stderr. Figures depend heavily on idle CPUs.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${SQUALL_BUILD_DIR:-build/release}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --target bench_rdmc rdmc_node sst_node
args=("$@")
if [ "${1:-}" = "--quick" ]; then
  args=(--members 3 --sizes-mib 1,16 --run-mib 64 "${@:2}")
fi
exec "$build/bench/rdmc/bench_rdmc" "${args[@]}"
