// dgm/models/vae.cpp
#include "models/vae.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"
#include "models/conditional.h"
#include "models/toolkit/distributions.h"

namespace dgm::models {

VAE::VAE(int64_t data_dim, const std::vector<int64_t>& hidden, int64_t latent_dim, Decoder decoder, Generator& gen, int64_t classes,
         bool class_prior)
    : class_prior_(class_prior), data_(data_dim), latent_(latent_dim), classes_(classes), hidden_(hidden), decoder_(decoder),
      noise_(gen.seed() + 0x5eed) {
  if (hidden.empty()) throw Error("VAE: needs at least one hidden layer");
  if (classes < 0) throw Error("VAE: classes must be >= 0 (0: unconditional), got " + std::to_string(classes));
  if (class_prior && classes == 0) throw Error("VAE: a prior per class needs classes > 0");
  if (class_prior) {  // start at N(0, I) for every class
    prior_mu_ = register_parameter("prior_mu", Tensor::zeros({classes, latent_dim}));
    prior_lv_ = register_parameter("prior_logvar", Tensor::zeros({classes, latent_dim}));
  }
  encoder_ = std::make_shared<nn::Sequential>();
  int64_t prev = data_dim + classes;  // [x, onehot(y)]
  for (int64_t h : hidden) {
    encoder_->add(std::make_shared<nn::Linear>(prev, h, gen)).add(std::make_shared<nn::ReLU>());
    prev = h;
  }
  register_module("encoder", encoder_);
  mu_head_ = register_module("mu", std::make_shared<nn::Linear>(prev, latent_dim, gen));
  logvar_head_ = register_module("logvar", std::make_shared<nn::Linear>(prev, latent_dim, gen));
  decoder_net_ = std::make_shared<nn::Sequential>();
  prev = latent_dim + classes;  // [z, onehot(y)]
  for (auto it = hidden.rbegin(); it != hidden.rend(); ++it) {
    decoder_net_->add(std::make_shared<nn::Linear>(prev, *it, gen)).add(std::make_shared<nn::ReLU>());
    prev = *it;
  }
  decoder_net_->add(std::make_shared<nn::Linear>(prev, data_dim, gen));
  register_module("decoder", decoder_net_);
  if (decoder == Decoder::Gaussian) dec_logvar_ = register_parameter("decoder_logvar", Tensor::zeros({data_dim}));
}

std::string VAE::config_json() const {
  nlohmann::json c{{"data_dim", data_},
                   {"hidden", hidden_},
                   {"latent_dim", latent_},
                   {"decoder", decoder_ == Decoder::Bernoulli ? "bernoulli" : "gaussian"}};
  if (classes_ > 0) c["classes"] = classes_, c["prior"] = class_prior_ ? "class" : "standard";
  return c.dump();
}

Tensor VAE::prior_mean(const Tensor& y, int64_t n, DType dtype) const {
  if (class_prior_ && y.defined()) return index_select(prior_mu_, 0, y).to(dtype);
  return Tensor::zeros({n, latent_}, dtype);
}
Tensor VAE::prior_logvar(const Tensor& y, int64_t n, DType dtype) const {
  if (class_prior_ && y.defined()) return index_select(prior_lv_, 0, y).to(dtype);
  return Tensor::zeros({n, latent_}, dtype);
}

Tensor VAE::with_label(const Tensor& input, const Tensor& y) const {
  if (classes_ == 0) {
    if (y.defined()) throw Error("VAE: labels given to an unconditional model (classes 0)");
    return input;
  }
  if (!y.defined()) throw Error("VAE: a conditional model (" + std::to_string(classes_) + " classes) needs labels");
  check_labels(y, input.size(0), classes_, "VAE");
  return concat({input, one_hot(y, classes_, input.dtype())}, 1);
}

VAE::Posterior VAE::encode(const Tensor& x, const Tensor& y) {
  Tensor h = encoder_->forward(with_label(x, y));
  return {mu_head_->forward(h), logvar_head_->forward(h)};
}

Tensor VAE::decode(const Tensor& z, const Tensor& y) { return decoder_net_->forward(with_label(z, y)); }

Tensor VAE::log_likelihood(const Tensor& x, const Tensor& z, const Tensor& y) {
  Tensor out = decode(z, y);
  if (decoder_ == Decoder::Bernoulli) return dist::sum_per_example(dist::Bernoulli{out}.log_prob(x));
  return dist::sum_per_example(dist::Normal{out, dec_logvar_}.log_prob(x));
}

VAE::Terms VAE::elbo_terms(const Tensor& x, Generator& gen, const Tensor& y) {
  Posterior q = encode(x, y);
  const dist::Normal posterior{q.mu, q.logvar};
  Tensor z = posterior.rsample(gen);                                  // z = mu + sigma * eps   (eq. 5)
  Tensor rec = log_likelihood(x, z, y);                               // log p(x | z) (given y)
  Tensor kl = class_prior_ ? dist::sum_per_example(posterior.kl_to({prior_mean(y, x.size(0), q.mu.dtype()), prior_logvar(y, x.size(0), q.mu.dtype())}))
                          : dist::sum_per_example(posterior.kl_to_standard());  // closed form (eq. 4)
  return {rec, kl, rec - kl};
}

Tensor VAE::loss(const Tensor& x, Generator& gen, const Tensor& y) { return neg(mean(elbo_terms(x, gen, y).elbo)); }

Tensor VAE::log_prob(const Tensor& x) {
  if (classes_ > 0) return uniform_mixture_log_prob(*this, x);
  return iwae(x, iwae_k, noise_);
}

Tensor VAE::iwae(const Tensor& x, int64_t k, Generator& gen, const Tensor& y) {
  NoGradGuard ng;
  if (k < 1) throw Error("VAE::iwae: k must be at least 1");
  const int64_t n = x.size(0);
  const int64_t group = std::max<int64_t>(1, 20000 / k);  // examples per batch of k * group samples
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < n; s += group) {
    Tensor xb = slice(x, 0, s, std::min(n, s + group));
    const Tensor yb = y.defined() ? slice(y, 0, s, std::min(n, s + group)) : Tensor();
    const int64_t m = xb.size(0);
    Posterior q = encode(xb, yb);
    const Tensor ys = yb.defined() ? concat(std::vector<Tensor>(static_cast<size_t>(k), yb), 0) : Tensor();
    // k copies of the batch, stacked: row i * m + j is sample i of example j
    Tensor xs = concat(std::vector<Tensor>(static_cast<size_t>(k), xb), 0);
    Tensor mu = concat(std::vector<Tensor>(static_cast<size_t>(k), q.mu), 0);
    Tensor lv = concat(std::vector<Tensor>(static_cast<size_t>(k), q.logvar), 0);
    const dist::Normal posterior{mu, lv};
    const dist::Normal prior = class_prior_ ? dist::Normal{prior_mean(ys, mu.size(0), mu.dtype()), prior_logvar(ys, mu.size(0), mu.dtype())}
                                            : dist::Normal::standard(mu.shape(), mu.dtype());
    Tensor z = posterior.rsample(gen);
    // log w = log p(x | z) + log p(z) - log q(z | x)
    Tensor log_w = log_likelihood(xs, z, ys) + dist::sum_per_example(prior.log_prob(z)) -
                   dist::sum_per_example(posterior.log_prob(z));
    parts.push_back(logsumexp(reshape(log_w, {k, m}), {0}) - std::log(static_cast<double>(k)));  // log mean_i w_i
  }
  return concat(parts, 0);
}

Tensor VAE::decode_means(const Tensor& z, const Tensor& y) {
  NoGradGuard ng;
  Tensor out = decode(z, y);
  return decoder_ == Decoder::Bernoulli ? sigmoid(out) : out;
}

std::string VAE::log_prob_kind() const {
  return classes_ > 0 ? "log (1/K) sum_y IWAE_k(x | y), a lower bound, k = " + std::to_string(iwae_k)
                      : "IWAE lower bound, k = " + std::to_string(iwae_k);
}

Tensor VAE::sample_given(const Tensor& y, Generator& gen) {
  NoGradGuard ng;
  return draw(decode(sample_latent(y, gen), y), gen);
}

Tensor VAE::draw(const Tensor& out, Generator& gen) const {
  if (decoder_ == Decoder::Bernoulli) return dist::Bernoulli{out}.sample(gen);
  return dist::Normal{out, dec_logvar_}.sample(gen);  // log_var [D] broadcasts over the batch
}

Tensor VAE::sample(int64_t n, Generator& gen) {
  if (classes_ > 0) return sample_given(gen.randint(Shape{n}, 0, classes_), gen);  // y ~ p(y), x ~ p(x | y)
  NoGradGuard ng;
  return draw(decode(gen.normal({n, latent_}, 0, 1, mu_head_->weight.dtype())), gen);
}

Tensor VAE::sample_means(int64_t n, Generator& gen) { return decode_means(gen.normal({n, latent_}, 0, 1, mu_head_->weight.dtype())); }

Tensor VAE::sample_latent(const Tensor& y, Generator& gen) {
  NoGradGuard ng;
  const DType dt = mu_head_->weight.dtype();
  const int64_t n = y.numel();
  // z ~ p(z | y): the class's Gaussian, or N(0, I)
  return prior_mean(y, n, dt) + exp(prior_logvar(y, n, dt) * 0.5) * gen.normal({n, latent_}, 0, 1, dt);
}

}  // namespace dgm::models
