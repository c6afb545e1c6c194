#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing Ferry need, only
# when one is missing. Runs as root (or through sudo when available).
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config
  libgnutls28-dev gnutls-bin          # TLS, and certtool/gnutls-cli/gnutls-serv for the tests
  libprotobuf-dev protobuf-compiler   # image schema
  libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev            # libFuzzer targets
  criu python3-protobuf               # crit, to decode our images in the tests
  python3 procps iproute2 util-linux
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
