// dgm/models/toolkit/progress.h — a progress bar for long loops, and a stopwatch.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace dgm::progress {

// Redrawn in place on a terminal; plain periodic lines (about every 10%) when
// stdout is a file or a CI log.
class ProgressBar {
 public:
  // `already`: units done before this bar started (a resumed run): the rate and the time left
  // count only what this process does.
  ProgressBar(std::string label, int64_t total, int64_t already = 0);
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");

 private:
  std::string label_;
  int64_t total_, already_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
};

// Seconds since construction (or the last restart()).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  void restart() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace dgm::progress
