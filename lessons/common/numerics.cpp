// dgm/lessons/common/numerics.cpp
#include "lessons/common/numerics.h"

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

}  // namespace dgm::lesson
