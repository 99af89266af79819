// dgm/autograd/ops/reduce.cpp — reductions over any set of axes, with keepdim.
//
// The backward of a reduction broadcasts the (smaller) gradient back over the
// reduced axes: reshape it to the keepdim shape, then expand to the input's.
#include <algorithm>
#include <cmath>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"

namespace dgm {

namespace {

// Sorted, unique, non-negative axes; empty means all axes.
std::vector<size_t> normalize_axes(const Axes& axes, size_t ndim, const char* op) {
  std::vector<size_t> out;
  if (axes.empty()) {
    for (size_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (int64_t a : axes) out.push_back(normalize_axis(a, ndim, op));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw Error(std::string(op) + ": an axis is listed twice");
  return out;
}

Shape keepdim_shape(const Shape& s, const std::vector<size_t>& axes) {
  Shape k = s;
  for (size_t a : axes) k[a] = 1;
  return k;
}

Shape reduced_shape(const Shape& s, const std::vector<size_t>& axes, bool keepdim) {
  if (keepdim) return keepdim_shape(s, axes);
  Shape r;
  for (size_t i = 0; i < s.size(); ++i)
    if (!std::binary_search(axes.begin(), axes.end(), i)) r.push_back(s[i]);
  return r;
}

// Reshapes a plain (graph-free) result to its final shape, sharing storage.
Tensor view_as(const Tensor& t, const Shape& s) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = s;
  impl->dtype = t.dtype();
  impl->storage = t.impl().storage;
  return Tensor(std::move(impl));
}

// Raw reduction (no graph), result in the keepdim shape.
Tensor reduce_keepdim(kernels::Reduce op, const Tensor& x, const std::vector<size_t>& axes) {
  if (axes.size() == x.dim()) return view_as(kernels::reduce_all(op, x), keepdim_shape(x.shape(), axes));
  Tensor r = x;
  for (size_t a : axes) r = kernels::reduce_axis(op, r, a);
  return r;
}

// g (reduced shape) -> broadcast back over the input's shape.
Tensor unreduce(const Tensor& g, const Shape& keep, const Shape& in) {
  return expand(g.shape() == keep ? g : reshape(g, keep), in);
}

}  // namespace

// ---------------------------------------------------------------- sum
// y = sum_i x_i;   dy/dx_i = 1
struct SumBackward : Node {
  Shape in_shape, keep_shape;
  const char* name() const override { return "sum"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {unreduce(g, keep_shape, in_shape)}; }
};
Tensor sum(const Tensor& x, const Axes& axes_in, bool keepdim) {
  auto axes = normalize_axes(axes_in, x.dim(), "sum");
  Tensor out = view_as(reduce_keepdim(kernels::Reduce::Sum, x, axes), reduced_shape(x.shape(), axes, keepdim));
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<SumBackward>();
  node->in_shape = x.shape();
  node->keep_shape = keepdim_shape(x.shape(), axes);
  attach(out, node, {&x});
  return out;
}

// ---------------------------------------------------------------- mean
// y = (1/n) sum_i x_i   (composite: its gradient is sum's, divided by n)
Tensor mean(const Tensor& x, const Axes& axes_in, bool keepdim) {
  auto axes = normalize_axes(axes_in, x.dim(), "mean");
  int64_t n = 1;
  for (size_t a : axes) n *= x.shape()[a];
  if (n == 0) throw Error("mean: cannot average over an empty axis of " + x.shape().str());
  return sum(x, axes_in, keepdim) / static_cast<double>(n);
}

// ---------------------------------------------------------------- max / min
// y = max_i x_i;   dy/dx_i = [x_i = y] / #{j : x_j = y}   (ties share the gradient)
struct MaxMinBackward : Node {
  SavedTensor x, y;  // y in keepdim shape
  Shape keep_shape;
  bool is_max = true;
  const char* name() const override { return is_max ? "max" : "min"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor xv = x.unpack(*this), yv = y.unpack(*this);
    Tensor hit = eq(xv, yv.detach());                             // [x_i = y], no gradient
    Tensor count = reduce_keepdim(kernels::Reduce::Sum, hit, axes);  // ties per group
    return {unreduce(g, keep_shape, xv.shape()) * hit / count};
  }
  std::vector<size_t> axes;
  void release_saved() override { x.reset(), y.reset(); }
};
static Tensor max_min(const Tensor& x, const Axes& axes_in, bool keepdim, bool is_max) {
  const char* op = is_max ? "max" : "min";
  auto axes = normalize_axes(axes_in, x.dim(), op);
  Tensor keep = reduce_keepdim(is_max ? kernels::Reduce::Max : kernels::Reduce::Min, x, axes);
  Tensor out = view_as(keep, reduced_shape(x.shape(), axes, keepdim));
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<MaxMinBackward>();
  node->is_max = is_max;
  node->axes = axes;
  node->keep_shape = keep.shape();
  node->x = SavedTensor::input(x);
  node->y = SavedTensor::input(keep);
  attach(out, node, {&x});
  return out;
}
Tensor max(const Tensor& x, const Axes& axes, bool keepdim) { return max_min(x, axes, keepdim, true); }
Tensor min(const Tensor& x, const Axes& axes, bool keepdim) { return max_min(x, axes, keepdim, false); }

// ---------------------------------------------------------------- logsumexp
// y = log sum_i e^{x_i}  computed as m + log sum_i e^{x_i - m}, m = max_i x_i;
// dy/dx_i = e^{x_i - y} = softmax(x)_i
struct LogSumExpBackward : Node {
  SavedTensor x, y;  // y saved as the output, in keepdim shape
  Shape keep_shape;
  const char* name() const override { return "logsumexp"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor xv = x.unpack(*this);
    Tensor yk = reshape(y.unpack(*this), keep_shape);
    return {unreduce(g, keep_shape, xv.shape()) * exp(xv - yk)};
  }
  void release_saved() override { x.reset(), y.reset(); }
};
Tensor logsumexp(const Tensor& x, const Axes& axes_in, bool keepdim) {
  auto axes = normalize_axes(axes_in, x.dim(), "logsumexp");
  Tensor m = reduce_keepdim(kernels::Reduce::Max, x, axes);
  // A row of -inf stays -inf (not NaN): shift such rows by 0 instead.
  kernels::dispatch_float(m.dtype(), "logsumexp", [&](auto tag) {
    using T = decltype(tag);
    T* pm = m.data<T>();
    const int64_t n = m.numel();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(pm[i])) pm[i] = T(0);
  });
  Tensor shifted = kernels::binary(kernels::Binary::Sub, x, m, "logsumexp");
  Tensor s = reduce_keepdim(kernels::Reduce::Sum, kernels::unary::exp(shifted, "logsumexp"), axes);
  Tensor lse = kernels::binary(kernels::Binary::Add, kernels::unary::log(s, "logsumexp"), m,
                               "logsumexp");
  Tensor out = view_as(lse, reduced_shape(x.shape(), axes, keepdim));
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<LogSumExpBackward>();
  node->keep_shape = lse.shape();
  node->x = SavedTensor::input(x);
  attach(out, node, {&x});
  node->y = SavedTensor::output(out);
  return out;
}

// ---------------------------------------------------------------- var
// var = sum_i (x_i - mean)^2 / (n - 1)  (unbiased) or / n   (composite)
Tensor var(const Tensor& x, const Axes& axes_in, bool keepdim, bool unbiased) {
  auto axes = normalize_axes(axes_in, x.dim(), "var");
  int64_t n = 1;
  for (size_t a : axes) n *= x.shape()[a];
  if (n - (unbiased ? 1 : 0) <= 0)
    throw Error("var: " + std::to_string(n) + " element(s) per group is too few for " +
                (unbiased ? "the unbiased" : "a") + " variance of " + x.shape().str());
  Tensor centred = x - mean(x, axes_in, /*keepdim=*/true);
  return sum(square(centred), axes_in, keepdim) / static_cast<double>(n - (unbiased ? 1 : 0));
}

// ---------------------------------------------------------------- argmax (no gradient)
Tensor argmax(const Tensor& x, int64_t axis_in) {
  size_t axis = normalize_axis(axis_in, x.dim(), "argmax");
  const Shape& s = x.shape();
  int64_t outer = 1, inner = 1, n = s[axis];
  for (size_t i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  if (n == 0) throw Error("argmax: cannot reduce an empty axis of " + s.str());
  Shape os = s;
  os.erase(axis);
  Tensor out = Tensor::empty(os, DType::Int64);
  int64_t* po = out.data<int64_t>();
  kernels::dispatch_float(x.dtype(), "argmax", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        int64_t best = 0;
        for (int64_t j = 1; j < n; ++j)
          if (px[(o * n + j) * inner + i] > px[(o * n + best) * inner + i]) best = j;
        po[o * inner + i] = best;
      }
  });
  return out;
}

}  // namespace dgm
