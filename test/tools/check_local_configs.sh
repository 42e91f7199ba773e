#!/usr/bin/env bash
# Renders a local cluster's configs with tools/squall-local and checks each with
# `squalld --check-config`. Usage: check_local_configs.sh SQUALLD | --no-squalld
# Exits 77 (skipped) with --no-squalld: the squalld target does not exist in this build yet.
set -euo pipefail
if [ "${1:-}" = "--no-squalld" ]; then
  echo "skipped: this build has no squalld target yet"
  exit 77
fi
squalld=${1:?usage: check_local_configs.sh SQUALLD}
repo=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$repo/tools/squall-local" render -n 3 --root "$dir/root" --out "$dir/configs"
for file in "$dir"/configs/node*.yaml; do
  "$squalld" --check-config "$file"
done
echo "squalld --check-config accepts every rendered config"
