#!/bin/sh
# Rewrites the exercise lists of homework/<chapter>/README.md from the graders
# (`grade_<chapter> --list`): the part between the lines
#   <!-- exercises: written by scripts/homework_readmes.sh -->   and   <!-- end of exercises -->
# Run it after adding or changing an exercise or a check; a test compares the two.
#   scripts/homework_readmes.sh [BUILD_DIR]      (default: build)
set -eu
build=${1:-build}
cd "$(dirname "$0")/.."
for dir in homework/*/; do
  chapter=$(basename "$dir")
  [ "$chapter" = grader ] && continue
  readme="homework/$chapter/README.md"
  grader="$build/bin/grade_$chapter"
  [ -x "$grader" ] || { echo "no $grader: build first (make homework-build)" >&2; exit 1; }
  grep -q '^<!-- exercises: written by scripts/homework_readmes.sh -->$' "$readme" ||
    { echo "$readme has no exercises marker line" >&2; exit 1; }
  list=$(mktemp)
  "$grader" --list > "$list"
  awk -v list="$list" '
    /^<!-- exercises: written by scripts\/homework_readmes.sh -->$/ { print; while ((getline line < list) > 0) print line; skip = 1; next }
    /^<!-- end of exercises -->$/ { skip = 0 }
    !skip { print }' "$readme" > "$readme.new"
  mv "$readme.new" "$readme"
  rm -f "$list"
  echo "wrote $readme"
done
