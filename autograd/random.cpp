// dgm/autograd/random.cpp — Generator.
#include "autograd/random.h"

#include <cstdlib>
#include <sstream>

#include <cmath>

#include "autograd/graph.h"

namespace dgm {

void Generator::manual_seed(uint64_t seed) {
  seed_ = seed;
  engine_.seed(seed);
  has_spare_ = false;
}

std::string Generator::state() const {
  std::ostringstream os;
  os << seed_ << ' ' << has_spare_ << ' ' << std::hexfloat << spare_ << ' ' << engine_;
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  uint64_t seed = 0;
  bool spare_flag = false;
  std::string spare_text;
  std::mt19937_64 engine;
  is >> seed >> spare_flag >> spare_text >> engine;
  if (is.fail()) throw Error("Generator::set_state: not a generator state (" + std::to_string(state.size()) + " characters)");
  seed_ = seed, has_spare_ = spare_flag, spare_ = std::strtod(spare_text.c_str(), nullptr), engine_ = engine;
}

double Generator::uniform01() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Generator::normal01() {
  // Box–Muller: two uniforms give two independent normals; keep the second.
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform01();
  while (u1 <= 0.0) u1 = uniform01();
  const double u2 = uniform01();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * M_PI * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

int64_t Generator::randint(int64_t low, int64_t high) {
  if (high <= low)
    throw Error("randint: empty range [" + std::to_string(low) + ", " + std::to_string(high) + ")");
  const uint64_t range = static_cast<uint64_t>(high - low);
  // Rejection sampling: discard the top partial block so every value is equally likely.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t x;
  do {
    x = engine_();
  } while (x >= limit);
  return low + static_cast<int64_t>(x % range);
}

namespace {
template <class F>
void fill(Tensor& t, F draw) {
  const int64_t n = t.numel();
  if (t.dtype() == DType::Float32) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(draw());
  } else if (t.dtype() == DType::Float64) {
    double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = draw();
  } else {
    throw Error("Generator: cannot fill an int64 tensor with real numbers");
  }
}
}  // namespace

void Generator::fill_uniform_(Tensor& t, double low, double high) {
  NoGradGuard ng;
  fill(t, [&] { return low + (high - low) * uniform01(); });
  t.bump_version("uniform_");
}

void Generator::fill_normal_(Tensor& t, double mean, double std) {
  NoGradGuard ng;
  fill(t, [&] { return mean + std * normal01(); });
  t.bump_version("normal_");
}

Tensor Generator::uniform(const Shape& shape, double low, double high, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  fill(t, [&] { return low + (high - low) * uniform01(); });
  return t;
}

Tensor Generator::normal(const Shape& shape, double mean, double std, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  fill(t, [&] { return mean + std * normal01(); });
  return t;
}

Tensor Generator::bernoulli(const Tensor& probs) {
  Tensor t = Tensor::empty(probs.shape(), probs.dtype());
  int64_t i = 0;
  fill(t, [&] {
    double p = probs.at(i++);
    if (!(p >= 0.0 && p <= 1.0))
      throw Error("bernoulli: probability " + std::to_string(p) + " is not in [0, 1]");
    return uniform01() < p ? 1.0 : 0.0;
  });
  return t;
}

Tensor Generator::bernoulli(const Shape& shape, double p, DType dtype) {
  if (!(p >= 0.0 && p <= 1.0)) throw Error("bernoulli: probability " + std::to_string(p) + " is not in [0, 1]");
  Tensor t = Tensor::empty(shape, dtype);
  fill(t, [&] { return uniform01() < p ? 1.0 : 0.0; });
  return t;
}

Tensor Generator::randint(const Shape& shape, int64_t low, int64_t high) {
  Tensor t = Tensor::empty(shape, DType::Int64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = randint(low, high);
  return t;
}

Tensor Generator::permutation(int64_t n) {
  Tensor t = Tensor::arange(n, DType::Int64);
  int64_t* p = t.data<int64_t>();
  // Fisher–Yates
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[randint(0, i + 1)]);
  return t;
}

}  // namespace dgm
