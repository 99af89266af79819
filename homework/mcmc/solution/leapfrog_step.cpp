// Reference solution: one leapfrog step (docs/chapters/mcmc.md, eq. 4).
#include "homework/mcmc/exercises.h"

namespace hw::mcmc {

Phase leapfrog_step(const Gradient& grad_log_pi, const Phase& z, double eps) {
  const Tensor p_half = z.p + (eps / 2) * grad_log_pi(z.x);
  const Tensor x = z.x + eps * p_half;
  return {x, p_half + (eps / 2) * grad_log_pi(x)};
}

}  // namespace hw::mcmc
