// dgm/autograd/ops/unary.cpp — elementwise functions of one tensor.
//
// Each op saves either its input x or its output y (whichever its derivative
// is cheapest in), and its backward multiplies the incoming gradient g by the
// local derivative, written with engine ops so it is itself differentiable.
#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"

namespace dgm {

using kernels::Unary;

namespace {

// A unary op's node: one saved tensor (x or y) plus its name.
struct UnaryNode : Node {
  SavedTensor saved;
  const char* op = "";
  const char* name() const override { return op; }
  void release_saved() override { saved.reset(); }
  Tensor s() const { return saved.unpack(*this); }
};

enum class Save { Input, Output };

template <class N>
Tensor record_unary(Tensor out, const Tensor& x, const char* op, Save what) {
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<N>();
  node->op = op;
  if (what == Save::Input) node->saved = SavedTensor::input(x);
  attach(out, node, {&x});
  if (what == Save::Output) node->saved = SavedTensor::output(out);
  return out;
}

}  // namespace

// y = e^x;              dy/dx = y
struct ExpBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g * s()}; }
};
Tensor exp(const Tensor& x) {
  return record_unary<ExpBackward>(kernels::unary(Unary::Exp, x, "exp"), x, "exp", Save::Output);
}

// y = log x;            dy/dx = 1 / x
struct LogBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g / s()}; }
};
Tensor log(const Tensor& x) {
  return record_unary<LogBackward>(kernels::unary(Unary::Log, x, "log"), x, "log", Save::Input);
}

// y = log(1 + x);       dy/dx = 1 / (1 + x)
struct Log1pBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g / (s() + 1.0)}; }
};
Tensor log1p(const Tensor& x) {
  return record_unary<Log1pBackward>(kernels::unary(Unary::Log1p, x, "log1p"), x, "log1p", Save::Input);
}

// y = sqrt x;           dy/dx = 1 / (2 y)
struct SqrtBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g / (s() * 2.0)}; }
};
Tensor sqrt(const Tensor& x) {
  return record_unary<SqrtBackward>(kernels::unary(Unary::Sqrt, x, "sqrt"), x, "sqrt", Save::Output);
}

// y = |x|;              dy/dx = sign(x)   (0 at x = 0)
struct AbsBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g * sign(s())}; }
};
Tensor abs(const Tensor& x) {
  return record_unary<AbsBackward>(kernels::unary(Unary::Abs, x, "abs"), x, "abs", Save::Input);
}

// y = tanh x;           dy/dx = 1 - y^2
struct TanhBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g * (1.0 - square(s()))}; }
};
Tensor tanh(const Tensor& x) {
  return record_unary<TanhBackward>(kernels::unary(Unary::Tanh, x, "tanh"), x, "tanh", Save::Output);
}

// y = 1 / (1 + e^-x);   dy/dx = y (1 - y)
struct SigmoidBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor y = s();
    return {g * y * (1.0 - y)};
  }
};
Tensor sigmoid(const Tensor& x) {
  return record_unary<SigmoidBackward>(kernels::unary(Unary::Sigmoid, x, "sigmoid"), x, "sigmoid",
                                       Save::Output);
}

// The backward of relu and leaky_relu in one pass over g:
//   out = g * m(y),   m(y) = 1 if y > 0 else a   (a = 0 for relu)
// out is linear in g, so d out / d g is the same mask: its backward is itself.
// m is piecewise constant in y (derivative 0 wherever it exists), so y is
// saved as a constant and gets no gradient.
namespace {
struct ScaleWherePositiveBackward : Node {
  SavedTensor y;
  double negative = 0;
  const char* name() const override { return "relu_backward"; }
  std::vector<Tensor> backward(const Tensor& G) override;
  void release_saved() override { y.reset(); }
};
Tensor scale_where_positive(const Tensor& g, const Tensor& y, double negative) {
  Tensor out = kernels::scale_where_positive(g, y, negative);
  if (!any_requires_grad({&g})) return out;
  auto node = std::make_shared<ScaleWherePositiveBackward>();
  node->y = SavedTensor::input(y);
  node->negative = negative;
  attach(out, node, {&g});
  return out;
}
std::vector<Tensor> ScaleWherePositiveBackward::backward(const Tensor& G) {
  return {scale_where_positive(G, y.unpack(*this), negative)};
}
}  // namespace

// y = max(x, 0);        dy/dx = [x > 0]  (= [y > 0])
struct ReluBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {scale_where_positive(g, s(), 0.0)}; }
};
Tensor relu(const Tensor& x) {
  return record_unary<ReluBackward>(kernels::unary(Unary::Relu, x, "relu"), x, "relu", Save::Output);
}

// y = x if x > 0 else a x;   dy/dx = 1 if x > 0 else a
struct LeakyReluBackward : UnaryNode {
  double slope = 0.01;
  std::vector<Tensor> backward(const Tensor& g) override {
    return {scale_where_positive(g, s(), slope)};
  }
};
Tensor leaky_relu(const Tensor& x, double slope) {
  Tensor out = kernels::leaky_relu(x, slope);
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<LeakyReluBackward>();
  node->op = "leaky_relu";
  node->slope = slope;
  node->saved = SavedTensor::input(x);
  attach(out, node, {&x});
  return out;
}

// y = log(1 + e^x);     dy/dx = sigmoid(x)
struct SoftplusBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g * sigmoid(s())}; }
};
Tensor softplus(const Tensor& x) {
  return record_unary<SoftplusBackward>(kernels::unary(Unary::Softplus, x, "softplus"), x, "softplus",
                                        Save::Input);
}

// y = log sigmoid(x);   dy/dx = 1 - sigmoid(x) = sigmoid(-x)
struct LogSigmoidBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g * sigmoid(neg(s()))}; }
};
Tensor log_sigmoid(const Tensor& x) {
  return record_unary<LogSigmoidBackward>(kernels::unary(Unary::LogSigmoid, x, "log_sigmoid"), x,
                                          "log_sigmoid", Save::Input);
}

// y = min(max(x, lo), hi);   dy/dx = [lo <= x <= hi]
struct ClampBackward : UnaryNode {
  double lo = 0, hi = 0;
  std::vector<Tensor> backward(const Tensor& g) override {
    return {g * kernels::inside_mask(s(), lo, hi)};
  }
};
Tensor clamp(const Tensor& x, double lo, double hi) {
  if (lo > hi) throw Error("clamp: lo " + std::to_string(lo) + " is above hi " + std::to_string(hi));
  Tensor out = kernels::clamp(x, lo, hi);
  if (!any_requires_grad({&x})) return out;
  auto node = std::make_shared<ClampBackward>();
  node->op = "clamp";
  node->lo = lo;
  node->hi = hi;
  node->saved = SavedTensor::input(x);
  attach(out, node, {&x});
  return out;
}

// y = x^2;              dy/dx = 2x
struct SquareBackward : UnaryNode {
  std::vector<Tensor> backward(const Tensor& g) override { return {g * s() * 2.0}; }
};
Tensor square(const Tensor& x) {
  return record_unary<SquareBackward>(kernels::unary(Unary::Square, x, "square"), x, "square",
                                      Save::Input);
}

// sign(x) is piecewise constant: no gradient is recorded.
Tensor sign(const Tensor& x) { return kernels::unary(Unary::Sign, x, "sign"); }

}  // namespace dgm
