// Homework, ELBO / VAE chapter, exercise 3 (10 points): the IWAE bound, stably.
//   grade: make grade CHAPTER=vae      (the math: docs/chapters/vae.md, section 2)
#include "homework/vae/exercises.h"

namespace hw::vae {

// With K samples z_k ~ q(z | x) and their log importance weights
//     log w_k = log p(x, z_k) - log q(z_k | x),
// the IWAE bound (Burda et al. 2016) is
//
//     IWAE_K(x) = log (1/K) sum_k w_k  <=  log p(x),
//
// tighter as K grows (K = 1 is the ELBO). log_weights: [K, N] (K samples of N examples).
// Return [N]. The weights are tiny or huge (log w = -1000 is common for an image):
// exp() underflows to 0 or overflows to inf. Subtract the largest log w of each column
// first (the log-sum-exp trick), or use dgm::logsumexp. Keep it differentiable.
Tensor iwae_bound(const Tensor& log_weights) {
  DGM_TODO("iwae_bound");
}

}  // namespace hw::vae
