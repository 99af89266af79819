// tests/test_gan.cpp — the GAN losses against their definitions, the two
// generator losses' gradients, the gradient penalty's double backward against
// finite differences, shapes, errors and determinism of the training loop.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <thread>
#include <nlohmann/json.hpp>

#include "autograd/graph.h"
#include "helpers.h"
#include "models/gan.h"
#include "models/toolkit/trainer.h"

using namespace dgm;
using namespace dgm::models;
using namespace dgm::test;

namespace {
double sig(double a) { return 1 / (1 + std::exp(-a)); }
}  // namespace

TEST_CASE("GAN losses: each is its line of V(G, D), computed from D = sigmoid(logit) by hand", "[gan]") {
  const std::vector<double> ar = {2.0, -0.5, 0.3}, af = {-1.0, 0.7, -3.0};
  const Tensor real = Tensor::from_vector(ar, {3}).to(DType::Float64), fake = Tensor::from_vector(af, {3}).to(DType::Float64);
  double d = 0, sat = 0, ns = 0;
  for (int i = 0; i < 3; ++i) {
    d += -(std::log(sig(ar[i])) + std::log(1 - sig(af[i]))) / 3;
    sat += std::log(1 - sig(af[i])) / 3;
    ns += -std::log(sig(af[i])) / 3;
  }
  CHECK(gan::discriminator_loss(real, fake).item() == Approx(d).epsilon(1e-12));
  CHECK(gan::generator_loss_saturating(fake).item() == Approx(sat).epsilon(1e-12));
  CHECK(gan::generator_loss_non_saturating(fake).item() == Approx(ns).epsilon(1e-12));
  CHECK(gan::critic_loss_wasserstein(real, fake).item() == Approx((af[0] + af[1] + af[2] - ar[0] - ar[1] - ar[2]) / 3).epsilon(1e-12));
  CHECK(gan::generator_loss_wasserstein(fake).item() == Approx(-(af[0] + af[1] + af[2]) / 3).epsilon(1e-12));
  double hinge = 0;  // E max(0, 1 - D(x)) + E max(0, 1 + D(G(z))): 1 - 2 < 0 and 1 - 0.3 = 0.7, ...
  for (int i = 0; i < 3; ++i) hinge += (std::max(0.0, 1 - ar[i]) + std::max(0.0, 1 + af[i])) / 3;
  CHECK(hinge == Approx((0 + 1.5 + 0.7 + 0 + 1.7 + 0) / 3).epsilon(1e-12));  // the same sum by hand
  CHECK(gan::discriminator_loss_hinge(real, fake).item() == Approx(hinge).epsilon(1e-12));
  // stable where D is certain: logits of +-40 give finite losses
  const Tensor extreme = Tensor::from_vector(std::vector<double>{40, -40}, {2}).to(DType::Float64);
  CHECK(std::isfinite(gan::discriminator_loss(extreme, extreme).item()));
}

TEST_CASE("GAN loss names: loss_from_name inverts loss_name, and an unknown name lists the known ones", "[gan][errors]") {
  for (gan::Loss l : {gan::Loss::Minimax, gan::Loss::NonSaturating, gan::Loss::WassersteinGP, gan::Loss::Hinge})
    CHECK(gan::loss_from_name(gan::loss_name(l)) == l);
  CHECK_THAT(error_of([] { gan::loss_from_name("hinj"); }), Catch::Contains("'hinj'") && Catch::Contains("'hinge'") && Catch::Contains("'WGAN-GP'"));
}

TEST_CASE("saturating vs non-saturating: d/da of log(1 - sigmoid(a)) is -sigmoid(a), of -log sigmoid(a) is -(1 - sigmoid(a))", "[gan]") {
  for (double a : {-8.0, -2.0, 0.0, 3.0}) {
    Tensor logit = Tensor::full({1}, a, DType::Float64).set_requires_grad(true);
    const Tensor gs = grad({gan::generator_loss_saturating(logit)}, {logit})[0];
    const Tensor gn = grad({gan::generator_loss_non_saturating(logit)}, {logit})[0];
    CHECK(gs.item() == Approx(-sig(a)).epsilon(1e-10));
    CHECK(gn.item() == Approx(-(1 - sig(a))).epsilon(1e-10));
  }
}

TEST_CASE("gradient penalty: its gradient w.r.t. the critic's parameters (double backward) matches finite differences", "[gan]") {
  Generator g(5);
  gan::MLPDiscriminator critic(2, {6, 6}, g);
  critic.to(DType::Float64);
  const Tensor real = randn({4, 2}, 1), fake = randn({4, 2}, 2);
  const Generator start(77);
  auto penalty = [&] {
    Generator u = start;  // the same interpolates every call
    return gan::gradient_penalty([&](const Tensor& x) { return critic.forward(x); }, real, fake, u, 10.0);
  };
  critic.zero_grad();
  penalty().backward();
  int64_t checked = 0;
  for (auto& [name, p] : critic.named_parameters()) {
    INFO(name);
    // the penalty reads f's gradient in x: the last layer's bias (and, with piecewise-linear
    // activations, the first layer's) do not reach it: no gradient, i.e. zero
    const Tensor analytic = p.grad().defined() ? p.grad() : Tensor::zeros(p.shape(), DType::Float64);
    Tensor q = p;
    for (int64_t e = 0; e < p.numel(); ++e) {
      CHECK(analytic.at(e) == Approx(central_difference([&] { return penalty().item(); }, q, e)).margin(1e-6).epsilon(1e-5));
      ++checked;
    }
  }
  CHECK(checked == critic.num_parameters());
  // a 1-Lipschitz linear critic with unit slope has no penalty
  gan::MLPDiscriminator linear(2, {}, g);
  linear.to(DType::Float64);
  auto params = linear.parameters();  // weight [1, 2], bias [1]
  params[0].data<double>()[0] = 0.6, params[0].data<double>()[1] = 0.8;
  Generator u(3);
  CHECK(gan::gradient_penalty([&](const Tensor& x) { return linear.forward(x); }, real, fake, u).item() == Approx(0).margin(1e-10));
}

TEST_CASE("GAN networks: shapes, a mismatched pair refused at construction, bad data and NaN named", "[gan][errors]") {
  Generator g(1);
  auto G = std::make_shared<gan::ConvGenerator>(16, 1, 8, g);
  auto D = std::make_shared<gan::ConvDiscriminator>(1, 8, g);
  gan::GAN game(G, 16, D);
  const Tensor x = game.sample(3, g);
  CHECK(x.shape() == Shape{3, 1, 28, 28});
  CHECK(min(x).item() >= 0);
  CHECK(max(x).item() <= 1);
  CHECK(D->forward(x).shape() == Shape{3});
  auto D2 = std::make_shared<gan::MLPDiscriminator>(2, std::vector<int64_t>{8}, g);
  CHECK_THAT(error_of([&] { gan::GAN bad(G, 16, D2); }), Catch::Contains("[1, 28, 28]") && Catch::Contains("[2]"));
  CHECK_THAT(error_of([&] { G->forward(g.normal({2, 15})); }), Catch::Contains("[N, 16]") && Catch::Contains("[2, 15]"));

  gan::GAN toy(std::make_shared<gan::MLPGenerator>(2, 2, std::vector<int64_t>{8}, g), 2, D2);
  gan::Options o;
  o.steps = 3;
  o.progress = false;
  CHECK_THAT(error_of([&] { gan::train(toy, g.normal({10, 3}), g, o); }), Catch::Contains("[10, 3]"));
  Tensor nan_data = g.normal({10, 2});
  nan_data.data<float>()[0] = NAN;
  for (int i = 1; i < 20; ++i) nan_data.data<float>()[i] = NAN;
  CHECK_THAT(error_of([&] { gan::train(toy, nan_data, g, o); }), Catch::Contains("discriminator") && Catch::Contains("step 1"));
}

namespace {
Tensor parameter(const nn::Module& m, const std::string& name) {
  for (const auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  throw Error("no parameter " + name);
}
}  // namespace

TEST_CASE("conditional GAN networks: labels required, zero class vectors give the unconditional networks, the projection is linear in e_y",
          "[gan][conditional]") {
  Generator g(1);
  auto G = std::make_shared<gan::ConvGenerator>(16, 1, 8, g, 3);
  auto D = std::make_shared<gan::ConvDiscriminator>(1, 8, g, 3);
  gan::GAN game(G, 16, D);
  CHECK(game.classes() == 3);
  const Tensor y = Tensor::from_indices({0, 2, 1}, {3});
  const Tensor x = game.sample_given(y, g);
  CHECK(x.shape() == Shape{3, 1, 28, 28});
  // the same parameters in unconditional networks: equal while the class vectors are 0 (they start there)
  gan::ConvGenerator G0(16, 1, 8, g);
  gan::ConvDiscriminator D0(1, 8, g);
  NoGradGuard ng;
  for (auto [from, to] : {std::pair<nn::Module*, nn::Module*>{G.get(), &G0}, {D.get(), &D0}})
    for (auto& [name, p] : to->named_parameters()) p.copy_(parameter(*from, name));
  const Tensor z = g.normal({3, 16});
  CHECK(max(abs(G->forward_given(z, y) - G0.forward(z))).item() == 0);
  CHECK(max(abs(D->forward_given(x, y) - D0.forward(x))).item() == 0);
  // D(x, y) - D(x, y') = (e_y - e_y') . phi(x): with e_k = k c for one vector c, the logits of classes 0, 1, 2 are evenly spaced
  Tensor e = parameter(*D, "class_vectors");
  const Tensor c = g.normal({1, e.size(1)}, 0, 0.01);
  e.copy_(concat({c * 0.0, c * 1.0, c * 2.0}, 0));
  const Tensor x1 = slice(x, 0, 0, 1);
  double logit[3];
  for (int64_t k = 0; k < 3; ++k) logit[k] = D->forward_given(x1, Tensor::from_indices({k}, {1})).item();
  CHECK(logit[1] - logit[0] != Approx(0).margin(1e-6));
  CHECK(logit[2] - logit[1] == Approx(logit[1] - logit[0]).epsilon(1e-4));
  // errors: labels missing, unexpected, out of range; a pair that disagrees on the classes
  CHECK_THAT(error_of([&] { G->forward(z); }), Catch::Contains("ConvGenerator") && Catch::Contains("3 classes") && Catch::Contains("forward_given"));
  CHECK_THAT(error_of([&] { D0.forward_given(x, y); }), Catch::Contains("not class-conditional"));
  CHECK_THAT(error_of([&] { D->forward_given(x, Tensor::from_indices({0, 3, 1}, {3})); }), Catch::Contains("label 3 of example 1"));
  CHECK_THAT(error_of([&] { gan::GAN bad(G, 16, std::make_shared<gan::ConvDiscriminator>(1, 8, g)); }),
             Catch::Contains("3 classes") && Catch::Contains("0"));
  CHECK(nlohmann::json::parse(G->config_json()).at("classes") == 3);
  CHECK_FALSE(nlohmann::json::parse(G0.config_json()).contains("classes"));
}

TEST_CASE("conditional GAN training: G(z, y) learns which class is dark and which bright; train and train_given refuse the other game",
          "[gan][conditional]") {
  Generator g(5);
  // class 0: dark images (grey 0.1), class 1: bright ones (0.9), each with a little noise
  const int64_t n = 64;
  Tensor labels = Tensor::from_indices(std::vector<int64_t>(n, 0), {n});
  for (int64_t i = n / 2; i < n; ++i) labels.data<int64_t>()[i] = 1;
  const Tensor level = reshape(labels.to(DType::Float32) * 0.8 + 0.1, {n, 1, 1, 1});
  const Tensor data = clamp(level + g.normal({n, 1, 28, 28}, 0, 0.02), 0, 1);
  gan::GAN game(std::make_shared<gan::ConvGenerator>(8, 1, 8, g, 2), 8, std::make_shared<gan::ConvDiscriminator>(1, 8, g, 2));
  gan::Options o;
  o.steps = 150, o.batch_size = 16, o.lr = 2e-3, o.progress = false;
  gan::train_given(game, data, labels, g, o);
  const double dark = mean(game.sample_given(Tensor::from_indices(std::vector<int64_t>(32, 0), {32}), g)).item();
  const double bright = mean(game.sample_given(Tensor::from_indices(std::vector<int64_t>(32, 1), {32}), g)).item();
  INFO("G(z, 0) mean " << dark << ", G(z, 1) mean " << bright);
  CHECK(dark < 0.3);
  CHECK(bright > 0.7);
  CHECK_THAT(error_of([&] { gan::train(game, data, g, o); }), Catch::Contains("train_given"));
  gan::GAN plain(std::make_shared<gan::ConvGenerator>(8, 1, 8, g), 8, std::make_shared<gan::ConvDiscriminator>(1, 8, g));
  CHECK_THAT(error_of([&] { gan::train_given(plain, data, labels, g, o); }), Catch::Contains("unconditional"));
  CHECK_THAT(error_of([&] { gan::train_given(game, data, slice(labels, 0, 0, 10), g, o); }), Catch::Contains("int64 [64]") && Catch::Contains("[10]"));
}

TEST_CASE("GAN training: the same seed gives the same curve and samples, for each loss", "[gan]") {
  for (gan::Loss loss : {gan::Loss::Minimax, gan::Loss::NonSaturating, gan::Loss::WassersteinGP, gan::Loss::Hinge}) {
    INFO(gan::loss_name(loss));
    auto run = [&](uint64_t seed) {
      Generator g(seed);
      gan::GAN game(std::make_shared<gan::MLPGenerator>(2, 2, std::vector<int64_t>{8}, g), 2,
                    std::make_shared<gan::MLPDiscriminator>(2, std::vector<int64_t>{8}, g));
      gan::Options o;
      o.loss = loss;
      o.steps = 6;
      o.n_critic = loss == gan::Loss::WassersteinGP ? 2 : 1;
      o.log_every = 2;
      o.progress = false;
      const gan::Result r = gan::train(game, g.normal({32, 2}), g, o);
      std::vector<double> out;
      for (auto& row : r.curve) out.insert(out.end(), row.begin(), row.end());
      for (double v : game.sample(4, g).to_vector()) out.push_back(v);
      return out;
    };
    const std::vector<double> a = run(3);
    CHECK(a == run(3));
    CHECK(a != run(4));
    CHECK(a.size() == 3 * 3 + 8);
  }
}

TEST_CASE("GAN training: time spent in `every` (an evaluation) is not training time: off max_seconds and Result::seconds", "[gan]") {
  Generator g(5);
  gan::GAN game(std::make_shared<gan::MLPGenerator>(2, 2, std::vector<int64_t>{8}, g), 2,
                std::make_shared<gan::MLPDiscriminator>(2, std::vector<int64_t>{8}, g));
  gan::Options o;
  o.steps = 1000000;
  o.max_seconds = 0.2;
  o.progress = false;
  o.every_steps = 1;
  int calls = 0;
  const double pause = 0.25;  // the first call alone outlasts the budget
  o.every = [&](int64_t) {
    if (++calls == 1) std::this_thread::sleep_for(std::chrono::duration<double>(pause));
  };
  const auto start = std::chrono::steady_clock::now();
  const gan::Result r = gan::train(game, g.normal({32, 2}), g, o);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.steps << " steps, " << calls << " calls, Result::seconds " << r.seconds << ", wall " << wall);
  CHECK(r.steps > 2);  // counted as training, the pause would end the run at step 2 (step 1 had already been let through)
  CHECK(calls >= 1);
  CHECK(r.seconds >= o.max_seconds);                 // the budget was spent on training
  CHECK(wall - r.seconds >= pause * 0.99);           // and the pause is not in it
}

TEST_CASE("GAN training writes each network's checkpoint with a JSON of its class and constructor arguments", "[gan]") {
  Generator g(4);
  gan::GAN game(std::make_shared<gan::MLPGenerator>(3, 2, std::vector<int64_t>{8, 6}, g), 3,
                std::make_shared<gan::MLPDiscriminator>(2, std::vector<int64_t>{5}, g));
  gan::Options o;
  o.steps = 2;
  o.progress = false;
  o.tag = "tiny";
  o.out_dir = temp_path("dgm-gan-json", "");
  o.data_transform = "points as they are";
  gan::train(game, g.normal({16, 2}), g, o);
  const std::string j = read_text(std::filesystem::path(o.out_dir) / "tiny_generator.json");
  CHECK(j.find("\"model\": \"MLPGenerator\"") != std::string::npos);
  CHECK(j.find("\"latent\": 3") != std::string::npos);
  CHECK(j.find("\"data_transform\": \"points as they are\"") != std::string::npos);
  CHECK(std::filesystem::exists(std::filesystem::path(o.out_dir) / "tiny_discriminator.json"));
  CHECK(game.discriminator->config_json() == "{\"dims\":2,\"hidden\":[5],\"model\":\"MLPDiscriminator\"}");
}

TEST_CASE("GAN training: N generator steps, a stop and --resume give the parameters of one run (bit for bit)", "[gan][resume]") {
  const std::string out = temp_path("dgm-gan-resume", "");
  const Tensor data = Generator(5).normal({64, 2});  // float32, as the GAN's noise is
  auto game = [](uint64_t seed) {
    Generator g(seed);
    gan::GAN m(std::make_shared<gan::MLPGenerator>(2, 2, std::vector<int64_t>{8}, g), 2,
               std::make_shared<gan::MLPDiscriminator>(2, std::vector<int64_t>{8}, g));
    return m;
  };
  auto options = [&](int64_t stop_after) {
    gan::Options o;
    o.loss = gan::Loss::WassersteinGP;  // the gradient penalty draws from the generator too
    o.n_critic = 2, o.steps = 30, o.batch_size = 16, o.log_every = 4, o.progress = false, o.tag = "toy", o.out_dir = out;
    o.every_steps = 1;
    o.every = [stop_after](int64_t step) {
      if (step == stop_after) dgm::train::request_stop();
    };
    return o;
  };
  std::filesystem::remove_all(out);
  gan::GAN one = game(1);
  Generator g1(9);
  const gan::Result a = gan::train(one, data, g1, options(0));
  std::filesystem::remove_all(out);
  gan::GAN first = game(1);
  Generator g2(9);
  CHECK_THROWS_AS(gan::train(first, data, g2, options(11)), dgm::train::Interrupted);
  dgm::train::clear_stop();
  gan::GAN resumed = game(77);  // another initialisation and generator: both come from the state
  Generator g3(1234);
  gan::Options r = options(0);
  r.resume = true;
  const gan::Result b = gan::train(resumed, data, g3, r);
  CHECK(b.steps == a.steps);
  CHECK(b.curve == a.curve);
  for (auto [x, y] : {std::pair<gan::Network*, gan::Network*>{one.generator.get(), resumed.generator.get()},
                      {one.discriminator.get(), resumed.discriminator.get()}}) {
    const auto px = x->parameters(), py = y->parameters();
    for (size_t i = 0; i < px.size(); ++i) CHECK(max(abs(px[i] - py[i])).item() == 0.0);
  }
  CHECK(g3.state() == g1.state());
}
