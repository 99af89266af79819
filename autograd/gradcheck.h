// dgm/autograd/gradcheck.h — gradients checked against finite differences.
//
// gradcheck(f, inputs) compares the whole Jacobian that backward computes
// with central differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), in
// float64, element by element, and reports the worst element. gradgradcheck
// does the same for the gradient itself (double backward), as a gradient
// penalty needs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace dgm {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // |analytic - numeric| <= atol + rtol |numeric|
  double rtol = 1e-4;
};

struct GradcheckReport {
  bool ok = true;
  int64_t checked = 0;         // Jacobian entries compared
  // the worst entry (largest error relative to its tolerance)
  size_t input = 0;            // which input
  int64_t element = 0;         // flat index into that input
  int64_t output_element = 0;  // flat index into the output
  double analytic = 0, numeric = 0, abs_error = 0, rel_error = 0;
  std::string str() const;     // one readable line
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Inputs are converted to float64 leaves that require grad; f must return a
// float64 tensor (any shape).
GradcheckReport gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// Checks the gradient of x -> <grad_x <f(x), v>> for a fixed random v (seeded):
// the second derivatives that backward(create_graph=true) produces.
GradcheckReport gradgradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& options = {}, uint64_t seed = 0);

// The Jacobian of y = f(x) as a float64 matrix [numel(y), numel(x)],
// J[k][e] = d y_k / d x_e, with x converted to float64: by the engine, one
// backward pass per output element (row by row) ...
Tensor jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x);
// ... or by central differences (f(x + eps e) - f(x - eps e)) / (2 eps), column by column.
Tensor numerical_jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, double eps = 1e-6);

// d f / d t[e] by central differences, (f(t + eps e) - f(t - eps e)) / (2 eps), with
// element e of the float64 tensor t moved in place and restored: for a tensor f reads
// through a module rather than as an argument (a parameter), where gradcheck, which
// copies its inputs, cannot reach.
double central_difference(const std::function<double()>& f, Tensor& t, int64_t e, double eps = 1e-6);

}  // namespace dgm
