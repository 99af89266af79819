// Class-conditional models (models/conditional.h, docs/chapters/conditional.md): each family's
// p(x | y) is a distribution for every y (by enumeration or quadrature, not by its own code),
// Bayes' rule and the mixture, classifier-free guidance's two ends, SIR's proportions, and the
// errors for missing or bad labels.
#include "helpers.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "models/conditional.h"
#include "models/diffusion.h"
#include "models/pixelcnn.h"
#include "models/registry.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/trainer.h"
#include "models/unet.h"
#include "models/vae.h"

using namespace dgm;
using namespace dgm::test;

namespace {
// Moves every parameter by N(0, scale^2): class terms that start at 0 are no longer 0.
void perturb(nn::Module& m, double scale, uint64_t seed) {
  NoGradGuard ng;
  Generator g(seed);
  for (Tensor& p : m.parameters()) p.copy_(p + g.normal(p.shape(), 0, scale, p.dtype()));
}
}  // namespace

TEST_CASE("conditional PixelCNN: p(x | y) sums to 1 over every 3x3 binary image for each class, and p(x) is their mixture", "[conditional]") {
  Generator g(3);
  models::PixelCNN m(2, 8, 2, 3, 3, g, false, 4, 2);  // 4 classes, 2 class maps
  m.to(DType::Float64);
  perturb(m, 0.5, 11);
  const Tensor X = every_binary_image(3, 3);  // 512 images
  const int64_t n = X.size(0);
  NoGradGuard ng;
  const Tensor ll = models::class_log_likelihoods(m, X);  // [512, 4]
  REQUIRE(ll.shape() == Shape{n, 4});
  for (int64_t k = 0; k < 4; ++k) {
    long double total = 0;
    for (int64_t r = 0; r < n; ++r) total += std::exp(static_cast<long double>(ll.at(r * 4 + k)));
    CHECK(static_cast<double>(total) == Approx(1.0).margin(1e-10));
  }
  // the classes differ (the class terms reach the output), and log_prob is the uniform mixture
  CHECK(std::abs(ll.at(5 * 4 + 0) - ll.at(5 * 4 + 3)) > 1e-3);
  const Tensor lp = m.log_prob(X);
  long double total = 0;
  for (int64_t r = 0; r < n; ++r) {
    long double mix = 0;
    for (int64_t k = 0; k < 4; ++k) mix += std::exp(static_cast<long double>(ll.at(r * 4 + k))) / 4;
    CHECK(lp.at(r) == Approx(static_cast<double>(std::log(mix))).margin(1e-10));
    total += std::exp(static_cast<long double>(lp.at(r)));
  }
  CHECK(static_cast<double>(total) == Approx(1.0).margin(1e-10));
  // Bayes' rule: the log posterior against the plain ratio in long double
  const Tensor post = models::log_posterior(ll);
  for (int64_t r = 0; r < n; r += 37) {
    long double denom = 0;
    for (int64_t k = 0; k < 4; ++k) denom += std::exp(static_cast<long double>(ll.at(r * 4 + k)));
    for (int64_t k = 0; k < 4; ++k)
      CHECK(post.at(r * 4 + k) == Approx(static_cast<double>(std::log(std::exp(static_cast<long double>(ll.at(r * 4 + k))) / denom))).margin(1e-12));
  }
}

TEST_CASE("conditional PixelCNN: sampling x ~ p(x | y) on 2x2 images matches the enumerated p(x | y)", "[conditional]") {
  Generator g(5);
  models::PixelCNN m(2, 8, 1, 2, 2, g, false, 2, 1);
  perturb(m, 0.7, 13);
  NoGradGuard ng;
  const Tensor X = every_binary_image(2, 2).to(DType::Float32);
  const Tensor ll = models::class_log_likelihoods(m, X);  // [16, 2]
  const int64_t draws = 4000;
  const Tensor s = m.sample_given(Tensor::full({draws}, 1.0, DType::Int64), g);
  std::vector<double> counts(16, 0);
  for (int64_t i = 0; i < draws; ++i) {
    int64_t code = 0;
    for (int64_t d = 0; d < 4; ++d) code |= static_cast<int64_t>(s.at(i * 4 + d) > 0.5) << d;
    counts[static_cast<size_t>(code)] += 1;
  }
  for (int64_t r = 0; r < 16; ++r) {
    const double p = std::exp(ll.at(r * 2 + 1)), se = std::sqrt(p * (1 - p) / draws);
    CHECK(counts[static_cast<size_t>(r)] / draws == Approx(p).margin(4 * se + 1e-9));
  }
}

TEST_CASE("conditional models: missing, extra or out-of-range labels are errors that say so", "[conditional]") {
  Generator g(1);
  models::PixelCNN cond(2, 4, 1, 4, 4, g, false, 3);
  models::PixelCNN plain(2, 4, 1, 4, 4, g);
  const Tensor x = Tensor::zeros({2, 1, 4, 4});
  CHECK(error_of([&] { cond.logits(x); }).find("needs labels") != std::string::npos);
  CHECK(error_of([&] { plain.logits(x, Tensor::zeros({2}, DType::Int64)); }).find("unconditional") != std::string::npos);
  const std::string bad = error_of([&] { cond.log_prob_given(x, Tensor::from_indices({0, 3}, {2})); });
  CHECK(bad.find("label 3 of example 1 is not in 0..2") != std::string::npos);
  CHECK(error_of([&] { cond.log_prob_given(x, Tensor::from_indices({0}, {1})); }).find("int64 [2]") != std::string::npos);
  train::FitOptions o;
  o.progress = false;
  const std::string fit_error = error_of([&] { train::fit_given(plain, x, Tensor::zeros({2}, DType::Int64), Tensor(), Tensor(), g, o); });
  CHECK(fit_error.find("not class-conditional") != std::string::npos);
  models::VAE vae(16, {8}, 2, models::Decoder::Bernoulli, g, 3);
  CHECK(error_of([&] { vae.loss(Tensor::zeros({2, 16}), g); }).find("needs labels") != std::string::npos);
}

TEST_CASE("conditional VAE: IWAE_k(x | y) with large k matches log p(x | y) by quadrature, for each class, both priors", "[conditional]") {
  const bool class_prior = GENERATE(false, true);
  INFO((class_prior ? "p(z | y) learned per class" : "p(z) = N(0, 1)"));
  Generator g(2);
  models::VAE vae(4, {16}, 1, models::Decoder::Bernoulli, g, 2, class_prior);
  vae.to(DType::Float64);
  // trained briefly so that q(z | x, y) is close to the posterior (the IWAE's noise is then small):
  // class 0 near the image 1100, class 1 near 0011, 15% of the pixels flipped
  const Tensor data = two_prototype_images(g, 512);
  std::vector<int64_t> labels;
  for (int64_t n = 0; n < 512; ++n) labels.push_back(n % 2);
  const Tensor y = Tensor::from_indices(labels, {512});
  optim::Adam opt(vae.parameters(), 0.01);
  for (int step = 0; step < 1000; ++step) {
    opt.zero_grad();
    vae.loss_given(data, y).backward();
    opt.step();
  }
  const Tensor X = reshape(every_binary_image(2, 2), {16, 4});
  NoGradGuard ng;
  for (int64_t k = 0; k < 2; ++k) {
    // log p(x | y) = log int p(z | y) prod_i p(x_i | z, y) dz on m +- 12 s, trapezoid rule; p(z | y) = N(m, s^2)
    // (m = 0, s = 1 without a class prior; else the class's learned parameters, read by name)
    double m = 0, lv = 0;
    if (class_prior) {
      for (const auto& [name, p] : vae.named_parameters()) {
        if (name == "prior_mu") m = p.at(k);
        if (name == "prior_logvar") lv = p.at(k);
      }
      CHECK(std::abs(m) + std::abs(lv) > 1e-3);  // training moved them
    }
    const double sd = std::exp(0.5 * lv);
    const int64_t G = 12001;
    const double h = 24.0 * sd / (G - 1);
    Tensor z = Tensor::empty({G, 1}, DType::Float64);
    for (int64_t i = 0; i < G; ++i) z.data<double>()[i] = m - 12 * sd + h * static_cast<double>(i);
    const Tensor logits = vae.decode(z, Tensor::full({G}, static_cast<double>(k), DType::Int64));
    double total = 0;
    const Tensor iw = vae.iwae(X, 20000, g, Tensor::full({16}, static_cast<double>(k), DType::Int64));
    for (int64_t r = 0; r < 16; ++r) {
      const Tensor lj = sum(dist::Bernoulli{logits}.log_prob(expand(slice(X, 0, r, r + 1), {G, 4})), {1}) +
                        reshape(square((z - m) / sd), {G}) * -0.5 - 0.5 * std::log(2 * M_PI) - std::log(sd);
      const std::vector<double> v = lj.to_vector();
      const double top = *std::max_element(v.begin(), v.end());
      double s = 0;
      for (int64_t i = 0; i < G; ++i) s += (i == 0 || i == G - 1 ? 0.5 : 1.0) * std::exp(v[static_cast<size_t>(i)] - top);
      const double exact = top + std::log(s * h);
      total += std::exp(exact);
      CHECK(iw.at(r) <= exact + 2e-3);                     // a lower bound (up to its noise)
      CHECK(iw.at(r) == Approx(exact).margin(0.01));       // and a tight one at k = 20000
    }
    CHECK(total == Approx(1.0).epsilon(1e-6));  // p(. | y) is a distribution over the 16 images
  }
}

namespace {
// The class prior of a VAE read by name: m [C, d], and S = L L^T with L = diag(exp(l / 2)) + T
struct ReadPrior {
  int64_t d;
  std::vector<double> m, l, T;
  double L(int64_t c, int64_t a, int64_t b) const {
    return a == b ? std::exp(0.5 * l[c * d + a]) : a > b ? T[(c * d + a) * d + b] : 0.0;
  }
  double S(int64_t c, int64_t a, int64_t b) const {
    double s = 0;
    for (int64_t k = 0; k < d; ++k) s += L(c, a, k) * L(c, b, k);
    return s;
  }
};
ReadPrior read_prior(const models::VAE& vae) {
  ReadPrior r{vae.latent_dim(), {}, {}, {}};
  for (const auto& [name, p] : vae.named_parameters()) {
    if (name == "prior_mu") r.m = p.to_vector();
    if (name == "prior_logvar") r.l = p.to_vector();
  }
  for (const auto& [name, b] : vae.named_buffers())
    if (name == "prior_tril") r.T = b.to_vector();
  REQUIRE(!r.m.empty());
  REQUIRE(!r.T.empty());
  return r;
}
// A tiny conditional VAE (4 pixels, latent 2, 2 classes, a learned prior per class), trained briefly on
// two prototype images per class (15% of the pixels flipped), in float64
std::unique_ptr<models::VAE> tiny_cvae(Generator& g, Tensor& data, Tensor& y) {
  auto vae = std::make_unique<models::VAE>(4, std::vector<int64_t>{16}, 2, models::Decoder::Bernoulli, g, 2, true);
  vae->to(DType::Float64);
  data = two_prototype_images(g, 512);
  std::vector<int64_t> labels;
  for (int64_t n = 0; n < 512; ++n) labels.push_back(n % 2);
  y = Tensor::from_indices(labels, {512});
  optim::Adam opt(vae->parameters(), 0.01);
  for (int step = 0; step < 600; ++step) {
    opt.zero_grad();
    vae->loss_given(data, y).backward();
    opt.step();
  }
  return vae;
}
}  // namespace

TEST_CASE("conditional VAE: the refitted full-covariance prior's log p(z | y), KL and samples against the 2x2 formulas", "[conditional]") {
  Generator g(5);
  Tensor data, y;
  auto vae = tiny_cvae(g, data, y);
  CHECK_FALSE(vae->full_covariance_prior());
  const auto [before, after] = vae->refit_class_prior(data, y);
  CHECK(vae->full_covariance_prior());
  CHECK(after < before);  // the KL is the only term that changes, and the refit minimises it
  const ReadPrior P = read_prior(*vae);
  for (int64_t c = 0; c < 2; ++c) CHECK(std::abs(P.T[(c * 2 + 1) * 2 + 0]) > 1e-4);  // a correlation was fitted
  NoGradGuard ng;
  // log N(z; m, S) by the 2x2 inverse and determinant, against the model's forward substitution
  const Tensor z = g.normal({6, 2}, 0, 2, DType::Float64);
  const Tensor yz = Tensor::from_indices({0, 1, 0, 1, 0, 1}, {6});
  const Tensor lp = vae->prior_log_prob(z, yz);
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t c = i % 2;
    const double a = P.S(c, 0, 0), b = P.S(c, 0, 1), dd = P.S(c, 1, 1), det = a * dd - b * b;
    const double u = z.at(i * 2) - P.m[c * 2], v = z.at(i * 2 + 1) - P.m[c * 2 + 1];
    const double quad = (dd * u * u - 2 * b * u * v + a * v * v) / det;
    CHECK(lp.at(i) == Approx(-0.5 * quad - 0.5 * std::log(det) - std::log(2 * M_PI)).margin(1e-10));
  }
  // KL(q || p) in closed form (elbo_terms) against the 2x2 formula
  // 1/2 [tr(S^-1 diag s^2) + (mu - m)^T S^-1 (mu - m) - 2 + log det S - sum log s^2]
  const Tensor x = slice(data, 0, 0, 6), yx = slice(y, 0, 0, 6);
  const models::VAE::Posterior q = vae->encode(x, yx);
  const Tensor kl = vae->elbo_terms(x, g, yx).kl;
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t c = yx.at(i) > 0.5 ? 1 : 0;
    const double a = P.S(c, 0, 0), b = P.S(c, 0, 1), dd = P.S(c, 1, 1), det = a * dd - b * b;
    const double s0 = std::exp(q.logvar.at(i * 2)), s1 = std::exp(q.logvar.at(i * 2 + 1));
    const double u = q.mu.at(i * 2) - P.m[c * 2], v = q.mu.at(i * 2 + 1) - P.m[c * 2 + 1];
    const double expected = 0.5 * ((dd * s0 + a * s1) / det + (dd * u * u - 2 * b * u * v + a * v * v) / det - 2 + std::log(det) -
                                   q.logvar.at(i * 2) - q.logvar.at(i * 2 + 1));
    CHECK(kl.at(i) == Approx(expected).margin(1e-10));
  }
  // z ~ p(z | y): the sample mean and covariance against m and S (4 standard errors)
  const int64_t n = 200000;
  for (int64_t c = 0; c < 2; ++c) {
    const std::vector<double> zs = vae->sample_latent(Tensor::full({n}, static_cast<double>(c), DType::Int64), g).to_vector();
    double m0 = 0, m1 = 0, s00 = 0, s01 = 0, s11 = 0;
    for (int64_t i = 0; i < n; ++i) m0 += zs[i * 2] / n, m1 += zs[i * 2 + 1] / n;
    for (int64_t i = 0; i < n; ++i) {
      const double u = zs[i * 2] - m0, v = zs[i * 2 + 1] - m1;
      s00 += u * u / n, s01 += u * v / n, s11 += v * v / n;
    }
    const double a = P.S(c, 0, 0), b = P.S(c, 0, 1), dd = P.S(c, 1, 1);
    CHECK(m0 == Approx(P.m[c * 2]).margin(4 * std::sqrt(a / n)));
    CHECK(m1 == Approx(P.m[c * 2 + 1]).margin(4 * std::sqrt(dd / n)));
    CHECK(s00 == Approx(a).margin(4 * a * std::sqrt(2.0 / n)));
    CHECK(s11 == Approx(dd).margin(4 * dd * std::sqrt(2.0 / n)));
    CHECK(s01 == Approx(b).margin(4 * std::sqrt((a * dd + b * b) / n)));
  }
}

TEST_CASE("conditional VAE: the refitted prior is the best Gaussian: any nudge of m or L raises the summed KL", "[conditional]") {
  Generator g(6);
  Tensor data, y;
  auto vae = tiny_cvae(g, data, y);
  const double after = vae->refit_class_prior(data, y).second;
  NoGradGuard ng;
  auto mean_kl = [&] { return mean(vae->elbo_terms(data, g, y).kl).item(); };
  CHECK(mean_kl() == Approx(after).epsilon(1e-12));
  Tensor mu, lv, tril;
  for (const auto& [name, p] : vae->named_parameters()) {
    if (name == "prior_mu") mu = p;
    if (name == "prior_logvar") lv = p;
  }
  for (const auto& [name, b] : vae->named_buffers())
    if (name == "prior_tril") tril = b;
  for (Tensor* t : {&mu, &lv, &tril})
    for (int64_t i = 0; i < t->numel(); ++i) {
      if (t == &tril && i % 4 != 2) continue;  // T's one free entry per class: [c][1][0]
      for (double h : {-0.05, 0.05}) {
        const Tensor saved = t->clone();
        std::vector<double> v = saved.to_vector();
        v[static_cast<size_t>(i)] += h;
        t->copy_(Tensor::from_vector(v, saved.shape()));
        INFO("entry " << i << " moved by " << h);
        CHECK(mean_kl() > after);
        t->copy_(saved);
      }
    }
}

TEST_CASE("conditional VAE: with the refitted prior, IWAE_k(x | y) matches log p(x | y) by 2-D quadrature, for each class", "[conditional]") {
  Generator g(7);
  Tensor data, y;
  auto vae = tiny_cvae(g, data, y);
  vae->refit_class_prior(data, y);
  const ReadPrior P = read_prior(*vae);
  const Tensor X = reshape(every_binary_image(2, 2), {16, 4});
  NoGradGuard ng;
  for (int64_t c = 0; c < 2; ++c) {
    // p(x | y) = int N(u; 0, I) p(x | z = m + L u, y) du on [-7, 7]^2, trapezoid rule (z = m + L u maps N(0, I) to p(z | y))
    const int64_t G = 281;
    const double h = 14.0 / (G - 1);
    Tensor z = Tensor::empty({G * G, 2}, DType::Float64);
    std::vector<double> log_nu(static_cast<size_t>(G * G)), weight(static_cast<size_t>(G * G));
    for (int64_t i = 0; i < G; ++i)
      for (int64_t j = 0; j < G; ++j) {
        const double u0 = -7 + h * static_cast<double>(i), u1 = -7 + h * static_cast<double>(j);
        const int64_t r = i * G + j;
        z.data<double>()[r * 2] = P.m[c * 2] + P.L(c, 0, 0) * u0;
        z.data<double>()[r * 2 + 1] = P.m[c * 2 + 1] + P.L(c, 1, 0) * u0 + P.L(c, 1, 1) * u1;
        log_nu[static_cast<size_t>(r)] = -0.5 * (u0 * u0 + u1 * u1) - std::log(2 * M_PI);
        weight[static_cast<size_t>(r)] = (i == 0 || i == G - 1 ? 0.5 : 1.0) * (j == 0 || j == G - 1 ? 0.5 : 1.0) * h * h;
      }
    const Tensor logits = vae->decode(z, Tensor::full({G * G}, static_cast<double>(c), DType::Int64));
    const Tensor iw = vae->iwae(X, 20000, g, Tensor::full({16}, static_cast<double>(c), DType::Int64));
    double total = 0;
    for (int64_t r = 0; r < 16; ++r) {
      const std::vector<double> ll = sum(dist::Bernoulli{logits}.log_prob(expand(slice(X, 0, r, r + 1), {G * G, 4})), {1}).to_vector();
      double s = 0;
      for (size_t k = 0; k < ll.size(); ++k) s += weight[k] * std::exp(ll[k] + log_nu[k]);
      const double exact = std::log(s);
      total += s;
      INFO("class " << c << ", image " << r);
      CHECK(iw.at(r) <= exact + 2e-3);
      CHECK(iw.at(r) == Approx(exact).margin(0.02));
    }
    CHECK(total == Approx(1.0).epsilon(1e-6));
  }
}

TEST_CASE("conditional VAE: refit_class_prior's errors name the problem", "[conditional]") {
  Generator g(8);
  models::VAE plain(4, {8}, 2, models::Decoder::Bernoulli, g, 2, false);
  const Tensor x = two_prototype_images(g, 8);
  const Tensor y = Tensor::from_indices({0, 1, 0, 1, 0, 1, 0, 1}, {8});
  CHECK_THAT(error_of([&] { plain.refit_class_prior(x, y); }), Catch::Contains("no prior per class"));
  models::VAE vae(4, {8}, 2, models::Decoder::Bernoulli, g, 2, true);
  vae.to(DType::Float64);
  CHECK_THAT(error_of([&] { vae.refit_class_prior(x, Tensor::zeros({8}, DType::Int64)); }), Catch::Contains("class 1 has no examples"));
  CHECK_THAT(error_of([&] { vae.refit_class_prior(x, slice(y, 0, 0, 4)); }), Catch::Contains("VAE::refit_class_prior"));
  // a misspelt prior or decoder is an error, not N(0, I) or a Bernoulli decoder by default
  CHECK_THAT(error_of([&] { models::make_model("vae", R"({"data_dim": 4, "hidden": [8], "latent_dim": 2, "decoder": "bernoulli", "classes": 2, "prior": "clas"})", g); }),
             Catch::Contains("\"prior\" must be") && Catch::Contains("clas"));
  CHECK_THAT(error_of([&] { models::make_model("vae", R"({"data_dim": 4, "hidden": [8], "latent_dim": 2, "decoder": "binary"})", g); }),
             Catch::Contains("\"decoder\" must be") && Catch::Contains("binary"));
}

TEST_CASE("conditional DDPM: guidance at w = 0 is the conditional noise, at w = -1 the unconditional one, linear in w", "[conditional]") {
  Generator g(4);
  auto net = std::make_shared<models::MLPNoisePredictor>(6, std::vector<int64_t>{16}, g, 8, 3);
  models::DDPM m(Shape{6}, models::NoiseSchedule::linear(10, 0.02, 0.3), net, g);
  perturb(m, 0.3, 19);
  NoGradGuard ng;
  const Tensor x = g.normal({5, 6}), t = Tensor::from_indices({0, 3, 9, 4, 1}, {5}), y = Tensor::from_indices({0, 2, 1, 1, 0}, {5});
  const Tensor cond = m.predict_noise(x, t, y), none = m.predict_noise(x, t);  // separate evaluations
  const Tensor none_by_label = m.predict_noise(x, t, Tensor::full({5}, 3.0, DType::Int64));
  auto max_diff = [](const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); };
  CHECK(max_diff(none, none_by_label) == 0.0);  // no labels: the "none" label
  CHECK(max_diff(cond, none) > 1e-3);           // the label matters
  CHECK(max_diff(m.guided_noise(x, t, y, 0.0), cond) <= 1e-6);
  CHECK(max_diff(m.guided_noise(x, t, y, -1.0), none) <= 1e-6);
  CHECK(max_diff(m.guided_noise(x, t, y, 2.5), cond * 3.5 - none * 2.5) <= 1e-5);
  // the config round trip keeps classes and p_uncond
  m.p_uncond = 0.25;
  auto back = models::make_model("ddpm", m.config_json(), g);
  auto& d = dynamic_cast<models::DDPM&>(*back);
  CHECK(d.classes() == 3);
  CHECK(d.p_uncond == 0.25);
  CHECK(error_of([&] { m.guided_noise(x, t, Tensor::full({5}, 3.0, DType::Int64), 1.0); }).find("not in 0..2") != std::string::npos);
}

TEST_CASE("conditional DDPM: loss_given drops p_uncond of the labels to none", "[conditional]") {
  // a predictor that records the labels it sees
  struct Spy : models::NoisePredictor {
    explicit Spy(int64_t classes) { add_class_vectors(classes, 2); }
    Tensor predict(const Tensor& x_t, const Tensor&, const Tensor& y) override {
      seen = y;
      return x_t * 0.0;
    }
    std::string config_json() const override { return R"({"kind": "spy"})"; }
    Tensor seen;
  };
  Generator g(6);
  auto spy = std::make_shared<Spy>(4);
  models::DDPM m(Shape{3}, models::NoiseSchedule::linear(5, 0.1, 0.2), spy, g);
  m.p_uncond = 0.3;
  const int64_t n = 20000;
  m.loss_given(Tensor::zeros({n, 3}), Tensor::full({n}, 2.0, DType::Int64));
  int64_t dropped = 0, other = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = spy->seen.at(i);
    if (v == 4) ++dropped;
    else if (v != 2) ++other;
  }
  CHECK(other == 0);  // a label is kept or dropped, never changed
  CHECK(static_cast<double>(dropped) / n == Approx(0.3).margin(4 * std::sqrt(0.3 * 0.7 / n)));
}

TEST_CASE("sampling-importance-resampling picks indices in proportion to their weights", "[conditional]") {
  Generator g(8);
  const Tensor lw = Tensor::from_vector(std::vector<double>{std::log(1.0), std::log(3.0), -INFINITY, std::log(6.0)}, {4});
  const int64_t n = 20000;
  const Tensor idx = models::sir_indices(lw, n, g);
  std::vector<double> c(4, 0);
  for (int64_t i = 0; i < n; ++i) c[static_cast<size_t>(idx.at(i))] += 1;
  for (auto [k, p] : {std::pair{0, 0.1}, std::pair{1, 0.3}, std::pair{2, 0.0}, std::pair{3, 0.6}})
    CHECK(c[static_cast<size_t>(k)] / n == Approx(p).margin(4 * std::sqrt(p * (1 - p) / n) + 1e-12));
  CHECK(error_of([&] { models::sir_indices(Tensor::full({3}, -INFINITY, DType::Float64), 5, g); }).find("every one of the 3 weights is 0") !=
        std::string::npos);
}

TEST_CASE("the thresholded data sets: pixel > 0.5 of the grey images, with their labels", "[conditional]") {
  const data::DataSet t = data::load_data_set("digits_thresholded"), g = data::load_data_set("digits17");
  REQUIRE(t.train.shape() == g.train.shape());
  REQUIRE(t.test_labels.numel() == t.test.size(0));
  for (int64_t i = 0; i < g.test.numel(); ++i) REQUIRE(t.test.at(i) == (g.test.at(i) > 0.5 ? 1.0 : 0.0));
  for (int64_t i = 0; i < g.test_labels.numel(); ++i) REQUIRE(t.test_labels.at(i) == g.test_labels.at(i));
  CHECK(t.levels == 2);
  CHECK(t.name == "digits_thresholded");
}
