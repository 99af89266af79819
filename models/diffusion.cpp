// dgm/models/diffusion.cpp
#include "models/diffusion.h"

#include <cmath>

#include "autograd/graph.h"

namespace dgm::models {

NoiseSchedule NoiseSchedule::linear(int64_t T, double beta_1, double beta_T) {
  if (T < 2) throw Error("NoiseSchedule::linear: needs at least 2 steps, got " + std::to_string(T));
  NoiseSchedule s;
  double ab = 1;
  for (int64_t t = 0; t < T; ++t) {
    const double b = beta_1 + (beta_T - beta_1) * static_cast<double>(t) / static_cast<double>(T - 1);
    ab *= 1 - b;
    s.beta.push_back(b);
    s.alpha.push_back(1 - b);
    s.alpha_bar.push_back(ab);
  }
  return s;
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
