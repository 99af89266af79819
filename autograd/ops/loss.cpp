// dgm/autograd/ops/loss.cpp — softmax, log-softmax and the losses.
#include <cmath>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"

namespace dgm {

namespace {

// Row-wise (along `axis`) stable softmax / log-softmax into `out`.
// For each slice: m = max x, s = sum e^{x - m}; log_softmax = x - m - log s.
void softmax_kernel(const Tensor& x, size_t axis, bool take_log, Tensor& out) {
  const Shape& sh = x.shape();
  int64_t outer = 1, n = sh[axis], inner = 1;
  for (size_t i = 0; i < axis; ++i) outer *= sh[i];
  for (size_t i = axis + 1; i < sh.size(); ++i) inner *= sh[i];
  kernels::dispatch_float(x.dtype(), take_log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* row = px + o * n * inner + i;
        T* orow = po + o * n * inner + i;
        T m = row[0];
        for (int64_t j = 1; j < n; ++j) m = std::max(m, row[j * inner]);
        if (!std::isfinite(m)) m = T(0);
        T s = 0;
        for (int64_t j = 0; j < n; ++j) s += std::exp(row[j * inner] - m);
        if (take_log) {
          T ls = m + std::log(s);
          for (int64_t j = 0; j < n; ++j) orow[j * inner] = row[j * inner] - ls;
        } else {
          T inv = T(1) / s;
          for (int64_t j = 0; j < n; ++j) orow[j * inner] = std::exp(row[j * inner] - m) * inv;
        }
      }
  });
}

Tensor reduce(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    case Reduction::Sum: return sum(l);
    case Reduction::Mean: return mean(l);
  }
  return l;
}

}  // namespace

// ---------------------------------------------------------------- softmax
// y_i = e^{x_i} / sum_j e^{x_j};   dx = y * (g - sum_j g_j y_j)
struct SoftmaxBackward : Node {
  SavedTensor y;
  int64_t axis = -1;
  const char* name() const override { return "softmax"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor yv = y.unpack(*this);
    return {yv * (g - sum(g * yv, {axis}, true))};
  }
  void release_saved() override { y.reset(); }
};
Tensor softmax(const Tensor& x, int64_t axis_in) {
  size_t axis = normalize_axis(axis_in, x.dim(), "softmax");
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  softmax_kernel(x, axis, false, out);
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<SoftmaxBackward>();
  node->axis = static_cast<int64_t>(axis);
  attach(out, node, {&x});
  node->y = SavedTensor::output(out);
  return out;
}

// ---------------------------------------------------------------- log_softmax
// y_i = x_i - log sum_j e^{x_j};   dx = g - e^{y} * sum_j g_j
struct LogSoftmaxBackward : Node {
  SavedTensor y;
  int64_t axis = -1;
  const char* name() const override { return "log_softmax"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {g - exp(y.unpack(*this)) * sum(g, {axis}, true)};
  }
  void release_saved() override { y.reset(); }
};
Tensor log_softmax(const Tensor& x, int64_t axis_in) {
  size_t axis = normalize_axis(axis_in, x.dim(), "log_softmax");
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  softmax_kernel(x, axis, true, out);
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<LogSoftmaxBackward>();
  node->axis = static_cast<int64_t>(axis);
  attach(out, node, {&x});
  node->y = SavedTensor::output(out);
  return out;
}

// ---------------------------------------------------------------- binary cross-entropy
// l(x, t) = max(x, 0) - x t + log(1 + e^{-|x|})   (= -[t log s(x) + (1-t) log(1 - s(x))])
// dl/dx = sigmoid(x) - t,   dl/dt = -x
struct BCEWithLogitsBackward : Node {
  SavedTensor x, t;
  const char* name() const override { return "binary_cross_entropy_with_logits"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor xv = x.unpack(*this);
    Tensor gx, gt;
    // one pass when no graph is being built; under create_graph, engine ops (differentiable again)
    if (next[0] && !GradMode::is_enabled() && g.shape() == xv.shape() && g.dtype() == xv.dtype())
      gx = kernels::bce_with_logits_grad(g, xv, t.unpack(*this));
    else if (next[0])
      gx = g * (sigmoid(xv) - t.unpack(*this));
    if (next[1]) gt = neg(g * xv);
    return {gx, gt};
  }
  void release_saved() override { x.reset(), t.reset(); }
};
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction) {
  // l = softplus(x) - x t, with softplus(x) = max(x, 0) + log(1 + e^{-|x|}) vectorised, in one pass
  // (the kernel checks dtypes and shapes, naming the op).
  Tensor l = kernels::bce_with_logits(logits, target, "binary_cross_entropy_with_logits");
  if (any_requires_grad({&logits, &target})) {
    auto node = std::make_shared<BCEWithLogitsBackward>();
    node->x = SavedTensor::input(logits);
    node->t = SavedTensor::input(target);
    attach(l, node, {&logits, &target});
  }
  return reduce(l, reduction);
}

// ---------------------------------------------------------------- cross-entropy (composite)
// l_n = -log softmax(x_n)[t_n]
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction) {
  if (target.dtype() != DType::Int64)
    throw Error(std::string("cross_entropy: targets must be int64 class indices, got ") + dtype_name(target.dtype()));
  if (logits.dim() < 2 || target.dim() + 1 != logits.dim() || target.shape()[0] != logits.shape()[0])
    throw Error("cross_entropy: logits " + logits.shape().str() + " ([N, C, ...]) do not fit targets " +
                target.shape().str() + " ([N, ...])");
  for (size_t k = 1; k < target.dim(); ++k)
    if (target.shape()[k] != logits.shape()[k + 1])
      throw Error("cross_entropy: logits " + logits.shape().str() + " do not fit targets " + target.shape().str());
  const int64_t classes = logits.shape()[1];
  const int64_t* pt = target.data<int64_t>();
  for (int64_t i = 0; i < target.numel(); ++i)
    if (pt[i] < 0 || pt[i] >= classes)
      throw Error("cross_entropy: target " + std::to_string(pt[i]) + " is not a class in [0, " +
                  std::to_string(classes) + ")");
  Tensor picked = gather(log_softmax(logits, 1), 1, unsqueeze(target, 1).detach());
  return reduce(neg(squeeze(picked, 1)), reduction);
}

// ---------------------------------------------------------------- mean squared error (composite)
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (input.shape() != target.shape())
    throw Error("mse_loss: input " + input.shape().str() + " and target " + target.shape().str() +
                " must have one shape");
  return reduce(square(input - target), reduction);
}

}  // namespace dgm
