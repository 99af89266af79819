// Known wrong solutions of the EM homework lose points.
#include "homework/em/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::em;
using hw_test::grade;

namespace {
// log pi_k + log N(x; mu_k, Sigma_k) with a choice of terms left out, [N, K]
Tensor log_terms(const Tensor& X, const Mixture& m, bool with_log_det, bool with_weights) {
  const int64_t D = X.size(1);
  std::vector<Tensor> cols;
  for (int64_t k = 0; k < m.weights.numel(); ++k) {
    const Tensor cov = dgm::reshape(dgm::select(m.covs, 0, k), {D, D}).contiguous_copy();
    const Tensor L = dgm::linalg::cholesky(cov);
    const Tensor white = dgm::linalg::solve_lower(L, dgm::transpose(X - dgm::select(m.means, 0, k), 0, 1).contiguous_copy());
    Tensor a = -0.5 * dgm::sum(dgm::square(white), {0});
    if (with_log_det) a = a - 0.5 * dgm::linalg::log_det_spd(cov);
    if (with_weights) a = a + std::log(m.weights.at(k));
    cols.push_back(a);
  }
  return dgm::stack(cols, 1);
}
}  // namespace

TEST_CASE("em homework: wrong E-steps lose points", "[homework]") {
  Functions f = linked();
  SECTION("exp, then normalise (underflows far away)") {
    f.e_step = [](const Tensor& X, const Mixture& m) {
      const Tensor p = dgm::exp(log_terms(X, m, true, true));
      return p / dgm::sum(p, {1}, true);
    };
    hw_test::require_caught(grade(exercises(f), "e_step"), "stable");
  }
  SECTION("the log det Sigma term left out") {
    f.e_step = [](const Tensor& X, const Mixture& m) { return dgm::softmax(log_terms(X, m, false, true), 1); };
    hw_test::require_caught(grade(exercises(f), "e_step"), "Bayes' rule");
  }
  SECTION("the mixture weights left out") {
    f.e_step = [](const Tensor& X, const Mixture& m) { return dgm::softmax(log_terms(X, m, true, false), 1); };
    const auto r = grade(exercises(f), "e_step");
    hw_test::require_caught(r, "Bayes' rule");
    hw_test::require_caught(r, "a posterior");
  }
}

TEST_CASE("em homework: wrong M-steps lose points", "[homework]") {
  Functions f = linked();
  SECTION("covariances not centred (E[x x^T])") {
    f.m_step = [](const Tensor& X, const Tensor& R, double floor) {
      Mixture m = m_step(X, R, floor);
      m.covs = m.covs + dgm::unsqueeze(m.means, 2) * dgm::unsqueeze(m.means, 1);
      return m;
    };
    hw_test::require_caught(grade(exercises(f), "m_step"), "closed form");
  }
  SECTION("means divided by N, not N_k") {
    f.m_step = [](const Tensor& X, const Tensor& R, double floor) {
      Mixture m = m_step(X, R, floor);
      m.means = m.means * dgm::unsqueeze(m.weights, 1);
      return m;
    };
    hw_test::require_caught(grade(exercises(f), "m_step"), "closed form");
  }
  SECTION("diagonal covariances only") {
    f.m_step = [](const Tensor& X, const Tensor& R, double floor) {
      Mixture m = m_step(X, R, floor);
      const int64_t D = X.size(1);
      std::vector<double> eye(static_cast<size_t>(D * D), 0.0);
      for (int64_t i = 0; i < D; ++i) eye[static_cast<size_t>(i * D + i)] = 1;
      m.covs = m.covs * Tensor::from_vector(eye, {D, D});
      return m;
    };
    hw_test::require_caught(grade(exercises(f), "m_step"), "closed form");
  }
}
