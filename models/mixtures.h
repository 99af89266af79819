// dgm/models/mixtures.h — mixture models fitted by EM (docs/chapters/em.md).
//
// A latent class z in {1..K} with p(z = k) = pi_k, and p(x | z = k) a Gaussian
// (GaussianMixture) or a product of Bernoullis (BernoulliMixture). EM
// alternates (Bishop, PRML 9.2-9.4; Neal & Hinton 1998):
//   E-step  q(z_n) = p(z_n | x_n, theta)              (makes the ELBO tight)      eq. (2)
//   M-step  theta = argmax_theta sum_n E_q[log p(x_n, z_n | theta)]  (closed form) eq. (3)
// and log p(x | theta) = ELBO(q, theta) + KL(q || p(z | x, theta))             eq. (1)
// never decreases. Everything here is float64.
#pragma once

#include <functional>
#include <vector>

#include "autograd/random.h"
#include "models/density.h"

namespace dgm::models {

// ---------------------------------------------------------------- Gaussian mixture, full covariances
struct GaussianMixture : DensityModel {
  Tensor weights;  // [K]        pi_k
  Tensor means;    // [K, D]     mu_k
  Tensor covs;     // [K, D, D]  Sigma_k
  int64_t K() const { return weights.numel(); }
  int64_t D() const { return means.size(1); }

  // log p(x_n, z_n = k) = log pi_k + log N(x_n; mu_k, Sigma_k), [N, K]
  Tensor log_joint(const Tensor& X) const;
  // log p(x_n) = log sum_k p(x_n, z_n = k), [N]
  Tensor log_likelihood(const Tensor& X) const;
  double total_log_likelihood(const Tensor& X) const;
  // n draws: points [n, D] and their components [n] (int64)
  std::pair<Tensor, Tensor> sample_with_components(int64_t n, Generator& gen) const;

  // as a DensityModel
  std::string name() const override { return "gmm"; }
  Tensor log_prob(const Tensor& X) override { return log_likelihood(X); }
  Tensor sample(int64_t n, Generator& gen) override { return sample_with_components(n, gen).first; }
  int64_t parameter_count() const override { return K() - 1 + K() * D() + K() * D() * (D() + 1) / 2; }
};

// k-means++ (Arthur & Vassilvitskii 2007) picks K centres: the first uniformly,
// each next one with probability proportional to its squared distance to the
// nearest centre so far. Points then go to their nearest centre, and each
// cluster's weight, mean and covariance (+ floor I) start the mixture.
GaussianMixture init_kmeans_pp(const Tensor& X, int64_t K, Generator& gen, double cov_floor = 1e-6);

// E-step: responsibilities r_nk = p(z_n = k | x_n, theta), [N, K], by a stable log-sum-exp.
Tensor e_step(const GaussianMixture& m, const Tensor& X);
// M-step for responsibilities R [N, K]:
//   N_k = sum_n r_nk,  pi_k = N_k / N,  mu_k = sum_n r_nk x_n / N_k,
//   Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + floor I.
// The floor (scikit-learn's reg_covar) keeps a component from collapsing onto
// one point, where its covariance would be singular and the likelihood infinite.
GaussianMixture m_step(const Tensor& X, const Tensor& R, double cov_floor = 1e-6);

// ELBO(q, theta) = sum_n sum_k q_nk [log p(x_n, k | theta) - log q_nk]   (q_nk = 0 terms are 0)
double elbo(const Tensor& log_joint, const Tensor& Q);
// sum_n KL(q_n || p(z_n | x_n, theta))
double kl_to_posterior(const Tensor& log_joint, const Tensor& Q);

// The relabelling that best matches fitted components to reference ones (by
// squared distance of their means, over all K! permutations; K <= 8):
// component perm[k] of the fit corresponds to component k of the reference.
std::vector<int64_t> match_components(const Tensor& fitted_means, const Tensor& reference_means);

struct EMTrace {
  std::vector<double> log_likelihood;  // after each iteration, total over the data
  int iterations = 0;
  bool converged = false;
};
// Runs EM until the relative change of the log-likelihood is below `tol` or
// `max_iter` iterations. `on_iteration(it, model)` is called after each.
EMTrace fit_em(GaussianMixture& m, const Tensor& X, int max_iter, double tol, double cov_floor = 1e-6,
               const std::function<void(int, const GaussianMixture&)>& on_iteration = {});

// ---------------------------------------------------------------- the same mixture by gradient ascent
// log p(x) maximised directly with Adam through the autodiff engine. Covariances
// are parameterised by the Cholesky factor of the precision, Sigma_k^-1 = U_k^T U_k
// with U_k upper triangular and a positive (exponentiated) diagonal, so that
//   log N(x; mu, Sigma) = -D/2 log 2 pi + sum_i log U_ii - |U (x - mu)|^2 / 2
// needs no matrix inverse.
class GaussianMixtureGradient : public TrainableDensity {
 public:
  explicit GaussianMixtureGradient(const GaussianMixture& init);
  Tensor log_likelihood(const Tensor& X);  // [N], differentiable
  std::string name() const override { return "gmm_gradient"; }
  std::string config_json() const override;  // {"K", "D"}
  Tensor log_prob(const Tensor& X) override { return log_likelihood(X); }
  Tensor sample(int64_t n, Generator& gen) override { return to_mixture().sample(n, gen); }
  GaussianMixture to_mixture() const;
  Tensor logits, means, u_raw;  // [K], [K, D], [K, D, D]

 private:
  Tensor diag_mask_, upper_mask_;
};

// ---------------------------------------------------------------- mixture of Bernoullis
// p(x | z = k) = prod_d mu_kd^x_d (1 - mu_kd)^(1 - x_d) for binary x.
// M-step with a Beta(1 + a, 1 + a) prior on each mu_kd (a = `smoothing`):
// mu_kd = (sum_n r_nk x_nd + a) / (N_k + 2a), which keeps means off 0 and 1.
struct BernoulliMixture : DensityModel {
  Tensor weights;  // [K]
  Tensor means;    // [K, D]
  Tensor log_joint(const Tensor& X) const;  // [N, K]
  double total_log_likelihood(const Tensor& X) const;

  // as a DensityModel
  std::string name() const override { return "bernoulli_mixture"; }
  Tensor log_prob(const Tensor& X) override;  // log sum_k pi_k p(x | k), [N]
  Tensor sample(int64_t n, Generator& gen) override;
  int64_t parameter_count() const override { return weights.numel() - 1 + means.numel(); }
};
BernoulliMixture init_bernoulli_mixture(int64_t K, int64_t D, Generator& gen);
Tensor e_step(const BernoulliMixture& m, const Tensor& X);
BernoulliMixture m_step_bernoulli(const Tensor& X, const Tensor& R, double smoothing = 0.01);

// ---------------------------------------------------------------- a class-conditional model and Bayes' rule
// p(x, y) = p(y) p(x | y), with p(x | y) a BernoulliMixture per class
// (K = 1: naive Bayes). A generative model of the images that is also a
// classifier, by Bayes' rule:
//   p(y | x) = p(y) p(x | y) / sum_y' p(y') p(x | y')      (log domain: minus a logsumexp)
// and a density for any input: p(x) = sum_y p(y) p(x | y).
struct ClassConditionalBernoulli {
  Tensor log_prior;                      // [C]  log p(y)
  std::vector<BernoulliMixture> classes;  // p(x | y)
  Tensor log_joint(const Tensor& X) const;      // [N, C]  log p(x, y)
  Tensor log_posterior(const Tensor& X) const;  // [N, C]  log p(y | x)
  Tensor log_prob(const Tensor& X) const;       // [N]     log p(x)
  Tensor predict(const Tensor& X) const;        // [N]     argmax_y p(y | x), int64
  Tensor sample(int64_t y, int64_t n, Generator& gen) const;  // x ~ p(x | y), [n, D]
  int64_t parameter_count() const;
};
// Fits each class's mixture by EM (`iterations` steps from random means) on
// that class's rows of X [N, D] (binary, float64); p(y) = class frequencies
// with add-one smoothing. `smoothing` is the Beta prior of m_step_bernoulli.
ClassConditionalBernoulli fit_class_conditional(const Tensor& X, const Tensor& labels, int64_t classes, int64_t K,
                                                int iterations, Generator& gen, double smoothing = 1.0);

}  // namespace dgm::models
