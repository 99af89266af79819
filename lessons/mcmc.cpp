// lessons/mcmc.cpp — Markov chain Monte Carlo beside variational inference.
//
// VI approximates a posterior by optimisation; MCMC by sampling. This lesson builds the sampling half
// on the engine (models/mcmc.h) and checks every claim by two routes. Equations and the steps below:
// docs/chapters/mcmc.md.
// 1.  A 5-state chain: detailed balance and invariance of the Metropolis-Hastings kernel (the matrix),
//     and the frequencies of a simulated chain (the rule, with an asymmetric proposal).
// 1b. A banana: the random-walk chain's histogram against the density's integrals over the bins.
// 2.  Gibbs: a Gaussian's conditionals (the formula vs Bayes' rule by quadrature), the chain's moments.
// 3.  HMC's leapfrog: the engine's gradient vs the analytic one, reversibility, volume preservation
//     (the Jacobian of a step, by the engine), the energy error's O(eps^2) slope.
// 4.  HMC vs mean-field VI on the ELBO chapter's correlated linear-Gaussian posterior.
// 5.  Annealed importance sampling: = importance sampling with no intermediate step, unbiased for Z,
//     and log p(x) of the VAE chapter's model against IWAE and the ELBO.
// 6.  Diagnostics (ESS, split R-hat): used throughout; trace and autocorrelation pictures after 1b.
// 7.  Energies and scores: the score of a noised mixture, eps-prediction = -sigma_t score, denoising
//     score matching sampled by annealed Langevin dynamics, an energy-based model by contrastive divergence.
#include <array>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <iostream>

#include "autograd/graph.h"
#include "autograd/nn.h"
#include "autograd/ops.h"
#include "autograd/optim.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"
#include "models/diffusion.h"
#include "models/divergences.h"
#include "models/mcmc.h"
#include "models/mixtures.h"
#include "models/recipes.h"
#include "models/sample_quality.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/linalg.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/toy2d.h"
#include "models/vae.h"

using namespace dgm;
namespace mcmc = dgm::models::mcmc;

namespace {

std::string fmt(double v, int digits = 4) {
  std::ostringstream s;
  s << std::setprecision(digits) << v;
  return s.str();
}

// The mean of a function's values along M chains and its Monte Carlo standard error, sd / sqrt(ESS).
struct ChainMean {
  double mean = 0, se = 0, ess = 0;
};
ChainMean chain_mean(const std::vector<std::vector<double>>& chains) {
  double m = 0, n = 0, ss = 0;
  for (const auto& c : chains)
    for (double a : c) m += a, ++n;
  m /= n;
  for (const auto& c : chains)
    for (double a : c) ss += (a - m) * (a - m);
  const double ess = mcmc::effective_sample_size(chains);
  return {m, std::sqrt(ss / (n - 1) / ess), ess};
}

// f applied to every draw of coordinates (a, b).
std::vector<std::vector<double>> map2(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b,
                                      const std::function<double(double, double)>& f) {
  std::vector<std::vector<double>> out = a;
  for (size_t c = 0; c < a.size(); ++c)
    for (size_t i = 0; i < a[c].size(); ++i) out[c][i] = f(a[c][i], b[c][i]);
  return out;
}

// ------------------------------------------------------------ 1. a 5-state chain
void discrete_chain(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 1. Metropolis-Hastings on 5 states: pi = (0.05, 0.1, 0.2, 0.25, 0.4), proposal: one step right\n"
               "      with probability 0.7, left with 0.3 (on a ring: asymmetric, so the rule needs q(x|x') / q(x'|x))\n";
  const int K = 5;
  const std::vector<double> pi = {0.05, 0.1, 0.2, 0.25, 0.4};
  auto q = [&](int i, int j) { return j == (i + 1) % K ? 0.7 : j == (i + K - 1) % K ? 0.3 : 0.0; };
  // The kernel as a matrix (1): P_ij = q(j|i) alpha_ij for j != i, the rest of the mass stays.
  std::vector<double> P(K * K, 0.0);
  for (int i = 0; i < K; ++i) {
    double stay = 1;
    for (int j = 0; j < K; ++j) {
      if (j == i || q(i, j) == 0) continue;
      P[i * K + j] = q(i, j) * std::exp(mcmc::log_acceptance(std::log(pi[j]), std::log(pi[i]), std::log(q(j, i)), std::log(q(i, j))));
      stay -= P[i * K + j];
    }
    P[i * K + i] = stay;
  }
  double worst = 0, flow_ij = 0, flow_ji = 0, invariance = 0;
  for (int i = 0; i < K; ++i) {
    double piP = 0;
    for (int j = 0; j < K; ++j) {
      piP += pi[j] * P[j * K + i];
      const double d = std::abs(pi[i] * P[i * K + j] - pi[j] * P[j * K + i]);
      if (d >= worst) worst = d, flow_ij = pi[i] * P[i * K + j], flow_ji = pi[j] * P[j * K + i];
    }
    invariance = std::max(invariance, std::abs(piP - pi[i]));
  }
  L.check_close("detailed balance pi_i P_ij = pi_j P_ji (the pair that differs most)", flow_ij, flow_ji, 1e-15);
  L.check_close("invariance: max_i |(pi P)_i - pi_i|", invariance, 0.0, 1e-15);
  // The rule, run: the chain's visit frequencies against pi (standard errors from each indicator's ESS).
  const int64_t steps = L.options().quick ? 100000 : 400000;
  std::vector<std::vector<double>> visits(K, std::vector<double>(steps));
  int x = 0;
  for (int64_t s = 0; s < steps; ++s) {
    const int y = gen.uniform01() < 0.7 ? (x + 1) % K : (x + K - 1) % K;
    if (std::log(gen.uniform01()) < mcmc::log_acceptance(std::log(pi[y]), std::log(pi[x]), std::log(q(y, x)), std::log(q(x, y)))) x = y;
    for (int k = 0; k < K; ++k) visits[k][s] = x == k;
  }
  double chi2 = 0;
  std::cout << "   state   pi      visited   (" << steps << " steps)\n";
  for (int k = 0; k < K; ++k) {
    const ChainMean f = chain_mean({visits[k]});
    chi2 += std::pow((f.mean - pi[k]) / f.se, 2);
    std::cout << "   " << k << "       " << std::fixed << std::setprecision(3) << pi[k] << "   " << f.mean << "  +- " << f.se << "\n";
  }
  std::cout.unsetf(std::ios::floatfield);
  L.check_le("the simulated chain's frequencies match pi: sum of squared z-scores over 5 states <= 5 + 4 sqrt(10)", chi2,
             5 + 4 * std::sqrt(10.0));
}

// ------------------------------------------------------------ 1b. a banana, random-walk MH
// x1 ~ N(0, 1), x2 | x1 ~ N(x1^2, s^2): log pi = -x1^2 / 2 - (x2 - x1^2)^2 / (2 s^2) (Z = 2 pi s).
const double kBananaS = 0.5;
Tensor banana(const Tensor& x) {
  const Tensor a = select(x, 1, 0), b = select(x, 1, 1);
  return (a * a) * -0.5 - pow(b - a * a, 2.0) / (2 * kBananaS * kBananaS);
}
// Exact draws (the chains' starting points and the leapfrog checks' phase points).
Tensor banana_draws(int64_t n, Generator& gen) {
  std::vector<double> v(2 * n);
  for (int64_t i = 0; i < n; ++i) {
    v[2 * i] = gen.normal01();
    v[2 * i + 1] = v[2 * i] * v[2 * i] + kBananaS * gen.normal01();
  }
  return Tensor::from_vector(v, {n, 2});
}

struct TracePlots {
  mcmc::Run mh, hmc;
};

TracePlots banana_mh(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  std::cout << "\n-- 1b. Random-walk Metropolis on a banana: x1 ~ N(0, 1), x2 | x1 ~ N(x1^2, " << kBananaS << "^2); 4 chains\n";
  const Tensor x0 = gen.normal({4, 2}, 0, 2, DType::Float64);
  const mcmc::Run mh = mcmc::random_walk_metropolis(banana, x0, 0.6, {1000, quick ? 10000 : 40000}, gen);
  const mcmc::Run hmc = mcmc::hmc(banana, x0, {0.2, 10}, {500, quick ? 2000 : 8000}, gen);
  std::cout << "   MH acceptance " << fmt(mh.acceptance, 3) << "; HMC (for the pictures) acceptance " << fmt(hmc.acceptance, 3)
            << ", step " << fmt(hmc.step_size, 3) << "\n";
  // Bins: 6 in x1 times 5 in x2; each bin's probability is a 1-D integral (Simpson) of
  // phi(x1) [Phi((hi - x1^2) / s) - Phi((lo - x1^2) / s)] over the bin's x1 interval.
  const std::vector<double> e1 = {-8, -1, -0.5, 0, 0.5, 1, 8}, e2 = {-8, 0, 0.5, 1, 2, 60};
  const auto a = mcmc::coordinate(mh, 0), b = mcmc::coordinate(mh, 1);
  double chi2 = 0, total = 0;
  int bins = 0;
  for (size_t i = 0; i + 1 < e1.size(); ++i)
    for (size_t j = 0; j + 1 < e2.size(); ++j) {
      const int n = 4000;
      const double h = (e1[i + 1] - e1[i]) / n;
      std::vector<double> f(n + 1);
      for (int k = 0; k <= n; ++k) {
        const double x1 = e1[i] + k * h;
        f[k] = std::exp(-x1 * x1 / 2) / std::sqrt(2 * M_PI) *
               (dist::standard_normal_cdf((e2[j + 1] - x1 * x1) / kBananaS) - dist::standard_normal_cdf((e2[j] - x1 * x1) / kBananaS));
      }
      const double p = lesson::simpson(f, h);
      total += p;
      const ChainMean m = chain_mean(map2(a, b, [&](double u, double v) {
        return static_cast<double>(u >= e1[i] && u < e1[i + 1] && v >= e2[j] && v < e2[j + 1]);
      }));
      if (m.mean > 0 && m.mean < 1) chi2 += std::pow((m.mean - p) / m.se, 2);
      else chi2 += std::pow(p, 2) * m.ess;  // an empty bin: its z-score with the binomial variance
      ++bins;
    }
  L.check_close("the bins' integrals of the banana sum to 1 (quadrature)", total, 1.0, 1e-8);
  L.check_le("MH's histogram matches the banana's integrals over " + std::to_string(bins) +
                 " bins: sum of squared z-scores (ESS standard errors) <= K + 4 sqrt(2K)",
             chi2, bins + 4 * std::sqrt(2.0 * bins));
  return {mh, hmc};
}

void trace_pictures(lesson::Lesson& L, const TracePlots& t) {
  const auto mh = mcmc::coordinate(t.mh, 0), hmc = mcmc::coordinate(t.hmc, 0);
  std::vector<std::vector<double>> rows;
  for (size_t i = 0; i < 400; ++i) rows.push_back({static_cast<double>(i), mh[0][i], mh[1][i], hmc[0][i], hmc[1][i]});
  L.write_csv("trace.csv", {"step", "mh_chain1_x1", "mh_chain2_x1", "hmc_chain1_x1", "hmc_chain2_x1"}, rows);
  plot::line_plot(L.path("trace.csv"), L.path("trace.png"), "trace of x1 on the banana: MH vs HMC", "step", "x1", 1,
                  {{2, "MH chain 1"}, {3, "MH chain 2"}, {4, "HMC chain 1"}, {5, "HMC chain 2"}});
  const auto ra = mcmc::autocorrelation(mh[0], 100), rb = mcmc::autocorrelation(hmc[0], 100);
  rows.clear();
  for (size_t k = 0; k < ra.size() && k < rb.size(); ++k) rows.push_back({static_cast<double>(k), ra[k], rb[k]});
  L.write_csv("autocorrelation.csv", {"lag", "mh_x1", "hmc_x1"}, rows);
  plot::line_plot(L.path("autocorrelation.csv"), L.path("autocorrelation.png"), "autocorrelation of x1 on the banana", "lag",
                  "autocorrelation", 1, {{2, "random-walk MH"}, {3, "HMC"}});
  std::cout << "   wrote trace.png, autocorrelation.png\n";
}

// ------------------------------------------------------------ 2. Gibbs
void gibbs(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 2. Gibbs sampling of N(mu, Sigma), mu = (1, -1), sd (1, sqrt 2), correlation 0.9\n";
  const double r = 0.9, s2 = std::sqrt(2.0), c12 = r * 1 * s2;
  const double det = 1 * 2 - c12 * c12;
  const Tensor mu = Tensor::from_vector(std::vector<double>{1, -1}, {2});
  const Tensor Lambda = Tensor::from_vector(std::vector<double>{2 / det, -c12 / det, -c12 / det, 1 / det}, {2, 2});
  // Bayes' rule by quadrature: p(x1 | x2) = p(x1, x2) / int p(x1, x2) dx1, its mean and variance
  const double x2 = 0.3;
  const int n = 4000;
  const double lo = -12, h = 24.0 / n;
  std::vector<double> p(n + 1), xp(n + 1), xxp(n + 1);
  for (int k = 0; k <= n; ++k) {
    const double x1 = lo + k * h, d1 = x1 - 1, d2 = x2 + 1;
    p[k] = std::exp(-0.5 * (Lambda.at(0) * d1 * d1 + 2 * Lambda.at(1) * d1 * d2 + Lambda.at(3) * d2 * d2));
    xp[k] = x1 * p[k], xxp[k] = x1 * x1 * p[k];
  }
  const double Z = lesson::simpson(p, h), m = lesson::simpson(xp, h) / Z, v = lesson::simpson(xxp, h) / Z - m * m;
  const mcmc::Conditional cond = mcmc::gaussian_conditional(mu, Lambda, Tensor::from_vector(std::vector<double>{0, x2}, {1, 2}), 0);
  L.check_close("E[x1 | x2 = 0.3]: the Gibbs conditional's formula vs Bayes' rule by quadrature", cond.mean.at(0), m, 1e-9);
  L.check_close("Var[x1 | x2 = 0.3]: 1 / Lambda_11 vs Bayes' rule by quadrature", cond.variance, v, 1e-9);
  const mcmc::Run run = mcmc::gibbs_gaussian(mu, Lambda, gen.normal({4, 2}, 0, 3, DType::Float64), {200, L.options().quick ? 4000 : 20000}, gen);
  const auto a = mcmc::coordinate(run, 0), b = mcmc::coordinate(run, 1);
  const ChainMean mb = chain_mean(b);
  const ChainMean cov = chain_mean(map2(a, b, [](double u, double w) { return (u - 1) * (w + 1); }));
  L.check_close("the Gibbs chain's mean of x2 vs -1 (4 standard errors, ESS " + fmt(mb.ess, 3) + ")", mb.mean, -1, 4 * mb.se);
  L.check_close("the Gibbs chain's covariance of x1 and x2 vs 0.9 sqrt(2) (4 standard errors)", cov.mean, c12, 4 * cov.se);
}

// ------------------------------------------------------------ 2b. Gibbs for the EM chapter's Bernoulli mixture
void gibbs_mixture(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const int64_t K = 2, D = 16, N = quick ? 300 : 1000;
  std::cout << "\n-- 2b. Gibbs sampling of the EM chapter's Bernoulli mixture (K = 2, D = 16, " << N
            << " points), Dirichlet(1) and Beta(1, 1) priors\n";
  models::BernoulliMixture truth;
  truth.weights = Tensor::from_vector(std::vector<double>{0.35, 0.65}, {K});
  truth.means = gen.uniform({K, D}, 0.1, 0.9, DType::Float64);
  const Tensor X = truth.sample(N, gen).to(DType::Float64);
  const models::BernoulliMixture start = models::init_bernoulli_mixture(K, D, gen);
  // (3b) against the EM chapter's E-step at the same parameters
  const Tensor r_gibbs = mcmc::assignment_probabilities(X, start.weights, start.means);
  const double worst = max(abs(r_gibbs - models::e_step(start, X))).item();
  L.check_close("Gibbs's assignment probabilities p(z_n = k | x_n, pi, theta) vs the EM chapter's E-step (largest difference)", worst, 0.0, 1e-12);
  // The chain, and EM from the same start (with a = 1 its M-step is the Beta(1, 1) posterior's mean
  // of theta at hard assignments): the posterior means should sit within their posterior sd of EM's.
  const mcmc::BernoulliMixtureDraws draws = mcmc::gibbs_bernoulli_mixture(X, start.weights, start.means, 1, 1, 1, {100, quick ? 400 : 1500}, gen);
  models::BernoulliMixture em = start;
  for (int it = 0; it < 200; ++it) em = models::m_step_bernoulli(X, models::e_step(em, X), 1.0);
  std::vector<double> mean(K * D + K, 0.0), sq(K * D + K, 0.0);
  const double S = static_cast<double>(draws.means.size());
  for (size_t i = 0; i < draws.means.size(); ++i) {
    const std::vector<double> m = draws.means[i].to_vector(), w = draws.weights[i].to_vector();
    for (int64_t j = 0; j < K * D; ++j) mean[j] += m[j] / S, sq[j] += m[j] * m[j] / S;
    for (int64_t k = 0; k < K; ++k) mean[K * D + k] += w[k] / S, sq[K * D + k] += w[k] * w[k] / S;
  }
  // the components' labels: match the chain's to EM's by the closer assignment of theta
  const std::vector<double> em_m = em.means.to_vector(), em_w = em.weights.to_vector();
  double straight = 0, swapped = 0;
  for (int64_t d = 0; d < D; ++d)
    straight += std::abs(mean[d] - em_m[d]) + std::abs(mean[D + d] - em_m[D + d]),
        swapped += std::abs(mean[d] - em_m[D + d]) + std::abs(mean[D + d] - em_m[d]);
  const bool swap = swapped < straight;
  double worst_z = 0;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t d = 0; d <= D; ++d) {  // d = D: the weight
      const int64_t kk = swap ? 1 - k : k;
      const size_t j = d < D ? static_cast<size_t>(kk * D + d) : static_cast<size_t>(K * D + kk);
      const double sd = std::sqrt(std::max(sq[j] - mean[j] * mean[j], 1e-12));
      const double e = d < D ? em_m[k * D + d] : em_w[k];
      worst_z = std::max(worst_z, std::abs(mean[j] - e) / sd);
    }
  std::cout << "   " << draws.means.size() << " sweeps kept; weights: Gibbs posterior mean (" << fmt(mean[K * D + (swap ? 1 : 0)], 3) << ", "
            << fmt(mean[K * D + (swap ? 0 : 1)], 3) << "), EM (" << fmt(em_w[0], 3) << ", " << fmt(em_w[1], 3) << "), truth (0.35, 0.65)\n";
  L.check_le("Gibbs's posterior means of the 34 parameters vs EM's estimates: the largest |difference| / posterior sd <= 3",
             worst_z, 3.0);
}

// ------------------------------------------------------------ 3. the leapfrog integrator
void leapfrog_checks(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 3. HMC's leapfrog on the banana, with the engine's gradients\n";
  {  // the engine's gradient vs the analytic one: d/dx1 = -x1 + 2 x1 (x2 - x1^2) / s^2, d/dx2 = -(x2 - x1^2) / s^2
    const Tensor x = banana_draws(64, gen);
    const mcmc::ValueAndGradient vg = mcmc::value_and_gradient(banana, x);
    double worst = 0, engine = 0, analytic = 0;
    for (int64_t i = 0; i < 64; ++i) {
      const double a = x.at(2 * i), b = x.at(2 * i + 1), s2 = kBananaS * kBananaS;
      const double g[2] = {-a + 2 * a * (b - a * a) / s2, -(b - a * a) / s2};
      for (int d = 0; d < 2; ++d)
        if (std::abs(vg.gradient.at(2 * i + d) - g[d]) >= worst)
          worst = std::abs(vg.gradient.at(2 * i + d) - g[d]), engine = vg.gradient.at(2 * i + d), analytic = g[d];
    }
    L.check_close("grad log pi: the engine vs the formula (the component that differs most, 64 points)", engine, analytic,
                  1e-12 * std::max(1.0, std::abs(analytic)));
  }
  const Tensor x = banana_draws(64, gen), p = gen.normal({64, 2}, 0, 1, DType::Float64);
  {  // reversibility: L steps, flip the momentum, L steps, flip: back at the start
    mcmc::PhasePoint z = mcmc::leapfrog(banana, mcmc::phase_point(banana, x, p), 0.02, 50);
    z.p = -z.p;
    z = mcmc::leapfrog(banana, z, 0.02, 50);
    const double back = max(abs(z.x - x)).item(), moment = max(abs(z.p + p)).item();
    L.check_close("reversibility: 50 steps forward, momentum flipped, 50 back: max |x - x0| + max |p + p0|", back + moment, 0.0, 1e-12);
  }
  {  // volume: the Jacobian of (x, p) -> (x', p') by the engine (the leapfrog on the graph), its determinant
    Tensor x0 = slice(x, 0, 0, 1).contiguous_copy().set_requires_grad(true);
    Tensor p0 = slice(p, 0, 0, 1).contiguous_copy().set_requires_grad(true);
    const mcmc::PhasePoint z = mcmc::leapfrog(banana, mcmc::phase_point(banana, x0, p0, true), 0.1, 3, true);
    const Tensor out = concat({reshape(z.x, {2}), reshape(z.p, {2})}, 0);
    std::vector<double> J(16);
    for (int i = 0; i < 4; ++i) {
      const std::vector<Tensor> g = grad({select(out, 0, i)}, {x0, p0}, {}, true);
      for (int j = 0; j < 2; ++j) J[i * 4 + j] = g[0].at(j), J[i * 4 + 2 + j] = g[1].at(j);
    }
    const double log_det = linalg::log_abs_det(Tensor::from_vector(J, {4, 4}));  // LAPACK's LU
    L.check_close("volume preservation: log |det| of the Jacobian of 3 leapfrog steps (by the engine, through its Hessian)", log_det, 0.0, 1e-12);
  }
  {  // the energy error over a fixed time 1.6 shrinks as eps^2
    std::vector<std::vector<double>> rows;
    std::vector<double> le, lh;
    for (double eps : {0.1, 0.05, 0.025, 0.0125}) {
      const int steps = static_cast<int>(std::lround(1.6 / eps));
      const mcmc::PhasePoint z0 = mcmc::phase_point(banana, x, p);
      const mcmc::PhasePoint z1 = mcmc::leapfrog(banana, z0, eps, steps);
      const double err = mean(abs(mcmc::hamiltonian(z1) - mcmc::hamiltonian(z0))).item();
      rows.push_back({eps, err});
      le.push_back(std::log(eps)), lh.push_back(std::log(err));
    }
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (size_t i = 0; i < le.size(); ++i) mx += le[i] / le.size(), my += lh[i] / lh.size();
    for (size_t i = 0; i < le.size(); ++i) sxy += (le[i] - mx) * (lh[i] - my), sxx += (le[i] - mx) * (le[i] - mx);
    const double slope = sxy / sxx;
    L.write_csv("energy_error.csv", {"eps", "mean_abs_energy_error"}, rows);
    plot::line_plot(L.path("energy_error.csv"), L.path("energy_error.png"), "leapfrog: |H(end) - H(start)| over time 1.6",
                    "step size eps", "mean |energy error|", 1, {{2, "64 banana phase points"}}, true, true);
    L.check_close("the leapfrog's energy error is O(eps^2): the slope of log |dH| against log eps", slope, 2.0, 0.15);
    L.metric("hmc_energy_error_slope", slope);
  }
}

}  // namespace

namespace {

// ------------------------------------------------------------ 4. MCMC vs VI on one posterior
// The ELBO chapter's model with k = 2 latents: z ~ N(0, I), x | z ~ N(W z, s^2 I) in 3 dimensions; W's
// columns nearly parallel, so the posterior N(m, S), S^-1 = Lambda = I + W^T W / s^2, is strongly correlated.
struct Posterior {
  double s2 = 0.25;
  std::vector<double> W = {1, 1, 1, 0.8, 0.5, 0.7}, x = {1.5, 1.0, 0.8};  // W [3, 2] row-major, x [3]
  double Lambda[2][2], S[2][2], m[2];
  Posterior() {
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) {
        Lambda[i][j] = i == j;
        for (int r = 0; r < 3; ++r) Lambda[i][j] += W[r * 2 + i] * W[r * 2 + j] / s2;
      }
    const double det = Lambda[0][0] * Lambda[1][1] - Lambda[0][1] * Lambda[1][0];
    S[0][0] = Lambda[1][1] / det, S[1][1] = Lambda[0][0] / det, S[0][1] = S[1][0] = -Lambda[0][1] / det;
    double wx[2] = {0, 0};  // W^T x / s^2
    for (int i = 0; i < 2; ++i)
      for (int r = 0; r < 3; ++r) wx[i] += W[r * 2 + i] * x[r] / s2;
    for (int i = 0; i < 2; ++i) m[i] = S[i][0] * wx[0] + S[i][1] * wx[1];
  }
  // log p(z) + log p(x | z) up to a constant, z [C, 2]: what HMC samples and VI's ELBO averages
  mcmc::LogDensity log_joint() const {
    const Tensor Wt = Tensor::from_vector(W, {3, 2}), xt = Tensor::from_vector(x, {1, 3});
    const double s2v = s2;
    return [Wt, xt, s2v](const Tensor& z) {
      return sum(z * z, {1}) * -0.5 - sum(pow(xt - mm(z, Wt, false, true), 2.0), {1}) / (2 * s2v);
    };
  }
};

struct VIResult {
  double mu[2], var[2];
};

// Mean-field Gaussian VI: q = N(mu, diag sigma^2), the ELBO E_q[log p(x, z)] + H[q] maximised with
// reparameterised gradients from the engine (Adam); the variances are averaged over the last quarter.
VIResult mean_field_vi(const Posterior& post, int steps, Generator& gen) {
  const mcmc::LogDensity lj = post.log_joint();
  Tensor mu = Tensor::zeros({1, 2}, DType::Float64).set_requires_grad(true);
  Tensor log_sigma = Tensor::zeros({1, 2}, DType::Float64).set_requires_grad(true);
  optim::Adam adam({mu, log_sigma}, 0.02);
  VIResult r{{0, 0}, {0, 0}};
  int kept = 0;
  for (int s = 0; s < steps; ++s) {
    adam.zero_grad();
    const Tensor z = mu + exp(log_sigma) * gen.normal({256, 2}, 0, 1, DType::Float64);
    const Tensor elbo = mean(lj(z)) + sum(log_sigma);  // H[q] = sum log sigma + const
    neg(elbo).backward();
    adam.step();
    if (s >= steps * 3 / 4) {
      for (int i = 0; i < 2; ++i) r.mu[i] += mu.at(i), r.var[i] += std::exp(2 * log_sigma.at(i));
      ++kept;
    }
  }
  for (int i = 0; i < 2; ++i) r.mu[i] /= kept, r.var[i] /= kept;
  return r;
}

void mcmc_vs_vi(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const Posterior post;
  const double rho = post.S[0][1] / std::sqrt(post.S[0][0] * post.S[1][1]);
  std::cout << "\n-- 4. The same posterior by HMC and by mean-field VI: p(z | x) = N(m, S), m = (" << fmt(post.m[0]) << ", "
            << fmt(post.m[1]) << "), correlation " << fmt(rho) << "\n";
  const Tensor x0 = gen.normal({4, 2}, 0, 3, DType::Float64);
  const mcmc::Schedule sched{500, quick ? 8000 : 40000};
  // L = 7 steps of ~0.2: about a quarter turn of the posterior's long axis (sd ~0.93), where successive
  // draws are least correlated in both the mean and the square
  const mcmc::Run h = mcmc::hmc(post.log_joint(), x0, {0.2, 7}, sched, gen);
  const mcmc::Run mh = mcmc::random_walk_metropolis(post.log_joint(), x0, 0.25, sched, gen);
  double ess_h = 1e300, ess_mh = 1e300, rhat = 0, rhat_mh = 0, ratio_h = 0;
  for (int d = 0; d < 2; ++d) {
    const auto c = mcmc::coordinate(h, d);
    ess_h = std::min(ess_h, mcmc::effective_sample_size(c));
    ess_mh = std::min(ess_mh, mcmc::effective_sample_size(mcmc::coordinate(mh, d)));
    rhat = std::max(rhat, mcmc::split_rhat(c));
    rhat_mh = std::max(rhat_mh, mcmc::split_rhat(mcmc::coordinate(mh, d)));
    const ChainMean mean_d = chain_mean(c);
    std::vector<std::vector<double>> sq = c;
    for (auto& chain : sq)
      for (double& a : chain) a = (a - post.m[d]) * (a - post.m[d]);
    const ChainMean var_d = chain_mean(sq);
    L.check_close("HMC's mean of z_" + std::to_string(d + 1) + " vs the closed form m (4 standard errors, ESS " + fmt(mean_d.ess, 3) + ")",
                  mean_d.mean, post.m[d], 4 * mean_d.se);
    L.check_close("HMC's variance of z_" + std::to_string(d + 1) + " / S_" + std::to_string(d + 1) + std::to_string(d + 1) +
                      " vs 1 (the bar: within 5%; its standard error " + fmt(var_d.se / post.S[d][d], 2) + ")",
                  var_d.mean / post.S[d][d], 1.0, 0.05);
    ratio_h += var_d.mean / post.S[d][d] / 2;
  }
  {
    const ChainMean cov = chain_mean(map2(mcmc::coordinate(h, 0), mcmc::coordinate(h, 1),
                                          [&](double a, double b) { return (a - post.m[0]) * (b - post.m[1]); }));
    L.check_close("HMC's covariance of z_1 and z_2 vs the closed form S_12 (4 standard errors)", cov.mean, post.S[0][1], 4 * cov.se);
  }
  L.check_le("HMC's split R-hat over 4 chains (the larger of the two coordinates) <= 1.01", rhat, 1.01);
  const VIResult vi = mean_field_vi(post, quick ? 1500 : 4000, gen);
  double ratio_vi = 0;
  for (int d = 0; d < 2; ++d) {
    L.check_close("VI's variance of z_" + std::to_string(d + 1) + " vs the mean-field optimum 1 / Lambda_" + std::to_string(d + 1) +
                      std::to_string(d + 1) + " (2% of it: stochastic gradients)",
                  vi.var[d], 1 / post.Lambda[d][d], 0.02 / post.Lambda[d][d]);
    ratio_vi += vi.var[d] / post.S[d][d] / 2;
  }
  std::cout << "   marginal variance / the true one: HMC " << fmt(ratio_h) << ", mean-field VI " << fmt(ratio_vi)
            << " (the known factor 1 / (Lambda_ii S_ii) = 1 - rho^2 = " << fmt(1 - rho * rho) << ")\n"
            << "   ESS per second (the worse coordinate): HMC " << fmt(ess_h / h.seconds, 3) << " (" << fmt(ess_h, 3) << " in "
            << fmt(h.seconds, 2) << " s), random-walk MH " << fmt(ess_mh / mh.seconds, 3) << " (" << fmt(ess_mh, 3) << " in "
            << fmt(mh.seconds, 2) << " s)\n"
            << "   split R-hat: HMC " << fmt(rhat, 4) << ", random-walk MH " << fmt(rhat_mh, 4) << " (the same number of steps)\n";
  L.metric("hmc_marginal_variance_ratio", ratio_h);
  L.metric("vi_marginal_variance_ratio", ratio_vi);
  L.metric("hmc_ess_per_second", ess_h / h.seconds);
  L.metric("mh_ess_per_second", ess_mh / mh.seconds);
  L.metric("rhat_max", rhat);
  // the picture of the notes: HMC's draws, the posterior's and VI's 2-sigma ellipses
  std::vector<std::vector<double>> rows;
  const std::vector<double> s = h.samples.to_vector();
  const size_t draws = s.size() / 2, stride = std::max<size_t>(1, draws / 3000);
  for (size_t i = 0; i < draws; i += stride) rows.push_back({s[2 * i], s[2 * i + 1], 0});
  for (int k = 0; k < 200; ++k) {
    const double a = 2 * M_PI * k / 200, u = 2 * std::cos(a), v = 2 * std::sin(a);
    const double l11 = std::sqrt(post.S[0][0]), l21 = post.S[1][0] / l11, l22 = std::sqrt(post.S[1][1] - l21 * l21);
    rows.push_back({post.m[0] + l11 * u, post.m[1] + l21 * u + l22 * v, 1});
    rows.push_back({vi.mu[0] + std::sqrt(vi.var[0]) * u, vi.mu[1] + std::sqrt(vi.var[1]) * v, 2});
  }
  L.write_csv("posterior.csv", {"z1", "z2", "what"}, rows);
  plot::scatter_plot(L.path("posterior.csv"), L.path("posterior.png"),
                     "HMC draws (0), the posterior's 2-sigma ellipse (1), mean-field VI's (2)", 3);
  std::cout << "   wrote posterior.png\n";
}

// ------------------------------------------------------------ 5. annealed importance sampling
void ais_checks(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  std::cout << "\n-- 5. Annealed importance sampling from f_0 = N(0, 2^2 I) to the banana (Z = 2 pi s = " << fmt(2 * M_PI * kBananaS) << ")\n";
  const mcmc::LogDensity f0 = [](const Tensor& x) { return sum(x * x, {1}) * (-1.0 / 8) - std::log(2 * M_PI * 4); };
  {
    const Tensor x0 = gen.normal({1000, 2}, 0, 2, DType::Float64);
    const double via_ais = mcmc::log_mean_exp(mcmc::ais(f0, banana, x0, {.betas = {0, 1}, .step_sizes = {}}, gen).to_vector());
    std::vector<double> log_ratio;
    for (int64_t i = 0; i < 1000; ++i) {
      const double a = x0.at(2 * i), b = x0.at(2 * i + 1);
      log_ratio.push_back(-a * a / 2 - std::pow(b - a * a, 2) / (2 * kBananaS * kBananaS) - (-(a * a + b * b) / 8 - std::log(8 * M_PI)));
    }
    L.check_close("AIS with no intermediate distribution (betas 0, 1) is importance sampling: log Z on the same 1000 draws",
                  via_ais, mcmc::log_mean_exp(log_ratio), 1e-12);
  }
  {
    const int R = quick ? 10 : 30;
    std::vector<double> z;
    for (int r = 0; r < R; ++r) {
      mcmc::AISOptions o{.betas = mcmc::sigmoid_betas(quick ? 50 : 200), .step_size = 0.2, .leapfrog_steps = 5, .step_sizes = {}};
      o.step_sizes = mcmc::ais_step_sizes(f0, banana, gen.normal({64, 2}, 0, 2, DType::Float64), o, gen);  // from a pilot run
      const Tensor w = mcmc::ais(f0, banana, gen.normal({64, 2}, 0, 2, DType::Float64), o, gen);
      z.push_back(std::exp(mcmc::log_mean_exp(w.to_vector())));
    }
    const auto [m, se] = lesson::mean_and_se(z);
    L.check_close("AIS is unbiased for Z: the mean of " + std::to_string(R) + " estimates of Z (64 chains each) vs 2 pi s (4 standard errors)",
                  m, 2 * M_PI * kBananaS, 4 * se);
  }
}

void ais_vae(lesson::Lesson& L, double minutes, Generator& gen) {
  const auto& opt = L.options();
  const bool quick = opt.quick;
  models::Recipe recipe = models::recipe(quick ? "digits_vae" : "fashion_vae");
  const data::DataSet d = lesson::harness::data_for(recipe.data, opt);
  lesson::harness::Settings s = lesson::harness::settings_from(opt);
  s.minutes = minutes;
  std::cout << "\n-- 5b. log p(x) of the VAE chapter's model (" << recipe.tag << ") by AIS, IWAE and the ELBO\n";
  const lesson::harness::Obtained got = lesson::harness::obtain(recipe, d, s, gen);
  std::cout << "   the model: " << got.title << ", " << got.source << "\n";
  auto& vae = dynamic_cast<models::VAE&>(*got.model);
  vae.eval();
  // The decoder runs in float32, as trained (twice as fast as float64; its log p(x | z) of a few
  // hundred nats is exact to ~1e-5 nats, far below the Monte Carlo errors); the chains are float64.
  const int64_t n = quick ? 6 : 12, K = 16, Z = vae.latent_dim(), D = vae.data_dim(), pilot_images = 2;
  const Tensor x = reshape(slice(d.test, 0, 0, n), {n, D});
  auto repeated = [&](const Tensor& images, int64_t first, int64_t count) {  // each image K times: [count K, D]
    std::vector<int64_t> rep;
    for (int64_t i = first; i < first + count; ++i)
      for (int64_t k = 0; k < K; ++k) rep.push_back(i);
    return index_select(images, 0, Tensor::from_indices(rep, {count * K}));
  };
  const Tensor xr = repeated(x, 0, n);
  // the pilot runs that set AIS's step sizes use two other test images
  const Tensor xp = repeated(reshape(slice(d.test, 0, n, n + pilot_images), {pilot_images, D}), 0, pilot_images);
  const double log_norm = 0.5 * static_cast<double>(Z) * std::log(2 * M_PI);
  const mcmc::LogDensity prior = [&](const Tensor& z) { return sum(z * z, {1}) * -0.5 - log_norm; };
  auto joint_of = [&](const Tensor& images) {
    return mcmc::LogDensity([&vae, &prior, images](const Tensor& z) {
      return prior(z) + vae.log_likelihood(images, z.to(DType::Float32)).to(DType::Float64);
    });
  };
  const mcmc::LogDensity joint = joint_of(xr), pilot_joint = joint_of(xp);
  // IWAE with 1000 samples and the ELBO (averaged over 200 draws) on the same images, per image
  std::vector<double> iwae, elbo;
  {
    NoGradGuard ng;
    const std::vector<double> iw = vae.iwae(x, 1000, gen).to_vector();  // float32 throughout, as the VAE lesson
    iwae = iw;
    std::vector<double> e(n, 0.0);
    for (int r = 0; r < 200; ++r) {
      const std::vector<double> v = vae.elbo_terms(x, gen).elbo.to_vector();
      for (int64_t i = 0; i < n; ++i) e[i] += v[i] / 200;
    }
    elbo = e;
  }
  std::vector<std::vector<double>> rows;
  std::vector<int64_t> Ts = quick ? std::vector<int64_t>{10, 100, 1000} : std::vector<int64_t>{10, 100, 1000};
  std::vector<double> first, last;
  for (int64_t T : Ts) {
    progress::Stopwatch clock;
    mcmc::AISOptions o{.betas = mcmc::sigmoid_betas(T), .step_size = 0.05, .leapfrog_steps = 5, .step_sizes = {}};
    o.step_sizes = mcmc::ais_step_sizes(prior, pilot_joint, gen.normal({pilot_images * K, Z}, 0, 1, DType::Float64), o, gen);
    const Tensor w = mcmc::ais(prior, joint, gen.normal({n * K, Z}, 0, 1, DType::Float64), o, gen);
    const std::vector<double> wv = w.to_vector();
    std::vector<double> per_image(n);
    for (int64_t i = 0; i < n; ++i) per_image[i] = mcmc::log_mean_exp(std::vector<double>(wv.begin() + i * K, wv.begin() + (i + 1) * K));
    const auto [m, se] = lesson::mean_and_se(per_image);
    std::cout << "   AIS, T = " << std::setw(4) << T << ", " << K << " chains per image: log p(x) ~ " << fmt(m, 6) << " +- " << fmt(se, 2)
              << " nats (" << fmt(clock.seconds(), 3) << " s)\n";
    rows.push_back({static_cast<double>(T), m, lesson::mean_and_se(iwae).first, lesson::mean_and_se(elbo).first});
    if (first.empty()) first = per_image;
    last = per_image;
  }
  auto diff = [&](const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> v(a.size());
    for (size_t i = 0; i < a.size(); ++i) v[i] = a[i] - b[i];
    return lesson::mean_and_se(v);
  };
  const auto [iw_m, iw_se] = lesson::mean_and_se(iwae);
  const auto [el_m, el_se] = lesson::mean_and_se(elbo);
  const auto [ais_m, ais_se] = lesson::mean_and_se(last);
  std::cout << "   on the first " << n << " test images: ELBO " << fmt(el_m, 6) << ", IWAE-1000 " << fmt(iw_m, 6) << ", AIS (T = "
            << Ts.back() << ") " << fmt(ais_m, 6) << " nats (standard errors over images " << fmt(el_se, 2) << ", " << fmt(iw_se, 2)
            << ", " << fmt(ais_se, 2) << ")\n";
  const auto [d_ai, d_ai_se] = diff(last, iwae);
  const auto [d_ie, d_ie_se] = diff(iwae, elbo);
  const auto [d_tt, d_tt_se] = diff(last, first);
  L.check_le("AIS's log p(x) is at or above IWAE-1000's: IWAE - AIS, mean over images, <= 2 standard errors of the difference",
             -d_ai, 2 * d_ai_se);
  L.check_le("IWAE-1000 is at or above the ELBO: ELBO - IWAE, mean over images, <= 0", -d_ie, 0.0);
  L.check_le("more annealing steps tighten AIS: AIS(T = " + std::to_string(Ts.front()) + ") - AIS(T = " + std::to_string(Ts.back()) +
                 ") <= 2 standard errors",
             -d_tt, 2 * d_tt_se);
  L.write_csv("ais_vs_iwae.csv", {"T", "ais_log_px_nats", "iwae1000_log_px_nats", "elbo_nats"}, rows);
  plot::line_plot(L.path("ais_vs_iwae.csv"), L.path("ais_vs_iwae.png"), "log p(x) of " + recipe.tag + ", first test images", "AIS steps T",
                  "nats", 1, {{2, "AIS"}, {3, "IWAE-1000"}, {4, "ELBO"}}, false, true);
  std::cout << "   wrote ais_vs_iwae.png\n";
  L.metric("ais_log_px_vae", ais_m);
  L.metric("ais_log_px_vae_stderr", ais_se);
  L.metric("iwae_log_px_vae", iw_m);
  L.metric("iwae_log_px_vae_stderr", iw_se);
  L.metric("elbo_vae", el_m);
  L.metric("elbo_vae_stderr", el_se);
  L.metric("ais_images", static_cast<double>(n));
}

}  // namespace

namespace {

// ------------------------------------------------------------ 7. energies and scores
// The 8 Gaussians toy, noised: x = a x_0 + noise of variance v - a, x_0 ~ (1/8) sum_k N(m_k, s0^2 I), is
// (1/8) sum_k N(a m_k, (a^2 s0^2 + v') I). Here `var` is the components' total variance a^2 s0^2 + v'.
struct NoisedMixture {
  Tensor centres;  // [8, 2] float64
  double a = 1, var = 0;
  // log p(x) by logsumexp (what finite differences differentiate)
  double log_density(double x, double y) const {
    std::vector<double> t;
    for (int64_t k = 0; k < centres.size(0); ++k)
      t.push_back(-(std::pow(x - a * centres.at(2 * k), 2) + std::pow(y - a * centres.at(2 * k + 1), 2)) / (2 * var));
    return mcmc::log_mean_exp(t) - std::log(2 * M_PI * var);
  }
  // the score in closed form: sum_k r_k(x) (a m_k - x) / var, r_k the components' posterior weights
  std::array<double, 2> score(double x, double y) const {
    std::vector<double> lw;
    for (int64_t k = 0; k < centres.size(0); ++k)
      lw.push_back(-(std::pow(x - a * centres.at(2 * k), 2) + std::pow(y - a * centres.at(2 * k + 1), 2)) / (2 * var));
    const double mx = *std::max_element(lw.begin(), lw.end());
    double z = 0, sx = 0, sy = 0;
    for (int64_t k = 0; k < centres.size(0); ++k) {
      const double r = std::exp(lw[k] - mx);
      z += r, sx += r * (a * centres.at(2 * k) - x), sy += r * (a * centres.at(2 * k + 1) - y);
    }
    return {sx / z / var, sy / z / var};
  }
};

void score_identities(lesson::Lesson& L, Generator& gen) {
  std::cout << "\n-- 7. Scores: the 8 Gaussians (sd 0.2 on the circle of radius 2), noised\n";
  const data::Modes modes = data::toy_modes(data::Toy::EightGaussians);
  const double s0 = modes.sigma;
  {  // the closed-form score vs central differences of log p_sigma
    const NoisedMixture p{modes.centres, 1, s0 * s0 + 0.3 * 0.3};
    double worst = 0, a = 0, b = 0;
    const Tensor pts = gen.normal({100, 2}, 0, 2, DType::Float64);
    for (int64_t i = 0; i < 100; ++i) {
      const double x = pts.at(2 * i), y = pts.at(2 * i + 1), h = 1e-5;
      const auto s = p.score(x, y);
      const double fd[2] = {(p.log_density(x + h, y) - p.log_density(x - h, y)) / (2 * h),
                            (p.log_density(x, y + h) - p.log_density(x, y - h)) / (2 * h)};
      for (int d = 0; d < 2; ++d)
        if (std::abs(s[d] - fd[d]) >= worst) worst = std::abs(s[d] - fd[d]), a = s[d], b = fd[d];
    }
    L.check_close("the noised mixture's score (sigma = 0.3): closed form vs central differences of log p (worst of 100 points)", a, b, 1e-6);
  }
  // The diffusion chapter's eps-prediction: x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps. The best predictor
  // E[eps | x_t] is -sqrt(1 - abar) grad log p_t(x_t); route 2 averages eps over x_0 ~ data weighted by q(x_t | x_0).
  const models::NoiseSchedule sched = models::NoiseSchedule::linear(1000);
  const int64_t N = L.options().quick ? 100000 : 400000;
  const Tensor x0 = data::sample_toy(data::Toy::EightGaussians, N, gen).to(DType::Float64);
  for (int64_t t : {100, 400}) {
    const double ab = sched.alpha_bar[t], sig = std::sqrt(1 - ab), sa = std::sqrt(ab);
    const double xt = sa * 2 + 0.3, yt = 0.4;  // near the first mode's noised image
    const NoisedMixture pt{modes.centres, sa, ab * s0 * s0 + 1 - ab};
    double sw = 0, se = 0, sww = 0;
    std::vector<double> w(N), e(N);
    for (int64_t i = 0; i < N; ++i) {
      const double dx = xt - sa * x0.at(2 * i), dy = yt - sa * x0.at(2 * i + 1);
      w[i] = std::exp(-(dx * dx + dy * dy) / (2 * sig * sig));
      e[i] = dx / sig;
      sw += w[i], se += w[i] * e[i];
    }
    const double est = se / sw;
    for (int64_t i = 0; i < N; ++i) sww += w[i] * w[i] * (e[i] - est) * (e[i] - est);
    const double stderr_ = std::sqrt(sww) / sw;  // the self-normalised estimate's standard error (delta method)
    L.check_close("t = " + std::to_string(t + 1) + ": E[eps_1 | x_t] by weighting " + std::to_string(N) +
                      " data draws vs -sqrt(1 - abar_t) times the score (4 standard errors)",
                  est, -sig * pt.score(xt, yt)[0], 4 * stderr_);
  }
}

// The noise-conditional score network: s(x, sigma) = net(x, log sigma) / sigma (Song & Ermon 2019's
// scaling), so that the denoising loss sigma^2 |s + z / sigma|^2 = |net + z|^2 is eps-prediction.
struct ScoreNet {
  std::shared_ptr<nn::Sequential> net;
  Tensor score(const Tensor& x, const Tensor& sigma) {  // x [N, 2], sigma [N, 1]
    return net->forward(concat({x, log(sigma)}, 1)) / sigma;
  }
};

std::vector<double> geometric(double hi, double lo, int n) {
  std::vector<double> s(n);
  for (int i = 0; i < n; ++i) s[i] = hi * std::pow(lo / hi, static_cast<double>(i) / (n - 1));
  return s;
}

double energies_and_scores(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const data::Toy toy = data::Toy::EightGaussians;
  const data::Modes modes = data::toy_modes(toy);
  const int64_t n_eval = quick ? 600 : 1500;
  const Tensor train = data::sample_toy(toy, 20000, gen), held_out = data::sample_toy(toy, n_eval, gen);
  const double reference = models::energy_distance(held_out, data::sample_toy(toy, n_eval, gen));
  const double gaussian = models::energy_distance(held_out, models::sample_fitted_gaussian(train, n_eval, gen, 0, "the toy's covariance"));
  double trained = 0;  // seconds in the two training loops
  // ---- denoising score matching over 10 noise levels, Adam, batch 256
  const std::vector<double> sigmas = geometric(3.0, 0.05, 10);
  const Tensor sig_t = Tensor::from_vector(std::vector<float>(sigmas.begin(), sigmas.end()), {10});
  ScoreNet sn{nn::mlp<nn::SiLU>({3, 128, 128, 2}, gen)};
  const int steps = L.epochs(15, 60) * static_cast<int>(train.size(0) / 256);  // --epochs: passes over the 20,000 points
  std::cout << "\n-- 7b. Denoising score matching on 8 Gaussians: s(x, sigma), 10 levels 3 ... 0.05, " << steps << " steps\n";
  {
    progress::Stopwatch clock;
    optim::Adam adam(sn.net->parameters(), L.lr(2e-3));
    progress::ProgressBar bar("dsm", steps);
    for (int s = 0; s < steps; ++s) {
      adam.zero_grad();
      const Tensor x = index_select(train, 0, gen.randint({256}, 0, train.size(0)));
      const Tensor sigma = reshape(index_select(sig_t, 0, gen.randint({256}, 0, 10)), {256, 1});
      const Tensor z = gen.normal({256, 2});
      const Tensor loss = mean(sum(pow(sn.score(x + sigma * z, sigma) * sigma + z, 2.0), {1}));
      loss.backward();
      adam.step();
      bar.update(s + 1, "loss " + fmt(loss.item(), 3));
    }
    bar.finish();
    trained += clock.seconds();
  }
  {  // Vincent (2011): DSM loss(s) - DSM loss(true score) = E sigma^2 |s - grad log p_sigma|^2, on the same draws
    NoGradGuard ng;
    const int64_t n = quick ? 4000 : 20000;
    const Tensor x = data::sample_toy(toy, n, gen);
    const Tensor sigma = reshape(index_select(sig_t, 0, gen.randint({n}, 0, 10)), {n, 1});
    const Tensor z = gen.normal({n, 2});
    const Tensor xt = x + sigma * z;
    const Tensor s_net = sn.score(xt, sigma).to(DType::Float64);
    std::vector<double> truth(2 * n);
    for (int64_t i = 0; i < n; ++i) {
      const double sg = sigma.at(i);
      const auto sc = NoisedMixture{modes.centres, 1, modes.sigma * modes.sigma + sg * sg}.score(xt.at(2 * i), xt.at(2 * i + 1));
      truth[2 * i] = sc[0], truth[2 * i + 1] = sc[1];
    }
    const Tensor s_true = Tensor::from_vector(truth, {n, 2});
    const Tensor sg = sigma.to(DType::Float64), zz = z.to(DType::Float64);
    const std::vector<double> loss_net = sum(pow(s_net * sg + zz, 2.0), {1}).to_vector(),
                              loss_true = sum(pow(s_true * sg + zz, 2.0), {1}).to_vector(),
                              explicit_ = sum(pow((s_net - s_true) * sg, 2.0), {1}).to_vector();
    std::vector<double> gap(n), cross(n);
    for (int64_t i = 0; i < n; ++i) gap[i] = loss_net[i] - loss_true[i], cross[i] = gap[i] - explicit_[i];
    const auto [g, g_se] = lesson::mean_and_se(gap);
    const auto [e, e_se] = lesson::mean_and_se(explicit_);
    const auto [c, c_se] = lesson::mean_and_se(cross);
    L.check_close("denoising = explicit score matching: DSM loss(net) - DSM loss(true score) vs E sigma^2 |s_net - s_true|^2 (4 SE of the difference)",
                  g, e, 4 * c_se);
    std::cout << "   the network's remaining error E sigma^2 |s_net - s_true|^2 = " << fmt(e) << " +- " << fmt(e_se, 2)
              << " (the true score's own DSM loss: " << fmt(lesson::mean_and_se(loss_true).first) << ")\n";
    (void)g_se;
    // the baseline: the score of the best single Gaussian N(mu, C), noised: -(C + sigma^2 I)^-1 (x~ - mu)
    const models::FeatureStats fit = models::feature_stats(train);
    const double m0 = fit.mean.at(0), m1 = fit.mean.at(1), c00 = fit.cov.at(0), c01 = fit.cov.at(1), c11 = fit.cov.at(3);
    std::vector<double> gauss_err(n);
    for (int64_t i = 0; i < n; ++i) {
      const double s2 = std::pow(sigma.at(i), 2), a = c00 + s2, b = c01, d = c11 + s2, det = a * d - b * b;
      const double u = xt.at(2 * i) - m0, v = xt.at(2 * i + 1) - m1;
      const double g0 = -(d * u - b * v) / det, g1 = -(-b * u + a * v) / det;
      gauss_err[i] = s2 * (std::pow(g0 - truth[2 * i], 2) + std::pow(g1 - truth[2 * i + 1], 2));
    }
    const auto [eg, eg_se] = lesson::mean_and_se(gauss_err);
    L.check_le("the trained network's score is closer to the true score than the best Gaussian's: E sigma^2 |s - s_true|^2, same draws",
               e, eg);
    (void)eg_se;
  }
  // ---- annealed Langevin dynamics with the learned score; 4 trajectories kept for the picture
  std::vector<std::vector<double>> traj;
  const mcmc::Score score = [&](const Tensor& x, int64_t level) {
    const Tensor sigma = Tensor::full({x.size(0), 1}, sigmas[static_cast<size_t>(level)]);
    const Tensor s = sn.score(x, sigma);
    const std::vector<double> v = x.to_vector();
    for (int c = 0; c < 4; ++c) traj.push_back({v[2 * c], v[2 * c + 1], static_cast<double>(c)});
    return s;
  };
  // step eps sigma_i^2 / sigma_L^2, with eps T = 2.5 sigma_L^2 over the T steps of a level: measured on this toy
  // (T = 100; 2 networks), a tenth of that leaves chains far out (energy distance 0.025, 302 of 1,500 beyond
  // radius 2.8), 4x or 16x more moves mass between modes along the learned score's errors (0.007-0.04, 0.03-0.11)
  const int levels_steps = quick ? 40 : 100;
  const Tensor dsm_samples = mcmc::annealed_langevin(score, sigmas, gen.normal({n_eval, 2}, 0, 3), levels_steps,
                                                     2.5 * sigmas.back() * sigmas.back() / levels_steps, gen);
  const double dsm = models::energy_distance(held_out, dsm_samples);
  // ---- an energy-based model p(x) ~ exp(-E(x)) by persistent contrastive divergence with Langevin sampling
  auto energy = nn::mlp<nn::SiLU>({2, 128, 128, 1}, gen);
  const mcmc::LogDensity log_p = [&](const Tensor& x) { return neg(reshape(energy->forward(x), {x.size(0)})); };
  const mcmc::Score ebm_score = [&](const Tensor& x, int64_t) { return mcmc::value_and_gradient(log_p, x).gradient; };
  Tensor buffer = gen.uniform({8192, 2}, -3, 3);
  const int ebm_steps = L.epochs(4, 30) * static_cast<int>(train.size(0) / 256);
  std::cout << "\n-- 7c. An energy-based model by persistent contrastive divergence: 20 Langevin steps a step, " << ebm_steps << " steps\n";
  {
    progress::Stopwatch clock;
    optim::Adam adam(energy->parameters(), L.lr(1e-3), 0.0, 0.999);
    progress::ProgressBar bar("ebm", ebm_steps);
    for (int s = 0; s < ebm_steps; ++s) {
      const Tensor idx = gen.randint({256}, 0, buffer.size(0));
      Tensor neg_x = index_select(buffer, 0, idx).contiguous_copy();
      for (int64_t i = 0; i < 13; ++i) {  // 5% of the chains start afresh
        const int64_t r = gen.randint(0, 256);
        neg_x.data<float>()[2 * r] = static_cast<float>(gen.uniform01() * 6 - 3);
        neg_x.data<float>()[2 * r + 1] = static_cast<float>(gen.uniform01() * 6 - 3);
      }
      neg_x.bump_version("ebm restart");
      neg_x = mcmc::annealed_langevin(ebm_score, {1.0}, neg_x, 20, 0.005, gen).detach().contiguous_copy();
      for (int64_t i = 0; i < 256; ++i) {  // back into the buffer
        const int64_t r = static_cast<int64_t>(idx.at(i));
        buffer.data<float>()[2 * r] = neg_x.data<float>()[2 * i], buffer.data<float>()[2 * r + 1] = neg_x.data<float>()[2 * i + 1];
      }
      buffer.bump_version("ebm buffer");
      adam.zero_grad();
      const Tensor pos = energy->forward(index_select(train, 0, gen.randint({256}, 0, train.size(0))));
      const Tensor negE = energy->forward(neg_x);
      const Tensor loss = mean(pos) - mean(negE) + 0.1 * (mean(pos * pos) + mean(negE * negE));
      loss.backward();
      adam.step();
      bar.update(s + 1, "loss " + fmt(loss.item(), 3));
    }
    bar.finish();
    trained += clock.seconds();
  }
  const Tensor ebm_samples =
      mcmc::annealed_langevin(ebm_score, {1.0}, slice(buffer, 0, 0, n_eval).contiguous_copy(), 200, 0.005, gen).detach();
  const double ebm = models::energy_distance(held_out, ebm_samples);
  std::cout << "   energy distance to " << n_eval << " held-out points: DSM + annealed Langevin " << fmt(dsm) << ", EBM " << fmt(ebm)
            << "; references: two real samples " << fmt(reference) << ", the best single Gaussian " << fmt(gaussian) << "\n";
  L.check_le("DSM + annealed Langevin's samples are closer to the data than the best Gaussian's (energy distance)", dsm, gaussian);
  L.check_le("the EBM's Langevin samples are closer to the data than the best Gaussian's (energy distance)", ebm, gaussian);
  L.metric("dsm_energy_distance", dsm);
  L.metric("ebm_energy_distance", ebm);
  L.metric("energy_distance_real_reference", reference);
  L.metric("energy_distance_gaussian_reference", gaussian);
  L.metric("energy_distance_samples", static_cast<double>(n_eval));
  // pictures: the samples, and 8 annealed-Langevin trajectories from noise to the modes
  std::vector<std::vector<double>> rows;
  const std::vector<double> a = dsm_samples.to_vector(), b = ebm_samples.to_vector(), h = held_out.to_vector();
  for (int64_t i = 0; i < n_eval; ++i)
    rows.push_back({h[2 * i], h[2 * i + 1], 0}), rows.push_back({a[2 * i], a[2 * i + 1], 1}), rows.push_back({b[2 * i], b[2 * i + 1], 2});
  L.write_csv("scores_samples.csv", {"x", "y", "what"}, rows);
  plot::scatter_plot(L.path("scores_samples.csv"), L.path("scores_samples.png"), "held-out data (0), DSM + annealed Langevin (1), EBM (2)", 3, 4);
  L.write_csv("langevin_trajectories.csv", {"x", "y", "chain"}, traj);
  plot::scatter_plot(L.path("langevin_trajectories.csv"), L.path("langevin_trajectories.png"),
                     "annealed Langevin: 4 chains from noise to the modes (every step)", 3, 4);
  std::cout << "   wrote scores_samples.png, langevin_trajectories.png\n";
  return trained;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("mcmc", "Markov chain Monte Carlo beside VI: MH, Gibbs, HMC, AIS, energies and scores");
  double minutes = 3;
  L.app().add_option("--minutes", minutes, "Training time of the VAE when the VAE chapter's checkpoint is not there (runs/vae)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  return L.run(argc, argv, [&] {
    Generator gen(L.options().seed);
    discrete_chain(L, gen);
    trace_pictures(L, banana_mh(L, gen));
    gibbs(L, gen);
    gibbs_mixture(L, gen);
    leapfrog_checks(L, gen);
    mcmc_vs_vi(L, gen);
    ais_checks(L, gen);
    ais_vae(L, minutes, gen);
    score_identities(L, gen);
    // metrics.json's train_seconds: the trainer's (the VAE, when it had to be trained) and the score network's and the EBM's
    train::add_training_seconds(energies_and_scores(L, gen));
  });
}
