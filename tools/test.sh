#!/usr/bin/env bash
# The whole test suite in one command: installs dependencies, configures, builds, runs ctest.
#   tools/test.sh            release build (optimized, assertions on)
#   tools/test.sh --debug    Debug build with AddressSanitizer + UndefinedBehaviorSanitizer
# Extra arguments after `--` go to ctest (e.g. `-- -R fabric`).
set -euo pipefail
cd "$(dirname "$0")/.."

preset=release
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) preset=debug ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "usage: tools/test.sh [--debug] [-- ctest-args...]" >&2; exit 2 ;;
  esac
  shift
done

./deploy/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)" "${ctest_args[@]}"
