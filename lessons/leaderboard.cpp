// lessons/leaderboard.cpp — the evaluation harness as a lesson: every
// likelihood model of the project on the same splits and transforms, one
// table per data set (docs/chapters/leaderboard.md; lessons/common/harness.h).
//
// It loads what the lessons trained (runs/<lesson>/<tag>.safetensors) and
// trains only what it cannot load (--minutes each on Fashion-MNIST).
// scripts/leaderboard.sh runs it and copies the table to docs/chapters/leaderboard.md.
#include <algorithm>
#include <cmath>
#include <ctime>
#include <iomanip>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "models/made.h"
#include "models/pixelcnn.h"
#include "models/sequence.h"
#include "models/toolkit/distributions.h"
#include "lessons/common/harness.h"
#include "lessons/common/lesson.h"

using namespace dgm;
namespace hn = dgm::lesson::harness;

namespace {

// What a model that knows nothing scores: every value equally likely, at each of the `dims`
// values log p covers (the data set's levels: on words, each letter and the end, 27 tokens).
double uniform_nats(const hn::DataSet& d, double dims) { return dims * std::log(static_cast<double>(d.levels)); }

// log p(x) of an autoregressive model by D passes: for the i-th dimension of its ordering, a
// pass that sees only the dimensions before it (the rest zeroed), and the log-probability of
// x's value there. The one-pass log_prob reads every factor off a single pass; the two agree
// only if no output sees its own or a later input. {} for a model that is not autoregressive.
// y: the labels of a class-conditional model (its log p(x | y), every pass given them).
std::optional<Tensor> sequential_log_prob(models::DensityModel& m, const Tensor& x, const Tensor& y) {
  NoGradGuard ng;
  std::function<Tensor(const Tensor&, const Tensor&)> per_dim;  // [N, D] log p(x_d = target_d | the input the pass saw)
  std::vector<int64_t> order;
  if (auto* seq = dynamic_cast<models::SequenceModel*>(&m)) return seq->log_prob_stepwise(x, false, y);  // a pass per token, through its cache
  Tensor flat = reshape(x, {x.size(0), -1});
  const int64_t D = flat.size(1);
  if (auto* made = dynamic_cast<models::MADE*>(&m)) {
    order = made->order();
    per_dim = [made](const Tensor& input, const Tensor& target) {
      const Tensor l = made->logits(input);
      return made->levels() == 2 ? dist::Bernoulli{l}.log_prob(target)
                                 : dist::Categorical{l, 1}.log_prob(dist::levels_to_index(target, made->levels()));
    };
  } else if (auto* pix = dynamic_cast<models::PixelCNN*>(&m)) {
    for (int64_t d = 0; d < D; ++d) order.push_back(d);  // raster order
    per_dim = [pix, &x, &y](const Tensor& input, const Tensor& target) {
      const Tensor l = pix->logits(reshape(input, x.shape()), y), t = reshape(target, x.shape());
      const Tensor lp = pix->levels() == 2 ? dist::Bernoulli{l}.log_prob(t)
                                           : dist::Categorical{l, 1}.log_prob(dist::levels_to_index(squeeze(t, 1), pix->levels()));
      return reshape(lp, {input.size(0), -1});
    };
  } else {
    return std::nullopt;
  }
  const int64_t N = flat.size(0);
  std::vector<double> total(static_cast<size_t>(N), 0.0);
  Tensor seen = Tensor::zeros(flat.shape(), flat.dtype());
  for (int64_t i = 0; i < D; ++i) {
    const int64_t d = order[static_cast<size_t>(i)];
    const Tensor lp = per_dim(seen, flat);  // the pass sees x at positions < i only
    for (int64_t n = 0; n < N; ++n) total[static_cast<size_t>(n)] += lp.at(n * D + d);
    for (int64_t n = 0; n < N; ++n) seen.data<float>()[n * D + d] = flat.data<float>()[n * D + d];
  }
  return Tensor::from_vector(total, {N});
}

void table(lesson::Lesson& L, const std::string& data_set, const hn::Settings& s, Generator& gen, std::vector<hn::Row>& all) {
  const hn::DataSet d = hn::data_for(data_set, L.options());
  const auto recipes = models::recipes_on(data_set);
  const auto rows = hn::run_table(recipes, d, s, gen);
  for (const auto& r : rows) {
    const double uniform = uniform_nats(d, r.dims);
    L.check_le(d.name + " / " + r.tag + ": test NLL below the uniform model's " + std::to_string(static_cast<int>(std::round(uniform))) +
                   " nats",
               r.test_nll_nats, uniform);
    if (const auto it = std::find_if(recipes.begin(), recipes.end(), [&](const models::Recipe& x) { return x.tag == r.tag; });
        it != recipes.end()) {  // an exact autoregressive model: one pass vs D passes, on the first 20 test examples
      Generator fresh(L.options().seed + 1);
      const hn::Obtained again = hn::load(*it, r.checkpoint, fresh, L.options().quick);
      again.model->eval();  // dropout off (the digits Transformer's): both routes see the same network
      const Tensor x = slice(it->flat ? reshape(d.test, {d.test.size(0), -1}) : d.test, 0, 0, 20);
      auto* cond = dynamic_cast<models::ConditionalDensity*>(again.model.get());
      const Tensor y = cond && cond->classes() > 0 ? slice(d.test_labels, 0, 0, 20) : Tensor();
      if (const auto seq = sequential_log_prob(*again.model, x, y)) {
        NoGradGuard ng;
        const double one = mean(y.defined() ? cond->log_prob_given(x, y) : again.model->log_prob(x)).item(), many = mean(*seq).item();
        L.check_close(r.tag + ": mean log p(x" + (y.defined() ? " | y" : "") + ") of 20 test examples, one pass vs " + std::to_string(x.numel() / 20) +
                          " passes that each see only the dimensions before theirs",
                      one, many, 1e-5 * std::abs(one));
      }
    }
    L.metric(r.tag + "_test_nll_nats", r.test_nll_nats, r.test_nll_se);
    L.metric(r.tag + "_bits_per_dim", r.test_bpd, train::bits_per_dim(r.test_nll_se, r.dims));
    L.metric(r.tag + "_gap_nats", r.gap_nats);
  }
  // the VAE's two figures: IWAE_k >= ELBO for every k (Burda et al. 2016), so its NLL bound is the lower one
  const auto elbo = std::find_if(rows.begin(), rows.end(), [](const hn::Row& r) { return r.tag.ends_with("_elbo"); });
  const auto iwae = std::find_if(rows.begin(), rows.end(), [](const hn::Row& r) { return r.tag.ends_with("_iwae"); });
  if (elbo != rows.end() && iwae != rows.end())  // two Monte Carlo estimates: within their standard errors
    L.check_le("the same VAE: its IWAE-1000 NLL bound <= its -ELBO (+ 4 standard errors of the two means), nats per image",
               iwae->test_nll_nats, elbo->test_nll_nats + 4 * std::hypot(iwae->test_nll_se, elbo->test_nll_se));
  all.insert(all.end(), rows.begin(), rows.end());
}

}  // namespace

int main(int argc, char** argv) {
  lesson::Lesson L("leaderboard", "every likelihood model on the same splits: test NLL, bits/dim, the train/test gap");
  hn::Settings hs;
  double minutes = 2;
  bool skip_fashion = false;
  std::vector<std::string> only;
  std::string runs = "runs";
  L.app().add_option("--runs", runs, "Where the lessons' checkpoints are looked for (loaded before anything is trained)")
      ->capture_default_str();
  L.app().add_option("--minutes", minutes, "Training time of each Fashion-MNIST model the harness cannot load")
      ->capture_default_str()->check(CLI::PositiveNumber);
  L.app().add_flag("--skip-fashion", skip_fashion, "The digits table only (a full run adds the Fashion-MNIST tables)");
  L.app().add_option("--tables", only, "Only these data sets' tables (default: all): digits17, words, fashion_binarized, fashion_dequantized, "
                     "fashion_thresholded")->delimiter(',')->check(CLI::IsMember({"digits17", "words", "fashion_binarized", "fashion_dequantized", "fashion_thresholded"}));
  return L.run(argc, argv, [&] {
    const auto& opt = L.options();
    Generator gen(opt.seed);
    hs = lesson::harness::settings_from(opt, runs);
    std::cout << "\n   Models are loaded from " << hs.runs << "/<lesson>/ when a lesson trained them, else from " << opt.out
              << ", else trained here" << (opt.quick ? " (--quick: always trained, small)" : "") << "\n";
    std::vector<hn::Row> rows;
    auto wanted = [&](const std::string& name) { return only.empty() || std::find(only.begin(), only.end(), name) != only.end(); };
    if (wanted("digits17")) table(L, "digits17", hs, gen, rows);
    if (!opt.quick && wanted("words")) {
      try {  // the character models of lesson_sequence: bits/dim is bits per character there
        table(L, "words", hs, gen, rows);
      } catch (const data::DataNotFound& e) {
        std::cout << "   skipped the words table: " << e.what() << "\n";
      }
    }
    if (!opt.quick && !skip_fashion) {
      try {
        hs.minutes = minutes;  // each Fashion-MNIST model the harness trains itself
        for (const char* name : {"fashion_binarized", "fashion_dequantized", "fashion_thresholded"})  // (thresholded: the class-conditional models)
          if (wanted(name)) table(L, name, hs, gen, rows);
      } catch (const data::DataNotFound& e) {
        std::cout << "   skipped the Fashion-MNIST tables: " << e.what() << "\n";
      }
    }
    std::ostringstream md;
    const std::time_t now = std::time(nullptr);
    char date[32];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::localtime(&now));
    md << "# Leaderboard: every likelihood model on the same splits\n\n"
       << "Generated by `scripts/leaderboard.sh` (it runs `build/bin/lesson_leaderboard` and copies its "
       << "`leaderboard.md` here) on " << date << ", seed " << opt.seed << (opt.quick ? ", --quick" : "") << ".\n"
       << "Test NLL per example in nats +- its standard error over the test images (bits/dim = nats / (D ln 2)); "
       << "\"vs the best\": the distance to the data set's best row +- the standard error of that difference, "
       << "\"significant\" beyond 2 of them (the errors combined as if independent; on the same images the true one is "
       << "smaller, so the call is conservative); train NLL on as many training examples; "
       << "gap = test - train. \"train s\" is the training time recorded with the checkpoint (? when the checkpoint "
       << "predates that record). \"test images\" is how many were evaluated: all of them, except for the VAE's "
       << "IWAE-1000 (1,000) and the image DDPM (32: its bound sums all T = 1000 terms per image), whose gap is "
       << "mostly noise. Published figures are for the same family, on the data set named (often another one). "
       << "How to read and extend the table: docs/chapters/likelihood.md and docs/architecture.md.\n"
       << hn::markdown(rows);
    L.write_text("leaderboard.md", md.str());
    hn::write_csv(L.path("leaderboard.csv"), rows);
    std::cout << "\n" << hn::markdown(rows) << "\n   wrote leaderboard.md and leaderboard.csv\n";
  });
}
