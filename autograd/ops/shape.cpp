// dgm/autograd/ops/shape.cpp — ops that move elements without computing:
// reshape, permute, slicing, indexing, concatenation, broadcasting.
//
// Each backward moves the gradient back to where its element came from, so
// every adjoint here is itself one of these ops (slice <-> slice_backward,
// index_select <-> index_add_into_zeros, gather <-> scatter_add_into_zeros,
// expand <-> sum_to, concat <-> slice).
#include <algorithm>
#include <cstring>
#include <type_traits>
#include <numeric>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"

namespace dgm {

namespace {

// Splits a shape around `axis`: outer * n * inner elements.
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit split_at(const Shape& s, size_t axis) {
  AxisSplit r;
  for (size_t i = 0; i < axis; ++i) r.outer *= s[i];
  r.n = s[axis];
  for (size_t i = axis + 1; i < s.size(); ++i) r.inner *= s[i];
  return r;
}

void check_index(const Tensor& index, const char* op) {
  if (index.dtype() != DType::Int64)
    throw Error(std::string(op) + ": indices must be int64, got " + dtype_name(index.dtype()));
}

// Copies `rows` blocks of `bytes` bytes; the blocks of src start `src_step`
// bytes apart, those of dst `dst_step` apart. Slicing a column out of a
// [B, 2] tensor copies B blocks of one element: a memcpy call for each costs
// far more than the copy, so blocks of 4, 8 or 16 bytes are moved with a
// fixed-size memcpy, which the compiler turns into one load and one store.
void copy_rows(char* dst, int64_t dst_step, const char* src, int64_t src_step, int64_t rows, size_t bytes) {
  if (dst_step == static_cast<int64_t>(bytes) && src_step == static_cast<int64_t>(bytes)) {
    std::memcpy(dst, src, static_cast<size_t>(rows) * bytes);
    return;
  }
  auto fixed = [&](auto size) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_step, src + r * src_step, decltype(size)::value);
  };
  switch (bytes) {
    case 4: return fixed(std::integral_constant<size_t, 4>{});
    case 8: return fixed(std::integral_constant<size_t, 8>{});
    case 16: return fixed(std::integral_constant<size_t, 16>{});
    default:
      for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_step, src + r * src_step, bytes);
  }
}

}  // namespace

// ---------------------------------------------------------------- reshape
// y = x viewed with another shape (same storage);   dx = reshape(dy, x.shape)
struct ReshapeBackward : Node {
  Shape in_shape;
  const char* name() const override { return "reshape"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {reshape(g, in_shape)}; }
};
Tensor reshape(const Tensor& x, const Shape& shape_in) {
  Shape shape = shape_in;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw Error("reshape: only one axis can be -1 in " + shape_in.str());
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      throw Error("reshape: negative size in " + shape_in.str());
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw Error("reshape: cannot reshape " + x.shape().str() + " to " + shape_in.str());
    shape[static_cast<size_t>(infer)] = x.numel() / known;
  }
  if (shape.numel() != x.numel())
    throw Error("reshape: cannot reshape " + x.shape().str() + " (" + std::to_string(x.numel()) +
                " elements) to " + shape_in.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = x.dtype();
  impl->storage = x.impl().storage;
  Tensor out(std::move(impl));
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ReshapeBackward>();
    node->in_shape = x.shape();
    attach(out, node, {&x});
  }
  return out;
}

Tensor flatten(const Tensor& x, int64_t start_axis) {
  if (x.dim() == 0) return reshape(x, Shape{1});
  size_t start = normalize_axis(start_axis, x.dim(), "flatten");
  Shape s;
  for (size_t i = 0; i < start; ++i) s.push_back(x.shape()[i]);
  s.push_back(-1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t axis_in) {
  size_t axis = normalize_axis(axis_in, x.dim(), "squeeze");
  if (x.shape()[axis] != 1)
    throw Error("squeeze: axis " + std::to_string(axis_in) + " of " + x.shape().str() + " has size " +
                std::to_string(x.shape()[axis]) + ", not 1");
  Shape s = x.shape();
  s.erase(axis);
  return reshape(x, s);
}

Tensor unsqueeze(const Tensor& x, int64_t axis_in) {
  size_t axis = normalize_axis(axis_in, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(axis, 1);
  return reshape(x, s);
}

// ---------------------------------------------------------------- permute
// y[i_order] = x[i];   dx = permute(dy, inverse order)
struct PermuteBackward : Node {
  Axes inverse;
  const char* name() const override { return "permute"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {permute(g, inverse)}; }
};
Tensor permute(const Tensor& x, const Axes& order_in) {
  if (order_in.size() != x.dim())
    throw Error("permute: order has " + std::to_string(order_in.size()) + " axes but the tensor " +
                x.shape().str() + " has " + std::to_string(x.dim()));
  std::vector<size_t> order;
  std::vector<bool> seen(x.dim(), false);
  for (int64_t a : order_in) {
    size_t ax = normalize_axis(a, x.dim(), "permute");
    if (seen[ax]) throw Error("permute: axis " + std::to_string(a) + " appears twice");
    seen[ax] = true;
    order.push_back(ax);
  }
  Tensor out = kernels::permute(x, order);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<PermuteBackward>();
    node->inverse.resize(order.size());
    for (size_t i = 0; i < order.size(); ++i) node->inverse[order[i]] = static_cast<int64_t>(i);
    attach(out, node, {&x});
  }
  return out;
}

Tensor transpose(const Tensor& x, int64_t a0, int64_t a1) {
  size_t i = normalize_axis(a0, x.dim(), "transpose"), j = normalize_axis(a1, x.dim(), "transpose");
  Axes order(x.dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[i], order[j]);
  return permute(x, order);
}

// ---------------------------------------------------------------- expand
// y = x broadcast to `shape`;   dx = sum_to(dy, x.shape)
struct ExpandBackward : Node {
  Shape in_shape;
  const char* name() const override { return "expand"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {sum_to(g, in_shape)}; }
};
Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor out = kernels::expand(x, shape);
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<ExpandBackward>();
    node->in_shape = x.shape();
    attach(out, node, {&x});
  }
  return out;
}

// ---------------------------------------------------------------- slice
// y = x[start : end : step] along axis;   dx = dy placed back into zeros
struct SliceBackward : Node {
  Shape in_shape;
  size_t axis = 0;
  int64_t start = 0, step = 1;
  const char* name() const override { return "slice"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {slice_backward(g, in_shape, static_cast<int64_t>(axis), start, step)};
  }
};
Tensor slice(const Tensor& x, int64_t axis_in, int64_t start, int64_t end, int64_t step) {
  size_t axis = normalize_axis(axis_in, x.dim(), "slice");
  if (step <= 0) throw Error("slice: step must be positive, got " + std::to_string(step));
  const int64_t n = x.shape()[axis];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  const int64_t len = (end - start + step - 1) / step;
  Shape os = x.shape();
  os[axis] = len;
  Tensor out = Tensor::empty(os, x.dtype());
  AxisSplit sp = split_at(x.shape(), axis);
  const size_t esz = dtype_size(x.dtype());
  const char* px = static_cast<const char*>(x.impl().storage->data);
  char* po = static_cast<char*>(out.impl().storage->data);
  const int64_t block = sp.inner * static_cast<int64_t>(esz);  // bytes of one index along axis
  if (step == 1)  // each outer index holds one contiguous run of len blocks
    copy_rows(po, len * block, px + start * block, n * block, sp.outer, static_cast<size_t>(len * block));
  else
    for (int64_t o = 0; o < sp.outer; ++o)
      copy_rows(po + o * len * block, block, px + (o * n + start) * block, step * block, len, static_cast<size_t>(block));
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<SliceBackward>();
    node->in_shape = x.shape();
    node->axis = axis;
    node->start = start;
    node->step = step;
    attach(out, node, {&x});
  }
  return out;
}

// ---------------------------------------------------------------- select
// y = x[..., index, ...] along axis, that axis removed (PyTorch's select);
// dx = dy with the axis restored, placed back into zeros at index
struct SelectBackward : Node {
  Shape in_shape;
  size_t axis = 0;
  int64_t index = 0;
  const char* name() const override { return "select"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {slice_backward(unsqueeze(g, static_cast<int64_t>(axis)), in_shape, static_cast<int64_t>(axis), index, 1)};
  }
  // sum[..., index, ...] += g: the same gradient, added where it goes
  bool add_gradient_into(const Tensor& g, Tensor& sum) override {
    if (g.dtype() != sum.dtype() || (g.dtype() != DType::Float32 && g.dtype() != DType::Float64)) return false;
    const AxisSplit sp = split_at(in_shape, axis);
    kernels::dispatch_float(g.dtype(), "select backward", [&](auto tag) {
      using T = decltype(tag);
      const T* src = g.data<T>();
      T* dst = sum.data<T>();
      for (int64_t o = 0; o < sp.outer; ++o) {
        T* d = dst + (o * sp.n + index) * sp.inner;
        const T* s = src + o * sp.inner;
        for (int64_t i = 0; i < sp.inner; ++i) d[i] += s[i];
      }
    });
    return true;
  }
};
Tensor select(const Tensor& x, int64_t axis_in, int64_t index) {
  size_t axis = normalize_axis(axis_in, x.dim(), "select");
  const int64_t n = x.shape()[axis];
  if (index < -n || index >= n)
    throw Error("select: index " + std::to_string(index) + " is out of range for axis " + std::to_string(axis_in) +
                " of " + x.shape().str());
  if (index < 0) index += n;
  Shape os = x.shape();
  os.erase(axis);
  Tensor out = Tensor::empty(os, x.dtype());
  AxisSplit sp = split_at(x.shape(), axis);
  const int64_t block = sp.inner * static_cast<int64_t>(dtype_size(x.dtype()));
  copy_rows(static_cast<char*>(out.impl().storage->data), block,
            static_cast<const char*>(x.impl().storage->data) + index * block, n * block, sp.outer,
            static_cast<size_t>(block));
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<SelectBackward>();
    node->in_shape = x.shape();
    node->axis = axis;
    node->index = index;
    attach(out, node, {&x});
  }
  return out;
}

// y = zeros(shape) with y[start :: step] = g along axis;   dg = slice(dy, ...)
struct SliceBackwardBackward : Node {
  size_t axis = 0;
  int64_t start = 0, step = 1, len = 0;
  const char* name() const override { return "slice_backward"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {slice(g, static_cast<int64_t>(axis), start, start + len * step, step)};
  }
};
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t axis_in, int64_t start, int64_t step) {
  size_t axis = normalize_axis(axis_in, shape.size(), "slice_backward");
  Tensor out = Tensor::zeros(shape, g.dtype());
  AxisSplit sp = split_at(shape, axis);
  const int64_t len = g.shape()[axis];
  const size_t esz = dtype_size(g.dtype());
  const char* pg = static_cast<const char*>(g.impl().storage->data);
  char* po = static_cast<char*>(out.impl().storage->data);
  const int64_t block = sp.inner * static_cast<int64_t>(esz);  // bytes of one index along axis
  if (step == 1)
    copy_rows(po + start * block, sp.n * block, pg, len * block, sp.outer, static_cast<size_t>(len * block));
  else
    for (int64_t o = 0; o < sp.outer; ++o)
      copy_rows(po + (o * sp.n + start) * block, step * block, pg + o * len * block, block, len,
                static_cast<size_t>(block));
  if (any_requires_grad({&g})) {
    auto node = std::make_shared<SliceBackwardBackward>();
    node->axis = axis;
    node->start = start;
    node->step = step;
    node->len = len;
    attach(out, node, {&g});
  }
  return out;
}

// ---------------------------------------------------------------- index_select
// y = x[index] along axis;   dx = dy added into zeros at index (repeats add up)
struct IndexSelectBackward : Node {
  Shape in_shape;
  size_t axis = 0;
  Tensor index;  // int64, never requires grad
  const char* name() const override { return "index_select"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {index_add_into_zeros(g, in_shape, static_cast<int64_t>(axis), index)};
  }
};
Tensor index_select(const Tensor& x, int64_t axis_in, const Tensor& index) {
  check_index(index, "index_select");
  if (index.dim() != 1) throw Error("index_select: index must be 1-D, got " + index.shape().str());
  size_t axis = normalize_axis(axis_in, x.dim(), "index_select");
  AxisSplit sp = split_at(x.shape(), axis);
  const int64_t len = index.numel();
  const int64_t* pi = index.data<int64_t>();
  for (int64_t j = 0; j < len; ++j)
    if (pi[j] < 0 || pi[j] >= sp.n)
      throw Error("index_select: index " + std::to_string(pi[j]) + " is out of range for axis " +
                  std::to_string(axis) + " of " + x.shape().str());
  Shape os = x.shape();
  os[axis] = len;
  Tensor out = Tensor::empty(os, x.dtype());
  const int64_t block = sp.inner * static_cast<int64_t>(dtype_size(x.dtype()));  // bytes of one index
  const char* px = static_cast<const char*>(x.impl().storage->data);
  char* po = static_cast<char*>(out.impl().storage->data);
  for (int64_t j = 0; j < len; ++j)  // index j's block in every outer slice
    copy_rows(po + j * block, len * block, px + pi[j] * block, sp.n * block, sp.outer, static_cast<size_t>(block));
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<IndexSelectBackward>();
    node->in_shape = x.shape();
    node->axis = axis;
    node->index = index;
    attach(out, node, {&x});
  }
  return out;
}

// y = zeros(shape); y[index[j]] += g[j] along axis;   dg = index_select(dy, index)
struct IndexAddBackward : Node {
  size_t axis = 0;
  Tensor index;
  const char* name() const override { return "index_add"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {index_select(g, static_cast<int64_t>(axis), index)};
  }
};
Tensor index_add_into_zeros(const Tensor& g, const Shape& shape, int64_t axis_in, const Tensor& index) {
  check_index(index, "index_add");
  size_t axis = normalize_axis(axis_in, shape.size(), "index_add");
  Tensor out = Tensor::zeros(shape, g.dtype());
  AxisSplit sp = split_at(shape, axis);
  const int64_t len = index.numel();
  const int64_t* pi = index.data<int64_t>();
  kernels::dispatch_float(g.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* po = out.data<T>();
    for (int64_t o = 0; o < sp.outer; ++o)
      for (int64_t j = 0; j < len; ++j) {
        T* dst = po + (o * sp.n + pi[j]) * sp.inner;
        const T* src = pg + (o * len + j) * sp.inner;
        for (int64_t i = 0; i < sp.inner; ++i) dst[i] += src[i];
      }
  });
  if (any_requires_grad({&g})) {
    auto node = std::make_shared<IndexAddBackward>();
    node->axis = axis;
    node->index = index;
    attach(out, node, {&g});
  }
  return out;
}

// ---------------------------------------------------------------- gather / scatter_add
namespace {
// Calls f(out_offset, src_offset) for every element of `index`, where the
// source offset replaces the coordinate along `axis` by the index value.
template <class F>
void for_each_gather(const Shape& index_shape, const Shape& src_shape, size_t axis, const int64_t* pi,
                     F f) {
  const size_t nd = index_shape.size();
  std::vector<int64_t> src_strides = contiguous_strides(src_shape);
  std::vector<int64_t> idx(nd, 0);
  const int64_t total = index_shape.numel();
  for (int64_t o = 0; o < total; ++o) {
    int64_t off = 0;
    for (size_t k = 0; k < nd; ++k) off += (k == axis ? pi[o] : idx[k]) * src_strides[k];
    f(o, off);
    for (size_t k = nd; k-- > 0;) {
      if (++idx[k] < index_shape[k]) break;
      idx[k] = 0;
    }
  }
}

void check_gather(const Tensor& index, const Shape& src, size_t axis, const char* op) {
  check_index(index, op);
  if (index.dim() != src.size())
    throw Error(std::string(op) + ": index " + index.shape().str() + " must have the rank of " + src.str());
  for (size_t k = 0; k < src.size(); ++k)
    if (k != axis && index.shape()[k] > src[k])
      throw Error(std::string(op) + ": index " + index.shape().str() + " is larger than " + src.str() +
                  " along axis " + std::to_string(k));
  const int64_t* pi = index.data<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i)
    if (pi[i] < 0 || pi[i] >= src[axis])
      throw Error(std::string(op) + ": index " + std::to_string(pi[i]) + " is out of range for axis " +
                  std::to_string(axis) + " of " + src.str());
}
}  // namespace

// y[..i..] = x[..index[..i..]..] along axis;   dx = scatter-add of dy at index
struct GatherBackward : Node {
  Shape in_shape;
  size_t axis = 0;
  Tensor index;
  const char* name() const override { return "gather"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {scatter_add_into_zeros(g, in_shape, static_cast<int64_t>(axis), index)};
  }
};
Tensor gather(const Tensor& x, int64_t axis_in, const Tensor& index) {
  size_t axis = normalize_axis(axis_in, x.dim(), "gather");
  check_gather(index, x.shape(), axis, "gather");
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  kernels::dispatch_float(x.dtype(), "gather", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_gather(index.shape(), x.shape(), axis, index.data<int64_t>(),
                    [&](int64_t o, int64_t s) { po[o] = px[s]; });
  });
  if (any_requires_grad({&x})) {
    auto node = std::make_shared<GatherBackward>();
    node->in_shape = x.shape();
    node->axis = axis;
    node->index = index;
    attach(out, node, {&x});
  }
  return out;
}

// y = zeros(shape); y[..index[..i..]..] += g[..i..];   dg = gather(dy, index)
struct ScatterAddBackward : Node {
  size_t axis = 0;
  Tensor index;
  const char* name() const override { return "scatter_add"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {gather(g, static_cast<int64_t>(axis), index)};
  }
};
Tensor scatter_add_into_zeros(const Tensor& g, const Shape& shape, int64_t axis_in, const Tensor& index) {
  size_t axis = normalize_axis(axis_in, shape.size(), "scatter_add");
  check_gather(index, shape, axis, "scatter_add");
  if (g.shape() != index.shape())
    throw Error("scatter_add: values " + g.shape().str() + " must match index " + index.shape().str());
  Tensor out = Tensor::zeros(shape, g.dtype());
  kernels::dispatch_float(g.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    T* po = out.data<T>();
    for_each_gather(index.shape(), shape, axis, index.data<int64_t>(),
                    [&](int64_t o, int64_t s) { po[s] += pg[o]; });
  });
  if (any_requires_grad({&g})) {
    auto node = std::make_shared<ScatterAddBackward>();
    node->axis = axis;
    node->index = index;
    attach(out, node, {&g});
  }
  return out;
}

// ---------------------------------------------------------------- concat / stack
// y = [x_0, x_1, ...] along axis;   dx_k = the k-th block of dy
struct ConcatBackward : Node {
  size_t axis = 0;
  std::vector<int64_t> offsets, sizes;
  const char* name() const override { return "concat"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    std::vector<Tensor> r;
    for (size_t k = 0; k < sizes.size(); ++k)
      r.push_back(next[k] ? slice(g, static_cast<int64_t>(axis), offsets[k], offsets[k] + sizes[k]) : Tensor());
    return r;
  }
};
Tensor concat(const std::vector<Tensor>& xs, int64_t axis_in) {
  if (xs.empty()) throw Error("concat: needs at least one tensor");
  const Tensor& first = xs[0];
  size_t axis = normalize_axis(axis_in, first.dim(), "concat");
  Shape os = first.shape();
  int64_t total = 0;
  for (const Tensor& x : xs) {
    bool ok = x.dtype() == first.dtype() && x.dim() == first.dim();
    for (size_t k = 0; ok && k < x.dim(); ++k) ok = k == axis || x.shape()[k] == first.shape()[k];
    if (!ok)
      throw Error("concat: cannot join " + first.shape().str() + " " + dtype_name(first.dtype()) + " with " +
                  x.shape().str() + " " + dtype_name(x.dtype()) + " along axis " + std::to_string(axis_in));
    total += x.shape()[axis];
  }
  os[axis] = total;
  Tensor out = Tensor::empty(os, first.dtype());
  AxisSplit sp = split_at(os, axis);
  const size_t esz = dtype_size(first.dtype());
  char* po = static_cast<char*>(out.impl().storage->data);
  auto node = std::make_shared<ConcatBackward>();
  node->axis = axis;
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    const int64_t n = x.shape()[axis];
    const char* px = static_cast<const char*>(x.impl().storage->data);
    const int64_t block = sp.inner * static_cast<int64_t>(esz);
    copy_rows(po + offset * block, total * block, px, n * block, sp.outer, static_cast<size_t>(n * block));
    node->offsets.push_back(offset);
    node->sizes.push_back(n);
    offset += n;
  }
  bool needs = false;
  for (const Tensor& x : xs) needs = needs || any_requires_grad({&x});
  if (needs) attach(out, node, xs);
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  if (xs.empty()) throw Error("stack: needs at least one tensor");
  for (const Tensor& x : xs)
    if (x.shape() != xs[0].shape())
      throw Error("stack: all tensors must have one shape, got " + xs[0].shape().str() + " and " + x.shape().str());
  std::vector<Tensor> us;
  for (const Tensor& x : xs) us.push_back(unsqueeze(x, axis));
  return concat(us, axis);
}

}  // namespace dgm
