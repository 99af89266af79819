// tests/test_diffusion.cpp — the noise schedules' identities, the epsilon form
// of L_{t-1}, the discretized Gaussian decoder, DDPM2D's determinism.
#include <cmath>

#include "autograd/checkpoint.h"
#include "autograd/optim.h"
#include "helpers.h"
#include "models/diffusion.h"
#include "models/registry.h"
#include "models/toolkit/distributions.h"

using namespace dgm;
using namespace dgm::models;
using namespace dgm::test;

TEST_CASE("noise schedules: abar is the product of the alphas, and the posterior is Bayes' rule for Gaussians", "[diffusion]") {
  for (const NoiseSchedule& s : {NoiseSchedule::linear(1000), NoiseSchedule::cosine(1000), NoiseSchedule::linear(5, 0.1, 0.5)}) {
    // the chain's own recursion for Var(x_t | x_0): x_t = sqrt(alpha_t) x_{t-1} + sqrt(beta_t) eps, so
    // v_t = alpha_t v_{t-1} + beta_t from v = 0 at x_0; the marginal says v_t = 1 - abar_t
    double v = 0;
    for (int64_t t = 0; t < s.steps(); ++t) {
      const auto i = static_cast<size_t>(t);
      v = (1 - s.beta[i]) * v + s.beta[i];
      CHECK(1 - s.alpha_bar[i] == Approx(v).epsilon(1e-10));
      if (t == 0) {
        CHECK(s.posterior_var[0] == 0);
        continue;
      }
      // precision-weighted: 1/var = alpha_t / beta_t + 1 / (1 - abar_{t-1}),
      // mean = var (sqrt(alpha_t) x_t / beta_t + sqrt(abar_{t-1}) x_0 / (1 - abar_{t-1}))
      const double ab_prev = s.alpha_bar[i - 1];
      const double var = 1 / (s.alpha[i] / s.beta[i] + 1 / (1 - ab_prev));
      CHECK(s.posterior_var[i] == Approx(var).epsilon(1e-10));
      CHECK(s.posterior_coef_xt[i] == Approx(var * std::sqrt(s.alpha[i]) / s.beta[i]).epsilon(1e-10));
      CHECK(s.posterior_coef_x0[i] == Approx(var * std::sqrt(ab_prev) / (1 - ab_prev)).epsilon(1e-10));
    }
  }
}

TEST_CASE("the cosine schedule follows f(t) / f(0) until beta is clipped", "[diffusion]") {
  const NoiseSchedule s = NoiseSchedule::cosine(100);
  auto f = [](double t) { return std::pow(std::cos((t / 100 + 0.008) / 1.008 * M_PI / 2), 2); };
  for (int64_t t : {1, 10, 50, 90}) CHECK(s.alpha_bar[static_cast<size_t>(t - 1)] == Approx(f(t) / f(0)).epsilon(1e-10));
  CHECK(s.beta.back() == 0.999);
}

TEST_CASE("schedules refuse betas outside (0, 1) and an empty chain", "[diffusion][errors]") {
  CHECK_THAT(error_of([] { NoiseSchedule::from_betas({0.1, 1.0}); }), Catch::Contains("beta_2") && Catch::Contains("(0, 1)"));
  CHECK_THAT(error_of([] { NoiseSchedule::from_betas({}); }), Catch::Contains("T = 0"));
  CHECK_THAT(error_of([] { NoiseSchedule::linear(1000, -0.1, 0.02); }), Catch::Contains("beta_1"));
}

TEST_CASE("L_{t-1} in epsilon form: the Gaussian KL equals w_t (eps - eps_theta)^2 plus a constant", "[diffusion]") {
  const NoiseSchedule s = NoiseSchedule::linear(1000);
  Generator g(1);
  for (int k = 0; k < 50; ++k) {
    const int64_t t = 1 + static_cast<int64_t>(g.uniform01() * 998);
    const auto i = static_cast<size_t>(t);
    const double x0 = g.normal01(), eps = g.normal01(), eps_theta = g.normal01();
    const double xt = std::sqrt(s.alpha_bar[i]) * x0 + std::sqrt(1 - s.alpha_bar[i]) * eps;
    for (double sigma2 : {s.beta[i], s.posterior_var[i]}) {
      const double mu_q = s.posterior_coef_x0[i] * x0 + s.posterior_coef_xt[i] * xt;
      const double mu_p = s.mean_from_eps(t, xt, eps_theta);
      dist::Normal q{Tensor::full({1}, mu_q, DType::Float64), Tensor::full({1}, std::log(s.posterior_var[i]), DType::Float64)};
      dist::Normal p{Tensor::full({1}, mu_p, DType::Float64), Tensor::full({1}, std::log(sigma2), DType::Float64)};
      const double kl = q.kl_to(p).item();
      const double variance_part = 0.5 * (std::log(sigma2 / s.posterior_var[i]) + s.posterior_var[i] / sigma2 - 1);
      CHECK(kl - variance_part == Approx(s.eps_weight(t, sigma2) * (eps - eps_theta) * (eps - eps_theta)).epsilon(1e-8).margin(1e-12));
    }
  }
}

TEST_CASE("Normal::kl_to: against N(0, 1) it is kl_to_standard", "[diffusion][distributions]") {
  dist::Normal q{randn({5}, 1), randn({5}, 2)};
  const Tensor a = q.kl_to(dist::Normal::standard({5}, DType::Float64)), b = q.kl_to_standard();
  for (int64_t i = 0; i < 5; ++i) CHECK(a.at(i) == Approx(b.at(i)).epsilon(1e-14));
}

TEST_CASE("the discretized Gaussian decoder: masses sum to one over the levels, each a bin integral", "[diffusion]") {
  const int64_t L = 17;
  Generator g(2);
  for (int k = 0; k < 5; ++k) {
    const double mean = g.uniform01() * 2.4 - 1.2, log_var = std::log(0.001 + 0.3 * g.uniform01());
    Tensor x = Tensor::empty({L}, DType::Float64);
    for (int64_t l = 0; l < L; ++l) x.data<double>()[l] = -1 + 2.0 * static_cast<double>(l) / (L - 1);
    const Tensor lp = discretized_gaussian_log_prob(x, Tensor::full({L}, mean, DType::Float64),
                                                    Tensor::full({L}, log_var, DType::Float64), L);
    double total = 0;
    for (int64_t l = 0; l < L; ++l) total += std::exp(lp.at(l));
    CHECK(total == Approx(1.0).epsilon(1e-12));
    // an inner bin's mass against Simpson's rule on the density
    const int64_t l = L / 2;
    const double a = x.at(l) - 1.0 / (L - 1), b = x.at(l) + 1.0 / (L - 1), sd = std::exp(0.5 * log_var);
    const int n = 2000;
    double mass = 0;
    for (int j = 0; j <= n; ++j) {
      const double u = a + (b - a) * j / n, w = (j == 0 || j == n) ? 1 : (j % 2 ? 4 : 2);
      mass += w * std::exp(-0.5 * std::pow((u - mean) / sd, 2)) / (sd * std::sqrt(2 * M_PI));
    }
    mass *= (b - a) / n / 3;
    CHECK(std::exp(lp.at(l)) == Approx(mass).epsilon(1e-8).margin(1e-14));
  }
}

TEST_CASE("DDPM2D: the same seed gives the same training and the same samples", "[diffusion]") {
  auto run = [] {
    Generator g(3);
    DDPM2D m(NoiseSchedule::linear(50), {16, 16}, g);
    Tensor x = g.normal({64, 2});
    optim::Adam opt(m.parameters(), 1e-3);
    for (int i = 0; i < 3; ++i) {
      opt.zero_grad();
      m.loss(x, g).backward();
      opt.step();
    }
    return m.sample(10, g).to_vector();
  };
  CHECK(run() == run());
}

TEST_CASE("timestep_embedding: sines then cosines at geometric frequencies", "[diffusion]") {
  const Tensor e = timestep_embedding(Tensor::from_indices({0, 7, 500}, {3}), 8, DType::Float64);
  REQUIRE(e.shape() == Shape{3, 8});
  for (int64_t r = 0; r < 3; ++r) {
    const double t = std::vector<double>{0, 7, 500}[static_cast<size_t>(r)];
    for (int64_t i = 0; i < 4; ++i) {
      const double f = std::pow(10000.0, -i / 4.0);
      CHECK(e.at(r * 8 + i) == Approx(std::sin(t * f)).margin(1e-12));
      CHECK(e.at(r * 8 + 4 + i) == Approx(std::cos(t * f)).margin(1e-12));
    }
  }
}

TEST_CASE("DDPM: both objectives gradient-check through the eps-MLP; the prior term is a KL", "[diffusion]") {
  Generator g(4);
  DDPM m(3, NoiseSchedule::linear(20, 0.01, 0.3), {8}, g, /*levels=*/5, /*embedding=*/4);
  m.to(DType::Float64);
  const Tensor x = dist::index_to_levels(g.randint({4, 3}, 0, 5), 5, DType::Float64);
  for (auto obj : {DDPM::Objective::Simple, DDPM::Objective::Bound})
    for (auto steps : {DDPM::Timesteps::Uniform, DDPM::Timesteps::Importance}) {
      m.objective = obj, m.timesteps = steps;
      const Generator start = m.noise();
      // the loss as a function of the data, with the same noise (t, eps) on every call: the
      // gradient runs back through every layer of the eps-MLP and the time embedding's concat
      require_gradcheck([&](const std::vector<Tensor>& in) {
        m.noise() = start;
        return m.loss(in[0]);
      }, {x});
    }
  m.timesteps = DDPM::Timesteps::Uniform;
  Generator b1(9);
  const DDPM::Bound b = m.bound(x, b1);
  for (int64_t n = 0; n < 4; ++n) {
    CHECK(b.prior.at(n) >= 0);  // a KL divergence
  }
  Tensor s = m.sample(6, g);
  for (int64_t i = 0; i < s.numel(); ++i) CHECK(std::abs(s.at(i) * 4 - std::round(s.at(i) * 4)) < 1e-9);
}

TEST_CASE("DDPM: importance-drawn steps: p_t is the bound's weights normalised, and the loss keeps its expectation", "[diffusion]") {
  Generator g(5);
  const NoiseSchedule s = NoiseSchedule::linear(20, 0.01, 0.3);
  DDPM m(3, s, {8}, g, /*levels=*/5, /*embedding=*/4);
  m.to(DType::Float64);
  // p_t from the schedule's own weights (another route than the model's cumulative sums)
  const std::vector<double> p = m.importance_probabilities();
  REQUIRE(p.size() == 20);
  double total = 0;
  for (int64_t t = 0; t < 20; ++t) total += s.eps_weight(t, s.beta[static_cast<size_t>(t)]);
  for (int64_t t = 0; t < 20; ++t) CHECK(p[static_cast<size_t>(t)] == Approx(s.eps_weight(t, s.beta[static_cast<size_t>(t)]) / total).epsilon(1e-6));
  CHECK(p[0] > 2 * p[19]);  // the first steps weigh most
  // the loss over many batches, t drawn uniformly or by importance: the same mean (each objective),
  // and for the bound a smaller spread -- what importance sampling is for
  const Tensor x = dist::index_to_levels(g.randint({8, 3}, 0, 5), 5, DType::Float64);
  for (auto obj : {DDPM::Objective::Simple, DDPM::Objective::Bound}) {
    INFO((obj == DDPM::Objective::Simple ? "simple" : "bound"));
    m.objective = obj;
    std::vector<double> mean_of, var_of;
    for (auto steps : {DDPM::Timesteps::Uniform, DDPM::Timesteps::Importance}) {
      m.timesteps = steps;
      double sum = 0, sum2 = 0;
      const int n = 20000;
      for (int k = 0; k < n; ++k) {
        const double v = m.loss(slice(x, 0, k % 8, k % 8 + 1)).item();  // one example a call: one draw of t
        sum += v, sum2 += v * v;
      }
      mean_of.push_back(sum / n), var_of.push_back((sum2 / n - (sum / n) * (sum / n)) / (n - 1));
    }
    const double se = std::sqrt(var_of[0] + var_of[1]);
    CHECK(std::abs(mean_of[0] - mean_of[1]) <= 4 * se);
    if (obj == DDPM::Objective::Bound) CHECK(var_of[1] < var_of[0]);
  }
  m.timesteps = DDPM::Timesteps::Uniform;
  // a config that names neither sampler is refused
  CHECK_THROWS_WITH(models::make_model("ddpm", R"({"example_shape": [3], "schedule": {"kind": "linear", "T": 20, "beta_1": 0.01, "beta_T": 0.3},
      "levels": 5, "net": {"kind": "mlp", "dims": 3, "hidden": [8], "embedding": 4}, "objective": "bound", "timesteps": "by hand"})", g),
                    Catch::Contains("\"timesteps\" must be \"uniform\" or \"importance\", got \"by hand\""));
}

namespace {
// The zero-initialised layers (each block's second conv, the attention's
// projection, the output conv) would make the U-Net a constant: give every
// parameter a random value so every path carries a gradient.
void randomize(nn::Module& m, Generator& g) {
  for (auto& [name, p] : m.named_parameters()) {
    Tensor q = p;
    nn::init::normal_(q, 0.0, 0.4, g);
  }
}
UNetOptions tiny_unet() {
  UNetOptions o;
  o.channels = 2;
  o.base = 4;
  o.multipliers = {1, 2};
  o.groups = 2;
  o.attention = true;
  return o;
}
}  // namespace

TEST_CASE("U-Net: the DDPM loss gradient-checks through every layer, w.r.t. the data and every parameter tensor", "[diffusion]") {
  Generator g(11);
  auto net = std::make_shared<UNet>(tiny_unet(), g);
  DDPM m(Shape{2, 4, 4}, NoiseSchedule::linear(10, 0.01, 0.3), net, g, /*levels=*/0);
  m.to(DType::Float64);
  randomize(m, g);
  const Tensor x = randn({2, 2, 4, 4}, 3);
  for (auto obj : {DDPM::Objective::Simple, DDPM::Objective::Bound}) {
    m.objective = obj;
    const Generator start = m.noise();
    require_gradcheck([&](const std::vector<Tensor>& in) {
      m.noise() = start;
      return m.loss(in[0]);
    }, {x});
    // each parameter tensor at two elements: backward vs central differences
    m.noise() = start;
    m.zero_grad();
    m.loss(x).backward();
    int64_t checked = 0;
    for (auto& [name, p] : m.named_parameters()) {
      INFO(name);
      const Tensor grad = p.grad();
      REQUIRE(grad.defined());
      for (int64_t e : {int64_t{0}, p.numel() - 1}) {
        Tensor q = p;
        const double numeric = central_difference([&] {
          m.noise() = start;
          return m.loss(x).item();
        }, q, e);
        CHECK(grad.at(e) == Approx(numeric).margin(1e-6).epsilon(1e-5));
        ++checked;
      }
    }
    CHECK(checked >= 2 * 30);  // every block's norms, convs and embedding projection
  }
}

TEST_CASE("U-Net: shapes through 28x28 and 8x8, zero output at initialisation, clear errors", "[diffusion]") {
  Generator g(2);
  UNetOptions o;  // the lesson's defaults: 3 levels, attention
  o.base = 8;
  UNet net(o, g);
  for (int64_t side : {28, 8}) {
    const Tensor x = g.normal({3, 1, side, side});
    const Tensor y = net.predict(x, Tensor::from_vector(std::vector<double>{0, 5, 9}, {3}).to(DType::Int64));
    CHECK(y.shape() == x.shape());
    CHECK(max(abs(y)).item() == 0);  // the output conv starts at zero
  }
  CHECK_THAT(error_of([&] { net.predict(g.normal({1, 1, 30, 30}), Tensor::zeros({1}, DType::Int64)); }),
             Catch::Contains("divisible by 4") && Catch::Contains("[1, 1, 30, 30]"));
  CHECK_THAT(error_of([&] { net.predict(g.normal({1, 3, 8, 8}), Tensor::zeros({1}, DType::Int64)); }),
             Catch::Contains("UNet") && Catch::Contains("[1, 3, 8, 8]"));
  o.groups = 3;
  CHECK_THAT(error_of([&] { UNet bad(o, g); }), Catch::Contains("groups = 3"));
  DDPM m(Shape{1, 8, 8}, NoiseSchedule::linear(10), std::make_shared<UNet>(UNetOptions{}, g), g, 17);
  CHECK_THAT(error_of([&] { m.loss(g.uniform({2, 64})); }), Catch::Contains("[-1, 1, 8, 8]") && Catch::Contains("[2, 64]"));
}

TEST_CASE("U-Net DDPM: the same seed gives the same loss, samples and DDIM samples", "[diffusion]") {
  auto run = [](uint64_t seed) {
    Generator g(seed);
    UNetOptions o = tiny_unet();
    o.channels = 1;
    DDPM m(Shape{1, 4, 4}, NoiseSchedule::linear(8, 0.01, 0.3), std::make_shared<UNet>(o, g), g, 17);
    randomize(m, g);
    std::vector<double> out = {m.loss(g.uniform({3, 1, 4, 4})).item()};
    for (double v : m.sample(2, g).to_vector()) out.push_back(v);
    for (double v : m.sample_ddim(2, 3, g).to_vector()) out.push_back(v);
    return out;
  };
  CHECK(run(5) == run(5));
  CHECK(run(5) != run(6));
}

namespace {
// The exact noise predictor for data x_0 ~ N(0, s^2 I): x_t ~ N(0, (abar s^2 + 1 - abar) I) and
// E[eps | x_t] = sqrt(1 - abar) x_t / (abar s^2 + 1 - abar).
class GaussianDataEps : public NoisePredictor {
 public:
  GaussianDataEps(const NoiseSchedule& s, double sd) : s_(s), var_(sd * sd) {}
  std::string config_json() const override { return "{\"kind\": \"exact for Gaussian data\"}"; }
  Tensor predict(const Tensor& x_t, const Tensor& t, const Tensor& = Tensor()) override {
    std::vector<double> k;
    for (double ti : t.to_vector()) {
      const double ab = s_.alpha_bar[static_cast<size_t>(ti)];
      k.push_back(std::sqrt(1 - ab) / (ab * var_ + 1 - ab));
    }
    return x_t * Tensor::from_vector(k, {t.numel(), 1}).to(x_t.dtype());
  }

 private:
  NoiseSchedule s_;
  double var_;
};
}  // namespace

TEST_CASE("with the exact eps of Gaussian data, ancestral sampling and DDIM both return the data's variance", "[diffusion]") {
  // A second route to the samplers' formulas: for x_0 ~ N(0, s^2) the optimal eps_theta is
  // known in closed form, and either sampler must then give samples of variance s^2.
  const NoiseSchedule s = NoiseSchedule::linear(500, 1e-4, 0.04);
  const double sd = 0.5;
  Generator g(21);
  DDPM m(Shape{4}, s, std::make_shared<GaussianDataEps>(s, sd), g);
  // the predictor has no parameters: the sampler reads its dtype from them
  auto var_of = [](const Tensor& x) {
    double s2 = 0;
    for (double v : x.to_vector()) s2 += v * v;
    return s2 / static_cast<double>(x.numel());
  };
  const double n = 4 * 4000;
  // ancestral: the sample variance's standard error is s^2 sqrt(2 / n)
  CHECK(std::abs(var_of(m.sample(4000, g)) - sd * sd) < 4 * sd * sd * std::sqrt(2 / n));
  // DDIM is deterministic given x_T: x_0 = c x_T with c -> s as the steps shrink
  CHECK(std::abs(var_of(m.sample_ddim(4000, 100, g)) - sd * sd) < 4 * sd * sd * std::sqrt(2 / n) + 2e-3);
  CHECK_THAT(error_of([&] { m.sample_ddim(1, 501, g); }), Catch::Contains("between 1 and T = 500"));
}

TEST_CASE("fit_variances: with the exact eps of Gaussian data, sigma_t^2 is Var(x_{t-1} | x_t) of the joint Gaussian", "[diffusion]") {
  // A second route to Analytic-DPM's beta~_t + c_t m_t: for x_0 ~ N(0, s^2) every x_t is Gaussian,
  // v_t = abar_t s^2 + 1 - abar_t, and the true reverse step's variance is
  // Var(x_{t-1} | x_t) = v_{t-1} - alpha_t v_{t-1}^2 / v_t (v_0 = s^2 for the decoder): the best
  // sigma_t^2 when eps_theta is the exact one.
  const NoiseSchedule s = NoiseSchedule::linear(200, 1e-3, 0.05);
  const double sd = 0.5;
  Generator g(5);
  DDPM m(Shape{4}, s, std::make_shared<GaussianDataEps>(s, sd), g);  // levels 0: the decoder is a Gaussian
  const int64_t n = 20000;
  const DDPM::VarianceFit f = m.fit_variances(g.normal({n, 4}, 0, sd), g);
  REQUIRE(f.after.size() == 200);
  auto v = [&](int64_t i) { return i < 0 ? sd * sd : s.alpha_bar[static_cast<size_t>(i)] * sd * sd + 1 - s.alpha_bar[static_cast<size_t>(i)]; };
  for (int64_t i : {0, 1, 2, 10, 50, 199}) {
    const auto k = static_cast<size_t>(i);
    const double truth = v(i - 1) - s.alpha[k] * v(i - 1) * v(i - 1) / v(i);
    // m_t is a mean of 4n squared errors of variance 2 m_t^2 (Gaussian residuals): 4 standard errors
    const double c = s.beta[k] * s.beta[k] / (s.alpha[k] * (1 - s.alpha_bar[k]));
    const double tol = 4 * c * f.mse[k] * std::sqrt(2.0 / (4.0 * n));
    INFO("step index " << i << ": fitted " << f.after[k] << ", Var(x_{t-1} | x_t) " << truth << ", beta " << s.beta[k]);
    CHECK(std::abs(f.after[k] - truth) <= tol);
    CHECK(m.reverse_variance(i) == Approx(f.after[k]).epsilon(1e-6));  // stored (float32)
    if (i > 0) CHECK(f.after[k] < s.beta[k]);  // the fit moved them: beta_t is not the best here
  }
  CHECK(f.before[0] == Approx(s.beta[0]));
  CHECK_THAT(error_of([&] { m.set_reverse_variances(std::vector<double>(200, 0.0)); }), Catch::Contains("reverse variance 0 is 0"));
  CHECK_THAT(error_of([&] { m.set_reverse_variances({0.1}); }), Catch::Contains("1 reverse variances for T = 200"));
}

TEST_CASE("bound_stratified: an unbiased estimate of the bound over geometric ranges of steps", "[diffusion]") {
  const NoiseSchedule s = NoiseSchedule::linear(1000);
  Generator g(8);
  DDPM m(Shape{4}, s, std::make_shared<GaussianDataEps>(s, 0.5), g);
  // the ranges: from index 1 to T, strictly increasing, the first ones single steps
  const std::vector<int64_t> e = m.strata_edges(16);
  REQUIRE(e.size() == 17);
  CHECK(e.front() == 1);
  CHECK(e.back() == 1000);
  for (size_t j = 1; j < e.size(); ++j) CHECK(e[j] > e[j - 1]);
  CHECK(e[1] - e[0] == 1);
  CHECK(m.strata_edges(5000).size() == 1000);  // more ranges than steps: every step alone
  CHECK_THAT(error_of([&] { m.strata_edges(0); }), Catch::Contains("at least 1 range"));
  // the same examples, the full sum of T terms against 8 ranges (independent draws): equal means
  const Tensor x = g.normal({3000, 4}, 0, 0.5);
  const DDPM::Bound full = m.bound(x, g), strat = m.bound_stratified(x, 8, g);
  const std::vector<double> a = full.total.to_vector(), b = strat.total.to_vector();
  double d = 0, d2 = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) / static_cast<double>(a.size());
  for (size_t i = 0; i < a.size(); ++i) d2 += (a[i] - b[i] - d) * (a[i] - b[i] - d) / static_cast<double>(a.size() - 1);
  const double se = std::sqrt(d2 / static_cast<double>(a.size()));
  INFO("all T terms minus stratified: " << d << " +- " << se);
  CHECK(std::abs(d) <= 4 * se);
  CHECK(se < 0.05 * std::abs(mean(full.total).item()));  // a useful estimate, not only an unbiased one
  // L_T is exact in both
  CHECK(max(abs(full.prior - strat.prior)).item() < 1e-12);
}

TEST_CASE("fit_variances with levels: the decoder's variance from a grid holding beta_1; saved and loaded with the parameters",
          "[diffusion][checkpoint]") {
  Generator g(12);
  DDPM m(3, NoiseSchedule::linear(20, 0.01, 0.3), {8}, g, /*levels=*/5, /*embedding=*/4);
  const Tensor x = dist::index_to_levels(g.randint({64, 3}, 0, 5), 5, DType::Float32);
  const DDPM::VarianceFit f = m.fit_variances(x, g);
  // the grid beta_1 2^(k/4) holds beta_1 itself (k = 0): the chosen one is no worse on the same x_1
  CHECK(f.decoder_after <= f.decoder_before);
  CHECK(std::isfinite(f.decoder_after));
  for (int64_t i = 1; i < 20; ++i) {  // clipped to [beta~_t, beta_t]
    CHECK(m.reverse_variance(i) >= m.schedule().posterior_var[static_cast<size_t>(i)] * (1 - 1e-6));
    CHECK(m.reverse_variance(i) <= m.schedule().beta[static_cast<size_t>(i)] * (1 + 1e-6));
  }
  const std::string path = test::temp_path("dgm_diffusion", "fitted.safetensors");
  save_checkpoint(m, path);
  Generator g2(13);
  DDPM fresh(3, NoiseSchedule::linear(20, 0.01, 0.3), {8}, g2, 5, 4);
  CHECK(fresh.reverse_variance(5) == Approx(m.schedule().beta[5]));  // as built: beta_t
  load_checkpoint(fresh, path);
  for (int64_t i = 0; i < 20; ++i) CHECK(fresh.reverse_variance(i) == m.reverse_variance(i));
  // a checkpoint written before the buffer existed does not fit, and says what is missing
  nn::NamedTensors without;
  for (const auto& [name, t] : load_safetensors(path))
    if (name != "reverse_variance") without.emplace_back(name, t);
  save_safetensors(path, without);
  CHECK_THAT(error_of([&] { load_checkpoint(fresh, path); }), Catch::Contains("reverse_variance"));
}
