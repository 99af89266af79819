// dgm/models/distributions.h — the distributions the models output, once.
//
// Each has log_prob (differentiable in its parameters) and a sampler; the
// Gaussian's rsample is reparameterised (differentiable in mean and log-variance).
#pragma once

#include "autograd/ops.h"
#include "autograd/random.h"

namespace dgm::dist {

// ---------------------------------------------------------------- Bernoulli(sigmoid(logits))
// log p(x) = x log s + (1 - x) log(1 - s), elementwise, from logits (stable).
Tensor bernoulli_log_prob(const Tensor& logits, const Tensor& x);
Tensor bernoulli_sample(const Tensor& logits, Generator& gen);  // 0/1, no gradient

// ---------------------------------------------------------------- Categorical(softmax(logits))
// logits [..., K, ...] with the K categories along `axis`; x holds the
// category index of every other position (int64, logits' shape without `axis`).
Tensor categorical_log_prob(const Tensor& logits, const Tensor& x, int64_t axis);
Tensor categorical_sample(const Tensor& logits, int64_t axis, Generator& gen);  // int64 indices

// Values in [0, 1] on `levels` levels  <->  category indices 0..levels-1.
Tensor levels_to_index(const Tensor& x, int64_t levels);
Tensor index_to_levels(const Tensor& idx, int64_t levels, DType dtype = DType::Float32);

// ---------------------------------------------------------------- diagonal Gaussian N(mean, exp(log_var))
Tensor normal_log_prob(const Tensor& x, const Tensor& mean, const Tensor& log_var);
// mean + exp(log_var / 2) * eps, eps ~ N(0, I): differentiable in mean and log_var.
Tensor normal_rsample(const Tensor& mean, const Tensor& log_var, Generator& gen);
// KL(N(mean, exp(log_var)) || N(0, I)) per element: (mean^2 + exp(log_var) - 1 - log_var) / 2.
Tensor kl_normal_standard(const Tensor& mean, const Tensor& log_var);

// Sums all axes but the first: per-example totals [N].
Tensor sum_per_example(const Tensor& t);

}  // namespace dgm::dist
