// Known wrong solutions of the MCMC homework lose points.
#include <algorithm>
#include <cmath>

#include "homework/mcmc/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::mcmc;
using hw_test::grade;

TEST_CASE("mcmc homework: wrong MH acceptances lose points", "[homework]") {
  Functions f = linked();
  SECTION("a ratio of densities (exp underflows for images' log-densities)") {
    f.mh_log_acceptance = [](double a, double b, double qb, double qf) {
      return std::log(std::min(1.0, std::exp(a) * std::exp(qb) / (std::exp(b) * std::exp(qf))));
    };
    hw_test::require_caught(grade(exercises(f), "mh_log_acceptance"), "no underflow");
  }
  SECTION("the proposal correction left out (an asymmetric proposal then samples the wrong pi)") {
    f.mh_log_acceptance = [](double a, double b, double, double) { return std::min(0.0, a - b); };
    const auto r = grade(exercises(f), "mh_log_acceptance");
    hw_test::require_caught(r, "asymmetric proposal");
    hw_test::require_caught(r, "long double");
  }
  SECTION("the proposal ratio upside down") {
    f.mh_log_acceptance = [](double a, double b, double qb, double qf) { return std::min(0.0, a - b + qf - qb); };
    hw_test::require_caught(grade(exercises(f), "mh_log_acceptance"), "asymmetric proposal");
  }
  SECTION("not capped at 0") {
    f.mh_log_acceptance = [](double a, double b, double qb, double qf) { return a - b + qb - qf; };
    hw_test::require_caught(grade(exercises(f), "mh_log_acceptance"), "long double");
  }
}

TEST_CASE("mcmc homework: wrong leapfrog steps lose points", "[homework]") {
  Functions f = linked();
  SECTION("a full momentum step at the start (symplectic Euler: not reversible)") {
    f.leapfrog_step = [](const Gradient& g, const Phase& z, double eps) {
      const Tensor p = z.p + eps * g(z.x);
      return Phase{z.x + eps * p, p};
    };
    const auto r = grade(exercises(f), "leapfrog_step");
    hw_test::require_caught(r, "reversible");
    hw_test::require_caught(r, "exact leapfrog map");
  }
  SECTION("the gradient's sign flipped (descending -log pi's hill)") {
    f.leapfrog_step = [](const Gradient& g, const Phase& z, double eps) {
      const Tensor ph = z.p - (eps / 2) * g(z.x);
      const Tensor x = z.x + eps * ph;
      return Phase{x, ph - (eps / 2) * g(x)};
    };
    const auto r = grade(exercises(f), "leapfrog_step");
    hw_test::require_caught(r, "exact leapfrog map");
    hw_test::require_caught(r, "energy error");
  }
  SECTION("the last half step at the old position") {
    f.leapfrog_step = [](const Gradient& g, const Phase& z, double eps) {
      const Tensor gx = g(z.x);
      const Tensor ph = z.p + (eps / 2) * gx;
      return Phase{z.x + eps * ph, ph + (eps / 2) * gx};
    };
    hw_test::require_caught(grade(exercises(f), "leapfrog_step"), "exact leapfrog map");
  }
}

TEST_CASE("mcmc homework: wrong denoising score matching losses lose points", "[homework]") {
  Functions f = linked();
  SECTION("the target's sign flipped (+z / sigma)") {
    f.dsm_loss = [](const Score& s, const Tensor& x, const Tensor& sigma, const Tensor& z) {
      const Tensor r = s(x + sigma * z, sigma) - z / sigma;
      return dgm::mean(0.5 * dgm::square(sigma) * dgm::sum(dgm::square(r), {1}, true));
    };
    const auto r = grade(exercises(f), "dsm_loss");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "smallest at the noised data's score");
  }
  SECTION("no sigma^2 weighting (the small noise levels dominate)") {
    f.dsm_loss = [](const Score& s, const Tensor& x, const Tensor& sigma, const Tensor& z) {
      const Tensor r = s(x + sigma * z, sigma) + z / sigma;
      return dgm::mean(0.5 * dgm::sum(dgm::square(r), {1}, true));
    };
    hw_test::require_caught(grade(exercises(f), "dsm_loss"), "long double");
  }
  SECTION("the loss detached from the network (a number, no gradient)") {
    f.dsm_loss = [](const Score& s, const Tensor& x, const Tensor& sigma, const Tensor& z) {
      return dsm_loss(s, x, sigma, z).detach();
    };
    hw_test::require_caught(grade(exercises(f), "dsm_loss"), "gradcheck");
  }
}
