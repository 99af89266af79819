#!/usr/bin/env bash
# Extracts the scikit-learn 8x8 digits (digits.csv.gz, 1,797 images) from
# Debian's python3-sklearn package into ./data, without installing scikit-learn:
# `apt-get download` fetches the .deb, `dpkg -x` unpacks it into a temp folder.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-data}
mkdir -p "$DEST"
if [ -s "$DEST/digits.csv.gz" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
( cd "$tmp" && apt-get download python3-sklearn >/dev/null 2>&1 ) || {
  echo "get-digits: 'apt-get download python3-sklearn' failed; run 'apt-get update' (as root) first" >&2; exit 1; }
dpkg -x "$tmp"/python3-sklearn_*.deb "$tmp/x"
src=$(find "$tmp/x" -name digits.csv.gz | head -1)
[ -n "$src" ] || { echo "get-digits: no digits.csv.gz inside python3-sklearn" >&2; exit 1; }
cp "$src" "$DEST/digits.csv.gz"
echo "get-digits: wrote $DEST/digits.csv.gz ($(zcat "$DEST/digits.csv.gz" | wc -l) rows)"
