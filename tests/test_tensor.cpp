// Tensors, shapes, dtypes, and seeded random generation.
#include "helpers.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/nn.h"
#include "autograd/optim.h"
#include "models/toolkit/toy2d.h"

using namespace dgm;
using namespace dgm::test;

TEST_CASE("creation, shape and element access", "[tensor]") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dim() == 2);
  CHECK(t.size(-1) == 3);
  CHECK(t.numel() == 6);
  CHECK(t.dtype() == DType::Float32);
  CHECK(t.at(4) == 5.0);
  CHECK(Tensor::scalar(2.5).item() == 2.5);
  CHECK(Tensor::zeros({2, 2}, DType::Float64).to_vector() == std::vector<double>(4, 0.0));
  CHECK(Tensor::full({3}, 7).to_vector() == std::vector<double>(3, 7.0));
  CHECK(Tensor::arange(4, DType::Int64).to_vector() == std::vector<double>{0, 1, 2, 3});
  CHECK(t.to(DType::Float64).dtype() == DType::Float64);
  CHECK(t.to(DType::Float64).to_vector() == t.to_vector());
}

TEST_CASE("reshape shares storage, and permute copies in the right order", "[tensor]") {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = reshape(t, {3, -1});
  CHECK(r.shape() == Shape{3, 2});
  CHECK(r.impl().storage == t.impl().storage);
  CHECK(transpose(t, 0, 1).to_vector() == std::vector<double>{1, 4, 2, 5, 3, 6});
  Tensor x = reshape(Tensor::arange(24), {2, 3, 4});
  Tensor p = permute(x, {2, 0, 1});  // p[k][i][j] = x[i][j][k]
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.at(1 * 6 + 1 * 3 + 2) == x.at(1 * 12 + 2 * 4 + 1));
}

TEST_CASE("forward values of elementwise ops and broadcasting", "[tensor]") {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row = Tensor::from_vector(std::vector<float>{10, 20, 30}, {3});
  Tensor col = Tensor::from_vector(std::vector<float>{100, 200}, {2, 1});
  CHECK((a + row).to_vector() == std::vector<double>{11, 22, 33, 14, 25, 36});
  CHECK((a + col).to_vector() == std::vector<double>{101, 102, 103, 204, 205, 206});
  CHECK((row + col).shape() == Shape{2, 3});
  CHECK((2.0 - a).to_vector() == std::vector<double>{1, 0, -1, -2, -3, -4});
  CHECK(sum(a, {0}).to_vector() == std::vector<double>{5, 7, 9});
  CHECK(max(a, {1}).to_vector() == std::vector<double>{3, 6});
  CHECK(argmax(a, 1).to_vector() == std::vector<double>{2, 2});
  CHECK(logsumexp(Tensor::from_vector(std::vector<double>{1000, 1000}, {2})).item() ==
        Approx(1000 + std::log(2.0)).epsilon(1e-15));
  Tensor ninf = Tensor::full({2}, -INFINITY, DType::Float64);
  CHECK(logsumexp(ninf).item() == -INFINITY);
  CHECK(softplus(Tensor::scalar(100.0, DType::Float64)).item() == Approx(100.0));
  CHECK(softplus(Tensor::scalar(-100.0, DType::Float64)).item() == Approx(std::exp(-100.0)));
  CHECK(var(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {4})).item() == Approx(5.0 / 3.0));
}

TEST_CASE("matmul forward against a naive loop, float32 and float64", "[tensor][matmul]") {
  for (DType dt : {DType::Float32, DType::Float64}) {
    Generator g(3);
    Tensor a = g.normal({7, 5}, 0, 1, dt), b = g.normal({5, 3}, 0, 1, dt);
    Tensor c = matmul(a, b);
    for (int64_t i = 0; i < 7; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        double want = 0;
        for (int64_t k = 0; k < 5; ++k) want += a.at(i * 5 + k) * b.at(k * 3 + j);
        CHECK(c.at(i * 3 + j) == Approx(want).epsilon(dt == DType::Float32 ? 1e-5 : 1e-12));
      }
  }
}

TEST_CASE("Generator: the same seed gives bit-identical numbers", "[random]") {
  Generator a(42), b(42), c(43);
  Tensor na = a.normal({1000}), nb = b.normal({1000}), nc = c.normal({1000});
  CHECK(na.to_vector() == nb.to_vector());
  CHECK(na.to_vector() != nc.to_vector());
  CHECK(a.uniform({10}).to_vector() == b.uniform({10}).to_vector());
  CHECK(a.randint({10}, 0, 7).to_vector() == b.randint({10}, 0, 7).to_vector());
  CHECK(a.permutation(20).to_vector() == b.permutation(20).to_vector());
  CHECK(a.bernoulli({10}, 0.3).to_vector() == b.bernoulli({10}, 0.3).to_vector());
}

TEST_CASE("Generator: distributions have the right moments and ranges", "[random]") {
  Generator g(7);
  const int64_t n = 200000;
  std::vector<double> z = g.normal({n}, 1.0, 2.0, DType::Float64).to_vector();
  double m = 0, s = 0;
  for (double v : z) m += v;
  m /= n;
  for (double v : z) s += (v - m) * (v - m);
  s = std::sqrt(s / (n - 1));
  CHECK(std::abs(m - 1.0) < 4 * 2.0 / std::sqrt(double(n)));  // 4 standard errors
  CHECK(std::abs(s - 2.0) < 0.02);
  std::vector<double> u = g.uniform({n}, -1, 3).to_vector();
  for (double v : u) REQUIRE((v >= -1 && v < 3));
  std::vector<double> r = g.randint({n}, 2, 5).to_vector();
  std::vector<int> counts(3, 0);
  for (double v : r) {
    REQUIRE((v >= 2 && v < 5));
    counts[static_cast<int>(v) - 2]++;
  }
  for (int c : counts) CHECK(std::abs(c - n / 3.0) < 4 * std::sqrt(n * (1 / 3.0) * (2 / 3.0)));
  std::vector<double> p = g.permutation(50).to_vector();
  std::sort(p.begin(), p.end());
  for (int i = 0; i < 50; ++i) CHECK(p[i] == i);
}

namespace {
// Trains a small MLP classifier on two moons; returns the loss after each step.
std::vector<double> train_moons(uint64_t seed, int steps) {
  Generator gen(seed);
  auto data = data::two_moons(128, 0.1, gen);
  auto model = nn::mlp<nn::Tanh>({2, 16, 16, 2}, gen);
  optim::Adam opt(model->parameters(), 0.05);
  std::vector<double> losses;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    Tensor loss = cross_entropy(model->forward(data.x), data.labels);
    loss.backward();
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}
}  // namespace

TEST_CASE("training with the same seed is bit-identical", "[random][train]") {
  auto a = train_moons(5, 30), b = train_moons(5, 30), c = train_moons(6, 30);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a.back() < 0.5 * a.front());
}

#include "autograd/runtime.h"

TEST_CASE("OpenBLAS runs a vector kernel on a CPU that has one, not the SSE3 fallback", "[runtime]") {
  __builtin_cpu_init();
  const std::string core = runtime::blas_core();
  INFO("OpenBLAS core: " << core << " (" << runtime::blas_core_note() << ")");
  if (__builtin_cpu_supports("avx2")) {
    for (const char* sse_only : {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge"})
      CHECK(core != sse_only);
  }
  CHECK(runtime::num_threads() >= 1);
}

TEST_CASE("vectorised log1p, softplus, log_sigmoid keep full precision in the tails", "[tensor]") {
  for (double u : {1e-12, 1e-7, 1e-3, 0.5, 3.0, 1e6, -0.5, -1e-9}) {
    INFO("u = " << u);
    Tensor t = Tensor::scalar(u, DType::Float64);
    CHECK(log1p(t).item() == Approx(std::log1p(u)).epsilon(1e-14));
    Tensor f = Tensor::scalar(u, DType::Float32);
    CHECK(log1p(f).item() == Approx(std::log1p(static_cast<float>(u))).epsilon(1e-6));
  }
  for (double x : {-700.0, -40.0, -1.0, 0.0, 2.0, 40.0}) {
    INFO("x = " << x);
    Tensor t = Tensor::scalar(x, DType::Float64);
    const double sp = x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    CHECK(softplus(t).item() == Approx(sp).epsilon(1e-14));
    // log sigmoid(x) = -log(1 + e^-x), written out in <cmath> (a route of its own)
    const double ls = x < 0 ? x - std::log1p(std::exp(x)) : -std::log1p(std::exp(-x));
    CHECK(log_sigmoid(t).item() == Approx(ls).epsilon(1e-14));
  }
}

TEST_CASE("sum along an axis and slice/concat copies against naive loops, every row length", "[tensor][reduce]") {
  // The kernels take shortcuts by row length (column sums over rows of any
  // width, one-element blocks copied by typed moves): cover short, odd, 64
  // and long rows, and a remainder that does not fill a whole row.
  for (int64_t outer : {1, 3})
    for (int64_t n : {1, 7, 513})
      for (int64_t inner : {1, 2, 3, 5, 8, 63, 64, 65, 100}) {
        INFO("outer " << outer << " n " << n << " inner " << inner);
        Tensor x = randn({outer, n, inner}, static_cast<uint64_t>(n + inner)).to(DType::Float32);
        Tensor s = sum(x, {1});
        REQUIRE(s.shape() == Shape{outer, inner});
        const float* px = x.data<float>();
        for (int64_t o = 0; o < outer; ++o)
          for (int64_t i = 0; i < inner; ++i) {
            double want = 0, mag = 0;
            for (int64_t j = 0; j < n; ++j) {
              want += px[(o * n + j) * inner + i];
              mag += std::fabs(px[(o * n + j) * inner + i]);
            }
            REQUIRE(std::fabs(s.data<float>()[o * inner + i] - want) <= 1e-6 * (mag + 1));
          }
        // a slice of width 1 and of width 2, put back together with concat
        if (n >= 3) {
          Tensor a = slice(x, 1, 0, 1), b = slice(x, 1, 1, 3), c = slice(x, 1, 3, n);
          Tensor y = concat({a, b, c}, 1);
          REQUIRE(y.shape() == x.shape());
          for (int64_t k = 0; k < x.numel(); ++k) REQUIRE(y.data<float>()[k] == px[k]);
          Tensor strided = slice(x, 1, 1, n, 2);  // every other index from 1
          for (int64_t o = 0; o < outer; ++o)
            for (int64_t j = 0; j < strided.shape()[1]; ++j)
              for (int64_t i = 0; i < inner; ++i)
                REQUIRE(strided.data<float>()[(o * strided.shape()[1] + j) * inner + i] ==
                        px[(o * n + 1 + 2 * j) * inner + i]);
        }
      }
}

TEST_CASE("broadcasting a row over short rows, either side, against a naive loop", "[tensor]") {
  // [rows, w] (op) [1, w] and [1, w] (op) [rows, w] take a tiled fast path for w < 32
  for (int64_t rows : {1, 5, 33, 100})
    for (int64_t w : {1, 2, 3, 7, 31, 32, 40}) {
      INFO("rows " << rows << " w " << w);
      Tensor full = randn({rows, w}, 3).to(DType::Float32), row = away_from_zero({1, w}, 0.5, 2, 4).to(DType::Float32);
      const float *pf = full.data<float>(), *pr = row.data<float>();
      Tensor d1 = full - row, d2 = row / full, d3 = reshape(row, {w}) - full;
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < w; ++j) {
          REQUIRE(d1.data<float>()[i * w + j] == pf[i * w + j] - pr[j]);
          REQUIRE(d2.data<float>()[i * w + j] == pr[j] / pf[i * w + j]);
          REQUIRE(d3.data<float>()[i * w + j] == pr[j] - pf[i * w + j]);
        }
    }
}

TEST_CASE("float sums accumulate in double: past 2^24 ones, and over the last axis, nothing is lost", "[tensor][reduce]") {
  // a float accumulator stops at 16,777,216 (adding 1 no longer changes it); the blocked
  // vectorised sum folds its float lanes into a double every 1024 values (n even: the
  // float result can hold it, floats are 2 apart above 2^24)
  const int64_t n = (int64_t{1} << 24) + 1000;
  CHECK(sum(Tensor::ones({n})).item() == static_cast<double>(n));
  CHECK(sum(Tensor::ones({2, n / 2}), {1}).at(1) == static_cast<double>(n / 2));
  // every length around the block and lane sizes, against a double loop
  Generator g(3);
  for (int64_t len : {1, 15, 16, 17, 784, 1023, 1024, 1025, 3000}) {  // 784: an image row, summed per example
    const Tensor x = g.normal({3, len});
    const Tensor s = sum(x, {1});
    for (int64_t r = 0; r < 3; ++r) {
      double expected = 0;
      for (int64_t j = 0; j < len; ++j) expected += x.at(r * len + j);
      CHECK(s.at(r) == Approx(expected).margin(1e-5));
    }
  }
}
