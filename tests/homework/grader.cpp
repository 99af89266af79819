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

TEST_CASE("grader: an exercise's time limit is 20x its reference solution's time, at least 2 s", "[homework]") {
  REQUIRE(hw::time_limit(0.01) == 2.0);
  REQUIRE(hw::time_limit(0.5) == Approx(10.0));
  REQUIRE(hw::time_limit(0) == 60.0);  // none recorded
  const auto r = hw::grade_isolated(make({{"a", 1, passes}}), 5.0);
  REQUIRE(r.limit_seconds == 5.0);
  REQUIRE(r.seconds > 0);
  REQUIRE(r.seconds < 5.0);
}

TEST_CASE("grader: a partial score exits 0 (the grading ran), --strict exits 1, nothing to grade exits 2", "[homework]") {
  const std::vector<hw::Exercise> list = {make({{"a", 1, passes}, {"b", 1, [](hw::Expect& e) { e.near("x", 1.0, 2.0, 0, ""); }}})};
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "grade_demo");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    return hw::run_chapter("demo", list, static_cast<int>(argv.size()), argv.data());
  };
  REQUIRE(run({"--in-process"}) == 0);
  REQUIRE(run({"--in-process", "--strict"}) == 1);
  REQUIRE(run({"--in-process", "--only", "nothing"}) == 2);
}

TEST_CASE("grader: the library check finds the library's own implementation, not a mention of it", "[homework]") {
  const std::vector<std::string> twins = {"dgm::sum_to", "models::pixelcnn_mask", "kl_to_standard"};
  REQUIRE(hw::first_library_twin("return dgm::sum_to(g, shape);", twins) == "dgm::sum_to");
  REQUIRE(hw::first_library_twin("return dgm :: sum_to(g, shape);", twins) == "dgm::sum_to");
  REQUIRE(hw::first_library_twin("using dgm::sum_to;\nreturn sum_to(g, s);", twins) == "dgm::sum_to");
  REQUIRE(hw::first_library_twin("return dgm::models::pixelcnn_mask(o, i, k, t, c);", twins) == "models::pixelcnn_mask");
  REQUIRE(hw::first_library_twin("return dist::Normal{mu, lv}.kl_to_standard();", twins) == "kl_to_standard");
  // comments, strings and longer names are not calls
  REQUIRE(hw::first_library_twin("// unlike dgm::sum_to, this reduces by hand\nreturn g;", twins).empty());
  REQUIRE(hw::first_library_twin("/* dgm::sum_to */ const char* s = \"dgm::sum_to\"; return g;", twins).empty());
  REQUIRE(hw::first_library_twin("return my_dgm::sum_to_shape(g);", twins).empty());
}
