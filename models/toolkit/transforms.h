// dgm/models/toolkit/transforms.h — data transforms, and minibatches.
//
// Images are float tensors in [0, 1] (from datasets.h). Each transform that
// changes the space a density lives in says how log-likelihoods convert.
#pragma once

#include <vector>

#include "autograd/random.h"

namespace dgm::data {

// Maps [lo, hi] linearly onto [0, 1].
Tensor scale_to_unit(const Tensor& x, double lo, double hi);

// Static binarization: one fixed Bernoulli(x) draw per pixel from `seed`
// (the same binary data set every time, as Salakhutdinov & Murray's MNIST).
Tensor binarize_static(const Tensor& x, uint64_t seed);
// Static binarization by thresholding: 1 where x > threshold.
Tensor binarize_threshold(const Tensor& x, double threshold = 0.5);
// Dynamic binarization: a fresh Bernoulli(x) draw on every call (every epoch).
Tensor binarize_dynamic(const Tensor& x, Generator& gen);

// Uniform dequantization of data with `levels` values k / (levels - 1):
// y = (k + u) / levels, u ~ U[0, 1). A continuous density p on [0, 1]^D then
// bounds the discrete log-likelihood: log P(k) >= E_u[log p(y)] - D log(levels),
// and bits per dimension = -(E log p(y) - D log levels) / (D ln 2).
Tensor dequantize_uniform(const Tensor& x, int64_t levels, Generator& gen);

// The logit transform (RealNVP): s = alpha + (1 - 2 alpha) y, z = log s - log(1 - s).
// log |det dz/dy| per example (summed over all but the first axis) is
// sum_i [log(1 - 2 alpha) - log s_i - log(1 - s_i)]; add it to log p(z) to get log p(y).
struct LogitResult {
  Tensor z;        // same shape as y
  Tensor log_det;  // [N] float64
};
LogitResult logit_transform(const Tensor& y, double alpha = 0.05);
// The inverse: y = (sigmoid(z) - alpha) / (1 - 2 alpha).
Tensor logit_inverse(const Tensor& z, double alpha = 0.05);

// Minibatches: index tensors (int64) covering 0..n-1 once per epoch, shuffled
// with the Generator (or in order); the last short batch kept or dropped.
class Batches {
 public:
  Batches(int64_t n, int64_t batch_size, bool shuffle = true, bool drop_last = false);
  std::vector<Tensor> epoch(Generator& gen) const;
  int64_t batches_per_epoch() const;

 private:
  int64_t n_, batch_;
  bool shuffle_, drop_last_;
};

}  // namespace dgm::data
