// dgm/tests/homework/helpers.h — grading one exercise with a swapped-in function.
#pragma once

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "homework/grader/grader.h"

namespace hw_test {

// This process links the reference solutions: the graders' library checks read those files.
inline const bool kGradingReferenceSolutions = (hw::grade_reference_solutions(true), true);

// The named exercise of a chapter's list, graded in this process.
inline hw::ExerciseResult grade(const std::vector<hw::Exercise>& exercises, const std::string& name) {
  for (const auto& ex : exercises)
    if (ex.name == name) return hw::grade_in_process(ex);
  FAIL("no exercise named " << name);
  return {};
}

// Full marks, and every check passes: what the reference solution must get.
inline void require_full_marks(const hw::ExerciseResult& r) {
  const hw::CheckResult* first = r.first_failure();
  INFO(r.name << ": " << (first ? first->what + ": " + first->detail : std::string("all pass")));
  REQUIRE(r.full_marks());
}

// A known wrong solution loses points, and the check that catches it is the expected one.
// The rule of every exercise (docs/homework.md): a mistake that would make the chapter's model
// train or sample wrongly loses at least half of the exercise's points; every known wrong
// solution here is such a mistake, so it may keep at most half.
inline void require_caught(const hw::ExerciseResult& r, const std::string& failing_check_contains) {
  const hw::CheckResult* first = r.first_failure();
  INFO(r.name << " earned " << r.earned << " / " << r.points);
  REQUIRE(first != nullptr);
  INFO("first failure: " << first->what << ": " << first->detail);
  REQUIRE(r.earned <= r.points / 2 + 1e-9);
  bool named = false;
  for (const auto& c : r.checks)
    if (c.status != hw::Status::Pass && c.what.find(failing_check_contains) != std::string::npos) named = true;
  REQUIRE(named);
}

}  // namespace hw_test
