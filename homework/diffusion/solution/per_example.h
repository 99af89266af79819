// Reference solutions' helper: one schedule value per example, shaped to broadcast over it.
#pragma once

#include <cmath>
#include <functional>

#include "homework/diffusion/exercises.h"

namespace hw::diffusion::solution {

// [N] values value(t_n), reshaped to [N, 1, ..., 1] like x (dtype of x).
inline Tensor per_example(const Tensor& x, const Tensor& t, const std::function<double(int64_t)>& value) {
  std::vector<double> v;
  for (int64_t n = 0; n < t.numel(); ++n) v.push_back(value(static_cast<int64_t>(t.at(n))));
  dgm::Shape shape(std::vector<int64_t>(x.dim(), 1));
  shape[0] = t.numel();
  return dgm::reshape(Tensor::from_vector(v, {t.numel()}), shape).to(x.dtype());
}

}  // namespace hw::diffusion::solution
