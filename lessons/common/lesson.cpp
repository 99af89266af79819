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

namespace dgm::lesson {

Lesson::Lesson(std::string name, std::string description)
    : name_(std::move(name)), description_(std::move(description)), app_(description_, "lesson_" + name_) {
  opt_.out = "runs/" + name_;
  app_.add_flag("--quick", opt_.quick, "Small, fast run (under a minute); what the tests run");
  app_.add_option("--seed", opt_.seed, "Random seed")->capture_default_str();
  app_.add_option("--out", opt_.out, "Output folder for pictures, CSVs and metrics.json")->capture_default_str();
  app_.add_option("--data", opt_.data, "Folder to look for data sets in");
  app_.add_option("--epochs", opt_.epochs, "Training epochs (0: the lesson's default)")->check(CLI::NonNegativeNumber);
  app_.add_option("--threads", opt_.threads, "BLAS threads (0: all cores)")->check(CLI::NonNegativeNumber);
}

int Lesson::parse(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e);
  }
  runtime::set_num_threads(opt_.threads);
  std::error_code ec;
  std::filesystem::create_directories(opt_.out, ec);
  if (ec) {
    std::cerr << "lesson_" << name_ << ": cannot create output folder '" << opt_.out << "': " << ec.message() << "\n";
    return 2;
  }
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
  std::cout << "CHECK " << what << ": " << num(lhs) << " vs " << num(rhs) << ", |diff| <= " << num(tol) << ": "
            << (ok ? "PASS" : "FAIL") << "  (|diff| = " << num(diff) << ")" << std::endl;
  return ok;
}

bool Lesson::check_le(const std::string& what, double lhs, double rhs) {
  const bool ok = lhs <= rhs;
  ++checks_;
  if (!ok) ++failures_;
  std::cout << "CHECK " << what << ": " << num(lhs) << " vs " << num(rhs) << ", lhs <= rhs: " << (ok ? "PASS" : "FAIL")
            << std::endl;
  return ok;
}

std::string Lesson::path(const std::string& file) const { return (std::filesystem::path(opt_.out) / file).string(); }

void Lesson::metric(const std::string& key, double value) { metrics_[key] = value; }

void Lesson::write_csv(const std::string& file, const std::vector<std::string>& columns,
                       const std::vector<std::vector<double>>& rows) const {
  std::ofstream out(path(file));
  if (!out) throw Error("write_csv: cannot write '" + path(file) + "'");
  for (size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << columns[i];
  out << "\n" << std::setprecision(9);
  for (auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << r[i];
    out << "\n";
  }
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
    return 1;
  }
  return finish();
}

int Lesson::finish() {
  nlohmann::json j = nlohmann::json::object();
  for (auto& [k, v] : metrics_) j[k] = std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  j["checks_passed"] = checks_ - failures_;
  j["checks_failed"] = failures_;
  write_text("metrics.json", j.dump(2) + "\n");
  std::cout << "== " << (checks_ - failures_) << " of " << checks_ << " checks passed; metrics in "
            << path("metrics.json") << std::endl;
  return failures_ == 0 ? 0 : 1;
}

void Lesson::require_finite(double value, const std::string& what, int64_t step) {
  if (!std::isfinite(value))
    throw Error("training diverged: " + what + " is " + num(value) + " at step " + std::to_string(step) +
                " (try a smaller learning rate, or check the data)");
}

// ---------------------------------------------------------------- ProgressBar
ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), tty_(isatty(fileno(stdout)) != 0),
      start_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(int64_t done, const std::string& status) {
  const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
  const double left = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
  std::ostringstream line;
  line << label_ << " " << done << "/" << total_ << " " << std::fixed << std::setprecision(1) << rate << " it/s, "
       << std::setprecision(0) << left << " s left";
  if (!status.empty()) line << ", " << status;
  if (tty_) {
    const int width = 30, filled = static_cast<int>(frac * width);
    std::cout << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << line.str()
              << "\033[K" << std::flush;
  } else {
    const int decile = static_cast<int>(frac * 10);
    if (decile != last_decile_) {
      last_decile_ = decile;
      std::cout << "  " << static_cast<int>(frac * 100) << "% " << line.str() << std::endl;
    }
  }
}

void ProgressBar::finish(const std::string& status) {
  if (!tty_ && last_decile_ == 10 && status.empty()) return;  // the 100% line is already out
  if (!tty_) last_decile_ = -1;
  update(total_, status);
  if (tty_) std::cout << std::endl;
}

}  // namespace dgm::lesson
