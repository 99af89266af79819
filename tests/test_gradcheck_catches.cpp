// The checker checked, and the edge cases that differential testing found.
//
// 1. gradcheck is the project's main safety net, so it is tested against ops
//    registered here with deliberately wrong backward rules (a flipped sign,
//    a factor of 2, a broadcast reduced over the wrong axis, a broadcast not
//    reduced at all): each must be reported, and the right rule must pass.
// 2. The unary table's forward kernels against <cmath>, element by element.
// 3. pow at a zero base, and maximum / minimum at ties (PyTorch's values).
#include <cmath>
#include <functional>
#include <map>

#include "autograd/graph.h"
#include "helpers.h"

using namespace dgm;
using namespace dgm::test;

namespace {

// c = a * b (b broadcast over a's rows or columns), with a backward rule that
// is right or wrong in one chosen way.
enum class Mistake { None, FlippedSign, FactorTwo, WrongReductionAxis, NoReduction };

struct MulWithMistakeBackward : Node {
  SavedTensor a, b;
  Mistake mistake = Mistake::None;
  Shape a_shape, b_shape;
  const char* name() const override { return "mul_with_mistake"; }
  std::vector<Tensor> backward(const Tensor& g) override {
    Tensor av = a.unpack(*this), bv = b.unpack(*this);
    Tensor ga = sum_to(g * bv, a_shape);
    Tensor gb_full = g * av;  // the gradient for b before undoing the broadcast
    Tensor gb;
    switch (mistake) {
      case Mistake::None: gb = sum_to(gb_full, b_shape); break;
      case Mistake::FlippedSign: gb = neg(sum_to(gb_full, b_shape)); break;
      case Mistake::FactorTwo: gb = sum_to(gb_full, b_shape) * 2.0; break;
      // b is a column [n, 1]: the right reduction sums over axis 1; summing over
      // axis 0 instead gives a [1, n] row, reshaped to the right shape [n, 1].
      case Mistake::WrongReductionAxis: gb = reshape(sum(gb_full, {0}, true), b_shape); break;
      case Mistake::NoReduction: gb = gb_full; break;  // the shape of c, not of b
    }
    return {ga, gb};
  }
  void release_saved() override { a.reset(), b.reset(); }
};

Tensor mul_with_mistake(const Tensor& a, const Tensor& b, Mistake mistake) {
  Tensor out;
  {
    NoGradGuard ng;
    out = a * b;
  }
  auto node = std::make_shared<MulWithMistakeBackward>();
  node->a = SavedTensor::input(a);
  node->b = SavedTensor::input(b);
  node->mistake = mistake;
  node->a_shape = a.shape();
  node->b_shape = b.shape();
  attach(out, node, {&a, &b});
  return out;
}

GradcheckReport check_mistake(Mistake m) {
  return gradcheck([m](const std::vector<Tensor>& x) { return mul_with_mistake(x[0], x[1], m); },
                   {randn({3, 3}, 1), randn({3, 1}, 2)});
}

}  // namespace

TEST_CASE("gradcheck passes the right backward of a broadcasting op", "[gradcheck][checker]") {
  GradcheckReport r = check_mistake(Mistake::None);
  INFO(r.str());
  CHECK(r.ok);
  CHECK(r.checked == 9 * 9 + 9 * 3);  // every Jacobian entry of both inputs
}

TEST_CASE("gradcheck reports a backward with a flipped sign, a factor 2, a wrong reduction", "[gradcheck][checker]") {
  for (auto [mistake, what] : {std::pair{Mistake::FlippedSign, "flipped sign"}, std::pair{Mistake::FactorTwo, "factor 2"},
                               std::pair{Mistake::WrongReductionAxis, "broadcast reduced over the wrong axis"}}) {
    INFO(what);
    GradcheckReport r = check_mistake(mistake);
    INFO(r.str());
    CHECK_FALSE(r.ok);
    CHECK(r.input == 1);  // the wrong rule is b's; a's gradient is right
    CHECK(std::abs(r.analytic - r.numeric) > 1e-3);
  }
}

TEST_CASE("a broadcast gradient not reduced at all is stopped, naming the op and both shapes", "[gradcheck][checker]") {
  const std::string msg = error_of([] { check_mistake(Mistake::NoReduction); });
  INFO(msg);
  CHECK(msg.find("mul_with_mistake") != std::string::npos);
  CHECK(msg.find("[3, 3]") != std::string::npos);
  CHECK(msg.find("[3, 1]") != std::string::npos);
}

TEST_CASE("gradgradcheck reports a wrong second derivative", "[gradcheck][checker]") {
  // f(x) = x * x through the op: its first derivative is right only for the
  // right rule; a factor 2 in b's rule doubles half of it.
  auto f = [](Mistake m) {
    return [m](const std::vector<Tensor>& x) { return mul_with_mistake(x[0], x[1], m) * x[0]; };
  };
  const std::vector<Tensor> in = {randn({3, 3}, 3), randn({3, 1}, 4)};
  CHECK(gradgradcheck(f(Mistake::None), in).ok);
  CHECK_FALSE(gradgradcheck(f(Mistake::FactorTwo), in).ok);
}

// ---------------------------------------------------------------- forward values
TEST_CASE("the unary table's forward kernels agree with <cmath>, float32 and float64", "[unary]") {
  const std::map<std::string, std::pair<std::function<Tensor(const Tensor&)>, std::function<double(double)>>> ref = {
      {"exp", {[](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }}},
      {"log", {[](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }}},
      {"log1p", {[](const Tensor& x) { return log1p(x); }, [](double v) { return std::log1p(v); }}},
      {"sqrt", {[](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }}},
      {"abs", {[](const Tensor& x) { return abs(x); }, [](double v) { return std::abs(v); }}},
      {"square", {[](const Tensor& x) { return square(x); }, [](double v) { return v * v; }}},
      {"sin", {[](const Tensor& x) { return sin(x); }, [](double v) { return std::sin(v); }}},
      {"cos", {[](const Tensor& x) { return cos(x); }, [](double v) { return std::cos(v); }}},
      {"tanh", {[](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }}},
      {"sigmoid", {[](const Tensor& x) { return sigmoid(x); }, [](double v) { return 1 / (1 + std::exp(-v)); }}},
      {"relu", {[](const Tensor& x) { return relu(x); }, [](double v) { return v > 0 ? v : 0.0; }}},
      {"softplus", {[](const Tensor& x) { return softplus(x); }, [](double v) { return std::log1p(std::exp(v)); }}},
      {"log_sigmoid",
       {[](const Tensor& x) { return log_sigmoid(x); }, [](double v) { return -std::log1p(std::exp(-v)); }}},
      {"silu", {[](const Tensor& x) { return silu(x); }, [](double v) { return v / (1 + std::exp(-v)); }}},
      {"erf", {[](const Tensor& x) { return erf(x); }, [](double v) { return std::erf(v); }}},
      // GELU against the CDF by the complementary error function (another route than erf)
      {"gelu", {[](const Tensor& x) { return gelu(x); }, [](double v) { return v * 0.5 * std::erfc(-v / std::sqrt(2.0)); }}},
  };
  int lines = 0;
#define DGM_UNARY(NAME, ...) \
  ++lines;                   \
  CHECK(ref.count(#NAME) == 1);
#include "autograd/ops/unary_table.h"
#undef DGM_UNARY
  CHECK(lines == static_cast<int>(ref.size()));  // a new line in the table needs its reference here
  for (const auto& [name, fns] : ref) {
    const bool positive = name == "log" || name == "sqrt" || name == "log1p";
    Tensor x = positive ? rand({200}, 1e-3, 20.0) : randn({200}) * 6.0;
    for (DType dt : {DType::Float64, DType::Float32}) {
      INFO(name << " " << dtype_name(dt));
      Tensor y = fns.first(x.to(dt));
      double worst = 0;
      for (int64_t i = 0; i < 200; ++i) {
        const double xi = x.to(dt).to(DType::Float64).at(i), want = fns.second(xi);
        worst = std::max(worst, std::abs(y.at(i) - want) / std::max(1.0, std::abs(want)));
      }
      CHECK(worst <= (dt == DType::Float64 ? 1e-14 : 1e-6));
    }
  }
}

// PyTorch's relu keeps a NaN (torch.relu(nan) is nan): a NaN pre-activation must reach the loss,
// where training reports it with its step, instead of coming out as 0. Every lane of a register
// and the scalar tail (37 values), both dtypes; linear_relu on the packed route (263 rows, float32)
// and on OpenBLAS's (5 rows, and float64).
TEST_CASE("relu and linear_relu keep a NaN, as PyTorch's relu", "[unary][matmul][nan]") {
  const auto put_nan = [](Tensor& t, int64_t i) {
    if (t.dtype() == DType::Float32) t.data<float>()[i] = std::nanf("");
    else t.data<double>()[i] = std::nan("");
  };
  for (DType dt : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dt));
    Tensor x = randn({37}).to(dt);
    for (int64_t i : {0, 5, 7, 8, 15, 16, 31, 36}) put_nan(x, i);
    const Tensor y = relu(x);
    for (int64_t i = 0; i < 37; ++i) {
      INFO("at " << i);
      CHECK(std::isnan(y.at(i)) == std::isnan(x.at(i)));
    }
    for (int64_t rows : {263, 5}) {
      INFO(rows << " rows");
      Tensor in = randn({rows, 40}, 2).to(dt);
      const int64_t bad = rows - 2;
      put_nan(in, bad * 40 + 3);
      const Tensor out = linear_relu(in, randn({48, 40}, 3).to(dt), randn({48}, 4).to(dt));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < 48; ++c) {
          INFO("at (" << r << ", " << c << ")");
          REQUIRE(std::isnan(out.at(r * 48 + c)) == (r == bad));
        }
    }
  }
}

// ---------------------------------------------------------------- pow at a zero base
// PyTorch's values (float64): d/da a^b = 0 where b = 0; d/db a^b = 0 where a = 0 and b >= 0.
TEST_CASE("pow at a zero base: the gradients are the limits, not NaN", "[pow][edge]") {
  Tensor a = Tensor::from_vector(std::vector<double>{0, 0, 0, 0.5, 2}, {5}).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<double>{2, 0, 0.5, 0, 1.5}, {5}).set_requires_grad(true);
  sum(pow(a, b)).backward();
  // d/da = b a^(b-1): 0 (a = 0, b = 2), 0 (b = 0), inf (a = 0, b = 0.5: a true pole), 0 (b = 0), 1.5 sqrt 2
  CHECK(a.grad().at(0) == 0.0);
  CHECK(a.grad().at(1) == 0.0);
  CHECK(std::isinf(a.grad().at(2)));
  CHECK(a.grad().at(3) == 0.0);
  CHECK(a.grad().at(4) == Approx(1.5 * std::sqrt(2.0)).epsilon(1e-14));
  // d/db = a^b log a: 0 at a = 0 (b >= 0), log 0.5 at (0.5, 0), 2^1.5 log 2
  CHECK(b.grad().at(0) == 0.0);
  CHECK(b.grad().at(1) == 0.0);
  CHECK(b.grad().at(2) == 0.0);
  CHECK(b.grad().at(3) == Approx(std::log(0.5)).epsilon(1e-14));
  CHECK(b.grad().at(4) == Approx(std::pow(2.0, 1.5) * std::log(2.0)).epsilon(1e-14));
}

TEST_CASE("pow at a zero base agrees with central differences where the function is smooth", "[pow][edge][gradcheck]") {
  // a = 0 with b = 2 or 3 (smooth there), and b = 0 with a != 0: central
  // differences are well defined, and the limits must match them.
  Tensor a = Tensor::from_vector(std::vector<double>{0, 0, 0.7, 1.3}, {4});
  Tensor b = Tensor::from_vector(std::vector<double>{2, 3, 0, 2}, {4});
  require_gradcheck([](const std::vector<Tensor>& x) { return pow(x[0], x[1]); }, {a, b});
  // b = 0 with a != 0 must keep its second derivatives (d/db of b a^(b-1) is 1/a there)
  require_gradgradcheck([](const std::vector<Tensor>& x) { return pow(x[0], x[1]); },
                        {Tensor::from_vector(std::vector<double>{0.7, 1.3, 0.4}, {3}),
                         Tensor::from_vector(std::vector<double>{0, 2, 0}, {3})});
  for (double p : {0.0, 2.0, 3.0}) {
    INFO("scalar exponent " << p);
    require_gradcheck([p](const std::vector<Tensor>& x) { return pow(x[0], p); },
                      {Tensor::from_vector(std::vector<double>{0, 0.5, -2}, {3})});
  }
}

TEST_CASE("pow(a, 0.0) at a = 0: the gradient is 0, not NaN", "[pow][edge]") {
  Tensor a = Tensor::zeros({3}, DType::Float64).set_requires_grad(true);
  sum(pow(a, 0.0)).backward();
  for (int i = 0; i < 3; ++i) CHECK(a.grad().at(i) == 0.0);
}

// ---------------------------------------------------------------- ties
TEST_CASE("maximum / minimum split a tie's gradient evenly, as the max / min reductions do", "[minmax][edge]") {
  for (bool is_max : {true, false}) {
    INFO((is_max ? "maximum" : "minimum"));
    Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad(true);
    Tensor b = Tensor::from_vector(std::vector<double>{1, 5, 0}, {3}).set_requires_grad(true);
    sum(is_max ? maximum(a, b) : minimum(a, b)).backward();
    CHECK(a.grad().at(0) == 0.5);
    CHECK(b.grad().at(0) == 0.5);
    CHECK(a.grad().at(1) == (is_max ? 0.0 : 1.0));
    CHECK(a.grad().at(2) == (is_max ? 1.0 : 0.0));
    // the reduction over the stacked pair gives the same split
    Tensor a2 = a.detach().set_requires_grad(true), b2 = b.detach().set_requires_grad(true);
    Tensor both = stack({a2, b2}, 0);
    sum(is_max ? max(both, {0}) : min(both, {0})).backward();
    for (int i = 0; i < 3; ++i) {
      CHECK(a2.grad().at(i) == a.grad().at(i));
      CHECK(b2.grad().at(i) == b.grad().at(i));
    }
  }
}

TEST_CASE("central_difference: moves one element in place, restores it, refuses float32", "[gradcheck]") {
  Tensor t = Tensor::from_vector(std::vector<double>{0.5, 2.0}, {2}).to(DType::Float64);
  auto f = [&] { return std::sin(t.at(0)) * t.at(1) * t.at(1); };  // d/dt0 = cos(t0) t1^2, d/dt1 = 2 sin(t0) t1
  CHECK(central_difference(f, t, 0) == Approx(std::cos(0.5) * 4).epsilon(1e-8));
  CHECK(central_difference(f, t, 1) == Approx(2 * std::sin(0.5) * 2).epsilon(1e-8));
  CHECK(t.at(0) == 0.5);
  CHECK(t.at(1) == 2.0);
  Tensor f32 = Tensor::zeros({2});
  CHECK_THAT(error_of([&] { central_difference(f, f32, 0); }), Catch::Contains("float64"));
  CHECK_THAT(error_of([&] { central_difference(f, t, 2); }), Catch::Contains("element 2"));
}
