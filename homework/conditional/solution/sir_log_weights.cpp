// Reference solution: homework/conditional/sir_log_weights.cpp.
#include "homework/conditional/exercises.h"

namespace hw::conditional {

Tensor sir_log_weights(const Tensor& classifier_logits, const Tensor& log_prior, int64_t target) {
  // log p(y = target | x_i) = logit_i,target - logsumexp_k logit_i,k
  const Tensor log_posterior = dgm::select(classifier_logits, 1, target) - dgm::logsumexp(classifier_logits, {1});
  return log_posterior - log_prior.at(target);
}

}  // namespace hw::conditional
