// tests/helpers.h — shared test helpers.
#pragma once

#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "autograd/random.h"
#include "autograd/runtime.h"

namespace dgm::test {

// Sets dgm's thread count for one test, then gives back the count it had, however the test ends.
struct Threads {
  int before = runtime::num_threads();
  explicit Threads(int n) { runtime::set_num_threads(n); }
  ~Threads() { runtime::set_num_threads(before); }
};

// float64 tensor of N(0, 1) values (seeded by the shape's size and `seed`).
inline Tensor randn(const Shape& s, uint64_t seed = 1) {
  Generator g(seed * 7919 + static_cast<uint64_t>(s.numel()));
  return g.normal(s, 0.0, 1.0, DType::Float64);
}
// float64 tensor uniform in [lo, hi).
inline Tensor rand(const Shape& s, double lo, double hi, uint64_t seed = 1) {
  Generator g(seed * 104729 + static_cast<uint64_t>(s.numel()));
  return g.uniform(s, lo, hi, DType::Float64);
}
// max_i |a_i - b_i| / (1 + |b_i|): two routes to the same values (a and b of one shape)
inline double worst_relative(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(a.at(i) - b.at(i)) / (1.0 + std::abs(b.at(i))));
  return worst;
}

// float64 tensor with values in [lo, hi) and random signs: away from 0, for
// ops with a kink or a pole there (abs, relu, division).
inline Tensor away_from_zero(const Shape& s, double lo, double hi, uint64_t seed = 1) {
  Generator g(seed * 15485863 + static_cast<uint64_t>(s.numel()));
  Tensor t = g.uniform(s, lo, hi, DType::Float64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (g.uniform01() < 0.5) p[i] = -p[i];
  return t;
}

// Every binary image of h x w pixels, [2^(hw), 1, h, w] float64: pixel d of image r is bit d of r.
inline Tensor every_binary_image(int64_t h, int64_t w) {
  const int64_t D = h * w, n = int64_t{1} << D;
  Tensor x = Tensor::zeros({n, 1, h, w}, DType::Float64);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t d = 0; d < D; ++d) x.data<double>()[r * D + d] = static_cast<double>((r >> d) & 1);
  return x;
}
// n 4-pixel binary images, [n, 4] float64, that give each of the 16 some mass: even rows near 1100,
// odd rows near 0011, 15% of the pixels flipped (a tiny VAE trained on them has q(z|x) fitted everywhere).
inline Tensor two_prototype_images(Generator& g, int64_t n) {
  Tensor data = Tensor::empty({n, 4}, DType::Float64);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t d = 0; d < 4; ++d) {
      const double proto = (r % 2 == 0) ? (d < 2) : (d >= 2);
      data.data<double>()[r * 4 + d] = g.uniform01() < 0.15 ? 1 - proto : proto;
    }
  return data;
}

// Runs gradcheck and reports the worst element when it fails.
inline void require_gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& opt = {}) {
  GradcheckReport r = gradcheck(f, inputs, opt);
  INFO(r.str());
  CHECK(r.ok);
  CHECK(r.checked > 0);
}

inline void require_gradgradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                                  const GradcheckOptions& opt = {}) {
  GradcheckReport r = gradgradcheck(f, inputs, opt, 3);
  INFO(r.str());
  CHECK(r.ok);
  CHECK(r.checked > 0);
}

// A path in a per-suite temporary folder (created).
inline std::string temp_path(const std::string& folder, const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / folder;
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

// A whole text file ("" if it cannot be read).
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The message of the dgm::Error that `f` throws ("" if it throws none).
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace dgm::test
