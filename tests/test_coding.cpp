// tests/test_coding.cpp — the rANS coder (models/toolkit/rans.h) and the MMD (models/divergences.h).
#include <cmath>

#include "helpers.h"
#include "models/divergences.h"
#include "models/toolkit/rans.h"

using namespace dgm;
using test::error_of;

TEST_CASE("rans: quantised tables sum to 2^16, every symbol at least 1") {
  const auto t = coding::quantise({0.999999, 1e-9, 0.0, 1e-6, 3.0});
  uint32_t total = 0;
  for (size_t s = 0; s < t.freq.size(); ++s) {
    CHECK(t.freq[s] >= 1);
    CHECK(t.start[s] == total);
    total += t.freq[s];
  }
  CHECK(total == coding::kScale);
  CHECK(error_of([] { coding::quantise({0.5, -0.1}); }).find("negative") != std::string::npos);
  CHECK(error_of([] { coding::quantise({0.0, 0.0}); }).find("sum to 0") != std::string::npos);
}

TEST_CASE("rans: a message decodes exactly, in about -log2 p bits") {
  for (uint64_t seed : {1, 2, 3}) {
    Generator g(seed);
    // 20,000 symbols, each from its own random table of 2 to 40 symbols with skewed probabilities
    const int n = 20000;
    std::vector<coding::FrequencyTable> tables;
    std::vector<int64_t> symbols;
    double ideal = 0;
    for (int i = 0; i < n; ++i) {
      const int64_t K = g.randint(2, 41);
      std::vector<double> p(static_cast<size_t>(K));
      for (auto& v : p) v = std::exp(4 * g.normal01());
      tables.push_back(coding::quantise(p));
      // draw from the quantised table itself
      const uint32_t u = static_cast<uint32_t>(g.randint(0, coding::kScale));
      int64_t s = 0;
      while (tables.back().start[static_cast<size_t>(s)] + tables.back().freq[static_cast<size_t>(s)] <= u) ++s;
      symbols.push_back(s);
      ideal += tables.back().bits(s);
    }
    coding::Encoder enc;
    for (int i = n - 1; i >= 0; --i) enc.put(tables[static_cast<size_t>(i)], symbols[static_cast<size_t>(i)]);
    const std::vector<uint8_t> msg = enc.finish();
    coding::Decoder dec(msg);
    int wrong = 0;
    for (int i = 0; i < n; ++i) wrong += dec.get(tables[static_cast<size_t>(i)]) != symbols[static_cast<size_t>(i)];
    CHECK(wrong == 0);
    CHECK(dec.done());
    INFO("bytes " << msg.size() << ", ideal " << ideal / 8);
    CHECK(8.0 * msg.size() >= ideal);             // no coder beats the code length
    CHECK(8.0 * msg.size() <= ideal + 8 * 6 + 1e-3 * ideal);  // the 4-byte state, byte granularity, a little rounding
    // a truncated message: a clear error, never a read past the end
    std::vector<uint8_t> cut(msg.begin(), msg.begin() + msg.size() / 2);
    coding::Decoder bad(cut);
    CHECK(error_of([&] {
            for (int i = 0; i < n; ++i) bad.get(tables[static_cast<size_t>(i)]);
          }).find("ended early") != std::string::npos);
  }
  CHECK(error_of([] { coding::Decoder d(std::vector<uint8_t>{1, 2}); }).find("4-byte state") != std::string::npos);
}

namespace {
models::GaussianMixture mixture_1d(std::vector<double> w, std::vector<double> m, std::vector<double> v) {
  models::GaussianMixture g;
  const int64_t K = static_cast<int64_t>(w.size());
  g.weights = Tensor::from_vector(w, {K});
  g.means = Tensor::from_vector(m, {K, 1});
  g.covs = Tensor::from_vector(v, {K, 1, 1});
  return g;
}
}  // namespace

TEST_CASE("mmd: the closed form E k(x, y) between Gaussian mixtures vs a 2-D quadrature") {
  const auto P = mixture_1d({0.3, 0.7}, {-1.0, 0.5}, {0.2, 0.6}), Q = mixture_1d({1.0}, {0.8}, {1.5});
  const double h = 0.7;
  // E k = int int p(x) q(y) exp(-(x - y)^2 / (2 h^2)) dx dy, Simpson on [-9, 9]^2
  const int n = 600;
  const double lo = -9, step = 18.0 / n;
  auto dens = [](const models::GaussianMixture& g, double x) {
    double s = 0;
    for (int64_t k = 0; k < g.K(); ++k) {
      const double v = g.covs.at(k), m = g.means.at(k);
      s += g.weights.at(k) * std::exp(-0.5 * (x - m) * (x - m) / v) / std::sqrt(2 * M_PI * v);
    }
    return s;
  };
  auto quadrature = [&](const models::GaussianMixture& A, const models::GaussianMixture& B) {
    double total = 0;
    for (int i = 0; i <= n; ++i)
      for (int j = 0; j <= n; ++j) {
        const double wi = (i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2), wj = (j == 0 || j == n) ? 1 : (j % 2 ? 4 : 2);
        const double x = lo + i * step, y = lo + j * step;
        total += wi * wj * dens(A, x) * dens(B, y) * std::exp(-(x - y) * (x - y) / (2 * h * h));
      }
    return total * step * step / 9;
  };
  const double pq = quadrature(P, Q), pp = quadrature(P, P), qq = quadrature(Q, Q);
  CHECK(models::expected_kernel(P, Q, h) == Approx(pq).epsilon(1e-8));
  // MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y): the closed form against the three quadratures
  CHECK(models::mmd2_gaussian_mixtures(P, Q, h) == Approx(pp + qq - 2 * pq).epsilon(1e-6));
  CHECK(models::mmd2_gaussian_mixtures(P, Q, h) > 0.01);
}

TEST_CASE("mmd: the unbiased estimate averages to the closed form; the permutation test sees a difference") {
  auto P = mixture_1d({0.5, 0.5}, {-2.0, 2.0}, {0.25, 0.25}), Q = mixture_1d({1.0}, {0.0}, {4.25});
  const double h = 1.0, exact = models::mmd2_gaussian_mixtures(P, Q, h);
  Generator g(5);
  std::vector<double> est;
  for (int r = 0; r < 40; ++r) est.push_back(models::mmd2_unbiased(P.sample(200, g), Q.sample(200, g), h));
  double m = 0, ss = 0;
  for (double e : est) m += e / 40;
  for (double e : est) ss += (e - m) * (e - m);
  const double se = std::sqrt(ss / 39 / 40);
  INFO("exact " << exact << ", mean " << m << " +- " << se);
  CHECK(std::abs(m - exact) < 4 * se);
  CHECK(models::mmd_permutation_test(P.sample(300, g), Q.sample(300, g), h, 200, g).p_value <= 0.01);
  CHECK(error_of([&] { models::mmd2_unbiased(P.sample(5, g), Tensor::zeros({5, 2}), h); }).find("same d") != std::string::npos);
}
