// Reference solution: homework/diffusion/posterior.cpp.
#include "homework/diffusion/solution/per_example.h"

namespace hw::diffusion {

Posterior posterior(const Tensor& x0, const Tensor& x_t, const Tensor& t, const Schedule& s) {
  auto abar = [&s](int64_t k) { return k < 0 ? 1.0 : s.alpha_bar[static_cast<size_t>(k)]; };
  auto beta = [&s](int64_t k) { return s.beta[static_cast<size_t>(k)]; };
  const Tensor c0 = solution::per_example(x0, t, [&](int64_t k) { return std::sqrt(abar(k - 1)) * beta(k) / (1 - abar(k)); });
  const Tensor ct = solution::per_example(x0, t, [&](int64_t k) { return std::sqrt(1 - beta(k)) * (1 - abar(k - 1)) / (1 - abar(k)); });
  const Tensor var = solution::per_example(Tensor::zeros({t.numel()}, x0.dtype()), t,
                                           [&](int64_t k) { return (1 - abar(k - 1)) / (1 - abar(k)) * beta(k); });
  return {c0 * x0 + ct * x_t, var};
}

}  // namespace hw::diffusion
