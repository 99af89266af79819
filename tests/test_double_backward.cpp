// Double backward: gradients of gradients, as a gradient penalty (WGAN-GP)
// and Hessian-vector products need. gradgradcheck differentiates
// x -> d<f(x), v>/dx by backward(create_graph) and by finite differences.
#include "helpers.h"

#include "autograd/graph.h"
#include "autograd/nn.h"

using namespace dgm;
using namespace dgm::test;

namespace {
template <class F>
void check_unary2(F f, const Tensor& x) {
  require_gradgradcheck([f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
}
}  // namespace

TEST_CASE("gradgradcheck: elementwise binary ops", "[gradgradcheck]") {
  auto a = randn({3, 4}, 1), b = randn({4}, 2), pos = rand({4}, 0.5, 2.0, 3);
  require_gradgradcheck([](const std::vector<Tensor>& x) { return x[0] * x[1] + x[0] - x[1]; }, {a, b});
  require_gradgradcheck([](const std::vector<Tensor>& x) { return x[0] / x[1]; }, {a, pos});
  require_gradgradcheck([](const std::vector<Tensor>& x) { return pow(x[1], x[0]); }, {a, pos});
  require_gradgradcheck([](const std::vector<Tensor>& x) { return maximum(x[0], x[1]) * x[0]; }, {a, b});
}

TEST_CASE("gradgradcheck: unary ops (the table's own lines: test_ops_gradcheck.cpp)", "[gradgradcheck]") {
  check_unary2([](const Tensor& x) { return square(x) * x; }, randn({3, 4}));
  check_unary2([](const Tensor& x) { return pow(x, 3.0); }, rand({3, 4}, 0.3, 2));
  // piecewise-linear ops: zero second derivative, but the graph must still be right
  check_unary2([](const Tensor& x) { return relu(x) * x; }, away_from_zero({3, 4}, 0.1, 2));
  check_unary2([](const Tensor& x) { return leaky_relu(x, 0.2) * x; }, away_from_zero({3, 4}, 0.1, 2));
  check_unary2([](const Tensor& x) { return abs(x) * x; }, away_from_zero({3, 4}, 0.1, 2));
}

TEST_CASE("gradgradcheck: reductions, matmul, softmax, losses", "[gradgradcheck]") {
  check_unary2([](const Tensor& x) { return square(sum(x, {1})); }, randn({3, 4}));
  check_unary2([](const Tensor& x) { return square(mean(x, {0}, true)) * x; }, randn({3, 4}));
  check_unary2([](const Tensor& x) { return logsumexp(x, {1}); }, randn({3, 4}));
  check_unary2([](const Tensor& x) { return var(x, {1}); }, randn({3, 4}));
  check_unary2([](const Tensor& x) { return softmax(x, 1); }, randn({3, 4}));
  check_unary2([](const Tensor& x) { return log_softmax(x, 1); }, randn({3, 4}));
  check_unary2([](const Tensor& x) { return square(select(x, 1, 2)) * select(x, 1, 0); }, randn({3, 4}));
  require_gradgradcheck([](const std::vector<Tensor>& x) { return tanh(matmul(x[0], x[1])); },
                        {randn({3, 4}, 1), randn({4, 2}, 2)});
  require_gradgradcheck([](const std::vector<Tensor>& x) { return binary_cross_entropy_with_logits(x[0], x[1]); },
                        {randn({3, 4}, 1), rand({3, 4}, 0, 1, 2)});
}

TEST_CASE("Hessian-vector product of sum(x^3) is 6 x v", "[double-backward]") {
  Tensor x = randn({5}, 4).set_requires_grad(true);
  Tensor v = randn({5}, 5);
  Tensor y = sum(pow(x, 3.0));
  Tensor g = grad({y}, {x}, {}, false, /*create_graph=*/true)[0];  // 3 x^2
  Tensor hv = grad({sum(g * v)}, {x})[0];                          // H v = 6 x v
  for (int64_t i = 0; i < 5; ++i) CHECK(hv.at(i) == Approx(6 * x.at(i) * v.at(i)).epsilon(1e-12));
}

TEST_CASE("a WGAN-GP gradient penalty trains through double backward", "[double-backward]") {
  // penalty(theta) = (|| d D_theta(x) / dx || - 1)^2 for a small MLP critic D;
  // its gradient with respect to the weights needs second derivatives.
  Generator gen(11);
  auto critic = nn::mlp<nn::Tanh>({2, 5, 1}, gen);
  critic->to(DType::Float64);
  Tensor x = randn({4, 2}, 6);
  std::vector<Tensor> params = critic->parameters();
  auto penalty = [&](const std::vector<Tensor>& p) {
    // rebuild the critic with the given weights: y = tanh(x W1^T + b1) W2^T + b2
    Tensor xi = x.detach().set_requires_grad(true);
    Tensor out = linear(tanh(linear(xi, p[0], p[1])), p[2], p[3]);
    Tensor gx = grad({sum(out)}, {xi}, {}, false, /*create_graph=*/true)[0];
    Tensor norm = sqrt(sum(square(gx), {1}) + 1e-12);
    return mean(square(norm - 1.0));
  };
  require_gradcheck(penalty, params);
}

TEST_CASE("backward(create_graph) leaves a differentiable .grad", "[double-backward]") {
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, -1.0}, {2}).set_requires_grad(true);
  Tensor y = sum(exp(x) * x);
  y.backward(Tensor(), false, /*create_graph=*/true);
  Tensor g = x.grad();  // (1 + x) e^x
  REQUIRE(g.requires_grad());
  Tensor second = grad({sum(g)}, {x})[0];  // (2 + x) e^x
  CHECK(second.at(0) == Approx((2 + 0.5) * std::exp(0.5)).epsilon(1e-12));
  CHECK(second.at(1) == Approx((2 - 1.0) * std::exp(-1.0)).epsilon(1e-12));
  // x.grad's graph refers back to x (a reference cycle, as in PyTorch): drop it.
  x.zero_grad();
}
