// lessons/ar.cpp — autoregressive models: MADE and PixelCNN, exact likelihoods.
//
// 1. The factorisation is a normalised density: the sum of p(x) over all 512
//    binary 3x3 images is 1, at initialisation and after training.
// 2. The autoregressive property: d logit_i / d x_j = 0 for every j at or after i.
// 3. The cost: a likelihood is one network pass, a sample is D passes.
// 4. Training on the 8x8 digits (17 grey levels, the reference split) and,
//    in a full run, on binarized Fashion-MNIST: nats per image, bits per
//    dimension, the train-test gap, samples and completions.
#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>

#include "autograd/graph.h"
#include "autograd/optim.h"
#include "lessons/common/lesson.h"
#include "models/datasets.h"
#include "models/distributions.h"
#include "models/image.h"
#include "models/made.h"
#include "models/pixelcnn.h"
#include "models/plot.h"
#include "models/transforms.h"

using namespace dgm;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A model seen through images [N, 1, H, W]: MADE works on flat vectors, PixelCNN on images.
struct ARModel {
  std::string name;
  nn::Module* module;
  std::function<Tensor(const Tensor&)> log_prob;                       // images -> [N]
  std::function<Tensor(int64_t, Generator&, const Tensor&, int64_t)> sample;  // n, gen, observed, known rows
  std::function<int64_t()> passes;
};

ARModel wrap(models::MADE& m, int64_t h, int64_t w) {
  return {"made", &m, [&m](const Tensor& x) { return m.log_prob(reshape(x, {x.size(0), -1})); },
          [&m, h, w](int64_t n, Generator& g, const Tensor& obs, int64_t rows) {
            Tensor known;
            if (rows > 0) {
              known = Tensor::zeros({h * w});
              for (int64_t i = 0; i < rows * w; ++i) known.data<float>()[i] = 1;
            }
            Tensor o = obs.defined() ? reshape(obs, {n, h * w}) : Tensor();
            return reshape(m.sample(n, g, o, known), {n, 1, h, w});
          },
          [&m] { return m.passes; }};
}

ARModel wrap(models::PixelCNN& m, int64_t h, int64_t w) {
  return {"pixelcnn", &m, [&m](const Tensor& x) { return m.log_prob(x); },
          [&m, h, w](int64_t n, Generator& g, const Tensor& obs, int64_t rows) { return m.sample(n, h, w, g, obs, rows); },
          [&m] { return m.passes; }};
}

// Mean negative log-likelihood in nats per image over a data set, in batches.
double mean_nll(const ARModel& m, const Tensor& images, int64_t batch = 500) {
  NoGradGuard ng;
  double total = 0;
  const int64_t n = images.size(0);
  for (int64_t s = 0; s < n; s += batch) total -= sum(m.log_prob(slice(images, 0, s, std::min(n, s + batch)))).item();
  return total / static_cast<double>(n);
}

struct Fit {
  double train_nll = 0, val_nll = 0, test_nll = 0, seconds = 0;
  int best_epoch = 0;
};

// Adam on the negative log-likelihood; keeps the parameters of the epoch with
// the best validation NLL (early stopping). `prepare` maps a raw batch to the
// model's data (e.g. a fresh binarization).
Fit train(const ARModel& m, const Tensor& train_x, const Tensor& val_x, int epochs, int64_t batch, double lr,
          Generator& gen, lesson::Lesson& L, const std::string& tag,
          const std::function<Tensor(const Tensor&)>& prepare) {
  optim::Adam opt(m.module->parameters(), lr);
  data::Batches batches(train_x.size(0), batch);
  std::vector<Tensor> best;
  for (auto& p : m.module->parameters()) best.push_back(p.contiguous_copy());
  Fit f;
  f.val_nll = INFINITY;
  std::vector<std::vector<double>> curve;
  lesson::ProgressBar bar(tag, epochs);
  const auto t0 = Clock::now();
  int64_t step = 0;
  for (int e = 1; e <= epochs; ++e) {
    double total = 0;
    int64_t seen = 0;
    for (const Tensor& idx : batches.epoch(gen)) {
      Tensor x = prepare(index_select(train_x, 0, idx));
      opt.zero_grad();
      Tensor loss = mean(neg(m.log_prob(x)));
      lesson::Lesson::require_finite(loss.item(), tag + " training NLL", step++);
      loss.backward();
      opt.step();
      total += loss.item() * static_cast<double>(x.size(0));
      seen += x.size(0);
    }
    const double val = mean_nll(m, val_x);
    curve.push_back({double(e), total / double(seen), val});
    if (val < f.val_nll) {
      f.val_nll = val;
      f.best_epoch = e;
      auto ps = m.module->parameters();
      for (size_t i = 0; i < ps.size(); ++i) best[i] = ps[i].contiguous_copy();
    }
    std::ostringstream st;
    st << std::fixed << std::setprecision(2) << "train " << total / double(seen) << ", validation " << val << " nats";
    bar.update(e, st.str());
  }
  bar.finish();
  f.seconds = seconds_since(t0);
  {
    NoGradGuard ng;
    auto ps = m.module->parameters();
    for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(best[i]);
  }
  L.write_csv(tag + "_curve.csv", {"epoch", "train_nll_nats", "validation_nll_nats"}, curve);
  plot::line_plot(L.path(tag + "_curve.csv"), L.path(tag + "_curve.png"), tag + ": negative log-likelihood", "epoch",
                  "nats per image", 1, {{2, "train (running)"}, {3, "validation"}});
  return f;
}

// Connectivity-agnostic MADE training: a random ordering of a fixed family of
// K per minibatch; the validation NLL of the K-ordering mixture every 10
// epochs, keeping the best parameters.
Fit train_made_agnostic(models::MADE& made, const Tensor& train_x, const Tensor& val_x, int epochs, int64_t K,
                        uint64_t seed, Generator& gen, const std::string& tag) {
  optim::Adam opt(made.parameters(), 1e-3);
  data::Batches batches(train_x.size(0), 50);
  auto flat = [&](const Tensor& x) { return reshape(x, {x.size(0), -1}); };
  auto ens_nll = [&](const Tensor& x) {
    NoGradGuard ng;
    return -mean(made.log_prob_ensemble(flat(x), K, seed)).item();
  };
  std::vector<Tensor> best;
  for (auto& p : made.parameters()) best.push_back(p.contiguous_copy());
  Fit f;
  f.val_nll = INFINITY;
  lesson::ProgressBar bar(tag, epochs);
  const auto t0 = Clock::now();
  for (int e = 1; e <= epochs; ++e) {
    for (const Tensor& idx : batches.epoch(gen)) {
      made.use_ordering(gen.randint(0, K), seed);
      opt.zero_grad();
      Tensor loss = mean(neg(made.log_prob(flat(index_select(train_x, 0, idx)))));
      loss.backward();
      opt.step();
    }
    if (e % 10 == 0 || e == epochs) {
      const double v = ens_nll(val_x);
      if (v < f.val_nll) {
        f.val_nll = v;
        f.best_epoch = e;
        auto ps = made.parameters();
        for (size_t i = 0; i < ps.size(); ++i) best[i] = ps[i].contiguous_copy();
      }
    }
    bar.update(e);
  }
  bar.finish();
  f.seconds = seconds_since(t0);
  NoGradGuard ng;
  auto ps = made.parameters();
  for (size_t i = 0; i < ps.size(); ++i) ps[i].copy_(best[i]);
  return f;
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

double total_probability(const ARModel& m) {
  NoGradGuard ng;
  Tensor lp = m.log_prob(all_3x3());
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

// Samples, completions of half-masked test images, metrics: one data set, one model.
void report(const ARModel& m, const std::string& tag, const Fit& f, const Tensor& test_x, int64_t h, int64_t w,
            int64_t levels, Generator& gen, lesson::Lesson& L, int64_t n_samples) {
  const double D = static_cast<double>(h * w);
  std::cout << "   " << tag << ": test NLL " << std::fixed << std::setprecision(2) << f.test_nll << " nats ("
            << std::setprecision(3) << f.test_nll / (D * std::log(2.0)) << " bits/dim), train " << std::setprecision(2)
            << f.train_nll << ", validation " << f.val_nll << "; best epoch " << f.best_epoch << ", " << std::setprecision(0)
            << f.seconds << " s\n";
  const double gap = f.test_nll - f.train_nll;
  std::cout << "   train-test gap " << std::setprecision(2) << gap << " nats: "
            << (gap > 0.05 * f.test_nll ? "the model fits its training images noticeably better than new ones (it memorises)"
                                        : "the model does about as well on new images as on its training images (it generalises)")
            << "\n";
  const auto t0 = Clock::now();
  Tensor samples = m.sample(n_samples, gen, Tensor(), 0);
  const double sample_seconds = seconds_since(t0);
  image::save_image_grid(L.path(tag + "_samples.png"), samples, 0, h <= 8 ? 6 : 2, 2);
  // completions: the top half of test images kept, the bottom half sampled
  const int64_t nc = std::min<int64_t>(8, test_x.size(0));
  Tensor originals = slice(test_x, 0, 0, nc);
  Tensor completed = m.sample(nc, gen, originals, h / 2);
  Tensor masked = originals.contiguous_copy();
  for (int64_t k = 0; k < nc; ++k)
    for (int64_t p = (h / 2) * w; p < h * w; ++p) masked.data<float>()[k * h * w + p] = 0.5f;
  image::save_image_grid(L.path(tag + "_completions.png"), concat({originals, masked, completed}, 0), nc, h <= 8 ? 6 : 2, 2);
  std::cout << "   wrote " << tag << "_samples.png, " << tag << "_completions.png (rows: original, observed half, completion)\n";
  L.metric(tag + "_test_nll_nats", f.test_nll);
  L.metric(tag + "_bits_per_dim", f.test_nll / (D * std::log(2.0)));
  L.metric(tag + "_train_nll_nats", f.train_nll);
  L.metric(tag + "_validation_nll_nats", f.val_nll);
  L.metric(tag + "_train_seconds", f.seconds);
  L.metric(tag + "_sample_seconds", sample_seconds);
  (void)levels;
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("ar", "autoregressive models: MADE and PixelCNN with exact likelihoods");
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
      models::PixelCNN pix(2, 16, 2, gen);
      pix.to(DType::Float64);
      ARModel am = wrap(made, 3, 3), ap = wrap(pix, 3, 3);
      L.check_close("MADE (random ordering) at initialisation: sum_x p(x)", total_probability(am), 1.0, 1e-6);
      L.check_close("PixelCNN at initialisation: sum_x p(x)", total_probability(ap), 1.0, 1e-6);
      Tensor data = bars(2000, gen), val = bars(500, gen);
      auto same = [](const Tensor& x) { return x; };
      Fit fm = train(am, data, val, opt.quick ? 10 : 30, 100, 1e-2, gen, L, "bars_made", same);
      Fit fp = train(ap, data, val, opt.quick ? 10 : 30, 100, 1e-2, gen, L, "bars_pixelcnn", same);
      L.check_close("MADE after training: sum_x p(x)", total_probability(am), 1.0, 1e-6);
      L.check_close("PixelCNN after training: sum_x p(x)", total_probability(ap), 1.0, 1e-6);
      L.check_le("MADE learned the bars: validation NLL below the uniform 9 ln 2 nats", fm.val_nll, 9 * std::log(2.0));
      L.check_le("PixelCNN learned the bars: validation NLL below 9 ln 2 nats", fp.val_nll, 9 * std::log(2.0));

      std::cout << "\n   Ensembles over orderings: a MADE trained on 4 orderings at once (connectivity-agnostic)\n";
      models::MADE agn(9, {32, 32}, 2, gen);
      agn.to(DType::Float64);
      train_made_agnostic(agn, data, val, opt.quick ? 20 : 40, 4, 77, gen, "bars_made_4_orderings");
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
      Tensor lp_bad = sum(dist::bernoulli_log_prob(avg_logits, all), {1});
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
      models::PixelCNN pix(2, 8, 2, gen);
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
      models::PixelCNN pix(17, 32, 3, gen);
      ARModel ms[] = {wrap(made, 8, 8), wrap(pix, 8, 8)};
      std::cout << "   model      passes/likelihood  passes/sample  ms/likelihood  ms/sample\n";
      for (ARModel& m : ms) {
        Tensor x = gen.uniform({64, 1, 8, 8});
        x = dist::index_to_levels(dist::levels_to_index(x, 17), 17);  // 17 grey levels
        const int64_t p0 = m.passes();
        auto t0 = Clock::now();
        { NoGradGuard ng; m.log_prob(x); }
        const double t_lik = seconds_since(t0) * 1e3;
        const int64_t p1 = m.passes();
        t0 = Clock::now();
        m.sample(64, gen, Tensor(), 0);
        const double t_sam = seconds_since(t0) * 1e3;
        const int64_t p2 = m.passes();
        std::cout << "   " << std::left << std::setw(10) << m.name << std::right << std::setw(12) << p1 - p0 << std::setw(17)
                  << p2 - p1 << std::setw(15) << std::fixed << std::setprecision(2) << t_lik << std::setw(11) << t_sam << "\n";
        L.check_close(m.name + ": network passes for one likelihood", double(p1 - p0), 1, 0);
        L.check_close(m.name + ": network passes for one sample", double(p2 - p1), 64, 0);
      }
    }

    // ------------------------------------------------------------ 4. training on real data
    std::cout << "\n-- 4. The 8x8 digits, 17 grey levels (train 1000 / validation 350 / test 447)\n"
                 "   reference points (validation, the book code's curves): autoregressive model ~89 nats, VAE ~100.5,\n"
                 "   uniform model 64 ln 17 = 181.3\n";
    {
      bool synthetic = false;
      auto tr = data::digits_or_synthetic(data::Split::Train, opt.data, &synthetic),
           va = data::digits_or_synthetic(data::Split::Validation, opt.data, &synthetic),
           te = data::digits_or_synthetic(data::Split::Test, opt.data, &synthetic);
      if (synthetic)
        std::cout << "   (the 8x8 digits are not installed -- scripts/get-digits.sh -- so the built-in synthetic\n"
                     "    8x8 glyphs stand in: same shape and levels, other numbers than the references)\n";
      const int made_epochs = opt.epochs > 0 ? opt.epochs : (opt.quick ? 20 : 60);
      const int pix_epochs = opt.epochs > 0 ? opt.epochs : (opt.quick ? 4 : 40);
      auto same = [](const Tensor& x) { return x; };
      models::MADE made(64, {512, 512}, 17, gen);
      models::PixelCNN pix(17, 64, 5, gen, gated);
      for (auto [m, epochs] : {std::pair{wrap(made, 8, 8), made_epochs}, std::pair{wrap(pix, 8, 8), pix_epochs}}) {
        const std::string tag = "digits_" + m.name;
        Fit f = train(m, tr.images, va.images, epochs, 50, 1e-3, gen, L, tag, same);
        f.train_nll = mean_nll(m, tr.images);
        f.test_nll = mean_nll(m, te.images);
        report(m, tag, f, te.images, 8, 8, 17, gen, L, 64);
        L.check_le(tag + ": test NLL below the uniform model's 64 ln 17 nats", f.test_nll, 64 * std::log(17.0));
        if (m.name == "pixelcnn" && !opt.quick && opt.epochs == 0 && !synthetic)
          L.check_le("digits_pixelcnn: validation NLL below the reference autoregressive model's ~89 nats", f.val_nll, 89.0);
      }
      // MADE overfits 1,000 images; training on 8 orderings at once and
      // evaluating their mixture regularises it.
      models::MADE agn(64, {512, 512}, 17, gen);
      Fit fa = train_made_agnostic(agn, tr.images, va.images, opt.epochs > 0 ? opt.epochs : (opt.quick ? 10 : 100), 8, 99,
                                   gen, "digits_made_8_orderings");
      {
        NoGradGuard ng;
        fa.test_nll = -mean(agn.log_prob_ensemble(reshape(te.images, {te.size(), -1}), 8, 99)).item();
      }
      std::cout << "   digits_made_8_orderings (mixture of 8 orderings): test NLL " << std::fixed << std::setprecision(2)
                << fa.test_nll << " nats, validation " << fa.val_nll << "; best epoch " << fa.best_epoch << "\n";
      L.metric("digits_made_8_orderings_test_nll_nats", fa.test_nll);
      L.metric("digits_made_8_orderings_validation_nll_nats", fa.val_nll);
    }
    if (!opt.quick && !skip_fashion) {
      std::cout << "\n-- 5. Binarized Fashion-MNIST (dynamic binarization for training, one fixed binarization of the test set)\n"
                   "   reference points (binarized MNIST, not this data): NADE 88.3, MADE 86.64, PixelCNN 81.30 nats\n";
      auto tr = data::fashion_mnist(data::Split::Train, opt.data), te = data::fashion_mnist(data::Split::Test, opt.data);
      Tensor val = data::binarize_static(slice(tr.images, 0, 55000, 60000), 1);
      Tensor train_x = slice(tr.images, 0, 0, 55000);
      Tensor test = data::binarize_static(te.images, 0);
      auto binarize = [&gen](const Tensor& x) { return data::binarize_dynamic(x, gen); };
      models::MADE made(784, {1000, 1000}, 2, gen);
      models::PixelCNN pix(2, 32, 5, gen, gated);
      const int made_epochs = opt.epochs > 0 ? opt.epochs : 30;
      const int pix_epochs = opt.epochs > 0 ? opt.epochs : 3;
      for (auto [m, epochs] : {std::pair{wrap(made, 28, 28), made_epochs}, std::pair{wrap(pix, 28, 28), pix_epochs}}) {
        const std::string tag = "fashion_" + m.name;
        Fit f = train(m, train_x, val, epochs, m.name == "made" ? 100 : 64, 1e-3, gen, L, tag, binarize);
        f.train_nll = mean_nll(m, data::binarize_static(slice(train_x, 0, 0, 10000), 2));
        f.test_nll = mean_nll(m, test);
        report(m, tag, f, test, 28, 28, 2, gen, L, 36);
      }
    }
  });
}
