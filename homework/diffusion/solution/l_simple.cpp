// Reference solution: homework/diffusion/l_simple.cpp.
#include "homework/diffusion/exercises.h"

namespace hw::diffusion {

Tensor l_simple(const NoiseModel& model, const Tensor& x0, const Tensor& t, const Tensor& noise, const Schedule& s) {
  const Tensor x_t = q_sample(x0, t, noise, s);
  return dgm::mean(dgm::square(noise - model(x_t, t)));
}

}  // namespace hw::diffusion
