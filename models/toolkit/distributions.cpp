// dgm/models/toolkit/distributions.cpp
#include "models/toolkit/distributions.h"

#include <cmath>

#include "autograd/graph.h"

namespace dgm::dist {

// ---------------------------------------------------------------- Normal
Normal Normal::standard(const Shape& shape, DType dtype) {
  return {Tensor::zeros(shape, dtype), Tensor::zeros(shape, dtype)};
}
Tensor Normal::log_prob(const Tensor& x) const {
  return (square(x - mean) * exp(neg(log_var)) + log_var + std::log(2.0 * M_PI)) * -0.5;
}
Tensor Normal::sample(Generator& gen) const {
  NoGradGuard ng;
  return rsample(gen);
}
Tensor Normal::rsample(Generator& gen) const {
  Tensor eps = gen.normal(mean.shape(), 0.0, 1.0, mean.dtype());
  return mean + exp(log_var * 0.5) * eps;
}
Tensor Normal::kl_to_standard() const { return (square(mean) + exp(log_var) - 1.0 - log_var) * 0.5; }
Tensor Normal::kl_to(const Normal& p) const {
  return (p.log_var - log_var + (exp(log_var) + square(mean - p.mean)) / exp(p.log_var) - 1.0) * 0.5;
}

// ---------------------------------------------------------------- Logistic
Logistic Logistic::standard(const Shape& shape, DType dtype) {
  return {Tensor::zeros(shape, dtype), Tensor::zeros(shape, dtype)};
}
Tensor Logistic::log_prob(const Tensor& x) const {
  Tensor z = (x - loc) / exp(log_scale);
  return neg(z) - log_scale - softplus(neg(z)) * 2.0;
}
Tensor Logistic::sample(Generator& gen) const {
  NoGradGuard ng;
  return rsample(gen);
}
Tensor Logistic::rsample(Generator& gen) const {
  // u in (0, 1): the generator's [0, 1) moved off 0
  Tensor u = clamp(gen.uniform(loc.shape(), 0.0, 1.0, loc.dtype()), 1e-12, 1 - 1e-7);
  return loc + exp(log_scale) * (log(u) - log1p(neg(u)));
}

// ---------------------------------------------------------------- Bernoulli
Tensor Bernoulli::probs() const { return sigmoid(logits); }
Tensor Bernoulli::log_prob(const Tensor& x) const {
  return neg(binary_cross_entropy_with_logits(logits, x, Reduction::None));
}
Tensor Bernoulli::sample(Generator& gen) const {
  NoGradGuard ng;
  return gen.bernoulli(sigmoid(logits.detach()));
}

// ---------------------------------------------------------------- Categorical
Tensor Categorical::log_prob(const Tensor& x) const {
  if (x.dtype() != DType::Int64)
    throw Error(std::string("Categorical::log_prob: x must hold int64 category indices, got ") + dtype_name(x.dtype()));
  const int64_t ax = static_cast<int64_t>(normalize_axis(axis, logits.dim(), "Categorical::log_prob"));
  return squeeze(gather(log_softmax(logits, ax), ax, unsqueeze(x, ax)), ax);
}
Tensor Categorical::sample(Generator& gen) const {
  NoGradGuard ng;
  const size_t ax = normalize_axis(axis, logits.dim(), "Categorical::sample");
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

// ---------------------------------------------------------------- DiscretizedLogistic
Tensor DiscretizedLogistic::log_prob(const Tensor& x) const {
  if (levels < 2) throw Error("DiscretizedLogistic: needs at least 2 levels, got " + std::to_string(levels));
  const double h = 0.5 / static_cast<double>(levels - 1);
  Tensor inv_s = exp(neg(log_scale));
  Tensor upper = (x + h - loc) * inv_s, lower = (x - h - loc) * inv_s;
  // log(sigmoid(upper) - sigmoid(lower)), floored so that a bin far in the tail stays finite
  Tensor interior = log(clamp(sigmoid(upper) - sigmoid(lower), 1e-12, 1.0));
  const Tensor first = lt(x, Tensor::scalar(h, x.dtype())), last = gt(x, Tensor::scalar(1 - h, x.dtype()));
  return where(first, log_sigmoid(upper), where(last, log_sigmoid(neg(lower)), interior));
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

Tensor sum_per_example(const Tensor& t) {
  if (t.dim() <= 1) return t;
  Axes axes;
  for (size_t i = 1; i < t.dim(); ++i) axes.push_back(static_cast<int64_t>(i));
  return sum(t, axes);
}

double standard_normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

}  // namespace dgm::dist
