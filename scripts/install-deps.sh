#!/usr/bin/env bash
# Installs the Debian packages dgm needs (apt-get as root), or prints the
# exact command to run and stops when not root. Safe to run again: it only
# acts on what is missing.
set -euo pipefail

PACKAGES=(
  cmake g++ make ninja-build pkg-config ccache
  xtensor-dev libxtensor-blas-dev libxsimd-dev libopenblas-dev
  catch2 libstb-dev libcli11-dev nlohmann-json3-dev zlib1g-dev liblzma-dev python3 python3-numpy
  gnuplot-nox clang libclang-rt-14-dev
  wamerican
)
# `scripts/install-deps.sh test` (what `make test` runs) adds the browser that renders a lesson's
# report page in the test suite: Debian's chromium, about 115 MB to download, 360 MB on disk.
if [ "${1:-}" = "test" ]; then
  PACKAGES+=(chromium)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "dgm: missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "dgm: run this once, then try again:"
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
