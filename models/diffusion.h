// dgm/models/diffusion.h — denoising diffusion (Ho, Jain & Abbeel 2020, DDPM).
//
// A fixed forward process adds Gaussian noise in T steps,
//   q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),
// whose marginals are closed-form: with alpha_t = 1 - beta_t, abar_t = prod_{s<=t} alpha_s,
//   q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),  i.e.  x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.
// A network eps_theta(x_t, t) learns to predict eps (the simplified objective
// L_simple = E ||eps - eps_theta(x_t, t)||^2), and ancestral sampling runs the
// learned reverse chain
//   x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t) + sigma_t z,  sigma_t^2 = beta_t.
#pragma once

#include <vector>

#include "autograd/nn.h"

namespace dgm::models {

// Every derived quantity of a schedule, computed once in float64 (index t = 0..T-1
// stands for the paper's step t + 1).
struct NoiseSchedule {
  std::vector<double> beta, alpha, alpha_bar;
  int64_t steps() const { return static_cast<int64_t>(beta.size()); }
  // beta rising linearly from beta_1 to beta_T (the paper: 1e-4 to 0.02, T = 1000)
  static NoiseSchedule linear(int64_t T, double beta_1 = 1e-4, double beta_T = 0.02);
};

// DDPM on 2-D points: eps_theta is an MLP on (x_t, t / T), 3 -> hidden... -> 2.
class DDPM2D : public nn::Module {
 public:
  DDPM2D(const NoiseSchedule& schedule, const std::vector<int64_t>& hidden, Generator& gen);
  Tensor predict_noise(const Tensor& x_t, const Tensor& t);  // t: int64 [N]
  // L_simple on a batch x_0 [N, 2]: t ~ U{0..T-1}, eps ~ N(0, I), mean squared error.
  Tensor loss(const Tensor& x0, Generator& gen);
  // Ancestral sampling: x_T ~ N(0, I), then T reverse steps.
  Tensor sample(int64_t n, Generator& gen);
  const NoiseSchedule& schedule() const { return schedule_; }

 private:
  NoiseSchedule schedule_;
  std::shared_ptr<nn::Sequential> net_;
  Tensor sqrt_alpha_bar_, sqrt_one_minus_alpha_bar_;  // [T] float32, for the loss
};

}  // namespace dgm::models
