// dgm/models/diffusion.cpp
#include "models/diffusion.h"

#include <algorithm>
#include <cmath>

#include "autograd/graph.h"

namespace dgm::models {

NoiseSchedule NoiseSchedule::from_betas(const std::vector<double>& betas) {
  if (betas.empty()) throw Error("NoiseSchedule: needs at least one step (T = 0)");
  NoiseSchedule s;
  double ab = 1;
  for (size_t t = 0; t < betas.size(); ++t) {
    const double b = betas[t];
    if (!(b > 0 && b < 1))
      throw Error("NoiseSchedule: beta_" + std::to_string(t + 1) + " = " + std::to_string(b) + " is outside (0, 1)");
    const double ab_prev = ab;
    ab *= 1 - b;
    s.beta.push_back(b);
    s.alpha.push_back(1 - b);
    s.alpha_bar.push_back(ab);
    s.posterior_var.push_back(b * (1 - ab_prev) / (1 - ab));
    s.posterior_coef_x0.push_back(std::sqrt(ab_prev) * b / (1 - ab));
    s.posterior_coef_xt.push_back(std::sqrt(1 - b) * (1 - ab_prev) / (1 - ab));
  }
  return s;
}

NoiseSchedule NoiseSchedule::linear(int64_t T, double beta_1, double beta_T) {
  if (T < 2) throw Error("NoiseSchedule::linear: needs at least 2 steps, got " + std::to_string(T));
  std::vector<double> b;
  for (int64_t t = 0; t < T; ++t) b.push_back(beta_1 + (beta_T - beta_1) * static_cast<double>(t) / static_cast<double>(T - 1));
  return from_betas(b);
}

NoiseSchedule NoiseSchedule::cosine(int64_t T, double s) {
  if (T < 1) throw Error("NoiseSchedule::cosine: needs at least 1 step, got " + std::to_string(T));
  auto f = [&](double t) { return std::pow(std::cos((t / static_cast<double>(T) + s) / (1 + s) * M_PI / 2), 2); };
  std::vector<double> b;
  for (int64_t t = 1; t <= T; ++t) b.push_back(std::min(1 - f(static_cast<double>(t)) / f(static_cast<double>(t - 1)), 0.999));
  return from_betas(b);
}

double NoiseSchedule::eps_weight(int64_t t, double sigma2) const {
  const auto i = static_cast<size_t>(t);
  return beta[i] * beta[i] / (2 * sigma2 * alpha[i] * (1 - alpha_bar[i]));
}

double NoiseSchedule::mean_from_eps(int64_t t, double x_t, double eps) const {
  const auto i = static_cast<size_t>(t);
  return (x_t - beta[i] / std::sqrt(1 - alpha_bar[i]) * eps) / std::sqrt(alpha[i]);
}

Tensor discretized_gaussian_log_prob(const Tensor& x, const Tensor& mean, const Tensor& log_var, int64_t levels) {
  if (x.shape() != mean.shape() || x.shape() != log_var.shape())
    throw Error("discretized_gaussian_log_prob: x " + x.shape().str() + ", mean " + mean.shape().str() + " and log_var " +
                log_var.shape().str() + " must have one shape");
  if (levels < 2) throw Error("discretized_gaussian_log_prob: needs at least 2 levels");
  const std::vector<double> xv = x.to_vector(), mv = mean.to_vector(), lv = log_var.to_vector();
  Tensor out = Tensor::empty(x.shape(), DType::Float64);
  const double half = 1.0 / static_cast<double>(levels - 1);  // half a bin: levels are 2 / (levels - 1) apart
  auto cdf = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  for (size_t i = 0; i < xv.size(); ++i) {
    const double sd = std::exp(0.5 * lv[i]);
    const double lo = xv[i] < -1 + 1e-9 ? 0.0 : cdf((xv[i] - half - mv[i]) / sd);
    const double hi = xv[i] > 1 - 1e-9 ? 1.0 : cdf((xv[i] + half - mv[i]) / sd);
    out.data<double>()[i] = std::log(std::max(hi - lo, 1e-300));
  }
  return out;
}

DDPM2D::DDPM2D(const NoiseSchedule& schedule, const std::vector<int64_t>& hidden, Generator& gen)
    : schedule_(schedule) {
  std::vector<int64_t> sizes = {3};
  sizes.insert(sizes.end(), hidden.begin(), hidden.end());
  sizes.push_back(2);
  net_ = register_module("net", nn::mlp(sizes, gen));
  const int64_t T = schedule.steps();
  std::vector<float> a(static_cast<size_t>(T)), b(static_cast<size_t>(T));
  for (size_t t = 0; t < a.size(); ++t) {
    a[t] = static_cast<float>(std::sqrt(schedule.alpha_bar[t]));
    b[t] = static_cast<float>(std::sqrt(1 - schedule.alpha_bar[t]));
  }
  sqrt_alpha_bar_ = Tensor::from_vector(a, {T});
  sqrt_one_minus_alpha_bar_ = Tensor::from_vector(b, {T});
}

Tensor DDPM2D::predict_noise(const Tensor& x_t, const Tensor& t) {
  const double T = static_cast<double>(schedule_.steps());
  return net_->forward(concat({x_t, unsqueeze(t.to(x_t.dtype()) / T, 1)}, 1));
}

Tensor DDPM2D::loss(const Tensor& x0, Generator& gen) {
  const int64_t B = x0.size(0);
  Tensor t = gen.randint({B}, 0, schedule_.steps());
  Tensor eps = gen.normal(x0.shape());
  // x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
  Tensor xt = unsqueeze(index_select(sqrt_alpha_bar_, 0, t), 1) * x0 +
              unsqueeze(index_select(sqrt_one_minus_alpha_bar_, 0, t), 1) * eps;
  return mse_loss(predict_noise(xt, t), eps);
}

Tensor DDPM2D::sample(int64_t n, Generator& gen) {
  NoGradGuard ng;
  Tensor x = gen.normal({n, 2});
  for (int64_t t = schedule_.steps() - 1; t >= 0; --t) {
    const size_t i = static_cast<size_t>(t);
    const double beta = schedule_.beta[i], alpha = schedule_.alpha[i], ab = schedule_.alpha_bar[i];
    Tensor eps = predict_noise(x, Tensor::full({n}, static_cast<double>(t), DType::Int64));
    x = (x - eps * (beta / std::sqrt(1 - ab))) / std::sqrt(alpha);
    if (t > 0) x = x + gen.normal({n, 2}) * std::sqrt(beta);  // sigma_t^2 = beta_t
  }
  return x;
}

}  // namespace dgm::models
