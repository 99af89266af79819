// Known wrong solutions of the ELBO / VAE homework lose points.
#include <cmath>

#include "homework/vae/exercises.h"
#include "tests/homework/helpers.h"

using namespace hw::vae;
using hw_test::grade;

TEST_CASE("vae homework: wrong KLs lose points", "[homework]") {
  Functions f = linked();
  SECTION("the log-variance term's sign flipped") {
    f.gaussian_kl = [](const Tensor& mu, const Tensor& lv) { return 0.5 * dgm::sum(dgm::exp(lv) + dgm::square(mu) - 1.0 + lv, {1}); };
    hw_test::require_caught(grade(exercises(f), "gaussian_kl"), "quadrature");
  }
  SECTION("without the 1/2") {
    f.gaussian_kl = [](const Tensor& mu, const Tensor& lv) { return dgm::sum(dgm::exp(lv) + dgm::square(mu) - 1.0 - lv, {1}); };
    hw_test::require_caught(grade(exercises(f), "gaussian_kl"), "quadrature");
  }
  SECTION("per dimension, [N, Z]: not summed over the latent dimensions") {
    f.gaussian_kl = [](const Tensor& mu, const Tensor& lv) { return 0.5 * (dgm::exp(lv) + dgm::square(mu) - 1.0 - lv); };
    hw_test::require_caught(grade(exercises(f), "gaussian_kl"), "[N]");
  }
  SECTION("summed over the batch too") {
    f.gaussian_kl = [](const Tensor& mu, const Tensor& lv) { return 0.5 * dgm::sum(dgm::exp(lv) + dgm::square(mu) - 1.0 - lv); };
    hw_test::require_caught(grade(exercises(f), "gaussian_kl"), "[N]");
  }
}

TEST_CASE("vae homework: wrong ELBOs lose points", "[homework]") {
  Functions f = linked();
  auto rec = [](const Tensor& x, const Tensor& z, const Decoder& dec) {
    return -dgm::sum(dgm::binary_cross_entropy_with_logits(dec(z), x, dgm::Reduction::None), {1});
  };
  SECTION("the KL with its sign flipped") {
    f.elbo = [rec](const Tensor& x, const Tensor& mu, const Tensor& lv, const Tensor& eps, const Decoder& dec) {
      return rec(x, mu + dgm::exp(0.5 * lv) * eps, dec) + gaussian_kl(mu, lv);
    };
    const auto r = grade(exercises(f), "elbo");
    hw_test::require_caught(r, "long double");
    hw_test::require_caught(r, "below log p(x)");
  }
  SECTION("the variance where the standard deviation belongs") {
    f.elbo = [rec](const Tensor& x, const Tensor& mu, const Tensor& lv, const Tensor& eps, const Decoder& dec) {
      return rec(x, mu + dgm::exp(lv) * eps, dec) - gaussian_kl(mu, lv);
    };
    hw_test::require_caught(grade(exercises(f), "elbo"), "long double");
  }
  SECTION("z detached from the encoder (no reparameterisation gradient)") {
    f.elbo = [rec](const Tensor& x, const Tensor& mu, const Tensor& lv, const Tensor& eps, const Decoder& dec) {
      return rec(x, (mu + dgm::exp(0.5 * lv) * eps).detach(), dec) - gaussian_kl(mu, lv);
    };
    hw_test::require_caught(grade(exercises(f), "elbo"), "gradcheck");
  }
}

TEST_CASE("vae homework: wrong IWAE bounds lose points", "[homework]") {
  Functions f = linked();
  SECTION("log of the mean of exp, unstabilised") {
    f.iwae_bound = [](const Tensor& lw) { return dgm::log(dgm::mean(dgm::exp(lw), {0})); };
    hw_test::require_caught(grade(exercises(f), "iwae_bound"), "stable");
  }
  SECTION("a sum, not a mean (log K missing)") {
    f.iwae_bound = [](const Tensor& lw) { return dgm::logsumexp(lw, {0}); };
    hw_test::require_caught(grade(exercises(f), "iwae_bound"), "long double");
  }
  SECTION("the mean of the log weights (the average ELBO)") {
    f.iwae_bound = [](const Tensor& lw) { return dgm::mean(lw, {0}); };
    hw_test::require_caught(grade(exercises(f), "iwae_bound"), "long double");
  }
}
