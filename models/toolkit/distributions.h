// dgm/models/toolkit/distributions.h — the distributions models are built from, once.
//
// Each is a small value object holding its parameters as tensors (batched:
// every element is its own distribution), with
//   log_prob(x)   elementwise log-density or log-mass, differentiable in the parameters
//   sample(gen)   a draw, no gradient
//   rsample(gen)  (continuous ones) a reparameterised draw, differentiable in the parameters
// Models sum log_prob over an example's dimensions with sum_per_example().
#pragma once

#include "autograd/ops.h"
#include "autograd/random.h"

namespace dgm::dist {

// ---------------------------------------------------------------- Normal(mean, exp(log_var))
//   log p(x) = -(x - mean)^2 / (2 var) - log(var) / 2 - log(2 pi) / 2
struct Normal {
  Tensor mean, log_var;
  static Normal standard(const Shape& shape, DType dtype = DType::Float32);  // N(0, 1)
  Tensor log_prob(const Tensor& x) const;
  Tensor sample(Generator& gen) const;
  // mean + exp(log_var / 2) * eps, eps ~ N(0, 1): differentiable in mean and log_var.
  Tensor rsample(Generator& gen) const;
  // KL(this || N(0, 1)) per element: (mean^2 + var - 1 - log var) / 2.
  Tensor kl_to_standard() const;
  // KL(this || p) per element: (log var_p - log var + (var + (mean - mean_p)^2) / var_p - 1) / 2.
  Tensor kl_to(const Normal& p) const;
};

// ---------------------------------------------------------------- Logistic(loc, exp(log_scale))
// CDF sigmoid((x - loc) / s); with z = (x - loc) / s:
//   log p(x) = -z - log s - 2 softplus(-z)          (NICE's prior, with loc 0, s 1)
// Mean loc, variance s^2 pi^2 / 3. Sampled by the inverse CDF: loc + s (log u - log(1 - u)).
struct Logistic {
  Tensor loc, log_scale;
  static Logistic standard(const Shape& shape, DType dtype = DType::Float32);
  Tensor log_prob(const Tensor& x) const;
  Tensor sample(Generator& gen) const;
  Tensor rsample(Generator& gen) const;
};

// ---------------------------------------------------------------- Bernoulli(sigmoid(logits))
//   log p(x) = x log s + (1 - x) log(1 - s), computed stably from the logits.
struct Bernoulli {
  Tensor logits;
  Tensor probs() const;
  Tensor log_prob(const Tensor& x) const;
  Tensor sample(Generator& gen) const;  // 0/1 in the logits' dtype
};

// ---------------------------------------------------------------- Categorical(softmax(logits, axis))
// The K categories lie along `axis` of the logits; a value is the category
// index (int64) of every other position: log_prob's x and sample() have the
// logits' shape without `axis`.
struct Categorical {
  Tensor logits;
  int64_t axis = 1;
  Tensor log_prob(const Tensor& x) const;
  Tensor sample(Generator& gen) const;  // int64 indices, by the inverse CDF
};

// ---------------------------------------------------------------- discretized logistic
// A Logistic(loc, s) put on the `levels` values x_k = k / (levels - 1) of [0, 1]
// (PixelCNN++'s likelihood for grey levels): value k gets the logistic's mass on
// its bin [x_k - h, x_k + h], h = 1 / (2 (levels - 1)), the end bins extended
// to -inf and +inf, so that the masses of all levels sum to one:
//   P(x_0) = sigmoid((x_0 + h - loc) / s),  P(x_last) = 1 - sigmoid((x_last - h - loc) / s),
//   P(x_k) = sigmoid((x_k + h - loc) / s) - sigmoid((x_k - h - loc) / s).
struct DiscretizedLogistic {
  Tensor loc, log_scale;
  int64_t levels = 256;
  Tensor log_prob(const Tensor& x) const;  // x on the levels (values k / (levels - 1))
};

// ---------------------------------------------------------------- helpers
// Values in [0, 1] on `levels` levels  <->  category indices 0..levels-1.
Tensor levels_to_index(const Tensor& x, int64_t levels);
Tensor index_to_levels(const Tensor& idx, int64_t levels, DType dtype = DType::Float32);

// Sums all axes but the first: per-example totals [N].
Tensor sum_per_example(const Tensor& t);

// Phi(z) = P(Z <= z) for Z ~ N(0, 1), by erfc (accurate in both tails).
double standard_normal_cdf(double z);

}  // namespace dgm::dist
