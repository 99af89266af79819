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
  // A bar over a time budget, counting steps: "fashion_vae 1:23 of 3:00, step 6866, 82.1 steps/s".
  // It is full when the budget is spent or, if `step_cap` > 0, when that many steps are done
  // (the run's step budget or its epochs), whichever comes first. A resumed run passes the steps
  // and seconds it had done.
  static ProgressBar timed(std::string label, double budget_seconds, int64_t step_cap = 0, int64_t done_steps = 0,
                           double done_seconds = 0);
  // `done`: units, or steps for a timed bar.
  void update(int64_t done, const std::string& status = "");
  // Seconds spent on something other than the steps (an evaluation between them): not counted as
  // elapsed time, nor in the rate.
  void exclude(double seconds);
  // `done` >= 0: where the run ended (a timed bar's last step count); else the last update's.
  void finish(const std::string& status = "", int64_t done = -1);

 private:
  std::string label_;
  int64_t total_, already_;
  bool tty_;
  int last_decile_ = -1;
  std::chrono::steady_clock::time_point start_;
  double budget_ = 0, done_seconds_ = 0;  // a timed bar: its budget, and the seconds of a run it resumes
  int64_t last_done_ = 0;
  bool finished_ = false;
};

// "1:05", "12:00", "1:02:03": seconds as a clock reads them.
std::string clock_time(double seconds);

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
