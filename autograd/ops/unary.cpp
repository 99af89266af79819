// dgm/autograd/ops/unary.cpp — elementwise functions of one tensor.
//
// Each op saves either its input x or its output y (whichever its derivative
// is cheapest in), and its backward multiplies the incoming gradient g by the
// local derivative, written with engine ops so it is itself differentiable.
// The plain functions (exp, log, sin, tanh, softplus ...) are one line each
// in unary_table.h and are generated below; the ones with a parameter
// (leaky_relu, clamp) are written out.
#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/ops.h"

namespace dgm {

namespace unary_detail {

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

}  // namespace unary_detail
using namespace unary_detail;

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

// ---------------------------------------------------------------- the table
// Every line of autograd/ops/unary_table.h becomes a backward node that
// computes the line's `backward` from g and the saved x or y, and the op
// itself: the kernel's y, recorded with that node.
// A line with a DGM_UNARY_GRAD kernel uses it when no graph is being built
// (the usual backward: one pass instead of a few engine ops and their
// temporaries); under create_graph, the line's engine-op `backward`.
template <class Node>
struct OnePassGrad {
  static constexpr Tensor (*kernel)(const Tensor&, const Tensor&) = nullptr;
};
#define DGM_UNARY(NAME, ...) struct NAME##_backward;
#define DGM_UNARY_GRAD(NAME, ...)                                                          \
  template <>                                                                             \
  struct OnePassGrad<NAME##_backward> {                                                   \
    static constexpr Tensor (*kernel)(const Tensor&, const Tensor&) = kernels::unary_grad::NAME; \
  };
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY_GRAD
#undef DGM_UNARY

#define DGM_SAVES_x Save::Input
#define DGM_SAVES_y Save::Output
#define DGM_UNARY(NAME, SAVES, FORWARD, BACKWARD, DOMAIN)                                  \
  struct NAME##_backward : UnaryNode {                                                    \
    std::vector<Tensor> backward(const Tensor& g) override {                              \
      const Tensor SAVES = s();                                                           \
      constexpr auto one_pass = OnePassGrad<NAME##_backward>::kernel;                     \
      if (one_pass && !GradMode::is_enabled() && g.shape() == SAVES.shape() && g.dtype() == SAVES.dtype()) \
        return {one_pass(g, SAVES)};                                                      \
      return {BACKWARD};                                                                  \
    }                                                                                     \
  };                                                                                      \
  Tensor NAME(const Tensor& x) {                                                          \
    return record_unary<NAME##_backward>(kernels::unary::NAME(x), x, #NAME, DGM_SAVES_##SAVES); \
  }
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY
#undef DGM_SAVES_x
#undef DGM_SAVES_y

// sign(x) is piecewise constant: no gradient is recorded.
Tensor sign(const Tensor& x) { return kernels::sign(x); }

}  // namespace dgm
