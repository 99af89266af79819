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
// that class. Every method below takes the labels y as its last
// argument (a conditional model needs them; an unconditional one refuses them).
#pragma once

#include "models/density.h"

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
  // ---- as a ConditionalDensity (classes > 0)
  int64_t classes() const override { return classes_; }
  Tensor log_prob_given(const Tensor& x, const Tensor& y) override { return iwae(x, iwae_k, noise_, y); }  // IWAE_k(x | y)
  Tensor loss_given(const Tensor& x, const Tensor& y) override { return loss(x, noise_, y); }
  Tensor sample_given(const Tensor& y, Generator& gen) override;  // z ~ p(z | y), x ~ p(x | z, y)
  Tensor sample_latent(const Tensor& y, Generator& gen);          // z ~ p(z | y) (N(0, I) without a class prior)
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
  Tensor prior_mu_, prior_lv_;  // [classes, latent] (class_prior)
  int64_t data_, latent_, classes_;
  std::vector<int64_t> hidden_;
  Decoder decoder_;
  std::shared_ptr<nn::Sequential> encoder_, decoder_net_;
  std::shared_ptr<nn::Linear> mu_head_, logvar_head_;
  Tensor dec_logvar_;  // Gaussian decoder: one learned log-variance per dimension
  Generator noise_;
};

}  // namespace dgm::models
