#!/usr/bin/env bash
# Fuzzes the data readers (IDX, digits CSV) and the safetensors reader with libFuzzer + ASan + UBSan for
# a bounded time: scripts/fuzz.sh [SECONDS] (default 30). Needs clang and
# libclang-rt (Debian: clang, libclang-rt-14-dev). Exits non-zero on a crash;
# the crashing input is left in build/fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-30}
CXX_FUZZ=$(command -v clang++ || command -v clang++-14 || true)
[ -n "$CXX_FUZZ" ] || { echo "fuzz.sh: clang++ not found: apt-get install -y clang libclang-rt-14-dev" >&2; exit 1; }
LIB_DIR=${DGM_LIB_DIR:-build/lib}
OUT=${DGM_FUZZ_OUT:-build/fuzz}
mkdir -p "$OUT/corpus"
# The readers are compiled with instrumentation; the engine library they use
# (Tensor) is the one `make build` made.
[ -f "$LIB_DIR/libdgm.so" ] || make -s build
"$CXX_FUZZ" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
  fuzz/fuzz_readers.cpp models/toolkit/datasets.cpp -L"$LIB_DIR" -ldgm -Wl,-rpath,"$(cd "$LIB_DIR" && pwd)" -lz -o "$OUT/fuzz_readers"
# Seeds: the committed corpus (fuzz/corpus/readers/: a valid IDX file, a valid digits row, and the
# inputs of earlier runs that reached new code, minimised with -merge=1). The sanitizer build
# replays it without libFuzzer (fuzz/replay.cpp). Add a run's finds with
#   build/fuzz/fuzz_readers -merge=1 fuzz/corpus/readers build/fuzz/corpus
cp fuzz/corpus/readers/* "$OUT/corpus/"
"$OUT/fuzz_readers" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -artifact_prefix="$OUT/" "$OUT/corpus" \
  2> "$OUT/fuzz.log" || { tail -40 "$OUT/fuzz.log"; echo "fuzz.sh: the fuzzer found a failing input (see $OUT/)" >&2; exit 1; }
grep -E "^Done|stat::number_of_executed_units" "$OUT/fuzz.log" | tail -1
echo "fuzz.sh: data readers, no crash in ${SECONDS_TO_RUN} s"

# The safetensors reader, seeded with a valid checkpoint and the corrupt ones of
# the numpy round trip (fuzz/corpus/checkpoint/, committed). The reader lives in
# the engine, so it is compiled here with instrumentation too.
"$CXX_FUZZ" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I. \
  fuzz/fuzz_checkpoint.cpp autograd/checkpoint.cpp -L"$LIB_DIR" -ldgm -Wl,-rpath,"$(cd "$LIB_DIR" && pwd)" -o "$OUT/fuzz_checkpoint"
mkdir -p "$OUT/corpus_checkpoint"
cp fuzz/corpus/checkpoint/* "$OUT/corpus_checkpoint/"
"$OUT/fuzz_checkpoint" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -artifact_prefix="$OUT/" "$OUT/corpus_checkpoint" \
  2> "$OUT/fuzz_checkpoint.log" || { tail -40 "$OUT/fuzz_checkpoint.log"; echo "fuzz.sh: the fuzzer found a failing checkpoint (see $OUT/)" >&2; exit 1; }
grep -E "^Done|stat::number_of_executed_units" "$OUT/fuzz_checkpoint.log" | tail -1
echo "fuzz.sh: safetensors reader, no crash in ${SECONDS_TO_RUN} s"
