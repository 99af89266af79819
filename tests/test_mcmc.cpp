// tests/test_mcmc.cpp — the samplers against closed forms: the ESS of an AR(1) chain, R-hat of chains
// that disagree, the leapfrog map of a harmonic oscillator, ULA's known O(eps) bias and MALA's
// correction, HMC's and Gibbs's moments, AIS with no intermediate distribution = importance sampling.
#include <cmath>

#include "autograd/ops.h"
#include "helpers.h"
#include "models/divergences.h"
#include "models/mcmc.h"

using namespace dgm;
using namespace dgm::models;
using namespace dgm::test;

namespace {

// log N(x; 0, Sigma) up to a constant, Sigma = [[1, r], [r, 1]]: -(x1^2 - 2 r x1 x2 + x2^2) / (2 (1 - r^2))
mcmc::LogDensity correlated(double r) {
  return [r](const Tensor& x) {
    const Tensor a = select(x, 1, 0), b = select(x, 1, 1);
    return (a * a - 2 * r * a * b + b * b) / (-2 * (1 - r * r));
  };
}

std::vector<double> ar1(double phi, int64_t n, Generator& gen) {
  std::vector<double> x(n);
  double v = gen.normal01() / std::sqrt(1 - phi * phi);
  for (auto& a : x) a = v = phi * v + gen.normal01();
  return x;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double a : v) s += a;
  return s / static_cast<double>(v.size());
}

}  // namespace

TEST_CASE("ESS: an AR(1) chain has N (1 - phi) / (1 + phi) effective draws; independent draws have about N", "[mcmc]") {
  Generator gen(1);
  std::vector<std::vector<double>> chains, iid;
  for (int m = 0; m < 4; ++m) chains.push_back(ar1(0.9, 20000, gen)), iid.push_back(ar1(0.0, 5000, gen));
  const double expected = 4 * 20000 * (1 - 0.9) / (1 + 0.9);  // 4210.5
  CHECK(mcmc::effective_sample_size(chains) == Approx(expected).epsilon(0.15));
  CHECK(mcmc::effective_sample_size(iid) == Approx(20000).epsilon(0.1));
  // the autocorrelation of AR(1) at lag k is phi^k
  const std::vector<double> rho = mcmc::autocorrelation(chains[0], 5);
  for (int k = 0; k <= 5; ++k) CHECK(rho[k] == Approx(std::pow(0.9, k)).margin(0.05));
}

TEST_CASE("split R-hat: near 1 for chains of one distribution, above 1.1 for a chain elsewhere or one that drifts", "[mcmc]") {
  Generator gen(2);
  std::vector<std::vector<double>> same, apart;
  for (int m = 0; m < 4; ++m) same.push_back(ar1(0.5, 2000, gen)), apart.push_back(ar1(0.5, 2000, gen));
  for (double& a : apart[3]) a += 2;
  CHECK(mcmc::split_rhat(same) < 1.01);
  CHECK(mcmc::split_rhat(apart) > 1.1);
  std::vector<double> drift = ar1(0.5, 2000, gen);  // one chain whose second half moved: only the split sees it
  for (size_t i = 1000; i < drift.size(); ++i) drift[i] += 2;
  CHECK(mcmc::split_rhat({drift}) > 1.1);
}

TEST_CASE("the MH acceptance in log space: symmetric, corrected for an asymmetric proposal, and no underflow", "[mcmc]") {
  CHECK(mcmc::log_acceptance(-1.0, -2.0) == 0.0);
  CHECK(mcmc::log_acceptance(-2.0, -1.0) == Approx(-1.0));
  CHECK(mcmc::log_acceptance(-2.0, -1.0, 0.5, -0.25) == Approx(-0.25));  // -1 + (0.5 - (-0.25))
  CHECK(mcmc::log_acceptance(-3001.0, -3000.0) == Approx(-1.0));           // exp(-3000) would be 0 / 0
  CHECK(std::isinf(mcmc::log_acceptance(std::nan(""), -1.0)));
}

TEST_CASE("leapfrog on H = (x^2 + p^2) / 2 is the known linear map, and running it back returns to the start", "[mcmc]") {
  const mcmc::LogDensity gauss = [](const Tensor& x) { return sum(x * x, {1}) * -0.5; };
  const double eps = 0.3;
  const Tensor x = Tensor::from_vector(std::vector<double>{0.7, -1.2}, {2, 1});
  const Tensor p = Tensor::from_vector(std::vector<double>{0.4, 0.9}, {2, 1});
  mcmc::PhasePoint z = mcmc::leapfrog(gauss, mcmc::phase_point(gauss, x, p), eps, 1);
  for (int c = 0; c < 2; ++c) {
    const double ph = p.at(c) - eps / 2 * x.at(c), x1 = x.at(c) + eps * ph, p1 = ph - eps / 2 * x1;
    CHECK(z.x.at(c) == Approx(x1).epsilon(1e-14));
    CHECK(z.p.at(c) == Approx(p1).epsilon(1e-14));
  }
  z = mcmc::leapfrog(gauss, mcmc::phase_point(gauss, x, p), eps, 25);
  z.p = -z.p;
  z = mcmc::leapfrog(gauss, z, eps, 25);
  for (int c = 0; c < 2; ++c) {
    CHECK(std::abs(z.x.at(c) - x.at(c)) < 1e-12);
    CHECK(std::abs(-z.p.at(c) - p.at(c)) < 1e-12);
  }
}

TEST_CASE("a log-density with the wrong shape is an error naming both shapes", "[mcmc]") {
  const mcmc::LogDensity bad = [](const Tensor& x) { return sum(x); };
  REQUIRE_THROWS_WITH(mcmc::value_and_gradient(bad, Tensor::zeros({3, 2}, DType::Float64)),
                      Catch::Contains("one value per chain") && Catch::Contains("[3, 2]"));
  Generator gen(0);
  REQUIRE_THROWS_WITH(mcmc::hmc(correlated(0.5), Tensor::zeros({3, 2}), {}, {10, 10}, gen),
                      Catch::Contains("float64"));
}

TEST_CASE("HMC (adapted) and Gibbs find the moments of a correlated Gaussian; R-hat near 1", "[mcmc]") {
  const double r = 0.9;
  Generator gen(3);
  const Tensor x0 = gen.normal({4, 2}, 0, 3, DType::Float64);
  const mcmc::Run h = mcmc::hmc(correlated(r), x0, {0.5, 8, true, 0.8, 0.2}, {500, 2000}, gen);
  CHECK(h.acceptance == Approx(0.8).margin(0.1));
  const Tensor L = Tensor::from_vector(std::vector<double>{1, -r, -r, 1}, {2, 2}) / (1 - r * r);  // Sigma^-1
  const mcmc::Run g = mcmc::gibbs_gaussian(Tensor::zeros({2}, DType::Float64), L, x0, {200, 4000}, gen);
  for (const mcmc::Run* run : {&h, &g}) {
    const auto a = mcmc::coordinate(*run, 0), b = mcmc::coordinate(*run, 1);
    double m = 0, v = 0, c = 0, n = 0;
    for (size_t k = 0; k < a.size(); ++k)
      for (size_t i = 0; i < a[k].size(); ++i) m += a[k][i], v += a[k][i] * a[k][i], c += a[k][i] * b[k][i], ++n;
    const double ess = mcmc::effective_sample_size(a);
    CHECK(std::abs(m / n) < 4 / std::sqrt(ess));
    CHECK(v / n == Approx(1).margin(4 * std::sqrt(2 / ess)));
    CHECK(c / n == Approx(r).margin(4 * std::sqrt(2 / ess)));
    CHECK(mcmc::split_rhat(a) < 1.02);
  }
}

TEST_CASE("ULA on N(0, 1) has the stationary variance 1 / (1 - eps / 4); MALA's test removes the bias", "[mcmc]") {
  const mcmc::LogDensity gauss = [](const Tensor& x) { return sum(x * x, {1}) * -0.5; };
  Generator gen(4);
  const double eps = 0.8;  // ULA: x' = (1 - eps/2) x + sqrt(eps) z, so v = eps / (1 - (1 - eps/2)^2)
  const Tensor x0 = gen.normal({64, 1}, 0, 1, DType::Float64);
  auto variance = [](const mcmc::Run& run) {
    const auto c = mcmc::coordinate(run, 0);
    double v = 0, n = 0;
    for (const auto& chain : c)
      for (double a : chain) v += a * a, ++n;
    return std::make_pair(v / n, mcmc::effective_sample_size(c));
  };
  const auto [ula, ula_ess] = variance(mcmc::langevin(gauss, x0, eps, false, {100, 1000}, gen));
  CHECK(ula == Approx(1 / (1 - eps / 4)).margin(4 * std::sqrt(2 / ula_ess) * 1.5));
  const auto [mala, mala_ess] = variance(mcmc::langevin(gauss, x0, eps, true, {200, 1000}, gen));
  CHECK(mala == Approx(1).margin(4 * std::sqrt(2 / mala_ess)));
  CHECK(std::abs(ula - 1) > 0.15);  // the bias is there to be removed: 1 / 0.8 - 1 = 0.25
}

TEST_CASE("AIS with no intermediate distribution is importance sampling; with many it estimates Z unbiasedly", "[mcmc]") {
  // f_0 = N(0, I) normalised, f_1 = exp(-|x - 1|^2 / (2 * 0.25)) in 2-D: Z_1 = 2 pi 0.25
  const mcmc::LogDensity f0 = [](const Tensor& x) { return sum(x * x, {1}) * -0.5 - std::log(2 * M_PI); };
  const mcmc::LogDensity f1 = [](const Tensor& x) { return sum(pow(x - 1.0, 2.0), {1}) * (-1 / (2 * 0.25)); };
  Generator gen(5);
  const Tensor x0 = gen.normal({500, 2}, 0, 1, DType::Float64);
  const Tensor w = mcmc::ais(f0, f1, x0, {{0, 1}, 0.1, 3, 0.65, {}}, gen);
  const Tensor is = f1(x0) - f0(x0);
  for (int64_t c = 0; c < 500; ++c) CHECK(w.at(c) == is.at(c));
  mcmc::AISOptions o{mcmc::sigmoid_betas(100), 0.3, 3, 0.65, {}};
  o.step_sizes = mcmc::ais_step_sizes(f0, f1, gen.normal({100, 2}, 0, 1, DType::Float64), o, gen);  // a pilot run
  REQUIRE(o.step_sizes.size() == 99);
  const Tensor wa = mcmc::ais(f0, f1, x0, o, gen);
  std::vector<double> z;
  for (double a : wa.to_vector()) z.push_back(std::exp(a));
  const double m = mean(z);
  double ss = 0;
  for (double a : z) ss += (a - m) * (a - m);
  const double se = std::sqrt(ss / (z.size() - 1) / z.size());
  CHECK(std::abs(m - 2 * M_PI * 0.25) < 4 * se);
  CHECK(se < 0.05 * 2 * M_PI * 0.25);  // the transitions made it precise (IS alone: far wider)
  CHECK_THROWS_WITH(mcmc::ais(f0, f1, x0, {{0, 0.5}, 0.1, 3, 0.65, {}}, gen), Catch::Contains("from 0 to 1"));
}

TEST_CASE("Gamma and Beta draws have their distributions' means and variances", "[mcmc]") {
  Generator gen(6);
  for (double shape : {0.4, 1.0, 3.5}) {
    double m = 0, v = 0;
    const int n = 40000;
    std::vector<double> x(n);
    for (auto& a : x) a = mcmc::gamma_draw(shape, gen), m += a / n;
    for (double a : x) v += (a - m) * (a - m) / (n - 1);
    CHECK(m == Approx(shape).margin(5 * std::sqrt(shape / n)));
    CHECK(v == Approx(shape).epsilon(0.08));
  }
  double m = 0;
  for (int i = 0; i < 20000; ++i) m += mcmc::beta_draw(2, 5, gen) / 20000;
  CHECK(m == Approx(2.0 / 7).margin(5 * std::sqrt(2.0 * 5 / (49 * 8) / 20000)));
}

TEST_CASE("the energy distance: 0 for a sample against itself, |a - b| for two points, and it sees a shift", "[mcmc]") {
  const Tensor a = Tensor::from_vector(std::vector<double>{0, 0}, {1, 2}), b = Tensor::from_vector(std::vector<double>{3, 4}, {1, 2});
  CHECK(models::energy_distance(a, b) == Approx(5.0));
  Generator gen(7);
  const Tensor x = gen.normal({300, 2}, 0, 1, DType::Float64);
  CHECK(models::energy_distance(x, x) == Approx(0.0).margin(1e-12));
  // N(0, I) vs N((1, 0), I): E|X - Y| - E|X - X'| > 0, and larger than between two samples of one distribution
  const double same = models::energy_distance(x, gen.normal({300, 2}, 0, 1, DType::Float64));
  const double shifted = models::energy_distance(x, gen.normal({300, 2}, 0, 1, DType::Float64) + Tensor::from_vector(std::vector<double>{1, 0}, {1, 2}));
  CHECK(shifted > 10 * same);
  CHECK_THROWS_WITH(models::energy_distance(x, gen.normal({3, 3})), Catch::Contains("[3, 3]"));
}
