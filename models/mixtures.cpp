// dgm/models/mixtures.cpp
#include "models/mixtures.h"

#include <algorithm>
#include <cmath>

#include "autograd/graph.h"
#include "autograd/ops.h"
#include "models/toolkit/linalg.h"

namespace dgm::models {

namespace {
constexpr double kLog2Pi = 1.8378770664093453;  // log(2 pi)

void check_data(const Tensor& X, const char* op) {
  if (X.dim() != 2 || X.dtype() != DType::Float64)
    throw Error(std::string(op) + ": expects float64 data [N, D], got " + X.shape().str() + " " + dtype_name(X.dtype()));
}

// The k-th [D, D] block of a [K, D, D] tensor, as its own matrix.
Tensor block(const Tensor& covs, int64_t k) { return reshape(slice(covs, 0, k, k + 1), {covs.size(1), covs.size(2)}); }
}  // namespace

// ---------------------------------------------------------------- GaussianMixture
// log N(x; mu, Sigma) = -1/2 [D log 2 pi + log det Sigma + |L^-1 (x - mu)|^2],  Sigma = L L^T
Tensor GaussianMixture::log_joint(const Tensor& X) const {
  check_data(X, "GaussianMixture");
  NoGradGuard ng;
  const int64_t N = X.size(0), K = this->K(), D = this->D();
  if (X.size(1) != D) throw Error("GaussianMixture: data has " + std::to_string(X.size(1)) + " dimensions, the mixture " + std::to_string(D));
  Tensor out = Tensor::empty({N, K}, DType::Float64);
  Tensor Xt = transpose(X, 0, 1);  // [D, N]
  for (int64_t k = 0; k < K; ++k) {
    Tensor L = linalg::cholesky(block(covs, k), "the covariance of component " + std::to_string(k));
    Tensor mu = reshape(slice(means, 0, k, k + 1), {D, 1});
    Tensor Z = linalg::solve_lower(L, Xt - mu);  // [D, N]
    double log_det = 0;
    for (int64_t i = 0; i < D; ++i) log_det += 2 * std::log(L.at(i * D + i));
    const double log_pi = std::log(weights.at(k));
    const double* z = Z.data<double>();
    for (int64_t n = 0; n < N; ++n) {
      double q = 0;
      for (int64_t i = 0; i < D; ++i) q += z[i * N + n] * z[i * N + n];
      out.data<double>()[n * K + k] = log_pi - 0.5 * (static_cast<double>(D) * kLog2Pi + log_det + q);
    }
  }
  return out;
}

Tensor GaussianMixture::log_likelihood(const Tensor& X) const {
  NoGradGuard ng;
  return logsumexp(log_joint(X), {1});
}

double GaussianMixture::total_log_likelihood(const Tensor& X) const { return sum(log_likelihood(X)).item(); }

std::pair<Tensor, Tensor> GaussianMixture::sample_with_components(int64_t n, Generator& gen) const {
  const int64_t D = this->D();
  Tensor X = Tensor::empty({n, D}, DType::Float64), z = Tensor::empty({n}, DType::Int64);
  std::vector<Tensor> chol;
  for (int64_t k = 0; k < K(); ++k) chol.push_back(linalg::cholesky(block(covs, k)));
  for (int64_t i = 0; i < n; ++i) {
    double u = gen.uniform01(), acc = 0;
    int64_t k = K() - 1;
    for (int64_t j = 0; j < K(); ++j)
      if (u < (acc += weights.at(j))) {
        k = j;
        break;
      }
    z.data<int64_t>()[i] = k;
    std::vector<double> e(static_cast<size_t>(D));
    for (auto& v : e) v = gen.normal01();
    for (int64_t a = 0; a < D; ++a) {  // x = mu + L e
      double v = means.at(k * D + a);
      for (int64_t b = 0; b <= a; ++b) v += chol[static_cast<size_t>(k)].at(a * D + b) * e[static_cast<size_t>(b)];
      X.data<double>()[i * D + a] = v;
    }
  }
  return {X, z};
}

GaussianMixture init_kmeans_pp(const Tensor& X, int64_t K, Generator& gen, double cov_floor) {
  check_data(X, "init_kmeans_pp");
  const int64_t N = X.size(0), D = X.size(1);
  if (K < 1 || K > N) throw Error("init_kmeans_pp: cannot pick " + std::to_string(K) + " centres from " + std::to_string(N) + " points");
  const double* x = X.data<double>();
  auto dist2 = [&](int64_t n, const std::vector<double>& c) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += (x[n * D + d] - c[static_cast<size_t>(d)]) * (x[n * D + d] - c[static_cast<size_t>(d)]);
    return s;
  };
  std::vector<std::vector<double>> centres;
  auto take = [&](int64_t n) { centres.emplace_back(x + n * D, x + (n + 1) * D); };
  take(gen.randint(0, N));
  std::vector<double> nearest(static_cast<size_t>(N));
  while (static_cast<int64_t>(centres.size()) < K) {
    double total = 0;
    for (int64_t n = 0; n < N; ++n) {
      double best = INFINITY;
      for (auto& c : centres) best = std::min(best, dist2(n, c));
      nearest[static_cast<size_t>(n)] = best;
      total += best;
    }
    double u = gen.uniform01() * total, acc = 0;
    int64_t pick = N - 1;
    for (int64_t n = 0; n < N; ++n)
      if (u < (acc += nearest[static_cast<size_t>(n)])) {
        pick = n;
        break;
      }
    take(pick);
  }
  // hard assignment to the nearest centre, then one M-step on it
  Tensor R = Tensor::zeros({N, K}, DType::Float64);
  for (int64_t n = 0; n < N; ++n) {
    int64_t best = 0;
    for (int64_t k = 1; k < K; ++k)
      if (dist2(n, centres[static_cast<size_t>(k)]) < dist2(n, centres[static_cast<size_t>(best)])) best = k;
    R.data<double>()[n * K + best] = 1;
  }
  return m_step(X, R, cov_floor);
}

Tensor e_step(const GaussianMixture& m, const Tensor& X) {
  NoGradGuard ng;
  Tensor lj = m.log_joint(X);
  return exp(lj - logsumexp(lj, {1}, /*keepdim=*/true));  // r_nk = p(x_n, k) / sum_j p(x_n, j)
}

GaussianMixture m_step(const Tensor& X, const Tensor& R, double cov_floor) {
  check_data(X, "m_step");
  NoGradGuard ng;
  const int64_t N = X.size(0), D = X.size(1), K = R.size(1);
  if (R.shape() != Shape{N, K}) throw Error("m_step: responsibilities " + R.shape().str() + " do not fit data " + X.shape().str());
  GaussianMixture m;
  Tensor Nk = sum(R, {0});                                           // [K]
  m.weights = Nk / static_cast<double>(N);
  m.means = matmul(transpose(R, 0, 1), X) / unsqueeze(Nk, 1);        // [K, D]
  m.covs = Tensor::zeros({K, D, D}, DType::Float64);
  const double *x = X.data<double>(), *r = R.data<double>(), *mu = m.means.data<double>();
  double* S = m.covs.data<double>();
  for (int64_t k = 0; k < K; ++k) {
    const double nk = Nk.at(k);
    for (int64_t n = 0; n < N; ++n) {
      const double w = r[n * K + k];
      if (w == 0) continue;
      for (int64_t a = 0; a < D; ++a)
        for (int64_t b = 0; b <= a; ++b)
          S[(k * D + a) * D + b] += w * (x[n * D + a] - mu[k * D + a]) * (x[n * D + b] - mu[k * D + b]);
    }
    for (int64_t a = 0; a < D; ++a) {
      for (int64_t b = 0; b <= a; ++b) {
        double v = nk > 0 ? S[(k * D + a) * D + b] / nk : (a == b ? 1.0 : 0.0);  // an empty component resets
        S[(k * D + a) * D + b] = S[(k * D + b) * D + a] = v;
      }
      S[(k * D + a) * D + a] += cov_floor;
    }
  }
  return m;
}

double elbo(const Tensor& lj, const Tensor& Q) {
  double s = 0;
  for (int64_t i = 0; i < Q.numel(); ++i)
    if (Q.at(i) > 0) s += Q.at(i) * (lj.at(i) - std::log(Q.at(i)));
  return s;
}

double kl_to_posterior(const Tensor& lj, const Tensor& Q) {
  NoGradGuard ng;
  Tensor log_post = lj - logsumexp(lj, {1}, true);  // log p(z = k | x_n)
  double s = 0;
  for (int64_t i = 0; i < Q.numel(); ++i)
    if (Q.at(i) > 0) s += Q.at(i) * (std::log(Q.at(i)) - log_post.at(i));
  return s;
}

std::vector<int64_t> match_components(const Tensor& fitted, const Tensor& reference) {
  const int64_t K = reference.size(0), D = reference.size(1);
  if (fitted.shape() != reference.shape() || K > 8)
    throw Error("match_components: means " + fitted.shape().str() + " and " + reference.shape().str() +
                " must have one shape, with at most 8 components");
  std::vector<int64_t> perm(static_cast<size_t>(K)), best;
  for (int64_t k = 0; k < K; ++k) perm[static_cast<size_t>(k)] = k;
  double best_d = INFINITY;
  do {
    double d = 0;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < D; ++j) d += std::pow(fitted.at(perm[static_cast<size_t>(k)] * D + j) - reference.at(k * D + j), 2);
    if (d < best_d) best_d = d, best = perm;
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

EMTrace fit_em(GaussianMixture& m, const Tensor& X, int max_iter, double tol, double cov_floor,
               const std::function<void(int, const GaussianMixture&)>& on_iteration) {
  EMTrace t;
  double prev = m.total_log_likelihood(X);
  for (int it = 1; it <= max_iter; ++it) {
    m = m_step(X, e_step(m, X), cov_floor);
    const double ll = m.total_log_likelihood(X);
    t.log_likelihood.push_back(ll);
    t.iterations = it;
    if (on_iteration) on_iteration(it, m);
    if (std::abs(ll - prev) <= tol * std::abs(prev)) {
      t.converged = true;
      break;
    }
    prev = ll;
  }
  return t;
}

// ---------------------------------------------------------------- gradient ascent
GaussianMixtureGradient::GaussianMixtureGradient(const GaussianMixture& init) {
  const int64_t K = init.K(), D = init.D();
  Tensor u = Tensor::zeros({K, D, D}, DType::Float64);
  for (int64_t k = 0; k < K; ++k) {
    // Sigma^-1 = L L^T (lower Cholesky)  =>  U = L^T is upper with Sigma^-1 = U^T U
    Tensor L = linalg::cholesky(linalg::inverse(block(init.covs, k)));
    for (int64_t a = 0; a < D; ++a)
      for (int64_t b = a; b < D; ++b) {
        const double v = L.at(b * D + a);  // U_ab = L_ba
        u.data<double>()[(k * D + a) * D + b] = a == b ? std::log(v) : v;
      }
  }
  logits = register_parameter("logits", log(init.weights));
  means = register_parameter("means", init.means.contiguous_copy());
  u_raw = register_parameter("u_raw", u);
  diag_mask_ = Tensor::zeros({1, D, D}, DType::Float64);
  upper_mask_ = Tensor::zeros({1, D, D}, DType::Float64);
  for (int64_t a = 0; a < D; ++a)
    for (int64_t b = a; b < D; ++b) (a == b ? diag_mask_ : upper_mask_).data<double>()[a * D + b] = 1;
}

Tensor GaussianMixtureGradient::log_likelihood(const Tensor& X) {
  const double D = static_cast<double>(means.size(1));
  Tensor U = u_raw * upper_mask_ + exp(u_raw) * diag_mask_;                // [K, D, D]
  Tensor diff = unsqueeze(X, 0) - unsqueeze(means, 1);                     // [K, N, D]
  Tensor z = matmul(diff, transpose(U, 1, 2));                             // rows (U (x - mu))^T
  Tensor log_n = unsqueeze(sum(u_raw * diag_mask_, {1, 2}), 1)             // sum_i log U_ii
                 - sum(square(z), {2}) * 0.5 - 0.5 * D * kLog2Pi;          // [K, N]
  return logsumexp(unsqueeze(log_softmax(logits, 0), 1) + log_n, {0});     // [N]
}

GaussianMixture GaussianMixtureGradient::to_mixture() const {
  NoGradGuard ng;
  const int64_t K = means.size(0), D = means.size(1);
  GaussianMixture m;
  m.weights = softmax(logits.detach(), 0);
  m.means = means.detach().contiguous_copy();
  Tensor U = u_raw.detach() * upper_mask_ + exp(u_raw.detach()) * diag_mask_;
  m.covs = Tensor::empty({K, D, D}, DType::Float64);
  for (int64_t k = 0; k < K; ++k) {
    Tensor Uk = block(U, k);
    Tensor S = linalg::inverse(matmul(transpose(Uk, 0, 1), Uk));
    std::copy_n(S.data<double>(), D * D, m.covs.data<double>() + k * D * D);
  }
  return m;
}

// ---------------------------------------------------------------- mixture of Bernoullis
Tensor BernoulliMixture::log_joint(const Tensor& X) const {
  check_data(X, "BernoulliMixture");
  NoGradGuard ng;
  Tensor lm = log(means), l1m = log1p(neg(means));  // [K, D]
  // log pi_k + sum_d x_d log mu_kd + (1 - x_d) log(1 - mu_kd)
  return mm(X, lm, false, true) + mm(1.0 - X, l1m, false, true) + unsqueeze(log(weights), 0);
}

double BernoulliMixture::total_log_likelihood(const Tensor& X) const {
  NoGradGuard ng;
  return sum(logsumexp(log_joint(X), {1})).item();
}

Tensor BernoulliMixture::log_prob(const Tensor& X) {
  NoGradGuard ng;
  return logsumexp(log_joint(X), {1});
}

Tensor BernoulliMixture::sample(int64_t n, Generator& gen) {
  NoGradGuard ng;
  const int64_t K = weights.numel(), D = means.size(1);
  Tensor probs = Tensor::empty({n, D}, DType::Float64);
  for (int64_t i = 0; i < n; ++i) {
    // the component by the inverse CDF of the weights, then its pixel probabilities
    double u = gen.uniform01(), acc = 0;
    int64_t k = K - 1;
    for (int64_t j = 0; j < K; ++j)
      if (u < (acc += weights.at(j))) {
        k = j;
        break;
      }
    std::copy_n(means.data<double>() + k * D, D, probs.data<double>() + i * D);
  }
  return gen.bernoulli(probs);
}

BernoulliMixture init_bernoulli_mixture(int64_t K, int64_t D, Generator& gen) {
  BernoulliMixture m;
  m.weights = Tensor::full({K}, 1.0 / static_cast<double>(K), DType::Float64);
  m.means = gen.uniform({K, D}, 0.25, 0.75, DType::Float64);
  return m;
}

Tensor e_step(const BernoulliMixture& m, const Tensor& X) {
  NoGradGuard ng;
  Tensor lj = m.log_joint(X);
  return exp(lj - logsumexp(lj, {1}, true));
}

BernoulliMixture m_step_bernoulli(const Tensor& X, const Tensor& R, double a) {
  NoGradGuard ng;
  BernoulliMixture m;
  Tensor Nk = sum(R, {0});
  m.weights = Nk / static_cast<double>(X.size(0));
  m.means = (matmul(transpose(R, 0, 1), X) + a) / (unsqueeze(Nk, 1) + 2 * a);
  return m;
}

std::string GaussianMixtureGradient::config_json() const {
  return "{\"K\": " + std::to_string(means.size(0)) + ", \"D\": " + std::to_string(means.size(1)) + "}";
}

Tensor ClassConditionalBernoulli::log_joint(const Tensor& X) const {
  NoGradGuard ng;
  std::vector<Tensor> cols;
  for (size_t y = 0; y < classes.size(); ++y)
    cols.push_back(logsumexp(classes[y].log_joint(X), {1}) + log_prior.at(static_cast<int64_t>(y)));
  return stack(cols, 1);
}

Tensor ClassConditionalBernoulli::log_posterior(const Tensor& X) const {
  NoGradGuard ng;
  const Tensor lj = log_joint(X);
  return lj - logsumexp(lj, {1}, true);
}

Tensor ClassConditionalBernoulli::log_prob(const Tensor& X) const {
  NoGradGuard ng;
  return logsumexp(log_joint(X), {1});
}

Tensor ClassConditionalBernoulli::predict(const Tensor& X) const { return argmax(log_joint(X), 1); }

Tensor ClassConditionalBernoulli::sample(int64_t y, int64_t n, Generator& gen) const {
  if (y < 0 || y >= static_cast<int64_t>(classes.size()))
    throw Error("ClassConditionalBernoulli::sample: class " + std::to_string(y) + " of " + std::to_string(classes.size()));
  BernoulliMixture m = classes[static_cast<size_t>(y)];
  return m.sample(n, gen);
}

int64_t ClassConditionalBernoulli::parameter_count() const {
  int64_t n = log_prior.numel() - 1;
  for (const auto& c : classes) n += c.parameter_count();
  return n;
}

ClassConditionalBernoulli fit_class_conditional(const Tensor& X, const Tensor& labels, int64_t C, int64_t K, int iterations,
                                                Generator& gen, double smoothing) {
  check_data(X, "fit_class_conditional");
  if (labels.dim() != 1 || labels.size(0) != X.size(0))
    throw Error("fit_class_conditional: labels must be [" + std::to_string(X.size(0)) + "], got " + labels.shape().str());
  ClassConditionalBernoulli m;
  std::vector<double> prior(static_cast<size_t>(C), 1.0);  // add-one
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(C));
  for (int64_t n = 0; n < X.size(0); ++n) {
    const auto y = static_cast<int64_t>(labels.at(n));
    if (y < 0 || y >= C) throw Error("fit_class_conditional: label " + std::to_string(y) + " outside 0.." + std::to_string(C - 1));
    rows[static_cast<size_t>(y)].push_back(n);
    prior[static_cast<size_t>(y)] += 1;
  }
  double total = 0;
  for (double v : prior) total += v;
  for (double& v : prior) v = std::log(v / total);
  m.log_prior = Tensor::from_vector(prior, {C});
  const int64_t D = X.size(1);
  for (int64_t y = 0; y < C; ++y) {
    const auto& r = rows[static_cast<size_t>(y)];
    if (r.empty()) {  // a class never seen: its pixels are coin flips
      BernoulliMixture b;
      b.weights = Tensor::ones({1}, DType::Float64);
      b.means = Tensor::full({1, D}, 0.5, DType::Float64);
      m.classes.push_back(b);
      continue;
    }
    const Tensor Xy = index_select(X, 0, Tensor::from_indices(r, {static_cast<int64_t>(r.size())}));
    const int64_t k = std::min<int64_t>(K, static_cast<int64_t>(r.size()));
    BernoulliMixture b = init_bernoulli_mixture(k, D, gen);
    for (int it = 0; it < (k == 1 ? 1 : iterations); ++it) b = m_step_bernoulli(Xy, e_step(b, Xy), smoothing);
    m.classes.push_back(b);
  }
  return m;
}

}  // namespace dgm::models
