// dgm/homework/flows/exercises.h — homework for the normalizing-flows chapter (docs/chapters/flows.md).
#pragma once

#include <functional>
#include <vector>

#include "autograd/ops.h"
#include "homework/grader/grader.h"

namespace hw::flows {

using dgm::Tensor;

// What a coupling layer's network s_t(.) gives: a log-scale and a shift per dimension.
struct ScaleShift {
  Tensor log_scale;  // [N, D]
  Tensor shift;      // [N, D]
};
using Conditioner = std::function<ScaleShift(const Tensor&)>;

struct Coupled {
  Tensor y;        // f(x), [N, D]
  Tensor log_det;  // log |det df/dx| per example, [N]
};

// affine_coupling.cpp: RealNVP's affine coupling layer, forward (with its log-det) and inverse.
Coupled coupling_forward(const Tensor& x, const Tensor& mask, const Conditioner& net);
Tensor coupling_inverse(const Tensor& y, const Tensor& mask, const Conditioner& net);
// bits_per_dim.cpp: uniform dequantization and the bits/dim of discrete data under a flow
// that models y = logit(alpha + (1 - 2 alpha) u).
Tensor dequantize(const Tensor& k, const Tensor& noise, int64_t levels);
Tensor bits_per_dim(const Tensor& log_p_y, const Tensor& u, int64_t levels, double alpha);

struct Functions {
  std::function<Coupled(const Tensor&, const Tensor&, const Conditioner&)> coupling_forward;
  std::function<Tensor(const Tensor&, const Tensor&, const Conditioner&)> coupling_inverse;
  std::function<Tensor(const Tensor&, const Tensor&, int64_t)> dequantize;
  std::function<Tensor(const Tensor&, const Tensor&, int64_t, double)> bits_per_dim;
};
inline Functions linked() {
  return {&hw::flows::coupling_forward, &hw::flows::coupling_inverse, &hw::flows::dequantize, &hw::flows::bits_per_dim};
}

std::vector<Exercise> exercises(const Functions& f);

}  // namespace hw::flows
