// dgm/models/vae.cpp
#include "models/vae.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"
#include "models/conditional.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/linalg.h"
#include "models/toolkit/trainer.h"

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
    prior_tril_ = register_buffer("prior_tril", Tensor::zeros({classes, latent_dim, latent_dim}));
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

bool VAE::full_covariance_prior() const {
  if (!class_prior_) return false;
  for (double t : prior_tril_.to_vector())
    if (t != 0) return true;
  return false;
}

// Forward substitution, row by row: u_a = (v_a - sum_{k<a} T_ak u_k) / exp(l_a / 2)
Tensor VAE::whiten(const Tensor& v, const Tensor& y) const {
  const Tensor diag = exp(index_select(prior_lv_, 0, y).to(v.dtype()) * 0.5);  // [N, d]
  const Tensor T = index_select(prior_tril_, 0, y).to(v.dtype());              // [N, d, d]
  std::vector<Tensor> rows;
  for (int64_t a = 0; a < latent_; ++a) {
    Tensor r = select(v, 1, a);  // [N, c]
    if (a > 0) r = r - squeeze(matmul(unsqueeze(slice(select(T, 1, a), 1, 0, a), 1), stack(rows, 1)), 1);  // [N,1,a] @ [N,a,c]
    rows.push_back(r / unsqueeze(select(diag, 1, a), 1));
  }
  return stack(rows, 1);
}

// KL(N(mu, diag s^2) || N(m, L L^T)) = 1/2 |L^-1 (mu - m)|^2 + 1/2 |L^-1 diag(s)|_F^2 + sum_j log L_jj - 1/2 sum_j (1 + log s_j^2)
Tensor VAE::kl_to_prior(const Tensor& mu, const Tensor& logvar, const Tensor& y) const {
  const dist::Normal q{mu, logvar};
  if (!class_prior_ || !y.defined()) return dist::sum_per_example(q.kl_to_standard());  // closed form (eq. 4)
  const Tensor m = prior_mean(y, mu.size(0), mu.dtype()), l = prior_logvar(y, mu.size(0), mu.dtype());
  if (!full_covariance_prior()) return dist::sum_per_example(q.kl_to({m, l}));  // two diagonal Gaussians
  const Tensor a = whiten(unsqueeze(mu - m, 2), y);                                             // [N, d, 1]
  std::vector<double> identity(static_cast<size_t>(latent_ * latent_), 0.0);
  for (int64_t j = 0; j < latent_; ++j) identity[static_cast<size_t>(j * latent_ + j)] = 1;
  const Tensor eye = Tensor::from_vector(identity, {latent_, latent_}).to(mu.dtype());
  const Tensor b = whiten(unsqueeze(exp(logvar * 0.5), 1) * eye, y);                            // L^-1 diag(s): [N, d, d]
  return (sum(square(a), {1, 2}) + sum(square(b), {1, 2}) + sum(l, {1}) - sum(logvar + 1.0, {1})) * 0.5;
}

Tensor VAE::prior_log_prob(const Tensor& z, const Tensor& y) const {
  if (!class_prior_ || !y.defined()) return dist::sum_per_example(dist::Normal::standard(z.shape(), z.dtype()).log_prob(z));
  const Tensor m = prior_mean(y, z.size(0), z.dtype()), l = prior_logvar(y, z.size(0), z.dtype());
  if (!full_covariance_prior()) return dist::sum_per_example(dist::Normal{m, l}.log_prob(z));
  // log N(z; m, L L^T) = -1/2 |L^-1 (z - m)|^2 - sum_j log L_jj - d/2 log 2 pi
  const Tensor u = whiten(unsqueeze(z - m, 2), y);
  return (sum(square(u), {1, 2}) + sum(l, {1}) + static_cast<double>(latent_) * std::log(2 * M_PI)) * -0.5;
}

std::pair<double, double> VAE::refit_class_prior(const Tensor& x, const Tensor& y) {
  if (!class_prior_) throw Error("VAE::refit_class_prior: the model has no prior per class (config \"prior\": \"class\")");
  check_labels(y, x.size(0), classes_, "VAE::refit_class_prior");
  NoGradGuard ng;
  const int64_t n = x.size(0), d = latent_, chunk = 2000;
  // one pass of the encoder: the posteriors q(z | x, y), kept for the KL before and after
  std::vector<Posterior> q;
  std::vector<Tensor> labels;
  for (int64_t s = 0; s < n; s += chunk) {
    labels.push_back(slice(y, 0, s, std::min(n, s + chunk)));
    q.push_back(encode(slice(x, 0, s, std::min(n, s + chunk)), labels.back()));
  }
  auto mean_kl = [&] {
    double total = 0;
    for (size_t i = 0; i < q.size(); ++i) total += sum(kl_to_prior(q[i].mu, q[i].logvar, labels[i])).item();
    return total / static_cast<double>(n);
  };
  const double before = mean_kl();
  // the aggregate posterior's first and second moments per class, in double: E[z z^T] = diag sigma^2 + mu mu^T
  std::vector<double> count(classes_), first(classes_ * d), second(classes_ * d * d);
  for (size_t i = 0; i < q.size(); ++i) {
    const std::vector<double> mu = q[i].mu.to_vector(), lv = q[i].logvar.to_vector(), lab = labels[i].to_vector();
    for (size_t e = 0; e < lab.size(); ++e) {
      const auto c = static_cast<int64_t>(lab[e]);
      count[c] += 1;
      const double* m = &mu[e * d];
      for (int64_t a = 0; a < d; ++a) {
        first[c * d + a] += m[a];
        second[(c * d + a) * d + a] += std::exp(lv[e * d + a]);
        for (int64_t b = 0; b < d; ++b) second[(c * d + a) * d + b] += m[a] * m[b];
      }
    }
  }
  std::vector<double> mean(classes_ * d), logvar(classes_ * d), tril(classes_ * d * d, 0.0);
  for (int64_t c = 0; c < classes_; ++c) {
    if (count[c] == 0)
      throw Error("VAE::refit_class_prior: class " + std::to_string(c) + " has no examples among the " + std::to_string(n) + " given");
    std::vector<double> S(d * d);
    for (int64_t a = 0; a < d; ++a) mean[c * d + a] = first[c * d + a] / count[c];
    for (int64_t a = 0; a < d; ++a)
      for (int64_t b = 0; b < d; ++b) S[a * d + b] = second[(c * d + a) * d + b] / count[c] - mean[c * d + a] * mean[c * d + b];
    const Tensor L = linalg::cholesky(Tensor::from_vector(S, {d, d}), "the aggregate posterior's covariance of class " + std::to_string(c));
    for (int64_t a = 0; a < d; ++a) {  // L = diag(exp(l / 2)) + T
      logvar[c * d + a] = 2 * std::log(L.at(a * d + a));
      for (int64_t b = 0; b < a; ++b) tril[(c * d + a) * d + b] = L.at(a * d + b);
    }
  }
  prior_mu_.copy_(Tensor::from_vector(mean, {classes_, d}).to(prior_mu_.dtype()));
  prior_lv_.copy_(Tensor::from_vector(logvar, {classes_, d}).to(prior_lv_.dtype()));
  prior_tril_.copy_(Tensor::from_vector(tril, {classes_, d, d}).to(prior_tril_.dtype()));
  last_refit_ = {before, mean_kl()};
  return last_refit_;
}

VAE::ClassPrior VAE::class_prior() const {
  if (!class_prior_) throw Error("VAE::class_prior: the model has no prior per class (config \"prior\": \"class\")");
  NoGradGuard ng;
  std::vector<double> tril = prior_tril_.to(DType::Float64).to_vector();
  const std::vector<double> lv = prior_lv_.to(DType::Float64).to_vector();
  for (int64_t c = 0; c < classes_; ++c)
    for (int64_t a = 0; a < latent_; ++a) tril[static_cast<size_t>((c * latent_ + a) * latent_ + a)] = std::exp(0.5 * lv[static_cast<size_t>(c * latent_ + a)]);
  return {prior_mu_.clone(), Tensor::from_vector(tril, {classes_, latent_, latent_}).to(prior_mu_.dtype())};
}

std::string VAE::finish_training(const Tensor& x, const Tensor& y) {
  if (!class_prior_) return "";
  const auto [before, after] = refit_class_prior(x, y);
  std::ostringstream s;
  s << std::fixed << std::setprecision(3) << "the prior per class refitted to the aggregate posterior (full covariance): mean KL over the "
    << x.size(0) << " training examples " << before << " -> " << after << " nats";
  return s.str();
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
  Tensor kl = kl_to_prior(q.mu, q.logvar, y);                         // closed form (eq. 4; eq. 10b's prior)
  return {rec, kl, rec - kl};
}

Tensor VAE::loss(const Tensor& x, Generator& gen, const Tensor& y) {
  const Terms t = elbo_terms(x, gen, y);
  if (kl_weight == 1.0) return neg(mean(t.elbo));
  return neg(mean(t.rec - t.kl * kl_weight));  // KL warm-up: -(E_q log p(x|z) - w KL), w rising to 1
}

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
    Tensor z = posterior.rsample(gen);
    // log w = log p(x | z) + log p(z) - log q(z | x)
    Tensor log_w = log_likelihood(xs, z, ys) + prior_log_prob(z, ys) -
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
  const Tensor e = gen.normal({n, latent_}, 0, 1, dt);
  Tensor z = prior_mean(y, n, dt) + exp(prior_logvar(y, n, dt) * 0.5) * e;  // z = m_y + L_y e
  if (full_covariance_prior()) z = z + squeeze(matmul(index_select(prior_tril_, 0, y).to(dt), unsqueeze(e, 2)), 2);
  return z;
}

std::function<void(const train::StepInfo&)> kl_warmup(VAE& vae, double epochs) {
  if (!(epochs > 0)) throw Error("kl_warmup: needs epochs > 0, got " + std::to_string(epochs));
  return [&vae, epochs](const train::StepInfo& at) { vae.kl_weight = std::min(1.0, at.epochs / epochs); };
}

}  // namespace dgm::models
