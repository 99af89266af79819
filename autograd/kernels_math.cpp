// dgm/autograd/kernels_math.cpp — elementwise math through xtensor + xsimd.
//
// The only engine TU that includes xtensor: flat buffers are adapted (no
// copy) and evaluated with noalias into preallocated outputs, so exp, log,
// tanh ... run as xsimd vector code. Scalars are cast to T first: a double
// scalar in a float expression would disable SIMD (xtensor-notes §0.6).
#include <xtensor/xadapt.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "autograd/kernels.h"

namespace dgm::kernels {

namespace {

template <class T>
auto flat(T* p, int64_t n) {
  return xt::adapt(p, static_cast<size_t>(n), xt::no_ownership(),
                   std::array<size_t, 1>{static_cast<size_t>(n)});
}

// out = f(x) elementwise, where f builds an xtensor expression of x.
template <class F>
Tensor map(const Tensor& x, const char* name, F f) {
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    auto in = flat(const_cast<T*>(x.data<T>()), x.numel());
    auto res = flat(out.data<T>(), out.numel());
    xt::noalias(res) = f(in, T{});
  });
  return out;
}

}  // namespace

Tensor unary(Unary op, const Tensor& x, const char* name) {
  switch (op) {
    case Unary::Neg: return map(x, name, [](auto& v, auto) { return -v; });
    case Unary::Exp: return map(x, name, [](auto& v, auto) { return xt::exp(v); });
    case Unary::Log: return map(x, name, [](auto& v, auto) { return xt::log(v); });
    case Unary::Log1p: return map(x, name, [](auto& v, auto) { return xt::log1p(v); });
    case Unary::Sqrt: return map(x, name, [](auto& v, auto) { return xt::sqrt(v); });
    case Unary::Abs: return map(x, name, [](auto& v, auto) { return xt::abs(v); });
    case Unary::Tanh: return map(x, name, [](auto& v, auto) { return xt::tanh(v); });
    case Unary::Square: return map(x, name, [](auto& v, auto) { return xt::square(v); });
    case Unary::Sigmoid:
      return map(x, name, [](auto& v, auto t) {
        using T = decltype(t);
        return T(1) / (T(1) + xt::exp(-v));
      });
    case Unary::Relu:
      return map(x, name, [](auto& v, auto t) {
        using T = decltype(t);
        return xt::maximum(v, T(0));
      });
    case Unary::Softplus:  // max(x, 0) + log1p(exp(-|x|))
      return map(x, name, [](auto& v, auto t) {
        using T = decltype(t);
        return xt::maximum(v, T(0)) + xt::log1p(xt::exp(-xt::abs(v)));
      });
    case Unary::LogSigmoid:  // min(x, 0) - log1p(exp(-|x|))
      return map(x, name, [](auto& v, auto t) {
        using T = decltype(t);
        return xt::minimum(v, T(0)) - xt::log1p(xt::exp(-xt::abs(v)));
      });
    case Unary::Sign:
      return map(x, name, [](auto& v, auto t) {
        using T = decltype(t);
        return xt::where(v > T(0), T(1), xt::where(v < T(0), T(-1), T(0)));
      });
  }
  throw Error(std::string(name) + ": unknown unary op");
}

Tensor leaky_relu(const Tensor& x, double slope) {
  return map(x, "leaky_relu", [slope](auto& v, auto t) {
    using T = decltype(t);
    return xt::where(v > T(0), v, v * T(slope));
  });
}

Tensor clamp(const Tensor& x, double lo, double hi) {
  return map(x, "clamp", [lo, hi](auto& v, auto t) {
    using T = decltype(t);
    return xt::clip(v, T(lo), T(hi));
  });
}

Tensor pow_scalar(const Tensor& x, double p) {
  if (p == 2.0) return unary(Unary::Square, x, "pow");
  if (p == 1.0) return x.contiguous_copy();
  return map(x, "pow", [p](auto& v, auto t) {
    using T = decltype(t);
    return xt::pow(v, T(p));
  });
}

Tensor inside_mask(const Tensor& x, double lo, double hi) {
  return map(x, "clamp", [lo, hi](auto& v, auto t) {
    using T = decltype(t);
    return xt::where(v >= T(lo) && v <= T(hi), T(1), T(0));
  });
}

Tensor positive_mask(const Tensor& x, double negative) {
  return map(x, "relu", [negative](auto& v, auto t) {
    using T = decltype(t);
    return xt::where(v > T(0), T(1), T(negative));
  });
}

}  // namespace dgm::kernels
