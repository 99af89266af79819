// Homework, diffusion chapter, exercise 1 (10 points): sampling q(x_t | x_0) in one step.
//   grade: make grade CHAPTER=diffusion      (the math: docs/chapters/diffusion.md, section 1)
#include "homework/diffusion/exercises.h"

namespace hw::diffusion {

// The forward process adds noise step by step, q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I).
// Composing t of these Gaussians gives a closed form (Ho et al. 2020, eq. 4):
//
//     x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,   abar_t = prod_{s <= t} (1 - beta_s)
//
// Steps are indexed from 0 here as in the code: t = 0 is the first noising step, and
// schedule.alpha_bar[t] = prod_{s = 0..t} (1 - schedule.beta[s]).
// x0: [N, ...] (vectors or images); t: int64 [N], one step per example; noise: like x0.
// Return x_t, like x0. Each example has its own t: build a [N, 1, ...] tensor of
// sqrt(abar_t) values that broadcasts over the example (Tensor::from_vector, dgm::reshape).
Tensor q_sample(const Tensor& x0, const Tensor& t, const Tensor& noise, const Schedule& schedule) {
  DGM_TODO("q_sample");
}

}  // namespace hw::diffusion
