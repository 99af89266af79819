// Homework, MCMC chapter, exercise 3 (10 points): the denoising score matching loss.
//   grade: make grade CHAPTER=mcmc      (the math: docs/chapters/mcmc.md, step 7)
#include "homework/mcmc/exercises.h"

namespace hw::mcmc {

// Noise the data, x~ = x + sigma z (z ~ N(0, I) is given), and ask the score network s(x~, sigma)
// for the score of the noised data: the score of N(x~; x, sigma^2 I) at x~ is -(x~ - x) / sigma^2
// = -z / sigma. Weighted by sigma^2 so that every noise level counts alike (Song & Ermon 2019):
//
//     L = (1/N) sum_n  1/2 sigma_n^2 | s(x~_n, sigma_n) + z_n / sigma_n |^2
//
// x [N, D], sigma [N, 1], z [N, D]; return a scalar tensor. Use engine ops throughout, so that
// the loss's gradient reaches the network's parameters.
Tensor dsm_loss(const Score& score, const Tensor& x, const Tensor& sigma, const Tensor& z) {
  DGM_TODO("dsm_loss");
}

}  // namespace hw::mcmc
