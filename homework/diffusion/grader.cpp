// dgm/homework/diffusion/grader.cpp — the checks of the diffusion homework.
// The grader computes abar by its own products of the betas, checks q_sample against
// the step-by-step recursion of the chain's mean and variance, the posterior against
// Bayes' rule in precision form and the law of total expectation / variance (exactly, by
// linearity), and L_simple against long double, an oracle predictor and central differences.
// Every batch holds distinct steps t, so a solution that uses one t for all examples fails.
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/random.h"
#include "homework/diffusion/exercises.h"
#include "models/diffusion.h"

namespace hw::diffusion {

using dgm::DType;
using dgm::Generator;

namespace {

using LD = long double;

// The library's linear schedule, handed to the exercises without its precomputed posterior.
Schedule schedule() {
  const dgm::models::NoiseSchedule s = dgm::models::NoiseSchedule::linear(50, 1e-3, 0.2);
  return {s.beta, s.alpha, s.alpha_bar};
}

// abar_t = prod_{s <= t} (1 - beta_s), by the grader; abar_{-1} = 1.
LD abar(const Schedule& s, int64_t t) {
  LD a = 1;
  for (int64_t k = 0; k <= t; ++k) a *= 1 - static_cast<LD>(s.beta[static_cast<size_t>(k)]);
  return a;
}

Tensor steps(std::vector<int64_t> t) { return Tensor::from_indices(t, {static_cast<int64_t>(t.size())}); }

// One value per example, broadcast over the rest of its elements (long double).
Tensor per_example_reference(const Tensor& x, const Tensor& t, const std::function<LD(int64_t, LD)>& f) {
  const int64_t N = x.size(0), per = x.numel() / N;
  std::vector<double> out(static_cast<size_t>(x.numel()));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < per; ++i) out[static_cast<size_t>(n * per + i)] = static_cast<double>(f(static_cast<int64_t>(t.at(n)), x.at(n * per + i)));
  return Tensor::from_vector(out, x.shape());
}

Tensor q_sample_reference(const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& noise) {
  const int64_t N = x0.size(0), per = x0.numel() / N;
  std::vector<double> out(static_cast<size_t>(x0.numel()));
  for (int64_t n = 0; n < N; ++n) {
    const LD a = abar(s, static_cast<int64_t>(t.at(n)));
    for (int64_t i = 0; i < per; ++i)
      out[static_cast<size_t>(n * per + i)] = static_cast<double>(std::sqrt(a) * x0.at(n * per + i) + std::sqrt(1 - a) * noise.at(n * per + i));
  }
  return Tensor::from_vector(out, x0.shape());
}

// q(x_{t-1} | x_t, x_0) by Bayes' rule in precision form: the prior N(sqrt(abar_{t-1}) x0, 1 - abar_{t-1})
// times the likelihood N(x_t; sqrt(alpha_t) x_{t-1}, beta_t).
struct BayesPosterior {
  LD mean, var;
};
BayesPosterior bayes(const Schedule& s, int64_t t, LD x0, LD xt) {
  const LD beta = s.beta[static_cast<size_t>(t)], prior_var = 1 - abar(s, t - 1), prior_mean = std::sqrt(abar(s, t - 1)) * x0;
  if (prior_var == 0) return {x0, 0};
  const LD precision = 1 / prior_var + (1 - beta) / beta;
  return {(prior_mean / prior_var + std::sqrt(1 - beta) * xt / beta) / precision, 1 / precision};
}

bool posterior_shapes(Expect& e, const Posterior& p, const Tensor& x0) {
  e.shape_is("mean", p.mean, x0.shape(), "the mean is shaped like x_0");
  e.shape_is("variance", p.variance, {x0.size(0)}, "one variance per example, [N]");
  return e.ok();
}

// eps_theta(x, t) = x W^T + b + c_t: a linear model with a per-step offset.
struct LinearNoiseModel {
  Tensor W, b;
  Tensor operator()(const Tensor& x, const Tensor& t) const {
    std::vector<double> offset;
    for (int64_t n = 0; n < t.numel(); ++n) offset.push_back(0.01 * static_cast<double>(t.at(n)));
    return dgm::linear(x, W, b) + Tensor::from_vector(offset, {t.numel(), 1});
  }
};

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- q_sample
  list.push_back({"q_sample", "homework/diffusion/q_sample.cpp", 10, {}});
  auto& qs = list.back().checks;
  qs.push_back({"x_t is shaped like x_0 (vectors and images)", 1, [f](Expect& e) {
                  Generator gen(1);
                  const Schedule s = schedule();
                  const Tensor x0 = gen.normal({3, 1, 2, 2}, 0, 1, DType::Float64);
                  e.shape_is("q_sample(x0 [3, 1, 2, 2], ...)", f.q_sample(x0, steps({0, 10, 49}), gen.normal(x0.shape(), 0, 1, DType::Float64), s),
                             x0.shape(), "one sqrt(abar_t) per example, broadcast over the example");
                }});
  qs.push_back({"equals sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, abar by the grader's own products", 4, [f](Expect& e) {
                  const Schedule s = schedule();
                  for (uint64_t seed : {1, 2}) {
                    Generator gen(seed);
                    const Tensor x0 = seed == 1 ? gen.normal({5, 3}, 0, 1, DType::Float64) : gen.normal({5, 1, 2, 3}, 0, 1, DType::Float64);
                    const Tensor t = steps({0, 1, 17, 30, 49}), noise = gen.normal(x0.shape(), 0, 1, DType::Float64);
                    e.tensors_near("seed " + std::to_string(seed) + ": x_t", q_sample_reference(s, x0, t, noise), f.q_sample(x0, t, noise, s), 1e-12,
                                   "abar_t = prod_{s <= t} (1 - beta_s) is schedule.alpha_bar[t] (not alpha[t], not alpha_bar[t - 1]); the square roots of both");
                  }
                }, essential});
  qs.push_back({"agrees with t steps of the chain: mean and variance by recursion, every example its own t", 3, [f](Expect& e) {
                  // mean_t = sqrt(1 - beta_t) mean_{t-1}, var_t = (1 - beta_t) var_{t-1} + beta_t, from x_0 (var 0);
                  // the steps t = 3, 10, ..., 45 go in as one batch, so each example must use its own t
                  const Schedule s = schedule();
                  std::vector<int64_t> ts;
                  std::vector<double> means, stds;
                  LD mean = 1.5, var = 0;
                  for (int64_t t = 0; t < 50; ++t) {
                    const LD beta = s.beta[static_cast<size_t>(t)];
                    mean *= std::sqrt(1 - beta);
                    var = (1 - beta) * var + beta;
                    if (t % 7 != 3) continue;
                    ts.push_back(t);
                    means.push_back(static_cast<double>(mean));
                    stds.push_back(static_cast<double>(std::sqrt(var)));
                  }
                  const int64_t n = static_cast<int64_t>(ts.size());
                  const Tensor t = steps(ts);
                  const Tensor at_zero_noise = f.q_sample(Tensor::full({n, 1}, 1.5, DType::Float64), t, Tensor::zeros({n, 1}, DType::Float64), s);
                  const Tensor noise_scale = f.q_sample(Tensor::zeros({n, 1}, DType::Float64), t, Tensor::ones({n, 1}, DType::Float64), s);
                  e.tensors_near("x_t with eps = 0 (the mean) at t = 3, 10, ..., 45", Tensor::from_vector(means, {n, 1}), at_zero_noise, 1e-12,
                                 "q(x_t | x_0) has mean sqrt(abar_t) x_0, abar_t of each example's own t");
                  e.tensors_near("x_t from x_0 = 0, eps = 1 (the standard deviation) at t = 3, 10, ..., 45", Tensor::from_vector(stds, {n, 1}),
                                 noise_scale, 1e-12, "q(x_t | x_0) has variance 1 - abar_t: scale eps by sqrt(1 - abar_t)");
                }, essential});
  qs.push_back({"differentiable in x_0", 2, [f](Expect& e) {
                  const Schedule s = schedule();
                  Generator gen(3);
                  const Tensor noise = gen.normal({2, 3}, 0, 1, DType::Float64);
                  const auto report = dgm::gradcheck([&](const std::vector<Tensor>& in) { return f.q_sample(in[0], steps({4, 40}), noise, s); },
                                                     {gen.normal({2, 3}, 0, 1, DType::Float64)});
                  e.that(report.ok, report.str(), "multiply with engine ops (no data<T>() copies)");
                }});

  // ---------------------------------------------------------------- posterior
  list.push_back({"posterior", "homework/diffusion/posterior.cpp", 10, {}});
  auto& po = list.back().checks;
  po.push_back({"the mean is shaped like x_0, the variance [N]", 1, [f](Expect& e) {
                  Generator gen(1);
                  const Tensor x0 = gen.normal({3, 1, 2, 2}, 0, 1, DType::Float64);
                  posterior_shapes(e, f.posterior(x0, gen.normal(x0.shape(), 0, 1, DType::Float64), steps({1, 20, 49}), schedule()), x0);
                }});
  po.push_back({"equals Bayes' rule in precision form, in long double", 5, [f](Expect& e) {
                  const Schedule s = schedule();
                  for (uint64_t seed : {1, 2}) {
                    Generator gen(seed);
                    const Tensor x0 = gen.normal({5, 3}, 0, 1, DType::Float64), xt = gen.normal({5, 3}, 0, 1, DType::Float64);
                    const Tensor t = steps({0, 1, 2, 33, 49});  // t = 0 too: there abar_{t-1} = abar_{-1} = 1
                    const Posterior p = f.posterior(x0, xt, t, s);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    if (!posterior_shapes(e, p, x0)) return;
                    std::vector<double> mean, var;
                    for (int64_t n = 0; n < 5; ++n) {
                      const int64_t step = static_cast<int64_t>(t.at(n));
                      var.push_back(static_cast<double>(bayes(s, step, 0, 0).var));
                      for (int64_t i = 0; i < 3; ++i) mean.push_back(static_cast<double>(bayes(s, step, x0.at(n * 3 + i), xt.at(n * 3 + i)).mean));
                    }
                    e.tensors_near("variance", Tensor::from_vector(var, {5}), p.variance, 1e-12,
                                   "beta_tilde = (1 - abar_{t-1}) / (1 - abar_t) beta_t: smaller than beta_t");
                    e.tensors_near("mean", Tensor::from_vector(mean, {5, 3}), p.mean, 1e-12,
                                   "x_0's coefficient has sqrt(abar_{t-1}) beta_t, x_t's has sqrt(alpha_t) (1 - abar_{t-1}); both over 1 - abar_t");
                  }
                }, essential});
  po.push_back({"t = 0: variance 0, mean x_0", 1, [f](Expect& e) {
                  Generator gen(3);
                  const Tensor x0 = gen.normal({2, 3}, 0, 1, DType::Float64);
                  const Posterior p = f.posterior(x0, gen.normal({2, 3}, 0, 1, DType::Float64), steps({0, 0}), schedule());
                  if (!posterior_shapes(e, p, x0)) return;
                  e.tensors_near("variance at t = 0", Tensor::zeros({2}, DType::Float64), p.variance, 1e-15, "abar_{-1} = 1: 1 - abar_{-1} = 0");
                  e.tensors_near("mean at t = 0", x0, p.mean, 1e-12, "abar_{-1} = 1 and abar_0 = alpha_0: the coefficients are 1 and 0");
                }});
  po.push_back({"total expectation and variance: averaged over x_t ~ q(x_t | x_0), it gives q(x_{t-1} | x_0), exactly", 3, [f](Expect& e) {
                  // The posterior mean is c0 x_0 + ct x_t, affine in x_t (the Bayes check above holds it to that), so
                  //   E_{x_t}[mean] = mean at x_t = E[x_t] = sqrt(abar_t) x_0,   Var_{x_t}[mean] = ct^2 (1 - abar_t),
                  // with ct read off as mean(x_0 = 0, x_t = 1). No sampling: long double, every example its own t.
                  const Schedule s = schedule();
                  const std::vector<int64_t> ts = {1, 2, 7, 30, 49};
                  const int64_t n = static_cast<int64_t>(ts.size());
                  std::vector<double> expected_xt, prior_mean, prior_var;
                  for (int64_t t : ts) {
                    expected_xt.push_back(static_cast<double>(std::sqrt(abar(s, t)) * 0.8L));
                    prior_mean.push_back(static_cast<double>(std::sqrt(abar(s, t - 1)) * 0.8L));
                    prior_var.push_back(static_cast<double>(1 - abar(s, t - 1)));
                  }
                  const Tensor t = steps(ts), x0 = Tensor::full({n, 1}, 0.8, DType::Float64), zeros = Tensor::zeros({n, 1}, DType::Float64);
                  const Posterior at_mean = f.posterior(x0, Tensor::from_vector(expected_xt, {n, 1}), t, s);
                  if (!posterior_shapes(e, at_mean, x0)) return;
                  const Tensor ct = f.posterior(zeros, Tensor::ones({n, 1}, DType::Float64), t, s).mean - f.posterior(zeros, zeros, t, s).mean;
                  std::vector<double> total_var;
                  for (int64_t k = 0; k < n; ++k)
                    total_var.push_back(static_cast<double>(static_cast<LD>(ct.at(k)) * ct.at(k) * (1 - abar(s, ts[static_cast<size_t>(k)])) +
                                                            at_mean.variance.at(k)));
                  e.tensors_near("E[mean] (the mean of x_{t-1} given x_0), t = 1, 2, 7, 30, 49", Tensor::from_vector(prior_mean, {n, 1}), at_mean.mean,
                                 1e-12, "E_{x_t}[ E[x_{t-1} | x_t, x_0] ] = E[x_{t-1} | x_0] = sqrt(abar_{t-1}) x_0: x_t's coefficient has sqrt(alpha_t)");
                  e.tensors_near("Var[mean] + E[variance] (the variance of x_{t-1} given x_0)", Tensor::from_vector(prior_var, {n}),
                                 Tensor::from_vector(total_var, {n}), 1e-12,
                                 "the posterior variance plus the spread of the posterior mean is 1 - abar_{t-1}");
                }, essential});

  // ---------------------------------------------------------------- l_simple
  list.push_back({"l_simple", "homework/diffusion/l_simple.cpp", 10, {}});
  auto& ls = list.back().checks;
  ls.push_back({"a scalar (shape [])", 1, [f](Expect& e) {
                  Generator gen(1);
                  const LinearNoiseModel model{gen.normal({3, 3}, 0, 0.5, DType::Float64), gen.normal({3}, 0, 0.1, DType::Float64)};
                  e.shape_is("L_simple", f.l_simple(std::cref(model), gen.normal({4, 3}, 0, 1, DType::Float64), steps({1, 2, 3, 4}),
                                                    gen.normal({4, 3}, 0, 1, DType::Float64), schedule()),
                             {}, "the mean over every element");
                }});
  ls.push_back({"equals mean (eps - eps_theta(x_t, t))^2 in long double (3 seeds)", 4, [f](Expect& e) {
                  const Schedule s = schedule();
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const LinearNoiseModel model{gen.normal({3, 3}, 0, 0.5, DType::Float64), gen.normal({3}, 0, 0.1, DType::Float64)};
                    const Tensor x0 = gen.normal({6, 3}, 0, 1, DType::Float64), noise = gen.normal({6, 3}, 0, 1, DType::Float64);
                    const Tensor t = steps({0, 5, 11, 23, 37, 49});
                    const Tensor pred = model(q_sample_reference(s, x0, t, noise), t);
                    LD total = 0;
                    for (int64_t i = 0; i < 18; ++i) total += std::pow(static_cast<LD>(noise.at(i)) - pred.at(i), 2);
                    e.near("seed " + std::to_string(seed) + ": L_simple", static_cast<double>(total / 18), f.l_simple(std::cref(model), x0, t, noise, s).item(), 1e-12,
                           "the network sees x_t (not x_0) and the step t; the target is the noise eps; a mean over every element");
                  }
                }, essential});
  ls.push_back({"an oracle that knows x_0 predicts the noise exactly: loss 0", 3, [f](Expect& e) {
                  const Schedule s = schedule();
                  Generator gen(4);
                  const Tensor x0 = gen.normal({5, 1, 2, 2}, 0, 1, DType::Float64), noise = gen.normal({5, 1, 2, 2}, 0, 1, DType::Float64);
                  const Tensor t = steps({0, 9, 19, 29, 49});
                  const NoiseModel oracle = [&](const Tensor& x_t, const Tensor& tt) {  // eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)
                    return (x_t - per_example_reference(x0, tt, [&](int64_t k, LD v) { return std::sqrt(abar(s, k)) * v; })) /
                               per_example_reference(x0, tt, [&](int64_t k, LD) { return std::sqrt(1 - abar(s, k)); });
                  };
                  e.near("L_simple of the oracle", 0, f.l_simple(oracle, x0, t, noise, s).item(), 1e-20,
                         "x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps goes into the network, with t, and eps is the target");
                }, essential});
  ls.push_back({"its gradient reaches the network's weights (central differences)", 2, [f](Expect& e) {
                  const Schedule s = schedule();
                  Generator gen(5);
                  Tensor W = gen.normal({2, 2}, 0, 0.5, DType::Float64);
                  const LinearNoiseModel model{W.set_requires_grad(true), Tensor::zeros({2}, DType::Float64)};
                  const Tensor x0 = gen.normal({4, 2}, 0, 1, DType::Float64), noise = gen.normal({4, 2}, 0, 1, DType::Float64);
                  const Tensor t = steps({3, 8, 21, 44});
                  const Tensor loss = f.l_simple(std::cref(model), x0, t, noise, s);
                  if (!loss.requires_grad()) {
                    e.that(false, "the loss does not depend on the network's weights", "use engine ops from the network's output to the loss");
                    return;
                  }
                  const Tensor analytic = dgm::grad({loss}, {model.W})[0];
                  Tensor probe = model.W.detach();
                  const LinearNoiseModel frozen{probe, model.b};
                  for (int64_t i = 0; i < 4; ++i) {
                    const double numeric = dgm::central_difference([&] { return f.l_simple(std::cref(frozen), x0, t, noise, s).item(); }, probe, i);
                    e.near("dL/dW[" + std::to_string(i) + "]", numeric, analytic.at(i), 1e-7 + 1e-6 * std::abs(numeric), "use engine ops throughout");
                  }
                }, essential});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "q_sample") add_library_check(ex, {"NoiseSchedule", "models::DDPM"});
    if (ex.name == "posterior") add_library_check(ex, {"NoiseSchedule", "posterior_coef_x0", "posterior_coef_xt", "posterior_var"});
    if (ex.name == "l_simple") add_library_check(ex, {"models::DDPM"});
  }
  return list;
}

}  // namespace hw::diffusion
