// dgm/lessons/common/numerics.cpp
#include "lessons/common/numerics.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/tensor.h"

namespace dgm::lesson {

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

double auroc_by_ranks(const std::vector<double>& in, const std::vector<double>& out) {
  std::vector<std::pair<double, int>> all;
  for (double v : in) all.push_back({v, 0});
  for (double v : out) all.push_back({v, 1});
  std::sort(all.begin(), all.end());
  double rank_sum = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double mean_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1 .. j
    for (size_t k = i; k < j; ++k)
      if (all[k].second == 1) rank_sum += mean_rank;
    i = j;
  }
  const double m = static_cast<double>(out.size()), n = static_cast<double>(in.size());
  return (rank_sum - m * (m + 1) / 2) / (m * n);
}
double auroc_by_pairs(const std::vector<double>& in, const std::vector<double>& out) {
  double wins = 0;
  for (double o : out)
    for (double i : in) wins += o > i ? 1.0 : (o == i ? 0.5 : 0.0);
  return wins / (static_cast<double>(in.size()) * static_cast<double>(out.size()));
}

}  // namespace dgm::lesson
