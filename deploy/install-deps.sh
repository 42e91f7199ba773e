#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of Squall from Debian packages.
# Idempotent: packages already present are skipped; safe to run on every CI run.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libfabric-dev libfabric-bin libibverbs-dev librdmacm-dev
  libboost-dev libboost-system-dev
  libcereal-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  catch2 nlohmann-json3-dev libcli11-dev libssl-dev
  curl procps iproute2
  clang llvm
  etcd-server etcd-client
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
