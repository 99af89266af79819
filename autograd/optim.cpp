// dgm/autograd/optim.cpp — optimizer updates as plain loops over parameter buffers.
#include "autograd/optim.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/kernels.h"

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
// Applies f(p, g, i) to every element of every parameter that has a gradient.
template <class F>
void for_each_element(std::vector<Tensor>& params, const char* op, F f) {
  NoGradGuard ng;
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor& p = params[k];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    kernels::dispatch_float(p.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      T* pp = p.data<T>();
      const T* pg = g.data<T>();
      const int64_t n = p.numel();
      for (int64_t i = 0; i < n; ++i) f(k, pp, pg, i);
    });
    p.bump_version(op);
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
  for_each_element(params_, "SGD.step", [&](size_t k, auto* p, const auto* g, int64_t i) {
    using T = std::remove_pointer_t<decltype(p)>;
    T d = g[i] + static_cast<T>(weight_decay_) * p[i];
    if (momentum_ != 0) {
      T* v = velocity_[k].data<T>();
      v[i] = static_cast<T>(momentum_) * v[i] + d;
      d = v[i];
    }
    p[i] -= static_cast<T>(lr_) * d;
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
  const double step_size = lr_ / bc1;
  const double inv_sqrt_bc2 = 1.0 / std::sqrt(bc2);
  for_each_element(params_, "Adam.step", [&](size_t k, auto* p, const auto* g, int64_t i) {
    using T = std::remove_pointer_t<decltype(p)>;
    T gi = g[i];
    if (decoupled_) p[i] -= static_cast<T>(lr_ * weight_decay_) * p[i];
    else gi += static_cast<T>(weight_decay_) * p[i];
    T* m = m_[k].data<T>();
    T* v = v_[k].data<T>();
    m[i] = static_cast<T>(beta1_) * m[i] + static_cast<T>(1 - beta1_) * gi;
    v[i] = static_cast<T>(beta2_) * v[i] + static_cast<T>(1 - beta2_) * gi * gi;
    p[i] -= static_cast<T>(step_size) * m[i] / (std::sqrt(v[i]) * static_cast<T>(inv_sqrt_bc2) + static_cast<T>(eps_));
  });
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
