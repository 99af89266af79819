// Reference solution: homework/intro/auroc.cpp.
#include "homework/intro/exercises.h"

#include <algorithm>

namespace hw::intro {

double auroc(const std::vector<double>& in, const std::vector<double>& out) {
  std::vector<double> sorted_out = out;
  std::sort(sorted_out.begin(), sorted_out.end());
  double wins = 0;  // pairs won, a tie counting one half
  for (double s : in) {
    const auto below = std::lower_bound(sorted_out.begin(), sorted_out.end(), s) - sorted_out.begin();
    const auto not_above = std::upper_bound(sorted_out.begin(), sorted_out.end(), s) - sorted_out.begin();
    wins += static_cast<double>(below) + 0.5 * static_cast<double>(not_above - below);
  }
  return wins / (static_cast<double>(in.size()) * static_cast<double>(out.size()));
}

}  // namespace hw::intro
