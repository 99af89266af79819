// dgm/autograd/kernels_math.cpp — elementwise math through xtensor + xsimd.
//
// The only engine TU that includes xtensor: flat buffers are adapted (no
// copy) and evaluated with noalias into preallocated outputs, so exp, log,
// tanh ... run as xsimd vector code. Scalars are cast to T first: a double
// scalar in a float expression would disable SIMD (xtensor-notes §0.6).
#include <xtensor/xadapt.hpp>
#include <xtensor/xbuilder.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>
#include <xtensor/xtensor.hpp>

#include "autograd/kernels.h"

namespace dgm::kernels {

namespace {

template <class T>
auto flat(T* p, int64_t n) {
  return xt::adapt(p, static_cast<size_t>(n), xt::no_ownership(),
                   std::array<size_t, 1>{static_cast<size_t>(n)});
}

// out = f(x) elementwise: f(in, res, T{}) assigns an xtensor expression of
// `in` to `res` with noalias. Expressions are evaluated inside f, so the
// temporaries they refer to are still alive (xtensor-notes §4.7).
template <class F>
Tensor map(const Tensor& x, const char* name, F f) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    auto in = flat(const_cast<T*>(x.data<T>()), x.numel());
    auto res = flat(out.data<T>(), out.numel());
    f(in, res, T{});
  });
  return out;
}

// res = log(1 + u) for u >= -1, vectorised (xsimd has no log1p), by Kahan's
// trick: log1p(u) = log(w) u / (w - 1) with w = 1 + u, and u where w rounds to 1.
// `u` must be an evaluated container; `w` is a scratch container of its size.
template <class U, class R, class W, class T>
void log1p_into(const U& u, R& res, W& w, T) {
  xt::noalias(w) = T(1) + u;
  xt::noalias(res) = xt::where(xt::equal(w, T(1)), u, xt::log(w) * u / (w - T(1)));
}

}  // namespace

Tensor unary(Unary op, const Tensor& x, const char* name) {
  switch (op) {
    case Unary::Neg: return map(x, name, [](auto& v, auto& r, auto) { xt::noalias(r) = -v; });
    case Unary::Exp: return map(x, name, [](auto& v, auto& r, auto) { xt::noalias(r) = xt::exp(v); });
    case Unary::Log: return map(x, name, [](auto& v, auto& r, auto) { xt::noalias(r) = xt::log(v); });
    case Unary::Log1p:
      return map(x, name, [](auto& v, auto& r, auto t) {
        using T = decltype(t);
        xt::xtensor<T, 1> w = xt::empty<T>(v.shape());
        log1p_into(v, r, w, t);
      });
    case Unary::Sqrt: return map(x, name, [](auto& v, auto& r, auto) { xt::noalias(r) = xt::sqrt(v); });
    case Unary::Abs: return map(x, name, [](auto& v, auto& r, auto) { xt::noalias(r) = xt::abs(v); });
    case Unary::Tanh: return map(x, name, [](auto& v, auto& r, auto) { xt::noalias(r) = xt::tanh(v); });
    case Unary::Square: return map(x, name, [](auto& v, auto& r, auto) { xt::noalias(r) = xt::square(v); });
    case Unary::Sigmoid:
      return map(x, name, [](auto& v, auto& r, auto t) {
        using T = decltype(t);
        xt::noalias(r) = T(1) / (T(1) + xt::exp(-v));
      });
    case Unary::Relu:
      return map(x, name, [](auto& v, auto& r, auto t) {
        using T = decltype(t);
        xt::noalias(r) = xt::maximum(v, T(0));
      });
    case Unary::Softplus:  // max(x, 0) + log1p(exp(-|x|))
      return map(x, name, [](auto& v, auto& r, auto t) {
        using T = decltype(t);
        xt::xtensor<T, 1> e = xt::exp(-xt::abs(v)), w = xt::empty<T>(v.shape());
        log1p_into(e, r, w, t);
        xt::noalias(r) += xt::maximum(v, T(0));
      });
    case Unary::LogSigmoid:  // min(x, 0) - log1p(exp(-|x|))
      return map(x, name, [](auto& v, auto& r, auto t) {
        using T = decltype(t);
        xt::xtensor<T, 1> e = xt::exp(-xt::abs(v)), w = xt::empty<T>(v.shape());
        log1p_into(e, r, w, t);
        xt::noalias(r) = xt::minimum(v, T(0)) - r;
      });
    case Unary::Sign:
      return map(x, name, [](auto& v, auto& r, auto t) {
        using T = decltype(t);
        xt::noalias(r) = xt::where(v > T(0), T(1), xt::where(v < T(0), T(-1), T(0)));
      });
  }
  throw Error(std::string(name) + ": unknown unary op");
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
  if (p == 2.0) return unary(Unary::Square, x, "pow");
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
