// Reference solution: homework/em/m_step.cpp.
#include "homework/em/exercises.h"

namespace hw::em {

Mixture m_step(const Tensor& X, const Tensor& R, double cov_floor) {
  const int64_t N = X.size(0), D = X.size(1), K = R.size(1);
  const Tensor Nk = dgm::sum(R, {0});                                      // [K]
  Mixture m;
  m.weights = Nk / static_cast<double>(N);
  m.means = dgm::matmul(dgm::transpose(R, 0, 1), X) / dgm::unsqueeze(Nk, 1);  // [K, D]
  std::vector<Tensor> covs;
  std::vector<double> eye(static_cast<size_t>(D * D), 0.0);
  for (int64_t i = 0; i < D; ++i) eye[static_cast<size_t>(i * D + i)] = cov_floor;
  const Tensor floor_I = Tensor::from_vector(eye, {D, D});
  for (int64_t k = 0; k < K; ++k) {
    const Tensor centred = X - dgm::select(m.means, 0, k);                 // [N, D]
    const Tensor weighted = centred * dgm::slice(R, 1, k, k + 1);          // r_nk (x_n - mu_k)
    covs.push_back(dgm::matmul(dgm::transpose(weighted, 0, 1), centred) / Nk.at(k) + floor_I);
  }
  m.covs = dgm::stack(covs, 0);
  return m;
}

}  // namespace hw::em
