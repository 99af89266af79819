// tests/test_flows.cpp — every bijector of models/flows.h: invertible (float64,
// 1e-10), its log-det equal to log |det| of the full Jacobian (built by the
// engine, one backward per row), its log-det path gradient-checked, and flows
// saved and reloaded give the same log-likelihoods.
#include <cmath>
#include <functional>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "helpers.h"
#include "lessons/common/numerics.h"
#include "models/flows.h"
#include "models/toolkit/distributions.h"
#include "models/toolkit/linalg.h"

using namespace dgm;
using namespace dgm::models;
using namespace dgm::test;

namespace {

// n copies of the one row of x, [n, D]
Tensor repeat_rows(const Tensor& x, int64_t n) { return concat(std::vector<Tensor>(static_cast<size_t>(n), x), 0); }

// Moves every parameter off its initial value (couplings start as the
// identity: their last layer is zero), so that the checks see a real layer.
void jiggle(nn::Module& m, uint64_t seed, double scale = 0.3) {
  Generator g(seed);
  NoGradGuard ng;
  for (auto& p : m.parameters()) p.add_(g.normal(p.shape(), 0, scale, p.dtype()));
}

// A fresh float64 layer from `make`, trained-looking (jiggled), in eval mode.
template <class Make>
std::shared_ptr<flows::Bijector> layer(Make make, uint64_t seed = 1) {
  std::shared_ptr<flows::Bijector> b = make();
  b->to(DType::Float64);
  jiggle(*b, seed);
  b->eval();
  return b;
}

struct Case {
  std::string name;
  std::function<std::shared_ptr<flows::Bijector>()> make;
  Shape example;  // one example's shape
  double lo = -1.5, hi = 1.5;  // input range
};

std::vector<Case> cases() {
  Generator g(3);
  std::vector<Case> cs;
  cs.push_back({"additive coupling (MLP)", [] {
                  Generator gg(1);
                  return std::make_shared<flows::AdditiveCoupling>(flows::alternating_mask(5, 0), flows::coupling_mlp(5, {8}, 5, gg));
                }, Shape{5}});
  cs.push_back({"affine coupling (MLP)", [] {
                  Generator gg(2);
                  return std::make_shared<flows::AffineCoupling>(flows::alternating_mask(6, 1), flows::coupling_mlp(6, {8, 8}, 12, gg));
                }, Shape{6}});
  cs.push_back({"affine coupling (checkerboard, ResNet)", [] {
                  Generator gg(3);
                  return std::make_shared<flows::AffineCoupling>(flows::checkerboard_mask(2, 4, 4, 0), flows::coupling_resnet(2, 4, 1, 4, gg));
                }, Shape{2, 4, 4}});
  cs.push_back({"affine coupling (channels, ResNet)", [] {
                  Generator gg(4);
                  return std::make_shared<flows::AffineCoupling>(flows::channel_mask(4, 1), flows::coupling_resnet(4, 4, 1, 8, gg));
                }, Shape{4, 2, 2}});
  cs.push_back({"diagonal scaling", [] { return std::make_shared<flows::Scaling>(Shape{4}); }, Shape{4}});
  cs.push_back({"actnorm (vectors)", [] { return std::make_shared<flows::ActNorm>(3); }, Shape{3}});
  cs.push_back({"actnorm (images)", [] { return std::make_shared<flows::ActNorm>(2); }, Shape{2, 3, 3}});
  cs.push_back({"invertible 1x1 conv", [] {
                  Generator gg(5);
                  return std::make_shared<flows::Invertible1x1Conv>(3, gg);
                }, Shape{3, 2, 2}});
  cs.push_back({"squeeze", [] { return std::make_shared<flows::Squeeze>(); }, Shape{2, 4, 4}});
  cs.push_back({"logit transform", [] { return std::make_shared<flows::LogitTransform>(0.05); }, Shape{6}, 0.02, 0.98});
  cs.push_back({"chain (actnorm, 1x1 conv, coupling, squeeze)", [] {
                  Generator gg(6);
                  auto c = std::make_shared<flows::Chain>();
                  c->add(std::make_shared<flows::ActNorm>(2));
                  c->add(std::make_shared<flows::Invertible1x1Conv>(2, gg));
                  c->add(std::make_shared<flows::AffineCoupling>(flows::checkerboard_mask(2, 4, 4, 1), flows::coupling_resnet(2, 4, 1, 4, gg)));
                  c->add(std::make_shared<flows::Squeeze>());
                  return c;
                }, Shape{2, 4, 4}});
  cs.push_back({"multi-scale image flow (with 1x1 convs)", [] {
                  Generator gg(7);
                  ImageFlowOptions o;
                  o.channels = 1, o.height = 4, o.width = 4, o.scales = 2, o.steps = 1, o.hidden = 4, o.conv1x1 = true;
                  auto flow = make_image_flow(o, gg);
                  return std::shared_ptr<flows::Bijector>(flow, &flow->bijector());  // keeps the flow alive
                }, Shape{1, 4, 4}, 0.02, 0.98});
  return cs;
}

Shape batch_of(int64_t n, const Shape& ex) {
  Shape s{n};
  for (int64_t d : ex) s.push_back(d);
  return s;
}

}  // namespace

TEST_CASE("every bijector: the inverse undoes the forward in float64 (1e-10)", "[flows]") {
  for (const Case& c : cases()) {
    INFO(c.name);
    auto b = layer(c.make);
    Tensor x = rand(batch_of(7, c.example), c.lo, c.hi, 11);
    Tensor back = b->inverse(b->forward_flow(x).z);
    REQUIRE(back.shape() == x.shape());
    double worst = 0;
    for (int64_t i = 0; i < x.numel(); ++i) worst = std::max(worst, std::abs(back.at(i) - x.at(i)));
    CHECK(worst < 1e-10);
  }
}

TEST_CASE("every bijector: its log-det equals log |det| of the full Jacobian", "[flows]") {
  for (const Case& c : cases()) {
    INFO(c.name);
    auto b = layer(c.make);
    for (uint64_t seed = 1; seed <= 3; ++seed) {
      Tensor x = rand(batch_of(1, c.example), c.lo, c.hi, seed);
      const Tensor J = jacobian([&](const Tensor& xi) { return b->forward_flow(xi).z; }, x);
      REQUIRE(J.size(0) == J.size(1));
      const double closed_form = b->forward_flow(x).log_det.item();
      CHECK(closed_form == Approx(linalg::log_abs_det(J)).margin(1e-9));
    }
  }
}

TEST_CASE("every bijector: the log-det path's gradient matches finite differences", "[flows]") {
  for (const Case& c : cases()) {
    INFO(c.name);
    auto b = layer(c.make);
    Tensor x = rand(batch_of(2, c.example), c.lo, c.hi, 5);
    // z and log_det together, as the likelihood uses them
    require_gradcheck([&](const std::vector<Tensor>& in) {
      flows::Flowed f = b->forward_flow(in[0]);
      return sum(square(f.z)) * 0.5 - sum(f.log_det);
    }, {x});
  }
}

TEST_CASE("couplings have a triangular Jacobian: the transformed part never moves the kept part", "[flows]") {
  Generator g(8);
  auto b = layer([&] { return std::make_shared<flows::AffineCoupling>(flows::alternating_mask(4, 0), flows::coupling_mlp(4, {8}, 8, g)); });
  const Tensor J = jacobian([&](const Tensor& xi) { return b->forward_flow(xi).z; }, rand({1, 4}, -1, 1, 3));
  for (int64_t kept : {0, 2}) {
    for (int64_t e = 0; e < 4; ++e) CHECK(J.at(kept * 4 + e) == (e == kept ? 1.0 : 0.0));  // z_kept = x_kept
  }
}

TEST_CASE("the 1x1 convolution: LU factors multiply back, and sum(log_s) is log |det W|", "[flows]") {
  Generator g(9);
  const Tensor A = g.normal({5, 5}, 0, 1, DType::Float64);
  const linalg::LU f = linalg::lu(A);
  const Tensor back = matmul(f.P, matmul(f.L, f.U));
  for (int64_t i = 0; i < 25; ++i) CHECK(back.at(i) == Approx(A.at(i)).margin(1e-12));
  flows::Invertible1x1Conv conv(5, g);
  conv.to(DType::Float64);
  jiggle(conv, 4);
  const double log_det_w = linalg::log_abs_det(conv.weight());
  CHECK(sum(conv.log_s).item() == Approx(log_det_w).margin(1e-10));
  // a fresh one starts as a rotation: |det W| = 1
  flows::Invertible1x1Conv fresh(4, g);
  CHECK(std::abs(linalg::log_abs_det(fresh.weight().to(DType::Float64))) < 1e-5);
}

TEST_CASE("actnorm initialises from the first training batch: zero mean, unit variance per channel", "[flows]") {
  flows::ActNorm a(3);
  Generator g(10);
  Tensor x = g.normal({64, 3, 4, 4}, 2.0, 3.0);
  Tensor z = a.forward_flow(x).z;
  Tensor m = mean(z, {0, 2, 3}), v = var(z, {0, 2, 3}, false, false);
  for (int64_t c = 0; c < 3; ++c) {
    CHECK(std::abs(m.at(c)) < 1e-4);
    CHECK(v.at(c) == Approx(1.0).epsilon(1e-3));
  }
  // a second batch does not re-initialise
  const double b0 = a.bias.at(0);
  a.forward_flow(g.normal({64, 3, 4, 4}, -5.0, 1.0));
  CHECK(a.bias.at(0) == b0);
}

TEST_CASE("a flow integrates to one: NICE and RealNVP in 2-D on a grid", "[flows]") {
  Generator g(11);
  for (auto flow : {make_nice(2, 4, {16}, g, 0, Prior::Gaussian), make_realnvp(2, 4, {16}, g)}) {
    INFO(flow->name());
    flow->to(DType::Float64);
    jiggle(*flow, 2, 0.2);
    flow->eval();
    const int n = 800;
    const double lo = -20, hi = 20, h = (hi - lo) / n;
    Tensor grid = Tensor::empty({n * n, 2}, DType::Float64);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) {
        grid.data<double>()[2 * (i * n + j)] = lo + (i + 0.5) * h;
        grid.data<double>()[2 * (i * n + j) + 1] = lo + (j + 0.5) * h;
      }
    NoGradGuard ng;
    CHECK(sum(exp(flow->log_prob(grid))).item() * h * h == Approx(1.0).margin(2e-3));
  }
}

TEST_CASE("dequantized flows: log_prob is a lower bound on log P(levels), the mass of the cell by Monte Carlo; samples lie on the levels", "[flows]") {
  Generator g(12);
  auto flow = make_realnvp(4, 2, {8}, g, /*levels=*/17);
  flow->to(DType::Float64);
  jiggle(*flow, 3, 0.2);
  Tensor x = Tensor::from_vector(std::vector<double>{0, 1, 0.5, 0.25, 1, 1, 0, 0.0625}, {2, 4});
  Generator noise_copy = flow->noise();
  const Tensor lp = flow->log_prob(x);
  flow->noise() = noise_copy;  // the same dequantization noise
  const Tensor u = flow->dequantize(x);
  for (int64_t i = 0; i < u.numel(); ++i) {
    CHECK(u.at(i) >= std::round(x.at(i) * 16) / 17);
    CHECK(u.at(i) < (std::round(x.at(i) * 16) + 1) / 17);
  }
  // route 2: P(x) = int over x's cell of p_u(u) du = (1/17)^4 E_{u ~ U(cell)} p_u(u), by Monte Carlo; by Jensen
  // E[log_prob(x)] <= log P(x) (the dequantization bound), within the two estimates' standard errors
  NoGradGuard ng;
  const int64_t draws = 20000;
  for (int64_t n = 0; n < 2; ++n) {
    const Tensor xn = repeat_rows(slice(x, 0, n, n + 1), draws);
    const std::vector<double> dens = exp(flow->log_prob_continuous(flow->dequantize(xn))).to_vector();
    const std::vector<double> bound = flow->log_prob(xn).to_vector();
    const auto [p_mean, p_se] = lesson::mean_and_se(dens);
    const auto [b_mean, b_se] = lesson::mean_and_se(bound);
    const double log_mass = std::log(p_mean) - 4 * std::log(17.0);
    INFO("example " << n << ": E log_prob " << b_mean << ", log P by Monte Carlo " << log_mass);
    CHECK(b_mean <= log_mass + 4 * (b_se + p_se / p_mean));  // (without the - D log 17 it would be 11.3 nats above)
  }
  Tensor s = flow->sample(20, g);
  for (int64_t i = 0; i < s.numel(); ++i) CHECK(std::abs(s.at(i) * 16 - std::round(s.at(i) * 16)) < 1e-9);
}

TEST_CASE("a flow saved and reloaded gives the same log-likelihoods", "[flows]") {
  Generator g(13);
  ImageFlowOptions o;
  o.height = 4, o.width = 4, o.steps = 1, o.hidden = 4, o.levels = 17, o.conv1x1 = true;
  auto flow = make_image_flow(o, g);
  Tensor x = dist::index_to_levels(g.randint({8, 1, 4, 4}, 0, 17), 17);
  flow->log_prob(x);  // training mode: the actnorms initialise
  jiggle(*flow, 5, 0.1);
  const std::string path = temp_path("dgm_flows", "image_flow.safetensors");
  save_checkpoint(*flow, path);
  Generator other(77);
  auto fresh = make_image_flow(o, other);
  load_checkpoint(*fresh, path);
  Tensor u = flow->dequantize(x);
  const Tensor a = flow->log_prob_continuous(u), b = fresh->log_prob_continuous(u);  // fresh stays in training mode
  for (int64_t n = 0; n < 8; ++n) CHECK(a.at(n) == b.at(n));
}

TEST_CASE("flows reject bad input with the layer and the shapes", "[flows][errors]") {
  Generator g(14);
  auto flow = make_realnvp(4, 2, {8}, g);
  CHECK_THAT(error_of([&] { flow->log_prob(g.normal({3, 5})); }), Catch::Contains("[4]") && Catch::Contains("[3, 5]"));
  flows::Chain chain;
  chain.add(std::make_shared<flows::ActNorm>(4));
  chain.add(std::make_shared<flows::AffineCoupling>(flows::alternating_mask(4, 0), flows::coupling_mlp(4, {8}, 8, g)));
  // a scale of exp(-inf) = 0: the layer is not invertible
  {
    NoGradGuard ng;
    chain.forward_flow(g.normal({8, 4}));  // initialise the actnorm
    dynamic_cast<flows::ActNorm&>(chain[0]).log_scale.fill_(-INFINITY);
  }
  const std::string msg = error_of([&] { chain.forward_flow(g.normal({8, 4})); });
  CHECK_THAT(msg, Catch::Contains("flow layer 0 (actnorm)") && Catch::Contains("not invertible"));
  auto img = make_image_flow(ImageFlowOptions{}, g);
  CHECK_THAT(error_of([&] { img->log_prob(Tensor::zeros({2, 1, 8, 8})); }), Catch::Contains("[1, 28, 28]"));
  CHECK_THAT(error_of([&] { flows::LogitTransform(0.05).forward_flow(Tensor::full({1, 3}, 2.0)); }),
             Catch::Contains("[0, 1]"));
}
