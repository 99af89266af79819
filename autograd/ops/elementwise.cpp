// dgm/autograd/ops/elementwise.cpp — binary ops with NumPy broadcasting.
//
// Every backward here ends in sum_to(): if an input was broadcast in the
// forward pass, the gradient that reaches it has the output's shape and is
// summed back to the input's shape. That is the only place where broadcast
// gradients are reduced.
#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"

namespace dgm {

using kernels::Binary;

// ---------------------------------------------------------------- sum_to
// The adjoint of broadcasting: sums g over the axes that broadcasting added
// (leading axes) or stretched (axes of size 1 in `shape`).
Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const size_t lead = g.dim() - shape.size();
  Axes axes;
  for (size_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(static_cast<int64_t>(i));
  Tensor r = axes.empty() ? g : sum(g, axes, /*keepdim=*/true);
  return r.shape() == shape ? r : reshape(r, shape);
}

namespace {

// Base for binary ops: remembers the input shapes for sum_to.
struct BinaryNode : Node {
  Shape a_shape, b_shape;
  bool needs(size_t i) const { return next[i] != nullptr; }
};

template <class N>
Tensor record_binary(Tensor out, const Tensor& a, const Tensor& b, std::shared_ptr<N> node) {
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  attach(out, node, {&a, &b});
  return out;
}

}  // namespace

// ---------------------------------------------------------------- add
// c = a + b;   dc/da = 1,  dc/db = 1
struct AddBackward : BinaryNode {
  const char* name() const override { return "add"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {needs(0) ? sum_to(g, a_shape) : Tensor(), needs(1) ? sum_to(g, b_shape) : Tensor()};
  }
};
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(Binary::Add, a, b, "add");
  if (!any_requires_grad({&a, &b})) return out;
  return record_binary(out, a, b, std::make_shared<AddBackward>());
}

// ---------------------------------------------------------------- sub
// c = a - b;   dc/da = 1,  dc/db = -1
struct SubBackward : BinaryNode {
  const char* name() const override { return "sub"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {needs(0) ? sum_to(g, a_shape) : Tensor(), needs(1) ? sum_to(neg(g), b_shape) : Tensor()};
  }
};
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(Binary::Sub, a, b, "sub");
  if (!any_requires_grad({&a, &b})) return out;
  return record_binary(out, a, b, std::make_shared<SubBackward>());
}

// ---------------------------------------------------------------- mul
// c = a * b;   dc/da = b,  dc/db = a
struct MulBackward : BinaryNode {
  SavedTensor a, b;
  const char* name() const override { return "mul"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    return {needs(0) ? sum_to(g * b.unpack(*this), a_shape) : Tensor(),
            needs(1) ? sum_to(g * a.unpack(*this), b_shape) : Tensor()};
  }
  void release_saved() override { a.reset(), b.reset(); }
};
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(Binary::Mul, a, b, "mul");
  if (!any_requires_grad({&a, &b})) return out;
  auto node = std::make_shared<MulBackward>();
  if (b.requires_grad()) node->a = SavedTensor::input(a);
  if (a.requires_grad()) node->b = SavedTensor::input(b);
  return record_binary(out, a, b, node);
}

// ---------------------------------------------------------------- div
// c = a / b;   dc/da = 1 / b,  dc/db = -a / b^2
struct DivBackward : BinaryNode {
  SavedTensor a, b;
  const char* name() const override { return "div"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor bv = b.unpack(*this);
    Tensor ga, gb;
    if (needs(0)) ga = sum_to(g / bv, a_shape);
    if (needs(1)) gb = sum_to(neg(g * a.unpack(*this)) / square(bv), b_shape);
    return {ga, gb};
  }
  void release_saved() override { a.reset(), b.reset(); }
};
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(Binary::Div, a, b, "div");
  if (!any_requires_grad({&a, &b})) return out;
  auto node = std::make_shared<DivBackward>();
  if (b.requires_grad()) node->a = SavedTensor::input(a);
  node->b = SavedTensor::input(b);
  return record_binary(out, a, b, node);
}

// ---------------------------------------------------------------- pow (tensor exponent)
// c = a^b;   dc/da = b a^(b-1),  dc/db = a^b log a
// At a zero base the formulas meet 0 * inf; the limits are finite (as in PyTorch):
//   dc/da = 0 where a = 0 and b = 0   (a^0 = 1 for every a)
//   dc/db = 0 where a = 0 and b >= 0  (0^b = 0 for b > 0; the one-sided limit at b = 0)
// Those positions compute with a safe base of 1, where both formulas give 0
// exactly (b = 0 times 1, and log 1 = 0): no inf or NaN enters the graph, and
// everywhere else the formulas, and so their own derivatives, are untouched.
struct PowBackward : BinaryNode {
  SavedTensor a, b;
  const char* name() const override { return "pow"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor av = a.unpack(*this), bv = b.unpack(*this);
    const Tensor zero = Tensor::scalar(0, av.dtype()), one = Tensor::scalar(1, av.dtype());
    Tensor a_zero = eq(av, zero);
    Tensor ga, gb;
    if (needs(0)) ga = sum_to(g * bv * pow(where(a_zero * eq(bv, zero), one, av), bv - 1.0), a_shape);
    if (needs(1)) {
      Tensor a_safe = where(a_zero * ge(bv, zero), one, av);
      gb = sum_to(g * pow(a_safe, bv) * log(a_safe), b_shape);
    }
    return {ga, gb};
  }
  void release_saved() override { a.reset(), b.reset(); }
};
Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = kernels::binary(Binary::Pow, a, b, "pow");
  if (!any_requires_grad({&a, &b})) return out;
  auto node = std::make_shared<PowBackward>();
  node->a = SavedTensor::input(a);
  node->b = SavedTensor::input(b);
  return record_binary(out, a, b, node);
}

// ---------------------------------------------------------------- pow (scalar exponent)
// c = a^p;   dc/da = p a^(p-1)   (0 for p = 0, where a^0 = 1 is constant, even at a = 0)
struct PowScalarBackward : Node {
  SavedTensor a;
  double p = 1;
  const char* name() const override { return "pow"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor av = a.unpack(*this);
    if (p == 0.0) return {g * 0.0};
    if (p == 2.0) return {g * av * 2.0};
    return {g * pow(av, p - 1.0) * p};
  }
  void release_saved() override { a.reset(); }
};
Tensor pow(const Tensor& a, double p) {
  Tensor out = kernels::pow_scalar(a, p);
  if (!any_requires_grad({&a})) return out;
  auto node = std::make_shared<PowScalarBackward>();
  node->a = SavedTensor::input(a);
  node->p = p;
  attach(out, node, {&a});
  return out;
}

// ---------------------------------------------------------------- maximum / minimum
// c = max(a, b);   dc/da = [a > b] + [a = b] / 2,  dc/db = [a < b] + [a = b] / 2
// c = min(a, b);   dc/da = [a < b] + [a = b] / 2,  dc/db = [a > b] + [a = b] / 2
// A tie splits the gradient evenly between a and b: the rule of the max / min
// reductions (reduce.cpp) and of PyTorch's maximum / minimum.
struct MinMaxBackward : BinaryNode {
  SavedTensor a, b;
  bool is_max = true;
  const char* name() const override { return is_max ? "maximum" : "minimum"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor av = a.unpack(*this), bv = b.unpack(*this);
    Tensor share_a = (is_max ? gt(av, bv) : lt(av, bv)) + eq(av, bv) * 0.5;  // carries no gradient
    Tensor ga, gb;
    if (needs(0)) ga = sum_to(g * share_a, a_shape);
    if (needs(1)) gb = sum_to(g * (1.0 - share_a), b_shape);
    return {ga, gb};
  }
  void release_saved() override { a.reset(), b.reset(); }
};
static Tensor min_max(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor out = kernels::binary(is_max ? Binary::Max : Binary::Min, a, b, is_max ? "maximum" : "minimum");
  if (!any_requires_grad({&a, &b})) return out;
  auto node = std::make_shared<MinMaxBackward>();
  node->is_max = is_max;
  node->a = SavedTensor::input(a);
  node->b = SavedTensor::input(b);
  return record_binary(out, a, b, node);
}
Tensor maximum(const Tensor& a, const Tensor& b) { return min_max(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return min_max(a, b, false); }

// ---------------------------------------------------------------- neg
// c = -a;   dc/da = -1
struct NegBackward : Node {
  const char* name() const override { return "neg"; }
  std::vector<Tensor> backward(const Tensor& g) override { return {neg(g)}; }
};
Tensor neg(const Tensor& a) {
  Tensor out = kernels::negate(a);
  if (any_requires_grad({&a})) attach(out, std::make_shared<NegBackward>(), {&a});
  return out;
}

// ---------------------------------------------------------------- comparisons (no gradient)
Tensor eq(const Tensor& a, const Tensor& b) { return kernels::binary(Binary::Eq, a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return kernels::binary(Binary::Ne, a, b, "ne"); }
Tensor lt(const Tensor& a, const Tensor& b) { return kernels::binary(Binary::Lt, a, b, "lt"); }
Tensor le(const Tensor& a, const Tensor& b) { return kernels::binary(Binary::Le, a, b, "le"); }
Tensor gt(const Tensor& a, const Tensor& b) { return kernels::binary(Binary::Gt, a, b, "gt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return kernels::binary(Binary::Ge, a, b, "ge"); }

// ---------------------------------------------------------------- where
// c = cond ? a : b;   dc/da = [cond],  dc/db = 1 - [cond]   (nothing flows to cond)
struct WhereBackward : BinaryNode {
  SavedTensor mask;  // 0/1, in the broadcast shape of cond
  const char* name() const override { return "where"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor m = mask.unpack(*this);
    return {needs(0) ? sum_to(g * m, a_shape) : Tensor(),
            needs(1) ? sum_to(g * (1.0 - m), b_shape) : Tensor()};
  }
  void release_saved() override { mask.reset(); }
};
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  kernels::check_same_float(a, b, "where");
  kernels::check_same_float(cond, a, "where");
  Shape os = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor m = kernels::binary(Binary::Ne, cond, Tensor::scalar(0, cond.dtype()), "where");
  Tensor mx = kernels::expand(m, os), ax = kernels::expand(a, os), bx = kernels::expand(b, os);
  Tensor out = Tensor::empty(os, a.dtype());
  kernels::dispatch_float(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    const T *pm = mx.data<T>(), *pa = ax.data<T>(), *pb = bx.data<T>();
    T* po = out.data<T>();
    const int64_t n = out.numel();
    for (int64_t i = 0; i < n; ++i) po[i] = pm[i] != T(0) ? pa[i] : pb[i];
  });
  if (!any_requires_grad({&a, &b})) return out;
  auto node = std::make_shared<WhereBackward>();
  node->mask = SavedTensor::input(m);
  attach(out, node, {&a, &b});
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  return out;
}

// ---------------------------------------------------------------- operators
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double s) { return add(a, Tensor::scalar(s, a.dtype())); }
Tensor operator-(const Tensor& a, double s) { return sub(a, Tensor::scalar(s, a.dtype())); }
Tensor operator*(const Tensor& a, double s) { return mul(a, Tensor::scalar(s, a.dtype())); }
Tensor operator/(const Tensor& a, double s) { return div(a, Tensor::scalar(s, a.dtype())); }
Tensor operator+(double s, const Tensor& a) { return add(Tensor::scalar(s, a.dtype()), a); }
Tensor operator-(double s, const Tensor& a) { return sub(Tensor::scalar(s, a.dtype()), a); }
Tensor operator*(double s, const Tensor& a) { return mul(Tensor::scalar(s, a.dtype()), a); }
Tensor operator/(double s, const Tensor& a) { return div(Tensor::scalar(s, a.dtype()), a); }

}  // namespace dgm
