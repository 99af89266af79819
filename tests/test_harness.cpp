// tests/test_harness.cpp — the evaluation harness loads before it trains (lessons/common/harness.h).
#include <filesystem>

#include "autograd/checkpoint.h"
#include "helpers.h"
#include "lessons/common/harness.h"
#include "models/made.h"

using namespace dgm;
namespace fs = std::filesystem;
namespace hn = dgm::lesson::harness;

namespace {

hn::Recipe tiny_made(int64_t hidden) {
  hn::Recipe r;
  r.tag = "tiny_made";
  r.model = "MADE " + std::to_string(hidden);
  r.lesson_checkpoint = "ar/tiny_made";
  r.make = [hidden](Generator& g) { return std::make_shared<models::MADE>(4, std::vector<int64_t>{hidden}, 2, g); };
  r.configure = [](train::FitOptions& o) {
    o.epochs = 2;
    o.batch_size = 16;
    o.progress = false;
  };
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

}  // namespace

TEST_CASE("harness: trains what it cannot load, then loads it; a checkpoint that does not fit is skipped") {
  const fs::path root = fs::path(test::temp_path("dgm-harness", "")) / "h";
  fs::remove_all(root);
  hn::Settings s;
  s.runs = (root / "runs").string(), s.out = (root / "out").string();
  fs::create_directories(s.out);
  const hn::DataSet d = binary_squares();
  const hn::Recipe r = tiny_made(8);
  Generator g(1);

  const hn::Obtained first = hn::obtain(r, d, s, g);
  CHECK(first.source.rfind("trained here", 0) == 0);
  CHECK(fs::exists(first.checkpoint));
  const hn::Row a = hn::evaluate(r, d, first);

  const hn::Obtained second = hn::obtain(r, d, s, g);
  CHECK(second.source == "loaded " + (fs::path(s.out) / "tiny_made.safetensors").string());
  const hn::Row b = hn::evaluate(r, d, second);
  CHECK(b.test_nll_nats == a.test_nll_nats);  // the same parameters, the same exact likelihood
  CHECK(b.gap_nats == Approx(b.test_nll_nats - b.train_nll_nats));
  CHECK(b.test_examples == 16);
  CHECK(b.parameters == first.model->parameter_count());

  // a lesson checkpoint of another size: reported, skipped, the harness's own one loaded
  fs::create_directories(fs::path(s.runs) / "ar");
  Generator g2(2);
  save_checkpoint(*tiny_made(16).make(g2), (fs::path(s.runs) / "ar" / "tiny_made.safetensors").string());
  CHECK(hn::obtain(r, d, s, g).source == second.source);
  // a lesson checkpoint that fits comes first
  save_checkpoint(*tiny_made(8).make(g2), (fs::path(s.runs) / "ar" / "tiny_made.safetensors").string());
  CHECK(hn::obtain(r, d, s, g).source == "loaded " + (fs::path(s.runs) / "ar" / "tiny_made.safetensors").string());
  // with loading off, it trains
  s.load = false;
  CHECK(hn::obtain(r, d, s, g).source.rfind("trained here", 0) == 0);

  const std::string md = hn::markdown({a, b});
  CHECK(md.find("### squares") != std::string::npos);
  CHECK(md.find("| MADE 8 |") != std::string::npos);
}
