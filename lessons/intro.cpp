// lessons/intro.cpp — what a generative model is for (docs/chapters/intro.md).
//
// 1. Generative vs discriminative: a class-conditional model p(x | y) p(y)
//    turned into a classifier by Bayes' rule, beside logistic regression
//    trained on the same images; accuracy against training-set size.
// 2. Rejecting inputs: p(x) flags noise and other data sets that the
//    discriminative classifier labels with confidence; and the known failure
//    (simpler images can get a higher likelihood than the training data's own).
// 3. Conditional generation: x ~ p(x | y), one row per class.
// 4. The course's five steps, mapped onto this lesson's code.
#include <algorithm>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <numeric>

#include "autograd/graph.h"
#include "autograd/nn.h"
#include "autograd/optim.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"
#include "models/conditional.h"
#include "models/mixtures.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/image.h"
#include "models/toolkit/plot.h"
#include "models/toolkit/transforms.h"

using namespace dgm;

namespace {

constexpr int64_t kClasses = 10;

// Binary images, flat [N, D] float64: pixel > 0.5.
Tensor binary(const Tensor& images) {
  NoGradGuard ng;
  return gt(reshape(images, {images.size(0), -1}), Tensor::scalar(0.5)).to(DType::Float64);
}

struct Data {
  std::string name;
  Tensor train_x, train_y, test_x, test_y;  // binary [N, D] float64, labels int64
  int64_t height = 0, width = 0;
};

std::vector<double> negative_log_prob(const models::ClassConditionalBernoulli& m, const Tensor& x) {
  return neg(m.log_prob(x)).to_vector();
}

// The data: binarized Fashion-MNIST in a full run, the 8x8 digits in --quick
// runs (or when Fashion-MNIST is not installed, said so).
Data load(const lesson::Options& opt) {
  Data d;
  if (!opt.quick) {
    try {
      const auto tr = data::fashion_mnist(data::Split::Train, opt.data), te = data::fashion_mnist(data::Split::Test, opt.data);
      d = {"Fashion-MNIST (binarized: pixel > 0.5)", binary(tr.images), tr.labels, binary(te.images), te.labels, 28, 28};
      return d;
    } catch (const data::DataNotFound& e) {
      std::cout << "   skipped Fashion-MNIST (" << e.what() << "); the 8x8 digits stand in\n";
    }
  }
  const lesson::DigitSplits s = lesson::load_digits(opt);
  d = {"8x8 digits (binarized: grey level > 8)", binary(concat({s.train.images, s.validation.images}, 0)),
       concat({s.train.labels, s.validation.labels}, 0), binary(s.test.images), s.test.labels, 8, 8};
  return d;
}

// ------------------------------------------------------------ 1. generative vs discriminative
struct Step1 {
  models::ClassConditionalBernoulli generative;
  std::shared_ptr<models::LogisticRegression> discriminative;
};

Step1 generative_vs_discriminative(lesson::Lesson& L, const Data& d, Generator& gen) {
  const bool quick = L.options().quick;
  const int64_t N = d.train_x.size(0), D = d.train_x.size(1);
  std::cout << "\n-- 1. Generative vs discriminative on " << d.name << ": train " << N << " / test " << d.test_x.size(0) << "\n"
            << "   generative: p(y) p(x | y), p(x | y) a product of Bernoullis per class (naive Bayes), Bayes' rule for p(y | x)\n"
            << "   discriminative: logistic regression p(y | x) = softmax(W x + b), Adam with a small L2 penalty\n";
  // learning curves: the same random subsets for both, 3 repeats per size
  std::vector<int64_t> sizes = {20, 50, 100, 200, 500};
  for (int64_t s : {1000, 3000, 10000, 30000, 60000})
    if (s <= N) sizes.push_back(s);
  if (sizes.back() != N) sizes.push_back(N);
  const int repeats = quick ? 2 : 3;
  std::vector<std::vector<double>> rows;
  std::cout << "   train images   generative (naive Bayes)   discriminative (logistic)\n";
  for (int64_t n : sizes) {
    double g_acc = 0, d_acc = 0;
    for (int r = 0; r < repeats; ++r) {
      const Tensor pick = slice(gen.permutation(N), 0, 0, n);
      const Tensor x = index_select(d.train_x, 0, pick), y = index_select(d.train_y, 0, pick);
      const auto nb = models::fit_class_conditional(x, y, kClasses, 1, 0, gen);
      g_acc += models::label_accuracy(nb.predict(d.test_x), d.test_y) / repeats;
      models::LogisticRegression lr(D, kClasses, gen);
      lr.fit(x, y, gen, std::max<int64_t>(300, std::min<int64_t>(3000, 5 * n / 64 + 300)));
      d_acc += lr.accuracy(d.test_x, d.test_y) / repeats;
    }
    rows.push_back({static_cast<double>(n), g_acc, d_acc});
    std::cout << std::setw(14) << n << std::fixed << std::setprecision(3) << std::setw(18) << g_acc << std::setw(28) << d_acc << "\n";
  }
  L.write_csv("learning_curves.csv", {"train_images", "generative_accuracy", "discriminative_accuracy"}, rows);
  plot::line_plot(L.path("learning_curves.csv"), L.path("learning_curves.png"), "test accuracy against training-set size",
                  "training images", "test accuracy", 1, {{2, "generative: naive Bayes + Bayes' rule"}, {3, "discriminative: logistic regression"}},
                  /*log_y=*/false, /*log_x=*/true);
  const auto& first = rows.front();
  const auto& last = rows.back();
  std::cout << std::setprecision(0) << "   with " << first[0] << " images the " << (first[1] > first[2] ? "generative" : "discriminative")
            << " classifier is ahead; with " << last[0] << " the " << (last[1] > last[2] ? "generative" : "discriminative")
            << " one (Ng & Jordan 2002: naive Bayes reaches its asymptote sooner, logistic regression's is lower)\n"
            << "   wrote learning_curves.png\n";

  // the full-size models of steps 2 and 3: a mixture of K Bernoullis per class
  const int64_t K = quick ? 3 : 10;
  Step1 s;
  s.generative = models::fit_class_conditional(d.train_x, d.train_y, kClasses, K, quick ? 15 : 30, gen);
  s.discriminative = std::make_shared<models::LogisticRegression>(D, kClasses, gen);
  s.discriminative->fit(d.train_x, d.train_y, gen, quick ? 1500 : 5000);
  const double g_acc = models::label_accuracy(s.generative.predict(d.test_x), d.test_y), d_acc = s.discriminative->accuracy(d.test_x, d.test_y);
  std::cout << std::setprecision(4) << "   all " << N << " training images; generative with a mixture of " << K << " Bernoullis per class: test accuracy "
            << std::setprecision(4) << g_acc << "; logistic regression " << d_acc << "\n";

  // Bayes' rule two ways: a logsumexp in the log domain, and the plain ratio in long double
  const Tensor lp = s.generative.log_posterior(d.test_x), lj = s.generative.log_joint(d.test_x);
  double worst_sum = 0, worst_diff = 0;
  for (int64_t n = 0; n < lp.size(0); ++n) {
    double total = 0;
    long double denom = 0;
    for (int64_t y = 0; y < kClasses; ++y) {
      total += std::exp(lp.at(n * kClasses + y));
      denom += std::exp(static_cast<long double>(lj.at(n * kClasses + y)));
    }
    worst_sum = std::max(worst_sum, std::abs(total - 1));
    for (int64_t y = 0; y < kClasses; ++y) {
      const long double direct = std::exp(static_cast<long double>(lj.at(n * kClasses + y))) / denom;
      worst_diff = std::max(worst_diff, static_cast<double>(std::abs(direct - static_cast<long double>(std::exp(lp.at(n * kClasses + y))))));
    }
  }
  std::cout << "   (the log-domain posterior sums to 1 within " << std::scientific << std::setprecision(1) << worst_sum << std::fixed
            << " for every test image: that is how it was normalised, so it is not a check)\n";
  L.check_close("p(y | x) by logsumexp vs the plain ratio p(x, y) / sum_y' p(x, y') in long double: max |diff|", worst_diff, 0.0, 1e-12);
  L.check_le("both classifiers are far above chance (0.1) with all the training images: min accuracy >= 0.5", 0.5, std::min(g_acc, d_acc));
  L.metric("bayes_classifier_accuracy", g_acc);
  L.metric("discriminative_accuracy", d_acc);
  L.metric("naive_bayes_accuracy_smallest", first[1]);
  L.metric("logistic_accuracy_smallest", first[2]);
  return s;
}

// ------------------------------------------------------------ 2. rejecting inputs
void rejecting_inputs(lesson::Lesson& L, const Data& d, Step1& s, Generator& gen) {
  const int64_t D = d.train_x.size(1), n_out = std::min<int64_t>(1000, d.test_x.size(0));
  std::cout << "\n-- 2. Rejecting inputs with p(x) = sum_y p(y) p(x | y): score -log p(x), AUROC against the " << d.test_x.size(0)
            << " test images\n";
  // the out-of-distribution sets
  NoGradGuard ng;
  const Tensor mean_pixel = mean(d.train_x, {0}, true);
  struct Set {
    std::string name, note;
    Tensor x;
  };
  std::vector<Set> sets;
  sets.push_back({"noise: coin flips", "", gen.bernoulli(Tensor::full({n_out, D}, 0.5, DType::Float64))});
  sets.push_back({"noise: each pixel at its training frequency", "", gen.bernoulli(expand(mean_pixel, {n_out, D}))});
  sets.push_back({"the test images inverted (1 - x)", "", 1.0 - slice(d.test_x, 0, 0, n_out)});
  if (d.height == 28)
    sets.push_back({"the 8x8 digits blown up to 28x28 (MNIST is not installed; the simpler set the project can make)",
                    "published: Glow trained on Fashion-MNIST gives MNIST 1.833 bits/dim vs 2.958 on its own test set",
                    binary(data::digits_as_28x28(data::Split::Test, L.options().data))});
  const std::vector<double> in_scores = negative_log_prob(s.generative, d.test_x);
  const double in_bpd = std::accumulate(in_scores.begin(), in_scores.end(), 0.0) / in_scores.size() / (D * std::log(2.0));
  std::cout << std::fixed << std::setprecision(3) << "   in distribution (test): " << in_bpd << " bits/dim\n";
  std::cout << "   set                                                        bits/dim   AUROC   logistic's mean confidence\n";
  std::vector<std::vector<double>> rows;
  for (size_t k = 0; k < sets.size(); ++k) {
    const auto& set = sets[k];
    const std::vector<double> out_scores = negative_log_prob(s.generative, set.x);
    const double bpd = std::accumulate(out_scores.begin(), out_scores.end(), 0.0) / out_scores.size() / (D * std::log(2.0));
    const double auroc = lesson::auroc_by_ranks(in_scores, out_scores);
    const double confidence = mean(max(s.discriminative->probabilities(set.x), {1})).item();
    std::cout << "   " << std::left << std::setw(58) << set.name.substr(0, 58) << std::right << std::setw(9) << bpd << std::setw(8) << auroc
              << std::setw(12) << confidence << "\n";
    if (!set.note.empty()) std::cout << "      (" << set.note << ")\n";
    if (k == 1)
      L.check_close("AUROC by ranks (Mann-Whitney) vs by counting every pair, noise at the training frequencies", auroc,
                    lesson::auroc_by_pairs(in_scores, out_scores), 1e-12);
    if (k == 0) {
      L.check_le("p(x) rejects coin-flip noise: AUROC >= 0.99", 0.99, auroc);
      L.metric("ood_auroc_noise", auroc);
      L.metric("discriminative_confidence_on_noise", confidence);
    }
    if (k + 1 == sets.size()) {
      L.metric("ood_auroc", auroc);
      L.metric("ood_bits_per_dim", bpd);
      std::cout << "   the last set " << (bpd < in_bpd ? "gets a HIGHER likelihood than the model's own test images: the known failure shows here"
                                                        : "gets a lower likelihood than the model's own test images (the failure does not show with this model)")
                << "\n";
    }
    rows.push_back({static_cast<double>(k), bpd, auroc, confidence});
  }
  L.metric("in_distribution_bits_per_dim", in_bpd);
  L.write_csv("ood.csv", {"set", "bits_per_dim", "auroc", "logistic_confidence"}, rows);
  // the OOD sets, a row each, with the test images on top
  std::vector<Tensor> pics = {reshape(slice(d.test_x, 0, 0, 10), {10, 1, d.height, d.width})};
  for (const auto& set : sets) pics.push_back(reshape(slice(set.x, 0, 0, 10), {10, 1, d.height, d.width}));
  image::save_image_grid(L.path("ood_inputs.png"), concat(pics, 0).to(DType::Float32), 10, image::upscale_for(d.height), 2);
  std::cout << "   wrote ood_inputs.png (rows: test images, then each set above)\n";
}

// The known failure with a stronger model: lesson_flows's multi-scale RealNVP on
// the 256-level Fashion-MNIST (loaded from runs/flows/ when that lesson ran,
// else trained here for `minutes`), on Fashion's test images and on the
// blown-up digits.
void flow_failure(lesson::Lesson& L, const std::string& runs, double minutes, Generator& gen) {
  namespace hn = lesson::harness;
  std::cout << "\n   The same question with a stronger model: a multi-scale RealNVP on the 256-level images\n";
  const hn::DataSet fashion = hn::data_for("fashion_dequantized", L.options());
  hn::Settings s = hn::settings_from(L.options());
  s.runs = runs, s.minutes = minutes;
  const hn::Obtained flow = hn::obtain(models::recipe("fashion_flow"), fashion, s, gen);
  flow.model->eval();
  const int64_t n = 1000;
  NoGradGuard ng;
  const Tensor digits = data::digits_as_28x28(data::Split::Test, L.options().data);
  const Tensor digits256 = dist::index_to_levels(dist::levels_to_index(digits, 256), 256);  // on the 256-level grid
  const double own = train::evaluate(*flow.model, slice(fashion.test, 0, 0, n), 250).bits_per_dim;
  const double other = train::evaluate(*flow.model, digits256, 250).bits_per_dim;
  std::cout << std::fixed << std::setprecision(3) << "   " << flow.source << "\n   Fashion-MNIST test (first " << n << "): " << own
            << " bits/dim; the blown-up digits: " << other << " bits/dim -> "
            << (other < own ? "the digits, never seen, get the HIGHER likelihood: the known failure"
                            : "the digits get the lower likelihood here")
            << "\n   (published, Glow: Fashion-MNIST 2.958, MNIST 1.833 bits/dim)\n";
  std::vector<double> in = neg(flow.model->log_prob(slice(fashion.test, 0, 0, n))).to_vector();
  std::vector<double> out = neg(flow.model->log_prob(digits256)).to_vector();
  const double auroc = lesson::auroc_by_ranks(in, out);
  std::cout << "   AUROC of -log p(x) as a detector of the digits: " << std::setprecision(3) << auroc
            << (auroc < 0.5 ? " (below 0.5: the detector points the wrong way)" : "") << "\n";
  L.metric("flow_fashion_test_bits_per_dim", own);
  L.metric("flow_digits_bits_per_dim", other);
  L.metric("flow_ood_auroc_digits", auroc);
}

// ------------------------------------------------------------ 3. conditional generation
void conditional_samples(lesson::Lesson& L, const Data& d, const Step1& s, Generator& gen) {
  std::cout << "\n-- 3. Conditional generation: x ~ p(x | y), one row per class (and each class's component means)\n";
  std::vector<Tensor> rows, means;
  for (int64_t y = 0; y < kClasses; ++y) {
    rows.push_back(s.generative.sample(y, 10, gen));
    const auto& c = s.generative.classes[static_cast<size_t>(y)];
    means.push_back(c.means);
  }
  const int up = image::upscale_for(d.height);
  image::save_image_grid(L.path("samples_by_class.png"), reshape(concat(rows, 0), {10 * kClasses, 1, d.height, d.width}).to(DType::Float32), 10, up, 2);
  const int64_t K = means[0].size(0);
  image::save_image_grid(L.path("component_means_by_class.png"), reshape(concat(means, 0), {K * kClasses, 1, d.height, d.width}).to(DType::Float32),
                         K, up, 2);
  std::cout << "   wrote samples_by_class.png (binary draws) and component_means_by_class.png (the " << K
            << " components' pixel probabilities per class)\n";
  // the samples are of the class asked for: the model's own Bayes classifier agrees (a sanity figure, not a proof)
  Tensor all = concat(rows, 0);
  std::vector<int64_t> labels;
  for (int64_t y = 0; y < kClasses; ++y)
    for (int k = 0; k < 10; ++k) labels.push_back(y);
  const double agree = models::label_accuracy(s.generative.predict(all), Tensor::from_indices(labels, {10 * kClasses}));
  std::cout << "   the Bayes classifier gives " << std::setprecision(2) << 100 * agree << "% of the samples the class they were drawn for\n";
  L.metric("samples_classified_as_drawn", agree);
}

// ------------------------------------------------------------ 4. the five steps
void five_steps() {
  std::cout << "\n-- 4. The course's five steps, and where each one is in this lesson\n"
               "   1 formulation     what is random and what is asked: images x and labels y, p(x, y); questions p(y | x) and p(x)\n"
               "                     -> Data, load() in lessons/intro.cpp\n"
               "   2 representation  p(x, y) = p(y) prod-of-Bernoullis mixtures p(x | y): ClassConditionalBernoulli\n"
               "                     (models/mixtures.h); the discriminative rival represents p(y | x) only: LogisticRegression\n"
               "   3 objective       maximum likelihood of (x, y) for the generative model; the conditional likelihood\n"
               "                     of y given x (cross-entropy) for the discriminative one\n"
               "   4 optimisation    EM, closed-form M-steps (fit_class_conditional); Adam through the engine (LogisticRegression::fit)\n"
               "   5 inference       Bayes' rule p(y | x) (log_posterior), the density p(x) (log_prob: rejecting inputs),\n"
               "                     sampling x ~ p(x | y) (sample)\n";
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("intro", "what a generative model is for: Bayes' rule, rejecting inputs, conditional samples");
  std::string runs = "runs";
  double minutes = 3;
  L.app().add_option("--runs", runs, "Where lesson_flows's Fashion-MNIST flow is looked for (loaded before it is trained)")
      ->capture_default_str();
  L.app().add_option("--minutes", minutes, "Training time of the Fashion-MNIST flow when none can be loaded")
      ->capture_default_str()->check(CLI::PositiveNumber);
  return L.run(argc, argv, [&] {
    Generator gen(L.options().seed);
    const Data d = load(L.options());
    Step1 s = generative_vs_discriminative(L, d, gen);
    rejecting_inputs(L, d, s, gen);
    if (d.height == 28) flow_failure(L, runs, minutes, gen);
    conditional_samples(L, d, s, gen);
    five_steps();
  });
}
