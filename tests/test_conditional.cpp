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
