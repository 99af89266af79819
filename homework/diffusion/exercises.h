// dgm/homework/diffusion/exercises.h — homework for the diffusion chapter (docs/chapters/diffusion.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::diffusion {

using dgm::Tensor;
using NoiseModel = std::function<Tensor(const Tensor&, const Tensor&)>;  // eps_theta(x_t, t)

// What the exercises read of a noise schedule: beta_t, alpha_t = 1 - beta_t and abar_t = prod_{s <= t} alpha_s,
// index t = 0..T-1 (the paper's step t + 1). Only these: the posterior's coefficients are exercise 2's answer
// (the graders make a Schedule from a models::NoiseSchedule, which has them precomputed).
struct Schedule {
  std::vector<double> beta, alpha, alpha_bar;
};

// The Gaussian q(x_{t-1} | x_t, x_0): its mean (shaped like x_0) and variance (one per example, [N]).
struct Posterior {
  Tensor mean;
  Tensor variance;
};

// q_sample.cpp: a draw of x_t ~ q(x_t | x_0) in one step.
Tensor q_sample(const Tensor& x0, const Tensor& t, const Tensor& noise, const Schedule& schedule);
// posterior.cpp: the forward process's posterior q(x_{t-1} | x_t, x_0).
Posterior posterior(const Tensor& x0, const Tensor& x_t, const Tensor& t, const Schedule& schedule);
// l_simple.cpp: DDPM's simplified loss, E ||eps - eps_theta(x_t, t)||^2.
Tensor l_simple(const NoiseModel& model, const Tensor& x0, const Tensor& t, const Tensor& noise, const Schedule& schedule);

struct Functions {
  std::function<Tensor(const Tensor&, const Tensor&, const Tensor&, const Schedule&)> q_sample;
  std::function<Posterior(const Tensor&, const Tensor&, const Tensor&, const Schedule&)> posterior;
  std::function<Tensor(const NoiseModel&, const Tensor&, const Tensor&, const Tensor&, const Schedule&)> l_simple;
};
inline Functions linked() { return {&hw::diffusion::q_sample, &hw::diffusion::posterior, &hw::diffusion::l_simple}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::diffusion
