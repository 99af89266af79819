// lessons/conditional.cpp — conditional generative models p(x | y) (docs/chapters/conditional.md).
//
// 1. Bayes' rule with a strong model: a class-conditional PixelCNN as a classifier,
//    p(y | x) = p(x | y) p(y) / sum_y' p(x | y') p(y'), beside naive Bayes, logistic
//    regression and a small CNN, on binarized Fashion-MNIST (--quick: the 8x8 digits); then a
//    class token in a Transformer, on the digits.
// 2. Rejecting outliers: p(x) = sum_y p(x | y) p(y) against the CNN's max softmax
//    probability as out-of-distribution scores (AUROCs).
// 3. A conditional model from an unconditional one and a classifier:
//    sampling-importance-resampling, on a 2-D toy with a closed-form answer, then on the digits.
// 4. Classifier-free guidance: a conditional DDPM on the digits that also learned p(x);
//    the guided noise's two ends, the guided score on a Gaussian toy, and the trade-off
//    between class accuracy and fid_domain as w grows.
// 5. The conditional VAE: its ELBO's terms by two routes; samples per class; the same z
//    under every class.
// 6. The conditional GAN: a DCGAN whose generator adds a vector per class and whose
//    discriminator projects its features on one per class; class accuracy, fid_domain and
//    coverage within each class, beside real images.
#include <algorithm>
#include <array>
#include <cmath>
#include <iomanip>
#include <iostream>

#include "autograd/graph.h"
#include "lessons/common/harness.h"
#include "lessons/common/judge.h"
#include "lessons/common/lesson.h"
#include "models/conditional.h"
#include "models/diffusion.h"
#include "models/gan.h"
#include "models/mixtures.h"
#include "models/pixelcnn.h"
#include "models/recipes.h"
#include "models/sample_quality.h"
#include "models/transformer.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/image.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/transforms.h"
#include "models/vae.h"

using namespace dgm;
namespace gan = dgm::models::gan;

namespace {

constexpr int64_t kClasses = 10;

struct Flags {
  int64_t bayes_images = 2000;  // test images the PixelCNN classifies (10 passes each)
  int64_t ood_images = 500;     // images per out-of-distribution set
  int64_t per_class = 50;       // guided / resampled samples per class
};

// The domain classifier of an image set (the small CNN): cached in the lesson's folder. epochs 0: 4
// passes, 40 for fewer than 5,000 images (the digits' 1,000 need more).
std::shared_ptr<models::ImageClassifier> domain_classifier(lesson::Lesson& L, const data::ImageSet& train, const data::ImageSet& test,
                                                           const std::string& file, Generator& gen, double* accuracy, int epochs = 0) {
  models::ClassifierOptions co;
  co.validation = std::min<int64_t>(5000, train.size() / 5);
  co.epochs = epochs > 0 ? epochs : train.size() < 5000 ? 40 : 4;
  const lesson::Judge j = lesson::domain_classifier(L, train, test, file, gen, gen, co);
  *accuracy = j.fit.test_accuracy;
  return j.classifier;
}

Tensor flat64(const Tensor& images) { return reshape(images, {images.size(0), -1}).to(DType::Float64); }

// From class log-likelihoods [R, K] of all R possible examples: max over the classes of |sum_x p(x | y) - 1|,
// the sum in long double.
double worst_normalisation(const Tensor& ll) {
  double worst = 0;
  for (int64_t k = 0; k < kClasses; ++k) {
    long double total = 0;
    for (int64_t r = 0; r < ll.size(0); ++r) total += std::exp(static_cast<long double>(ll.at(r * kClasses + k)));
    worst = std::max(worst, static_cast<double>(std::abs(total - 1)));
  }
  return worst;
}

// ------------------------------------------------------------ 1. Bayes' rule with a strong model
struct Step1 {
  std::shared_ptr<models::TrainableDensity> pixelcnn;
  std::shared_ptr<models::ImageClassifier> cnn;
  Tensor test_loglik;  // [n, K]: log p(x | k) of the first n test images
};

Step1 bayes_rule(lesson::Lesson& L, const data::DataSet& d, const Flags& f, Generator& gen) {
  const bool quick = L.options().quick;
  const models::Recipe recipe = models::recipe(quick ? "digits_cpixelcnn" : "fashion_cpixelcnn");
  const int64_t n_test = std::min<int64_t>(f.bayes_images, d.test.size(0)), N = d.train.size(0);
  const Tensor test_x = slice(d.test, 0, 0, n_test), test_y = slice(d.test_labels, 0, 0, n_test);
  std::cout << "\n-- 1. Bayes' rule with a strong model, on " << d.description << "\n"
            << "   p(y | x) = p(x | y) p(y) / sum_y' p(x | y') p(y'): " << recipe.title(quick) << " for p(x | y), p(y) = 1/10\n"
            << "   accuracy on the first " << n_test << " test images (standard error about " << std::setprecision(3)
            << std::sqrt(0.2 / static_cast<double>(n_test)) << ")\n";

  // the rivals: naive Bayes, logistic regression, the small CNN, over training-set sizes
  double cnn_accuracy = 0;
  Step1 s;
  s.cnn = domain_classifier(L, {d.train, d.train_labels}, {d.test, d.test_labels}, quick ? "digits_thresholded_classifier.safetensors" : "fashion_thresholded_classifier.safetensors", gen,
                            &cnn_accuracy);
  const double cnn_same = models::label_accuracy(s.cnn->predict(test_x), test_y);
  std::vector<int64_t> sizes = quick ? std::vector<int64_t>{100, N} : std::vector<int64_t>{100, 1000, 10000, N};
  std::vector<std::vector<double>> rows;
  const Tensor train_flat = flat64(d.train), test_flat = flat64(test_x);
  double nb_all = 0, lr_all = 0;
  std::cout << "   train images   naive Bayes   logistic regression   (the CNN, all images: " << std::setprecision(3) << cnn_same << ")\n";
  for (int64_t n : sizes) {
    const Tensor pick = slice(gen.permutation(N), 0, 0, n);
    const Tensor x = index_select(train_flat, 0, pick), y = index_select(d.train_labels, 0, pick);
    const auto nb = models::fit_class_conditional(x, y, kClasses, 1, 0, gen);
    models::LogisticRegression lr(x.size(1), kClasses, gen);
    lr.fit(x, y, gen, std::max<int64_t>(300, std::min<int64_t>(quick ? 1500 : 5000, 5 * n / 64 + 300)));
    const double nb_acc = models::label_accuracy(nb.predict(test_flat), test_y), lr_acc = lr.accuracy(test_flat, test_y);
    rows.push_back({static_cast<double>(n), nb_acc, lr_acc, NAN});
    std::cout << std::setw(14) << n << std::setw(14) << nb_acc << std::setw(22) << lr_acc << "\n";
    if (n == N) nb_all = nb_acc, lr_all = lr_acc;
  }

  // the conditional PixelCNN: trained on a subset (full run) and on everything
  auto train_pixelcnn = [&](int64_t n, const std::string& tag_suffix, double minutes) {
    auto model = models::build(recipe, quick, gen);
    train::FitOptions o = L.training(recipe);
    o.tag = recipe.tag + tag_suffix;
    if (minutes > 0 && L.options().epochs == 0) o.max_seconds = minutes * 60;
    o.data_transform = d.name + ": " + d.description + (n < N ? "; the first " + std::to_string(n) + " training images" : "");
    o.curve_title = recipe.tag + tag_suffix + ": -log p(x | y), nats per image";
    train::fit_given(*model, slice(d.train, 0, 0, n), slice(d.train_labels, 0, 0, n), d.validation, d.validation_labels, gen, o);
    return model;
  };
  std::vector<std::pair<int64_t, double>> pixel_curve;
  if (!quick) {
    const int64_t small = 1000, judged = std::min<int64_t>(1000, n_test);  // (a point of the curve: half the images, s.e. about 0.014)
    auto m = train_pixelcnn(small, "_1000", 0.5);
    const Tensor ll = models::class_log_likelihoods(dynamic_cast<models::ConditionalDensity&>(*m), slice(test_x, 0, 0, judged));
    pixel_curve.push_back({small, models::label_accuracy(argmax(ll, 1), slice(test_y, 0, 0, judged))});
  }
  s.pixelcnn = train_pixelcnn(N, "", 0);
  auto& cond = dynamic_cast<models::ConditionalDensity&>(*s.pixelcnn);
  std::cout << "   classifying " << n_test << " test images: " << kClasses << " passes each\n";
  s.test_loglik = models::class_log_likelihoods(cond, test_x);
  const double pix_acc = models::label_accuracy(argmax(s.test_loglik, 1), test_y);
  pixel_curve.push_back({N, pix_acc});
  for (auto& row : rows)
    for (const auto& [n, acc] : pixel_curve)
      if (static_cast<int64_t>(row[0]) == n) row[3] = acc;
  const train::Evaluation ev = train::evaluate_given(cond, test_x, test_y);
  std::cout << std::setprecision(4) << "   conditional PixelCNN: test accuracy " << pix_acc << "; -log p(x | y) " << std::setprecision(2)
            << ev.nll_nats << " +- " << ev.nll_se << " nats per image\n";
  L.write_csv("learning_curves.csv", {"train_images", "naive_bayes_accuracy", "logistic_regression_accuracy", "pixelcnn_accuracy"}, rows);
  plot::line_plot(L.path("learning_curves.csv"), L.path("learning_curves.png"), "test accuracy against training-set size", "training images",
                  "test accuracy", 1,
                  {{2, "naive Bayes (Bayes' rule)"}, {3, "logistic regression"}, {4, "conditional PixelCNN (Bayes' rule)"}}, false, true);

  // CHECK: Bayes' rule in the log domain against the plain ratio in long double
  {
    const Tensor lp = models::log_posterior(s.test_loglik);
    double worst = 0;
    for (int64_t n = 0; n < n_test; ++n) {
      long double top = -INFINITY, denom = 0;
      for (int64_t k = 0; k < kClasses; ++k) top = std::max<long double>(top, s.test_loglik.at(n * kClasses + k));
      for (int64_t k = 0; k < kClasses; ++k) denom += std::exp(static_cast<long double>(s.test_loglik.at(n * kClasses + k)) - top);
      for (int64_t k = 0; k < kClasses; ++k) {
        const long double ratio = std::exp(static_cast<long double>(s.test_loglik.at(n * kClasses + k)) - top) / denom;
        worst = std::max(worst, static_cast<double>(std::abs(ratio - std::exp(static_cast<long double>(lp.at(n * kClasses + k))))));
      }
    }
    L.check_close("p(y | x) by logsumexp (log_posterior) vs the ratio p(x | y) / sum_y' p(x | y') in long double: max |diff|", worst, 0.0,
                  1e-12);
  }
  // CHECK: the mixture from the K log-likelihoods (float64 logsumexp) vs the model's own log_prob(x) (one batched graph)
  {
    const int64_t m = std::min<int64_t>(64, n_test);
    const Tensor from_classes = models::mixture_log_prob(slice(s.test_loglik, 0, 0, m));
    Tensor own;
    {
      NoGradGuard ng;
      own = s.pixelcnn->log_prob(slice(test_x, 0, 0, m)).to(DType::Float64);
    }
    L.check_close("log sum_y p(x | y) p(y) from the class log-likelihoods vs the model's log_prob(x), max |diff| over " + std::to_string(m) +
                      " test images (nats; float32 passes)",
                  max(abs(from_classes - own)).item(), 0.0, 1e-3);
  }
  // CHECK: p(. | y) is a distribution for every y: the recipe's architecture on 3x3 images, every one of the 512 enumerated
  {
    models::Recipe tiny = recipe;
    tiny.set("height", "3").set("width", "3");
    auto t = models::build(tiny, quick, gen);
    t->to(DType::Float64);
    {
      NoGradGuard ng;  // random class terms (they start at 0)
      for (Tensor& p : t->parameters()) p.copy_(p + gen.normal(p.shape(), 0, 0.3, p.dtype()));
    }
    Tensor all = Tensor::zeros({512, 1, 3, 3}, DType::Float64);
    for (int64_t r = 0; r < 512; ++r)
      for (int64_t i = 0; i < 9; ++i) all.data<double>()[r * 9 + i] = static_cast<double>((r >> i) & 1);
    const double worst = worst_normalisation(models::class_log_likelihoods(dynamic_cast<models::ConditionalDensity&>(*t), all));
    L.check_close("sum over all 512 binary 3x3 images of p(x | y) = 1 for each of the 10 classes (the recipe's layers, random "
                  "class terms, float64): max |sum - 1|",
                  worst, 0.0, 1e-9);
  }
  if (!quick) L.check_le("issue 30's bar: the conditional PixelCNN classifies >= 0.80 of the test images", 0.80, pix_acc);
  L.metric("generative_classifier_accuracy", pix_acc);
  L.metric("naive_bayes_accuracy", nb_all);
  L.metric("logistic_regression_accuracy", lr_all);
  L.metric("cnn_accuracy", cnn_same);
  L.metric("classified_test_images", static_cast<double>(n_test));
  L.metric("test_nll_given_label_nats", ev.nll_nats, ev.nll_se);
  if (pixel_curve.size() > 1) L.metric("generative_classifier_accuracy_1000_images", pixel_curve.front().second);

  // samples, one row per class
  {
    const int64_t each = quick ? 8 : 6;
    auto* pcnn = dynamic_cast<models::PixelCNN*>(s.pixelcnn.get());
    std::cout << "   sampling " << each << " images per class (" << d.train.size(2) * d.train.size(3) << " passes)\n";
    const Tensor samples = pcnn->sample_given(models::labels_by_class(kClasses, each), gen);
    image::save_image_grid(L.path("pixelcnn_samples_by_class.png"), samples, each, image::upscale_for(d.train.size(2)), 2);
    std::cout << "   wrote learning_curves.png, pixelcnn_samples_by_class.png (one row per class)\n";
  }
  return s;
}


// ------------------------------------------------------------ 2. rejecting outliers
// The CNN's max softmax probability per image (no graph).
std::vector<double> max_softmax(models::ImageClassifier& clf, const Tensor& images) {
  NoGradGuard ng;
  std::vector<double> out;
  for (int64_t b = 0; b < images.size(0); b += 500) {
    const Tensor p = max(softmax(clf.forward(slice(images, 0, b, std::min(b + 500, images.size(0)))), 1), {1});
    for (int64_t i = 0; i < p.numel(); ++i) out.push_back(p.at(i));
  }
  return out;
}
std::vector<double> negated(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}
// The ROC curve on a grid of false-positive rates: the threshold that lets `fpr` of `in` through, and the share of `out` above it.
std::vector<double> roc_on_grid(std::vector<double> in, const std::vector<double>& out, const std::vector<double>& grid) {
  std::sort(in.begin(), in.end());
  std::vector<double> tpr;
  for (double q : grid) {
    const size_t k = std::min(in.size() - 1, static_cast<size_t>(std::floor((1 - q) * static_cast<double>(in.size()))));
    const double threshold = q >= 1 ? -INFINITY : in[k];
    double above = 0;
    for (double o : out) above += o > threshold;
    tpr.push_back(above / static_cast<double>(out.size()));
  }
  return tpr;
}

void rejecting_outliers(lesson::Lesson& L, const data::DataSet& d, Step1& s, const Flags& f, Generator& gen) {
  const bool quick = L.options().quick;
  auto& cond = dynamic_cast<models::ConditionalDensity&>(*s.pixelcnn);
  const int64_t n_in = std::min<int64_t>(f.ood_images, s.test_loglik.size(0)), H = d.test.size(2), W = d.test.size(3);
  const int64_t n_out = std::min<int64_t>(f.ood_images, d.test.size(0));
  std::cout << "\n-- 2. Rejecting outliers: -log p(x), p(x) = sum_y p(x | y) p(y), against the CNN's 1 - max_y p(y | x)\n"
            << "   AUROC: the chance that an outlier scores higher than a test image (" << n_in << " test images, " << n_out
            << " outliers per set)\n";
  const Tensor test_x = slice(d.test, 0, 0, n_out);
  struct Set {
    std::string key, name;
    Tensor x;
  };
  std::vector<Set> sets;
  sets.push_back({"noise", "coin-flip noise", gen.bernoulli(Shape{n_out, 1, H, W}, 0.5)});
  std::vector<int64_t> rows(static_cast<size_t>(H));
  for (int64_t i = 0; i < H; ++i) rows[static_cast<size_t>(i)] = H - 1 - i;
  sets.push_back({"flipped", "the test images upside down", index_select(test_x, 2, Tensor::from_indices(rows, {H}))});
  sets.push_back({"inverted", "the test images inverted (1 - x)", 1.0 - test_x});
  if (!quick)
    sets.push_back({"digits", "the 8x8 digits blown up to 28x28, pixel > 0.5",
                    data::binarize_threshold(slice(data::digits_as_28x28(data::Split::Test, L.options().data), 0, 0, n_out), 0.5)});
  const std::vector<double> in_px = negated(models::mixture_log_prob(slice(s.test_loglik, 0, 0, n_in)).to_vector());
  const std::vector<double> in_soft = negated(max_softmax(*s.cnn, slice(d.test, 0, 0, n_in)));
  std::vector<double> grid;
  for (int i = 0; i <= 100; ++i) grid.push_back(i / 100.0);
  std::vector<std::vector<double>> roc_rows(grid.size());
  for (size_t i = 0; i < grid.size(); ++i) roc_rows[i].push_back(grid[i]);
  std::vector<std::string> roc_columns = {"false_positive_rate"};
  std::vector<plot::Series> roc_curves;
  double sum_px = 0, sum_soft = 0;
  std::cout << "   set                                           -log p(x) AUROC   softmax AUROC\n";
  for (size_t k = 0; k < sets.size(); ++k) {
    const Tensor ll = models::class_log_likelihoods(cond, sets[k].x);
    const std::vector<double> out_px = negated(models::mixture_log_prob(ll).to_vector());
    const std::vector<double> out_soft = negated(max_softmax(*s.cnn, sets[k].x));
    const double a_px = lesson::auroc_by_ranks(in_px, out_px), a_soft = lesson::auroc_by_ranks(in_soft, out_soft);
    std::cout << "   " << std::left << std::setw(46) << sets[k].name << std::right << std::fixed << std::setprecision(3) << std::setw(16)
              << a_px << std::setw(16) << a_soft << "\n";
    if (k == 0)
      L.check_close("AUROC by ranks (Mann-Whitney) vs by counting every pair, -log p(x) on " + sets[k].name, a_px,
                    lesson::auroc_by_pairs(in_px, out_px), 1e-12);
    L.metric("ood_auroc_px_" + sets[k].key, a_px);
    L.metric("ood_auroc_softmax_" + sets[k].key, a_soft);
    sum_px += a_px, sum_soft += a_soft;
    const std::vector<double> t_px = roc_on_grid(in_px, out_px, grid), t_soft = roc_on_grid(in_soft, out_soft, grid);
    for (size_t i = 0; i < grid.size(); ++i) roc_rows[i].push_back(t_px[i]), roc_rows[i].push_back(t_soft[i]);
    roc_columns.push_back(sets[k].key + "_px_tpr");
    roc_columns.push_back(sets[k].key + "_softmax_tpr");
    roc_curves.push_back({static_cast<int>(roc_columns.size()) - 1, sets[k].key + ": -log p(x)"});
    roc_curves.push_back({static_cast<int>(roc_columns.size()), sets[k].key + ": softmax"});
  }
  L.metric("ood_auroc_px", sum_px / static_cast<double>(sets.size()));
  L.metric("ood_auroc_softmax", sum_soft / static_cast<double>(sets.size()));
  L.write_csv("roc_curves.csv", roc_columns, roc_rows);
  plot::line_plot(L.path("roc_curves.csv"), L.path("roc_curves.png"), "ROC curves: outliers against test images", "false-positive rate",
                  "true-positive rate", 1, roc_curves);
  std::cout << "   mean AUROC: -log p(x) " << std::setprecision(3) << sum_px / static_cast<double>(sets.size()) << ", softmax "
            << sum_soft / static_cast<double>(sets.size()) << "; wrote roc_curves.png\n";
}

// ------------------------------------------------------------ 3 and 4: the Gaussian toy
// Three classes in 2-D: p(y) = (0.5, 0.3, 0.2), p(x | y) = N(mu_y, I). Equal covariances, so the
// true p(y | x) is a softmax of a linear function: logistic regression can be exact.
struct Toy {
  std::vector<double> prior{0.5, 0.3, 0.2};
  std::vector<std::array<double, 2>> mu{{-2.0, 0.0}, {2.0, 0.0}, {0.0, 2.5}};
  // labelled draws from the joint: x [n, 2] float64, y int64 [n]
  std::pair<Tensor, Tensor> draw(int64_t n, Generator& gen) const {
    std::vector<double> x;
    std::vector<int64_t> y;
    for (int64_t i = 0; i < n; ++i) {
      const double u = gen.uniform01();
      const int64_t k = u < prior[0] ? 0 : (u < prior[0] + prior[1] ? 1 : 2);
      y.push_back(k);
      x.push_back(mu[static_cast<size_t>(k)][0] + gen.normal01());
      x.push_back(mu[static_cast<size_t>(k)][1] + gen.normal01());
    }
    return {Tensor::from_vector(x, {n, 2}), Tensor::from_indices(y, {n})};
  }
};

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

void sir_toy(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const Toy toy;
  const int64_t M = quick ? 40000 : 200000, n = quick ? 2000 : 5000, target = 2;
  std::cout << "\n-- 3. A conditional model from an unconditional sampler and a classifier: sampling-importance-resampling\n"
            << "   toy: p(y) = (0.5, 0.3, 0.2), p(x | y) = N(mu_y, I) in 2-D. Draw " << M << " x ~ p(x) (labels forgotten), weight each by\n"
            << "   p(y = " << target << " | x) / p(y = " << target << ") from a logistic regression trained on labelled draws, resample " << n
            << ": x ~ p(x | y = " << target << ")\n";
  // maximum likelihood on 50,000 labelled draws: whole-set Adam steps, no penalty (minibatch noise and an
  // L2 penalty leave p(y | x) off the truth by enough that 5,000 resampled points show it)
  const auto [lx, ly] = toy.draw(50000, gen);
  models::LogisticRegression clf(2, 3, gen);
  clf.fit(lx, ly, gen, quick ? 300 : 600, 0, 0.05, 0);
  const Tensor x = toy.draw(M, gen).first;
  const Tensor p = clf.probabilities(x);  // [M, 3]
  std::vector<double> lw;
  for (int64_t i = 0; i < M; ++i) lw.push_back(std::log(p.at(i * 3 + target)) - std::log(toy.prior[target]));
  const Tensor idx = models::sir_indices(Tensor::from_vector(lw, {M}), n, gen);
  // the chi-squared test: 6 x 6 unit cells around mu_target and one cell for everything else
  const auto& m = toy.mu[target];
  // the counts of the points x[rows] in the cells: 36 unit cells on mu_target +- 3, then the rest
  auto cell_counts = [&](const std::vector<int64_t>& rows) {
    std::vector<double> counts(37, 0);
    for (int64_t i : rows) {
      const double a = x.at(i * 2) - m[0] + 3, b = x.at(i * 2 + 1) - m[1] + 3;
      const bool inside = a >= 0 && a < 6 && b >= 0 && b < 6;
      counts[inside ? static_cast<size_t>(std::floor(a)) * 6 + static_cast<size_t>(std::floor(b)) : 36] += 1;
    }
    return counts;
  };
  auto chi_squared = [](const std::vector<double>& observed, const std::vector<double>& expected) {
    double c = 0;
    for (size_t k = 0; k < observed.size(); ++k) c += (observed[k] - expected[k]) * (observed[k] - expected[k]) / expected[k];
    return c;
  };
  std::vector<int64_t> resampled, first_n;
  for (int64_t j = 0; j < n; ++j) resampled.push_back(static_cast<int64_t>(idx.at(j))), first_n.push_back(j);
  const std::vector<double> observed = cell_counts(resampled);
  std::vector<double> expected(37, 0);
  double inside_total = 0;
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) {
      const double pa = normal_cdf(i - 2.0) - normal_cdf(i - 3.0), pb = normal_cdf(j - 2.0) - normal_cdf(j - 3.0);
      expected[static_cast<size_t>(i * 6 + j)] = pa * pb * static_cast<double>(n);
      inside_total += pa * pb;
    }
  expected[36] = (1 - inside_total) * static_cast<double>(n);
  // Resampling n from M weighted draws repeats some: a cell's count varies (1 + n / ESS) times as much as
  // n independent draws', ESS = (sum w)^2 / sum w^2 the weights' effective sample size; the statistic is divided by it.
  double sw = 0, sw2 = 0;
  for (double v : lw) sw += std::exp(v), sw2 += std::exp(2 * v);
  const double ess = sw * sw / sw2, inflation = 1 + static_cast<double>(n) / ess;
  const double chi2 = chi_squared(observed, expected) / inflation;
  const double df = static_cast<double>(observed.size() - 1);
  std::cout << std::fixed << std::setprecision(1) << "   chi-squared over 37 cells of the resampled points against N(mu_2, I), divided by 1 + n/ESS = "
            << std::setprecision(3) << inflation << std::setprecision(1) << " (ESS " << ess << "): " << chi2 << " (df " << df
            << ": mean " << df << ", sd " << std::sqrt(2 * df) << ")\n";
  L.check_le("SIR: the resampled points follow the closed-form p(x | y = 2): chi-squared <= df + 4 sd = " +
                 std::to_string(static_cast<int>(df + 4 * std::sqrt(2 * df))),
             chi2, df + 4 * std::sqrt(2 * df));
  // and without the classifier's weights they would not: the same test on n of the unweighted draws
  const double chi2_raw = chi_squared(cell_counts(first_n), expected);
  std::cout << "   (the unweighted draws of p(x) score " << std::setprecision(0) << chi2_raw << " on the same test)\n";
  L.metric("sir_toy_chi2", chi2);
  L.metric("sir_toy_chi2_unweighted", chi2_raw);
}

// The guided score on the toy, two routes. The forward process at abar = a turns p(x | y) into
// p_t(x | y) = N(sqrt(a) mu_y, I) (unit variances stay unit: a + 1 - a), and eps(x, y) = -sqrt(1 - a) grad log p_t(x | y).
void guided_score_toy(lesson::Lesson& L, Generator& gen) {
  const Toy toy;
  const double a = 0.6, w = 3.0;
  const int64_t n = 200, y = 1;
  const auto [x, unused] = toy.draw(n, gen);
  (void)unused;
  // route 1: the combination (1 + w) eps(x, y) - w eps(x) with the closed-form noises; eps(x) = sum_k p_t(k | x) eps(x, k)
  std::vector<double> guided;
  for (int64_t i = 0; i < n; ++i) {
    const double x0 = x.at(i * 2), x1 = x.at(i * 2 + 1);
    std::vector<double> logj, e0, e1;
    for (size_t k = 0; k < 3; ++k) {
      const double d0 = x0 - std::sqrt(a) * toy.mu[k][0], d1 = x1 - std::sqrt(a) * toy.mu[k][1];
      logj.push_back(std::log(toy.prior[k]) - 0.5 * (d0 * d0 + d1 * d1));
      e0.push_back(std::sqrt(1 - a) * d0), e1.push_back(std::sqrt(1 - a) * d1);
    }
    const double top = *std::max_element(logj.begin(), logj.end());
    double z = 0, u0 = 0, u1 = 0;
    for (size_t k = 0; k < 3; ++k) z += std::exp(logj[k] - top);
    for (size_t k = 0; k < 3; ++k) u0 += std::exp(logj[k] - top) / z * e0[k], u1 += std::exp(logj[k] - top) / z * e1[k];
    guided.push_back((1 + w) * e0[static_cast<size_t>(y)] - w * u0);
    guided.push_back((1 + w) * e1[static_cast<size_t>(y)] - w * u1);
  }
  // route 2: the engine's gradient of log [p_t(x | y)^(1 + w) / p_t(x)^w], times -sqrt(1 - a)
  Tensor xv = x.contiguous_copy();
  xv.set_requires_grad(true);
  std::vector<Tensor> comps;
  for (size_t k = 0; k < 3; ++k) {
    const Tensor mu = Tensor::from_vector(std::vector<double>{std::sqrt(a) * toy.mu[k][0], std::sqrt(a) * toy.mu[k][1]}, {1, 2});
    comps.push_back(unsqueeze(sum(square(xv - mu), {1}) * -0.5 - std::log(2 * M_PI), 1));  // log N(x; sqrt(a) mu_k, I)
  }
  const Tensor logc = concat(comps, 1);  // [n, 3]
  const Tensor log_prior = Tensor::from_vector(std::vector<double>{std::log(toy.prior[0]), std::log(toy.prior[1]), std::log(toy.prior[2])}, {3});
  const Tensor log_px = logsumexp(logc + log_prior, {1});
  const Tensor tilted = select(logc, 1, y) * (1 + w) - log_px * w;
  sum(tilted).backward();
  const Tensor by_engine = xv.grad() * -std::sqrt(1 - a);
  double worst = 0;
  for (int64_t i = 0; i < 2 * n; ++i) worst = std::max(worst, std::abs(by_engine.at(i) - guided[static_cast<size_t>(i)]));
  L.check_close("guidance: (1 + w) eps(x, y) - w eps(x) in closed form vs -sqrt(1 - abar) grad log [p_t(x | y)^(1+w) / p_t(x)^w] "
                "by the engine (w = 3, 200 points): max |diff|",
                worst, 0.0, 1e-10);
}


// ------------------------------------------------------------ 4. classifier-free guidance on the digits
void guidance(lesson::Lesson& L, const Flags& f, Generator& gen) {
  const bool quick = L.options().quick;
  const data::DataSet d = lesson::harness::data_for("digits17", L.options());
  const models::Recipe recipe = models::recipe("digits_cddpm");
  auto model = models::build(recipe, quick, gen);
  auto& m = dynamic_cast<models::DDPM&>(*model);
  const int64_t N = d.train.size(0), T = m.schedule().steps();
  std::cout << "   " << recipe.title(quick) << " on " << d.description << ": labels dropped to 'none' with probability " << std::setprecision(2) << m.p_uncond
            << ",\n   so one network learns p(x | y) and p(x); guided noise (1 + w) eps(x_t, t, y) - w eps(x_t, t, none)\n";
  train::FitOptions o = L.training(recipe);
  o.data_transform = d.name + ": " + d.description + "; flattened to 64 values";
  o.curve_title = "digits_cddpm: L_simple with labels";
  o.y_label = "mean squared noise error per value";
  train::fit_given(m, reshape(d.train, {N, 64}), d.train_labels, Tensor(), Tensor(), gen, o);

  // the two ends of the guided noise against separate evaluations
  {
    NoGradGuard ng;
    const int64_t n = 64;
    const Tensor x = gen.normal({n, 64}), t = gen.randint(Shape{n}, 0, T), y = gen.randint(Shape{n}, 0, kClasses);
    const Tensor cond = m.predict_noise(x, t, y), none = m.predict_noise(x, t);
    L.check_close("guided noise at w = 0 vs the conditional eps(x_t, t, y) evaluated alone (64 draws): max |diff|",
                  max(abs(m.guided_noise(x, t, y, 0.0) - cond)).item(), 0.0, 1e-5);
    L.check_close("guided noise at w = -1 vs the unconditional eps(x_t, t, none) evaluated alone: max |diff|",
                  max(abs(m.guided_noise(x, t, y, -1.0) - none)).item(), 0.0, 1e-5);
    std::cout << "   (the label moves the noise: max |eps(y) - eps(none)| = " << std::setprecision(3) << max(abs(cond - none)).item() << ")\n";
  }

  // the sweep: the same noise for every w (a generator with the same seed), per_class samples of each class
  double clf_accuracy = 0;
  auto clf = domain_classifier(L, {d.train, d.train_labels}, {d.test, d.test_labels}, "digits_classifier.safetensors", gen, &clf_accuracy);
  const models::FeatureStats reference = models::feature_stats(clf->features_of(d.test));
  const Tensor labels = models::labels_by_class(kClasses, f.per_class);
  const uint64_t noise_seed = gen.next_u64();
  std::vector<std::vector<double>> rows;
  std::vector<Tensor> grid_rows;
  std::cout << "   w    class accuracy   fid_domain (" << labels.numel() << " samples vs the " << d.test.size(0) << " test images)\n";
  for (double w : {0.0, 1.0, 3.0, 5.0}) {
    Generator same(noise_seed);
    m.guidance = w;
    const Tensor x = reshape(m.sample_given(labels, same), {labels.numel(), 1, 8, 8});
    const double acc = models::label_accuracy(clf->predict(x), labels);
    const models::SampleQuality q = models::sample_quality(*clf, x, reference);
    rows.push_back({w, acc, q.fid_domain});
    std::cout << std::fixed << std::setprecision(0) << "   " << w << std::setprecision(3) << std::setw(18) << acc << std::setprecision(2)
              << std::setw(13) << q.fid_domain << "\n";
    std::vector<int64_t> first;  // the first sample of each class
    for (int64_t k = 0; k < kClasses; ++k) first.push_back(k * f.per_class);
    grid_rows.push_back(index_select(x, 0, Tensor::from_indices(first, {kClasses})));
    const std::string tag = std::to_string(static_cast<int>(w));
    if (w == 0 || w == 3) {
      L.metric("cfg_class_accuracy_w" + tag, acc);
      L.metric("cfg_fid_domain_w" + tag, q.fid_domain);
    }
  }
  m.guidance = 0;
  L.metric("cfg_samples", static_cast<double>(labels.numel()));
  L.metric("digits_classifier_accuracy", clf_accuracy);
  L.write_csv("guidance_sweep.csv", {"w", "class_accuracy", "fid_domain"}, rows);
  plot::line_plot(L.path("guidance_sweep.csv"), L.path("guidance_accuracy.png"), "guided samples: class accuracy against w", "w",
                  "class accuracy (the digits' CNN)", 1, {{2, "class accuracy"}});
  plot::line_plot(L.path("guidance_sweep.csv"), L.path("guidance_fid.png"), "guided samples: fid_domain against w", "w", "fid_domain", 1,
                  {{3, "fid_domain"}});
  image::save_image_grid(L.path("guidance_sweep.png"), concat(grid_rows, 0), kClasses, image::upscale_for(8), 2);
  if (!quick) L.check_le("issue 30's bar: guided samples at w = 3 are classified as their label >= 90% of the time", 0.90, rows[2][1]);
  std::cout << "   wrote guidance_sweep.png (rows: w = 0, 1, 3, 5, the same noise; a column per class), guidance_accuracy.png, guidance_fid.png\n";

  // SIR on the digits: the same network's unconditional samples (label none), weighted by a logistic regression's p(y | x)
  {
    const int64_t M = 4 * labels.numel();
    Generator draws(gen.next_u64());
    const Tensor pool = m.sample(M, draws);  // [M, 64], x ~ p(x)
    models::LogisticRegression lr(64, kClasses, gen);
    lr.fit(reshape(d.train, {N, 64}).to(DType::Float64), d.train_labels, gen, 3000);
    const Tensor p = lr.probabilities(pool.to(DType::Float64));
    std::vector<Tensor> picked;
    for (int64_t k = 0; k < kClasses; ++k) {
      std::vector<double> lw;
      for (int64_t i = 0; i < M; ++i) lw.push_back(std::log(p.at(i * kClasses + k)) + std::log(static_cast<double>(kClasses)));
      picked.push_back(index_select(pool, 0, models::sir_indices(Tensor::from_vector(lw, {M}), f.per_class, gen)));
    }
    const Tensor resampled = reshape(concat(picked, 0), {labels.numel(), 1, 8, 8});
    const double acc = models::label_accuracy(clf->predict(resampled), labels);
    const double raw = models::label_accuracy(clf->predict(reshape(slice(pool, 0, 0, labels.numel()), {labels.numel(), 1, 8, 8})), labels);
    std::cout << std::setprecision(3) << "   SIR: " << M << " unconditional samples (label none), resampled " << f.per_class
              << " per class by a logistic regression's p(y | x) / p(y): class accuracy " << acc << " (the same samples unweighted: " << raw
              << ")\n";
    L.metric("sir_class_accuracy", acc);
    L.metric("sir_unweighted_class_accuracy", raw);
  }
}

// ------------------------------------------------------------ 5. the conditional VAE
void conditional_vae(lesson::Lesson& L, const data::DataSet& d, Step1& s, Generator& gen) {
  const bool quick = L.options().quick;
  const models::Recipe recipe = models::recipe(quick ? "digits_cvae" : "fashion_cvae");
  auto model = models::build(recipe, quick, gen);
  auto& vae = dynamic_cast<models::VAE&>(*model);
  const int64_t N = d.train.size(0), H = d.train.size(2), W = d.train.size(3), D = H * W;
  std::cout << "\n-- 5. The conditional VAE: q(z | x, y), p(x | z, y), p(z | y) learned per class; " << recipe.title(quick) << "\n";
  vae.iwae_k = 1;  // validation: the one-sample bound -ELBO(x | y) (k = 1000 at every validation would cost more than training)
  train::FitOptions o = L.training(recipe);
  o.data_transform = d.name + ": " + d.description + "; flattened to " + std::to_string(D) + " values";
  o.curve_title = recipe.tag + ": -ELBO(x | y), nats per image";
  train::fit_given(vae, reshape(d.train, {N, D}), d.train_labels, reshape(d.validation, {d.validation.size(0), D}), d.validation_labels, gen,
                   o);
  // fit_given ended by refitting p(z | y) to the aggregate posterior, full covariance (eq. 10b)
  const auto [kl_before, kl_after] = vae.last_refit();
  L.check_le("the refitted p(z | y) lowers the mean KL over the training images, so it raises their ELBO (eq. 10b: the best Gaussian prior)",
             kl_after, kl_before);
  {  // the refit's covariance by a second route: E ||z - m_y||^2 with z ~ q(z | x, y) over the same images, against tr S_y
    NoGradGuard ng;
    const models::VAE::ClassPrior prior = vae.class_prior();
    const Tensor traces = sum(square(prior.scale_tril.to(DType::Float64)), {1, 2});  // tr(L L^T) per class
    std::vector<double> spread;
    double expected = 0;
    for (int64_t s0 = 0; s0 < N; s0 += 5000) {
      const int64_t s1 = std::min(N, s0 + 5000);
      const Tensor yb = slice(d.train_labels, 0, s0, s1);
      const models::VAE::Posterior q = vae.encode(reshape(slice(d.train, 0, s0, s1), {s1 - s0, D}), yb);
      const Tensor z = dist::Normal{q.mu, q.logvar}.rsample(gen);
      const std::vector<double> r = sum(square(z - index_select(prior.mean, 0, yb)), {1}).to_vector();
      spread.insert(spread.end(), r.begin(), r.end());
      expected += sum(index_select(traces, 0, yb)).item();
    }
    const auto [m, se] = lesson::mean_and_se(spread);
    L.check_close("E |z - m_y|^2 over z ~ q(z | x, y) on the " + std::to_string(N) +
                      " training images vs the refitted prior's mean tr S_y (the moments by sampling; 4 standard errors)",
                  m, expected / static_cast<double>(N), 4 * se);
  }
  const int64_t n = std::min<int64_t>(quick ? 447 : 500, d.test.size(0));
  const Tensor x = reshape(slice(d.test, 0, 0, n), {n, D}), y = slice(d.test_labels, 0, 0, n);
  // the KL term two ways: closed form (training's) vs Monte Carlo (IWAE with k = 1: log p(x|z,y) + log p(z) - log q(z|x,y))
  std::vector<double> closed, sampled;
  {
    NoGradGuard ng;
    for (int r = 0; r < 20; ++r) {
      closed.push_back(-mean(vae.elbo_terms(x, vae.noise(), y).elbo).item());
      sampled.push_back(-mean(vae.iwae(x, 1, vae.noise(), y)).item());
    }
  }
  const auto [mc, sc] = lesson::mean_and_se(closed);
  const auto [ms, ss] = lesson::mean_and_se(sampled);
  L.check_close("conditional -ELBO with the closed-form KL vs with the Monte Carlo KL (20 draws on " + std::to_string(n) +
                    " test images, 4 standard errors)",
                mc, ms, 4 * std::sqrt(sc * sc + ss * ss));
  vae.iwae_k = 1;  // the one-sample -ELBO per image: its standard error over the images
  const train::Evaluation elbo1 = train::evaluate_given(vae, x, y, 500);
  vae.iwae_k = quick ? 100 : 1000;
  const train::Evaluation iw = train::evaluate_given(vae, x, y, 50);
  {  // paired: per image, one ELBO draw and the IWAE bound; their difference's mean and standard error
    std::vector<double> gap;
    {
      NoGradGuard ng;
      const Tensor e = vae.elbo_terms(x, vae.noise(), y).elbo.to(DType::Float64), b = vae.iwae(x, vae.iwae_k, vae.noise(), y).to(DType::Float64);
      for (int64_t i = 0; i < n; ++i) gap.push_back(e.at(i) - b.at(i));
    }
    const auto [mg, sg] = lesson::mean_and_se(gap);
    L.check_le("IWAE_k(x | y) is at least the ELBO, per image on the same images: mean of ELBO - IWAE <= 4 standard errors (paired)", mg,
               4 * sg);
  }
  std::cout << std::fixed << std::setprecision(2) << "   test: -ELBO(x | y) " << mc << ", -IWAE_" << vae.iwae_k << "(x | y) " << iw.nll_nats << " +- "
            << iw.nll_se << " nats per image\n";
  // class accuracy of its samples x ~ p(x | y) by the small CNN
  const int64_t each = quick ? 100 : 300;
  const Tensor labels = models::labels_by_class(kClasses, each);
  const Tensor samples = reshape(vae.sample_given(labels, gen), {labels.numel(), 1, H, W});
  const double acc = models::label_accuracy(s.cnn->predict(samples), labels);
  const double acc_se = std::sqrt(acc * (1 - acc) / static_cast<double>(labels.numel()));
  std::cout << std::setprecision(3) << "   its samples, " << each << " per class, are classified as their label " << acc << " +- " << acc_se
            << " of the time\n";
  // decoder means too: the model's pixel noise taken out
  const Tensor mean_images = reshape(vae.decode_means(vae.sample_latent(labels, gen), labels), {labels.numel(), 1, H, W});
  const double mean_acc = models::label_accuracy(s.cnn->predict(mean_images), labels);
  std::cout << "   (their decoder means: " << mean_acc << ")";
  std::cout << "\n";
  if (!quick) L.check_le("issue 30's bar: the conditional VAE's samples are classified as their label >= 80% of the time", 0.80, acc);
  L.metric("cvae_class_accuracy_means", mean_acc);
  L.metric("cvae_class_accuracy", acc, acc_se);
  L.metric("cvae_test_nelbo_nats", mc, elbo1.nll_se);
  L.metric("cvae_test_iwae_nll_given_label_nats", iw.nll_nats, iw.nll_se);
  // pictures: the decoder's means, a row per class; the same 10 z under every class (style vs class)
  NoGradGuard ng;
  // the same 10 noise vectors under every class: z = m_y + L_y e with the class's prior (e itself without one)
  const uint64_t style_seed = gen.next_u64();
  std::vector<Tensor> rows;
  for (int64_t k = 0; k < kClasses; ++k) {
    Generator same(style_seed);
    const Tensor yk = Tensor::full({10}, static_cast<double>(k), DType::Int64);
    rows.push_back(vae.decode_means(vae.sample_latent(yk, same), yk));
  }
  image::save_image_grid(L.path("cvae_style_vs_class.png"), reshape(concat(rows, 0), {100, 1, H, W}), 10, image::upscale_for(H), 2);
  const Tensor grid_labels = models::labels_by_class(kClasses, 10);
  const Tensor means = vae.decode_means(vae.sample_latent(grid_labels, gen), grid_labels);
  image::save_image_grid(L.path("cvae_samples_by_class.png"), reshape(means, {100, 1, H, W}), 10, image::upscale_for(H), 2);
  std::cout << "   wrote cvae_samples_by_class.png (decoder means, a row per class), cvae_style_vs_class.png (a column per z, a row per class)\n";
}


// ------------------------------------------------------------ 1b. a class token: the conditional Transformer
void conditional_transformer(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  const data::DataSet d = lesson::harness::data_for("digits17", L.options());
  const models::Recipe recipe = models::recipe("digits_ctransformer");
  auto model = models::build(recipe, quick, gen);
  auto& tr = dynamic_cast<models::Transformer&>(*model);
  auto flat = [](const Tensor& x) { return reshape(x, {x.size(0), -1}); };
  std::cout << "\n-- 1b. A class token: " << recipe.title(quick) << " on " << d.description
            << "\n   its first input is the token vocab + 1 + y in place of BOS: log p(x | y) = sum_t log p(x_t | x_<t, y), exact\n";
  train::FitOptions o = L.training(recipe);
  o.data_transform = d.name + ": " + d.description + "; 64 tokens of 17 levels";
  o.curve_title = recipe.tag + ": -log p(x | y), nats per image";
  train::fit_given(tr, flat(d.train), d.train_labels, flat(d.validation), d.validation_labels, gen, o);
  tr.eval();  // dropout off: every route below sees one network
  // CHECK: the one pass behind the class token vs 64 steps through the KV cache, given the same labels
  {
    NoGradGuard ng;
    const Tensor x = slice(flat(d.test), 0, 0, 20), y = slice(d.test_labels, 0, 0, 20);
    const double one = mean(tr.log_prob_given(x, y)).item(), many = mean(tr.log_prob_stepwise(x, false, y)).item();
    L.check_close("conditional Transformer: mean log p(x | y) of 20 test digits, one pass vs 64 steps through the KV cache", one, many,
                  1e-5 * std::abs(one));
  }
  // CHECK: p(. | y) is a distribution for every y: the recipe's layers on 4 tokens of 3 levels, all 81 sequences
  {
    models::Recipe tiny = recipe;
    tiny.set("vocab", "3").set("length", "4");
    auto t = models::build(tiny, quick, gen);
    t->to(DType::Float64);
    t->eval();
    const double worst = worst_normalisation(models::class_log_likelihoods(dynamic_cast<models::ConditionalDensity&>(*t),
                                                                           models::every_sequence(3, 4, models::TokenInput::Levels)));
    L.check_close("sum over all 81 sequences of 4 tokens (3 levels) of p(x | y) = 1 for each of the 10 class tokens (the recipe's "
                  "layers, float64): max |sum - 1|",
                  worst, 0.0, 1e-9);
  }
  const Tensor test = flat(d.test);
  const Tensor ll = models::class_log_likelihoods(tr, test);
  const double acc = models::label_accuracy(argmax(ll, 1), d.test_labels);
  const train::Evaluation ev = train::evaluate_given(tr, test, d.test_labels);
  std::cout << std::fixed << std::setprecision(3) << "   Bayes' rule with it on the " << d.test.size(0) << " test digits: accuracy " << acc
            << "; -log p(x | y) " << std::setprecision(2) << ev.nll_nats << " +- " << ev.nll_se << " nats per image\n";
  L.metric("ctransformer_classifier_accuracy", acc);
  L.metric("ctransformer_test_nll_given_label_nats", ev.nll_nats, ev.nll_se);
  const Tensor labels = models::labels_by_class(kClasses, 10);
  image::save_image_grid(L.path("ctransformer_samples_by_class.png"), reshape(tr.sample_given(labels, gen), {100, 1, 8, 8}), 10,
                         image::upscale_for(8), 2);
  std::cout << "   wrote ctransformer_samples_by_class.png (a row per class)\n";
}

// ------------------------------------------------------------ 6. the conditional GAN
void conditional_gan(lesson::Lesson& L, Generator& gen) {
  const bool quick = L.options().quick;
  // the game is played on grey levels (a GAN's generator makes continuous images; a discriminator
  // would tell binary data from them by that alone), so its judge is a CNN of the grey levels, the
  // domain classifier of lesson_gan. --quick: the digits blown up to 28x28.
  data::ImageSet train, test;
  if (quick) {
    const data::DataSet digits = lesson::harness::data_for("digits17", L.options());
    train = {data::digits_as_28x28(data::Split::Train, L.options().data), digits.train_labels, 17};
    test = {data::digits_as_28x28(data::Split::Test, L.options().data), digits.test_labels, 17};
  } else {
    const data::DataSet grey = lesson::harness::data_for("fashion_dequantized", L.options());
    train = {grey.train, grey.train_labels, 256}, test = {grey.test, grey.test_labels, 256};
  }
  double judge_accuracy = 0;  // the judge: a small CNN of the grey levels, 4 passes
  auto judge = domain_classifier(L, train, test, quick ? "digits28_classifier.safetensors" : "fashion_classifier.safetensors", gen,
                                 &judge_accuracy, 4);
  L.metric("grey_classifier_accuracy", judge_accuracy);
  const models::Recipe recipe = models::recipe("fashion_cdcgan");
  gan::GAN game = models::build_gan(recipe, quick, gen);
  gan::Options o = models::gan_options(recipe, quick);
  const int epochs = L.options().epochs;
  if (epochs > 0) o.steps = epochs * ((train.size() + o.batch_size - 1) / o.batch_size), o.max_seconds = 0;
  o.lr = L.lr(o.lr);
  o.out_dir = L.options().out, o.resume = L.options().resume;
  o.data_transform = quick ? "8x8 digits blown up to 28x28, grey levels in [0, 1], with labels" : "Fashion-MNIST, grey levels in [0, 1], with labels";
  std::cout << "\n-- 6. The conditional GAN: " << recipe.title(quick) << ", non-saturating loss, "
            << (o.max_seconds > 0 ? std::to_string(static_cast<int>(o.max_seconds / 60)) + " minutes" : std::to_string(o.steps) + " steps")
            << (quick ? " on the 28x28 digits" : " on Fashion-MNIST's grey levels")
            << "\n   G(z, y): + e_y after the first layer; D(x, y) = w . phi(x) + b + e_y . phi(x) (a projection per class)\n";
  const gan::Result r = gan::train_given(game, train.images, train.labels, gen, o);
  std::cout << std::fixed << std::setprecision(1) << "   trained " << r.steps << " generator steps in " << r.seconds << " s\n";

  // per class: samples against test images of that class, the same count on both sides, and a
  // real reference of that count (other test images of the class) beside each figure: at most half
  // the smallest class's test images (the synthetic glyphs' test split has 37 of some class)
  std::vector<int64_t> in_class(static_cast<size_t>(kClasses), 0);
  for (int64_t i = 0; i < test.size(); ++i) ++in_class[static_cast<size_t>(test.labels.at(i))];
  const int64_t fewest = *std::min_element(in_class.begin(), in_class.end()), each = std::min<int64_t>(quick ? 20 : 200, fewest / 2);
  if (each <= 5)
    throw Error("lesson_conditional: the test split has only " + std::to_string(fewest) + " images of some class; coverage (k = 5) needs 12");
  const Tensor labels = models::labels_by_class(kClasses, each);
  const Tensor samples = game.sample_given(labels, gen);
  const double acc = models::label_accuracy(judge->predict(samples), labels);
  const Tensor sample_features = judge->features_of(samples), test_features = judge->features_of(test.images);
  std::vector<std::vector<double>> rows;
  std::cout << "   class   accuracy   fid_domain (real)   coverage (real)   [" << each << " samples vs " << each << " test images of the class]\n";
  for (int64_t k = 0; k < kClasses; ++k) {
    // 2 x `each` test images of class k drawn at random (the files are ordered, by writer for the digits):
    // the first `each` are the reference, the others the real stand-in, exchangeable with it
    std::vector<int64_t> mine;
    for (int64_t i = 0; i < test.size(); ++i)
      if (test.labels.at(i) == k) mine.push_back(i);
    const auto have = static_cast<int64_t>(mine.size());
    if (have < 2 * each)
      throw Error("lesson_conditional: class " + std::to_string(k) + " has " + std::to_string(have) + " test images, " +
                  std::to_string(2 * each) + " needed");
    const Tensor idx = index_select(Tensor::from_indices(mine, {have}), 0, slice(gen.permutation(have), 0, 0, 2 * each));
    const Tensor ref = index_select(test_features, 0, slice(idx, 0, 0, each)), other = index_select(test_features, 0, slice(idx, 0, each, 2 * each));
    const Tensor fake = slice(sample_features, 0, k * each, (k + 1) * each);
    const models::FeatureStats ref_stats = models::feature_stats(ref);
    const double fid = models::frechet_distance(models::feature_stats(fake), ref_stats);
    const double fid_real = models::frechet_distance(models::feature_stats(other), ref_stats);
    const double cov = models::coverage(ref, fake), cov_real = models::coverage(ref, other);
    const double class_acc = models::label_accuracy(judge->predict(slice(samples, 0, k * each, (k + 1) * each)),
                                                    slice(labels, 0, k * each, (k + 1) * each));
    rows.push_back({static_cast<double>(k), class_acc, fid, fid_real, cov, cov_real});
    std::cout << std::setprecision(3) << std::setw(7) << k << std::setw(11) << class_acc << std::setprecision(1) << std::setw(12) << fid << " ("
              << fid_real << ")" << std::setprecision(3) << std::setw(12) << cov << " (" << cov_real << ")\n";
  }
  const double K = static_cast<double>(kClasses);
  auto column = [&](size_t c) {  // one column of the per-class rows
    std::vector<double> v;
    for (const auto& row : rows) v.push_back(row[c]);
    return v;
  };
  auto mean_of = [&](size_t c) { return lesson::mean_and_se(column(c)).first; };
  const double fid = mean_of(2), fid_real = mean_of(3), cov = mean_of(4), cov_real = mean_of(5);
  std::cout << std::setprecision(3) << "   all classes: accuracy " << acc << "; mean fid_domain " << std::setprecision(1) << fid << " (real "
            << fid_real << "); mean coverage " << std::setprecision(3) << cov << " (real " << cov_real << ")\n";
  // CHECK: coverage's expectation in closed form vs real images against other real images of their class
  {
    const auto [m, se] = lesson::mean_and_se(column(5));
    const double expected = models::expected_coverage(each, each);
    L.check_close("coverage of real images by other real images of their class (k = 5, " + std::to_string(each) + " vs " +
                      std::to_string(each) + ", a random split; mean over the classes) vs its expectation 1 - prod (M - i) / (M + N - i) "
                      "(4 standard errors)",
                  m, expected, 4 * std::max(se, std::sqrt(expected * (1 - expected) / (K * static_cast<double>(each)))));  // (floor: the pooled binomial's)
  }
  if (!quick) L.check_le("issue 30's bar: the conditional GAN's samples are classified as their label >= 80% of the time", 0.80, acc);
  L.write_csv("cgan_per_class.csv", {"class", "class_accuracy", "fid_domain", "fid_domain_real", "coverage", "coverage_real"}, rows);
  L.metric("cgan_class_accuracy", acc);
  L.metric("cgan_fid_domain_per_class", fid);
  L.metric("cgan_fid_domain_per_class_real", fid_real);
  L.metric("cgan_coverage", cov);
  L.metric("cgan_coverage_real", cov_real);
  L.metric("cgan_samples_per_class", static_cast<double>(each));
  L.metric("cgan_train_seconds", r.seconds);
  // pictures: a row per class; the same 10 z under every class
  NoGradGuard ng;
  const Tensor grid_labels = models::labels_by_class(kClasses, 10);
  image::save_image_grid(L.path("cgan_samples_by_class.png"), game.sample_given(grid_labels, gen), 10, 2, 2);
  const Tensor z = game.noise(10, gen);
  std::vector<Tensor> style;
  for (int64_t k = 0; k < kClasses; ++k)
    style.push_back(game.generator->forward_given(z, Tensor::full({10}, static_cast<double>(k), DType::Int64)));
  image::save_image_grid(L.path("cgan_style_vs_class.png"), concat(style, 0), 10, 2, 2);
  std::cout << "   wrote cgan_samples_by_class.png (a row per class), cgan_style_vs_class.png (a column per z, a row per class), cgan_per_class.csv\n";
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("conditional",
                   "conditional generative models: Bayes' rule, outliers, SIR, classifier-free guidance, the conditional VAE and GAN");
  Flags f;
  L.app().add_option("--bayes-images", f.bayes_images, "Test images the conditional PixelCNN classifies (10 passes each)")
      ->capture_default_str()->check(CLI::PositiveNumber);
  L.app().add_option("--ood-images", f.ood_images, "Images in each out-of-distribution set")->capture_default_str()->check(CLI::PositiveNumber);
  L.app().add_option("--per-class", f.per_class, "Guided and resampled samples per class")->capture_default_str()->check(CLI::PositiveNumber);
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);
    const data::DataSet d = lesson::harness::data_for(opt.quick ? "digits_thresholded" : "fashion_thresholded", opt);
    progress::Stopwatch clock;
    auto took = [&] {
      std::cout << "   (" << std::fixed << std::setprecision(1) << clock.seconds() << " s)\n";
      clock = progress::Stopwatch();
    };
    Step1 s1 = bayes_rule(L, d, f, gen);
    took();
    conditional_transformer(L, gen);
    took();
    rejecting_outliers(L, d, s1, f, gen);
    took();
    sir_toy(L, gen);
    std::cout << "\n-- 4. Classifier-free guidance\n";
    guided_score_toy(L, gen);
    took();
    guidance(L, f, gen);
    took();
    conditional_vae(L, d, s1, gen);
    took();
    conditional_gan(L, gen);
    took();
  });
}
