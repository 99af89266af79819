// dgm/homework/vae/grader.cpp — the checks of the ELBO / VAE homework.
// The KL is checked against Gauss-Hermite quadrature of E_q[log q - log p] (exact for
// this integrand), the ELBO against a long-double computation and against log p(x) by
// quadrature, the IWAE bound against long-double sums; gradients by finite differences.
#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/graph.h"
#include "autograd/random.h"
#include "homework/vae/exercises.h"

namespace hw::vae {

using dgm::DType;
using dgm::Generator;

namespace {

using LD = long double;

// E_{z ~ N(m, s^2)} [log N(z; m, s^2) - log N(z; 0, 1)] by 3-point Gauss-Hermite
// (nodes 0, +-sqrt 3, weights 2/3, 1/6, 1/6): exact, the integrand being quadratic in z.
LD kl_by_quadrature(LD m, LD logvar) {
  const LD s = std::exp(logvar / 2);
  const LD nodes[3] = {0, std::sqrt(3.0L), -std::sqrt(3.0L)}, weights[3] = {2.0L / 3, 1.0L / 6, 1.0L / 6};
  LD kl = 0;
  for (int i = 0; i < 3; ++i) {
    const LD z = m + s * nodes[i];
    const LD log_q = -0.5L * nodes[i] * nodes[i] - std::log(s), log_p = -0.5L * z * z;  // the 2 pi terms cancel
    kl += weights[i] * (log_q - log_p);
  }
  return kl;
}

Tensor kl_reference(const Tensor& mu, const Tensor& logvar) {
  const int64_t N = mu.size(0), Z = mu.size(1);
  std::vector<double> out(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    LD kl = 0;
    for (int64_t j = 0; j < Z; ++j) kl += kl_by_quadrature(mu.at(n * Z + j), logvar.at(n * Z + j));
    out[static_cast<size_t>(n)] = static_cast<double>(kl);
  }
  return Tensor::from_vector(out, {N});
}

LD log_sigmoid(LD v) { return v >= 0 ? -std::log1p(std::exp(-v)) : v - std::log1p(std::exp(v)); }

// A linear decoder l = z W^T + b with fixed weights, float64.
struct LinearDecoder {
  Tensor W, b;  // [D, Z], [D]
  LinearDecoder(int64_t D, int64_t Z, uint64_t seed) {
    Generator gen(seed);
    W = gen.normal({D, Z}, 0, 1.5, DType::Float64);
    b = gen.normal({D}, 0, 0.5, DType::Float64);
  }
  Tensor operator()(const Tensor& z) const { return dgm::linear(z, W, b); }
  // log p(x | z) in long double, by the grader's own loops
  LD log_px(const std::vector<double>& x, const std::vector<LD>& z) const {
    const int64_t D = W.size(0), Z = W.size(1);
    LD total = 0;
    for (int64_t d = 0; d < D; ++d) {
      LD l = b.at(d);
      for (int64_t j = 0; j < Z; ++j) l += static_cast<LD>(W.at(d * Z + j)) * z[static_cast<size_t>(j)];
      total += x[static_cast<size_t>(d)] > 0.5 ? log_sigmoid(l) : log_sigmoid(-l);
    }
    return total;
  }
};

struct ElboCase {
  Tensor x, mu, logvar, eps;
};
ElboCase elbo_case(uint64_t seed, int64_t N, int64_t D, int64_t Z) {
  Generator gen(seed);
  return {gen.bernoulli({N, D}, 0.4, DType::Float64), gen.normal({N, Z}, 0, 1, DType::Float64),
          gen.normal({N, Z}, -0.5, 0.6, DType::Float64), gen.normal({N, Z}, 0, 1, DType::Float64)};
}

Tensor elbo_reference(const ElboCase& c, const LinearDecoder& dec) {
  const int64_t N = c.x.size(0), D = c.x.size(1), Z = c.mu.size(1);
  std::vector<double> out(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    std::vector<LD> z(static_cast<size_t>(Z));
    LD kl = 0;
    for (int64_t j = 0; j < Z; ++j) {
      const LD m = c.mu.at(n * Z + j), lv = c.logvar.at(n * Z + j);
      z[static_cast<size_t>(j)] = m + std::exp(lv / 2) * static_cast<LD>(c.eps.at(n * Z + j));
      kl += kl_by_quadrature(m, lv);
    }
    std::vector<double> x(static_cast<size_t>(D));
    for (int64_t d = 0; d < D; ++d) x[static_cast<size_t>(d)] = c.x.at(n * D + d);
    out[static_cast<size_t>(n)] = static_cast<double>(dec.log_px(x, z) - kl);
  }
  return Tensor::from_vector(out, {N});
}

// log p(x) = log int p(x | z) N(z; 0, 1) dz for a one-dimensional z, by the trapezoid rule
// on [-12, 12], and the posterior's mean and variance by the same sums.
struct Marginal {
  LD log_px, post_mean, post_var;
};
Marginal log_marginal(const std::vector<double>& x, const LinearDecoder& dec) {
  const int steps = 24000;
  const LD h = 24.0L / steps;
  std::vector<LD> terms, zs;
  LD top = -1e300L;
  for (int i = 0; i <= steps; ++i) {
    const LD z = -12 + h * i;
    const LD t = dec.log_px(x, {z}) - 0.5L * z * z - 0.5L * std::log(2 * 3.14159265358979323846L) + std::log(h) +
                 ((i == 0 || i == steps) ? std::log(0.5L) : 0);
    terms.push_back(t);
    zs.push_back(z);
    top = std::max(top, t);
  }
  LD s = 0, m1 = 0, m2 = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    const LD w = std::exp(terms[i] - top);
    s += w;
    m1 += w * zs[i];
    m2 += w * zs[i] * zs[i];
  }
  return {top + std::log(s), m1 / s, m2 / s - (m1 / s) * (m1 / s)};
}

Tensor log_mean_exp_reference(const Tensor& lw) {
  const int64_t K = lw.size(0), N = lw.size(1);
  std::vector<double> out(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    LD s = 0;
    for (int64_t k = 0; k < K; ++k) s += std::exp(static_cast<LD>(lw.at(k * N + n)));  // long double: e^-11000 .. e^11000
    out[static_cast<size_t>(n)] = static_cast<double>(std::log(s / K));
  }
  return Tensor::from_vector(out, {N});
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- gaussian_kl
  list.push_back({"gaussian_kl", "homework/vae/gaussian_kl.cpp", 10, {}});
  auto& kl = list.back().checks;
  kl.push_back({"one value per row: [N]", 1, [f](Expect& e) {
                  Generator gen(1);
                  e.shape_is("gaussian_kl(mu [4, 3], logvar [4, 3])",
                             f.gaussian_kl(gen.normal({4, 3}, 0, 1, DType::Float64), gen.normal({4, 3}, 0, 1, DType::Float64)), {4},
                             "sum over the latent dimensions (axis 1), not over the batch");
                }, essential});
  kl.push_back({"0 when q = p (mu = 0, logvar = 0)", 1, [f](Expect& e) {
                  e.tensors_near("KL(N(0, I) || N(0, I))", Tensor::zeros({3}, DType::Float64),
                                 f.gaussian_kl(Tensor::zeros({3, 5}, DType::Float64), Tensor::zeros({3, 5}, DType::Float64)), 1e-12,
                                 "every term of 1/2 (sigma^2 + mu^2 - 1 - log sigma^2) is 0 at mu = 0, sigma = 1");
                }});
  kl.push_back({"equals E_q[log q - log p] by Gauss-Hermite quadrature (3 seeds)", 5, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed);
                    const Tensor mu = gen.normal({6, 4}, 0, 2, DType::Float64), lv = gen.normal({6, 4}, 0, 1.5, DType::Float64);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    e.tensors_near("KL per row", kl_reference(mu, lv), f.gaussian_kl(mu, lv), 1e-9,
                                   "KL = 1/2 sum_j (exp(logvar) + mu^2 - 1 - logvar): mind the 1/2, and logvar is log sigma^2, not log sigma");
                  }
                }, essential});
  kl.push_back({"gradient: d KL/d mu = mu, d KL/d logvar = (exp(logvar) - 1) / 2", 3, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor mu = gen.normal({3, 2}, 0, 1, DType::Float64).set_requires_grad(true);
                  const Tensor lv = gen.normal({3, 2}, 0, 1, DType::Float64).set_requires_grad(true);
                  const auto g = dgm::grad({dgm::sum(f.gaussian_kl(mu, lv))}, {mu, lv});
                  e.tensors_near("d KL / d mu", mu.detach(), g[0], 1e-10, "write the KL with engine ops so the gradient flows");
                  e.tensors_near("d KL / d logvar", (dgm::exp(lv.detach()) - 1.0) * 0.5, g[1], 1e-10,
                                 "write the KL with engine ops so the gradient flows");
                }, essential});

  // ---------------------------------------------------------------- elbo
  list.push_back({"elbo", "homework/vae/elbo.cpp", 10, {}});
  auto& el = list.back().checks;
  el.push_back({"one value per row: [N]", 1, [f](Expect& e) {
                  const ElboCase c = elbo_case(1, 4, 5, 2);
                  const LinearDecoder dec(5, 2, 1);
                  e.shape_is("elbo(x [4, 5], ...)", f.elbo(c.x, c.mu, c.logvar, c.eps, std::cref(dec)), {4}, "sum over pixels, one ELBO per example");
                }, essential});
  el.push_back({"equals log p(x | mu + sigma eps) - KL, computed in long double (3 seeds)", 4, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    const ElboCase c = elbo_case(seed, 5, 6, 3);
                    const LinearDecoder dec(6, 3, seed + 10);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    e.tensors_near("ELBO per row", elbo_reference(c, dec), f.elbo(c.x, c.mu, c.logvar, c.eps, std::cref(dec)), 1e-8,
                                   "z = mu + exp(logvar / 2) eps (the standard deviation, not the variance); ELBO = log p(x|z) - KL, the KL subtracted");
                  }
                }, essential});
  el.push_back({"gradcheck: the ELBO is differentiable in mu and logvar (reparameterised)", 3, [f](Expect& e) {
                  const ElboCase c = elbo_case(4, 3, 4, 2);
                  const LinearDecoder dec(4, 2, 4);
                  const auto report = dgm::gradcheck([&](const std::vector<Tensor>& in) { return f.elbo(c.x, in[0], in[1], c.eps, std::cref(dec)); },
                                                     {c.mu, c.logvar});
                  e.that(report.ok, report.str(),
                         "z must be computed from mu and logvar with engine ops (no detach, no copy through data<T>()), "
                         "so the reconstruction term's gradient reaches the encoder");
                }, essential});
  el.push_back({"its average over 4000 draws of eps stays below log p(x) by quadrature (1-D z)", 2, [f](Expect& e) {
                  // q = the Gaussian with the posterior's mean and variance: a small gap, a large KL to the prior
                  const LinearDecoder dec(8, 1, 21);
                  const std::vector<double> xv{1, 0, 1, 1, 0, 0, 1, 0};
                  const Marginal m = log_marginal(xv, dec);
                  const LD log_px = m.log_px;
                  const int64_t draws = 4000;
                  Generator gen(22);
                  const Tensor x = dgm::expand(Tensor::from_vector(xv, {1, 8}), {draws, 8}).contiguous_copy();
                  const Tensor mu = Tensor::full({draws, 1}, static_cast<double>(m.post_mean), DType::Float64);
                  const Tensor lv = Tensor::full({draws, 1}, static_cast<double>(std::log(m.post_var)), DType::Float64);
                  const Tensor values = f.elbo(x, mu, lv, gen.normal({draws, 1}, 0, 1, DType::Float64), std::cref(dec));
                  e.shape_is("ELBO of 4000 draws", values, {draws}, "");
                  if (!e.ok()) return;
                  const std::vector<double> v = values.to_vector();
                  LD mean = 0, sq = 0;
                  for (double t : v) { mean += t; sq += static_cast<LD>(t) * t; }
                  mean /= draws;
                  const LD se = std::sqrt((sq / draws - mean * mean) / draws);
                  e.that(mean <= log_px + 4 * se,
                         "mean ELBO " + fmt(static_cast<double>(mean)) + " (SE " + fmt(static_cast<double>(se)) + ") is above log p(x) = " +
                             fmt(static_cast<double>(log_px)) + " by quadrature",
                         "the ELBO is a lower bound: log p(x) - ELBO = KL(q(z|x) || p(z|x)) >= 0. Did the KL's sign flip?");
                  e.that(mean > log_px - 0.5, "mean ELBO " + fmt(static_cast<double>(mean)) + " is far below log p(x) = " + fmt(static_cast<double>(log_px)),
                         "q has the posterior's mean and variance here, so the gap is small");
                }});

  // ---------------------------------------------------------------- iwae_bound
  list.push_back({"iwae_bound", "homework/vae/iwae_bound.cpp", 10, {}});
  auto& iw = list.back().checks;
  iw.push_back({"one value per example: log_w [K, N] -> [N]", 1, [f](Expect& e) {
                  Generator gen(1);
                  e.shape_is("iwae_bound(log_w [7, 3])", f.iwae_bound(gen.normal({7, 3}, 0, 1, DType::Float64)), {3},
                             "reduce over the K samples (axis 0)");
                }, essential});
  iw.push_back({"equals log (1/K) sum_k w_k in long double, K = 1, 5, 50", 3, [f](Expect& e) {
                  Generator gen(2);
                  for (int64_t K : {1, 5, 50}) {
                    const Tensor lw = gen.normal({K, 4}, -3, 2, DType::Float64);
                    e.tensors_near("K = " + std::to_string(K), log_mean_exp_reference(lw), f.iwae_bound(lw), 1e-10,
                                   "a mean, not a sum: subtract log K. K = 1 gives log w itself (the ELBO)");
                  }
                }, essential});
  iw.push_back({"stable for log w near -11000, -1000 and +1000", 3, [f](Expect& e) {
                  Generator gen(3);
                  for (double centre : {-1000.0, 1000.0, -11000.0}) {
                    const Tensor lw = gen.normal({20, 3}, centre, 3, DType::Float64);
                    e.tensors_near("log w around " + fmt(centre), log_mean_exp_reference(lw), f.iwae_bound(lw), 1e-9,
                                   "exp(-1000) underflows to 0 and exp(1000) overflows: max_k log w_k + log mean exp(log w_k - max)");
                  }
                }, essential});
  iw.push_back({"gradient: d bound / d log w_k = w_k / sum_j w_j (the normalised weights)", 3, [f](Expect& e) {
                  Generator gen(4);
                  const Tensor lw = gen.normal({6, 2}, -500, 2, DType::Float64).set_requires_grad(true);
                  const Tensor g = dgm::grad({dgm::sum(f.iwae_bound(lw))}, {lw})[0];
                  e.tensors_near("d IWAE / d log w", dgm::softmax(lw.detach(), 0), g, 1e-10,
                                 "compute it with engine ops (dgm::logsumexp, dgm::max) so that the gradient flows");
                }, essential});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "gaussian_kl") add_library_check(ex, {"kl_to_standard", "kl_to", "dist::Normal"});
    if (ex.name == "elbo") add_library_check(ex, {"elbo_terms", "kl_to_standard", "dist::Normal"});
    if (ex.name == "iwae_bound") add_library_check(ex, {"models::VAE"});
  }
  return list;
}

}  // namespace hw::vae
