// The shared trainer and evaluator: what every lesson's training relies on.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "autograd/checkpoint.h"
#include "autograd/graph.h"
#include "helpers.h"
#include "models/flows.h"
#include "models/mixtures.h"
#include "models/toolkit/progress.h"
#include "models/toolkit/trainer.h"
#include "models/toolkit/transforms.h"
#include "models/vae.h"

using namespace dgm;
using namespace dgm::test;

namespace {

// 2-D points from N(m, diag(v)), float64.
Tensor gaussian_points(int64_t n, Generator& g) {
  Tensor x = g.normal({n, 2}, 0, 1, DType::Float64);
  return x * Tensor::from_vector(std::vector<double>{0.7, 1.4}, {2}) + Tensor::from_vector(std::vector<double>{1.0, -2.0}, {2});
}

// The maximum-likelihood Gaussian's mean NLL on the data (closed form: sample mean and covariance).
double mle_gaussian_nll(const Tensor& X) {
  const double n = static_cast<double>(X.size(0));
  double m0 = 0, m1 = 0;
  for (int64_t i = 0; i < X.size(0); ++i) m0 += X.at(2 * i), m1 += X.at(2 * i + 1);
  m0 /= n, m1 /= n;
  double a = 0, b = 0, c = 0;
  for (int64_t i = 0; i < X.size(0); ++i) {
    const double u = X.at(2 * i) - m0, v = X.at(2 * i + 1) - m1;
    a += u * u / n, b += u * v / n, c += v * v / n;
  }
  return std::log(2 * M_PI) + 0.5 * std::log(a * c - b * b) + 1.0;  // D/2 log 2 pi + log|S|/2 + D/2
}

models::GaussianMixture one_component(double mean, double var) {
  models::GaussianMixture m;
  m.weights = Tensor::ones({1}, DType::Float64);
  m.means = Tensor::full({1, 2}, mean, DType::Float64);
  m.covs = Tensor::zeros({1, 2, 2}, DType::Float64);
  m.covs.data<double>()[0] = m.covs.data<double>()[3] = var;
  return m;
}

}  // namespace

TEST_CASE("fit: full-batch Adam reaches the maximum-likelihood Gaussian's NLL (closed form)", "[trainer]") {
  Generator g(1);
  Tensor X = gaussian_points(500, g);
  models::GaussianMixtureGradient model(one_component(0.0, 1.0));
  train::FitOptions o;
  o.epochs = 3000;
  o.batch_size = 500;
  o.lr = 0.02;
  o.progress = false;
  const train::FitResult r = train::fit(model, X, X, g, o);
  const double mle = mle_gaussian_nll(X);
  CHECK(r.best_validation == Approx(mle).margin(1e-6));
  CHECK(r.best_validation >= mle - 1e-9);  // nothing beats the MLE on its own data
  CHECK(train::evaluate(model, X).nll_nats == Approx(mle).margin(1e-6));
}

TEST_CASE("fit: keep_best restores the parameters of the best validation, and patience stops early", "[trainer]") {
  Generator g(2);
  Tensor X = gaussian_points(64, g);
  models::GaussianMixtureGradient model(one_component(0.0, 1.0));
  // a scripted validation curve: best at epoch 2, then worse
  const std::vector<double> scripted = {5, 3, 4, 6, 7, 8, 9, 10};
  int calls = 0;
  std::vector<Tensor> means_at;  // the means after each epoch
  train::FitOptions o;
  o.epochs = 8;
  o.batch_size = 16;
  o.lr = 0.05;
  o.progress = false;
  o.patience = 3;
  o.extra_columns = {"unused"};
  o.extra = [&] {
    means_at.push_back(model.means.contiguous_copy());
    return std::vector<double>{0};
  };
  const train::FitResult r = train::fit(model, X, Tensor(), g, o, [&] { return scripted[static_cast<size_t>(calls++)]; });
  CHECK(r.best_epoch == 2);
  CHECK(r.best_validation == 3);
  CHECK(r.stopped_early);
  CHECK(r.epochs_run == 5);  // epochs 3, 4, 5 brought no gain
  REQUIRE(means_at.size() == 5);
  for (int64_t i = 0; i < 2; ++i) CHECK(model.means.at(i) == means_at[1].at(i));  // epoch 2's parameters
  CHECK(model.means.at(0) != means_at[4].at(0));
}

TEST_CASE("fit: a NaN loss stops training with an error naming the step", "[trainer]") {
  Generator g(3);
  models::GaussianMixtureGradient model(one_component(0.0, 1.0));
  Tensor X = gaussian_points(40, g);
  int64_t step = 0;
  train::FitOptions o;
  o.epochs = 3;
  o.batch_size = 10;
  o.progress = false;
  o.tag = "nan_probe";
  const std::string msg = error_of([&] {
    train::fit(model, X.size(0),
               [&](const Tensor& idx) {
                 Tensor l = neg(mean(model.log_prob(index_select(X, 0, idx))));
                 return step++ == 6 ? l * NAN : l;
               },
               {}, g, o);
  });
  INFO(msg);
  CHECK(msg.find("diverged") != std::string::npos);
  CHECK(msg.find("at step 6") != std::string::npos);
  CHECK(msg.find("nan_probe") != std::string::npos);
}

TEST_CASE("fit writes the curve and a checkpoint that loads back into a fresh model", "[trainer]") {
  const std::string dir = temp_path("dgm_trainer", "");
  Generator g(4);
  Tensor X = gaussian_points(256, g).to(DType::Float32);
  models::RealNVP2D flow(2, 16, g);
  train::FitOptions o;
  o.epochs = 3;
  o.batch_size = 64;
  o.progress = false;
  o.tag = "probe_flow";
  o.out_dir = dir;
  const train::FitResult r = train::fit(flow, X, X, g, o);
  CHECK(r.curve.size() == 3);
  CHECK(std::filesystem::exists(dir + "/probe_flow_curve.csv"));
  CHECK(std::filesystem::exists(dir + "/probe_flow.json"));
  Generator other(99);
  models::RealNVP2D fresh(2, 16, other);
  load_checkpoint(fresh, dir + "/probe_flow.safetensors");
  CHECK(train::evaluate(fresh, X).nll_nats == train::evaluate(flow, X).nll_nats);
}

TEST_CASE("evaluate: chunks do not change the figure, and bits per dimension = nats / (D ln 2)", "[trainer]") {
  Generator g(5);
  Tensor X = gaussian_points(103, g);
  models::GaussianMixture m = one_component(0.5, 2.0);
  const train::Evaluation a = train::evaluate(m, X, 7), b = train::evaluate(m, X, 1000);
  CHECK(a.nll_nats == Approx(b.nll_nats).epsilon(1e-13));
  CHECK(a.dims == 2);
  CHECK(a.bits_per_dim == Approx(a.nll_nats / (2 * std::log(2.0))).epsilon(1e-15));
  CHECK(a.kind == "exact");
}

TEST_CASE("RealNVP2D: the inverse undoes the flow, and log_prob matches the change of variables by the Jacobian", "[flows]") {
  Generator g(6);
  models::RealNVP2D flow(4, 16, g);
  flow.to(DType::Float64);
  Tensor x = g.normal({50, 2}, 0, 1, DType::Float64);
  auto f = flow.forward_flow(x);
  Tensor back = flow.inverse(f.z);
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(back.at(i) == Approx(x.at(i)).margin(1e-12));
  // log |det J| from the full 2x2 Jacobian (two backward passes) for a few points
  for (int64_t n = 0; n < 5; ++n) {
    Tensor xi = slice(x, 0, n, n + 1).contiguous_copy().set_requires_grad(true);
    Tensor z = flow.forward_flow(xi).z;
    Tensor r0 = grad({select(z, 1, 0)}, {xi}, {}, true)[0], r1 = grad({select(z, 1, 1)}, {xi})[0];
    const double det = r0.at(0) * r1.at(1) - r0.at(1) * r1.at(0);
    CHECK(f.log_det.at(n) == Approx(std::log(std::abs(det))).margin(1e-10));
  }
}

TEST_CASE("fit: max_steps and max_seconds stop training; validate_every_steps puts a row every N steps", "[trainer]") {
  Generator g(7);
  Tensor X = gaussian_points(100, g);
  models::GaussianMixtureGradient model(one_component(0.0, 1.0));
  train::FitOptions o;
  o.epochs = 3;
  o.batch_size = 10;
  o.progress = false;
  o.max_steps = 25;  // 2.5 epochs of 10 batches
  o.validate_every_steps = 4;
  int validations = 0;
  const train::FitResult r = train::fit(model, X, Tensor(), g, o, [&] { return static_cast<double>(++validations); });
  CHECK(r.steps == 25);
  CHECK(r.out_of_time);
  CHECK(r.epochs_run == 2);  // passes completed
  REQUIRE(r.curve.size() == 7);  // steps 4, 8, ..., 24, and the last one at 25
  CHECK(r.curve[0][0] == Approx(0.4));  // x: epochs, fractional between them
  CHECK(r.curve[5][0] == Approx(2.4));
  CHECK(r.curve[6][0] == Approx(2.5));
  CHECK(validations == 7);
  // a limit already reached after the first step: one step, one validation, then stop
  o.max_steps = 0, o.validate_every_steps = 0;
  o.epochs = 50;
  o.max_seconds = 1e-9;
  validations = 0;
  const train::FitResult t = train::fit(model, X, Tensor(), g, o, [&] { return static_cast<double>(++validations); });
  CHECK(t.out_of_time);
  CHECK(t.steps == 1);
  CHECK(t.epochs_run == 0);
  CHECK(validations == 1);
  CHECK(t.curve.size() == 1);
}

TEST_CASE("fit: seconds_column puts the training time (validations included) as the curve's last column", "[trainer]") {
  const std::string dir = temp_path("dgm_trainer_seconds", "");
  Generator g(7);
  Tensor X = gaussian_points(100, g);
  models::GaussianMixtureGradient model(one_component(0.0, 1.0));
  train::FitOptions o;
  o.epochs = 3, o.batch_size = 10, o.progress = false, o.tag = "timed", o.out_dir = dir, o.checkpoint = false;
  o.validate_every_steps = 10;  // a row per epoch
  o.seconds_column = true;
  auto slow_validation = [] {  // 30 ms each: the column must count them
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    return 1.0;
  };
  const train::FitResult r = train::fit(model, X, Tensor(), g, o, slow_validation);
  REQUIRE(r.curve.size() == 3);
  for (size_t i = 0; i < r.curve.size(); ++i) {
    REQUIRE(r.curve[i].size() == 4);  // epoch, train, validation, train_seconds
    CHECK(r.curve[i][3] >= 0.03 * static_cast<double>(i + 1));
    if (i > 0) CHECK(r.curve[i][3] - r.curve[i - 1][3] >= 0.03);
  }
  CHECK(r.curve.back()[3] <= r.seconds);
  std::ifstream csv(dir + "/timed_curve.csv");
  std::string header;
  std::getline(csv, header);
  CHECK(header.size() >= 13);
  CHECK(header.substr(header.size() - 13) == "train_seconds");
}

TEST_CASE("fit: a snapshot sees what a run stopped there ends with, costs no training time, and leaves the run as it was",
          "[trainer]") {
  Generator data(7);
  const Tensor X = gaussian_points(100, data);
  auto values = [](const nn::Module& m) {
    std::vector<double> v;
    for (const Tensor& p : m.parameters())
      for (double x : p.contiguous_copy().to_vector()) v.push_back(x);
    return v;
  };
  auto options = [](int64_t steps) {
    train::FitOptions o;
    o.epochs = 100, o.batch_size = 10, o.progress = false, o.max_steps = steps, o.ema = 0.9;
    o.before_step = [](const train::StepInfo&) { std::this_thread::sleep_for(std::chrono::milliseconds(1)); };  // each step >= 1 ms
    return o;
  };
  auto run = [&](const train::FitOptions& o, std::vector<double>* params) {
    models::GaussianMixtureGradient model(one_component(0.0, 1.0));
    Generator g(3);
    const train::FitResult r = train::fit(model, X, Tensor(), g, o);
    *params = values(model);
    return r;
  };
  train::FitOptions o = options(60);
  o.snapshot_seconds = {0.01, 0.03};
  std::vector<int64_t> snapshot_steps;
  std::vector<std::vector<double>> snapshot_params;
  models::GaussianMixtureGradient* watched = nullptr;
  models::GaussianMixtureGradient model(one_component(0.0, 1.0));
  watched = &model;
  o.at_snapshot = [&](double seconds, int64_t steps) {
    CHECK(seconds >= 0.01);
    snapshot_steps.push_back(steps);
    snapshot_params.push_back(values(*watched));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));  // far more than the whole run's training
  };
  Generator g(3);
  const train::FitResult r = train::fit(model, X, Tensor(), g, o);
  REQUIRE(snapshot_steps.size() == 2);
  CHECK(r.steps == 60);
  CHECK(r.seconds < 0.25);  // the 300 ms of snapshots are not training time
  // the run itself is the run without snapshots, bit for bit
  std::vector<double> plain;
  run(options(60), &plain);
  CHECK(values(model) == plain);
  // each snapshot held the average a run stopped at that step ends with (not the live parameters)
  for (size_t i = 0; i < snapshot_steps.size(); ++i) {
    INFO("snapshot " << i << " at step " << snapshot_steps[i]);
    std::vector<double> stopped;
    run(options(snapshot_steps[i]), &stopped);
    CHECK(snapshot_params[i] == stopped);
  }
}

namespace {

// A small float64 VAE: its own noise generator (the reparameterisation), data binarized afresh
// from the loop's generator, validation with keep-best: every piece of state a resume must restore.
struct ResumeCase {
  Tensor train = Generator(21).uniform({40, 8}, 0, 1, DType::Float64);
  Tensor validation = Generator(22).bernoulli({16, 8}, 0.4, DType::Float64);
  std::string out;  // one folder per test case: ctest runs them in parallel
  explicit ResumeCase(const std::string& folder) : out(temp_path(folder, "")) {}

  std::shared_ptr<models::VAE> model(uint64_t seed) const {
    Generator g(seed);
    auto m = std::make_shared<models::VAE>(8, std::vector<int64_t>{16}, 4, models::Decoder::Bernoulli, g);
    m->to(DType::Float64);
    m->iwae_k = 1;
    return m;
  }
  train::FitOptions options(Generator& gen, int epochs) const {
    train::FitOptions o;
    o.epochs = epochs, o.batch_size = 8, o.lr = 3e-3, o.progress = false, o.tag = "vae_resume", o.out_dir = out;
    o.prepare = [&gen](const Tensor& x) { return data::binarize_dynamic(x, gen); };
    return o;
  }
};

void require_same_parameters(nn::Module& a, nn::Module& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    CHECK(max(abs(pa[i].second - pb[i].second)).item() == 0.0);  // bit for bit
  }
}

}  // namespace

TEST_CASE("fit: N steps, a stop and --resume give the parameters of one uninterrupted run (float64, bit for bit)", "[trainer][resume]") {
  ResumeCase c("dgm-resume-one-run");
  std::filesystem::remove_all(c.out);
  // one run of 4 epochs (20 steps)
  auto straight = c.model(1);
  Generator g1(5);
  const train::FitResult a = train::fit(*straight, c.train, c.validation, g1, c.options(g1, 4));
  std::filesystem::remove_all(c.out);

  // the same run stopped after step 7 (inside epoch 2), or after step 10 (the end of epoch 2, its validation due) ...
  for (const int stop_at : {7, 10}) {
    INFO("stopped after step " << stop_at);
    std::filesystem::remove_all(c.out);
    auto first = c.model(1);
    Generator g2(5);
    train::FitOptions o = c.options(g2, 4);
    int steps = 0;
    o.before_step = [&](const train::StepInfo&) {
      if (++steps == stop_at) train::request_stop();  // the loop ends after this step
    };
    try {
      train::fit(*first, c.train, c.validation, g2, o);
      FAIL("an interrupted fit throws train::Interrupted");
    } catch (const train::Interrupted& e) {
      CHECK(e.step == stop_at);
      CHECK(e.of == 20);
    }
    train::clear_stop();
    CHECK(std::filesystem::exists(c.out + "/vae_resume.safetensors"));  // what an interrupted run keeps
    CHECK(std::filesystem::exists(c.out + "/vae_resume_curve.csv"));
    CHECK(read_text(c.out + "/vae_resume.json").find("\"interrupted\": true") != std::string::npos);
    // ... and resumed in a fresh process's shoes: another initialisation, another generator
    auto resumed = c.model(99);
    Generator g3(12345);
    train::FitOptions r = c.options(g3, 4);
    r.resume = true;
    const train::FitResult b = train::fit(*resumed, c.train, c.validation, g3, r);
    CHECK(b.resumed);
    CHECK(b.steps == a.steps);
    CHECK(b.best_validation == a.best_validation);
    CHECK(b.best_epoch == a.best_epoch);
    CHECK(b.curve == a.curve);
    require_same_parameters(*straight, *resumed);
    CHECK(g3.state() == g1.state());  // the caller's generator continues as after one run
    CHECK(resumed->noise().state() == straight->noise().state());
  }

  // a finished run continued for more epochs: 2 epochs, then --resume with 4
  std::filesystem::remove_all(c.out);
  auto two = c.model(1);
  Generator g4(5);
  train::fit(*two, c.train, c.validation, g4, c.options(g4, 2));
  auto more = c.model(7);
  Generator g5(0);
  train::FitOptions m = c.options(g5, 4);
  m.resume = true;
  train::fit(*more, c.train, c.validation, g5, m);
  require_same_parameters(*straight, *more);
}

TEST_CASE("fit: a VAE's KL warm-up follows the step count, so a stopped and resumed run is one run (float64, bit for bit)",
          "[trainer][resume][vae]") {
  ResumeCase c("dgm-resume-warmup");
  std::filesystem::remove_all(c.out);
  // 4 epochs of 5 steps, the KL weight rising over the first 3 epochs (15 steps)
  auto straight = c.model(1);
  Generator g1(5);
  train::FitOptions o1 = c.options(g1, 4);
  std::vector<double> weights;  // the weight each step trained with
  o1.before_step = [&, hook = models::kl_warmup(*straight, 3)](const train::StepInfo& at) {
    hook(at);
    weights.push_back(straight->kl_weight);
  };
  train::fit(*straight, c.train, c.validation, g1, o1);
  REQUIRE(weights.size() == 20);
  CHECK(weights[0] == 0.0);
  CHECK(weights[6] == Approx(6.0 / 15));
  CHECK(weights[14] == Approx(14.0 / 15));
  CHECK(weights[15] == 1.0);
  CHECK(weights[19] == 1.0);
  {  // the warm-up changes the run: without it the parameters differ
    std::filesystem::remove_all(c.out);
    auto plain = c.model(1);
    Generator g(5);
    train::fit(*plain, c.train, c.validation, g, c.options(g, 4));
    CHECK(max(abs(plain->named_parameters()[0].second - straight->named_parameters()[0].second)).item() > 0.0);
  }
  // stopped after step 7 (inside the warm-up), then resumed by a fresh model and generator
  std::filesystem::remove_all(c.out);
  auto first = c.model(1);
  Generator g2(5);
  train::FitOptions o2 = c.options(g2, 4);
  o2.before_step = [&, hook = models::kl_warmup(*first, 3)](const train::StepInfo& at) {
    hook(at);
    if (at.steps + 1 == 7) train::request_stop();
  };
  CHECK_THROWS_AS(train::fit(*first, c.train, c.validation, g2, o2), train::Interrupted);
  train::clear_stop();
  auto resumed = c.model(99);
  Generator g3(12345);
  train::FitOptions r = c.options(g3, 4);
  r.resume = true;
  r.before_step = models::kl_warmup(*resumed, 3);
  train::fit(*resumed, c.train, c.validation, g3, r);
  require_same_parameters(*straight, *resumed);
}

TEST_CASE("fit: before_step is told the steps and the epochs done; with drop_last an epoch is its full batches", "[trainer]") {
  ResumeCase c("dgm-step-info");
  for (const bool drop_last : {false, true}) {
    INFO("drop_last " << drop_last);
    auto m = c.model(1);
    Generator g(5);
    train::FitOptions o = c.options(g, 2);
    o.out_dir.clear();
    o.batch_size = 12, o.drop_last = drop_last;  // 40 examples: 4 batches an epoch (the last of 4), or 3 full ones
    std::vector<train::StepInfo> seen;
    o.before_step = [&](const train::StepInfo& at) { seen.push_back(at); };
    train::fit(*m, c.train, c.validation, g, o);
    const int per_epoch = drop_last ? 3 : 4;
    REQUIRE(seen.size() == static_cast<size_t>(2 * per_epoch));
    for (size_t k = 0; k < seen.size(); ++k) {
      CHECK(seen[k].steps == static_cast<int64_t>(k));
      CHECK(seen[k].epochs == Approx(static_cast<double>(k) / per_epoch).margin(1e-12));
    }
  }
}

TEST_CASE("VAE: the KL weight scales only the training loss's KL term", "[vae]") {
  Generator g(3);
  models::VAE vae(8, {16}, 4, models::Decoder::Bernoulli, g);
  vae.to(DType::Float64);
  const Tensor x = Generator(4).bernoulli({6, 8}, 0.4, DType::Float64);
  Generator a(7), b(7);
  const models::VAE::Terms t = vae.elbo_terms(x, a);  // the same draw as loss() takes from b
  vae.kl_weight = 0.25;
  const double loss = vae.loss(x, b).item();
  const double expected = -(mean(t.rec).item() - 0.25 * mean(t.kl).item());
  CHECK(loss == Approx(expected).epsilon(1e-12));
  CHECK(loss < -mean(t.elbo).item());  // a positive KL weighed less
  Generator c(7);
  CHECK(mean(vae.elbo_terms(x, c).elbo).item() == mean(t.elbo).item());  // the bound itself is unchanged
  CHECK_THROWS_WITH(models::kl_warmup(vae, 0), Catch::Contains("needs epochs > 0"));
}

TEST_CASE("fit: a resume state from another run is refused, naming what differs", "[trainer][resume]") {
  ResumeCase c("dgm-resume-foreign");
  std::filesystem::remove_all(c.out);
  auto m = c.model(1);
  Generator g(5);
  train::fit(*m, c.train, c.validation, g, c.options(g, 1));
  Generator g2(5);
  auto wider = std::make_shared<models::VAE>(8, std::vector<int64_t>{24}, 4, models::Decoder::Bernoulli, g2);
  wider->to(DType::Float64);
  train::FitOptions o = c.options(g2, 2);
  o.resume = true;
  o.batch_size = 4;
  const std::string e = error_of([&] { train::fit(*wider, c.train, c.validation, g2, o); });
  CHECK(e.find("does not belong to this run") != std::string::npos);
  CHECK(e.find("batch size 8 in the state, 4 now") != std::string::npos);
  CHECK(e.find("[16, 8]") != std::string::npos);  // a parameter's saved shape, named
  CHECK(e.find("[24, 8]") != std::string::npos);
}

TEST_CASE("fit writes the model's name, constructor arguments and data transform beside its checkpoint") {
  Generator g(2);
  models::RealNVP2D flow(2, 8, g);
  train::FitOptions o;
  o.epochs = 1;
  o.progress = false;
  o.tag = "tiny_flow";
  o.out_dir = temp_path("dgm-trainer-json", "");
  o.data_transform = "points as they are";
  train::fit(flow, g.normal({32, 2}), Tensor(), g, o);
  const std::string j = read_text(std::filesystem::path(o.out_dir) / "tiny_flow.json");
  CHECK(j.find("\"model\": \"realnvp2d\"") != std::string::npos);
  CHECK(j.find("\"hidden\": 8") != std::string::npos);
  CHECK(j.find("\"layers\": 2") != std::string::npos);
  CHECK(j.find("\"data_transform\": \"points as they are\"") != std::string::npos);
}

TEST_CASE("a time-budgeted bar shows the clock against the budget and the steps, and ends full", "[trainer]") {
  CHECK(progress::clock_time(0) == "0:00");
  CHECK(progress::clock_time(65) == "1:05");
  CHECK(progress::clock_time(600) == "10:00");
  CHECK(progress::clock_time(3723) == "1:02:03");
  std::ostringstream captured;
  std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
  {
    progress::ProgressBar bar = progress::ProgressBar::timed("fashion_vae", 180, 0, 40, 30);  // resumed at step 40 after 30 s
    bar.update(50, "epoch 2");
    bar.finish("stopped at the time limit (180 s)");
  }
  std::cout.rdbuf(old);
  const std::string out = captured.str();
  INFO(out);
  CHECK(out.find("fashion_vae 0:30 of 3:00, step 50") != std::string::npos);  // a file, not a tty: plain lines
  CHECK(out.find("16% ") != std::string::npos);                               // 30 s of 180
  CHECK(out.find("100% fashion_vae") != std::string::npos);
  CHECK(out.find("stopped at the time limit") != std::string::npos);
  CHECK(out.find("/1000") == std::string::npos);  // no thousandths of a budget
}

namespace {
struct OneParameter : nn::Module {
  Tensor p;
  OneParameter() { p = register_parameter("p", Tensor::zeros({1}, DType::Float64)); }
};
}  // namespace

TEST_CASE("fit: the cosine schedule takes Adam's steps from lr down to 0 along half a cosine", "[trainer]") {
  // loss = p: a constant gradient 1, so each Adam step moves p by lr_k / (1 + eps) exactly
  // (m_hat = v_hat = 1); over K steps the rates (1 + cos(pi k / K)) / 2, k = 0..K-1, sum to (K + 1) / 2
  const int64_t K = 40;
  for (const std::string schedule : {"constant", "cosine"}) {
    OneParameter m;
    Generator g(3);
    train::FitOptions o;
    o.epochs = 4, o.batch_size = 1, o.lr = 0.01, o.progress = false, o.lr_schedule = schedule;
    std::vector<double> before;
    o.before_step = [&](const train::StepInfo&) { before.push_back(m.p.item()); };
    train::fit(m, K / 4, [&](const Tensor&) { return sum(m.p); }, {}, g, o);
    REQUIRE(before.size() == static_cast<size_t>(K));
    const double moved = -m.p.item(), last = before.back() - m.p.item();
    if (schedule == "constant") {
      CHECK(moved == Approx(0.01 * K).epsilon(1e-6));
    } else {
      CHECK(moved == Approx(0.01 * (K + 1) / 2.0).epsilon(1e-6));
      CHECK(last == Approx(0.01 * (1 + std::cos(M_PI * (K - 1) / K)) / 2).epsilon(1e-6));
      CHECK(before[1] - before[2] == Approx(0.01 * (1 + std::cos(M_PI / K)) / 2).epsilon(1e-6));
    }
  }
  OneParameter m;
  Generator g(3);
  train::FitOptions o;
  o.progress = false, o.lr_schedule = "linear";
  CHECK_THAT(error_of([&] { train::fit(m, 4, [&](const Tensor&) { return sum(m.p); }, {}, g, o); }),
             Catch::Contains("lr_schedule must be \"constant\" or \"cosine\", got \"linear\""));
}

TEST_CASE("update_checkpoint: state set after training reaches the checkpoint, its metadata kept", "[trainer][checkpoint]") {
  Generator g(4);
  OneParameter m;
  train::FitOptions o;
  o.epochs = 1, o.batch_size = 2, o.progress = false, o.tag = "one";
  o.out_dir = test::temp_path("dgm_update_checkpoint", "");
  train::fit(m, 4, [&](const Tensor&) { return sum(m.p); }, {}, g, o);
  const std::string path = (std::filesystem::path(o.out_dir) / "one.safetensors").string();
  std::map<std::string, std::string> before;
  load_safetensors(path, &before);
  {
    NoGradGuard ng;
    m.p.copy_(Tensor::full({1}, 42.0, DType::Float64));  // changed after training
  }
  CHECK(train::update_checkpoint(m, o) == path);
  std::map<std::string, std::string> after;
  const nn::NamedTensors t = load_safetensors(path, &after);
  CHECK(t.at(0).second.item() == 42.0);
  CHECK(after == before);
  o.checkpoint = false;
  CHECK(train::update_checkpoint(m, o).empty());
  o.checkpoint = true, o.tag = "never_trained";
  CHECK_THAT(error_of([&] { train::update_checkpoint(m, o); }), Catch::Contains("never_trained.safetensors does not exist"));
}
