// Every op's backward against float64 central differences, with the
// broadcasting patterns of binary ops: same shape, scalar, row, column,
// leading axes, and both sides broadcast.
#include <array>
#include <map>

#include "helpers.h"

#include "autograd/graph.h"
#include "autograd/kernels.h"
#include "autograd/runtime.h"

using namespace dgm;
using namespace dgm::test;

namespace {

struct Pattern {
  const char* name;
  Shape a, b;
};
const std::vector<Pattern> kPatterns = {
    {"same shape", {3, 4}, {3, 4}},   {"scalar right", {3, 4}, {}}, {"scalar left", {}, {3, 4}},
    {"row", {3, 4}, {4}},             {"column", {3, 4}, {3, 1}},   {"leading axis", {2, 3, 4}, {3, 4}},
    {"both broadcast", {3, 1}, {1, 4}}, {"leading + column", {2, 1, 4}, {3, 1}},
};

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);

// gradcheck of a binary op over every broadcasting pattern; `make_b` draws b.
template <class MakeA, class MakeB>
void check_binary(BinaryFn op, MakeA make_a, MakeB make_b) {
  for (const Pattern& p : kPatterns) {
    INFO("pattern: " << p.name << " " << p.a.str() << " with " << p.b.str());
    require_gradcheck([op](const std::vector<Tensor>& x) { return op(x[0], x[1]); }, {make_a(p.a), make_b(p.b)});
  }
}

auto normal_a = [](const Shape& s) { return randn(s, 1); };
auto normal_b = [](const Shape& s) { return randn(s, 2); };

template <class F>
void check_unary(F f, const Tensor& x) {
  require_gradcheck([f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
}

}  // namespace

// ---------------------------------------------------------------- elementwise
TEST_CASE("gradcheck: add", "[gradcheck][elementwise]") { check_binary(add, normal_a, normal_b); }
TEST_CASE("gradcheck: sub", "[gradcheck][elementwise]") { check_binary(sub, normal_a, normal_b); }
TEST_CASE("gradcheck: mul", "[gradcheck][elementwise]") { check_binary(mul, normal_a, normal_b); }
TEST_CASE("gradcheck: div", "[gradcheck][elementwise]") {
  check_binary(div, normal_a, [](const Shape& s) { return away_from_zero(s, 0.5, 2.0, 2); });
}
TEST_CASE("gradcheck: pow (tensor exponent)", "[gradcheck][elementwise]") {
  check_binary(
      static_cast<BinaryFn>(pow), [](const Shape& s) { return rand(s, 0.5, 2.0, 1); }, normal_b);
}
TEST_CASE("gradcheck: pow (scalar exponent)", "[gradcheck][elementwise]") {
  for (double p : {3.0, 2.0, 0.5, -1.5}) {
    INFO("exponent " << p);
    check_unary([p](const Tensor& x) { return pow(x, p); }, rand({3, 4}, 0.5, 2.0));
  }
}
TEST_CASE("gradcheck: maximum", "[gradcheck][elementwise]") { check_binary(maximum, normal_a, normal_b); }
TEST_CASE("gradcheck: minimum", "[gradcheck][elementwise]") { check_binary(minimum, normal_a, normal_b); }
TEST_CASE("gradcheck: neg", "[gradcheck][elementwise]") { check_unary([](const Tensor& x) { return -x; }, randn({3, 4})); }
TEST_CASE("gradcheck: where", "[gradcheck][elementwise]") {
  Generator g(5);
  Tensor cond = g.bernoulli(Shape{3, 1}, 0.5, DType::Float64);
  cond.data<double>()[0] = 1, cond.data<double>()[1] = 0;  // both branches taken
  require_gradcheck([cond](const std::vector<Tensor>& x) { return where(cond, x[0], x[1]); },
                    {randn({3, 4}, 1), randn({4}, 2)});
}
TEST_CASE("gradcheck: scalar operators", "[gradcheck][elementwise]") {
  check_unary([](const Tensor& x) { return (2.0 - x) * 3.0 + 1.5 / (x + 4.0) - x / 2.0; }, rand({3, 4}, -1, 1));
}

// ---------------------------------------------------------------- unary: every line of the table
// autograd/ops/unary_table.h lists the plain elementwise functions; each line
// becomes a test case here, gradcheck and gradgradcheck in float64, sampled
// from the line's domain.
namespace {
Tensor sample_Real(const Shape& s) { return randn(s) * 2.5; }
Tensor sample_Positive(const Shape& s) { return rand(s, 0.2, 3.0); }
Tensor sample_Kinked(const Shape& s) { return away_from_zero(s, 0.1, 2.0); }
}  // namespace
#define DGM_UNARY(NAME, SAVES, FORWARD, BACKWARD, DOMAIN)                                        \
  TEST_CASE("gradcheck + gradgradcheck: " #NAME " (unary table, domain " #DOMAIN ")",            \
            "[gradcheck][gradgradcheck][unary]") {                                                \
    Tensor x = sample_##DOMAIN({3, 4});                                                           \
    require_gradcheck([](const std::vector<Tensor>& in) { return NAME(in[0]); }, {x});            \
    require_gradgradcheck([](const std::vector<Tensor>& in) { return NAME(in[0]); }, {x});        \
  }
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY

// A line's one-pass backward kernel (DGM_UNARY_GRAD, used when no graph is
// being built; the gradchecks above run it) against the line's engine-op
// backward (run under create_graph; the gradgradchecks above run it), on 2^20
// values (split between threads when there are two) with |x| up to 60,
// where e^x overflows float32. In float64 the two agree to rounding; in
// float32 both are measured against the float64 result on the same (float32)
// inputs, and the one-pass kernel must be no less accurate.
#define DGM_UNARY(...)
#define DGM_UNARY_GRAD(NAME, SAVES, GRAD)                                                          \
  TEST_CASE("one-pass backward of " #NAME " equals its engine-op backward", "[unary][threads]") {  \
    std::map<DType, std::pair<Tensor, Tensor>> results; /* dtype -> (one pass, engine ops) */     \
    for (DType dtype : {DType::Float64, DType::Float32}) {                                        \
      /* float32 values in both dtypes: float64 computes from the same inputs */                 \
      Tensor x = (randn({1 << 20}, 7) * 12.0).to(DType::Float32).to(dtype);                      \
      Tensor g = randn({1 << 20}, 8).to(DType::Float32).to(dtype);                                \
      x.set_requires_grad(true);                                                                  \
      const Tensor one_pass = grad({NAME(x)}, {x}, {g})[0];                                       \
      const Tensor engine_ops = grad({NAME(x)}, {x}, {g}, false, /*create_graph=*/true)[0];       \
      const Tensor x_ = x.detach(), y_ = kernels::unary::NAME(x_);                                \
      const Tensor direct = kernels::unary_grad::NAME(g, SAVES##_);                               \
      for (int64_t i = 0; i < x.numel(); i += 4099) REQUIRE(one_pass.at(i) == direct.at(i)); /* it is the one used */ \
      REQUIRE(one_pass.dtype() == dtype);                                                         \
      results[dtype] = {one_pass, engine_ops};                                                    \
    }                                                                                             \
    const auto& [exact, exact_ops] = results[DType::Float64];                                     \
    REQUIRE(worst_relative(exact, exact_ops) <= 1e-13);                                           \
    const auto& [single, single_ops] = results[DType::Float32];                                   \
    const double err = worst_relative(single, exact), err_ops = worst_relative(single_ops, exact); \
    INFO("float32 against float64: one pass " << err << ", engine ops " << err_ops);             \
    REQUIRE(err <= std::max(err_ops, 1e-7));                                                      \
  }
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY_GRAD
#undef DGM_UNARY

TEST_CASE("gradcheck: leaky_relu", "[gradcheck][unary]") {
  check_unary([](const Tensor& x) { return leaky_relu(x, 0.2); }, away_from_zero({3, 4}, 0.1, 2));
}
TEST_CASE("gradcheck: clamp", "[gradcheck][unary]") {
  check_unary([](const Tensor& x) { return clamp(x, -0.5, 0.5); }, randn({4, 5}));
}

// ---------------------------------------------------------------- reductions
TEST_CASE("gradcheck: sum", "[gradcheck][reduce]") {
  Tensor x = randn({2, 3, 4});
  check_unary([](const Tensor& t) { return sum(t); }, x);
  check_unary([](const Tensor& t) { return sum(t, {1}); }, x);
  check_unary([](const Tensor& t) { return sum(t, {0, 2}, true); }, x);
  check_unary([](const Tensor& t) { return sum(t, {-1}, false); }, x);
}
TEST_CASE("gradcheck: mean", "[gradcheck][reduce]") {
  Tensor x = randn({2, 3, 4});
  check_unary([](const Tensor& t) { return mean(t); }, x);
  check_unary([](const Tensor& t) { return mean(t, {0, 2}); }, x);
  check_unary([](const Tensor& t) { return mean(t, {1}, true); }, x);
}
TEST_CASE("gradcheck: max and min", "[gradcheck][reduce]") {
  Tensor x = randn({2, 3, 4});
  check_unary([](const Tensor& t) { return max(t); }, x);
  check_unary([](const Tensor& t) { return max(t, {1}); }, x);
  check_unary([](const Tensor& t) { return min(t, {0, 2}, true); }, x);
  check_unary([](const Tensor& t) { return min(t, {2}); }, x);
}
TEST_CASE("gradcheck: logsumexp", "[gradcheck][reduce]") {
  Tensor x = randn({2, 3, 4}) * 3.0;
  check_unary([](const Tensor& t) { return logsumexp(t); }, x);
  check_unary([](const Tensor& t) { return logsumexp(t, {2}); }, x);
  check_unary([](const Tensor& t) { return logsumexp(t, {0, 1}, true); }, x);
}
TEST_CASE("gradcheck: var", "[gradcheck][reduce]") {
  Tensor x = randn({3, 5});
  check_unary([](const Tensor& t) { return var(t); }, x);
  check_unary([](const Tensor& t) { return var(t, {1}, false, true); }, x);
  check_unary([](const Tensor& t) { return var(t, {0}, true, false); }, x);
}

// ---------------------------------------------------------------- linear algebra
TEST_CASE("gradcheck: matmul 2-D", "[gradcheck][matmul]") {
  require_gradcheck([](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {randn({3, 4}, 1), randn({4, 5}, 2)});
}
TEST_CASE("gradcheck: mm with transposes passed to BLAS", "[gradcheck][matmul]") {
  // (3, 4, 5) runs GEMV per output row or column (kernels::kGemvRows), (6, 7, 5) GEMM
  for (auto [m, k, n] : {std::array<int64_t, 3>{3, 4, 5}, std::array<int64_t, 3>{6, 7, 5}})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("transpose_a " << ta << ", transpose_b " << tb << ", m " << m << " k " << k << " n " << n);
        Shape sa = ta ? Shape{k, m} : Shape{m, k}, sb = tb ? Shape{n, k} : Shape{k, n};
        require_gradcheck([ta, tb](const std::vector<Tensor>& x) { return mm(x[0], x[1], ta, tb); },
                          {randn(sa, 1), randn(sb, 2)});
      }
}
TEST_CASE("gradcheck: matmul batched and broadcast", "[gradcheck][matmul]") {
  auto f = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); };
  require_gradcheck(f, {randn({2, 3, 4}, 1), randn({2, 4, 5}, 2)});
  require_gradcheck(f, {randn({2, 3, 4}, 1), randn({4, 5}, 2)});      // N-D @ 2-D
  require_gradcheck(f, {randn({3, 4}, 1), randn({2, 4, 5}, 2)});      // 2-D @ N-D
  require_gradcheck(f, {randn({1, 2, 3, 4}, 1), randn({3, 1, 4, 2}, 2)});  // batch axes broadcast
}
// A batch of small products (attention over a KV cache: one query against t keys, for each
// sequence and head) is shared between dgm's threads, a run of whole products each: each product
// comes out as the same call on its own slices gives, forward and backward (dA = G B^T).
TEST_CASE("matmul: a batch of small products shared between two threads gives each product's own result", "[matmul][threads]") {
  const Threads two(2);
  for (DType dtype : {DType::Float32, DType::Float64}) {
    const int64_t N = 64, H = 4, d = 32, t = 40;
    Tensor a = randn({N, H, 1, d}, 1).to(dtype), b = randn({N, H, d, t}, 2).to(dtype), g = randn({N, H, 1, t}, 3).to(dtype);
    a.set_requires_grad(true);
    const Tensor c = matmul(a, b);
    sum(c * g).backward();
    kernels::dispatch_float(dtype, "test", [&](auto tag) {
      using T = decltype(tag);
      std::vector<T> want_c(static_cast<size_t>(t)), want_ga(static_cast<size_t>(d));
      for (int64_t i = 0; i < N * H; ++i) {
        const T *ai = a.data<T>() + i * d, *bi = b.data<T>() + i * d * t, *gi = g.data<T>() + i * t;
        kernels::gemm(false, false, 1, t, d, 1.0, ai, d, bi, t, 0.0, want_c.data(), t, dtype);
        kernels::gemm(false, true, 1, d, t, 1.0, gi, t, bi, t, 0.0, want_ga.data(), d, dtype);
        INFO("product " << i);
        REQUIRE(std::equal(want_c.begin(), want_c.end(), c.data<T>() + i * t));
        REQUIRE(std::equal(want_ga.begin(), want_ga.end(), a.grad().data<T>() + i * d));
      }
    });
  }
}
TEST_CASE("gradcheck: matmul with vectors", "[gradcheck][matmul]") {
  auto f = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); };
  require_gradcheck(f, {randn({4}, 1), randn({4, 5}, 2)});
  require_gradcheck(f, {randn({3, 4}, 1), randn({4}, 2)});
  require_gradcheck(f, {randn({4}, 1), randn({4}, 2)});
}
TEST_CASE("gradcheck: linear", "[gradcheck][matmul]") {
  require_gradcheck([](const std::vector<Tensor>& x) { return linear(x[0], x[1], x[2]); },
                    {randn({3, 4}, 1), randn({5, 4}, 2), randn({5}, 3)});
  require_gradcheck([](const std::vector<Tensor>& x) { return linear(x[0], x[1]); },
                    {randn({2, 3, 4}, 1), randn({5, 4}, 2)});
}
TEST_CASE("gradcheck: linear_relu", "[gradcheck][matmul]") {
  // the inputs are such that no pre-activation is within the finite-difference step of the kink
  const Tensor x = randn({3, 4}, 1), w = randn({5, 4}, 2), b = randn({5}, 3);
  const Tensor pre = linear(x, w, b);
  for (int64_t i = 0; i < pre.numel(); ++i) REQUIRE(std::abs(pre.at(i)) > 1e-3);
  REQUIRE(min(pre).item() < 0);  // some outputs are cut off
  require_gradcheck([](const std::vector<Tensor>& v) { return linear_relu(v[0], v[1], v[2]); }, {x, w, b});
  require_gradgradcheck([](const std::vector<Tensor>& v) { return linear_relu(v[0], v[1], v[2]); }, {x, w, b});
  require_gradcheck([](const std::vector<Tensor>& v) { return linear_relu(v[0], v[1]); }, {randn({2, 3, 4}, 1), randn({5, 4}, 2)});
}

// linear_relu's backward without a graph masks g and sums its rows (the bias gradient) in one pass:
// the same numbers, bit for bit, as the mask then reduce_axis, for rows of 64 values or more (the
// sums straight down each column), fewer (the lanes folded), and one column (sum_contiguous).
TEST_CASE("relu_grad_and_row_sum equals scale_where_positive then the row sum, bit for bit", "[matmul][unary]") {
  for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{512, 64}, {512, 128}, {300, 100}, {37, 3}, {100, 48}, {5, 1}, {1, 70}})
    for (DType dt : {DType::Float32, DType::Float64}) {
      INFO(rows << " x " << cols << " " << dtype_name(dt));
      const Tensor g = randn({rows, cols}, 1).to(dt), y = relu(randn({rows, cols}, 2)).to(dt);  // y: exact zeros too
      const auto [masked, sums] = kernels::relu_grad_and_row_sum(g, y);
      const Tensor want_masked = kernels::scale_where_positive(g, y, 0.0);
      const Tensor want_sums = reshape(kernels::reduce_axis(kernels::Reduce::Sum, want_masked, 0), {cols});
      REQUIRE(sums.shape() == Shape{cols});
      for (int64_t i = 0; i < g.numel(); ++i) REQUIRE(masked.at(i) == want_masked.at(i));
      for (int64_t j = 0; j < cols; ++j) REQUIRE(sums.at(j) == want_sums.at(j));
      double bound = 0;  // and the sums are those of the mask's definition
      for (int64_t j = 0; j < cols; ++j) {
        long double s = 0, mag = 0;
        for (int64_t i = 0; i < rows; ++i)
          if (y.at(i * cols + j) > 0) s += g.at(i * cols + j), mag += std::abs(g.at(i * cols + j));
        bound = std::max(bound, std::abs(sums.at(j) - static_cast<double>(s)) / static_cast<double>(mag + 1));
      }
      CHECK(bound <= rows * (dt == DType::Float32 ? 6e-8 : 1.2e-16));
    }
}

// float32 products of at least 256 rows, an inner size up to 128 and 32 or more columns go through
// the packed product (packed_is_faster in autograd/ops/matmul.cpp), forward and the backward's
// g B^T, when dgm runs on one thread (as here); float64 goes through OpenBLAS. The two routes
// agree, for B and B^T, and for linear's dx.
TEST_CASE("matmul and linear on the packed route agree with OpenBLAS in float64, forward and backward", "[matmul][gemm]") {
  runtime::OneThread one;
  for (bool tb : {false, true})
    for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{300, 40, 48}, {256, 128, 33}, {263, 7, 64}}) {
      INFO("tb " << tb << " m " << m << " k " << k << " n " << n);
      const Tensor a = randn({m, k}, 1), b = tb ? randn({n, k}, 2) : randn({k, n}, 2), c = randn({m, n}, 3);
      std::vector<Tensor> got;
      for (DType dt : {DType::Float32, DType::Float64}) {
        Tensor a1 = a.to(dt).set_requires_grad(true), b1 = b.to(dt).set_requires_grad(true);
        const Tensor y = mm(a1, b1, false, tb);
        sum(y * c.to(dt)).backward();
        got.push_back(y.to(DType::Float64));
        got.push_back(a1.grad().to(DType::Float64));
        got.push_back(b1.grad().to(DType::Float64));
      }
      for (size_t i = 0; i < 3; ++i) CHECK(worst_relative(got[i], got[i + 3]) <= 2e-5);
    }
  // linear's dx = g W, W [out, in] not transposed: the packed route when in >= 32
  const Tensor x = randn({300, 64}, 4), w = randn({48, 64}, 5), bias = randn({48}, 6), c = randn({300, 48}, 7);
  std::vector<Tensor> gx;
  for (DType dt : {DType::Float32, DType::Float64}) {
    Tensor x1 = x.to(dt).set_requires_grad(true);
    sum(linear(x1, w.to(dt), bias.to(dt)) * c.to(dt)).backward();
    gx.push_back(x1.grad().to(DType::Float64));
  }
  CHECK(worst_relative(gx[0], gx[1]) <= 2e-5);
}

// ---------------------------------------------------------------- shape
TEST_CASE("gradcheck: reshape, flatten, squeeze, unsqueeze", "[gradcheck][shape]") {
  Tensor x = randn({2, 3, 4});
  check_unary([](const Tensor& t) { return reshape(t, {4, -1}) * 2.0; }, x);
  check_unary([](const Tensor& t) { return flatten(t, 1) * 2.0; }, x);
  check_unary([](const Tensor& t) { return unsqueeze(t, 1) * 2.0; }, x);
  check_unary([](const Tensor& t) { return squeeze(t, 0) * 2.0; }, randn({1, 3, 4}));
}
TEST_CASE("gradcheck: permute and transpose", "[gradcheck][shape]") {
  Tensor x = randn({2, 3, 4});
  check_unary([](const Tensor& t) { return permute(t, {2, 0, 1}); }, x);
  check_unary([](const Tensor& t) { return transpose(t, 0, -1); }, x);
}
TEST_CASE("gradcheck: slice", "[gradcheck][shape]") {
  Tensor x = randn({4, 6});
  check_unary([](const Tensor& t) { return slice(t, 1, 1, 5); }, x);
  check_unary([](const Tensor& t) { return slice(t, 1, 0, 6, 2); }, x);
  check_unary([](const Tensor& t) { return slice(t, 0, -3, -1); }, x);
}
TEST_CASE("gradcheck: select", "[gradcheck][shape]") {
  Tensor x = randn({3, 4, 2});
  check_unary([](const Tensor& t) { return select(t, 0, 1); }, x);
  check_unary([](const Tensor& t) { return select(t, 1, -1); }, x);   // negative index: the last
  check_unary([](const Tensor& t) { return select(t, -1, 0); }, x);   // negative axis
  check_unary([](const Tensor& t) { return select(t, 0, 2); }, randn({3}));  // to a 0-d tensor
  CHECK(select(x, 1, 2).shape() == Shape{3, 2});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 2; ++k) CHECK(select(x, 1, 2).at(i * 2 + k) == x.at((i * 4 + 2) * 2 + k));
}
TEST_CASE("gradcheck: index_select with repeated indices", "[gradcheck][shape]") {
  Tensor idx = Tensor::from_indices({2, 0, 2, 1}, {4});
  check_unary([idx](const Tensor& t) { return index_select(t, 0, idx); }, randn({3, 4}));
  check_unary([idx](const Tensor& t) { return index_select(t, 1, idx); }, randn({2, 3, 2}));
}
TEST_CASE("gradcheck: gather", "[gradcheck][shape]") {
  Tensor idx = Tensor::from_indices({0, 2, 2, 1, 0, 0}, {3, 2});
  check_unary([idx](const Tensor& t) { return gather(t, 1, idx); }, randn({3, 4}));
  Tensor idx0 = Tensor::from_indices({2, 0, 1, 1}, {1, 4});
  check_unary([idx0](const Tensor& t) { return gather(t, 0, idx0); }, randn({3, 4}));
}
TEST_CASE("gradcheck: concat and stack", "[gradcheck][shape]") {
  require_gradcheck([](const std::vector<Tensor>& x) { return concat({x[0], x[1], x[2]}, 1); },
                    {randn({2, 1}, 1), randn({2, 3}, 2), randn({2, 2}, 3)});
  require_gradcheck([](const std::vector<Tensor>& x) { return concat({x[0], x[1]}, 0); },
                    {randn({1, 3}, 1), randn({2, 3}, 2)});
  require_gradcheck([](const std::vector<Tensor>& x) { return stack({x[0], x[1]}, -1); },
                    {randn({2, 3}, 1), randn({2, 3}, 2)});
}
TEST_CASE("gradcheck: expand", "[gradcheck][shape]") {
  check_unary([](const Tensor& t) { return expand(t, {2, 3, 4}); }, randn({3, 1}));
  check_unary([](const Tensor& t) { return expand(t, {5, 4}); }, randn({4}));
}
TEST_CASE("gradcheck: the adjoints slice_backward, index_add, scatter_add", "[gradcheck][shape]") {
  check_unary([](const Tensor& g) { return slice_backward(g, {4, 6}, 1, 1, 2); }, randn({4, 3}));
  Tensor idx = Tensor::from_indices({2, 0, 2}, {3});
  check_unary([idx](const Tensor& g) { return index_add_into_zeros(g, {4, 2}, 0, idx); }, randn({3, 2}));
  Tensor gidx = Tensor::from_indices({0, 2, 2, 1, 0, 0}, {3, 2});
  check_unary([gidx](const Tensor& g) { return scatter_add_into_zeros(g, {3, 4}, 1, gidx); }, randn({3, 2}));
}
TEST_CASE("gradcheck: clone", "[gradcheck][shape]") {
  check_unary([](const Tensor& t) { return t.clone() * t; }, randn({3, 2}));
}

// ---------------------------------------------------------------- softmax and losses
TEST_CASE("gradcheck: softmax and log_softmax", "[gradcheck][loss]") {
  Tensor x = randn({3, 4}) * 2.0;
  check_unary([](const Tensor& t) { return softmax(t, 1); }, x);
  check_unary([](const Tensor& t) { return softmax(t, 0); }, x);
  check_unary([](const Tensor& t) { return log_softmax(t, 1); }, x);
  check_unary([](const Tensor& t) { return log_softmax(t, 0); }, randn({3, 2, 2}));
}
TEST_CASE("gradcheck: binary_cross_entropy_with_logits", "[gradcheck][loss]") {
  for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean})
    require_gradcheck(
        [r](const std::vector<Tensor>& x) { return binary_cross_entropy_with_logits(x[0], x[1], r); },
        {randn({3, 4}) * 3.0, rand({3, 4}, 0, 1)});
}
// binary_cross_entropy_with_logits is one pass forward and one backward (kernels::bce_with_logits
// and bce_with_logits_grad, blocks of 2048 values, split between threads when there are two):
// on 2^20 + 5 values with |x| up to 60 and t in [0, 1], the loss against the formula in double
// with std::log1p, and the one-pass gradient against the engine-op gradient (under create_graph)
// as the unary table's kernels are checked above.
TEST_CASE("binary_cross_entropy_with_logits: one pass each way, against the formula and the engine-op backward", "[loss][threads]") {
  const int64_t n = (int64_t{1} << 20) + 5;
  std::map<DType, std::pair<Tensor, Tensor>> results;  // dtype -> (one pass, engine ops)
  for (DType dtype : {DType::Float64, DType::Float32}) {
    Tensor x = (randn({n}, 7) * 12.0).to(DType::Float32).to(dtype);
    const Tensor t = rand({n}, 0, 1, 9).to(DType::Float32).to(dtype), g = randn({n}, 8).to(DType::Float32).to(dtype);
    const Tensor l = binary_cross_entropy_with_logits(x, t, Reduction::None);
    const Tensor l_ops = softplus(x) - x * t;  // the same loss by engine ops
    double worst = 0, worst_ops = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double xi = x.at(i), ti = t.at(i);
      const double want = std::max(xi, 0.0) - xi * ti + std::log1p(std::exp(-std::abs(xi)));
      worst = std::max(worst, std::abs(l.at(i) - want) / (1.0 + std::abs(want)));
      worst_ops = std::max(worst_ops, std::abs(l_ops.at(i) - want) / (1.0 + std::abs(want)));
    }
    INFO(dtype_name(dtype) << " loss against the formula in double: one pass " << worst << ", engine ops " << worst_ops);
    REQUIRE(worst <= std::max(worst_ops, 1e-15));
    x.set_requires_grad(true);
    const Tensor one_pass = grad({binary_cross_entropy_with_logits(x, t, Reduction::None)}, {x}, {g})[0];
    const Tensor engine_ops = grad({binary_cross_entropy_with_logits(x, t, Reduction::None)}, {x}, {g}, false, /*create_graph=*/true)[0];
    const Tensor direct = kernels::bce_with_logits_grad(g, x.detach(), t);
    for (int64_t i = 0; i < n; i += 4099) REQUIRE(one_pass.at(i) == direct.at(i));  // it is the one used
    results[dtype] = {one_pass, engine_ops};
  }
  const auto& [exact, exact_ops] = results[DType::Float64];
  REQUIRE(worst_relative(exact, exact_ops) <= 1e-13);
  const auto& [single, single_ops] = results[DType::Float32];
  const double err = worst_relative(single, exact), err_ops = worst_relative(single_ops, exact);
  INFO("float32 gradient against float64: one pass " << err << ", engine ops " << err_ops);
  REQUIRE(err <= std::max(err_ops, 1e-7));
}
TEST_CASE("gradcheck: cross_entropy", "[gradcheck][loss]") {
  Tensor t = Tensor::from_indices({2, 0, 1}, {3});
  check_unary([t](const Tensor& x) { return cross_entropy(x, t); }, randn({3, 4}));
  Tensor t2 = Tensor::from_indices({1, 0, 2, 2}, {1, 2, 2});
  check_unary([t2](const Tensor& x) { return cross_entropy(x, t2, Reduction::Sum); }, randn({1, 3, 2, 2}));
}
TEST_CASE("gradcheck: mse_loss", "[gradcheck][loss]") {
  require_gradcheck([](const std::vector<Tensor>& x) { return mse_loss(x[0], x[1]); }, {randn({3, 4}, 1), randn({3, 4}, 2)});
}
