// dgm/homework/em/grader.cpp — the checks of the EM homework.
// The E-step is checked against the grader's own long-double Bayes' rule (closed-form
// 2x2 inverses), the engine's models::e_step, and E_x[r_k(x)] = pi_k by sampling; the
// M-step against long-double sums, by the optimality of Q, and by EM's monotone likelihood.
#include <cmath>

#include "autograd/random.h"
#include "homework/em/exercises.h"
#include "models/mixtures.h"

namespace hw::em {

using dgm::DType;
using dgm::Generator;

namespace {

using LD = long double;

Mixture random_mixture(uint64_t seed, int64_t K, int64_t D, double spread = 3) {
  Generator gen(seed);
  Mixture m;
  std::vector<double> w(static_cast<size_t>(K));
  double total = 0;
  for (auto& v : w) total += (v = 0.3 + gen.uniform01());
  for (auto& v : w) v /= total;
  m.weights = Tensor::from_vector(w, {K});
  m.means = gen.normal({K, D}, 0, spread, DType::Float64);
  std::vector<Tensor> covs;
  for (int64_t k = 0; k < K; ++k) {
    const Tensor A = gen.normal({D, D}, 0, 0.8, DType::Float64);
    std::vector<double> eye(static_cast<size_t>(D * D), 0.0);  // + 0.5 I: well conditioned
    for (int64_t i = 0; i < D; ++i) eye[static_cast<size_t>(i * D + i)] = 0.5;
    covs.push_back(dgm::matmul(A, dgm::transpose(A, 0, 1)) + Tensor::from_vector(eye, {D, D}));
  }
  m.covs = dgm::stack(covs, 0);
  return m;
}

dgm::models::GaussianMixture engine_mixture(const Mixture& m) {
  dgm::models::GaussianMixture g;
  g.weights = m.weights;
  g.means = m.means;
  g.covs = m.covs;
  return g;
}

// Bayes' rule in long double for D = 2, with the 2x2 inverse and determinant written out.
Tensor responsibilities_2d(const Tensor& X, const Mixture& m) {
  const int64_t N = X.size(0), K = m.weights.numel();
  std::vector<double> out(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n) {
    std::vector<LD> a(static_cast<size_t>(K));
    LD top = -1e300L;
    for (int64_t k = 0; k < K; ++k) {
      const LD s00 = m.covs.at(k * 4), s01 = m.covs.at(k * 4 + 1), s11 = m.covs.at(k * 4 + 3);
      const LD det = s00 * s11 - s01 * s01;
      const LD d0 = X.at(n * 2) - m.means.at(k * 2), d1 = X.at(n * 2 + 1) - m.means.at(k * 2 + 1);
      const LD maha = (s11 * d0 * d0 - 2 * s01 * d0 * d1 + s00 * d1 * d1) / det;
      a[static_cast<size_t>(k)] = std::log(static_cast<LD>(m.weights.at(k))) - std::log(2 * 3.14159265358979323846L) -
                                  0.5L * std::log(det) - 0.5L * maha;
      top = std::max(top, a[static_cast<size_t>(k)]);
    }
    LD s = 0;
    for (LD v : a) s += std::exp(v - top);
    for (int64_t k = 0; k < K; ++k) out[static_cast<size_t>(n * K + k)] = static_cast<double>(std::exp(a[static_cast<size_t>(k)] - top) / s);
  }
  return Tensor::from_vector(out, {N, K});
}

// The M-step in long double loops.
Mixture m_step_reference(const Tensor& X, const Tensor& R, double floor) {
  const int64_t N = X.size(0), D = X.size(1), K = R.size(1);
  std::vector<double> w(static_cast<size_t>(K)), mu(static_cast<size_t>(K * D)), cov(static_cast<size_t>(K * D * D));
  for (int64_t k = 0; k < K; ++k) {
    LD Nk = 0;
    std::vector<LD> s(static_cast<size_t>(D), 0);
    for (int64_t n = 0; n < N; ++n) {
      const LD r = R.at(n * K + k);
      Nk += r;
      for (int64_t i = 0; i < D; ++i) s[static_cast<size_t>(i)] += r * X.at(n * D + i);
    }
    w[static_cast<size_t>(k)] = static_cast<double>(Nk / N);
    for (int64_t i = 0; i < D; ++i) mu[static_cast<size_t>(k * D + i)] = static_cast<double>(s[static_cast<size_t>(i)] / Nk);
    for (int64_t i = 0; i < D; ++i)
      for (int64_t j = 0; j < D; ++j) {
        LD c = 0;
        for (int64_t n = 0; n < N; ++n)
          c += static_cast<LD>(R.at(n * K + k)) * (X.at(n * D + i) - static_cast<LD>(s[static_cast<size_t>(i)] / Nk)) *
               (X.at(n * D + j) - static_cast<LD>(s[static_cast<size_t>(j)] / Nk));
        cov[static_cast<size_t>((k * D + i) * D + j)] = static_cast<double>(c / Nk + (i == j ? floor : 0));
      }
  }
  return {Tensor::from_vector(w, {K}), Tensor::from_vector(mu, {K, D}), Tensor::from_vector(cov, {K, D, D})};
}

// Points drawn from a mixture, and soft responsibilities that are not a posterior (random rows).
std::pair<Tensor, Tensor> data_and_responsibilities(uint64_t seed, int64_t N, int64_t K, int64_t D) {
  Generator gen(seed);
  const Tensor X = engine_mixture(random_mixture(seed, K, D)).sample(N, gen);
  const Tensor logits = gen.normal({N, K}, 0, 2, DType::Float64);
  return {X.to(DType::Float64), dgm::softmax(logits, 1)};
}

bool mixture_shapes(Expect& e, const Mixture& m, int64_t K, int64_t D) {
  e.shape_is("weights", m.weights, {K}, "pi_k = N_k / N, [K]");
  e.shape_is("means", m.means, {K, D}, "mu_k, [K, D]");
  e.shape_is("covs", m.covs, {K, D, D}, "Sigma_k, [K, D, D]");
  return e.ok();
}

// Q(theta) = sum_n sum_k r_nk log(pi_k N(x_n; mu_k, Sigma_k)), by the engine's mixture.
double expected_complete_log_likelihood(const Tensor& X, const Tensor& R, const Mixture& m) {
  return dgm::sum(R * engine_mixture(m).log_joint(X)).item();
}

}  // namespace

std::vector<Exercise> exercises(const Functions& f) {
  std::vector<Exercise> list;

  // ---------------------------------------------------------------- e_step
  list.push_back({"e_step", "homework/em/e_step.cpp", 10, {}});
  auto& es = list.back().checks;
  es.push_back({"R is [N, K] and each row sums to 1", 1, [f](Expect& e) {
                  const Mixture m = random_mixture(1, 3, 2);
                  Generator gen(1);
                  const Tensor R = f.e_step(gen.normal({10, 2}, 0, 3, DType::Float64), m);
                  e.shape_is("R", R, {10, 3}, "one row per point, one column per component");
                  if (e.ok()) e.tensors_near("row sums", Tensor::ones({10}, DType::Float64), dgm::sum(R, {1}), 1e-12, "normalise over the components");
                }});
  es.push_back({"equals Bayes' rule in long double (D = 2) and the engine's E-step (D = 4)", 4, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    Generator gen(seed + 100);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    const Mixture m2 = random_mixture(seed, 3, 2);
                    const Tensor X2 = gen.normal({30, 2}, 0, 4, DType::Float64);
                    e.tensors_near("R, D = 2", responsibilities_2d(X2, m2), f.e_step(X2, m2), 1e-10,
                                   "log pi_k - 1/2 (D log 2 pi + log det Sigma_k + Mahalanobis distance): keep the log det and the weights");
                    const Mixture m4 = random_mixture(seed, 4, 4);
                    const Tensor X4 = gen.normal({30, 4}, 0, 4, DType::Float64);
                    e.tensors_near("R, D = 4", dgm::models::e_step(engine_mixture(m4), X4), f.e_step(X4, m4), 1e-10,
                                   "use the full covariance (its inverse through the Cholesky factor), not its diagonal");
                  }
                }, essential});
  es.push_back({"stable: points 1000 units from every component still get rows that sum to 1", 3, [f](Expect& e) {
                  const Mixture m = random_mixture(4, 3, 2);
                  const Tensor X = Tensor::from_vector(std::vector<double>{1000, 1000, -800, 300, 0, -1200}, {3, 2});
                  const Tensor R = f.e_step(X, m);
                  e.that(R.defined() && all_finite(R), "far from every component your responsibilities are " + (R.defined() ? R.str() : std::string("undefined")),
                         "every density underflows to 0 there, and 0 / 0 = NaN: subtract the row's largest log term before exp");
                  e.tensors_near("R far away", responsibilities_2d(X, m), R, 1e-9, "normalise in the log domain: exp(a - logsumexp(a))");
                }, essential});
  es.push_back({"a posterior: averaged over 20000 points drawn from the mixture, column k gives pi_k (5 SE)", 2, [f](Expect& e) {
                  const Mixture m = random_mixture(5, 3, 2, 1.5);
                  Generator gen(5);
                  const Tensor X = engine_mixture(m).sample(20000, gen).to(DType::Float64);
                  const Tensor R = f.e_step(X, m);
                  e.shape_is("R", R, {20000, 3}, "");
                  if (!e.ok()) return;
                  const Tensor mean_r = dgm::mean(R, {0});
                  for (int64_t k = 0; k < 3; ++k) {
                    const double p = m.weights.at(k);
                    e.near("mean of r_n" + std::to_string(k), p, mean_r.at(k), 5 * std::sqrt(p * (1 - p) / 20000),
                           "r_nk = p(z = k | x_n): its average over x ~ p(x) is p(z = k) = pi_k; did you forget pi_k?");
                  }
                }});

  // ---------------------------------------------------------------- m_step
  list.push_back({"m_step", "homework/em/m_step.cpp", 10, {}});
  auto& ms = list.back().checks;
  ms.push_back({"weights [K], means [K, D], covs [K, D, D]", 1, [f](Expect& e) {
                  const auto [X, R] = data_and_responsibilities(1, 40, 3, 2);
                  mixture_shapes(e, f.m_step(X, R, 1e-6), 3, 2);
                }});
  ms.push_back({"equals the closed form computed in long double (3 seeds, D = 2 and 3)", 4, [f](Expect& e) {
                  for (uint64_t seed : {1, 2, 3}) {
                    const int64_t D = seed == 2 ? 3 : 2;
                    const auto [X, R] = data_and_responsibilities(seed, 60, 3, D);
                    const Mixture got = f.m_step(X, R, 1e-3), want = m_step_reference(X, R, 1e-3);
                    e.set_context("seed " + std::to_string(seed) + ": ");
                    if (!mixture_shapes(e, got, 3, D)) return;
                    e.tensors_near("weights", want.weights, got.weights, 1e-10, "pi_k = N_k / N with N_k = sum_n r_nk");
                    e.tensors_near("means", want.means, got.means, 1e-10, "mu_k = sum_n r_nk x_n / N_k (divide by N_k, not N)");
                    e.tensors_near("covs", want.covs, got.covs, 1e-10,
                                   "Sigma_k = sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T / N_k + floor I: centre on the NEW mean, keep the off-diagonal entries");
                  }
                }, essential});
  ms.push_back({"optimal: moving any parameter away from your answer lowers Q", 3, [f](Expect& e) {
                  const auto [X, R] = data_and_responsibilities(4, 80, 2, 2);
                  const Mixture m = f.m_step(X, R, 0.0);
                  if (!mixture_shapes(e, m, 2, 2)) return;
                  const double q = expected_complete_log_likelihood(X, R, m);
                  const std::vector<std::pair<std::string, std::function<Mixture(Mixture)>>> moves = {
                      {"mu_0 + (0.05, -0.03)", [](Mixture p) { p.means = p.means + Tensor::from_vector(std::vector<double>{0.05, -0.03, 0, 0}, {2, 2}); return p; }},
                      {"Sigma_1 * 1.05", [](Mixture p) { p.covs = p.covs * Tensor::from_vector(std::vector<double>{1, 1.05}, {2, 1, 1}); return p; }},
                      {"Sigma_0 * 0.95", [](Mixture p) { p.covs = p.covs * Tensor::from_vector(std::vector<double>{0.95, 1}, {2, 1, 1}); return p; }},
                      {"Sigma_0's off-diagonal + 0.05", [](Mixture p) { p.covs = p.covs + Tensor::from_vector(std::vector<double>{0, 0.05, 0.05, 0, 0, 0, 0, 0}, {2, 2, 2}); return p; }},
                      {"pi moved by 0.02", [](Mixture p) { p.weights = p.weights + Tensor::from_vector(std::vector<double>{0.02, -0.02}, {2}); return p; }},
                  };
                  for (const auto& [name, move] : moves) {
                    const double moved = expected_complete_log_likelihood(X, R, move(m));
                    e.that(moved < q, "Q = " + fmt(q) + " at your parameters, " + fmt(moved) + " after " + name,
                           "the M-step's parameters maximise Q: weighted means and weighted, centred covariances");
                  }
                }, essential});
  ms.push_back({"EM with your M-step never lowers the likelihood (15 iterations)", 2, [f](Expect& e) {
                  const Mixture truth = random_mixture(6, 3, 2, 2);
                  Generator gen(6);
                  const Tensor X = engine_mixture(truth).sample(300, gen).to(DType::Float64);
                  Mixture m = random_mixture(7, 3, 2, 1);
                  double previous = -1e300;
                  for (int it = 0; it < 15; ++it) {
                    const Tensor R = dgm::models::e_step(engine_mixture(m), X);
                    m = f.m_step(X, R, 1e-6);
                    if (!mixture_shapes(e, m, 3, 2)) return;
                    const double ll = engine_mixture(m).total_log_likelihood(X);
                    e.that(ll >= previous - 1e-8, "iteration " + std::to_string(it + 1) + ": the log-likelihood fell from " + fmt(previous) + " to " + fmt(ll),
                           "EM's M-step can only raise the likelihood; a step that lowers it does not maximise Q");
                    previous = ll;
                  }
                }});
  // No exercise may call the library's own implementation of itself (grader.h, add_library_check).
  for (auto& ex : list) {
    if (ex.name == "e_step") add_library_check(ex, {"models::e_step", "GaussianMixture"});
    if (ex.name == "m_step") add_library_check(ex, {"models::m_step", "GaussianMixture"});
  }
  return list;
}

}  // namespace hw::em
