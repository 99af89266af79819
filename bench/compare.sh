#!/usr/bin/env bash
# bench/compare.sh — dgm's bench_train against the libtorch reference, same machine, same run.
#
#   bench/compare.sh [--threads "1 2"] [--only overhead,matmul] [--rounds 2] [--quick] [--memory] [--busy]
#
# --busy runs one busy-loop process beside both engines for the whole measurement (a student's
# laptop with a browser at work): it shows whether each side's 2-thread step degrades gracefully.
# With threads 1 and 2, a last table gives each side's 2-thread step over its own 1-thread step.
#
# Builds ../shared/bench/torch_ref.cpp and the project's own twins
# (bench/torch_flow_ref.cpp: i_realnvp_img_b64; bench/torch_gan_ref.cpp:
# j_dcgan_b64; bench/torch_diffusion_ref.cpp: k_unet28_b64 and o_unet28_sample_b64;
# bench/torch_sequence_ref.cpp: l_transformer_b64, n_transformer_sample_b64 and m_lstm_b64;
# bench/torch_pixelcnn_ref.cpp: p_pixelcnn_sample_8x8; needs Debian's libtorch-dev) into
# build/bench-ref/, then runs dgm and libtorch in alternation (round by round,
# so drift in the machine's load hits both) with the same OPENBLAS_CORETYPE,
# and prints one table: workload, threads, dgm median, libtorch median, ratio
# (dgm / libtorch; below 1 means dgm is faster), dgm's GFLOP/s and its
# percentage of the cblas_sgemm peak measured in the same run
# (../shared/bench/sgemm_peak.c, square sizes, best median). Each median is
# the best of the rounds; dgm_sp and lt_sp are each side's spread, worst
# round median / best (1.00: no noise). Raw outputs stay in build/bench-ref/.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="1 2"; ONLY="overhead,matmul"; ROUNDS=2; QUICK=""; MEMORY=0; BUSY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --quick) QUICK="--quick"; shift ;;
    --memory) MEMORY=1; shift ;;
    --busy) BUSY=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/!p}' "$0"; exit 0 ;;
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
# the project's own libtorch twins of workloads the shared reference does not have
TWINS="torch_flow_ref torch_diffusion_ref torch_gan_ref torch_sequence_ref torch_pixelcnn_ref"
for twin in $TWINS; do
  if [ ! -x "$OUT/$twin" ] || [ "bench/$twin.cpp" -nt "$OUT/$twin" ] || [ bench/timing.h -nt "$OUT/$twin" ]; then
    echo "building bench/$twin.cpp (about a minute)..." >&2
    g++ -O3 -march=native -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=1 -I. -I/usr/include/torch/csrc/api/include \
        "bench/$twin.cpp" -o "$OUT/$twin" -ltorch -ltorch_cpu -lc10 -ldl
  fi
done
if [ ! -x "$OUT/sgemm_peak" ] || [ ../shared/bench/sgemm_peak.c -nt "$OUT/sgemm_peak" ]; then
  gcc -O2 -march=native ../shared/bench/sgemm_peak.c -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas -lm \
      -o "$OUT/sgemm_peak"
fi
: > "$OUT/dgm.tsv"; : > "$OUT/torch.tsv"; : > "$OUT/peak.tsv"
if [ "$BUSY" = 1 ]; then
  sh -c 'while :; do :; done' &
  BUSY_PID=$!
  trap 'kill $BUSY_PID 2>/dev/null || true' EXIT  # (already ended after the rounds: no failure then)
  echo "a busy-loop process (pid $BUSY_PID) runs beside both engines" >&2
fi
for r in $(seq 1 "$ROUNDS"); do
  for t in $THREADS; do
    echo "round $r, $t thread(s)..." >&2
    OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t build/bin/bench_train --threads "$t" --only "$ONLY" $QUICK >> "$OUT/dgm.tsv"
    OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$OUT/torch_ref" --threads "$t" --only "$ONLY" $QUICK >> "$OUT/torch.tsv"
    for twin in $TWINS; do
      OMP_WAIT_POLICY=PASSIVE OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$OUT/$twin" --threads "$t" --only "$ONLY" $QUICK >> "$OUT/torch.tsv"
    done
  done
done
if [ "$BUSY" = 1 ]; then kill "$BUSY_PID"; wait "$BUSY_PID" 2>/dev/null || true; fi
for t in $THREADS; do  # the sgemm ceiling with the same kernel and thread count (on a quiet machine)
  OPENBLAS_NUM_THREADS=$t "$OUT/sgemm_peak" --quick --square-only --no-double | awk -F'\t' -v t="$t" \
    '$1 == "sgemm" && $9 + 0 > best { best = $9 + 0 } END { printf "%s\t%.2f\n", t, best }' >> "$OUT/peak.tsv"
done
grep -m1 "^# dgm" "$OUT/dgm.tsv"
echo "# libtorch: $(grep -m1 '^# openblas' "$OUT/torch.tsv" | sed 's/^# //')"
awk -F'\t' '
  FNR == 1 { file++ }
  file == 3 { peak[$1] = $2; next }
  /^#/ || $1 == "workload" { next }
  {
    key = $1 "\t" $2
    if (file == 1) {
      if (!(key in d) || $3 + 0 < d[key]) d[key] = $3 + 0
      if (!(key in dw) || $3 + 0 > dw[key]) dw[key] = $3 + 0
      if (!(key in seen)) { seen[key] = 1; keys[++n] = key }
      unit[key] = $9; mflop[key] = $7 + 0
    } else {
      if (!(key in t) || $3 + 0 < t[key]) t[key] = $3 + 0
      if (!(key in tw) || $3 + 0 > tw[key]) tw[key] = $3 + 0
    }
  }
  END {
    printf "%-28s %7s %12s %12s %7s %9s %8s  %-8s %7s %7s\n", "workload", "threads", "dgm", "libtorch", "ratio", "GFLOP/s", "%peak", "unit", "dgm_sp", "lt_sp"
    for (i = 1; i <= n; i++) {
      key = keys[i]; split(key, k, "\t")
      gf = (mflop[key] > 0 && unit[key] == "ms/step") ? mflop[key] / d[key] : 0
      pk = (gf > 0 && (k[2] in peak) && peak[k[2]] > 0) ? sprintf("%7.0f%%", 100 * gf / peak[k[2]]) : "       -"
      tv = (key in t) ? sprintf("%12.4f", t[key]) : sprintf("%12s", "-")
      rv = (key in t) ? sprintf("%7.2f", d[key] / t[key]) : sprintf("%7s", "-")
      gv = gf > 0 ? sprintf("%9.1f", gf) : sprintf("%9s", "-")
      ds = sprintf("%7.2f", dw[key] / d[key])
      ts = (key in t) ? sprintf("%7.2f", tw[key] / t[key]) : sprintf("%7s", "-")
      printf "%-28s %7s %12.4f %s %s %s %s  %-8s %s %s\n", k[1], k[2], d[key], tv, rv, gv, pk, unit[key], ds, ts
    }
    for (th in peak) printf "# sgemm peak (best square median), %s thread(s): %.1f GFLOP/s\n", th, peak[th]
  }' "$OUT/dgm.tsv" "$OUT/torch.tsv" "$OUT/peak.tsv"
if [[ " $THREADS " == *" 1 "* && " $THREADS " == *" 2 "* ]]; then
  echo
  [ "$BUSY" = 1 ] && echo "# with one busy-loop process beside them:"
  awk -F'\t' '
    FNR == 1 { file++ }
    /^#/ || $1 == "workload" { next }
    { key = $1 "\t" $2; v = $3 + 0
      if (file == 1 && (!(key in d) || v < d[key])) d[key] = v
      if (file == 2 && (!(key in t) || v < t[key])) t[key] = v
      if (!($1 in seen)) { seen[$1] = 1; names[++n] = $1 } }
    END {
      printf "%-24s %16s %16s\n", "workload", "dgm 2t / 1t", "libtorch 2t / 1t"
      for (i = 1; i <= n; i++) {
        w = names[i]; a = w "\t1"; b = w "\t2"
        if (!(a in d) || !(b in d)) continue
        lt = (a in t && b in t) ? sprintf("%16.2f", t[b] / t[a]) : sprintf("%16s", "-")
        printf "%-24s %16.2f %s\n", w, d[b] / d[a], lt
      }
    }' "$OUT/dgm.tsv" "$OUT/torch.tsv"
fi
if [ "$MEMORY" = 1 ]; then
  echo
  printf "%-10s %14s %14s %7s\n" "workload" "dgm peak MB" "libtorch MB" "ratio"
  for w in $(echo "$ONLY" | tr ',' ' '); do
    dm=$( { OPENBLAS_NUM_THREADS=1 /usr/bin/time -f '%M' build/bin/bench_train --threads 1 --only "$w" --quick >/dev/null; } 2>&1 | tail -1)
    tm=$( { OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/time -f '%M' "$OUT/torch_ref" --threads 1 --only "$w" --quick >/dev/null; } 2>&1 | tail -1)
    awk -v w="$w" -v d="$dm" -v t="$tm" 'BEGIN { printf "%-10s %14.1f %14.1f %7.2f\n", w, d / 1024, t / 1024, d / t }'
  done
fi
