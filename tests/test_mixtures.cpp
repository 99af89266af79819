// EM for mixtures: the identities it rests on, monotonicity, recovery of a
// known mixture, and the gradient-ascent parameterisation.
#include "helpers.h"

#include <algorithm>
#include <cmath>

#include "autograd/graph.h"
#include "models/toolkit/linalg.h"
#include "models/mixtures.h"

using namespace dgm;
using namespace dgm::test;

namespace {
models::GaussianMixture known_mixture() {
  models::GaussianMixture m;
  m.weights = Tensor::from_vector(std::vector<double>{0.2, 0.5, 0.3}, {3});
  m.means = Tensor::from_vector(std::vector<double>{-3, 0, 0, 2, 3, -1}, {3, 2});
  m.covs = Tensor::from_vector(std::vector<double>{0.5, 0.1, 0.1, 0.3, 1.0, -0.4, -0.4, 0.6, 0.4, 0, 0, 0.4}, {3, 2, 2});
  return m;
}
}  // namespace

TEST_CASE("linalg: Cholesky, triangular solve, inverse, log det against 2x2 closed forms", "[linalg]") {
  Tensor A = Tensor::from_vector(std::vector<double>{4, 2, 2, 3}, {2, 2});
  Tensor L = linalg::cholesky(A);
  CHECK(L.to_vector() == std::vector<double>{2, 0, 1, std::sqrt(2.0)});
  CHECK(linalg::log_det_spd(A) == Approx(std::log(8.0)).epsilon(1e-14));
  Tensor inv = linalg::inverse(A);
  CHECK(inv.at(0) == Approx(3.0 / 8).epsilon(1e-14));
  CHECK(inv.at(1) == Approx(-2.0 / 8).epsilon(1e-14));
  Tensor x = linalg::solve_lower(L, Tensor::from_vector(std::vector<double>{2, 1 + std::sqrt(2.0)}, {2, 1}));
  CHECK(x.at(0) == Approx(1.0));
  CHECK(x.at(1) == Approx(1.0));
  // several right-hand sides at once (xtensor-blas's own solve_triangular handles only one)
  Tensor B = Tensor::from_vector(std::vector<double>{2, 4, -2, 1 + std::sqrt(2.0), 2 + 2 * std::sqrt(2.0), 3}, {2, 3});
  Tensor X3 = linalg::solve_lower(L, B);
  Tensor LX = matmul(L, X3);
  for (int64_t i = 0; i < 6; ++i) CHECK(LX.at(i) == Approx(B.at(i)).epsilon(1e-13));
  CHECK_THAT(error_of([] { linalg::cholesky(Tensor::from_vector(std::vector<double>{1, 2, 2, 1}, {2, 2}), "S"); }),
             Catch::Contains("S is not positive definite"));
}

TEST_CASE("GMM log-density against the closed form, and it integrates to one", "[em]") {
  models::GaussianMixture m = known_mixture();
  Tensor x = Tensor::from_vector(std::vector<double>{0.3, 1.7}, {1, 2});
  double want = 0;
  for (int k = 0; k < 3; ++k) {
    const double a = m.covs.at(k * 4), b = m.covs.at(k * 4 + 1), d = m.covs.at(k * 4 + 3), det = a * d - b * b;
    const double dx = 0.3 - m.means.at(k * 2), dy = 1.7 - m.means.at(k * 2 + 1);
    const double q = (d * dx * dx - 2 * b * dx * dy + a * dy * dy) / det;
    want += m.weights.at(k) * std::exp(-0.5 * q) / (2 * M_PI * std::sqrt(det));
  }
  CHECK(m.log_likelihood(x).item() == Approx(std::log(want)).epsilon(1e-12));
  const int64_t G = 300;
  const double lo = -8, h = 16.0 / G;
  Tensor grid = Tensor::empty({G * G, 2}, DType::Float64);
  for (int64_t i = 0; i < G * G; ++i) {
    grid.data<double>()[2 * i] = lo + (double(i / G) + 0.5) * h;
    grid.data<double>()[2 * i + 1] = lo + (double(i % G) + 0.5) * h;
  }
  CHECK(sum(exp(m.log_likelihood(grid))).item() * h * h == Approx(1.0).epsilon(1e-4));
}

TEST_CASE("log p(x) = ELBO(q) + KL(q || posterior) for any q, and the E-step is Bayes' rule", "[em]") {
  Generator g(1);
  models::GaussianMixture m = known_mixture();
  Tensor X = m.sample(200, g);
  // The second route: each weighted density written out (2x2 determinant and
  // inverse in closed form), summed directly; the posterior by Bayes' rule.
  std::vector<std::vector<double>> joint(200, std::vector<double>(3));
  double ll = 0;
  for (int64_t n = 0; n < 200; ++n) {
    double total = 0;
    for (int64_t k = 0; k < 3; ++k) {
      const double a = m.covs.at(4 * k), b = m.covs.at(4 * k + 1), c = m.covs.at(4 * k + 3), det = a * c - b * b;
      const double u = X.at(2 * n) - m.means.at(2 * k), v = X.at(2 * n + 1) - m.means.at(2 * k + 1);
      joint[n][k] = m.weights.at(k) * std::exp(-0.5 * (c * u * u - 2 * b * u * v + a * v * v) / det) /
                    (2 * M_PI * std::sqrt(det));
      total += joint[n][k];
    }
    for (double& p : joint[n]) p /= total;  // now the posterior
    ll += std::log(total);
  }
  Tensor lj = m.log_joint(X);
  Tensor q = softmax(g.normal({200, 3}, 0, 2, DType::Float64), 1);  // an arbitrary q
  CHECK(models::elbo(lj, q) + models::kl_to_posterior(lj, q) == Approx(ll).epsilon(1e-12));
  CHECK(models::kl_to_posterior(lj, q) > 1.0);
  CHECK(m.total_log_likelihood(X) == Approx(ll).epsilon(1e-12));
  Tensor r = models::e_step(m, X);
  for (int64_t n = 0; n < 200; ++n)
    for (int64_t k = 0; k < 3; ++k) CHECK(r.at(3 * n + k) == Approx(joint[n][k]).margin(1e-12));
  CHECK(models::elbo(lj, r) == Approx(ll).epsilon(1e-12));  // q = posterior makes the bound tight
}

TEST_CASE("EM never decreases the log-likelihood and recovers a known mixture", "[em]") {
  Generator g(2);
  models::GaussianMixture truth = known_mixture();
  Tensor X = truth.sample(4000, g);
  models::GaussianMixture m = models::init_kmeans_pp(X, 3, g);
  double prev = m.total_log_likelihood(X);
  auto trace = models::fit_em(m, X, 300, 1e-10, 1e-6, [&](int, const models::GaussianMixture& cur) {
    const double ll = cur.total_log_likelihood(X);
    CHECK(ll >= prev - 1e-9 * std::abs(prev));
    prev = ll;
  });
  CHECK(trace.converged);
  const std::vector<int64_t> best = models::match_components(m.means, truth.means);
  for (int k = 0; k < 3; ++k) {
    const double w = truth.weights.at(k), n = 4000 * w;
    CHECK(std::abs(m.weights.at(best[k]) - w) < 4 * std::sqrt(w * (1 - w) / 4000));
    for (int j = 0; j < 2; ++j)
      CHECK(std::abs(m.means.at(best[k] * 2 + j) - truth.means.at(k * 2 + j)) < 4 * std::sqrt(truth.covs.at(k * 4 + j * 3) / n));
  }
}

TEST_CASE("gradient-ascent GMM: its log-density equals the closed form, and gradients check", "[em][gradcheck]") {
  Generator g(3);
  models::GaussianMixture m = known_mixture();
  Tensor X = m.sample(20, g);
  models::GaussianMixtureGradient gm(m);
  Tensor want = m.log_likelihood(X), got = gm.log_likelihood(X);
  for (int64_t i = 0; i < 20; ++i) CHECK(got.at(i) == Approx(want.at(i)).epsilon(1e-10));
  models::GaussianMixture back = gm.to_mixture();
  for (int64_t i = 0; i < 12; ++i) CHECK(back.covs.at(i) == Approx(m.covs.at(i)).margin(1e-12));
  Tensor x5 = slice(X, 0, 0, 5);
  require_gradcheck(
      [&](const std::vector<Tensor>& p) {
        gm.logits = p[0], gm.means = p[1], gm.u_raw = p[2];  // evaluate the model at p
        return gm.log_likelihood(x5);
      },
      {gm.logits.detach(), gm.means.detach(), gm.u_raw.detach()});
}

TEST_CASE("mixture of Bernoullis: EM increases the likelihood and finds the prototypes", "[em]") {
  Generator g(4);
  // two prototypes on 6 pixels, 5% flipped
  const double proto[2][6] = {{1, 1, 1, 0, 0, 0}, {0, 0, 0, 1, 1, 1}};
  Tensor X = Tensor::empty({400, 6}, DType::Float64);
  for (int64_t n = 0; n < 400; ++n)
    for (int d = 0; d < 6; ++d) {
      const double p = proto[n % 2][d];
      X.data<double>()[n * 6 + d] = g.uniform01() < 0.05 ? 1 - p : p;
    }
  models::BernoulliMixture m = models::init_bernoulli_mixture(2, 6, g);
  double prev = m.total_log_likelihood(X);
  for (int it = 0; it < 30; ++it) {
    m = models::m_step_bernoulli(X, models::e_step(m, X), 0.0);
    const double ll = m.total_log_likelihood(X);
    CHECK(ll >= prev - 1e-9);
    prev = ll;
  }
  const int k = m.means.at(0) > 0.5 ? 0 : 1;  // the component that found prototype 0
  for (int d = 0; d < 6; ++d) CHECK(std::abs(m.means.at(k * 6 + d) - (proto[0][d] == 1 ? 0.95 : 0.05)) < 0.05);
}

TEST_CASE("class-conditional Bernoulli: naive Bayes counts, Bayes' rule by enumeration, samples of the class asked for") {
  using namespace dgm;
  // 4 binary pixels, 2 classes; class 0 lights the left half, class 1 the right half
  Generator g(3);
  const int64_t N = 400, D = 4;
  Tensor X = Tensor::zeros({N, D}, DType::Float64);
  std::vector<int64_t> y(N);
  for (int64_t n = 0; n < N; ++n) {
    y[static_cast<size_t>(n)] = n % 3 == 0 ? 1 : 0;
    for (int64_t d = 0; d < D; ++d) {
      const bool lit = (d < 2) == (y[static_cast<size_t>(n)] == 0);
      X.data<double>()[n * D + d] = g.uniform01() < (lit ? 0.9 : 0.2) ? 1 : 0;
    }
  }
  const Tensor labels = Tensor::from_indices(y, {N});
  const auto m = models::fit_class_conditional(X, labels, 2, 1, 0, g, 1.0);
  // K = 1: mu_yd = (count of x_d = 1 in class y + 1) / (N_y + 2); p(y) = (N_y + 1) / (N + 2)
  for (int64_t c = 0; c < 2; ++c) {
    double ny = 0;
    std::vector<double> ones(D, 0);
    for (int64_t n = 0; n < N; ++n)
      if (y[static_cast<size_t>(n)] == c) {
        ny += 1;
        for (int64_t d = 0; d < D; ++d) ones[static_cast<size_t>(d)] += X.at(n * D + d);
      }
    CHECK(std::exp(m.log_prior.at(c)) == Approx((ny + 1) / (N + 2)).epsilon(1e-12));
    for (int64_t d = 0; d < D; ++d)
      CHECK(m.classes[static_cast<size_t>(c)].means.at(d) == Approx((ones[static_cast<size_t>(d)] + 1) / (ny + 2)).epsilon(1e-12));
  }
  // Bayes' rule over all 16 images by plain products, against log_posterior and log_prob
  Tensor all = Tensor::zeros({16, D}, DType::Float64);
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t d = 0; d < D; ++d) all.data<double>()[i * D + d] = (i >> d) & 1;
  const Tensor post = m.log_posterior(all), lp = m.log_prob(all);
  double total = 0;
  for (int64_t i = 0; i < 16; ++i) {
    double joint[2];
    for (int64_t c = 0; c < 2; ++c) {
      joint[c] = std::exp(m.log_prior.at(c));
      for (int64_t d = 0; d < D; ++d) {
        const double mu = m.classes[static_cast<size_t>(c)].means.at(d);
        joint[c] *= all.at(i * D + d) > 0 ? mu : 1 - mu;
      }
    }
    CHECK(std::exp(post.at(i * 2)) == Approx(joint[0] / (joint[0] + joint[1])).epsilon(1e-12));
    CHECK(std::exp(lp.at(i)) == Approx(joint[0] + joint[1]).epsilon(1e-12));
    total += joint[0] + joint[1];
  }
  CHECK(total == Approx(1.0).epsilon(1e-12));  // p(x) sums to one over every image
  // EM with K = 3 per class: samples of class 1 are classified as class 1
  const auto mix = models::fit_class_conditional(X, labels, 2, 3, 20, g, 1.0);
  const Tensor s = mix.sample(1, 200, g), pred = mix.predict(s);
  double right = 0;
  for (int64_t i = 0; i < 200; ++i) right += pred.at(i) == 1;
  CHECK(right / 200 > 0.8);
  CHECK(test::error_of([&] { models::fit_class_conditional(X, Tensor::from_indices({0, 1}, {2}), 2, 1, 0, g); }).find("labels must be") !=
        std::string::npos);
}
