// lessons/vae.cpp — the VAE at work on real images.
//
// Trains an MLP VAE (Bernoulli decoder) on dynamically binarized
// Fashion-MNIST (--quick: the 8x8 digits), then reports the test negative
// ELBO split into reconstruction and KL, and the importance-weighted
// estimate of -log p(x) (IWAE, k samples), in nats per image and bits per
// dimension. Pictures: samples, reconstructions, an interpolation, and with
// --latent 2 a map of the latent space. Equations: docs/chapters/vae.md.
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "lessons/common/lesson.h"
#include "models/datasets.h"
#include "models/image.h"
#include "models/plot.h"
#include "models/transforms.h"
#include "models/vae.h"

using namespace dgm;

namespace {

struct Eval {
  double nelbo = 0, rec = 0, kl = 0;  // per image, nats: nelbo = -rec + kl
};

Eval evaluate(models::VAE& vae, const Tensor& X, Generator& gen) {
  NoGradGuard ng;
  Eval e;
  const int64_t n = X.size(0);
  for (int64_t s = 0; s < n; s += 1000) {
    auto t = vae.elbo_terms(slice(X, 0, s, std::min(n, s + 1000)), gen);
    e.rec += sum(t.rec).item();
    e.kl += sum(t.kl).item();
  }
  e.rec /= static_cast<double>(n);
  e.kl /= static_cast<double>(n);
  e.nelbo = -e.rec + e.kl;
  return e;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("vae", "the variational autoencoder on binarized images: ELBO, IWAE, samples");
  int64_t latent = 16;
  int iwae_k = 0;
  L.app().add_option("--latent", latent, "Latent dimensions (2 draws a latent map)")->capture_default_str()->check(CLI::PositiveNumber);
  L.app().add_option("--iwae-k", iwae_k, "Importance samples for the IWAE estimate (0: 1000, or 100 with --quick)")->check(CLI::NonNegativeNumber);
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);

    // ------------------------------------------------------------ data
    data::ImageSet train, test;
    std::string name;
    if (opt.quick) {
      bool synthetic = false;
      train = data::digits_or_synthetic(data::Split::Train, opt.data, &synthetic);
      test = data::digits_or_synthetic(data::Split::Test, opt.data, &synthetic);
      name = std::string(synthetic ? "synthetic 8x8 glyphs (the digits are not installed: scripts/get-digits.sh)" : "8x8 digits") +
             " (grey level / 16 as the Bernoulli probability, binarized afresh every epoch)";
    } else {
      train = data::fashion_mnist(data::Split::Train, opt.data);
      test = data::fashion_mnist(data::Split::Test, opt.data);
      name = "Fashion-MNIST, dynamically binarized";
    }
    const int64_t h = train.images.size(2), w = train.images.size(3), D = h * w;
    Tensor train_x = reshape(train.images, {train.size(), D});
    Tensor test_x = data::binarize_static(reshape(test.images, {test.size(), D}), 0);  // one fixed binarization
    const int epochs = opt.epochs > 0 ? opt.epochs : (opt.quick ? 60 : 100);
    const std::vector<int64_t> hidden = opt.quick ? std::vector<int64_t>{128} : std::vector<int64_t>{512, 256};
    const int64_t batch = opt.quick ? 50 : 128;
    models::VAE vae(D, hidden, latent, models::Decoder::Bernoulli, gen);
    std::cout << "\n-- Training on " << name << ": " << train.size() << " train / " << test.size() << " test images\n"
              << "   encoder " << D;
    for (auto hh : hidden) std::cout << "-" << hh;
    std::cout << "-(" << latent << ", " << latent << "), decoder mirrored; " << vae.num_parameters() << " parameters; Adam 1e-3, batch "
              << batch << ", " << epochs << " epochs\n";

    const Eval before = evaluate(vae, test_x, gen);
    optim::Adam adam(vae.parameters(), 1e-3);
    data::Batches batches(train.size(), batch);
    std::vector<std::vector<double>> curve;
    lesson::ProgressBar bar("train", epochs);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t step = 0;
    for (int e = 1; e <= epochs; ++e) {
      double total = 0;
      int64_t seen = 0;
      for (const Tensor& idx : batches.epoch(gen)) {
        Tensor x = data::binarize_dynamic(index_select(train_x, 0, idx), gen);  // a fresh binarization
        adam.zero_grad();
        Tensor loss = vae.loss(x, gen);  // -ELBO, summed over pixels, averaged over the batch
        lesson::Lesson::require_finite(loss.item(), "the training loss (negative ELBO)", step++);
        loss.backward();
        adam.step();
        total += loss.item() * static_cast<double>(x.size(0));
        seen += x.size(0);
      }
      const Eval te = evaluate(vae, test_x, gen);
      curve.push_back({double(e), total / double(seen), te.nelbo, te.rec, te.kl});
      std::ostringstream st;
      st << std::fixed << std::setprecision(2) << "train -ELBO " << total / double(seen) << ", test " << te.nelbo;
      bar.update(e, st.str());
    }
    bar.finish();
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    L.write_csv("loss.csv", {"epoch", "train_nelbo_nats", "test_nelbo_nats", "test_rec_nats", "test_kl_nats"}, curve);
    plot::line_plot(L.path("loss.csv"), L.path("loss.png"), "VAE: negative ELBO per image", "epoch", "nats", 1,
                    {{2, "train"}, {3, "test"}});

    // ------------------------------------------------------------ evaluation
    std::cout << "\n-- Test figures (nats per image; " << D << " pixels)\n";
    const Eval te = evaluate(vae, test_x, gen);
    const int k = iwae_k > 0 ? iwae_k : (opt.quick ? 100 : 1000);
    const int64_t n_iwae = std::min<int64_t>(test.size(), opt.quick ? test.size() : 1000);
    double iwae_nll;
    {
      NoGradGuard ng;
      iwae_nll = -mean(vae.iwae(slice(test_x, 0, 0, n_iwae), k, gen)).item();
    }
    const Eval te_same = evaluate(vae, slice(test_x, 0, 0, n_iwae), gen);
    std::cout << std::fixed << std::setprecision(2) << "   -ELBO " << te.nelbo << " = reconstruction " << -te.rec << " + KL "
              << te.kl << "   (before training: " << before.nelbo << ")\n"
              << "   -log p(x) <= IWAE estimate with k = " << k << " on the first " << n_iwae << " test images: " << iwae_nll
              << " (their -ELBO: " << te_same.nelbo << ")\n"
              << "   bits per dimension: " << std::setprecision(4) << iwae_nll / (static_cast<double>(D) * std::log(2.0)) << "\n";
    L.check_close("-ELBO = -E log p(x|z) + KL, per test image", te.nelbo, -te.rec + te.kl, 1e-9);
    L.check_le("the KL term is non-negative (minus KL <= 0)", -te.kl, 0.0);
    L.check_le("IWAE_k bound is tighter than the ELBO: IWAE NLL <= -ELBO on the same images", iwae_nll, te_same.nelbo);
    L.check_le("training lowered the test -ELBO below the untrained model's (about D ln 2: a fair coin per pixel)",
               te.nelbo, before.nelbo);
    L.metric("test_nelbo_nats", te.nelbo);
    L.metric("test_rec_nats", -te.rec);
    L.metric("test_kl_nats", te.kl);
    L.metric("test_iwae_nll_nats", iwae_nll);
    L.metric("test_iwae_k", k);
    L.metric("test_iwae_images", static_cast<double>(n_iwae));
    L.metric("bits_per_dim", iwae_nll / (static_cast<double>(D) * std::log(2.0)));
    L.metric("train_seconds", train_seconds);
    L.metric("epochs", epochs);
    L.metric("latent_dims", static_cast<double>(latent));

    // ------------------------------------------------------------ pictures
    const int up = h <= 8 ? 6 : 2;
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
              << (latent == 2 ? ", latent_map.png" : "") << ", loss.png\n";
  });
}
