// The autograder itself: isolation (a crash, an endless loop), "not implemented",
// partial credit, and the tables' numbers.
#include <csignal>
#include <thread>

#include "tests/homework/helpers.h"

namespace {

hw::Exercise make(std::vector<hw::Check> checks) {
  return {"demo", "homework/demo/demo.cpp", 10, std::move(checks)};
}
void passes(hw::Expect& e) { e.near("one", 1.0, 1.0, 0, ""); }

}  // namespace

TEST_CASE("grader: points follow the weights of the checks passed", "[homework]") {
  const auto r = hw::grade_in_process(make({{"a", 1, passes}, {"b", 3, [](hw::Expect& e) { e.near("x", 1.0, 2.0, 0.5, "h"); }}}));
  REQUIRE(r.earned == Approx(2.5));
  REQUIRE(r.checks[1].status == hw::Status::Fail);
  REQUIRE(r.checks[1].detail == "x: expected 1, got 2 (|diff| 1 > tol 0.5)");
  REQUIRE(r.checks[1].hint == "h");
}

TEST_CASE("grader: a NaN never passes, a shape mismatch is named", "[homework]") {
  hw::Expect e;
  e.near("v", 0.0, std::nan(""), 1e9, "");
  REQUIRE_FALSE(e.ok());
  hw::Expect s;
  s.tensors_near("t", dgm::Tensor::zeros({2, 3}), dgm::Tensor::zeros({3, 2}), 1, "");
  REQUIRE(s.detail() == "t: expected shape [2, 3], got [3, 2]");
}

TEST_CASE("grader: a stub's error is 'not implemented', with its file", "[homework]") {
  const auto r = hw::grade_in_process(make({{"a", 1, [](hw::Expect&) { DGM_TODO("demo"); }}}));
  REQUIRE(r.not_implemented());
  REQUIRE(r.checks[0].detail.rfind("not implemented yet: demo (", 0) == 0);
  REQUIRE(r.earned == 0);
}

TEST_CASE("grader: a crash fails the check it happened in and the rest; the grader survives", "[homework]") {
  const auto r = hw::grade_isolated(make({{"a", 1, passes}, {"b", 1, [](hw::Expect&) { std::raise(SIGSEGV); }}, {"c", 1, passes}}), 30);
  REQUIRE(r.checks.size() == 3);
  REQUIRE(r.checks[0].status == hw::Status::Pass);
  REQUIRE(r.checks[1].status == hw::Status::Crashed);
  REQUIRE(r.checks[1].detail.find("signal 11") != std::string::npos);
  REQUIRE(r.checks[2].status == hw::Status::Crashed);
  REQUIRE(r.earned == Approx(10.0 / 3));
}

TEST_CASE("grader: an endless loop is stopped at the limit and reported", "[homework]") {
  const auto r = hw::grade_isolated(make({{"a", 1, passes}, {"b", 1, [](hw::Expect&) {
                                             for (;;) std::this_thread::sleep_for(std::chrono::milliseconds(10));
                                           }}}), 1.0);
  REQUIRE(r.checks[0].status == hw::Status::Pass);
  REQUIRE(r.checks[1].status == hw::Status::TimedOut);
  REQUIRE(r.checks[1].detail.find("limit of 1 s") != std::string::npos);
}

TEST_CASE("grader: an exception from the student's code is a failure that quotes it", "[homework]") {
  const auto r = hw::grade_isolated(make({{"a", 1, [](hw::Expect&) { throw dgm::Error("matmul: bad shapes"); }}}), 30);
  REQUIRE(r.checks[0].status == hw::Status::Threw);
  REQUIRE(r.checks[0].detail == "your code threw: matmul: bad shapes");
}
