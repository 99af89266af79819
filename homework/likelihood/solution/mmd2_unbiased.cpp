// Reference solution: homework/likelihood/mmd2_unbiased.cpp.
#include "homework/likelihood/exercises.h"

#include <cmath>

namespace hw::likelihood {

namespace {
// sum of k(a_i, b_j) over all pairs, or over i != j when `skip_diagonal`
double kernel_sum(const Tensor& A, const Tensor& B, double h, bool skip_diagonal) {
  const std::vector<double> a = A.to_vector(), b = B.to_vector();
  const int64_t n = A.size(0), m = B.size(0), d = A.size(1);
  double total = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      if (skip_diagonal && i == j) continue;
      double sq = 0;
      for (int64_t k = 0; k < d; ++k) sq += (a[i * d + k] - b[j * d + k]) * (a[i * d + k] - b[j * d + k]);
      total += std::exp(-sq / (2 * h * h));
    }
  return total;
}
}  // namespace

double mmd2_unbiased(const Tensor& X, const Tensor& Y, double h) {
  const double n = static_cast<double>(X.size(0)), m = static_cast<double>(Y.size(0));
  return kernel_sum(X, X, h, true) / (n * (n - 1)) + kernel_sum(Y, Y, h, true) / (m * (m - 1)) -
         2 * kernel_sum(X, Y, h, false) / (n * m);
}

}  // namespace hw::likelihood
