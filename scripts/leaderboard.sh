#!/usr/bin/env bash
# Runs the evaluation harness (lesson_leaderboard) and writes docs/chapters/leaderboard.md
# from its table. Arguments go to the lesson, e.g. --minutes 3 or --quick.
#   scripts/leaderboard.sh [lesson flags]
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build
out=runs/leaderboard
build/bin/lesson_leaderboard --out "$out" "$@"
cp "$out/leaderboard.md" docs/chapters/leaderboard.md
echo "wrote docs/chapters/leaderboard.md"
