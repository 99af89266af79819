// dgm/models/diffusion.cpp
#include "models/diffusion.h"

#include "models/conditional.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"
#include "models/toolkit/distributions.h"

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
  s.config_json = nlohmann::json{{"kind", "betas"}, {"betas", betas}}.dump();
  return s;
}

NoiseSchedule NoiseSchedule::linear(int64_t T, double beta_1, double beta_T) {
  if (T < 2) throw Error("NoiseSchedule::linear: needs at least 2 steps, got " + std::to_string(T));
  std::vector<double> b;
  for (int64_t t = 0; t < T; ++t) b.push_back(beta_1 + (beta_T - beta_1) * static_cast<double>(t) / static_cast<double>(T - 1));
  NoiseSchedule s = from_betas(b);
  s.config_json = nlohmann::json{{"kind", "linear"}, {"T", T}, {"beta_1", beta_1}, {"beta_T", beta_T}}.dump();
  return s;
}

NoiseSchedule NoiseSchedule::cosine(int64_t T, double s) {
  if (T < 1) throw Error("NoiseSchedule::cosine: needs at least 1 step, got " + std::to_string(T));
  auto f = [&](double t) { return std::pow(std::cos((t / static_cast<double>(T) + s) / (1 + s) * M_PI / 2), 2); };
  std::vector<double> b;
  for (int64_t t = 1; t <= T; ++t) b.push_back(std::min(1 - f(static_cast<double>(t)) / f(static_cast<double>(t - 1)), 0.999));
  NoiseSchedule sc = from_betas(b);
  sc.config_json = nlohmann::json{{"kind", "cosine"}, {"T", T}, {"s", s}}.dump();
  return sc;
}

NoiseSchedule NoiseSchedule::from_config(const std::string& config_json) {
  const nlohmann::json c = nlohmann::json::parse(config_json);
  const std::string kind = c.at("kind");
  if (kind == "linear") return linear(c.at("T"), c.at("beta_1"), c.at("beta_T"));
  if (kind == "cosine") return cosine(c.at("T"), c.at("s"));
  if (kind == "betas") return from_betas(c.at("betas").get<std::vector<double>>());
  throw Error("NoiseSchedule: unknown kind '" + kind + "' (linear, cosine or betas)");
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
  const auto cdf = dist::standard_normal_cdf;
  for (size_t i = 0; i < xv.size(); ++i) {
    const double sd = std::exp(0.5 * lv[i]);
    const double lo = xv[i] < -1 + 1e-9 ? 0.0 : cdf((xv[i] - half - mv[i]) / sd);
    const double hi = xv[i] > 1 - 1e-9 ? 1.0 : cdf((xv[i] + half - mv[i]) / sd);
    out.data<double>()[i] = std::log(std::max(hi - lo, 1e-300));
  }
  return out;
}

DDPM::DDPM(const Shape& example_shape, const NoiseSchedule& schedule, std::shared_ptr<NoisePredictor> net, Generator& gen,
           int64_t levels)
    : schedule_(schedule), example_shape_(example_shape), dims_(example_shape.numel()), levels_(levels),
      noise_(gen.next_u64()) {
  if (!net) throw Error("ddpm: no noise predictor given");
  net_ = register_module("net", std::move(net));
  const int64_t T = schedule.steps();
  std::vector<float> a, b, w;
  for (int64_t t = 0; t < T; ++t) {
    const auto i = static_cast<size_t>(t);
    a.push_back(static_cast<float>(std::sqrt(schedule.alpha_bar[i])));
    b.push_back(static_cast<float>(std::sqrt(1 - schedule.alpha_bar[i])));
    // T w_t with sigma_t^2 = beta_t; at t = 1 (index 0) the decoder's Gaussian term has the same form
    w.push_back(static_cast<float>(static_cast<double>(T) * schedule.eps_weight(t, schedule.beta[i])));
  }
  sqrt_ab_ = Tensor::from_vector(a, {T});
  sqrt_1mab_ = Tensor::from_vector(b, {T});
  weights_ = Tensor::from_vector(w, {T});
  double total = 0;
  for (float v : w) total += v;
  std::vector<float> scale;
  for (int64_t t = 0; t < T; ++t) {
    const double p = w[static_cast<size_t>(t)] / total;
    importance_cdf_.push_back((importance_cdf_.empty() ? 0.0 : importance_cdf_.back()) + p);
    scale.push_back(static_cast<float>(1.0 / (static_cast<double>(T) * p)));
  }
  importance_scale_ = Tensor::from_vector(scale, {T});
  reverse_variance_ = register_buffer("reverse_variance", Tensor::from_vector(schedule.beta, {T}).to(DType::Float32));
}

std::string DDPM::objective_title() const {
  const std::string o = objective == Objective::Simple ? "L_simple" : "the bound";
  return timesteps == Timesteps::Importance ? o + ", t drawn by importance (p_t ~ w_t)" : o;
}

std::vector<double> DDPM::importance_probabilities() const {
  std::vector<double> p;
  for (size_t t = 0; t < importance_cdf_.size(); ++t) p.push_back(importance_cdf_[t] - (t == 0 ? 0.0 : importance_cdf_[t - 1]));
  return p;
}

double DDPM::reverse_variance(int64_t t) const {
  if (t < 0 || t >= schedule_.steps())
    throw Error("ddpm: no step " + std::to_string(t) + " (indices 0.." + std::to_string(schedule_.steps() - 1) + ")");
  return reverse_variance_.at(t);
}

std::vector<double> DDPM::reverse_variances() const { return reverse_variance_.to_vector(); }

void DDPM::set_reverse_variances(const std::vector<double>& v) {
  if (static_cast<int64_t>(v.size()) != schedule_.steps())
    throw Error("ddpm: " + std::to_string(v.size()) + " reverse variances for T = " + std::to_string(schedule_.steps()) + " steps");
  for (size_t i = 0; i < v.size(); ++i)
    if (!(v[i] > 0) || !std::isfinite(v[i]))
      throw Error("ddpm: reverse variance " + std::to_string(i) + " is " + std::to_string(v[i]) + " (must be finite and > 0)");
  reverse_variance_.copy_(Tensor::from_vector(v, {schedule_.steps()}).to(reverse_variance_.dtype()));
}

DDPM::DDPM(int64_t dims, const NoiseSchedule& schedule, const std::vector<int64_t>& hidden, Generator& gen, int64_t levels,
           int64_t embedding)
    : DDPM(Shape{dims}, schedule, std::make_shared<MLPNoisePredictor>(dims, hidden, gen, embedding), gen, levels) {}

std::string DDPM::config_json() const {
  nlohmann::json c{{"example_shape", example_shape_.vec()},
                   {"schedule", nlohmann::json::parse(schedule_.config_json)},
                   {"levels", levels_},
                   {"net", nlohmann::json::parse(net_->config_json())},
                   {"objective", objective == Objective::Simple ? "simple" : "bound"}};
  if (timesteps == Timesteps::Importance) c["timesteps"] = "importance";
  if (classes() > 0) c["p_uncond"] = p_uncond;
  return c.dump();
}

// ---------------------------------------------------------------- the class-conditional model
Tensor DDPM::predict_noise(const Tensor& x_t, const Tensor& t, const Tensor& y) {
  if (classes() > 0 && !y.defined())  // no labels: the unconditional model ("none" for every example)
    return net_->predict(x_t, t, Tensor::full({x_t.size(0)}, static_cast<double>(classes()), DType::Int64));
  return net_->predict(x_t, t, y);
}

Tensor DDPM::guided_noise(const Tensor& x_t, const Tensor& t, const Tensor& y, double w) {
  if (classes() == 0) throw Error("ddpm: guidance needs a class-conditional noise predictor (classes 0)");
  const int64_t n = x_t.size(0);
  check_labels(y, n, classes(), "ddpm guidance");
  // both halves in one pass: rows 0..n-1 given y, rows n..2n-1 given none
  const Tensor none = Tensor::full({n}, static_cast<double>(classes()), DType::Int64);
  const Tensor e = net_->predict(concat({x_t, x_t}, 0), concat({t, t}, 0), concat({y, none}, 0));
  return slice(e, 0, 0, n) * (1 + w) - slice(e, 0, n, 2 * n) * w;
}

Tensor DDPM::loss_given(const Tensor& x, const Tensor& y) {
  if (classes() == 0) throw Error("ddpm: loss_given needs a class-conditional noise predictor (classes 0)");
  check_labels(y, x.size(0), classes(), "ddpm loss_given");
  // each label dropped to "none" with probability p_uncond: the same network learns p(x) too
  std::vector<int64_t> kept(static_cast<size_t>(y.numel()));
  for (int64_t i = 0; i < y.numel(); ++i)
    kept[static_cast<size_t>(i)] = noise_.uniform01() < p_uncond ? classes() : static_cast<int64_t>(y.at(i));
  return simple_loss(x, Tensor::from_indices(kept, {y.numel()}));
}

Tensor DDPM::log_prob_given(const Tensor& x, const Tensor& y) {
  if (classes() == 0) throw Error("ddpm: log_prob_given needs a class-conditional noise predictor (classes 0)");
  check_labels(y, x.size(0), classes(), "ddpm log_prob_given");
  return neg(bound_stratified(x, log_prob_strata, noise_, {}, y).total);
}

Tensor DDPM::sample_given(const Tensor& y, Generator& gen) {
  if (classes() == 0) throw Error("ddpm: sample_given needs a class-conditional noise predictor (classes 0)");
  check_labels(y, y.numel(), classes(), "ddpm sample_given");
  return ancestral(y.numel(), gen, {}, y, guidance);
}

Tensor DDPM::to_model_space(const Tensor& x) const { return levels_ > 0 ? x * 2.0 - 1.0 : x; }

DType DDPM::model_dtype() const {
  const std::vector<Tensor> p = net_->parameters();
  return p.empty() ? DType::Float32 : p[0].dtype();
}

Shape DDPM::batch_shape(int64_t n) const {
  Shape s = example_shape_;
  s.insert(0, n);
  return s;
}

Tensor DDPM::per_example(const Tensor& t) const {
  Shape s(std::vector<int64_t>(example_shape_.size() + 1, 1));
  s[0] = t.numel();
  return reshape(t, s);
}

Tensor DDPM::loss(const Tensor& x) { return simple_loss(x, Tensor()); }

Tensor DDPM::checked_model_space(const Tensor& x) const {
  if (x.shape() != batch_shape(x.dim() > 0 ? x.size(0) : 0))
    throw Error("ddpm: expects a batch " + batch_shape(-1).str() + " (N first), got " + x.shape().str());
  return to_model_space(x);
}

Tensor DDPM::draw_steps(int64_t n) {
  const int64_t T = schedule_.steps();
  if (timesteps == Timesteps::Uniform) return noise_.randint({n}, 0, T);
  std::vector<double> drawn;  // inverse CDF: the first step whose cumulative probability exceeds u ~ U[0, 1)
  for (int64_t b = 0; b < n; ++b) {
    const auto k = std::upper_bound(importance_cdf_.begin(), importance_cdf_.end(), noise_.uniform01()) - importance_cdf_.begin();
    drawn.push_back(static_cast<double>(std::min<int64_t>(k, T - 1)));  // (rounding could leave cdf[T-1] a hair below 1)
  }
  return Tensor::from_vector(drawn, {n}).to(DType::Int64);
}

Tensor DDPM::squared_errors(const Tensor& x0, const Tensor& t, const Tensor& y) {
  Tensor eps = noise_.normal(x0.shape(), 0, 1, x0.dtype());
  // x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
  Tensor xt = per_example(index_select(sqrt_ab_, 0, t)).to(x0.dtype()) * x0 +
              per_example(index_select(sqrt_1mab_, 0, t)).to(x0.dtype()) * eps;
  return sum(flatten(square(predict_noise(xt, t, y) - eps), 1), {1});  // ||eps - eps_theta||^2 per example
}

Tensor DDPM::weighted_errors(const Tensor& x0, const Tensor& t, const Tensor& y, bool drawn) {
  Tensor sq = squared_errors(x0, t, y);
  // importance-drawn steps: each term / (T p_t), so that E_{t ~ p}[term / (T p_t)] = E_{t ~ U}[term]
  if (drawn && timesteps == Timesteps::Importance) sq = index_select(importance_scale_, 0, t).to(x0.dtype()) * sq;
  if (objective == Objective::Simple) return sq;
  return index_select(weights_, 0, t).to(x0.dtype()) * sq;  // T w_t ||.||^2: the bound's term up to constants
}

Tensor DDPM::simple_loss(const Tensor& x, const Tensor& y) {
  const Tensor x0 = checked_model_space(x);
  const Tensor terms = weighted_errors(x0, draw_steps(x0.size(0)), y, true);
  return objective == Objective::Simple ? mean(terms) / static_cast<double>(dims_) : mean(terms);
}

Tensor DDPM::objective_at(const Tensor& x, const Tensor& t) {
  const Tensor x0 = checked_model_space(x);
  if (t.shape() != Shape{x0.size(0)} || t.dtype() != DType::Int64)
    throw Error("ddpm: objective_at needs one int64 step per example, shape [" + std::to_string(x0.size(0)) + "], got " + t.shape().str());
  const Tensor terms = weighted_errors(x0, t, Tensor(), false);
  return objective == Objective::Simple ? terms / static_cast<double>(dims_) : terms;
}

Tensor DDPM::loss_terms(const Tensor& x) {
  const Tensor x0 = checked_model_space(x);
  const Tensor terms = weighted_errors(x0, draw_steps(x0.size(0)), Tensor(), true);
  return objective == Objective::Simple ? terms / static_cast<double>(dims_) : terms;
}

Tensor DDPM::reverse_mean(const Tensor& x_t, int64_t t, const Tensor& y, double w) {
  const auto i = static_cast<size_t>(t);
  const Tensor tt = Tensor::full({x_t.size(0)}, static_cast<double>(t), DType::Int64);
  Tensor eps = y.defined() && w != 0 ? guided_noise(x_t, tt, y, w) : predict_noise(x_t, tt, y);
  return (x_t - eps * (schedule_.beta[i] / std::sqrt(1 - schedule_.alpha_bar[i]))) / std::sqrt(schedule_.alpha[i]);
}

Tensor DDPM::prior_kl(const Tensor& x0) const {
  const double abT = schedule_.alpha_bar.back();
  return dist::sum_per_example(dist::Normal{x0 * std::sqrt(abT), Tensor::full(x0.shape(), std::log(1 - abT), DType::Float64)}.kl_to_standard());
}

Tensor DDPM::decoder_nll(const Tensor& x0, const Tensor& mu) const {
  const Tensor log_var = Tensor::full(mu.shape(), std::log(reverse_variance(0)), DType::Float64);
  return neg(dist::sum_per_example(levels_ > 0 ? discretized_gaussian_log_prob(x0, mu, log_var, levels_) : dist::Normal{mu, log_var}.log_prob(x0)));
}

DDPM::Bound DDPM::bound(const Tensor& x, Generator& gen, const std::function<void(int64_t)>& each_term) {
  NoGradGuard ng;
  const Tensor x0 = to_model_space(x).to(DType::Float64);
  const int64_t n = x0.size(0), T = schedule_.steps();
  const DType dt = model_dtype();
  auto normal = [](const Tensor& m, double var) { return dist::Normal{m, Tensor::full(m.shape(), std::log(var), DType::Float64)}; };
  const std::vector<double> var = reverse_variances();
  Bound b;
  b.prior = prior_kl(x0);  // L_T
  b.transitions = Tensor::zeros({n}, DType::Float64);
  for (int64_t t = 0; t < T; ++t) {
    const auto i = static_cast<size_t>(t);
    Tensor xt = x0 * std::sqrt(schedule_.alpha_bar[i]) + gen.normal(x0.shape(), 0, 1, DType::Float64) * std::sqrt(1 - schedule_.alpha_bar[i]);
    Tensor mu = reverse_mean(xt.to(dt), t).to(DType::Float64);
    if (t == 0) {  // L_0 = -log p(x_0 | x_1)
      b.decoder = decoder_nll(x0, mu);
    } else {  // L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
      Tensor mu_q = x0 * schedule_.posterior_coef_x0[i] + xt * schedule_.posterior_coef_xt[i];
      b.transitions = b.transitions + dist::sum_per_example(normal(mu_q, schedule_.posterior_var[i]).kl_to(normal(mu, var[i])));
    }
    if (each_term) each_term(t);
  }
  b.total = b.prior + b.transitions + b.decoder;
  return b;
}

std::vector<int64_t> DDPM::strata_edges(int64_t strata) const {
  const int64_t T = schedule_.steps();
  if (strata < 1) throw Error("ddpm: bound_stratified needs at least 1 range, got " + std::to_string(strata));
  std::vector<int64_t> edges = {1};  // index 1 is the paper's step 2, the first L_{t-1} with t >= 2
  if (T < 2) return edges;
  const int64_t k = std::min(strata, T - 1);
  for (int64_t j = 1; j <= k; ++j) {  // T^(j/k), at least one step past the last edge, and room for the rest
    const double geometric = std::ceil(std::pow(static_cast<double>(T), static_cast<double>(j) / static_cast<double>(k)));
    edges.push_back(std::clamp(static_cast<int64_t>(geometric), edges.back() + 1, T - (k - j)));
  }
  return edges;
}

DDPM::Bound DDPM::bound_stratified(const Tensor& x, int64_t strata, Generator& gen, const std::function<void(int64_t)>& each_range,
                                   const Tensor& y) {
  NoGradGuard ng;
  const Tensor x0 = to_model_space(x).to(DType::Float64);
  const int64_t n = x0.size(0);
  const DType dt = model_dtype();
  const std::vector<double> var = reverse_variances();
  Bound b;
  b.prior = prior_kl(x0);  // L_T
  {  // L_0, as bound() has it
    const Tensor xt = x0 * std::sqrt(schedule_.alpha_bar[0]) + gen.normal(x0.shape(), 0, 1, DType::Float64) * std::sqrt(1 - schedule_.alpha_bar[0]);
    b.decoder = decoder_nll(x0, reverse_mean(xt.to(dt), 0, y).to(DType::Float64));
  }
  b.transitions = Tensor::zeros({n}, DType::Float64);
  const std::vector<int64_t> edges = strata_edges(strata);
  const double D = static_cast<double>(dims_);
  for (size_t j = 0; j + 1 < edges.size(); ++j) {
    const int64_t lo = edges[j], width = edges[j + 1] - lo;
    // one step per example, uniform in [lo, lo + width); L_{t-1} = w_t ||eps - eps_theta||^2 + D k_t
    const Tensor t = width == 1 ? Tensor::full({n}, static_cast<double>(lo), DType::Int64) : gen.randint({n}, lo, lo + width);
    std::vector<double> keep(static_cast<size_t>(n)), noise(static_cast<size_t>(n)), w(static_cast<size_t>(n)), k(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) {
      const auto r = static_cast<size_t>(e), i = static_cast<size_t>(t.at(e));
      keep[r] = std::sqrt(schedule_.alpha_bar[i]), noise[r] = std::sqrt(1 - schedule_.alpha_bar[i]);
      const double pv = schedule_.posterior_var[i], sv = var[i];
      w[r] = schedule_.eps_weight(static_cast<int64_t>(i), sv), k[r] = 0.5 * (std::log(sv / pv) + pv / sv - 1);
    }
    auto column = [&](const std::vector<double>& v) { return per_example(Tensor::from_vector(v, {n})); };
    const Tensor eps = gen.normal(x0.shape(), 0, 1, DType::Float64);
    const Tensor xt = x0 * column(keep) + eps * column(noise);
    const Tensor sq = sum(flatten(square(eps - predict_noise(xt.to(dt), t, y).to(DType::Float64)), 1), {1});
    b.transitions = b.transitions + (sq * Tensor::from_vector(w, {n}) + Tensor::from_vector(k, {n}) * D) * static_cast<double>(width);
    if (each_range) each_range(static_cast<int64_t>(j));
  }
  b.total = b.prior + b.transitions + b.decoder;
  return b;
}

DDPM::VarianceFit DDPM::fit_variances(const Tensor& x, Generator& gen, const std::function<void(int64_t)>& each_step) {
  NoGradGuard ng;
  const Tensor x0 = to_model_space(x).to(DType::Float64);
  const int64_t n = x0.size(0), T = schedule_.steps();
  const DType dt = model_dtype();
  VarianceFit f;
  f.before = reverse_variances();
  f.after = f.before;
  Tensor mu0;  // the decoder's mean on x's x_1
  for (int64_t t = 0; t < T; ++t) {
    const auto i = static_cast<size_t>(t);
    const Tensor eps = gen.normal(x0.shape(), 0, 1, DType::Float64);
    const Tensor xt = (x0 * std::sqrt(schedule_.alpha_bar[i]) + eps * std::sqrt(1 - schedule_.alpha_bar[i])).to(dt);
    const Tensor e = predict_noise(xt, Tensor::full({n}, static_cast<double>(t), DType::Int64)).to(DType::Float64);
    f.mse.push_back(sum(square(eps - e)).item() / static_cast<double>(x0.numel()));
    const double c = schedule_.beta[i] * schedule_.beta[i] / (schedule_.alpha[i] * (1 - schedule_.alpha_bar[i]));
    if (t > 0) f.after[i] = std::clamp(schedule_.posterior_var[i] + c * f.mse.back(), schedule_.posterior_var[i], schedule_.beta[i]);
    else if (levels_ > 0) mu0 = (xt.to(DType::Float64) - e * (schedule_.beta[0] / std::sqrt(1 - schedule_.alpha_bar[0]))) / std::sqrt(schedule_.alpha[0]);
    else f.after[0] = std::max(c * f.mse.back(), 1e-12);
    if (each_step) each_step(t);
  }
  auto decoder = [&](double v) -> double {  // L_0 on x, nats per example
    if (levels_ == 0) return NAN;
    return -sum(discretized_gaussian_log_prob(x0, mu0, Tensor::full(mu0.shape(), std::log(v), DType::Float64), levels_)).item() / static_cast<double>(n);
  };
  if (levels_ > 0) {
    double best = INFINITY;
    for (int k = -32; k <= 16; ++k) {
      const double v = schedule_.beta[0] * std::exp2(k / 4.0), l = decoder(v);
      if (l < best) best = l, f.after[0] = v;
    }
  }
  f.decoder_before = decoder(f.before[0]), f.decoder_after = decoder(f.after[0]);
  set_reverse_variances(f.after);
  return f;
}

Tensor DDPM::to_levels(const Tensor& y) const {
  if (levels_ == 0) return y;
  // the nearest level of (y + 1) / 2, clipped to [0, 1]
  std::vector<double> v = y.to_vector();
  for (double& e : v) e = std::round(std::clamp((e + 1) / 2, 0.0, 1.0) * static_cast<double>(levels_ - 1)) / static_cast<double>(levels_ - 1);
  return Tensor::from_vector(v, y.shape()).to(y.dtype());
}

Tensor DDPM::sample(int64_t n, Generator& gen, const std::function<void(int64_t, const Tensor&)>& each_step) {
  return ancestral(n, gen, each_step, Tensor(), 0);
}

Tensor DDPM::ancestral(int64_t n, Generator& gen, const std::function<void(int64_t, const Tensor&)>& each_step, const Tensor& y,
                       double w) {
  NoGradGuard ng;
  const DType dt = model_dtype();
  Tensor x = gen.normal(batch_shape(n), 0, 1, dt);
  if (each_step) each_step(schedule_.steps(), x);
  for (int64_t t = schedule_.steps() - 1; t >= 0; --t) {  // index t: x_{t+1} -> x_t
    x = reverse_mean(x, t, y, w);
    if (t > 0) x = x + gen.normal(x.shape(), 0, 1, dt) * std::sqrt(reverse_variance(t));
    if (each_step) each_step(t, x);
  }
  return to_levels(x);
}

Tensor DDPM::sample_ddim(int64_t n, int64_t steps, Generator& gen, const std::function<void(int64_t, const Tensor&)>& each_step) {
  const int64_t T = schedule_.steps();
  if (steps < 1 || steps > T)
    throw Error("ddpm: DDIM needs between 1 and T = " + std::to_string(T) + " steps, got " + std::to_string(steps));
  NoGradGuard ng;
  const DType dt = model_dtype();
  // the kept steps, evenly spaced from T-1 down to 0 (indices)
  std::vector<int64_t> kept;
  for (int64_t k = 0; k < steps; ++k) kept.push_back(steps == 1 ? T - 1 : (T - 1) * k / (steps - 1));
  Tensor x = gen.normal(batch_shape(n), 0, 1, dt);
  if (each_step) each_step(T, x);
  for (size_t k = kept.size(); k-- > 0;) {
    const int64_t t = kept[k];
    const double ab = schedule_.alpha_bar[static_cast<size_t>(t)];
    const double ab_prev = k > 0 ? schedule_.alpha_bar[static_cast<size_t>(kept[k - 1])] : 1.0;
    Tensor eps = predict_noise(x, Tensor::full({n}, static_cast<double>(t), DType::Int64));
    Tensor x0 = (x - eps * std::sqrt(1 - ab)) / std::sqrt(ab);
    if (levels_ > 0) {
      // the data live in [-1, 1]: clip the prediction, and take the noise that x_t implies with the
      // clipped x0, so that the next point stays consistent with the step's noise level
      x0 = clamp(x0, -1.0, 1.0);
      eps = (x - x0 * std::sqrt(ab)) / std::sqrt(1 - ab);
    }
    x = x0 * std::sqrt(ab_prev) + eps * std::sqrt(1 - ab_prev);
    if (each_step) each_step(k > 0 ? kept[k - 1] + 1 : 0, x);  // the paper's time of x now
  }
  return to_levels(x);
}

DDPM2D::DDPM2D(const NoiseSchedule& schedule, const std::vector<int64_t>& hidden, Generator& gen)
    : schedule_(schedule), hidden_(hidden) {
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

std::string DDPM2D::config_json() const {
  return nlohmann::json{{"schedule", nlohmann::json::parse(schedule_.config_json)}, {"hidden", hidden_}}.dump();
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
