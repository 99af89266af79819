// Reference solution: the denoising score matching loss (docs/chapters/mcmc.md, eq. 11).
#include "homework/mcmc/exercises.h"

namespace hw::mcmc {

Tensor dsm_loss(const Score& score, const Tensor& x, const Tensor& sigma, const Tensor& z) {
  const Tensor noised = x + sigma * z;
  const Tensor residual = score(noised, sigma) + z / sigma;  // s(x~) minus the noised density's score -z / sigma
  return dgm::mean(0.5 * dgm::square(sigma) * dgm::sum(dgm::square(residual), {1}, true));
}

}  // namespace hw::mcmc
