#!/usr/bin/env bash
# Installs the data sets the lessons use by default (docs/chapters/data.md):
#   Fashion-MNIST  Debian's dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist
#   8x8 digits     extracted from Debian's python3-sklearn .deb -> ./data/digits.csv.gz
# As root it installs; otherwise it prints the command to run. Tests need none of this.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q "install ok installed"; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "dgm: Fashion-MNIST is missing; run once: sudo apt-get install -y dataset-fashion-mnist"
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; }
fi
scripts/get-digits.sh
