#!/usr/bin/env bash
# Squall from a fresh Debian 12 machine to a running local 3-node cluster, in one command:
# installs the dependencies, builds squalld and squallctl (release preset: optimized,
# assertions on) and starts the cluster with tools/squall-local (data and logs in
# /tmp/squall-local/node<i>). Extra arguments go to `squall-local up` (e.g. -n 5).
# Stop it with `tools/squall-local down`; erase its data with `tools/squall-local wipe`.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
cmake --preset release
cmake --build --preset release --target squalld squallctl -j "$(nproc)"
exec ./tools/squall-local up -n 3 --build build/release "$@"
