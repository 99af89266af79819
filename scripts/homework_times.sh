#!/usr/bin/env bash
# Measures every exercise's reference solution and writes homework/reference_seconds.json, from which
# each exercise's time limit is 20x its time, at least 2 s (homework/grader/grader.h):
#
#   scripts/homework_times.sh [BUILD_DIR]      (default build; run on a quiet machine, then commit)
#
# Each solution grader runs 3 times; an exercise's time is the median of its 3 wall times.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
chapters=$(ls -d homework/*/ | xargs -n1 basename | grep -v '^grader$')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ch in $chapters; do
  cmake --build "$build" --target "grade_${ch}_solution" >/dev/null
  for run in 1 2 3; do
    "$build/bin/grade_${ch}_solution" --strict --json "$tmp/$ch.$run.json" >/dev/null
  done
done
python3 - "$tmp" $chapters >homework/reference_seconds.json <<'PY'
import json, statistics, sys
tmp, chapters = sys.argv[1], sys.argv[2:]
out = {}
for ch in chapters:
    runs = [json.load(open(f"{tmp}/{ch}.{r}.json")) for r in (1, 2, 3)]
    out[ch] = {ex["name"]: float(f"{statistics.median(run['exercises'][i]['seconds'] for run in runs):.3g}")
               for i, ex in enumerate(runs[0]["exercises"])}
print(json.dumps(out, indent=2, sort_keys=True))
PY
echo "wrote homework/reference_seconds.json"
