#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang++ in a build directory of their own and runs
# each one, printing executions and any crash (docs/security.md, "Fuzzing").
#   tools/fuzz.sh                   every target for 30 s
#   tools/fuzz.sh --seconds 300     every target for 5 minutes
#   tools/fuzz.sh --smoke           every target for 2000 runs (what the test suite does)
#   tools/fuzz.sh --runs N          every target for N runs
#   tools/fuzz.sh config hello      only the named targets (fuzz_<name>)
# Options: --build-dir DIR (default build/fuzz), --jobs N (build parallelism, default 2),
# --no-build (run what is built). New inputs the fuzzer finds go to DIR/corpus/<target>
# (the checked-in seeds in fuzz/corpus/<target> are only read); crashes to
# DIR/crashes/<target>/, replayable with `DIR/fuzz/fuzz_<target> <file>`.
# Exit status: 0 when no target crashed, 1 when one did, 2 on a usage or build error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build_dir=build/fuzz
seconds=30
runs=""
jobs=2
build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) runs=2000 ;;
    --runs) runs="$2"; shift ;;
    --seconds) seconds="$2"; runs=""; shift ;;
    --build-dir) build_dir="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "tools/fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
case "$build_dir" in /*) ;; *) build_dir="$root/$build_dir" ;; esac

if ! command -v clang++ >/dev/null; then
  echo "tools/fuzz.sh: clang++ not found (deploy/install-deps.sh installs clang)" >&2
  exit 2
fi

if [ "$build" -eq 1 ]; then
  launcher=()
  if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
  # The whole tree is instrumented for coverage and built with ASan + UBSan; -Werror stays on
  # for fuzz/ only, since clang may warn where the main (g++) build does not.
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" \
      -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" \
      -DSQUALL_FUZZ=ON -DSQUALL_SANITIZE=ON -DSQUALL_WERROR=OFF \
      -DSQUALL_BUILD_TESTS=OFF -DSQUALL_BUILD_BENCH=OFF >/dev/null || exit 2
  fi
  cmake --build "$build_dir" --target fuzz_all -j "$jobs" || exit 2
fi

if [ "${#targets[@]}" -eq 0 ]; then
  for binary in "$build_dir"/fuzz/fuzz_*; do
    [ -x "$binary" ] && targets+=("$(basename "$binary" | sed 's/^fuzz_//')")
  done
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "tools/fuzz.sh: no fuzz targets built in $build_dir/fuzz" >&2
  exit 2
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=()
for target in "${targets[@]}"; do
  binary="$build_dir/fuzz/fuzz_$target"
  if [ ! -x "$binary" ]; then
    echo "tools/fuzz.sh: no target fuzz_$target" >&2
    exit 2
  fi
  corpus="$build_dir/corpus/$target"
  crashes="$build_dir/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  seeds=()
  [ -d "$root/fuzz/corpus/$target" ] && seeds=("$root/fuzz/corpus/$target")
  limit=(-max_total_time="$seconds")
  [ -n "$runs" ] && limit=(-runs="$runs")
  log="$build_dir/fuzz-$target.log"
  # -malloc_limit_mb reports any single allocation over 256 MiB: decoders must bound what a
  # length field can make them allocate. -timeout reports an input that takes over 10 s.
  # Runs inside the build directory: whatever a crash leaves in the working directory stays
  # out of the source tree.
  status=0
  (cd "$build_dir" && "$binary" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=256 -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" \
    "${seeds[@]}") >"$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus_size=$(find "$corpus" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    printf '%-20s ok     %10s executions, corpus %s\n' "$target" "${executions:-?}" \
      "$corpus_size"
  else
    printf '%-20s CRASH  %10s executions (exit %s); log %s\n' "$target" "${executions:-?}" \
      "$status" "$log"
    grep -E 'ERROR:|SUMMARY:|assertion|Assertion|runtime error' "$log" | head -5 || true
    ls -1 "$crashes" | sed "s|^|  artifact: $crashes/|" | tail -3
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "tools/fuzz.sh: crashes in: ${failed[*]}"
  exit 1
fi
echo "tools/fuzz.sh: ${#targets[@]} targets, no crash"
