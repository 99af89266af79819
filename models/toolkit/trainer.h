// dgm/models/toolkit/trainer.h — the training loop, the recorder, and the evaluator.
//
// Training has two parts:
//   the loop      (LoopOptions) what is optimised and for how long: Adam and its
//                 learning rate, the batch size, epochs (passes over the training
//                 set), a step or time budget, the EMA of the parameters,
//                 validation, keep-best and patience;
//   the recorder  (Recorder, RecordOptions) what a run leaves behind: the
//                 progress bar, the curve (CSV + PNG), the checkpoint and the
//                 JSON beside it (what models::make_model rebuilds the model
//                 from), and the resume state.
// fit() runs the loop with a recorder; gan::train uses the same recorder.
//
// Stop and continue. SIGINT or SIGTERM (install_interrupt_handlers; a lesson
// does it) makes the loop finish its current step, write the best checkpoint
// so far, the curve and the resume state, and throw Interrupted (a lesson exits
// 130 with its report page marked). With LoopOptions::resume, fit() picks up
// <out>/<tag>.resume.safetensors: the live parameters, Adam's moments and step,
// the EMA, the best parameters and figure, the curve, the epoch's order and
// position, and the generators' states, so that N steps, a stop and a resume
// give the same parameters as one run (tests/test_trainer.cpp).
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/nn.h"
#include "models/density.h"
#include "models/toolkit/progress.h"

namespace dgm::train {

// ---------------------------------------------------------------- evaluation
// nats per example -> bits per dimension: nll / (D ln 2).
double bits_per_dim(double nll_nats, double dims);

// The means over a data set of per-example quantities ([N] tensors that
// `per_example(chunk)` returns), computed in chunks of rows without a graph.
std::vector<double> chunked_means(const Tensor& data, int64_t chunk,
                                  const std::function<std::vector<Tensor>(const Tensor&)>& per_example);

struct Evaluation {
  double nll_nats = 0;      // mean -log p(x) per example (or the bound the model's log_prob returns)
  double nll_se = 0;        // its standard error over the examples (sd / sqrt(N), the n - 1 sd)
  double bits_per_dim = 0;  // nll_nats / (D ln 2), D = the model's values_per_example (bits per character on words)
  double seconds = 0;
  int64_t examples = 0;
  double dims = 0;          // D: numel of one example, or the mean count of the values log p covers
  std::string kind;         // the model's log_prob_kind()
};
Evaluation evaluate(models::DensityModel& model, const Tensor& data, int64_t chunk = 500);
// The same for a class-conditional model: -log p(x | y) with the labels (int64 [N]) of the data.
Evaluation evaluate_given(models::ConditionalDensity& model, const Tensor& data, const Tensor& labels, int64_t chunk = 500);

// ---------------------------------------------------------------- stopping
// A stop was asked for (SIGINT, SIGTERM, or request_stop()); the loop ends after its step.
bool stop_requested();
void request_stop();
void clear_stop();  // tests
// SIGINT and SIGTERM set the flag; a second one ends the process at once (the default action).
// DGM_INTERRUPT_AT_STEP=N in the environment raises SIGINT after the N-th training step of
// the process: how the tests interrupt a lesson at a known point.
void install_interrupt_handlers();

// Thrown by the loop after it has written what an interrupted run keeps.
struct Interrupted : Error {
  Interrupted(const std::string& what, int64_t step, int64_t of) : Error(what), step(step), of(of) {}
  int64_t step = 0, of = 0;  // "interrupted at step <step> of <of>" (of = 0: unknown, a time budget)
};

// ---------------------------------------------------------------- part 1: the loop
struct LoopOptions {
  int epochs = 10;             // passes over the training set (at most this many, with a budget)
  int64_t max_steps = 0;       // stop after this many optimiser steps; 0: no limit
  double max_seconds = 0;      // stop when training has run this long (checked after every step); 0: no limit
  int64_t batch_size = 64;
  double lr = 1e-3;            // Adam
  // "constant", or "cosine": step k's rate is lr (1 + cos(pi f)) / 2 at the fraction f = k / K of
  // the planned K steps -- of the time budget (seconds / max_seconds) when there is one -- so the
  // rate falls to 0 as training ends (Loshchilov & Hutter 2017, without restarts)
  std::string lr_schedule = "constant";
  double beta1 = 0.9, beta2 = 0.999;  // Adam's moment decays
  double clip_grad_norm = 0;   // > 0: the gradients' global norm clipped to this before each step (optim::clip_grad_norm_)
  bool shuffle = true;         // a fresh order of the examples every epoch
  bool drop_last = false;      // drop the last short batch of an epoch
  double ema = 0;              // > 0: keep an exponential moving average of the parameters
                               // (decay min(ema, (1 + step) / (10 + step))) and end with it,
                               // as diffusion models are sampled (0: the last iterate)
  int validate_every = 1;      // epochs between validations (the last one is always validated)
  int64_t validate_every_steps = 0;  // > 0: validate every this many steps instead (big data sets,
                                     // time budgets: a point on the curve without waiting for a pass)
  bool keep_best = true;       // end with the parameters of the best validation
  int patience = 0;            // stop after this many validations without improvement; 0: never
  bool resume = false;         // continue from <out>/<tag>.resume.safetensors when it exists
};

// ---------------------------------------------------------------- part 2: the recorder
struct RecordOptions {
  std::string tag = "train";   // the progress bar's label and the output files' stem
  std::string out_dir;         // where the curve, the checkpoint and the resume state go; "": nowhere
  std::string curve_title;     // default: "<tag>: negative log-likelihood"
  std::string x_label = "epoch";
  std::string y_label = "nats per example";
  bool log_y = false;          // the curve's y axis on a log scale
  std::string train_column = "train_nll_nats", validation_column = "validation_nll_nats";
  std::string train_label = "train (running)";  // the curve's legend for the train column
  std::string validation_label = "validation";  // the curve's legend for the validation column
  std::vector<std::string> extra_columns;       // more columns of the curve (after those two)
  bool progress = true;
  bool checkpoint = true;      // write <tag>.safetensors (and .json) when out_dir is set
  // Written into the JSON beside the checkpoint: the model's name and constructor arguments
  // (fit(TrainableDensity&) fills these from the model), the recipe it came from, and how the
  // data were transformed.
  std::string model_name, model_config, recipe, data_transform;
};

// What the recorder writes about a run, beside the checkpoint and on the report page.
struct RunInfo {
  int64_t steps = 0;
  int epochs_run = 0, best_epoch = 0;
  double seconds = 0;          // training time
  bool interrupted = false;
  std::map<std::string, std::string> fields;  // more JSON fields (numbers are written as numbers)
};

class Recorder {
 public:
  explicit Recorder(RecordOptions options);
  const RecordOptions& options() const { return o_; }
  bool writes() const { return !o_.out_dir.empty(); }
  // "<out>/<tag><suffix>" (no extension)
  std::string stem(const std::string& suffix = "") const;

  // The progress bar, over `total` units (epochs, steps, or thousandths of a budget).
  void start(int64_t total, int64_t done = 0);
  // A bar over a time budget that counts steps (progress() gets the step count); see ProgressBar::timed.
  void start_timed(double budget_seconds, int64_t step_cap, int64_t done_steps = 0, double done_seconds = 0);
  void progress(int64_t done, const std::string& status);
  void exclude_seconds(double seconds);  // time spent between steps on something else: off the bar's clock
  // Ends the bar at 100% with the note, or (an interrupted run) leaves it where it was and says why.
  void finish(const std::string& note = "", bool reached_end = true, int64_t steps = -1);  // steps: a timed bar's last count

  // The curve: one row per call; write_curve() writes <tag>_curve.csv and .png.
  void add_row(std::vector<double> row) { curve_.push_back(std::move(row)); }
  std::vector<std::vector<double>>& curve() { return curve_; }
  void write_curve() const;

  // <tag><suffix>.safetensors and the JSON beside it (model, config, recipe, data, the run),
  // each written to a temporary file and renamed into place.
  void save(const nn::Module& model, const RunInfo& run, const std::string& suffix = "", const std::string& model_name = "",
            const std::string& model_config = "") const;

 private:
  RecordOptions o_;
  std::vector<std::vector<double>> curve_;
  std::unique_ptr<progress::ProgressBar> bar_;
};

// ---------------------------------------------------------------- fit: the loop with a recorder
// Where training stands before a step (FitOptions::before_step), over resumed parts too.
struct StepInfo {
  int64_t steps = 0;  // optimiser steps done
  double epochs = 0;  // passes over the training set done: (epoch - 1) + batches done / batches per epoch
};

struct FitOptions : LoopOptions, RecordOptions {
  // A raw training batch -> the model's input (e.g. a fresh binarization); default: as is.
  std::function<Tensor(const Tensor&)> prepare;
  // Called before each step with how far training has come, counted over resumed parts too
  // (e.g. MADE draws the ordering of the minibatch; a VAE's KL warm-up sets its weight).
  std::function<void(const StepInfo&)> before_step;
  // The values of the extra columns, measured with each validation (e.g. test accuracy).
  std::function<std::vector<double>()> extra;
  // A last column "train_seconds": the training time at each validation (validations included,
  // summed over resumed parts, as FitResult::seconds), so the curve reads against minutes.
  bool seconds_column = false;
  // Snapshots along a timed run: when the training time first reaches each of `snapshot_seconds`
  // (increasing), at_snapshot(training seconds, steps) is called with the model holding the
  // parameters a run stopped there would end with (the moving average with ema > 0, else the best
  // validation's with keep_best), and the live ones are put back after it. The time it takes is not
  // training time: it is kept off max_seconds, FitResult::seconds and the bar. It should draw from a
  // generator of its own: the loop's `gen` draws the batches, and the run must stay the same one.
  std::vector<double> snapshot_seconds;
  std::function<void(double seconds, int64_t steps)> at_snapshot;
  // Stop after the epoch where this returns true (given the epoch's mean training loss).
  std::function<bool(double train_loss)> stop_when;
  // Generators whose state a resume must restore besides the loop's own (a model's noise).
  std::vector<Generator*> generators;
};

struct FitResult {
  double best_validation = INFINITY;  // the best validation figure (nats per example)
  int best_epoch = 0;                 // the epoch it came from (the parameters kept)
  int epochs_run = 0;
  int64_t steps = 0;
  double seconds = 0;                 // training time, validations included (over every resumed part)
  double last_train_loss = NAN;       // mean training loss of the last epoch
  bool stopped_early = false;
  bool out_of_time = false;           // max_seconds or max_steps was reached
  bool resumed = false;               // it continued a saved state
  std::vector<std::vector<double>> curve;  // epoch, train loss, validation, extras...
  std::string finished;               // fit_given: what the model's finish_training did ("": nothing)
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

// A class-conditional model (models::ConditionalDensity; an unconditional one is an error):
// loss = model.loss_given(prepare(train[idx]), train_labels[idx]); validation = evaluate_given(model,
// validation, validation_labels).nll_nats unless `validate` is given.
FitResult fit_given(models::TrainableDensity& model, const Tensor& train, const Tensor& train_labels, const Tensor& validation,
                    const Tensor& validation_labels, Generator& gen, const FitOptions& options,
                    const std::function<double()>& validate = {});

// After a fit that wrote <out_dir>/<tag>.safetensors (options as given to fit): writes the
// model's tensors over that checkpoint again, its metadata kept -- for state set after training
// (a DDPM's fitted reverse variances), so that what loads is what was evaluated. No checkpoint
// written (no out_dir, checkpoint off): nothing to do. Returns the path, or "".
std::string update_checkpoint(const nn::Module& model, const FitOptions& options);

// Throws "training diverged: <what> is <value> at step <step>" for NaN or Inf.
void require_finite(double value, const std::string& what, int64_t step);

// After each optimiser step: counts the process's steps for DGM_INTERRUPT_AT_STEP.
void count_step();

// Pieces of a resume state that fit() and gan::train share: a double as text that reads back
// to the same bits (hexfloat), a curve as a [rows, cols] float64 tensor and back, and the
// tensors whose names start with `prefix` (the prefix taken off: an optimizer's state).
std::string exact_text(double v);
double from_exact_text(const std::string& s);
Tensor curve_tensor(const std::vector<std::vector<double>>& curve);  // undefined when the curve is empty
std::vector<std::vector<double>> curve_rows(const Tensor& t);
std::map<std::string, Tensor> with_prefix(const std::map<std::string, Tensor>& tensors, const std::string& prefix);

// Seconds this process has spent training (every fit() and gan::train): what a lesson's
// metrics.json reports as train_seconds (the whole run is lesson_seconds).
double training_seconds();
void add_training_seconds(double seconds);

}  // namespace dgm::train
