// lessons/autoregressive.cpp — autoregressive models: MADE and PixelCNN, exact likelihoods.
//
// 1. The factorisation is a normalised density: the sum of p(x) over all 512
//    binary 3x3 images is 1, at initialisation and after training.
// 2. The autoregressive property: d logit_i / d x_j = 0 for every j at or after i.
// 3. The cost: a likelihood is one network pass, a sample is D passes.
// 4. Training on the 8x8 digits (17 grey levels, the reference split) and,
//    in a full run, on binarized Fashion-MNIST: nats per image, bits per
//    dimension, the train-test gap, samples and completions.
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>
#include <tuple>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"
#include "models/recipes.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/image.h"
#include "models/made.h"
#include "models/pixelcnn.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/progress.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/transforms.h"

using namespace dgm;

namespace {

// MADE works on flat vectors [N, D], PixelCNN on images [N, 1, H, W].
Tensor flat(const Tensor& images) { return reshape(images, {images.size(0), -1}); }

// The 3x3 bars' toy models: Adam on the negative log-likelihood with keep-best on
// validation, the shared trainer with this lesson's output folder and tag.
train::FitResult fit_bars(models::TrainableDensity& m, const Tensor& train_x, const Tensor& val_x, int epochs, int64_t batch,
                          double lr, Generator& gen, lesson::Lesson& L, const std::string& tag) {
  train::FitOptions o;
  o.epochs = epochs;
  o.batch_size = batch;
  o.lr = lr;
  o.tag = tag;
  o.out_dir = L.options().out;
  o.resume = L.options().resume;
  o.data_transform = "3x3 binary images (random bars with 5% pixel noise)";
  return train::fit(m, train_x, val_x, gen, o);
}

// A recipe's model trained on its data set (with the lesson's flags), as the harness would.
train::FitResult fit_recipe(models::TrainableDensity& m, const models::Recipe& r, const data::DataSet& d, Generator& gen,
                            lesson::Lesson& L) {
  train::FitOptions o = L.training(r);
  o.data_transform = d.name + ": " + d.description;
  if (d.prepare) o.prepare = [&d, &gen](const Tensor& x) { return d.prepare(x, gen); };
  const Tensor train_x = r.flat ? flat(d.train) : d.train, val_x = r.flat ? flat(d.validation) : d.validation;
  return train::fit(m, train_x, val_x, gen, o);
}

// Connectivity-agnostic MADE training: a random ordering of a fixed family of
// K per minibatch; the validation NLL of the K-ordering mixture every 10
// epochs, keeping the best parameters.
train::FitResult fit_made_agnostic(models::MADE& made, const Tensor& train_x, const Tensor& val_x, int epochs, int64_t K,
                                   uint64_t seed, Generator& gen, lesson::Lesson& L, const std::string& tag) {
  train::FitOptions o;
  o.epochs = epochs;
  o.batch_size = 50;
  o.validate_every = 10;
  o.tag = tag;
  L.configure(o);
  o.epochs = epochs;  // --epochs is for the recipes' trainings
  o.before_step = [&](const train::StepInfo&) { made.use_ordering(gen.randint(0, K), seed); };
  return train::fit(made, train_x, Tensor(), gen, o, [&] {
    return -train::chunked_means(val_x, 500, [&](const Tensor& x) {
      return std::vector<Tensor>{made.log_prob_ensemble(x, K, seed)};
    })[0];
  });
}

// Every binary 3x3 image, [512, 1, 3, 3] float64.
Tensor all_3x3() {
  Tensor x = Tensor::empty({512, 1, 3, 3}, DType::Float64);
  for (int64_t r = 0; r < 512; ++r)
    for (int64_t d = 0; d < 9; ++d) x.data<double>()[r * 9 + d] = (r >> d) & 1;
  return x;
}

// A 3x3 toy distribution: a random horizontal or vertical bar, with pixel noise.
Tensor bars(int64_t n, Generator& g) {
  Tensor x = Tensor::zeros({n, 1, 3, 3}, DType::Float64);
  for (int64_t i = 0; i < n; ++i) {
    const bool vertical = g.uniform01() < 0.5;
    const int64_t k = g.randint(0, 3);
    for (int64_t a = 0; a < 3; ++a) {
      const int64_t p = vertical ? a * 3 + k : k * 3 + a;
      x.data<double>()[i * 9 + p] = 1;
    }
    for (int64_t p = 0; p < 9; ++p)
      if (g.uniform01() < 0.05) x.data<double>()[i * 9 + p] = 1 - x.data<double>()[i * 9 + p];
  }
  return x;
}

// sum_x p(x) over every binary 3x3 image, in the model's layout.
double total_probability(models::DensityModel& m, bool flat_input) {
  NoGradGuard ng;
  Tensor lp = m.log_prob(flat_input ? flat(all_3x3()) : all_3x3());
  double s = 0;
  for (int64_t i = 0; i < 512; ++i) s += std::exp(lp.at(i));
  return s;
}

// max |d logit_i / d x_j| over the pairs with j at or after i in the ordering.
double max_forbidden_jacobian(const std::function<Tensor(const Tensor&)>& logits, const std::vector<int64_t>& position,
                              const Shape& input_shape, int64_t* pairs) {
  Generator g(1);
  Tensor x = g.uniform(input_shape, 0, 1, DType::Float64).set_requires_grad(true);
  Tensor l = logits(x);
  const int64_t D = x.numel();
  double worst = 0;
  *pairs = 0;
  for (int64_t i = 0; i < D; ++i) {
    Tensor v = Tensor::zeros(l.shape(), DType::Float64);
    v.data<double>()[i] = 1;
    Tensor gx = grad({l}, {x}, {v}, true)[0];
    for (int64_t j = 0; j < D; ++j)
      if (position[static_cast<size_t>(j)] >= position[static_cast<size_t>(i)]) {
        worst = std::max(worst, std::abs(gx.at(j)));
        ++*pairs;
      }
  }
  return worst;
}

// Pictures of who sees whom: MADE's input -> output connectivity (white:
// output i depends on input j, rows and columns in the ordering), and the
// pixels one PixelCNN output depends on (its receptive field, with the blind
// spot of stacked masked convolutions).
void draw_dependencies(models::MADE& made, models::PixelCNN& pix, lesson::Lesson& L) {
  const int64_t D = made.dims();
  Tensor conn = Tensor::zeros({1, 1, D, D});
  for (int64_t a = 0; a < D; ++a) {  // rows: outputs in the ordering
    const int64_t i = made.order()[static_cast<size_t>(a)];
    Tensor v = Tensor::zeros({1, D}, DType::Float64);
    v.data<double>()[i] = 1;
    // d logit_i / d x through every path: use a random point so that no ReLU hides a connection
    Generator g(static_cast<uint64_t>(a));
    Tensor xr = g.uniform({1, D}, 0, 1, DType::Float64).set_requires_grad(true);
    Tensor gx = grad({made.logits(xr)}, {xr}, {v})[0];
    for (int64_t b = 0; b < D; ++b)
      conn.data<float>()[a * D + b] = gx.at(made.order()[static_cast<size_t>(b)]) != 0 ? 1.f : 0.f;
  }
  image::save_image_grid(L.path("made_connectivity.png"), conn, 1, 16, 0);
  const int64_t S = 12, p = 6 * S + 6;
  Generator g(0);
  Tensor xi = g.uniform({1, 1, S, S}, 0, 1, DType::Float64).set_requires_grad(true);
  Tensor out = pix.logits(xi);
  Tensor v = Tensor::zeros(out.shape(), DType::Float64);
  v.data<double>()[p] = 1;
  Tensor gx = grad({out}, {xi}, {v})[0];
  Tensor field = Tensor::empty({1, 3, S, S});
  for (int64_t q = 0; q < S * S; ++q) {
    const bool seen = gx.at(q) != 0, here = q == p;
    field.data<float>()[q] = here ? 1.f : seen ? 0.9f : 0.1f;
    field.data<float>()[S * S + q] = here ? 0.2f : seen ? 0.9f : 0.1f;
    field.data<float>()[2 * S * S + q] = here ? 0.2f : seen ? 0.9f : 0.1f;
  }
  image::save_image_grid(L.path("pixelcnn_receptive_field.png"), field, 1, 24, 0);
  std::cout << "   wrote made_connectivity.png (row i, column j white: output i sees input j, in the ordering)\n"
               "   and pixelcnn_receptive_field.png (the pixels the red one depends on, after 3 masked layers)\n";
}

// One data set, one model: its figures, samples, completions of half-masked
// test images, and metrics. The model's samples are shown as [N, 1, h, w];
// `complete(originals, known_rows)` samples the rest of each image.
void report(models::DensityModel& m, const std::string& tag, const train::FitResult& f, double train_nll,
            const train::Evaluation& test, const Tensor& test_images, int64_t h, int64_t w, Generator& gen,
            lesson::Lesson& L, int64_t n_samples, const std::function<Tensor(const Tensor&, int64_t)>& complete) {
  std::cout << "   " << tag << ": test NLL " << std::fixed << std::setprecision(2) << test.nll_nats << " nats ("
            << std::setprecision(3) << test.bits_per_dim << " bits/dim), train " << std::setprecision(2) << train_nll
            << ", validation " << f.best_validation << "; best epoch " << f.best_epoch << ", " << std::setprecision(0)
            << f.seconds << " s\n";
  const double gap = test.nll_nats - train_nll;
  std::cout << "   train-test gap " << std::setprecision(2) << gap << " nats: "
            << (gap > 0.05 * test.nll_nats ? "the model fits its training images noticeably better than new ones (it memorises)"
                                           : "the model does about as well on new images as on its training images (it generalises)")
            << "\n";
  progress::Stopwatch clock;
  Tensor samples = reshape(m.sample(n_samples, gen), {n_samples, 1, h, w});
  const double sample_seconds = clock.seconds();
  const int up = image::upscale_for(h);
  image::save_image_grid(L.path(tag + "_samples.png"), samples, 0, up, 2);
  // completions: the top half of test images kept, the bottom half sampled
  const int64_t nc = std::min<int64_t>(8, test_images.size(0));
  Tensor originals = slice(test_images, 0, 0, nc);
  Tensor completed = complete(originals, h / 2);
  Tensor masked = originals.contiguous_copy();
  for (int64_t k = 0; k < nc; ++k)
    for (int64_t p = (h / 2) * w; p < h * w; ++p) masked.data<float>()[k * h * w + p] = 0.5f;
  image::save_image_grid(L.path(tag + "_completions.png"), concat({originals, masked, completed}, 0), nc, up, 2);
  std::cout << "   wrote " << tag << "_samples.png, " << tag << "_completions.png (rows: original, observed half, completion)\n";
  L.metric(tag + "_test_nll_nats", test.nll_nats, test.nll_se);
  L.metric(tag + "_bits_per_dim", test.bits_per_dim, train::bits_per_dim(test.nll_se, test.dims));
  L.metric(tag + "_train_nll_nats", train_nll);
  L.metric(tag + "_validation_nll_nats", f.best_validation);
  L.metric(tag + "_train_seconds", f.seconds);
  L.metric(tag + "_sample_seconds", sample_seconds);
}

// Completions for each family: MADE keeps the first rows' dimensions (the
// natural ordering puts them first), PixelCNN the first rows.
std::function<Tensor(const Tensor&, int64_t)> completion(models::MADE& made, Generator& gen) {
  return [&made, &gen](const Tensor& originals, int64_t rows) {
    const int64_t n = originals.size(0), h = originals.size(2), w = originals.size(3);
    Tensor known = Tensor::zeros({h * w});
    for (int64_t i = 0; i < rows * w; ++i) known.data<float>()[i] = 1;
    return reshape(made.complete(flat(originals), known, gen), {n, 1, h, w});
  };
}
std::function<Tensor(const Tensor&, int64_t)> completion(models::PixelCNN& pix, Generator& gen) {
  return [&pix, &gen](const Tensor& originals, int64_t rows) { return pix.complete(originals, rows, gen); };
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("autoregressive", "autoregressive models: MADE and PixelCNN with exact likelihoods");
  bool skip_fashion = false, gated = false;
  L.app().add_flag("--skip-fashion", skip_fashion, "Train on the 8x8 digits only (a full run also trains on Fashion-MNIST)");
  L.app().add_flag("--gated", gated, "Gated residual blocks in PixelCNN (h + Conv1x1(tanh(a) * sigmoid(b)))");
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);

    // ------------------------------------------------------------ 1. normalisation
    std::cout << "\n-- 1. p(x) = prod_i p(x_i | x_<i) is normalised: sum over all 512 binary 3x3 images (float64)\n";
    {
      models::MADE made(9, {32, 32}, 2, gen);
      made.reorder(gen, /*random=*/true);
      made.to(DType::Float64);
      models::PixelCNN pix(2, 16, 2, 3, 3, gen);
      pix.to(DType::Float64);
      L.check_close("MADE (random ordering) at initialisation: sum_x p(x)", total_probability(made, true), 1.0, 1e-6);
      L.check_close("PixelCNN at initialisation: sum_x p(x)", total_probability(pix, false), 1.0, 1e-6);
      Tensor data = bars(2000, gen), val = bars(500, gen);
      const int bar_epochs = opt.quick ? 10 : 30;
      auto fm = fit_bars(made, flat(data), flat(val), bar_epochs, 100, 1e-2, gen, L, "bars_made");
      auto fp = fit_bars(pix, data, val, bar_epochs, 100, 1e-2, gen, L, "bars_pixelcnn");
      L.check_close("MADE after training: sum_x p(x)", total_probability(made, true), 1.0, 1e-6);
      L.check_close("PixelCNN after training: sum_x p(x)", total_probability(pix, false), 1.0, 1e-6);
      L.check_le("MADE learned the bars: validation NLL below the uniform 9 ln 2 nats", fm.best_validation, 9 * std::log(2.0));
      L.check_le("PixelCNN learned the bars: validation NLL below 9 ln 2 nats", fp.best_validation, 9 * std::log(2.0));

      std::cout << "\n   Ensembles over orderings: a MADE trained on 4 orderings at once (connectivity-agnostic)\n";
      models::MADE agn(9, {32, 32}, 2, gen);
      agn.to(DType::Float64);
      fit_made_agnostic(agn, flat(data), flat(val), opt.quick ? 20 : 40, 4, 77, gen, L, "bars_made_4_orderings");
      NoGradGuard ng;
      Tensor all = reshape(all_3x3(), {512, 9});
      Tensor lp = agn.log_prob_ensemble(all, 4, 77);  // log (1/4) sum_k p_k(x)
      double mixture_total = 0, logit_avg_total = 0;
      for (int64_t i = 0; i < 512; ++i) mixture_total += std::exp(lp.at(i));
      Tensor avg_logits = Tensor::zeros({512, 9}, DType::Float64);  // the tempting mistake: average the logits
      for (int64_t k = 0; k < 4; ++k) {
        agn.use_ordering(k, 77);
        avg_logits = avg_logits + agn.logits(all) * 0.25;
      }
      Tensor lp_bad = sum(dist::Bernoulli{avg_logits}.log_prob(all), {1});
      for (int64_t i = 0; i < 512; ++i) logit_avg_total += std::exp(lp_bad.at(i));
      L.check_close("mixture of 4 orderings, (1/4) sum_k p_k(x): sum over all 512 images", mixture_total, 1.0, 1e-6);
      std::cout << "   averaging the 4 orderings' logits instead gives sum_x p(x) = " << std::setprecision(6)
                << logit_avg_total << ": not a distribution\n";
      L.check_le("the logit average is not normalised: 1e-3 <= |sum_x - 1|", 1e-3, std::abs(logit_avg_total - 1.0));
    }

    // ------------------------------------------------------------ 2. the autoregressive property
    std::cout << "\n-- 2. The autoregressive property: d logit_i / d x_j = 0 for j at or after i\n";
    {
      models::MADE made(16, {48}, 2, gen);
      made.reorder(gen, true);
      made.to(DType::Float64);
      std::vector<int64_t> pos(16);
      for (int64_t p = 0; p < 16; ++p) pos[static_cast<size_t>(made.order()[static_cast<size_t>(p)])] = p;
      int64_t pairs = 0;
      double worst = max_forbidden_jacobian([&](const Tensor& x) { return made.logits(x); }, pos, {1, 16}, &pairs);
      L.check_close("MADE: max |J_ij| over the " + std::to_string(pairs) + " pairs with j at or after i", worst, 0, 0);
      models::PixelCNN pix(2, 8, 2, 4, 4, gen);
      pix.to(DType::Float64);
      std::vector<int64_t> raster(16);
      for (int64_t p = 0; p < 16; ++p) raster[static_cast<size_t>(p)] = p;
      worst = max_forbidden_jacobian([&](const Tensor& x) { return pix.logits(x); }, raster, {1, 1, 4, 4}, &pairs);
      L.check_close("PixelCNN: max |J_ij| over the " + std::to_string(pairs) + " pairs with j at or after i (raster order)",
                    worst, 0, 0);
      draw_dependencies(made, pix, L);
    }

    // ------------------------------------------------------------ 3. the cost
    std::cout << "\n-- 3. The cost: a likelihood is one pass, a sample is D passes (8x8 images, D = 64, batch 64)\n";
    {
      models::MADE made(64, {256}, 17, gen);
      models::PixelCNN pix(17, 32, 3, 8, 8, gen);
      std::cout << "   model      passes/likelihood  passes/sample  ms/likelihood  ms/sample\n";
      for (auto [m, passes, input_shape] : {std::tuple<models::DensityModel*, int64_t*, Shape>{&made, &made.passes, {64, 64}},
                                            std::tuple<models::DensityModel*, int64_t*, Shape>{&pix, &pix.passes, {64, 1, 8, 8}}}) {
        Tensor x = reshape(gen.uniform({64, 1, 8, 8}), input_shape);
        x = dist::index_to_levels(dist::levels_to_index(x, 17), 17);  // 17 grey levels
        const int64_t p0 = *passes;
        progress::Stopwatch clock;
        {
          NoGradGuard ng;
          m->log_prob(x);
        }
        const double t_lik = clock.seconds() * 1e3;
        const int64_t p1 = *passes;
        clock.restart();
        m->sample(64, gen);
        const double t_sam = clock.seconds() * 1e3;
        const int64_t p2 = *passes;
        std::cout << "   " << std::left << std::setw(10) << m->name() << std::right << std::setw(12) << p1 - p0 << std::setw(17)
                  << p2 - p1 << std::setw(15) << std::fixed << std::setprecision(2) << t_lik << std::setw(11) << t_sam << "\n";
        L.check_close(m->name() + ": network passes for one likelihood", double(p1 - p0), 1, 0);
        L.check_close(m->name() + ": network passes for one sample", double(p2 - p1), 64, 0);
      }
    }

    // ------------------------------------------------------------ 4. training on real data
    std::cout << "\n-- 4. The 8x8 digits, 17 grey levels (train 1000 / validation 350 / test 447)\n"
                 "   reference points (validation, the book code's curves): autoregressive model ~89 nats, VAE ~100.5,\n"
                 "   uniform model 64 ln 17 = 181.3\n";
    {
      const data::DataSet digits = lesson::harness::data_for("digits17", opt);
      const Tensor &tr = digits.train, &te = digits.test;
      models::Recipe made_recipe = models::recipe("digits_made"), pix_recipe = models::recipe("digits_pixelcnn");
      pix_recipe.set("gated", gated ? "true" : "false");
      auto made_ptr = models::build(made_recipe, opt.quick, gen);
      auto pix_ptr = models::build(pix_recipe, opt.quick, gen);
      auto& made = dynamic_cast<models::MADE&>(*made_ptr);
      auto& pix = dynamic_cast<models::PixelCNN&>(*pix_ptr);
      const double uniform_nll = 64 * std::log(17.0);
      {
        auto f = fit_recipe(made, made_recipe, digits, gen, L);
        const train::Evaluation test = train::evaluate(made, flat(te));
        report(made, "digits_made", f, train::evaluate(made, flat(tr)).nll_nats, test, te, 8, 8, gen, L, 64,
               completion(made, gen));
        L.check_le("digits_made: test NLL below the uniform model's 64 ln 17 nats", test.nll_nats, uniform_nll);
      }
      {
        auto f = fit_recipe(pix, pix_recipe, digits, gen, L);
        const train::Evaluation test = train::evaluate(pix, te);
        report(pix, "digits_pixelcnn", f, train::evaluate(pix, tr).nll_nats, test, te, 8, 8, gen, L, 64,
               completion(pix, gen));
        L.check_le("digits_pixelcnn: test NLL below the uniform model's 64 ln 17 nats", test.nll_nats, uniform_nll);
        if (!opt.quick && opt.epochs == 0 && !digits.synthetic)
          L.check_le("digits_pixelcnn: validation NLL below the reference autoregressive model's ~89 nats",
                     f.best_validation, 89.0);
      }
      // MADE overfits 1,000 images; training on 8 orderings at once and
      // evaluating their mixture regularises it.
      auto agn_ptr = models::build(made_recipe, false, gen);  // the full MADE of the recipe, on 8 orderings
      auto& agn = dynamic_cast<models::MADE&>(*agn_ptr);
      auto fa = fit_made_agnostic(agn, flat(tr), flat(digits.validation), L.epochs(10, 100), 8, 99, gen, L, "digits_made_8_orderings");
      const double agn_test = -train::chunked_means(flat(te), 500, [&](const Tensor& x) {
        return std::vector<Tensor>{agn.log_prob_ensemble(x, 8, 99)};
      })[0];
      std::cout << "   digits_made_8_orderings (mixture of 8 orderings): test NLL " << std::fixed << std::setprecision(2)
                << agn_test << " nats, validation " << fa.best_validation << "; best epoch " << fa.best_epoch << "\n";
      L.metric("digits_made_8_orderings_test_nll_nats", agn_test);
      L.metric("digits_made_8_orderings_validation_nll_nats", fa.best_validation);
    }
    if (!opt.quick && !skip_fashion) {
      std::cout << "\n-- 5. Binarized Fashion-MNIST (dynamic binarization for training, one fixed binarization of the test set)\n"
                   "   reference points (binarized MNIST, not this data): NADE 88.3, MADE 86.64, PixelCNN 81.30 nats\n";
      const data::DataSet fashion = lesson::harness::data_for("fashion_binarized", opt);
      models::Recipe made_recipe = models::recipe("fashion_made"), pix_recipe = models::recipe("fashion_pixelcnn");
      pix_recipe.set("gated", gated ? "true" : "false");
      auto made = models::build(made_recipe, false, gen);
      auto pix = models::build(pix_recipe, false, gen);
      {
        auto f = fit_recipe(*made, made_recipe, fashion, gen, L);
        report(*made, "fashion_made", f, train::evaluate(*made, flat(fashion.train_eval)).nll_nats,
               train::evaluate(*made, flat(fashion.test)), fashion.test, 28, 28, gen, L, 36,
               completion(dynamic_cast<models::MADE&>(*made), gen));
      }
      {
        auto f = fit_recipe(*pix, pix_recipe, fashion, gen, L);
        report(*pix, "fashion_pixelcnn", f, train::evaluate(*pix, fashion.train_eval).nll_nats, train::evaluate(*pix, fashion.test),
               fashion.test, 28, 28, gen, L, 36, completion(dynamic_cast<models::PixelCNN&>(*pix), gen));
      }
    }
  });
}
