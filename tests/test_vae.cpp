// The VAE: the closed-form KL, and a tiny VAE whose log p(x) is known by
// quadrature: the IWAE estimate with large k matches it, and
// ELBO <= IWAE_k <= IWAE_k' <= log p(x).
#include "helpers.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "models/toolkit/distributions.h"
#include "models/vae.h"

using namespace dgm;
using namespace dgm::test;

TEST_CASE("KL(N(mu, s^2) || N(0, 1)) in closed form against quadrature", "[vae]") {
  for (auto [mu, lv] : {std::pair{0.0, 0.0}, std::pair{1.5, -1.0}, std::pair{-0.7, 0.8}}) {
    const double s = std::exp(0.5 * lv);
    double kl = 0, h = 1e-3;
    for (double z = mu - 12 * s; z <= mu + 12 * s; z += h) {
      const double q = std::exp(-0.5 * (z - mu) * (z - mu) / (s * s)) / (s * std::sqrt(2 * M_PI));
      const double p = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
      if (q > 0) kl += q * std::log(q / p) * h;
    }
    Tensor m = Tensor::scalar(mu, DType::Float64), l = Tensor::scalar(lv, DType::Float64);
    CHECK(dist::Normal{m, l}.kl_to_standard().item() == Approx(kl).epsilon(1e-6));
  }
}

namespace {
// log p(x) of every 4-pixel binary image by quadrature over the 1-D latent:
// p(x) = int N(z; 0, 1) prod_i p(x_i | z) dz on [-12, 12], trapezoid rule.
std::vector<double> exact_log_px(models::VAE& vae, const Tensor& X) {
  NoGradGuard ng;
  const int64_t G = 24001;
  const double lo = -12, h = 24.0 / (G - 1);
  Tensor z = Tensor::empty({G, 1}, DType::Float64);
  for (int64_t i = 0; i < G; ++i) z.data<double>()[i] = lo + h * static_cast<double>(i);
  Tensor logits = vae.decode(z);  // [G, 4]
  std::vector<double> out;
  for (int64_t n = 0; n < X.size(0); ++n) {
    Tensor x = expand(slice(X, 0, n, n + 1), {G, 4});
    Tensor lj = sum(dist::Bernoulli{logits}.log_prob(x), {1}) + reshape(square(z), {G}) * -0.5 - 0.5 * std::log(2 * M_PI);
    std::vector<double> v = lj.to_vector();
    double m = *std::max_element(v.begin(), v.end()), s = 0;
    for (int64_t i = 0; i < G; ++i) s += (i == 0 || i == G - 1 ? 0.5 : 1.0) * std::exp(v[i] - m);
    out.push_back(m + std::log(s * h));
  }
  return out;
}
}  // namespace

TEST_CASE("a tiny VAE: IWAE with k = 50000 matches log p(x) by quadrature, and ELBO <= IWAE_k <= IWAE_k' <= log p(x)", "[vae]") {
  Generator g(1);
  models::VAE vae(4, {16}, 1, models::Decoder::Bernoulli, g);
  vae.to(DType::Float64);
  // training data that give every one of the 16 images some mass: two
  // prototypes with 15% of the pixels flipped, so q(z|x) is fitted everywhere
  const Tensor data = two_prototype_images(g, 512);
  optim::Adam opt(vae.parameters(), 0.01);
  for (int step = 0; step < 1000; ++step) {
    opt.zero_grad();
    vae.loss(data, g).backward();
    opt.step();
  }
  const Tensor X = reshape(every_binary_image(2, 2), {16, 4});
  std::vector<double> exact = exact_log_px(vae, X);
  double total = 0;
  for (double v : exact) total += std::exp(v);
  CHECK(total == Approx(1.0).epsilon(1e-6));  // a distribution over the 16 images

  NoGradGuard ng;
  Tensor iw_large = vae.iwae(X, 50000, g);
  // averages over repeats, so the inequalities hold beyond Monte Carlo noise
  auto avg = [&](int64_t k, int reps) {
    std::vector<double> acc(16, 0.0);
    for (int r = 0; r < reps; ++r) {
      Tensor v = vae.iwae(X, k, g);
      for (int64_t i = 0; i < 16; ++i) acc[static_cast<size_t>(i)] += v.at(i) / reps;
    }
    return acc;
  };
  std::vector<double> elbo(16, 0.0);
  for (int r = 0; r < 20000; ++r) {
    Tensor e = vae.elbo_terms(X, g).elbo;
    for (int64_t i = 0; i < 16; ++i) elbo[static_cast<size_t>(i)] += e.at(i) / 20000;
  }
  std::vector<double> iw1 = avg(1, 20000), iw10 = avg(10, 5000), iw1000 = avg(1000, 100);
  for (int64_t i = 0; i < 16; ++i) {
    INFO("image " << i << ": ELBO " << elbo[i] << ", IWAE_1 " << iw1[i] << ", IWAE_10 " << iw10[i] << ", IWAE_1000 "
                  << iw1000[i] << ", IWAE_50000 " << iw_large.at(i) << ", log p(x) " << exact[i]);
    CHECK(std::abs(iw_large.at(i) - exact[static_cast<size_t>(i)]) < 0.01);
    CHECK(std::abs(iw1[i] - elbo[i]) < 0.02);  // IWAE_1 is the ELBO
    CHECK(elbo[i] <= iw10[i] + 0.01);
    CHECK(iw10[i] <= iw1000[i] + 0.01);
    CHECK(iw1000[i] <= exact[static_cast<size_t>(i)] + 0.01);
  }
}

TEST_CASE("gradcheck: the reparameterised ELBO of a tiny VAE, through encoder, sampling and decoder", "[vae][gradcheck]") {
  Generator g(2);
  models::VAE vae(3, {4}, 2, models::Decoder::Gaussian, g);
  vae.to(DType::Float64);
  // d(-ELBO)/dx runs through the decoder's likelihood and, via z = mu(x) + sigma(x) eps,
  // through the encoder: every path of the model's backward.
  require_gradcheck(
      [&](const std::vector<Tensor>& v) {
        Generator fixed(7);  // the same eps for every evaluation
        return vae.loss(v[0], fixed);
      },
      {g.normal({2, 3}, 0, 1, DType::Float64)});
}
