// Modules, initialisers, optimizers (against their update formulas), clipping.
#include "helpers.h"

#include <cmath>

#include "autograd/graph.h"
#include "autograd/nn.h"
#include "autograd/optim.h"
#include "models/toolkit/toy2d.h"

using namespace dgm;
using namespace dgm::test;

namespace {
struct Encoder : nn::Module {
  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Linear> head;
  explicit Encoder(Generator& g) {
    body = register_module("body", nn::mlp({4, 8, 8}, g));
    head = register_module("head", std::make_shared<nn::Linear>(8, 2, g));
  }
  Tensor forward(const Tensor& x) override { return head->forward(relu(body->forward(x))); }
};
}  // namespace

TEST_CASE("modules name their parameters with dotted paths", "[nn]") {
  Generator g(0);
  Encoder enc(g);
  std::vector<std::string> names;
  for (auto& [n, _] : enc.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias",
                                          "head.weight", "head.bias"});
  CHECK(enc.num_parameters() == (4 * 8 + 8) + (8 * 8 + 8) + (8 * 2 + 2));
  enc.eval();
  CHECK_FALSE(enc.body->is_training());
  enc.train();
  CHECK(enc.body->is_training());
}

TEST_CASE("Linear is initialised like PyTorch: U(-1/sqrt(in), 1/sqrt(in))", "[nn]") {
  Generator g(1);
  nn::Linear lin(100, 50, g);
  const double bound = 0.1;
  double sq = 0;
  for (double v : lin.weight.to_vector()) {
    REQUIRE(std::abs(v) <= bound);
    sq += v * v;
  }
  CHECK(std::sqrt(sq / 5000) == Approx(bound / std::sqrt(3.0)).epsilon(0.05));
  Tensor w = Tensor::zeros({256, 128});
  nn::init::kaiming_normal_(w, g);
  double s2 = 0;
  for (double v : w.to_vector()) s2 += v * v;
  CHECK(std::sqrt(s2 / w.numel()) == Approx(std::sqrt(2.0 / 128)).epsilon(0.03));
  nn::init::xavier_uniform_(w, g);
  for (double v : w.to_vector()) REQUIRE(std::abs(v) <= std::sqrt(6.0 / (256 + 128)));
}

// Sequential runs a Linear followed by a ReLU as one op, linear_relu. In float32 on an AVX2 or
// AVX-512 build, a layer of at least 256 rows, at most 128 inputs and at least 32 outputs goes
// through the packed product with the bias and the relu in its epilogue; the layers one by one go
// through OpenBLAS and a relu pass. The sums may differ in order only (on Zen 3 they came out
// equal: OpenBLAS's kernel also sums over k in order, then adds the bias).
namespace {
// a Linear with its own forward: Sequential must call it, not fuse it away
struct DoubledLinear : nn::Linear {
  using nn::Linear::Linear;
  Tensor forward(const Tensor& x) override { return nn::Linear::forward(x) * 2.0; }
};
}  // namespace
TEST_CASE("Sequential runs Linear + ReLU as linear_relu: the values and gradients of the layers one by one", "[nn][matmul]") {
  Generator g(5);
  nn::Sequential net;
  net.add(std::make_shared<nn::Linear>(40, 128, g)).add(std::make_shared<nn::ReLU>());  // packed (k 40)
  net.add(std::make_shared<nn::Linear>(128, 64, g)).add(std::make_shared<nn::ReLU>());  // packed (k 128)
  net.add(std::make_shared<nn::Linear>(64, 3, g));                                      // 3 outputs: OpenBLAS
  for (int64_t rows : {263, 5}) {  // the packed product, and too few rows for it
    const Tensor x = g.normal({rows, 40});
    const Tensor fused = net.forward(x);
    REQUIRE(fused.grad_fn()->next[0]->name() == std::string("linear_relu"));
    Tensor h = x;
    for (size_t i = 0; i < net.size(); ++i) h = net[i].forward(h);  // one by one
    INFO(rows << " rows: outputs differ by " << worst_relative(fused, h));
    REQUIRE(worst_relative(fused, h) <= 1e-5);
    const std::vector<Tensor> params = net.parameters();
    const std::vector<Tensor> g_fused = grad({sum(square(fused))}, params), g_one = grad({sum(square(h))}, params);
    for (size_t i = 0; i < params.size(); ++i) {
      INFO("parameter " << i << ": gradients differ by " << worst_relative(g_fused[i], g_one[i]));
      REQUIRE(worst_relative(g_fused[i], g_one[i]) <= 1e-4);
    }
  }
  // a subclass of Linear keeps its own forward
  nn::Sequential doubled;
  doubled.add(std::make_shared<DoubledLinear>(4, 3, g)).add(std::make_shared<nn::ReLU>());
  const Tensor x = g.normal({2, 4});
  const Tensor want = relu(doubled[0].forward(x));
  CHECK(worst_relative(doubled.forward(x), want) == 0.0);
}
TEST_CASE("Module::to(Float64) converts every parameter in place", "[nn]") {
  Generator g(2);
  nn::Linear lin(3, 2, g);
  std::vector<double> before = lin.weight.to_vector();
  lin.to(DType::Float64);
  CHECK(lin.weight.dtype() == DType::Float64);
  CHECK(lin.parameters()[0].dtype() == DType::Float64);
  CHECK(lin.weight.to_vector() == before);
}

TEST_CASE("SGD with momentum follows v = mu v + g, p = p - lr v", "[optim]") {
  Tensor p = Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2}).set_requires_grad(true);
  optim::SGD opt({p}, 0.1, 0.9);
  // loss = sum(p^2): g = 2p
  double p0 = 1.0, v = 0;
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    sum(square(p)).backward();
    opt.step();
    v = 0.9 * v + 2 * p0;
    p0 -= 0.1 * v;
    CHECK(p.at(0) == Approx(p0).epsilon(1e-14));
  }
}

TEST_CASE("Adam follows Kingma & Ba with bias correction", "[optim]") {
  Tensor p = Tensor::from_vector(std::vector<double>{0.5, -1.5}, {2}).set_requires_grad(true);
  optim::Adam opt({p}, 0.01);
  double x = 0.5, m = 0, v = 0;
  for (int t = 1; t <= 5; ++t) {
    opt.zero_grad();
    sum(pow(p, 3.0)).backward();  // g = 3 p^2
    opt.step();
    double g = 3 * x * x;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    double mh = m / (1 - std::pow(0.9, t)), vh = v / (1 - std::pow(0.999, t));
    x -= 0.01 * mh / (std::sqrt(vh) + 1e-8);
    CHECK(p.at(0) == Approx(x).epsilon(1e-12));
  }
  CHECK(opt.steps() == 5);
}

TEST_CASE("AdamW decays the weights directly", "[optim]") {
  Tensor p = Tensor::from_vector(std::vector<double>{2.0}, {1}).set_requires_grad(true);
  optim::AdamW opt({p}, 0.1, 0.9, 0.999, 1e-8, 0.5);
  p.set_grad(Tensor::zeros({1}, DType::Float64));  // zero gradient: only the decay acts
  opt.step();
  CHECK(p.item() == Approx(2.0 * (1 - 0.1 * 0.5)).epsilon(1e-12));
}

TEST_CASE("clip_grad_norm_ scales gradients to the maximum norm", "[optim]") {
  Tensor a = Tensor::zeros({2}, DType::Float64).set_requires_grad(true);
  Tensor b = Tensor::zeros({1}, DType::Float64).set_requires_grad(true);
  a.set_grad(Tensor::from_vector(std::vector<double>{3, 0}, {2}));
  b.set_grad(Tensor::from_vector(std::vector<double>{4}, {1}));
  double norm = optim::clip_grad_norm_({a, b}, 1.0);
  CHECK(norm == Approx(5.0));
  CHECK(a.grad().at(0) == Approx(0.6).epsilon(1e-5));
  CHECK(b.grad().at(0) == Approx(0.8).epsilon(1e-5));
  b.set_grad(Tensor::from_vector(std::vector<double>{NAN}, {1}));
  CHECK_THAT(error_of([&] { optim::clip_grad_norm_({a, b}, 1.0); }), Catch::Contains("NaN or Inf"));
}

TEST_CASE("an MLP learns two moons", "[nn][train]") {
  Generator gen(3);
  auto train = data::two_moons(256, 0.1, gen);
  auto test = data::two_moons(256, 0.1, gen);
  auto model = nn::mlp<nn::Tanh>({2, 32, 32, 2}, gen);
  optim::Adam opt(model->parameters(), 0.02);
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    cross_entropy(model->forward(train.x), train.labels).backward();
    opt.step();
  }
  NoGradGuard ng;
  Tensor pred = argmax(model->forward(test.x), 1);
  int correct = 0;
  for (int64_t i = 0; i < 256; ++i) correct += pred.at(i) == test.labels.at(i);
  CHECK(correct >= 250);
}
