// lessons/diffusion.cpp — denoising diffusion: the forward process, its posterior,
// the epsilon form of the bound's terms, and ancestral sampling.
//
// 1. q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t)): the one-step chain
//    iterated by Monte Carlo against the closed form, linear and cosine schedules.
// 2. The posterior q(x_{t-1} | x_t, x_0): closed form against Bayes' rule on a grid.
// 4. L_{t-1} in epsilon form: the Gaussian KL = w_t (eps - eps_theta)^2 + const.
// 5. L_T is close to zero; the discretized Gaussian decoder L_0 is a proper
//    distribution over the data's levels.
// 7. A DDPM trained on a 2-D toy: samples against held-out data (energy
//    distance, with two real samples as the reference), the effect of T, the
//    denoising trajectory as a picture.
// 3. The negative ELBO of a trained 1-D DDPM by one Monte Carlo chain and by
//    its closed-form terms, against the exact -log p(x) of the data.
// 6. L_simple against the weighted bound: the bound and the samples of each.
// 8. The 8x8 digits: the test NLL bound over all T terms and samples, with an
//    eps-MLP and with a U-Net (the same DDPM; the bounds paired image by image).
// 9. Fashion-MNIST (--quick: the digits) with a U-Net: ancestral samples and
//    their trajectory, the bound over all T terms in bits/dim, each term in
//    epsilon form on the trained network, and sample quality (a Frechet
//    distance on a domain classifier's features) for DDIM with 10/25/100 steps.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <tuple>

#include "autograd/graph.h"
#include "lessons/common/harness.h"
#include "lessons/common/judge.h"
#include "lessons/common/lesson.h"
#include "models/recipes.h"
#include "models/diffusion.h"
#include "models/divergences.h"
#include "models/sample_quality.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/image.h"
#include "models/toolkit/linalg.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/toy2d.h"
#include "models/toolkit/trainer.h"

using namespace dgm;
using models::NoiseSchedule;

namespace {

// ------------------------------------------------------------ 1. forward marginals
void forward_marginals(lesson::Lesson& L, Generator& gen) {
  const int64_t n = L.options().quick ? 4000 : 20000;
  std::cout << "\n-- 1. The forward process: x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z, iterated " << n
            << " times from x_0 = 1.5;\n   its closed form q(x_t | x_0) = N(sqrt(abar_t) x_0, 1 - abar_t)\n";
  for (const auto& [name, s] : {std::pair{std::string("linear"), NoiseSchedule::linear(1000)},
                                std::pair{std::string("cosine"), NoiseSchedule::cosine(1000)}}) {
    std::vector<double> x(static_cast<size_t>(n), 1.5);
    double worst_mean = 0, worst_var = 0;  // in standard errors
    std::cout << "   " << name << ":   t   mean (MC)   closed form   var (MC)   closed form\n";
    for (int64_t t = 0; t < s.steps(); ++t) {
      const double b = s.beta[static_cast<size_t>(t)], keep = std::sqrt(1 - b), noise = std::sqrt(b);
      for (double& v : x) v = keep * v + noise * gen.normal01();
      const int64_t step = t + 1;
      if (step != 1 && step != 10 && step != 100 && step != 500 && step != 1000) continue;
      double m = 0, v2 = 0;
      for (double v : x) m += v / static_cast<double>(n);
      for (double v : x) v2 += (v - m) * (v - m) / static_cast<double>(n - 1);
      const double ab = s.alpha_bar[static_cast<size_t>(t)], mean = std::sqrt(ab) * 1.5, var = 1 - ab;
      worst_mean = std::max(worst_mean, std::abs(m - mean) / std::sqrt(var / static_cast<double>(n)));
      worst_var = std::max(worst_var, std::abs(v2 - var) / (var * std::sqrt(2.0 / static_cast<double>(n - 1))));
      std::cout << std::fixed << std::setprecision(5) << "        " << std::setw(4) << step << "   " << std::setw(8) << m << "   "
                << std::setw(8) << mean << "      " << std::setw(8) << v2 << "   " << std::setw(8) << var << "\n";
    }
    L.check_le(name + " schedule: the Monte Carlo means within 4 standard errors of sqrt(abar_t) x_0 (worst, in s.e.)",
               worst_mean, 4.0);
    L.check_le(name + " schedule: the Monte Carlo variances within 4 standard errors of 1 - abar_t (worst, in s.e.)",
               worst_var, 4.0);
  }
}

// ------------------------------------------------------------ 2. the posterior by Bayes' rule
void posterior(lesson::Lesson& L) {
  std::cout << "\n-- 2. The posterior q(x_{t-1} | x_t, x_0) ∝ q(x_t | x_{t-1}) q(x_{t-1} | x_0): closed form vs Bayes' rule\n"
            << "   on a grid (200,001 points, Simpson's rule for the normaliser, mean and variance)\n";
  const NoiseSchedule s = NoiseSchedule::linear(1000);
  double worst_mean = 0, worst_var = 0;
  for (int64_t t : {1, 10, 100, 500, 999}) {  // index t: the paper's step t + 1 >= 2
    const auto i = static_cast<size_t>(t);
    const double x0 = 0.7, xt = std::sqrt(s.alpha_bar[i]) * x0 + 0.3;
    const double mean_prior = std::sqrt(s.alpha_bar[i - 1]) * x0, var_prior = 1 - s.alpha_bar[i - 1];
    auto unnormalised = [&](double y) {  // q(x_t | x_{t-1} = y) q(x_{t-1} = y | x_0)
      return std::exp(-0.5 * std::pow(xt - std::sqrt(s.alpha[i]) * y, 2) / s.beta[i] - 0.5 * std::pow(y - mean_prior, 2) / var_prior);
    };
    const double closed_mean = s.posterior_coef_x0[i] * x0 + s.posterior_coef_xt[i] * xt, closed_var = s.posterior_var[i];
    const double sd = std::sqrt(closed_var), lo = closed_mean - 12 * sd, hi = closed_mean + 12 * sd;
    const int N = 200000;
    std::vector<double> p0(N + 1), p1(N + 1), p2(N + 1);  // the density times 1, y, y^2
    for (int k = 0; k <= N; ++k) {
      const double y = lo + (hi - lo) * k / N, p = unnormalised(y);
      p0[static_cast<size_t>(k)] = p, p1[static_cast<size_t>(k)] = p * y, p2[static_cast<size_t>(k)] = p * y * y;
    }
    const double h = (hi - lo) / N, z = lesson::simpson(p0, h);
    const double mean = lesson::simpson(p1, h) / z, var = lesson::simpson(p2, h) / z - mean * mean;
    worst_mean = std::max(worst_mean, std::abs(mean - closed_mean));
    worst_var = std::max(worst_var, std::abs(var - closed_var) / closed_var);
  }
  L.check_close("posterior mean: closed form vs Bayes' rule on a grid (worst of 5 steps)", worst_mean, 0, 1e-8);
  L.check_close("posterior variance: closed form vs Bayes' rule on a grid (worst relative error of 5 steps)", worst_var, 0, 1e-6);
}

// ------------------------------------------------------------ 4. the epsilon form
void epsilon_form(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 4. L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) with p's mean written through eps_theta:\n"
            << "   = w_t (eps - eps_theta)^2 + const,  w_t = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t))\n";
  const NoiseSchedule s = NoiseSchedule::linear(1000);
  double worst = 0, largest = 0;
  for (int k = 0; k < 200; ++k) {
    const int64_t t = 1 + static_cast<int64_t>(gen.uniform01() * 998);
    const auto i = static_cast<size_t>(t);
    const double x0 = gen.normal01(), eps = gen.normal01(), eps_theta = gen.normal01();
    const double xt = std::sqrt(s.alpha_bar[i]) * x0 + std::sqrt(1 - s.alpha_bar[i]) * eps;
    const double sigma2 = k % 2 ? s.beta[i] : s.posterior_var[i];  // the paper's two choices
    // left: the Gaussian KL (engine, float64), means from the posterior's x_0-form and from eps_theta
    dist::Normal q{Tensor::full({1}, s.posterior_coef_x0[i] * x0 + s.posterior_coef_xt[i] * xt, DType::Float64),
                   Tensor::full({1}, std::log(s.posterior_var[i]), DType::Float64)};
    dist::Normal p{Tensor::full({1}, s.mean_from_eps(t, xt, eps_theta), DType::Float64),
                   Tensor::full({1}, std::log(sigma2), DType::Float64)};
    const double kl = q.kl_to(p).item();
    // right: the weighted squared error, plus the part of the KL that does not depend on theta
    const double constant = 0.5 * (std::log(sigma2 / s.posterior_var[i]) + s.posterior_var[i] / sigma2 - 1);
    const double right = s.eps_weight(t, sigma2) * (eps - eps_theta) * (eps - eps_theta) + constant;
    // float64 round-off grows with the KL's size (the two means are formed by different formulas and
    // their difference is squared and divided by a small sigma^2): compare relative to max(1, |KL|)
    worst = std::max(worst, std::abs(kl - right) / std::max(1.0, std::abs(kl)));
    largest = std::max(largest, kl);
  }
  L.check_close("KL = w_t (eps - eps_theta)^2 + const, 200 random (t, x_0, eps, eps_theta), sigma^2 = beta or beta~ "
                "(worst |diff| / max(1, KL), float64; the largest KL was " + std::to_string(largest) + ")",
                worst, 0, 1e-10);
  std::cout << std::scientific << std::setprecision(3) << "   w_t (sigma^2 = beta_t): t = 2: " << s.eps_weight(1, s.beta[1])
            << ", t = 100: " << s.eps_weight(99, s.beta[99]) << ", t = 1000: " << s.eps_weight(999, s.beta[999])
            << std::defaultfloat << "\n   L_simple sets every w_t to 1: it down-weights the small-t terms the bound weights most\n";
}

// ------------------------------------------------------------ 5. the end terms
void end_terms(lesson::Lesson& L) {
  std::cout << "\n-- 5. The two end terms of the bound\n";
  for (const auto& [name, s] : {std::pair{std::string("linear"), NoiseSchedule::linear(1000)},
                                std::pair{std::string("cosine"), NoiseSchedule::cosine(1000)}}) {
    // L_T = KL(q(x_T | x_0) || N(0, 1)) per dimension, worst over x_0 in [-1, 1] (at |x_0| = 1)
    const double ab = s.alpha_bar.back();
    dist::Normal q{Tensor::full({1}, std::sqrt(ab), DType::Float64), Tensor::full({1}, std::log(1 - ab), DType::Float64)};
    const double lt = q.kl_to_standard().item();
    std::cout << std::scientific << std::setprecision(3) << "   " << name << ": abar_T = " << ab << ", L_T <= " << lt
              << " nats per dimension" << std::defaultfloat << "\n";
    L.check_le(name + " schedule: L_T per dimension for data in [-1, 1] is below 1e-4 nats", lt, 1e-4);
  }
  const int64_t levels = 17;
  Tensor x = Tensor::empty({levels}, DType::Float64);
  for (int64_t l = 0; l < levels; ++l) x.data<double>()[l] = -1 + 2.0 * static_cast<double>(l) / (levels - 1);
  double worst = 0;
  for (double mean : {-1.3, -0.2, 0.5, 1.1})
    for (double sd : {0.01, 0.1, 0.7}) {
      const Tensor lp = models::discretized_gaussian_log_prob(x, Tensor::full({levels}, mean, DType::Float64),
                                                              Tensor::full({levels}, 2 * std::log(sd), DType::Float64), levels);
      double total = 0;
      for (int64_t l = 0; l < levels; ++l) total += std::exp(lp.at(l));
      worst = std::max(worst, std::abs(total - 1));
    }
  L.check_close("L_0's discretized Gaussian over 17 levels sums to one (12 means and scales, worst)", worst, 0, 1e-12);
}

// ------------------------------------------------------------ 3. the ELBO two ways, against the exact likelihood
// A 1-D mixture whose log-density is known: 0.35 N(-1.2, 0.25^2) + 0.65 N(0.9, 0.4^2).
double mixture_log_density(double x) {
  auto n = [](double x, double m, double s) { return std::exp(-0.5 * std::pow((x - m) / s, 2)) / (s * std::sqrt(2 * M_PI)); };
  return std::log(0.35 * n(x, -1.2, 0.25) + 0.65 * n(x, 0.9, 0.4));
}
Tensor sample_mixture(int64_t n, Generator& gen) {
  Tensor x = Tensor::empty({n, 1});
  for (int64_t i = 0; i < n; ++i)
    x.data<float>()[i] = static_cast<float>(gen.uniform01() < 0.35 ? -1.2 + 0.25 * gen.normal01() : 0.9 + 0.4 * gen.normal01());
  return x;
}

train::FitOptions ddpm_fit(lesson::Lesson& L, const std::string& tag, int epochs, int64_t batch) {
  train::FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.tag = tag;
  L.configure(o);  // the output folder, --resume, --lr
  o.data_transform = "as the data set stores it; a model with levels maps k / (levels - 1) to [-1, 1] inside";
  o.train_column = "train_loss";
  o.y_label = "training objective";
  o.curve_title = tag;
  o.ema = 0.999;  // sample and evaluate with the average of the parameters, as DDPM does
  return o;
}

void elbo_two_ways(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  std::cout << "\n-- 3. The negative ELBO of a trained 1-D DDPM (T = 100), two ways, against the exact -log p(x) of the data's mixture\n"
            << "   (a) one Monte Carlo chain per point: log q(x_{1:T} | x_0) - log p(x_{0:T}), x_{1:T} ~ q\n"
            << "   (b) the terms: L_T + sum_t KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) + L_0, each KL in closed form\n";
  models::DDPM m(1, NoiseSchedule::linear(100, 1e-3, 0.2), {64, 64}, gen, 0, 16);
  m.objective = models::DDPM::Objective::Bound;
  const Tensor train_x = sample_mixture(quick ? 4000 : 20000, gen), test = sample_mixture(2000, gen);
  train::fit(m, train_x, Tensor(), gen, ddpm_fit(L, "ddpm1d_bound", L.epochs(40, 80), 256));
  NoGradGuard ng;
  const NoiseSchedule& s = m.schedule();
  const int64_t n = test.size(0), T = s.steps();
  std::vector<double> chain, terms, exact;
  const int R = quick ? 5 : 20;
  for (int r = 0; r < R; ++r) {
    const models::DDPM::Bound b = m.bound(test, gen);
    for (int64_t i = 0; i < n; ++i) terms.push_back(b.total.at(i));
    // route (a): walk the forward chain, summing log q and the model's log p
    std::vector<Tensor> xs{test.to(DType::Float64)};
    Tensor log_q = Tensor::zeros({n}, DType::Float64), log_p = Tensor::zeros({n}, DType::Float64);
    for (int64_t t = 0; t < T; ++t) {
      const auto k = static_cast<size_t>(t);
      Tensor next = xs.back() * std::sqrt(s.alpha[k]) + gen.normal({n, 1}, 0, 1, DType::Float64) * std::sqrt(s.beta[k]);
      log_q = log_q + dist::sum_per_example(dist::Normal{xs.back() * std::sqrt(s.alpha[k]), Tensor::full({n, 1}, std::log(s.beta[k]), DType::Float64)}.log_prob(next));
      xs.push_back(next);
    }
    log_p = dist::sum_per_example(dist::Normal::standard({n, 1}, DType::Float64).log_prob(xs.back()));
    for (int64_t t = T - 1; t >= 0; --t) {  // p(x_t | x_{t+1}) = N(mu_theta(x_{t+1}), beta), index t
      const Tensor mu = m.reverse_mean(xs[static_cast<size_t>(t + 1)].to(DType::Float32), t).to(DType::Float64);
      log_p = log_p + dist::sum_per_example(dist::Normal{mu, Tensor::full({n, 1}, std::log(s.beta[static_cast<size_t>(t)]), DType::Float64)}.log_prob(xs[static_cast<size_t>(t)]));
    }
    for (int64_t i = 0; i < n; ++i) chain.push_back(log_q.at(i) - log_p.at(i));
  }
  for (int64_t i = 0; i < n; ++i) exact.push_back(-mixture_log_density(test.at(i)));
  auto [ma, sa] = lesson::mean_and_se(chain);
  auto [mb, sb] = lesson::mean_and_se(terms);
  const double nll = lesson::mean_and_se(exact).first;
  std::cout << std::fixed << std::setprecision(4) << "   (a) chain " << ma << " +- " << sa << " nats, (b) terms " << mb << " +- " << sb
            << " nats; exact -log p(x) " << nll << " nats: the bound's gap " << mb - nll << "\n";
  L.check_close("-ELBO by one Monte Carlo chain = by its closed-form terms (" + std::to_string(R) + " x 2,000 points, 4 standard errors)",
                ma, mb, 4 * std::sqrt(sa * sa + sb * sb));
  L.check_le("the bound holds: exact -log p(x) <= -ELBO (the terms' estimate, minus 4 standard errors)", nll, mb + 4 * sb);
  L.metric("mixture_1d_nelbo_nats", mb);
  L.metric("mixture_1d_exact_nll_nats", nll);
}

// ------------------------------------------------------------ 6. L_simple vs the weighted bound
void simple_vs_bound(lesson::Lesson& L, Generator& gen);

// ------------------------------------------------------------ 7. a 2-D DDPM
void two_d(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const data::Toy toy = data::Toy::TwoMoons;
  const int64_t n_eval = quick ? 800 : 1500;  // samples compared (the energy distance costs n_eval^2)
  // Every energy distance here is from samples, so it is noisy and biased up (models::energy_distance):
  // even a perfect sampler scores above 0. The reference is that floor: the same statistic between the
  // held-out data and a real sample of the model's sample size, averaged over `refs` real samples; the
  // model's figure is averaged over `draws` sample draws. Both carry a standard error. A large held-out
  // set keeps its own chance deviations out of both. (Real samples are drawn independently, as the
  // model's are: make_moons's evenly spaced sets are a floor no sampler reaches; see data::sample_toy.)
  const int refs = quick ? 3 : 16, draws = quick ? 2 : 6;
  const int64_t n_held = quick ? 2000 : 10000;
  std::cout << "\n-- 7. DDPM on two moons: eps-MLP on (x_t, sinusoidal embedding of t), L_simple, ancestral sampling (sigma_t^2 = beta_t)\n";
  const Tensor train = data::sample_toy(toy, quick ? 4000 : 20000, gen), held_out = data::sample_toy(toy, n_held, gen);
  std::vector<double> real;
  for (int r = 0; r < refs; ++r) real.push_back(models::energy_distance(held_out, data::sample_toy(toy, n_eval, gen)));
  const auto [reference, reference_se] = lesson::mean_and_se(real);
  const double noise_distance = models::energy_distance(held_out, gen.normal({n_eval, 2}));
  // a stronger reference: the best single Gaussian
  const double gaussian_distance = models::energy_distance(held_out, models::sample_fitted_gaussian(train, n_eval, gen, 0, "the data's covariance"));
  std::vector<int64_t> Ts = quick ? std::vector<int64_t>{50, 200} : std::vector<int64_t>{50, 250, 1000};
  std::vector<std::vector<double>> rows;
  double energy_last = 0, energy_last_se = 0;
  std::cout << "   energy distance to " << n_held << " held-out points, mean of " << draws << " draws of " << n_eval << " samples +- its standard error\n"
            << "   T      energy distance          / real samples' (ratio)   train s   sample " << n_eval << " s\n";
  for (int64_t T : Ts) {
    models::DDPM model(2, NoiseSchedule::linear(T, 1e-4 * 1000.0 / static_cast<double>(T), std::min(0.02 * 1000.0 / static_cast<double>(T), 0.5)),
                       {128, 128, 128}, gen, 0, 32);
    train::FitOptions o = ddpm_fit(L, "ddpm2d_T" + std::to_string(T), L.epochs(60, 300), quick ? 128 : 256);
    o.progress = false;
    const train::FitResult fr = train::fit(model, train, Tensor(), gen, o);
    progress::Stopwatch clock;
    Tensor samples;
    std::vector<double> e;
    for (int d = 0; d < draws; ++d) {
      const Tensor s = model.sample(n_eval, gen);
      if (d == 0) samples = s;
      e.push_back(models::energy_distance(held_out, s));
    }
    const double secs = clock.seconds() / draws;
    const auto [e_mean, e_se] = lesson::mean_and_se(e);
    rows.push_back({static_cast<double>(T), e_mean, e_se, e_mean / reference, fr.seconds, secs});
    std::cout << std::fixed << std::setprecision(5) << "   " << std::setw(4) << T << "   " << e_mean << " +- " << e_se << "      "
              << std::setprecision(2) << std::setw(5) << e_mean / reference << "            " << std::setprecision(1) << std::setw(6) << fr.seconds
              << "   " << std::setprecision(2) << secs << "\n";
    energy_last = e_mean, energy_last_se = e_se;
    if (T == Ts.back()) {
      // the denoising trajectory: the same chains at x_T, ..., x_0
      image::RGB sheet(6 * 206, 200);
      Generator traj(L.options().seed + 7);
      std::vector<int64_t> shots = {T, 3 * T / 4, T / 2, T / 4, T / 10, 0};
      size_t k = 0;
      model.sample(n_eval, traj, [&](int64_t t, const Tensor& x) {  // x_t after each reverse step
        if (k < shots.size() && t == shots[k]) image::scatter(sheet, static_cast<int>(k++) * 206, 0, 200, 3.0, x, {});
      });
      image::write_png(L.path("trajectory.png"), sheet);
      image::RGB pts(2 * 300 + 10, 300);
      image::scatter(pts, 0, 0, 300, 2.5, slice(held_out, 0, 0, n_eval), {}, 120, 120, 120);
      image::scatter(pts, 310, 0, 300, 2.5, samples, {});
      image::write_png(L.path("samples.png"), pts);
    }
  }
  L.write_csv("energy_by_T.csv", {"T", "energy_distance", "energy_distance_stderr", "ratio_to_two_real_samples", "train_seconds", "sample_seconds"}, rows);
  std::cout << std::setprecision(5) << "   references: two real samples " << reference << " +- " << reference_se << " (" << refs
            << " real samples against the held-out data); the best single Gaussian (the data's mean and covariance) " << gaussian_distance
            << "; N(0, I) noise " << noise_distance
            << "\n   wrote trajectory.png (x_T, ..., x_0), samples.png (held-out data | model), energy_by_T.csv\n";
  if (quick)  // a few thousand steps: samples far closer to the data than the noise they start from
    L.check_le("ancestral sampling moves noise to the data: energy distance to held-out data (largest T) < 1/5 of the noise's (--quick)",
               energy_last, noise_distance / 5);
  else  // a full run: structure that no single Gaussian has
    L.check_le("ancestral sampling recovers structure a Gaussian cannot: energy distance to held-out data (largest T) < the best Gaussian's",
               energy_last, gaussian_distance);
  L.metric("toy_energy_distance", energy_last, energy_last_se);
  L.metric("toy_energy_distance_real", reference, reference_se);
  const double ratio = energy_last / reference;  // its standard error by the delta method
  L.metric("toy_energy_distance_ratio", ratio, ratio * std::hypot(energy_last_se / energy_last, reference_se / reference));
  L.metric("toy_energy_distance_noise", noise_distance);
  L.metric("toy_energy_distance_gaussian", gaussian_distance);
}

void simple_vs_bound(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  std::cout << "\n-- 6. L_simple vs the weighted bound, same model, same budget, on two moons (T = 250)\n";
  const data::Toy toy = data::Toy::TwoMoons;
  const int64_t n_eval = quick ? 800 : 1500;
  const Tensor train = data::sample_toy(toy, quick ? 4000 : 20000, gen), test = data::sample_toy(toy, n_eval, gen);
  std::vector<std::vector<double>> rows;
  for (auto obj : {models::DDPM::Objective::Simple, models::DDPM::Objective::Bound}) {
    const bool simple = obj == models::DDPM::Objective::Simple;
    models::DDPM m(2, NoiseSchedule::linear(250, 4e-4, 0.08), {128, 128, 128}, gen, 0, 32);
    m.objective = obj;
    const std::string tag = simple ? "ddpm2d_simple" : "ddpm2d_bound";
    const train::FitResult fr = train::fit(m, train, Tensor(), gen, ddpm_fit(L, tag, L.epochs(20, 150), quick ? 128 : 256));
    const double bound = lesson::mean_and_se([&] {
      const Tensor t = m.bound(test, gen).total;
      return t.to_vector();
    }()).first;
    const double ed = models::energy_distance(test, m.sample(n_eval, gen));
    rows.push_back({simple ? 0.0 : 1.0, bound, ed, fr.seconds});
    std::cout << std::fixed << std::setprecision(4) << "   " << (simple ? "L_simple       " : "weighted bound ") << " test -ELBO " << bound
              << " nats per point, energy distance of " << n_eval << " samples " << ed << ", " << std::setprecision(1) << fr.seconds << " s\n";
    L.metric(simple ? "toy_simple_nelbo_nats" : "toy_bound_nelbo_nats", bound);
    L.metric(simple ? "toy_simple_energy_distance" : "toy_bound_energy_distance", ed);
  }
  std::cout << "   (the paper: training on the bound gives the better bound, L_simple the better samples)\n";
  L.write_csv("simple_vs_bound.csv", {"objective_is_bound", "test_nelbo_nats", "energy_distance", "train_seconds"}, rows);
}

// ------------------------------------------------------------ the reverse variances, chosen after training
// Analytic-DPM: with m_t = E||eps - eps_theta||^2 / D, the expected L_{t-1} is least at
// sigma_t^2 = beta~_t + c_t m_t, c_t = beta_t^2 / (alpha_t (1 - abar_t)). Two CHECKs at step t:
// (a) on one draw of x_t, the closed form (from the noise predictions) against a golden-section
//     search over sigma^2 of the mean Gaussian KL(q(x_{t-1} | x_t, x_0) || N(mu_theta, sigma^2))
//     (from the means): the formula and its c_t, by a second route;
// (b) the variance fit_variances stored against that draw's, within 4 standard errors of m_t
//     (different draws of x_t; the spread over the examples).
// The fitted variances are written into the checkpoint the trainer left (options o): what loads is
// what is evaluated here.
models::DDPM::VarianceFit fit_variances(lesson::Lesson& L, models::DDPM& m, const Tensor& x, int64_t t, Generator& gen,
                                        const std::string& what, const train::FitOptions& o) {
  const NoiseSchedule& s = m.schedule();
  const auto i = static_cast<size_t>(t);
  const models::DDPM::VarianceFit fit = m.fit_variances(x, gen);
  train::update_checkpoint(m, o);
  NoGradGuard ng;
  const Tensor x0 = m.to_model_space(x).to(DType::Float64);
  const int64_t n = x0.size(0);
  const double D = static_cast<double>(x0.numel() / n);
  // x_t as the float32 network sees it, and the noise that makes exactly this x_t from x_0
  const Tensor xt = (x0 * std::sqrt(s.alpha_bar[i]) + gen.normal(x0.shape(), 0, 1, DType::Float64) * std::sqrt(1 - s.alpha_bar[i]))
                        .to(DType::Float32).to(DType::Float64);
  const Tensor eps = (xt - x0 * std::sqrt(s.alpha_bar[i])) / std::sqrt(1 - s.alpha_bar[i]);
  // route 1: the closed form from the noise predictions
  const Tensor err = sum(flatten(square(eps - m.predict_noise(xt.to(DType::Float32), Tensor::full({n}, static_cast<double>(t), DType::Int64)).to(DType::Float64)), 1), {1}) / D;
  const auto [m_t, m_se] = lesson::mean_and_se(err.to_vector());
  const double c = s.beta[i] * s.beta[i] / (s.alpha[i] * (1 - s.alpha_bar[i]));
  const double closed = s.posterior_var[i] + c * m_t;
  // route 2: minimise the mean KL between the posterior and the model's step over log sigma^2
  const Tensor mu = m.reverse_mean(xt.to(DType::Float32), t).to(DType::Float64);
  const Tensor mu_q = x0 * s.posterior_coef_x0[i] + xt * s.posterior_coef_xt[i];
  const dist::Normal q{mu_q, Tensor::full(mu_q.shape(), std::log(s.posterior_var[i]), DType::Float64)};
  auto kl = [&](double log_v) { return mean(dist::sum_per_example(q.kl_to(dist::Normal{mu, Tensor::full(mu.shape(), log_v, DType::Float64)}))).item(); };
  double a = std::log(s.posterior_var[i]) - 2, b = std::log(s.beta[i]) + 2;  // the minimum lies in [beta~, beta] when m_t is small
  const double g = (std::sqrt(5.0) - 1) / 2;
  for (int k = 0; k < 100; ++k) {
    const double l = b - g * (b - a), r = a + g * (b - a);
    const bool left = kl(l) < kl(r);  // the minimum is in [a, r], else in [l, b]
    (left ? b : a) = left ? r : l;
  }
  const double searched = std::exp((a + b) / 2);
  std::cout << std::scientific << std::setprecision(4) << "   " << what << ": sigma^2 at t = " << t + 1 << ": beta " << s.beta[i] << ", beta~ "
            << s.posterior_var[i] << "; beta~ + c m_t = " << closed << " (m_t " << std::defaultfloat << std::setprecision(4) << m_t
            << "), golden section on the KL " << std::scientific << searched << ", fitted " << fit.after[i] << std::fixed << "\n";
  L.check_close(what + ": sigma_t^2 = beta~_t + c_t m_t minimises the mean Gaussian KL of L_{t-1} (t = " + std::to_string(t + 1) +
                    ": closed form vs golden-section search over sigma^2, relative)",
                closed / searched, 1.0, 1e-6);
  L.check_close(what + ": the stored sigma_t^2 (fit_variances' draws) vs this draw's beta~_t + c_t m_t, 4 standard errors of c_t m_t",
                fit.after[i], std::clamp(closed, s.posterior_var[i], s.beta[i]), 4 * c * m_se);
  return fit;
}

// The third CHECK: per-image bounds with sigma_t^2 = beta_t and with the fitted variances, on the same
// images and draws; the paired gain must exceed 2 of its standard errors. Returns {gain, its se}.
std::pair<double, double> check_fitted_gain(lesson::Lesson& L, const std::string& what, const std::vector<double>& fixed,
                                            const std::vector<double>& fitted) {
  std::vector<double> gain;
  for (size_t i = 0; i < fixed.size(); ++i) gain.push_back(fixed[i] - fitted[i]);
  const auto [g, se] = lesson::mean_and_se(gain);
  L.check_le(what + ": the fitted variances lower the test bound (paired: fixed minus fitted, less 2 standard errors, >= 0)", 0.0, g - 2 * se);
  return {g, se};
}

// ------------------------------------------------------------ 8. the digits: a likelihood bound
struct DigitsBound {
  std::vector<double> per_image;  // each test digit's bound with the fitted variances, nats
  double nll = 0, nll_se = 0, fixed = 0, fixed_se = 0, sampling_seconds = 0;  // fitted, and sigma_t^2 = beta_t
};

// Trains the recipe `tag` on the digits, then its test bound over all T terms with sigma_t^2 = beta_t
// and with the fitted variances (the same x_t draws), reported as the metrics <metrics>_test_nll_bound_*,
// and 64 samples into `pictures`.
DigitsBound digits_model(lesson::Lesson& L, Generator& gen, const data::DataSet& d, const std::string& tag, const std::string& who,
                         const std::string& metrics, const std::string& pictures) {
  const bool quick = L.options().quick;
  const models::Recipe& recipe = models::recipe(tag);
  auto model = models::build(recipe, quick, gen);
  auto& m = dynamic_cast<models::DDPM&>(*model);
  std::cout << "\n   " << who << " (recipe " << tag << "): " << recipe.title(quick) << ", " << m.num_parameters() << " parameters\n";
  // the eps-MLP reads the 64 pixels as a vector, the U-Net as a 1 x 8 x 8 image
  auto as_model_input = [&](const Tensor& x) { return recipe.flat ? reshape(x, {x.size(0), 64}) : reshape(x, {x.size(0), 1, 8, 8}); };
  const Tensor tr = as_model_input(d.train), te = as_model_input(d.test);
  train::FitOptions o = L.training(recipe);
  o.data_transform = "as the data set stores it; a model with levels maps k / (levels - 1) to [-1, 1] inside";
  o.train_column = "train_loss", o.y_label = "training objective", o.curve_title = recipe.tag;
  const train::FitResult fr = train::fit(m, tr, Tensor(), gen, o);
  const int repeats = quick ? 2 : 5;
  struct TestBound {
    std::vector<double> per_image, totals, priors, transitions, decoders;  // each image's bound averaged over the draws; each draw's terms
  };
  auto test_bound = [&](Generator draws) {  // a copy: both calls below see the same x_t draws
    TestBound r;
    r.per_image.assign(static_cast<size_t>(te.size(0)), 0.0);
    for (int k = 0; k < repeats; ++k) {  // each x_t draw gives a bound; so does their mean
      const models::DDPM::Bound b = m.bound(te, draws);
      r.totals.push_back(mean(b.total).item()), r.priors.push_back(mean(b.prior).item());
      r.transitions.push_back(mean(b.transitions).item()), r.decoders.push_back(mean(b.decoder).item());
      const std::vector<double> v = b.total.to_vector();
      for (size_t i = 0; i < v.size(); ++i) r.per_image[i] += v[i] / repeats;
    }
    return r;
  };
  // common random numbers: the fixed and the fitted variances' bounds from the same x_t draws, so that
  // their paired difference is the variances' effect, not the draws' noise
  const Generator draws(gen.next_u64());
  const TestBound fixed = test_bound(draws);  // sigma_t^2 = beta_t, as trained
  const models::DDPM::VarianceFit fit = fit_variances(L, m, tr, 1, gen, who, o);
  const TestBound fitted = test_bound(draws);
  const auto [nll_fixed, nll_fixed_se] = lesson::mean_and_se(fixed.per_image);
  const auto [gain_mean, gain_se] = check_fitted_gain(L, who, fixed.per_image, fitted.per_image);
  DigitsBound r;
  r.per_image = fitted.per_image;
  r.fixed = nll_fixed, r.fixed_se = nll_fixed_se;
  std::tie(r.nll, r.nll_se) = lesson::mean_and_se(fitted.per_image);  // the standard error over the test images
  std::cout << std::fixed << std::setprecision(2) << "   test -ELBO with sigma_t^2 = beta_t: " << nll_fixed << " +- " << nll_fixed_se
            << " nats; with the variances fitted on the training digits: " << r.nll << " +- " << r.nll_se << " (" << gain_mean << " +- "
            << gain_se << " less, paired;\n   L_0 on the training digits " << fit.decoder_before << " -> " << fit.decoder_after << ")\n"
            << "   = L_T " << std::setprecision(4) << lesson::mean_and_se(fitted.priors).first << std::setprecision(2) << " + sum L_{t-1} "
            << lesson::mean_and_se(fitted.transitions).first << " + L_0 " << lesson::mean_and_se(fitted.decoders).first << " ("
            << std::setprecision(3) << train::bits_per_dim(r.nll, 64) << " bits/dim), trained " << std::setprecision(1) << fr.seconds << " s\n";
  L.metric(metrics + "_test_nll_bound_nats", r.nll, r.nll_se);
  L.metric(metrics + "_test_nll_bound_fixed_variance_nats", nll_fixed, nll_fixed_se);
  progress::Stopwatch clock;
  const Tensor samples = m.sample(64, gen);
  r.sampling_seconds = clock.seconds();
  image::save_image_grid(L.path(pictures), reshape(samples, {64, 1, 8, 8}), 8, image::upscale_for(8), 2);
  std::cout << "   sampled 64 digits (T = 50 steps) in " << std::setprecision(3) << r.sampling_seconds << " s: " << pictures << "\n";
  return r;
}

void digits(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const data::DataSet d = lesson::harness::data_for("digits17", L.options());
  std::cout << "\n-- 8. The 8x8 digits (17 levels, scaled to [-1, 1]), train " << d.train.size(0) << " / test " << d.test.size(0)
            << ": two noise predictors, the same schedule (T = 50, linear beta 0.02 to 0.3), L_simple, EMA 0.999;\n"
            << "   the test NLL bound over all T terms, L_0 the discretized Gaussian over the 17 levels\n";
  // the same DDPM with two networks: an MLP that sees 64 numbers, and a U-Net that sees an image
  const DigitsBound mlp = digits_model(L, gen, d, "digits_ddpm", "digits eps-MLP", "digits_mlp", "digits_mlp_samples.png");
  const DigitsBound unet = digits_model(L, gen, d, "digits_ddpm_unet", "digits 2-level U-Net", "digits_unet", "digits_samples.png");
  std::vector<double> gain;  // paired over the test digits: the MLP's bound minus the U-Net's
  for (size_t i = 0; i < mlp.per_image.size(); ++i) gain.push_back(mlp.per_image[i] - unet.per_image[i]);
  const auto [g, g_se] = lesson::mean_and_se(gain);
  std::cout << std::fixed << std::setprecision(2) << "\n   the U-Net's bound is " << g << " +- " << g_se
            << " nats lower (paired, the same test digits): its convolutions know that neighbouring pixels are neighbours\n"
            << "   references on this split: a uniform model 181.3 nats; the reference course code's T = 5 diffusion about 134,\n"
            << "   its VAE about 100.5; this project's flows and autoregressive models: lesson_flows, lesson_autoregressive\n";
  if (!quick && L.options().epochs == 0 && !d.synthetic) {
    L.check_le("digits: the DDPM's test NLL bound (U-Net) beats the reference course code's T = 5 diffusion (134 nats)", unet.nll, 134.0);
    L.check_le("digits: the U-Net's bound is lower than the eps-MLP's (paired over the test digits: MLP minus U-Net, less 2 standard errors, >= 0)",
               0.0, g - 2 * g_se);
  }
  L.metric("digits_test_nll_bound_nats", unet.nll, unet.nll_se);  // the chapter's digits figure: its best network's
  L.metric("digits_test_nll_bound_fixed_variance_nats", unet.fixed, unet.fixed_se);
  L.metric("digits_test_bpd_bound", train::bits_per_dim(unet.nll, 64), train::bits_per_dim(unet.nll_se, 64));
  L.metric("digits_unet_minus_mlp_nats", -g, g_se);
  L.metric("digits_sampling_seconds_64", unet.sampling_seconds);
}

// ------------------------------------------------------------ 9. images: a U-Net, Fashion-MNIST
struct ImageOptions {
  double minutes = 0;        // Fashion-MNIST training time (0: the recipe fashion_unet's budget)
  int64_t base = 16;         // the U-Net's first width
  std::string objective, timesteps;  // the recipe's training objective and step sampler, unless given ("" : the recipe's)
  int64_t bound_images = 1000;  // test images of the bound's stratified estimate (the headline figure)
  int64_t bound_strata = 64;    // its ranges of steps: strata + 1 network evaluations per image
  int64_t full_bound_images = 32;  // test images whose bound is also summed over all T terms (the check)
  int64_t fid_samples = 250; // samples per Frechet distance
  bool bound_curve = false;  // the bound after 1, 2, 4, ... minutes of training (fashion_bound_by_minutes.csv)
  int64_t curve_images = 500;   // test images of each of the curve's bounds
  bool skip = false;
};

// model space [-1, 1] -> [0, 1] for pictures
Tensor to_unit(const Tensor& y) { return clamp((y + 1.0) * 0.5, 0.0, 1.0); }

void images(lesson::Lesson& L, Generator& gen, const ImageOptions& io) {
  const bool quick = L.options().quick;
  data::ImageSet train, test;
  std::string name = quick ? "digits" : "Fashion-MNIST";
  if (quick) {
    const lesson::DigitSplits d = lesson::load_digits(L.options());
    train = d.train, test = d.test;
  } else {
    train = data::fashion_mnist(data::Split::Train, L.options().data);
    test = data::fashion_mnist(data::Split::Test, L.options().data);
  }
  const int64_t H = train.images.size(2), W = train.images.size(3), D = H * W, levels = train.levels;
  // the recipe: fashion_unet (--unet-base changes its widths), or digits_unet for --quick (the paper's
  // schedule, 1e-4 to 0.02 over 1000 steps, stretched to T = 50)
  models::Recipe recipe = models::recipe(quick ? "digits_unet" : "fashion_unet");
  if (!quick) recipe.set("net.base", std::to_string(io.base)).set("net.groups", std::to_string(std::max<int64_t>(1, io.base / 4)));
  if (!io.objective.empty()) recipe.set("objective", "\"" + io.objective + "\"");
  if (!io.timesteps.empty()) recipe.set("timesteps", "\"" + io.timesteps + "\"");
  Generator init(L.options().seed + 91);
  auto model = models::build(recipe, quick, init);
  auto& m = dynamic_cast<models::DDPM&>(*model);
  const NoiseSchedule& schedule = m.schedule();
  const int64_t T = schedule.steps();
  std::cout << "\n-- 9. " << name << " " << H << "x" << W << " (" << levels << " levels, scaled to [-1, 1]), train " << train.size() << " / test "
            << test.size() << ": " << recipe.title(quick) << " (GroupNorm residual blocks with\n"
            << "   the time embedding; self-attention at " << H / 4 << "x" << W / 4 << "; " << m.num_parameters() << " parameters), T = " << T
            << " (linear beta " << std::defaultfloat << schedule.beta.front() << " to " << schedule.beta.back() << "), " << m.objective_title()
            << ", EMA " << std::setprecision(4) << recipe.training(quick).ema
            << (quick ? "\n   (--quick: the 8x8 digits stand in for Fashion-MNIST)\n" : "\n");

  // ---- training: the recipe's (a time budget, --minutes, unless --epochs says how many passes)
  train::FitOptions o = L.training(recipe);
  o.data_transform = "as the data set stores it; a model with levels maps k / (levels - 1) to [-1, 1] inside";
  o.train_column = "train_loss", o.y_label = "training objective", o.curve_title = recipe.tag;
  if (!quick && L.options().epochs == 0 && io.minutes > 0) o.max_seconds = io.minutes * 60;
  // --bound-curve: the bound with sigma_t^2 = beta_t (as trained) on the first curve_images test images,
  // with the EMA a run stopped there ends with, after 1, 2, 4, 8, 15, 30 and 60 minutes (those within the
  // budget) and at the end. The same draws of steps and x_t at every point, so the differences are the
  // model's; the time it takes is not training time (fit keeps it off the budget).
  // each of the first n test images' stratified bound, 64 images a pass (one network batch); each(k, j)
  // after range j of the pass starting at image k
  const int64_t strata = quick ? 16 : io.bound_strata;
  auto bounds_of_first = [&](int64_t n, Generator& draws, const std::function<void(int64_t, int64_t)>& each) {
    std::vector<double> v;
    for (int64_t k = 0; k < n; k += 64) {
      const models::DDPM::Bound b =
          m.bound_stratified(slice(test.images, 0, k, std::min(k + 64, n)), strata, draws, [&](int64_t j) { if (each) each(k, j); });
      const std::vector<double> part = b.total.to_vector();
      v.insert(v.end(), part.begin(), part.end());
    }
    return v;
  };
  std::vector<std::vector<double>> curve_rows;
  const int64_t n_curve = std::min(io.curve_images, test.size());
  const Generator curve_draws(L.options().seed + 17);
  auto curve_point = [&](double seconds, int64_t steps) {
    Generator draws = curve_draws;
    const auto [b, se] = lesson::mean_and_se(bounds_of_first(n_curve, draws, {}));
    curve_rows.push_back({seconds / 60, static_cast<double>(steps), b, se, train::bits_per_dim(b, D), train::bits_per_dim(se, D)});
    std::cout << std::fixed << std::setprecision(2) << "\n   after " << seconds / 60 << " minutes (" << steps << " steps): bound " << b << " +- " << se
              << " nats = " << std::setprecision(3) << train::bits_per_dim(b, D) << " bits/dim (" << n_curve << " test images, sigma_t^2 = beta_t)"
              << std::endl;
  };
  if (io.bound_curve) {
    if (o.max_seconds <= 0) throw Error("--bound-curve needs a time budget (--minutes; not --epochs or --quick)");
    for (double minutes : {1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0})
      if (minutes * 60 < o.max_seconds) o.snapshot_seconds.push_back(minutes * 60);
    o.at_snapshot = curve_point;
  }
  const train::FitResult fr = train::fit(m, train.images, Tensor(), gen, o);
  std::cout << std::fixed << std::setprecision(1) << "   trained " << fr.steps << " steps in " << fr.seconds << " s, final loss "
            << std::setprecision(4) << fr.last_train_loss << "\n";
  if (io.bound_curve) {
    curve_point(fr.seconds, fr.steps);
    L.write_csv("fashion_bound_by_minutes.csv",
                {"training_minutes", "steps", "test_nll_bound_nats", "test_nll_bound_nats_stderr", "test_bpd_bound", "test_bpd_bound_stderr"},
                curve_rows);
    plot::line_plot(L.path("fashion_bound_by_minutes.csv"), L.path("fashion_bound_by_minutes.png"),
                    "DDPM U-Net on Fashion-MNIST: test bound (" + std::to_string(n_curve) + " images, sigma_t^2 = beta_t) against training time",
                    "training minutes", "bits/dim", 1, {{5, "bound"}}, false, true);
    std::cout << "   wrote fashion_bound_by_minutes.csv and .png (the bound after 1, 2, 4, ... minutes of this run)\n";
  }

  // ---- t drawn by importance (p_t ~ w_t, each term / (T p_t)) keeps the training objective's expectation:
  // for each of a few training images, the objective at every step once (its mean over t, as uniform
  // draws would give it) against the mean of many importance-drawn terms; paired image by image
  const std::string who = name + " U-Net";
  if (m.timesteps == models::DDPM::Timesteps::Importance) {
    NoGradGuard ng;
    const Generator saved = m.noise();  // the model's own training noise, put back after
    // the terms are skewed (the largest about 17 times the median): many draws, so the standard error holds
    const int64_t n = 16, copies = 64 / n, rounds = quick ? 16 : 256;  // batches of 64 rows: n images, `copies` rows each
    std::vector<int64_t> rows;
    for (int64_t c = 0; c < copies; ++c)
      for (int64_t i = 0; i < n; ++i) rows.push_back(i);
    const Tensor batch = index_select(slice(train.images, 0, 0, n), 0, Tensor::from_indices(rows, {64}));
    std::vector<double> every(n, 0.0), drawn(n, 0.0);
    lesson::ProgressBar pb("objective, every t vs importance", (T + copies - 1) / copies + rounds);
    for (int64_t t0 = 0; t0 < T; t0 += copies) {  // row c * n + i: image i at step t0 + c
      const int64_t c_end = std::min(copies, T - t0);
      std::vector<int64_t> steps;
      for (int64_t c = 0; c < c_end; ++c) steps.insert(steps.end(), n, t0 + c);
      const std::vector<double> v = m.objective_at(slice(batch, 0, 0, c_end * n), Tensor::from_indices(steps, {c_end * n})).to_vector();
      for (size_t r = 0; r < v.size(); ++r) every[r % n] += v[r] / static_cast<double>(T);
      pb.update(t0 / copies + 1);
    }
    for (int64_t k = 0; k < rounds; ++k) {
      const std::vector<double> v = m.loss_terms(batch).to_vector();
      for (size_t r = 0; r < v.size(); ++r) drawn[r % n] += v[r] / static_cast<double>(rounds * copies);
      pb.update((T + copies - 1) / copies + k + 1);
    }
    pb.finish();
    m.noise() = saved;
    std::vector<double> diff;
    for (int64_t i = 0; i < n; ++i) diff.push_back(drawn[i] - every[i]);
    const auto [d, d_se] = lesson::mean_and_se(diff);
    std::cout << std::setprecision(4) << "   the training objective (" << m.objective_title() << ") on " << n << " training images: "
              << lesson::mean_and_se(every).first << " with every t once, " << lesson::mean_and_se(drawn).first << " from "
              << rounds * copies << " importance-drawn t each (difference " << d << " +- " << d_se << ", paired)\n";
    L.check_close(who + ": the objective's mean over every t = its importance-sampled estimate (" + std::to_string(n) +
                      " training images, paired, 4 standard errors of the difference)",
                  d, 0.0, 4 * d_se);
  }

  // ---- the bound before and after the reverse variances are fitted (a stratified estimate: strata + 1
  // network evaluations per image, not T), then checked against the sum over all T terms
  const int64_t n_bound = std::min(quick ? 64 : io.bound_images, test.size());
  const int64_t ranges = static_cast<int64_t>(m.strata_edges(strata).size()) - 1;
  auto stratified = [&](const std::string& label, Generator draws) {  // a copy: both calls see the same draws
    lesson::ProgressBar bb(label, (n_bound + 63) / 64 * ranges);
    const std::vector<double> v = bounds_of_first(n_bound, draws, [&](int64_t k, int64_t j) { bb.update(k / 64 * ranges + j + 1); });
    bb.finish();
    return v;
  };
  // common random numbers (the same steps and x_t for both): the paired difference is the variances' effect
  const Generator draws(gen.next_u64());
  const std::vector<double> fixed_bound = stratified("bound, sigma_t^2 = beta_t", draws);
  const models::DDPM::VarianceFit fit = fit_variances(L, m, slice(train.images, 0, 0, quick ? 16 : 32), std::max<int64_t>(1, T / 100), gen, who, o);
  const std::vector<double> fitted_bound = stratified("bound, fitted sigma_t^2", draws);
  const auto [nll, nll_se] = lesson::mean_and_se(fitted_bound);
  const auto [nll_fixed, nll_fixed_se] = lesson::mean_and_se(fixed_bound);
  check_fitted_gain(L, who, fixed_bound, fitted_bound);
  const double bpd = train::bits_per_dim(nll, D);
  std::cout << std::fixed << std::setprecision(2) << "   test -ELBO over the first " << n_bound << " test images (stratified over " << ranges
            << " ranges of steps, one draw each): sigma_t^2 = beta_t " << nll_fixed << " +- " << nll_fixed_se << " nats, fitted " << nll << " +- "
            << nll_se << "\n   = " << std::setprecision(3) << bpd << " +- " << train::bits_per_dim(nll_se, D) << " bits/dim (fixed: "
            << train::bits_per_dim(nll_fixed, D) << "; L_0 on the fitting images " << std::setprecision(2) << fit.decoder_before << " -> "
            << fit.decoder_after << " nats; published anchor: DDPM's CIFAR-10 bound 3.70 bits/dim, 3.75 with L_simple, after 800k GPU steps)\n";

  // ---- ancestral sampling, T steps, and the denoising trajectory of the first 8 chains
  // the images form late in the chain: the shots are denser there
  const std::vector<int64_t> shots = {T, 8 * T / 10, 6 * T / 10, T / 2, 4 * T / 10, 3 * T / 10, 2 * T / 10, 15 * T / 100, T / 10, T / 20, T / 50, 0};
  std::vector<Tensor> frames;
  size_t next = 0;
  progress::Stopwatch clock;
  lesson::ProgressBar bar("sampling 64", T);
  const Tensor samples = m.sample(64, gen, [&](int64_t t, const Tensor& x) {
    bar.update(T - t);
    if (next < shots.size() && t == shots[next]) frames.push_back(to_unit(slice(x, 0, 0, 8))), ++next;
  });
  const double sample_seconds = clock.seconds();
  bar.finish();
  std::vector<Tensor> cells;  // row i: chain i at the shots
  for (int64_t i = 0; i < 8; ++i)
    for (const Tensor& f : frames) cells.push_back(slice(f, 0, i, i + 1));
  image::save_image_grid(L.path("images_trajectory.png"), concat(cells, 0), static_cast<int64_t>(frames.size()), image::upscale_for(H), 2);
  image::save_image_grid(L.path("images_samples.png"), samples, 8, image::upscale_for(H), 2);
  std::cout << std::setprecision(2) << "   sampled 64 images by the ancestral chain (T = " << T << " steps) in " << sample_seconds
            << " s: images_samples.png; the first 8 chains at t = " << T << ", " << shots[1] << ", ..., 0: images_trajectory.png\n";

  // ---- the bound over all T terms on a few test images: the stratified estimate's check
  const int64_t nb = std::min(quick ? 16 : io.full_bound_images, test.size());
  const Tensor bound_x = slice(test.images, 0, 0, nb);
  models::DDPM::Bound b;
  {
    lesson::ProgressBar bb("bound, all T terms", T);
    b = m.bound(bound_x, gen, [&](int64_t t) { bb.update(t + 1); });
    bb.finish();
  }
  auto per_image = [](const Tensor& v) { return lesson::mean_and_se(v.to_vector()); };
  const models::DDPM::Bound sb = m.bound_stratified(bound_x, strata, gen);
  const auto [full_nll, full_se] = per_image(b.total);
  const auto [paired, paired_se] = per_image(b.total - sb.total);
  std::cout << std::setprecision(2) << "   the first " << nb << " test images, all T terms: " << full_nll << " +- " << full_se << " nats = L_T "
            << std::setprecision(4) << per_image(b.prior).first << std::setprecision(2) << " + sum L_{t-1} " << per_image(b.transitions).first
            << " + L_0 " << per_image(b.decoder).first << "; stratified " << per_image(sb.total).first << " (all T minus stratified " << paired
            << " +- " << paired_se << ")\n";
  L.check_close(who + ": the bound by all T terms = its stratified estimate (" + std::to_string(nb) +
                    " test images, paired, 4 standard errors of the difference)",
                paired, 0.0, 4 * paired_se);

  // ---- the bound is a weighted L_simple: each KL term in epsilon form, on the trained U-Net
  {
    NoGradGuard ng;
    double worst = 0;
    const Tensor x0 = m.to_model_space(bound_x).to(DType::Float64);
    auto normal = [](const Tensor& mean_, double var) { return dist::Normal{mean_, Tensor::full(mean_.shape(), std::log(var), DType::Float64)}; };
    for (int64_t t : {int64_t{1}, T / 100, T / 10, T / 2, T - 1}) {
      const auto i = static_cast<size_t>(t);
      const Tensor eps = gen.normal(x0.shape(), 0, 1, DType::Float64);
      const Tensor xt = x0 * std::sqrt(schedule.alpha_bar[i]) + eps * std::sqrt(1 - schedule.alpha_bar[i]);
      const Tensor xt32 = xt.to(DType::Float32);
      const Tensor tt = Tensor::full({nb}, static_cast<double>(t), DType::Int64);
      // route 1: the Gaussian KL between the posterior and the model's step (means, variances)
      const Tensor mu = m.reverse_mean(xt32, t).to(DType::Float64);
      const Tensor mu_q = x0 * schedule.posterior_coef_x0[i] + xt * schedule.posterior_coef_xt[i];
      const double v = m.reverse_variance(t);  // the fitted sigma_t^2
      const Tensor kl = dist::sum_per_example(normal(mu_q, schedule.posterior_var[i]).kl_to(normal(mu, v)));
      // route 2: w_t ||eps - eps_theta||^2 + D k_t, from the network's noise prediction alone
      const Tensor err = sum(flatten(square(eps - m.predict_noise(xt32, tt).to(DType::Float64)), 1), {1});
      const double k = 0.5 * (std::log(v / schedule.posterior_var[i]) + schedule.posterior_var[i] / v - 1);
      const Tensor eps_form = err * schedule.eps_weight(t, v) + static_cast<double>(D) * k;
      worst = std::max(worst, max(abs(kl - eps_form) / (abs(kl) + 1.0)).item());
    }
    L.check_close("trained U-Net: each L_{t-1} as a Gaussian KL vs w_t ||eps - eps_theta||^2 + D k_t, t = 2, T/100, T/10, T/2, T "
                  "(worst |diff| / (1 + KL); float32 network)", worst, 0, 1e-4);
  }

  // ---- sample quality: a Frechet distance on a domain classifier's features
  models::ClassifierOptions co;
  if (quick) co.epochs = 8, co.validation = 200;
  const lesson::Judge judge = lesson::domain_classifier(L, train, test, quick ? "digits_classifier.safetensors" : "fashion_classifier.safetensors", init, gen, co);
  models::ImageClassifier& clf = *judge.classifier;
  const models::ClassifierFit& cf = judge.fit;
  if (!quick) L.check_le("the domain classifier's test accuracy >= 0.90 (its features are what the Frechet distance compares)", 0.90, cf.test_accuracy);
  const models::FeatureStats reference = models::feature_stats(clf.features_of(test.images));
  const int64_t nf = quick ? 128 : io.fid_samples;
  auto fid_row = [&](const std::string& what, const Tensor& imgs, double seconds, std::vector<std::vector<double>>& rows, double steps) {
    const models::SampleQuality q = models::sample_quality(clf, imgs, reference);
    std::cout << "   " << std::left << std::setw(36) << what << std::right << std::setw(6) << imgs.size(0) << std::setw(12) << std::setprecision(2)
              << q.fid_domain << std::setw(10) << q.classes_covered << std::setw(12) << seconds << "\n";
    rows.push_back({steps, static_cast<double>(imgs.size(0)), q.fid_domain, static_cast<double>(q.classes_covered), seconds});
    return q;
  };
  // a baseline with a known weakness: the Gaussian with the training images' mean and covariance
  // (1e-4 on the diagonal: near-constant border pixels would leave the covariance singular)
  const Tensor pixels = m.to_model_space(reshape(slice(train.images, 0, 0, std::min<int64_t>(train.size(), 10000)), {-1, D}));
  const Tensor gaussian_images =
      reshape(to_unit(models::sample_fitted_gaussian(pixels, nf, gen, 1e-4, "the pixels' covariance")), {nf, 1, H, W}).to(DType::Float32);
  std::cout << "   Frechet distance on the classifier's " << reference.mean.numel() << " features to the " << test.size()
            << " test images (fid_domain: only comparable with itself)\n"
            << "   samples                              count    fid_domain   classes   seconds\n";
  std::vector<std::vector<double>> rows;
  const models::SampleQuality real = fid_row("real training images (the floor)", slice(train.images, 0, train.size() - nf, train.size()), 0, rows, -1);
  const models::SampleQuality real64 = fid_row("real training images, 64", slice(train.images, 0, train.size() - 64, train.size()), 0, rows, -1);
  const models::SampleQuality gauss = fid_row("the pixels' Gaussian (baseline)", gaussian_images, 0, rows, -2);
  fid_row("DDPM ancestral, T = " + std::to_string(T) + ", 64", samples, sample_seconds, rows, static_cast<double>(T));
  models::SampleQuality ddim_best;
  double ddim_secs = 0;
  const int64_t most = std::min<int64_t>(100, T);
  for (int64_t steps : {int64_t{10}, int64_t{25}, most}) {
    progress::Stopwatch c2;
    std::vector<Tensor> parts;
    for (int64_t k = 0; k < nf; k += 64) parts.push_back(m.sample_ddim(std::min<int64_t>(64, nf - k), steps, gen));
    const Tensor d = concat(parts, 0);
    const double secs = c2.seconds();
    const models::SampleQuality q = fid_row("DDIM, " + std::to_string(steps) + " steps", d, secs, rows, static_cast<double>(steps));
    if (steps == most) {
      ddim_best = q, ddim_secs = secs;
      image::save_image_grid(L.path("images_ddim_samples.png"), slice(d, 0, 0, 64), 8, image::upscale_for(H), 2);
    }
  }
  L.write_csv("images_sample_quality.csv", {"steps", "count", "fid_domain", "classes_covered", "seconds"}, rows);
  std::cout << "   (steps -1: real images, -2: the Gaussian baseline; the ancestral chain's 64 samples compare with the 64 real images'\n"
            << "   floor, FID grows as the count shrinks); DDIM with " << most << " steps: images_ddim_samples.png, " << std::setprecision(1)
            << ddim_secs * 64.0 / static_cast<double>(nf) << " s per 64 vs " << sample_seconds << " s for the ancestral chain\n";
  if (quick) {  // a few dozen steps of training: better than noise, not yet better than a Gaussian
    const models::SampleQuality noise = models::sample_quality(clf, gen.uniform({nf, 1, H, W}), reference);
    L.check_le("DDIM (" + std::to_string(most) + " steps) samples are closer to the test images than uniform noise images: fid_domain (--quick)",
               ddim_best.fid_domain, noise.fid_domain);
  } else {
    L.check_le("DDIM (100 steps) samples are closer to the test images than the pixels' Gaussian: fid_domain", ddim_best.fid_domain, gauss.fid_domain);
  }
  const std::string prefix = "fashion_";  // --quick writes the same keys, on the digits
  // over the bound's images, each a stratified estimate (its draws' noise is in the standard error)
  L.metric(prefix + "test_nll_bound_nats", nll, nll_se);
  L.metric(prefix + "test_bpd_bound", bpd, train::bits_per_dim(nll_se, D));
  L.metric(prefix + "test_bpd_bound_fixed_variance", train::bits_per_dim(nll_fixed, D), train::bits_per_dim(nll_fixed_se, D));
  L.metric(prefix + "bound_images", static_cast<double>(n_bound));
  L.metric(prefix + "bound_strata", static_cast<double>(ranges));
  L.metric(prefix + "fid_domain_ddpm", ddim_best.fid_domain);
  L.metric(prefix + "fid_domain_real", real.fid_domain);
  L.metric(prefix + "fid_domain_real_64", real64.fid_domain);
  L.metric(prefix + "fid_samples", static_cast<double>(nf));  // the count of fid_domain_ddpm, _real and _gaussian (_real_64: 64)
  L.metric(prefix + "fid_domain_gaussian", gauss.fid_domain);
  L.metric(prefix + "classifier_test_accuracy", cf.test_accuracy);
  L.metric(prefix + "classes_covered_ddpm", static_cast<double>(ddim_best.classes_covered));
  L.metric("sampling_seconds_64", sample_seconds);
  L.metric("ddim100_sampling_seconds_64", ddim_secs * 64.0 / static_cast<double>(nf));
  L.metric("image_train_seconds", fr.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("diffusion", "denoising diffusion: forward process, posterior, the bound's terms, sampling, a U-Net on images");
  ImageOptions io;
  L.app().add_option("--minutes", io.minutes, "Training time of the Fashion-MNIST U-Net, minutes (default: the recipe fashion_unet's, " +
                                                  std::to_string(static_cast<int>(models::recipe("fashion_unet").full.minutes)) + ")")
      ->check(CLI::PositiveNumber);
  L.app().add_option("--unet-base", io.base, "The U-Net's first width (Fashion-MNIST; multiple of 4)")->check(CLI::Range(4, 256));
  L.app().add_option("--objective", io.objective, "The U-Net's training objective: simple (L_simple: better samples) or bound (a better bound); "
                                                   "default: the recipe's (bound)")->check(CLI::IsMember({"simple", "bound"}));
  L.app().add_option("--timesteps", io.timesteps, "How training draws the U-Net's steps: uniform or importance (p_t ~ w_t, section 12 of "
                                                   "docs/chapters/diffusion.md); default: the recipe's (importance)")->check(CLI::IsMember({"uniform", "importance"}));
  L.app().add_option("--bound-images", io.bound_images, "Test images of the bound's stratified estimate (Fashion-MNIST)")->check(CLI::Range(2, 10000));
  L.app().add_option("--bound-strata", io.bound_strata, "Ranges of steps of the stratified bound: strata + 1 network evaluations an image")
      ->check(CLI::Range(1, 100000));
  L.app().add_option("--full-bound-images", io.full_bound_images, "Test images whose bound is also summed over all T terms (its check)")
      ->check(CLI::Range(2, 10000));
  L.app().add_option("--fid-samples", io.fid_samples, "Samples per Frechet distance")->check(CLI::Range(16, 10000));
  L.app().add_flag("--bound-curve", io.bound_curve,
                   "Also measure the U-Net's test bound after 1, 2, 4, 8, 15, 30 and 60 minutes of training (those within --minutes): "
                   "fashion_bound_by_minutes.csv");
  L.app().add_option("--curve-images", io.curve_images, "Test images of each of --bound-curve's bounds")->check(CLI::Range(2, 10000));
  L.app().add_flag("--skip-fashion", io.skip, "Skip step 9 on Fashion-MNIST");
  return L.run(argc, argv, [&] {
    Generator gen(L.options().seed);
    forward_marginals(L, gen);
    posterior(L);
    epsilon_form(L, gen);
    elbo_two_ways(L, gen);
    end_terms(L);
    simple_vs_bound(L, gen);
    two_d(L, gen);
    digits(L, gen);
    if (L.options().quick || !io.skip) images(L, gen, io);
  });
}
