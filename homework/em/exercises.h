// dgm/homework/em/exercises.h — homework for the EM chapter (docs/chapters/em.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"
#include "models/toolkit/linalg.h"

namespace hw::em {

using dgm::Tensor;

// A Gaussian mixture's parameters, float64.
struct Mixture {
  Tensor weights;  // [K]        pi_k
  Tensor means;    // [K, D]     mu_k
  Tensor covs;     // [K, D, D]  Sigma_k
};

// e_step.cpp: the responsibilities r_nk = p(z_n = k | x_n), computed in the log domain.
Tensor e_step(const Tensor& X, const Mixture& m);
// m_step.cpp: the parameters that maximise the expected complete-data log-likelihood.
Mixture m_step(const Tensor& X, const Tensor& R, double cov_floor);

struct Functions {
  std::function<Tensor(const Tensor&, const Mixture&)> e_step;
  std::function<Mixture(const Tensor&, const Tensor&, double)> m_step;
};
inline Functions linked() { return {&hw::em::e_step, &hw::em::m_step}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::em
