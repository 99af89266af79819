#!/usr/bin/env bash
# Builds and grades homework chapters one at a time (what `make grade` and `make homework` run):
#
#   scripts/grade.sh BUILD_DIR [--solutions] [--strict] CHAPTER...
#
# Each chapter builds its own grader and nothing else it does not need (the engine, the models,
# that chapter's checks and your files in homework/<chapter>/), so a compile error in one chapter
# leaves the others gradable: its table says it did not compile and shows the compiler's errors.
# --solutions grades the reference solutions (homework/<chapter>/solution/) instead of your files.
#
# Exit status: 0 when at least one chapter was graded, whatever the score (a partial score is
# not an error); 2 when none could be; with --strict (CI), 1 unless every chapter compiled and
# got full marks. Tables: BUILD_DIR/homework/<chapter>.txt, scores as JSON beside them.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: scripts/grade.sh BUILD_DIR [--solutions] [--strict] CHAPTER..." >&2
  exit 2
fi
build=$1
shift
suffix="" strict=0
while [ $# -gt 0 ]; do
  case $1 in
    --solutions) suffix=_solution ;;
    --strict) strict=1 ;;
    --*) echo "scripts/grade.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
mkdir -p "$build/homework"
graded=0 all_full=1 earned=0 possible=0 broken=()
for ch in "$@"; do
  table="$build/homework/$ch.txt" json="$build/homework/$ch.json" log="$build/homework/$ch.build.log"
  rm -f "$table" "$json"
  if ! cmake --build "$build" --target "grade_$ch$suffix" >"$log" 2>&1; then
    {
      echo "homework $ch: did not compile, so nothing in it was graded. The compiler said:"
      echo
      grep -E -A3 "error:" "$log" | grep -v -E "^ninja: build stopped|^--$" | head -24 | sed 's/^/  /'
      echo
      echo "  (the whole build log: $log)"
    } >"$table"
    cat "$table"
    echo
    broken+=("$ch")
    all_full=0
    continue
  fi
  "$build/bin/grade_$ch$suffix" --table "$table" --json "$json" --strict
  status=$?
  echo
  case $status in
    0) graded=$((graded + 1)) ;;
    1) graded=$((graded + 1)); all_full=0 ;;
    *) all_full=0 ;;  # the grader could not grade (it said why)
  esac
  read -r e p < <(awk '/^  total/ {split($2, a, "/"); print $2, $4}' "$table")
  earned=$(awk -v a="$earned" -v b="${e:-0}" 'BEGIN {print a + b}')
  possible=$(awk -v a="$possible" -v b="${p:-0}" 'BEGIN {print a + b}')
done
if [ $# -gt 1 ]; then
  printf 'every chapter graded: %s / %s points' "$earned" "$possible"
  [ ${#broken[@]} -gt 0 ] && printf '; did not compile: %s' "${broken[*]}"
  printf '\n'
fi
echo "tables: $build/homework/<chapter>.txt, scores as JSON: $build/homework/<chapter>.json"
[ "$graded" -eq 0 ] && exit 2
[ "$strict" -eq 1 ] && [ "$all_full" -eq 0 ] && exit 1
exit 0
