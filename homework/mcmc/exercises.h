// dgm/homework/mcmc/exercises.h — homework for the MCMC chapter (docs/chapters/mcmc.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::mcmc {

using dgm::Tensor;

// mh_log_acceptance.cpp: log of the Metropolis-Hastings acceptance probability (eq. 1), in log space.
double mh_log_acceptance(double log_pi_new, double log_pi_old, double log_q_back, double log_q_forward);

// A point of phase space for C chains: position and momentum, [C, D] float64.
struct Phase {
  Tensor x, p;
};
using Gradient = std::function<Tensor(const Tensor&)>;  // x [C, D] -> grad log pi(x) [C, D]
// leapfrog_step.cpp: one leapfrog step of size eps (eq. 4), unit mass.
Phase leapfrog_step(const Gradient& grad_log_pi, const Phase& z, double eps);

using Score = std::function<Tensor(const Tensor&, const Tensor&)>;  // (x~ [N, D], sigma [N, 1]) -> s [N, D]
// dsm_loss.cpp: the denoising score matching loss (eq. 11) on given data, noise levels and noise.
Tensor dsm_loss(const Score& score, const Tensor& x, const Tensor& sigma, const Tensor& z);

struct Functions {
  std::function<double(double, double, double, double)> mh_log_acceptance;
  std::function<Phase(const Gradient&, const Phase&, double)> leapfrog_step;
  std::function<Tensor(const Score&, const Tensor&, const Tensor&, const Tensor&)> dsm_loss;
};
inline Functions linked() { return {&hw::mcmc::mh_log_acceptance, &hw::mcmc::leapfrog_step, &hw::mcmc::dsm_loss}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::mcmc
