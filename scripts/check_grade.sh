#!/usr/bin/env bash
# ctest homework_grading_is_per_chapter: what `make grade` and `make homework` promise.
#   scripts/check_grade.sh SOURCE_DIR BUILD_DIR
# 1. Each chapter's grader is built from that chapter's files alone: no file of another chapter's
#    homework/<chapter>/, and no reference solution, is an input of grade_<chapter> (ninja's own
#    dependency graph), so a syntax error in one chapter cannot stop another from being graded.
# 2. scripts/grade.sh grades the chapters that build and reports the one that does not (here a
#    chapter whose grader target does not exist), then exits 0, whatever the score; with --strict
#    it exits non-zero then, and 0 on full marks (the reference solutions). (That a partial score
#    exits 0 is a Catch2 case of the grader itself: the stubs here may be a student's work.)
set -uo pipefail
src=$1 build=$2
fail() { echo "FAIL: $*"; exit 1; }
if [ ! -f "$build/build.ninja" ]; then
  echo "skipped: not a Ninja build (the dependency check needs ninja -t inputs)"
  exit 77
fi
chapters=$(ls -d "$src"/homework/*/ | xargs -n1 basename | grep -v '^grader$')
for ch in $chapters; do
  inputs=$(ninja -C "$build" -t inputs "grade_$ch") || fail "ninja -t inputs grade_$ch"
  for other in $chapters; do
    [ "$other" = "$ch" ] && continue
    if grep -q "homework/$other/" <<<"$inputs"; then
      fail "grade_$ch is built from files of homework/$other/: $(grep "homework/$other/" <<<"$inputs" | head -3 | tr '\n' ' ')"
    fi
  done
  grep -q "homework/$ch/solution/" <<<"$inputs" && fail "grade_$ch is built from the reference solutions"
done
echo "each of $(wc -w <<<"$chapters") graders is built from its own chapter's files only"

out=$("$src/scripts/grade.sh" "$build" no_such_chapter intro 2>&1)
status=$?
echo "$out" | tail -5
[ $status -eq 0 ] || fail "grade.sh exited $status with one chapter that does not build and one that does (want 0)"
grep -q "homework no_such_chapter: did not compile" <<<"$out" || fail "the chapter that does not build is not reported"
grep -q "^homework intro: " <<<"$out" || fail "the chapter after it was not graded"
"$src/scripts/grade.sh" "$build" --strict no_such_chapter intro >/dev/null 2>&1 && fail "--strict with a chapter that does not build exited 0"
"$src/scripts/grade.sh" "$build" --solutions --strict intro >/dev/null 2>&1 || fail "--strict with full marks (the reference solutions) exited non-zero"
echo "grade.sh: a chapter that does not build is reported and the others graded (exit 0); --strict exits non-zero then, 0 on full marks"
