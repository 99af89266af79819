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
  app_.add_option("--epochs", opt_.epochs, "Training epochs (0: the lesson's default)")->check(non_negative);
  app_.add_option("--threads", opt_.threads, "BLAS threads (0: all cores)")->check(non_negative);
}

int Lesson::parse(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  }
  if (!opt_.data.empty() && !std::filesystem::is_directory(opt_.data)) {
    std::cerr << "lesson_" << name_ << ": --data '" << opt_.data
              << "' is not a folder (give the folder that holds the data files; docs/data.md lists them)\n";
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
  cout_buffer_ = std::cout.rdbuf();
  tee_ = std::make_unique<TeeBuffer>(cout_buffer_, &report_.log);
  std::cout.rdbuf(tee_.get());
  std::cout << "== lesson " << name_ << ": " << description_ << "\n"
            << "   seed " << opt_.seed << ", output in " << opt_.out << (opt_.quick ? ", quick run" : "")
            << ", OpenBLAS " << runtime::blas_core() << " x" << runtime::blas_threads() << " threads\n";
  return -1;
}

static std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

bool Lesson::check_close(const std::string& what, double lhs, double rhs, double tol) {
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
  const bool ok = lhs <= rhs;
  ++checks_;
  if (!ok) ++failures_;
  const std::string line = what + ": " + num(lhs) + " vs " + num(rhs) + ", lhs <= rhs: " + (ok ? "PASS" : "FAIL");
  std::cout << "CHECK " << line << std::endl;
  report_.checks.push_back({line, ok});
  return ok;
}

std::string Lesson::path(const std::string& file) const { return (std::filesystem::path(opt_.out) / file).string(); }

void Lesson::metric(const std::string& key, double value) { metrics_[key] = value; }

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
  j["checks_passed"] = checks_ - failures_;
  j["checks_failed"] = failures_;
  write_text("metrics.json", j.dump(2) + "\n");
  std::cout << "== " << (checks_ - failures_) << " of " << checks_ << " checks passed; metrics in "
            << path("metrics.json") << std::endl;
  write_pages();
  return failures_ == 0 ? 0 : 1;
}


DigitSplits load_digits(const Options& opt) {
  DigitSplits d;
  bool synthetic = false;
  d.train = data::digits_or_synthetic(data::Split::Train, opt.data, &synthetic);
  d.validation = data::digits_or_synthetic(data::Split::Validation, opt.data, &synthetic);
  d.test = data::digits_or_synthetic(data::Split::Test, opt.data, &synthetic);
  d.synthetic = synthetic;
  if (synthetic)
    std::cout << "   (the 8x8 digits are not installed -- scripts/get-digits.sh or make data -- so the built-in\n"
                 "    synthetic 8x8 glyphs stand in: same shape and levels, other numbers than the references)\n";
  return d;
}

std::pair<double, double> mean_and_se(const std::vector<double>& v) {
  if (v.size() < 2) throw Error("mean_and_se: needs at least two values");
  const double n = static_cast<double>(v.size());
  double m = 0, ss = 0;
  for (double x : v) m += x / n;
  for (double x : v) ss += (x - m) * (x - m);
  return {m, std::sqrt(ss / (n - 1) / n)};
}

double simpson(const std::vector<double>& f, double h) {
  const size_t n = f.size() - 1;
  if (f.size() < 3 || n % 2) throw Error("simpson: needs an even number of intervals, got " + std::to_string(n));
  double s = f.front() + f.back();
  for (size_t i = 1; i < n; ++i) s += f[i] * (i % 2 ? 4 : 2);
  return s * h / 3;
}

}  // namespace dgm::lesson
