// dgm/models/mcmc.h — Markov chain Monte Carlo: the samplers and their diagnostics.
// Equations: docs/chapters/mcmc.md (the numbers (1)...(12) below are its equations).
//
// A target is a log-density up to a constant, written with engine ops, for a batch of
// C independent chains at once:  log pi : x [C, D] float64 -> [C]. Its gradient in x
// comes from the engine (HMC, Langevin and AIS's transitions use it): the second use of
// reverse-mode autodiff in the course, beside training.
//
//   Metropolis-Hastings   accept x' ~ q(.|x) with prob min(1, pi(x') q(x|x') / (pi(x) q(x'|x)))   (1)
//   Gibbs (Gaussian)      x_i | x_-i ~ N(mu_i - sum_{j != i} L_ij (x_j - mu_j) / L_ii, 1 / L_ii)  (3)
//   HMC                   H(x, p) = -log pi(x) + |p|^2 / 2, leapfrog:                           (4)
//                           p <- p + eps/2 grad log pi(x);  x <- x + eps p;  p <- p + eps/2 grad log pi(x)
//                         accept with prob min(1, exp(H(x, p) - H(x', p')))                     (5)
//   Langevin (ULA)        x' = x + eps/2 grad log pi(x) + sqrt(eps) z;  MALA: + the MH test of (1)  (6)
//   AIS                   log w = sum_t (beta_t - beta_{t-1}) (log f_1(x_{t-1}) - log f_0(x_{t-1})),
//                         Z_1 / Z_0 = E[w]                                                        (8)
//   Annealed Langevin     ULA on the score s(x, sigma_i) for sigma_1 > ... > sigma_L         (step 7)
//   ESS, split R-hat      Stan's multi-chain estimators (Geyer's initial monotone sequence)      (9, 10)
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"

namespace dgm::models::mcmc {

// log pi(x) up to an additive constant: x [C, D] -> [C], engine ops (float64 throughout).
using LogDensity = std::function<Tensor(const Tensor& x)>;

// log pi(x) [C] and its gradient d log pi / dx [C, D], by one backward pass of the engine
// (the chains are independent, so the gradient of the sum is each chain's gradient).
struct ValueAndGradient {
  Tensor value, gradient;
};
// With create_graph the results stay on the graph of x (a Hessian-vector product away: the
// lesson differentiates a whole leapfrog step to show that it preserves volume).
ValueAndGradient value_and_gradient(const LogDensity& log_p, const Tensor& x, bool create_graph = false);

// (1) in log space: log of the acceptance probability min(1, ratio), never exp() of a
// log-density (which underflows for the log-densities of images). log_q_back = log q(x | x'),
// log_q_forward = log q(x' | x); both 0 for a symmetric proposal.
double log_acceptance(double log_p_new, double log_p_old, double log_q_back = 0, double log_q_forward = 0);

// What a run of C chains leaves.
struct Run {
  Tensor samples;              // [S, C, D] float64: the S draws kept after warm-up
  double acceptance = 0;       // mean acceptance probability over the kept steps and chains
  double step_size = 0;        // the step size used after warm-up (adapted, or as given)
  int64_t gradient_evaluations = 0;  // per chain, warm-up included
  double seconds = 0;          // wall-clock time of the whole run
};

// The draws of one coordinate, chain by chain: [C][S] (what ESS and R-hat read).
std::vector<std::vector<double>> coordinate(const Run& run, int64_t d);

struct Schedule {
  int64_t warmup = 1000;  // steps discarded (HMC and MALA adapt their step size during them)
  int64_t samples = 1000; // steps kept
};

// Random-walk Metropolis: x' = x + scale z, z ~ N(0, I), accepted by (1).
Run random_walk_metropolis(const LogDensity& log_p, const Tensor& x0, double scale, Schedule s, Generator& gen);

// Systematic-scan Gibbs sampling of N(mu, Lambda^-1) from its conditionals (3).
// mu [D], Lambda [D, D] float64; x0 [C, D].
Run gibbs_gaussian(const Tensor& mu, const Tensor& Lambda, const Tensor& x0, Schedule s, Generator& gen);
// The conditional of coordinate i given the others (3): its mean [C] and variance.
struct Conditional {
  Tensor mean;
  double variance = 0;
};
Conditional gaussian_conditional(const Tensor& mu, const Tensor& Lambda, const Tensor& x, int64_t i);

// Gibbs sampling of a Bernoulli mixture with conjugate priors (the EM chapter's model, Bayesian):
//   pi ~ Dirichlet(alpha 1),  theta_kd ~ Beta(a, b),  z_n ~ pi,  x_nd | z_n = k ~ Bernoulli(theta_kd)
// one sweep draws, in turn,
//   z_n | x_n, pi, theta    with p(z_n = k | ...) = pi_k prod_d theta_kd^x (1 - theta_kd)^(1 - x) / sum_j (...)  (3b)
//   pi | z                  ~ Dirichlet(alpha + n_1, ..., alpha + n_K)
//   theta_kd | z, x         ~ Beta(a + sum_{n: z_n = k} x_nd, b + n_k - sum_{n: z_n = k} x_nd)
// X [N, D] of 0/1 (float64); the chain starts from `start` (weights [K], means [K, D]).
struct BernoulliMixtureDraws {
  std::vector<Tensor> weights, means;  // one per kept sweep: [K], [K, D]
};
BernoulliMixtureDraws gibbs_bernoulli_mixture(const Tensor& X, const Tensor& start_weights, const Tensor& start_means,
                                              double alpha, double a, double b, Schedule s, Generator& gen);
// (3b): the assignment probabilities p(z_n = k | x_n, pi, theta), [N, K], in the log domain.
Tensor assignment_probabilities(const Tensor& X, const Tensor& weights, const Tensor& means);
// Gamma(shape, 1) draws (Marsaglia & Tsang 2000), and from them Beta and Dirichlet.
double gamma_draw(double shape, Generator& gen);
double beta_draw(double a, double b, Generator& gen);

// ---------------------------------------------------------------- Hamiltonian Monte Carlo
// A point of phase space for C chains: position, momentum, and log pi with its gradient at x.
struct PhasePoint {
  Tensor x, p, log_p, gradient;  // [C, D], [C, D], [C], [C, D]
};
PhasePoint phase_point(const LogDensity& log_p, const Tensor& x, const Tensor& p, bool create_graph = false);
// `steps` leapfrog steps of size eps (4), unit mass matrix: eps/2 momentum, then
// (position, full momentum) ... and a final half momentum step. One gradient per step.
// differentiable: the step is recorded on the engine's graph, so (x', p') can be differentiated
// with respect to the (x, p) it started from.
PhasePoint leapfrog(const LogDensity& log_p, PhasePoint z, double eps, int steps, bool differentiable = false);
// H = -log pi(x) + |p|^2 / 2 per chain [C] (the kinetic energy of a unit mass matrix).
Tensor hamiltonian(const PhasePoint& z);

// Nesterov dual averaging of log eps towards a target acceptance (Hoffman & Gelman 2014, as Stan):
// gamma 0.05, t0 10, kappa 0.75, mu = log(10 eps_0).
class DualAveraging {
 public:
  explicit DualAveraging(double initial_step, double target_acceptance);
  double step() const { return step_; }  // the step size to use next
  void update(double acceptance);        // after a warm-up transition
  double final_step() const;             // the averaged step size, used after warm-up
 private:
  double mu_, target_, h_bar_ = 0, log_bar_ = 0, step_;
  int64_t t_ = 0;
};

struct HMCOptions {
  double step_size = 0.1;        // initial step size (adapted during warm-up when adapt)
  int leapfrog_steps = 10;
  bool adapt = true;
  double target_acceptance = 0.8;
  // Each transition's step is eps * U(1 - jitter, 1 + jitter), drawn independently of the state (so
  // every transition still leaves pi invariant): a fixed eps L resonates with a Gaussian's periods and
  // makes the acceptance jump with eps (Neal 2011, sec. 5.4.2.2), which confuses the adaptation.
  double jitter = 0.2;
};
Run hmc(const LogDensity& log_p, const Tensor& x0, HMCOptions o, Schedule s, Generator& gen);

// One HMC transition of C chains at step eps (momentum drawn, L leapfrog steps, the test (5)
// per chain). Returns the new state and writes each chain's acceptance probability.
PhasePoint hmc_transition(const LogDensity& log_p, const PhasePoint& z, double eps, int steps, Generator& gen,
                          std::vector<double>* acceptance = nullptr);

// ---------------------------------------------------------------- Langevin
// (6): the unadjusted Langevin algorithm (biased by O(eps)), or with metropolis = true MALA
// (the proposal's asymmetry corrected in (1); step size adapted to 0.574 during warm-up).
Run langevin(const LogDensity& log_p, const Tensor& x0, double eps, bool metropolis, Schedule s, Generator& gen);

// Annealed Langevin dynamics (step 7) with a score s(x, i) ~ grad log p_sigma_i(x), sigma_0 > sigma_1 > ...:
// `steps` ULA steps at each level, step size eps * sigma_i^2 / sigma_last^2.
using Score = std::function<Tensor(const Tensor& x, int64_t level)>;
Tensor annealed_langevin(const Score& score, const std::vector<double>& sigmas, Tensor x, int steps, double eps,
                         Generator& gen);

// ---------------------------------------------------------------- annealed importance sampling
// (8): from f_0 (normalised, sampled exactly) to f_1 along f_beta = f_0^(1 - beta) f_1^beta, one HMC
// transition at each intermediate beta. x0 [C, D] are draws of f_0. Returns log w per chain [C];
// logmeanexp(log w) estimates log Z_1 - log Z_0 (a stochastic lower bound on it, by Jensen).
// Each transition's step size is fixed before the run, so that every transition leaves its f_beta
// invariant whatever the chains do (adapting on the chains being weighted would bias E[w]):
// `step_sizes` (one per intermediate beta, T - 1 of them), from ais_step_sizes on other chains, or
// `step_size` throughout.
struct AISOptions {
  std::vector<double> betas;  // 0 = beta_0 < ... < beta_T = 1
  double step_size = 0.05;
  int leapfrog_steps = 5;
  double target_acceptance = 0.65;  // what ais_step_sizes aims at
  std::vector<double> step_sizes;   // T - 1 values; empty: step_size throughout
};
Tensor ais(const LogDensity& log_f0, const LogDensity& log_f1, const Tensor& x0, const AISOptions& o, Generator& gen);
// A pilot AIS run from independent draws of f_0 (fewer chains, even another data point's f_1 will
// do) whose step size follows the acceptance rate towards o.target_acceptance (Robbins-Monro, from
// o.step_size): the T - 1 step sizes it used, for AISOptions::step_sizes.
std::vector<double> ais_step_sizes(const LogDensity& log_f0, const LogDensity& log_f1, const Tensor& pilot_x0, const AISOptions& o,
                                   Generator& gen);
// T + 1 betas from 0 to 1, spaced by a sigmoid (dense at both ends, as Wu et al. 2017 use).
std::vector<double> sigmoid_betas(int64_t T, double radius = 4.0);
// log (1/n) sum_i exp(a_i), stable.
double log_mean_exp(const std::vector<double>& a);

// ---------------------------------------------------------------- diagnostics
// Autocorrelation of one chain at lags 0..max_lag (the biased autocovariance / variance).
std::vector<double> autocorrelation(const std::vector<double>& x, int64_t max_lag);
// (9) The effective sample size of M chains of N draws (Stan: rho_t from the within-chain
// autocovariances and the between-chain variance, summed in pairs while positive and monotone).
double effective_sample_size(const std::vector<std::vector<double>>& chains);
// (10) Split R-hat: every chain cut in two halves, sqrt(var_plus / W) over the 2M halves.
double split_rhat(const std::vector<std::vector<double>>& chains);

}  // namespace dgm::models::mcmc
