// dgm/autograd/ops/norm.cpp — normalisation layers and dropout, composed of
// engine ops (so their gradients, and second gradients, come for free).
#include <cmath>

#include "autograd/ops.h"
#include "autograd/random.h"

namespace dgm {

namespace {
// (x - mean) / sqrt(var + eps) over `axes` (biased variance).
Tensor standardize(const Tensor& x, const Axes& axes, double eps) {
  Tensor mu = mean(x, axes, /*keepdim=*/true);
  Tensor centred = x - mu;
  Tensor v = mean(square(centred), axes, /*keepdim=*/true);
  return centred / sqrt(v + eps);
}
}  // namespace

Tensor layer_norm(const Tensor& x, int64_t k, const Tensor& weight, const Tensor& bias, double eps) {
  if (k < 1 || k > static_cast<int64_t>(x.dim()))
    throw Error("layer_norm: cannot normalise the last " + std::to_string(k) + " axes of " + x.shape().str());
  Shape norm_shape;
  for (size_t i = x.dim() - static_cast<size_t>(k); i < x.dim(); ++i) norm_shape.push_back(x.shape()[i]);
  for (const Tensor* t : {&weight, &bias})
    if (t->defined() && t->shape() != norm_shape)
      throw Error("layer_norm: weight/bias " + t->shape().str() + " must have the normalised shape " + norm_shape.str());
  Axes axes;
  for (int64_t i = 0; i < k; ++i) axes.push_back(-1 - i);
  Tensor y = standardize(x, axes, eps);
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  if (x.dim() < 2 || groups < 1 || x.shape()[1] % groups != 0)
    throw Error("group_norm: " + std::to_string(groups) + " groups do not divide the channels of " + x.shape().str());
  const int64_t c = x.shape()[1];
  for (const Tensor* t : {&weight, &bias})
    if (t->defined() && t->shape() != Shape{c})
      throw Error("group_norm: weight/bias " + t->shape().str() + " must be [" + std::to_string(c) + "]");
  Tensor y = reshape(standardize(reshape(x, {x.shape()[0], groups, -1}), {2}, eps), x.shape());
  Shape per_channel{1, c};
  for (size_t i = 2; i < x.dim(); ++i) per_channel.push_back(1);
  if (weight.defined()) y = y * reshape(weight, per_channel);
  if (bias.defined()) y = y + reshape(bias, per_channel);
  return y;
}

// y = x * m / (1 - p),  m ~ Bernoulli(1 - p);   dy/dx = m / (1 - p)
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  if (!(p >= 0.0 && p < 1.0)) throw Error("dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0) return x;
  Tensor keep = gen.bernoulli(x.shape(), 1.0 - p, x.dtype());
  return x * (keep * (1.0 / (1.0 - p)));
}

}  // namespace dgm
