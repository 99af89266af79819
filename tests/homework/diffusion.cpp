// Known wrong solutions of the diffusion homework lose points.
#include <algorithm>
#include <cmath>
#include <vector>

#include "homework/diffusion/exercises.h"
#include "homework/diffusion/solution/per_example.h"
#include "tests/homework/helpers.h"

using namespace hw::diffusion;
using hw::diffusion::solution::per_example;
using hw_test::grade;

TEST_CASE("diffusion homework: wrong q_sample's lose points", "[homework]") {
  Functions f = linked();
  SECTION("alpha_t where abar_t belongs") {
    f.q_sample = [](const Tensor& x0, const Tensor& t, const Tensor& eps, const Schedule& s) {
      return per_example(x0, t, [&](int64_t k) { return std::sqrt(s.alpha[static_cast<size_t>(k)]); }) * x0 +
             per_example(x0, t, [&](int64_t k) { return std::sqrt(1 - s.alpha[static_cast<size_t>(k)]); }) * eps;
    };
    hw_test::require_caught(grade(exercises(f), "q_sample"), "grader's own products");
  }
  SECTION("the step off by one (abar_{t-1})") {
    f.q_sample = [](const Tensor& x0, const Tensor& t, const Tensor& eps, const Schedule& s) {
      auto ab = [&](int64_t k) { return k == 0 ? 1.0 : s.alpha_bar[static_cast<size_t>(k - 1)]; };
      return per_example(x0, t, [&](int64_t k) { return std::sqrt(ab(k)); }) * x0 +
             per_example(x0, t, [&](int64_t k) { return std::sqrt(1 - ab(k)); }) * eps;
    };
    hw_test::require_caught(grade(exercises(f), "q_sample"), "recursion");
  }
  SECTION("the first example's t for the whole batch") {
    f.q_sample = [](const Tensor& x0, const Tensor& t, const Tensor& eps, const Schedule& s) {
      const Tensor first = Tensor::from_indices(std::vector<int64_t>(static_cast<size_t>(t.numel()), static_cast<int64_t>(t.at(0))), {t.numel()});
      return q_sample(x0, first, eps, s);
    };
    const auto r = grade(exercises(f), "q_sample");
    hw_test::require_caught(r, "grader's own products");
    hw_test::require_caught(r, "every example its own t");
  }
  SECTION("the variance where the standard deviation belongs") {
    f.q_sample = [](const Tensor& x0, const Tensor& t, const Tensor& eps, const Schedule& s) {
      return per_example(x0, t, [&](int64_t k) { return std::sqrt(s.alpha_bar[static_cast<size_t>(k)]); }) * x0 +
             per_example(x0, t, [&](int64_t k) { return 1 - s.alpha_bar[static_cast<size_t>(k)]; }) * eps;
    };
    hw_test::require_caught(grade(exercises(f), "q_sample"), "recursion");
  }
}

// The posterior exercise is not handed its answer: the schedule it reads has no posterior coefficients
// (a models::NoiseSchedule has them precomputed, and copying them once earned full marks).
template <class S>
concept HasPosteriorCoefficients = requires(S s) { s.posterior_coef_x0; } || requires(S s) { s.posterior_var; };
static_assert(!HasPosteriorCoefficients<Schedule>, "the exercises' schedule must not carry the posterior's answer");

TEST_CASE("diffusion homework: wrong posteriors lose points", "[homework]") {
  Functions f = linked();
  SECTION("abar_{t-1} clamped at t = 0 (alpha_bar[max(t - 1, 0)]) instead of abar_{-1} = 1") {
    f.posterior = [](const Tensor& x0, const Tensor& xt, const Tensor& t, const Schedule& s) {
      auto abar = [&s](int64_t k) { return s.alpha_bar[static_cast<size_t>(std::max<int64_t>(k, 0))]; };
      auto beta = [&s](int64_t k) { return s.beta[static_cast<size_t>(k)]; };
      const Tensor c0 = per_example(x0, t, [&](int64_t k) { return std::sqrt(abar(k - 1)) * beta(k) / (1 - abar(k)); });
      const Tensor ct = per_example(x0, t, [&](int64_t k) { return std::sqrt(1 - beta(k)) * (1 - abar(k - 1)) / (1 - abar(k)); });
      const Tensor var = per_example(Tensor::zeros({t.numel()}, x0.dtype()), t, [&](int64_t k) { return (1 - abar(k - 1)) / (1 - abar(k)) * beta(k); });
      return Posterior{c0 * x0 + ct * xt, var};
    };
    hw_test::require_caught(grade(exercises(f), "posterior"), "Bayes' rule");
  }
  SECTION("sqrt(abar_t) where x_t's coefficient has sqrt(alpha_t)") {
    f.posterior = [](const Tensor& x0, const Tensor& xt, const Tensor& t, const Schedule& s) {
      auto abar = [&s](int64_t k) { return k < 0 ? 1.0 : s.alpha_bar[static_cast<size_t>(k)]; };
      auto beta = [&s](int64_t k) { return s.beta[static_cast<size_t>(k)]; };
      const Tensor c0 = per_example(x0, t, [&](int64_t k) { return std::sqrt(abar(k - 1)) * beta(k) / (1 - abar(k)); });
      const Tensor ct = per_example(x0, t, [&](int64_t k) { return std::sqrt(abar(k)) * (1 - abar(k - 1)) / (1 - abar(k)); });
      const Tensor var = per_example(Tensor::zeros({t.numel()}, x0.dtype()), t, [&](int64_t k) { return (1 - abar(k - 1)) / (1 - abar(k)) * beta(k); });
      return Posterior{c0 * x0 + ct * xt, var};
    };
    const auto r = grade(exercises(f), "posterior");
    hw_test::require_caught(r, "Bayes' rule");
    hw_test::require_caught(r, "total expectation");
  }
  SECTION("the variance beta_t (the forward step's), not beta_tilde") {
    f.posterior = [](const Tensor& x0, const Tensor& xt, const Tensor& t, const Schedule& s) {
      Posterior p = posterior(x0, xt, t, s);
      p.variance = per_example(p.variance, t, [&](int64_t k) { return s.beta[static_cast<size_t>(k)]; });
      return p;
    };
    const auto r = grade(exercises(f), "posterior");
    hw_test::require_caught(r, "Bayes' rule");
    hw_test::require_caught(r, "total expectation");
  }
  SECTION("the two coefficients swapped") {
    f.posterior = [](const Tensor& x0, const Tensor& xt, const Tensor& t, const Schedule& s) {
      return posterior(xt, x0, t, s);
    };
    hw_test::require_caught(grade(exercises(f), "posterior"), "Bayes' rule");
  }
}

TEST_CASE("diffusion homework: wrong L_simple's lose points", "[homework]") {
  Functions f = linked();
  SECTION("predicting x_0 instead of the noise") {
    f.l_simple = [](const NoiseModel& m, const Tensor& x0, const Tensor& t, const Tensor& eps, const Schedule& s) {
      return dgm::mean(dgm::square(x0 - m(q_sample(x0, t, eps, s), t)));
    };
    const auto r = grade(exercises(f), "l_simple");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "oracle");
  }
  SECTION("the network fed x_0 instead of x_t") {
    f.l_simple = [](const NoiseModel& m, const Tensor& x0, const Tensor& t, const Tensor& eps, const Schedule&) {
      return dgm::mean(dgm::square(eps - m(x0, t)));
    };
    hw_test::require_caught(grade(exercises(f), "l_simple"), "oracle");
  }
  SECTION("a sum, not a mean") {
    f.l_simple = [](const NoiseModel& m, const Tensor& x0, const Tensor& t, const Tensor& eps, const Schedule& s) {
      return dgm::sum(dgm::square(eps - m(q_sample(x0, t, eps, s), t)));
    };
    hw_test::require_caught(grade(exercises(f), "l_simple"), "long double");
  }
}
