// dgm/autograd/optim.cpp — optimizer updates as plain loops over parameter buffers.
#include "autograd/optim.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/parallel.h"

namespace dgm::optim {

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  for (size_t i = 0; i < params_.size(); ++i)
    if (!params_[i].requires_grad())
      throw Error("optimizer: parameter " + std::to_string(i) + " " + params_[i].shape().str() +
                  " does not require grad");
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

namespace {
// Calls f(k, n, p, g) once per parameter k that has a gradient, with its n
// elements and its data and gradient buffers; f loops over the elements
// (a plain loop the compiler vectorises).
template <class F>
void for_each_param(std::vector<Tensor>& params, const char* op, F f) {
  NoGradGuard ng;
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor& p = params[k];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    kernels::dispatch_float(p.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      f(k, p.numel(), p.data<T>(), g.template data<T>());
    });
    p.bump_version(op);
  }
}

// Adam's update of n elements (restrict: the loop vectorises; through a lambda's captures it did not)
template <class T>
void adam_update(int64_t n, T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T b1, T b2, T l2, T decay,
                 T step_size, T inv_sqrt_bc2, T eps) {
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] + l2 * p[i];
    m[i] = b1 * m[i] + (T(1) - b1) * gi;
    v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
    p[i] = p[i] * decay - step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + eps);
  }
}

std::vector<Tensor> zeros_like_all(const std::vector<Tensor>& ps) {
  std::vector<Tensor> out;
  for (auto& p : ps) out.push_back(Tensor::zeros(p.shape(), p.dtype()));
  return out;
}
}  // namespace

// ---------------------------------------------------------------- SGD
SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double weight_decay)
    : Optimizer(std::move(params)), momentum_(momentum), weight_decay_(weight_decay) {
  lr_ = lr;
  if (momentum_ != 0) velocity_ = zeros_like_all(params_);
}

void SGD::step() {
  for_each_param(params_, "SGD.step", [&](size_t k, int64_t n, auto* p, const auto* g) {
    using T = std::remove_pointer_t<decltype(p)>;
    const T lr = static_cast<T>(lr_), wd = static_cast<T>(weight_decay_), mu = static_cast<T>(momentum_);
    T* v = momentum_ != 0 ? velocity_[k].template data<T>() : nullptr;
    for (int64_t i = 0; i < n; ++i) {
      T d = g[i] + wd * p[i];
      if (v) {
        v[i] = mu * v[i] + d;
        d = v[i];
      }
      p[i] -= lr * d;
    }
  });
}

// ---------------------------------------------------------------- Adam / AdamW
Adam::Adam(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Optimizer(std::move(params)), beta1_(beta1), beta2_(beta2), eps_(eps), weight_decay_(weight_decay) {
  lr_ = lr;
  m_ = zeros_like_all(params_);
  v_ = zeros_like_all(params_);
}

void Adam::step() {
  ++t_;
  const double bc1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  for_each_param(params_, "Adam.step", [&](size_t k, int64_t n, auto* p, const auto* g) {
    using T = std::remove_pointer_t<decltype(p)>;
    const T b1 = static_cast<T>(beta1_), b2 = static_cast<T>(beta2_), eps = static_cast<T>(eps_);
    const T step_size = static_cast<T>(lr_ / bc1), inv_sqrt_bc2 = static_cast<T>(1.0 / std::sqrt(bc2));
    const T decay = static_cast<T>(decoupled_ ? 1.0 - lr_ * weight_decay_ : 1.0);
    const T l2 = static_cast<T>(decoupled_ ? 0.0 : weight_decay_);
    T* m = m_[k].template data<T>();
    T* v = v_[k].template data<T>();
    // Each element on its own, so a large parameter's elements are split between the threads
    // (each reads and writes 7 values: 64k elements and more); the same result on any thread count.
    runtime::parallel_range(n, [&](int64_t begin, int64_t end, int) {
      adam_update(end - begin, p + begin, g + begin, m + begin, v + begin, b1, b2, l2, decay, step_size, inv_sqrt_bc2, eps);
    }, 8);
  });
}

std::map<std::string, Tensor> Adam::state() const {
  std::map<std::string, Tensor> s;
  Tensor t = Tensor::empty({1}, DType::Int64);
  t.data<int64_t>()[0] = t_;
  s["t"] = t;
  for (size_t i = 0; i < m_.size(); ++i) {
    s["m." + std::to_string(i)] = m_[i].contiguous_copy();
    s["v." + std::to_string(i)] = v_[i].contiguous_copy();
  }
  return s;
}

void Adam::load_state(const std::map<std::string, Tensor>& s) {
  auto find = [&](const std::string& name) -> const Tensor& {
    const auto it = s.find(name);
    if (it == s.end()) throw Error("Adam::load_state: the saved state has no '" + name + "' (" + std::to_string(params_.size()) + " parameters expected)");
    return it->second;
  };
  const Tensor& t = find("t");
  if (t.dtype() != DType::Int64 || t.numel() != 1) throw Error("Adam::load_state: 't' must be one int64, got " + t.shape().str());
  for (size_t i = 0; i < m_.size(); ++i)
    for (const char* which : {"m.", "v."}) {
      const Tensor& x = find(which + std::to_string(i));
      if (x.shape() != params_[i].shape() || x.dtype() != params_[i].dtype())
        throw Error(std::string("Adam::load_state: '") + which + std::to_string(i) + "' is " + x.shape().str() + " " + dtype_name(x.dtype()) +
                    ", its parameter is " + params_[i].shape().str() + " " + dtype_name(params_[i].dtype()));
    }
  NoGradGuard ng;
  t_ = t.data<int64_t>()[0];
  for (size_t i = 0; i < m_.size(); ++i) {
    m_[i].copy_(find("m." + std::to_string(i)));
    v_[i].copy_(find("v." + std::to_string(i)));
  }
}

AdamW::AdamW(std::vector<Tensor> params, double lr, double beta1, double beta2, double eps, double weight_decay)
    : Adam(std::move(params), lr, beta1, beta2, eps, weight_decay) {
  decoupled_ = true;
}

// ---------------------------------------------------------------- clipping
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  double total = 0;
  for (auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    for (double v : g.to_vector()) total += v * v;
  }
  const double norm = std::sqrt(total);
  if (!std::isfinite(norm))
    throw Error("clip_grad_norm_: the gradient norm is " + std::to_string(norm) +
                " (a gradient holds NaN or Inf)");
  if (norm > max_norm && norm > 0) {
    NoGradGuard ng;
    const double scale = max_norm / (norm + 1e-6);
    for (auto& p : params) {
      Tensor g = p.grad();
      if (g.defined()) g.mul_(scale);
    }
  }
  return norm;
}

}  // namespace dgm::optim
