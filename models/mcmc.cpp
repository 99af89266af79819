// dgm/models/mcmc.cpp — the samplers and diagnostics of mcmc.h (equations: docs/chapters/mcmc.md).
#include "models/mcmc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "models/toolkit/progress.h"

namespace dgm::models::mcmc {

namespace {

const double kNegInf = -std::numeric_limits<double>::infinity();

void check_chains(const Tensor& x, const char* who) {
  if (x.dim() != 2 || x.dtype() != DType::Float64)
    throw Error(std::string(who) + ": chains must be a float64 [C, D] tensor, got " + x.str());
}

// The kept draws, written step by step into one [S, C, D] buffer.
struct DrawBuffer {
  std::vector<double> data;
  int64_t S, C, D;
  DrawBuffer(int64_t s, int64_t c, int64_t d) : S(s), C(c), D(d) { data.reserve(static_cast<size_t>(s * c * d)); }
  void add(const Tensor& x) {
    const std::vector<double> v = x.to_vector();
    data.insert(data.end(), v.begin(), v.end());
  }
  Tensor tensor() const { return Tensor::from_vector(data, {S, C, D}); }
};

// Row c of `to` becomes row c of `from` where accept[c].
void take_rows(Tensor& to, const Tensor& from, const std::vector<char>& accept) {
  const int64_t C = to.size(0), D = to.numel() / C;
  double* t = to.data<double>();
  const double* f = from.data<double>();
  for (int64_t c = 0; c < C; ++c)
    if (accept[c]) std::copy(f + c * D, f + (c + 1) * D, t + c * D);
  to.bump_version("mcmc accept");
}

// The MH test (1) for every chain: accepts where log u < log alpha; returns alpha per chain.
std::vector<char> metropolis_test(const std::vector<double>& log_alpha, Generator& gen, std::vector<double>& alpha) {
  std::vector<char> accept(log_alpha.size());
  alpha.resize(log_alpha.size());
  for (size_t c = 0; c < log_alpha.size(); ++c) {
    alpha[c] = std::exp(log_alpha[c]);
    accept[c] = std::log(gen.uniform01()) < log_alpha[c];
  }
  return accept;
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double a : v) s += a;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

}  // namespace

ValueAndGradient value_and_gradient(const LogDensity& log_p, const Tensor& x, bool create_graph) {
  GradModeGuard on(true);
  if (create_graph) {
    if (!x.requires_grad()) throw Error("mcmc::value_and_gradient: create_graph needs an x that requires grad");
    Tensor v = log_p(x);
    return {v, grad({sum(v)}, {x}, {}, true, true)[0]};
  }
  Tensor leaf = x.detach().contiguous_copy().set_requires_grad(true);
  Tensor v = log_p(leaf);
  if (v.dim() != 1 || v.size(0) != x.size(0))
    throw Error("mcmc: a log-density must give one value per chain: [" + std::to_string(x.size(0)) + "] for x " +
                x.shape().str() + ", got " + v.shape().str());
  Tensor g = grad({sum(v)}, {leaf})[0];
  return {v.detach(), g.detach()};
}

double log_acceptance(double log_p_new, double log_p_old, double log_q_back, double log_q_forward) {
  const double r = (log_p_new - log_p_old) + (log_q_back - log_q_forward);
  if (std::isnan(r)) return kNegInf;  // a proposal where the density is undefined is rejected
  return std::min(0.0, r);
}

std::vector<std::vector<double>> coordinate(const Run& run, int64_t d) {
  const int64_t S = run.samples.size(0), C = run.samples.size(1), D = run.samples.size(2);
  if (d < 0 || d >= D) throw Error("mcmc::coordinate: coordinate " + std::to_string(d) + " of " + std::to_string(D));
  const double* s = run.samples.data<double>();
  std::vector<std::vector<double>> out(C, std::vector<double>(S));
  for (int64_t i = 0; i < S; ++i)
    for (int64_t c = 0; c < C; ++c) out[c][i] = s[(i * C + c) * D + d];
  return out;
}

// ---------------------------------------------------------------- Metropolis-Hastings (1)
Run random_walk_metropolis(const LogDensity& log_p, const Tensor& x0, double scale, Schedule s, Generator& gen) {
  check_chains(x0, "random_walk_metropolis");
  NoGradGuard ng;
  progress::Stopwatch clock;
  const int64_t C = x0.size(0), D = x0.size(1);
  Tensor x = x0.contiguous_copy(), lp = log_p(x).contiguous_copy();
  DrawBuffer rec(s.samples, C, D);
  std::vector<double> alpha, accepted;
  for (int64_t step = 0; step < s.warmup + s.samples; ++step) {
    const Tensor proposal = x + gen.normal({C, D}, 0, scale, DType::Float64);
    const Tensor lp_new = log_p(proposal);
    std::vector<double> la(C);
    for (int64_t c = 0; c < C; ++c) la[c] = log_acceptance(lp_new.at(c), lp.at(c));  // symmetric q: no correction
    const std::vector<char> accept = metropolis_test(la, gen, alpha);
    take_rows(x, proposal, accept);
    take_rows(lp, lp_new, accept);
    if (step >= s.warmup) {
      rec.add(x);
      accepted.push_back(mean_of(alpha));
    }
  }
  return {rec.tensor(), mean_of(accepted), scale, 0, clock.seconds()};
}

// ---------------------------------------------------------------- Gibbs (3)
Conditional gaussian_conditional(const Tensor& mu, const Tensor& Lambda, const Tensor& x, int64_t i) {
  const int64_t C = x.size(0), D = x.size(1);
  if (mu.numel() != D || Lambda.numel() != D * D)
    throw Error("gaussian_conditional: mu " + mu.shape().str() + " and Lambda " + Lambda.shape().str() + " for x " + x.shape().str());
  const std::vector<double> m = mu.to_vector(), L = Lambda.to_vector(), xv = x.to_vector();
  std::vector<double> mean(C);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0;
    for (int64_t j = 0; j < D; ++j)
      if (j != i) s += L[i * D + j] * (xv[c * D + j] - m[j]);
    mean[c] = m[i] - s / L[i * D + i];
  }
  return {Tensor::from_vector(mean, {C}), 1.0 / L[i * D + i]};
}

Run gibbs_gaussian(const Tensor& mu, const Tensor& Lambda, const Tensor& x0, Schedule s, Generator& gen) {
  check_chains(x0, "gibbs_gaussian");
  NoGradGuard ng;
  progress::Stopwatch clock;
  const int64_t C = x0.size(0), D = x0.size(1);
  Tensor x = x0.contiguous_copy();
  DrawBuffer rec(s.samples, C, D);
  for (int64_t step = 0; step < s.warmup + s.samples; ++step) {
    for (int64_t i = 0; i < D; ++i) {  // one sweep: each coordinate from its conditional given the current others
      const Conditional cond = gaussian_conditional(mu, Lambda, x, i);
      double* xv = x.data<double>();
      for (int64_t c = 0; c < C; ++c) xv[c * D + i] = cond.mean.at(c) + std::sqrt(cond.variance) * gen.normal01();
      x.bump_version("gibbs");
    }
    if (step >= s.warmup) rec.add(x);
  }
  return {rec.tensor(), 1.0, 0, 0, clock.seconds()};
}

// ---------------------------------------------------------------- Gibbs for a Bernoulli mixture (3b)
double gamma_draw(double shape, Generator& gen) {
  if (!(shape > 0)) throw Error("gamma_draw: the shape must be positive, got " + std::to_string(shape));
  if (shape < 1) return gamma_draw(shape + 1, gen) * std::pow(gen.uniform01(), 1 / shape);  // boost, then scale
  const double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
  for (;;) {
    double x, v;
    do {
      x = gen.normal01();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = gen.uniform01();
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
  }
}

double beta_draw(double a, double b, Generator& gen) {
  const double x = gamma_draw(a, gen), y = gamma_draw(b, gen);
  return x / (x + y);
}

Tensor assignment_probabilities(const Tensor& X, const Tensor& weights, const Tensor& means) {
  NoGradGuard ng;
  // log pi_k + sum_d [x log theta + (1 - x) log(1 - theta)], normalised by a logsumexp over k
  const Tensor lj = unsqueeze(log(weights), 0) + mm(X, log(means), false, true) + mm(1.0 - X, log(1.0 - means), false, true);
  return exp(lj - logsumexp(lj, {1}, true));
}

BernoulliMixtureDraws gibbs_bernoulli_mixture(const Tensor& X, const Tensor& start_weights, const Tensor& start_means,
                                              double alpha, double a, double b, Schedule s, Generator& gen) {
  const int64_t N = X.size(0), D = X.size(1), K = start_weights.numel();
  if (start_means.dim() != 2 || start_means.size(0) != K || start_means.size(1) != D)
    throw Error("gibbs_bernoulli_mixture: means " + start_means.shape().str() + " for " + std::to_string(K) + " weights and X " + X.shape().str());
  Tensor w = start_weights.to(DType::Float64).contiguous_copy(), m = start_means.to(DType::Float64).contiguous_copy();
  const Tensor Xd = X.to(DType::Float64);
  const std::vector<double> x = Xd.to_vector();
  BernoulliMixtureDraws out;
  for (int64_t sweep = 0; sweep < s.warmup + s.samples; ++sweep) {
    const std::vector<double> r = assignment_probabilities(Xd, w, m).to_vector();
    std::vector<double> count(K, 0.0), ones(static_cast<size_t>(K * D), 0.0);
    for (int64_t n = 0; n < N; ++n) {  // z_n | x_n, pi, theta
      double u = gen.uniform01();
      int64_t k = 0;
      while (k + 1 < K && u >= r[n * K + k]) u -= r[n * K + k], ++k;
      count[k] += 1;
      for (int64_t d = 0; d < D; ++d) ones[k * D + d] += x[n * D + d];
    }
    std::vector<double> g(K);  // pi | z ~ Dirichlet(alpha + n_k): normalised Gamma draws
    double total = 0;
    for (int64_t k = 0; k < K; ++k) total += g[k] = gamma_draw(alpha + count[k], gen);
    std::vector<double> wv(K), mv(static_cast<size_t>(K * D));
    for (int64_t k = 0; k < K; ++k) {
      wv[k] = g[k] / total;
      for (int64_t d = 0; d < D; ++d) mv[k * D + d] = beta_draw(a + ones[k * D + d], b + count[k] - ones[k * D + d], gen);
    }
    w = Tensor::from_vector(wv, {K});
    m = Tensor::from_vector(mv, {K, D});
    if (sweep >= s.warmup) out.weights.push_back(w), out.means.push_back(m);
  }
  return out;
}

// ---------------------------------------------------------------- HMC (4, 5)
PhasePoint phase_point(const LogDensity& log_p, const Tensor& x, const Tensor& p, bool create_graph) {
  const ValueAndGradient vg = value_and_gradient(log_p, x, create_graph);
  return {x, p, vg.value, vg.gradient};
}

PhasePoint leapfrog(const LogDensity& log_p, PhasePoint z, double eps, int steps, bool differentiable) {
  GradModeGuard mode(differentiable);
  z.p = z.p + (0.5 * eps) * z.gradient;  // half a momentum step
  for (int s = 0; s < steps; ++s) {
    z.x = z.x + eps * z.p;  // a full position step
    const ValueAndGradient vg = value_and_gradient(log_p, z.x, differentiable);
    z.log_p = vg.value, z.gradient = vg.gradient;
    z.p = z.p + ((s + 1 < steps ? 1.0 : 0.5) * eps) * z.gradient;  // full momentum steps, the last one half
  }
  return z;
}

Tensor hamiltonian(const PhasePoint& z) {
  NoGradGuard ng;
  return 0.5 * sum(z.p * z.p, {1}) - z.log_p;
}

DualAveraging::DualAveraging(double initial_step, double target_acceptance)
    : mu_(std::log(10 * initial_step)), target_(target_acceptance), step_(initial_step) {}

void DualAveraging::update(double acceptance) {
  const double gamma = 0.05, t0 = 10, kappa = 0.75;
  ++t_;
  const double t = static_cast<double>(t_);
  h_bar_ = (1 - 1 / (t + t0)) * h_bar_ + (target_ - acceptance) / (t + t0);
  const double log_step = mu_ - std::sqrt(t) / gamma * h_bar_;
  const double w = std::pow(t, -kappa);
  log_bar_ = w * log_step + (1 - w) * log_bar_;
  step_ = std::exp(log_step);
}

double DualAveraging::final_step() const { return t_ == 0 ? step_ : std::exp(log_bar_); }

PhasePoint hmc_transition(const LogDensity& log_p, const PhasePoint& z, double eps, int steps, Generator& gen,
                          std::vector<double>* acceptance) {
  const int64_t C = z.x.size(0), D = z.x.size(1);
  PhasePoint start = z;
  start.p = gen.normal({C, D}, 0, 1, DType::Float64);  // a fresh momentum: the Gibbs step on p
  const PhasePoint end = leapfrog(log_p, start, eps, steps);
  const Tensor h0 = hamiltonian(start), h1 = hamiltonian(end);
  std::vector<double> la(C), alpha;
  for (int64_t c = 0; c < C; ++c) la[c] = log_acceptance(-h1.at(c), -h0.at(c));  // (5): pi(x) exp(-|p|^2/2) = exp(-H)
  const std::vector<char> accept = metropolis_test(la, gen, alpha);
  PhasePoint out{start.x.contiguous_copy(), end.p.contiguous_copy(), start.log_p.contiguous_copy(),
                 start.gradient.contiguous_copy()};
  take_rows(out.x, end.x, accept);
  take_rows(out.log_p, end.log_p, accept);
  take_rows(out.gradient, end.gradient, accept);
  if (acceptance) *acceptance = alpha;
  return out;
}

Run hmc(const LogDensity& log_p, const Tensor& x0, HMCOptions o, Schedule s, Generator& gen) {
  check_chains(x0, "hmc");
  progress::Stopwatch clock;
  const int64_t C = x0.size(0), D = x0.size(1);
  PhasePoint z = phase_point(log_p, x0.contiguous_copy(), Tensor::zeros({C, D}, DType::Float64));
  DualAveraging da(o.step_size, o.target_acceptance);
  DrawBuffer rec(s.samples, C, D);
  std::vector<double> alpha, accepted;
  double eps = o.step_size;
  int64_t gradients = 1;
  for (int64_t step = 0; step < s.warmup + s.samples; ++step) {
    if (step == s.warmup && o.adapt && s.warmup > 0) eps = da.final_step();
    const double e = (step < s.warmup && o.adapt ? da.step() : eps) * (1 + o.jitter * (2 * gen.uniform01() - 1));
    z = hmc_transition(log_p, z, e, o.leapfrog_steps, gen, &alpha);
    gradients += o.leapfrog_steps;
    if (step < s.warmup) {
      if (o.adapt) da.update(mean_of(alpha));
    } else {
      rec.add(z.x);
      accepted.push_back(mean_of(alpha));
    }
  }
  return {rec.tensor(), mean_of(accepted), eps, gradients, clock.seconds()};
}

// ---------------------------------------------------------------- Langevin (6)
Run langevin(const LogDensity& log_p, const Tensor& x0, double eps, bool metropolis, Schedule s, Generator& gen) {
  check_chains(x0, "langevin");
  progress::Stopwatch clock;
  const int64_t C = x0.size(0), D = x0.size(1);
  ValueAndGradient cur = value_and_gradient(log_p, x0);
  Tensor x = x0.contiguous_copy();
  DualAveraging da(eps, 0.574);  // MALA's optimal acceptance (Roberts & Rosenthal 1998)
  DrawBuffer rec(s.samples, C, D);
  std::vector<double> alpha, accepted;
  int64_t gradients = 1;
  for (int64_t step = 0; step < s.warmup + s.samples; ++step) {
    if (metropolis && step == s.warmup && s.warmup > 0) eps = da.final_step();
    const double e = metropolis && step < s.warmup ? da.step() : eps;
    NoGradGuard ng;
    const Tensor drift = x + (0.5 * e) * cur.gradient;
    const Tensor proposal = drift + gen.normal({C, D}, 0, std::sqrt(e), DType::Float64);
    ValueAndGradient next = value_and_gradient(log_p, proposal);
    ++gradients;
    std::vector<char> accept(C, 1);
    alpha.assign(C, 1.0);
    if (metropolis) {
      // log q(x'|x) = -|x' - x - e/2 g(x)|^2 / 2e, log q(x|x') = -|x - x' - e/2 g(x')|^2 / 2e
      const Tensor fwd = sum(pow(proposal - drift, 2.0), {1}) / (-2 * e);
      const Tensor back = sum(pow(x - proposal - (0.5 * e) * next.gradient, 2.0), {1}) / (-2 * e);
      std::vector<double> la(C);
      for (int64_t c = 0; c < C; ++c) la[c] = log_acceptance(next.value.at(c), cur.value.at(c), back.at(c), fwd.at(c));
      accept = metropolis_test(la, gen, alpha);
    }
    take_rows(x, proposal, accept);
    Tensor v = cur.value.contiguous_copy(), g = cur.gradient.contiguous_copy();
    take_rows(v, next.value, accept);
    take_rows(g, next.gradient, accept);
    cur = {v, g};
    if (step < s.warmup) {
      if (metropolis) da.update(mean_of(alpha));
    } else {
      rec.add(x);
      accepted.push_back(mean_of(alpha));
    }
  }
  return {rec.tensor(), mean_of(accepted), eps, gradients, clock.seconds()};
}

Tensor annealed_langevin(const Score& score, const std::vector<double>& sigmas, Tensor x, int steps, double eps,
                         Generator& gen) {
  NoGradGuard ng;
  const double last = sigmas.back();
  for (size_t i = 0; i < sigmas.size(); ++i) {
    const double a = eps * sigmas[i] * sigmas[i] / (last * last);
    for (int k = 0; k < steps; ++k)
      x = x + (0.5 * a) * score(x, static_cast<int64_t>(i)) + gen.normal(x.shape(), 0, std::sqrt(a), x.dtype());
  }
  return x;
}

// ---------------------------------------------------------------- AIS (8)
std::vector<double> sigmoid_betas(int64_t T, double radius) {
  if (T < 1) throw Error("sigmoid_betas: needs T >= 1, got " + std::to_string(T));
  auto s = [&](int64_t t) { return 1 / (1 + std::exp(-radius * (2.0 * static_cast<double>(t) / static_cast<double>(T) - 1))); };
  std::vector<double> b(T + 1);
  for (int64_t t = 0; t <= T; ++t) b[t] = (s(t) - s(0)) / (s(T) - s(0));
  b[0] = 0, b[T] = 1;
  return b;
}

double log_mean_exp(const std::vector<double>& a) {
  if (a.empty()) throw Error("log_mean_exp: no values");
  const double m = *std::max_element(a.begin(), a.end());
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double v : a) s += std::exp(v - m);
  return m + std::log(s / static_cast<double>(a.size()));
}

namespace {

// One AIS run (8). With `adapt`, the step size follows the acceptance rate and `steps` records the
// schedule; without, `steps` (one per transition) is used as given.
std::vector<double> ais_run(const LogDensity& log_f0, const LogDensity& log_f1, const Tensor& x0, const AISOptions& o,
                            Generator& gen, bool adapt, std::vector<double>& steps) {
  const std::vector<double>& b = o.betas;
  const int64_t C = x0.size(0);
  Tensor x = x0.contiguous_copy();
  std::vector<double> log_w(C, 0.0), alpha;
  double eps = o.step_size;
  for (size_t t = 1; t < b.size(); ++t) {
    {
      NoGradGuard ng;  // the weight's increment at x_{t-1}, which f_{t-1}'s transition left invariant
      const Tensor d = log_f1(x) - log_f0(x);
      for (int64_t c = 0; c < C; ++c) log_w[c] += (b[t] - b[t - 1]) * d.at(c);
    }
    if (t + 1 == b.size()) break;  // the last draw is only weighted
    const double beta = b[t];  // transition t - 1 of T - 1
    const LogDensity f = [&](const Tensor& y) { return (1 - beta) * log_f0(y) + beta * log_f1(y); };
    if (!adapt) eps = steps[t - 1];
    const PhasePoint z = hmc_transition(f, phase_point(f, x, Tensor()), eps, o.leapfrog_steps, gen, &alpha);
    x = z.x;
    if (adapt) {
      steps.push_back(eps);
      eps *= std::exp(0.1 * (mean_of(alpha) - o.target_acceptance));  // towards the target rate
    }
  }
  return log_w;
}

}  // namespace

static void check_betas(const std::vector<double>& b) {
  if (b.size() < 2 || b.front() != 0 || b.back() != 1)
    throw Error("ais: the betas must run from 0 to 1 (got " + std::to_string(b.size()) + " values)");
  for (size_t t = 1; t < b.size(); ++t)
    if (!(b[t] > b[t - 1])) throw Error("ais: the betas must increase (beta_" + std::to_string(t) + " = " + std::to_string(b[t]) + ")");
}

Tensor ais(const LogDensity& log_f0, const LogDensity& log_f1, const Tensor& x0, const AISOptions& o, Generator& gen) {
  check_chains(x0, "ais");
  check_betas(o.betas);
  std::vector<double> steps = o.step_sizes;
  if (steps.empty()) steps.assign(o.betas.size() - 2, o.step_size);
  if (steps.size() != o.betas.size() - 2)
    throw Error("ais: " + std::to_string(steps.size()) + " step sizes for " + std::to_string(o.betas.size() - 2) +
                " intermediate distributions");
  return Tensor::from_vector(ais_run(log_f0, log_f1, x0, o, gen, false, steps), {x0.size(0)});
}

std::vector<double> ais_step_sizes(const LogDensity& log_f0, const LogDensity& log_f1, const Tensor& pilot_x0, const AISOptions& o,
                                   Generator& gen) {
  check_chains(pilot_x0, "ais_step_sizes");
  check_betas(o.betas);
  std::vector<double> steps;
  ais_run(log_f0, log_f1, pilot_x0, o, gen, true, steps);
  return steps;
}

// ---------------------------------------------------------------- diagnostics (9, 10)
std::vector<double> autocorrelation(const std::vector<double>& x, int64_t max_lag) {
  const int64_t n = static_cast<int64_t>(x.size());
  if (n < 2) throw Error("autocorrelation: needs at least two draws");
  const double m = mean_of(x);
  std::vector<double> r(static_cast<size_t>(std::min(max_lag, n - 1) + 1));
  for (size_t lag = 0; lag < r.size(); ++lag) {
    double s = 0;
    for (int64_t i = 0; i + static_cast<int64_t>(lag) < n; ++i) s += (x[i] - m) * (x[i + lag] - m);
    r[lag] = s / static_cast<double>(n);
  }
  const double v = r[0];
  for (double& a : r) a = v > 0 ? a / v : 0;
  return r;
}

namespace {

// Stan's pieces for M chains of N draws: W, var_plus and each chain's mean.
struct Variances {
  double W = 0, var_plus = 0;
  std::vector<double> means;
  size_t N = 0;
};

Variances variances(const std::vector<std::vector<double>>& chains) {
  if (chains.empty()) throw Error("mcmc diagnostics: no chains");
  Variances v;
  v.N = chains[0].size();
  for (const auto& c : chains) v.N = std::min(v.N, c.size());
  if (v.N < 4) throw Error("mcmc diagnostics: needs at least 4 draws per chain, got " + std::to_string(v.N));
  const double N = static_cast<double>(v.N), M = static_cast<double>(chains.size());
  for (const auto& c : chains) {
    double m = 0, ss = 0;
    for (size_t i = 0; i < v.N; ++i) m += c[i] / N;
    for (size_t i = 0; i < v.N; ++i) ss += (c[i] - m) * (c[i] - m);
    v.means.push_back(m);
    v.W += ss / (N - 1) / M;
  }
  double B_over_N = 0;
  if (chains.size() > 1) {
    const double mm = mean_of(v.means);
    for (double m : v.means) B_over_N += (m - mm) * (m - mm) / (M - 1);
  }
  v.var_plus = (N - 1) / N * v.W + B_over_N;
  return v;
}

}  // namespace

double effective_sample_size(const std::vector<std::vector<double>>& chains) {
  const Variances v = variances(chains);
  const double N = static_cast<double>(v.N), M = static_cast<double>(chains.size());
  if (!(v.var_plus > 0)) return M * N;  // constant draws
  // rho_t = 1 - (W - mean_m acov_m(t)) / var_plus, acov with divisor N
  auto rho = [&](size_t t) {
    double acov = 0;
    for (size_t m = 0; m < chains.size(); ++m) {
      double s = 0;
      for (size_t i = 0; i + t < v.N; ++i) s += (chains[m][i] - v.means[m]) * (chains[m][i + t] - v.means[m]);
      acov += s / N / M;
    }
    return 1 - (v.W - acov) / v.var_plus;
  };
  // Geyer's initial positive, monotone sequence of pair sums P_k = rho_2k + rho_2k+1
  double sum_pairs = 0, previous = std::numeric_limits<double>::infinity();
  for (size_t k = 0; 2 * k + 1 < v.N; ++k) {
    double P = rho(2 * k) + rho(2 * k + 1);
    if (P <= 0) break;
    P = std::min(P, previous);
    sum_pairs += P;
    previous = P;
  }
  const double tau = std::max(-1 + 2 * sum_pairs, 1 / std::log10(M * N));  // Stan's floor on tau
  return M * N / tau;
}

double split_rhat(const std::vector<std::vector<double>>& chains) {
  std::vector<std::vector<double>> halves;
  for (const auto& c : chains) {
    const size_t h = c.size() / 2;
    halves.emplace_back(c.begin(), c.begin() + static_cast<std::ptrdiff_t>(h));
    halves.emplace_back(c.end() - static_cast<std::ptrdiff_t>(h), c.end());
  }
  const Variances v = variances(halves);
  return v.W > 0 ? std::sqrt(v.var_plus / v.W) : 1.0;
}

}  // namespace dgm::models::mcmc
