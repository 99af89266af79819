// Homework, EM chapter, exercise 1 (10 points): the E-step, in the log domain.
//   grade: make grade CHAPTER=em      (the math: docs/chapters/em.md, section 1)
#include "homework/em/exercises.h"

namespace hw::em {

// The responsibility of component k for point x_n is its posterior probability:
//
//     r_nk = pi_k N(x_n; mu_k, Sigma_k) / sum_j pi_j N(x_n; mu_j, Sigma_j)
//
//     log N(x; mu, Sigma) = -1/2 [ D log 2 pi + log det Sigma + (x - mu)^T Sigma^-1 (x - mu) ]
//
// Far from every component the densities underflow to 0 (0 / 0 = NaN): compute
// a_nk = log pi_k + log N(x_n; mu_k, Sigma_k) and normalise in the log domain,
//     r_nk = exp(a_nk - logsumexp_j a_nj).
// Tools: dgm::linalg::cholesky (Sigma = L L^T), solve_lower (L^-1 (x - mu)), log_det_spd.
// X: [N, D] float64; return R [N, K] float64, each row summing to 1.
Tensor e_step(const Tensor& X, const Mixture& m) {
  DGM_TODO("e_step");
}

}  // namespace hw::em
