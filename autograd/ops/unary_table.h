// dgm/autograd/ops/unary_table.h — the elementwise functions of one tensor,
// one line each: the math, the forward kernel and the backward rule together.
//
//   DGM_UNARY(name, saves, forward, backward, domain)
//
//   name      the op: `Tensor name(const Tensor& x)` (declared in ops.h)
//   saves     what the backward rule needs: x (the input) or y (the output)
//   forward   a statement that fills r = f(v): v and r are flat arrays of
//             element type T, written with xtensor (xsimd-vectorised); it is
//             compiled in kernels_math.cpp only (the sole xtensor TU)
//   backward  dL/dx from the incoming gradient g and x or y, written with the
//             engine's own ops, so that it is itself differentiable (double
//             backward); compiled in ops/unary.cpp
//   domain    where the test suite samples x for gradcheck: Real, Positive, or
//             Kinked (real, but kept 0.1 away from the kink at 0)
//
// Adding an elementwise function is one line here: ops.h declares it, the
// kernel and the backward node are generated from the line, and
// tests/test_ops_gradcheck.cpp gradchecks (and gradgradchecks) every line of
// the table in float64. Parentheses around `forward` and `backward` protect
// their commas from the preprocessor.
//
// The includer defines DGM_UNARY (and undefines it after the #include).
//
// A line whose backward takes several engine ops (each a pass over memory
// and a temporary) may add a one-pass version of it below the table,
//
//   DGM_UNARY_GRAD(name, saves, grad)
//
//   grad      a statement that fills r = g * dy/dx from the flat arrays gv
//             (the incoming gradient) and v (the saved x or y), xtensor
//             like `forward` (kernels_math.cpp)
//
// used by the usual first-order backward, when no graph is being built. The
// line's `backward` stays the definition: it runs under create_graph, and
// tests/test_ops_gradcheck.cpp checks every DGM_UNARY_GRAD against it.
// An includer that wants the DGM_UNARY_GRAD lines defines that macro too.

//  y = e^x                             dy/dx = y
DGM_UNARY(exp, y, (xt::noalias(r) = xt::exp(v)), (g * y), Real)
//  y = log x                           dy/dx = 1 / x
DGM_UNARY(log, x, (xt::noalias(r) = xt::log(v)), (g / x), Positive)
//  y = log(1 + x)                      dy/dx = 1 / (1 + x)
DGM_UNARY(log1p, x, (log1p_into(v, r)), (g / (x + 1.0)), Positive)
//  y = sqrt x                          dy/dx = 1 / (2 y)
DGM_UNARY(sqrt, y, (xt::noalias(r) = xt::sqrt(v)), (g / (y * 2.0)), Positive)
//  y = |x|                             dy/dx = sign(x)   (0 at x = 0)
DGM_UNARY(abs, x, (xt::noalias(r) = xt::abs(v)), (g * sign(x)), Kinked)
//  y = x^2                             dy/dx = 2 x
DGM_UNARY(square, x, (xt::noalias(r) = xt::square(v)), (g * x * 2.0), Real)
//  y = sin x                           dy/dx = cos x
DGM_UNARY(sin, x, (xt::noalias(r) = xt::sin(v)), (g * cos(x)), Real)
//  y = cos x                           dy/dx = -sin x
DGM_UNARY(cos, x, (xt::noalias(r) = xt::cos(v)), (neg(g * sin(x))), Real)
//  y = tanh x                          dy/dx = 1 - y^2
DGM_UNARY(tanh, y, (xt::noalias(r) = xt::tanh(v)), (g * (1.0 - square(y))), Real)
//  y = 1 / (1 + e^-x)                  dy/dx = y (1 - y)
DGM_UNARY(sigmoid, y, (xt::noalias(r) = T(1) / (T(1) + xt::exp(-v))), (g * y * (1.0 - y)), Real)
//  y = max(x, 0)                       dy/dx = [x > 0] = [y > 0]
//    written max(0, x): 0 > x ? 0 : x, so a NaN x stays NaN (as PyTorch's relu) and is reported
DGM_UNARY(relu, y, (xt::noalias(r) = xt::maximum(T(0), v)), (scale_where_positive(g, y, 0.0)), Kinked)
//  y = log(1 + e^x)                    dy/dx = sigmoid(x)
//    computed as max(x, 0) + log1p(e^-|x|): no overflow for large |x|
DGM_UNARY(softplus, x, (softplus_into(v, r)), (g * sigmoid(x)), Real)
//  y = log sigmoid(x) = -softplus(-x)  dy/dx = 1 - sigmoid(x) = sigmoid(-x)
//    computed as min(x, 0) - log1p(e^-|x|)
DGM_UNARY(log_sigmoid, x, (log_sigmoid_into(v, r)), (g * sigmoid(neg(x))), Real)
//  y = x sigmoid(x)  (SiLU, swish)     dy/dx = s + x s (1 - s),  s = sigmoid(x)
DGM_UNARY(silu, x, (xt::noalias(r) = v / (T(1) + xt::exp(-v))), ([&] { const Tensor s = sigmoid(x); return g * (s * (1.0 + x * (1.0 - s))); }()), Real)
//  y = erf x = 2/sqrt(pi) int_0^x e^{-t^2} dt     dy/dx = 2/sqrt(pi) e^{-x^2}
DGM_UNARY(erf, x, (xt::noalias(r) = xt::erf(v)), (g * exp(neg(square(x))) * 1.1283791670955126), Real)
//  y = x Phi(x)  (GELU, exact form)     dy/dx = Phi(x) + x phi(x)
//    Phi(x) = (1 + erf(x / sqrt 2)) / 2 (the normal CDF), phi(x) = e^{-x^2/2} / sqrt(2 pi)
DGM_UNARY(gelu, x, (xt::noalias(r) = T(0.5) * v * (T(1) + xt::erf(v * T(0.7071067811865476)))),
          ([&] { const Tensor cdf = (erf(x * 0.7071067811865476) + 1.0) * 0.5;
                 return g * (cdf + x * exp(square(x) * -0.5) * 0.3989422804014327); }()), Real)

#ifdef DGM_UNARY_GRAD
//  sigmoid: g y (1 - y);  tanh: g (1 - y^2)
DGM_UNARY_GRAD(sigmoid, y, (xt::noalias(r) = gv * v * (T(1) - v)))
DGM_UNARY_GRAD(tanh, y, (xt::noalias(r) = gv * (T(1) - v * v)))
//  silu: g s (1 + x (1 - s)), with 1 - s = sigmoid(-x) = 1 / (1 + e^x) computed
//  as such (not by subtracting s from 1, which loses its digits for large x)
DGM_UNARY_GRAD(silu, x, (xt::noalias(r) = gv / (T(1) + xt::exp(-v)) * (T(1) + v / (T(1) + xt::exp(v)))))
//  gelu: g (Phi(x) + x phi(x))
DGM_UNARY_GRAD(gelu, x, (xt::noalias(r) = gv * (T(0.5) * (T(1) + xt::erf(v * T(0.7071067811865476))) +
                                                v * xt::exp(T(-0.5) * v * v) * T(0.3989422804014327))))
#endif
