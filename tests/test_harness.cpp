// tests/test_harness.cpp — the evaluation harness loads before it trains, rebuilds a
// checkpoint from the JSON beside it, and stops (never retrains silently) when a
// checkpoint does not fit its recipe (lessons/common/harness.h).
#include <filesystem>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "helpers.h"
#include "lessons/common/harness.h"
#include "models/made.h"

using namespace dgm;
namespace fs = std::filesystem;
namespace hn = dgm::lesson::harness;

namespace {

models::Recipe tiny_made() {
  models::Recipe r;
  r.tag = "tiny_made", r.model = "made", r.config = R"({"dims": 4, "hidden": [8], "levels": 2})", r.data = "squares", r.lesson = "autoregressive";
  r.full.epochs = r.quick.epochs = 2;
  r.full.batch_size = r.quick.batch_size = 16;
  return r;
}

hn::DataSet binary_squares() {
  Generator g(11);
  hn::DataSet d;
  d.name = "squares";
  d.train = g.bernoulli({64, 1, 2, 2}, 0.3), d.validation = g.bernoulli({16, 1, 2, 2}, 0.3), d.test = g.bernoulli({16, 1, 2, 2}, 0.3);
  d.train_eval = d.train;
  return d;
}

struct Folders {
  hn::Settings s;
  explicit Folders(const std::string& name) {  // one folder per test case: ctest runs them in parallel
    const fs::path root = fs::path(test::temp_path("dgm-harness", "")) / name;
    fs::remove_all(root);
    s.runs = (root / "runs").string(), s.out = (root / "out").string();
    fs::create_directories(s.out);
    fs::create_directories(fs::path(s.runs) / "autoregressive");
  }
  std::string lesson_file() const { return (fs::path(s.runs) / "autoregressive" / "tiny_made.safetensors").string(); }
};

// What a lesson leaves: a trained model of `recipe` (flags applied) in runs/autoregressive/, with its JSON.
void lesson_trains(const models::Recipe& recipe, const hn::DataSet& d, const Folders& f) {
  hn::Settings lesson = f.s;
  lesson.out = (fs::path(f.s.runs) / "autoregressive").string(), lesson.load = false;
  Generator g(5);
  hn::obtain(recipe, d, lesson, g);
}

}  // namespace

TEST_CASE("harness: trains what it cannot load, then loads it with the same numbers", "[harness]") {
  Folders f("trains-then-loads");
  const hn::DataSet d = binary_squares();
  const models::Recipe r = tiny_made();
  Generator g(1);
  const hn::Obtained first = hn::obtain(r, d, f.s, g);
  CHECK(first.source.rfind("trained here", 0) == 0);
  CHECK(fs::exists(first.checkpoint));
  const hn::Row a = hn::evaluate(r, d, first).at(0);

  const hn::Obtained second = hn::obtain(r, d, f.s, g);
  CHECK(second.source == "loaded " + (fs::path(f.s.out) / "tiny_made.safetensors").string());
  const hn::Row b = hn::evaluate(r, d, second).at(0);
  CHECK(b.test_nll_nats == a.test_nll_nats);  // the same parameters, the same exact likelihood
  CHECK(b.gap_nats == Approx(b.test_nll_nats - b.train_nll_nats));
  CHECK(b.test_examples == 16);
  CHECK(b.parameters == first.model->parameter_count());
  CHECK(b.model == "MADE 8");
  // with loading off, it trains
  f.s.load = false;
  CHECK(hn::obtain(r, d, f.s, g).source.rfind("trained here", 0) == 0);

  const std::string md = hn::markdown({a, b});
  CHECK(md.find("### squares") != std::string::npos);
  CHECK(md.find("| MADE 8 |") != std::string::npos);
}

TEST_CASE("harness: a class-conditional recipe learns from the labels and is scored by -log p(x | y), each image given its own label",
          "[harness][conditional]") {
  Folders f("conditional");
  // the label decides the image: class 0 all dark, class 1 all bright, a pixel flipped with probability 0.05
  Generator g(7);
  hn::DataSet d;
  d.name = "squares";
  auto split = [&](int64_t n, Tensor& x, Tensor& y) {
    y = g.randint(Shape{n}, 0, 2);
    const Tensor level = reshape(y.to(DType::Float32), {n, 1, 1, 1});
    const Tensor flip = g.bernoulli({n, 1, 2, 2}, 0.05);
    x = abs(level - flip);
  };
  split(256, d.train, d.train_labels), split(32, d.validation, d.validation_labels), split(64, d.test, d.test_labels);
  d.train_eval = d.train, d.levels = 2;
  models::Recipe r;
  r.tag = "tiny_cpixelcnn", r.model = "pixelcnn", r.data = "squares", r.flat = false;
  r.config = R"({"levels": 2, "channels": 8, "blocks": 1, "height": 2, "width": 2, "gated": false, "classes": 2})";
  r.full.epochs = r.quick.epochs = 30, r.full.lr = r.quick.lr = 1e-2, r.full.batch_size = r.quick.batch_size = 32;
  const hn::Obtained m = hn::obtain(r, d, f.s, g);
  const hn::Row row = hn::evaluate(r, d, m).at(0);
  CHECK(row.kind.find("p(x | y)") != std::string::npos);
  CHECK(row.data_set == "squares, class-conditional");
  CHECK(hn::markdown({row}).find("| exact, log p(x \\| y) |") != std::string::npos);  // the '|' escaped: one cell
  CHECK(hn::markdown({row}).find("### squares, class-conditional (-log p(x | y), each test image given its label)") != std::string::npos);
  auto& cond = dynamic_cast<models::ConditionalDensity&>(*m.model);
  NoGradGuard ng;
  const double given = -mean(cond.log_prob_given(d.test, d.test_labels)).item(), mixture = -mean(m.model->log_prob(d.test)).item();
  INFO("row " << row.test_nll_nats << ", -log p(x | y) " << given << ", -log p(x) " << mixture);
  CHECK(row.test_nll_nats == Approx(given).epsilon(1e-6));
  // learned from the labels: p(x | y) near the 4-pixel flip noise's own entropy (4 x 0.199 nats), and p(x) about
  // half of it (the other class explains nothing), so the two differ by about log 2
  CHECK(given < 1.3);
  CHECK(mixture - given == Approx(std::log(2.0)).margin(0.15));
}

TEST_CASE("harness: the table says how far each row is from the best, and whether that is more than noise", "[harness]") {
  hn::Row best, near, far, other;
  best.data_set = near.data_set = far.data_set = "digits17", other.data_set = "fashion";
  best.test_nll_nats = 90.0, best.test_nll_se = 0.3;
  near.test_nll_nats = 90.5, near.test_nll_se = 0.4;  // 0.5 apart, SE of the difference 0.5
  far.test_nll_nats = 95.0, far.test_nll_se = 0.4;    // 5 apart: 10 standard errors
  other.test_nll_nats = 300.0, other.test_nll_se = 1.0;  // alone on its data set
  const std::vector<hn::Row> rows = {near, best, far, other};
  CHECK(hn::versus_best(rows[1], rows) == "best");
  CHECK(hn::versus_best(rows[0], rows) == "+0.50 +- 0.50, within noise");
  CHECK(hn::versus_best(rows[2], rows) == "+5.00 +- 0.50, significant");
  CHECK(hn::versus_best(rows[3], rows) == "best");
  CHECK(hn::markdown(rows).find("| 90.50 +- 0.40 | +0.50 +- 0.50, within noise |") != std::string::npos);
}

TEST_CASE("harness: a lesson checkpoint trained with an architecture flag is rebuilt from its JSON, not retrained", "[harness]") {
  Folders f("flagged");
  const hn::DataSet d = binary_squares();
  models::Recipe flagged = tiny_made();
  flagged.set("hidden", "[16]");  // as lesson_autoregressive --some-flag would
  lesson_trains(flagged, d, f);
  Generator g(1);
  const hn::Obtained m = hn::obtain(tiny_made(), d, f.s, g);  // the harness asks for the recipe as it is in the table
  CHECK(m.source == "loaded " + f.lesson_file());
  CHECK(m.title == "MADE 16");
  CHECK(m.model->parameter_count() == models::MADE(4, {16}, 2, g).parameter_count());
  CHECK_FALSE(fs::exists(fs::path(f.s.out) / "tiny_made.safetensors"));  // nothing was trained
}

TEST_CASE("harness: a checkpoint that does not fit its recipe stops with an error naming recipe, file and tensors", "[harness]") {
  Folders f("does-not-fit");
  const hn::DataSet d = binary_squares();
  Generator g(2);
  // tensors of another size, no JSON beside them: built from the recipe, they do not fit
  save_checkpoint(models::MADE(4, {16}, 2, g), f.lesson_file());
  const std::string e = test::error_of([&] { hn::obtain(tiny_made(), d, f.s, g); });
  for (const char* part : {"does not fit recipe tiny_made", "runs/autoregressive/tiny_made.safetensors", "[16, 4]", "[8, 4]", "--retrain"}) {
    INFO(part << " in: " << e);
    CHECK(e.find(part) != std::string::npos);
  }
  CHECK_FALSE(fs::exists(fs::path(f.s.out) / "tiny_made.safetensors"));  // and it did not train instead

  // a JSON that names another recipe
  save_text_atomically((fs::path(f.s.runs) / "autoregressive" / "tiny_made.json").string(), R"({"recipe": "digits_made", "model": "made"})");
  CHECK(test::error_of([&] { hn::obtain(tiny_made(), d, f.s, g); }).find("trained by recipe digits_made") != std::string::npos);

  // --retrain: trains anyway (and writes the harness's own checkpoint)
  f.s.retrain = true;
  CHECK(hn::obtain(tiny_made(), d, f.s, g).source.rfind("trained here", 0) == 0);
}
