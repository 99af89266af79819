// Homework, MCMC chapter, exercise 1 (10 points): the Metropolis-Hastings acceptance, in log space.
//   grade: make grade CHAPTER=mcmc      (the math: docs/chapters/mcmc.md, step 1)
#include "homework/mcmc/exercises.h"

namespace hw::mcmc {

// From x, a proposal x' ~ q(x' | x) is accepted with probability
//
//     alpha = min(1, pi(x') q(x | x') / (pi(x) q(x' | x)))
//
// Return log alpha, given log pi(x') (log_pi_new), log pi(x) (log_pi_old), log q(x | x')
// (log_q_back) and log q(x' | x) (log_q_forward). The log-densities of images are near -3000:
// exp() of them is 0, so never leave log space. The proposal terms are what make a chain with an
// asymmetric proposal sample pi; a log-probability is never above 0.
double mh_log_acceptance(double log_pi_new, double log_pi_old, double log_q_back, double log_q_forward) {
  DGM_TODO("mh_log_acceptance");
}

}  // namespace hw::mcmc
