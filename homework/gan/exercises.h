// dgm/homework/gan/exercises.h — homework for the GAN chapter (docs/chapters/gan.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::gan {

using dgm::Tensor;
using Critic = std::function<Tensor(const Tensor&)>;  // x [N, D] -> scores [N] or [N, 1]

// generator_loss.cpp: the non-saturating generator loss, from D's logits on fakes.
Tensor generator_loss_non_saturating(const Tensor& fake_logits);
// gradient_penalty.cpp: WGAN-GP's penalty E[(||grad_x f(x_hat)||_2 - 1)^2] (lambda left out).
Tensor gradient_penalty(const Critic& critic, const Tensor& real, const Tensor& fake, const Tensor& eps);

struct Functions {
  std::function<Tensor(const Tensor&)> generator_loss_non_saturating;
  std::function<Tensor(const Critic&, const Tensor&, const Tensor&, const Tensor&)> gradient_penalty;
};
inline Functions linked() { return {&hw::gan::generator_loss_non_saturating, &hw::gan::gradient_penalty}; }

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::gan
