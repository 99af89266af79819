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

void ProgressBar::update(int64_t done, const std::string& status) {
  const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = secs > 0 ? static_cast<double>(done - already_) / secs : 0.0;
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

}  // namespace dgm::progress
