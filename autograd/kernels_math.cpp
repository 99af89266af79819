// dgm/autograd/kernels_math.cpp — elementwise math through xtensor + xsimd.
//
// The only engine TU that includes xtensor: flat buffers are adapted (no
// copy) and evaluated with noalias into preallocated outputs, so exp, log,
// tanh ... run as xsimd vector code. Scalars are cast to T first: a double
// scalar in a float expression would make xtensor fall back to scalar code.
#include <xtensor/xadapt.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>
#include <xtensor/xtensor.hpp>

#include "autograd/kernels.h"
#include "autograd/parallel.h"

namespace dgm::kernels {

namespace {

template <class T>
auto flat(T* p, int64_t n) {
  return xt::adapt(p, static_cast<size_t>(n), xt::no_ownership(),
                   std::array<size_t, 1>{static_cast<size_t>(n)});
}

// out = f(x) elementwise (in pieces on several threads when x is large):
// f(in, res, T{}) assigns an xtensor expression of
// `in` to `res` with noalias. Expressions are evaluated inside f, so the
// temporaries they refer to are still alive (an xtensor expression holds
// references to its operands, not copies).
template <class F>
Tensor map(const Tensor& x, const char* name, F f) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    runtime::parallel_range(x.numel(), [&](int64_t begin, int64_t end, int) {
      auto in = flat(const_cast<T*>(x.data<T>()) + begin, end - begin);
      auto res = flat(out.data<T>() + begin, end - begin);
      f(in, res, T{});
    });
  });
  return out;
}

// out = f(g, v) elementwise for two flat tensors of one shape and dtype
// (a backward kernel: g the incoming gradient, v the saved x or y), in
// pieces like map.
template <class F>
Tensor map2(const Tensor& g, const Tensor& v, const char* name, F f) {
  check_same_float(g, v, name);
  if (g.shape() != v.shape())
    throw Error(std::string(name) + ": gradient " + g.shape().str() + " and saved tensor " + v.shape().str() + " differ in shape");
  Tensor out = Tensor::empty(g.shape(), g.dtype());
  dispatch_float(g.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    runtime::parallel_range(g.numel(), [&](int64_t begin, int64_t end, int) {
      auto gv = flat(const_cast<T*>(g.data<T>()) + begin, end - begin);
      auto in = flat(const_cast<T*>(v.data<T>()) + begin, end - begin);
      auto res = flat(out.data<T>() + begin, end - begin);
      f(gv, in, res, T{});
    });
  });
  return out;
}

// res = log(1 + u) for u >= -1, vectorised (xsimd has no log1p), by Kahan's
// trick: log1p(u) = log(w) u / (w - 1) with w = 1 + u, and u where w rounds to 1.
template <class U, class R>
void log1p_into(const U& u, R& res) {
  using T = typename R::value_type;
  xt::xtensor<T, 1> w = T(1) + u;
  xt::noalias(res) = xt::where(xt::equal(w, T(1)), u, xt::log(w) * u / (w - T(1)));
}

// softplus(v) = max(v, 0) + log1p(e^-|v|)
template <class V, class R>
void softplus_into(const V& v, R& res) {
  using T = typename R::value_type;
  xt::xtensor<T, 1> e = xt::exp(-xt::abs(v));
  log1p_into(e, res);
  xt::noalias(res) += xt::maximum(v, T(0));
}

// log_sigmoid(v) = min(v, 0) - log1p(e^-|v|)
template <class V, class R>
void log_sigmoid_into(const V& v, R& res) {
  using T = typename R::value_type;
  xt::xtensor<T, 1> e = xt::exp(-xt::abs(v));
  log1p_into(e, res);
  xt::noalias(res) = xt::minimum(v, T(0)) - res;
}

}  // namespace

// The forward kernels of autograd/ops/unary_table.h: each line's `forward`
// statement, with v the input, r the output, T their element type.
namespace unary {
#define DGM_UNARY(NAME, SAVES, FORWARD, BACKWARD, DOMAIN)                   \
  Tensor NAME(const Tensor& x, const char* op) {                           \
    return map(x, op, [](auto& v, auto& r, auto tag) {                     \
      using T = decltype(tag);                                             \
      (void)T{};                                                           \
      FORWARD;                                                             \
    });                                                                    \
  }
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY
}  // namespace unary

// The one-pass backward kernels: each DGM_UNARY_GRAD line's `grad`
// statement, with gv the incoming gradient, v the saved x or y, r the result.
namespace unary_grad {
#define DGM_UNARY(...)
#define DGM_UNARY_GRAD(NAME, SAVES, GRAD)                                        \
  Tensor NAME(const Tensor& g, const Tensor& saved) {                            \
    return map2(g, saved, #NAME "_backward", [](auto& gv, auto& v, auto& r, auto tag) { \
      using T = decltype(tag);                                                   \
      (void)T{};                                                                 \
      GRAD;                                                                      \
    });                                                                          \
  }
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY_GRAD
#undef DGM_UNARY
}  // namespace unary_grad

void lstm_activate(void* gates, int64_t rows, int64_t h, int64_t stride, DType dtype) {
  dispatch_float(dtype, "lstm_sequence", [&](auto tag) {
    using T = decltype(tag);
    T* base = static_cast<T*>(gates);
    for (int64_t r = 0; r < rows; ++r) {
      T* p = base + r * stride;
      auto if_ = flat(p, 2 * h);
      xt::noalias(if_) = T(1) / (T(1) + xt::exp(-if_));
      auto g = flat(p + 2 * h, h);
      xt::noalias(g) = xt::tanh(g);
      auto o = flat(p + 3 * h, h);
      xt::noalias(o) = T(1) / (T(1) + xt::exp(-o));
    }
  });
}

// y = f(x) over n contiguous values of a raw buffer (y may be x), f an xtensor expression
template <class F>
void raw_map(const void* x, void* y, int64_t n, DType dtype, const char* op, F&& f) {
  dispatch_float(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    auto in = flat(const_cast<T*>(static_cast<const T*>(x)), n);
    auto out = flat(static_cast<T*>(y), n);
    xt::noalias(out) = f(in);
  });
}

void tanh_raw(const void* x, void* y, int64_t n, DType dtype) {
  raw_map(x, y, n, dtype, "tanh", [](auto& v) { return xt::tanh(v); });
}

void exp_raw(const void* x, void* y, int64_t n, DType dtype) {
  raw_map(x, y, n, dtype, "exp", [](auto& v) { return xt::exp(v); });
}

// bce_with_logits walks its values in blocks of kBceBlock, so that a block's
// softplus is still in L1 when the pass for - x t reads it.
constexpr int64_t kBceBlock = 2048;

Tensor bce_with_logits(const Tensor& x, const Tensor& t, const char* op) {
  check_same_float(x, t, op);
  if (x.shape() != t.shape()) throw Error(std::string(op) + ": logits " + x.shape().str() + " and target " + t.shape().str() + " must have one shape");
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    runtime::parallel_range(x.numel(), [&](int64_t begin, int64_t end, int) {
      for (int64_t b = begin; b < end; b += kBceBlock) {
        const int64_t n = std::min(kBceBlock, end - b);
        auto v = flat(const_cast<T*>(x.data<T>()) + b, n), tv = flat(const_cast<T*>(t.data<T>()) + b, n);
        auto r = flat(out.data<T>() + b, n);
        softplus_into(v, r);
        xt::noalias(r) = r - v * tv;
      }
    });
  });
  return out;
}

Tensor bce_with_logits_grad(const Tensor& g, const Tensor& x, const Tensor& t) {
  const char* op = "binary_cross_entropy_with_logits_backward";
  check_same_float(g, x, op);
  check_same_float(x, t, op);
  if (g.shape() != x.shape() || x.shape() != t.shape())
    throw Error(std::string(op) + ": gradient " + g.shape().str() + ", logits " + x.shape().str() + " and target " + t.shape().str() + " must have one shape");
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    runtime::parallel_range(x.numel(), [&](int64_t begin, int64_t end, int) {
      auto gv = flat(const_cast<T*>(g.data<T>()) + begin, end - begin), v = flat(const_cast<T*>(x.data<T>()) + begin, end - begin);
      auto tv = flat(const_cast<T*>(t.data<T>()) + begin, end - begin);
      auto r = flat(out.data<T>() + begin, end - begin);
      xt::noalias(r) = gv * (T(1) / (T(1) + xt::exp(-v)) - tv);  // g (sigmoid(x) - t)
    });
  });
  return out;
}

Tensor negate(const Tensor& x, const char* op) {
  return map(x, op, [](auto& v, auto& r, auto) { xt::noalias(r) = -v; });
}

Tensor sign(const Tensor& x) {
  return map(x, "sign", [](auto& v, auto& r, auto t) {
    using T = decltype(t);
    xt::noalias(r) = xt::where(v > T(0), T(1), xt::where(v < T(0), T(-1), T(0)));
  });
}

Tensor leaky_relu(const Tensor& x, double slope) {
  return map(x, "leaky_relu", [slope](auto& v, auto& r, auto t) {
    using T = decltype(t);
    xt::noalias(r) = xt::where(v > T(0), v, v * T(slope));
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  return map(x, "clamp", [lo, hi](auto& v, auto& r, auto t) {
    using T = decltype(t);
    xt::noalias(r) = xt::clip(v, T(lo), T(hi));
  });
}

Tensor pow_scalar(const Tensor& x, double p) {
  if (p == 2.0) return unary::square(x, "pow");
  if (p == 1.0) return x.contiguous_copy();
  return map(x, "pow", [p](auto& v, auto& r, auto t) {
    using T = decltype(t);
    xt::noalias(r) = xt::pow(v, T(p));
  });
}

Tensor inside_mask(const Tensor& x, double lo, double hi) {
  return map(x, "clamp", [lo, hi](auto& v, auto& r, auto t) {
    using T = decltype(t);
    xt::noalias(r) = xt::where(v >= T(lo) && v <= T(hi), T(1), T(0));
  });
}

}  // namespace dgm::kernels
