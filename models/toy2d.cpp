// dgm/models/toy2d.cpp — built-in 2-D toy data sets.
#include "models/toy2d.h"

#include <cmath>

namespace dgm::data {

Labelled2D two_moons(int64_t n, double noise, Generator& gen) {
  if (n <= 0) throw Error("two_moons: n must be positive, got " + std::to_string(n));
  Tensor x = Tensor::empty(Shape{n, 2}, DType::Float32);
  Tensor y = Tensor::empty(Shape{n}, DType::Int64);
  float* px = x.data<float>();
  int64_t* py = y.data<int64_t>();
  const int64_t n_upper = n / 2 + n % 2, n_lower = n / 2;
  for (int64_t i = 0; i < n; ++i) {
    const bool upper = i < n_upper;
    const int64_t j = upper ? i : i - n_upper;
    const int64_t count = upper ? n_upper : n_lower;
    const double t = count > 1 ? M_PI * static_cast<double>(j) / static_cast<double>(count - 1) : 0.0;
    double a = upper ? std::cos(t) : 1.0 - std::cos(t);
    double b = upper ? std::sin(t) : 0.5 - std::sin(t);
    px[2 * i] = static_cast<float>(a + noise * gen.normal01());
    px[2 * i + 1] = static_cast<float>(b + noise * gen.normal01());
    py[i] = upper ? 0 : 1;
  }
  return {x, y};
}

}  // namespace dgm::data
