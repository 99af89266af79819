// dgm/models/toolkit/trainer.h — one training loop and one evaluator for every model.
//
//   fit(model, train, validation, gen, options)
//     epochs of shuffled minibatches; each step: zero_grad, loss = model.loss(batch),
//     backward, Adam step; a NaN or Inf loss stops training with an error
//     naming the step. After every `validate_every` epochs the validation
//     NLL (nats per example) is measured; the parameters of the best one are
//     kept (keep_best) and training stops after `patience` validations
//     without improvement (early stopping). A progress bar shows it; the
//     curve is written as <tag>_curve.csv + .png and the final parameters as
//     <tag>.safetensors (with a JSON beside it) into `out_dir`.
//   evaluate(model, data)
//     the mean negative log-likelihood in no-grad chunks: nats per example,
//     bits per dimension, seconds.
// A lesson calls these and keeps only its derivation and its pictures.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/nn.h"
#include "models/density.h"

namespace dgm::train {

// ---------------------------------------------------------------- evaluation
// nats per example -> bits per dimension: nll / (D ln 2).
double bits_per_dim(double nll_nats, int64_t dims);

// The means over a data set of per-example quantities ([N] tensors that
// `per_example(chunk)` returns), computed in chunks of rows without a graph.
std::vector<double> chunked_means(const Tensor& data, int64_t chunk,
                                  const std::function<std::vector<Tensor>(const Tensor&)>& per_example);

struct Evaluation {
  double nll_nats = 0;      // mean -log p(x) per example (or the bound the model's log_prob returns)
  double bits_per_dim = 0;  // nll_nats / (D ln 2), D = numel of one example
  double seconds = 0;
  int64_t examples = 0, dims = 0;
  std::string kind;         // the model's log_prob_kind()
};
Evaluation evaluate(models::DensityModel& model, const Tensor& data, int64_t chunk = 500);

// ---------------------------------------------------------------- training
struct FitOptions {
  int epochs = 10;
  int64_t batch_size = 64;
  double lr = 1e-3;            // Adam
  bool shuffle = true;         // a fresh order of the examples every epoch
  int64_t examples_per_epoch = 0;  // an epoch ends after this many examples (a fresh shuffled
                                   // subset each time, for big data sets); 0: all of them
  double ema = 0;              // > 0: keep an exponential moving average of the parameters
                               // (decay min(ema, (1 + step) / (10 + step))) and end with it,
                               // as diffusion models are sampled (0: the last iterate)
  double max_seconds = 0;      // stop when training has run this long (checked after every
                               // step; that epoch ends there and is validated); 0: no limit
  bool drop_last = false;      // drop the last short batch of an epoch
  int validate_every = 1;      // epochs between validations (the last epoch is always validated)
  bool keep_best = true;       // end with the parameters of the best validation
  int patience = 0;            // stop after this many validations without improvement; 0: never
  std::string tag = "train";   // the progress bar's label and the output files' stem
  std::string out_dir;         // where the curve and the checkpoint go; "": nowhere
  std::string curve_title;     // default: "<tag>: negative log-likelihood"
  std::string y_label = "nats per example";
  bool log_y = false;          // the curve's y axis on a log scale
  std::string train_column = "train_nll_nats", validation_column = "validation_nll_nats";
  std::string validation_label = "validation";  // the curve's legend for the validation column
  bool progress = true;
  bool checkpoint = true;      // write <tag>.safetensors when out_dir is set
  // Written into the JSON beside the checkpoint: the model's name and constructor arguments
  // (fit(TrainableDensity&) fills these from the model) and how the data were transformed.
  std::string model_name, model_config, data_transform;
  // A raw training batch -> the model's input (e.g. a fresh binarization); default: as is.
  std::function<Tensor(const Tensor&)> prepare;
  // Called before each step (e.g. MADE draws the ordering of the minibatch).
  std::function<void()> before_step;
  // More columns of the curve, measured with each validation (e.g. test accuracy).
  std::vector<std::string> extra_columns;
  std::function<std::vector<double>()> extra;
  // Stop after the epoch where this returns true (given the epoch's mean training loss).
  std::function<bool(double train_loss)> stop_when;
};

struct FitResult {
  double best_validation = INFINITY;  // the best validation figure (nats per example)
  int best_epoch = 0;                 // the epoch it came from (the parameters kept)
  int epochs_run = 0;
  int64_t steps = 0;
  double seconds = 0;                 // training time, validations included
  double last_train_loss = NAN;       // mean training loss of the last epoch
  bool stopped_early = false;
  bool out_of_time = false;           // max_seconds was reached
  std::vector<std::vector<double>> curve;  // epoch, train loss, validation, extras...
};

// The loop itself, for any model: `batch_loss(indices)` is the scalar loss of
// the training examples at those indices (int64 [B]); `validate()` a figure to
// minimise (empty: no validation, no keep-best). n_train examples per epoch.
FitResult fit(nn::Module& model, int64_t n_train, const std::function<Tensor(const Tensor&)>& batch_loss,
              const std::function<double()>& validate, Generator& gen, const FitOptions& options);

// A density model: loss = model.loss(prepare(train[idx])); validation =
// evaluate(model, validation).nll_nats unless `validate` is given.
FitResult fit(models::TrainableDensity& model, const Tensor& train, const Tensor& validation, Generator& gen,
              const FitOptions& options, const std::function<double()>& validate = {});

// Throws "training diverged: <what> is <value> at step <step>" for NaN or Inf.
void require_finite(double value, const std::string& what, int64_t step);

}  // namespace dgm::train
