// dgm/models/distributions.cpp
#include "models/distributions.h"

#include <cmath>

#include "autograd/graph.h"

namespace dgm::dist {

Tensor bernoulli_log_prob(const Tensor& logits, const Tensor& x) {
  return neg(binary_cross_entropy_with_logits(logits, x, Reduction::None));
}

Tensor bernoulli_sample(const Tensor& logits, Generator& gen) {
  NoGradGuard ng;
  return gen.bernoulli(sigmoid(logits.detach()));
}

Tensor categorical_log_prob(const Tensor& logits, const Tensor& x, int64_t axis) {
  if (x.dtype() != DType::Int64)
    throw Error(std::string("categorical_log_prob: x must hold int64 category indices, got ") + dtype_name(x.dtype()));
  const size_t ax = normalize_axis(axis, logits.dim(), "categorical_log_prob");
  Tensor idx = unsqueeze(x, static_cast<int64_t>(ax));
  return squeeze(gather(log_softmax(logits, static_cast<int64_t>(ax)), static_cast<int64_t>(ax), idx), static_cast<int64_t>(ax));
}

Tensor categorical_sample(const Tensor& logits, int64_t axis, Generator& gen) {
  NoGradGuard ng;
  const size_t ax = normalize_axis(axis, logits.dim(), "categorical_sample");
  Tensor p = softmax(logits.detach().to(DType::Float64), static_cast<int64_t>(ax));
  const Shape& s = p.shape();
  int64_t outer = 1, k = s[ax], inner = 1;
  for (size_t i = 0; i < ax; ++i) outer *= s[i];
  for (size_t i = ax + 1; i < s.size(); ++i) inner *= s[i];
  Shape os = s;
  os.erase(ax);
  Tensor out = Tensor::empty(os, DType::Int64);
  const double* pp = p.data<double>();
  int64_t* po = out.data<int64_t>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      // inverse-CDF sampling
      double u = gen.uniform01(), acc = 0;
      int64_t c = k - 1;
      for (int64_t j = 0; j < k; ++j) {
        acc += pp[(o * k + j) * inner + i];
        if (u < acc) {
          c = j;
          break;
        }
      }
      po[o * inner + i] = c;
    }
  return out;
}

Tensor levels_to_index(const Tensor& x, int64_t levels) {
  Tensor out = Tensor::empty(x.shape(), DType::Int64);
  int64_t* p = out.data<int64_t>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = std::round(x.at(i) * static_cast<double>(levels - 1));
    if (v < 0 || v > static_cast<double>(levels - 1))
      throw Error("levels_to_index: value " + std::to_string(x.at(i)) + " is outside [0, 1]");
    p[i] = static_cast<int64_t>(v);
  }
  return out;
}

Tensor index_to_levels(const Tensor& idx, int64_t levels, DType dtype) {
  return idx.to(dtype) / static_cast<double>(levels - 1);
}

Tensor normal_log_prob(const Tensor& x, const Tensor& mean, const Tensor& log_var) {
  return gaussian_log_prob(x, mean, log_var);
}

Tensor normal_rsample(const Tensor& mean, const Tensor& log_var, Generator& gen) {
  Tensor eps = gen.normal(mean.shape(), 0.0, 1.0, mean.dtype());
  return mean + exp(log_var * 0.5) * eps;
}

Tensor kl_normal_standard(const Tensor& mean, const Tensor& log_var) {
  return (square(mean) + exp(log_var) - 1.0 - log_var) * 0.5;
}

Tensor sum_per_example(const Tensor& t) {
  if (t.dim() <= 1) return t;
  Axes axes;
  for (size_t i = 1; i < t.dim(); ++i) axes.push_back(static_cast<int64_t>(i));
  return sum(t, axes);
}

}  // namespace dgm::dist
