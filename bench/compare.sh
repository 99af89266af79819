#!/usr/bin/env bash
# bench/compare.sh — dgm's bench_train against the libtorch reference, same machine, same run.
#
#   bench/compare.sh [--threads "1 2"] [--only overhead,matmul] [--rounds 2] [--quick]
#
# Builds ../shared/bench/torch_ref.cpp (needs Debian's libtorch-dev) into
# build/bench-ref/, then runs dgm and libtorch in alternation (round by round,
# so drift in the machine's load hits both) with the same OPENBLAS_CORETYPE,
# and prints one table: workload, threads, dgm median, libtorch median, ratio
# (dgm / libtorch; below 1 means dgm is faster). Each median is the best of
# the rounds. Raw outputs stay in build/bench-ref/.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="1 2"; ONLY="overhead,matmul"; ROUNDS=2; QUICK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --quick) QUICK="--quick"; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
REF_SRC=../shared/bench/torch_ref.cpp
OUT=build/bench-ref
[ -f "$REF_SRC" ] || { echo "compare.sh: $REF_SRC not found (the shared/ folder sits beside this repository)" >&2; exit 1; }
dpkg-query -W -f='${Status}' libtorch-dev 2>/dev/null | grep -q "install ok installed" || {
  echo "compare.sh: the reference needs libtorch-dev: apt-get install -y libtorch-dev" >&2; exit 1; }
make -s build
mkdir -p "$OUT"
if [ ! -x "$OUT/torch_ref" ] || [ "$REF_SRC" -nt "$OUT/torch_ref" ]; then
  echo "building the libtorch reference (about a minute)..." >&2
  g++ -O3 -march=native -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=1 -I/usr/include/torch/csrc/api/include \
      "$REF_SRC" -o "$OUT/torch_ref" -ltorch -ltorch_cpu -lc10 -ldl
fi
# The libtorch reference names its workloads differently in --only for the model workloads; same names here.
: > "$OUT/dgm.tsv"; : > "$OUT/torch.tsv"
for r in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    echo "round $r, $t thread(s)..." >&2
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t build/bin/bench_train --threads "$t" --only "$ONLY" $QUICK >> "$OUT/dgm.tsv"
    OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$OUT/torch_ref" --threads "$t" --only "$ONLY" $QUICK >> "$OUT/torch.tsv"
  done
done
grep -m1 "^# dgm" "$OUT/dgm.tsv"
echo "# libtorch: $(grep -m1 '^# openblas' "$OUT/torch.tsv" | sed 's/^# //')"
awk -F'\t' '
  FNR == 1 { file++ }
  /^#/ || $1 == "workload" { next }
  {
    key = $1 "\t" $2
    if (file == 1) { if (!(key in d) || $3 + 0 < d[key]) d[key] = $3 + 0; if (!(key in seen)) { seen[key] = 1; keys[++n] = key }; unit[key] = $9 }
    else if (!(key in t) || $3 + 0 < t[key]) t[key] = $3 + 0
  }
  END {
    printf "%-24s %7s %12s %12s %7s  %s\n", "workload", "threads", "dgm", "libtorch", "ratio", "unit"
    for (i = 1; i <= n; i++) {
      key = keys[i]; split(key, k, "\t")
      if (key in t) printf "%-24s %7s %12.4f %12.4f %7.2f  %s\n", k[1], k[2], d[key], t[key], d[key] / t[key], unit[key]
      else printf "%-24s %7s %12.4f %12s %7s  %s\n", k[1], k[2], d[key], "-", "-", unit[key]
    }
  }' "$OUT/dgm.tsv" "$OUT/torch.tsv"
