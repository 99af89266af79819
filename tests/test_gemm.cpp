// tests/test_gemm.cpp — the GEMM behind matmul, linear and conv2d, against its
// definition C = alpha op(A) op(B) + beta C summed in long double: both paths
// (GEMM, and for outputs at most kGemvRows wide GEMV per row or column, or float32's one pass),
// every transpose, leading dimensions wider than the matrices, beta = 0 over
// a C full of NaN (which must not be read), float32 and float64.
#include <catch2/catch.hpp>
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

#include "helpers.h"

#include "autograd/kernels.h"
#include "autograd/runtime.h"
#include "autograd/random.h"
#include "autograd/simd.h"

using namespace dgm;

namespace {

// packed: kernels::pack_b then gemm_packed (alpha 1, beta 0 or 1, A not transposed), with its
// epilogue: + a bias per column (bias), then max(., 0) (relu)
template <class T>
void check_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, double beta, Generator& g, bool packed = false,
                bool bias = false, bool relu = false) {
  const int64_t pad = 3;  // every leading dimension is wider than its matrix
  const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int64_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
  std::vector<T> a(static_cast<size_t>(ar * lda)), b(static_cast<size_t>(br * ldb)), c(static_cast<size_t>(m * ldc));
  for (auto& v : a) v = static_cast<T>(g.uniform01() * 2 - 1);
  for (auto& v : b) v = static_cast<T>(g.uniform01() * 2 - 1);
  for (auto& v : c) v = beta == 0 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(g.uniform01() * 2 - 1);
  const std::vector<T> c0 = c;
  std::vector<T> bias_of(static_cast<size_t>(n), T(0));
  if (bias)
    for (auto& v : bias_of) v = static_cast<T>(g.uniform01() * 2 - 1);
  const DType dtype = sizeof(T) == 4 ? DType::Float32 : DType::Float64;
  if (packed) {
    REQUIRE((alpha == 1 && (beta == 0 || beta == 1) && !ta));
    const kernels::PackedB p = kernels::pack_b(tb, k, n, b.data(), ldb, dtype);
    const std::vector<T> kept = b;
    // a packed copy must not read B again (without AVX-512, or in float64, it keeps B itself)
    if (!p.panels.empty()) std::fill(b.begin(), b.end(), std::numeric_limits<T>::quiet_NaN());
    kernels::gemm_packed(m, a.data(), lda, p, beta == 1, c.data(), ldc, bias ? bias_of.data() : nullptr, relu);
    b = kept;
  } else {
    kernels::gemm(ta, tb, m, n, k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc, dtype);
  }
  const double eps = std::numeric_limits<T>::epsilon();
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      long double s = 0, mag = 0;
      for (int64_t p = 0; p < k; ++p) {
        const long double x = ta ? a[static_cast<size_t>(p * lda + i)] : a[static_cast<size_t>(i * lda + p)];
        const long double y = tb ? b[static_cast<size_t>(j * ldb + p)] : b[static_cast<size_t>(p * ldb + j)];
        s += x * y;
        mag += std::fabs(x * y);
      }
      const long double old = c0[static_cast<size_t>(i * ldc + j)];
      long double want = alpha * s + (beta == 0 ? 0.0L : beta * old) + bias_of[static_cast<size_t>(j)];
      if (relu) want = std::max(want, 0.0L);
      const double tol = 4 * eps * static_cast<double>(k + 3) * static_cast<double>(std::fabs(alpha) * mag + std::fabs(beta) + (bias ? 1 : 0) + 1e-30);
      const double got = c[static_cast<size_t>(i * ldc + j)];
      INFO("ta " << ta << " tb " << tb << " m " << m << " n " << n << " k " << k << " alpha " << alpha << " beta "
                 << beta << " bias " << bias << " relu " << relu << " at (" << i << ", " << j << "): got " << got << ", want " << static_cast<double>(want));
      REQUIRE(std::fabs(got - static_cast<double>(want)) <= tol);
    }
  // the padding between rows of C is left alone
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = n; j < ldc; ++j) {
      const size_t at = static_cast<size_t>(i * ldc + j);
      REQUIRE(((std::isnan(c[at]) && std::isnan(c0[at])) || c[at] == c0[at]));
    }
}

std::vector<float> random_floats(int64_t n, Generator& g) {
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(g.uniform01() * 2 - 1);
  return v;
}

}  // namespace

TEST_CASE("gemm: the GEMM and GEMV paths agree with the definition", "[gemm][matmul]") {
  Generator g(42);
  // (m, n, k): few output rows or columns (GEMV), at the threshold and just
  // above it, a short inner dimension (GEMM), large, and empty sums (k = 0).
  const std::vector<std::array<int64_t, 3>> shapes = {
      {37, 19, 1}, {37, 19, 2}, {64, 8, 3}, {9, kernels::kGemvRows, 13}, {9, kernels::kGemvRows + 1, 13}, {kernels::kGemvRows, 9, 13},
      {37, 1, 19}, {40, 2, 64}, {11, 3, 70}, {1, 37, 19}, {2, 64, 40}, {3, 11, 70}, {1, 1, 300},
      {2, 3, 4},   {50, 40, 30}, {7, 9, 0},
      // the one-pass skinny products (float32, AVX2 / AVX-512): the 2-D flow's and DDPM's layers,
      // blocks of rows and their tails, rows that end inside a register; then one past kGemvSplit
      {512, 2, 64}, {2, 64, 512}, {64, 2, 512}, {128, 3, 512}, {512, 4, 37}, {33, 4, 100}, {1, 3, 349526}};
  for (const auto& s : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double alpha : {1.0, -0.5})
          for (double beta : {0.0, 1.0, 0.25}) {
            check_gemm<float>(ta, tb, s[0], s[1], s[2], alpha, beta, g);
            check_gemm<double>(ta, tb, s[0], s[1], s[2], alpha, beta, g);
          }
}

TEST_CASE("gemm_packed: B packed once, products with it (and its bias and relu) agree with the definition", "[gemm][rnn]") {
  Generator g(7);
  // rows that are and are not a multiple of the 8-row (AVX-512) or 6-row (AVX2) tile, columns that
  // fill panels of 32 (or 16) or end inside their first or second half, empty sums, and the LSTM's
  // step (64 x 1024 x 256)
  const std::vector<std::array<int64_t, 3>> shapes = {{1, 1, 1},    {8, 32, 5},    {13, 37, 19}, {9, 16, 3},  {5, 50, 7},
                                                      {7, 33, 0},   {17, 70, 40},  {3, 64, 1},   {64, 96, 256}, {64, 1024, 256},
                                                      {64, 256, 1024}, {6, 13, 9},  {12, 29, 9}};
  for (const auto& s : shapes)
    for (bool tb : {false, true})
      for (double beta : {0.0, 1.0}) {
        check_gemm<float>(false, tb, s[0], s[1], s[2], 1.0, beta, g, true);
        check_gemm<double>(false, tb, s[0], s[1], s[2], 1.0, beta, g, true);
      }
  // the epilogue (linear and linear_relu's forward): a bias, a relu, both; and the shapes of those
  // layers (at least 256 rows, an inner size up to 128)
  for (const auto& s : std::vector<std::array<int64_t, 3>>{{13, 37, 19}, {7, 33, 0}, {17, 70, 40}, {6, 13, 9}, {263, 40, 3}, {256, 128, 128}})
    for (auto [bias, relu] : std::vector<std::pair<bool, bool>>{{true, false}, {false, true}, {true, true}})
      for (double beta : {0.0, 1.0}) {
        check_gemm<float>(false, true, s[0], s[1], s[2], 1.0, beta, g, true, bias, relu);
        check_gemm<double>(false, true, s[0], s[1], s[2], 1.0, beta, g, true, bias, relu);
      }
#if defined(DGM_SIMD_F32)
  const std::vector<float> b(12, 1.0f);
  CHECK(kernels::pack_b(false, 3, 4, b.data(), 4, DType::Float32).panels.size() == 3 * 2 * simd::kLanes);  // packed: one panel, zero past column 4
#endif
  CHECK(kernels::pack_b(false, 3, 4, nullptr, 4, DType::Float64).panels.empty());  // float64 keeps B
}

// A product on two threads is cut into pieces of C on dgm's pool (kernels::gemm, gemm_plan): by rows
// of op(A) when C has at least as many rows as columns, else by columns of op(B). Every transpose
// (each moves the piece's start in A or B differently), GEMM and skinny products, against the
// definition; and one plan on one thread: the whole product on the calling thread.
TEST_CASE("gemm on two threads: C cut into pieces by rows or by columns agrees with the definition", "[gemm][threads]") {
  Generator g(11);
  const test::Threads restore(runtime::num_threads());
  struct Case {
    int64_t m, n, k;
    bool by_rows;
  };
  // 2 m n k >= 4 MFLOP: two pieces of at least 2 MFLOP; skinny ones (at most 4 columns, or rows)
  const std::vector<Case> cases = {{600, 40, 100, true}, {40, 600, 100, false}, {301, 301, 30, true},
                                   {3000, 3, 400, true}, {3, 3000, 400, false}};
  for (const Case& t : cases) {
    runtime::set_num_threads(2);
    const kernels::GemmPlan plan = kernels::gemm_plan(t.m, t.n, t.k);
    INFO("m " << t.m << " n " << t.n << " k " << t.k);
    REQUIRE(plan.chunks == 2);
    REQUIRE(plan.by_rows == t.by_rows);
    runtime::set_num_threads(1);
    REQUIRE(kernels::gemm_plan(t.m, t.n, t.k).chunks == 1);
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (double beta : {0.0, 0.25}) {
          runtime::set_num_threads(2);
          check_gemm<float>(ta, tb, t.m, t.n, t.k, -0.5, beta, g);
          check_gemm<double>(ta, tb, t.m, t.n, t.k, -0.5, beta, g);
          // cut the same way every time: the same bits from two runs (OpenBLAS's kernels may sum a
          // piece's edge columns in another order than the whole product's, so not those of one thread)
          const std::vector<float> a = random_floats(t.m * t.k, g), b = random_floats(t.k * t.n, g);
          std::vector<float> first(static_cast<size_t>(t.m * t.n)), again(first.size(), 1.0f);
          const int64_t lda = ta ? t.m : t.k, ldb = tb ? t.k : t.n;
          kernels::gemm(ta, tb, t.m, t.n, t.k, 1.0, a.data(), lda, b.data(), ldb, 0.0, first.data(), t.n, DType::Float32);
          kernels::gemm(ta, tb, t.m, t.n, t.k, 1.0, a.data(), lda, b.data(), ldb, 0.0, again.data(), t.n, DType::Float32);
          INFO("ta " << ta << " tb " << tb);
          REQUIRE(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)) == 0);
        }
  }
}

// OpenBLAS runs every call on the thread that makes it: dgm's thread count is its own, and
// OpenBLAS's workers are never woken to compete with dgm's pool for the cores.
TEST_CASE("OpenBLAS is held to one thread whatever dgm's thread count", "[gemm][threads]") {
  using get_fn = int (*)();
  const auto openblas_threads = reinterpret_cast<get_fn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  REQUIRE(openblas_threads != nullptr);
  const test::Threads restore(runtime::num_threads());
  for (int n : {2, 3, 1, 0}) {
    runtime::set_num_threads(n);
    CHECK(runtime::num_threads() == (n > 0 ? n : runtime::hardware_threads()));
    CHECK(openblas_threads() == 1);
  }
}

// A NaN in a row of A, or in a column's bias, reaches the output through the relu (as PyTorch's
// relu): a NaN pre-activation must not come out as 0, where the loss would hide it.
template <class T>
void check_relu_keeps_nan(int64_t m, int64_t n, int64_t k, int64_t nan_row, int64_t nan_col) {
  Generator g(3);
  std::vector<T> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(n * k)), bias(static_cast<size_t>(n)), c(static_cast<size_t>(m * n));
  for (auto& v : a) v = static_cast<T>(g.uniform01() * 2 - 1);
  for (auto& v : b) v = static_cast<T>(g.uniform01() * 2 - 1);
  for (auto& v : bias) v = static_cast<T>(g.uniform01() * 2 - 1);
  a[static_cast<size_t>(nan_row * k)] = std::numeric_limits<T>::quiet_NaN();
  bias[static_cast<size_t>(nan_col)] = std::numeric_limits<T>::quiet_NaN();
  const kernels::PackedB p = kernels::pack_b(true, k, n, b.data(), k, sizeof(T) == 4 ? DType::Float32 : DType::Float64);
  kernels::gemm_packed(m, a.data(), k, p, false, c.data(), n, bias.data(), true);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const T got = c[static_cast<size_t>(i * n + j)];
      INFO("m " << m << " n " << n << " at (" << i << ", " << j << "): " << got);
      if (i == nan_row || j == nan_col) REQUIRE(std::isnan(got));
      else REQUIRE((std::isfinite(got) && got >= 0));
    }
}

TEST_CASE("gemm_packed's relu keeps a NaN: a NaN row of A or a NaN bias comes out NaN, not 0", "[gemm][nan]") {
  // the NaN in the first and in the last (edge) tile row and panel column
  for (auto [m, n, nan_row, nan_col] : std::vector<std::array<int64_t, 4>>{{13, 37, 0, 36}, {13, 37, 12, 0}, {263, 40, 261, 17}}) {
    check_relu_keeps_nan<float>(m, n, 9, nan_row, nan_col);
    check_relu_keeps_nan<double>(m, n, 9, nan_row, nan_col);
  }
}

#if defined(DGM_SIMD_F32)
// The vector operations that conv_winograd.cpp's float32 kernels are written in (AVX-512 or
// AVX2, whichever this build's CPU has), each against what its name says, lane by lane.
TEST_CASE("simd: permutes, masks and masked loads and stores do what autograd/simd.h says", "[simd][winograd]") {
  using namespace dgm::simd;
  alignas(64) float a[2 * kLanes], out[2 * kLanes];
  for (int i = 0; i < 2 * kLanes; ++i) a[i] = static_cast<float>(i + 1);
  const Vec lo = load(a), hi = load(a + kLanes);
  store(out, evens(lo, hi));
  for (int l = 0; l < kLanes; ++l) CHECK(out[l] == a[2 * l]);
  store(out, odds(lo, hi));
  for (int l = 0; l < kLanes; ++l) CHECK(out[l] == a[2 * l + 1]);
  store(out, zip_lo(lo, hi));
  store(out + kLanes, zip_hi(lo, hi));
  for (int m = 0; m < kLanes; ++m) {  // a0 b0 a1 b1 ... across the two registers
    CHECK(out[2 * m] == a[m]);
    CHECK(out[2 * m + 1] == a[kLanes + m]);
  }
  store(out, fmadd(broadcast(2.0f), lo, hi));
  for (int l = 0; l < kLanes; ++l) CHECK(out[l] == 2.0f * a[l] + a[kLanes + l]);
  CHECK(sum(lo) == static_cast<float>(kLanes * (kLanes + 1) / 2));  // 1 + 2 + ... + kLanes, exact
  alignas(64) float one_lane[kLanes] = {};
  for (int l = 0; l < kLanes; ++l) {  // each lane counts
    one_lane[l] = 1.0f;
    CHECK(sum(load(one_lane)) == 1.0f);
    one_lane[l] = 0.0f;
  }
  // lanes(lo, hi) keeps lo <= l < hi (clamped to the register); the others are neither written nor read
  for (int64_t l0 = -2; l0 <= kLanes + 2; ++l0)
    for (int64_t l1 = -2; l1 <= kLanes + 2; ++l1) {
      INFO("lanes(" << l0 << ", " << l1 << ")");
      const Mask m = lanes(l0, l1);
      bool some = false;
      for (int l = 0; l < kLanes; ++l) out[l] = -1.0f;
      store(out, m, lo);
      alignas(64) float got[kLanes];
      store(got, load(m, a));
      for (int l = 0; l < kLanes; ++l) {
        const bool kept = l0 <= l && l < l1;
        some = some || kept;
        CHECK(out[l] == (kept ? a[l] : -1.0f));
        CHECK(got[l] == (kept ? a[l] : 0.0f));
      }
      CHECK(any(m) == some);
    }
}
#endif
