// Reference solution: homework/em/e_step.cpp.
#include "homework/em/exercises.h"

#include <cmath>

namespace hw::em {

Tensor e_step(const Tensor& X, const Mixture& m) {
  const int64_t D = X.size(1), K = m.weights.numel();
  std::vector<Tensor> columns;  // a_nk = log pi_k + log N(x_n; mu_k, Sigma_k), one [N] per k
  for (int64_t k = 0; k < K; ++k) {
    const Tensor cov = dgm::reshape(dgm::select(m.covs, 0, k), {D, D}).contiguous_copy();
    const Tensor L = dgm::linalg::cholesky(cov, "Sigma_" + std::to_string(k));
    const Tensor centred = X - dgm::select(m.means, 0, k);                              // [N, D]
    const Tensor white = dgm::linalg::solve_lower(L, dgm::transpose(centred, 0, 1).contiguous_copy());  // L^-1 (x - mu), [D, N]
    const Tensor mahalanobis = dgm::sum(dgm::square(white), {0});                      // [N]
    const double log_norm = -0.5 * (D * std::log(2 * M_PI) + dgm::linalg::log_det_spd(cov));
    columns.push_back(std::log(m.weights.at(k)) + log_norm - 0.5 * mahalanobis);
  }
  const Tensor a = dgm::stack(columns, 1);                   // [N, K]
  return dgm::exp(a - dgm::logsumexp(a, {1}, /*keepdim=*/true));
}

}  // namespace hw::em
