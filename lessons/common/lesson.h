// dgm/lessons/common/lesson.h — what every lesson binary shares: the standard
// flags, CHECK lines, metrics.json and CSV output, and a progress bar.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <streambuf>
#include <string>
#include <utility>
#include <vector>

#include "lessons/common/numerics.h"
#include "lessons/common/report.h"
#include "models/recipes.h"
#include "models/toolkit/datasets.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/progress.h"

namespace dgm::lesson {

struct Options {
  bool quick = false;      // a small run under a minute (what the tests run)
  uint64_t seed = 0;
  std::string out;         // output folder, default runs/<name>/
  std::string data;        // where data sets are looked for
  int epochs = 0;          // passes over the training set; 0: the lesson's default
  double lr = 0;           // Adam's learning rate; 0: each training's default (its recipe's)
  int threads = 0;         // dgm's threads (its pool; OpenBLAS runs on the calling thread); 0: all cores
  bool resume = false;     // continue interrupted trainings from their resume states
  bool retrain = false;    // train even where a checkpoint (or a cached classifier) exists
};

class Lesson {
 public:
  Lesson(std::string name, std::string description);
  ~Lesson();  // gives std::cout its own buffer back
  CLI::App& app() { return app_; }  // add lesson-specific flags before parse()
  // Parses the flags and prepares the output folder. Returns -1 to go on,
  // otherwise the exit code (0 after --help, non-zero after a bad flag).
  int parse(int argc, char** argv);
  // What a lesson's main() returns: parse(), then the lesson's steps; an
  // exception they throw is printed as "lesson_<name>: <what>" (exit code 1),
  // otherwise finish() writes metrics.json and gives the exit code.
  int run(int argc, char** argv, const std::function<void()>& steps);
  const Options& options() const { return opt_; }
  // --epochs N when given, else `quick` for --quick runs and `full` otherwise.
  int epochs(int quick, int full) const { return opt_.epochs > 0 ? opt_.epochs : (opt_.quick ? quick : full); }
  // --lr when given, else `fallback`.
  double lr(double fallback) const { return opt_.lr > 0 ? opt_.lr : fallback; }
  // The flags' part of a training: the output folder, --resume, and --epochs / --lr over the
  // training's own settings (--epochs N trains N passes and drops a time budget).
  void configure(train::FitOptions& o) const;
  // A recipe's training for this run (quick or full) with configure() applied.
  train::FitOptions training(const models::Recipe& r) const;
  const std::string& name() const { return name_; }

  // --- derivation steps: each prints one CHECK line; any FAIL fails the lesson.
  // |lhs - rhs| <= tol
  bool check_close(const std::string& what, double lhs, double rhs, double tol);
  // lhs <= rhs
  bool check_le(const std::string& what, double lhs, double rhs);
  int failures() const { return failures_; }

  // --- outputs, all inside the output folder
  std::string path(const std::string& file) const;
  // `train_seconds`, `lesson_seconds`, `checks_passed` and `checks_failed` are the frame's (finish() writes
  // them): a lesson that sets one gets an error.
  void metric(const std::string& key, double value);
  // A Monte Carlo figure (a test NLL over test images, a bound over its noise): `key` and beside it
  // `key_stderr`, its standard error in the same unit.
  void metric(const std::string& key, double value, double stderr_of_value);
  void write_csv(const std::string& file, const std::vector<std::string>& columns,
                 const std::vector<std::vector<double>>& rows) const;
  void write_text(const std::string& file, const std::string& text) const;
  // Writes metrics.json and the report page (index.html, report.h), prints a
  // summary line; returns the process exit code.
  int finish();

 private:
  std::string name_, description_;
  CLI::App app_;
  Options opt_;
  int failures_ = 0, checks_ = 0;
  std::map<std::string, double> metrics_;
  progress::Stopwatch clock_;  // the whole run: metrics.json's lesson_seconds
  Report report_;  // what index.html shows: the checks, the log, the metrics
  std::unique_ptr<std::streambuf> tee_;  // copies std::cout into report_.log
  std::streambuf* cout_buffer_ = nullptr;
  void write_pages();
};

using progress::ProgressBar;

// The 8x8 digits' three splits (train 1000 / validation 350 / test 447), or the
// built-in synthetic glyphs of the same shape when the digits are not
// installed (said once on stdout, with the command that installs them).
struct DigitSplits {
  data::ImageSet train, validation, test;
  bool synthetic = false;
};
DigitSplits load_digits(const Options& opt);
// Says, once per process, that the synthetic glyphs stand in for the digits (and how to install them).
void say_synthetic_digits();


}  // namespace dgm::lesson
