// dgm/models/vae.h — the variational autoencoder (Kingma & Welling 2014;
// Rezende, Mohamed & Wierstra 2014), and its importance-weighted bound
// (Burda, Grosse & Salakhutdinov 2016). Equations: docs/chapters/vae.md.
//
//   encoder  q(z | x) = N(z; mu(x), diag exp(logvar(x)))           (an MLP with two heads)
//   prior    p(z)     = N(0, I)
//   decoder  p(x | z) = Bernoulli(sigmoid(f(z)))  for binary data   (eq. 6)
//                     = N(x; f(z), diag exp(g))  for real data, g a learned log-variance
//   ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))             (eq. 3)
//           ~ log p(x | mu + sigma * eps) - KL,  eps ~ N(0, I)       (reparameterisation, eq. 5)
//   IWAE_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)],  z_i ~ q  (eq. 8)
//
// Conditional (classes > 0; docs/chapters/conditional.md): the encoder reads [x, onehot(y)] and
// the decoder [z, onehot(y)], so q(z | x, y), p(x | z, y), and p(z) stays N(0, I): the
// conditional ELBO bounds log p(x | y). With class_prior (config "prior": "class") the prior is
// learned per class, p(z | y) = N(m_y, diag exp(l_y)) (Sohn, Lee & Yan 2015's prior network, for a
// label): the class may then sit in z at no KL cost, and z ~ p(z | y) lands where the decoder saw
// that class. The class prior's covariance may be full, S_y = L_y L_y^T with
// L_y = diag(exp(l_y / 2)) + T_y (T_y strictly lower, a buffer): gradient training keeps T_y = 0,
// and refit_class_prior() then sets (m_y, S_y) to the mean and covariance of the aggregate
// posterior of class y, the Gaussian prior that maximises the ELBO for the encoder and decoder as
// they are (docs/chapters/conditional.md, eq. 10b). Every method below takes the labels y as its last
// argument (a conditional model needs them; an unconditional one refuses them).
#pragma once

#include <cmath>
#include <functional>
#include <utility>

#include "models/density.h"

namespace dgm::train {
struct StepInfo;  // models/toolkit/trainer.h
}

namespace dgm::models {

enum class Decoder { Bernoulli, Gaussian };

class VAE : public TrainableDensity, public ConditionalDensity {
 public:
  // data_dim -> hidden ... -> (mu, logvar) in latent_dim, and back.
  VAE(int64_t data_dim, const std::vector<int64_t>& hidden, int64_t latent_dim, Decoder decoder, Generator& gen,
      int64_t classes = 0, bool class_prior = false);

  struct Posterior {
    Tensor mu, logvar;  // [N, latent]
  };
  Posterior encode(const Tensor& x, const Tensor& y = Tensor());
  Tensor decode(const Tensor& z, const Tensor& y = Tensor());  // Bernoulli: logits; Gaussian: means. [N, data_dim]
  // log p(x | z) per example [N]
  Tensor log_likelihood(const Tensor& x, const Tensor& z, const Tensor& y = Tensor());

  struct Terms {
    Tensor rec;   // E_q log p(x|z) by one reparameterised sample, [N]
    Tensor kl;    // KL(q(z|x) || p(z)) in closed form, [N]
    Tensor elbo;  // rec - kl, [N]
  };
  Terms elbo_terms(const Tensor& x, Generator& gen, const Tensor& y = Tensor());
  // The training loss: negative ELBO summed over dimensions, averaged over the batch.
  Tensor loss(const Tensor& x, Generator& gen, const Tensor& y = Tensor());
  // log p(x) >= IWAE_k(x): a stable log-mean-exp over k samples per example, [N].
  Tensor iwae(const Tensor& x, int64_t k, Generator& gen, const Tensor& y = Tensor());
  // n samples: z ~ p(z), then the decoder's mean (Bernoulli: probabilities).
  Tensor sample_means(int64_t n, Generator& gen);
  Tensor decode_means(const Tensor& z, const Tensor& y = Tensor());

  // ---- as a DensityModel. Its randomness (the reparameterised noise of loss()
  // and log_prob()) comes from its own generator, seeded from `gen`'s seed.
  std::string name() const override { return "vae"; }
  // {"data_dim", "hidden", "latent_dim", "decoder": "bernoulli" | "gaussian", and a conditional model's "classes", "prior"}
  std::string config_json() const override;
  // The IWAE_k lower bound on log p(x), k = iwae_k (1: a one-sample ELBO estimate); a conditional
  // model: log (1/K) sum_y IWAE_k(x | y), a lower bound on log p(x) under the uniform p(y).
  Tensor log_prob(const Tensor& x) override;
  std::string log_prob_kind() const override;
  std::string log_prob_given_kind() const override { return "IWAE lower bound, k = " + std::to_string(iwae_k); }
  // The negative ELBO (analytic KL, one reparameterised sample), averaged over the batch.
  Tensor loss(const Tensor& x) override { return loss(x, noise_); }
  // x ~ p(x | z), z ~ p(z): Bernoulli draws, or the Gaussian decoder's draws.
  Tensor sample(int64_t n, Generator& gen) override;
  int64_t iwae_k = 1000;
  // The training loss's weight on the KL term (loss() only: every bound and evaluation keeps 1).
  // KL warm-up (Bowman et al. 2016; Sonderby et al. 2016) raises it from 0 to 1 over the first epochs.
  double kl_weight = 1.0;
  // ---- as a ConditionalDensity (classes > 0)
  int64_t classes() const override { return classes_; }
  Tensor log_prob_given(const Tensor& x, const Tensor& y) override { return iwae(x, iwae_k, noise_, y); }  // IWAE_k(x | y)
  Tensor loss_given(const Tensor& x, const Tensor& y) override { return loss(x, noise_, y); }
  Tensor sample_given(const Tensor& y, Generator& gen) override;  // z ~ p(z | y), x ~ p(x | z, y)
  Tensor sample_latent(const Tensor& y, Generator& gen);          // z ~ p(z | y) (N(0, I) without a class prior)
  // log p(z | y) per example [N] (z [N, latent]): the class prior's density, or N(0, I)'s
  Tensor prior_log_prob(const Tensor& z, const Tensor& y = Tensor()) const;
  // The class prior moment-matched to the aggregate posterior q(z | y) = mean over the examples of
  // class y of q(z | x, y) (x [N, data], y [N], every class present):
  //   m_y = mean_i mu_i,   S_y = mean_i (diag sigma_i^2 + mu_i mu_i^T) - m_y m_y^T      (eq. 10b)
  // Among Gaussian priors (full covariance) it maximises sum_i ELBO(x_i | y_i), the encoder and the
  // decoder fixed: only the KL term changes, and its prior part is a cross-entropy. Computed in
  // float64, chunked; needs "prior": "class". Returns the mean KL over x before and after.
  std::pair<double, double> refit_class_prior(const Tensor& x, const Tensor& y);
  bool full_covariance_prior() const;  // T_y != 0 for some class (after refit_class_prior)
  // After train::fit_given: refit_class_prior on the training data (a class prior only)
  std::string finish_training(const Tensor& x, const Tensor& y) override;
  // The class prior p(z | y) = N(mean[y], scale_tril[y] scale_tril[y]^T): [classes, latent] and
  // [classes, latent, latent] (L_y = diag(exp(l_y / 2)) + T_y), copies; needs "prior": "class"
  struct ClassPrior {
    Tensor mean, scale_tril;
  };
  ClassPrior class_prior() const;
  // The mean KL over the examples before and after the last refit_class_prior (NaN: none yet)
  std::pair<double, double> last_refit() const { return last_refit_; }
  Generator& noise() { return noise_; }
  Generator* noise_generator() override { return &noise_; }

  int64_t latent_dim() const { return latent_; }
  int64_t data_dim() const { return data_; }

 private:
  Tensor with_label(const Tensor& input, const Tensor& y) const;  // [input, onehot(y)] (classes > 0)
  Tensor draw(const Tensor& decoded, Generator& gen) const;       // x ~ p(x | z) from decode()'s output
  // The prior of z for labels y: N(0, I), or the class's learned Gaussian (class_prior)
  Tensor prior_mean(const Tensor& y, int64_t n, DType dtype) const;
  Tensor prior_logvar(const Tensor& y, int64_t n, DType dtype) const;
  bool class_prior_ = false;
  Tensor prior_mu_, prior_lv_;            // [classes, latent] (class_prior)
  Tensor prior_tril_;                     // [classes, latent, latent] buffer: T_y, 0 but after refit_class_prior
  std::pair<double, double> last_refit_{NAN, NAN};
  // u = L_y^{-1} v by forward substitution (v [N, latent, c]), the class prior's L_y per example
  Tensor whiten(const Tensor& v, const Tensor& y) const;
  // KL(N(mu, diag exp(logvar)) || p(z | y)) per example [N], closed form (any prior)
  Tensor kl_to_prior(const Tensor& mu, const Tensor& logvar, const Tensor& y) const;
  int64_t data_, latent_, classes_;
  std::vector<int64_t> hidden_;
  Decoder decoder_;
  std::shared_ptr<nn::Sequential> encoder_, decoder_net_;
  std::shared_ptr<nn::Linear> mu_head_, logvar_head_;
  Tensor dec_logvar_;  // Gaussian decoder: one learned log-variance per dimension
  Generator noise_;
};

// KL warm-up as a trainer hook (train::FitOptions::before_step, which says how many epochs are done,
// counted over resumed parts): before a step at e epochs done the training loss weighs the KL term by
// min(1, e / epochs), so a resumed run continues where it stopped.
std::function<void(const train::StepInfo&)> kl_warmup(VAE& vae, double epochs);

}  // namespace dgm::models
