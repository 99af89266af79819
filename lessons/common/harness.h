// dgm/lessons/common/harness.h — one evaluation harness for every likelihood
// model of the project: the same splits, the same data transforms, the same
// figures (docs/leaderboard.md; lesson_leaderboard runs it, lesson_likelihood
// uses its digits table for the train/test gap).
//
// A Recipe is one model on one data set: how to build it, how to train it,
// and which lesson checkpoint holds a trained one. The harness never retrains
// what it can load: it tries, in order,
//   1. the lesson's checkpoint   <runs>/<lesson checkpoint>.safetensors   (e.g. runs/ar/digits_made)
//   2. its own earlier result    <out>/<tag>.safetensors
//   3. training with the recipe  (written to <out>/<tag>.safetensors for next time)
// and says which it used. A checkpoint whose names or shapes do not fit the
// recipe's model is reported and skipped; the module is left as it was.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lessons/common/lesson.h"
#include "models/density.h"
#include "models/toolkit/trainer.h"

namespace dgm::lesson::harness {

// A data set as every model of one table sees it: values in [0, 1], examples
// [N, C, H, W] (flat models reshape them to [N, D]).
struct DataSet {
  std::string name;         // "digits17", "fashion_binarized", "fashion_dequantized"
  std::string description;  // one line: the transform, the split sizes
  Tensor train, validation, test;
  Tensor train_eval;  // training examples as the train NLL sees them (one fixed binarization, if any)
  // Fresh randomness per training batch (dynamic binarization); empty: none.
  std::function<Tensor(const Tensor&)> prepare;
  int64_t dims() const { return train.numel() / train.size(0); }
};

struct Recipe {
  std::string tag;               // file stem in the harness's folder, e.g. "digits_made"
  std::string model;             // what the table prints, e.g. "MADE 512-512"
  std::string lesson_checkpoint; // relative to the runs folder, without .safetensors ("" : none)
  bool flat = true;              // the model takes [N, D] rather than images
  std::function<std::shared_ptr<models::TrainableDensity>(Generator&)> make;
  std::function<void(train::FitOptions&)> configure;  // epochs, batch, lr, time budget
  std::function<void(models::TrainableDensity&)> prepare_evaluation;  // e.g. eval(), the IWAE k
  int64_t test_examples = 0;     // evaluate on the first this many test (and train) examples; 0: all
  bool no_validation = false;    // train without a validation split (diffusion: EMA, the last iterate)
  std::string published;         // the published figure for the family, with its source
  // More rows from the same trained model, each after its own preparation
  // (the VAE: its ELBO and its IWAE bound); tag and model get the suffix.
  struct Variant {
    std::string tag_suffix, model_suffix;
    std::function<void(models::TrainableDensity&)> prepare;
  };
  std::vector<Variant> variants;
};

struct Row {
  std::string data_set, tag, model, kind, source, published, checkpoint;
  double test_nll_nats = 0, test_bpd = 0, train_nll_nats = 0, gap_nats = 0;
  double train_seconds = 0;  // NaN when the checkpoint came without it
  double evaluation_seconds = 0;
  int64_t parameters = 0, test_examples = 0, dims = 0;
};

struct Settings {
  std::string runs = "runs";  // where the lessons' checkpoints are looked for
  std::string out;            // the harness's own folder (checkpoints, tables)
  bool quick = false;
  bool load = true;           // false: always train (what --quick does, so tests never depend on runs/)
};

// The data sets. digits17: the 8x8 digits (or the synthetic glyphs), 17 levels,
// train 1000 / validation 350 / test 447. fashion_binarized: dynamic
// binarization for training, one fixed binarization of validation and test
// (seeds 1 and 0). fashion_dequantized: the 256-level images.
DataSet digits17(const Options& opt);
DataSet fashion_binarized(const Options& opt);
DataSet fashion_dequantized(const Options& opt);

std::vector<Recipe> digits_recipes(bool quick);
std::vector<Recipe> fashion_binarized_recipes(double minutes);
std::vector<Recipe> fashion_dequantized_recipes(double minutes);

// A trained model: loaded (the first of the three places that fits) or trained.
struct Obtained {
  std::shared_ptr<models::TrainableDensity> model;
  std::string source;      // "loaded runs/ar/digits_made.safetensors" or "trained here, 12 s"
  std::string checkpoint;  // the file its parameters are in now (loaded from, or written by the trainer)
  double train_seconds = 0;
};
Obtained obtain(const Recipe& r, const DataSet& d, const Settings& s, Generator& gen);

// Evaluates a model on the data set's test split and on as many training examples.
Row evaluate(const Recipe& r, const DataSet& d, const Obtained& m);
// One row per variant of the recipe (one row when it has none).
std::vector<Row> evaluate_variants(const Recipe& r, const DataSet& d, const Obtained& m);

// obtain + evaluate for every recipe, printing a line each.
std::vector<Row> run_table(const std::vector<Recipe>& recipes, const DataSet& d, const Settings& s, Generator& gen);

// The rows as a Markdown table (one per data set) and as a CSV.
std::string markdown(const std::vector<Row>& rows);
void write_csv(const std::string& path, const std::vector<Row>& rows);

}  // namespace dgm::lesson::harness
