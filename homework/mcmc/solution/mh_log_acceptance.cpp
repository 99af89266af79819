// Reference solution: the Metropolis-Hastings acceptance in log space (docs/chapters/mcmc.md, eq. 1).
#include <algorithm>

#include "homework/mcmc/exercises.h"

namespace hw::mcmc {

double mh_log_acceptance(double log_pi_new, double log_pi_old, double log_q_back, double log_q_forward) {
  // log [pi(x') q(x | x') / (pi(x) q(x' | x))], capped at log 1 = 0
  return std::min(0.0, (log_pi_new - log_pi_old) + (log_q_back - log_q_forward));
}

}  // namespace hw::mcmc
