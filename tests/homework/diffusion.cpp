// Known wrong solutions of the diffusion homework lose points.
#include <cmath>

#include "homework/diffusion/exercises.h"
#include "homework/diffusion/solution/per_example.h"
#include "tests/homework/helpers.h"

using namespace hw::diffusion;
using hw::diffusion::solution::per_example;
using hw_test::grade;

TEST_CASE("diffusion homework: wrong q_sample's lose points", "[homework]") {
  Functions f = linked();
  SECTION("alpha_t where abar_t belongs") {
    f.q_sample = [](const Tensor& x0, const Tensor& t, const Tensor& eps, const NoiseSchedule& s) {
      return per_example(x0, t, [&](int64_t k) { return std::sqrt(s.alpha[static_cast<size_t>(k)]); }) * x0 +
             per_example(x0, t, [&](int64_t k) { return std::sqrt(1 - s.alpha[static_cast<size_t>(k)]); }) * eps;
    };
    hw_test::require_caught(grade(exercises(f), "q_sample"), "grader's own products");
  }
  SECTION("the step off by one (abar_{t-1})") {
    f.q_sample = [](const Tensor& x0, const Tensor& t, const Tensor& eps, const NoiseSchedule& s) {
      auto ab = [&](int64_t k) { return k == 0 ? 1.0 : s.alpha_bar[static_cast<size_t>(k - 1)]; };
      return per_example(x0, t, [&](int64_t k) { return std::sqrt(ab(k)); }) * x0 +
             per_example(x0, t, [&](int64_t k) { return std::sqrt(1 - ab(k)); }) * eps;
    };
    hw_test::require_caught(grade(exercises(f), "q_sample"), "recursion");
  }
  SECTION("the variance where the standard deviation belongs") {
    f.q_sample = [](const Tensor& x0, const Tensor& t, const Tensor& eps, const NoiseSchedule& s) {
      return per_example(x0, t, [&](int64_t k) { return std::sqrt(s.alpha_bar[static_cast<size_t>(k)]); }) * x0 +
             per_example(x0, t, [&](int64_t k) { return 1 - s.alpha_bar[static_cast<size_t>(k)]; }) * eps;
    };
    hw_test::require_caught(grade(exercises(f), "q_sample"), "recursion");
  }
}

TEST_CASE("diffusion homework: wrong posteriors lose points", "[homework]") {
  Functions f = linked();
  SECTION("the variance beta_t (the forward step's), not beta_tilde") {
    f.posterior = [](const Tensor& x0, const Tensor& xt, const Tensor& t, const NoiseSchedule& s) {
      Posterior p = posterior(x0, xt, t, s);
      p.variance = per_example(p.variance, t, [&](int64_t k) { return s.beta[static_cast<size_t>(k)]; });
      return p;
    };
    const auto r = grade(exercises(f), "posterior");
    hw_test::require_caught(r, "Bayes' rule");
    hw_test::require_caught(r, "total expectation");
  }
  SECTION("the two coefficients swapped") {
    f.posterior = [](const Tensor& x0, const Tensor& xt, const Tensor& t, const NoiseSchedule& s) {
      return posterior(xt, x0, t, s);
    };
    hw_test::require_caught(grade(exercises(f), "posterior"), "Bayes' rule");
  }
}

TEST_CASE("diffusion homework: wrong L_simple's lose points", "[homework]") {
  Functions f = linked();
  SECTION("predicting x_0 instead of the noise") {
    f.l_simple = [](const NoiseModel& m, const Tensor& x0, const Tensor& t, const Tensor& eps, const NoiseSchedule& s) {
      return dgm::mean(dgm::square(x0 - m(q_sample(x0, t, eps, s), t)));
    };
    const auto r = grade(exercises(f), "l_simple");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "oracle");
  }
  SECTION("the network fed x_0 instead of x_t") {
    f.l_simple = [](const NoiseModel& m, const Tensor& x0, const Tensor& t, const Tensor& eps, const NoiseSchedule&) {
      return dgm::mean(dgm::square(eps - m(x0, t)));
    };
    hw_test::require_caught(grade(exercises(f), "l_simple"), "oracle");
  }
  SECTION("a sum, not a mean") {
    f.l_simple = [](const NoiseModel& m, const Tensor& x0, const Tensor& t, const Tensor& eps, const NoiseSchedule& s) {
      return dgm::sum(dgm::square(eps - m(q_sample(x0, t, eps, s), t)));
    };
    hw_test::require_caught(grade(exercises(f), "l_simple"), "long double");
  }
}
