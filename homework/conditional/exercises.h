// dgm/homework/conditional/exercises.h — homework for the conditional chapter (docs/chapters/conditional.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "autograd/random.h"
#include "homework/grader/grader.h"

namespace hw::conditional {

using dgm::Generator;
using dgm::Tensor;

// guided_noise.cpp: classifier-free guidance's combination of the two noise predictions.
Tensor guided_noise(const Tensor& eps_conditional, const Tensor& eps_unconditional, double w);
// drop_labels.cpp: the training-time label dropout that teaches one network p(x) as well as p(x | y).
Tensor drop_labels(const Tensor& labels, int64_t classes, double p_uncond, Generator& gen);
// sir_log_weights.cpp: the importance weights that turn draws of p(x) into draws of p(x | y).
Tensor sir_log_weights(const Tensor& classifier_logits, const Tensor& log_prior, int64_t target);

struct Functions {
  std::function<Tensor(const Tensor&, const Tensor&, double)> guided_noise;
  std::function<Tensor(const Tensor&, int64_t, double, Generator&)> drop_labels;
  std::function<Tensor(const Tensor&, const Tensor&, int64_t)> sir_log_weights;
};
inline Functions linked() {
  return {&hw::conditional::guided_noise, &hw::conditional::drop_labels, &hw::conditional::sir_log_weights};
}

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::conditional
