// The toolkit's distributions against closed forms, quadrature and sampling.
#include <cmath>

#include "helpers.h"
#include "models/toolkit/distributions.h"

using namespace dgm;
using namespace dgm::test;

TEST_CASE("Normal: log_prob against the density written out, and its gradients", "[distributions]") {
  const double x = 0.7, m = -0.2, lv = std::log(1.7);
  const dist::Normal n{Tensor::scalar(m, DType::Float64), Tensor::scalar(lv, DType::Float64)};
  const double want = std::log(std::exp(-(x - m) * (x - m) / (2 * 1.7)) / std::sqrt(2 * M_PI * 1.7));
  CHECK(n.log_prob(Tensor::scalar(x, DType::Float64)).item() == Approx(want).epsilon(1e-14));
  // broadcast: x [3, 4], mean [4], log_var [3, 1]; first and second derivatives
  auto f = [](const std::vector<Tensor>& p) { return dist::Normal{p[1], p[2]}.log_prob(p[0]); };
  require_gradcheck(f, {randn({3, 4}, 1), randn({4}, 2), randn({3, 1}, 3)});
  require_gradgradcheck(f, {randn({3, 4}, 1), randn({4}, 2), randn({3, 1}, 3)});
}

TEST_CASE("Normal: rsample has the right moments and carries gradients to mean and log_var", "[distributions]") {
  Generator g(3);
  Tensor mean = Tensor::full({20000}, 1.5, DType::Float64).set_requires_grad(true);
  Tensor lv = Tensor::full({20000}, std::log(0.25), DType::Float64).set_requires_grad(true);
  Tensor z = dist::Normal{mean, lv}.rsample(g);
  CHECK(dgm::mean(z).item() == Approx(1.5).margin(4 * 0.5 / std::sqrt(20000.0)));
  CHECK(var(z).item() == Approx(0.25).margin(4 * 0.25 * std::sqrt(2.0 / 20000)));
  sum(z).backward();
  CHECK(mean.grad().at(0) == 1.0);  // dz/dmean = 1
  CHECK(std::isfinite(lv.grad().at(0)));
}

TEST_CASE("Logistic: the density integrates to one, samples have mean loc and variance s^2 pi^2 / 3", "[distributions]") {
  const double loc = 0.3, s = 0.7;
  const dist::Logistic d{Tensor::scalar(loc, DType::Float64), Tensor::scalar(std::log(s), DType::Float64)};
  const int64_t M = 200000;
  const double lo = -60, hi = 60, h = (hi - lo) / M;
  Tensor grid = Tensor::empty({M}, DType::Float64);
  for (int64_t i = 0; i < M; ++i) grid.data<double>()[i] = lo + (static_cast<double>(i) + 0.5) * h;
  CHECK(sum(exp(d.log_prob(grid))).item() * h == Approx(1.0).margin(1e-9));
  Generator g(5);
  const dist::Logistic many{Tensor::full({40000}, loc, DType::Float64), Tensor::full({40000}, std::log(s), DType::Float64)};
  Tensor x = many.sample(g);
  const double v = s * s * M_PI * M_PI / 3;
  CHECK(mean(x).item() == Approx(loc).margin(4 * std::sqrt(v / 40000)));
  CHECK(var(x).item() == Approx(v).margin(4 * v * std::sqrt(2.2 / 40000)));  // kurtosis 4.2 for the logistic
}

TEST_CASE("DiscretizedLogistic: the masses of all levels sum to one", "[distributions]") {
  for (int64_t levels : {2, 17, 256}) {
    for (auto [loc, log_s] : {std::pair{0.5, std::log(0.1)}, std::pair{-0.3, std::log(0.02)}, std::pair{0.9, std::log(2.0)}}) {
      INFO("levels " << levels << ", loc " << loc);
      Tensor x = Tensor::empty({levels}, DType::Float64);
      for (int64_t k = 0; k < levels; ++k) x.data<double>()[k] = static_cast<double>(k) / static_cast<double>(levels - 1);
      const dist::DiscretizedLogistic d{Tensor::scalar(loc, DType::Float64), Tensor::scalar(log_s, DType::Float64), levels};
      CHECK(sum(exp(d.log_prob(x))).item() == Approx(1.0).margin(1e-9));
    }
  }
}

TEST_CASE("Bernoulli and Categorical: masses sum to one, samples follow them", "[distributions]") {
  Tensor logits = randn({5}, 7);
  const dist::Bernoulli b{logits};
  Tensor total = exp(b.log_prob(Tensor::ones({5}, DType::Float64))) + exp(b.log_prob(Tensor::zeros({5}, DType::Float64)));
  for (int i = 0; i < 5; ++i) CHECK(total.at(i) == Approx(1.0).epsilon(1e-14));
  const dist::Categorical c{randn({3, 4}, 8), 1};  // 3 distributions over 4 categories
  double s = 0;
  for (int64_t k = 0; k < 4; ++k) s += exp(c.log_prob(Tensor::full({3}, static_cast<double>(k), DType::Int64))).at(1);
  CHECK(s == Approx(1.0).epsilon(1e-14));
  Generator g(9);
  const dist::Categorical many{expand(reshape(slice(c.logits, 0, 1, 2), {1, 4}), {20000, 4}).contiguous_copy(), 1};
  Tensor draws = many.sample(g);
  Tensor p = softmax(slice(c.logits, 0, 1, 2), 1);
  for (int64_t k = 0; k < 4; ++k) {
    double count = 0;
    for (int64_t i = 0; i < 20000; ++i) count += draws.at(i) == static_cast<double>(k);
    const double pk = p.at(k);
    CHECK(count / 20000 == Approx(pk).margin(4 * std::sqrt(pk * (1 - pk) / 20000)));
  }
}
