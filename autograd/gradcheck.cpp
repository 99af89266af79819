// dgm/autograd/gradcheck.cpp — finite-difference checks of backward.
#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "autograd/random.h"

namespace dgm {

std::string GradcheckReport::str() const {
  std::ostringstream os;
  os.precision(10);
  os << (ok ? "gradcheck passed" : "gradcheck FAILED") << " (" << checked << " entries); worst: input "
     << input << " element " << element << ", output element " << output_element << ": analytic "
     << analytic << " vs numeric " << numeric << ", |diff| " << abs_error << ", rel " << rel_error;
  return os.str();
}

namespace {

std::vector<Tensor> as_float64_leaves(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> xs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!is_floating(inputs[i].dtype()))
      throw Error("gradcheck: input " + std::to_string(i) + " is int64; pass index tensors by capture instead");
    Tensor x = inputs[i].detach().to(DType::Float64);
    x.set_requires_grad(true);
    xs.push_back(x);
  }
  return xs;
}

Tensor eval(const TensorFn& f, const std::vector<Tensor>& xs) {
  Tensor y = f(xs);
  if (y.dtype() != DType::Float64)
    throw Error(std::string("gradcheck: the function must return float64, got ") + dtype_name(y.dtype()));
  return y;
}

}  // namespace

GradcheckReport gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  std::vector<Tensor> xs = as_float64_leaves(inputs);
  Tensor y = eval(f, xs);
  const int64_t ny = y.numel();

  // Analytic Jacobian, one row per output element: J[k] = d y_k / d x.
  std::vector<std::vector<std::vector<double>>> jac(static_cast<size_t>(ny));
  if (y.requires_grad()) {
    for (int64_t k = 0; k < ny; ++k) {
      Tensor v = Tensor::zeros(y.shape(), DType::Float64);
      v.data<double>()[k] = 1.0;
      std::vector<Tensor> g = grad({y}, xs, {v}, /*retain_graph=*/true);
      for (auto& gi : g) jac[k].push_back(gi.to_vector());
    }
  } else {
    for (int64_t k = 0; k < ny; ++k)
      for (auto& x : xs) jac[k].push_back(std::vector<double>(static_cast<size_t>(x.numel()), 0.0));
  }

  // Numeric Jacobian, one column per input element, compared as we go.
  GradcheckReport rep;
  double worst = -1;
  // Grad mode stays on: gradgradcheck's f computes a gradient inside.
  for (size_t i = 0; i < xs.size(); ++i) {
    double* px = xs[i].data<double>();
    for (int64_t e = 0; e < xs[i].numel(); ++e) {
      const double orig = px[e];
      px[e] = orig + opt.eps;
      std::vector<double> plus = eval(f, xs).to_vector();
      px[e] = orig - opt.eps;
      std::vector<double> minus = eval(f, xs).to_vector();
      px[e] = orig;
      for (int64_t k = 0; k < ny; ++k) {
        const double numeric = (plus[k] - minus[k]) / (2 * opt.eps);
        const double analytic = jac[k][i][e];
        const double err = std::abs(analytic - numeric);
        const double allowed = opt.atol + opt.rtol * std::abs(numeric);
        ++rep.checked;
        if (!(err <= allowed)) rep.ok = false;
        const double score = std::isfinite(err) ? err / allowed : INFINITY;
        if (score > worst) {
          worst = score;
          rep.input = i;
          rep.element = e;
          rep.output_element = k;
          rep.analytic = analytic;
          rep.numeric = numeric;
          rep.abs_error = err;
          rep.rel_error = err / std::max(std::abs(numeric), 1e-300);
        }
      }
    }
  }
  return rep;
}

GradcheckReport gradgradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt,
                              uint64_t seed) {
  Tensor probe;
  {
    NoGradGuard ng;
    probe = eval(f, as_float64_leaves(inputs));
  }
  Generator gen(seed);
  Tensor v = gen.normal(probe.shape(), 0.0, 1.0, DType::Float64);
  // g(x) = d<f(x), v>/dx, flattened and joined: its Jacobian is the Hessian-vector structure.
  TensorFn first_grad = [&f, v](const std::vector<Tensor>& xs) {
    Tensor y = f(xs);
    if (!y.requires_grad()) return Tensor::zeros(Shape{1}, DType::Float64);
    std::vector<Tensor> gs = grad({y}, xs, {v}, /*retain_graph=*/true, /*create_graph=*/true);
    std::vector<Tensor> flat;
    for (auto& g : gs) flat.push_back(reshape(g, Shape{-1}));
    return concat(flat, 0);
  };
  return gradcheck(first_grad, inputs, opt);
}

Tensor jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0) {
  Tensor x = as_float64_leaves({x0})[0];
  Tensor y = f(x);
  if (y.dtype() != DType::Float64) y = y.to(DType::Float64);  // (to() of the same dtype is a copy without graph)
  const int64_t ny = y.numel(), nx = x.numel();
  Tensor J = Tensor::zeros({ny, nx}, DType::Float64);
  if (!y.requires_grad()) return J;  // y does not depend on x
  for (int64_t k = 0; k < ny; ++k) {
    Tensor v = Tensor::zeros(y.shape(), DType::Float64);
    v.data<double>()[k] = 1.0;
    const std::vector<double> row = grad({y}, {x}, {v}, /*retain_graph=*/true)[0].to_vector();
    std::copy(row.begin(), row.end(), J.data<double>() + k * nx);
  }
  return J;
}

Tensor numerical_jacobian(const std::function<Tensor(const Tensor&)>& f, const Tensor& x0, double eps) {
  NoGradGuard ng;
  Tensor x = x0.detach().to(DType::Float64);
  double* px = x.data<double>();
  const int64_t nx = x.numel();
  Tensor J;
  for (int64_t e = 0; e < nx; ++e) {
    const double orig = px[e];
    px[e] = orig + eps;
    const std::vector<double> plus = f(x).to_vector();
    px[e] = orig - eps;
    const std::vector<double> minus = f(x).to_vector();
    px[e] = orig;
    const auto ny = static_cast<int64_t>(plus.size());
    if (!J.defined()) J = Tensor::zeros({ny, nx}, DType::Float64);
    for (int64_t k = 0; k < ny; ++k) J.data<double>()[k * nx + e] = (plus[k] - minus[k]) / (2 * eps);
  }
  return J;
}

double central_difference(const std::function<double()>& f, Tensor& t, int64_t e, double eps) {
  if (t.dtype() != DType::Float64)
    throw Error(std::string("central_difference: needs a float64 tensor, got ") + dtype_name(t.dtype()));
  if (e < 0 || e >= t.numel())
    throw Error("central_difference: element " + std::to_string(e) + " outside a tensor of " + std::to_string(t.numel()));
  double* v = t.data<double>();
  const double orig = v[e];
  v[e] = orig + eps;
  const double plus = f();
  v[e] = orig - eps;
  const double minus = f();
  v[e] = orig;
  return (plus - minus) / (2 * eps);
}

}  // namespace dgm
