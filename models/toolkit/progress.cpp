// dgm/models/toolkit/progress.cpp
#include "models/toolkit/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace dgm::progress {

ProgressBar::ProgressBar(std::string label, int64_t total, int64_t already)
    : label_(std::move(label)), total_(std::max<int64_t>(total, 1)), already_(already), tty_(isatty(fileno(stdout)) != 0),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar ProgressBar::timed(std::string label, double budget_seconds, int64_t step_cap, int64_t done_steps, double done_seconds) {
  ProgressBar bar(std::move(label), step_cap > 0 ? step_cap : 1, done_steps);
  bar.budget_ = budget_seconds, bar.done_seconds_ = done_seconds, bar.last_done_ = done_steps;
  if (step_cap <= 0) bar.total_ = 0;  // no step cap: the clock alone
  return bar;
}

std::string clock_time(double seconds) {
  const int64_t s = static_cast<int64_t>(std::max(0.0, seconds) + 0.5), h = s / 3600, m = s / 60 % 60, r = s % 60;
  std::ostringstream out;
  if (h > 0) out << h << ":" << std::setw(2) << std::setfill('0') << m;
  else out << m;
  out << ":" << std::setw(2) << std::setfill('0') << r;
  return out.str();
}

void ProgressBar::exclude(double seconds) {
  start_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

void ProgressBar::update(int64_t done, const std::string& status) {
  last_done_ = done;
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done - already_) / secs : 0.0;
  double frac;
  std::ostringstream line;
  if (budget_ > 0) {  // the clock against the budget; steps and their rate beside it
    const double elapsed = done_seconds_ + secs;
    frac = std::min(1.0, elapsed / budget_);
    if (total_ > 0) frac = std::max(frac, std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)));
    if (finished_) frac = 1;
    line << label_ << " " << clock_time(elapsed) << " of " << clock_time(budget_) << ", step " << done << ", " << std::fixed
         << std::setprecision(1) << rate << " steps/s";
  } else {
    frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const double left = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    line << label_ << " " << done << "/" << total_ << " " << std::fixed << std::setprecision(1) << rate << " it/s, "
         << std::setprecision(0) << left << " s left";
  }
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

void ProgressBar::finish(const std::string& status, int64_t done) {
  if (done >= 0) last_done_ = done;
  if (!tty_ && last_decile_ == 10 && status.empty()) return;  // the 100% line is already out
  if (!tty_) last_decile_ = -1;
  finished_ = true;  // a timed bar ends full wherever the run stopped (budget, step cap, early stop)
  update(budget_ > 0 ? last_done_ : total_, status);
  if (tty_) std::cout << std::endl;
}

}  // namespace dgm::progress
