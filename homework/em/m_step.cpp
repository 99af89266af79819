// Homework, EM chapter, exercise 2 (10 points): the M-step of a full-covariance mixture.
//   grade: make grade CHAPTER=em      (the math: docs/chapters/em.md, section 1)
#include "homework/em/exercises.h"

namespace hw::em {

// Given responsibilities R [N, K] (from the E-step), maximise
//     Q(theta) = sum_n sum_k r_nk [ log pi_k + log N(x_n; mu_k, Sigma_k) ]:
//
//     N_k     = sum_n r_nk
//     pi_k    = N_k / N
//     mu_k    = sum_n r_nk x_n / N_k
//     Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k  +  cov_floor I
//
// (the floor keeps a component that sits on one point from a singular covariance).
// X: [N, D], R: [N, K], float64. Return weights [K], means [K, D], covs [K, D, D].
// Full covariances: the off-diagonal entries too. dgm::matmul and dgm::transpose help.
Mixture m_step(const Tensor& X, const Tensor& R, double cov_floor) {
  DGM_TODO("m_step");
}

}  // namespace hw::em
