// dgm/lessons/common/harness.cpp
#include "lessons/common/harness.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/checkpoint.h"
#include "models/registry.h"
#include "models/vae.h"

namespace dgm::lesson::harness {

namespace fs = std::filesystem;

DataSet data_for(const std::string& name, const Options& opt) {
  DataSet d = data::load_data_set(name, opt.data);
  if (d.synthetic) say_synthetic_digits();
  return d;
}

Settings settings_from(const Options& opt, const std::string& runs) {
  Settings s;
  s.runs = runs;
  s.out = opt.out, s.quick = opt.quick, s.load = !opt.quick, s.retrain = opt.retrain, s.resume = opt.resume;
  s.epochs = opt.epochs, s.lr = opt.lr;
  return s;
}

// ---------------------------------------------------------------- load or train
namespace {

Tensor as_input(const Recipe& r, const Tensor& x) { return r.flat ? reshape(x, {x.size(0), -1}) : x; }

nlohmann::json json_beside(const std::string& checkpoint) {
  fs::path p = checkpoint;
  p.replace_extension(".json");
  std::ifstream in(p);
  if (!in) return nlohmann::json();
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  return j.is_object() ? j : nlohmann::json();
}

}  // namespace

Obtained load(const Recipe& r, const std::string& checkpoint, Generator& gen, bool quick) {
  Obtained o;
  const nlohmann::json j = json_beside(checkpoint);
  auto stop = [&](const std::string& why) {
    return Error("the checkpoint " + checkpoint + " does not fit recipe " + r.tag + ": " + why +
                 " (pass --retrain to train the recipe anew, or delete the file)");
  };
  if (j.contains("recipe") && j["recipe"] != r.tag) throw stop("it was trained by recipe " + j["recipe"].get<std::string>());
  std::string model = r.model, config = r.config_for(quick);
  if (j.contains("model") && j.contains("config")) {  // as the lesson built it, flags included
    model = j["model"].get<std::string>(), config = j["config"].dump();
    const std::string differs = models::config_differences(r.config_for(quick), config);
    if (!differs.empty()) std::cout << "   " << r.tag << ": " << checkpoint << " was trained with other settings than the recipe's (" << differs << "); its own are used\n";
  }
  try {
    o.model = models::make_model(model, config, gen);
    load_checkpoint(*o.model, checkpoint);
  } catch (const Error& e) {
    throw stop(e.what());
  }
  o.title = models::describe(model, config);
  o.source = "loaded " + checkpoint;
  o.checkpoint = checkpoint;
  o.train_seconds = j.contains("train_seconds") && j["train_seconds"].is_number() ? j["train_seconds"].get<double>() : NAN;
  return o;
}

Obtained obtain(const Recipe& r, const DataSet& d, const Settings& s, Generator& gen) {
  if (s.load && !s.retrain) {
    std::vector<std::string> candidates;
    if (!r.lesson.empty()) candidates.push_back(r.lesson_checkpoint(s.runs));
    candidates.push_back((fs::path(s.out) / (r.tag + ".safetensors")).string());
    for (const auto& c : candidates)
      if (fs::exists(c)) return load(r, c, gen, s.quick);
  }
  Obtained o;
  o.model = models::build(r, s.quick, gen);
  o.title = r.title(s.quick);
  train::FitOptions f = r.fit_options(s.quick);
  f.out_dir = s.out;
  f.resume = s.resume;
  if (s.minutes > 0) f.max_seconds = f.max_seconds > 0 ? std::min(f.max_seconds, s.minutes * 60) : s.minutes * 60;
  if (s.epochs > 0) f.epochs = s.epochs, f.max_seconds = 0;
  if (s.lr > 0) f.lr = s.lr;
  if (d.prepare) f.prepare = [&d, &gen](const Tensor& x) { return d.prepare(x, gen); };
  f.data_transform = d.name + ": " + d.description;
  if (auto* vae = dynamic_cast<models::VAE*>(o.model.get())) {
    vae->iwae_k = 1;  // validation while training: the one-sample ELBO
    if (const double warm = r.training(s.quick).kl_warmup_epochs; warm > 0)
      f.before_step = models::kl_warmup(*vae, warm);
  }
  const bool validate = r.training(s.quick).validation;
  auto* cond = dynamic_cast<models::ConditionalDensity*>(o.model.get());
  const train::FitResult fr =
      cond && cond->classes() > 0  // a class-conditional recipe learns p(x | y) from the labels
          ? train::fit_given(*o.model, as_input(r, d.train), d.train_labels, validate ? as_input(r, d.validation) : Tensor(),
                             validate ? d.validation_labels : Tensor(), gen, f)
          : train::fit(*o.model, as_input(r, d.train), validate ? as_input(r, d.validation) : Tensor(), gen, f);
  o.train_seconds = fr.seconds;
  o.checkpoint = (fs::path(s.out) / (r.tag + ".safetensors")).string();
  std::ostringstream src;
  src << "trained here, " << fr.steps << " steps, " << std::fixed << std::setprecision(0) << fr.seconds << " s";
  o.source = src.str();
  return o;
}

std::vector<Row> evaluate(const Recipe& r, const DataSet& d, const Obtained& m) {
  m.model->eval();
  const int64_t n = r.test_examples > 0 ? std::min(r.test_examples, d.test.size(0)) : d.test.size(0);
  const int64_t n_train = std::min(n, d.train_eval.size(0));
  // a VAE's two figures from the same trained model: its ELBO (one reparameterised sample per image,
  // an unbiased estimate of it) and the tighter IWAE bound with k = 1000
  auto* vae = dynamic_cast<models::VAE*>(m.model.get());
  std::vector<std::pair<std::string, int64_t>> variants = {{"", 0}};
  if (vae) variants = {{"_elbo", 1}, {"_iwae", 1000}};
  std::vector<Row> rows;
  // a class-conditional model: -log p(x | y) of each example given its own label (one pass, not K)
  auto* cond = dynamic_cast<models::ConditionalDensity*>(m.model.get());
  if (cond && cond->classes() == 0) cond = nullptr;
  auto nll = [&](const Tensor& x, const Tensor& labels) {
    return cond ? train::evaluate_given(*cond, as_input(r, x), labels, 250) : train::evaluate(*m.model, as_input(r, x), 250);
  };
  for (const auto& [suffix, k] : variants) {
    if (vae) vae->iwae_k = k;
    const train::Evaluation test = nll(slice(d.test, 0, 0, n), cond ? slice(d.test_labels, 0, 0, n) : Tensor());
    const train::Evaluation tr = nll(slice(d.train_eval, 0, 0, n_train), cond ? slice(d.train_labels, 0, 0, n_train) : Tensor());
    Row row;
    // a table of its own: -log p(x | y) is not comparable with -log p(x)
    row.data_set = cond ? d.name + ", class-conditional" : d.name, row.tag = r.tag + suffix, row.kind = test.kind, row.source = m.source;
    row.model = m.title + (suffix == "_elbo" ? ", -ELBO" : suffix == "_iwae" ? ", IWAE k = 1000" : "");
    row.published = r.published;
    row.checkpoint = m.checkpoint;
    row.test_nll_nats = test.nll_nats, row.test_nll_se = test.nll_se, row.test_bpd = test.bits_per_dim, row.train_nll_nats = tr.nll_nats;
    row.gap_nats = test.nll_nats - tr.nll_nats;
    row.train_seconds = m.train_seconds;
    row.evaluation_seconds = test.seconds + tr.seconds;
    row.parameters = m.model->parameter_count();
    row.test_examples = n, row.dims = test.dims;
    rows.push_back(row);
  }
  return rows;
}

std::vector<Row> run_table(const std::vector<Recipe>& recipes, const DataSet& d, const Settings& s, Generator& gen) {
  std::cout << "\n   " << d.name << ": " << d.description << "\n";
  std::vector<Row> rows;
  for (const auto& r : recipes) {
    const Obtained m = obtain(r, d, s, gen);
    // an evaluation can take minutes (the image DDPM's bound sums 1000 terms per image): say what runs
    std::cout << "   " << r.tag << ": evaluating on " << (r.test_examples > 0 ? std::min(r.test_examples, d.test.size(0)) : d.test.size(0))
              << " test and as many training examples ..." << std::endl;
    for (const Row& w : evaluate(r, d, m)) {
      rows.push_back(w);
      std::cout << "   " << std::left << std::setw(28) << w.tag << std::right << std::fixed << std::setprecision(2) << std::setw(9)
                << w.test_nll_nats << " nats  " << std::setprecision(3) << w.test_bpd << " bits/dim  train " << std::setprecision(2)
                << w.train_nll_nats << "  gap " << w.gap_nats << "  (" << w.source << "; evaluated in " << std::setprecision(1)
                << w.evaluation_seconds << " s)\n";
    }
  }
  return rows;
}

// ---------------------------------------------------------------- output
std::string versus_best(const Row& row, const std::vector<Row>& rows) {
  const Row* best = nullptr;
  for (const auto& w : rows)
    if (w.data_set == row.data_set && (!best || w.test_nll_nats < best->test_nll_nats)) best = &w;
  if (best == &row) return "best";
  const double d = row.test_nll_nats - best->test_nll_nats, se = std::hypot(row.test_nll_se, best->test_nll_se);
  std::ostringstream s;
  s << std::fixed << std::setprecision(2) << "+" << d << " +- " << se << (d > 2 * se ? ", significant" : ", within noise");
  return s.str();
}

namespace {
// A table cell's text: a '|' in it ("log p(x | y)") would end the cell, so it is escaped.
std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}
}  // namespace

std::string markdown(const std::vector<Row>& rows) {
  std::ostringstream md;
  std::string current;
  for (const auto& w : rows) {
    if (w.data_set != current) {
      current = w.data_set;
      md << "\n### " << current << (current.ends_with(", class-conditional") ? " (-log p(x | y), each test image given its label)" : "")
         << "\n\n"
         << "| model | test NLL (nats" << (current == "words" ? " per word) | vs the best | bits/char (letters and end)" : ") | vs the best | bits/dim")
         << " | train NLL | gap | parameters | train s | test " << (current == "words" ? "words" : "images")
         << " | log p is | from | published (same family) |\n"
         << "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|---|\n";
    }
    md << std::fixed << "| " << cell(w.model) << " | " << std::setprecision(2) << w.test_nll_nats << " +- " << w.test_nll_se << " | "
       << versus_best(w, rows) << " | " << std::setprecision(3) << w.test_bpd
       << " | " << std::setprecision(2) << w.train_nll_nats << " | " << w.gap_nats << " | " << w.parameters << " | ";
    if (std::isfinite(w.train_seconds))
      md << std::setprecision(0) << w.train_seconds;
    else
      md << "?";
    md << " | " << w.test_examples << " | " << cell(w.kind) << " | " << cell(w.source) << " | " << cell(w.published) << " |\n";
  }
  return md.str();
}

void write_csv(const std::string& path, const std::vector<Row>& rows) {
  std::ofstream out(path);
  if (!out) throw Error("harness: cannot write '" + path + "'");
  out << "data_set,tag,test_nll_nats,test_nll_stderr,test_bpd,train_nll_nats,gap_nats,parameters,train_seconds,test_examples\n";
  out << std::setprecision(9);
  for (const auto& w : rows)
    out << w.data_set << "," << w.tag << "," << w.test_nll_nats << "," << w.test_nll_se << "," << w.test_bpd << "," << w.train_nll_nats << ","
        << w.gap_nats << "," << w.parameters << "," << w.train_seconds << "," << w.test_examples << "\n";
}

}  // namespace dgm::lesson::harness
