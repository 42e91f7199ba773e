#!/usr/bin/env bash
# The whole test suite in one command: installs dependencies, configures, builds, runs ctest
# (which replays every fuzz corpus through its target: test_fuzz_smoke).
#   tools/test.sh            release build (optimized, assertions on)
#   tools/test.sh --debug    Debug build with AddressSanitizer + UndefinedBehaviorSanitizer
#   tools/test.sh --fuzz     also fuzz every target for 2000 runs (a clang build of the whole
#                            tree in build/fuzz: much longer than the suite itself)
# Extra arguments after `--` go to ctest (e.g. `-- -R fabric`).
set -euo pipefail
cd "$(dirname "$0")/.."

preset=release
fuzz=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) preset=debug ;;
    --fuzz) fuzz=1 ;;
    --) shift; ctest_args=("$@"); break ;;
    *) echo "usage: tools/test.sh [--debug] [--fuzz] [-- ctest-args...]" >&2; exit 2 ;;
  esac
  shift
done

./deploy/install-deps.sh
cmake --preset "$preset"
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j "$(nproc)" "${ctest_args[@]}"

# The fuzz targets need a clang build of the whole tree (build/fuzz), too slow for ctest's
# budget from a cold cache; ctest's test_fuzz_smoke replays their corpora with g++ instead.
# Here each target also fuzzes for 2000 runs (docs/security.md, "Fuzzing").
if [ "$fuzz" = 0 ]; then
  echo "tools/test.sh: fuzzing itself runs with --fuzz (tools/fuzz.sh --smoke)"
elif command -v clang++ >/dev/null; then
  echo "tools/test.sh: fuzz smoke (tools/fuzz.sh --smoke, clang build in build/fuzz)"
  tools/fuzz.sh --smoke --jobs "$(nproc)"
else
  echo "tools/test.sh: clang++ not installed: skipping the fuzz smoke (tools/fuzz.sh --smoke)"
fi
