// Reference solution: homework/gan/generator_loss.cpp.
#include "homework/gan/exercises.h"

namespace hw::gan {

Tensor generator_loss_non_saturating(const Tensor& fake_logits) {
  return dgm::mean(dgm::softplus(-fake_logits));  // -log sigmoid(l) = softplus(-l)
}

}  // namespace hw::gan
