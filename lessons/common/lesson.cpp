// dgm/lessons/common/lesson.cpp
#include "lessons/common/lesson.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "autograd/runtime.h"
#include "autograd/tensor.h"
#include "models/toolkit/plot.h"

namespace dgm::lesson {

namespace {

// Writes everything to `out` and keeps a copy in `copy` (the report's log).
class TeeBuffer : public std::streambuf {
 public:
  TeeBuffer(std::streambuf* out, std::string* copy) : out_(out), copy_(copy) {}

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    copy_->push_back(static_cast<char>(c));
    return out_->sputc(static_cast<char>(c));
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    copy_->append(s, static_cast<size_t>(n));
    return out_->sputn(s, n);
  }
  int sync() override { return out_->pubsync(); }

 private:
  std::streambuf* out_;
  std::string* copy_;
};

}  // namespace

Lesson::~Lesson() {
  if (cout_buffer_) std::cout.rdbuf(cout_buffer_);
}

Lesson::Lesson(std::string name, std::string description)
    : name_(std::move(name)), description_(std::move(description)), app_(description_, "lesson_" + name_) {
  opt_.out = "runs/" + name_;
  app_.add_flag("--quick", opt_.quick, "Small, fast run (under a minute); what the tests run");
  app_.add_option("--seed", opt_.seed, "Random seed")->capture_default_str();
  app_.add_option("--out", opt_.out, "Output folder for pictures, CSVs and metrics.json")->capture_default_str();
  app_.add_option("--data", opt_.data, "Folder to look for data sets in");
  // CLI11's own range check prints the double's limits; this one says what is wanted.
  const CLI::Validator non_negative(
      [](std::string& v) {
        try {
          if (std::stol(v) >= 0) return std::string();
        } catch (const std::exception&) {
        }
        return "must be a whole number 0 or more, got " + v;
      },
      "INT>=0");
  app_.add_option("--epochs", opt_.epochs, "Passes over the training set of each main training (0: the lesson's default)")
      ->check(non_negative);
  app_.add_option("--lr", opt_.lr, "Adam's learning rate for the lesson's trainings (0: each one's default)")
      ->check(CLI::NonNegativeNumber);
  app_.add_option("--threads", opt_.threads, "Threads (0: all cores)")->check(non_negative);
  app_.add_flag("--resume", opt_.resume,
                "Continue an interrupted run: each training picks up its resume state in --out (finished ones are not redone)");
  app_.add_flag("--retrain", opt_.retrain, "Train anew where a checkpoint or a cached classifier would be loaded");
}

int Lesson::parse(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  }
  if (!opt_.data.empty() && !std::filesystem::is_directory(opt_.data)) {
    std::cerr << "lesson_" << name_ << ": --data '" << opt_.data
              << "' is not a folder (give the folder that holds the data files; docs/chapters/data.md lists them)\n";
    return 2;
  }
  runtime::set_num_threads(opt_.threads);
  std::error_code ec;
  std::filesystem::create_directories(opt_.out, ec);
  if (ec) {
    std::cerr << "lesson_" << name_ << ": cannot create output folder '" << opt_.out << "': " << ec.message() << "\n";
    return 2;
  }
  report_.name = name_;
  report_.description = description_;
  report_.command = "lesson_" + name_;
  for (int i = 1; i < argc; ++i) report_.command += std::string(" ") + argv[i];
  report_.started = std::filesystem::file_time_type::clock::now();
  clock_.restart();
  train::install_interrupt_handlers();  // Ctrl-C: finish the step, keep what was done (Lesson::run)
  cout_buffer_ = std::cout.rdbuf();
  tee_ = std::make_unique<TeeBuffer>(cout_buffer_, &report_.log);
  std::cout.rdbuf(tee_.get());
  std::cout << "== lesson " << name_ << ": " << description_ << "\n"
            << "   seed " << opt_.seed << ", output in " << opt_.out << (opt_.quick ? ", quick run" : "")
            << ", " << runtime::num_threads() << (runtime::num_threads() == 1 ? " thread" : " threads") << ", OpenBLAS " << runtime::blas_core() << "\n";
  return -1;
}

static std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

void Lesson::configure(train::FitOptions& o) const {
  o.out_dir = opt_.out;
  o.resume = opt_.resume;
  if (opt_.epochs > 0) o.epochs = opt_.epochs, o.max_seconds = 0, o.max_steps = 0;
  if (opt_.lr > 0) o.lr = opt_.lr;
}

train::FitOptions Lesson::training(const models::Recipe& r) const {
  train::FitOptions o = r.fit_options(opt_.quick);
  configure(o);
  return o;
}

namespace {
// Ctrl-C between two trainings ends the lesson at its next CHECK.
void stop_if_asked(const std::string& where) {
  if (train::stop_requested()) throw train::Interrupted("interrupted before the check '" + where + "'", 0, 0);
}
}  // namespace

bool Lesson::check_close(const std::string& what, double lhs, double rhs, double tol) {
  stop_if_asked(what);
  const double diff = std::abs(lhs - rhs);
  const bool ok = diff <= tol;  // false for NaN
  ++checks_;
  if (!ok) ++failures_;
  const std::string line = what + ": " + num(lhs) + " vs " + num(rhs) + ", |diff| <= " + num(tol) + ": " +
                           (ok ? "PASS" : "FAIL") + "  (|diff| = " + num(diff) + ")";
  std::cout << "CHECK " << line << std::endl;
  report_.checks.push_back({line, ok});
  return ok;
}

bool Lesson::check_le(const std::string& what, double lhs, double rhs) {
  stop_if_asked(what);
  const bool ok = lhs <= rhs;
  ++checks_;
  if (!ok) ++failures_;
  const std::string line = what + ": " + num(lhs) + " vs " + num(rhs) + ", lhs <= rhs: " + (ok ? "PASS" : "FAIL");
  std::cout << "CHECK " << line << std::endl;
  report_.checks.push_back({line, ok});
  return ok;
}

std::string Lesson::path(const std::string& file) const { return (std::filesystem::path(opt_.out) / file).string(); }

void Lesson::metric(const std::string& key, double value) {
  // finish() writes these itself: a lesson's own value would be replaced without a word
  for (const char* reserved : {"train_seconds", "lesson_seconds", "checks_passed", "checks_failed"})
    if (key == reserved)
      throw Error("metric: '" + key + "' is written by the lesson frame at the end of the run (train_seconds: the trainer's time; "
                  "a loop of the lesson's own adds to it with train::add_training_seconds)");
  metrics_[key] = value;
}
void Lesson::metric(const std::string& key, double value, double stderr_of_value) {
  metric(key, value);
  metric(key + "_stderr", stderr_of_value);
}

void Lesson::write_csv(const std::string& file, const std::vector<std::string>& columns,
                       const std::vector<std::vector<double>>& rows) const {
  plot::write_csv(path(file), columns, rows);
}

void Lesson::write_text(const std::string& file, const std::string& text) const {
  std::ofstream out(path(file));
  if (!out) throw Error("write_text: cannot write '" + path(file) + "'");
  out << text;
}

int Lesson::run(int argc, char** argv, const std::function<void()>& steps) {
  if (int rc = parse(argc, argv); rc >= 0) return rc;
  try {
    steps();
  } catch (const train::Interrupted& e) {
    // what was done is kept: the training wrote its best checkpoint, its curve and its resume state
    std::cout << "\n== " << e.what() << "\n   continue with the same flags and --resume" << std::endl;
    report_.interrupted = e.what();
    metrics_["interrupted_at_step"] = static_cast<double>(e.step);
    finish();
    return 130;
  } catch (const std::exception& e) {
    std::cerr << "lesson_" << name_ << ": " << e.what() << "\n";
    report_.error = e.what();
    write_pages();
    return 1;
  }
  return finish();
}

void Lesson::write_pages() {
  report_.metrics = metrics_;
  try {
    const std::string page = write_report(opt_.out, report_);
    const std::filesystem::path parent = std::filesystem::path(opt_.out).parent_path();
    std::string runs_page;
    if (parent.filename() == "runs") runs_page = write_runs_index(parent.string());
    std::cout << "   report page: " << page << (runs_page.empty() ? "" : " (all runs: " + runs_page + ")") << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "lesson_" << name_ << ": the report page was not written: " << e.what() << "\n";
  }
}

int Lesson::finish() {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [k, v] : metrics_) j[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  j["lesson_seconds"] = clock_.seconds();   // the whole run
  j["train_seconds"] = train::training_seconds();  // the part spent in the trainer
  j["checks_passed"] = checks_ - failures_;
  j["checks_failed"] = failures_;
  write_text("metrics.json", j.dump(2) + "\n");
  std::cout << "== " << (checks_ - failures_) << " of " << checks_ << " checks passed; metrics in "
            << path("metrics.json") << std::endl;
  write_pages();
  return failures_ == 0 ? 0 : 1;
}


void say_synthetic_digits() {
  static bool said = false;
  if (said) return;
  said = true;
  std::cout << "   (the 8x8 digits are not installed -- scripts/get-digits.sh or make data -- so the built-in\n"
               "    synthetic 8x8 glyphs stand in: same shape and levels, other numbers than the references)\n";
}

DigitSplits load_digits(const Options& opt) {
  DigitSplits d;
  bool synthetic = false;
  d.train = data::digits_or_synthetic(data::Split::Train, opt.data, &synthetic);
  d.validation = data::digits_or_synthetic(data::Split::Validation, opt.data, &synthetic);
  d.test = data::digits_or_synthetic(data::Split::Test, opt.data, &synthetic);
  d.synthetic = synthetic;
  if (synthetic) say_synthetic_digits();
  return d;
}

}  // namespace dgm::lesson
