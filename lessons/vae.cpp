// lessons/vae.cpp — the VAE at work on real images.
//
// Trains an MLP VAE (Bernoulli decoder) on dynamically binarized
// Fashion-MNIST (--quick: the 8x8 digits), then reports the test negative
// ELBO split into reconstruction and KL, and the importance-weighted
// estimate of -log p(x) (IWAE, k samples), in nats per image and bits per
// dimension. Pictures: samples, reconstructions, an interpolation, and with
// --latent 2 a map of the latent space. Equations: docs/chapters/vae.md.
#include <cmath>
#include <iomanip>
#include <iostream>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"
#include "models/recipes.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/image.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/transforms.h"
#include "models/vae.h"

using namespace dgm;

namespace {

struct Eval {
  double nelbo = 0, rec = 0, kl = 0;  // per image, nats
  double nelbo_se = 0;                // the -ELBO's standard error over the images (and their one draw each)
};

// The test -ELBO and its two terms, in no-grad chunks (one reparameterised sample per image).
Eval evaluate(models::VAE& vae, const Tensor& X) {
  auto m = train::chunked_means(X, 1000, [&](const Tensor& x) {
    auto t = vae.elbo_terms(x, vae.noise());
    return std::vector<Tensor>{t.elbo, t.rec, t.kl, square(t.elbo)};
  });
  const double n = static_cast<double>(X.size(0));
  return {-m[0], -m[1], m[2], std::sqrt(std::max(0.0, m[3] - m[0] * m[0]) / (n - 1))};
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("vae", "the variational autoencoder on binarized images: ELBO, IWAE, samples");
  int64_t latent = 16;
  int iwae_k = 0;
  L.app().add_option("--latent", latent, "Latent dimensions (2 draws a latent map)")->capture_default_str()->check(CLI::PositiveNumber);
  double kl_warmup = -1;
  L.app().add_option("--kl-warmup", kl_warmup, "Epochs over which the KL term's weight rises from 0 to 1 in the training loss (default: the recipe's; 0: none)")
      ->check(CLI::NonNegativeNumber);
  L.app().add_option("--iwae-k", iwae_k, "Importance samples for the IWAE estimate (0: 1000, or 100 with --quick)")->check(CLI::NonNegativeNumber);
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);

    // ------------------------------------------------------------ the recipe: fashion_vae, or digits_vae for --quick
    models::Recipe recipe = models::recipe(opt.quick ? "digits_vae" : "fashion_vae");
    recipe.set("latent_dim", std::to_string(latent));
    const data::DataSet d = lesson::harness::data_for(recipe.data, opt);
    const int64_t h = d.train.size(2), w = d.train.size(3), D = h * w;
    const Tensor train_x = reshape(d.train, {d.train.size(0), D});
    const Tensor test_x = reshape(d.test, {d.test.size(0), D});  // one fixed binarization
    const int64_t n_test = test_x.size(0);
    auto model = models::build(recipe, opt.quick, gen);
    auto& vae = dynamic_cast<models::VAE&>(*model);
    train::FitOptions o = L.training(recipe);
    const int epochs = o.epochs;
    std::cout << "\n-- Training on " << d.description << ": " << train_x.size(0) << " train / " << n_test << " test images\n   "
              << recipe.title(opt.quick) << " (encoder " << D << "-...-(" << latent << ", " << latent << "), decoder mirrored); "
              << vae.num_parameters() << " parameters; Adam " << o.lr << ", batch " << o.batch_size << ", " << epochs << " epochs\n";
    if (kl_warmup < 0) kl_warmup = recipe.training(opt.quick).kl_warmup_epochs;
    if (kl_warmup > 0)
      std::cout << "   KL warm-up: the training loss weighs the KL term by w rising from 0 to 1 over the first " << kl_warmup
                << " epochs (the curve's train column is that loss; the test columns are the -ELBO)\n";

    const Eval before = evaluate(vae, test_x);
    o.data_transform = d.name + ": " + d.description + "; flattened to " + std::to_string(D) + " values";
    o.keep_best = false;  // the curve's second column is the test set: watched, never selected on
    o.prepare = [&](const Tensor& x) { return d.prepare(x, gen); };  // a fresh binarization
    o.train_column = "train_nelbo_nats";
    o.validation_column = "test_nelbo_nats";
    o.validation_label = "test";
    o.curve_title = "VAE: negative ELBO per image";
    o.extra_columns = {"test_rec_nats", "test_kl_nats"};
    if (kl_warmup > 0) o.before_step = models::kl_warmup(vae, kl_warmup);
    Eval last;
    o.extra = [&] { return std::vector<double>{last.rec, last.kl}; };
    const train::FitResult fr = train::fit(vae, train_x, Tensor(), gen, o, [&] {
      last = evaluate(vae, test_x);
      return last.nelbo;
    });
    vae.kl_weight = 1.0;  // a run shorter than its warm-up ends below 1; the loss is the -ELBO again

    // ------------------------------------------------------------ evaluation
    std::cout << "\n-- Test figures (nats per image; " << D << " pixels)\n";
    const Eval te = evaluate(vae, test_x);
    vae.iwae_k = iwae_k > 0 ? iwae_k : (opt.quick ? 100 : 1000);
    const int64_t n_iwae = std::min<int64_t>(n_test, opt.quick ? n_test : 1000);
    const train::Evaluation iwae = train::evaluate(vae, slice(test_x, 0, 0, n_iwae));
    const Eval te_same = evaluate(vae, slice(test_x, 0, 0, n_iwae));
    std::cout << std::fixed << std::setprecision(2) << "   -ELBO " << te.nelbo << " = reconstruction " << te.rec << " + KL "
              << te.kl << "   (before training: " << before.nelbo << ")\n"
              << "   -log p(x) <= " << iwae.kind << ", on the first " << n_iwae << " test images: " << iwae.nll_nats
              << " (their -ELBO: " << te_same.nelbo << ")\n"
              << "   bits per dimension: " << std::setprecision(4) << iwae.bits_per_dim << "\n";
    {
      // The KL term two ways: in closed form (what training uses) against its
      // Monte Carlo estimate E_q[log q(z|x) - log p(z)] (IWAE with k = 1 is
      // log p(x|z) + log p(z) - log q(z|x) at one z ~ q). Both -ELBO estimates,
      // repeated over R draws on the same images, agree within their standard errors.
      const int R = 20;
      const Tensor probe = slice(test_x, 0, 0, std::min<int64_t>(200, n_test));
      std::vector<double> closed, sampled;
      for (int r = 0; r < R; ++r) {
        closed.push_back(evaluate(vae, probe).nelbo);
        sampled.push_back(-train::chunked_means(probe, 1000, [&](const Tensor& x) {
          return std::vector<Tensor>{vae.iwae(x, 1, vae.noise())};
        })[0]);
      }
      auto [mc, sc] = lesson::mean_and_se(closed);
      auto [ms, ss] = lesson::mean_and_se(sampled);
      L.check_close("-ELBO with the closed-form KL vs with the Monte Carlo KL (" + std::to_string(R) +
                        " draws, tolerance 4 standard errors)",
                    mc, ms, 4 * std::sqrt(sc * sc + ss * ss));
    }
    L.check_le("the KL term is non-negative (minus KL <= 0)", -te.kl, 0.0);
    {  // both are Monte Carlo estimates: the ELBO's standard error from the one-sample ELBO of each image
      const train::Evaluation elbo1 = [&] {
        const int64_t k = vae.iwae_k;
        vae.iwae_k = 1;  // IWAE with k = 1 is the one-sample ELBO
        const train::Evaluation e = train::evaluate(vae, slice(test_x, 0, 0, n_iwae));
        vae.iwae_k = k;
        return e;
      }();
      L.check_le("IWAE_k bound is tighter than the ELBO: IWAE NLL <= -ELBO on the same images (+ 4 standard errors of the two means)",
                 iwae.nll_nats, te_same.nelbo + 4 * std::hypot(iwae.nll_se, elbo1.nll_se));
    }
    L.check_le("training lowered the test -ELBO below the untrained model's (about D ln 2: a fair coin per pixel)",
               te.nelbo, before.nelbo);
    L.metric("test_nelbo_nats", te.nelbo, te.nelbo_se);
    L.metric("test_rec_nats", te.rec);
    L.metric("test_kl_nats", te.kl);
    L.metric("test_iwae_nll_nats", iwae.nll_nats, iwae.nll_se);
    L.metric("test_iwae_k", static_cast<double>(vae.iwae_k));
    L.metric("test_iwae_images", static_cast<double>(n_iwae));
    L.metric("bits_per_dim", iwae.bits_per_dim, train::bits_per_dim(iwae.nll_se, iwae.dims));
    L.metric("epochs", epochs);
    L.metric("latent_dims", static_cast<double>(latent));
    L.metric("kl_warmup_epochs", std::max(0.0, kl_warmup));

    // ------------------------------------------------------------ pictures
    const int up = image::upscale_for(h);
    image::save_image_grid(L.path("samples.png"), reshape(vae.sample_means(64, gen), {64, 1, h, w}), 8, up, 2);
    {
      NoGradGuard ng;
      Tensor originals = slice(test_x, 0, 0, 16);
      Tensor recon = vae.decode_means(vae.encode(originals).mu);  // x -> mean of q(z|x) -> decoder mean
      image::save_image_grid(L.path("reconstructions.png"), reshape(concat({originals, recon}, 0), {32, 1, h, w}), 16, up, 2);
      // a straight line in latent space between the posterior means of two test images
      auto a = vae.encode(slice(test_x, 0, 0, 1)).mu, b = vae.encode(slice(test_x, 0, 1, 2)).mu;
      std::vector<Tensor> zs;
      for (int i = 0; i <= 9; ++i) zs.push_back(a * (1 - i / 9.0) + b * (i / 9.0));
      image::save_image_grid(L.path("interpolation.png"), reshape(vae.decode_means(concat(zs, 0)), {10, 1, h, w}), 10, up, 2);
      if (latent == 2) {
        std::vector<Tensor> grid;
        for (int i = 0; i < 15; ++i)
          for (int j = 0; j < 15; ++j)
            grid.push_back(Tensor::from_vector(std::vector<float>{-3.f + 6.f * j / 14, 3.f - 6.f * i / 14}, {1, 2}));
        image::save_image_grid(L.path("latent_map.png"), reshape(vae.decode_means(concat(grid, 0)), {225, 1, h, w}), 15,
                               up / 2 + 1, 1);
      }
    }
    std::cout << "   wrote samples.png, reconstructions.png (top: test images, bottom: reconstructions), interpolation.png"
              << (latent == 2 ? ", latent_map.png" : "") << ", " << recipe.tag << "_curve.png\n";
  });
}
