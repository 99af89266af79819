// Homework, MCMC chapter, exercise 2 (10 points): one leapfrog step of Hamiltonian Monte Carlo.
//   grade: make grade CHAPTER=mcmc      (the math: docs/chapters/mcmc.md, step 3)
#include "homework/mcmc/exercises.h"

namespace hw::mcmc {

// H(x, p) = -log pi(x) + |p|^2 / 2. One leapfrog step of size eps:
//
//     p_half = p + (eps / 2) grad log pi(x)
//     x'     = x + eps p_half
//     p'     = p_half + (eps / 2) grad log pi(x')
//
// Half a momentum step, a full position step, half a momentum step: this order makes the step
// reversible (flip p', step again, flip: back at (x, p)) and volume-preserving, which is what
// lets HMC accept with min(1, exp(H - H')). grad_log_pi(x) gives grad log pi at x ([C, D]).
Phase leapfrog_step(const Gradient& grad_log_pi, const Phase& z, double eps) {
  DGM_TODO("leapfrog_step");
}

}  // namespace hw::mcmc
