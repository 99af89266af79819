// Homework, diffusion chapter, exercise 2 (10 points): the forward process's posterior.
//   grade: make grade CHAPTER=diffusion      (the math: docs/chapters/diffusion.md, section 2)
#include "homework/diffusion/exercises.h"

namespace hw::diffusion {

// Given x_0, the step x_{t-1} -> x_t is Gaussian both ways, so by Bayes' rule
// q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde I) with
//
//     mu_tilde   = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x_0  +  sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t
//     beta_tilde = (1 - abar_{t-1}) / (1 - abar_t) beta_t
//
// (alpha_t = 1 - beta_t). The reverse process p(x_{t-1} | x_t) is trained to match it.
// At t = 0 take abar_{-1} = 1: the variance is 0 and the mean is x_0 (the chain starts at the data).
// Indices from 0 as in q_sample: schedule.beta[t], schedule.alpha[t], schedule.alpha_bar[t].
// x0, x_t: [N, ...]; t: int64 [N]. Return the mean (like x0) and the variance per example [N].
Posterior posterior(const Tensor& x0, const Tensor& x_t, const Tensor& t, const Schedule& schedule) {
  DGM_TODO("posterior");
}

}  // namespace hw::diffusion
