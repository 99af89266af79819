// dgm/models/toolkit/transforms.cpp
#include "models/toolkit/transforms.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/ops.h"

namespace dgm::data {

namespace {
// Applies f to every element of a float tensor (a new tensor, no graph).
template <class F>
Tensor map_elements(const Tensor& x, const char* op, F f) {
  if (!is_floating(x.dtype())) throw Error(std::string(op) + ": expects a float tensor");
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = f(x.at(i));
    if (x.dtype() == DType::Float32) out.data<float>()[i] = static_cast<float>(v);
    else out.data<double>()[i] = v;
  }
  return out;
}
}  // namespace

Tensor scale_to_unit(const Tensor& x, double lo, double hi) {
  if (!(hi > lo)) throw Error("scale_to_unit: needs hi > lo");
  return map_elements(x, "scale_to_unit", [&](double v) { return (v - lo) / (hi - lo); });
}

Tensor binarize_static(const Tensor& x, uint64_t seed) {
  Generator g(seed);
  return binarize_dynamic(x, g);
}

Tensor binarize_threshold(const Tensor& x, double threshold) {
  return map_elements(x, "binarize_threshold", [&](double v) { return v > threshold ? 1.0 : 0.0; });
}

Tensor binarize_dynamic(const Tensor& x, Generator& gen) {
  return map_elements(x, "binarize", [&](double p) {
    if (!(p >= 0 && p <= 1)) throw Error("binarize: pixel value " + std::to_string(p) + " is outside [0, 1]");
    return gen.uniform01() < p ? 1.0 : 0.0;
  });
}

Tensor dequantize_uniform(const Tensor& x, int64_t levels, Generator& gen) {
  if (levels < 2) throw Error("dequantize_uniform: needs at least 2 levels");
  return map_elements(x, "dequantize_uniform", [&](double v) {
    const double k = std::round(v * static_cast<double>(levels - 1));
    if (k < 0 || k > static_cast<double>(levels - 1))
      throw Error("dequantize_uniform: value " + std::to_string(v) + " is outside [0, 1]");
    return (k + gen.uniform01()) / static_cast<double>(levels);
  });
}

LogitResult logit_transform(const Tensor& y, double alpha) {
  if (!(alpha >= 0 && alpha < 0.5)) throw Error("logit_transform: alpha must be in [0, 0.5)");
  if (y.dim() < 1) throw Error("logit_transform: expects a batch [N, ...]");
  const int64_t n = y.size(0), per = n > 0 ? y.numel() / n : 0;
  LogitResult r;
  r.log_det = Tensor::zeros({n}, DType::Float64);
  double* ld = r.log_det.data<double>();
  r.z = map_elements(y, "logit_transform", [&](double) { return 0.0; });
  for (int64_t i = 0; i < y.numel(); ++i) {
    const double s = alpha + (1 - 2 * alpha) * y.at(i);
    if (!(s > 0 && s < 1)) throw Error("logit_transform: value " + std::to_string(y.at(i)) + " maps outside (0, 1)");
    const double z = std::log(s) - std::log1p(-s);
    if (r.z.dtype() == DType::Float32) r.z.data<float>()[i] = static_cast<float>(z);
    else r.z.data<double>()[i] = z;
    ld[i / per] += std::log(1 - 2 * alpha) - std::log(s) - std::log1p(-s);
  }
  return r;
}

Tensor logit_inverse(const Tensor& z, double alpha) {
  return map_elements(z, "logit_inverse", [&](double v) { return (1 / (1 + std::exp(-v)) - alpha) / (1 - 2 * alpha); });
}

// ----------------------------------------------------------------- Batches
Batches::Batches(int64_t n, int64_t batch, bool shuffle, bool drop_last)
    : n_(n), batch_(batch), shuffle_(shuffle), drop_last_(drop_last) {
  if (n <= 0 || batch <= 0) throw Error("Batches: the data size and batch size must be positive");
}

int64_t Batches::batches_per_epoch() const { return drop_last_ ? n_ / batch_ : (n_ + batch_ - 1) / batch_; }

std::vector<Tensor> Batches::epoch(Generator& gen) const {
  Tensor order = shuffle_ ? gen.permutation(n_) : Tensor::arange(n_, DType::Int64);
  std::vector<Tensor> out;
  for (int64_t start = 0; start < n_; start += batch_) {
    const int64_t end = std::min(start + batch_, n_);
    if (end - start < batch_ && drop_last_) break;
    out.push_back(slice(order, 0, start, end));
  }
  return out;
}

}  // namespace dgm::data
