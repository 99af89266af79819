// dgm/lessons/common/harness.h — one evaluation harness for every likelihood
// model of the project: the same splits, the same data transforms, the same
// figures (docs/chapters/leaderboard.md; lesson_leaderboard runs it, lesson_likelihood
// uses its digits table for the train/test gap).
//
// Its rows are the recipes of models/recipes.h (one table per data set: the
// recipes a lesson trains on it). It never retrains what it can load: it looks,
// in order, for
//   1. the lesson's checkpoint   <runs>/<lesson>/<tag>.safetensors   (e.g. runs/autoregressive/digits_made)
//   2. its own earlier result    <out>/<tag>.safetensors
// and rebuilds the model from the JSON beside it (models::make_model: a lesson
// flag that changed the architecture is in that JSON), and trains with the
// recipe only when neither exists (written to <out>/<tag>.safetensors for next
// time). A checkpoint that does not fit stops with an error naming the recipe,
// the file and the tensors or fields that differ; --retrain trains anyway.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lessons/common/lesson.h"
#include "models/density.h"
#include "models/recipes.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/trainer.h"

namespace dgm::lesson::harness {

using data::DataSet;
using models::Recipe;

struct Row {
  std::string data_set, tag, model, kind, source, published, checkpoint;
  double test_nll_nats = 0, test_bpd = 0, train_nll_nats = 0, gap_nats = 0;
  double test_nll_se = 0;    // the standard error of test_nll_nats over the test examples
  double train_seconds = 0;  // NaN when the checkpoint came without it
  double evaluation_seconds = 0;
  int64_t parameters = 0, test_examples = 0;
  double dims = 0;  // what bits/dim divides by: D, or on words the mean letters + end per word
};

struct Settings {
  std::string runs = "runs";  // where the lessons' checkpoints are looked for
  std::string out;            // the harness's own folder (checkpoints, tables)
  bool quick = false;         // the recipes' quick setups (and their quick training)
  bool load = true;           // false: always train (what --quick does, so tests never depend on runs/)
  bool retrain = false;       // train even where a checkpoint exists (--retrain)
  bool resume = false;        // continue an interrupted training of the harness's own (--resume)
  double minutes = 0;         // > 0: at most this long for each model the harness trains itself
  int epochs = 0;             // > 0: this many passes instead of the recipe's (and no time budget)
  double lr = 0;              // > 0: this learning rate instead of the recipe's
};
// The lesson's flags (--quick, --retrain, --resume, --epochs, --lr) as harness settings: its own
// folder is --out, the lessons' checkpoints are looked for in `runs` (--runs).
Settings settings_from(const Options& opt, const std::string& runs = "runs");

// The data set a recipe names, from the lesson's --data folder; the synthetic digits say so once.
DataSet data_for(const std::string& name, const Options& opt);

// A trained model: loaded (the first of the two places that exists) or trained.
struct Obtained {
  std::shared_ptr<models::TrainableDensity> model;
  std::string title;       // what the table prints: the recipe's title, or the loaded config's
  std::string source;      // "loaded runs/autoregressive/digits_made.safetensors" or "trained here, 12 s"
  std::string checkpoint;  // the file its parameters are in now (loaded from, or written by the trainer)
  double train_seconds = 0;
};
Obtained obtain(const Recipe& r, const DataSet& d, const Settings& s, Generator& gen);
// A model from a checkpoint of the recipe: rebuilt from the JSON beside it (else from the recipe's
// config for a quick or a full run) and loaded; a file that does not fit is an error naming the
// recipe, the file and what differs.
Obtained load(const Recipe& r, const std::string& checkpoint, Generator& gen, bool quick = false);

// Evaluates a model on the data set's test split and on as many training examples.
// A VAE gives two rows: its -ELBO (one sample) and its IWAE bound with k = 1000.
std::vector<Row> evaluate(const Recipe& r, const DataSet& d, const Obtained& m);

// obtain + evaluate for every recipe, printing a line each.
std::vector<Row> run_table(const std::vector<Recipe>& recipes, const DataSet& d, const Settings& s, Generator& gen);

// The rows as a Markdown table (one per data set) and as a CSV. Each test NLL carries its standard
// error; the column "vs the best" gives each row's distance to its data set's best row, with the
// standard error of that difference (the two rows' errors combined as if independent: the same test
// images make the true paired error smaller, so "significant" (more than 2 of them) is conservative).
std::string markdown(const std::vector<Row>& rows);
// "best", or "+3.21 +- 0.52, significant" / "+0.40 +- 0.52, within noise" (markdown's column).
std::string versus_best(const Row& row, const std::vector<Row>& rows);
void write_csv(const std::string& path, const std::vector<Row>& rows);

}  // namespace dgm::lesson::harness
